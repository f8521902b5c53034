/* consumer.c - one executor's Kafka consumer: subscribe, rebalance with
 * offsets from Postgres, poll, seek, lag-tooling commits
 *
 * DESIGN: every executor thread owns one high-level consumer in the group,
 * so Kafka itself pins partitions to executors and per-partition order
 * holds. Kafka's committed offsets are never used to position a partition:
 * on assignment the executor reads the offsets stored in Postgres (in the
 * same transactions as the effects) and assigns from there. Rebalance
 * callbacks run on the polling thread, between batches, so a revoke waits
 * for in-flight work by construction.
 */
#include "consumer.h"

#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"

/* A partition this consumer holds, for its lag series. */
typedef struct owned {
    const char *topic; /* the source's topic string: outlives the slot */
    int32_t partition;
    int64_t committed; /* last offset committed (<0: from the log start) */
    int64_t told;      /* last offset committed to Kafka */
    int slot;          /* metrics lag slot, -1 if none */
} owned_t;

#define CONSUMER_LAG_EVERY_US (1000 * 1000)

/* Offsets go to Kafka at most this often, for lag tools only (the ones
 * that count are in Postgres): one OffsetCommit per batch cost the broker
 * about as much CPU as the fetches at a paced 3,500 commands/s. */
#define CONSUMER_KAFKA_COMMIT_EVERY_US (1000 * 1000)

struct consumer {
    rd_kafka_t *rk;
    consumer_hooks_t hooks;
    const od_sources_t *sources;
    int member;    /* health's slot for this group member */
    char name[64]; /* its client id, shown by the console per partition */
    owned_t *owned;
    int nowned;
    int64_t next_lag;
    int64_t next_kafka_commit;
};

/* A message from a topic no source names (it cannot be subscribed to, but
 * if one came) is trusted with no role: every command is unauthorized. */
static const od_source_t unbound_source = {"unbound", "", 0};

static void
owned_clear(consumer_t *c)
{
    for (int i = 0; i < c->nowned; i++)
        metrics_lag_release(c->owned[i].slot);
    free(c->owned);
    c->owned = NULL;
    c->nowned = 0;
}

/* Remembers the new assignment (its start offsets) for the lag series. */
static void
owned_set(consumer_t *c, const consumer_part_t *cp, int n)
{
    owned_clear(c);
    c->owned = calloc((size_t)n + 1, sizeof(*c->owned));
    if (c->owned == NULL)
        return;
    for (int i = 0; i < n; i++) {
        const od_source_t *src = sources_by_topic(c->sources, cp[i].topic);

        if (src == NULL)
            continue;
        c->owned[c->nowned].topic = src->topic;
        c->owned[c->nowned].partition = cp[i].partition;
        c->owned[c->nowned].committed = cp[i].offset;
        c->owned[c->nowned].told = cp[i].offset;
        c->owned[c->nowned].slot =
            metrics_lag_claim(src->topic, cp[i].partition, c->name);
        c->nowned++;
    }
    c->next_lag = 0;
}

/*
 * Lag of each held partition: the high watermark librdkafka learnt from
 * its last fetch response (no request of its own) minus the offset last
 * committed. Before the first commit of a partition that starts from the
 * beginning, the log start offset (0 when not known) stands for it.
 */
static void
lag_update(consumer_t *c)
{
    c->next_lag = od_mono_us() + CONSUMER_LAG_EVERY_US;
    for (int i = 0; i < c->nowned; i++) {
        owned_t *o = &c->owned[i];
        int64_t lo = RD_KAFKA_OFFSET_INVALID, hi = RD_KAFKA_OFFSET_INVALID;
        int64_t from = o->committed;

        if (rd_kafka_get_watermark_offsets(c->rk, o->topic, o->partition, &lo,
                                           &hi) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            hi < 0)
            continue;
        if (from < 0)
            from = lo >= 0 ? lo : 0;
        metrics_lag_set(o->slot, hi - from, hi);
    }
}

/* Tells Kafka the offsets committed since the last time, asynchronously;
 * failures are harmless: Postgres holds the offsets that count. */
