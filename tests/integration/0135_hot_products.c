/* 0135_hot_products: thousands of checkouts of a few hot products, keyed
 * so that every partition sees every product, applied by two worker
 * processes of two executors each. Batches that share products take their
 * rows in turns (carried when held, locked in the global order when
 * waiting); each must decide from the latest committed stock, never from
 * an older version, or a concurrent batch's decrement is lost: stock must
 * equal the ledger and the orders for every product. */
#include "0500_common.h"

#include <signal.h>

#define HOT 20
#define CHECKOUTS 10000
#define STOCK 100000

static ktest_t k;

START_TEST(test_hot_products_keep_their_stock)
{
    const char *const small[] = {"--batch-size", "20", NULL};
    char line[1024], oid[37], key[32];
    pid_t w1, w2;

    for (int p = 1; p <= HOT; p++) {
        x_product_json(line, sizeof(line), p, 100, STOCK);
        snprintf(key, sizeof(key), "%d", p);
        ktest_send(&k, key, line);
    }
    ktest_flush(&k);
    /* small batches: many loads racing many commits */
    w1 = ktest_worker_start(&k, small);
    ck_assert_int_eq(ktest_wait_results(&k, HOT, 60), HOT);
    for (int i = 0; i < CHECKOUTS; i++) {
        x_uuid(135, i, oid);
        snprintf(key, sizeof(key), "co-%d", i);
        x_checkout_json(line, sizeof(line), key, oid, 1 + i % HOT, 1 + i % 3, 0,
                        0);
        /* keyed by the command, not the product: every partition (and so
         * every executor) gets every product */
        ktest_send(&k, key, line);
    }
    ktest_flush(&k);
    w2 = ktest_worker_start(&k, small);
    ck_assert_int_eq(ktest_wait_results(&k, HOT + CHECKOUTS, 240),
                     HOT + CHECKOUTS);
    ck_assert_int_eq(ktest_worker_stop(w1, SIGTERM), 0);
    ck_assert_int_eq(ktest_worker_stop(w2, SIGTERM), 0);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM orders"), CHECKOUTS);
    itest_assert_stock_matches_ledger(k.db);
    ck_assert_int_eq(
        itest_int(k.db,
                  "SELECT count(*) FROM products p WHERE p.stock <> 100000 -"
                  " (SELECT COALESCE(sum(i.quantity), 0) FROM order_items i"
                  "  WHERE i.product_id = p.id)"),
        0);
}
END_TEST

static void
setup(void)
{
    ktest_setup(&k, "hot_products", 6);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

int
main(void)
{
    Suite *s = suite_create("hot_products");
    TCase *tc = tcase_create("hot");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_hot_products_keep_their_stock);
    suite_add_tcase(s, tc);
    return itest_run(s);
}
