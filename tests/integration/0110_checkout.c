/* 0110_checkout: checkout on a real database: the order, its snapshot
 * items, totals and tax, stock and ledger, and every refusal leaving
 * stock, ledger and orders untouched */
#include "catalogue_fixture.h"

#define OID1 "11111111-1111-4111-8111-111111111111"
#define OID2 "22222222-2222-4222-8222-222222222222"

static db_t *db;

static void
setup(void)
{
    db = itest_fresh_db("checkout", NULL, 0);
    itest_cfg.domain.default_tax_bps = 0;
    itest_cfg.domain.pending_ttl_s = 900;
    fx_expect(fx_simple(db, 7, "vA", 1192, 10, -1), "applied", NULL);
    fx_expect(fx_variant(db, 8, "vB",
                         "[{\"variant_id\":81,\"name\":\"Small\",\"sku\":"
                         "\"S-81\",\"price_cents\":250,\"stock\":4},"
                         "{\"variant_id\":82,\"name\":\"Large\",\"sku\":"
                         "\"L-82\",\"price_cents\":300,\"stock\":1}]"),
              "applied", NULL);
    fx_expect(fx_cmd(db, "tax_rate_set", "admin", "root",
                     "\"country\":\"DE\",\"rate_bps\":1900"),
              "applied", NULL);
}

static void
teardown(void)
{
    db_destroy(db);
}

static int64_t
order_int(const json_t *ev, const char *field)
{
    const json_t *v = json_object_get(json_object_get(ev, "order"), field);

    ck_assert_msg(json_is_integer(v), "order.%s is not an integer", field);
    return json_integer_value(v);
}

/* a refusal changed nothing: stock, ledger, orders as after setup */
static void
assert_untouched(void)
{
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM orders"), 0);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM order_items"), 0);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM order_status_history"),
                     0);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger"), 3);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 7"),
                     10);
    ck_assert_int_eq(
        itest_int(db, "SELECT stock FROM product_variants WHERE id = 81"), 4);
    itest_assert_stock_matches_ledger(db);
}

START_TEST(test_applied_checkout_creates_the_order)
{
    json_t *ev, *items, *it;
    char buf[128];

    ev = fx_checkout(db, OID1, "DE",
                     "[{\"product_id\":7,\"quantity\":2,"
                     "\"unit_price_cents\":1192},"
                     "{\"product_id\":8,\"variant_id\":81,\"quantity\":1}]");
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "order_id")), OID1);
    /* 2 * 1192 + 250 = 2634; 19% = 500.46 -> 500 */
    ck_assert_int_eq(order_int(ev, "subtotal_cents"), 2634);
    ck_assert_int_eq(order_int(ev, "tax_rate_bps"), 1900);
    ck_assert_int_eq(order_int(ev, "tax_cents"), 500);
    ck_assert_int_eq(order_int(ev, "total_cents"), 3134);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "order"), "status")),
                     "pending");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "order"), "number")),
                     "ORD-00000001");
    items = json_object_get(json_object_get(ev, "order"), "items");
    ck_assert_int_eq(json_array_size(items), 2);
    it = json_array_get(items, 1);
    ck_assert_str_eq(json_string_value(json_object_get(it, "sku")), "S-81");
    ck_assert_str_eq(json_string_value(json_object_get(it, "name")),
                     "Product 8");
    ck_assert_str_eq(json_string_value(json_object_get(it, "variant_name")),
                     "Small");
    ck_assert_int_eq(json_integer_value(json_object_get(it, "variant_id")), 81);
    json_decref(ev);

    ck_assert_str_eq(itest_text(db,
                                "SELECT status || '/' || customer_id ||"
                                " '/' || tax_country || '/' || currency"
                                " FROM orders",
                                buf, sizeof(buf)),
                     "pending/c1/DE/EUR");
    ck_assert_int_eq(itest_int(db, "SELECT extract(epoch FROM expires_at -"
                                   " created_at)::bigint FROM orders"),
                     900);
    /* created_at is the command's event time, not the clock at apply */
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM orders WHERE"
                                   " created_at <= now() AND created_at >"
                                   " now() - interval '1 minute'"),
                     1);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM order_items WHERE"
                                   " product_id = 7 AND variant_id IS NULL"
                                   " AND vendor_id = 'vA' AND sku = 'SKU-7'"
                                   " AND quantity = 2 AND"
                                   " unit_price_cents = 1192"),
                     1);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM order_items WHERE"
                                   " variant_id = 81 AND vendor_id = 'vB'"
                                   " AND unit_price_cents = 250"),
                     1);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 7"),
                     8);
    ck_assert_int_eq(
        itest_int(db, "SELECT stock FROM product_variants WHERE id = 81"), 3);
    ck_assert_int_eq(itest_int(db,
                               "SELECT count(*) FROM stock_ledger WHERE"
                               " reason = 'order' AND order_id = '" OID1 "'"),
                     2);
    ck_assert_int_eq(itest_int(db, "SELECT sum(delta) FROM stock_ledger WHERE"
                                   " reason = 'order'"),
                     -3);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM order_status_history"
                                   " WHERE from_status IS NULL AND to_status"
                                   " = 'pending' AND actor_role = 'customer'"
                                   " AND actor_id = 'c1'"),
                     1);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_tax_contract_example_and_rounding)
{
    /* the contract's example: 2 * 1192 = 2384, DE 19% -> 453, 2837 */
    json_t *ev =
        fx_checkout(db, OID1, "DE", "[{\"product_id\":7,\"quantity\":2}]");

    ck_assert_int_eq(order_int(ev, "subtotal_cents"), 2384);
    ck_assert_int_eq(order_int(ev, "tax_cents"), 453);
    ck_assert_int_eq(order_int(ev, "total_cents"), 2837);
    json_decref(ev);
    /* 250 * 2% = 5.0; 250 * 1% = 2.5 -> 3 (half rounds up) */
    fx_expect(fx_cmd(db, "tax_rate_set", "admin", "root",
                     "\"country\":\"AT\",\"rate_bps\":100"),
              "applied", NULL);
    ev = fx_checkout(db, OID2, "AT",
                     "[{\"product_id\":8,\"variant_id\":81,\"quantity\":1}]");
    ck_assert_int_eq(order_int(ev, "tax_rate_bps"), 100);
    ck_assert_int_eq(order_int(ev, "tax_cents"), 3);
    ck_assert_int_eq(order_int(ev, "total_cents"), 253);
    json_decref(ev);
}
END_TEST

