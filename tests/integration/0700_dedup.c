/* 0700_dedup: the dedup row where it matters, i.e. where a second apply
 * would not refuse itself: a redelivered stock_adjust changes stock once
 * and says duplicate; a reused key on a checkout is dedup_key_reused and
 * takes no stock, writes no order, ledger or history, even when the first
 * use was refused; two connections applying one command at once change
 * nothing twice (one applied, one duplicate); and through the real worker,
 * one adjustment delivered three times on two partitions moves stock once
 * with exactly three results.
 *
 * DESIGN: every other duplicate in the suite is a checkout, which a second
 * apply refuses by itself (order_exists): those tests would pass with no
 * dedup row at all. A stock adjustment and a checkout of another order
 * under a used key have effects a second time; only the dedup row stops
 * them. */
#include <pthread.h>
#include <signal.h>

#include "catalogue_fixture.h"
#include "ktest.h"

#define OA "00000000-0000-4000-8700-00000000000a"
#define OB "00000000-0000-4000-8700-00000000000b"

static db_t *db;
static char conninfo[1024];

static void
setup(void)
{
    db = itest_fresh_db("dedup", conninfo, sizeof(conninfo));
    fx_expect(fx_simple(db, 1, "v1", 300, 10, -1), "applied", NULL);
}

static void
teardown(void)
{
    db_destroy(db);
}

static const char *const adjust =
    "{\"dedup_key\":\"adj-1\",\"type\":\"stock_adjust\","
    "\"actor\":{\"role\":\"admin\",\"id\":\"root\"},"
    "\"product_id\":1,\"delta\":5,\"reason\":\"recount\"}";

static const char *
detail(const json_t *ev, const char *name)
{
    const char *s = json_string_value(
        json_object_get(json_object_get(ev, "details"), name));

    return s ? s : "";
}

/* the rows a command with effects would add: ledger, orders, items,
 * history, and the stock of product 1 */
typedef struct effects {
    int64_t ledger, orders, items, history, stock;
} effects_t;

static effects_t
effects_now(void)
{
    effects_t e = {
        itest_int(db, "SELECT count(*) FROM stock_ledger"),
        itest_int(db, "SELECT count(*) FROM orders"),
        itest_int(db, "SELECT count(*) FROM order_items"),
        itest_int(db, "SELECT count(*) FROM order_status_history"),
        itest_int(db, "SELECT stock FROM products WHERE id = 1"),
    };

    return e;
}

static void
assert_effects(effects_t want)
{
    effects_t got = effects_now();

    ck_assert_int_eq(got.ledger, want.ledger);
    ck_assert_int_eq(got.orders, want.orders);
    ck_assert_int_eq(got.items, want.items);
    ck_assert_int_eq(got.history, want.history);
    ck_assert_int_eq(got.stock, want.stock);
}

static json_t *
checkout(const char *key, const char *order_id, int qty)
{
    return itest_applyf(db,
                        "{\"dedup_key\":\"%s\",\"type\":\"checkout\","
                        "\"actor\":{\"role\":\"customer\",\"id\":\"c1\"},"
                        "\"order_id\":\"%s\",\"customer_id\":\"c1\","
                        "\"currency\":\"EUR\",\"items\":[{\"product_id\":1,"
                        "\"quantity\":%d}]}",
                        key, order_id, qty);
}

START_TEST(test_redelivered_stock_adjust_changes_stock_once)
{
    json_t *first, *again;
    effects_t before;

    first = itest_apply(db, adjust);
    ck_assert_str_eq(itest_outcome(first), "applied");
    before = effects_now();
    ck_assert_int_eq(before.stock, 15);
    /* the same message read again at another offset, twice */
    for (int i = 0; i < 2; i++) {
        again = itest_apply(db, adjust);
        ck_assert_str_eq(itest_outcome(again), "duplicate");
        ck_assert_str_eq(detail(again, "original_outcome"), "applied");
        ck_assert_str_eq(detail(again, "original_event_id"),
                         json_string_value(json_object_get(first, "event_id")));
        ck_assert_str_ne(json_string_value(json_object_get(again, "event_id")),
                         json_string_value(json_object_get(first, "event_id")));
        json_decref(again);
        assert_effects(before);
    }
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger"
                                   " WHERE reason = 'adjust'"),
                     1);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM processed_commands"
                                   " WHERE dedup_key = 'adj-1'"),
                     1);
    json_decref(first);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_reused_key_on_checkout_takes_nothing)
{
    json_t *ev;
    effects_t before;

    fx_expect(checkout("co-k", OA, 2), "applied", NULL);
    before = effects_now();
    ck_assert_int_eq(before.stock, 8);
    /* the same key, another order: a checkout that would succeed */
    ev = checkout("co-k", OB, 3);
    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "dedup_key_reused");
    json_decref(ev);
    assert_effects(before);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM orders"
                                   " WHERE id = '" OB "'"),
                     0);
    /* the key's first body still answers duplicate */
    fx_expect(checkout("co-k", OA, 2), "duplicate", NULL);
    assert_effects(before);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

