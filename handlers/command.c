/* command.c - envelope parsing, field validation, fingerprints, results */
#include "command.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static const struct {
    const char *name;
    cmd_role_t role;
} role_names[] = {
    {"customer", ROLE_CUSTOMER}, {"vendor", ROLE_VENDOR}, {"admin", ROLE_ADMIN},
    {"payment", ROLE_PAYMENT},   {"system", ROLE_SYSTEM},
};

const char *
cmd_role_name(cmd_role_t role)
{
    for (size_t i = 0; i < OD_ARRAY_LEN(role_names); i++)
        if (role_names[i].role == role)
            return role_names[i].name;
    return "unknown";
}

cmd_role_t
cmd_role_parse(const char *name)
{
    for (size_t i = 0; i < OD_ARRAY_LEN(role_names); i++)
        if (strcmp(role_names[i].name, name) == 0)
            return role_names[i].role;
    return (cmd_role_t)0;
}

const char *
cmd_outcome_name(cmd_outcome_t outcome)
{
    switch (outcome) {
    case OUTCOME_APPLIED:
        return "applied";
    case OUTCOME_REJECTED:
        return "rejected";
    case OUTCOME_DUPLICATE:
        return "duplicate";
    case OUTCOME_DEFERRED:
        return "deferred";
    }
    return "unknown";
}

void
cmd_result_init(cmd_result_t *res)
{
    memset(res, 0, sizeof(*res));
    res->outcome = OUTCOME_APPLIED;
}

void
cmd_result_reset(cmd_result_t *res)
{
    json_decref(res->details);
    json_decref(res->order);
    json_decref(res->events);
    cmd_result_init(res);
}

od_status_t
cmd_reject(cmd_result_t *res, const char *reason, json_t *details)
{
    res->outcome = OUTCOME_REJECTED;
    res->reason = reason;
    json_decref(res->details);
    res->details = details;
    return OD_OK;
}

void
cmd_result_add_event(cmd_result_t *res, const char *type, const char *key,
                     json_t *payload)
{
    if (res->events == NULL)
        res->events = json_array();
    json_array_append_new(res->events,
                          json_pack("{s:s, s:s?, s:o}", "type", type, "key",
                                    key, "payload", payload));
}

int
command_dedup_key_valid(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++)
        if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e)
            return 0;
    return n >= 1 && n <= CMD_DEDUP_KEY_MAX;
}

static int
str_printable(const char *s)
{
    /* any UTF-8 (jansson validated it) but no control characters */
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int
json_field_str(const json_t *obj, const char *name, int required, char *out,
               size_t outlen, char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, name);
    const char *s;
    size_t n;

    if (v == NULL || json_is_null(v)) {
        if (!required)
            return 1;
        od_err(err, errlen, "field '%s' is required", name);
        return -1;
    }
    if (!json_is_string(v)) {
        od_err(err, errlen, "field '%s' must be a string", name);
        return -1;
    }
    s = json_string_value(v);
    n = json_string_length(v);
    if (n == 0 || n >= outlen || strlen(s) != n || !str_printable(s)) {
        od_err(err, errlen, "field '%s' must be 1..%zu printable characters",
               name, outlen - 1);
        return -1;
    }
    memcpy(out, s, n + 1);
    return 0;
}

int
json_field_int(const json_t *obj, const char *name, int required, int64_t min,
               int64_t max, int64_t *out, char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, name);
    json_int_t i;

    if (v == NULL || json_is_null(v)) {
        if (!required)
            return 1;
        od_err(err, errlen, "field '%s' is required", name);
        return -1;
    }
    if (!json_is_integer(v)) {
        od_err(err, errlen, "field '%s' must be an integer", name);
        return -1;
    }
    i = json_integer_value(v);
    if (i < min || i > max) {
        od_err(err, errlen,
               "field '%s' must be between %" PRId64 " and %" PRId64, name, min,
               max);
        return -1;
    }
    *out = (int64_t)i;
    return 0;
}

int
json_field_bool(const json_t *obj, const char *name, int required, int *out,
                char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, name);

    if (v == NULL || json_is_null(v)) {
        if (!required)
            return 1;
        od_err(err, errlen, "field '%s' is required", name);
        return -1;
    }
    if (!json_is_boolean(v)) {
        od_err(err, errlen, "field '%s' must be true or false", name);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

int
json_field_uuid(const json_t *obj, const char *name, int required, char out[37],
                char *err, size_t errlen)
{
    char buf[64];
    int rc = json_field_str(obj, name, required, buf, sizeof(buf), err, errlen);

    if (rc != 0)
        return rc;
    if (!od_is_uuid(buf)) {
        od_err(err, errlen, "field '%s' must be a UUID", name);
        return -1;
    }
    for (int i = 0; i < 36; i++)
        out[i] = (char)tolower((unsigned char)buf[i]);
    out[36] = '\0';
    return 0;
}

int
json_field_id(const json_t *obj, const char *name, int required, int64_t *out,
              char *err, size_t errlen)
{
    const json_t *v = json_object_get(obj, name);

    if (v != NULL && json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        long long n;

        if (*s == '\0' || *s == '0' || !isdigit((unsigned char)*s))
            goto bad;
        errno = 0;
        n = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0' || n <= 0)
            goto bad;
        *out = n;
        return 0;
    }
    if (v != NULL && !json_is_null(v) && !json_is_integer(v))
        goto bad;
    {
        int rc =
            json_field_int(obj, name, required, 1, INT64_MAX, out, err, errlen);
        if (rc < 0 && v != NULL && !json_is_null(v))
            goto bad;
        return rc;
    }
bad:
    od_err(err, errlen, "field '%s' must be a positive integer id", name);
    return -1;
}

void
command_fingerprint(const json_t *root, unsigned char out[32])
{
    char *canon =
        json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY);
    unsigned int len = 32;

    /* json_dumps only fails on allocation failure */
    if (canon == NULL) {
        memset(out, 0, 32);
        return;
    }
    EVP_Digest(canon, strlen(canon), out, &len, EVP_sha256(), NULL);
    free(canon);
}

