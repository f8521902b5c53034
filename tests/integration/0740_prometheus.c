/* 0740_prometheus: a real Prometheus (Debian's package) scrapes a running
 * worker. The target comes up, and the series an operator alerts on are
 * there through Prometheus's query API: commands by outcome, rejections by
 * reason and type, dead-letter copies by class, a latency histogram's
 * _count, the lag of each partition, build_info. `promtool check metrics`
 * accepts a scrape (HELP and TYPE on every family, naming rules). */
#include "../fault/fault_model.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>

static ktest_t k;
static char dir[256];
static pid_t *pids; /* [0] worker, [1] prometheus: shared for cleanup */

/* A query's first sample value into out ("" when there is none);
 * returns the number of series, -1 when Prometheus did not answer. */
static int
prom_query(int port, const char *expr, char *out, size_t len)
{
    char path[1024], body[65536];
    size_t n;
    json_t *root, *result;
    int count;

    out[0] = '\0';
    n = (size_t)snprintf(path, sizeof(path), "/api/v1/query?query=");
    for (const char *p = expr; *p != '\0' && n + 4 < sizeof(path); p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || *p == '_')
            path[n++] = *p;
        else
            n += (size_t)snprintf(path + n, sizeof(path) - n, "%%%02X",
                                  (unsigned char)*p);
    }
    path[n] = '\0';
    if (fm_http_get(port, path, body, sizeof(body)) != 200)
        return -1;
    root = json_loads(body, 0, NULL);
    result = json_object_get(json_object_get(root, "data"), "result");
    if (!json_is_array(result)) {
        json_decref(root);
        return -1;
    }
    count = (int)json_array_size(result);
    if (count > 0)
        snprintf(out, len, "%s",
                 json_string_value(json_array_get(
                     json_object_get(json_array_get(result, 0), "value"), 1)));
    json_decref(root);
    return count;
}

/* Polls a query until its first value is want (NULL: until it has
 * nseries series) or timeout_s; fails the test otherwise. */
static void
expect_query(int port, const char *expr, const char *want, int nseries,
             int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;
    char v[64];
    int n;

    for (;;) {
        struct timespec ts = {0, 250 * 1000 * 1000};

        n = prom_query(port, expr, v, sizeof(v));
        if (want != NULL ? (n >= 1 && strcmp(v, want) == 0) : n == nseries)
            return;
        ck_assert_msg(od_mono_us() < end,
                      "%s: %d series, first value '%s' (want %s / %d series)",
                      expr, n, v, want ? want : "-", nseries);
        nanosleep(&ts, NULL); /* Prometheus scrapes every second */
    }
}