START_TEST(test_default_tax_when_country_unknown)
{
    json_t *ev;

    itest_cfg.domain.default_tax_bps = 2000;
    ev = fx_checkout(db, OID1, "XX", "[{\"product_id\":7,\"quantity\":1}]");
    ck_assert_int_eq(order_int(ev, "tax_rate_bps"), 2000);
    ck_assert_int_eq(order_int(ev, "tax_cents"), 238); /* 238.4 */
    json_decref(ev);
    ev = fx_checkout(db, OID2, NULL, "[{\"product_id\":7,\"quantity\":1}]");
    ck_assert_int_eq(order_int(ev, "tax_rate_bps"), 2000);
    ck_assert(json_is_null(
        json_object_get(json_object_get(ev, "order"), "tax_country")));
    json_decref(ev);
}
END_TEST

START_TEST(test_refusals_change_nothing)
{
    static const struct {
        const char *items;
        const char *reason;
    } cases[] = {
        {"[{\"product_id\":99,\"quantity\":1}]", "product_not_found"},
        {"[{\"product_id\":8,\"quantity\":1}]", "variant_required"},
        {"[{\"product_id\":8,\"variant_id\":99,\"quantity\":1}]",
         "variant_not_found"},
        {"[{\"product_id\":7,\"variant_id\":81,\"quantity\":1}]",
         "variant_not_found"},
        {"[{\"product_id\":9,\"variant_id\":81,\"quantity\":1}]",
         "variant_not_found"},
        {"[{\"product_id\":10,\"quantity\":1}]", "price_missing"},
        {"[{\"product_id\":11,\"quantity\":1}]", "currency_mismatch"},
        {"[{\"product_id\":7,\"quantity\":1,\"unit_price_cents\":1000}]",
         "price_changed"},
        {"[{\"product_id\":7,\"quantity\":11}]", "insufficient_stock"},
        /* all-or-nothing: one good line does not go through alone */
        {"[{\"product_id\":7,\"quantity\":1},"
         "{\"product_id\":8,\"variant_id\":82,\"quantity\":2}]",
         "insufficient_stock"},
        {"[{\"product_id\":7,\"quantity\":1},{\"product_id\":99,"
         "\"quantity\":1}]",
         "product_not_found"},
    };
    /* 9: another variant product (81 is not its variant); 10: no price;
     * 11: priced in USD; all without stock so the ledger stays at 3 */
    fx_expect(fx_variant(db, 9, "vA",
                         "[{\"variant_id\":91,\"name\":\"N\",\"sku\":\"N\","
                         "\"price_cents\":1,\"stock\":0}]"),
              "applied", NULL);
    fx_expect(fx_cmd(db, "product_upsert", "admin", "root",
                     "\"product_id\":10,\"vendor_id\":\"vA\",\"name\":\"P\","
                     "\"sku\":\"P\",\"currency\":\"EUR\",\"kind\":\"simple\","
                     "\"stock\":0"),
              "applied", NULL);
    fx_expect(fx_cmd(db, "product_upsert", "admin", "root",
                     "\"product_id\":11,\"vendor_id\":\"vA\",\"name\":\"U\","
                     "\"sku\":\"U\",\"currency\":\"USD\",\"kind\":\"simple\","
                     "\"price_cents\":5,\"stock\":0"),
              "applied", NULL);
    /* products 10 and 11 have no stock: the price/currency checks come
     * before the stock check */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *ev = fx_checkout(db, OID1, NULL, cases[i].items);

        ck_assert_msg(strcmp(itest_reason(ev), cases[i].reason) == 0,
                      "case %zu: expected %s, got %s %s", i, cases[i].reason,
                      itest_outcome(ev), itest_reason(ev));
        ck_assert(json_is_null(json_object_get(ev, "order")));
        json_decref(ev);
        assert_untouched();
    }
}
END_TEST

