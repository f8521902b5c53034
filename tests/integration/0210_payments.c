/* 0210_payments: what a payment does to an order, and when the payment
 * bridge is told to give the money back */
#include "lifecycle_fixture.h"

#define O1 "00000000-0000-4000-8000-000000000011"
#define NOPE "00000000-0000-4000-8000-0000000000ff"

static db_t *db;

static void
setup(void)
{
    static const lf_line_t lines[] = {{1, 0, 2}, {2, 0, 1}};

    db = itest_fresh_db("payments", NULL, 0);
    lf_product(db, 1, "v1", 1000, 10);
    lf_product(db, 2, "v1", 599, 5);
    /* total 2599 EUR, due 2030-06-01 12:00 */
    lf_order(db, O1, "c1", lines, 2, "2030-06-01T12:00:00Z");
    itest_cfg.domain.expiry_grace_s = 0;
}

static void
teardown(void)
{
    itest_cfg.domain.expiry_grace_s = 0;
    db_destroy(db);
}

static json_t *
pay(const char *payment_id, int64_t amount, const char *currency,
    const char *issued_at)
{
    char fields[256];

    snprintf(fields, sizeof(fields),
             ",\"payment_id\":\"%s\",\"amount_cents\":%" PRId64
             ",\"currency\":\"%s\"",
             payment_id, amount, currency);
    return lf_cmd_at(db, "pay", "payment", "psp", O1, fields, issued_at);
}

static int64_t
history_rows(void)
{
    return lf_intf(db, "SELECT count(*) FROM order_status_history"
                       " WHERE order_id = '" O1 "'");
}

static void
assert_refund_required(const char *payment_id, int64_t amount,
                       const char *currency, const char *reason)
{
    json_t *p = lf_last_event(db, "payment.refund_required", O1);

    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(json_string_value(json_object_get(p, "order_id")), O1);
    ck_assert_str_eq(json_string_value(json_object_get(p, "payment_id")),
                     payment_id);
    ck_assert_int_eq(json_integer_value(json_object_get(p, "amount_cents")),
                     amount);
    ck_assert_str_eq(json_string_value(json_object_get(p, "currency")),
                     currency);
    ck_assert_str_eq(json_string_value(json_object_get(p, "reason")), reason);
    json_decref(p);
}

START_TEST(test_pay_applied_records_payment)
{
    json_t *ev = pay("pi_1", 2599, "EUR", NULL);
    char buf[128];

    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "order"), "status")),
                     "paid");
    json_decref(ev);
    ck_assert_str_eq(lf_textf(db, buf, sizeof(buf),
                              "SELECT status || ' ' || payment_id || ' ' ||"
                              " paid_cents FROM orders WHERE id = '" O1 "'"),
                     "paid pi_1 2599");
    ck_assert_int_eq(history_rows(), 2);
    ck_assert_int_eq(lf_events(db, "payment.refund_required", O1), 0);
    /* paying takes no stock: checkout already did */
    ck_assert_int_eq(lf_stock(db, 1), 8);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_amount_and_currency_mismatch)
{
    json_t *ev = pay("pi_1", 2598, "EUR", NULL), *d;
    char buf[64];

    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "amount_mismatch");
    d = json_object_get(ev, "details");
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(d, "expected"), "amount_cents")),
                     2599);
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(d, "got"), "amount_cents")),
                     2598);
    json_decref(ev);

    ev = pay("pi_2", 2599, "USD", NULL);
    ck_assert_str_eq(itest_reason(ev), "amount_mismatch");
    d = json_object_get(ev, "details");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(d, "expected"), "currency")),
                     "EUR");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(d, "got"), "currency")),
                     "USD");
    json_decref(ev);

    ck_assert_str_eq(lf_status(db, O1, buf, sizeof(buf)), "pending");
    ck_assert_int_eq(lf_intf(db, "SELECT count(*) FROM orders"
                                 " WHERE payment_id IS NOT NULL"),
                     0);
    ck_assert_int_eq(history_rows(), 1);
    /* the order can still be paid correctly */
    ev = pay("pi_3", 2599, "EUR", NULL);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
}
END_TEST

START_TEST(test_double_pay)
{
    json_t *ev = pay("pi_1", 2599, "EUR", NULL);
    char buf[64];

    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);

    /* a second, different payment: refused and sent back */
    ev = pay("pi_2", 2599, "EUR", NULL);
    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "already_paid");
    json_decref(ev);
    ck_assert_int_eq(lf_events(db, "payment.refund_required", O1), 1);
    assert_refund_required("pi_2", 2599, "EUR", "already_paid");

    /* the paying payment again under a new dedup key: refused, but never
     * refunded (that would refund the order's own payment) */
    ev = pay("pi_1", 2599, "EUR", NULL);
    ck_assert_str_eq(itest_reason(ev), "already_paid");
    json_decref(ev);
    ck_assert_int_eq(lf_events(db, "payment.refund_required", O1), 1);

    /* later statuses answer the same way */
    lf_expect(db, "start_processing", "admin", "root", O1, "", "applied", "");
    ev = pay("pi_3", 100, "EUR", NULL);
    ck_assert_str_eq(itest_reason(ev), "already_paid");
    json_decref(ev);
    assert_refund_required("pi_3", 100, "EUR", "already_paid");

    ck_assert_str_eq(lf_textf(db, buf, sizeof(buf),
                              "SELECT payment_id FROM orders"
                              " WHERE id = '" O1 "'"),
                     "pi_1");
    ck_assert_int_eq(history_rows(), 3);
}
END_TEST

