/* batch.c - the batch driver: parse, what to load, decide in order
 *
 * DESIGN: every message ends in exactly one of: a dead-letter copy
 * (poison), or a dedup row (source, dedup_key) plus one command.result
 * event. Deciding happens in memory against the snapshot the load filled:
 * a key seen before (loaded, or decided earlier in this batch) is a
 * duplicate or dedup_key_reused and changes nothing; otherwise the
 * source's and the handler's roles are checked and the handler's pure
 * decide function runs after a snapshot mark. A rejection rolls the
 * snapshot back to the mark, exactly as the per-command savepoint did. A
 * command naming an order that does not exist is parked; a checkout that
 * creates an order releases the commands parked for it (loaded, or parked
 * earlier in the batch), which are decided right after it. What was
 * decided is written by batch_write.c, set-based; an error the snapshot
 * could not predict rolls the whole batch back and the executor applies
 * it again one command at a time (see attempt.c). Parsing and what to
 * load are batch_prepare.c's.
 */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

void
batch_init(batch_t *b)
{
    memset(b, 0, sizeof(*b));
    snap_init(&b->snap);
}

static void
vec_clear(snap_vec_t *v)
{
    for (int i = 0; i < v->n; i++)
        free(v->v[i]);
    free(v->v);
    memset(v, 0, sizeof(*v));
}

void
batch_free(batch_t *b)
{
    snap_free(&b->snap);
    dedup_rows_free(&b->dedup);
    dedup_index_free(&b->dedup_ix);
    deferred_rows_free(&b->parked);
    outbox_rows_free(&b->events);
    vec_clear(&b->held_orders);
    vec_clear(&b->held_products);
    memset(b, 0, sizeof(*b));
}

/* --- deciding -------------------------------------------------------- */

static dedup_row_t *
dedup_find(batch_t *b, const char *source, const char *key)
{
    return dedup_index_find(&b->dedup_ix, &b->dedup, source, key);
}

/* 1 when the row was written for this very Kafka message (the same
 * topic, partition and offset): a redelivery or a replay's re-read, whose
 * body is the one fingerprinted then, so a replay need not fingerprint it
 * again. The scheduler's expiries have no position (-1), nor do rows from
 * before positions were kept. */
static int
same_message(const dedup_row_t *d, const batch_msg_t *m)
{
    return d->has_position && m->src.topic != NULL && m->src.offset >= 0 &&
           m->src.partition >= 0 && d->partition == m->src.partition &&
           d->offset == m->src.offset && strcmp(d->topic, m->src.topic) == 0;
}

int
batch_quiet_duplicates(batch_t *b, batch_msg_t *msgs, int n)
{
    for (int i = 0; i < n; i++) {
        batch_msg_t *m = &msgs[i];
        const dedup_row_t *d;

        if (m->skip)
            continue;
        if (!m->quiet || m->resumed)
            return 0;
        if (m->parsed == CMD_PARSE_POISON)
            continue;
        d = dedup_find(b, m->env.source, m->env.dedup_key);
        if (m->scanned && (d == NULL || d->is_new || !same_message(d, m))) {
            /* not the message its row was written for (a producer's
             * re-send, or no row): the scan is not trusted, the parse
             * decides, and if its key is another one the load did not
             * look it up */
            char key[sizeof(m->env.dedup_key)];

            memcpy(key, m->env.dedup_key, sizeof(key));
            batch_msg_parse_identity(m);
            if (m->parsed == CMD_PARSE_POISON)
                continue;
            if (strcmp(key, m->env.dedup_key) != 0)
                return 0;
        }
        if (d == NULL || d->is_new ||
            (d->reason != NULL && strcmp(d->reason, "internal_error") == 0))
            return 0;
    }
    return 1;
}

