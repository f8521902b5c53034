/* stock.c - guarded stock changes with their ledger rows
 *
 * DESIGN: one statement per change: a data-modifying CTE updates the row
 * under its guard (never below zero, never past INT64_MAX: the CASE keeps
 * the guard itself from overflowing) and inserts the
 * ledger row only when the update matched, so stock = sum(ledger) holds
 * whatever the outcome. The caller already holds the row lock, so the
 * guard refuses only when there really is not enough stock.
 */
#include "stock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
