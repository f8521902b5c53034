/* 0201_lifecycle_checkout: the lifecycle on orders made by real catalogue
 * and checkout commands (0200 uses SQL fixtures): stock and ledger stay in
 * step from product_upsert to refund, cancel and expire */
#include "lifecycle_fixture.h"

#define O1 "00000000-0000-4000-8000-000000000041"

static db_t *db;

static void
expect_applied(json_t *ev)
{
    ck_assert_msg(strcmp(itest_outcome(ev), "applied") == 0, "%s %s",
                  itest_outcome(ev), itest_reason(ev));
    json_decref(ev);
}

static void
setup(void)
{
    db = itest_fresh_db("lifecycle_checkout", NULL, 0);
    expect_applied(itest_apply(
        db, "{\"dedup_key\":\"up-1\",\"type\":\"product_upsert\","
            "\"actor\":{\"role\":\"vendor\",\"id\":\"v1\"},"
            "\"product_id\":1,\"vendor_id\":\"v1\",\"name\":\"mug\","
            "\"sku\":\"MUG\",\"currency\":\"EUR\",\"kind\":\"simple\","
            "\"price_cents\":1200,\"stock\":10}"));
    expect_applied(itest_apply(
        db, "{\"dedup_key\":\"up-2\",\"type\":\"product_upsert\","
            "\"actor\":{\"role\":\"vendor\",\"id\":\"v1\"},"
            "\"product_id\":2,\"vendor_id\":\"v1\",\"name\":\"tea\","
            "\"sku\":\"TEA\",\"currency\":\"EUR\",\"kind\":\"simple\","
            "\"price_cents\":350,\"stock\":40}"));
}

static void
teardown(void)
{
    db_destroy(db);
}

/* 3 mugs and 4 teas for customer c1, issued at 2030-01-01 00:00, 60 s
 * to pay */
static void
checkout(void)
{
    expect_applied(
        itest_apply(db, "{\"dedup_key\":\"co-1\",\"type\":\"checkout\","
                        "\"actor\":{\"role\":\"customer\",\"id\":\"c1\"},"
                        "\"issued_at\":\"2030-01-01T00:00:00Z\","
                        "\"order_id\":\"" O1 "\",\"customer_id\":\"c1\","
                        "\"currency\":\"EUR\",\"ttl_seconds\":60,\"items\":["
                        "{\"product_id\":1,\"quantity\":3},"
                        "{\"product_id\":2,\"quantity\":4}]}"));
    ck_assert_int_eq(lf_stock(db, 1), 7);
    ck_assert_int_eq(lf_stock(db, 2), 36);
}

static void
step_at(const char *type, const char *role, const char *actor,
        const char *fields, const char *issued_at)
{
    expect_applied(lf_cmd_at(db, type, role, actor, O1, fields, issued_at));
    itest_assert_stock_matches_ledger(db);
}

START_TEST(test_checkout_to_refund_with_restock)
{
    char buf[512];

    checkout();
    step_at("pay", "payment", "psp",
            ",\"payment_id\":\"pi_1\",\"amount_cents\":5000,"
            "\"currency\":\"EUR\"",
            "2030-01-01T00:00:30Z");
    step_at("start_processing", "vendor", "v1", "", NULL);
    step_at("ship", "vendor", "v1", ",\"tracking_number\":\"T1\"", NULL);
    step_at("deliver", "system", "carrier", "", NULL);
    step_at("refund", "admin", "root", ",\"restock\":true", NULL);
    ck_assert_int_eq(lf_stock(db, 1), 10);
    ck_assert_int_eq(lf_stock(db, 2), 40);
    ck_assert_str_eq(lf_textf(db, buf, sizeof(buf),
                              "SELECT string_agg(reason || ':' || delta, ','"
                              " ORDER BY id) FROM stock_ledger"
                              " WHERE product_id = 1"),
                     "initial:10,order:-3,refund:3");
    ck_assert_str_eq(lf_textf(db, buf, sizeof(buf),
                              "SELECT string_agg(COALESCE(from_status, '')"
                              " || '>' || to_status, ' ' ORDER BY id)"
                              " FROM order_status_history"
                              " WHERE order_id = '" O1 "'"),
                     ">pending pending>paid paid>processing"
                     " processing>shipped shipped>delivered"
                     " delivered>refunded");
}
END_TEST

START_TEST(test_checkout_cancel_twice)
{
    checkout();
    step_at("cancel", "customer", "c1", ",\"reason\":\"too slow\"", NULL);
    lf_expect(db, "cancel", "customer", "c1", O1, "", "rejected",
              "already_cancelled");
    ck_assert_int_eq(lf_stock(db, 1), 10);
    ck_assert_int_eq(lf_stock(db, 2), 40);
    ck_assert_int_eq(lf_intf(db, "SELECT count(*) FROM stock_ledger"
                                 " WHERE reason = 'cancel'"),
                     2);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_checkout_expiry_on_event_time)
{
    json_t *ev;
    char buf[64];

    checkout();
    /* the deadline is the checkout's event time + ttl_seconds */
    ev = lf_cmd_at(db, "expire", "system", "scheduler", O1, "",
                   "2030-01-01T00:00:59Z");
    ck_assert_str_eq(itest_reason(ev), "invalid_transition");
    ck_assert_str_eq(lf_detail(ev, "expires_at"), "2030-01-01T00:01:00.000Z");
    json_decref(ev);
    ev = lf_cmd_at(db, "pay", "payment", "psp", O1,
                   ",\"payment_id\":\"pi_late\",\"amount_cents\":5000,"
                   "\"currency\":\"EUR\"",
                   "2030-01-01T00:01:01Z");
    ck_assert_str_eq(itest_reason(ev), "order_expired");
    json_decref(ev);
    ck_assert_int_eq(lf_events(db, "payment.refund_required", O1), 1);
    step_at("expire", "system", "scheduler", "", "2030-01-01T00:01:00Z");
    ck_assert_str_eq(lf_status(db, O1, buf, sizeof(buf)), "expired");
    ck_assert_int_eq(lf_stock(db, 1), 10);
    ck_assert_int_eq(lf_stock(db, 2), 40);
    ck_assert_int_eq(lf_events(db, "order.expired", O1), 1);
}
END_TEST

static Suite *
lifecycle_checkout_suite(void)
{
    Suite *s = suite_create("lifecycle_checkout");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"refund_restock", test_checkout_to_refund_with_restock},
        {"cancel_twice", test_checkout_cancel_twice},
        {"expiry", test_checkout_expiry_on_event_time},
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
    return itest_run(lifecycle_checkout_suite());
}
