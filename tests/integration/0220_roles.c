/* 0220_roles: who may move an order: customers their own orders, vendors
 * orders whose every line is theirs, the other roles per the contract */
#include "lifecycle_fixture.h"

#define MINE "00000000-0000-4000-8000-000000000021"  /* c1, lines of v1 */
#define MIXED "00000000-0000-4000-8000-000000000022" /* c2, v1 and v2 */

static db_t *db;

static void
setup(void)
{
    static const lf_line_t mine[] = {{1, 0, 1}, {2, 0, 2}};
    static const lf_line_t mixed[] = {{1, 0, 1}, {3, 0, 1}};

    db = itest_fresh_db("roles", NULL, 0);
    lf_product(db, 1, "v1", 1000, 10);
    lf_product(db, 2, "v1", 500, 10);
    lf_product(db, 3, "v2", 700, 10);
    lf_order(db, MINE, "c1", mine, 2, NULL);
    lf_order(db, MIXED, "c2", mixed, 2, NULL);
}

static void
teardown(void)
{
    db_destroy(db);
}

/* the refusal changed nothing: same status, no new history, same stock */
static void
assert_untouched(const char *order_id, const char *status, int64_t history)
{
    char buf[64];

    ck_assert_str_eq(lf_status(db, order_id, buf, sizeof(buf)), status);
    ck_assert_int_eq(lf_intf(db,
                             "SELECT count(*) FROM order_status_history"
                             " WHERE order_id = '%s'",
                             order_id),
                     history);
    itest_assert_stock_matches_ledger(db);
}

START_TEST(test_customer_cancels_only_own_order)
{
    json_t *ev = lf_cmd(db, "cancel", "customer", "c1", MIXED, "");

    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "unauthorized");
    ck_assert_str_eq(lf_detail(ev, "role"), "customer");
    json_decref(ev);
    assert_untouched(MIXED, "pending", 1);
    ck_assert_int_eq(lf_stock(db, 3), 9);
    lf_expect(db, "cancel", "customer", "c2", MIXED, "", "applied", "");
    ck_assert_int_eq(lf_stock(db, 3), 10);
}
END_TEST

START_TEST(test_vendor_needs_every_line)
{
    lf_drive(db, MIXED, "paid");
    /* v1 sells one line of two, v2 the other: neither may act alone */
    lf_expect(db, "start_processing", "vendor", "v1", MIXED, "", "rejected",
              "unauthorized");
    lf_expect(db, "start_processing", "vendor", "v2", MIXED, "", "rejected",
              "unauthorized");
    lf_expect(db, "cancel", "vendor", "v2", MIXED, "", "rejected",
              "unauthorized");
    assert_untouched(MIXED, "paid", 2);
    lf_expect(db, "start_processing", "admin", "root", MIXED, "", "applied",
              "");
    lf_expect(db, "ship", "vendor", "v1", MIXED, ",\"tracking_number\":\"TN\"",
              "rejected", "unauthorized");
    assert_untouched(MIXED, "processing", 3);
    ck_assert_int_eq(lf_intf(db, "SELECT count(*) FROM orders WHERE"
                                 " tracking_number IS NOT NULL"),
                     0);
}
END_TEST

START_TEST(test_vendor_of_every_line_runs_the_order)
{
    lf_drive(db, MINE, "paid");
    lf_expect(db, "start_processing", "vendor", "v2", MINE, "", "rejected",
              "unauthorized");
    lf_expect(db, "start_processing", "vendor", "v1", MINE, "", "applied", "");
    lf_expect(db, "ship", "vendor", "v1", MINE, ",\"tracking_number\":\"TN\"",
              "applied", "");
    lf_expect(db, "deliver", "vendor", "v1", MINE, "", "applied", "");
    /* refunds are for admin and payment only (registry) */
    lf_expect(db, "refund", "vendor", "v1", MINE, ",\"restock\":true",
              "rejected", "unauthorized");
    assert_untouched(MINE, "delivered", 5);
}
END_TEST

START_TEST(test_vendor_cancels_own_order)
{
    lf_expect(db, "cancel", "vendor", "v1", MINE, "", "applied", "");
    ck_assert_int_eq(lf_stock(db, 2), 10);
}
END_TEST

START_TEST(test_roles_outside_the_table)
{
    /* payment cannot cancel, customer cannot pay or ship, system cannot
     * pay: the registry refuses before the order is even looked at */
    lf_expect(db, "cancel", "payment", "psp", MINE, "", "rejected",
              "unauthorized");
    lf_expect(db, "pay", "customer", "c1", MINE,
              ",\"payment_id\":\"p\",\"amount_cents\":2000,"
              "\"currency\":\"EUR\"",
              "rejected", "unauthorized");
    lf_expect(db, "pay", "system", "s", MINE,
              ",\"payment_id\":\"p\",\"amount_cents\":2000,"
              "\"currency\":\"EUR\"",
              "rejected", "unauthorized");
    lf_expect(db, "start_processing", "customer", "c1", MINE, "", "rejected",
              "unauthorized");
    lf_expect(db, "expire", "customer", "c1", MINE, "", "rejected",
              "unauthorized");
    lf_expect(db, "expire", "vendor", "v1", MINE, "", "rejected",
              "unauthorized");
    assert_untouched(MINE, "pending", 1);
    /* admin may pay an order (manual payment) */
    lf_expect(db, "pay", "admin", "root", MINE,
              ",\"payment_id\":\"manual-1\",\"amount_cents\":2000,"
              "\"currency\":\"EUR\"",
              "applied", "");
}
END_TEST

START_TEST(test_unknown_order_is_not_found_for_every_role)
{
    static const char *const roles[][2] = {{"customer", "c1"},
                                           {"vendor", "v1"},
                                           {"admin", "root"},
                                           {"system", "s"}};

    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        lf_expect(db, "cancel", roles[i][0], roles[i][1],
                  "00000000-0000-4000-8000-0000000000ff", "", "rejected",
                  "order_not_found");
}
END_TEST

static Suite *
roles_suite(void)
{
    Suite *s = suite_create("roles");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"customer_own", test_customer_cancels_only_own_order},
        {"vendor_all_lines", test_vendor_needs_every_line},
        {"vendor_runs_order", test_vendor_of_every_line_runs_the_order},
        {"vendor_cancel", test_vendor_cancels_own_order},
        {"registry_roles", test_roles_outside_the_table},
        {"not_found", test_unknown_order_is_not_found_for_every_role},
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
    return itest_run(roles_suite());
}
