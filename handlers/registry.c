/* registry.c - the dispatch table: command type, parse, apply, roles */
#include <string.h>

#include "handlers.h"

#define ENTRY(name, roles)                                                     \
    {                                                                          \
#name, roles, name##_parse, name##_apply, name##_order_id, 0           \
    }

static const handler_t handler_table[] = {
    {"checkout", ROLE_CUSTOMER | ROLE_ADMIN | ROLE_SYSTEM, checkout_parse,
     checkout_apply, checkout_order_id, 1},
    ENTRY(pay, ROLE_PAYMENT | ROLE_ADMIN),
    ENTRY(cancel, ROLE_CUSTOMER | ROLE_VENDOR | ROLE_ADMIN | ROLE_SYSTEM),
    ENTRY(start_processing, ROLE_VENDOR | ROLE_ADMIN),
    ENTRY(ship, ROLE_VENDOR | ROLE_ADMIN),
    ENTRY(deliver, ROLE_VENDOR | ROLE_ADMIN | ROLE_SYSTEM),
    ENTRY(refund, ROLE_ADMIN | ROLE_PAYMENT),
    ENTRY(expire, ROLE_SYSTEM | ROLE_ADMIN),
    ENTRY(product_upsert, ROLE_ADMIN | ROLE_VENDOR),
    ENTRY(product_delete, ROLE_ADMIN | ROLE_VENDOR),
    ENTRY(stock_adjust, ROLE_ADMIN | ROLE_VENDOR),
    ENTRY(tax_rate_set, ROLE_ADMIN),
};

const handler_t *
handler_find(const char *type)
{
    for (size_t i = 0; i < OD_ARRAY_LEN(handler_table); i++)
        if (strcmp(handler_table[i].type, type) == 0)
            return &handler_table[i];
    return NULL;
}

const handler_t *
handler_at(size_t i)
{
    return i < OD_ARRAY_LEN(handler_table) ? &handler_table[i] : NULL;
}
