/* db_conn.c - opening, checking and closing Postgres connections
 *
 * DESIGN: part of the libpq room (db*.c). Every session starts with the
 * defaults below (the connection string may override each): bounded
 * connect, TCP keepalives and tcp_user_timeout, so a vanished peer is
 * noticed; a connection string libpq cannot parse is refused without
 * being echoed; a refusal is classified (wrong password, no such
 * database, server not there) so `orderd run` can say which, with the
 * string's secrets scrubbed from libpq's text.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"
#include "log.h"

/*
 * Connection options every orderd session starts with; the connection
 * string may override each of them. A peer that is gone without a word
 * (a failover, a load balancer that dropped the flow) is noticed within
 * keepalives_idle + keepalives_interval * keepalives_count = 25 s on an
 * idle connection, and within tcp_user_timeout when sent data stays
 * unacknowledged.
 */
static const char *const db_default_keys[] = {
    "connect_timeout",     "keepalives",       "keepalives_idle",
    "keepalives_interval", "keepalives_count", "tcp_user_timeout"};
static const char *const db_default_values[] = {"10", "1", "10",
                                                "5",  "3", "25000"};

static void
db_notice_quiet(void *arg, const PGresult *res)
{
    (void)arg;
    (void)res;
}

/* Waits for a connection started by PQconnectStartParams to succeed or
 * fail, honouring its connect_timeout (none: wait, as PQconnectdb does). */
static void
db_connect_wait(PGconn *conn)
{
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    int64_t deadline = 0;
    PQconninfoOption *opts;

    if (PQstatus(conn) == CONNECTION_BAD)
        return;
    PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
    opts = PQconninfo(conn);
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "connect_timeout") == 0 && o->val != NULL) {
            long t = strtol(o->val, NULL, 10);

            /* libpq's own floor: one second is too tight */
            if (t > 0)
                deadline = od_mono_us() + (t < 2 ? 2 : t) * 1000000LL;
        }
    }
    PQconninfoFree(opts);
    while (ps != PGRES_POLLING_OK && ps != PGRES_POLLING_FAILED) {
        struct pollfd pfd = {PQsocket(conn),
                             ps == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
        int wait_ms = -1, r;

        if (deadline > 0) {
            int64_t left = deadline - od_mono_us();

            if (left <= 0)
                return; /* still not CONNECTION_OK: a timeout */
            wait_ms = (int)(left / 1000) + 1;
        }
        r = poll(&pfd, 1, wait_ms);
        if (r < 0 && errno != EINTR)
            return;
        if (r == 0)
            continue; /* the deadline is checked above */
        ps = PQconnectPoll(conn);
    }
}

/* The SQLSTATE in a verbose connection failure message ("" if none):
 * the five characters after the severity of the server's error. */
static void
db_connect_sqlstate(const char *msg, char sqlstate[6])
{
    static const char *const severities[] = {
        "FATAL:  ", "ERROR:  ", "PANIC:  "};

    sqlstate[0] = '\0';
    for (size_t i = 0; i < OD_ARRAY_LEN(severities); i++) {
        const char *p = strstr(msg, severities[i]);

        if (p == NULL)
            continue;
        p += strlen(severities[i]);
        if (strspn(p, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 5 &&
            p[5] == ':') {
            memcpy(sqlstate, p, 5);
            sqlstate[5] = '\0';
            return;
        }
    }
}

/* 1 for a refusal that waiting does not fix: 28P01 (wrong password; also
 * a role that does not exist, under password authentication), 28000 (no
 * such role, or no pg_hba.conf entry), 3D000 (no such database) */
static int
db_connect_refused(const char *sqlstate)
{
    return strcmp(sqlstate, "28P01") == 0 || strcmp(sqlstate, "28000") == 0 ||
           strcmp(sqlstate, "3D000") == 0;
}

static od_status_t
db_open(db_t *db, char *err, size_t errlen)
{
    /* the defaults come first: the conninfo's own values win, and its
     * own application_name, if any, wins over the fallback */
    const char *keys[OD_ARRAY_LEN(db_default_keys) + 3];
    const char *values[OD_ARRAY_LEN(db_default_keys) + 3];
    char msg[512];
    size_t nkeys = 0;
    int refused;

    for (size_t i = 0; i < OD_ARRAY_LEN(db_default_keys); i++) {
        keys[nkeys] = db_default_keys[i];
        values[nkeys++] = db_default_values[i];
    }
    keys[nkeys] = "dbname";
    values[nkeys++] = db->conninfo;
    keys[nkeys] = "fallback_application_name";
    values[nkeys++] = db->appname;
    keys[nkeys] = NULL;
    values[nkeys] = NULL;

    db->nprepared = 0;
    db_queue_clear(db, 0);
    if (!db_conninfo_parses(db->conninfo)) {
        /* libpq would say why, quoting the string: not even that */
        od_err(err, errlen,
               "could not connect to postgres: the connection "
               "string is malformed (not shown: it may hold a "
               "password)");
        return OD_RETRY;
    }
    db->sqlstate[0] = '\0';
    db->conn = PQconnectStartParams(keys, values, 1);
    if (db->conn != NULL)
        db_connect_wait(db->conn);
    if (PQstatus(db->conn) == CONNECTION_OK) {
        PGresult *res;
        char set[256];

        PQsetErrorVerbosity(db->conn, PQERRORS_DEFAULT);
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
        snprintf(set, sizeof(set),
                 "SET plan_cache_mode = force_generic_plan;"
                 " SET enable_seqscan = off");
        /* the server gives up on a statement before the client gives up
         * on the server: 80% of the reply bound */
        if (db_reply_timeout_ms > 0)
            snprintf(set + strlen(set), sizeof(set) - strlen(set),
                     "; SET statement_timeout = %d",
                     db_reply_timeout_ms / 5 * 4);
        atomic_fetch_add(&db_round_trips, 1);
        res = db_exec_wait(db, PQsendQuery(db->conn, set));
        PQclear(res);
        if (db->conn != NULL)
            return OD_OK;
        od_err(err, errlen,
               "could not connect to postgres: no reply within %d ms",
               db_reply_timeout_ms);
        return OD_RETRY;
    }
    /* libpq's message names host, port and user, and may quote any
     * value of the string: the secrets are taken out */
    db_conninfo_scrub(db->conninfo, PQerrorMessage(db->conn), msg, sizeof(msg));
    db_connect_sqlstate(PQerrorMessage(db->conn), db->sqlstate);
    /* the server asked for a password and none was given (no password
     * in the string, PGPASSWORD or the password file): no server error,
     * and as final as a wrong one */
    refused = db_connect_refused(db->sqlstate) ||
              (db->conn != NULL && PQconnectionNeedsPassword(db->conn));
    od_err(err, errlen, "could not connect to postgres: %s", msg);
    PQfinish(db->conn);
    db->conn = NULL;
    return refused ? OD_FATAL : OD_RETRY;
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

od_status_t
db_try_connect(const char *conninfo, db_t **out, char *err, size_t errlen)
{
    db_t *db = db_alloc(conninfo, "orderd");
    od_status_t st;

    *out = NULL;
    if (db == NULL) {
        od_err(err, errlen, "out of memory");
        return OD_RETRY;
    }
    st = db_open(db, err, errlen);
    if (st != OD_OK) {
        db_destroy(db);
        return st;
    }
    *out = db;
    return OD_OK;
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
    db_queue_clear(db, 0);
    free(db->queued);
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
