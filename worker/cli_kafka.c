/* cli_kafka.c - orderd topics, send and replay: the Kafka-facing commands */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../handlers/command.h"
#include "cli.h"
#include "db.h"
#include "kafka.h"
#include "log.h"

int
cli_topics(const od_config_t *cfg)
{
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_NewTopic_t *nt[SOURCES_MAX + 2];
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    const rd_kafka_CreateTopics_result_t *res;
    const rd_kafka_topic_result_t **tr;
    size_t ntr;
    char err[512], errstr[512];
    const char *names[SOURCES_MAX + 2];
    int parts[SOURCES_MAX + 2];
    int n = 0, rc = 0;

    /* every source's topic, then the events and dead-letter topics */
    for (int i = 0; i < cfg->sources.n; i++) {
        names[n] = cfg->sources.items[i].topic;
        parts[n++] = (int)cfg->partitions;
    }
    names[n] = cfg->events_topic;
    parts[n++] = (int)cfg->partitions;
    names[n] = cfg->dlq_topic;
    parts[n++] = 1;

    conf = kafka_conf_new(cfg, "orderd-admin", NULL, err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "orderd topics: %s\n", err);
        return 2;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "orderd topics: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    for (int i = 0; i < n; i++)
        nt[i] = rd_kafka_NewTopic_new(names[i], parts[i], -1, errstr,
                                      sizeof(errstr));
    q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nt, (size_t)n, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (ev == NULL || rd_kafka_event_error(ev)) {
        fprintf(stderr, "orderd topics: could not create topics: %s\n",
                ev ? rd_kafka_event_error_string(ev) : "timed out");
        rc = 1;
    } else {
        res = rd_kafka_event_CreateTopics_result(ev);
        tr = rd_kafka_CreateTopics_result_topics(res, &ntr);
        for (size_t i = 0; i < ntr; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);

            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                printf("created %s\n", rd_kafka_topic_result_name(tr[i]));
            else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                printf("exists  %s\n", rd_kafka_topic_result_name(tr[i]));
            else {
                fprintf(stderr, "orderd topics: %s: %s\n",
                        rd_kafka_topic_result_name(tr[i]),
                        rd_kafka_topic_result_error_string(tr[i]));
                rc = 1;
            }
        }
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_NewTopic_destroy_array(nt, (size_t)n);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

/* smallest positive id among items[].product_id, or 0 */
static int64_t
min_item_product(const json_t *items)
{
    size_t i;
    const json_t *it;
    int64_t best = 0;

    json_array_foreach(items, i, it)
    {
        int64_t id;
        char err[8];

        if (json_field_id(it, "product_id", 1, &id, err, sizeof(err)) == 0 &&
            (best == 0 || id < best))
            best = id;
    }
    return best;
}

int
cli_command_key(const char *line, size_t len, char *key, size_t keylen)
{
    json_t *root = json_loadb(line, len, 0, NULL);
    const char *s;
    int64_t id = 0;
    char err[8];

    if (!json_is_object(root)) {
        json_decref(root);
        return -1;
    }
    if (json_is_array(json_object_get(root, "items")))
        id = min_item_product(json_object_get(root, "items"));
    if (id == 0 &&
        json_field_id(root, "product_id", 1, &id, err, sizeof(err)) < 0)
        id = 0;
    if (id > 0)
        snprintf(key, keylen, "%" PRId64, id);
    else if ((s = json_string_value(json_object_get(root, "order_id"))))
        snprintf(key, keylen, "%s", s);
    else if ((s = json_string_value(json_object_get(root, "country"))))
        snprintf(key, keylen, "%s", s);
    else if ((s = json_string_value(json_object_get(root, "dedup_key"))))
        snprintf(key, keylen, "%s", s);
    else
        key[0] = '\0';
    json_decref(root);
    return 0;
}

static void
send_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    int *failed = opaque;

    (void)rk;
    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "orderd send: delivery failed: %s\n",
                rd_kafka_err2str(rkm->err));
        (*failed)++;
    }
}

/*
 * The worker's own checks of one line, those that need no database: the
 * envelope and the handler's parse (command_parse), event-time bounds
 * against a message sent now, and the roles the source and the type
 * admit. Returns 0, or -1 with err saying why the worker would refuse it.
 */
