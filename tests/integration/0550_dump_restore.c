/* 0550_dump_restore: the recovery drill. A stream is applied through Kafka,
 * the database is dumped (pg_dump -Fc), more commands are applied; then
 * the dump is restored into a fresh database and a worker with the same
 * group and topics is started on it: it resumes from the offsets stored
 * in the dump and applies the later part exactly once. The restored
 * database ends equal to the original (orders, items, stock, ledger,
 * history, dedup outcomes). */
#include "0500_common.h"

#include <signal.h>

#define PARTS 3
#define PRODUCTS 6
#define PRICE 275
#define STOCK                                                                  \
    5000 /* plenty: outcomes never depend on cross-partition order             \
          */
#define PART_A 200
#define PART_B 200
#define PG_BIN "/usr/lib/postgresql/15/bin/"
#define RESTORED_DB "it_dump_restore_restored"

static ktest_t k;
static pid_t worker;
static unsigned int seed = 550;
static int norders, nmsgs;
static int order_product[PART_A + PART_B];
static int order_qty[PART_A + PART_B];
static char dump_file[256], restored[1024], original[1024];
/* the backup and the restore are the owner's work (they carry the DDL and
 * the grants); the workers on both databases run as the runtime role */
static char owner_original[1024], owner_restored[1024];

static int
rnd(int n)
{
    return (int)(rand_r(&seed) % (unsigned int)n);
}

static void
setup(void)
{
    ktest_setup(&k, "dump_restore", PARTS);
    snprintf(original, sizeof(original), "%s", k.conninfo);
    snprintf(owner_original, sizeof(owner_original), "%s", k.owner_conninfo);
    snprintf(dump_file, sizeof(dump_file), "/tmp/it_0550_%d.dump",
             (int)getpid());
    worker = ktest_worker_start(&k, NULL);
}

static void
teardown(void)
{
    if (worker > 0)
        ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    worker = 0;
    unlink(dump_file);
    ktest_teardown(&k);
}

static void
send_keyed(int product, const char *msg)
{
    char key[16];

    snprintf(key, sizeof(key), "%d", product);
    ktest_send(&k, key, msg);
    nmsgs++;
}

/* n messages: checkouts, pays, cancels, ship paths, refusals */
static void
generate(int n)
{
    char msg[1024], key[32], id[37];
    int end = nmsgs + n;

    while (nmsgs < end) {
        int r = rnd(100);

        if (r < 45 || norders == 0) {
            int o = norders++;

            order_product[o] = 1 + rnd(PRODUCTS);
            order_qty[o] = 1 + rnd(5);
            x_uuid(550, o, id);
            snprintf(key, sizeof(key), "co-%d", o);
            x_checkout_json(msg, sizeof(msg), key, id, order_product[o],
                            order_qty[o], 0, 0);
            send_keyed(order_product[o], msg);
        } else if (r < 75) {
            int o = rnd(norders);

            x_uuid(550, o, id);
            snprintf(key, sizeof(key), "pay-%d", nmsgs);
            x_pay_json(msg, sizeof(msg), key, id, (int64_t)PRICE * order_qty[o],
                       0);
            send_keyed(order_product[o], msg);
        } else if (r < 88) {
            int o = rnd(norders);

            x_uuid(550, o, id);
            snprintf(msg, sizeof(msg),
                     "{\"dedup_key\":\"cancel-%d\",\"type\":\"cancel\","
                     "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},"
                     "\"order_id\":\"%s\"}",
                     nmsgs, id);
            send_keyed(order_product[o], msg);
        } else {
            int o = rnd(norders);

            x_uuid(550, o, id);
            snprintf(msg, sizeof(msg),
                     "{\"dedup_key\":\"sp-%d\",\"type\":\"start_processing\","
                     "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},"
                     "\"order_id\":\"%s\"}",
                     nmsgs, id);
            send_keyed(order_product[o], msg);
        }
    }
    ktest_flush(&k);
}

static void
wait_applied(int64_t total)
{
    ck_assert_int_eq(x_waitf(&k, total, 120,
                             "SELECT COALESCE(sum(next_offset), 0) FROM"
                             " consumer_offsets WHERE grp = '%s'",
                             k.group),
                     total);
    ck_assert_int_eq(x_waitf(&k, 0, 60,
                             "SELECT count(*) FROM outbox"
                             " WHERE published_at IS NULL"),
                     0);
}

