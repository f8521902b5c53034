/* outbox.c - publishes committed outbox rows with an idempotent producer
 *
 * DESIGN: executors write result events, domain events and dead-letter
 * copies to the outbox table in their batch transaction and, after
 * COMMIT, hand this thread the event ids they wrote. A round claims rows
 * with FOR UPDATE SKIP LOCKED (so several orderd processes share the
 * work), produces them with enable.idempotence and acks=all, waits for the
 * delivery reports, and marks the delivered rows published in the same
 * transaction. A crash between delivery and the mark re-publishes the row
 * later with the same event_id: at least once, never lost.
 *
 * Two kinds of round. A handed-over round claims its rows by event id
 * (unique index look-ups). A sweep claims the oldest unpublished rows
 * through the partial index of unpublished rows; every published row
 * leaves a dead entry there until vacuum, and a sweep walks them, so it
 * runs only when needed: first on start (what an earlier run left),
 * whenever another writer (the scheduler, the command-by-command
 * fallback) says it committed rows, after a failed round (its handed-over
 * ids are dropped), when the hand-over queue overflows, and once a second
 * for rows another process left. Claiming every round by sweep took 40%
 * of a core in Postgres at a paced 3,500 commands/s (bench).
 */
#include "outbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "db.h"
#include "outbox_store.h"
#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "od.h"

#define OUTBOX_ROUND 1000
/* event ids waiting to be claimed; past this the queue is dropped and a
 * sweep finds its rows (a Kafka outage must not grow memory) */
#define OUTBOX_HANDOFF_MAX 100000
#define OUTBOX_SWEEP_EVERY_US (1000 * 1000)

typedef struct event_id {
    char s[37];
} event_id_t;

struct outbox {
    const od_config_t *cfg;
    rd_kafka_t *rk;
    db_t *db;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int wake;
    /* under lock: the hand-over queue and the sweep request */
    event_id_t *handoff;
    int nhandoff, caphandoff;
    int sweep_asked;
    int64_t sweep_at; /* publisher thread only: next timed sweep */
    char claim_ids[OUTBOX_ROUND * 37 + 3]; /* publisher thread only */
    int outstanding; /* produced, delivery report not yet served */
    /* the round in flight: its delivered flags and the rows' creation
     * times (epoch us), for the publish latency */
    const char *round_delivered;
    const int64_t *round_created;
    atomic_int stop;
    int started;
};

/* Delivery report, served on the publisher thread: the message's opaque
 * points at its row's delivered flag, the client's at the outbox. */
static void
dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    char *delivered = rkm->_private;
    outbox_t *ob = opaque;

    (void)rk;
    ob->outstanding--;
    if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        *delivered = 1;
        if (ob->round_created != NULL)
            metrics_observe_publish(
                (double)(od_now_us() -
                         ob->round_created[delivered - ob->round_delivered]) /
                1e6);
    } else {
        atomic_fetch_add(&metrics.publish_errors, 1);
        log_warn("could not publish to %s: %s", rd_kafka_topic_name(rkm->rkt),
                 rd_kafka_err2str(rkm->err));
    }
}

