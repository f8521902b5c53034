/* test_decide_lifecycle.c - the lifecycle decide functions against
 * snapshots built by hand: outcomes, reasons, details, extra events, the
 * rows they change and log, and rejections rolled back to the mark
 *
 * DESIGN: every command goes through decide(), which does what the batch
 * driver does (mark, decide, roll back a rejection or keep the changes)
 * and checks on every rejection that the snapshot is exactly as it was:
 * dump() renders every row and log of the snapshot as canonical JSON.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../handlers/handlers.h"
#include "../../handlers/order.h"
#include "snap_fixture.h"

#define OID_A "6f1c0e0e-8a5e-4c1b-9a55-3f7a9d2c1e10"
#define OID_B "6f1c0e0e-8a5e-4c1b-9a55-3f7a9d2c1e11"
#define OID_C "6f1c0e0e-8a5e-4c1b-9a55-3f7a9d2c1e12"
#define OID_UNKNOWN "6f1c0e0e-8a5e-4c1b-9a55-3f7a9d2c1e99"
#define TOTAL_A 6000
#define EXPIRES "2026-11-21T10:15:00.000Z" /* the fixture orders' deadline */
#define DUE_S 900                          /* seconds from creation to it */

static snapshot_t snap;
static cmd_result_t res;
static domain_config_t cfg;

/*
 * The world every test starts from: product 1 (vendor v1, stock 5, low
 * stock threshold 10), variant product 2 (v1) with variants 21 (stock 3)
 * and 22 (stock 0), product 3 (v2, stock 7). Order A of customer c1: all
 * lines v1's, product 1 on two lines; order B of c2: lines of v1 and v2;
 * order C of c1: no lines. All pending.
 */
static void
setup(void)
{
    snap_order_t *o;

    snap_init(&snap);
    cmd_result_init(&res);
    cfg = fx_cfg();
    fx_product(&snap, 1, "v1", 1000, 5)->low_stock_threshold = 10;
    fx_variant_product(&snap, 2, "v1");
    fx_variant(&snap, 21, 2, 1500, 3);
    fx_variant(&snap, 22, 2, 1500, 0);
    fx_product(&snap, 3, "v2", 2000, 7);
    o = fx_order(&snap, OID_A, "c1", FSM_PENDING, TOTAL_A);
    fx_item(o, 1, 0, "v1", 2, 1000);
    fx_item(o, 2, 21, "v1", 1, 1500);
    fx_item(o, 1, 0, "v1", 1, 1000);
    fx_item(o, 2, 22, "v1", 1, 1500);
    o = fx_order(&snap, OID_B, "c2", FSM_PENDING, 3000);
    fx_item(o, 1, 0, "v1", 1, 1000);
    fx_item(o, 3, 0, "v2", 1, 2000);
    fx_order(&snap, OID_C, "c1", FSM_PENDING, 0);
}

static void
teardown(void)
{
    cmd_result_reset(&res);
    snap_free(&snap);
}

/* Every row and log of s (not the undo log) as canonical JSON; caller
 * frees. */