/* Adds an outbox row; takes ownership of payload and headers. */
static int
add_event(batch_t *b, const char *topic, const void *key, size_t key_len,
          char *payload, size_t len, int hex, char *headers,
          const char *dedup_key, const char *event_id)
{
    outbox_row_t *e = snap_vec_new(&b->events, sizeof(*e));

    if (e == NULL || (key_len > 0 && (e->key = malloc(key_len)) == NULL)) {
        if (e != NULL)
            b->events.n--, free(e);
        free(payload);
        free(headers);
        return -1;
    }
    if (event_id != NULL)
        snprintf(e->event_id, sizeof(e->event_id), "%s", event_id);
    else
        od_uuid_v4(e->event_id);
    e->topic = topic;
    if (key_len > 0)
        memcpy(e->key, key, key_len);
    e->key_len = key_len;
    e->payload = payload;
    e->len = len;
    e->hex = hex;
    e->headers = headers;
    snprintf(e->dedup_key, sizeof(e->dedup_key), "%s",
             dedup_key != NULL ? dedup_key : "");
    return 0;
}

/* " (trace <traceparent>)" for the log lines about a message that carried
 * one, else "": an operator follows a command from its producer's trace */
static const char *
trace_note(const batch_msg_t *m, char *buf, size_t len)
{
    if (m->src.traceparent == NULL || m->src.traceparent[0] == '\0')
        return "";
    snprintf(buf, len, " (trace %s)", m->src.traceparent);
    return buf;
}

/* The headers of the events a message causes: its trace context, when
 * it carried one (caller frees; NULL when none). */
static char *
trace_headers(const batch_msg_t *m)
{
    json_t *h;
    char *text;

    if (m->src.traceparent == NULL || m->src.traceparent[0] == '\0')
        return NULL;
    h = json_pack("{s:s}", "traceparent", m->src.traceparent);
    text = h ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    return text;
}

/* A copy of the message for the dead-letter topic, with the contract's
 * headers. */
static int
add_dlq(batch_t *b, const apply_config_t *cfg, const batch_msg_t *m,
        const char *why, const char *dedup_key)
{
    char ewhy[OD_ESCAPE_SIZE(256)], etopic[OD_ESCAPE_SIZE(256)];
    /* why quotes the input (a parse error): escaped, it is valid UTF-8
     * without control bytes, as a header and the outbox's jsonb need */
    json_t *h = json_pack(
        "{s:s, s:s, s:I, s:I}", "orderd-error",
        od_escape(why, ewhy, sizeof(ewhy)), "orderd-source-topic",
        od_escape(m->src.topic ? m->src.topic : "", etopic, sizeof(etopic)),
        "orderd-source-partition", (json_int_t)m->src.partition,
        "orderd-source-offset", (json_int_t)m->src.offset);
    if (h != NULL && m->src.traceparent != NULL && m->src.traceparent[0])
        json_object_set_new(h, "traceparent", json_string(m->src.traceparent));
    char *headers = h ? json_dumps(h, JSON_COMPACT) : NULL;
    char *copy = malloc(m->len + 1);

    json_decref(h);
    if (copy == NULL || headers == NULL) {
        free(copy);
        free(headers);
        return -1;
    }
    memcpy(copy, m->payload, m->len);
    copy[m->len] = '\0';
    return add_event(b, cfg->dlq_topic, m->src.key, m->src.key_len, copy,
                     m->len, 1, headers, dedup_key, NULL);
}

/* The extra events a result carries (order.expired, stock.low,
 * payment.refund_required), as outbox rows. */
