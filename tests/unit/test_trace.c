/* test_trace.c - which traceparent values are passed on */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/od.h"

static int
valid(const char *s)
{
    return od_traceparent_valid(s, strlen(s));
}

START_TEST(test_w3c_examples)
{
    ck_assert(valid("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
    ck_assert(valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
    /* a later version with the same layout is passed on */
    ck_assert(valid("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
}
END_TEST

START_TEST(test_hostile_or_broken_values_are_dropped)
{
    /* version ff is forbidden, ids of zeros are invalid */
    ck_assert(
        !valid("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    ck_assert(
        !valid("00-00000000000000000000000000000000-00f067aa0ba902b7-01"));
    ck_assert(
        !valid("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"));
    /* upper case, wrong separators, lengths, control bytes */
    ck_assert(
        !valid("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"));
    ck_assert(
        !valid("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
    ck_assert(!valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0"));
    ck_assert(
        !valid("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n"));
    ck_assert(!valid(""));
    ck_assert(!od_traceparent_valid(NULL, 55));
}
END_TEST

static Suite *
trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("examples");

    tcase_add_test(tc, test_w3c_examples);
    suite_add_tcase(s, tc);
    tc = tcase_create("hostile");
    tcase_add_test(tc, test_hostile_or_broken_values_are_dropped);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(trace_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
