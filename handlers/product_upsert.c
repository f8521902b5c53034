/* product_upsert.c - creates or updates a product and its variants
 *
 * DESIGN: stock is never written directly: the row is created with stock 0
 * (or left as it is on update) and the difference to the requested stock
 * goes through stock_apply, which writes the ledger row ('initial' for a
 * new product or variant, 'adjust' otherwise; no row when nothing changes).
 * Decisions the contract leaves open:
 * - an upsert of a soft-deleted product revives it (deleted_at = NULL), and
 *   so are the listed variants; variants absent from an update of a variant
 *   product are left as they are (not deleted, not revived);
 * - the kind (simple/variant) of an existing product cannot change
 *   (invalid_command);
 * - a variant_id that belongs to another product is invalid_command: the
 *   command is malformed for this product, no variant is "missing";
 * - price_cents may be absent or null: the product (or variant) has no
 *   price yet and checkouts refuse it with price_missing.
 * product_upsert_decide keeps the same rules over a batch snapshot: every
 * check comes before the first change, and stock goes through
 * snap_stock_change, as it goes through stock_apply here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"
#include "handlers.h"
#include "money.h"
#include "stock.h"

static int
parse_variants(const json_t *arr, product_upsert_cmd_t *c, char *err,
               size_t errlen)
{
    size_t i, j;
    const json_t *v;

    if (!json_is_array(arr) || json_array_size(arr) < 1 ||
        json_array_size(arr) > CATALOGUE_MAX_VARIANTS) {
        od_err(err, errlen,
               "field 'variants' must be an array of 1..%d "
               "variants",
               CATALOGUE_MAX_VARIANTS);
        return -1;
    }
    json_array_foreach(arr, i, v)
    {
        catalogue_variant_t *cv = &c->variants[i];
        char ferr[200];

        if (!json_is_object(v)) {
            od_err(err, errlen, "variants[%zu] must be an object", i);
            return -1;
        }
        cv->price_cents = -1;
        if (json_field_id(v, "variant_id", 1, &cv->variant_id, ferr,
                          sizeof(ferr)) < 0 ||
            json_field_str(v, "name", 1, cv->name, sizeof(cv->name), ferr,
                           sizeof(ferr)) < 0 ||
            json_field_str(v, "sku", 1, cv->sku, sizeof(cv->sku), ferr,
                           sizeof(ferr)) < 0 ||
            json_field_int(v, "price_cents", 0, 0, INT64_MAX, &cv->price_cents,
                           ferr, sizeof(ferr)) < 0 ||
            json_field_int(v, "stock", 1, 0, INT64_MAX, &cv->stock, ferr,
                           sizeof(ferr)) < 0) {
            od_err(err, errlen, "variants[%zu]: %s", i, ferr);
            return -1;
        }
        for (j = 0; j < i; j++) {
            if (c->variants[j].variant_id == cv->variant_id) {
                od_err(err, errlen,
                       "variants[%zu]: variant_id %lld is "
                       "listed twice",
                       i, (long long)cv->variant_id);
                return -1;
            }
        }
    }
    c->nvariants = (int)json_array_size(arr);
    return 0;
}

od_status_t
product_upsert_parse(const json_t *root, void **out, char *err, size_t errlen)
{
    product_upsert_cmd_t *c = calloc(1, sizeof(*c));
    char kind[16];

    if (c == NULL) {
        od_err(err, errlen, "out of memory");
        return OD_REJECT;
    }
    c->price_cents = -1;
    c->low_stock_threshold = -1;
    if (json_field_id(root, "product_id", 1, &c->product_id, err, errlen) < 0 ||
        json_field_str(root, "vendor_id", 1, c->vendor_id, sizeof(c->vendor_id),
                       err, errlen) < 0 ||
        json_field_str(root, "name", 1, c->name, sizeof(c->name), err, errlen) <
            0 ||
        json_field_str(root, "sku", 1, c->sku, sizeof(c->sku), err, errlen) <
            0 ||
        catalogue_field_code(root, "currency", 1, 3, c->currency, err, errlen) <
            0 ||
        json_field_str(root, "kind", 1, kind, sizeof(kind), err, errlen) < 0 ||
        json_field_int(root, "low_stock_threshold", 0, 0, INT64_MAX,
                       &c->low_stock_threshold, err, errlen) < 0)
        goto bad;
    if (strcmp(kind, "simple") == 0) {
        if (json_object_get(root, "variants") != NULL) {
            od_err(err, errlen, "a simple product has no 'variants'");
            goto bad;
        }
        if (json_field_int(root, "price_cents", 0, 0, INT64_MAX,
                           &c->price_cents, err, errlen) < 0 ||
            json_field_int(root, "stock", 1, 0, INT64_MAX, &c->stock, err,
                           errlen) < 0)
            goto bad;
    } else if (strcmp(kind, "variant") == 0) {
        c->is_variant = 1;
        if (json_object_get(root, "price_cents") != NULL ||
            json_object_get(root, "stock") != NULL) {
            od_err(err, errlen,
                   "a variant product has no 'price_cents' or "
                   "'stock' of its own: they belong to its "
                   "variants");
            goto bad;
        }
        if (parse_variants(json_object_get(root, "variants"), c, err, errlen) <
            0)
            goto bad;
    } else {
        od_err(err, errlen, "field 'kind' must be 'simple' or 'variant'");
        goto bad;
    }
    *out = c;
    return OD_OK;
bad:
    free(c);
    return OD_REJECT;
}

const char *
product_upsert_order_id(const void *cmd)
{
    (void)cmd;
    return NULL;
}

/*
 * The snapshot rows of the listed variants (NULL: a new variant), each
 * checked to belong to the product. 0, or -1 with res rejected
 * invalid_command naming the lowest offending id (the one apply's locking
 * read, in id order, meets first).
 */
