/* test_catalogue_parse.c - parsing of product_upsert, product_delete,
 * stock_adjust and tax_rate_set: valid commands and each invalid case */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../handlers/catalogue.h"
#include "../../handlers/handlers.h"

typedef od_status_t (*parse_fn)(const json_t *, void **, char *, size_t);

/* Parses body (a JSON object literal); returns the struct or NULL, with
 * the error in err. */
static void *
parse(parse_fn fn, const char *body, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loads(body, 0, &jerr);
    void *out = NULL;
    od_status_t st;

    ck_assert_msg(root != NULL, "bad test JSON: %s: %s", body, jerr.text);
    err[0] = '\0';
    st = fn(root, &out, err, errlen);
    json_decref(root);
    if (st != OD_OK) {
        ck_assert_int_eq(st, OD_REJECT);
        ck_assert_msg(err[0] != '\0', "no error message for %s", body);
        ck_assert_ptr_null(out);
        return NULL;
    }
    return out;
}

/* Asserts that body is refused with an error mentioning needle. */
static void
refused(parse_fn fn, const char *body, const char *needle)
{
    char err[256];
    void *out = parse(fn, body, err, sizeof(err));

    ck_assert_msg(out == NULL, "accepted: %s", body);
    ck_assert_msg(strstr(err, needle) != NULL, "%s: error '%s' lacks '%s'",
                  body, err, needle);
}

#define SIMPLE_BASE                                                            \
    "\"product_id\":7,\"vendor_id\":\"vA\",\"name\":\"Mug\",\"sku\":"          \
    "\"MUG-1\",\"currency\":\"EUR\",\"kind\":\"simple\""
#define VARIANT_BASE                                                           \
    "\"product_id\":\"8\",\"vendor_id\":\"vB\",\"name\":\"Shirt\",\"sku\":"    \
    "\"SH\",\"currency\":\"USD\",\"kind\":\"variant\""
#define ONE_VARIANT                                                            \
    "[{\"variant_id\":81,\"name\":\"S\",\"sku\":\"SH-S\",\"price_cents\":5,"   \
    "\"stock\":1}]"

START_TEST(test_upsert_simple_valid)
{
    char err[256];
    product_upsert_cmd_t *c =
        parse(product_upsert_parse,
              "{" SIMPLE_BASE ",\"price_cents\":1192,\"stock\":10,"
              "\"low_stock_threshold\":3,\"extra\":true}",
              err, sizeof(err));

    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->product_id, 7);
    ck_assert_str_eq(c->vendor_id, "vA");
    ck_assert_str_eq(c->name, "Mug");
    ck_assert_str_eq(c->sku, "MUG-1");
    ck_assert_str_eq(c->currency, "EUR");
    ck_assert_int_eq(c->is_variant, 0);
    ck_assert_int_eq(c->price_cents, 1192);
    ck_assert_int_eq(c->stock, 10);
    ck_assert_int_eq(c->low_stock_threshold, 3);
    ck_assert_int_eq(c->nvariants, 0);
    ck_assert_ptr_null(product_upsert_order_id(c));
    free(c);
    /* price and threshold are optional */
    c = parse(product_upsert_parse, "{" SIMPLE_BASE ",\"stock\":0}", err,
              sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->price_cents, -1);
    ck_assert_int_eq(c->low_stock_threshold, -1);
    free(c);
}
END_TEST

START_TEST(test_upsert_variant_valid)
{
    char err[256];
    product_upsert_cmd_t *c = parse(
        product_upsert_parse,
        "{" VARIANT_BASE ",\"variants\":[{\"variant_id\":81,\"name\":\"S\","
        "\"sku\":\"SH-S\",\"price_cents\":5,\"stock\":1},{\"variant_id\":"
        "\"82\",\"name\":\"M\",\"sku\":\"SH-M\",\"stock\":0}]}",
        err, sizeof(err));

    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->product_id, 8);
    ck_assert_int_eq(c->is_variant, 1);
    ck_assert_int_eq(c->nvariants, 2);
    ck_assert_int_eq(c->variants[0].variant_id, 81);
    ck_assert_str_eq(c->variants[0].sku, "SH-S");
    ck_assert_int_eq(c->variants[0].price_cents, 5);
    ck_assert_int_eq(c->variants[1].variant_id, 82);
    ck_assert_int_eq(c->variants[1].price_cents, -1);
    ck_assert_int_eq(c->variants[1].stock, 0);
    free(c);
}
END_TEST

