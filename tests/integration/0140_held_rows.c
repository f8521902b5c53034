/* 0140_held_rows: a batch whose rows are partly held by another
 * transaction (another executor or process) goes on with what it can.
 * Product 1 is locked by the test; a checkout of it and, after it on the
 * same partition, a checkout of product 2 wait (the partition's order
 * holds), while a checkout of product 3 on another partition is applied in
 * the meantime. Once the lock goes, both waiting checkouts are applied, in
 * their partition's order. A cancel, which names only its order, waits in
 * the same way for the products of the order's items. */
#include "ktest.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static ktest_t k;

static void
setup(void)
{
    ktest_setup(&k, "held_rows", 6);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

static void
send_product(int id)
{
    char msg[512], key[16];

    snprintf(msg, sizeof(msg),
             "{\"dedup_key\":\"p-%d\",\"type\":\"product_upsert\","
             "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},\"product_id\":%d,"
             "\"vendor_id\":\"v\",\"name\":\"P%d\",\"sku\":\"S%d\","
             "\"currency\":\"EUR\",\"kind\":\"simple\",\"price_cents\":100,"
             "\"stock\":10}",
             id, id, id, id);
    snprintf(key, sizeof(key), "%d", id);
    ktest_send(&k, key, msg);
}

static void
send_checkout(const char *dk, int n, int product, const char *key)
{
    char msg[512];

    snprintf(msg, sizeof(msg),
             "{\"dedup_key\":\"%s\",\"type\":\"checkout\","
             "\"actor\":{\"role\":\"customer\",\"id\":\"c\"},"
             "\"order_id\":\"00000000-0000-4000-8000-%012d\","
             "\"customer_id\":\"c\",\"currency\":\"EUR\","
             "\"items\":[{\"product_id\":%d,\"quantity\":1}]}",
             dk, n, product);
    ktest_send(&k, key, msg);
}

/* A key the producer's partitioner puts on another partition than "1". */
static void
other_partition_key(char *key, size_t len)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(k.producer, k.commands, NULL);
    int32_t p1 = rd_kafka_msg_partitioner_consistent_random(
        t, "1", 1, k.partitions, NULL, NULL);

    for (int i = 0;; i++) {
        snprintf(key, len, "r%d", i);
        if (rd_kafka_msg_partitioner_consistent_random(
                t, key, strlen(key), k.partitions, NULL, NULL) != p1)
            break;
    }
    rd_kafka_topic_destroy(t);
}

/* Another transaction, holding product id until it is rolled back. */
static db_t *
hold_product(int id)
{
    char err[512], sql[96];
    db_t *held = db_connect(k.conninfo, err, sizeof(err));

    ck_assert_msg(held != NULL, "%s", err);
    snprintf(sql, sizeof(sql),
             "SELECT 1 FROM products WHERE id = %d FOR UPDATE", id);
    itest_exec(held, "BEGIN");
    itest_exec(held, sql);
    return held;
}

/* The worker's executor waits on a row lock (operators see which orderd
 * session waits by its name). */
static void
wait_executor_blocked(void)
{
    ck_assert_int_eq(ktest_wait_sql(&k,
                                    "SELECT count(*) FROM pg_stat_activity"
                                    " WHERE datname = current_database()"
                                    " AND wait_event_type = 'Lock'"
                                    " AND application_name ="
                                    " 'orderd-executor-0'",
                                    1, 60),
                     1);
}

START_TEST(test_other_partitions_go_on_while_a_row_is_held)
{
    const char *one[] = {"--threads", "1", "--batch-wait-ms", "1000", NULL};
    char key[16];
    db_t *held;
    json_t *ev;
    pid_t w;

    for (int i = 1; i <= 3; i++)
        send_product(i);
    ktest_flush(&k);
    w = ktest_worker_start(&k, NULL);
    ck_assert_int_eq(ktest_wait_results(&k, 3, 90), 3);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);

    /* another transaction holds product 1 */
    held = hold_product(1);

    other_partition_key(key, sizeof(key));
    send_checkout("co-p1", 1, 1, "1");
    send_checkout("co-p2", 2, 2, "1"); /* same partition, after co-p1 */
    send_checkout("co-p3", 3, 3, key);
    ktest_flush(&k);
    /* one executor, one batch of all three (preloaded, long batch wait) */
    w = ktest_worker_start(&k, one);

    ck_assert_int_eq(ktest_wait_results(&k, 4, 90), 4);
    ev = ktest_result(&k, "co-p3", 0);
    ck_assert_msg(ev != NULL, "the free partition's checkout was not applied");
    ck_assert_str_eq(itest_outcome(ev), "applied");
    /* the worker's executor now waits for product 1 (its partition went
     * nowhere); operators see which orderd session waits by its name */
    wait_executor_blocked();
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM processed_commands"
                                     " WHERE dedup_key IN ('co-p1', 'co-p2')"),
                     0);

    itest_exec(held, "ROLLBACK");
    db_destroy(held);
    ck_assert_int_eq(ktest_wait_results(&k, 6, 90), 6);
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "co-p1", 0)), "applied");
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "co-p2", 0)), "applied");
    /* in the partition's order */
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM stock_ledger a,"
                                     " stock_ledger b WHERE a.dedup_key ="
                                     " 'co-p1' AND b.dedup_key = 'co-p2'"
                                     " AND a.id < b.id"),
                     1);
    ck_assert_int_eq(itest_int(k.db, "SELECT sum(stock) FROM products"), 27);
    itest_assert_stock_matches_ledger(k.db);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
}
END_TEST

/*
 * A command that names only its order (a cancel) needs the products of
 * the order's items too (the stock goes back): while another transaction
 * holds one of them it waits like a checkout would, instead of being
 * decided without that row (an internal_error, with a dead-letter copy).
 */
START_TEST(test_an_order_command_waits_for_its_items_products)
{
    const char *one[] = {"--threads", "1", NULL};
    db_t *held;
    pid_t w;

    for (int i = 1; i <= 2; i++)
        send_product(i);
    send_checkout("co-1", 1, 1, "1");
    ktest_flush(&k);
    w = ktest_worker_start(&k, one);
    ck_assert_int_eq(ktest_wait_results(&k, 3, 90), 3);
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "co-1", 0)), "applied");

    /* another transaction holds product 1, the order's only item */
    held = hold_product(1);
    ktest_send(&k, "1",
               "{\"dedup_key\":\"cancel-1\",\"type\":\"cancel\","
               "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},"
               "\"order_id\":\"00000000-0000-4000-8000-000000000001\"}");
    ktest_flush(&k);
    wait_executor_blocked();
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM processed_commands"
                                     " WHERE dedup_key = 'cancel-1'"),
                     0);

    itest_exec(held, "ROLLBACK");
    db_destroy(held);
    ck_assert_int_eq(ktest_wait_results(&k, 4, 90), 4);
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "cancel-1", 0)), "applied");
    ck_assert_int_eq(itest_int(k.db, "SELECT stock FROM products WHERE id = 1"),
                     10);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM outbox WHERE"
                                     " headers ? 'orderd-error'"),
                     0);
    itest_assert_stock_matches_ledger(k.db);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
}
END_TEST

static Suite *
held_rows_suite(void)
{
    Suite *s = suite_create("held_rows");
    TCase *tc = tcase_create("held_rows");

    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_other_partitions_go_on_while_a_row_is_held);
    tcase_add_test(tc, test_an_order_command_waits_for_its_items_products);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(held_rows_suite());
}
