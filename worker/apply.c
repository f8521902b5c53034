/* apply.c - one command at a time, on the batch machinery: the API of
 * callers that apply commands singly (the expiry scheduler, parked
 * commands that timed out, the integration harness)
 *
 * DESIGN: a single command is a batch of one in its own savepoint
 * (batch_apply_isolated): the same load, the same pure decide functions,
 * the same set-based writes as the executor's batches, so there is one
 * path for the business rules, not two. What stays here is what a result
 * event looks like, which both build.
 */
#include "apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../handlers/command.h"
#include "batch.h"
#include "deferred.h"
#include "log.h"

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

char *
apply_result_text(const cmd_env_t *env, const cmd_result_t *res,
                  const char *event_id, const apply_source_t *src)
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

od_status_t
apply_message(db_t *db, const apply_config_t *cfg, const void *payload,
              size_t len, const apply_source_t *src, apply_report_t *rep,
              char *err, size_t errlen)
{
    batch_msg_t m;
    od_status_t st;

    memset(&m, 0, sizeof(m));
    m.src = *src;
    m.payload = payload;
    m.len = len;
    m.quiet = cfg->quiet_duplicates;
    st = batch_apply_isolated(db, cfg, &m, err, errlen);
    *rep = m.rep;
    batch_msg_free(&m);
    return st;
}

od_status_t
apply_expire_deferred(db_t *db, const apply_config_t *cfg, int *n, char *err,
                      size_t errlen)
{
    db_rows_t *rows = NULL;
    od_status_t st;

    *n = 0;
    st = deferred_take_timed_out(db, cfg->defer_timeout_ms, &rows, err, errlen);
    for (int i = 0; st == OD_OK && i < db_nrows(rows); i++) {
        const od_source_t *known =
            sources_by_name(cfg->sources, db_val(rows, i, 6));
        /* a source no longer configured: authorised when parked */
        od_source_t gone = {"", NULL, ROLE_ALL};
        const char *order_id = db_val(rows, i, 7);
        batch_msg_t m;
        size_t len = 0;
        unsigned char *payload = db_bytea(rows, i, 0, &len);

        if (payload == NULL) {
            od_err(err, errlen, "out of memory");
            st = OD_RETRY;
            break;
        }
        if (known == NULL) {
            snprintf(gone.name, sizeof(gone.name), "%s", db_val(rows, i, 6));
            known = &gone;
        }
        memset(&m, 0, sizeof(m));
        m.src.source = known;
        m.src.topic = db_val(rows, i, 2);
        m.src.partition = (int32_t)db_int64(rows, i, 3);
        m.src.offset = db_int64(rows, i, 4);
        m.src.ts_us = db_int64(rows, i, 1);
        m.src.key = order_id;
        m.src.key_len = strlen(order_id);
        m.payload = payload;
        m.len = len;
        /* its order never came: it is decided again without one, and its
         * dedup row (deferred) gets the final outcome */
        m.resumed = 1;
        m.parked_id = db_int64(rows, i, 5);
        st = batch_apply_isolated(db, cfg, &m, err, errlen);
        if (st == OD_OK)
            (*n)++;
        batch_msg_free(&m);
        free(payload);
    }
    db_rows_free(rows);
    return st;
}
