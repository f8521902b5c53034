/* stock.c - the stock.low event a decrement across its product's
 * threshold queues (the changes themselves: snap_stock_change) */
#include "stock.h"

#include <inttypes.h>
#include <stdio.h>

void
stock_low_notice(cmd_result_t *res, int64_t product_id, int64_t variant_id,
                 int64_t after, int64_t threshold)
{
    char key[24];
    json_t *payload;

    snprintf(key, sizeof(key), "%" PRId64, product_id);
    payload = json_pack(
        "{s:I, s:o, s:I, s:I}", "product_id", (json_int_t)product_id,
        "variant_id", variant_id ? json_integer(variant_id) : json_null(),
        "stock", (json_int_t)after, "threshold", (json_int_t)threshold);
    cmd_result_add_event(res, "stock.low", key, payload);
}
