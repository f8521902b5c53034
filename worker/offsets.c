/* offsets.c - consumer_offsets: where each partition's next message is
 *
 * DESIGN: the offsets live in Postgres, in the same transaction as the
 * effects they cover, so a batch is applied and its position advanced
 * together or not at all; Kafka's own commits are only for lag tooling.
 * A batch locks the rows of its partitions first (ascending, so two
 * consumers that both believe they own a partition take turns and the
 * second sees the first's new position), stores the new position with its
 * COMMIT; an assignment reads where to start; `orderd replay` moves a
 * position back and records where the re-read ends (replay_until).
 */
#include "offsets.h"

static const db_stmt_t stmt_lock = {
    "offsets_lock",
    "INSERT INTO consumer_offsets (grp, topic, partition, next_offset)"
    " VALUES ($1, $2, $3, 0)"
    " ON CONFLICT (grp, topic, partition)"
    " DO UPDATE SET next_offset = consumer_offsets.next_offset"
    " RETURNING next_offset, replay_until"};

static const db_stmt_t stmt_store = {
    "offsets_store",
    "UPDATE consumer_offsets SET next_offset = $4, updated_at = now()"
    " WHERE grp = $1 AND topic = $2 AND partition = $3"};

static const db_stmt_t stmt_read = {
    "offsets_read", "SELECT next_offset, replay_until FROM consumer_offsets"
                    " WHERE grp = $1 AND topic = $2 AND partition = $3"};

static const db_stmt_t stmt_of_topic = {
    "offsets_of_topic", "SELECT partition, next_offset FROM consumer_offsets"
                        " WHERE grp = $1 AND topic = $2 ORDER BY partition"};

static const db_stmt_t stmt_move_back = {
    "offsets_move_back",
    "UPDATE consumer_offsets SET next_offset = $4,"
    " replay_until = CASE WHEN $5 THEN LEAST(replay_until, $4)"
    "  ELSE GREATEST(replay_until, next_offset) END, updated_at = now()"
    " WHERE grp = $1 AND topic = $2 AND partition = $3"
    " AND next_offset > $4"};

od_status_t
offsets_queue_lock(db_t *db, const offsets_key_t *k, db_rows_t **rows,
                   char *err, size_t errlen)
{
    char part[24];
    const char *params[3] = {k->group, k->topic,
                             db_int_param(part, k->partition)};

    return db_queue_run(db, &stmt_lock, 3, params, NULL, NULL, rows, err,
                        errlen);
}

int
offsets_locked(const db_rows_t *rows, int64_t *next, int64_t *replay_until)
{
    if (db_nrows(rows) != 1)
        return -1;
    *next = db_int64(rows, 0, 0);
    *replay_until = db_int64(rows, 0, 1);
    return 0;
}

od_status_t
offsets_queue_store(db_t *db, const offsets_key_t *k, int64_t next, char *err,
                    size_t errlen)
{
    char part[24], off[24];
    const char *params[4] = {k->group, k->topic,
                             db_int_param(part, k->partition),
                             db_int_param(off, next)};

    return db_queue_run(db, &stmt_store, 4, params, NULL, NULL, NULL, err,
                        errlen);
}

od_status_t
offsets_read(db_t *db, const offsets_key_t *k, int64_t *next,
             int64_t *replay_until, char *err, size_t errlen)
{
    char part[24];
    const char *params[3] = {k->group, k->topic,
                             db_int_param(part, k->partition)};
    db_rows_t *rows = NULL;
    od_status_t st;

    st = db_run(db, &stmt_read, 3, params, &rows, err, errlen);
    *next = st == OD_OK && db_nrows(rows) == 1 ? db_int64(rows, 0, 0) : -1;
    if (replay_until != NULL)
        *replay_until =
            st == OD_OK && db_nrows(rows) == 1 && !db_isnull(rows, 0, 1)
                ? db_int64(rows, 0, 1)
                : 0;
    db_rows_free(rows);
    return st;
}

od_status_t
offsets_of_topic(db_t *db, const char *group, const char *topic,
                 db_rows_t **rows, char *err, size_t errlen)
{
    const char *params[2] = {group, topic};

    return db_run(db, &stmt_of_topic, 2, params, rows, err, errlen);
}

od_status_t
offsets_move_back(db_t *db, const offsets_key_t *k, int64_t target, int loud,
                  char *err, size_t errlen)
{
    char part[24], off[24];
    const char *params[5] = {
        k->group, k->topic, db_int_param(part, k->partition),
        db_int_param(off, target), loud ? "true" : "false"};

    return db_run(db, &stmt_move_back, 5, params, NULL, err, errlen);
}
