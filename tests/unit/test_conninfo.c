/* test_conninfo.c - connection strings shown without their secrets:
 * db_conninfo_masked over the forms that leaked when masking matched
 * text, and db_conninfo_scrub over libpq's own messages */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "../../worker/db.h"

static char out[1024];

static const char *
masked(const char *conninfo)
{
    ck_assert_msg(db_conninfo_masked(conninfo, out, sizeof(out)) == 0,
                  "does not parse: %s", conninfo ? conninfo : "(null)");
    return out;
}

/*
 * The display must mean what the original means: parsed again (libpq
 * itself is the oracle), every option has the original's value, except
 * the secret ones, which are "***".
 */
static void
assert_same_options(const char *conninfo, const char *shown)
{
    PQconninfoOption *a = PQconninfoParse(conninfo, NULL);
    PQconninfoOption *b = PQconninfoParse(shown, NULL);

    ck_assert_msg(a != NULL && b != NULL, "not parsed: %s / %s", conninfo,
                  shown);
    for (int i = 0; a[i].keyword != NULL; i++) {
        ck_assert_str_eq(a[i].keyword, b[i].keyword);
        if (a[i].val == NULL) {
            ck_assert_msg(b[i].val == NULL, "%s appeared", a[i].keyword);
        } else if (strcmp(a[i].keyword, "password") == 0 ||
                   strcmp(a[i].keyword, "sslpassword") == 0) {
            ck_assert_str_eq(b[i].val, "***");
        } else {
            ck_assert_msg(b[i].val != NULL, "%s lost", a[i].keyword);
            ck_assert_str_eq(b[i].val, a[i].val);
        }
    }
    PQconninfoFree(a);
    PQconninfoFree(b);
}

/* conninfo holds secret (as typed, or its decoded form too when given) */
static void
assert_hidden(const char *conninfo, const char *secret, const char *decoded)
{
    const char *s = masked(conninfo);

    ck_assert_msg(strstr(s, "password=***") != NULL, "no mask in: %s", s);
    ck_assert_msg(strstr(s, secret) == NULL, "'%s' shown: %s", secret, s);
    if (decoded != NULL)
        ck_assert_msg(strstr(s, decoded) == NULL, "'%s' shown: %s", decoded, s);
    assert_same_options(conninfo, s);
}

START_TEST(test_uri_with_one_letter_user)
{
    assert_hidden("postgres://u:pw@host/db", "pw", NULL);
    ck_assert_str_eq(masked("postgres://u:pw@host/db"),
                     "user=u password=*** dbname=db host=host");
    assert_hidden("postgresql://u:SeCrEt@h:5433/orders", "SeCrEt", NULL);
}
END_TEST

START_TEST(test_keyword_with_spaces_around_equals)
{
    assert_hidden("host=db password = pw", "pw", NULL);
    assert_hidden("host=db password =pw user=me", "pw", NULL);
    assert_hidden("host=db\tpassword=\tpw", "pw", NULL);
}
END_TEST

START_TEST(test_other_value_naming_password)
{
    /* the old masking found the first "password" in the value */
    assert_hidden("application_name=password-x host=db password=pw", "pw",
                  NULL);
    ck_assert_ptr_nonnull(strstr(masked("application_name=password-x host=db "
                                        "password=pw"),
                                 "application_name=password-x"));
    assert_hidden("dbname=password host=db password=hunter2", "hunter2", NULL);
}
END_TEST

START_TEST(test_quoted_values_with_escaped_quotes)
{
    assert_hidden("host=db password='it\\'s a \\\\ secret' user=x", "secret",
                  "it's");
    assert_hidden("password='a b' host=db", "a b", NULL);
    /* a non-secret value with quotes and blanks is written back quoted */
    assert_same_options("host=db application_name='o\\'rder d' password=x",
                        masked("host=db application_name='o\\'rder d' "
                               "password=x"));
}
END_TEST

START_TEST(test_empty_password)
{
    /* libpq skips blanks after '=': the password here is "dbname=x" */
    assert_hidden("host=db password= dbname=x", "dbname=x", NULL);
    assert_hidden("host=db password='' dbname=x", "''", NULL);
    ck_assert_ptr_nonnull(
        strstr(masked("host=db password='' dbname=x"), "dbname=x"));
}
END_TEST

START_TEST(test_passfile_is_not_a_secret)
{
    ck_assert_str_eq(masked("host=db passfile=/etc/orderd/pgpass"),
                     "passfile=/etc/orderd/pgpass host=db");
}
END_TEST

START_TEST(test_password_in_uri_query)
{
    assert_hidden("postgresql://host/db?password=x1y2&sslmode=disable", "x1y2",
                  NULL);
    assert_hidden("postgresql://u@host/db?application_name=a&password=qq", "qq",
                  NULL);
}
END_TEST

START_TEST(test_percent_encoded_password)
{
    /* neither the encoded nor the decoded form may show */
    assert_hidden("postgresql://u:p%40ss%20w@host:5433/db", "p%40ss", "p@ss");
    assert_hidden("postgresql://u:p%40w@host/db", "%40w", "p@w");
    assert_hidden("postgresql://u@host/db?password=%41%42%43", "%41", "ABC");
}
END_TEST

