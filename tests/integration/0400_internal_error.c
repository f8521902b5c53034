/* 0400_internal_error: an unexpected SQL error while applying one command
 * (a test trigger raises on a product named 'boom'). With the default
 * --on-internal-error=continue the command is `rejected internal_error`,
 * a copy goes to the dead-letter topic with header orderd-error, and the
 * other commands of the same transaction / batch still commit. With
 * --on-internal-error=halt the worker exits with status 3 and nothing of
 * the batch holding the bad command is committed (the stored offset stays
 * before it), so a restarted worker applies the batch again. */
#include "ktest.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define BOOM_TRIGGER                                                           \
    "CREATE FUNCTION it_boom() RETURNS trigger LANGUAGE plpgsql AS $$"         \
    " BEGIN IF NEW.name = 'boom' THEN"                                         \
    "  RAISE EXCEPTION 'boom' USING ERRCODE = 'XX000'; END IF;"                \
    " RETURN NEW; END $$;"                                                     \
    " CREATE TRIGGER it_boom BEFORE INSERT OR UPDATE ON products"              \
    " FOR EACH ROW EXECUTE FUNCTION it_boom()"

#define UPSERT                                                                 \
    "{\"dedup_key\":\"%s\",\"type\":\"product_upsert\","                       \
    "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},\"product_id\":%d,"         \
    "\"vendor_id\":\"v\",\"name\":\"%s\",\"sku\":\"SKU-%d\","                  \
    "\"currency\":\"EUR\",\"kind\":\"simple\",\"price_cents\":100,"            \
    "\"stock\":5}"

static ktest_t k;

static void
upsert(char *buf, size_t len, const char *key, int id, const char *name)
{
    snprintf(buf, len, UPSERT, key, id, name, id);
}

/* Applies the messages in one transaction, as one batch would. */
static od_status_t
apply_batch(db_t *db, const apply_config_t *cfg, const char *const *msgs, int n,
            apply_report_t *reps)
{
    char err[1024];
    od_status_t st = OD_OK;

    ck_assert_int_eq(db_begin(db, err, sizeof(err)), OD_OK);
    for (int i = 0; i < n && st == OD_OK; i++) {
        apply_source_t src = {
            &itest_source, "orders.commands", 0, 100 + i, od_now_us(), "1", 1,
            NULL};

        st = apply_message(db, cfg, msgs[i], strlen(msgs[i]), &src, &reps[i],
                           err, sizeof(err));
    }
    if (st == OD_OK)
        ck_assert_msg(db_commit(db, err, sizeof(err)) == OD_OK, "%s", err);
    else
        ck_assert_int_eq(db_rollback(db, err, sizeof(err)), OD_OK);
    return st;
}

