/* 0720_cli: the orderd binary as an operator meets it: each subcommand
 * refuses another's options and bad values before doing anything (exit 2,
 * saying which), has its own --help, prints its version; a configuration
 * file sits under the variables and the flags; migrate --dry-run changes
 * nothing on a fresh database; events returns when fewer than --count
 * events exist; run says where its metrics endpoint listens */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ktest.h"
#include "ports.h"

extern char **environ;

typedef struct run {
    int rc;
    char *out; /* stdout */
    char *err; /* stderr */
} run_t;

static char *
slurp_fd(int fd)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t r;

    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (cap - len < 1024)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    return buf;
}

/* A temporary file's descriptor (unlinked: it goes with the test). */
static int
temp_fd(void)
{
    char path[] = "/tmp/orderd-0720-XXXXXX";
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    unlink(path);
    return fd;
}

/*
 * Runs orderd with args (NULL-terminated) in an environment without any
 * ORDERD_* or PG* variable of the suite's (PGPASSFILE stays: it holds the
 * test roles' passwords), plus env ("NAME=value" strings, NULL-terminated,
 * may be NULL). Waits; the caller frees r->out and r->err.
 */
static void
run_orderd(const char *const *env, const char *const *args, run_t *r)
{
    const char *bin = getenv("ORDERD_BIN");
    int out = temp_fd(), err = temp_fd(), status;
    pid_t pid;

    ck_assert_msg(bin != NULL, "ORDERD_BIN is not set (ctest sets it)");
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        const char *argv[32] = {bin};
        char *envp[256];
        int n = 0, a = 1;

        for (char **e = environ; *e != NULL && n < 200; e++)
            if (strncmp(*e, "ORDERD_", 7) != 0 &&
                (strncmp(*e, "PG", 2) != 0 ||
                 strncmp(*e, "PGPASSFILE=", 11) == 0))
                envp[n++] = *e;
        for (; env != NULL && *env != NULL && n < 254; env++)
            envp[n++] = (char *)*env;
        envp[n] = NULL;
        for (; args[a - 1] != NULL && a < 31; a++)
            argv[a] = args[a - 1];
        argv[a] = NULL;
        dup2(out, STDOUT_FILENO);
        dup2(err, STDERR_FILENO);
        execve(bin, (char *const *)argv, envp);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        ck_assert_int_eq(errno, EINTR);
    r->rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r->out = slurp_fd(out);
    r->err = slurp_fd(err);
    close(out);
    close(err);
}

static void
run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

