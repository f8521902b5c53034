/* 0200_lifecycle: an order's life through the commands: the happy path to
 * refunded (with and without restock), every illegal move refused with
 * from/to, history rows, cancel and expire giving stock back exactly once */
#include "lifecycle_fixture.h"

#define O1 "00000000-0000-4000-8000-000000000001"
#define O2 "00000000-0000-4000-8000-000000000002"

static db_t *db;

static void
setup(void)
{
    db = itest_fresh_db("lifecycle", NULL, 0);
    lf_product(db, 1, "v1", 1000, 10);
    lf_product(db, 2, "v1", 250, 5);
    lf_variant_product(db, 3, "v1", 31, 700, 4);
}

static void
teardown(void)
{
    db_destroy(db);
}

/*
 * The one order written as raw SQL, as a checkout leaves it (totals from
 * the catalogue prices, no tax, stock taken with 'order' ledger rows, the
 * initial history row), for test_happy_path_refund_with_restock alone: it
 * counts the history rows whose key is an applied command's, 5 for the 5
 * transitions after pending, and only an order not made by a checkout
 * command has an initial row whose key no processed command holds. Every
 * other test (the same happy path without restock included) runs on an
 * order the checkout command made (lf_order).
 */
static void
order_by_sql(const char *order_id, const char *customer, const lf_line_t *lines,
             size_t n, const char *expires_at)
{
    int64_t total = 0;

    for (size_t i = 0; i < n; i++)
        total += lines[i].quantity *
                 (lines[i].variant_id
                      ? lf_intf(db,
                                "SELECT price_cents FROM product_variants"
                                " WHERE id = %" PRId64,
                                lines[i].variant_id)
                      : lf_intf(db,
                                "SELECT price_cents FROM products"
                                " WHERE id = %" PRId64,
                                lines[i].product_id));
    lf_execf(db,
             "INSERT INTO orders (id, number, customer_id, status, currency,"
             " subtotal_cents, tax_rate_bps, tax_cents, total_cents,"
             " dedup_key, source, created_at, expires_at) VALUES ('%s',"
             " 'ORD-' || lpad(nextval('order_number_seq')::text, 8, '0'),"
             " '%s', 'pending', 'EUR', %" PRId64 ", 0, 0, %" PRId64 ","
             " 'fixture-checkout-%s', 'fixture', now(), '%s');"
             "INSERT INTO order_status_history (order_id, from_status,"
             " to_status, actor_role, actor_id, dedup_key, source) VALUES"
             " ('%s', NULL, 'pending', 'customer', '%s',"
             " 'fixture-checkout-%s', 'fixture')",
             order_id, customer, total, total, order_id,
             expires_at ? expires_at : LF_EXPIRES_AT, order_id, customer,
             order_id);
    for (size_t i = 0; i < n; i++) {
        char vid[24] = "NULL";

        if (lines[i].variant_id)
            snprintf(vid, sizeof(vid), "%" PRId64, lines[i].variant_id);
        lf_execf(db,
                 "INSERT INTO order_items (order_id, line_no, product_id,"
                 " variant_id, vendor_id, sku, name, quantity,"
                 " unit_price_cents) SELECT '%s', %zu, p.id, %s, p.vendor_id,"
                 " p.sku, p.name, %" PRId64 ", COALESCE(v.price_cents,"
                 " p.price_cents) FROM products p LEFT JOIN product_variants v"
                 " ON v.id = %s WHERE p.id = %" PRId64 ";"
                 "INSERT INTO stock_ledger (product_id, variant_id, delta,"
                 " reason, order_id, dedup_key, source) VALUES (%" PRId64
                 ", %s, -%" PRId64 ", 'order', '%s', 'fixture-checkout-%s',"
                 " 'fixture')",
                 order_id, i + 1, vid, lines[i].quantity, vid,
                 lines[i].product_id, lines[i].product_id, vid,
                 lines[i].quantity, order_id, order_id);
        if (lines[i].variant_id)
            lf_execf(db,
                     "UPDATE product_variants SET stock = stock - %" PRId64
                     " WHERE id = %" PRId64,
                     lines[i].quantity, lines[i].variant_id);
        else
            lf_execf(db,
                     "UPDATE products SET stock = stock - %" PRId64
                     " WHERE id = %" PRId64,
                     lines[i].quantity, lines[i].product_id);
    }
}

/* applies a command that must succeed and returns the order's status as
 * the result event shows it */