START_TEST(test_upsert_invalid)
{
    parse_fn f = product_upsert_parse;
    char many[16384];
    size_t n;
    int i;

    refused(f,
            "{\"vendor_id\":\"vA\",\"name\":\"M\",\"sku\":\"S\","
            "\"currency\":\"EUR\",\"kind\":\"simple\",\"stock\":1}",
            "product_id");
    refused(f, "{" SIMPLE_BASE ",\"stock\":1,\"product_id\":0}", "product_id");
    refused(f,
            "{\"product_id\":-3,\"vendor_id\":\"v\",\"name\":\"M\","
            "\"sku\":\"S\",\"currency\":\"EUR\",\"kind\":\"simple\","
            "\"stock\":1}",
            "product_id");
    refused(f,
            "{\"product_id\":1,\"name\":\"M\",\"sku\":\"S\","
            "\"currency\":\"EUR\",\"kind\":\"simple\",\"stock\":1}",
            "vendor_id");
    refused(f,
            "{\"product_id\":1,\"vendor_id\":\"v\",\"name\":\"\","
            "\"sku\":\"S\",\"currency\":\"EUR\",\"kind\":\"simple\","
            "\"stock\":1}",
            "name");
    refused(f,
            "{\"product_id\":1,\"vendor_id\":\"v\",\"name\":\"M\","
            "\"sku\":7,\"currency\":\"EUR\",\"kind\":\"simple\","
            "\"stock\":1}",
            "sku");
    refused(f,
            "{\"product_id\":1,\"vendor_id\":\"v\",\"name\":\"M\","
            "\"sku\":\"S\",\"currency\":\"eur\",\"kind\":\"simple\","
            "\"stock\":1}",
            "currency");
    refused(f,
            "{\"product_id\":1,\"vendor_id\":\"v\",\"name\":\"M\","
            "\"sku\":\"S\",\"currency\":\"EURO\",\"kind\":\"simple\","
            "\"stock\":1}",
            "currency");
    refused(f,
            "{\"product_id\":1,\"vendor_id\":\"v\",\"name\":\"M\","
            "\"sku\":\"S\",\"currency\":\"EUR\",\"kind\":\"bundle\","
            "\"stock\":1}",
            "kind");
    refused(f, "{" SIMPLE_BASE ",\"price_cents\":1}", "stock");
    refused(f, "{" SIMPLE_BASE ",\"stock\":-1}", "stock");
    refused(f, "{" SIMPLE_BASE ",\"stock\":1.5}", "stock");
    refused(f, "{" SIMPLE_BASE ",\"stock\":1,\"price_cents\":-1}",
            "price_cents");
    refused(f, "{" SIMPLE_BASE ",\"stock\":1,\"low_stock_threshold\":-1}",
            "low_stock_threshold");
    refused(f, "{" SIMPLE_BASE ",\"stock\":1,\"variants\":" ONE_VARIANT "}",
            "variants");
    refused(f, "{" VARIANT_BASE "}", "variants");
    refused(f, "{" VARIANT_BASE ",\"variants\":[]}", "variants");
    refused(f, "{" VARIANT_BASE ",\"variants\":{}}", "variants");
    refused(f, "{" VARIANT_BASE ",\"variants\":[7]}", "variants[0]");
    refused(f, "{" VARIANT_BASE ",\"stock\":1,\"variants\":" ONE_VARIANT "}",
            "stock");
    refused(f,
            "{" VARIANT_BASE ",\"price_cents\":1,\"variants\":" ONE_VARIANT "}",
            "price_cents");
    refused(f,
            "{" VARIANT_BASE ",\"variants\":[{\"name\":\"S\",\"sku\":\"S\","
            "\"stock\":1}]}",
            "variant_id");
    refused(f,
            "{" VARIANT_BASE ",\"variants\":[{\"variant_id\":1,\"sku\":\"S\","
            "\"stock\":1}]}",
            "name");
    refused(f,
            "{" VARIANT_BASE ",\"variants\":[{\"variant_id\":1,\"name\":\"S\","
            "\"stock\":1}]}",
            "sku");
    refused(f,
            "{" VARIANT_BASE ",\"variants\":[{\"variant_id\":1,\"name\":\"S\","
            "\"sku\":\"S\"}]}",
            "stock");
    refused(f,
            "{" VARIANT_BASE ",\"variants\":[{\"variant_id\":1,\"name\":\"S\","
            "\"sku\":\"S\",\"stock\":1,\"price_cents\":-5}]}",
            "price_cents");
    refused(f,
            "{" VARIANT_BASE ",\"variants\":[{\"variant_id\":1,\"name\":\"S\","
            "\"sku\":\"S\",\"stock\":1},{\"variant_id\":1,\"name\":\"T\","
            "\"sku\":\"T\",\"stock\":1}]}",
            "twice");
    /* 101 variants */
    n = (size_t)snprintf(many, sizeof(many),
                         "{" VARIANT_BASE ",\"variants\":[");
    for (i = 1; i <= 101; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n,
                              "%s{\"variant_id\":%d,\"name\":\"V\","
                              "\"sku\":\"V\",\"stock\":1}",
                              i > 1 ? "," : "", i);
    snprintf(many + n, sizeof(many) - n, "]}");
    refused(f, many, "variants");
}
END_TEST

