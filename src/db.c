/*
 * mod_dbd glue. The SQL below is the only SQL the module runs; it is written
 * once for PostgreSQL and SQLite alike:
 *  - %d, %s, %pDz (timestamp with time zone), %pDd (date), %pDt (text) give
 *    pgsql typed parameters; sqlite3 binds them all as text;
 *  - JSON goes through CAST(... AS clinic_json_text): a jsonb domain in
 *    PostgreSQL, a name with TEXT affinity in SQLite;
 *  - timestamps travel as ISO 8601 text in UTC.
 *
 * Transactions are BEGIN/COMMIT/ROLLBACK sent as plain queries: apr-util
 * 1.6's pgsql apr_dbd_transaction_start dereferences NULL when BEGIN fails
 * (a pooled connection whose server restarted), so it is not used.
 *
 * Failures are sorted by SQLSTATE (libpq's verbose messages carry it): the
 * database gone, overloaded or a statement timeout is a 503; a session that
 * lost its prepared statements (PQreset after a server restart, or 26000)
 * is repaired by preparing them again, and the unit of work is run once
 * more when that cannot write twice.
 */
#include <libpq-fe.h>

#include "db.h"
#include "metrics.h"
#include "http_protocol.h"
#include "apr_optional.h"

static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;
static APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) *dbd_prepare;

static const struct {
    const char *label;
    const char *sql;
    int nargs;
    int writes;        /* running it twice could write twice (the Idempotency-Key
                        * statements only run inside a transaction) */
} stmts[CLINIC_SQL_COUNT] = {
    [CLINIC_SQL_PATIENT_GET] = {"clinic_patient_get",
        "SELECT id, village_prefix, name, identification_number, contact_no, gender,"
        " date_of_birth, poor, bs2, sabai, drug_allergy, face_encodings, picture"
        " FROM patients WHERE id = %d", 1, 0},
    [CLINIC_SQL_VISIT_INSERT] = {"clinic_visit_insert",
        "INSERT INTO visits (patient_id, date, status) VALUES (%d, %pDz, %s)"
        " RETURNING id", 3, 1},
    [CLINIC_SQL_PP_INSERT] = {"clinic_pp_insert",
        "INSERT INTO practice_patients (id, doctor_id, first_name, last_name,"
        " date_of_birth, address, insurance, contact, medical_history,"
        " current_medications, created_at) VALUES (%s, %s, %s, %s, %pDd,"
        " CAST(%s AS clinic_json_text), CAST(%s AS clinic_json_text),"
        " CAST(%s AS clinic_json_text), %pDt, %pDt, %pDz)", 11, 1},
    [CLINIC_SQL_APPT_LINK] = {"clinic_appt_link",
        "UPDATE appointments SET patient_id = %s"
        " WHERE id = %s AND doctor_id = %s AND patient_id IS NULL", 3, 1},
    [CLINIC_SQL_APPT_GET] = {"clinic_appt_get",
        "SELECT doctor_id, patient_id FROM appointments WHERE id = %s", 1, 0},
    [CLINIC_SQL_IDEM_CLAIM] = {"clinic_idem_claim",
        "INSERT INTO idempotency_keys (caller, route, key, fingerprint, created_at,"
        " expires_at) VALUES (%s, %s, %s, %s, %pDz, %pDz) ON CONFLICT DO NOTHING", 6, 0},
    [CLINIC_SQL_IDEM_GET] = {"clinic_idem_get",
        "SELECT fingerprint, status, body, created_at, expires_at FROM idempotency_keys"
        " WHERE caller = %s AND route = %s AND key = %s", 3, 0},
    [CLINIC_SQL_IDEM_TAKEOVER] = {"clinic_idem_takeover",
        "UPDATE idempotency_keys SET fingerprint = %s, status = NULL, body = NULL,"
        " created_at = %pDz, expires_at = %pDz"
        " WHERE caller = %s AND route = %s AND key = %s AND created_at = %pDz", 7, 0},
    [CLINIC_SQL_IDEM_FINISH] = {"clinic_idem_finish",
        "UPDATE idempotency_keys SET status = %d, body = %pDt"
        " WHERE caller = %s AND route = %s AND key = %s", 5, 1},
};

int clinic_db_init(server_rec *s, int needed)
{
    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    dbd_prepare = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    if ((dbd_acquire && dbd_prepare) || !needed)
        return OK;
    ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, APLOGNO(10510)
                 "clinic: mod_dbd is not loaded: add \"LoadModule dbd_module "
                 "modules/mod_dbd.so\" (Debian: a2enmod dbd) and configure DBDriver");
    return HTTP_INTERNAL_SERVER_ERROR;
}

