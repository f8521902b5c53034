/* config_kafka.c - librdkafka properties for every Kafka client: -F files
 * (kcat's format), -X key=value, and which of them are secrets */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "kvfile.h"

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

int
config_add_kafka_prop(od_config_t *cfg, const char *kv, char *err,
                      size_t errlen)
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
file_property(void *arg, const char *path, int lineno, char *key, char *value,
              char *err, size_t errlen)
{
    od_config_t *cfg = arg;
    char why[128];

    for (const char *c = key; *c; c++)
        if (*c == ' ' || *c == '\t') {
            od_err(err, errlen, "%s:%d: a key cannot contain blanks", path,
                   lineno);
            return -1;
        }
    if (insert_kafka_prop(cfg, cfg->nkafka_file, key, strlen(key), value, err,
                          errlen) < 0) {
        snprintf(why, sizeof(why), "%s", err);
        od_err(err, errlen, "%s:%d: %s", path, lineno, why);
        return -1;
    }
    cfg->nkafka_file++;
    return 0;
}

int
config_load_kafka_file(od_config_t *cfg, const char *path, char *err,
                       size_t errlen)
{
    static const kvfile_kind_t kind = {"-F file", "key=value", "key"};

    return kvfile_read(path, &kind, file_property, cfg, err, errlen);
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
