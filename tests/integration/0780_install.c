/* 0780_install: `cmake --install` makes a tree that works on its own. The
 * files land in their places; the systemd unit passes systemd-analyze
 * verify and starts the installed binary; the installed tree, moved
 * elsewhere, migrates a fresh database from its own share/orderd/schema
 * (never from the source tree), and says where it looked when that
 * directory is gone; --schema-dir overrides */
#include "itest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmp[64];

static const char *
env_need(const char *name)
{
    const char *v = getenv(name);

    ck_assert_msg(v != NULL && *v, "%s is not set (ctest sets it)", name);
    return v;
}

/*
 * Runs argv (argv[0] a path) in directory cwd with ORDERD_SCHEMA_DIR
 * unset; its stdout and stderr, together, into out (len bytes). Returns
 * the exit status.
 */
static int
run(const char *const *argv, const char *cwd, char *out, size_t len)
{
    int fds[2], status;
    size_t n = 0;
    ssize_t r;
    pid_t pid;

    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        unsetenv("ORDERD_SCHEMA_DIR");
        if (chdir(cwd) != 0)
            _exit(126);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    while ((r = read(fds[0], out + n, len - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    while (waitpid(pid, &status, 0) < 0)
        ck_assert_int_eq(errno, EINTR);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int
exists(const char *dir, const char *rel)
{
    char path[512];
    struct stat st;

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return stat(path, &st) == 0;
}

/* the migrations of the source tree (what an install must carry) */
static int
count_migrations(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    ck_assert_msg(d != NULL, "opendir %s", dir);
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);

        n += len > 9 && de->d_name[4] == '_' &&
             strcmp(de->d_name + len - 4, ".sql") == 0;
    }
    closedir(d);
    return n;
}

static void
setup(void)
{
    const char *argv[] = {env_need("ORDERD_TEST_CMAKE"),
                          "--install",
                          env_need("ORDERD_TEST_BUILD_DIR"),
                          "--prefix",
                          NULL,
                          NULL};
    char prefix[128], out[65536];

    snprintf(tmp, sizeof(tmp), "/tmp/orderd-install-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
    snprintf(prefix, sizeof(prefix), "%s/usr", tmp);
    argv[4] = prefix;
    ck_assert_msg(run(argv, tmp, out, sizeof(out)) == 0, "cmake --install: %s",
                  out);
}

static void
teardown(void)
{
    char out[4096];
    const char *argv[] = {"/bin/rm", "-rf", tmp, NULL};

    run(argv, "/", out, sizeof(out));
}

START_TEST(test_files_and_unit)
{
    char prefix[128], unit[256], out[65536], want[256];
    const char *verify[] = {"/usr/bin/systemd-analyze", "verify", "--man=no",
                            unit, NULL};
    FILE *f;
    size_t n;

    snprintf(prefix, sizeof(prefix), "%s/usr", tmp);
    ck_assert(exists(prefix, "bin/orderd"));
    ck_assert(exists(prefix, "share/orderd/schema/0001_init.sql"));
    snprintf(want, sizeof(want), "%s/share/orderd/schema", prefix);
    ck_assert_int_eq(count_migrations(want),
                     count_migrations(ORDERD_SCHEMA_DIR));
    ck_assert(exists(prefix, "share/orderd/orderd-alerts.yml"));
    ck_assert(exists(prefix, "share/orderd/orderd.conf.example"));
    ck_assert(exists(prefix, "share/doc/orderd/operations.md"));
    ck_assert(exists(prefix, "share/doc/orderd/README.md"));

    /* the unit names the installed binary, and systemd accepts it */
    snprintf(unit, sizeof(unit), "%s/lib/systemd/system/orderd.service",
             prefix);
    f = fopen(unit, "r");
    ck_assert_msg(f != NULL, "no unit at %s", unit);
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    fclose(f);
    snprintf(want, sizeof(want), "\nExecStart=%s/bin/orderd run ", prefix);
    ck_assert_msg(strstr(out, want) != NULL, "unit without %s", want + 1);
    ck_assert_msg(strstr(out, "\nType=notify\n") != NULL, "not Type=notify");
    ck_assert_msg(strstr(out, "@ORDERD") == NULL, "unit not configured");
    /* verify warns about unknown settings without failing: no output at
     * all is the pass */
    ck_assert_msg(run(verify, tmp, out, sizeof(out)) == 0 && out[0] == '\0',
                  "systemd-analyze verify: %s", out);
}
END_TEST

START_TEST(test_moved_tree_migrates)
{
    char from[128], to[128], orderd[160], info[1024], out[65536], sql[128];
    char schema[160], hidden[160];
    const char *base = getenv("ORDERD_TEST_MIGRATE_PG");
    const char *migrate[] = {orderd,         "migrate", "--log-level", "info",
                             "--migrate-pg", info,      NULL};
    const char *explicit[] = {
        orderd, "migrate", "--migrate-pg", info, "--schema-dir", hidden, NULL};
    int want = count_migrations(ORDERD_SCHEMA_DIR);
    db_t *admin, *db;
    char err[512];

    /* moved: nothing may depend on where it was installed */
    snprintf(from, sizeof(from), "%s/usr", tmp);
    snprintf(to, sizeof(to), "%s/opt-orderd", tmp);
    ck_assert_int_eq(rename(from, to), 0);
    snprintf(orderd, sizeof(orderd), "%s/bin/orderd", to);

    if (base == NULL || *base == '\0')
        base = env_need("ORDERD_MIGRATE_PG");
    admin = db_connect(base, err, sizeof(err));
    ck_assert_msg(admin != NULL, "%s", err);
    itest_exec(admin, "DROP DATABASE IF EXISTS it_install WITH (FORCE)");
    itest_exec(admin, "CREATE DATABASE it_install");
    db_destroy(admin);
    itest_owner_conninfo("install", info, sizeof(info));

    /* from a directory without schema/, with ORDERD_SCHEMA_DIR unset */
    ck_assert_msg(run(migrate, tmp, out, sizeof(out)) == 0, "migrate: %s", out);
    snprintf(sql, sizeof(sql), "migrations applied: %d\n", want);
    ck_assert_msg(strstr(out, sql) != NULL, "migrate said: %s", out);
    snprintf(schema, sizeof(schema), "%s/share/orderd/schema", to);
    ck_assert_msg(strstr(out, schema) != NULL, "not from %s: %s", schema, out);
    db = itest_owner_db("install");
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM schema_migrations"),
                     want);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM pg_tables WHERE "
                                   "tablename = 'consumer_offsets'"),
                     1);
    db_destroy(db);

    /* without its schema directory it says where it looked, and does not
     * fall back to the source tree */
    snprintf(hidden, sizeof(hidden), "%s/schema-elsewhere", tmp);
    ck_assert_int_eq(rename(schema, hidden), 0);
    ck_assert_int_eq(run(migrate, tmp, out, sizeof(out)), 1);
    ck_assert_msg(strstr(out, "no schema directory") != NULL &&
                      strstr(out, to) != NULL,
                  "migrate said: %s", out);

    /* --schema-dir names it */
    ck_assert_msg(run(explicit, tmp, out, sizeof(out)) == 0, "migrate: %s",
                  out);
    ck_assert_msg(strstr(out, "migrations applied: 0\n") != NULL,
                  "migrate said: %s", out);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("install");
    TCase *tc = tcase_create("installed tree");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_files_and_unit);
    tcase_add_test(tc, test_moved_tree_migrates);
    suite_add_tcase(s, tc);
    return itest_run(s);
}
