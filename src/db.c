/*
 * mod_dbd glue. The SQL below is the only SQL the module runs; it is written
 * once for PostgreSQL and SQLite alike:
 *  - %d, %s, %pDz (timestamp with time zone), %pDd (date), %pDt (text) give
 *    pgsql typed parameters; sqlite3 binds them all as text;
 *  - JSON goes through CAST(... AS clinic_json_text): a jsonb domain in
 *    PostgreSQL, a name with TEXT affinity in SQLite;
 *  - timestamps travel as ISO 8601 text in UTC.
 */
#include "db.h"
#include "http_protocol.h"
#include "apr_optional.h"

static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;
static APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) *dbd_prepare;

static const struct {
    const char *label;
    const char *sql;
} stmts[CLINIC_SQL_COUNT] = {
    [CLINIC_SQL_PATIENT_GET] = {"clinic_patient_get",
        "SELECT id, village_prefix, name, identification_number, contact_no, gender,"
        " date_of_birth, poor, bs2, sabai, drug_allergy, face_encodings, picture"
        " FROM patients WHERE id = %d"},
    [CLINIC_SQL_VISIT_INSERT] = {"clinic_visit_insert",
        "INSERT INTO visits (patient_id, date, status) VALUES (%d, %pDz, %s)"
        " RETURNING id"},
    [CLINIC_SQL_PP_INSERT] = {"clinic_pp_insert",
        "INSERT INTO practice_patients (id, doctor_id, first_name, last_name,"
        " date_of_birth, address, insurance, contact, medical_history,"
        " current_medications, created_at) VALUES (%s, %s, %s, %s, %pDd,"
        " CAST(%s AS clinic_json_text), CAST(%s AS clinic_json_text),"
        " CAST(%s AS clinic_json_text), %pDt, %pDt, %pDz)"},
    [CLINIC_SQL_APPT_LINK] = {"clinic_appt_link",
        "UPDATE appointments SET patient_id = %s"
        " WHERE id = %s AND doctor_id = %s AND patient_id IS NULL"},
    [CLINIC_SQL_APPT_GET] = {"clinic_appt_get",
        "SELECT doctor_id, patient_id FROM appointments WHERE id = %s"},
};

int clinic_db_init(server_rec *s, int needed)
{
    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    dbd_prepare = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    if (dbd_acquire && dbd_prepare)
        return OK;
    if (!needed)
        return OK;
    ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, APLOGNO(10510)
                 "clinic: mod_dbd is not loaded: add \"LoadModule dbd_module "
                 "modules/mod_dbd.so\" (Debian: a2enmod dbd) and configure DBDriver");
    return HTTP_INTERNAL_SERVER_ERROR;
}

void clinic_db_register_statements(server_rec *s)
{
    int i;

    if (!dbd_prepare)
        return;
    for (; s; s = s->next)
        for (i = 0; i < CLINIC_SQL_COUNT; i++)
            dbd_prepare(s, stmts[i].sql, stmts[i].label);
}

/* Log a driver error: its first line only, since PostgreSQL's DETAIL lines
 * may quote row values (patient data). */
static void log_db_error(clinic_db_t *db, int rv, const char *what)
{
    const char *msg = apr_dbd_error(db->dbd->driver, db->dbd->handle, rv);
    size_t n = msg ? strcspn(msg, "\r\n") : 0;

    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r, APLOGNO(10511)
                  "clinic: %s failed (%d): %.*s", what, rv, (int)n, msg ? msg : "");
}

/* After a failed statement: is the database gone, or was it this statement? */
static int classify(clinic_db_t *db, int rv, const char *what)
{
    log_db_error(db, rv, what);
    if (apr_dbd_check_conn(db->dbd->driver, db->r->pool, db->dbd->handle) != APR_SUCCESS)
        return CLINIC_DB_DOWN;
    return CLINIC_DB_ERROR;
}

int clinic_db_acquire(request_rec *r, clinic_db_t **dbp)
{
    clinic_db_t *db = apr_pcalloc(r->pool, sizeof *db);

    *dbp = db;
    db->r = r;
    db->dbd = dbd_acquire ? dbd_acquire(r) : NULL;
    if (!db->dbd) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APLOGNO(10512)
                      "clinic: no database connection from mod_dbd");
        return CLINIC_DB_DOWN;
    }
    return CLINIC_DB_OK;
}

