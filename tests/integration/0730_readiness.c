/* 0730_readiness: /readyz tells the truth about the consumer group. A
 * worker whose broker cannot be reached is alive (/healthz 200) but not
 * ready (503, saying that its executors have not joined the group) and
 * says so in its log; a worker is ready once its executors have their
 * assignment, and a second process in the same group, left without any
 * partition, is ready too and says that it stands by. Rebalances are
 * counted per process, not per executor and callback. */
#include "../fault/fault_model.h"

#include <signal.h>
#include <sys/mman.h>

static ktest_t k;
static pid_t *workers; /* shared with the runner process, for cleanup */

/* Reads the file at path into buf (len bytes); "" when unreadable. */
static const char *
slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;

    buf[0] = '\0';
    if (f == NULL)
        return buf;
    n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Polls /readyz until its status is status and its body contains needle
 * (NULL: any), or timeout_s; 1 when it did. body receives the last one. */
static int
wait_readyz(int port, int status, const char *needle, char *body, size_t len,
            int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;

    for (;;) {
        struct timespec ts = {0, 100 * 1000 * 1000};

        if (fm_http_get(port, "/readyz", body, len) == status &&
            (needle == NULL || strstr(body, needle) != NULL))
            return 1;
        if (od_mono_us() >= end)
            return 0;
        nanosleep(&ts, NULL); /* polling interval */
    }
}

START_TEST(test_not_ready_before_the_group_join)
{
    int port = fm_free_port(0), nobody = fm_free_port(0);
    char addr[64], brokers[64], body[2048], log[256], text[65536];
    const char *extra[] = {"--brokers", brokers, "--metrics-addr", addr, NULL};
    int64_t end;
    pid_t w;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    snprintf(brokers, sizeof(brokers), "127.0.0.1:%d", nobody);
    snprintf(log, sizeof(log), "/tmp/orderd-0730-%d.log", (int)getpid());
    w = ktest_worker_start_logged(&k, extra, log);
    workers[0] = w;

    /* one reason per executor, once both are created */
    ck_assert_msg(wait_readyz(port, 503,
                              "orderd-executor-1 has not joined consumer group",
                              body, sizeof(body), 30),
                  "/readyz does not say that the group was not joined: %s",
                  body);
    ck_assert_msg(strstr(body, "orderd-executor-0 has not joined") != NULL,
                  "one reason per executor expected: %s", body);
    ck_assert_int_eq(fm_http_get(port, "/healthz", body, sizeof(body)), 200);
    /* it stays so, and says why in its log (first after 10 s, then
     * every 30 s) */
    end = od_mono_us() + 25 * 1000000LL;
    while (strstr(slurp(log, text, sizeof(text)), "not ready for") == NULL) {
        struct timespec ts = {0, 200 * 1000 * 1000};

        ck_assert_msg(od_mono_us() < end, "no not-ready warning in the log: %s",
                      text);
        ck_assert_msg(fm_alive(w), "the worker exited: %s", text);
        ck_assert_int_eq(fm_http_get(port, "/readyz", body, sizeof(body)), 503);
        nanosleep(&ts, NULL); /* polling the log */
    }
    ck_assert_msg(strstr(text, "has not joined consumer group") != NULL,
                  "the warning does not say why: %s", text);
    ck_assert_int_eq(fm_metric(port, "orderd_ready"), 0);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    workers[0] = 0;
    unlink(log);
}
END_TEST

