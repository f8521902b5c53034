/* test_checkout_parse.c - checkout parsing, line aggregation per
 * (product, variant), the catalogue checks and the totals, without I/O */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../handlers/checkout.h"
#include "../../handlers/handlers.h"

#define OID "6F1C0E0E-8A5E-4C1B-9A55-3F7A9D2C1E10"
#define HEAD "\"order_id\":\"" OID "\",\"customer_id\":\"c1\","

static checkout_cmd_t *
parse(const char *body, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loads(body, 0, &jerr);
    void *out = NULL;
    od_status_t st;

    ck_assert_msg(root != NULL, "bad test JSON: %s: %s", body, jerr.text);
    err[0] = '\0';
    st = checkout_parse(root, &out, err, errlen);
    json_decref(root);
    if (st != OD_OK) {
        ck_assert_int_eq(st, OD_REJECT);
        ck_assert_ptr_null(out);
        return NULL;
    }
    return out;
}

static void
refused(const char *body, const char *needle)
{
    char err[256];
    checkout_cmd_t *c = parse(body, err, sizeof(err));

    ck_assert_msg(c == NULL, "accepted: %s", body);
    ck_assert_msg(strstr(err, needle) != NULL, "%s: error '%s' lacks '%s'",
                  body, err, needle);
}

