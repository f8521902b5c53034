/* 0510_pay_expiry_race: 200 orders with a ttl of 1 or 2 seconds, each paid
 * around its deadline while the scheduler runs every 200 ms. The pay's
 * issued_at is set explicitly (half just before the deadline, half just
 * after), so the rule is decidable per order:
 *   - issued after the deadline: the pay is refused order_expired, the
 *     order ends expired;
 *   - issued before: the pay wins unless the scheduler expired the order
 *     first (then its refusal says the order was already expired).
 * Whatever the interleaving, each order ends paid (no expiry, no stock
 * back, no refund request) or expired (stock back once, pay refused with
 * one refund request), never both; stock = ledger; `orderd check` clean. */
#include "0500_common.h"

#include <signal.h>

#define ORDERS 200
#define PRODUCTS 8
#define PRICE 125
#define STOCK 2000

static ktest_t k;
static pid_t worker;

typedef struct race_order {
    char id[37];
    int product, qty;
    int64_t deadline_us; /* wall clock */
    int64_t pay_issued_us;
    int64_t send_at_us;
    int sent;
} race_order_t;

static race_order_t ro[ORDERS];
static unsigned int seed = 510;

static int
rnd(int n)
{
    return (int)(rand_r(&seed) % (unsigned int)n);
}

static void
setup(void)
{
    const char *extra[] = {"--expiry-interval", "200ms", NULL};

    ktest_setup(&k, "pay_expiry_race", 4);
    worker = ktest_worker_start(&k, extra);
}

static void
teardown(void)
{
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    ktest_teardown(&k);
}

/* the one result a dedup key has in the outbox (payload as JSON) */
static json_t *
result_of(const char *key)
{
    char buf[16384];

    x_textf(k.db, buf, sizeof(buf),
            "SELECT convert_from(o.payload, 'UTF8') FROM processed_commands p"
            " JOIN outbox o ON o.event_id = p.result_event_id"
            " WHERE p.dedup_key = '%s'",
            key);
    return json_loads(buf, 0, NULL);
}

