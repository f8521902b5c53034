/* 0810_console_browser: the console in a real headless browser. This
 * driver builds the shop of 0800_common.h through a worker with its
 * console on loopback, writes what `orderd report --format json` says of
 * it, and runs tests/browser/console.mjs (Debian's chromium through
 * playwright-core, installed by scripts/test with npm ci): the overview
 * lists every partition with its lag, draws the chart, shows rejections
 * by reason and keeps updating while the worker applies more; the order
 * page shows the receipt and history; the dead-letter page shows the
 * hostile payload as text; the analytics page shows the report's numbers;
 * no JavaScript error. With ORDERD_TEST_SCREENSHOTS_DIR set, the script
 * saves the three pages there (docs/console-*.png came from such a run). */
#include "0800_common.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>

static ktest_t k;
static pid_t *workers; /* shared with the runner process, for cleanup */

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

START_TEST(test_console_in_a_browser)
{
    int port = fm_free_port(0), rc;
    char addr[64], url[96], number[64], script[1200], modules[1200];
    char report_path[256], more_path[256], parts[16];
    const char *extra[] = {"--metrics-addr", addr, "--expiry-interval", "1s",
                           NULL};
    const char *rep_args[] = {"report", "--format", "json", NULL};
    const char *shots = getenv("ORDERD_TEST_SCREENSHOTS_DIR");
    char *out = NULL;
    struct stat st;
    pid_t node;
    int64_t end;

    snprintf(script, sizeof(script), "%s/tests/browser/console.mjs", fm_repo());
    snprintf(modules, sizeof(modules),
             "%s/tests/browser/node_modules/playwright-core", fm_repo());
    ck_assert_msg(stat(modules, &st) == 0,
                  "%s is missing: run npm ci in tests/browser (scripts/test "
                  "does)",
                  modules);
    ck_assert_msg(access("/usr/bin/chromium", X_OK) == 0,
                  "/usr/bin/chromium is missing: apt-get install chromium "
                  "(scripts/test does)");

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    snprintf(url, sizeof(url), "http://%s", addr);
    workers[0] = ktest_worker_start(&k, extra);
    c0800_shop(&k);

    ck_assert_int_eq(ktest_cli(&k, rep_args, &out), 0);
    snprintf(report_path, sizeof(report_path), "/tmp/orderd-0810-report-%d",
             (int)getpid());
    write_file(report_path, out);
    free(out);
    snprintf(more_path, sizeof(more_path), "/tmp/orderd-0810-more-%d",
             (int)getpid());
    write_file(more_path,
               "{\"dedup_key\":\"more1\",\"type\":\"stock_adjust\",\"actor\":"
               "{\"role\":\"admin\",\"id\":\"ops\"},\"product_id\":1,"
               "\"delta\":5,\"reason\":\"restock\"}\n"
               "{\"dedup_key\":\"more2\",\"type\":\"stock_adjust\",\"actor\":"
               "{\"role\":\"admin\",\"id\":\"ops\"},\"product_id\":2,"
               "\"delta\":5,\"reason\":\"restock\"}\n"
               "{\"dedup_key\":\"more3\",\"type\":\"stock_adjust\",\"actor\":"
               "{\"role\":\"admin\",\"id\":\"ops\"},\"product_id\":3,"
               "\"delta\":5,\"reason\":\"restock\"}\n");
    itest_text(k.db, "SELECT number FROM orders WHERE id = '" C0800_O(2) "'",
               number, sizeof(number));

    node = fork();
    ck_assert_int_ge(node, 0);
    if (node == 0) {
        /* the settings the orderd CLI of the script needs (ktest's own) */
        snprintf(parts, sizeof(parts), "%d", k.partitions);
        setenv("ORDERD_PG", k.conninfo, 1);
        setenv("ORDERD_BROKERS", k.brokers, 1);
        setenv("ORDERD_COMMANDS_TOPIC", k.commands, 1);
        setenv("ORDERD_EVENTS_TOPIC", k.events, 1);
        setenv("ORDERD_DLQ_TOPIC", k.dlq, 1);
        setenv("ORDERD_LOG_LEVEL", "warn", 1);
        setenv("CONSOLE_URL", url, 1);
        setenv("CONSOLE_REPORT", report_path, 1);
        setenv("CONSOLE_MORE_FILE", more_path, 1);
        setenv("CONSOLE_ORDER_NUMBER", number, 1);
        if (shots != NULL && shots[0] != '\0')
            setenv("CONSOLE_SCREENSHOTS", shots, 1);
        execlp("node", "node", script, (char *)NULL);
        fprintf(stderr, "exec node: %s\n", strerror(errno));
        _exit(127);
    }
    /* the script bounds its own waits; this bounds the whole of it */
    end = od_mono_us() + 120 * 1000000LL;
    for (;;) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        int status;

        if (waitpid(node, &status, WNOHANG) == node) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
            break;
        }
        if (od_mono_us() >= end) {
            kill(node, SIGKILL);
            waitpid(node, NULL, 0);
            rc = -1;
            break;
        }
        nanosleep(&ts, NULL); /* polling the script's exit, bounded */
    }
    unlink(report_path);
    unlink(more_path);
    ck_assert_msg(rc == 0,
                  "the browser test failed (exit %d; its output is "
                  "above)",
                  rc);
    ck_assert_int_eq(ktest_worker_stop(workers[0], SIGTERM), 0);
    workers[0] = 0;
}
END_TEST

static void
setup(void)
{
    ktest_setup(&k, "0810_console_browser", 2);
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
browser_suite(void)
{
    Suite *s = suite_create("console_browser");
    TCase *tc = tcase_create("browser");

    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, runner_up, runner_down);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_console_in_a_browser);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(browser_suite());
}
