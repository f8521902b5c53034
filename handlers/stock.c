/* stock.c - guarded stock changes with their ledger rows
 *
 * DESIGN: one statement per change: a data-modifying CTE updates the row
 * under its guard (never below zero, never past INT64_MAX: the CASE keeps
 * the guard itself from overflowing) and inserts the
 * ledger row only when the update matched, so stock = sum(ledger) holds
 * whatever the outcome. The caller already holds the row lock, so the
 * guard refuses only when there really is not enough stock.
 */
#include "stock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const db_stmt_t stmt_product_change = {
    "stock_product_change",
    "WITH u AS ("
    " UPDATE products SET stock = stock + $2::bigint, updated_at = now()"
    " WHERE id = $1::bigint AND kind = 'simple' AND"
    " CASE WHEN $2::bigint < 0 THEN stock >= -$2::bigint"
    " ELSE stock <= 9223372036854775807 - $2::bigint END"
    " RETURNING stock, low_stock_threshold),"
    " l AS (INSERT INTO stock_ledger"
    " (product_id, variant_id, delta, reason, order_id, dedup_key, source)"
    " SELECT $1::bigint, NULL, $2::bigint, $3, $4::uuid, $5, $6 FROM u"
    " WHERE $2::bigint <> 0)"
    " SELECT stock, low_stock_threshold FROM u"};

static const db_stmt_t stmt_variant_change = {
    "stock_variant_change",
    "WITH u AS ("
    " UPDATE product_variants SET stock = stock + $3::bigint,"
    " updated_at = now()"
    " WHERE id = $2::bigint AND product_id = $1::bigint AND"
    " CASE WHEN $3::bigint < 0 THEN stock >= -$3::bigint"
    " ELSE stock <= 9223372036854775807 - $3::bigint END"
    " RETURNING stock),"
    " l AS (INSERT INTO stock_ledger"
    " (product_id, variant_id, delta, reason, order_id, dedup_key, source)"
    " SELECT $1::bigint, $2::bigint, $3::bigint, $4, $5::uuid, $6, $7 FROM u"
    " WHERE $3::bigint <> 0)"
    " SELECT u.stock, p.low_stock_threshold FROM u"
    " JOIN products p ON p.id = $1::bigint"};

static const db_stmt_t stmt_order_lines = {
    "stock_order_lines",
    "SELECT product_id, COALESCE(variant_id, 0), sum(quantity)"
    " FROM order_items WHERE order_id = $1::uuid"
    " GROUP BY 1, 2 ORDER BY 1, 2"};

static const db_stmt_t stmt_lock_products = {
    "stock_lock_products",
    "SELECT id FROM products WHERE id = ANY($1::bigint[])"
    " ORDER BY id FOR UPDATE"};

static const db_stmt_t stmt_lock_variants = {
    "stock_lock_variants",
    "SELECT id FROM product_variants WHERE id = ANY($1::bigint[])"
    " ORDER BY id FOR UPDATE"};

void
stock_low_notice(cmd_result_t *res, int64_t product_id, int64_t variant_id,
                 int64_t after, int64_t threshold)
{
    char key[24];
    json_t *payload;

    snprintf(key, sizeof(key), "%" PRId64, product_id);
    payload = json_pack(
        "{s:I, s:o, s:I, s:I}", "product_id", (json_int_t)product_id,
        "variant_id", variant_id ? json_integer(variant_id) : json_null(),
        "stock", (json_int_t)after, "threshold", (json_int_t)threshold);
    cmd_result_add_event(res, "stock.low", key, payload);
}

