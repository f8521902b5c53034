/* fault_model.h - shared by the fault tests 03xx: a stream of mixed
 * commands with an independent model of its effects (after 0300), its
 * verification, and helpers for private servers (scripts/pg, scripts/kafka),
 * free ports and the worker's /metrics endpoint.
 *
 * Every function is static inline so a test may use any subset. */
#ifndef OD_FAULT_MODEL_H
#define OD_FAULT_MODEL_H

#include "../integration/ktest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FM_PRODUCTS 24
#define FM_PRICE 250
#define FM_START_STOCK 400

typedef enum { FM_NONE, FM_PENDING, FM_PAID, FM_CANCELLED } fm_state_t;

typedef struct fm_order {
    int product;
    int qty;
    fm_state_t state;
} fm_order_t;

typedef struct fmodel {
    ktest_t *k;
    int64_t stock[FM_PRODUCTS + 1];
    fm_order_t *orders;
    int norders, cap;
    char **sent;   /* every valid message, for producer retries */
    int *sent_key; /* ... and the product it was keyed by */
    int nsent;     /* distinct valid dedup keys */
    int nretries;  /* producer retries (same key, same body) */
    int npoison;
    int nmessages; /* messages that must get a result (valid + retries) */
    int seq;
    unsigned int seed;
} fmodel_t;

static inline int
fm_rnd(fmodel_t *m, int n)
{
    return (int)(rand_r(&m->seed) % (unsigned int)n);
}

static inline void
fm_order_uuid(int i, char out[37])
{
    snprintf(out, 37, "00000000-0000-4000-8000-%012d", i);
}

/* cap: the most messages the whole test will generate */
static inline void
fm_init(fmodel_t *m, ktest_t *k, int cap, unsigned int seed)
{
    memset(m, 0, sizeof(*m));
    m->k = k;
    m->cap = cap + FM_PRODUCTS + 1;
    m->seed = seed;
    m->orders = calloc((size_t)m->cap, sizeof(*m->orders));
    m->sent = calloc((size_t)m->cap, sizeof(*m->sent));
    m->sent_key = calloc((size_t)m->cap, sizeof(*m->sent_key));
    ck_assert(m->orders && m->sent && m->sent_key);
}

static inline void
fm_free(fmodel_t *m)
{
    for (int i = 0; i < m->nsent; i++)
        free(m->sent[i]);
    free(m->sent);
    free(m->sent_key);
    free(m->orders);
    memset(m, 0, sizeof(*m));
}

static inline void
fm_send_valid(fmodel_t *m, int product, const char *msg)
{
    char key[16];

    ck_assert_int_lt(m->nsent, m->cap);
    snprintf(key, sizeof(key), "%d", product);
    ktest_send(m->k, key, msg);
    m->sent_key[m->nsent] = product;
    m->sent[m->nsent++] = strdup(msg);
    m->nmessages++;
}

static inline void
fm_checkout(fmodel_t *m, int product)
{
    char msg[512], id[37];
    int qty = 1 + fm_rnd(m, 3);
    int o = m->norders++;

    fm_order_uuid(o, id);
    m->orders[o].product = product;
    m->orders[o].qty = qty;
    snprintf(msg, sizeof(msg),
             "{\"dedup_key\":\"co-%d\",\"type\":\"checkout\","
             "\"actor\":{\"role\":\"system\",\"id\":\"shop\"},"
             "\"order_id\":\"%s\",\"customer_id\":\"c%d\","
             "\"currency\":\"EUR\",\"items\":[{\"product_id\":%d,"
             "\"quantity\":%d}]}",
             o, id, o % 97, product, qty);
    fm_send_valid(m, product, msg);
    /* the model: applied only if the stock is there */
    if (m->stock[product] >= qty) {
        m->stock[product] -= qty;
        m->orders[o].state = FM_PENDING;
    }
}

static inline void
fm_pay_or_cancel(fmodel_t *m)
{
    char msg[512], id[37];
    int o = fm_rnd(m, m->norders);
    fm_order_t *mo = &m->orders[o];

    fm_order_uuid(o, id);
    if (fm_rnd(m, 3) > 0) {
        snprintf(msg, sizeof(msg),
                 "{\"dedup_key\":\"pay-%d\",\"type\":\"pay\","
                 "\"actor\":{\"role\":\"payment\",\"id\":\"gw\"},"
                 "\"order_id\":\"%s\",\"payment_id\":\"pi-%d\","
                 "\"amount_cents\":%d,\"currency\":\"EUR\"}",
                 m->seq++, id, o, FM_PRICE * mo->qty);
        if (mo->state == FM_PENDING)
            mo->state = FM_PAID;
    } else {
        snprintf(msg, sizeof(msg),
                 "{\"dedup_key\":\"cancel-%d\",\"type\":\"cancel\","
                 "\"actor\":{\"role\":\"system\",\"id\":\"shop\"},"
                 "\"order_id\":\"%s\"}",
                 m->seq++, id);
        if (mo->state == FM_PENDING || mo->state == FM_PAID) {
            mo->state = FM_CANCELLED;
            m->stock[mo->product] += mo->qty;
        }
    }
    /* same key as the checkout: the partition keeps them in order */
    fm_send_valid(m, mo->product, msg);
}

