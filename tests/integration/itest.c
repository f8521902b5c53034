/* itest.c - integration test harness
 *
 * DESIGN: two roles, as in production (docs/operations.md). Databases are
 * created and migrated as the schema owner (ORDERD_TEST_MIGRATE_PG); what
 * a test gets back, and every worker it starts, is the runtime role
 * (ORDERD_TEST_PG), so the whole suite shows that the runtime grants are
 * enough. Fixtures that need the owner ask for itest_owner_db(). */
#include "itest.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../worker/migrate.h"

apply_config_t itest_cfg = {
    .domain = {.default_tax_bps = 0,
               .pending_ttl_s = 900,
               .expiry_grace_s = 0,
               .order_prefix = "ORD-",
               .events_topic = "orders.events"},
    .dlq_topic = "orders.commands.dlq",
    /* the scenarios date their commands freely (issued_at years away from
     * the apply time); tests of the event-time bounds narrow these */
    .max_clock_skew_us = 100LL * 365 * 86400 * 1000000,
    .max_event_age_us = 100LL * 365 * 86400 * 1000000,
};

const od_source_t itest_source = {SOURCE_DEFAULT, "orders.commands", ROLE_ALL};

static int64_t itest_offset;

static const char *
env_set(const char *name)
{
    const char *s = getenv(name);

    return s != NULL && *s != '\0' ? s : NULL;
}

/* The runtime role's connection string (to an existing database). */
static const char *
base_conninfo(void)
{
    const char *s = env_set("ORDERD_TEST_PG");

    if (s == NULL)
        s = env_set("ORDERD_PG");
    if (s == NULL)
        ck_abort_msg("ORDERD_TEST_PG is not set: run the integration tests "
                     "through scripts/test");
    return s;
}

/* The owner's, from the same family of variables as base_conninfo (a
 * single-role setup without one uses the runtime string for both). */
static const char *
owner_base_conninfo(void)
{
    const char *s;

    if (env_set("ORDERD_TEST_PG") != NULL)
        s = env_set("ORDERD_TEST_MIGRATE_PG");
    else
        s = env_set("ORDERD_MIGRATE_PG");
    return s != NULL ? s : base_conninfo();
}

const char *
itest_owner_conninfo(const char *name, char *buf, size_t len)
{
    /* the last dbname= wins in a libpq string */
    int n = snprintf(buf, len, "%s dbname=it_%s", owner_base_conninfo(), name);

    ck_assert_msg(n > 0 && (size_t)n < len, "connection string too long");
    return buf;
}

db_t *
itest_owner_db(const char *name)
{
    char err[512], info[1024];
    db_t *db;

    db = db_connect(itest_owner_conninfo(name, info, sizeof(info)), err,
                    sizeof(err));
    ck_assert_msg(db != NULL, "%s", err);
    return db;
}

void
itest_owner_exec(const char *name, const char *sql)
{
    db_t *db = itest_owner_db(name);

    itest_exec(db, sql);
    db_destroy(db);
}

db_t *
itest_fresh_db(const char *name, char *conninfo, size_t len)
{
    char err[512], sql[256], info[1024];
    db_t *admin, *db;
    od_status_t st;

    admin = db_connect(owner_base_conninfo(), err, sizeof(err));
    ck_assert_msg(admin != NULL, "%s", err);
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS it_%s WITH (FORCE)",
             name);
    st = db_exec(admin, sql, err, sizeof(err));
    ck_assert_msg(st == OD_OK, "%s", err);
    snprintf(sql, sizeof(sql), "CREATE DATABASE it_%s", name);
    st = db_exec(admin, sql, err, sizeof(err));
    ck_assert_msg(st == OD_OK, "%s", err);
    db_destroy(admin);

    db = itest_owner_db(name);
    st = migrate_run(db, ORDERD_SCHEMA_DIR, NULL, err, sizeof(err));
    ck_assert_msg(st == OD_OK, "%s", err);
    db_destroy(db);

    snprintf(info, sizeof(info), "%s dbname=it_%s", base_conninfo(), name);
    db = db_connect(info, err, sizeof(err));
    ck_assert_msg(db != NULL, "%s", err);
    if (conninfo != NULL)
        snprintf(conninfo, len, "%s", info);
    return db;
}

json_t *
itest_apply(db_t *db, const char *json_cmd)
{
    return itest_apply_from(db, &itest_source, json_cmd);
}

