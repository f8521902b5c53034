/* console_status.c - the status JSON behind the console's overview
 *
 * DESIGN: one answer from three sources, read inside the console reader's
 * READ ONLY transaction: this process's metrics (readiness, throughput,
 * outcomes, rejections, lag slots with their log end and holder), the
 * stored offsets of the group (by its key), and counts that the partial
 * indexes keep cheap (parked commands, dead letters, unpublished outbox
 * rows). A partition shows up once, whether this process holds it or only
 * the offsets table knows it.
 */
#include "console_pages.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../handlers/handler.h"
#include "health.h"
#include "metrics.h"

#define CONSOLE_MAX_PARTITIONS 1024

static const db_stmt_t stmt_offsets = {
    "console_offsets",
    "SELECT topic, partition, next_offset,"
    " to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
    " FROM consumer_offsets WHERE grp = $1 ORDER BY topic, partition"};

/* parked commands, dead letters still in the outbox (partial index), and
 * the expiry scheduler's leader: the session holding its advisory lock */
static const db_stmt_t stmt_facts = {
    "console_facts",
    "SELECT (SELECT count(*) FROM deferred_commands),"
    " (SELECT COALESCE(EXTRACT(epoch FROM now() - min(created_at)), 0)"
    "  ::bigint FROM deferred_commands),"
    " (SELECT count(*) FROM outbox WHERE headers ? 'orderd-error'),"
    " (SELECT format('%s (backend pid %s%s)',"
    "   COALESCE(NULLIF(a.application_name, ''), 'a session'), l.pid,"
    "   COALESCE(', from ' || host(a.client_addr), ''))"
    "  FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
    "  WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0"
    "  AND l.objid = 4242002 AND l.objsubid = 1 AND l.database ="
    "  (SELECT oid FROM pg_database WHERE datname = current_database())"
    "  LIMIT 1)"};

typedef struct part {
    char topic[256];
    int32_t partition;
    int64_t stored; /* -1: none */
    char stored_at[32];
    int64_t end, lag; /* -1: not known */
    char owner[64];   /* "": not held here */
} part_t;

static part_t *
part_find(part_t *v, int n, const char *topic, int32_t partition)
{
    for (int i = 0; i < n; i++)
        if (v[i].partition == partition && strcmp(v[i].topic, topic) == 0)
            return &v[i];
    return NULL;
}

static int
part_cmp(const void *a, const void *b)
{
    const part_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);

    return c != 0
               ? c
               : (x->partition > y->partition) - (x->partition < y->partition);
}

/* The lines of health_report after its first, as an array. */
static json_t *
readiness(int *ready)
{
    char body[2048];
    json_t *why = json_array();
    const char *p;

    *ready = health_report(body, sizeof(body));
    p = strchr(body, '\n');
    while (why != NULL && p != NULL && p[1] != '\0') {
        const char *end = strchr(p + 1, '\n');
        size_t n = end ? (size_t)(end - p - 1) : strlen(p + 1);

        json_array_append_new(why, json_stringn(p + 1, n));
        p = end;
    }
    return why;
}

