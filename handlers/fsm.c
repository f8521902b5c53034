/* fsm.c - the order state machine table (mirrored by order_transitions) */
#include "fsm.h"

#include <string.h>

#include "../worker/od.h"

static const char *const fsm_names[FSM_NSTATUS] = {
    [FSM_PENDING] = "pending",       [FSM_PAID] = "paid",
    [FSM_PROCESSING] = "processing", [FSM_SHIPPED] = "shipped",
    [FSM_DELIVERED] = "delivered",   [FSM_REFUNDED] = "refunded",
    [FSM_CANCELLED] = "cancelled",   [FSM_EXPIRED] = "expired",
};

/* pending -> paid -> processing -> shipped -> delivered -> refunded;
 * pending -> cancelled | expired; paid, processing -> cancelled */
static const fsm_transition_t fsm_table[] = {
    {FSM_PENDING, FSM_PAID, "pay"},
    {FSM_PAID, FSM_PROCESSING, "start_processing"},
    {FSM_PROCESSING, FSM_SHIPPED, "ship"},
    {FSM_SHIPPED, FSM_DELIVERED, "deliver"},
    {FSM_DELIVERED, FSM_REFUNDED, "refund"},
    {FSM_PENDING, FSM_CANCELLED, "cancel"},
    {FSM_PENDING, FSM_EXPIRED, "expire"},
    {FSM_PAID, FSM_CANCELLED, "cancel"},
    {FSM_PROCESSING, FSM_CANCELLED, "cancel"},
};

int
fsm_status_parse(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = 0; i < FSM_NSTATUS; i++)
        if (strcmp(fsm_names[i], s) == 0)
            return i;
    return -1;
}

const char *
fsm_status_name(fsm_status_t status)
{
    if ((int)status < 0 || status >= FSM_NSTATUS)
        return "unknown";
    return fsm_names[status];
}

int
fsm_can(fsm_status_t from, fsm_status_t to)
{
    for (size_t i = 0; i < OD_ARRAY_LEN(fsm_table); i++)
        if (fsm_table[i].from == from && fsm_table[i].to == to)
            return 1;
    return 0;
}

int
fsm_is_terminal(fsm_status_t status)
{
    for (size_t i = 0; i < OD_ARRAY_LEN(fsm_table); i++)
        if (fsm_table[i].from == status)
            return 0;
    return 1;
}

const fsm_transition_t *
fsm_transitions(size_t *n)
{
    *n = OD_ARRAY_LEN(fsm_table);
    return fsm_table;
}