static rd_kafka_t *
producer_new(outbox_t *ob, char *err, size_t errlen)
{
    const od_config_t *cfg = ob->cfg;
    static const char *const defaults[] = {
        "enable.idempotence", "true",  "acks", "all", "linger.ms", "2",
        "message.timeout.ms", "30000", NULL};
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    char errstr[512];

    conf = kafka_conf_new(cfg, "orderd-outbox", defaults, err, errlen);
    if (conf == NULL)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_opaque(conf, ob);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        od_err(err, errlen, "could not create kafka producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/*
 * An idempotent producer that hit a fatal error (fenced, out-of-order
 * sequence) refuses every later message: start a fresh one. Rows not
 * marked published are simply produced again by the next round.
 */
static void
producer_check_fatal(outbox_t *ob)
{
    char errstr[512], err[512];
    rd_kafka_t *fresh;

    if (rd_kafka_fatal_error(ob->rk, errstr, sizeof(errstr)) ==
        RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    log_error("outbox producer failed fatally: %s: starting a new one", errstr);
    fresh = producer_new(ob, err, sizeof(err));
    if (fresh == NULL) {
        log_error("%s", err);
        return;
    }
    rd_kafka_purge(ob->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_destroy(ob->rk);
    ob->rk = fresh;
}

outbox_t *
outbox_new(const od_config_t *cfg, char *err, size_t errlen)
{
    outbox_t *ob = calloc(1, sizeof(*ob));

    if (ob == NULL) {
        od_err(err, errlen, "out of memory");
        return NULL;
    }
    ob->cfg = cfg;
    pthread_mutex_init(&ob->lock, NULL);
    pthread_cond_init(&ob->cond, NULL);
    ob->rk = producer_new(ob, err, errlen);
    if (ob->rk == NULL)
        goto fail;
    ob->db = db_new(cfg->pg, "orderd-publisher");
    if (ob->db == NULL) {
        od_err(err, errlen, "out of memory");
        goto fail;
    }
    return ob;
fail:
    outbox_destroy(ob);
    return NULL;
}

static rd_kafka_headers_t *
make_headers(const char *json)
{
    json_t *h = json_loads(json, 0, NULL);
    rd_kafka_headers_t *hdrs;
    const char *k;
    json_t *v;

    if (!json_is_object(h)) {
        json_decref(h);
        return NULL;
    }
    hdrs = rd_kafka_headers_new(json_object_size(h));
    json_object_foreach(h, k, v)
    {
        char buf[64];
        const char *s = buf;

        if (json_is_string(v))
            s = json_string_value(v);
        else if (json_is_integer(v))
            snprintf(buf, sizeof(buf), "%lld",
                     (long long)json_integer_value(v));
        else
            continue;
        rd_kafka_header_add(hdrs, k, -1, s, -1);
    }
    json_decref(h);
    return hdrs;
}

/*
 * Serves delivery reports until every message of the round has one: the
 * reports write into the round's flags, which must outlive them. Each
 * message gets its report within message.timeout.ms; past a minute more
 * the round's messages are purged, which reports them as not delivered
 * (their rows stay for a later round, at least once).
 */
static void
await_reports(outbox_t *ob)
{
    int64_t purge_at = od_mono_us() + 90 * 1000000LL;
    int purged = 0;

    while (ob->outstanding > 0) {
        rd_kafka_flush(ob->rk, 1000);
        if (!purged && ob->outstanding > 0 && od_mono_us() > purge_at) {
            log_warn("outbox: %d deliveries unanswered for 90 s: purging them",
                     ob->outstanding);
            rd_kafka_purge(ob->rk,
                           RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            purged = 1;
        }
    }
}

/* One round: of the event ids in `handed` (a Postgres array literal) or, if
 * NULL, a sweep. *count receives the rows published; OD_OK when the round
 * went through (even if some deliveries failed and stay for later). */
static od_status_t
publish_round(outbox_t *ob, const char *handed, int *count, char *err,
              size_t errlen)
{
    db_rows_t *rows = NULL;
    od_status_t st;
    int n;
    char *delivered = NULL;
    int64_t *created = NULL;
    char *ids = NULL;
    size_t idlen = 0;

    *count = 0;
    /* two round trips a round: BEGIN and the lazy commit with the claim,
     * the mark with the COMMIT */
    db_queue_tx(ob->db, DB_TX_BEGIN);
    st = outbox_queue_lazy_commit(ob->db, err, errlen);
    if (st != OD_OK)
        goto fail;
    st = handed != NULL ? outbox_claim_ids(ob->db, handed, &rows, err, errlen)
                        : outbox_claim(ob->db, &rows, err, errlen);
    if (st != OD_OK)
        goto fail;
    n = db_nrows(rows);
    if (n == 0) {
        db_rows_free(rows);
        return db_commit(ob->db, err, errlen);
    }
    delivered = calloc((size_t)n, 1);
    created = malloc((size_t)n * sizeof(*created));
    ids = malloc((size_t)n * 24 + 3);
    if (delivered == NULL || created == NULL || ids == NULL) {
        od_err(err, errlen, "out of memory");
        st = OD_RETRY;
        goto fail;
    }
    for (int i = 0; i < n; i++)
        created[i] = db_int64(rows, i, 5);
    ob->round_delivered = delivered;
    ob->round_created = created;
    for (int i = 0; i < n; i++) {
        size_t klen = 0, plen = 0;
        unsigned char *key =
            db_isnull(rows, i, 2) ? NULL : db_bytea(rows, i, 2, &klen);
        unsigned char *payload = db_bytea(rows, i, 3, &plen);
        rd_kafka_headers_t *hdrs =
            db_isnull(rows, i, 4) ? NULL : make_headers(db_val(rows, i, 4));
        rd_kafka_resp_err_t e;

        for (;;) {
            e = rd_kafka_producev(ob->rk, RD_KAFKA_V_TOPIC(db_val(rows, i, 1)),
                                  RD_KAFKA_V_KEY(key, klen),
                                  RD_KAFKA_V_VALUE(payload, plen),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_OPAQUE(&delivered[i]),
                                  RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(ob->rk, 50);
        }
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            ob->outstanding++;
        else {
            log_warn("could not produce outbox row %s: %s", db_val(rows, i, 0),
                     rd_kafka_err2str(e));
            if (hdrs != NULL)
                rd_kafka_headers_destroy(hdrs);
        }
        free(key);
        free(payload);
    }
    await_reports(ob);
    ob->round_delivered = NULL;
    ob->round_created = NULL;
    ids[idlen++] = '{';
    for (int i = 0; i < n; i++) {
        if (!delivered[i])
            continue;
        idlen += (size_t)sprintf(ids + idlen, "%s%s", *count ? "," : "",
                                 db_val(rows, i, 0));
        (*count)++;
    }
    ids[idlen++] = '}';
    ids[idlen] = '\0';
    if (*count > 0) {
        st = outbox_queue_mark(ob->db, ids, err, errlen);
        if (st != OD_OK)
            goto fail;
    }
    st = db_commit(ob->db, err, errlen);
    if (st != OD_OK && db_failed_queued(ob->db))
        goto fail; /* the mark failed: nothing is marked, all is produced
                      again by a later round */
    if (st == OD_OK)
        atomic_fetch_add(&metrics.published, *count);
    db_rows_free(rows);
    free(delivered);
    free(created);
    free(ids);
    return st;
fail:
    if (db_ok(ob->db)) {
        char ignore[128];

        if (db_rollback(ob->db, ignore, sizeof(ignore)) != OD_OK)
            log_warn("outbox rollback failed: %s", ignore);
    }
    ob->round_delivered = NULL;
    ob->round_created = NULL;
    db_rows_free(rows);
    free(delivered);
    free(created);
    free(ids);
    *count = 0;
    return st;
}

/* Takes up to OUTBOX_ROUND handed-over ids as an array literal into buf
 * (room for OUTBOX_ROUND ids); 0 when the queue is empty. */
static int
handoff_take(outbox_t *ob, char *buf)
{
    int n, len = 0;

    pthread_mutex_lock(&ob->lock);
    n = ob->nhandoff < OUTBOX_ROUND ? ob->nhandoff : OUTBOX_ROUND;
    buf[len++] = '{';
    for (int i = 0; i < n; i++)
        len += sprintf(buf + len, "%s%s", i ? "," : "", ob->handoff[i].s);
    buf[len++] = '}';
    buf[len] = '\0';
    if (n > 0) {
        ob->nhandoff -= n;
        memmove(ob->handoff, ob->handoff + n,
                (size_t)ob->nhandoff * sizeof(*ob->handoff));
    }
    pthread_mutex_unlock(&ob->lock);
    return n;
}

/* A sweep is due: asked for, or the timed one. Clears the request (one
 * made during the sweep asks for another). */
static int
sweep_due(outbox_t *ob)
{
    int due;

    pthread_mutex_lock(&ob->lock);
    due = ob->sweep_asked || od_mono_us() >= ob->sweep_at;
    ob->sweep_asked = 0;
    pthread_mutex_unlock(&ob->lock);
    if (due)
        ob->sweep_at = od_mono_us() + OUTBOX_SWEEP_EVERY_US;
    return due;
}

static void
sweep_ask(outbox_t *ob)
{
    pthread_mutex_lock(&ob->lock);
    ob->sweep_asked = 1;
    pthread_mutex_unlock(&ob->lock);
}

/* Publishes until nothing is left or a round fails. A sweep goes first
 * whenever one is due (it publishes in id order what it finds, the
 * handed-over rows among them), checked again between handed-over rounds:
 * executors that keep handing over must not hold off the timed sweep nor
 * one the scheduler asked for. */
static od_status_t
publish_all(outbox_t *ob, char *err, size_t errlen)
{
    char *ids = ob->claim_ids;
    int count;
    od_status_t st = OD_OK;

    if (!db_ok(ob->db)) {
        st = db_reconnect(ob->db, err, errlen);
        if (st != OD_OK) {
            sweep_ask(ob);
            return st;
        }
    }
    for (;;) {
        if (sweep_due(ob)) {
            do {
                st = publish_round(ob, NULL, &count, err, errlen);
                producer_check_fatal(ob);
            } while (st == OD_OK && count == OUTBOX_ROUND);
            if (st != OD_OK) {
                sweep_ask(ob);
                return st;
            }
        }
        if (handoff_take(ob, ids) == 0)
            return OD_OK;
        st = publish_round(ob, ids, &count, err, errlen);
        producer_check_fatal(ob);
        if (st != OD_OK) {
            sweep_ask(ob); /* those ids are gone from the queue */
            return st;
        }
    }
}

static void *
outbox_main(void *arg)
{
    outbox_t *ob = arg;
    char err[512];
    int failing = 0;
    unsigned int seed = (unsigned int)od_mono_us();

    while (!atomic_load(&ob->stop)) {
        struct timespec ts;
        int64_t wait_ms = 200;

        if (publish_all(ob, err, sizeof(err)) != OD_OK) {
            if (!failing)
                log_warn("outbox publisher: %s (retrying)", err);
            failing++;
        } else if (failing) {
            log_info("outbox publisher recovered");
            failing = 0;
        }
        if (failing) {
            /* 250 ms doubling to 5 s, half of it jittered: many workers
             * that lost the same server do not come back in step, and
             * the executors' wake-ups do not cut the wait short */
            int64_t cap = 250LL << (failing < 6 ? failing - 1 : 5);

            cap = cap > 5000 ? 5000 : cap;
            wait_ms = cap / 2 + (int64_t)(rand_r(&seed) % (cap / 2 + 1));
        }
        pthread_mutex_lock(&ob->lock);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while ((failing || !ob->wake) && !atomic_load(&ob->stop))
            if (pthread_cond_timedwait(&ob->cond, &ob->lock, &ts) != 0)
                break;
        ob->wake = 0;
        pthread_mutex_unlock(&ob->lock);
    }
    /* last round for what the executors committed before stopping */
    if (publish_all(ob, err, sizeof(err)) != OD_OK)
        log_warn("outbox publisher at shutdown: %s (rows stay for the next "
                 "start)",
                 err);
    return NULL;
}

int
outbox_start(outbox_t *ob)
{
    if (pthread_create(&ob->thread, NULL, outbox_main, ob) != 0)
        return -1;
    ob->started = 1;
    return 0;
}

void
outbox_handoff(outbox_t *ob, const snap_vec_t *events)
{
    if (events->n == 0)
        return;
    pthread_mutex_lock(&ob->lock);
    if (ob->nhandoff + events->n > ob->caphandoff) {
        int cap = ob->caphandoff ? ob->caphandoff * 2 : 4096;
        event_id_t *grown;

        while (cap < ob->nhandoff + events->n)
            cap *= 2;
        grown = ob->nhandoff + events->n <= OUTBOX_HANDOFF_MAX
                    ? realloc(ob->handoff, (size_t)cap * sizeof(*grown))
                    : NULL;
        if (grown == NULL) {
            /* too many waiting (Kafka down?) or no memory: a sweep
             * finds every one of them */
            ob->nhandoff = 0;
            ob->sweep_asked = 1;
            goto wake;
        }
        ob->handoff = grown;
        ob->caphandoff = cap;
    }
    for (int i = 0; i < events->n; i++) {
        const outbox_row_t *e = events->v[i];

        memcpy(ob->handoff[ob->nhandoff++].s, e->event_id, sizeof(e->event_id));
    }
wake:
    ob->wake = 1;
    pthread_cond_signal(&ob->cond);
    pthread_mutex_unlock(&ob->lock);
}

void
outbox_notify(outbox_t *ob)
{
    pthread_mutex_lock(&ob->lock);
    ob->sweep_asked = 1;
    ob->wake = 1;
    pthread_cond_signal(&ob->cond);
    pthread_mutex_unlock(&ob->lock);
}

void
outbox_stop(outbox_t *ob)
{
    if (!ob->started)
        return;
    atomic_store(&ob->stop, 1);
    outbox_notify(ob);
    pthread_join(ob->thread, NULL);
    ob->started = 0;
    rd_kafka_flush(ob->rk, 10000);
}

void
outbox_destroy(outbox_t *ob)
{
    if (ob == NULL)
        return;
    outbox_stop(ob);
    if (ob->rk != NULL)
        rd_kafka_destroy(ob->rk);
    db_destroy(ob->db);
    pthread_cond_destroy(&ob->cond);
    pthread_mutex_destroy(&ob->lock);
    free(ob->handoff);
    free(ob);
}
