/* catalogue.c - helpers shared by the catalogue handlers: code fields,
 * product row locks and the vendor ownership rule */
#include "catalogue.h"

#include <stdio.h>
#include <string.h>

#include "money.h"

static const db_stmt_t stmt_lock_product = {
    "catalogue_lock_product",
    "SELECT vendor_id, kind = 'variant', COALESCE(stock, 0),"
    " deleted_at IS NOT NULL"
    " FROM products WHERE id = $1::bigint FOR UPDATE"};

int
catalogue_field_code(const json_t *obj, const char *name, int required, int len,
                     char *out, char *err, size_t errlen)
{
    char buf[16];
    int rc = json_field_str(obj, name, required, buf, sizeof(buf), err, errlen);

    const json_t *v = json_object_get(obj, name);

    if (rc == 0 &&
        (strlen(buf) != (size_t)len ||
         !(len == 3 ? money_currency_valid(buf) : money_country_valid(buf))))
        rc = -1;
    if (rc < 0) {
        /* present but malformed: say what the format is */
        if (v != NULL && !json_is_null(v))
            od_err(err, errlen, "field '%s' must be %d upper-case letters",
                   name, len);
        return -1;
    }
    if (rc == 0)
        memcpy(out, buf, (size_t)len + 1);
    return rc;
}

od_status_t
catalogue_lock_product(apply_ctx_t *ctx, int64_t product_id,
                       catalogue_product_t *out)
{
    char id[24];
    const char *params[1] = {db_int_param(id, product_id)};
    db_rows_t *rows = NULL;
    od_status_t st;

    memset(out, 0, sizeof(*out));
    st = db_run(ctx->db, &stmt_lock_product, 1, params, &rows, ctx->err,
                ctx->errlen);
    if (st == OD_OK && db_nrows(rows) == 1) {
        out->found = 1;
        snprintf(out->vendor_id, sizeof(out->vendor_id), "%s",
                 db_val(rows, 0, 0));
        out->is_variant = db_bool(rows, 0, 1);
        out->stock = db_int64(rows, 0, 2);
        out->deleted = db_bool(rows, 0, 3);
    }
    db_rows_free(rows);
    return st;
}

int
catalogue_may_touch(const cmd_env_t *env, const char *vendor_id)
{
    if (env->role == ROLE_ADMIN)
        return 1;
    return env->role == ROLE_VENDOR && strcmp(env->actor_id, vendor_id) == 0;
}
