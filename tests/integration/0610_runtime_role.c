/* 0610_runtime_role: the role orderd runs as is least privileged. It is no
 * superuser, may not create databases or roles, owns nothing in the
 * cluster, and every attempt to change the schema (CREATE, ALTER, DROP,
 * TRUNCATE) or to write what orderd never writes (delete from the read
 * model, rewrite the ledger, rewind order numbers, touch the migration
 * ledger) fails with insufficient_privilege (42501); yet applying commands
 * and the worker (`orderd run`, with a parked command, and `orderd check`)
 * work as that role, and `orderd migrate` works only as the owner. A
 * worker started as the owner says that it holds too much. Logins need
 * the right password: scram-sha-256, no trust. */
#include "0500_common.h"

#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define O1 "61000000-0000-4000-8000-000000000001"

static ktest_t k;

static void
setup(void)
{
    ktest_setup(&k, "runtime_role", 1);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

/* Runs sql as the runtime role; it must fail with SQLSTATE 42501. */
static void
expect_denied(const char *sql)
{
    char err[512];
    od_status_t st = db_exec(k.db, sql, err, sizeof(err));

    ck_assert_msg(st != OD_OK, "the runtime role was allowed: %s", sql);
    ck_assert_msg(strcmp(db_sqlstate(k.db), "42501") == 0,
                  "%s: SQLSTATE %s, not 42501 (%s)", sql, db_sqlstate(k.db),
                  err);
}

START_TEST(test_runtime_role_has_no_power_over_the_schema)
{
    static const char *const denied[] = {
        /* DDL */
        "CREATE TABLE it_made_at_runtime (id int)",
        "CREATE FUNCTION it_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "ALTER TABLE orders ADD COLUMN it_extra int",
        "ALTER TABLE stock_ledger DISABLE TRIGGER ALL",
        "DROP TABLE stock_ledger",
        "DROP FUNCTION orderd_order_json(uuid)",
        "CREATE INDEX it_idx ON orders (number)",
        "TRUNCATE processed_commands",
        "TRUNCATE orders CASCADE",
        /* rows orderd never deletes or rewrites */
        "DELETE FROM orders",
        "DELETE FROM products",
        "UPDATE stock_ledger SET delta = 0",
        "DELETE FROM order_status_history",
        "UPDATE order_items SET unit_price_cents = 0",
        "INSERT INTO order_transitions VALUES ('refunded', 'paid')",
        "SELECT setval('order_number_seq', 1)",
        "SELECT * FROM schema_migrations",
        /* the cluster */
        "CREATE ROLE it_intruder",
        "CREATE DATABASE it_intruder",
    };
    char owner[128];

    /* not a superuser, no CREATEDB/CREATEROLE, and no role it may become
     * has them either */
    ck_assert_int_eq(itest_int(k.db,
                               "SELECT count(*) FROM pg_roles"
                               " WHERE pg_has_role(current_user, oid,"
                               " 'MEMBER') AND (rolsuper OR rolcreatedb OR"
                               " rolcreaterole OR rolreplication OR"
                               " rolbypassrls)"),
                     0);
    ck_assert_int_eq(itest_int(k.db, "SELECT pg_has_role(current_user,"
                                     " 'orderd_runtime', 'USAGE')::int"),
                     1);
    /* owns nothing anywhere in the cluster (ownership of any object in
     * any database is recorded in pg_shdepend), nor the tables here */
    ck_assert_int_eq(itest_int(k.db,
                               "SELECT count(*) FROM pg_shdepend"
                               " WHERE deptype = 'o' AND refobjid IN"
                               " (SELECT oid FROM pg_roles WHERE"
                               " pg_has_role(current_user, oid, 'MEMBER'))"),
                     0);
    itest_text(k.db,
               "SELECT tableowner FROM pg_tables WHERE tablename ="
               " 'orders'",
               owner, sizeof(owner));
    ck_assert_str_ne(owner, "");
    ck_assert_int_eq(itest_int(k.db,
                               "SELECT count(*) FROM pg_class c"
                               " JOIN pg_namespace n ON n.oid ="
                               " c.relnamespace WHERE n.nspname = 'public'"
                               " AND pg_has_role(current_user, c.relowner,"
                               " 'MEMBER')"),
                     0);
    ck_assert_int_eq(itest_int(k.db, "SELECT has_schema_privilege('public',"
                                     " 'CREATE')::int"),
                     0);

    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++)
        expect_denied(denied[i]);
    /* and nothing changed: the schema is whole */
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM"
                                     " information_schema.columns WHERE"
                                     " column_name = 'it_extra'"),
                     0);
    ck_assert_int_eq(itest_int(k.db, "SELECT (to_regclass('stock_ledger') IS"
                                     " NOT NULL)::int"),
                     1);
}
END_TEST