/* A file holding text; path receives its name (the caller unlinks it). */
static void
write_file(char *path, size_t len, const char *text)
{
    int fd;

    snprintf(path, len, "/tmp/orderd-0720-conf-XXXXXX");
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

START_TEST(test_version)
{
    const char *a1[] = {"version", NULL};
    const char *a2[] = {"--version", NULL};
    const char *a3[] = {"version", "--pg", "x", NULL};
    regex_t re;
    run_t r1, r2, r3;

    ck_assert_int_eq(
        regcomp(&re, "^orderd [0-9]+\\.[0-9]+\\.[0-9]+\n$", REG_EXTENDED), 0);
    run_orderd(NULL, a1, &r1);
    run_orderd(NULL, a2, &r2);
    ck_assert_int_eq(r1.rc, 0);
    ck_assert_int_eq(r2.rc, 0);
    ck_assert_msg(regexec(&re, r1.out, 0, NULL, 0) == 0, "'%s'", r1.out);
    ck_assert_str_eq(r1.out, r2.out);
    run_orderd(NULL, a3, &r3);
    ck_assert_int_eq(r3.rc, 2);
    regfree(&re);
    run_free(&r1);
    run_free(&r2);
    run_free(&r3);
}
END_TEST

START_TEST(test_help_per_subcommand)
{
    static const struct {
        const char *cmd;
        const char *has[4];
        const char *hasnt[4];
    } cases[] = {
        {"migrate",
         {"--dry-run", "--migrate-pg CONNINFO", "ORDERD_MIGRATE_PG", NULL},
         {"--threads", "--brokers", "-X", "--count"}},
        {"run",
         {"--threads N", "ORDERD_THREADS, default 0", "--metrics-addr", NULL},
         {"--migrate-pg", "--count", "--dry-run", "--from-time"}},
        {"events",
         {"--count N", "--timeout DURATION", "default 30s", "--follow"},
         {"--pg", "--threads", "--group", "--dry-run"}},
        {"check",
         {"--pg CONNINFO", "--config FILE", "ORDERD_CONFIG", NULL},
         {"--brokers", "-X", "--threads", "--dry-run"}},
    };
    char *seen[4];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *args[] = {cases[i].cmd, "--help", NULL};
        run_t r;

        run_orderd(NULL, args, &r);
        ck_assert_msg(r.rc == 0, "%s --help: %d %s", cases[i].cmd, r.rc, r.err);
        for (int j = 0; j < 4 && cases[i].has[j]; j++)
            ck_assert_msg(strstr(r.out, cases[i].has[j]) != NULL,
                          "orderd %s --help lacks %s:\n%s", cases[i].cmd,
                          cases[i].has[j], r.out);
        for (int j = 0; j < 4; j++) {
            char word[64];

            /* an option's own line: "  --name" */
            snprintf(word, sizeof(word), "\n  %s ", cases[i].hasnt[j]);
            ck_assert_msg(strstr(r.out, word) == NULL,
                          "orderd %s --help lists %s:\n%s", cases[i].cmd,
                          cases[i].hasnt[j], r.out);
        }
        seen[i] = r.out;
        free(r.err);
    }
    for (size_t i = 0; i < 4; i++)
        free(seen[i]);
}
END_TEST

START_TEST(test_refuses_other_options)
{
    static const struct {
        const char *args[5];
        const char *want; /* in stderr */
    } cases[] = {
        {{"run", "--count", "3", NULL},
         "orderd run: option --count does not apply to run"},
        {{"run", "-x", "foo=bar", NULL}, "orderd run: unknown option '-x'"},
        {{"migrate", "--threads", "2", NULL},
         "orderd migrate: option --threads does not apply to migrate"},
        {{"topics", "--dry-run", NULL},
         "orderd topics: option --dry-run does not apply to topics"},
        {{"send", "--group", "g", NULL},
         "orderd send: option --group does not apply to send"},
        {{"replay", "--from-beginning", "--raw", NULL},
         "orderd replay: option --raw does not apply to replay"},
        {{"check", "-X", "a=b", NULL},
         "orderd check: option -X does not apply to check"},
        {{"order", "ORD-1", "--follow", NULL},
         "orderd order: option --follow does not apply to order"},
        {{"events", "--migrate-pg", "x", NULL},
         "orderd events: option --migrate-pg does not apply to events"},
        {{"dlq", "redrive", "--follow", NULL},
         "orderd dlq: option --follow does not apply to dlq"},
        {{"frobnicate", NULL}, "orderd: unknown command 'frobnicate'"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        run_t r;

        run_orderd(NULL, cases[i].args, &r);
        ck_assert_msg(r.rc == 2, "%s: exit %d, stderr %s", cases[i].args[0],
                      r.rc, r.err);
        ck_assert_msg(strstr(r.err, cases[i].want) != NULL,
                      "%s: stderr '%s' lacks '%s'", cases[i].args[0], r.err,
                      cases[i].want);
        run_free(&r);
    }
}
END_TEST

/* Bad values stop every subcommand at start with the same exit, saying
 * where the value came from and never quoting a file's value. */
START_TEST(test_bad_values_are_fatal)
{
    char conf[64];
    const char *two[] = {"ORDERD_THREADS=two", NULL};
    const char *run[] = {"run", "--metrics-addr", "off", NULL};
    const char *check[] = {"check", NULL};
    const char *badx_run[] = {"run", "-X", "no.such.property=1", NULL};
    const char *badx_topics[] = {"topics", "-X", "no.such.property=1", NULL};
    const char *time[] = {"replay", "--from-time", "yesterday", NULL};
    const char *wait[] = {"events", "--timeout", "soon", NULL};
    run_t r;

    run_orderd(two, run, &r);
    ck_assert_int_eq(r.rc, 2);
    ck_assert_ptr_nonnull(
        strstr(r.err, "ORDERD_THREADS: 'two' is not an integer"));
    run_free(&r);
    /* a variable is checked even by a subcommand that does not use it */
    run_orderd(two, check, &r);
    ck_assert_int_eq(r.rc, 2);
    run_free(&r);

    run_orderd(NULL, badx_run, &r);
    ck_assert_int_eq(r.rc, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "no.such.property"));
    run_free(&r);
    run_orderd(NULL, badx_topics, &r);
    ck_assert_int_eq(r.rc, 2);
    run_free(&r);
    run_orderd(NULL, time, &r);
    ck_assert_int_eq(r.rc, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "--from-time: 'yesterday'"));
    run_free(&r);
    run_orderd(NULL, wait, &r);
    ck_assert_int_eq(r.rc, 2);
    run_free(&r);

    write_file(conf, sizeof(conf),
               "# orderd\npg = host=db password=hunter2\n"
               "batch-size = hunter2\n");
    const char *withconf[] = {"run", "--config", conf, NULL};
    char want[128];

    run_orderd(NULL, withconf, &r);
    ck_assert_int_eq(r.rc, 2);
    snprintf(want, sizeof(want), "%s:3: batch-size: the value is not", conf);
    ck_assert_msg(strstr(r.err, want) != NULL, "%s", r.err);
    ck_assert_ptr_null(strstr(r.err, "hunter2"));
    run_free(&r);
    unlink(conf);
}
END_TEST

