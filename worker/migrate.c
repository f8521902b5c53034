/* migrate.c - forward-only schema migrations from schema/NNNN_*.sql */
#include "migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define MIGRATE_LOCK_KEY "4242001"

/* CMake passes these; the fallbacks serve a build without it */
#ifndef ORDERD_SCHEMA_REL
#define ORDERD_SCHEMA_REL "../share/orderd/schema"
#endif
#ifndef ORDERD_BUILD_DIR
#define ORDERD_BUILD_DIR ""
#endif
#ifndef ORDERD_SCHEMA_DIR
#define ORDERD_SCHEMA_DIR "schema"
#endif

static int
is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * The source tree's schema/ is baked in at build time. It must not serve
 * an installed binary (a deleted or changed checkout would migrate from
 * the wrong files), so it is used only while the binary sits in the
 * build directory it was built in.
 */
static int
in_build_tree(const char *exe_dir)
{
    char build[PATH_MAX];

    return ORDERD_BUILD_DIR[0] != '\0' &&
           realpath(ORDERD_BUILD_DIR, build) != NULL &&
           strcmp(build, exe_dir) == 0;
}

int
migrate_schema_dir(const char *configured, char *out, size_t len, char *err,
                   size_t errlen)
{
    char exe[PATH_MAX], found[PATH_MAX + 64], resolved[PATH_MAX], *slash;
    ssize_t n;

    if (configured != NULL && *configured) {
        if (!is_dir(configured)) {
            od_err(err, errlen, "schema directory %s does not exist",
                   configured);
            return -1;
        }
        snprintf(out, len, "%s", configured);
        return 0;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        od_err(err, errlen,
               "could not find the running binary (/proc/self/exe): give "
               "--schema-dir");
        return -1;
    }
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    if (slash != NULL)
        *slash = '\0';
    snprintf(found, sizeof(found), "%s/%s", exe, ORDERD_SCHEMA_REL);
    if (is_dir(found) && realpath(found, resolved) != NULL &&
        (size_t)snprintf(out, len, "%s", resolved) < len)
        return 0;
    if (in_build_tree(exe) && is_dir(ORDERD_SCHEMA_DIR)) {
        snprintf(out, len, "%s", ORDERD_SCHEMA_DIR);
        return 0;
    }
    od_err(err, errlen,
           "no schema directory: %s/%s does not exist; give --schema-dir "
           "(ORDERD_SCHEMA_DIR)",
           exe, ORDERD_SCHEMA_REL);
    return -1;
}

static int
is_migration(const char *name)
{
    size_t n = strlen(name);

    return n > 9 && isdigit((unsigned char)name[0]) &&
           isdigit((unsigned char)name[1]) && isdigit((unsigned char)name[2]) &&
           isdigit((unsigned char)name[3]) && name[4] == '_' &&
           strcmp(name + n - 4, ".sql") == 0;
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *
read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (f == NULL) {
        od_err(err, errlen, "could not open %s", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0)
        goto fail;
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n)
        goto fail;
    buf[n] = '\0';
    fclose(f);
    return buf;
fail:
    od_err(err, errlen, "could not read %s", path);
    free(buf);
    fclose(f);
    return NULL;
}

static od_status_t
apply_one(db_t *db, const char *dir, const char *name, int *ran, char *err,
          size_t errlen)
{
    static const char *check =
        "SELECT 1 FROM schema_migrations WHERE version = $1";
    static const char *record =
        "INSERT INTO schema_migrations (version) VALUES ($1)";
    const char *params[1] = {name};
    char path[4096];
    char *sql = NULL;
    db_rows_t *rows = NULL;
    od_status_t st;

    st = db_query(db, check, 1, params, &rows, err, errlen);
    if (st != OD_OK)
        return st;
    if (db_nrows(rows) > 0) {
        db_rows_free(rows);
        return OD_OK;
    }
    db_rows_free(rows);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    sql = read_file(path, err, errlen);
    if (sql == NULL)
        return OD_FATAL;
    st = db_exec(db, "BEGIN", err, errlen);
    if (st == OD_OK)
        st = db_exec(db, sql, err, errlen);
    if (st == OD_OK)
        st = db_query(db, record, 1, params, NULL, err, errlen);
    if (st == OD_OK)
        st = db_exec(db, "COMMIT", err, errlen);
    if (st != OD_OK) {
        char ignore[64];
        size_t n = strlen(err);

        snprintf(err + n, errlen > n ? errlen - n : 0, " (in %s)", name);
        if (db_exec(db, "ROLLBACK", ignore, sizeof(ignore)) != OD_OK)
            log_warn("rollback after a failed migration: %s", ignore);
    } else {
        log_info("applied migration %s", name);
        (*ran)++;
    }
    free(sql);
    return st;
}

od_status_t
migrate_run(db_t *db, const char *dir, int *applied, char *err, size_t errlen)
{
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;
    od_status_t st;
    int ran = 0;
    char ignore[128];

    st = db_exec(db,
                 "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ");"
                 "CREATE TABLE IF NOT EXISTS schema_migrations ("
                 " version text PRIMARY KEY,"
                 " applied_at timestamptz NOT NULL DEFAULT now())",
                 err, errlen);
    if (st != OD_OK)
        return st;
    d = opendir(dir);
    if (d == NULL) {
        od_err(err, errlen, "could not open schema directory %s", dir);
        st = OD_FATAL;
        goto out;
    }
    while ((de = readdir(d)) != NULL) {
        if (!is_migration(de->d_name))
            continue;
        if (n == cap) {
            char **grown;

            cap = cap ? cap * 2 : 16;
            grown = realloc(names, cap * sizeof(*names));
            if (grown == NULL)
                break;
            names = grown;
        }
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n && st == OD_OK; i++)
        st = apply_one(db, dir, names[i], &ran, err, errlen);
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (db_exec(db, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", ignore,
                sizeof(ignore)) != OD_OK &&
        st == OD_OK) {
        od_err(err, errlen, "%s", ignore);
        st = OD_RETRY;
    }
    if (applied != NULL)
        *applied = ran;
    return st;
}
