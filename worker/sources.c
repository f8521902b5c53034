/* sources.c - the table of input sources: parsing --source, lookups
 *
 * DESIGN: a source is a trust boundary. Kafka ACLs decide which producer
 * may write to a topic; this table decides which actor roles the commands
 * on that topic may claim, and the source's name is half of every
 * command's dedup identity (source, dedup_key), so producers on different
 * topics can never take each other's keys. The table is built once at
 * start and then only read, by every thread, without locks.
 */
#include "sources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const od_source_t orderd_source = {SOURCE_ORDERD, "orderd.scheduler",
                                          ROLE_SYSTEM};

const od_source_t *
sources_orderd(void)
{
    return &orderd_source;
}

static int
name_valid(const char *s, size_t n)
{
    if (n == 0 || n > SOURCE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

/* ROLE[,ROLE...] into bits; -1 with err on an unknown or empty role. */
static int
parse_roles(const char *s, size_t n, unsigned *roles, const char *entry,
            char *err, size_t errlen)
{
    const char *p = s, *end = s + n;

    *roles = 0;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        size_t len = (size_t)((comma ? comma : end) - p);
        char role[16];
        cmd_role_t r = 0;

        if (len > 0 && len < sizeof(role)) {
            memcpy(role, p, len);
            role[len] = '\0';
            r = cmd_role_parse(role);
        }
        if (r == 0) {
            od_err(err, errlen,
                   "source '%s': '%.*s' is not a role (customer, vendor, "
                   "admin, payment, system)",
                   entry, (int)len, p);
            return -1;
        }
        *roles |= (unsigned)r;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}

static int
add_source(od_sources_t *s, const char *name, size_t nlen, const char *topic,
           size_t tlen, unsigned roles, char *err, size_t errlen)
{
    od_source_t *src;

    if (s->n == SOURCES_MAX) {
        od_err(err, errlen, "more than %d sources", SOURCES_MAX);
        return -1;
    }
    src = &s->items[s->n];
    memcpy(src->name, name, nlen);
    src->name[nlen] = '\0';
    src->topic = strndup(topic, tlen);
    if (src->topic == NULL) {
        od_err(err, errlen, "out of memory");
        return -1;
    }
    src->roles = roles;
    for (int i = 0; i < s->n; i++) {
        if (strcmp(s->items[i].name, src->name) == 0) {
            od_err(err, errlen, "source '%s' is given twice", src->name);
            free(src->topic);
            return -1;
        }
        if (strcmp(s->items[i].topic, src->topic) == 0) {
            od_err(err, errlen,
                   "topic %s is bound to two sources (%s and %s): a topic's "
                   "commands must have one trust level",
                   src->topic, s->items[i].name, src->name);
            free(src->topic);
            return -1;
        }
    }
    s->n++;
    return 0;
}

/* One "NAME=TOPIC:ROLES" entry of n bytes. */
static int
parse_entry(od_sources_t *s, const char *e, size_t n, char *err, size_t errlen)
{
    const char *eq = memchr(e, '=', n);
    const char *colon = eq ? memchr(eq, ':', n - (size_t)(eq - e)) : NULL;
    char entry[96];
    unsigned roles;

    snprintf(entry, sizeof(entry), "%.*s", (int)(n < 64 ? n : 64), e);
    if (eq == NULL || colon == NULL) {
        od_err(err, errlen, "source '%s' is not NAME=TOPIC:ROLE[,ROLE...]",
               entry);
        return -1;
    }
    if (!name_valid(e, (size_t)(eq - e))) {
        od_err(err, errlen,
               "source '%s': the name must be 1 to %d of a-z, 0-9, _ and -",
               entry, SOURCE_NAME_MAX);
        return -1;
    }
    if ((size_t)(eq - e) == strlen(SOURCE_ORDERD) &&
        memcmp(e, SOURCE_ORDERD, strlen(SOURCE_ORDERD)) == 0) {
        od_err(err, errlen,
               "source name '%s' is reserved for orderd's own commands",
               SOURCE_ORDERD);
        return -1;
    }
    if (colon == eq + 1) {
        od_err(err, errlen, "source '%s' names no topic", entry);
        return -1;
    }
    if (parse_roles(colon + 1, n - (size_t)(colon + 1 - e), &roles, entry, err,
                    errlen) < 0)
        return -1;
    return add_source(s, e, (size_t)(eq - e), eq + 1, (size_t)(colon - eq - 1),
                      roles, err, errlen);
}

int
sources_parse(od_sources_t *s, const char *spec, const char *commands_topic,
              char *err, size_t errlen)
{
    const char *p = spec ? spec : "";

    memset(s, 0, sizeof(*s));
    while (*p == ' ' || *p == ';')
        p++;
    if (*p == '\0') {
        s->trust_all = 1;
        if (add_source(s, SOURCE_DEFAULT, strlen(SOURCE_DEFAULT),
                       commands_topic, strlen(commands_topic), ROLE_ALL, err,
                       errlen) < 0)
            goto fail;
        return 0;
    }
    while (*p != '\0') {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);

        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n > 0 && parse_entry(s, p, n, err, errlen) < 0)
            goto fail;
        p += end ? (size_t)(end - p) + 1 : strlen(p);
        while (*p == ' ')
            p++;
    }
    return 0;
fail:
    sources_free(s);
    return -1;
}

void
sources_free(od_sources_t *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->items[i].topic);
    memset(s, 0, sizeof(*s));
}

const od_source_t *
sources_by_topic(const od_sources_t *s, const char *topic)
{
    for (int i = 0; s != NULL && i < s->n; i++)
        if (strcmp(s->items[i].topic, topic) == 0)
            return &s->items[i];
    return NULL;
}

const od_source_t *
sources_by_name(const od_sources_t *s, const char *name)
{
    if (strcmp(name, SOURCE_ORDERD) == 0)
        return &orderd_source;
    for (int i = 0; s != NULL && i < s->n; i++)
        if (strcmp(s->items[i].name, name) == 0)
            return &s->items[i];
    return NULL;
}

char *
sources_roles_text(unsigned roles, char *buf, size_t len)
{
    static const cmd_role_t all[] = {ROLE_CUSTOMER, ROLE_VENDOR, ROLE_ADMIN,
                                     ROLE_PAYMENT, ROLE_SYSTEM};
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < OD_ARRAY_LEN(all); i++) {
        int n;

        if ((roles & (unsigned)all[i]) == 0)
            continue;
        n = snprintf(buf + used, len - used, "%s%s", used ? "," : "",
                     cmd_role_name(all[i]));
        if (n < 0 || (size_t)n >= len - used)
            break; /* truncated: buf holds what fits */
        used += (size_t)n;
    }
    return buf;
}