static void
step(const char *type, const char *role, const char *actor, const char *fields,
     const char *want_status)
{
    json_t *ev = lf_cmd(db, type, role, actor, O1, fields);
    json_t *order = json_object_get(ev, "order");
    char buf[64];

    ck_assert_msg(strcmp(itest_outcome(ev), "applied") == 0, "%s: %s %s", type,
                  itest_outcome(ev), itest_reason(ev));
    ck_assert_str_eq(json_string_value(json_object_get(ev, "order_id")), O1);
    ck_assert_str_eq(json_string_value(json_object_get(order, "status")),
                     want_status);
    ck_assert_str_eq(lf_status(db, O1, buf, sizeof(buf)), want_status);
    json_decref(ev);
    itest_assert_stock_matches_ledger(db);
}

static void
happy_path_to_delivered(int by_sql)
{
    static const lf_line_t lines[] = {{1, 0, 2}, {2, 0, 1}, {3, 31, 3}};
    json_t *ev;
    char buf[256];

    if (by_sql)
        order_by_sql(O1, "c1", lines, 3, NULL);
    else
        lf_order(db, O1, "c1", lines, 3, NULL);
    ck_assert_int_eq(lf_stock(db, 1), 8);
    itest_assert_stock_matches_ledger(db);

    ev = lf_pay(db, O1, "pi_1");
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "order"), "status")),
                     "paid");
    json_decref(ev);
    ck_assert_str_eq(lf_textf(db, buf, sizeof(buf),
                              "SELECT payment_id || ':' || paid_cents FROM"
                              " orders WHERE id = '" O1 "'"),
                     "pi_1:4350");
    step("start_processing", "vendor", "v1", "", "processing");
    step("ship", "vendor", "v1", ",\"tracking_number\":\"1Z-42\"", "shipped");
    ck_assert_str_eq(lf_textf(db, buf, sizeof(buf),
                              "SELECT tracking_number FROM orders"
                              " WHERE id = '" O1 "'"),
                     "1Z-42");
    step("deliver", "system", "carrier", "", "delivered");
    /* no stock moved since checkout */
    ck_assert_int_eq(lf_stock(db, 1), 8);
    ck_assert_int_eq(lf_stock(db, 2), 4);
    ck_assert_int_eq(
        lf_intf(db, "SELECT stock FROM product_variants WHERE id = 31"), 1);
}

