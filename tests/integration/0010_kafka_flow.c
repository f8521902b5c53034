/* 0010_kafka_flow: the slice end to end through the real broker and the
 * real binary: a checkout produced to Kafka yields the order, the stock
 * decrement and a command.result event on the events topic; the same
 * message produced twice yields one order and a second result with outcome
 * duplicate; poison goes to the DLQ and the partition moves on; offsets are
 * stored in Postgres; an outbox row no executor of this worker handed over
 * (another process's, left by its crash) is published by the running
 * worker's sweep without any new command */
#include "ktest.h"

#include <signal.h>
#include <string.h>

static ktest_t k;
static pid_t worker;

static void
setup(void)
{
    ktest_setup(&k, "kafka_flow", 3);
    worker = ktest_worker_start(&k, NULL);
}

static void
teardown(void)
{
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    ktest_teardown(&k);
}

static const char *product =
    "{\"dedup_key\":\"p7\",\"type\":\"product_upsert\","
    "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},\"product_id\":7,"
    "\"vendor_id\":\"v1\",\"name\":\"Mug\",\"sku\":\"MUG-1\","
    "\"currency\":\"EUR\",\"kind\":\"simple\",\"price_cents\":1192,"
    "\"stock\":10}";

static const char *checkout =
    "{\"dedup_key\":\"co-1\",\"type\":\"checkout\","
    "\"actor\":{\"role\":\"customer\",\"id\":\"c1\"},"
    "\"order_id\":\"6f1c0e0e-8a5e-4c1b-9a55-3f7a9d2c1e10\","
    "\"customer_id\":\"c1\",\"currency\":\"EUR\","
    "\"items\":[{\"product_id\":7,\"quantity\":2}]}";

START_TEST(test_checkout_through_kafka)
{
    json_t *ev, *order;

    ktest_send_cmd(&k, product);
    ktest_send_cmd(&k, checkout);
    ktest_flush(&k);
    ck_assert_int_eq(ktest_wait_results(&k, 2, 60), 2);

    ev = ktest_result(&k, "co-1", 0);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "command_type")),
                     "checkout");
    order = json_object_get(ev, "order");
    ck_assert_str_eq(json_string_value(json_object_get(order, "status")),
                     "pending");
    ck_assert_int_eq(
        json_integer_value(json_object_get(order, "subtotal_cents")), 2384);
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "source"), "topic")),
                     k.commands);

    ck_assert_int_eq(itest_int(k.db, "SELECT stock FROM products WHERE id=7"),
                     8);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM orders"), 1);
    /* offsets live in Postgres, next to the effects */
    ck_assert_int_eq(itest_int(k.db, "SELECT sum(next_offset) FROM "
                                     "consumer_offsets"),
                     2);
    /* every outbox row reaches Kafka and is marked published */
    ck_assert_int_eq(ktest_wait_sql(&k,
                                    "SELECT count(*) FROM outbox WHERE "
                                    "published_at IS NULL",
                                    0, 30),
                     0);
    itest_assert_stock_matches_ledger(k.db);
}
END_TEST

START_TEST(test_same_message_twice_is_a_duplicate)
{
    json_t *ev;

    ktest_send_cmd(&k, product);
    ktest_send_cmd(&k, checkout);
    ktest_send_cmd(&k, checkout); /* a producer retry */
    ktest_flush(&k);
    ck_assert_int_eq(ktest_wait_results(&k, 3, 60), 3);

    ck_assert_int_eq(ktest_count_results(&k, "co-1"), 2);
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "co-1", 0)), "applied");
    ev = ktest_result(&k, "co-1", 1);
    ck_assert_str_eq(itest_outcome(ev), "duplicate");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "details"), "original_outcome")),
                     "applied");
    /* the event ids differ: each message has its own result */
    ck_assert_str_ne(json_string_value(json_object_get(
                         ktest_result(&k, "co-1", 0), "event_id")),
                     json_string_value(json_object_get(ev, "event_id")));
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM orders"), 1);
    ck_assert_int_eq(itest_int(k.db, "SELECT stock FROM products WHERE id=7"),
                     8);
    itest_assert_stock_matches_ledger(k.db);
}
END_TEST

