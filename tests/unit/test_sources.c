/* test_sources.c - the sources table: --source parsing and lookups */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/sources.h"

START_TEST(test_no_source_is_the_trusting_default)
{
    od_sources_t s;
    char err[256];

    ck_assert_int_eq(sources_parse(&s, "", "orders.commands", err, sizeof(err)),
                     0);
    ck_assert_int_eq(s.n, 1);
    ck_assert(s.trust_all);
    ck_assert_str_eq(s.items[0].name, SOURCE_DEFAULT);
    ck_assert_str_eq(s.items[0].topic, "orders.commands");
    ck_assert_uint_eq(s.items[0].roles, ROLE_ALL);
    sources_free(&s);
}
END_TEST

START_TEST(test_contract_example)
{
    od_sources_t s;
    char err[256], roles[64];
    const od_source_t *src;

    ck_assert_int_eq(sources_parse(&s,
                                   "web=orders.commands.web:customer;"
                                   "payments=orders.commands.payments:payment;"
                                   " ops=orders.commands.ops:admin,vendor,"
                                   "system",
                                   "orders.commands", err, sizeof(err)),
                     0);
    ck_assert_int_eq(s.n, 3);
    ck_assert(!s.trust_all);
    src = sources_by_topic(&s, "orders.commands.web");
    ck_assert_ptr_nonnull(src);
    ck_assert_str_eq(src->name, "web");
    ck_assert_uint_eq(src->roles, ROLE_CUSTOMER);
    src = sources_by_name(&s, "ops");
    ck_assert_ptr_nonnull(src);
    ck_assert_uint_eq(src->roles, ROLE_ADMIN | ROLE_VENDOR | ROLE_SYSTEM);
    ck_assert_str_eq(sources_roles_text(src->roles, roles, sizeof(roles)),
                     "vendor,admin,system");
    /* --commands-topic is not consumed once sources are given */
    ck_assert_ptr_null(sources_by_topic(&s, "orders.commands"));
    ck_assert_ptr_null(sources_by_name(&s, SOURCE_DEFAULT));
    /* orderd's own source is always known, and admits only system */
    ck_assert_ptr_eq(sources_by_name(&s, SOURCE_ORDERD), sources_orderd());
    ck_assert_uint_eq(sources_orderd()->roles, ROLE_SYSTEM);
    sources_free(&s);
}
END_TEST

static void
assert_refused(const char *spec, const char *why)
{
    od_sources_t s;
    char err[256] = "";

    ck_assert_msg(sources_parse(&s, spec, "t", err, sizeof(err)) == -1,
                  "'%s' was accepted", spec);
    ck_assert_msg(strstr(err, why) != NULL, "'%s': expected '%s' in '%s'", spec,
                  why, err);
    ck_assert_int_eq(s.n, 0);
}

START_TEST(test_bad_specs_are_refused)
{
    assert_refused("orderd=t1:system", "reserved");
    assert_refused("web=t1:customer;web=t2:admin", "given twice");
    assert_refused("web=t1:customer;ops=t1:admin", "bound to two sources");
    assert_refused("web=t1:root", "not a role");
    assert_refused("web=t1:customer,", "not a role");
    assert_refused("web=t1:", "not a role");
    assert_refused("web=:customer", "names no topic");
    assert_refused("web:customer", "NAME=TOPIC:ROLE");
    assert_refused("Web=t1:customer", "name must be");
    assert_refused("=t1:customer", "name must be");
    assert_refused("a-very-long-source-name-of-33-chars=t:admin",
                   "name must be");
}
END_TEST

static Suite *
sources_suite(void)
{
    Suite *s = suite_create("sources");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"default", test_no_source_is_the_trusting_default},
        {"contract_example", test_contract_example},
        {"bad_specs", test_bad_specs_are_refused},
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
    SRunner *sr = srunner_create(sources_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