START_TEST(test_valid_checkout)
{
    char err[256];
    checkout_cmd_t *c = parse(
        "{" HEAD "\"currency\":\"EUR\",\"tax_country\":\"DE\","
        "\"ttl_seconds\":600,\"items\":[{\"product_id\":7,\"quantity\":2,"
        "\"unit_price_cents\":1192},{\"product_id\":\"8\",\"variant_id\":81,"
        "\"quantity\":1}]}",
        err, sizeof(err));

    ck_assert_msg(c != NULL, "%s", err);
    /* the order id is normalised to lower case */
    ck_assert_str_eq(c->order_id, "6f1c0e0e-8a5e-4c1b-9a55-3f7a9d2c1e10");
    ck_assert_str_eq(checkout_order_id(c), c->order_id);
    ck_assert_str_eq(c->customer_id, "c1");
    ck_assert_str_eq(c->currency, "EUR");
    ck_assert_str_eq(c->tax_country, "DE");
    ck_assert_int_eq(c->ttl_s, 600);
    ck_assert_int_eq(c->nlines, 2);
    ck_assert_int_eq(c->lines[0].quoted_cents, 1192);
    ck_assert_int_eq(c->lines[1].product_id, 8);
    ck_assert_int_eq(c->lines[1].variant_id, 81);
    ck_assert_int_eq(c->lines[1].quoted_cents, -1);
    ck_assert_int_eq(c->ngroups, 2);
    free(c);
    c = parse("{" HEAD "\"currency\":\"EUR\",\"items\":[{\"product_id\":7,"
              "\"quantity\":10000}]}",
              err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(c->tax_country, "");
    ck_assert_int_eq(c->ttl_s, 0);
    ck_assert_int_eq(c->lines[0].variant_id, 0);
    free(c);
}
END_TEST

START_TEST(test_invalid_checkouts)
{
    char body[16384];
    size_t n;
    int i;

    refused("{\"customer_id\":\"c1\",\"currency\":\"EUR\",\"items\":"
            "[{\"product_id\":7,\"quantity\":1}]}",
            "order_id");
    refused("{\"order_id\":\"abc\",\"customer_id\":\"c1\",\"currency\":"
            "\"EUR\",\"items\":[{\"product_id\":7,\"quantity\":1}]}",
            "order_id");
    refused("{\"order_id\":\"" OID "\",\"currency\":\"EUR\",\"items\":"
            "[{\"product_id\":7,\"quantity\":1}]}",
            "customer_id");
    refused("{" HEAD "\"items\":[{\"product_id\":7,\"quantity\":1}]}",
            "currency");
    refused("{" HEAD "\"currency\":\"Eur\",\"items\":[{\"product_id\":7,"
            "\"quantity\":1}]}",
            "currency");
    refused("{" HEAD "\"currency\":\"EUR\",\"tax_country\":\"DEU\","
            "\"items\":[{\"product_id\":7,\"quantity\":1}]}",
            "tax_country");
    refused("{" HEAD "\"currency\":\"EUR\",\"tax_country\":\"de\","
            "\"items\":[{\"product_id\":7,\"quantity\":1}]}",
            "tax_country");
    refused("{" HEAD "\"currency\":\"EUR\",\"ttl_seconds\":0,"
            "\"items\":[{\"product_id\":7,\"quantity\":1}]}",
            "ttl_seconds");
    refused("{" HEAD "\"currency\":\"EUR\",\"ttl_seconds\":2592001,"
            "\"items\":[{\"product_id\":7,\"quantity\":1}]}",
            "ttl_seconds");
    refused("{" HEAD "\"currency\":\"EUR\"}", "items");
    refused("{" HEAD "\"currency\":\"EUR\",\"items\":[]}", "items");
    refused("{" HEAD "\"currency\":\"EUR\",\"items\":{}}", "items");
    refused("{" HEAD "\"currency\":\"EUR\",\"items\":[3]}", "items[0]");
    refused("{" HEAD "\"currency\":\"EUR\",\"items\":[{\"quantity\":1}]}",
            "product_id");
    refused("{" HEAD "\"currency\":\"EUR\",\"items\":[{\"product_id\":7,"
            "\"quantity\":1},{\"product_id\":-7,\"quantity\":1}]}",
            "items[1]");
    refused("{" HEAD "\"currency\":\"EUR\",\"items\":[{\"product_id\":7,"
            "\"variant_id\":\"x\",\"quantity\":1}]}",
            "variant_id");
    refused("{" HEAD "\"currency\":\"EUR\",\"items\":[{\"product_id\":7}]}",
            "quantity");
    refused("{" HEAD "\"currency\":\"EUR\",\"items\":[{\"product_id\":7,"
            "\"quantity\":0}]}",
            "quantity");
    refused("{" HEAD "\"currency\":\"EUR\",\"items\":[{\"product_id\":7,"
            "\"quantity\":10001}]}",
            "quantity");
    refused("{" HEAD "\"currency\":\"EUR\",\"items\":[{\"product_id\":7,"
            "\"quantity\":\"2\"}]}",
            "quantity");
    refused("{" HEAD "\"currency\":\"EUR\",\"items\":[{\"product_id\":7,"
            "\"quantity\":1,\"unit_price_cents\":-1}]}",
            "unit_price_cents");
    /* 101 lines */
    n = (size_t)snprintf(body, sizeof(body),
                         "{" HEAD "\"currency\":\"EUR\",\"items\":[");
    for (i = 0; i < 101; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "%s{\"product_id\":%d,\"quantity\":1}",
                              i ? "," : "", i + 1);
    snprintf(body + n, sizeof(body) - n, "]}");
    refused(body, "items");
}
END_TEST

START_TEST(test_aggregation_sums_and_sorts)
{
    checkout_line_t lines[] = {
        {9, 0, 1, -1},  {7, 72, 2, -1}, {7, 0, 3, 100},
        {7, 71, 4, -1}, {9, 0, 5, -1},  {7, 0, 6, 100},
    };
    checkout_group_t g[CHECKOUT_MAX_LINES];
    int n = checkout_aggregate(lines, 6, g);

    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(g[0].product_id, 7);
    ck_assert_int_eq(g[0].variant_id, 0);
    ck_assert_int_eq(g[0].quantity, 9);
    ck_assert_int_eq(g[0].quoted_cents, 100);
    ck_assert_int_eq(g[0].quote_mixed, 0);
    ck_assert_int_eq(g[1].variant_id, 71);
    ck_assert_int_eq(g[1].quantity, 4);
    ck_assert_int_eq(g[2].variant_id, 72);
    ck_assert_int_eq(g[3].product_id, 9);
    ck_assert_int_eq(g[3].quantity, 6);
    ck_assert_int_eq(g[3].quoted_cents, -1);
}
END_TEST

START_TEST(test_aggregation_quotes)
{
    checkout_line_t lines[] = {
        {1, 0, 1, -1}, {1, 0, 1, 50}, {1, 0, 1, -1}, /* one quote */
        {2, 0, 1, 50}, {2, 0, 1, 60},                /* two different */
        {3, 0, 1, 70}, {3, 0, 1, 70},                /* two equal */
    };
    checkout_group_t g[CHECKOUT_MAX_LINES];

    ck_assert_int_eq(checkout_aggregate(lines, 7, g), 3);
    ck_assert_int_eq(g[0].quoted_cents, 50);
    ck_assert_int_eq(g[0].quote_mixed, 0);
    ck_assert_int_eq(g[1].quote_mixed, 1);
    ck_assert_int_eq(g[2].quoted_cents, 70);
    ck_assert_int_eq(g[2].quote_mixed, 0);
}
END_TEST

START_TEST(test_aggregation_max_quantity)
{
    checkout_line_t lines[CHECKOUT_MAX_LINES];
    checkout_group_t g[CHECKOUT_MAX_LINES];

    for (int i = 0; i < CHECKOUT_MAX_LINES; i++)
        lines[i] = (checkout_line_t){5, 0, CHECKOUT_MAX_QTY, -1};
    ck_assert_int_eq(checkout_aggregate(lines, CHECKOUT_MAX_LINES, g), 1);
    ck_assert_int_eq(g[0].quantity,
                     (int64_t)CHECKOUT_MAX_LINES * CHECKOUT_MAX_QTY);
}
END_TEST

/* a command of one group per line given, already in order */
static void
one_cmd(checkout_cmd_t *c, const checkout_group_t *groups, int n)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->currency, "EUR");
    c->ngroups = n;
    memcpy(c->groups, groups, sizeof(*groups) * (size_t)n);
}

