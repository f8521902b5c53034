/* 0312_pg_down_idle: Postgres goes away while the worker is idle (no
 * command arrives, so no batch fails). /readyz must still turn 503 within
 * seconds, saying that Postgres does not answer, while /healthz stays 200
 * and the process stays up; when Postgres is back it is ready again by
 * itself. Private Postgres as in 0310. */
#include "fault_model.h"

#include <signal.h>
#include <sys/mman.h>

static ktest_t k;
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

START_TEST(test_idle_worker_notices_postgres_down)
{
    int port = fm_free_port(0);
    char addr[64], buf[2048];
    const char *extra[] = {"--metrics-addr", addr, NULL};
    int64_t end;
    pid_t w;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    w = ktest_worker_start(&k, extra);
    workers[0] = w;
    ck_assert_msg(fm_wait_ready(port, 200, 60), "the worker never got ready");

    pg("stop");
    /* the ping runs every second; an answer older than 5 s is stale */
    end = od_mono_us() + 15 * 1000000LL;
    for (;;) {
        struct timespec ts = {0, 100 * 1000 * 1000};

        if (fm_http_get(port, "/readyz", buf, sizeof(buf)) == 503)
            break;
        ck_assert_msg(od_mono_us() < end,
                      "still ready 15 s after Postgres stopped: %s", buf);
        nanosleep(&ts, NULL); /* polling interval */
    }
    ck_assert_msg(strstr(buf, "postgres has not answered") != NULL,
                  "the body does not say why: %s", buf);
    ck_assert_int_eq(fm_http_get(port, "/healthz", buf, sizeof(buf)), 200);
    ck_assert_int_eq(fm_metric(port, "orderd_ready"), 0);
    ck_assert_msg(fm_alive(w), "the worker exited without Postgres");

    pg("start");
    ck_assert_msg(db_reconnect(k.db, buf, sizeof(buf)) == OD_OK, "%s", buf);
    ck_assert_msg(fm_wait_ready(port, 200, 60),
                  "the worker is not ready again after Postgres came back");
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    workers[0] = 0;
}
END_TEST

/* Checked fixture (in the test's process): database, topics, clients on
 * the private cluster. */
static void
setup(void)
{
    fm_pg_use(run_dir, pg_port);
    ktest_setup(&k, "pg_down_idle", 2);
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
    snprintf(run_dir, sizeof(run_dir), "/tmp/orderd-0312-XXXXXX");
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
        fprintf(stderr, "0312: could not stop the private postgres\n");
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", run_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "0312: could not remove %s\n", run_dir);
}

static Suite *
pg_down_idle_suite(void)
{
    Suite *s = suite_create("pg_down_idle");
    TCase *tc = tcase_create("down_idle");

    tcase_set_timeout(tc, 600);
    tcase_add_unchecked_fixture(tc, cluster_up, cluster_down);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_idle_worker_notices_postgres_down);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(pg_down_idle_suite());
}
