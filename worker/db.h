/* db.h - the only home of libpq calls: connections, transactions, prepared
 * statements and SQLSTATE classification */
#ifndef OD_DB_H
#define OD_DB_H

#include "od.h"
#include "pgarray.h"

typedef struct db db_t;
typedef struct db_rows db_rows_t; /* one statement's result rows */

/*
 * A named statement. Handlers keep theirs in a static table at the top of
 * their file; db prepares each one lazily, once per connection, the first
 * time it is run (the pointer identifies the statement).
 */
typedef struct db_stmt {
    const char *name;
    const char *sql;
} db_stmt_t;

/* Connects with a libpq connection string (NULL or "" means the PG*
 * environment variables). Returns NULL with err filled on failure; the
 * message never contains the password. Caller owns the result. */
db_t *db_connect(const char *conninfo, char *err, size_t errlen);
/*
 * Connects as db_connect does, and says whether waiting can help:
 * OD_OK (*out set, caller owns it); OD_RETRY when Postgres could not be
 * reached or is not accepting sessions yet (down, starting, shutting
 * down, too many connections); OD_FATAL when the server refused the
 * session for a reason that waiting does not fix: SQLSTATE 28P01 (wrong
 * password, or a role that does not exist under password
 * authentication), 28000 (no such role, no pg_hba.conf entry) or 3D000
 * (no such database). err says why, without the password. After a
 * failed db_reconnect, db_sqlstate tells the same.
 */
od_status_t db_try_connect(const char *conninfo, db_t **out, char *err,
                           size_t errlen) OD_MUSTCHECK;
/* Same, but a handle is returned even when Postgres cannot be reached
 * (the failure is logged): long-running threads reconnect through
 * db_reconnect on their own back-off. NULL only when out of memory.
 * appname is the session's application_name in pg_stat_activity unless
 * the connection string sets one ("orderd" for db_connect). */
db_t *db_new(const char *conninfo, const char *appname);
void db_destroy(db_t *db);

/*
 * Bounds every wait for the server's reply to timeout_ms (0: no bound, the
 * default): a server silent past it has its connection abandoned, and the
 * call fails with OD_RETRY ("no reply from postgres within N ms"), after
 * which db_ok is false. Sessions opened afterwards also get a
 * statement_timeout of 80% of the bound, so the server cancels a slow
 * statement before the client gives up on it. Call once at start-up,
 * before any connection is opened.
 */
void db_set_reply_timeout(int timeout_ms);

/*
 * Writes conninfo (NULL or "" gives "") for display into out (len bytes):
 * the options libpq reads from it, in key=value form, with every secret
 * option (password, sslpassword, ...) shown as ***; a plain database name
 * as dbname=NAME. Returns 0, or -1 when libpq cannot parse it: out then
 * says so without quoting any of it.
 */
int db_conninfo_masked(const char *conninfo, char *out, size_t len);
/* 1 when libpq parses s as a connection string (db_conninfo.c) */
int db_conninfo_parses(const char *s);
/*
 * Copies the first line of msg, a libpq message about a connection made
 * with conninfo, into out (len bytes) with the values of its secret
 * options and of PGPASSWORD replaced by ***.
 */
void db_conninfo_scrub(const char *conninfo, const char *msg, char *out,
                       size_t len);

/* 1 if the connection is usable */
int db_ok(db_t *db);
/* Drops and reopens the connection (after a transient error). OD_RETRY
 * when that failed, OD_FATAL when the server refused the session (as for
 * db_try_connect); long-running threads retry both, as a password may be
 * fixed while they run. */
od_status_t db_reconnect(db_t *db, char *err, size_t errlen) OD_MUSTCHECK;

/*
 * Runs utility SQL (migrations, operator commands; several statements
 * separated by ';' only when nothing is queued: queued statements go with
 * it in one pipeline, which takes one statement per message) without
 * parameters and without results. Transactions: db_tx.
 * OD_RETRY for transient faults, OD_FATAL otherwise.
 */
od_status_t db_exec(db_t *db, const char *sql, char *err,
                    size_t errlen) OD_MUSTCHECK;

/*
 * Runs a named statement with text parameters (NULL entries are SQL NULL).
 * On OD_OK and when rows is not NULL, *rows receives the result (caller
 * frees with db_rows_free). OD_RETRY for transient faults (connection
 * lost, 40001, 40P01, 57P01..57P03, class 08), OD_FATAL for any other error:
 * then db_sqlstate() tells which.
 */
od_status_t db_run(db_t *db, const db_stmt_t *stmt, int nparams,
                   const char *const *params, db_rows_t **rows, char *err,
                   size_t errlen) OD_MUSTCHECK;

/* Same, with explicit parameter lengths and formats (1 = binary, for
 * bytea); lengths and formats may be NULL for all-text parameters. */
