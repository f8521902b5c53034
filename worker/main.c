/* main.c - the orderd binary: subcommand dispatch, configuration, logging
 *
 * DESIGN: every subcommand is a row of the table below; its options come
 * from the configuration table (config.c), which says which subcommands
 * take each one. Everything that can be checked without doing any work
 * is checked here, before the subcommand starts: options, values, the
 * sources, the connection strings, the Kafka properties. A mistake there
 * exits CLI_EXIT_USAGE (2) whatever the subcommand, and nothing was done.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "db.h"
#include "kafka.h"
#include "log.h"
#include "version.h"

typedef int (*cmd_fn)(const od_config_t *cfg, char **pos);

typedef struct cmd {
    unsigned bit;         /* CONFIG_*: its name and options */
    int npos;             /* positional arguments it needs */
    int maxpos;           /* positional arguments it takes (at most 2) */
    const char *synopsis; /* after "orderd NAME" */
    const char *summary;
    cmd_fn fn;
} cmd_t;

/* run's command line, for SIGHUP to read the configuration again */
typedef struct reload_ctx {
    int argc;
    char **argv;
} reload_ctx_t;

static reload_ctx_t run_args;

/* cli_reload_fn: the log settings as a start would read them now, from the
 * configuration file, the variables and the flags */
static int
reload_log(void *arg, log_level_t *level, int *json, char *err, size_t errlen)
{
    reload_ctx_t *ctx = arg;
    od_config_t cfg;
    int rc = -1;

    if (config_load(&cfg, CONFIG_RUN, ctx->argc, ctx->argv, NULL, 0, NULL, err,
                    errlen) != 0)
        goto out;
    *level = (log_level_t)log_level_parse(cfg.log_level);
    *json = strcmp(cfg.log_format, "json") == 0;
    rc = 0;
out:
    config_free(&cfg);
    return rc;
}

static int
cmd_run(const od_config_t *cfg, char **pos)
{
    return cli_run(cfg, reload_log, &run_args);
}

static int
cmd_migrate(const od_config_t *cfg, char **pos)
{
    return cli_migrate(cfg);
}

static int
cmd_topics(const od_config_t *cfg, char **pos)
{
    return cli_topics(cfg);
}

static int
cmd_send(const od_config_t *cfg, char **pos)
{
    return cli_send(cfg, (int)cfg->raw,
                    cfg->send_source[0] ? cfg->send_source : NULL,
                    (int)cfg->validate);
}

static int
cmd_replay(const od_config_t *cfg, char **pos)
{
    if (cfg->from_beginning == (cfg->from_time[0] != '\0')) {
        fprintf(stderr, "orderd replay: give exactly one of "
                        "--from-beginning and --from-time T\n");
        return CLI_EXIT_USAGE;
    }
    return cli_replay(cfg, cfg->from_time[0] ? cfg->from_time : NULL,
                      (int)cfg->dry_run, cfg->topic[0] ? cfg->topic : NULL,
                      (int)cfg->loud);
}

static int
cmd_check(const od_config_t *cfg, char **pos)
{
    return cli_check(cfg);
}

static int
cmd_order(const od_config_t *cfg, char **pos)
{
    return cli_order(cfg, pos[0]);
}

static int
cmd_events(const od_config_t *cfg, char **pos)
{
    return cli_events(cfg);
}

static int
cmd_dlq(const od_config_t *cfg, char **pos)
{
    cli_dlq_opts_t opt = {0};

    if (pos[0] != NULL && strcmp(pos[0], "redrive") != 0) {
        fprintf(stderr,
                "orderd dlq: expected no argument or 'redrive', not "
                "'%s'\n",
                pos[0]);
        return CLI_EXIT_USAGE;
    }
    opt.count = (long)cfg->dlq_count;
    opt.timeout_s = (int)((cfg->dlq_timeout_ms + 999) / 1000);
    opt.all = (int)cfg->dlq_all;
    opt.partition = (int)cfg->dlq_partition;
    opt.offsets = cfg->dlq_offsets[0] ? cfg->dlq_offsets : NULL;
    opt.error_class = cfg->dlq_error_class[0] ? cfg->dlq_error_class : NULL;
    opt.since = cfg->dlq_since[0] ? cfg->dlq_since : NULL;
    return cli_dlq(cfg, &opt, pos[0] != NULL);
}

