/* config.c - the configuration table: flags, ORDERD_* variables, the
 * configuration file, each subcommand's --help (-F and -X are read in
 * command-line order here, stored by config_kafka.c)
 *
 * DESIGN: one table row per option says its type, variable, default, the
 * subcommands that take it (a bitmask) and its help, so that parsing,
 * validation and --help cannot disagree. config_load reads the command
 * line first without applying it (to find --config and to refuse another
 * subcommand's flags before anything is read), then applies the layers
 * from the lowest: defaults, the file, the variables, the flags. Values
 * are checked as they are set, in every layer, so a bad value stops the
 * process at start with its origin (flag, variable, or file:line).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "config_int.h"
#include "kvfile.h"

#define OFF(f) offsetof(od_config_t, f)
#define R CONFIG_RUN
#define M CONFIG_MIGRATE
#define T CONFIG_TOPICS
#define S CONFIG_SEND
#define P CONFIG_REPLAY
#define C CONFIG_CHECK
#define O CONFIG_ORDER
#define E CONFIG_EVENTS
#define D CONFIG_DLQ
#define Q CONFIG_REPORT
#define PG (R | M | P | C | O | Q)

/* in the order --help lists them; a name may appear twice when two
 * subcommands give one flag different meanings (--dry-run, --source) */