static char *
dump(snapshot_t *s)
{
    json_t *d =
        json_pack("{s:[], s:[], s:[], s:[], s:[], s:[], s:i, s:i}", "products",
                  "variants", "orders", "taxes", "ledger", "history",
                  "numbers_used", s->numbers_used, "missing", s->missing);
    json_t *a;
    char *out;

    a = json_object_get(d, "products");
    for (int i = 0; i < s->products.n; i++) {
        snap_product_t *p = SNAP_ROW(s->products, snap_product_t, i);

        json_array_append_new(
            a,
            json_pack("{s:I, s:i, s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:I,"
                      " s:i, s:i, s:i}",
                      "id", (json_int_t)p->id, "exists", p->exists,
                      "is_variant", p->is_variant, "vendor", p->vendor_id,
                      "name", p->name, "sku", p->sku, "currency", p->currency,
                      "price", (json_int_t)p->price_cents, "stock",
                      (json_int_t)p->stock, "low",
                      (json_int_t)p->low_stock_threshold, "deleted", p->deleted,
                      "dirty", p->dirty, "stock_dirty", p->stock_dirty));
    }
    a = json_object_get(d, "variants");
    for (int i = 0; i < s->variants.n; i++) {
        snap_variant_t *v = SNAP_ROW(s->variants, snap_variant_t, i);

        json_array_append_new(
            a, json_pack("{s:I, s:I, s:i, s:s, s:s, s:I, s:I, s:i, s:i, s:i}",
                         "id", (json_int_t)v->id, "product",
                         (json_int_t)v->product_id, "exists", v->exists, "name",
                         v->name, "sku", v->sku, "price",
                         (json_int_t)v->price_cents, "stock",
                         (json_int_t)v->stock, "deleted", v->deleted, "dirty",
                         v->dirty, "stock_dirty", v->stock_dirty));
    }
    a = json_object_get(d, "orders");
    for (int i = 0; i < s->orders.n; i++) {
        snap_order_t *o = SNAP_ROW(s->orders, snap_order_t, i);
        json_t *items = json_array();

        for (int j = 0; j < o->nitems; j++) {
            snap_item_t *it = &o->items[j];

            json_array_append_new(
                items,
                json_pack("[i, I, I, s, s, s, s, I, I]", it->line_no,
                          (json_int_t)it->product_id,
                          (json_int_t)it->variant_id, it->vendor_id, it->sku,
                          it->name, it->variant_name, (json_int_t)it->quantity,
                          (json_int_t)it->unit_price_cents));
        }
        json_array_append_new(
            a,
            json_pack("{s:s, s:i, s:i, s:s, s:s, s:i, s:s, s:[I, s, I, I,"
                      " I], s:s, s:I, s:s, s:[I, I], s:s, s:s, s:i, s:o}",
                      "id", o->id, "exists", o->exists, "created", o->created,
                      "number", o->number, "customer", o->customer_id, "status",
                      (int)o->status, "currency", o->currency, "money",
                      (json_int_t)o->subtotal_cents, o->tax_country,
                      (json_int_t)o->tax_rate_bps, (json_int_t)o->tax_cents,
                      (json_int_t)o->total_cents, "payment_id", o->payment_id,
                      "paid", (json_int_t)o->paid_cents, "tracking",
                      o->tracking_number, "times", (json_int_t)o->created_at_us,
                      (json_int_t)o->expires_at_us, "dedup_key", o->dedup_key,
                      "source", o->source, "dirty", o->dirty, "items", items));
    }
    a = json_object_get(d, "taxes");
    for (int i = 0; i < s->taxes.n; i++) {
        snap_tax_rate_t *t = SNAP_ROW(s->taxes, snap_tax_rate_t, i);

        json_array_append_new(a, json_pack("[s, I, i]", t->country,
                                           (json_int_t)t->rate_bps, t->dirty));
    }
    a = json_object_get(d, "ledger");
    for (int i = 0; i < s->ledger.n; i++) {
        snap_ledger_t *l = SNAP_ROW(s->ledger, snap_ledger_t, i);

        json_array_append_new(
            a, json_pack("[I, I, I, s, s, s, s]", (json_int_t)l->product_id,
                         (json_int_t)l->variant_id, (json_int_t)l->delta,
                         l->reason, l->order_id, l->dedup_key, l->source));
    }
    a = json_object_get(d, "history");
    for (int i = 0; i < s->history.n; i++) {
        snap_history_t *h = SNAP_ROW(s->history, snap_history_t, i);

        json_array_append_new(a, json_pack("[s, i, i, i, s, s, s, s]",
                                           h->order_id, h->from, (int)h->to,
                                           (int)h->role, h->actor_id,
                                           h->dedup_key, h->source, h->note));
    }
    out = json_dumps(d, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(d);
    ck_assert_ptr_nonnull(out);
    return out;
}

/*
 * Decides cmd as the batch does: mark, decide, then roll a rejection back
 * (checking the snapshot is exactly as before) or keep the changes. The
 * result stays in res for the test to read.
 */
static od_status_t
decide(handler_decide_fn fn, const void *cmd, cmd_env_t env)
{
    decide_ctx_t ctx = {&snap, &env, &cfg};
    char *before = dump(&snap);
    snap_mark_t m = snap_mark(&snap);
    od_status_t st;

    cmd_result_reset(&res);
    st = fn(&ctx, cmd, &res);
    if (st == OD_OK && res.outcome == OUTCOME_REJECTED) {
        char *after;

        snap_rollback(&snap, m);
        after = dump(&snap);
        ck_assert_str_eq(after, before);
        free(after);
    } else if (st == OD_OK) {
        snap_forget_undo(&snap);
    } else {
        /* an internal error: the batch discards what the command did */
        snap_rollback(&snap, m);
    }
    free(before);
    return st;
}

/* decide, expected to apply */
static void
applies(handler_decide_fn fn, const void *cmd, cmd_env_t env)
{
    ck_assert_int_eq(decide(fn, cmd, env), OD_OK);
    ck_assert_msg(res.outcome == OUTCOME_APPLIED, "rejected: %s",
                  res.reason != NULL ? res.reason : "(null)");
    ck_assert_ptr_null(res.reason);
}

/* decide, expected to reject with reason and details (JSON, or NULL for
 * none) */
static void
rejects(handler_decide_fn fn, const void *cmd, cmd_env_t env,
        const char *reason, const char *details)
{
    ck_assert_int_eq(decide(fn, cmd, env), OD_OK);
    ck_assert_int_eq(res.outcome, OUTCOME_REJECTED);
    ck_assert_str_eq(res.reason, reason);
    if (details == NULL) {
        ck_assert_ptr_null(res.details);
    } else {
        json_t *want = json_loads(details, 0, NULL);

        ck_assert_ptr_nonnull(want);
        if (!json_equal(res.details, want)) {
            char *got = json_dumps(res.details, JSON_SORT_KEYS);

            ck_abort_msg("details %s, want %s", got ? got : "null", details);
        }
        json_decref(want);
    }
}

/* The one event of type on res: its key and payload (JSON). */
static void
assert_event(const char *type, const char *key, const char *payload)
{
    json_t *want = json_loads(payload, 0, NULL), *e, *found = NULL;
    size_t i;

    ck_assert_ptr_nonnull(want);
    ck_assert_int_eq(fx_events(&res, type), 1);
    json_array_foreach(res.events, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "type")), type) == 0)
            found = e;
    }
    ck_assert_str_eq(json_string_value(json_object_get(found, "key")), key);
    if (!json_equal(json_object_get(found, "payload"), want)) {
        char *got =
            json_dumps(json_object_get(found, "payload"), JSON_SORT_KEYS);

        ck_abort_msg("%s payload %s, want %s", type, got, payload);
    }
    json_decref(want);
}

static size_t
nevents(void)
{
    return json_array_size(res.events);
}

static snap_order_t *
order(const char *id)
{
    snap_order_t *o = snap_order(&snap, id);

    ck_assert_ptr_nonnull(o);
    return o;
}

/* Puts an order in a status as if it had got there earlier (paid by
 * payment pm-1 when paid or later). */
static void
set_status(const char *id, fsm_status_t st)
{
    snap_order_t *o = order(id);

    o->status = st;
    if (st != FSM_PENDING && st != FSM_CANCELLED && st != FSM_EXPIRED) {
        snprintf(o->payment_id, sizeof(o->payment_id), "pm-1");
        o->paid_cents = o->total_cents;
    }
}

static int64_t
stock_of(int64_t product_id, int64_t variant_id)
{
    if (variant_id != 0) {
        snap_variant_t *v = snap_variant(&snap, variant_id);

        ck_assert_ptr_nonnull(v);
        return v->stock;
    }
    ck_assert_ptr_nonnull(snap_product(&snap, product_id));
    return snap_product(&snap, product_id)->stock;
}

static void
assert_ledger(int i, int64_t product_id, int64_t variant_id, int64_t delta,
              const char *reason, const char *order_id, const char *key)
{
    snap_ledger_t *l;

    ck_assert_int_lt(i, snap.ledger.n);
    l = SNAP_ROW(snap.ledger, snap_ledger_t, i);
    ck_assert_int_eq(l->product_id, product_id);
    ck_assert_int_eq(l->variant_id, variant_id);
    ck_assert_int_eq(l->delta, delta);
    ck_assert_str_eq(l->reason, reason);
    ck_assert_str_eq(l->order_id, order_id);
    ck_assert_str_eq(l->dedup_key, key);
    ck_assert_str_eq(l->source, "default");
}

static void
assert_history(int i, const char *order_id, fsm_status_t from, fsm_status_t to,
               cmd_role_t role, const char *actor, const char *key,
               const char *note)
{
    snap_history_t *h;

    ck_assert_int_lt(i, snap.history.n);
    h = SNAP_ROW(snap.history, snap_history_t, i);
    ck_assert_str_eq(h->order_id, order_id);
    ck_assert_int_eq(h->from, (int)from);
    ck_assert_int_eq(h->to, to);
    ck_assert_int_eq(h->role, role);
    ck_assert_str_eq(h->actor_id, actor);
    ck_assert_str_eq(h->dedup_key, key);
    ck_assert_str_eq(h->source, "default");
    ck_assert_str_eq(h->note, note);
}

