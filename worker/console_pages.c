/* console_pages.c - the console's answers that read Postgres: the status
 * JSON behind the overview, an order as a receipt, the dead letters
 *
 * DESIGN: each builder runs inside the READ ONLY transaction the reader
 * thread opened (console.c) and reads through indexes only: offsets by
 * group, parked commands and dead letters by their (partial) indexes, an
 * order by its key, its history by (order_id, id), its commands' results
 * by the primary keys of processed_commands and outbox. What a page shows
 * from the database is escaped on the server (cbuf_html): a payload or a
 * name is text, never markup. Money is in minor units in the JSON and in
 * the currency's major units on the page; a time says whether it is an
 * event time (the producer's issued_at) or a processing time (when orderd
 * wrote the row), both in UTC.
 */
#include "console_pages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "../handlers/handler.h"
#include "../handlers/money.h"

#define CONSOLE_DLQ_ROWS 50
#define CONSOLE_PREVIEW_BYTES 512

void
console_preview(cbuf_t *b, const unsigned char *p, size_t len, size_t max)
{
    size_t n = len < max ? len : max, i = 0;
    char *seg = malloc(n + 1), *esc = malloc(OD_ESCAPE_SIZE(n));

    if (seg == NULL || esc == NULL) {
        b->oom = 1;
        goto out;
    }
    /* od_escape reads a C string: the pieces between NUL bytes */
    while (i < n) {
        size_t j = i;

        while (j < n && p[j] != 0)
            j++;
        memcpy(seg, p + i, j - i);
        seg[j - i] = '\0';
        cbuf_printf(b, "%s", od_escape(seg, esc, OD_ESCAPE_SIZE(n)));
        if (j < n)
            cbuf_printf(b, "\\x00");
        i = j + 1;
    }
    if (len > max)
        cbuf_printf(b, "...");
out:
    free(seg);
    free(esc);
}

