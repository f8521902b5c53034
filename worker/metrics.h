/* metrics.h - process-wide counters, exported by http.c */
#ifndef OD_METRICS_H
#define OD_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

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
    atomic_llong rebalances;
    atomic_int assigned_partitions;
    atomic_int db_down; /* executors currently backing off */
    atomic_int ready;
} metrics_t;

extern metrics_t metrics;

#endif
