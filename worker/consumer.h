/* consumer.h - the Kafka consumer of one executor: subscribe, rebalance,
 * poll, seek, lag-tooling commits. The only consuming user of rdkafka.h. */
#ifndef OD_CONSUMER_H
#define OD_CONSUMER_H

#include "config.h"

typedef struct consumer consumer_t;

/* A consumed message; payload and key are borrowed until
 * consumer_msg_release. */
typedef struct consumer_msg {
    const od_source_t *source; /* the source bound to its topic */
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t ts_us;
    const void *key;
    size_t key_len;
    const void *payload;
    size_t len;
    char traceparent[OD_TRACEPARENT_LEN + 1]; /* "" when none or invalid */
    void *rkm;                                /* the underlying message */
} consumer_msg_t;

typedef struct consumer_part {
    const char *topic;
    int32_t partition;
    int64_t offset; /* on_assign fills the offset to start from */
} consumer_part_t;

/*
 * Rebalance hooks, called on the polling thread from inside consumer_poll.
 * on_assign fills parts[i].offset (-2: from the beginning) and returns 0,
 * or -1 to give up (stopping). on_revoke must finish or drop in-flight
 * work for the partitions about to go away.
 */
typedef struct consumer_hooks {
    int (*on_assign)(void *arg, consumer_part_t *parts, int n);
    void (*on_revoke)(void *arg);
    void *arg;
} consumer_hooks_t;

consumer_t *consumer_new(const od_config_t *cfg, const char *client_id,
                         const consumer_hooks_t *hooks, char *err,
                         size_t errlen);
/* Subscribes to every source's topic: one group, so each partition of
 * each topic has one executor and its order holds. */
int consumer_subscribe(consumer_t *c, const od_sources_t *sources, char *err,
                       size_t errlen);
/* 1: *msg filled; 0: nothing within timeout_ms */
int consumer_poll(consumer_t *c, int timeout_ms, consumer_msg_t *msg);
void consumer_msg_release(consumer_msg_t *msg);
/* Repositions a partition (after its stored offset moved back). */
void consumer_seek(consumer_t *c, const char *topic, int32_t partition,
                   int64_t offset);
/* The offset the next message of a partition will have (-1 when
 * unknown: nothing consumed since assignment). */
int64_t consumer_position(consumer_t *c, const char *topic, int32_t partition);
/* Records the offsets a batch committed in Postgres: the lag series reads
 * them, and consumer_poll tells Kafka, for lag tooling only (never
 * trusted), at most once a second; a revoke tells it at once. */
void consumer_record_committed(consumer_t *c, const consumer_part_t *parts,
                               int n);
/* Leaves the group (runs on_revoke) and frees c. */
void consumer_destroy(consumer_t *c);

#endif
