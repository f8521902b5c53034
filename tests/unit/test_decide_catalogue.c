/* test_decide_catalogue.c - the catalogue decide functions (product_upsert,
 * product_delete, stock_adjust, tax_rate_set) over hand-made snapshots:
 * outcomes, reasons, details, stock.low events, the rows and ledger they
 * leave, and rejections rolled back to the snapshot as it was
 *
 * DESIGN: commands are parsed from the JSON a producer would send, so the
 * defaults the decide functions rely on (price and threshold absent) are
 * the parser's. Each decide() saves a copy of every row first; after a
 * rollback the snapshot must equal that copy byte for byte, which also
 * proves that every change went through the undo log.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../handlers/handlers.h"
#include "snap_fixture.h"

typedef od_status_t (*parse_fn)(const json_t *, void **, char *, size_t);

#define SAVED_MAX 32

/* Every row of a snapshot, copied. */
typedef struct saved {
    int nproducts, nvariants, ntaxes, nledger, nhistory, norders;
    snap_product_t products[SAVED_MAX];
    snap_variant_t variants[SAVED_MAX];
    snap_tax_rate_t taxes[SAVED_MAX];
    snap_ledger_t ledger[SAVED_MAX];
} saved_t;

/* The test's batch: one snapshot, the envelope and the last result. */
static snapshot_t snap;
static cmd_env_t env;
static domain_config_t cfg;
static decide_ctx_t ctx;
static cmd_result_t res;
static saved_t before;
static snap_mark_t mark;

static void
setup(void)
{
    snap_init(&snap);
    env = fx_env(ROLE_ADMIN, "ops", "k-1", 0);
    cfg = fx_cfg();
    ctx.snap = &snap;
    ctx.env = &env;
    ctx.cfg = &cfg;
    cmd_result_init(&res);
}

static void
teardown(void)
{
    cmd_result_reset(&res);
    snap_free(&snap);
}

/* The next command comes from role/actor with dedup key key. */
static void
as(cmd_role_t role, const char *actor, const char *key)
{
    env = fx_env(role, actor, key, 0);
}

static void
save(saved_t *out)
{
    memset(out, 0, sizeof(*out));
    ck_assert_int_le(snap.products.n, SAVED_MAX);
    ck_assert_int_le(snap.variants.n, SAVED_MAX);
    ck_assert_int_le(snap.taxes.n, SAVED_MAX);
    ck_assert_int_le(snap.ledger.n, SAVED_MAX);
    out->nproducts = snap.products.n;
    out->nvariants = snap.variants.n;
    out->ntaxes = snap.taxes.n;
    out->nledger = snap.ledger.n;
    out->nhistory = snap.history.n;
    out->norders = snap.orders.n;
    for (int i = 0; i < snap.products.n; i++)
        out->products[i] = *SNAP_ROW(snap.products, snap_product_t, i);
    for (int i = 0; i < snap.variants.n; i++)
        out->variants[i] = *SNAP_ROW(snap.variants, snap_variant_t, i);
    for (int i = 0; i < snap.taxes.n; i++)
        out->taxes[i] = *SNAP_ROW(snap.taxes, snap_tax_rate_t, i);
    for (int i = 0; i < snap.ledger.n; i++)
        out->ledger[i] = *SNAP_ROW(snap.ledger, snap_ledger_t, i);
}

/* The snapshot equals was, row for row. */
static void
assert_same(const saved_t *was)
{
    ck_assert_int_eq(snap.products.n, was->nproducts);
    ck_assert_int_eq(snap.variants.n, was->nvariants);
    ck_assert_int_eq(snap.taxes.n, was->ntaxes);
    ck_assert_int_eq(snap.ledger.n, was->nledger);
    ck_assert_int_eq(snap.history.n, was->nhistory);
    ck_assert_int_eq(snap.orders.n, was->norders);
    for (int i = 0; i < was->nproducts; i++)
        ck_assert_msg(memcmp(SNAP_ROW(snap.products, snap_product_t, i),
                             &was->products[i], sizeof(snap_product_t)) == 0,
                      "product row %d differs", i);
    for (int i = 0; i < was->nvariants; i++)
        ck_assert_msg(memcmp(SNAP_ROW(snap.variants, snap_variant_t, i),
                             &was->variants[i], sizeof(snap_variant_t)) == 0,
                      "variant row %d differs", i);
    for (int i = 0; i < was->ntaxes; i++)
        ck_assert_msg(memcmp(SNAP_ROW(snap.taxes, snap_tax_rate_t, i),
                             &was->taxes[i], sizeof(snap_tax_rate_t)) == 0,
                      "tax row %d differs", i);
    for (int i = 0; i < was->nledger; i++)
        ck_assert_msg(memcmp(SNAP_ROW(snap.ledger, snap_ledger_t, i),
                             &was->ledger[i], sizeof(snap_ledger_t)) == 0,
                      "ledger row %d differs", i);
}

/*
 * Parses body with parse and decides it with fn as the batch would:
 * the previous command's changes kept, a mark, a fresh result. The rows
 * as they were are kept in `before`.
 */