START_TEST(test_each_order_paid_or_expired_never_both)
{
    const char *check[] = {"check", NULL};
    char msg[1024], key[32], at[40], *out = NULL;
    int64_t t0, stock[PRODUCTS + 1];
    int paid = 0, expired = 0, lost_race = 0, left;

    for (int p = 1; p <= PRODUCTS; p++) {
        x_product_json(msg, sizeof(msg), p, PRICE, STOCK);
        ktest_send_cmd(&k, msg);
        stock[p] = STOCK;
    }
    ktest_flush(&k);
    ck_assert_int_eq(ktest_wait_results(&k, PRODUCTS, 60), PRODUCTS);

    /* the checkouts, all at once; event time t0, ttl 1 or 2 s */
    t0 = od_now_us() / 1000 * 1000 + 1000000; /* a second of headroom */
    for (int i = 0; i < ORDERS; i++) {
        race_order_t *o = &ro[i];
        int ttl = 1 + i % 2;

        x_uuid(510, i, o->id);
        o->product = 1 + rnd(PRODUCTS);
        o->qty = 1 + rnd(4);
        o->deadline_us = t0 + ttl * 1000000LL;
        /* issued 1..150 ms before or after the deadline */
        o->pay_issued_us =
            o->deadline_us + (i % 4 < 2 ? -1 : 1) * (1 + rnd(150)) * 1000LL;
        /* sent 400 ms before to 200 ms after the deadline */
        o->send_at_us = o->deadline_us - 400000 + rnd(600) * 1000LL;
        snprintf(key, sizeof(key), "co-%d", i);
        x_checkout_json(msg, sizeof(msg), key, o->id, o->product, o->qty, ttl,
                        t0);
        ktest_send_cmd(&k, msg);
    }
    ktest_flush(&k);

    /* each pay goes out at its moment; same key as the checkout, so the
     * partition keeps it behind its order. The short naps pace the
     * producer; nothing waits on the worker here. */
    left = ORDERS;
    while (left > 0) {
        int64_t now = od_now_us();
        struct timespec nap = {0, 2 * 1000 * 1000};

        for (int i = 0; i < ORDERS; i++) {
            race_order_t *o = &ro[i];
            char pkey[16];

            if (o->sent || now < o->send_at_us)
                continue;
            snprintf(key, sizeof(key), "pay-%d", i);
            snprintf(pkey, sizeof(pkey), "%d", o->product);
            x_pay_json(msg, sizeof(msg), key, o->id, (int64_t)PRICE * o->qty,
                       o->pay_issued_us);
            ktest_send(&k, pkey, msg);
            o->sent = 1;
            left--;
        }
        rd_kafka_poll(k.producer, 0);
        nanosleep(&nap, NULL);
    }
    ktest_flush(&k);

    /* everything decided: every pay processed, no order pending */
    ck_assert_int_eq(x_waitf(&k, ORDERS, 90,
                             "SELECT count(*) FROM processed_commands"
                             " WHERE command_type = 'pay'"),
                     ORDERS);
    ck_assert_int_eq(x_waitf(&k, 0, 60,
                             "SELECT count(*) FROM orders"
                             " WHERE status = 'pending'"),
                     0);
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM orders"), ORDERS);

    for (int i = 0; i < ORDERS; i++) {
        race_order_t *o = &ro[i];
        char st[32];
        json_t *ev;
        int64_t expire_rows, refunds, expired_events;

        snprintf(key, sizeof(key), "pay-%d", i);
        ev = result_of(key);
        ck_assert_ptr_nonnull(ev);
        x_textf(k.db, st, sizeof(st),
                "SELECT status FROM orders WHERE id = '%s'", o->id);
        expire_rows = x_intf(k.db,
                             "SELECT count(*) FROM stock_ledger WHERE"
                             " reason = 'expire' AND order_id = '%s'",
                             o->id);
        refunds = x_outbox_events(&k, "payment.refund_required", o->id);
        expired_events = x_outbox_events(&k, "order.expired", o->id);
        if (strcmp(st, "paid") == 0) {
            paid++;
            ck_assert_msg(o->pay_issued_us <= o->deadline_us,
                          "order %d paid by a pay issued after its deadline"
                          " (%s)",
                          i, x_time(o->pay_issued_us, at, sizeof(at)));
            ck_assert_str_eq(itest_outcome(ev), "applied");
            ck_assert_int_eq(expire_rows, 0);
            ck_assert_int_eq(refunds, 0);
            ck_assert_int_eq(expired_events, 0);
            stock[o->product] -= o->qty;
        } else {
            ck_assert_msg(strcmp(st, "expired") == 0, "order %d is %s", i, st);
            expired++;
            ck_assert_str_eq(itest_outcome(ev), "rejected");
            ck_assert_str_eq(itest_reason(ev), "order_expired");
            /* a pay issued in time loses only to an expiry already done */
            if (o->pay_issued_us <= o->deadline_us) {
                ck_assert_msg(strcmp(x_detail(ev, "status"), "expired") == 0,
                              "order %d: a pay issued in time was refused"
                              " while the order was %s",
                              i, x_detail(ev, "status"));
                lost_race++;
            }
            ck_assert_int_eq(expire_rows, 1);
            ck_assert_int_eq(x_intf(k.db,
                                    "SELECT sum(delta) FROM"
                                    " stock_ledger WHERE reason ="
                                    " 'expire' AND order_id = '%s'",
                                    o->id),
                             o->qty);
            ck_assert_int_eq(refunds, 1);
            ck_assert_int_eq(expired_events, 1);
            ck_assert_int_eq(x_intf(k.db,
                                    "SELECT count(*) FROM"
                                    " order_status_history WHERE"
                                    " order_id = '%s' AND to_status"
                                    " = 'paid'",
                                    o->id),
                             0);
        }
        json_decref(ev);
    }
    /* pays issued after the deadline never win, so at least half expired */
    ck_assert_int_ge(expired, ORDERS / 2);
    ck_assert_int_eq(paid + expired, ORDERS);
    fprintf(stderr,
            "0510: %d paid, %d expired (%d pays issued in time lost"
            " to the scheduler)\n",
            paid, expired, lost_race);

    for (int p = 1; p <= PRODUCTS; p++)
        ck_assert_int_eq(x_intf(k.db,
                                "SELECT stock FROM products WHERE"
                                " id = %d",
                                p),
                         stock[p]);
    itest_assert_stock_matches_ledger(k.db);
    ck_assert_int_eq(x_waitf(&k, 0, 60,
                             "SELECT count(*) FROM outbox"
                             " WHERE published_at IS NULL"),
                     0);
    ck_assert_msg(ktest_cli(&k, check, &out) == 0, "orderd check: %s", out);
    free(out);
}
END_TEST

static Suite *
pay_expiry_race_suite(void)
{
    Suite *s = suite_create("pay_expiry_race");
    TCase *tc = tcase_create("race");

    tcase_set_timeout(tc, 180);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_each_order_paid_or_expired_never_both);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(pay_expiry_race_suite());
}