/* order A's stock came back, logged under reason by the command key */
static void
assert_a_restored(int first, const char *reason, const char *key)
{
    ck_assert_int_eq(stock_of(1, 0), 5 + 3);
    ck_assert_int_eq(stock_of(2, 21), 3 + 1);
    ck_assert_int_eq(stock_of(2, 22), 0 + 1);
    ck_assert_int_eq(snap.ledger.n, first + 3);
    /* one row per product or variant, the two lines of product 1 as one */
    assert_ledger(first, 1, 0, 3, reason, OID_A, key);
    assert_ledger(first + 1, 2, 21, 1, reason, OID_A, key);
    assert_ledger(first + 2, 2, 22, 1, reason, OID_A, key);
    ck_assert_int_eq(snap_product(&snap, 1)->stock_dirty, 1);
    ck_assert_int_eq(snap_variant(&snap, 21)->stock_dirty, 1);
    /* a restore only adds stock: never a stock.low, even below the
     * threshold (product 1: 8 <= 10) */
    ck_assert_int_eq(fx_events(&res, "stock.low"), 0);
}

static void
assert_a_stock_untouched(void)
{
    ck_assert_int_eq(stock_of(1, 0), 5);
    ck_assert_int_eq(stock_of(2, 21), 3);
    ck_assert_int_eq(stock_of(2, 22), 0);
    ck_assert_int_eq(snap.ledger.n, 0);
}

static pay_cmd_t
pay_cmd(const char *order_id, const char *payment_id, int64_t amount,
        const char *currency)
{
    pay_cmd_t c;

    memset(&c, 0, sizeof(c));
    snprintf(c.order_id, sizeof(c.order_id), "%s", order_id);
    snprintf(c.payment_id, sizeof(c.payment_id), "%s", payment_id);
    c.amount_cents = amount;
    snprintf(c.currency, sizeof(c.currency), "%s", currency);
    return c;
}

static order_id_cmd_t
id_cmd(const char *order_id)
{
    order_id_cmd_t c;

    snprintf(c.order_id, sizeof(c.order_id), "%s", order_id);
    return c;
}

static cancel_cmd_t
cancel_cmd(const char *order_id, const char *reason)
{
    cancel_cmd_t c;

    memset(&c, 0, sizeof(c));
    snprintf(c.order_id, sizeof(c.order_id), "%s", order_id);
    snprintf(c.reason, sizeof(c.reason), "%s", reason);
    return c;
}

static refund_cmd_t
refund_cmd(const char *order_id, int restock)
{
    refund_cmd_t c;

    snprintf(c.order_id, sizeof(c.order_id), "%s", order_id);
    c.restock = restock;
    return c;
}

static ship_cmd_t
ship_cmd(const char *order_id, const char *tracking)
{
    ship_cmd_t c;

    memset(&c, 0, sizeof(c));
    snprintf(c.order_id, sizeof(c.order_id), "%s", order_id);
    snprintf(c.tracking_number, sizeof(c.tracking_number), "%s", tracking);
    return c;
}

/* the payment bridge, key k, at s seconds after the orders' creation */
#define BRIDGE(k, s) fx_env(ROLE_PAYMENT, "bridge", k, s)

/* ---- the snapshot mechanics the decide functions rely on ---- */

START_TEST(test_rollback_restores_order)
{
    snap_order_t *o = order(OID_A);
    char *before = dump(&snap), *after;
    snap_mark_t m = snap_mark(&snap);

    snap_touch_order(&snap, o);
    o->status = FSM_PAID;
    o->items[0].quantity = 99;
    /* items grown: the rolled back row gets its old array back */
    fx_item(o, 3, 0, "v2", 1, 2000);
    snprintf(o->tracking_number, sizeof(o->tracking_number), "TRK");
    o->dirty = 1;
    snap_rollback(&snap, m);
    ck_assert_int_eq(o->nitems, 4);
    ck_assert_int_eq(o->items[0].quantity, 2);
    ck_assert_int_eq(o->status, FSM_PENDING);
    after = dump(&snap);
    ck_assert_str_eq(after, before);
    free(before);
    free(after);
}
END_TEST

START_TEST(test_rollback_second_change)
{
    cmd_env_t env = fx_env(ROLE_ADMIN, "root", "k1", 0);
    snap_order_t *o = order(OID_A);
    char *before = dump(&snap), *after;
    snap_mark_t m = snap_mark(&snap);

    /* the same rows changed twice after one mark */
    ck_assert_int_eq(
        snap_stock_change(&snap, &env, 1, 0, -2, "adjust", NULL, &res), 0);
    ck_assert_int_eq(
        snap_stock_change(&snap, &env, 1, 0, -1, "adjust", NULL, &res), 0);
    ck_assert_int_eq(
        snap_order_transition(&snap, o, FSM_PAID, &env, NULL, &res), 0);
    ck_assert_int_eq(
        snap_order_transition(&snap, o, FSM_PROCESSING, &env, NULL, &res), 0);
    ck_assert_int_eq(stock_of(1, 0), 2);
    ck_assert_int_eq(snap.ledger.n, 2);
    ck_assert_int_eq(snap.history.n, 2);
    snap_rollback(&snap, m);
    after = dump(&snap);
    ck_assert_str_eq(after, before);
    ck_assert_int_eq(stock_of(1, 0), 5);
    ck_assert_int_eq(o->status, FSM_PENDING);
    free(before);
    free(after);
}
END_TEST

START_TEST(test_forget_keeps_earlier_changes)
{
    cmd_env_t env = fx_env(ROLE_ADMIN, "root", "k1", 0);
    snap_order_t *o = order(OID_A);
    snap_mark_t m = snap_mark(&snap);
    char *kept, *after;

    ck_assert_int_eq(
        snap_order_transition(&snap, o, FSM_PAID, &env, NULL, &res), 0);
    snap_forget_undo(&snap);
    kept = dump(&snap);
    m = snap_mark(&snap);
    ck_assert_int_eq(
        snap_order_transition(&snap, o, FSM_CANCELLED, &env, NULL, &res), 0);
    ck_assert_int_eq(snap_restore_order_stock(&snap, o, "cancel", &env, &res),
                     0);
    snap_rollback(&snap, m);
    after = dump(&snap);
    ck_assert_str_eq(after, kept);
    ck_assert_int_eq(o->status, FSM_PAID);
    free(kept);
    free(after);
}
END_TEST