static od_status_t
decide(parse_fn parse, handler_decide_fn fn, const char *body)
{
    json_error_t jerr;
    json_t *root = json_loads(body, 0, &jerr);
    void *cmd = NULL;
    char err[256] = "";
    od_status_t st;

    ck_assert_msg(root != NULL, "bad test JSON: %s: %s", body, jerr.text);
    ck_assert_msg(parse(root, &cmd, err, sizeof(err)) == OD_OK,
                  "not parsed: %s: %s", body, err);
    json_decref(root);
    snap_forget_undo(&snap);
    cmd_result_reset(&res);
    save(&before);
    mark = snap_mark(&snap);
    st = fn(&ctx, cmd, &res);
    free(cmd);
    return st;
}

static od_status_t
upsert(const char *body)
{
    return decide(product_upsert_parse, product_upsert_decide, body);
}

static od_status_t
delete_product(const char *body)
{
    return decide(product_delete_parse, product_delete_decide, body);
}

static od_status_t
adjust(const char *body)
{
    return decide(stock_adjust_parse, stock_adjust_decide, body);
}

static od_status_t
set_tax(const char *body)
{
    return decide(tax_rate_set_parse, tax_rate_set_decide, body);
}

static void
assert_json(const json_t *got, const char *expected)
{
    json_t *want = json_loads(expected, 0, NULL);
    char *text = got != NULL ? json_dumps(got, JSON_SORT_KEYS) : NULL;
    int same;

    ck_assert_ptr_nonnull(want);
    same = got != NULL && json_equal(got, want);
    json_decref(want);
    ck_assert_msg(same, "got %s, want %s", text ? text : "NULL", expected);
    free(text);
}

static void
assert_applied(const char *details)
{
    ck_assert_int_eq(res.outcome, OUTCOME_APPLIED);
    ck_assert_ptr_null(res.reason);
    assert_json(res.details, details);
    ck_assert_int_eq(snap.missing, 0);
}

/* The last command was rejected with reason and details, queued no
 * event, and rolling it back leaves the snapshot as it was. */
static void
assert_rejected(const char *reason, const char *details)
{
    ck_assert_int_eq(res.outcome, OUTCOME_REJECTED);
    ck_assert_str_eq(res.reason, reason);
    assert_json(res.details, details);
    ck_assert_int_eq(fx_events(&res, "stock.low"), 0);
    snap_rollback(&snap, mark);
    assert_same(&before);
    ck_assert_int_eq(snap.missing, 0);
}

/* Rolls the last (applied) command back: the snapshot is as it was. */
static void
assert_rolls_back(void)
{
    snap_rollback(&snap, mark);
    assert_same(&before);
}

/* Ledger row i, written by the command with dedup key key. */
static void
assert_ledger(int i, int64_t product_id, int64_t variant_id, int64_t delta,
              const char *reason, const char *key)
{
    snap_ledger_t *l;

    ck_assert_int_lt(i, snap.ledger.n);
    l = SNAP_ROW(snap.ledger, snap_ledger_t, i);
    ck_assert_int_eq(l->product_id, product_id);
    ck_assert_int_eq(l->variant_id, variant_id);
    ck_assert_int_eq(l->delta, delta);
    ck_assert_str_eq(l->reason, reason);
    ck_assert_str_eq(l->order_id, "");
    ck_assert_str_eq(l->dedup_key, key);
    ck_assert_str_eq(l->source, "default");
}

/* The only extra event of the last result: stock.low with payload. */
static void
assert_stock_low(const char *key, const char *payload)
{
    json_t *e;

    ck_assert_int_eq(json_array_size(res.events), 1);
    e = json_array_get(res.events, 0);
    ck_assert_str_eq(json_string_value(json_object_get(e, "type")),
                     "stock.low");
    ck_assert_str_eq(json_string_value(json_object_get(e, "key")), key);
    assert_json(json_object_get(e, "payload"), payload);
}

#define SIMPLE7(rest)                                                          \
    "{\"product_id\":7,\"vendor_id\":\"vA\",\"name\":\"Mug\",\"sku\":"         \
    "\"MUG-1\",\"currency\":\"USD\",\"kind\":\"simple\"," rest "}"
#define VARIANT8(variants)                                                     \
    "{\"product_id\":8,\"vendor_id\":\"vA\",\"name\":\"Shirt\",\"sku\":"       \
    "\"SH\",\"currency\":\"EUR\",\"kind\":\"variant\",\"variants\":" variants  \
    "}"

/* product_upsert */

START_TEST(test_upsert_create_simple)
{
    snap_product_t *p;

    as(ROLE_VENDOR, "vA", "k-create");
    ck_assert_int_eq(upsert(SIMPLE7("\"price_cents\":1250,\"stock\":40")),
                     OD_OK);
    assert_applied("{\"product_id\":7,\"created\":true,\"revived\":false}");
    p = snap_product(&snap, 7);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->exists, 0);
    ck_assert_int_eq(p->dirty, 1);
    ck_assert_int_eq(p->stock_dirty, 1);
    ck_assert_int_eq(p->is_variant, 0);
    ck_assert_str_eq(p->vendor_id, "vA");
    ck_assert_str_eq(p->name, "Mug");
    ck_assert_str_eq(p->sku, "MUG-1");
    ck_assert_str_eq(p->currency, "USD");
    ck_assert_int_eq(p->price_cents, 1250);
    ck_assert_int_eq(p->stock, 40);
    ck_assert_int_eq(p->low_stock_threshold, 0);
    ck_assert_int_eq(p->deleted, 0);
    ck_assert_int_eq(snap.ledger.n, 1);
    assert_ledger(0, 7, 0, 40, "initial", "k-create");
    ck_assert_ptr_null(res.events);
    assert_rolls_back();
    ck_assert_ptr_null(snap_product(&snap, 7));
}
END_TEST

