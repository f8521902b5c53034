/* health.c - readiness facts: a Postgres pinger on its own connection,
 * the executors' group membership, outbox sampling, not-ready warnings
 *
 * DESIGN: /readyz must say whether this process can do its work now, not
 * whether it once could. Two facts decide it besides the process's own
 * phase. Postgres: an executor that is idle sends nothing, so a small
 * thread holds one connection and runs SELECT 1 every second; readiness
 * needs an answer within HEALTH_PG_FRESH_S, so a server that is down or
 * hangs turns the worker unready within seconds whether or not commands
 * flow. Kafka: every executor's consumer must have joined the group and
 * received its assignment (possibly empty: more members than partitions,
 * the process then stands by, and /readyz says so). The rebalance
 * callbacks report that here, which is also where rebalances are counted:
 * once when the last of this process's members has its new assignment
 * (the process's assignment changed), not once per executor and callback. The
 * same thread samples the outbox backlog (two indexed reads) and warns while
 * the process is not ready, so an unreachable server never means silence.
 */
#include "health.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "metrics.h"

#define HEALTH_MAX_MEMBERS 128
#define HEALTH_PING_US (1000 * 1000)
#define HEALTH_SAMPLE_US (5 * 1000 * 1000)
/* not ready this long before the first warning (a start or a rebalance
 * takes a few seconds), then a warning every HEALTH_WARN_EVERY_US */
#define HEALTH_WARN_AFTER_US (10 * 1000 * 1000LL)
#define HEALTH_WARN_EVERY_US (30 * 1000 * 1000LL)

enum { MEMBER_FREE, MEMBER_JOINING, MEMBER_ASSIGNED, MEMBER_REBALANCING };

static struct {
    atomic_int state;
    atomic_int partitions;
    char name[64];
} members[HEALTH_MAX_MEMBERS];
static atomic_int unsettled; /* members not in MEMBER_ASSIGNED */
static pthread_mutex_t members_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *_Atomic phase = "starting";
static const char *_Atomic group = "";

/* the last Postgres failure the pinger saw */
static pthread_mutex_t pg_lock = PTHREAD_MUTEX_INITIALIZER;
static char pg_error[256];

struct health {
    const od_config_t *cfg;
    db_t *db;
    pthread_t thread;
    atomic_int stop;
};

static const db_stmt_t stmt_ping = {"health_ping", "SELECT 1"};

/* the oldest unpublished row is the first in the partial index on id */
static const db_stmt_t stmt_backlog = {
    "health_outbox_backlog",
    "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL),"
    " COALESCE((SELECT (EXTRACT(epoch FROM now() - created_at) * 1000)"
    "  ::bigint FROM outbox WHERE published_at IS NULL ORDER BY id"
    "  LIMIT 1), 0)"};

void
health_set_phase(const char *p)
{
    atomic_store(&phase, p);
}

int
health_member_add(const char *name)
{
    int slot = -1;

    pthread_mutex_lock(&members_lock);
    for (int i = 0; i < HEALTH_MAX_MEMBERS; i++) {
        if (atomic_load(&members[i].state) == MEMBER_FREE) {
            snprintf(members[i].name, sizeof(members[i].name), "%s", name);
            atomic_store(&members[i].partitions, 0);
            atomic_store(&members[i].state, MEMBER_JOINING);
            atomic_fetch_add(&unsettled, 1);
            slot = i;
            break;
        }
    }
    pthread_mutex_unlock(&members_lock);
    return slot;
}

void
health_member_assigned(int slot, int n)
{
    if (slot < 0)
        return;
    atomic_store(&members[slot].partitions, n);
    /* an assignment with no revoke before it (a member that held
     * nothing): the rebalance is counted by the members that lost
     * partitions, if any; if none did, nothing changed here */
    if (atomic_load(&members[slot].state) == MEMBER_ASSIGNED)
        return;
    atomic_store(&members[slot].state, MEMBER_ASSIGNED);
    /* the last member to get its assignment completes the rebalance */
    if (atomic_fetch_sub(&unsettled, 1) == 1)
        atomic_fetch_add(&metrics.rebalances, 1);
}

