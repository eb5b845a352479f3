#include <setjmp.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "datetime.h"

#define US 1000000LL
/* 2026-11-21T07:05:00Z */
#define T0 (1795244700LL * US)

static int visit(const char *s, int def, clinic_time_t *out)
{
    return clinic_parse_visit_date(s, strlen(s), def, out);
}

static void assert_visit(const char *s, int def, clinic_time_t want)
{
    clinic_time_t t = 42;

    if (visit(s, def, &t) != 0)
        fail_msg("rejected: \"%s\"", s);
    if (t != want)
        fail_msg("\"%s\" -> %lld, want %lld", s, (long long)t, (long long)want);
}

static void assert_visit_bad(const char *s, size_t len)
{
    clinic_time_t t = 42;

    if (clinic_parse_visit_date(s, len, 0, &t) != -1)
        fail_msg("accepted: \"%.*s\" (len %zu)", (int)len, s, len);
    assert_int_equal(t, 42);
}

static void assert_db(const char *s, clinic_time_t want)
{
    clinic_time_t t = 42;

    if (clinic_parse_db_timestamp(s, &t) != 0)
        fail_msg("db rejected: \"%s\"", s);
    if (t != want)
        fail_msg("db \"%s\" -> %lld, want %lld", s, (long long)t, (long long)want);
}

static void assert_fmt(clinic_time_t t, int off, const char *want)
{
    char buf[CLINIC_ISO_MAX];

    memset(buf, 'x', sizeof buf);
    assert_int_equal(clinic_format_iso(t, off, buf), strlen(want));
    assert_string_equal(buf, want);
}

static void test_offset_ok(void **state)
{
    int off = 1;

    (void)state;
    assert_int_equal(clinic_parse_offset("+07:00", &off), 0);
    assert_int_equal(off, 25200);
    assert_int_equal(clinic_parse_offset("-05:30", &off), 0);
    assert_int_equal(off, -19800);
    assert_int_equal(clinic_parse_offset("+23:59", &off), 0);
    assert_int_equal(off, 86340);
    assert_int_equal(clinic_parse_offset("-00:00", &off), 0);
    assert_int_equal(off, 0);
}

static void test_offset_bad(void **state)
{
    static const char *const bad[] = {
        "+7:00", "07:00", "+24:00", "+07:60", "", "+", "+07", "+0700", "+07:0",
        "+07:00 ", " +07:00", "+07-00", "*07:00", "+07:00:00", "+0a:00", "Z",
    };
    size_t i;
    int off = 123;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof *bad; i++)
        if (clinic_parse_offset(bad[i], &off) != -1)
            fail_msg("offset accepted: \"%s\"", bad[i]);
    assert_int_equal(off, 123);
}

static void test_visit_moment(void **state)
{
    char buf[CLINIC_ISO_MAX];
    clinic_time_t t;

    (void)state;
    assert_visit("21 November 2026 14:05", 25200, T0);
    assert_int_equal(visit("21 November 2026 14:05", 25200, &t), 0);
    assert_int_equal(clinic_format_iso(t, 25200, buf), 25);
    assert_string_equal(buf, "2026-11-21T14:05:00+07:00");

    assert_visit("1 march 2024 9:05", 0, 1709283900LL * US);
    assert_visit("01 MARCH 2024 09:05", 0, 1709283900LL * US);
    assert_visit("1 mArCh 2024 9:05", -3600, 1709283900LL * US + 3600 * US);
    assert_visit("29 February 2024 00:00", 0, 1709164800LL * US);
    assert_visit("31 December 9999 23:59", 0, 253402300740LL * US);
    assert_visit("1 January 0001 0:00", 0, -62135596800LL * US);
}