START_TEST(test_upsert_create_defaults)
{
    snap_product_t *p;

    /* no price: -1; stock 0: no ledger row; a threshold given is kept */
    ck_assert_int_eq(upsert(SIMPLE7("\"stock\":0,\"low_stock_threshold\":3")),
                     OD_OK);
    assert_applied("{\"product_id\":7,\"created\":true,\"revived\":false}");
    p = snap_product(&snap, 7);
    ck_assert_int_eq(p->price_cents, -1);
    ck_assert_int_eq(p->stock, 0);
    ck_assert_int_eq(p->stock_dirty, 0);
    ck_assert_int_eq(p->low_stock_threshold, 3);
    ck_assert_int_eq(p->dirty, 1);
    ck_assert_int_eq(snap.ledger.n, 0);
}
END_TEST

START_TEST(test_upsert_update_simple)
{
    snap_product_t *p = fx_product(&snap, 7, "vA", 1000, 10);

    p->low_stock_threshold = 5;
    p->price_cents = 1000;
    as(ROLE_VENDOR, "vA", "k-update");
    /* threshold absent: kept; stock 10 -> 4 crosses it */
    ck_assert_int_eq(upsert(SIMPLE7("\"stock\":4,\"price_cents\":900")), OD_OK);
    assert_applied("{\"product_id\":7,\"created\":false,\"revived\":false}");
    ck_assert_ptr_eq(snap_product(&snap, 7), p);
    ck_assert_int_eq(snap.products.n, 1);
    ck_assert_int_eq(p->exists, 1);
    ck_assert_int_eq(p->dirty, 1);
    ck_assert_int_eq(p->stock_dirty, 1);
    ck_assert_str_eq(p->name, "Mug");
    ck_assert_str_eq(p->sku, "MUG-1");
    ck_assert_str_eq(p->currency, "USD");
    ck_assert_int_eq(p->price_cents, 900);
    ck_assert_int_eq(p->low_stock_threshold, 5);
    ck_assert_int_eq(p->stock, 4);
    ck_assert_int_eq(snap.ledger.n, 1);
    assert_ledger(0, 7, 0, -6, "adjust", "k-update");
    assert_stock_low(
        "7",
        "{\"product_id\":7,\"variant_id\":null,\"stock\":4,\"threshold\":5}");
    assert_rolls_back();
}
END_TEST

START_TEST(test_upsert_threshold)
{
    snap_product_t *p = fx_product(&snap, 7, "vA", 1000, 10);

    p->low_stock_threshold = 5;
    /* unchanged stock: no ledger row, no stock write, no event */
    ck_assert_int_eq(upsert(SIMPLE7("\"stock\":10,\"low_stock_threshold\":20")),
                     OD_OK);
    assert_applied("{\"product_id\":7,\"created\":false,\"revived\":false}");
    ck_assert_int_eq(p->low_stock_threshold, 20);
    ck_assert_int_eq(p->stock, 10);
    ck_assert_int_eq(p->stock_dirty, 0);
    ck_assert_int_eq(p->price_cents, -1); /* price absent: no price */
    ck_assert_int_eq(snap.ledger.n, 0);
    ck_assert_ptr_null(res.events);
    /* the new threshold is the one a decrement is measured against */
    ck_assert_int_eq(upsert(SIMPLE7("\"stock\":8,\"low_stock_threshold\":9")),
                     OD_OK);
    assert_applied("{\"product_id\":7,\"created\":false,\"revived\":false}");
    assert_ledger(0, 7, 0, -2, "adjust", "k-1");
    assert_stock_low(
        "7",
        "{\"product_id\":7,\"variant_id\":null,\"stock\":8,\"threshold\":9}");
}
END_TEST

START_TEST(test_upsert_revive)
{
    snap_product_t *p = fx_product(&snap, 7, "vA", 1000, 10);

    p->deleted = 1;
    ck_assert_int_eq(upsert(SIMPLE7("\"stock\":10,\"price_cents\":1000")),
                     OD_OK);
    assert_applied("{\"product_id\":7,\"created\":false,\"revived\":true}");
    ck_assert_int_eq(p->deleted, 0);
    ck_assert_int_eq(p->dirty, 1);
    assert_rolls_back();
    ck_assert_int_eq(p->deleted, 1);
}
END_TEST

START_TEST(test_upsert_vendor_ownership)
{
    static const char *denied =
        "{\"error\":\"vendors may only change their own products\"}";
    snap_product_t *p = fx_product(&snap, 7, "vA", 1000, 10);
    const char *to_vb =
        "{\"product_id\":7,\"vendor_id\":\"vB\",\"name\":\"Mug\",\"sku\":"
        "\"MUG-1\",\"currency\":\"USD\",\"kind\":\"simple\",\"stock\":1}";

    /* a vendor writing another's product, even under its own name */
    as(ROLE_VENDOR, "vB", "k-1");
    ck_assert_int_eq(upsert(SIMPLE7("\"stock\":1")), OD_OK);
    assert_rejected("unauthorized", denied);
    ck_assert_int_eq(upsert(to_vb), OD_OK);
    assert_rejected("unauthorized", denied);
    /* nor creating one for another vendor */
    ck_assert_int_eq(upsert("{\"product_id\":70,\"vendor_id\":\"vA\","
                            "\"name\":\"X\",\"sku\":\"X\",\"currency\":"
                            "\"USD\",\"kind\":\"simple\",\"stock\":1}"),
                     OD_OK);
    assert_rejected("unauthorized", denied);
    /* its own product, handed over */
    as(ROLE_VENDOR, "vA", "k-2");
    ck_assert_int_eq(upsert(to_vb), OD_OK);
    assert_rejected("unauthorized", denied);
    /* a customer writes no product */
    as(ROLE_CUSTOMER, "vA", "k-3");
    ck_assert_int_eq(upsert(SIMPLE7("\"stock\":1")), OD_OK);
    assert_rejected("unauthorized", denied);
    /* an admin may hand it over */
    as(ROLE_ADMIN, "ops", "k-4");
    ck_assert_int_eq(upsert(to_vb), OD_OK);
    assert_applied("{\"product_id\":7,\"created\":false,\"revived\":false}");
    ck_assert_str_eq(p->vendor_id, "vB");
    ck_assert_int_eq(p->stock, 1);
    assert_ledger(0, 7, 0, -9, "adjust", "k-4");
}
END_TEST

