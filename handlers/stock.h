/* stock.h - the stock.low event (stock changes themselves are
 * snap_stock_change in snapshot.h) */
#ifndef OD_STOCK_H
#define OD_STOCK_H

#include "handler.h"

/* Queues a stock.low event for a product (variant_id 0) or variant whose
 * stock is now after, at or below threshold. */
void stock_low_notice(cmd_result_t *res, int64_t product_id, int64_t variant_id,
                      int64_t after, int64_t threshold);

#endif
