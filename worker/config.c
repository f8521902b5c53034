/* config.c - the configuration table: flags, ORDERD_* variables, --help;
 * librdkafka properties from -F files and -X */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

/* OPT_LIST: a repeatable flag whose values are joined with ';' (the
 * variable gives the joined form itself) */
typedef enum opt_type {
    OPT_STR,
    OPT_INT,
    OPT_DURATION,
    OPT_BOOL,
    OPT_LIST
} opt_type_t;

typedef struct opt {
    const char *name; /* flag without the leading -- */
    const char *env;
    opt_type_t type;
    size_t offset;
    const char *def;
    const char *help;
} opt_t;

#define OFF(f) offsetof(od_config_t, f)

static const opt_t options[] = {
    {"pg", "ORDERD_PG", OPT_STR, OFF(pg), "",
     "libpq connection string (empty: the standard PG* variables)"},
    {"migrate-pg", "ORDERD_MIGRATE_PG", OPT_STR, OFF(migrate_pg), "",
     "migrate: connection string of the schema owner (empty: --pg)"},
    {"brokers", "ORDERD_BROKERS", OPT_STR, OFF(brokers), "127.0.0.1:9092",
     "Kafka bootstrap servers"},
    {"group", "ORDERD_GROUP", OPT_STR, OFF(group), "orderd",
     "consumer group (offsets are stored in Postgres under this name)"},
    {"commands-topic", "ORDERD_COMMANDS_TOPIC", OPT_STR, OFF(commands_topic),
     "orders.commands", "input topic"},
    {"source", "ORDERD_SOURCES", OPT_LIST, OFF(source_spec), "",
     "NAME=TOPIC:ROLE[,ROLE...], repeatable (variable: ';' between): the "
     "roles a topic's commands may claim (none: --commands-topic admits "
     "every role)"},
    {"events-topic", "ORDERD_EVENTS_TOPIC", OPT_STR, OFF(events_topic),
     "orders.events", "result and domain events topic"},
    {"dlq-topic", "ORDERD_DLQ_TOPIC", OPT_STR, OFF(dlq_topic),
     "orders.commands.dlq", "dead-letter topic"},
    {"partitions", "ORDERD_PARTITIONS", OPT_INT, OFF(partitions), "6",
     "partitions of the commands and events topics (orderd topics)"},
    {"threads", "ORDERD_THREADS", OPT_INT, OFF(threads), "0",
     "executor threads (0: one per core)"},
    {"batch-size", "ORDERD_BATCH_SIZE", OPT_INT, OFF(batch_size), "50",
     "commands per transaction at most (keep it under 64: see "
     "docs/performance.md)"},
    {"batch-wait-ms", "ORDERD_BATCH_WAIT_MS", OPT_INT, OFF(batch_wait_ms), "5",
     "how long a batch waits to fill"},
    {"default-tax-bps", "ORDERD_DEFAULT_TAX_BPS", OPT_INT, OFF(default_tax_bps),
     "0", "tax rate (basis points) for countries without a tax_rate_set"},
    {"pending-ttl", "ORDERD_PENDING_TTL", OPT_DURATION, OFF(pending_ttl_ms),
     "15m", "how long a pending order waits for payment"},
    {"expiry-grace", "ORDERD_EXPIRY_GRACE", OPT_DURATION, OFF(expiry_grace_ms),
     "0s", "a payment this late after the deadline is still accepted"},
    {"expiry-interval", "ORDERD_EXPIRY_INTERVAL", OPT_DURATION,
     OFF(expiry_interval_ms), "5s", "expiry scheduler scan interval"},
    {"defer-timeout", "ORDERD_DEFER_TIMEOUT", OPT_DURATION,
     OFF(defer_timeout_ms), "10m",
     "how long a command for an unknown order stays parked"},
    {"max-clock-skew", "ORDERD_MAX_CLOCK_SKEW", OPT_DURATION,
     OFF(max_clock_skew_ms), "5m",
     "issued_at may be this far after the Kafka timestamp"},
    {"max-event-age", "ORDERD_MAX_EVENT_AGE", OPT_DURATION,
     OFF(max_event_age_ms), "72h",
     "issued_at may be this far before the Kafka timestamp"},
    {"dedup-retention", "ORDERD_DEDUP_RETENTION", OPT_DURATION,
     OFF(dedup_retention_ms), "30d",
     "dedup rows kept at least this long (must cover any replay window)"},
    {"outbox-retention", "ORDERD_OUTBOX_RETENTION", OPT_DURATION,
     OFF(outbox_retention_ms), "7d", "published outbox rows kept this long"},
    {"order-prefix", "ORDERD_ORDER_PREFIX", OPT_STR, OFF(order_prefix), "ORD-",
     "prefix of human order numbers"},
    {"on-internal-error", "ORDERD_ON_INTERNAL_ERROR", OPT_STR,
     OFF(on_internal_error), "continue",
     "continue (reject internal_error, DLQ copy) or halt"},
    {"metrics-addr", "ORDERD_METRICS_ADDR", OPT_STR, OFF(metrics_addr),
     "127.0.0.1:9464", "metrics and health endpoint (off: none)"},
    {"http-max-connections", "ORDERD_HTTP_MAX_CONNECTIONS", OPT_INT,
     OFF(http_max_connections), "4096",
     "connections the metrics endpoint holds at once"},
    {"http-timeout", "ORDERD_HTTP_TIMEOUT", OPT_DURATION, OFF(http_timeout_ms),
     "10s", "the metrics endpoint closes a connection idle this long"},
    {"log-level", "ORDERD_LOG_LEVEL", OPT_STR, OFF(log_level), "info",
     "error, warn, info or debug"},
    {"log-format", "ORDERD_LOG_FORMAT", OPT_STR, OFF(log_format), "text",
     "text or json"},
    {"schema-dir", "ORDERD_SCHEMA_DIR", OPT_STR, OFF(schema_dir), "",
     "migrate: directory of the NNNN_*.sql migrations (empty: "
     "share/orderd/schema beside the binary's bin/)"},
    {"scheduler", "ORDERD_SCHEDULER", OPT_BOOL, OFF(scheduler), "true",
     "run the expiry scheduler and retention purge in this process"},
    {"max-messages", "ORDERD_MAX_MESSAGES", OPT_INT, OFF(max_messages), "0",
     "run: exit after applying this many messages (0: run until stopped)"},
};