START_TEST(test_sslpassword_and_other_secrets)
{
    const char *s = masked("host=db sslkey=/k sslpassword=keypass password=p");

    ck_assert_ptr_null(strstr(s, "keypass"));
    ck_assert_ptr_nonnull(strstr(s, "sslpassword=***"));
    ck_assert_ptr_nonnull(strstr(s, "sslkey=/k"));
    assert_same_options("host=db sslkey=/k sslpassword=keypass password=p", s);
}
END_TEST

START_TEST(test_malformed_is_never_echoed)
{
    static const char *const bad[] = {
        "postgresql://u:p%zzw@host/db", /* bad percent escape */
        "postgresql://u:pw%4@host/db",  /* cut short */
        "host=db password",             /* no '=' for the last key */
        "host='db password=pw",         /* unterminated quote */
        "host=db bogus_option=pw",      /* unknown option */
        "postgresql://h/db?password",   /* query key without value */
        "postgresql://h/db?nosuch=pw",  /* unknown query parameter */
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(db_conninfo_masked(bad[i], out, sizeof(out)), -1);
        ck_assert_ptr_null(strstr(out, "pw"));
        ck_assert_ptr_null(strstr(out, "db"));
        ck_assert_ptr_nonnull(strstr(out, "malformed"));
    }
}
END_TEST

START_TEST(test_database_name_and_empty)
{
    /* no '=' and no URI prefix: libpq reads a database name */
    ck_assert_str_eq(masked("orders"), "dbname=orders");
    ck_assert_str_eq(masked("my orders"), "dbname='my orders'");
    ck_assert_str_eq(masked(""), "");
    ck_assert_str_eq(masked(NULL), "");
}
END_TEST

START_TEST(test_small_buffer_is_cut_not_overrun)
{
    char small[12];

    ck_assert_int_eq(
        db_conninfo_masked("postgres://u:pw@host/db", small, sizeof(small)), 0);
    ck_assert_str_eq(small, "user=u pass");
}
END_TEST

START_TEST(test_scrub_removes_secrets_from_libpq_text)
{
    char s[256];

    db_conninfo_scrub("host=db password=s3cr3t",
                      "connection to \"s3cr3t\" failed: s3cr3t\nDETAIL s3cr3t",
                      s, sizeof(s));
    ck_assert_str_eq(s, "connection to \"***\" failed: ***");
    db_conninfo_scrub("postgresql://u:p%40w@h/db", "user u p@w", s, sizeof(s));
    ck_assert_str_eq(s, "user u ***");
    /* a one-letter password: the text suffers, the secret does not leak */
    db_conninfo_scrub("password=a host=h", "a fault at h", s, sizeof(s));
    ck_assert_ptr_null(strchr(s, 'a'));
    /* no password: the text is kept (its first line) */
    db_conninfo_scrub("host=h", "could not translate host name \"h\"\nmore", s,
                      sizeof(s));
    ck_assert_str_eq(s, "could not translate host name \"h\"");
}
END_TEST

START_TEST(test_scrub_removes_pgpassword)
{
    char s[256];

    setenv("PGPASSWORD", "fromenv", 1);
    db_conninfo_scrub("host=h", "said fromenv", s, sizeof(s));
    unsetenv("PGPASSWORD");
    ck_assert_str_eq(s, "said ***");
}
END_TEST

START_TEST(test_scrub_of_malformed_string_shows_nothing)
{
    char s[256];

    db_conninfo_scrub("postgresql://u:p%zzw@host/db",
                      "invalid percent-encoded token: \"p%zzw\"", s, sizeof(s));
    ck_assert_ptr_null(strstr(s, "zzw"));
}
END_TEST

static Suite *
conninfo_suite(void)
{
    Suite *s = suite_create("conninfo");
    TCase *m = tcase_create("masked");
    TCase *sc = tcase_create("scrub");

    tcase_add_test(m, test_uri_with_one_letter_user);
    tcase_add_test(m, test_keyword_with_spaces_around_equals);
    tcase_add_test(m, test_other_value_naming_password);
    tcase_add_test(m, test_quoted_values_with_escaped_quotes);
    tcase_add_test(m, test_empty_password);
    tcase_add_test(m, test_passfile_is_not_a_secret);
    tcase_add_test(m, test_password_in_uri_query);
    tcase_add_test(m, test_percent_encoded_password);
    tcase_add_test(m, test_sslpassword_and_other_secrets);
    tcase_add_test(m, test_malformed_is_never_echoed);
    tcase_add_test(m, test_database_name_and_empty);
    tcase_add_test(m, test_small_buffer_is_cut_not_overrun);
    suite_add_tcase(s, m);
    tcase_add_test(sc, test_scrub_removes_secrets_from_libpq_text);
    tcase_add_test(sc, test_scrub_removes_pgpassword);
    tcase_add_test(sc, test_scrub_of_malformed_string_shows_nothing);
    suite_add_tcase(s, sc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(conninfo_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
