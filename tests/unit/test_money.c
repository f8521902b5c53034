/* test_money.c - integer money arithmetic: tax rounding, line totals,
 * sums, overflow, currency and country codes */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../handlers/money.h"

static int64_t
tax(int64_t subtotal, int64_t bps)
{
    int64_t out = -42;

    ck_assert_int_eq(money_tax_cents(subtotal, bps, &out), 0);
    return out;
}

START_TEST(test_tax_contract_example)
{
    /* 2384 * 19% = 452.96 -> 453 */
    ck_assert_int_eq(tax(2384, 1900), 453);
}
END_TEST

START_TEST(test_tax_half_rounds_up)
{
    ck_assert_int_eq(tax(50, 1000), 5);       /* 5.0 exactly */
    ck_assert_int_eq(tax(5, 1000), 1);        /* 0.5 -> 1 */
    ck_assert_int_eq(tax(15, 1000), 2);       /* 1.5 -> 2 */
    ck_assert_int_eq(tax(25, 1000), 3);       /* 2.5 -> 3 (not banker's 2) */
    ck_assert_int_eq(tax(1, 5000), 1);        /* 0.5 -> 1 */
    ck_assert_int_eq(tax(1, 4999), 0);        /* 0.4999 -> 0 */
    ck_assert_int_eq(tax(3, 1500), 0);        /* 0.45 -> 0 */
    ck_assert_int_eq(tax(10001, 5000), 5001); /* 5000.5 -> 5001 */
    ck_assert_int_eq(tax(9999, 1), 1);        /* 0.9999 -> 1 */
    ck_assert_int_eq(tax(4999, 1), 0);        /* 0.4999 -> 0 */
    ck_assert_int_eq(tax(5000, 1), 1);        /* 0.5 -> 1 */
}
END_TEST

START_TEST(test_tax_zero_and_full_rate)
{
    ck_assert_int_eq(tax(0, 1900), 0);
    ck_assert_int_eq(tax(123456, 0), 0);
    ck_assert_int_eq(tax(123456, 10000), 123456);
    ck_assert_int_eq(tax(1, 10000), 1);
    ck_assert_int_eq(tax(1, 1), 0);
    ck_assert_int_eq(tax(INT64_MAX, 0), 0);
}
END_TEST

START_TEST(test_tax_huge_values_are_exact)
{
    /* INT64_MAX = 9223372036854775807 */
    ck_assert_int_eq(tax(INT64_MAX, 10000), INT64_MAX);
    /* INT64_MAX * 0.5 = 4611686018427387903.5 -> ...904 */
    ck_assert_int_eq(tax(INT64_MAX, 5000), 4611686018427387904LL);
    /* INT64_MAX * 0.19 = 1752440687002407403.33 -> ...403 */
    ck_assert_int_eq(tax(INT64_MAX, 1900), 1752440687002407403LL);
    /* 10^18 * 0.0001 exactly */
    ck_assert_int_eq(tax(1000000000000000000LL, 1), 100000000000000LL);
}
END_TEST

START_TEST(test_tax_matches_wide_reference)
{
    /* exhaustive-ish against a 128-bit reference */
    int64_t s, r;

    for (s = 0; s < 3000; s += 7)
        for (r = 0; r <= 10000; r += 37) {
            __int128 ref = ((__int128)s * r * 2 + 10000) / 20000;

            ck_assert_int_eq(tax(s, r), (int64_t)ref);
        }
}
END_TEST

START_TEST(test_tax_overflow_and_negative)
{
    int64_t out = 7;

    /* only rates above 100% can overflow */
    ck_assert_int_eq(money_tax_cents(INT64_MAX, 10001, &out), -1);
    ck_assert_int_eq(money_tax_cents(INT64_MAX / 2 + 1, 20000, &out), -1);
    ck_assert_int_eq(money_tax_cents(-1, 1900, &out), -1);
    ck_assert_int_eq(money_tax_cents(100, -1, &out), -1);
    ck_assert_int_eq(money_tax_cents(INT64_MAX / 2, 20000, &out), 0);
    ck_assert_int_eq(out, INT64_MAX - 1);
}
END_TEST