void
health_member_revoked(int slot)
{
    if (slot < 0 || atomic_load(&members[slot].state) != MEMBER_ASSIGNED)
        return;
    atomic_store(&members[slot].partitions, 0);
    atomic_store(&members[slot].state, MEMBER_REBALANCING);
    atomic_fetch_add(&unsettled, 1);
}

void
health_member_remove(int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&members_lock);
    if (atomic_load(&members[slot].state) != MEMBER_ASSIGNED)
        atomic_fetch_sub(&unsettled, 1);
    atomic_store(&members[slot].state, MEMBER_FREE);
    pthread_mutex_unlock(&members_lock);
}

/* Appends one line to buf (len bytes, *n used). */
static void line(char *buf, size_t len, size_t *n, const char *fmt, ...)
    OD_PRINTF(4, 5);

static void
line(char *buf, size_t len, size_t *n, const char *fmt, ...)
{
    va_list ap;
    int w;

    if (*n + 1 >= len)
        return;
    va_start(ap, fmt);
    w = vsnprintf(buf + *n, len - *n, fmt, ap);
    va_end(ap);
    if (w < 0)
        return;
    *n += (size_t)w < len - *n ? (size_t)w : len - *n - 1;
    if (*n + 1 < len) {
        buf[(*n)++] = '\n';
        buf[*n] = '\0';
    }
}

int
health_report(char *buf, size_t len)
{
    char reasons[2048];
    size_t n = 0;
    int64_t answered = atomic_load(&metrics.pg_last_answer_us);
    int64_t now = od_mono_us();
    int down = atomic_load(&metrics.db_down), nmembers = 0, parts = 0;
    const char *ph = atomic_load(&phase);

    reasons[0] = '\0';
    if (strcmp(ph, "running") != 0)
        line(reasons, sizeof(reasons), &n, "orderd is %s", ph);
    if (answered == 0 || now - answered > HEALTH_PG_FRESH_S * 1000000LL) {
        char e[sizeof(pg_error)];

        pthread_mutex_lock(&pg_lock);
        snprintf(e, sizeof(e), "%s", pg_error[0] ? pg_error : "no answer");
        pthread_mutex_unlock(&pg_lock);
        if (answered == 0)
            line(reasons, sizeof(reasons), &n,
                 "postgres has not answered yet: %s", e);
        else
            line(reasons, sizeof(reasons), &n,
                 "postgres has not answered for %lld s: %s",
                 (long long)((now - answered) / 1000000), e);
    }
    if (down > 0)
        line(reasons, sizeof(reasons), &n,
             "%d executor(s) backing off from a database fault", down);
    for (int i = 0; i < HEALTH_MAX_MEMBERS; i++) {
        int st = atomic_load(&members[i].state);

        if (st == MEMBER_FREE)
            continue;
        nmembers++;
        parts += atomic_load(&members[i].partitions);
        if (st == MEMBER_JOINING)
            line(reasons, sizeof(reasons), &n,
                 "%s has not joined consumer group %s yet (broker "
                 "unreachable, or the group is forming)",
                 members[i].name, atomic_load(&group));
        else if (st == MEMBER_REBALANCING)
            line(reasons, sizeof(reasons), &n,
                 "%s is waiting for its assignment: group %s is "
                 "rebalancing",
                 members[i].name, atomic_load(&group));
    }
    if (n > 0) {
        snprintf(buf, len, "not ready\n%s", reasons);
        return 0;
    }
    if (nmembers > 0 && parts == 0)
        snprintf(buf, len,
                 "ready\nno partition assigned: the other members of "
                 "consumer group %s hold every partition (standing by)\n",
                 atomic_load(&group));
    else
        snprintf(buf, len, "ready\n");
    return 1;
}

