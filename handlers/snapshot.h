/* snapshot.h - the rows one batch may touch, held in memory: what the pure
 * decide functions read and change, and what the batch writer turns into
 * one set-based statement per table
 *
 * DESIGN: a batch loads and locks every row its commands can touch in one
 * round trip (worker/batch_load.c), then decides each command in order
 * against this snapshot: a decide function reads rows, changes them only
 * through the snap_* calls below, and appends effects (ledger rows,
 * history rows, new orders) to the snapshot's logs. Each change is
 * recorded in an undo log, so a command that ends rejected is rolled back
 * in memory exactly as a SAVEPOINT would be (snap_mark / snap_rollback),
 * and the next command sees the stock and statuses the previous one left.
 * Nothing here does I/O: decide functions are unit-tested by building a
 * snapshot by hand. Rows are found by linear search: a batch touches at
 * most a few hundred rows.
 */
#ifndef OD_SNAPSHOT_H
#define OD_SNAPSHOT_H

#include <stdint.h>

#include "catalogue.h"
#include "checkout.h"
#include "fsm.h"
#include "handler.h"
#include "order.h"

#define SNAP_SOURCE_MAX 32

typedef struct snap_product {
    int64_t id;
    int exists; /* in the database when loaded (else created by the batch) */
    int is_variant;
    char vendor_id[CMD_ID_MAX + 1];
    char name[CATALOGUE_NAME_MAX + 1];
    char sku[CATALOGUE_SKU_MAX + 1];
    char currency[4];
    int64_t price_cents; /* -1: no price */
    int64_t stock;       /* simple products; 0 for variant products */
    int64_t low_stock_threshold;
    int deleted;
    /* written back by the batch writer: catalogue fields (upsert) and
     * stock (update) */
    int dirty;
    int stock_dirty;
} snap_product_t;

typedef struct snap_variant {
    int64_t id;
    int64_t product_id;
    int exists;
    char name[CATALOGUE_NAME_MAX + 1];
    char sku[CATALOGUE_SKU_MAX + 1];
    int64_t price_cents; /* -1: no price */
    int64_t stock;
    int deleted;
    int dirty;
    int stock_dirty;
} snap_variant_t;

typedef struct snap_item {
    int line_no; /* 1.. */
    int64_t product_id;
    int64_t variant_id; /* 0: none */
    char vendor_id[CMD_ID_MAX + 1];
    char sku[CATALOGUE_SKU_MAX + 1];
    char name[CATALOGUE_NAME_MAX + 1];
    char variant_name[CATALOGUE_NAME_MAX + 1]; /* "" when none */
    int64_t quantity;
    int64_t unit_price_cents;
} snap_item_t;

typedef struct snap_order {
    char id[37];
    int exists;  /* in the database when loaded */
    int created; /* inserted by this batch */
    char number[ORDER_NUMBER_MAX + 1];
    char customer_id[CMD_ID_MAX + 1];
    fsm_status_t status;
    char currency[4];
    int64_t subtotal_cents;
    char tax_country[3]; /* "" when none */
    int64_t tax_rate_bps;
    int64_t tax_cents;
    int64_t total_cents;
    char payment_id[CMD_ID_MAX + 1]; /* "" until paid */
    int64_t paid_cents;
    char tracking_number[ORDER_TRACKING_MAX + 1]; /* "" until shipped */
    int64_t created_at_us;
    int64_t expires_at_us;
    char dedup_key[CMD_DEDUP_KEY_MAX + 1]; /* the checkout's */
    char source[SNAP_SOURCE_MAX + 1];
    int nitems;
    snap_item_t *items; /* owned */
    /* for the writer: payment or tracking changed (status changes are in
     * the history log, one UPDATE per transition) */
    int dirty;
} snap_order_t;

typedef struct snap_tax_rate {
    char country[3];
    int64_t rate_bps;
    int dirty;
} snap_tax_rate_t;

/* One stock_ledger row to write. */
typedef struct snap_ledger {
    int64_t product_id;
    int64_t variant_id; /* 0: none */
    int64_t delta;
    const char *reason; /* static: initial, adjust, order, ... */
    char order_id[37];  /* "" when none */
    char dedup_key[CMD_DEDUP_KEY_MAX + 1];
    char source[SNAP_SOURCE_MAX + 1];
} snap_ledger_t;

/* One order_status_history row to write (and, for an existing order, one
 * status UPDATE: the writer applies them in order). */
typedef struct snap_history {
    char order_id[37];
    int from; /* fsm_status_t, -1: none (the order was created) */
    fsm_status_t to;
    cmd_role_t role;
    char actor_id[CMD_ID_MAX + 1];
    char dedup_key[CMD_DEDUP_KEY_MAX + 1];
    char source[SNAP_SOURCE_MAX + 1];
    char note[ORDER_NOTE_MAX + 1]; /* "" when none */
} snap_history_t;

/* A growable array of pointers to separately allocated elements: a row's
 * address never changes while the batch runs, so a decide function may
 * hold it across calls that add rows. */
typedef struct snap_vec {
    void **v;
    int n, cap;
} snap_vec_t;

typedef struct snapshot {
    snap_vec_t products; /* snap_product_t */
    snap_vec_t variants; /* snap_variant_t */
    snap_vec_t orders;   /* snap_order_t */
    snap_vec_t taxes;    /* snap_tax_rate_t */
    snap_vec_t ledger;   /* snap_ledger_t, append-only */
    snap_vec_t history;  /* snap_history_t, append-only */
    snap_vec_t undo;     /* private: saved rows for snap_rollback */
    /* order numbers reserved for the batch's checkouts (nextval) */
    int64_t *numbers;
    int nnumbers, numbers_used;
    /* set when a change could not be recorded (no memory) or a row the
     * load must have held was not there: the command is an internal error */
    int missing;
} snapshot_t;

