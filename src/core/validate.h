/*
 * Request body parsing and the field rules of both routes, free of httpd
 * headers: the unit tests and the fuzz targets link this file alone.
 */
#ifndef CLINIC_VALIDATE_H
#define CLINIC_VALIDATE_H

#include <stddef.h>
#include <jansson.h>
#include "datetime.h"

#define CLINIC_JSON_MAX_DEPTH 32
#define CLINIC_STATUS_MAX 100

/* Parse a body into any JSON value. Rejects duplicate keys, \u0000, invalid
 * UTF-8 and nesting deeper than CLINIC_JSON_MAX_DEPTH. On failure returns
 * NULL with "JSON parse error - ..." in err. */
json_t *clinic_json_parse(const char *buf, size_t len, char *err, size_t errlen);

/* The Python type name DRF would report for a JSON value. */
const char *clinic_json_pytype(const json_t *v);

/* Unicode-aware whitespace trim (as Python's str.strip) and code-point count. */
void clinic_utf8_trim(const char **s, size_t *len);
size_t clinic_utf8_chars(const char *s, size_t len);
int clinic_utf8_valid(const char *s, size_t len);

/* ---- POST /visits ---- */
#define CLINIC_PK_OK 0          /* pk holds a value worth looking up */
#define CLINIC_PK_ABSENT_ROW 1  /* well-formed but cannot exist (out of range) */

typedef struct {
    /* patient */
    long long pk;
    int pk_state;                 /* CLINIC_PK_*, meaningful when !err_patient */
    char pk_text[64];             /* the pk as the client wrote it (for the message) */
    /* status, trimmed: points into the parsed body */
    const char *status;
    size_t status_len;
    /* visit date */
    const char *date_key;         /* "visit_date" or "date" */
    int when_given;
    clinic_time_t when;
    /* errors, NULL when the field is fine */
    const char *err_patient;
    const char *err_date;
    const char *err_status;
    const char *err_nonfield;
} clinic_visit_in_t;

extern const char CLINIC_MSG_DATE_FORMAT[];

/* Apply the field rules. Returns the number of field errors (the pk's
 * existence is the caller's to check). */
int clinic_visit_validate(json_t *body, int offset, clinic_visit_in_t *v);

/* The DRF error object, keys in model order (non_field_errors only when no
 * field failed). New reference. */
json_t *clinic_visit_errors(const clinic_visit_in_t *v);

/* The DRF message for a pk that does not exist. */
void clinic_visit_pk_missing(clinic_visit_in_t *v, char *buf, size_t buflen);

/* ---- POST /patients/add_and_link ---- */
#define CLINIC_NAME_MAX 255
#define CLINIC_UID_MAX 128

/* Which documented check failed (docs/API.md §5), 0 when none. */
enum {
    CLINIC_LINK_OK = 0,
    CLINIC_LINK_MISSING_APPOINTMENT = 3,
    CLINIC_LINK_MISSING_UID = 4,
    CLINIC_LINK_MISSING_NAMES = 5,
    CLINIC_LINK_INVALID_FIELD = 6
};

typedef struct {
    char appointment_id[25];      /* lowercased */
    const char *first, *last;     /* trimmed, pointing into the body */
    size_t first_len, last_len;
    const char *dob;              /* "YYYY-MM-DD" or NULL */
    const char *medical_history;  /* NULL when absent */
    const char *current_medications;
    json_t *address, *insurance, *contact;   /* borrowed; NULL when absent */
    int failed;                   /* CLINIC_LINK_* */
    char message[160];            /* the error text when failed */
} clinic_link_in_t;

/* Apply checks 3 to 6 in order to the body and the decoded uid (NULL when
 * absent). Returns in->failed. */
int clinic_link_validate(json_t *body, const char *uid, size_t uid_len,
                         clinic_link_in_t *in);

/* The success data object, keys in the seed's order. New reference. */
json_t *clinic_link_data(const clinic_link_in_t *in, const char *id, const char *uid);

#endif
