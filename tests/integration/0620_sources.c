/* 0620_sources: contract v2 through the per-command path: a topic's
 * commands claim only its roles, dedup identity is (source, dedup_key),
 * orderd's own keys cannot be taken, event time is bounded, and a pay that
 * does not pay its order always asks for a refund */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

#define O1 "6f1c0e0e-8a5e-4c1b-9a55-3f7a9d2c1e10"
#define O2 "6f1c0e0e-8a5e-4c1b-9a55-3f7a9d2c1e20"

static db_t *db;
static const od_source_t web = {"web", "orders.commands.web", ROLE_CUSTOMER};
static const od_source_t payments = {"payments", "orders.commands.payments",
                                     ROLE_PAYMENT};

static void
setup(void)
{
    json_t *ev;

    db = itest_fresh_db("0620_sources", NULL, 0);
    ev = itest_apply(db, "{\"dedup_key\":\"p1\",\"type\":\"product_upsert\","
                         "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},"
                         "\"product_id\":1,\"vendor_id\":\"v1\",\"name\":"
                         "\"Mug\",\"sku\":\"MUG\",\"currency\":\"EUR\","
                         "\"kind\":\"simple\",\"price_cents\":1000,"
                         "\"stock\":10}");
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
    ev = itest_apply(db, "{\"dedup_key\":\"tax-de\",\"type\":\"tax_rate_set\","
                         "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},"
                         "\"country\":\"DE\",\"rate_bps\":1900}");
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
}

static void
teardown(void)
{
    itest_assert_stock_matches_ledger(db);
    db_destroy(db);
}

static json_t *
checkout_from(const od_source_t *src, const char *key, const char *order_id)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd),
             "{\"dedup_key\":\"%s\",\"type\":\"checkout\",\"actor\":"
             "{\"role\":\"customer\",\"id\":\"c1\"},\"order_id\":\"%s\","
             "\"customer_id\":\"c1\",\"currency\":\"EUR\",\"tax_country\":"
             "\"DE\",\"items\":[{\"product_id\":1,\"quantity\":2}]}",
             key, order_id);
    return itest_apply_from(db, src, cmd);
}

static json_t *
pay_from(const od_source_t *src, const char *key, const char *order_id,
         const char *payment_id, int64_t amount)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd),
             "{\"dedup_key\":\"%s\",\"type\":\"pay\",\"actor\":{\"role\":"
             "\"payment\",\"id\":\"psp\"},\"order_id\":\"%s\","
             "\"payment_id\":\"%s\",\"amount_cents\":%lld,\"currency\":"
             "\"EUR\"}",
             key, order_id, payment_id, (long long)amount);
    return itest_apply_from(db, src, cmd);
}

static const char *
detail(const json_t *ev, const char *name)
{
    return json_string_value(
        json_object_get(json_object_get(ev, "details"), name));
}

static int64_t
refunds_for(const char *payment_id)
{
    char sql[256];

    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM outbox WHERE convert_from(payload, 'UTF8')"
             "::jsonb @> '{\"type\":\"payment.refund_required\","
             "\"payment_id\":\"%s\"}'",
             payment_id);
    return itest_int(db, sql);
}

START_TEST(test_a_role_the_topic_does_not_admit_is_unauthorized)
{
    json_t *ev = itest_apply_from(
        db, &web,
        "{\"dedup_key\":\"evil-tax\",\"type\":\"tax_rate_set\",\"actor\":"
        "{\"role\":\"admin\",\"id\":\"mallory\"},\"country\":\"DE\","
        "\"rate_bps\":0}");
    char buf[64];

    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "unauthorized");
    ck_assert_str_eq(detail(ev, "source"), "web");
    ck_assert_str_eq(detail(ev, "role"), "admin");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "source"), "name")),
                     "web");
    json_decref(ev);
    ck_assert_str_eq(itest_text(db,
                                "SELECT rate_bps FROM tax_rates"
                                " WHERE country = 'DE'",
                                buf, sizeof(buf)),
                     "1900");
    /* a payment claimed on the customers' topic changes nothing either */
    ev = checkout_from(&web, "co-1", O1);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
    ev = pay_from(&web, "fake-pay", O1, "pi_fake", 2380);
    ck_assert_str_eq(itest_reason(ev), "unauthorized");
    ck_assert_str_eq(detail(ev, "role"), "payment");
    json_decref(ev);
    ck_assert_str_eq(itest_text(db,
                                "SELECT status FROM orders WHERE id = '" O1 "'",
                                buf, sizeof(buf)),
                     "pending");
    ck_assert_int_eq(refunds_for("pi_fake"), 0);
}
END_TEST

