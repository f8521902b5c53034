/* 0500_common.h - helpers shared by the expiry, deferral, replay and
 * recovery tests (0500 to 0599): command builders, event lookups on the
 * events topic and in the outbox, SQL helpers, database fingerprints */
#ifndef OD_0500_COMMON_H
#define OD_0500_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ktest.h"

/* deterministic order ids: 00000000-0000-4000-8000-<tag><12 digits> */
static inline void
x_uuid(int tag, int i, char out[37])
{
    snprintf(out, 37, "00000000-0000-4000-8%03u-%012u", (unsigned)tag % 1000u,
             (unsigned)i);
}

static inline const char *
x_time(int64_t us, char *buf, size_t len)
{
    return od_format_time(us, buf, len);
}

static inline int64_t x_intf(db_t *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline int64_t
x_intf(db_t *db, const char *fmt, ...)
{
    char sql[8192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return itest_int(db, sql);
}

static inline const char *x_textf(db_t *db, char *buf, size_t len,
                                  const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline const char *
x_textf(db_t *db, char *buf, size_t len, const char *fmt, ...)
{
    char sql[8192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return itest_text(db, sql, buf, len);
}

static inline int64_t x_waitf(ktest_t *k, int64_t expected, int timeout_s,
                              const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* polls an integer query until it equals expected (or the timeout) */
static inline int64_t
x_waitf(ktest_t *k, int64_t expected, int timeout_s, const char *fmt, ...)
{
    char sql[8192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return ktest_wait_sql(k, sql, expected, timeout_s);
}

/* the body of a simple EUR product with its stock */
static inline void
x_product_json(char *buf, size_t len, int id, int64_t price, int64_t stock)
{
    snprintf(buf, len,
             "{\"dedup_key\":\"prod-%d\",\"type\":\"product_upsert\","
             "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},"
             "\"product_id\":%d,\"vendor_id\":\"v%d\",\"name\":\"P%d\","
             "\"sku\":\"SKU-%d\",\"currency\":\"EUR\",\"kind\":\"simple\","
             "\"price_cents\":%" PRId64 ",\"stock\":%" PRId64 "}",
             id, id, id, id, id, price, stock);
}

/* a one-line checkout; ttl_s 0: the default ttl; issued_us 0: none */
static inline void
x_checkout_json(char *buf, size_t len, const char *key, const char *order_id,
                int product, int qty, int ttl_s, int64_t issued_us)
{
    char ttl[32] = "", issued[80] = "", at[40];
    int n;

    if (ttl_s > 0)
        snprintf(ttl, sizeof(ttl), ",\"ttl_seconds\":%d", ttl_s);
    if (issued_us > 0)
        snprintf(issued, sizeof(issued), ",\"issued_at\":\"%s\"",
                 x_time(issued_us, at, sizeof(at)));
    n = snprintf(buf, len,
                 "{\"dedup_key\":\"%s\",\"type\":\"checkout\","
                 "\"actor\":{\"role\":\"system\",\"id\":\"shop\"}%s,"
                 "\"order_id\":\"%s\",\"customer_id\":\"c1\","
                 "\"currency\":\"EUR\",\"items\":[{\"product_id\":%d,"
                 "\"quantity\":%d}]%s}",
                 key, issued, order_id, product, qty, ttl);
    ck_assert_int_lt(n, (int)len);
}

/* a payment; issued_us 0: no issued_at (the Kafka timestamp counts) */
static inline void
x_pay_json(char *buf, size_t len, const char *key, const char *order_id,
           int64_t amount, int64_t issued_us)
{
    char issued[80] = "", at[40];
    int n;

    if (issued_us > 0)
        snprintf(issued, sizeof(issued), ",\"issued_at\":\"%s\"",
                 x_time(issued_us, at, sizeof(at)));
    n = snprintf(buf, len,
                 "{\"dedup_key\":\"%s\",\"type\":\"pay\","
                 "\"actor\":{\"role\":\"payment\",\"id\":\"psp\"}%s,"
                 "\"order_id\":\"%s\",\"payment_id\":\"pi-%s\","
                 "\"amount_cents\":%" PRId64 ",\"currency\":\"EUR\"}",
                 key, issued, order_id, key, amount);
    ck_assert_int_lt(n, (int)len);
}

/* Reads the events topic for about a second (more results and other
 * events are collected on the way). */
static inline void
x_read_events(ktest_t *k)
{
    ktest_wait_results(k, INT_MAX, 1);
}

/* How many distinct non-result events of a type name the order (events
 * read so far). */
static inline int
x_count_other(ktest_t *k, const char *type, const char *order_id)
{
    size_t i;
    json_t *ev;
    int n = 0;

    json_array_foreach(k->other, i, ev)
    {
        const char *t = json_string_value(json_object_get(ev, "type"));
        const char *o = json_string_value(json_object_get(ev, "order_id"));

        if (t != NULL && strcmp(t, type) == 0 &&
            (order_id == NULL || (o != NULL && strcmp(o, order_id) == 0)))
            n++;
    }
    return n;
}

/* Reads the events topic until n events of the type for the order have
 * arrived or the timeout; returns how many. */
static inline int
x_wait_other(ktest_t *k, const char *type, const char *order_id, int n,
             int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;

    while (x_count_other(k, type, order_id) < n && od_mono_us() < end)
        x_read_events(k);
    return x_count_other(k, type, order_id);
}

/* Reads the events topic until the dedup key has n results or the
 * timeout; returns how many. */
static inline int
x_wait_key(ktest_t *k, const char *dedup_key, int n, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;

    while (ktest_count_results(k, dedup_key) < n && od_mono_us() < end)
        x_read_events(k);
    return ktest_count_results(k, dedup_key);
}

/* outbox rows of the events topic of a type (all, or naming an order) */
static inline int64_t
x_outbox_events(ktest_t *k, const char *type, const char *order_id)
{
    if (order_id == NULL)
        return x_intf(k->db,
                      "SELECT count(*) FROM outbox WHERE topic = '%s' AND"
                      " convert_from(payload, 'UTF8')::jsonb->>'type' = '%s'",
                      k->events, type);
    return x_intf(k->db,
                  "SELECT count(*) FROM outbox WHERE topic = '%s' AND"
                  " convert_from(payload, 'UTF8')::jsonb->>'type' = '%s' AND"
                  " convert_from(payload, 'UTF8')::jsonb->>'order_id' = '%s'",
                  k->events, type, order_id);
}

/* the details.<name> string of a result ("" when absent) */
static inline const char *
x_detail(const json_t *ev, const char *name)
{
    const char *s = json_string_value(
        json_object_get(json_object_get(ev, "details"), name));

    return s ? s : "";
}

/* sum of the stored offsets of the test's group */
static inline int64_t
x_offsets_sum(ktest_t *k)
{
    return x_intf(k->db,
                  "SELECT COALESCE(sum(next_offset), 0) FROM consumer_offsets"
                  " WHERE grp = '%s' AND topic = '%s'",
                  k->group, k->commands);
}

/* "p:offset,p:offset..." of the test's group */
static inline const char *
x_offsets(ktest_t *k, char *buf, size_t len)
{
    return x_textf(k->db, buf, len,
                   "SELECT COALESCE(string_agg(partition || ':' ||"
                   " next_offset, ',' ORDER BY partition), '')"
                   " FROM consumer_offsets WHERE grp = '%s' AND topic = '%s'",
                   k->group, k->commands);
}

/*
 * A fingerprint of everything a replay or a restore must leave equal: the
 * orders (without the human number, which depends on the apply order
 * across partitions), their items, stock per product, ledger per
 * product/reason/order, history per order, dedup outcomes (but for the
 * harmless "x-trigger-" commands a test may add on purpose).
 */
static inline const char *
x_fingerprint(db_t *db, char *buf, size_t len)
{
    return itest_text(
        db,
        "SELECT md5(concat_ws('|',"
        " (SELECT string_agg(concat_ws(',', id, status, currency,"
        "   subtotal_cents, tax_rate_bps, tax_cents, total_cents, payment_id,"
        "   paid_cents, expires_at), ';' ORDER BY id) FROM orders),"
        " (SELECT string_agg(concat_ws(',', order_id, line_no, product_id,"
        "   quantity, unit_price_cents), ';' ORDER BY order_id, line_no)"
        "   FROM order_items),"
        " (SELECT string_agg(id || ':' || stock, ';' ORDER BY id)"
        "   FROM products),"
        " (SELECT string_agg(concat_ws(',', product_id, reason, order_id, n,"
        "   s), ';' ORDER BY product_id, reason, order_id) FROM (SELECT"
        "   product_id, reason, order_id, count(*) n, sum(delta) s"
        "   FROM stock_ledger GROUP BY 1, 2, 3) l),"
        " (SELECT string_agg(concat_ws(',', order_id, from_status, to_status,"
        "   actor_role, dedup_key), ';' ORDER BY order_id, id)"
        "   FROM order_status_history),"
        " (SELECT string_agg(concat_ws(',', dedup_key, command_type, outcome,"
        "   reason, order_id), ';' ORDER BY dedup_key)"
        "   FROM processed_commands WHERE dedup_key NOT LIKE 'x-trigger-%')))",
        buf, len);
}

/* Runs a program (argv[0] a path) and returns its exit status; its
 * output goes to the test's stderr. */
static inline int
x_run(const char *const *argv)
{
    pid_t pid = fork();
    int status;

    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        ck_assert_msg(errno == EINTR, "waitpid: %s", strerror(errno));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Starts the worker with its stderr (the log) going to a file. */
static inline pid_t
x_worker_logged(ktest_t *k, const char *const *extra, const char *logfile)
{
    int saved = dup(STDERR_FILENO);
    int fd = open(logfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;

    ck_assert_msg(saved >= 0 && fd >= 0, "%s: %s", logfile, strerror(errno));
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    close(fd);
    pid = ktest_worker_start(k, extra);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    return pid;
}

/* how many lines of a file contain needle */
static inline int
x_count_lines(const char *file, const char *needle)
{
    FILE *f = fopen(file, "r");
    char line[4096];
    int n = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, needle) != NULL)
            n++;
    fclose(f);
    return n;
}

#endif
