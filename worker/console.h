/* console.h - the operator console on the metrics listener: pages, JSON
 * API, bearer-token check, and the thread that reads Postgres for them */
#ifndef OD_CONSOLE_H
#define OD_CONSOLE_H

#include <stddef.h>

#include <microhttpd.h>

#include "config.h"

typedef struct console console_t;

/*
 * Starts the console's reader thread with its own Postgres connection (as
 * cfg->pg, application_name orderd-console). token: the bearer token the
 * pages require ("" or NULL: none, only for a loopback listener); it is
 * copied and never logged. NULL with err filled on failure.
 */
console_t *console_new(const od_config_t *cfg, const char *token, char *err,
                       size_t errlen);
/*
 * Stops the reader thread: queued requests are answered 503 and resumed,
 * later ones get 503 at once. Call before http_stop (a suspended
 * connection must be resumed before its daemon stops), then
 * console_destroy after it.
 */
void console_quiesce(console_t *c);
void console_destroy(console_t *c);

/* 1 if url is one of the console's (the pages, /api/..., the assets) */
int console_route(const char *url);

/*
 * libmicrohttpd's access handler for a console url (http.c routes here).
 * Pages that read Postgres suspend the connection and hand the request to
 * the reader thread, which resumes it with the response ready: the
 * listener's thread never waits for a query, so /healthz and /readyz keep
 * answering. *con_cls holds the request's state; console_completed frees
 * it.
 */
enum MHD_Result console_answer(console_t *c, struct MHD_Connection *conn,
                               const char *url, const char *method,
                               void **con_cls);
/* MHD_OPTION_NOTIFY_COMPLETED: frees what console_answer kept */
void console_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                       enum MHD_RequestTerminationCode toe);

/*
 * Reads the token from cfg: --console-token-file's first line, else
 * --console-token (ORDERD_CONSOLE_TOKEN), into out ("" when neither).
 * Returns 0, or -1 with err (never quoting the file's content).
 */
int console_token_load(const od_config_t *cfg, char *out, size_t len, char *err,
                       size_t errlen) OD_MUSTCHECK;
/* 1 if the host of addr ("host:port") is a loopback address */
int console_addr_is_loopback(const char *addr);

/* Static assets (console_assets.c): the page shells, style and script. */
typedef struct console_asset {
    const char *path; /* "/", "/analytics", "/console.js", ... */
    const char *type; /* Content-Type */
    const char *body;
} console_asset_t;

/* The asset served at path, or NULL. */
const console_asset_t *console_asset(const char *path);

#endif
