/* apply.c - one command inside the batch transaction
 *
 * DESIGN: every message ends in exactly one of: a dead-letter copy (poison),
 * or a processed_commands row plus one command.result event. The handler
 * runs first inside a savepoint; a business rejection rolls the savepoint
 * back. The dedup row is then inserted with ON CONFLICT DO NOTHING: when the
 * key exists, whatever the handler did is rolled back and the command is a
 * duplicate (same fingerprint) or dedup_key_reused (different); only a row
 * that says internal_error (nothing of that command was kept) is taken
 * over by the same body sent again, so a redriven dead letter applies once
 * its cause is fixed. Inserting
 * the dedup row last saves a round trip on the common path, and the unique
 * index still serialises two executors racing on one key.
 */
#include "apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../handlers/command.h"
#include "log.h"

static const db_stmt_t stmt_dedup_result = {
    "apply_dedup_result",
    "WITH d AS (INSERT INTO processed_commands (dedup_key, fingerprint,"
    " command_type, outcome, reason, result_event_id, order_id, source_topic,"
    " source_partition, source_offset, source)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $15)"
    /* an internal_error left nothing behind: the same command sent again
     * (a redrive from the dead-letter topic) is applied, not a duplicate */
    " ON CONFLICT (source, dedup_key) DO UPDATE SET outcome = EXCLUDED.outcome,"
    " reason = EXCLUDED.reason, result_event_id = EXCLUDED.result_event_id,"
    " command_type = EXCLUDED.command_type, order_id = EXCLUDED.order_id,"
    " source_topic = EXCLUDED.source_topic,"
    " source_partition = EXCLUDED.source_partition,"
    " source_offset = EXCLUDED.source_offset"
    " WHERE processed_commands.reason = 'internal_error'"
    " AND processed_commands.fingerprint = EXCLUDED.fingerprint"
    " RETURNING order_id),"
    " e AS (INSERT INTO outbox (event_id, topic, key, payload, dedup_key)"
    " SELECT $6, $11, $12, convert_to(CASE WHEN $14::boolean"
    "  THEN jsonb_set($13::text::jsonb, '{order}',"
    "   COALESCE(orderd_order_json(d.order_id), 'null'::jsonb))::text"
    "  ELSE $13::text END, 'UTF8'), $1 FROM d RETURNING 1)"
    " SELECT (SELECT count(*) FROM e),"
    " EXISTS (SELECT 1 FROM deferred_commands WHERE order_id = $7::uuid)"};

static const db_stmt_t stmt_dedup_get = {
    "apply_dedup_get",
    "SELECT fingerprint = $2, outcome, reason, result_event_id"
    " FROM processed_commands WHERE source = $3 AND dedup_key = $1"};

static const db_stmt_t stmt_order_json = {"apply_order_json",
                                          "SELECT orderd_order_json($1)"};