START_TEST(test_stock_low_on_decrement_only)
{
    cmd_env_t env = fx_env(ROLE_ADMIN, "root", "k1", 0);
    snap_product_t *p = snap_product(&snap, 3);
    snap_mark_t m = snap_mark(&snap);

    p->low_stock_threshold = 5;
    /* 7 -> 6: still above */
    ck_assert_int_eq(
        snap_stock_change(&snap, &env, 3, 0, -1, "adjust", NULL, &res), 0);
    ck_assert_int_eq(fx_events(&res, "stock.low"), 0);
    /* 6 -> 5: crosses to the threshold, announced once */
    ck_assert_int_eq(
        snap_stock_change(&snap, &env, 3, 0, -1, "adjust", NULL, &res), 0);
    assert_event("stock.low", "3",
                 "{\"product_id\": 3, \"variant_id\": null, \"stock\": 5,"
                 " \"threshold\": 5}");
    /* 5 -> 6 -> 4: an increment never announces, the next crossing does */
    ck_assert_int_eq(
        snap_stock_change(&snap, &env, 3, 0, 1, "cancel", NULL, &res), 0);
    ck_assert_int_eq(fx_events(&res, "stock.low"), 1);
    ck_assert_int_eq(
        snap_stock_change(&snap, &env, 3, 0, -2, "adjust", NULL, &res), 0);
    ck_assert_int_eq(fx_events(&res, "stock.low"), 2);
    /* below zero: refused, nothing changed */
    ck_assert_int_eq(
        snap_stock_change(&snap, &env, 3, 0, -5, "adjust", NULL, &res), -1);
    ck_assert_int_eq(stock_of(3, 0), 4);
    ck_assert_int_eq(snap.ledger.n, 4);
    assert_ledger(3, 3, 0, -2, "adjust", "", "k1");
    /* a variant's decrement, and one that would overflow */
    ck_assert_int_eq(
        snap_stock_change(&snap, &env, 2, 21, -3, "order", OID_A, &res), 0);
    ck_assert_int_eq(stock_of(2, 21), 0);
    ck_assert_int_eq(
        snap_stock_change(&snap, &env, 2, 21, -1, "order", OID_A, &res), -1);
    ck_assert_int_eq(
        snap_stock_change(&snap, &env, 3, 0, INT64_MAX, "adjust", NULL, &res),
        -1);
    snap_rollback(&snap, m);
    ck_assert_int_eq(stock_of(3, 0), 7);
    ck_assert_int_eq(stock_of(2, 21), 3);
}
END_TEST

/* ---- pay ---- */

START_TEST(test_pay_applied)
{
    pay_cmd_t c = pay_cmd(OID_A, "pm-1", TOTAL_A, "EUR");
    snap_order_t *o = order(OID_A);

    applies(pay_decide, &c, BRIDGE("pay-1", 60));
    ck_assert_str_eq(res.order_id, OID_A);
    ck_assert_int_eq(o->status, FSM_PAID);
    ck_assert_str_eq(o->payment_id, "pm-1");
    ck_assert_int_eq(o->paid_cents, TOTAL_A);
    ck_assert_int_eq(o->dirty, 1);
    ck_assert_int_eq(snap.history.n, 1);
    assert_history(0, OID_A, FSM_PENDING, FSM_PAID, ROLE_PAYMENT, "bridge",
                   "pay-1", "");
    ck_assert_uint_eq(nevents(), 0);
    assert_a_stock_untouched();
}
END_TEST

START_TEST(test_pay_order_not_found)
{
    pay_cmd_t c = pay_cmd(OID_UNKNOWN, "pm-9", 1234, "EUR");

    rejects(pay_decide, &c, BRIDGE("pay-1", 0), "order_not_found", NULL);
    ck_assert_str_eq(res.order_id, OID_UNKNOWN);
    ck_assert_uint_eq(nevents(), 1);
    assert_event("payment.refund_required", OID_UNKNOWN,
                 "{\"order_id\": \"" OID_UNKNOWN "\", \"payment_id\": "
                 "\"pm-9\", \"amount_cents\": 1234, \"currency\": \"EUR\","
                 " \"reason\": \"order_not_found\"}");
}
END_TEST

START_TEST(test_pay_expired_order)
{
    pay_cmd_t c = pay_cmd(OID_A, "pm-2", TOTAL_A, "EUR");

    set_status(OID_A, FSM_EXPIRED);
    rejects(pay_decide, &c, BRIDGE("pay-1", 0), "order_expired",
            "{\"status\": \"expired\"}");
    ck_assert_str_eq(res.order_id, OID_A);
    ck_assert_uint_eq(nevents(), 1);
    assert_event("payment.refund_required", OID_A,
                 "{\"order_id\": \"" OID_A "\", \"payment_id\": \"pm-2\","
                 " \"amount_cents\": 6000, \"currency\": \"EUR\","
                 " \"reason\": \"order_expired\"}");
}
END_TEST

START_TEST(test_pay_cancelled_order)
{
    pay_cmd_t c = pay_cmd(OID_A, "pm-2", TOTAL_A, "EUR");

    set_status(OID_A, FSM_CANCELLED);
    rejects(pay_decide, &c, BRIDGE("pay-1", 0), "invalid_transition",
            "{\"from\": \"cancelled\", \"to\": \"paid\"}");
    ck_assert_uint_eq(nevents(), 1);
    assert_event("payment.refund_required", OID_A,
                 "{\"order_id\": \"" OID_A "\", \"payment_id\": \"pm-2\","
                 " \"amount_cents\": 6000, \"currency\": \"EUR\","
                 " \"reason\": \"invalid_transition\"}");
}
END_TEST

START_TEST(test_pay_already_paid)
{
    static const struct {
        fsm_status_t st;
        const char *name;
    } later[] = {{FSM_PAID, "paid"},
                 {FSM_PROCESSING, "processing"},
                 {FSM_SHIPPED, "shipped"},
                 {FSM_DELIVERED, "delivered"},
                 {FSM_REFUNDED, "refunded"}};

    for (size_t i = 0; i < sizeof(later) / sizeof(later[0]); i++) {
        pay_cmd_t same = pay_cmd(OID_A, "pm-1", TOTAL_A, "EUR");
        pay_cmd_t other = pay_cmd(OID_A, "pm-2", TOTAL_A, "EUR");
        char details[128];

        set_status(OID_A, later[i].st);
        snprintf(details, sizeof(details),
                 "{\"status\": \"%s\", \"payment_id\": \"pm-1\"}",
                 later[i].name);
        /* the payment that paid it, again under a new key: its money is
         * the order's, nothing to send back */
        rejects(pay_decide, &same, BRIDGE("pay-again", 0), "already_paid",
                details);
        ck_assert_uint_eq(nevents(), 0);
        /* another payment: refunded */
        rejects(pay_decide, &other, BRIDGE("pay-other", 0), "already_paid",
                details);
        ck_assert_uint_eq(nevents(), 1);
        assert_event("payment.refund_required", OID_A,
                     "{\"order_id\": \"" OID_A "\", \"payment_id\": \"pm-2\","
                     " \"amount_cents\": 6000, \"currency\": \"EUR\","
                     " \"reason\": \"already_paid\"}");
        ck_assert_str_eq(order(OID_A)->payment_id, "pm-1");
    }
    ck_assert_int_eq(snap.history.n, 0);
}
END_TEST