static int
decide_variant_rows(snapshot_t *s, const product_upsert_cmd_t *c,
                    snap_variant_t **rows, cmd_result_t *res)
{
    const snap_variant_t *bad = NULL;

    for (int i = 0; i < c->nvariants; i++) {
        rows[i] = snap_variant(s, c->variants[i].variant_id);
        if (rows[i] != NULL && rows[i]->product_id != c->product_id &&
            (bad == NULL || rows[i]->id < bad->id))
            bad = rows[i];
    }
    if (bad == NULL)
        return 0;
    cmd_reject(res, "invalid_command",
               json_pack("{s:s, s:I, s:I}", "error",
                         "variant_id belongs to another product", "variant_id",
                         (json_int_t)bad->id, "product_id",
                         (json_int_t)bad->product_id));
    return -1;
}

/* Creates the product row (p NULL) or updates p: the catalogue fields, and
 * a deleted product revived. NULL when no row could be added. */
static snap_product_t *
decide_product_row(snapshot_t *s, snap_product_t *p,
                   const product_upsert_cmd_t *c)
{
    if (p == NULL) {
        p = snap_add_product(s, c->product_id);
        if (p == NULL)
            return NULL;
        p->exists = 0;
        p->is_variant = c->is_variant;
        p->stock = 0; /* snap_stock_change brings it to its value */
        p->low_stock_threshold = 0;
    } else {
        snap_touch_product(s, p);
    }
    if (c->low_stock_threshold >= 0) /* absent: kept (0 when new) */
        p->low_stock_threshold = c->low_stock_threshold;
    snprintf(p->vendor_id, sizeof(p->vendor_id), "%s", c->vendor_id);
    snprintf(p->name, sizeof(p->name), "%s", c->name);
    snprintf(p->sku, sizeof(p->sku), "%s", c->sku);
    memcpy(p->currency, c->currency, sizeof(p->currency));
    p->price_cents = c->price_cents; /* -1 for a variant product */
    p->deleted = 0;
    p->dirty = 1;
    return p;
}

