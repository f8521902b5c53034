/* scheduler.h - expiry of abandoned orders, parked-command timeouts and
 * retention purges; one active instance across all processes */
#ifndef OD_SCHEDULER_H
#define OD_SCHEDULER_H

#include <stdatomic.h>

#include "config.h"
#include "outbox.h"

typedef struct scheduler scheduler_t;

scheduler_t *scheduler_new(const od_config_t *cfg, outbox_t *outbox, char *err,
                           size_t errlen);
int scheduler_start(scheduler_t *s);
void scheduler_stop(scheduler_t *s);
void scheduler_destroy(scheduler_t *s);

#endif
