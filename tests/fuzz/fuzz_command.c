/* fuzz_command.c - fuzz target: the command envelope parser, from a Kafka
 * message body and timestamp to a dispatched, parsed command
 *
 * DESIGN: the input is the message body, optionally followed by a trailer
 * of one NUL byte and 8 little-endian bytes: the Kafka timestamp in
 * microseconds (any value, zero and negative included). Without the
 * trailer the timestamp is a fixed instant, so the committed seeds stay
 * plain JSON files and a run is repeatable. command_parse reaches every
 * handler's parse through the dispatch table; the target checks what the
 * executor relies on afterwards: the three-way outcome, an error text for
 * every refusal, a usable dedup key and fingerprint whenever the command
 * is not poison, a fingerprint that does not change when a producer
 * re-encodes the same JSON, and for a parsed command a handler, its
 * struct, one role, a lower-case order id and the right event time. The
 * identity-only parse (a replay's re-read batch) must agree with the full
 * one: poison exactly when it is, the same dedup key and, computed when
 * first asked for, the same fingerprint; and the scan for the dedup key
 * without a parse must find the parser's key whenever it finds one in a
 * body the parser reads.
 */
#include <ctype.h>
#include <string.h>

#include "../../handlers/command.h"
#include "fuzz.h"

#define TRAILER_LEN 9
#define DEFAULT_TS_US INT64_C(1763719200000000) /* 2025-11-21T10:00:00Z */

static int
one_role(cmd_role_t role)
{
    unsigned r = (unsigned)role;

    return r != 0 && (r & (r - 1)) == 0 && r <= ROLE_SYSTEM;
}

static int
lower_uuid(const char *s)
{
    if (!od_is_uuid(s))
        return 0;
    for (; *s != '\0'; s++)
        if (isupper((unsigned char)*s))
            return 0;
    return 1;
}

/* The fingerprint is the dedup check's notion of "the same body": it must
 * not depend on key order, whitespace or escapes. */
static void
check_fingerprint_stable(const cmd_env_t *env)
{
    char *text = json_dumps(env->root, JSON_INDENT(3) | JSON_ENSURE_ASCII);
    json_t *again;
    unsigned char fp[32];

    FUZZ_CHECK(text != NULL);
    again = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(again != NULL);
    command_fingerprint(again, fp);
    FUZZ_CHECK(memcmp(fp, env->fingerprint, sizeof(fp)) == 0);
    json_decref(again);
    free(text);
}

static void
check_event_time(const cmd_env_t *env, int64_t ts_us)
{
    const json_t *issued = json_object_get(env->root, "issued_at");
    int64_t want;

    if (json_is_string(issued)) {
        FUZZ_CHECK(od_parse_time(json_string_value(issued), &want) == 0);
        FUZZ_CHECK(env->event_time_us == want);
    } else if (ts_us > 0) {
        FUZZ_CHECK(env->event_time_us == ts_us);
    } else {
        FUZZ_CHECK(env->event_time_us > 0); /* the clock's */
    }
}

static void
check_parsed(const cmd_env_t *env, int64_t ts_us)
{
    const char *oid;

    FUZZ_CHECK(env->handler != NULL && env->cmd != NULL);
    FUZZ_CHECK(env->handler == handler_find(json_string_value(
                                   json_object_get(env->root, "type"))));
    FUZZ_CHECK(one_role(env->role));
    FUZZ_CHECK(env->actor_id[0] != '\0');
    oid = env->handler->order_id(env->cmd);
    if (oid == NULL) {
        FUZZ_CHECK(env->order_id[0] == '\0');
    } else {
        FUZZ_CHECK(lower_uuid(env->order_id));
        FUZZ_CHECK(strcmp(env->order_id, oid) == 0);
    }
    check_event_time(env, ts_us);
}

static void
check_identity_agrees(const char *data, size_t size, cmd_env_t *full,
                      cmd_parse_t full_rc)
{
    char err[512];
    cmd_env_t id;
    cmd_parse_t rc = command_parse_identity(data, size, &id, err, sizeof(err));

    char scanned[CMD_DEDUP_KEY_MAX + 1];

    FUZZ_CHECK((rc == CMD_PARSE_POISON) == (full_rc == CMD_PARSE_POISON));
    /* the scan may give up on anything, but what it finds in a body the
     * parser reads is the parser's key */
    if (command_scan_dedup_key(data, size, scanned) &&
        full_rc != CMD_PARSE_POISON)
        FUZZ_CHECK(strcmp(scanned, full->dedup_key) == 0);
    if (rc == CMD_PARSE_POISON) {
        FUZZ_CHECK(err[0] != '\0');
    } else {
        FUZZ_CHECK(rc == CMD_PARSE_OK && id.cmd == NULL);
        FUZZ_CHECK(strcmp(id.dedup_key, full->dedup_key) == 0);
        FUZZ_CHECK(!id.fingerprinted);
        FUZZ_CHECK(memcmp(command_env_fingerprint(&id),
                          command_env_fingerprint(full), 32) == 0);
        if (full_rc == CMD_PARSE_OK)
            FUZZ_CHECK(id.handler == full->handler);
    }
    command_env_free(&id);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t ts_us = DEFAULT_TS_US;
    char err[512];
    cmd_env_t env;
    cmd_parse_t rc;
    const json_t *key;

    if (size >= TRAILER_LEN && data[size - TRAILER_LEN] == '\0') {
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
            v |= (uint64_t)data[size - 8 + i] << (8 * i);
        ts_us = (int64_t)v;
        size -= TRAILER_LEN;
    }
    memset(err, 0, sizeof(err));
    rc = command_parse((const char *)data, size, ts_us, &env, err, sizeof(err));
    FUZZ_CHECK(rc == CMD_PARSE_OK || rc == CMD_PARSE_INVALID ||
               rc == CMD_PARSE_POISON);
    FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
    if (rc != CMD_PARSE_OK)
        FUZZ_CHECK(err[0] != '\0' && env.cmd == NULL);
    if (size > CMD_MAX_BYTES)
        FUZZ_CHECK(rc == CMD_PARSE_POISON);
    if (rc == CMD_PARSE_POISON) {
        FUZZ_CHECK(env.handler == NULL);
    } else {
        FUZZ_CHECK(json_is_object(env.root));
        key = json_object_get(env.root, "dedup_key");
        FUZZ_CHECK(command_dedup_key_valid(env.dedup_key));
        FUZZ_CHECK(json_is_string(key) &&
                   strcmp(json_string_value(key), env.dedup_key) == 0);
        check_fingerprint_stable(&env);
    }
    if (rc == CMD_PARSE_OK)
        check_parsed(&env, ts_us);
    check_identity_agrees((const char *)data, size, &env, rc);
    command_env_free(&env);
    return 0;
}