static checkout_state_t
simple_state(int64_t price, int64_t stock)
{
    checkout_state_t s;

    memset(&s, 0, sizeof(s));
    s.product_found = 1;
    strcpy(s.currency, "EUR");
    s.price_known = 1;
    s.price_cents = price;
    s.stock = stock;
    return s;
}

static checkout_state_t
variant_state(int64_t product_id, int64_t price, int64_t stock)
{
    checkout_state_t s = simple_state(price, stock);

    s.product_is_variant = 1;
    s.variant_found = 1;
    s.variant_product_id = product_id;
    return s;
}

static const char *
check_one(const checkout_group_t *g, const checkout_state_t *s,
          json_t **details)
{
    checkout_cmd_t c;

    one_cmd(&c, g, 1);
    return checkout_check(&c, s, details);
}

START_TEST(test_check_each_reason)
{
    checkout_group_t simple = {7, 0, 2, -1, 0};
    checkout_group_t variant = {8, 81, 2, -1, 0};
    checkout_state_t s;
    json_t *d;

    s = simple_state(100, 2);
    ck_assert_ptr_null(check_one(&simple, &s, &d));
    ck_assert_ptr_null(d);
    s = variant_state(8, 100, 2);
    ck_assert_ptr_null(check_one(&variant, &s, &d));

#define EXPECT(g, state_expr, reason)                                          \
    do {                                                                       \
        s = state_expr;                                                        \
        ck_assert_str_eq(check_one(&(g), &s, &d), reason);                     \
        ck_assert_ptr_nonnull(json_object_get(d, "lines"));                    \
        json_decref(d);                                                        \
    } while (0)

    memset(&s, 0, sizeof(s));
    EXPECT(simple, s, "product_not_found");
    s = simple_state(100, 2);
    s.product_deleted = 1;
    EXPECT(simple, s, "product_deleted");
    s = variant_state(8, 100, 2);
    s.variant_deleted = 1;
    EXPECT(variant, s, "product_deleted");
    s = variant_state(8, 100, 2);
    EXPECT(simple, s, "variant_required");
    s = variant_state(8, 100, 2);
    s.variant_found = 0;
    EXPECT(variant, s, "variant_not_found");
    /* a variant of another product */
    EXPECT(variant, variant_state(9, 100, 2), "variant_not_found");
    /* a variant named for a simple product */
    s = simple_state(100, 2);
    s.variant_found = 1;
    s.variant_product_id = 8;
    EXPECT(variant, s, "variant_not_found");
    s = simple_state(100, 2);
    s.price_known = 0;
    EXPECT(simple, s, "price_missing");
    s = simple_state(100, 2);
    strcpy(s.currency, "USD");
    EXPECT(simple, s, "currency_mismatch");
    EXPECT(simple, simple_state(100, 1), "insufficient_stock");
    {
        checkout_group_t quoted = {7, 0, 1, 90, 0};

        EXPECT(quoted, simple_state(100, 5), "price_changed");
        quoted.quoted_cents = 100;
        s = simple_state(100, 5);
        ck_assert_ptr_null(check_one(&quoted, &s, &d));
        quoted.quote_mixed = 1;
        EXPECT(quoted, simple_state(100, 5), "price_changed");
    }
#undef EXPECT
}
END_TEST