static void test_visit_iso(void **state)
{
    static const char *const same[] = {
        "2026-11-21T14:05+07:00", "2026-11-21t14:05+0700", "2026-11-21 14:05+07",
        "2026-11-21T14:05:00+07:00", "2026-11-21T07:05Z", "2026-11-21T07:05:00z",
        "2026-11-21T07:05:00.000000Z", "2026-11-21T02:05-05:00", "2026-11-21T01:35:00-0530",
        "2026-11-22T06:05+23", "2026-11-21T07:05-00:00",
    };
    size_t i;
    clinic_time_t t;
    char buf[CLINIC_ISO_MAX];

    (void)state;
    for (i = 0; i < sizeof same / sizeof *same; i++)
        assert_visit(same[i], 3600, T0);

    assert_int_equal(visit("2026-11-21T14:05:00.25+07:00", 0, &t), 0);
    assert_true(t == T0 + 250000);
    assert_int_equal(clinic_format_iso(t, 0, buf), 27);
    assert_string_equal(buf, "2026-11-21T07:05:00.250000Z");

    /* naive values use default_offset */
    assert_visit("2026-11-21T14:05", 25200, T0);
    assert_visit("2026-11-21 02:05:00", -18000, T0);
    assert_visit("2026-11-21T07:05:00.1", 0, T0 + 100000);
    assert_visit("2026-11-21T07:05:00.000001", 0, T0 + 1);
    assert_visit("2026-11-21T07:05:00.123456", 0, T0 + 123456);
    assert_visit("2024-02-29T00:00", 0, 1709164800LL * US);
    assert_visit("2000-02-29T00:00Z", 0, 951782400LL * US);
    assert_visit("1960-01-01T00:00", 0, -315619200LL * US);
    assert_visit("9999-12-31T23:59:59Z", 0, 253402300799LL * US);
    /* year 0001 with a positive offset lands before 0001-01-01Z: still an instant */
    assert_visit("0001-01-01T00:00+01:00", 0, (-62135596800LL - 3600) * US);
}