od_status_t
console_status_json(db_t *db, const console_status_in_t *in,
                    console_reply_t *rep, char *err, size_t errlen)
{
    const char *params[1] = {in->cfg->group};
    metrics_lag_row_t *held = NULL;
    metrics_rejection_row_t rej[64];
    part_t *parts = NULL;
    db_rows_t *rows = NULL;
    json_t *j = NULL, *a;
    int nparts = 0, nheld, nrej, ready;
    int64_t tick;
    char now[32], at[32];
    od_status_t st;

    parts = calloc(CONSOLE_MAX_PARTITIONS * 2, sizeof(*parts));
    held = calloc(CONSOLE_MAX_PARTITIONS, sizeof(*held));
    if (parts == NULL || held == NULL) {
        od_err(err, errlen, "out of memory");
        st = OD_FATAL;
        goto out;
    }
    st = db_run(db, &stmt_offsets, 1, params, &rows, err, errlen);
    if (st != OD_OK)
        goto out;
    for (int r = 0; r < db_nrows(rows) && nparts < CONSOLE_MAX_PARTITIONS;
         r++) {
        part_t *p = &parts[nparts++];

        snprintf(p->topic, sizeof(p->topic), "%s", db_val(rows, r, 0));
        p->partition = (int32_t)db_int64(rows, r, 1);
        p->stored = db_int64(rows, r, 2);
        snprintf(p->stored_at, sizeof(p->stored_at), "%s", db_val(rows, r, 3));
        p->end = p->lag = -1;
    }
    db_rows_free(rows);
    rows = NULL;
    /* the partitions this process holds: log end, lag, which executor */
    nheld = metrics_lag_rows(held, CONSOLE_MAX_PARTITIONS);
    for (int i = 0; i < nheld; i++) {
        part_t *p = part_find(parts, nparts, held[i].topic, held[i].partition);

        if (p == NULL) {
            p = &parts[nparts++];
            snprintf(p->topic, sizeof(p->topic), "%s", held[i].topic);
            p->partition = held[i].partition;
            p->stored = -1;
        }
        p->end = held[i].end;
        p->lag = held[i].lag;
        snprintf(p->owner, sizeof(p->owner), "%s", held[i].owner);
    }
    qsort(parts, (size_t)nparts, sizeof(*parts), part_cmp);

    st = db_run(db, &stmt_facts, 0, NULL, &rows, err, errlen);
    if (st != OD_OK)
        goto out;

    console_iso_time(od_now_us(), now, sizeof(now));
    j = json_pack("{s:s, s:s, s:s}", "process", in->process, "now", now,
                  "group", in->cfg->group);
    if (j == NULL) {
        st = OD_FATAL;
        od_err(err, errlen, "out of memory");
        goto out;
    }
    a = readiness(&ready);
    json_object_set_new(j, "ready", json_boolean(ready));
    json_object_set_new(j, "readiness", a ? a : json_array());

    a = json_array();
    for (int i = 0; a != NULL && i < nparts; i++) {
        const part_t *p = &parts[i];
        json_t *o = json_pack("{s:s, s:i}", "topic", p->topic, "partition",
                              (int)p->partition);

        if (o == NULL)
            continue;
        json_object_set_new(o, "stored_offset",
                            p->stored >= 0 ? json_integer(p->stored)
                                           : json_null());
        json_object_set_new(o, "stored_at",
                            p->stored_at[0] ? json_string(p->stored_at)
                                            : json_null());
        json_object_set_new(o, "log_end",
                            p->end >= 0 ? json_integer(p->end) : json_null());
        json_object_set_new(o, "lag",
                            p->lag >= 0 ? json_integer(p->lag) : json_null());
        if (p->owner[0] != '\0')
            json_object_set_new(o, "holder",
                                json_pack("{s:s, s:s}", "process", in->process,
                                          "executor", p->owner));
        else
            json_object_set_new(o, "holder", json_null());
        json_array_append_new(a, o);
    }
    json_object_set_new(j, "partitions", a ? a : json_array());

    json_object_set_new(
        j, "counters",
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "applied",
                  (json_int_t)atomic_load(&metrics.applied), "rejected",
                  (json_int_t)atomic_load(&metrics.rejected), "duplicate",
                  (json_int_t)atomic_load(&metrics.duplicate), "deferred",
                  (json_int_t)atomic_load(&metrics.deferred), "dlq",
                  (json_int_t)atomic_load(&metrics.dlq), "internal_errors",
                  (json_int_t)atomic_load(&metrics.internal_errors), "expired",
                  (json_int_t)atomic_load(&metrics.expired), "published",
                  (json_int_t)atomic_load(&metrics.published)));

    a = json_array();
    for (int i = 0; a != NULL && i < in->nsamples; i++) {
        const console_sample_t *s = &in->samples[i];

        console_iso_time(s->t_us, at, sizeof(at));
        json_array_append_new(
            a, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "t", at, "t_ms",
                         (json_int_t)(s->t_us / 1000), "applied",
                         (json_int_t)s->applied, "rejected",
                         (json_int_t)s->rejected, "duplicate",
                         (json_int_t)s->duplicate, "deferred",
                         (json_int_t)s->deferred, "dlq", (json_int_t)s->dlq));
    }
    json_object_set_new(j, "samples", a ? a : json_array());

    nrej = metrics_rejection_rows(rej, (int)OD_ARRAY_LEN(rej));
    a = json_array();
    for (int i = 0; a != NULL && i < nrej; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:I}", "reason",
                                           rej[i].reason, "type", rej[i].type,
                                           "count", (json_int_t)rej[i].count));
    json_object_set_new(j, "rejections", a ? a : json_array());

    json_object_set_new(
        j, "outbox",
        json_pack("{s:I, s:I}", "backlog",
                  (json_int_t)atomic_load(&metrics.outbox_backlog), "oldest_ms",
                  (json_int_t)atomic_load(&metrics.outbox_oldest_ms)));
    json_object_set_new(
        j, "dlq",
        json_pack("{s:I, s:I}", "in_outbox", (json_int_t)db_int64(rows, 0, 2),
                  "this_process", (json_int_t)atomic_load(&metrics.dlq)));
    json_object_set_new(j, "parked",
                        json_pack("{s:I, s:I}", "count",
                                  (json_int_t)db_int64(rows, 0, 0), "oldest_s",
                                  (json_int_t)db_int64(rows, 0, 1)));
    tick = atomic_load(&metrics.scheduler_last_tick_us);
    console_iso_time(tick, at, sizeof(at));
    json_object_set_new(
        j, "scheduler",
        json_pack("{s:o, s:b, s:o}", "leader",
                  db_isnull(rows, 0, 3) ? json_null()
                                        : json_string(db_val(rows, 0, 3)),
                  "this_process_leads",
                  atomic_load(&metrics.scheduler_leader) != 0, "last_tick",
                  tick > 0 ? json_string(at) : json_null()));
    console_reply_json(rep, j);
    j = NULL;
out:
    db_rows_free(rows);
    json_decref(j);
    free(parts);
    free(held);
    return st;
}