/* Prepare on every server with a mod_dbd configuration of its own: virtual
 * hosts without DBD directives share the main server's, and preparing twice
 * there only earns mod_dbd's "conflicting SQL statements" warning. */
void clinic_db_register_statements(server_rec *s)
{
    module *dbd = ap_find_linked_module("mod_dbd.c");
    server_rec *sp, *q;
    int i;

    if (!dbd_prepare || !dbd)
        return;
    for (sp = s; sp; sp = sp->next) {
        void *cfg = ap_get_module_config(sp->module_config, dbd);
        for (q = s; q != sp && ap_get_module_config(q->module_config, dbd) != cfg; q = q->next)
            ;
        if (q != sp)
            continue;
        for (i = 0; i < CLINIC_SQL_COUNT; i++)
            dbd_prepare(sp, stmts[i].sql, stmts[i].label);
    }
}

/* The SQLSTATE of a verbose libpq message ("ERROR:  57014: ..."), or "". */
static void sqlstate(const char *msg, char out[6])
{
    const char *p = msg ? strstr(msg, ":  ") : NULL;

    out[0] = '\0';
    if (p && strlen(p + 3) > 5 && p[8] == ':')
        apr_cpystrn(out, p + 3, 6);
}

/* Errors that say "try again later" rather than "this request is wrong". */
static int transient(const char *st)
{
    static const char *const codes[] = {"57014", "55P03", "40001", "40P01", "57P01",
                                        "57P02", "57P03", NULL};
    int i;

    if (!strncmp(st, "08", 2) || !strncmp(st, "53", 2))
        return 1;
    for (i = 0; codes[i]; i++)
        if (!strcmp(st, codes[i]))
            return 1;
    return 0;
}

/* Log a driver error: its first line only, since PostgreSQL's DETAIL lines
 * may quote row values (patient data). */
static const char *log_db_error(clinic_db_t *db, int rv, const char *what)
{
    const char *msg = apr_dbd_error(db->dbd->driver, db->dbd->handle, rv);
    size_t n = msg ? strcspn(msg, "\r\n") : 0;

    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r, APLOGNO(10511)
                  "clinic: %s failed (%d): %.*s", what, rv, (int)n, msg ? msg : "");
    return msg;
}

static int repair(clinic_db_t *db);

/* Statements that do not exist, and then already exist when prepared again
 * (or are gone again right after): the session's transactions run on
 * different server sessions. Said once per process. */
static void pooled_per_transaction(clinic_db_t *db)
{
    static int said;

    if (said)
        return;
    said = 1;
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, db->r,
                  "clinic: prepared statements vanish from this database session between "
                  "transactions: the session is pooled per transaction (PgBouncer pool_mode = "
                  "transaction or statement), which mod_clinic does not support; use "
                  "pool_mode = session");
}

/* SQLSTATE 25006: this session is on a server that no longer takes writes
 * (a standby, a demoted old primary, default_transaction_read_only). Answer
 * 503 and open the session again: libpq walks DBDParams' host list anew and
 * target_session_attrs=read-write finds the current primary; when none is
 * reachable yet the broken handle is dropped by mod_dbd on release. */
static int read_only(clinic_db_t *db)
{
    PGconn *pg = apr_dbd_native_handle(db->dbd->driver, db->dbd->handle);

    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, db->r,
                  "clinic: the database server is read-only (standby or demoted primary): "
                  "reconnecting; add target_session_attrs=read-write to DBDParams");
    db->in_txn = 0;
    PQreset(pg);
    if (PQstatus(pg) == CONNECTION_OK)
        repair(db);
    return CLINIC_DB_DOWN;
}

/* After a failed step: what to answer. `repeatable` says whether running
 * the unit of work again could not write twice. */
