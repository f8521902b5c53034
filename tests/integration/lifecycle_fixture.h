/* lifecycle_fixture.h - fixtures for the order lifecycle scenarios (0200 to
 * 0299): catalogue rows and pending orders made by the product_upsert and
 * checkout commands (so a rewritten checkout is what these tests run on),
 * and one-line command helpers */
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

/* Applies a fixture command that must be applied; fails the test with the
 * command's outcome otherwise. */
static inline void lf_applyf(db_t *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void
lf_applyf(db_t *db, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    json_t *ev;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    ev = itest_apply(db, cmd);
    ck_assert_msg(ev != NULL && strcmp(itest_outcome(ev), "applied") == 0,
                  "fixture command %s: %s %s", cmd, ev ? itest_outcome(ev) : "",
                  ev ? itest_reason(ev) : "dead-lettered");
    json_decref(ev);
}

/* a simple EUR product, created by the admin's product_upsert (its
 * initial ledger row comes with it) */
static inline void
lf_product(db_t *db, int64_t id, const char *vendor, int64_t price,
           int64_t stock)
{
    lf_applyf(db,
              "{\"dedup_key\":\"lf-product-%" PRId64 "\","
              "\"type\":\"product_upsert\","
              "\"actor\":{\"role\":\"admin\",\"id\":\"root\"},"
              "\"product_id\":%" PRId64 ",\"vendor_id\":\"%s\","
              "\"name\":\"product %" PRId64 "\",\"sku\":\"SKU-%" PRId64
              "\",\"currency\":\"EUR\",\"kind\":\"simple\","
              "\"price_cents\":%" PRId64 ",\"stock\":%" PRId64 "}",
              id, id, vendor, id, id, price, stock);
}

/* a variant EUR product with one variant, by product_upsert */
static inline void
lf_variant_product(db_t *db, int64_t id, const char *vendor, int64_t variant_id,
                   int64_t price, int64_t stock)
{
    lf_applyf(db,
              "{\"dedup_key\":\"lf-product-%" PRId64 "\","
              "\"type\":\"product_upsert\","
              "\"actor\":{\"role\":\"admin\",\"id\":\"root\"},"
              "\"product_id\":%" PRId64 ",\"vendor_id\":\"%s\","
              "\"name\":\"product %" PRId64 "\",\"sku\":\"SKU-%" PRId64
              "\",\"currency\":\"EUR\",\"kind\":\"variant\","
              "\"variants\":[{\"variant_id\":%" PRId64 ","
              "\"name\":\"variant\",\"sku\":\"SKU-V%" PRId64 "\","
              "\"price_cents\":%" PRId64 ",\"stock\":%" PRId64 "}]}",
              id, id, vendor, id, id, variant_id, variant_id, price, stock);
}

/*
 * A pending order, made by the customer's checkout command (so the
 * lifecycle tests run on what checkout really writes: prices from the
 * catalogue, no tax, stock taken with its ledger rows, the initial
 * history row). The deadline is expires_at (NULL: LF_EXPIRES_AT): the
 * checkout is issued 60 s before it with a 60 s ttl.
 */
static inline void
lf_order(db_t *db, const char *order_id, const char *customer,
         const lf_line_t *lines, size_t n, const char *expires_at)
{
    char items[4096], issued[64];
    size_t len = 0;

    for (size_t i = 0; i < n; i++) {
        char vid[48] = "";

        if (lines[i].variant_id)
            snprintf(vid, sizeof(vid), ",\"variant_id\":%" PRId64,
                     lines[i].variant_id);
        len += (size_t)snprintf(
            items + len, sizeof(items) - len,
            "%s{\"product_id\":%" PRId64 "%s,\"quantity\":%" PRId64 "}",
            i ? "," : "", lines[i].product_id, vid, lines[i].quantity);
        ck_assert_uint_lt(len, sizeof(items));
    }
    lf_textf(db, issued, sizeof(issued),
             "SELECT to_char((timestamptz '%s' - interval '60 seconds')"
             " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
             expires_at ? expires_at : LF_EXPIRES_AT);
    lf_applyf(db,
              "{\"dedup_key\":\"lf-checkout-%s\",\"type\":\"checkout\","
              "\"actor\":{\"role\":\"customer\",\"id\":\"%s\"},"
              "\"issued_at\":\"%s\",\"order_id\":\"%s\","
              "\"customer_id\":\"%s\",\"currency\":\"EUR\","
              "\"ttl_seconds\":60,\"items\":[%s]}",
              order_id, customer, issued, order_id, customer, items);
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
