/* 0100_catalogue: product_upsert, product_delete, stock_adjust and
 * tax_rate_set on a real database: rows, ledger, vendor ownership and
 * every refusal, with stock = ledger after each step */
#include "catalogue_fixture.h"

static db_t *db;

static void
setup(void)
{
    db = itest_fresh_db("catalogue", NULL, 0);
}

static void
teardown(void)
{
    db_destroy(db);
}

static json_t *
details_of(const json_t *ev)
{
    return json_object_get(ev, "details");
}

START_TEST(test_simple_create_writes_initial_ledger_row)
{
    json_t *ev = fx_simple(db, 1, "vA", 1192, 10, 3);
    char buf[64];

    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert(json_is_true(json_object_get(details_of(ev), "created")));
    json_decref(ev);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 1"),
                     10);
    ck_assert_int_eq(
        itest_int(db, "SELECT price_cents FROM products WHERE id = 1"), 1192);
    ck_assert_int_eq(itest_int(db, "SELECT low_stock_threshold FROM products"
                                   " WHERE id = 1"),
                     3);
    ck_assert_str_eq(itest_text(db,
                                "SELECT kind || '/' || currency || '/' ||"
                                " vendor_id FROM products WHERE id = 1",
                                buf, sizeof(buf)),
                     "simple/EUR/vA");
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger WHERE"
                                   " product_id = 1 AND variant_id IS NULL"
                                   " AND reason = 'initial' AND delta = 10"),
                     1);
    itest_assert_stock_matches_ledger(db);
    /* a product created with no stock needs no ledger row */
    fx_expect(fx_simple(db, 2, "vA", 100, 0, -1), "applied", NULL);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger WHERE"
                                   " product_id = 2"),
                     0);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_variant_create_writes_a_row_per_variant)
{
    fx_expect(fx_variant(db, 5, "vA",
                         "[{\"variant_id\":51,\"name\":\"Red\",\"sku\":\"R\","
                         "\"price_cents\":500,\"stock\":3},"
                         "{\"variant_id\":52,\"name\":\"Blue\",\"sku\":\"B\","
                         "\"price_cents\":600,\"stock\":0}]"),
              "applied", NULL);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM products WHERE id ="
                                   " 5 AND kind = 'variant' AND stock IS NULL"
                                   " AND price_cents IS NULL"),
                     1);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM product_variants"
                                   " WHERE product_id = 5"),
                     2);
    ck_assert_int_eq(
        itest_int(db, "SELECT stock FROM product_variants WHERE id = 51"), 3);
    ck_assert_int_eq(itest_int(db, "SELECT price_cents FROM product_variants"
                                   " WHERE id = 52"),
                     600);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger WHERE"
                                   " product_id = 5 AND variant_id = 51 AND"
                                   " reason = 'initial' AND delta = 3"),
                     1);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger"), 1);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_update_changes_stock_through_adjust_row)
{
    fx_expect(fx_simple(db, 1, "vA", 1192, 10, -1), "applied", NULL);
    fx_expect(fx_simple(db, 1, "vA", 1500, 4, -1), "applied", NULL);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 1"),
                     4);
    ck_assert_int_eq(
        itest_int(db, "SELECT price_cents FROM products WHERE id = 1"), 1500);
    ck_assert_int_eq(itest_int(db, "SELECT delta FROM stock_ledger WHERE"
                                   " reason = 'adjust'"),
                     -6);
    /* same stock: no ledger row */
    fx_expect(fx_simple(db, 1, "vA", 1600, 4, -1), "applied", NULL);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger"), 2);
    itest_assert_stock_matches_ledger(db);

    fx_expect(fx_variant(db, 5, "vA",
                         "[{\"variant_id\":51,\"name\":\"Red\",\"sku\":\"R\","
                         "\"price_cents\":500,\"stock\":3},"
                         "{\"variant_id\":52,\"name\":\"Blue\",\"sku\":\"B\","
                         "\"price_cents\":600,\"stock\":1}]"),
              "applied", NULL);
    /* 51 updated, 53 new, 52 absent: left as it is */
    fx_expect(fx_variant(db, 5, "vA",
                         "[{\"variant_id\":51,\"name\":\"Crimson\",\"sku\":"
                         "\"R\",\"price_cents\":550,\"stock\":5},"
                         "{\"variant_id\":53,\"name\":\"Green\",\"sku\":\"G\","
                         "\"stock\":2}]"),
              "applied", NULL);
    ck_assert_int_eq(
        itest_int(db, "SELECT stock FROM product_variants WHERE id = 51"), 5);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM product_variants"
                                   " WHERE id = 51 AND name = 'Crimson' AND"
                                   " price_cents = 550"),
                     1);
    ck_assert_int_eq(itest_int(db, "SELECT delta FROM stock_ledger WHERE"
                                   " variant_id = 51 AND reason = 'adjust'"),
                     2);
    ck_assert_int_eq(itest_int(db, "SELECT delta FROM stock_ledger WHERE"
                                   " variant_id = 53 AND reason = 'initial'"),
                     2);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM product_variants"
                                   " WHERE id = 53 AND price_cents IS NULL"),
                     1);
    ck_assert_int_eq(
        itest_int(db, "SELECT stock FROM product_variants WHERE id = 52"), 1);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_vendor_may_only_touch_its_own_products)
{
    const char *a_prod =
        "\"product_id\":1,\"vendor_id\":\"vA\",\"name\":\"Mug\",\"sku\":\"M\","
        "\"currency\":\"EUR\",\"kind\":\"simple\",\"price_cents\":100,"
        "\"stock\":5";
    const char *b_takes =
        "\"product_id\":1,\"vendor_id\":\"vB\",\"name\":\"Mine\",\"sku\":\"M\","
        "\"currency\":\"EUR\",\"kind\":\"simple\",\"price_cents\":1,"
        "\"stock\":0";

    fx_expect(fx_cmd(db, "product_upsert", "vendor", "vA", a_prod), "applied",
              NULL);
    /* B can neither create for A nor take over A's product */
    fx_expect(fx_cmd(db, "product_upsert", "vendor", "vB", a_prod), "rejected",
              "unauthorized");
    fx_expect(fx_cmd(db, "product_upsert", "vendor", "vB", b_takes), "rejected",
              "unauthorized");
    fx_expect(fx_cmd(db, "product_delete", "vendor", "vB", "\"product_id\":1"),
              "rejected", "unauthorized");
    fx_expect(fx_cmd(db, "stock_adjust", "vendor", "vB",
                     "\"product_id\":1,\"delta\":-5,\"reason\":\"theft\""),
              "rejected", "unauthorized");
    /* customers are refused by the role table */
    fx_expect(fx_cmd(db, "stock_adjust", "customer", "vA",
                     "\"product_id\":1,\"delta\":1,\"reason\":\"x\""),
              "rejected", "unauthorized");
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM products WHERE id ="
                                   " 1 AND vendor_id = 'vA' AND stock = 5 AND"
                                   " deleted_at IS NULL AND name = 'Mug'"),
                     1);
    /* A itself may adjust and delete */
    fx_expect(fx_cmd(db, "stock_adjust", "vendor", "vA",
                     "\"product_id\":1,\"delta\":-2,\"reason\":\"broken\""),
              "applied", NULL);
    fx_expect(fx_cmd(db, "product_delete", "vendor", "vA", "\"product_id\":1"),
              "applied", NULL);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_kind_change_is_refused)
{
    json_t *ev;

    fx_expect(fx_simple(db, 1, "vA", 100, 5, -1), "applied", NULL);
    ev = fx_variant(db, 1, "vA",
                    "[{\"variant_id\":11,\"name\":\"X\",\"sku\":\"X\","
                    "\"price_cents\":1,\"stock\":1}]");
    ck_assert_str_eq(itest_reason(ev), "invalid_command");
    ck_assert_ptr_nonnull(strstr(
        json_string_value(json_object_get(details_of(ev), "error")), "kind"));
    json_decref(ev);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM product_variants"), 0);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM products WHERE"
                                   " kind = 'simple' AND stock = 5"),
                     1);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_variant_of_another_product_is_refused)
{
    fx_expect(fx_variant(db, 5, "vA",
                         "[{\"variant_id\":51,\"name\":\"Red\",\"sku\":\"R\","
                         "\"price_cents\":500,\"stock\":3}]"),
              "applied", NULL);
    fx_expect(fx_variant(db, 6, "vA",
                         "[{\"variant_id\":51,\"name\":\"Mine\",\"sku\":\"R\","
                         "\"price_cents\":1,\"stock\":9}]"),
              "rejected", "invalid_command");
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM products"), 1);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM product_variants"
                                   " WHERE product_id = 5 AND stock = 3 AND"
                                   " name = 'Red'"),
                     1);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_delete_is_soft_and_refuses_checkouts)
{
    json_t *ev;

    fx_expect(fx_simple(db, 1, "vA", 100, 5, -1), "applied", NULL);
    fx_expect(fx_variant(db, 5, "vA",
                         "[{\"variant_id\":51,\"name\":\"Red\",\"sku\":\"R\","
                         "\"price_cents\":500,\"stock\":3}]"),
              "applied", NULL);
    fx_expect(fx_cmd(db, "product_delete", "admin", "root", "\"product_id\":1"),
              "applied", NULL);
    fx_expect(fx_cmd(db, "product_delete", "admin", "root", "\"product_id\":5"),
              "applied", NULL);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM products WHERE"
                                   " deleted_at IS NOT NULL"),
                     2);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM product_variants"
                                   " WHERE deleted_at IS NOT NULL"),
                     1);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 1"),
                     5);
    /* deleting again changes nothing and says so */
    ev = fx_cmd(db, "product_delete", "admin", "root", "\"product_id\":1");
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert(json_is_true(json_object_get(details_of(ev), "already_deleted")));
    json_decref(ev);
    fx_expect(
        fx_cmd(db, "product_delete", "admin", "root", "\"product_id\":99"),
        "rejected", "product_not_found");
    fx_expect(fx_checkout(db, "00000000-0000-4000-8000-000000000001", NULL,
                          "[{\"product_id\":1,\"quantity\":1}]"),
              "rejected", "product_deleted");
    fx_expect(fx_checkout(db, "00000000-0000-4000-8000-000000000002", NULL,
                          "[{\"product_id\":5,\"variant_id\":51,"
                          "\"quantity\":1}]"),
              "rejected", "product_deleted");
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM orders"), 0);
    /* an upsert revives the product */
    fx_expect(fx_simple(db, 1, "vA", 100, 5, -1), "applied", NULL);
    fx_expect(fx_checkout(db, "00000000-0000-4000-8000-000000000003", NULL,
                          "[{\"product_id\":1,\"quantity\":1}]"),
              "applied", NULL);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_stock_adjust)
{
    json_t *ev, *d;

    fx_expect(fx_simple(db, 1, "vA", 100, 5, -1), "applied", NULL);
    fx_expect(fx_variant(db, 5, "vA",
                         "[{\"variant_id\":51,\"name\":\"Red\",\"sku\":\"R\","
                         "\"price_cents\":500,\"stock\":3}]"),
              "applied", NULL);
    ev = fx_cmd(db, "stock_adjust", "admin", "root",
                "\"product_id\":1,\"delta\":7,\"reason\":\"delivery 12\"");
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_str_eq(
        json_string_value(json_object_get(details_of(ev), "reason")),
        "delivery 12");
    ck_assert_int_eq(
        json_integer_value(json_object_get(details_of(ev), "stock")), 12);
    json_decref(ev);
    fx_expect(fx_cmd(db, "stock_adjust", "admin", "root",
                     "\"product_id\":1,\"delta\":-12,\"reason\":\"sold\""),
              "applied", NULL);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 1"),
                     0);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger WHERE"
                                   " product_id = 1 AND reason = 'adjust'"),
                     2);
    itest_assert_stock_matches_ledger(db);

    ev = fx_cmd(db, "stock_adjust", "admin", "root",
                "\"product_id\":5,\"variant_id\":51,\"delta\":-4,"
                "\"reason\":\"count\"");
    ck_assert_str_eq(itest_reason(ev), "insufficient_stock");
    d = details_of(ev);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "requested")), 4);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "available")), 3);
    json_decref(ev);
    fx_expect(fx_cmd(db, "stock_adjust", "admin", "root",
                     "\"product_id\":5,\"variant_id\":51,\"delta\":-3,"
                     "\"reason\":\"count\""),
              "applied", NULL);
    ck_assert_int_eq(
        itest_int(db, "SELECT stock FROM product_variants WHERE id = 51"), 0);
    fx_expect(fx_cmd(db, "stock_adjust", "admin", "root",
                     "\"product_id\":5,\"delta\":1,\"reason\":\"x\""),
              "rejected", "variant_required");
    fx_expect(fx_cmd(db, "stock_adjust", "admin", "root",
                     "\"product_id\":5,\"variant_id\":99,\"delta\":1,"
                     "\"reason\":\"x\""),
              "rejected", "variant_not_found");
    fx_expect(fx_cmd(db, "stock_adjust", "admin", "root",
                     "\"product_id\":1,\"variant_id\":51,\"delta\":1,"
                     "\"reason\":\"x\""),
              "rejected", "variant_not_found");
    fx_expect(fx_cmd(db, "stock_adjust", "admin", "root",
                     "\"product_id\":77,\"delta\":1,\"reason\":\"x\""),
              "rejected", "product_not_found");
    fx_expect(fx_cmd(db, "stock_adjust", "admin", "root",
                     "\"product_id\":1,\"delta\":0,\"reason\":\"x\""),
              "rejected", "invalid_command");
    fx_expect(fx_cmd(db, "stock_adjust", "admin", "root",
                     "\"product_id\":1,\"delta\":9223372036854775807,"
                     "\"reason\":\"x\""),
              "applied", NULL);
    fx_expect(fx_cmd(db, "stock_adjust", "admin", "root",
                     "\"product_id\":1,\"delta\":1,\"reason\":\"x\""),
              "rejected", "invalid_command");
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger"), 6);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_tax_rate_set_upserts)
{
    fx_expect(fx_cmd(db, "tax_rate_set", "admin", "root",
                     "\"country\":\"DE\",\"rate_bps\":1900"),
              "applied", NULL);
    ck_assert_int_eq(
        itest_int(db, "SELECT rate_bps FROM tax_rates WHERE country = 'DE'"),
        1900);
    fx_expect(fx_cmd(db, "tax_rate_set", "admin", "root",
                     "\"country\":\"DE\",\"rate_bps\":700"),
              "applied", NULL);
    ck_assert_int_eq(
        itest_int(db, "SELECT rate_bps FROM tax_rates WHERE country = 'DE'"),
        700);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM tax_rates"), 1);
    fx_expect(fx_cmd(db, "tax_rate_set", "admin", "root",
                     "\"country\":\"de\",\"rate_bps\":700"),
              "rejected", "invalid_command");
    fx_expect(fx_cmd(db, "tax_rate_set", "admin", "root",
                     "\"country\":\"FR\",\"rate_bps\":10001"),
              "rejected", "invalid_command");
    fx_expect(fx_cmd(db, "tax_rate_set", "vendor", "vA",
                     "\"country\":\"FR\",\"rate_bps\":2000"),
              "rejected", "unauthorized");
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM tax_rates"), 1);
}
END_TEST

