/* executor.c - batches, transactions and offsets for one executor thread
 *
 * DESIGN: a batch is up to --batch-size messages or --batch-wait-ms after
 * its first message. It is applied in one transaction: first the
 * consumer_offsets row of every partition in the batch is locked (in
 * ascending order) and read; messages below the stored offset were applied
 * before (a redelivery, or a zombie consumer after a rebalance) and are
 * skipped without a second result; the others go through apply_message;
 * the new offsets are written; COMMIT. A transient fault rolls everything
 * back and retries the same messages after a jittered back-off, so nothing
 * advances and nothing doubles. If a stored offset is below the batch's
 * first message (an operator replay moved it back), the batch is dropped
 * and the partitions are sought back before anything is applied.
 */
#include "executor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "apply.h"
#include "batch.h"
#include "consumer.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"

#define EXECUTOR_MAX_PARTS 256

atomic_llong executor_messages_done;
/* when each executor last turned its loop (od_mono_us), for the watchdog */
static atomic_llong executor_beats[EXECUTOR_MAX_IDS];

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
};

static void
backoff(executor_t *ex, int attempt)
{
    /* 50 ms doubling to 5 s, with full jitter, interruptible by stop */
    int64_t cap = 50LL << (attempt < 7 ? attempt : 7);
    int64_t ms = cap > 5000 ? 5000 : cap;
    int64_t wait = ms / 2 + (int64_t)(rand_r(&ex->seed) % (ms / 2 + 1));
    int64_t end = od_mono_us() + wait * 1000;

    while (od_mono_us() < end && !atomic_load(ex->stop)) {
        struct timespec ts = {0, 10 * 1000 * 1000};

        /* waiting out a fault is progress, as far as the watchdog goes */
        atomic_store(&executor_beats[ex->id], od_mono_us());
        nanosleep(&ts, NULL);
    }
}

static int
part_cmp(const void *a, const void *b)
{
    const part_state_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);

    if (c != 0)
        return c;
    return (x->partition > y->partition) - (x->partition < y->partition);
}

static part_state_t *
part_find(executor_t *ex, const char *topic, int32_t partition)
{
    for (int i = 0; i < ex->nparts; i++)
        if (ex->parts[i].partition == partition &&
            strcmp(ex->parts[i].topic, topic) == 0)
            return &ex->parts[i];
    return NULL;
}

static void
collect_parts(executor_t *ex)
{
    ex->nparts = 0;
    for (int i = 0; i < ex->n; i++) {
        consumer_msg_t *m = &ex->batch[i];
        part_state_t *p = part_find(ex, m->topic, m->partition);

        if (p == NULL && ex->nparts < EXECUTOR_MAX_PARTS) {
            p = &ex->parts[ex->nparts++];
            p->topic = m->topic;
            p->partition = m->partition;
            p->first = m->offset;
        }
    }
    /* ascending order: two executors never wait on each other's rows */
    qsort(ex->parts, (size_t)ex->nparts, sizeof(ex->parts[0]), part_cmp);
}

/*
 * Queues the lock of every partition's offset row, in ascending order,
 * for the next statement's round trip (with flush, runs them now).
 * stored_offsets picks up what they returned.
 */
static od_status_t
lock_offsets(executor_t *ex, int flush, char *err, size_t errlen)
{
    od_status_t st = OD_OK;

    for (int i = 0; i < ex->nparts && st == OD_OK; i++) {
        part_state_t *p = &ex->parts[i];
        offsets_key_t k = {ex->cfg->group, p->topic, p->partition};

        st = offsets_queue_lock(ex->db, &k, &p->offset_rows, err, errlen);
    }
    if (st == OD_OK && flush)
        st = db_flush(ex->db, err, errlen);
    return st;
}

static assigned_t *
assigned_find(executor_t *ex, const char *topic, int32_t partition)
{
    for (int i = 0; i < ex->nassigned; i++)
        if (ex->assigned[i].partition == partition &&
            strcmp(ex->assigned[i].topic, topic) == 0)
            return &ex->assigned[i];
    return NULL;
}

