/* run.c - orderd run: starts executors, outbox publisher, scheduler and
 * the metrics endpoint; stops them in order on SIGTERM/SIGINT; SIGHUP
 * re-reads the log settings; tells systemd how it is doing (notify.c) */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "console.h"
#include "db.h"
#include "executor.h"
#include "health.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "outbox.h"
#include "scheduler.h"
#include "version.h"

#define RUN_MAX_THREADS EXECUTOR_MAX_IDS
#define RUN_SHUTDOWN_TIMEOUT_S 60
/* descriptors kept for everything but the metrics listener's connections:
 * Postgres and broker connections of up to 64 executors, the publisher,
 * the scheduler, librdkafka's own */
#define RUN_FD_RESERVE 512

/* Says at start whom each topic's producers are trusted to act as. */
static void
log_sources(const od_sources_t *sources)
{
    char roles[64];

    if (sources->trust_all) {
        log_warn("no --source given: every producer on %s is trusted with "
                 "every role (customer, vendor, admin, payment, system); "
                 "bind topics to roles with --source NAME=TOPIC:ROLES",
                 sources->items[0].topic);
        return;
    }
    for (int i = 0; i < sources->n; i++)
        log_info(
            "source %s: topic %s, roles %s", sources->items[i].name,
            sources->items[i].topic,
            sources_roles_text(sources->items[i].roles, roles, sizeof(roles)));
}

static atomic_int run_stop;
static atomic_int run_reload; /* SIGHUP seen, not yet acted on */
/* what the shutdown is doing, for the watchdog's message */
static const char *_Atomic run_stage = "running";
/* start-up: what the main thread is doing, and when it last got on */
static const char *_Atomic run_phase = "starting";
static atomic_llong run_beat;
static atomic_int run_started; /* executors started (ex[0..n) are set) */

/*
 * A stop must stop the process: if the orderly shutdown hangs (a broker
 * or database that never answers), the watchdog says where and exits.
 * Nothing is lost: what was not committed is re-read by the next owner,
 * what was committed and not yet published is published at the next start.
 */
static void *
shutdown_watchdog(void *arg)
{
    int64_t deadline;

    (void)arg;
    while (!atomic_load(&run_stop)) {
        struct timespec ts = {0, 100 * 1000 * 1000};

        nanosleep(&ts, NULL);
    }
    deadline = od_mono_us() + (int64_t)RUN_SHUTDOWN_TIMEOUT_S * 1000000;
    while (od_mono_us() < deadline) {
        struct timespec ts = {0, 100 * 1000 * 1000};

        if (strcmp(atomic_load(&run_stage), "done") == 0)
            return NULL;
        nanosleep(&ts, NULL);
    }
    log_error("shutdown did not finish within %d s (stuck %s): exiting; "
              "uncommitted messages will be re-read, committed events "
              "published at the next start",
              RUN_SHUTDOWN_TIMEOUT_S, atomic_load(&run_stage));
    _exit(CLI_EXIT_WATCHDOG);
}

static void
on_signal(int sig)
{
    (void)sig;
    atomic_store(&run_stop, 1);
}

static void
on_hup(int sig)
{
    (void)sig;
    atomic_store(&run_reload, 1);
}

/*
 * SIGHUP: the log level and format are read again from the configuration
 * (reload re-reads it as at start: the --config file, the environment the
 * process started with, the flags) and applied; everything else needs a
 * restart. A configuration that does not parse changes nothing.
 */
static void
reload_log(cli_reload_fn reload, void *arg)
{
    char err[512];
    log_level_t level;
    int json;

    if (reload == NULL) {
        log_info("SIGHUP: nothing to reload");
        return;
    }
    if (reload(arg, &level, &json, err, sizeof(err)) < 0) {
        log_warn("SIGHUP: configuration not reloaded, log settings kept: "
                 "%s",
                 err);
        return;
    }
    log_setup(level, json);
    log_info("SIGHUP: log level %s, format %s", log_level_name(level),
             json ? "json" : "text");
}

/*
 * The watchdog's question (notify.c): has start-up, and then every
 * executor, turned its loop within stall_us? Executors' beats outlive
 * them, so this is safe whatever the main thread is tearing down.
 */
