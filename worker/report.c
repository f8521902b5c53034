/* report.c - order analytics from the read model: orders created per
 * period, their status mix, revenue and refunds per currency, rates, time
 * to payment, top products and per-vendor figures
 *
 * DESIGN: every query starts from the orders created in [from, to), found
 * through the index on orders.created_at (migration 0060), and reaches
 * items and history through their primary key and (order_id, id) index:
 * the cost grows with the orders in the window, never with the table
 * (docs/operations.md, "orderd report", gives the numbers at 10 million
 * orders). A period is the order's event time (created_at, the checkout's
 * issued_at) truncated in UTC; time to payment is measured between two
 * processing times (the history rows of the checkout and the payment), so
 * a producer's clock never enters it. Money stays in minor units per
 * currency; only report_print_text shows major units. The queries run in
 * one READ ONLY REPEATABLE READ transaction: every figure is of one
 * snapshot, and the report can never write.
 */
#include "report.h"

#include <stdlib.h>
#include <string.h>

#include "../handlers/money.h"
#include "log.h"

static const char *const report_statuses[] = {
    "pending",   "paid",     "processing", "shipped",
    "delivered", "refunded", "cancelled",  "expired"};
#define REPORT_NSTATUS OD_ARRAY_LEN(report_statuses)

/* $1 to, $2 from (text, "" for the default), resolved once */
static const db_stmt_t stmt_bounds = {
    "report_bounds",
    "SELECT to_char(f AT TIME ZONE 'UTC',"
    "  'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
    " to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    " FROM (SELECT COALESCE(NULLIF($2, '')::timestamptz,"
    "  t - interval '30 days') f, t FROM (SELECT"
    "  COALESCE(NULLIF($1, '')::timestamptz, now()) t) x) y"};

/* The window and vendor filter every query below shares: $1 period, $2
 * from, $3 to, $4 vendor ("" for every vendor). */
#define REPORT_PERIOD                                                          \
    "to_char(date_trunc($1::text, o.created_at AT TIME ZONE 'UTC'),"           \
    " 'YYYY-MM-DD')"
#define REPORT_WINDOW                                                          \
    " o.created_at >= $2::timestamptz AND o.created_at < $3::timestamptz"
#define REPORT_VENDOR                                                          \
    " AND ($4::text = '' OR EXISTS (SELECT 1 FROM order_items v"               \
    "  WHERE v.order_id = o.id AND v.vendor_id = $4::text))"
/* paid at some point: pay sets the payment id and nothing clears it */
#define REPORT_PAID "o.payment_id IS NOT NULL"
#define REPORT_REFUNDED                                                        \
    "o.payment_id IS NOT NULL AND o.status IN ('refunded', 'cancelled')"

static const db_stmt_t stmt_periods = {
    "report_periods",
    "SELECT " REPORT_PERIOD ", o.currency, count(*),"
    " count(*) FILTER (WHERE o.status = 'pending'),"
    " count(*) FILTER (WHERE o.status = 'paid'),"
    " count(*) FILTER (WHERE o.status = 'processing'),"
    " count(*) FILTER (WHERE o.status = 'shipped'),"
    " count(*) FILTER (WHERE o.status = 'delivered'),"
    " count(*) FILTER (WHERE o.status = 'refunded'),"
    " count(*) FILTER (WHERE o.status = 'cancelled'),"
    " count(*) FILTER (WHERE o.status = 'expired'),"
    " count(*) FILTER (WHERE " REPORT_PAID "),"
    " COALESCE(sum(COALESCE(o.paid_cents, o.total_cents)) FILTER"
    "  (WHERE " REPORT_PAID "), 0)::bigint,"
    " count(*) FILTER (WHERE " REPORT_REFUNDED "),"
    " COALESCE(sum(COALESCE(o.paid_cents, o.total_cents)) FILTER"
    "  (WHERE " REPORT_REFUNDED "), 0)::bigint"
    " FROM orders o WHERE" REPORT_WINDOW REPORT_VENDOR
    " GROUP BY 1, 2 ORDER BY 1, 2"};

/* checkout to payment, per period and over the window (the row whose
 * period is NULL) */
static const db_stmt_t stmt_pay_time = {
    "report_pay_time",
    "SELECT p, count(*), avg(s)::float8,"
    " percentile_cont(0.5) WITHIN GROUP (ORDER BY s)::float8"
    " FROM (SELECT " REPORT_PERIOD " p,"
    "  EXTRACT(epoch FROM h.paid_at - h.placed_at)::float8 s"
    "  FROM orders o CROSS JOIN LATERAL (SELECT"
    "   min(x.created_at) FILTER (WHERE x.from_status IS NULL) placed_at,"
    "   min(x.created_at) FILTER (WHERE x.to_status = 'paid') paid_at"
    "   FROM order_status_history x WHERE x.order_id = o.id) h"
    "  WHERE" REPORT_WINDOW REPORT_VENDOR
    "  AND h.paid_at IS NOT NULL AND h.placed_at IS NOT NULL) t"
    " GROUP BY GROUPING SETS ((p), ()) ORDER BY p NULLS LAST"};

static const db_stmt_t stmt_top = {
    "report_top_products",
    "SELECT i.product_id, min(i.name), o.currency, sum(i.quantity)::bigint,"
    " sum(i.quantity * i.unit_price_cents)::bigint"
    " FROM orders o JOIN order_items i ON i.order_id = o.id"
    " WHERE" REPORT_WINDOW " AND " REPORT_PAID
    " AND ($4::text = '' OR i.vendor_id = $4::text)"
    " AND $1::text IS NOT NULL"
    " GROUP BY i.product_id, o.currency ORDER BY 4 DESC, 5 DESC, 1 LIMIT 10"};

static const db_stmt_t stmt_vendors = {
    "report_vendors",
    "SELECT " REPORT_PERIOD ", i.vendor_id, o.currency,"
    " count(DISTINCT o.id),"
    " count(DISTINCT o.id) FILTER (WHERE " REPORT_PAID "),"
    " COALESCE(sum(i.quantity * i.unit_price_cents) FILTER"
    "  (WHERE " REPORT_PAID "), 0)::bigint,"
    " COALESCE(sum(i.quantity * i.unit_price_cents) FILTER"
    "  (WHERE " REPORT_REFUNDED "), 0)::bigint,"
    " count(DISTINCT o.id) FILTER (WHERE o.status = 'cancelled'),"
    " count(DISTINCT o.id) FILTER (WHERE o.status = 'expired')"
    " FROM orders o JOIN order_items i ON i.order_id = o.id"
    " WHERE" REPORT_WINDOW " AND ($4::text = '' OR i.vendor_id = $4::text)"
    " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"};

int
report_by_valid(const char *by)
{
    return by == NULL || by[0] == '\0' || strcmp(by, "day") == 0 ||
           strcmp(by, "week") == 0 || strcmp(by, "month") == 0;
}

static double
rate(json_int_t part, json_int_t whole)
{
    /* four decimals: the same number in the JSON, the text and the page */
    return whole > 0 ? (double)(part * 10000 / whole) / 10000.0 : 0.0;
}

/* A period's (or the totals') entry, created empty on first use. */
static json_t *
period_entry(json_t *periods, const char *name)
{
    json_t *p = json_object_get(periods, name), *mix;

    if (p != NULL)
        return p;
    mix = json_object();
    for (size_t i = 0; mix != NULL && i < REPORT_NSTATUS; i++)
        json_object_set_new(mix, report_statuses[i], json_integer(0));
    p = json_pack("{s:s, s:I, s:o, s:o, s:I, s:I, s:f, s:f, s:o}", "period",
                  name, "orders", (json_int_t)0, "status",
                  mix ? mix : json_object(), "revenue", json_array(),
                  "cancelled", (json_int_t)0, "expired", (json_int_t)0,
                  "cancellation_rate", 0.0, "expiry_rate", 0.0,
                  "time_to_payment", json_null());
    if (p == NULL || json_object_set_new(periods, name, p) != 0)
        return NULL;
    return p;
}

static void
add_int(json_t *obj, const char *key, json_int_t v)
{
    json_object_set_new(
        obj, key,
        json_integer(json_integer_value(json_object_get(obj, key)) + v));
}

/* Adds one currency's figures to p's revenue list. */
static void
add_revenue(json_t *p, const char *currency, json_int_t paid_orders,
            json_int_t gross, json_int_t refunded_orders, json_int_t refunds)
{
    json_t *list = json_object_get(p, "revenue"), *r = NULL;
    size_t i;

    json_array_foreach(list, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "currency")),
                   currency) == 0)
            break;
        r = NULL;
    }
    if (r == NULL) {
        r = json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:I}", "currency",
                      currency, "exponent", money_currency_exponent(currency),
                      "paid_orders", (json_int_t)0, "gross_cents",
                      (json_int_t)0, "refunded_orders", (json_int_t)0,
                      "refunds_cents", (json_int_t)0, "net_cents",
                      (json_int_t)0);
        if (r == NULL || json_array_append_new(list, r) != 0)
            return;
    }
    add_int(r, "paid_orders", paid_orders);
    add_int(r, "gross_cents", gross);
    add_int(r, "refunded_orders", refunded_orders);
    add_int(r, "refunds_cents", refunds);
    add_int(r, "net_cents", gross - refunds);
}

