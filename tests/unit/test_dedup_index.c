/* test_dedup_index.c - a batch's dedup look-up by (source, dedup_key):
 * every row found under its own identity and no other, the last row of
 * an identity winning, rows appended between finds, growth past many
 * table sizes. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/dedup.h"

static dedup_row_t *
add(snap_vec_t *rows, const char *source, const char *key)
{
    dedup_row_t *d = snap_vec_new(rows, sizeof(*d));

    ck_assert_ptr_nonnull(d);
    snprintf(d->source, sizeof(d->source), "%s", source);
    snprintf(d->key, sizeof(d->key), "%s", key);
    return d;
}

START_TEST(test_finds_each_identity_and_nothing_else)
{
    snap_vec_t rows = {0};
    dedup_index_t ix = {0};
    char key[32];

    /* enough rows to grow the table several times, found between adds */
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "co-%d", i);
        add(&rows, i % 2 ? "web" : "payments", key);
        if (i >= 1 && i % 97 == 0)
            ck_assert_ptr_eq(dedup_index_find(&ix, &rows, "web", "co-1"),
                             rows.v[1]);
    }
    for (int i = 0; i < 3000; i++) {
        snprintf(key, sizeof(key), "co-%d", i);
        ck_assert_ptr_eq(
            dedup_index_find(&ix, &rows, i % 2 ? "web" : "payments", key),
            rows.v[i]);
        /* the same key under the other source is another identity */
        ck_assert_ptr_null(
            dedup_index_find(&ix, &rows, i % 2 ? "payments" : "web", key));
    }
    ck_assert_ptr_null(dedup_index_find(&ix, &rows, "web", "co-3000"));
    /* the separator: ("ab", "c") is not ("a", "bc") */
    add(&rows, "ab", "c");
    ck_assert_ptr_null(dedup_index_find(&ix, &rows, "a", "bc"));
    ck_assert_ptr_nonnull(dedup_index_find(&ix, &rows, "ab", "c"));
    dedup_index_free(&ix);
    dedup_rows_free(&rows);
}
END_TEST

START_TEST(test_the_last_row_of_an_identity_wins)
{
    snap_vec_t rows = {0};
    dedup_index_t ix = {0};
    dedup_row_t *first, *second;

    first = add(&rows, "web", "pay-1");
    ck_assert_ptr_eq(dedup_index_find(&ix, &rows, "web", "pay-1"), first);
    second = add(&rows, "web", "pay-1");
    ck_assert_ptr_eq(dedup_index_find(&ix, &rows, "web", "pay-1"), second);
    dedup_index_free(&ix);
    dedup_rows_free(&rows);
}
END_TEST

START_TEST(test_empty)
{
    snap_vec_t rows = {0};
    dedup_index_t ix = {0};

    ck_assert_ptr_null(dedup_index_find(&ix, &rows, "web", "x"));
    dedup_index_free(&ix);
}
END_TEST

static Suite *
dedup_index_suite(void)
{
    Suite *s = suite_create("dedup_index");
    TCase *tc = tcase_create("find");

    tcase_add_test(tc, test_finds_each_identity_and_nothing_else);
    tcase_add_test(tc, test_the_last_row_of_an_identity_wins);
    tcase_add_test(tc, test_empty);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(dedup_index_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
