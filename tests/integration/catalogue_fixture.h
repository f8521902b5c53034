/* catalogue_fixture.h - command builders shared by the catalogue and
 * checkout integration tests (0100..0199) */
#ifndef OD_CATALOGUE_FIXTURE_H
#define OD_CATALOGUE_FIXTURE_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "itest.h"

/* a fresh dedup key per command: tests never collide with themselves */
static inline const char *
fx_key(char *buf, size_t len)
{
    static int seq;

    snprintf(buf, len, "fx-%d", __atomic_add_fetch(&seq, 1, __ATOMIC_SEQ_CST));
    return buf;
}

/* Asserts outcome (and reason, when not NULL) and frees the event. */
static inline void
fx_expect(json_t *ev, const char *outcome, const char *reason)
{
    ck_assert_ptr_nonnull(ev);
    ck_assert_msg(strcmp(itest_outcome(ev), outcome) == 0 &&
                      (reason == NULL || strcmp(itest_reason(ev), reason) == 0),
                  "expected %s %s, got %s %s (details %s)", outcome,
                  reason ? reason : "", itest_outcome(ev), itest_reason(ev),
                  json_dumps(json_object_get(ev, "details"), JSON_COMPACT));
    json_decref(ev);
}

/* body: the type-specific fields, without braces ("\"product_id\":1") */
static inline json_t *
fx_cmd(db_t *db, const char *type, const char *role, const char *actor,
       const char *body)
{
    char key[32];

    return itest_applyf(db,
                        "{\"dedup_key\":\"%s\",\"type\":\"%s\","
                        "\"actor\":{\"role\":\"%s\",\"id\":\"%s\"},%s}",
                        fx_key(key, sizeof(key)), type, role, actor, body);
}

/* a simple product as the admin; threshold < 0: none given */
static inline json_t *
fx_simple(db_t *db, long long pid, const char *vendor, long long price,
          long long stock, long long threshold)
{
    char body[512], thr[64] = "";

    if (threshold >= 0)
        snprintf(thr, sizeof(thr), ",\"low_stock_threshold\":%lld", threshold);
    snprintf(body, sizeof(body),
             "\"product_id\":%lld,\"vendor_id\":\"%s\",\"name\":\"Product "
             "%lld\",\"sku\":\"SKU-%lld\",\"currency\":\"EUR\","
             "\"kind\":\"simple\",\"price_cents\":%lld,\"stock\":%lld%s",
             pid, vendor, pid, pid, price, stock, thr);
    return fx_cmd(db, "product_upsert", "admin", "root", body);
}

/* a variant product as the admin; variants: the JSON array */
static inline json_t *
fx_variant(db_t *db, long long pid, const char *vendor, const char *variants)
{
    char body[4096];

    snprintf(body, sizeof(body),
             "\"product_id\":%lld,\"vendor_id\":\"%s\",\"name\":\"Product "
             "%lld\",\"sku\":\"SKU-%lld\",\"currency\":\"EUR\","
             "\"kind\":\"variant\",\"variants\":%s",
             pid, vendor, pid, pid, variants);
    return fx_cmd(db, "product_upsert", "admin", "root", body);
}

/* a checkout in EUR by customer "c1" for itself; tax_country may be NULL */
static inline json_t *
fx_checkout(db_t *db, const char *order_id, const char *tax_country,
            const char *items)
{
    char body[8192], tc[32] = "";

    if (tax_country != NULL)
        snprintf(tc, sizeof(tc), ",\"tax_country\":\"%s\"", tax_country);
    snprintf(body, sizeof(body),
             "\"order_id\":\"%s\",\"customer_id\":\"c1\","
             "\"currency\":\"EUR\"%s,\"items\":%s",
             order_id, tc, items);
    return fx_cmd(db, "checkout", "customer", "c1", body);
}

/* itest_int with a printf-style query */
static inline int64_t fx_int(db_t *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline int64_t
fx_int(db_t *db, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return itest_int(db, sql);
}

#endif
