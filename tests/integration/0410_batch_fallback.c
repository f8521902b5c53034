/* 0410_batch_fallback: a batch whose set-based write fails in a way its
 * snapshot could not predict (a trigger refusing one order) is rolled back
 * and applied again command by command: only the faulty command becomes
 * internal_error with its dead-letter copy, its neighbours in the batch
 * commit, each command has one result, and stock equals the ledger */
#include "0500_common.h"

#include <signal.h>

#define ORDERS_TRIGGER                                                         \
    "CREATE FUNCTION it_boom_order() RETURNS trigger LANGUAGE plpgsql AS $$"   \
    " BEGIN IF NEW.customer_id = 'boom' THEN"                                  \
    "  RAISE EXCEPTION 'boom' USING ERRCODE = 'XX000'; END IF;"                \
    " RETURN NEW; END $$;"                                                     \
    " CREATE TRIGGER it_boom_order BEFORE INSERT ON orders"                    \
    " FOR EACH ROW EXECUTE FUNCTION it_boom_order()"

static ktest_t k;

static void
checkout(const char *key, int n, const char *customer, int qty)
{
    char oid[37], msg[1024];

    x_uuid(410, n, oid);
    snprintf(msg, sizeof(msg),
             "{\"dedup_key\":\"%s\",\"type\":\"checkout\",\"actor\":"
             "{\"role\":\"system\",\"id\":\"shop\"},\"order_id\":\"%s\","
             "\"customer_id\":\"%s\",\"currency\":\"EUR\",\"items\":"
             "[{\"product_id\":1,\"quantity\":%d}]}",
             key, oid, customer, qty);
    ktest_send(&k, "1", msg);
}

START_TEST(test_the_faulty_command_alone_is_internal_error)
{
    char line[1024], log_path[128], *log = NULL;
    size_t len = 0;
    FILE *f;
    pid_t w;

    snprintf(log_path, sizeof(log_path), "/tmp/orderd-0410-%d.log",
             (int)getpid());
    itest_owner_exec(k.name, ORDERS_TRIGGER);
    x_product_json(line, sizeof(line), 1, 100, 50);
    ktest_send(&k, "1", line);
    /* all in one partition, sent before the worker starts: one batch */
    checkout("co-1", 1, "alice", 2);
    checkout("co-2", 2, "boom", 3);
    checkout("co-3", 3, "carol", 4);
    ktest_flush(&k);
    w = ktest_worker_start_logged(
        &k, (const char *const[]){"--batch-size", "50", NULL}, log_path);
    ck_assert_int_eq(ktest_wait_results(&k, 4, 90), 4);
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "co-1", 0)), "applied");
    ck_assert_str_eq(itest_reason(ktest_result(&k, "co-2", 0)),
                     "internal_error");
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "co-3", 0)), "applied");
    ck_assert_int_eq(ktest_count_results(&k, "co-2"), 1);
    ck_assert_int_eq(ktest_wait_dlq(&k, 1, 60), 1);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    /* the neighbours' stock taken, the faulty one's not */
    ck_assert_int_eq(itest_int(k.db, "SELECT stock FROM products WHERE id = 1"),
                     50 - 2 - 4);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM orders"), 2);
    itest_assert_stock_matches_ledger(k.db);
    /* and it was the batch's fallback that got there */
    f = fopen(log_path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(getdelim(&log, &len, '\0', f), 0);
    fclose(f);
    ck_assert_msg(strstr(log, "applying it command by command") != NULL,
                  "no fallback in the log:\n%s", log);
    free(log);
    unlink(log_path);
}
END_TEST

static void
setup(void)
{
    ktest_setup(&k, "batch_fallback", 1);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

int
main(void)
{
    Suite *s = suite_create("batch_fallback");
    TCase *tc = tcase_create("fallback");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_the_faulty_command_alone_is_internal_error);
    suite_add_tcase(s, tc);
    return itest_run(s);
}
