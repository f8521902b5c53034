/* order.c - lifecycle helpers: lock and load an order, check who may act on
 * it, and move it through the state machine with its history row */
#include "order.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const db_stmt_t stmt_order_lock = {
    "order_lock", "SELECT status, customer_id, currency, total_cents,"
                  " (extract(epoch FROM expires_at) * 1000000)::bigint, number,"
                  " payment_id, paid_cents"
                  " FROM orders WHERE id = $1 FOR UPDATE"};

/* lines of the order, and those sold by someone other than $2 */
static const db_stmt_t stmt_order_vendor_lines = {
    "order_vendor_lines",
    "SELECT count(*), count(*) FILTER (WHERE vendor_id <> $2)"
    " FROM order_items WHERE order_id = $1"};

static const db_stmt_t stmt_order_set_status = {
    "order_set_status",
    "UPDATE orders SET status = $2, updated_at = now() WHERE id = $1"};

static const db_stmt_t stmt_order_history = {
    "order_history_insert",
    "INSERT INTO order_status_history (order_id, from_status, to_status,"
    " actor_role, actor_id, dedup_key, note, source)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"};

od_status_t
order_parse_id(const json_t *root, void **out, char *err, size_t errlen)
{
    order_id_cmd_t *cmd = calloc(1, sizeof(*cmd));

    if (cmd == NULL) {
        od_err(err, errlen, "out of memory");
        return OD_REJECT;
    }
    if (json_field_uuid(root, "order_id", 1, cmd->order_id, err, errlen) < 0) {
        free(cmd);
        return OD_REJECT;
    }
    *out = cmd;
    return OD_OK;
}

const char *
order_cmd_order_id(const void *cmd)
{
    /* every lifecycle command struct starts with order_id */
    return cmd != NULL ? ((const order_id_cmd_t *)cmd)->order_id : NULL;
}

static od_status_t
order_load(apply_ctx_t *ctx, const char *order_id, order_row_t *o, int *found)
{
    const char *params[1] = {order_id};
    db_rows_t *rows = NULL;
    od_status_t st;
    int status;

    *found = 0;
    st = db_run(ctx->db, &stmt_order_lock, 1, params, &rows, ctx->err,
                ctx->errlen);
    if (st != OD_OK || db_nrows(rows) == 0)
        goto out;
    status = fsm_status_parse(db_val(rows, 0, 0));
    if (status < 0) {
        od_err(ctx->err, ctx->errlen, "order %s has unknown status '%s'",
               order_id, db_val(rows, 0, 0));
        st = OD_FATAL;
        goto out;
    }
    memset(o, 0, sizeof(*o));
    snprintf(o->id, sizeof(o->id), "%s", order_id);
    o->status = (fsm_status_t)status;
    snprintf(o->customer_id, sizeof(o->customer_id), "%s", db_val(rows, 0, 1));
    snprintf(o->currency, sizeof(o->currency), "%s", db_val(rows, 0, 2));
    o->total_cents = db_int64(rows, 0, 3);
    o->expires_at_us = db_int64(rows, 0, 4);
    snprintf(o->number, sizeof(o->number), "%s", db_val(rows, 0, 5));
    snprintf(o->payment_id, sizeof(o->payment_id), "%s", db_val(rows, 0, 6));
    o->paid_cents = db_isnull(rows, 0, 7) ? 0 : db_int64(rows, 0, 7);
    *found = 1;
out:
    db_rows_free(rows);
    return st;
}

/* 1 when every line of the order is sold by vendor_id (and there is one) */
static od_status_t
order_all_lines_of(apply_ctx_t *ctx, const char *order_id,
                   const char *vendor_id, int *yes)
{
    const char *params[2] = {order_id, vendor_id};
    db_rows_t *rows = NULL;
    od_status_t st;

    *yes = 0;
    st = db_run(ctx->db, &stmt_order_vendor_lines, 2, params, &rows, ctx->err,
                ctx->errlen);
    if (st == OD_OK && db_nrows(rows) == 1)
        *yes = db_int64(rows, 0, 0) > 0 && db_int64(rows, 0, 1) == 0;
    db_rows_free(rows);
    return st;
}

od_status_t
order_open(apply_ctx_t *ctx, const char *order_id, order_row_t *o,
           cmd_result_t *res)
{
    const cmd_env_t *env = ctx->env;
    od_status_t st;
    int found, allowed = 1;

    snprintf(res->order_id, sizeof(res->order_id), "%s", order_id);
    st = order_load(ctx, order_id, o, &found);
    if (st != OD_OK)
        return st;
    if (!found)
        return cmd_reject(res, "order_not_found", NULL);
    if (env->role == ROLE_CUSTOMER) {
        allowed = strcmp(env->actor_id, o->customer_id) == 0;
    } else if (env->role == ROLE_VENDOR) {
        st = order_all_lines_of(ctx, order_id, env->actor_id, &allowed);
        if (st != OD_OK)
            return st;
    }
    if (!allowed)
        return cmd_reject(
            res, "unauthorized",
            json_pack("{s:s, s:s}", "role", cmd_role_name(env->role), "error",
                      env->role == ROLE_CUSTOMER
                          ? "not the customer of this order"
                          : "not the vendor of every line of this order"));
    return OD_OK;
}

od_status_t
order_reject_transition(cmd_result_t *res, fsm_status_t from, fsm_status_t to,
                        json_t *extra)
{
    json_t *details = json_pack("{s:s, s:s}", "from", fsm_status_name(from),
                                "to", fsm_status_name(to));

    if (extra != NULL) {
        json_object_update(details, extra);
        json_decref(extra);
    }
    return cmd_reject(res, "invalid_transition", details);
}

od_status_t
order_transition(apply_ctx_t *ctx, order_row_t *o, fsm_status_t to,
                 const char *note, cmd_result_t *res)
{
    const cmd_env_t *env = ctx->env;
    const char *set[2] = {o->id, fsm_status_name(to)};
    const char *hist[8] = {o->id,
                           fsm_status_name(o->status),
                           fsm_status_name(to),
                           cmd_role_name(env->role),
                           env->actor_id,
                           env->dedup_key,
                           note != NULL && *note != '\0' ? note : NULL,
                           env->source};
    od_status_t st;

    if (!fsm_can(o->status, to))
        return order_reject_transition(res, o->status, to, NULL);
    /* no rows needed: sent with the next statement */
    st = db_queue_run(ctx->db, &stmt_order_set_status, 2, set, NULL, NULL, NULL,
                      ctx->err, ctx->errlen);
    if (st != OD_OK)
        return st;
    st = db_queue_run(ctx->db, &stmt_order_history, 8, hist, NULL, NULL, NULL,
                      ctx->err, ctx->errlen);
    if (st != OD_OK)
        return st;
    o->status = to;
    return OD_OK;
}

void
order_refund_required(cmd_result_t *res, const char *order_id,
                      const char *payment_id, int64_t amount_cents,
                      const char *currency, const char *reason)
{
    cmd_result_add_event(res, "payment.refund_required", order_id,
                         json_pack("{s:s, s:s, s:I, s:s, s:s}", "order_id",
                                   order_id, "payment_id", payment_id,
                                   "amount_cents", (json_int_t)amount_cents,
                                   "currency", currency, "reason", reason));
}