static const opt_t options[] = {
    {"config", "ORDERD_CONFIG", OPT_CONFIG, OFF(config_file), "", CONFIG_ALL,
     "FILE", 0, 0, NULL,
     "configuration file: name = value lines with the long option names "
     "(flags and variables override it)"},
    {"pg", "ORDERD_PG", OPT_STR, OFF(pg), "", PG, "CONNINFO", 0, 0, NULL,
     "libpq connection string (empty: the standard PG* variables)"},
    {"migrate-pg", "ORDERD_MIGRATE_PG", OPT_STR, OFF(migrate_pg), "", M,
     "CONNINFO", 0, 0, NULL,
     "connection string of the schema owner (empty: --pg)"},
    {"schema-dir", "ORDERD_SCHEMA_DIR", OPT_STR, OFF(schema_dir), "", M, "DIR",
     0, 0, NULL,
     "directory of the NNNN_*.sql migrations (empty: share/orderd/schema "
     "beside the binary's bin/)"},
    {"brokers", "ORDERD_BROKERS", OPT_STR, OFF(brokers), "127.0.0.1:9092",
     CONFIG_KAFKA, "HOST:PORT,...", 0, 0, NULL, "Kafka bootstrap servers"},
    {"F", NULL, OPT_KAFKA_FILE, 0, NULL, CONFIG_KAFKA, "FILE", 0, 0, NULL,
     "librdkafka properties file (key=value lines, # comments; read before "
     "any -X, as kcat; keeps secrets off the command line)"},
    {"X", NULL, OPT_KAFKA_PROP, 0, NULL, CONFIG_KAFKA, "key=value", 0, 0, NULL,
     "any librdkafka property (as kcat), repeatable"},
    {"group", "ORDERD_GROUP", OPT_STR, OFF(group), "orderd", R | P, "NAME", 0,
     0, NULL,
     "consumer group (offsets are stored in Postgres under this name)"},
    {"commands-topic", "ORDERD_COMMANDS_TOPIC", OPT_STR, OFF(commands_topic),
     "orders.commands", CONFIG_SOURCES, "TOPIC", 0, 0, NULL,
     "input topic when no --source is given (the source \"default\")"},
    {"source", "ORDERD_SOURCES", OPT_LIST, OFF(source_spec), "", CONFIG_SOURCES,
     "NAME=TOPIC:ROLES", 0, 0, NULL,
     "NAME=TOPIC:ROLE[,ROLE...], repeatable (variable: ';' between): the "
     "roles a topic's commands may claim (none: --commands-topic admits "
     "every role)"},
    {"source", NULL, OPT_STR, OFF(send_source), "", S, "NAME", 0, 0, NULL,
     "a bare name (no '='): the source whose topic gets the lines "
     "(default: the source \"default\")"},
    {"events-topic", "ORDERD_EVENTS_TOPIC", OPT_STR, OFF(events_topic),
     "orders.events", R | T | E, "TOPIC", 0, 0, NULL,
     "result and domain events topic"},
    {"dlq-topic", "ORDERD_DLQ_TOPIC", OPT_STR, OFF(dlq_topic),
     "orders.commands.dlq", R | T | D, "TOPIC", 0, 0, NULL,
     "dead-letter topic"},
    {"partitions", "ORDERD_PARTITIONS", OPT_INT, OFF(partitions), "6", T, "N",
     1, 100000, NULL, "partitions of the commands and events topics"},
    {"threads", "ORDERD_THREADS", OPT_INT, OFF(threads), "0", R, "N", 0, 64,
     NULL, "executor threads (0: one per core, at most 64)"},
    {"batch-size", "ORDERD_BATCH_SIZE", OPT_INT, OFF(batch_size), "500", R, "N",
     1, 100000, NULL,
     "commands per transaction at most (one load and one write per batch: "
     "see docs/performance.md)"},
    {"batch-wait-ms", "ORDERD_BATCH_WAIT_MS", OPT_INT, OFF(batch_wait_ms), "5",
     R, "MS", 0, 60000, NULL, "how long a batch waits to fill"},
    {"default-tax-bps", "ORDERD_DEFAULT_TAX_BPS", OPT_INT, OFF(default_tax_bps),
     "0", R, "BPS", 0, 10000, NULL,
     "tax rate (basis points) for countries without a tax_rate_set"},
    {"pg-timeout", "ORDERD_PG_TIMEOUT", OPT_DURATION, OFF(pg_timeout_ms), "30s",
     R, NULL, 0, 3600000, NULL,
     "a postgres connection silent this long is abandoned and its batch "
     "retried (0: wait forever)"},
    {"pending-ttl", "ORDERD_PENDING_TTL", OPT_DURATION, OFF(pending_ttl_ms),
     "15m", R, NULL, 0, 0, NULL, "how long a pending order waits for payment"},
    {"expiry-grace", "ORDERD_EXPIRY_GRACE", OPT_DURATION, OFF(expiry_grace_ms),
     "0s", R, NULL, 0, 0, NULL,
     "a payment this late after the deadline is still accepted"},
    {"expiry-interval", "ORDERD_EXPIRY_INTERVAL", OPT_DURATION,
     OFF(expiry_interval_ms), "5s", R, NULL, 1, 0, NULL,
     "expiry scheduler scan interval"},
    {"defer-timeout", "ORDERD_DEFER_TIMEOUT", OPT_DURATION,
     OFF(defer_timeout_ms), "10m", R, NULL, 0, 0, NULL,
     "how long a command for an unknown order stays parked"},
    {"max-clock-skew", "ORDERD_MAX_CLOCK_SKEW", OPT_DURATION,
     OFF(max_clock_skew_ms), "5m", R | S, NULL, 0, 0, NULL,
     "issued_at may be this far after the Kafka timestamp"},
    {"max-event-age", "ORDERD_MAX_EVENT_AGE", OPT_DURATION,
     OFF(max_event_age_ms), "72h", R | S, NULL, 0, 0, NULL,
     "issued_at may be this far before the Kafka timestamp"},
    {"dedup-retention", "ORDERD_DEDUP_RETENTION", OPT_DURATION,
     OFF(dedup_retention_ms), "30d", R, NULL, 0, 0, NULL,
     "dedup rows kept at least this long (must cover any replay window)"},
    {"outbox-retention", "ORDERD_OUTBOX_RETENTION", OPT_DURATION,
     OFF(outbox_retention_ms), "7d", R, NULL, 0, 0, NULL,
     "published outbox rows kept this long"},
    {"order-prefix", "ORDERD_ORDER_PREFIX", OPT_STR, OFF(order_prefix), "ORD-",
     R, "TEXT", 0, 0, NULL, "prefix of human order numbers"},
    {"on-internal-error", "ORDERD_ON_INTERNAL_ERROR", OPT_ENUM,
     OFF(on_internal_error), "continue", R, NULL, 0, 0, "continue|halt",
     "continue (reject internal_error, DLQ copy) or halt (exit 3)"},
    {"metrics-addr", "ORDERD_METRICS_ADDR", OPT_STR, OFF(metrics_addr),
     "127.0.0.1:9464", R, "HOST:PORT", 0, 0, NULL,
     "metrics and health endpoint (off: none)"},
    {"http-max-connections", "ORDERD_HTTP_MAX_CONNECTIONS", OPT_INT,
     OFF(http_max_connections), "4096", R, "N", 1, 1000000, NULL,
     "connections the metrics endpoint holds at once"},
    {"http-timeout", "ORDERD_HTTP_TIMEOUT", OPT_DURATION, OFF(http_timeout_ms),
     "10s", R, NULL, 1000, 86400000, NULL,
     "the metrics endpoint closes a connection idle this long"},
    {"console-token", "ORDERD_CONSOLE_TOKEN", OPT_STR, OFF(console_token), "",
     R, "TOKEN", 0, 0, NULL,
     "bearer token the console asks for; required when --metrics-addr is "
     "not loopback (prefer the variable or --console-token-file: a flag "
     "shows in the process list)"},
    {"console-token-file", "ORDERD_CONSOLE_TOKEN_FILE", OPT_STR,
     OFF(console_token_file), "", R, "FILE", 0, 0, NULL,
     "file whose first line is the console's bearer token"},
    {"scheduler", "ORDERD_SCHEDULER", OPT_BOOL, OFF(scheduler), "true", R, NULL,
     0, 0, NULL,
     "run the expiry scheduler and retention purge in this process"},
    {"max-messages", "ORDERD_MAX_MESSAGES", OPT_INT, OFF(max_messages), "0", R,
     "N", 0, 0, NULL,
     "exit after applying this many messages (0: run until stopped)"},
    {"dry-run", NULL, OPT_FLAG, OFF(dry_run), "false", M, NULL, 0, 0, NULL,
     "list the pending migrations, apply nothing"},
    {"dry-run", NULL, OPT_FLAG, OFF(dry_run), "false", P, NULL, 0, 0, NULL,
     "classify the range against the dedup rows, move nothing"},
    {"from-beginning", NULL, OPT_FLAG, OFF(from_beginning), "false", P, NULL, 0,
     0, NULL, "replay from each partition's first message"},
    {"from-time", NULL, OPT_TIME, OFF(from_time), "", P, "RFC3339", 0, 0, NULL,
     "replay from the first message at or after this time"},
    {"topic", NULL, OPT_STR, OFF(topic), "", P, "TOPIC", 0, 0, NULL,
     "replay this topic only (default: every source's topic)"},
    {"loud", NULL, OPT_FLAG, OFF(loud), "false", P, NULL, 0, 0, NULL,
     "re-emit result events for re-read duplicates"},
    {"raw", NULL, OPT_FLAG, OFF(raw), "false", S, NULL, 0, 0, NULL,
     "send lines as they are, even if not JSON"},
    {"raw", NULL, OPT_FLAG, OFF(raw), "false", E, NULL, 0, 0, NULL,
     "print each event's JSON as it is"},
    {"validate", NULL, OPT_FLAG, OFF(validate), "false", S, NULL, 0, 0, NULL,
     "check every line with the worker's rules first; send none if one "
     "fails (exit 2)"},
    {"count", NULL, OPT_INT, OFF(count), "0", E, "N", 0, 0, NULL,
     "stop after N events (0: no limit); fewer by the end: exit 1"},
    {"follow", NULL, OPT_FLAG, OFF(follow), "false", E, NULL, 0, 0, NULL,
     "at the end of the topic, wait for new events (until --count or "
     "--timeout)"},
    {"timeout", NULL, OPT_DURATION, OFF(timeout_ms), "30s", E, NULL, 0, 0, NULL,
     "give up after this long (0: never)"},
    {"count", NULL, OPT_INT, OFF(dlq_count), "0", D, "N", 0, 0, NULL,
     "at most N dead letters (0: every one selected)"},
    {"timeout", NULL, OPT_DURATION, OFF(dlq_timeout_ms), "30s", D, NULL, 0, 0,
     NULL, "give up reading after this long (0: 30s)"},
    {"all", NULL, OPT_FLAG, OFF(dlq_all), "false", D, NULL, 0, 0, NULL,
     "redrive: every dead letter"},
    {"offsets", NULL, OPT_STR, OFF(dlq_offsets), "", D, "3,5-9", 0, 0, NULL,
     "select these offsets (of --partition, default 0)"},
    {"partition", NULL, OPT_INT, OFF(dlq_partition), "-1", D, "P", -1, 0, NULL,
     "select this partition of the dead-letter topic (-1: every one)"},
    {"error-class", NULL, OPT_ENUM, OFF(dlq_error_class), "", D, NULL, 0, 0,
     "internal_error|poison", "select dead letters of this class"},
    {"since", NULL, OPT_TIME, OFF(dlq_since), "", D, "RFC3339", 0, 0, NULL,
     "select dead letters written at or after this time"},
    {"by", NULL, OPT_ENUM, OFF(report_by), "day", Q, NULL, 0, 0,
     "day|week|month", "one row per day, week (from Monday) or month, UTC"},
    {"from", NULL, OPT_STR, OFF(report_from), "", Q, "TIME", 0, 0, NULL,
     "orders created at or after this time, e.g. 2026-11-01 or "
     "2026-11-01T12:00:00Z (default: 30 days before --to)"},
    {"to", NULL, OPT_STR, OFF(report_to), "", Q, "TIME", 0, 0, NULL,
     "orders created before this time (default: now)"},
    {"vendor", NULL, OPT_STR, OFF(report_vendor), "", Q, "VENDOR", 0, 0, NULL,
     "only the orders holding this vendor's items"},
    {"format", NULL, OPT_ENUM, OFF(report_format), "text", Q, NULL, 0, 0,
     "text|json", "tables with money in major units, or JSON (minor units)"},
    {"log-level", "ORDERD_LOG_LEVEL", OPT_ENUM, OFF(log_level), "info",
     CONFIG_ALL, NULL, 0, 0, "error|warn|info|debug", "log threshold"},
    {"log-format", "ORDERD_LOG_FORMAT", OPT_ENUM, OFF(log_format), "text",
     CONFIG_ALL, NULL, 0, 0, "text|json", "log lines as text or JSON"},
};