START_TEST(test_apply_and_worker_run_as_the_runtime_role)
{
    const char *migrate[] = {"migrate", NULL};
    const char *migrate_as_runtime[] = {"migrate", "--migrate-pg", "", NULL};
    const char *check[] = {"check", NULL};
    char msg[1024], *out = NULL;
    json_t *ev;
    pid_t worker;

    /* the per-command path, as the runtime role (its events go to this
     * test's topics: the worker below publishes them) */
    itest_cfg.domain.events_topic = k.events;
    itest_cfg.dlq_topic = k.dlq;
    x_product_json(msg, sizeof(msg), 1, 1000, 10);
    ev = itest_apply(k.db, msg);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);

    /* the worker: a payment for an order not seen yet is parked, the
     * checkout releases it (deferred rows inserted, locked and deleted),
     * the outbox is published and marked */
    worker = ktest_worker_start(&k, NULL);
    x_pay_json(msg, sizeof(msg), "pay-1", O1, 2000, 0);
    ktest_send(&k, O1, msg);
    x_checkout_json(msg, sizeof(msg), "co-1", O1, 1, 2, 0, 0);
    ktest_send_cmd(&k, msg);
    ktest_flush(&k);
    ck_assert_int_eq(x_wait_key(&k, "pay-1", 2, 60), 2);
    ck_assert_int_eq(x_wait_key(&k, "co-1", 1, 60), 1);
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "pay-1", 0)), "deferred");
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "co-1", 0)), "applied");
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "pay-1", 1)), "applied");
    ck_assert_int_eq(x_wait_key(&k, "prod-1", 1, 60), 1);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM orders WHERE"
                                     " status = 'paid'"),
                     1);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM"
                                     " deferred_commands"),
                     0);
    ck_assert_int_eq(itest_int(k.db, "SELECT stock FROM products"), 8);
    /* every session on this database, the worker's included, is the
     * runtime role */
    ck_assert_int_gt(itest_int(k.db, "SELECT count(*) FROM pg_stat_activity"
                                     " WHERE datname = current_database()"
                                     " AND application_name LIKE"
                                     " 'orderd-%'"),
                     0);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM pg_stat_activity"
                                     " WHERE datname = current_database()"
                                     " AND usename <> current_user"),
                     0);
    ck_assert_int_eq(ktest_wait_sql(&k,
                                    "SELECT count(*) FROM outbox WHERE"
                                    " published_at IS NULL",
                                    0, 60),
                     0);
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    itest_assert_stock_matches_ledger(k.db);

    /* the operator commands that read work too; migrating is the
     * owner's (ORDERD_MIGRATE_PG), and refused to the runtime role */
    ck_assert_msg(ktest_cli(&k, check, &out) == 0, "orderd check: %s", out);
    free(out);
    ck_assert_msg(ktest_cli(&k, migrate, &out) == 0, "orderd migrate: %s", out);
    ck_assert_ptr_nonnull(strstr(out, "migrations applied: 0"));
    free(out);
    ck_assert_int_eq(ktest_cli(&k, migrate_as_runtime, NULL), 1);
}
END_TEST

/* Waits up to timeout_s for a line with needle in file; returns the count. */
static int
wait_log_line(const char *file, const char *needle, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;
    int n;

    while ((n = x_count_lines(file, needle)) == 0 && od_mono_us() < end) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        nanosleep(&ts, NULL); /* polling a log file, bounded */
    }
    return n;
}

START_TEST(test_worker_as_owner_is_warned)
{
    const char *warning = "connected to postgres as a superuser or the "
                          "schema owner";
    char runtime_log[128], owner_log[128], runtime[1024];
    pid_t w;

    snprintf(runtime_log, sizeof(runtime_log), "/tmp/it_0610_%d_runtime.log",
             (int)getpid());
    snprintf(owner_log, sizeof(owner_log), "/tmp/it_0610_%d_owner.log",
             (int)getpid());
    /* as the runtime role: ready, and no warning */
    w = x_worker_logged(&k, NULL, runtime_log);
    ck_assert_int_gt(ktest_wait_sql(&k,
                                    "SELECT count(*) FROM pg_stat_activity"
                                    " WHERE datname = current_database()"
                                    " AND application_name ="
                                    " 'orderd-publisher'",
                                    1, 60),
                     0);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    ck_assert_int_eq(x_count_lines(runtime_log, warning), 0);
    /* as the owner: it works, and says so */
    snprintf(runtime, sizeof(runtime), "%s", k.conninfo);
    snprintf(k.conninfo, sizeof(k.conninfo), "%s", k.owner_conninfo);
    w = x_worker_logged(&k, NULL, owner_log);
    snprintf(k.conninfo, sizeof(k.conninfo), "%s", runtime);
    ck_assert_int_eq(wait_log_line(owner_log, warning, 60), 1);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    unlink(runtime_log);
    unlink(owner_log);
}
END_TEST

/* Connects with conninfo plus extra; it must be refused for a password. */
static void
expect_refused(const char *conninfo, const char *extra)
{
    char info[1200], err[512];
    db_t *db;

    snprintf(info, sizeof(info), "%s %s", conninfo, extra);
    db = db_connect(info, err, sizeof(err));
    if (db != NULL)
        db_destroy(db);
    ck_assert_msg(db == NULL, "connected with '%s'", extra);
    ck_assert_msg(strstr(err, "password") != NULL,
                  "refused, but not for the password: %s", err);
}

START_TEST(test_a_wrong_or_missing_password_is_refused)
{
    /* a password given in the string wins over the passfile */
    expect_refused(k.conninfo, "password=not-the-password");
    expect_refused(k.owner_conninfo, "password=not-the-password");
    /* no password at all: no trust authentication to fall back on, not
     * for the superuser either */
    expect_refused(k.conninfo, "passfile=/nonexistent/pgpass");
    expect_refused(k.owner_conninfo, "passfile=/nonexistent/pgpass");
    expect_refused(k.conninfo, "user=postgres passfile=/nonexistent/pgpass");
    /* the right one, from the passfile, gets in */
    ck_assert_int_eq(itest_int(k.db, "SELECT 1"), 1);
}
END_TEST

static Suite *
runtime_role_suite(void)
{
    Suite *s = suite_create("runtime_role");
    TCase *tc = tcase_create("runtime_role");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_runtime_role_has_no_power_over_the_schema);
    tcase_add_test(tc, test_apply_and_worker_run_as_the_runtime_role);
    tcase_add_test(tc, test_worker_as_owner_is_warned);
    tcase_add_test(tc, test_a_wrong_or_missing_password_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(runtime_role_suite());
}
