/* ktest.c - end-to-end harness: topics, subprocess worker, events */
#include "ktest.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../worker/cli.h"
#include "../../worker/config.h"

static const char *
brokers(void)
{
    const char *b = getenv("ORDERD_TEST_BROKERS");

    if (b == NULL || *b == '\0')
        b = getenv("ORDERD_BROKERS");
    ck_assert_msg(b != NULL && *b != '\0',
                  "ORDERD_TEST_BROKERS is not set: run through scripts/test");
    return b;
}

static const char *
orderd_bin(void)
{
    const char *b = getenv("ORDERD_BIN");

    ck_assert_msg(b != NULL, "ORDERD_BIN is not set (ctest sets it)");
    return b;
}

static void
child_env(ktest_t *k)
{
    char parts[16];

    snprintf(parts, sizeof(parts), "%d", k->partitions);
    setenv("ORDERD_PG", k->conninfo, 1);
    setenv("ORDERD_MIGRATE_PG", k->owner_conninfo, 1);
    setenv("ORDERD_BROKERS", k->brokers, 1);
    setenv("ORDERD_COMMANDS_TOPIC", k->commands, 1);
    setenv("ORDERD_EVENTS_TOPIC", k->events, 1);
    setenv("ORDERD_DLQ_TOPIC", k->dlq, 1);
    setenv("ORDERD_GROUP", k->group, 1);
    setenv("ORDERD_PARTITIONS", parts, 1);
    setenv("ORDERD_METRICS_ADDR", "off", 0);
    setenv("ORDERD_LOG_LEVEL", "warn", 0);
}

static pid_t
spawn(ktest_t *k, const char *const *argv, int in_fd, int out_fd, int err_fd)
{
    pid_t pid = fork();

    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        child_env(k);
        if (in_fd >= 0)
            dup2(in_fd, STDIN_FILENO);
        if (out_fd >= 0)
            dup2(out_fd, STDOUT_FILENO);
        if (err_fd >= 0)
            dup2(err_fd, STDERR_FILENO);
        execv(orderd_bin(), (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", orderd_bin(), strerror(errno));
        _exit(127);
    }
    return pid;
}

static int
wait_status(pid_t pid)
{
    int status;

    while (waitpid(pid, &status, 0) < 0)
        ck_assert_msg(errno == EINTR, "waitpid: %s", strerror(errno));
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

int
ktest_cli(ktest_t *k, const char *const *args, char **out)
{
    return ktest_cli_input(k, args, NULL, out);
}

int
ktest_cli_input(ktest_t *k, const char *const *args, const char *input,
                char **out)
{
    const char *argv[32];
    int n = 0, pipefd[2] = {-1, -1}, in_fd = -1, rc;
    pid_t pid;

    if (input != NULL) {
        /* a file, not a pipe: the child may read it at its own pace */
        FILE *f = tmpfile();

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(fputs(input, f) >= 0, 1);
        ck_assert_int_eq(fflush(f), 0);
        rewind(f);
        in_fd = dup(fileno(f));
        fclose(f);
        ck_assert_int_ge(in_fd, 0);
    }

    argv[n++] = orderd_bin();
    for (; args[n - 1] != NULL && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    if (out != NULL)
        ck_assert_int_eq(pipe(pipefd), 0);
    pid = spawn(k, argv, in_fd, pipefd[1], -1);
    if (in_fd >= 0)
        close(in_fd);
    if (out != NULL) {
        size_t len = 0, cap = 4096;
        ssize_t r;
        char *buf = malloc(cap);

        close(pipefd[1]);
        while ((r = read(pipefd[0], buf + len, cap - len - 1)) > 0) {
            len += (size_t)r;
            if (cap - len < 1024)
                buf = realloc(buf, cap *= 2);
        }
        buf[len] = '\0';
        close(pipefd[0]);
        *out = buf;
    }
    rc = wait_status(pid);
    return rc;
}

static pid_t
worker_start(ktest_t *k, const char *const *extra, int err_fd)
{
    const char *argv[40] = {orderd_bin(), "run", "--threads", "2"};
    int n = 4;
    pid_t pid;

    for (; extra != NULL && *extra != NULL && n < 39; extra++)
        argv[n++] = *extra;
    argv[n] = NULL;
    if (err_fd < 0 && k->worker_stderr[0] != '\0') {
        err_fd = open(k->worker_stderr, O_WRONLY | O_CREAT | O_APPEND, 0600);
        ck_assert_msg(err_fd >= 0, "%s: %s", k->worker_stderr, strerror(errno));
        pid = spawn(k, argv, -1, -1, err_fd);
        close(err_fd);
        return pid;
    }
    return spawn(k, argv, -1, -1, err_fd);
}

pid_t
ktest_worker_start(ktest_t *k, const char *const *extra)
{
    return worker_start(k, extra, -1);
}

pid_t
ktest_worker_start_logged(ktest_t *k, const char *const *extra,
                          const char *log_path)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;

    ck_assert_msg(fd >= 0, "%s: %s", log_path, strerror(errno));
    pid = worker_start(k, extra, fd);
    close(fd);
    return pid;
}

int
ktest_worker_stop(pid_t pid, int sig)
{
    int64_t end = od_mono_us() + 90 * 1000000LL;
    int status;

    kill(pid, sig);
    /* the worker's own watchdog ends a stuck shutdown after 60 s */
    while (od_mono_us() < end) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid)
            return WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                       : WEXITSTATUS(status);
        ck_assert_msg(r == 0 || errno == EINTR, "waitpid: %s", strerror(errno));
        nanosleep(&ts, NULL); /* polling a child's exit, bounded */
    }
    kill(pid, SIGKILL);
    wait_status(pid);
    ck_abort_msg("orderd did not exit within 90 s of signal %d", sig);
    return -1;
}

