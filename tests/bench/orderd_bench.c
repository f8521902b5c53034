/* orderd_bench.c - benchmark load generator and result reader for scripts/bench
 *
 *   orderd_bench produce --brokers B --topic T --count N [--rate R]
 *                        [--tag TAG] [--phase P] [--seed S]
 *                        [--mix default|catalogue|single] [--products P]
 *       Generates the benchmark workload and produces it to T, keyed by the
 *       contract's key rule. Without --rate as fast as the broker takes it
 *       (the preload); with --rate at R messages per second, evenly spaced
 *       (the paced phase). Prints one line of key=value pairs.
 *   orderd_bench measure --brokers B --events-topic E --expect N
 *                        [--commands-topic C --from-ms MS] [--timeout S]
 *                        [--type COMMAND_TYPE]
 *       Reads the events topic (from MS, else from the start) until N
 *       command.result events were seen; prints their count and the first
 *       and last Kafka timestamps. With --type only the results of that
 *       command type count. With --commands-topic it also reads the
 *       commands produced since MS and prints the command-to-result latency
 *       (result CreateTime minus command CreateTime, matched by the result's
 *       source partition and offset): p50, p90, p99, max.
 *   orderd_bench delete-topics --brokers B TOPIC...
 *
 * Workload (one run of produce): 10,000 simple products (ids 1..10000,
 * price bench_price(id), preloaded by scripts/bench with SQL), about 80%
 * checkouts of 1-3 distinct products (quantity 1-3, quoted unit prices),
 * 12% pays and 6% cancels of earlier orders of this run (same key as their
 * checkout: the smallest product id), 2% exact re-sends of a recent message.
 * The stream instead (scripts/bench --stream): --mix catalogue
 * sends N product_upsert commands for products 1..N (simple, priced with
 * bench_price, a stock that no checkout of the stream exhausts), --mix
 * single N one-line checkouts of one of products 1..P.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#define BENCH_PRODUCTS 10000
#define BENCH_RECENT 1024
#define BENCH_MAX_PARTS 256
#define BENCH_MSG_MAX 1024
#define BENCH_STREAM_STOCK 1000000

typedef enum bench_mix {
    BENCH_MIX_DEFAULT,
    BENCH_MIX_CATALOGUE,
    BENCH_MIX_SINGLE
} bench_mix_t;

typedef struct bench_opts {
    const char *brokers;
    const char *topic;
    const char *events_topic;
    const char *commands_topic;
    const char *tag;
    long long count;
    double rate;
    int phase;
    unsigned long long seed;
    long long expect;
    long long from_ms;
    int timeout_s;
    bench_mix_t mix;
    int products;
    const char *type;
    const char *series; /* measure: per-interval latencies to this file */
} bench_opts_t;

typedef struct bench_order {
    char id[37];
    int customer;
    int64_t total_cents;
    int64_t key;
} bench_order_t;

typedef struct bench_pool {
    bench_order_t *v;
    size_t n, cap;
} bench_pool_t;

typedef struct bench_recent {
    char payload[BENCH_MSG_MAX];
    size_t len;
    char key[24];
} bench_recent_t;

typedef struct bench_gen {
    uint64_t rng;
    uint32_t tag_hash;
    const char *tag;
    int phase;
    long long seq;
    bench_pool_t pending;
    bench_pool_t paid;
    bench_recent_t *recent;
    long long nrecent;
    long long counts[5]; /* checkout, pay, cancel, resend, product_upsert */
    bench_mix_t mix;
    int products;
} bench_gen_t;

static void
die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "orderd_bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* splitmix64: small, fast and good enough for a workload */
static uint64_t
rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int
rng_below(uint64_t *s, int n)
{
    return (int)(rng_next(s) % (uint64_t)n);
}

/* The catalogue's price; tests/bench/catalogue.sql uses the same formula. */
static int64_t
bench_price(int64_t id)
{
    return 199 + (id * 7919) % 9800;
}