START_TEST(test_check_precedence_and_details)
{
    checkout_group_t g[3] = {
        {1, 0, 5, 90, 0}, /* price changed and short */
        {2, 0, 3, -1, 0}, /* short */
        {3, 0, 9, -1, 0}, /* short */
    };
    checkout_state_t s[3];
    checkout_cmd_t c;
    json_t *d, *lines, *l;
    const char *reason;

    one_cmd(&c, g, 3);
    s[0] = simple_state(100, 1);
    s[1] = simple_state(100, 2);
    s[2] = simple_state(100, 20);
    /* the most fundamental reason wins: price_changed, on line 1 only */
    reason = checkout_check(&c, s, &d);
    ck_assert_str_eq(reason, "price_changed");
    lines = json_object_get(d, "lines");
    ck_assert_int_eq(json_array_size(lines), 1);
    l = json_array_get(lines, 0);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "quoted")), 90);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "current")), 100);
    json_decref(d);
    /* quote fixed: every short line is listed */
    c.groups[0].quoted_cents = 100;
    reason = checkout_check(&c, s, &d);
    ck_assert_str_eq(reason, "insufficient_stock");
    lines = json_object_get(d, "lines");
    ck_assert_int_eq(json_array_size(lines), 2);
    l = json_array_get(lines, 1);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "product_id")), 2);
    ck_assert(json_is_null(json_object_get(l, "variant_id")));
    ck_assert_int_eq(json_integer_value(json_object_get(l, "requested")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(l, "available")), 2);
    json_decref(d);
    /* a missing product anywhere outranks everything */
    memset(&s[2], 0, sizeof(s[2]));
    ck_assert_str_eq(checkout_check(&c, s, &d), "product_not_found");
    json_decref(d);
}
END_TEST

START_TEST(test_totals)
{
    checkout_group_t g[2] = {{7, 0, 2, -1, 0}, {8, 81, 1, -1, 0}};
    checkout_state_t s[2];
    checkout_cmd_t c;
    int64_t sub, tax, total;

    one_cmd(&c, g, 1);
    s[0] = simple_state(1192, 10);
    s[1] = variant_state(8, 250, 10);
    ck_assert_int_eq(checkout_totals(&c, s, 1900, &sub, &tax, &total), 0);
    ck_assert_int_eq(sub, 2384);
    ck_assert_int_eq(tax, 453);
    ck_assert_int_eq(total, 2837);
    one_cmd(&c, g, 2);
    ck_assert_int_eq(checkout_totals(&c, s, 0, &sub, &tax, &total), 0);
    ck_assert_int_eq(sub, 2634);
    ck_assert_int_eq(tax, 0);
    ck_assert_int_eq(total, 2634);
    /* price * quantity overflows */
    s[0].price_cents = INT64_MAX / 2 + 1;
    ck_assert_int_eq(checkout_totals(&c, s, 0, &sub, &tax, &total), -1);
    /* the sum of lines overflows */
    s[0].price_cents = INT64_MAX / 2;
    s[1].price_cents = 2;
    ck_assert_int_eq(checkout_totals(&c, s, 0, &sub, &tax, &total), -1);
    /* subtotal fits, total with tax does not */
    one_cmd(&c, g, 1);
    s[0].price_cents = INT64_MAX / 2 - 10;
    ck_assert_int_eq(checkout_totals(&c, s, 0, &sub, &tax, &total), 0);
    ck_assert_int_eq(total, INT64_MAX - 21);
    ck_assert_int_eq(checkout_totals(&c, s, 1, &sub, &tax, &total), -1);
}
END_TEST

static Suite *
checkout_parse_suite(void)
{
    Suite *s = suite_create("checkout_parse");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"valid", test_valid_checkout},
        {"invalid", test_invalid_checkouts},
        {"aggregation", test_aggregation_sums_and_sorts},
        {"aggregation_quotes", test_aggregation_quotes},
        {"aggregation_max", test_aggregation_max_quantity},
        {"check_reasons", test_check_each_reason},
        {"check_precedence", test_check_precedence_and_details},
        {"totals", test_totals},
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
    SRunner *sr = srunner_create(checkout_parse_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
