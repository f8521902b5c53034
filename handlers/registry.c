/* registry.c - the dispatch table: command type, roles, parse, decide */
#include <string.h>

#include "fsm.h"
#include "handlers.h"

#define ENTRY(name, roles)                                                     \
    {                                                                          \
#name, roles, name##_parse, name##_order_id, 0, name##_decide          \
    }

static const handler_t handler_table[] = {
    {"checkout", ROLE_CUSTOMER | ROLE_ADMIN | ROLE_SYSTEM, checkout_parse,
     checkout_order_id, 1, checkout_decide},
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

json_t *
handler_available_actions(const char *status)
{
    static const cmd_role_t all_roles[] = {
        ROLE_CUSTOMER, ROLE_VENDOR, ROLE_ADMIN, ROLE_PAYMENT, ROLE_SYSTEM};
    int from = fsm_status_parse(status);
    const fsm_transition_t *t;
    json_t *out = json_array();
    size_t n = 0;

    if (out == NULL || from < 0)
        return out;
    t = fsm_transitions(&n);
    for (size_t i = 0; i < n; i++) {
        const handler_t *h = handler_find(t[i].command);
        json_t *roles, *a;

        if ((int)t[i].from != from || h == NULL)
            continue;
        roles = json_array();
        for (size_t r = 0; roles != NULL && r < OD_ARRAY_LEN(all_roles); r++)
            if (h->roles & (unsigned)all_roles[r])
                json_array_append_new(roles,
                                      json_string(cmd_role_name(all_roles[r])));
        a = json_pack("{s:s, s:s, s:o}", "command", t[i].command, "to",
                      fsm_status_name(t[i].to), "roles",
                      roles ? roles : json_array());
        if (a == NULL || json_array_append_new(out, a) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}
