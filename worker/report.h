/* report.h - order analytics from the read model: `orderd report` and the
 * console's /analytics */
#ifndef OD_REPORT_H
#define OD_REPORT_H

#include <stdio.h>

#include <jansson.h>

#include "db.h"

/* What to report; NULL or "" fields take their default. */
typedef struct report_opts {
    const char *by;     /* day (default) | week | month */
    const char *from;   /* timestamptz text; default: 30 days before to */
    const char *to;     /* timestamptz text, exclusive; default: now */
    const char *vendor; /* only orders holding this vendor's items */
} report_opts_t;

/* 1 if by is a period report_build takes (NULL and "" count: the default) */
int report_by_valid(const char *by);

/*
 * Builds the analytics of the orders created (their event time) in
 * [from, to) as JSON into *out (caller decrefs): totals, one entry per
 * period, the top products and the per-vendor figures, money in minor
 * units per currency. Runs in one read-only transaction of its own on db,
 * times in UTC, every statement bounded by statement_timeout_ms (0: the
 * session's). OD_REJECT when from or to is not a time (err says which),
 * OD_RETRY / OD_FATAL as db_run.
 */
od_status_t report_build(db_t *db, const report_opts_t *opts,
                         int statement_timeout_ms, json_t **out, char *err,
                         size_t errlen) OD_MUSTCHECK;

/* Prints a report_build result as text tables, money in major units. */
void report_print_text(FILE *f, const json_t *rep);

#endif
