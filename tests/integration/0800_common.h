/* 0800_common.h - the console tests' shop: a catalogue, seven orders
 * driven to every kind of end through the real worker, two rejections and
 * a hostile dead letter; the numbers the console and `orderd report` must
 * show for it; and a small HTTP client that sends headers and keeps the
 * answer's (0800_console.c, 0810_console_browser.c) */
#ifndef OD_0800_COMMON_H
#define OD_0800_COMMON_H

#include "../fault/fault_model.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/*
 * The shop, all prices without tax (no tax country: the default rate, 0):
 *   product 1  "Red kettle"  v-red   EUR 10.00
 *   product 2  "Blue cup"    v-blue  EUR  2.50
 *   product 3  "Tea tin"     v-red   JPY  500
 * The orders and where they end:
 *   O1  2 x p1          EUR 20.00  paid
 *   O2  1 x p2          EUR  2.50  paid, processed, shipped, delivered,
 *                                  refunded
 *   O3  1 x p1, 2 x p2  EUR 15.00  paid, then cancelled (refunded)
 *   O4  3 x p2          EUR  7.50  cancelled while pending
 *   O5  1 x p2          EUR  2.50  expired by the scheduler (ttl 2 s)
 *   O6  4 x p3          JPY 2000   paid
 *   O7  1 x p1          EUR 10.00  pending; a pay of 9.99 is rejected
 *                                  (amount_mismatch)
 * and a checkout of 1000 x p1 rejected (insufficient_stock), and one
 * message that is not JSON at all, with markup in it: a dead letter.
 */
#define C0800_O(n) "0800c0de-0000-4000-8000-00000000000" #n
#define C0800_POISON "<script>alert(\"dlq\")</script>&<b>not json"

/* the report of that shop (orders created today) */
#define C0800_ORDERS 7
#define C0800_EUR_GROSS 3750   /* O1 + O2 + O3 */
#define C0800_EUR_REFUNDS 1750 /* O2 + O3 */
#define C0800_EUR_PAID_ORDERS 3
#define C0800_JPY_GROSS 2000
#define C0800_CANCEL_RATE 0.2857 /* 2 of 7, four decimals down */
#define C0800_EXPIRY_RATE 0.1428 /* 1 of 7 */

