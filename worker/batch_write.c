/* batch_write.c - step 3 of a batch: everything decided, written with one
 * statement per table, in the round trip of the COMMIT
 *
 * DESIGN: each table gets one statement whose parameters are arrays, one
 * per column, unnested side by side; tables that nothing changed get none.
 * Rows go in the order the foreign keys and the guards want: catalogue,
 * tax rates, new orders and their items, status changes, history, ledger
 * (their statements are here), then the dedup rows, the parking shelf and
 * the outbox through the rooms that own those tables (dedup.c, deferred.c,
 * outbox_store.c). A status change is an UPDATE the
 * transition guard checks, one per step: an order that moved twice in one
 * batch (pending, paid, processing) gets two statements, each moving every
 * order of that round one step, so the guard sees only legal single steps.
 * The database keeps its guards (the FSM trigger, stock >= 0, the unique
 * keys): an error there is one the snapshot could not predict, the batch
 * rolls back, and the executor applies it again one command at a time.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "db.h"

static const db_stmt_t stmt_products_upsert = {
    "bw_products_upsert",
    "INSERT INTO products (id, vendor_id, kind, name, sku, currency,"
    " price_cents, stock, low_stock_threshold, deleted_at)"
    " SELECT x.id, x.vendor, CASE WHEN x.var THEN 'variant' ELSE 'simple' END,"
    " x.name, x.sku, x.cur, CASE WHEN x.var OR x.price < 0 THEN NULL"
    " ELSE x.price END, CASE WHEN x.var THEN NULL ELSE x.stock END, x.thr,"
    " CASE WHEN x.del THEN now() END"
    " FROM unnest($1::bigint[], $2::text[], $3::boolean[], $4::text[],"
    " $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::bigint[],"
    " $10::boolean[]) AS x(id, vendor, var, name, sku, cur, price, stock, thr,"
    " del)"
    " ON CONFLICT (id) DO UPDATE SET vendor_id = EXCLUDED.vendor_id,"
    " name = EXCLUDED.name, sku = EXCLUDED.sku, currency = EXCLUDED.currency,"
    " price_cents = EXCLUDED.price_cents, stock = EXCLUDED.stock,"
    " low_stock_threshold = EXCLUDED.low_stock_threshold,"
    " deleted_at = CASE WHEN EXCLUDED.deleted_at IS NULL THEN NULL"
    " ELSE COALESCE(products.deleted_at, EXCLUDED.deleted_at) END,"
    " updated_at = now()"};

static const db_stmt_t stmt_products_stock = {
    "bw_products_stock",
    "UPDATE products p SET stock = x.stock, updated_at = now()"
    " FROM unnest($1::bigint[], $2::bigint[]) AS x(id, stock)"
    " WHERE p.id = x.id"};

static const db_stmt_t stmt_variants_upsert = {
    "bw_variants_upsert",
    "INSERT INTO product_variants (id, product_id, name, sku, price_cents,"
    " stock, deleted_at)"
    " SELECT x.id, x.pid, x.name, x.sku, CASE WHEN x.price < 0 THEN NULL"
    " ELSE x.price END, x.stock, CASE WHEN x.del THEN now() END"
    " FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[],"
    " $5::bigint[], $6::bigint[], $7::boolean[])"
    " AS x(id, pid, name, sku, price, stock, del)"
    " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name,"
    " sku = EXCLUDED.sku, price_cents = EXCLUDED.price_cents,"
    " stock = EXCLUDED.stock,"
    " deleted_at = CASE WHEN EXCLUDED.deleted_at IS NULL THEN NULL"
    " ELSE COALESCE(product_variants.deleted_at, EXCLUDED.deleted_at) END,"
    " updated_at = now()"};

static const db_stmt_t stmt_variants_stock = {
    "bw_variants_stock",
    "UPDATE product_variants v SET stock = x.stock, updated_at = now()"
    " FROM unnest($1::bigint[], $2::bigint[]) AS x(id, stock)"
    " WHERE v.id = x.id"};

static const db_stmt_t stmt_taxes = {
    "bw_taxes",
    "INSERT INTO tax_rates (country, rate_bps)"
    " SELECT * FROM unnest($1::text[], $2::int[])"
    " ON CONFLICT (country) DO UPDATE SET rate_bps = EXCLUDED.rate_bps,"
    " updated_at = now()"};

#define EPOCH_US(x) "'epoch'::timestamptz + " x " * interval '1 microsecond'"

static const db_stmt_t stmt_orders_insert = {
    "bw_orders_insert",
    "INSERT INTO orders (id, number, customer_id, status, currency,"
    " subtotal_cents, tax_country, tax_rate_bps, tax_cents, total_cents,"
    " dedup_key, source, created_at, expires_at)"
    " SELECT x.id, x.num, x.cust, 'pending', x.cur, x.sub, NULLIF(x.tc, ''),"
    " x.rate, x.tax, x.total, x.dk, x.src, " EPOCH_US("x.cat") ", " EPOCH_US(
        "x.exp") " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[],"
                 " $5::bigint[], $6::text[], $7::int[], $8::bigint[],"
                 " $9::bigint[], $10::text[], $11::text[], $12::bigint[],"
                 " $13::bigint[]) AS x(id, num, cust, cur, sub, tc, rate,"
                 " tax, total, dk, src, cat, exp)"};

static const db_stmt_t stmt_items_insert = {
    "bw_items_insert",
    "INSERT INTO order_items (order_id, line_no, product_id, variant_id,"
    " vendor_id, sku, name, variant_name, quantity, unit_price_cents)"
    " SELECT x.oid, x.line, x.pid, NULLIF(x.vid, 0), x.vendor, x.sku, x.name,"
    " NULLIF(x.vname, ''), x.qty, x.price"
    " FROM unnest($1::uuid[], $2::int[], $3::bigint[], $4::bigint[],"
    " $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[],"
    " $10::bigint[]) AS x(oid, line, pid, vid, vendor, sku, name, vname, qty,"
    " price)"};

static const db_stmt_t stmt_orders_status = {
    "bw_orders_status",
    "UPDATE orders o SET status = x.st, updated_at = now()"
    " FROM unnest($1::uuid[], $2::text[]) AS x(id, st) WHERE o.id = x.id"};

static const db_stmt_t stmt_orders_payment = {
    "bw_orders_payment",
    "UPDATE orders o SET payment_id = NULLIF(x.pay, ''),"
    " paid_cents = CASE WHEN x.pay = '' THEN NULL ELSE x.paid END,"
    " tracking_number = NULLIF(x.trk, ''), updated_at = now()"
    " FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[])"
    " AS x(id, pay, paid, trk) WHERE o.id = x.id"};

static const db_stmt_t stmt_history = {
    "bw_history",
    "INSERT INTO order_status_history (order_id, from_status, to_status,"
    " actor_role, actor_id, dedup_key, note, source)"
    " SELECT x.oid, x.f, x.t, x.role, x.actor, x.dk, NULLIF(x.note, ''), x.src"
    " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],"
    " $6::text[], $7::text[], $8::text[]) WITH ORDINALITY"
    " AS x(oid, f, t, role, actor, dk, note, src, n) ORDER BY x.n"};

static const db_stmt_t stmt_ledger = {
    "bw_ledger",
    "INSERT INTO stock_ledger (product_id, variant_id, delta, reason,"
    " order_id, dedup_key, source)"
    " SELECT x.pid, NULLIF(x.vid, 0), x.delta, x.reason, x.oid, x.dk, x.src"
    " FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[],"
    " $5::uuid[], $6::text[], $7::text[]) WITH ORDINALITY"
    " AS x(pid, vid, delta, reason, oid, dk, src, n) ORDER BY x.n"};

static od_status_t
write_products(db_t *db, snapshot_t *s, char *err, size_t errlen)
{
    pgcols_t up, stock;
    od_status_t st;

    pgcols_init(&up, 10);
    pgcols_init(&stock, 2);
    for (int i = 0; i < s->products.n; i++) {
        const snap_product_t *p = s->products.v[i];

        if (p->dirty) {
            pgarray_int(&up.a[0], p->id);
            pgarray_text(&up.a[1], p->vendor_id);
            pgarray_bool(&up.a[2], p->is_variant);
            pgarray_text(&up.a[3], p->name);
            pgarray_text(&up.a[4], p->sku);
            pgarray_text(&up.a[5], p->currency);
            pgarray_int(&up.a[6], p->price_cents);
            pgarray_int(&up.a[7], p->stock);
            pgarray_int(&up.a[8], p->low_stock_threshold);
            pgarray_bool(&up.a[9], p->deleted);
        } else if (p->stock_dirty) {
            pgarray_int(&stock.a[0], p->id);
            pgarray_int(&stock.a[1], p->stock);
        }
    }
    st = db_queue_cols(db, &stmt_products_upsert, &up, NULL, err, errlen);
    if (st == OD_OK)
        st = db_queue_cols(db, &stmt_products_stock, &stock, NULL, err, errlen);
    else
        pgcols_free(&stock);
    return st;
}

static od_status_t
write_variants(db_t *db, snapshot_t *s, char *err, size_t errlen)
{
    pgcols_t up, stock;
    od_status_t st;

    pgcols_init(&up, 7);
    pgcols_init(&stock, 2);
    for (int i = 0; i < s->variants.n; i++) {
        const snap_variant_t *v = s->variants.v[i];

        if (v->dirty) {
            pgarray_int(&up.a[0], v->id);
            pgarray_int(&up.a[1], v->product_id);
            pgarray_text(&up.a[2], v->name);
            pgarray_text(&up.a[3], v->sku);
            pgarray_int(&up.a[4], v->price_cents);
            pgarray_int(&up.a[5], v->stock);
            pgarray_bool(&up.a[6], v->deleted);
        } else if (v->stock_dirty) {
            pgarray_int(&stock.a[0], v->id);
            pgarray_int(&stock.a[1], v->stock);
        }
    }
    st = db_queue_cols(db, &stmt_variants_upsert, &up, NULL, err, errlen);
    if (st == OD_OK)
        st = db_queue_cols(db, &stmt_variants_stock, &stock, NULL, err, errlen);
    else
        pgcols_free(&stock);
    return st;
}

static od_status_t
write_taxes(db_t *db, snapshot_t *s, char *err, size_t errlen)
{
    pgcols_t c;

    pgcols_init(&c, 2);
    /* the newest version of each country: a rate set twice in one batch
     * is one row of the upsert */
    for (int i = s->taxes.n - 1; i >= 0; i--) {
        const snap_tax_rate_t *t = s->taxes.v[i];
        int newer = 0;

        for (int j = i + 1; j < s->taxes.n && !newer; j++)
            newer = strcmp(((snap_tax_rate_t *)s->taxes.v[j])->country,
                           t->country) == 0;
        if (!t->dirty || newer)
            continue;
        pgarray_text(&c.a[0], t->country);
        pgarray_int(&c.a[1], t->rate_bps);
    }
    return db_queue_cols(db, &stmt_taxes, &c, NULL, err, errlen);
}

