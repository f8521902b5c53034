/* http.h - the metrics (Prometheus text) and health endpoint, and the
 * console on the same listener */
#ifndef OD_HTTP_H
#include <stddef.h>
#define OD_HTTP_H

#include "console.h"

typedef struct http http_t;

/* Listens on "host:port", holding at most max_connections (at least 1)
 * and closing a connection idle for timeout_s (at least 1) seconds; serves
 * the console's urls through console (NULL: none). NULL with err filled on
 * failure. */
http_t *http_start(const char *addr, unsigned max_connections,
                   unsigned timeout_s, console_t *console, char *err,
                   size_t errlen);
void http_stop(http_t *h);

#endif
