/* test_config.c - librdkafka properties from -F files and -X: file
 * format, precedence, errors that name the line but never its text, and
 * masking of secret properties */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../worker/config.h"

/* Writes text to a fresh temporary file; returns its path (static). */
static const char *
props_file(const char *text)
{
    static char path[64];
    int fd;
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/orderd-test-props-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Parses argv (NULL-terminated) as orderd run's into cfg; returns
 * config_load's result. */
static int
parse(od_config_t *cfg, const char **args, char *err, size_t errlen)
{
    int argc = 0;

    while (args[argc] != NULL)
        argc++;
    return config_load(cfg, CONFIG_RUN, argc, (char **)args, NULL, 0, NULL, err,
                       errlen);
}

static const char *
prop(const od_config_t *cfg, int i, const char **value)
{
    ck_assert_int_lt(i, cfg->nkafka);
    *value = cfg->kafka_values[i];
    return cfg->kafka_keys[i];
}

START_TEST(test_file_format)
{
    const char *path = props_file("# orderd's principal\n"
                                  "\n"
                                  "security.protocol=SASL_PLAINTEXT\n"
                                  "   sasl.mechanisms = SCRAM-SHA-512  \n"
                                  "\t# indented comment\n"
                                  "sasl.username=orderd\r\n"
                                  "sasl.password=a=b#c d\n");
    const char *args[] = {"-F", path, NULL};
    od_config_t cfg;
    char err[256];
    const char *v;

    ck_assert_int_eq(parse(&cfg, args, err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.nkafka, 4);
    ck_assert_str_eq(prop(&cfg, 0, &v), "security.protocol");
    ck_assert_str_eq(v, "SASL_PLAINTEXT");
    ck_assert_str_eq(prop(&cfg, 1, &v), "sasl.mechanisms");
    ck_assert_str_eq(v, "SCRAM-SHA-512");
    ck_assert_str_eq(prop(&cfg, 2, &v), "sasl.username");
    ck_assert_str_eq(v, "orderd");
    /* only the first = splits; # and blanks inside a value are the value */
    ck_assert_str_eq(prop(&cfg, 3, &v), "sasl.password");
    ck_assert_str_eq(v, "a=b#c d");
    config_free(&cfg);
    unlink(path);
}
END_TEST

START_TEST(test_file_before_x_whatever_the_order)
{
    const char *path =
        props_file("sasl.username=from-file\nclient.rack=file-rack\n");
    const char *args[] = {"-X", "sasl.username=from-x", "-F", path, NULL};
    od_config_t cfg;
    char err[256];
    const char *v;

    ck_assert_int_eq(parse(&cfg, args, err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.nkafka, 3);
    ck_assert_int_eq(cfg.nkafka_file, 2);
    /* librdkafka applies them in order, so the -X set last wins */
    ck_assert_str_eq(prop(&cfg, 0, &v), "sasl.username");
    ck_assert_str_eq(v, "from-file");
    ck_assert_str_eq(prop(&cfg, 1, &v), "client.rack");
    ck_assert_str_eq(prop(&cfg, 2, &v), "sasl.username");
    ck_assert_str_eq(v, "from-x");
    config_free(&cfg);
    unlink(path);
}
END_TEST

START_TEST(test_bad_line_names_file_and_line_not_text)
{
    const char *path = props_file("# creds\nsasl.username=web\n"
                                  "hunter2-not-a-property\n");
    const char *args[] = {"-F", path, NULL};
    od_config_t cfg;
    char err[256], want[128];

    ck_assert_int_eq(parse(&cfg, args, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:3: expected key=value", path);
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(strstr(err, "hunter2"));
    config_free(&cfg);
    unlink(path);
}
END_TEST

START_TEST(test_empty_key_and_blank_key_refused)
{
    const char *p1 = props_file("=hunter2\n");
    const char *args1[] = {"-F", p1, NULL};
    od_config_t cfg;
    char err[256];

    ck_assert_int_eq(parse(&cfg, args1, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, ":1: expected key=value"));
    ck_assert_ptr_null(strstr(err, "hunter2"));
    config_free(&cfg);
    unlink(p1);

    const char *p2 = props_file("\n\nsasl password=hunter2\n");
    const char *args2[] = {"-F", p2, NULL};

    ck_assert_int_eq(parse(&cfg, args2, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, ":3: a key cannot contain blanks"));
    ck_assert_ptr_null(strstr(err, "hunter2"));
    config_free(&cfg);
    unlink(p2);

    const char *args3[] = {"-X", "=hunter2", NULL};

    ck_assert_int_eq(parse(&cfg, args3, err, sizeof(err)), -1);
    ck_assert_ptr_null(strstr(err, "hunter2"));
    config_free(&cfg);
}
END_TEST

START_TEST(test_missing_file)
{
    const char *args[] = {"-F", "/nonexistent/orderd.properties", NULL};
    od_config_t cfg;
    char err[256];

    ck_assert_int_eq(parse(&cfg, args, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "could not open -F file "
                          "/nonexistent/orderd.properties: No such file or "
                          "directory");
    config_free(&cfg);
    const char *args2[] = {"-F", NULL};
    ck_assert_int_eq(parse(&cfg, args2, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "option -F needs a value: FILE");
    config_free(&cfg);
}
END_TEST

START_TEST(test_too_many_properties)
{
    char text[8192] = "";
    const char *path;
    od_config_t cfg;
    char err[256];

    for (int i = 0; i <= CONFIG_MAX_KAFKA_PROPS; i++) {
        char line[64];

        snprintf(line, sizeof(line), "client.rack=r%d\n", i);
        strcat(text, line);
    }
    path = props_file(text);
    const char *args[] = {"-F", path, NULL};

    ck_assert_int_eq(parse(&cfg, args, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, ":65: too many Kafka properties"));
    config_free(&cfg);
    unlink(path);
}
END_TEST

START_TEST(test_secret_keys)
{
    const char *secret[] = {
        "sasl.password",         "ssl.key.password",
        "ssl.keystore.password", "sasl.oauthbearer.client.secret",
        "SASL.PASSWORD",         "ssl.truststore.password",
        "some.plugin.secret",    "ssl.key.pem"};
    const char *plain[] = {"sasl.username", "security.protocol",
                           "sasl.mechanisms", "ssl.ca.location",
                           "password.hint.location"};

    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
        ck_assert_msg(config_kafka_secret(secret[i]), "%s", secret[i]);
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        ck_assert_msg(!config_kafka_secret(plain[i]), "%s", plain[i]);
}
END_TEST

START_TEST(test_masked_listing)
{
    const char *path = props_file("sasl.username=orderd\n"
                                  "sasl.password=hunter2\n");
    const char *args[] = {"-F", path,          "-X", "ssl.key.password=s3cret",
                          "-X", "linger.ms=5", NULL};
    od_config_t cfg;
    char err[256], out[256], tiny[12];

    ck_assert_int_eq(parse(&cfg, args, err, sizeof(err)), 0);
    config_kafka_props_masked(&cfg, out, sizeof(out));
    ck_assert_str_eq(out, "sasl.username=orderd sasl.password=*** "
                          "ssl.key.password=*** linger.ms=5");
    config_kafka_props_masked(&cfg, tiny, sizeof(tiny));
    ck_assert_str_eq(tiny, "sasl.userna");
    config_free(&cfg);
    unlink(path);
}
END_TEST

static Suite *
config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc;

    tc = tcase_create("file_format");
    tcase_add_test(tc, test_file_format);
    suite_add_tcase(s, tc);
    tc = tcase_create("precedence");
    tcase_add_test(tc, test_file_before_x_whatever_the_order);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_bad_line_names_file_and_line_not_text);
    tcase_add_test(tc, test_empty_key_and_blank_key_refused);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_too_many_properties);
    suite_add_tcase(s, tc);
    tc = tcase_create("masking");
    tcase_add_test(tc, test_secret_keys);
    tcase_add_test(tc, test_masked_listing);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