static int
add_extra_events(batch_t *b, const apply_config_t *cfg, const batch_msg_t *m,
                 const cmd_result_t *res)
{
    size_t i;
    json_t *e;

    json_array_foreach(res->events, i, e)
    {
        json_t *payload = json_deep_copy(json_object_get(e, "payload"));
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *key = json_string_value(json_object_get(e, "key"));
        char event_id[37], at[40];
        char *text;

        if (payload == NULL)
            return -1;
        od_uuid_v4(event_id);
        json_object_set_new(payload, "event_id", json_string(event_id));
        json_object_set_new(payload, "type", json_string(type));
        if (json_object_get(payload, "at") == NULL)
            json_object_set_new(
                payload, "at",
                json_string(od_format_time(od_now_us(), at, sizeof(at))));
        text = json_dumps(payload, JSON_COMPACT);
        json_decref(payload);
        if (text == NULL ||
            add_event(b, cfg->domain.events_topic, key, key ? strlen(key) : 0,
                      text, strlen(text), 0, trace_headers(m), m->env.dedup_key,
                      event_id) < 0)
            return -1;
    }
    return 0;
}

/* The order the result concerns, as the snapshot has it now. */
static void
attach_order(batch_t *b, const cmd_env_t *env, cmd_result_t *res)
{
    const char *oid = res->order_id[0] ? res->order_id : env->order_id;
    snap_order_t *o;

    if (res->order_id[0] == '\0' && env->order_id[0] != '\0')
        snprintf(res->order_id, sizeof(res->order_id), "%s", env->order_id);
    if (oid[0] == '\0' || res->outcome == OUTCOME_DEFERRED ||
        res->order != NULL)
        return;
    o = snap_order(&b->snap, oid);
    if (o != NULL)
        res->order = snap_order_json(o);
}

static int
add_result(batch_t *b, const apply_config_t *cfg, batch_msg_t *m,
           cmd_result_t *res, const char *event_id)
{
    char *text;
    const char *key;

    attach_order(b, &m->env, res);
    text = apply_result_text(&m->env, res, event_id, &m->src);
    if (text == NULL)
        return -1;
    key = res->order_id[0] ? res->order_id : m->env.dedup_key;
    snprintf(m->rep.event_id, sizeof(m->rep.event_id), "%s", event_id);
    return add_event(b, cfg->domain.events_topic, key, strlen(key), text,
                     strlen(text), 0, trace_headers(m), m->env.dedup_key,
                     event_id);
}

/* 1 when m's body is the one its identity's row was written for. A
 * replay's identity-only parse leaves the fingerprint uncomputed; the
 * row's position then answers for a message re-read where it was first
 * read (all but a producer's re-sends), and only the rest are
 * fingerprinted. A fully parsed message is always compared by its
 * fingerprint. */
static int
same_body(const dedup_row_t *d, batch_msg_t *m)
{
    const unsigned char *fp;

    if (!m->env.fingerprinted && same_message(d, m))
        return 1;
    fp = command_env_fingerprint(&m->env);
    return fp != NULL && memcmp(d->fingerprint, fp, 32) == 0;
}

/* The key was seen before: duplicate (same body) or dedup_key_reused. */
static int
decide_known(batch_t *b, const apply_config_t *cfg, batch_msg_t *m,
             const dedup_row_t *d)
{
    cmd_result_t res;
    char event_id[37];
    int rc = 0;

    cmd_result_init(&res);
    if (same_body(d, m)) {
        res.outcome = OUTCOME_DUPLICATE;
        res.details = json_pack("{s:s, s:s?, s:s}", "original_outcome",
                                d->outcome, "original_reason", d->reason,
                                "original_event_id", d->event_id);
    } else {
        cmd_reject(&res, "dedup_key_reused",
                   json_pack("{s:s}", "original_event_id", d->event_id));
    }
    m->rep.outcome = res.outcome;
    m->rep.reason = res.reason;
    /* a replay re-reading what it applied before stays quiet: the first
     * result (duplicate or dedup_key_reused alike) exists already */
    if (!m->quiet) {
        od_uuid_v4(event_id);
        rc = add_result(b, cfg, m, &res, event_id);
    }
    cmd_result_reset(&res);
    return rc;
}

/* The dedup row of a decided command: a new one, a parked command's
 * (resumed) or the internal_error refusal it takes over (retake, may be
 * NULL) updated. */
