/* test_escape.c - od_escape (control bytes, backslashes and bad UTF-8 made
 * visible) and the logger that runs every message through it, in both of
 * its formats */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "../../worker/log.h"
#include "../../worker/od.h"

static const char *
esc(const char *s)
{
    static char out[1024];

    return od_escape(s, out, sizeof(out));
}

/* The reverse of od_escape, written independently of it: the test that
 * nothing is lost. Returns the decoded length. */
static size_t
unescape(const char *s, char *out)
{
    size_t n = 0;

    while (*s != '\0') {
        if (*s != '\\') {
            out[n++] = *s++;
            continue;
        }
        s++;
        switch (*s) {
        case 'n':
            out[n++] = '\n';
            s++;
            break;
        case 'r':
            out[n++] = '\r';
            s++;
            break;
        case 't':
            out[n++] = '\t';
            s++;
            break;
        case '\\':
            out[n++] = '\\';
            s++;
            break;
        case 'x': {
            unsigned v;

            if (sscanf(s + 1, "%2x", &v) != 1)
                ck_abort_msg("bad \\x escape: %s", s);
            out[n++] = (char)v;
            s += 3;
            break;
        }
        default:
            ck_abort_msg("stray escape \\%c", *s);
        }
    }
    out[n] = '\0';
    return n;
}

/* What a terminal or a log reader must never get: C0, DEL, C1 (as its
 * UTF-8 form C2 80..C2 9F), and bytes that are not well-formed UTF-8
 * (checked by jansson, which refuses a string that is not). Returns a
 * complaint, or NULL. */
static const char *
harm(const char *s)
{
    json_t *j = json_string(s);

    if (j == NULL)
        return "not valid UTF-8";
    json_decref(j);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return "a control byte";
        if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            return "a C1 control";
    }
    return NULL;
}

/* (check records every assertion: the loops below assert only on a
 * failure, or they would take seconds) */
static void
assert_harmless(const char *s)
{
    const char *why = harm(s);

    if (why != NULL)
        ck_abort_msg("%s in: %s", why, s);
}

