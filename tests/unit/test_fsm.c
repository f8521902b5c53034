/* test_fsm.c - the order state machine: exactly the contract's transitions */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../handlers/fsm.h"

/* CONTRACT.md, "Order state machine", written out independently of the
 * table under test */
static const char *const contract_pairs[][2] = {
    {"pending", "paid"},         {"paid", "processing"},
    {"processing", "shipped"},   {"shipped", "delivered"},
    {"delivered", "refunded"},   {"pending", "cancelled"},
    {"pending", "expired"},      {"paid", "cancelled"},
    {"processing", "cancelled"},
};

static const char *const all_names[] = {"pending",   "paid",      "processing",
                                        "shipped",   "delivered", "refunded",
                                        "cancelled", "expired"};

static int
contract_allows(const char *from, const char *to)
{
    for (size_t i = 0; i < sizeof(contract_pairs) / sizeof(contract_pairs[0]);
         i++)
        if (strcmp(contract_pairs[i][0], from) == 0 &&
            strcmp(contract_pairs[i][1], to) == 0)
            return 1;
    return 0;
}

START_TEST(test_status_names_round_trip)
{
    ck_assert_int_eq(FSM_NSTATUS, 8);
    for (size_t i = 0; i < sizeof(all_names) / sizeof(all_names[0]); i++) {
        int s = fsm_status_parse(all_names[i]);

        ck_assert_int_ge(s, 0);
        ck_assert_str_eq(fsm_status_name((fsm_status_t)s), all_names[i]);
    }
    ck_assert_int_eq(fsm_status_parse("PENDING"), -1);
    ck_assert_int_eq(fsm_status_parse(""), -1);
    ck_assert_int_eq(fsm_status_parse("pending "), -1);
    ck_assert_int_eq(fsm_status_parse(NULL), -1);
    ck_assert_str_eq(fsm_status_name(FSM_NSTATUS), "unknown");
    ck_assert_str_eq(fsm_status_name((fsm_status_t)-1), "unknown");
}
END_TEST

START_TEST(test_every_legal_pair_is_allowed)
{
    for (size_t i = 0; i < sizeof(contract_pairs) / sizeof(contract_pairs[0]);
         i++) {
        int from = fsm_status_parse(contract_pairs[i][0]);
        int to = fsm_status_parse(contract_pairs[i][1]);

        ck_assert_msg(fsm_can((fsm_status_t)from, (fsm_status_t)to),
                      "%s -> %s refused", contract_pairs[i][0],
                      contract_pairs[i][1]);
    }
}
END_TEST

START_TEST(test_every_other_pair_is_refused)
{
    for (int from = 0; from < FSM_NSTATUS; from++)
        for (int to = 0; to < FSM_NSTATUS; to++) {
            const char *f = fsm_status_name((fsm_status_t)from);
            const char *t = fsm_status_name((fsm_status_t)to);

            ck_assert_msg(fsm_can((fsm_status_t)from, (fsm_status_t)to) ==
                              contract_allows(f, t),
                          "%s -> %s: table and contract disagree", f, t);
        }
    ck_assert_int_eq(fsm_can(FSM_PENDING, FSM_NSTATUS), 0);
    ck_assert_int_eq(fsm_can((fsm_status_t)-1, FSM_PAID), 0);
}
END_TEST

START_TEST(test_terminal_states_have_no_exits)
{
    static const fsm_status_t terminal[] = {FSM_REFUNDED, FSM_CANCELLED,
                                            FSM_EXPIRED};
    static const fsm_status_t live[] = {FSM_PENDING, FSM_PAID, FSM_PROCESSING,
                                        FSM_SHIPPED, FSM_DELIVERED};

    for (size_t i = 0; i < sizeof(terminal) / sizeof(terminal[0]); i++) {
        ck_assert(fsm_is_terminal(terminal[i]));
        for (int to = 0; to < FSM_NSTATUS; to++)
            ck_assert(!fsm_can(terminal[i], (fsm_status_t)to));
    }
    for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
        ck_assert(!fsm_is_terminal(live[i]));
}
END_TEST

START_TEST(test_table_iteration_matches_contract)
{
    size_t n = 0;
    const fsm_transition_t *t = fsm_transitions(&n);

    ck_assert_uint_eq(n, sizeof(contract_pairs) / sizeof(contract_pairs[0]));
    for (size_t i = 0; i < n; i++) {
        ck_assert(contract_allows(fsm_status_name(t[i].from),
                                  fsm_status_name(t[i].to)));
        for (size_t j = 0; j < i; j++)
            ck_assert(t[j].from != t[i].from || t[j].to != t[i].to);
    }
}
END_TEST

static Suite *
fsm_suite(void)
{
    Suite *s = suite_create("fsm");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"names", test_status_names_round_trip},
        {"legal_pairs", test_every_legal_pair_is_allowed},
        {"other_pairs", test_every_other_pair_is_refused},
        {"terminal", test_terminal_states_have_no_exits},
        {"iteration", test_table_iteration_matches_contract},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_test(tc, cases[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(fsm_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