START_TEST(test_upsert_kind_cannot_change)
{
    fx_product(&snap, 7, "vA", 1000, 10);
    fx_variant_product(&snap, 8, "vA");
    fx_variant(&snap, 81, 8, 500, 3);

    ck_assert_int_eq(upsert("{\"product_id\":7,\"vendor_id\":\"vA\","
                            "\"name\":\"Mug\",\"sku\":\"MUG-1\","
                            "\"currency\":\"USD\",\"kind\":\"variant\","
                            "\"variants\":[{\"variant_id\":71,\"name\":\"S\","
                            "\"sku\":\"S\",\"stock\":1}]}"),
                     OD_OK);
    assert_rejected("invalid_command",
                    "{\"error\":\"the kind of an existing product cannot "
                    "change\",\"kind\":\"simple\"}");
    ck_assert_int_eq(upsert("{\"product_id\":8,\"vendor_id\":\"vA\","
                            "\"name\":\"Shirt\",\"sku\":\"SH\","
                            "\"currency\":\"EUR\",\"kind\":\"simple\","
                            "\"stock\":1}"),
                     OD_OK);
    assert_rejected("invalid_command",
                    "{\"error\":\"the kind of an existing product cannot "
                    "change\",\"kind\":\"variant\"}");
}
END_TEST

START_TEST(test_upsert_create_variant_product)
{
    snap_product_t *p;
    snap_variant_t *v81, *v82;

    as(ROLE_VENDOR, "vA", "k-v");
    ck_assert_int_eq(
        upsert(VARIANT8("[{\"variant_id\":81,\"name\":\"S\",\"sku\":\"SH-S\","
                        "\"price_cents\":500,\"stock\":3},"
                        "{\"variant_id\":82,\"name\":\"M\",\"sku\":\"SH-M\","
                        "\"stock\":0}]")),
        OD_OK);
    assert_applied("{\"product_id\":8,\"created\":true,\"revived\":false}");
    p = snap_product(&snap, 8);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->exists, 0);
    ck_assert_int_eq(p->dirty, 1);
    ck_assert_int_eq(p->is_variant, 1);
    ck_assert_int_eq(p->price_cents, -1);
    ck_assert_int_eq(p->stock, 0);
    ck_assert_int_eq(p->stock_dirty, 0);
    ck_assert_str_eq(p->currency, "EUR");
    v81 = snap_variant(&snap, 81);
    v82 = snap_variant(&snap, 82);
    ck_assert_ptr_nonnull(v81);
    ck_assert_ptr_nonnull(v82);
    ck_assert_int_eq(v81->product_id, 8);
    ck_assert_int_eq(v81->exists, 0);
    ck_assert_int_eq(v81->dirty, 1);
    ck_assert_str_eq(v81->name, "S");
    ck_assert_str_eq(v81->sku, "SH-S");
    ck_assert_int_eq(v81->price_cents, 500);
    ck_assert_int_eq(v81->stock, 3);
    ck_assert_int_eq(v81->stock_dirty, 1);
    ck_assert_int_eq(v81->deleted, 0);
    ck_assert_int_eq(v82->product_id, 8);
    ck_assert_int_eq(v82->exists, 0);
    ck_assert_int_eq(v82->dirty, 1);
    ck_assert_str_eq(v82->name, "M");
    ck_assert_int_eq(v82->price_cents, -1);
    ck_assert_int_eq(v82->stock, 0);
    ck_assert_int_eq(v82->stock_dirty, 0);
    ck_assert_int_eq(snap.ledger.n, 1);
    assert_ledger(0, 8, 81, 3, "initial", "k-v");
    assert_rolls_back();
    ck_assert_ptr_null(snap_variant(&snap, 81));
}
END_TEST