START_TEST(test_prometheus_scrapes_the_worker)
{
    int port = fm_free_port(0), pport = fm_free_port(0);
    char addr[64], path[512], cmd[1024], expr[512], body[65536];
    const char *extra[] = {"--metrics-addr", addr, NULL};
    int64_t end;
    pid_t prom;
    FILE *f;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    ck_assert_msg(system("command -v prometheus >/dev/null && "
                         "command -v promtool >/dev/null") == 0,
                  "prometheus and promtool are missing (scripts/test "
                  "installs Debian's prometheus package)");

    /* one applied, one rejected (a customer may not pay), one poison */
    ktest_send_cmd(&k, "{\"dedup_key\":\"p-1\",\"type\":\"tax_rate_set\","
                       "\"actor\":{\"role\":\"admin\",\"id\":\"a\"},"
                       "\"country\":\"DE\",\"rate_bps\":1900}");
    ktest_send_cmd(&k, "{\"dedup_key\":\"p-2\",\"type\":\"pay\",\"actor\":"
                       "{\"role\":\"customer\",\"id\":\"c\"},\"order_id\":"
                       "\"6f1c0e0e-8a5e-4c1b-9a55-3f7a9d2c1e10\","
                       "\"payment_id\":\"x\",\"amount_cents\":1,"
                       "\"currency\":\"EUR\"}");
    ktest_send(&k, "1", "not json");
    ktest_flush(&k);
    pids[0] = ktest_worker_start(&k, extra);
    ck_assert_int_eq(ktest_wait_results(&k, 2, 60), 2);
    ck_assert_int_eq(ktest_wait_dlq(&k, 1, 60), 1);

    /* Prometheus with its own config and data under the test's dir */
    snprintf(path, sizeof(path), "%s/prometheus.yml", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: orderd\n"
            "    static_configs:\n      - targets: ['%s']\n",
            addr);
    fclose(f);
    /* the pid goes into the shared page from the parent only: the child
     * writing its 0 there would make the cleanup signal everyone */
    prom = fork();
    ck_assert_int_ge(prom, 0);
    if (prom == 0) {
        char cfg[600], data[600], listen[64], logf[600];
        int fd;

        snprintf(cfg, sizeof(cfg), "--config.file=%s", path);
        snprintf(data, sizeof(data), "--storage.tsdb.path=%s/data", dir);
        snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d",
                 pport);
        snprintf(logf, sizeof(logf), "%s/prometheus.log", dir);
        fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execlp("prometheus", "prometheus", cfg, data, listen, (char *)NULL);
        _exit(127);
    }
    pids[1] = prom;

    /* the target is up */
    end = od_mono_us() + 60 * 1000000LL;
    for (;;) {
        struct timespec ts = {0, 250 * 1000 * 1000};

        if (fm_http_get(pport, "/api/v1/targets", body, sizeof(body)) == 200 &&
            strstr(body, "\"health\":\"up\"") != NULL)
            break;
        ck_assert_msg(fm_alive(pids[1]), "prometheus exited (log: %s)", dir);
        ck_assert_msg(od_mono_us() < end, "the target never came up: %s", body);
        nanosleep(&ts, NULL); /* polling Prometheus */
    }

    expect_query(pport, "orderd_commands_total{outcome=\"applied\"}", "1", 0,
                 30);
    expect_query(pport, "orderd_commands_total{outcome=\"rejected\"}", "2", 0,
                 30);
    expect_query(pport,
                 "orderd_rejections_total{reason=\"unauthorized\","
                 "type=\"pay\"}",
                 "1", 0, 30);
    expect_query(pport, "orderd_dlq_total{class=\"poison\"}", "1", 0, 30);
    expect_query(pport, "orderd_dlq_total{class=\"internal_error\"}", "0", 0,
                 30);
    expect_query(pport, "orderd_command_latency_seconds_count", "2", 0, 30);
    expect_query(pport, "orderd_batch_duration_seconds_count > 0", NULL, 1, 30);
    expect_query(pport, "orderd_publish_latency_seconds_count >= 3", NULL, 1,
                 30);
    /* one lag series per partition of the commands topic, all caught up */
    snprintf(expr, sizeof(expr), "orderd_consumer_lag{topic=\"%s\"} == 0",
             k.commands);
    expect_query(pport, expr, NULL, k.partitions, 30);
    expect_query(pport, "orderd_build_info{version!=\"\"}", "1", 0, 30);
    expect_query(pport, "orderd_outbox_backlog", "0", 0, 30);
    expect_query(pport, "process_open_fds > 0", NULL, 1, 30);

    /* the exposition itself passes promtool's checks */
    ck_assert_int_eq(fm_http_get(port, "/metrics", body, sizeof(body)), 200);
    snprintf(path, sizeof(path), "%s/scrape.txt", dir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(body, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s' >&2", path);
    ck_assert_msg(system(cmd) == 0, "promtool check metrics failed on %s",
                  path);

    ck_assert_int_eq(ktest_worker_stop(pids[0], SIGTERM), 0);
    pids[0] = 0;
    pids[1] = 0;
    ck_assert_int_eq(ktest_worker_stop(prom, SIGTERM), 0); /* prometheus */
}
END_TEST

static void
setup(void)
{
    ktest_setup(&k, "prometheus", 2);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

static void
runner_up(void)
{
    snprintf(dir, sizeof(dir), "/tmp/orderd-0740-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    pids = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                -1, 0);
    ck_assert_ptr_ne(pids, MAP_FAILED);
}

static void
runner_down(void)
{
    char cmd[400];

    /* a failed test left them running (children of the test's process:
     * this one can only signal them, and waits until they are gone) */
    for (int i = 0; i < 2; i++) {
        int64_t end = od_mono_us() + 10 * 1000000LL;

        if (pids[i] <= 0)
            continue;
        kill(pids[i], SIGKILL);
        while (kill(pids[i], 0) == 0 && od_mono_us() < end) {
            struct timespec ts = {0, 50 * 1000 * 1000};

            nanosleep(&ts, NULL); /* until the process is gone */
        }
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "0710: could not remove %s\n", dir);
}

static Suite *
prometheus_suite(void)
{
    Suite *s = suite_create("prometheus");
    TCase *tc = tcase_create("scrape");

    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, runner_up, runner_down);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_prometheus_scrapes_the_worker);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(prometheus_suite());
}