START_TEST(test_refusal_details)
{
    json_t *ev, *lines, *l;

    ev = fx_checkout(db, OID1, NULL,
                     "[{\"product_id\":7,\"quantity\":11},"
                     "{\"product_id\":8,\"variant_id\":82,\"quantity\":2},"
                     "{\"product_id\":8,\"variant_id\":81,\"quantity\":1}]");
    ck_assert_str_eq(itest_reason(ev), "insufficient_stock");
    lines = json_object_get(json_object_get(ev, "details"), "lines");
    ck_assert_int_eq(json_array_size(lines), 2);
    l = json_array_get(lines, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "product_id")), 7);
    ck_assert(json_is_null(json_object_get(l, "variant_id")));
    ck_assert_int_eq(json_integer_value(json_object_get(l, "requested")), 11);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "available")), 10);
    l = json_array_get(lines, 1);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "variant_id")), 82);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "requested")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "available")), 1);
    json_decref(ev);

    ev = fx_checkout(db, OID1, NULL,
                     "[{\"product_id\":7,\"quantity\":1,"
                     "\"unit_price_cents\":1100}]");
    ck_assert_str_eq(itest_reason(ev), "price_changed");
    l = json_array_get(json_object_get(json_object_get(ev, "details"), "lines"),
                       0);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "quoted")), 1100);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "current")), 1192);
    json_decref(ev);
    /* two lines of one product quoting different prices */
    fx_expect(fx_checkout(db, OID1, NULL,
                          "[{\"product_id\":7,\"quantity\":1,"
                          "\"unit_price_cents\":1192},"
                          "{\"product_id\":7,\"quantity\":1,"
                          "\"unit_price_cents\":1100}]"),
              "rejected", "price_changed");
    assert_untouched();
}
END_TEST

