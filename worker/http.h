/* http.h - the metrics (Prometheus text) and health endpoint */
#ifndef OD_HTTP_H
#include <stddef.h>
#define OD_HTTP_H

typedef struct http http_t;

/* Listens on "host:port"; NULL with err filled on failure. */
http_t *http_start(const char *addr, char *err, size_t errlen);
void http_stop(http_t *h);

#endif
