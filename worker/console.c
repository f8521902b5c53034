/* console.c - the operator console's HTTP side: routes, the bearer token,
 * and the reader thread that answers the pages which need Postgres
 *
 * DESIGN: the console shares the metrics listener and its limits
 * (connections, idle timeout, memory per connection: http.c), and must
 * never slow the health endpoints or the executors. libmicrohttpd serves
 * every connection from one thread, so a page that reads Postgres
 * suspends its connection and queues the request here; the reader thread,
 * with a connection of its own, answers one request at a time in a READ
 * ONLY transaction bounded by CONSOLE_STATEMENT_TIMEOUT_MS, then resumes
 * the connection, and libmicrohttpd sends the answer. A queue longer than
 * CONSOLE_MAX_QUEUE is refused with 503 rather than grown. The same
 * thread samples the outcome counters every CONSOLE_SAMPLE_US for the
 * throughput chart, so the history exists whether or not a page is open.
 * Static pages and assets are compiled in (console_assets.c): nothing is
 * built or fetched at run time.
 *
 * Access: on a loopback listener the pages are open, like /metrics. Bound
 * elsewhere, orderd refuses to start without a token (run.c), and every
 * console url then wants it: an Authorization: Bearer header, or the
 * orderd_console cookie, which a link with ?token= hands off (the answer
 * sets the cookie and redirects to the same page without the token, so it
 * leaves the address bar and the history). Comparisons take constant
 * time; the token is never logged or shown.
 */
#include "console.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "console_pages.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "report.h"

#define CONSOLE_STATEMENT_TIMEOUT_MS 2000
#define CONSOLE_MAX_QUEUE 64
#define CONSOLE_SAMPLE_US (5 * 1000 * 1000LL)
/* ten minutes of samples */
#define CONSOLE_NSAMPLES 120
#define CONSOLE_COOKIE "orderd_console"
#define CONSOLE_MAX_TOKEN 512

typedef enum console_kind {
    CK_STATUS = 1,
    CK_ORDER_HTML,
    CK_ORDER_JSON,
    CK_DLQ_HTML,
    CK_DLQ_JSON,
    CK_ANALYTICS
} console_kind_t;

/* One request handed to the reader thread (its connection's con_cls). */
typedef struct console_job {
    struct console_job *next;
    struct MHD_Connection *conn;
    console_kind_t kind;
    char ref[80];                              /* order id or number */
    char by[8], from[64], to[64], vendor[130]; /* analytics */
    int queued;                                /* 1 until answered */
    console_reply_t rep;
} console_job_t;

struct console {
    const od_config_t *cfg;
    char token[CONSOLE_MAX_TOKEN];
    char process[128];
    db_t *db;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    console_job_t *head, *tail;                 /* under lock */
    int nqueued;                                /* under lock */
    int stopping;                               /* under lock */
    console_sample_t samples[CONSOLE_NSAMPLES]; /* under lock, a ring */
    int nsamples, next_sample;                  /* under lock */
};

int
console_route(const char *url)
{
    return strcmp(url, "/") == 0 || strcmp(url, "/dlq") == 0 ||
           strcmp(url, "/analytics") == 0 || strncmp(url, "/orders/", 8) == 0 ||
           strncmp(url, "/api/", 5) == 0 || console_asset(url) != NULL;
}

int
console_addr_is_loopback(const char *addr)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    struct in_addr a;

    if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
        return 0;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (inet_pton(AF_INET, host, &a) != 1)
        return 0;
    return (ntohl(a.s_addr) >> 24) == 127;
}

int
console_token_load(const od_config_t *cfg, char *out, size_t len, char *err,
                   size_t errlen)
{
    out[0] = '\0';
    if (cfg->console_token_file[0] != '\0') {
        FILE *f = fopen(cfg->console_token_file, "r");
        size_t n;

        if (f == NULL) {
            od_err(err, errlen, "--console-token-file %s: %s",
                   cfg->console_token_file, strerror(errno));
            return -1;
        }
        if (fgets(out, (int)len, f) == NULL)
            out[0] = '\0';
        fclose(f);
        n = strcspn(out, "\r\n");
        out[n] = '\0';
        if (n == 0) {
            od_err(err, errlen,
                   "--console-token-file %s: the first line is "
                   "empty",
                   cfg->console_token_file);
            return -1;
        }
    } else {
        snprintf(out, len, "%s", cfg->console_token);
    }
    /* a token travels in a header, a cookie and a query string: printable
     * ASCII without the characters those would need to quote */
    for (const char *p = out; *p != '\0'; p++)
        if (*p <= 0x20 || *p >= 0x7f || strchr("\";,\\&=%+", *p) != NULL) {
            od_err(err, errlen,
                   "the console token may hold only printable ASCII without "
                   "spaces and \";,\\&=%%+ (not shown)");
            out[0] = '\0';
            return -1;
        }
    return 0;
}