static uint32_t
fnv1a(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static void
pool_push(bench_pool_t *p, const bench_order_t *o)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 1024;
        p->v = realloc(p->v, p->cap * sizeof(*p->v));
        if (p->v == NULL)
            die("out of memory");
    }
    p->v[p->n++] = *o;
}

/* Removes and returns a random order of the pool (swap with the last). */
static bench_order_t
pool_take(bench_pool_t *p, uint64_t *rng)
{
    size_t i = (size_t)(rng_next(rng) % p->n);
    bench_order_t o = p->v[i];

    p->v[i] = p->v[--p->n];
    return o;
}

static size_t
gen_checkout(bench_gen_t *g, char *buf, size_t len, char *key)
{
    bench_order_t o;
    int64_t ids[3], qty[3];
    int nlines = 1 + rng_below(&g->rng, 3), i, j;
    size_t n;

    for (i = 0; i < nlines; i++) {
        do {
            ids[i] = 1 + rng_below(&g->rng, BENCH_PRODUCTS);
            for (j = 0; j < i && ids[j] != ids[i]; j++)
                ;
        } while (j < i);
        qty[i] = 1 + rng_below(&g->rng, 3);
    }
    o.key = ids[0];
    o.total_cents = 0;
    for (i = 0; i < nlines; i++) {
        if (ids[i] < o.key)
            o.key = ids[i];
        o.total_cents += bench_price(ids[i]) * qty[i];
    }
    o.customer = rng_below(&g->rng, 5000);
    snprintf(o.id, sizeof(o.id), "%08" PRIx32 "-%04x-4000-8000-%012llx",
             g->tag_hash, (unsigned)g->phase & 0xffff,
             (unsigned long long)g->seq);
    n = (size_t)snprintf(
        buf, len,
        "{\"dedup_key\":\"co:%s:%d:%lld\",\"type\":\"checkout\","
        "\"actor\":{\"role\":\"customer\",\"id\":\"cust-%d\"},"
        "\"order_id\":\"%s\",\"customer_id\":\"cust-%d\","
        "\"currency\":\"EUR\",\"items\":[",
        g->tag, g->phase, g->seq, o.customer, o.id, o.customer);
    for (i = 0; i < nlines; i++)
        n += (size_t)snprintf(
            buf + n, len - n,
            "%s{\"product_id\":%" PRId64 ",\"quantity\":%" PRId64
            ",\"unit_price_cents\":%" PRId64 "}",
            i ? "," : "", ids[i], qty[i], bench_price(ids[i]));
    n += (size_t)snprintf(buf + n, len - n, "]}");
    snprintf(key, 24, "%" PRId64, o.key);
    pool_push(&g->pending, &o);
    g->counts[0]++;
    return n;
}

static size_t
gen_pay(bench_gen_t *g, char *buf, size_t len, char *key)
{
    bench_order_t o = pool_take(&g->pending, &g->rng);

    snprintf(key, 24, "%" PRId64, o.key);
    /* a third of the paid orders may be cancelled later (refund_required) */
    if (rng_below(&g->rng, 3) == 0)
        pool_push(&g->paid, &o);
    g->counts[1]++;
    return (size_t)snprintf(
        buf, len,
        "{\"dedup_key\":\"pay:%s:%d:%lld\",\"type\":\"pay\","
        "\"actor\":{\"role\":\"payment\",\"id\":\"bench-gateway\"},"
        "\"order_id\":\"%s\",\"payment_id\":\"pi-%s-%d-%lld\","
        "\"amount_cents\":%" PRId64 ",\"currency\":\"EUR\"}",
        g->tag, g->phase, g->seq, o.id, g->tag, g->phase, g->seq,
        o.total_cents);
}