static od_status_t
write_orders(db_t *db, snapshot_t *s, char *err, size_t errlen)
{
    pgcols_t o, it;
    od_status_t st;

    pgcols_init(&o, 13);
    pgcols_init(&it, 10);
    for (int i = 0; i < s->orders.n; i++) {
        const snap_order_t *r = s->orders.v[i];

        if (!r->created)
            continue;
        pgarray_text(&o.a[0], r->id);
        pgarray_text(&o.a[1], r->number);
        pgarray_text(&o.a[2], r->customer_id);
        pgarray_text(&o.a[3], r->currency);
        pgarray_int(&o.a[4], r->subtotal_cents);
        pgarray_text(&o.a[5], r->tax_country);
        pgarray_int(&o.a[6], r->tax_rate_bps);
        pgarray_int(&o.a[7], r->tax_cents);
        pgarray_int(&o.a[8], r->total_cents);
        pgarray_text(&o.a[9], r->dedup_key);
        pgarray_text(&o.a[10], r->source);
        pgarray_int(&o.a[11], r->created_at_us);
        pgarray_int(&o.a[12], r->expires_at_us);
        for (int k = 0; k < r->nitems; k++) {
            const snap_item_t *x = &r->items[k];

            pgarray_text(&it.a[0], r->id);
            pgarray_int(&it.a[1], x->line_no);
            pgarray_int(&it.a[2], x->product_id);
            pgarray_int(&it.a[3], x->variant_id);
            pgarray_text(&it.a[4], x->vendor_id);
            pgarray_text(&it.a[5], x->sku);
            pgarray_text(&it.a[6], x->name);
            pgarray_text(&it.a[7], x->variant_name);
            pgarray_int(&it.a[8], x->quantity);
            pgarray_int(&it.a[9], x->unit_price_cents);
        }
    }
    st = db_queue_cols(db, &stmt_orders_insert, &o, NULL, err, errlen);
    if (st == OD_OK)
        st = db_queue_cols(db, &stmt_items_insert, &it, NULL, err, errlen);
    else
        pgcols_free(&it);
    return st;
}

