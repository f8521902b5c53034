/* outbox_store.h - the outbox table: rows written with the effects they
 * announce, claimed and marked by the publisher, purged after retention. Every
 * statement on the table is here */
#ifndef OD_OUTBOX_STORE_H
#define OD_OUTBOX_STORE_H

#include "../handlers/snapshot.h"
#include "db.h"

/* One outbox row. payload is JSON text unless hex is set (DLQ copies of
 * arbitrary bytes). */
typedef struct outbox_row {
    char event_id[37];
    const char *topic;
    unsigned char *key;
    size_t key_len;
    char *payload;
    size_t len;
    int hex;
    char *headers; /* JSON text or NULL */
    char dedup_key[CMD_DEDUP_KEY_MAX + 1];
} outbox_row_t;

/* Queues the INSERT of rows (outbox_row_t), in order. */
od_status_t outbox_queue_write(db_t *db, const snap_vec_t *rows, char *err,
                               size_t errlen) OD_MUSTCHECK;
/* Claims up to 1000 unpublished rows, oldest first (FOR UPDATE SKIP
 * LOCKED), on the open transaction (its BEGIN may be queued, to go in the
 * same round trip): id, topic, key, payload, headers, created_at in epoch
 * microseconds. */
od_status_t outbox_claim(db_t *db, db_rows_t **rows, char *err,
                         size_t errlen) OD_MUSTCHECK;
/* The unpublished rows among the event ids given as a Postgres array
 * literal, locked, columns as outbox_claim's. */
od_status_t outbox_claim_ids(db_t *db, const char *event_ids, db_rows_t **rows,
                             char *err, size_t errlen) OD_MUSTCHECK;
/* Queues, first in the publisher's transaction: its COMMIT does not wait
 * for the WAL to reach the disk. A mark lost to a crash only publishes its
 * rows again, with the same event ids (at least once); the wait is what a
 * disk busy with writeback makes long, and it held the next round. */
od_status_t outbox_queue_lazy_commit(db_t *db, char *err,
                                     size_t errlen) OD_MUSTCHECK;
/* Queues the mark of the rows of a bigint[] literal of ids as published
 * (sent with the COMMIT). */
od_status_t outbox_queue_mark(db_t *db, const char *ids, char *err,
                              size_t errlen) OD_MUSTCHECK;
/* Deletes published rows older than retention_ms among the 1000 oldest. */
od_status_t outbox_purge(db_t *db, int64_t retention_ms, char *err,
                         size_t errlen) OD_MUSTCHECK;
void outbox_rows_free(snap_vec_t *rows);

#endif
