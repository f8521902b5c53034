/* start_processing.c - the vendor starts work on a paid order */
#include "handlers.h"
#include "order.h"

od_status_t
start_processing_parse(const json_t *root, void **out, char *err, size_t errlen)
{
    return order_parse_id(root, out, err, errlen);
}

od_status_t
start_processing_decide(decide_ctx_t *ctx, const void *cmdp, cmd_result_t *res)
{
    const order_id_cmd_t *cmd = cmdp;
    snap_order_t *o;

    o = decide_open_order(ctx, cmd->order_id, res);
    if (o == NULL)
        return OD_OK;
    /* a move the state machine refuses rejects res, changing nothing */
    (void)snap_order_transition(ctx->snap, o, FSM_PROCESSING, ctx->env, NULL,
                                res);
    return ctx->snap->missing ? OD_FATAL : OD_OK;
}

const char *
start_processing_order_id(const void *cmd)
{
    return order_cmd_order_id(cmd);
}