int
config_parse_duration(const char *s, int64_t *ms)
{
    char *end;
    long long n;
    int64_t mult = 1000;

    errno = 0;
    if (!isdigit((unsigned char)*s))
        return -1;
    n = strtoll(s, &end, 10);
    if (errno != 0 || n < 0)
        return -1;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        mult = 3600 * 1000;
    else if (strcmp(end, "d") == 0)
        mult = 86400LL * 1000;
    else
        return -1;
    if (__builtin_mul_overflow((int64_t)n, mult, ms))
        return -1;
    return 0;
}

/* append: a repeated OPT_LIST flag adds to the values given before it */
static int
set_opt(od_config_t *cfg, const opt_t *o, const char *value, int append,
        char *err, size_t errlen)
{
    char *base = (char *)cfg;

    switch (o->type) {
    case OPT_LIST: {
        char **dst = (char **)(base + o->offset);
        size_t len;
        char *joined;

        if (!append || *dst == NULL || **dst == '\0')
            break;
        len = strlen(*dst) + strlen(value) + 2;
        joined = malloc(len);
        if (joined == NULL)
            return -1;
        snprintf(joined, len, "%s;%s", *dst, value);
        free(*dst);
        *dst = joined;
        return 0;
    }
    default:
        break;
    }
    switch (o->type) {
    case OPT_LIST:
    case OPT_STR: {
        char **dst = (char **)(base + o->offset);
        char *copy = strdup(value);

        if (copy == NULL)
            return -1;
        free(*dst);
        *dst = copy;
        return 0;
    }
    case OPT_INT: {
        char *end;
        long long n;

        errno = 0;
        n = strtoll(value, &end, 10);
        if (errno != 0 || *value == '\0' || *end != '\0' || n < 0) {
            od_err(err, errlen, "--%s: '%s' is not a non-negative integer",
                   o->name, value);
            return -1;
        }
        *(int64_t *)(base + o->offset) = n;
        return 0;
    }
    case OPT_DURATION:
        if (config_parse_duration(value, (int64_t *)(base + o->offset)) < 0) {
            od_err(err, errlen,
                   "--%s: '%s' is not a duration (e.g. 500ms, 5s, 15m, 30d)",
                   o->name, value);
            return -1;
        }
        return 0;
    case OPT_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0 ||
            strcmp(value, "on") == 0)
            *(int64_t *)(base + o->offset) = 1;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0 ||
                 strcmp(value, "off") == 0)
            *(int64_t *)(base + o->offset) = 0;
        else {
            od_err(err, errlen, "--%s: '%s' is not true or false", o->name,
                   value);
            return -1;
        }
        return 0;
    }
    return -1;
}

