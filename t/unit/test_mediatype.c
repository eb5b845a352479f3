/* Unit tests for src/core/mediatype.c: the Content-Type both routes take
 * (docs/API.md §4: anything else is 415). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mediatype.h"

static void test_taken(void **state)
{
    static const char *const ok[] = {
        "application/json", "APPLICATION/JSON", "Application/Json", " \tapplication/json",
        "application/json ", "application/json;", "application/json; charset=utf-8",
        "application/json;charset=UTF-8", "application/json; charset = utf-8",
        "application/json; charset=\"utf-8\"", "application/json; charset=utf-8 ",
        "application/json; foo=bar", "application/json; foo=bar; charset=utf-8",
        "application/json; charset=utf-8;", "application/json;;",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        print_message("%s\n", ok[i]);
        assert_int_equal(clinic_media_type_is_json(ok[i]), 1);
    }
}

static void test_refused(void **state)
{
    static const char *const bad[] = {
        NULL, "", "text/plain", "application/jsonx", "application/json-patch+json",
        "application/json x", "application/x-www-form-urlencoded", "json",
        "application/json; charset=latin1", "application/json; charset=utf-8x",
        "application/json; charset=utf8", "application/json; charset",
        "application/json; charset utf-8", "application/json; charset=",
        "application/json; charset=utf-8; charset=latin1", "multipart/form-data",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        print_message("%s\n", bad[i] ? bad[i] : "(null)");
        assert_int_equal(clinic_media_type_is_json(bad[i]), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_taken),
        cmocka_unit_test(test_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