/* A database whose check finds a violation: stock without its ledger. */
static void
make_violation(const char *name)
{
    itest_owner_exec(name, "INSERT INTO products (id, vendor_id, kind, name,"
                           " sku, currency, price_cents, stock) VALUES"
                           " (1, 'v', 'simple', 'Mug', 'M-1', 'EUR', 100, 5)");
}

/*
 * Which database `orderd check` used tells which layer won: the good one
 * exits 0, the one with a violation 1, a missing one 5.
 */
START_TEST(test_config_precedence)
{
    char good[1024], bad[1024], missing[1100], conf[64], text[1200];
    char env_good[1100], env_conf[100];
    db_t *g = itest_fresh_db("0720_good", good, sizeof(good));
    db_t *b = itest_fresh_db("0720_bad", bad, sizeof(bad));
    const char *check[] = {"check", NULL};
    run_t r;

    db_destroy(g);
    db_destroy(b);
    make_violation("0720_bad");
    /* the last dbname= of a libpq string wins */
    snprintf(missing, sizeof(missing), "%s dbname=it_0720_missing", good);
    snprintf(text, sizeof(text), "# which database\npg = %s\n", bad);
    write_file(conf, sizeof(conf), text);
    snprintf(env_good, sizeof(env_good), "ORDERD_PG=%s", good);
    snprintf(env_conf, sizeof(env_conf), "ORDERD_CONFIG=%s", conf);

    /* the file over the default */
    const char *file_only[] = {"check", "--config", conf, NULL};
    run_orderd(NULL, file_only, &r);
    ck_assert_msg(r.rc == 1, "exit %d: %s %s", r.rc, r.out, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "VIOLATED"));
    run_free(&r);
    /* ORDERD_CONFIG names the same file */
    const char *e1[] = {env_conf, NULL};
    run_orderd(e1, check, &r);
    ck_assert_int_eq(r.rc, 1);
    run_free(&r);
    /* the variable over the file */
    const char *e2[] = {env_conf, env_good, NULL};
    run_orderd(e2, check, &r);
    ck_assert_msg(r.rc == 0, "exit %d: %s %s", r.rc, r.out, r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "all invariants hold"));
    run_free(&r);
    /* the flag over the variable: here a database that does not exist,
     * which check reports as "could not check" (5), not as a violation */
    const char *flag[] = {"check", "--pg", missing, NULL};
    run_orderd(e2, flag, &r);
    ck_assert_msg(r.rc == 5, "exit %d: %s %s", r.rc, r.out, r.err);
    run_free(&r);
    const char *e3[] = {env_good, NULL};
    const char *flag_bad[] = {"check", "--pg", bad, NULL};
    run_orderd(e3, flag_bad, &r);
    ck_assert_int_eq(r.rc, 1);
    run_free(&r);
    unlink(conf);
}
END_TEST

