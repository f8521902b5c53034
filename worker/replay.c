/* replay.c - orderd replay: moves the group's stored offsets back so the
 * running (or next) worker re-reads a topic, exactly once in effect
 *
 * DESIGN: offsets live in Postgres, so a replay is an UPDATE of
 * consumer_offsets; a running executor notices at its next batch (or idle
 * check) that the stored offset is below its position and seeks back.
 * Effects stay exactly-once because every re-read command meets its dedup
 * row. replay_until remembers where the replay ends: re-read duplicates
 * below it yield no second result event (unless --loud). --dry-run reads
 * the range and classifies each command against the dedup rows, changing
 * nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../handlers/command.h"
#include "cli.h"
#include "db.h"
#include "dedup.h"
#include "offsets.h"
#include "kafka.h"
#include "log.h"

#define REPLAY_MAX_PARTS 1024

typedef struct replay_part {
    int32_t partition;
    int64_t stored;
    int64_t target;
} replay_part_t;

typedef struct replay_counts {
    long apply, duplicate, conflict, invalid, poison;
} replay_counts_t;

static rd_kafka_t *
replay_consumer(const od_config_t *cfg)
{
    static const char *const defaults[] = {"group.id",
                                           "orderd-replay",
                                           "enable.auto.commit",
                                           "false",
                                           "enable.partition.eof",
                                           "true",
                                           "auto.offset.reset",
                                           "earliest",
                                           NULL};
    char err[512], errstr[512];
    rd_kafka_conf_t *conf =
        kafka_conf_new(cfg, "orderd-replay", defaults, err, sizeof(err));
    rd_kafka_t *rk;

    if (conf == NULL) {
        fprintf(stderr, "orderd replay: %s\n", err);
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "orderd replay: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}

/* Targets from the beginning (low watermark) or from a time. */
static int
find_targets(rd_kafka_t *rk, const char *topic, const char *from_time,
             replay_part_t *parts, int n)
{
    int64_t ts_us = 0;

    if (from_time != NULL && od_parse_time(from_time, &ts_us) < 0) {
        fprintf(stderr,
                "orderd replay: --from-time '%s' is not an RFC 3339 "
                "time\n",
                from_time);
        return -1;
    }
    if (from_time != NULL) {
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(n);
        rd_kafka_resp_err_t e;

        for (int i = 0; i < n; i++)
            rd_kafka_topic_partition_list_add(l, topic, parts[i].partition)
                ->offset = ts_us / 1000;
        e = rd_kafka_offsets_for_times(rk, l, 10000);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "orderd replay: could not look up offsets: %s\n",
                    rd_kafka_err2str(e));
            rd_kafka_topic_partition_list_destroy(l);
            return -1;
        }
        for (int i = 0; i < n; i++) {
            int64_t off = l->elems[i].offset;

            /* -1: no message at or after that time: nothing to re-read */
            parts[i].target = off < 0 ? parts[i].stored : off;
        }
        rd_kafka_topic_partition_list_destroy(l);
    } else {
        for (int i = 0; i < n; i++) {
            int64_t lo = 0, hi = 0;

            if (rd_kafka_query_watermark_offsets(rk, topic, parts[i].partition,
                                                 &lo, &hi, 10000) !=
                RD_KAFKA_RESP_ERR_NO_ERROR) {
                fprintf(stderr,
                        "orderd replay: could not read watermarks "
                        "of %s/%d\n",
                        topic, (int)parts[i].partition);
                return -1;
            }
            parts[i].target = lo;
        }
    }
    for (int i = 0; i < n; i++)
        if (parts[i].target > parts[i].stored)
            parts[i].target = parts[i].stored;
    return 0;
}

static void
classify(db_t *db, const char *source, const rd_kafka_message_t *rkm,
         replay_counts_t *c)
{
    cmd_env_t env;
    char err[256];
    cmd_parse_t p =
        command_parse(rkm->payload, rkm->len, 0, &env, err, sizeof(err));

    if (p == CMD_PARSE_POISON) {
        c->poison++;
    } else {
        int found = 0, same = 0;

        if (dedup_lookup(db, source, env.dedup_key,
                         command_env_fingerprint(&env), &found, &same, err,
                         sizeof(err)) != OD_OK)
            fprintf(stderr, "orderd replay: %s\n", err);
        else if (!found)
            p == CMD_PARSE_INVALID ? c->invalid++ : c->apply++;
        else if (same)
            c->duplicate++;
        else
            c->conflict++;
    }
    command_env_free(&env);
}

