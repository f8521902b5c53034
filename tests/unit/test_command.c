/* test_command.c - envelope parsing, validation and fingerprints */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../handlers/command.h"

static cmd_parse_t
parse(const char *s, cmd_env_t *env, char *err, size_t errlen)
{
    return command_parse(s, strlen(s), 1700000000000000LL, env, err, errlen);
}

START_TEST(test_not_json_is_poison)
{
    cmd_env_t env;
    char err[256];

    ck_assert_int_eq(parse("{not json", &env, err, sizeof(err)),
                     CMD_PARSE_POISON);
    ck_assert_ptr_nonnull(strstr(err, "not valid JSON"));
    command_env_free(&env);
}
END_TEST

START_TEST(test_duplicate_keys_are_poison)
{
    cmd_env_t env;
    char err[256];

    ck_assert_int_eq(parse("{\"dedup_key\":\"a\",\"dedup_key\":\"b\"}", &env,
                           err, sizeof(err)),
                     CMD_PARSE_POISON);
    command_env_free(&env);
}
END_TEST

START_TEST(test_invalid_utf8_is_poison)
{
    cmd_env_t env;
    char err[256];
    const char bad[] = "{\"dedup_key\":\"k\",\"x\":\"\xc3\x28\"}";

    ck_assert_int_eq(
        command_parse(bad, sizeof(bad) - 1, 0, &env, err, sizeof(err)),
        CMD_PARSE_POISON);
    command_env_free(&env);
}
END_TEST

START_TEST(test_oversize_is_poison)
{
    cmd_env_t env;
    char err[256];
    size_t n = CMD_MAX_BYTES + 10;
    char *big = malloc(n + 1);

    memset(big, ' ', n);
    big[n] = '\0';
    memcpy(big, "{\"dedup_key\":\"k\"}", 17);
    ck_assert_int_eq(command_parse(big, n, 0, &env, err, sizeof(err)),
                     CMD_PARSE_POISON);
    ck_assert_ptr_nonnull(strstr(err, "limit"));
    command_env_free(&env);
    free(big);
}
END_TEST

START_TEST(test_missing_or_bad_dedup_key_is_poison)
{
    static const char *cases[] = {
        "{\"type\":\"pay\"}",
        "{\"dedup_key\":\"\"}",
        "{\"dedup_key\":42}",
        "{\"dedup_key\":\"tab\\there\"}",
        "{\"dedup_key\":\"caf\\u00e9\"}",
        "[1,2]",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cmd_env_t env;
        char err[256];

        ck_assert_msg(parse(cases[i], &env, err, sizeof(err)) ==
                          CMD_PARSE_POISON,
                      "case %zu should be poison", i);
        command_env_free(&env);
    }
}
END_TEST

