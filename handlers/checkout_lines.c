/* checkout_lines.c - the pure steps of a checkout: line parsing,
 * aggregation per (product, variant), catalogue checks and totals */
#include <stdlib.h>
#include <string.h>

#include "checkout.h"
#include "money.h"

/* Reasons in order of precedence: a group refused for several reasons
 * counts under the first, and the order under the first over all groups. */
enum {
    CHECK_OK = 0,
    CHECK_PRODUCT_NOT_FOUND,
    CHECK_PRODUCT_DELETED,
    CHECK_VARIANT_REQUIRED,
    CHECK_VARIANT_NOT_FOUND,
    CHECK_PRICE_MISSING,
    CHECK_CURRENCY_MISMATCH,
    CHECK_PRICE_CHANGED,
    CHECK_INSUFFICIENT_STOCK,
    CHECK_N
};

static const char *const check_reasons[CHECK_N] = {
    NULL,
    "product_not_found",
    "product_deleted",
    "variant_required",
    "variant_not_found",
    "price_missing",
    "currency_mismatch",
    "price_changed",
    "insufficient_stock",
};

int
checkout_parse_lines(const json_t *items, checkout_cmd_t *cmd, char *err,
                     size_t errlen)
{
    size_t i;
    const json_t *v;

    if (!json_is_array(items) || json_array_size(items) < 1 ||
        json_array_size(items) > CHECKOUT_MAX_LINES) {
        od_err(err, errlen, "field 'items' must be an array of 1..%d lines",
               CHECKOUT_MAX_LINES);
        return -1;
    }
    json_array_foreach(items, i, v)
    {
        checkout_line_t *l = &cmd->lines[i];
        char ferr[200];

        if (!json_is_object(v)) {
            od_err(err, errlen, "items[%zu] must be an object", i);
            return -1;
        }
        l->variant_id = 0;
        l->quoted_cents = -1;
        if (json_field_id(v, "product_id", 1, &l->product_id, ferr,
                          sizeof(ferr)) < 0 ||
            json_field_id(v, "variant_id", 0, &l->variant_id, ferr,
                          sizeof(ferr)) < 0 ||
            json_field_int(v, "quantity", 1, 1, CHECKOUT_MAX_QTY, &l->quantity,
                           ferr, sizeof(ferr)) < 0 ||
            json_field_int(v, "unit_price_cents", 0, 0, INT64_MAX,
                           &l->quoted_cents, ferr, sizeof(ferr)) < 0) {
            od_err(err, errlen, "items[%zu]: %s", i, ferr);
            return -1;
        }
    }
    cmd->nlines = (int)json_array_size(items);
    cmd->ngroups = checkout_aggregate(cmd->lines, cmd->nlines, cmd->groups);
    return 0;
}

static int
group_cmp(const void *a, const void *b)
{
    const checkout_group_t *x = a, *y = b;

    if (x->product_id != y->product_id)
        return x->product_id < y->product_id ? -1 : 1;
    if (x->variant_id != y->variant_id)
        return x->variant_id < y->variant_id ? -1 : 1;
    return 0;
}

int
checkout_aggregate(const checkout_line_t *lines, int nlines,
                   checkout_group_t *groups)
{
    int i, g, n = 0;

    for (i = 0; i < nlines; i++) {
        const checkout_line_t *l = &lines[i];

        for (g = 0; g < n; g++)
            if (groups[g].product_id == l->product_id &&
                groups[g].variant_id == l->variant_id)
                break;
        if (g == n) {
            groups[n].product_id = l->product_id;
            groups[n].variant_id = l->variant_id;
            groups[n].quantity = 0;
            groups[n].quoted_cents = -1;
            groups[n].quote_mixed = 0;
            n++;
        }
        groups[g].quantity += l->quantity;
        if (l->quoted_cents < 0)
            continue;
        if (groups[g].quoted_cents < 0)
            groups[g].quoted_cents = l->quoted_cents;
        else if (groups[g].quoted_cents != l->quoted_cents)
            groups[g].quote_mixed = 1;
    }
    qsort(groups, (size_t)n, sizeof(*groups), group_cmp);
    return n;
}

