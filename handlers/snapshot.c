/* snapshot.c - the batch's rows in memory: lookups, changes with undo,
 * stock and status changes with their ledger and history rows
 *
 * DESIGN: the undo log holds, per row changed since the oldest open mark,
 * a copy of the row as it was (snap_touch_* saves it once per mark level:
 * a second touch of the same row after the same mark is free). Rolling
 * back copies the saved rows back in reverse order and truncates the
 * append-only logs and the row vectors to their lengths at the mark.
 */
#include "snapshot.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stock.h"

typedef enum undo_kind { UNDO_PRODUCT, UNDO_VARIANT, UNDO_ORDER } undo_kind_t;

typedef struct undo {
    undo_kind_t kind;
    void *row;  /* the live row */
    void *copy; /* as it was */
    int mark;   /* undo length when saved: one save per row and mark */
} undo_t;

int
snap_vec_push(snap_vec_t *v, void *elem)
{
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 32;
        void **grown = realloc(v->v, (size_t)cap * sizeof(*grown));

        if (grown == NULL)
            return -1;
        v->v = grown;
        v->cap = cap;
    }
    v->v[v->n++] = elem;
    return 0;
}

void *
snap_vec_new(snap_vec_t *v, size_t size)
{
    void *e = calloc(1, size);

    if (e == NULL || snap_vec_push(v, e) < 0) {
        free(e);
        return NULL;
    }
    return e;
}

static void
order_free(snap_order_t *o)
{
    if (o != NULL)
        free(o->items);
    free(o);
}

static void
vec_truncate(snap_vec_t *v, int n, int orders)
{
    while (v->n > n) {
        void *e = v->v[--v->n];

        if (orders)
            order_free(e);
        else
            free(e);
    }
}

static void
undo_free(undo_t *u)
{
    if (u->kind == UNDO_ORDER)
        free(((snap_order_t *)u->copy)->items);
    free(u->copy);
    free(u);
}

void
snap_init(snapshot_t *s)
{
    memset(s, 0, sizeof(*s));
}

void
snap_free(snapshot_t *s)
{
    vec_truncate(&s->products, 0, 0);
    vec_truncate(&s->variants, 0, 0);
    vec_truncate(&s->orders, 0, 1);
    vec_truncate(&s->taxes, 0, 0);
    vec_truncate(&s->ledger, 0, 0);
    vec_truncate(&s->history, 0, 0);
    while (s->undo.n > 0)
        undo_free(s->undo.v[--s->undo.n]);
    free(s->products.v);
    free(s->variants.v);
    free(s->orders.v);
    free(s->taxes.v);
    free(s->ledger.v);
    free(s->history.v);
    free(s->undo.v);
    free(s->numbers);
    memset(s, 0, sizeof(*s));
}

snap_mark_t
snap_mark(const snapshot_t *s)
{
    snap_mark_t m = {s->undo.n,   s->ledger.n,    s->history.n,
                     s->orders.n, s->products.n,  s->variants.n,
                     s->taxes.n,  s->numbers_used};

    return m;
}

void
snap_rollback(snapshot_t *s, snap_mark_t m)
{
    /* rows saved since the mark, newest first, back to how they were */
    while (s->undo.n > m.undo) {
        undo_t *u = s->undo.v[--s->undo.n];

        switch (u->kind) {
        case UNDO_PRODUCT:
            memcpy(u->row, u->copy, sizeof(snap_product_t));
            break;
        case UNDO_VARIANT:
            memcpy(u->row, u->copy, sizeof(snap_variant_t));
            break;
        case UNDO_ORDER: {
            snap_order_t *o = u->row, *c = u->copy;

            free(o->items);
            memcpy(o, c, sizeof(*o));
            c->items = NULL; /* now the row's again */
            break;
        }
        }
        undo_free(u);
    }
    vec_truncate(&s->ledger, m.ledger, 0);
    vec_truncate(&s->history, m.history, 0);
    vec_truncate(&s->orders, m.orders, 1);
    vec_truncate(&s->products, m.products, 0);
    vec_truncate(&s->variants, m.variants, 0);
    vec_truncate(&s->taxes, m.taxes, 0);
    s->numbers_used = m.numbers_used;
}