static int
run_check(void *arg, int64_t stall_us, char *status, size_t len)
{
    int64_t now = od_mono_us();
    int started = atomic_load(&run_started);

    (void)arg;
    if (atomic_load(&run_stop)) {
        snprintf(status, len, "stopping: %s", atomic_load(&run_stage));
        return 1;
    }
    if (started == 0) {
        int64_t idle = now - atomic_load(&run_beat);

        if (idle > stall_us) {
            snprintf(status, len, "stuck at start-up for %lld s: %s",
                     (long long)(idle / 1000000), atomic_load(&run_phase));
            return 0;
        }
        snprintf(status, len, "starting: %s", atomic_load(&run_phase));
        return 1;
    }
    for (int i = 0; i < started; i++) {
        int64_t idle = now - executor_last_beat(i);

        if (idle > stall_us) {
            snprintf(status, len,
                     "stuck: executor %d has not got on for %lld s", i,
                     (long long)(idle / 1000000));
            return 0;
        }
    }
    if (atomic_load(&metrics.db_down) > 0)
        snprintf(status, len,
                 "not ready: %d of %d executor(s) retrying after a "
                 "database fault; %lld messages done",
                 atomic_load(&metrics.db_down), started,
                 (long long)atomic_load(&executor_messages_done));
    else
        snprintf(status, len,
                 "running: %d executor(s), %d partition(s), %lld messages "
                 "done, %lld events published",
                 started, atomic_load(&metrics.assigned_partitions),
                 (long long)atomic_load(&executor_messages_done),
                 (long long)atomic_load(&metrics.published));
    return 1;
}

/*
 * The metrics listener's connection limit, made to fit the descriptors
 * the process may open: the soft RLIMIT_NOFILE is raised to the hard one
 * first (often 1024 soft against far more hard), and a limit that still
 * does not fit next to RUN_FD_RESERVE is lowered, with a warning, rather
 * than let the listener take the descriptors the worker needs.
 */
