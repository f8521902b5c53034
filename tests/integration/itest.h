/* itest.h - integration test harness: a fresh migrated database per test,
 * commands applied through the real per-command path, results read back */
#ifndef OD_ITEST_H
#define OD_ITEST_H

#include <check.h>
#include <jansson.h>

#include "../../worker/apply.h"
#include "../../worker/db.h"

/* The config itest_apply uses (tests may change fields before applying). */
extern apply_config_t itest_cfg;
/* The source itest_apply's commands come from: "default" on
 * orders.commands, every role admitted (contract v1 trust). */
extern const od_source_t itest_source;

/*
 * Drops and creates database "it_<name>" on the test cluster and migrates
 * it, both as the schema owner (ORDERD_TEST_MIGRATE_PG), then returns a
 * connection to it as the runtime role (ORDERD_TEST_PG), the role every
 * worker and apply of the suite runs as. Both variables are libpq strings
 * for an existing database (scripts/test sets them; without
 * ORDERD_TEST_MIGRATE_PG one role does both). conninfo (may be NULL)
 * receives the runtime role's connection string for the new database.
 * Aborts the test on failure.
 */
db_t *itest_fresh_db(const char *name, char *conninfo, size_t len);

/*
 * A new connection to "it_<name>" as the schema owner, for fixtures the
 * runtime role may not make (DDL such as a test trigger or table, dumps);
 * caller destroys it. Aborts the test on failure.
 */
db_t *itest_owner_db(const char *name);
/* The owner's connection string for "it_<name>", written into buf. */
const char *itest_owner_conninfo(const char *name, char *buf, size_t len);
/* Runs SQL without results on "it_<name>" as the owner; fails the test on
 * error. */
void itest_owner_exec(const char *name, const char *sql);

/*
 * Applies one JSON command (as a Kafka message body on orders.commands
 * partition 0 at the given offset, Kafka timestamp = now) in its own
 * transaction, and returns its command.result event (caller decrefs), or
 * NULL when the message went to the dead-letter topic. Fails the test on a
 * transient or fatal status.
 */
json_t *itest_apply(db_t *db, const char *json_cmd);
/* The same, as a message on source's topic. */
json_t *itest_apply_from(db_t *db, const od_source_t *source,
                         const char *json_cmd);
/* printf-style variant */
json_t *itest_applyf(db_t *db, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* outcome and reason of a result ("applied", "rejected", ...) */
const char *itest_outcome(const json_t *ev);
const char *itest_reason(const json_t *ev);

/* Runs SQL returning one integer (first row, first column; NULL -> -1). */
int64_t itest_int(db_t *db, const char *sql);
/* Runs SQL returning one text value into buf ("" for no row/NULL). */
const char *itest_text(db_t *db, const char *sql, char *buf, size_t len);
/* Runs SQL without results; fails the test on error. */
void itest_exec(db_t *db, const char *sql);

/* The invariant every test must leave true: stock = sum of the ledger for
 * every product and variant, no negative stock. Fails the test otherwise. */
void itest_assert_stock_matches_ledger(db_t *db);

/*
 * Records an event the test saw (its payload, one JSON text) for the
 * contract check that runs after the suite: appended as one line to
 * $ORDERD_TEST_EVENTS_DIR/<test name>.<pid>.jsonl. Does nothing when the
 * variable is unset (a test run by hand).
 */
void itest_log_event(const char *payload, size_t len);

/* Runs a check Suite and returns the process exit code. */
int itest_run(Suite *s);

#endif