/* Saves row (of kind, size bytes) unless it was saved since the last
 * mark. A failed save is fatal to the batch: s->missing is set so the
 * command becomes an internal error instead of an unrecoverable change. */
static void
touch(snapshot_t *s, undo_kind_t kind, void *row, size_t size)
{
    undo_t *u;

    for (int i = s->undo.n - 1; i >= 0; i--) {
        undo_t *x = s->undo.v[i];

        if (x->row == row)
            return; /* saved already: rolling back restores the oldest */
    }
    u = calloc(1, sizeof(*u));
    if (u == NULL || (u->copy = malloc(size)) == NULL) {
        free(u);
        s->missing = 1;
        return;
    }
    u->kind = kind;
    u->row = row;
    memcpy(u->copy, row, size);
    if (kind == UNDO_ORDER) {
        snap_order_t *o = row, *c = u->copy;

        c->items = NULL;
        if (o->nitems > 0) {
            c->items = malloc((size_t)o->nitems * sizeof(snap_item_t));
            if (c->items == NULL) {
                free(u->copy);
                free(u);
                s->missing = 1;
                return;
            }
            memcpy(c->items, o->items, (size_t)o->nitems * sizeof(snap_item_t));
        }
    }
    if (snap_vec_push(&s->undo, u) < 0) {
        if (kind == UNDO_ORDER)
            free(((snap_order_t *)u->copy)->items);
        free(u->copy);
        free(u);
        s->missing = 1;
    }
}

void
snap_touch_product(snapshot_t *s, snap_product_t *p)
{
    touch(s, UNDO_PRODUCT, p, sizeof(*p));
}

void
snap_touch_variant(snapshot_t *s, snap_variant_t *v)
{
    touch(s, UNDO_VARIANT, v, sizeof(*v));
}

void
snap_touch_order(snapshot_t *s, snap_order_t *o)
{
    touch(s, UNDO_ORDER, o, sizeof(*o));
}

void
snap_forget_undo(snapshot_t *s)
{
    while (s->undo.n > 0)
        undo_free(s->undo.v[--s->undo.n]);
}

snap_product_t *
snap_product(snapshot_t *s, int64_t id)
{
    for (int i = 0; i < s->products.n; i++) {
        snap_product_t *p = s->products.v[i];

        if (p->id == id)
            return p;
    }
    return NULL;
}

snap_variant_t *
snap_variant(snapshot_t *s, int64_t id)
{
    for (int i = 0; i < s->variants.n; i++) {
        snap_variant_t *v = s->variants.v[i];

        if (v->id == id)
            return v;
    }
    return NULL;
}

snap_order_t *
snap_order(snapshot_t *s, const char *id)
{
    for (int i = 0; i < s->orders.n; i++) {
        snap_order_t *o = s->orders.v[i];

        if (strcmp(o->id, id) == 0)
            return o;
    }
    return NULL;
}

int64_t
snap_tax_rate(snapshot_t *s, const char *country)
{
    /* newest first: snap_set_tax_rate appends versions */
    for (int i = s->taxes.n - 1; i >= 0; i--) {
        snap_tax_rate_t *t = s->taxes.v[i];

        if (strcmp(t->country, country) == 0)
            return t->rate_bps;
    }
    return -1;
}

snap_product_t *
snap_add_product(snapshot_t *s, int64_t id)
{
    snap_product_t *p = snap_vec_new(&s->products, sizeof(*p));

    if (p != NULL) {
        p->id = id;
        p->price_cents = -1;
    }
    return p;
}

snap_variant_t *
snap_add_variant(snapshot_t *s, int64_t id, int64_t product_id)
{
    snap_variant_t *v = snap_vec_new(&s->variants, sizeof(*v));

    if (v != NULL) {
        v->id = id;
        v->product_id = product_id;
        v->price_cents = -1;
    }
    return v;
}

