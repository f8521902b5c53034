/* 0670_dlq_redrive: dead letters end to end. Poison and a command refused
 * internal_error (a test trigger raises on a product named 'boom') land in
 * the dead-letter topic; `orderd dlq` lists them with their headers, key
 * and payload (base64 when not UTF-8); once the trigger is dropped,
 * `orderd dlq redrive` sends the internal_error one back to its source
 * topic with a provenance header and it applies once; a second redrive is
 * a duplicate and changes nothing; redriven poison goes back to the
 * dead-letter topic. Also `orderd send --validate`: one bad line and
 * nothing is sent. */
#include "ktest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BOOM_TRIGGER                                                           \
    "CREATE FUNCTION it_boom() RETURNS trigger LANGUAGE plpgsql AS $$"         \
    " BEGIN IF NEW.name = 'boom' THEN"                                         \
    "  RAISE EXCEPTION 'boom' USING ERRCODE = 'XX000'; END IF;"                \
    " RETURN NEW; END $$;"                                                     \
    " CREATE TRIGGER it_boom BEFORE INSERT OR UPDATE ON products"              \
    " FOR EACH ROW EXECUTE FUNCTION it_boom()"

#define UPSERT                                                                 \
    "{\"dedup_key\":\"%s\",\"type\":\"product_upsert\","                       \
    "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},\"product_id\":%d,"         \
    "\"vendor_id\":\"v\",\"name\":\"%s\",\"sku\":\"SKU-%d\","                  \
    "\"currency\":\"EUR\",\"kind\":\"simple\",\"price_cents\":100,"            \
    "\"stock\":5}"

static ktest_t k;

/* the lines of `orderd dlq` output as parsed JSON objects (an array) */
static json_t *
dlq_list(const char *const *args)
{
    char *out = NULL;
    json_t *arr = json_array();
    int rc = ktest_cli(&k, args, &out);

    ck_assert_msg(rc == 0, "orderd dlq exited %d", rc);
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *o = json_loads(line, 0, NULL);

        ck_assert_msg(json_is_object(o), "not a JSON object: %s", line);
        json_array_append_new(arr, o);
    }
    free(out);
    return arr;
}

static const char *
str(const json_t *o, const char *path1, const char *path2)
{
    const json_t *v = json_object_get(o, path1);

    if (path2 != NULL)
        v = json_object_get(v, path2);
    return json_string_value(v);
}

/* The orderd-redrive-from header of the message at offset on the commands
 * topic (partition 0), into buf ("" without one); NULL if there is no
 * such message within 30 s. */
