/* toxi.h - a small client of Toxiproxy's HTTP API (scripts/toxiproxy runs
 * the server) for the network fault tests: proxies between orderd and its
 * servers, and toxics that come and go on them (latency, reset_peer,
 * timeout, bandwidth, slicer, limit_data).
 *
 * DESIGN: plain HTTP/1.0 over a loopback socket, one request per
 * connection (the server closes it after the answer), so no HTTP library
 * is needed. Every call fails the test when the API does not answer as
 * documented, except toxi_remove, for which "not there" is fine. */
#ifndef OD_TOXI_H
#define OD_TOXI_H

#include "fault_model.h"

/* Sends method path with an optional JSON body to the API on port; returns
 * the HTTP status (0: no answer) and the start of the body in buf. */
static inline int
toxi_request(int port, const char *method, const char *path, const char *body,
             char *buf, size_t len)
{
    struct sockaddr_in sin;
    char req[2048];
    size_t n = 0;
    ssize_t r;
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = 0, reqlen;

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
    reqlen = snprintf(req, sizeof(req),
                      "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n%s",
                      method, path, body ? strlen(body) : 0, body ? body : "");
    if (reqlen <= 0 || (size_t)reqlen >= sizeof(req) ||
        write(fd, req, (size_t)reqlen) != reqlen) {
        close(fd);
        return 0;
    }
    while (n + 1 < len && (r = read(fd, buf + n, len - n - 1)) > 0)
        n += (size_t)r;
    buf[n] = '\0';
    close(fd);
    if (sscanf(buf, "HTTP/%*s %d", &status) != 1)
        return 0;
    return status;
}

/* A proxy called name listening on 127.0.0.1:listen_port, forwarding to
 * 127.0.0.1:upstream_port. */
static inline void
toxi_proxy(int api, const char *name, int listen_port, int upstream_port)
{
    char body[256], buf[2048];
    int status;

    snprintf(body, sizeof(body),
             "{\"name\":\"%s\",\"listen\":\"127.0.0.1:%d\","
             "\"upstream\":\"127.0.0.1:%d\",\"enabled\":true}",
             name, listen_port, upstream_port);
    status = toxi_request(api, "POST", "/proxies", body, buf, sizeof(buf));
    ck_assert_msg(status == 201, "toxiproxy: creating proxy %s: %d %s", name,
                  status, buf);
}

/*
 * Adds toxic `toxic` (its name) of `type` to proxy on stream "upstream"
 * (client to server) or "downstream", with attributes (a JSON object's
 * members, e.g. "\"latency\":100,\"jitter\":50").
 */
static inline void
toxi_add(int api, const char *proxy, const char *toxic, const char *type,
         const char *stream, const char *attributes)
{
    char body[512], path[128], buf[2048];
    int status;

    snprintf(path, sizeof(path), "/proxies/%s/toxics", proxy);
    snprintf(body, sizeof(body),
             "{\"name\":\"%s\",\"type\":\"%s\",\"stream\":\"%s\","
             "\"toxicity\":1.0,\"attributes\":{%s}}",
             toxic, type, stream, attributes);
    status = toxi_request(api, "POST", path, body, buf, sizeof(buf));
    ck_assert_msg(status == 200, "toxiproxy: adding %s to %s: %d %s", toxic,
                  proxy, status, buf);
}

/* Removes a toxic; one that is not there is no error. */
static inline void
toxi_remove(int api, const char *proxy, const char *toxic)
{
    char path[160], buf[1024];
    int status;

    snprintf(path, sizeof(path), "/proxies/%s/toxics/%s", proxy, toxic);
    status = toxi_request(api, "DELETE", path, NULL, buf, sizeof(buf));
    ck_assert_msg(status == 204 || status == 404,
                  "toxiproxy: removing %s from %s: %d %s", toxic, proxy, status,
                  buf);
}

/* Enables or disables a proxy: disabling closes every connection through
 * it and refuses new ones. */
static inline void
toxi_enable(int api, const char *proxy, int enabled)
{
    char path[128], body[64], buf[2048];
    int status;

    snprintf(path, sizeof(path), "/proxies/%s", proxy);
    snprintf(body, sizeof(body), "{\"enabled\":%s}",
             enabled ? "true" : "false");
    status = toxi_request(api, "POST", path, body, buf, sizeof(buf));
    ck_assert_msg(status == 200, "toxiproxy: %s %s: %d %s",
                  enabled ? "enabling" : "disabling", proxy, status, buf);
}

/* The kinds of fault the tests inject, in the order they report them. */
typedef enum {
    TOXI_LATENCY,
    TOXI_RESET,
    TOXI_BLACKHOLE,
    TOXI_BANDWIDTH,
    TOXI_SLICER,
    TOXI_LIMIT_DATA,
    TOXI_KINDS
} toxi_kind_t;

static const char *const toxi_kind_names[TOXI_KINDS] = {
    "latency", "reset_peer", "timeout", "bandwidth", "slicer", "limit_data"};

/*
 * Adds one toxic of kind on proxy, named `name`, with attributes drawn
 * from *seed (stream too): latency 20-300 ms with jitter, reset_peer
 * after 0-500 ms, timeout 0 (a black hole: data dropped, connections held
 * open, until removed), bandwidth 16-128 KB/s, slicer (average 16 bytes,
 * delay 0-2 ms), limit_data 1-64 KB (connections cut after that many
 * bytes: mid-pipeline, mid-COMMIT).
 */
static inline void
toxi_add_random(int api, const char *proxy, const char *name, toxi_kind_t kind,
                unsigned int *seed)
{
    const char *stream = rand_r(seed) % 2 ? "upstream" : "downstream";
    char attr[160];

    switch (kind) {
    case TOXI_LATENCY:
        snprintf(attr, sizeof(attr), "\"latency\":%u,\"jitter\":%u",
                 20 + rand_r(seed) % 280, rand_r(seed) % 100);
        break;
    case TOXI_RESET:
        snprintf(attr, sizeof(attr), "\"timeout\":%u", rand_r(seed) % 500);
        break;
    case TOXI_BLACKHOLE:
        snprintf(attr, sizeof(attr), "\"timeout\":0");
        break;
    case TOXI_BANDWIDTH:
        snprintf(attr, sizeof(attr), "\"rate\":%u", 16 + rand_r(seed) % 112);
        break;
    case TOXI_SLICER:
        snprintf(attr, sizeof(attr),
                 "\"average_size\":16,\"size_variation\":8,\"delay\":%u",
                 rand_r(seed) % 2000);
        break;
    default:
        snprintf(attr, sizeof(attr), "\"bytes\":%u",
                 1024 + rand_r(seed) % (63 * 1024));
        break;
    }
    toxi_add(api, proxy, name, toxi_kind_names[kind], stream, attr);
}

#endif
