/* fuzz_handler.c - fuzz target: every handler's parse function, straight
 * from a JSON object, without the envelope around it
 *
 * DESIGN: the first byte picks the handler from the dispatch table
 * ('a' the first entry, 'b' the second, ..., wrapping around), so every
 * handler is reached, including ones added later, and a seed reads as a
 * letter and a JSON body. The rest must be a JSON object (the envelope
 * guarantees that much; anything else is not this target's business).
 * The fuzzer then only has to satisfy one handler's fields, which the
 * envelope target cannot focus on. Beyond "no crash, no leak, no UB" the
 * properties are the typed struct's promises: a refusal says why and
 * allocates nothing; a parsed command's ids are the ones the JSON named,
 * its codes, ranges and lengths hold, and a checkout's lines are summed
 * into sorted groups that its pure check then accepts.
 */
#include <ctype.h>
#include <inttypes.h>
#include <string.h>

#include "../../handlers/catalogue.h"
#include "../../handlers/checkout.h"
#include "../../handlers/money.h"
#include "../../handlers/order.h"
#include "fuzz.h"

typedef void (*check_fn)(const json_t *root, const void *cmd);

static size_t
handler_count(void)
{
    size_t n = 0;

    while (handler_at(n) != NULL)
        n++;
    return n;
}