START_TEST(test_printable_text_is_kept)
{
    ck_assert_str_eq(esc("not valid JSON: 'x' near line 1"),
                     "not valid JSON: 'x' near line 1");
    ck_assert_str_eq(esc(""), "");
    /* é, €, 😀 (2, 3 and 4 bytes), and U+00A0, the first after C1 */
    ck_assert_str_eq(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0"),
                     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0");
    ck_assert_str_eq(esc("\xf4\x8f\xbf\xbf"), "\xf4\x8f\xbf\xbf"); /* max */
}
END_TEST

START_TEST(test_control_bytes_are_escaped)
{
    ck_assert_str_eq(esc("a\nb"), "a\\nb");
    ck_assert_str_eq(esc("a\r\nb\tc"), "a\\r\\nb\\tc");
    ck_assert_str_eq(esc("\x1b[31mred\x1b[0m"), "\\x1b[31mred\\x1b[0m");
    ck_assert_str_eq(esc("\x01\x7f\x1f"), "\\x01\\x7f\\x1f");
    ck_assert_str_eq(esc("\a\b\f\v"), "\\x07\\x08\\x0c\\x0b");
    /* C1: CSI (U+009B) acts like ESC [ on some terminals */
    ck_assert_str_eq(esc("\xc2\x9b"
                         "31m"),
                     "\\xc2\\x9b31m");
    ck_assert_str_eq(esc("\xc2\x80"), "\\xc2\\x80");
}
END_TEST

START_TEST(test_backslash_is_doubled)
{
    /* else "\\n" in the input could not be told from an escaped newline */
    ck_assert_str_eq(esc("a\\nb"), "a\\\\nb");
    ck_assert_str_eq(esc("\\"), "\\\\");
}
END_TEST

START_TEST(test_bad_utf8_is_escaped_byte_by_byte)
{
    ck_assert_str_eq(esc("\xff"), "\\xff");
    ck_assert_str_eq(esc("a\xfe\xff"
                         "b"),
                     "a\\xfe\\xffb");
    /* a lone continuation byte */
    ck_assert_str_eq(esc("\x80"), "\\x80");
    /* overlong '/' and overlong NUL */
    ck_assert_str_eq(esc("\xc0\xaf"), "\\xc0\\xaf");
    ck_assert_str_eq(esc("\xc1\xbf"), "\\xc1\\xbf");
    ck_assert_str_eq(esc("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");
    ck_assert_str_eq(esc("\xf0\x80\x80\xaf"), "\\xf0\\x80\\x80\\xaf");
    /* a UTF-16 surrogate, and past U+10FFFF */
    ck_assert_str_eq(esc("\xed\xa0\x80"), "\\xed\\xa0\\x80");
    ck_assert_str_eq(esc("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
    ck_assert_str_eq(esc("\xf5\x80\x80\x80"), "\\xf5\\x80\\x80\\x80");
    /* cut short, at the end or by an ASCII byte: the ASCII survives */
    ck_assert_str_eq(esc("\xe2\x82"), "\\xe2\\x82");
    ck_assert_str_eq(esc("\xe2\x82"
                         "A"),
                     "\\xe2\\x82A");
    ck_assert_str_eq(esc("\xf0\x9f\x98\n"), "\\xf0\\x9f\\x98\\n");
}
END_TEST

START_TEST(test_truncation_keeps_escapes_whole)
{
    char out[8];

    /* "\\n" needs 2 bytes: 3 fit in 8 with the NUL, the 4th does not */
    ck_assert_str_eq(od_escape("\n\n\n\n", out, sizeof(out)), "\\n\\n\\n");
    ck_assert_str_eq(od_escape("ab\x1b", out, 6), "ab");
    ck_assert_str_eq(od_escape("a\xe2\x82\xac", out, 4), "a");
    ck_assert_str_eq(od_escape("abc", out, 1), "");
    ck_assert_str_eq(od_escape("abc", out, 4), "abc");
}
END_TEST

START_TEST(test_any_bytes_come_out_harmless_and_reversible)
{
    char in[65], out[OD_ESCAPE_SIZE(64)], back[65];
    unsigned seed = 42;

    /* every single byte */
    for (int b = 1; b < 256; b++) {
        in[0] = (char)b;
        in[1] = '\0';
        od_escape(in, out, sizeof(out));
        assert_harmless(out);
        ck_assert_int_eq(unescape(out, back), 1);
        ck_assert_int_eq((unsigned char)back[0], b);
    }
    /* random strings, biased towards the bytes that matter */
    for (int round = 0; round < 20000; round++) {
        static const unsigned char pick[] = {
            '\n', '\r', '\t', 0x1b, '\\', 0x7f, 0x80, 0x9b, 0xbf, 0xc2,
            0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xff, 'a',  '[',  'x',  0xa0};
        size_t n = (size_t)(rand_r(&seed) % 64);

        for (size_t i = 0; i < n; i++) {
            int r = rand_r(&seed);

            in[i] = (char)(r % 3 ? pick[(r >> 4) % sizeof(pick)]
                                 : 1 + (r >> 4) % 255);
        }
        in[n] = '\0';
        od_escape(in, out, sizeof(out));
        assert_harmless(out);
        if (unescape(out, back) != n || memcmp(back, in, n) != 0)
            ck_abort_msg("round %d does not decode back: %s", round, out);
    }
}
END_TEST

/*
 * The logger: stderr is pointed at a file for the duration, the lines read
 * back. A message that quotes hostile input must stay one line, without
 * raw control bytes, and in the JSON format one valid JSON object.
 */
static const char *hostile = "near '\"\\\nsecond line \x1b[31mred\xff'";

static char *
capture_log(int json, int nlines)
{
    char path[] = "/tmp/orderd-test-log-XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    char *buf = calloc(1, 65536);
    FILE *f;
    size_t n;

    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    dup2(fd, STDERR_FILENO);
    log_setup(LOG_INFO, json);
    for (int i = 0; i < nlines; i++) {
        if (i % 2 == 0)
            log_warn("poison message to the dead-letter topic: %s", hostile);
        else
            slog_warn("topic\nx", 3, 42, "poison: %s", hostile);
    }
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fd);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    unlink(path);
    return buf;
}

static int
count_lines(const char *s)
{
    int n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

START_TEST(test_text_log_lines_stay_whole)
{
    char *out = capture_log(0, 4);
    char want[512];

    ck_assert_int_eq(count_lines(out), 4);
    ck_assert_ptr_null(strchr(out, '\x1b'));
    ck_assert_ptr_null(strchr(out, '\r'));
    ck_assert_ptr_nonnull(strstr(out, "[topic\\nx/3@42]"));
    /* the first line, the unprefixed message, whole */
    assert_harmless(strtok(out, "\n"));
    snprintf(want, sizeof(want), "poison message to the dead-letter topic: %s",
             esc(hostile));
    ck_assert_ptr_nonnull(strstr(out, want));
    free(out);
}
END_TEST

START_TEST(test_json_log_lines_are_valid_json)
{
    char *out = capture_log(1, 4), *save = NULL;
    char want[512];
    int lines = 0;

    snprintf(want, sizeof(want), "poison message to the dead-letter topic: %s",
             esc(hostile));
    ck_assert_int_eq(count_lines(out), 4);
    for (char *line = strtok_r(out, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save), lines++) {
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        const char *msg;

        ck_assert_msg(o != NULL, "not JSON (%s): %s", jerr.text, line);
        msg = json_string_value(json_object_get(o, "msg"));
        ck_assert_ptr_nonnull(msg);
        assert_harmless(msg);
        if (lines % 2 == 0) {
            ck_assert_str_eq(msg, want);
        } else {
            ck_assert_str_eq(json_string_value(json_object_get(o, "topic")),
                             "topic\\nx");
            ck_assert_int_eq(json_integer_value(json_object_get(o, "offset")),
                             42);
        }
        json_decref(o);
    }
    ck_assert_int_eq(lines, 4);
    free(out);
}
END_TEST

static Suite *
escape_suite(void)
{
    Suite *s = suite_create("escape");
    TCase *tc = tcase_create("od_escape");
    TCase *lg = tcase_create("log");

    tcase_add_test(tc, test_printable_text_is_kept);
    tcase_add_test(tc, test_control_bytes_are_escaped);
    tcase_add_test(tc, test_backslash_is_doubled);
    tcase_add_test(tc, test_bad_utf8_is_escaped_byte_by_byte);
    tcase_add_test(tc, test_truncation_keeps_escapes_whole);
    tcase_add_test(tc, test_any_bytes_come_out_harmless_and_reversible);
    suite_add_tcase(s, tc);
    tcase_add_test(lg, test_text_log_lines_stay_whole);
    tcase_add_test(lg, test_json_log_lines_are_valid_json);
    suite_add_tcase(s, lg);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(escape_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