static size_t
gen_cancel(bench_gen_t *g, char *buf, size_t len, char *key)
{
    bench_pool_t *p =
        g->paid.n > 0 && (g->pending.n == 0 || rng_below(&g->rng, 3) == 0)
            ? &g->paid
            : &g->pending;
    bench_order_t o = pool_take(p, &g->rng);

    snprintf(key, 24, "%" PRId64, o.key);
    g->counts[2]++;
    return (size_t)snprintf(
        buf, len,
        "{\"dedup_key\":\"cx:%s:%d:%lld\",\"type\":\"cancel\","
        "\"actor\":{\"role\":\"customer\",\"id\":\"cust-%d\"},"
        "\"order_id\":\"%s\",\"reason\":\"changed my mind\"}",
        g->tag, g->phase, g->seq, o.customer, o.id);
}

/* product_upsert of product seq + 1: the catalogue.sql row, by command */
static size_t
gen_upsert(bench_gen_t *g, char *buf, size_t len, char *key)
{
    long long id = g->seq + 1;

    snprintf(key, 24, "%lld", id);
    g->counts[4]++;
    return (size_t)snprintf(
        buf, len,
        "{\"dedup_key\":\"pu:%s:%d:%lld\",\"type\":\"product_upsert\","
        "\"actor\":{\"role\":\"admin\",\"id\":\"bench\"},"
        "\"product_id\":%lld,\"vendor_id\":\"vendor-%lld\","
        "\"name\":\"Bench product %lld\",\"sku\":\"BENCH-%lld\","
        "\"currency\":\"EUR\",\"kind\":\"simple\",\"price_cents\":%" PRId64
        ",\"stock\":%d}",
        g->tag, g->phase, g->seq, id, id % 100, id, id,
        bench_price((int64_t)id), BENCH_STREAM_STOCK);
}

/* a one-line checkout of one of products 1..g->products */
static size_t
gen_single(bench_gen_t *g, char *buf, size_t len, char *key)
{
    int64_t id = 1 + rng_below(&g->rng, g->products);
    int64_t qty = 1 + rng_below(&g->rng, 3);
    int customer = rng_below(&g->rng, 5000);

    snprintf(key, 24, "%" PRId64, id);
    g->counts[0]++;
    return (size_t)snprintf(
        buf, len,
        "{\"dedup_key\":\"co:%s:%d:%lld\",\"type\":\"checkout\","
        "\"actor\":{\"role\":\"customer\",\"id\":\"cust-%d\"},"
        "\"order_id\":\"%08" PRIx32 "-%04x-4000-8000-%012llx\","
        "\"customer_id\":\"cust-%d\",\"currency\":\"EUR\","
        "\"items\":[{\"product_id\":%" PRId64 ",\"quantity\":%" PRId64
        ",\"unit_price_cents\":%" PRId64 "}]}",
        g->tag, g->phase, g->seq, customer, g->tag_hash,
        (unsigned)g->phase & 0xffff, (unsigned long long)g->seq, customer, id,
        qty, bench_price(id));
}

/* The next message of the workload into buf (and its key). */
static size_t
gen_next(bench_gen_t *g, char *buf, size_t len, char *key)
{
    int r;
    size_t n;
    bench_recent_t *slot;

    if (g->mix != BENCH_MIX_DEFAULT) {
        n = g->mix == BENCH_MIX_CATALOGUE ? gen_upsert(g, buf, len, key)
                                          : gen_single(g, buf, len, key);
        g->seq++;
        return n;
    }
    r = rng_below(&g->rng, 100);

    if (r < 2 && g->nrecent > 0) {
        long long back = g->nrecent < BENCH_RECENT ? g->nrecent : BENCH_RECENT;
        bench_recent_t *old =
            &g->recent[(g->nrecent - 1 - rng_below(&g->rng, (int)back)) %
                       BENCH_RECENT];

        memcpy(buf, old->payload, old->len);
        memcpy(key, old->key, sizeof(old->key));
        g->counts[3]++;
        g->seq++;
        return old->len;
    }
    if (r >= 2 && r < 14 && g->pending.n > 0)
        n = gen_pay(g, buf, len, key);
    else if (r >= 14 && r < 20 && g->pending.n + g->paid.n > 0)
        n = gen_cancel(g, buf, len, key);
    else
        n = gen_checkout(g, buf, len, key);
    g->seq++;
    slot = &g->recent[g->nrecent % BENCH_RECENT];
    memcpy(slot->payload, buf, n);
    slot->len = n;
    memcpy(slot->key, key, sizeof(slot->key));
    g->nrecent++;
    return n;
}