START_TEST(test_pay_deadline)
{
    pay_cmd_t c = pay_cmd(OID_A, "pm-1", TOTAL_A, "EUR");
    pay_cmd_t wrong = pay_cmd(OID_A, "pm-1", TOTAL_A - 1, "EUR");

    cfg.expiry_grace_s = 60;
    /* past the deadline plus the grace, still pending: refused and
     * refunded, no transition (even with a wrong amount: the deadline
     * comes first) */
    rejects(pay_decide, &c, BRIDGE("pay-1", DUE_S + 61), "order_expired",
            "{\"status\": \"pending\", \"expires_at\": \"" EXPIRES "\"}");
    ck_assert_uint_eq(nevents(), 1);
    assert_event("payment.refund_required", OID_A,
                 "{\"order_id\": \"" OID_A "\", \"payment_id\": \"pm-1\","
                 " \"amount_cents\": 6000, \"currency\": \"EUR\","
                 " \"reason\": \"order_expired\"}");
    rejects(pay_decide, &wrong, BRIDGE("pay-2", DUE_S + 61), "order_expired",
            "{\"status\": \"pending\", \"expires_at\": \"" EXPIRES "\"}");
    ck_assert_int_eq(order(OID_A)->status, FSM_PENDING);
    ck_assert_int_eq(snap.history.n, 0);
    /* within the grace (the last microsecond of it included): paid */
    applies(pay_decide, &c, BRIDGE("pay-3", DUE_S + 60));
    ck_assert_int_eq(order(OID_A)->status, FSM_PAID);
    ck_assert_uint_eq(nevents(), 0);
}
END_TEST

START_TEST(test_pay_deadline_no_grace)
{
    pay_cmd_t c = pay_cmd(OID_A, "pm-1", TOTAL_A, "EUR");

    rejects(pay_decide, &c, BRIDGE("pay-1", DUE_S + 1), "order_expired",
            "{\"status\": \"pending\", \"expires_at\": \"" EXPIRES "\"}");
    applies(pay_decide, &c, BRIDGE("pay-2", DUE_S));
}
END_TEST

START_TEST(test_pay_deadline_overflow)
{
    pay_cmd_t c = pay_cmd(OID_A, "pm-1", TOTAL_A, "EUR");
    cmd_env_t env = BRIDGE("pay-1", 0);

    /* a grace too large to add: no deadline rather than a wrapped one */
    cfg.expiry_grace_s = INT64_MAX / 2;
    env.event_time_us = INT64_MAX - 1;
    applies(pay_decide, &c, env);
    ck_assert_int_eq(order(OID_A)->status, FSM_PAID);
}
END_TEST

START_TEST(test_pay_amount_mismatch)
{
    pay_cmd_t low = pay_cmd(OID_A, "pm-1", TOTAL_A - 1, "EUR");
    pay_cmd_t usd = pay_cmd(OID_A, "pm-2", TOTAL_A, "USD");
    snap_order_t *o = order(OID_A);

    rejects(pay_decide, &low, BRIDGE("pay-1", 0), "amount_mismatch",
            "{\"expected\": {\"amount_cents\": 6000, \"currency\": \"EUR\"},"
            " \"got\": {\"amount_cents\": 5999, \"currency\": \"EUR\"}}");
    ck_assert_uint_eq(nevents(), 1);
    /* what was captured goes back, not what the order costs */
    assert_event("payment.refund_required", OID_A,
                 "{\"order_id\": \"" OID_A "\", \"payment_id\": \"pm-1\","
                 " \"amount_cents\": 5999, \"currency\": \"EUR\","
                 " \"reason\": \"amount_mismatch\"}");
    rejects(pay_decide, &usd, BRIDGE("pay-2", 0), "amount_mismatch",
            "{\"expected\": {\"amount_cents\": 6000, \"currency\": \"EUR\"},"
            " \"got\": {\"amount_cents\": 6000, \"currency\": \"USD\"}}");
    assert_event("payment.refund_required", OID_A,
                 "{\"order_id\": \"" OID_A "\", \"payment_id\": \"pm-2\","
                 " \"amount_cents\": 6000, \"currency\": \"USD\","
                 " \"reason\": \"amount_mismatch\"}");
    ck_assert_int_eq(o->status, FSM_PENDING);
    ck_assert_str_eq(o->payment_id, "");
    ck_assert_int_eq(o->paid_cents, 0);
    ck_assert_int_eq(o->dirty, 0);
}
END_TEST

/* ---- who may act on an order ---- */

START_TEST(test_customer_own_order_only)
{
    cancel_cmd_t a = cancel_cmd(OID_A, "");

    rejects(cancel_decide, &a, fx_env(ROLE_CUSTOMER, "c2", "k1", 0),
            "unauthorized",
            "{\"role\": \"customer\", \"error\":"
            " \"not the customer of this order\"}");
    ck_assert_str_eq(res.order_id, OID_A);
    ck_assert_uint_eq(nevents(), 0);
    applies(cancel_decide, &a, fx_env(ROLE_CUSTOMER, "c1", "k2", 0));
    ck_assert_int_eq(order(OID_A)->status, FSM_CANCELLED);
}
END_TEST

START_TEST(test_vendor_all_lines_only)
{
    order_id_cmd_t b = id_cmd(OID_B), c = id_cmd(OID_C), a = id_cmd(OID_A);
    const char *denied = "{\"role\": \"vendor\", \"error\":"
                         " \"not the vendor of every line of this order\"}";

    set_status(OID_A, FSM_PAID);
    set_status(OID_B, FSM_PAID);
    set_status(OID_C, FSM_PAID);
    /* B has lines of v1 and v2: neither may act alone */
    rejects(start_processing_decide, &b, fx_env(ROLE_VENDOR, "v1", "k1", 0),
            "unauthorized", denied);
    rejects(start_processing_decide, &b, fx_env(ROLE_VENDOR, "v2", "k2", 0),
            "unauthorized", denied);
    /* an order without lines is nobody's */
    rejects(start_processing_decide, &c, fx_env(ROLE_VENDOR, "v1", "k3", 0),
            "unauthorized", denied);
    rejects(start_processing_decide, &a, fx_env(ROLE_VENDOR, "v2", "k4", 0),
            "unauthorized", denied);
    applies(start_processing_decide, &a, fx_env(ROLE_VENDOR, "v1", "k5", 0));
    /* admin is limited by the roles table only */
    applies(start_processing_decide, &b, fx_env(ROLE_ADMIN, "root", "k6", 0));
    ck_assert_int_eq(order(OID_A)->status, FSM_PROCESSING);
    ck_assert_int_eq(order(OID_B)->status, FSM_PROCESSING);
}
END_TEST