/* The stored offsets the queued locks returned; frees their rows. */
static od_status_t
stored_offsets(executor_t *ex, od_status_t st, char *err, size_t errlen)
{
    for (int i = 0; i < ex->nparts; i++) {
        part_state_t *p = &ex->parts[i];

        if (st == OD_OK &&
            offsets_locked(p->offset_rows, &p->stored, &p->replay_until) < 0) {
            od_err(err, errlen, "offset row of %s/%d not returned", p->topic,
                   (int)p->partition);
            st = OD_RETRY;
        }
        if (st == OD_OK) {
            assigned_t *a = assigned_find(ex, p->topic, p->partition);

            if (a != NULL)
                a->replay_until = p->replay_until;
        }
        db_rows_free(p->offset_rows);
        p->offset_rows = NULL;
    }
    return st;
}

/* 1 when every message of the batch lies below its partition's
 * replay_until as the last batch saw it: an operator replay re-reads
 * what was applied before. */
static int
rereading(executor_t *ex)
{
    for (int i = 0; i < ex->n; i++) {
        assigned_t *a =
            assigned_find(ex, ex->batch[i].topic, ex->batch[i].partition);

        if (a == NULL || ex->batch[i].offset >= a->replay_until)
            return 0;
    }
    return ex->n > 0;
}

static int
already_sought(executor_t *ex, const part_state_t *p)
{
    for (int i = 0; i < ex->nsought; i++)
        if (ex->sought[i].partition == p->partition &&
            ex->sought[i].offset == p->stored &&
            strcmp(ex->sought[i].topic, p->topic) == 0)
            return 1;
    return 0;
}

/*
 * A stored offset below the batch means an operator moved it back (replay).
 * Seek once per distinct stored value: if the broker no longer has those
 * messages (retention), the next batch starts past them and is accepted.
 */
static int
needs_seek_back(executor_t *ex)
{
    int any = 0;

    for (int i = 0; i < ex->nparts; i++) {
        part_state_t *p = &ex->parts[i];

        if (p->stored < p->first && !already_sought(ex, p)) {
            any = 1;
            break;
        }
    }
    if (!any)
        return 0;
    for (int i = 0; i < ex->nparts; i++) {
        part_state_t *p = &ex->parts[i];
        int64_t to = p->stored < p->first ? p->stored : p->first;

        if (p->stored < p->first && ex->nsought < EXECUTOR_MAX_PARTS) {
            sought_t *s = &ex->sought[ex->nsought++];

            snprintf(s->topic, sizeof(s->topic), "%s", p->topic);
            s->partition = p->partition;
            s->offset = p->stored;
            log_info("stored offset of %s/%d moved back to %lld: seeking",
                     p->topic, (int)p->partition, (long long)p->stored);
        }
        consumer_seek(ex->consumer, p->topic, p->partition, to);
    }
    return 1;
}

/* A batch committed past a seek: a later replay to the same offset must
 * seek again. */
static void
forget_sought(executor_t *ex)
{
    for (int i = 0; i < ex->nparts; i++) {
        for (int j = 0; j < ex->nsought; j++) {
            if (ex->sought[j].partition == ex->parts[i].partition &&
                strcmp(ex->sought[j].topic, ex->parts[i].topic) == 0) {
                ex->sought[j] = ex->sought[--ex->nsought];
                j--;
            }
        }
    }
}

/* Outcomes of one attempt, added to the metrics only once it commits. */
typedef struct batch_counts {
    long long applied, rejected, duplicate, deferred, dlq, internal;
} batch_counts_t;

static void
count_outcome(batch_counts_t *c, const apply_report_t *rep)
{
    c->dlq += rep->dlq;
    c->internal += rep->internal_error;
    switch (rep->outcome) {
    case OUTCOME_APPLIED:
        c->applied++;
        break;
    case OUTCOME_REJECTED:
        c->rejected++;
        break;
    case OUTCOME_DUPLICATE:
        c->duplicate++;
        break;
    case OUTCOME_DEFERRED:
        c->deferred++;
        break;
    }
}

