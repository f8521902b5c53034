/* stock_adjust.c - adds to or takes from the stock of a product or variant
 *
 * DESIGN: the ledger row's reason is always 'adjust'; the operator's
 * free-text reason is echoed in the result details (the ledger's reason
 * column is a closed set). Adjusting the stock of a soft-deleted product is
 * allowed: inventory corrections do not depend on the product being sold.
 * stock_adjust_decide keeps the same rules over a batch snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"
#include "handlers.h"
#include "stock.h"

od_status_t
stock_adjust_parse(const json_t *root, void **out, char *err, size_t errlen)
{
    stock_adjust_cmd_t *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        od_err(err, errlen, "out of memory");
        return OD_REJECT;
    }
    /* INT64_MIN is refused so that -delta always exists */
    if (json_field_id(root, "product_id", 1, &c->product_id, err, errlen) < 0 ||
        json_field_id(root, "variant_id", 0, &c->variant_id, err, errlen) < 0 ||
        json_field_int(root, "delta", 1, -INT64_MAX, INT64_MAX, &c->delta, err,
                       errlen) < 0 ||
        json_field_str(root, "reason", 1, c->reason, sizeof(c->reason), err,
                       errlen) < 0)
        goto bad;
    if (c->delta == 0) {
        od_err(err, errlen, "field 'delta' must not be 0");
        goto bad;
    }
    *out = c;
    return OD_OK;
bad:
    free(c);
    return OD_REJECT;
}

const char *
stock_adjust_order_id(const void *cmd)
{
    (void)cmd;
    return NULL;
}

/* The snapshot's stock of the product or variant the command names, or
 * NULL with res rejected (product_not_found, unauthorized, variant_*), in
 * lock_target's order. */
static int64_t *
decide_target(decide_ctx_t *ctx, const stock_adjust_cmd_t *c, cmd_result_t *res)
{
    snap_product_t *p = snap_product(ctx->snap, c->product_id);
    snap_variant_t *v;

    if (p == NULL) {
        cmd_reject(res, "product_not_found",
                   json_pack("{s:I}", "product_id", (json_int_t)c->product_id));
        return NULL;
    }
    if (!catalogue_may_touch(ctx->env, p->vendor_id)) {
        cmd_reject(res, "unauthorized",
                   json_pack("{s:s}", "error",
                             "vendors may only adjust their own products"));
        return NULL;
    }
    if (p->is_variant && c->variant_id == 0) {
        cmd_reject(res, "variant_required",
                   json_pack("{s:I}", "product_id", (json_int_t)c->product_id));
        return NULL;
    }
    if (!p->is_variant && c->variant_id == 0)
        return &p->stock;
    v = p->is_variant ? snap_variant(ctx->snap, c->variant_id) : NULL;
    if (v == NULL || v->product_id != c->product_id) {
        cmd_reject(res, "variant_not_found",
                   json_pack("{s:I, s:I}", "product_id",
                             (json_int_t)c->product_id, "variant_id",
                             (json_int_t)c->variant_id));
        return NULL;
    }
    return &v->stock;
}

od_status_t
stock_adjust_decide(decide_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    const stock_adjust_cmd_t *c = cmd;
    const int64_t *stock = decide_target(ctx, c, res);

    if (stock == NULL)
        return OD_OK;
    if (c->delta < 0 && *stock < -c->delta)
        return cmd_reject(
            res, "insufficient_stock",
            json_pack("{s:I, s:o, s:I, s:I}", "product_id",
                      (json_int_t)c->product_id, "variant_id",
                      c->variant_id ? json_integer(c->variant_id) : json_null(),
                      "requested", (json_int_t)-c->delta, "available",
                      (json_int_t)*stock));
    if (c->delta > 0 && *stock > INT64_MAX - c->delta)
        return cmd_reject(
            res, "invalid_command",
            json_pack("{s:s}", "error", "the stock would overflow"));
    /* checked above: only a missing row can make the change fail */
    if (snap_stock_change(ctx->snap, ctx->env, c->product_id, c->variant_id,
                          c->delta, "adjust", NULL, res) < 0 ||
        ctx->snap->missing) {
        ctx->snap->missing = 1;
        return OD_FATAL;
    }
    res->details = json_pack(
        "{s:I, s:o, s:I, s:I, s:s}", "product_id", (json_int_t)c->product_id,
        "variant_id", c->variant_id ? json_integer(c->variant_id) : json_null(),
        "delta", (json_int_t)c->delta, "stock", (json_int_t)*stock, "reason",
        c->reason);
    return OD_OK;
}