START_TEST(test_dedup_key_length_limit)
{
    char key[CMD_DEDUP_KEY_MAX + 2];

    memset(key, 'a', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    ck_assert(!command_dedup_key_valid(key)); /* 201 chars */
    key[CMD_DEDUP_KEY_MAX] = '\0';
    ck_assert(command_dedup_key_valid(key)); /* 200 chars */
}
END_TEST

START_TEST(test_unknown_type_is_invalid_with_key)
{
    cmd_env_t env;
    char err[256];

    ck_assert_int_eq(parse("{\"dedup_key\":\"k1\",\"type\":\"teleport\","
                           "\"actor\":{\"role\":\"admin\",\"id\":\"a\"}}",
                           &env, err, sizeof(err)),
                     CMD_PARSE_INVALID);
    ck_assert_str_eq(env.dedup_key, "k1");
    ck_assert_ptr_nonnull(strstr(err, "teleport"));
    command_env_free(&env);
}
END_TEST

/* A replay's re-read batch parses identities alone: the same poison
 * verdict and dedup key as the full parse, nothing checked beyond, and
 * the fingerprint of the full parse once it is asked for. */
START_TEST(test_identity_parse_agrees_with_full)
{
    static const char *const bodies[] = {
        "{\"dedup_key\":\"k1\",\"type\":\"cancel\",\"actor\":{\"role\":"
        "\"customer\",\"id\":\"c\"},\"order_id\":\"not-a-uuid\"}",
        "{\"type\":\"teleport\",  \"dedup_key\":\"k2\"}",
        "{\"dedup_key\":\"k3\",\"dedup_key\":\"k4\"}",
        "[\"dedup_key\",\"k5\"]",
        "not json",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        cmd_env_t full, id;
        char err[256], ierr[256];
        cmd_parse_t f = parse(bodies[i], &full, err, sizeof(err));
        cmd_parse_t g = command_parse_identity(bodies[i], strlen(bodies[i]),
                                               &id, ierr, sizeof(ierr));

        ck_assert_msg((f == CMD_PARSE_POISON) == (g == CMD_PARSE_POISON),
                      "body %zu: full %d, identity %d", i, (int)f, (int)g);
        if (g != CMD_PARSE_POISON) {
            ck_assert_int_eq(g, CMD_PARSE_OK); /* no field is checked */
            ck_assert_str_eq(id.dedup_key, full.dedup_key);
            ck_assert_ptr_null(id.cmd);
            ck_assert_int_eq(id.fingerprinted, 0);
            ck_assert_mem_eq(command_env_fingerprint(&id),
                             command_env_fingerprint(&full), 32);
            ck_assert_int_eq(id.fingerprinted, 1);
        } else {
            ck_assert_str_eq(ierr, err);
        }
        command_env_free(&full);
        command_env_free(&id);
    }
}
END_TEST

/* The scan finds what the parse finds in a valid body, and gives up on
 * what it cannot read without a parse. */
START_TEST(test_scan_dedup_key)
{
    static const struct {
        const char *body;
        const char *key; /* NULL: the scan gives up */
    } cases[] = {
        {"{\"dedup_key\":\"co:1\",\"type\":\"checkout\"}", "co:1"},
        {" {\"type\" : \"x\", \"items\":[{\"dedup_key\":\"inner\"},[1,2]],"
         "\"s\":\"a}\\\"b\", \"n\":-1.5e3, \"t\":true, \"o\":{\"a\":{}},"
         "\"dedup_key\" :\t\"pay:gw-1\" }\n",
         "pay:gw-1"},
        {"{\"dedup_key\":\"a\\u0062\"}", NULL}, /* an escape */
        {"{\"dedup\\u005fkey\":\"k\"}", NULL},  /* an escaped name */
        {"{\"dedup_key\":\"k\",\"dedup_key\":\"k\"}", NULL}, /* twice */
        {"{\"x\":{\"dedup_key\":\"k\"}}", NULL},             /* nested only */
        {"{\"dedup_key\":\"\"}", NULL},                      /* empty */
        {"{\"dedup_key\":7}", NULL},
        {"{\"dedup_key\":\"k\"} trailing", NULL},
        {"[\"dedup_key\",\"k\"]", NULL},
        {"{\"dedup_key\":\"k", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[CMD_DEDUP_KEY_MAX + 1];
        int rc =
            command_scan_dedup_key(cases[i].body, strlen(cases[i].body), out);

        ck_assert_msg(rc == (cases[i].key != NULL), "case %zu: %d", i, rc);
        if (rc) {
            cmd_env_t env;
            char err[256];

            ck_assert_str_eq(out, cases[i].key);
            ck_assert_int_ne(command_parse_identity(cases[i].body,
                                                    strlen(cases[i].body), &env,
                                                    err, sizeof(err)),
                             CMD_PARSE_POISON);
            ck_assert_str_eq(env.dedup_key, out);
            command_env_free(&env);
        }
    }
}
END_TEST

START_TEST(test_bad_actor_is_invalid)
{
    static const char *cases[] = {
        "{\"dedup_key\":\"k\",\"type\":\"pay\"}",
        "{\"dedup_key\":\"k\",\"type\":\"pay\",\"actor\":\"admin\"}",
        "{\"dedup_key\":\"k\",\"type\":\"pay\",\"actor\":{\"role\":\"god\","
        "\"id\":\"x\"}}",
        "{\"dedup_key\":\"k\",\"type\":\"pay\",\"actor\":{\"role\":"
        "\"admin\"}}",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cmd_env_t env;
        char err[256];

        ck_assert_msg(parse(cases[i], &env, err, sizeof(err)) ==
                          CMD_PARSE_INVALID,
                      "case %zu should be invalid", i);
        command_env_free(&env);
    }
}
END_TEST

START_TEST(test_issued_at_sets_event_time)
{
    cmd_env_t env;
    char err[256];
    cmd_parse_t p = parse("{\"dedup_key\":\"k\",\"type\":\"tax_rate_set\","
                          "\"actor\":{\"role\":\"admin\",\"id\":\"a\"},"
                          "\"issued_at\":\"bogus\"}",
                          &env, err, sizeof(err));

    ck_assert_int_eq(p, CMD_PARSE_INVALID);
    ck_assert_ptr_nonnull(strstr(err, "issued_at"));
    command_env_free(&env);
}
END_TEST

START_TEST(test_fingerprint_ignores_key_order_and_spacing)
{
    unsigned char a[32], b[32], c[32];
    json_t *ja = json_loads("{\"a\":1,\"b\":[1,2],\"c\":\"x\"}", 0, NULL);
    json_t *jb =
        json_loads("{ \"c\" : \"x\", \"b\":[1, 2], \"a\":1 }", 0, NULL);
    json_t *jc = json_loads("{\"a\":1,\"b\":[2,1],\"c\":\"x\"}", 0, NULL);

    command_fingerprint(ja, a);
    command_fingerprint(jb, b);
    command_fingerprint(jc, c);
    ck_assert_mem_eq(a, b, 32);
    ck_assert(memcmp(a, c, 32) != 0);
    json_decref(ja);
    json_decref(jb);
    json_decref(jc);
}
END_TEST

START_TEST(test_fingerprint_is_sha256_of_canonical_form)
{
    /* sha256('{"a":1}') */
    static const unsigned char want[32] = {
        0x01, 0x5a, 0xbd, 0x7f, 0x5c, 0xc5, 0x7a, 0x2d, 0xd9, 0x4b, 0x75,
        0x90, 0xf0, 0x4a, 0xd8, 0x08, 0x42, 0x73, 0x90, 0x5e, 0xe3, 0x3e,
        0xc5, 0xce, 0xbe, 0xae, 0x62, 0x27, 0x6a, 0x97, 0xf8, 0x62};
    unsigned char got[32];
    json_t *j = json_loads("{ \"a\" : 1 }", 0, NULL);

    command_fingerprint(j, got);
    ck_assert_mem_eq(got, want, 32);
    json_decref(j);
}
END_TEST

START_TEST(test_field_readers)
{
    json_t *o = json_loads("{\"s\":\"abc\",\"i\":5,\"big\":9223372036854775807,"
                           "\"neg\":-1,\"f\":1.5,\"b\":true,\"id\":\"42\","
                           "\"badid\":\"042\",\"u\":\"6F1C0E0E-8A5E-4C1B-9A55-"
                           "3F7A9D2C1E10\",\"ctl\":\"a\\u0001\"}",
                           0, NULL);
    char buf[8], err[128], u[37];
    int64_t v = 0;
    int b = 0;

    ck_assert_int_eq(json_field_str(o, "s", 1, buf, sizeof(buf), err, 128), 0);
    ck_assert_str_eq(buf, "abc");
    ck_assert_int_eq(json_field_str(o, "s", 1, buf, 3, err, 128), -1);
    ck_assert_int_eq(json_field_str(o, "ctl", 1, buf, 8, err, 128), -1);
    ck_assert_int_eq(json_field_str(o, "none", 1, buf, 8, err, 128), -1);
    ck_assert_int_eq(json_field_str(o, "none", 0, buf, 8, err, 128), 1);
    ck_assert_int_eq(json_field_int(o, "i", 1, 1, 10, &v, err, 128), 0);
    ck_assert_int_eq(v, 5);
    ck_assert_int_eq(json_field_int(o, "i", 1, 6, 10, &v, err, 128), -1);
    ck_assert_int_eq(json_field_int(o, "f", 1, 0, 10, &v, err, 128), -1);
    ck_assert_int_eq(json_field_int(o, "big", 1, 0, INT64_MAX, &v, err, 128),
                     0);
    ck_assert_int_eq(json_field_bool(o, "b", 1, &b, err, 128), 0);
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(json_field_bool(o, "i", 1, &b, err, 128), -1);
    ck_assert_int_eq(json_field_id(o, "id", 1, &v, err, 128), 0);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(json_field_id(o, "i", 1, &v, err, 128), 0);
    ck_assert_int_eq(v, 5);
    ck_assert_int_eq(json_field_id(o, "badid", 1, &v, err, 128), -1);
    ck_assert_int_eq(json_field_id(o, "neg", 1, &v, err, 128), -1);
    ck_assert_int_eq(json_field_uuid(o, "u", 1, u, err, 128), 0);
    ck_assert_str_eq(u, "6f1c0e0e-8a5e-4c1b-9a55-3f7a9d2c1e10");
    ck_assert_int_eq(json_field_uuid(o, "s", 1, u, err, 128), -1);
    json_decref(o);
}
END_TEST

START_TEST(test_integer_overflow_is_poison)
{
    cmd_env_t env;
    char err[256];

    /* jansson refuses integers beyond int64: the whole body is unreadable */
    ck_assert_int_eq(parse("{\"dedup_key\":\"k\",\"amount_cents\":"
                           "92233720368547758070}",
                           &env, err, sizeof(err)),
                     CMD_PARSE_POISON);
    command_env_free(&env);
}
END_TEST

START_TEST(test_parse_time)
{
    int64_t us;

    ck_assert_int_eq(od_parse_time("2026-11-21T10:00:00Z", &us), 0);
    ck_assert_int_eq(us, 1795255200000000LL);
    ck_assert_int_eq(od_parse_time("2026-11-21T11:00:00.5+01:00", &us), 0);
    ck_assert_int_eq(us, 1795255200500000LL);
    ck_assert_int_eq(od_parse_time("2026-02-29T00:00:00Z", &us), -1);
    ck_assert_int_eq(od_parse_time("2026-11-21 10:00:00Z", &us), -1);
    ck_assert_int_eq(od_parse_time("2026-11-21T10:00:00", &us), -1);
    ck_assert_int_eq(od_parse_time("2026-13-01T00:00:00Z", &us), -1);
}
END_TEST

#define MIN_US (60LL * 1000000)
#define HOUR_US (60 * MIN_US)

/* a pay issued at `issued` (RFC 3339), judged against kafka_us */
static int
event_time_ok(const char *issued, int64_t kafka_us, int64_t now_us, char *err,
              size_t errlen)
{
    char cmd[512];
    cmd_env_t env;
    int rc;

    snprintf(cmd, sizeof(cmd),
             "{\"dedup_key\":\"k\",\"type\":\"pay\",\"actor\":{\"role\":"
             "\"payment\",\"id\":\"psp\"},\"issued_at\":\"%s\","
             "\"order_id\":\"6f1c0e0e-8a5e-4c1b-9a55-3f7a9d2c1e10\","
             "\"payment_id\":\"pi\",\"amount_cents\":1,\"currency\":"
             "\"EUR\"}",
             issued);
    ck_assert_int_eq(
        command_parse(cmd, strlen(cmd), kafka_us, &env, err, errlen),
        CMD_PARSE_OK);
    rc = command_check_event_time(&env, kafka_us, now_us, 5 * MIN_US,
                                  72 * HOUR_US, err, errlen);
    command_env_free(&env);
    return rc;
}

START_TEST(test_event_time_bounds)
{
    /* 2026-11-21T10:00:00Z */
    const int64_t kafka = 1795255200LL * 1000000;
    char err[256];

    /* inside the window, on both edges */
    ck_assert_int_eq(
        event_time_ok("2026-11-21T10:05:00Z", kafka, kafka, err, sizeof(err)),
        0);
    ck_assert_int_eq(
        event_time_ok("2026-11-18T10:00:00Z", kafka, kafka, err, sizeof(err)),
        0);
    /* a checkout dated into the far future would hold stock forever */
    ck_assert_int_eq(
        event_time_ok("9999-12-31T00:00:00Z", kafka, kafka, err, sizeof(err)),
        -1);
    ck_assert_ptr_nonnull(strstr(err, "--max-clock-skew"));
    ck_assert_int_eq(
        event_time_ok("2026-11-21T10:05:01Z", kafka, kafka, err, sizeof(err)),
        -1);
    /* a back-dated pay slipping under an expiry deadline */
    ck_assert_int_eq(
        event_time_ok("2026-11-18T09:59:59Z", kafka, kafka, err, sizeof(err)),
        -1);
    ck_assert_ptr_nonnull(strstr(err, "--max-event-age"));
    ck_assert_int_eq(
        event_time_ok("1970-01-01T00:00:00Z", kafka, kafka, err, sizeof(err)),
        -1);
    /* the Kafka timestamp is the producer's too: not past the clock */
    ck_assert_int_eq(event_time_ok("2026-11-21T10:00:00Z", kafka,
                                   kafka - 10 * MIN_US, err, sizeof(err)),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "Kafka timestamp"));
    /* no Kafka timestamp: judged against the clock */
    ck_assert_int_eq(
        event_time_ok("2026-11-21T10:00:00Z", 0, kafka, err, sizeof(err)), 0);
    ck_assert_int_eq(
        event_time_ok("2026-11-25T10:00:00Z", 0, kafka, err, sizeof(err)), -1);
    /* saturated timestamps do not wrap around */
    ck_assert_int_eq(event_time_ok("2026-11-21T10:00:00Z", INT64_MAX, INT64_MAX,
                                   err, sizeof(err)),
                     -1);
}
END_TEST

static Suite *
command_suite(void)
{
    Suite *s = suite_create("command");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"poison", test_not_json_is_poison},
        {"duplicate_keys", test_duplicate_keys_are_poison},
        {"utf8", test_invalid_utf8_is_poison},
        {"oversize", test_oversize_is_poison},
        {"dedup_key", test_missing_or_bad_dedup_key_is_poison},
        {"dedup_key_len", test_dedup_key_length_limit},
        {"unknown_type", test_unknown_type_is_invalid_with_key},
        {"actor", test_bad_actor_is_invalid},
        {"identity", test_identity_parse_agrees_with_full},
        {"scan_dedup_key", test_scan_dedup_key},
        {"issued_at", test_issued_at_sets_event_time},
        {"fingerprint_canonical",
         test_fingerprint_ignores_key_order_and_spacing},
        {"fingerprint_sha256", test_fingerprint_is_sha256_of_canonical_form},
        {"field_readers", test_field_readers},
        {"overflow", test_integer_overflow_is_poison},
        {"parse_time", test_parse_time},
        {"event_time_bounds", test_event_time_bounds},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_test(tc, cases[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(command_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