START_TEST(test_migrate_dry_run_changes_nothing)
{
    char owner[1024], env[1100];
    db_t *admin = itest_fresh_db("0720_admin", NULL, 0);
    db_t *fresh;
    run_t r;
    int files = 0;

    db_destroy(admin);
    itest_owner_exec("0720_admin",
                     "DROP DATABASE IF EXISTS it_0720_empty WITH (FORCE)");
    itest_owner_exec("0720_admin", "CREATE DATABASE it_0720_empty");
    itest_owner_conninfo("0720_empty", owner, sizeof(owner));
    snprintf(env, sizeof(env), "ORDERD_MIGRATE_PG=%s", owner);
    const char *envs[] = {env, NULL};
    const char *dry[] = {"migrate", "--dry-run", NULL};
    const char *real[] = {"migrate", NULL};

    run_orderd(envs, dry, &r);
    ck_assert_msg(r.rc == 0, "exit %d: %s", r.rc, r.err);
    ck_assert_msg(strstr(r.out, "pending 0001_init.sql\n") != NULL, "%s",
                  r.out);
    for (const char *p = r.out; (p = strstr(p, "pending ")) != NULL; p++)
        files++;
    ck_assert_int_ge(files, 2);
    run_free(&r);

    /* nothing at all was created, not even schema_migrations */
    fresh = itest_owner_db("0720_empty");
    ck_assert_int_eq(itest_int(fresh, "SELECT count(*) FROM pg_class c JOIN"
                                      " pg_namespace n ON n.oid ="
                                      " c.relnamespace WHERE n.nspname ="
                                      " 'public'"),
                     0);

    /* then for real: the same migrations, recorded; nothing pending */
    run_orderd(envs, real, &r);
    ck_assert_msg(r.rc == 0, "exit %d: %s", r.rc, r.err);
    run_free(&r);
    ck_assert_int_eq(itest_int(fresh, "SELECT count(*) FROM schema_migrations"),
                     files);
    run_orderd(envs, dry, &r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_ptr_null(strstr(r.out, "pending "));
    ck_assert_ptr_nonnull(strstr(r.out, "migrations pending: 0"));
    run_free(&r);
    db_destroy(fresh);
}
END_TEST

static void
produce_event(ktest_t *k, const char *payload)
{
    ck_assert_int_eq(
        rd_kafka_producev(k->producer, RD_KAFKA_V_TOPIC(k->events),
                          RD_KAFKA_V_VALUE((void *)payload, strlen(payload)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_END),
        RD_KAFKA_RESP_ERR_NO_ERROR);
}

static int
count_lines(const char *s)
{
    int n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

START_TEST(test_events_count_returns_when_fewer_exist)
{
    ktest_t k;
    char brokers[512], topic[256];
    run_t r;
    int64_t t0;

    ktest_setup(&k, "0720_events", 2);
    snprintf(brokers, sizeof(brokers), "ORDERD_BROKERS=%s", k.brokers);
    snprintf(topic, sizeof(topic), "ORDERD_EVENTS_TOPIC=%s", k.events);
    const char *env[] = {brokers, topic, NULL};
    const char *five[] = {"events", "--count", "5", NULL};
    const char *two[] = {"events", "--count", "2", NULL};
    const char *all[] = {"events", NULL};
    const char *follow[] = {"events",    "--follow", "--count", "5",
                            "--timeout", "2s",       NULL};

    /* an empty topic: nothing, at once */
    t0 = od_mono_us();
    run_orderd(env, all, &r);
    ck_assert_msg(r.rc == 0, "exit %d: %s", r.rc, r.err);
    ck_assert_str_eq(r.out, "");
    run_free(&r);

    produce_event(&k, "{\"event_id\":\"e1\",\"type\":\"order.expired\"}");
    produce_event(&k, "{\"event_id\":\"e2\",\"type\":\"order.expired\"}");
    ktest_flush(&k);

    /* fewer than --count: it stops at the end of the topic, well before
     * the default --timeout (30s), and says so with exit 1 */
    t0 = od_mono_us();
    run_orderd(env, five, &r);
    ck_assert_msg(r.rc == 1, "exit %d: %s", r.rc, r.err);
    ck_assert_int_lt(od_mono_us() - t0, 20 * 1000000LL);
    ck_assert_int_eq(count_lines(r.out), 2);
    ck_assert_msg(strstr(r.err, "2 of 5 events (the end of the topic)") != NULL,
                  "%s", r.err);
    run_free(&r);

    run_orderd(env, two, &r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(count_lines(r.out), 2);
    run_free(&r);
    run_orderd(env, all, &r);
    ck_assert_int_eq(r.rc, 0);
    ck_assert_int_eq(count_lines(r.out), 2);
    run_free(&r);

    /* --follow waits past the end, bounded by --timeout */
    t0 = od_mono_us();
    run_orderd(env, follow, &r);
    ck_assert_int_eq(r.rc, 1);
    ck_assert_int_ge(od_mono_us() - t0, 2 * 1000000LL);
    ck_assert_int_eq(count_lines(r.out), 2);
    ck_assert_ptr_nonnull(strstr(r.err, "2 of 5 events (timed out)"));
    run_free(&r);
    ktest_teardown(&k);
}
END_TEST

/* Reads a file into a new string ("" if it cannot be read). */
static char *
slurp_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    char *s;

    if (fd < 0)
        return strdup("");
    s = slurp_fd(fd);
    close(fd);
    return s;
}

START_TEST(test_run_logs_metrics_address)
{
    ktest_t k;
    char log[] = "/tmp/orderd-0720-log-XXXXXX", addr[64], want[128];
    const char *extra[] = {"--metrics-addr", addr, "--log-level", "info", NULL};
    int fd = mkstemp(log), found = 0;
    pid_t pid;

    ck_assert_int_ge(fd, 0);
    close(fd);
    ktest_setup(&k, "0720_metrics", 1);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", test_free_ports(1));
    snprintf(want, sizeof(want), "metrics and health on http://%s", addr);
    pid = ktest_worker_start_logged(&k, extra, log);
    for (int64_t end = od_mono_us() + 30 * 1000000LL;
         !found && od_mono_us() < end;) {
        char *text = slurp_path(log);
        struct timespec ts = {0, 50 * 1000 * 1000};

        found = strstr(text, want) != NULL;
        free(text);
        if (!found)
            nanosleep(&ts, NULL); /* polling the log, bounded */
    }
    ck_assert_int_eq(ktest_worker_stop(pid, SIGTERM), 0);
    if (!found) {
        char *text = slurp_path(log);

        ck_abort_msg("no '%s' in the log:\n%s", want, text);
    }
    unlink(log);
    ktest_teardown(&k);
}
END_TEST

static Suite *
cli_suite(void)
{
    Suite *s = suite_create("0720_cli");
    TCase *tc;

    tc = tcase_create("usage");
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_help_per_subcommand);
    tcase_add_test(tc, test_refuses_other_options);
    tcase_add_test(tc, test_bad_values_are_fatal);
    suite_add_tcase(s, tc);
    tc = tcase_create("configuration");
    tcase_add_test(tc, test_config_precedence);
    suite_add_tcase(s, tc);
    tc = tcase_create("migrate");
    tcase_add_test(tc, test_migrate_dry_run_changes_nothing);
    suite_add_tcase(s, tc);
    tc = tcase_create("kafka");
    tcase_add_test(tc, test_events_count_returns_when_fewer_exist);
    tcase_add_test(tc, test_run_logs_metrics_address);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(cli_suite());
}
