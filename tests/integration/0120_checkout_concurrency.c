/* 0120_checkout_concurrency: checkouts racing on real connections: the
 * last units are never oversold, and checkouts naming the same products
 * in opposite orders never deadlock, and one order id makes one order */
#include <pthread.h>

#include "catalogue_fixture.h"

#define RACE_THREADS 4
#define RACE_CHECKOUTS 50
#define CROSS_ROUNDS 200

static db_t *db;
static char conninfo[1024];

static pthread_barrier_t start_line;
static int n_applied, n_short, n_exists, n_other;

typedef struct worker {
    int index;
    int nthreads;
    int count;         /* checkouts of this thread */
    const char *items; /* the checkout's items */
    int shared_ids;    /* every thread uses the same order ids */
} worker_t;

static void
setup(void)
{
    db = itest_fresh_db("checkout_concurrency", conninfo, sizeof(conninfo));
    n_applied = n_short = n_exists = n_other = 0;
}

static void
teardown(void)
{
    db_destroy(db);
}

static void
count_outcome(json_t *ev)
{
    if (strcmp(itest_outcome(ev), "applied") == 0)
        __atomic_add_fetch(&n_applied, 1, __ATOMIC_SEQ_CST);
    else if (strcmp(itest_reason(ev), "insufficient_stock") == 0)
        __atomic_add_fetch(&n_short, 1, __ATOMIC_SEQ_CST);
    else if (strcmp(itest_reason(ev), "order_exists") == 0)
        __atomic_add_fetch(&n_exists, 1, __ATOMIC_SEQ_CST);
    else
        __atomic_add_fetch(&n_other, 1, __ATOMIC_SEQ_CST);
    json_decref(ev);
}

/* Each thread owns its connection: itest_apply runs one transaction on
 * it, and fails the test on any error (a deadlock included). */
static void *
worker_main(void *arg)
{
    const worker_t *w = arg;
    char err[512], oid[40];
    db_t *conn = db_connect(conninfo, err, sizeof(err));
    int i;

    ck_assert_msg(conn != NULL, "%s", err);
    pthread_barrier_wait(&start_line);
    for (i = 0; i < w->count; i++) {
        snprintf(oid, sizeof(oid), "00000000-0000-4000-8%03d-%012d",
                 w->shared_ids ? 0 : w->index, i);
        count_outcome(fx_checkout(conn, oid, NULL, w->items));
    }
    db_destroy(conn);
    return NULL;
}

static void
run_workers(worker_t *w, int n)
{
    pthread_t tid[RACE_THREADS];
    int i;

    ck_assert_int_le(n, RACE_THREADS);
    pthread_barrier_init(&start_line, NULL, (unsigned)n);
    for (i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
    for (i = 0; i < n; i++)
        pthread_join(tid[i], NULL);
    pthread_barrier_destroy(&start_line);
}

START_TEST(test_last_units_are_never_oversold)
{
    worker_t w[RACE_THREADS];
    int i;

    fx_expect(fx_simple(db, 1, "vA", 100, 5, -1), "applied", NULL);
    for (i = 0; i < RACE_THREADS; i++) {
        w[i].index = i;
        w[i].nthreads = RACE_THREADS;
        /* 50 checkouts shared out: 13, 13, 12, 12 */
        w[i].count =
            RACE_CHECKOUTS / RACE_THREADS + (i < RACE_CHECKOUTS % RACE_THREADS);
        w[i].items = "[{\"product_id\":1,\"quantity\":1}]";
        w[i].shared_ids = 0;
    }
    run_workers(w, RACE_THREADS);
    ck_assert_int_eq(n_applied, 5);
    ck_assert_int_eq(n_short, RACE_CHECKOUTS - 5);
    ck_assert_int_eq(n_other, 0);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 1"),
                     0);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM orders"), 5);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger WHERE"
                                   " reason = 'order'"),
                     5);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM processed_commands"
                                   " WHERE command_type = 'checkout'"),
                     RACE_CHECKOUTS);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_opposite_orders_never_deadlock)
{
    worker_t w[2] = {
        {0, 2, CROSS_ROUNDS,
         "[{\"product_id\":1,\"quantity\":1},{\"product_id\":2,"
         "\"quantity\":1}]",
         0},
        {1, 2, CROSS_ROUNDS,
         "[{\"product_id\":2,\"quantity\":1},{\"product_id\":1,"
         "\"quantity\":1}]",
         0},
    };

    /* 300 units for 400 checkouts: both outcomes happen under contention */
    fx_expect(fx_simple(db, 1, "vA", 100, 300, -1), "applied", NULL);
    fx_expect(fx_simple(db, 2, "vA", 200, 300, -1), "applied", NULL);
    run_workers(w, 2);
    ck_assert_int_eq(n_other, 0);
    ck_assert_int_eq(n_applied, 300);
    ck_assert_int_eq(n_short, 2 * CROSS_ROUNDS - 300);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM products WHERE"
                                   " stock = 0"),
                     2);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM order_items"), 600);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_same_order_id_is_created_once)
{
    worker_t w[RACE_THREADS];
    int i;

    /* even threads lock product 1, odd ones product 2: both the row lock
     * wait and the insert conflict paths are taken */
    fx_expect(fx_simple(db, 1, "vA", 100, 1000, -1), "applied", NULL);
    fx_expect(fx_simple(db, 2, "vA", 100, 1000, -1), "applied", NULL);
    for (i = 0; i < RACE_THREADS; i++) {
        w[i].index = i;
        w[i].nthreads = RACE_THREADS;
        w[i].count = 20;
        w[i].items = i % 2 ? "[{\"product_id\":2,\"quantity\":1}]"
                           : "[{\"product_id\":1,\"quantity\":1}]";
        w[i].shared_ids = 1;
    }
    run_workers(w, RACE_THREADS);
    ck_assert_int_eq(n_other, 0);
    ck_assert_int_eq(n_short, 0);
    ck_assert_int_eq(n_applied, 20);
    ck_assert_int_eq(n_exists, 20 * (RACE_THREADS - 1));
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM orders"), 20);
    ck_assert_int_eq(itest_int(db, "SELECT 2000 - sum(stock) FROM products"),
                     20);
    /* one result event per command: a checkout that lost the insert race
     * after its applied result was sent along keeps only order_exists */
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM outbox"),
                     itest_int(db, "SELECT count(*) FROM processed_commands"));
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM outbox WHERE"
                                   " convert_from(payload, 'UTF8')::jsonb"
                                   "->>'outcome' = 'applied'"),
                     20 + 2);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