static void
set_conf(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK)
        die("%s=%s: %s", k, v, errstr);
}

static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    long long *failed = opaque;

    (void)rk;
    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (*failed == 0)
            fprintf(stderr, "orderd_bench: delivery failed: %s\n",
                    rd_kafka_err2str(rkm->err));
        (*failed)++;
    }
}

static void
sleep_until_ns(int64_t t)
{
    int64_t left = t - mono_ns();

    if (left > 0) {
        struct timespec ts = {(time_t)(left / 1000000000LL),
                              (long)(left % 1000000000LL)};

        nanosleep(&ts, NULL);
    }
}

static int
cmd_produce(const bench_opts_t *o)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    char errstr[512], buf[BENCH_MSG_MAX], key[24];
    bench_gen_t g;
    long long failed = 0, i;
    int64_t t0, start_ms, end_ms;
    double elapsed;

    if (o->topic == NULL || o->count <= 0)
        die("produce needs --topic and --count");
    if (o->products <= 0)
        die("--products must be positive");
    memset(&g, 0, sizeof(g));
    g.rng = o->seed ^ ((uint64_t)o->phase << 32);
    g.tag = o->tag;
    g.tag_hash = fnv1a(o->tag);
    g.phase = o->phase;
    g.mix = o->mix;
    g.products = o->products;
    g.recent = calloc(BENCH_RECENT, sizeof(*g.recent));
    if (g.recent == NULL)
        die("out of memory");
    set_conf(conf, "bootstrap.servers", o->brokers);
    set_conf(conf, "client.id", "orderd-bench");
    set_conf(conf, "enable.idempotence", "true");
    /* paced, a checkout service's producer: librdkafka's default linger
     * (5 ms), inside the measured latency (a command's CreateTime is taken
     * when it is produced). With linger 0 every message was a request of
     * its own, and the broker, on the same two cores, spent a fifth of a
     * core more answering them. Preloading, as fast as it goes. */
    set_conf(conf, "linger.ms", o->rate > 0 ? "5" : "20");
    set_conf(conf, "queue.buffering.max.messages", "1000000");
    set_conf(conf, "queue.buffering.max.kbytes", "1048576");
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, &failed);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL)
        die("could not create the producer: %s", errstr);

    start_ms = now_ms();
    t0 = mono_ns();
    for (i = 0; i < o->count; i++) {
        size_t n = gen_next(&g, buf, sizeof(buf), key);
        rd_kafka_resp_err_t e;

        if (o->rate > 0)
            sleep_until_ns(t0 + (int64_t)((double)i * 1e9 / o->rate));
        for (;;) {
            e = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(o->topic),
                RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(buf, n),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                break;
            rd_kafka_poll(rk, 50);
        }
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            die("produce: %s", rd_kafka_err2str(e));
        rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("timed out waiting for deliveries");
    end_ms = now_ms();
    elapsed = (double)(mono_ns() - t0) / 1e9;
    rd_kafka_destroy(rk);
    printf("sent=%lld failed=%lld checkouts=%lld pays=%lld cancels=%lld "
           "resends=%lld upserts=%lld start_ms=%lld end_ms=%lld "
           "elapsed_s=%.3f rate=%.0f\n",
           o->count - failed, failed, g.counts[0], g.counts[1], g.counts[2],
           g.counts[3], g.counts[4], (long long)start_ms, (long long)end_ms,
           elapsed, elapsed > 0 ? (double)o->count / elapsed : 0.0);
    free(g.recent);
    free(g.pending.v);
    free(g.paid.v);
    return failed == 0 ? 0 : 1;
}