static void
publish_counts(const batch_counts_t *c)
{
    atomic_fetch_add(&metrics.applied, c->applied);
    atomic_fetch_add(&metrics.rejected, c->rejected);
    atomic_fetch_add(&metrics.duplicate, c->duplicate);
    atomic_fetch_add(&metrics.deferred, c->deferred);
    atomic_fetch_add(&metrics.dlq, c->dlq);
    atomic_fetch_add(&metrics.internal_errors, c->internal);
}

/* The batch's messages as the batch module takes them (parsed anew for
 * each attempt: a retry starts from the same bytes). */
static void
batch_msgs(executor_t *ex)
{
    memset(ex->msgs, 0, sizeof(*ex->msgs) * (size_t)ex->n);
    for (int i = 0; i < ex->n; i++) {
        consumer_msg_t *m = &ex->batch[i];
        batch_msg_t *bm = &ex->msgs[i];

        bm->src.source = m->source;
        bm->src.topic = m->topic;
        bm->src.partition = m->partition;
        bm->src.offset = m->offset;
        bm->src.ts_us = m->ts_us;
        bm->src.key = m->key;
        bm->src.key_len = m->key_len;
        bm->payload = m->payload;
        bm->len = m->len;
        bm->src.traceparent = m->traceparent;
    }
}

static void
batch_msgs_free(executor_t *ex)
{
    for (int i = 0; i < ex->n; i++)
        batch_msg_free(&ex->msgs[i]);
}

/*
 * Which messages this attempt applies: below the stored offset they were
 * applied before (skipped); in the first try, every partition's messages
 * from the first one that needs a row another executor holds are carried
 * to the next batch, so the partition's order holds and the executor goes
 * on with the rest instead of waiting. Returns 1 when at least one
 * message is applied or skipped.
 */
static int
choose(executor_t *ex, batch_t *b, int blocking, int64_t *skipped)
{
    int progress = 0;

    for (int i = 0; i < ex->n; i++) {
        batch_msg_t *bm = &ex->msgs[i];
        part_state_t *p = part_find(ex, bm->src.topic, bm->src.partition);

        if (!blocking && !p->cut && bm->src.offset >= p->stored &&
            batch_msg_held(b, bm)) {
            p->cut = 1;
            p->cut_at = bm->src.offset;
        }
        ex->carry[i] = (char)p->cut;
        bm->skip = p->cut || bm->src.offset < p->stored;
        bm->quiet = bm->src.offset < p->replay_until;
        if (p->cut)
            continue;
        progress = 1;
        p->done = bm->src.offset;
        if (bm->src.offset < p->stored)
            (*skipped)++;
    }
    return progress;
}

/* The outcomes of the messages the batch applied, and their latencies
 * (Kafka timestamp to now, counted when the batch commits). */
static void
count_batch(executor_t *ex, batch_counts_t *c)
{
    for (int i = 0; i < ex->n; i++) {
        if (ex->msgs[i].skip)
            continue;
        count_outcome(c, &ex->msgs[i].rep);
        metrics_command_done(ex->msgs[i].src.ts_us, &ex->msgs[i].rep);
    }
}

/* Queues the new stored offset of every partition that moved. */
static od_status_t
store_offsets(executor_t *ex, char *err, size_t errlen)
{
    od_status_t st = OD_OK;

    for (int i = 0; i < ex->nparts && st == OD_OK; i++) {
        part_state_t *p = &ex->parts[i];
        offsets_key_t k = {ex->cfg->group, p->topic, p->partition};

        if (p->done < p->stored)
            continue;
        st = offsets_queue_store(ex->db, &k, p->done + 1, err, errlen);
    }
    return st;
}

