/* 0800_console: the operator console and `orderd report` against a shop
 * built through the real worker (0800_common.h). The report counts the
 * orders, revenue in minor units per currency, refunds, cancellation and
 * expiry rates, per vendor and top products as the test made them, and
 * /api/analytics says exactly the same; /api/status lists every partition
 * with its lag and the rejections by reason; an order's JSON and receipt
 * carry its items, totals, history, result events and the actions its
 * status allows (also in `orderd order`); /dlq shows a hostile payload
 * escaped; the console only reads. Off loopback the worker refuses to
 * start without a token; with a token every console url wants it (bearer
 * header, or the cookie a ?token= link hands off) while /healthz stays
 * open, and the token never reaches the log. */
#include "0800_common.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

static ktest_t k;
static pid_t *workers; /* shared with the runner process, for cleanup */

static const json_t *
revenue_of(const json_t *period, const char *currency)
{
    size_t i;
    json_t *r;

    json_array_foreach(
        json_object_get(period, "revenue"), i,
        r) if (strcmp(json_string_value(json_object_get(r, "currency")),
                      currency) == 0) return r;
    ck_abort_msg("no %s revenue", currency);
    return NULL;
}

static long long
jint(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);

    ck_assert_msg(json_is_integer(v), "%s is not an integer", key);
    return (long long)json_integer_value(v);
}

static const json_t *
vendor_row(const json_t *rep, const char *vendor, const char *currency)
{
    size_t i;
    json_t *v;

    json_array_foreach(
        json_object_get(rep, "vendors"), i,
        v) if (strcmp(json_string_value(json_object_get(v, "vendor_id")),
                      vendor) == 0 &&
               strcmp(json_string_value(json_object_get(v, "currency")),
                      currency) == 0) return v;
    ck_abort_msg("no vendor row %s %s", vendor, currency);
    return NULL;
}

static void
check_report(const json_t *rep)
{
    const json_t *t = json_object_get(rep, "totals"), *mix, *eur, *jpy, *v;
    const json_t *top;

    ck_assert_int_eq(jint(t, "orders"), C0800_ORDERS);
    mix = json_object_get(t, "status");
    ck_assert_int_eq(jint(mix, "paid"), 2);
    ck_assert_int_eq(jint(mix, "refunded"), 1);
    ck_assert_int_eq(jint(mix, "cancelled"), 2);
    ck_assert_int_eq(jint(mix, "expired"), 1);
    ck_assert_int_eq(jint(mix, "pending"), 1);
    eur = revenue_of(t, "EUR");
    ck_assert_int_eq(jint(eur, "gross_cents"), C0800_EUR_GROSS);
    ck_assert_int_eq(jint(eur, "refunds_cents"), C0800_EUR_REFUNDS);
    ck_assert_int_eq(jint(eur, "net_cents"),
                     C0800_EUR_GROSS - C0800_EUR_REFUNDS);
    ck_assert_int_eq(jint(eur, "paid_orders"), C0800_EUR_PAID_ORDERS);
    ck_assert_int_eq(jint(eur, "refunded_orders"), 2);
    ck_assert_int_eq(jint(eur, "exponent"), 2);
    jpy = revenue_of(t, "JPY");
    ck_assert_int_eq(jint(jpy, "gross_cents"), C0800_JPY_GROSS);
    ck_assert_int_eq(jint(jpy, "exponent"), 0);
    ck_assert_double_eq_tol(
        json_real_value(json_object_get(t, "cancellation_rate")),
        C0800_CANCEL_RATE, 1e-9);
    ck_assert_double_eq_tol(json_real_value(json_object_get(t, "expiry_rate")),
                            C0800_EXPIRY_RATE, 1e-9);
    /* four orders were paid, each after its checkout */
    ck_assert_int_eq(jint(json_object_get(t, "time_to_payment"), "paid"), 4);
    ck_assert(json_real_value(json_object_get(
                  json_object_get(t, "time_to_payment"), "median_s")) >= 0);
    /* one period: every order was created today */
    ck_assert_int_eq(json_array_size(json_object_get(rep, "periods")), 1);

    /* per vendor: items without tax */
    v = vendor_row(rep, "v-red", "EUR");
    ck_assert_int_eq(jint(v, "orders"), 3);           /* O1, O3, O7 */
    ck_assert_int_eq(jint(v, "gross_cents"), 3000);   /* O1 2000, O3 1000 */
    ck_assert_int_eq(jint(v, "refunds_cents"), 1000); /* O3 */
    v = vendor_row(rep, "v-blue", "EUR");
    ck_assert_int_eq(jint(v, "orders"), 4);        /* O2, O3, O4, O5 */
    ck_assert_int_eq(jint(v, "gross_cents"), 750); /* O2 250, O3 500 */
    ck_assert_int_eq(jint(v, "refunds_cents"), 750);
    ck_assert_int_eq(jint(v, "cancelled"), 2);
    ck_assert_int_eq(jint(v, "expired"), 1);
    v = vendor_row(rep, "v-red", "JPY");
    ck_assert_int_eq(jint(v, "gross_cents"), 2000);

    /* top products of the paid orders: most units first */
    top = json_object_get(rep, "top_products");
    ck_assert_int_eq(json_array_size(top), 3);
    ck_assert_int_eq(jint(json_array_get(top, 0), "product_id"), 3);
    ck_assert_int_eq(jint(json_array_get(top, 0), "quantity"), 4);
    ck_assert_int_eq(jint(json_array_get(top, 1), "product_id"), 1);
    ck_assert_int_eq(jint(json_array_get(top, 1), "revenue_cents"), 3000);
    ck_assert_int_eq(jint(json_array_get(top, 2), "product_id"), 2);
    ck_assert_int_eq(jint(json_array_get(top, 2), "quantity"), 3);
}