static void
kafka_commit_owned(consumer_t *c)
{
    rd_kafka_topic_partition_list_t *l = NULL;

    c->next_kafka_commit = od_mono_us() + CONSUMER_KAFKA_COMMIT_EVERY_US;
    for (int i = 0; i < c->nowned; i++) {
        owned_t *o = &c->owned[i];

        if (o->committed < 0 || o->committed == o->told)
            continue;
        if (l == NULL)
            l = rd_kafka_topic_partition_list_new(c->nowned);
        rd_kafka_topic_partition_list_add(l, o->topic, o->partition)->offset =
            o->committed;
        o->told = o->committed;
    }
    if (l != NULL) {
        (void)rd_kafka_commit(c->rk, l, 1);
        rd_kafka_topic_partition_list_destroy(l);
    }
}

static void
rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
             rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    consumer_t *c = opaque;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        consumer_part_t *cp = calloc((size_t)parts->cnt + 1, sizeof(*cp));

        for (int i = 0; i < parts->cnt; i++) {
            cp[i].topic = parts->elems[i].topic;
            cp[i].partition = parts->elems[i].partition;
            cp[i].offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        if (c->hooks.on_assign(c->hooks.arg, cp, parts->cnt) == 0) {
            for (int i = 0; i < parts->cnt; i++)
                parts->elems[i].offset = cp[i].offset;
            rd_kafka_assign(rk, parts);
            atomic_fetch_add(&metrics.assigned_partitions, parts->cnt);
            owned_set(c, cp, parts->cnt);
            health_member_assigned(c->member, parts->cnt);
            log_info("assigned %d partition(s)", parts->cnt);
        } else {
            rd_kafka_assign(rk, NULL);
        }
        free(cp);
    } else {
        c->hooks.on_revoke(c->hooks.arg);
        kafka_commit_owned(c);
        atomic_fetch_sub(&metrics.assigned_partitions, parts->cnt);
        owned_clear(c);
        health_member_revoked(c->member);
        rd_kafka_assign(rk, NULL);
        log_info("revoked %d partition(s)", parts->cnt);
    }
}