/* Folds one row of stmt_periods into its period and into the totals. */
static void
add_period_row(json_t *periods, json_t *totals, const db_rows_t *rows, int r)
{
    json_t *targets[2] = {period_entry(periods, db_val(rows, r, 0)), totals};

    for (int t = 0; t < 2; t++) {
        json_t *p = targets[t], *mix;

        if (p == NULL)
            continue;
        mix = json_object_get(p, "status");
        add_int(p, "orders", db_int64(rows, r, 2));
        for (size_t s = 0; s < REPORT_NSTATUS; s++)
            add_int(mix, report_statuses[s], db_int64(rows, r, 3 + (int)s));
        add_int(p, "cancelled", db_int64(rows, r, 9));
        add_int(p, "expired", db_int64(rows, r, 10));
        add_revenue(p, db_val(rows, r, 1), db_int64(rows, r, 11),
                    db_int64(rows, r, 12), db_int64(rows, r, 13),
                    db_int64(rows, r, 14));
    }
}

static void
set_rates(json_t *p)
{
    json_int_t n = json_integer_value(json_object_get(p, "orders"));

    json_object_set_new(
        p, "cancellation_rate",
        json_real(
            rate(json_integer_value(json_object_get(p, "cancelled")), n)));
    json_object_set_new(
        p, "expiry_rate",
        json_real(rate(json_integer_value(json_object_get(p, "expired")), n)));
}

