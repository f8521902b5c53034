/* 0530_deferred: a command for an order that does not exist yet (its
 * checkout is on another partition, or simply later) is parked: result
 * deferred, then applied right after the checkout (a second result for
 * the same dedup key). Several parked commands apply in arrival order; a
 * parked command survives a worker restart; one whose order never comes is
 * refused order_not_found after --defer-timeout; a redelivery of a parked
 * command is a duplicate and is not parked twice. */
#include "0500_common.h"

#include <signal.h>

#define O1 "00000000-0000-4000-8530-000000000001"
#define PRICE 450

static ktest_t k;
static pid_t worker;

static void
setup(void)
{
    char msg[1024];

    ktest_setup(&k, "deferred", 3);
    worker = 0;
    x_product_json(msg, sizeof(msg), 1, PRICE, 50);
    ktest_send_cmd(&k, msg);
}

static void
teardown(void)
{
    if (worker > 0)
        ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    ktest_teardown(&k);
}

static void
start(const char *const *extra)
{
    worker = ktest_worker_start(&k, extra);
}

/* a command for O1 keyed by the order, as the contract's key rule says */
static void
send_for_order(const char *msg)
{
    ktest_send(&k, O1, msg);
    ktest_flush(&k);
}

static void
send_checkout(int qty)
{
    char msg[1024];

    x_checkout_json(msg, sizeof(msg), "co-1", O1, 1, qty, 0, 0);
    ktest_send_cmd(&k, msg); /* keyed by the product */
    ktest_flush(&k);
}

static const char *
outcome_of(const char *key, int nth)
{
    json_t *ev = ktest_result(&k, key, nth);

    ck_assert_msg(ev != NULL, "no result #%d for %s", nth, key);
    return itest_outcome(ev);
}

static void
assert_deferred(const char *key)
{
    json_t *ev;

    ck_assert_int_eq(x_wait_key(&k, key, 1, 60), 1);
    ev = ktest_result(&k, key, 0);
    ck_assert_str_eq(itest_outcome(ev), "deferred");
    ck_assert_str_eq(x_detail(ev, "waiting_for_order"), O1);
}

/* position of a result event on the events topic (all of O1's events
 * share its key, hence one partition and one order) */
static int
position(const char *key, int nth)
{
    size_t i;
    json_t *ev;

    json_array_foreach(k.results, i, ev)
    {
        const char *d = json_string_value(json_object_get(ev, "dedup_key"));

        if (d != NULL && strcmp(d, key) == 0 && nth-- == 0)
            return (int)i;
    }
    return -1;
}

static const char *
status(char *buf, size_t len)
{
    return x_textf(k.db, buf, len,
                   "SELECT status FROM orders WHERE id = '" O1 "'");
}

START_TEST(test_pay_before_checkout_applies_after_it)
{
    char msg[1024], buf[64];

    start(NULL);
    x_pay_json(msg, sizeof(msg), "pay-1", O1, 2 * PRICE, 0);
    send_for_order(msg);
    assert_deferred("pay-1");
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM deferred_commands"), 1);
    ck_assert_str_eq(x_textf(k.db, buf, sizeof(buf),
                             "SELECT outcome FROM processed_commands"
                             " WHERE dedup_key = 'pay-1'"),
                     "deferred");

    send_checkout(2);
    ck_assert_int_eq(x_wait_key(&k, "pay-1", 2, 60), 2);
    ck_assert_int_eq(x_wait_key(&k, "co-1", 1, 60), 1);
    ck_assert_str_eq(outcome_of("co-1", 0), "applied");
    ck_assert_str_eq(outcome_of("pay-1", 1), "applied");
    ck_assert_str_eq(
        json_string_value(json_object_get(
            json_object_get(ktest_result(&k, "pay-1", 1), "order"), "status")),
        "paid");
    /* deferred, then the checkout, then the pay */
    ck_assert_int_lt(position("pay-1", 0), position("co-1", 0));
    ck_assert_int_lt(position("co-1", 0), position("pay-1", 1));
    ck_assert_str_eq(status(buf, sizeof(buf)), "paid");
    ck_assert_str_eq(x_textf(k.db, buf, sizeof(buf),
                             "SELECT outcome FROM processed_commands"
                             " WHERE dedup_key = 'pay-1'"),
                     "applied");
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM deferred_commands"), 0);
    ck_assert_int_eq(x_intf(k.db, "SELECT stock FROM products WHERE id = 1"),
                     48);
    itest_assert_stock_matches_ledger(k.db);
}
END_TEST

