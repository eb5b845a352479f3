/*
 * libFuzzer target for the POST /visits body rules in src/core/validate.c.
 *
 * The input is the request body. The client's UTC offset (for naive dates) is taken from its
 * first byte: (data[0] - 128) * 600 seconds, clamped to +-86399, so the same body is also tried
 * at many offsets as the fuzzer mutates leading whitespace.
 *
 * Path: clinic_json_parse -> (object) clinic_visit_validate -> clinic_visit_errors -> json_dumps,
 * then, for a well-formed pk, clinic_visit_pk_missing and the error object again.
 *
 * Properties checked (abort() on violation):
 *   - a failed parse leaves a "JSON parse error - " message;
 *   - clinic_visit_validate returns the number of field errors it set;
 *   - status, when set, lies inside the body's "status" string and is valid UTF-8;
 *   - the error object has one key per field error (non_field_errors only when none),
 *     each a one-string list, and serializes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "validate.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_visits: %s\n", what);
    abort();
}

static int offset_of(const uint8_t *data, size_t size)
{
    int off = size ? ((int)data[0] - 128) * 600 : 0;

    if (off > 86399)
        off = 86399;
    if (off < -86399)
        off = -86399;
    return off;
}

/* The error object's shape: each listed key maps to ["message"]. */
static void check_errors(json_t *e, const clinic_visit_in_t *v)
{
    size_t want = (v->err_patient != NULL) + (v->err_date != NULL) + (v->err_status != NULL);
    const char *k;
    json_t *val;
    char *s;

    if (!json_is_object(e))
        fail("clinic_visit_errors did not return an object");
    if (!want && v->err_nonfield)
        want = 1;
    if (json_object_size(e) != want)
        fail("error object key count differs from the errors set");
    json_object_foreach(e, k, val) {
        if (!json_is_array(val) || json_array_size(val) != 1 ||
            !json_is_string(json_array_get(val, 0)))
            fail("error value is not a one-string list");
    }
    if (v->err_patient && !json_object_get(e, "patient"))
        fail("patient error missing from the object");
    if (v->err_status && !json_object_get(e, "status"))
        fail("status error missing from the object");
    if (v->err_date && !json_object_get(e, v->date_key))
        fail("date error missing from the object");
    s = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        fail("json_dumps of the error object failed");
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    char pkbuf[160];
    clinic_visit_in_t v;
    json_t *body, *e, *st;
    int n, off = offset_of(data, size);

    err[0] = '\0';
    body = clinic_json_parse((const char *)data, size, err, sizeof err);
    if (!body) {
        if (strncmp(err, "JSON parse error - ", 19) != 0)
            fail("parse failure without a JSON parse error message");
        return 0;
    }
    if (!json_is_object(body)) {
        json_decref(body);      /* the module answers 400 "Invalid data" */
        return 0;
    }

    n = clinic_visit_validate(body, off, &v);
    if (n != (v.err_patient != NULL) + (v.err_status != NULL) + (v.err_date != NULL))
        fail("return value differs from the field errors set");
    if (!v.date_key)
        fail("date_key not set");
    if (v.when_given && v.err_date)
        fail("date both given and in error");
    st = json_object_get(body, "status");
    if (v.status) {
        const char *base = json_string_value(st);

        if (!base || v.status < base ||
            v.status + v.status_len > base + json_string_length(st))
            fail("status does not point into the body's status string");
        if (!clinic_utf8_valid(v.status, v.status_len))
            fail("trimmed status is not valid UTF-8");
    }
    if (!v.err_patient && v.pk_state != CLINIC_PK_OK && v.pk_state != CLINIC_PK_ABSENT_ROW)
        fail("bad pk_state");

    e = clinic_visit_errors(&v);
    check_errors(e, &v);
    json_decref(e);

    if (!v.err_patient) {
        /* The pk was well formed but (pretend) no such row: the 400 the module sends. */
        clinic_visit_pk_missing(&v, pkbuf, sizeof pkbuf);
        if (v.err_patient != pkbuf || strncmp(pkbuf, "Invalid pk \"", 12) != 0)
            fail("clinic_visit_pk_missing message");
        e = clinic_visit_errors(&v);
        check_errors(e, &v);
        json_decref(e);
    }

    json_decref(body);
    return 0;
}
