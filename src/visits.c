/*
 * POST /visits: validate, look the patient up, insert the visit, answer the
 * Django REST framework's array with the nested patient. On PostgreSQL a
 * request without other field errors takes one statement (clinic_visit_one
 * inserts the visit from the patient row and returns both); SQLite, and a
 * request whose 400 must also name a missing patient, read the patient first.
 */
#include "clinic.h"
#include "db.h"
#include "idempotency.h"
#include "http_protocol.h"
#include "validate.h"

enum { P_ID, P_PREFIX, P_NAME, P_IDNUM, P_CONTACT, P_GENDER, P_DOB, P_POOR,
       P_BS2, P_SABAI, P_ALLERGY, P_FACE, P_PICTURE, P_VISIT_ID /* clinic_visit_one */ };

/* A database string as JSON: null for NULL; flags text that is not UTF-8. */
static json_t *dbstr(const char *v, int *bad)
{
    json_t *j;

    if (!v)
        return json_null();
    j = json_string(v);
    if (!j) {
        *bad = 1;
        return json_null();
    }
    return j;
}

static json_t *picture_url(request_rec *r, const clinic_dir_conf *conf,
                           const char *v, int *bad)
{
    size_t n;

    if (!v || !conf->picture_base || strncmp(v, "http://", 7) == 0 ||
        strncmp(v, "https://", 8) == 0)
        return dbstr(v, bad);
    n = strlen(conf->picture_base);
    while (n && conf->picture_base[n - 1] == '/')
        n--;
    while (*v == '/')
        v++;
    return dbstr(apr_psprintf(r->pool, "%.*s/%s", (int)n, conf->picture_base, v), bad);
}

/* The nested patient, keys in the documented order. NULL when a stored
 * value cannot be shown (bad timestamp, text that is not UTF-8). */
static json_t *patient_json(clinic_req_t *c, clinic_db_t *db, apr_dbd_row_t *row)
{
    request_rec *r = c->r;
    const char *id = clinic_db_col(db, row, P_ID);
    const char *prefix = clinic_db_col(db, row, P_PREFIX);
    const char *name = clinic_db_col(db, row, P_NAME);
    const char *contact = clinic_db_col(db, row, P_CONTACT);
    const char *dob = clinic_db_col(db, row, P_DOB);
    char iso[CLINIC_ISO_MAX];
    const char *pid;
    clinic_time_t t;
    apr_int64_t pk;
    json_t *p;
    int bad = 0;

    if (!id || !prefix || !name || !dob || clinic_parse_db_timestamp(dob, &t) != 0) {
        clinic_error(r, "patient row has an unreadable id or date_of_birth "
                     "(PostgreSQL must use DateStyle ISO)");
        return NULL;
    }
    clinic_format_iso(t, c->conf->time_offset, iso);
    pk = apr_atoi64(id);
    pid = apr_psprintf(r->pool, "%s%04" APR_INT64_T_FMT, prefix, pk);
    p = json_object();
    json_object_set_new_nocheck(p, "model", json_string_nocheck("clinicmodels.patient"));
    json_object_set_new_nocheck(p, "pk", json_integer(pk));
    json_object_set_new_nocheck(p, "village_prefix", dbstr(prefix, &bad));
    json_object_set_new_nocheck(p, "name", dbstr(name, &bad));
    json_object_set_new_nocheck(p, "identification_number", dbstr(clinic_db_col(db, row, P_IDNUM), &bad));
    json_object_set_new_nocheck(p, "contact_no", dbstr(contact, &bad));
    json_object_set_new_nocheck(p, "gender", dbstr(clinic_db_col(db, row, P_GENDER), &bad));
    json_object_set_new_nocheck(p, "date_of_birth", json_string_nocheck(iso));
    json_object_set_new_nocheck(p, "poor", dbstr(clinic_db_col(db, row, P_POOR), &bad));
    json_object_set_new_nocheck(p, "bs2", dbstr(clinic_db_col(db, row, P_BS2), &bad));
    json_object_set_new_nocheck(p, "sabai", dbstr(clinic_db_col(db, row, P_SABAI), &bad));
    json_object_set_new_nocheck(p, "drug_allergy", dbstr(clinic_db_col(db, row, P_ALLERGY), &bad));
    json_object_set_new_nocheck(p, "face_encodings", dbstr(clinic_db_col(db, row, P_FACE), &bad));
    json_object_set_new_nocheck(p, "picture",
                        picture_url(r, c->conf, clinic_db_col(db, row, P_PICTURE), &bad));
    json_object_set_new_nocheck(p, "filter_string",
                        dbstr(apr_pstrcat(r->pool, pid, prefix, id, " ",
                                          contact ? contact : "", " ", name, NULL), &bad));
    json_object_set_new_nocheck(p, "patient_id", dbstr(pid, &bad));
    json_object_set_new_nocheck(p, "confidence", json_string_nocheck(""));
    if (bad) {
        json_decref(p);
        clinic_error(r, "patient row holds text that is not UTF-8");
        return NULL;
    }
    return p;
}

