/* kafka.c - librdkafka configuration shared by every Kafka client */
#include "kafka.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

static void
kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 3)
        log_error("kafka %s: %s", fac, buf);
    else if (level <= 4)
        log_warn("kafka %s: %s", fac, buf);
    else
        log_debug("kafka %s: %s", fac, buf);
}

int
kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
               char *err, size_t errlen)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        /* never echo the value: it may be a password, and librdkafka's
         * own message quotes the value for some properties */
        if (config_kafka_secret(key) && value[0] != '\0' &&
            strstr(errstr, value) != NULL)
            od_err(err, errlen, "kafka property %s: invalid value", key);
        else
            od_err(err, errlen, "kafka property %s: %s", key, errstr);
        return -1;
    }
    return 0;
}

/*
 * Every client's network bounds (docs/operations.md, "Network faults"): a
 * request without an answer in socket.timeout.ms fails and its connection
 * is torn down and made again, so a black-holed or half-open broker
 * connection holds a fetch, a produce or a heartbeat for 30 s at most
 * (librdkafka's default is 60 s); TCP keepalives let the kernel notice a
 * vanished peer on an idle connection; reconnects back off, with
 * librdkafka's own jitter, from 100 ms to 10 s, so a broker coming back
 * does not meet a storm. -X overrides each of them.
 */
static const char *const kafka_net_defaults[] = {
    "socket.timeout.ms",
    "30000", /* an unanswered request */
    "socket.keepalive.enable",
    "true", /* a vanished peer, idle */
    "reconnect.backoff.ms",
    "100", /* first reconnect */
    "reconnect.backoff.max.ms",
    "10000", /* reconnects after that */
    NULL};

rd_kafka_conf_t *
kafka_conf_new(const od_config_t *cfg, const char *client_id,
               const char *const *defaults, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    if (kafka_conf_set(conf, "bootstrap.servers", cfg->brokers, err, errlen) <
            0 ||
        kafka_conf_set(conf, "client.id", client_id, err, errlen) < 0)
        goto fail;
    for (const char *const *d = kafka_net_defaults; d[0] != NULL; d += 2)
        if (kafka_conf_set(conf, d[0], d[1], err, errlen) < 0)
            goto fail;
    for (; defaults != NULL && defaults[0] != NULL; defaults += 2)
        if (kafka_conf_set(conf, defaults[0], defaults[1], err, errlen) < 0)
            goto fail;
    for (int i = 0; i < cfg->nkafka; i++)
        if (kafka_conf_set(conf, cfg->kafka_keys[i], cfg->kafka_values[i], err,
                           errlen) < 0)
            goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

int
kafka_conf_check(const od_config_t *cfg, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = kafka_conf_new(cfg, "orderd", NULL, err, errlen);

    if (conf == NULL)
        return -1;
    rd_kafka_conf_destroy(conf);
    return 0;
}
