/* Unit tests for src/core/validate.c: body parsing and the field rules of both routes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "validate.h"

#define PARSE_ERR "JSON parse error - "
#define TOO_DEEP PARSE_ERR "nesting deeper than 32 levels"
#define DATE_MSG "Datetime has wrong format. Use one of these formats instead: " \
                 "DD MMMM YYYY HH:mm, YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
#define TYPE_MSG(t) "Incorrect type. Expected pk value, received " t "."
#define PLUS7 25200                             /* +07:00, seconds east of UTC */
#define T0 (INT64_C(1795244700) * 1000000)      /* 2026-11-21T07:05:00Z in microseconds */
#define APPT "65f8a1b2c3d4e5f6789012ef"
#define NAMES "\"firstName\":\"Ann\",\"lastName\":\"Lee\""
#define BODY "{\"appointment_id\":\"" APPT "\","   /* open, to be completed */
#define LINK_OK BODY NAMES

static json_t *held;   /* the last body loaded: the structs under test point into it */

static int teardown(void **state)
{
    (void)state;
    json_decref(held);
    held = NULL;
    return 0;
}

static json_t *parse_len(const char *buf, size_t len, char *err)
{
    err[0] = '\0';
    return clinic_json_parse(buf, len, err, 200);
}

static json_t *load(const char *text)
{
    char err[200];

    json_decref(held);
    held = parse_len(text, strlen(text), err);
    if (!held)
        fail_msg("%s: %s", text, err);
    return held;
}

static void assert_parse_error(const char *text)
{
    char err[200];

    assert_null(parse_len(text, strlen(text), err));
    assert_memory_equal(err, PARSE_ERR, strlen(PARSE_ERR));
}

/* printf into one of four static buffers, used in turn. */
static const char *fmt(const char *f, ...)
{
    static char bufs[4][8192];
    static unsigned next;
    char *buf = bufs[next++ % 4];
    va_list ap;

    va_start(ap, f);
    assert_true(vsnprintf(buf, sizeof bufs[0], f, ap) < (int)sizeof bufs[0]);
    va_end(ap);
    return buf;
}

/* unit repeated n times, in a static buffer (each call overwrites it). */
static const char *rep(const char *unit, size_t n)
{
    static char buf[4096];
    size_t u = strlen(unit);

    assert_true(u * n < sizeof buf);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + i * u, unit, u);
    buf[u * n] = '\0';
    return buf;
}

/* open*n + middle + close*n */
static const char *nested(size_t n, const char *open, const char *middle, const char *close)
{
    static char buf[8192];

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++)
        strcat(buf, open);
    strcat(buf, middle);
    for (size_t i = 0; i < n; i++)
        strcat(buf, close);
    return buf;
}

static void assert_dump(json_t *j, const char *want)
{
    char *got = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

    assert_non_null(got);
    assert_string_equal(got, want);
    free(got);
}

static void test_parse_basic(void **state)
{
    char err[200];
    json_t *v;

    (void)state;
    v = load("{\"a\":1,\"b\":[true,null]}");
    assert_true(json_is_object(v));
    assert_int_equal(json_integer_value(json_object_get(v, "a")), 1);
    assert_dump(load("[1,\"x\"]"), "[1,\"x\"]");
    assert_dump(load(" 42 "), "42");
    assert_parse_error("");
    assert_parse_error("{\"a\":1,\"a\":2}");
    assert_parse_error("{\"a\":\"x\\u0000y\"}");
    assert_parse_error("{\"a\":\"\xff\"}");
    assert_parse_error("{\"a\":\"\xc3\"}");
    assert_parse_error("{\"a\":1");
    /* the length is honoured: a valid prefix of a longer buffer */
    v = parse_len("[7]garbage", 3, err);
    assert_non_null(v);
    assert_int_equal(json_integer_value(json_array_get(v, 0)), 7);
    json_decref(v);
}

