/* Unit tests for src/core/query.c: add-and-link's ?uid= (docs/API.md §5),
 * found and decoded as httpd's ap_unescape_urlencoded decodes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "query.h"

static void test_param(void **state)
{
    static const struct { const char *q, *want; int count; } cases[] = {
        {"uid=doc1", "doc1", 1},
        {"a=1&uid=doc2&uid=other", "doc2", 2},  /* the first one; given twice */
        {"a=1;uid=doc3", "doc3", 1},
        {"uid=", "", 1},
        {"uid", "", 1},                          /* a bare name: empty */
        {"uid&uid=x;uid", "", 3},
        {"uid=a%20b+c", "a%20b+c", 1},           /* raw, still encoded */
        {"xuid=1&uid=2", "2", 1},
        {"uidx=1", NULL, 0},
        {"uidx", NULL, 0},
        {"UID=1", NULL, 0},
        {"", NULL, 0},
        {"&&uid=4&", "4", 1},
        {NULL, NULL, 0},
    };
    size_t i, len;
    int count;
    const char *v;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("%s\n", cases[i].q ? cases[i].q : "(null)");
        v = clinic_query_param(cases[i].q, "uid", &len, &count);
        assert_int_equal(count, cases[i].count);
        if (!cases[i].want) {
            assert_null(v);
            continue;
        }
        assert_non_null(v);
        assert_int_equal(len, strlen(cases[i].want));
        assert_memory_equal(v, cases[i].want, len);
    }
}

static void test_decode(void **state)
{
    static const struct { const char *in, *out; int rc; } cases[] = {
        {"doctor_uid_123", "doctor_uid_123", 0},
        {"a+b", "a b", 0},
        {"a%20b", "a b", 0},
        {"%2B", "+", 0},                         /* an encoded plus stays a plus */
        {"%e6%97%a5", "\xe6\x97\xa5", 0},
        {"%C3%A9", "\xc3\xa9", 0},
        {"%2f%3F%26", "/?&", 0},
        {"", "", 0},
        {"%", NULL, -1},
        {"%4", NULL, -1},
        {"%zz", NULL, -1},
        {"a%g1", NULL, -1},
        {"%00", NULL, -1},
        {"ok%00ok", NULL, -1},
    };
    char buf[64];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        print_message("%s\n", cases[i].in);
        strcpy(buf, cases[i].in);
        assert_int_equal(clinic_form_decode(buf), cases[i].rc);
        if (cases[i].out)
            assert_string_equal(buf, cases[i].out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param),
        cmocka_unit_test(test_decode),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
