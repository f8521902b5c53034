/* 0750_pg_refused: Postgres refusing the worker for a reason waiting
 * cannot fix ends `orderd run` at start with exit status 5 and the reason
 * (the SQLSTATE included), never with the password: a wrong password
 * (28P01), a role that does not exist (28P01 too under password
 * authentication: the server does not tell), a database that does not
 * exist (3D000). A server that is not there at all is waited for
 * instead (0311). */
#include "../fault/fault_model.h"

#include <signal.h>
#include <sys/mman.h>

#define SECRET "Wr0ng-Secret-0720"

static ktest_t k;
static pid_t *workers; /* shared with the runner process, for cleanup */

/* Waits up to timeout_s for pid to exit; its exit status, or -1 when it
 * is still running. */
static int
wait_exit(pid_t pid, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;
    int status;

    while (od_mono_us() < end) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status)
                                     : 128 + WTERMSIG(status);
        nanosleep(&ts, NULL); /* polling the child's exit */
    }
    return -1;
}

/* Runs the worker with conninfo; checks its exit status and that its log
 * names sqlstate and never the secret. */
static void
expect_refused(const char *conninfo, const char *sqlstate)
{
    char log[256], text[16384] = "";
    const char *extra[] = {"--pg", conninfo, NULL};
    FILE *f;
    size_t n;
    int rc;

    snprintf(log, sizeof(log), "/tmp/orderd-0750-%d.log", (int)getpid());
    workers[0] = ktest_worker_start_logged(&k, extra, log);
    rc = wait_exit(workers[0], 30);
    if (rc < 0)
        kill(workers[0], SIGKILL);
    workers[0] = 0;
    f = fopen(log, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(log);
    ck_assert_msg(rc == 5, "%s: exit status %d, want 5; log:\n%s", sqlstate, rc,
                  text);
    ck_assert_msg(strstr(text, sqlstate) != NULL &&
                      strstr(text, "not retrying") != NULL,
                  "the log does not say why (%s):\n%s", sqlstate, text);
    ck_assert_msg(strstr(text, SECRET) == NULL, "the password was logged:\n%s",
                  text);
}

START_TEST(test_wrong_password)
{
    char info[1200];

    snprintf(info, sizeof(info), "%s password=" SECRET, k.conninfo);
    expect_refused(info, "28P01");
}
END_TEST

START_TEST(test_role_does_not_exist)
{
    char info[1200];

    snprintf(info, sizeof(info), "%s user=no_such_role_0720 password=" SECRET,
             k.conninfo);
    expect_refused(info, "28P01");
}
END_TEST

START_TEST(test_database_does_not_exist)
{
    char info[1200];

    /* the runtime role's own password (from the password file) is
     * right: only the database is missing */
    snprintf(info, sizeof(info), "%s dbname=no_such_db_0720", k.conninfo);
    expect_refused(info, "3D000");
}
END_TEST

static void
setup(void)
{
    ktest_setup(&k, "pg_refused", 1);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

static void
runner_up(void)
{
    workers = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(workers, MAP_FAILED);
}

static void
runner_down(void)
{
    if (workers[0] > 0)
        kill(workers[0], SIGKILL); /* a failed test left it running */
}

static Suite *
refused_suite(void)
{
    Suite *s = suite_create("pg_refused");
    TCase *tc = tcase_create("refused");

    tcase_set_timeout(tc, 120);
    tcase_add_unchecked_fixture(tc, runner_up, runner_down);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_wrong_password);
    tcase_add_test(tc, test_role_does_not_exist);
    tcase_add_test(tc, test_database_does_not_exist);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(refused_suite());
}