START_TEST(test_row_left_by_another_process_is_published)
{
    static const char *const ids[] = {"0b7a3c1e-5d2f-4e6a-9c8b-7f1e2d3c4b5a",
                                      NULL};

    ktest_send_cmd(&k, product);
    ktest_flush(&k);
    ck_assert_int_eq(ktest_wait_results(&k, 1, 60), 1);
    /* a copy of that result under a new event id, committed by someone
     * else: nothing hands it to this worker's publisher */
    itest_exec(k.db,
               "INSERT INTO outbox (event_id, topic, key, payload, headers,"
               " dedup_key) SELECT '0b7a3c1e-5d2f-4e6a-9c8b-7f1e2d3c4b5a',"
               " topic, key, convert_to(jsonb_set(convert_from(payload,"
               " 'UTF8')::jsonb, '{event_id}',"
               " '\"0b7a3c1e-5d2f-4e6a-9c8b-7f1e2d3c4b5a\"')::text, 'UTF8'),"
               " headers, dedup_key FROM outbox WHERE dedup_key = 'p7' AND"
               " convert_from(payload, 'UTF8')::jsonb ->> 'type' ="
               " 'command.result'");
    ck_assert_int_eq(ktest_wait_seen(&k, ids, 30), 0);
    ck_assert_int_eq(
        ktest_wait_sql(&k,
                       "SELECT count(*) FROM outbox WHERE published_at IS NULL",
                       0, 30),
        0);
}
END_TEST

/* DLQ message i's header name as a C string ("" when it has none) */
static const char *
dlq_hdr(int i, const char *name, char *buf, size_t len)
{
    size_t n = 0;
    const char *v = ktest_dlq_header(&k, i, name, &n);

    snprintf(buf, len, "%.*s", v ? (int)n : 0, v ? v : "");
    return buf;
}

/* DLQ message i's payload or key as a C string */
static const char *
dlq_part(int i, int key, char *buf, size_t len)
{
    const rd_kafka_message_t *rkm = k.dlq_msgs[i];

    ck_assert_ptr_nonnull(rkm);
    snprintf(buf, len, "%.*s", (int)(key ? rkm->key_len : rkm->len),
             key ? (const char *)rkm->key : (const char *)rkm->payload);
    return buf;
}

START_TEST(test_poison_goes_to_dlq_and_partition_moves_on)
{
    static const char *const poison[] = {"not json at all",
                                         "{\"no\":\"dedup key\"}"};
    static const char *const errors[] = {"JSON", "dedup_key"};
    json_int_t partition;
    char part[16];

    ktest_send(&k, "7", poison[0]);
    ktest_send(&k, "7", poison[1]);
    ktest_send_cmd(&k, product);
    ktest_flush(&k);
    ck_assert_int_eq(ktest_wait_dlq(&k, 2, 60), 2);
    ck_assert_int_eq(ktest_wait_results(&k, 1, 60), 1);
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "p7", 0)), "applied");
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM products"), 1);

    /* each poison message in the DLQ as it was sent, with its key, its
     * error and where it came from: the partition the product's command
     * (same key) came from, offsets 0 and 1 */
    partition = json_integer_value(json_object_get(
        json_object_get(ktest_result(&k, "p7", 0), "source"), "partition"));
    snprintf(part, sizeof(part), "%lld", (long long)partition);
    for (int i = 0; i < 2; i++) {
        char buf[256], off[8];

        ck_assert_str_eq(dlq_part(i, 0, buf, sizeof(buf)), poison[i]);
        ck_assert_str_eq(dlq_part(i, 1, buf, sizeof(buf)), "7");
        ck_assert_str_eq(dlq_hdr(i, "orderd-source-topic", buf, sizeof(buf)),
                         k.commands);
        ck_assert_str_eq(
            dlq_hdr(i, "orderd-source-partition", buf, sizeof(buf)), part);
        snprintf(off, sizeof(off), "%d", i);
        ck_assert_str_eq(dlq_hdr(i, "orderd-source-offset", buf, sizeof(buf)),
                         off);
        ck_assert_ptr_nonnull(
            strstr(dlq_hdr(i, "orderd-error", buf, sizeof(buf)), errors[i]));
    }
    /* and nothing else went there */
    ck_assert_int_eq(ktest_wait_results_exactly(&k, 1, 60), 1);
    ck_assert_int_eq(ktest_wait_dlq(&k, 3, 2), 2);
}
END_TEST

static Suite *
kafka_flow_suite(void)
{
    Suite *s = suite_create("kafka_flow");
    TCase *tc = tcase_create("flow");

    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_checkout_through_kafka);
    tcase_add_test(tc, test_same_message_twice_is_a_duplicate);
    tcase_add_test(tc, test_poison_goes_to_dlq_and_partition_moves_on);
    tcase_add_test(tc, test_row_left_by_another_process_is_published);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(kafka_flow_suite());
}