static void
env_init(cmd_env_t *env)
{
    memset(env, 0, sizeof(*env));
}

int
command_check_event_time(const cmd_env_t *env, int64_t msg_ts_us,
                         int64_t now_us, int64_t max_skew_us,
                         int64_t max_age_us, char *err, size_t errlen)
{
    int64_t ref = msg_ts_us > 0 ? msg_ts_us : now_us;
    int64_t latest, earliest;
    char a[40], b[40];

    if (__builtin_add_overflow(now_us, max_skew_us, &latest))
        latest = INT64_MAX;
    if (ref > latest) {
        od_err(err, errlen,
               "the Kafka timestamp %s is later than this worker's clock "
               "plus --max-clock-skew",
               od_format_time(ref, a, sizeof(a)));
        return -1;
    }
    if (__builtin_add_overflow(ref, max_skew_us, &latest))
        latest = INT64_MAX;
    if (__builtin_sub_overflow(ref, max_age_us, &earliest))
        earliest = INT64_MIN;
    if (env->event_time_us > latest) {
        od_err(err, errlen,
               "issued_at %s is later than the Kafka timestamp %s plus "
               "--max-clock-skew",
               od_format_time(env->event_time_us, a, sizeof(a)),
               od_format_time(ref, b, sizeof(b)));
        return -1;
    }
    if (env->event_time_us < earliest) {
        od_err(err, errlen,
               "issued_at %s is earlier than the Kafka timestamp %s minus "
               "--max-event-age",
               od_format_time(env->event_time_us, a, sizeof(a)),
               od_format_time(ref, b, sizeof(b)));
        return -1;
    }
    return 0;
}

void
command_env_free(cmd_env_t *env)
{
    json_decref(env->root);
    free(env->cmd);
    env_init(env);
}

static int
parse_actor(const json_t *root, cmd_env_t *env, char *err, size_t errlen)
{
    const json_t *actor = json_object_get(root, "actor");
    char role[32];

    if (!json_is_object(actor)) {
        od_err(err, errlen, "field 'actor' must be an object");
        return -1;
    }
    if (json_field_str(actor, "role", 1, role, sizeof(role), err, errlen) < 0 ||
        json_field_str(actor, "id", 1, env->actor_id, sizeof(env->actor_id),
                       err, errlen) < 0)
        return -1;
    env->role = cmd_role_parse(role);
    if (env->role != 0)
        return 0;
    od_err(err, errlen,
           "actor role '%s' is not one of customer, vendor, "
           "admin, payment, system",
           role);
    return -1;
}

/* What every parse reads first: the size limit, the JSON and the dedup
 * key. */
static cmd_parse_t
parse_envelope(const char *buf, size_t len, cmd_env_t *env, char *err,
               size_t errlen)
{
    json_error_t jerr;
    const json_t *v;

    env_init(env);
    if (len > CMD_MAX_BYTES) {
        od_err(err, errlen, "command is %zu bytes, over the %d byte limit", len,
               CMD_MAX_BYTES);
        return CMD_PARSE_POISON;
    }
    /* strict: duplicate keys, bad UTF-8, NUL bytes and integer overflow are
     * all errors; NaN and Infinity are not JSON */
    env->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (env->root == NULL) {
        od_err(err, errlen, "not valid JSON: %s at line %d column %d",
               jerr.text, jerr.line, jerr.column);
        return CMD_PARSE_POISON;
    }
    if (!json_is_object(env->root)) {
        od_err(err, errlen, "command must be a JSON object");
        return CMD_PARSE_POISON;
    }
    v = json_object_get(env->root, "dedup_key");
    if (!json_is_string(v) ||
        strlen(json_string_value(v)) != json_string_length(v) ||
        !command_dedup_key_valid(json_string_value(v))) {
        od_err(err, errlen,
               "no usable dedup_key (1..%d printable ASCII "
               "characters)",
               CMD_DEDUP_KEY_MAX);
        return CMD_PARSE_POISON;
    }
    strcpy(env->dedup_key, json_string_value(v));
    return CMD_PARSE_OK;
}

