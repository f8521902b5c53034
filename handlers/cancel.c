/* cancel.c - pending, paid or processing -> cancelled, stock given back */
#include <stdlib.h>

#include "handlers.h"
#include "order.h"
#include "stock.h"

od_status_t
cancel_parse(const json_t *root, void **out, char *err, size_t errlen)
{
    cancel_cmd_t *cmd = calloc(1, sizeof(*cmd));

    if (cmd == NULL) {
        od_err(err, errlen, "out of memory");
        return OD_REJECT;
    }
    if (json_field_uuid(root, "order_id", 1, cmd->order_id, err, errlen) < 0 ||
        json_field_str(root, "reason", 0, cmd->reason, sizeof(cmd->reason), err,
                       errlen) < 0) {
        free(cmd);
        return OD_REJECT;
    }
    *out = cmd;
    return OD_OK;
}

od_status_t
cancel_decide(decide_ctx_t *ctx, const void *cmdp, cmd_result_t *res)
{
    const cancel_cmd_t *cmd = cmdp;
    snap_order_t *o;

    o = decide_open_order(ctx, cmd->order_id, res);
    if (o == NULL)
        return OD_OK;
    if (o->status == FSM_CANCELLED)
        return cmd_reject(res, "already_cancelled", NULL);
    if (snap_order_transition(ctx->snap, o, FSM_CANCELLED, ctx->env,
                              cmd->reason[0] != '\0' ? cmd->reason : NULL,
                              res) < 0)
        return ctx->snap->missing ? OD_FATAL : OD_OK;
    /* into cancelled once per order (the state machine), so the stock
     * comes back once */
    if (snap_restore_order_stock(ctx->snap, o, "cancel", ctx->env, res) < 0)
        return OD_FATAL;
    /* paid or processing: the goods will not ship, the money goes back */
    if (o->payment_id[0] != '\0')
        order_refund_required(res, o->id, o->payment_id, o->paid_cents,
                              o->currency, "cancelled");
    return ctx->snap->missing ? OD_FATAL : OD_OK;
}

const char *
cancel_order_id(const void *cmd)
{
    return order_cmd_order_id(cmd);
}