START_TEST(test_happy_path_refund_with_restock)
{
    char buf[1024];

    happy_path_to_delivered(1);
    step("refund", "admin", "root", ",\"restock\":true", "refunded");
    ck_assert_int_eq(lf_stock(db, 1), 10);
    ck_assert_int_eq(lf_stock(db, 2), 5);
    ck_assert_int_eq(
        lf_intf(db, "SELECT stock FROM product_variants WHERE id = 31"), 4);
    ck_assert_str_eq(
        lf_textf(db, buf, sizeof(buf),
                 "SELECT string_agg(product_id || '/' ||"
                 " COALESCE(variant_id::text, '-') || '/' || delta, ','"
                 " ORDER BY product_id) FROM stock_ledger"
                 " WHERE reason = 'refund' AND order_id = '" O1 "'"),
        "1/-/2,2/-/1,3/31/3");

    /* the whole story, in order, with who did what under which key */
    ck_assert_str_eq(
        lf_textf(db, buf, sizeof(buf),
                 "SELECT string_agg(COALESCE(from_status, '') || '>' ||"
                 " to_status || ' ' || actor_role || ':' || actor_id, ', '"
                 " ORDER BY id) FROM order_status_history"
                 " WHERE order_id = '" O1 "'"),
        ">pending customer:c1, pending>paid payment:psp,"
        " paid>processing vendor:v1, processing>shipped vendor:v1,"
        " shipped>delivered system:carrier, delivered>refunded admin:root");
    /* each transition row carries the dedup key of its own command */
    ck_assert_int_eq(
        lf_intf(db, "SELECT count(*) FROM order_status_history h JOIN"
                    " processed_commands p USING (dedup_key)"
                    " WHERE h.order_id = '" O1 "' AND p.outcome = 'applied'"
                    " AND p.order_id = h.order_id"),
        5);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_happy_path_refund_without_restock)
{
    happy_path_to_delivered(0);
    step("refund", "payment", "psp", ",\"restock\":false", "refunded");
    ck_assert_int_eq(lf_stock(db, 1), 8);
    ck_assert_int_eq(lf_stock(db, 2), 4);
    ck_assert_int_eq(lf_intf(db, "SELECT count(*) FROM stock_ledger"
                                 " WHERE reason = 'refund'"),
                     0);
    ck_assert_int_eq(lf_intf(db, "SELECT count(*) FROM order_status_history"
                                 " WHERE order_id = '" O1 "'"),
                     6);
    /* refunded is terminal: a second refund cannot restock after all */
    lf_expect(db, "refund", "admin", "root", O1, ",\"restock\":true",
              "rejected", "invalid_transition");
    ck_assert_int_eq(lf_stock(db, 1), 8);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

/* CONTRACT.md's state machine, written out for the test */
static int
contract_allows(const char *from, const char *to)
{
    static const char *const pairs[][2] = {
        {"pending", "paid"},         {"paid", "processing"},
        {"processing", "shipped"},   {"shipped", "delivered"},
        {"delivered", "refunded"},   {"pending", "cancelled"},
        {"pending", "expired"},      {"paid", "cancelled"},
        {"processing", "cancelled"},
    };

    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        if (strcmp(pairs[i][0], from) == 0 && strcmp(pairs[i][1], to) == 0)
            return 1;
    return 0;
}

START_TEST(test_every_illegal_transition_is_refused)
{
    static const char *const states[] = {"pending",   "paid",      "processing",
                                         "shipped",   "delivered", "refunded",
                                         "cancelled", "expired"};
    static const struct {
        const char *type, *to, *fields;
    } commands[] = {
        {"pay", "paid", NULL},
        {"start_processing", "processing", ""},
        {"ship", "shipped", ",\"tracking_number\":\"TN-2\""},
        {"deliver", "delivered", ""},
        {"refund", "refunded", ",\"restock\":true"},
        {"cancel", "cancelled", ""},
        {"expire", "expired", ""},
    };
    int refused = 0;

    for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++) {
        static const lf_line_t line[] = {{1, 0, 1}};
        char oid[40], buf[64];
        int64_t history, stock;

        snprintf(oid, sizeof(oid), "00000000-0000-4000-8000-0000000001%02zu",
                 s);
        lf_order(db, oid, "c1", line, 1, NULL);
        lf_drive(db, oid, states[s]);
        history = lf_intf(db,
                          "SELECT count(*) FROM order_status_history"
                          " WHERE order_id = '%s'",
                          oid);
        stock = lf_stock(db, 1);
        for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
            const char *want = "invalid_transition";
            int is_paid_or_later = strcmp(states[s], "paid") == 0 ||
                                   strcmp(states[s], "processing") == 0 ||
                                   strcmp(states[s], "shipped") == 0 ||
                                   strcmp(states[s], "delivered") == 0 ||
                                   strcmp(states[s], "refunded") == 0;
            json_t *ev;

            if (contract_allows(states[s], commands[c].to))
                continue;
            if (strcmp(commands[c].type, "pay") == 0 && is_paid_or_later)
                want = "already_paid";
            else if (strcmp(commands[c].type, "pay") == 0 &&
                     strcmp(states[s], "expired") == 0)
                want = "order_expired";
            else if (strcmp(commands[c].type, "cancel") == 0 &&
                     strcmp(states[s], "cancelled") == 0)
                want = "already_cancelled";
            ev = commands[c].fields == NULL
                     ? lf_pay(db, oid, "pay-again")
                     : lf_cmd_at(db, commands[c].type, "admin", "root", oid,
                                 commands[c].fields, "2095-01-01T00:00:00Z");
            ck_assert_msg(strcmp(itest_outcome(ev), "rejected") == 0 &&
                              strcmp(itest_reason(ev), want) == 0,
                          "%s on %s: %s %s, expected %s", commands[c].type,
                          states[s], itest_outcome(ev), itest_reason(ev), want);
            if (strcmp(want, "invalid_transition") == 0) {
                ck_assert_str_eq(lf_detail(ev, "from"), states[s]);
                ck_assert_str_eq(lf_detail(ev, "to"), commands[c].to);
            }
            /* the order as it still is travels with the refusal */
            ck_assert_str_eq(json_string_value(json_object_get(
                                 json_object_get(ev, "order"), "status")),
                             states[s]);
            json_decref(ev);
            ck_assert_str_eq(lf_status(db, oid, buf, sizeof(buf)), states[s]);
            ck_assert_int_eq(lf_intf(db,
                                     "SELECT count(*) FROM"
                                     " order_status_history"
                                     " WHERE order_id = '%s'",
                                     oid),
                             history);
            ck_assert_int_eq(lf_stock(db, 1), stock);
            refused++;
        }
    }
    /* 8 states x 7 commands - 9 legal moves */
    ck_assert_int_eq(refused, 8 * 7 - 9);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_cancel_restores_stock_once_from_each_status)
{
    static const char *const from[] = {"pending", "paid", "processing"};
    static const lf_line_t lines[] = {{1, 0, 3}, {2, 0, 2}, {3, 31, 1}};

    for (size_t i = 0; i < 3; i++) {
        char oid[40], buf[512];
        json_t *ev;

        snprintf(oid, sizeof(oid), "00000000-0000-4000-8000-0000000002%02zu",
                 i);
        lf_order(db, oid, "c1", lines, 3, NULL);
        lf_drive(db, oid, from[i]);
        ck_assert_int_eq(lf_stock(db, 1), 7);
        ev = lf_cmd(db, "cancel", "customer", "c1", oid,
                    ",\"reason\":\"changed my mind\"");
        ck_assert_str_eq(itest_outcome(ev), "applied");
        json_decref(ev);
        ck_assert_str_eq(lf_status(db, oid, buf, sizeof(buf)), "cancelled");
        ck_assert_int_eq(lf_stock(db, 1), 10);
        ck_assert_int_eq(lf_stock(db, 2), 5);
        ck_assert_int_eq(
            lf_intf(db, "SELECT stock FROM product_variants WHERE id = 31"), 4);
        ck_assert_str_eq(
            lf_textf(db, buf, sizeof(buf),
                     "SELECT string_agg(product_id || '/' || delta, ','"
                     " ORDER BY product_id) FROM stock_ledger"
                     " WHERE reason = 'cancel' AND order_id = '%s'",
                     oid),
            "1/3,2/2,3/1");
        ck_assert_str_eq(
            lf_textf(db, buf, sizeof(buf),
                     "SELECT from_status || '>' || to_status || ' ' ||"
                     " actor_role || ' ' || note FROM order_status_history"
                     " WHERE order_id = '%s' ORDER BY id DESC LIMIT 1",
                     oid),
            i == 0   ? "pending>cancelled customer changed my mind"
            : i == 1 ? "paid>cancelled customer changed my mind"
                     : "processing>cancelled customer changed my mind");
        /* money taken for an order that will not ship goes back */
        ck_assert_int_eq(lf_events(db, "payment.refund_required", oid),
                         i == 0 ? 0 : 1);
        if (i > 0) {
            json_t *p = lf_last_event(db, "payment.refund_required", oid);

            ck_assert_str_eq(
                json_string_value(json_object_get(p, "payment_id")),
                "pay-drive");
            ck_assert_int_eq(
                json_integer_value(json_object_get(p, "amount_cents")),
                3000 + 500 + 700);
            ck_assert_str_eq(json_string_value(json_object_get(p, "reason")),
                             "cancelled");
            json_decref(p);
        }
        itest_assert_stock_matches_ledger(db);
    }
}
END_TEST

