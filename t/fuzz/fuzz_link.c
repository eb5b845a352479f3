/*
 * libFuzzer target for the POST /patients/add_and_link rules in src/core/validate.c.
 *
 * The input is split at its first '\n': the bytes before are the decoded uid query value
 * (empty -> NULL, "no uid"), the bytes after are the request body. With no '\n' at all there
 * is no uid and the whole input is the body. The uid is handed to clinic_link_validate in an
 * exact-size buffer (an over-read is an ASan report); clinic_link_data gets a NUL-terminated
 * copy, as the module passes it.
 *
 * Path: clinic_json_parse -> (object) clinic_link_validate -> (OK) clinic_link_data -> json_dumps.
 *
 * Properties checked (abort() on violation):
 *   - the result is one of the documented CLINIC_LINK_* codes and equals in->failed;
 *   - a failure leaves a non-empty message, success an empty one;
 *   - on success: appointment_id is 24 lowercase hex digits; the data object holds _id,
 *     doctor_id (= uid), firstName and lastName as strings with the validated text, the
 *     optional members exactly when validated, and serializes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "validate.h"

#define ID "65f8a1b2c3d4e5f6789012cd"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_link: %s\n", what);
    abort();
}

static void check_string(json_t *d, const char *key, const char *s, size_t n)
{
    json_t *v = json_object_get(d, key);

    if (!json_is_string(v))
        fail("a required data member is missing or not a string");
    if (json_string_length(v) != n || memcmp(json_string_value(v), s, n) != 0)
        fail("a data member differs from the validated text");
}

static void check_data(json_t *d, const clinic_link_in_t *in, const char *uid, size_t uid_len)
{
    char *s;

    if (!json_is_object(d))
        fail("clinic_link_data did not return an object");
    check_string(d, "_id", ID, strlen(ID));
    check_string(d, "doctor_id", uid, uid_len);
    check_string(d, "firstName", in->first, in->first_len);
    check_string(d, "lastName", in->last, in->last_len);
    if (!!in->dob != !!json_object_get(d, "dateOfBirth") ||
        !!in->address != !!json_object_get(d, "address") ||
        !!in->insurance != !!json_object_get(d, "insurance") ||
        !!in->contact != !!json_object_get(d, "contact") ||
        !!in->medical_history != !!json_object_get(d, "medicalHistory") ||
        !!in->current_medications != !!json_object_get(d, "currentMedications"))
        fail("optional data members differ from the validated fields");
    s = json_dumps(d, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        fail("json_dumps of the data object failed");
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    const char *body_p = (const char *)data;
    size_t body_n = size, uid_n = 0, i;
    char *uid = NULL, *uid_z = NULL, err[512];
    clinic_link_in_t in;
    json_t *body, *d;
    int rc;

    if (nl) {
        uid_n = (size_t)(nl - data);
        body_p = (const char *)nl + 1;
        body_n = size - uid_n - 1;
        if (uid_n) {
            uid = malloc(uid_n);                 /* exact size */
            memcpy(uid, data, uid_n);
            uid_z = malloc(uid_n + 1);
            memcpy(uid_z, data, uid_n);
            uid_z[uid_n] = '\0';
        }
    }

    err[0] = '\0';
    body = clinic_json_parse(body_p, body_n, err, sizeof err);
    if (!body) {
        if (strncmp(err, "JSON parse error - ", 19) != 0)
            fail("parse failure without a JSON parse error message");
        goto out;
    }
    if (!json_is_object(body))
        goto out;                                /* the module answers 400 before the rules */

    rc = clinic_link_validate(body, uid, uid_n, &in);
    if (rc != in.failed)
        fail("return value differs from in->failed");
    switch (rc) {
    case CLINIC_LINK_OK:
        if (in.message[0])
            fail("message set on success");
        break;
    case CLINIC_LINK_MISSING_APPOINTMENT:
    case CLINIC_LINK_MISSING_UID:
    case CLINIC_LINK_MISSING_NAMES:
    case CLINIC_LINK_INVALID_FIELD:
        if (!in.message[0] || !memchr(in.message, '\0', sizeof in.message))
            fail("failure without a message");
        break;
    default:
        fail("undocumented result code");
    }
    if (rc == CLINIC_LINK_MISSING_UID && uid)
        fail("missing uid reported with a uid given");
    if (rc == CLINIC_LINK_OK) {
        if (!uid)
            fail("accepted without a uid");
        if (strlen(in.appointment_id) != 24)
            fail("appointment_id is not 24 characters");
        for (i = 0; i < 24; i++)
            if (!strchr("0123456789abcdef", in.appointment_id[i]))
                fail("appointment_id is not lowercase hex");
        if (!in.first_len || !in.last_len)
            fail("accepted a blank name");
        d = clinic_link_data(&in, ID, uid_z);
        check_data(d, &in, uid_z, uid_n);
        json_decref(d);
    }
out:
    json_decref(body);
    free(uid);
    free(uid_z);
    return 0;
}