START_TEST(test_ready_after_assignment_and_standby)
{
    int pa = fm_free_port(0), pb = fm_free_port(0);
    char aa[64], ab[64], body_a[2048], body_b[2048];
    const char *extra_a[] = {"--metrics-addr", aa, "--log-level", "info", NULL};
    char log[256], text[65536];
    const char *extra_b[] = {"--metrics-addr", ab, NULL};
    int64_t end;
    int standby, revokes = 0;
    long long rebalances;

    snprintf(aa, sizeof(aa), "127.0.0.1:%d", pa);
    snprintf(ab, sizeof(ab), "127.0.0.1:%d", pb);

    /* one partition, two executors: one holds it, the other has an
     * empty assignment; the process is ready and not standing by */
    snprintf(log, sizeof(log), "/tmp/orderd-0730-a-%d.log", (int)getpid());
    workers[0] = ktest_worker_start_logged(&k, extra_a, log);
    ck_assert_msg(wait_readyz(pa, 200, NULL, body_a, sizeof(body_a), 60),
                  "the worker never got ready: %s", body_a);
    ck_assert_str_eq(body_a, "ready\n");
    ck_assert_int_eq(fm_metric(pa, "orderd_assigned_partitions"), 1);
    ck_assert_int_eq(fm_metric(pa, "orderd_ready"), 1);
    ck_assert_int_ge(fm_metric(pa, "orderd_rebalances_total"), 1);

    /* a second process in the group: one of the two ends up with the
     * partition, the other ready and standing by */
    workers[1] = ktest_worker_start(&k, extra_b);
    end = od_mono_us() + 90 * 1000000LL;
    for (;;) {
        struct timespec ts = {0, 200 * 1000 * 1000};
        int ra = fm_http_get(pa, "/readyz", body_a, sizeof(body_a));
        int rb = fm_http_get(pb, "/readyz", body_b, sizeof(body_b));

        standby = (strstr(body_a, "standing by") != NULL) +
                  (strstr(body_b, "standing by") != NULL);
        if (ra == 200 && rb == 200 && standby == 1 &&
            fm_metric(pa, "orderd_assigned_partitions") +
                    fm_metric(pb, "orderd_assigned_partitions") ==
                1)
            break;
        ck_assert_msg(od_mono_us() < end,
                      "never settled with one process standing by: "
                      "A %d '%s', B %d '%s'",
                      ra, body_a, rb, body_b);
        nanosleep(&ts, NULL); /* polling interval */
    }
    /* A went through its first rebalance and the one B's join caused
     * (its partition was revoked), each counted once: after the first,
     * every count needs a revoke, so the count is at most the revokes
     * logged plus one (counting callbacks gave assignments + revokes) */
    rebalances = fm_metric(pa, "orderd_rebalances_total");
    ck_assert_int_ge(rebalances, 2);
    slurp(log, text, sizeof(text));
    for (const char *p = text; (p = strstr(p, "info revoked ")) != NULL; p++)
        revokes++;
    ck_assert_msg(rebalances <= revokes + 1,
                  "%lld rebalances counted for %d revokes", rebalances,
                  revokes);
    ck_assert_int_eq(ktest_worker_stop(workers[1], SIGTERM), 0);
    workers[1] = 0;
    ck_assert_int_eq(ktest_worker_stop(workers[0], SIGTERM), 0);
    workers[0] = 0;
    unlink(log);
}
END_TEST

static void
setup_two(void)
{
    ktest_setup(&k, "readiness", 2);
}

static void
setup_one(void)
{
    ktest_setup(&k, "readiness_standby", 1);
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
    for (int i = 0; i < 2; i++)
        if (workers[i] > 0)
            kill(workers[i], SIGKILL); /* a failed test left it running */
}

static Suite *
readiness_suite(void)
{
    Suite *s = suite_create("readiness");
    TCase *join = tcase_create("join");
    TCase *standby = tcase_create("standby");

    tcase_set_timeout(join, 300);
    tcase_add_unchecked_fixture(join, runner_up, runner_down);
    tcase_add_checked_fixture(join, setup_two, teardown);
    tcase_add_test(join, test_not_ready_before_the_group_join);
    suite_add_tcase(s, join);
    tcase_set_timeout(standby, 300);
    tcase_add_unchecked_fixture(standby, runner_up, runner_down);
    tcase_add_checked_fixture(standby, setup_one, teardown);
    tcase_add_test(standby, test_ready_after_assignment_and_standby);
    suite_add_tcase(s, standby);
    return s;
}

int
main(void)
{
    return itest_run(readiness_suite());
}
