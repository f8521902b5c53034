/* cbuf.c - a growing text buffer: the metrics page and the console's answers
 *
 * DESIGN: an allocation failure is remembered (oom) rather than returned
 * from every append, so a builder appends freely and checks once at the
 * end; a buffer that starts empty (p NULL) grows on the first append.
 */
#include "cbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
cbuf_printf(cbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->oom)
        return;
    for (;;) {
        size_t room = b->cap - b->len;

        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p != NULL && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        {
            size_t cap = b->cap ? b->cap * 2 : 4096;
            char *p;

            while (cap - b->len <= (size_t)n)
                cap *= 2;
            p = realloc(b->p, cap);
            if (p == NULL) {
                b->oom = 1;
                return;
            }
            b->p = p;
            b->cap = cap;
        }
    }
}

void
cbuf_html(cbuf_t *b, const char *s)
{
    for (const char *p = s; p != NULL && *p != '\0';) {
        size_t run = strcspn(p, "&<>\"'");

        if (run > 0)
            cbuf_printf(b, "%.*s", (int)run, p);
        p += run;
        switch (*p) {
        case '&':
            cbuf_printf(b, "&amp;");
            break;
        case '<':
            cbuf_printf(b, "&lt;");
            break;
        case '>':
            cbuf_printf(b, "&gt;");
            break;
        case '"':
            cbuf_printf(b, "&quot;");
            break;
        case '\'':
            cbuf_printf(b, "&#39;");
            break;
        default:
            return;
        }
        p++;
    }
}
