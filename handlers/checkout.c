/* checkout.c - creates a pending order and reserves its stock
 *
 * DESIGN: all-or-nothing in four steps, few round trips:
 * 1. does the order exist, and the tax rate of tax_country (in the same
 *    query as the product locks of step 2);
 * 2. lock the products, then the variants, each in ascending id order
 *    with one FOR UPDATE statement (the global locking order; lines are
 *    aggregated and sorted per (product, variant) at parse time, so two
 *    checkouts naming the same products in any order cannot deadlock);
 * 3. check every line against what is locked (checkout_check: pure) and
 *    compute the totals, overflow-checked;
 * 4. one statement inserts the order, its items (snapshots of sku, names,
 *    vendor and the current price, joined from the locked rows) and the
 *    first history row; then the guarded decrements write the ledger.
 * The order number comes from nextval() inside that insert, so refused
 * checkouts burn no numbers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkout.h"
#include "snapshot.h"
#include "catalogue.h"
#include "handlers.h"
#include "stock.h"

/* Step 1 and the product half of step 2 in one round trip: always one
 * row of (order exists, tax rate) even when no product matches. */
static const db_stmt_t stmt_lock_products = {
    "checkout_lock_products",
    "SELECT x.order_exists, x.rate_bps, p.id, p.kind = 'variant',"
    " p.currency, p.price_cents, COALESCE(p.stock, 0),"
    " p.deleted_at IS NOT NULL"
    " FROM (SELECT EXISTS (SELECT 1 FROM orders WHERE id = $2::uuid)"
    " AS order_exists,"
    " (SELECT rate_bps FROM tax_rates WHERE country = $3) AS rate_bps) x"
    " LEFT JOIN LATERAL (SELECT * FROM products"
    " WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE) p ON true"};

static const db_stmt_t stmt_lock_variants = {
    "checkout_lock_variants",
    "SELECT id, product_id, price_cents, stock, deleted_at IS NOT NULL"
    " FROM product_variants WHERE id = ANY($1::bigint[])"
    " ORDER BY id FOR UPDATE"};

/* $11: event time in epoch microseconds, $12: ttl in seconds */
static const db_stmt_t stmt_insert_order = {
    "checkout_insert_order",
    "WITH t AS (SELECT 'epoch'::timestamptz"
    " + ($11::bigint / 1000000) * interval '1 second'"
    " + ($11::bigint % 1000000) * interval '1 microsecond' AS at,"
    " nextval('order_number_seq') AS n),"
    " o AS (INSERT INTO orders (id, number, customer_id, status, currency,"
    " subtotal_cents, tax_country, tax_rate_bps, tax_cents, total_cents,"
    " dedup_key, source, created_at, expires_at)"
    " SELECT $1::uuid, $2 || CASE WHEN t.n < 100000000"
    " THEN lpad(t.n::text, 8, '0') ELSE t.n::text END,"
    " $3, 'pending', $4, $5::bigint, $6, $7::int, $8::bigint, $9::bigint,"
    " $10, $19, t.at, t.at + $12::bigint * interval '1 second' FROM t"
    " ON CONFLICT (id) DO NOTHING RETURNING id, number),"
    " i AS (INSERT INTO order_items (order_id, line_no, product_id,"
    " variant_id, vendor_id, sku, name, variant_name, quantity,"
    " unit_price_cents)"
    " SELECT o.id, x.ord::int, x.pid, v.id, p.vendor_id,"
    " COALESCE(v.sku, p.sku), p.name, v.name, x.qty, x.price"
    " FROM o, unnest($13::bigint[], $14::bigint[], $15::bigint[],"
    " $16::bigint[]) WITH ORDINALITY AS x(pid, vid, qty, price, ord)"
    /* OFFSET 0 keeps these lookups on the primary keys: a generic plan
     * would otherwise hash-join a scan of the whole catalogue */
    " JOIN LATERAL (SELECT vendor_id, sku, name FROM products"
    "  WHERE id = x.pid OFFSET 0) p ON true"
    " LEFT JOIN LATERAL (SELECT id, sku, name FROM product_variants"
    "  WHERE id = x.vid OFFSET 0) v ON true),"
    " h AS (INSERT INTO order_status_history (order_id, from_status,"
    " to_status, actor_role, actor_id, dedup_key, source)"
    " SELECT o.id, NULL, 'pending', $17, $18, $10, $19 FROM o),"
    /* the reservation: guarded decrements (the rows are locked and were
     * checked, so every one matches) and their ledger rows */
    " sp AS (UPDATE products p SET stock = p.stock - x.qty,"
    " updated_at = now() FROM o, unnest($13::bigint[], $14::bigint[],"
    " $15::bigint[]) AS x(pid, vid, qty)"
    " WHERE x.vid = 0 AND p.id = x.pid AND p.stock >= x.qty"
    " RETURNING p.id AS pid, 0::bigint AS vid, x.qty, p.stock,"
    " p.low_stock_threshold AS thr),"
    " sv AS (UPDATE product_variants v SET stock = v.stock - x.qty,"
    " updated_at = now() FROM o, unnest($13::bigint[], $14::bigint[],"
    " $15::bigint[]) AS x(pid, vid, qty)"
    " WHERE x.vid <> 0 AND v.id = x.vid AND v.product_id = x.pid"
    " AND v.stock >= x.qty"
    " RETURNING v.product_id AS pid, v.id AS vid, x.qty, v.stock,"
    " (SELECT low_stock_threshold FROM products WHERE id = v.product_id)"
    " AS thr),"
    " s AS (SELECT * FROM sp UNION ALL SELECT * FROM sv),"
    " l AS (INSERT INTO stock_ledger (product_id, variant_id, delta, reason,"
    " order_id, dedup_key, source) SELECT pid, NULLIF(vid, 0), -qty,"
    " 'order', $1::uuid, $10, $19 FROM s)"
    /* one row, or one per item that fell to its low-stock threshold */
    " SELECT o.number, (SELECT count(*) FROM s), low.pid, low.vid,"
    " low.stock, low.thr FROM o LEFT JOIN (SELECT * FROM s"
    " WHERE s.stock <= s.thr AND s.stock + s.qty > s.thr) low ON true"};