void
itest_log_event(const char *payload, size_t len)
{
    const char *dir = getenv("ORDERD_TEST_EVENTS_DIR");
    const char *name = getenv("ORDERD_TEST_NAME");
    char path[512], *line;
    int fd;

    if (dir == NULL || *dir == '\0')
        return;
    snprintf(path, sizeof(path), "%s/%s.%ld.jsonl", dir,
             name ? name : "unnamed", (long)getpid());
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ck_assert_msg(fd >= 0, "could not open %s", path);
    /* one write per line: tests that read events from two threads do
     * not interleave them */
    line = malloc(len + 1);
    ck_assert_ptr_nonnull(line);
    memcpy(line, payload, len);
    line[len] = '\n';
    ck_assert_int_eq(write(fd, line, len + 1), (ssize_t)(len + 1));
    free(line);
    close(fd);
}

json_t *
itest_apply_from(db_t *db, const od_source_t *source, const char *json_cmd)
{
    apply_source_t src = {source,      source->topic, 0, itest_offset++,
                          od_now_us(), "1",           1};
    apply_report_t rep;
    char err[1024], sql[200];
    db_rows_t *rows = NULL;
    const char *params[1];
    json_t *ev;
    od_status_t st;

    st = db_exec(db, "BEGIN", err, sizeof(err));
    ck_assert_msg(st == OD_OK, "%s", err);
    st = apply_message(db, &itest_cfg, json_cmd, strlen(json_cmd), &src, &rep,
                       err, sizeof(err));
    ck_assert_msg(st == OD_OK, "apply_message: %s (command %s)", err, json_cmd);
    st = db_exec(db, "COMMIT", err, sizeof(err));
    ck_assert_msg(st == OD_OK, "%s", err);
    if (rep.event_id[0] == '\0')
        return NULL;
    snprintf(sql, sizeof(sql),
             "SELECT convert_from(payload, 'UTF8') FROM outbox"
             " WHERE event_id = $1");
    params[0] = rep.event_id;
    st = db_query(db, sql, 1, params, &rows, err, sizeof(err));
    ck_assert_msg(st == OD_OK && db_nrows(rows) == 1, "result event: %s", err);
    itest_log_event(db_val(rows, 0, 0), strlen(db_val(rows, 0, 0)));
    ev = json_loads(db_val(rows, 0, 0), 0, NULL);
    db_rows_free(rows);
    ck_assert_ptr_nonnull(ev);
    return ev;
}

json_t *
itest_applyf(db_t *db, const char *fmt, ...)
{
    char buf[65536];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return itest_apply(db, buf);
}

const char *
itest_outcome(const json_t *ev)
{
    const char *s = json_string_value(json_object_get(ev, "outcome"));

    return s ? s : "";
}

const char *
itest_reason(const json_t *ev)
{
    const char *s = json_string_value(json_object_get(ev, "reason"));

    return s ? s : "";
}

int64_t
itest_int(db_t *db, const char *sql)
{
    char err[512];
    db_rows_t *rows = NULL;
    int64_t v = -1;
    od_status_t st = db_query(db, sql, 0, NULL, &rows, err, sizeof(err));

    ck_assert_msg(st == OD_OK, "%s: %s", sql, err);
    if (db_nrows(rows) > 0 && !db_isnull(rows, 0, 0))
        v = db_int64(rows, 0, 0);
    db_rows_free(rows);
    return v;
}

const char *
itest_text(db_t *db, const char *sql, char *buf, size_t len)
{
    char err[512];
    db_rows_t *rows = NULL;
    od_status_t st = db_query(db, sql, 0, NULL, &rows, err, sizeof(err));

    ck_assert_msg(st == OD_OK, "%s: %s", sql, err);
    buf[0] = '\0';
    if (db_nrows(rows) > 0)
        snprintf(buf, len, "%s", db_val(rows, 0, 0));
    db_rows_free(rows);
    return buf;
}

void
itest_exec(db_t *db, const char *sql)
{
    char err[512];
    od_status_t st = db_exec(db, sql, err, sizeof(err));

    ck_assert_msg(st == OD_OK, "%s: %s", sql, err);
}

void
itest_assert_stock_matches_ledger(db_t *db)
{
    int64_t bad = itest_int(
        db,
        "SELECT count(*) FROM ("
        " SELECT p.id FROM products p WHERE p.kind = 'simple' AND p.stock <>"
        "  (SELECT COALESCE(sum(delta), 0) FROM stock_ledger l"
        "    WHERE l.product_id = p.id AND l.variant_id IS NULL)"
        " UNION ALL"
        " SELECT v.id FROM product_variants v WHERE v.stock <>"
        "  (SELECT COALESCE(sum(delta), 0) FROM stock_ledger l"
        "    WHERE l.product_id = v.product_id AND l.variant_id = v.id)) x");

    ck_assert_msg(bad == 0,
                  "%lld products or variants whose stock differs "
                  "from their ledger",
                  (long long)bad);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM products WHERE "
                                   "stock < 0"),
                     0);
}

int
itest_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
