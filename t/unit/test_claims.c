/* Unit tests for src/core/claims.c: the lookup behind ClinicUserClaim and the test behind
   `Require clinic-claim`, on claims parsed from JSON text as a verified token's would be. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "claims.h"

static const char *const CLAIMS =
    "{\"sub\": \"nurse-7\", \"uid\": 42, \"admin\": true, \"scope\": \"visits:write  patients:read\","
    " \"scp\": \"a b\", \"role\": \"head nurse\", \"roles\": [\"nurse\", 7, false, {\"x\": 1}, null],"
    " \"realm_access\": {\"roles\": [\"doctor\", \"offline_access\"], \"deep\": {\"unit\": \"icu\"}},"
    " \"https://hospital.example/roles\": [\"pharmacist\"], \"a.b\": \"literal\", \"a\": {\"b\": \"nested\"},"
    " \"nul\": \"nurse\\u0000x\", \"listnul\": [\"nurse\\u0000\"], \"empty\": \"\", \"obj\": {}, \"nil\": null,"
    " \"real\": 1.5}";

static json_t *claims;

static int setup(void **state)
{
    (void)state;
    claims = json_loads(CLAIMS, JSON_ALLOW_NUL, NULL);
    return claims ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(claims);
    return 0;
}

static void test_get_exact_and_dotted(void **state)
{
    (void)state;
    assert_string_equal(json_string_value(clinic_claim_get(claims, "sub")), "nurse-7");
    assert_string_equal(json_string_value(clinic_claim_get(claims, "realm_access.deep.unit")), "icu");
    assert_true(json_is_array(clinic_claim_get(claims, "realm_access.roles")));
    /* a member whose name has a dot wins over the path */
    assert_string_equal(json_string_value(clinic_claim_get(claims, "a.b")), "literal");
    assert_null(clinic_claim_get(claims, "realm_access.nope"));
    assert_null(clinic_claim_get(claims, "sub.x"));          /* through a string */
    assert_null(clinic_claim_get(claims, "realm_access."));  /* empty segments */
    assert_null(clinic_claim_get(claims, ".sub"));
    assert_null(clinic_claim_get(claims, "realm_access..roles"));
    assert_null(clinic_claim_get(claims, "missing"));
}

static void test_scalar(void **state)
{
    char buf[CLINIC_CLAIM_TEXT_MAX];

    (void)state;
    assert_string_equal(clinic_claim_scalar(clinic_claim_get(claims, "sub"), buf), "nurse-7");
    assert_string_equal(clinic_claim_scalar(clinic_claim_get(claims, "uid"), buf), "42");
    assert_string_equal(clinic_claim_scalar(clinic_claim_get(claims, "admin"), buf), "true");
    assert_null(clinic_claim_scalar(clinic_claim_get(claims, "obj"), buf));
    assert_null(clinic_claim_scalar(clinic_claim_get(claims, "nil"), buf));
    assert_null(clinic_claim_scalar(clinic_claim_get(claims, "real"), buf));
    assert_null(clinic_claim_scalar(NULL, buf));
}

/* clinic_claim_has(claims, name, values) == want, one row a case. */
static const struct {
    const char *name;
    const char *values[4];      /* NULL-terminated */
    int want;
} cases[] = {
    /* strings compare whole; only scope and scp are lists */
    {"sub", {"nurse-7"}, 1},
    {"sub", {"nurse"}, 0},
    {"sub", {"NURSE-7"}, 0},                       /* case matters */
    {"role", {"head nurse"}, 1},
    {"role", {"nurse"}, 0},
    {"role", {"head"}, 0},
    {"nul", {"nurse"}, 0},                         /* an embedded NUL is not an end */
    {"empty", {"x"}, 0},
    /* scope lists */
    {"scope", {"visits:write"}, 1},
    {"scope", {"patients:read"}, 1},
    {"scope", {"visits"}, 0},
    {"scope", {"visits:write patients:read"}, 0},
    {"scope", {""}, 0},
    {"scp", {"b"}, 1},
    {"scope", {"x", "y", "patients:read"}, 1},
    /* arrays and nesting */
    {"roles", {"nurse"}, 1},
    {"roles", {"7"}, 1},
    {"roles", {"false"}, 1},
    {"roles", {"doctor"}, 0},
    {"listnul", {"nurse"}, 0},
    {"realm_access.roles", {"admin", "doctor"}, 1},
    {"realm_access.roles", {"nurse"}, 0},
    {"realm_access.deep.unit", {"icu"}, 1},
    {"https://hospital.example/roles", {"pharmacist"}, 1},
    {"a.b", {"literal"}, 1},
    {"a.b", {"nested"}, 0},
    /* other types */
    {"uid", {"42"}, 1},
    {"admin", {"true"}, 1},
    {"obj", {"{}"}, 0},
    {"nil", {"null"}, 0},
    {"real", {"1.5"}, 0},
    {"missing", {"x"}, 0},
    {"sub", {NULL}, 0},                            /* no values: nothing to match */
};

static void test_has(void **state)
{
    size_t i, n;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (n = 0; n < 4 && cases[i].values[n]; n++)
            ;
        if (clinic_claim_has(claims, cases[i].name, cases[i].values, n) != cases[i].want)
            fail_msg("case %zu: claim %s, first value %s: expected %d", i, cases[i].name,
                     n ? cases[i].values[0] : "(none)", cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_exact_and_dotted),
        cmocka_unit_test(test_scalar),
        cmocka_unit_test(test_has),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
