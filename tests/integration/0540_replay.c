/* 0540_replay: `orderd replay` re-reads the command stream without
 * changing anything. A stream of ~500 mixed commands (checkouts, pays,
 * cancels, refusals, producer retries, a reused dedup key, a poison
 * message) is applied; then:
 *   - --dry-run prints what a replay would meet and moves nothing;
 *   - --from-beginning while the worker runs: the stored offsets go back
 *     and return to the end; no table changes, no new result event (quiet);
 *   - --from-time (worker stopped) moves each partition back only to the
 *     first message at or after that time;
 *   - --from-beginning with the worker stopped, then started: same, and
 *     its counters tell the re-read duplicates from the reused key (the
 *     re-read batches parse identities alone and skip the fingerprint of
 *     a message re-read where it was first read);
 *   - --loud: the re-read messages get a result again (duplicate);
 *   - a command whose dedup row is gone is decided anew, alone. */
#include "0500_common.h"

#include "../fault/fault_model.h"

#include <signal.h>

#define PARTS 3
#define PRODUCTS 10
#define PRICE 330
#define STOCK 60
#define HALF 250

static ktest_t k;
static pid_t worker;
static unsigned int seed = 540;
static int norders, nmsgs, npoison, nreused;
static char **sent;
static char **sent_key;
static int nsent;
static int order_product[2 * HALF];
static int order_qty[2 * HALF];

static int
rnd(int n)
{
    return (int)(rand_r(&seed) % (unsigned int)n);
}

static void
setup(void)
{
    ktest_setup(&k, "replay", PARTS);
    sent = calloc(4 * HALF, sizeof(*sent));
    sent_key = calloc(4 * HALF, sizeof(*sent_key));
    worker = ktest_worker_start(&k, NULL);
}

static void
teardown(void)
{
    if (worker > 0)
        ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    worker = 0;
    for (int i = 0; i < nsent; i++) {
        free(sent[i]);
        free(sent_key[i]);
    }
    free(sent);
    free(sent_key);
    ktest_teardown(&k);
}

static void
send_keyed(int product, const char *msg)
{
    char key[16];

    snprintf(key, sizeof(key), "%d", product);
    ktest_send(&k, key, msg);
    sent_key[nsent] = strdup(key);
    sent[nsent++] = strdup(msg);
    nmsgs++;
}

/* n messages of a mixed stream */
static void
generate(int n)
{
    char msg[1024], key[32], id[37];
    int end = nmsgs + n;

    while (nmsgs < end) {
        int r = rnd(100);

        if (r < 45 || norders == 0) {
            int o = norders++;

            order_product[o] = 1 + rnd(PRODUCTS);
            order_qty[o] = 1 + rnd(3);
            x_uuid(540, o, id);
            snprintf(key, sizeof(key), "co-%d", o);
            x_checkout_json(msg, sizeof(msg), key, id, order_product[o],
                            order_qty[o], 0, 0);
            send_keyed(order_product[o], msg);
        } else if (r < 75) {
            int o = rnd(norders);

            x_uuid(540, o, id);
            snprintf(key, sizeof(key), "pay-%d", nmsgs);
            x_pay_json(msg, sizeof(msg), key, id, (int64_t)PRICE * order_qty[o],
                       0);
            send_keyed(order_product[o], msg);
        } else if (r < 88) {
            int o = rnd(norders);

            x_uuid(540, o, id);
            snprintf(msg, sizeof(msg),
                     "{\"dedup_key\":\"cancel-%d\",\"type\":\"cancel\","
                     "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},"
                     "\"order_id\":\"%s\"}",
                     nmsgs, id);
            send_keyed(order_product[o], msg);
        } else if (r < 94) {
            /* a producer retry: same key, same body */
            int i = rnd(nsent);

            ktest_send(&k, sent_key[i], sent[i]);
            nmsgs++;
        } else {
            /* refused: a customer may not adjust stock */
            int p = 1 + rnd(PRODUCTS);

            snprintf(msg, sizeof(msg),
                     "{\"dedup_key\":\"adj-%d\",\"type\":\"stock_adjust\","
                     "\"actor\":{\"role\":\"customer\",\"id\":\"c9\"},"
                     "\"product_id\":%d,\"delta\":5,\"reason\":\"x\"}",
                     nmsgs, p);
            send_keyed(p, msg);
        }
    }
}

