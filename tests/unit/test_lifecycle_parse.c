/* test_lifecycle_parse.c - the lifecycle commands' parsers: what they
 * accept, what they refuse and why */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../handlers/handlers.h"
#include "../../handlers/order.h"

#define OID "6f1c0e0e-8a5e-4c1b-9a55-3f7a9d2c1e10"

typedef od_status_t (*parse_fn)(const json_t *, void **, char *, size_t);

/* Parses s with fn; returns the status, *out the struct (or NULL). */
static od_status_t
run_parse(parse_fn fn, const char *s, void **out, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
    od_status_t st;

    ck_assert_msg(root != NULL, "test JSON %s: %s", s, jerr.text);
    *out = NULL;
    err[0] = '\0';
    st = fn(root, out, err, errlen);
    json_decref(root);
    return st;
}

/* Every case must be refused with an error naming the field. */
static void
assert_refused(parse_fn fn, const char *json, const char *field)
{
    void *cmd;
    char err[256];

    ck_assert_msg(run_parse(fn, json, &cmd, err, sizeof(err)) == OD_REJECT,
                  "accepted: %s", json);
    ck_assert_ptr_null(cmd);
    ck_assert_msg(strstr(err, field) != NULL, "error '%s' for %s misses '%s'",
                  err, json, field);
}

static void *
assert_parsed(parse_fn fn, const char *json)
{
    void *cmd;
    char err[256];

    ck_assert_msg(run_parse(fn, json, &cmd, err, sizeof(err)) == OD_OK,
                  "refused %s: %s", json, err);
    ck_assert_ptr_nonnull(cmd);
    return cmd;
}

/* the order_id cases every lifecycle parser shares; rest is the
 * remainder of a valid body after the order_id */
static void
assert_order_id_rules(parse_fn fn, const char *rest)
{
    static const char *const bad[] = {
        "",
        "\"order_id\":null",
        "\"order_id\":\"\"",
        "\"order_id\":42",
        "\"order_id\":\"6f1c0e0e-8a5e-4c1b-9a55-3f7a9d2c1e1\"",
        "\"order_id\":\"6f1c0e0e8a5e4c1b9a553f7a9d2c1e10\"",
        "\"order_id\":\"6f1c0e0e-8a5e-4c1b-9a55-3f7a9d2c1e1g\"",
    };
    char buf[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        /* without an order_id, rest loses its leading comma */
        snprintf(buf, sizeof(buf), "{%s%s}", bad[i],
                 bad[i][0] == '\0' ? rest + 1 : rest);
        assert_refused(fn, buf, "order_id");
    }
}

START_TEST(test_pay_valid)
{
    pay_cmd_t *cmd = assert_parsed(
        pay_parse, "{\"order_id\":\"6F1C0E0E-8A5E-4C1B-9A55-3F7A9D2C1E10\","
                   "\"payment_id\":\"pi_123\",\"amount_cents\":2598,"
                   "\"currency\":\"EUR\",\"extra\":1}");

    ck_assert_str_eq(cmd->order_id, OID);
    ck_assert_str_eq(pay_order_id(cmd), OID);
    ck_assert_str_eq(cmd->payment_id, "pi_123");
    ck_assert_int_eq(cmd->amount_cents, 2598);
    ck_assert_str_eq(cmd->currency, "EUR");
    free(cmd);
    cmd = assert_parsed(pay_parse,
                        "{\"order_id\":\"" OID "\",\"payment_id\":\"p\","
                        "\"amount_cents\":0,\"currency\":\"USD\"}");
    ck_assert_int_eq(cmd->amount_cents, 0);
    free(cmd);
    cmd = assert_parsed(pay_parse,
                        "{\"order_id\":\"" OID "\",\"payment_id\":\"p\","
                        "\"amount_cents\":9223372036854775807,"
                        "\"currency\":\"USD\"}");
    ck_assert_int_eq(cmd->amount_cents, INT64_MAX);
    free(cmd);
}
END_TEST

