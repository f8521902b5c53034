/* test_config_file.c - the configuration file (--config), the precedence
 * of flags over variables over the file over defaults, values checked in
 * every layer, and each subcommand taking only its own options */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../worker/config.h"

/* Writes text to a fresh temporary file; returns its path (static). */
static const char *
conf_file(const char *text)
{
    static char path[64];
    int fd;
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/orderd-test-conf-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* The variables these tests set, cleared so that the suite's environment
 * (scripts/test exports ORDERD_PG and others) does not leak in. */
static void
clear_env(void)
{
    static const char *const vars[] = {
        "ORDERD_CONFIG",  "ORDERD_PG",           "ORDERD_GROUP",
        "ORDERD_THREADS", "ORDERD_SOURCES",      "ORDERD_LOG_FORMAT",
        "ORDERD_BROKERS", "ORDERD_HTTP_TIMEOUT", NULL};

    for (int i = 0; vars[i] != NULL; i++)
        unsetenv(vars[i]);
}

/* config_load for cmd with argv (NULL-terminated) */
static int
load(od_config_t *cfg, unsigned cmd, const char **args, char *err,
     size_t errlen)
{
    int argc = 0;

    while (args[argc] != NULL)
        argc++;
    err[0] = '\0';
    return config_load(cfg, cmd, argc, (char **)args, NULL, 0, NULL, err,
                       errlen);
}

START_TEST(test_format)
{
    const char *path = conf_file("# orderd.conf\n"
                                 "\n"
                                 "   # an indented comment\n"
                                 "pg = host=db1 dbname=orderd password=a#b=c\n"
                                 "threads=3\n"
                                 "\tgroup   =   shop-eu   \r\n"
                                 "source = web=orders.web:customer\n"
                                 "source = pay=orders.pay:payment\n"
                                 "expiry-interval = 2s\n"
                                 "scheduler = false\n");
    const char *args[] = {"--config", path, NULL};
    od_config_t cfg;
    char err[256];

    clear_env();
    ck_assert_msg(load(&cfg, CONFIG_RUN, args, err, sizeof(err)) == 0, "%s",
                  err);
    /* only the first '=' splits; '#' inside a value is the value */
    ck_assert_str_eq(cfg.pg, "host=db1 dbname=orderd password=a#b=c");
    ck_assert_int_eq(cfg.threads, 3);
    ck_assert_str_eq(cfg.group, "shop-eu");
    /* source repeats: the entries add up */
    ck_assert_str_eq(cfg.source_spec,
                     "web=orders.web:customer;pay=orders.pay:payment");
    ck_assert_int_eq(cfg.expiry_interval_ms, 2000);
    ck_assert_int_eq(cfg.scheduler, 0);
    /* what the file does not set keeps its default */
    ck_assert_int_eq(cfg.batch_size, 500);
    ck_assert_str_eq(cfg.brokers, "127.0.0.1:9092");
    config_free(&cfg);
    unlink(path);
}
END_TEST

START_TEST(test_precedence)
{
    const char *path = conf_file("group = from-file\n"
                                 "threads = 3\n"
                                 "log-format = json\n"
                                 "source = a=from-file:admin\n");
    const char *args[] = {"--config", path, "--group", "from-flag", NULL};
    const char *lists[] = {
        "--config", path,           "--source", "c=t3:customer",
        "--source", "d=t4:payment", NULL};
    od_config_t cfg;
    char err[256];

    clear_env();
    setenv("ORDERD_GROUP", "from-env", 1);
    setenv("ORDERD_THREADS", "5", 1);
    ck_assert_msg(load(&cfg, CONFIG_RUN, args, err, sizeof(err)) == 0, "%s",
                  err);
    /* flag > variable > file > default */
    ck_assert_str_eq(cfg.group, "from-flag");
    ck_assert_int_eq(cfg.threads, 5);
    ck_assert_str_eq(cfg.log_format, "json");
    ck_assert_int_eq(cfg.batch_size, 500);
    config_free(&cfg);

    /* a list is replaced by a higher layer, never merged with it; repeated
     * flags add up among themselves */
    setenv("ORDERD_SOURCES", "b=from-env:admin", 1);
    ck_assert_msg(load(&cfg, CONFIG_RUN, lists, err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert_str_eq(cfg.source_spec, "c=t3:customer;d=t4:payment");
    config_free(&cfg);
    const char *none[] = {"--config", path, NULL};
    ck_assert_int_eq(load(&cfg, CONFIG_RUN, none, err, sizeof(err)), 0);
    ck_assert_str_eq(cfg.source_spec, "b=from-env:admin");
    config_free(&cfg);

    /* ORDERD_CONFIG names the file when --config does not */
    clear_env();
    setenv("ORDERD_CONFIG", path, 1);
    const char *bare[] = {NULL};
    ck_assert_int_eq(load(&cfg, CONFIG_RUN, bare, err, sizeof(err)), 0);
    ck_assert_str_eq(cfg.group, "from-file");
    config_free(&cfg);
    clear_env();
    unlink(path);
}
END_TEST

START_TEST(test_bad_lines_name_file_and_line_never_the_value)
{
    static const struct {
        const char *text;
        const char *want; /* after "PATH:" */
    } cases[] = {
        {"pg = x password=hunter2\nhunter2\n", "2: expected name = value"},
        {"= hunter2\n", "1: expected name = value, the name is empty"},
        {"pg password=hunter2\n", "1: expected name = value, with a long"},
        {"\n\nthreads = hunter2\n",
         "3: threads: the value is not an integer from 0 to 64"},
        {"http-timeout = 2d\n",
         "1: http-timeout: the value is not a duration from 1s to 1d"},
        {"log-format = hunter2\n",
         "1: log-format: the value is not one of text|json"},
        {"scheduler = hunter2\n", "1: scheduler: the value is not true or"},
        {"passwd = hunter2\n", "1: unknown option 'passwd'"},
        {"pg = a\npg = hunter2\n", "2: pg is already set on line 1"},
        {"count = 3\n", "1: count is a command-line flag, not a setting"},
        {"config = /etc/hunter2\n", "1: a configuration file cannot name"},
    };
    od_config_t cfg;
    char err[512], want[512];

    clear_env();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = conf_file(cases[i].text);
        const char *args[] = {"--config", path, NULL};

        ck_assert_int_eq(load(&cfg, CONFIG_RUN, args, err, sizeof(err)), -1);
        snprintf(want, sizeof(want), "%s:%s", path, cases[i].want);
        ck_assert_msg(strncmp(err, want, strlen(want)) == 0,
                      "case %zu: got '%s', want '%s...'", i, err, want);
        ck_assert_msg(strstr(err, "hunter2") == NULL, "case %zu: %s", i, err);
        config_free(&cfg);
        unlink(path);
    }
    const char *missing[] = {"--config", "/nonexistent/orderd.conf", NULL};
    ck_assert_int_eq(load(&cfg, CONFIG_CHECK, missing, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "could not open configuration file "
                          "/nonexistent/orderd.conf: No such file or "
                          "directory");
    config_free(&cfg);
}
END_TEST

/* a file serves every subcommand: another's setting is not an error */
START_TEST(test_file_shared_by_subcommands)
{
    const char *path = conf_file("pg = dbname=x\nthreads = 4\n"
                                 "brokers = k1:9092\n");
    const char *args[] = {"--config", path, NULL};
    od_config_t cfg;
    char err[256];

    clear_env();
    ck_assert_msg(load(&cfg, CONFIG_CHECK, args, err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert_str_eq(cfg.pg, "dbname=x");
    config_free(&cfg);
    ck_assert_msg(load(&cfg, CONFIG_MIGRATE, args, err, sizeof(err)) == 0, "%s",
                  err);
    config_free(&cfg);
    unlink(path);
}
END_TEST

START_TEST(test_bad_values_in_flags_and_variables)
{
    od_config_t cfg;
    char err[256];

    clear_env();
    /* a bad variable stops every subcommand, whether it uses it or not */
    setenv("ORDERD_THREADS", "two", 1);
    const char *none[] = {NULL};
    ck_assert_int_eq(load(&cfg, CONFIG_CHECK, none, err, sizeof(err)), -1);
    ck_assert_str_eq(err,
                     "ORDERD_THREADS: 'two' is not an integer from 0 to 64");
    config_free(&cfg);
    clear_env();

    const char *threads[] = {"--threads", "65", NULL};
    ck_assert_int_eq(load(&cfg, CONFIG_RUN, threads, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "--threads: '65' is not an integer from 0 to 64");
    config_free(&cfg);

    const char *halt[] = {"--on-internal-error=stop", NULL};
    ck_assert_int_eq(load(&cfg, CONFIG_RUN, halt, err, sizeof(err)), -1);
    ck_assert_str_eq(err,
                     "--on-internal-error: 'stop' is not one of continue|halt");
    config_free(&cfg);

    const char *time[] = {"--from-time", "yesterday", NULL};
    ck_assert_int_eq(load(&cfg, CONFIG_REPLAY, time, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "--from-time: 'yesterday' is not an "
                                      "RFC 3339 time"));
    config_free(&cfg);

    const char *count[] = {"--count", "-1", NULL};
    ck_assert_int_eq(load(&cfg, CONFIG_EVENTS, count, err, sizeof(err)), -1);
    config_free(&cfg);

    const char *ok[] = {"--timeout", "90", "--count", "3", "--follow", NULL};
    ck_assert_msg(load(&cfg, CONFIG_EVENTS, ok, err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert_int_eq(cfg.timeout_ms, 90000);
    ck_assert_int_eq(cfg.count, 3);
    ck_assert_int_eq(cfg.follow, 1);
    config_free(&cfg);
}
END_TEST

START_TEST(test_subcommands_refuse_other_options)
{
    static const struct {
        unsigned cmd;
        const char *args[4];
        const char *want;
    } cases[] = {
        {CONFIG_RUN,
         {"--count", "3", NULL},
         "option --count does not apply to run (it is an option of events and "
         "dlq)"},
        {CONFIG_MIGRATE,
         {"--brokers", "k:9092", NULL},
         "option --brokers does not apply to migrate (it is an option of "
         "run, topics, send, replay, events and dlq)"},
        {CONFIG_CHECK,
         {"-X", "a=b", NULL},
         "option -X does not apply to check (it is an option of run, "
         "topics, send, replay, events and dlq)"},
        {CONFIG_TOPICS,
         {"--threads=2", NULL},
         "option --threads does not apply to topics (it is an option of "
         "run)"},
        {CONFIG_SEND,
         {"--dry-run", NULL},
         "option --dry-run does not apply to send (it is an option of "
         "migrate and replay)"},
        /* the name only: what follows '=' may be a password */
        {CONFIG_EVENTS,
         {"--pg=password=hunter2", NULL},
         "option --pg does not apply to events (it is an option of run, "
         "migrate, replay, check, order and report)"},
        {CONFIG_RUN,
         {"-x", "foo=bar", NULL},
         "unknown option '-x' (see orderd run --help)"},
        {CONFIG_RUN, {"--raw=1", NULL}, "option --raw does not apply to run"},
        {CONFIG_EVENTS, {"--raw=1", NULL}, "option --raw takes no value"},
        {CONFIG_EVENTS, {"--count", NULL}, "option --count needs a value: N"},
    };
    od_config_t cfg;
    char err[256];

    clear_env();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(load(&cfg, cases[i].cmd, (const char **)cases[i].args,
                              err, sizeof(err)),
                         -1);
        ck_assert_msg(strncmp(err, cases[i].want, strlen(cases[i].want)) == 0,
                      "case %zu: got '%s'", i, err);
        ck_assert_ptr_null(strstr(err, "hunter2"));
        config_free(&cfg);
    }
}
END_TEST

START_TEST(test_send_source_name_or_definition)
{
    const char *args[] = {"--source", "web=orders.web:customer", "--source",
                          "web", NULL};
    od_config_t cfg;
    char err[256];

    clear_env();
    ck_assert_msg(load(&cfg, CONFIG_SEND, args, err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert_str_eq(cfg.source_spec, "web=orders.web:customer");
    ck_assert_str_eq(cfg.send_source, "web");
    config_free(&cfg);
    /* run has no source to pick: a bare name is a malformed definition */
    const char *run[] = {"--source", "web", NULL};
    ck_assert_int_eq(load(&cfg, CONFIG_RUN, run, err, sizeof(err)), 0);
    ck_assert_str_eq(cfg.source_spec, "web");
    ck_assert_int_eq(config_finish(&cfg, err, sizeof(err)), -1);
    config_free(&cfg);
}
END_TEST

START_TEST(test_help_and_positionals)
{
    const char *help[] = {"--threads", "2", "--help", NULL};
    const char *order[] = {"ORD-1", "--log-level", "warn", NULL};
    const char *two[] = {"ORD-1", "ORD-2", NULL};
    od_config_t cfg;
    char err[256], *pos[1] = {NULL};
    int npos = -1;

    clear_env();
    ck_assert_int_eq(load(&cfg, CONFIG_RUN, help, err, sizeof(err)), 1);
    config_free(&cfg);
    ck_assert_int_eq(config_load(&cfg, CONFIG_ORDER, 3, (char **)order, pos, 1,
                                 &npos, err, sizeof(err)),
                     0);
    ck_assert_int_eq(npos, 1);
    ck_assert_str_eq(pos[0], "ORD-1");
    ck_assert_str_eq(cfg.log_level, "warn");
    config_free(&cfg);
    ck_assert_int_eq(config_load(&cfg, CONFIG_ORDER, 2, (char **)two, pos, 1,
                                 &npos, err, sizeof(err)),
                     -1);
    ck_assert_str_eq(err, "unexpected argument 'ORD-2'");
    config_free(&cfg);
}
END_TEST

/* the example the install ships parses, and says what it means to */
START_TEST(test_shipped_example)
{
    const char *args[] = {
        "--config", ORDERD_SCHEMA_DIR "/../deploy/orderd.conf.example", NULL};
    od_config_t cfg;
    char err[512];

    clear_env();
    ck_assert_msg(load(&cfg, CONFIG_RUN, args, err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert_ptr_nonnull(strstr(cfg.pg, "user=orderd_app"));
    ck_assert_str_eq(cfg.metrics_addr, "127.0.0.1:9464");
    ck_assert_int_eq(config_finish(&cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.sources.n, 3);
    config_free(&cfg);
}
END_TEST

static Suite *
config_file_suite(void)
{
    Suite *s = suite_create("config_file");
    TCase *tc;

    tc = tcase_create("format");
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_file_shared_by_subcommands);
    tcase_add_test(tc, test_shipped_example);
    suite_add_tcase(s, tc);
    tc = tcase_create("precedence");
    tcase_add_test(tc, test_precedence);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_bad_lines_name_file_and_line_never_the_value);
    tcase_add_test(tc, test_bad_values_in_flags_and_variables);
    suite_add_tcase(s, tc);
    tc = tcase_create("subcommands");
    tcase_add_test(tc, test_subcommands_refuse_other_options);
    tcase_add_test(tc, test_send_source_name_or_definition);
    tcase_add_test(tc, test_help_and_positionals);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(config_file_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
