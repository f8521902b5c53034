/* order.h - what the lifecycle handlers share: their parsed commands, the
 * rejection of an illegal transition and the refund request (ownership and
 * transitions over the snapshot are in snapshot.h) */
#ifndef OD_ORDER_H
#define OD_ORDER_H

#include "fsm.h"
#include "handler.h"

#define ORDER_NUMBER_MAX 64
#define ORDER_NOTE_MAX 500 /* cancel reason */
#define ORDER_TRACKING_MAX 128

/*
 * Parsed lifecycle commands. Every struct starts with order_id so that one
 * order_id function serves them all.
 */
typedef struct order_id_cmd { /* start_processing, deliver, expire */
    char order_id[37];
} order_id_cmd_t;

typedef struct pay_cmd {
    char order_id[37];
    char payment_id[CMD_ID_MAX + 1];
    int64_t amount_cents;
    char currency[4];
} pay_cmd_t;

typedef struct cancel_cmd {
    char order_id[37];
    char reason[ORDER_NOTE_MAX + 1]; /* "" when absent */
} cancel_cmd_t;

typedef struct ship_cmd {
    char order_id[37];
    char tracking_number[ORDER_TRACKING_MAX + 1];
} ship_cmd_t;

typedef struct refund_cmd {
    char order_id[37];
    int restock;
} refund_cmd_t;

/*
 * parse for commands whose only field is order_id: allocates an
 * order_id_cmd_t into *out (caller free()s). OD_OK or OD_REJECT with err.
 */
od_status_t order_parse_id(const json_t *root, void **out, char *err,
                           size_t errlen) OD_MUSTCHECK;

/* order_id of any parsed lifecycle command (see the structs above) */
const char *order_cmd_order_id(const void *cmd);

/* Rejects res with invalid_transition and details {"from", "to"}; extra
 * (may be NULL, ownership taken) is merged into the details. */
od_status_t order_reject_transition(cmd_result_t *res, fsm_status_t from,
                                    fsm_status_t to, json_t *extra);

/*
 * Queues a payment.refund_required event (key order_id): the payment bridge
 * must give the money back. reason is why (a rejection reason, or
 * "cancelled").
 */
void order_refund_required(cmd_result_t *res, const char *order_id,
                           const char *payment_id, int64_t amount_cents,
                           const char *currency, const char *reason);

#endif
