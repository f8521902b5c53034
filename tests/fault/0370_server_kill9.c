/* 0370_server_kill9: the servers die hard while the worker drains the
 * fault model's stream (fault_model.h). First the Postgres postmaster is
 * SIGKILLed mid-stream (its backends follow; the next start runs crash
 * recovery), then the broker is SIGKILLed while the outbox publisher has
 * results to produce (KRaft recovers its log on the next start). The
 * worker never exits, reports not ready while Postgres is gone, and the
 * whole stream drains: every command decided once with the outcome the
 * model predicts, one result per message by event_id, stock = ledger =
 * model, `orderd check` clean, nothing left in the outbox.
 *
 * The test runs its own Postgres and broker (scripts/pg, scripts/kafka
 * with a private run dir and ports). ORDERD_FAULT_COMMANDS (default
 * 3000) scales it. */
#include "fault_model.h"

#include <signal.h>
#include <sys/mman.h>

static ktest_t k;
static fmodel_t m;
static char run_dir[256];
static char brokers[64];
static int pg_port, kafka_port;
static pid_t *workers; /* shared with the parent, for the teardown */

/* Runs scripts/pg or scripts/kafka `verb` on the private servers; with a
 * retry bound, until it succeeds (a start right after a SIGKILL may meet
 * the dead server's leftovers for a moment). */
static void
server(const char *script, const char *verb, int retry_s)
{
    int64_t end = od_mono_us() + (int64_t)retry_s * 1000000;
    int pg = strcmp(script, "pg") == 0;

    for (;;) {
        struct timespec ts = {1, 0};

        if (fm_script(run_dir, pg ? "ORDERD_PG_PORT" : "ORDERD_KAFKA_PORT",
                      pg ? pg_port : kafka_port, script, verb) == 0)
            return;
        ck_assert_msg(od_mono_us() < end, "scripts/%s %s failed (log: %s/%s)",
                      script, verb, run_dir, "script.log");
        nanosleep(&ts, NULL); /* between attempts */
    }
}

/* The pid in the first line of file (under the run dir). */
static pid_t
pid_from(const char *file)
{
    char path[512], line[64] = "";
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", run_dir, file);
    f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    fclose(f);
    ck_assert_int_gt(atoi(line), 1);
    return (pid_t)atoi(line);
}

/* Waits until pid is gone (it may be another user's child: kill -0). */
static void
wait_gone(pid_t pid, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;

    while (kill(pid, 0) == 0 || errno != ESRCH) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        ck_assert_msg(od_mono_us() < end, "pid %d survived SIGKILL", (int)pid);
        if (waitpid(pid, NULL, WNOHANG) == pid)
            break;            /* our own zombie */
        nanosleep(&ts, NULL); /* polling interval */
    }
}

START_TEST(test_servers_killed_hard)
{
    int total = 3000;
    const char *v = getenv("ORDERD_FAULT_COMMANDS");
    int port = fm_free_port(0);
    char addr[64], err[512];
    const char *extra[] = {"-X", "session.timeout.ms=6000", "--metrics-addr",
                           addr, NULL};
    pid_t w, victim;

    if (v != NULL && atoi(v) > 0)
        total = atoi(v);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    fm_init(&m, &k, total, 370);

    fm_generate(&m, total / 3);
    w = ktest_worker_start(&k, extra);
    workers[0] = w;
    ck_assert_msg(fm_wait_ready(port, 200, 60), "the worker never got ready");
    fm_wait_done(&k, total / 6, 90);

    /* the postmaster dies mid-stream, without a word to anyone */
    victim = pid_from("pg/data/postmaster.pid");
    ck_assert_int_eq(kill(victim, SIGKILL), 0);
    wait_gone(victim, 30);
    ck_assert_msg(fm_wait_ready(port, 503, 30),
                  "the worker still reports ready without Postgres");
    ck_assert_msg(fm_alive(w), "the worker exited when Postgres died");
    server("pg", "start", 60); /* crash recovery */
    ck_assert_msg(db_reconnect(k.db, err, sizeof(err)) == OD_OK, "%s", err);
    ck_assert_msg(fm_wait_ready(port, 200, 60),
                  "the worker is not ready again after crash recovery");
    fm_wait_done(&k, total / 3, 90);

    /* the broker dies while the publisher has results to produce */
    fm_generate(&m, total * 2 / 3);
    ck_assert_int_eq(ktest_wait_sql(&k,
                                    "SELECT (count(*) > 0)::int FROM outbox"
                                    " WHERE published_at IS NULL",
                                    1, 60),
                     1);
    victim = pid_from("kafka/kafka.pid");
    ck_assert_int_eq(kill(victim, SIGKILL), 0);
    wait_gone(victim, 30);
    ck_assert_msg(fm_alive(w), "the worker exited when the broker died");
    server("kafka", "start", 120); /* log recovery */
    ck_assert_msg(fm_alive(w), "the worker exited during the outage");

    fm_generate(&m, total);
    fm_wait_drained(&m, 180);
    ck_assert_msg(fm_alive(w), "the worker exited");
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    workers[0] = 0;

    fm_verify_db(&m);
    fm_verify_events(&m, 120);
    ck_assert_int_eq(ktest_wait_dlq(&k, m.npoison, 60), m.npoison);
    fm_free(&m);
}
END_TEST

/* Checked fixture: database, topics and clients on the private servers. */
static void
setup(void)
{
    fm_pg_use(run_dir, pg_port);
    setenv("ORDERD_TEST_BROKERS", brokers, 1);
    ktest_setup(&k, "server_kill9", 4);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

/* Unchecked fixture (in the runner's process, so it runs even when the
 * test fails): the private servers and any worker left behind. */
static void
servers_up(void)
{
    snprintf(run_dir, sizeof(run_dir), "/tmp/orderd-0370-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(run_dir));
    do {
        pg_port = fm_free_port(0);
        kafka_port = fm_free_port(1);
    } while (pg_port >= kafka_port && pg_port <= kafka_port + 3);
    snprintf(brokers, sizeof(brokers), "127.0.0.1:%d", kafka_port);
    workers = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(workers, MAP_FAILED);
    server("pg", "start", 0);
    server("kafka", "start", 0);
}

static void
servers_down(void)
{
    char cmd[400];

    if (workers != NULL && workers != MAP_FAILED && workers[0] > 0)
        kill(workers[0], SIGKILL); /* a failed test left it running */
    if (fm_script(run_dir, "ORDERD_KAFKA_PORT", kafka_port, "kafka", "stop") !=
        0)
        fprintf(stderr, "0370: could not stop the private broker\n");
    if (fm_script(run_dir, "ORDERD_PG_PORT", pg_port, "pg", "stop") != 0)
        fprintf(stderr, "0370: could not stop the private postgres\n");
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", run_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "0370: could not remove %s\n", run_dir);
}

static Suite *
kill9_suite(void)
{
    Suite *s = suite_create("server_kill9");
    TCase *tc = tcase_create("kill9");

    tcase_set_timeout(tc, 600);
    tcase_add_unchecked_fixture(tc, servers_up, servers_down);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_servers_killed_hard);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(kill9_suite());
}