START_TEST(test_tax_huge_rate_small_subtotal)
{
    int64_t out = 7;

    /* r * rate overflows, the tax does not: 2 * INT64_MAX / 10000 */
    ck_assert_int_eq(tax(2, INT64_MAX), 1844674407370955LL);
    ck_assert_int_eq(tax(1, INT64_MAX), 922337203685478LL);
    ck_assert_int_eq(tax(9999, INT64_MAX / 10000), 922244969965108LL);
    /* every split term at once: 152407406035739.9025 -> ...740 */
    ck_assert_int_eq(tax(12345, 123456789012345LL), 152407406035740LL);
    ck_assert_int_eq(money_tax_cents(INT64_MAX / 2, INT64_MAX, &out), -1);
    ck_assert_int_eq(money_tax_cents(10000, INT64_MAX, &out), 0);
    ck_assert_int_eq(out, INT64_MAX);
    ck_assert_int_eq(money_tax_cents(10001, INT64_MAX, &out), -1);
}
END_TEST

START_TEST(test_line_total)
{
    int64_t out = 0;

    ck_assert_int_eq(money_line_total(1192, 2, &out), 0);
    ck_assert_int_eq(out, 2384);
    ck_assert_int_eq(money_line_total(0, 10000, &out), 0);
    ck_assert_int_eq(out, 0);
    ck_assert_int_eq(money_line_total(INT64_MAX, 1, &out), 0);
    ck_assert_int_eq(out, INT64_MAX);
    ck_assert_int_eq(money_line_total(INT64_MAX / 2 + 1, 2, &out), -1);
    ck_assert_int_eq(money_line_total(1000000000000000LL, 10000, &out), -1);
    ck_assert_int_eq(money_line_total(-1, 2, &out), -1);
    ck_assert_int_eq(money_line_total(1, -2, &out), -1);
}
END_TEST

START_TEST(test_add)
{
    int64_t out = 0;

    ck_assert_int_eq(money_add(2384, 453, &out), 0);
    ck_assert_int_eq(out, 2837);
    ck_assert_int_eq(money_add(INT64_MAX - 1, 1, &out), 0);
    ck_assert_int_eq(out, INT64_MAX);
    ck_assert_int_eq(money_add(INT64_MAX, 1, &out), -1);
    ck_assert_int_eq(money_add(-5, 1, &out), -1);
}
END_TEST

START_TEST(test_codes)
{
    ck_assert(money_currency_valid("EUR"));
    ck_assert(!money_currency_valid("eur"));
    ck_assert(!money_currency_valid("EU"));
    ck_assert(!money_currency_valid("EURO"));
    ck_assert(!money_currency_valid("E1R"));
    ck_assert(!money_currency_valid(""));
    ck_assert(!money_currency_valid(NULL));
    ck_assert(money_country_valid("DE"));
    ck_assert(!money_country_valid("D"));
    ck_assert(!money_country_valid("DEU"));
    ck_assert(!money_country_valid("de"));
}
END_TEST

static Suite *
money_suite(void)
{
    Suite *s = suite_create("money");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"tax_contract_example", test_tax_contract_example},
        {"tax_half_rounds_up", test_tax_half_rounds_up},
        {"tax_zero_and_full_rate", test_tax_zero_and_full_rate},
        {"tax_huge_values_are_exact", test_tax_huge_values_are_exact},
        {"tax_matches_wide_reference", test_tax_matches_wide_reference},
        {"tax_overflow_and_negative", test_tax_overflow_and_negative},
        {"tax_huge_rate_small_subtotal", test_tax_huge_rate_small_subtotal},
        {"line_total", test_line_total},
        {"add", test_add},
        {"codes", test_codes},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(money_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
