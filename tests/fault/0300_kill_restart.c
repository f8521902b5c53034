/* 0300_kill_restart: the worker is SIGKILLed at random moments while it
 * drains a stream of mixed commands (checkouts, pays, cancels, producer
 * retries, poison), restarted each time, and finally drains everything.
 * Every command must be applied exactly once, every message must have
 * exactly one result, and the final stock and order statuses must equal an
 * independent model of the stream.
 *
 * ORDERD_FAULT_COMMANDS (default 20000) and ORDERD_FAULT_KILLS (default 10)
 * scale it. */
#include "../integration/ktest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PRODUCTS 24
#define PRICE 250
#define START_STOCK 400

typedef enum { O_NONE, O_PENDING, O_PAID, O_CANCELLED } ostate_t;

typedef struct model_order {
    int product;
    int qty;
    ostate_t state;
} model_order_t;

static ktest_t k;
static int64_t stock[PRODUCTS + 1];
static model_order_t *orders;
static int norders;
static char **sent;   /* every valid message, for producer retries */
static int *sent_key; /* ... and the product it was keyed by */
static int nsent, npoison, nmessages;

static unsigned int seed = 12345;

static int
rnd(int n)
{
    return (int)(rand_r(&seed) % (unsigned int)n);
}

static void
order_uuid(int i, char out[37])
{
    snprintf(out, 37, "00000000-0000-4000-8000-%012d", i);
}

static void
send_valid(int product, const char *msg)
{
    char key[16];

    snprintf(key, sizeof(key), "%d", product);
    ktest_send(&k, key, msg);
    sent_key[nsent] = product;
    sent[nsent++] = strdup(msg);
    nmessages++;
}

static void
gen_checkout(int product)
{
    char msg[512], id[37];
    int qty = 1 + rnd(3);
    int o = norders++;

    order_uuid(o, id);
    orders[o].product = product;
    orders[o].qty = qty;
    snprintf(msg, sizeof(msg),
             "{\"dedup_key\":\"co-%d\",\"type\":\"checkout\","
             "\"actor\":{\"role\":\"system\",\"id\":\"shop\"},"
             "\"order_id\":\"%s\",\"customer_id\":\"c%d\","
             "\"currency\":\"EUR\",\"items\":[{\"product_id\":%d,"
             "\"quantity\":%d}]}",
             o, id, o % 97, product, qty);
    send_valid(product, msg);
    /* the model: applied only if the stock is there */
    if (stock[product] >= qty) {
        stock[product] -= qty;
        orders[o].state = O_PENDING;
    }
}

static void
gen_pay_or_cancel(void)
{
    char msg[512], id[37];
    int o = rnd(norders);
    model_order_t *m = &orders[o];
    static int seq;

    order_uuid(o, id);
    if (rnd(3) > 0) {
        snprintf(msg, sizeof(msg),
                 "{\"dedup_key\":\"pay-%d\",\"type\":\"pay\","
                 "\"actor\":{\"role\":\"payment\",\"id\":\"gw\"},"
                 "\"order_id\":\"%s\",\"payment_id\":\"pi-%d\","
                 "\"amount_cents\":%d,\"currency\":\"EUR\"}",
                 seq++, id, o, PRICE * m->qty);
        if (m->state == O_PENDING)
            m->state = O_PAID;
    } else {
        snprintf(msg, sizeof(msg),
                 "{\"dedup_key\":\"cancel-%d\",\"type\":\"cancel\","
                 "\"actor\":{\"role\":\"system\",\"id\":\"shop\"},"
                 "\"order_id\":\"%s\"}",
                 seq++, id);
        if (m->state == O_PENDING || m->state == O_PAID) {
            m->state = O_CANCELLED;
            stock[m->product] += m->qty;
        }
    }
    /* same key as the checkout: the partition keeps them in order */
    send_valid(m->product, msg);
}

static void
generate(int total)
{
    char msg[512];

    for (int p = 1; p <= PRODUCTS; p++) {
        snprintf(msg, sizeof(msg),
                 "{\"dedup_key\":\"prod-%d\",\"type\":\"product_upsert\","
                 "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},"
                 "\"product_id\":%d,\"vendor_id\":\"v\",\"name\":\"P%d\","
                 "\"sku\":\"SKU-%d\",\"currency\":\"EUR\",\"kind\":"
                 "\"simple\",\"price_cents\":%d,\"stock\":%d}",
                 p, p, p, p, PRICE, START_STOCK);
        send_valid(p, msg);
        stock[p] = START_STOCK;
    }
    while (nmessages + npoison < total) {
        int r = rnd(100);

        if (r < 55 || norders == 0) {
            gen_checkout(1 + rnd(PRODUCTS));
        } else if (r < 93) {
            gen_pay_or_cancel();
        } else if (r < 98) {
            /* a producer retry of an earlier message: same key, same body */
            int i = rnd(nsent);
            char key[16];

            snprintf(key, sizeof(key), "%d", sent_key[i]);
            ktest_send(&k, key, sent[i]);
            nmessages++;
        } else {
            ktest_send(&k, "1", "\x01garbage that is not json");
            npoison++;
        }
    }
    ktest_flush(&k);
}

