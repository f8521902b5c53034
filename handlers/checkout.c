/* checkout.c - creates a pending order and reserves its stock
 *
 * DESIGN: all-or-nothing in four steps, few round trips:
 * 1. does the order exist, and the tax rate of tax_country (in the same
 *    query as the product locks of step 2);
 * 2. lock the products, then the variants, each in ascending id order
 *    with one FOR UPDATE statement (the global locking order; lines are
 *    aggregated and sorted per (product, variant) at parse time, so two
 *    checkouts naming the same products in any order cannot deadlock);
 * 3. check every line against what is locked (checkout_check: pure) and
 *    compute the totals, overflow-checked;
 * 4. one statement inserts the order, its items (snapshots of sku, names,
 *    vendor and the current price, joined from the locked rows) and the
 *    first history row; then the guarded decrements write the ledger.
 * The order number comes from nextval() inside that insert, so refused
 * checkouts burn no numbers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkout.h"
#include "snapshot.h"
#include "catalogue.h"
#include "handlers.h"
#include "stock.h"

od_status_t
checkout_parse(const json_t *root, void **out, char *err, size_t errlen)
{
    checkout_cmd_t *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        od_err(err, errlen, "out of memory");
        return OD_REJECT;
    }
    if (json_field_uuid(root, "order_id", 1, c->order_id, err, errlen) < 0 ||
        json_field_str(root, "customer_id", 1, c->customer_id,
                       sizeof(c->customer_id), err, errlen) < 0 ||
        catalogue_field_code(root, "currency", 1, 3, c->currency, err, errlen) <
            0 ||
        catalogue_field_code(root, "tax_country", 0, 2, c->tax_country, err,
                             errlen) < 0 ||
        json_field_int(root, "ttl_seconds", 0, 1, CHECKOUT_MAX_TTL_S, &c->ttl_s,
                       err, errlen) < 0 ||
        checkout_parse_lines(json_object_get(root, "items"), c, err, errlen) <
            0) {
        free(c);
        return OD_REJECT;
    }
    *out = c;
    return OD_OK;
}

const char *
checkout_order_id(const void *cmd)
{
    return ((const checkout_cmd_t *)cmd)->order_id;
}

#define CHECKOUT_ARRAY_LEN (CHECKOUT_MAX_LINES * 22 + 3)

/* What the snapshot says about each group, as checkout_check reads it. */
static void
snapshot_states(snapshot_t *s, const checkout_cmd_t *c,
                checkout_state_t *states)
{
    memset(states, 0, sizeof(*states) * (size_t)c->ngroups);
    for (int i = 0; i < c->ngroups; i++) {
        const checkout_group_t *g = &c->groups[i];
        checkout_state_t *st = &states[i];
        const snap_product_t *p = snap_product(s, g->product_id);
        const snap_variant_t *v;

        if (p == NULL)
            continue;
        st->product_found = 1;
        st->product_is_variant = p->is_variant;
        st->product_deleted = p->deleted;
        memcpy(st->currency, p->currency, sizeof(st->currency));
        st->price_known = p->price_cents >= 0;
        st->price_cents = st->price_known ? p->price_cents : 0;
        st->stock = p->is_variant ? 0 : p->stock;
        if (g->variant_id == 0)
            continue;
        /* the variant decides price and stock */
        st->price_known = 0;
        st->price_cents = 0;
        st->stock = 0;
        v = snap_variant(s, g->variant_id);
        if (v == NULL)
            continue;
        st->variant_found = 1;
        st->variant_product_id = v->product_id;
        st->variant_deleted = v->deleted;
        st->price_known = v->price_cents >= 0;
        st->price_cents = st->price_known ? v->price_cents : 0;
        st->stock = v->stock;
    }
}