static int classify(clinic_db_t *db, int rv, const char *what, int repeatable)
{
    const char *msg = log_db_error(db, rv, what);
    char st[6];

    if (!db->pgsql) { /* sqlite3: SQLITE_BUSY / SQLITE_LOCKED after its retries */
        clinic_metric_db_error((rv == 5 || rv == 6) ? CLINIC_DBERR_TIMEOUT : CLINIC_DBERR_OTHER);
        return (rv == 5 || rv == 6) ? CLINIC_DB_DOWN : CLINIC_DB_ERROR;
    }

    if (PQstatus(apr_dbd_native_handle(db->dbd->driver, db->dbd->handle)) == CONNECTION_BAD) {
        /* The server went away under a pooled connection: PQreset it now. */
        db->in_txn = 0;
        clinic_metric_db_error(CLINIC_DBERR_UNAVAILABLE);
        if (apr_dbd_check_conn(db->dbd->driver, db->r->pool, db->dbd->handle) != APR_SUCCESS)
            return CLINIC_DB_DOWN;
        /* A fresh session: give it its statements back now, so it never
         * returns to the pool without them, whatever this request does. */
        if (repair(db) != CLINIC_DB_OK)
            return CLINIC_DB_DOWN;
        return repeatable && !db->retried ? CLINIC_DB_RETRY : CLINIC_DB_DOWN;
    }
    sqlstate(msg, st);
    if (!strcmp(st, "25006")) {   /* the server no longer accepts writes */
        clinic_metric_db_error(CLINIC_DBERR_UNAVAILABLE);
        return read_only(db);
    }
    if (!strcmp(st, "26000")) {   /* prepared statement does not exist: never ran */
        if (db->retried)          /* gone again right after being prepared */
            pooled_per_transaction(db);
        db->missing = what;
        db->repair = 1;
        return db->retried ? CLINIC_DB_DOWN : CLINIC_DB_RETRY;
    }
    clinic_metric_db_error(!transient(st) ? CLINIC_DBERR_OTHER
                           : (!strcmp(st, "57014") || !strcmp(st, "55P03"))
                               ? CLINIC_DBERR_TIMEOUT : CLINIC_DBERR_UNAVAILABLE);
    return transient(st) ? CLINIC_DB_DOWN : CLINIC_DB_ERROR;
}

/* Prepare the module's statements again on this session. */
static int repair(clinic_db_t *db)
{
    int i, rv;
    char st[6];

    for (i = 0; i < CLINIC_SQL_COUNT; i++) {
        apr_dbd_prepared_t *p = NULL;
        rv = apr_dbd_prepare(db->dbd->driver, db->dbd->pool, db->dbd->handle,
                             stmts[i].sql, stmts[i].label, &p);
        if (rv == 0) {
            apr_hash_set(db->dbd->prepared, stmts[i].label, APR_HASH_KEY_STRING, p);
            continue;
        }
        sqlstate(apr_dbd_error(db->dbd->driver, db->dbd->handle, rv), st);
        if (!strcmp(st, "42P05") && db->missing)   /* after 26000 a session has none */
            pooled_per_transaction(db);
        if (strcmp(st, "42P05") != 0) {   /* "already exists" is fine */
            log_db_error(db, rv, "re-preparing statements");
            return CLINIC_DB_DOWN;
        }
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, db->r, APLOGNO(10514)
                  "clinic: database session was reset; statements prepared again");
    clinic_metric_db_error(CLINIC_DBERR_REPAIRED);
    db->repair = 0;
    return CLINIC_DB_OK;
}

/* Registered after mod_dbd's own release cleanup, so it runs first: a
 * transaction some path left open is rolled back before the connection goes
 * back to the pool. */
static apr_status_t txn_cleanup(void *d)
{
    clinic_db_t *db = d;

    if (db->in_txn)
        clinic_db_end(db, 1);
    return APR_SUCCESS;
}

int clinic_db_acquire(request_rec *r, clinic_db_t **dbp)
{
    clinic_db_t *db = apr_pcalloc(r->pool, sizeof *db);

    *dbp = db;
    db->r = r;
    db->dbd = dbd_acquire ? dbd_acquire(r) : NULL;
    if (!db->dbd) {
        static int hinted;   /* once per process */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, APLOGNO(10512)
                      "clinic: no database connection from mod_dbd%s", hinted++ ? "" :
                      " (mod_dbd says why; \"prepared statement ... already exists\" there means "
                      "the sessions are pooled per transaction: use PgBouncer pool_mode = session)");
        clinic_metric_db_error(CLINIC_DBERR_UNAVAILABLE);
        return CLINIC_DB_DOWN;
    }
    db->pgsql = !strcmp(apr_dbd_name(db->dbd->driver), "pgsql");
    if (db->pgsql)   /* messages then carry the SQLSTATE */
        PQsetErrorVerbosity(apr_dbd_native_handle(db->dbd->driver, db->dbd->handle),
                            PQERRORS_VERBOSE);
    apr_pool_cleanup_register(r->pool, db, txn_cleanup, apr_pool_cleanup_null);
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

static int select_once(clinic_db_t *db, clinic_sql_t q, const char **args,
                       apr_dbd_results_t **res)
{
    apr_dbd_prepared_t *st = statement(db, q);
    apr_time_t t0;
    int rv;

    if (!st)
        return CLINIC_DB_ERROR;
    *res = NULL;
    t0 = clinic_metric_now();
    rv = apr_dbd_pselect(db->dbd->driver, db->r->pool, db->dbd->handle, res, st,
                         1, stmts[q].nargs, args);
    clinic_metric_db_time(db->r, t0);
    return rv == 0 ? CLINIC_DB_OK
                   : classify(db, rv, stmts[q].label, db->in_txn || !stmts[q].writes);
}

