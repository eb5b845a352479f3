/*
 * Body parsing and field rules. Messages are the Django REST framework's,
 * so a client written against the Django API reads them unchanged.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "validate.h"

const char CLINIC_MSG_DATE_FORMAT[] =
    "Datetime has wrong format. Use one of these formats instead: "
    "DD MMMM YYYY HH:mm, YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].";

static const char MSG_REQUIRED[] = "This field is required.";
static const char MSG_NULL[] = "This field may not be null.";

/* Nesting depth of raw JSON text, counting brackets outside strings; stops
 * early once past the limit so a 100,000-deep body costs one short scan. */
static int too_deep(const char *buf, size_t len)
{
    int depth = 0, in_str = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        char ch = buf[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '[' || ch == '{') {
            if (++depth > CLINIC_JSON_MAX_DEPTH)
                return 1;
        } else if (ch == ']' || ch == '}') {
            depth--;
        }
    }
    return 0;
}

json_t *clinic_json_parse(const char *buf, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *v;

    if (too_deep(buf, len)) {
        snprintf(err, errlen, "JSON parse error - nesting deeper than %d levels",
                 CLINIC_JSON_MAX_DEPTH);
        return NULL;
    }
    v = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!v)
        snprintf(err, errlen, "JSON parse error - %s: line %d column %d",
                 je.text, je.line, je.column);
    return v;
}

const char *clinic_json_pytype(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:  return "dict";
    case JSON_ARRAY:   return "list";
    case JSON_STRING:  return "str";
    case JSON_INTEGER: return "int";
    case JSON_REAL:    return "float";
    case JSON_TRUE:
    case JSON_FALSE:   return "bool";
    default:           return "NoneType";
    }
}

