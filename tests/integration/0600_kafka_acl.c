/* 0600_kafka_acl: producers are bound to topics by Kafka itself, on the
 * broker's SASL/SCRAM listener with ACLs: the checkout service's principal
 * (web) writes its own topic and is refused the payment bridge's; a wrong
 * password is refused at authentication; orderd, authenticated as its own
 * principal through `-F FILE`, consumes the web topic and applies a command,
 * and its log shows the credentials it used with the password masked.
 *
 * The users and their property files come from scripts/kafka; the ACLs for
 * this test's private topics are granted here, the same ones
 * docs/operations.md lists for the production topic names. */
#include "ktest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../worker/config.h"

static ktest_t k;
static char payments[200];

static const char *product =
    "{\"dedup_key\":\"p7\",\"type\":\"product_upsert\","
    "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},\"product_id\":7,"
    "\"vendor_id\":\"v1\",\"name\":\"Mug\",\"sku\":\"MUG-1\","
    "\"currency\":\"EUR\",\"kind\":\"simple\",\"price_cents\":1192,"
    "\"stock\":10}";

static const char *checkout =
    "{\"dedup_key\":\"co-acl-1\",\"type\":\"checkout\","
    "\"actor\":{\"role\":\"customer\",\"id\":\"c1\"},"
    "\"order_id\":\"0b4a4c32-6d0e-4c8e-9f55-2a1c6e7b9d01\","
    "\"customer_id\":\"c1\",\"currency\":\"EUR\","
    "\"items\":[{\"product_id\":7,\"quantity\":2}]}";

static const char *payment =
    "{\"dedup_key\":\"pay:gw-1\",\"type\":\"pay\","
    "\"actor\":{\"role\":\"payment\",\"id\":\"bridge\"},"
    "\"order_id\":\"0b4a4c32-6d0e-4c8e-9f55-2a1c6e7b9d01\","
    "\"payment_id\":\"pi_1\",\"amount_cents\":2384,\"currency\":\"EUR\"}";

static int
sasl_skipped(void)
{
    if (ktest_sasl_available())
        return 0;
    fprintf(stderr, "0600_kafka_acl: SKIPPED: ORDERD_TEST_KAFKA_SASL_BROKERS "
                    "and ORDERD_TEST_KAFKA_CLIENTS_DIR are not set (run "
                    "through scripts/test, which always sets them)\n");
    return 1;
}

static void
allow(const char *principal, rd_kafka_ResourceType_t type, const char *name,
      rd_kafka_AclOperation_t op)
{
    ktest_acl_allow(&k, principal, type, name, op);
}

