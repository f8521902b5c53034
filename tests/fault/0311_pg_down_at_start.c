/* 0311_pg_down_at_start: the worker starts while Postgres is unreachable.
 * It must keep running (alive, /healthz answering, not ready), and once
 * Postgres is up the stream already waiting on the topic drains by
 * itself: exactly once, one result per message, stock and statuses equal
 * to an independent model, `orderd check` clean. Private Postgres as in
 * 0310. */
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

START_TEST(test_worker_waits_for_postgres)
{
    int total = 1500;
    int port = fm_free_port(0);
    char addr[64], buf[256];
    const char *extra[] = {"--metrics-addr", addr, NULL};
    int64_t end;
    pid_t w;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    fm_init(&m, &k, total, 311);
    fm_generate(&m, total);

    pg("stop");
    w = ktest_worker_start(&k, extra);
    workers[0] = w;
    /* an observation window: the worker must still be there after it */
    end = od_mono_us() + 3000 * 1000;
    while (od_mono_us() < end) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        ck_assert_msg(fm_alive(w),
                      "the worker exited because Postgres was down at start");
        nanosleep(&ts, NULL); /* the outage lasts this long */
    }
    ck_assert_int_eq(fm_http_get(port, "/healthz", buf, sizeof(buf)), 200);
    ck_assert_int_eq(fm_http_get(port, "/readyz", buf, sizeof(buf)), 503);

    pg("start");
    reconnect_test_db();
    ck_assert_msg(fm_wait_ready(port, 200, 60),
                  "the worker never got ready after Postgres came up");
    fm_wait_drained(&m, 120);
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
    ktest_setup(&k, "pg_down_at_start", 4);
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
    snprintf(run_dir, sizeof(run_dir), "/tmp/orderd-0311-XXXXXX");
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
    if (fm_script(run_dir, "ORDERD_PG_PORT", pg_port, "pg", "stop") != 0)
        fprintf(stderr, "0311: could not stop the private postgres\n");
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", run_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "0311: could not remove %s\n", run_dir);
}

static Suite *
pg_down_suite(void)
{
    Suite *s = suite_create("pg_down_at_start");
    TCase *tc = tcase_create("down_at_start");

    tcase_set_timeout(tc, 600);
    tcase_add_unchecked_fixture(tc, cluster_up, cluster_down);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_worker_waits_for_postgres);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(pg_down_suite());
}
