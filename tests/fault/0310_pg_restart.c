/* 0310_pg_restart: Postgres goes away while the worker drains a stream of
 * mixed commands: the cluster is stopped for a few seconds (the worker
 * keeps running, reports not ready, retries), started again, and later
 * every backend of the worker is terminated (57P01) while a batch waits
 * on a row the test holds. The worker process
 * never exits, and the whole stream drains by itself: every command
 * applied exactly once, one result per message, stock and statuses equal
 * to an independent model, every result on the events topic, `orderd
 * check` clean.
 *
 * The test runs its own Postgres (scripts/pg with a private run dir and
 * port): the shared cluster serves the tests running in parallel.
 * ORDERD_FAULT_COMMANDS (default 4000) scales it. */
#include "fault_model.h"

#include <signal.h>
#include <sys/mman.h>

static ktest_t k;
static fmodel_t m;
static char run_dir[256];
static int pg_port;
static pid_t *workers; /* shared with the parent, for the teardown */

static void
pg(const char *verb)
{
    ck_assert_msg(fm_script(run_dir, "ORDERD_PG_PORT", pg_port, "pg", verb) ==
                      0,
                  "scripts/pg %s failed (log: %s/script.log)", verb, run_dir);
}

static void
reconnect_test_db(void)
{
    char err[512];

    ck_assert_msg(db_reconnect(k.db, err, sizeof(err)) == OD_OK, "%s", err);
}

/* Waits for the outage to show (readiness false, retries counted), then
 * keeps Postgres down for the rest of `outage_ms`: the fault itself. */
static void
hold_outage(pid_t w, int port, long long retries_before, int64_t outage_ms)
{
    int64_t end = od_mono_us() + outage_ms * 1000;
    char buf[256];

    ck_assert_msg(fm_wait_ready(port, 503, 30),
                  "the worker still reports ready without Postgres");
    while (fm_metric(port, "orderd_batch_retries_total") <= retries_before) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        ck_assert_msg(od_mono_us() < end + 30 * 1000000LL,
                      "no batch retries counted during the outage");
        nanosleep(&ts, NULL); /* polling interval */
    }
    while (od_mono_us() < end) {
        struct timespec ts = {0, 100 * 1000 * 1000};

        ck_assert_msg(fm_alive(w), "the worker exited during the outage");
        nanosleep(&ts, NULL); /* the outage lasts this long */
    }
    ck_assert_int_eq(fm_http_get(port, "/healthz", buf, sizeof(buf)), 200);
    ck_assert_int_eq(fm_http_get(port, "/readyz", buf, sizeof(buf)), 503);
}

START_TEST(test_pg_outage_and_terminated_backends)
{
    int total = 4000;
    const char *v = getenv("ORDERD_FAULT_COMMANDS");
    int port = fm_free_port(0);
    char addr[64], sql[256], err[512], log_path[300];
    const char *extra[] = {"-X", "session.timeout.ms=6000", "--metrics-addr",
                           addr, NULL};
    long long retries;
    int holder_pid;
    db_t *holder;
    pid_t w;

    if (v != NULL && atoi(v) > 0)
        total = atoi(v);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    fm_init(&m, &k, total, 310);

    /* a first quarter, and the worker well into it */
    fm_generate(&m, total / 4);
    snprintf(log_path, sizeof(log_path), "%s/worker.log", run_dir);
    w = ktest_worker_start_logged(&k, extra, log_path);
    workers[0] = w;
    ck_assert_msg(fm_wait_ready(port, 200, 60), "the worker never got ready");
    fm_wait_done(&k, total / 8, 60);

    /* Postgres stops; the second quarter arrives during the outage */
    retries = fm_metric(port, "orderd_batch_retries_total");
    ck_assert_int_ge(retries, 0);
    pg("stop");
    fm_generate(&m, total / 2);
    hold_outage(w, port, retries, 3000);

    /* back: the worker resumes by itself */
    pg("start");
    reconnect_test_db();
    ck_assert_msg(fm_wait_ready(port, 200, 60),
                  "the worker is not ready again after Postgres came back");
    fm_wait_done(&k, total / 2, 90);

    /*
     * Every backend of the worker terminated mid-stream (57P01), with a
     * batch certainly in flight: a test transaction holds product 1, so
     * the batch that next touches it waits on the lock. Terminated while
     * idle instead, the worker would only notice on its next statement,
     * and whether that is a batch would be up to timing.
     */
    holder = db_connect(k.conninfo, err, sizeof(err));
    ck_assert_msg(holder != NULL, "%s", err);
    itest_exec(holder, "BEGIN");
    itest_exec(holder, "SELECT 1 FROM products WHERE id = 1 FOR UPDATE");
    holder_pid = (int)itest_int(holder, "SELECT pg_backend_pid()");
    fm_generate(&m, total * 3 / 4);
    /* a backend held up by the holder (not any lock wait: executors may
     * wait on each other's rows for a moment) */
    snprintf(sql, sizeof(sql),
             "SELECT (count(*) > 0)::int FROM pg_stat_activity WHERE %d ="
             " ANY (pg_blocking_pids(pid))",
             holder_pid);
    ck_assert_int_eq(ktest_wait_sql(&k, sql, 1, 60), 1);
    retries = fm_metric(port, "orderd_batch_retries_total");
    /* the holder goes too: its transaction ends, the lock with it */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM"
             " pg_stat_activity WHERE datname = current_database() AND"
             " pid <> pg_backend_pid()) x");
    ck_assert_int_ge(itest_int(k.db, sql), 3);
    db_destroy(holder);
    fm_generate(&m, total);

    fm_wait_drained(&m, 120);
    ck_assert_msg(fm_metric(port, "orderd_batch_retries_total") > retries,
                  "no batch was retried after its backend was terminated");
    ck_assert_msg(fm_alive(w), "the worker exited");
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    workers[0] = 0;

    fm_verify_db(&m);
    fm_verify_events(&m, 120);
    fm_free(&m);
}
END_TEST

/* Checked fixture (in the test's process): database, topics, clients on
 * the private cluster. */
static void
setup(void)
{
    fm_pg_use(run_dir, pg_port);
    ktest_setup(&k, "pg_restart", 4);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

/* Unchecked fixture (in the runner's process, so it runs even when the
 * test fails): the private cluster and any worker left behind. */
static void
cluster_up(void)
{
    snprintf(run_dir, sizeof(run_dir), "/tmp/orderd-0310-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(run_dir));
    pg_port = fm_free_port(0);
    workers = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(workers, MAP_FAILED);
    pg("start");
}

static void
cluster_down(void)
{
    char cmd[400];

    if (workers != NULL && workers != MAP_FAILED && workers[0] > 0)
        kill(workers[0], SIGKILL); /* a failed test left it running */
    snprintf(cmd, sizeof(cmd), "%s/worker.log", run_dir);
    fm_log_tail("0310", cmd);
    if (fm_script(run_dir, "ORDERD_PG_PORT", pg_port, "pg", "stop") != 0)
        fprintf(stderr, "0310: could not stop the private postgres\n");
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", run_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "0310: could not remove %s\n", run_dir);
}

static Suite *
pg_restart_suite(void)
{
    Suite *s = suite_create("pg_restart");
    TCase *tc = tcase_create("outage");

    tcase_set_timeout(tc, 600);
    tcase_add_unchecked_fixture(tc, cluster_up, cluster_down);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_pg_outage_and_terminated_backends);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(pg_restart_suite());
}
