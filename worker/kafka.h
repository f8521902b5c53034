/* kafka.h - librdkafka configuration shared by consumers, producers and
 * the admin commands */
#ifndef OD_KAFKA_H
#define OD_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "config.h"

/* A conf with bootstrap servers, logging, the client's own defaults
 * (key, value, ..., NULL; may be NULL) and then every -X property, so the
 * operator has the last word (an unknown -X key is an error). Caller owns
 * the result. */
rd_kafka_conf_t *kafka_conf_new(const od_config_t *cfg, const char *client_id,
                                const char *const *defaults, char *err,
                                size_t errlen);
/* Checks at start that librdkafka takes every -F and -X property (an
 * unknown key, a bad value), so that each subcommand refuses them alike
 * before it does anything. Returns 0, or -1 with err (never a secret's
 * value). */
int kafka_conf_check(const od_config_t *cfg, char *err, size_t errlen);
/* Sets a property, filling err on failure: 0 or -1. */
int kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value,
                   char *err, size_t errlen);

#endif