void
config_init(od_config_t *cfg)
{
    char err[256];

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < OD_ARRAY_LEN(options); i++) {
        const char *env = getenv(options[i].env);

        if (set_opt(cfg, &options[i], options[i].def, 0, err, sizeof(err)) < 0)
            abort(); /* a bad default is a programming error */
        if (env != NULL &&
            set_opt(cfg, &options[i], env, 0, err, sizeof(err)) < 0)
            fprintf(stderr, "orderd: ignoring %s: %s\n", options[i].env, err);
    }
}

/*
 * Inserts one librdkafka property at index at, moving later ones up, so
 * properties read from -F files stay in front of every -X whatever the
 * order of the flags: the command line has the last word.
 */
static OD_MUSTCHECK int
insert_kafka_prop(od_config_t *cfg, int at, const char *key, size_t keylen,
                  const char *value, char *err, size_t errlen)
{
    char *k, *v;

    if (cfg->nkafka == CONFIG_MAX_KAFKA_PROPS) {
        od_err(err, errlen, "too many Kafka properties (at most %d)",
               CONFIG_MAX_KAFKA_PROPS);
        return -1;
    }
    k = strndup(key, keylen);
    v = strdup(value);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        od_err(err, errlen, "out of memory");
        return -1;
    }
    memmove(&cfg->kafka_keys[at + 1], &cfg->kafka_keys[at],
            (size_t)(cfg->nkafka - at) * sizeof(cfg->kafka_keys[0]));
    memmove(&cfg->kafka_values[at + 1], &cfg->kafka_values[at],
            (size_t)(cfg->nkafka - at) * sizeof(cfg->kafka_values[0]));
    cfg->kafka_keys[at] = k;
    cfg->kafka_values[at] = v;
    cfg->nkafka++;
    return 0;
}

static OD_MUSTCHECK int
add_kafka_prop(od_config_t *cfg, const char *kv, char *err, size_t errlen)
{
    const char *eq = strchr(kv, '=');

    if (eq == NULL) {
        od_err(err, errlen, "-X takes key=value, not '%s'", kv);
        return -1;
    }
    if (eq == kv) {
        /* the text after '=' may be a secret: never echo it */
        od_err(err, errlen, "-X takes key=value: the key is missing");
        return -1;
    }
    return insert_kafka_prop(cfg, cfg->nkafka, kv, (size_t)(eq - kv), eq + 1,
                             err, errlen);
}