#undef R
#undef M
#undef T
#undef S
#undef P
#undef C
#undef O
#undef E
#undef D
#undef Q
#undef PG

static const char *const cmd_names[CONFIG_NCMDS] = {
    "run",   "migrate", "topics", "send", "replay",
    "check", "order",   "events", "dlq",  "report"};

const char *
config_cmd_name(unsigned cmd)
{
    for (int i = 0; i < CONFIG_NCMDS; i++)
        if (cmd == 1u << i)
            return cmd_names[i];
    return NULL;
}

unsigned
config_cmd_parse(const char *name)
{
    for (int i = 0; i < CONFIG_NCMDS; i++)
        if (strcmp(name, cmd_names[i]) == 0)
            return 1u << i;
    return 0;
}

/* options that hold a value in od_config_t (not -X, -F) */
static int
has_storage(const opt_t *o)
{
    return o->type != OPT_KAFKA_PROP && o->type != OPT_KAFKA_FILE;
}

static int
is_string(const opt_t *o)
{
    return o->type == OPT_STR || o->type == OPT_LIST || o->type == OPT_ENUM ||
           o->type == OPT_TIME || o->type == OPT_CONFIG;
}

static void
set_defaults(od_config_t *cfg)
{
    char err[256];

    for (size_t i = 0; i < OD_ARRAY_LEN(options); i++)
        if (has_storage(&options[i]) &&
            config_set_opt(cfg, &options[i], options[i].def, 0, options[i].name,
                           1, err, sizeof(err)) < 0)
            abort(); /* a bad default is a programming error */
}