START_TEST(test_upsert_update_variant_product)
{
    snap_product_t *p = fx_variant_product(&snap, 8, "vA");
    snap_variant_t *v81 = fx_variant(&snap, 81, 8, 500, 5);
    snap_variant_t *v82 = fx_variant(&snap, 82, 8, 600, 4);
    snap_variant_t *v84 = fx_variant(&snap, 84, 8, 700, 1);
    snap_variant_t *v85 = fx_variant(&snap, 85, 8, 800, 9);
    snap_variant_t *v83;
    saved_t *untouched = calloc(1, sizeof(*untouched));

    ck_assert_ptr_nonnull(untouched);
    p->low_stock_threshold = 2;
    p->deleted = 1; /* deleted with its variants, 85 revived since */
    v82->deleted = 1;
    v84->deleted = 1;
    untouched->variants[0] = *v84;
    untouched->variants[1] = *v85;
    as(ROLE_VENDOR, "vA", "k-vu");
    ck_assert_int_eq(
        upsert(VARIANT8("[{\"variant_id\":81,\"name\":\"S2\",\"sku\":\"SH-S\","
                        "\"price_cents\":550,\"stock\":1},"
                        "{\"variant_id\":82,\"name\":\"M\",\"sku\":\"SH-M\","
                        "\"stock\":4},"
                        "{\"variant_id\":83,\"name\":\"L\",\"sku\":\"SH-L\","
                        "\"price_cents\":650,\"stock\":6}]")),
        OD_OK);
    assert_applied("{\"product_id\":8,\"created\":false,\"revived\":true}");
    ck_assert_int_eq(p->deleted, 0);
    ck_assert_int_eq(p->dirty, 1);
    ck_assert_int_eq(p->stock_dirty, 0);
    /* 81 updated, stock 5 -> 1 crossing the product's threshold */
    ck_assert_str_eq(v81->name, "S2");
    ck_assert_int_eq(v81->price_cents, 550);
    ck_assert_int_eq(v81->stock, 1);
    ck_assert_int_eq(v81->dirty, 1);
    ck_assert_int_eq(v81->stock_dirty, 1);
    ck_assert_int_eq(v81->exists, 1);
    /* 82 revived, price gone, stock unchanged */
    ck_assert_int_eq(v82->deleted, 0);
    ck_assert_int_eq(v82->dirty, 1);
    ck_assert_int_eq(v82->price_cents, -1);
    ck_assert_int_eq(v82->stock, 4);
    ck_assert_int_eq(v82->stock_dirty, 0);
    /* 83 new */
    v83 = snap_variant(&snap, 83);
    ck_assert_ptr_nonnull(v83);
    ck_assert_int_eq(v83->exists, 0);
    ck_assert_int_eq(v83->product_id, 8);
    ck_assert_int_eq(v83->stock, 6);
    ck_assert_int_eq(v83->price_cents, 650);
    /* unlisted variants left as they are */
    ck_assert_mem_eq(v84, &untouched->variants[0], sizeof(*v84));
    ck_assert_mem_eq(v85, &untouched->variants[1], sizeof(*v85));
    ck_assert_int_eq(snap.ledger.n, 2);
    assert_ledger(0, 8, 81, -4, "adjust", "k-vu");
    assert_ledger(1, 8, 83, 6, "initial", "k-vu");
    assert_stock_low(
        "8",
        "{\"product_id\":8,\"variant_id\":81,\"stock\":1,\"threshold\":2}");
    assert_rolls_back();
    free(untouched);
}
END_TEST

START_TEST(test_upsert_variant_of_other_product)
{
    fx_variant_product(&snap, 9, "vA");
    fx_variant(&snap, 92, 9, 500, 1);
    fx_variant(&snap, 91, 9, 500, 1);

    /* the lowest id that belongs elsewhere is named */
    ck_assert_int_eq(
        upsert(VARIANT8("[{\"variant_id\":80,\"name\":\"S\",\"sku\":\"S\","
                        "\"stock\":1},"
                        "{\"variant_id\":92,\"name\":\"M\",\"sku\":\"M\","
                        "\"stock\":1},"
                        "{\"variant_id\":91,\"name\":\"L\",\"sku\":\"L\","
                        "\"stock\":1}]")),
        OD_OK);
    assert_rejected("invalid_command",
                    "{\"error\":\"variant_id belongs to another product\","
                    "\"variant_id\":91,\"product_id\":9}");
    ck_assert_ptr_null(snap_product(&snap, 8));
}
END_TEST

START_TEST(test_upsert_same_batch)
{
    snap_product_t *p;
    saved_t *first = calloc(1, sizeof(*first));

    ck_assert_ptr_nonnull(first);
    ck_assert_int_eq(upsert(SIMPLE7("\"stock\":5")), OD_OK);
    assert_applied("{\"product_id\":7,\"created\":true,\"revived\":false}");
    save(first);
    /* the next command sees the row the first one created */
    as(ROLE_ADMIN, "ops", "k-2");
    ck_assert_int_eq(upsert(SIMPLE7("\"stock\":8,\"price_cents\":3")), OD_OK);
    assert_applied("{\"product_id\":7,\"created\":false,\"revived\":false}");
    p = snap_product(&snap, 7);
    ck_assert_int_eq(snap.products.n, 1);
    ck_assert_int_eq(p->exists, 0);
    ck_assert_int_eq(p->stock, 8);
    ck_assert_int_eq(p->price_cents, 3);
    ck_assert_int_eq(snap.ledger.n, 2);
    assert_ledger(1, 7, 0, 3, "adjust", "k-2");
    /* rolling the second back leaves the first's row */
    snap_rollback(&snap, mark);
    assert_same(first);
    free(first);
}
END_TEST

/* product_delete */