static int
send_check_line(const od_config_t *cfg, const od_source_t *src,
                const char *line, size_t len, char *err, size_t errlen)
{
    cmd_env_t env;
    char perr[256];
    int64_t now = od_now_us();
    int rc = -1;

    switch (command_parse(line, len, now, &env, perr, sizeof(perr))) {
    case CMD_PARSE_POISON:
        od_err(err, errlen, "would go to the dead-letter topic: %s", perr);
        goto out;
    case CMD_PARSE_INVALID:
        od_err(err, errlen, "invalid_command: %s", perr);
        goto out;
    case CMD_PARSE_OK:
        break;
    }
    if (command_check_event_time(&env, now, now, cfg->max_clock_skew_ms * 1000,
                                 cfg->max_event_age_ms * 1000, perr,
                                 sizeof(perr)) < 0) {
        od_err(err, errlen, "invalid_command: %s", perr);
        goto out;
    }
    if ((env.role & src->roles) == 0) {
        od_err(err, errlen, "unauthorized: source '%s' does not admit role %s",
               src->name, cmd_role_name(env.role));
        goto out;
    }
    if ((env.role & env.handler->roles) == 0) {
        od_err(err, errlen, "unauthorized: role %s may not send %s",
               cmd_role_name(env.role), env.handler->type);
        goto out;
    }
    rc = 0;
out:
    command_env_free(&env);
    return rc;
}

/*
 * Reads all of stdin into *buf (caller frees) and checks every line with
 * send_check_line, reporting each bad one. Returns the number of bad
 * lines, or -1 when stdin could not be read.
 */
static long
send_validate(const od_config_t *cfg, const od_source_t *src, char **buf,
              size_t *buflen)
{
    size_t cap = 65536, len = 0, r;
    char *p, *end, *nl;
    long lineno = 0, bad = 0;
    char err[512];

    *buf = malloc(cap);
    if (*buf == NULL)
        return -1;
    while ((r = fread(*buf + len, 1, cap - len, stdin)) > 0) {
        len += r;
        if (len == cap) {
            char *more = realloc(*buf, cap *= 2);

            if (more == NULL)
                return -1;
            *buf = more;
        }
    }
    if (ferror(stdin))
        return -1;
    *buflen = len;
    for (p = *buf, end = *buf + len; p < end; p = nl + 1) {
        size_t n;

        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            nl = end;
        lineno++;
        n = (size_t)(nl - p);
        while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
            n--;
        if (n == 0)
            continue;
        if (send_check_line(cfg, src, p, n, err, sizeof(err)) < 0) {
            fprintf(stderr, "orderd send: line %ld: %s\n", lineno, err);
            bad++;
        }
    }
    return bad;
}

int
cli_send(const od_config_t *cfg, int raw, const char *source_name, int validate)
{
    static const char *const defaults[] = {
        "enable.idempotence", "true", "acks", "all", "linger.ms", "5", NULL};
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    char err[512], errstr[512], key[256];
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0, sent = 0, bad = 0;
    int failed = 0, rc;
    FILE *in = stdin;
    char *all = NULL;
    size_t all_len = 0;
    const od_source_t *src = sources_by_name(
        &cfg->sources, source_name ? source_name : SOURCE_DEFAULT);

    if (src == NULL || strcmp(src->name, SOURCE_ORDERD) == 0) {
        char names[SOURCES_MAX * (SOURCE_NAME_MAX + 2)] = "";

        for (int i = 0; i < cfg->sources.n; i++) {
            strcat(names, i ? ", " : "");
            strcat(names, cfg->sources.items[i].name);
        }
        fprintf(stderr,
                "orderd send: no source '%s' is configured (give --source "
                "NAME, one of: %s)\n",
                source_name ? source_name : SOURCE_DEFAULT, names);
        return 2;
    }
    if (validate && raw) {
        fprintf(stderr, "orderd send: --validate and --raw exclude each "
                        "other\n");
        return 2;
    }
    /* every line is checked before the first is produced: a file of
     * commands goes whole or not at all */
    if (validate) {
        bad = send_validate(cfg, src, &all, &all_len);
        if (bad != 0) {
            if (bad < 0)
                fprintf(stderr, "orderd send: could not read stdin\n");
            else
                fprintf(stderr,
                        "orderd send: %ld invalid line(s), nothing sent\n",
                        bad);
            free(all);
            return 2;
        }
        if (all_len > 0 && (in = fmemopen(all, all_len, "r")) == NULL) {
            fprintf(stderr, "orderd send: out of memory\n");
            free(all);
            return 2;
        }
    }
    conf = kafka_conf_new(cfg, "orderd-send", defaults, err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "orderd send: %s\n", err);
        rc = 2;
        goto out;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, send_dr_cb);
    rd_kafka_conf_set_opaque(conf, &failed);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "orderd send: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        rc = 2;
        goto out;
    }
    while ((n = getline(&line, &cap, in)) >= 0) {
        rd_kafka_resp_err_t e;

        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        if (cli_command_key(line, (size_t)n, key, sizeof(key)) < 0) {
            if (!raw) {
                fprintf(stderr,
                        "orderd send: line %ld is not a JSON object "
                        "(use --raw to send it anyway)\n",
                        lineno);
                bad++;
                continue;
            }
            key[0] = '\0';
        }
        do {
            e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(src->topic),
                RD_KAFKA_V_KEY(key[0] ? key : NULL, strlen(key)),
                RD_KAFKA_V_VALUE(line, (size_t)n),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(rk, 100);
        } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "orderd send: line %ld: %s\n", lineno,
                    rd_kafka_err2str(e));
            bad++;
            continue;
        }
        sent++;
        rd_kafka_poll(rk, 0);
    }
    free(line);
    if (rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "orderd send: timed out waiting for deliveries\n");
        failed++;
    }
    rd_kafka_destroy(rk);
    fprintf(stderr, "orderd send: %ld sent, %d failed, %ld refused\n",
            sent - failed, failed, bad);
    rc = failed == 0 && bad == 0 ? 0 : 1;
