/* tax_rate_set.c - sets the tax rate of a country for future checkouts
 * (orders keep the rate they were created with) */
#include <stdlib.h>

#include "catalogue.h"
#include "handlers.h"

od_status_t
tax_rate_set_parse(const json_t *root, void **out, char *err, size_t errlen)
{
    tax_rate_set_cmd_t *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        od_err(err, errlen, "out of memory");
        return OD_REJECT;
    }
    if (catalogue_field_code(root, "country", 1, 2, c->country, err, errlen) <
            0 ||
        json_field_int(root, "rate_bps", 1, 0, 10000, &c->rate_bps, err,
                       errlen) < 0) {
        free(c);
        return OD_REJECT;
    }
    *out = c;
    return OD_OK;
}

const char *
tax_rate_set_order_id(const void *cmd)
{
    (void)cmd;
    return NULL;
}

od_status_t
tax_rate_set_decide(decide_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    const tax_rate_set_cmd_t *c = cmd;

    snap_set_tax_rate(ctx->snap, c->country, c->rate_bps);
    if (ctx->snap->missing) /* the new rate could not be recorded */
        return OD_FATAL;
    res->details = json_pack("{s:s, s:I}", "country", c->country, "rate_bps",
                             (json_int_t)c->rate_bps);
    return OD_OK;
}