START_TEST(test_order_not_found)
{
    order_id_cmd_t u = id_cmd(OID_UNKNOWN);
    cancel_cmd_t cu = cancel_cmd(OID_UNKNOWN, "");
    snap_order_t *ghost = snap_add_order(&snap, OID_UNKNOWN);

    /* a row the load did not find (neither in the database nor created by
     * the batch) is no order */
    ck_assert_ptr_nonnull(ghost);
    rejects(deliver_decide, &u, fx_env(ROLE_ADMIN, "root", "k1", 0),
            "order_not_found", NULL);
    ck_assert_str_eq(res.order_id, OID_UNKNOWN);
    rejects(cancel_decide, &cu, fx_env(ROLE_ADMIN, "root", "k2", 0),
            "order_not_found", NULL);
    ck_assert_uint_eq(nevents(), 0);
    rejects(expire_decide, &u, fx_env(ROLE_SYSTEM, "scheduler", "k3", DUE_S),
            "order_not_found", NULL);
    ck_assert_uint_eq(nevents(), 0);
}
END_TEST

START_TEST(test_order_created_by_batch)
{
    snap_order_t *o = order(OID_A);
    pay_cmd_t c = pay_cmd(OID_A, "pm-1", TOTAL_A, "EUR");

    /* the batch's own checkout made it: found like a loaded one */
    o->exists = 0;
    o->created = 1;
    applies(pay_decide, &c, BRIDGE("pay-1", 0));
    ck_assert_int_eq(o->status, FSM_PAID);
}
END_TEST

/* ---- cancel ---- */

START_TEST(test_cancel_pending)
{
    cancel_cmd_t c = cancel_cmd(OID_A, "changed my mind");

    applies(cancel_decide, &c, fx_env(ROLE_CUSTOMER, "c1", "cancel-1", 0));
    ck_assert_str_eq(res.order_id, OID_A);
    ck_assert_int_eq(order(OID_A)->status, FSM_CANCELLED);
    ck_assert_int_eq(snap.history.n, 1);
    assert_history(0, OID_A, FSM_PENDING, FSM_CANCELLED, ROLE_CUSTOMER, "c1",
                   "cancel-1", "changed my mind");
    assert_a_restored(0, "cancel", "cancel-1");
    /* not paid: nothing to give back */
    ck_assert_uint_eq(nevents(), 0);
}
END_TEST

START_TEST(test_cancel_without_reason)
{
    cancel_cmd_t c = cancel_cmd(OID_A, "");

    applies(cancel_decide, &c, fx_env(ROLE_SYSTEM, "ops", "cancel-1", 0));
    assert_history(0, OID_A, FSM_PENDING, FSM_CANCELLED, ROLE_SYSTEM, "ops",
                   "cancel-1", "");
}
END_TEST

START_TEST(test_cancel_paid_refunds)
{
    static const fsm_status_t paid[] = {FSM_PAID, FSM_PROCESSING};

    for (size_t i = 0; i < 2; i++) {
        cancel_cmd_t c = cancel_cmd(OID_A, "");

        set_status(OID_A, paid[i]);
        applies(cancel_decide, &c, fx_env(ROLE_ADMIN, "root", "cancel-1", 0));
        ck_assert_int_eq(order(OID_A)->status, FSM_CANCELLED);
        assert_history(0, OID_A, paid[i], FSM_CANCELLED, ROLE_ADMIN, "root",
                       "cancel-1", "");
        assert_a_restored(0, "cancel", "cancel-1");
        ck_assert_uint_eq(nevents(), 1);
        assert_event("payment.refund_required", OID_A,
                     "{\"order_id\": \"" OID_A "\", \"payment_id\": \"pm-1\","
                     " \"amount_cents\": 6000, \"currency\": \"EUR\","
                     " \"reason\": \"cancelled\"}");
        /* a fresh world for the next status */
        teardown();
        setup();
    }
}
END_TEST

START_TEST(test_cancel_already_cancelled)
{
    cancel_cmd_t c = cancel_cmd(OID_A, "");

    set_status(OID_A, FSM_CANCELLED);
    rejects(cancel_decide, &c, fx_env(ROLE_CUSTOMER, "c1", "cancel-1", 0),
            "already_cancelled", NULL);
    ck_assert_uint_eq(nevents(), 0);
    assert_a_stock_untouched();
}
END_TEST

START_TEST(test_cancel_twice_in_batch)
{
    cancel_cmd_t c = cancel_cmd(OID_A, "");

    applies(cancel_decide, &c, fx_env(ROLE_CUSTOMER, "c1", "cancel-1", 0));
    rejects(cancel_decide, &c, fx_env(ROLE_CUSTOMER, "c1", "cancel-2", 0),
            "already_cancelled", NULL);
    /* the stock came back once */
    assert_a_restored(0, "cancel", "cancel-1");
    ck_assert_int_eq(snap.history.n, 1);
}
END_TEST

START_TEST(test_cancel_too_late)
{
    static const struct {
        fsm_status_t st;
        const char *details;
    } late[] = {
        {FSM_SHIPPED, "{\"from\": \"shipped\", \"to\": \"cancelled\"}"},
        {FSM_DELIVERED, "{\"from\": \"delivered\", \"to\": \"cancelled\"}"},
        {FSM_REFUNDED, "{\"from\": \"refunded\", \"to\": \"cancelled\"}"},
        {FSM_EXPIRED, "{\"from\": \"expired\", \"to\": \"cancelled\"}"},
    };

    for (size_t i = 0; i < sizeof(late) / sizeof(late[0]); i++) {
        cancel_cmd_t c = cancel_cmd(OID_A, "too late");

        set_status(OID_A, late[i].st);
        rejects(cancel_decide, &c, fx_env(ROLE_ADMIN, "root", "cancel-1", 0),
                "invalid_transition", late[i].details);
        ck_assert_uint_eq(nevents(), 0);
        assert_a_stock_untouched();
        ck_assert_int_eq(snap.history.n, 0);
    }
}
END_TEST

/* ---- start_processing, ship, deliver ---- */

START_TEST(test_start_processing)
{
    order_id_cmd_t c = id_cmd(OID_A);

    rejects(start_processing_decide, &c, fx_env(ROLE_VENDOR, "v1", "sp-1", 0),
            "invalid_transition",
            "{\"from\": \"pending\", \"to\": \"processing\"}");
    set_status(OID_A, FSM_PAID);
    applies(start_processing_decide, &c, fx_env(ROLE_VENDOR, "v1", "sp-2", 0));
    ck_assert_str_eq(res.order_id, OID_A);
    ck_assert_int_eq(order(OID_A)->status, FSM_PROCESSING);
    ck_assert_int_eq(snap.history.n, 1);
    assert_history(0, OID_A, FSM_PAID, FSM_PROCESSING, ROLE_VENDOR, "v1",
                   "sp-2", "");
    ck_assert_uint_eq(nevents(), 0);
    assert_a_stock_untouched();
}
END_TEST