static void
rollback_quietly(executor_t *ex)
{
    char ignore[256];

    if (db_ok(ex->db) && db_rollback(ex->db, ignore, sizeof(ignore)) != OD_OK)
        log_warn("rollback failed: %s", ignore);
}

/*
 * The fallback after a write failed in a way the snapshot could not
 * predict (a constraint, a trigger, a race the locks do not cover): the
 * same messages again, each in its own savepoint with its own load,
 * decide and write, so that only the faulty command becomes
 * internal_error (with its dead-letter copy) and its neighbours commit.
 */
static od_status_t
process_one_by_one(executor_t *ex, const char *why, char *err, size_t errlen)
{
    od_status_t st;
    int64_t skipped = 0;
    batch_counts_t counts = {0};

    log_warn("executor %d: batch of %d failed (%s): applying it command by "
             "command",
             ex->id, ex->n, why);
    batch_msgs(ex);
    db_queue_tx(ex->db, DB_TX_BEGIN);
    st = lock_offsets(ex, 1, err, errlen);
    st = stored_offsets(ex, st, err, errlen);
    if (st != OD_OK)
        goto fail;
    for (int i = 0; i < ex->nparts; i++) {
        ex->parts[i].cut = 0;
        ex->parts[i].done = ex->parts[i].first - 1;
    }
    (void)choose(ex, NULL, 1, &skipped);
    for (int i = 0; i < ex->n && st == OD_OK; i++)
        if (!ex->msgs[i].skip)
            st = batch_apply_isolated(ex->db, &ex->acfg, &ex->msgs[i], err,
                                      errlen);
    if (st == OD_OK)
        st = store_offsets(ex, err, errlen);
    if (st == OD_OK)
        st = db_commit(ex->db, err, errlen);
    if (st != OD_OK && db_failed_queued(ex->db))
        goto fail;
    if (st == OD_OK) {
        memset(ex->carry, 0, (size_t)ex->n);
        atomic_fetch_add(&metrics.skipped, skipped);
        count_batch(ex, &counts);
        publish_counts(&counts);
        metrics_batch_committed();
    }
    batch_msgs_free(ex);
    return st;
fail:
    rollback_quietly(ex);
    batch_msgs_free(ex);
    return st;
}

/* How an attempt at a batch ended, when it did not fail. */
typedef enum attempt_end {
    ATTEMPT_COMMITTED,
    ATTEMPT_SOUGHT_BACK, /* an operator replay: the batch is dropped */
    ATTEMPT_BUSY,        /* first try, every message needs a held row */
    ATTEMPT_FULL_LOAD    /* a dedup-only load did not decide it all */
} attempt_end_t;

/*
 * One attempt at the batch, in three steps: (1) BEGIN, the offset locks
 * and the load of every row the messages can touch, in one round trip
 * (the first try takes only free rows and reports the held ones; a batch
 * expected to be re-read duplicates, lean, loads only their dedup rows);
 * (2) decide each applied message in memory, in order; (3) the set-based
 * writes, the new offsets and COMMIT in one round trip. *end says what
 * became of an attempt that returned OD_OK: everything other than
 * ATTEMPT_COMMITTED was rolled back and the caller tries again as it says.
 */
