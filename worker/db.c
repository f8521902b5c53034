/* db.c - libpq: connections, transactions, prepared statements, SQLSTATE
 * classification. Every libpq call of orderd lives in this room, db*.c:
 * here (statements, the pipeline, waits), db_conn.c (opening and closing
 * connections), db_rows.c (reading results) and db_conninfo.c
 * (connection strings without their secrets).
 *
 * DESIGN: no wait for the server is unbounded. A connection is opened with
 * TCP keepalives and tcp_user_timeout (a peer that vanished is noticed by
 * the kernel), and, once db_set_reply_timeout gave a bound, every wait for
 * a reply goes through db_get_result: it polls the socket with a deadline
 * and, when the server stays silent past it (a black-holed or half-open
 * connection, where the kernel sees nothing wrong because a middlebox
 * still acknowledges), abandons the connection. The caller sees a
 * transient failure and retries on a new connection; a COMMIT whose reply
 * never came is resolved by the caller, from what the retry reads back.
 * The server is asked to cancel a statement a little before that bound
 * (statement_timeout), so a merely slow statement fails with a clear
 * error instead of losing its connection. */
#include "db.h"

#include <stdatomic.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db_int.h"
#include "log.h"

/* The text of each transaction control statement. The queue's rules
 * depend on which one it is (db_call_t.tx), never on the text. */
static const char *const tx_sql[] = {
    [DB_TX_BEGIN] = "BEGIN",
    [DB_TX_COMMIT] = "COMMIT",
    [DB_TX_ROLLBACK] = "ROLLBACK",
    [DB_TX_SAVEPOINT] = "SAVEPOINT orderd_cmd",
    [DB_TX_RELEASE] = "RELEASE SAVEPOINT orderd_cmd",
    [DB_TX_ROLLBACK_TO] = "ROLLBACK TO SAVEPOINT orderd_cmd",
};

/* Every wait for the server's answer, on all connections of the process:
 * what a batch costs in latency when the database is across a network. */
atomic_llong db_round_trips;

/* The bound on every wait for a reply, in ms (0: none); set once at
 * start-up, before any thread connects. */
int db_reply_timeout_ms;

void
db_set_reply_timeout(int timeout_ms)
{
    db_reply_timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
}

int
db_sqlstate_is_transient(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 1; /* no SQLSTATE: the connection itself failed */
    return strncmp(s, "08", 2) == 0 || strcmp(s, "40001") == 0 ||
           strcmp(s, "40P01") == 0 || strcmp(s, "57P01") == 0 ||
           strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0 ||
           strcmp(s, "53300") == 0 || strcmp(s, "55P03") == 0 ||
           /* statement_timeout (db_set_reply_timeout), or a cancel */
           strcmp(s, "57014") == 0;
}

/*
 * Forgets queued statements: all of them, or (runs_after_savepoint) only
 * the named statements queued after the last queued SAVEPOINT, whose work
 * a ROLLBACK TO SAVEPOINT undoes anyway.
 */
void
db_queue_clear(db_t *db, int runs_after_savepoint)
{
    int from = 0, kept;

    if (runs_after_savepoint)
        for (int i = 0; i < db->nqueued; i++)
            if (db->queued[i].tx == DB_TX_SAVEPOINT)
                from = i + 1;
    kept = from;
    for (int i = from; i < db->nqueued; i++) {
        db_call_t *c = &db->queued[i];

        if (runs_after_savepoint && c->stmt == NULL) {
            db->queued[kept++] = *c;
            continue;
        }
        free(c->mem);
    }
    db->nqueued = kept;
}

/*
 * DESIGN: a failed connection has no PGresult, so its SQLSTATE is not a
 * field to read: libpq only puts the server's error into its message
 * text. The connection is therefore made step by step (PQconnectStart
 * and PQconnectPoll, which is what PQconnectdb does inside) with the
 * verbose error style set before the server answers: the message then
 * reads "FATAL:  28P01: password authentication failed ...", and the
 * code is taken from there, whatever language the server speaks. That
 * tells a refusal that waiting cannot fix (a wrong password, a missing
 * role or database) from a server that is not there yet.
 */

/* Gives up on the connection: the server has been silent too long. */
static void
db_abandon(db_t *db)
{
    log_warn("no reply from postgres within %d ms: abandoning the connection",
             db_reply_timeout_ms);
    PQfinish(db->conn);
    db->conn = NULL;
    db->nprepared = 0;
    db->abandoned = 1;
}