/* The row for a file's or a variable's name: one with a variable. */
static const opt_t *
find_settable(const char *name, size_t len)
{
    for (size_t i = 0; i < OD_ARRAY_LEN(options); i++)
        if (options[i].env != NULL && strlen(options[i].name) == len &&
            strncmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

/* The row of a flag for cmd (cmd 0: for any subcommand). */
static const opt_t *
find_flag(const char *name, size_t len, unsigned cmd)
{
    for (size_t i = 0; i < OD_ARRAY_LEN(options); i++)
        if (strlen(options[i].name) == len &&
            strncmp(options[i].name, name, len) == 0 &&
            (cmd == 0 || (options[i].cmds & cmd)))
            return &options[i];
    return NULL;
}

/* "run, topics and send": the subcommands of cmds, into buf */
static const char *
cmds_text(unsigned cmds, char *buf, size_t len)
{
    int n = 0, total = 0;

    for (int i = 0; i < CONFIG_NCMDS; i++)
        if (cmds & (1u << i))
            total++;
    buf[0] = '\0';
    for (int i = 0; i < CONFIG_NCMDS; i++) {
        size_t used = strlen(buf);

        if (!(cmds & (1u << i)))
            continue;
        snprintf(buf + used, len - used, "%s%s",
                 n == 0           ? ""
                 : n == total - 1 ? " and "
                                  : ", ",
                 cmd_names[i]);
        n++;
    }
    return buf;
}

/* where each option of a configuration file was set (line numbers), to
 * refuse a name given twice */
typedef struct file_state {
    od_config_t *cfg;
    int set_at[OD_ARRAY_LEN(options)];
} file_state_t;

static int
file_setting(void *arg, const char *path, int lineno, char *name, char *value,
             char *err, size_t errlen)
{
    file_state_t *fs = arg;
    char where[512];
    const opt_t *o;
    size_t idx;

    for (const char *c = name; *c; c++)
        if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) &&
            *c != '-') {
            od_err(err, errlen,
                   "%s:%d: expected name = value, with a long option "
                   "name (lower case, digits, '-') before the '='",
                   path, lineno);
            return -1;
        }
    o = find_settable(name, strlen(name));
    if (o == NULL) {
        if (find_flag(name, strlen(name), 0) != NULL)
            od_err(err, errlen,
                   "%s:%d: %s is a command-line flag, not a setting of "
                   "a configuration file",
                   path, lineno, name);
        else
            od_err(err, errlen, "%s:%d: unknown option '%s'", path, lineno,
                   name);
        return -1;
    }
    if (o->type == OPT_CONFIG) {
        od_err(err, errlen, "%s:%d: a configuration file cannot name another",
               path, lineno);
        return -1;
    }
    idx = (size_t)(o - options);
    if (fs->set_at[idx] != 0 && o->type != OPT_LIST) {
        od_err(err, errlen, "%s:%d: %s is already set on line %d", path, lineno,
               name, fs->set_at[idx]);
        return -1;
    }
    snprintf(where, sizeof(where), "%s:%d: %s", path, lineno, name);
    if (config_set_opt(fs->cfg, o, value, fs->set_at[idx] != 0, where, 0, err,
                       errlen) < 0)
        return -1;
    fs->set_at[idx] = lineno;
    return 0;
}