/* constant-time equality of a presented token and ours */
static int
token_equal(const char *given, const char *ours)
{
    size_t gl = strlen(given), ol = strlen(ours);
    unsigned char diff = gl != ol;

    for (size_t i = 0; i < ol; i++)
        diff |= (unsigned char)(ours[i] ^ (i < gl ? given[i] : 0));
    return diff == 0;
}

static int
authorized(const console_t *c, struct MHD_Connection *conn)
{
    const char *h, *ck;

    if (c->token[0] == '\0')
        return 1;
    h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (h != NULL && strncmp(h, "Bearer ", 7) == 0 &&
        token_equal(h + 7, c->token))
        return 1;
    ck = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, CONSOLE_COOKIE);
    return ck != NULL && token_equal(ck, c->token);
}

/* Queues a response with the console's headers; takes body (malloc'ed or
 * NULL for an empty one). */
static enum MHD_Result
respond(struct MHD_Connection *conn, unsigned status, const char *type,
        char *body, size_t len)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(len, body ? body : (char *)"",
                                           body ? MHD_RESPMEM_MUST_FREE
                                                : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    /* no inline script or style, nothing from elsewhere */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; script-src 'self'; "
                            "style-src 'self'; img-src 'self'; "
                            "connect-src 'self'; base-uri 'none'; "
                            "form-action 'self'; frame-ancestors 'none'");
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result
respond_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    return respond(conn, status, "text/plain; charset=utf-8", strdup(text),
                   strlen(text));
}

/* 1 if url is a path of this host safe to redirect to: no scheme, no
 * other host ("//x"), nothing that would break a header line */
static int
plain_path(const char *url)
{
    return url[0] == '/' && url[1] != '/' &&
           strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789/_.-") == strlen(url);
}

/* ?token= hand-off: sets the cookie, redirects to the page without it */
static enum MHD_Result
hand_off(struct MHD_Connection *conn, const console_t *c, const char *url)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(0, (char *)"", MHD_RESPMEM_PERSISTENT);
    char cookie[CONSOLE_MAX_TOKEN + 96];
    enum MHD_Result ret;

    if (resp == NULL)
        return MHD_NO;
    snprintf(cookie, sizeof(cookie),
             CONSOLE_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict", c->token);
    MHD_add_response_header(resp, "Set-Cookie", cookie);
    MHD_add_response_header(resp, "Location", plain_path(url) ? url : "/");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    ret = MHD_queue_response(conn, MHD_HTTP_SEE_OTHER, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void
copy_arg(struct MHD_Connection *conn, const char *name, char *out, size_t len)
{
    const char *v =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);

    snprintf(out, len, "%s", v ? v : "");
}

/* 1 if s is a plausible order reference: a UUID or an order number */
static int
order_ref_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return 0;
    for (const char *p = s; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return 0;
    return 1;
}

/* Queues job for the reader thread and suspends its connection; 0, or -1
 * when the console is stopping or the queue is full. */
static int
enqueue(console_t *c, console_job_t *job)
{
    int ok;

    pthread_mutex_lock(&c->lock);
    ok = !c->stopping && c->nqueued < CONSOLE_MAX_QUEUE;
    if (ok) {
        job->queued = 1;
        /* suspended before the thread can see it, so its resume always
         * follows the suspend */
        MHD_suspend_connection(job->conn);
        if (c->tail != NULL)
            c->tail->next = job;
        else
            c->head = job;
        c->tail = job;
        c->nqueued++;
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&c->lock);
    return ok ? 0 : -1;
}

enum MHD_Result
console_answer(console_t *c, struct MHD_Connection *conn, const char *url,
               const char *method, void **con_cls)
{
    console_job_t *job = *con_cls;
    const console_asset_t *asset;
    const char *tok;

    if (job != NULL) {
        /* resumed: the reader thread has answered */
        char *body = job->rep.body.p;
        size_t len = job->rep.body.len;

        job->rep.body.p = NULL;
        if (job->rep.body.oom) {
            free(body);
            return respond_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                "out of memory\n");
        }
        return respond(conn, job->rep.status,
                       job->rep.type ? job->rep.type
                                     : "text/plain; charset=utf-8",
                       body, len);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return respond_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                            "the console is read-only: GET only\n");
    tok = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
    if (c->token[0] != '\0' && tok != NULL && token_equal(tok, c->token))
        return hand_off(conn, c, url);
    if (!authorized(c, conn))
        return respond_text(conn, MHD_HTTP_UNAUTHORIZED,
                            "the console wants its token: an Authorization: "
                            "Bearer header, or open a page once with "
                            "?token=TOKEN\n");
    asset = console_asset(url);
    if (asset != NULL)
        return respond(conn, MHD_HTTP_OK, asset->type, strdup(asset->body),
                       strlen(asset->body));
    job = calloc(1, sizeof(*job));
    if (job == NULL)
        return MHD_NO;
    job->conn = conn;
    if (strcmp(url, "/api/status") == 0) {
        job->kind = CK_STATUS;
    } else if (strcmp(url, "/dlq") == 0 || strcmp(url, "/api/dlq") == 0) {
        job->kind = url[1] == 'a' ? CK_DLQ_JSON : CK_DLQ_HTML;
    } else if (strcmp(url, "/api/analytics") == 0) {
        job->kind = CK_ANALYTICS;
        copy_arg(conn, "by", job->by, sizeof(job->by));
        copy_arg(conn, "from", job->from, sizeof(job->from));
        copy_arg(conn, "to", job->to, sizeof(job->to));
        copy_arg(conn, "vendor", job->vendor, sizeof(job->vendor));
        if (!report_by_valid(job->by)) {
            free(job);
            return respond_text(conn, MHD_HTTP_BAD_REQUEST,
                                "by must be day, week or month\n");
        }
    } else if (strncmp(url, "/orders/", 8) == 0 ||
               strncmp(url, "/api/orders/", 12) == 0) {
        const char *ref = url + (url[1] == 'a' ? 12 : 8);

        job->kind = url[1] == 'a' ? CK_ORDER_JSON : CK_ORDER_HTML;
        if (!order_ref_ok(ref)) {
            free(job);
            return respond_text(conn, MHD_HTTP_NOT_FOUND,
                                "not an order id or number\n");
        }
        snprintf(job->ref, sizeof(job->ref), "%s", ref);
    } else {
        free(job);
        return respond_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    }
    if (enqueue(c, job) < 0) {
        free(job);
        return respond_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                            "the console is busy or stopping: try again\n");
    }
    *con_cls = job;
    return MHD_YES;
}