static od_status_t
run(db_t *db, const db_stmt_t *stmt, const char *const *params,
    db_rows_t **rows, char *err, size_t errlen)
{
    return db_run(db, stmt, 4, params, rows, err, errlen);
}

od_status_t
report_build(db_t *db, const report_opts_t *opts, int statement_timeout_ms,
             json_t **out, char *err, size_t errlen)
{
    const char *by = opts->by && opts->by[0] ? opts->by : "day";
    const char *vendor = opts->vendor ? opts->vendor : "";
    const char *bparams[2] = {opts->to ? opts->to : "",
                              opts->from ? opts->from : ""};
    char begin[160], from[64], to[64];
    const char *params[4] = {by, from, to, vendor};
    db_rows_t *rows = NULL;
    json_t *rep = NULL, *periods = NULL, *totals = NULL, *list, *v;
    const char *key;
    od_status_t st;

    *out = NULL;
    if (!report_by_valid(by)) {
        od_err(err, errlen, "--by must be day, week or month, not '%s'", by);
        return OD_REJECT;
    }
    snprintf(begin, sizeof(begin),
             "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
             " SET LOCAL TimeZone = 'UTC'; SET LOCAL statement_timeout = %d",
             statement_timeout_ms > 0 ? statement_timeout_ms : 0);
    st = db_exec(db, begin, err, errlen);
    if (st != OD_OK)
        return st;
    st = db_run(db, &stmt_bounds, 2, bparams, &rows, err, errlen);
    if (st != OD_OK) {
        /* 22007, 22008: a --from or --to that is not a time */
        if (strncmp(db_sqlstate(db), "22", 2) == 0) {
            od_err(err, errlen,
                   "--from and --to must be times such as "
                   "2026-11-01 or 2026-11-01T12:00:00Z");
            st = OD_REJECT;
        }
        goto fail;
    }
    snprintf(from, sizeof(from), "%s", db_val(rows, 0, 0));
    snprintf(to, sizeof(to), "%s", db_val(rows, 0, 1));
    db_rows_free(rows);
    rows = NULL;

    periods = json_object();
    totals = period_entry(periods, "total");
    if (totals == NULL) {
        od_err(err, errlen, "out of memory");
        st = OD_FATAL;
        goto fail;
    }
    json_incref(totals);
    json_object_del(periods, "total");

    st = run(db, &stmt_periods, params, &rows, err, errlen);
    if (st != OD_OK)
        goto fail;
    for (int r = 0; r < db_nrows(rows); r++)
        add_period_row(periods, totals, rows, r);
    db_rows_free(rows);
    rows = NULL;

    st = run(db, &stmt_pay_time, params, &rows, err, errlen);
    if (st != OD_OK)
        goto fail;
    for (int r = 0; r < db_nrows(rows); r++) {
        json_t *p = db_isnull(rows, r, 0)
                        ? totals
                        : period_entry(periods, db_val(rows, r, 0));

        /* the grand total row comes even when nothing was paid */
        if (p != NULL && db_int64(rows, r, 1) > 0)
            json_object_set_new(p, "time_to_payment",
                                json_pack("{s:I, s:f, s:f}", "paid",
                                          db_int64(rows, r, 1), "avg_s",
                                          atof(db_val(rows, r, 2)), "median_s",
                                          atof(db_val(rows, r, 3))));
    }
    db_rows_free(rows);
    rows = NULL;

    rep = json_pack("{s:s, s:s, s:s, s:o, s:O, s:[], s:[], s:[]}", "by", by,
                    "from", from, "to", to, "vendor",
                    vendor[0] ? json_string(vendor) : json_null(), "totals",
                    totals, "periods", "top_products", "vendors");
    if (rep == NULL) {
        od_err(err, errlen, "out of memory");
        st = OD_FATAL;
        goto fail;
    }
    set_rates(totals);
    list = json_object_get(rep, "periods");
    json_object_foreach(periods, key, v)
    {
        set_rates(v);
        json_array_append(list, v);
    }

    st = run(db, &stmt_top, params, &rows, err, errlen);
    if (st != OD_OK)
        goto fail;
    list = json_object_get(rep, "top_products");
    for (int r = 0; r < db_nrows(rows); r++)
        json_array_append_new(
            list, json_pack("{s:I, s:s, s:s, s:i, s:I, s:I}", "product_id",
                            db_int64(rows, r, 0), "name", db_val(rows, r, 1),
                            "currency", db_val(rows, r, 2), "exponent",
                            money_currency_exponent(db_val(rows, r, 2)),
                            "quantity", db_int64(rows, r, 3), "revenue_cents",
                            db_int64(rows, r, 4)));
    db_rows_free(rows);
    rows = NULL;

    st = run(db, &stmt_vendors, params, &rows, err, errlen);
    if (st != OD_OK)
        goto fail;
    list = json_object_get(rep, "vendors");
    for (int r = 0; r < db_nrows(rows); r++) {
        json_int_t orders = db_int64(rows, r, 3);

        json_array_append_new(
            list,
            json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, "
                      "s:I, s:f, s:f}",
                      "period", db_val(rows, r, 0), "vendor_id",
                      db_val(rows, r, 1), "currency", db_val(rows, r, 2),
                      "exponent", money_currency_exponent(db_val(rows, r, 2)),
                      "orders", orders, "paid_orders", db_int64(rows, r, 4),
                      "gross_cents", db_int64(rows, r, 5), "refunds_cents",
                      db_int64(rows, r, 6), "net_cents",
                      db_int64(rows, r, 5) - db_int64(rows, r, 6), "cancelled",
                      db_int64(rows, r, 7), "expired", db_int64(rows, r, 8),
                      "cancellation_rate", rate(db_int64(rows, r, 7), orders),
                      "expiry_rate", rate(db_int64(rows, r, 8), orders)));
    }
    db_rows_free(rows);
    rows = NULL;
    st = db_commit(db, err, errlen);
    if (st != OD_OK)
        goto fail;
    json_decref(periods);
    json_decref(totals);
    *out = rep;
    return OD_OK;