START_TEST(test_double_cancel_restores_once)
{
    static const lf_line_t lines[] = {{1, 0, 4}, {2, 0, 1}};
    char buf[64];
    json_t *ev;

    lf_order(db, O2, "c1", lines, 2, NULL);
    lf_expect(db, "cancel", "admin", "root", O2, "", "applied", "");
    ev = lf_cmd(db, "cancel", "system", "sweeper", O2, "");
    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "already_cancelled");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "order"), "status")),
                     "cancelled");
    json_decref(ev);
    ck_assert_str_eq(lf_status(db, O2, buf, sizeof(buf)), "cancelled");
    ck_assert_int_eq(lf_stock(db, 1), 10);
    ck_assert_int_eq(lf_stock(db, 2), 5);
    /* one 'cancel' row per product, not two */
    ck_assert_int_eq(lf_intf(db, "SELECT count(*) FROM stock_ledger"
                                 " WHERE reason = 'cancel'"),
                     2);
    ck_assert_int_eq(lf_intf(db, "SELECT max(n) FROM (SELECT count(*) n"
                                 " FROM stock_ledger WHERE reason = 'cancel'"
                                 " GROUP BY product_id) x"),
                     1);
    ck_assert_int_eq(lf_intf(db, "SELECT count(*) FROM order_status_history"
                                 " WHERE order_id = '" O2 "'"),
                     2);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_expire_not_due_is_refused)
{
    static const lf_line_t lines[] = {{1, 0, 2}};
    char buf[64];
    json_t *ev;

    lf_order(db, O2, "c1", lines, 1, "2030-06-01T12:00:00Z");
    /* one second before the deadline, judged on the command's event time */
    ev = lf_cmd_at(db, "expire", "system", "scheduler", O2, "",
                   "2030-06-01T11:59:59Z");
    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "invalid_transition");
    ck_assert_str_eq(lf_detail(ev, "from"), "pending");
    ck_assert_str_eq(lf_detail(ev, "to"), "expired");
    ck_assert(json_is_true(
        json_object_get(json_object_get(ev, "details"), "not_due")));
    ck_assert_str_eq(lf_detail(ev, "expires_at"), "2030-06-01T12:00:00.000Z");
    json_decref(ev);
    /* and with no issued_at the event time is now, long before 2030 */
    lf_expect(db, "expire", "admin", "root", O2, "", "rejected",
              "invalid_transition");
    ck_assert_str_eq(lf_status(db, O2, buf, sizeof(buf)), "pending");
    ck_assert_int_eq(lf_stock(db, 1), 8);
    ck_assert_int_eq(lf_events(db, "order.expired", O2), 0);
    ck_assert_int_eq(lf_intf(db, "SELECT count(*) FROM stock_ledger"
                                 " WHERE reason = 'expire'"),
                     0);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

