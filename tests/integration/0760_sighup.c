/* 0760_sighup: SIGHUP (systemctl reload) never stops `orderd run`: the
 * worker says it re-read its log settings, keeps applying what arrives
 * after the signals, and still stops cleanly on SIGTERM */
#include "ktest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static ktest_t k;
static char log_path[128];

static void
setup(void)
{
    ktest_setup(&k, "sighup", 2);
    snprintf(log_path, sizeof(log_path), "/tmp/orderd-sighup-%d.log",
             (int)getpid());
}

static void
teardown(void)
{
    unlink(log_path);
    ktest_teardown(&k);
}

/* How often needle occurs in the worker's log so far. */
static int
log_count(const char *needle)
{
    FILE *f = fopen(log_path, "r");
    char line[4096];
    int n = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* Polls the log until needle occurs at least n times (bounded). */
static int
wait_log(const char *needle, int n, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;

    while (log_count(needle) < n && od_mono_us() < end) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        nanosleep(&ts, NULL); /* polling a file, bounded */
    }
    return log_count(needle);
}

/* a product_upsert with id as its key, product ID and SKU */
#define PRODUCT_FMT                                                            \
    "{\"dedup_key\":\"p%d\",\"type\":\"product_upsert\","                      \
    "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},\"product_id\":%d,"         \
    "\"vendor_id\":\"v1\",\"name\":\"Mug\",\"sku\":\"MUG-%d\","                \
    "\"currency\":\"EUR\",\"kind\":\"simple\",\"price_cents\":1192,"           \
    "\"stock\":10}"

static void
send_products(int from, int to)
{
    char cmd[512];

    for (int id = from; id <= to; id++) {
        snprintf(cmd, sizeof(cmd), PRODUCT_FMT, id, id, id);
        ktest_send_cmd(&k, cmd);
    }
    ktest_flush(&k);
}

START_TEST(test_sighup_keeps_applying)
{
    const char *extra[] = {"--log-level", "info", NULL};
    pid_t worker = ktest_worker_start_logged(&k, extra, log_path);
    int status;

    send_products(1, 5);
    ck_assert_int_eq(ktest_wait_results(&k, 5, 60), 5);

    /* three reloads in a row, one while commands arrive */
    for (int i = 1; i <= 3; i++) {
        ck_assert_int_eq(kill(worker, SIGHUP), 0);
        if (i == 2)
            send_products(6, 10);
        ck_assert_msg(wait_log("SIGHUP: log level info, format text", i, 30) >=
                          i,
                      "reload %d not logged", i);
    }
    ck_assert_msg(waitpid(worker, &status, WNOHANG) == 0,
                  "the worker exited on SIGHUP");

    /* it goes on applying what arrives after the signals */
    send_products(11, 15);
    ck_assert_int_eq(ktest_wait_results(&k, 15, 60), 15);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM products"), 15);
    ck_assert_int_eq(log_count("stopping"), 0);

    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("sighup");
    TCase *tc = tcase_create("reload");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_sighup_keeps_applying);
    suite_add_tcase(s, tc);
    return itest_run(s);
}
