/* config.h - one configuration table drives flags, ORDERD_* environment
 * variables and --help */
#ifndef OD_CONFIG_H
#define OD_CONFIG_H

#include <stdio.h>

#include "od.h"
#include "sources.h"

#define CONFIG_MAX_KAFKA_PROPS 64

typedef struct od_config {
    char *pg;         /* every subcommand but migrate: the runtime role */
    char *migrate_pg; /* migrate: the schema owner ("" means pg) */
    char *brokers;
    char *group;
    char *commands_topic;
    char *source_spec; /* --source entries joined with ';' */
    char *events_topic;
    char *dlq_topic;
    int64_t partitions;
    int64_t threads;
    int64_t batch_size;
    int64_t batch_wait_ms;
    int64_t default_tax_bps;
    int64_t pending_ttl_ms;
    int64_t expiry_grace_ms;
    int64_t expiry_interval_ms;
    int64_t defer_timeout_ms;
    int64_t max_clock_skew_ms;
    int64_t max_event_age_ms;
    int64_t dedup_retention_ms;
    int64_t outbox_retention_ms;
    char *order_prefix;
    char *on_internal_error; /* continue | halt */
    char *metrics_addr;      /* host:port, "" or "off" disables */
    int64_t http_max_connections;
    int64_t http_timeout_ms;
    char *log_level;
    char *log_format;     /* text | json */
    char *schema_dir;     /* migrate: "" means next to the binary */
    int64_t scheduler;    /* 1: run the expiry scheduler in this process */
    int64_t max_messages; /* run: stop after this many (0: never) */
    /* librdkafka properties, passed on as is: first those of -F files (the
     * first nkafka_file), then -X key=value, each in command-line order */
    char *kafka_keys[CONFIG_MAX_KAFKA_PROPS];
    char *kafka_values[CONFIG_MAX_KAFKA_PROPS];
    int nkafka;
    int nkafka_file;
    od_sources_t sources; /* built by config_finish */
} od_config_t;

/* Fills cfg with defaults, then ORDERD_* variables. */
void config_init(od_config_t *cfg);
/*
 * Parses flags from argv (after the subcommand). Unknown flags are an
 * error unless extra (may be NULL) accepts them: extra returns the number
 * of argv entries it consumed (0: not its flag). Positional arguments are
 * collected into pos (at most npos; *npos_out set). Returns 0, or -1 with
 * err filled; 1 when --help was asked.
 */
typedef int (*config_extra_fn)(int argc, char **argv, int i, void *arg);
int config_parse(od_config_t *cfg, int argc, char **argv, config_extra_fn extra,
                 void *extra_arg, char **pos, int npos, int *npos_out,
                 char *err, size_t errlen);
/* After parsing: builds cfg->sources from --source (or the default
 * source). Returns 0, or -1 with err. */
int config_finish(od_config_t *cfg, char *err, size_t errlen) OD_MUSTCHECK;
void config_usage(FILE *out);
void config_free(od_config_t *cfg);

/* Parses "250ms", "5s", "15m", "2h", "30d" or plain seconds into ms. */
int config_parse_duration(const char *s, int64_t *ms);

/*
 * Reads a librdkafka properties file (kcat's -F format): key=value lines,
 * blanks around the key and before the value ignored, blank lines and
 * lines starting with # skipped. Its properties go after those of earlier
 * -F files and before every -X. Returns 0, or -1 with err naming the file
 * and line (never the line's text: it may hold a password).
 */
OD_MUSTCHECK int config_load_kafka_file(od_config_t *cfg, const char *path,
                                        char *err, size_t errlen);
/* 1 if a librdkafka property holds a secret (a password, a private key, an
 * OAuth client secret): its value must never be shown. */
int config_kafka_secret(const char *key);
/* "key=value key=value ..." of every Kafka property, secrets as ***, for
 * logs; truncated to len. */
void config_kafka_props_masked(const od_config_t *cfg, char *out, size_t len);

#endif
