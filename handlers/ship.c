/* ship.c - processing -> shipped, with the carrier's tracking number */
#include <stdio.h>
#include <stdlib.h>

#include "handlers.h"
#include "order.h"

od_status_t
ship_parse(const json_t *root, void **out, char *err, size_t errlen)
{
    ship_cmd_t *cmd = calloc(1, sizeof(*cmd));

    if (cmd == NULL) {
        od_err(err, errlen, "out of memory");
        return OD_REJECT;
    }
    if (json_field_uuid(root, "order_id", 1, cmd->order_id, err, errlen) < 0 ||
        json_field_str(root, "tracking_number", 1, cmd->tracking_number,
                       sizeof(cmd->tracking_number), err, errlen) < 0) {
        free(cmd);
        return OD_REJECT;
    }
    *out = cmd;
    return OD_OK;
}

od_status_t
ship_decide(decide_ctx_t *ctx, const void *cmdp, cmd_result_t *res)
{
    const ship_cmd_t *cmd = cmdp;
    snap_order_t *o;

    o = decide_open_order(ctx, cmd->order_id, res);
    if (o == NULL)
        return OD_OK;
    if (snap_order_transition(ctx->snap, o, FSM_SHIPPED, ctx->env, NULL, res) <
        0)
        return ctx->snap->missing ? OD_FATAL : OD_OK;
    snap_touch_order(ctx->snap, o);
    snprintf(o->tracking_number, sizeof(o->tracking_number), "%s",
             cmd->tracking_number);
    o->dirty = 1;
    return ctx->snap->missing ? OD_FATAL : OD_OK;
}

const char *
ship_order_id(const void *cmd)
{
    return order_cmd_order_id(cmd);
}