static int
cmd_report(const od_config_t *cfg, char **pos)
{
    return cli_report(cfg);
}

static const cmd_t commands[] = {
    {CONFIG_RUN, 0, 0, "",
     "the worker: executors, scheduler, outbox publisher, metrics", cmd_run},
    {CONFIG_MIGRATE, 0, 0, "[--dry-run]",
     "apply the pending schema migrations (--dry-run: list them)", cmd_migrate},
    {CONFIG_TOPICS, 0, 0, "",
     "create the sources', events and dead-letter topics if missing",
     cmd_topics},
    {CONFIG_SEND, 0, 0, "[--raw | --validate] [--source NAME] < FILE",
     "produce JSON command lines from stdin to a source's topic", cmd_send},
    {CONFIG_REPLAY, 0, 0,
     "--from-beginning | --from-time T [--topic NAME] [--dry-run] [--loud]",
     "move the stored offsets back for re-reading", cmd_replay},
    {CONFIG_CHECK, 0, 0, "",
     "verify the invariants (exit 1: violations, 5: could not check)",
     cmd_check},
    {CONFIG_ORDER, 1, 1, "ID|NUMBER",
     "print an order with items and history as JSON", cmd_order},
    {CONFIG_EVENTS, 0, 0, "[--count N] [--timeout D] [--follow] [--raw]",
     "print the events topic from the beginning to its end", cmd_events},
    {CONFIG_DLQ, 0, 1, "[redrive] [--all | SELECTION] [--count N]",
     "print dead letters as JSON lines, or (redrive) produce chosen ones "
     "again to their source topic",
     cmd_dlq},
    {CONFIG_REPORT, 0, 0,
     "[--by day|week|month] [--from T] [--to T] [--vendor V] "
     "[--format text|json]",
     "order analytics per period: status mix, revenue, refunds, rates, "
     "time to payment, top products, vendors",
     cmd_report},
};

static const char exit_table[] =
    "exit status (every command):\n"
    "  0  done\n"
    "  1  failed at run time (a server refused or failed an operation;\n"
    "     check found violations; order found none; events saw fewer than\n"
    "     --count; run could not start, e.g. no schema)\n"
    "  2  bad command line, variable or configuration file: nothing done\n"
    "  3  run halted on an internal error (--on-internal-error halt)\n"
    "  4  run's shutdown did not finish in time (watchdog)\n"
    "  5  check could not check (database unreachable, a query failed)\n";

static const cmd_t *
find_cmd(const char *name)
{
    unsigned bit = config_cmd_parse(name);

    for (size_t i = 0; i < OD_ARRAY_LEN(commands); i++)
        if (bit != 0 && commands[i].bit == bit)
            return &commands[i];
    return NULL;
}

static void
usage(FILE *out)
{
    fprintf(out,
            "orderd %s - applies order commands from Kafka to PostgreSQL "
            "exactly once\n\n"
            "usage: orderd COMMAND [options]\n"
            "       orderd COMMAND --help   its options, variables and "
            "defaults\n"
            "       orderd version | --version\n\n"
            "commands:\n",
            orderd_version());
    for (size_t i = 0; i < OD_ARRAY_LEN(commands); i++)
        fprintf(out, "  %-9s %s\n", config_cmd_name(commands[i].bit),
                commands[i].summary);
    fprintf(out,
            "\nEvery option is a flag (--name VALUE), an ORDERD_* variable "
            "and a line\nof a --config file (name = value); a flag wins "
            "over its variable, which\nwins over the file. A command "
            "refuses the options of the others.\n\n%s",
            exit_table);
}