static void
dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    ktest_t *k = opaque;

    (void)rk;
    if (rkm->err)
        k->produce_failed++;
}

static rd_kafka_t *
make_client(ktest_t *k, rd_kafka_type_t type)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    rd_kafka_t *rk;

    rd_kafka_conf_set(conf, "bootstrap.servers", k->brokers, errstr,
                      sizeof(errstr));
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr,
                          sizeof(errstr));
        rd_kafka_conf_set(conf, "linger.ms", "2", errstr, sizeof(errstr));
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rd_kafka_conf_set_opaque(conf, k);
    } else {
        rd_kafka_conf_set(conf, "group.id", "ktest-reader", errstr,
                          sizeof(errstr));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                          sizeof(errstr));
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "20", errstr,
                          sizeof(errstr));
    }
    rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    ck_assert_msg(rk != NULL, "%s", errstr);
    return rk;
}

static void
assign_all(rd_kafka_t *rk, const char *topic, int partitions)
{
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(partitions);

    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(rk, l), 0);
    rd_kafka_topic_partition_list_destroy(l);
}

void
ktest_setup(ktest_t *k, const char *name, int partitions)
{
    char suffix[32];
    const char *topics[] = {"topics", NULL};
    char *out = NULL;
    int rc;

    memset(k, 0, sizeof(*k));
    snprintf(k->name, sizeof(k->name), "%s", name);
    k->partitions = partitions;
    k->brokers = brokers();
    k->db = itest_fresh_db(name, k->conninfo, sizeof(k->conninfo));
    itest_owner_conninfo(name, k->owner_conninfo, sizeof(k->owner_conninfo));
    snprintf(suffix, sizeof(suffix), "%lld-%d", (long long)od_now_us(),
             (int)getpid());
    snprintf(k->commands, sizeof(k->commands), "it.%s.%s.commands", name,
             suffix);
    snprintf(k->events, sizeof(k->events), "it.%s.%s.events", name, suffix);
    snprintf(k->dlq, sizeof(k->dlq), "it.%s.%s.dlq", name, suffix);
    snprintf(k->group, sizeof(k->group), "it-%s-%s", name, suffix);
    rc = ktest_cli(k, topics, &out);
    ck_assert_msg(rc == 0, "orderd topics failed: %s", out);
    ck_assert_ptr_nonnull(strstr(out, k->commands));
    free(out);
    k->producer = make_client(k, RD_KAFKA_PRODUCER);
    k->consumer = make_client(k, RD_KAFKA_CONSUMER);
    k->dlq_consumer = make_client(k, RD_KAFKA_CONSUMER);
    assign_all(k->consumer, k->events, partitions);
    assign_all(k->dlq_consumer, k->dlq, 1);
    k->seen = json_object();
    k->results = json_array();
    k->other = json_array();
}