static od_status_t
process_batch(executor_t *ex, int blocking, int lean, attempt_end_t *end,
              char *err, size_t errlen)
{
    batch_needs_t needs;
    batch_load_t *load = NULL;
    batch_counts_t counts = {0};
    batch_t b;
    od_status_t st;
    int64_t skipped = 0;
    int seek = 0, progress;

    *end = ATTEMPT_COMMITTED;
    for (int i = 0; i < ex->nparts; i++) {
        ex->parts[i].cut = 0;
        ex->parts[i].done = ex->parts[i].first - 1;
    }
    memset(ex->carry, 0, (size_t)ex->n);
    batch_msgs(ex);
    batch_init(&b);
    batch_prepare(&ex->acfg, ex->msgs, ex->n, &needs);
    needs.dedup_only = lean;
    /* one round trip: the load covers every message until the stored
     * offsets tell the redeliveries apart */
    db_queue_tx(ex->db, DB_TX_BEGIN);
    st = lock_offsets(ex, 0, err, errlen);
    if (st == OD_OK)
        st = batch_load_queue(ex->db, &needs, !blocking && !lean, &load, err,
                              errlen);
    if (st == OD_OK)
        st = db_flush(ex->db, err, errlen);
    if (load != NULL) {
        od_status_t lst = batch_load_take(&b, load, err, errlen);

        if (st == OD_OK)
            st = lst;
    }
    batch_needs_free(&needs);
    st = stored_offsets(ex, st, err, errlen);
    if (st != OD_OK)
        goto fail;
    seek = needs_seek_back(ex);
    if (seek) {
        *end = ATTEMPT_SOUGHT_BACK;
        st = db_rollback(ex->db, err, errlen);
        goto out;
    }
    progress = choose(ex, &b, blocking, &skipped);
    if (!progress) {
        *end = ATTEMPT_BUSY; /* every partition's next message is held */
        st = db_rollback(ex->db, err, errlen);
        goto out;
    }
    if (lean && !batch_quiet_duplicates(&b, ex->msgs, ex->n)) {
        *end = ATTEMPT_FULL_LOAD; /* a new command among the re-read */
        st = db_rollback(ex->db, err, errlen);
        goto out;
    }
    st = batch_decide(&b, &ex->acfg, ex->msgs, ex->n, err, errlen);
    if (st == OD_OK)
        st = batch_write_queue(ex->db, &b, err, errlen);
    if (st == OD_OK)
        st = store_offsets(ex, err, errlen);
    if (st == OD_OK)
        st = db_commit(ex->db, err, errlen);
    if (st == OD_FATAL && db_failed_queued(ex->db) && db_ok(ex->db) &&
        !ex->acfg.halt_on_internal_error) {
        /* a write the snapshot did not foresee */
        char why[1024];

        snprintf(why, sizeof(why), "%.*s", (int)sizeof(why) - 1, err);
        rollback_quietly(ex);
        batch_free(&b);
        batch_msgs_free(ex);
        return process_one_by_one(ex, why, err, errlen);
    }
    if (st != OD_OK) {
        /* outcome unknown: the stored offsets settle it. A write that
         * failed left the transaction open (the COMMIT never ran). */
        if (db_failed_queued(ex->db) || st == OD_FATAL)
            goto fail;
        goto out;
    }
    atomic_fetch_add(&metrics.skipped, skipped);
    count_batch(ex, &counts);
    publish_counts(&counts);
    metrics_batch_committed();
    goto out;
fail:
    rollback_quietly(ex);
out:
    batch_free(&b);
    batch_msgs_free(ex);
    return st;
}

/* Releases the applied messages (all of them if all), keeping the carried
 * ones, in order, at the front of the batch; returns how many it released. */
static int
release_batch(executor_t *ex, int all)
{
    int kept = 0, released = 0;

    for (int i = 0; i < ex->n; i++) {
        if (!all && ex->carry[i]) {
            if (kept != i) {
                ex->batch[kept] = ex->batch[i];
            }
            kept++;
            continue;
        }
        consumer_msg_release(&ex->batch[i]);
        released++;
    }
    ex->n = kept;
    return released;
}

static void
commit_to_kafka(executor_t *ex)
{
    consumer_part_t cp[EXECUTOR_MAX_PARTS];
    int n = 0;

    for (int i = 0; i < ex->nparts; i++) {
        if (ex->parts[i].done < ex->parts[i].first)
            continue;
        cp[n].topic = ex->parts[i].topic;
        cp[n].partition = ex->parts[i].partition;
        cp[n].offset = ex->parts[i].done + 1;
        n++;
    }
    if (n > 0)
        consumer_commit_async(ex->consumer, cp, n);
}

/* A partition carried whole this many batches in a row (another executor
 * keeps holding a row its next message needs) is waited for instead. */
