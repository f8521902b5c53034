/* ktest.h - end-to-end harness: private topics, group and database per
 * test, the real orderd binary as a subprocess, results read back from the
 * events topic */
#ifndef OD_KTEST_H
#define OD_KTEST_H

#include <sys/types.h>

#include <librdkafka/rdkafka.h>

#include "itest.h"

#define KTEST_MAX_DLQ 64

typedef struct ktest {
    char name[64];
    char conninfo[1024];       /* runtime role: workers, the CLI, db */
    char owner_conninfo[1024]; /* schema owner: ORDERD_MIGRATE_PG */
    db_t *db;
    char commands[160], events[160], dlq[160], group[160];
    const char *brokers;
    int partitions;
    rd_kafka_t *producer;
    rd_kafka_t *consumer; /* events topic, all partitions, from start */
    rd_kafka_t *dlq_consumer;
    json_t *seen;    /* event_id -> event, every event read */
    json_t *results; /* command.result events, first copy each */
    json_t *other;   /* other events (stock.low, order.expired...) */
    int dlq_count;
    /* the first KTEST_MAX_DLQ dead-letter messages, as read */
    rd_kafka_message_t *dlq_msgs[KTEST_MAX_DLQ];
    int produce_failed;
    /* when set before ktest_worker_start: the worker's stderr is appended
     * to this file */
    char worker_stderr[256];
} ktest_t;

/* Fresh database it_<name>, topics with a unique suffix created through
 * `orderd topics`, a producer and an events consumer. k->db and every
 * orderd the test starts connect as the runtime role. */
void ktest_setup(ktest_t *k, const char *name, int partitions);
void ktest_teardown(ktest_t *k);

/* Starts `orderd run` against the test's database and topics; extra
 * arguments (NULL-terminated, may be NULL) follow `run`. */
pid_t ktest_worker_start(ktest_t *k, const char *const *extra);
/* As ktest_worker_start, with the worker's stderr (its log) written to
 * log_path (created or truncated, mode 0600). */
pid_t ktest_worker_start_logged(ktest_t *k, const char *const *extra,
                                const char *log_path);
/* Sends sig, waits; returns the exit status (128+signal if killed). */
int ktest_worker_stop(pid_t pid, int sig);
/* Runs the orderd CLI with the test's configuration; returns its exit
 * status and, when out is not NULL, its stdout (caller frees). */
int ktest_cli(ktest_t *k, const char *const *args, char **out);
/* The same with input (may be NULL) as the command's standard input. */
int ktest_cli_input(ktest_t *k, const char *const *args, const char *input,
                    char **out);

/* Produces one message (key may be NULL) without waiting. */
void ktest_send(ktest_t *k, const char *key, const char *payload);
/* The same on one partition of the commands topic (partition chosen by
 * the test, not by the key's hash). */
void ktest_send_partition(ktest_t *k, int32_t partition, const char *key,
                          const char *payload);
/* Produces one command with the contract's key rule. */
void ktest_send_cmd(ktest_t *k, const char *payload);
/* Waits for every produced message to be acknowledged. */
void ktest_flush(ktest_t *k);

/* Reads events until at least n command.result events (distinct
 * event_id) have arrived or timeout_s passes; returns how many. */
int ktest_wait_results(ktest_t *k, int n, int timeout_s);
/* Reads the DLQ topic until n messages arrived or timeout; returns count */
int ktest_wait_dlq(ktest_t *k, int n, int timeout_s);
/* The ith (0-based, in reading order) DLQ message's header called name:
 * its value (not NUL-terminated) and *len, or NULL if it has none. */
const char *ktest_dlq_header(ktest_t *k, int i, const char *name, size_t *len);
/*
 * Reads the events topic up to its end: the high watermark of every
 * partition, queried when called. Everything the outbox had published by
 * then is read (and deduplicated by event_id) when it returns. Fails the
 * test when the end is not reached within timeout_s.
 */
void ktest_read_to_end(ktest_t *k, int timeout_s);
/* As ktest_wait_results, then ktest_read_to_end: returns how many
 * distinct results the topic holds, so a result beyond the n expected
 * (a second result for a command) is counted, not left unread. */
int ktest_wait_results_exactly(ktest_t *k, int n, int timeout_s);
/* Reads events until every id of ids (a NULL-terminated array) has been
 * seen or timeout_s passes; returns how many are still unseen. */
int ktest_wait_seen(ktest_t *k, const char *const *ids, int timeout_s);
/* The nth (0-based) result for a dedup key, borrowed; NULL if none. */
json_t *ktest_result(ktest_t *k, const char *dedup_key, int nth);
/* How many results carry this dedup key. */
int ktest_count_results(ktest_t *k, const char *dedup_key);
/* Polls until the SQL's integer equals expected or timeout; returns the
 * last value seen. */
int64_t ktest_wait_sql(ktest_t *k, const char *sql, int64_t expected,
                       int timeout_s);

/*
 * The broker's SASL/SCRAM listener, where ACLs are enforced. scripts/test
 * exports ORDERD_TEST_KAFKA_SASL_BROKERS and ORDERD_TEST_KAFKA_CLIENTS_DIR
 * (the directory of the principals' librdkafka property files that
 * scripts/kafka writes: orderd, web, payments, ops).
 */
/* 1 when both variables are set (a test run by hand may lack them). */
int ktest_sasl_available(void);
const char *ktest_sasl_brokers(void);
/* The path of principal's property file, in path; fails if unreadable. */
const char *ktest_sasl_props(const char *principal, char *path, size_t len);
/* A producer authenticated as principal (its property file), with extra
 * librdkafka properties (key, value, ..., NULL; may be NULL) applied last,
 * e.g. a wrong sasl.password. Destroy with ktest_sasl_destroy. */
rd_kafka_t *ktest_sasl_producer(const char *principal,
                                const char *const *props);
void ktest_sasl_destroy(rd_kafka_t *rk);
/* Produces one message and waits up to timeout_s for its delivery report:
 * its error (0: delivered; RD_KAFKA_RESP_ERR__TIMED_OUT: no report, the
 * message was purged). */
rd_kafka_resp_err_t ktest_produce_wait(rd_kafka_t *rk, const char *topic,
                                       const char *key, const char *payload,
                                       int timeout_s);
/* Polls a ktest_sasl_producer until the broker refused its credentials
 * (RD_KAFKA_RESP_ERR__AUTHENTICATION) or timeout_s; 1 if it did. */
int ktest_sasl_auth_failed(rd_kafka_t *rk, int timeout_s);
/* Allows principal (a user name, without "User:") op on the literal
 * resource type/name (the cluster: RD_KAFKA_RESOURCE_BROKER,
 * "kafka-cluster"), as the plaintext listener's super user, and waits
 * until the broker's authorizer applies it. */
void ktest_acl_allow(ktest_t *k, const char *principal,
                     rd_kafka_ResourceType_t type, const char *name,
                     rd_kafka_AclOperation_t op);

#endif