/* A consumer that reads whole topics by assignment (no group protocol). */
typedef struct bench_reader {
    rd_kafka_t *rk;
    int nparts;
    int64_t start[BENCH_MAX_PARTS];
    int64_t high[BENCH_MAX_PARTS];
} bench_reader_t;

static void
reader_open(bench_reader_t *r, const bench_opts_t *o, const char *topic,
            int64_t from_ms)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_topic_t *rkt;
    rd_kafka_resp_err_t e;
    char errstr[512], group[128];
    int i;

    memset(r, 0, sizeof(*r));
    snprintf(group, sizeof(group), "orderd-bench-reader-%lld",
             (long long)now_ms());
    set_conf(conf, "bootstrap.servers", o->brokers);
    set_conf(conf, "group.id", group);
    set_conf(conf, "enable.auto.commit", "false");
    set_conf(conf, "enable.partition.eof", "false");
    set_conf(conf, "fetch.wait.max.ms", "10");
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (r->rk == NULL)
        die("could not create the consumer: %s", errstr);
    rkt = rd_kafka_topic_new(r->rk, topic, NULL);
    e = rd_kafka_metadata(r->rk, 0, rkt, &md, 10000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 ||
        md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("no metadata for topic %s: %s", topic,
            rd_kafka_err2str(
                e != RD_KAFKA_RESP_ERR_NO_ERROR ? e : md->topics[0].err));
    r->nparts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (r->nparts > BENCH_MAX_PARTS)
        die("too many partitions");

    l = rd_kafka_topic_partition_list_new(r->nparts);
    for (i = 0; i < r->nparts; i++)
        rd_kafka_topic_partition_list_add(l, topic, i)->offset =
            from_ms > 0 ? from_ms : RD_KAFKA_OFFSET_BEGINNING;
    if (from_ms > 0) {
        e = rd_kafka_offsets_for_times(r->rk, l, 10000);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            die("offsets_for_times on %s: %s", topic, rd_kafka_err2str(e));
    }
    for (i = 0; i < r->nparts; i++) {
        int64_t lo, hi;

        e = rd_kafka_query_watermark_offsets(r->rk, topic, i, &lo, &hi, 10000);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            die("watermarks of %s/%d: %s", topic, i, rd_kafka_err2str(e));
        r->high[i] = hi;
        /* no message at or after from_ms: offset END (-1) */
        if (l->elems[i].offset < 0)
            l->elems[i].offset = from_ms > 0 ? hi : lo;
        r->start[i] = l->elems[i].offset;
    }
    e = rd_kafka_assign(r->rk, l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("assign %s: %s", topic, rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
}

static void
reader_close(bench_reader_t *r)
{
    rd_kafka_consumer_close(r->rk);
    rd_kafka_destroy(r->rk);
}

/* Per partition of the commands topic: CreateTime of each paced command. */
typedef struct bench_cmds {
    int64_t start[BENCH_MAX_PARTS];
    int64_t n[BENCH_MAX_PARTS];
    int64_t *ts[BENCH_MAX_PARTS];
} bench_cmds_t;

static int
reader_done(const bench_reader_t *r, const int64_t *next)
{
    for (int i = 0; i < r->nparts; i++)
        if (next[i] < r->high[i])
            return 0;
    return 1;
}

static void
read_commands(const bench_opts_t *o, bench_cmds_t *c)
{
    bench_reader_t r;
    int64_t next[BENCH_MAX_PARTS];
    int64_t deadline = now_ms() + (int64_t)o->timeout_s * 1000;
    int i;

    reader_open(&r, o, o->commands_topic, o->from_ms);
    for (i = 0; i < r.nparts; i++) {
        c->start[i] = r.start[i];
        c->n[i] = r.high[i] - r.start[i];
        c->ts[i] = calloc((size_t)(c->n[i] > 0 ? c->n[i] : 1), sizeof(int64_t));
        if (c->ts[i] == NULL)
            die("out of memory");
        next[i] = r.start[i];
    }
    while (!reader_done(&r, next)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r.rk, 200);

        if (now_ms() > deadline)
            die("timed out reading %s", o->commands_topic);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->partition < r.nparts) {
            int64_t k = m->offset - c->start[m->partition];

            if (k >= 0 && k < c->n[m->partition])
                c->ts[m->partition][k] = rd_kafka_message_timestamp(m, NULL);
            next[m->partition] = m->offset + 1;
        }
        rd_kafka_message_destroy(m);
    }
    reader_close(&r);
}