START_TEST(test_parked_commands_apply_in_arrival_order)
{
    char msg[1024], buf[64];

    start(NULL);
    x_pay_json(msg, sizeof(msg), "pay-1", O1, PRICE, 0);
    send_for_order(msg);
    send_for_order("{\"dedup_key\":\"sp-1\",\"type\":\"start_processing\","
                   "\"actor\":{\"role\":\"vendor\",\"id\":\"v1\"},"
                   "\"order_id\":\"" O1 "\"}");
    assert_deferred("pay-1");
    assert_deferred("sp-1");
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM deferred_commands"), 2);

    send_checkout(1);
    ck_assert_int_eq(x_wait_key(&k, "sp-1", 2, 60), 2);
    ck_assert_int_eq(x_wait_key(&k, "pay-1", 2, 60), 2);
    /* pay first, then start_processing: both apply */
    ck_assert_str_eq(outcome_of("pay-1", 1), "applied");
    ck_assert_str_eq(outcome_of("sp-1", 1), "applied");
    ck_assert_int_lt(position("pay-1", 1), position("sp-1", 1));
    ck_assert_str_eq(status(buf, sizeof(buf)), "processing");
    ck_assert_str_eq(x_textf(k.db, buf, sizeof(buf),
                             "SELECT string_agg(to_status, ',' ORDER BY id)"
                             " FROM order_status_history"
                             " WHERE order_id = '" O1 "'"),
                     "pending,paid,processing");
    itest_assert_stock_matches_ledger(k.db);
}
END_TEST

START_TEST(test_parked_commands_reverse_order)
{
    char msg[1024], buf[64];
    json_t *ev;

    /* start_processing arrives before the pay: in arrival order it finds
     * the order pending and is refused; the pay still applies */
    start(NULL);
    send_for_order("{\"dedup_key\":\"sp-1\",\"type\":\"start_processing\","
                   "\"actor\":{\"role\":\"vendor\",\"id\":\"v1\"},"
                   "\"order_id\":\"" O1 "\"}");
    x_pay_json(msg, sizeof(msg), "pay-1", O1, PRICE, 0);
    send_for_order(msg);
    assert_deferred("sp-1");
    assert_deferred("pay-1");

    send_checkout(1);
    ck_assert_int_eq(x_wait_key(&k, "sp-1", 2, 60), 2);
    ck_assert_int_eq(x_wait_key(&k, "pay-1", 2, 60), 2);
    ev = ktest_result(&k, "sp-1", 1);
    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "invalid_transition");
    ck_assert_str_eq(outcome_of("pay-1", 1), "applied");
    ck_assert_int_lt(position("sp-1", 1), position("pay-1", 1));
    ck_assert_str_eq(status(buf, sizeof(buf)), "paid");
    ck_assert_str_eq(x_textf(k.db, buf, sizeof(buf),
                             "SELECT outcome || ' ' || reason FROM"
                             " processed_commands WHERE dedup_key = 'sp-1'"),
                     "rejected invalid_transition");
}
END_TEST

START_TEST(test_parked_command_survives_restart)
{
    char msg[1024], buf[64];

    start(NULL);
    x_pay_json(msg, sizeof(msg), "pay-1", O1, 3 * PRICE, 0);
    send_for_order(msg);
    assert_deferred("pay-1");

    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    worker = 0;
    start(NULL);
    send_checkout(3);
    ck_assert_int_eq(x_wait_key(&k, "pay-1", 2, 90), 2);
    ck_assert_str_eq(outcome_of("pay-1", 1), "applied");
    ck_assert_str_eq(status(buf, sizeof(buf)), "paid");
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM deferred_commands"), 0);
    /* the pay was read once: the restarted worker did not see it again */
    ck_assert_int_eq(ktest_count_results(&k, "pay-1"), 2);
    ck_assert_int_eq(x_outbox_events(&k, "command.result", NULL), 4);
    itest_assert_stock_matches_ledger(k.db);
}
END_TEST