/* Polls /api/status until every partition has lag 0 and the rejections
 * are counted; returns the last status (caller decrefs). */
static json_t *
settled_status(int port)
{
    int64_t end = od_mono_us() + 60 * 1000000LL;

    for (;;) {
        json_t *s = c0800_json(port, "/api/status"), *p;
        size_t i;
        int settled = json_array_size(json_object_get(s, "partitions")) == 2 &&
                      json_array_size(json_object_get(s, "rejections")) >= 2;
        struct timespec ts = {0, 200 * 1000 * 1000};

        json_array_foreach(json_object_get(s, "partitions"), i, p) settled =
            settled && json_integer_value(json_object_get(p, "lag")) == 0 &&
            json_is_integer(json_object_get(p, "lag")) &&
            json_is_integer(json_object_get(p, "stored_offset"));
        if (settled)
            return s;
        if (od_mono_us() >= end) {
            char *d = json_dumps(s, JSON_INDENT(1));

            ck_abort_msg("the status never settled: %s", d);
        }
        json_decref(s);
        nanosleep(&ts, NULL); /* polling the status */
    }
}

static int
has_rejection(const json_t *s, const char *reason, const char *type)
{
    size_t i;
    json_t *r;

    json_array_foreach(
        json_object_get(s, "rejections"), i,
        r) if (strcmp(json_string_value(json_object_get(r, "reason")),
                      reason) == 0 &&
               strcmp(json_string_value(json_object_get(r, "type")), type) ==
                   0 &&
               json_integer_value(json_object_get(r, "count")) >= 1) return 1;
    return 0;
}

