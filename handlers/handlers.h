/* handlers.h - the parse/decide/order_id functions of every command
 * type */
#ifndef OD_HANDLERS_H
#define OD_HANDLERS_H

#include "handler.h"
#include "snapshot.h"

#define HANDLER_DECL(name)                                                     \
    od_status_t name##_parse(const json_t *root, void **out, char *err,        \
                             size_t errlen);                                   \
    const char *name##_order_id(const void *cmd);                              \
    od_status_t name##_decide(decide_ctx_t *ctx, const void *cmd,              \
                              cmd_result_t *res)

HANDLER_DECL(checkout);
HANDLER_DECL(pay);
HANDLER_DECL(cancel);
HANDLER_DECL(start_processing);
HANDLER_DECL(ship);
HANDLER_DECL(deliver);
HANDLER_DECL(refund);
HANDLER_DECL(expire);
HANDLER_DECL(product_upsert);
HANDLER_DECL(product_delete);
HANDLER_DECL(stock_adjust);
HANDLER_DECL(tax_rate_set);

/* The catalogue's business rules over a batch snapshot (handler_decide_fn):
 * the same outcomes, reasons, details, events and ledger rows as their
 * former apply functions. */
od_status_t product_upsert_decide(decide_ctx_t *ctx, const void *cmd,
                                  cmd_result_t *res) OD_MUSTCHECK;
od_status_t product_delete_decide(decide_ctx_t *ctx, const void *cmd,
                                  cmd_result_t *res) OD_MUSTCHECK;
od_status_t stock_adjust_decide(decide_ctx_t *ctx, const void *cmd,
                                cmd_result_t *res) OD_MUSTCHECK;
od_status_t tax_rate_set_decide(decide_ctx_t *ctx, const void *cmd,
                                cmd_result_t *res) OD_MUSTCHECK;

/*
 * The lifecycle decide functions (handler_decide_fn, see snapshot.h): the
 * order's business rules against the batch's snapshot, which they update.
 * OD_OK with res applied or rejected, OD_FATAL with ctx->snap->missing set
 * when a row the load must have held is not in the snapshot.
 */
od_status_t pay_decide(decide_ctx_t *ctx, const void *cmd,
                       cmd_result_t *res) OD_MUSTCHECK;
od_status_t cancel_decide(decide_ctx_t *ctx, const void *cmd,
                          cmd_result_t *res) OD_MUSTCHECK;
od_status_t start_processing_decide(decide_ctx_t *ctx, const void *cmd,
                                    cmd_result_t *res) OD_MUSTCHECK;
od_status_t ship_decide(decide_ctx_t *ctx, const void *cmd,
                        cmd_result_t *res) OD_MUSTCHECK;
od_status_t deliver_decide(decide_ctx_t *ctx, const void *cmd,
                           cmd_result_t *res) OD_MUSTCHECK;
od_status_t refund_decide(decide_ctx_t *ctx, const void *cmd,
                          cmd_result_t *res) OD_MUSTCHECK;
od_status_t expire_decide(decide_ctx_t *ctx, const void *cmd,
                          cmd_result_t *res) OD_MUSTCHECK;

#endif