START_TEST(test_internal_error_in_one_transaction)
{
    char sql[512], buf[256], big[8192], good1[512], bad[512], good2[512];
    const char *msgs[3] = {good1, bad, good2};
    apply_report_t reps[3];
    apply_config_t halt;
    db_t *db = itest_fresh_db("internal_error_tx", NULL, 0);
    json_t *ev;

    itest_owner_exec("internal_error_tx", BOOM_TRIGGER);
    upsert(good1, sizeof(good1), "p-1", 1, "fine");
    upsert(bad, sizeof(bad), "p-2", 2, "boom");
    upsert(good2, sizeof(good2), "p-3", 3, "also fine");

    /* halt: the error surfaces, the caller rolls everything back */
    halt = itest_cfg;
    halt.halt_on_internal_error = 1;
    ck_assert_int_eq(apply_batch(db, &halt, msgs, 3, reps), OD_FATAL);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM products"), 0);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM outbox"), 0);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM processed_commands"),
                     0);

    /* continue: the bad command is refused, the others commit */
    ck_assert_int_eq(apply_batch(db, &itest_cfg, msgs, 3, reps), OD_OK);
    ck_assert_int_eq(reps[0].outcome, OUTCOME_APPLIED);
    ck_assert_int_eq(reps[1].outcome, OUTCOME_REJECTED);
    ck_assert_str_eq(reps[1].reason, "internal_error");
    ck_assert_int_eq(reps[1].internal_error, 1);
    ck_assert_int_eq(reps[1].dlq, 1);
    ck_assert_int_eq(reps[2].outcome, OUTCOME_APPLIED);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM products WHERE "
                                   "id IN (1, 3) AND stock = 5"),
                     2);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM products WHERE "
                                   "id = 2"),
                     0);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger WHERE "
                                   "product_id = 2"),
                     0);
    itest_assert_stock_matches_ledger(db);

    /* its result event and dedup row say internal_error */
    snprintf(sql, sizeof(sql),
             "SELECT convert_from(payload, 'UTF8') FROM outbox"
             " WHERE event_id = '%s'",
             reps[1].event_id);
    ev = json_loads(itest_text(db, sql, big, sizeof(big)), 0, NULL);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "internal_error");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "dedup_key")),
                     "p-2");
    json_decref(ev);
    ck_assert_str_eq(itest_text(db,
                                "SELECT outcome || '/' || reason FROM "
                                "processed_commands WHERE dedup_key = 'p-2'",
                                buf, sizeof(buf)),
                     "rejected/internal_error");

    /* the dead-letter copy: the original bytes, the error header */
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM outbox WHERE "
                                   "topic = 'orders.commands.dlq'"),
                     1);
    ck_assert_str_eq(itest_text(db,
                                "SELECT headers->>'orderd-error' FROM outbox"
                                " WHERE topic = 'orders.commands.dlq'",
                                buf, sizeof(buf)),
                     "internal_error");
    ck_assert_str_eq(itest_text(db,
                                "SELECT headers->>'orderd-source-offset'"
                                " FROM outbox WHERE"
                                " topic = 'orders.commands.dlq'",
                                buf, sizeof(buf)),
                     "101");
    ck_assert_str_eq(itest_text(db,
                                "SELECT convert_from(payload, 'UTF8') FROM"
                                " outbox WHERE topic = 'orders.commands.dlq'",
                                big, sizeof(big)),
                     bad);
    db_destroy(db);
}
END_TEST

/* Raises on the order insert of customer 'boom' (a checkout's last
 * statement, sent with its dedup row) and on the status update that pays
 * an order of customer 'boom-pay' (a pay's statements, queued to go with
 * its dedup row). */
#define ORDERS_TRIGGER                                                         \
    "CREATE FUNCTION it_boom_order() RETURNS trigger LANGUAGE plpgsql AS $$"   \
    " BEGIN IF (TG_OP = 'INSERT' AND NEW.customer_id = 'boom') OR"             \
    "  (TG_OP = 'UPDATE' AND NEW.customer_id = 'boom-pay'"                     \
    "   AND NEW.status = 'paid') THEN"                                         \
    "  RAISE EXCEPTION 'boom' USING ERRCODE = 'XX000'; END IF;"                \
    " RETURN NEW; END $$;"                                                     \
    " CREATE TRIGGER it_boom_order BEFORE INSERT OR UPDATE ON orders"          \
    " FOR EACH ROW EXECUTE FUNCTION it_boom_order()"

#define CHECKOUT                                                               \
    "{\"dedup_key\":\"%s\",\"type\":\"checkout\","                             \
    "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},"                           \
    "\"order_id\":\"%s\",\"customer_id\":\"%s\",\"currency\":\"EUR\","         \
    "\"items\":[{\"product_id\":1,\"quantity\":2}]}"

#define PAY                                                                    \
    "{\"dedup_key\":\"%s\",\"type\":\"pay\","                                  \
    "\"actor\":{\"role\":\"payment\",\"id\":\"psp\"},\"order_id\":\"%s\","     \
    "\"payment_id\":\"pi-%s\",\"amount_cents\":200,\"currency\":\"EUR\"}"

#define OID(n) "00000000-0000-4000-8000-00000000000" #n

/*
 * A failure in a statement that travels in the dedup row's round trip is
 * the command's own internal error, as when it runs alone: that command is
 * refused (savepoint rolled back, dead-letter copy), its neighbours in the
 * batch commit, and the speculative applied result is not what is kept.
 */