void
ktest_teardown(ktest_t *k)
{
    if (k->producer != NULL) {
        rd_kafka_flush(k->producer, 10000);
        rd_kafka_destroy(k->producer);
    }
    if (k->consumer != NULL) {
        rd_kafka_consumer_close(k->consumer);
        rd_kafka_destroy(k->consumer);
    }
    for (int i = 0; i < KTEST_MAX_DLQ; i++)
        if (k->dlq_msgs[i] != NULL)
            rd_kafka_message_destroy(k->dlq_msgs[i]);
    if (k->dlq_consumer != NULL) {
        rd_kafka_consumer_close(k->dlq_consumer);
        rd_kafka_destroy(k->dlq_consumer);
    }
    json_decref(k->seen);
    json_decref(k->results);
    json_decref(k->other);
    db_destroy(k->db);
    memset(k, 0, sizeof(*k));
}

void
ktest_send(ktest_t *k, const char *key, const char *payload)
{
    rd_kafka_resp_err_t e;

    do {
        e = rd_kafka_producev(
            k->producer, RD_KAFKA_V_TOPIC(k->commands),
            RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
            RD_KAFKA_V_VALUE((void *)payload, strlen(payload)),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(k->producer, 100);
    } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    ck_assert_msg(e == 0, "produce: %s", rd_kafka_err2str(e));
    rd_kafka_poll(k->producer, 0);
}

void
ktest_send_cmd(ktest_t *k, const char *payload)
{
    char key[256];

    ck_assert_int_eq(
        cli_command_key(payload, strlen(payload), key, sizeof(key)), 0);
    ktest_send(k, key[0] ? key : NULL, payload);
}

void
ktest_flush(ktest_t *k)
{
    ck_assert_int_eq(rd_kafka_flush(k->producer, 60000), 0);
    ck_assert_int_eq(k->produce_failed, 0);
}

static void
take_event(ktest_t *k, const rd_kafka_message_t *rkm)
{
    json_t *ev = json_loadb(rkm->payload, rkm->len, 0, NULL);
    const char *id, *type;

    ck_assert_msg(ev != NULL, "an event that is not JSON: %.*s", (int)rkm->len,
                  (const char *)rkm->payload);
    id = json_string_value(json_object_get(ev, "event_id"));
    type = json_string_value(json_object_get(ev, "type"));
    ck_assert_msg(id != NULL && type != NULL, "event without id or type");
    if (json_object_get(k->seen, id) == NULL) {
        itest_log_event(rkm->payload, rkm->len);
        json_object_set(k->seen, id, ev);
        json_array_append(
            strcmp(type, "command.result") == 0 ? k->results : k->other, ev);
    }
    json_decref(ev);
}

/* Reads at most one event (waits up to 200 ms). */
static void
read_event(ktest_t *k)
{
    rd_kafka_message_t *rkm = rd_kafka_consumer_poll(k->consumer, 200);

    if (rkm == NULL)
        return;
    if (rkm->err == 0)
        take_event(k, rkm);
    rd_kafka_message_destroy(rkm);
}

int
ktest_wait_results(ktest_t *k, int n, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;

    while ((int)json_array_size(k->results) < n && od_mono_us() < end) {
        read_event(k);
    }
    return (int)json_array_size(k->results);
}

static int
unseen(ktest_t *k, const char *const *ids)
{
    int n = 0;

    for (; *ids != NULL; ids++)
        if (json_object_get(k->seen, *ids) == NULL)
            n++;
    return n;
}

int
ktest_wait_seen(ktest_t *k, const char *const *ids, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;
    int left;

    while ((left = unseen(k, ids)) > 0 && od_mono_us() < end) {
        read_event(k);
    }
    return left;
}

int
ktest_wait_dlq(ktest_t *k, int n, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;

    while (k->dlq_count < n && od_mono_us() < end) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(k->dlq_consumer, 200);

        if (rkm == NULL)
            continue;
        if (rkm->err == 0 && k->dlq_count < KTEST_MAX_DLQ) {
            k->dlq_msgs[k->dlq_count++] = rkm;
            continue;
        }
        if (rkm->err == 0)
            k->dlq_count++;
        rd_kafka_message_destroy(rkm);
    }
    return k->dlq_count;
}

const char *
ktest_dlq_header(ktest_t *k, int i, const char *name, size_t *len)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *v = NULL;

    ck_assert_msg(i >= 0 && i < KTEST_MAX_DLQ && k->dlq_msgs[i] != NULL,
                  "no DLQ message %d read", i);
    if (rd_kafka_message_headers(k->dlq_msgs[i], &hdrs) != 0 ||
        rd_kafka_header_get_last(hdrs, name, &v, len) != 0)
        return NULL;
    return v;
}