snap_order_t *
snap_add_order(snapshot_t *s, const char *id)
{
    snap_order_t *o = snap_vec_new(&s->orders, sizeof(*o));

    if (o != NULL)
        snprintf(o->id, sizeof(o->id), "%s", id);
    return o;
}

void
snap_set_tax_rate(snapshot_t *s, const char *country, int64_t rate_bps)
{
    /* a new version is appended (rolling back removes it, lookups find
     * the newest first, the writer writes the newest of each country) */
    snap_tax_rate_t *t = snap_vec_new(&s->taxes, sizeof(*t));

    if (t == NULL) {
        s->missing = 1;
        return;
    }
    snprintf(t->country, sizeof(t->country), "%s", country);
    t->rate_bps = rate_bps;
    t->dirty = 1;
}

static void
ledger_add(snapshot_t *s, const cmd_env_t *env, int64_t product_id,
           int64_t variant_id, int64_t delta, const char *reason,
           const char *order_id)
{
    snap_ledger_t *l = snap_vec_new(&s->ledger, sizeof(*l));

    if (l == NULL) {
        s->missing = 1;
        return;
    }
    l->product_id = product_id;
    l->variant_id = variant_id;
    l->delta = delta;
    l->reason = reason;
    snprintf(l->order_id, sizeof(l->order_id), "%s",
             order_id != NULL ? order_id : "");
    snprintf(l->dedup_key, sizeof(l->dedup_key), "%s", env->dedup_key);
    snprintf(l->source, sizeof(l->source), "%s", env->source);
}

/* before + delta into *after; 0, or -1 when it would overflow or go below
 * zero (money_add refuses a negative delta: a decrement is no sum of
 * amounts) */
static int
stock_add(int64_t before, int64_t delta, int64_t *after)
{
    if (__builtin_add_overflow(before, delta, after) || *after < 0)
        return -1;
    return 0;
}

int
snap_stock_change(snapshot_t *s, const cmd_env_t *env, int64_t product_id,
                  int64_t variant_id, int64_t delta, const char *reason,
                  const char *order_id, cmd_result_t *res)
{
    snap_product_t *p = snap_product(s, product_id);
    int64_t before, after;

    if (p == NULL) {
        s->missing = 1;
        return -1;
    }
    if (variant_id == 0) {
        before = p->stock;
        if (p->is_variant || stock_add(before, delta, &after) < 0)
            return -1;
        snap_touch_product(s, p);
        p->stock = after;
        p->stock_dirty = 1;
    } else {
        snap_variant_t *v = snap_variant(s, variant_id);

        if (v == NULL || v->product_id != product_id) {
            s->missing = v == NULL;
            return -1;
        }
        before = v->stock;
        if (stock_add(before, delta, &after) < 0)
            return -1;
        snap_touch_variant(s, v);
        v->stock = after;
        v->stock_dirty = 1;
    }
    if (delta != 0)
        ledger_add(s, env, product_id, variant_id, delta, reason, order_id);
    if (res != NULL && delta < 0 && before > p->low_stock_threshold &&
        after <= p->low_stock_threshold)
        stock_low_notice(res, product_id, variant_id, after,
                         p->low_stock_threshold);
    return 0;
}

void
snap_history_add(snapshot_t *s, const char *order_id, int from, fsm_status_t to,
                 const cmd_env_t *env, const char *note)
{
    snap_history_t *h = snap_vec_new(&s->history, sizeof(*h));

    if (h == NULL) {
        s->missing = 1;
        return;
    }
    snprintf(h->order_id, sizeof(h->order_id), "%s", order_id);
    h->from = from;
    h->to = to;
    h->role = env->role;
    snprintf(h->actor_id, sizeof(h->actor_id), "%s", env->actor_id);
    snprintf(h->dedup_key, sizeof(h->dedup_key), "%s", env->dedup_key);
    snprintf(h->source, sizeof(h->source), "%s", env->source);
    snprintf(h->note, sizeof(h->note), "%s", note != NULL ? note : "");
}