int
config_load_file(od_config_t *cfg, const char *path, char *err, size_t errlen)
{
    static const kvfile_kind_t kind = {"configuration file", "name = value",
                                       "name"};
    file_state_t fs = {.cfg = cfg};

    return kvfile_read(path, &kind, file_setting, &fs, err, errlen);
}

/* one flag of the command line, found but not yet applied */
typedef struct config_arg {
    const opt_t *o;
    const char *value; /* NULL for OPT_FLAG */
} config_arg_t;

/*
 * First pass over argv: finds each flag's row for cmd and its value,
 * refusing unknown flags and other subcommands' flags before anything is
 * read or applied. Returns the number of flags in args, -1 with err, or
 * -2 when --help was asked.
 */
static int
scan_args(unsigned cmd, int argc, char **argv, config_arg_t *args, char **pos,
          int npos, int *npos_out, char *err, size_t errlen)
{
    const char *cname = config_cmd_name(cmd);
    int n = 0, np = 0, options_end = 0;

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *name, *value = NULL, *eq;
        size_t len;
        const opt_t *o;

        if (!options_end && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0))
            return -2;
        if (options_end || a[0] != '-' || a[1] == '\0') {
            if (np == npos) {
                od_err(err, errlen, "unexpected argument '%s'", a);
                return -1;
            }
            pos[np++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_end = 1;
            continue;
        }
        /* -X and -F are single letters; everything else is --name */
        name = a[1] == '-' ? a + 2 : a + 1;
        eq = a[1] == '-' ? strchr(name, '=') : NULL;
        len = eq ? (size_t)(eq - name) : strlen(name);
        if ((a[1] == '-') != (len > 1)) {
            od_err(err, errlen, "unknown option '%.*s' (see orderd %s --help)",
                   (int)(name - a + len), a, cname);
            return -1;
        }
        o = find_flag(name, len, cmd);
        if (o == NULL) {
            unsigned others = 0;
            char list[128];

            for (size_t k = 0; k < OD_ARRAY_LEN(options); k++)
                if (strlen(options[k].name) == len &&
                    strncmp(options[k].name, name, len) == 0)
                    others |= options[k].cmds;
            /* the name only, never what follows '=': it may be a secret */
            if (others != 0)
                od_err(err, errlen,
                       "option %.*s does not apply to %s (it is an option "
                       "of %s)",
                       (int)(name - a + len), a, cname,
                       cmds_text(others, list, sizeof(list)));
            else
                od_err(err, errlen,
                       "unknown option '%.*s' (see orderd %s --help)",
                       (int)(name - a + len), a, cname);
            return -1;
        }
        if (o->type == OPT_FLAG) {
            if (eq != NULL) {
                od_err(err, errlen, "option --%s takes no value", o->name);
                return -1;
            }
        } else if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            od_err(err, errlen, "option %s%s needs a value%s%s",
                   len > 1 ? "--" : "-", o->name, o->arg ? ": " : "",
                   o->arg ? o->arg : "");
            return -1;
        }
        /* send: --source NAME=TOPIC:ROLES defines a source, a bare
         * --source NAME picks the one to send to (the next row) */
        if (o->type == OPT_LIST && cmd == CONFIG_SEND &&
            strchr(value, '=') == NULL)
            for (const opt_t *s = o + 1; s < options + OD_ARRAY_LEN(options);
                 s++)
                if (strcmp(s->name, o->name) == 0 && (s->cmds & cmd)) {
                    o = s;
                    break;
                }
        args[n].o = o;
        args[n].value = value;
        n++;
    }
    if (npos_out != NULL)
        *npos_out = np;
    return n;
}

