/* executor.c - one executor thread: its consumer, batches and retries
 *
 * DESIGN: a batch is up to --batch-size messages or --batch-wait-ms after
 * its first message. It is applied in one transaction by attempt.c: the
 * consumer_offsets row of every partition in the batch is locked (in
 * ascending order) and read; messages below the stored offset were applied
 * before (a redelivery, or a zombie consumer after a rebalance) and are
 * skipped without a second result; the others are decided and written;
 * the new offsets are written; COMMIT. Here: a transient fault rolls
 * everything back and the same messages are retried after a jittered
 * back-off, so nothing advances and nothing doubles. If a stored offset is
 * below the batch's first message (an operator replay moved it back), the
 * batch is dropped and the partitions are sought back before anything is
 * applied. The assignment callbacks read where each partition starts.
 */
#include "executor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "executor_int.h"
#include "log.h"
#include "metrics.h"
#include "offsets.h"

atomic_llong executor_messages_done;
/* when each executor last turned its loop (od_mono_us), for the watchdog */
static atomic_llong executor_beats[EXECUTOR_MAX_IDS];

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
record_committed(executor_t *ex)
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
        consumer_record_committed(ex->consumer, cp, n);
}

/* A partition carried whole this many batches in a row (another executor
 * keeps holding a row its next message needs) is waited for instead. */
#define EXECUTOR_MAX_STALLS 3

/* How long batches wait for held rows after one carried a quarter of its
 * messages or more. */
#define EXECUTOR_CONTENDED_US (1000 * 1000)

static int
stalled(executor_t *ex)
{
    for (int i = 0; i < ex->nparts; i++) {
        assigned_t *a = attempt_assigned_find(ex, ex->parts[i].topic,
                                              ex->parts[i].partition);

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
        assigned_t *a = attempt_assigned_find(ex, p->topic, p->partition);

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
    memset(&ex->times, 0, sizeof(ex->times));
    attempt_collect_parts(ex);
    blocking = all || stalled(ex) || od_mono_us() < ex->contended_until;
    lean = attempt_rereading(ex);
    for (;;) {
        od_status_t st;

        if (!db_ok(ex->db)) {
            st = db_reconnect(ex->db, err, sizeof(err));
            if (st != OD_OK)
                goto retry;
        }
        metrics_batch_begin(); /* what a failed attempt staged is void */
        st = attempt_run(ex, blocking, lean, &end, err, sizeof(err));
        if (st == OD_OK && end == ATTEMPT_BUSY) {
            blocking = 1; /* every partition's next message is held */
            continue;
        }
        if (st == OD_OK && end == ATTEMPT_FULL_LOAD) {
            log_debug("executor %d: a re-read batch of %d holds commands not "
                      "decided before: loading it in full",
                      ex->id, ex->n);
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
    /* a quarter of the batch or more carried: the other executors'
     * batches cross this one's rows (large batches, a backlog building).
     * Carrying would parse and load most messages again for every few it
     * applies, and the backlog grows; for a while the batches wait for
     * held rows instead, in the global lock order, and apply them all
     * (the bench's paced runs went into that spiral; waiting drained the
     * same stream about 12% faster). */
    if (!blocking && 4 * carried >= ex->n)
        ex->contended_until = od_mono_us() + EXECUTOR_CONTENDED_US;
    attempt_forget_sought(ex);
    note_stalls(ex);
    record_committed(ex);
    done = release_batch(ex, 0);
    log_debug("executor %d: batch of %d in %.1f ms (%d carried%s; %d "
              "attempt(s): parse %.1f, load %.1f, decide %.1f, write and "
              "commit %.1f ms)",
              ex->id, done, (double)(od_mono_us() - started) / 1000.0, carried,
              lean ? ", re-read duplicates" : "", ex->times.attempts,
              (double)ex->times.parse_us / 1000.0,
              (double)ex->times.load_us / 1000.0,
              (double)ex->times.decide_us / 1000.0,
              (double)ex->times.write_us / 1000.0);
    atomic_fetch_add(&metrics.batches, 1);
    metrics_observe_batch((double)(od_mono_us() - started) / 1e6);
    atomic_fetch_add(&metrics.carried, carried);
    atomic_fetch_add(&executor_messages_done, done);
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
        int64_t pos, stored, until;

        if (offsets_read(ex->db, &k, &stored, &until, err, sizeof(err)) !=
            OD_OK) {
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

            if (!attempt_already_sought(ex, &p)) {
                log_info("stored offset of %s/%d moved back to %lld: "
                         "seeking",
                         a->topic, (int)a->partition, (long long)p.stored);
                /* the re-read's first batch can then take the dedup-only
                 * load, as a batch's offset locks would have told it */
                a->replay_until = until;
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
            int64_t stored = -1, until = 0;
            od_status_t st = OD_OK;

            if (!db_ok(ex->db))
                st = db_reconnect(ex->db, err, sizeof(err));
            if (st == OD_OK)
                st =
                    offsets_read(ex->db, &k, &stored, &until, err, sizeof(err));
            if (st == OD_OK) {
                /* -2: from the beginning, for a partition never stored */
                parts[i].offset = stored >= 0 ? stored : -2;
                if (i < EXECUTOR_MAX_PARTS) {
                    ex->assigned[i].start = parts[i].offset;
                    /* a replay under way: its re-read goes on lean */
                    ex->assigned[i].replay_until = until;
                }
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
    /* leave the group from this thread: every executor leaves at once,
     * each serving its own revoke, instead of one after the other while
     * the consumers not yet closed sit in a rebalance nobody serves */
    consumer_destroy(ex->consumer);
    ex->consumer = NULL;
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
