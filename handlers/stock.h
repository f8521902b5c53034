/* stock.h - guarded stock changes with their ledger rows */
#ifndef OD_STOCK_H
#define OD_STOCK_H

#include "handler.h"

/* One product (variant_id 0) or variant whose stock changes. */
typedef struct stock_item {
    int64_t product_id;
    int64_t variant_id; /* 0: the simple product itself */
    int64_t delta;      /* negative takes, positive returns */
} stock_item_t;

/*
 * Applies delta to the stock of one product or variant on the open
 * transaction, as a guarded update that never takes stock below zero, and
 * writes its stock_ledger row (reason: initial, adjust, order, cancel,
 * expire, refund; order_id may be NULL; dedup_key from ctx->env).
 * The caller holds the row lock (locking order: order row, then products
 * and variants in ascending (product_id, variant_id)).
 * *after receives the new stock (may be NULL). When a decrement takes stock
 * from above the product's low_stock_threshold to at or below it, a
 * stock.low event is queued on res.
 * OD_OK, OD_REJECT when the guard refused (not enough stock; nothing
 * changed), OD_RETRY / OD_FATAL with ctx->err filled.
 */
od_status_t stock_apply(apply_ctx_t *ctx, const stock_item_t *item,
                        const char *reason, const char *order_id,
                        int64_t *after, cmd_result_t *res) OD_MUSTCHECK;

/* Queues a stock.low event for a product (variant_id 0) or variant whose
 * stock is now after, at or below threshold. */
void stock_low_notice(cmd_result_t *res, int64_t product_id, int64_t variant_id,
                      int64_t after, int64_t threshold);

/*
 * Returns the stock of every line of an order (cancel, expire, refund with
 * restock): locks the order's products and variants in ascending order,
 * adds each line's quantity back (aggregated per product/variant) and
 * writes ledger rows with the given reason. The caller holds the order row
 * lock and guarantees this happens once per order (the state machine does).
 */
od_status_t stock_restore_order(apply_ctx_t *ctx, const char *order_id,
                                const char *reason,
                                cmd_result_t *res) OD_MUSTCHECK;

#endif