/*
 * The next result, as PQgetResult, but waiting at most the reply bound
 * for the server: past it the connection is abandoned (db->conn is NULL)
 * and NULL is returned. Without a bound, PQgetResult's own wait.
 */
static PGresult *
db_get_result(db_t *db)
{
    int64_t deadline;

    if (db->conn == NULL)
        return NULL;
    if (db_reply_timeout_ms <= 0)
        return PQgetResult(db->conn);
    deadline = od_mono_us() + (int64_t)db_reply_timeout_ms * 1000;
    /* whatever is still buffered goes out first: a sending client is
     * not waiting for the server yet */
    while (PQflush(db->conn) > 0) {
        struct pollfd pfd = {PQsocket(db->conn), POLLOUT | POLLIN, 0};
        int64_t left = deadline - od_mono_us();

        if (left <= 0 || poll(&pfd, 1, (int)(left / 1000) + 1) == 0) {
            db_abandon(db);
            return NULL;
        }
        if (pfd.revents & POLLIN)
            (void)PQconsumeInput(db->conn);
    }
    while (PQisBusy(db->conn)) {
        struct pollfd pfd = {PQsocket(db->conn), POLLIN, 0};
        int64_t left = deadline - od_mono_us();
        int r;

        if (left <= 0) {
            db_abandon(db);
            return NULL;
        }
        r = poll(&pfd, 1, (int)(left / 1000) + 1);
        if (r < 0 && errno != EINTR)
            break; /* PQgetResult reports the broken connection */
        if (r > 0 && !PQconsumeInput(db->conn))
            break; /* the same */
    }
    return PQgetResult(db->conn);
}

/*
 * As PQexec and its kin, after a PQsend* call whose return is sent: the
 * results of one query, the first error or else the last result (NULL
 * when the send failed or the server fell silent).
 */
PGresult *
db_exec_wait(db_t *db, int sent)
{
    PGresult *keep = NULL, *r;

    db->abandoned = 0;
    if (!sent)
        return NULL;
    while ((r = db_get_result(db)) != NULL) {
        if (keep != NULL && PQresultStatus(keep) == PGRES_FATAL_ERROR) {
            PQclear(r);
            continue;
        }
        PQclear(keep);
        keep = r;
    }
    if (db->conn == NULL) {
        PQclear(keep);
        return NULL;
    }
    return keep;
}

const char *
db_sqlstate(const db_t *db)
{
    return db->sqlstate;
}

/* Classifies a failed result, fills err and sqlstate, frees res. */
static od_status_t
db_fail(db_t *db, PGresult *res, const char *what, char *err, size_t errlen)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg =
        res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char scrubbed[512];

    snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state ? state : "");
    if (msg == NULL && db->conn != NULL) {
        /* libpq's own text (connection lost, ...), not the server's */
        db_conninfo_scrub(db->conninfo, PQerrorMessage(db->conn), scrubbed,
                          sizeof(scrubbed));
        msg = scrubbed;
    }
    if (msg == NULL && db->abandoned) {
        snprintf(scrubbed, sizeof(scrubbed),
                 "no reply from postgres within %d ms (connection abandoned)",
                 db_reply_timeout_ms);
        msg = scrubbed;
    }
    if (msg == NULL)
        msg = "no connection";
    od_err(err, errlen, "%s failed: %.*s%s%s%s", what, (int)strcspn(msg, "\n"),
           msg, db->sqlstate[0] ? " (SQLSTATE " : "", db->sqlstate,
           db->sqlstate[0] ? ")" : "");
    PQclear(res);
    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
        return OD_RETRY;
    /* state pointed into res: only db->sqlstate is still valid */
    return db->sqlstate[0] != '\0' && db_sqlstate_is_transient(db->sqlstate)
               ? OD_RETRY
               : OD_FATAL;
}

/* Appends a call to the queue (copied as is); -1 when out of memory. */
static int
db_queue_push(db_t *db, const db_call_t *c)
{
    if (db->nqueued == db->capqueued) {
        int cap = db->capqueued ? db->capqueued * 2 : 8;
        db_call_t *q = realloc(db->queued, (size_t)cap * sizeof(*q));

        if (q == NULL)
            return -1;
        db->queued = q;
        db->capqueued = cap;
    }
    db->queued[db->nqueued++] = *c;
    return 0;
}

static int
db_is_prepared(const db_t *db, const db_stmt_t *stmt)
{
    for (int i = 0; i < db->nprepared; i++)
        if (db->prepared[i] == stmt)
            return 1;
    return 0;
}