static void
cmd_usage(FILE *out, const cmd_t *c)
{
    const char *name = config_cmd_name(c->bit);

    fprintf(out, "usage: orderd %s [options]%s%s\n\n%s\n\n", name,
            c->synopsis[0] ? " " : "", c->synopsis, c->summary);
    config_usage(out, c->bit);
    fprintf(out, "\n%s", exit_table);
}

/*
 * What can be checked before any work: the sources, the connection
 * strings (a malformed one is not shown: it may hold a password), the
 * Kafka properties. Returns 0, or CLI_EXIT_USAGE after saying why.
 */
static int
check_config(od_config_t *cfg, const cmd_t *c)
{
    const char *name = config_cmd_name(c->bit);
    char err[512], masked[512];

    if ((c->bit & CONFIG_SOURCES) && config_finish(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "orderd %s: %s\n", name, err);
        return CLI_EXIT_USAGE;
    }
    if (c->bit & (CONFIG_RUN | CONFIG_MIGRATE | CONFIG_REPLAY | CONFIG_CHECK |
                  CONFIG_ORDER | CONFIG_REPORT)) {
        int owner = c->bit == CONFIG_MIGRATE && cfg->migrate_pg[0] != '\0';

        if (db_conninfo_masked(owner ? cfg->migrate_pg : cfg->pg, masked,
                               sizeof(masked)) < 0) {
            fprintf(stderr,
                    "orderd %s: %s: the connection string is malformed "
                    "(not shown: it may hold a password)\n",
                    name, owner ? "--migrate-pg" : "--pg");
            return CLI_EXIT_USAGE;
        }
    }
    if ((c->bit & CONFIG_KAFKA) &&
        kafka_conf_check(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "orderd %s: %s\n", name, err);
        return CLI_EXIT_USAGE;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    od_config_t cfg;
    char err[1024];
    char *pos[2] = {NULL, NULL};
    int npos = 0, rc;
    const cmd_t *c;

    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        /* orderd help COMMAND: that command's help */
        if (argc > 2 && (c = find_cmd(argv[2])) != NULL) {
            cmd_usage(stdout, c);
            return CLI_EXIT_OK;
        }
        usage(stdout);
        return argc > 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        if (argc > 2) {
            fprintf(stderr, "orderd version: takes no options\n");
            return CLI_EXIT_USAGE;
        }
        printf("orderd %s\n", orderd_version());
        return CLI_EXIT_OK;
    }
    c = find_cmd(argv[1]);
    if (c == NULL) {
        fprintf(stderr,
                "orderd: unknown command '%s' (options go after the "
                "command; see orderd --help)\n",
                argv[1]);
        return CLI_EXIT_USAGE;
    }
    rc = config_load(&cfg, c->bit, argc - 2, argv + 2, pos, c->maxpos, &npos,
                     err, sizeof(err));
    if (rc == 1) {
        cmd_usage(stdout, c);
        config_free(&cfg);
        return CLI_EXIT_OK;
    }
    if (rc < 0) {
        fprintf(stderr, "orderd %s: %s\n", argv[1], err);
        config_free(&cfg);
        return CLI_EXIT_USAGE;
    }
    if (npos < c->npos) {
        fprintf(stderr, "orderd %s: missing %s (usage: orderd %s %s)\n",
                argv[1], c->synopsis, argv[1], c->synopsis);
        config_free(&cfg);
        return CLI_EXIT_USAGE;
    }
    rc = check_config(&cfg, c);
    if (rc != 0) {
        config_free(&cfg);
        return rc;
    }
    log_setup((log_level_t)log_level_parse(cfg.log_level),
              strcmp(cfg.log_format, "json") == 0);
    run_args.argc = argc - 2;
    run_args.argv = argv + 2;
    rc = c->fn(&cfg, pos);
    config_free(&cfg);
    return rc;
}
