/* Unit tests for src/core/sqlstate.c: SQLSTATE out of libpq's verbose
 * messages, and which of them answer 503 (docs/API.md §8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sqlstate.h"

static void test_extract(void **state)
{
    static const struct { const char *msg, *st; } cases[] = {
        {"ERROR:  57014: canceling statement due to statement timeout", "57014"},
        {"FATAL:  57P01: terminating connection due to administrator command\n", "57P01"},
        {"ERROR:  26000: prepared statement \"clinic_visit_insert\" does not exist", "26000"},
        {"ERROR:  42P05: prepared statement \"x\" already exists", "42P05"},
        {"ERROR:  duplicate key value violates unique constraint", ""},   /* not verbose */
        {"ERROR:  57014", ""},                                               /* too short */
        {"ERROR:  5701: x", ""},                                             /* no ':' at 5 */
        {"server closed the connection unexpectedly", ""},
        {"", ""},
        {NULL, ""},
    };
    char st[6];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        clinic_sqlstate(cases[i].msg, st);
        assert_string_equal(st, cases[i].st);
    }
}

static void test_transient(void **state)
{
    static const char *const yes[] = {"08000", "08006", "08P01", "53000", "53100", "53300",
                                      "57014", "55P03", "40001", "40P01", "57P01", "57P02",
                                      "57P03"};
    static const char *const no[] = {"", "23505", "23503", "42P01", "42703", "22P02",
                                     "26000", "42P05", "57P04", "55000", "40002", "0",
                                     "5", "57"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_int_equal(clinic_sqlstate_is_transient(yes[i]), 1);
    for (i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_int_equal(clinic_sqlstate_is_transient(no[i]), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extract),
        cmocka_unit_test(test_transient),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