static apr_dbd_prepared_t *statement(clinic_db_t *db, clinic_sql_t q)
{
    apr_dbd_prepared_t *st = apr_hash_get(db->dbd->prepared, stmts[q].label,
                                          APR_HASH_KEY_STRING);
    if (!st)
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r, APLOGNO(10513)
                      "clinic: statement %s is not prepared on this connection",
                      stmts[q].label);
    return st;
}

static int nargs(const char *sql)
{
    int n = 0;

    for (; *sql; sql++)
        if (*sql == '%' && sql[1] != '%')
            n++;
    return n;
}

int clinic_db_select(clinic_db_t *db, clinic_sql_t q, const char **args,
                     apr_dbd_results_t **res)
{
    apr_dbd_prepared_t *st = statement(db, q);
    int rv;

    if (!st)
        return CLINIC_DB_ERROR;
    *res = NULL;
    rv = apr_dbd_pselect(db->dbd->driver, db->r->pool, db->dbd->handle, res, st,
                         1, nargs(stmts[q].sql), args);
    return rv == 0 ? CLINIC_DB_OK : classify(db, rv, stmts[q].label);
}

int clinic_db_exec(clinic_db_t *db, clinic_sql_t q, const char **args, int *nrows)
{
    apr_dbd_prepared_t *st = statement(db, q);
    int rv;

    if (!st)
        return CLINIC_DB_ERROR;
    *nrows = 0;
    rv = apr_dbd_pquery(db->dbd->driver, db->r->pool, db->dbd->handle, nrows, st,
                        nargs(stmts[q].sql), args);
    return rv == 0 ? CLINIC_DB_OK : classify(db, rv, stmts[q].label);
}

int clinic_db_row(clinic_db_t *db, apr_dbd_results_t *res, apr_dbd_row_t **row)
{
    *row = NULL;
    return apr_dbd_get_row(db->dbd->driver, db->r->pool, res, row, -1);
}

const char *clinic_db_col(clinic_db_t *db, apr_dbd_row_t *row, int col)
{
    char *v = NULL;

    if (apr_dbd_datum_get(db->dbd->driver, row, col, APR_DBD_TYPE_STRING, &v) != APR_SUCCESS)
        return NULL;
    return v;
}

/* Registered after mod_dbd's own release cleanup, so it runs first: a
 * transaction some path left open is rolled back before the connection goes
 * back to the pool. */
static apr_status_t txn_cleanup(void *d)
{
    clinic_db_t *db = d;

    if (db->txn)
        clinic_db_end(db, 1);
    return APR_SUCCESS;
}

int clinic_db_begin(clinic_db_t *db)
{
    int rv;

    apr_pool_cleanup_kill(db->r->pool, db, txn_cleanup);
    apr_pool_cleanup_register(db->r->pool, db, txn_cleanup, apr_pool_cleanup_null);
    db->txn = NULL;
    rv = apr_dbd_transaction_start(db->dbd->driver, db->r->pool, db->dbd->handle,
                                   &db->txn);
    return rv == 0 ? CLINIC_DB_OK : classify(db, rv, "BEGIN");
}

int clinic_db_end(clinic_db_t *db, int rollback)
{
    int rv;

    if (!db->txn)
        return CLINIC_DB_OK;
    if (rollback)
        apr_dbd_transaction_mode_set(db->dbd->driver, db->txn, APR_DBD_TRANSACTION_ROLLBACK);
    rv = apr_dbd_transaction_end(db->dbd->driver, db->r->pool, db->txn);
    db->txn = NULL;
    return rv == 0 ? CLINIC_DB_OK : classify(db, rv, rollback ? "ROLLBACK" : "COMMIT");
}

int clinic_db_fail(clinic_req_t *c, int outcome)
{
    if (outcome == CLINIC_DB_DOWN)
        return clinic_fail(c, HTTP_SERVICE_UNAVAILABLE, "DATABASE_UNAVAILABLE",
                           "The database is unavailable; retry later.");
    return clinic_fail_internal(c, "database statement failed");
}
