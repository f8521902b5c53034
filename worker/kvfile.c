/* kvfile.c - the reader of `name = value` files
 *
 * DESIGN: the configuration file and librdkafka's property files share
 * one line format and one rule: a line is never quoted back in an error,
 * since a misplaced password would reach the terminal, a log or a CI
 * transcript. What a name means (an orderd option, a librdkafka property)
 * is the caller's, through the callback.
 */
#include "kvfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One line, trimmed at the end already: 1 when it holds name = value
 * (split in place), 0 when blank or a comment, -1 with err. */
static int
split_line(char *line, size_t len, const char *path, int lineno,
           const kvfile_kind_t *kind, char **name, char **value, char *err,
           size_t errlen)
{
    char *start = line, *eq, *end;

    while (is_blank((unsigned char)*start))
        start++;
    if (*start == '\0' || *start == '#')
        return 0;
    if (strlen(start) != len - (size_t)(start - line)) {
        od_err(err, errlen, "%s:%d: NUL byte in line", path, lineno);
        return -1;
    }
    eq = strchr(start, '=');
    if (eq == NULL) {
        od_err(err, errlen, "%s:%d: expected %s", path, lineno, kind->shape);
        return -1;
    }
    end = eq;
    while (end > start && is_blank((unsigned char)end[-1]))
        end--;
    if (end == start) {
        od_err(err, errlen, "%s:%d: expected %s, the %s is empty", path,
               lineno, kind->shape, kind->noun);
        return -1;
    }
    *end = '\0';
    *value = eq + 1;
    while (is_blank((unsigned char)**value))
        (*value)++;
    *name = start;
    return 1;
}

int
kvfile_read(const char *path, const kvfile_kind_t *kind, kvfile_fn fn,
            void *arg, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = -1;

    if (f == NULL) {
        od_err(err, errlen, "could not open %s %s: %s", kind->what, path,
               strerror(errno));
        return -1;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        char *name, *value;
        int got;

        lineno++;
        while (len > 0 && is_blank((unsigned char)line[len - 1]))
            line[--len] = '\0';
        got = split_line(line, (size_t)len, path, lineno, kind, &name, &value,
                         err, errlen);
        if (got < 0 ||
            (got > 0 && fn(arg, path, lineno, name, value, err, errlen) < 0))
            goto out;
    }
    if (ferror(f)) {
        od_err(err, errlen, "could not read %s %s: %s", kind->what, path,
               strerror(errno));
        goto out;
    }
    rc = 0;
out:
    free(line);
    fclose(f);
    return rc;
}