/* A refused first use still owns its key: once stock is there, neither
 * the redelivery nor another body under the key takes it. */
START_TEST(test_key_of_a_refused_checkout_stays_refused)
{
    json_t *ev;
    effects_t before;

    fx_expect(checkout("co-r", OA, 50), "rejected", "insufficient_stock");
    fx_expect(fx_cmd(db, "stock_adjust", "admin", "root",
                     "\"product_id\":1,\"delta\":100,\"reason\":\"delivery\""),
              "applied", NULL);
    before = effects_now();
    ck_assert_int_eq(before.stock, 110);
    ev = checkout("co-r", OA, 50);
    ck_assert_str_eq(itest_outcome(ev), "duplicate");
    ck_assert_str_eq(detail(ev, "original_outcome"), "rejected");
    ck_assert_str_eq(detail(ev, "original_reason"), "insufficient_stock");
    json_decref(ev);
    assert_effects(before);
    fx_expect(checkout("co-r", OB, 1), "rejected", "dedup_key_reused");
    assert_effects(before);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM orders"), 0);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

/* A redelivered stock_adjust whose first use was refused for stock
 * (below zero) stays refused after stock arrives. */
START_TEST(test_redelivered_refused_adjust_stays_refused)
{
    const char *take = "{\"dedup_key\":\"adj-neg\",\"type\":\"stock_adjust\","
                       "\"actor\":{\"role\":\"admin\",\"id\":\"root\"},"
                       "\"product_id\":1,\"delta\":-20,\"reason\":\"loss\"}";
    json_t *ev = itest_apply(db, take);
    effects_t before;

    ck_assert_str_eq(itest_outcome(ev), "rejected");
    json_decref(ev);
    fx_expect(fx_cmd(db, "stock_adjust", "admin", "root",
                     "\"product_id\":1,\"delta\":30,\"reason\":\"delivery\""),
              "applied", NULL);
    before = effects_now();
    ck_assert_int_eq(before.stock, 40);
    ev = itest_apply(db, take);
    ck_assert_str_eq(itest_outcome(ev), "duplicate");
    ck_assert_str_eq(detail(ev, "original_outcome"), "rejected");
    json_decref(ev);
    assert_effects(before);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

/* --- two connections, one command ------------------------------------ */

typedef struct racer {
    const char *cmd;
    json_t *ev;
} racer_t;

static void *
late_apply(void *arg)
{
    racer_t *r = arg;
    char err[512];
    db_t *conn = db_connect(conninfo, err, sizeof(err));

    ck_assert_msg(conn != NULL, "%s", err);
    r->ev = itest_apply(conn, r->cmd);
    db_destroy(conn);
    return NULL;
}

/*
 * Connection A applies cmd and holds its transaction open; connection B
 * applies the same command and must wait for A (a lock wait seen in
 * pg_stat_activity), then A commits. Returns B's result (caller decrefs);
 * A's outcome must be applied.
 */
static json_t *
race(const char *cmd)
{
    char err[512];
    apply_source_t src = {
        &itest_source, "orders.commands", 0, 100000, od_now_us(), "1", 1, NULL};
    apply_report_t rep;
    db_t *a = db_connect(conninfo, err, sizeof(err));
    racer_t b = {cmd, NULL};
    pthread_t tid;
    int64_t end = od_mono_us() + 30 * 1000000LL;

    ck_assert_msg(a != NULL, "%s", err);
    ck_assert_int_eq(db_exec(a, "BEGIN", err, sizeof(err)), OD_OK);
    ck_assert_int_eq(apply_message(a, &itest_cfg, cmd, strlen(cmd), &src, &rep,
                                   err, sizeof(err)),
                     OD_OK);
    ck_assert_int_eq(rep.outcome, OUTCOME_APPLIED);
    ck_assert_int_eq(pthread_create(&tid, NULL, late_apply, &b), 0);
    while (itest_int(db, "SELECT count(*) FROM pg_stat_activity WHERE"
                         " datname = current_database() AND"
                         " wait_event_type = 'Lock'") == 0) {
        struct timespec ts = {0, 10 * 1000 * 1000};

        ck_assert_msg(od_mono_us() < end, "the second apply never waited");
        nanosleep(&ts, NULL); /* polling interval */
    }
    ck_assert_int_eq(db_exec(a, "COMMIT", err, sizeof(err)), OD_OK);
    pthread_join(tid, NULL);
    db_destroy(a);
    ck_assert_ptr_nonnull(b.ev);
    return b.ev;
}

static int64_t
results_for(const char *key)
{
    return fx_int(db,
                  "SELECT count(*) FROM outbox WHERE"
                  " convert_from(payload, 'UTF8')::jsonb->>'type' ="
                  " 'command.result' AND dedup_key = '%s'",
                  key);
}

START_TEST(test_racing_adjusts_apply_once)
{
    json_t *ev = race(adjust);

    ck_assert_str_eq(itest_outcome(ev), "duplicate");
    ck_assert_str_eq(detail(ev, "original_outcome"), "applied");
    json_decref(ev);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 1"),
                     15);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger"
                                   " WHERE reason = 'adjust'"),
                     1);
    ck_assert_int_eq(results_for("adj-1"), 2);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM outbox WHERE"
                                   " dedup_key = 'adj-1' AND"
                                   " convert_from(payload, 'UTF8')::jsonb"
                                   "->>'outcome' = 'applied'"),
                     1);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_racing_checkouts_of_one_key_apply_once)
{
    const char *cmd = "{\"dedup_key\":\"co-race\",\"type\":\"checkout\","
                      "\"actor\":{\"role\":\"customer\",\"id\":\"c1\"},"
                      "\"order_id\":\"" OA "\",\"customer_id\":\"c1\","
                      "\"currency\":\"EUR\",\"items\":[{\"product_id\":1,"
                      "\"quantity\":4}]}";
    json_t *ev = race(cmd);

    ck_assert_str_eq(itest_outcome(ev), "duplicate");
    ck_assert_str_eq(detail(ev, "original_outcome"), "applied");
    json_decref(ev);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 1"),
                     6);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM orders"), 1);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger"
                                   " WHERE reason = 'order'"),
                     1);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM"
                                   " order_status_history"),
                     1);
    ck_assert_int_eq(results_for("co-race"), 2);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

