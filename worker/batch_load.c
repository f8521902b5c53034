/* batch_load.c - step 1 of a batch: load and lock every row its commands
 * can touch, in one round trip
 *
 * DESIGN: the statements go out together (pipelined with BEGIN and the
 * offset locks) in the global lock order: the per-order advisory locks
 * that serialise parking a command with the checkout that releases it,
 * then orders, then products (those named and those of the orders'
 * items), then variants, ascending ids; then what needs no lock (tax
 * rates, order numbers), the batch's dedup rows (dedup.c) and the parked
 * commands of the orders the batch's checkouts create (deferred.c). The
 * catalogue's and the orders' statements live here: this file and
 * batch_write.c are their room. In the first try (try_) the
 * locks are taken with SKIP LOCKED / pg_try_advisory_xact_lock and what
 * another executor holds is returned as held, so that the executor carries
 * the messages that need it to the next batch instead of waiting; the
 * blocking path waits, in the same order, so two executors cannot
 * deadlock on each other.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "db.h"

/* the advisory lock key space of parking and releasing (apply.c uses the
 * same) */
#define ORDER_LOCK_SPACE "4242003"

static const db_stmt_t stmt_advisory_try = {
    "batch_advisory_try",
    "SELECT k FROM (SELECT DISTINCT lower(k) AS k FROM unnest($1::text[]) k"
    " ORDER BY 1) s"
    " WHERE NOT pg_try_advisory_xact_lock(hashtextextended(k, " ORDER_LOCK_SPACE
    "))"};

static const db_stmt_t stmt_advisory_wait = {
    "batch_advisory_wait",
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, " ORDER_LOCK_SPACE
    "))) FROM (SELECT DISTINCT lower(k) AS k FROM unnest($1::text[]) k"
    " ORDER BY 1) s"};

#define ORDER_COLS                                                             \
    " o.id::text, o.number, o.customer_id, o.status, o.currency,"              \
    " o.subtotal_cents, COALESCE(o.tax_country, ''), o.tax_rate_bps,"          \
    " o.tax_cents, o.total_cents, COALESCE(o.payment_id, ''),"                 \
    " COALESCE(o.paid_cents, 0), COALESCE(o.tracking_number, ''),"             \
    " (extract(epoch FROM o.created_at) * 1000000)::bigint,"                   \
    " (extract(epoch FROM o.expires_at) * 1000000)::bigint, o.dedup_key,"      \
    " o.source"

/*
 * col 0: held (true: another executor has it; only the id follows). The
 * columns come from the rows the CTE locked: FOR UPDATE returns each row's
 * latest version (read committed re-reads a row updated since the
 * statement began), where a plain scan beside it would return the
 * statement's snapshot, and a batch writing stock or statuses decided from
 * a stale version would lose a concurrent batch's change.
 */
static const db_stmt_t stmt_orders_try = {
    "batch_orders_try",
    "WITH l AS MATERIALIZED (SELECT" ORDER_COLS " FROM orders o"
    " WHERE o.id = ANY($1::uuid[]) ORDER BY o.id FOR UPDATE SKIP LOCKED)"
    " SELECT false, l.* FROM l UNION ALL"
    " SELECT true, o.id::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM orders o"
    " WHERE o.id = ANY($1::uuid[])"
    " AND o.id::text <> ALL(ARRAY(SELECT id FROM l))"};

static const db_stmt_t stmt_orders_wait = {
    "batch_orders_wait",
    "SELECT false," ORDER_COLS " FROM orders o WHERE o.id = ANY($1::uuid[])"
    " ORDER BY o.id FOR UPDATE"};

static const db_stmt_t stmt_items = {
    "batch_items",
    "SELECT order_id::text, line_no, product_id, COALESCE(variant_id, 0),"
    " vendor_id, sku, name, COALESCE(variant_name, ''), quantity,"
    " unit_price_cents FROM order_items WHERE order_id = ANY($1::uuid[])"
    " ORDER BY order_id, line_no"};

#define PRODUCT_WANT                                                           \
    "ARRAY(SELECT unnest($1::bigint[]) UNION SELECT product_id"                \
    " FROM order_items WHERE order_id = ANY($2::uuid[]))"
#define PRODUCT_COLS                                                           \
    " p.id, p.vendor_id, p.kind = 'variant', p.name, p.sku, p.currency,"       \
    " COALESCE(p.price_cents, -1), COALESCE(p.stock, 0),"                      \
    " p.low_stock_threshold, p.deleted_at IS NOT NULL"

