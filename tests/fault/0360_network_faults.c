/* 0360_network_faults: the network between orderd and its servers
 * misbehaves. Toxiproxy (scripts/toxiproxy) sits between the worker and
 * Postgres and between the worker and a private broker (whose PROXIED
 * listener advertises the proxy's address, so every broker connection of
 * the worker crosses it); the test's own clients go direct.
 *
 * random_faults: the fault model's mixed stream (fault_model.h) is
 * produced in slices while toxics come and go on both paths at random
 * (latency with jitter, reset_peer, timeout as a black hole, bandwidth,
 * slicer, limit_data: connections cut after N bytes, mid-pipeline and
 * mid-COMMIT) and the worker is SIGKILLed in between; then the faults stop
 * and the stream drains. Every command decided once with the outcome the
 * model predicts, one result per message by event_id, stock = ledger =
 * model, `orderd check` clean, nothing left in the outbox. The seed
 * (ORDERD_FAULT_SEED, default 360) is printed: the same seed replays the
 * same schedule. ORDERD_FAULT_COMMANDS (default 2000), ORDERD_FAULT_KILLS
 * (default 3) and ORDERD_FAULT_ROUNDS (the least number of fault rounds,
 * default 12) scale it; scripts/soak runs it large. It prints the figures
 * the soak reports: faults per kind, kills, the longest stall of a
 * partition with work waiting, the time to drain after the last fault.
 *
 * black_hole: the Postgres path, then the broker path, become black holes
 * (the timeout toxic: data dropped, connections held open) with work in
 * flight. While Postgres is black-holed the worker reports not ready; once
 * the hole is gone, its half-open connections are abandoned within the
 * documented bound (--pg-timeout, librdkafka's socket.timeout.ms) and
 * everything drains: no partition stalls past the bound.
 *
 * lost_commit: a COMMIT runs on the server while its reply is lost, for
 * certain; the retry finds it committed by the stored offsets. */
#include "toxi.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>

static ktest_t k;
static fmodel_t m;
static char run_dir[256];
static char brokers[64], proxied_brokers[64];
static int kafka_port, api_port, kproxy_port, pgproxy_port, metrics_port;
static pid_t *workers; /* shared with the parent, for the teardown */

/* the worker's bounds in this test, shorter than the defaults so the test
 * stays short; the black-hole test asserts against them */
#define PG_TIMEOUT_S 5
#define SOCKET_TIMEOUT_S 6

static int
env_int(const char *name, int def)
{
    const char *v = getenv(name);

    return v != NULL && atoi(v) > 0 ? atoi(v) : def;
}

static void
script(const char *name, const char *port_var, int port, const char *verb)
{
    ck_assert_msg(fm_script(run_dir, port_var, port, name, verb) == 0,
                  "scripts/%s %s failed (log: %s/script.log)", name, verb,
                  run_dir);
}

/* The worker, through both proxies. */
static pid_t
worker_start(void)
{
    char conninfo[sizeof(k.conninfo)], proxied[sizeof(k.conninfo) + 64];
    char metrics[64], pg_timeout[16], socket_timeout[48];
    const char *direct = k.brokers;
    const char *extra[] = {"-X",
                           "session.timeout.ms=6000",
                           "-X",
                           socket_timeout,
                           "--pg-timeout",
                           pg_timeout,
                           "--metrics-addr",
                           metrics,
                           NULL};
    pid_t w;

    snprintf(metrics, sizeof(metrics), "127.0.0.1:%d", metrics_port);
    snprintf(pg_timeout, sizeof(pg_timeout), "%ds", PG_TIMEOUT_S);
    snprintf(socket_timeout, sizeof(socket_timeout), "socket.timeout.ms=%d",
             SOCKET_TIMEOUT_S * 1000);
    /* the last host= and port= of a libpq string win */
    memcpy(conninfo, k.conninfo, sizeof(conninfo));
    snprintf(proxied, sizeof(proxied), "%s host=127.0.0.1 port=%d", conninfo,
             pgproxy_port);
    ck_assert_int_lt(strlen(proxied), sizeof(k.conninfo));
    memcpy(k.conninfo, proxied, strlen(proxied) + 1);
    k.brokers = proxied_brokers;
    w = ktest_worker_start(&k, extra);
    memcpy(k.conninfo, conninfo, sizeof(conninfo));
    k.brokers = direct;
    workers[0] = w;
    return w;
}