int
config_load(od_config_t *cfg, unsigned cmd, int argc, char **argv, char **pos,
            int npos, int *npos_out, char *err, size_t errlen)
{
    config_arg_t *args = calloc((size_t)argc + 1, sizeof(*args));
    /* a flag replaces what the file or the variable said; a repeated list
     * flag appends to the flags before it */
    unsigned char seen[OD_ARRAY_LEN(options)] = {0};
    const char *file = NULL;
    int n, rc = -1;

    memset(cfg, 0, sizeof(*cfg));
    if (args == NULL) {
        od_err(err, errlen, "out of memory");
        return -1;
    }
    set_defaults(cfg);
    n = scan_args(cmd, argc, argv, args, pos, npos, npos_out, err, errlen);
    if (n == -2) {
        rc = 1;
        goto out;
    }
    if (n < 0)
        goto out;

    for (int i = 0; i < n; i++)
        if (args[i].o->type == OPT_CONFIG)
            file = args[i].value;
    if (file == NULL)
        file = getenv("ORDERD_CONFIG");
    if (file != NULL && *file != '\0' &&
        config_load_file(cfg, file, err, errlen) < 0)
        goto out;

    for (size_t i = 0; i < OD_ARRAY_LEN(options); i++) {
        const opt_t *o = &options[i];
        const char *env = o->env ? getenv(o->env) : NULL;

        /* the same variable on two rows is read once */
        if (env != NULL && find_settable(o->name, strlen(o->name)) == o &&
            config_set_opt(cfg, o, env, 0, o->env, 1, err, errlen) < 0)
            goto out;
    }

    for (int i = 0; i < n; i++) {
        const opt_t *o = args[i].o;
        char where[64];

        switch (o->type) {
        case OPT_KAFKA_PROP:
            if (config_add_kafka_prop(cfg, args[i].value, err, errlen) < 0)
                goto out;
            continue;
        case OPT_KAFKA_FILE:
            if (config_load_kafka_file(cfg, args[i].value, err, errlen) < 0)
                goto out;
            continue;
        case OPT_FLAG:
            *(int64_t *)((char *)cfg + o->offset) = 1;
            continue;
        default:
            break;
        }
        snprintf(where, sizeof(where), "--%s", o->name);
        if (config_set_opt(cfg, o, args[i].value, seen[o - options], where, 1,
                           err, errlen) < 0)
            goto out;
        seen[o - options] = 1;
    }
    rc = 0;
out:
    free(args);
    return rc;
}

