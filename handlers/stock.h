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

/* Queues a stock.low event for a product (variant_id 0) or variant whose
 * stock is now after, at or below threshold. */
void stock_low_notice(cmd_result_t *res, int64_t product_id, int64_t variant_id,
                      int64_t after, int64_t threshold);

#endif