/* Messages of each partition taken off the topic (committed offsets). */
static void
done_per_partition(int64_t *done)
{
    char sql[256], err[512];
    db_rows_t *rows = NULL;

    memset(done, 0, sizeof(*done) * (size_t)k.partitions);
    snprintf(sql, sizeof(sql),
             "SELECT partition, next_offset FROM consumer_offsets"
             " WHERE topic = '%s'",
             k.commands);
    ck_assert_msg(db_query(k.db, sql, 0, NULL, &rows, err, sizeof(err)) ==
                      OD_OK,
                  "%s", err);
    for (int i = 0; i < db_nrows(rows); i++) {
        int p = (int)db_int64(rows, i, 0);

        if (p >= 0 && p < k.partitions)
            done[p] = db_int64(rows, i, 1);
    }
    db_rows_free(rows);
}

/* The longest time a partition with messages waiting made no progress. */
typedef struct stalls {
    int64_t done[64];
    int64_t since[64]; /* when it last advanced, or had nothing waiting */
    int64_t longest_us;
    int longest_part;
} stalls_t;

static void
stalls_poll(stalls_t *s)
{
    int64_t done[64], now = od_mono_us();

    done_per_partition(done);
    for (int p = 0; p < k.partitions; p++) {
        if (s->since[p] == 0 || done[p] != s->done[p] ||
            done[p] >= m.part_sent[p])
            s->since[p] = now;
        s->done[p] = done[p];
        if (now - s->since[p] > s->longest_us) {
            s->longest_us = now - s->since[p];
            s->longest_part = p;
        }
    }
}

/* Lets `ms` pass (the length of a fault, or of a quiet gap), watching the
 * partitions meanwhile. */
static void
hold(stalls_t *s, int ms)
{
    int64_t end = od_mono_us() + (int64_t)ms * 1000;

    do {
        struct timespec ts = {0, 100 * 1000 * 1000};

        stalls_poll(s);
        nanosleep(&ts, NULL); /* the fault lasts this long */
    } while (od_mono_us() < end);
}

static int
drained(void)
{
    return fm_done(&k) >= fm_total(&m) &&
           itest_int(k.db, "SELECT count(*) FROM outbox WHERE published_at"
                           " IS NULL") == 0;
}

START_TEST(test_random_faults)
{
    int total = env_int("ORDERD_FAULT_COMMANDS", 2000);
    int kills = env_int("ORDERD_FAULT_KILLS", 3);
    int min_rounds = env_int("ORDERD_FAULT_ROUNDS", 12);
    unsigned int seed = (unsigned int)env_int("ORDERD_FAULT_SEED", 360);
    int64_t deadline, last_fault_end = 0, started = od_mono_us();
    int nfaults[TOXI_KINDS] = {0}, killed = 0, rounds = 0;
    stalls_t st;
    pid_t w;

    fprintf(stderr,
            "0360 random_faults: seed %u (ORDERD_FAULT_SEED replays it),"
            " %d commands, %d kills\n",
            seed, total, kills);
    memset(&st, 0, sizeof(st));
    fm_init(&m, &k, total, seed);
    fm_generate(&m, total / min_rounds + 1);
    w = worker_start();
    /* a bound for the whole run: ~1 s per 20 commands at worst */
    deadline = od_mono_us() + (600 + (int64_t)total / 20) * 1000000LL;

    while (rounds < min_rounds || killed < kills || fm_total(&m) < total) {
        const char *proxy = fm_rnd(&m, 2) ? "pg" : "kafka";
        toxi_kind_t kind = (toxi_kind_t)fm_rnd(&m, TOXI_KINDS);
        int second = fm_rnd(&m, 3) == 0;
        toxi_kind_t kind2 = (toxi_kind_t)fm_rnd(&m, TOXI_KINDS);

        ck_assert_msg(od_mono_us() < deadline,
                      "no drain after %d rounds: %lld of %d messages done",
                      rounds, (long long)fm_done(&k), fm_total(&m));
        /* the next slice of the stream, produced under the faults */
        if (fm_total(&m) < total)
            fm_generate(&m, fm_total(&m) + total / min_rounds + 1);

        /* a SIGKILL once the worker is past the next mark */
        if (killed < kills &&
            (fm_done(&k) >=
                 (int64_t)fm_total(&m) * (killed + 1) / (kills + 1) ||
             (rounds >= min_rounds && fm_total(&m) >= total))) {
            ck_assert_msg(fm_alive(w), "the worker exited by itself");
            ck_assert_int_eq(ktest_worker_stop(w, SIGKILL), 128 + SIGKILL);
            workers[0] = 0;
            killed++;
            w = worker_start();
        }

        toxi_add_random(api_port, proxy, "fault", kind, &m.seed);
        nfaults[kind]++;
        if (second) {
            toxi_add_random(api_port, strcmp(proxy, "pg") ? "pg" : "kafka",
                            "fault2", kind2, &m.seed);
            nfaults[kind2]++;
        }
        hold(&st, 300 + fm_rnd(&m, 1700));
        toxi_remove(api_port, proxy, "fault");
        if (second)
            toxi_remove(api_port, strcmp(proxy, "pg") ? "pg" : "kafka",
                        "fault2");
        last_fault_end = od_mono_us();
        rounds++;
        ck_assert_msg(fm_alive(w), "the worker exited during a fault");
        /* a quiet gap: the worker catches up a little */
        if (rounds < min_rounds || killed < kills || fm_total(&m) < total)
            hold(&st, fm_rnd(&m, 1000));
    }
    /* the faults are over: the backlog of the last slices drains */
    while (!drained()) {
        ck_assert_msg(od_mono_us() < deadline,
                      "no drain after the faults: %lld of %d messages done",
                      (long long)fm_done(&k), fm_total(&m));
        hold(&st, 100);
    }
    fprintf(stderr,
            "0360 summary: seed %u; %d commands (%d messages), %d SIGKILLs,"
            " %d fault rounds; faults: latency %d, reset_peer %d,"
            " timeout %d, bandwidth %d, slicer %d, limit_data %d;"
            " longest partition stall %.1f s (partition %d);"
            " drained %.1f s after the last fault; %.0f s in all\n",
            seed, total, fm_total(&m), killed, rounds, nfaults[TOXI_LATENCY],
            nfaults[TOXI_RESET], nfaults[TOXI_BLACKHOLE],
            nfaults[TOXI_BANDWIDTH], nfaults[TOXI_SLICER],
            nfaults[TOXI_LIMIT_DATA], (double)st.longest_us / 1e6,
            st.longest_part, (double)(od_mono_us() - last_fault_end) / 1e6,
            (double)(od_mono_us() - started) / 1e6);
    ck_assert_msg(fm_alive(w), "the worker exited");
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    workers[0] = 0;

    fm_verify_db(&m);
    fm_verify_events(&m, 120);
    ck_assert_int_eq(ktest_wait_dlq(&k, m.npoison, 60), m.npoison);
    fprintf(stderr, "0360 model check: clean (%d dedup keys, %d results)\n",
            m.nsent + m.nearly, m.nmessages);
    fm_free(&m);
}
END_TEST