START_TEST(test_upsert_name_length_limit)
{
    char body[1024], name[CATALOGUE_NAME_MAX + 2];
    char err[256];
    product_upsert_cmd_t *c;

    memset(name, 'n', sizeof(name) - 1);
    name[CATALOGUE_NAME_MAX] = '\0'; /* exactly the limit */
    snprintf(body, sizeof(body),
             "{\"product_id\":1,\"vendor_id\":\"v\",\"name\":\"%s\","
             "\"sku\":\"S\",\"currency\":\"EUR\",\"kind\":\"simple\","
             "\"stock\":1}",
             name);
    c = parse(product_upsert_parse, body, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    free(c);
    name[CATALOGUE_NAME_MAX] = 'n';
    name[CATALOGUE_NAME_MAX + 1] = '\0';
    snprintf(body, sizeof(body),
             "{\"product_id\":1,\"vendor_id\":\"v\",\"name\":\"%s\","
             "\"sku\":\"S\",\"currency\":\"EUR\",\"kind\":\"simple\","
             "\"stock\":1}",
             name);
    refused(product_upsert_parse, body, "name");
}
END_TEST

START_TEST(test_delete)
{
    char err[256];
    product_delete_cmd_t *c =
        parse(product_delete_parse, "{\"product_id\":42}", err, sizeof(err));

    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->product_id, 42);
    ck_assert_ptr_null(product_delete_order_id(c));
    free(c);
    refused(product_delete_parse, "{}", "product_id");
    refused(product_delete_parse, "{\"product_id\":\"x\"}", "product_id");
    refused(product_delete_parse, "{\"product_id\":0}", "product_id");
    refused(product_delete_parse, "{\"product_id\":true}", "product_id");
}
END_TEST