START_TEST(test_parked_command_times_out)
{
    const char *extra[] = {"--defer-timeout", "2s", "--expiry-interval",
                           "200ms", NULL};
    char msg[1024], buf[128];
    int64_t sent;
    json_t *ev;

    start(extra);
    /* the product first, so that the timing below measures the pay only */
    ck_assert_int_eq(x_wait_key(&k, "prod-1", 1, 60), 1);
    x_pay_json(msg, sizeof(msg), "pay-1", O1, PRICE, 0);
    sent = od_mono_us();
    send_for_order(msg);
    assert_deferred("pay-1");
    ck_assert_int_eq(x_wait_key(&k, "pay-1", 2, 30), 2);
    /* not before the timeout */
    ck_assert_int_ge(od_mono_us() - sent, 1900000);
    ev = ktest_result(&k, "pay-1", 1);
    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "order_not_found");
    ck_assert_str_eq(x_textf(k.db, buf, sizeof(buf),
                             "SELECT outcome || ' ' || reason FROM"
                             " processed_commands WHERE dedup_key = 'pay-1'"),
                     "rejected order_not_found");
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM deferred_commands"), 0);

    /* the checkout that comes too late does not resurrect the pay, and a
     * redelivery of the pay is a duplicate of its final outcome */
    send_checkout(1);
    send_for_order(msg);
    ck_assert_int_eq(x_wait_key(&k, "co-1", 1, 60), 1);
    ck_assert_int_eq(x_wait_key(&k, "pay-1", 3, 60), 3);
    ev = ktest_result(&k, "pay-1", 2);
    ck_assert_str_eq(itest_outcome(ev), "duplicate");
    ck_assert_str_eq(x_detail(ev, "original_outcome"), "rejected");
    ck_assert_str_eq(x_detail(ev, "original_reason"), "order_not_found");
    ck_assert_str_eq(status(buf, sizeof(buf)), "pending");
    itest_assert_stock_matches_ledger(k.db);
}
END_TEST

START_TEST(test_redelivered_parked_command_is_duplicate)
{
    char msg[1024], buf[64];
    json_t *ev;

    start(NULL);
    x_pay_json(msg, sizeof(msg), "pay-1", O1, PRICE, 0);
    send_for_order(msg);
    send_for_order(msg); /* a producer retry */
    ck_assert_int_eq(x_wait_key(&k, "pay-1", 2, 60), 2);
    ck_assert_str_eq(outcome_of("pay-1", 0), "deferred");
    ev = ktest_result(&k, "pay-1", 1);
    ck_assert_str_eq(itest_outcome(ev), "duplicate");
    ck_assert_str_eq(x_detail(ev, "original_outcome"), "deferred");
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM deferred_commands"), 1);

    send_checkout(1);
    ck_assert_int_eq(x_wait_key(&k, "pay-1", 3, 60), 3);
    ck_assert_str_eq(outcome_of("pay-1", 2), "applied");
    ck_assert_int_eq(x_wait_key(&k, "co-1", 1, 60), 1);
    /* applied once: one paid transition, and no fourth result */
    ck_assert_str_eq(status(buf, sizeof(buf)), "paid");
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM order_status_history"
                                  " WHERE order_id = '" O1 "'"
                                  " AND to_status = 'paid'"),
                     1);
    ck_assert_int_eq(x_outbox_events(&k, "command.result", NULL), 5);
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM deferred_commands"), 0);
}
END_TEST

static Suite *
deferred_suite(void)
{
    Suite *s = suite_create("deferred");
    TCase *tc = tcase_create("deferred");

    tcase_set_timeout(tc, 180);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_pay_before_checkout_applies_after_it);
    tcase_add_test(tc, test_parked_commands_apply_in_arrival_order);
    tcase_add_test(tc, test_parked_commands_reverse_order);
    tcase_add_test(tc, test_parked_command_survives_restart);
    tcase_add_test(tc, test_parked_command_times_out);
    tcase_add_test(tc, test_redelivered_parked_command_is_duplicate);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(deferred_suite());
}