int
snap_order_transition(snapshot_t *s, snap_order_t *o, fsm_status_t to,
                      const cmd_env_t *env, const char *note, cmd_result_t *res)
{
    if (!fsm_can(o->status, to)) {
        order_reject_transition(res, o->status, to, NULL);
        return -1;
    }
    snap_history_add(s, o->id, (int)o->status, to, env, note);
    snap_touch_order(s, o);
    o->status = to;
    return 0;
}

int
snap_restore_order_stock(snapshot_t *s, const snap_order_t *o,
                         const char *reason, const cmd_env_t *env,
                         cmd_result_t *res)
{
    /* per (product, variant), in line order of first appearance: the
     * ledger then reads as the order did */
    for (int i = 0; i < o->nitems; i++) {
        const snap_item_t *it = &o->items[i];
        int64_t qty = 0;
        int first = 1;

        for (int j = 0; j < o->nitems; j++) {
            if (o->items[j].product_id != it->product_id ||
                o->items[j].variant_id != it->variant_id)
                continue;
            if (j < i)
                first = 0;
            qty += o->items[j].quantity;
        }
        if (!first)
            continue;
        if (snap_stock_change(s, env, it->product_id, it->variant_id, qty,
                              reason, o->id, res) < 0) {
            s->missing = 1;
            return -1;
        }
    }
    return 0;
}

int64_t
snap_take_number(snapshot_t *s)
{
    if (s->numbers_used >= s->nnumbers)
        return -1;
    return s->numbers[s->numbers_used++];
}

json_t *
snap_order_json(const snap_order_t *o)
{
    char at[40];
    json_t *items = json_array();

    for (int i = 0; i < o->nitems; i++) {
        const snap_item_t *it = &o->items[i];

        json_array_append_new(
            items,
            json_pack("{s:I, s:o, s:s, s:s, s:o, s:I, s:I}", "product_id",
                      (json_int_t)it->product_id, "variant_id",
                      it->variant_id ? json_integer(it->variant_id)
                                     : json_null(),
                      "sku", it->sku, "name", it->name, "variant_name",
                      it->variant_name[0] ? json_string(it->variant_name)
                                          : json_null(),
                      "quantity", (json_int_t)it->quantity, "unit_price_cents",
                      (json_int_t)it->unit_price_cents));
    }
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:I, s:I, s:I,"
        " s:s, s:o}",
        "id", o->id, "number", o->number, "status", fsm_status_name(o->status),
        "customer_id", o->customer_id, "currency", o->currency,
        "subtotal_cents", (json_int_t)o->subtotal_cents, "tax_country",
        o->tax_country[0] ? json_string(o->tax_country) : json_null(),
        "tax_rate_bps", (json_int_t)o->tax_rate_bps, "tax_cents",
        (json_int_t)o->tax_cents, "total_cents", (json_int_t)o->total_cents,
        "expires_at", od_format_time(o->expires_at_us, at, sizeof(at)), "items",
        items);
}

snap_order_t *
decide_open_order(decide_ctx_t *ctx, const char *order_id, cmd_result_t *res)
{
    const cmd_env_t *env = ctx->env;
    snap_order_t *o = snap_order(ctx->snap, order_id);
    int allowed = 1;

    snprintf(res->order_id, sizeof(res->order_id), "%s", order_id);
    if (o == NULL || (!o->exists && !o->created)) {
        cmd_reject(res, "order_not_found", NULL);
        return NULL;
    }
    if (env->role == ROLE_CUSTOMER) {
        allowed = strcmp(env->actor_id, o->customer_id) == 0;
    } else if (env->role == ROLE_VENDOR) {
        allowed = o->nitems > 0;
        for (int i = 0; i < o->nitems && allowed; i++)
            allowed = strcmp(o->items[i].vendor_id, env->actor_id) == 0;
    }
    if (!allowed) {
        cmd_reject(res, "unauthorized",
                   json_pack("{s:s, s:s}", "role", cmd_role_name(env->role),
                             "error",
                             env->role == ROLE_CUSTOMER
                                 ? "not the customer of this order"
                                 : "not the vendor of every line of this "
                                   "order"));
        return NULL;
    }
    return o;
}