void
console_iso_time(int64_t us, char *buf, size_t len)
{
    time_t s = (time_t)(us / 1000000);
    struct tm tm;

    gmtime_r(&s, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void
console_reply_json(console_reply_t *rep, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

    rep->type = "application/json";
    if (s == NULL)
        rep->body.oom = 1;
    else
        cbuf_printf(&rep->body, "%s", s);
    free(s);
    json_decref(j);
}

/* ---- pages ---- */

static void
page_head(cbuf_t *b, const char *title, const char *nav)
{
    cbuf_printf(b, "<!doctype html>\n<html lang=\"en\"><head>"
                   "<meta charset=\"utf-8\"><title>");
    cbuf_html(b, title);
    cbuf_printf(
        b,
        " - orderd</title><link rel=\"stylesheet\" "
        "href=\"/console.css\"><link rel=\"icon\" href=\"/favicon.svg\" "
        "type=\"image/svg+xml\"></head>\n<body><header><b>orderd</b> "
        "<nav><a href=\"/\"%s>overview</a> <a "
        "href=\"/analytics\"%s>analytics</a> <a href=\"/dlq\"%s>dead "
        "letters</a></nav></header>\n<main>\n",
        strcmp(nav, "/") == 0 ? " class=\"here\"" : "",
        strcmp(nav, "/analytics") == 0 ? " class=\"here\"" : "",
        strcmp(nav, "/dlq") == 0 ? " class=\"here\"" : "");
}

static void
page_foot(cbuf_t *b)
{
    cbuf_printf(b, "</main>\n</body></html>\n");
}

static void
money_cell(cbuf_t *b, json_int_t minor, const char *currency)
{
    char buf[64];

    cbuf_printf(b, "<td class=\"num\">");
    cbuf_html(b, money_format(minor, currency, buf, sizeof(buf)));
    cbuf_printf(b, "</td>");
}

static const char *
jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s ? s : "";
}

static json_int_t
jint(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

/* td with text, escaped ("" for an empty cell) */
static void
td(cbuf_t *b, const char *cls, const char *text)
{
    cbuf_printf(b, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "",
                cls ? "\"" : "");
    cbuf_html(b, text);
    cbuf_printf(b, "</td>");
}

/* times as 2026-11-29T05:21:59.533Z: every one is UTC, the suffix says so */
#define TS "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'"
#define ORDER_SELECT                                                           \
    "SELECT orderd_order_json(o.id) || jsonb_build_object("                    \
    " 'created_at', to_char(o.created_at AT TIME ZONE 'UTC', " TS "),"         \
    " 'updated_at', to_char(o.updated_at AT TIME ZONE 'UTC', " TS "),"         \
    " 'expires_at', to_char(o.expires_at AT TIME ZONE 'UTC', " TS "),"         \
    " 'payment_id', o.payment_id, 'paid_cents', o.paid_cents,"                 \
    " 'tracking_number', o.tracking_number, 'source', o.source,"               \
    " 'dedup_key', o.dedup_key,"                                               \
    " 'history', COALESCE((SELECT jsonb_agg(jsonb_build_object("               \
    "   'from', h.from_status, 'to', h.to_status, 'actor_role', h.actor_role," \
    "   'actor_id', h.actor_id, 'source', h.source, 'dedup_key', h.dedup_key," \
    "   'note', h.note,"                                                       \
    "   'at', to_char(h.created_at AT TIME ZONE 'UTC', " TS                    \
    ")) ORDER BY h.id)"                                                        \
    "  FROM order_status_history h WHERE h.order_id = o.id), '[]'),"           \
    " 'results', COALESCE((SELECT jsonb_agg(jsonb_build_object("               \
    "   'source', p.source, 'dedup_key', p.dedup_key,"                         \
    "   'command_type', p.command_type, 'outcome', p.outcome,"                 \
    "   'reason', p.reason, 'event_id', p.result_event_id,"                    \
    "   'source_topic', p.source_topic,"                                       \
    "   'source_partition', p.source_partition,"                               \
    "   'source_offset', p.source_offset,"                                     \
    "   'processed_at', to_char(p.created_at AT TIME ZONE 'UTC', " TS "),"     \
    "   'published_at', to_char(e.published_at AT TIME ZONE 'UTC', " TS "),"   \
    "   'event', convert_from(e.payload, 'UTF8')::jsonb) ORDER BY h.id)"       \
    "  FROM order_status_history h JOIN processed_commands p"                  \
    "   ON p.source = h.source AND p.dedup_key = h.dedup_key"                  \
    "  LEFT JOIN outbox e ON e.event_id = p.result_event_id"                   \
    "  WHERE h.order_id = o.id), '[]'))"                                       \
    " FROM orders o"

static const db_stmt_t stmt_order_by_id = {"console_order_by_id", ORDER_SELECT
                                           " WHERE o.id = $1::uuid"};
static const db_stmt_t stmt_order_by_number = {
    "console_order_by_number", ORDER_SELECT " WHERE o.number = $1"};

static void
order_html(cbuf_t *b, const json_t *o)
{
    const char *cur = jstr(o, "currency");
    json_t *v;
    size_t i;
    char title[160], buf[64];

    snprintf(title, sizeof(title), "Order %s", jstr(o, "number"));
    page_head(b, title, "");
    cbuf_printf(b, "<h1>Order <span id=\"order-number\">");
    cbuf_html(b, jstr(o, "number"));
    cbuf_printf(b,
                "</span> <span class=\"status status-%s\" "
                "id=\"order-status\">",
                jstr(o, "status"));
    cbuf_html(b, jstr(o, "status"));
    cbuf_printf(b, "</span></h1>\n<dl class=\"facts\">");
    cbuf_printf(b, "<dt>order id</dt><dd>");
    cbuf_html(b, jstr(o, "id"));
    cbuf_printf(b, "</dd><dt>customer</dt><dd>");
    cbuf_html(b, jstr(o, "customer_id"));
    cbuf_printf(b, "</dd><dt>placed (event time, UTC)</dt><dd>");
    cbuf_html(b, jstr(o, "created_at"));
    cbuf_printf(b, "</dd><dt>last change (processing time, UTC)</dt><dd>");
    cbuf_html(b, jstr(o, "updated_at"));
    cbuf_printf(b, "</dd><dt>expires (pending only)</dt><dd>");
    cbuf_html(b, jstr(o, "expires_at"));
    cbuf_printf(b, "</dd><dt>payment</dt><dd>");
    cbuf_html(b, json_is_string(json_object_get(o, "payment_id"))
                     ? jstr(o, "payment_id")
                     : "-");
    cbuf_printf(b, "</dd><dt>tracking</dt><dd>");
    cbuf_html(b, json_is_string(json_object_get(o, "tracking_number"))
                     ? jstr(o, "tracking_number")
                     : "-");
    cbuf_printf(b, "</dd><dt>source</dt><dd>");
    cbuf_html(b, jstr(o, "source"));
    cbuf_printf(b, "</dd></dl>\n");

    cbuf_printf(b, "<h2>Receipt</h2>\n<table id=\"items\"><thead><tr>"
                   "<th>item</th><th>sku</th><th "
                   "class=\"num\">qty</th><th class=\"num\">unit "
                   "price</th><th class=\"num\">line</th></tr></thead>"
                   "<tbody>\n");
    json_array_foreach(json_object_get(o, "items"), i, v)
    {
        json_int_t q = jint(v, "quantity"), u = jint(v, "unit_price_cents");
        char name[300];

        if (json_is_string(json_object_get(v, "variant_name")))
            snprintf(name, sizeof(name), "%s (%s)", jstr(v, "name"),
                     jstr(v, "variant_name"));
        else
            snprintf(name, sizeof(name), "%s", jstr(v, "name"));
        cbuf_printf(b, "<tr>");
        td(b, NULL, name);
        td(b, NULL, jstr(v, "sku"));
        cbuf_printf(b, "<td class=\"num\">%lld</td>", (long long)q);
        money_cell(b, u, cur);
        money_cell(b, q * u, cur);
        cbuf_printf(b, "</tr>\n");
    }
    cbuf_printf(b, "</tbody><tfoot><tr><td colspan=\"4\">subtotal</td>");
    money_cell(b, jint(o, "subtotal_cents"), cur);
    cbuf_printf(b, "</tr><tr><td colspan=\"4\">tax %lld.%02lld%%%s",
                (long long)(jint(o, "tax_rate_bps") / 100),
                (long long)(jint(o, "tax_rate_bps") % 100),
                json_is_string(json_object_get(o, "tax_country")) ? " (" : "");
    if (json_is_string(json_object_get(o, "tax_country"))) {
        cbuf_html(b, jstr(o, "tax_country"));
        cbuf_printf(b, ")");
    }
    cbuf_printf(b, "</td>");
    money_cell(b, jint(o, "tax_cents"), cur);
    cbuf_printf(b, "</tr><tr class=\"total\"><td colspan=\"4\">total</td>");
    money_cell(b, jint(o, "total_cents"), cur);
    cbuf_printf(b, "</tr>");
    if (json_is_integer(json_object_get(o, "paid_cents"))) {
        cbuf_printf(b, "<tr><td colspan=\"4\">paid</td>");
        money_cell(b, jint(o, "paid_cents"), cur);
        cbuf_printf(b, "</tr>");
    }
    cbuf_printf(b, "</tfoot></table>\n");

    cbuf_printf(b, "<h2>Status history</h2>\n<table id=\"history\"><thead><tr>"
                   "<th>change</th><th>actor</th><th>source</th><th>command"
                   "</th><th>note</th><th>recorded (processing time, UTC)"
                   "</th></tr></thead><tbody>\n");
    json_array_foreach(json_object_get(o, "history"), i, v)
    {
        char change[64], actor[300];

        snprintf(change, sizeof(change), "%s \xe2\x86\x92 %s",
                 json_is_string(json_object_get(v, "from")) ? jstr(v, "from")
                                                            : "(new)",
                 jstr(v, "to"));
        snprintf(actor, sizeof(actor), "%s %s", jstr(v, "actor_role"),
                 jstr(v, "actor_id"));
        cbuf_printf(b, "<tr>");
        td(b, NULL, change);
        td(b, NULL, actor);
        td(b, NULL, jstr(v, "source"));
        td(b, "key", jstr(v, "dedup_key"));
        td(b, NULL, jstr(v, "note"));
        td(b, NULL, jstr(v, "at"));
        cbuf_printf(b, "</tr>\n");
    }
    cbuf_printf(b, "</tbody></table>\n");

    cbuf_printf(b, "<h2>Result events of its commands</h2>\n<table "
                   "id=\"results\"><thead><tr><th>command</th><th>outcome"
                   "</th><th>read from</th><th>processed (UTC)</th><th>event"
                   "</th><th>published (UTC)</th></tr></thead><tbody>\n");
    json_array_foreach(json_object_get(o, "results"), i, v)
    {
        char pos[320], outcome[128];
        json_t *ev = json_object_get(v, "event");
        char *evs = ev ? json_dumps(ev, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;

        snprintf(pos, sizeof(pos), "%s [%lld] @%lld", jstr(v, "source_topic"),
                 (long long)jint(v, "source_partition"),
                 (long long)jint(v, "source_offset"));
        snprintf(outcome, sizeof(outcome), "%s%s%s", jstr(v, "outcome"),
                 json_is_string(json_object_get(v, "reason")) ? ": " : "",
                 jstr(v, "reason"));
        cbuf_printf(b, "<tr><td>");
        cbuf_html(b, jstr(v, "command_type"));
        cbuf_printf(b, "<br><span class=\"key\">");
        cbuf_html(b, jstr(v, "source"));
        cbuf_printf(b, " / ");
        cbuf_html(b, jstr(v, "dedup_key"));
        cbuf_printf(b, "</span></td>");
        td(b, NULL, outcome);
        td(b, NULL, pos);
        td(b, NULL, jstr(v, "processed_at"));
        cbuf_printf(b, "<td><details><summary>");
        cbuf_html(b, jstr(v, "event_id"));
        cbuf_printf(b, "</summary><pre>");
        cbuf_html(b, evs ? evs : "(purged from the outbox)");
        cbuf_printf(b, "</pre></details></td>");
        td(b, NULL,
           json_is_string(json_object_get(v, "published_at"))
               ? jstr(v, "published_at")
               : "not yet");
        cbuf_printf(b, "</tr>\n");
        free(evs);
    }
    cbuf_printf(b, "</tbody></table>\n");

    cbuf_printf(b, "<h2>What may happen next</h2>\n<table id=\"actions\">"
                   "<thead><tr><th>command</th><th>leads to</th><th>roles "
                   "that may send it</th></tr></thead><tbody>\n");
    json_array_foreach(json_object_get(o, "available_actions"), i, v)
    {
        json_t *r;
        size_t k;
        cbuf_t roles = {0};

        json_array_foreach(json_object_get(v, "roles"), k, r)
            cbuf_printf(&roles, "%s%s", k ? ", " : "", json_string_value(r));
        cbuf_printf(b, "<tr>");
        td(b, NULL, jstr(v, "command"));
        td(b, NULL, jstr(v, "to"));
        td(b, NULL, roles.p ? roles.p : "");
        cbuf_printf(b, "</tr>\n");
        free(roles.p);
    }
    if (json_array_size(json_object_get(o, "available_actions")) == 0) {
        cbuf_printf(b, "<tr><td colspan=\"3\">nothing: ");
        cbuf_html(b, jstr(o, "status"));
        cbuf_printf(b, " is a final status</td></tr>");
    }
    cbuf_printf(
        b,
        "</tbody></table>\n<p class=\"note\">A customer acts only "
        "on its own orders, a vendor only on orders whose every "
        "line is theirs. Totals are shown in %s major units (%s).</p>\n",
        cur, money_format(jint(o, "total_cents"), cur, buf, sizeof(buf)));
    page_foot(b);
}

od_status_t
console_order_page(db_t *db, const char *ref, int json, console_reply_t *rep,
                   char *err, size_t errlen)
{
    const char *params[1] = {ref};
    db_rows_t *rows = NULL;
    json_t *o;
    od_status_t st;

    st = db_run(db, od_is_uuid(ref) ? &stmt_order_by_id : &stmt_order_by_number,
                1, params, &rows, err, errlen);
    if (st != OD_OK)
        return st;
    if (db_nrows(rows) == 0) {
        rep->status = MHD_HTTP_NOT_FOUND;
        if (json) {
            console_reply_json(rep,
                               json_pack("{s:s}", "error", "no such order"));
        } else {
            rep->type = "text/html; charset=utf-8";
            page_head(&rep->body, "no such order", "");
            cbuf_printf(&rep->body, "<h1>No order ");
            cbuf_html(&rep->body, ref);
            cbuf_printf(&rep->body, "</h1>\n");
            page_foot(&rep->body);
        }
        db_rows_free(rows);
        return OD_OK;
    }
    o = json_loads(db_val(rows, 0, 0), 0, NULL);
    db_rows_free(rows);
    if (o == NULL) {
        od_err(err, errlen, "the order's JSON does not parse");
        return OD_FATAL;
    }
    /* what may happen next: the state machine table, the dispatch roles */
    json_object_set_new(o, "available_actions",
                        handler_available_actions(jstr(o, "status")));
    if (json) {
        console_reply_json(rep, o);
        return OD_OK;
    }
    rep->type = "text/html; charset=utf-8";
    order_html(&rep->body, o);
    json_decref(o);
    return OD_OK;
}

/* ---- dead letters ---- */

static const db_stmt_t stmt_dlq = {
    "console_dlq",
    "SELECT id, event_id,"
    " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " COALESCE(headers->>'orderd-error', ''),"
    " COALESCE(headers->>'orderd-source-topic', ''),"
    " COALESCE(headers->>'orderd-source-partition', ''),"
    " COALESCE(headers->>'orderd-source-offset', ''),"
    " key, length(payload), substring(payload FROM 1 FOR 513), topic,"
    " published_at IS NOT NULL"
    " FROM outbox WHERE headers ? 'orderd-error' ORDER BY id DESC LIMIT 50"};

od_status_t
console_dlq_page(db_t *db, int json, console_reply_t *rep, char *err,
                 size_t errlen)
{
    db_rows_t *rows = NULL;
    json_t *list = json_array();
    od_status_t st;
    cbuf_t *b = &rep->body;

    st = db_run(db, &stmt_dlq, 0, NULL, &rows, err, errlen);
    if (st != OD_OK) {
        json_decref(list);
        return st;
    }
    if (!json) {
        rep->type = "text/html; charset=utf-8";
        page_head(b, "dead letters", "/dlq");
        cbuf_printf(b,
                    "<h1>Dead letters</h1>\n<p class=\"note\">The latest "
                    "%d the dead-letter topic received from orderd, read from "
                    "the outbox, where they stay for --outbox-retention; "
                    "<code>orderd dlq</code> reads the topic itself. Payloads "
                    "are shown escaped, cut at %d bytes.</p>\n"
                    "<table id=\"dlq\"><thead><tr><th>written (processing "
                    "time, UTC)</th><th>error</th><th>read from</th><th>key"
                    "</th><th>payload</th><th>to</th></tr></thead><tbody>\n",
                    CONSOLE_DLQ_ROWS, CONSOLE_PREVIEW_BYTES);
    }
    for (int r = 0; r < db_nrows(rows); r++) {
        size_t klen = 0, plen = 0;
        unsigned char *key = db_bytea(rows, r, 7, &klen);
        unsigned char *pay = db_bytea(rows, r, 9, &plen);
        cbuf_t kp = {0}, pp = {0};
        char pos[320];

        console_preview(&kp, key ? key : (const unsigned char *)"", klen, 128);
        console_preview(&pp, pay ? pay : (const unsigned char *)"", plen,
                        CONSOLE_PREVIEW_BYTES);
        free(key);
        free(pay);
        snprintf(pos, sizeof(pos), "%s [%s] @%s", db_val(rows, r, 4),
                 db_val(rows, r, 5), db_val(rows, r, 6));
        if (json) {
            json_array_append_new(
                list,
                json_pack(
                    "{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, "
                    "s:s, s:b}",
                    "outbox_id", (json_int_t)db_int64(rows, r, 0), "event_id",
                    db_val(rows, r, 1), "written_at", db_val(rows, r, 2),
                    "error", db_val(rows, r, 3), "source_topic",
                    db_val(rows, r, 4), "source_partition", db_val(rows, r, 5),
                    "source_offset", db_val(rows, r, 6), "key",
                    kp.p ? kp.p : "", "payload_preview", pp.p ? pp.p : "",
                    "payload_bytes", (json_int_t)db_int64(rows, r, 8), "topic",
                    db_val(rows, r, 10), "published", db_bool(rows, r, 11)));
        } else {
            cbuf_printf(b, "<tr>");
            td(b, NULL, db_val(rows, r, 2));
            td(b, NULL, db_val(rows, r, 3));
            td(b, NULL, pos);
            td(b, "key", kp.p ? kp.p : "");
            cbuf_printf(b, "<td class=\"payload\"><code>");
            cbuf_html(b, pp.p ? pp.p : "");
            cbuf_printf(b,
                        "</code> <span class=\"note\">(%lld bytes)</span>"
                        "</td>",
                        (long long)db_int64(rows, r, 8));
            td(b, NULL,
               db_bool(rows, r, 11) ? db_val(rows, r, 10)
                                    : "not yet published");
            cbuf_printf(b, "</tr>\n");
        }
        if (kp.oom || pp.oom)
            b->oom = 1;
        free(kp.p);
        free(pp.p);
    }
    if (json) {
        console_reply_json(rep, json_pack("{s:o}", "dead_letters", list));
        list = NULL;
    } else {
        if (db_nrows(rows) == 0)
            cbuf_printf(b, "<tr><td colspan=\"6\">none in the outbox</td>"
                           "</tr>\n");
        cbuf_printf(b, "</tbody></table>\n");
        page_foot(b);
    }
    json_decref(list);
    db_rows_free(rows);
    return OD_OK;
}