START_TEST(test_expire_due_restores_stock_and_announces)
{
    static const lf_line_t lines[] = {{1, 0, 2}, {3, 31, 2}};
    char buf[256], number[64];
    json_t *ev, *p;

    lf_order(db, O2, "c1", lines, 2, "2030-06-01T12:00:00Z");
    lf_textf(db, number, sizeof(number),
             "SELECT number FROM orders WHERE id = '" O2 "'");
    /* the deadline itself is due */
    ev = lf_cmd_at(db, "expire", "system", "scheduler", O2, "",
                   "2030-06-01T12:00:00Z");
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "order"), "status")),
                     "expired");
    json_decref(ev);
    ck_assert_str_eq(lf_status(db, O2, buf, sizeof(buf)), "expired");
    ck_assert_int_eq(lf_stock(db, 1), 10);
    ck_assert_int_eq(
        lf_intf(db, "SELECT stock FROM product_variants WHERE id = 31"), 4);
    ck_assert_str_eq(lf_textf(db, buf, sizeof(buf),
                              "SELECT string_agg(product_id || '/' || delta,"
                              " ',' ORDER BY product_id) FROM stock_ledger"
                              " WHERE reason = 'expire'"),
                     "1/2,3/2");
    ck_assert_int_eq(lf_events(db, "order.expired", O2), 1);
    p = lf_last_event(db, "order.expired", O2);
    ck_assert_str_eq(json_string_value(json_object_get(p, "order_id")), O2);
    ck_assert_str_eq(json_string_value(json_object_get(p, "number")), number);
    json_decref(p);
    ck_assert_str_eq(lf_textf(db, buf, sizeof(buf),
                              "SELECT from_status || '>' || to_status || ' '"
                              " || actor_role FROM order_status_history"
                              " WHERE order_id = '" O2 "'"
                              " ORDER BY id DESC LIMIT 1"),
                     "pending>expired system");

    /* a second expire (the scheduler racing itself) changes nothing */
    ev = lf_cmd_at(db, "expire", "system", "scheduler", O2, "",
                   "2030-06-01T12:05:00Z");
    ck_assert_str_eq(itest_reason(ev), "invalid_transition");
    ck_assert_str_eq(lf_detail(ev, "from"), "expired");
    json_decref(ev);
    ck_assert_int_eq(lf_stock(db, 1), 10);
    ck_assert_int_eq(lf_events(db, "order.expired", O2), 1);
    itest_assert_stock_matches_ledger(db);
}
END_TEST

static Suite *
lifecycle_suite(void)
{
    Suite *s = suite_create("lifecycle");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"happy_restock", test_happy_path_refund_with_restock},
        {"happy_no_restock", test_happy_path_refund_without_restock},
        {"illegal", test_every_illegal_transition_is_refused},
        {"cancel", test_cancel_restores_stock_once_from_each_status},
        {"double_cancel", test_double_cancel_restores_once},
        {"expire_not_due", test_expire_not_due_is_refused},
        {"expire_due", test_expire_due_restores_stock_and_announces},
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
    return itest_run(lifecycle_suite());
}