/* Seconds until the committed offsets pass `at`, polled; fails past
 * bound_s. */
static double
progress_within(int64_t at, int bound_s)
{
    int64_t start = od_mono_us();

    fm_wait_done(&k, at, bound_s);
    return (double)(od_mono_us() - start) / 1e6;
}

START_TEST(test_black_hole)
{
    int total = env_int("ORDERD_FAULT_COMMANDS", 2000) / 2;
    /*
     * The bound after a hole closes: a connection stuck on it is
     * abandoned after PG_TIMEOUT_S (Postgres) or SOCKET_TIMEOUT_S (Kafka);
     * a reconnect that started inside the hole waits its connect_timeout
     * (10 s) first; then one back-off (at most 5 s) and the batch. 25 s
     * of slack for a loaded machine (two suites and sanitizers).
     */
    int bound_s = 10 + PG_TIMEOUT_S + 5 + 25;
    stalls_t st;
    double took;
    int64_t at;
    pid_t w;

    memset(&st, 0, sizeof(st));
    fm_init(&m, &k, total, 361);
    fm_generate(&m, total / 4);
    w = worker_start();
    ck_assert_msg(fm_wait_ready(metrics_port, 200, 60),
                  "the worker never got ready");
    fm_wait_done(&k, fm_total(&m), 60);

    /* Postgres becomes a black hole with work arriving */
    toxi_add(api_port, "pg", "hole", "timeout", "upstream", "\"timeout\":0");
    fm_generate(&m, total / 2);
    at = fm_done(&k);
    ck_assert_msg(fm_wait_ready(metrics_port, 503, 30),
                  "the worker still reports ready with Postgres black-holed");
    hold(&st, 2 * PG_TIMEOUT_S * 1000); /* the outage lasts this long */
    ck_assert_msg(fm_alive(w), "the worker exited in the black hole");
    ck_assert_int_eq(fm_done(&k), at);
    toxi_remove(api_port, "pg", "hole");
    took = progress_within(at + 1, bound_s);
    ck_assert_msg(fm_wait_ready(metrics_port, 200, bound_s),
                  "the worker is not ready again after the black hole");
    fm_wait_done(&k, fm_total(&m), bound_s + 30);
    fprintf(stderr,
            "0360 black_hole: postgres black-holed, progress %.1f s after"
            " the hole closed (bound %d s)\n",
            took, bound_s);

    /* the broker's path becomes a black hole: fetches, heartbeats and
     * the publisher's produce requests vanish */
    toxi_add(api_port, "kafka", "hole", "timeout", "downstream",
             "\"timeout\":0");
    hold(&st, 2 * SOCKET_TIMEOUT_S * 1000);
    ck_assert_msg(fm_alive(w), "the worker exited in the black hole");
    toxi_remove(api_port, "kafka", "hole");
    at = fm_done(&k);
    fm_generate(&m, total);
    took = progress_within(at + 1, bound_s + 30);
    fprintf(stderr,
            "0360 black_hole: broker black-holed, progress %.1f s after the"
            " hole closed\n",
            took);

    fm_wait_drained(&m, 120);
    ck_assert_msg(fm_alive(w), "the worker exited");
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    workers[0] = 0;
    fm_verify_db(&m);
    fm_verify_events(&m, 120);
    fm_free(&m);
}
END_TEST