static int
db_send(db_t *db, const db_call_t *c)
{
    if (c->stmt != NULL)
        return PQsendQueryPrepared(db->conn, c->stmt->name, c->nparams,
                                   c->params, c->lengths, c->formats, 0);
    return PQsendQueryParams(db->conn, c->sql, c->nparams, NULL, c->params,
                             c->lengths, c->formats, 0);
}

/*
 * Sends the queued statements and last in one pipeline (with a Prepare
 * before each named statement this connection has not prepared yet) and
 * collects the results: the queued ones go to their slots, the first
 * failure is returned (later statements are PGRES_PIPELINE_ABORTED), else
 * last's result. *what names the failed statement. The queue is emptied.
 */
static PGresult *
db_pipeline(db_t *db, const db_call_t *last, const char **what)
{
    int n = db->nqueued + 1, nresults = 0, index = 0, nprepare = 0, ok;
    int *owner = malloc(sizeof(int) * (size_t)n * 2);
    PGresult *first_error = NULL, *result = NULL, *r;
    int failed = -1;

    *what = last->stmt ? last->stmt->name : last->sql;
    db->failed_queued = 0;
    ok = owner != NULL;
    for (int i = 0; ok && i < n; i++) {
        const db_call_t *c = i < db->nqueued ? &db->queued[i] : last;

        if (c->stmt != NULL && !db_is_prepared(db, c->stmt))
            nprepare++;
    }
    if (ok && db->nprepared + nprepare > DB_MAX_PREPARED) {
        /* a fixed set of statements: only a code change gets here */
        log_error("more than %d prepared statements", DB_MAX_PREPARED);
        ok = 0;
    }
    ok = ok && PQenterPipelineMode(db->conn);
    for (int i = 0; ok && i < n; i++) {
        const db_call_t *c = i < db->nqueued ? &db->queued[i] : last;
        int prepare = c->stmt != NULL && !db_is_prepared(db, c->stmt);

        for (int j = 0; prepare && j < i; j++)
            if (db->queued[j].stmt == c->stmt)
                prepare = 0; /* prepared earlier in this pipeline */
        if (prepare) {
            ok = PQsendPrepare(db->conn, c->stmt->name, c->stmt->sql, 0, NULL);
            owner[nresults++] = -1 - i;
        }
        if (ok) {
            ok = db_send(db, c);
            owner[nresults++] = i;
        }
    }
    if (ok)
        ok = PQpipelineSync(db->conn);
    if (ok)
        atomic_fetch_add(&db_round_trips, 1);
    db->abandoned = 0;
    while (ok) {
        ExecStatusType status;
        int who;

        r = db_get_result(db);
        if (r == NULL) {
            if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
                break;
            continue; /* end of one statement's results */
        }
        status = PQresultStatus(r);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        who = index < nresults ? owner[index] : n - 1;
        index++;
        if (status == PGRES_FATAL_ERROR && first_error == NULL) {
            first_error = r;
            failed = who < 0 ? -1 - who : who;
        } else if (status == PGRES_FATAL_ERROR ||
                   status == PGRES_PIPELINE_ABORTED) {
            PQclear(r);
        } else if (who < 0) {
            const db_stmt_t *stmt =
                -1 - who < db->nqueued ? db->queued[-1 - who].stmt : last->stmt;

            if (db->nprepared < DB_MAX_PREPARED)
                db->prepared[db->nprepared++] = stmt;
            PQclear(r);
        } else if (who < db->nqueued && db->queued[who].slot != NULL) {
            db_rows_t *rows = malloc(sizeof(*rows));

            if (rows != NULL)
                rows->res = r;
            else
                PQclear(r);
            *db->queued[who].slot = rows;
        } else if (who < db->nqueued) {
            PQclear(r);
        } else {
            PQclear(result);
            result = r;
        }
    }
    if (owner != NULL && db->conn != NULL &&
        PQpipelineStatus(db->conn) != PQ_PIPELINE_OFF)
        PQexitPipelineMode(db->conn);
    if (failed >= 0 && failed < db->nqueued) {
        *what = db->queued[failed].stmt ? db->queued[failed].stmt->name
                                        : db->queued[failed].sql;
        db->failed_queued = db->queued[failed].stmt != NULL;
    }
    db_queue_clear(db, 0);
    free(owner);
    if (first_error != NULL) {
        PQclear(result);
        return first_error;
    }
    return result; /* NULL: the connection is gone, db_fail says so */
}