static void
ping(health_t *h)
{
    char err[256];
    od_status_t st = OD_OK;

    if (!db_ok(h->db))
        st = db_reconnect(h->db, err, sizeof(err));
    if (st == OD_OK)
        st = db_run(h->db, &stmt_ping, 0, NULL, NULL, err, sizeof(err));
    if (st == OD_OK) {
        atomic_store(&metrics.pg_last_answer_us, od_mono_us());
        return;
    }
    pthread_mutex_lock(&pg_lock);
    snprintf(pg_error, sizeof(pg_error), "%s", err);
    pthread_mutex_unlock(&pg_lock);
}

static void
sample_outbox(health_t *h)
{
    char err[256];
    db_rows_t *rows = NULL;

    if (!db_ok(h->db))
        return;
    if (db_run(h->db, &stmt_backlog, 0, NULL, &rows, err, sizeof(err)) !=
        OD_OK) {
        log_debug("outbox backlog sample: %s", err);
        return;
    }
    atomic_store(&metrics.outbox_backlog, db_int64(rows, 0, 0));
    atomic_store(&metrics.outbox_oldest_ms, db_int64(rows, 0, 1));
    db_rows_free(rows);
}

/* Says, at least every HEALTH_WARN_EVERY_US, why the process is not
 * ready, once it has not been for HEALTH_WARN_AFTER_US. */
static void
watch(int64_t now, int64_t *since, int64_t *next_warn)
{
    char body[2048];

    if (health_report(body, sizeof(body))) {
        if (*next_warn != 0)
            log_info("ready again");
        *since = 0;
        *next_warn = 0;
        return;
    }
    if (*since == 0)
        *since = now;
    if (now - *since < HEALTH_WARN_AFTER_US ||
        (*next_warn != 0 && now < *next_warn))
        return;
    /* one log line: the reasons after "not ready", joined */
    {
        char joined[2048];
        size_t n = 0;
        const char *p = strchr(body, '\n');

        joined[0] = '\0';
        while (p != NULL && p[1] != '\0') {
            const char *end = strchr(p + 1, '\n');
            int w = (int)(end != NULL ? end - (p + 1) : (long)strlen(p + 1));

            n += (size_t)snprintf(joined + n, sizeof(joined) - n, "%s%.*s",
                                  n > 0 ? "; " : "", w, p + 1);
            if (n >= sizeof(joined))
                break;
            p = end;
        }
        log_warn("not ready for %lld s: %s",
                 (long long)((now - *since) / 1000000), joined);
    }
    *next_warn = now + HEALTH_WARN_EVERY_US;
}

static void *
health_main(void *arg)
{
    health_t *h = arg;
    int64_t next_ping = 0, next_sample = 0, since = 0, next_warn = 0;

    while (!atomic_load(&h->stop)) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        int64_t now = od_mono_us();

        if (now >= next_ping) {
            ping(h);
            next_ping = od_mono_us() + HEALTH_PING_US;
        }
        if (now >= next_sample) {
            sample_outbox(h);
            next_sample = od_mono_us() + HEALTH_SAMPLE_US;
        }
        if (strcmp(atomic_load(&phase), "running") == 0)
            watch(od_mono_us(), &since, &next_warn);
        nanosleep(&ts, NULL); /* the stop flag is polled this often */
    }
    return NULL;
}

health_t *
health_start(const od_config_t *cfg, char *err, size_t errlen)
{
    health_t *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        od_err(err, errlen, "out of memory");
        return NULL;
    }
    h->cfg = cfg;
    atomic_store(&group, cfg->group);
    h->db = db_new(cfg->pg, "orderd-health");
    if (h->db == NULL) {
        od_err(err, errlen, "out of memory");
        free(h);
        return NULL;
    }
    if (pthread_create(&h->thread, NULL, health_main, h) != 0) {
        od_err(err, errlen, "could not start the health thread");
        db_destroy(h->db);
        free(h);
        return NULL;
    }
    return h;
}

void
health_stop(health_t *h)
{
    if (h == NULL)
        return;
    atomic_store(&h->stop, 1);
    pthread_join(h->thread, NULL);
    db_destroy(h->db);
    free(h);
}
