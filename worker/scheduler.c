/* scheduler.c - expires abandoned pending orders, purges old rows
 *
 * DESIGN: every orderd process runs this thread, but only the one holding
 * the session advisory lock SCHEDULER_LOCK_KEY works (if its connection
 * dies, Postgres releases the lock and another process takes over). Due
 * orders are claimed with FOR UPDATE SKIP LOCKED, judged on Postgres time,
 * and each one is expired through the same path as an `expire` command,
 * under the deterministic dedup key "orderd-expire:<order id>" with the
 * deadline itself as event time: two schedulers, a restart, or an admin's
 * expire can never apply it twice, and a pay that holds the order row lock
 * first wins cleanly (the order is then no longer pending).
 * The same leader refuses parked commands whose order never came
 * (--defer-timeout) and purges dedup rows and published outbox rows past
 * their retention, in small batches.
 * A tick never spins: it walks the due orders in (expires_at, id) order
 * with a cursor, so an order whose expiry does not apply is passed over
 * (logged and counted) and the tick goes on to the others, then to the
 * parked commands and the purges. An order whose expiry was decided and
 * did not apply is not tried again on later ticks either (its dedup row
 * says so): another try could only be a duplicate, and would write
 * another result event every tick.
 */
#include "scheduler.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "db.h"
#include "dedup.h"
#include "log.h"
#include "metrics.h"
#include "outbox_store.h"

#define SCHEDULER_LOCK_KEY "4242002"
#define SCHEDULER_BATCH 100

struct scheduler {
    const od_config_t *cfg;
    apply_config_t acfg;
    outbox_t *outbox;
    db_t *db;
    pthread_t thread;
    atomic_int stop;
    int started;
    int leader;
};

static const db_stmt_t stmt_leader = {
    "sched_leader", "SELECT pg_try_advisory_lock(" SCHEDULER_LOCK_KEY ")"};

/* $1, $2: the cursor, the last (expires_at, id) this tick looked at */
static const db_stmt_t stmt_due = {
    "sched_due",
    "SELECT id, to_char(expires_at AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    " FROM orders o WHERE status = 'pending' AND expires_at <= now()"
    " AND expires_at >= $1::timestamptz"
    " AND (expires_at, id) > ($1::timestamptz, $2::uuid)"
    " AND NOT EXISTS (SELECT 1 FROM processed_commands p"
    "  WHERE p.source = 'orderd' AND p.dedup_key = 'orderd-expire:' || o.id)"
    " ORDER BY expires_at, id LIMIT 100 FOR UPDATE SKIP LOCKED"};

static void
rollback_quietly(db_t *db)
{
    char ignore[128];

    if (db_ok(db) && db_rollback(db, ignore, sizeof(ignore)) != OD_OK)
        log_warn("scheduler rollback: %s", ignore);
}

/* Where a tick's walk over the due orders has got to. */
typedef struct due_cursor {
    char at[40]; /* expires_at, RFC 3339 with microseconds */
    char id[37];
} due_cursor_t;

/* One batch of due orders after the cursor, which moves past them; *n
 * receives how many were due. */
static od_status_t
expire_batch(scheduler_t *s, due_cursor_t *cur, int *n, char *err,
             size_t errlen)
{
    const char *params[2] = {cur->at, cur->id};
    db_rows_t *rows = NULL;
    od_status_t st;

    *n = 0;
    st = db_begin(s->db, err, errlen);
    if (st != OD_OK)
        return st;
    st = db_run(s->db, &stmt_due, 2, params, &rows, err, errlen);
    if (st != OD_OK)
        goto fail;
    *n = db_nrows(rows);
    for (int i = 0; i < *n; i++) {
        char cmd[512];
        apply_source_t src = {sources_orderd(),
                              sources_orderd()->topic,
                              -1,
                              -1,
                              0,
                              NULL,
                              0,
                              NULL};
        apply_report_t rep;
        int len;

        len = snprintf(
            cmd, sizeof(cmd),
            "{\"dedup_key\":\"orderd-expire:%s\",\"type\":\"expire\","
            "\"actor\":{\"role\":\"system\",\"id\":\"scheduler\"},"
            "\"issued_at\":\"%s\",\"order_id\":\"%s\"}",
            db_val(rows, i, 0), db_val(rows, i, 1), db_val(rows, i, 0));
        src.key = db_val(rows, i, 0);
        src.key_len = strlen(src.key);
        st = apply_message(s->db, &s->acfg, cmd, (size_t)len, &src, &rep, err,
                           errlen);
        if (st != OD_OK)
            goto fail;
        if (rep.outcome == OUTCOME_APPLIED) {
            atomic_fetch_add(&metrics.expired, 1);
        } else {
            atomic_fetch_add(&metrics.expiry_failures, 1);
            log_warn("scheduler could not expire order %s: %s %s (passed "
                     "over; an admin expire or cancel can end it)",
                     db_val(rows, i, 0), cmd_outcome_name(rep.outcome),
                     rep.reason ? rep.reason : "");
        }
    }
    if (*n > 0) {
        snprintf(cur->id, sizeof(cur->id), "%s", db_val(rows, *n - 1, 0));
        snprintf(cur->at, sizeof(cur->at), "%s", db_val(rows, *n - 1, 1));
    }
    db_rows_free(rows);
    st = db_commit(s->db, err, errlen);
    if (st == OD_OK && *n > 0) {
        log_info("expired %d pending order(s)", *n);
        if (s->outbox != NULL)
            outbox_notify(s->outbox);
    }
    return st;
fail:
    db_rows_free(rows);
    rollback_quietly(s->db);
    return st;
}

