/* 0630_sources_kafka: sources end to end with the real broker and worker:
 * `orderd topics` creates every source's topic, `orderd send --source`
 * produces to it, one worker consumes them all and judges each command by
 * its topic's roles; a producer that takes the scheduler's key for an
 * order cannot keep it from expiring; and a tick of the scheduler never
 * spins on expiries that do not apply */
#include "0500_common.h"

#define O1 "00000000-0000-4000-8630-000000000001"
#define O2 "00000000-0000-4000-8630-000000000002"
#define O3 "00000000-0000-4000-8630-000000000003"
#define NDOOMED 120

static ktest_t k;
static char web[200], payments[200], ops[200];

static void
setup(void)
{
    const char *topics[] = {"topics", NULL};
    char spec[800];
    char *out = NULL;

    ktest_setup(&k, "0630_sources", 3);
    snprintf(web, sizeof(web), "%s.web", k.commands);
    snprintf(payments, sizeof(payments), "%s.payments", k.commands);
    snprintf(ops, sizeof(ops), "%s.ops", k.commands);
    snprintf(spec, sizeof(spec),
             "web=%s:customer;payments=%s:payment;ops=%s:admin,vendor,system",
             web, payments, ops);
    setenv("ORDERD_SOURCES", spec, 1);
    ck_assert_int_eq(ktest_cli(&k, topics, &out), 0);
    ck_assert_msg(strstr(out, web) && strstr(out, payments) && strstr(out, ops),
                  "orderd topics did not create every source's topic:\n%s",
                  out);
    free(out);
}

static void
teardown(void)
{
    unsetenv("ORDERD_SOURCES");
    ktest_teardown(&k);
}

/* `orderd send --source NAME` with lines on stdin; its exit status */
static int
send_to(const char *source, const char *lines)
{
    const char *args[] = {"send", "--source", source, NULL};
    char *out = NULL;
    int rc = ktest_cli_input(&k, args, lines, &out);

    free(out);
    return rc;
}

static const char *
source_name(const json_t *ev)
{
    return json_string_value(
        json_object_get(json_object_get(ev, "source"), "name"));
}

START_TEST(test_each_topic_is_judged_by_its_roles)
{
    char line[1024], lines[4096];
    json_t *ev;
    pid_t w;

    w = ktest_worker_start(
        &k, (const char *const[]){"--expiry-interval", "200ms", NULL});
    x_product_json(line, sizeof(line), 1, 1000, 10);
    snprintf(lines, sizeof(lines), "%s\n", line);
    ck_assert_int_eq(send_to("ops", lines), 0);
    ck_assert_int_eq(ktest_wait_results(&k, 1, 60), 1);

    /* the customers' topic: a checkout, a payment it may not claim, and a
     * checkout that takes the scheduler's key for its own order */
    snprintf(
        lines, sizeof(lines),
        "{\"dedup_key\":\"co-1\",\"type\":\"checkout\",\"actor\":"
        "{\"role\":\"customer\",\"id\":\"c1\"},\"order_id\":\"" O1 "\","
        "\"customer_id\":\"c1\",\"currency\":\"EUR\",\"items\":"
        "[{\"product_id\":1,\"quantity\":2}]}\n"
        "{\"dedup_key\":\"fake-pay\",\"type\":\"pay\",\"actor\":"
        "{\"role\":\"payment\",\"id\":\"mallory\"},\"order_id\":\"" O1
        "\",\"payment_id\":\"pi_fake\",\"amount_cents\":2000,"
        "\"currency\":\"EUR\"}\n"
        "{\"dedup_key\":\"orderd-expire:" O2 "\",\"type\":\"checkout\","
        "\"actor\":{\"role\":\"customer\",\"id\":\"c2\"},\"order_id\":\"" O2
        "\",\"customer_id\":\"c2\",\"currency\":\"EUR\",\"ttl_seconds\":1,"
        "\"items\":[{\"product_id\":1,\"quantity\":3}]}\n");
    ck_assert_int_eq(send_to("web", lines), 0);
    ck_assert_int_eq(ktest_wait_results(&k, 4, 60), 4);
    snprintf(lines, sizeof(lines),
             "{\"dedup_key\":\"pay:gw-1\",\"type\":\"pay\",\"actor\":"
             "{\"role\":\"payment\",\"id\":\"psp\"},\"order_id\":\"" O1 "\","
             "\"payment_id\":\"pi_1\",\"amount_cents\":2000,\"currency\":"
             "\"EUR\"}\n");
    ck_assert_int_eq(send_to("payments", lines), 0);
    /* the pay, and the scheduler's expiry of O2 under source orderd */
    ck_assert_int_eq(ktest_wait_results(&k, 6, 60), 6);

    ev = ktest_result(&k, "co-1", 0);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_str_eq(source_name(ev), "web");
    ev = ktest_result(&k, "fake-pay", 0);
    ck_assert_str_eq(itest_reason(ev), "unauthorized");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "details"), "role")),
                     "payment");
    ev = ktest_result(&k, "pay:gw-1", 0);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_str_eq(source_name(ev), "payments");
    ck_assert_int_eq(ktest_count_results(&k, "orderd-expire:" O2), 2);
    ev = ktest_result(&k, "orderd-expire:" O2, 0);
    ck_assert_str_eq(source_name(ev), "web");
    ev = ktest_result(&k, "orderd-expire:" O2, 1);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_str_eq(source_name(ev), "orderd");
    ck_assert_int_eq(x_waitf(&k, 1, 30,
                             "SELECT count(*) FROM orders WHERE id = '" O2
                             "' AND status = 'expired'"),
                     1);
    ck_assert_int_eq(x_intf(k.db, "SELECT stock FROM products WHERE id = 1"),
                     8);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    itest_assert_stock_matches_ledger(k.db);
    {
        const char *check[] = {"check", NULL};
        char *out = NULL;

        ck_assert_int_eq(ktest_cli(&k, check, &out), 0);
        free(out);
    }
    /* a name no source has is refused before anything is sent */
    ck_assert_int_eq(send_to("nope", lines), 2);
}
END_TEST