static inline void c0800_sendf(ktest_t *k, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void
c0800_sendf(ktest_t *k, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    ktest_send_cmd(k, buf);
}

static inline void
c0800_checkout(ktest_t *k, const char *key, const char *id,
               const char *currency, const char *items, const char *extra)
{
    c0800_sendf(
        k,
        "{\"dedup_key\":\"%s\",\"type\":\"checkout\",\"actor\":"
        "{\"role\":\"customer\",\"id\":\"cust-%s\"},\"order_id\":\"%s\","
        "\"customer_id\":\"cust-%s\",\"currency\":\"%s\",\"items\":"
        "[%s]%s}",
        key, key, id, key, currency, items, extra);
}

static inline void
c0800_pay(ktest_t *k, const char *key, const char *id, long amount,
          const char *currency)
{
    c0800_sendf(k,
                "{\"dedup_key\":\"%s\",\"type\":\"pay\",\"actor\":{\"role\":"
                "\"payment\",\"id\":\"psp\"},\"order_id\":\"%s\","
                "\"payment_id\":\"pi-%s\",\"amount_cents\":%ld,"
                "\"currency\":\"%s\"}",
                key, id, key, amount, currency);
}

static inline void
c0800_admin(ktest_t *k, const char *key, const char *type, const char *id,
            const char *extra)
{
    c0800_sendf(k,
                "{\"dedup_key\":\"%s\",\"type\":\"%s\",\"actor\":{\"role\":"
                "\"admin\",\"id\":\"ops\"},\"order_id\":\"%s\"%s}",
                key, type, id, extra);
}

static inline void
c0800_wait(ktest_t *k, const char *sql, int64_t expected)
{
    int64_t got = ktest_wait_sql(k, sql, expected, 60);

    ck_assert_msg(got == expected, "%s: %lld, expected %lld", sql,
                  (long long)got, (long long)expected);
}

/* Builds the shop through the worker (running, with --expiry-interval
 * short enough to expire O5 within a minute). */
static inline void
c0800_shop(ktest_t *k)
{
    static const char *const products[] = {
        "\"product_id\":1,\"vendor_id\":\"v-red\",\"name\":\"Red kettle\","
        "\"sku\":\"KET-1\",\"currency\":\"EUR\",\"price_cents\":1000",
        "\"product_id\":2,\"vendor_id\":\"v-blue\",\"name\":\"Blue cup\","
        "\"sku\":\"CUP-2\",\"currency\":\"EUR\",\"price_cents\":250",
        "\"product_id\":3,\"vendor_id\":\"v-red\",\"name\":\"Tea tin\","
        "\"sku\":\"TEA-3\",\"currency\":\"JPY\",\"price_cents\":500",
    };

    for (size_t i = 0; i < 3; i++)
        c0800_sendf(k,
                    "{\"dedup_key\":\"p%zu\",\"type\":\"product_upsert\","
                    "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},%s,"
                    "\"kind\":\"simple\",\"stock\":100}",
                    i + 1, products[i]);
    ktest_flush(k);
    c0800_wait(k, "SELECT count(*) FROM products", 3);

    c0800_checkout(k, "o1", C0800_O(1), "EUR",
                   "{\"product_id\":1,\"quantity\":2}", "");
    c0800_checkout(k, "o2", C0800_O(2), "EUR",
                   "{\"product_id\":2,\"quantity\":1}", "");
    c0800_checkout(k, "o3", C0800_O(3), "EUR",
                   "{\"product_id\":1,\"quantity\":1},"
                   "{\"product_id\":2,\"quantity\":2}",
                   "");
    c0800_checkout(k, "o4", C0800_O(4), "EUR",
                   "{\"product_id\":2,\"quantity\":3}", "");
    c0800_checkout(k, "o5", C0800_O(5), "EUR",
                   "{\"product_id\":2,\"quantity\":1}", ",\"ttl_seconds\":2");
    c0800_checkout(k, "o6", C0800_O(6), "JPY",
                   "{\"product_id\":3,\"quantity\":4}", "");
    c0800_checkout(k, "o7", C0800_O(7), "EUR",
                   "{\"product_id\":1,\"quantity\":1}", "");
    c0800_checkout(k, "o8", "0800c0de-0000-4000-8000-000000000008", "EUR",
                   "{\"product_id\":1,\"quantity\":1000}", "");
    ktest_flush(k);
    c0800_wait(k,
               "SELECT count(*) FROM processed_commands"
               " WHERE dedup_key IN ('o1','o2','o3','o4','o5','o6','o7','o8')",
               8);
    ck_assert_int_eq(itest_int(k->db, "SELECT count(*) FROM orders"),
                     C0800_ORDERS);

    c0800_pay(k, "pay1", C0800_O(1), 2000, "EUR");
    c0800_pay(k, "pay2", C0800_O(2), 250, "EUR");
    c0800_pay(k, "pay3", C0800_O(3), 1500, "EUR");
    c0800_pay(k, "pay6", C0800_O(6), 2000, "JPY");
    c0800_pay(k, "pay7", C0800_O(7), 999, "EUR");
    c0800_admin(k, "cancel4", "cancel", C0800_O(4),
                ",\"reason\":\"changed mind\"");
    /* O2 through its whole life: one key, one partition, in order */
    c0800_admin(k, "proc2", "start_processing", C0800_O(2), "");
    c0800_admin(k, "ship2", "ship", C0800_O(2),
                ",\"tracking_number\":\"TN-2\"");
    c0800_admin(k, "deliver2", "deliver", C0800_O(2), "");
    c0800_admin(k, "refund2", "refund", C0800_O(2), ",\"restock\":true");
    c0800_admin(k, "cancel3", "cancel", C0800_O(3), "");
    ktest_send(k, "poison", C0800_POISON);
    ktest_flush(k);
    c0800_wait(k,
               "SELECT count(*) FROM orders WHERE (id, status) IN ("
               "('" C0800_O(1) "', 'paid'), ('" C0800_O(
                   2) "', 'refunded'),"
                      "('" C0800_O(3) "', 'cancelled'), ('" C0800_O(
                          4) "', 'cancelled'),"
                             "('" C0800_O(5) "', 'expired'), ('" C0800_O(
                                 6) "', 'paid'),"
                                    "('" C0800_O(7) "', 'pending'))",
               7);
    c0800_wait(k,
               "SELECT count(*) FROM processed_commands"
               " WHERE dedup_key = 'pay7' AND reason = 'amount_mismatch'",
               1);
    c0800_wait(k, "SELECT count(*) FROM outbox WHERE headers ? 'orderd-error'",
               1);
}

/*
 * One HTTP/1.0 request to 127.0.0.1:port with extra header lines (each
 * ending in \r\n; may be NULL). Returns the status (0: no answer); *resp
 * receives the whole answer, headers and body (caller frees), and *body
 * (may be NULL) points at its body.
 */
static inline int
c0800_http(int port, const char *path, const char *headers, char **resp,
           char **body)
{
    struct sockaddr_in sin;
    char req[4096];
    size_t n = 0, cap = 65536;
    ssize_t r;
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = 0;
    char *buf = malloc(cap), *b;

    ck_assert(buf != NULL && fd >= 0);
    buf[0] = '\0';
    *resp = buf;
    if (body != NULL)
        *body = buf;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return 0;
    }
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s\r\n",
             path, headers ? headers : "");
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return 0;
    }
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert(buf != NULL);
            *resp = buf;
        }
        r = read(fd, buf + n, cap - n - 1);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(fd);
    if (sscanf(buf, "HTTP/%*s %d", &status) != 1)
        return 0;
    b = strstr(buf, "\r\n\r\n");
    if (body != NULL)
        *body = b ? b + 4 : buf + n;
    return status;
}

/* GET path expecting 200 with a JSON body; returns it (caller decrefs). */
static inline json_t *
c0800_json(int port, const char *path)
{
    char *resp, *body;
    int st = c0800_http(port, path, NULL, &resp, &body);
    json_error_t je;
    json_t *j;

    ck_assert_msg(st == 200, "GET %s: %d %s", path, st, resp);
    j = json_loads(body, 0, &je);
    ck_assert_msg(j != NULL, "GET %s: not JSON (%s): %s", path, je.text, body);
    free(resp);
    return j;
}

#endif
