/* refund.c - delivered -> refunded, the goods back on the shelf if asked */
#include <stdlib.h>

#include "handlers.h"
#include "order.h"
#include "stock.h"

od_status_t
refund_parse(const json_t *root, void **out, char *err, size_t errlen)
{
    refund_cmd_t *cmd = calloc(1, sizeof(*cmd));

    if (cmd == NULL) {
        od_err(err, errlen, "out of memory");
        return OD_REJECT;
    }
    if (json_field_uuid(root, "order_id", 1, cmd->order_id, err, errlen) < 0 ||
        json_field_bool(root, "restock", 1, &cmd->restock, err, errlen) < 0) {
        free(cmd);
        return OD_REJECT;
    }
    *out = cmd;
    return OD_OK;
}

od_status_t
refund_decide(decide_ctx_t *ctx, const void *cmdp, cmd_result_t *res)
{
    const refund_cmd_t *cmd = cmdp;
    snap_order_t *o;

    o = decide_open_order(ctx, cmd->order_id, res);
    if (o == NULL)
        return OD_OK;
    if (snap_order_transition(ctx->snap, o, FSM_REFUNDED, ctx->env, NULL, res) <
        0)
        return ctx->snap->missing ? OD_FATAL : OD_OK;
    /* refunded is terminal, so the goods come back at most once */
    if (cmd->restock &&
        snap_restore_order_stock(ctx->snap, o, "refund", ctx->env, res) < 0)
        return OD_FATAL;
    return ctx->snap->missing ? OD_FATAL : OD_OK;
}

const char *
refund_order_id(const void *cmd)
{
    return order_cmd_order_id(cmd);
}
