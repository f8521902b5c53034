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
    char conninfo[1024];
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
 * `orderd topics`, a producer and an events consumer. */
void ktest_setup(ktest_t *k, const char *name, int partitions);
void ktest_teardown(ktest_t *k);

/* Starts `orderd run` against the test's database and topics; extra
 * arguments (NULL-terminated, may be NULL) follow `run`. */
pid_t ktest_worker_start(ktest_t *k, const char *const *extra);
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

#endif