START_TEST(test_pay_invalid)
{
    char long_id[160], buf[512];

    assert_order_id_rules(pay_parse, ",\"payment_id\":\"p\","
                                     "\"amount_cents\":1,\"currency\":\"EUR\"");
#define PAY(f) "{\"order_id\":\"" OID "\"," f "}"
    assert_refused(pay_parse, PAY("\"amount_cents\":1,\"currency\":\"EUR\""),
                   "payment_id");
    assert_refused(pay_parse,
                   PAY("\"payment_id\":\"\",\"amount_cents\":1,"
                       "\"currency\":\"EUR\""),
                   "payment_id");
    assert_refused(pay_parse,
                   PAY("\"payment_id\":7,\"amount_cents\":1,"
                       "\"currency\":\"EUR\""),
                   "payment_id");
    assert_refused(pay_parse,
                   PAY("\"payment_id\":\"a\\nb\","
                       "\"amount_cents\":1,\"currency\":\"EUR\""),
                   "payment_id");
    memset(long_id, 'x', 129);
    long_id[129] = '\0';
    snprintf(buf, sizeof(buf),
             PAY("\"payment_id\":\"%s\",\"amount_cents\":1,"
                 "\"currency\":\"EUR\""),
             long_id);
    assert_refused(pay_parse, buf, "payment_id");
    long_id[128] = '\0'; /* 128 characters is the limit, still fine */
    snprintf(buf, sizeof(buf),
             PAY("\"payment_id\":\"%s\",\"amount_cents\":1,"
                 "\"currency\":\"EUR\""),
             long_id);
    free(assert_parsed(pay_parse, buf));

    assert_refused(pay_parse, PAY("\"payment_id\":\"p\",\"currency\":\"EUR\""),
                   "amount_cents");
    assert_refused(pay_parse,
                   PAY("\"payment_id\":\"p\",\"amount_cents\":-1,"
                       "\"currency\":\"EUR\""),
                   "amount_cents");
    assert_refused(pay_parse,
                   PAY("\"payment_id\":\"p\",\"amount_cents\":1.5,"
                       "\"currency\":\"EUR\""),
                   "amount_cents");
    assert_refused(pay_parse,
                   PAY("\"payment_id\":\"p\","
                       "\"amount_cents\":\"100\","
                       "\"currency\":\"EUR\""),
                   "amount_cents");

    assert_refused(pay_parse, PAY("\"payment_id\":\"p\",\"amount_cents\":1"),
                   "currency");
    static const char *const currencies[] = {"\"eur\"", "\"EU\"", "\"EURO\"",
                                             "\"E1R\"", "978",    "\"\""};
    for (size_t i = 0; i < sizeof(currencies) / sizeof(currencies[0]); i++) {
        snprintf(buf, sizeof(buf),
                 PAY("\"payment_id\":\"p\",\"amount_cents\":1,"
                     "\"currency\":%s"),
                 currencies[i]);
        assert_refused(pay_parse, buf, "currency");
    }
#undef PAY
}
END_TEST

START_TEST(test_cancel)
{
    cancel_cmd_t *cmd;
    char buf[1024], reason[600];

    cmd = assert_parsed(cancel_parse, "{\"order_id\":\"" OID "\"}");
    ck_assert_str_eq(cancel_order_id(cmd), OID);
    ck_assert_str_eq(cmd->reason, "");
    free(cmd);
    cmd = assert_parsed(cancel_parse, "{\"order_id\":\"" OID "\","
                                      "\"reason\":\"changed my mind\"}");
    ck_assert_str_eq(cmd->reason, "changed my mind");
    free(cmd);

    assert_order_id_rules(cancel_parse, ",\"reason\":\"r\"");
    assert_refused(cancel_parse, "{\"order_id\":\"" OID "\",\"reason\":42}",
                   "reason");
    assert_refused(cancel_parse, "{\"order_id\":\"" OID "\",\"reason\":\"\"}",
                   "reason");
    memset(reason, 'r', ORDER_NOTE_MAX + 1);
    reason[ORDER_NOTE_MAX + 1] = '\0';
    snprintf(buf, sizeof(buf), "{\"order_id\":\"" OID "\",\"reason\":\"%s\"}",
             reason);
    assert_refused(cancel_parse, buf, "reason");
}
END_TEST