static int64_t
results_in_outbox(void)
{
    return x_outbox_events(&k, "command.result", NULL);
}

static int64_t
outbox_rows(void)
{
    return x_intf(k.db, "SELECT count(*) FROM outbox");
}

/* waits until the worker has applied everything and published it */
static void
wait_drained(int64_t total)
{
    ck_assert_int_eq(x_waitf(&k, total, 120,
                             "SELECT COALESCE(sum(next_offset), 0) FROM"
                             " consumer_offsets WHERE grp = '%s'",
                             k.group),
                     total);
    ck_assert_int_eq(x_waitf(&k, 0, 60,
                             "SELECT count(*) FROM outbox"
                             " WHERE published_at IS NULL"),
                     0);
}

static int
replay(const char *a1, const char *a2, const char *a3, char **out)
{
    const char *args[] = {"replay", a1, a2, a3, NULL};

    return ktest_cli(&k, args, out);
}

/* command.result rows in the outbox for re-read messages that were
 * answered before (anything after the given outbox id) */
static int64_t
results_after(int64_t id)
{
    return x_intf(k.db,
                  "SELECT count(*) FROM outbox WHERE id > %lld AND topic = '%s'"
                  " AND convert_from(payload, 'UTF8')::jsonb->>'type' ="
                  " 'command.result'",
                  (long long)id, k.events);
}

static int64_t
last_outbox_id(void)
{
    return x_intf(k.db, "SELECT COALESCE(max(id), 0) FROM outbox");
}

/* A counter of the worker's /metrics reaches want (it is counted just
 * after the commit the drained offsets show) and stays there. */
static void
expect_counter(int port, const char *name, int64_t want)
{
    int64_t end = od_mono_us() + 10 * 1000000LL, v;

    while ((v = fm_metric(port, name)) < want && od_mono_us() < end) {
        struct timespec ts = {0, 20 * 1000 * 1000};

        nanosleep(&ts, NULL); /* polling the endpoint, bounded */
    }
    ck_assert_msg(v == want, "%s is %lld, expected %lld", name, (long long)v,
                  (long long)want);
}

