/* handlers.h - the parse/decide/order_id functions of every command
 * type */
#ifndef OD_HANDLERS_H
#define OD_HANDLERS_H

#include "handler.h"
#include "snapshot.h"

/*
 * Each command type's three functions: parse (JSON to its struct, pure),
 * order_id (the order it names, or NULL) and decide (handler_decide_fn,
 * see snapshot.h): the business rules against the batch's snapshot,
 * which they update. decide returns OD_OK with res applied or rejected,
 * or OD_FATAL with ctx->snap->missing set when a row the load must have
 * held is not in the snapshot.
 */
#define HANDLER_DECL(name)                                                     \
    od_status_t name##_parse(const json_t *root, void **out, char *err,        \
                             size_t errlen);                                   \
    const char *name##_order_id(const void *cmd);                              \
    od_status_t name##_decide(decide_ctx_t *ctx, const void *cmd,              \
                              cmd_result_t *res) OD_MUSTCHECK

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

#endif
