/* 0230_fsm_db_guard: the database refuses what the state machine refuses,
 * even from hand-written SQL, and its transition table is the code's */
#include "lifecycle_fixture.h"

#include "../../handlers/fsm.h"

#define O1 "00000000-0000-4000-8000-000000000031"

static db_t *db;

static void
setup(void)
{
    static const lf_line_t line[] = {{1, 0, 1}};

    db = itest_fresh_db("fsm_db_guard", NULL, 0);
    lf_product(db, 1, "v1", 1000, 10);
    lf_order(db, O1, "c1", line, 1, NULL);
}

static void
teardown(void)
{
    db_destroy(db);
}

START_TEST(test_raw_sql_cannot_skip_states)
{
    char err[512], buf[64];
    od_status_t st;

    st = db_exec(db,
                 "UPDATE orders SET status = 'shipped'"
                 " WHERE id = '" O1 "'",
                 err, sizeof(err));
    ck_assert_int_eq(st, OD_FATAL);
    ck_assert_str_eq(db_sqlstate(db), "23514");
    ck_assert_ptr_nonnull(strstr(err, "illegal order transition"));
    ck_assert_str_eq(lf_status(db, O1, buf, sizeof(buf)), "pending");
    /* a legal move goes through */
    itest_exec(db, "UPDATE orders SET status = 'paid' WHERE id = '" O1 "'");
    ck_assert_str_eq(lf_status(db, O1, buf, sizeof(buf)), "paid");
}
END_TEST

START_TEST(test_code_table_equals_db_table)
{
    size_t n;
    const fsm_transition_t *t = fsm_transitions(&n);

    ck_assert_int_eq(lf_intf(db, "SELECT count(*) FROM order_transitions"),
                     (int64_t)n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(lf_intf(db,
                              "SELECT count(*) FROM order_transitions"
                              " WHERE from_status = '%s'"
                              " AND to_status = '%s'",
                              fsm_status_name(t[i].from),
                              fsm_status_name(t[i].to)) == 1,
                      "%s -> %s missing from order_transitions",
                      fsm_status_name(t[i].from), fsm_status_name(t[i].to));
    /* and the statuses are the same set */
    ck_assert_int_eq(lf_intf(db, "SELECT count(*) FROM order_statuses"),
                     FSM_NSTATUS);
    for (int s = 0; s < FSM_NSTATUS; s++)
        ck_assert_int_eq(lf_intf(db,
                                 "SELECT count(*) FROM order_statuses"
                                 " WHERE status = '%s'",
                                 fsm_status_name((fsm_status_t)s)),
                         1);
}
END_TEST

/* every pair of distinct statuses through the trigger: it allows exactly
 * what fsm_can allows */
START_TEST(test_trigger_agrees_with_fsm_on_every_pair)
{
    char err[512], sql[512];

    for (int from = 0; from < FSM_NSTATUS; from++)
        for (int to = 0; to < FSM_NSTATUS; to++) {
            const char *f = fsm_status_name((fsm_status_t)from);
            const char *t = fsm_status_name((fsm_status_t)to);
            od_status_t st;

            if (from == to)
                continue;
            itest_exec(db, "BEGIN");
            /* inserts are not guarded: put the order where the pair
             * starts (the history is not the point here) */
            lf_execf(db,
                     "INSERT INTO orders (id, number, customer_id, status,"
                     " currency, subtotal_cents, tax_rate_bps, tax_cents,"
                     " total_cents, dedup_key, source, created_at,"
                     " expires_at) VALUES"
                     " ('00000000-0000-4000-8000-0000000003ff',"
                     " 'G-1', 'c', '%s', 'EUR', 0, 0, 0, 0, 'g', 'g', now(),"
                     " now())",
                     f);
            snprintf(sql, sizeof(sql),
                     "UPDATE orders SET status = '%s'"
                     " WHERE id = '00000000-0000-4000-8000-0000000003ff'",
                     t);
            st = db_exec(db, sql, err, sizeof(err));
            ck_assert_msg((st == OD_OK) ==
                              fsm_can((fsm_status_t)from, (fsm_status_t)to),
                          "%s -> %s: trigger says %s, fsm says %d", f, t,
                          st == OD_OK ? "ok" : err,
                          fsm_can((fsm_status_t)from, (fsm_status_t)to));
            if (st != OD_OK)
                ck_assert_str_eq(db_sqlstate(db), "23514");
            itest_exec(db, "ROLLBACK");
        }
}
END_TEST

START_TEST(test_totals_cannot_change)
{
    char err[512];

    ck_assert_int_eq(db_exec(db,
                             "UPDATE orders SET total_cents = 1"
                             " WHERE id = '" O1 "'",
                             err, sizeof(err)),
                     OD_FATAL);
    ck_assert_str_eq(db_sqlstate(db), "23514");
}
END_TEST

static Suite *
guard_suite(void)
{
    Suite *s = suite_create("fsm_db_guard");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"raw_sql", test_raw_sql_cannot_skip_states},
        {"tables_equal", test_code_table_equals_db_table},
        {"every_pair", test_trigger_agrees_with_fsm_on_every_pair},
        {"totals", test_totals_cannot_change},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, cases[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

int
main(void)
{
    return itest_run(guard_suite());
}