START_TEST(test_replay_changes_nothing)
{
    char f0[64], f[64], off_half[256], off_end[256], off[256], buf[512];
    char at[40], *out = NULL;
    int64_t end, results0, rows0, mid_ms, total, last0;
    int64_t quiet_extra = 0, loud_results, loud_duplicates;

    /* first half, applied */
    for (int p = 1; p <= PRODUCTS; p++) {
        x_product_json(buf, sizeof(buf), p, PRICE, STOCK);
        send_keyed(p, buf);
    }
    generate(HALF);
    /* a poison message and a reused dedup key (another body) */
    ktest_send(&k, "1", "this is not json");
    npoison++;
    nmsgs++;
    x_product_json(buf, sizeof(buf), 1, PRICE + 1, STOCK);
    ktest_send(&k, "1", buf);
    nreused++;
    nmsgs++;
    ktest_flush(&k);
    wait_drained(nmsgs);
    x_offsets(&k, off_half, sizeof(off_half));

    /* the middle of the stream: every later message is stamped after it */
    mid_ms = od_now_us() / 1000 + 1;
    while (od_now_us() / 1000 <= mid_ms)
        ; /* at most a millisecond: the clock, not the worker */
    generate(HALF);
    ktest_flush(&k);
    total = nmsgs;
    wait_drained(total);
    x_fingerprint(k.db, f0, sizeof(f0));
    x_offsets(&k, off_end, sizeof(off_end));
    end = x_offsets_sum(&k);
    ck_assert_int_eq(end, total);
    results0 = results_in_outbox();
    rows0 = outbox_rows();
    ck_assert_int_eq(results0, total - npoison);
    ck_assert_int_gt(x_intf(k.db, "SELECT count(*) FROM orders"), 100);
    ck_assert_int_gt(x_intf(k.db, "SELECT count(*) FROM processed_commands"
                                  " WHERE outcome = 'rejected'"),
                     10);

    /* --dry-run: counts, and nothing moves */
    ck_assert_int_eq(replay("--from-beginning", "--dry-run", NULL, &out), 0);
    snprintf(buf, sizeof(buf),
             "dry run: 0 would apply, %d duplicates, %d conflicts "
             "(dedup_key_reused), 0 invalid, %d poison; nothing changed",
             (int)(total - npoison - nreused), nreused, npoison);
    ck_assert_msg(strstr(out, buf) != NULL, "expected '%s' in:\n%s", buf, out);
    free(out);
    ck_assert_str_eq(x_offsets(&k, off, sizeof(off)), off_end);
    ck_assert_int_eq(x_intf(k.db, "SELECT sum(replay_until) FROM"
                                  " consumer_offsets"),
                     0);
    ck_assert_int_eq(outbox_rows(), rows0);

    /* --from-beginning with the worker running */
    last0 = last_outbox_id();
    ck_assert_int_eq(replay("--from-beginning", NULL, NULL, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "stored offsets moved back"));
    free(out);
    /* the replay is recorded: quiet up to the old end */
    ck_assert_int_eq(x_intf(k.db, "SELECT sum(replay_until) FROM"
                                  " consumer_offsets"),
                     end);
    /* every partition is re-read, idle ones too, and the offsets return
     * to the end */
    wait_drained(total);
    ck_assert_str_eq(x_fingerprint(k.db, f, sizeof(f)), f0);
    /* quiet: no result event for any re-read message */
    quiet_extra += results_after(last0);
    ck_assert_int_eq(x_intf(k.db,
                            "SELECT count(*) FROM outbox WHERE"
                            " id > %lld AND topic = '%s' AND"
                            " convert_from(payload, 'UTF8')::jsonb->>"
                            "'outcome' = 'duplicate'",
                            (long long)last0, k.events),
                     0);

    /* --from-time, worker stopped: back to the middle only */
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    worker = 0;
    last0 = last_outbox_id();
    ck_assert_int_eq(replay("--from-time",
                            x_time(mid_ms * 1000, at, sizeof(at)), NULL, &out),
                     0);
    free(out);
    ck_assert_str_eq(x_offsets(&k, off, sizeof(off)), off_half);
    worker = ktest_worker_start(&k, NULL);
    wait_drained(total);
    ck_assert_str_eq(x_fingerprint(k.db, f, sizeof(f)), f0);
    quiet_extra += results_after(last0);

    /* --from-beginning, worker stopped, then started */
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    worker = 0;
    last0 = last_outbox_id();
    ck_assert_int_eq(replay("--from-beginning", NULL, NULL, &out), 0);
    free(out);
    ck_assert_int_eq(x_offsets_sum(&k), 0);
    {
        int port = fm_free_port(0);
        char addr[40];
        /* small batches: all but a partition's first are re-read ones */
        const char *args[] = {"--metrics-addr", addr, "--batch-size", "4",
                              NULL};

        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        worker = ktest_worker_start(&k, args);
        wait_drained(total);
        expect_counter(port, "orderd_commands_total{outcome=\"duplicate\"}",
                       total - npoison - nreused);
        expect_counter(port,
                       "orderd_rejections_total{reason=\"dedup_key_reused\","
                       "type=\"product_upsert\"}",
                       nreused);
    }
    ck_assert_str_eq(x_fingerprint(k.db, f, sizeof(f)), f0);
    quiet_extra += results_after(last0);

    /* --loud: every re-read message has a result again */
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    worker = 0;
    last0 = last_outbox_id();
    ck_assert_int_eq(replay("--from-beginning", "--loud", NULL, &out), 0);
    free(out);
    ck_assert_int_eq(x_offsets_sum(&k), 0);
    worker = ktest_worker_start(&k, NULL);
    wait_drained(total);
    ck_assert_str_eq(x_fingerprint(k.db, f, sizeof(f)), f0);
    loud_results = results_after(last0);
    loud_duplicates = x_intf(k.db,
                             "SELECT count(*) FROM outbox WHERE id > %lld AND"
                             " topic = '%s' AND convert_from(payload, 'UTF8')"
                             "::jsonb->>'outcome' = 'duplicate'",
                             (long long)last0, k.events);

    /* checked last, so that every check above reports first: the quiet
     * replays wrote no result event at all (a re-read message whose dedup
     * key was reused was answered already, too), and the loud one gave
     * every re-read message a result (duplicate, but for the reused key) */
    ck_assert_msg(quiet_extra == 0 && loud_results == total - npoison &&
                      loud_duplicates == total - npoison - nreused,
                  "quiet replays wrote %lld result event(s) for re-read "
                  "messages (expected 0); the loud replay wrote %lld "
                  "(expected %lld), %lld of them duplicate (expected %lld)",
                  (long long)quiet_extra, (long long)loud_results,
                  (long long)(total - npoison), (long long)loud_duplicates,
                  (long long)(total - npoison - nreused));
}
END_TEST