static void
setup(void)
{
    const char *topics[] = {"topics", "--commands-topic", payments, NULL};
    char *out = NULL;

    if (!ktest_sasl_available())
        return;
    ktest_setup(&k, "kafka_acl", 2);
    /* the test's commands topic plays orders.commands.web */
    snprintf(payments, sizeof(payments), "%s.payments", k.commands);
    ck_assert_msg(ktest_cli(&k, topics, &out) == 0, "orderd topics: %s", out);
    free(out);

    /* each source principal: Write (and Describe) on its own topic only */
    allow("web", RD_KAFKA_RESOURCE_TOPIC, k.commands,
          RD_KAFKA_ACL_OPERATION_WRITE);
    allow("web", RD_KAFKA_RESOURCE_TOPIC, k.commands,
          RD_KAFKA_ACL_OPERATION_DESCRIBE);
    allow("payments", RD_KAFKA_RESOURCE_TOPIC, payments,
          RD_KAFKA_ACL_OPERATION_WRITE);
    allow("payments", RD_KAFKA_RESOURCE_TOPIC, payments,
          RD_KAFKA_ACL_OPERATION_DESCRIBE);
    /* orderd: read the source topic in its group, write events and DLQ */
    allow("orderd", RD_KAFKA_RESOURCE_TOPIC, k.commands,
          RD_KAFKA_ACL_OPERATION_READ);
    allow("orderd", RD_KAFKA_RESOURCE_TOPIC, k.commands,
          RD_KAFKA_ACL_OPERATION_DESCRIBE);
    allow("orderd", RD_KAFKA_RESOURCE_TOPIC, payments,
          RD_KAFKA_ACL_OPERATION_READ);
    allow("orderd", RD_KAFKA_RESOURCE_TOPIC, payments,
          RD_KAFKA_ACL_OPERATION_DESCRIBE);
    allow("orderd", RD_KAFKA_RESOURCE_GROUP, k.group,
          RD_KAFKA_ACL_OPERATION_READ);
    allow("orderd", RD_KAFKA_RESOURCE_TOPIC, k.events,
          RD_KAFKA_ACL_OPERATION_WRITE);
    allow("orderd", RD_KAFKA_RESOURCE_TOPIC, k.events,
          RD_KAFKA_ACL_OPERATION_DESCRIBE);
    allow("orderd", RD_KAFKA_RESOURCE_TOPIC, k.dlq,
          RD_KAFKA_ACL_OPERATION_WRITE);
    allow("orderd", RD_KAFKA_RESOURCE_TOPIC, k.dlq,
          RD_KAFKA_ACL_OPERATION_DESCRIBE);
    allow("orderd", RD_KAFKA_RESOURCE_BROKER, "kafka-cluster",
          RD_KAFKA_ACL_OPERATION_IDEMPOTENT_WRITE);
}

static void
teardown(void)
{
    if (ktest_sasl_available())
        ktest_teardown(&k);
}

