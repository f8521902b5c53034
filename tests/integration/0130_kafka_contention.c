/* 0130_kafka_contention: 60 checkouts compete for the last 5 units of one
 * product; each also buys a different cheap product, so the contract's key
 * rule (smallest product id) spreads them over every partition, and two
 * worker processes apply them concurrently. Exactly 5 win, 55 are refused
 * insufficient_stock, nothing is oversold and stock equals the ledger. */
#include "ktest.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#define BUYERS 60
#define LAST_UNITS 5
#define CONTESTED 1000

static ktest_t k;

static void
setup(void)
{
    ktest_setup(&k, "kafka_contention", 6);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

static void
send_product(int id, int stock)
{
    char msg[512];

    snprintf(msg, sizeof(msg),
             "{\"dedup_key\":\"p-%d\",\"type\":\"product_upsert\","
             "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},\"product_id\":%d,"
             "\"vendor_id\":\"v\",\"name\":\"P%d\",\"sku\":\"S%d\","
             "\"currency\":\"EUR\",\"kind\":\"simple\",\"price_cents\":100,"
             "\"stock\":%d}",
             id, id, id, id, stock);
    ktest_send_cmd(&k, msg);
}

START_TEST(test_last_units_go_to_exactly_as_many_buyers)
{
    const char *threads[] = {"--threads", "2", NULL};
    char msg[512], key[16];
    pid_t w1, w2;
    int applied = 0, refused = 0;

    /* the catalogue first, then two workers race on the checkouts */
    for (int i = 1; i <= BUYERS; i++)
        send_product(i, 10);
    send_product(CONTESTED, LAST_UNITS);
    ktest_flush(&k);
    w1 = ktest_worker_start(&k, threads);
    ck_assert_int_eq(ktest_wait_results(&k, BUYERS + 1, 90), BUYERS + 1);
    w2 = ktest_worker_start(&k, threads);
    for (int i = 1; i <= BUYERS; i++) {
        snprintf(msg, sizeof(msg),
                 "{\"dedup_key\":\"co-%d\",\"type\":\"checkout\","
                 "\"actor\":{\"role\":\"customer\",\"id\":\"c%d\"},"
                 "\"order_id\":\"00000000-0000-4000-8000-%012d\","
                 "\"customer_id\":\"c%d\",\"currency\":\"EUR\","
                 "\"items\":[{\"product_id\":%d,\"quantity\":1},"
                 "{\"product_id\":%d,\"quantity\":1}]}",
                 i, i, i, i, CONTESTED, i);
        snprintf(key, sizeof(key), "%d", i);
        ktest_send(&k, key, msg);
    }
    ktest_flush(&k);
    ck_assert_int_eq(ktest_wait_results(&k, 2 * BUYERS + 1, 120),
                     2 * BUYERS + 1);
    for (int i = 1; i <= BUYERS; i++) {
        char dk[32];
        json_t *ev;

        snprintf(dk, sizeof(dk), "co-%d", i);
        ev = ktest_result(&k, dk, 0);
        ck_assert_ptr_nonnull(ev);
        if (strcmp(itest_outcome(ev), "applied") == 0) {
            applied++;
        } else {
            ck_assert_str_eq(itest_reason(ev), "insufficient_stock");
            refused++;
        }
    }
    ck_assert_int_eq(applied, LAST_UNITS);
    ck_assert_int_eq(refused, BUYERS - LAST_UNITS);
    ck_assert_int_eq(itest_int(k.db, "SELECT stock FROM products WHERE id = "
                                     "1000"),
                     0);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM orders"),
                     LAST_UNITS);
    /* the winners' other product went down by one, the losers' did not */
    ck_assert_int_eq(itest_int(k.db, "SELECT sum(10 - stock) FROM products "
                                     "WHERE id < 1000"),
                     LAST_UNITS);
    /* the work really was spread over partitions */
    ck_assert_int_ge(itest_int(k.db, "SELECT count(*) FROM consumer_offsets "
                                     "WHERE next_offset > 0"),
                     5);
    itest_assert_stock_matches_ledger(k.db);
    ck_assert_int_eq(ktest_worker_stop(w1, SIGTERM), 0);
    ck_assert_int_eq(ktest_worker_stop(w2, SIGTERM), 0);
}
END_TEST

static Suite *
contention_suite(void)
{
    Suite *s = suite_create("kafka_contention");
    TCase *tc = tcase_create("last_units");

    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_last_units_go_to_exactly_as_many_buyers);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(contention_suite());
}
