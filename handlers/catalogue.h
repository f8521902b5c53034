/* catalogue.h - the parsed catalogue commands (product_upsert,
 * product_delete, stock_adjust, tax_rate_set) and the helpers they share */
#ifndef OD_CATALOGUE_H
#define OD_CATALOGUE_H

#include "handler.h"

#define CATALOGUE_NAME_MAX 200 /* product and variant names, bytes */
#define CATALOGUE_SKU_MAX 100
#define CATALOGUE_MAX_VARIANTS 100
#define CATALOGUE_REASON_MAX 200 /* stock_adjust's free-text reason */

typedef struct catalogue_variant {
    int64_t variant_id;
    char name[CATALOGUE_NAME_MAX + 1];
    char sku[CATALOGUE_SKU_MAX + 1];
    int64_t price_cents; /* -1: no price yet (checkout: price_missing) */
    int64_t stock;
} catalogue_variant_t;

typedef struct product_upsert_cmd {
    int64_t product_id;
    char vendor_id[CMD_ID_MAX + 1];
    char name[CATALOGUE_NAME_MAX + 1];
    char sku[CATALOGUE_SKU_MAX + 1];
    char currency[4];
    int is_variant;              /* kind: 0 simple, 1 variant */
    int64_t price_cents;         /* simple only; -1: no price yet */
    int64_t stock;               /* simple only */
    int64_t low_stock_threshold; /* -1: absent (0 on create, kept on update) */
    int nvariants;               /* variant only: 1..100, ids distinct */
    catalogue_variant_t variants[CATALOGUE_MAX_VARIANTS];
} product_upsert_cmd_t;

typedef struct product_delete_cmd {
    int64_t product_id;
} product_delete_cmd_t;

typedef struct stock_adjust_cmd {
    int64_t product_id;
    int64_t variant_id; /* 0: none given */
    int64_t delta;      /* non-zero, never INT64_MIN */
    char reason[CATALOGUE_REASON_MAX + 1];
} stock_adjust_cmd_t;

typedef struct tax_rate_set_cmd {
    char country[3];
    int64_t rate_bps;
} tax_rate_set_cmd_t;

/*
 * Reads a code field: exactly len upper-case ASCII letters (3 for a
 * currency, 2 for a country) into out (len + 1 bytes). Same return values
 * as json_field_str: 0, 1 when optional and absent, -1 with err filled.
 */
int catalogue_field_code(const json_t *obj, const char *name, int required,
                         int len, char *out, char *err, size_t errlen);

/* 1 if the actor may change a product owned by vendor_id: an admin, or
 * that vendor itself */
int catalogue_may_touch(const cmd_env_t *env, const char *vendor_id);

#endif