/* The new order's row and items, from the command and the catalogue. */
static od_status_t
create_order(decide_ctx_t *ctx, const checkout_cmd_t *c,
             const checkout_state_t *states, int64_t rate_bps,
             const int64_t totals[3], snap_order_t **out)
{
    snapshot_t *s = ctx->snap;
    const cmd_env_t *env = ctx->env;
    int64_t n = snap_take_number(s), ttl_us;
    snap_order_t *o;

    if (n < 0 || (o = snap_add_order(s, c->order_id)) == NULL)
        goto missing;
    o->items = calloc((size_t)c->ngroups, sizeof(*o->items));
    if (o->items == NULL)
        goto missing;
    o->created = 1;
    snprintf(o->number, sizeof(o->number), "%s%08lld",
             ctx->cfg->order_prefix ? ctx->cfg->order_prefix : "",
             (long long)n);
    snprintf(o->customer_id, sizeof(o->customer_id), "%s", c->customer_id);
    o->status = FSM_PENDING;
    memcpy(o->currency, c->currency, sizeof(o->currency));
    memcpy(o->tax_country, c->tax_country, sizeof(o->tax_country));
    o->tax_rate_bps = rate_bps;
    o->subtotal_cents = totals[0];
    o->tax_cents = totals[1];
    o->total_cents = totals[2];
    o->created_at_us = env->event_time_us;
    ttl_us = (c->ttl_s ? c->ttl_s : ctx->cfg->pending_ttl_s) * 1000000;
    if (__builtin_add_overflow(env->event_time_us, ttl_us, &o->expires_at_us))
        o->expires_at_us = INT64_MAX;
    snprintf(o->dedup_key, sizeof(o->dedup_key), "%s", env->dedup_key);
    snprintf(o->source, sizeof(o->source), "%s", env->source);
    for (int i = 0; i < c->ngroups; i++) {
        const checkout_group_t *g = &c->groups[i];
        const snap_product_t *p = snap_product(s, g->product_id);
        const snap_variant_t *v =
            g->variant_id ? snap_variant(s, g->variant_id) : NULL;
        snap_item_t *it = &o->items[o->nitems++];

        if (p == NULL || (g->variant_id && v == NULL))
            goto missing;
        it->line_no = i + 1;
        it->product_id = g->product_id;
        it->variant_id = g->variant_id;
        snprintf(it->vendor_id, sizeof(it->vendor_id), "%s", p->vendor_id);
        snprintf(it->sku, sizeof(it->sku), "%s", v ? v->sku : p->sku);
        snprintf(it->name, sizeof(it->name), "%s", p->name);
        snprintf(it->variant_name, sizeof(it->variant_name), "%s",
                 v ? v->name : "");
        it->quantity = g->quantity;
        it->unit_price_cents = states[i].price_cents;
    }
    *out = o;
    return OD_OK;
missing:
    s->missing = 1;
    return OD_FATAL;
}

od_status_t
checkout_decide(decide_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    const checkout_cmd_t *c = cmd;
    snapshot_t *s = ctx->snap;
    checkout_state_t states[CHECKOUT_MAX_LINES];
    int64_t rate_bps, totals[3];
    const char *reason;
    json_t *details;
    snap_order_t *o;

    snprintf(res->order_id, sizeof(res->order_id), "%s", c->order_id);
    if (ctx->env->role == ROLE_CUSTOMER &&
        strcmp(ctx->env->actor_id, c->customer_id) != 0)
        return cmd_reject(res, "unauthorized",
                          json_pack("{s:s}", "error",
                                    "customers may only check out for "
                                    "themselves"));
    if (snap_order(s, c->order_id) != NULL)
        return cmd_reject(res, "order_exists", NULL);
    rate_bps = c->tax_country[0] ? snap_tax_rate(s, c->tax_country) : -1;
    if (rate_bps < 0)
        rate_bps = ctx->cfg->default_tax_bps;
    snapshot_states(s, c, states);
    reason = checkout_check(c, states, &details);
    if (reason != NULL)
        return cmd_reject(res, reason, details);
    if (checkout_totals(c, states, rate_bps, &totals[0], &totals[1],
                        &totals[2]) < 0)
        return cmd_reject(
            res, "invalid_command",
            json_pack("{s:s}", "error", "the order total overflows"));
    if (create_order(ctx, c, states, rate_bps, totals, &o) != OD_OK)
        return OD_FATAL;
    snap_history_add(s, o->id, -1, FSM_PENDING, ctx->env, NULL);
    /* the reservation: the groups were checked against this stock */
    for (int i = 0; i < c->ngroups; i++)
        if (snap_stock_change(s, ctx->env, c->groups[i].product_id,
                              c->groups[i].variant_id, -c->groups[i].quantity,
                              "order", o->id, res) < 0) {
            s->missing = 1;
            return OD_FATAL;
        }
    return OD_OK;
}