/* Refuses commands parked longer than --defer-timeout, in batches. */
static od_status_t
expire_parked(scheduler_t *s, char *err, size_t errlen)
{
    od_status_t st;
    int n;

    do {
        st = db_begin(s->db, err, errlen);
        if (st != OD_OK)
            return st;
        st = apply_expire_deferred(s->db, &s->acfg, &n, err, errlen);
        if (st != OD_OK) {
            rollback_quietly(s->db);
            return st;
        }
        st = db_commit(s->db, err, errlen);
        if (st == OD_OK && n > 0) {
            log_info("refused %d parked command(s) after --defer-timeout", n);
            if (s->outbox != NULL)
                outbox_notify(s->outbox);
        }
    } while (st == OD_OK && n == 100 && !atomic_load(&s->stop));
    return st;
}

static od_status_t
scheduler_tick(scheduler_t *s, char *err, size_t errlen)
{
    due_cursor_t cur = {"-infinity", "00000000-0000-0000-0000-000000000000"};
    od_status_t st;
    int n;

    if (!db_ok(s->db)) {
        s->leader = 0;
        st = db_reconnect(s->db, err, errlen);
        if (st != OD_OK)
            return st;
    }
    if (!s->leader) {
        db_rows_t *rows = NULL;

        st = db_run(s->db, &stmt_leader, 0, NULL, &rows, err, errlen);
        if (st != OD_OK)
            return st;
        s->leader = db_bool(rows, 0, 0);
        db_rows_free(rows);
        if (s->leader)
            log_info("this process now runs the expiry scheduler");
        else
            return OD_OK;
    }
    do {
        st = expire_batch(s, &cur, &n, err, errlen);
    } while (st == OD_OK && n == SCHEDULER_BATCH && !atomic_load(&s->stop));
    if (st != OD_OK)
        return st;
    st = expire_parked(s, err, errlen);
    if (st != OD_OK)
        return st;
    st = dedup_purge(s->db, s->cfg->dedup_retention_ms, err, errlen);
    if (st == OD_OK)
        st = outbox_purge(s->db, s->cfg->outbox_retention_ms, err, errlen);
    return st;
}

static void *
scheduler_main(void *arg)
{
    scheduler_t *s = arg;
    char err[512];

    while (!atomic_load(&s->stop)) {
        int64_t end;

        if (scheduler_tick(s, err, sizeof(err)) != OD_OK)
            log_warn("scheduler: %s (retrying)", err);
        else if (s->leader)
            atomic_store(&metrics.scheduler_last_tick_us, od_now_us());
        atomic_store(&metrics.scheduler_leader, s->leader);
        end = od_mono_us() + s->cfg->expiry_interval_ms * 1000;
        while (od_mono_us() < end && !atomic_load(&s->stop)) {
            struct timespec ts = {0, 20 * 1000 * 1000};

            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

scheduler_t *
scheduler_new(const od_config_t *cfg, outbox_t *outbox, char *err,
              size_t errlen)
{
    scheduler_t *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        od_err(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->outbox = outbox;
    apply_config_init(&s->acfg, cfg);
    s->db = db_new(cfg->pg, "orderd-scheduler");
    if (s->db == NULL) {
        od_err(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    return s;
}

int
scheduler_start(scheduler_t *s)
{
    if (pthread_create(&s->thread, NULL, scheduler_main, s) != 0)
        return -1;
    s->started = 1;
    return 0;
}

void
scheduler_stop(scheduler_t *s)
{
    if (s == NULL || !s->started)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    s->started = 0;
}

void
scheduler_destroy(scheduler_t *s)
{
    if (s == NULL)
        return;
    scheduler_stop(s);
    db_destroy(s->db); /* closing the session releases the leader lock */
    free(s);
}