static const db_stmt_t stmt_defer_insert = {
    "apply_defer_insert",
    "INSERT INTO deferred_commands (order_id, dedup_key, payload, msg_ts_us,"
    " source_topic, source_partition, source_offset, source)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    " ON CONFLICT (source, dedup_key) DO NOTHING"};

static const db_stmt_t stmt_defer_lock = {
    "apply_defer_lock",
    "SELECT pg_advisory_xact_lock(hashtextextended($1, 4242003))"};

static const db_stmt_t stmt_order_exists = {
    "apply_order_exists", "SELECT 1 FROM orders WHERE id = $1::uuid"};

/* the parked commands of an order, in arrival order, taken off the shelf */
static const db_stmt_t stmt_defer_take = {
    "apply_defer_take",
    "DELETE FROM deferred_commands WHERE id = ANY(ARRAY(SELECT id FROM"
    " deferred_commands WHERE order_id = $1 ORDER BY id FOR UPDATE))"
    " RETURNING payload, msg_ts_us, source_topic, source_partition,"
    " source_offset, id, source"};

/* parked too long: the order never came */
static const db_stmt_t stmt_defer_timed_out = {
    "apply_defer_timed_out",
    "DELETE FROM deferred_commands WHERE id = ANY(ARRAY(SELECT id FROM"
    " deferred_commands WHERE created_at < now() - $1::bigint *"
    " interval '1 millisecond' ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED))"
    " RETURNING payload, msg_ts_us, source_topic, source_partition,"
    " source_offset, id, source"};

/* a parked command's final outcome replaces 'deferred' */
static const db_stmt_t stmt_dedup_resume = {
    "apply_dedup_resume",
    "UPDATE processed_commands SET outcome = $2, reason = $3,"
    " result_event_id = $4 WHERE source = $5 AND dedup_key = $1"
    " AND outcome = 'deferred'"
    " RETURNING 1"};

static const db_stmt_t stmt_outbox_insert = {
    "apply_outbox_insert",
    "INSERT INTO outbox (event_id, topic, key, payload, headers, dedup_key)"
    " VALUES ($1, $2, $3, $4, $5, $6)"};

void
apply_config_init(apply_config_t *acfg, const od_config_t *cfg)
{
    memset(acfg, 0, sizeof(*acfg));
    acfg->domain.default_tax_bps = cfg->default_tax_bps;
    acfg->domain.pending_ttl_s = cfg->pending_ttl_ms / 1000;
    acfg->domain.expiry_grace_s = cfg->expiry_grace_ms / 1000;
    acfg->domain.order_prefix = cfg->order_prefix;
    acfg->domain.events_topic = cfg->events_topic;
    acfg->dlq_topic = cfg->dlq_topic;
    acfg->halt_on_internal_error = strcmp(cfg->on_internal_error, "halt") == 0;
    acfg->defer_timeout_ms = cfg->defer_timeout_ms;
    acfg->max_clock_skew_us = cfg->max_clock_skew_ms * 1000;
    acfg->max_event_age_us = cfg->max_event_age_ms * 1000;
    acfg->sources = &cfg->sources;
}

static od_status_t
outbox_insert(db_t *db, const char *event_id, const char *topic,
              const void *key, size_t key_len, const void *payload, size_t len,
              const char *headers, const char *dedup_key, char *err,
              size_t errlen)
{
    const char *params[6] = {event_id, topic, key, payload, headers, dedup_key};
    int lengths[6] = {0, 0, (int)key_len, (int)len, 0, 0};
    int formats[6] = {0, 0, 1, 1, 0, 0};

    return db_run_ex(db, &stmt_outbox_insert, 6, params, lengths, formats, NULL,
                     err, errlen);
}

od_status_t
apply_emit_event(db_t *db, const char *topic, const char *key, const char *type,
                 const char *dedup_key, json_t *payload, char *err,
                 size_t errlen)
{
    char event_id[37], at[40];
    char *text;
    od_status_t st;

    od_uuid_v4(event_id);
    json_object_set_new(payload, "event_id", json_string(event_id));
    json_object_set_new(payload, "type", json_string(type));
    if (json_object_get(payload, "at") == NULL)
        json_object_set_new(
            payload, "at",
            json_string(od_format_time(od_now_us(), at, sizeof(at))));
    text = json_dumps(payload, JSON_COMPACT);
    json_decref(payload);
    if (text == NULL) {
        od_err(err, errlen, "could not encode %s event", type);
        return OD_FATAL;
    }
    st = outbox_insert(db, event_id, topic, key, key ? strlen(key) : 0, text,
                       strlen(text), NULL, dedup_key, err, errlen);
    free(text);
    return st;
}

static od_status_t
dlq_copy(db_t *db, const apply_config_t *cfg, const void *payload, size_t len,
         const apply_source_t *src, const char *why, const char *dedup_key,
         char *err, size_t errlen)
{
    char event_id[37], ewhy[OD_ESCAPE_SIZE(256)], etopic[OD_ESCAPE_SIZE(256)];
    json_t *h;
    char *headers;
    od_status_t st;

    od_uuid_v4(event_id);
    /* why quotes the input (a parse error): escaped, it is valid UTF-8
     * for the jsonb column and carries no control bytes to whoever reads
     * the header */
    h = json_pack(
        "{s:s, s:s, s:I, s:I}", "orderd-error",
        od_escape(why, ewhy, sizeof(ewhy)), "orderd-source-topic",
        od_escape(src->topic ? src->topic : "", etopic, sizeof(etopic)),
        "orderd-source-partition", (json_int_t)src->partition,
        "orderd-source-offset", (json_int_t)src->offset);
    headers = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    st = outbox_insert(db, event_id, cfg->dlq_topic, src->key, src->key_len,
                       payload, len, headers, dedup_key, err, errlen);
    free(headers);
    return st;
}

/* A parked command gets its final outcome. */
static od_status_t
dedup_resolve_deferred(db_t *db, const cmd_env_t *env, const cmd_result_t *res,
                       const char *event_id, char *err, size_t errlen)
{
    const char *params[5] = {env->dedup_key, cmd_outcome_name(res->outcome),
                             res->reason, event_id, env->source};
    db_rows_t *rows = NULL;
    od_status_t st;

    st = db_run(db, &stmt_dedup_resume, 5, params, &rows, err, errlen);
    if (st == OD_OK && db_nrows(rows) != 1) {
        od_err(err, errlen, "parked command '%s' has no deferred dedup row",
               env->dedup_key);
        st = OD_FATAL;
    }
    db_rows_free(rows);
    return st;
}

/* The key was seen before: duplicate (same body) or dedup_key_reused. */
static od_status_t
resolve_known_key(db_t *db, const cmd_env_t *env, cmd_result_t *res, char *err,
                  size_t errlen)
{
    const char *params[3] = {env->dedup_key, (const char *)env->fingerprint,
                             env->source};
    int lengths[3] = {0, 32, 0};
    int formats[3] = {0, 1, 0};
    db_rows_t *rows = NULL;
    od_status_t st;
    const char *order_id = env->order_id[0] ? env->order_id : NULL;

    st = db_run_ex(db, &stmt_dedup_get, 3, params, lengths, formats, &rows, err,
                   errlen);
    if (st != OD_OK)
        return st;
    if (db_nrows(rows) != 1) {
        db_rows_free(rows);
        od_err(err, errlen, "dedup row for '%s' vanished", env->dedup_key);
        return OD_RETRY;
    }
    cmd_result_reset(res);
    if (order_id != NULL)
        snprintf(res->order_id, sizeof(res->order_id), "%s", order_id);
    if (db_bool(rows, 0, 0)) {
        res->outcome = OUTCOME_DUPLICATE;
        res->details =
            json_pack("{s:s, s:s?, s:s}", "original_outcome",
                      db_val(rows, 0, 1), "original_reason",
                      db_isnull(rows, 0, 2) ? NULL : db_val(rows, 0, 2),
                      "original_event_id", db_val(rows, 0, 3));
    } else {
        cmd_reject(res, "dedup_key_reused",
                   json_pack("{s:s}", "original_event_id", db_val(rows, 0, 3)));
    }
    db_rows_free(rows);
    return OD_OK;
}

static od_status_t
load_order(db_t *db, cmd_result_t *res, char *err, size_t errlen)
{
    const char *params[1] = {res->order_id};
    db_rows_t *rows = NULL;
    od_status_t st;

    st = db_run(db, &stmt_order_json, 1, params, &rows, err, errlen);
    if (st == OD_OK && db_nrows(rows) == 1 && !db_isnull(rows, 0, 0))
        res->order = json_loads(db_val(rows, 0, 0), 0, NULL);
    db_rows_free(rows);
    return st;
}

/* The order the result concerns, or NULL. */
static const char *
result_order_id(const cmd_env_t *env, const cmd_result_t *res)
{
    return res->order_id[0]   ? res->order_id
           : env->order_id[0] ? env->order_id
                              : NULL;
}

/* The command's type as the producer sent it (NULL if not a string). */
static const char *
command_type(const cmd_env_t *env)
{
    if (env->handler != NULL)
        return env->handler->type;
    return json_string_value(json_object_get(env->root, "type"));
}

/* The command.result event as JSON text (caller frees), or NULL. */
static char *
result_text(const cmd_env_t *env, const cmd_result_t *res, const char *event_id,
            const apply_source_t *src)
{
    char at[40];
    json_t *ev;
    char *text;

    ev = json_pack(
        "{s:s, s:s, s:s, s:s?, s:s?, s:s, s:s?, s:O?, s:O?,"
        " s:{s:s, s:s?, s:I, s:I}, s:s}",
        "event_id", event_id, "type", "command.result", "dedup_key",
        env->dedup_key, "command_type", command_type(env), "order_id",
        result_order_id(env, res), "outcome", cmd_outcome_name(res->outcome),
        "reason", res->reason, "details", res->details, "order", res->order,
        "source", "name", env->source, "topic", src->topic, "partition",
        (json_int_t)src->partition, "offset", (json_int_t)src->offset, "at",
        od_format_time(od_now_us(), at, sizeof(at)));
    if (ev == NULL)
        return NULL;
    /* "O?" packs a missing value as null: the contract's details is an
     * object, empty when there is nothing to say */
    if (!json_is_object(json_object_get(ev, "details")))
        json_object_set_new(ev, "details", json_object());
    if (json_object_get(ev, "order") == NULL)
        json_object_set_new(ev, "order", json_null());
    if (json_object_get(ev, "reason") == NULL)
        json_object_set_new(ev, "reason", json_null());
    if (json_object_get(ev, "order_id") == NULL)
        json_object_set_new(ev, "order_id", json_null());
    text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return text;
}

static od_status_t
write_result(db_t *db, const apply_config_t *cfg, const cmd_env_t *env,
             const cmd_result_t *res, const char *event_id,
             const apply_source_t *src, char *err, size_t errlen)
{
    const char *key = result_order_id(env, res);
    char *text = result_text(env, res, event_id, src);
    od_status_t st;

    if (text == NULL) {
        od_err(err, errlen, "could not encode the result event");
        return OD_FATAL;
    }
    if (key == NULL)
        key = env->dedup_key;
    st = outbox_insert(db, event_id, cfg->domain.events_topic, key, strlen(key),
                       text, strlen(text), NULL, env->dedup_key, err, errlen);
    free(text);
    return st;
}

/*
 * The common path in one round trip: the dedup row, and only if it was
 * new, the result event with the order as it stands now. *inserted tells
 * which; *parked whether commands wait for this order.
 */
static od_status_t
dedup_and_result(db_t *db, const apply_config_t *cfg, const cmd_env_t *env,
                 const cmd_result_t *res, const char *event_id,
                 const apply_source_t *src, int *inserted, int *parked,
                 char *err, size_t errlen)
{
    char part[24], off[24];
    const char *order_id = result_order_id(env, res);
    const char *key = order_id ? order_id : env->dedup_key;
    char *text = result_text(env, res, event_id, src);
    int with_order = order_id != NULL && res->order == NULL &&
                     res->outcome != OUTCOME_DEFERRED;
    const char *params[15] = {env->dedup_key,
                              (const char *)env->fingerprint,
                              command_type(env),
                              cmd_outcome_name(res->outcome),
                              res->reason,
                              event_id,
                              order_id,
                              src->topic,
                              db_int_param(part, src->partition),
                              db_int_param(off, src->offset),
                              cfg->domain.events_topic,
                              key,
                              text,
                              with_order ? "true" : "false",
                              env->source};
    int lengths[15] = {0, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, (int)strlen(key),
                       0, 0,  0};
    int formats[15] = {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    db_rows_t *rows = NULL;
    od_status_t st;

    if (text == NULL) {
        od_err(err, errlen, "could not encode the result event");
        return OD_FATAL;
    }
    st = db_run_ex(db, &stmt_dedup_result, 15, params, lengths, formats, &rows,
                   err, errlen);
    if (st == OD_OK) {
        *inserted = db_int64(rows, 0, 0) == 1;
        *parked = db_bool(rows, 0, 1);
    }
    db_rows_free(rows);
    free(text);
    return st;
}

static od_status_t
write_extra_events(db_t *db, const apply_config_t *cfg, const cmd_env_t *env,
                   cmd_result_t *res, char *err, size_t errlen)
{
    size_t i;
    json_t *e;

    json_array_foreach(res->events, i, e)
    {
        json_t *payload = json_object_get(e, "payload");
        od_status_t st;

        json_incref(payload);
        st = apply_emit_event(db, cfg->domain.events_topic,
                              json_string_value(json_object_get(e, "key")),
                              json_string_value(json_object_get(e, "type")),
                              env->dedup_key, payload, err, errlen);
        if (st != OD_OK)
            return st;
    }
    return OD_OK;
}

/* Back to the command's savepoint after a rejection or an SQL error. */
static od_status_t
rollback_command(db_t *db, char *err, size_t errlen)
{
    return db_exec(db, "ROLLBACK TO SAVEPOINT cmd", err, errlen);
}

/*
 * Parking and releasing an order's commands take the same per-order
 * advisory lock, and the order is looked up again after it: a checkout
 * committing between a pay's order lookup and its parking would otherwise
 * leave the pay parked until its timeout.
 */
static od_status_t
defer_guard(db_t *db, const char *order_id, int *exists, char *err,
            size_t errlen)
{
    const char *params[1] = {order_id};
    db_rows_t *rows = NULL;
    od_status_t st;

    st = db_run(db, &stmt_defer_lock, 1, params, NULL, err, errlen);
    if (st != OD_OK)
        return st;
    /* a new statement: a new snapshot, taken after the lock */
    st = db_run(db, &stmt_order_exists, 1, params, &rows, err, errlen);
    if (st == OD_OK)
        *exists = db_nrows(rows) == 1;
    db_rows_free(rows);
    return st;
}

/* Parks a command for an order that does not exist yet. */
static od_status_t
defer_park(db_t *db, const cmd_env_t *env, const void *payload, size_t len,
           const apply_source_t *src, char *err, size_t errlen)
{
    char ts[24], part[24], off[24];
    const char *params[8] = {env->order_id,
                             env->dedup_key,
                             payload,
                             db_int_param(ts, src->ts_us),
                             src->topic ? src->topic : "",
                             db_int_param(part, src->partition),
                             db_int_param(off, src->offset),
                             env->source};
    int lengths[8] = {0, 0, (int)len, 0, 0, 0, 0, 0};
    int formats[8] = {0, 0, 1, 0, 0, 0, 0, 0};

    return db_run_ex(db, &stmt_defer_insert, 8, params, lengths, formats, NULL,
                     err, errlen);
}

/* An internal error in a handler: halt, or refuse the command alone. */
static od_status_t
handler_failed(const apply_config_t *cfg, const cmd_env_t *env,
               const apply_source_t *src, const char *herr, cmd_result_t *res,
               apply_report_t *rep, char *err, size_t errlen)
{
    slog_error(src->topic, src->partition, src->offset,
               "internal error applying %s '%s': %s", env->handler->type,
               env->dedup_key, herr);
    if (cfg->halt_on_internal_error) {
        od_err(err, errlen, "%s", herr);
        return OD_FATAL;
    }
    cmd_result_reset(res);
    cmd_reject(res, "internal_error", NULL);
    rep->internal_error = 1;
    return OD_OK;
}

/*
 * After the round trip that carried the handler's queued statements with
 * the dedup row: a failure in one of them is the handler's, and a queued
 * last statement (ctx->finish) is read now. *redo when the speculative
 * result was rolled back with the command's work and must be written
 * again for res's new outcome.
 */
static od_status_t
settle_handler(apply_ctx_t *ctx, const apply_config_t *cfg,
               const apply_source_t *src, od_status_t st, int inserted,
               cmd_result_t *res, apply_report_t *rep, int *redo, char *err,
               size_t errlen)
{
    handler_finish_fn finish = ctx->finish;
    db_rows_t *rows = ctx->finish_rows;
    od_status_t hst = OD_OK;

    *redo = 0;
    ctx->finish = NULL;
    ctx->finish_rows = NULL;
    if (st == OD_FATAL && db_failed_queued(ctx->db)) {
        /* the dedup statement did not run */
        snprintf(ctx->err, ctx->errlen, "%s", err);
        hst = OD_FATAL;
    } else if (st == OD_OK && finish != NULL && inserted && rows != NULL) {
        hst = finish(ctx, ctx->env->cmd, rows, res);
    } else if (st == OD_OK && finish != NULL && inserted) {
        od_err(ctx->err, ctx->errlen, "%s: no rows from its last statement",
               ctx->env->handler->type);
        hst = OD_FATAL;
    } else {
        /* an error of the dedup statement itself, or nothing to read (a
         * duplicate rolls the handler's work back) */
        db_rows_free(rows);
        return st;
    }
    db_rows_free(rows);
    if (hst == OD_RETRY) {
        od_err(err, errlen, "%s", ctx->err);
        return OD_RETRY;
    }
    if (hst == OD_FATAL) {
        st =
            handler_failed(cfg, ctx->env, src, ctx->err, res, rep, err, errlen);
        if (st != OD_OK)
            return st;
    }
    if (hst == OD_FATAL || res->outcome != OUTCOME_APPLIED) {
        *redo = 1;
        return rollback_command(ctx->db, err, errlen);
    }
    return OD_OK;
}

/*
 * The heart of apply_message: env is parsed (or invalid with perr), the
 * savepoint is open. resumed is set when a parked command is applied
 * again: its dedup row exists (outcome deferred) and is updated instead.
 */
static od_status_t
run_command(db_t *db, const apply_config_t *cfg, cmd_env_t *env,
            cmd_parse_t parsed, const char *perr, const void *payload,
            size_t len, const apply_source_t *src, int resumed,
            apply_report_t *rep, char *err, size_t errlen)
{
    cmd_result_t res;
    char herr[512] = "", event_id[37];
    apply_ctx_t ctx = {db, env, &cfg->domain, herr, sizeof(herr), NULL, NULL};
    od_status_t st;
    int inserted = 0, rechecked = 0, written = 0, parked = 0, redo;

    cmd_result_init(&res);
again:
    if (parsed == CMD_PARSE_INVALID) {
        cmd_reject(&res, "invalid_command", json_pack("{s:s}", "error", perr));
    } else if (!resumed && (env->role & src->source->roles) == 0) {
        /* the topic's producers are not trusted with that role (a parked
         * command passed this check when it was first taken) */
        cmd_reject(&res, "unauthorized",
                   json_pack("{s:s, s:s}", "source", env->source, "role",
                             cmd_role_name(env->role)));
    } else if ((env->role & env->handler->roles) == 0) {
        cmd_reject(&res, "unauthorized",
                   json_pack("{s:s}", "role", cmd_role_name(env->role)));
    } else {
        st = env->handler->apply(&ctx, env->cmd, &res);
        if (st == OD_RETRY) {
            od_err(err, errlen, "%s", herr);
            goto out;
        }
        if (st == OD_FATAL) {
            st = handler_failed(cfg, env, src, herr, &res, rep, err, errlen);
            if (st != OD_OK)
                goto out;
        }
    }
    if (res.outcome == OUTCOME_REJECTED) {
        /* drops what the handler queued, and its last statement */
        ctx.finish = NULL;
        st = rollback_command(db, err, errlen);
        if (st != OD_OK)
            goto out;
    }
    /* an order command that arrived before its order: park it */
    if (!resumed && res.outcome == OUTCOME_REJECTED && res.reason != NULL &&
        strcmp(res.reason, "order_not_found") == 0 &&
        env->order_id[0] != '\0' && cfg->defer_timeout_ms > 0) {
        int exists = 0;

        st = defer_guard(db, env->order_id, &exists, err, errlen);
        if (st != OD_OK)
            goto out;
        if (exists && !rechecked) {
            /* its checkout committed meanwhile: apply it now */
            rechecked = 1;
            cmd_result_reset(&res);
            goto again;
        }
        cmd_result_reset(&res);
        res.outcome = OUTCOME_DEFERRED;
        res.details =
            json_pack("{s:s, s:I}", "waiting_for_order", env->order_id,
                      "timeout_ms", (json_int_t)cfg->defer_timeout_ms);
    }

    do {
        od_uuid_v4(event_id);
        if (resumed) {
            st = dedup_resolve_deferred(db, env, &res, event_id, err, errlen);
            inserted = 1;
        } else {
            st = dedup_and_result(db, cfg, env, &res, event_id, src, &inserted,
                                  &parked, err, errlen);
            written = inserted;
        }
        st = settle_handler(&ctx, cfg, src, st, inserted, &res, rep, &redo, err,
                            errlen);
        if (st != OD_OK)
            goto out;
    } while (redo);
    if (!inserted) {
        if (res.outcome != OUTCOME_REJECTED) {
            st = rollback_command(db, err, errlen);
            if (st != OD_OK)
                goto out;
        }
        rep->internal_error = 0;
        st = resolve_known_key(db, env, &res, err, errlen);
        if (st != OD_OK)
            goto out;
    } else if (res.outcome == OUTCOME_DEFERRED) {
        st = defer_park(db, env, payload, len, src, err, errlen);
        if (st != OD_OK)
            goto out;
    }
    if (res.order_id[0] == '\0' && env->order_id[0] != '\0')
        snprintf(res.order_id, sizeof(res.order_id), "%s", env->order_id);
    rep->outcome = res.outcome;
    rep->reason = res.reason;
    /* a replay re-reading what it applied before stays quiet: the first
     * result (duplicate or dedup_key_reused alike) exists already */
    if (!written && !(!inserted && cfg->quiet_duplicates)) {
        if (res.order_id[0] != '\0' && res.order == NULL &&
            res.outcome != OUTCOME_DEFERRED) {
            st = load_order(db, &res, err, errlen);
            if (st != OD_OK)
                goto out;
        }
        st = write_result(db, cfg, env, &res, event_id, src, err, errlen);
        if (st != OD_OK)
            goto out;
        written = 1;
    }
    if (written)
        memcpy(rep->event_id, event_id, sizeof(event_id));
    if (inserted) {
        st = write_extra_events(db, cfg, env, &res, err, errlen);
        if (st != OD_OK)
            goto out;
    }
    if (rep->internal_error) {
        rep->dlq = 1;
        st = dlq_copy(db, cfg, payload, len, src, "internal_error",
                      env->dedup_key, err, errlen);
        if (st != OD_OK)
            goto out;
    }
    /* sent with the next statement, in the same round trip */
    db_queue(db, "RELEASE SAVEPOINT cmd");
    if (parked && res.outcome == OUTCOME_APPLIED && env->handler != NULL &&
        env->handler->creates_order)
        st = apply_release_deferred(db, cfg, res.order_id, &rep->released, err,
                                    errlen);
out:
    cmd_result_reset(&res);
    return st;
}

od_status_t
apply_message(db_t *db, const apply_config_t *cfg, const void *payload,
              size_t len, const apply_source_t *src, apply_report_t *rep,
              char *err, size_t errlen)
{
    cmd_env_t env;
    char perr[256] = "";
    cmd_parse_t parsed;
    od_status_t st;

    memset(rep, 0, sizeof(*rep));
    parsed = command_parse(payload, len, src->ts_us, &env, perr, sizeof(perr));
    if (parsed == CMD_PARSE_POISON) {
        rep->outcome = OUTCOME_REJECTED;
        rep->reason = "poison";
        st = OD_OK;
        /* a quiet replay re-reads poison that has its DLQ copy already */
        if (cfg->quiet_duplicates)
            goto out;
        slog_warn(src->topic, src->partition, src->offset,
                  "poison message to the dead-letter topic: %s", perr);
        rep->dlq = 1;
        st = dlq_copy(db, cfg, payload, len, src, perr, NULL, err, errlen);
        goto out;
    }
    snprintf(env.source, sizeof(env.source), "%s", src->source->name);
    /* orderd's own commands carry the deadline they enforce as event time */
    if (parsed == CMD_PARSE_OK && src->source != sources_orderd() &&
        command_check_event_time(&env, src->ts_us, od_now_us(),
                                 cfg->max_clock_skew_us, cfg->max_event_age_us,
                                 perr, sizeof(perr)) < 0)
        parsed = CMD_PARSE_INVALID;
    snprintf(rep->dedup_key, sizeof(rep->dedup_key), "%s", env.dedup_key);
    rep->type = env.handler != NULL ? env.handler->type : NULL;
    db_queue(db, "SAVEPOINT cmd");
    st = run_command(db, cfg, &env, parsed, perr, payload, len, src, 0, rep,
                     err, errlen);
out:
    command_env_free(&env);
    return st;
}

/*
 * Applies again the parked commands in rows (payload, msg_ts_us,
 * source_topic, source_partition, source_offset), in order: with their
 * order present they apply, past their timeout they are refused
 * order_not_found. key (may be NULL) is the Kafka key of their result.
 * *done is incremented for each.
 */
static od_status_t
resume_parked(db_t *db, const apply_config_t *cfg, db_rows_t *rows,
              const char *key, int *done, char *err, size_t errlen)
{
    od_status_t st = OD_OK;

    for (int i = 0; i < db_nrows(rows) && st == OD_OK; i++) {
        size_t len = 0;
        unsigned char *payload = db_bytea(rows, i, 0, &len);
        const od_source_t *known =
            sources_by_name(cfg->sources, db_val(rows, i, 6));
        /* a source no longer configured: its commands were authorised
         * when they were parked, and keep their identity */
        od_source_t gone = {"", NULL, ROLE_ALL};
        apply_source_t src = {known,
                              db_val(rows, i, 2),
                              (int32_t)db_int64(rows, i, 3),
                              db_int64(rows, i, 4),
                              db_int64(rows, i, 1),
                              key,
                              key ? strlen(key) : 0};
        apply_report_t rep;
        cmd_env_t env;
        char perr[256] = "";
        cmd_parse_t parsed;

        if (known == NULL) {
            snprintf(gone.name, sizeof(gone.name), "%s", db_val(rows, i, 6));
            src.source = &gone;
        }
        memset(&rep, 0, sizeof(rep));
        parsed = command_parse((const char *)payload, len, src.ts_us, &env,
                               perr, sizeof(perr));
        snprintf(env.source, sizeof(env.source), "%s", src.source->name);
        if (parsed != CMD_PARSE_OK) {
            /* it parsed when it was parked: the code changed under it */
            od_err(err, errlen, "parked command no longer parses: %s", perr);
            st = OD_FATAL;
        } else {
            db_queue(db, "SAVEPOINT cmd");
            st = run_command(db, cfg, &env, parsed, perr, payload, len, &src, 1,
                             &rep, err, errlen);
            if (st == OD_OK && done != NULL)
                (*done)++;
        }
        command_env_free(&env);
        free(payload);
    }
    return st;
}

od_status_t
apply_release_deferred(db_t *db, const apply_config_t *cfg,
                       const char *order_id, int *released, char *err,
                       size_t errlen)
{
    const char *params[1] = {order_id};
    db_rows_t *rows = NULL;
    od_status_t st;

    st = db_run(db, &stmt_defer_lock, 1, params, NULL, err, errlen);
    if (st != OD_OK)
        return st;
    st = db_run(db, &stmt_defer_take, 1, params, &rows, err, errlen);
    if (st == OD_OK)
        st = resume_parked(db, cfg, rows, order_id, released, err, errlen);
    db_rows_free(rows);
    return st;
}

od_status_t
apply_expire_deferred(db_t *db, const apply_config_t *cfg, int *n, char *err,
                      size_t errlen)
{
    char ms[24];
    const char *params[1] = {db_int_param(ms, cfg->defer_timeout_ms)};
    db_rows_t *rows = NULL;
    od_status_t st;

    *n = 0;
    st = db_run(db, &stmt_defer_timed_out, 1, params, &rows, err, errlen);
    if (st == OD_OK)
        st = resume_parked(db, cfg, rows, NULL, n, err, errlen);
    db_rows_free(rows);
    return st;
}

/* Appends "{item" or ",item"; on allocation failure the item is left out
 * (a lock not taken up front is still taken by the handler). */
static void
lockset_append(char **buf, size_t *len, size_t *cap, const char *item)
{
    size_t n = strlen(item);

    if (*len + n + 3 > *cap) {
        size_t grown = (*cap ? *cap * 2 : 1024) + n;
        char *b = realloc(*buf, grown);

        if (b == NULL)
            return;
        *buf = b;
        *cap = grown;
    }
    (*buf)[*len] = *len == 0 ? '{' : ',';
    memcpy(*buf + *len + 1, item, n + 1);
    *len += n + 1;
}

static void
msglocks_add_product(apply_msglocks_t *ml, const json_t *obj)
{
    char err[8];
    int64_t id;

    if (ml->nproducts < APPLY_MSG_MAX_PRODUCTS &&
        json_field_id(obj, "product_id", 1, &id, err, sizeof(err)) == 0)
        ml->products[ml->nproducts++] = id;
}

void
apply_msglocks_parse(apply_msglocks_t *ml, const void *payload, size_t len)
{
    json_t *root, *items, *it;
    const char *oid;
    size_t i;

    ml->order[0] = '\0';
    ml->nproducts = 0;
    if (len > CMD_MAX_BYTES)
        return;
    root = json_loadb(payload, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    oid = json_string_value(json_object_get(root, "order_id"));
    if (oid != NULL && od_is_uuid(oid))
        snprintf(ml->order, sizeof(ml->order), "%s", oid);
    msglocks_add_product(ml, root);
    items = json_object_get(root, "items");
    json_array_foreach(items, i, it)
    {
        msglocks_add_product(ml, it);
    }
    json_decref(root);
}

void
apply_lockset_add(apply_lockset_t *ls, const apply_msglocks_t *ml)
{
    if (ml->order[0] != '\0') {
        lockset_append(&ls->orders, &ls->olen, &ls->ocap, ml->order);
        ls->norders++;
    }
    for (int i = 0; i < ml->nproducts; i++) {
        char buf[24];

        snprintf(buf, sizeof(buf), "%lld", (long long)ml->products[i]);
        lockset_append(&ls->products, &ls->plen, &ls->pcap, buf);
        ls->nproducts++;
    }
}

static void
lockset_close_one(char **buf, size_t *len, size_t *cap)
{
    if (*len == 0 || *buf == NULL) {
        free(*buf);
        *buf = strdup("{}");
        *len = *cap = 2;
        return;
    }
    /* lockset_append always leaves room for two more bytes */
    (*buf)[(*len)++] = '}';
    (*buf)[*len] = '\0';
}

void
apply_lockset_close(apply_lockset_t *ls)
{
    lockset_close_one(&ls->orders, &ls->olen, &ls->ocap);
    lockset_close_one(&ls->products, &ls->plen, &ls->pcap);
}

void
apply_lockset_free(apply_lockset_t *ls)
{
    free(ls->orders);
    free(ls->products);
    memset(ls, 0, sizeof(*ls));
}
