/* cli.h - the operator subcommands of the orderd binary */
#ifndef OD_CLI_H
#define OD_CLI_H

#include "config.h"
#include "log.h"

/*
 * Exit statuses, one table for every subcommand (docs/operations.md,
 * "Exit status"):
 *   CLI_EXIT_OK        done
 *   CLI_EXIT_FAILURE   the command ran and failed, or found what it looks
 *                      for missing: a server refused or failed an
 *                      operation, check found violations, order found no
 *                      such order, events saw fewer than --count
 *   CLI_EXIT_USAGE     bad command line, variable or configuration file:
 *                      nothing was done
 *   CLI_EXIT_HALTED    run stopped on an internal error
 *                      (--on-internal-error halt)
 *   CLI_EXIT_WATCHDOG  run's orderly shutdown hung and was cut short
 *   CLI_EXIT_UNCHECKED the database could not be used: check could not
 *                      check (unreachable, a query failed: says nothing
 *                      about the invariants); run was refused by Postgres
 *                      at start (RUN_EXIT_PG_REFUSED: password, role or
 *                      database, which retrying cannot mend)
 */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_HALTED 3
#define CLI_EXIT_WATCHDOG 4
#define CLI_EXIT_UNCHECKED 5

/* Each returns the process exit status (CLI_EXIT_*). */
/* migrate: applies the pending migrations, or lists them (cfg->dry_run) */
int cli_migrate(const od_config_t *cfg);
int cli_topics(const od_config_t *cfg);
/* source_name: the source whose topic gets the lines (NULL: "default");
 * validate: check every line with the worker's rules first and send
 * nothing (exit 2) if one fails */
int cli_send(const od_config_t *cfg, int raw, const char *source_name,
             int validate);
int cli_replay(const od_config_t *cfg, const char *from_time, int dry_run,
               const char *topic, int loud);
int cli_check(const od_config_t *cfg);
/* prints the order as JSON, with the actions its status allows next */
int cli_order(const od_config_t *cfg, const char *order_id);
/* orderd report: the analytics of report.h as text or JSON */
int cli_report(const od_config_t *cfg);
/*
 * What SIGHUP re-reads: the log level and format the configuration gives
 * now (read as at start). Returns 0, or -1 with err filled.
 */
typedef int (*cli_reload_fn)(void *arg, log_level_t *level, int *json,
                             char *err, size_t errlen);
/* The worker. reload (may be NULL: SIGHUP changes nothing) is called from
 * the main thread, never from the signal handler. */
int cli_run(const od_config_t *cfg, cli_reload_fn reload, void *reload_arg);
/* Prints events of the events topic from the beginning, one line each (raw
 * JSON with cfg->raw), until cfg->count events (0: no limit), the end of
 * the topic (unless cfg->follow) or cfg->timeout_ms (0: none). */
int cli_events(const od_config_t *cfg);

/* orderd dlq: which dead letters, and how long to read */
typedef struct cli_dlq_opts {
    long count;              /* at most this many (0: every one selected) */
    int timeout_s;           /* give up reading after this (0: 30 s) */
    int all;                 /* redrive: every dead letter */
    int partition;           /* -1: every partition (0 with offsets) */
    const char *offsets;     /* "3,5-9": only these offsets, or NULL */
    const char *error_class; /* internal_error | poison, or NULL */
    const char *since;       /* RFC 3339: written at or after, or NULL */
} cli_dlq_opts_t;

/* Lists the selected dead letters as JSON lines (redrive 0), or produces
 * each to its source topic with an orderd-redrive-from header (redrive 1),
 * reading the dead-letter topic up to its end. */
int cli_dlq(const od_config_t *cfg, const cli_dlq_opts_t *opt, int redrive);

/* The Kafka key a command is produced with (contract key rule): the
 * smallest product ID it touches, else its order_id, else its dedup_key.
 * Writes into key (at least 64 bytes); returns 0, or -1 when the line is
 * not a JSON object. */
int cli_command_key(const char *line, size_t len, char *key, size_t keylen);

#endif