od_status_t db_run_ex(db_t *db, const db_stmt_t *stmt, int nparams,
                      const char *const *params, const int *lengths,
                      const int *formats, db_rows_t **rows, char *err,
                      size_t errlen) OD_MUSTCHECK;

/* Same, for ad-hoc SQL that is not worth preparing (operator commands). */
od_status_t db_query(db_t *db, const char *sql, int nparams,
                     const char *const *params, db_rows_t **rows, char *err,
                     size_t errlen) OD_MUSTCHECK;

/*
 * Transaction control, typed. The queue follows it: ROLLBACK drops what
 * is queued, ROLLBACK TO SAVEPOINT drops the named statements queued after
 * the last queued SAVEPOINT (their work is undone anyway). orderd uses one
 * savepoint name: a command at a time.
 */
typedef enum db_tx {
    DB_TX_BEGIN = 1,
    DB_TX_COMMIT,
    DB_TX_ROLLBACK,
    DB_TX_SAVEPOINT,
    DB_TX_RELEASE,
    DB_TX_ROLLBACK_TO
} db_tx_t;

/* Runs tx after whatever is queued, in one round trip. OD_RETRY for
 * transient faults, OD_FATAL otherwise (db_failed_queued() says whether a
 * queued statement failed). */
od_status_t db_tx(db_t *db, db_tx_t tx, char *err, size_t errlen) OD_MUSTCHECK;
/* Queues tx to be sent with the next call that goes to the server. */
void db_queue_tx(db_t *db, db_tx_t tx);
/* Sends what is queued (one round trip; nothing when nothing is). */
od_status_t db_flush(db_t *db, char *err, size_t errlen) OD_MUSTCHECK;

#define db_begin(db, err, len) db_tx((db), DB_TX_BEGIN, (err), (len))
#define db_commit(db, err, len) db_tx((db), DB_TX_COMMIT, (err), (len))
#define db_rollback(db, err, len) db_tx((db), DB_TX_ROLLBACK, (err), (len))
#define db_release(db, err, len) db_tx((db), DB_TX_RELEASE, (err), (len))
#define db_rollback_to(db, err, len)                                           \
    db_tx((db), DB_TX_ROLLBACK_TO, (err), (len))

/*
 * Queues a named statement to be sent with the next db_run/db_query/db_exec
 * in the same round trip, after what is queued already; its parameters are
 * copied. rows may be NULL when its rows are not needed; else *rows is
 * NULL until that call has run, then holds them (caller frees), or stays
 * NULL if the statement did not run. If it fails, that call fails with its
 * error and db_failed_queued() is 1. ROLLBACK drops the queue, ROLLBACK TO
 * SAVEPOINT the named statements queued after the savepoint. OD_FATAL
 * only when out of memory.
 */
od_status_t db_queue_run(db_t *db, const db_stmt_t *stmt, int nparams,
                         const char *const *params, const int *lengths,
                         const int *formats, db_rows_t **rows, char *err,
                         size_t errlen) OD_MUSTCHECK;

/*
 * Queues stmt with the columns' array literals as its parameters (one per
 * column, in order) when they hold at least one row; frees the columns
 * either way. OD_OK, or OD_RETRY when out of memory.
 */
od_status_t db_queue_cols(db_t *db, const db_stmt_t *stmt, pgcols_t *cols,
                          db_rows_t **rows, char *err,
                          size_t errlen) OD_MUSTCHECK;

/* 1 when the last call failed in a statement queued by db_queue_run */
int db_failed_queued(const db_t *db);

/* SQLSTATE of the last failed call on db ("" if none) */
const char *db_sqlstate(const db_t *db);
/* 1 if the SQLSTATE denotes a transient fault worth retrying */
int db_sqlstate_is_transient(const char *sqlstate);

int db_nrows(const db_rows_t *rows);
/* text value of a cell (never NULL: "" for SQL NULL) */
const char *db_val(const db_rows_t *rows, int row, int col);
int db_isnull(const db_rows_t *rows, int row, int col);
int64_t db_int64(const db_rows_t *rows, int row, int col);
/* boolean cell: 1 for 't' */
int db_bool(const db_rows_t *rows, int row, int col);
/* a bytea cell decoded into a malloc'ed buffer (caller frees), *len set */
unsigned char *db_bytea(const db_rows_t *rows, int row, int col, size_t *len);
void db_rows_free(db_rows_t *rows);

/* Round trips to the server so far, all connections of the process
 * together: each pipeline sync and each synchronous statement counts one,
 * as does the session setup at connect. */
long long db_round_trips_total(void);

/* Formats an int64 as a text parameter into buf (at least 24 bytes). */
const char *db_int_param(char *buf, int64_t v);

#endif
