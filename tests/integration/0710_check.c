/* 0710_check: `orderd check` finds every invariant it checks broken: each
 * one is corrupted once with raw SQL, as the schema owner, in a fresh
 * database that commands built (the guard trigger or a CHECK constraint
 * set aside where it would refuse the corruption), and check exits 1
 * naming the violation; on the clean database it exits 0.
 *
 * DESIGN: the fault tests run check only on healthy databases, where a
 * check that never fires would pass too. Each corruption here breaks one
 * invariant and leaves the others true, so the test also pins that check
 * reports exactly that one. */
#include <errno.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "catalogue_fixture.h"

#define O1 "00000000-0000-4000-8710-000000000001"

static db_t *db;
static char conninfo[1024];
static char number[32]; /* O1's order number */

/* A catalogue and one order, all through commands: product 1 (simple,
 * stock 10), product 2 with variant 21 (stock 5), O1 taking 2 of product 1
 * and 1 of variant 21, taxed at 19 %. */
static void
setup(void)
{
    db = itest_fresh_db("check", conninfo, sizeof(conninfo));
    fx_expect(fx_simple(db, 1, "v1", 1000, 10, -1), "applied", NULL);
    fx_expect(fx_variant(db, 2, "v1",
                         "[{\"variant_id\":21,\"name\":\"red\",\"sku\":"
                         "\"SKU-2-R\",\"price_cents\":333,\"stock\":5}]"),
              "applied", NULL);
    fx_expect(fx_cmd(db, "tax_rate_set", "admin", "root",
                     "\"country\":\"DE\",\"rate_bps\":1900"),
              "applied", NULL);
    fx_expect(fx_checkout(db, O1, "DE",
                          "[{\"product_id\":1,\"quantity\":2},"
                          "{\"product_id\":2,\"variant_id\":21,"
                          "\"quantity\":1}]"),
              "applied", NULL);
    itest_text(db, "SELECT number FROM orders WHERE id = '" O1 "'", number,
               sizeof(number));
}

static void
teardown(void)
{
    db_destroy(db);
}

/* Runs `orderd check` on the test database; returns its exit status and
 * its output in out (caller frees). */