static void
record_dedup(batch_t *b, batch_msg_t *m, const cmd_result_t *res,
             const char *event_id, dedup_row_t *retake, int *fail)
{
    dedup_row_t *d =
        m->resumed ? dedup_find(b, m->env.source, m->env.dedup_key) : retake;

    if (d == NULL) {
        d = snap_vec_new(&b->dedup, sizeof(*d));
        if (d == NULL) {
            *fail = 1;
            return;
        }
        snprintf(d->source, sizeof(d->source), "%s", m->env.source);
        snprintf(d->key, sizeof(d->key), "%s", m->env.dedup_key);
        memcpy(d->fingerprint, command_env_fingerprint(&m->env), 32);
        /* a parked command's row exists (outcome deferred): updated */
        d->is_new = !m->resumed;
        d->resolved = m->resumed;
        if (m->resumed)
            b->nresolved++;
    } else if (!d->is_new && !d->resolved) {
        /* loaded (its redelivery is in the batch too): updated */
        d->resolved = 1;
        b->nresolved++;
    }
    if (d->owns_reason)
        free((char *)d->reason);
    d->owns_reason = 0;
    d->outcome = cmd_outcome_name(res->outcome);
    d->reason = res->reason;
    snprintf(d->event_id, sizeof(d->event_id), "%s", event_id);
    if (d->is_new && !m->resumed) {
        d->command_type =
            m->env.handler
                ? m->env.handler->type
                : json_string_value(json_object_get(m->env.root, "type"));
        snprintf(d->order_id, sizeof(d->order_id), "%s", res->order_id);
        snprintf(d->topic, sizeof(d->topic), "%s",
                 m->src.topic ? m->src.topic : "");
        d->partition = m->src.partition;
        d->offset = m->src.offset;
    }
}

static int decide_one(batch_t *b, const apply_config_t *cfg, batch_msg_t *m,
                      char *err, size_t errlen);

/* Applies, in arrival order, the commands parked for order_id: loaded
 * from the shelf, or parked earlier in this batch. */
static int
release_parked(batch_t *b, const apply_config_t *cfg, const char *order_id,
               int *released, char *err, size_t errlen)
{
    for (int i = 0; i < b->parked.n; i++) {
        deferred_row_t *p = b->parked.v[i];
        const od_source_t *known;
        od_source_t gone = {"", NULL, ROLE_ALL};
        batch_msg_t pm;
        int rc;

        if (p->taken || strcmp(p->order_id, order_id) != 0)
            continue;
        p->taken = 1;
        memset(&pm, 0, sizeof(pm));
        known = sources_by_name(cfg->sources, p->source);
        if (known == NULL) {
            /* a source no longer configured: authorised when parked */
            snprintf(gone.name, sizeof(gone.name), "%s", p->source);
            known = &gone;
        }
        pm.src.source = known;
        pm.src.topic = p->topic;
        pm.src.partition = p->partition;
        pm.src.offset = p->offset;
        pm.src.ts_us = p->ts_us;
        pm.src.key = order_id;
        pm.src.key_len = strlen(order_id);
        pm.payload = p->payload;
        pm.len = p->len;
        pm.resumed = 1;
        pm.parked_id = p->id;
        batch_msg_prepare(&pm, cfg);
        if (pm.parsed != CMD_PARSE_OK) {
            /* it parsed when it was parked: the code changed under it */
            od_err(err, errlen, "parked command %s no longer parses: %s",
                   p->key, pm.perr);
            batch_msg_free(&pm);
            return -1;
        }
        rc = decide_one(b, cfg, &pm, err, errlen);
        batch_msg_free(&pm);
        if (rc < 0)
            return -1;
        (*released)++;
    }
    return 0;
}

