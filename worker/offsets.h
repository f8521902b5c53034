/* offsets.h - consumer_offsets: where each partition's next message is,
 * stored with the effects it covers. Every statement on the table is here */
#ifndef OD_OFFSETS_H
#define OD_OFFSETS_H

#include "db.h"

/* One partition of a group, as the statements address it. */
typedef struct offsets_key {
    const char *group;
    const char *topic;
    int32_t partition;
} offsets_key_t;

/*
 * Queues the lock (creating it at 0 when new) of a partition's row for the
 * next round trip; *rows receives it, read with offsets_locked.
 */
od_status_t offsets_queue_lock(db_t *db, const offsets_key_t *k,
                               db_rows_t **rows, char *err,
                               size_t errlen) OD_MUSTCHECK;
/* The locked row's next offset and replay mark; 0, or -1 when the row
 * did not come back. */
int offsets_locked(const db_rows_t *rows, int64_t *next, int64_t *replay_until);
/* Queues the new next offset of a locked partition (sent with the
 * COMMIT). */
od_status_t offsets_queue_store(db_t *db, const offsets_key_t *k, int64_t next,
                                char *err, size_t errlen) OD_MUSTCHECK;
/* Reads a partition's next offset without a lock; *next = -1 when the
 * group has none stored. *replay_until (when not NULL): where an operator
 * replay's quiet re-read ends, 0 when none is recorded. */
od_status_t offsets_read(db_t *db, const offsets_key_t *k, int64_t *next,
                         int64_t *replay_until, char *err,
                         size_t errlen) OD_MUSTCHECK;
/* Replay: the stored partitions of a topic (partition, next_offset). */
od_status_t offsets_of_topic(db_t *db, const char *group, const char *topic,
                             db_rows_t **rows, char *err,
                             size_t errlen) OD_MUSTCHECK;
/*
 * Replay: moves a partition's next offset back to target (never forward)
 * and records where the re-read ends: below it, duplicates stay quiet
 * unless loud.
 */
od_status_t offsets_move_back(db_t *db, const offsets_key_t *k, int64_t target,
                              int loud, char *err, size_t errlen) OD_MUSTCHECK;

#endif