static int
check_group(const checkout_cmd_t *cmd, const checkout_group_t *g,
            const checkout_state_t *s)
{
    if (!s->product_found)
        return CHECK_PRODUCT_NOT_FOUND;
    if (s->product_deleted)
        return CHECK_PRODUCT_DELETED;
    if (s->product_is_variant && g->variant_id == 0)
        return CHECK_VARIANT_REQUIRED;
    /* a variant named for a simple product, or one of another product */
    if (g->variant_id != 0 && (!s->product_is_variant || !s->variant_found ||
                               s->variant_product_id != g->product_id))
        return CHECK_VARIANT_NOT_FOUND;
    if (g->variant_id != 0 && s->variant_deleted)
        return CHECK_PRODUCT_DELETED;
    if (!s->price_known)
        return CHECK_PRICE_MISSING;
    if (strcmp(s->currency, cmd->currency) != 0)
        return CHECK_CURRENCY_MISMATCH;
    if (g->quote_mixed ||
        (g->quoted_cents >= 0 && g->quoted_cents != s->price_cents))
        return CHECK_PRICE_CHANGED;
    if (s->stock < g->quantity)
        return CHECK_INSUFFICIENT_STOCK;
    return CHECK_OK;
}

static json_t *
line_details(int why, const checkout_group_t *g, const checkout_state_t *s)
{
    json_t *o = json_pack(
        "{s:I, s:o}", "product_id", (json_int_t)g->product_id, "variant_id",
        g->variant_id ? json_integer(g->variant_id) : json_null());

    switch (why) {
    case CHECK_CURRENCY_MISMATCH:
        json_object_set_new(o, "currency", json_string(s->currency));
        break;
    case CHECK_PRICE_CHANGED:
        json_object_set_new(o, "quoted",
                            g->quote_mixed ? json_string("mixed")
                                           : json_integer(g->quoted_cents));
        json_object_set_new(o, "current", json_integer(s->price_cents));
        break;
    case CHECK_INSUFFICIENT_STOCK:
        json_object_set_new(o, "requested", json_integer(g->quantity));
        json_object_set_new(o, "available", json_integer(s->stock));
        break;
    default:
        break;
    }
    return o;
}

const char *
checkout_check(const checkout_cmd_t *cmd, const checkout_state_t *states,
               json_t **details)
{
    int why[CHECKOUT_MAX_LINES];
    int i, worst = CHECK_N;
    json_t *lines;

    *details = NULL;
    for (i = 0; i < cmd->ngroups; i++) {
        why[i] = check_group(cmd, &cmd->groups[i], &states[i]);
        if (why[i] != CHECK_OK && why[i] < worst)
            worst = why[i];
    }
    if (worst == CHECK_N)
        return NULL;
    lines = json_array();
    for (i = 0; i < cmd->ngroups; i++)
        if (why[i] == worst)
            json_array_append_new(
                lines, line_details(worst, &cmd->groups[i], &states[i]));
    *details = json_pack("{s:o}", "lines", lines);
    if (worst == CHECK_CURRENCY_MISMATCH)
        json_object_set_new(*details, "currency", json_string(cmd->currency));
    return check_reasons[worst];
}

int
checkout_totals(const checkout_cmd_t *cmd, const checkout_state_t *states,
                int64_t rate_bps, int64_t *subtotal, int64_t *tax,
                int64_t *total)
{
    int64_t sum = 0, line;
    int i;

    for (i = 0; i < cmd->ngroups; i++)
        if (money_line_total(states[i].price_cents, cmd->groups[i].quantity,
                             &line) < 0 ||
            money_add(sum, line, &sum) < 0)
            return -1;
    if (money_tax_cents(sum, rate_bps, tax) < 0 ||
        money_add(sum, *tax, total) < 0)
        return -1;
    *subtotal = sum;
    return 0;
}