/* Status changes in rounds: round k moves every order that changed at
 * least k times in this batch by its k-th step. */
static od_status_t
write_status(db_t *db, snapshot_t *s, char *err, size_t errlen)
{
    int n = s->history.n, round = 0, more = 1;
    int *step = calloc((size_t)(n ? n : 1), sizeof(*step));
    od_status_t st = OD_OK;

    if (step == NULL) {
        od_err(err, errlen, "out of memory writing a batch");
        return OD_RETRY;
    }
    /* step[i]: how many changes of the same order precede history row i */
    for (int i = 0; i < n; i++) {
        const snap_history_t *h = s->history.v[i];

        step[i] = -1;
        if (h->from < 0)
            continue; /* the creation: the INSERT wrote it */
        step[i] = 0;
        for (int j = 0; j < i; j++) {
            const snap_history_t *g = s->history.v[j];

            if (g->from >= 0 && strcmp(g->order_id, h->order_id) == 0)
                step[i]++;
        }
    }
    while (more && st == OD_OK) {
        pgcols_t c;

        more = 0;
        pgcols_init(&c, 2);
        for (int i = 0; i < n; i++) {
            const snap_history_t *h = s->history.v[i];

            if (step[i] > round)
                more = 1;
            if (step[i] != round)
                continue;
            pgarray_text(&c.a[0], h->order_id);
            pgarray_text(&c.a[1], fsm_status_name(h->to));
        }
        st = db_queue_cols(db, &stmt_orders_status, &c, NULL, err, errlen);
        round++;
    }
    free(step);
    return st;
}

