/* cli_dlq.c - orderd dlq: lists dead letters, and redrives chosen ones to
 * the topic they came from
 *
 * DESIGN: both read the dead-letter topic from its start to its end (each
 * partition's end-of-partition event), with assign(), never a group: the
 * reader leaves no offsets behind and two operators can look at once. A
 * selection (offsets, error class, time) picks messages; listing prints
 * them as JSON lines, redrive produces each to the topic its
 * orderd-source-topic header names, with its original key and payload and
 * an orderd-redrive-from header. Redrive needs no bookkeeping of its own:
 * the worker's dedup decides. A redriven command that was applied before
 * is a duplicate; one refused internal_error is applied (that refusal left
 * nothing behind); poison goes back to the dead-letter topic.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "cli.h"
#include "kafka.h"

#define DLQ_MAX_RANGES 64
#define DLQ_MAX_PARTITIONS 1024
#define DLQ_DEFAULT_TIMEOUT_S 30

typedef struct dlq_range {
    int64_t lo, hi;
} dlq_range_t;

typedef struct dlq_sel {
    int partition; /* -1: every partition */
    int nranges;   /* 0: every offset */
    dlq_range_t ranges[DLQ_MAX_RANGES];
    const char *error_class; /* NULL: any */
    int64_t since_us;        /* 0: any time */
} dlq_sel_t;

/* "3,5-9" into ranges; 0, or -1 with err */
static int
dlq_parse_offsets(const char *s, dlq_sel_t *sel, char *err, size_t errlen)
{
    const char *p = s;

    while (*p != '\0') {
        char *end;
        long long lo, hi;

        if (sel->nranges == DLQ_MAX_RANGES) {
            od_err(err, errlen, "--offsets: more than %d items",
                   DLQ_MAX_RANGES);
            return -1;
        }
        errno = 0;
        lo = strtoll(p, &end, 10);
        if (end == p || errno != 0 || lo < 0)
            goto bad;
        hi = lo;
        if (*end == '-') {
            p = end + 1;
            hi = strtoll(p, &end, 10);
            if (end == p || errno != 0 || hi < lo)
                goto bad;
        }
        sel->ranges[sel->nranges].lo = lo;
        sel->ranges[sel->nranges++].hi = hi;
        if (*end == ',')
            end++;
        else if (*end != '\0')
            goto bad;
        p = end;
    }
    if (sel->nranges > 0)
        return 0;
bad:
    od_err(err, errlen,
           "--offsets '%s': expected offsets and ranges such as 3,5-9", s);
    return -1;
}

/* a header's value as a NUL-terminated copy (caller frees), or NULL */
static char *
dlq_header(const rd_kafka_message_t *rkm, const char *name)
{
    rd_kafka_headers_t *hdrs;
    const void *v;
    size_t len;
    char *copy;

    if (rd_kafka_message_headers(rkm, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &v, &len) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        v == NULL)
        return NULL;
    copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, v, len);
    copy[len] = '\0';
    return copy;
}

/* internal_error: the command was valid and orderd failed it (a redrive
 * after the fix applies it); poison: the bytes themselves were refused */
static const char *
dlq_class(const rd_kafka_message_t *rkm)
{
    char *e = dlq_header(rkm, "orderd-error");
    const char *c = e != NULL && strcmp(e, "internal_error") == 0
                        ? "internal_error"
                        : "poison";

    free(e);
    return c;
}

static int
dlq_selected(const dlq_sel_t *sel, const rd_kafka_message_t *rkm)
{
    int64_t off = rkm->offset;
    int ok = sel->nranges == 0;

    for (int i = 0; i < sel->nranges && !ok; i++)
        ok = off >= sel->ranges[i].lo && off <= sel->ranges[i].hi;
    if (!ok)
        return 0;
    if (sel->since_us > 0 &&
        rd_kafka_message_timestamp(rkm, NULL) * 1000 < sel->since_us)
        return 0;
    return sel->error_class == NULL ||
           strcmp(sel->error_class, dlq_class(rkm)) == 0;
}

/* bytes as a JSON string when they are UTF-8, else base64; *enc says
 * which. NULL bytes give JSON null. */
static json_t *
dlq_bytes(const void *p, size_t len, const char **enc)
{
    json_t *s;
    unsigned char *b64;

    *enc = "utf8";
    if (p == NULL)
        return json_null();
    s = json_stringn(p, len);
    if (s != NULL)
        return s;
    *enc = "base64";
    b64 = malloc(4 * ((len + 2) / 3) + 1);
    if (b64 == NULL)
        return json_null();
    EVP_EncodeBlock(b64, p, (int)len);
    s = json_string((const char *)b64);
    free(b64);
    return s;
}

/* an integer header, or JSON null */
static json_t *
dlq_int_header(const rd_kafka_message_t *rkm, const char *name)
{
    char *v = dlq_header(rkm, name), *end;
    long long n;
    json_t *j = json_null();

    if (v != NULL) {
        errno = 0;
        n = strtoll(v, &end, 10);
        if (end != v && *end == '\0' && errno == 0)
            j = json_integer(n);
    }
    free(v);
    return j;
}