static inline int
fm_total(const fmodel_t *m)
{
    return m->nmessages + m->npoison;
}

/* Produces messages until the stream holds `upto` messages in all (the
 * catalogue first, on the first call) and waits for the broker's acks. */
static inline void
fm_generate(fmodel_t *m, int upto)
{
    char msg[512];

    if (m->nsent == 0) {
        for (int p = 1; p <= FM_PRODUCTS; p++) {
            snprintf(msg, sizeof(msg),
                     "{\"dedup_key\":\"prod-%d\",\"type\":\"product_upsert\","
                     "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},"
                     "\"product_id\":%d,\"vendor_id\":\"v\",\"name\":\"P%d\","
                     "\"sku\":\"SKU-%d\",\"currency\":\"EUR\",\"kind\":"
                     "\"simple\",\"price_cents\":%d,\"stock\":%d}",
                     p, p, p, p, FM_PRICE, FM_START_STOCK);
            fm_send_valid(m, p, msg);
            m->stock[p] = FM_START_STOCK;
        }
    }
    while (fm_total(m) < upto) {
        int r = fm_rnd(m, 100);

        if (r < 55 || m->norders == 0) {
            fm_checkout(m, 1 + fm_rnd(m, FM_PRODUCTS));
        } else if (r < 93) {
            fm_pay_or_cancel(m);
        } else if (r < 98) {
            /* a producer retry of an earlier message: same key, same body */
            int i = fm_rnd(m, m->nsent);
            char key[16];

            snprintf(key, sizeof(key), "%d", m->sent_key[i]);
            ktest_send(m->k, key, m->sent[i]);
            m->nmessages++;
            m->nretries++;
        } else {
            ktest_send(m->k, "1", "\x01garbage that is not json");
            m->npoison++;
        }
    }
    ktest_flush(m->k);
}

/* Messages the workers have taken off the topic (committed offsets). */
static inline int64_t
fm_done(ktest_t *k)
{
    return itest_int(k->db, "SELECT COALESCE(sum(next_offset), 0) FROM "
                            "consumer_offsets");
}

/* Polls until the committed offsets reach `at` messages. */
static inline void
fm_wait_done(ktest_t *k, int64_t at, int timeout_s)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT (COALESCE(sum(next_offset), 0) >= %lld)::int"
             " FROM consumer_offsets",
             (long long)at);
    ck_assert_msg(ktest_wait_sql(k, sql, 1, timeout_s) == 1,
                  "no progress past %lld of %lld messages",
                  (long long)fm_done(k), (long long)at);
}

/* Waits until the whole stream is applied and published. */
static inline void
fm_wait_drained(fmodel_t *m, int timeout_s)
{
    ck_assert_int_eq(ktest_wait_sql(m->k,
                                    "SELECT COALESCE(sum(next_offset), 0)"
                                    " FROM consumer_offsets",
                                    fm_total(m), timeout_s),
                     fm_total(m));
    ck_assert_int_eq(ktest_wait_sql(m->k,
                                    "SELECT count(*) FROM outbox WHERE "
                                    "published_at IS NULL",
                                    0, timeout_s),
                     0);
}

/*
 * The database against the model: one result per message and none twice,
 * poison in the DLQ, every dedup key once, stock and order statuses equal
 * to the model, stock = ledger, `orderd check` clean.
 */
