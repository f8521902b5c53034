/* 0650_hostile_input: poison messages whose parse errors quote a newline,
 * an ESC sequence, a C1 control and bytes that are not UTF-8 go to the
 * DLQ unchanged, with an orderd-error header that is the escaped error
 * (valid UTF-8, no control bytes); the worker's log keeps each of them on
 * one line and sends no control byte to the terminal. The password of the
 * connection string stays out of the log, even where the server's
 * refusal quotes it, and a malformed string is refused without being
 * shown. */
#include "ktest.h"

#include <ctype.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../handlers/command.h"

static ktest_t k;
static pid_t worker;

typedef struct hostile {
    const char *payload;
    const char *quoted; /* raw bytes its parse error quotes */
} hostile_t;

static const hostile_t cases[] = {
    /* an escape cut by a newline: jansson quotes the newline */
    {"{\"dedup_key\":\"\\\n\x1b[31m\xff\"}", "\n"},
    /* trailing bytes: jansson quotes the ESC that starts them */
    {"{\"a\":1}\x1b[31mred\xff", "\x1b"},
    /* C1 CSI (U+009B), which some terminals take for ESC [ */
    {"{\"a\":1}\xc2\x9b"
     "31m",
     "\xc2\x9b"},
    /* not UTF-8 at all: the error quotes nothing, the payload is kept */
    {"\xff\x1b[31m\n", NULL},
};
#define NCASES ((int)(sizeof(cases) / sizeof(cases[0])))

static void
setup_no_worker(void)
{
    int fd;

    ktest_setup(&k, "hostile_input", 1);
    snprintf(k.worker_stderr, sizeof(k.worker_stderr),
             "/tmp/orderd-0650-XXXXXX");
    fd = mkstemp(k.worker_stderr);
    ck_assert_int_ge(fd, 0);
    close(fd);
    worker = 0;
}

static void
setup(void)
{
    setup_no_worker();
    worker = ktest_worker_start(&k, NULL);
}

static void
teardown(void)
{
    if (worker > 0)
        ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    unlink(k.worker_stderr);
    ktest_teardown(&k);
}

/* The parse error orderd reports for a payload (the same parser). */
static void
parse_error(const char *payload, char *perr, size_t len)
{
    cmd_env_t env;

    ck_assert_int_eq(
        command_parse(payload, strlen(payload), 0, &env, perr, len),
        CMD_PARSE_POISON);
    command_env_free(&env);
}

static int
has_control_bytes(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f ||
            (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
             (unsigned char)s[i + 1] <= 0x9f))
            return 1;
    }
    return 0;
}

static int
valid_utf8(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    int ok = j != NULL;

    json_decref(j);
    return ok;
}

static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);

    ck_assert_ptr_nonnull(f);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    return buf;
}

static int
count(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

START_TEST(test_poison_errors_are_escaped_in_dlq_and_log)
{
    static const char *warn = "poison message to the dead-letter topic: ";
    char perr[NCASES][256], want[NCASES][OD_ESCAPE_SIZE(256)];
    int seen[NCASES] = {0};
    char *log;
    size_t loglen;
    int64_t end;

    for (int i = 0; i < NCASES; i++) {
        parse_error(cases[i].payload, perr[i], sizeof(perr[i]));
        /* the test means something only if the raw error is hostile */
        if (cases[i].quoted != NULL)
            ck_assert_msg(strstr(perr[i], cases[i].quoted) != NULL,
                          "case %d: the parse error no longer quotes the "
                          "input: %s",
                          i, perr[i]);
        od_escape(perr[i], want[i], sizeof(want[i]));
        ktest_send(&k, "k", cases[i].payload);
    }
    ktest_flush(&k);
    ck_assert_int_eq(ktest_wait_dlq(&k, NCASES, 60), NCASES);

    for (int m = 0; m < NCASES; m++) {
        const rd_kafka_message_t *rkm = k.dlq_msgs[m];
        size_t len, olen;
        const char *e = ktest_dlq_header(&k, m, "orderd-error", &len);
        const char *off =
            ktest_dlq_header(&k, m, "orderd-source-offset", &olen);
        char offs[32];
        int i;

        ck_assert_msg(e != NULL && off != NULL && olen < sizeof(offs),
                      "DLQ message %d without its headers", m);
        snprintf(offs, sizeof(offs), "%.*s", (int)olen, off);
        i = atoi(offs);
        ck_assert_int_ge(i, 0);
        ck_assert_int_lt(i, NCASES);
        seen[i]++;
        ck_assert_msg(!has_control_bytes(e, len),
                      "case %d: control bytes in orderd-error", i);
        ck_assert_msg(valid_utf8(e, len), "case %d: orderd-error not UTF-8", i);
        /* nothing lost: the escaped error, and the payload byte for byte */
        ck_assert_int_eq(len, strlen(want[i]));
        ck_assert_mem_eq(e, want[i], len);
        ck_assert_int_eq(rkm->len, strlen(cases[i].payload));
        ck_assert_mem_eq(rkm->payload, cases[i].payload, rkm->len);
    }
    for (int i = 0; i < NCASES; i++)
        ck_assert_int_eq(seen[i], 1);

    /* the warnings are written before the DLQ copies commit; poll anyway,
     * bounded, in case stderr reaches the file late */
    end = od_mono_us() + 10 * 1000000LL;
    for (;;) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        log = slurp(k.worker_stderr, &loglen);
        if (count(log, warn) >= NCASES || od_mono_us() >= end)
            break;
        free(log);
        nanosleep(&ts, NULL); /* polling interval */
    }
    ck_assert_int_eq(count(log, warn), NCASES);
    ck_assert_msg(memchr(log, 0x1b, loglen) == NULL, "raw ESC in the log");
    ck_assert_msg(strstr(log, "\xc2\x9b") == NULL, "raw C1 CSI in the log");
    ck_assert_msg(valid_utf8(log, loglen), "the log is not valid UTF-8");
    /* one line per message: every line is a whole log line (it starts
     * with the timestamp), and each warning ends where its error does */
    memset(seen, 0, sizeof(seen));
    for (char *line = log, *nl; *line != '\0'; line = nl + 1) {
        const char *w;

        nl = strchr(line, '\n');
        ck_assert_msg(nl != NULL, "the log does not end with a newline");
        *nl = '\0';
        ck_assert_msg(strlen(line) > 24 && isdigit((unsigned char)line[0]) &&
                          line[4] == '-' && line[10] == 'T',
                      "a split log line: %s", line);
        ck_assert_msg(strchr(line, '\r') == NULL && strchr(line, '\t') == NULL,
                      "raw CR or tab in: %s", line);
        if ((w = strstr(line, warn)) == NULL)
            continue;
        w += strlen(warn);
        for (int i = 0; i < NCASES; i++)
            if (strcmp(w, want[i]) == 0)
                seen[i]++;
    }
    for (int i = 0; i < NCASES; i++)
        ck_assert_msg(seen[i] == 1, "case %d: %d whole warning lines for %s", i,
                      seen[i], want[i]);
    free(log);
}
END_TEST