static int
env_int(const char *name, int def)
{
    const char *v = getenv(name);

    return v != NULL && atoi(v) > 0 ? atoi(v) : def;
}

START_TEST(test_sigkill_loop_applies_everything_exactly_once)
{
    int total = env_int("ORDERD_FAULT_COMMANDS", 20000);
    int kills = env_int("ORDERD_FAULT_KILLS", 10);
    const char *extra[] = {"-X", "session.timeout.ms=6000", NULL};
    const char *check[] = {"check", NULL};
    char sql[512], *out = NULL;
    pid_t w;
    int64_t done;

    orders = calloc((size_t)total, sizeof(*orders));
    sent = calloc((size_t)total + 1, sizeof(*sent));
    sent_key = calloc((size_t)total + 1, sizeof(*sent_key));
    generate(total);

    w = ktest_worker_start(&k, extra);
    for (int i = 1; i <= kills; i++) {
        /* a random moment inside the i-th slice of the stream */
        int64_t at =
            (int64_t)total * i / (kills + 1) + rnd(total / (kills + 1) / 2 + 1);

        for (;;) {
            int64_t now = itest_int(k.db, "SELECT COALESCE(sum(next_offset),"
                                          " 0) FROM consumer_offsets");

            if (now >= at)
                break;
            snprintf(sql, sizeof(sql),
                     "SELECT (COALESCE(sum(next_offset), 0) >= %lld)::int"
                     " FROM consumer_offsets",
                     (long long)at);
            ck_assert_msg(ktest_wait_sql(&k, sql, 1, 120) == 1,
                          "no progress past %lld messages", (long long)now);
        }
        ck_assert_int_eq(ktest_worker_stop(w, SIGKILL), 128 + SIGKILL);
        w = ktest_worker_start(&k, extra);
    }
    snprintf(sql, sizeof(sql),
             "SELECT COALESCE(sum(next_offset), 0) FROM consumer_offsets");
    done = ktest_wait_sql(&k, sql, total, 300);
    ck_assert_int_eq(done, total);
    ck_assert_int_eq(ktest_wait_sql(&k,
                                    "SELECT count(*) FROM outbox WHERE "
                                    "published_at IS NULL",
                                    0, 120),
                     0);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);

    /* one result per message, none twice, poison in the DLQ */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM outbox WHERE topic = '%s' AND"
             " convert_from(payload, 'UTF8')::jsonb->>'type' ="
             " 'command.result'",
             k.events);
    ck_assert_int_eq(itest_int(k.db, sql), nmessages);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE topic = '%s'"
             " AND convert_from(payload, 'UTF8')::jsonb->>'type' ="
             " 'command.result' GROUP BY"
             " convert_from(payload, 'UTF8')::jsonb->'source'"
             " HAVING count(*) > 1) x",
             k.events);
    ck_assert_int_eq(itest_int(k.db, sql), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox WHERE topic = '%s'",
             k.dlq);
    ck_assert_int_eq(itest_int(k.db, sql), npoison);
    /* every valid dedup key applied or rejected exactly once */
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM "
                                     "processed_commands"),
                     nsent);

    /* the independent model */
    for (int p = 1; p <= PRODUCTS; p++) {
        snprintf(sql, sizeof(sql), "SELECT stock FROM products WHERE id = %d",
                 p);
        ck_assert_msg(itest_int(k.db, sql) == stock[p],
                      "product %d: stock %lld, model %lld", p,
                      (long long)itest_int(k.db, sql), (long long)stock[p]);
    }
    for (int o = 0; o < norders; o++) {
        static const char *names[] = {"", "pending", "paid", "cancelled"};
        char id[37], got[32];

        order_uuid(o, id);
        snprintf(sql, sizeof(sql), "SELECT status FROM orders WHERE id = '%s'",
                 id);
        itest_text(k.db, sql, got, sizeof(got));
        ck_assert_msg(strcmp(got, names[orders[o].state]) == 0,
                      "order %d: status '%s', model '%s'", o, got,
                      names[orders[o].state]);
    }
    itest_assert_stock_matches_ledger(k.db);
    ck_assert_msg(ktest_cli(&k, check, &out) == 0, "orderd check: %s", out);
    free(out);

    /* and the events topic holds every result */
    ck_assert_int_eq(ktest_wait_results(&k, nmessages, 120), nmessages);
}
END_TEST

static void
setup(void)
{
    ktest_setup(&k, "kill_restart", 4);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

static Suite *
kill_suite(void)
{
    Suite *s = suite_create("kill_restart");
    TCase *tc = tcase_create("sigkill");

    tcase_set_timeout(tc, 900);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_sigkill_loop_applies_everything_exactly_once);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(kill_suite());
}