START_TEST(test_lines_are_aggregated)
{
    json_t *ev, *l;

    /* 6 + 5 = 11 > 10, although each line alone fits */
    ev = fx_checkout(db, OID1, NULL,
                     "[{\"product_id\":7,\"quantity\":6},"
                     "{\"product_id\":8,\"variant_id\":81,\"quantity\":1},"
                     "{\"product_id\":7,\"quantity\":5}]");
    ck_assert_str_eq(itest_reason(ev), "insufficient_stock");
    l = json_array_get(json_object_get(json_object_get(ev, "details"), "lines"),
                       0);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "requested")), 11);
    json_decref(ev);
    assert_untouched();
    /* 6 + 4 = 10 fits: one item row with the sum, one ledger row */
    fx_expect(fx_checkout(db, OID1, NULL,
                          "[{\"product_id\":7,\"quantity\":6},"
                          "{\"product_id\":7,\"quantity\":4}]"),
              "applied", NULL);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM order_items"), 1);
    ck_assert_int_eq(itest_int(db, "SELECT quantity FROM order_items"), 10);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 7"),
                     0);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger WHERE"
                                   " reason = 'order'"),
                     1);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_customer_checks_out_only_for_itself)
{
    fx_expect(fx_cmd(db, "checkout", "customer", "c2",
                     "\"order_id\":\"" OID1 "\",\"customer_id\":\"c1\","
                     "\"currency\":\"EUR\",\"items\":[{\"product_id\":7,"
                     "\"quantity\":1}]"),
              "rejected", "unauthorized");
    fx_expect(fx_cmd(db, "checkout", "vendor", "vA",
                     "\"order_id\":\"" OID1 "\",\"customer_id\":\"c1\","
                     "\"currency\":\"EUR\",\"items\":[{\"product_id\":7,"
                     "\"quantity\":1}]"),
              "rejected", "unauthorized");
    assert_untouched();
    /* admin and system may check out for anyone */
    fx_expect(fx_cmd(db, "checkout", "system", "shop",
                     "\"order_id\":\"" OID1 "\",\"customer_id\":\"c1\","
                     "\"currency\":\"EUR\",\"items\":[{\"product_id\":7,"
                     "\"quantity\":1}]"),
              "applied", NULL);
}
END_TEST

START_TEST(test_order_exists)
{
    json_t *ev;

    fx_expect(
        fx_checkout(db, OID1, NULL, "[{\"product_id\":7,\"quantity\":1}]"),
        "applied", NULL);
    ev = fx_checkout(db, OID1, NULL, "[{\"product_id\":7,\"quantity\":2}]");
    ck_assert_str_eq(itest_reason(ev), "order_exists");
    json_decref(ev);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 7"),
                     9);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM orders"), 1);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_later_price_and_tax_changes_leave_the_order)
{
    json_t *ev;
    char before[4096], after[4096];

    ev = fx_checkout(db, OID1, "DE", "[{\"product_id\":7,\"quantity\":2}]");
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
    itest_text(db, "SELECT (orderd_order_json('" OID1 "') - 'status')::text",
               before, sizeof(before));
    fx_expect(fx_simple(db, 7, "vA", 9999, 10, -1), "applied", NULL);
    fx_expect(fx_cmd(db, "product_upsert", "admin", "root",
                     "\"product_id\":7,\"vendor_id\":\"vA\",\"name\":"
                     "\"Renamed\",\"sku\":\"NEW\",\"currency\":\"EUR\","
                     "\"kind\":\"simple\",\"price_cents\":1,\"stock\":10"),
              "applied", NULL);
    fx_expect(fx_cmd(db, "tax_rate_set", "admin", "root",
                     "\"country\":\"DE\",\"rate_bps\":500"),
              "applied", NULL);
    itest_text(db, "SELECT (orderd_order_json('" OID1 "') - 'status')::text",
               after, sizeof(after));
    ck_assert_str_eq(before, after);
    ck_assert_int_eq(itest_int(db, "SELECT total_cents FROM orders"), 2837);
    ck_assert_int_eq(itest_int(db, "SELECT unit_price_cents FROM order_items"),
                     1192);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_stock_low_event_when_crossing_threshold)
{
    fx_expect(fx_simple(db, 20, "vA", 100, 5, 2), "applied", NULL);
    fx_expect(
        fx_checkout(db, OID1, NULL, "[{\"product_id\":20,\"quantity\":2}]"),
        "applied", NULL);
    /* 5 -> 3: still above 2 */
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM outbox WHERE"
                                   " convert_from(payload, 'UTF8')::jsonb"
                                   " ->> 'type' = 'stock.low'"),
                     0);
    fx_expect(
        fx_checkout(db, OID2, NULL, "[{\"product_id\":20,\"quantity\":1}]"),
        "applied", NULL);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM outbox WHERE"
                                   " convert_from(payload, 'UTF8')::jsonb"
                                   " @> '{\"type\":\"stock.low\","
                                   "\"product_id\":20,\"variant_id\":null,"
                                   "\"stock\":2,\"threshold\":2}'"
                                   " AND convert_from(key, 'UTF8') = '20'"),
                     1);
    /* already below: no second event */
    fx_expect(fx_checkout(db, "33333333-3333-4333-8333-333333333333", NULL,
                          "[{\"product_id\":20,\"quantity\":1}]"),
              "applied", NULL);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM outbox WHERE"
                                   " convert_from(payload, 'UTF8')::jsonb"
                                   " ->> 'type' = 'stock.low'"),
                     1);
    /* a variant reaching 0 with the default threshold 0 */
    fx_expect(fx_checkout(db, "44444444-4444-4444-8444-444444444444", NULL,
                          "[{\"product_id\":8,\"variant_id\":82,"
                          "\"quantity\":1}]"),
              "applied", NULL);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM outbox WHERE"
                                   " convert_from(payload, 'UTF8')::jsonb"
                                   " @> '{\"type\":\"stock.low\","
                                   "\"product_id\":8,\"variant_id\":82,"
                                   "\"stock\":0}'"),
                     1);
}
END_TEST

