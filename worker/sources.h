/* sources.h - who may send what: input topics bound to the roles their
 * commands may claim (contract v2) */
#ifndef OD_SOURCES_H
#define OD_SOURCES_H

#include "../handlers/handler.h"

#define SOURCE_NAME_MAX 32
#define SOURCES_MAX 32
/* the source of --commands-topic when no --source is given (v1 trust) */
#define SOURCE_DEFAULT "default"
/* orderd's own commands (scheduler expiries); no configured source may
 * take this name, so no producer can take one of its dedup keys */
#define SOURCE_ORDERD "orderd"

typedef struct od_source {
    char name[SOURCE_NAME_MAX + 1];
    char *topic;    /* owned */
    unsigned roles; /* cmd_role_t bits its commands may claim */
} od_source_t;

typedef struct od_sources {
    int n;
    od_source_t items[SOURCES_MAX];
    int trust_all; /* no --source: the default source admits every role */
} od_sources_t;

/*
 * Builds the table from spec, entries "NAME=TOPIC:ROLE[,ROLE...]"
 * separated by ';' (the form of --source and ORDERD_SOURCES). An empty
 * spec gives the default source on commands_topic admitting every role.
 * Returns 0, or -1 with err saying which entry is wrong and why (unknown
 * role, bad or reserved name, a name or topic given twice). On success
 * the caller releases s with sources_free.
 */
int sources_parse(od_sources_t *s, const char *spec, const char *commands_topic,
                  char *err, size_t errlen) OD_MUSTCHECK;
void sources_free(od_sources_t *s);

/* The source bound to topic, or NULL (also when s is NULL). */
const od_source_t *sources_by_topic(const od_sources_t *s, const char *topic);
/* The source of that name, or NULL. */
const od_source_t *sources_by_name(const od_sources_t *s, const char *name);

/* The source orderd's own commands carry (static, system role). */
const od_source_t *sources_orderd(void);

/* "customer,admin" for a role set, into buf. Returns buf. */
char *sources_roles_text(unsigned roles, char *buf, size_t len);

#endif