#define RACE_OID "00000000-0000-4000-8999-000000000001"

static void *
late_checkout(void *arg)
{
    char err[512];
    db_t *conn = db_connect(conninfo, err, sizeof(err));

    ck_assert_msg(conn != NULL, "%s", err);
    *(json_t **)arg = fx_checkout(conn, RACE_OID, NULL,
                                  "[{\"product_id\":2,\"quantity\":1}]");
    db_destroy(conn);
    return NULL;
}

/*
 * The race the lock query cannot see: a checkout of the same order id is
 * applied but not committed when a second one checks that the order is
 * new. The second one's insert waits, finds the order committed and
 * inserts nothing; its applied result, sent in the same round trip, is
 * rolled back with its savepoint and it ends order_exists, with one
 * result and no stock taken.
 */
START_TEST(test_insert_race_after_the_order_check)
{
    char err[512];
    apply_source_t src = {
        &itest_source, "orders.commands", 0, 1, od_now_us(), "1", 1, NULL};
    apply_report_t rep;
    const char *first = "{\"dedup_key\":\"race-1\",\"type\":\"checkout\","
                        "\"actor\":{\"role\":\"customer\",\"id\":\"c1\"},"
                        "\"order_id\":\"" RACE_OID "\",\"customer_id\":\"c1\","
                        "\"currency\":\"EUR\","
                        "\"items\":[{\"product_id\":1,\"quantity\":1}]}";
    db_t *a = db_connect(conninfo, err, sizeof(err));
    json_t *late = NULL;
    pthread_t tid;
    int64_t end = od_mono_us() + 30 * 1000000LL;

    ck_assert_msg(a != NULL, "%s", err);
    fx_expect(fx_simple(db, 1, "vA", 100, 10, -1), "applied", NULL);
    fx_expect(fx_simple(db, 2, "vA", 100, 10, -1), "applied", NULL);
    ck_assert_int_eq(db_begin(a, err, sizeof(err)), OD_OK);
    ck_assert_int_eq(apply_message(a, &itest_cfg, first, strlen(first), &src,
                                   &rep, err, sizeof(err)),
                     OD_OK);
    ck_assert_int_eq(rep.outcome, OUTCOME_APPLIED);
    ck_assert_int_eq(pthread_create(&tid, NULL, late_checkout, &late), 0);
    /* until the late checkout's insert waits for this transaction */
    while (itest_int(db, "SELECT count(*) FROM pg_stat_activity WHERE"
                         " datname = current_database() AND"
                         " wait_event_type = 'Lock'") == 0) {
        struct timespec ts = {0, 10 * 1000 * 1000};

        ck_assert_msg(od_mono_us() < end, "the late checkout never waited");
        nanosleep(&ts, NULL); /* polling interval */
    }
    ck_assert_int_eq(db_commit(a, err, sizeof(err)), OD_OK);
    pthread_join(tid, NULL);
    fx_expect(late, "rejected", "order_exists");
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 2"),
                     10);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM outbox WHERE"
                                   " convert_from(payload, 'UTF8')::jsonb"
                                   "->>'order_id' = '" RACE_OID "'"),
                     2);
    itest_assert_stock_matches_ledger(db);
    db_destroy(a);
}
END_TEST

static Suite *
concurrency_suite(void)
{
    Suite *s = suite_create("checkout_concurrency");
    TCase *tc = tcase_create("oversell");
    TCase *tc2 = tcase_create("deadlock");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_last_units_are_never_oversold);
    suite_add_tcase(s, tc);
    tcase_add_checked_fixture(tc2, setup, teardown);
    tcase_add_test(tc2, test_opposite_orders_never_deadlock);
    suite_add_tcase(s, tc2);
    tc = tcase_create("same_order_id");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_same_order_id_is_created_once);
    tcase_add_test(tc, test_insert_race_after_the_order_check);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(concurrency_suite());
}