static od_status_t
db_utility(db_t *db, const char *sql, db_tx_t tx, char *err, size_t errlen)
{
    PGresult *res;
    const char *what = sql;

    db->sqlstate[0] = '\0';
    db->failed_queued = 0;
    if (db->conn == NULL) {
        db_queue_clear(db, 0);
        od_err(err, errlen, "no connection to postgres");
        return OD_RETRY;
    }
    if (tx == DB_TX_ROLLBACK)
        db_queue_clear(db, 0); /* whatever was queued is moot */
    else if (tx == DB_TX_ROLLBACK_TO)
        db_queue_clear(db, 1);
    if (db->nqueued > 0) {
        db_call_t last = {sql, NULL, 0, NULL, NULL, NULL, NULL, NULL, tx};

        res = db_pipeline(db, &last, &what);
    } else {
        atomic_fetch_add(&db_round_trips, 1);
        res = db_exec_wait(db, PQsendQuery(db->conn, sql));
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_fail(db, res, what, err, errlen);
    PQclear(res);
    return OD_OK;
}

static od_status_t db_result(db_t *db, PGresult *res, const char *what,
                             db_rows_t **rows, char *err, size_t errlen);

od_status_t
db_exec(db_t *db, const char *sql, char *err, size_t errlen)
{
    return db_utility(db, sql, 0, err, errlen);
}

od_status_t
db_tx(db_t *db, db_tx_t tx, char *err, size_t errlen)
{
    return db_utility(db, tx_sql[tx], tx, err, errlen);
}

void
db_queue_tx(db_t *db, db_tx_t tx)
{
    db_call_t c = {tx_sql[tx], NULL, 0, NULL, NULL, NULL, NULL, NULL, tx};

    if (db_queue_push(db, &c) < 0)
        log_warn("could not queue '%s': out of memory", tx_sql[tx]);
}

od_status_t
db_flush(db_t *db, char *err, size_t errlen)
{
    db_call_t last;
    PGresult *res;
    const char *what;
    od_status_t st;

    if (db->nqueued == 0)
        return OD_OK;
    db->sqlstate[0] = '\0';
    db->failed_queued = 0;
    if (db->conn == NULL) {
        db_queue_clear(db, 0);
        od_err(err, errlen, "no connection to postgres");
        return OD_RETRY;
    }
    /* the last queued statement closes the round trip */
    last = db->queued[--db->nqueued];
    res = db_pipeline(db, &last, &what);
    st = db_result(db, res, what, last.slot, err, errlen);
    if (st != OD_OK && res != NULL && last.stmt != NULL)
        db->failed_queued = 1; /* it was queued too */
    free(last.mem);
    return st;
}

od_status_t
db_queue_run(db_t *db, const db_stmt_t *stmt, int nparams,
             const char *const *params, const int *lengths, const int *formats,
             db_rows_t **rows, char *err, size_t errlen)
{
    size_t bytes = (size_t)nparams * (sizeof(char *) + 2 * sizeof(int));
    db_call_t c = {NULL, stmt, nparams, NULL, NULL, NULL, NULL, rows, 0};
    const char **copies;
    int *lens, *fmts;
    char *data;

    if (rows != NULL)
        *rows = NULL;
    for (int i = 0; i < nparams; i++)
        if (params[i] != NULL)
            bytes += formats != NULL && formats[i] == 1 ? (size_t)lengths[i]
                                                        : strlen(params[i]) + 1;
    c.mem = malloc(bytes > 0 ? bytes : 1);
    if (c.mem == NULL) {
        od_err(err, errlen, "could not queue %s: out of memory", stmt->name);
        return OD_FATAL;
    }
    copies = c.mem;
    lens = (int *)(copies + nparams);
    fmts = lens + nparams;
    data = (char *)(fmts + nparams);
    for (int i = 0; i < nparams; i++) {
        size_t len;

        fmts[i] = formats != NULL ? formats[i] : 0;
        lens[i] = lengths != NULL ? lengths[i] : 0;
        copies[i] = NULL;
        if (params[i] == NULL)
            continue;
        len = fmts[i] == 1 ? (size_t)lens[i] : strlen(params[i]) + 1;
        memcpy(data, params[i], len);
        copies[i] = data;
        data += len;
    }
    c.params = copies;
    c.lengths = lens;
    c.formats = fmts;
    if (db_queue_push(db, &c) < 0) {
        free(c.mem);
        od_err(err, errlen, "could not queue %s: out of memory", stmt->name);
        return OD_FATAL;
    }
    return OD_OK;
}

int
db_failed_queued(const db_t *db)
{
    return db->failed_queued;
}

static od_status_t
db_result(db_t *db, PGresult *res, const char *what, db_rows_t **rows,
          char *err, size_t errlen)
{
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_fail(db, res, what, err, errlen);
    if (rows == NULL) {
        PQclear(res);
        return OD_OK;
    }
    *rows = malloc(sizeof(**rows));
    if (*rows == NULL) {
        PQclear(res);
        od_err(err, errlen, "out of memory");
        return OD_FATAL;
    }
    (*rows)->res = res;
    return OD_OK;
}

od_status_t
db_run(db_t *db, const db_stmt_t *stmt, int nparams, const char *const *params,
       db_rows_t **rows, char *err, size_t errlen)
{
    return db_run_ex(db, stmt, nparams, params, NULL, NULL, rows, err, errlen);
}

od_status_t
db_run_ex(db_t *db, const db_stmt_t *stmt, int nparams,
          const char *const *params, const int *lengths, const int *formats,
          db_rows_t **rows, char *err, size_t errlen)
{
    PGresult *res;

    db->sqlstate[0] = '\0';
    db->failed_queued = 0;
    if (rows != NULL)
        *rows = NULL;
    if (db->conn == NULL) {
        db_queue_clear(db, 0);
        od_err(err, errlen, "no connection to postgres");
        return OD_RETRY;
    }
    if (db->nqueued > 0) {
        db_call_t last = {NULL,    stmt, nparams, params, lengths,
                          formats, NULL, NULL,    0};
        const char *what;

        res = db_pipeline(db, &last, &what);
        return db_result(db, res, what, rows, err, errlen);
    }
    if (!db_is_prepared(db, stmt)) {
        if (db->nprepared == DB_MAX_PREPARED) {
            od_err(err, errlen, "too many prepared statements");
            return OD_FATAL;
        }
        atomic_fetch_add(&db_round_trips, 1);
        res = db_exec_wait(
            db, PQsendPrepare(db->conn, stmt->name, stmt->sql, 0, NULL));
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            return db_fail(db, res, stmt->name, err, errlen);
        PQclear(res);
        db->prepared[db->nprepared++] = stmt;
    }
    atomic_fetch_add(&db_round_trips, 1);
    res = db_exec_wait(db, PQsendQueryPrepared(db->conn, stmt->name, nparams,
                                               params, lengths, formats, 0));
    return db_result(db, res, stmt->name, rows, err, errlen);
}

od_status_t
db_query(db_t *db, const char *sql, int nparams, const char *const *params,
         db_rows_t **rows, char *err, size_t errlen)
{
    PGresult *res;

    db->sqlstate[0] = '\0';
    db->failed_queued = 0;
    if (rows != NULL)
        *rows = NULL;
    if (db->conn == NULL) {
        db_queue_clear(db, 0);
        od_err(err, errlen, "no connection to postgres");
        return OD_RETRY;
    }
    if (db->nqueued > 0) {
        db_call_t last = {sql,  NULL, nparams, params, NULL,
                          NULL, NULL, NULL,    0};
        const char *what;

        res = db_pipeline(db, &last, &what);
        return db_result(db, res, what, rows, err, errlen);
    }
    atomic_fetch_add(&db_round_trips, 1);
    res = db_exec_wait(db, PQsendQueryParams(db->conn, sql, nparams, NULL,
                                             params, NULL, NULL, 0));
    return db_result(db, res, "query", rows, err, errlen);
}

const char *
db_int_param(char *buf, int64_t v)
{
    snprintf(buf, 24, "%lld", (long long)v);
    return buf;
}

long long
db_round_trips_total(void)
{
    return atomic_load(&db_round_trips);
}

od_status_t
db_queue_cols(db_t *db, const db_stmt_t *stmt, pgcols_t *cols, db_rows_t **rows,
              char *err, size_t errlen)
{
    const char *params[PGCOLS_MAX];
    od_status_t st = OD_OK;

    if (pgcols_rows(cols) > 0) {
        for (int i = 0; i < cols->n && st == OD_OK; i++) {
            params[i] = pgarray_str(&cols->a[i]);
            if (params[i] == NULL) {
                od_err(err, errlen, "out of memory building %s", stmt->name);
                st = OD_RETRY;
            }
        }
        if (st == OD_OK)
            st = db_queue_run(db, stmt, cols->n, params, NULL, NULL, rows, err,
                              errlen);
    }
    pgcols_free(cols);
    return st;
}