START_TEST(test_stock_adjust)
{
    char err[256];
    stock_adjust_cmd_t *c =
        parse(stock_adjust_parse,
              "{\"product_id\":5,\"variant_id\":51,\"delta\":-3,"
              "\"reason\":\"broken in transit\"}",
              err, sizeof(err));

    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->product_id, 5);
    ck_assert_int_eq(c->variant_id, 51);
    ck_assert_int_eq(c->delta, -3);
    ck_assert_str_eq(c->reason, "broken in transit");
    free(c);
    c = parse(stock_adjust_parse,
              "{\"product_id\":5,\"delta\":9223372036854775807,"
              "\"reason\":\"r\"}",
              err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(c->variant_id, 0);
    free(c);
    refused(stock_adjust_parse, "{\"delta\":1,\"reason\":\"r\"}", "product_id");
    refused(stock_adjust_parse,
            "{\"product_id\":5,\"variant_id\":0,\"delta\":1,\"reason\":\"r\"}",
            "variant_id");
    refused(stock_adjust_parse, "{\"product_id\":5,\"reason\":\"r\"}", "delta");
    refused(stock_adjust_parse,
            "{\"product_id\":5,\"delta\":0,\"reason\":\"r\"}", "delta");
    refused(stock_adjust_parse,
            "{\"product_id\":5,\"delta\":-9223372036854775808,"
            "\"reason\":\"r\"}",
            "delta");
    refused(stock_adjust_parse,
            "{\"product_id\":5,\"delta\":\"3\",\"reason\":\"r\"}", "delta");
    refused(stock_adjust_parse, "{\"product_id\":5,\"delta\":3}", "reason");
    refused(stock_adjust_parse,
            "{\"product_id\":5,\"delta\":3,\"reason\":\"\"}", "reason");
}
END_TEST

START_TEST(test_stock_adjust_reason_limit)
{
    char body[1024], reason[CATALOGUE_REASON_MAX + 2];

    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0'; /* one over the limit */
    snprintf(body, sizeof(body),
             "{\"product_id\":5,\"delta\":3,\"reason\":\"%s\"}", reason);
    refused(stock_adjust_parse, body, "reason");
}
END_TEST

START_TEST(test_tax_rate_set)
{
    char err[256];
    tax_rate_set_cmd_t *c =
        parse(tax_rate_set_parse, "{\"country\":\"DE\",\"rate_bps\":1900}", err,
              sizeof(err));

    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(c->country, "DE");
    ck_assert_int_eq(c->rate_bps, 1900);
    free(c);
    c = parse(tax_rate_set_parse, "{\"country\":\"US\",\"rate_bps\":0}", err,
              sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    free(c);
    c = parse(tax_rate_set_parse, "{\"country\":\"US\",\"rate_bps\":10000}",
              err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_ptr_null(tax_rate_set_order_id(c));
    free(c);
    refused(tax_rate_set_parse, "{\"rate_bps\":1}", "country");
    refused(tax_rate_set_parse, "{\"country\":\"de\",\"rate_bps\":1}",
            "country");
    refused(tax_rate_set_parse, "{\"country\":\"DEU\",\"rate_bps\":1}",
            "country");
    refused(tax_rate_set_parse, "{\"country\":\"D\",\"rate_bps\":1}",
            "country");
    refused(tax_rate_set_parse, "{\"country\":\"DE\"}", "rate_bps");
    refused(tax_rate_set_parse, "{\"country\":\"DE\",\"rate_bps\":-1}",
            "rate_bps");
    refused(tax_rate_set_parse, "{\"country\":\"DE\",\"rate_bps\":10001}",
            "rate_bps");
    refused(tax_rate_set_parse, "{\"country\":\"DE\",\"rate_bps\":19.5}",
            "rate_bps");
}
END_TEST

static Suite *
catalogue_parse_suite(void)
{
    Suite *s = suite_create("catalogue_parse");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"upsert_simple_valid", test_upsert_simple_valid},
        {"upsert_variant_valid", test_upsert_variant_valid},
        {"upsert_invalid", test_upsert_invalid},
        {"upsert_name_limit", test_upsert_name_length_limit},
        {"delete", test_delete},
        {"stock_adjust", test_stock_adjust},
        {"stock_adjust_reason_limit", test_stock_adjust_reason_limit},
        {"tax_rate_set", test_tax_rate_set},
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
    SRunner *sr = srunner_create(catalogue_parse_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
