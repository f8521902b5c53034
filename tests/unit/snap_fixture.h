/* snap_fixture.h - snapshots built by hand for the decide unit tests: a
 * catalogue, orders with their items, and command envelopes */
#ifndef OD_SNAP_FIXTURE_H
#define OD_SNAP_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../handlers/snapshot.h"

/* A simple product as the load would hold it. */
static inline snap_product_t *
fx_product(snapshot_t *s, int64_t id, const char *vendor, int64_t price,
           int64_t stock)
{
    snap_product_t *p = snap_add_product(s, id);

    ck_assert_ptr_nonnull(p);
    p->exists = 1;
    snprintf(p->vendor_id, sizeof(p->vendor_id), "%s", vendor);
    snprintf(p->name, sizeof(p->name), "product %lld", (long long)id);
    snprintf(p->sku, sizeof(p->sku), "SKU-%lld", (long long)id);
    memcpy(p->currency, "EUR", 4);
    p->price_cents = price;
    p->stock = stock;
    return p;
}

/* A variant product with no variants yet (add them with fx_variant). */
static inline snap_product_t *
fx_variant_product(snapshot_t *s, int64_t id, const char *vendor)
{
    snap_product_t *p = fx_product(s, id, vendor, -1, 0);

    p->is_variant = 1;
    return p;
}

static inline snap_variant_t *
fx_variant(snapshot_t *s, int64_t id, int64_t product_id, int64_t price,
           int64_t stock)
{
    snap_variant_t *v = snap_add_variant(s, id, product_id);

    ck_assert_ptr_nonnull(v);
    v->exists = 1;
    snprintf(v->name, sizeof(v->name), "variant %lld", (long long)id);
    snprintf(v->sku, sizeof(v->sku), "SKU-V%lld", (long long)id);
    v->price_cents = price;
    v->stock = stock;
    return v;
}

/* An existing order in status st with no items (add them with
 * fx_item); total as given, currency EUR. */
static inline snap_order_t *
fx_order(snapshot_t *s, const char *id, const char *customer, fsm_status_t st,
         int64_t total)
{
    snap_order_t *o = snap_add_order(s, id);

    ck_assert_ptr_nonnull(o);
    o->exists = 1;
    snprintf(o->number, sizeof(o->number), "ORD-00000001");
    snprintf(o->customer_id, sizeof(o->customer_id), "%s", customer);
    o->status = st;
    memcpy(o->currency, "EUR", 4);
    o->subtotal_cents = total;
    o->total_cents = total;
    o->created_at_us = 1795255200LL * 1000000;
    o->expires_at_us = o->created_at_us + 900LL * 1000000;
    snprintf(o->source, sizeof(o->source), "default");
    return o;
}

/* A line of o (the stock it took is the caller's business). */
static inline void
fx_item(snap_order_t *o, int64_t product_id, int64_t variant_id,
        const char *vendor, int64_t qty, int64_t price)
{
    snap_item_t *it;

    o->items = realloc(o->items, (size_t)(o->nitems + 1) * sizeof(*it));
    ck_assert_ptr_nonnull(o->items);
    it = &o->items[o->nitems++];
    memset(it, 0, sizeof(*it));
    it->line_no = o->nitems;
    it->product_id = product_id;
    it->variant_id = variant_id;
    snprintf(it->vendor_id, sizeof(it->vendor_id), "%s", vendor);
    snprintf(it->sku, sizeof(it->sku), "SKU-%lld", (long long)product_id);
    snprintf(it->name, sizeof(it->name), "product %lld", (long long)product_id);
    it->quantity = qty;
    it->unit_price_cents = price;
}

/* An envelope: role, actor id, key; source "default"; event time at the
 * fixture orders' creation plus offset_s. */
static inline cmd_env_t
fx_env(cmd_role_t role, const char *actor, const char *key, int64_t offset_s)
{
    cmd_env_t env;

    memset(&env, 0, sizeof(env));
    env.role = role;
    snprintf(env.actor_id, sizeof(env.actor_id), "%s", actor);
    snprintf(env.dedup_key, sizeof(env.dedup_key), "%s", key);
    snprintf(env.source, sizeof(env.source), "default");
    env.event_time_us = 1795255200LL * 1000000 + offset_s * 1000000;
    return env;
}

/* The settings the decide tests run with. */
static inline domain_config_t
fx_cfg(void)
{
    domain_config_t c = {0, 900, 0, "ORD-", "orders.events"};

    return c;
}

/* The number of extra events of a type on a result. */
static inline int
fx_events(const cmd_result_t *res, const char *type)
{
    size_t i;
    json_t *e;
    int n = 0;

    json_array_foreach(res->events, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "type")), type) == 0)
            n++;
    }
    return n;
}

#endif