#define EXECUTOR_MAX_STALLS 3

static int
stalled(executor_t *ex)
{
    for (int i = 0; i < ex->nparts; i++) {
        assigned_t *a =
            assigned_find(ex, ex->parts[i].topic, ex->parts[i].partition);

        if (a != NULL && a->stalled >= EXECUTOR_MAX_STALLS)
            return 1;
    }
    return 0;
}

static void
note_stalls(executor_t *ex)
{
    for (int i = 0; i < ex->nparts; i++) {
        part_state_t *p = &ex->parts[i];
        assigned_t *a = assigned_find(ex, p->topic, p->partition);

        if (a == NULL)
            continue;
        if (p->done >= p->first)
            a->stalled = 0;
        else
            a->stalled++;
    }
}

/*
 * Applies the pending batch until it commits, the process stops, or an
 * internal error halts it. Messages carried by the first try stay in the
 * batch for the next call; all (a revoke, the last flush) takes the
 * blocking path, which applies every message.
 */
static void
executor_flush(executor_t *ex, int all)
{
    char err[1024];
    int attempt = 0, blocking, lean, carried = 0, done;
    attempt_end_t end = ATTEMPT_COMMITTED;
    int64_t started = od_mono_us();

    if (ex->n == 0)
        return;
    collect_parts(ex);
    blocking = all || stalled(ex);
    lean = rereading(ex);
    for (;;) {
        od_status_t st;

        if (!db_ok(ex->db)) {
            st = db_reconnect(ex->db, err, sizeof(err));
            if (st != OD_OK)
                goto retry;
        }
        metrics_batch_begin(); /* what a failed attempt staged is void */
        st = process_batch(ex, blocking, lean, &end, err, sizeof(err));
        if (st == OD_OK && end == ATTEMPT_BUSY) {
            blocking = 1; /* every partition's next message is held */
            continue;
        }
        if (st == OD_OK && end == ATTEMPT_FULL_LOAD) {
            lean = 0;
            continue;
        }
        if (st == OD_OK)
            break;
        if (st == OD_FATAL && ex->acfg.halt_on_internal_error) {
            log_error("executor %d halting: %s", ex->id, err);
            ex->halted = 1;
            atomic_store(ex->stop, 1);
            release_batch(ex, 1);
            return;
        }
    retry:
        atomic_fetch_add(&metrics.batch_retries, 1);
        if (attempt == 0)
            atomic_fetch_add(&metrics.db_down, 1);
        log_warn("executor %d: batch of %d failed, retrying: %s", ex->id, ex->n,
                 err);
        if (atomic_load(ex->stop)) {
            /* nothing was committed: the next owner re-reads these */
            if (attempt > 0)
                atomic_fetch_sub(&metrics.db_down, 1);
            release_batch(ex, 1);
            return;
        }
        backoff(ex, attempt++);
    }
    if (attempt > 0) {
        atomic_fetch_sub(&metrics.db_down, 1);
        log_info("executor %d: batch applied after %d retries", ex->id,
                 attempt);
    }
    if (end == ATTEMPT_SOUGHT_BACK) {
        release_batch(ex, 1);
        return;
    }
    for (int i = 0; i < ex->n; i++)
        carried += ex->carry[i];
    forget_sought(ex);
    note_stalls(ex);
    commit_to_kafka(ex);
    done = release_batch(ex, 0);
    log_debug("executor %d: batch of %d in %.1f ms (%d carried)", ex->id, done,
              (double)(od_mono_us() - started) / 1000.0, carried);
    atomic_fetch_add(&metrics.batches, 1);
    metrics_observe_batch((double)(od_mono_us() - started) / 1e6);
    atomic_fetch_add(&metrics.carried, carried);
    atomic_fetch_add(&executor_messages_done, done);
    if (ex->outbox != NULL)
        outbox_notify(ex->outbox);
}

/*
 * While idle, notice an operator replay on partitions that get no new
 * messages: a stored offset below the consumer's position is sought to.
 */