START_TEST(test_internal_error_in_pipelined_statement)
{
    char co1[512], co2[512], co3[512], pay1[512], pay2[512], buf[256];
    const char *checkouts[3] = {co1, co2, co3};
    const char *pays[2] = {pay1, pay2};
    apply_report_t reps[3];
    db_t *db = itest_fresh_db("internal_error_pipelined", NULL, 0);

    upsert(co1, sizeof(co1), "p-1", 1, "mug");
    ck_assert_int_eq(apply_batch(db, &itest_cfg, checkouts, 1, reps), OD_OK);
    itest_owner_exec("internal_error_pipelined", ORDERS_TRIGGER);
    snprintf(co1, sizeof(co1), CHECKOUT, "co-1", OID(1), "alice");
    snprintf(co2, sizeof(co2), CHECKOUT, "co-2", OID(2), "boom");
    snprintf(co3, sizeof(co3), CHECKOUT, "co-3", OID(3), "boom-pay");
    ck_assert_int_eq(apply_batch(db, &itest_cfg, checkouts, 3, reps), OD_OK);
    ck_assert_int_eq(reps[0].outcome, OUTCOME_APPLIED);
    ck_assert_int_eq(reps[1].outcome, OUTCOME_REJECTED);
    ck_assert_str_eq(reps[1].reason, "internal_error");
    ck_assert_int_eq(reps[1].dlq, 1);
    ck_assert_int_eq(reps[2].outcome, OUTCOME_APPLIED);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 1"),
                     1);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM orders"), 2);
    ck_assert_str_eq(itest_text(db,
                                "SELECT outcome || '/' || reason FROM "
                                "processed_commands WHERE dedup_key = 'co-2'",
                                buf, sizeof(buf)),
                     "rejected/internal_error");
    /* one result per command: the speculative 'applied' one was undone */
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM outbox WHERE"
                                   " dedup_key = 'co-2' AND"
                                   " topic = 'orders.events'"),
                     1);

    snprintf(pay1, sizeof(pay1), PAY, "pay-1", OID(1), "1");
    snprintf(pay2, sizeof(pay2), PAY, "pay-3", OID(3), "3");
    ck_assert_int_eq(apply_batch(db, &itest_cfg, pays, 2, reps), OD_OK);
    ck_assert_int_eq(reps[0].outcome, OUTCOME_APPLIED);
    ck_assert_int_eq(reps[1].outcome, OUTCOME_REJECTED);
    ck_assert_str_eq(reps[1].reason, "internal_error");
    ck_assert_str_eq(itest_text(db,
                                "SELECT string_agg(status, ',' ORDER BY id)"
                                " FROM orders",
                                buf, sizeof(buf)),
                     "paid,pending");
    /* the failed pay left no history row and no payment on its order */
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM order_status_history"
                                   " WHERE dedup_key = 'pay-3'"),
                     0);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM orders WHERE"
                                   " payment_id IS NOT NULL"),
                     1);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM outbox WHERE"
                                   " topic = 'orders.commands.dlq'"),
                     2);
    itest_assert_stock_matches_ledger(db);
    db_destroy(db);
}
END_TEST

/* Waits for the worker to exit by itself; its status, or -1 on timeout. */
static int
wait_exit(pid_t pid, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;
    int status;

    for (;;) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status)
                                     : 128 + WTERMSIG(status);
        if (od_mono_us() >= end)
            return -1;
        nanosleep(&ts, NULL); /* polling interval */
    }
}

static void
send_three(void)
{
    char msg[512];

    upsert(msg, sizeof(msg), "p-1", 1, "fine");
    ktest_send(&k, "1", msg);
    upsert(msg, sizeof(msg), "p-2", 2, "boom");
    ktest_send(&k, "2", msg);
    upsert(msg, sizeof(msg), "p-3", 3, "also fine");
    ktest_send(&k, "3", msg);
    ktest_flush(&k);
}

/* The DLQ copy read back from the topic: the failed command as it was
 * sent, with the error and the topic, partition and offset its result
 * names; and it is the only one. */
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

