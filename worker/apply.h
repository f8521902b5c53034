/* apply.h - one command, start to finish, inside the batch transaction */
#ifndef OD_APPLY_H
#define OD_APPLY_H

#include "../handlers/handler.h"
#include "config.h"
#include "db.h"
#include "sources.h"

typedef struct apply_config {
    domain_config_t domain;
    const char *dlq_topic;
    int halt_on_internal_error;  /* --on-internal-error=halt */
    int quiet_duplicates;        /* replay: no result event for duplicates */
    int64_t defer_timeout_ms;    /* 0: never park, refuse order_not_found */
    int64_t max_clock_skew_us;   /* event-time bounds around the Kafka */
    int64_t max_event_age_us;    /* timestamp (contract v2) */
    const od_sources_t *sources; /* for parked commands' sources */
} apply_config_t;

/* Fills an apply configuration from the process configuration. */
void apply_config_init(apply_config_t *acfg, const od_config_t *cfg);

/* Where the message came from (borrowed for the call). source is the
 * trust boundary it crossed: its name is half of the command's dedup
 * identity, its roles what the command may claim. */
typedef struct apply_source {
    const od_source_t *source;
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t ts_us; /* Kafka message timestamp, 0 if none */
    const void *key;
    size_t key_len;
    /* the W3C traceparent header the command carried (validated), NULL or
     * "" when none: copied onto its result and domain events */
    const char *traceparent;
} apply_source_t;

/* What happened, for metrics and logs. */
typedef struct apply_report {
    cmd_outcome_t outcome;
    const char *reason; /* static, NULL when applied */
    const char *type;   /* static: a known command type, else NULL */
    int dlq;            /* a copy went to the dead-letter topic */
    int internal_error;
    int released; /* parked commands applied after this checkout */
    char dedup_key[CMD_DEDUP_KEY_MAX + 1];
    char event_id[37]; /* the command.result event, "" if none */
} apply_report_t;

/*
 * Applies one message on db's open transaction, alone in a savepoint: a
 * batch of one (batch_apply_isolated): its dedup row, its result event,
 * its extra events or a dead-letter copy.
 * OD_OK: the message is fully handled (whatever its outcome).
 * OD_RETRY: transient fault, the caller rolls the whole batch back.
 * OD_FATAL: an internal error with halt_on_internal_error set, or the
 *           transaction could not be recovered; err says why.
 */
od_status_t apply_message(db_t *db, const apply_config_t *cfg,
                          const void *payload, size_t len,
                          const apply_source_t *src, apply_report_t *rep,
                          char *err, size_t errlen) OD_MUSTCHECK;

/*
 * Refuses (order_not_found, a second result event) up to 100 commands
 * parked longer than cfg->defer_timeout_ms, on the open transaction; *n
 * receives how many.
 */
od_status_t apply_expire_deferred(db_t *db, const apply_config_t *cfg, int *n,
                                  char *err, size_t errlen) OD_MUSTCHECK;

/* The command.result event of env with res as JSON text (caller frees),
 * or NULL when it cannot be encoded. */
char *apply_result_text(const cmd_env_t *env, const cmd_result_t *res,
                        const char *event_id, const apply_source_t *src);

#endif