/* a short stream, applied and published */
static int64_t
short_stream(void)
{
    char buf[512];

    for (int p = 1; p <= PRODUCTS; p++) {
        x_product_json(buf, sizeof(buf), p, PRICE, STOCK);
        send_keyed(p, buf);
    }
    generate(40);
    ktest_flush(&k);
    wait_drained(nmsgs);
    return nmsgs;
}

START_TEST(test_loud_replay_answers_again)
{
    char f0[64], f[64], *out = NULL;
    int64_t last0, total = short_stream();

    x_fingerprint(k.db, f0, sizeof(f0));
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    worker = 0;
    last0 = last_outbox_id();
    ck_assert_int_eq(replay("--from-beginning", "--loud", NULL, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "get a result event again"));
    free(out);
    ck_assert_int_eq(x_offsets_sum(&k), 0);
    worker = ktest_worker_start(&k, NULL);
    wait_drained(total);
    ck_assert_str_eq(x_fingerprint(k.db, f, sizeof(f)), f0);
    ck_assert_int_eq(x_waitf(&k, total, 30,
                             "SELECT count(*) FROM outbox WHERE id > %lld AND"
                             " topic = '%s' AND convert_from(payload, 'UTF8')"
                             "::jsonb->>'outcome' = 'duplicate'",
                             (long long)last0, k.events),
                     total);
    ck_assert_int_eq(results_after(last0), total);
}
END_TEST

START_TEST(test_replay_reaches_partitions_idle_since_restart)
{
    const char *extra[] = {"--log-level", "info", NULL};
    char f0[64], f[64], log[256], *out = NULL;
    int64_t last0, total = short_stream(), end;

    x_fingerprint(k.db, f0, sizeof(f0));
    /* a restarted worker that has read nothing since it got its
     * partitions: 2 executors, 3 partitions, so 2 + 1 when settled */
    snprintf(log, sizeof(log), "/tmp/it_0540_%d_worker.log", (int)getpid());
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    worker = x_worker_logged(&k, extra, log);
    end = od_mono_us() + 60 * 1000000LL;
    while ((x_count_lines(log, "assigned 2 partition(s)") == 0 ||
            x_count_lines(log, "assigned 1 partition(s)") == 0) &&
           od_mono_us() < end) {
        struct timespec nap = {0, 50 * 1000 * 1000};

        nanosleep(&nap, NULL); /* polling the log */
    }
    ck_assert_msg(od_mono_us() < end, "the worker never settled");

    last0 = last_outbox_id();
    ck_assert_int_eq(replay("--from-beginning", NULL, NULL, &out), 0);
    free(out);
    /* every partition is re-read and returns to the end */
    ck_assert_int_eq(x_waitf(&k, total, 30,
                             "SELECT COALESCE(sum(next_offset), 0) FROM"
                             " consumer_offsets WHERE grp = '%s'",
                             k.group),
                     total);
    ck_assert_int_eq(x_count_lines(log, "moved back to 0: seeking"), PARTS);
    wait_drained(total);
    ck_assert_str_eq(x_fingerprint(k.db, f, sizeof(f)), f0);
    ck_assert_int_eq(results_after(last0), 0);
    unlink(log);
}
END_TEST

