/* attempt.c - one attempt at an executor's batch, in one transaction
 *
 * DESIGN: the offset rows of the batch's partitions are locked first, in
 * ascending order, with the load in the same round trip; messages below
 * a stored offset were applied before and are skipped; in the first try
 * a partition's messages from the first one that needs a row another
 * executor holds are carried to the next batch; the rest are decided in
 * memory and written set-based with the new offsets and COMMIT. A write
 * the snapshot could not foresee sends the batch through the per-command
 * fallback. The retry loop around an attempt is executor.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor_int.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"

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

void
attempt_collect_parts(executor_t *ex)
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

assigned_t *
attempt_assigned_find(executor_t *ex, const char *topic, int32_t partition)
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
            assigned_t *a = attempt_assigned_find(ex, p->topic, p->partition);

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
int
attempt_rereading(executor_t *ex)
{
    for (int i = 0; i < ex->n; i++) {
        assigned_t *a = attempt_assigned_find(ex, ex->batch[i].topic,
                                              ex->batch[i].partition);

        if (a == NULL || ex->batch[i].offset >= a->replay_until)
            return 0;
    }
    return ex->n > 0;
}

int
attempt_already_sought(executor_t *ex, const part_state_t *p)
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

        if (p->stored < p->first && !attempt_already_sought(ex, p)) {
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
void
attempt_forget_sought(executor_t *ex)
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
        if (ex->outbox != NULL)
            outbox_notify(ex->outbox); /* events written one by one */
    }
    batch_msgs_free(ex);
    return st;
fail:
    rollback_quietly(ex);
    batch_msgs_free(ex);
    return st;
}

/* Microseconds since *t, which becomes now: one step of the debug
 * line's time split. */
static int64_t
lap(int64_t *t)
{
    int64_t now = od_mono_us(), d = now - *t;

    *t = now;
    return d;
}

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
od_status_t
attempt_run(executor_t *ex, int blocking, int lean, attempt_end_t *end,
            char *err, size_t errlen)
{
    batch_needs_t needs;
    batch_load_t *load = NULL;
    batch_counts_t counts = {0};
    batch_t b;
    od_status_t st;
    int64_t skipped = 0, t = od_mono_us();
    int seek = 0, progress;

    *end = ATTEMPT_COMMITTED;
    ex->times.attempts++;
    for (int i = 0; i < ex->nparts; i++) {
        ex->parts[i].cut = 0;
        ex->parts[i].done = ex->parts[i].first - 1;
    }
    memset(ex->carry, 0, (size_t)ex->n);
    batch_msgs(ex);
    batch_init(&b);
    batch_prepare(&ex->acfg, ex->msgs, ex->n, lean, &needs);
    ex->times.parse_us += lap(&t);
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
    ex->times.load_us += lap(&t);
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
    ex->times.decide_us += lap(&t);
    if (st == OD_OK)
        st = batch_write_queue(ex->db, &b, err, errlen);
    if (st == OD_OK)
        st = store_offsets(ex, err, errlen);
    if (st == OD_OK)
        st = db_commit(ex->db, err, errlen);
    ex->times.write_us += lap(&t);
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
    if (ex->outbox != NULL)
        outbox_handoff(ex->outbox, &b.events);
    goto out;
fail:
    rollback_quietly(ex);
out:
    batch_free(&b);
    batch_msgs_free(ex);
    return st;
}
