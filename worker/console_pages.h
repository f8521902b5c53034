/* console_pages.h - what the console's reader thread builds: the status
 * JSON, an order's receipt, the dead letters, the analytics (internal to
 * console.c and console_pages.c) */
#ifndef OD_CONSOLE_PAGES_H
#define OD_CONSOLE_PAGES_H

#include <stddef.h>
#include <stdint.h>

#include "cbuf.h"
#include "config.h"
#include "db.h"
#include "od.h"

/* One request's answer: the reader thread fills it. */
typedef struct console_reply {
    unsigned status;
    const char *type; /* static Content-Type */
    cbuf_t body;
} console_reply_t;

/* One throughput sample: the outcome counters at t_us (wall clock). */
typedef struct console_sample {
    int64_t t_us;
    long long applied, rejected, duplicate, deferred, dlq;
} console_sample_t;

/* What the status page shows besides the database's answers. */
typedef struct console_status_in {
    const od_config_t *cfg;
    const char *process; /* "host/pid" */
    const console_sample_t *samples;
    int nsamples;
} console_status_in_t;

/* Every builder runs inside a READ ONLY transaction the caller opened on
 * db and fills rep; OD_OK, or the db_run status with err (the caller
 * answers 503). */
od_status_t console_status_json(db_t *db, const console_status_in_t *in,
                                console_reply_t *rep, char *err,
                                size_t errlen) OD_MUSTCHECK;
/* ref: an order id (UUID) or number; json: 1 for /api/orders/REF */
od_status_t console_order_page(db_t *db, const char *ref, int json,
                               console_reply_t *rep, char *err,
                               size_t errlen) OD_MUSTCHECK;
od_status_t console_dlq_page(db_t *db, int json, console_reply_t *rep,
                             char *err, size_t errlen) OD_MUSTCHECK;

/* Bytes as one line of printable text: od_escape's escapes, a NUL byte as
 * \x00; at most max input bytes, "..." after when cut. */
void console_preview(cbuf_t *b, const unsigned char *p, size_t len, size_t max);
/* us since the epoch as UTC ISO 8601, to the second */
void console_iso_time(int64_t us, char *buf, size_t len);
/* j (taken) as the reply's JSON body */
void console_reply_json(console_reply_t *rep, json_t *j);

#endif