od_status_t
checkout_parse(const json_t *root, void **out, char *err, size_t errlen)
{
    checkout_cmd_t *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        od_err(err, errlen, "out of memory");
        return OD_REJECT;
    }
    if (json_field_uuid(root, "order_id", 1, c->order_id, err, errlen) < 0 ||
        json_field_str(root, "customer_id", 1, c->customer_id,
                       sizeof(c->customer_id), err, errlen) < 0 ||
        catalogue_field_code(root, "currency", 1, 3, c->currency, err, errlen) <
            0 ||
        catalogue_field_code(root, "tax_country", 0, 2, c->tax_country, err,
                             errlen) < 0 ||
        json_field_int(root, "ttl_seconds", 0, 1, CHECKOUT_MAX_TTL_S, &c->ttl_s,
                       err, errlen) < 0 ||
        checkout_parse_lines(json_object_get(root, "items"), c, err, errlen) <
            0) {
        free(c);
        return OD_REJECT;
    }
    *out = c;
    return OD_OK;
}

const char *
checkout_order_id(const void *cmd)
{
    return ((const checkout_cmd_t *)cmd)->order_id;
}

/* A Postgres array literal of one int64 per group ("{1,2,3}"); which: 0
 * product, 1 variant (0 when none), 2 quantity, 3 price from states. */
static void
group_array(const checkout_cmd_t *c, const checkout_state_t *states, int which,
            int variants_only, char *buf, size_t len)
{
    size_t n;
    int i, first = 1;

    snprintf(buf, len, "{");
    for (i = 0; i < c->ngroups; i++) {
        const checkout_group_t *g = &c->groups[i];
        int64_t v = which == 0   ? g->product_id
                    : which == 1 ? g->variant_id
                    : which == 2 ? g->quantity
                                 : states[i].price_cents;

        if (variants_only && g->variant_id == 0)
            continue;
        n = strlen(buf);
        snprintf(buf + n, len - n, "%s%lld", first ? "" : ",", (long long)v);
        first = 0;
    }
    n = strlen(buf);
    snprintf(buf + n, len - n, "}");
}

#define CHECKOUT_ARRAY_LEN (CHECKOUT_MAX_LINES * 22 + 3)

/*
 * Checks that the order is new (else rejects order_exists), picks the tax
 * rate, locks the products and variants of every group and fills states.
 */
