/* Unit tests for src/claims.c: the lookup behind ClinicUserClaim and the test behind
   `Require clinic-claim`, on claims parsed from JSON text as a verified token's would be. */
#include <setjmp.h>
#include <stdarg.h>
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

/* has(name, v1, v2, ..., NULL) */
static int has(const char *name, ...)
{
    const char *values[8];
    size_t n = 0;
    va_list ap;

    va_start(ap, name);
    while (n < 8 && (values[n] = va_arg(ap, const char *)))
        n++;
    va_end(ap);
    return clinic_claim_has(claims, name, values, n);
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

static void test_string_claims_compare_whole(void **state)
{
    (void)state;
    assert_true(has("sub", "nurse-7", NULL));
    assert_false(has("sub", "nurse", NULL));
    assert_true(has("role", "head nurse", NULL));
    assert_false(has("role", "nurse", NULL));        /* only scope/scp are lists */
    assert_false(has("role", "head", NULL));
    assert_false(has("nul", "nurse", NULL));         /* an embedded NUL is not an end */
    assert_false(has("empty", "x", NULL));
    assert_false(has("sub", "NURSE-7", NULL));       /* case matters */
}

static void test_scope_lists(void **state)
{
    (void)state;
    assert_true(has("scope", "visits:write", NULL));
    assert_true(has("scope", "patients:read", NULL));
    assert_false(has("scope", "visits", NULL));
    assert_false(has("scope", "visits:write patients:read", NULL));
    assert_false(has("scope", "", NULL));
    assert_true(has("scp", "b", NULL));
    assert_true(has("scope", "x", "y", "patients:read", NULL));
}

static void test_arrays_and_nesting(void **state)
{
    (void)state;
    assert_true(has("roles", "nurse", NULL));
    assert_true(has("roles", "7", NULL));
    assert_true(has("roles", "false", NULL));
    assert_false(has("roles", "doctor", NULL));
    assert_false(has("listnul", "nurse", NULL));
    assert_true(has("realm_access.roles", "admin", "doctor", NULL));
    assert_false(has("realm_access.roles", "nurse", NULL));
    assert_true(has("realm_access.deep.unit", "icu", NULL));
    assert_true(has("https://hospital.example/roles", "pharmacist", NULL));
    assert_true(has("a.b", "literal", NULL));
    assert_false(has("a.b", "nested", NULL));
}

static void test_other_types_never_match(void **state)
{
    (void)state;
    assert_true(has("uid", "42", NULL));
    assert_true(has("admin", "true", NULL));
    assert_false(has("obj", "{}", NULL));
    assert_false(has("nil", "null", NULL));
    assert_false(has("real", "1.5", NULL));
    assert_false(has("missing", "x", NULL));
    assert_false(has("sub", NULL));                  /* no values: nothing to match */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_exact_and_dotted),
        cmocka_unit_test(test_scalar),
        cmocka_unit_test(test_string_claims_compare_whole),
        cmocka_unit_test(test_scope_lists),
        cmocka_unit_test(test_arrays_and_nesting),
        cmocka_unit_test(test_other_types_never_match),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