/* Whether the n bytes at p contain the string s (memmem is a GNU extension). */
static int
contains(const void *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    const char *b = p;

    for (size_t i = 0; i + k <= n; i++)
        if (b[i] == s[0] && memcmp(b + i, s, k) == 0)
            return 1;
    return 0;
}

static int
double_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double
percentile(const double *v, size_t n, double p)
{
    size_t k;

    if (n == 0)
        return 0.0;
    /* nearest rank */
    k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

/* Whether a command.result event is the result of a command of this type. */
static int
result_of_type(const rd_kafka_message_t *m, const char *type)
{
    json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
    const char *t = json_string_value(json_object_get(ev, "command_type"));
    int yes = t != NULL && strcmp(t, type) == 0;

    json_decref(ev);
    return yes;
}

/*
 * The latency over time, to tell a steady queue from periodic stalls: per
 * 100 ms of command time, the results, the worst latency and the worst
 * share of it after the event was built (its "at": commit and publish).
 */
#define SERIES_SLOT_MS 100
#define SERIES_SLOTS 36000

typedef struct series {
    int64_t t0;
    long n[SERIES_SLOTS];
    double worst[SERIES_SLOTS], worst_after[SERIES_SLOTS];
} series_t;

static series_t *
series_new(int64_t t0)
{
    series_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        die("out of memory");
    s->t0 = t0;
    return s;
}

/* The event's "at" (UTC, ISO 8601 with milliseconds) in epoch ms; 0 if
 * it has none. */
static int64_t
event_at_ms(const json_t *ev)
{
    const char *at = json_string_value(json_object_get(ev, "at"));
    struct tm tm;
    int ms = 0, used = 0;
    const char *rest;

    if (at == NULL)
        return 0;
    memset(&tm, 0, sizeof(tm));
    if (sscanf(at, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    rest = at + used;
    if (*rest == '.') {
        size_t digits = strspn(rest + 1, "0123456789");

        ms = atoi(rest + 1);
        for (; digits > 3; digits--)
            ms /= 10; /* microseconds and finer: to milliseconds */
    }
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static void
series_add(series_t *s, int64_t cmd_ms, double total, double after)
{
    int64_t slot;

    if (s->t0 == 0)
        s->t0 = cmd_ms;
    slot = (cmd_ms - s->t0) / SERIES_SLOT_MS;
    if (slot < 0 || slot >= SERIES_SLOTS)
        return;
    s->n[slot]++;
    if (total > s->worst[slot])
        s->worst[slot] = total;
    if (after > s->worst_after[slot])
        s->worst_after[slot] = after;
}

static void
series_write(series_t *s, const char *path)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        die("cannot write the series file");
    fprintf(f, "# t_s results worst_ms worst_after_built_ms\n");
    for (int i = 0; i < SERIES_SLOTS; i++)
        if (s->n[i] > 0)
            fprintf(f, "%.1f %ld %.0f %.0f\n",
                    (double)i * SERIES_SLOT_MS / 1000.0, s->n[i], s->worst[i],
                    s->worst_after[i]);
    fclose(f);
    free(s);
}

static int
cmd_measure(const bench_opts_t *o)
{
    bench_reader_t r;
    bench_cmds_t cmds;
    double *lat = NULL;
    size_t nlat = 0, caplat = 0;
    long long results = 0, events = 0;
    int64_t first = 0, last = 0;
    int64_t deadline = now_ms() + (int64_t)o->timeout_s * 1000;
    int latency = o->commands_topic != NULL, i;
    double sum = 0.0;
    series_t *series = o->series != NULL ? series_new(o->from_ms) : NULL;

    if (o->events_topic == NULL || o->expect <= 0)
        die("measure needs --events-topic and --expect");
    memset(&cmds, 0, sizeof(cmds));
    if (latency)
        read_commands(o, &cmds);
    reader_open(&r, o, o->events_topic, o->from_ms);
    while (results < o->expect) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r.rk, 200);
        int64_t ts;

        if (now_ms() > deadline) {
            fprintf(stderr,
                    "orderd_bench: timed out: %lld of %lld results on %s\n",
                    results, o->expect, o->events_topic);
            break;
        }
        if (m == NULL)
            continue;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR || m->payload == NULL ||
            !contains(m->payload, m->len, "\"command.result\"")) {
            events += m->err == RD_KAFKA_RESP_ERR_NO_ERROR;
            rd_kafka_message_destroy(m);
            continue;
        }
        events++;
        if (o->type != NULL && !result_of_type(m, o->type)) {
            rd_kafka_message_destroy(m);
            continue;
        }
        results++;
        ts = rd_kafka_message_timestamp(m, NULL);
        if (first == 0 || ts < first)
            first = ts;
        if (ts > last)
            last = ts;
        if (latency) {
            json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
            json_t *src = json_object_get(ev, "source");
            json_int_t p =
                json_integer_value(json_object_get(src, "partition"));
            json_int_t off = json_integer_value(json_object_get(src, "offset"));

            if (src != NULL && p >= 0 && p < BENCH_MAX_PARTS &&
                off >= cmds.start[p] && off < cmds.start[p] + cmds.n[p] &&
                cmds.ts[p][off - cmds.start[p]] > 0) {
                double d = (double)(ts - cmds.ts[p][off - cmds.start[p]]);

                if (nlat == caplat) {
                    caplat = caplat ? caplat * 2 : 4096;
                    lat = realloc(lat, caplat * sizeof(*lat));
                    if (lat == NULL)
                        die("out of memory");
                }
                lat[nlat++] = d;
                sum += d;
                if (series != NULL)
                    series_add(series, cmds.ts[p][off - cmds.start[p]], d,
                               (double)(ts - event_at_ms(ev)));
            }
            json_decref(ev);
        }
        rd_kafka_message_destroy(m);
    }
    reader_close(&r);
    printf("results=%lld events=%lld first_ms=%lld last_ms=%lld", results,
           events, (long long)first, (long long)last);
    if (latency) {
        qsort(lat, nlat, sizeof(*lat), double_cmp);
        printf(" matched=%zu p50_ms=%.0f p90_ms=%.0f p99_ms=%.0f max_ms=%.0f "
               "mean_ms=%.1f",
               nlat, percentile(lat, nlat, 50), percentile(lat, nlat, 90),
               percentile(lat, nlat, 99), nlat ? lat[nlat - 1] : 0.0,
               nlat ? sum / (double)nlat : 0.0);
    }
    printf("\n");
    if (series != NULL)
        series_write(series, o->series);
    for (i = 0; i < BENCH_MAX_PARTS; i++)
        free(cmds.ts[i]);
    free(lat);
    return results >= o->expect ? 0 : 1;
}

