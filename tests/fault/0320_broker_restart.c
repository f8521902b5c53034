/* 0320_broker_restart: the Kafka broker is stopped and started again while
 * the worker drains a stream of mixed commands, with a batch in flight (it
 * waits on a row the test holds, and commits during the outage). The
 * worker sees the outage (its log) and keeps running through it (consumers
 * rejoin, the outbox publisher retries the results it could not send), and
 * everything drains: every command applied exactly once, one result per
 * message, stock and statuses equal to an independent model, the outbox
 * fully published, every result event on the events topic (deduplicated
 * by event_id: at least once, none lost), `orderd check` clean.
 *
 * The test runs its own broker (scripts/kafka with a private run dir and
 * port): the shared one serves the tests running in parallel. Its
 * database lives on the shared Postgres. ORDERD_FAULT_COMMANDS (default
 * 3000) scales it. */
#include "fault_model.h"

#include <signal.h>
#include <sys/mman.h>

static ktest_t k;
static fmodel_t m;
static char run_dir[256];
static char brokers[64];
static int kafka_port;
static pid_t *workers; /* shared with the parent, for the teardown */

static void
kafka(const char *verb)
{
    ck_assert_msg(
        fm_script(run_dir, "ORDERD_KAFKA_PORT", kafka_port, "kafka", verb) == 0,
        "scripts/kafka %s failed (log: %s/script.log)", verb, run_dir);
}

/* 1 once the worker's log holds needle (polled up to timeout_s). */
static int
log_has(const char *path, const char *needle, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;

    for (;;) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        FILE *f = fopen(path, "r");
        char line[2048];
        int found = 0;

        while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
            found = strstr(line, needle) != NULL;
        if (f != NULL)
            fclose(f);
        if (found)
            return 1;
        if (od_mono_us() >= end)
            return 0;
        nanosleep(&ts, NULL); /* polling interval */
    }
}

/* How many backends wait for a lock the holder (backend pid) holds. Not
 * any lock wait: the worker's executors may wait on each other's rows for
 * a moment (a pay on one partition, its checkout on another). */
static int64_t
held_up_by(int pid)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE %d = ANY"
             " (pg_blocking_pids(pid))",
             pid);
    return itest_int(k.db, sql);
}

START_TEST(test_broker_restart_mid_stream)
{
    int total = 3000;
    const char *v = getenv("ORDERD_FAULT_COMMANDS");
    const char *extra[] = {"-X", "session.timeout.ms=6000", NULL};
    char log_path[300], err[512], sql[256];
    int holder_pid;
    db_t *holder;
    pid_t w;

    if (v != NULL && atoi(v) > 0)
        total = atoi(v);
    fm_init(&m, &k, total, 320);
    snprintf(log_path, sizeof(log_path), "%s/worker.log", run_dir);

    fm_generate(&m, total / 3);
    w = ktest_worker_start_logged(&k, extra, log_path);
    workers[0] = w;
    fm_wait_done(&k, fm_total(&m), 60);

    /*
     * Work in flight when the broker goes: a test transaction holds
     * product 1, so the batch that next touches it waits, taken off the
     * topic but not applied. The broker stops under it; the batch then
     * commits during the outage, and its results cannot be published.
     */
    holder = db_connect(k.conninfo, err, sizeof(err));
    ck_assert_msg(holder != NULL, "%s", err);
    itest_exec(holder, "BEGIN");
    itest_exec(holder, "SELECT 1 FROM products WHERE id = 1 FOR UPDATE");
    holder_pid = (int)itest_int(holder, "SELECT pg_backend_pid()");
    fm_generate(&m, total * 2 / 3);
    snprintf(sql, sizeof(sql),
             "SELECT (count(*) > 0)::int FROM pg_stat_activity WHERE %d ="
             " ANY (pg_blocking_pids(pid))",
             holder_pid);
    ck_assert_int_eq(ktest_wait_sql(&k, sql, 1, 60), 1);
    /* the holder keeps its lock, so the batch keeps waiting */
    ck_assert_int_gt(held_up_by(holder_pid), 0);

    /* the broker goes away mid-stream */
    ck_assert_msg(!log_has(log_path, "kafka FAIL", 0),
                  "the worker lost the broker before it stopped");
    kafka("stop");
    ck_assert_msg(fm_alive(w), "the worker exited when the broker stopped");
    itest_exec(holder, "COMMIT");
    db_destroy(holder);
    /* the worker saw it: its clients failed to reach the broker, and the
     * batch it finished meanwhile stays unpublished */
    ck_assert_msg(log_has(log_path, "kafka FAIL", 60),
                  "the worker never logged losing the broker (%s)", log_path);
    ck_assert_int_eq(ktest_wait_sql(&k,
                                    "SELECT (count(*) > 0)::int FROM outbox"
                                    " WHERE published_at IS NULL",
                                    1, 60),
                     1);
    kafka("start");
    ck_assert_msg(fm_alive(w), "the worker exited during the outage");

    /* more commands through the restarted broker */
    fm_wait_done(&k, total / 2, 90);
    fm_generate(&m, total);

    fm_wait_drained(&m, 120);
    ck_assert_msg(fm_alive(w), "the worker exited");
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    workers[0] = 0;

    fm_verify_db(&m);
    fm_verify_events(&m, 120);
    ck_assert_int_eq(ktest_wait_dlq(&k, m.npoison, 60), m.npoison);
    fm_free(&m);
}
END_TEST

/* Checked fixture: database on the shared Postgres, topics and clients on
 * the private broker. */
static void
setup(void)
{
    setenv("ORDERD_TEST_BROKERS", brokers, 1);
    ktest_setup(&k, "broker_restart", 4);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

/* Unchecked fixture (in the runner's process, so it runs even when the
 * test fails): the private broker and any worker left behind. */
static void
broker_up(void)
{
    snprintf(run_dir, sizeof(run_dir), "/tmp/orderd-0320-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(run_dir));
    kafka_port = fm_free_port(1);
    snprintf(brokers, sizeof(brokers), "127.0.0.1:%d", kafka_port);
    workers = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(workers, MAP_FAILED);
    kafka("start");
}

static void
broker_down(void)
{
    char cmd[400];

    if (workers != NULL && workers != MAP_FAILED && workers[0] > 0)
        kill(workers[0], SIGKILL); /* a failed test left it running */
    snprintf(cmd, sizeof(cmd), "%s/worker.log", run_dir);
    fm_log_tail("0320", cmd);
    if (fm_script(run_dir, "ORDERD_KAFKA_PORT", kafka_port, "kafka", "stop") !=
        0)
        fprintf(stderr, "0320: could not stop the private broker\n");
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", run_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "0320: could not remove %s\n", run_dir);
}

static Suite *
broker_restart_suite(void)
{
    Suite *s = suite_create("broker_restart");
    TCase *tc = tcase_create("restart");

    tcase_set_timeout(tc, 600);
    tcase_add_unchecked_fixture(tc, broker_up, broker_down);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_broker_restart_mid_stream);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(broker_restart_suite());
}
