/* 0520_two_schedulers: two `orderd run` processes on one database and one
 * group both run the scheduler thread; one holds the leader lock. 100
 * orders with a one-second ttl all expire exactly once (history, ledger,
 * order.expired outbox rows and events, stock). When the leader stops, the
 * other process takes over and expires the next orders. */
#include "0500_common.h"

#include <signal.h>

#define ORDERS 100
#define LATE 10
#define PRODUCTS 5
#define STOCK 1000
#define LEADER_LINE "this process now runs the expiry scheduler"

static ktest_t k;
static pid_t w[2];
static char logs[2][256];

static void
setup(void)
{
    ktest_setup(&k, "two_schedulers", 3);
    for (int i = 0; i < 2; i++)
        snprintf(logs[i], sizeof(logs[i]), "/tmp/it_0520_%d_worker%d.log",
                 (int)getpid(), i);
}

static void
teardown(void)
{
    for (int i = 0; i < 2; i++) {
        if (w[i] > 0)
            ck_assert_int_eq(ktest_worker_stop(w[i], SIGTERM), 0);
        w[i] = 0;
        unlink(logs[i]);
    }
    ktest_teardown(&k);
}

static void
send_orders(int from, int to)
{
    char msg[1024], key[32], id[37];

    for (int i = from; i < to; i++) {
        x_uuid(520, i, id);
        snprintf(key, sizeof(key), "co-%d", i);
        x_checkout_json(msg, sizeof(msg), key, id, 1 + i % PRODUCTS, 1 + i % 3,
                        1, 0);
        ktest_send_cmd(&k, msg);
    }
    ktest_flush(&k);
}

static void
assert_expired_once(int n)
{
    ck_assert_int_eq(x_waitf(&k, n, 60,
                             "SELECT count(*) FROM orders"
                             " WHERE status = 'expired'"),
                     n);
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM orders"), n);
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM order_status_history"
                                  " WHERE to_status = 'expired'"),
                     n);
    ck_assert_int_eq(x_intf(k.db, "SELECT count(DISTINCT order_id) FROM"
                                  " order_status_history"
                                  " WHERE to_status = 'expired'"),
                     n);
    /* one line per order: one expire ledger row each, the full quantity */
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM stock_ledger"
                                  " WHERE reason = 'expire'"),
                     n);
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM stock_ledger e"
                                  " JOIN stock_ledger o ON o.order_id ="
                                  " e.order_id AND o.reason = 'order'"
                                  " WHERE e.reason = 'expire'"
                                  " AND e.delta = -o.delta"),
                     n);
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM processed_commands"
                                  " WHERE dedup_key LIKE 'orderd-expire:%%'"
                                  " AND outcome = 'applied'"),
                     n);
    /* the outbox holds exactly one order.expired per order */
    ck_assert_int_eq(x_outbox_events(&k, "order.expired", NULL), n);
    ck_assert_int_eq(x_intf(k.db, "SELECT count(DISTINCT convert_from(payload,"
                                  " 'UTF8')::jsonb->>'order_id') FROM outbox"
                                  " WHERE convert_from(payload, 'UTF8')::jsonb"
                                  "->>'type' = 'order.expired'"),
                     n);
    for (int p = 1; p <= PRODUCTS; p++)
        ck_assert_int_eq(x_intf(k.db,
                                "SELECT stock FROM products WHERE"
                                " id = %d",
                                p),
                         STOCK);
    itest_assert_stock_matches_ledger(k.db);
}

/* on the events topic: one order.expired event id per order */
static void
assert_events(int n)
{
    char id[37];
    int64_t end = od_mono_us() + 60 * 1000000LL;

    while (x_count_other(&k, "order.expired", NULL) < n && od_mono_us() < end)
        x_read_events(&k);
    /* k.other holds each event_id once: a re-published copy would not add
     * a row, a second expiry would */
    ck_assert_int_eq(x_count_other(&k, "order.expired", NULL), n);
    for (int i = 0; i < n; i++) {
        x_uuid(520, i, id);
        ck_assert_int_eq(x_count_other(&k, "order.expired", id), 1);
    }
}

START_TEST(test_two_processes_expire_each_order_once)
{
    const char *extra[] = {"--expiry-interval", "200ms", "--log-level", "info",
                           NULL};
    char msg[1024];
    int leader, other;

    for (int p = 1; p <= PRODUCTS; p++) {
        x_product_json(msg, sizeof(msg), p, 100, STOCK);
        ktest_send_cmd(&k, msg);
    }
    for (int i = 0; i < 2; i++)
        w[i] = x_worker_logged(&k, extra, logs[i]);
    send_orders(0, ORDERS);
    assert_expired_once(ORDERS);
    assert_events(ORDERS);

    /* one leader at a time: exactly one process logged taking the lock */
    ck_assert_int_eq(x_count_lines(logs[0], LEADER_LINE) +
                         x_count_lines(logs[1], LEADER_LINE),
                     1);
    leader = x_count_lines(logs[0], LEADER_LINE) == 1 ? 0 : 1;
    other = 1 - leader;

    /* the leader stops: the other process takes over */
    ck_assert_int_eq(ktest_worker_stop(w[leader], SIGTERM), 0);
    w[leader] = 0;
    send_orders(ORDERS, ORDERS + LATE);
    assert_expired_once(ORDERS + LATE);
    assert_events(ORDERS + LATE);
    ck_assert_int_eq(x_count_lines(logs[other], LEADER_LINE), 1);
}
END_TEST

static Suite *
two_schedulers_suite(void)
{
    Suite *s = suite_create("two_schedulers");
    TCase *tc = tcase_create("two_schedulers");

    tcase_set_timeout(tc, 180);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_two_processes_expire_each_order_once);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(two_schedulers_suite());
}
