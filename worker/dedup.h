/* dedup.h - processed_commands, the dedup rows: one per command identity
 * (source, dedup_key). Every statement on the table is here */
#ifndef OD_DEDUP_H
#define OD_DEDUP_H

#include "../handlers/snapshot.h"
#include "db.h"

/* A dedup row, loaded or written by a batch. */
typedef struct dedup_row {
    char source[SNAP_SOURCE_MAX + 1];
    char key[CMD_DEDUP_KEY_MAX + 1];
    unsigned char fingerprint[32];
    const char *outcome; /* static */
    const char *reason;  /* static, or owned when owns_reason; NULL */
    int owns_reason;
    char event_id[37];
    int is_new;   /* inserted by this batch */
    int resolved; /* a parked command's final outcome (an UPDATE) */
    /* for new rows */
    const char *command_type;
    char order_id[37];
    /* where the command was read from: written with a new row, loaded with
     * an old one when it has them (has_position) */
    char topic[256];
    int32_t partition;
    int64_t offset;
    int has_position;
} dedup_row_t;

/*
 * Queues the load of the dedup rows of the identities (source, key) in
 * two parallel text[] literals; *rows receives them after the round trip
 * (columns for dedup_take).
 */
od_status_t dedup_queue_load(db_t *db, const char *sources, const char *keys,
                             db_rows_t **rows, char *err,
                             size_t errlen) OD_MUSTCHECK;
/* Appends the loaded rows to out (dedup_row_t). -1 when out of memory. */
int dedup_take(db_rows_t *rows, snap_vec_t *out);
/* Queues the INSERT of every new row and the UPDATE of every resolved one
 * (a parked command's final outcome; a resolved row that is not there
 * fails the statement). */
od_status_t dedup_queue_write(db_t *db, const snap_vec_t *rows, char *err,
                              size_t errlen) OD_MUSTCHECK;
/* Replay's look-up: *found, and *same when the fingerprint matches. */
od_status_t dedup_lookup(db_t *db, const char *source, const char *key,
                         const unsigned char fingerprint[32], int *found,
                         int *same, char *err, size_t errlen) OD_MUSTCHECK;
/* Deletes up to 1000 rows older than retention_ms. */
od_status_t dedup_purge(db_t *db, int64_t retention_ms, char *err,
                        size_t errlen) OD_MUSTCHECK;
/* Frees what out's rows own and empties it. */
void dedup_rows_free(snap_vec_t *rows);

/*
 * A batch's look-up of its dedup rows by identity: a hash over the rows
 * of a vector that only grows, indexed lazily (rows appended since the
 * last find are added first, so a row must have its identity before the
 * next find). A batch of re-read duplicates looks up every message: a
 * linear scan was quadratic in the batch size.
 */
typedef struct dedup_index {
    int *slots; /* row index + 1; 0 empty */
    int cap;    /* a power of two, at least twice the rows indexed */
    int indexed;
} dedup_index_t;

/* The row of (source, key) in rows (the last one appended), or NULL. */
dedup_row_t *dedup_index_find(dedup_index_t *ix, const snap_vec_t *rows,
                              const char *source, const char *key);
void dedup_index_free(dedup_index_t *ix);

#endif
