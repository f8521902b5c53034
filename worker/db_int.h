/* db_int.h - what the libpq room's files (db*.c) share and nobody else
 * sees: a connection's state, a result set as a PGresult */
#ifndef OD_DB_INT_H
#define OD_DB_INT_H

#include <stdatomic.h>

#include <libpq-fe.h>

#include "db.h"

struct db_rows {
    PGresult *res;
};

#define DB_MAX_PREPARED 256

/* A statement waiting for the next call's round trip: a utility statement
 * (sql), or a named statement with copies of its parameters. The final
 * statement of a call is described the same way, pointing at the caller's
 * parameters. */
typedef struct db_call {
    const char *sql;
    const db_stmt_t *stmt;
    int nparams;
    const char *const *params;
    const int *lengths;
    const int *formats;
    void *mem; /* the copies (queued named statements only) */
    db_rows_t **slot;
    db_tx_t tx; /* a transaction control statement, else 0 */
} db_call_t;

struct db {
    PGconn *conn;
    char *conninfo;
    char appname[64];
    char sqlstate[6];
    const db_stmt_t *prepared[DB_MAX_PREPARED];
    int nprepared;
    db_call_t *queued;
    int nqueued;
    int capqueued;
    int failed_queued; /* the last call failed in a queued named statement */
    int abandoned;     /* the last wait gave up on a silent server */
};

/* db.c's, for db_conn.c */
extern atomic_llong db_round_trips;
extern int db_reply_timeout_ms;
void db_queue_clear(db_t *db, int runs_after_savepoint);
PGresult *db_exec_wait(db_t *db, int sent);

#endif