/* Reads [target, stored) of every partition and classifies each message. */
static int
dry_run(rd_kafka_t *rk, db_t *db, const char *topic, const char *source,
        replay_part_t *parts, int n, replay_counts_t *c)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    int open = 0;

    for (int i = 0; i < n; i++) {
        if (parts[i].target >= parts[i].stored)
            continue;
        rd_kafka_topic_partition_list_add(l, topic, parts[i].partition)
            ->offset = parts[i].target;
        open++;
    }
    if (open > 0)
        rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    while (open > 0) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 10000);
        replay_part_t *p = NULL;

        if (rkm == NULL) {
            fprintf(stderr, "orderd replay: timed out reading the topic\n");
            return -1;
        }
        for (int i = 0; i < n; i++)
            if (parts[i].partition == rkm->partition)
                p = &parts[i];
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (p != NULL && p->target < p->stored) {
                p->target = p->stored; /* the log ends early: done */
                open--;
            }
        } else if (rkm->err == RD_KAFKA_RESP_ERR_NO_ERROR && p != NULL &&
                   rkm->offset < p->stored) {
            classify(db, source, rkm, c);
            if (rkm->offset + 1 >= p->stored) {
                p->target = p->stored;
                open--;
            }
        }
        rd_kafka_message_destroy(rkm);
    }
    return 0;
}

/* One topic: its stored offsets moved back (or, dry, classified). Returns
 * 0, or -1 after saying why on stderr. */
static int
replay_topic(const od_config_t *cfg, db_t *db, rd_kafka_t *rk,
             const char *topic, const char *from_time, int dry, int loud)
{
    const od_source_t *src = sources_by_topic(&cfg->sources, topic);
    replay_part_t parts[REPLAY_MAX_PARTS];
    replay_counts_t counts = {0};
    char err[1024];
    db_rows_t *rows = NULL;
    int n = 0;

    if (offsets_of_topic(db, cfg->group, topic, &rows, err, sizeof(err)) !=
        OD_OK) {
        fprintf(stderr, "orderd replay: %s\n", err);
        return -1;
    }
    for (int i = 0; i < db_nrows(rows) && n < REPLAY_MAX_PARTS; i++, n++) {
        parts[n].partition = (int32_t)db_int64(rows, i, 0);
        parts[n].stored = db_int64(rows, i, 1);
    }
    db_rows_free(rows);
    if (n == 0) {
        printf("group %s has no stored offsets for %s: nothing to replay\n",
               cfg->group, topic);
        return 0;
    }
    if (find_targets(rk, topic, from_time, parts, n) < 0)
        return -1;
    for (int i = 0; i < n; i++)
        printf("%s/%d: %lld -> %lld (%lld messages to re-read)\n", topic,
               (int)parts[i].partition, (long long)parts[i].stored,
               (long long)parts[i].target,
               (long long)(parts[i].stored - parts[i].target));
    if (dry) {
        /* a topic no source names: its commands would be judged as the
         * default source's */
        if (dry_run(rk, db, topic, src ? src->name : SOURCE_DEFAULT, parts, n,
                    &counts) < 0)
            return -1;
        printf("dry run: %ld would apply, %ld duplicates, %ld conflicts "
               "(dedup_key_reused), %ld invalid, %ld poison; nothing "
               "changed (%s)\n",
               counts.apply, counts.duplicate, counts.conflict, counts.invalid,
               counts.poison, topic);
        return 0;
    }
    for (int i = 0; i < n; i++) {
        offsets_key_t k = {cfg->group, topic, parts[i].partition};

        if (offsets_move_back(db, &k, parts[i].target, loud, err,
                              sizeof(err)) != OD_OK) {
            fprintf(stderr, "orderd replay: %s\n", err);
            return -1;
        }
    }
    printf("stored offsets moved back for group %s (%s); duplicates re-read "
           "%s\n",
           cfg->group, topic,
           loud ? "get a result event again" : "stay quiet (no new result)");
    return 0;
}

int
cli_replay(const od_config_t *cfg, const char *from_time, int dry,
           const char *topic, int loud)
{
    char err[1024];
    rd_kafka_t *rk = NULL;
    db_t *db;
    int rc = 1;

    db = db_connect(cfg->pg, err, sizeof(err));
    if (db == NULL) {
        fprintf(stderr, "orderd replay: %s\n", err);
        return CLI_EXIT_FAILURE;
    }
    rk = replay_consumer(cfg);
    if (rk == NULL)
        goto out;
    /* --topic: that one; else every source's topic */
    if (topic != NULL) {
        rc = replay_topic(cfg, db, rk, topic, from_time, dry, loud) < 0;
        goto out;
    }
    rc = 0;
    for (int i = 0; i < cfg->sources.n && rc == 0; i++)
        rc = replay_topic(cfg, db, rk, cfg->sources.items[i].topic, from_time,
                          dry, loud) < 0;
out:
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    db_destroy(db);
    return rc;
}
