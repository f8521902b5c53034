/* deferred.c - deferred_commands, the parking shelf: commands that named
 * an order not known yet
 *
 * DESIGN: every statement on the table lives here. A batch whose
 * checkouts create orders loads (FOR UPDATE) what is parked for them, in
 * arrival order, and decides those commands right after the checkout;
 * what it released it deletes, what it parked (and did not release in the
 * same batch) it inserts. Parking and releasing are serialised per order
 * by an advisory lock the batch takes before it loads (batch_load.c), so
 * a checkout committing while a pay for its order is being parked cannot
 * strand the pay. The scheduler takes what waited longer than
 * --defer-timeout off the shelf and refuses it order_not_found.
 */
#include "deferred.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const db_stmt_t stmt_load = {
    "deferred_load",
    "SELECT id, order_id::text, source, dedup_key, payload, msg_ts_us,"
    " source_topic, source_partition, source_offset FROM deferred_commands"
    " WHERE order_id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"};

static const db_stmt_t stmt_insert = {
    "deferred_insert",
    "INSERT INTO deferred_commands (order_id, source, dedup_key, payload,"
    " msg_ts_us, source_topic, source_partition, source_offset)"
    " SELECT x.oid, x.src, x.dk, decode(x.payload, 'hex'), x.ts, x.topic,"
    " x.part, x.off"
    " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[],"
    " $5::bigint[], $6::text[], $7::int[], $8::bigint[]) WITH ORDINALITY"
    " AS x(oid, src, dk, payload, ts, topic, part, off, n) ORDER BY x.n"};

static const db_stmt_t stmt_delete = {
    "deferred_delete",
    "DELETE FROM deferred_commands WHERE id = ANY($1::bigint[])"};

/* parked too long: the order never came */
static const db_stmt_t stmt_timed_out = {
    "deferred_timed_out",
    "DELETE FROM deferred_commands WHERE id = ANY(ARRAY(SELECT id FROM"
    " deferred_commands WHERE created_at < now() - $1::bigint *"
    " interval '1 millisecond' ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED))"
    " RETURNING payload, msg_ts_us, source_topic, source_partition,"
    " source_offset, id, source, order_id::text"};

od_status_t
deferred_queue_load(db_t *db, const char *orders, db_rows_t **rows, char *err,
                    size_t errlen)
{
    const char *params[1] = {orders};

    return db_queue_run(db, &stmt_load, 1, params, NULL, NULL, rows, err,
                        errlen);
}

int
deferred_take(db_rows_t *rows, snap_vec_t *out)
{
    for (int r = 0; r < db_nrows(rows); r++) {
        deferred_row_t *p = calloc(1, sizeof(*p));

        if (p == NULL)
            return -1;
        p->id = db_int64(rows, r, 0);
        snprintf(p->order_id, sizeof(p->order_id), "%s", db_val(rows, r, 1));
        snprintf(p->source, sizeof(p->source), "%s", db_val(rows, r, 2));
        snprintf(p->key, sizeof(p->key), "%s", db_val(rows, r, 3));
        p->payload = db_bytea(rows, r, 4, &p->len);
        p->ts_us = db_int64(rows, r, 5);
        snprintf(p->topic, sizeof(p->topic), "%s", db_val(rows, r, 6));
        p->partition = (int32_t)db_int64(rows, r, 7);
        p->offset = db_int64(rows, r, 8);
        if (p->payload == NULL) {
            free(p);
            return -1;
        }
        if (snap_vec_push(out, p) < 0) {
            free(p->payload);
            free(p);
            return -1;
        }
    }
    return 0;
}

od_status_t
deferred_queue_write(db_t *db, const snap_vec_t *rows, char *err, size_t errlen)
{
    pgcols_t ins, del;
    od_status_t st;

    pgcols_init(&ins, 8);
    pgcols_init(&del, 1);
    for (int i = 0; i < rows->n; i++) {
        const deferred_row_t *p = rows->v[i];

        if (p->id > 0 && p->taken) {
            pgarray_int(&del.a[0], p->id);
        } else if (p->id == 0 && !p->taken) {
            pgarray_text(&ins.a[0], p->order_id);
            pgarray_text(&ins.a[1], p->source);
            pgarray_text(&ins.a[2], p->key);
            pgarray_hex(&ins.a[3], p->payload, p->len);
            pgarray_int(&ins.a[4], p->ts_us);
            pgarray_text(&ins.a[5], p->topic);
            pgarray_int(&ins.a[6], p->partition);
            pgarray_int(&ins.a[7], p->offset);
        }
    }
    st = db_queue_cols(db, &stmt_delete, &del, NULL, err, errlen);
    if (st == OD_OK)
        st = db_queue_cols(db, &stmt_insert, &ins, NULL, err, errlen);
    else
        pgcols_free(&ins);
    return st;
}

od_status_t
deferred_take_timed_out(db_t *db, int64_t timeout_ms, db_rows_t **rows,
                        char *err, size_t errlen)
{
    char ms[24];
    const char *params[1] = {db_int_param(ms, timeout_ms)};

    return db_run(db, &stmt_timed_out, 1, params, rows, err, errlen);
}

void
deferred_rows_free(snap_vec_t *rows)
{
    for (int i = 0; i < rows->n; i++) {
        deferred_row_t *p = rows->v[i];

        free(p->payload);
        free(p);
    }
    free(rows->v);
    memset(rows, 0, sizeof(*rows));
}