/*
 * A COMMIT whose reply is lost, for certain: a test transaction holds the
 * outbox in SHARE mode, so a batch's single round trip (its writes, its
 * offsets and COMMIT, pipelined) waits on its outbox insert; then the
 * Postgres path's replies become a black hole and the lock goes. The
 * server runs the rest and commits (the offsets advance, seen directly);
 * the worker hears nothing, abandons the connection after --pg-timeout
 * and retries, and the stored offsets tell it the batch is in: nothing is
 * applied twice and no command gets a second result.
 */
START_TEST(test_lost_commit)
{
    int total = env_int("ORDERD_FAULT_COMMANDS", 2000) / 4;
    char err[512];
    long long retries;
    db_t *owner;
    int64_t at;
    pid_t w;

    fm_init(&m, &k, total, 362);
    fm_generate(&m, total / 2);
    w = worker_start();
    fm_wait_done(&k, fm_total(&m), 60);
    retries = fm_metric(metrics_port, "orderd_batch_retries_total");
    ck_assert_int_ge(retries, 0);

    owner = db_connect(k.owner_conninfo, err, sizeof(err));
    ck_assert_msg(owner != NULL, "%s", err);
    itest_exec(owner, "BEGIN");
    itest_exec(owner, "LOCK TABLE outbox IN SHARE MODE");
    at = fm_done(&k);
    fm_generate(&m, total);
    ck_assert_int_eq(ktest_wait_sql(&k,
                                    "SELECT (count(*) > 0)::int FROM"
                                    " pg_stat_activity WHERE datname ="
                                    " current_database() AND"
                                    " wait_event_type = 'Lock'",
                                    1, 60),
                     1);
    /* the batch waits inside its last round trip: its replies go */
    toxi_add(api_port, "pg", "hole", "timeout", "downstream", "\"timeout\":0");
    itest_exec(owner, "COMMIT");
    db_destroy(owner);
    /* the server committed it (the offsets moved) with nobody to tell */
    fm_wait_done(&k, at + 1, 30);
    toxi_remove(api_port, "pg", "hole");

    fm_wait_drained(&m, 120);
    ck_assert_msg(fm_metric(metrics_port, "orderd_batch_retries_total") >
                      retries,
                  "the batch whose COMMIT reply was lost was not retried");
    ck_assert_msg(fm_alive(w), "the worker exited");
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
    workers[0] = 0;
    fm_verify_db(&m);
    fm_verify_events(&m, 120);
    fm_free(&m);
}
END_TEST

/* Checked fixture: database on the shared Postgres (the worker reaches it
 * through the proxy), topics and the test's clients on the private broker
 * directly. */
static void
setup(void)
{
    setenv("ORDERD_TEST_BROKERS", brokers, 1);
    ktest_setup(&k, "network_faults", 4);
}

static void
teardown(void)
{
    toxi_remove(api_port, "pg", "fault");
    toxi_remove(api_port, "kafka", "fault");
    toxi_remove(api_port, "pg", "fault2");
    toxi_remove(api_port, "kafka", "fault2");
    toxi_remove(api_port, "pg", "hole");
    toxi_remove(api_port, "kafka", "hole");
    ktest_teardown(&k);
}

/* The shared cluster's port: scripts/test exports it, and the runtime
 * role's string names it. */
