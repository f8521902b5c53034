/* 0500_expiry: a pending order nobody pays expires on its own. Through
 * Kafka with a running worker: the scheduler expires it at its deadline
 * (not before), gives its stock back exactly once, publishes
 * order.expired and its own command.result, and a late payment is refused
 * with a refund request. Without any scheduler: a payment whose event time
 * is past the deadline (plus --expiry-grace) is refused anyway, and the
 * order stays pending until it is expired. */
#include "0500_common.h"

#include <signal.h>

#define O1 "00000000-0000-4000-8500-000000000001"

static ktest_t k;
static pid_t worker;

static void
kafka_setup(void)
{
    const char *extra[] = {"--expiry-interval", "500ms", NULL};

    ktest_setup(&k, "expiry", 3);
    worker = ktest_worker_start(&k, extra);
}

static void
kafka_teardown(void)
{
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    ktest_teardown(&k);
}

START_TEST(test_order_expires_on_its_own)
{
    char msg[1024], key[64], buf[256];
    int64_t issued = od_now_us() / 1000 * 1000; /* RFC 3339 in ms */
    json_t *ev;

    x_product_json(msg, sizeof(msg), 1, 500, 10);
    ktest_send_cmd(&k, msg);
    x_product_json(msg, sizeof(msg), 2, 300, 10);
    ktest_send_cmd(&k, msg);
    ktest_flush(&k);
    /* the products are keyed to other partitions than the checkout: the
     * catalogue must be in before the checkout is sent */
    ck_assert_int_eq(ktest_wait_results(&k, 2, 60), 2);
    snprintf(msg, sizeof(msg),
             "{\"dedup_key\":\"co-1\",\"type\":\"checkout\","
             "\"actor\":{\"role\":\"customer\",\"id\":\"c1\"},"
             "\"issued_at\":\"%s\",\"order_id\":\"" O1 "\","
             "\"customer_id\":\"c1\",\"currency\":\"EUR\",\"ttl_seconds\":2,"
             "\"items\":[{\"product_id\":1,\"quantity\":2},"
             "{\"product_id\":2,\"quantity\":3}]}",
             x_time(issued, buf, sizeof(buf)));
    ktest_send_cmd(&k, msg);
    ktest_flush(&k);

    ck_assert_int_eq(x_wait_key(&k, "co-1", 1, 60), 1);
    ev = ktest_result(&k, "co-1", 0);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "order"), "status")),
                     "pending");
    /* the deadline is the checkout's event time plus its ttl */
    ck_assert_int_eq(x_intf(k.db,
                            "SELECT (extract(epoch FROM expires_at) * 1000000)"
                            "::bigint FROM orders WHERE id = '" O1 "'"),
                     issued + 2000000);

    /* nobody pays: the scheduler expires it on its own */
    ck_assert_int_eq(x_waitf(&k, 1, 30,
                             "SELECT count(*) FROM orders WHERE id = '" O1
                             "' AND status = 'expired'"),
                     1);
    /* ... at its deadline, not before (judged on Postgres time) */
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM order_status_history h"
                                  " JOIN orders o ON o.id = h.order_id"
                                  " WHERE h.order_id = '" O1 "'"
                                  " AND h.to_status = 'expired'"
                                  " AND h.created_at >= o.expires_at"
                                  " AND h.from_status = 'pending'"),
                     1);
    /* the stock comes back exactly once, with one ledger row per product */
    ck_assert_int_eq(x_intf(k.db, "SELECT stock FROM products WHERE id = 1"),
                     10);
    ck_assert_int_eq(x_intf(k.db, "SELECT stock FROM products WHERE id = 2"),
                     10);
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM stock_ledger WHERE"
                                  " reason = 'expire' AND order_id = '" O1 "'"),
                     2);
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM stock_ledger WHERE"
                                  " reason = 'expire' AND order_id = '" O1
                                  "' AND product_id = 1 AND delta = 2"),
                     1);
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM stock_ledger WHERE"
                                  " reason = 'expire' AND order_id = '" O1
                                  "' AND product_id = 2 AND delta = 3"),
                     1);
    itest_assert_stock_matches_ledger(k.db);

    /* the events topic says so: order.expired and the scheduler's result */
    snprintf(key, sizeof(key), "orderd-expire:%s", O1);
    ck_assert_int_eq(x_wait_key(&k, key, 1, 30), 1);
    ev = ktest_result(&k, key, 0);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "command_type")),
                     "expire");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "order"), "status")),
                     "expired");
    ck_assert_int_eq(x_wait_other(&k, "order.expired", O1, 1, 30), 1);
    ck_assert_int_eq(x_outbox_events(&k, "order.expired", O1), 1);

    /* a payment after the deadline: refused, and the money goes back */
    x_pay_json(msg, sizeof(msg), "pay-late", O1, 1900, 0);
    ktest_send(&k, O1, msg);
    ktest_flush(&k);
    ck_assert_int_eq(x_wait_key(&k, "pay-late", 1, 60), 1);
    ev = ktest_result(&k, "pay-late", 0);
    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "order_expired");
    ck_assert_int_eq(x_wait_other(&k, "payment.refund_required", O1, 1, 30), 1);
    ck_assert_str_eq(x_textf(k.db, buf, sizeof(buf),
                             "SELECT status FROM orders WHERE id = '" O1 "'"),
                     "expired");
    /* still exactly once: a later scheduler pass changed nothing */
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM stock_ledger WHERE"
                                  " reason = 'expire'"),
                     2);
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM processed_commands"
                                  " WHERE dedup_key LIKE 'orderd-expire:%%'"),
                     1);
    itest_assert_stock_matches_ledger(k.db);
}
END_TEST