int
config_finish(od_config_t *cfg, char *err, size_t errlen)
{
    return sources_parse(&cfg->sources, cfg->source_spec, cfg->commands_topic,
                         err, errlen);
}

/* Prints text wrapped at about 76 columns, each line indented. */
static void
print_wrapped(FILE *out, const char *text, int indent)
{
    const int width = 76 - indent;

    while (*text != '\0') {
        int n = (int)strlen(text), cut = n;

        if (n > width) {
            cut = width;
            while (cut > 0 && text[cut] != ' ')
                cut--;
            if (cut == 0)
                cut = width;
        }
        fprintf(out, "%*s%.*s\n", indent, "", cut, text);
        text += cut;
        while (*text == ' ')
            text++;
    }
}

void
config_usage(FILE *out, unsigned cmds)
{
    fprintf(out, "options (a flag overrides its variable, which overrides "
                 "--config FILE):\n");
    for (size_t i = 0; i < OD_ARRAY_LEN(options); i++) {
        const opt_t *o = &options[i];
        const char *arg = o->arg;
        char flag[64], def[96];

        if (!(o->cmds & cmds))
            continue;
        if (arg == NULL)
            arg = o->type == OPT_DURATION ? "DURATION"
                  : o->type == OPT_BOOL   ? "true|false"
                  : o->type == OPT_ENUM   ? o->choices
                  : o->type == OPT_INT    ? "N"
                                          : "VALUE";
        if (o->type == OPT_FLAG)
            snprintf(flag, sizeof(flag), "--%s", o->name);
        else
            snprintf(flag, sizeof(flag), "%s%s %s",
                     strlen(o->name) > 1 ? "--" : "-", o->name, arg);
        if (o->def == NULL || o->type == OPT_FLAG ||
            (o->env == NULL && o->def[0] == '\0'))
            def[0] = '\0';
        else
            snprintf(def, sizeof(def), "default %s",
                     o->def[0] ? o->def : "\"\"");
        if (o->env == NULL && def[0] == '\0')
            fprintf(out, "  %s\n", flag);
        else
            fprintf(out, "  %-28s%s%s%s%s\n", flag,
                    strlen(flag) > 28 ? "\n                               "
                                      : " ",
                    o->env ? o->env : "", o->env && def[0] ? ", " : "", def);
        print_wrapped(out, o->help, 6);
    }
}

void
config_free(od_config_t *cfg)
{
    for (size_t i = 0; i < OD_ARRAY_LEN(options); i++)
        if (is_string(&options[i])) {
            char **p = (char **)((char *)cfg + options[i].offset);

            /* two rows may share a field (--dry-run, --raw) */
            free(*p);
            *p = NULL;
        }
    sources_free(&cfg->sources);
    for (int i = 0; i < cfg->nkafka; i++) {
        free(cfg->kafka_keys[i]);
        free(cfg->kafka_values[i]);
    }
    memset(cfg, 0, sizeof(*cfg));
}
