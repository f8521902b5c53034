/* executor_int.h - what an executor's loop (executor.c) and one attempt
 * at its batch (attempt.c) share: the executor's state, private to the two
 *
 * DESIGN: executor.c owns the thread, the consumer, the assignment
 * callbacks and the retry loop; attempt.c runs one transaction over the
 * batch (offset locks, load, decide, write, COMMIT, or the one-by-one
 * fallback). Both read and write the executor's state, so its definition
 * lives here rather than in executor.h, which the rest of orderd sees.
 */
#ifndef OD_EXECUTOR_INT_H
#define OD_EXECUTOR_INT_H

#include <pthread.h>

#include "apply.h"
#include "batch.h"
#include "consumer.h"
#include "db.h"
#include "executor.h"

#define EXECUTOR_MAX_PARTS 256

typedef struct part_state {
    const char *topic;
    int32_t partition;
    int64_t first;        /* first offset of this partition in the batch */
    int64_t stored;       /* next_offset read from Postgres */
    int64_t replay_until; /* below this, duplicates are quiet */
    int64_t done;         /* last offset applied or skipped (first - 1) */
    int cut;              /* from cut_at on, carried to the next batch */
    int64_t cut_at;
    db_rows_t *offset_rows; /* the offset lock's row, once it ran */
} part_state_t;

typedef struct sought {
    char topic[256];
    int32_t partition;
    int64_t offset;
} sought_t;

typedef struct assigned {
    char topic[256];
    int32_t partition;
    int64_t start; /* where the assignment began (-2: the beginning) */
    int stalled;   /* batches in a row this partition was carried whole */
    /* replay_until as the last batch read it: below it, a batch is
     * expected to be re-read duplicates and tries a dedup-only load */
    int64_t replay_until;
} assigned_t;

#define EXECUTOR_IDLE_CHECK_US (1000 * 1000)

/* Where a batch's time went, summed over its attempts (for the debug
 * line each batch logs). */
typedef struct attempt_times {
    int64_t parse_us;  /* parsing and gathering what to load */
    int64_t load_us;   /* BEGIN, offset locks and the load: a round trip */
    int64_t decide_us; /* deciding in memory */
    int64_t write_us;  /* the writes, the offsets and COMMIT: a round trip */
    int attempts;
} attempt_times_t;

struct executor {
    int id;
    const od_config_t *cfg;
    apply_config_t acfg;
    atomic_int *stop;
    outbox_t *outbox;
    db_t *db;
    consumer_t *consumer;
    consumer_msg_t *batch;
    batch_msg_t *msgs; /* per message of the batch, per attempt */
    char *carry;       /* per message: left for the next batch */
    int n;
    part_state_t parts[EXECUTOR_MAX_PARTS];
    int nparts;
    sought_t sought[EXECUTOR_MAX_PARTS];
    int nsought;
    assigned_t assigned[EXECUTOR_MAX_PARTS];
    int nassigned;
    int64_t last_idle_check;
    pthread_t thread;
    int halted;
    unsigned int seed;
    attempt_times_t times;
    /* until then (od_mono_us) batches wait for held rows: a recent one
     * carried a large share of its messages */
    int64_t contended_until;
};

/* How an attempt at a batch ended, when it did not fail. */
typedef enum attempt_end {
    ATTEMPT_COMMITTED,
    ATTEMPT_SOUGHT_BACK, /* an operator replay: the batch is dropped */
    ATTEMPT_BUSY,        /* first try, every message needs a held row */
    ATTEMPT_FULL_LOAD    /* a dedup-only load did not decide it all */
} attempt_end_t;

/* The partitions of the batch, ascending (their offsets are locked in
 * that order). */
void attempt_collect_parts(executor_t *ex);
/* The assignment entry of a partition, or NULL. */
assigned_t *attempt_assigned_find(executor_t *ex, const char *topic,
                                  int32_t partition);
/* 1 when every message of the batch lies below its partition's
 * replay_until as the last batch saw it. */
int attempt_rereading(executor_t *ex);
/* 1 when this stored offset of the partition was sought to already. */
int attempt_already_sought(executor_t *ex, const part_state_t *p);
/* A batch committed past a seek: a later replay to the same offset must
 * seek again. */
void attempt_forget_sought(executor_t *ex);
/*
 * One attempt at the batch (see attempt.c): OD_OK with *end saying what
 * became of it, OD_RETRY for a transient fault (rolled back), OD_FATAL
 * when --on-internal-error=halt stops it.
 */
od_status_t attempt_run(executor_t *ex, int blocking, int lean,
                        attempt_end_t *end, char *err,
                        size_t errlen) OD_MUSTCHECK;

#endif