START_TEST(test_ship)
{
    ship_cmd_t c = ship_cmd(OID_A, "TRK-123");
    snap_order_t *o = order(OID_A);

    set_status(OID_A, FSM_PAID);
    rejects(ship_decide, &c, fx_env(ROLE_VENDOR, "v1", "ship-1", 0),
            "invalid_transition", "{\"from\": \"paid\", \"to\": \"shipped\"}");
    ck_assert_str_eq(o->tracking_number, "");
    ck_assert_int_eq(o->dirty, 0);
    o->status = FSM_PROCESSING;
    applies(ship_decide, &c, fx_env(ROLE_VENDOR, "v1", "ship-2", 0));
    ck_assert_int_eq(o->status, FSM_SHIPPED);
    ck_assert_str_eq(o->tracking_number, "TRK-123");
    ck_assert_int_eq(o->dirty, 1);
    /* the payment stays as it was */
    ck_assert_str_eq(o->payment_id, "pm-1");
    ck_assert_int_eq(snap.history.n, 1);
    assert_history(0, OID_A, FSM_PROCESSING, FSM_SHIPPED, ROLE_VENDOR, "v1",
                   "ship-2", "");
    ck_assert_uint_eq(nevents(), 0);
}
END_TEST

START_TEST(test_deliver)
{
    order_id_cmd_t c = id_cmd(OID_A);

    set_status(OID_A, FSM_PROCESSING);
    rejects(deliver_decide, &c, fx_env(ROLE_SYSTEM, "carrier", "dl-1", 0),
            "invalid_transition",
            "{\"from\": \"processing\", \"to\": \"delivered\"}");
    order(OID_A)->status = FSM_SHIPPED;
    applies(deliver_decide, &c, fx_env(ROLE_SYSTEM, "carrier", "dl-2", 0));
    ck_assert_int_eq(order(OID_A)->status, FSM_DELIVERED);
    assert_history(0, OID_A, FSM_SHIPPED, FSM_DELIVERED, ROLE_SYSTEM, "carrier",
                   "dl-2", "");
    ck_assert_uint_eq(nevents(), 0);
    assert_a_stock_untouched();
}
END_TEST

/* ---- refund ---- */

START_TEST(test_refund_restock)
{
    refund_cmd_t c = refund_cmd(OID_A, 1);

    set_status(OID_A, FSM_DELIVERED);
    applies(refund_decide, &c, fx_env(ROLE_PAYMENT, "bridge", "rf-1", 0));
    ck_assert_str_eq(res.order_id, OID_A);
    ck_assert_int_eq(order(OID_A)->status, FSM_REFUNDED);
    assert_history(0, OID_A, FSM_DELIVERED, FSM_REFUNDED, ROLE_PAYMENT,
                   "bridge", "rf-1", "");
    assert_a_restored(0, "refund", "rf-1");
    ck_assert_uint_eq(nevents(), 0);
}
END_TEST

START_TEST(test_refund_without_restock)
{
    refund_cmd_t c = refund_cmd(OID_A, 0);

    set_status(OID_A, FSM_DELIVERED);
    applies(refund_decide, &c, fx_env(ROLE_ADMIN, "root", "rf-1", 0));
    ck_assert_int_eq(order(OID_A)->status, FSM_REFUNDED);
    ck_assert_int_eq(snap.history.n, 1);
    assert_a_stock_untouched();
    ck_assert_uint_eq(nevents(), 0);
}
END_TEST

START_TEST(test_refund_invalid)
{
    refund_cmd_t c = refund_cmd(OID_A, 1);

    set_status(OID_A, FSM_SHIPPED);
    rejects(refund_decide, &c, fx_env(ROLE_ADMIN, "root", "rf-1", 0),
            "invalid_transition",
            "{\"from\": \"shipped\", \"to\": \"refunded\"}");
    assert_a_stock_untouched();
    /* refunded is terminal: a second refund gives nothing back */
    order(OID_A)->status = FSM_DELIVERED;
    applies(refund_decide, &c, fx_env(ROLE_ADMIN, "root", "rf-2", 0));
    rejects(refund_decide, &c, fx_env(ROLE_ADMIN, "root", "rf-3", 0),
            "invalid_transition",
            "{\"from\": \"refunded\", \"to\": \"refunded\"}");
    assert_a_restored(0, "refund", "rf-2");
}
END_TEST

/* ---- expire ---- */

START_TEST(test_expire_due)
{
    order_id_cmd_t c = id_cmd(OID_A);

    /* at the deadline itself: due */
    applies(expire_decide, &c,
            fx_env(ROLE_SYSTEM, "scheduler", "expire-1", DUE_S));
    ck_assert_str_eq(res.order_id, OID_A);
    ck_assert_int_eq(order(OID_A)->status, FSM_EXPIRED);
    ck_assert_int_eq(snap.history.n, 1);
    assert_history(0, OID_A, FSM_PENDING, FSM_EXPIRED, ROLE_SYSTEM, "scheduler",
                   "expire-1", "");
    assert_a_restored(0, "expire", "expire-1");
    ck_assert_uint_eq(nevents(), 1);
    assert_event("order.expired", OID_A,
                 "{\"order_id\": \"" OID_A "\", \"number\":"
                 " \"ORD-00000001\"}");
}
END_TEST

START_TEST(test_expire_not_due)
{
    order_id_cmd_t c = id_cmd(OID_A);

    rejects(expire_decide, &c,
            fx_env(ROLE_SYSTEM, "scheduler", "expire-1", DUE_S - 1),
            "invalid_transition",
            "{\"from\": \"pending\", \"to\": \"expired\", \"not_due\": true,"
            " \"expires_at\": \"" EXPIRES "\"}");
    ck_assert_uint_eq(nevents(), 0);
    assert_a_stock_untouched();
}
END_TEST

START_TEST(test_expire_not_pending)
{
    order_id_cmd_t c = id_cmd(OID_A);

    /* not pending: the state machine refuses, due or not */
    set_status(OID_A, FSM_PAID);
    rejects(expire_decide, &c, fx_env(ROLE_SYSTEM, "scheduler", "e1", 0),
            "invalid_transition", "{\"from\": \"paid\", \"to\": \"expired\"}");
    rejects(expire_decide, &c, fx_env(ROLE_SYSTEM, "scheduler", "e2", DUE_S),
            "invalid_transition", "{\"from\": \"paid\", \"to\": \"expired\"}");
    set_status(OID_A, FSM_EXPIRED);
    rejects(expire_decide, &c, fx_env(ROLE_ADMIN, "root", "e3", DUE_S),
            "invalid_transition",
            "{\"from\": \"expired\", \"to\": \"expired\"}");
    ck_assert_uint_eq(nevents(), 0);
    assert_a_stock_untouched();
}
END_TEST

