/*
 * POST /patients/add_and_link?uid=DOCTOR: create a practice patient and link
 * it to the doctor's free appointment. PostgreSQL: one statement
 * (clinic_link_one) links by a conditional UPDATE, inserts the patient only
 * when it linked or there is no such appointment, and returns the
 * appointment as of its start to tell "not found" (the patient is kept),
 * "not yours" and "already linked" (nothing written) apart; it autocommits,
 * or runs in the Idempotency-Key's transaction. SQLite: one transaction,
 * decided by the conditional UPDATE; only when nothing was linked is the
 * appointment read, and "not yours" and "already linked" are rolled back.
 */
#include "clinic.h"
#include "db.h"
#include "idempotency.h"
#include "objectid.h"
#include "query.h"
#include "http_protocol.h"
#include "validate.h"

static const char *const step_codes[] = {
    [CLINIC_LINK_MISSING_APPOINTMENT] = "MISSING_APPOINTMENT_ID",
    [CLINIC_LINK_MISSING_UID] = "MISSING_DOCTOR_ID",
    [CLINIC_LINK_MISSING_NAMES] = "MISSING_PATIENT_FIELDS",
    [CLINIC_LINK_INVALID_FIELD] = "INVALID_FIELD",
};

/* The uid= of the query string, percent-decoded (query.h); *bad is 1 when
 * its encoding is broken (the raw text is returned then), 2 when uid is
 * given more than once (ambiguous: the first is returned). */
static const char *query_uid(request_rec *r, int *bad)
{
    size_t n;
    int count;
    const char *raw = clinic_query_param(r->args, "uid", &n, &count);
    char *v;

    *bad = count > 1 ? 2 : 0;
    if (!raw)
        return NULL;
    v = apr_pstrmemdup(r->pool, raw, n);
    if (clinic_form_decode(v) != 0) {
        *bad = *bad ? *bad : 1;
        return apr_pstrmemdup(r->pool, raw, n);
    }
    return v;
}

static const char *json_text(request_rec *r, json_t *v)
{
    return v ? clinic_json_text(r->pool, json_incref(v)) : NULL;
}

/* What the transaction decided. */
enum { LINKED, NOT_FOUND, NOT_OWNER, ALREADY_LINKED };

static const struct {
    int status;
    const char *code, *error;
} refusals[] = {
    [NOT_OWNER] = {HTTP_FORBIDDEN, "NOT_APPOINTMENT_OWNER", "Doctor does not own this appointment"},
    [ALREADY_LINKED] = {HTTP_CONFLICT, "APPOINTMENT_ALREADY_LINKED",
                        "Appointment already linked to a patient"},
};

typedef struct {
    const char *patient[11];   /* the practice_patients row */
    const char *uid;
    const char *appointment;
    json_t *data;              /* the patient as answered (LINKED, NOT_FOUND) */
    const char *answer;        /* the answer given, serialised */
    clinic_idem_t *idem;
    int outcome;
} link_work_t;

static const int outcome_status[] = {HTTP_OK, HTTP_NOT_FOUND, HTTP_FORBIDDEN, HTTP_CONFLICT};
static const char *const outcome_code[] = {
    [LINKED] = "LINKED", [NOT_FOUND] = "APPOINTMENT_NOT_FOUND",
    [NOT_OWNER] = "NOT_APPOINTMENT_OWNER", [ALREADY_LINKED] = "APPOINTMENT_ALREADY_LINKED"};

/* Serialise the answer of the outcome decided, and only that one (inside
 * the transaction, so that an Idempotency-Key stores these very bytes). */
static int decide(clinic_db_t *db, link_work_t *w, int outcome)
{
    json_t *body;

    w->outcome = outcome;
    if (outcome == LINKED)
        body = json_pack("{s:b, s:O}", "success", 1, "data", w->data);
    else if (outcome == NOT_FOUND)
        body = json_pack("{s:b, s:s, s:s, s:O}", "success", 0,
                         "error", "Appointment not found (patient created but not linked)",
                         "code", "APPOINTMENT_NOT_FOUND", "data", w->data);
    else
        body = json_pack("{s:b, s:s, s:s}", "success", 0, "error", refusals[outcome].error,
                         "code", refusals[outcome].code);
    w->answer = clinic_json_text(db->r->pool, body);
    return w->answer ? CLINIC_DB_OK : CLINIC_DB_ERROR;
}

