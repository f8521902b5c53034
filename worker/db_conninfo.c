/* db_conninfo.c - connection strings shown without their secrets
 *
 * DESIGN: part of the libpq room (db*.c): a connection string is shown by
 * parsing it with libpq and writing the options back with every secret
 * masked, and libpq's own refusal text is scrubbed of the secrets of the
 * string it was given, so that neither a log line nor an error on the
 * terminal carries a password.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "db.h"

/*
 * Connection strings are shown by parsing them (PQconninfoParse, which
 * knows both the key=value and the URI forms, quoting, percent-encoding
 * and query parameters) and writing the parsed options back out with
 * every secret replaced: matching text in the string is what let
 * passwords through before (a URI's one-letter user, "password = x", a
 * key whose value contains "password"). A string libpq cannot parse is
 * never shown, nor is libpq's parse error, which quotes it.
 */

/* libpq's rule (recognized_connection_string): a URI, or anything with
 * an '=', is a connection string; anything else is a database name */
static int
db_is_conninfo(const char *s)
{
    return strncmp(s, "postgresql://", 13) == 0 ||
           strncmp(s, "postgres://", 11) == 0 || strchr(s, '=') != NULL;
}

/* libpq marks password-like options with dispchar "*"; the two it has
 * always had are named too, in case a libpq forgets the mark */
static int
db_is_secret(const PQconninfoOption *o)
{
    return (o->dispchar != NULL && o->dispchar[0] == '*') ||
           strcmp(o->keyword, "password") == 0 ||
           strcmp(o->keyword, "sslpassword") == 0;
}

/* Appends s to out (len bytes, *n used so far), cutting what does not fit. */
static void
db_append(char *out, size_t len, size_t *n, const char *s, size_t slen)
{
    if (*n + 1 >= len)
        return;
    if (slen > len - 1 - *n)
        slen = len - 1 - *n;
    memcpy(out + *n, s, slen);
    *n += slen;
    out[*n] = '\0';
}

/* Appends a value in the key=value form's syntax: quoted when empty or
 * when it holds blanks, quotes or backslashes. */
static void
db_append_value(char *out, size_t len, size_t *n, const char *v)
{
    int quote = *v == '\0' || strpbrk(v, " \t\n\r\f\v'\\") != NULL;

    if (quote)
        db_append(out, len, n, "'", 1);
    for (; *v != '\0'; v++) {
        if (*v == '\'' || *v == '\\')
            db_append(out, len, n, "\\", 1);
        db_append(out, len, n, v, 1);
    }
    if (quote)
        db_append(out, len, n, "'", 1);
}

/* 1 when libpq can read s (NULL, "" and a database name included) */
int
db_conninfo_parses(const char *s)
{
    PQconninfoOption *opts;
    char *perr = NULL;

    if (s == NULL || !db_is_conninfo(s))
        return 1;
    opts = PQconninfoParse(s, &perr);
    PQfreemem(perr);
    PQconninfoFree(opts);
    return opts != NULL;
}

int
db_conninfo_masked(const char *conninfo, char *out, size_t len)
{
    PQconninfoOption *opts;
    char *perr = NULL;
    size_t n = 0;

    if (len == 0)
        return 0;
    out[0] = '\0';
    if (conninfo == NULL || conninfo[0] == '\0')
        return 0;
    if (!db_is_conninfo(conninfo)) {
        db_append(out, len, &n, "dbname=", 7);
        db_append_value(out, len, &n, conninfo);
        return 0;
    }
    opts = PQconninfoParse(conninfo, &perr);
    if (opts == NULL) {
        /* perr quotes the part it could not read: it stays here */
        PQfreemem(perr);
        snprintf(out, len, "(malformed connection string, not shown)");
        return -1;
    }
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL)
            continue;
        if (n > 0)
            db_append(out, len, &n, " ", 1);
        db_append(out, len, &n, o->keyword, strlen(o->keyword));
        db_append(out, len, &n, "=", 1);
        if (db_is_secret(o))
            db_append(out, len, &n, "***", 3);
        else
            db_append_value(out, len, &n, o->val);
    }
    PQconninfoFree(opts);
    return 0;
}

/* Replaces every occurrence of secret in s (a buffer of len bytes). */
static void
db_scrub_one(char *s, size_t len, const char *secret)
{
    size_t slen = strlen(secret), n = 0;
    char *copy, *p, *hit;

    if (slen == 0 || strstr(s, secret) == NULL || (copy = strdup(s)) == NULL)
        return;
    s[0] = '\0';
    for (p = copy; (hit = strstr(p, secret)) != NULL; p = hit + slen) {
        db_append(s, len, &n, p, (size_t)(hit - p));
        db_append(s, len, &n, "***", 3);
    }
    db_append(s, len, &n, p, strlen(p));
    free(copy);
}

void
db_conninfo_scrub(const char *conninfo, const char *msg, char *out, size_t len)
{
    PQconninfoOption *opts = NULL;
    const char *envpw = getenv("PGPASSWORD");
    char *perr = NULL;

    if (len == 0)
        return;
    if (conninfo != NULL && db_is_conninfo(conninfo)) {
        opts = PQconninfoParse(conninfo, &perr);
        if (opts == NULL) {
            PQfreemem(perr);
            snprintf(out, len,
                     "(message not shown: the connection string "
                     "is malformed)");
            return;
        }
    }
    snprintf(out, len, "%.*s", (int)strcspn(msg, "\n"), msg);
    for (const PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
        if (o->val != NULL && db_is_secret(o))
            db_scrub_one(out, len, o->val);
    if (envpw != NULL)
        db_scrub_one(out, len, envpw);
    PQconninfoFree(opts);
}
