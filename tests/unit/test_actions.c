/* test_actions.c - what the console and `orderd order` say may happen next
 * to an order (the state machine table with the dispatch table's roles),
 * and money shown in a currency's major units */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../handlers/fsm.h"
#include "../../handlers/handler.h"
#include "../../handlers/money.h"

/* "pay:payment,admin;cancel:..." for a status, to compare in one go */
static void
actions_text(const char *status, char *out, size_t len)
{
    json_t *a = handler_available_actions(status), *v, *r;
    size_t i, j, n = 0;

    ck_assert_ptr_nonnull(a);
    out[0] = '\0';
    json_array_foreach(a, i, v)
    {
        n += (size_t)snprintf(out + n, len - n, "%s%s>%s:", i ? ";" : "",
                              json_string_value(json_object_get(v, "command")),
                              json_string_value(json_object_get(v, "to")));
        json_array_foreach(json_object_get(v, "roles"), j, r) n +=
            (size_t)snprintf(out + n, len - n, "%s%s", j ? "," : "",
                             json_string_value(r));
    }
    json_decref(a);
}

START_TEST(test_actions_per_status)
{
    char buf[512];

    actions_text("pending", buf, sizeof(buf));
    ck_assert_str_eq(buf, "pay>paid:admin,payment;"
                          "cancel>cancelled:customer,vendor,admin,system;"
                          "expire>expired:admin,system");
    actions_text("paid", buf, sizeof(buf));
    ck_assert_str_eq(buf, "start_processing>processing:vendor,admin;"
                          "cancel>cancelled:customer,vendor,admin,system");
    actions_text("processing", buf, sizeof(buf));
    ck_assert_str_eq(buf, "ship>shipped:vendor,admin;"
                          "cancel>cancelled:customer,vendor,admin,system");
    actions_text("shipped", buf, sizeof(buf));
    ck_assert_str_eq(buf, "deliver>delivered:vendor,admin,system");
    actions_text("delivered", buf, sizeof(buf));
    ck_assert_str_eq(buf, "refund>refunded:admin,payment");
    /* final statuses and nonsense: nothing */
    actions_text("refunded", buf, sizeof(buf));
    ck_assert_str_eq(buf, "");
    actions_text("cancelled", buf, sizeof(buf));
    ck_assert_str_eq(buf, "");
    actions_text("expired", buf, sizeof(buf));
    ck_assert_str_eq(buf, "");
    actions_text("lost", buf, sizeof(buf));
    ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(test_every_transition_names_a_handler)
{
    size_t n = 0;
    const fsm_transition_t *t = fsm_transitions(&n);

    for (size_t i = 0; i < n; i++) {
        ck_assert_ptr_nonnull(t[i].command);
        ck_assert_msg(handler_find(t[i].command) != NULL, "%s has no handler",
                      t[i].command);
    }
}
END_TEST

START_TEST(test_money_format)
{
    char buf[64];

    ck_assert_str_eq(money_format(123456, "EUR", buf, sizeof(buf)),
                     "1234.56 EUR");
    ck_assert_str_eq(money_format(5, "EUR", buf, sizeof(buf)), "0.05 EUR");
    ck_assert_str_eq(money_format(0, "USD", buf, sizeof(buf)), "0.00 USD");
    ck_assert_str_eq(money_format(-1750, "EUR", buf, sizeof(buf)),
                     "-17.50 EUR");
    ck_assert_str_eq(money_format(2000, "JPY", buf, sizeof(buf)), "2000 JPY");
    ck_assert_str_eq(money_format(1234, "KWD", buf, sizeof(buf)), "1.234 KWD");
    ck_assert_str_eq(money_format(INT64_MIN, "EUR", buf, sizeof(buf)),
                     "-92233720368547758.08 EUR");
    ck_assert_int_eq(money_currency_exponent("JPY"), 0);
    ck_assert_int_eq(money_currency_exponent("BHD"), 3);
    ck_assert_int_eq(money_currency_exponent("EUR"), 2);
}
END_TEST

static Suite *
actions_suite(void)
{
    Suite *s = suite_create("actions");
    TCase *tc = tcase_create("actions");

    tcase_add_test(tc, test_actions_per_status);
    tcase_add_test(tc, test_every_transition_names_a_handler);
    tcase_add_test(tc, test_money_format);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(actions_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