/* --- through Kafka and the worker ------------------------------------- */

static ktest_t k;

static void
ksetup(void)
{
    ktest_setup(&k, "dedup_kafka", 2);
}

static void
kteardown(void)
{
    ktest_teardown(&k);
}

/* One adjustment delivered three times: twice on partition 0 (a
 * redelivery), once on partition 1 (a producer that re-sent it with
 * another key), applied by two executors at once. Stock moves once, and
 * the events topic holds exactly three results for it. */
START_TEST(test_adjust_on_two_partitions_applies_once)
{
    const char *product =
        "{\"dedup_key\":\"p1\",\"type\":\"product_upsert\","
        "\"actor\":{\"role\":\"admin\",\"id\":\"root\"},\"product_id\":1,"
        "\"vendor_id\":\"v1\",\"name\":\"P1\",\"sku\":\"SKU-1\","
        "\"currency\":\"EUR\",\"kind\":\"simple\",\"price_cents\":300,"
        "\"stock\":10}";
    pid_t w;
    int applied = 0, dups = 0;

    ktest_send_partition(&k, 0, "1", product);
    ktest_flush(&k);
    w = ktest_worker_start(&k, NULL);
    ck_assert_int_eq(ktest_wait_results(&k, 1, 60), 1);
    ktest_send_partition(&k, 0, "1", adjust);
    ktest_send_partition(&k, 1, "other", adjust);
    ktest_send_partition(&k, 0, "1", adjust);
    ktest_flush(&k);
    ck_assert_int_eq(ktest_wait_sql(&k,
                                    "SELECT COALESCE(sum(next_offset), 0)"
                                    " FROM consumer_offsets",
                                    4, 60),
                     4);
    ck_assert_int_eq(ktest_wait_sql(&k,
                                    "SELECT count(*) FROM outbox WHERE"
                                    " published_at IS NULL",
                                    0, 60),
                     0);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    ck_assert_int_eq(ktest_wait_results_exactly(&k, 4, 60), 4);
    ck_assert_int_eq(ktest_count_results(&k, "adj-1"), 3);
    for (int i = 0; i < 3; i++) {
        const char *o = itest_outcome(ktest_result(&k, "adj-1", i));

        applied += strcmp(o, "applied") == 0;
        dups += strcmp(o, "duplicate") == 0;
    }
    ck_assert_int_eq(applied, 1);
    ck_assert_int_eq(dups, 2);
    ck_assert_int_eq(itest_int(k.db, "SELECT stock FROM products WHERE id = 1"),
                     15);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM stock_ledger"
                                     " WHERE reason = 'adjust'"),
                     1);
    itest_assert_stock_matches_ledger(k.db);
}
END_TEST

static Suite *
dedup_suite(void)
{
    Suite *s = suite_create("dedup");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"adjust_redelivered",
         test_redelivered_stock_adjust_changes_stock_once},
        {"checkout_key_reused", test_reused_key_on_checkout_takes_nothing},
        {"refused_key", test_key_of_a_refused_checkout_stays_refused},
        {"refused_adjust", test_redelivered_refused_adjust_stays_refused},
        {"race_adjust", test_racing_adjusts_apply_once},
        {"race_checkout", test_racing_checkouts_of_one_key_apply_once},
    };
    TCase *tc;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, cases[i].fn);
        suite_add_tcase(s, tc);
    }
    tc = tcase_create("kafka");
    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, ksetup, kteardown);
    tcase_add_test(tc, test_adjust_on_two_partitions_applies_once);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(dedup_suite());
}