/* 1..outlen-1 bytes, no control characters (what json_field_str keeps) */
static int
printable(const char *s, size_t outlen)
{
    size_t n = strlen(s);

    if (n == 0 || n >= outlen)
        return 0;
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* An id field as parsed must be the number the JSON carries, given as an
 * integer or as its exact decimal string; absent is 0. */
static int
id_matches(const json_t *obj, const char *name, int64_t id)
{
    const json_t *v = json_object_get(obj, name);
    char dec[24];

    if (v == NULL || json_is_null(v))
        return id == 0;
    if (json_is_integer(v))
        return id >= 1 && json_integer_value(v) == id;
    snprintf(dec, sizeof(dec), "%" PRId64, id);
    return id >= 1 && json_is_string(v) &&
           json_string_length(v) == strlen(dec) &&
           strcmp(json_string_value(v), dec) == 0;
}

static void
check_checkout(const json_t *root, const void *cmdp)
{
    const checkout_cmd_t *c = cmdp;
    const json_t *items = json_object_get(root, "items");
    checkout_state_t states[CHECKOUT_MAX_LINES];
    json_t *details = NULL;
    const char *why;
    int mixed = 0;

    FUZZ_CHECK(money_currency_valid(c->currency));
    FUZZ_CHECK(c->tax_country[0] == '\0' ||
               money_country_valid(c->tax_country));
    FUZZ_CHECK(c->ttl_s >= 0 && c->ttl_s <= CHECKOUT_MAX_TTL_S);
    FUZZ_CHECK(printable(c->customer_id, sizeof(c->customer_id)));
    FUZZ_CHECK(c->nlines >= 1 && c->nlines <= CHECKOUT_MAX_LINES);
    FUZZ_CHECK((size_t)c->nlines == json_array_size(items));
    FUZZ_CHECK(c->ngroups >= 1 && c->ngroups <= c->nlines);
    for (int i = 0; i < c->nlines; i++) {
        const checkout_line_t *l = &c->lines[i];
        const json_t *item = json_array_get(items, (size_t)i);

        FUZZ_CHECK(id_matches(item, "product_id", l->product_id));
        FUZZ_CHECK(id_matches(item, "variant_id", l->variant_id));
        FUZZ_CHECK(l->quantity >= 1 && l->quantity <= CHECKOUT_MAX_QTY);
        FUZZ_CHECK(l->quoted_cents >= -1);
    }
    /* the groups: strictly ascending, and each the sum of its lines */
    for (int g = 0; g < c->ngroups; g++) {
        const checkout_group_t *grp = &c->groups[g];
        int64_t qty = 0;

        if (g > 0) {
            const checkout_group_t *prev = &c->groups[g - 1];

            FUZZ_CHECK(prev->product_id < grp->product_id ||
                       (prev->product_id == grp->product_id &&
                        prev->variant_id < grp->variant_id));
        }
        for (int i = 0; i < c->nlines; i++)
            if (c->lines[i].product_id == grp->product_id &&
                c->lines[i].variant_id == grp->variant_id)
                qty += c->lines[i].quantity;
        FUZZ_CHECK(qty >= 1 && grp->quantity == qty);
        mixed |= grp->quote_mixed;
    }
    for (int i = 0; i < c->nlines; i++) {
        int found = 0;

        for (int g = 0; g < c->ngroups; g++)
            found |= c->lines[i].product_id == c->groups[g].product_id &&
                     c->lines[i].variant_id == c->groups[g].variant_id;
        FUZZ_CHECK(found);
    }
    /* a catalogue that has everything at the quoted price, in stock:
     * only lines that quoted two prices for one item are refused */
    memset(states, 0, sizeof(states));
    for (int g = 0; g < c->ngroups; g++) {
        checkout_state_t *s = &states[g];

        s->product_found = 1;
        s->product_is_variant = c->groups[g].variant_id != 0;
        s->variant_found = s->product_is_variant;
        s->variant_product_id = c->groups[g].product_id;
        memcpy(s->currency, c->currency, sizeof(s->currency));
        s->price_known = 1;
        s->price_cents =
            c->groups[g].quoted_cents >= 0 ? c->groups[g].quoted_cents : 100;
        s->stock = c->groups[g].quantity;
    }
    why = checkout_check(c, states, &details);
    if (mixed) {
        FUZZ_CHECK(why != NULL && strcmp(why, "price_changed") == 0);
        FUZZ_CHECK(json_is_object(details));
    } else {
        FUZZ_CHECK(why == NULL && details == NULL);
    }
    json_decref(details);
}

static void
check_pay(const json_t *root, const void *cmdp)
{
    const pay_cmd_t *c = cmdp;

    FUZZ_CHECK(printable(c->payment_id, sizeof(c->payment_id)));
    FUZZ_CHECK(c->amount_cents >= 0);
    FUZZ_CHECK(money_currency_valid(c->currency));
}

static void
check_cancel(const json_t *root, const void *cmdp)
{
    const cancel_cmd_t *c = cmdp;

    FUZZ_CHECK(c->reason[0] == '\0' || printable(c->reason, sizeof(c->reason)));
}

static void
check_ship(const json_t *root, const void *cmdp)
{
    const ship_cmd_t *c = cmdp;

    FUZZ_CHECK(printable(c->tracking_number, sizeof(c->tracking_number)));
}

static void
check_product_upsert(const json_t *root, const void *cmdp)
{
    const product_upsert_cmd_t *c = cmdp;
    const json_t *variants = json_object_get(root, "variants");

    FUZZ_CHECK(id_matches(root, "product_id", c->product_id));
    FUZZ_CHECK(printable(c->vendor_id, sizeof(c->vendor_id)));
    FUZZ_CHECK(printable(c->name, sizeof(c->name)));
    FUZZ_CHECK(printable(c->sku, sizeof(c->sku)));
    FUZZ_CHECK(money_currency_valid(c->currency));
    FUZZ_CHECK(c->low_stock_threshold >= -1);
    if (!c->is_variant) {
        FUZZ_CHECK(c->nvariants == 0 && variants == NULL);
        FUZZ_CHECK(c->price_cents >= -1 && c->stock >= 0);
        return;
    }
    FUZZ_CHECK(c->nvariants >= 1 && c->nvariants <= CATALOGUE_MAX_VARIANTS);
    FUZZ_CHECK((size_t)c->nvariants == json_array_size(variants));
    for (int i = 0; i < c->nvariants; i++) {
        const catalogue_variant_t *v = &c->variants[i];

        FUZZ_CHECK(id_matches(json_array_get(variants, (size_t)i), "variant_id",
                              v->variant_id));
        FUZZ_CHECK(printable(v->name, sizeof(v->name)));
        FUZZ_CHECK(printable(v->sku, sizeof(v->sku)));
        FUZZ_CHECK(v->price_cents >= -1 && v->stock >= 0);
        for (int j = 0; j < i; j++)
            FUZZ_CHECK(c->variants[j].variant_id != v->variant_id);
    }
}

static void
check_product_delete(const json_t *root, const void *cmdp)
{
    const product_delete_cmd_t *c = cmdp;

    FUZZ_CHECK(id_matches(root, "product_id", c->product_id));
}

static void
check_stock_adjust(const json_t *root, const void *cmdp)
{
    const stock_adjust_cmd_t *c = cmdp;

    FUZZ_CHECK(id_matches(root, "product_id", c->product_id));
    FUZZ_CHECK(id_matches(root, "variant_id", c->variant_id));
    /* -delta must exist: the ledger writes it for the reverse move */
    FUZZ_CHECK(c->delta != 0 && c->delta != INT64_MIN);
    FUZZ_CHECK(printable(c->reason, sizeof(c->reason)));
}

static void
check_tax_rate_set(const json_t *root, const void *cmdp)
{
    const tax_rate_set_cmd_t *c = cmdp;

    FUZZ_CHECK(money_country_valid(c->country));
    FUZZ_CHECK(c->rate_bps >= 0 && c->rate_bps <= 10000);
}

/* Per-type properties; a type not listed gets the common ones only. */
static const struct {
    const char *type;
    check_fn check;
} type_checks[] = {
    {"checkout", check_checkout},
    {"pay", check_pay},
    {"cancel", check_cancel},
    {"ship", check_ship},
    {"product_upsert", check_product_upsert},
    {"product_delete", check_product_delete},
    {"stock_adjust", check_stock_adjust},
    {"tax_rate_set", check_tax_rate_set},
};

/* The order id a handler reports is the JSON's order_id, in lower case. */
static void
check_order_id(const json_t *root, const char *oid)
{
    const json_t *v = json_object_get(root, "order_id");
    const char *s;

    if (oid == NULL)
        return;
    FUZZ_CHECK(json_is_string(v) && json_string_length(v) == 36);
    s = json_string_value(v);
    for (int i = 0; i < 36; i++)
        FUZZ_CHECK(oid[i] == tolower((unsigned char)s[i]) &&
                   !isupper((unsigned char)oid[i]));
    FUZZ_CHECK(oid[36] == '\0' && od_is_uuid(oid));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const handler_t *h;
    json_t *root;
    void *cmd = NULL;
    char err[512] = "";
    od_status_t st;

    if (size < 1)
        return 0;
    h = handler_at((size_t)(unsigned char)(data[0] - 'a') % handler_count());
    root = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES,
                      NULL);
    if (!json_is_object(root))
        goto out;
    st = h->parse(root, &cmd, err, sizeof(err));
    FUZZ_CHECK(st == OD_OK || st == OD_REJECT);
    if (st != OD_OK) {
        FUZZ_CHECK(err[0] != '\0' && cmd == NULL);
        goto out;
    }
    FUZZ_CHECK(cmd != NULL);
    check_order_id(root, h->order_id(cmd));
    for (size_t i = 0; i < OD_ARRAY_LEN(type_checks); i++)
        if (strcmp(type_checks[i].type, h->type) == 0)
            type_checks[i].check(root, cmd);
out:
    free(cmd);
    json_decref(root);
    return 0;
}
