/* expire.c - a pending order past its deadline gives its stock back
 *
 * The scheduler sends this through the same per-command path as any
 * producer; "past the deadline" is judged on the command's event time, so
 * a replay decides the same way as the first run.
 */
#include "handlers.h"
#include "order.h"
#include "stock.h"

od_status_t
expire_parse(const json_t *root, void **out, char *err, size_t errlen)
{
    return order_parse_id(root, out, err, errlen);
}

od_status_t
expire_decide(decide_ctx_t *ctx, const void *cmdp, cmd_result_t *res)
{
    const order_id_cmd_t *cmd = cmdp;
    snap_order_t *o;

    o = decide_open_order(ctx, cmd->order_id, res);
    if (o == NULL)
        return OD_OK;
    if (o->status == FSM_PENDING &&
        ctx->env->event_time_us < o->expires_at_us) {
        char at[40];

        return order_reject_transition(
            res, o->status, FSM_EXPIRED,
            json_pack("{s:b, s:s}", "not_due", 1, "expires_at",
                      od_format_time(o->expires_at_us, at, sizeof(at))));
    }
    if (snap_order_transition(ctx->snap, o, FSM_EXPIRED, ctx->env, NULL, res) <
        0)
        return ctx->snap->missing ? OD_FATAL : OD_OK;
    if (snap_restore_order_stock(ctx->snap, o, "expire", ctx->env, res) < 0)
        return OD_FATAL;
    cmd_result_add_event(
        res, "order.expired", o->id,
        json_pack("{s:s, s:s}", "order_id", o->id, "number", o->number));
    return ctx->snap->missing ? OD_FATAL : OD_OK;
}

const char *
expire_order_id(const void *cmd)
{
    return order_cmd_order_id(cmd);
}