START_TEST(test_console_and_report_show_the_shop)
{
    int port = fm_free_port(0);
    char addr[64], path[512], from[64], to[64], number[64];
    const char *extra[] = {"--metrics-addr", addr, "--expiry-interval", "1s",
                           NULL};
    const char *rep_args[] = {"report", "--format", "json", NULL};
    const char *text_args[] = {"report", NULL};
    const char *blue_args[] = {"report",   "--format", "json",
                               "--vendor", "v-blue",   NULL};
    const char *order_args[] = {"order", C0800_O(1), NULL};
    const char *bad_args[] = {"report", "--from", "yesterday-ish", NULL};
    char *out = NULL, *resp, *body;
    json_t *rep, *api, *s, *p, *o, *a;
    size_t i;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    workers[0] = ktest_worker_start(&k, extra);
    c0800_shop(&k);

    /* orderd report, JSON: the numbers the test made */
    ck_assert_int_eq(ktest_cli(&k, rep_args, &out), 0);
    rep = json_loads(out, 0, NULL);
    ck_assert_msg(rep != NULL, "report is not JSON: %s", out);
    free(out);
    check_report(rep);

    /* the console's analytics for the same window say exactly the same */
    snprintf(from, sizeof(from), "%s",
             json_string_value(json_object_get(rep, "from")));
    snprintf(to, sizeof(to), "%s",
             json_string_value(json_object_get(rep, "to")));
    snprintf(path, sizeof(path), "/api/analytics?by=day&from=%s&to=%s", from,
             to);
    api = c0800_json(port, path);
    check_report(api);
    ck_assert(json_equal(json_object_get(api, "totals"),
                         json_object_get(rep, "totals")));
    ck_assert(json_equal(json_object_get(api, "periods"),
                         json_object_get(rep, "periods")));
    ck_assert(json_equal(json_object_get(api, "vendors"),
                         json_object_get(rep, "vendors")));
    ck_assert(json_equal(json_object_get(api, "top_products"),
                         json_object_get(rep, "top_products")));
    json_decref(api);
    json_decref(rep);

    /* text: major units, the currency's own exponent */
    ck_assert_int_eq(ktest_cli(&k, text_args, &out), 0);
    ck_assert_msg(strstr(out, "gross 37.50 EUR, 2000 JPY") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "refunds 17.50 EUR, 0 JPY") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "cancelled 28.57%, expired 14.28%") != NULL, "%s",
                  out);
    free(out);

    /* one vendor: the orders holding its items */
    ck_assert_int_eq(ktest_cli(&k, blue_args, &out), 0);
    rep = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(rep);
    ck_assert_int_eq(jint(json_object_get(rep, "totals"), "orders"), 4);
    ck_assert_int_eq(json_array_size(json_object_get(rep, "vendors")), 1);
    json_decref(rep);
    free(out);
    ck_assert_int_eq(ktest_cli(&k, bad_args, NULL), 2);

    /* the overview's data: every partition with its lag, rejections by
     * reason and type, the dead letter, the scheduler */
    s = settled_status(port);
    json_array_foreach(json_object_get(s, "partitions"), i, p)
    {
        ck_assert_str_eq(json_string_value(json_object_get(p, "topic")),
                         k.commands);
        ck_assert(json_is_object(json_object_get(p, "holder")));
        ck_assert_int_eq(jint(p, "log_end"), jint(p, "stored_offset"));
    }
    ck_assert(has_rejection(s, "amount_mismatch", "pay"));
    ck_assert(has_rejection(s, "insufficient_stock", "checkout"));
    ck_assert_int_eq(jint(json_object_get(s, "dlq"), "in_outbox"), 1);
    ck_assert_int_ge(jint(json_object_get(s, "dlq"), "this_process"), 1);
    ck_assert(json_is_true(json_object_get(json_object_get(s, "scheduler"),
                                           "this_process_leads")));
    ck_assert(json_is_string(
        json_object_get(json_object_get(s, "scheduler"), "last_tick")));
    ck_assert(json_is_true(json_object_get(s, "ready")));
    ck_assert_int_ge(jint(json_object_get(s, "counters"), "applied"), 18);
    json_decref(s);

    /* an order as JSON: history, result events, what may happen next */
    o = c0800_json(port, "/api/orders/" C0800_O(1));
    ck_assert_str_eq(json_string_value(json_object_get(o, "status")), "paid");
    ck_assert_int_eq(jint(o, "total_cents"), 2000);
    ck_assert_int_eq(json_array_size(json_object_get(o, "history")), 2);
    ck_assert_int_eq(json_array_size(json_object_get(o, "results")), 2);
    json_array_foreach(json_object_get(o, "results"), i, p)
    {
        ck_assert_str_eq(json_string_value(json_object_get(p, "outcome")),
                         "applied");
        ck_assert_str_eq(json_string_value(json_object_get(
                             json_object_get(p, "event"), "type")),
                         "command.result");
    }
    a = json_object_get(o, "available_actions");
    ck_assert_int_eq(json_array_size(a), 2);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(a, 0), "command")),
        "start_processing");
    ck_assert_int_eq(
        json_array_size(json_object_get(json_array_get(a, 0), "roles")), 2);
    ck_assert_str_eq(
        json_string_value(json_object_get(json_array_get(a, 1), "command")),
        "cancel");
    json_decref(o);
    /* the same list in orderd order */
    ck_assert_int_eq(ktest_cli(&k, order_args, &out), 0);
    o = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(json_array_size(json_object_get(o, "available_actions")),
                     2);
    json_decref(o);
    free(out);

    /* the receipt of O2, by number */
    itest_text(k.db, "SELECT number FROM orders WHERE id = '" C0800_O(2) "'",
               number, sizeof(number));
    snprintf(path, sizeof(path), "/orders/%s", number);
    ck_assert_int_eq(c0800_http(port, path, NULL, &resp, &body), 200);
    ck_assert_msg(strstr(body, "Blue cup") != NULL, "%s", body);
    ck_assert_msg(strstr(body, "2.50 EUR") != NULL, "%s", body);
    ck_assert_msg(strstr(body, "delivered \xe2\x86\x92 refunded") != NULL, "%s",
                  body);
    ck_assert_msg(strstr(body, "admin ops") != NULL, "%s", body);
    ck_assert_msg(strstr(body, "refunded is a final status") != NULL, "%s",
                  body);
    ck_assert_msg(strstr(body, "placed (event time, UTC)") != NULL, "%s", body);
    free(resp);
    ck_assert_int_eq(
        c0800_http(port, "/orders/ORD-99999999", NULL, &resp, NULL), 404);
    free(resp);
    ck_assert_int_eq(
        c0800_http(port, "/orders/..%2f..%2fetc", NULL, &resp, NULL), 404);
    free(resp);

    /* the dead letter, escaped: text, never markup */
    ck_assert_int_eq(c0800_http(port, "/dlq", NULL, &resp, &body), 200);
    ck_assert_msg(strstr(body, "&lt;script&gt;alert(&quot;dlq&quot;)&lt;/"
                               "script&gt;&amp;&lt;b&gt;not json") != NULL,
                  "%s", body);
    ck_assert_msg(strstr(body, "<script>alert") == NULL, "%s", body);
    ck_assert_msg(strstr(body, "<b>not") == NULL, "%s", body);
    ck_assert_msg(strstr(resp, "Content-Security-Policy: default-src 'none'") !=
                      NULL,
                  "%s", resp);
    free(resp);
    o = c0800_json(port, "/api/dlq");
    p = json_array_get(json_object_get(o, "dead_letters"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(p, "key")), "poison");
    ck_assert_str_eq(json_string_value(json_object_get(p, "payload_preview")),
                     C0800_POISON);
    ck_assert_str_eq(json_string_value(json_object_get(p, "source_topic")),
                     k.commands);
    json_decref(o);

    /* read-only */
    {
        char *r2;
        int fd;
        struct sockaddr_in sin;
        const char req[] = "POST /api/status HTTP/1.0\r\nContent-Length: "
                           "0\r\n\r\n";
        char buf[512];
        ssize_t n;

        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sin.sin_port = htons((uint16_t)port);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
        ck_assert_int_eq(write(fd, req, sizeof(req) - 1),
                         (ssize_t)sizeof(req) - 1);
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        ck_assert_int_gt(n, 12);
        buf[n] = '\0';
        ck_assert_msg(strncmp(buf + 9, "405", 3) == 0, "%s", buf);
        ck_assert_int_eq(c0800_http(port, "/healthz", NULL, &r2, NULL), 200);
        free(r2);
    }

    ck_assert_int_eq(ktest_worker_stop(workers[0], SIGTERM), 0);
    workers[0] = 0;
}
END_TEST

