/* outbox.h - publishes committed outbox rows with an idempotent producer */
#ifndef OD_OUTBOX_H
#define OD_OUTBOX_H

#include "config.h"
#include "outbox_store.h"

typedef struct outbox outbox_t;

/* Its own producer and Postgres connection; NULL with err on failure. */
outbox_t *outbox_new(const od_config_t *cfg, char *err, size_t errlen);
/* Starts the publishing thread (which first drains rows left unpublished
 * by an earlier run). 0 or -1. */
int outbox_start(outbox_t *ob);
/* Hands the publisher the event ids of committed outbox rows (events:
 * outbox_row_t) and wakes it; it claims them by id. Thread-safe, cheap. */
void outbox_handoff(outbox_t *ob, const snap_vec_t *events);
/* Wakes the publisher for rows committed without a hand-over: the next
 * round sweeps the unpublished rows. Thread-safe, cheap. */
void outbox_notify(outbox_t *ob);
/* Publishes what is committed, stops the thread, flushes the producer. */
void outbox_stop(outbox_t *ob);
void outbox_destroy(outbox_t *ob);

#endif
