/* apply.h - one command, start to finish, inside the batch transaction */
#ifndef OD_APPLY_H
#define OD_APPLY_H

#include "../handlers/handler.h"
#include "config.h"
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
 * Applies one message on db's open transaction: parses it, runs its handler
 * in a savepoint, records the dedup row and writes the result event (and
 * any extra events, or a dead-letter copy) to the outbox.
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
 * Applies, in arrival order, the commands parked for order_id (called
 * after the checkout that created it, in the same transaction). *released
 * (may be NULL) is incremented for each.
 */
od_status_t apply_release_deferred(db_t *db, const apply_config_t *cfg,
                                   const char *order_id, int *released,
                                   char *err, size_t errlen) OD_MUSTCHECK;

/*
 * Refuses (order_not_found, a second result event) up to 100 commands
 * parked longer than cfg->defer_timeout_ms, on the open transaction; *n
 * receives how many.
 */
od_status_t apply_expire_deferred(db_t *db, const apply_config_t *cfg, int *n,
                                  char *err, size_t errlen) OD_MUSTCHECK;

/*
 * The rows one message will lock: the order it names and the products it
 * names (items included), parsed before the batch runs. Poison and
 * commands naming nothing lockable leave it empty.
 */
#define APPLY_MSG_MAX_PRODUCTS 100

typedef struct apply_msglocks {
    char order[37]; /* "" when none */
    int nproducts;
    int64_t products[APPLY_MSG_MAX_PRODUCTS];
} apply_msglocks_t;

void apply_msglocks_parse(apply_msglocks_t *ml, const void *payload,
                          size_t len);

/*
 * The rows a batch will lock, gathered before it runs so they can all be
 * locked up front in the global order (orders, then products, ascending):
 * two batches then never deadlock on each other, whatever commands they
 * mix. Arrays are Postgres array literals ("{...}"), caller frees with
 * apply_lockset_free.
 */
typedef struct apply_lockset {
    char *orders;   /* uuid[] */
    char *products; /* bigint[] */
    size_t olen, ocap, plen, pcap;
    int norders, nproducts;
} apply_lockset_t;

/* Adds one message's rows. */
void apply_lockset_add(apply_lockset_t *ls, const apply_msglocks_t *ml);
/* Finishes the literals ("{}" when empty). */
void apply_lockset_close(apply_lockset_t *ls);
void apply_lockset_free(apply_lockset_t *ls);

/* Writes an outbox row for an event built by the caller (scheduler).
 * Takes ownership of payload. */
od_status_t apply_emit_event(db_t *db, const char *topic, const char *key,
                             const char *type, const char *dedup_key,
                             json_t *payload, char *err,
                             size_t errlen) OD_MUSTCHECK;

#endif