/* One dead letter as the JSON object `orderd dlq` prints (caller
 * decrefs). */
static json_t *
dlq_json(const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *hdrs;
    json_t *o, *h = json_object();
    const char *kenc, *penc, *name;
    const void *v;
    size_t len;
    char at[40];

    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &v, &len) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR;
             i++) {
            const char *enc;
            json_t *val = dlq_bytes(v, len, &enc);

            if (strcmp(enc, "utf8") != 0)
                val = json_pack("{s:o}", "base64", val);
            json_object_set_new(h, name, val);
        }
    o = json_pack("{s:{s:s, s:i, s:I}, s:s, s:s, s:O, s:{s:O, s:o, s:o}}",
                  "dlq", "topic", rd_kafka_topic_name(rkm->rkt), "partition",
                  (int)rkm->partition, "offset", (json_int_t)rkm->offset, "at",
                  od_format_time(rd_kafka_message_timestamp(rkm, NULL) * 1000,
                                 at, sizeof(at)),
                  "class", dlq_class(rkm), "error",
                  json_object_get(h, "orderd-error")
                      ? json_object_get(h, "orderd-error")
                      : json_null(),
                  "source", "topic",
                  json_object_get(h, "orderd-source-topic")
                      ? json_object_get(h, "orderd-source-topic")
                      : json_null(),
                  "partition", dlq_int_header(rkm, "orderd-source-partition"),
                  "offset", dlq_int_header(rkm, "orderd-source-offset"));
    json_object_set_new(o, "key", dlq_bytes(rkm->key, rkm->key_len, &kenc));
    json_object_set_new(o, "key_encoding", json_string(kenc));
    json_object_set_new(o, "payload", dlq_bytes(rkm->payload, rkm->len, &penc));
    json_object_set_new(o, "payload_encoding", json_string(penc));
    json_object_set_new(o, "headers", h);
    return o;
}

static void
redrive_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    int *failed = opaque;

    (void)rk;
    if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "orderd dlq redrive: delivery failed: %s\n",
                rd_kafka_err2str(rkm->err));
        (*failed)++;
    }
}

/* Produces one dead letter to its source topic; 0, or -1 (reported). */
static int
dlq_redrive_one(const od_config_t *cfg, rd_kafka_t *producer,
                const rd_kafka_message_t *rkm)
{
    static const char *const carried[] = {"traceparent", "tracestate"};
    char *topic = dlq_header(rkm, "orderd-source-topic");
    char from[512];
    rd_kafka_headers_t *hdrs;
    rd_kafka_resp_err_t e;
    int rc = -1;

    snprintf(from, sizeof(from), "%s/%d@%" PRId64,
             rd_kafka_topic_name(rkm->rkt), (int)rkm->partition, rkm->offset);
    /* a header is data from the topic: only a configured source's topic
     * may receive what it names */
    if (topic == NULL || sources_by_topic(&cfg->sources, topic) == NULL) {
        fprintf(stderr,
                "orderd dlq redrive: %s: source topic '%s' is not the topic "
                "of a configured source (see --source)\n",
                from, topic ? topic : "");
        goto out;
    }
    hdrs = rd_kafka_headers_new(4);
    rd_kafka_header_add(hdrs, "orderd-redrive-from", -1, from, -1);
    for (size_t i = 0; i < OD_ARRAY_LEN(carried); i++) {
        char *v = dlq_header(rkm, carried[i]);

        if (v != NULL)
            rd_kafka_header_add(hdrs, carried[i], -1, v, -1);
        free(v);
    }
    do {
        e = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_KEY(rkm->key, rkm->key_len),
                              RD_KAFKA_V_VALUE(rkm->payload, rkm->len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(producer, 100);
    } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        /* the headers stay ours when producev fails */
        rd_kafka_headers_destroy(hdrs);
        fprintf(stderr, "orderd dlq redrive: %s: %s\n", from,
                rd_kafka_err2str(e));
        goto out;
    }
    printf("{\"redriven\":\"%s\",\"to\":\"%s\"}\n", from, topic);
    fflush(stdout);
    rd_kafka_poll(producer, 0);
    rc = 0;
out:
    free(topic);
    return rc;
}

/* The selection from the options; 0, or -1 with err. */
static int
dlq_selection(const cli_dlq_opts_t *opt, int redrive, dlq_sel_t *sel, char *err,
              size_t errlen)
{
    memset(sel, 0, sizeof(*sel));
    sel->partition = opt->partition;
    if (opt->offsets != NULL &&
        dlq_parse_offsets(opt->offsets, sel, err, errlen) < 0)
        return -1;
    /* offsets mean one partition: the first unless one is named */
    if (sel->nranges > 0 && sel->partition < 0)
        sel->partition = 0;
    if (opt->error_class != NULL) {
        if (strcmp(opt->error_class, "internal_error") != 0 &&
            strcmp(opt->error_class, "poison") != 0) {
            od_err(err, errlen,
                   "--error-class '%s': expected internal_error or poison",
                   opt->error_class);
            return -1;
        }
        sel->error_class = opt->error_class;
    }
    if (opt->since != NULL && od_parse_time(opt->since, &sel->since_us) < 0) {
        od_err(err, errlen, "--since '%s': expected an RFC 3339 time",
               opt->since);
        return -1;
    }
    if (redrive && opt->all &&
        (opt->offsets || opt->error_class || opt->since)) {
        od_err(err, errlen, "--all selects everything: give it alone");
        return -1;
    }
    if (redrive && !opt->all && !opt->offsets && !opt->error_class &&
        !opt->since) {
        od_err(err, errlen,
               "say what to redrive: --all, or --offsets LIST, "
               "--error-class CLASS, --since TIME");
        return -1;
    }
    return 0;
}

