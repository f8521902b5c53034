/* config_int.h - what config.c (the option table, where a value comes
 * from) and config_value.c (what a value's text becomes) share */
#ifndef OD_CONFIG_INT_H
#define OD_CONFIG_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/*
 * OPT_LIST: a repeatable option whose values are joined with ';' (the
 * variable gives the joined form itself). OPT_FLAG takes no value.
 * OPT_CONFIG, OPT_KAFKA_PROP and OPT_KAFKA_FILE are read by config_load
 * itself (--config, -X, -F).
 */
typedef enum opt_type {
    OPT_STR,
    OPT_INT,
    OPT_DURATION,
    OPT_BOOL,
    OPT_LIST,
    OPT_ENUM,
    OPT_TIME,
    OPT_FLAG,
    OPT_CONFIG,
    OPT_KAFKA_PROP,
    OPT_KAFKA_FILE
} opt_type_t;

typedef struct opt {
    const char *name; /* flag without "--"; one letter: a short flag "-X" */
    const char *env;  /* NULL: a command-line flag only (not in a file) */
    opt_type_t type;
    size_t offset;
    const char *def;
    unsigned cmds;       /* CONFIG_* bits of the subcommands that take it */
    const char *arg;     /* placeholder in --help (NULL: from the type) */
    int64_t min, max;    /* OPT_INT, OPT_DURATION (ms); max 0: unbounded */
    const char *choices; /* OPT_ENUM: "a|b|c" */
    const char *help;
} opt_t;

/*
 * Sets one option from text. append: a repeated OPT_LIST adds to the
 * values given before it in the same layer. where names the origin for
 * errors ("--threads", "ORDERD_THREADS", "FILE:LINE: threads"); echo:
 * whether a bad value may be quoted back (never one read from a file).
 */
int config_set_opt(od_config_t *cfg, const opt_t *o, const char *value,
                   int append, const char *where, int echo, char *err,
                   size_t errlen);

#endif
