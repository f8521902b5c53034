/* metrics.c - the process's counters, histograms and gauges, and their
 * Prometheus text exposition
 *
 * DESIGN: every value a thread reports on the hot path is an atomic in a
 * fixed place: counters, histogram buckets (fixed boundaries, one counter
 * per bucket), a fixed matrix of rejection reasons by command type (both
 * are fixed lists, so the number of series is bounded whatever producers
 * send), and a fixed table of per-partition lag slots. Nothing is
 * allocated until a scrape renders the text. Per-command values of a
 * batch are staged in thread-local storage and published when the batch
 * commits, because a batch that is rolled back is applied again and must
 * not count twice.
 */
#include "metrics.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cbuf.h"
#include "db.h"
#include "health.h"
#include "od.h"
#include "version.h"

metrics_t metrics;

/* upper bounds (seconds) of the histogram buckets; +Inf follows */
static const double bucket_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,   0.25,   0.5,   1,    2.5,   5,
                                   10,    30,     60,    300};
#define METRICS_NBUCKETS OD_ARRAY_LEN(bucket_le)

typedef struct hist {
    atomic_llong bucket[METRICS_NBUCKETS + 1]; /* not cumulative */
    atomic_llong sum_us;
} hist_t;

static hist_t hist_batch, hist_command, hist_publish;

/* The contract's rejection reasons; anything else counts as "other". */
static const char *const reasons[] = {
    "invalid_command",    "unauthorized",
    "dedup_key_reused",   "order_exists",
    "order_not_found",    "product_not_found",
    "product_deleted",    "variant_required",
    "variant_not_found",  "price_changed",
    "price_missing",      "currency_mismatch",
    "insufficient_stock", "invalid_transition",
    "already_paid",       "already_cancelled",
    "order_expired",      "amount_mismatch",
    "internal_error",     "other"};
#define METRICS_NREASONS OD_ARRAY_LEN(reasons)

/* The contract's command types; a type no handler knows is "unknown". */
static const char *const types[] = {
    "checkout",         "pay",          "cancel",
    "start_processing", "ship",         "deliver",
    "refund",           "expire",       "product_upsert",
    "product_delete",   "stock_adjust", "tax_rate_set",
    "unknown"};
#define METRICS_NTYPES OD_ARRAY_LEN(types)

static atomic_llong rejections[METRICS_NREASONS][METRICS_NTYPES];

/* dead-letter copies by class: the message was poison (unreadable), or a
 * readable command failed unexpectedly (internal_error) */
enum { DLQ_POISON, DLQ_INTERNAL, DLQ_NCLASSES };
static const char *const dlq_classes[] = {"poison", "internal_error"};
static atomic_llong dlq_by_class[DLQ_NCLASSES];

#define METRICS_LAG_SLOTS 1024

static struct {
    const char *topic; /* NULL: free */
    int32_t partition;
    atomic_llong lag;
    atomic_llong end;
    char owner[64];
} lag_slots[METRICS_LAG_SLOTS];
static pthread_mutex_t lag_lock = PTHREAD_MUTEX_INITIALIZER;

static double start_time_s;

/*
 * One thread's staging for the batch it is applying. Latencies are kept
 * per command (its Kafka timestamp) so they are measured to the commit;
 * past METRICS_STAGE_MAX commands in one batch the rest are measured when
 * they are applied instead (batches that large are warned against).
 */
#define METRICS_STAGE_MAX 2048

typedef struct stage {
    int nts;
    int64_t ts[METRICS_STAGE_MAX];
    long long over[METRICS_NBUCKETS + 1];
    int64_t over_sum_us;
    int nover;
    int nrej; /* rejections staged: the matrix needs clearing */
    uint32_t rej[METRICS_NREASONS][METRICS_NTYPES];
    long long dlq[DLQ_NCLASSES];
} stage_t;

static _Thread_local stage_t stage;

void
metrics_init(void)
{
    memset(&metrics, 0, sizeof(metrics));
    atomic_store(&metrics.outbox_backlog, -1);
    start_time_s = (double)od_now_us() / 1e6;
}

static size_t
bucket_of(double seconds)
{
    size_t i = 0;

    while (i < METRICS_NBUCKETS && seconds > bucket_le[i])
        i++;
    return i;
}

static void
observe(hist_t *h, double seconds)
{
    if (seconds < 0)
        seconds = 0;
    atomic_fetch_add(&h->bucket[bucket_of(seconds)], 1);
    atomic_fetch_add(&h->sum_us, (long long)(seconds * 1e6));
}

void
metrics_observe_batch(double seconds)
{
    observe(&hist_batch, seconds);
}

void
metrics_observe_publish(double seconds)
{
    observe(&hist_publish, seconds);
}