void
console_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                  enum MHD_RequestTerminationCode toe)
{
    console_job_t *job = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (job == NULL)
        return;
    free(job->rep.body.p);
    free(job);
    *con_cls = NULL;
}

static void
sample(console_t *c)
{
    console_sample_t s;

    s.t_us = od_now_us();
    s.applied = atomic_load(&metrics.applied);
    s.rejected = atomic_load(&metrics.rejected);
    s.duplicate = atomic_load(&metrics.duplicate);
    s.deferred = atomic_load(&metrics.deferred);
    s.dlq = atomic_load(&metrics.dlq);
    pthread_mutex_lock(&c->lock);
    c->samples[c->next_sample] = s;
    c->next_sample = (c->next_sample + 1) % CONSOLE_NSAMPLES;
    if (c->nsamples < CONSOLE_NSAMPLES)
        c->nsamples++;
    pthread_mutex_unlock(&c->lock);
}

/* The samples oldest first, with one taken now at the end, so the chart
 * and the counters beside it agree. */
static int
samples_now(console_t *c, console_sample_t *out)
{
    int n;

    pthread_mutex_lock(&c->lock);
    n = c->nsamples;
    for (int i = 0; i < n; i++)
        out[i] = c->samples[(c->next_sample - n + i + CONSOLE_NSAMPLES) %
                            CONSOLE_NSAMPLES];
    pthread_mutex_unlock(&c->lock);
    out[n].t_us = od_now_us();
    out[n].applied = atomic_load(&metrics.applied);
    out[n].rejected = atomic_load(&metrics.rejected);
    out[n].duplicate = atomic_load(&metrics.duplicate);
    out[n].deferred = atomic_load(&metrics.deferred);
    out[n].dlq = atomic_load(&metrics.dlq);
    return n + 1;
}

static void
answer_error(console_job_t *job, unsigned status, const char *msg)
{
    free(job->rep.body.p);
    memset(&job->rep.body, 0, sizeof(job->rep.body));
    job->rep.status = status;
    job->rep.type = "text/plain; charset=utf-8";
    cbuf_printf(&job->rep.body, "%s\n", msg);
}

