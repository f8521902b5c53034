/* log.c - level-gated logging, text or JSON lines, to stderr
 *
 * DESIGN: a message often quotes input (a poison message's parse error,
 * a server error that echoes a value), so every message is escaped with
 * od_escape before it is written: one event stays one line, no byte
 * reaches the reader's terminal as a control sequence, and the JSON
 * format always gets valid UTF-8 to encode.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* atomic: SIGHUP changes them while other threads log */
static atomic_int log_threshold = LOG_INFO;
static atomic_int log_json;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
log_setup(log_level_t level, int json)
{
    atomic_store(&log_threshold, (int)level);
    atomic_store(&log_json, json);
}

const char *
log_level_name(log_level_t level)
{
    return (int)level >= 0 && (int)level < (int)OD_ARRAY_LEN(level_names)
               ? level_names[level]
               : "?";
}

int
log_level_parse(const char *s)
{
    for (int i = 0; i < (int)OD_ARRAY_LEN(level_names); i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int
log_enabled(log_level_t level)
{
    return (int)level <= atomic_load(&log_threshold);
}

void
log_msg(log_level_t level, const char *topic, int32_t partition, int64_t offset,
        const char *fmt, ...)
{
    char msg[2048], esc[OD_ESCAPE_SIZE(2048)], tesc[OD_ESCAPE_SIZE(256)];
    char at[40];
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    od_escape(msg, esc, sizeof(esc));
    if (topic != NULL)
        topic = od_escape(topic, tesc, sizeof(tesc));
    od_format_time(od_now_us(), at, sizeof(at));

    pthread_mutex_lock(&log_lock);
    if (atomic_load(&log_json)) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "at", at, "level",
                              level_names[level], "msg", esc);
        char *line;

        if (topic != NULL) {
            json_object_set_new(o, "topic", json_string(topic));
            json_object_set_new(o, "partition", json_integer(partition));
            json_object_set_new(o, "offset", json_integer(offset));
        }
        line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        fprintf(stderr, "%s\n", line ? line : esc);
        free(line);
        json_decref(o);
    } else if (topic != NULL) {
        fprintf(stderr, "%s %s [%s/%d@%lld] %s\n", at, level_names[level],
                topic, (int)partition, (long long)offset, esc);
    } else {
        fprintf(stderr, "%s %s %s\n", at, level_names[level], esc);
    }
    pthread_mutex_unlock(&log_lock);
}