int
cli_dlq(const od_config_t *cfg, const cli_dlq_opts_t *opt, int redrive)
{
    static const char *const rdefaults[] = {
        "group.id", "orderd-dlq-reader",    "enable.auto.commit",
        "false",    "enable.partition.eof", "true",
        NULL};
    static const char *const pdefaults[] = {
        "enable.idempotence", "true", "acks", "all", "linger.ms", "5", NULL};
    const char *what = redrive ? "orderd dlq redrive" : "orderd dlq";
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL, *producer = NULL;
    rd_kafka_topic_partition_list_t *l;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt;
    char err[512], errstr[512];
    dlq_sel_t sel;
    int nparts, open_parts = 0, failed = 0, rc = 1;
    unsigned char at_end[DLQ_MAX_PARTITIONS] = {0};
    long done = 0, skipped = 0;
    int timeout_s = opt->timeout_s > 0 ? opt->timeout_s : DLQ_DEFAULT_TIMEOUT_S;
    int64_t deadline = od_mono_us() + (int64_t)timeout_s * 1000000;

    if (dlq_selection(opt, redrive, &sel, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", what, err);
        return 2;
    }
    conf = kafka_conf_new(cfg, "orderd-dlq", rdefaults, err, sizeof(err));
    if (conf == NULL) {
        fprintf(stderr, "%s: %s\n", what, err);
        return 2;
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "%s: %s\n", what, errstr);
        rd_kafka_conf_destroy(conf);
        return 2;
    }
    if (redrive) {
        conf =
            kafka_conf_new(cfg, "orderd-redrive", pdefaults, err, sizeof(err));
        if (conf == NULL) {
            fprintf(stderr, "%s: %s\n", what, err);
            rc = 2;
            goto out;
        }
        rd_kafka_conf_set_dr_msg_cb(conf, redrive_dr_cb);
        rd_kafka_conf_set_opaque(conf, &failed);
        producer =
            rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (producer == NULL) {
            fprintf(stderr, "%s: %s\n", what, errstr);
            rd_kafka_conf_destroy(conf);
            rc = 2;
            goto out;
        }
    }

    rkt = rd_kafka_topic_new(rk, cfg->dlq_topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != 0 || md->topic_cnt != 1 ||
        md->topics[0].partition_cnt == 0) {
        fprintf(stderr, "%s: no topic %s\n", what, cfg->dlq_topic);
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        goto out;
    }
    nparts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    if (nparts > DLQ_MAX_PARTITIONS || sel.partition >= nparts) {
        fprintf(stderr, "%s: topic %s has %d partitions\n", what,
                cfg->dlq_topic, nparts);
        rc = 2;
        goto out;
    }
    l = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++) {
        if (sel.partition >= 0 && p != sel.partition)
            continue;
        rd_kafka_topic_partition_list_add(l, cfg->dlq_topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        open_parts++;
    }
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);

    while (open_parts > 0 && (opt->count == 0 || done < opt->count) &&
           od_mono_us() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);

        if (rkm == NULL)
            continue;
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (rkm->partition >= 0 && rkm->partition < nparts &&
                !at_end[rkm->partition]) {
                at_end[rkm->partition] = 1;
                open_parts--;
            }
        } else if (rkm->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "%s: %s\n", what, rd_kafka_message_errstr(rkm));
        } else if (dlq_selected(&sel, rkm)) {
            if (!redrive) {
                json_t *o = dlq_json(rkm);
                char *text = json_dumps(o, JSON_COMPACT);

                printf("%s\n", text ? text : "null");
                fflush(stdout);
                free(text);
                json_decref(o);
                done++;
            } else if (dlq_redrive_one(cfg, producer, rkm) == 0) {
                done++;
            } else {
                skipped++;
            }
        }
        rd_kafka_message_destroy(rkm);
    }
    rc = 0;
    if (open_parts > 0 && (opt->count == 0 || done < opt->count)) {
        fprintf(stderr, "%s: did not reach the end of %s within %ds\n", what,
                cfg->dlq_topic, timeout_s);
        rc = 1;
    }
    if (producer != NULL) {
        if (rd_kafka_flush(producer, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "%s: timed out waiting for deliveries\n", what);
            failed++;
        }
        fprintf(stderr, "%s: %ld sent, %d failed, %ld skipped\n", what,
                done - failed, failed, skipped);
        if (failed > 0 || skipped > 0)
            rc = 1;
    }
out:
    if (producer != NULL)
        rd_kafka_destroy(producer);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}
