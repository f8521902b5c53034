/* fsm.h - the order state machine: statuses and the legal transitions */
#ifndef OD_FSM_H
#define OD_FSM_H

#include <stddef.h>

/*
 * DESIGN: this table is the single source of truth for order transitions in
 * the code. The database holds a mirror (table order_transitions, enforced
 * by the orders_guard trigger) so that hand-written SQL cannot break the
 * rules either; an integration test keeps the two equal.
 */
typedef enum fsm_status {
    FSM_PENDING = 0,
    FSM_PAID,
    FSM_PROCESSING,
    FSM_SHIPPED,
    FSM_DELIVERED,
    FSM_REFUNDED,
    FSM_CANCELLED,
    FSM_EXPIRED,
    FSM_NSTATUS
} fsm_status_t;

/* One legal transition and the command type that takes it (its roles are
 * the dispatch table's, handlers/registry.c). */
typedef struct fsm_transition {
    fsm_status_t from;
    fsm_status_t to;
    const char *command;
} fsm_transition_t;

/* The status named s ("pending", ...), or -1 for an unknown or NULL name. */
int fsm_status_parse(const char *s);

/* The name of a status, or "unknown" when out of range. */
const char *fsm_status_name(fsm_status_t status);

/* 1 if from -> to is a legal transition, 0 otherwise (also for out of
 * range values and for from == to). */
int fsm_can(fsm_status_t from, fsm_status_t to);

/* 1 if no transition leaves the status. */
int fsm_is_terminal(fsm_status_t status);

/* The transition table (static storage); *n receives its length. */
const fsm_transition_t *fsm_transitions(size_t *n);

#endif