static od_status_t
write_payments(db_t *db, snapshot_t *s, char *err, size_t errlen)
{
    pgcols_t c;

    pgcols_init(&c, 4);
    for (int i = 0; i < s->orders.n; i++) {
        const snap_order_t *o = s->orders.v[i];

        if (!o->dirty)
            continue;
        pgarray_text(&c.a[0], o->id);
        pgarray_text(&c.a[1], o->payment_id);
        pgarray_int(&c.a[2], o->paid_cents);
        pgarray_text(&c.a[3], o->tracking_number);
    }
    return db_queue_cols(db, &stmt_orders_payment, &c, NULL, err, errlen);
}

static od_status_t
write_history(db_t *db, snapshot_t *s, char *err, size_t errlen)
{
    pgcols_t c;

    pgcols_init(&c, 8);
    for (int i = 0; i < s->history.n; i++) {
        const snap_history_t *h = s->history.v[i];

        pgarray_text(&c.a[0], h->order_id);
        pgarray_text(&c.a[1], h->from < 0
                                  ? NULL
                                  : fsm_status_name((fsm_status_t)h->from));
        pgarray_text(&c.a[2], fsm_status_name(h->to));
        pgarray_text(&c.a[3], cmd_role_name(h->role));
        pgarray_text(&c.a[4], h->actor_id);
        pgarray_text(&c.a[5], h->dedup_key);
        pgarray_text(&c.a[6], h->note);
        pgarray_text(&c.a[7], h->source);
    }
    return db_queue_cols(db, &stmt_history, &c, NULL, err, errlen);
}

static od_status_t
write_ledger(db_t *db, snapshot_t *s, char *err, size_t errlen)
{
    pgcols_t c;

    pgcols_init(&c, 7);
    for (int i = 0; i < s->ledger.n; i++) {
        const snap_ledger_t *l = s->ledger.v[i];

        pgarray_int(&c.a[0], l->product_id);
        pgarray_int(&c.a[1], l->variant_id);
        pgarray_int(&c.a[2], l->delta);
        pgarray_text(&c.a[3], l->reason);
        pgarray_text(&c.a[4], l->order_id[0] ? l->order_id : NULL);
        pgarray_text(&c.a[5], l->dedup_key);
        pgarray_text(&c.a[6], l->source);
    }
    return db_queue_cols(db, &stmt_ledger, &c, NULL, err, errlen);
}

od_status_t
batch_write_queue(db_t *db, batch_t *b, char *err, size_t errlen)
{
    snapshot_t *s = &b->snap;
    od_status_t st;

    st = write_products(db, s, err, errlen);
    if (st == OD_OK)
        st = write_variants(db, s, err, errlen);
    if (st == OD_OK)
        st = write_taxes(db, s, err, errlen);
    if (st == OD_OK)
        st = write_orders(db, s, err, errlen);
    if (st == OD_OK)
        st = write_status(db, s, err, errlen);
    if (st == OD_OK)
        st = write_payments(db, s, err, errlen);
    if (st == OD_OK)
        st = write_history(db, s, err, errlen);
    if (st == OD_OK)
        st = write_ledger(db, s, err, errlen);
    if (st == OD_OK)
        st = dedup_queue_write(db, &b->dedup, err, errlen);
    if (st == OD_OK)
        st = deferred_queue_write(db, &b->parked, err, errlen);
    if (st == OD_OK)
        st = outbox_queue_write(db, &b->events, err, errlen);
    return st;
}