START_TEST(test_dedup_identity_is_source_and_key)
{
    json_t *ev;
    char buf[64];

    /* a customer takes the key the payment bridge will use for its
     * webhook, before the bridge does */
    ev = checkout_from(&web, "pay:gw-evt-8812", O1);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
    /* the real payment under the same key, on its own source: applied */
    ev = pay_from(&payments, "pay:gw-evt-8812", O1, "pi_1", 2380);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "source"), "name")),
                     "payments");
    json_decref(ev);
    ck_assert_str_eq(itest_text(db,
                                "SELECT status FROM orders WHERE id = '" O1 "'",
                                buf, sizeof(buf)),
                     "paid");
    /* and on one source the v1 rules hold: same body duplicate, another
     * body dedup_key_reused, neither changes anything */
    ev = pay_from(&payments, "pay:gw-evt-8812", O1, "pi_1", 2380);
    ck_assert_str_eq(itest_outcome(ev), "duplicate");
    json_decref(ev);
    ev = pay_from(&payments, "pay:gw-evt-8812", O1, "pi_2", 2380);
    ck_assert_str_eq(itest_reason(ev), "dedup_key_reused");
    json_decref(ev);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM processed_commands"
                                   " WHERE dedup_key = 'pay:gw-evt-8812'"),
                     2);
    /* who did what is on the record */
    ck_assert_str_eq(itest_text(db,
                                "SELECT string_agg(source || ':' || to_status,"
                                " ',' ORDER BY id) FROM order_status_history"
                                " WHERE order_id = '" O1 "'",
                                buf, sizeof(buf)),
                     "web:pending,payments:paid");
    ck_assert_str_eq(itest_text(db,
                                "SELECT string_agg(DISTINCT source, ',')"
                                " FROM stock_ledger WHERE order_id = '" O1 "'",
                                buf, sizeof(buf)),
                     "web");
}
END_TEST

START_TEST(test_no_producer_can_take_an_expiry_key)
{
    json_t *ev;
    char buf[64], cmd[512];

    /* the customer knows the order id before checking out, and uses the
     * scheduler's key for it */
    ev = checkout_from(&web, "orderd-expire:" O2, O2);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 1"),
                     8);
    /* the expiry as the scheduler applies it: source orderd, the deadline
     * as event time */
    snprintf(cmd, sizeof(cmd),
             "{\"dedup_key\":\"orderd-expire:%s\",\"type\":\"expire\","
             "\"actor\":{\"role\":\"system\",\"id\":\"scheduler\"},"
             "\"issued_at\":\"%s\",\"order_id\":\"%s\"}",
             O2,
             itest_text(db,
                        "SELECT to_char(expires_at AT TIME ZONE 'UTC',"
                        " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM orders"
                        " WHERE id = '" O2 "'",
                        buf, sizeof(buf)),
             O2);
    ev = itest_apply_from(db, sources_orderd(), cmd);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
    ck_assert_str_eq(itest_text(db,
                                "SELECT status FROM orders WHERE id = '" O2 "'",
                                buf, sizeof(buf)),
                     "expired");
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 1"),
                     10);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM stock_ledger"
                                   " WHERE source = 'orderd' AND reason ="
                                   " 'expire' AND order_id = '" O2 "'"),
                     1);
}
END_TEST

START_TEST(test_event_time_is_bounded)
{
    apply_config_t saved = itest_cfg;
    json_t *ev;
    char cmd[512];

    itest_cfg.max_clock_skew_us = 5 * 60 * 1000000LL;
    itest_cfg.max_event_age_us = 72 * 3600 * 1000000LL;
    snprintf(cmd, sizeof(cmd),
             "{\"dedup_key\":\"co-future\",\"type\":\"checkout\",\"actor\":"
             "{\"role\":\"customer\",\"id\":\"c1\"},\"issued_at\":"
             "\"9999-12-31T00:00:00Z\",\"order_id\":\"%s\",\"customer_id\":"
             "\"c1\",\"currency\":\"EUR\",\"items\":[{\"product_id\":1,"
             "\"quantity\":1}]}",
             O1);
    ev = itest_apply_from(db, &web, cmd);
    ck_assert_str_eq(itest_reason(ev), "invalid_command");
    ck_assert_ptr_nonnull(strstr(detail(ev, "error"), "--max-clock-skew"));
    json_decref(ev);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM orders"), 0);
    ck_assert_int_eq(itest_int(db, "SELECT stock FROM products WHERE id = 1"),
                     10);

    snprintf(cmd, sizeof(cmd),
             "{\"dedup_key\":\"pay-backdated\",\"type\":\"pay\",\"actor\":"
             "{\"role\":\"payment\",\"id\":\"psp\"},\"issued_at\":"
             "\"2020-01-01T00:00:00Z\",\"order_id\":\"%s\",\"payment_id\":"
             "\"pi_b\",\"amount_cents\":1190,\"currency\":\"EUR\"}",
             O2);
    ev = itest_apply_from(db, &payments, cmd);
    ck_assert_str_eq(itest_reason(ev), "invalid_command");
    ck_assert_ptr_nonnull(strstr(detail(ev, "error"), "--max-event-age"));
    json_decref(ev);
    itest_cfg = saved;
}
END_TEST

