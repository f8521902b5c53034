/* outbox_store.c - the outbox table: events written in the transaction of
 * the effects they announce, claimed and marked by the publisher, purged
 * after retention
 *
 * DESIGN: every statement on the table lives here; worker/outbox.c is the
 * publisher that produces the claimed rows to Kafka. A batch writes all
 * its events with one INSERT, in the order they were decided (WITH
 * ORDINALITY), so ids follow decision order and the publisher, which
 * claims oldest first, publishes a partition's events in that order.
 */
#include "outbox_store.h"

#include <stdlib.h>
#include <string.h>

static const db_stmt_t stmt_insert = {
    "outbox_insert",
    "INSERT INTO outbox (event_id, topic, key, payload, headers, dedup_key)"
    " SELECT x.eid, x.topic, decode(x.key, 'hex'),"
    " CASE WHEN x.hex THEN decode(x.payload, 'hex')"
    " ELSE convert_to(x.payload, 'UTF8') END, x.headers::jsonb,"
    " NULLIF(x.dk, '')"
    " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[],"
    " $5::boolean[], $6::text[], $7::text[]) WITH ORDINALITY"
    " AS x(eid, topic, key, payload, hex, headers, dk, n) ORDER BY x.n"};

static const db_stmt_t stmt_claim = {
    "outbox_claim",
    "SELECT id, topic, key, payload, headers,"
    " (EXTRACT(epoch FROM created_at) * 1000000)::bigint FROM outbox"
    " WHERE published_at IS NULL ORDER BY id LIMIT 1000"
    " FOR UPDATE SKIP LOCKED"};

/* The rows an executor handed over by event id, looked up through the
 * unique index on event_id: the published test is applied to the locked
 * (latest) version outside the CTE, so that the planner cannot choose the
 * partial index of unpublished rows and walk its dead entries (the very
 * cost this claim avoids). */
static const db_stmt_t stmt_claim_ids = {
    "outbox_claim_ids",
    "WITH c AS (SELECT id, topic, key, payload, headers,"
    " (EXTRACT(epoch FROM created_at) * 1000000)::bigint AS us, published_at"
    " FROM outbox WHERE event_id = ANY($1::uuid[])"
    " FOR UPDATE SKIP LOCKED)"
    " SELECT id, topic, key, payload, headers, us FROM c"
    " WHERE published_at IS NULL ORDER BY id"};

/* transaction-local: see outbox_queue_lazy_commit */
static const db_stmt_t stmt_lazy_commit = {
    "outbox_lazy_commit",
    "SELECT set_config('synchronous_commit', 'off', true)"};

static const db_stmt_t stmt_mark = {
    "outbox_mark",
    "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])"};

/* the 1000 oldest rows only (by primary key), those published before the
 * cutoff; rows still unpublished are never deleted. The ids are collected
 * first (an InitPlan): see dedup.c's purge for why not "IN (subquery)" */
static const db_stmt_t stmt_purge = {
    "outbox_purge",
    "DELETE FROM outbox WHERE id = ANY(ARRAY("
    " SELECT id FROM (SELECT id, published_at FROM outbox"
    "  ORDER BY id LIMIT 1000) oldest"
    " WHERE published_at < now() - $1::bigint * interval '1 millisecond'))"};

od_status_t
outbox_queue_write(db_t *db, const snap_vec_t *rows, char *err, size_t errlen)
{
    pgcols_t c;

    pgcols_init(&c, 7);
    for (int i = 0; i < rows->n; i++) {
        const outbox_row_t *e = rows->v[i];

        pgarray_text(&c.a[0], e->event_id);
        pgarray_text(&c.a[1], e->topic);
        if (e->key_len > 0)
            pgarray_hex(&c.a[2], e->key, e->key_len);
        else
            pgarray_null(&c.a[2]);
        if (e->hex)
            pgarray_hex(&c.a[3], e->payload, e->len);
        else
            pgarray_text(&c.a[3], e->payload);
        pgarray_bool(&c.a[4], e->hex);
        pgarray_text(&c.a[5], e->headers);
        pgarray_text(&c.a[6], e->dedup_key);
    }
    return db_queue_cols(db, &stmt_insert, &c, NULL, err, errlen);
}

od_status_t
outbox_claim(db_t *db, db_rows_t **rows, char *err, size_t errlen)
{
    return db_run(db, &stmt_claim, 0, NULL, rows, err, errlen);
}

od_status_t
outbox_claim_ids(db_t *db, const char *event_ids, db_rows_t **rows, char *err,
                 size_t errlen)
{
    const char *params[1] = {event_ids};

    return db_run(db, &stmt_claim_ids, 1, params, rows, err, errlen);
}

od_status_t
outbox_queue_lazy_commit(db_t *db, char *err, size_t errlen)
{
    return db_queue_run(db, &stmt_lazy_commit, 0, NULL, NULL, NULL, NULL, err,
                        errlen);
}

od_status_t
outbox_queue_mark(db_t *db, const char *ids, char *err, size_t errlen)
{
    const char *params[1] = {ids};

    return db_queue_run(db, &stmt_mark, 1, params, NULL, NULL, NULL, err,
                        errlen);
}

od_status_t
outbox_purge(db_t *db, int64_t retention_ms, char *err, size_t errlen)
{
    char ms[24];
    const char *params[1] = {db_int_param(ms, retention_ms)};

    return db_run(db, &stmt_purge, 1, params, NULL, err, errlen);
}

void
outbox_rows_free(snap_vec_t *rows)
{
    for (int i = 0; i < rows->n; i++) {
        outbox_row_t *e = rows->v[i];

        free(e->key);
        free(e->payload);
        free(e->headers);
        free(e);
    }
    free(rows->v);
    memset(rows, 0, sizeof(*rows));
}