START_TEST(test_order_id_only_commands)
{
    static const struct {
        parse_fn parse;
        const char *(*order_id)(const void *);
    } types[] = {
        {start_processing_parse, start_processing_order_id},
        {deliver_parse, deliver_order_id},
        {expire_parse, expire_order_id},
    };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        void *cmd = assert_parsed(types[i].parse,
                                  "{\"order_id\":\"" OID "\",\"x\":[1]}");

        ck_assert_str_eq(types[i].order_id(cmd), OID);
        free(cmd);
        /* a trailing field keeps the shared cases well-formed JSON */
        assert_order_id_rules(types[i].parse, ",\"x\":1");
    }
}
END_TEST

START_TEST(test_ship)
{
    ship_cmd_t *cmd;
    char buf[512], tn[140];

    cmd = assert_parsed(ship_parse, "{\"order_id\":\"" OID "\","
                                    "\"tracking_number\":\"1Z999AA1\"}");
    ck_assert_str_eq(ship_order_id(cmd), OID);
    ck_assert_str_eq(cmd->tracking_number, "1Z999AA1");
    free(cmd);

    assert_order_id_rules(ship_parse, ",\"tracking_number\":\"t\"");
    assert_refused(ship_parse, "{\"order_id\":\"" OID "\"}", "tracking_number");
    assert_refused(ship_parse,
                   "{\"order_id\":\"" OID "\",\"tracking_number\":\"\"}",
                   "tracking_number");
    assert_refused(ship_parse,
                   "{\"order_id\":\"" OID "\",\"tracking_number\":123}",
                   "tracking_number");
    memset(tn, 't', 129);
    tn[129] = '\0';
    snprintf(buf, sizeof(buf),
             "{\"order_id\":\"" OID "\",\"tracking_number\":\"%s\"}", tn);
    assert_refused(ship_parse, buf, "tracking_number");
}
END_TEST

START_TEST(test_refund)
{
    refund_cmd_t *cmd;

    cmd = assert_parsed(refund_parse,
                        "{\"order_id\":\"" OID "\",\"restock\":true}");
    ck_assert_str_eq(refund_order_id(cmd), OID);
    ck_assert_int_eq(cmd->restock, 1);
    free(cmd);
    cmd = assert_parsed(refund_parse,
                        "{\"order_id\":\"" OID "\",\"restock\":false}");
    ck_assert_int_eq(cmd->restock, 0);
    free(cmd);

    assert_order_id_rules(refund_parse, ",\"restock\":true");
    assert_refused(refund_parse, "{\"order_id\":\"" OID "\"}", "restock");
    assert_refused(refund_parse, "{\"order_id\":\"" OID "\",\"restock\":null}",
                   "restock");
    assert_refused(refund_parse, "{\"order_id\":\"" OID "\",\"restock\":1}",
                   "restock");
    assert_refused(refund_parse,
                   "{\"order_id\":\"" OID "\",\"restock\":\"true\"}",
                   "restock");
}
END_TEST

static Suite *
lifecycle_parse_suite(void)
{
    Suite *s = suite_create("lifecycle_parse");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"pay_valid", test_pay_valid},
        {"pay_invalid", test_pay_invalid},
        {"cancel", test_cancel},
        {"order_id_only", test_order_id_only_commands},
        {"ship", test_ship},
        {"refund", test_refund},
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
    SRunner *sr = srunner_create(lifecycle_parse_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
