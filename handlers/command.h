/* command.h - envelope parsing, validation and fingerprints */
#ifndef OD_COMMAND_H
#define OD_COMMAND_H

#include "handler.h"

typedef enum cmd_parse {
    CMD_PARSE_OK = 0,  /* env fully filled, env->cmd parsed */
    CMD_PARSE_INVALID, /* dedup_key readable: reject invalid_command */
    CMD_PARSE_POISON   /* not JSON, too big, no usable dedup_key: DLQ */
} cmd_parse_t;

/*
 * Parses one message body. msg_ts_us is the Kafka timestamp, used as the
 * event time when issued_at is absent. env is always initialised and must
 * be released with command_env_free, whatever the return value. For
 * CMD_PARSE_INVALID, env->dedup_key and the fingerprint are set, and
 * env->handler when the type is known. err says what is wrong.
 */
cmd_parse_t command_parse(const char *buf, size_t len, int64_t msg_ts_us,
                          cmd_env_t *env, char *err, size_t errlen);
void command_env_free(cmd_env_t *env);

/*
 * The identity only: what command_parse reads first (the size limit, the
 * JSON, the dedup_key) and the handler when the type is known, nothing
 * else checked and no fingerprint computed. For a replay's re-read batch,
 * whose quiet duplicates need no more than their identity; a message it
 * finds new is parsed again with command_parse. Returns CMD_PARSE_POISON
 * exactly when command_parse would, else CMD_PARSE_OK.
 */
cmd_parse_t command_parse_identity(const char *buf, size_t len, cmd_env_t *env,
                                   char *err, size_t errlen);

/*
 * The dedup key of a body without parsing it: a scan of the top-level
 * object for a "dedup_key" member whose key and value have no escapes
 * and whose value is a valid dedup key. 1 with the key in out (at least
 * CMD_DEDUP_KEY_MAX + 1 bytes), 0 when the scan gives up (anything
 * unusual: escapes, the member twice or missing, bytes after the object).
 * It does not validate the JSON: for a valid body it finds what
 * command_parse would, and that is all a caller may rely on (a replay
 * trusts it only for a message re-read where its dedup row was written).
 */
int command_scan_dedup_key(const char *buf, size_t len, char *out);

/* The body's fingerprint (computed now if the parse left it); NULL when
 * the body was not JSON. */
const unsigned char *command_env_fingerprint(cmd_env_t *env);

/*
 * Contract v2's bounds on event time, for a parsed command: issued_at no
 * later than the Kafka timestamp plus max_skew_us and no earlier than it
 * minus max_age_us, and the Kafka timestamp itself (a producer may set
 * it) no later than now_us plus max_skew_us. A message without a Kafka
 * timestamp is judged against now_us. Returns 0, or -1 with err saying
 * which bound was crossed.
 */
int command_check_event_time(const cmd_env_t *env, int64_t msg_ts_us,
                             int64_t now_us, int64_t max_skew_us,
                             int64_t max_age_us, char *err, size_t errlen);

/* SHA-256 of the canonical form (sorted keys, compact) of a JSON value. */
void command_fingerprint(const json_t *root, unsigned char out[32]);

/* 1 if s is 1..200 printable ASCII characters */
int command_dedup_key_valid(const char *s);

#endif
