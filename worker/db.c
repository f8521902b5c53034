/* db.c - libpq: connections, transactions, prepared statements, SQLSTATE
 * classification. Every libpq call of orderd lives here. */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"

#define DB_MAX_PREPARED 256
#define DB_MAX_QUEUED 4

struct db {
    PGconn *conn;
    char *conninfo;
    char appname[64];
    char sqlstate[6];
    const db_stmt_t *prepared[DB_MAX_PREPARED];
    int nprepared;
    const char *queued[DB_MAX_QUEUED];
    int nqueued;
};

struct db_rows {
    PGresult *res;
};

static void
db_notice_quiet(void *arg, const PGresult *res)
{
    (void)arg;
    (void)res;
}

int
db_sqlstate_is_transient(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 1; /* no SQLSTATE: the connection itself failed */
    return strncmp(s, "08", 2) == 0 || strcmp(s, "40001") == 0 ||
           strcmp(s, "40P01") == 0 || strcmp(s, "57P01") == 0 ||
           strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0 ||
           strcmp(s, "53300") == 0 || strcmp(s, "55P03") == 0;
}

static od_status_t
db_open(db_t *db, char *err, size_t errlen)
{
    /* the conninfo's own application_name, if any, wins */
    const char *const keys[] = {"dbname", "fallback_application_name", NULL};
    const char *const values[] = {db->conninfo, db->appname, NULL};
    const char *msg;

    db->conn = PQconnectdbParams(keys, values, 1);
    db->nprepared = 0;
    db->nqueued = 0;
    if (PQstatus(db->conn) == CONNECTION_OK) {
        PGresult *res;

        PQsetNoticeReceiver(db->conn, db_notice_quiet, NULL);
        /*
         * orderd's statements are written for generic plans (primary-key
         * and array lookups): without this, Postgres keeps re-planning the
         * large checkout statements on every execution, which costs more
         * than running them. A generic plan is made once per connection,
         * and one made while a table was still small (a fresh database)
         * would keep scanning the whole table as it grows, until an
         * ANALYZE invalidates it: every orderd statement is a keyed
         * lookup, so sequential scans are off for its sessions.
         */
        res = PQexec(db->conn, "SET plan_cache_mode = force_generic_plan;"
                               " SET enable_seqscan = off");
        PQclear(res);
        return OD_OK;
    }
    /* libpq's message names host, port and user, never the password */
    msg = PQerrorMessage(db->conn);
    od_err(err, errlen, "could not connect to postgres: %.*s",
           (int)strcspn(msg, "\n"), msg);
    PQfinish(db->conn);
    db->conn = NULL;
    return OD_RETRY;
}

/* A handle not yet connected: its conninfo and session name copied. */
static db_t *
db_alloc(const char *conninfo, const char *appname)
{
    db_t *db = calloc(1, sizeof(*db));

    if (db == NULL)
        return NULL;
    snprintf(db->appname, sizeof(db->appname), "%s", appname);
    db->conninfo = strdup(conninfo != NULL ? conninfo : "");
    if (db->conninfo == NULL) {
        free(db);
        return NULL;
    }
    return db;
}

db_t *
db_connect(const char *conninfo, char *err, size_t errlen)
{
    db_t *db = db_alloc(conninfo, "orderd");

    if (db == NULL) {
        od_err(err, errlen, "out of memory");
        return NULL;
    }
    if (db_open(db, err, errlen) != OD_OK) {
        db_destroy(db);
        return NULL;
    }
    return db;
}

db_t *
db_new(const char *conninfo, const char *appname)
{
    db_t *db = db_alloc(conninfo, appname);
    char err[512];

    if (db == NULL)
        return NULL;
    if (db_open(db, err, sizeof(err)) != OD_OK)
        log_warn("%s (will retry)", err);
    return db;
}

void
db_destroy(db_t *db)
{
    if (db == NULL)
        return;
    if (db->conn != NULL)
        PQfinish(db->conn);
    free(db->conninfo);
    free(db);
}

