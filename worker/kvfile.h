/* kvfile.h - the reader of `name = value` files: orderd's configuration
 * file (--config) and librdkafka property files (-F) */
#ifndef OD_KVFILE_H
#define OD_KVFILE_H

#include <stddef.h>

#include "od.h"

/* How a file is named in messages: "configuration file", "-F file"; the
 * shape of a line, "name = value"; what the left side is called. */
typedef struct kvfile_kind {
    const char *what;
    const char *shape;
    const char *noun;
} kvfile_kind_t;

/* Called for each `name = value` line, both trimmed; returns 0, or -1
 * with err filled (a message that starts with "PATH:LINE: "). */
typedef int (*kvfile_fn)(void *arg, const char *path, int lineno, char *name,
                         char *value, char *err, size_t errlen);

/*
 * Reads path line by line: blank lines and lines starting with '#' are
 * skipped; every other line must be name = value (blanks around both
 * trimmed). Errors name the file and the line, never quote it: a line
 * may hold a password. 0, or -1 with err filled.
 */
int kvfile_read(const char *path, const kvfile_kind_t *kind, kvfile_fn fn,
                void *arg, char *err, size_t errlen) OD_MUSTCHECK;

#endif