static inline void
fm_verify_db(fmodel_t *m)
{
    static const char *names[] = {"", "pending", "paid", "cancelled"};
    const char *check[] = {"check", NULL};
    ktest_t *k = m->k;
    char sql[512], *out = NULL;

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM outbox WHERE topic = '%s' AND"
             " convert_from(payload, 'UTF8')::jsonb->>'type' ="
             " 'command.result'",
             k->events);
    ck_assert_int_eq(itest_int(k->db, sql), m->nmessages);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE topic = '%s'"
             " AND convert_from(payload, 'UTF8')::jsonb->>'type' ="
             " 'command.result' GROUP BY"
             " convert_from(payload, 'UTF8')::jsonb->'source'"
             " HAVING count(*) > 1) x",
             k->events);
    ck_assert_int_eq(itest_int(k->db, sql), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox WHERE topic = '%s'",
             k->dlq);
    ck_assert_int_eq(itest_int(k->db, sql), m->npoison);
    ck_assert_int_eq(itest_int(k->db, "SELECT count(*) FROM "
                                      "processed_commands"),
                     m->nsent);
    /* producer retries are duplicates, never applied twice */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM outbox WHERE topic = '%s' AND"
             " convert_from(payload, 'UTF8')::jsonb->>'outcome' ="
             " 'duplicate'",
             k->events);
    ck_assert_int_eq(itest_int(k->db, sql), m->nretries);

    for (int p = 1; p <= FM_PRODUCTS; p++) {
        snprintf(sql, sizeof(sql), "SELECT stock FROM products WHERE id = %d",
                 p);
        ck_assert_msg(itest_int(k->db, sql) == m->stock[p],
                      "product %d: stock %lld, model %lld", p,
                      (long long)itest_int(k->db, sql), (long long)m->stock[p]);
    }
    for (int o = 0; o < m->norders; o++) {
        char id[37], got[32];

        fm_order_uuid(o, id);
        snprintf(sql, sizeof(sql), "SELECT status FROM orders WHERE id = '%s'",
                 id);
        itest_text(k->db, sql, got, sizeof(got));
        ck_assert_msg(strcmp(got, names[m->orders[o].state]) == 0,
                      "order %d: status '%s', model '%s'", o, got,
                      names[m->orders[o].state]);
    }
    itest_assert_stock_matches_ledger(k->db);
    ck_assert_msg(ktest_cli(k, check, &out) == 0, "orderd check: %s", out);
    free(out);
}

/* Every event row of the outbox (results and domain events) arrived on the
 * events topic (read by the harness's consumer, deduplicated by event_id).
 * Results and domain events sit on different partitions, so the reader
 * keeps reading until it has seen every id or the timeout passes. */
static inline void
fm_verify_events(fmodel_t *m, int timeout_s)
{
    ktest_t *k = m->k;
    char sql[512], err[512];
    db_rows_t *rows = NULL;
    const char **ids;
    int n, missing;

    ck_assert_int_eq(ktest_wait_results(k, m->nmessages, timeout_s),
                     m->nmessages);
    snprintf(sql, sizeof(sql), "SELECT event_id FROM outbox WHERE topic = '%s'",
             k->events);
    ck_assert_msg(db_query(k->db, sql, 0, NULL, &rows, err, sizeof(err)) ==
                      OD_OK,
                  "%s", err);
    n = db_nrows(rows);
    ids = calloc((size_t)n + 1, sizeof(*ids));
    ck_assert_ptr_nonnull(ids);
    for (int i = 0; i < n; i++)
        ids[i] = db_val(rows, i, 0);
    missing = ktest_wait_seen(k, ids, timeout_s);
    free(ids);
    db_rows_free(rows);
    ck_assert_msg(missing == 0, "%d events of the outbox never reached %s",
                  missing, k->events);
}

/* --- processes, ports, private servers ------------------------------- */

/* 1 while the child is alive (not reaped, not exited). */
static inline int
fm_alive(pid_t pid)
{
    int status;

    return waitpid(pid, &status, WNOHANG) == 0;
}

/* A TCP port nobody listens on now (and, with pair, port+1 and port+2
 * too: a broker's controller and SASL listeners). */
static inline int
fm_free_port(int pair)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        int fds[3] = {-1, -1, -1}, port = 0, ok = 1;

        for (int i = 0; i < (pair ? 3 : 1); i++) {
            struct sockaddr_in sin;
            socklen_t len = sizeof(sin);

            fds[i] = socket(AF_INET, SOCK_STREAM, 0);
            memset(&sin, 0, sizeof(sin));
            sin.sin_family = AF_INET;
            sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            sin.sin_port = htons((uint16_t)(i == 0 ? 0 : port + i));
            if (fds[i] < 0 ||
                bind(fds[i], (struct sockaddr *)&sin, sizeof(sin)) != 0) {
                ok = 0;
                break;
            }
            getsockname(fds[i], (struct sockaddr *)&sin, &len);
            if (i == 0)
                port = ntohs(sin.sin_port);
        }
        for (int i = 0; i < 3; i++)
            if (fds[i] >= 0)
                close(fds[i]);
        if (ok && port > 0 && port < 65000)
            return port;
    }
    ck_abort_msg("no free port");
    return -1;
}

/* The repository root, from the schema directory every test is built
 * with. */