static void
idle_check(executor_t *ex)
{
    char err[512];

    ex->last_idle_check = od_mono_us();
    if (!db_ok(ex->db))
        return;
    for (int i = 0; i < ex->nassigned; i++) {
        assigned_t *a = &ex->assigned[i];
        offsets_key_t k = {ex->cfg->group, a->topic, a->partition};
        int64_t pos, stored;

        if (offsets_read(ex->db, &k, &stored, err, sizeof(err)) != OD_OK) {
            log_debug("idle check: %s", err);
            return;
        }
        pos = consumer_position(ex->consumer, a->topic, a->partition);
        if (pos < 0)
            pos = a->start; /* nothing consumed since the assignment */
        if (stored >= 0 && pos >= 0 && stored < pos) {
            part_state_t p = {.topic = a->topic,
                              .partition = a->partition,
                              .first = pos,
                              .stored = stored};

            if (!already_sought(ex, &p)) {
                log_info("stored offset of %s/%d moved back to %lld: "
                         "seeking",
                         a->topic, (int)a->partition, (long long)p.stored);
                if (ex->nsought < EXECUTOR_MAX_PARTS) {
                    sought_t *s = &ex->sought[ex->nsought++];

                    snprintf(s->topic, sizeof(s->topic), "%s", a->topic);
                    s->partition = a->partition;
                    s->offset = p.stored;
                }
                consumer_seek(ex->consumer, a->topic, a->partition, p.stored);
            }
        }
    }
}

static int
on_assign(void *arg, consumer_part_t *parts, int n)
{
    executor_t *ex = arg;
    char err[512];
    int attempt = 0;

    ex->nsought = 0;
    ex->nassigned = 0;
    for (int i = 0; i < n && i < EXECUTOR_MAX_PARTS; i++) {
        snprintf(ex->assigned[i].topic, sizeof(ex->assigned[i].topic), "%s",
                 parts[i].topic);
        ex->assigned[i].partition = parts[i].partition;
        ex->assigned[i].stalled = 0;
        ex->assigned[i].replay_until = 0;
        ex->nassigned++;
    }
    for (int i = 0; i < n; i++) {
        for (;;) {
            offsets_key_t k = {ex->cfg->group, parts[i].topic,
                               parts[i].partition};
            int64_t stored = -1;
            od_status_t st = OD_OK;

            if (!db_ok(ex->db))
                st = db_reconnect(ex->db, err, sizeof(err));
            if (st == OD_OK)
                st = offsets_read(ex->db, &k, &stored, err, sizeof(err));
            if (st == OD_OK) {
                /* -2: from the beginning, for a partition never stored */
                parts[i].offset = stored >= 0 ? stored : -2;
                if (i < EXECUTOR_MAX_PARTS)
                    ex->assigned[i].start = parts[i].offset;
                break;
            }
            log_warn("executor %d: could not read stored offsets: %s", ex->id,
                     err);
            /* as for a failing batch: not ready, and a retry counted */
            atomic_fetch_add(&metrics.batch_retries, 1);
            if (attempt == 0)
                atomic_fetch_add(&metrics.db_down, 1);
            if (atomic_load(ex->stop)) {
                atomic_fetch_sub(&metrics.db_down, 1);
                return -1;
            }
            backoff(ex, attempt++);
        }
        if (attempt > 0) {
            atomic_fetch_sub(&metrics.db_down, 1);
            attempt = 0;
        }
    }
    return 0;
}

static void
on_revoke(void *arg)
{
    executor_t *ex = arg;

    executor_flush(ex, 1);
    ex->nassigned = 0;
}

