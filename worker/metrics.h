/* metrics.h - process-wide counters, histograms and gauges, rendered in
 * Prometheus text format by metrics_render (served by http.c) */
#ifndef OD_METRICS_H
#define OD_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "apply.h"

typedef struct metrics {
    atomic_llong applied;
    atomic_llong rejected;
    atomic_llong duplicate;
    atomic_llong deferred;
    atomic_llong skipped; /* redeliveries below the stored offset */
    atomic_llong dlq;
    atomic_llong internal_errors;
    atomic_llong batches;
    atomic_llong batch_retries;
    atomic_llong carried; /* messages left for the next batch (row held) */
    atomic_llong published;
    atomic_llong publish_errors;
    atomic_llong expired;
    atomic_llong expiry_failures; /* scheduler expiries that did not apply */
    atomic_llong rebalances;      /* counted by health.c, once per process */
    atomic_int assigned_partitions;
    atomic_int db_down;             /* executors currently backing off */
    atomic_int ready;               /* run.c: executors started, not stopping */
    atomic_llong outbox_backlog;    /* unpublished rows, -1: not sampled */
    atomic_llong outbox_oldest_ms;  /* age of the oldest of them */
    atomic_llong pg_last_answer_us; /* od_mono_us of the last answer */
    atomic_int scheduler_leader;    /* 1: this process's scheduler */
    atomic_llong scheduler_last_tick_us; /* od_now_us of its last tick */
} metrics_t;

extern metrics_t metrics;

/* Call once at start, before any thread reports (clears everything). */
void metrics_init(void);

/*
 * Per-command metrics of one batch attempt, staged on the calling thread
 * and made visible only when the batch commits, as the outcome counters
 * are: a batch rolled back and retried counts its commands once.
 * Allocation-free; the staging is per thread.
 *   metrics_batch_begin      at the start of every attempt (drops what an
 *                            earlier attempt staged)
 *   metrics_command_done     once per applied message, with its Kafka
 *                            timestamp (0: none) and apply_message's report
 *   metrics_batch_committed  right after COMMIT succeeded: counts the
 *                            rejections (by reason and type) and DLQ copies
 *                            (by class), and observes each command's
 *                            latency from its Kafka timestamp to now
 */
void metrics_batch_begin(void);
void metrics_command_done(int64_t ts_us, const apply_report_t *rep);
void metrics_batch_committed(void);

/* One batch's duration, from its first attempt to its commit. */
void metrics_observe_batch(double seconds);
/* One event's publish latency: outbox row created to delivery report. */
void metrics_observe_publish(double seconds);

/*
 * Consumer lag per partition. A slot is claimed on assignment (topic must
 * outlive the slot: the configured source's topic string; owner, the
 * consumer's client id, is copied) and released on revoke; lag -1 means
 * not known yet (no fetch answered). Returns the slot, or -1 when all are
 * taken (that partition then has no lag series). metrics_lag_set takes
 * the lag and the log end offset (high watermark) it was computed from.
 */
int metrics_lag_claim(const char *topic, int32_t partition, const char *owner);
void metrics_lag_set(int slot, int64_t lag, int64_t end);
void metrics_lag_release(int slot);

/* One held partition as the console shows it. */
typedef struct metrics_lag_row {
    char topic[256];
    int32_t partition;
    int64_t lag; /* -1: not known yet */
    int64_t end; /* log end offset, -1: not known yet */
    char owner[64];
} metrics_lag_row_t;

/* Copies up to max held partitions into rows; returns how many. */
int metrics_lag_rows(metrics_lag_row_t *rows, int max);

/* Outcome counters as the console charts them (the counters above). */
typedef struct metrics_rejection_row {
    const char *reason; /* static */
    const char *type;   /* static */
    long long count;
} metrics_rejection_row_t;

/* The non-zero cells of the rejections matrix (reason by command type),
 * up to max; returns how many. */
int metrics_rejection_rows(metrics_rejection_row_t *rows, int max);

/* The whole exposition, malloc'ed (caller frees); *len its length.
 * NULL when out of memory. */
char *metrics_render(size_t *len);

#endif