static const char *
redrive_from_at(int64_t offset, char *buf, size_t len)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_message_t *rkm = NULL;
    rd_kafka_headers_t *hdrs;
    const void *v;
    size_t vlen;
    char errstr[512];
    rd_kafka_t *rk;
    int64_t end = od_mono_us() + 30 * 1000000LL;
    const char *found = NULL;

    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", k.brokers,
                                       errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    ck_assert_int_eq(rd_kafka_conf_set(conf, "group.id", "it-dlq-peek", errstr,
                                       sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    ck_assert_msg(rk != NULL, "%s", errstr);
    l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, k.commands, 0)->offset = offset;
    rd_kafka_assign(rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    while (found == NULL && od_mono_us() < end) {
        rkm = rd_kafka_consumer_poll(rk, 200);
        if (rkm == NULL)
            continue;
        if (rkm->err == 0 && rkm->offset == offset) {
            buf[0] = '\0';
            if (rd_kafka_message_headers(rkm, &hdrs) == 0 &&
                rd_kafka_header_get_last(hdrs, "orderd-redrive-from", &v,
                                         &vlen) == 0)
                snprintf(buf, len, "%.*s", (int)vlen, (const char *)v);
            found = buf;
        }
        rd_kafka_message_destroy(rkm);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return found;
}

START_TEST(test_dlq_list_and_redrive)
{
    const char *list[] = {"dlq", "--timeout", "30", NULL};
    const char *list_one[] = {"dlq", "--count", "1", NULL};
    const char *no_sel[] = {"dlq", "redrive", NULL};
    const char *redrive_ie[] = {"dlq", "redrive", "--error-class",
                                "internal_error", NULL};
    const char *redrive_poison[] = {"dlq", "redrive", "--error-class", "poison",
                                    NULL};
    const char *cont[] = {"--threads", "1", NULL};
    char bad[512], good[512], offsets[32], from[256], got[256], sql[256];
    const char *redrive_off[] = {"dlq", "redrive", "--offsets", offsets, NULL};
    json_t *arr, *ie = NULL, *poison = NULL, *bin = NULL, *ev;
    size_t i;
    json_t *o;
    pid_t w;

    itest_owner_exec(k.name, BOOM_TRIGGER);
    snprintf(good, sizeof(good), UPSERT, "p-1", 1, "fine", 1);
    snprintf(bad, sizeof(bad), UPSERT, "p-2", 2, "boom", 2);
    ktest_send(&k, "k-poison", "this is not JSON");
    ktest_send(&k, "k-bin", "\xff\xfe bytes");
    ktest_send(&k, "1", good);
    ktest_send(&k, "2", bad);
    ktest_flush(&k);
    w = ktest_worker_start(&k, cont);
    ck_assert_int_eq(ktest_wait_results(&k, 2, 60), 2);
    ck_assert_str_eq(itest_reason(ktest_result(&k, "p-2", 0)),
                     "internal_error");
    ck_assert_int_eq(ktest_wait_dlq(&k, 3, 60), 3);

    /* listed with their headers, key and payload */
    arr = dlq_list(list);
    ck_assert_int_eq(json_array_size(arr), 3);
    json_array_foreach(arr, i, o)
    {
        const char *key = str(o, "key", NULL);

        ck_assert_str_eq(str(o, "dlq", "topic"), k.dlq);
        ck_assert_str_eq(str(o, "source", "topic"), k.commands);
        ck_assert_str_eq(str(o, "headers", "orderd-source-topic"), k.commands);
        ck_assert_ptr_nonnull(str(o, "headers", "orderd-error"));
        if (strcmp(key, "k-poison") == 0)
            poison = o;
        else if (strcmp(key, "k-bin") == 0)
            bin = o;
        else if (strcmp(key, "2") == 0)
            ie = o;
    }
    ck_assert_ptr_nonnull(poison);
    ck_assert_ptr_nonnull(bin);
    ck_assert_ptr_nonnull(ie);
    ck_assert_str_eq(str(poison, "class", NULL), "poison");
    ck_assert_str_eq(str(poison, "payload", NULL), "this is not JSON");
    ck_assert_str_eq(str(poison, "payload_encoding", NULL), "utf8");
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(poison, "source"), "offset")),
                     0);
    ck_assert_str_eq(str(bin, "payload_encoding", NULL), "base64");
    ck_assert_str_eq(str(bin, "payload", NULL), "//4gYnl0ZXM=");
    ck_assert_str_eq(str(ie, "class", NULL), "internal_error");
    ck_assert_str_eq(str(ie, "error", NULL), "internal_error");
    ck_assert_str_eq(str(ie, "payload", NULL), bad);
    ck_assert_int_eq(json_integer_value(json_object_get(
                         json_object_get(ie, "source"), "offset")),
                     3);
    snprintf(offsets, sizeof(offsets), "%lld",
             (long long)json_integer_value(
                 json_object_get(json_object_get(ie, "dlq"), "offset")));
    snprintf(from, sizeof(from), "%s/0@%s", k.dlq, offsets);
    json_decref(arr);

    arr = dlq_list(list_one);
    ck_assert_int_eq(json_array_size(arr), 1);
    json_decref(arr);

    /* a redrive says what it redrives */
    ck_assert_int_eq(ktest_cli(&k, no_sel, NULL), 2);

    /* the cause fixed, the internal_error one applies, once */
    itest_owner_exec(k.name, "DROP TRIGGER it_boom ON products");
    ck_assert_int_eq(ktest_cli(&k, redrive_ie, NULL), 0);
    ck_assert_int_eq(ktest_wait_results(&k, 3, 60), 3);
    ev = ktest_result(&k, "p-2", 1);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_int_eq(itest_int(k.db, "SELECT stock FROM products WHERE id = 2"),
                     5);
    /* to its source topic, key and bytes unchanged, with provenance */
    ck_assert_ptr_nonnull(redrive_from_at(4, got, sizeof(got)));
    ck_assert_str_eq(got, from);

    /* redriven again (by offset): a duplicate, nothing changes twice */
    ck_assert_int_eq(ktest_cli(&k, redrive_off, NULL), 0);
    ck_assert_int_eq(ktest_wait_results(&k, 4, 60), 4);
    ev = ktest_result(&k, "p-2", 2);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(itest_outcome(ev), "duplicate");
    ck_assert_str_eq(str(ev, "details", "original_outcome"), "applied");
    ck_assert_int_eq(itest_int(k.db, "SELECT stock FROM products WHERE id = 2"),
                     5);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM stock_ledger"
                                     " WHERE product_id = 2"),
                     1);
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM processed_commands WHERE"
             " dedup_key = 'p-2' AND outcome = 'applied'");
    ck_assert_int_eq(itest_int(k.db, sql), 1);

    /* poison stays poison: back to the dead-letter topic */
    ck_assert_int_eq(ktest_cli(&k, redrive_poison, NULL), 0);
    ck_assert_int_eq(ktest_wait_dlq(&k, 5, 60), 5);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM products"), 2);
    itest_assert_stock_matches_ledger(k.db);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
}
END_TEST