START_TEST(test_overflow_is_invalid_command)
{
    json_t *ev;

    fx_expect(fx_simple(db, 30, "vA", 4611686018427387904LL, 100, -1),
              "applied", NULL);
    ev = fx_checkout(db, OID1, NULL, "[{\"product_id\":30,\"quantity\":2}]");
    ck_assert_str_eq(itest_reason(ev), "invalid_command");
    json_decref(ev);
    /* subtotal fits, subtotal + tax does not */
    fx_expect(fx_simple(db, 31, "vA", 9000000000000000000LL, 100, -1),
              "applied", NULL);
    fx_expect(
        fx_checkout(db, OID1, "DE", "[{\"product_id\":31,\"quantity\":1}]"),
        "rejected", "invalid_command");
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM orders"), 0);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 30"),
                     100);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_invalid_checkouts)
{
    static const char *bodies[] = {
        "\"order_id\":\"nope\",\"customer_id\":\"c1\",\"currency\":\"EUR\","
        "\"items\":[{\"product_id\":7,\"quantity\":1}]",
        "\"order_id\":\"" OID1 "\",\"customer_id\":\"c1\",\"currency\":"
        "\"EUR\",\"items\":[]",
        "\"order_id\":\"" OID1 "\",\"customer_id\":\"c1\",\"currency\":"
        "\"EUR\",\"items\":[{\"product_id\":7,\"quantity\":10001}]",
        "\"order_id\":\"" OID1 "\",\"customer_id\":\"c1\",\"currency\":"
        "\"EUR\",\"ttl_seconds\":0,\"items\":[{\"product_id\":7,"
        "\"quantity\":1}]",
    };

    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        fx_expect(fx_cmd(db, "checkout", "customer", "c1", bodies[i]),
                  "rejected", "invalid_command");
    assert_untouched();
}
END_TEST

START_TEST(test_ttl_and_event_time)
{
    fx_expect(itest_apply(db, "{\"dedup_key\":\"ttl-1\",\"type\":"
                              "\"checkout\",\"actor\":{\"role\":"
                              "\"customer\",\"id\":\"c1\"},\"issued_at\":"
                              "\"2026-11-21T10:00:00.123456Z\",\"order_id\":"
                              "\"" OID1 "\",\"customer_id\":\"c1\","
                              "\"currency\":\"EUR\",\"ttl_seconds\":60,"
                              "\"items\":[{\"product_id\":7,"
                              "\"quantity\":1}]}"),
              "applied", NULL);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM orders WHERE"
                                   " created_at = '2026-11-21T10:00:00.123456Z'"
                                   " AND expires_at ="
                                   " '2026-11-21T10:01:00.123456Z'"),
                     1);
}
END_TEST

static Suite *
checkout_suite(void)
{
    Suite *s = suite_create("checkout");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"applied", test_applied_checkout_creates_the_order},
        {"tax", test_tax_contract_example_and_rounding},
        {"default_tax", test_default_tax_when_country_unknown},
        {"refusals", test_refusals_change_nothing},
        {"refusal_details", test_refusal_details},
        {"aggregation", test_lines_are_aggregated},
        {"customer_own", test_customer_checks_out_only_for_itself},
        {"order_exists", test_order_exists},
        {"receipts", test_later_price_and_tax_changes_leave_the_order},
        {"stock_low", test_stock_low_event_when_crossing_threshold},
        {"overflow", test_overflow_is_invalid_command},
        {"invalid", test_invalid_checkouts},
        {"ttl_event_time", test_ttl_and_event_time},
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
    return itest_run(checkout_suite());
}