/* Orders, items, stock, ledger and history: what a command changes,
 * without processed_commands. */
static const char *
state_fingerprint(char *buf, size_t len)
{
    return itest_text(
        k.db,
        "SELECT md5(concat_ws('|',"
        " (SELECT string_agg(concat_ws(',', id, status, total_cents,"
        "   paid_cents), ';' ORDER BY id) FROM orders),"
        " (SELECT count(*) FROM order_items),"
        " (SELECT string_agg(id || ':' || stock, ';' ORDER BY id)"
        "   FROM products),"
        " (SELECT count(*) || ':' || COALESCE(sum(delta), 0) FROM "
        "stock_ledger),"
        " (SELECT count(*) FROM order_status_history)))",
        buf, len);
}

/*
 * A replay whose range holds a command with no dedup row (deleted here,
 * as a retention purge does): re-read in small batches, most of them
 * found duplicates from their dedup rows alone, the worker decides that
 * one command anew (its order exists: rejected) and nothing else changes
 * or gets a result.
 */
START_TEST(test_replay_meets_a_command_without_its_row)
{
    const char *extra[] = {"--batch-size", "4", NULL};
    char key[32], s0[64], s[64], got[64], *out = NULL;
    int64_t total = short_stream(), last0, rows0;

    /* the last checkout: late in its partition, so in a batch of the
     * re-read that expects duplicates only */
    snprintf(key, sizeof(key), "co-%d", norders - 1);
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    worker = 0;
    state_fingerprint(s0, sizeof(s0));
    rows0 = x_intf(k.db, "SELECT count(*) FROM processed_commands");
    ck_assert_int_eq(x_intf(k.db,
                            "WITH d AS (DELETE FROM processed_commands WHERE"
                            " dedup_key = '%s' RETURNING 1) SELECT count(*)"
                            " FROM d",
                            key),
                     1);
    last0 = last_outbox_id();
    ck_assert_int_eq(replay("--from-beginning", NULL, NULL, &out), 0);
    free(out);
    worker = ktest_worker_start(&k, extra);
    wait_drained(total);

    ck_assert_int_eq(results_after(last0), 1);
    x_textf(k.db, got, sizeof(got),
            "SELECT concat_ws(' ', outcome, reason) FROM processed_commands"
            " WHERE dedup_key = '%s'",
            key);
    ck_assert_str_eq(got, "rejected order_exists");
    ck_assert_int_eq(x_intf(k.db, "SELECT count(*) FROM processed_commands"),
                     rows0);
    ck_assert_str_eq(state_fingerprint(s, sizeof(s)), s0);
}
END_TEST

static Suite *
replay_suite(void)
{
    Suite *s = suite_create("replay");
    TCase *tc = tcase_create("replay");

    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_replay_changes_nothing);
    tcase_add_test(tc, test_loud_replay_answers_again);
    tcase_add_test(tc, test_replay_reaches_partitions_idle_since_restart);
    tcase_add_test(tc, test_replay_meets_a_command_without_its_row);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(replay_suite());
}