cmd_parse_t
command_parse_identity(const char *buf, size_t len, cmd_env_t *env, char *err,
                       size_t errlen)
{
    cmd_parse_t rc = parse_envelope(buf, len, env, err, errlen);
    const json_t *type;

    if (rc != CMD_PARSE_OK)
        return rc;
    type = json_object_get(env->root, "type");
    if (json_is_string(type))
        env->handler = handler_find(json_string_value(type));
    return CMD_PARSE_OK;
}

/* --- the dedup key without a parse (a replay's re-read) -------------- */

static const char *
scan_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* p at an opening quote: past the closing one, or NULL; *plain is 0 when
 * the string holds an escape. */
static const char *
scan_string(const char *p, const char *end, int *plain)
{
    *plain = 1;
    for (p++; p < end; p++) {
        if (*p == '"')
            return p + 1;
        if (*p == '\\') {
            *plain = 0;
            p++;
        }
    }
    return NULL;
}

/* Past one value (string, number, literal, object or array), or NULL. */
static const char *
scan_value(const char *p, const char *end)
{
    int depth = 0, plain;

    while (p < end) {
        if (*p == '"') {
            p = scan_string(p, end, &plain);
            if (p == NULL)
                return NULL;
            if (depth == 0)
                return p;
            continue;
        }
        if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (depth == 0)
                return p; /* the end of the enclosing object */
            if (--depth == 0)
                return p + 1;
        } else if (depth == 0 && (*p == ',' || *p == ' ' || *p == '\t' ||
                                  *p == '\n' || *p == '\r')) {
            return p;
        }
        p++;
    }
    return depth == 0 ? p : NULL;
}

int
command_scan_dedup_key(const char *buf, size_t len, char *out)
{
    const char *p = buf, *end = buf + len, *k, *v;
    int found = 0, plain, is_key;

    if (len > CMD_MAX_BYTES)
        return 0;
    p = scan_ws(p, end);
    if (p == end || *p != '{')
        return 0;
    p = scan_ws(p + 1, end);
    if (p < end && *p == '}')
        return 0;
    for (;;) {
        if (p == end || *p != '"')
            return 0;
        k = p + 1;
        p = scan_string(p, end, &plain);
        if (p == NULL || !plain)
            return 0;
        is_key = p - 1 - k == 9 && memcmp(k, "dedup_key", 9) == 0;
        p = scan_ws(p, end);
        if (p == end || *p != ':')
            return 0;
        p = scan_ws(p + 1, end);
        if (is_key) {
            if (found || p == end || *p != '"')
                return 0;
            v = p + 1;
            p = scan_string(p, end, &plain);
            if (p == NULL || !plain || p - 1 - v < 1 ||
                p - 1 - v > CMD_DEDUP_KEY_MAX)
                return 0;
            for (const char *c = v; c < p - 1; c++)
                if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
                    return 0;
            memcpy(out, v, (size_t)(p - 1 - v));
            out[p - 1 - v] = '\0';
            found = 1;
        } else {
            p = scan_value(p, end);
            if (p == NULL)
                return 0;
        }
        p = scan_ws(p, end);
        if (p < end && *p == ',') {
            p = scan_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            break;
        return 0;
    }
    return found && scan_ws(p + 1, end) == end;
}

const unsigned char *
command_env_fingerprint(cmd_env_t *env)
{
    if (env->root == NULL)
        return NULL;
    if (!env->fingerprinted) {
        command_fingerprint(env->root, env->fingerprint);
        env->fingerprinted = 1;
    }
    return env->fingerprint;
}

cmd_parse_t
command_parse(const char *buf, size_t len, int64_t msg_ts_us, cmd_env_t *env,
              char *err, size_t errlen)
{
    char type[64], issued[64];
    cmd_parse_t first;
    int rc;

    first = parse_envelope(buf, len, env, err, errlen);
    if (first != CMD_PARSE_OK)
        return first;
    (void)command_env_fingerprint(env);
    env->event_time_us = msg_ts_us > 0 ? msg_ts_us : od_now_us();

    if (json_field_str(env->root, "type", 1, type, sizeof(type), err, errlen) <
        0)
        return CMD_PARSE_INVALID;
    env->handler = handler_find(type);
    if (env->handler == NULL) {
        od_err(err, errlen, "unknown command type '%s'", type);
        return CMD_PARSE_INVALID;
    }
    if (parse_actor(env->root, env, err, errlen) < 0)
        return CMD_PARSE_INVALID;
    rc = json_field_str(env->root, "issued_at", 0, issued, sizeof(issued), err,
                        errlen);
    if (rc < 0)
        return CMD_PARSE_INVALID;
    if (rc == 0 && od_parse_time(issued, &env->event_time_us) < 0) {
        od_err(err, errlen, "field 'issued_at' must be an RFC 3339 time");
        return CMD_PARSE_INVALID;
    }
    if (env->handler->parse(env->root, &env->cmd, err, errlen) != OD_OK)
        return CMD_PARSE_INVALID;
    if (env->handler->order_id != NULL) {
        const char *oid = env->handler->order_id(env->cmd);

        if (oid != NULL)
            snprintf(env->order_id, sizeof(env->order_id), "%s", oid);
    }
    return CMD_PARSE_OK;
}