static const db_stmt_t stmt_products_try = {
    "batch_products_try",
    "WITH l AS MATERIALIZED (SELECT" PRODUCT_COLS " FROM products p"
    " WHERE p.id = ANY(" PRODUCT_WANT ") ORDER BY p.id FOR UPDATE SKIP LOCKED)"
    " SELECT false, l.* FROM l UNION ALL"
    " SELECT true, p.id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
    " FROM products p WHERE p.id = ANY(" PRODUCT_WANT ")"
    " AND p.id <> ALL(ARRAY(SELECT id FROM l))"};

static const db_stmt_t stmt_products_wait = {
    "batch_products_wait", "SELECT false," PRODUCT_COLS
                           " FROM products p WHERE p.id = ANY(" PRODUCT_WANT
                           ") ORDER BY p.id FOR UPDATE"};

/* the variants named, those of the orders' items, and every variant of
 * the products named (deleting a product deletes its variants). Variants
 * change only under their product's lock, so waiting for one is waiting
 * for a product the batch holds already */
static const db_stmt_t stmt_variants = {
    "batch_variants",
    "SELECT id, product_id, name, sku, COALESCE(price_cents, -1), stock,"
    " deleted_at IS NOT NULL FROM product_variants"
    " WHERE id = ANY(ARRAY(SELECT unnest($1::bigint[]) UNION"
    " SELECT variant_id FROM order_items WHERE order_id = ANY($2::uuid[])"
    " AND variant_id IS NOT NULL UNION SELECT id FROM product_variants"
    " WHERE product_id = ANY($3::bigint[]))) ORDER BY id FOR UPDATE"};

static const db_stmt_t stmt_taxes = {"batch_taxes",
                                     "SELECT country, rate_bps FROM tax_rates"
                                     " WHERE country = ANY($1::text[])"};

static const db_stmt_t stmt_numbers = {
    "batch_numbers",
    "SELECT nextval('order_number_seq') FROM generate_series(1, $1::int)"};

enum {
    L_ADVISORY,
    L_ORDERS,
    L_ITEMS,
    L_PRODUCTS,
    L_VARIANTS,
    L_TAXES,
    L_DEDUP,
    L_PARKED,
    L_NUMBERS,
    L_N
};

struct batch_load {
    int try_;
    db_rows_t *rows[L_N];
};

static od_status_t
queue(db_t *db, batch_load_t *l, int slot, const db_stmt_t *stmt, int n,
      const char *const *params, char *err, size_t errlen)
{
    return db_queue_run(db, stmt, n, params, NULL, NULL, &l->rows[slot], err,
                        errlen);
}

od_status_t
batch_load_queue(db_t *db, const batch_needs_t *cn, int try_,
                 batch_load_t **out, char *err, size_t errlen)
{
    batch_needs_t *n = (batch_needs_t *)cn; /* pgarray_str finishes in place */
    batch_load_t *l = calloc(1, sizeof(*l));
    const char *orders, *products, *p2[2];
    char count[24];
    od_status_t st = OD_OK;

    *out = NULL;
    if (l == NULL) {
        od_err(err, errlen, "out of memory");
        return OD_RETRY;
    }
    l->try_ = try_;
    orders = pgarray_str(&n->orders);
    products = pgarray_str(&n->products);
    if (orders == NULL || products == NULL ||
        pgarray_str(&n->variants) == NULL ||
        pgarray_str(&n->countries) == NULL ||
        pgarray_str(&n->dsources) == NULL || pgarray_str(&n->dkeys) == NULL ||
        pgarray_str(&n->creates) == NULL) {
        free(l);
        od_err(err, errlen, "out of memory");
        return OD_RETRY;
    }
    if (n->dedup_only) {
        p2[0] = pgarray_str(&n->dsources);
        p2[1] = pgarray_str(&n->dkeys);
        *out = l;
        return n->dkeys.n > 0 ? dedup_queue_load(db, p2[0], p2[1],
                                                 &l->rows[L_DEDUP], err, errlen)
                              : OD_OK;
    }
    if (n->orders.n > 0)
        st = queue(db, l, L_ADVISORY,
                   try_ ? &stmt_advisory_try : &stmt_advisory_wait, 1, &orders,
                   err, errlen);
    if (st == OD_OK && n->orders.n > 0)
        st = queue(db, l, L_ORDERS, try_ ? &stmt_orders_try : &stmt_orders_wait,
                   1, &orders, err, errlen);
    if (st == OD_OK && n->orders.n > 0)
        st = queue(db, l, L_ITEMS, &stmt_items, 1, &orders, err, errlen);
    p2[0] = products;
    p2[1] = orders;
    if (st == OD_OK && (n->products.n > 0 || n->orders.n > 0))
        st = queue(db, l, L_PRODUCTS,
                   try_ ? &stmt_products_try : &stmt_products_wait, 2, p2, err,
                   errlen);
    {
        const char *p3[3] = {pgarray_str(&n->variants), orders, products};

        if (st == OD_OK &&
            (n->variants.n > 0 || n->orders.n > 0 || n->products.n > 0))
            st = queue(db, l, L_VARIANTS, &stmt_variants, 3, p3, err, errlen);
    }
    p2[0] = pgarray_str(&n->countries);
    if (st == OD_OK && n->countries.n > 0)
        st = queue(db, l, L_TAXES, &stmt_taxes, 1, p2, err, errlen);
    p2[0] = pgarray_str(&n->dsources);
    p2[1] = pgarray_str(&n->dkeys);
    if (st == OD_OK && n->dkeys.n > 0)
        st = dedup_queue_load(db, p2[0], p2[1], &l->rows[L_DEDUP], err, errlen);
    p2[0] = pgarray_str(&n->creates);
    if (st == OD_OK && n->creates.n > 0)
        st = deferred_queue_load(db, p2[0], &l->rows[L_PARKED], err, errlen);
    p2[0] = db_int_param(count, n->ncheckouts);
    if (st == OD_OK && n->ncheckouts > 0)
        st = queue(db, l, L_NUMBERS, &stmt_numbers, 1, p2, err, errlen);
    if (st != OD_OK) {
        for (int i = 0; i < L_N; i++)
            db_rows_free(l->rows[i]);
        free(l);
        return st;
    }
    *out = l;
    return OD_OK;
}