static int exec_once(clinic_db_t *db, clinic_sql_t q, const char **args, int *nrows)
{
    apr_dbd_prepared_t *st = statement(db, q);
    apr_time_t t0;
    int rv;

    if (!st)
        return CLINIC_DB_ERROR;
    *nrows = 0;
    t0 = clinic_metric_now();
    rv = apr_dbd_pquery(db->dbd->driver, db->r->pool, db->dbd->handle, nrows, st,
                        stmts[q].nargs, args);
    clinic_metric_db_time(db->r, t0);
    return rv == 0 ? CLINIC_DB_OK
                   : classify(db, rv, stmts[q].label, db->in_txn || !stmts[q].writes);
}

/* Outside a transaction a statement is its own unit of work: after a
 * repaired session it runs again here (inside one, clinic_db_run re-runs
 * the whole transaction). */
static int again(clinic_db_t *db, int rc, int was_in_txn)
{
    if (rc != CLINIC_DB_RETRY || was_in_txn)
        return rc;
    db->retried = 1;
    if (db->repair && repair(db) != CLINIC_DB_OK)
        return CLINIC_DB_DOWN;
    return CLINIC_DB_RETRY;
}

int clinic_db_select(clinic_db_t *db, clinic_sql_t q, const char **args,
                     apr_dbd_results_t **res)
{
    int in_txn = db->in_txn;
    int rc = again(db, select_once(db, q, args, res), in_txn);

    if (rc == CLINIC_DB_RETRY && (rc = select_once(db, q, args, res)) == CLINIC_DB_RETRY)
        rc = CLINIC_DB_DOWN;
    return rc;
}

int clinic_db_exec(clinic_db_t *db, clinic_sql_t q, const char **args, int *nrows)
{
    int in_txn = db->in_txn;
    int rc = again(db, exec_once(db, q, args, nrows), in_txn);

    if (rc == CLINIC_DB_RETRY && (rc = exec_once(db, q, args, nrows)) == CLINIC_DB_RETRY)
        rc = CLINIC_DB_DOWN;
    return rc;
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

int clinic_db_begin(clinic_db_t *db)
{
    apr_time_t t0 = clinic_metric_now();
    int n, rv;

    /* SQLite: take the write lock now, so that racing writers queue here
     * (with the driver's busy retries) instead of failing at COMMIT. */
    rv = apr_dbd_query(db->dbd->driver, db->dbd->handle, &n,
                       db->pgsql ? "BEGIN" : "BEGIN IMMEDIATE");
    clinic_metric_db_time(db->r, t0);
    if (rv != 0)
        return classify(db, rv, "BEGIN", 1);
    db->in_txn = 1;
    return CLINIC_DB_OK;
}

int clinic_db_end(clinic_db_t *db, int rollback)
{
    apr_time_t t0;
    int n, rv;

    if (!db->in_txn)
        return CLINIC_DB_OK;
    db->in_txn = 0;
    t0 = clinic_metric_now();
    rv = apr_dbd_query(db->dbd->driver, db->dbd->handle, &n, rollback ? "ROLLBACK" : "COMMIT");
    clinic_metric_db_time(db->r, t0);
    /* A COMMIT whose outcome is unknown must not be repeated. */
    return rv == 0 ? CLINIC_DB_OK : classify(db, rv, rollback ? "ROLLBACK" : "COMMIT", 0);
}

int clinic_db_savepoint(clinic_db_t *db, int rollback_to)
{
    int n, rv = apr_dbd_query(db->dbd->driver, db->dbd->handle, &n,
                              rollback_to ? "ROLLBACK TO SAVEPOINT clinic_work"
                                          : "SAVEPOINT clinic_work");

    return rv == 0 ? CLINIC_DB_OK : classify(db, rv, "SAVEPOINT", 1);
}

int clinic_db_run(clinic_db_t *db, int (*work)(clinic_db_t *db, void *arg), void *arg)
{
    int rc = work(db, arg);

    if (rc != CLINIC_DB_OK)
        clinic_db_end(db, 1);
    if (rc == CLINIC_DB_RETRY) {
        db->retried = 1;
        if (db->repair && (rc = repair(db)) != CLINIC_DB_OK)
            return rc;
        rc = work(db, arg);
        if (rc != CLINIC_DB_OK)
            clinic_db_end(db, 1);
        if (rc == CLINIC_DB_RETRY)
            rc = CLINIC_DB_DOWN;
    }
    return rc;
}

int clinic_db_fail(clinic_req_t *c, int outcome)
{
    if (outcome == CLINIC_DB_DOWN)
        return clinic_fail(c, HTTP_SERVICE_UNAVAILABLE, "DATABASE_UNAVAILABLE",
                           "The database is unavailable; retry later.");
    return clinic_fail_internal(c, "database statement failed");
}