od_status_t
stock_apply(apply_ctx_t *ctx, const stock_item_t *item, const char *reason,
            const char *order_id, int64_t *after, cmd_result_t *res)
{
    char pid[24], vid[24], delta[24];
    db_rows_t *rows = NULL;
    od_status_t st;
    int64_t now_stock, threshold;

    db_int_param(pid, item->product_id);
    db_int_param(vid, item->variant_id);
    db_int_param(delta, item->delta);
    if (item->variant_id == 0) {
        const char *params[6] = {pid,
                                 delta,
                                 reason,
                                 order_id,
                                 ctx->env->dedup_key,
                                 ctx->env->source};

        st = db_run(ctx->db, &stmt_product_change, 6, params, &rows, ctx->err,
                    ctx->errlen);
    } else {
        const char *params[7] = {pid,
                                 vid,
                                 delta,
                                 reason,
                                 order_id,
                                 ctx->env->dedup_key,
                                 ctx->env->source};

        st = db_run(ctx->db, &stmt_variant_change, 7, params, &rows, ctx->err,
                    ctx->errlen);
    }
    if (st != OD_OK)
        goto out;
    if (db_nrows(rows) != 1) {
        od_err(ctx->err, ctx->errlen,
               "stock of product %" PRId64 " variant %" PRId64
               " cannot change by %" PRId64,
               item->product_id, item->variant_id, item->delta);
        st = OD_REJECT;
        goto out;
    }
    now_stock = db_int64(rows, 0, 0);
    threshold = db_int64(rows, 0, 1);
    if (after != NULL)
        *after = now_stock;
    /* before = now - delta cannot overflow: the guard kept it in range */
    if (item->delta < 0 && now_stock - item->delta > threshold &&
        now_stock <= threshold)
        stock_low_notice(res, item->product_id, item->variant_id, now_stock,
                         threshold);
out:
    db_rows_free(rows);
    return st;
}

/* Appends v to a Postgres array literal being built in buf ("{1,2"). */
static void
array_append(char *buf, size_t len, int64_t v)
{
    size_t n = strlen(buf);

    snprintf(buf + n, len - n, "%s%" PRId64, n > 1 ? "," : "", v);
}

static od_status_t
lock_rows(apply_ctx_t *ctx, const db_stmt_t *stmt, const char *ids)
{
    const char *params[1] = {ids};

    /* no rows needed: the locks go out with the first stock change */
    return db_queue_run(ctx->db, stmt, 1, params, NULL, NULL, NULL, ctx->err,
                        ctx->errlen);
}

od_status_t
stock_restore_order(apply_ctx_t *ctx, const char *order_id, const char *reason,
                    cmd_result_t *res)
{
    const char *params[1] = {order_id};
    db_rows_t *rows = NULL;
    char *pids = NULL, *vids = NULL;
    size_t len;
    int n, i, nvariants = 0;
    int64_t last_pid = 0;
    od_status_t st;

    st = db_run(ctx->db, &stmt_order_lines, 1, params, &rows, ctx->err,
                ctx->errlen);
    if (st != OD_OK)
        goto out;
    n = db_nrows(rows);
    if (n == 0)
        goto out;
    len = (size_t)n * 22 + 3;
    pids = malloc(len);
    vids = malloc(len);
    if (pids == NULL || vids == NULL) {
        od_err(ctx->err, ctx->errlen, "out of memory");
        st = OD_FATAL;
        goto out;
    }
    strcpy(pids, "{");
    strcpy(vids, "{");
    /* rows come sorted by (product_id, variant_id): ids ascend */
    for (i = 0; i < n; i++) {
        int64_t pid = db_int64(rows, i, 0), vid = db_int64(rows, i, 1);

        if (pid != last_pid)
            array_append(pids, len, pid);
        last_pid = pid;
        if (vid != 0) {
            array_append(vids, len, vid);
            nvariants++;
        }
    }
    strcat(pids, "}");
    strcat(vids, "}");
    st = lock_rows(ctx, &stmt_lock_products, pids);
    if (st == OD_OK && nvariants > 0)
        st = lock_rows(ctx, &stmt_lock_variants, vids);
    for (i = 0; st == OD_OK && i < n; i++) {
        stock_item_t item = {db_int64(rows, i, 0), db_int64(rows, i, 1),
                             db_int64(rows, i, 2)};

        st = stock_apply(ctx, &item, reason, order_id, NULL, res);
        if (st == OD_REJECT) {
            /* an increment refused: the row is gone or would overflow */
            od_err(ctx->err, ctx->errlen,
                   "could not restore stock of product %" PRId64
                   " variant %" PRId64 " for order %s",
                   item.product_id, item.variant_id, order_id);
            st = OD_FATAL;
        }
    }
out:
    free(pids);
    free(vids);
    db_rows_free(rows);
    return st;
}
