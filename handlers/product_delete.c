/* product_delete.c - soft-deletes a product and its variants
 *
 * DESIGN: deleted_at is set on the product and on every variant still
 * live; stock and ledger are untouched, so pending orders can still give
 * their stock back. Deleting a product that is already deleted is applied
 * with no change (details.already_deleted), so a producer's retry with a
 * new dedup key is harmless. product_delete_decide does the same over a
 * batch snapshot, which must hold every variant of the product.
 */
#include <stdlib.h>

#include "catalogue.h"
#include "handlers.h"

od_status_t
product_delete_parse(const json_t *root, void **out, char *err, size_t errlen)
{
    product_delete_cmd_t *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        od_err(err, errlen, "out of memory");
        return OD_REJECT;
    }
    if (json_field_id(root, "product_id", 1, &c->product_id, err, errlen) < 0) {
        free(c);
        return OD_REJECT;
    }
    *out = c;
    return OD_OK;
}

const char *
product_delete_order_id(const void *cmd)
{
    (void)cmd;
    return NULL;
}

od_status_t
product_delete_decide(decide_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    const product_delete_cmd_t *c = cmd;
    snapshot_t *s = ctx->snap;
    snap_product_t *p = snap_product(s, c->product_id);

    if (p == NULL)
        return cmd_reject(
            res, "product_not_found",
            json_pack("{s:I}", "product_id", (json_int_t)c->product_id));
    if (!catalogue_may_touch(ctx->env, p->vendor_id))
        return cmd_reject(res, "unauthorized",
                          json_pack("{s:s}", "error",
                                    "vendors may only delete their own "
                                    "products"));
    res->details =
        json_pack("{s:I, s:b}", "product_id", (json_int_t)c->product_id,
                  "already_deleted", p->deleted);
    if (p->deleted)
        return OD_OK;
    snap_touch_product(s, p);
    p->deleted = 1;
    p->dirty = 1;
    /* the variants still live go with it; those deleted before keep
     * their own deletion */
    for (int i = 0; i < s->variants.n; i++) {
        snap_variant_t *v = SNAP_ROW(s->variants, snap_variant_t, i);

        if (v->product_id != c->product_id || v->deleted)
            continue;
        snap_touch_variant(s, v);
        v->deleted = 1;
        v->dirty = 1;
    }
    return s->missing ? OD_FATAL : OD_OK;
}