/* The database steps, each a unit clinic_db_run may run twice. */
typedef struct {
    clinic_req_t *c;
    const char *args[3];     /* pk, when (UTC), status */
    apr_dbd_row_t *patient;  /* the patient row, NULL if none */
    json_t *patient_json;
    const char *date;        /* the visit's date as answered */
    clinic_idem_t *idem;
    const char *answer;      /* the 200 body, serialised */
    const char *visit_id;    /* the inserted row's id */
    int unreadable;          /* the patient row cannot be shown: 500, nothing kept */
} visit_work_t;

static int find_patient(clinic_db_t *db, void *arg)
{
    visit_work_t *w = arg;
    apr_dbd_results_t *res;
    int rc = clinic_db_select(db, CLINIC_SQL_PATIENT_GET, w->args, &res);

    if (rc == CLINIC_DB_OK && clinic_db_row(db, res, &w->patient) != CLINIC_DB_OK)
        w->patient = NULL;
    return rc;
}

/* Serialise the answer for the visit inserted; with an Idempotency-Key,
 * store it and commit the key's transaction. */
static int answer_visit(clinic_db_t *db, visit_work_t *w, const char *id)
{
    json_t *visit;
    int rc;

    w->visit_id = apr_pstrdup(db->r->pool, id);
    visit = json_object();
    json_object_set_new_nocheck(visit, "id", json_integer(apr_atoi64(id)));
    json_object_set_nocheck(visit, "patient", w->patient_json);
    json_object_set_new_nocheck(visit, "date", json_string_nocheck(w->date));
    json_object_set_new_nocheck(visit, "status", json_string(w->args[2]));
    w->answer = clinic_json_text(db->r->pool, json_pack("[o]", visit));
    if (!w->answer)
        return CLINIC_DB_ERROR;
    if (!w->idem->active)
        return CLINIC_DB_OK;
    if ((rc = clinic_idem_finish(db, w->idem, HTTP_OK, w->answer)) != CLINIC_DB_OK)
        return rc;
    return clinic_db_end(db, 0);
}

/* Insert the visit for the patient found before; with an Idempotency-Key,
 * the claim, the insert and the stored answer are one transaction. */
static int insert_visit(clinic_db_t *db, void *arg)
{
    visit_work_t *w = arg;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    const char *id;
    int rc;

    if ((rc = clinic_idem_begin(db, w->idem)) != CLINIC_DB_OK ||
        w->idem->verdict != CLINIC_KEY_NEW)
        return rc;
    if ((rc = clinic_db_select(db, CLINIC_SQL_VISIT_INSERT, w->args, &res)) != CLINIC_DB_OK)
        return rc;
    if (clinic_db_row(db, res, &row) != CLINIC_DB_OK || !(id = clinic_db_col(db, row, 0)))
        return CLINIC_DB_ERROR;
    return answer_visit(db, w, id);
}

/* The patient row cannot be shown, and the visit was inserted with it: a
 * failed request must write nothing. Inside the key's transaction it is
 * rolled back; in autocommit it is committed already and deleted again. */
static int unshowable(clinic_db_t *db, visit_work_t *w, const char *id)
{
    const char *args[1] = {id};
    int n;

    w->unreadable = 1;
    if (db->in_txn)
        return clinic_db_end(db, 1);
    return clinic_db_exec(db, CLINIC_SQL_VISIT_DELETE, args, &n);
}

/* PostgreSQL: the visit inserted from the patient row by one statement,
 * which returns the row (none: no such patient, nothing inserted). Without
 * an Idempotency-Key it autocommits and is never run twice (it writes). */
static int visit_one(clinic_db_t *db, void *arg)
{
    visit_work_t *w = arg;
    apr_dbd_results_t *res;
    const char *id;
    int rc;

    w->patient = NULL;
    w->unreadable = 0;
    if ((rc = clinic_idem_begin(db, w->idem)) != CLINIC_DB_OK ||
        w->idem->verdict != CLINIC_KEY_NEW)
        return rc;
    if ((rc = clinic_db_select(db, CLINIC_SQL_VISIT_ONE, w->args, &res)) != CLINIC_DB_OK)
        return rc;
    if (clinic_db_row(db, res, &w->patient) != CLINIC_DB_OK) {
        w->patient = NULL;
        return clinic_db_end(db, 1);
    }
    if (!(id = clinic_db_col(db, w->patient, P_VISIT_ID)))
        return CLINIC_DB_ERROR;
    w->patient_json = clinic_json_pool(db->r->pool, patient_json(w->c, db, w->patient));
    if (!w->patient_json)
        return unshowable(db, w, id);
    return answer_visit(db, w, id);
}

