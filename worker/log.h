/* log.h - level-gated logging, text or JSON lines, to stderr */
#ifndef OD_LOG_H
#define OD_LOG_H

#include <stdint.h>

#include "od.h"

typedef enum log_level {
    LOG_ERROR = 0,
    LOG_WARN,
    LOG_INFO,
    LOG_DEBUG
} log_level_t;

/* Sets the threshold and the format (json != 0: one JSON object a line);
 * safe while other threads log. */
void log_setup(log_level_t level, int json);
/* "error", "warn", "info" or "debug" */
const char *log_level_name(log_level_t level);
/* Parses "error", "warn", "info", "debug"; -1 if unknown. */
int log_level_parse(const char *s);
int log_enabled(log_level_t level);

void log_msg(log_level_t level, const char *topic, int32_t partition,
             int64_t offset, const char *fmt, ...) OD_PRINTF(5, 6);

#define log_error(...) log_msg(LOG_ERROR, NULL, -1, -1, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, NULL, -1, -1, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, NULL, -1, -1, __VA_ARGS__)
#define log_debug(...)                                                         \
    do {                                                                       \
        if (log_enabled(LOG_DEBUG))                                            \
            log_msg(LOG_DEBUG, NULL, -1, -1, __VA_ARGS__);                     \
    } while (0)

/* the same, prefixed with the message's topic/partition/offset */
#define slog_error(t, p, o, ...) log_msg(LOG_ERROR, t, p, o, __VA_ARGS__)
#define slog_warn(t, p, o, ...) log_msg(LOG_WARN, t, p, o, __VA_ARGS__)
#define slog_info(t, p, o, ...) log_msg(LOG_INFO, t, p, o, __VA_ARGS__)

#endif
