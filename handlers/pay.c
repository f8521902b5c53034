/* pay.c - a payment arrived: pending -> paid, or a refusal that tells the
 * payment bridge to give the money back
 *
 * DESIGN: the gateway has captured the money before the bridge sends the
 * command, so every pay that ends without paying its order asks for a
 * refund (payment.refund_required), exactly once because it is an extra
 * event of the command's one result: the order never appeared (a parked
 * pay's final order_not_found; while it is parked, the deferral drops the
 * event), it expired, it was cancelled, it was paid by another payment,
 * or the amount or currency is wrong. Only the payment that already paid
 * the order, sent again under a new key, is not refunded: that money is
 * the order's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "money.h"
#include "order.h"

od_status_t
pay_parse(const json_t *root, void **out, char *err, size_t errlen)
{
    pay_cmd_t *cmd = calloc(1, sizeof(*cmd));
    char currency[8];

    if (cmd == NULL) {
        od_err(err, errlen, "out of memory");
        return OD_REJECT;
    }
    if (json_field_uuid(root, "order_id", 1, cmd->order_id, err, errlen) < 0 ||
        json_field_str(root, "payment_id", 1, cmd->payment_id,
                       sizeof(cmd->payment_id), err, errlen) < 0 ||
        json_field_int(root, "amount_cents", 1, 0, INT64_MAX,
                       &cmd->amount_cents, err, errlen) < 0 ||
        json_field_str(root, "currency", 1, currency, sizeof(currency), err,
                       errlen) < 0)
        goto fail;
    if (!money_currency_valid(currency)) {
        od_err(err, errlen,
               "field 'currency' must be 3 upper-case letters (ISO 4217)");
        goto fail;
    }
    memcpy(cmd->currency, currency, sizeof(cmd->currency));
    *out = cmd;
    return OD_OK;
fail:
    free(cmd);
    return OD_REJECT;
}

/* Refuses the payment and asks for its refund. */
static od_status_t
pay_refuse(cmd_result_t *res, const pay_cmd_t *cmd, const char *reason,
           json_t *details)
{
    order_refund_required(res, cmd->order_id, cmd->payment_id,
                          cmd->amount_cents, cmd->currency, reason);
    return cmd_reject(res, reason, details);
}

od_status_t
pay_decide(decide_ctx_t *ctx, const void *cmdp, cmd_result_t *res)
{
    const pay_cmd_t *cmd = cmdp;
    snap_order_t *o;
    int64_t deadline_us;

    o = decide_open_order(ctx, cmd->order_id, res);
    if (o == NULL) {
        /* the money was captured for an order that never appeared */
        if (strcmp(res->reason, "order_not_found") == 0)
            order_refund_required(res, cmd->order_id, cmd->payment_id,
                                  cmd->amount_cents, cmd->currency,
                                  "order_not_found");
        return OD_OK;
    }

    switch (o->status) {
    case FSM_PENDING:
        break;
    case FSM_EXPIRED:
        return pay_refuse(res, cmd, "order_expired",
                          json_pack("{s:s}", "status", "expired"));
    case FSM_CANCELLED:
        order_refund_required(res, cmd->order_id, cmd->payment_id,
                              cmd->amount_cents, cmd->currency,
                              "invalid_transition");
        return order_reject_transition(res, o->status, FSM_PAID, NULL);
    default:
        /* paid or later: the payment that paid the order, sent again,
         * keeps its money on the order; only another one is sent back */
        if (strcmp(o->payment_id, cmd->payment_id) == 0)
            return cmd_reject(res, "already_paid",
                              json_pack("{s:s, s:s}", "status",
                                        fsm_status_name(o->status),
                                        "payment_id", o->payment_id));
        return pay_refuse(res, cmd, "already_paid",
                          json_pack("{s:s, s:s}", "status",
                                    fsm_status_name(o->status), "payment_id",
                                    o->payment_id));
    }

    /* pending past its deadline plus the grace: refused without a
     * transition, the scheduler's expire gives the stock back */
    if (__builtin_mul_overflow(ctx->cfg->expiry_grace_s, (int64_t)1000000,
                               &deadline_us) ||
        __builtin_add_overflow(deadline_us, o->expires_at_us, &deadline_us))
        deadline_us = INT64_MAX;
    if (ctx->env->event_time_us > deadline_us) {
        char at[40];

        return pay_refuse(
            res, cmd, "order_expired",
            json_pack("{s:s, s:s}", "status", "pending", "expires_at",
                      od_format_time(o->expires_at_us, at, sizeof(at))));
    }
    if (cmd->amount_cents != o->total_cents ||
        strcmp(cmd->currency, o->currency) != 0)
        return pay_refuse(res, cmd, "amount_mismatch",
                          json_pack("{s:{s:I, s:s}, s:{s:I, s:s}}", "expected",
                                    "amount_cents", (json_int_t)o->total_cents,
                                    "currency", o->currency, "got",
                                    "amount_cents",
                                    (json_int_t)cmd->amount_cents, "currency",
                                    cmd->currency));

    if (snap_order_transition(ctx->snap, o, FSM_PAID, ctx->env, NULL, res) < 0)
        return ctx->snap->missing ? OD_FATAL : OD_OK;
    snap_touch_order(ctx->snap, o);
    snprintf(o->payment_id, sizeof(o->payment_id), "%s", cmd->payment_id);
    o->paid_cents = cmd->amount_cents;
    o->dirty = 1;
    return ctx->snap->missing ? OD_FATAL : OD_OK;
}

const char *
pay_order_id(const void *cmd)
{
    return order_cmd_order_id(cmd);
}
