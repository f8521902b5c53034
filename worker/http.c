/* http.c - /metrics (Prometheus text format), /healthz and /readyz, and
 * the console's urls (console.c)
 *
 * libmicrohttpd (Debian's libmicrohttpd-dev) serves these on its own
 * thread; the handlers only read atomics (metrics.c, health.c), so they
 * never block the worker.
 *
 * DESIGN: a health check must answer while other clients misbehave, so
 * the listener is bounded three ways. It waits with epoll (poll where
 * there is none): select() cannot watch a descriptor past FD_SETSIZE
 * (1024), which capped libmicrohttpd's default limit near a thousand
 * connections, and a thousand idle half-sent requests took /healthz down
 * for as long as they stayed open. It holds at most max_connections at
 * once (the caller has made room for them in RLIMIT_NOFILE), and closes
 * a connection idle for timeout_s, so slots held by idle clients come
 * back. Each connection gets a small memory pool: the requests served
 * here are a request line and a few headers.
 */
#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "health.h"
#include "metrics.h"
#include "od.h"

struct http {
    struct MHD_Daemon *d;
    console_t *console;
};

static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url,
       const char *method, const char *version, const char *upload,
       size_t *upload_len, void **con_cls)
{
    char buf[4096];
    char *body = buf;
    size_t n;
    unsigned int status = MHD_HTTP_OK;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    http_t *h = cls;

    if (h->console != NULL && console_route(url))
        return console_answer(h->console, conn, url, method, con_cls);
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)con_cls;
    if (strcmp(method, "GET") != 0) {
        n = (size_t)snprintf(buf, sizeof(buf), "method not allowed\n");
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (strcmp(url, "/metrics") == 0) {
        body = metrics_render(&n);
        if (body == NULL) {
            body = buf;
            n = (size_t)snprintf(buf, sizeof(buf), "out of memory\n");
            status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        }
    } else if (strcmp(url, "/healthz") == 0) {
        n = (size_t)snprintf(buf, sizeof(buf), "ok\n");
    } else if (strcmp(url, "/readyz") == 0) {
        /* 503 with the reasons, one per line */
        if (!health_report(buf, sizeof(buf)))
            status = MHD_HTTP_SERVICE_UNAVAILABLE;
        n = strlen(buf);
    } else {
        n = (size_t)snprintf(buf, sizeof(buf), "not found\n");
        status = MHD_HTTP_NOT_FOUND;
    }
    if (body != buf)
        resp = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_FREE);
    else
        resp = MHD_create_response_from_buffer(n, buf, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) {
        if (body != buf)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

#define HTTP_CONNECTION_MEMORY 8192

http_t *
http_start(const char *addr, unsigned max_connections, unsigned timeout_s,
           console_t *console, char *err, size_t errlen)
{
    struct sockaddr_in sin;
    char host[64];
    const char *colon = strrchr(addr, ':');
    http_t *h;
    long port;

    if (colon == NULL || (size_t)(colon - addr) >= sizeof(host)) {
        od_err(err, errlen, "metrics address '%s' is not host:port", addr);
        return NULL;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    port = strtol(colon + 1, NULL, 10);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (port <= 0 || port > 65535 ||
        inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        od_err(err, errlen, "metrics address '%s' is not IPv4 host:port", addr);
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->console = console;
    /* MHD_USE_AUTO: epoll on Linux, else poll, select only as a last
     * resort; suspend/resume lets the console answer from its own thread
     * (console.c) */
    h->d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME, (uint16_t)port,
        NULL, NULL, answer, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
        MHD_OPTION_CONNECTION_LIMIT, max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, console_completed, NULL, MHD_OPTION_END);
    if (h->d == NULL) {
        od_err(err, errlen, "could not listen on %s", addr);
        free(h);
        return NULL;
    }
    return h;
}

void
http_stop(http_t *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