/* Waits for pid to exit on its own within timeout_s; its status, or -1. */
static int
exit_within(pid_t pid, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;
    int status;

    while (od_mono_us() < end) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
        nanosleep(&ts, NULL); /* polling a child's exit, bounded */
    }
    return -1;
}

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

START_TEST(test_token)
{
    int port = fm_free_port(0);
    char addr[64], any[64], tokfile[256], log[256], text[65536];
    const char *open_args[] = {"--metrics-addr", any, NULL};
    const char *tok_args[] = {
        "--metrics-addr", addr, "--console-token-file", tokfile, "--log-level",
        "debug",          NULL};
    const char token[] = "s3cret-t0ken.0800";
    char *resp, *body;
    FILE *f;
    int rc;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    snprintf(any, sizeof(any), "0.0.0.0:%d", port);
    snprintf(tokfile, sizeof(tokfile), "/tmp/orderd-0800-token-%d",
             (int)getpid());
    snprintf(log, sizeof(log), "/tmp/orderd-0800-%d.log", (int)getpid());

    /* off loopback without a token: refused before it listens */
    workers[0] = ktest_worker_start_logged(&k, open_args, log);
    rc = exit_within(workers[0], 30);
    workers[0] = 0;
    slurp(log, text, sizeof(text));
    ck_assert_msg(rc == 2, "exit %d: %s", rc, text);
    ck_assert_msg(strstr(text, "not a loopback address") != NULL, "%s", text);

    f = fopen(tokfile, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "%s\n", token);
    fclose(f);
    workers[0] = ktest_worker_start_logged(&k, tok_args, log);
    ck_assert(fm_wait_ready(port, 200, 60));

    ck_assert_int_eq(c0800_http(port, "/", NULL, &resp, NULL), 401);
    free(resp);
    ck_assert_int_eq(c0800_http(port, "/api/status", NULL, &resp, NULL), 401);
    free(resp);
    ck_assert_int_eq(c0800_http(port, "/api/status",
                                "Authorization: Bearer wrong-token\r\n", &resp,
                                NULL),
                     401);
    free(resp);
    /* health and metrics stay open */
    ck_assert_int_eq(c0800_http(port, "/healthz", NULL, &resp, NULL), 200);
    free(resp);
    ck_assert_int_eq(c0800_http(port, "/api/status",
                                "Authorization: Bearer s3cret-t0ken.0800\r\n",
                                &resp, &body),
                     200);
    ck_assert_msg(strstr(body, "\"partitions\"") != NULL, "%s", body);
    free(resp);
    /* the hand-off: cookie set, token gone from the address */
    ck_assert_int_eq(
        c0800_http(port, "/?token=s3cret-t0ken.0800", NULL, &resp, NULL), 303);
    ck_assert_msg(strstr(resp, "Set-Cookie: orderd_console=s3cret-t0ken.0800;"
                               " Path=/; HttpOnly; SameSite=Strict") != NULL,
                  "%s", resp);
    ck_assert_msg(strstr(resp, "Location: /\r\n") != NULL, "%s", resp);
    free(resp);
    ck_assert_int_eq(c0800_http(port, "/dlq",
                                "Cookie: orderd_console=s3cret-t0ken.0800\r\n",
                                &resp, NULL),
                     200);
    free(resp);
    ck_assert_int_eq(c0800_http(port, "/?token=guess", NULL, &resp, NULL), 401);
    free(resp);

    ck_assert_int_eq(ktest_worker_stop(workers[0], SIGTERM), 0);
    workers[0] = 0;
    ck_assert_msg(strstr(slurp(log, text, sizeof(text)), token) == NULL,
                  "the token is in the log: %s", text);
    ck_assert_msg(strstr(text, "token required") != NULL, "%s", text);
    unlink(tokfile);
    unlink(log);
}
END_TEST

static void
setup(void)
{
    ktest_setup(&k, "0800_console", 2);
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
console_suite(void)
{
    Suite *s = suite_create("console");
    TCase *shop = tcase_create("shop");
    TCase *token = tcase_create("token");

    tcase_set_timeout(shop, 300);
    tcase_add_unchecked_fixture(shop, runner_up, runner_down);
    tcase_add_checked_fixture(shop, setup, teardown);
    tcase_add_test(shop, test_console_and_report_show_the_shop);
    suite_add_tcase(s, shop);
    tcase_set_timeout(token, 300);
    tcase_add_unchecked_fixture(token, runner_up, runner_down);
    tcase_add_checked_fixture(token, setup, teardown);
    tcase_add_test(token, test_token);
    suite_add_tcase(s, token);
    return s;
}

int
main(void)
{
    return itest_run(console_suite());
}