/* runs `orderd send --validate` on input; its exit status, and its
 * stderr in err */
static int
send_validate(const char *input, char *err, size_t errlen)
{
    char in_path[] = "/tmp/it-dlq-send-XXXXXX", cmd[1024];
    int fd = mkstemp(in_path), status;
    FILE *p;
    size_t n;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, input, strlen(input)), (ssize_t)strlen(input));
    close(fd);
    snprintf(cmd, sizeof(cmd),
             "ORDERD_BROKERS='%s' ORDERD_COMMANDS_TOPIC='%s' '%s' send "
             "--validate < %s 2>&1 >/dev/null",
             k.brokers, k.commands, getenv("ORDERD_BIN"), in_path);
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    n = fread(err, 1, errlen - 1, p);
    err[n] = '\0';
    status = pclose(p);
    unlink(in_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(test_send_validate)
{
    char input[2048], good[512], err[2048];
    const char *cont[] = {"--threads", "1", NULL};
    pid_t w;

    /* line 2 is not JSON, line 3 names no order_id: nothing is sent */
    snprintf(good, sizeof(good), UPSERT, "v-1", 1, "fine", 1);
    snprintf(input, sizeof(input),
             "%s\nnot json\n{\"dedup_key\":\"v-x\",\"type\":\"pay\","
             "\"actor\":{\"role\":\"payment\",\"id\":\"p\"}}\n",
             good);
    ck_assert_int_eq(send_validate(input, err, sizeof(err)), 2);
    ck_assert_msg(strstr(err, "line 2: would go to the dead-letter topic") &&
                      strstr(err, "line 3: invalid_command: field "
                                  "'order_id' is required") &&
                      strstr(err, "nothing sent"),
                  "%s", err);
    /* a role the type does not admit is refused like the worker would */
    snprintf(input, sizeof(input),
             "{\"dedup_key\":\"v-r\",\"type\":\"tax_rate_set\","
             "\"actor\":{\"role\":\"customer\",\"id\":\"c\"},"
             "\"country\":\"DE\",\"rate_bps\":1900}\n");
    ck_assert_int_eq(send_validate(input, err, sizeof(err)), 2);
    ck_assert_msg(strstr(err, "line 1: unauthorized") != NULL, "%s", err);

    /* valid input is sent; v-1 of the refused file never was */
    snprintf(good, sizeof(good), UPSERT, "v-2", 2, "fine", 2);
    snprintf(input, sizeof(input), "\n%s\n", good);
    ck_assert_int_eq(send_validate(input, err, sizeof(err)), 0);
    w = ktest_worker_start(&k, cont);
    ck_assert_int_eq(ktest_wait_results(&k, 1, 60), 1);
    ck_assert_str_eq(itest_outcome(ktest_result(&k, "v-2", 0)), "applied");
    ck_assert_int_eq(ktest_count_results(&k, "v-1"), 0);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM products"), 1);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
}
END_TEST

static void
setup(void)
{
    ktest_setup(&k, "dlq_redrive", 1);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

static Suite *
dlq_suite(void)
{
    Suite *s = suite_create("dlq_redrive");
    TCase *tc = tcase_create("dlq");

    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_dlq_list_and_redrive);
    tcase_add_test(tc, test_send_validate);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(dlq_suite());
}