/* Runs one job on the console's connection. */
static void
run_job(console_t *c, console_job_t *job)
{
    char err[512], begin[160];
    od_status_t st;

    job->rep.status = MHD_HTTP_OK;
    if (!db_ok(c->db) && db_reconnect(c->db, err, sizeof(err)) != OD_OK) {
        answer_error(job, MHD_HTTP_SERVICE_UNAVAILABLE,
                     "postgres cannot be reached: the console shows nothing "
                     "until it can");
        log_debug("console: %s", err);
        return;
    }
    if (job->kind == CK_ANALYTICS) {
        report_opts_t o = {job->by, job->from, job->to, job->vendor};
        json_t *rep = NULL;
        char *s;

        st = report_build(c->db, &o, CONSOLE_STATEMENT_TIMEOUT_MS * 5, &rep,
                          err, sizeof(err));
        if (st == OD_REJECT) {
            answer_error(job, MHD_HTTP_BAD_REQUEST, err);
            return;
        }
        if (st != OD_OK)
            goto fail;
        s = json_dumps(rep, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(rep);
        job->rep.type = "application/json";
        if (s == NULL)
            job->rep.body.oom = 1;
        else
            cbuf_printf(&job->rep.body, "%s", s);
        free(s);
        return;
    }
    snprintf(begin, sizeof(begin),
             "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"
             " SET LOCAL statement_timeout = %d; SET LOCAL TimeZone = 'UTC'",
             CONSOLE_STATEMENT_TIMEOUT_MS);
    st = db_exec(c->db, begin, err, sizeof(err));
    if (st != OD_OK)
        goto fail;
    switch (job->kind) {
    case CK_STATUS: {
        console_sample_t s[CONSOLE_NSAMPLES + 1];
        console_status_in_t in = {c->cfg, c->process, s, 0};

        in.nsamples = samples_now(c, s);
        st = console_status_json(c->db, &in, &job->rep, err, sizeof(err));
        break;
    }
    case CK_ORDER_HTML:
    case CK_ORDER_JSON:
        st = console_order_page(c->db, job->ref, job->kind == CK_ORDER_JSON,
                                &job->rep, err, sizeof(err));
        break;
    case CK_DLQ_HTML:
    case CK_DLQ_JSON:
        st = console_dlq_page(c->db, job->kind == CK_DLQ_JSON, &job->rep, err,
                              sizeof(err));
        break;
    default:
        st = OD_FATAL;
        od_err(err, sizeof(err), "unknown request");
    }
    if (st != OD_OK) {
        char ignored[256];

        if (db_ok(c->db) &&
            db_rollback(c->db, ignored, sizeof(ignored)) != OD_OK)
            log_debug("console: rollback failed: %s", ignored);
        goto fail;
    }
    if (db_commit(c->db, err, sizeof(err)) != OD_OK)
        goto fail;
    return;
fail:
    log_warn("console: %s", err);
    answer_error(job, MHD_HTTP_SERVICE_UNAVAILABLE,
                 "the console could not read postgres (see the worker's "
                 "log)");
}

static void *
console_main(void *arg)
{
    console_t *c = arg;
    int64_t next_sample = 0;

    pthread_mutex_lock(&c->lock);
    while (!c->stopping) {
        console_job_t *job = c->head;
        struct timespec until;

        if (od_mono_us() >= next_sample) {
            pthread_mutex_unlock(&c->lock);
            sample(c);
            next_sample = od_mono_us() + CONSOLE_SAMPLE_US;
            pthread_mutex_lock(&c->lock);
            continue;
        }
        if (job == NULL) {
            /* until the next sample, or a request */
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&c->cond, &c->lock, &until);
            continue;
        }
        c->head = job->next;
        if (c->head == NULL)
            c->tail = NULL;
        c->nqueued--;
        pthread_mutex_unlock(&c->lock);
        run_job(c, job);
        pthread_mutex_lock(&c->lock);
        job->queued = 0;
        MHD_resume_connection(job->conn);
    }
    /* stopping: whatever is queued is answered, unanswered */
    while (c->head != NULL) {
        console_job_t *job = c->head;

        c->head = job->next;
        answer_error(job, MHD_HTTP_SERVICE_UNAVAILABLE, "orderd is stopping");
        job->queued = 0;
        MHD_resume_connection(job->conn);
    }
    c->tail = NULL;
    c->nqueued = 0;
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

console_t *
console_new(const od_config_t *cfg, const char *token, char *err, size_t errlen)
{
    console_t *c = calloc(1, sizeof(*c));
    char host[64];

    if (c == NULL) {
        od_err(err, errlen, "out of memory");
        return NULL;
    }
    c->cfg = cfg;
    snprintf(c->token, sizeof(c->token), "%s", token ? token : "");
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(c->process, sizeof(c->process), "%s/%ld", host, (long)getpid());
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->db = db_new(cfg->pg, "orderd-console");
    if (c->db == NULL) {
        od_err(err, errlen, "out of memory");
        goto fail;
    }
    if (pthread_create(&c->thread, NULL, console_main, c) != 0) {
        od_err(err, errlen, "could not start the console thread");
        goto fail;
    }
    return c;
fail:
    db_destroy(c->db);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return NULL;
}

void
console_quiesce(console_t *c)
{
    int was;

    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    was = c->stopping;
    c->stopping = 1;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    if (!was)
        pthread_join(c->thread, NULL);
}

void
console_destroy(console_t *c)
{
    if (c == NULL)
        return;
    console_quiesce(c);
    db_destroy(c->db);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    /* wipe the token before the memory goes back */
    memset(c->token, 0, sizeof(c->token));
    free(c);
}