/* Who is asking, for Idempotency-Key scoping: the token's subject, else the
 * client address. */
static const char *caller_of(clinic_req_t *c)
{
    json_t *sub = json_object_get(c->claims, "sub");

    if (json_is_string(sub))
        return apr_pstrcat(c->r->pool, "sub:", json_string_value(sub), NULL);
    return apr_pstrcat(c->r->pool, "ip:", c->r->useragent_ip, NULL);
}

/* The visit's time (UTC) and status as inserted, and its date as answered. */
static void fill_visit(clinic_req_t *c, clinic_visit_in_t *v, visit_work_t *w,
                       char *when, char *date)
{
    if (!v->when_given)
        v->when = (clinic_time_t)c->r->request_time;
    clinic_format_iso(v->when, 0, when);
    clinic_format_iso(v->when, c->conf->time_offset, date);
    w->args[1] = when;
    w->args[2] = apr_pstrmemdup(c->r->pool, v->status, v->status_len);
    w->date = date;
}

/* Run the unit that inserts the visit, and answer. */
static int record(clinic_req_t *c, clinic_db_t *db, clinic_visit_in_t *v, visit_work_t *w,
                  int (*work)(clinic_db_t *db, void *arg))
{
    char missing[160];
    int rc;

    if ((rc = clinic_db_run(db, work, w)) != CLINIC_DB_OK)
        return clinic_db_fail(c, rc);
    if (w->idem->verdict != CLINIC_KEY_NEW)
        return clinic_idem_answer(c, w->idem);
    if (!w->patient) {   /* clinic_visit_one found no such patient */
        clinic_visit_pk_missing(v, missing, sizeof missing);
        return clinic_send_json(c, HTTP_BAD_REQUEST, clinic_visit_errors(v));
    }
    if (w->unreadable)
        return clinic_fail_internal(c, "patient row unreadable");
    clinic_audit_record(c->r, CLINIC_NOTE_VISIT, w->visit_id);
    clinic_audit_record(c->r, CLINIC_NOTE_PATIENT, w->args[0]);
    return clinic_send_text(c, HTTP_OK, w->answer);
}

int clinic_visits_handle(request_rec *r)
{
    clinic_req_t c;
    clinic_visit_in_t v;
    clinic_idem_t idem;
    clinic_db_t *db = NULL;
    visit_work_t w;
    char missing[160], when[CLINIC_ISO_MAX], date[CLINIC_ISO_MAX], pk[24];
    int rc, nerr;

    if ((rc = clinic_request_begin(&c, r, CLINIC_SHAPE_DRF)) != CLINIC_GO ||
        (rc = clinic_idem_prepare(&c, &idem, "visits", caller_of(&c))) != CLINIC_GO)
        return rc;
    memset(&w, 0, sizeof w);
    w.c = &c;
    w.idem = &idem;
    nerr = clinic_visit_validate(c.json, c.conf->time_offset, &v);
    if (!v.err_patient && v.pk_state == CLINIC_PK_ABSENT_ROW) {
        clinic_visit_pk_missing(&v, missing, sizeof missing);
        nerr++;
    }
    if (!v.err_patient) {
        /* DRF reports a missing patient together with the other field errors. */
        apr_snprintf(pk, sizeof pk, "%" APR_INT64_T_FMT, (apr_int64_t)v.pk);
        w.args[0] = pk;
        if ((rc = clinic_db_acquire(r, &db)) != CLINIC_DB_OK)
            return clinic_db_fail(&c, rc);
        if (db->pgsql && !nerr && !v.err_nonfield) {
            fill_visit(&c, &v, &w, when, date);
            return record(&c, db, &v, &w, visit_one);
        }
        if ((rc = clinic_db_run(db, find_patient, &w)) != CLINIC_DB_OK)
            return clinic_db_fail(&c, rc);
        if (!w.patient) {
            clinic_visit_pk_missing(&v, missing, sizeof missing);
            nerr++;
        }
    }
    if (nerr || v.err_nonfield)
        return clinic_send_json(&c, HTTP_BAD_REQUEST, clinic_visit_errors(&v));

    w.patient_json = clinic_json_pool(r->pool, patient_json(&c, db, w.patient));
    if (!w.patient_json)
        return clinic_fail_internal(&c, "patient row unreadable");
    fill_visit(&c, &v, &w, when, date);
    return record(&c, db, &v, &w, insert_visit);
}
