/* 0350_kill_mid_write: the worker is SIGKILLed while a batch's set-based
 * write is running on the server (a trigger holds the orders INSERT for a
 * few seconds, and the test waits until the server shows it). The write
 * never commits: after a restart every command is applied exactly once,
 * with exactly one result, and stock equals the ledger. */
#include "../integration/0500_common.h"

#include <signal.h>

#define NCHECKOUTS 60

#define SLOW_TRIGGER                                                           \
    "CREATE FUNCTION it_slow() RETURNS trigger LANGUAGE plpgsql AS $$"         \
    " BEGIN IF NEW.customer_id = 'slow' THEN PERFORM pg_sleep(3); END IF;"     \
    " RETURN NEW; END $$;"                                                     \
    " CREATE TRIGGER it_slow BEFORE INSERT ON orders"                          \
    " FOR EACH ROW EXECUTE FUNCTION it_slow()"

static ktest_t k;

START_TEST(test_kill_during_the_write)
{
    char line[1024], oid[37], key[32];
    int64_t seen;
    pid_t w;

    itest_owner_exec(k.name, SLOW_TRIGGER);
    x_product_json(line, sizeof(line), 1, 100, 1000);
    ktest_send(&k, "1", line);
    for (int i = 0; i < NCHECKOUTS; i++) {
        x_uuid(350, i, oid);
        snprintf(key, sizeof(key), "co-%d", i);
        snprintf(line, sizeof(line),
                 "{\"dedup_key\":\"%s\",\"type\":\"checkout\",\"actor\":"
                 "{\"role\":\"system\",\"id\":\"shop\"},\"order_id\":\"%s\","
                 "\"customer_id\":\"%s\",\"currency\":\"EUR\",\"items\":"
                 "[{\"product_id\":1,\"quantity\":1}]}",
                 key, oid, i == NCHECKOUTS / 2 ? "slow" : "c");
        ktest_send(&k, "1", line);
    }
    ktest_flush(&k);
    w = ktest_worker_start(&k,
                           (const char *const[]){"--batch-size", "500", NULL});
    /* the batch's write is on the server, held by the trigger */
    seen = ktest_wait_sql(&k,
                          "SELECT count(*) FROM pg_stat_activity WHERE"
                          " application_name LIKE 'orderd-executor%'"
                          " AND wait_event = 'PgSleep'",
                          1, 60);
    ck_assert_int_eq(seen, 1);
    ck_assert_int_eq(ktest_worker_stop(w, SIGKILL), 128 + SIGKILL);
    /* nothing of that batch committed */
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM orders WHERE"
                                     " customer_id = 'slow'"),
                     0);

    w = ktest_worker_start(&k, NULL);
    ck_assert_int_eq(ktest_wait_results(&k, NCHECKOUTS + 1, 120),
                     NCHECKOUTS + 1);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    for (int i = 0; i < NCHECKOUTS; i++) {
        snprintf(key, sizeof(key), "co-%d", i);
        ck_assert_int_eq(ktest_count_results(&k, key), 1);
        ck_assert_str_eq(itest_outcome(ktest_result(&k, key, 0)), "applied");
    }
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM orders"),
                     NCHECKOUTS);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM processed_commands"),
                     NCHECKOUTS + 1);
    ck_assert_int_eq(itest_int(k.db, "SELECT stock FROM products WHERE id = 1"),
                     1000 - NCHECKOUTS);
    itest_assert_stock_matches_ledger(k.db);
    {
        const char *check[] = {"check", NULL};
        char *out = NULL;

        ck_assert_msg(ktest_cli(&k, check, &out) == 0, "orderd check: %s", out);
        free(out);
    }
}
END_TEST

static void
setup(void)
{
    ktest_setup(&k, "kill_mid_write", 1);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

int
main(void)
{
    Suite *s = suite_create("kill_mid_write");
    TCase *tc = tcase_create("kill");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_kill_during_the_write);
    suite_add_tcase(s, tc);
    return itest_run(s);
}