static int
shared_pg_port(void)
{
    const char *s = getenv("ORDERD_TEST_PG"), *p;

    ck_assert_msg(s != NULL, "ORDERD_TEST_PG is not set: run scripts/test");
    p = strstr(s, "port=");
    ck_assert_msg(p != NULL, "ORDERD_TEST_PG names no port");
    return atoi(p + 5);
}

/*
 * The password file the worker finds its password in (PGPASSFILE) is
 * keyed by host and port: a private copy whose entries for the shared
 * cluster's port are repeated for the proxy's, so no password ever goes
 * into a connection string. The test's process and the workers it starts
 * use the copy.
 */
static void
passfile_for_proxy(int pg_port)
{
    const char *orig = getenv("PGPASSFILE");
    char path[300], line[1024], prefix[32];
    FILE *in, *out;
    int fd;

    ck_assert_msg(orig != NULL, "PGPASSFILE is not set: run scripts/test");
    snprintf(path, sizeof(path), "%s/pgpass", run_dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    out = fdopen(fd, "w");
    in = fopen(orig, "r");
    ck_assert_msg(in != NULL && out != NULL, "%s: %s", orig, strerror(errno));
    snprintf(prefix, sizeof(prefix), "127.0.0.1:%d:", pg_port);
    while (fgets(line, sizeof(line), in) != NULL) {
        fputs(line, out);
        if (strncmp(line, prefix, strlen(prefix)) == 0)
            fprintf(out, "127.0.0.1:%d:%s", pgproxy_port,
                    line + strlen(prefix));
    }
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
    setenv("PGPASSFILE", path, 1);
}

/* Unchecked fixture (in the runner's process, so it runs even when a test
 * fails): Toxiproxy, the private broker with its proxied listener, the two
 * proxies, and any worker left behind. */
static void
servers_up(void)
{
    char port[16];
    int ports[4];

    snprintf(run_dir, sizeof(run_dir), "/tmp/orderd-0360-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(run_dir));
    workers = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(workers, MAP_FAILED);
    /* four distinct ports (the broker's takes four in a row) */
    for (int i = 0; i < 4; i++) {
        int again;

        do {
            ports[i] = fm_free_port(i == 0);
            again = 0;
            for (int j = 0; j < i; j++)
                again |= ports[i] >= ports[j] && ports[i] <= ports[j] + 3;
        } while (again);
    }
    kafka_port = ports[0];
    api_port = ports[1];
    kproxy_port = ports[2];
    pgproxy_port = ports[3];
    metrics_port = fm_free_port(0);
    snprintf(brokers, sizeof(brokers), "127.0.0.1:%d", kafka_port);
    snprintf(proxied_brokers, sizeof(proxied_brokers), "127.0.0.1:%d",
             kproxy_port);

    script("toxiproxy", "ORDERD_TOXIPROXY_PORT", api_port, "start");
    snprintf(port, sizeof(port), "%d", kproxy_port);
    setenv("ORDERD_KAFKA_PROXY_PORT", port, 1);
    snprintf(port, sizeof(port), "%d", kafka_port + 3);
    setenv("ORDERD_KAFKA_PROXIED_PORT", port, 1);
    script("kafka", "ORDERD_KAFKA_PORT", kafka_port, "start");
    toxi_proxy(api_port, "kafka", kproxy_port, kafka_port + 3);
    toxi_proxy(api_port, "pg", pgproxy_port, shared_pg_port());
    passfile_for_proxy(shared_pg_port());
}

static void
servers_down(void)
{
    char cmd[400];

    if (workers != NULL && workers != MAP_FAILED && workers[0] > 0)
        kill(workers[0], SIGKILL); /* a failed test left it running */
    if (fm_script(run_dir, "ORDERD_KAFKA_PORT", kafka_port, "kafka", "stop") !=
        0)
        fprintf(stderr, "0360: could not stop the private broker\n");
    if (fm_script(run_dir, "ORDERD_TOXIPROXY_PORT", api_port, "toxiproxy",
                  "stop") != 0)
        fprintf(stderr, "0360: could not stop toxiproxy\n");
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", run_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "0360: could not remove %s\n", run_dir);
}

static Suite *
network_suite(void)
{
    Suite *s = suite_create("network_faults");
    TCase *tc = tcase_create("toxics");

    tcase_set_timeout(tc, 3600 * 4); /* scripts/soak runs it for hours */
    tcase_add_unchecked_fixture(tc, servers_up, servers_down);
    tcase_add_checked_fixture(tc, setup, teardown);
    if (getenv("ORDERD_SOAK") == NULL) {
        tcase_add_test(tc, test_lost_commit);
        tcase_add_test(tc, test_black_hole);
    }
    tcase_add_test(tc, test_random_faults);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(network_suite());
}