static int
cmd_delete_topics(const bench_opts_t *o, int ntopics, char **topics)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_DeleteTopic_t *del[64];
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    rd_kafka_t *rk;
    char errstr[512];
    int i, rc = 0;

    if (ntopics <= 0)
        return 0;
    if (ntopics > 64)
        die("at most 64 topics at once");
    set_conf(conf, "bootstrap.servers", o->brokers);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL)
        die("could not create the admin client: %s", errstr);
    for (i = 0; i < ntopics; i++)
        del[i] = rd_kafka_DeleteTopic_new(topics[i]);
    q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopics(rk, del, (size_t)ntopics, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (ev == NULL || rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "orderd_bench: could not delete topics: %s\n",
                ev ? rd_kafka_event_error_string(ev) : "timed out");
        rc = 1;
    }
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_DeleteTopic_destroy_array(del, (size_t)ntopics);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: orderd_bench produce --brokers B --topic T --count N "
            "[--rate R] [--tag TAG] [--phase P] [--seed S]\n"
            "                            [--mix default|catalogue|single] "
            "[--products P]\n"
            "       orderd_bench measure --brokers B --events-topic E "
            "--expect N [--commands-topic C --from-ms MS] [--timeout S]\n"
            "                            [--type COMMAND_TYPE]\n"
            "       orderd_bench delete-topics --brokers B TOPIC...\n");
    exit(2);
}