/* Decode one code point at s[i] of valid UTF-8 (jansson guarantees it). */
static unsigned cp_at(const unsigned char *s, size_t i, size_t *n)
{
    if (s[i] < 0x80) { *n = 1; return s[i]; }
    if (s[i] < 0xE0) { *n = 2; return ((s[i] & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu); }
    if (s[i] < 0xF0) {
        *n = 3;
        return ((s[i] & 0x0Fu) << 12) | ((s[i + 1] & 0x3Fu) << 6) | (s[i + 2] & 0x3Fu);
    }
    *n = 4;
    return ((s[i] & 0x07u) << 18) | ((s[i + 1] & 0x3Fu) << 12) |
           ((s[i + 2] & 0x3Fu) << 6) | (s[i + 3] & 0x3Fu);
}

/* Python's str.isspace(). */
static int is_space(unsigned c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 ||
           c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

void clinic_utf8_trim(const char **sp, size_t *lenp)
{
    const unsigned char *s = (const unsigned char *)*sp;
    size_t len = *lenp, n, start = 0, end;

    while (start < len && is_space(cp_at(s, start, &n)))
        start += n;
    end = len;
    while (end > start) {
        size_t b = end - 1;
        while (b > start && (s[b] & 0xC0) == 0x80)
            b--;
        if (!is_space(cp_at(s, b, &n)))
            break;
        end = b;
    }
    *sp += start;
    *lenp = end - start;
}

int clinic_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, n, k;
    unsigned c;

    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if (s[i] >= 0xC2 && s[i] <= 0xDF)
            n = 2;
        else if (s[i] >= 0xE0 && s[i] <= 0xEF)
            n = 3;
        else if (s[i] >= 0xF0 && s[i] <= 0xF4)
            n = 4;
        else
            return 0;
        if (i + n > len)
            return 0;
        for (k = 1; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        c = cp_at(s, i, &k);
        if ((n == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) ||
            (n == 4 && (c < 0x10000 || c > 0x10FFFF)))
            return 0;
        i += n;
    }
    return 1;
}

size_t clinic_utf8_chars(const char *s, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

/* ---- POST /visits ---- */

static void check_patient(json_t *p, clinic_visit_in_t *v)
{
    v->pk_state = CLINIC_PK_OK;
    if (!p) {
        v->err_patient = MSG_REQUIRED;
        return;
    }
    if (json_is_null(p) || (json_is_string(p) && json_string_length(p) == 0)) {
        v->err_patient = MSG_NULL;   /* DRF turns "" into None for relations */
        return;
    }
    if (json_is_integer(p)) {
        v->pk = json_integer_value(p);
        snprintf(v->pk_text, sizeof v->pk_text, "%" JSON_INTEGER_FORMAT, v->pk);
    } else if (json_is_string(p) && strspn(json_string_value(p), "0123456789") ==
                                        json_string_length(p)) {
        const char *s = json_string_value(p);
        size_t i, n = json_string_length(p);
        long long pk = 0;
        for (i = 0; i < n && pk <= INT_MAX; i++)
            pk = pk * 10 + (s[i] - '0');
        v->pk = pk;
        snprintf(v->pk_text, sizeof v->pk_text, "%.*s", (int)(n < 60 ? n : 60), s);
    } else {
        v->err_patient = json_is_string(p) ? "Incorrect type. Expected pk value, received str."
                       : json_is_real(p)   ? "Incorrect type. Expected pk value, received float."
                       : json_is_boolean(p) ? "Incorrect type. Expected pk value, received bool."
                       : json_is_array(p)  ? "Incorrect type. Expected pk value, received list."
                       : "Incorrect type. Expected pk value, received dict.";
        return;
    }
    /* Patient ids are 32-bit integers: anything outside cannot exist. */
    if (v->pk < INT_MIN || v->pk > INT_MAX)
        v->pk_state = CLINIC_PK_ABSENT_ROW;
}

static void check_status(json_t *s, clinic_visit_in_t *v)
{
    const char *p;
    size_t n;

    if (!s) {
        v->err_status = MSG_REQUIRED;
        return;
    }
    if (json_is_null(s)) {
        v->err_status = MSG_NULL;
        return;
    }
    if (!json_is_string(s)) {
        v->err_status = "Not a valid string.";
        return;
    }
    p = json_string_value(s);
    n = json_string_length(s);
    clinic_utf8_trim(&p, &n);
    if (n == 0)
        v->err_status = "This field may not be blank.";
    else if (clinic_utf8_chars(p, n) > CLINIC_STATUS_MAX)
        v->err_status = "Ensure this field has no more than 100 characters.";
    v->status = p;
    v->status_len = n;
}

/* An instant that can be stored (UTC) and answered (in offset): years 0001-9999 both. */
static int storable(clinic_time_t when, int offset)
{
    char buf[CLINIC_ISO_MAX];

    return clinic_format_iso(when, 0, buf) > 0 && clinic_format_iso(when, offset, buf) > 0;
}

static void check_date(json_t *body, int offset, clinic_visit_in_t *v)
{
    json_t *vd = json_object_get(body, "visit_date");
    json_t *d = json_object_get(body, "date");
    json_t *val;

    if (vd && d) {
        v->date_key = "visit_date";
        v->err_nonfield = "Give visit_date or date, not both.";
        return;
    }
    v->date_key = d ? "date" : "visit_date";
    val = d ? d : vd;
    if (!val)
        return;
    if (json_is_null(val)) {
        v->err_date = MSG_NULL;
        return;
    }
    if (!json_is_string(val) ||
        clinic_parse_visit_date(json_string_value(val), json_string_length(val),
                                offset, &v->when) != 0 ||
        !storable(v->when, offset)) {
        v->err_date = CLINIC_MSG_DATE_FORMAT;
        return;
    }
    v->when_given = 1;
}

int clinic_visit_validate(json_t *body, int offset, clinic_visit_in_t *v)
{
    memset(v, 0, sizeof *v);
    check_patient(json_object_get(body, "patient"), v);
    check_status(json_object_get(body, "status"), v);
    check_date(body, offset, v);
    return (v->err_patient != NULL) + (v->err_status != NULL) + (v->err_date != NULL);
}

void clinic_visit_pk_missing(clinic_visit_in_t *v, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "Invalid pk \"%s\" - object does not exist.", v->pk_text);
    v->err_patient = buf;
}

static void add_error(json_t *obj, const char *key, const char *msg)
{
    if (msg)
        json_object_set_new(obj, key, json_pack("[s]", msg));
}

json_t *clinic_visit_errors(const clinic_visit_in_t *v)
{
    json_t *e = json_object();

    add_error(e, "patient", v->err_patient);
    add_error(e, v->date_key, v->err_date);
    add_error(e, "status", v->err_status);
    if (json_object_size(e) == 0)
        add_error(e, "non_field_errors", v->err_nonfield);
    return e;
}

/* ---- POST /patients/add_and_link ---- */

static int is_hex24(const char *s, size_t n)
{
    return n == 24 && strspn(s, "0123456789abcdefABCDEF") == 24;
}

/* A field that must be a string when present: 0 absent/null, 1 string,
 * -1 another type. */
static int opt_string(json_t *body, const char *key, const char **s, size_t *n)
{
    json_t *v = json_object_get(body, key);

    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    *s = json_string_value(v);
    *n = json_string_length(v);
    return 1;
}

/* An object whose values are all strings, or absent/null. */
static int opt_object(json_t *body, const char *key, json_t **out)
{
    json_t *v = json_object_get(body, key), *m;
    const char *k;

    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return -1;
    json_object_foreach(v, k, m) {
        if (!json_is_string(m))
            return -1;
    }
    *out = v;
    return 1;
}

static int fail(clinic_link_in_t *in, int step, const char *msg)
{
    in->failed = step;
    snprintf(in->message, sizeof in->message, "%s", msg);
    return step;
}

static int invalid(clinic_link_in_t *in, const char *field, const char *rule)
{
    in->failed = CLINIC_LINK_INVALID_FIELD;
    snprintf(in->message, sizeof in->message, "Invalid field: %s (%s)", field, rule);
    return in->failed;
}

/* Present and non-blank after trimming (strings only; other types are
 * present, and fail later as a wrong type). */
static int present(json_t *body, const char *key, const char **s, size_t *n)
{
    int t = opt_string(body, key, s, n);

    if (t == 1)
        clinic_utf8_trim(s, n);
    return t == -1 || (t == 1 && *n > 0);
}

int clinic_link_validate(json_t *body, const char *uid, size_t uid_len,
                         clinic_link_in_t *in)
{
    const char *appt = NULL, *dob = NULL;
    size_t appt_n = 0, dob_n = 0, n, i;
    int t;

    memset(in, 0, sizeof *in);
    if (!present(body, "appointment_id", &appt, &appt_n))
        return fail(in, CLINIC_LINK_MISSING_APPOINTMENT, "Missing appointment_id");
    if (!uid || uid_len == 0)
        return fail(in, CLINIC_LINK_MISSING_UID, "Missing doctor_id (uid)");
    if (!present(body, "firstName", &in->first, &in->first_len) ||
        !present(body, "lastName", &in->last, &in->last_len))
        return fail(in, CLINIC_LINK_MISSING_NAMES,
                    "Missing required patient fields (firstName, lastName)");

    if (!json_is_string(json_object_get(body, "appointment_id")) || !is_hex24(appt, appt_n))
        return invalid(in, "appointment_id", "must be 24 hexadecimal digits");
    for (i = 0; i < 24; i++)
        in->appointment_id[i] = (char)((appt[i] >= 'A' && appt[i] <= 'F') ? appt[i] + 32 : appt[i]);
    if (!clinic_utf8_valid(uid, uid_len) || clinic_utf8_chars(uid, uid_len) > CLINIC_UID_MAX)
        return invalid(in, "uid", "must be UTF-8 text of at most 128 characters");
    for (i = 0; i < uid_len; i++) {
        if ((unsigned char)uid[i] < 0x20 || uid[i] == 0x7F)
            return invalid(in, "uid", "must not hold control characters");
    }
    if (!json_is_string(json_object_get(body, "firstName")) ||
        clinic_utf8_chars(in->first, in->first_len) > CLINIC_NAME_MAX)
        return invalid(in, "firstName", "must be a string of at most 255 characters");
    if (!json_is_string(json_object_get(body, "lastName")) ||
        clinic_utf8_chars(in->last, in->last_len) > CLINIC_NAME_MAX)
        return invalid(in, "lastName", "must be a string of at most 255 characters");
    t = opt_string(body, "dateOfBirth", &dob, &dob_n);
    if (t == -1 || (t == 1 && clinic_parse_date_ymd(dob, dob_n, NULL, NULL, NULL) != 0))
        return invalid(in, "dateOfBirth", "must be a real date written YYYY-MM-DD");
    in->dob = dob;
    if (opt_string(body, "medicalHistory", &in->medical_history, &n) == -1)
        return invalid(in, "medicalHistory", "must be a string");
    if (opt_string(body, "currentMedications", &in->current_medications, &n) == -1)
        return invalid(in, "currentMedications", "must be a string");
    if (opt_object(body, "address", &in->address) == -1)
        return invalid(in, "address", "must be an object of strings");
    if (opt_object(body, "insurance", &in->insurance) == -1)
        return invalid(in, "insurance", "must be an object of strings");
    if (opt_object(body, "contact", &in->contact) == -1)
        return invalid(in, "contact", "must be an object of strings");
    return CLINIC_LINK_OK;
}

json_t *clinic_link_data(const clinic_link_in_t *in, const char *id, const char *uid)
{
    json_t *d = json_object();

    json_object_set_new(d, "_id", json_string(id));
    json_object_set_new(d, "doctor_id", json_string(uid));
    json_object_set_new(d, "firstName", json_stringn(in->first, in->first_len));
    json_object_set_new(d, "lastName", json_stringn(in->last, in->last_len));
    if (in->dob)
        json_object_set_new(d, "dateOfBirth", json_string(in->dob));
    if (in->address)
        json_object_set(d, "address", in->address);
    if (in->insurance)
        json_object_set(d, "insurance", in->insurance);
    if (in->medical_history)
        json_object_set_new(d, "medicalHistory", json_string(in->medical_history));
    if (in->current_medications)
        json_object_set_new(d, "currentMedications", json_string(in->current_medications));
    if (in->contact)
        json_object_set(d, "contact", in->contact);
    return d;
}