static size_t
index_of(const char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; s != NULL && i + 1 < n; i++)
        if (strcmp(list[i], s) == 0)
            return i;
    return n - 1; /* "other", "unknown" */
}

void
metrics_batch_begin(void)
{
    stage.nts = 0;
    if (stage.nover > 0) {
        memset(stage.over, 0, sizeof(stage.over));
        stage.over_sum_us = 0;
        stage.nover = 0;
    }
    if (stage.nrej > 0) {
        memset(stage.rej, 0, sizeof(stage.rej));
        stage.nrej = 0;
    }
    stage.dlq[DLQ_POISON] = stage.dlq[DLQ_INTERNAL] = 0;
}

void
metrics_command_done(int64_t ts_us, const apply_report_t *rep)
{
    int poison = rep->reason != NULL && strcmp(rep->reason, "poison") == 0;

    if (rep->dlq)
        stage.dlq[rep->internal_error ? DLQ_INTERNAL : DLQ_POISON]++;
    /* poison is no rejection: it has no result, only its DLQ copy */
    if (rep->outcome == OUTCOME_REJECTED && !poison) {
        stage.rej[index_of(reasons, METRICS_NREASONS, rep->reason)]
                 [index_of(types, METRICS_NTYPES, rep->type)]++;
        stage.nrej++;
    }
    if (ts_us <= 0 || poison)
        return;
    if (stage.nts < METRICS_STAGE_MAX) {
        stage.ts[stage.nts++] = ts_us;
    } else {
        int64_t d = od_now_us() - ts_us;

        d = d < 0 ? 0 : d;
        stage.over[bucket_of((double)d / 1e6)]++;
        stage.over_sum_us += d;
        stage.nover++;
    }
}

void
metrics_batch_committed(void)
{
    int64_t now = od_now_us();

    for (int i = 0; i < stage.nts; i++)
        observe(&hist_command, (double)(now - stage.ts[i]) / 1e6);
    if (stage.nover > 0) {
        for (size_t i = 0; i <= METRICS_NBUCKETS; i++)
            atomic_fetch_add(&hist_command.bucket[i], stage.over[i]);
        atomic_fetch_add(&hist_command.sum_us, stage.over_sum_us);
    }
    if (stage.nrej > 0)
        for (size_t r = 0; r < METRICS_NREASONS; r++)
            for (size_t t = 0; t < METRICS_NTYPES; t++)
                if (stage.rej[r][t] > 0)
                    atomic_fetch_add(&rejections[r][t], stage.rej[r][t]);
    for (int c = 0; c < DLQ_NCLASSES; c++)
        if (stage.dlq[c] > 0)
            atomic_fetch_add(&dlq_by_class[c], stage.dlq[c]);
    metrics_batch_begin(); /* staged values count once */
}

int
metrics_lag_claim(const char *topic, int32_t partition, const char *owner)
{
    int slot = -1;

    pthread_mutex_lock(&lag_lock);
    for (int i = 0; i < METRICS_LAG_SLOTS; i++) {
        if (lag_slots[i].topic == NULL) {
            lag_slots[i].topic = topic;
            lag_slots[i].partition = partition;
            snprintf(lag_slots[i].owner, sizeof(lag_slots[i].owner), "%s",
                     owner ? owner : "");
            atomic_store(&lag_slots[i].lag, -1);
            atomic_store(&lag_slots[i].end, -1);
            slot = i;
            break;
        }
    }
    pthread_mutex_unlock(&lag_lock);
    return slot;
}

void
metrics_lag_set(int slot, int64_t lag, int64_t end)
{
    if (slot < 0 || slot >= METRICS_LAG_SLOTS)
        return;
    atomic_store(&lag_slots[slot].end, end);
    atomic_store(&lag_slots[slot].lag, lag < 0 ? 0 : lag);
}

int
metrics_lag_rows(metrics_lag_row_t *rows, int max)
{
    int n = 0;

    /* under the lock: a slot's topic and owner change only with it held */
    pthread_mutex_lock(&lag_lock);
    for (int i = 0; i < METRICS_LAG_SLOTS && n < max; i++) {
        if (lag_slots[i].topic == NULL)
            continue;
        snprintf(rows[n].topic, sizeof(rows[n].topic), "%s",
                 lag_slots[i].topic);
        rows[n].partition = lag_slots[i].partition;
        rows[n].lag = atomic_load(&lag_slots[i].lag);
        rows[n].end = atomic_load(&lag_slots[i].end);
        snprintf(rows[n].owner, sizeof(rows[n].owner), "%s",
                 lag_slots[i].owner);
        n++;
    }
    pthread_mutex_unlock(&lag_lock);
    return n;
}