fail : {
    char ignored[256];

    if (db_ok(db) && db_rollback(db, ignored, sizeof(ignored)) != OD_OK)
        log_debug("report: rollback failed: %s", ignored);
}
    db_rows_free(rows);
    json_decref(periods);
    json_decref(totals);
    json_decref(rep);
    return st;
}

static void
print_money(FILE *f, const json_t *rev, const char *field)
{
    size_t i;
    json_t *r;
    char buf[64];

    if (json_array_size(rev) == 0) {
        fprintf(f, " -");
        return;
    }
    json_array_foreach(rev, i, r)
        fprintf(f, "%s%s", i ? ", " : " ",
                money_format(json_integer_value(json_object_get(r, field)),
                             json_string_value(json_object_get(r, "currency")),
                             buf, sizeof(buf)));
}

static void
print_period(FILE *f, const json_t *p)
{
    const json_t *mix = json_object_get(p, "status");
    const json_t *rev = json_object_get(p, "revenue");
    const json_t *ttp = json_object_get(p, "time_to_payment");

    fprintf(f, "%-12s orders %lld (",
            json_string_value(json_object_get(p, "period")),
            (long long)json_integer_value(json_object_get(p, "orders")));
    for (size_t s = 0; s < REPORT_NSTATUS; s++)
        fprintf(f, "%s%s %lld", s ? ", " : "", report_statuses[s],
                (long long)json_integer_value(
                    json_object_get(mix, report_statuses[s])));
    fprintf(f, ")\n%-12s gross", "");
    print_money(f, rev, "gross_cents");
    fprintf(f, "; refunds");
    print_money(f, rev, "refunds_cents");
    fprintf(f, "; net");
    print_money(f, rev, "net_cents");
    fprintf(f, "\n%-12s cancelled %.2f%%, expired %.2f%%", "",
            100 * json_real_value(json_object_get(p, "cancellation_rate")),
            100 * json_real_value(json_object_get(p, "expiry_rate")));
    if (json_is_object(ttp))
        fprintf(f,
                "; checkout to payment: median %.1f s, mean %.1f s (%lld "
                "paid)",
                json_real_value(json_object_get(ttp, "median_s")),
                json_real_value(json_object_get(ttp, "avg_s")),
                (long long)json_integer_value(json_object_get(ttp, "paid")));
    fprintf(f, "\n");
}