static void test_visit_bad(void **state)
{
    static const char *const bad[] = {
        "", " ", "21 Novembre 2026 14:05", "32 November 2026 14:05", "21 November 2026 24:00",
        "21 November 2026 14:5", "31 November 2026 14:05", "0 November 2026 14:05",
        "29 February 2026 14:05", "21 Nov 2026 14:05", "21  November 2026 14:05",
        "21 November 26 14:05", "21 November 02026 14:05", "021 November 2026 14:05",
        "21 November 2026 114:05", "21 November 2026 14:60", "21 November 2026 14:055",
        "21 November 2026 14:05:00", "21 November 2026 14:05 ", " 21 November 2026 14:05",
        "21 November 2026", "21-November-2026 14:05", "21 November 0000 14:05",
        "2026-11-21", "2026-11-21T", "2026-11-21T14", "2026-11-21T1:05", "2026-11-21T14:5",
        "2026-11-21T14:05:00+07:00x", " 2026-11-21T14:05", "2026-11-21T14:05 ",
        "2026-11-21T14:05:00.1234567", "2026-11-21T14:05:00.", "2026-11-21T14:05.5",
        "2026-11-21T14:05:0", "2026-11-21T24:00", "2026-11-21T14:60", "2026-11-21T14:05:60",
        "2026-11-21T14:05+24:00", "2026-11-21T14:05+07:60", "2026-11-21T14:05+7",
        "2026-11-21T14:05+07:", "2026-11-21T14:05+070", "2026-11-21T14:05+07:00:00",
        "2026-11-21T14:05+", "2026-11-21T14:05ZZ", "2026-11-21T14:05Z+07:00",
        "2026-11-21T14:05+-07:00", "2026-11-21X14:05", "2026-11-21  14:05", "2026-11-21T14:05:00,5",
        "2026-02-29T00:00", "2100-02-29T00:00", "1900-02-29T00:00", "2024-02-30T00:00",
        "2026-13-01T00:00", "2026-00-10T00:00", "2026-11-00T00:00", "2026-1-21T00:00",
        "0000-01-01T00:00", "10000-01-01T00:00", "-2026-11-21T00:00", "+2026-11-21T00:00",
        "2026/11/21T00:00", "99999999999999999999-11-21T14:05", "2026-11-21T99999999999999999999",
        "21 November 2026 99999999999999999999:05",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_visit_bad(bad[i], strlen(bad[i]));
}

static void test_visit_len_and_nul(void **state)
{
    static const char nul_iso[] = "2026-11-21T14:05\0";
    static const char nul_mid[] = "2026-11-21T14:0\0005";
    static const char nul_moment[] = "21 November\0 2026 14:05";
    static const char tail[] = "2026-11-21T14:05:00junk";
    clinic_time_t t = 0;
    char *exact;

    (void)state;
    assert_visit_bad(nul_iso, sizeof nul_iso - 1);
    assert_visit_bad(nul_mid, sizeof nul_mid - 1);
    assert_visit_bad(nul_moment, sizeof nul_moment - 1);
    assert_visit_bad("2026-11-21T14:05", 0);
    assert_visit_bad("2026-11-21T14:05", 15);
    /* only s[0..len) is considered */
    assert_int_equal(clinic_parse_visit_date(tail, 19, 25200, &t), 0);
    assert_true(t == T0);
    /* not NUL-terminated: ASan/valgrind flag any read past len */
    exact = malloc(16);
    assert_non_null(exact);
    memcpy(exact, "2026-11-21T14:05", 16);
    assert_int_equal(clinic_parse_visit_date(exact, 16, 25200, &t), 0);
    assert_true(t == T0);
    memcpy(exact, "2026-11-21T14:0", 15);
    assert_visit_bad(exact, 15);
    memcpy(exact, "1 march 2024 9:", 15);
    assert_visit_bad(exact, 15);
    free(exact);
}

static void test_visit_args(void **state)
{
    clinic_time_t t = 42;

    (void)state;
    assert_int_equal(clinic_parse_visit_date("2026-11-21T14:05", 16, 86400, &t), -1);
    assert_int_equal(clinic_parse_visit_date("2026-11-21T14:05Z", 17, -86400, &t), -1);
    assert_int_equal(clinic_parse_visit_date(NULL, 0, 0, &t), -1);
    assert_int_equal(clinic_parse_visit_date("2026-11-21T14:05", 16, 0, NULL), -1);
    assert_true(t == 42);
    assert_visit("2026-11-21T14:05", 86399, T0 + 7 * 3600 * US - 86399 * US);
}

static void test_date_ymd(void **state)
{
    int y = 0, m = 0, d = 0;
    static const char *const bad[] = {
        "2026-02-29", "2100-02-29", "1900-02-29", "2024-02-30", "2024-04-31", "2024-13-01",
        "2024-00-01", "2024-01-00", "0000-01-01", "2024-2-29 ", "2024/02/29", "+024-02-29",
        "2024-02-2a", "2024-02-29", /* last one: len 9 below */
    };
    size_t i, n = sizeof bad / sizeof *bad;

    (void)state;
    assert_int_equal(clinic_parse_date_ymd("2024-02-29", 10, &y, &m, &d), 0);
    assert_int_equal(y, 2024);
    assert_int_equal(m, 2);
    assert_int_equal(d, 29);
    assert_int_equal(clinic_parse_date_ymd("2000-02-29", 10, &y, &m, &d), 0);
    assert_int_equal(y, 2000);
    assert_int_equal(clinic_parse_date_ymd("0001-01-01", 10, NULL, NULL, &d), 0);
    assert_int_equal(d, 1);
    assert_int_equal(clinic_parse_date_ymd("9999-12-31", 10, NULL, &m, NULL), 0);
    assert_int_equal(m, 12);
    assert_int_equal(clinic_parse_date_ymd("2024-02-29xx", 10, NULL, NULL, NULL), 0);
    y = m = d = 7;
    for (i = 0; i < n; i++)
        if (clinic_parse_date_ymd(bad[i], i == n - 1 ? 9 : strlen(bad[i]), &y, &m, &d) != -1)
            fail_msg("date accepted: \"%s\"", bad[i]);
    assert_int_equal(clinic_parse_date_ymd("2024-02-29\0", 11, NULL, NULL, NULL), -1);
    assert_int_equal(clinic_parse_date_ymd("2024-02\0-29", 10, NULL, NULL, NULL), -1);
    assert_int_equal(y + m + d, 21);
}

static void test_format(void **state)
{
    char buf[CLINIC_ISO_MAX];

    (void)state;
    assert_fmt(T0, 0, "2026-11-21T07:05:00Z");
    assert_fmt(T0, 25200, "2026-11-21T14:05:00+07:00");
    assert_fmt(T0, -19800, "2026-11-21T01:35:00-05:30");
    assert_fmt(T0, -8 * 3600, "2026-11-20T23:05:00-08:00");
    assert_fmt(T0 + 17 * 3600 * US, 25200, "2026-11-22T07:05:00+07:00");
    assert_fmt(T0 + 1, 0, "2026-11-21T07:05:00.000001Z");
    assert_fmt(T0 + 123456, 3600, "2026-11-21T08:05:00.123456+01:00");
    assert_fmt(0, 0, "1970-01-01T00:00:00Z");
    assert_fmt(-1, 0, "1969-12-31T23:59:59.999999Z");
    assert_fmt(-US, 0, "1969-12-31T23:59:59Z");
    assert_fmt(-315619200LL * US, 0, "1960-01-01T00:00:00Z");
    assert_fmt(-315619200LL * US - 500000, -3600, "1959-12-31T22:59:59.500000-01:00");
    assert_fmt(-2208989972LL * US, 1172, "1900-01-01T00:00:00+00:19:32");
    assert_fmt(951782400LL * US, 0, "2000-02-29T00:00:00Z");
    assert_fmt(-62135596800LL * US, 0, "0001-01-01T00:00:00Z");
    assert_fmt(253402300799LL * US + 999999, 0, "9999-12-31T23:59:59.999999Z");
    assert_fmt(253402300799LL * US + 999999, -86399, "9999-12-31T00:00:00.999999-23:59:59");
    assert_fmt(-62135596800LL * US, 86399, "0001-01-01T23:59:59+23:59:59");
    /* out of range: "" and 0 */
    assert_fmt(-62135596800LL * US - 1, 0, "");
    assert_fmt(253402300800LL * US, 0, "");
    assert_fmt(INT64_MIN, 0, "");
    assert_fmt(INT64_MAX, -86399, "");
    assert_fmt(T0, 86400, "");
    assert_fmt(T0, -86400, "");
    memset(buf, 'x', sizeof buf);
    assert_int_equal(clinic_format_iso(T0, INT_MIN, buf), 0);
    assert_int_equal(buf[0], '\0');
    assert_int_equal(clinic_format_iso(T0, INT_MAX, buf), 0);
}

/* Walk every day from 1582-10-15 to 2500-12-31 with an independent calendar. */
static void test_format_every_day(void **state)
{
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int64_t day = -141427; /* 1582-10-15 */
    int y = 1582, m = 10, d = 15;
    char buf[CLINIC_ISO_MAX], want[CLINIC_ISO_MAX];
    clinic_time_t back;

    (void)state;
    for (; y <= 2500; day++) {
        clinic_time_t t = day * 86400 * US + 12 * 3600 * US;
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

        snprintf(want, sizeof want, "%04d-%02d-%02dT12:00:00Z", y, m, d);
        clinic_format_iso(t, 0, buf);
        if (strcmp(buf, want) != 0)
            fail_msg("day %lld: got %s want %s", (long long)day, buf, want);
        if (clinic_parse_visit_date(buf, strlen(buf), 0, &back) != 0 || back != t)
            fail_msg("round trip failed for %s", buf);
        if (++d > mdays[m - 1] + (m == 2 && leap)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }
    assert_int_equal(day, 193944); /* 2501-01-01 */
}

static void test_db_ok(void **state)
{
    (void)state;
    assert_db("1990-03-19 17:00:00+00", 637866000LL * US);
    assert_db("1990-03-20T00:00:00Z", 637891200LL * US);
    assert_db("1990-03-20", 637891200LL * US);
    assert_db("2026-11-21 07:05:00.123456", T0 + 123456);
    assert_db("2026-11-21 07:05:00", T0);
    assert_db("2026-11-21 12:05:00+05:30", T0 - 1800 * US);
    assert_db("2026-11-21 12:35:00+05:30", T0);
    assert_db("2026-11-21 14:05:00.25+07:00", T0 + 250000);
    assert_db("2026-11-21 14:35:00.25+07:30", T0 + 250000);
    assert_db("2026-11-20 23:05:00-08", T0);
    assert_db("2026-11-21T07:05:00.5Z", T0 + 500000);
    assert_db("1900-01-01 00:00:00+00:19:32", -2208989972LL * US);
    assert_db("1960-01-01 00:00:00-00", -315619200LL * US);
}

static void test_db_bad(void **state)
{
    static const char *const bad[] = {
        "", "2026-11-21 ", "2026-11-21T", "2026-11-21 07:05", "2026-11-21 07:05:00Z",
        "2026-11-21T07:05:00", "2026-11-21T07:05:00+00", "2026-11-21t07:05:00Z",
        "2026-11-21T07:05:00z", "2026-11-21 07:05:00.1234567", "2026-11-21 07:05:00.",
        "2026-11-21 07:05:00+0530", "2026-11-21 07:05:00+05:3", "2026-11-21 07:05:00+05:30:",
        "2026-11-21 07:05:00+05:30:60", "2026-11-21 07:05:00+24", "2026-11-21 07:05:00+5",
        "2026-11-21 07:05:00 BC", "2026-11-21 07:05:00+00 ", " 2026-11-21 07:05:00",
        "2026-11-21 24:00:00", "2026-02-29 00:00:00", "0000-12-31 00:00:00+00",
        "12026-11-21 07:05:00+00", "2026-11-21  07:05:00", "2026-11-21x",
    };
    size_t i;
    clinic_time_t t = 42;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof *bad; i++)
        if (clinic_parse_db_timestamp(bad[i], &t) != -1)
            fail_msg("db accepted: \"%s\"", bad[i]);
    assert_int_equal(clinic_parse_db_timestamp(NULL, &t), -1);
    assert_true(t == 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offset_ok),
        cmocka_unit_test(test_offset_bad),
        cmocka_unit_test(test_visit_moment),
        cmocka_unit_test(test_visit_iso),
        cmocka_unit_test(test_visit_bad),
        cmocka_unit_test(test_visit_len_and_nul),
        cmocka_unit_test(test_visit_args),
        cmocka_unit_test(test_date_ymd),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_every_day),
        cmocka_unit_test(test_db_ok),
        cmocka_unit_test(test_db_bad),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