START_TEST(test_pay_after_deadline_on_pending_order)
{
    char buf[64];
    json_t *ev;

    itest_cfg.domain.expiry_grace_s = 60;
    /* past the deadline by more than the grace: refused, order untouched
     * (expiring it is the scheduler's job) */
    ev = pay("pi_late", 2599, "EUR", "2030-06-01T12:01:00.001Z");
    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "order_expired");
    json_decref(ev);
    ck_assert_str_eq(lf_status(db, O1, buf, sizeof(buf)), "pending");
    ck_assert_int_eq(history_rows(), 1);
    ck_assert_int_eq(lf_stock(db, 1), 8);
    assert_refund_required("pi_late", 2599, "EUR", "order_expired");

    /* within the grace: a payment in flight at the deadline is taken */
    ev = pay("pi_ok", 2599, "EUR", "2030-06-01T12:01:00Z");
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
    ck_assert_int_eq(lf_events(db, "payment.refund_required", O1), 1);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_pay_on_expired_order)
{
    json_t *ev;
    char buf[64];

    ev = lf_cmd_at(db, "expire", "system", "scheduler", O1, "",
                   "2030-06-01T12:00:00Z");
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
    ev = pay("pi_1", 2599, "EUR", "2030-06-01T11:00:00Z");
    ck_assert_str_eq(itest_reason(ev), "order_expired");
    json_decref(ev);
    ck_assert_str_eq(lf_status(db, O1, buf, sizeof(buf)), "expired");
    assert_refund_required("pi_1", 2599, "EUR", "order_expired");
    ck_assert_int_eq(lf_stock(db, 1), 10);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_pay_on_cancelled_order_and_redelivery)
{
    const char *cmd = "{\"dedup_key\":\"pay:gw-1\",\"type\":\"pay\","
                      "\"actor\":{\"role\":\"payment\",\"id\":\"psp\"},"
                      "\"order_id\":\"" O1 "\",\"payment_id\":\"pi_1\","
                      "\"amount_cents\":2599,\"currency\":\"EUR\"}";
    json_t *ev;
    char buf[64];

    lf_expect(db, "cancel", "customer", "c1", O1, "", "applied", "");
    ev = itest_apply(db, cmd);
    ck_assert_str_eq(itest_reason(ev), "invalid_transition");
    ck_assert_str_eq(lf_detail(ev, "from"), "cancelled");
    ck_assert_str_eq(lf_detail(ev, "to"), "paid");
    json_decref(ev);
    assert_refund_required("pi_1", 2599, "EUR", "invalid_transition");

    /* the bridge redelivers the same message: one refund, not two */
    ev = itest_apply(db, cmd);
    ck_assert_str_eq(itest_outcome(ev), "duplicate");
    json_decref(ev);
    ck_assert_int_eq(lf_events(db, "payment.refund_required", O1), 1);
    ck_assert_str_eq(lf_status(db, O1, buf, sizeof(buf)), "cancelled");
}
END_TEST

START_TEST(test_redelivered_payment_is_duplicate)
{
    const char *cmd = "{\"dedup_key\":\"pay:gw-2\",\"type\":\"pay\","
                      "\"actor\":{\"role\":\"payment\",\"id\":\"psp\"},"
                      "\"order_id\":\"" O1 "\",\"payment_id\":\"pi_1\","
                      "\"amount_cents\":2599,\"currency\":\"EUR\"}";
    json_t *ev = itest_apply(db, cmd);
    int64_t outbox;

    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
    outbox = lf_intf(db, "SELECT count(*) FROM outbox");
    ev = itest_apply(db, cmd);
    ck_assert_str_eq(itest_outcome(ev), "duplicate");
    ck_assert_str_eq(lf_detail(ev, "original_outcome"), "applied");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "order"), "status")),
                     "paid");
    json_decref(ev);
    /* nothing changed but the duplicate's own result event */
    ck_assert_int_eq(history_rows(), 2);
    ck_assert_int_eq(lf_intf(db, "SELECT count(*) FROM outbox"), outbox + 1);
    ck_assert_int_eq(lf_events(db, "payment.refund_required", O1), 0);
    ck_assert_int_eq(lf_intf(db, "SELECT count(*) FROM processed_commands"
                                 " WHERE dedup_key = 'pay:gw-2'"),
                     1);
}
END_TEST

START_TEST(test_pay_for_unknown_order)
{
    json_t *ev = lf_cmd(db, "pay", "payment", "psp", NOPE,
                        ",\"payment_id\":\"pi_9\",\"amount_cents\":1,"
                        "\"currency\":\"EUR\"");

    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "order_not_found");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "order_id")), NOPE);
    ck_assert(json_is_null(json_object_get(ev, "order")));
    json_decref(ev);
    ck_assert_int_eq(lf_intf(db, "SELECT count(*) FROM orders"), 1);
}
END_TEST

static Suite *
payments_suite(void)
{
    Suite *s = suite_create("payments");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"applied", test_pay_applied_records_payment},
        {"mismatch", test_amount_and_currency_mismatch},
        {"double_pay", test_double_pay},
        {"after_deadline", test_pay_after_deadline_on_pending_order},
        {"expired", test_pay_on_expired_order},
        {"cancelled", test_pay_on_cancelled_order_and_redelivery},
        {"redelivery", test_redelivered_payment_is_duplicate},
        {"unknown_order", test_pay_for_unknown_order},
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
    return itest_run(payments_suite());
}
