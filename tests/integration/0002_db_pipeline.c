/* 0002_db_pipeline: statements queued with db_queue_run travel in the next
 * call's round trip on a real connection: their rows reach the caller, a
 * failure among them is the call's failure and says which statement
 * failed, and a rollback to a savepoint forgets the ones queued after it;
 * the round-trip counter (orderd_db_round_trips_total) counts a pipeline
 * as one */
#include "itest.h"

#include <string.h>

static db_t *db;

static const db_stmt_t stmt_insert = {
    "it_pipe_insert", "INSERT INTO it_pipe (v) VALUES ($1::int) RETURNING v"};
static const db_stmt_t stmt_count = {"it_pipe_count",
                                     "SELECT count(*) FROM it_pipe"};

static void
setup(void)
{
    db = itest_fresh_db("db_pipeline", NULL, 0);
    /* DDL is the owner's; the runtime role gets the table's grants from
     * the default privileges, as a table of a later migration would */
    itest_owner_exec("db_pipeline",
                     "CREATE TABLE it_pipe (v int CHECK (v > 0))");
}

static void
teardown(void)
{
    db_destroy(db);
}

static void
queue_insert(const char *v, db_rows_t **rows)
{
    const char *params[1] = {v};
    char err[512];

    ck_assert_int_eq(db_queue_run(db, &stmt_insert, 1, params, NULL, NULL, rows,
                                  err, sizeof(err)),
                     OD_OK);
}

START_TEST(test_queued_rows_arrive_with_the_next_call)
{
    char err[512], v[24];
    db_rows_t *first = NULL, *count = NULL;

    /* the parameter is copied: the caller's buffer may change */
    snprintf(v, sizeof(v), "7");
    queue_insert(v, &first);
    snprintf(v, sizeof(v), "-1");
    queue_insert("8", NULL);
    ck_assert_ptr_null(first); /* nothing sent yet */
    ck_assert_int_eq(db_run(db, &stmt_count, 0, NULL, &count, err, sizeof(err)),
                     OD_OK);
    ck_assert_int_eq(db_nrows(first), 1);
    ck_assert_int_eq(db_int64(first, 0, 0), 7);
    ck_assert_int_eq(db_int64(count, 0, 0), 2);
    db_rows_free(first);
    db_rows_free(count);
}
END_TEST

START_TEST(test_a_failed_queued_statement_fails_the_call)
{
    char err[512];
    db_rows_t *ok = NULL, *count = NULL;

    ck_assert_int_eq(db_begin(db, err, sizeof(err)), OD_OK);
    queue_insert("1", &ok);
    queue_insert("-5", NULL); /* violates the CHECK */
    ck_assert_int_eq(db_run(db, &stmt_count, 0, NULL, &count, err, sizeof(err)),
                     OD_FATAL);
    ck_assert_int_eq(db_failed_queued(db), 1);
    ck_assert_str_eq(db_sqlstate(db), "23514");
    ck_assert_ptr_nonnull(strstr(err, "it_pipe_insert"));
    ck_assert_ptr_null(count); /* the call's own statement did not run */
    ck_assert_int_eq(db_int64(ok, 0, 0), 1);
    db_rows_free(ok);
    ck_assert_int_eq(db_rollback(db, err, sizeof(err)), OD_OK);
    ck_assert_int_eq(db_failed_queued(db), 0);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM it_pipe"), 0);
}
END_TEST

START_TEST(test_rollback_to_savepoint_forgets_what_was_queued_after_it)
{
    char err[512];

    ck_assert_int_eq(db_begin(db, err, sizeof(err)), OD_OK);
    queue_insert("1", NULL);
    db_queue_tx(db, DB_TX_SAVEPOINT);
    queue_insert("-5", NULL); /* would fail: never sent */
    queue_insert("3", NULL);
    ck_assert_int_eq(db_rollback_to(db, err, sizeof(err)), OD_OK);
    ck_assert_int_eq(db_commit(db, err, sizeof(err)), OD_OK);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM it_pipe"), 1);
    ck_assert_int_eq(itest_int(db, "SELECT max(v) FROM it_pipe"), 1);
}
END_TEST

START_TEST(test_commit_carries_queued_statements)
{
    char err[512];

    ck_assert_int_eq(db_begin(db, err, sizeof(err)), OD_OK);
    queue_insert("4", NULL);
    queue_insert("5", NULL);
    ck_assert_int_eq(db_commit(db, err, sizeof(err)), OD_OK);
    ck_assert_int_eq(itest_int(db, "SELECT sum(v) FROM it_pipe"), 9);

    /* a queued failure: the COMMIT never ran, the transaction is open and
     * aborted until rolled back */
    ck_assert_int_eq(db_begin(db, err, sizeof(err)), OD_OK);
    queue_insert("6", NULL);
    queue_insert("0", NULL);
    ck_assert_int_eq(db_commit(db, err, sizeof(err)), OD_FATAL);
    ck_assert_int_eq(db_failed_queued(db), 1);
    ck_assert_int_eq(db_rollback(db, err, sizeof(err)), OD_OK);
    ck_assert_int_eq(itest_int(db, "SELECT sum(v) FROM it_pipe"), 9);
}
END_TEST

START_TEST(test_round_trips_count_each_wait_for_the_server)
{
    static const db_stmt_t stmt_fresh = {"it_pipe_fresh", "SELECT 1"};
    char err[512];
    long long before;

    before = db_round_trips_total();
    ck_assert_int_eq(db_exec(db, "BEGIN", err, sizeof(err)), OD_OK);
    ck_assert_int_eq(db_round_trips_total() - before, 1);

    /* two queued statements (one of them prepared on the way) and the call:
     * one pipeline, one round trip */
    before = db_round_trips_total();
    queue_insert("1", NULL);
    queue_insert("2", NULL);
    ck_assert_int_eq(db_round_trips_total() - before, 0);
    ck_assert_int_eq(db_run(db, &stmt_count, 0, NULL, NULL, err, sizeof(err)),
                     OD_OK);
    ck_assert_int_eq(db_round_trips_total() - before, 1);

    /* a statement run alone the first time: its Prepare, then its Execute */
    before = db_round_trips_total();
    ck_assert_int_eq(db_run(db, &stmt_fresh, 0, NULL, NULL, err, sizeof(err)),
                     OD_OK);
    ck_assert_int_eq(db_round_trips_total() - before, 2);
    before = db_round_trips_total();
    ck_assert_int_eq(db_run(db, &stmt_fresh, 0, NULL, NULL, err, sizeof(err)),
                     OD_OK);
    ck_assert_int_eq(db_round_trips_total() - before, 1);

    before = db_round_trips_total();
    ck_assert_int_eq(db_exec(db, "COMMIT", err, sizeof(err)), OD_OK);
    ck_assert_int_eq(db_round_trips_total() - before, 1);
}
END_TEST

static Suite *
db_pipeline_suite(void)
{
    Suite *s = suite_create("db_pipeline");
    TCase *tc = tcase_create("pipeline");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_queued_rows_arrive_with_the_next_call);
    tcase_add_test(tc, test_a_failed_queued_statement_fails_the_call);
    tcase_add_test(tc,
                   test_rollback_to_savepoint_forgets_what_was_queued_after_it);
    tcase_add_test(tc, test_commit_carries_queued_statements);
    tcase_add_test(tc, test_round_trips_count_each_wait_for_the_server);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(db_pipeline_suite());
}