static void *
executor_main(void *arg)
{
    executor_t *ex = arg;
    int64_t deadline = 0;
    long long max = ex->cfg->max_messages;

    while (!atomic_load(ex->stop)) {
        int timeout = 100;
        /* full of carried messages: no room for another */
        int full = ex->n >= ex->cfg->batch_size;
        consumer_msg_t m;

        atomic_store(&executor_beats[ex->id], od_mono_us());
        if (ex->n > 0) {
            int64_t left = (deadline - od_mono_us()) / 1000;

            timeout = left > 0 ? (int)left : 0;
        }
        if (!full && consumer_poll(ex->consumer, timeout, &m)) {
            if (ex->n == 0)
                deadline = od_mono_us() + ex->cfg->batch_wait_ms * 1000;
            ex->batch[ex->n++] = m;
            if (ex->n < ex->cfg->batch_size && od_mono_us() < deadline)
                continue;
        } else if (!full && ex->n > 0 && od_mono_us() < deadline) {
            continue;
        } else if (ex->n == 0) {
            if (od_mono_us() - ex->last_idle_check > EXECUTOR_IDLE_CHECK_US)
                idle_check(ex);
            continue;
        }
        executor_flush(ex, 0);
        /* carried messages wait for more, and for the other executor */
        if (ex->n > 0)
            deadline = od_mono_us() + ex->cfg->batch_wait_ms * 1000;
        if (max > 0 && atomic_load(&executor_messages_done) >= max)
            atomic_store(ex->stop, 1);
    }
    executor_flush(ex, 1);
    return NULL;
}

executor_t *
executor_new(int id, const od_config_t *cfg, atomic_int *stop, outbox_t *outbox,
             char *err, size_t errlen)
{
    executor_t *ex = calloc(1, sizeof(*ex));
    consumer_hooks_t hooks = {on_assign, on_revoke, NULL};
    char client_id[64];

    if (ex == NULL) {
        od_err(err, errlen, "out of memory");
        return NULL;
    }
    if (id < 0 || id >= EXECUTOR_MAX_IDS) {
        od_err(err, errlen, "executor number %d out of range", id);
        free(ex);
        return NULL;
    }
    atomic_store(&executor_beats[id], od_mono_us());
    ex->id = id;
    ex->cfg = cfg;
    ex->stop = stop;
    ex->outbox = outbox;
    ex->seed = (unsigned int)(od_now_us() ^ (id * 7919));
    apply_config_init(&ex->acfg, cfg);
    ex->batch = calloc((size_t)cfg->batch_size, sizeof(*ex->batch));
    ex->msgs = calloc((size_t)cfg->batch_size, sizeof(*ex->msgs));
    ex->carry = calloc((size_t)cfg->batch_size, 1);
    if (ex->batch == NULL || ex->msgs == NULL || ex->carry == NULL) {
        od_err(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(client_id, sizeof(client_id), "orderd-executor-%d", id);
    ex->db = db_new(cfg->pg, client_id);
    if (ex->db == NULL) {
        od_err(err, errlen, "out of memory");
        goto fail;
    }
    hooks.arg = ex;
    ex->consumer = consumer_new(cfg, client_id, &hooks, err, errlen);
    if (ex->consumer == NULL ||
        consumer_subscribe(ex->consumer, &cfg->sources, err, errlen) < 0)
        goto fail;
    return ex;
fail:
    executor_destroy(ex);
    return NULL;
}

int64_t
executor_last_beat(int id)
{
    return id >= 0 && id < EXECUTOR_MAX_IDS ? atomic_load(&executor_beats[id])
                                            : 0;
}

int
executor_start(executor_t *ex)
{
    return pthread_create(&ex->thread, NULL, executor_main, ex) == 0 ? 0 : -1;
}

int
executor_join(executor_t *ex)
{
    pthread_join(ex->thread, NULL);
    /* leaving the group runs on_revoke, which flushes nothing now */
    consumer_destroy(ex->consumer);
    ex->consumer = NULL;
    return ex->halted;
}

void
executor_destroy(executor_t *ex)
{
    if (ex == NULL)
        return;
    consumer_destroy(ex->consumer);
    db_destroy(ex->db);
    free(ex->batch);
    free(ex->msgs);
    free(ex->carry);
    free(ex);
}