static inline const char *
fm_repo(void)
{
    static char root[1024];
    char *slash;

    snprintf(root, sizeof(root), "%s", ORDERD_SCHEMA_DIR);
    slash = strrchr(root, '/');
    if (slash != NULL)
        *slash = '\0';
    return root;
}

/* Runs `scripts/<script> <verb>` with the private env; output appended to
 * <run_dir>/script.log. Returns the exit status. */
static inline int
fm_script(const char *run_dir, const char *port_var, int port,
          const char *script, const char *verb)
{
    char cmd[2048];
    int rc;

    /* scripts/test exports its own ports (the controller's too): every
     * port the script uses is set here */
    snprintf(cmd, sizeof(cmd),
             "ORDERD_RUN_DIR='%s' %s=%d ORDERD_KAFKA_CONTROLLER_PORT=%d"
             " ORDERD_KAFKA_SASL_PORT=%d"
             " '%s/scripts/%s' %s >>'%s/script.log' 2>&1 </dev/null",
             run_dir, port_var, port, port + 1, port + 2, fm_repo(), script,
             verb, run_dir);
    rc = system(cmd);
    if (rc != 0) {
        char tail[1200];

        snprintf(tail, sizeof(tail), "tail -n 20 '%s/script.log' >&2", run_dir);
        if (system(tail) != 0)
            fprintf(stderr, "(no script log)\n");
    }
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* Points the harness at the private cluster of run_dir, as `scripts/pg env`
 * describes it: ORDERD_TEST_PG (runtime role), ORDERD_TEST_MIGRATE_PG
 * (owner) and PGPASSFILE (their passwords) for this process and the
 * workers it starts. */
static inline void
fm_pg_use(const char *run_dir, int port)
{
    static const char *const map[][2] = {
        {"PGPASSFILE", "PGPASSFILE"},
        {"ORDERD_PG", "ORDERD_TEST_PG"},
        {"ORDERD_MIGRATE_PG", "ORDERD_TEST_MIGRATE_PG"}};
    char cmd[2048], line[2048], prefix[64];
    int found = 0;
    FILE *f;

    snprintf(cmd, sizeof(cmd),
             "ORDERD_RUN_DIR='%s' ORDERD_PG_PORT=%d '%s/scripts/pg' env",
             run_dir, port, fm_repo());
    f = popen(cmd, "r");
    ck_assert_msg(f != NULL, "popen: %s", strerror(errno));
    /* lines of the form: export NAME='value' */
    while (fgets(line, sizeof(line), f) != NULL) {
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
            size_t n = (size_t)snprintf(prefix, sizeof(prefix), "export %s='",
                                        map[i][0]);
            char *end;

            if (strncmp(line, prefix, n) != 0 ||
                (end = strrchr(line + n, '\'')) == NULL)
                continue;
            *end = '\0';
            setenv(map[i][1], line + n, 1);
            found++;
        }
    }
    ck_assert_msg(pclose(f) == 0 && found == 3,
                  "scripts/pg env for %s gave %d of 3 variables", run_dir,
                  found);
}

/* GET path from 127.0.0.1:port; returns the HTTP status (0 when nothing
 * answers) and the body in buf. */
static inline int
fm_http_get(int port, const char *path, char *buf, size_t len)
{
    struct sockaddr_in sin;
    char req[256];
    size_t n = 0;
    ssize_t r;
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = 0;
    const char *body;

    buf[0] = '\0';
    if (fd < 0)
        return 0;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return 0;
    }
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
             path);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return 0;
    }
    while (n + 1 < len && (r = read(fd, buf + n, len - n - 1)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fd);
    if (sscanf(buf, "HTTP/%*s %d", &status) != 1)
        return 0;
    body = strstr(buf, "\r\n\r\n");
    if (body != NULL)
        memmove(buf, body + 4, strlen(body + 4) + 1);
    return status;
}

/* One metric's value from /metrics (-1 when absent or unreachable). */
static inline long long
fm_metric(int port, const char *name)
{
    char buf[65536], pat[160];
    const char *p;

    if (fm_http_get(port, "/metrics", buf, sizeof(buf)) != 200)
        return -1;
    snprintf(pat, sizeof(pat), "\n%s ", name);
    p = strstr(buf, pat);
    return p != NULL ? atoll(p + strlen(pat)) : -1;
}

/* Polls /readyz until it answers `status` (200 or 503) or timeout;
 * returns 1 when it did. */
static inline int
fm_wait_ready(int port, int status, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;
    char buf[512];

    for (;;) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        if (fm_http_get(port, "/readyz", buf, sizeof(buf)) == status)
            return 1;
        if (od_mono_us() >= end)
            return 0;
        nanosleep(&ts, NULL); /* polling interval */
    }
}

#endif