START_TEST(test_restored_database_catches_up_exactly_once)
{
    char f_orig[64], f_rest[64], buf[512], off_dump[256], off[256];
    char stocks[512];
    const char *dump[] = {PG_BIN "pg_dump", "-Fc", "-f", dump_file, "-d",
                          owner_original,   NULL};
    const char *restore[] = {PG_BIN "pg_restore", "--no-owner", "-d",
                             owner_restored,      dump_file,    NULL};
    const char *check[] = {"check", NULL};
    char *out = NULL;
    db_t *rdb;
    char err[512];
    int64_t total_a, results_orig;

    for (int p = 1; p <= PRODUCTS; p++) {
        x_product_json(buf, sizeof(buf), p, PRICE, STOCK);
        send_keyed(p, buf);
    }
    generate(PART_A);
    total_a = nmsgs;
    wait_applied(total_a);

    /* the backup, taken while the worker runs */
    x_offsets(&k, off_dump, sizeof(off_dump));
    ck_assert_int_eq(x_run(dump), 0);

    /* life goes on after the backup */
    generate(PART_B);
    wait_applied(nmsgs);
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    worker = 0;
    x_fingerprint(k.db, f_orig, sizeof(f_orig));
    x_textf(k.db, stocks, sizeof(stocks),
            "SELECT string_agg(id || ':' || stock, ',' ORDER BY id)"
            " FROM products");
    results_orig = x_outbox_events(&k, "command.result", NULL);
    ck_assert_int_gt(x_intf(k.db, "SELECT count(*) FROM orders WHERE"
                                  " status = 'paid'"),
                     10);
    ck_assert_int_gt(x_intf(k.db, "SELECT count(*) FROM orders WHERE"
                                  " status = 'cancelled'"),
                     5);

    /* the disaster: restore into a fresh database */
    itest_owner_exec("dump_restore",
                     "DROP DATABASE IF EXISTS " RESTORED_DB " WITH (FORCE)");
    itest_owner_exec("dump_restore", "CREATE DATABASE " RESTORED_DB);
    /* the last dbname= wins in a libpq string */
    ck_assert_int_lt(snprintf(restored, sizeof(restored),
                              "%s dbname=" RESTORED_DB, original),
                     (int)sizeof(restored));
    ck_assert_int_lt(snprintf(owner_restored, sizeof(owner_restored),
                              "%s dbname=" RESTORED_DB, owner_original),
                     (int)sizeof(owner_restored));
    ck_assert_int_eq(x_run(restore), 0);
    rdb = db_connect(restored, err, sizeof(err));
    ck_assert_msg(rdb != NULL, "%s", err);
    /* the restored offsets are those of the backup */
    ck_assert_str_eq(x_textf(rdb, off, sizeof(off),
                             "SELECT COALESCE(string_agg(partition || ':' ||"
                             " next_offset, ',' ORDER BY partition), '')"
                             " FROM consumer_offsets WHERE grp = '%s'",
                             k.group),
                     off_dump);
    ck_assert_int_eq(x_intf(rdb,
                            "SELECT sum(next_offset) FROM"
                            " consumer_offsets WHERE grp = '%s'",
                            k.group),
                     total_a);

    /* a worker with the same group and topics on the restored database */
    snprintf(k.conninfo, sizeof(k.conninfo), "%s", restored);
    worker = ktest_worker_start(&k, NULL);
    snprintf(k.conninfo, sizeof(k.conninfo), "%s", original);
    {
        db_t *orig_db = k.db;

        k.db = rdb; /* wait on the restored database */
        wait_applied(nmsgs);
        k.db = orig_db;
    }
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    worker = 0;

    ck_assert_str_eq(x_fingerprint(rdb, f_rest, sizeof(f_rest)), f_orig);
    ck_assert_str_eq(x_textf(rdb, buf, sizeof(buf),
                             "SELECT string_agg(id || ':' || stock, ','"
                             " ORDER BY id) FROM products"),
                     stocks);
    itest_assert_stock_matches_ledger(rdb);
    /* each command of the later part was applied once more, not twice:
     * one result per message, as in the original */
    ck_assert_int_eq(x_intf(rdb,
                            "SELECT count(*) FROM outbox WHERE topic = '%s'"
                            " AND convert_from(payload, 'UTF8')::jsonb->>"
                            "'type' = 'command.result'",
                            k.events),
                     results_orig);
    ck_assert_int_eq(x_intf(rdb, "SELECT count(*) FROM orders"),
                     x_intf(k.db, "SELECT count(*) FROM orders"));
    /* human order numbers stay unique and contiguous */
    ck_assert_int_eq(x_intf(rdb, "SELECT count(DISTINCT number) FROM orders"),
                     x_intf(k.db, "SELECT count(*) FROM orders"));
    ck_assert_int_eq(x_intf(rdb, "SELECT max(substr(number, 5)::int)"
                                 " FROM orders"),
                     x_intf(k.db, "SELECT max(substr(number, 5)::int)"
                                  " FROM orders"));
    /* orderd check on the restored database */
    snprintf(k.conninfo, sizeof(k.conninfo), "%s", restored);
    ck_assert_msg(ktest_cli(&k, check, &out) == 0, "orderd check: %s", out);
    snprintf(k.conninfo, sizeof(k.conninfo), "%s", original);
    free(out);
    db_destroy(rdb);
}
END_TEST

static Suite *
dump_restore_suite(void)
{
    Suite *s = suite_create("dump_restore");
    TCase *tc = tcase_create("drill");

    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_restored_database_catches_up_exactly_once);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(dump_restore_suite());
}