json_t *
ktest_result(ktest_t *k, const char *dedup_key, int nth)
{
    size_t i;
    json_t *ev;

    json_array_foreach(k->results, i, ev)
    {
        const char *key = json_string_value(json_object_get(ev, "dedup_key"));

        if (key != NULL && strcmp(key, dedup_key) == 0 && nth-- == 0)
            return ev;
    }
    return NULL;
}

int
ktest_count_results(ktest_t *k, const char *dedup_key)
{
    int n = 0;

    while (ktest_result(k, dedup_key, n) != NULL)
        n++;
    return n;
}

int64_t
ktest_wait_sql(ktest_t *k, const char *sql, int64_t expected, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;
    int64_t v;

    for (;;) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        v = itest_int(k->db, sql);
        if (v == expected || od_mono_us() >= end)
            return v;
        nanosleep(&ts, NULL); /* polling interval, not synchronisation */
    }
}

/* SASL clients ---------------------------------------------------------- */

static const char *
sasl_env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? v : NULL;
}

int
ktest_sasl_available(void)
{
    return sasl_env("ORDERD_TEST_KAFKA_SASL_BROKERS") != NULL &&
           sasl_env("ORDERD_TEST_KAFKA_CLIENTS_DIR") != NULL;
}

const char *
ktest_sasl_brokers(void)
{
    const char *b = sasl_env("ORDERD_TEST_KAFKA_SASL_BROKERS");

    ck_assert_msg(b != NULL, "ORDERD_TEST_KAFKA_SASL_BROKERS is not set: run "
                             "through scripts/test");
    return b;
}

const char *
ktest_sasl_props(const char *principal, char *path, size_t len)
{
    const char *dir = sasl_env("ORDERD_TEST_KAFKA_CLIENTS_DIR");

    ck_assert_msg(dir != NULL, "ORDERD_TEST_KAFKA_CLIENTS_DIR is not set: run "
                               "through scripts/test");
    snprintf(path, len, "%s/%s.properties", dir, principal);
    ck_assert_msg(access(path, R_OK) == 0,
                  "%s: %s (scripts/kafka start "
                  "writes it)",
                  path, strerror(errno));
    return path;
}

typedef struct sasl_state {
    rd_kafka_resp_err_t error; /* last client-level error (error_cb) */
    int auth_failed;
} sasl_state_t;

typedef struct delivery {
    int done;
    rd_kafka_resp_err_t err;
} delivery_t;

static void
sasl_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    sasl_state_t *st = opaque;

    (void)rk;
    (void)reason;
    st->error = (rd_kafka_resp_err_t)err;
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION)
        st->auth_failed = 1;
}

static void
sasl_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    delivery_t *d = rkm->_private;

    (void)rk;
    (void)opaque;
    if (d != NULL) {
        d->err = rkm->err;
        d->done = 1;
    }
}

rd_kafka_t *
ktest_sasl_producer(const char *principal, const char *const *props)
{
    od_config_t cfg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    sasl_state_t *st = calloc(1, sizeof(*st));
    char path[1024], err[512];
    rd_kafka_t *rk;

    ck_assert_ptr_nonnull(st);
    /* the same reader `orderd -F` uses, on the file scripts/kafka wrote */
    memset(&cfg, 0, sizeof(cfg));
    ck_assert_msg(config_load_kafka_file(
                      &cfg, ktest_sasl_props(principal, path, sizeof(path)),
                      err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers",
                                       ktest_sasl_brokers(), err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    for (int i = 0; i < cfg.nkafka; i++)
        ck_assert_msg(rd_kafka_conf_set(conf, cfg.kafka_keys[i],
                                        cfg.kafka_values[i], err,
                                        sizeof(err)) == RD_KAFKA_CONF_OK,
                      "%s", err);
    for (; props != NULL && props[0] != NULL; props += 2)
        ck_assert_msg(rd_kafka_conf_set(conf, props[0], props[1], err,
                                        sizeof(err)) == RD_KAFKA_CONF_OK,
                      "%s", err);
    config_free(&cfg);
    rd_kafka_conf_set_error_cb(conf, sasl_error_cb);
    rd_kafka_conf_set_dr_msg_cb(conf, sasl_dr_cb);
    rd_kafka_conf_set_opaque(conf, st);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    ck_assert_msg(rk != NULL, "%s", err);
    return rk;
}

void
ktest_sasl_destroy(rd_kafka_t *rk)
{
    sasl_state_t *st = rd_kafka_opaque(rk);

    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(rk, 0);
    rd_kafka_destroy(rk);
    free(st);
}

rd_kafka_resp_err_t
ktest_produce_wait(rd_kafka_t *rk, const char *topic, const char *key,
                   const char *payload, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;
    delivery_t d = {0, RD_KAFKA_RESP_ERR_NO_ERROR};
    rd_kafka_resp_err_t e;

    e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                          RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                          RD_KAFKA_V_VALUE((void *)payload, strlen(payload)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_OPAQUE(&d), RD_KAFKA_V_END);
    ck_assert_msg(e == 0, "produce: %s", rd_kafka_err2str(e));
    while (!d.done && od_mono_us() < end)
        rd_kafka_poll(rk, 100);
    if (!d.done) {
        /* d lives on this stack: the report must not outlive it */
        rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        end = od_mono_us() + 10 * 1000000LL;
        while (!d.done && od_mono_us() < end)
            rd_kafka_poll(rk, 100);
        ck_assert_msg(d.done, "no delivery report even after purging");
        return RD_KAFKA_RESP_ERR__TIMED_OUT;
    }
    return d.err;
}

int
ktest_sasl_auth_failed(rd_kafka_t *rk, int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;
    sasl_state_t *st = rd_kafka_opaque(rk);

    while (!st->auth_failed && od_mono_us() < end)
        rd_kafka_poll(rk, 100);
    return st->auth_failed;
}

/* ACLs ------------------------------------------------------------------ */

/* Runs one admin request on the test's plaintext producer (the super
 * user) and returns its result event (caller destroys). */
static rd_kafka_event_t *
admin_wait(rd_kafka_queue_t *q, const char *what)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);

    ck_assert_msg(ev != NULL, "%s: no answer within 30 s", what);
    ck_assert_msg(rd_kafka_event_error(ev) == 0, "%s: %s", what,
                  rd_kafka_event_error_string(ev));
    return ev;
}