/* Parks m: its order is not known yet. */
static int
park(batch_t *b, const batch_msg_t *m)
{
    deferred_row_t *p = snap_vec_new(&b->parked, sizeof(*p));

    if (p == NULL || (p->payload = malloc(m->len ? m->len : 1)) == NULL)
        return -1;
    snprintf(p->order_id, sizeof(p->order_id), "%s", m->env.order_id);
    snprintf(p->source, sizeof(p->source), "%s", m->env.source);
    snprintf(p->key, sizeof(p->key), "%s", m->env.dedup_key);
    memcpy(p->payload, m->payload, m->len);
    p->len = m->len;
    p->ts_us = m->src.ts_us;
    snprintf(p->topic, sizeof(p->topic), "%s",
             m->src.topic ? m->src.topic : "");
    p->partition = m->src.partition;
    p->offset = m->src.offset;
    return 0;
}

/* The handler's decision, or internal_error. -1 (err set) only when the
 * worker must halt. */
static int
run_handler(batch_t *b, const apply_config_t *cfg, batch_msg_t *m,
            cmd_result_t *res, char *err, size_t errlen)
{
    decide_ctx_t dctx = {&b->snap, &m->env, &cfg->domain};
    od_status_t st = m->env.handler->decide(&dctx, m->env.cmd, res);
    char tbuf[80];

    if (st == OD_OK && !b->snap.missing)
        return 0;
    b->snap.missing = 0;
    slog_error(m->src.topic, m->src.partition, m->src.offset,
               "internal error deciding %s '%s': the batch's rows do not "
               "hold what it needs%s",
               m->env.handler->type, m->env.dedup_key,
               trace_note(m, tbuf, sizeof(tbuf)));
    if (cfg->halt_on_internal_error) {
        od_err(err, errlen, "internal error deciding %s '%s'",
               m->env.handler->type, m->env.dedup_key);
        return -1;
    }
    cmd_result_reset(res);
    cmd_reject(res, "internal_error", NULL);
    m->rep.internal_error = 1;
    return 0;
}

