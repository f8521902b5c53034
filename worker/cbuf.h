/* cbuf.h - a growing text buffer, for pages built in memory */
#ifndef OD_CBUF_H
#define OD_CBUF_H

#include <stddef.h>

#include "od.h"

/* A growing text buffer; oom set once an allocation failed. */
typedef struct cbuf {
    char *p;
    size_t len, cap;
    int oom;
} cbuf_t;

void cbuf_printf(cbuf_t *b, const char *fmt, ...) OD_PRINTF(2, 3);
/* Appends s with &, <, >, " and ' as character references. */
void cbuf_html(cbuf_t *b, const char *s);

#endif