int
metrics_rejection_rows(metrics_rejection_row_t *rows, int max)
{
    int n = 0;

    for (size_t r = 0; r < METRICS_NREASONS; r++)
        for (size_t t = 0; t < METRICS_NTYPES && n < max; t++) {
            long long c = atomic_load(&rejections[r][t]);

            if (c == 0)
                continue;
            rows[n].reason = reasons[r];
            rows[n].type = types[t];
            rows[n++].count = c;
        }
    return n;
}

void
metrics_lag_release(int slot)
{
    if (slot < 0 || slot >= METRICS_LAG_SLOTS)
        return;
    pthread_mutex_lock(&lag_lock);
    lag_slots[slot].topic = NULL;
    pthread_mutex_unlock(&lag_lock);
}

/* # HELP and # TYPE of a family */
static void
family(cbuf_t *b, const char *name, const char *type, const char *help)
{
    cbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
counter(cbuf_t *b, const char *name, const char *help, atomic_llong *v)
{
    family(b, name, "counter", help);
    cbuf_printf(b, "%s %lld\n", name, (long long)atomic_load(v));
}

static void
gauge(cbuf_t *b, const char *name, const char *help, double v)
{
    family(b, name, "gauge", help);
    cbuf_printf(b, "%s %.17g\n", name, v);
}

static void
histogram(cbuf_t *b, const char *name, const char *help, hist_t *h)
{
    long long cum = 0;

    family(b, name, "histogram", help);
    for (size_t i = 0; i <= METRICS_NBUCKETS; i++) {
        cum += atomic_load(&h->bucket[i]);
        if (i < METRICS_NBUCKETS)
            cbuf_printf(b, "%s_bucket{le=\"%g\"} %lld\n", name, bucket_le[i],
                        cum);
        else
            cbuf_printf(b, "%s_bucket{le=\"+Inf\"} %lld\n", name, cum);
    }
    /* _count from the same reads as the buckets, so they agree */
    cbuf_printf(b, "%s_sum %.6f\n%s_count %lld\n", name,
                (double)atomic_load(&h->sum_us) / 1e6, name, cum);
}

/* Label values here are topic names and fixed strings; a backslash, a
 * quote or a newline would still be escaped as the format asks. */
static void
label_value(cbuf_t *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            cbuf_printf(b, "\\%c", *s);
        else if (*s == '\n')
            cbuf_printf(b, "\\n");
        else
            cbuf_printf(b, "%c", *s);
    }
}

/* The process family, named as every Prometheus client library names it
 * so that existing dashboards and alerts apply unchanged. */