START_TEST(test_delete_soft)
{
    snap_product_t *p = fx_variant_product(&snap, 8, "vA");
    snap_variant_t *v81 = fx_variant(&snap, 81, 8, 500, 5);
    snap_variant_t *v82 = fx_variant(&snap, 82, 8, 500, 2);
    snap_variant_t *v91;

    fx_variant_product(&snap, 9, "vA");
    v91 = fx_variant(&snap, 91, 9, 500, 1);
    v82->deleted = 1;
    as(ROLE_VENDOR, "vA", "k-del");
    ck_assert_int_eq(delete_product("{\"product_id\":8}"), OD_OK);
    assert_applied("{\"product_id\":8,\"already_deleted\":false}");
    ck_assert_int_eq(p->deleted, 1);
    ck_assert_int_eq(p->dirty, 1);
    ck_assert_int_eq(v81->deleted, 1);
    ck_assert_int_eq(v81->dirty, 1);
    /* stock and ledger untouched: pending orders can still give back */
    ck_assert_int_eq(v81->stock, 5);
    ck_assert_int_eq(v81->stock_dirty, 0);
    ck_assert_int_eq(snap.ledger.n, 0);
    /* a variant deleted before keeps its own deletion; others' untouched */
    ck_assert_int_eq(v82->dirty, 0);
    ck_assert_int_eq(v91->deleted, 0);
    ck_assert_int_eq(v91->dirty, 0);
    ck_assert_ptr_null(res.events);
    assert_rolls_back();
}
END_TEST

START_TEST(test_delete_simple)
{
    snap_product_t *p = fx_product(&snap, 7, "vA", 100, 3);

    ck_assert_int_eq(delete_product("{\"product_id\":\"7\"}"), OD_OK);
    assert_applied("{\"product_id\":7,\"already_deleted\":false}");
    ck_assert_int_eq(p->deleted, 1);
    ck_assert_int_eq(p->dirty, 1);
    ck_assert_int_eq(p->stock, 3);
    ck_assert_int_eq(p->stock_dirty, 0);
}
END_TEST

START_TEST(test_delete_already_deleted)
{
    snap_product_t *p = fx_product(&snap, 7, "vA", 100, 3);

    p->deleted = 1;
    ck_assert_int_eq(delete_product("{\"product_id\":7}"), OD_OK);
    assert_applied("{\"product_id\":7,\"already_deleted\":true}");
    /* applied with no change at all */
    assert_same(&before);
    ck_assert_int_eq(p->dirty, 0);
}
END_TEST

START_TEST(test_delete_not_found)
{
    fx_product(&snap, 7, "vA", 100, 3);
    ck_assert_int_eq(delete_product("{\"product_id\":5}"), OD_OK);
    assert_rejected("product_not_found", "{\"product_id\":5}");
}
END_TEST

START_TEST(test_delete_ownership)
{
    snap_product_t *p = fx_product(&snap, 7, "vA", 100, 3);

    as(ROLE_VENDOR, "vB", "k-1");
    ck_assert_int_eq(delete_product("{\"product_id\":7}"), OD_OK);
    assert_rejected("unauthorized",
                    "{\"error\":\"vendors may only delete their own "
                    "products\"}");
    as(ROLE_ADMIN, "ops", "k-2");
    ck_assert_int_eq(delete_product("{\"product_id\":7}"), OD_OK);
    assert_applied("{\"product_id\":7,\"already_deleted\":false}");
    ck_assert_int_eq(p->deleted, 1);
}
END_TEST

/* stock_adjust */

START_TEST(test_adjust_simple)
{
    snap_product_t *p = fx_product(&snap, 7, "vA", 100, 10);

    as(ROLE_VENDOR, "vA", "k-adj");
    ck_assert_int_eq(adjust("{\"product_id\":7,\"delta\":5,"
                            "\"reason\":\"recount\"}"),
                     OD_OK);
    assert_applied("{\"product_id\":7,\"variant_id\":null,\"delta\":5,"
                   "\"stock\":15,\"reason\":\"recount\"}");
    ck_assert_int_eq(p->stock, 15);
    ck_assert_int_eq(p->stock_dirty, 1);
    ck_assert_int_eq(p->dirty, 0); /* no catalogue field changed */
    ck_assert_int_eq(snap.ledger.n, 1);
    assert_ledger(0, 7, 0, 5, "adjust", "k-adj");
    ck_assert_ptr_null(res.events);
    assert_rolls_back();
}
END_TEST

START_TEST(test_adjust_low_stock)
{
    snap_product_t *p = fx_product(&snap, 7, "vA", 100, 8);

    p->low_stock_threshold = 5;
    ck_assert_int_eq(adjust("{\"product_id\":7,\"delta\":-3,"
                            "\"reason\":\"damaged\"}"),
                     OD_OK);
    assert_applied("{\"product_id\":7,\"variant_id\":null,\"delta\":-3,"
                   "\"stock\":5,\"reason\":\"damaged\"}");
    assert_stock_low(
        "7",
        "{\"product_id\":7,\"variant_id\":null,\"stock\":5,\"threshold\":5}");
    /* already at the threshold: no second notice */
    as(ROLE_ADMIN, "ops", "k-2");
    ck_assert_int_eq(adjust("{\"product_id\":7,\"delta\":-1,"
                            "\"reason\":\"damaged\"}"),
                     OD_OK);
    assert_applied("{\"product_id\":7,\"variant_id\":null,\"delta\":-1,"
                   "\"stock\":4,\"reason\":\"damaged\"}");
    ck_assert_ptr_null(res.events);
    assert_ledger(0, 7, 0, -3, "adjust", "k-1");
    assert_ledger(1, 7, 0, -1, "adjust", "k-2");
}
END_TEST

