/* 0300_kill_restart: the worker is SIGKILLed at random moments while it
 * drains the fault model's stream of mixed commands (fault_model.h:
 * multi-line checkouts of simple and variant products, stock that runs
 * out, pays and cancels, pays sent before their checkout on another
 * partition, producer retries, poison), restarted each time, and finally
 * drains everything. Every command must be applied exactly once with the
 * outcome and reason the model predicts, every message must have exactly
 * one result (a parked pay two), and the final stock and order statuses
 * must equal the model.
 *
 * ORDERD_FAULT_COMMANDS (default 20000) and ORDERD_FAULT_KILLS (default 10)
 * scale it. */
#include "fault_model.h"

#include <signal.h>

static ktest_t k;
static fmodel_t m;

static int
env_int(const char *name, int def)
{
    const char *v = getenv(name);

    return v != NULL && atoi(v) > 0 ? atoi(v) : def;
}

START_TEST(test_sigkill_loop_applies_everything_exactly_once)
{
    int total = env_int("ORDERD_FAULT_COMMANDS", 20000);
    int kills = env_int("ORDERD_FAULT_KILLS", 10);
    const char *extra[] = {"-X", "session.timeout.ms=6000", NULL};
    pid_t w;

    fm_init(&m, &k, total, 12345);
    fm_generate(&m, total);

    w = ktest_worker_start(&k, extra);
    for (int i = 1; i <= kills; i++) {
        /* a random moment inside the i-th slice of the stream */
        int64_t at = (int64_t)total * i / (kills + 1) +
                     fm_rnd(&m, total / (kills + 1) / 2 + 1);

        fm_wait_done(&k, at, 120);
        ck_assert_int_eq(ktest_worker_stop(w, SIGKILL), 128 + SIGKILL);
        w = ktest_worker_start(&k, extra);
    }
    fm_wait_drained(&m, 300);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);

    fm_verify_db(&m);
    fm_verify_events(&m, 120);
    ck_assert_int_eq(ktest_wait_dlq(&k, m.npoison, 60), m.npoison);
    fm_free(&m);
}
END_TEST

static void
setup(void)
{
    ktest_setup(&k, "kill_restart", 4);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

static Suite *
kill_suite(void)
{
    Suite *s = suite_create("kill_restart");
    TCase *tc = tcase_create("sigkill");

    tcase_set_timeout(tc, 900);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_sigkill_loop_applies_everything_exactly_once);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(kill_suite());
}
