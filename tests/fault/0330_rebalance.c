/* 0330_rebalance: several `orderd run` processes share the consumer group
 * while a stream of mixed commands drains, and members come and go: one
 * is SIGKILLed (its partitions move after the session timeout), others
 * join, one leaves with SIGTERM (it finishes its batch and leaves
 * cleanly). Partitions move several times. Every command must be applied
 * exactly once, every message must get exactly one result, stock and
 * statuses must equal an independent model, `orderd check` clean.
 *
 * ORDERD_FAULT_COMMANDS (default 10000) scales it. */
#include "fault_model.h"

#include <signal.h>
#include <sys/mman.h>

#define MAX_WORKERS 8

static ktest_t k;
static fmodel_t m;
static pid_t *workers; /* shared with the parent, for the teardown */
static int nworkers;

static const char *const worker_args[] = {"--threads", "1", "-X",
                                          "session.timeout.ms=6000", NULL};

static int
join(void)
{
    ck_assert_int_lt(nworkers, MAX_WORKERS);
    workers[nworkers] = ktest_worker_start(&k, worker_args);
    return nworkers++;
}

static void
leave(int i, int sig)
{
    int rc = ktest_worker_stop(workers[i], sig);

    workers[i] = 0;
    if (sig == SIGKILL)
        ck_assert_int_eq(rc, 128 + SIGKILL);
    else
        ck_assert_msg(rc == 0, "worker %d exited with %d on SIGTERM", i, rc);
}

START_TEST(test_members_come_and_go)
{
    int total = 10000;
    const char *v = getenv("ORDERD_FAULT_COMMANDS");
    int a, b, c, d, e;

    if (v != NULL && atoi(v) > 0)
        total = atoi(v);
    fm_init(&m, &k, total, 330);
    fm_generate(&m, total);

    a = join();
    b = join();
    fm_wait_done(&k, total * 15 / 100, 120);
    leave(a, SIGKILL);
    c = join();
    fm_wait_done(&k, total * 35 / 100, 120);
    leave(b, SIGTERM);
    d = join();
    fm_wait_done(&k, total * 55 / 100, 120);
    leave(c, SIGKILL);
    e = join();
    fm_wait_done(&k, total * 75 / 100, 120);
    leave(d, SIGTERM);

    fm_wait_drained(&m, 120);
    ck_assert_msg(fm_alive(workers[e]), "the last worker exited");
    leave(e, SIGTERM);

    fm_verify_db(&m);
    fm_verify_events(&m, 120);
    fm_free(&m);
}
END_TEST

static void
setup(void)
{
    ktest_setup(&k, "rebalance", 6);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

static void
table_up(void)
{
    workers = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(workers, MAP_FAILED);
}

/* in the runner's process: workers a failed test left running */
static void
table_down(void)
{
    for (int i = 0; i < MAX_WORKERS; i++)
        if (workers[i] > 0)
            kill(workers[i], SIGKILL);
    munmap(workers, 4096);
}

static Suite *
rebalance_suite(void)
{
    Suite *s = suite_create("rebalance");
    TCase *tc = tcase_create("members");

    tcase_set_timeout(tc, 600);
    tcase_add_unchecked_fixture(tc, table_up, table_down);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_members_come_and_go);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(rebalance_suite());
}
