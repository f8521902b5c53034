/* dedup.c - processed_commands: the dedup rows, one per command identity
 * (source, dedup_key)
 *
 * DESIGN: every statement on the table lives here. A batch loads the rows
 * of its messages' identities in its first round trip (the unique key is
 * the only lock it needs: two executors racing on one identity both insert,
 * the second waits for the first and fails, and its batch is applied again
 * command by command, where the first's row is found) and writes its new
 * rows with one INSERT, its parked commands' final outcomes with one
 * UPDATE. Replay looks one identity up; the scheduler purges old rows.
 */
#include "dedup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const db_stmt_t stmt_load = {
    "dedup_load",
    "SELECT p.source, p.dedup_key, encode(p.fingerprint, 'hex'), p.outcome,"
    " p.reason, p.result_event_id::text, p.source_topic, p.source_partition,"
    " p.source_offset"
    " FROM unnest($1::text[], $2::text[]) AS k(s, d)"
    " JOIN processed_commands p ON p.source = k.s AND p.dedup_key = k.d"};

static const db_stmt_t stmt_insert = {
    "dedup_insert",
    "INSERT INTO processed_commands (source, dedup_key, fingerprint,"
    " command_type, outcome, reason, result_event_id, order_id, source_topic,"
    " source_partition, source_offset)"
    " SELECT x.src, x.dk, decode(x.fp, 'hex'), x.type, x.outcome, x.reason,"
    " x.eid, x.oid, x.topic, x.part, x.off"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::text[], $7::uuid[], $8::uuid[], $9::text[], $10::int[],"
    " $11::bigint[]) AS x(src, dk, fp, type, outcome, reason, eid, oid, topic,"
    " part, off)"};

/* a parked command's final outcome replaces 'deferred', and a command
 * refused internal_error that came again replaces its refusal. Every one
 * must find its row: a missing one fails the statement (an error the
 * batch could not predict: it is applied again command by command) */
static const db_stmt_t stmt_resolve = {
    "dedup_resolve",
    "WITH u AS (UPDATE processed_commands p SET outcome = x.outcome,"
    " reason = x.reason, result_event_id = x.eid"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::uuid[])"
    " AS x(src, dk, outcome, reason, eid)"
    " WHERE p.source = x.src AND p.dedup_key = x.dk"
    " AND (p.outcome = 'deferred' OR p.reason = 'internal_error')"
    " RETURNING 1)"
    " SELECT CASE WHEN count(*) = cardinality($1::text[]) THEN 0 ELSE"
    " ('parked command without its deferred dedup row: ' ||"
    " (cardinality($1::text[]) - count(*)))::int END FROM u"};

static const db_stmt_t stmt_lookup = {
    "dedup_lookup", "SELECT fingerprint = $2 FROM processed_commands"
                    " WHERE source = $3 AND dedup_key = $1"};

/*
 * The purge walks the created_at index in order and stops at the cutoff;
 * the rows are collected into an array first (an InitPlan) and deleted by
 * row address (a tid scan; a row moved meanwhile by a concurrent update is
 * simply not deleted this tick): written as "WHERE key IN (subquery)", a
 * generic plan made while the table was empty joined the whole table
 * against the subquery in a nested loop, re-running it for every row.
 */
static const db_stmt_t stmt_purge = {
    "dedup_purge",
    "DELETE FROM processed_commands WHERE ctid = ANY(ARRAY("
    " SELECT ctid FROM processed_commands"
    " WHERE created_at < now() - $1::bigint * interval '1 millisecond'"
    " ORDER BY created_at LIMIT 1000))"};

od_status_t
dedup_queue_load(db_t *db, const char *sources, const char *keys,
                 db_rows_t **rows, char *err, size_t errlen)
{
    const char *params[2] = {sources, keys};

    return db_queue_run(db, &stmt_load, 2, params, NULL, NULL, rows, err,
                        errlen);
}