START_TEST(test_adjust_insufficient)
{
    fx_product(&snap, 7, "vA", 100, 3);
    fx_variant_product(&snap, 8, "vA");
    fx_variant(&snap, 81, 8, 500, 2);

    ck_assert_int_eq(adjust("{\"product_id\":7,\"delta\":-4,"
                            "\"reason\":\"x\"}"),
                     OD_OK);
    assert_rejected("insufficient_stock",
                    "{\"product_id\":7,\"variant_id\":null,\"requested\":4,"
                    "\"available\":3}");
    ck_assert_int_eq(adjust("{\"product_id\":8,\"variant_id\":81,"
                            "\"delta\":-3,\"reason\":\"x\"}"),
                     OD_OK);
    assert_rejected("insufficient_stock",
                    "{\"product_id\":8,\"variant_id\":81,\"requested\":3,"
                    "\"available\":2}");
}
END_TEST

START_TEST(test_adjust_sequence)
{
    fx_product(&snap, 7, "vA", 100, 10);

    /* the second command sees the stock the first left */
    ck_assert_int_eq(adjust("{\"product_id\":7,\"delta\":-6,"
                            "\"reason\":\"x\"}"),
                     OD_OK);
    assert_applied("{\"product_id\":7,\"variant_id\":null,\"delta\":-6,"
                   "\"stock\":4,\"reason\":\"x\"}");
    ck_assert_int_eq(adjust("{\"product_id\":7,\"delta\":-6,"
                            "\"reason\":\"x\"}"),
                     OD_OK);
    assert_rejected("insufficient_stock",
                    "{\"product_id\":7,\"variant_id\":null,\"requested\":6,"
                    "\"available\":4}");
    ck_assert_int_eq(snap_product(&snap, 7)->stock, 4);
}
END_TEST

START_TEST(test_adjust_overflow)
{
    fx_product(&snap, 7, "vA", 100, INT64_MAX - 1);

    ck_assert_int_eq(adjust("{\"product_id\":7,\"delta\":2,"
                            "\"reason\":\"x\"}"),
                     OD_OK);
    assert_rejected("invalid_command",
                    "{\"error\":\"the stock would overflow\"}");
    ck_assert_int_eq(adjust("{\"product_id\":7,\"delta\":1,"
                            "\"reason\":\"x\"}"),
                     OD_OK);
    assert_applied("{\"product_id\":7,\"variant_id\":null,\"delta\":1,"
                   "\"stock\":9223372036854775807,\"reason\":\"x\"}");
}
END_TEST

START_TEST(test_adjust_variant)
{
    snap_product_t *p = fx_variant_product(&snap, 8, "vA");
    snap_variant_t *v81 = fx_variant(&snap, 81, 8, 500, 4);
    snap_variant_t *v82 = fx_variant(&snap, 82, 8, 500, 4);

    p->low_stock_threshold = 3;
    as(ROLE_VENDOR, "vA", "k-v");
    ck_assert_int_eq(adjust("{\"product_id\":8,\"variant_id\":\"81\","
                            "\"delta\":-2,\"reason\":\"damaged\"}"),
                     OD_OK);
    assert_applied("{\"product_id\":8,\"variant_id\":81,\"delta\":-2,"
                   "\"stock\":2,\"reason\":\"damaged\"}");
    ck_assert_int_eq(v81->stock, 2);
    ck_assert_int_eq(v81->stock_dirty, 1);
    ck_assert_int_eq(v81->dirty, 0);
    ck_assert_int_eq(v82->stock, 4);
    ck_assert_int_eq(v82->stock_dirty, 0);
    ck_assert_int_eq(p->stock, 0);
    ck_assert_int_eq(p->stock_dirty, 0);
    ck_assert_int_eq(snap.ledger.n, 1);
    assert_ledger(0, 8, 81, -2, "adjust", "k-v");
    assert_stock_low(
        "8",
        "{\"product_id\":8,\"variant_id\":81,\"stock\":2,\"threshold\":3}");
    assert_rolls_back();
}
END_TEST

START_TEST(test_adjust_variant_rules)
{
    fx_product(&snap, 7, "vA", 100, 3);
    fx_variant_product(&snap, 8, "vA");
    fx_variant(&snap, 81, 8, 500, 2);
    fx_variant_product(&snap, 9, "vA");
    fx_variant(&snap, 91, 9, 500, 2);

    ck_assert_int_eq(adjust("{\"product_id\":8,\"delta\":1,"
                            "\"reason\":\"x\"}"),
                     OD_OK);
    assert_rejected("variant_required", "{\"product_id\":8}");
    ck_assert_int_eq(adjust("{\"product_id\":7,\"variant_id\":81,"
                            "\"delta\":1,\"reason\":\"x\"}"),
                     OD_OK);
    assert_rejected("variant_not_found",
                    "{\"product_id\":7,\"variant_id\":81}");
    ck_assert_int_eq(adjust("{\"product_id\":8,\"variant_id\":91,"
                            "\"delta\":1,\"reason\":\"x\"}"),
                     OD_OK);
    assert_rejected("variant_not_found",
                    "{\"product_id\":8,\"variant_id\":91}");
    ck_assert_int_eq(adjust("{\"product_id\":8,\"variant_id\":99,"
                            "\"delta\":1,\"reason\":\"x\"}"),
                     OD_OK);
    assert_rejected("variant_not_found",
                    "{\"product_id\":8,\"variant_id\":99}");
}
END_TEST

