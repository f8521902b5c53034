/* batch_prepare.c - step 0 of a batch: parse its messages and gather
 * what the load must fetch
 *
 * DESIGN: every message is parsed once per attempt (command_parse, the
 * source's name, the event-time bounds) and its named orders, products,
 * variants, tax countries and dedup identity go into the arrays the load
 * sends as parameters. A replay's re-read batch, expected to be quiet
 * duplicates, parses and gathers the identities alone: that parse, not
 * the database, was what bounded the re-read rate. Values are checked before
 * they become array elements, so a malformed one refuses its own command
 * instead of failing the batch's load statement. Also here: which messages need
 * a row another executor holds (the carry decision reads the same fields).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "batch.h"

static void
need_product(batch_needs_t *n, const json_t *obj)
{
    char err[8];
    int64_t id;

    if (json_is_object(obj) &&
        json_field_id(obj, "product_id", 1, &id, err, sizeof(err)) == 0)
        pgarray_int(&n->products, id);
}

static void
need_variant(batch_needs_t *n, const json_t *obj, const char *field)
{
    char err[8];
    int64_t id;

    if (json_is_object(obj) &&
        json_field_id(obj, field, 1, &id, err, sizeof(err)) == 0)
        pgarray_int(&n->variants, id);
}

static void
need_country(batch_needs_t *n, const json_t *root, const char *field)
{
    const char *c = json_string_value(json_object_get(root, field));

    if (c != NULL && strlen(c) == 2)
        pgarray_text(&n->countries, c);
}

/* The rows one message may touch, read from its body: its order, the
 * products and variants it names (items and variants included), the tax
 * countries. Every value is checked before it becomes an array element:
 * a malformed one would fail the whole load statement. */
static void
gather(batch_needs_t *n, const batch_msg_t *m)
{
    const json_t *root = m->env.root, *arr, *it;
    const char *oid;
    size_t i;

    pgarray_text(&n->dsources, m->env.source);
    pgarray_text(&n->dkeys, m->env.dedup_key);
    if (!json_is_object(root))
        return;
    oid = json_string_value(json_object_get(root, "order_id"));
    if (oid != NULL && od_is_uuid(oid))
        pgarray_text(&n->orders, oid);
    need_product(n, root);
    need_variant(n, root, "variant_id");
    arr = json_object_get(root, "items");
    json_array_foreach(arr, i, it)
    {
        need_product(n, it);
        need_variant(n, it, "variant_id");
    }
    arr = json_object_get(root, "variants");
    json_array_foreach(arr, i, it)
    {
        need_variant(n, it, "variant_id");
    }
    need_country(n, root, "tax_country");
    need_country(n, root, "country");
    if (m->parsed == CMD_PARSE_OK && m->env.handler->creates_order &&
        m->env.order_id[0] != '\0') {
        pgarray_text(&n->creates, m->env.order_id);
        n->ncheckouts++;
    }
}

/* Parses one message into m->env; a parked command keeps its own source
 * and skips the checks it passed when it was first taken. */
void
batch_msg_prepare(batch_msg_t *m, const apply_config_t *cfg)
{
    m->parsed = command_parse(m->payload, m->len, m->src.ts_us, &m->env,
                              m->perr, sizeof(m->perr));
    snprintf(m->env.source, sizeof(m->env.source), "%s", m->src.source->name);
    if (m->parsed == CMD_PARSE_OK && !m->resumed && cfg != NULL &&
        m->src.source != sources_orderd() &&
        command_check_event_time(&m->env, m->src.ts_us, od_now_us(),
                                 cfg->max_clock_skew_us, cfg->max_event_age_us,
                                 m->perr, sizeof(m->perr)) < 0)
        m->parsed = CMD_PARSE_INVALID;
}

void
batch_msg_parse_identity(batch_msg_t *m)
{
    m->scanned = 0;
    m->parsed = command_parse_identity(m->payload, m->len, &m->env, m->perr,
                                       sizeof(m->perr));
    snprintf(m->env.source, sizeof(m->env.source), "%s", m->src.source->name);
}

/* A replay's re-read message: its identity only (see batch_prepare). */
static void
prepare_identity(batch_needs_t *n, batch_msg_t *m)
{
    memset(&m->env, 0, sizeof(m->env));
    m->scanned = command_scan_dedup_key(m->payload, m->len, m->env.dedup_key);
    if (m->scanned) {
        m->parsed = CMD_PARSE_OK;
        snprintf(m->env.source, sizeof(m->env.source), "%s",
                 m->src.source->name);
    } else {
        batch_msg_parse_identity(m);
    }
    if (m->parsed == CMD_PARSE_POISON)
        return;
    pgarray_text(&n->dsources, m->env.source);
    pgarray_text(&n->dkeys, m->env.dedup_key);
}

void
batch_prepare(const apply_config_t *cfg, batch_msg_t *msgs, int n,
              int dedup_only, batch_needs_t *needs)
{
    memset(needs, 0, sizeof(*needs));
    needs->dedup_only = dedup_only;
    for (int i = 0; i < n; i++) {
        batch_msg_t *m = &msgs[i];

        if (dedup_only) {
            prepare_identity(needs, m);
            continue;
        }
        batch_msg_prepare(m, cfg);
        if (m->parsed != CMD_PARSE_POISON)
            gather(needs, m);
    }
}

void
batch_needs_free(batch_needs_t *needs)
{
    pgarray_free(&needs->orders);
    pgarray_free(&needs->creates);
    pgarray_free(&needs->products);
    pgarray_free(&needs->variants);
    pgarray_free(&needs->countries);
    pgarray_free(&needs->dsources);
    pgarray_free(&needs->dkeys);
}

void
batch_msg_free(batch_msg_t *m)
{
    command_env_free(&m->env);
}

/* 1 if one of the order's items is of a held product: what the order's
 * commands change (stock comes back on a cancel, a refund, an expiry). */
static int
items_held(const snap_order_t *o, int64_t held)
{
    for (int i = 0; o != NULL && i < o->nitems; i++)
        if (o->items[i].product_id == held)
            return 1;
    return 0;
}

int
batch_msg_held(batch_t *b, const batch_msg_t *m)
{
    const json_t *root = m->env.root, *items, *it;
    const snap_order_t *order;
    const char *oid;
    size_t i;

    if (!json_is_object(root) ||
        (b->held_orders.n == 0 && b->held_products.n == 0))
        return 0;
    oid = json_string_value(json_object_get(root, "order_id"));
    for (int k = 0; oid != NULL && k < b->held_orders.n; k++)
        if (strcasecmp(oid, b->held_orders.v[k]) == 0)
            return 1;
    order = oid != NULL && b->held_products.n > 0 ? snap_order(&b->snap, oid)
                                                  : NULL;
    for (int k = 0; k < b->held_products.n; k++) {
        int64_t held = *(int64_t *)b->held_products.v[k], id;
        char err[8];

        if (items_held(order, held))
            return 1;

        if (json_field_id(root, "product_id", 1, &id, err, sizeof(err)) == 0 &&
            id == held)
            return 1;
        items = json_object_get(root, "items");
        json_array_foreach(items, i, it)
        {
            if (json_is_object(it) &&
                json_field_id(it, "product_id", 1, &id, err, sizeof(err)) ==
                    0 &&
                id == held)
                return 1;
        }
    }
    return 0;
}
