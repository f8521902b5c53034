/* checkout.h - the parsed checkout command and the pure steps of a
 * checkout: line parsing, aggregation, catalogue checks and totals */
#ifndef OD_CHECKOUT_H
#define OD_CHECKOUT_H

#include "handler.h"

#define CHECKOUT_MAX_LINES 100
#define CHECKOUT_MAX_QTY 10000
#define CHECKOUT_MAX_TTL_S (30 * 24 * 3600)

/* One line as the customer sent it. */
typedef struct checkout_line {
    int64_t product_id;
    int64_t variant_id;   /* 0: none given */
    int64_t quantity;     /* 1..10000 */
    int64_t quoted_cents; /* the price the customer saw; -1: not given */
} checkout_line_t;

/* The lines of one (product, variant), summed: what stock and prices are
 * checked against, and one order_items row. */
typedef struct checkout_group {
    int64_t product_id;
    int64_t variant_id;
    int64_t quantity;     /* sum of the lines' quantities */
    int64_t quoted_cents; /* the first quoted price, -1: none quoted */
    int quote_mixed;      /* two lines quoted different prices */
} checkout_group_t;

typedef struct checkout_cmd {
    char order_id[37];
    char customer_id[CMD_ID_MAX + 1];
    char currency[4];
    char tax_country[3]; /* "": none given */
    int64_t ttl_s;       /* 0: the configured default */
    int nlines;
    checkout_line_t lines[CHECKOUT_MAX_LINES];
    int ngroups; /* sorted by (product_id, variant_id) */
    checkout_group_t groups[CHECKOUT_MAX_LINES];
} checkout_cmd_t;

/*
 * What the catalogue says about one group, read under the row locks.
 * variant_* describe the row named by the group's variant_id (if any);
 * variant_product_id is the product that variant belongs to.
 */
typedef struct checkout_state {
    int product_found;
    int product_deleted;
    int product_is_variant;
    char currency[4];
    int variant_found;
    int variant_deleted;
    int64_t variant_product_id;
    int price_known;     /* the effective price is not NULL */
    int64_t price_cents; /* variant price for variant lines */
    int64_t stock;       /* variant stock for variant lines */
} checkout_state_t;

/* Parses the 'items' array into cmd->lines and aggregates it into
 * cmd->groups. 0, or -1 with err filled. */
int checkout_parse_lines(const json_t *items, checkout_cmd_t *cmd, char *err,
                         size_t errlen);

/* Sums lines per (product_id, variant_id) into groups, sorted ascending
 * (the locking order). Returns the number of groups. Quantities cannot
 * overflow: at most 100 lines of at most 10000. */
int checkout_aggregate(const checkout_line_t *lines, int nlines,
                       checkout_group_t *groups);

/*
 * Checks every group against its catalogue state (states[i] for
 * cmd->groups[i]). Returns NULL when the order can be placed, else the
 * rejection reason, the most fundamental one found over all groups
 * (product_not_found, product_deleted, variant_required,
 * variant_not_found, price_missing, currency_mismatch, price_changed,
 * insufficient_stock), with *details = {"lines": [...]} listing every
 * group refused for that reason (caller owns it).
 */
const char *checkout_check(const checkout_cmd_t *cmd,
                           const checkout_state_t *states, json_t **details);

/* subtotal = sum(price * quantity), tax = round-half-up(subtotal * rate /
 * 10000), total = subtotal + tax. 0, or -1 on overflow. */
int checkout_totals(const checkout_cmd_t *cmd, const checkout_state_t *states,
                    int64_t rate_bps, int64_t *subtotal, int64_t *tax,
                    int64_t *total);

#endif
