/* order.c - lifecycle helpers: parsing an order id, the invalid_transition
 * rejection and the payment.refund_required event */
#include "order.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

od_status_t
order_parse_id(const json_t *root, void **out, char *err, size_t errlen)
{
    order_id_cmd_t *cmd = calloc(1, sizeof(*cmd));

    if (cmd == NULL) {
        od_err(err, errlen, "out of memory");
        return OD_REJECT;
    }
    if (json_field_uuid(root, "order_id", 1, cmd->order_id, err, errlen) < 0) {
        free(cmd);
        return OD_REJECT;
    }
    *out = cmd;
    return OD_OK;
}

const char *
order_cmd_order_id(const void *cmd)
{
    /* every lifecycle command struct starts with order_id */
    return cmd != NULL ? ((const order_id_cmd_t *)cmd)->order_id : NULL;
}

od_status_t
order_reject_transition(cmd_result_t *res, fsm_status_t from, fsm_status_t to,
                        json_t *extra)
{
    json_t *details = json_pack("{s:s, s:s}", "from", fsm_status_name(from),
                                "to", fsm_status_name(to));

    if (extra != NULL) {
        json_object_update(details, extra);
        json_decref(extra);
    }
    return cmd_reject(res, "invalid_transition", details);
}

void
order_refund_required(cmd_result_t *res, const char *order_id,
                      const char *payment_id, int64_t amount_cents,
                      const char *currency, const char *reason)
{
    cmd_result_add_event(res, "payment.refund_required", order_id,
                         json_pack("{s:s, s:s, s:I, s:s, s:s}", "order_id",
                                   order_id, "payment_id", payment_id,
                                   "amount_cents", (json_int_t)amount_cents,
                                   "currency", currency, "reason", reason));
}