static int
run_check(char **out)
{
    const char *bin = getenv("ORDERD_BIN");
    int pipefd[2], status;
    size_t len = 0, cap = 8192;
    ssize_t r;
    char *buf = malloc(cap);
    pid_t pid;

    ck_assert_msg(bin != NULL, "ORDERD_BIN is not set (ctest sets it)");
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pipe(pipefd), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* the connection string through the environment, never argv */
        setenv("ORDERD_PG", conninfo, 1);
        dup2(pipefd[1], STDOUT_FILENO);
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        execl(bin, bin, "check", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    while ((r = read(pipefd[0], buf + len, cap - len - 1)) > 0) {
        len += (size_t)r;
        if (cap - len < 1024) {
            buf = realloc(buf, cap *= 2);
            ck_assert_ptr_nonnull(buf);
        }
    }
    buf[len] = '\0';
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0)
        ck_assert_int_eq(errno, EINTR);
    *out = buf;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* check exits 1, reports the invariant `name` VIOLATED with a line
 * containing `what`, and counts exactly `n` violations. */
static void
expect_violation(const char *name, const char *what, int n)
{
    char *out = NULL, line[256], count[32];
    int rc = run_check(&out);

    snprintf(line, sizeof(line), "%-52s VIOLATED", name);
    snprintf(count, sizeof(count), "\n%d violation(s)\n", n);
    ck_assert_msg(rc == 1, "orderd check exited %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, line) != NULL, "'%s' not VIOLATED:\n%s", name,
                  out);
    ck_assert_msg(strstr(out, what) != NULL, "no '%s' in:\n%s", what, out);
    ck_assert_msg(strstr(out, count) != NULL, "not %d violation(s):\n%s", n,
                  out);
    free(out);
}

START_TEST(test_clean_database_passes)
{
    char *out = NULL;
    int rc;

    /* and after the order's life goes on through commands */
    fx_expect(fx_cmd(db, "pay", "payment", "psp",
                     "\"order_id\":\"" O1 "\",\"payment_id\":\"pi-1\","
                     "\"amount_cents\":2776,\"currency\":\"EUR\""),
              "applied", NULL);
    fx_expect(fx_cmd(db, "cancel", "admin", "root", "\"order_id\":\"" O1 "\""),
              "applied", NULL);
    rc = run_check(&out);
    ck_assert_msg(rc == 0, "orderd check exited %d:\n%s", rc, out);
    ck_assert_ptr_nonnull(strstr(out, "all invariants hold"));
    ck_assert_ptr_null(strstr(out, "VIOLATED"));
    free(out);
}
END_TEST

START_TEST(test_product_stock_off_its_ledger)
{
    itest_owner_exec("check",
                     "UPDATE products SET stock = stock + 1 WHERE id = 1");
    expect_violation("stock equals the sum of its ledger (products)",
                     "product 1: stock 9, ledger 8", 1);
}
END_TEST

START_TEST(test_variant_stock_off_its_ledger)
{
    itest_owner_exec("check", "UPDATE product_variants SET stock = stock - 1"
                              " WHERE id = 21");
    expect_violation("stock equals the sum of its ledger (variants)",
                     "variant 21 of product 2: stock 3, ledger 4", 1);
}
END_TEST

START_TEST(test_ledger_row_names_unknown_product)
{
    int64_t id;

    /* delta 0: the row breaks no stock sum, only the reference */
    itest_owner_exec("check",
                     "INSERT INTO stock_ledger (product_id, variant_id, delta,"
                     " reason, dedup_key, source) VALUES"
                     " (99, NULL, 0, 'adjust', 'corrupt', 'default')");
    id = itest_int(db, "SELECT max(id) FROM stock_ledger");
    {
        char what[128];

        snprintf(what, sizeof(what),
                 "ledger row %lld names unknown product 99 variant ",
                 (long long)id);
        expect_violation("ledger rows name an existing product or variant",
                         what, 1);
    }
}
END_TEST

START_TEST(test_ledger_row_names_another_products_variant)
{
    /* variant 21 exists, but belongs to product 2 */
    itest_owner_exec("check",
                     "INSERT INTO stock_ledger (product_id, variant_id, delta,"
                     " reason, dedup_key, source) VALUES"
                     " (1, 21, 0, 'adjust', 'corrupt', 'default')");
    expect_violation("ledger rows name an existing product or variant",
                     "names unknown product 1 variant 21", 1);
}
END_TEST

START_TEST(test_negative_stock)
{
    /* the CHECK constraint would refuse it; the ledger follows the stock,
     * so only the sign is wrong */
    itest_owner_exec(
        "check", "ALTER TABLE products DROP CONSTRAINT products_stock_check");
    itest_owner_exec("check",
                     "UPDATE products SET stock = -1 WHERE id = 1;"
                     "INSERT INTO stock_ledger (product_id, variant_id, delta,"
                     " reason, dedup_key, source) VALUES"
                     " (1, NULL, -9, 'adjust', 'corrupt', 'default')");
    expect_violation("no negative stock", "product 1 has stock -1", 1);
}
END_TEST

START_TEST(test_negative_variant_stock)
{
    itest_owner_exec("check", "ALTER TABLE product_variants"
                              " DROP CONSTRAINT product_variants_stock_check");
    itest_owner_exec("check",
                     "UPDATE product_variants SET stock = -2 WHERE id = 21;"
                     "INSERT INTO stock_ledger (product_id, variant_id, delta,"
                     " reason, dedup_key, source) VALUES"
                     " (2, 21, -6, 'adjust', 'corrupt', 'default')");
    expect_violation("no negative stock", "variant 21 has stock -2", 1);
}
END_TEST

static void
orders_unguarded(const char *sql)
{
    /* the guard refuses any change of totals: set it aside for this one */
    itest_owner_exec("check",
                     "ALTER TABLE orders DISABLE TRIGGER orders_guard");
    itest_owner_exec("check", sql);
    itest_owner_exec("check", "ALTER TABLE orders ENABLE TRIGGER orders_guard");
}

START_TEST(test_total_is_not_subtotal_plus_tax)
{
    char what[128];

    orders_unguarded("UPDATE orders SET total_cents = total_cents + 1");
    /* 2 x 1000 + 333 = 2333, 19 %: 443 */
    snprintf(what, sizeof(what),
             "order %s: subtotal 2333 (items 2333), tax 443 (expected 443),"
             "  total 2777",
             number);
    expect_violation("order totals equal items plus tax", what, 1);
}
END_TEST

START_TEST(test_tax_is_not_the_rate_of_the_subtotal)
{
    char what[128];

    /* total still subtotal + tax: only the tax is wrong */
    orders_unguarded("UPDATE orders SET tax_cents = tax_cents + 1,"
                     " total_cents = total_cents + 1");
    snprintf(what, sizeof(what),
             "order %s: subtotal 2333 (items 2333), tax 444"
             " (expected 443)",
             number);
    expect_violation("order totals equal items plus tax", what, 1);
}
END_TEST

START_TEST(test_subtotal_is_not_the_items)
{
    char what[128];

    itest_owner_exec(
        "check", "UPDATE order_items SET quantity = 3 WHERE product_id = 1");
    snprintf(what, sizeof(what), "order %s: subtotal 2333 (items 3333)",
             number);
    expect_violation("order totals equal items plus tax", what, 1);
}
END_TEST

START_TEST(test_order_without_items)
{
    char what[128];

    itest_owner_exec("check",
                     "DELETE FROM order_items WHERE order_id = '" O1 "'");
    snprintf(what, sizeof(what), "order %s has no items", number);
    expect_violation("every order has items", what, 1);
}
END_TEST

START_TEST(test_history_ends_elsewhere)
{
    char what[128];

    fx_expect(fx_cmd(db, "pay", "payment", "psp",
                     "\"order_id\":\"" O1 "\",\"payment_id\":\"pi-1\","
                     "\"amount_cents\":2776,\"currency\":\"EUR\""),
              "applied", NULL);
    /* the pay's history row is lost */
    itest_owner_exec("check", "DELETE FROM order_status_history WHERE id ="
                              " (SELECT max(id) FROM order_status_history)");
    snprintf(what, sizeof(what),
             "order %s is paid but its history ends in"
             " pending",
             number);
    expect_violation("status history ends in the order's status", what, 1);
}
END_TEST

START_TEST(test_command_without_its_result)
{
    /* the checkout's result event is lost before it was published */
    itest_owner_exec("check", "DELETE FROM outbox WHERE event_id = (SELECT"
                              " result_event_id FROM processed_commands"
                              " WHERE command_type = 'checkout')");
    expect_violation("every processed command has its one result event",
                     "(applied) has 0 result events", 1);
}
END_TEST

static Suite *
check_suite(void)
{
    Suite *s = suite_create("check");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"clean", test_clean_database_passes},
        {"product_ledger", test_product_stock_off_its_ledger},
        {"variant_ledger", test_variant_stock_off_its_ledger},
        {"ledger_unknown_product", test_ledger_row_names_unknown_product},
        {"ledger_foreign_variant",
         test_ledger_row_names_another_products_variant},
        {"negative", test_negative_stock},
        {"negative_variant", test_negative_variant_stock},
        {"total", test_total_is_not_subtotal_plus_tax},
        {"tax", test_tax_is_not_the_rate_of_the_subtotal},
        {"subtotal", test_subtotal_is_not_the_items},
        {"no_items", test_order_without_items},
        {"history", test_history_ends_elsewhere},
        {"result_event", test_command_without_its_result},
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
    return itest_run(check_suite());
}
