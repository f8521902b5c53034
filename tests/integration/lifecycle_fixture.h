/* lifecycle_fixture.h - fixtures for the order lifecycle scenarios (0200 to
 * 0299): catalogue rows and pending orders written as plain SQL, exactly as
 * a checkout leaves them (stock taken with its ledger rows, the initial
 * history row), and one-line command helpers */
#ifndef OD_LIFECYCLE_FIXTURE_H
#define OD_LIFECYCLE_FIXTURE_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "itest.h"

/* default deadline of fixture orders: far enough never to pass by itself */
#define LF_EXPIRES_AT "2090-01-01T00:00:00Z"

typedef struct lf_line {
    int64_t product_id;
    int64_t variant_id; /* 0: a simple product */
    int64_t quantity;
} lf_line_t;

static int lf_seq;

static inline void lf_execf(db_t *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void
lf_execf(db_t *db, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    itest_exec(db, sql);
}

static inline int64_t lf_intf(db_t *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline int64_t
lf_intf(db_t *db, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return itest_int(db, sql);
}

static inline const char *lf_textf(db_t *db, char *buf, size_t len,
                                   const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline const char *
lf_textf(db_t *db, char *buf, size_t len, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return itest_text(db, sql, buf, len);
}

/* a simple EUR product with its initial ledger row */
static inline void
lf_product(db_t *db, int64_t id, const char *vendor, int64_t price,
           int64_t stock)
{
    lf_execf(db,
             "INSERT INTO products (id, vendor_id, kind, name, sku, currency,"
             " price_cents, stock) VALUES (%" PRId64 ", '%s', 'simple',"
             " 'product %" PRId64 "', 'SKU-%" PRId64 "', 'EUR', %" PRId64
             ", %" PRId64 ");"
             "INSERT INTO stock_ledger (product_id, variant_id, delta, reason,"
             " dedup_key, source) VALUES (%" PRId64 ", NULL, %" PRId64
             ", 'initial', 'fixture', 'fixture')",
             id, vendor, id, id, price, stock, id, stock);
}

/* a variant EUR product with one variant, and the variant's ledger row */
static inline void
lf_variant_product(db_t *db, int64_t id, const char *vendor, int64_t variant_id,
                   int64_t price, int64_t stock)
{
    lf_execf(db,
             "INSERT INTO products (id, vendor_id, kind, name, sku, currency)"
             " VALUES (%" PRId64 ", '%s', 'variant', 'product %" PRId64 "',"
             " 'SKU-%" PRId64 "', 'EUR');"
             "INSERT INTO product_variants (id, product_id, name, sku,"
             " price_cents, stock) VALUES (%" PRId64 ", %" PRId64
             ", 'variant', 'SKU-V%" PRId64 "', %" PRId64 ", %" PRId64 ");"
             "INSERT INTO stock_ledger (product_id, variant_id, delta, reason,"
             " dedup_key, source) VALUES (%" PRId64 ", %" PRId64 ", %" PRId64
             ", 'initial', 'fixture', 'fixture')",
             id, vendor, id, id, variant_id, id, variant_id, price, stock, id,
             variant_id, stock);
}

/* A pending order as checkout writes it: totals from the catalogue prices
 * (no tax), stock taken with 'order' ledger rows, vendor per line, the
 * initial history row. expires_at NULL means LF_EXPIRES_AT. */
static inline void
lf_order(db_t *db, const char *order_id, const char *customer,
         const lf_line_t *lines, size_t n, const char *expires_at)
{
    int64_t total = 0;

    for (size_t i = 0; i < n; i++)
        total += lines[i].quantity *
                 (lines[i].variant_id
                      ? lf_intf(db,
                                "SELECT price_cents FROM product_variants"
                                " WHERE id = %" PRId64,
                                lines[i].variant_id)
                      : lf_intf(db,
                                "SELECT price_cents FROM products"
                                " WHERE id = %" PRId64,
                                lines[i].product_id));
    lf_execf(db,
             "INSERT INTO orders (id, number, customer_id, status, currency,"
             " subtotal_cents, tax_rate_bps, tax_cents, total_cents,"
             " dedup_key, source, created_at, expires_at) VALUES ('%s',"
             " 'ORD-' || lpad(nextval('order_number_seq')::text, 8, '0'),"
             " '%s', 'pending', 'EUR', %" PRId64 ", 0, 0, %" PRId64 ","
             " 'fixture-checkout-%s', 'fixture', now(), '%s');"
             "INSERT INTO order_status_history (order_id, from_status,"
             " to_status, actor_role, actor_id, dedup_key, source) VALUES"
             " ('%s', NULL, 'pending', 'customer', '%s',"
             " 'fixture-checkout-%s', 'fixture')",
             order_id, customer, total, total, order_id,
             expires_at ? expires_at : LF_EXPIRES_AT, order_id, customer,
             order_id);
    for (size_t i = 0; i < n; i++) {
        char vid[24] = "NULL";

        if (lines[i].variant_id)
            snprintf(vid, sizeof(vid), "%" PRId64, lines[i].variant_id);
        lf_execf(db,
                 "INSERT INTO order_items (order_id, line_no, product_id,"
                 " variant_id, vendor_id, sku, name, quantity,"
                 " unit_price_cents) SELECT '%s', %zu, p.id, %s, p.vendor_id,"
                 " p.sku, p.name, %" PRId64 ", COALESCE(v.price_cents,"
                 " p.price_cents) FROM products p LEFT JOIN product_variants v"
                 " ON v.id = %s WHERE p.id = %" PRId64 ";"
                 "INSERT INTO stock_ledger (product_id, variant_id, delta,"
                 " reason, order_id, dedup_key, source) VALUES (%" PRId64
                 ", %s, -%" PRId64 ", 'order', '%s', 'fixture-checkout-%s',"
                 " 'fixture')",
                 order_id, i + 1, vid, lines[i].quantity, vid,
                 lines[i].product_id, lines[i].product_id, vid,
                 lines[i].quantity, order_id, order_id);
        if (lines[i].variant_id)
            lf_execf(db,
                     "UPDATE product_variants SET stock = stock - %" PRId64
                     " WHERE id = %" PRId64,
                     lines[i].quantity, lines[i].variant_id);
        else
            lf_execf(db,
                     "UPDATE products SET stock = stock - %" PRId64
                     " WHERE id = %" PRId64,
                     lines[i].quantity, lines[i].product_id);
    }
}

/*
 * Applies one lifecycle command with a fresh dedup key and returns its
 * command.result event (caller decrefs). fields is the rest of the body
 * after order_id (",\"restock\":true" or ""); issued_at may be NULL.
 */
static inline json_t *
lf_cmd_at(db_t *db, const char *type, const char *role, const char *actor,
          const char *order_id, const char *fields, const char *issued_at)
{
    char issued[80] = "";

    if (issued_at != NULL)
        snprintf(issued, sizeof(issued), ",\"issued_at\":\"%s\"", issued_at);
    return itest_applyf(db,
                        "{\"dedup_key\":\"lf-%s-%d\",\"type\":\"%s\","
                        "\"actor\":{\"role\":\"%s\",\"id\":\"%s\"}%s,"
                        "\"order_id\":\"%s\"%s}",
                        type, ++lf_seq, type, role, actor, issued, order_id,
                        fields);
}

static inline json_t *
lf_cmd(db_t *db, const char *type, const char *role, const char *actor,
       const char *order_id, const char *fields)
{
    return lf_cmd_at(db, type, role, actor, order_id, fields, NULL);
}

/* Applies a command and asserts its outcome and reason ("" when
 * applied). */
static inline void
lf_expect(db_t *db, const char *type, const char *role, const char *actor,
          const char *order_id, const char *fields, const char *outcome,
          const char *reason)
{
    json_t *ev = lf_cmd(db, type, role, actor, order_id, fields);

    ck_assert_msg(strcmp(itest_outcome(ev), outcome) == 0 &&
                      strcmp(itest_reason(ev), reason) == 0,
                  "%s by %s on %s: got %s %s, expected %s %s", type, role,
                  order_id, itest_outcome(ev), itest_reason(ev), outcome,
                  reason);
    json_decref(ev);
}

static inline const char *
lf_status(db_t *db, const char *order_id, char *buf, size_t len)
{
    return lf_textf(db, buf, len, "SELECT status FROM orders WHERE id = '%s'",
                    order_id);
}

static inline int64_t
lf_stock(db_t *db, int64_t product_id)
{
    return lf_intf(db, "SELECT stock FROM products WHERE id = %" PRId64,
                   product_id);
}

/* outbox events of a type whose key is the order */
static inline int64_t
lf_events(db_t *db, const char *type, const char *order_id)
{
    return lf_intf(db,
                   "SELECT count(*) FROM outbox WHERE"
                   " convert_from(payload, 'UTF8')::jsonb->>'type' = '%s'"
                   " AND convert_from(key, 'UTF8') = '%s'",
                   type, order_id);
}

/* the payload of the latest outbox event of a type for the order */
static inline json_t *
lf_last_event(db_t *db, const char *type, const char *order_id)
{
    char buf[8192];

    lf_textf(db, buf, sizeof(buf),
             "SELECT convert_from(payload, 'UTF8') FROM outbox WHERE"
             " convert_from(payload, 'UTF8')::jsonb->>'type' = '%s'"
             " AND convert_from(key, 'UTF8') = '%s' ORDER BY id DESC LIMIT 1",
             type, order_id);
    return json_loads(buf, 0, NULL);
}

/* a string member of the result's details ("" when absent) */
static inline const char *
lf_detail(const json_t *ev, const char *name)
{
    const char *s = json_string_value(
        json_object_get(json_object_get(ev, "details"), name));

    return s ? s : "";
}

static inline int64_t
lf_total(db_t *db, const char *order_id)
{
    return lf_intf(db, "SELECT total_cents FROM orders WHERE id = '%s'",
                   order_id);
}

/* pays the order in full (EUR) with the given payment id */
static inline json_t *
lf_pay(db_t *db, const char *order_id, const char *payment_id)
{
    char fields[200];

    snprintf(fields, sizeof(fields),
             ",\"payment_id\":\"%s\",\"amount_cents\":%" PRId64
             ",\"currency\":\"EUR\"",
             payment_id, lf_total(db, order_id));
    return lf_cmd(db, "pay", "payment", "psp", order_id, fields);
}

/* Moves a pending fixture order to status through the commands an admin
 * (or the payment bridge) would send; fails the test if one is refused. */
static inline void
lf_drive(db_t *db, const char *order_id, const char *status)
{
    static const struct {
        const char *status, *type, *fields;
    } path[] = {
        {"paid", "pay", NULL},
        {"processing", "start_processing", ""},
        {"shipped", "ship", ",\"tracking_number\":\"TN-1\""},
        {"delivered", "deliver", ""},
        {"refunded", "refund", ",\"restock\":false"},
    };
    json_t *ev;

    if (strcmp(status, "pending") == 0)
        return;
    if (strcmp(status, "cancelled") == 0 || strcmp(status, "expired") == 0) {
        /* issued long after the fixture deadline: expire is due */
        ev = lf_cmd_at(db, status[0] == 'c' ? "cancel" : "expire", "admin",
                       "root", order_id, "", "2095-01-01T00:00:00Z");
        ck_assert_str_eq(itest_outcome(ev), "applied");
        json_decref(ev);
        return;
    }
    for (size_t i = 0; i < sizeof(path) / sizeof(path[0]); i++) {
        ev = path[i].fields == NULL ? lf_pay(db, order_id, "pay-drive")
                                    : lf_cmd(db, path[i].type, "admin", "root",
                                             order_id, path[i].fields);
        ck_assert_msg(strcmp(itest_outcome(ev), "applied") == 0,
                      "%s on %s: %s %s", path[i].type, order_id,
                      itest_outcome(ev), itest_reason(ev));
        json_decref(ev);
        if (strcmp(path[i].status, status) == 0)
            return;
    }
    ck_abort_msg("no path to status %s", status);
}

#endif