START_TEST(test_invalid_upserts_change_nothing)
{
    fx_expect(fx_cmd(db, "product_upsert", "admin", "root",
                     "\"product_id\":1,\"vendor_id\":\"vA\",\"name\":\"M\","
                     "\"sku\":\"M\",\"currency\":\"eur\",\"kind\":\"simple\","
                     "\"price_cents\":1,\"stock\":1"),
              "rejected", "invalid_command");
    fx_expect(fx_cmd(db, "product_upsert", "admin", "root",
                     "\"product_id\":1,\"vendor_id\":\"vA\",\"name\":\"M\","
                     "\"sku\":\"M\",\"currency\":\"EUR\",\"kind\":\"simple\","
                     "\"price_cents\":1,\"stock\":-1"),
              "rejected", "invalid_command");
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM products"), 0);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger"), 0);
}
END_TEST

static Suite *
catalogue_suite(void)
{
    Suite *s = suite_create("catalogue");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"simple_create", test_simple_create_writes_initial_ledger_row},
        {"variant_create", test_variant_create_writes_a_row_per_variant},
        {"update_stock", test_update_changes_stock_through_adjust_row},
        {"vendor_own", test_vendor_may_only_touch_its_own_products},
        {"kind_change", test_kind_change_is_refused},
        {"variant_of_other", test_variant_of_another_product_is_refused},
        {"delete", test_delete_is_soft_and_refuses_checkouts},
        {"stock_adjust", test_stock_adjust},
        {"tax_rate_set", test_tax_rate_set_upserts},
        {"invalid_upserts", test_invalid_upserts_change_nothing},
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
    return itest_run(catalogue_suite());
}