/* Brings one product or variant from its current stock to the target
 * ('initial' when created, no ledger row when unchanged). 0, or -1 with
 * the snapshot marked missing: both values are >= 0, so only a missing
 * row can make the change fail. */
static int
decide_stock(decide_ctx_t *ctx, int64_t product_id, int64_t variant_id,
             int64_t current, int64_t target, int created, cmd_result_t *res)
{
    if (target == current)
        return 0;
    if (snap_stock_change(ctx->snap, ctx->env, product_id, variant_id,
                          target - current, created ? "initial" : "adjust",
                          NULL, res) < 0) {
        ctx->snap->missing = 1;
        return -1;
    }
    return 0;
}

/* Creates or updates (and revives) the listed variants of c, whose rows
 * decide_variant_rows found, and sets their stock. 0 or -1 (missing). */
static int
decide_variants(decide_ctx_t *ctx, const product_upsert_cmd_t *c,
                snap_variant_t **rows, cmd_result_t *res)
{
    for (int i = 0; i < c->nvariants; i++) {
        const catalogue_variant_t *cv = &c->variants[i];
        snap_variant_t *v = rows[i];
        int created = v == NULL;

        if (created) {
            v = snap_add_variant(ctx->snap, cv->variant_id, c->product_id);
            if (v == NULL) {
                ctx->snap->missing = 1;
                return -1;
            }
            v->exists = 0;
            v->stock = 0;
        } else {
            snap_touch_variant(ctx->snap, v);
        }
        snprintf(v->name, sizeof(v->name), "%s", cv->name);
        snprintf(v->sku, sizeof(v->sku), "%s", cv->sku);
        v->price_cents = cv->price_cents;
        v->deleted = 0;
        v->dirty = 1;
        if (decide_stock(ctx, c->product_id, cv->variant_id, v->stock,
                         cv->stock, created, res) < 0)
            return -1;
    }
    return 0;
}

od_status_t
product_upsert_decide(decide_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    const product_upsert_cmd_t *c = cmd;
    snapshot_t *s = ctx->snap;
    snap_product_t *p = snap_product(s, c->product_id);
    snap_variant_t *rows[CATALOGUE_MAX_VARIANTS];
    int created = p == NULL, revived = p != NULL && p->deleted;

    /* a vendor may only write its own products, and never hand one over */
    if (!catalogue_may_touch(ctx->env, c->vendor_id) ||
        (p != NULL && !catalogue_may_touch(ctx->env, p->vendor_id)))
        return cmd_reject(res, "unauthorized",
                          json_pack("{s:s}", "error",
                                    "vendors may only change their own "
                                    "products"));
    if (p != NULL && p->is_variant != c->is_variant)
        return cmd_reject(
            res, "invalid_command",
            json_pack("{s:s, s:s}", "error",
                      "the kind of an existing product cannot change", "kind",
                      p->is_variant ? "variant" : "simple"));
    if (c->is_variant && decide_variant_rows(s, c, rows, res) < 0)
        return OD_OK;
    /* checked: now the product row first (stock changes need it), then
     * its stock or its variants */
    p = decide_product_row(s, p, c);
    if (p == NULL) {
        s->missing = 1;
        return OD_FATAL;
    }
    if (c->is_variant) {
        if (decide_variants(ctx, c, rows, res) < 0)
            return OD_FATAL;
    } else if (decide_stock(ctx, c->product_id, 0, p->stock, c->stock, created,
                            res) < 0) {
        return OD_FATAL;
    }
    if (s->missing) /* a change could not be recorded */
        return OD_FATAL;
    res->details =
        json_pack("{s:I, s:b, s:b}", "product_id", (json_int_t)c->product_id,
                  "created", created, "revived", revived);
    return OD_OK;
}
