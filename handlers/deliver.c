/* deliver.c - PLACEHOLDER: being implemented (see handlers.h) */
#include "handlers.h"

od_status_t
deliver_parse(const json_t *root, void **out, char *err, size_t errlen)
{
    (void)root;
    (void)out;
    od_err(err, errlen, "deliver is not implemented yet");
    return OD_REJECT;
}

od_status_t
deliver_apply(apply_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    (void)cmd;
    (void)res;
    od_err(ctx->err, ctx->errlen, "deliver is not implemented yet");
    return OD_FATAL;
}

const char *
deliver_order_id(const void *cmd)
{
    (void)cmd;
    return NULL;
}