static void test_parse_depth(void **state)
{
    const char *s;
    char err[200], *deep;
    struct timespec t0, t1;
    json_t *v;

    (void)state;
    v = load(nested(32, "[", "1", "]"));
    for (int i = 0; i < 31; i++)
        v = json_array_get(v, 0);
    assert_int_equal(json_integer_value(json_array_get(v, 0)), 1);
    assert_non_null(load(nested(31, "{\"a\":", "[]", "}")));

    s = nested(33, "[", "", "]");
    assert_null(parse_len(s, strlen(s), err));
    assert_string_equal(err, TOO_DEEP);
    s = nested(32, "{\"a\":", "[]", "}");
    assert_null(parse_len(s, strlen(s), err));
    assert_string_equal(err, TOO_DEEP);

    /* brackets inside strings, escaped quotes included, do not count */
    v = load(nested(32, "[", "\"\\\"[[[[[[[[[[{{{{{{{{{{[[[[[[[[[[[[[[[[\"", "]"));
    for (int i = 0; i < 31; i++)
        v = json_array_get(v, 0);
    assert_string_equal(json_string_value(json_array_get(v, 0)),
                        "\"[[[[[[[[[[{{{{{{{{{{[[[[[[[[[[[[[[[[");
    /* ...but an escaped backslash ends the string, so the brackets after it do */
    s = fmt("[\"\\\\\",%s]", nested(32, "[", "", "]"));
    assert_null(parse_len(s, strlen(s), err));
    assert_string_equal(err, TOO_DEEP);

    deep = malloc(100000);
    assert_non_null(deep);
    memset(deep, '[', 100000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    v = parse_len(deep, 100000, err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(deep);
    assert_null(v);
    assert_string_equal(err, TOO_DEEP);
    assert_true((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) < 100000000L);
}

static void test_pytype(void **state)
{
    static const char *const cases[][2] = {
        { "{}", "dict" }, { "[]", "list" }, { "\"s\"", "str" }, { "1", "int" },
        { "1.5", "float" }, { "true", "bool" }, { "false", "bool" }, { "null", "NoneType" },
    };

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(clinic_json_pytype(load(cases[i][0])), cases[i][1]);
}

static void assert_trim(const char *s, const char *want)
{
    const char *p = s;
    size_t n = strlen(s);

    clinic_utf8_trim(&p, &n);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(p, want, n);
    assert_true(p >= s && p + n <= s + strlen(s));
}

static void test_utf8_trim(void **state)
{
    (void)state;
    assert_trim(" \t\n\r\v\fhello world \t\n", "hello world");
    assert_trim("\xc2\xa0\xe3\x80\x80" "a  b" "\xe3\x80\x80\xc2\xa0", "a  b");
    assert_trim("\xe2\x80\xa8x\xe2\x80\x8a", "x");        /* U+2028, U+200A */
    assert_trim("\x1c\x1d\xc2\x85x\x1e\x1f", "x");        /* Python's isspace: U+001C-F, U+0085 */
    assert_trim("caf\xc3\xa9 ", "caf\xc3\xa9");            /* multi-byte last char kept */
    assert_trim("\xe2\x80\x8bx", "\xe2\x80\x8bx");         /* U+200B is not space */
    assert_trim("plain", "plain");
    assert_trim("   \t\n", "");
    assert_trim("\xc2\xa0\xe3\x80\x80", "");
    assert_trim("", "");
}

static void test_utf8_chars(void **state)
{
    (void)state;
    assert_int_equal(clinic_utf8_chars("", 0), 0);
    assert_int_equal(clinic_utf8_chars("abc", 3), 3);
    assert_int_equal(clinic_utf8_chars("\xc3\xa9", 2), 1);
    assert_int_equal(clinic_utf8_chars("\xe2\x82\xac", 3), 1);
    assert_int_equal(clinic_utf8_chars("\xf0\x9f\x98\x80", 4), 1);
    assert_int_equal(clinic_utf8_chars("a\xc3\xa9\xf0\x9f\x98\x80z", 8), 4);
}

static void test_utf8_valid(void **state)
{
    static const char *const good[] = {
        "", "ascii", "\xc3\xa9", "\xe2\x82\xac", "\xef\xbf\xbf", "\xf0\x9f\x98\x80",
        "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf", "\xee\x80\x80", "a\xc3\xa9\xf0\x90\x80\x80z",
    };
    static const char *const bad[] = {
        "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80", "\xe0\x9f\xbf", "\xf0\x80\x80\x80",
        "\xf0\x8f\xbf\xbf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xf4\x90\x80\x80",
        "\xf5\x80\x80\x80", "\xff", "\x80", "a\xbf", "\xc3", "\xe2\x82", "\xf0\x9f\x98",
        "\xc3\x41", "\xe2\x41\xac", "\xf0\x9f\x98\x41", "ok\xc3",
    };

    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!clinic_utf8_valid(good[i], strlen(good[i])))
            fail_msg("good[%zu] rejected", i);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (clinic_utf8_valid(bad[i], strlen(bad[i])))
            fail_msg("bad[%zu] accepted", i);
    assert_int_equal(clinic_utf8_valid("\xc3\xa9", 1), 0);   /* the length is honoured */
}

/* ---- POST /visits ---- */

static int visit(const char *text, clinic_visit_in_t *v)
{
    memset(v, 0x5a, sizeof *v);
    return clinic_visit_validate(load(text), PLUS7, v);
}

static void expect_visit(const char *text, int nerr, const char *errors)
{
    clinic_visit_in_t v;
    json_t *e;

    assert_int_equal(visit(text, &v), nerr);
    e = clinic_visit_errors(&v);
    assert_dump(e, errors);
    json_decref(e);
}

static void expect_pk(const char *patient, long long pk, int pk_state, const char *pk_text)
{
    clinic_visit_in_t v;

    assert_int_equal(visit(fmt("{\"patient\":%s,\"status\":\"s\"}", patient), &v), 0);
    assert_null(v.err_patient);
    assert_int_equal(v.pk, pk);
    assert_int_equal(v.pk_state, pk_state);
    assert_string_equal(v.pk_text, pk_text);
}

static void test_visit_patient(void **state)
{
    static const char *const cases[][2] = {
        { "null", "This field may not be null." },
        { "\"\"", "This field may not be null." },
        { "1.5", TYPE_MSG("float") },
        { "true", TYPE_MSG("bool") },
        { "false", TYPE_MSG("bool") },
        { "[1]", TYPE_MSG("list") },
        { "{}", TYPE_MSG("dict") },
        { "\"abc\"", TYPE_MSG("str") },
        { "\" 12\"", TYPE_MSG("str") },
        { "\"-1\"", TYPE_MSG("str") },
        { "\"12a\"", TYPE_MSG("str") },
    };
    clinic_visit_in_t v;

    (void)state;
    expect_visit("{}", 2, "{\"patient\":[\"This field is required.\"],"
                          "\"status\":[\"This field is required.\"]}");
    expect_visit("{\"status\":\"s\"}", 1, "{\"patient\":[\"This field is required.\"]}");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_visit(fmt("{\"patient\":%s,\"status\":\"s\"}", cases[i][0]), 1,
                     fmt("{\"patient\":[\"%s\"]}", cases[i][1]));

    expect_pk("12", 12, CLINIC_PK_OK, "12");
    expect_pk("\"0012\"", 12, CLINIC_PK_OK, "0012");
    expect_pk("-1", -1, CLINIC_PK_OK, "-1");
    expect_pk("2147483647", 2147483647LL, CLINIC_PK_OK, "2147483647");
    expect_pk("-2147483648", -2147483648LL, CLINIC_PK_OK, "-2147483648");
    expect_pk("\"2147483647\"", 2147483647LL, CLINIC_PK_OK, "2147483647");
    expect_pk("2147483648", 2147483648LL, CLINIC_PK_ABSENT_ROW, "2147483648");
    expect_pk("-2147483649", -2147483649LL, CLINIC_PK_ABSENT_ROW, "-2147483649");
    expect_pk("\"2147483648\"", 2147483648LL, CLINIC_PK_ABSENT_ROW, "2147483648");

    assert_int_equal(visit("{\"patient\":\"99999999999\",\"status\":\"s\"}", &v), 0);
    assert_null(v.err_patient);
    assert_int_equal(v.pk_state, CLINIC_PK_ABSENT_ROW);
    assert_string_equal(v.pk_text, "99999999999");
}

static void test_visit_pk_missing(void **state)
{
    clinic_visit_in_t v;
    char buf[128];
    json_t *e;

    (void)state;
    assert_int_equal(visit("{\"patient\":99,\"status\":\"s\"}", &v), 0);
    clinic_visit_pk_missing(&v, buf, sizeof buf);
    assert_string_equal(buf, "Invalid pk \"99\" - object does not exist.");
    assert_ptr_equal(v.err_patient, buf);
    e = clinic_visit_errors(&v);
    assert_dump(e, "{\"patient\":[\"Invalid pk \\\"99\\\" - object does not exist.\"]}");
    json_decref(e);

    assert_int_equal(visit("{\"patient\":\"0012\",\"status\":\"s\"}", &v), 0);
    clinic_visit_pk_missing(&v, buf, sizeof buf);
    assert_string_equal(buf, "Invalid pk \"0012\" - object does not exist.");
}

static void expect_status(const char *status, const char *want, size_t want_len)
{
    clinic_visit_in_t v;

    assert_int_equal(visit(fmt("{\"patient\":1,\"status\":%s}", status), &v), 0);
    assert_null(v.err_status);
    assert_int_equal(v.status_len, want_len);
    assert_memory_equal(v.status, want, want_len);
}

static void test_visit_status(void **state)
{
    static const char *const cases[][2] = {
        { "null", "This field may not be null." },
        { "\"\"", "This field may not be blank." },
        { "\"   \"", "This field may not be blank." },
        { "\"\\u3000\\u00a0\\t\"", "This field may not be blank." },
        { "5", "Not a valid string." },
        { "true", "Not a valid string." },
        { "[\"x\"]", "Not a valid string." },
    };
    char big[1024];

    (void)state;
    expect_visit("{\"patient\":1}", 1, "{\"status\":[\"This field is required.\"]}");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_visit(fmt("{\"patient\":1,\"status\":%s}", cases[i][0]), 1,
                     fmt("{\"status\":[\"%s\"]}", cases[i][1]));
    expect_visit(fmt("{\"patient\":1,\"status\":\"%s\"}", rep("x", 101)), 1,
                 "{\"status\":[\"Ensure this field has no more than 100 characters.\"]}");
    expect_visit(fmt("{\"patient\":1,\"status\":\"%s\"}", rep("\xc3\xa9", 101)), 1,
                 "{\"status\":[\"Ensure this field has no more than 100 characters.\"]}");

    expect_status("\"  started \\n\"", "started", 7);
    expect_status("\"\\u3000in progress\\u00a0\"", "in progress", 11);
    strcpy(big, rep("x", 100));
    expect_status(fmt("\"%s\"", big), big, 100);
    expect_status(fmt("\" %s \"", big), big, 100);              /* limit applies after trim */
    strcpy(big, rep("\xc3\xa9", 100));
    expect_status(fmt("\"%s\"", big), big, 200);                /* characters, not bytes */
}

static void expect_when(const char *body, const char *key, clinic_time_t want)
{
    clinic_visit_in_t v;

    assert_int_equal(visit(body, &v), 0);
    assert_null(v.err_date);
    assert_null(v.err_nonfield);
    assert_string_equal(v.date_key, key);
    assert_int_equal(v.when_given, 1);
    assert_int_equal(v.when, want);
}

static void test_visit_date(void **state)
{
    clinic_visit_in_t v;

    (void)state;
    assert_string_equal(CLINIC_MSG_DATE_FORMAT, DATE_MSG);
    expect_when("{\"patient\":1,\"status\":\"s\",\"visit_date\":\"21 November 2026 14:05\"}",
                "visit_date", T0);
    expect_when("{\"patient\":1,\"status\":\"s\",\"visit_date\":\"2026-11-21T07:05:00Z\"}",
                "visit_date", T0);
    expect_when("{\"patient\":1,\"status\":\"s\",\"visit_date\":\"2026-11-21T07:05:00.5+00:00\"}",
                "visit_date", T0 + 500000);
    expect_when("{\"patient\":1,\"status\":\"s\",\"visit_date\":\"2026-11-21T14:05\"}",
                "visit_date", T0);
    expect_when("{\"patient\":1,\"status\":\"s\",\"date\":\"21 November 2026 14:05\"}", "date", T0);

    assert_int_equal(visit("{\"patient\":1,\"status\":\"s\"}", &v), 0);
    assert_int_equal(v.when_given, 0);
    assert_null(v.err_date);
    assert_null(v.err_nonfield);

    expect_visit("{\"patient\":1,\"status\":\"s\",\"visit_date\":\"2026-13-01T00:00Z\"}", 1,
                 "{\"visit_date\":[\"" DATE_MSG "\"]}");
    expect_visit("{\"patient\":1,\"status\":\"s\",\"visit_date\":\"tomorrow\"}", 1,
                 "{\"visit_date\":[\"" DATE_MSG "\"]}");
    expect_visit("{\"patient\":1,\"status\":\"s\",\"visit_date\":20261121}", 1,
                 "{\"visit_date\":[\"" DATE_MSG "\"]}");
    expect_visit("{\"patient\":1,\"status\":\"s\",\"visit_date\":null}", 1,
                 "{\"visit_date\":[\"This field may not be null.\"]}");
    /* Years 0001-9999 in UTC (stored) and in the answer's offset (+07:00 here). */
    expect_when("{\"patient\":1,\"status\":\"s\",\"visit_date\":\"0001-01-01T07:00\"}",
                "visit_date", -62135596800LL * 1000000);
    expect_when("{\"patient\":1,\"status\":\"s\",\"visit_date\":\"9999-12-31T16:59:59Z\"}",
                "visit_date", 253402300799LL * 1000000 - 7 * 3600LL * 1000000);
    expect_visit("{\"patient\":1,\"status\":\"s\",\"visit_date\":\"0001-01-01T03:00+07:00\"}", 1,
                 "{\"visit_date\":[\"" DATE_MSG "\"]}");
    expect_visit("{\"patient\":1,\"status\":\"s\",\"visit_date\":\"1 January 0001 06:59\"}", 1,
                 "{\"visit_date\":[\"" DATE_MSG "\"]}");
    expect_visit("{\"patient\":1,\"status\":\"s\",\"visit_date\":\"9999-12-31T20:00:00Z\"}", 1,
                 "{\"visit_date\":[\"" DATE_MSG "\"]}");
    expect_visit("{\"patient\":1,\"status\":\"s\",\"date\":\"9999-12-31T23:30-01:00\"}", 1,
                 "{\"date\":[\"" DATE_MSG "\"]}");
    expect_visit("{\"patient\":1,\"status\":\"s\",\"date\":\"bad\"}", 1,
                 "{\"date\":[\"" DATE_MSG "\"]}");
    expect_visit("{\"patient\":1,\"status\":\"s\",\"date\":null}", 1,
                 "{\"date\":[\"This field may not be null.\"]}");
}

static void test_visit_both_dates(void **state)
{
    clinic_visit_in_t v;

    (void)state;
    assert_int_equal(visit("{\"patient\":1,\"status\":\"s\",\"visit_date\":\"2026-11-21T07:05Z\","
                           "\"date\":\"2026-11-21T07:05Z\"}", &v), 0);
    assert_string_equal(v.err_nonfield, "Give visit_date or date, not both.");
    assert_null(v.err_date);
    assert_int_equal(v.when_given, 0);
    expect_visit("{\"patient\":1,\"status\":\"s\",\"visit_date\":\"x\",\"date\":\"y\"}", 0,
                 "{\"non_field_errors\":[\"Give visit_date or date, not both.\"]}");
    expect_visit("{\"patient\":1,\"visit_date\":\"x\",\"date\":\"y\"}", 1,
                 "{\"status\":[\"This field is required.\"]}");
    expect_visit("{\"patient\":null,\"status\":\"s\",\"visit_date\":\"x\",\"date\":\"y\"}", 1,
                 "{\"patient\":[\"This field may not be null.\"]}");
}

static void test_visit_error_order(void **state)
{
    (void)state;
    expect_visit("{\"status\":5,\"visit_date\":\"x\",\"patient\":true}", 3,
                 "{\"patient\":[\"" TYPE_MSG("bool") "\"],\"visit_date\":[\"" DATE_MSG "\"],"
                 "\"status\":[\"Not a valid string.\"]}");
    expect_visit("{\"status\":null,\"date\":null}", 3,
                 "{\"patient\":[\"This field is required.\"],"
                 "\"date\":[\"This field may not be null.\"],"
                 "\"status\":[\"This field may not be null.\"]}");
}

/* ---- POST /patients/add_and_link ---- */

static int link_in(const char *text, const char *uid, clinic_link_in_t *in)
{
    memset(in, 0x5a, sizeof *in);
    return clinic_link_validate(load(text), uid, uid ? strlen(uid) : 0, in);
}

static void expect_link(const char *text, const char *uid, int code, const char *message)
{
    clinic_link_in_t in;

    if (link_in(text, uid, &in) != code || in.failed != code)
        fail_msg("%s (uid %s): got %d \"%s\", want %d", text, uid ? uid : "NULL", in.failed,
                 in.message, code);
    assert_string_equal(in.message, message);
}

/* check 6, naming field */
static void expect_invalid(const char *text, const char *uid, const char *field)
{
    clinic_link_in_t in;
    const char *want = fmt("Invalid field: %s (", field);

    if (link_in(text, uid, &in) != CLINIC_LINK_INVALID_FIELD ||
        strncmp(in.message, want, strlen(want)) != 0)
        fail_msg("%s (uid %s): got %d \"%s\", want 6 \"%s...\"", text, uid ? uid : "NULL",
                 in.failed, in.message, want);
}

static void expect_link_ok(const char *text, const char *uid)
{
    clinic_link_in_t in;

    if (link_in(text, uid, &in) != CLINIC_LINK_OK || in.failed != CLINIC_LINK_OK)
        fail_msg("%s: rejected: %s", text, in.message);
}

static void test_link_missing(void **state)
{
    static const char *const appt[] = { "", ",\"appointment_id\":null",
                                        ",\"appointment_id\":\"\"",
                                        ",\"appointment_id\":\"   \"",
                                        ",\"appointment_id\":\"\\u3000\"" };
    static const char MISSING_APPT[] = "Missing appointment_id";
    static const char MISSING_UID[] = "Missing doctor_id (uid)";
    static const char MISSING_NAMES[] = "Missing required patient fields (firstName, lastName)";

    (void)state;
    for (size_t i = 0; i < sizeof appt / sizeof appt[0]; i++) {
        expect_link(fmt("{" NAMES "%s}", appt[i]), "doc", 3, MISSING_APPT);
        expect_link(fmt("{\"x\":0%s}", appt[i]), NULL, 3, MISSING_APPT);
    }
    expect_link(LINK_OK "}", NULL, 4, MISSING_UID);
    expect_link(LINK_OK "}", "", 4, MISSING_UID);
    expect_link("{\"appointment_id\":\"xyz\"}", NULL, 4, MISSING_UID);
    expect_link("{\"appointment_id\":123}", NULL, 4, MISSING_UID);

    expect_link(BODY "\"lastName\":\"Lee\"}", "doc", 5, MISSING_NAMES);
    expect_link(BODY "\"firstName\":\"  \",\"lastName\":\"Lee\"}", "doc", 5, MISSING_NAMES);
    expect_link(BODY "\"firstName\":\"Ann\",\"lastName\":null}", "doc", 5, MISSING_NAMES);
    expect_link(BODY "\"firstName\":\"Ann\",\"lastName\":\"\"}", "doc", 5, MISSING_NAMES);
    expect_link("{\"appointment_id\":\"xyz\",\"firstName\":\"Ann\"}", "\x01", 5, MISSING_NAMES);
    expect_link_ok(LINK_OK "}", "doc");
}

static void test_link_invalid(void **state)
{
    static const char *const appt[] = {
        "123", "\"xyz\"", "\"65f8a1b2c3d4e5f6789012e\"", "\"65f8a1b2c3d4e5f6789012ef0\"",
        "\"65f8a1b2c3d4e5f6789012eg\"", "\"65f8a1b2c3d4e5f6789012ef-1\"",
        "\"65f8a1b2c3d4 5f6789012ef\"", "[\"" APPT "\"]", "true",
    };
    /* the members after a valid appointment_id, and the field they make fail */
    static const char *const members[][2] = {
        { "\"firstName\":42,\"lastName\":\"Lee\"", "firstName" },
        { "\"firstName\":[\"Ann\"],\"lastName\":\"Lee\"", "firstName" },
        { "\"firstName\":\"Ann\",\"lastName\":true", "lastName" },
        { NAMES ",\"dateOfBirth\":\"1990-02-30\"", "dateOfBirth" },
        { NAMES ",\"dateOfBirth\":\"1990-3-20\"", "dateOfBirth" },
        { NAMES ",\"dateOfBirth\":\"1990-03-20 \"", "dateOfBirth" },
        { NAMES ",\"dateOfBirth\":19900320", "dateOfBirth" },
        { NAMES ",\"medicalHistory\":5", "medicalHistory" },
        { NAMES ",\"currentMedications\":[]", "currentMedications" },
        { NAMES ",\"address\":\"x\"", "address" },
        { NAMES ",\"address\":[]", "address" },
        { NAMES ",\"insurance\":{\"a\":1}", "insurance" },
        { NAMES ",\"insurance\":{\"a\":\"b\",\"c\":null}", "insurance" },
        { NAMES ",\"contact\":{\"a\":{\"b\":\"c\"}}", "contact" },
    };

    (void)state;
    for (size_t i = 0; i < sizeof appt / sizeof appt[0]; i++)
        expect_invalid(fmt("{\"appointment_id\":%s," NAMES "}", appt[i]), "doc", "appointment_id");
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
        expect_invalid(fmt(BODY "%s}", members[i][0]), "doc", members[i][1]);

    expect_invalid(LINK_OK "}", rep("u", 129), "uid");
    expect_invalid(LINK_OK "}", rep("\xc3\xa9", 129), "uid");
    expect_link_ok(LINK_OK "}", rep("u", 128));
    expect_link_ok(LINK_OK "}", rep("\xc3\xa9", 128));
    expect_invalid(LINK_OK "}", "doc\x01", "uid");
    expect_invalid(LINK_OK "}", "do\x7f" "c", "uid");
    expect_invalid(LINK_OK "}", "doc\xff", "uid");
    expect_invalid(LINK_OK "}", "\xed\xa0\x80", "uid");
    expect_link_ok(LINK_OK "}", "d\xc3\xb6" "c 1");

    expect_invalid(fmt(BODY "\"firstName\":\"Ann\",\"lastName\":\"%s\"}",
                       rep("x", 256)), "doc", "lastName");
    expect_invalid(fmt(BODY "\"lastName\":\"Lee\",\"firstName\":\"%s\"}",
                       rep("\xc3\xa9", 256)), "doc", "firstName");
    expect_link_ok(fmt(BODY "\"firstName\":\"Ann\",\"lastName\":\"%s\"}", rep("x", 255)), "doc");
    expect_link_ok(fmt(BODY "\"firstName\":\"Ann\",\"lastName\":\"%s\"}",
                       rep("\xc3\xa9", 255)), "doc");
    expect_link_ok(fmt(BODY "\"firstName\":\"Ann\",\"lastName\":\" %s \"}", rep("x", 255)), "doc");
    expect_link_ok(LINK_OK ",\"dateOfBirth\":\"1992-02-29\"}", "doc");

    /* the first failing field in check order is the one reported */
    expect_invalid("{\"appointment_id\":\"xyz\",\"firstName\":42,\"lastName\":\"Lee\"}", "\x01",
                   "appointment_id");
    expect_invalid(BODY "\"firstName\":42,\"lastName\":true}", "\x01", "uid");
    expect_invalid(BODY "\"firstName\":42,\"lastName\":true}", "doc", "firstName");
    expect_invalid(LINK_OK ",\"contact\":1,\"address\":1,\"insurance\":1,\"currentMedications\":1,"
                   "\"medicalHistory\":1,\"dateOfBirth\":1}", "doc", "dateOfBirth");
    expect_invalid(LINK_OK ",\"contact\":1,\"address\":1,\"insurance\":1,\"currentMedications\":1,"
                   "\"medicalHistory\":1}", "doc", "medicalHistory");
    expect_invalid(LINK_OK ",\"contact\":1,\"address\":1,\"insurance\":1,"
                   "\"currentMedications\":1}", "doc", "currentMedications");
    expect_invalid(LINK_OK ",\"contact\":1,\"insurance\":1,\"address\":1}", "doc", "address");
    expect_invalid(LINK_OK ",\"contact\":1,\"insurance\":1}", "doc", "insurance");
}

static void test_link_fields(void **state)
{
    clinic_link_in_t in;

    (void)state;
    assert_int_equal(link_in("{\"appointment_id\":\"65F8A1B2C3D4E5F6789012EF\","
                             "\"firstName\":\" \\u00a0Ann Marie\\t\","
                             "\"lastName\":\"\\u3000Lee\\n\"}",
                             "doc", &in), CLINIC_LINK_OK);
    assert_string_equal(in.appointment_id, APPT);
    assert_int_equal(in.first_len, 9);
    assert_memory_equal(in.first, "Ann Marie", 9);
    assert_int_equal(in.last_len, 3);
    assert_memory_equal(in.last, "Lee", 3);
    assert_null(in.dob);
    assert_null(in.medical_history);
    assert_null(in.current_medications);
    assert_null(in.address);
    assert_null(in.insurance);
    assert_null(in.contact);

    assert_int_equal(link_in(LINK_OK ",\"dateOfBirth\":null,\"medicalHistory\":null,"
                             "\"currentMedications\":null,\"address\":null,\"insurance\":null,"
                             "\"contact\":null}", "doc", &in), CLINIC_LINK_OK);
    assert_null(in.dob);
    assert_null(in.medical_history);
    assert_null(in.current_medications);
    assert_null(in.address);
    assert_null(in.insurance);
    assert_null(in.contact);

    assert_int_equal(link_in(LINK_OK ",\"dateOfBirth\":\"1990-03-20\",\"medicalHistory\":\"none\","
                             "\"currentMedications\":\"\",\"address\":{},"
                             "\"insurance\":{\"p\":\"q\"},\"contact\":{\"c\":\"d\"}}", "doc", &in),
                     CLINIC_LINK_OK);
    assert_string_equal(in.dob, "1990-03-20");
    assert_string_equal(in.medical_history, "none");
    assert_string_equal(in.current_medications, "");
    assert_ptr_equal(in.address, json_object_get(held, "address"));
    assert_ptr_equal(in.insurance, json_object_get(held, "insurance"));
    assert_ptr_equal(in.contact, json_object_get(held, "contact"));
}

static void expect_link_data(const char *text, const char *want)
{
    clinic_link_in_t in;
    json_t *d;

    assert_int_equal(link_in(text, "doc-7", &in), CLINIC_LINK_OK);
    d = clinic_link_data(&in, "0123456789abcdef01234567", "doc-7");
    assert_dump(d, want);
    json_decref(d);
}

static void test_link_data(void **state)
{
    (void)state;
    expect_link_data("{\"contact\":{\"phone\":\"1\",\"email\":\"a@b\"},"
                     "\"currentMedications\":\"aspirin\",\"medicalHistory\":\"none\","
                     "\"insurance\":{\"provider\":\"P\",\"number\":\"9\"},"
                     "\"address\":{\"zip\":\"1\",\"city\":\"X\",\"street\":\"Main\"},"
                     "\"dateOfBirth\":\"1990-03-20\",\"lastName\":\" Lee \","
                     "\"firstName\":\"Ann\",\"appointment_id\":\"" APPT "\"}",
                     "{\"_id\":\"0123456789abcdef01234567\",\"doctor_id\":\"doc-7\","
                     "\"firstName\":\"Ann\",\"lastName\":\"Lee\",\"dateOfBirth\":\"1990-03-20\","
                     "\"address\":{\"zip\":\"1\",\"city\":\"X\",\"street\":\"Main\"},"
                     "\"insurance\":{\"provider\":\"P\",\"number\":\"9\"},"
                     "\"medicalHistory\":\"none\",\"currentMedications\":\"aspirin\","
                     "\"contact\":{\"phone\":\"1\",\"email\":\"a@b\"}}");
    expect_link_data(LINK_OK ",\"address\":null,\"medicalHistory\":\"h\"}",
                     "{\"_id\":\"0123456789abcdef01234567\",\"doctor_id\":\"doc-7\","
                     "\"firstName\":\"Ann\",\"lastName\":\"Lee\",\"medicalHistory\":\"h\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_basic),
        cmocka_unit_test(test_parse_depth),
        cmocka_unit_test(test_pytype),
        cmocka_unit_test(test_utf8_trim),
        cmocka_unit_test(test_utf8_chars),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_visit_patient),
        cmocka_unit_test(test_visit_pk_missing),
        cmocka_unit_test(test_visit_status),
        cmocka_unit_test(test_visit_date),
        cmocka_unit_test(test_visit_both_dates),
        cmocka_unit_test(test_visit_error_order),
        cmocka_unit_test(test_link_missing),
        cmocka_unit_test(test_link_invalid),
        cmocka_unit_test(test_link_fields),
        cmocka_unit_test(test_link_data),
    };

    return cmocka_run_group_tests(tests, NULL, teardown);
}