static long long
parse_ll(const char *s, const char *what)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s)
        die("%s must be an integer, got '%s'", what, s);
    return v;
}

int
main(int argc, char **argv)
{
    bench_opts_t o;
    const char *cmd;
    int i;

    memset(&o, 0, sizeof(o));
    o.brokers =
        getenv("ORDERD_BROKERS") ? getenv("ORDERD_BROKERS") : "127.0.0.1:29092";
    o.tag = "bench";
    o.seed = 42;
    o.timeout_s = 600;
    o.products = BENCH_PRODUCTS;
    if (argc < 2)
        usage();
    cmd = argv[1];
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (a[0] != '-' || a[1] != '-')
            break;
        if (v == NULL)
            die("%s needs a value", a);
        if (strcmp(a, "--brokers") == 0)
            o.brokers = v;
        else if (strcmp(a, "--topic") == 0)
            o.topic = v;
        else if (strcmp(a, "--events-topic") == 0)
            o.events_topic = v;
        else if (strcmp(a, "--commands-topic") == 0)
            o.commands_topic = v;
        else if (strcmp(a, "--tag") == 0)
            o.tag = v;
        else if (strcmp(a, "--count") == 0)
            o.count = parse_ll(v, a);
        else if (strcmp(a, "--rate") == 0)
            o.rate = strtod(v, NULL);
        else if (strcmp(a, "--phase") == 0)
            o.phase = (int)parse_ll(v, a);
        else if (strcmp(a, "--seed") == 0)
            o.seed = (unsigned long long)parse_ll(v, a);
        else if (strcmp(a, "--expect") == 0)
            o.expect = parse_ll(v, a);
        else if (strcmp(a, "--from-ms") == 0)
            o.from_ms = parse_ll(v, a);
        else if (strcmp(a, "--series") == 0)
            o.series = v;
        else if (strcmp(a, "--timeout") == 0)
            o.timeout_s = (int)parse_ll(v, a);
        else if (strcmp(a, "--type") == 0)
            o.type = v;
        else if (strcmp(a, "--products") == 0)
            o.products = (int)parse_ll(v, a);
        else if (strcmp(a, "--mix") == 0) {
            if (strcmp(v, "default") == 0)
                o.mix = BENCH_MIX_DEFAULT;
            else if (strcmp(v, "catalogue") == 0)
                o.mix = BENCH_MIX_CATALOGUE;
            else if (strcmp(v, "single") == 0)
                o.mix = BENCH_MIX_SINGLE;
            else
                die("--mix takes default, catalogue or single, not '%s'", v);
        } else
            die("unknown option %s", a);
        i++;
    }
    if (strcmp(cmd, "produce") == 0)
        return cmd_produce(&o);
    if (strcmp(cmd, "measure") == 0)
        return cmd_measure(&o);
    if (strcmp(cmd, "delete-topics") == 0)
        return cmd_delete_topics(&o, argc - i, argv + i);
    usage();
    return 2;
}