static int
decide_one(batch_t *b, const apply_config_t *cfg, batch_msg_t *m, char *err,
           size_t errlen)
{
    cmd_result_t res;
    snap_mark_t mark;
    char event_id[37];
    dedup_row_t *known, *retake = NULL;
    char tbuf[80];
    int fail = 0;

    memset(&m->rep, 0, sizeof(m->rep));
    if (m->parsed == CMD_PARSE_POISON) {
        m->rep.outcome = OUTCOME_REJECTED;
        m->rep.reason = "poison";
        /* a quiet replay re-reads poison that has its DLQ copy already */
        if (m->quiet)
            return 0;
        slog_warn(m->src.topic, m->src.partition, m->src.offset,
                  "poison message to the dead-letter topic: %s%s", m->perr,
                  trace_note(m, tbuf, sizeof(tbuf)));
        m->rep.dlq = 1;
        return add_dlq(b, cfg, m, m->perr, NULL) < 0 ? -2 : 0;
    }
    snprintf(m->rep.dedup_key, sizeof(m->rep.dedup_key), "%s",
             m->env.dedup_key);
    m->rep.type = m->env.handler ? m->env.handler->type : NULL;
    known = m->resumed ? NULL : dedup_find(b, m->env.source, m->env.dedup_key);
    /* a command refused internal_error may be applied when the same body
     * comes again (a redrive from the dead-letter topic, once its cause
     * is fixed): its row is taken over, not duplicated */
    if (known != NULL && !known->is_new && known->reason != NULL &&
        strcmp(known->reason, "internal_error") == 0 &&
        memcmp(known->fingerprint, command_env_fingerprint(&m->env), 32) == 0)
        retake = known;
    else if (known != NULL)
        return decide_known(b, cfg, m, known) < 0 ? -2 : 0;

    cmd_result_init(&res);
    mark = snap_mark(&b->snap);
    if (m->parsed == CMD_PARSE_INVALID) {
        cmd_reject(&res, "invalid_command",
                   json_pack("{s:s}", "error", m->perr));
    } else if (!m->resumed && (m->env.role & m->src.source->roles) == 0) {
        /* the topic's producers are not trusted with that role (a parked
         * command passed this check when it was first taken) */
        cmd_reject(&res, "unauthorized",
                   json_pack("{s:s, s:s}", "source", m->env.source, "role",
                             cmd_role_name(m->env.role)));
    } else if ((m->env.role & m->env.handler->roles) == 0) {
        cmd_reject(&res, "unauthorized",
                   json_pack("{s:s}", "role", cmd_role_name(m->env.role)));
    } else if (run_handler(b, cfg, m, &res, err, errlen) < 0) {
        snap_rollback(&b->snap, mark);
        cmd_result_reset(&res);
        return -1;
    }
    if (res.outcome == OUTCOME_REJECTED)
        snap_rollback(&b->snap, mark);
    else
        snap_forget_undo(&b->snap);

    /* an order command that arrived before its order: park it */
    if (!m->resumed && res.outcome == OUTCOME_REJECTED && res.reason != NULL &&
        strcmp(res.reason, "order_not_found") == 0 &&
        m->env.order_id[0] != '\0' && cfg->defer_timeout_ms > 0) {
        cmd_result_reset(&res);
        res.outcome = OUTCOME_DEFERRED;
        res.details =
            json_pack("{s:s, s:I}", "waiting_for_order", m->env.order_id,
                      "timeout_ms", (json_int_t)cfg->defer_timeout_ms);
        if (park(b, m) < 0)
            fail = 1;
    }
    od_uuid_v4(event_id);
    record_dedup(b, m, &res, event_id, retake, &fail);
    m->rep.outcome = res.outcome;
    m->rep.reason = res.reason;
    if (fail || add_result(b, cfg, m, &res, event_id) < 0 ||
        add_extra_events(b, cfg, m, &res) < 0 ||
        (m->rep.internal_error &&
         (m->rep.dlq = 1,
          add_dlq(b, cfg, m, "internal_error", m->env.dedup_key) < 0))) {
        cmd_result_reset(&res);
        return -2;
    }
    if (res.outcome == OUTCOME_APPLIED && m->env.handler != NULL &&
        m->env.handler->creates_order &&
        release_parked(b, cfg, res.order_id, &m->rep.released, err, errlen) <
            0) {
        cmd_result_reset(&res);
        return -1;
    }
    cmd_result_reset(&res);
    return 0;
}

od_status_t
batch_decide(batch_t *b, const apply_config_t *cfg, batch_msg_t *msgs, int n,
             char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        int rc;

        if (msgs[i].skip)
            continue;
        rc = decide_one(b, cfg, &msgs[i], err, errlen);
        if (rc == -2) {
            od_err(err, errlen, "out of memory deciding a batch");
            return OD_RETRY;
        }
        if (rc < 0)
            return OD_FATAL;
    }
    return OD_OK;
}

od_status_t
batch_fail_message(batch_t *b, const apply_config_t *cfg, batch_msg_t *m,
                   int refused_before, char *err, size_t errlen)
{
    cmd_result_t res;
    char event_id[37];
    dedup_row_t *prior = NULL;
    int fail = 0;

    if (cfg->halt_on_internal_error) {
        od_err(err, errlen, "internal error applying '%s'", m->env.dedup_key);
        return OD_FATAL;
    }
    memset(&m->rep, 0, sizeof(m->rep));
    snprintf(m->rep.dedup_key, sizeof(m->rep.dedup_key), "%s",
             m->env.dedup_key);
    m->rep.type = m->env.handler ? m->env.handler->type : NULL;
    cmd_result_init(&res);
    cmd_reject(&res, "internal_error", NULL);
    m->rep.internal_error = 1;
    m->rep.dlq = 1;
    m->rep.outcome = res.outcome;
    m->rep.reason = res.reason;
    od_uuid_v4(event_id);
    if (refused_before) {
        /* its earlier refusal stays, with this result's event */
        prior = snap_vec_new(&b->dedup, sizeof(*prior));
        if (prior == NULL)
            fail = 1;
        else {
            snprintf(prior->source, sizeof(prior->source), "%s", m->env.source);
            snprintf(prior->key, sizeof(prior->key), "%s", m->env.dedup_key);
            memcpy(prior->fingerprint, command_env_fingerprint(&m->env), 32);
        }
    }
    record_dedup(b, m, &res, event_id, prior, &fail);
    if (fail || add_result(b, cfg, m, &res, event_id) < 0 ||
        add_dlq(b, cfg, m, "internal_error", m->env.dedup_key) < 0)
        fail = 1;
    cmd_result_reset(&res);
    if (fail) {
        od_err(err, errlen, "out of memory recording an internal error");
        return OD_RETRY;
    }
    return OD_OK;
}