/* Store the answer decided (with an Idempotency-Key) and commit. */
static int conclude(clinic_db_t *db, link_work_t *w)
{
    int rc = clinic_idem_finish(db, w->idem, outcome_status[w->outcome], w->answer);

    return rc != CLINIC_DB_OK ? rc : clinic_db_end(db, 0);
}

/* PostgreSQL: clinic_link_one decides and writes; the appointment it read
 * tells the refusals apart. A request that saw the appointment free but
 * lost it to a racer (the UPDATE re-checks the row) linked nothing and
 * inserted nothing: already linked. */
static int link_one(clinic_db_t *db, void *arg)
{
    link_work_t *w = arg;
    const char *args[15] = {w->appointment, w->patient[0], w->appointment, w->uid};
    const char *owner, *linked, *inserted;
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    int rc, outcome;

    memcpy(args + 4, w->patient, sizeof w->patient);
    if ((rc = clinic_idem_begin(db, w->idem)) != CLINIC_DB_OK ||
        w->idem->verdict != CLINIC_KEY_NEW)
        return rc;
    if ((rc = clinic_db_select(db, CLINIC_SQL_LINK_ONE, args, &res)) != CLINIC_DB_OK)
        return rc;
    if (clinic_db_row(db, res, &row) != CLINIC_DB_OK ||
        !(linked = clinic_db_col(db, row, 2)) || !(inserted = clinic_db_col(db, row, 3)))
        return CLINIC_DB_ERROR;
    owner = clinic_db_col(db, row, 0);
    outcome = !strcmp(linked, "1") ? LINKED : !owner ? NOT_FOUND
              : strcmp(owner, w->uid) != 0 ? NOT_OWNER : ALREADY_LINKED;
    if (strcmp(inserted, (outcome == LINKED || outcome == NOT_FOUND) ? "1" : "0") != 0)
        return CLINIC_DB_ERROR;   /* cannot be: the statement is built so */
    if ((rc = decide(db, w, outcome)) != CLINIC_DB_OK)
        return rc;
    return conclude(db, w);
}

/* SQLite: insert the patient; link it only where the appointment exists, is the
 * doctor's and is free; read the appointment only when nothing was linked.
 * Case 8 commits the patient, cases 9 and 10 roll it back. Under an
 * Idempotency-Key the claim is the transaction's first statement and the
 * answer is stored in it; cases 9 and 10 then roll back to a savepoint
 * taken after the claim, so that only the key and its answer commit. */
static int link_txn(clinic_db_t *db, void *arg)
{
    link_work_t *w = arg;
    const char *args[3] = {w->patient[0], w->appointment, w->uid};
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    const char *owner;
    int rc, nrows;

    if ((rc = clinic_db_begin(db)) != CLINIC_DB_OK ||
        (rc = clinic_idem_claim(db, w->idem)) != CLINIC_DB_OK)
        return rc;
    if (w->idem->verdict != CLINIC_KEY_NEW)
        return clinic_db_end(db, 1);
    if ((w->idem->active && (rc = clinic_db_savepoint(db, 0)) != CLINIC_DB_OK) ||
        (rc = clinic_db_exec(db, CLINIC_SQL_PP_INSERT, w->patient, &nrows)) != CLINIC_DB_OK ||
        (rc = clinic_db_exec(db, CLINIC_SQL_APPT_LINK, args, &nrows)) != CLINIC_DB_OK)
        return rc;
    if (nrows == 1) {
        if ((rc = decide(db, w, LINKED)) != CLINIC_DB_OK)
            return rc;
    } else {
        args[0] = w->appointment;
        if ((rc = clinic_db_select(db, CLINIC_SQL_APPT_GET, args, &res)) != CLINIC_DB_OK)
            return rc;
        if (clinic_db_row(db, res, &row) != CLINIC_DB_OK) {
            if ((rc = decide(db, w, NOT_FOUND)) != CLINIC_DB_OK)
                return rc;
        } else {
            owner = clinic_db_col(db, row, 0);
            if ((rc = decide(db, w, (!owner || strcmp(owner, w->uid) != 0)
                                        ? NOT_OWNER : ALREADY_LINKED)) != CLINIC_DB_OK)
                return rc;
            if (!w->idem->active)
                return clinic_db_end(db, 1);
            if ((rc = clinic_db_savepoint(db, 1)) != CLINIC_DB_OK)
                return rc;
        }
    }
    return conclude(db, w);
}