void
report_print_text(FILE *f, const json_t *rep)
{
    const json_t *vendor = json_object_get(rep, "vendor");
    json_t *v;
    size_t i;
    char b1[64], b2[64];

    fprintf(f, "orders created from %s to %s (event time, UTC), by %s%s%s\n\n",
            json_string_value(json_object_get(rep, "from")),
            json_string_value(json_object_get(rep, "to")),
            json_string_value(json_object_get(rep, "by")),
            json_is_string(vendor) ? ", vendor " : "",
            json_is_string(vendor) ? json_string_value(vendor) : "");
    json_array_foreach(json_object_get(rep, "periods"), i, v)
        print_period(f, v);
    if (json_array_size(json_object_get(rep, "periods")) > 0)
        fprintf(f, "\n");
    print_period(f, json_object_get(rep, "totals"));
    fprintf(f, "\ntop products (paid orders)\n");
    json_array_foreach(json_object_get(rep, "top_products"), i, v)
    {
        const char *cur = json_string_value(json_object_get(v, "currency"));

        fprintf(f, "  %-8lld %-32s %6lld  %s\n",
                (long long)json_integer_value(json_object_get(v, "product_id")),
                json_string_value(json_object_get(v, "name")),
                (long long)json_integer_value(json_object_get(v, "quantity")),
                money_format(
                    json_integer_value(json_object_get(v, "revenue_cents")),
                    cur, b1, sizeof(b1)));
    }
    fprintf(f, "\nper vendor (items, without tax)\n");
    json_array_foreach(json_object_get(rep, "vendors"), i, v)
    {
        const char *cur = json_string_value(json_object_get(v, "currency"));

        fprintf(
            f,
            "  %-12s %-16s orders %lld, paid %lld, gross %s, refunds %s, "
            "cancelled %.2f%%, expired %.2f%%\n",
            json_string_value(json_object_get(v, "period")),
            json_string_value(json_object_get(v, "vendor_id")),
            (long long)json_integer_value(json_object_get(v, "orders")),
            (long long)json_integer_value(json_object_get(v, "paid_orders")),
            money_format(json_integer_value(json_object_get(v, "gross_cents")),
                         cur, b1, sizeof(b1)),
            money_format(
                json_integer_value(json_object_get(v, "refunds_cents")), cur,
                b2, sizeof(b2)),
            100 * json_real_value(json_object_get(v, "cancellation_rate")),
            100 * json_real_value(json_object_get(v, "expiry_rate")));
    }
}