START_TEST(test_source_writes_only_its_topic)
{
    rd_kafka_t *web, *pay;

    if (sasl_skipped())
        return;
    web = ktest_sasl_producer("web", NULL);
    pay = ktest_sasl_producer("payments", NULL);

    ck_assert_int_eq(ktest_produce_wait(web, k.commands, "7", checkout, 60),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    /* the checkout service cannot pose as the payment bridge */
    ck_assert_int_eq(ktest_produce_wait(web, payments, NULL, payment, 60),
                     RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    /* and the binding works both ways: it is the principal, not the topic */
    ck_assert_int_eq(ktest_produce_wait(pay, payments, NULL, payment, 60),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(ktest_produce_wait(pay, k.commands, "7", checkout, 60),
                     RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    ktest_sasl_destroy(web);
    ktest_sasl_destroy(pay);
}
END_TEST

START_TEST(test_wrong_password_is_refused)
{
    const char *wrong[] = {"sasl.password", "not-the-password",
                           "message.timeout.ms", "10000", NULL};
    rd_kafka_t *bad;

    if (sasl_skipped())
        return;
    bad = ktest_sasl_producer("web", wrong);
    ck_assert_msg(ktest_sasl_auth_failed(bad, 60),
                  "no authentication error within 60 s");
    /* nothing gets through: the message times out undelivered */
    ck_assert_int_ne(ktest_produce_wait(bad, k.commands, "7", checkout, 60),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    ktest_sasl_destroy(bad);
}
END_TEST

/* The password in principal's property file, into pw. */
static void
read_password(const char *principal, char *pw, size_t len)
{
    od_config_t cfg;
    char path[1024], err[512];

    memset(&cfg, 0, sizeof(cfg));
    ktest_sasl_props(principal, path, sizeof(path));
    ck_assert_msg(config_load_kafka_file(&cfg, path, err, sizeof(err)) == 0,
                  "%s", err);
    pw[0] = '\0';
    for (int i = 0; i < cfg.nkafka; i++)
        if (strcmp(cfg.kafka_keys[i], "sasl.password") == 0)
            snprintf(pw, len, "%s", cfg.kafka_values[i]);
    config_free(&cfg);
    ck_assert_msg(strlen(pw) >= 16, "no sasl.password in %s", path);
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;

    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

START_TEST(test_orderd_consumes_as_its_principal)
{
    char props[1024], log_path[128], pw[256], web_src[256], pay_src[256];
    const char *extra[] = {"--brokers",   NULL,    "-F",       props,
                           "--source",    web_src, "--source", pay_src,
                           "--log-level", "info",  NULL};
    char pay_cmd[512];
    rd_kafka_t *web, *pay;
    json_t *ev;
    char *log;
    pid_t worker;

    if (sasl_skipped())
        return;
    extra[1] = ktest_sasl_brokers();
    ktest_sasl_props("orderd", props, sizeof(props));
    read_password("orderd", pw, sizeof(pw));
    snprintf(log_path, sizeof(log_path), "/tmp/orderd-0600-%d.log",
             (int)getpid());
    json_decref(itest_apply(k.db, product));

    /* the harness's commands topic plays orders.commands.web */
    snprintf(web_src, sizeof(web_src), "web=%s:customer", k.commands);
    snprintf(pay_src, sizeof(pay_src), "payments=%s:payment", payments);
    worker = ktest_worker_start_logged(&k, extra, log_path);
    web = ktest_sasl_producer("web", NULL);
    ck_assert_int_eq(ktest_produce_wait(web, k.commands, "7", checkout, 60),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(ktest_wait_results(&k, 1, 90), 1);
    /* the checkout service may write its topic, but not claim to pay */
    snprintf(pay_cmd, sizeof(pay_cmd),
             "{\"dedup_key\":\"pay-acl-1\",\"type\":\"pay\",\"actor\":"
             "{\"role\":\"payment\",\"id\":\"psp\"},\"order_id\":"
             "\"%s\",\"payment_id\":\"pi_acl\",\"amount_cents\":2384,"
             "\"currency\":\"EUR\"}",
             json_string_value(
                 json_object_get(ktest_result(&k, "co-acl-1", 0), "order_id")));
    ck_assert_int_eq(ktest_produce_wait(web, k.commands, "7", pay_cmd, 60),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    ktest_sasl_destroy(web);
    ck_assert_int_eq(ktest_wait_results(&k, 2, 90), 2);
    ck_assert_str_eq(itest_reason(ktest_result(&k, "pay-acl-1", 0)),
                     "unauthorized");
    /* the payment bridge, authenticated as itself on its own topic: the
     * same key is its own command there */
    pay = ktest_sasl_producer("payments", NULL);
    ck_assert_int_eq(ktest_produce_wait(pay, payments, "7", pay_cmd, 60),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    ktest_sasl_destroy(pay);
    ck_assert_int_eq(ktest_wait_results(&k, 3, 90), 3);
    ev = ktest_result(&k, "pay-acl-1", 1);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "source"), "name")),
                     "payments");

    ev = ktest_result(&k, "co-acl-1", 0);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(itest_outcome(ev), "applied");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "source"), "name")),
                     "web");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "source"), "topic")),
                     k.commands);
    ck_assert_int_eq(itest_int(k.db, "SELECT stock FROM products WHERE id=7"),
                     8);
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);

    /* the log names the credentials in use, never the password */
    log = slurp(log_path);
    ck_assert_msg(strstr(log, "sasl.username=orderd") != NULL,
                  "no kafka properties line in the log:\n%s", log);
    ck_assert_ptr_nonnull(strstr(log, "sasl.password=***"));
    ck_assert_msg(strstr(log, pw) == NULL, "the password is in the log");
    free(log);
    unlink(log_path);
}
END_TEST

static Suite *
kafka_acl_suite(void)
{
    Suite *s = suite_create("kafka_acl");
    TCase *tc = tcase_create("acl");

    tcase_set_timeout(tc, 240);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_source_writes_only_its_topic);
    tcase_add_test(tc, test_wrong_password_is_refused);
    tcase_add_test(tc, test_orderd_consumes_as_its_principal);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(kafka_acl_suite());
}