static int
nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* by hand, not sscanf: a replay decodes one fingerprint per message */
static int
hex_to_bytes(const char *hex, unsigned char *out, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        int hi = nibble(hex[2 * i]), lo = hi < 0 ? -1 : nibble(hex[2 * i + 1]);

        if (lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int
dedup_take(db_rows_t *rows, snap_vec_t *out)
{
    static const char *const outcomes[] = {"applied", "rejected", "deferred"};

    for (int r = 0; r < db_nrows(rows); r++) {
        dedup_row_t *d = calloc(1, sizeof(*d));

        if (d == NULL)
            return -1;
        snprintf(d->source, sizeof(d->source), "%s", db_val(rows, r, 0));
        snprintf(d->key, sizeof(d->key), "%s", db_val(rows, r, 1));
        if (strlen(db_val(rows, r, 2)) != 64 ||
            hex_to_bytes(db_val(rows, r, 2), d->fingerprint, 32) < 0)
            memset(d->fingerprint, 0, 32);
        d->outcome = "applied";
        for (size_t i = 0; i < OD_ARRAY_LEN(outcomes); i++)
            if (strcmp(db_val(rows, r, 3), outcomes[i]) == 0)
                d->outcome = outcomes[i];
        /* a loaded reason is the row's own copy */
        d->reason = db_isnull(rows, r, 4) ? NULL : strdup(db_val(rows, r, 4));
        d->owns_reason = d->reason != NULL;
        snprintf(d->event_id, sizeof(d->event_id), "%s", db_val(rows, r, 5));
        if (!db_isnull(rows, r, 6) && !db_isnull(rows, r, 7) &&
            !db_isnull(rows, r, 8)) {
            snprintf(d->topic, sizeof(d->topic), "%s", db_val(rows, r, 6));
            d->partition = (int32_t)strtol(db_val(rows, r, 7), NULL, 10);
            d->offset = strtoll(db_val(rows, r, 8), NULL, 10);
            d->has_position = 1;
        }
        if (snap_vec_push(out, d) < 0) {
            free((char *)d->reason);
            free(d);
            return -1;
        }
    }
    return 0;
}

od_status_t
dedup_queue_write(db_t *db, const snap_vec_t *rows, char *err, size_t errlen)
{
    pgcols_t ins, res;
    od_status_t st;

    pgcols_init(&ins, 11);
    pgcols_init(&res, 5);
    for (int i = 0; i < rows->n; i++) {
        const dedup_row_t *d = rows->v[i];

        if (d->is_new) {
            pgarray_text(&ins.a[0], d->source);
            pgarray_text(&ins.a[1], d->key);
            pgarray_hex(&ins.a[2], d->fingerprint, 32);
            pgarray_text(&ins.a[3], d->command_type);
            pgarray_text(&ins.a[4], d->outcome);
            pgarray_text(&ins.a[5], d->reason);
            pgarray_text(&ins.a[6], d->event_id);
            pgarray_text(&ins.a[7], d->order_id[0] ? d->order_id : NULL);
            pgarray_text(&ins.a[8], d->topic);
            pgarray_int(&ins.a[9], d->partition);
            pgarray_int(&ins.a[10], d->offset);
        } else if (d->resolved) {
            pgarray_text(&res.a[0], d->source);
            pgarray_text(&res.a[1], d->key);
            pgarray_text(&res.a[2], d->outcome);
            pgarray_text(&res.a[3], d->reason);
            pgarray_text(&res.a[4], d->event_id);
        }
    }
    st = db_queue_cols(db, &stmt_insert, &ins, NULL, err, errlen);
    if (st == OD_OK)
        st = db_queue_cols(db, &stmt_resolve, &res, NULL, err, errlen);
    else
        pgcols_free(&res);
    return st;
}

od_status_t
dedup_lookup(db_t *db, const char *source, const char *key,
             const unsigned char fingerprint[32], int *found, int *same,
             char *err, size_t errlen)
{
    const char *params[3] = {key, (const char *)fingerprint, source};
    int lengths[3] = {0, 32, 0}, formats[3] = {0, 1, 0};
    db_rows_t *rows = NULL;
    od_status_t st;

    st = db_run_ex(db, &stmt_lookup, 3, params, lengths, formats, &rows, err,
                   errlen);
    *found = st == OD_OK && db_nrows(rows) == 1;
    *same = *found && db_bool(rows, 0, 0);
    db_rows_free(rows);
    return st;
}

od_status_t
dedup_purge(db_t *db, int64_t retention_ms, char *err, size_t errlen)
{
    char ms[24];
    const char *params[1] = {db_int_param(ms, retention_ms)};

    return db_run(db, &stmt_purge, 1, params, NULL, err, errlen);
}

void
dedup_rows_free(snap_vec_t *rows)
{
    for (int i = 0; i < rows->n; i++) {
        dedup_row_t *d = rows->v[i];

        if (d->owns_reason)
            free((char *)d->reason);
        free(d);
    }
    free(rows->v);
    memset(rows, 0, sizeof(*rows));
}

static uint32_t
identity_hash(const char *source, const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (const unsigned char *p = (const unsigned char *)source; *p; p++)
        h = (h ^ *p) * 16777619u;
    h = (h ^ 0xffu) * 16777619u; /* no byte of a name: the separator */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static int
same_identity(const dedup_row_t *d, const char *source, const char *key)
{
    return strcmp(d->key, key) == 0 && strcmp(d->source, source) == 0;
}

static void
index_put(dedup_index_t *ix, const snap_vec_t *rows, int row)
{
    const dedup_row_t *d = rows->v[row];
    uint32_t mask = (uint32_t)ix->cap - 1;
    uint32_t at = identity_hash(d->source, d->key) & mask;

    /* a later row of the same identity takes the slot over */
    while (ix->slots[at] != 0 &&
           !same_identity(rows->v[ix->slots[at] - 1], d->source, d->key))
        at = (at + 1) & mask;
    ix->slots[at] = row + 1;
}

/* Indexes the rows appended since the last call; -1 out of memory. */
static int
index_catch_up(dedup_index_t *ix, const snap_vec_t *rows)
{
    if (ix->cap == 0 || rows->n * 2 > ix->cap) {
        int cap = ix->cap > 0 ? ix->cap : 64;
        int *slots;

        while (rows->n * 2 > cap)
            cap *= 2;
        slots = calloc((size_t)cap, sizeof(*slots));
        if (slots == NULL)
            return -1;
        free(ix->slots);
        ix->slots = slots;
        ix->cap = cap;
        ix->indexed = 0;
    }
    for (; ix->indexed < rows->n; ix->indexed++)
        index_put(ix, rows, ix->indexed);
    return 0;
}

dedup_row_t *
dedup_index_find(dedup_index_t *ix, const snap_vec_t *rows, const char *source,
                 const char *key)
{
    uint32_t mask, at;

    if (index_catch_up(ix, rows) < 0) {
        /* out of memory: the scan finds the same row, only slower */
        for (int i = rows->n - 1; i >= 0; i--)
            if (same_identity(rows->v[i], source, key))
                return rows->v[i];
        return NULL;
    }
    mask = (uint32_t)ix->cap - 1;
    for (at = identity_hash(source, key) & mask; ix->slots[at] != 0;
         at = (at + 1) & mask)
        if (same_identity(rows->v[ix->slots[at] - 1], source, key))
            return rows->v[ix->slots[at] - 1];
    return NULL;
}

void
dedup_index_free(dedup_index_t *ix)
{
    free(ix->slots);
    memset(ix, 0, sizeof(*ix));
}