START_TEST(test_a_pay_whose_order_never_comes_is_refunded_once)
{
    apply_config_t saved = itest_cfg;
    char err[512];
    json_t *ev;
    int n = 0;

    itest_cfg.defer_timeout_ms = 600000;
    ev = pay_from(&payments, "pay-lost", O2, "pi_lost", 2380);
    ck_assert_str_eq(itest_outcome(ev), "deferred");
    json_decref(ev);
    /* parked: no refund yet, the order may still come */
    ck_assert_int_eq(refunds_for("pi_lost"), 0);
    /* the timeout passes (dated back rather than waited for) */
    itest_exec(db, "UPDATE deferred_commands SET created_at = now() -"
                   " interval '11 minutes'");
    ck_assert_int_eq(db_begin(db, err, sizeof(err)), OD_OK);
    ck_assert_int_eq(
        apply_expire_deferred(db, &itest_cfg, &n, err, sizeof(err)), OD_OK);
    ck_assert_int_eq(db_commit(db, err, sizeof(err)), OD_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(itest_int(db,
                               "SELECT count(*) FROM processed_commands WHERE"
                               " source = 'payments' AND dedup_key = 'pay-lost'"
                               " AND reason = 'order_not_found'"),
                     1);
    ck_assert_int_eq(refunds_for("pi_lost"), 1);
    ck_assert_int_eq(itest_int(db,
                               "SELECT count(*) FROM outbox WHERE convert_from("
                               "payload, 'UTF8')::jsonb @> '{\"type\":"
                               "\"payment.refund_required\",\"payment_id\":"
                               "\"pi_lost\",\"amount_cents\":2380,\"reason\":"
                               "\"order_not_found\"}'"),
                     1);
    /* a later sweep and a redelivery change nothing */
    ck_assert_int_eq(db_begin(db, err, sizeof(err)), OD_OK);
    ck_assert_int_eq(
        apply_expire_deferred(db, &itest_cfg, &n, err, sizeof(err)), OD_OK);
    ck_assert_int_eq(db_commit(db, err, sizeof(err)), OD_OK);
    ck_assert_int_eq(n, 0);
    ev = pay_from(&payments, "pay-lost", O2, "pi_lost", 2380);
    ck_assert_str_eq(itest_outcome(ev), "duplicate");
    json_decref(ev);
    ck_assert_int_eq(refunds_for("pi_lost"), 1);

    /* with parking off, the refusal is immediate, with its refund */
    itest_cfg.defer_timeout_ms = 0;
    ev = pay_from(&payments, "pay-nowhere", O2, "pi_nowhere", 100);
    ck_assert_str_eq(itest_reason(ev), "order_not_found");
    json_decref(ev);
    ck_assert_int_eq(refunds_for("pi_nowhere"), 1);
    itest_cfg = saved;
}
END_TEST

START_TEST(test_a_mismatched_amount_is_refunded)
{
    json_t *ev = checkout_from(&web, "co-1", O1);

    json_decref(ev);
    ev = pay_from(&payments, "pay-short", O1, "pi_short", 100);
    ck_assert_str_eq(itest_reason(ev), "amount_mismatch");
    json_decref(ev);
    ck_assert_int_eq(refunds_for("pi_short"), 1);
    /* the order can still be paid, and that payment is kept */
    ev = pay_from(&payments, "pay-right", O1, "pi_right", 2380);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    json_decref(ev);
    ck_assert_int_eq(refunds_for("pi_right"), 0);
}
END_TEST

static Suite *
sources_suite(void)
{
    Suite *s = suite_create("0620_sources");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"unauthorized", test_a_role_the_topic_does_not_admit_is_unauthorized},
        {"dedup_identity", test_dedup_identity_is_source_and_key},
        {"expiry_key", test_no_producer_can_take_an_expiry_key},
        {"event_time", test_event_time_is_bounded},
        {"parked_pay_refund",
         test_a_pay_whose_order_never_comes_is_refunded_once},
        {"mismatch_refund", test_a_mismatched_amount_is_refunded},
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
    return itest_run(sources_suite());
}