/* ---- without Kafka and without any scheduler ---- */

#define T0 "2031-03-01T10:00:00Z" /* checkout event time, ttl 60 s */
#define O2 "00000000-0000-4000-8500-000000000002"
#define O3 "00000000-0000-4000-8500-000000000003"
#define O4 "00000000-0000-4000-8500-000000000004"
#define O5 "00000000-0000-4000-8500-000000000005"

static db_t *db;

static void
db_setup(void)
{
    char msg[1024];
    const char *ids[] = {O2, O3, O4, O5};
    json_t *ev;

    db = itest_fresh_db("expiry_late_pay", NULL, 0);
    itest_cfg.domain.expiry_grace_s = 0;
    x_product_json(msg, sizeof(msg), 1, 700, 100);
    ev = itest_apply(db, msg);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
    for (int i = 0; i < 4; i++) {
        ev = itest_applyf(db,
                          "{\"dedup_key\":\"co-%d\",\"type\":\"checkout\","
                          "\"actor\":{\"role\":\"system\",\"id\":\"shop\"},"
                          "\"issued_at\":\"" T0 "\",\"order_id\":\"%s\","
                          "\"customer_id\":\"c1\",\"currency\":\"EUR\","
                          "\"ttl_seconds\":60,\"items\":[{\"product_id\":1,"
                          "\"quantity\":1}]}",
                          i, ids[i]);
        ck_assert_str_eq(itest_outcome(ev), "applied");
        json_decref(ev);
    }
}

static void
db_teardown(void)
{
    itest_cfg.domain.expiry_grace_s = 0;
    db_destroy(db);
}

static json_t *
pay_at(const char *order_id, const char *key, const char *issued_at)
{
    return itest_applyf(db,
                        "{\"dedup_key\":\"%s\",\"type\":\"pay\","
                        "\"actor\":{\"role\":\"payment\",\"id\":\"psp\"},"
                        "\"issued_at\":\"%s\",\"order_id\":\"%s\","
                        "\"payment_id\":\"pi-%s\",\"amount_cents\":700,"
                        "\"currency\":\"EUR\"}",
                        key, issued_at, order_id, key);
}

static const char *
status(const char *order_id, char *buf, size_t len)
{
    return x_textf(db, buf, len, "SELECT status FROM orders WHERE id = '%s'",
                   order_id);
}

