/* handlers.h - the parse/apply/order_id functions of every command type,
 * and the decide functions written so far */
#ifndef OD_HANDLERS_H
#define OD_HANDLERS_H

#include "handler.h"
#include "snapshot.h"

#define HANDLER_DECL(name)                                                     \
    od_status_t name##_parse(const json_t *root, void **out, char *err,        \
                             size_t errlen);                                   \
    od_status_t name##_apply(apply_ctx_t *ctx, const void *cmd,                \
                             cmd_result_t *res);                               \
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
 * apply functions. */
od_status_t product_upsert_decide(decide_ctx_t *ctx, const void *cmd,
                                  cmd_result_t *res) OD_MUSTCHECK;
od_status_t product_delete_decide(decide_ctx_t *ctx, const void *cmd,
                                  cmd_result_t *res) OD_MUSTCHECK;
od_status_t stock_adjust_decide(decide_ctx_t *ctx, const void *cmd,
                                cmd_result_t *res) OD_MUSTCHECK;
od_status_t tax_rate_set_decide(decide_ctx_t *ctx, const void *cmd,
                                cmd_result_t *res) OD_MUSTCHECK;

#endif
