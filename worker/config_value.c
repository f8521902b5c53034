/* config_value.c - what the text of an option's value becomes
 *
 * DESIGN: every layer (flag, variable, file, default) hands its text to
 * config_set_opt, so a value is checked the same way wherever it comes
 * from: integers and durations against the row's bounds, choices against
 * the row's list, times as RFC 3339. An error names where the value came
 * from and quotes it only when it came from the command line or the
 * environment (escaped and cut short): a value read from a file may be a
 * password on the wrong line.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"

int
config_parse_duration(const char *s, int64_t *ms)
{
    char *end;
    long long n;
    int64_t mult = 1000;

    errno = 0;
    if (!isdigit((unsigned char)*s))
        return -1;
    n = strtoll(s, &end, 10);
    if (errno != 0 || n < 0)
        return -1;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        mult = 3600 * 1000;
    else if (strcmp(end, "d") == 0)
        mult = 86400LL * 1000;
    else
        return -1;
    if (__builtin_mul_overflow((int64_t)n, mult, ms))
        return -1;
    return 0;
}

/* ms in the largest whole unit, for messages: "1d", "90s", "250ms" */
static const char *
format_duration(int64_t ms, char *buf, size_t len)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};

    for (size_t i = 0; i < OD_ARRAY_LEN(units); i++)
        if (ms != 0 && ms % units[i].ms == 0) {
            snprintf(buf, len, "%lld%s", (long long)(ms / units[i].ms),
                     units[i].unit);
            return buf;
        }
    snprintf(buf, len, "%lldms", (long long)ms);
    return buf;
}

/* 1 if value is one of choices ("a|b|c") */
static int
is_choice(const char *choices, const char *value)
{
    size_t len = strlen(value);

    for (const char *c = choices; *c != '\0';) {
        const char *bar = strchr(c, '|');
        size_t n = bar ? (size_t)(bar - c) : strlen(c);

        if (n == len && strncmp(c, value, n) == 0)
            return 1;
        c += bar ? n + 1 : n;
    }
    return 0;
}

/*
 * "WHERE: 'VALUE' is not WHAT", or without the value when echo is 0 (a
 * value read from a file is never repeated: a misplaced password would
 * reach the terminal or a log).
 */
static void
bad_value(char *err, size_t errlen, const char *where, int echo,
          const char *value, const char *what)
{
    char shown[OD_ESCAPE_SIZE(64)], cut[65];

    if (!echo) {
        od_err(err, errlen, "%s: the value is not %s", where, what);
        return;
    }
    snprintf(cut, sizeof(cut), "%s", value);
    od_err(err, errlen, "%s: '%s' is not %s", where,
           od_escape(cut, shown, sizeof(shown)), what);
}

/*
 * Sets one option from text. append: a repeated OPT_LIST adds to the
 * values given before it in the same layer. where names the origin for
 * errors ("--threads", "ORDERD_THREADS", "FILE:LINE: threads").
 */
int
config_set_opt(od_config_t *cfg, const opt_t *o, const char *value, int append,
               const char *where, int echo, char *err, size_t errlen)
{
    char *base = (char *)cfg;
    char what[128], lo[32], hi[32];

    switch (o->type) {
    case OPT_LIST: {
        char **dst = (char **)(base + o->offset);
        size_t len;
        char *joined;

        if (!append || *dst == NULL || **dst == '\0')
            break;
        len = strlen(*dst) + strlen(value) + 2;
        joined = malloc(len);
        if (joined == NULL)
            goto oom;
        snprintf(joined, len, "%s;%s", *dst, value);
        free(*dst);
        *dst = joined;
        return 0;
    }
    case OPT_ENUM:
        /* "" only where the default is "" (not given) */
        if (!is_choice(o->choices, value) &&
            !(*value == '\0' && o->def[0] == '\0')) {
            snprintf(what, sizeof(what), "one of %s", o->choices);
            bad_value(err, errlen, where, echo, value, what);
            return -1;
        }
        break;
    case OPT_TIME: {
        int64_t us;

        if (*value != '\0' && od_parse_time(value, &us) < 0) {
            bad_value(err, errlen, where, echo, value,
                      "an RFC 3339 time (e.g. 2026-11-21T09:00:00Z)");
            return -1;
        }
        break;
    }
    default:
        break;
    }
    switch (o->type) {
    case OPT_LIST:
    case OPT_STR:
    case OPT_ENUM:
    case OPT_TIME:
    case OPT_CONFIG: {
        char **dst = (char **)(base + o->offset);
        char *copy = strdup(value);

        if (copy == NULL)
            goto oom;
        free(*dst);
        *dst = copy;
        return 0;
    }
    case OPT_INT: {
        char *end;
        long long n;

        errno = 0;
        n = strtoll(value, &end, 10);
        if (errno != 0 ||
            !(isdigit((unsigned char)*value) ||
              (o->min < 0 && *value == '-')) ||
            *end != '\0' || n < o->min || (o->max > 0 && n > o->max)) {
            if (o->max > 0)
                snprintf(what, sizeof(what), "an integer from %lld to %lld",
                         (long long)o->min, (long long)o->max);
            else
                snprintf(what, sizeof(what), "an integer of at least %lld",
                         (long long)o->min);
            bad_value(err, errlen, where, echo, value, what);
            return -1;
        }
        *(int64_t *)(base + o->offset) = n;
        return 0;
    }
    case OPT_DURATION: {
        int64_t ms;

        if (config_parse_duration(value, &ms) < 0 || ms < o->min ||
            (o->max > 0 && ms > o->max)) {
            if (o->max > 0)
                snprintf(what, sizeof(what), "a duration from %s to %s",
                         format_duration(o->min, lo, sizeof(lo)),
                         format_duration(o->max, hi, sizeof(hi)));
            else if (o->min > 0)
                snprintf(what, sizeof(what), "a duration of at least %s",
                         format_duration(o->min, lo, sizeof(lo)));
            else
                snprintf(what, sizeof(what),
                         "a duration (e.g. 500ms, 5s, 15m, 30d)");
            bad_value(err, errlen, where, echo, value, what);
            return -1;
        }
        *(int64_t *)(base + o->offset) = ms;
        return 0;
    }
    case OPT_BOOL:
    case OPT_FLAG:
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0 ||
            strcmp(value, "on") == 0 || strcmp(value, "yes") == 0)
            *(int64_t *)(base + o->offset) = 1;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0 ||
                 strcmp(value, "off") == 0 || strcmp(value, "no") == 0)
            *(int64_t *)(base + o->offset) = 0;
        else {
            bad_value(err, errlen, where, echo, value, "true or false");
            return -1;
        }
        return 0;
    case OPT_KAFKA_PROP:
    case OPT_KAFKA_FILE:
        break;
    }
    od_err(err, errlen, "%s: cannot be set here", where);
    return -1;
oom:
    od_err(err, errlen, "out of memory");
    return -1;
}