static unsigned
http_connection_limit(int64_t wanted)
{
    struct rlimit rl;
    int64_t room;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return (unsigned)wanted;
    if (rl.rlim_cur != rl.rlim_max) {
        rlim_t was = rl.rlim_cur;

        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = was;
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        return (unsigned)wanted;
    room = (int64_t)rl.rlim_cur - RUN_FD_RESERVE;
    if (room < 16)
        room = 16;
    if (wanted > room) {
        log_warn("--http-max-connections %lld does not fit the open-file "
                 "limit (%lld): using %lld",
                 (long long)wanted, (long long)rl.rlim_cur, (long long)room);
        return (unsigned)room;
    }
    return (unsigned)wanted;
}

/* exit status of `orderd run` when Postgres refuses its credentials,
 * role or database at start (waiting would not help) */
#define RUN_EXIT_PG_REFUSED 5
/* while Postgres cannot be reached at start, a warning this often */
#define RUN_WAIT_WARN_US (30 * 1000000LL)

/*
 * The schema must be migrated before work starts (orderd migrate): 1 when
 * it is, 0 when the database answers without it, -1 when Postgres refuses
 * the session for good (wrong password, no such role or database: the
 * error is logged). While Postgres cannot be reached this waits (with
 * back-off, until a stop signal, warning every 30 s), so a worker started
 * before its database simply begins when the database is there.
 * A worker connected as a superuser or as the schema owner works, but is
 * told that it holds far more than it needs.
 */
static int
schema_ready(const od_config_t *cfg)
{
    char err[512];
    int64_t wait_ms = 100, waiting_since = od_mono_us(), next_warn = 0;

    while (!atomic_load(&run_stop)) {
        db_t *db = NULL;
        db_rows_t *rows = NULL;
        od_status_t st;
        int ok = 0;

        atomic_store(&run_beat, od_mono_us());
        st = db_try_connect(cfg->pg, &db, err, sizeof(err));
        if (st == OD_FATAL) {
            log_error("%s: not retrying (fix the connection string, the "
                      "role or the database, then start again)",
                      err);
            return -1;
        }
        if (db != NULL) {
            st = db_query(db,
                          "SELECT to_regclass('consumer_offsets') IS NOT"
                          " NULL, (SELECT rolsuper FROM pg_roles WHERE"
                          " rolname = current_user) OR COALESCE("
                          " pg_has_role(current_user, (SELECT relowner"
                          " FROM pg_class WHERE oid ="
                          " to_regclass('consumer_offsets')), 'MEMBER'),"
                          " false)",
                          0, NULL, &rows, err, sizeof(err));
            if (st == OD_OK)
                ok = db_bool(rows, 0, 0);
            if (st == OD_OK && ok && db_bool(rows, 0, 1))
                log_warn("connected to postgres as a superuser or the "
                         "schema owner: orderd run needs only the runtime "
                         "grants (docs/operations.md, PostgreSQL roles)");
            db_rows_free(rows);
            db_destroy(db);
            if (st == OD_OK) {
                if (!ok)
                    log_error("the database has no orderd schema: run "
                              "orderd migrate");
                else
                    atomic_store(&metrics.pg_last_answer_us, od_mono_us());
                return ok;
            }
        }
        if (od_mono_us() >= next_warn) {
            log_warn("waiting for postgres (%lld s so far): %s",
                     (long long)((od_mono_us() - waiting_since) / 1000000),
                     err);
            next_warn = od_mono_us() + RUN_WAIT_WARN_US;
        }
        atomic_store(&run_phase, "waiting for postgres (see the log)");
        for (int64_t end = od_mono_us() + wait_ms * 1000;
             od_mono_us() < end && !atomic_load(&run_stop);) {
            struct timespec ts = {0, 20 * 1000 * 1000};

            atomic_store(&run_beat, od_mono_us());
            nanosleep(&ts, NULL);
        }
        if (wait_ms < 5000)
            wait_ms *= 2;
    }
    return 0;
}

int
cli_run(const od_config_t *cfg, cli_reload_fn reload, void *reload_arg)
{
    executor_t *ex[RUN_MAX_THREADS] = {0};
    outbox_t *ob = NULL;
    scheduler_t *sched = NULL;
    http_t *http = NULL;
    console_t *console = NULL;
    health_t *health = NULL;
    notify_t *notify = NULL;
    struct sigaction sa;
    char err[1024], masked[512];
    int nthreads = (int)cfg->threads, rc = 0, started = 0, ready;
    pthread_t watchdog;

    if (nthreads <= 0)
        nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads <= 0)
        nthreads = 1;
    if (nthreads > RUN_MAX_THREADS)
        nthreads = RUN_MAX_THREADS;

    metrics_init();
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* by default SIGHUP kills: under systemd it is `systemctl reload` */
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_create(&watchdog, NULL, shutdown_watchdog, NULL) == 0)
        pthread_detach(watchdog);
    atomic_store(&run_beat, od_mono_us());
    notify = notify_start(run_check, NULL);

    if (db_conninfo_masked(cfg->pg, masked, sizeof(masked)) < 0) {
        /* it would never connect: say so now rather than wait forever */
        log_error("--pg: the connection string is malformed (not shown: "
                  "it may hold a password)");
        return 2;
    }
    /* before any thread connects: every wait for postgres is bounded */
    db_set_reply_timeout((int)cfg->pg_timeout_ms);
    log_info("orderd %s starting: %d executor(s), batch %lld/%lldms, "
             "brokers %s, group %s, postgres '%s'",
             orderd_version(), nthreads, (long long)cfg->batch_size,
             (long long)cfg->batch_wait_ms, cfg->brokers, cfg->group, masked);
    if (cfg->nkafka > 0) {
        char props[2048];

        /* what -F and -X set, so an operator can see which credentials
         * and protocol are in use; secret values are shown as *** */
        config_kafka_props_masked(cfg, props, sizeof(props));
        log_info("kafka properties: %s", props);
    }
    log_sources(&cfg->sources);
    if (strcmp(cfg->metrics_addr, "off") != 0 && cfg->metrics_addr[0]) {
        char token[512];
        int guarded;

        if (console_token_load(cfg, token, sizeof(token), err, sizeof(err)) <
            0) {
            log_error("%s", err);
            return CLI_EXIT_USAGE;
        }
        /* the console shows orders and dead letters: off the loopback
         * interface only to those who hold the token */
        if (token[0] == '\0' && !console_addr_is_loopback(cfg->metrics_addr)) {
            log_error("--metrics-addr %s is not a loopback address: the "
                      "console there needs a token (ORDERD_CONSOLE_TOKEN, "
                      "--console-token-file or --console-token)",
                      cfg->metrics_addr);
            return CLI_EXIT_USAGE;
        }
        guarded = token[0] != '\0';
        console = console_new(cfg, token, err, sizeof(err));
        memset(token, 0, sizeof(token));
        if (console == NULL) {
            log_error("could not start the console: %s", err);
            return CLI_EXIT_FAILURE;
        }
        http = http_start(cfg->metrics_addr,
                          http_connection_limit(cfg->http_max_connections),
                          (unsigned)((cfg->http_timeout_ms + 999) / 1000),
                          console, err, sizeof(err));
        if (http == NULL) {
            log_error("%s", err);
            console_destroy(console);
            return CLI_EXIT_FAILURE;
        }
        log_info("metrics and health on http://%s (/metrics, /healthz, "
                 "/readyz), console on / (%s)",
                 cfg->metrics_addr,
                 guarded ? "token required" : "open: loopback only");
    } else {
        log_info("no metrics or health endpoint (--metrics-addr off)");
    }
    atomic_store(&run_phase, "connecting to postgres");
    health_set_phase("starting: waiting for postgres");
    ready = schema_ready(cfg);
    if (ready <= 0) {
        if (ready < 0)
            rc = RUN_EXIT_PG_REFUSED;
        else
            rc = atomic_load(&run_stop) ? 0 : 1;
        goto out;
    }
    atomic_store(&run_phase, "starting the publisher, scheduler, executors");
    atomic_store(&run_beat, od_mono_us());
    health_set_phase("starting");
    health = health_start(cfg, err, sizeof(err));
    if (health == NULL) {
        log_error("%s", err);
        rc = 1;
        goto out;
    }
    ob = outbox_new(cfg, err, sizeof(err));
    if (ob == NULL || outbox_start(ob) < 0) {
        log_error("could not start the outbox publisher: %s", err);
        rc = 1;
        goto out;
    }
    if (cfg->scheduler) {
        sched = scheduler_new(cfg, ob, err, sizeof(err));
        if (sched == NULL || scheduler_start(sched) < 0) {
            log_error("could not start the scheduler: %s", err);
            rc = 1;
            goto out;
        }
    }
    for (int i = 0; i < nthreads; i++) {
        atomic_store(&run_beat, od_mono_us());
        ex[i] = executor_new(i, cfg, &run_stop, ob, err, sizeof(err));
        if (ex[i] == NULL || executor_start(ex[i]) < 0) {
            log_error("could not start executor %d: %s", i, err);
            atomic_store(&run_stop, 1);
            rc = 1;
            break;
        }
        started++;
        atomic_store(&run_started, started);
    }
    atomic_store(&metrics.ready, rc == 0);
    if (rc == 0) {
        char status[512];

        health_set_phase("running");
        log_info("orderd is running");
        run_check(NULL, INT64_MAX, status, sizeof(status));
        notify_ready(status);
    }

    while (!atomic_load(&run_stop)) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        if (atomic_exchange(&run_reload, 0))
            reload_log(reload, reload_arg);
        nanosleep(&ts, NULL);
    }
    notify_stopping(notify, "stopping: finishing in-flight batches");
    atomic_store(&metrics.ready, 0);
    health_set_phase("stopping");
    log_info("stopping: finishing in-flight batches");
    atomic_store(&run_stage, "finishing batches and leaving the group");
    for (int i = 0; i < started; i++)
        if (executor_join(ex[i]) != 0)
            rc = CLI_EXIT_HALTED;
out:
    atomic_store(&run_stop, 1); /* start-up failures stop here too */
    for (int i = 0; i < nthreads; i++)
        executor_destroy(ex[i]);
    atomic_store(&run_stage, "stopping the scheduler");
    scheduler_destroy(sched);
    atomic_store(&run_stage, "publishing committed events");
    outbox_destroy(ob); /* publishes what was committed, flushes */
    health_stop(health);
    console_quiesce(console); /* resumes what it holds before the stop */
    http_stop(http);
    console_destroy(console);
    atomic_store(&run_stage, "done");
    notify_stop(notify);
    log_info("orderd stopped");
    return rc;
}