static void
assert_dlq_copy(void)
{
    json_t *src = json_object_get(ktest_result(&k, "p-2", 0), "source");
    char sent[512], buf[512], num[32];

    upsert(sent, sizeof(sent), "p-2", 2, "boom");
    ck_assert_str_eq(dlq_part(0, 0, buf, sizeof(buf)), sent);
    ck_assert_str_eq(dlq_part(0, 1, buf, sizeof(buf)), "2");
    ck_assert_str_eq(dlq_hdr(0, "orderd-error", buf, sizeof(buf)),
                     "internal_error");
    ck_assert_str_eq(dlq_hdr(0, "orderd-source-topic", buf, sizeof(buf)),
                     k.commands);
    snprintf(num, sizeof(num), "%lld",
             (long long)json_integer_value(json_object_get(src, "partition")));
    ck_assert_str_eq(dlq_hdr(0, "orderd-source-partition", buf, sizeof(buf)),
                     num);
    snprintf(num, sizeof(num), "%lld",
             (long long)json_integer_value(json_object_get(src, "offset")));
    ck_assert_str_eq(dlq_hdr(0, "orderd-source-offset", buf, sizeof(buf)), num);
    ck_assert_int_eq(ktest_wait_dlq(&k, 2, 2), 1);
}

static void
assert_bad_refused_good_applied(void)
{
    char sql[256];

    ck_assert_int_eq(ktest_wait_results(&k, 3, 60), 3);
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "p-1", 0)), "applied");
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "p-2", 0)), "rejected");
    ck_assert_str_eq(itest_reason(ktest_result(&k, "p-2", 0)),
                     "internal_error");
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "p-3", 0)), "applied");
    ck_assert_int_eq(ktest_count_results(&k, "p-2"), 1);
    ck_assert_int_eq(ktest_wait_dlq(&k, 1, 60), 1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM outbox WHERE topic = '%s' AND"
             " headers->>'orderd-error' = 'internal_error'",
             k.dlq);
    ck_assert_int_eq(itest_int(k.db, sql), 1);
    assert_dlq_copy();
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM products"), 2);
    ck_assert_int_eq(itest_int(k.db, "SELECT next_offset FROM "
                                     "consumer_offsets"),
                     3);
    itest_assert_stock_matches_ledger(k.db);
}

START_TEST(test_worker_continues_past_internal_error)
{
    const char *extra[] = {"--threads", "1", NULL};
    pid_t w;

    itest_owner_exec(k.name, BOOM_TRIGGER);
    send_three();
    w = ktest_worker_start(&k, extra);
    assert_bad_refused_good_applied();
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
}
END_TEST

START_TEST(test_worker_halts_on_internal_error)
{
    /* one batch: the three messages are on the topic before it starts */
    const char *halt[] = {
        "--threads", "1", "--batch-wait-ms", "2000", "--on-internal-error",
        "halt",      NULL};
    const char *cont[] = {"--threads", "1", NULL};
    pid_t w;
    int rc;

    itest_owner_exec(k.name, BOOM_TRIGGER);
    send_three();
    w = ktest_worker_start(&k, halt);
    rc = wait_exit(w, 60);
    if (rc < 0)
        ktest_worker_stop(w, SIGKILL);
    ck_assert_msg(rc == 3, "the worker exited with %d, not 3", rc);

    /* nothing of the batch committed: not even the command before it */
    ck_assert_int_le(itest_int(k.db, "SELECT COALESCE(max(next_offset), 0)"
                                     " FROM consumer_offsets"),
                     0);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM products"), 0);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM "
                                     "processed_commands"),
                     0);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM outbox"), 0);

    /* a worker that continues applies the same batch from the start */
    w = ktest_worker_start(&k, cont);
    assert_bad_refused_good_applied();
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
}
END_TEST

static void
setup(void)
{
    ktest_setup(&k, "internal_error", 1);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

static Suite *
internal_error_suite(void)
{
    Suite *s = suite_create("internal_error");
    TCase *tx = tcase_create("transaction");
    TCase *e2e = tcase_create("worker");

    tcase_add_test(tx, test_internal_error_in_one_transaction);
    tcase_add_test(tx, test_internal_error_in_pipelined_statement);
    suite_add_tcase(s, tx);
    tcase_set_timeout(e2e, 300);
    tcase_add_checked_fixture(e2e, setup, teardown);
    tcase_add_test(e2e, test_worker_continues_past_internal_error);
    tcase_add_test(e2e, test_worker_halts_on_internal_error);
    suite_add_tcase(s, e2e);
    return s;
}

int
main(void)
{
    return itest_run(internal_error_suite());
}
