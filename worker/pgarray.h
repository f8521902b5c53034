/* pgarray.h - Postgres array literals built in C, for the set-based
 * statements that take one array parameter per column */
#ifndef OD_PGARRAY_H
#define OD_PGARRAY_H

#include <stddef.h>
#include <stdint.h>

/*
 * DESIGN: a batch writes each table with one statement whose parameters
 * are arrays unnested side by side. Text elements are always quoted and
 * escaped (backslash and double quote), so any string a command carries
 * round-trips; bytes go as hex text and are decoded by the statement.
 * An array that ran out of memory says so in oom, and the statement is
 * not sent.
 */
typedef struct pgarray {
    char *buf;
    size_t len, cap;
    int n;
    int oom;
} pgarray_t;

void pgarray_init(pgarray_t *a);
void pgarray_free(pgarray_t *a);
void pgarray_text(pgarray_t *a, const char *s); /* NULL: SQL NULL */
void pgarray_int(pgarray_t *a, int64_t v);
void pgarray_null(pgarray_t *a);
void pgarray_bool(pgarray_t *a, int v);
/* bytes as a hex string element (decode(x, 'hex') in SQL) */
void pgarray_hex(pgarray_t *a, const void *data, size_t len);
/* The literal ("{...}"), valid until the next change or pgarray_free;
 * NULL when out of memory. */
const char *pgarray_str(pgarray_t *a);

/* The columns of one set-based statement, one array each, filled row by
 * row; db_queue_cols sends them. */
#define PGCOLS_MAX 14

typedef struct pgcols {
    pgarray_t a[PGCOLS_MAX];
    int n;
} pgcols_t;

void pgcols_init(pgcols_t *c, int n);
void pgcols_free(pgcols_t *c);
/* How many rows the columns hold (the first column's count). */
int pgcols_rows(const pgcols_t *c);

#endif