/* A point to roll back to: what snap_mark returns. */
typedef struct snap_mark {
    int undo, ledger, history, orders, products, variants, taxes;
    int numbers_used;
} snap_mark_t;

void snap_init(snapshot_t *s);
void snap_free(snapshot_t *s);

/*
 * Marks do not nest: the batch marks before each command, then either
 * rolls back to the mark (rejected) or keeps the command's changes with
 * snap_forget_undo, which drops its saved rows (a row is saved once, at
 * its first change after the mark).
 */
snap_mark_t snap_mark(const snapshot_t *s);
/* Undoes every change since m (rows restored, logs truncated, rows added
 * since removed). */
void snap_rollback(snapshot_t *s, snap_mark_t m);
/* Keeps every change made since the last mark. */
void snap_forget_undo(snapshot_t *s);

/*
 * Lookups. A row the batch created is found like a loaded one. NULL when
 * the row does not exist: the load holds every row the batch's commands
 * can name, so a row it did not find is not in the database.
 */
snap_product_t *snap_product(snapshot_t *s, int64_t id);
snap_variant_t *snap_variant(snapshot_t *s, int64_t id);
snap_order_t *snap_order(snapshot_t *s, const char *id);
/* the rate of a country, or -1 when none is set */
int64_t snap_tax_rate(snapshot_t *s, const char *country);

/*
 * Changes, each recorded for snap_rollback. Call snap_touch_* before
 * changing any field of a row in place (it saves the row once per mark).
 */
void snap_touch_product(snapshot_t *s, snap_product_t *p);
void snap_touch_variant(snapshot_t *s, snap_variant_t *v);
void snap_touch_order(snapshot_t *s, snap_order_t *o);

/* New rows (the batch creates them); return the row, zeroed but for its
 * key, exists = 0. NULL on allocation failure. */
snap_product_t *snap_add_product(snapshot_t *s, int64_t id);
snap_variant_t *snap_add_variant(snapshot_t *s, int64_t id, int64_t product_id);
snap_order_t *snap_add_order(snapshot_t *s, const char *id);

/* Sets a tax rate (upsert). */
void snap_set_tax_rate(snapshot_t *s, const char *country, int64_t rate_bps);

/*
 * Changes the stock of a product (variant_id 0) or variant by delta and
 * logs its ledger row (reason static, order_id may be NULL; the key and
 * source come from env). A decrement that takes stock from above the
 * product's low_stock_threshold to at or below it queues a stock.low event
 * on res (may be NULL). Returns 0, or -1 when the row is missing or the
 * result would be negative or overflow (nothing changed).
 */
int snap_stock_change(snapshot_t *s, const cmd_env_t *env, int64_t product_id,
                      int64_t variant_id, int64_t delta, const char *reason,
                      const char *order_id, cmd_result_t *res);

/*
 * Moves order o to status to if the state machine allows it, logging the
 * history row (actor from env, note may be NULL). Returns 0, or -1 with
 * res rejected invalid_transition (details from, to) and nothing changed.
 */
int snap_order_transition(snapshot_t *s, snap_order_t *o, fsm_status_t to,
                          const cmd_env_t *env, const char *note,
                          cmd_result_t *res);

/* Logs a history row for order_id (from -1: the order was created) with
 * the actor of env; note may be NULL. */
void snap_history_add(snapshot_t *s, const char *order_id, int from,
                      fsm_status_t to, const cmd_env_t *env, const char *note);

/* Gives back the stock of every line of o (aggregated per product and
 * variant) with ledger rows of the given reason. 0, or -1 when a row is
 * missing (s->missing set). */
int snap_restore_order_stock(snapshot_t *s, const snap_order_t *o,
                             const char *reason, const cmd_env_t *env,
                             cmd_result_t *res);

/* The next reserved order number (its value; the prefix is added by the
 * caller), or -1 when the batch reserved too few. */
int64_t snap_take_number(snapshot_t *s);

/* The order as result events show it (orders are receipts: the snapshot's
 * values, never recomputed). Caller owns the JSON. */
json_t *snap_order_json(const snap_order_t *o);

/* Appends elem to v; 0, or -1 when out of memory (elem stays the
 * caller's). */
int snap_vec_push(snap_vec_t *v, void *elem);
/* Appends a zeroed element of size bytes to v; NULL when out of memory. */
void *snap_vec_new(snap_vec_t *v, size_t size);

/* Row i of a vector, typed (no bounds check beyond an assert). */
#define SNAP_ROW(vec, type, i) ((type *)(vec).v[(i)])

/*
 * What every decide function gets: the snapshot (read and changed), the
 * command's envelope (source, actor, event time) and the settings.
 */
struct decide_ctx {
    snapshot_t *snap;
    const cmd_env_t *env;
    const domain_config_t *cfg;
};

/*
 * A handler's business rules: from the parsed command and the snapshot to
 * the result (applied, or rejected with a stable reason via cmd_reject),
 * with the snapshot updated for an applied command. Pure: no SQL, no
 * clock (event time is in env). OD_OK, or OD_FATAL with err when the
 * snapshot lacks a row the load should have held (an internal error).
 * A rejected command may leave changes behind: the batch rolls the
 * snapshot back to its mark.
 */
/* (handler_decide_fn, in handler.h) */

/*
 * The order a lifecycle command names, checked for its actor: a customer
 * only on their own order, a vendor only when every line is theirs (admin,
 * system and payment are limited by the roles table only). Sets
 * res->order_id. NULL with res rejected order_not_found or unauthorized.
 */
snap_order_t *decide_open_order(decide_ctx_t *ctx, const char *order_id,
                                cmd_result_t *res);

#endif
