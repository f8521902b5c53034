/* health.h - readiness: the facts /readyz reports, the thread that keeps
 * the Postgres facts fresh, and the group membership of the executors */
#ifndef OD_HEALTH_H
#define OD_HEALTH_H

#include <stddef.h>

#include "config.h"

typedef struct health health_t;

/* Postgres must have answered within this many seconds for /readyz */
#define HEALTH_PG_FRESH_S 5

/* What the process is doing, for /readyz while it is not running yet or
 * any more (a static string; "running" when it is). */
void health_set_phase(const char *phase);

/*
 * Group membership, reported by each consumer from its rebalance
 * callback. health_member_add returns the member's slot (-1 when the
 * table is full: that member is not watched); name is copied.
 * health_member_assigned: the consumer has its assignment (n partitions,
 * possibly 0); health_member_revoked: it lost it (a rebalance started, or
 * it left). Rebalances are counted here, once per rebalance of the group
 * as this process sees it: when the last of its members has its new
 * assignment (joining at start counts; leaving at stop does not; a
 * rebalance that took nothing from this process's members is not seen).
 */
int health_member_add(const char *name);
void health_member_assigned(int slot, int n);
void health_member_revoked(int slot);
void health_member_remove(int slot);

/*
 * Starts the thread that pings Postgres on its own connection every
 * second (SELECT 1: readiness needs an answer within HEALTH_PG_FRESH_S),
 * samples the outbox backlog every few seconds, and warns, at least
 * every 30 s, while the process is not ready and why. NULL with err
 * filled on failure.
 */
health_t *health_start(const od_config_t *cfg, char *err, size_t errlen);
void health_stop(health_t *h);

/* 1 when ready. buf (len bytes) receives the body of /readyz: "ready" or
 * "not ready", then one reason or remark per line. */
int health_report(char *buf, size_t len);

#endif