static od_status_t
lock_catalogue(apply_ctx_t *ctx, const checkout_cmd_t *c,
               checkout_state_t *states, int64_t *rate_bps, cmd_result_t *res)
{
    char ids[CHECKOUT_ARRAY_LEN];
    const char *params[3] = {ids, c->order_id,
                             c->tax_country[0] ? c->tax_country : NULL};
    db_rows_t *rows = NULL;
    od_status_t st;
    int i, r, nvariants = 0;

    memset(states, 0, sizeof(*states) * (size_t)c->ngroups);
    group_array(c, states, 0, 0, ids, sizeof(ids));
    st = db_run(ctx->db, &stmt_lock_products, 3, params, &rows, ctx->err,
                ctx->errlen);
    if (st != OD_OK)
        goto out;
    if (db_nrows(rows) < 1) {
        od_err(ctx->err, ctx->errlen, "checkout lock query returned no row");
        st = OD_FATAL;
        goto out;
    }
    if (db_bool(rows, 0, 0)) {
        cmd_reject(res, "order_exists", NULL);
        goto out;
    }
    *rate_bps = db_isnull(rows, 0, 1) ? ctx->cfg->default_tax_bps
                                      : db_int64(rows, 0, 1);
    for (r = 0; r < db_nrows(rows); r++) {
        if (db_isnull(rows, r, 2)) /* no product matched at all */
            continue;
        for (i = 0; i < c->ngroups; i++) {
            checkout_state_t *s = &states[i];

            if (c->groups[i].product_id != db_int64(rows, r, 2))
                continue;
            s->product_found = 1;
            s->product_is_variant = db_bool(rows, r, 3);
            snprintf(s->currency, sizeof(s->currency), "%s",
                     db_val(rows, r, 4));
            s->price_known = !db_isnull(rows, r, 5);
            s->price_cents = db_int64(rows, r, 5);
            s->stock = db_int64(rows, r, 6);
            s->product_deleted = db_bool(rows, r, 7);
            if (c->groups[i].variant_id != 0) {
                /* the variant decides price and stock */
                s->price_known = 0;
                s->price_cents = 0;
                s->stock = 0;
                nvariants++;
            }
        }
    }
    db_rows_free(rows);
    rows = NULL;
    if (nvariants == 0)
        goto out;
    group_array(c, states, 1, 1, ids, sizeof(ids));
    st = db_run(ctx->db, &stmt_lock_variants, 1, params, &rows, ctx->err,
                ctx->errlen);
    if (st != OD_OK)
        goto out;
    for (r = 0; r < db_nrows(rows); r++) {
        for (i = 0; i < c->ngroups; i++) {
            checkout_state_t *s = &states[i];

            if (c->groups[i].variant_id != db_int64(rows, r, 0))
                continue;
            s->variant_found = 1;
            s->variant_product_id = db_int64(rows, r, 1);
            s->price_known = !db_isnull(rows, r, 2);
            s->price_cents = db_int64(rows, r, 2);
            s->stock = db_int64(rows, r, 3);
            s->variant_deleted = db_bool(rows, r, 4);
        }
    }
out:
    db_rows_free(rows);
    return st;
}

/* What step 4 returned: the order number row (none when a concurrent
 * checkout of the same order_id committed first), how many lines were
 * reserved, and the items that fell to their low-stock threshold. */
static od_status_t
checkout_finish(apply_ctx_t *ctx, const void *cmd, db_rows_t *rows,
                cmd_result_t *res)
{
    const checkout_cmd_t *c = cmd;

    if (db_nrows(rows) == 0)
        return cmd_reject(res, "order_exists", NULL);
    if (db_int64(rows, 0, 1) != c->ngroups) {
        od_err(ctx->err, ctx->errlen,
               "stock of order %s changed under its row locks", c->order_id);
        return OD_FATAL;
    }
    for (int k = 0; k < db_nrows(rows); k++)
        if (!db_isnull(rows, k, 2))
            stock_low_notice(res, db_int64(rows, k, 2), db_int64(rows, k, 3),
                             db_int64(rows, k, 4), db_int64(rows, k, 5));
    return OD_OK;
}

/*
 * Queues step 4 to go out with the command's dedup row and result event
 * (see apply_ctx_t): its rows only confirm what the locks already showed.
 */
