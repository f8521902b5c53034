/* pgarray.c - Postgres array literals built in C */
#include "pgarray.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
pgarray_init(pgarray_t *a)
{
    memset(a, 0, sizeof(*a));
}

void
pgarray_free(pgarray_t *a)
{
    free(a->buf);
    memset(a, 0, sizeof(*a));
}

/* Room for n more bytes plus the closing "}" and NUL. */
static int
reserve(pgarray_t *a, size_t n)
{
    if (a->oom)
        return -1;
    if (a->len + n + 3 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 256;
        char *b;

        while (cap < a->len + n + 3)
            cap *= 2;
        b = realloc(a->buf, cap);
        if (b == NULL) {
            a->oom = 1;
            return -1;
        }
        a->buf = b;
        a->cap = cap;
    }
    return 0;
}

static void
put(pgarray_t *a, const char *s, size_t n)
{
    if (reserve(a, n + 1) < 0)
        return;
    a->buf[a->len++] = a->n++ == 0 ? '{' : ',';
    memcpy(a->buf + a->len, s, n);
    a->len += n;
}

void
pgarray_text(pgarray_t *a, const char *s)
{
    size_t n, k = 0;
    char *q;

    if (s == NULL) {
        pgarray_null(a);
        return;
    }
    n = strlen(s);
    /* worst case every byte escaped, plus the quotes */
    if (reserve(a, 2 * n + 3) < 0)
        return;
    q = a->buf + a->len + 1;
    q[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            q[k++] = '\\';
        q[k++] = s[i];
    }
    q[k++] = '"';
    a->buf[a->len] = a->n++ == 0 ? '{' : ',';
    a->len += k + 1;
}

void
pgarray_int(pgarray_t *a, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof(b), "%lld", (long long)v);

    put(a, b, (size_t)n);
}

void
pgarray_null(pgarray_t *a)
{
    put(a, "NULL", 4);
}

void
pgarray_bool(pgarray_t *a, int v)
{
    put(a, v ? "t" : "f", 1);
}

void
pgarray_hex(pgarray_t *a, const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = data;
    char *q;

    if (reserve(a, 2 * len + 1) < 0)
        return;
    a->buf[a->len] = a->n++ == 0 ? '{' : ',';
    q = a->buf + a->len + 1;
    for (size_t i = 0; i < len; i++) {
        *q++ = digits[p[i] >> 4];
        *q++ = digits[p[i] & 15];
    }
    a->len += 2 * len + 1;
    if (len == 0) { /* an empty element must be quoted */
        a->buf[a->len++] = '"';
        a->buf[a->len++] = '"';
    }
}

const char *
pgarray_str(pgarray_t *a)
{
    if (reserve(a, 0) < 0)
        return NULL;
    if (a->n == 0) {
        memcpy(a->buf, "{}", 3);
        return a->buf;
    }
    a->buf[a->len] = '}';
    a->buf[a->len + 1] = '\0';
    return a->buf;
}

void
pgcols_init(pgcols_t *c, int n)
{
    memset(c, 0, sizeof(*c));
    c->n = n;
}

void
pgcols_free(pgcols_t *c)
{
    for (int i = 0; i < c->n; i++)
        pgarray_free(&c->a[i]);
}

int
pgcols_rows(const pgcols_t *c)
{
    return c->n > 0 ? c->a[0].n : 0;
}
