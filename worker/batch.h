/* batch.h - a batch of commands in three steps: load and lock every row
 * they can touch, decide each in memory in order, write set-based */
#ifndef OD_BATCH_H
#define OD_BATCH_H

#include "../handlers/command.h"
#include "../handlers/snapshot.h"
#include "apply.h"
#include "db.h"
#include "dedup.h"
#include "deferred.h"
#include "outbox_store.h"
#include "pgarray.h"

/* One message of a batch: where it came from, and what became of it. */
typedef struct batch_msg {
    apply_source_t src;
    const void *payload;
    size_t len;
    int quiet;   /* a replay re-reading it: a duplicate writes no result */
    int skip;    /* not applied in this batch (carried, redelivered) */
    int resumed; /* a parked command taken off the shelf */
    /* a replay's re-read: only the dedup key was scanned from the body,
     * which is parsed if its dedup row was not written for it */
    int scanned;
    int64_t parked_id;
    /* filled by batch_prepare */
    cmd_parse_t parsed;
    cmd_env_t env;
    char perr[256];
    /* filled by batch_decide */
    apply_report_t rep;
} batch_msg_t;

/* What a batch needs loaded, gathered from its messages. */
typedef struct batch_needs {
    pgarray_t orders;    /* uuid[]: every order named */
    pgarray_t creates;   /* uuid[]: orders the checkouts create */
    pgarray_t products;  /* bigint[] */
    pgarray_t variants;  /* bigint[] */
    pgarray_t countries; /* text[] */
    pgarray_t dsources;  /* text[], with dkeys: the dedup identities */
    pgarray_t dkeys;
    int ncheckouts;
    /* load the dedup rows only: a replay re-reading commands it applied
     * before needs nothing else to find them duplicates (see
     * batch_quiet_duplicates) */
    int dedup_only;
} batch_needs_t;

typedef struct batch {
    snapshot_t snap;
    snap_vec_t dedup; /* dedup_row_t */
    dedup_index_t dedup_ix;
    snap_vec_t parked; /* deferred_row_t */
    snap_vec_t events; /* outbox_row_t */
    /* rows held by another executor (try mode): what to carry */
    snap_vec_t held_orders;   /* char[37] */
    snap_vec_t held_products; /* int64_t */
    int nresolved;            /* parked commands' dedup rows to update */
} batch_t;

void batch_init(batch_t *b);
void batch_free(batch_t *b);

/* Parses every message (env, parse status, the event-time bounds of cfg)
 * and gathers what to load. With dedup_only (a replay's re-read batch)
 * each message's identity is all that is read and all that is gathered:
 * its dedup key scanned without a parse (command_scan_dedup_key), else
 * parsed (command_parse_identity); if the batch turns out not to be quiet
 * duplicates it is prepared again in full. Release each message with
 * batch_msg_free. */
void batch_prepare(const apply_config_t *cfg, batch_msg_t *msgs, int n,
                   int dedup_only, batch_needs_t *needs);
void batch_msg_free(batch_msg_t *m);
/* Parses one message as batch_prepare does (a parked command that is
 * resumed keeps its own source and skips the checks it passed when it
 * was first taken). */
void batch_msg_prepare(batch_msg_t *m, const apply_config_t *cfg);
/* Parses one message's identity alone (command_parse_identity) with its
 * source's name, as a replay's re-read batch does. */
void batch_msg_parse_identity(batch_msg_t *m);
void batch_needs_free(batch_needs_t *needs);

/*
 * Queues the load statements (in the global lock order: advisory locks
 * of the named orders, orders, products, variants; then tax rates, dedup
 * rows, parked commands, order numbers) for the next call's round trip.
 * try: take only what is free (SKIP LOCKED) and report the rest as held.
 */
typedef struct batch_load batch_load_t;
od_status_t batch_load_queue(db_t *db, const batch_needs_t *needs, int try_,
                             batch_load_t **load, char *err,
                             size_t errlen) OD_MUSTCHECK;
/* After the round trip: fills the snapshot and the held lists from what
 * the queued statements returned; frees load. */
od_status_t batch_load_take(batch_t *b, batch_load_t *load, char *err,
                            size_t errlen) OD_MUSTCHECK;

/*
 * 1 when every message whose skip is 0 is a quiet re-read of one decided
 * before: poison, or a command whose dedup row the load found (and that
 * is not an internal_error refusal the same body may take over). Then a
 * dedup-only load decided the batch; otherwise it needs the full load. A
 * scanned message that is not the one its row was written for is parsed
 * here.
 */
int batch_quiet_duplicates(batch_t *b, batch_msg_t *msgs, int n);

/* 1 if the message needs a row another executor holds: its order, a
 * product it names, or the product of one of its order's items. */
int batch_msg_held(batch_t *b, const batch_msg_t *m);

/*
 * Decides every message whose skip is 0, in order, against the loaded
 * snapshot: dedup, authorisation, the handler's decide, parking and the
 * release of parked commands, results and events. OD_OK, or OD_FATAL
 * when --on-internal-error=halt stops on an internal error.
 */
od_status_t batch_decide(batch_t *b, const apply_config_t *cfg,
                         batch_msg_t *msgs, int n, char *err,
                         size_t errlen) OD_MUSTCHECK;

/*
 * The three steps for msgs on db's open transaction, waiting for locks
 * (no carrying): prepare, load, decide, and the writes queued for the
 * caller's next call (its RELEASE SAVEPOINT or COMMIT). The messages'
 * reports say what became of each; release them with batch_msg_free.
 * OD_RETRY for transient faults, OD_FATAL for an error the batch could not
 * predict (or --on-internal-error=halt).
 */
od_status_t batch_run(db_t *db, const apply_config_t *cfg, batch_msg_t *msgs,
                      int n, char *err, size_t errlen) OD_MUSTCHECK;

/*
 * One message alone, in its own savepoint (the per-command path: the
 * fallback of a batch whose writes failed, and callers that apply one
 * command at a time). A write that fails in a way the batch could not
 * predict rolls the savepoint back and records the message as
 * internal_error with its dead-letter copy, unless halting.
 */
od_status_t batch_apply_isolated(db_t *db, const apply_config_t *cfg,
                                 batch_msg_t *m, char *err,
                                 size_t errlen) OD_MUSTCHECK;

/* Records m as rejected internal_error (its dedup row, its result and a
 * dead-letter copy) into an empty batch b, after its own writes failed;
 * refused_before: its dedup row exists (an internal_error refusal it was
 * redriven from) and is updated. OD_FATAL with --on-internal-error=halt. */
od_status_t batch_fail_message(batch_t *b, const apply_config_t *cfg,
                               batch_msg_t *m, int refused_before, char *err,
                               size_t errlen) OD_MUSTCHECK;

/* Queues the set-based writes of everything decided, one statement per
 * table, for the next call's round trip (the COMMIT). */
od_status_t batch_write_queue(db_t *db, batch_t *b, char *err,
                              size_t errlen) OD_MUSTCHECK;

#endif