static od_status_t
insert_order(apply_ctx_t *ctx, const checkout_cmd_t *c,
             const checkout_state_t *states, int64_t rate_bps,
             const int64_t totals[3])
{
    char arrays[4][CHECKOUT_ARRAY_LEN];
    char sub[24], rate[24], tax[24], total[24], at[24], ttl[24];
    const char *params[19];
    od_status_t st;
    int k;

    for (k = 0; k < 4; k++)
        group_array(c, states, k, 0, arrays[k], sizeof(arrays[k]));
    params[0] = c->order_id;
    params[1] = ctx->cfg->order_prefix ? ctx->cfg->order_prefix : "";
    params[2] = c->customer_id;
    params[3] = c->currency;
    params[4] = db_int_param(sub, totals[0]);
    params[5] = c->tax_country[0] ? c->tax_country : NULL;
    params[6] = db_int_param(rate, rate_bps);
    params[7] = db_int_param(tax, totals[1]);
    params[8] = db_int_param(total, totals[2]);
    params[9] = ctx->env->dedup_key;
    params[10] = db_int_param(at, ctx->env->event_time_us);
    params[11] =
        db_int_param(ttl, c->ttl_s ? c->ttl_s : ctx->cfg->pending_ttl_s);
    for (k = 0; k < 4; k++)
        params[12 + k] = arrays[k];
    params[16] = cmd_role_name(ctx->env->role);
    params[17] = ctx->env->actor_id;
    params[18] = ctx->env->source;
    st = db_queue_run(ctx->db, &stmt_insert_order, 19, params, NULL, NULL,
                      &ctx->finish_rows, ctx->err, ctx->errlen);
    if (st == OD_OK)
        ctx->finish = checkout_finish;
    return st;
}

od_status_t
checkout_apply(apply_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    const checkout_cmd_t *c = cmd;
    checkout_state_t states[CHECKOUT_MAX_LINES];
    int64_t rate_bps = 0, totals[3];
    const char *reason;
    json_t *details;
    od_status_t st;

    snprintf(res->order_id, sizeof(res->order_id), "%s", c->order_id);
    if (ctx->env->role == ROLE_CUSTOMER &&
        strcmp(ctx->env->actor_id, c->customer_id) != 0)
        return cmd_reject(res, "unauthorized",
                          json_pack("{s:s}", "error",
                                    "customers may only check out for "
                                    "themselves"));
    st = lock_catalogue(ctx, c, states, &rate_bps, res);
    if (st != OD_OK || res->outcome != OUTCOME_APPLIED)
        return st;
    reason = checkout_check(c, states, &details);
    if (reason != NULL)
        return cmd_reject(res, reason, details);
    if (checkout_totals(c, states, rate_bps, &totals[0], &totals[1],
                        &totals[2]) < 0)
        return cmd_reject(
            res, "invalid_command",
            json_pack("{s:s}", "error", "the order total overflows"));
    /* the order, its items, its history, the stock and the ledger: one
     * statement */
    return insert_order(ctx, c, states, rate_bps, totals);
}

/* What the snapshot says about each group, as checkout_check reads it. */
static void
snapshot_states(snapshot_t *s, const checkout_cmd_t *c,
                checkout_state_t *states)
{
    memset(states, 0, sizeof(*states) * (size_t)c->ngroups);
    for (int i = 0; i < c->ngroups; i++) {
        const checkout_group_t *g = &c->groups[i];
        checkout_state_t *st = &states[i];
        const snap_product_t *p = snap_product(s, g->product_id);
        const snap_variant_t *v;

        if (p == NULL)
            continue;
        st->product_found = 1;
        st->product_is_variant = p->is_variant;
        st->product_deleted = p->deleted;
        memcpy(st->currency, p->currency, sizeof(st->currency));
        st->price_known = p->price_cents >= 0;
        st->price_cents = st->price_known ? p->price_cents : 0;
        st->stock = p->is_variant ? 0 : p->stock;
        if (g->variant_id == 0)
            continue;
        /* the variant decides price and stock */
        st->price_known = 0;
        st->price_cents = 0;
        st->stock = 0;
        v = snap_variant(s, g->variant_id);
        if (v == NULL)
            continue;
        st->variant_found = 1;
        st->variant_product_id = v->product_id;
        st->variant_deleted = v->deleted;
        st->price_known = v->price_cents >= 0;
        st->price_cents = st->price_known ? v->price_cents : 0;
        st->stock = v->stock;
    }
}

