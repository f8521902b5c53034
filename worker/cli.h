/* cli.h - the operator subcommands of the orderd binary */
#ifndef OD_CLI_H
#define OD_CLI_H

#include "config.h"

/* Each returns the process exit status; extra arguments after the
 * subcommand's flags arrive in pos. */
int cli_migrate(const od_config_t *cfg);
int cli_topics(const od_config_t *cfg);
/* source_name: the source whose topic gets the lines (NULL: "default") */
int cli_send(const od_config_t *cfg, int raw, const char *source_name);
int cli_replay(const od_config_t *cfg, const char *from_time, int dry_run,
               const char *topic, int loud);
int cli_check(const od_config_t *cfg);
int cli_order(const od_config_t *cfg, const char *order_id);
int cli_run(const od_config_t *cfg);
/* Prints events of the events topic from the beginning, one line each (raw
 * JSON with raw), until count events (0: no limit) or timeout_s (0: none). */
int cli_events(const od_config_t *cfg, long count, int timeout_s, int raw);

/* The Kafka key a command is produced with (contract key rule): the
 * smallest product ID it touches, else its order_id, else its dedup_key.
 * Writes into key (at least 64 bytes); returns 0, or -1 when the line is
 * not a JSON object. */
int cli_command_key(const char *line, size_t len, char *key, size_t keylen);

#endif