out:
    if (in != stdin)
        fclose(in);
    free(all);
    return rc;
}

/* one readable line for an event */
static void
print_event(const json_t *ev, int raw, const char *payload, size_t len)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    const json_t *order = json_object_get(ev, "order");

    if (raw || type == NULL) {
        printf("%.*s\n", (int)len, payload);
        return;
    }
    if (strcmp(type, "command.result") == 0) {
        const char *reason = json_string_value(json_object_get(ev, "reason"));

        printf("%-9s %-16s %-22s",
               json_string_value(json_object_get(ev, "outcome")),
               json_string_value(json_object_get(ev, "command_type"))
                   ? json_string_value(json_object_get(ev, "command_type"))
                   : "?",
               json_string_value(json_object_get(ev, "dedup_key")));
        if (reason != NULL)
            printf(" reason=%s", reason);
        if (json_is_object(order))
            printf(" order=%s status=%s total=%lld %s",
                   json_string_value(json_object_get(order, "number")),
                   json_string_value(json_object_get(order, "status")),
                   (long long)json_integer_value(
                       json_object_get(order, "total_cents")),
                   json_string_value(json_object_get(order, "currency")));
        if (json_object_size(json_object_get(ev, "details")) > 0) {
            char *d = json_dumps(json_object_get(ev, "details"), JSON_COMPACT);

            printf(" details=%s", d);
            free(d);
        }
        printf("\n");
    } else {
        char *copy = json_dumps(ev, JSON_COMPACT);

        printf("event     %-16s %s\n", type, copy);
        free(copy);
    }
    fflush(stdout);
}

int
cli_events(const od_config_t *cfg, long count, int timeout_s, int raw)
{
    static const char *const defaults[] = {
        "group.id", "orderd-events-reader", "enable.auto.commit",
        "false",    "auto.offset.reset",    "earliest",
        NULL};
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *l;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt;
    char err[512], errstr[512];
    long seen = 0;
    int64_t end;

    conf = kafka_conf_new(cfg, "orderd-events", defaults, err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "orderd events: %s\n", err);
        return 2;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "orderd events: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    rkt = rd_kafka_topic_new(rk, cfg->events_topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != 0 || md->topic_cnt != 1 ||
        md->topics[0].partition_cnt == 0) {
        fprintf(stderr, "orderd events: no topic %s\n", cfg->events_topic);
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(rk);
        return 1;
    }
    l = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int p = 0; p < md->topics[0].partition_cnt; p++)
        rd_kafka_topic_partition_list_add(l, cfg->events_topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);

    end = od_mono_us() + (int64_t)timeout_s * 1000000;
    while ((count == 0 || seen < count) &&
           (timeout_s == 0 || od_mono_us() < end)) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
        json_t *ev;

        if (rkm == NULL)
            continue;
        if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            ev = json_loadb(rkm->payload, rkm->len, 0, NULL);
            print_event(ev, raw, rkm->payload, rkm->len);
            json_decref(ev);
            seen++;
        }
        rd_kafka_message_destroy(rkm);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (count > 0 && seen < count) {
        fprintf(stderr, "orderd events: %ld of %ld events within %ds\n", seen,
                count, timeout_s);
        return 1;
    }
    return 0;
}