/* The transaction's input: the practice_patients row, the doctor, the
 * appointment. */
static void fill_work(request_rec *r, link_work_t *w, const clinic_link_in_t *in,
                      const char *id, const char *uid, const char *created)
{
    memset(w, 0, sizeof *w);
    w->uid = uid;
    w->appointment = in->appointment_id;
    w->patient[0] = id;
    w->patient[1] = uid;
    w->patient[2] = apr_pstrmemdup(r->pool, in->first, in->first_len);
    w->patient[3] = apr_pstrmemdup(r->pool, in->last, in->last_len);
    w->patient[4] = in->dob;
    w->patient[5] = json_text(r, in->address);
    w->patient[6] = json_text(r, in->insurance);
    w->patient[7] = json_text(r, in->contact);
    w->patient[8] = in->medical_history;
    w->patient[9] = in->current_medications;
    w->patient[10] = created;
}

int clinic_link_handle(request_rec *r)
{
    clinic_req_t c;
    clinic_link_in_t in;
    clinic_idem_t idem;
    clinic_db_t *db = NULL;
    link_work_t w;
    char id[CLINIC_OBJECTID_LEN + 1], created[CLINIC_ISO_MAX];
    const char *uid, *claim;
    int rc, bad_uid;

    if ((rc = clinic_request_begin(&c, r, CLINIC_SHAPE_ENVELOPE)) != CLINIC_GO)
        return rc;
    uid = query_uid(r, &bad_uid);
    if (clinic_link_validate(c.json, uid, uid ? strlen(uid) : 0, &in) == CLINIC_LINK_OK &&
        bad_uid)
        return clinic_fail(&c, HTTP_BAD_REQUEST, "INVALID_FIELD",
                           bad_uid == 2 ? "Invalid field: uid (given more than once)"
                                        : "Invalid field: uid (bad percent-encoding)");
    if (in.failed)
        return clinic_fail(&c, HTTP_BAD_REQUEST, step_codes[in.failed], in.message);

    clinic_audit_record(r, CLINIC_NOTE_APPOINTMENT, in.appointment_id);
    claim = CLINIC_UID_CLAIM(c.conf);
    if (c.claims && *claim && !clinic_claim_equals(c.claims, claim, uid))
        return clinic_fail(&c, HTTP_FORBIDDEN, "UID_MISMATCH",
                           "Token does not match doctor_id (uid)");
    if ((rc = clinic_idem_prepare(&c, &idem, "add_and_link",
                                  apr_pstrcat(r->pool, "uid:", uid, NULL))) != CLINIC_GO)
        return rc;

    if (clinic_objectid_new((uint32_t)apr_time_sec(r->request_time), id) != 0)
        return clinic_fail_internal(&c, "no randomness for ObjectIds in this process");
    clinic_format_iso((clinic_time_t)r->request_time, 0, created);
    fill_work(r, &w, &in, id, uid, created);
    w.idem = &idem;
    w.data = clinic_json_pool(r->pool, clinic_link_data(&in, id, uid));
    if (!w.data)
        return clinic_fail_internal(&c, "cannot build the answer");

    if ((rc = clinic_db_acquire(r, &db)) != CLINIC_DB_OK)
        return clinic_db_fail(&c, rc);
    if ((rc = clinic_db_run(db, db->pgsql ? link_one : link_txn, &w)) != CLINIC_DB_OK)
        return clinic_db_fail(&c, rc);
    if (idem.verdict != CLINIC_KEY_NEW)
        return clinic_idem_answer(&c, &idem);
    if (w.outcome == LINKED || w.outcome == NOT_FOUND)
        clinic_audit_record(r, CLINIC_NOTE_PATIENT, id);
    c.outcome = outcome_code[w.outcome];
    return clinic_send_text(&c, outcome_status[w.outcome], w.answer);
}