/* The new order's row and items, from the command and the catalogue. */
static od_status_t
create_order(decide_ctx_t *ctx, const checkout_cmd_t *c,
             const checkout_state_t *states, int64_t rate_bps,
             const int64_t totals[3], snap_order_t **out)
{
    snapshot_t *s = ctx->snap;
    const cmd_env_t *env = ctx->env;
    int64_t n = snap_take_number(s), ttl_us;
    snap_order_t *o;

    if (n < 0 || (o = snap_add_order(s, c->order_id)) == NULL)
        goto missing;
    o->items = calloc((size_t)c->ngroups, sizeof(*o->items));
    if (o->items == NULL)
        goto missing;
    o->created = 1;
    snprintf(o->number, sizeof(o->number), "%s%08lld",
             ctx->cfg->order_prefix ? ctx->cfg->order_prefix : "",
             (long long)n);
    snprintf(o->customer_id, sizeof(o->customer_id), "%s", c->customer_id);
    o->status = FSM_PENDING;
    memcpy(o->currency, c->currency, sizeof(o->currency));
    memcpy(o->tax_country, c->tax_country, sizeof(o->tax_country));
    o->tax_rate_bps = rate_bps;
    o->subtotal_cents = totals[0];
    o->tax_cents = totals[1];
    o->total_cents = totals[2];
    o->created_at_us = env->event_time_us;
    ttl_us = (c->ttl_s ? c->ttl_s : ctx->cfg->pending_ttl_s) * 1000000;
    if (__builtin_add_overflow(env->event_time_us, ttl_us, &o->expires_at_us))
        o->expires_at_us = INT64_MAX;
    snprintf(o->dedup_key, sizeof(o->dedup_key), "%s", env->dedup_key);
    snprintf(o->source, sizeof(o->source), "%s", env->source);
    for (int i = 0; i < c->ngroups; i++) {
        const checkout_group_t *g = &c->groups[i];
        const snap_product_t *p = snap_product(s, g->product_id);
        const snap_variant_t *v =
            g->variant_id ? snap_variant(s, g->variant_id) : NULL;
        snap_item_t *it = &o->items[o->nitems++];

        if (p == NULL || (g->variant_id && v == NULL))
            goto missing;
        it->line_no = i + 1;
        it->product_id = g->product_id;
        it->variant_id = g->variant_id;
        snprintf(it->vendor_id, sizeof(it->vendor_id), "%s", p->vendor_id);
        snprintf(it->sku, sizeof(it->sku), "%s", v ? v->sku : p->sku);
        snprintf(it->name, sizeof(it->name), "%s", p->name);
        snprintf(it->variant_name, sizeof(it->variant_name), "%s",
                 v ? v->name : "");
        it->quantity = g->quantity;
        it->unit_price_cents = states[i].price_cents;
    }
    *out = o;
    return OD_OK;
missing:
    s->missing = 1;
    return OD_FATAL;
}

od_status_t
checkout_decide(decide_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    const checkout_cmd_t *c = cmd;
    snapshot_t *s = ctx->snap;
    checkout_state_t states[CHECKOUT_MAX_LINES];
    int64_t rate_bps, totals[3];
    const char *reason;
    json_t *details;
    snap_order_t *o;

    snprintf(res->order_id, sizeof(res->order_id), "%s", c->order_id);
    if (ctx->env->role == ROLE_CUSTOMER &&
        strcmp(ctx->env->actor_id, c->customer_id) != 0)
        return cmd_reject(res, "unauthorized",
                          json_pack("{s:s}", "error",
                                    "customers may only check out for "
                                    "themselves"));
    if (snap_order(s, c->order_id) != NULL)
        return cmd_reject(res, "order_exists", NULL);
    rate_bps = c->tax_country[0] ? snap_tax_rate(s, c->tax_country) : -1;
    if (rate_bps < 0)
        rate_bps = ctx->cfg->default_tax_bps;
    snapshot_states(s, c, states);
    reason = checkout_check(c, states, &details);
    if (reason != NULL)
        return cmd_reject(res, reason, details);
    if (checkout_totals(c, states, rate_bps, &totals[0], &totals[1],
                        &totals[2]) < 0)
        return cmd_reject(
            res, "invalid_command",
            json_pack("{s:s}", "error", "the order total overflows"));
    if (create_order(ctx, c, states, rate_bps, totals, &o) != OD_OK)
        return OD_FATAL;
    snap_history_add(s, o->id, -1, FSM_PENDING, ctx->env, NULL);
    /* the reservation: the groups were checked against this stock */
    for (int i = 0; i < c->ngroups; i++)
        if (snap_stock_change(s, ctx->env, c->groups[i].product_id,
                              c->groups[i].variant_id, -c->groups[i].quantity,
                              "order", o->id, res) < 0) {
            s->missing = 1;
            return OD_FATAL;
        }
    return OD_OK;
}