int
db_ok(db_t *db)
{
    return db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK;
}

od_status_t
db_reconnect(db_t *db, char *err, size_t errlen)
{
    if (db->conn != NULL)
        PQfinish(db->conn);
    db->conn = NULL;
    return db_open(db, err, errlen);
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

    snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state ? state : "");
    if (msg == NULL)
        msg = db->conn ? PQerrorMessage(db->conn) : "no connection";
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

/*
 * Sends the queued statements, an optional Prepare and the statement
 * itself in one pipeline and collects the results: the first failure is
 * returned (later ones are PGRES_PIPELINE_ABORTED), else the statement's.
 * *prepared is set when the Prepare (if any) went through.
 */
static PGresult *
db_pipeline(db_t *db, const db_stmt_t *stmt, const char *sql, int nparams,
            const char *const *params, const int *lengths, const int *formats,
            int prepare, int *prepared)
{
    PGresult *first_error = NULL, *last = NULL, *r;
    int ok = PQenterPipelineMode(db->conn);
    int nq = db->nqueued, index = 0;

    *prepared = 0;
    for (int i = 0; ok && i < db->nqueued; i++)
        ok = PQsendQueryParams(db->conn, db->queued[i], 0, NULL, NULL, NULL,
                               NULL, 0);
    db->nqueued = 0;
    if (ok && prepare)
        ok = PQsendPrepare(db->conn, stmt->name, stmt->sql, 0, NULL);
    if (ok && stmt != NULL)
        ok = PQsendQueryPrepared(db->conn, stmt->name, nparams, params, lengths,
                                 formats, 0);
    else if (ok)
        ok = PQsendQueryParams(db->conn, sql, nparams, NULL, params, lengths,
                               formats, 0);
    if (ok)
        ok = PQpipelineSync(db->conn);
    if (!ok) {
        PQexitPipelineMode(db->conn);
        return NULL; /* the connection is gone: db_fail says so */
    }
    for (;;) {
        ExecStatusType status;

        r = PQgetResult(db->conn);
        if (r == NULL) {
            if (PQstatus(db->conn) != CONNECTION_OK)
                break;
            continue; /* end of one statement's results */
        }
        status = PQresultStatus(r);
        if (status == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (prepare && index == nq && status == PGRES_COMMAND_OK)
            *prepared = 1;
        index++;
        if (status == PGRES_FATAL_ERROR && first_error == NULL) {
            first_error = r;
        } else if (status == PGRES_FATAL_ERROR ||
                   status == PGRES_PIPELINE_ABORTED) {
            PQclear(r);
        } else {
            PQclear(last);
            last = r;
        }
    }
    PQexitPipelineMode(db->conn);
    if (first_error != NULL) {
        PQclear(last);
        return first_error;
    }
    return last;
}

od_status_t
db_exec(db_t *db, const char *sql, char *err, size_t errlen)
{
    PGresult *res;

    db->sqlstate[0] = '\0';
    if (db->conn == NULL) {
        od_err(err, errlen, "no connection to postgres");
        return OD_RETRY;
    }
    if (strcmp(sql, "ROLLBACK") == 0)
        db->nqueued = 0; /* whatever was queued is moot, and could fail */
    if (db->nqueued > 0) {
        /* the simple protocol takes several statements at once */
        char joined[512];
        size_t n = 0;

        for (int i = 0; i < db->nqueued; i++)
            n += (size_t)snprintf(joined + n, sizeof(joined) - n, "%s; ",
                                  db->queued[i]);
        snprintf(joined + n, sizeof(joined) - n, "%s", sql);
        db->nqueued = 0;
        res = PQexec(db->conn, joined);
        /* PQexec returns the last statement's result; an earlier failure
         * stops the string and is what comes back */
    } else {
        res = PQexec(db->conn, sql);
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        PQresultStatus(res) != PGRES_TUPLES_OK)
        return db_fail(db, res, sql, err, errlen);
    PQclear(res);
    return OD_OK;
}

void
db_queue(db_t *db, const char *sql)
{
    if (db->nqueued < DB_MAX_QUEUED)
        db->queued[db->nqueued++] = sql;
}

static int
db_is_prepared(const db_t *db, const db_stmt_t *stmt)
{
    for (int i = 0; i < db->nprepared; i++)
        if (db->prepared[i] == stmt)
            return 1;
    return 0;
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
    if (rows != NULL)
        *rows = NULL;
    if (db->conn == NULL) {
        od_err(err, errlen, "no connection to postgres");
        return OD_RETRY;
    }
    if (db->nqueued > 0) {
        int prepare = !db_is_prepared(db, stmt);

        if (prepare && db->nprepared == DB_MAX_PREPARED) {
            od_err(err, errlen, "too many prepared statements");
            return OD_FATAL;
        }
        int prepared;

        res = db_pipeline(db, stmt, NULL, nparams, params, lengths, formats,
                          prepare, &prepared);
        if (prepared)
            db->prepared[db->nprepared++] = stmt;
        return db_result(db, res, stmt->name, rows, err, errlen);
    }
    if (!db_is_prepared(db, stmt)) {
        if (db->nprepared == DB_MAX_PREPARED) {
            od_err(err, errlen, "too many prepared statements");
            return OD_FATAL;
        }
        res = PQprepare(db->conn, stmt->name, stmt->sql, 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            return db_fail(db, res, stmt->name, err, errlen);
        PQclear(res);
        db->prepared[db->nprepared++] = stmt;
    }
    res = PQexecPrepared(db->conn, stmt->name, nparams, params, lengths,
                         formats, 0);
    return db_result(db, res, stmt->name, rows, err, errlen);
}

od_status_t
db_query(db_t *db, const char *sql, int nparams, const char *const *params,
         db_rows_t **rows, char *err, size_t errlen)
{
    PGresult *res;

    db->sqlstate[0] = '\0';
    if (rows != NULL)
        *rows = NULL;
    if (db->conn == NULL) {
        od_err(err, errlen, "no connection to postgres");
        return OD_RETRY;
    }
    if (db->nqueued > 0) {
        int prepared;

        res = db_pipeline(db, NULL, sql, nparams, params, NULL, NULL, 0,
                          &prepared);
    } else
        res = PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0);
    return db_result(db, res, "query", rows, err, errlen);
}

int
db_nrows(const db_rows_t *rows)
{
    return rows ? PQntuples(rows->res) : 0;
}

const char *
db_val(const db_rows_t *rows, int row, int col)
{
    return PQgetvalue(rows->res, row, col);
}

int
db_isnull(const db_rows_t *rows, int row, int col)
{
    return PQgetisnull(rows->res, row, col);
}

int64_t
db_int64(const db_rows_t *rows, int row, int col)
{
    return strtoll(PQgetvalue(rows->res, row, col), NULL, 10);
}

int
db_bool(const db_rows_t *rows, int row, int col)
{
    return PQgetvalue(rows->res, row, col)[0] == 't';
}

unsigned char *
db_bytea(const db_rows_t *rows, int row, int col, size_t *len)
{
    unsigned char *tmp, *out;

    tmp = PQunescapeBytea(
        (const unsigned char *)PQgetvalue(rows->res, row, col), len);
    if (tmp == NULL)
        return NULL;
    /* copy so the caller frees with free(), not PQfreemem() */
    out = malloc(*len + 1);
    if (out != NULL) {
        memcpy(out, tmp, *len);
        out[*len] = '\0';
    }
    PQfreemem(tmp);
    return out;
}

void
db_rows_free(db_rows_t *rows)
{
    if (rows == NULL)
        return;
    PQclear(rows->res);
    free(rows);
}

const char *
db_int_param(char *buf, int64_t v)
{
    snprintf(buf, 24, "%lld", (long long)v);
    return buf;
}