static size_t
acl_count(ktest_t *k, rd_kafka_queue_t *q, rd_kafka_AclBindingFilter_t *f)
{
    rd_kafka_event_t *ev;
    size_t n;

    rd_kafka_DescribeAcls(k->producer, f, NULL, q);
    ev = admin_wait(q, "DescribeAcls");
    rd_kafka_DescribeAcls_result_acls(rd_kafka_event_DescribeAcls_result(ev),
                                      &n);
    rd_kafka_event_destroy(ev);
    return n;
}

void
ktest_acl_allow(ktest_t *k, const char *principal, rd_kafka_ResourceType_t type,
                const char *name, rd_kafka_AclOperation_t op)
{
    char user[128], errstr[512];
    rd_kafka_queue_t *q = rd_kafka_queue_new(k->producer);
    rd_kafka_AclBinding_t *b;
    rd_kafka_AclBindingFilter_t *f;
    rd_kafka_event_t *ev;
    const rd_kafka_acl_result_t **res;
    size_t n;
    int64_t end;

    snprintf(user, sizeof(user), "User:%s", principal);
    b = rd_kafka_AclBinding_new(
        type, name, RD_KAFKA_RESOURCE_PATTERN_LITERAL, user, "*", op,
        RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, errstr, sizeof(errstr));
    ck_assert_msg(b != NULL, "%s", errstr);
    rd_kafka_CreateAcls(k->producer, &b, 1, NULL, q);
    ev = admin_wait(q, "CreateAcls");
    res = rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(ev),
                                          &n);
    ck_assert_int_eq(n, 1);
    ck_assert_msg(rd_kafka_acl_result_error(res[0]) == NULL, "CreateAcls: %s",
                  rd_kafka_error_string(rd_kafka_acl_result_error(res[0])));
    rd_kafka_event_destroy(ev);
    rd_kafka_AclBinding_destroy(b);

    /* The controller has committed the ACL; the broker's authorizer applies
     * it when it replays the metadata log. DescribeAcls answers from that
     * authorizer, so once it lists the ACL, requests are judged by it. */
    f = rd_kafka_AclBindingFilter_new(
        type, name, RD_KAFKA_RESOURCE_PATTERN_LITERAL, user, "*", op,
        RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW, errstr, sizeof(errstr));
    ck_assert_msg(f != NULL, "%s", errstr);
    end = od_mono_us() + 30 * 1000000LL;
    while (acl_count(k, q, f) == 0) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        ck_assert_msg(od_mono_us() < end,
                      "ACL for %s on %s not visible after 30 s", principal,
                      name);
        nanosleep(&ts, NULL); /* polling interval, not synchronisation */
    }
    rd_kafka_AclBinding_destroy(f);
    rd_kafka_queue_destroy(q);
}
