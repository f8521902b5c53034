/* main.c - the orderd binary: subcommand dispatch, configuration, logging */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "version.h"

typedef struct sub_flags {
    int raw;
    int validate;
    int dry_run;
    int from_beginning;
    int loud;
    const char *from_time;
    const char *topic;
    const char *source; /* send --source NAME (a name, not NAME=...) */
    long count;
    int timeout_s;
    cli_dlq_opts_t dlq; /* dlq: --all, --offsets, --partition, ... */
} sub_flags_t;

/* subcommand-only flags, recognised before the configuration table */
static int
sub_flag(int argc, char **argv, int i, void *arg)
{
    sub_flags_t *f = arg;

    if (strcmp(argv[i], "--raw") == 0)
        return f->raw = 1;
    if (strcmp(argv[i], "--validate") == 0)
        return f->validate = 1;
    if (strcmp(argv[i], "--all") == 0)
        return f->dlq.all = 1;
    if (strcmp(argv[i], "--offsets") == 0 && i + 1 < argc) {
        f->dlq.offsets = argv[i + 1];
        return 2;
    }
    if (strcmp(argv[i], "--partition") == 0 && i + 1 < argc) {
        f->dlq.partition = atoi(argv[i + 1]);
        return 2;
    }
    if (strcmp(argv[i], "--error-class") == 0 && i + 1 < argc) {
        f->dlq.error_class = argv[i + 1];
        return 2;
    }
    if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
        f->dlq.since = argv[i + 1];
        return 2;
    }
    if (strcmp(argv[i], "--dry-run") == 0)
        return f->dry_run = 1;
    if (strcmp(argv[i], "--from-beginning") == 0)
        return f->from_beginning = 1;
    if (strcmp(argv[i], "--loud") == 0)
        return f->loud = 1;
    if (strcmp(argv[i], "--from-time") == 0 && i + 1 < argc) {
        f->from_time = argv[i + 1];
        return 2;
    }
    if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
        f->count = atol(argv[i + 1]);
        return 2;
    }
    if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
        f->timeout_s = atoi(argv[i + 1]);
        return 2;
    }
    /* --source NAME=TOPIC:ROLES defines a source (the configuration
     * table); --source NAME picks one to send to */
    if (strcmp(argv[i], "--source") == 0 && i + 1 < argc &&
        strchr(argv[i + 1], '=') == NULL) {
        f->source = argv[i + 1];
        return 2;
    }
    if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc) {
        f->topic = argv[i + 1];
        return 2;
    }
    return 0;
}

/* the command line main parsed, for SIGHUP to parse again */
typedef struct reload_ctx {
    int argc;
    char **argv;
} reload_ctx_t;

/* cli_reload_fn: the log settings of the configuration read as at start */
static int
reload_log(void *arg, log_level_t *level, int *json, char *err, size_t errlen)
{
    reload_ctx_t *ctx = arg;
    od_config_t cfg;
    sub_flags_t scratch = {0};
    char *pos[2] = {NULL, NULL};
    int npos = 0, rc = -1, lv;

    config_init(&cfg);
    if (config_parse(&cfg, ctx->argc, ctx->argv, sub_flag, &scratch, pos, 2,
                     &npos, err, errlen) != 0)
        goto out;
    lv = log_level_parse(cfg.log_level);
    if (lv < 0) {
        od_err(err, errlen, "unknown log level '%s'", cfg.log_level);
        goto out;
    }
    *level = (log_level_t)lv;
    *json = strcmp(cfg.log_format, "json") == 0;
    rc = 0;
out:
    config_free(&cfg);
    return rc;
}