START_TEST(test_a_tick_never_spins_on_expiries_that_fail)
{
    char line[1024], oid[37], key[64];
    int64_t failures;
    pid_t w;

    /* one trusting default source on the harness's commands topic */
    unsetenv("ORDERD_SOURCES");
    /* the expiry of these orders fails inside the database, as an
     * unexpected error would: internal_error, one at a time */
    itest_owner_exec(
        "0630_sources",
        "CREATE FUNCTION doom() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN IF NEW.status = 'expired' AND"
        " NEW.customer_id = 'doomed' THEN RAISE EXCEPTION 'doomed';"
        " END IF; RETURN NEW; END $$;"
        " CREATE TRIGGER doom BEFORE UPDATE ON orders FOR EACH ROW"
        " EXECUTE FUNCTION doom()");
    x_product_json(line, sizeof(line), 1, 100, 1000);
    ktest_send(&k, "1", line);
    for (int i = 0; i < NDOOMED; i++) {
        x_uuid(630, 100 + i, oid);
        snprintf(line, sizeof(line),
                 "{\"dedup_key\":\"doomed-%d\",\"type\":\"checkout\","
                 "\"actor\":{\"role\":\"system\",\"id\":\"shop\"},"
                 "\"order_id\":\"%s\",\"customer_id\":\"doomed\","
                 "\"currency\":\"EUR\",\"ttl_seconds\":1,\"items\":"
                 "[{\"product_id\":1,\"quantity\":1}]}",
                 i, oid);
        ktest_send(&k, "1", line);
    }
    /* due after every doomed one (same partition, later timestamps) */
    x_checkout_json(line, sizeof(line), "fine-1", O1, 1, 1, 1, 0);
    ktest_send(&k, "1", line);
    /* and a payment for an order that never comes */
    x_pay_json(line, sizeof(line), "pay-lost", O2, 100, 0);
    ktest_send(&k, "1", line);
    ktest_flush(&k);

    w = ktest_worker_start(&k, (const char *const[]){"--expiry-interval",
                                                     "200ms", "--defer-timeout",
                                                     "1s", NULL});
    /* the tick went past every failing expiry to the rest of its work */
    ck_assert_int_eq(x_waitf(&k, 1, 60,
                             "SELECT count(*) FROM orders WHERE id = '" O1
                             "' AND status = 'expired'"),
                     1);
    ck_assert_int_eq(x_waitf(&k, 1, 60,
                             "SELECT count(*) FROM processed_commands WHERE"
                             " dedup_key = 'pay-lost' AND reason ="
                             " 'order_not_found'"),
                     1);
    /* a later tick (it expires an order that came after the first pass)
     * does not try the failed ones again */
    x_checkout_json(line, sizeof(line), "fine-2", O3, 1, 1, 1, 0);
    ktest_send(&k, "1", line);
    ktest_flush(&k);
    ck_assert_int_eq(x_waitf(&k, 1, 60,
                             "SELECT count(*) FROM orders WHERE id = '" O3
                             "' AND status = 'expired'"),
                     1);
    failures = x_intf(k.db, "SELECT count(*) FROM processed_commands WHERE"
                            " source = 'orderd' AND reason = 'internal_error'");
    ck_assert_int_eq(failures, NDOOMED);
    /* one result per failed expiry, however many ticks ran */
    ck_assert_int_eq(x_intf(k.db,
                            "SELECT count(*) FROM outbox WHERE"
                            " dedup_key LIKE 'orderd-expire:%%' AND"
                            " topic = '%s' AND convert_from(payload,"
                            " 'UTF8')::jsonb->>'type' ="
                            " 'command.result'",
                            k.events),
                     NDOOMED + 2);
    for (int i = 0; i < NDOOMED; i += 37) {
        x_uuid(630, 100 + i, oid);
        snprintf(key, sizeof(key), "orderd-expire:%s", oid);
        ck_assert_int_eq(x_intf(k.db,
                                "SELECT count(*) FROM outbox WHERE"
                                " dedup_key = '%s' AND topic = '%s' AND"
                                " convert_from(payload, 'UTF8')::jsonb->>"
                                "'type' = 'command.result'",
                                key, k.events),
                         1);
    }
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM orders WHERE"
                                  " customer_id = 'doomed' AND status ="
                                  " 'pending'"),
                     NDOOMED);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    itest_assert_stock_matches_ledger(k.db);
}
END_TEST

static Suite *
sources_kafka_suite(void)
{
    Suite *s = suite_create("0630_sources_kafka");
    TCase *tc = tcase_create("roles");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_each_topic_is_judged_by_its_roles);
    suite_add_tcase(s, tc);
    tc = tcase_create("scheduler");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_a_tick_never_spins_on_expiries_that_fail);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(sources_kafka_suite());
}
