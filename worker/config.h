/* config.h - one configuration table drives flags, ORDERD_* environment
 * variables, the configuration file and each subcommand's --help
 * (config.c); librdkafka properties from -F and -X (config_kafka.c) */
#ifndef OD_CONFIG_H
#define OD_CONFIG_H

#include <stdio.h>

#include "od.h"
#include "sources.h"

#define CONFIG_MAX_KAFKA_PROPS 64

/*
 * The subcommands, one bit each: every option of the table names the
 * subcommands that take it, so a subcommand refuses the others' options
 * and its --help lists only its own.
 */
typedef enum config_cmd {
    CONFIG_RUN = 1u << 0,
    CONFIG_MIGRATE = 1u << 1,
    CONFIG_TOPICS = 1u << 2,
    CONFIG_SEND = 1u << 3,
    CONFIG_REPLAY = 1u << 4,
    CONFIG_CHECK = 1u << 5,
    CONFIG_ORDER = 1u << 6,
    CONFIG_EVENTS = 1u << 7,
    CONFIG_DLQ = 1u << 8,
    CONFIG_REPORT = 1u << 9
} config_cmd_t;

#define CONFIG_NCMDS 10
#define CONFIG_ALL ((1u << CONFIG_NCMDS) - 1)
/* the subcommands that talk to Kafka (-X, -F, --brokers) */
#define CONFIG_KAFKA                                                           \
    (CONFIG_RUN | CONFIG_TOPICS | CONFIG_SEND | CONFIG_REPLAY |                \
     CONFIG_EVENTS | CONFIG_DLQ)
/* the subcommands that use the sources (--source, --commands-topic) */
#define CONFIG_SOURCES                                                         \
    (CONFIG_RUN | CONFIG_TOPICS | CONFIG_SEND | CONFIG_REPLAY | CONFIG_DLQ)

typedef struct od_config {
    char *config_file; /* --config, ORDERD_CONFIG ("": none) */
    char *pg;          /* every subcommand but migrate: the runtime role */
    char *migrate_pg;  /* migrate: the schema owner ("" means pg) */
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
    int64_t pg_timeout_ms; /* run: the bound on a wait for postgres */
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
    /* subcommand flags, command line only */
    int64_t raw;            /* send, events */
    int64_t validate;       /* send: check every line, then send */
    int64_t dry_run;        /* migrate, replay */
    int64_t from_beginning; /* replay */
    char *from_time;        /* replay ("": not given) */
    char *topic;            /* replay ("": every source's topic) */
    int64_t loud;           /* replay */
    char *send_source;      /* send --source NAME ("": the default source) */
    int64_t count;          /* events: stop after this many (0: no limit) */
    int64_t timeout_ms;     /* events: give up after this long (0: never) */
    int64_t follow;         /* events: wait for new events past the end */
    int64_t dlq_count;      /* dlq: at most this many (0: all selected) */
    int64_t dlq_timeout_ms; /* dlq: give up reading after this long */
    int64_t dlq_all;        /* dlq redrive: every dead letter */
    int64_t dlq_partition;  /* dlq: -1, every partition */
    char *dlq_offsets;      /* dlq: "3,5-9" ("": not given) */
    char *dlq_error_class;  /* dlq: internal_error | poison ("": any) */
    char *dlq_since;        /* dlq: RFC 3339 ("": not given) */
    /* run: the console's bearer token (a secret: never logged or shown),
     * given itself or as a file holding it ("": neither) */
    char *console_token;
    char *console_token_file;
    char *report_by;     /* report: day | week | month */
    char *report_from;   /* report: a time ("": 30 days before --to) */
    char *report_to;     /* report: a time ("": now) */
    char *report_vendor; /* report: one vendor's orders ("": all) */
    char *report_format; /* report: text | json */
    /* librdkafka properties, passed on as is: first those of -F files (the
     * first nkafka_file), then -X key=value, each in command-line order */
    char *kafka_keys[CONFIG_MAX_KAFKA_PROPS];
    char *kafka_values[CONFIG_MAX_KAFKA_PROPS];
    int nkafka;
    int nkafka_file;
    od_sources_t sources; /* built by config_finish */
} od_config_t;

/* The subcommand's name ("run") for its bit, or NULL. */
const char *config_cmd_name(unsigned cmd);
/* The bit of the subcommand called name, or 0 if there is none. */
unsigned config_cmd_parse(const char *name);

/*
 * Builds cfg for the subcommand cmd (one CONFIG_* bit) from argv, the
 * arguments after the subcommand. Each layer overrides the one before:
 * the defaults, the configuration file (--config FILE, else
 * ORDERD_CONFIG), the ORDERD_* variables, the flags. A repeated --source
 * adds to the sources of its own layer. Every value is checked, in every
 * layer, whether cmd uses it or not; a flag cmd does not take is refused.
 * Arguments that are not options go to pos (at most npos; *npos_out
 * receives how many, may be NULL). Returns 0; 1 when --help was asked; -1
 * with err filled (the process should exit 2). Never quotes a value read
 * from a file (it may be a password). The caller frees cfg with
 * config_free in every case.
 */
int config_load(od_config_t *cfg, unsigned cmd, int argc, char **argv,
                char **pos, int npos, int *npos_out, char *err,
                size_t errlen) OD_MUSTCHECK;
/*
 * Reads a configuration file into cfg: "name = value" lines with the long
 * option names, blanks around both ignored, blank lines and lines starting
 * with # skipped; "source" may repeat (its entries add up), any other name
 * may appear once. Errors name the file and line, never the value.
 * config_load calls it; exposed for tests. Returns 0 or -1 with err.
 */
int config_load_file(od_config_t *cfg, const char *path, char *err,
                     size_t errlen) OD_MUSTCHECK;
/* After config_load: builds cfg->sources from --source (or the default
 * source). Returns 0, or -1 with err. */
int config_finish(od_config_t *cfg, char *err, size_t errlen) OD_MUSTCHECK;
/* Prints the options of the subcommands in cmds (bits), with their
 * variables and defaults. */
void config_usage(FILE *out, unsigned cmds);
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
/* Adds one -X key=value after every property before it. Returns 0, or -1
 * with err (never the value: it may be a password). */
OD_MUSTCHECK int config_add_kafka_prop(od_config_t *cfg, const char *kv,
                                       char *err, size_t errlen);
/* 1 if a librdkafka property holds a secret (a password, a private key, an
 * OAuth client secret): its value must never be shown. */
int config_kafka_secret(const char *key);
/* "key=value key=value ..." of every Kafka property, secrets as ***, for
 * logs; truncated to len. */
void config_kafka_props_masked(const od_config_t *cfg, char *out, size_t len);

#endif
