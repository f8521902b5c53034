/* 0001_smoke_harness: the per-command path end to end on a real database:
 * poison goes to the DLQ, invalid commands are rejected with a result,
 * a redelivered command is a duplicate, a reused key with another body is
 * refused */
#include "itest.h"

#include <string.h>

static db_t *db;

static void
setup(void)
{
    db = itest_fresh_db("smoke_harness", NULL, 0);
}

static void
teardown(void)
{
    db_destroy(db);
}

START_TEST(test_poison_goes_to_dlq_with_headers)
{
    json_t *ev = itest_apply(db, "{this is not json");
    char buf[256];

    ck_assert_ptr_null(ev);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM outbox WHERE topic ="
                                   " 'orders.commands.dlq'"),
                     1);
    itest_text(db, "SELECT headers->>'orderd-source-topic' FROM outbox", buf,
               sizeof(buf));
    ck_assert_str_eq(buf, "orders.commands");
    itest_text(db, "SELECT convert_from(payload, 'UTF8') FROM outbox", buf,
               sizeof(buf));
    ck_assert_str_eq(buf, "{this is not json");
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM processed_commands"),
                     0);
}
END_TEST

START_TEST(test_invalid_command_is_rejected_and_deduplicated)
{
    const char *cmd = "{\"dedup_key\":\"bad-1\",\"type\":\"teleport\","
                      "\"actor\":{\"role\":\"admin\",\"id\":\"a\"}}";
    json_t *ev = itest_apply(db, cmd);

    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "invalid_command");
    ck_assert_str_eq(json_string_value(json_object_get(ev, "type")),
                     "command.result");
    /* the producer can tell which of its commands this was */
    ck_assert_str_eq(json_string_value(json_object_get(ev, "command_type")),
                     "teleport");
    json_decref(ev);
    ev = itest_apply(db, cmd);
    ck_assert_str_eq(itest_outcome(ev), "duplicate");
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(ev, "details"), "original_outcome")),
                     "rejected");
    json_decref(ev);
    ev = itest_apply(db, "{\"dedup_key\":\"bad-1\",\"type\":\"teleport2\","
                         "\"actor\":{\"role\":\"admin\",\"id\":\"a\"}}");
    ck_assert_str_eq(itest_outcome(ev), "rejected");
    ck_assert_str_eq(itest_reason(ev), "dedup_key_reused");
    json_decref(ev);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM processed_commands"),
                     1);
    ck_assert_int_eq(itest_int(db, "SELECT count(*) FROM outbox"), 3);
}
END_TEST

static Suite *
smoke_suite(void)
{
    Suite *s = suite_create("smoke_harness");
    TCase *tc = tcase_create("apply");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_poison_goes_to_dlq_with_headers);
    tcase_add_test(tc, test_invalid_command_is_rejected_and_deduplicated);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(smoke_suite());
}
