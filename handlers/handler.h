/* handler.h - the command handler interface, the command envelope and the
 * result every command produces */
#ifndef OD_HANDLER_H
#define OD_HANDLER_H

#include <jansson.h>

#include "../worker/od.h"

#define CMD_MAX_BYTES (64 * 1024)
#define CMD_DEDUP_KEY_MAX 200
#define CMD_ID_MAX 128 /* customer, vendor, actor, payment ids */

typedef enum cmd_role {
    ROLE_CUSTOMER = 1 << 0,
    ROLE_VENDOR = 1 << 1,
    ROLE_ADMIN = 1 << 2,
    ROLE_PAYMENT = 1 << 3,
    ROLE_SYSTEM = 1 << 4
} cmd_role_t;
#define ROLE_ALL                                                               \
    (ROLE_CUSTOMER | ROLE_VENDOR | ROLE_ADMIN | ROLE_PAYMENT | ROLE_SYSTEM)

typedef enum cmd_outcome {
    OUTCOME_APPLIED = 0,
    OUTCOME_REJECTED,
    OUTCOME_DUPLICATE,
    OUTCOME_DEFERRED
} cmd_outcome_t;

typedef struct handler handler_t;

/* A parsed, validated command: envelope fields plus the handler's struct. */
typedef struct cmd_env {
    char dedup_key[CMD_DEDUP_KEY_MAX + 1];
    /* the source it came from (set by the batch, not the body): with
     * dedup_key, the command's identity */
    char source[33];
    const handler_t *handler;
    cmd_role_t role;
    char actor_id[CMD_ID_MAX + 1];
    int64_t event_time_us; /* issued_at, else the Kafka timestamp */
    char order_id[37];     /* the order the command names, "" if none */
    /* SHA-256 of the canonical body; read it through
     * command_env_fingerprint (an identity-only parse leaves it to be
     * computed when first needed) */
    unsigned char fingerprint[32];
    int fingerprinted;
    json_t *root; /* the parsed body, owned */
    void *cmd;    /* handler struct, owned (free()) */
} cmd_env_t;

/* Settings the business rules depend on. */
typedef struct domain_config {
    int64_t default_tax_bps;
    int64_t pending_ttl_s;
    int64_t expiry_grace_s;
    const char *order_prefix; /* "ORD-" */
    const char *events_topic; /* where extra events go */
} domain_config_t;

/*
 * What a command did. reason is a static stable string (NULL when applied).
 * details, order and events are owned by the result (cmd_result_reset frees
 * them). events is an array of {"type", "key", "payload"} objects that the
 * executor writes to the outbox next to the command.result event.
 */
typedef struct cmd_result {
    cmd_outcome_t outcome;
    const char *reason;
    json_t *details;
    char order_id[37];
    json_t *order;
    json_t *events;
} cmd_result_t;

/*
 * parse: JSON body to a malloc'ed struct in *out. Pure. OD_OK, or OD_REJECT
 *        with a human-readable err (the command is invalid_command).
 */
typedef od_status_t (*handler_parse_fn)(const json_t *root, void **out,
                                        char *err, size_t errlen);
/* the order the parsed command names, or NULL */
typedef const char *(*handler_order_id_fn)(const void *cmd);

/* decide: the business rules over the batch's snapshot (snapshot.h) */
typedef struct decide_ctx decide_ctx_t;
typedef od_status_t (*handler_decide_fn)(decide_ctx_t *ctx, const void *cmd,
                                         cmd_result_t *res);

struct handler {
    const char *type;
    unsigned roles; /* cmd_role_t bits allowed to send this type */
    handler_parse_fn parse;
    handler_order_id_fn order_id;
    int creates_order; /* parked commands for the order follow it */
    handler_decide_fn decide;
};

/* The dispatch table lookup; NULL for an unknown type. */
const handler_t *handler_find(const char *type);
/* The i-th entry of the dispatch table, NULL past the end: for code that
 * must cover every handler (the fuzz targets). */
const handler_t *handler_at(size_t i);
/*
 * What may happen next to an order in status (a name, "pending", ...): one
 * object per transition the state machine table (fsm.c) allows from it,
 * {"command", "to", "roles": [...]}, the roles being those the dispatch
 * table admits for the command. A customer may act only on its own
 * orders and a vendor only on orders whose every line is theirs
 * (snapshot.c), which
 * "roles" does not repeat. A new reference (caller decrefs): an empty
 * array for a final or unknown status, NULL when out of memory.
 */
json_t *handler_available_actions(const char *status);

/* result helpers */
void cmd_result_init(cmd_result_t *res);
void cmd_result_reset(cmd_result_t *res);
/* Marks res rejected with a stable reason; takes ownership of details
 * (may be NULL). Returns OD_OK so decide can `return cmd_reject(...)`. */
od_status_t cmd_reject(cmd_result_t *res, const char *reason, json_t *details);
/* Queues an extra event (order.expired, stock.low, ...); takes ownership
 * of payload. type and key are copied. */
void cmd_result_add_event(cmd_result_t *res, const char *type, const char *key,
                          json_t *payload);

const char *cmd_role_name(cmd_role_t role);
/* The role of that name, or 0 when there is none. */
cmd_role_t cmd_role_parse(const char *name);
const char *cmd_outcome_name(cmd_outcome_t outcome);

/*
 * Field readers for parse functions. Each returns 0 on success, -1 with err
 * filled ("field 'x' must be ...") when the field is missing (and
 * required), has the wrong type or is out of range. An absent optional
 * field leaves *out untouched and returns 1.
 */
int json_field_str(const json_t *obj, const char *name, int required, char *out,
                   size_t outlen, char *err, size_t errlen);
int json_field_int(const json_t *obj, const char *name, int required,
                   int64_t min, int64_t max, int64_t *out, char *err,
                   size_t errlen);
int json_field_bool(const json_t *obj, const char *name, int required, int *out,
                    char *err, size_t errlen);
/* a UUID string, normalised to lower case */
int json_field_uuid(const json_t *obj, const char *name, int required,
                    char out[37], char *err, size_t errlen);
/* a positive integer id given as a JSON integer or a decimal string */
int json_field_id(const json_t *obj, const char *name, int required,
                  int64_t *out, char *err, size_t errlen);

#endif
