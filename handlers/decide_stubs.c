/* decide_stubs.c - TEMPORARY: decide functions not written yet (removed when they land) */
#include "handlers.h"

od_status_t
pay_decide(decide_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    (void)ctx;
    (void)cmd;
    (void)res;
    return OD_FATAL;
}

od_status_t
cancel_decide(decide_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    (void)ctx;
    (void)cmd;
    (void)res;
    return OD_FATAL;
}

od_status_t
start_processing_decide(decide_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    (void)ctx;
    (void)cmd;
    (void)res;
    return OD_FATAL;
}

od_status_t
ship_decide(decide_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    (void)ctx;
    (void)cmd;
    (void)res;
    return OD_FATAL;
}

od_status_t
deliver_decide(decide_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    (void)ctx;
    (void)cmd;
    (void)res;
    return OD_FATAL;
}

od_status_t
refund_decide(decide_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    (void)ctx;
    (void)cmd;
    (void)res;
    return OD_FATAL;
}

od_status_t
expire_decide(decide_ctx_t *ctx, const void *cmd, cmd_result_t *res)
{
    (void)ctx;
    (void)cmd;
    (void)res;
    return OD_FATAL;
}
