/* executor.h - one thread: a consumer, a Postgres connection, batches */
#ifndef OD_EXECUTOR_H
#define OD_EXECUTOR_H

#include <stdatomic.h>

#include "config.h"
#include "outbox.h"

typedef struct executor executor_t;

/* executor numbers run from 0 to EXECUTOR_MAX_IDS - 1 */
#define EXECUTOR_MAX_IDS 64

/*
 * Creates executor number id (its own consumer in the group and its own
 * Postgres connection). stop is polled between batches; outbox (may be
 * NULL) is woken after each commit. Returns NULL with err filled.
 */
executor_t *executor_new(int id, const od_config_t *cfg, atomic_int *stop,
                         outbox_t *outbox, char *err, size_t errlen);
/* Starts the thread. 0 or -1. */
int executor_start(executor_t *ex);
/* Waits for the thread to finish its last batch and leave the group;
 * returns 0, or 1 when it stopped on an internal error (halt mode). */
int executor_join(executor_t *ex);
void executor_destroy(executor_t *ex);

/*
 * When executor id last turned its loop (od_mono_us()): an idle one turns
 * it every poll (100 ms), a busy one after every batch, one backing off
 * from a fault while it waits. A stale beat means a call that does not
 * return. Safe from any thread, also after the executor is destroyed.
 */
int64_t executor_last_beat(int id);

/* messages applied (or skipped) by all executors since start */
extern atomic_llong executor_messages_done;

#endif