static void
usage(FILE *out)
{
    fprintf(out,
            "orderd %s - applies order commands from Kafka to PostgreSQL "
            "exactly once\n\n"
            "usage: orderd COMMAND [options]\n\n"
            "commands:\n"
            "  run                 the worker: executors, expiry scheduler,\n"
            "                      outbox publisher, metrics and health\n"
            "  migrate             apply schema/ migrations\n"
            "  topics              create the topics if missing\n"
            "  send [--raw | --validate] [--source NAME]\n"
            "                      produce JSON command lines from stdin to\n"
            "                      the source's topic (--raw: lines as they\n"
            "                      are, even if not JSON; --validate: check\n"
            "                      every line first, send none if one fails)\n"
            "  replay --from-beginning | --from-time T [--topic NAME]\n"
            "         [--dry-run] [--loud]\n"
            "                      move the stored offsets back for "
            "re-reading\n"
            "  check               verify the invariants; exit 1 on a "
            "violation\n"
            "  order ID            print an order with items and history\n"
            "  events [--count N] [--timeout S] [--raw]\n"
            "                      print the events topic from the start\n"
            "  dlq [--count N] [--timeout S] [SELECTION]\n"
            "                      print dead letters as JSON lines\n"
            "  dlq redrive --all | SELECTION [--count N] [--timeout S]\n"
            "                      produce dead letters again to their\n"
            "                      source topic; SELECTION: --offsets 3,5-9\n"
            "                      [--partition P], --error-class\n"
            "                      internal_error|poison, --since TIME\n"
            "  version\n\n",
            orderd_version());
    config_usage(out);
}

int
main(int argc, char **argv)
{
    od_config_t cfg;
    sub_flags_t flags = {0};
    char err[512];
    char *pos[2] = {NULL, NULL};
    int npos = 0, rc, level;
    const char *cmd;

    if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    cmd = argv[1];
    if (strcmp(cmd, "version") == 0) {
        printf("orderd %s\n", orderd_version());
        return 0;
    }
    flags.dlq.partition = -1;
    config_init(&cfg);
    rc = config_parse(&cfg, argc - 2, argv + 2, sub_flag, &flags, pos, 2, &npos,
                      err, sizeof(err));
    if (rc == 1) {
        usage(stdout);
        config_free(&cfg);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "orderd %s: %s\n", cmd, err);
        config_free(&cfg);
        return 2;
    }
    if (config_finish(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "orderd %s: %s\n", cmd, err);
        config_free(&cfg);
        return 2;
    }
    level = log_level_parse(cfg.log_level);
    if (level < 0) {
        fprintf(stderr, "orderd: unknown log level '%s'\n", cfg.log_level);
        config_free(&cfg);
        return 2;
    }
    log_setup((log_level_t)level, strcmp(cfg.log_format, "json") == 0);

    if (strcmp(cmd, "run") == 0) {
        reload_ctx_t ctx = {argc - 2, argv + 2};

        rc = cli_run(&cfg, reload_log, &ctx);
    } else if (strcmp(cmd, "migrate") == 0) {
        rc = cli_migrate(&cfg);
    } else if (strcmp(cmd, "topics") == 0) {
        rc = cli_topics(&cfg);
    } else if (strcmp(cmd, "send") == 0) {
        rc = cli_send(&cfg, flags.raw, flags.source, flags.validate);
    } else if (strcmp(cmd, "replay") == 0) {
        if (flags.from_beginning == (flags.from_time != NULL)) {
            fprintf(stderr, "orderd replay: give exactly one of "
                            "--from-beginning and --from-time T\n");
            rc = 2;
        } else {
            rc = cli_replay(&cfg, flags.from_time, flags.dry_run, flags.topic,
                            flags.loud);
        }
    } else if (strcmp(cmd, "events") == 0) {
        rc = cli_events(&cfg, flags.count, flags.timeout_s, flags.raw);
    } else if (strcmp(cmd, "dlq") == 0) {
        flags.dlq.count = flags.count;
        flags.dlq.timeout_s = flags.timeout_s;
        if (npos > 1 || (npos == 1 && strcmp(pos[0], "redrive") != 0)) {
            fprintf(stderr, "orderd dlq: expected no argument or 'redrive'\n");
            rc = 2;
        } else {
            rc = cli_dlq(&cfg, &flags.dlq, npos == 1);
        }
    } else if (strcmp(cmd, "check") == 0) {
        rc = cli_check(&cfg);
    } else if (strcmp(cmd, "order") == 0) {
        if (npos != 1) {
            fprintf(stderr, "orderd order: give one order ID\n");
            rc = 2;
        } else {
            rc = cli_order(&cfg, pos[0]);
        }
    } else {
        fprintf(stderr, "orderd: unknown command '%s' (see orderd --help)\n",
                cmd);
        rc = 2;
    }
    config_free(&cfg);
    return rc;
}
