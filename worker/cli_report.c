/* cli_report.c - orderd report: the order analytics of report.c on the
 * command line */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report.h"

/* a report is a few indexed reads; one that takes longer than this is
 * scanning what it should not, and should say so rather than load the
 * server */
#define CLI_REPORT_TIMEOUT_MS (5 * 60 * 1000)

int
cli_report(const od_config_t *cfg)
{
    report_opts_t opts = {cfg->report_by, cfg->report_from, cfg->report_to,
                          cfg->report_vendor};
    char err[1024];
    json_t *rep = NULL;
    db_t *db = db_connect(cfg->pg, err, sizeof(err));
    od_status_t st;
    int rc = CLI_EXIT_OK;

    if (db == NULL) {
        fprintf(stderr, "orderd report: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    st = report_build(db, &opts, CLI_REPORT_TIMEOUT_MS, &rep, err, sizeof(err));
    db_destroy(db);
    if (st != OD_OK) {
        fprintf(stderr, "orderd report: %s\n", err);
        return st == OD_REJECT ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
    }
    if (strcmp(cfg->report_format, "json") == 0) {
        char *s = json_dumps(rep, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

        if (s == NULL) {
            fprintf(stderr, "orderd report: out of memory\n");
            rc = CLI_EXIT_FAILURE;
        } else {
            printf("%s\n", s);
            free(s);
        }
    } else {
        report_print_text(stdout, rep);
    }
    json_decref(rep);
    return rc;
}