static void
render_process(cbuf_t *b)
{
    struct rusage ru;
    struct rlimit rl;
    long pagesize = sysconf(_SC_PAGESIZE);
    unsigned long size = 0, resident = 0;
    long long fds = -1;
    FILE *f;
    DIR *d;

    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        family(b, "process_cpu_seconds_total", "counter",
               "User and system CPU time of the process.");
        cbuf_printf(b, "process_cpu_seconds_total %.6f\n",
                    (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                        (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    }
    f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%lu %lu", &size, &resident) == 2 && pagesize > 0) {
            gauge(b, "process_resident_memory_bytes",
                  "Resident memory of the process.",
                  (double)resident * (double)pagesize);
            gauge(b, "process_virtual_memory_bytes",
                  "Virtual memory of the process.",
                  (double)size * (double)pagesize);
        }
        fclose(f);
    }
    d = opendir("/proc/self/fd");
    if (d != NULL) {
        struct dirent *e;

        fds = 0;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                fds++;
        closedir(d);
        fds--; /* the directory stream's own descriptor */
        gauge(b, "process_open_fds", "Open file descriptors.", (double)fds);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        gauge(b, "process_max_fds", "The open file descriptor limit.",
              (double)rl.rlim_cur);
    gauge(b, "process_start_time_seconds",
          "Start of the process, seconds since the epoch.", start_time_s);
}

char *
metrics_render(size_t *len)
{
    static const struct {
        const char *outcome;
        atomic_llong *v;
    } outcomes[] = {
        {"applied", &metrics.applied},     {"rejected", &metrics.rejected},
        {"duplicate", &metrics.duplicate}, {"deferred", &metrics.deferred},
        {"skipped", &metrics.skipped},
    };
    cbuf_t b = {malloc(16384), 0, 16384, 0};
    char reasons_text[1024];
    int ready = health_report(reasons_text, sizeof(reasons_text));
    long long backlog = atomic_load(&metrics.outbox_backlog);

    if (b.p == NULL)
        return NULL;
    family(&b, "orderd_build_info", "gauge",
           "Always 1; the version label says which orderd runs.");
    cbuf_printf(&b, "orderd_build_info{version=\"%s\"} 1\n", orderd_version());
    gauge(&b, "orderd_ready",
          "1 when /readyz answers 200: Postgres answers, every executor has "
          "its assignment, nothing backs off.",
          ready);

    family(&b, "orderd_commands_total", "counter",
           "Commands taken off the input topics, by outcome (skipped: "
           "redeliveries below the stored offset, applied before).");
    for (size_t i = 0; i < OD_ARRAY_LEN(outcomes); i++)
        cbuf_printf(&b, "orderd_commands_total{outcome=\"%s\"} %lld\n",
                    outcomes[i].outcome, (long long)atomic_load(outcomes[i].v));
    family(&b, "orderd_rejections_total", "counter",
           "Rejected commands by reason and command type (series appear "
           "with the first rejection).");
    for (size_t r = 0; r < METRICS_NREASONS; r++)
        for (size_t t = 0; t < METRICS_NTYPES; t++) {
            long long v = atomic_load(&rejections[r][t]);

            if (v > 0)
                cbuf_printf(&b,
                            "orderd_rejections_total{reason=\"%s\",type=\"%s\"}"
                            " %lld\n",
                            reasons[r], types[t], v);
        }
    family(&b, "orderd_dlq_total", "counter",
           "Messages copied to the dead-letter topic, by class: poison "
           "(unreadable) or internal_error (a command failed unexpectedly).");
    for (int c = 0; c < DLQ_NCLASSES; c++)
        cbuf_printf(&b, "orderd_dlq_total{class=\"%s\"} %lld\n", dlq_classes[c],
                    (long long)atomic_load(&dlq_by_class[c]));
    counter(&b, "orderd_internal_errors_total",
            "Commands that failed with an unexpected error "
            "(rejected internal_error, copied to the DLQ).",
            &metrics.internal_errors);
    counter(&b, "orderd_batches_total", "Batches committed.", &metrics.batches);
    counter(&b, "orderd_batch_retries_total",
            "Batch attempts rolled back on a transient fault and retried.",
            &metrics.batch_retries);
    counter(&b, "orderd_batch_carried_total",
            "Messages left for the next batch because another executor "
            "held a row they need.",
            &metrics.carried);
    histogram(&b, "orderd_batch_duration_seconds",
              "Time from a batch's first attempt to its commit.", &hist_batch);
    histogram(&b, "orderd_command_latency_seconds",
              "Time from a command's Kafka timestamp to the commit of its "
              "batch.",
              &hist_command);
    counter(&b, "orderd_events_published_total",
            "Outbox events delivered to Kafka and marked published.",
            &metrics.published);
    counter(&b, "orderd_publish_errors_total",
            "Outbox deliveries that failed (the rows are published later).",
            &metrics.publish_errors);
    histogram(&b, "orderd_publish_latency_seconds",
              "Time from an outbox row's creation (its batch's start) to its "
              "delivery report.",
              &hist_publish);
    if (backlog >= 0) {
        gauge(&b, "orderd_outbox_backlog",
              "Outbox rows not yet published (sampled every few seconds).",
              (double)backlog);
        gauge(&b, "orderd_outbox_oldest_unpublished_seconds",
              "Age of the oldest unpublished outbox row (0: none).",
              (double)atomic_load(&metrics.outbox_oldest_ms) / 1e3);
    }
    counter(&b, "orderd_orders_expired_total",
            "Orders expired by the scheduler.", &metrics.expired);
    counter(&b, "orderd_expiry_failures_total",
            "Scheduler expiries that did not apply.", &metrics.expiry_failures);
    family(&b, "orderd_db_round_trips_total", "counter",
           "Waits for Postgres's answer (a pipeline's Sync, or a statement "
           "sent alone), over all of the process's connections.");
    cbuf_printf(&b, "orderd_db_round_trips_total %lld\n",
                db_round_trips_total());
    counter(&b, "orderd_rebalances_total",
            "Group rebalances this process went through (once per "
            "rebalance, not per executor).",
            &metrics.rebalances);
    gauge(&b, "orderd_assigned_partitions",
          "Partitions assigned to this process's executors.",
          atomic_load(&metrics.assigned_partitions));
    family(&b, "orderd_consumer_lag", "gauge",
           "Messages on a partition not yet committed by this process: "
           "log end offset minus committed offset.");
    pthread_mutex_lock(&lag_lock);
    for (int i = 0; i < METRICS_LAG_SLOTS; i++) {
        long long lag = atomic_load(&lag_slots[i].lag);

        if (lag_slots[i].topic == NULL || lag < 0)
            continue;
        cbuf_printf(&b, "orderd_consumer_lag{topic=\"");
        label_value(&b, lag_slots[i].topic);
        cbuf_printf(&b, "\",partition=\"%d\"} %lld\n",
                    (int)lag_slots[i].partition, lag);
    }
    pthread_mutex_unlock(&lag_lock);
    gauge(&b, "orderd_executors_backing_off",
          "Executors backing off from a database fault.",
          atomic_load(&metrics.db_down));
    render_process(&b);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