START_TEST(test_adjust_deleted_allowed)
{
    snap_product_t *p = fx_product(&snap, 7, "vA", 100, 3);
    snap_product_t *q = fx_variant_product(&snap, 8, "vA");
    snap_variant_t *v81 = fx_variant(&snap, 81, 8, 500, 2);

    p->deleted = 1;
    q->deleted = 1;
    v81->deleted = 1;
    ck_assert_int_eq(adjust("{\"product_id\":7,\"delta\":-3,"
                            "\"reason\":\"write-off\"}"),
                     OD_OK);
    assert_applied("{\"product_id\":7,\"variant_id\":null,\"delta\":-3,"
                   "\"stock\":0,\"reason\":\"write-off\"}");
    ck_assert_int_eq(p->deleted, 1);
    ck_assert_int_eq(adjust("{\"product_id\":8,\"variant_id\":81,"
                            "\"delta\":-2,\"reason\":\"write-off\"}"),
                     OD_OK);
    assert_applied("{\"product_id\":8,\"variant_id\":81,\"delta\":-2,"
                   "\"stock\":0,\"reason\":\"write-off\"}");
    ck_assert_int_eq(v81->deleted, 1);
    ck_assert_int_eq(snap.ledger.n, 2);
}
END_TEST

START_TEST(test_adjust_not_found_and_ownership)
{
    fx_product(&snap, 7, "vA", 100, 3);

    ck_assert_int_eq(adjust("{\"product_id\":5,\"delta\":1,"
                            "\"reason\":\"x\"}"),
                     OD_OK);
    assert_rejected("product_not_found", "{\"product_id\":5}");
    as(ROLE_VENDOR, "vB", "k-2");
    ck_assert_int_eq(adjust("{\"product_id\":7,\"delta\":1,"
                            "\"reason\":\"x\"}"),
                     OD_OK);
    assert_rejected("unauthorized",
                    "{\"error\":\"vendors may only adjust their own "
                    "products\"}");
    as(ROLE_SYSTEM, "scheduler", "k-3");
    ck_assert_int_eq(adjust("{\"product_id\":7,\"delta\":1,"
                            "\"reason\":\"x\"}"),
                     OD_OK);
    assert_rejected("unauthorized",
                    "{\"error\":\"vendors may only adjust their own "
                    "products\"}");
}
END_TEST

/* tax_rate_set */

START_TEST(test_tax_rate_set)
{
    snap_set_tax_rate(&snap, "FR", 2000);
    SNAP_ROW(snap.taxes, snap_tax_rate_t, 0)->dirty = 0; /* as loaded */

    ck_assert_int_eq(set_tax("{\"country\":\"DE\",\"rate_bps\":1900}"), OD_OK);
    assert_applied("{\"country\":\"DE\",\"rate_bps\":1900}");
    ck_assert_int_eq(snap_tax_rate(&snap, "DE"), 1900);
    ck_assert_int_eq(snap_tax_rate(&snap, "FR"), 2000);
    ck_assert_ptr_null(res.events);
    ck_assert_int_eq(set_tax("{\"country\":\"FR\",\"rate_bps\":550}"), OD_OK);
    assert_applied("{\"country\":\"FR\",\"rate_bps\":550}");
    ck_assert_int_eq(snap_tax_rate(&snap, "FR"), 550);
    /* the newest FR is the one to write */
    ck_assert_int_eq(
        SNAP_ROW(snap.taxes, snap_tax_rate_t, snap.taxes.n - 1)->dirty, 1);
    assert_rolls_back();
    ck_assert_int_eq(snap_tax_rate(&snap, "FR"), 2000);
    ck_assert_int_eq(snap_tax_rate(&snap, "DE"), 1900);
}
END_TEST

static Suite *
decide_catalogue_suite(void)
{
    Suite *s = suite_create("decide_catalogue");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"upsert_create_simple", test_upsert_create_simple},
        {"upsert_create_defaults", test_upsert_create_defaults},
        {"upsert_update_simple", test_upsert_update_simple},
        {"upsert_threshold", test_upsert_threshold},
        {"upsert_revive", test_upsert_revive},
        {"upsert_vendor_ownership", test_upsert_vendor_ownership},
        {"upsert_kind_cannot_change", test_upsert_kind_cannot_change},
        {"upsert_create_variant_product", test_upsert_create_variant_product},
        {"upsert_update_variant_product", test_upsert_update_variant_product},
        {"upsert_variant_of_other_product",
         test_upsert_variant_of_other_product},
        {"upsert_same_batch", test_upsert_same_batch},
        {"delete_soft", test_delete_soft},
        {"delete_simple", test_delete_simple},
        {"delete_already_deleted", test_delete_already_deleted},
        {"delete_not_found", test_delete_not_found},
        {"delete_ownership", test_delete_ownership},
        {"adjust_simple", test_adjust_simple},
        {"adjust_low_stock", test_adjust_low_stock},
        {"adjust_insufficient", test_adjust_insufficient},
        {"adjust_sequence", test_adjust_sequence},
        {"adjust_overflow", test_adjust_overflow},
        {"adjust_variant", test_adjust_variant},
        {"adjust_variant_rules", test_adjust_variant_rules},
        {"adjust_deleted_allowed", test_adjust_deleted_allowed},
        {"adjust_not_found_and_ownership", test_adjust_not_found_and_ownership},
        {"tax_rate_set", test_tax_rate_set},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(decide_catalogue_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