static int64_t
refund_requests(const char *order_id)
{
    return x_intf(db,
                  "SELECT count(*) FROM outbox WHERE"
                  " convert_from(payload, 'UTF8')::jsonb->>'type' ="
                  " 'payment.refund_required' AND"
                  " convert_from(payload, 'UTF8')::jsonb->>'order_id' = '%s'",
                  order_id);
}

START_TEST(test_late_pay_refused_without_scheduler)
{
    char buf[64];
    json_t *ev;

    /* one second past the deadline; the scheduler never ran */
    ev = pay_at(O2, "pay-o2", "2031-03-01T10:01:01Z");
    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "order_expired");
    ck_assert_str_eq(x_detail(ev, "status"), "pending");
    json_decref(ev);
    ck_assert_int_eq(refund_requests(O2), 1);
    /* refused without a transition: still pending, stock still held */
    ck_assert_str_eq(status(O2, buf, sizeof(buf)), "pending");
    ck_assert_int_eq(x_intf(db, "SELECT stock FROM products WHERE id = 1"), 96);
    ck_assert_int_eq(x_intf(db, "SELECT count(*) FROM order_status_history"
                                " WHERE order_id = '" O2 "'"),
                     1);

    /* paid exactly at the deadline: in time */
    ev = pay_at(O3, "pay-o3", "2031-03-01T10:01:00Z");
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
    ck_assert_str_eq(status(O3, buf, sizeof(buf)), "paid");
    ck_assert_int_eq(refund_requests(O3), 0);

    /* the expire that comes later gives the stock of O2 back once; the
     * paid order is not expired */
    ev = itest_apply(db, "{\"dedup_key\":\"orderd-expire:" O2 "\","
                         "\"type\":\"expire\",\"actor\":{\"role\":\"system\","
                         "\"id\":\"scheduler\"},\"issued_at\":"
                         "\"2031-03-01T10:01:00Z\",\"order_id\":\"" O2 "\"}");
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
    ev = itest_apply(db, "{\"dedup_key\":\"orderd-expire:" O3 "\","
                         "\"type\":\"expire\",\"actor\":{\"role\":\"system\","
                         "\"id\":\"scheduler\"},\"issued_at\":"
                         "\"2031-03-01T10:01:00Z\",\"order_id\":\"" O3 "\"}");
    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "invalid_transition");
    json_decref(ev);
    ck_assert_str_eq(status(O2, buf, sizeof(buf)), "expired");
    ck_assert_str_eq(status(O3, buf, sizeof(buf)), "paid");
    ck_assert_int_eq(x_intf(db, "SELECT stock FROM products WHERE id = 1"), 97);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_expiry_grace_respected)
{
    char buf[64];
    json_t *ev;

    itest_cfg.domain.expiry_grace_s = 5;
    /* four seconds late, inside the grace: taken */
    ev = pay_at(O4, "pay-o4", "2031-03-01T10:01:04Z");
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
    ck_assert_str_eq(status(O4, buf, sizeof(buf)), "paid");
    ck_assert_int_eq(refund_requests(O4), 0);
    /* six seconds late, past the grace: refused */
    ev = pay_at(O5, "pay-o5", "2031-03-01T10:01:06Z");
    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "order_expired");
    json_decref(ev);
    ck_assert_str_eq(status(O5, buf, sizeof(buf)), "pending");
    ck_assert_int_eq(refund_requests(O5), 1);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

static Suite *
expiry_suite(void)
{
    Suite *s = suite_create("expiry");
    TCase *tk = tcase_create("kafka");
    TCase *td = tcase_create("late_pay");

    tcase_set_timeout(tk, 120);
    tcase_add_checked_fixture(tk, kafka_setup, kafka_teardown);
    tcase_add_test(tk, test_order_expires_on_its_own);
    suite_add_tcase(s, tk);
    tcase_add_checked_fixture(td, db_setup, db_teardown);
    tcase_add_test(td, test_late_pay_refused_without_scheduler);
    tcase_add_test(td, test_expiry_grace_respected);
    suite_add_tcase(s, td);
    return s;
}

int
main(void)
{
    return itest_run(expiry_suite());
}