consumer_t *
consumer_new(const od_config_t *cfg, const char *client_id,
             const consumer_hooks_t *hooks, char *err, size_t errlen)
{
    static const char *const defaults[] = {
        "enable.auto.commit", "false", "enable.auto.offset.store", "false",
        "auto.offset.reset", "earliest", "enable.partition.eof", "false",
        /* a batch blocked on a Postgres outage must not be kicked out too
         * soon; fencing by the stored offsets keeps a late one harmless */
        "max.poll.interval.ms", "600000", "session.timeout.ms", "10000",
        "heartbeat.interval.ms", "1000",
        /* a fetch returns as soon as one message is there (librdkafka's
         * default fetch.min.bytes). 64 kB (or 10 ms) was tried: once the
         * bench's producer lingered and the outbox claimed by id, it saved
         * the broker only 5% of a core at a paced 3,500 commands/s, added
         * 5 ms to the median latency, and drained the stream
         * slower in 4 runs of 6 (10,400-14,300/s against 11,600-14,900) */
        "fetch.wait.max.ms", "10",
        /* prefetch at most 16 MB per executor (librdkafka's default is
         * 64 MB): memory stays bounded however long the backlog. Not
         * less: a partition whose prefetch reaches the cap is not fetched
         * again for a second (librdkafka before 2.3, where that back-off
         * became fetch.queue.backoff.ms), so the cap must hold about a
         * second of the fastest reading, a replay's. At 8 MB a replay's
         * executors waited for messages a third of the time (bench: 57,000
         * re-read messages/s and 92 MiB RSS; 105,000/s and 127 MiB at
         * 16 MB; 153,000/s and 184 MiB at 32 MB). -X overrides it. */
        "queued.max.messages.kbytes", "16384", "statistics.interval.ms", "0",
        NULL};
    rd_kafka_conf_t *conf;
    consumer_t *c = calloc(1, sizeof(*c));
    char errstr[512];

    if (c == NULL) {
        od_err(err, errlen, "out of memory");
        return NULL;
    }
    c->hooks = *hooks;
    c->sources = &cfg->sources;
    c->member = -1;
    conf = kafka_conf_new(cfg, client_id, defaults, err, errlen);
    if (conf == NULL)
        goto fail;
    if (kafka_conf_set(conf, "group.id", cfg->group, err, errlen) < 0) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, c);
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (c->rk == NULL) {
        od_err(err, errlen, "could not create kafka consumer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_poll_set_consumer(c->rk);
    c->member = health_member_add(client_id);
    snprintf(c->name, sizeof(c->name), "%s", client_id);
    return c;
fail:
    free(c);
    return NULL;
}

int
consumer_subscribe(consumer_t *c, const od_sources_t *sources, char *err,
                   size_t errlen)
{
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(sources->n);
    rd_kafka_resp_err_t e;

    for (int i = 0; i < sources->n; i++)
        rd_kafka_topic_partition_list_add(l, sources->items[i].topic,
                                          RD_KAFKA_PARTITION_UA);
    e = rd_kafka_subscribe(c->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        od_err(err, errlen, "could not subscribe to the sources' topics: %s",
               rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

int
consumer_poll(consumer_t *c, int timeout_ms, consumer_msg_t *msg)
{
    rd_kafka_message_t *rkm;
    rd_kafka_timestamp_type_t tstype;
    int64_t ts;

    if (c->nowned > 0 && od_mono_us() >= c->next_lag)
        lag_update(c);
    /* from the poll, so that the last offsets of a burst reach Kafka
     * within a second even when nothing follows it */
    if (c->nowned > 0 && od_mono_us() >= c->next_kafka_commit)
        kafka_commit_owned(c);
    rkm = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (rkm == NULL)
        return 0;
    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            log_warn("kafka consumer: %s", rd_kafka_message_errstr(rkm));
        rd_kafka_message_destroy(rkm);
        return 0;
    }
    ts = rd_kafka_message_timestamp(rkm, &tstype);
    msg->topic = rd_kafka_topic_name(rkm->rkt);
    msg->source = sources_by_topic(c->sources, msg->topic);
    if (msg->source == NULL)
        msg->source = &unbound_source;
    msg->partition = rkm->partition;
    msg->offset = rkm->offset;
    /* a producer sets CreateTime: a value past int64 microseconds is
     * saturated (and then refused by the event-time bounds) */
    msg->ts_us = ts <= 0 ? 0 : ts > INT64_MAX / 1000 ? INT64_MAX : ts * 1000;
    msg->key = rkm->key;
    msg->key_len = rkm->key_len;
    msg->payload = rkm->payload ? rkm->payload : "";
    msg->len = rkm->len;
    msg->traceparent[0] = '\0';
    {
        rd_kafka_headers_t *hdrs;
        const void *val;
        size_t size;

        if (rd_kafka_message_headers(rkm, &hdrs) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            rd_kafka_header_get_last(hdrs, "traceparent", &val, &size) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            od_traceparent_valid(val, size)) {
            memcpy(msg->traceparent, val, size);
            msg->traceparent[size] = '\0';
        }
    }
    msg->rkm = rkm;
    return 1;
}

void
consumer_msg_release(consumer_msg_t *msg)
{
    if (msg->rkm != NULL)
        rd_kafka_message_destroy(msg->rkm);
    msg->rkm = NULL;
}

void
consumer_seek(consumer_t *c, const char *topic, int32_t partition,
              int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_error_t *e;

    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    e = rd_kafka_seek_partitions(c->rk, l, 5000);
    if (e != NULL) {
        log_warn("could not seek %s/%d to %lld: %s", topic, (int)partition,
                 (long long)offset, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

int64_t
consumer_position(consumer_t *c, const char *topic, int32_t partition)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    int64_t pos = -1;

    rd_kafka_topic_partition_list_add(l, topic, partition);
    if (rd_kafka_position(c->rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        l->elems[0].offset >= 0)
        pos = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    return pos;
}

void
consumer_record_committed(consumer_t *c, const consumer_part_t *parts, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < c->nowned; j++)
            if (c->owned[j].partition == parts[i].partition &&
                strcmp(c->owned[j].topic, parts[i].topic) == 0)
                c->owned[j].committed = parts[i].offset;
}

void
consumer_destroy(consumer_t *c)
{
    if (c == NULL)
        return;
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    owned_clear(c);
    health_member_remove(c->member);
    free(c);
}