static int
is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
config_load_kafka_file(od_config_t *cfg, const char *path, char *err,
                       size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = -1;

    if (f == NULL) {
        od_err(err, errlen, "could not open -F file %s: %s", path,
               strerror(errno));
        return -1;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *key = line, *eq, *kend, *value;

        lineno++;
        while (len > 0 && is_blank((unsigned char)line[len - 1]))
            line[--len] = '\0';
        while (is_blank((unsigned char)*key))
            key++;
        if (*key == '\0' || *key == '#')
            continue;
        /* Never quote the line back: a misplaced password would reach the
         * terminal, a log or a CI transcript. */
        if (strlen(key) != (size_t)(len - (key - line))) {
            od_err(err, errlen, "%s:%d: NUL byte in line", path, lineno);
            goto out;
        }
        eq = strchr(key, '=');
        if (eq == NULL) {
            od_err(err, errlen, "%s:%d: expected key=value", path, lineno);
            goto out;
        }
        kend = eq;
        while (kend > key && is_blank((unsigned char)kend[-1]))
            kend--;
        if (kend == key) {
            od_err(err, errlen, "%s:%d: expected key=value, the key is empty",
                   path, lineno);
            goto out;
        }
        for (const char *c = key; c < kend; c++)
            if (is_blank((unsigned char)*c)) {
                od_err(err, errlen, "%s:%d: a key cannot contain blanks", path,
                       lineno);
                goto out;
            }
        value = eq + 1;
        while (is_blank((unsigned char)*value))
            value++;
        if (insert_kafka_prop(cfg, cfg->nkafka_file, key, (size_t)(kend - key),
                              value, err, errlen) < 0) {
            char why[128];

            snprintf(why, sizeof(why), "%s", err);
            od_err(err, errlen, "%s:%d: %s", path, lineno, why);
            goto out;
        }
        cfg->nkafka_file++;
    }
    if (ferror(f)) {
        od_err(err, errlen, "could not read -F file %s: %s", path,
               strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(line);
    fclose(f);
    return rc;
}

int
config_kafka_secret(const char *key)
{
    static const char *const secret[] = {
        "sasl.password",
        "ssl.key.password",
        "ssl.keystore.password",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.config",
        "ssl.key.pem",
        "ssl_key",
    };
    size_t len = strlen(key);

    for (size_t i = 0; i < OD_ARRAY_LEN(secret); i++)
        if (strcasecmp(key, secret[i]) == 0)
            return 1;
    /* whatever a later librdkafka or plugin calls a password or secret */
    return (len >= 9 && strcasecmp(key + len - 9, ".password") == 0) ||
           (len >= 6 && strcasecmp(key + len - 6, "secret") == 0);
}

void
config_kafka_props_masked(const od_config_t *cfg, char *out, size_t len)
{
    size_t used = 0;

    if (len == 0)
        return;
    out[0] = '\0';
    for (int i = 0; i < cfg->nkafka && used < len; i++) {
        int n = snprintf(
            out + used, len - used, "%s%s=%s", i ? " " : "", cfg->kafka_keys[i],
            config_kafka_secret(cfg->kafka_keys[i]) ? "***"
                                                    : cfg->kafka_values[i]);

        if (n < 0)
            break;
        used += (size_t)n;
    }
}

int
config_parse(od_config_t *cfg, int argc, char **argv, config_extra_fn extra,
             void *extra_arg, char **pos, int npos, int *npos_out, char *err,
             size_t errlen)
{
    int n = 0;
    /* a flag replaces the variable's value; a repeated list flag appends */
    unsigned char seen[OD_ARRAY_LEN(options)] = {0};

    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const opt_t *o = NULL;
        const char *value = NULL;
        int used;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return 1;
        if (strcmp(a, "-X") == 0) {
            if (i + 1 >= argc) {
                od_err(err, errlen, "-X needs key=value");
                return -1;
            }
            if (add_kafka_prop(cfg, argv[++i], err, errlen) < 0)
                return -1;
            continue;
        }
        if (strcmp(a, "-F") == 0) {
            if (i + 1 >= argc) {
                od_err(err, errlen, "-F needs a file name");
                return -1;
            }
            if (config_load_kafka_file(cfg, argv[++i], err, errlen) < 0)
                return -1;
            continue;
        }
        if (extra != NULL && (used = extra(argc, argv, i, extra_arg)) > 0) {
            i += used - 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (n == npos) {
                od_err(err, errlen, "unexpected argument '%s'", a);
                return -1;
            }
            pos[n++] = argv[i];
            continue;
        }
        for (size_t k = 0; k < OD_ARRAY_LEN(options); k++) {
            size_t len = strlen(options[k].name);

            if (strncmp(a + 2, options[k].name, len) == 0 &&
                (a[2 + len] == '\0' || a[2 + len] == '=')) {
                o = &options[k];
                if (a[2 + len] == '=')
                    value = a + 3 + len;
                break;
            }
        }
        if (o == NULL) {
            od_err(err, errlen, "unknown option '%s' (see --help)", a);
            return -1;
        }
        if (value == NULL) {
            if (i + 1 >= argc) {
                od_err(err, errlen, "--%s needs a value", o->name);
                return -1;
            }
            value = argv[++i];
        }
        if (set_opt(cfg, o, value, seen[o - options], err, errlen) < 0)
            return -1;
        seen[o - options] = 1;
    }
    if (npos_out != NULL)
        *npos_out = n;
    return 0;
}

int
config_finish(od_config_t *cfg, char *err, size_t errlen)
{
    return sources_parse(&cfg->sources, cfg->source_spec, cfg->commands_topic,
                         err, errlen);
}

void
config_usage(FILE *out)
{
    fprintf(out, "options (flag, environment variable, default):\n");
    for (size_t i = 0; i < OD_ARRAY_LEN(options); i++)
        fprintf(out, "  --%-20s %-26s %-16s %s\n", options[i].name,
                options[i].env, options[i].def[0] ? options[i].def : "\"\"",
                options[i].help);
    fprintf(out, "  -F FILE                  librdkafka properties file "
                 "(key=value lines, # comments;\n"
                 "                           read before any -X, as kcat; "
                 "keeps secrets off the command line)\n");
    fprintf(out, "  -X key=value             any librdkafka property "
                 "(as kcat)\n");
}

void
config_free(od_config_t *cfg)
{
    for (size_t i = 0; i < OD_ARRAY_LEN(options); i++)
        if (options[i].type == OPT_STR || options[i].type == OPT_LIST)
            free(*(char **)((char *)cfg + options[i].offset));
    sources_free(&cfg->sources);
    for (int i = 0; i < cfg->nkafka; i++) {
        free(cfg->kafka_keys[i]);
        free(cfg->kafka_values[i]);
    }
    memset(cfg, 0, sizeof(*cfg));
}