/* Polls the worker's stderr until it holds needle or timeout_s; returns
 * the log (caller frees). */
static char *
wait_log(const char *needle, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;
    size_t len;

    for (;;) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        char *log = slurp(k.worker_stderr, &len);

        if (strstr(log, needle) != NULL || od_mono_us() >= end)
            return log;
        free(log);
        nanosleep(&ts, NULL); /* polling interval */
    }
}

/* the line of log holding needle, copied into line */
static const char *
line_of(const char *log, const char *needle, char *line, size_t len)
{
    const char *p = strstr(log, needle), *b, *e;

    ck_assert_msg(p != NULL, "no '%s' in the log:\n%s", needle, log);
    for (b = p; b > log && b[-1] != '\n'; b--)
        ;
    e = strchr(p, '\n');
    snprintf(line, len, "%.*s", (int)(e ? e - b : (ptrdiff_t)strlen(b)), b);
    return line;
}

START_TEST(test_password_stays_out_of_the_log)
{
    char pg[1200], line[1024];
    const char *extra[] = {"--pg", pg, "--log-level", "info", NULL};
    char *log;

    /* the user name is the password too: the server's refusal
     * ("password authentication failed for user ...") quotes it, and
     * libpq passes it on */
    snprintf(pg, sizeof(pg), "%s user=pw7Zq password=pw7Zq", k.conninfo);
    worker = ktest_worker_start(&k, extra);
    /* refused: the worker says why and stops (exit 5) */
    log = wait_log("not retrying", 60);
    line_of(log, "not retrying", line, sizeof(line));
    ck_assert_msg(strstr(line, "pw7Zq") == NULL, "password in: %s", line);
    ck_assert_msg(strstr(line, "\"***\"") != NULL, "no mask in: %s", line);
    line_of(log, "starting", line, sizeof(line));
    ck_assert_msg(strstr(line, "password=***") != NULL, "no mask in: %s", line);
    ck_assert_msg(strstr(line, "password=pw7Zq") == NULL, "password in: %s",
                  line);
    free(log);
    /* a refused login is not retried: the worker ends with status 5 */
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 5);
    worker = 0;
}
END_TEST

START_TEST(test_malformed_connection_string_is_not_shown)
{
    const char *extra[] = {"--pg", "postgresql://u:p%zzw@127.0.0.1/db", NULL};
    size_t len;
    char *log;

    worker = ktest_worker_start(&k, extra);
    ck_assert_int_eq(ktest_worker_stop(worker, 0), 2);
    worker = 0;
    log = slurp(k.worker_stderr, &len);
    ck_assert_msg(strstr(log, "malformed") != NULL, "no reason given: %s", log);
    ck_assert_msg(strstr(log, "zzw") == NULL, "string shown: %s", log);
    free(log);
}
END_TEST

static Suite *
hostile_input_suite(void)
{
    Suite *s = suite_create("hostile_input");
    TCase *tc = tcase_create("poison");
    TCase *sec = tcase_create("secrets");

    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_poison_errors_are_escaped_in_dlq_and_log);
    suite_add_tcase(s, tc);
    tcase_set_timeout(sec, 240);
    tcase_add_checked_fixture(sec, setup_no_worker, teardown);
    tcase_add_test(sec, test_password_stays_out_of_the_log);
    tcase_add_test(sec, test_malformed_connection_string_is_not_shown);
    suite_add_tcase(s, sec);
    return s;
}

int
main(void)
{
    return itest_run(hostile_input_suite());
}
