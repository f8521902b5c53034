/* 0560_retention: dedup rows older than --dedup-retention and published
 * outbox rows older than --outbox-retention are purged by the scheduler,
 * so neither table grows without bound; young rows are kept */
#include "ktest.h"

#include <signal.h>
#include <stdio.h>

static ktest_t k;

static void
setup(void)
{
    ktest_setup(&k, "retention", 2);
}

static void
teardown(void)
{
    ktest_teardown(&k);
}

START_TEST(test_old_rows_are_purged_young_ones_kept)
{
    const char *args[] = {"--dedup-retention",
                          "2s",
                          "--outbox-retention",
                          "2s",
                          "--expiry-interval",
                          "200ms",
                          NULL};
    char msg[256];
    pid_t w;

    for (int i = 0; i < 30; i++) {
        snprintf(msg, sizeof(msg),
                 "{\"dedup_key\":\"tax-%d\",\"type\":\"tax_rate_set\","
                 "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},"
                 "\"country\":\"D%c\",\"rate_bps\":%d}",
                 i, 'A' + i % 26, 100 + i);
        ktest_send_cmd(&k, msg);
    }
    ktest_flush(&k);
    w = ktest_worker_start(&k, args);
    ck_assert_int_eq(ktest_wait_results(&k, 30, 60), 30);
    /* everything was recorded, then ages out */
    ck_assert_int_eq(
        ktest_wait_sql(&k, "SELECT count(*) FROM processed_commands", 0, 30),
        0);
    ck_assert_int_eq(ktest_wait_sql(&k,
                                    "SELECT count(*) FROM outbox WHERE"
                                    " published_at IS NOT NULL",
                                    0, 30),
                     0);
    /* a young command is recorded and published as usual */
    ktest_send_cmd(&k, "{\"dedup_key\":\"late\",\"type\":"
                       "\"tax_rate_set\",\"actor\":{\"role\":\"admin\","
                       "\"id\":\"ops\"},\"country\":\"FR\","
                       "\"rate_bps\":2000}");
    ktest_flush(&k);
    ck_assert_int_eq(ktest_wait_results(&k, 31, 60), 31);
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM processed_commands"
                                     " WHERE dedup_key = 'late'"),
                     1);
    /* the effects stay: only bookkeeping is purged */
    ck_assert_int_eq(itest_int(k.db, "SELECT count(*) FROM tax_rates"), 27);
    ck_assert_int_eq(ktest_worker_stop(w, SIGTERM), 0);
}
END_TEST

static Suite *
retention_suite(void)
{
    Suite *s = suite_create("retention");
    TCase *tc = tcase_create("purge");

    tcase_set_timeout(tc, 180);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_old_rows_are_purged_young_ones_kept);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(retention_suite());
}
