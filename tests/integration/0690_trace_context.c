/* 0690_trace_context: a command's W3C traceparent header is copied onto
 * its result event, the domain events it causes, its dead-letter copy and
 * the log lines about it; a malformed one from a producer is dropped, not
 * passed on */
#include "0500_common.h"

#include <signal.h>

#define TRACE "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static ktest_t k;

static void
send_traced(const char *payload, const char *traceparent)
{
    rd_kafka_resp_err_t e = rd_kafka_producev(
        k.producer, RD_KAFKA_V_TOPIC(k.commands), RD_KAFKA_V_KEY("1", 1),
        RD_KAFKA_V_VALUE((void *)payload, strlen(payload)),
        RD_KAFKA_V_HEADER("traceparent", traceparent, -1),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);

    ck_assert_int_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR);
}

static int64_t
traced(const char *key, const char *type)
{
    char sql[512];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM outbox WHERE dedup_key = '%s' AND"
             " convert_from(payload, 'UTF8')::jsonb->>'type' = '%s' AND"
             " headers->>'traceparent' = '" TRACE "'",
             key, type);
    return itest_int(k.db, sql);
}

START_TEST(test_trace_follows_the_command)
{
    char line[1024], oid[37], log_path[128], *log = NULL;
    size_t len = 0;
    FILE *f;
    pid_t w;

    /* stock 1: the checkout takes the last unit, a stock.low follows */
    x_product_json(line, sizeof(line), 1, 100, 1);
    ktest_send(&k, "1", line);
    x_uuid(690, 1, oid);
    x_checkout_json(line, sizeof(line), "co-traced", oid, 1, 1, 0, 0);
    send_traced(line, TRACE);
    x_uuid(690, 2, oid);
    x_checkout_json(line, sizeof(line), "co-bad-trace", oid, 1, 1, 0, 0);
    send_traced(line, "00-NOT-A-TRACE\n\x1b[31m");
    /* poison with a trace: its dead-letter copy and the log line say it */
    send_traced("not json at all", TRACE);
    ktest_flush(&k);
    snprintf(log_path, sizeof(log_path), "/tmp/orderd-0690-%d.log",
             (int)getpid());
    w = ktest_worker_start_logged(&k, NULL, log_path);
    ck_assert_int_eq(ktest_wait_results(&k, 3, 60), 3);
    ck_assert_int_eq(ktest_wait_dlq(&k, 1, 60), 1);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM outbox WHERE"
                                     " headers->>'traceparent' = '" TRACE
                                     "' AND headers ? 'orderd-error'"),
                     1);
    f = fopen(log_path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(getdelim(&log, &len, '\0', f), 0);
    fclose(f);
    ck_assert_msg(strstr(log, "(trace " TRACE ")") != NULL,
                  "no trace on the poison's log line:\n%s", log);
    free(log);
    unlink(log_path);
    ck_assert_int_eq(traced("co-traced", "command.result"), 1);
    ck_assert_int_eq(traced("co-traced", "stock.low"), 1);
    /* the untraced command's events carry no header at all */
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM outbox WHERE"
                                     " dedup_key = 'co-bad-trace' AND"
                                     " headers IS NOT NULL"),
                     0);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM outbox WHERE"
                                     " dedup_key = 'prod-1' AND"
                                     " headers IS NOT NULL"),
                     0);
}
END_TEST

static void
setup(void)
{
    ktest_setup(&k, "trace_context", 1);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

int
main(void)
{
    Suite *s = suite_create("trace_context");
    TCase *tc = tcase_create("trace");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_trace_follows_the_command);
    suite_add_tcase(s, tc);
    return itest_run(s);
}
