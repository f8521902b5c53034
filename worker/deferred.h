/* deferred.h - deferred_commands, the parking shelf: commands that named an
 * order not known yet. Every statement on the table is here */
#ifndef OD_DEFERRED_H
#define OD_DEFERRED_H

#include "../handlers/snapshot.h"
#include "db.h"

/* A parked command: loaded for an order the batch creates, or parked by
 * this batch. */
typedef struct deferred_row {
    int64_t id; /* 0: parked by this batch (an INSERT) */
    char order_id[37];
    char source[SNAP_SOURCE_MAX + 1];
    char key[CMD_DEDUP_KEY_MAX + 1];
    unsigned char *payload;
    size_t len;
    int64_t ts_us;
    char topic[256];
    int32_t partition;
    int64_t offset;
    int taken; /* released by this batch (a DELETE, or no INSERT) */
} deferred_row_t;

/* Queues the load (FOR UPDATE) of the commands parked for the orders in
 * a uuid[] literal. */
od_status_t deferred_queue_load(db_t *db, const char *orders, db_rows_t **rows,
                                char *err, size_t errlen) OD_MUSTCHECK;
/* Appends the loaded rows to out (deferred_row_t). -1: out of memory. */
int deferred_take(db_rows_t *rows, snap_vec_t *out);
/* Queues the DELETE of the loaded rows taken and the INSERT of the rows
 * parked (and not taken) by the batch. */
od_status_t deferred_queue_write(db_t *db, const snap_vec_t *rows, char *err,
                                 size_t errlen) OD_MUSTCHECK;
/* Takes off the shelf (DELETE ... RETURNING) up to 100 commands parked
 * longer than timeout_ms: payload, msg_ts_us, source_topic,
 * source_partition, source_offset, id, source, order_id. */
od_status_t deferred_take_timed_out(db_t *db, int64_t timeout_ms,
                                    db_rows_t **rows, char *err,
                                    size_t errlen) OD_MUSTCHECK;
void deferred_rows_free(snap_vec_t *rows);

#endif