/* ---- rows the load must have held ---- */

START_TEST(test_missing_product_is_fatal)
{
    cancel_cmd_t c = cancel_cmd(OID_B, "");
    order_id_cmd_t e = id_cmd(OID_B);
    refund_cmd_t r = refund_cmd(OID_B, 1);

    /* a line whose product the load did not hold */
    order(OID_B)->items[1].product_id = 99;
    ck_assert_int_eq(
        decide(cancel_decide, &c, fx_env(ROLE_ADMIN, "root", "k1", 0)),
        OD_FATAL);
    ck_assert_int_eq(snap.missing, 1);
    snap.missing = 0;
    ck_assert_int_eq(decide(expire_decide, &e,
                            fx_env(ROLE_SYSTEM, "scheduler", "k2", DUE_S)),
                     OD_FATAL);
    ck_assert_int_eq(snap.missing, 1);
    snap.missing = 0;
    order(OID_B)->status = FSM_DELIVERED;
    ck_assert_int_eq(
        decide(refund_decide, &r, fx_env(ROLE_ADMIN, "root", "k3", 0)),
        OD_FATAL);
    ck_assert_int_eq(snap.missing, 1);
}
END_TEST

START_TEST(test_missing_variant_is_fatal)
{
    cancel_cmd_t c = cancel_cmd(OID_A, "");

    order(OID_A)->items[3].variant_id = 29;
    ck_assert_int_eq(
        decide(cancel_decide, &c, fx_env(ROLE_ADMIN, "root", "k1", 0)),
        OD_FATAL);
    ck_assert_int_eq(snap.missing, 1);
}
END_TEST

/* ---- several commands in one batch ---- */

START_TEST(test_lifecycle_in_one_batch)
{
    pay_cmd_t pay = pay_cmd(OID_A, "pm-1", TOTAL_A, "EUR");
    pay_cmd_t other = pay_cmd(OID_A, "pm-2", TOTAL_A, "EUR");
    order_id_cmd_t id = id_cmd(OID_A);
    ship_cmd_t ship = ship_cmd(OID_A, "TRK-9");
    refund_cmd_t refund = refund_cmd(OID_A, 1);
    cancel_cmd_t cancel = cancel_cmd(OID_A, "");

    applies(pay_decide, &pay, BRIDGE("k1", 10));
    /* each command sees what the one before it left */
    rejects(pay_decide, &other, BRIDGE("k2", 10), "already_paid",
            "{\"status\": \"paid\", \"payment_id\": \"pm-1\"}");
    applies(start_processing_decide, &id, fx_env(ROLE_VENDOR, "v1", "k3", 20));
    applies(ship_decide, &ship, fx_env(ROLE_VENDOR, "v1", "k4", 30));
    rejects(cancel_decide, &cancel, fx_env(ROLE_CUSTOMER, "c1", "k5", 40),
            "invalid_transition",
            "{\"from\": \"shipped\", \"to\": \"cancelled\"}");
    applies(deliver_decide, &id, fx_env(ROLE_SYSTEM, "carrier", "k6", 50));
    applies(refund_decide, &refund, fx_env(ROLE_ADMIN, "root", "k7", 60));

    ck_assert_int_eq(order(OID_A)->status, FSM_REFUNDED);
    ck_assert_str_eq(order(OID_A)->payment_id, "pm-1");
    ck_assert_str_eq(order(OID_A)->tracking_number, "TRK-9");
    ck_assert_int_eq(snap.history.n, 5);
    assert_history(0, OID_A, FSM_PENDING, FSM_PAID, ROLE_PAYMENT, "bridge",
                   "k1", "");
    assert_history(1, OID_A, FSM_PAID, FSM_PROCESSING, ROLE_VENDOR, "v1", "k3",
                   "");
    assert_history(2, OID_A, FSM_PROCESSING, FSM_SHIPPED, ROLE_VENDOR, "v1",
                   "k4", "");
    assert_history(3, OID_A, FSM_SHIPPED, FSM_DELIVERED, ROLE_SYSTEM, "carrier",
                   "k6", "");
    assert_history(4, OID_A, FSM_DELIVERED, FSM_REFUNDED, ROLE_ADMIN, "root",
                   "k7", "");
    assert_a_restored(0, "refund", "k7");
}
END_TEST

static Suite *
decide_lifecycle_suite(void)
{
    Suite *s = suite_create("decide_lifecycle");
    const struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"rollback_restores_order", test_rollback_restores_order},
        {"rollback_second_change", test_rollback_second_change},
        {"forget_keeps_earlier_changes", test_forget_keeps_earlier_changes},
        {"stock_low_on_decrement_only", test_stock_low_on_decrement_only},
        {"pay_applied", test_pay_applied},
        {"pay_order_not_found", test_pay_order_not_found},
        {"pay_expired_order", test_pay_expired_order},
        {"pay_cancelled_order", test_pay_cancelled_order},
        {"pay_already_paid", test_pay_already_paid},
        {"pay_deadline", test_pay_deadline},
        {"pay_deadline_no_grace", test_pay_deadline_no_grace},
        {"pay_deadline_overflow", test_pay_deadline_overflow},
        {"pay_amount_mismatch", test_pay_amount_mismatch},
        {"customer_own_order_only", test_customer_own_order_only},
        {"vendor_all_lines_only", test_vendor_all_lines_only},
        {"order_not_found", test_order_not_found},
        {"order_created_by_batch", test_order_created_by_batch},
        {"cancel_pending", test_cancel_pending},
        {"cancel_without_reason", test_cancel_without_reason},
        {"cancel_paid_refunds", test_cancel_paid_refunds},
        {"cancel_already_cancelled", test_cancel_already_cancelled},
        {"cancel_twice_in_batch", test_cancel_twice_in_batch},
        {"cancel_too_late", test_cancel_too_late},
        {"start_processing", test_start_processing},
        {"ship", test_ship},
        {"deliver", test_deliver},
        {"refund_restock", test_refund_restock},
        {"refund_without_restock", test_refund_without_restock},
        {"refund_invalid", test_refund_invalid},
        {"expire_due", test_expire_due},
        {"expire_not_due", test_expire_not_due},
        {"expire_not_pending", test_expire_not_pending},
        {"missing_product_is_fatal", test_missing_product_is_fatal},
        {"missing_variant_is_fatal", test_missing_variant_is_fatal},
        {"lifecycle_in_one_batch", test_lifecycle_in_one_batch},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, cases[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(decide_lifecycle_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