od_status_t
batch_run(db_t *db, const apply_config_t *cfg, batch_msg_t *msgs, int n,
          char *err, size_t errlen)
{
    batch_needs_t needs;
    batch_load_t *load = NULL;
    batch_t b;
    od_status_t st;

    batch_init(&b);
    batch_prepare(cfg, msgs, n, 0, &needs);
    st = batch_load_queue(db, &needs, 0, &load, err, errlen);
    if (st == OD_OK)
        st = db_flush(db, err, errlen); /* the load's round trip */
    if (load != NULL) {
        od_status_t lst = batch_load_take(&b, load, err, errlen);

        if (st == OD_OK)
            st = lst;
    }
    batch_needs_free(&needs);
    if (st == OD_OK)
        st = batch_decide(&b, cfg, msgs, n, err, errlen);
    /* queued with copies of their parameters: b may go */
    if (st == OD_OK)
        st = batch_write_queue(db, &b, err, errlen);
    batch_free(&b);
    return st;
}

od_status_t
batch_apply_isolated(db_t *db, const apply_config_t *cfg, batch_msg_t *m,
                     char *err, size_t errlen)
{
    od_status_t st;
    batch_t b;
    char tbuf[80];
    int refused_before = 0;

    for (int attempt = 0;; attempt++) {
        db_queue_tx(db, DB_TX_SAVEPOINT);
        batch_msg_free(m); /* parsed again by batch_run */
        st = batch_run(db, cfg, m, 1, err, errlen);
        if (st == OD_OK)
            st = db_release(db, err, errlen);
        /* a unique violation is a race, not a fault: another executor
         * committed the same identity (or order) after this command's load
         * and before its insert, which waited for it. Loaded again, the
         * command sees that row and is a duplicate (or order_exists). */
        if (st != OD_FATAL || attempt >= 2 || !db_ok(db) ||
            strcmp(db_sqlstate(db), "23505") != 0)
            break;
        st = db_rollback_to(db, err, errlen);
        if (st != OD_OK)
            return st;
    }
    if (st != OD_FATAL || !db_ok(db) || cfg->halt_on_internal_error)
        return st;
    /* this command alone fails: it becomes internal_error */
    slog_error(m->src.topic, m->src.partition, m->src.offset,
               "internal error applying '%s': %s%s", m->env.dedup_key, err,
               trace_note(m, tbuf, sizeof(tbuf)));
    st = db_rollback_to(db, err, errlen);
    if (st != OD_OK)
        return st;
    /* a redriven command that fails again has its refusal's row */
    if (m->parsed != CMD_PARSE_POISON) {
        int found = 0, same = 0;

        st = dedup_lookup(db, m->env.source, m->env.dedup_key,
                          command_env_fingerprint(&m->env), &found, &same, err,
                          errlen);
        if (st != OD_OK)
            return st;
        refused_before = found && same;
    }
    batch_init(&b);
    st = batch_fail_message(&b, cfg, m, refused_before, err, errlen);
    if (st == OD_OK)
        st = batch_write_queue(db, &b, err, errlen);
    batch_free(&b);
    if (st == OD_OK)
        st = db_release(db, err, errlen);
    return st;
}
