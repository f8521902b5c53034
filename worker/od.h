/* od.h - status codes and small helpers shared by every orderd module */
#ifndef OD_H
#define OD_H

#include <stddef.h>
#include <stdint.h>

/*
 * The worker's real choices after any step:
 *   OD_OK      carry on
 *   OD_RETRY   transient (connection lost, deadlock, serialization failure,
 *              admin shutdown): roll back, back off, retry the whole batch
 *   OD_REJECT  business or input refusal: a result, not a failure
 *   OD_FATAL   unexpected: the current command becomes internal_error (or
 *              the worker halts with --on-internal-error=halt)
 */
typedef enum od_status { OD_OK = 0, OD_RETRY, OD_REJECT, OD_FATAL } od_status_t;

#define OD_MUSTCHECK __attribute__((warn_unused_result))
#define OD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define OD_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* snprintf into err/errlen, tolerating a NULL or empty buffer */
void od_err(char *err, size_t errlen, const char *fmt, ...) OD_PRINTF(3, 4);

/* wall-clock time in microseconds since the epoch */
int64_t od_now_us(void);
/* monotonic time in microseconds */
int64_t od_mono_us(void);

/* Formats epoch microseconds as RFC 3339 UTC with milliseconds into buf
 * (at least 32 bytes). Returns buf. */
char *od_format_time(int64_t us, char *buf, size_t len);

/* Parses an RFC 3339 timestamp ("2026-11-21T10:00:00Z", optional fraction,
 * Z or +hh:mm offset) into epoch microseconds. Returns 0 on success, -1 on
 * a malformed or out-of-range value. */
int od_parse_time(const char *s, int64_t *out_us);

/* Writes a fresh random (version 4) UUID as 36 chars + NUL into out. */
void od_uuid_v4(char out[37]);

/* The length of a W3C traceparent header value (version 00). */
#define OD_TRACEPARENT_LEN 55

/*
 * 1 if the len bytes at s are a W3C trace context traceparent value that
 * can be passed on: "vv-<32 hex trace id>-<16 hex parent id>-<2 hex
 * flags>", lower-case hex, version not ff, ids not all zero. Anything else
 * (from a producer we do not trust) is dropped, not copied.
 */
int od_traceparent_valid(const void *s, size_t len);

/* 1 if s is a canonical lower- or upper-case 8-4-4-4-12 hex UUID */
int od_is_uuid(const char *s);

/* room od_escape needs to never truncate n input bytes (with the NUL) */
#define OD_ESCAPE_SIZE(n) (4 * (size_t)(n) + 1)

/*
 * Copies the NUL-terminated s into out (outlen bytes, always terminated
 * when outlen > 0) so that it can go on a log line or into a Kafka header
 * whatever it holds: newline, CR and tab become \n, \r, \t; other control
 * bytes (C0, DEL, and the C1 range U+0080..U+009F), and bytes that are not
 * well-formed UTF-8, become \xNN; a backslash becomes \\. Printable
 * UTF-8 is kept as is. The result is valid UTF-8 without control bytes.
 * Output that does not fit is cut before a whole escape or character.
 * Returns out.
 */
char *od_escape(const char *s, char *out, size_t outlen);

#endif