static void
copy_str(char *dst, size_t len, const char *src)
{
    size_t n = strlen(src);

    if (n >= len)
        n = len - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Appends e to v, taking it: freed when it cannot be added (or NULL). */
static int
push(snap_vec_t *v, void *e)
{
    if (e == NULL || snap_vec_push(v, e) < 0) {
        free(e);
        return -1;
    }
    return 0;
}

static int
take_orders(batch_t *b, db_rows_t *rows, db_rows_t *items)
{
    for (int r = 0; r < db_nrows(rows); r++) {
        snap_order_t *o;
        int st;

        if (db_bool(rows, r, 0)) {
            char *id = strdup(db_val(rows, r, 1));

            if (push(&b->held_orders, id) < 0)
                return -1;
            continue;
        }
        o = snap_add_order(&b->snap, db_val(rows, r, 1));
        if (o == NULL)
            return -1;
        o->exists = 1;
        copy_str(o->number, sizeof(o->number), db_val(rows, r, 2));
        copy_str(o->customer_id, sizeof(o->customer_id), db_val(rows, r, 3));
        st = fsm_status_parse(db_val(rows, r, 4));
        o->status = st < 0 ? FSM_PENDING : (fsm_status_t)st;
        copy_str(o->currency, sizeof(o->currency), db_val(rows, r, 5));
        o->subtotal_cents = db_int64(rows, r, 6);
        copy_str(o->tax_country, sizeof(o->tax_country), db_val(rows, r, 7));
        o->tax_rate_bps = db_int64(rows, r, 8);
        o->tax_cents = db_int64(rows, r, 9);
        o->total_cents = db_int64(rows, r, 10);
        copy_str(o->payment_id, sizeof(o->payment_id), db_val(rows, r, 11));
        o->paid_cents = db_int64(rows, r, 12);
        copy_str(o->tracking_number, sizeof(o->tracking_number),
                 db_val(rows, r, 13));
        o->created_at_us = db_int64(rows, r, 14);
        o->expires_at_us = db_int64(rows, r, 15);
        copy_str(o->dedup_key, sizeof(o->dedup_key), db_val(rows, r, 16));
        copy_str(o->source, sizeof(o->source), db_val(rows, r, 17));
    }
    for (int r = 0; r < db_nrows(items); r++) {
        snap_order_t *o = snap_order(&b->snap, db_val(items, r, 0));
        snap_item_t *it, *grown;

        if (o == NULL)
            continue; /* a held order's */
        grown = realloc(o->items, (size_t)(o->nitems + 1) * sizeof(*grown));
        if (grown == NULL)
            return -1;
        o->items = grown;
        it = &o->items[o->nitems++];
        memset(it, 0, sizeof(*it));
        it->line_no = (int)db_int64(items, r, 1);
        it->product_id = db_int64(items, r, 2);
        it->variant_id = db_int64(items, r, 3);
        copy_str(it->vendor_id, sizeof(it->vendor_id), db_val(items, r, 4));
        copy_str(it->sku, sizeof(it->sku), db_val(items, r, 5));
        copy_str(it->name, sizeof(it->name), db_val(items, r, 6));
        copy_str(it->variant_name, sizeof(it->variant_name),
                 db_val(items, r, 7));
        it->quantity = db_int64(items, r, 8);
        it->unit_price_cents = db_int64(items, r, 9);
    }
    return 0;
}

static int
take_products(batch_t *b, db_rows_t *rows)
{
    for (int r = 0; r < db_nrows(rows); r++) {
        snap_product_t *p;

        if (db_bool(rows, r, 0)) {
            int64_t *id = malloc(sizeof(*id));

            if (id == NULL)
                return -1;
            *id = db_int64(rows, r, 1);
            if (push(&b->held_products, id) < 0)
                return -1;
            continue;
        }
        p = snap_add_product(&b->snap, db_int64(rows, r, 1));
        if (p == NULL)
            return -1;
        p->exists = 1;
        copy_str(p->vendor_id, sizeof(p->vendor_id), db_val(rows, r, 2));
        p->is_variant = db_bool(rows, r, 3);
        copy_str(p->name, sizeof(p->name), db_val(rows, r, 4));
        copy_str(p->sku, sizeof(p->sku), db_val(rows, r, 5));
        copy_str(p->currency, sizeof(p->currency), db_val(rows, r, 6));
        p->price_cents = db_int64(rows, r, 7);
        p->stock = db_int64(rows, r, 8);
        p->low_stock_threshold = db_int64(rows, r, 9);
        p->deleted = db_bool(rows, r, 10);
    }
    return 0;
}

static int
take_variants(batch_t *b, db_rows_t *rows)
{
    for (int r = 0; r < db_nrows(rows); r++) {
        snap_variant_t *v = snap_add_variant(&b->snap, db_int64(rows, r, 0),
                                             db_int64(rows, r, 1));

        if (v == NULL)
            return -1;
        v->exists = 1;
        copy_str(v->name, sizeof(v->name), db_val(rows, r, 2));
        copy_str(v->sku, sizeof(v->sku), db_val(rows, r, 3));
        v->price_cents = db_int64(rows, r, 4);
        v->stock = db_int64(rows, r, 5);
        v->deleted = db_bool(rows, r, 6);
    }
    return 0;
}

static int
take_taxes(batch_t *b, db_rows_t *rows)
{
    for (int r = 0; r < db_nrows(rows); r++) {
        snap_set_tax_rate(&b->snap, db_val(rows, r, 0), db_int64(rows, r, 1));
        /* loaded, not changed: nothing to write */
        ((snap_tax_rate_t *)b->snap.taxes.v[b->snap.taxes.n - 1])->dirty = 0;
    }
    return b->snap.missing ? -1 : 0;
}

static int
take_numbers(batch_t *b, db_rows_t *rows)
{
    int n = db_nrows(rows);

    b->snap.numbers = calloc((size_t)(n ? n : 1), sizeof(int64_t));
    if (b->snap.numbers == NULL)
        return -1;
    for (int r = 0; r < n; r++)
        b->snap.numbers[r] = db_int64(rows, r, 0);
    b->snap.nnumbers = n;
    return 0;
}

od_status_t
batch_load_take(batch_t *b, batch_load_t *l, char *err, size_t errlen)
{
    int rc = 0;

    for (int r = 0; l->rows[L_ADVISORY] && l->try_ &&
                    r < db_nrows(l->rows[L_ADVISORY]) && rc == 0;
         r++)
        rc = push(&b->held_orders, strdup(db_val(l->rows[L_ADVISORY], r, 0)));
    if (rc == 0)
        rc = take_orders(b, l->rows[L_ORDERS], l->rows[L_ITEMS]);
    if (rc == 0)
        rc = take_products(b, l->rows[L_PRODUCTS]);
    if (rc == 0)
        rc = take_variants(b, l->rows[L_VARIANTS]);
    if (rc == 0)
        rc = take_taxes(b, l->rows[L_TAXES]);
    if (rc == 0)
        rc = dedup_take(l->rows[L_DEDUP], &b->dedup);
    if (rc == 0)
        rc = deferred_take(l->rows[L_PARKED], &b->parked);
    if (rc == 0)
        rc = take_numbers(b, l->rows[L_NUMBERS]);
    for (int i = 0; i < L_N; i++)
        db_rows_free(l->rows[i]);
    free(l);
    if (rc < 0) {
        od_err(err, errlen, "out of memory loading a batch");
        return OD_RETRY;
    }
    return OD_OK;
}
