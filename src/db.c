/*
 * mod_dbd glue. The SQL below is the only SQL the module runs; it is written
 * once for PostgreSQL and SQLite alike, except the statements marked
 * pgsql_only (data-modifying WITH: /visits and add-and-link in one round
 * trip; SQLite runs its own steps instead):
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
 * The statements are prepared here, on each pooled session the first time
 * the module uses it, after checking clinic_schema's version, rather than
 * registered with ap_dbd_prepare: mod_dbd drops a session when any of its
 * statements fails to prepare, and its log does not say which one, so a
 * database with an older schema would read as an outage (503). Here it is
 * a 500 and one error line per process naming the statement or the
 * upgrade script to apply.
 *
 * Failures are sorted by SQLSTATE (libpq's verbose messages carry it): the
 * database gone, overloaded or a statement timeout is a 503. A session
 * whose prepared statements are lost or stale (PQreset after a server
 * restart, 26000, 0A000 "cached plan must not change result type" after a
 * column changed type; SQLite: apr_dbd prepares with the legacy
 * sqlite3_prepare, so after any schema change (an index, a trigger,
 * ANALYZE, VACUUM, a column added) every statement fails once with
 * "database schema has changed" and then with "not an error" for ever) is
 * repaired by preparing them again, and the unit of work is run once more:
 * such a statement never ran, so that cannot write twice. A reset session
 * is retried only when no write can have happened. Since a request's first
 * statement may be such a write, a pooled PostgreSQL session is checked
 * before it (check_alive: the server closed it while it was idle) and
 * reconnected then.
 */
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>
#include <libpq-fe.h>

#include "db.h"
#include "sqlstate.h"
#include "metrics.h"
#include "http_protocol.h"
#include "apr_atomic.h"
#include "apr_optional.h"

static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;

/* In a session's prepared-statement hash: its statements are ready. */
#define READY_KEY "clinic: statements ready"
/* ... and (PostgreSQL) the pool they are prepared into, replaced each time. */
#define STMT_POOL_KEY "clinic: statement pool"
/* SQLite: the session let go of its file, which it may not write. */
#define READ_ONLY_KEY "clinic: opened read-only"

/* Each statement: its prepared name, its argument count, whether running it
 * twice could write twice (WRITES; the Idempotency-Key statements only run
 * inside a transaction, which is re-run whole), and its SQL. */
#define WRITES 1
#define REPEATABLE 0
#define PGSQL_ONLY 1
#define PATIENT_COLUMNS \
    "id, village_prefix, name, identification_number, contact_no, gender," \
    " date_of_birth, poor, bs2, sabai, drug_allergy, face_encodings, picture"
#define SQL_PATIENT_GET "clinic_patient_get", 1, REPEATABLE, \
    "SELECT " PATIENT_COLUMNS " FROM patients WHERE id = %d"
#define SQL_VISIT_INSERT "clinic_visit_insert", 3, WRITES, \
    "INSERT INTO visits (patient_id, date, status) VALUES (%d, %pDz, %s)" \
    " RETURNING id"
/* The PostgreSQL-only statements (data-modifying WITH) end in PGSQL_ONLY:
 * SQLite runs the separate steps instead. */
/* The patient row and the visit's id (last: visits.c's P_* indexes); no row
 * when there is no such patient (nothing inserted). */
#define SQL_VISIT_ONE "clinic_visit_one", 3, WRITES, \
    "WITH p AS (SELECT " PATIENT_COLUMNS " FROM patients WHERE id = %d)," \
    " v AS (INSERT INTO visits (patient_id, date, status)" \
    " SELECT id, %pDz, %s FROM p RETURNING id) SELECT p.*, v.id FROM p CROSS JOIN v", \
    PGSQL_ONLY
#define SQL_VISIT_DELETE "clinic_visit_delete", 1, REPEATABLE, \
    "DELETE FROM visits WHERE id = %d", PGSQL_ONLY
#define PP_COLUMNS \
    "practice_patients (id, doctor_id, first_name, last_name, date_of_birth, address," \
    " insurance, contact, medical_history, current_medications, created_at)"
#define PP_VALUES \
    "%s, %s, %s, %s, %pDd, CAST(%s AS clinic_json_text), CAST(%s AS clinic_json_text)," \
    " CAST(%s AS clinic_json_text), %pDt, %pDt, %pDz"
#define SQL_PP_INSERT "clinic_pp_insert", 11, WRITES, \
    "INSERT INTO " PP_COLUMNS " VALUES (" PP_VALUES ")"
#define SQL_APPT_LINK "clinic_appt_link", 3, WRITES, \
    "UPDATE appointments SET patient_id = %s" \
    " WHERE id = %s AND doctor_id = %s AND patient_id IS NULL"
#define SQL_APPT_GET "clinic_appt_get", 1, REPEATABLE, \
    "SELECT doctor_id, patient_id FROM appointments WHERE id = %s"
/* The appointment as of the statement's start, whether it linked it (the
 * UPDATE re-checks a row another request changed meanwhile) and whether it
 * inserted the patient: only when linked or when there is no such
 * appointment, so a refusal or a lost race writes nothing. The FK is checked
 * at the end of the statement, after the INSERT. */
#define SQL_LINK_ONE "clinic_link_one", 15, WRITES, \
    "WITH a AS (SELECT doctor_id, patient_id FROM appointments WHERE id = %s)," \
    " l AS (UPDATE appointments SET patient_id = %s" \
    " WHERE id = %s AND doctor_id = %s AND patient_id IS NULL RETURNING id)," \
    " p AS (INSERT INTO " PP_COLUMNS " SELECT " PP_VALUES \
    " WHERE EXISTS (SELECT 1 FROM l) OR NOT EXISTS (SELECT 1 FROM a) RETURNING id)" \
    " SELECT a.doctor_id, a.patient_id, (SELECT count(*) FROM l)," \
    " (SELECT count(*) FROM p) FROM (SELECT 1) AS one LEFT JOIN a ON true", \
    PGSQL_ONLY
#define SQL_IDEM_CLAIM "clinic_idem_claim", 6, REPEATABLE, \
    "INSERT INTO idempotency_keys (caller, route, key, fingerprint, created_at," \
    " expires_at) VALUES (%s, %s, %s, %s, %pDz, %pDz) ON CONFLICT DO NOTHING"
#define SQL_IDEM_GET "clinic_idem_get", 3, REPEATABLE, \
    "SELECT fingerprint, status, body, created_at, expires_at FROM idempotency_keys" \
    " WHERE caller = %s AND route = %s AND key = %s"
#define SQL_IDEM_TAKEOVER "clinic_idem_takeover", 7, REPEATABLE, \
    "UPDATE idempotency_keys SET fingerprint = %s, status = NULL, body = NULL," \
    " created_at = %pDz, expires_at = %pDz" \
    " WHERE caller = %s AND route = %s AND key = %s AND created_at = %pDz"
#define SQL_IDEM_FINISH "clinic_idem_finish", 5, WRITES, \
    "UPDATE idempotency_keys SET status = %d, body = %pDt" \
    " WHERE caller = %s AND route = %s AND key = %s"
#define SQL_IDEM_EXPIRED "clinic_idem_expired", 1, REPEATABLE, \
    "SELECT 1 FROM idempotency_keys WHERE expires_at < %pDz LIMIT 1"
/* expires_at is tested again outside the subquery: a row taken over
 * meanwhile (new expires_at) is then left alone. */
#define SQL_IDEM_PURGE "clinic_idem_purge", 2, REPEATABLE, \
    "DELETE FROM idempotency_keys WHERE expires_at < %pDz AND (caller, route, key) IN" \
    " (SELECT caller, route, key FROM idempotency_keys WHERE expires_at < %pDz" \
    " ORDER BY expires_at LIMIT " APR_STRINGIFY(CLINIC_IDEM_PURGE_BATCH) ")"
#define SQL_SCHEMA_GET "clinic_schema_get", 0, REPEATABLE, \
    "SELECT max(version) FROM clinic_schema"
/* A DPoP proof's jti (dpop.c): one row while the proof could be accepted
 * (until iat + ClinicDPoPWindow). No row changed: seen before, by any node.
 * A row past its expiry is taken over. */
#define SQL_DPOP_JTI "clinic_dpop_jti", 3, WRITES, \
    "INSERT INTO dpop_jtis (replay_key, expires_at) VALUES (%s, %pDz)" \
    " ON CONFLICT (replay_key) DO UPDATE SET expires_at = excluded.expires_at" \
    " WHERE dpop_jtis.expires_at < %pDz"
#define SQL_DPOP_PURGE "clinic_dpop_purge", 2, REPEATABLE, \
    "DELETE FROM dpop_jtis WHERE expires_at < %pDz AND replay_key IN" \
    " (SELECT replay_key FROM dpop_jtis WHERE expires_at < %pDz" \
    " ORDER BY expires_at LIMIT " APR_STRINGIFY(CLINIC_DPOP_PURGE_BATCH) ")"

#define STMT(name) [CLINIC_SQL_##name] = {SQL_##name}
static const struct {
    const char *label;
    int nargs;
    int writes;
    const char *sql;
    int pgsql_only;    /* not prepared on SQLite */
} stmts[CLINIC_SQL_COUNT] = {
    STMT(PATIENT_GET), STMT(VISIT_INSERT), STMT(VISIT_ONE), STMT(VISIT_DELETE), STMT(PP_INSERT),
    STMT(APPT_LINK), STMT(APPT_GET), STMT(LINK_ONE), STMT(IDEM_CLAIM), STMT(IDEM_GET),
    STMT(IDEM_TAKEOVER), STMT(IDEM_FINISH), STMT(IDEM_EXPIRED), STMT(IDEM_PURGE),
    STMT(SCHEMA_GET), STMT(DPOP_JTI), STMT(DPOP_PURGE)
};

int clinic_db_init(server_rec *s, int needed)
{
    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    if (dbd_acquire || !needed)
        return OK;
    clinic_scrit(s, "mod_dbd is not loaded: add \"LoadModule dbd_module "
                 "modules/mod_dbd.so\" (Debian: a2enmod dbd) and configure DBDriver");
    return HTTP_INTERNAL_SERVER_ERROR;
}

/* Log a driver error: its first line only, since PostgreSQL's DETAIL lines
 * may quote row values (patient data). */
static const char *log_db_error(clinic_db_t *db, int rv, const char *what)
{
    const char *msg = apr_dbd_error(db->dbd->driver, db->dbd->handle, rv);
    size_t n = msg ? strcspn(msg, "\r\n") : 0;

    clinic_error(db->r, "%s failed (%d): %.*s", what, rv, (int)n, msg ? msg : "");
    return msg;
}

static const char *first_line(const char *msg, int *n)
{
    *n = msg ? (int)strcspn(msg, "\r\n") : 0;
    return msg ? msg : "";
}

#define READ_ONLY_HINT \
    "the SQLite database file or its directory is read-only: make both writable by the user " \
    "Apache runs as (Debian: www-data)"

/* SQLite: what stops a write for now, by the code or, since apr_dbd's
 * legacy sqlite3_prepare makes a failed step answer SQLITE_ERROR (1) and a
 * select still busy after the driver's retries 1 as well, by the message
 * (sqlite3_errmsg). Each answers 503 and clears by itself once its cause
 * is gone; hint says what to do. NULL: none of these. */
static const struct {
    int rv;
    const char *msg;
    const char *hint;
} sqlite_down[] = {
    {5, "database is locked", NULL},            /* SQLITE_BUSY */
    {6, "database table is locked", NULL},      /* SQLITE_LOCKED */
    {13, "database or disk is full",            /* SQLITE_FULL */
     "the file system of the SQLite database is full: free space there"},
    {8, "attempt to write a readonly database", READ_ONLY_HINT},   /* SQLITE_READONLY */
    {14, "unable to open database file",        /* SQLITE_CANTOPEN: its journal */
     "SQLite cannot create its journal beside the database file: make the directory "
     "writable by the user Apache runs as (Debian: www-data)"},
};

static int sqlite_blocked(clinic_db_t *db, int rv, const char **hint)
{
    const char *msg = apr_dbd_error(db->dbd->driver, db->dbd->handle, rv);
    size_t i;

    for (i = 0; i < sizeof sqlite_down / sizeof sqlite_down[0]; i++)
        if (rv == sqlite_down[i].rv || (msg && !strcmp(msg, sqlite_down[i].msg))) {
            if (hint)
                *hint = sqlite_down[i].hint;
            return 1;
        }
    return 0;
}

/* Unreachable, overloaded, busy: a 503, not the wrong database. */
static int down(clinic_db_t *db, int rv)
{
    char st[6];

    if (!db->pgsql)
        return sqlite_blocked(db, rv, NULL);
    if (PQstatus(apr_dbd_native_handle(db->dbd->driver, db->dbd->handle)) == CONNECTION_BAD)
        return 1;
    clinic_sqlstate(apr_dbd_error(db->dbd->driver, db->dbd->handle, rv), st);
    return clinic_sqlstate_is_transient(st);
}

/* The wrong database is logged at error level once per process and
 * problem (each older version, each statement), then at debug level: the
 * log says what to do without a line per request. */
static apr_uint32_t reported[CLINIC_SCHEMA_VERSION + CLINIC_SQL_COUNT + 1];
#define NO_TABLES (CLINIC_SCHEMA_VERSION + CLINIC_SQL_COUNT)

static int report_level(int problem)
{
    clinic_metric_db_error(CLINIC_DBERR_OTHER);   /* answered 500 */
    return apr_atomic_cas32(&reported[problem], 1, 0) == 0 ? APLOG_ERR : APLOG_DEBUG;
}

static const char *kind(clinic_db_t *db)
{
    return db->pgsql ? "pgsql" : "sqlite";
}

static int report_version(clinic_db_t *db, int version, int no_table)
{
    const char *k = kind(db);
    int level = report_level(version < 1 ? 0 : version);   /* clinic_rlog reads it twice */

    if (version < 1) {
        clinic_rlog(db->r, level, 0,
                    "table clinic_schema holds no version: the schema cannot be "
                    "checked (sql/schema-%s.sql is version %d); until it is, requests "
                    "answer 500", k, CLINIC_SCHEMA_VERSION);
        return CLINIC_DB_SCHEMA;
    }
    clinic_rlog(db->r, level, 0,
                "the database schema is version %d%s and mod_clinic needs version "
                "%d: apply sql/upgrade/%s-%d.sql%s (docs/operations.md: Upgrading the schema); until "
                "then requests answer 500", version,
                no_table ? " (no clinic_schema table)" : "", CLINIC_SCHEMA_VERSION,
                k, version + 1,
                version + 1 < CLINIC_SCHEMA_VERSION
                    ? apr_psprintf(db->r->pool, ", then each later step up to %s-%d.sql",
                                   k, CLINIC_SCHEMA_VERSION)
                    : "");
    return CLINIC_DB_SCHEMA;
}

static int report_statement(clinic_db_t *db, int i, int rv, int version)
{
    int n, level = report_level(CLINIC_SCHEMA_VERSION + i);
    const char *msg = first_line(apr_dbd_error(db->dbd->driver, db->dbd->handle, rv), &n);

    clinic_rlog(db->r, level, 0,
                "statement %s cannot be prepared (%d): %.*s; the database%s does "
                "not match sql/schema-%s.sql: compare them with that file; until then "
                "requests answer 500", stmts[i].label, rv, n, msg,
                version > 0 ? apr_psprintf(db->r->pool, " (clinic_schema says version %d)",
                                           version) : "",
                kind(db));
    return CLINIC_DB_SCHEMA;
}

/* No clinic_schema and no patients either: not a clinic database at all
 * (an empty SQLite file, the wrong dbname). */
static int report_no_tables(clinic_db_t *db)
{
    int level = report_level(NO_TABLES);

    clinic_rlog(db->r, level, 0,
                "the database has none of mod_clinic's tables (no clinic_schema, no "
                "patients): create them with sql/schema-%s.sql, or point DBDParams at the "
                "clinic database; until then requests answer 500", kind(db));
    return CLINIC_DB_SCHEMA;
}

/* ---- the deadline (dbwait.c) ---- */

static PGconn *pg_of(clinic_db_t *db)
{
    return apr_dbd_native_handle(db->dbd->driver, db->dbd->handle);
}

/* A session whose deadline ran out mid-statement never goes back to the
 * pool in an unknown state: a PostgreSQL session's socket is shut down and
 * libpq told, so that it reads as closed (mod_dbd opens it again before
 * its next use) and its statements are prepared again then; an SQLite
 * transaction is rolled back (local: that cannot hang). */
static void close_session(clinic_db_t *db)
{
    PGconn *pg;
    int n;

    if (db->pgsql) {
        pg = pg_of(db);
        apr_hash_set(db->dbd->prepared, READY_KEY, APR_HASH_KEY_STRING, NULL);
        if (PQsocket(pg) >= 0) {
            shutdown(PQsocket(pg), SHUT_RDWR);
            PQconsumeInput(pg);
        }
    }
    else if (db->in_txn)
        apr_dbd_query(db->dbd->driver, db->dbd->handle, &n, "ROLLBACK");
    db->in_txn = 0;
}

/* PostgreSQL: whether this request's connection worked, for the pool's
 * state (dbwait.h): a change is logged once. Returns rc. */
static int settle(clinic_db_t *db, int rc)
{
    if (!clinic_wait_result(db->wait, rc != CLINIC_DB_DOWN))
        return rc;
    if (rc == CLINIC_DB_DOWN)
        clinic_error(db->r,
                     "the database does not answer: until a connection works again, this "
                     "process answers 503 at once and lets one request at a time try it");
    else
        clinic_rlog(db->r, APLOG_NOTICE, 0, "the database answers again");
    return rc;
}

/* ClinicDBTimeout ran out in phase (during what, NULL for none): one error
 * line naming both, counted; in a statement the session is closed. After
 * it, no statement runs in this request: the answer is 503. */
static int expired(clinic_db_t *db, clinic_phase_t phase, const char *what)
{
    static const char *const doing[CLINIC_PHASE_COUNT] = {
        "waiting for a pooled connection", "opening a connection", "running"};
    apr_time_t start = clinic_wait_started(db->wait);
    int in_use, waiting, max;

    if (db->expired)
        return CLINIC_DB_DOWN;
    db->expired = 1;
    clinic_wait_counts(db->wait, &in_use, &waiting, &max);
    clinic_error(db->r,
                 "ClinicDBTimeout (%" APR_TIME_T_FMT " s) ran out after %.3f s %s%s%s%s (pool "
                 "of this process: %d of %d in use, %d waiting)%s",
                 apr_time_sec(clinic_wait_deadline(db->wait) - start),
                 (double)(apr_time_now() - start) / APR_USEC_PER_SEC, doing[phase],
                 what ? " " : "", what ? what : "",
                 phase == CLINIC_PHASE_POOL && clinic_wait_reserve()
                     ? apr_psprintf(db->r->pool, " (the last %" APR_TIME_T_FMT " s are kept for "
                                    "opening a connection: connect_timeout)",
                                    apr_time_sec(clinic_wait_reserve())) : "",
                 in_use, max, waiting,
                 phase == CLINIC_PHASE_STATEMENT && db->pgsql
                     ? "; the connection was closed, and the statement may have run" : "");
    clinic_metric_db_expired(phase);
    clinic_metric_db_error(CLINIC_DBERR_TIMEOUT);
    if (phase == CLINIC_PHASE_STATEMENT)
        close_session(db);
    if (phase != CLINIC_PHASE_POOL && db->pgsql)
        settle(db, CLINIC_DB_DOWN);
    return CLINIC_DB_DOWN;
}

/* Before a driver call: the watchdog armed on the session's socket (SQLite:
 * the deadline checked). CLINIC_DB_OK, or 503 once the deadline is past. */
static int arm(clinic_db_t *db, const char *what)
{
    if (db->expired)
        return CLINIC_DB_DOWN;
    if (!clinic_wait_arm(db->wait, db->pgsql ? PQsocket(pg_of(db)) : -1))
        return CLINIC_DB_OK;
    return expired(db, CLINIC_PHASE_STATEMENT, what);
}

/* After it: 1 when the watchdog cut it at the deadline. */
static int cut(clinic_db_t *db, const char *what)
{
    return clinic_wait_disarm(db->wait) && expired(db, CLINIC_PHASE_STATEMENT, what);
}

/* A plain statement (BEGIN, COMMIT, ...) under the deadline: the driver's
 * code, or -1 once the deadline ran out (logged). */
static int plain(clinic_db_t *db, const char *sql)
{
    int n, rv;

    if (arm(db, sql) != CLINIC_DB_OK)
        return -1;
    rv = apr_dbd_query(db->dbd->driver, db->dbd->handle, &n, sql);
    return cut(db, sql) && rv != 0 ? -1 : rv;
}

/* Statements that do not exist, and then already exist when prepared again
 * (or are gone again right after): the session's transactions run on
 * different server sessions. Said once per process. */
static void pooled_per_transaction(clinic_db_t *db)
{
    static int said;

    if (said)
        return;
    said = 1;
    clinic_error(db->r,
                 "prepared statements vanish from this database session between "
                 "transactions: the session is pooled per transaction (PgBouncer pool_mode = "
                 "transaction or statement), which mod_clinic does not support; use "
                 "pool_mode = session");
}

/* A failure while preparing that only per-transaction pooling explains: a
 * statement prepared a moment ago is missing (26000), or one the session
 * never had already exists (42P05 where DEALLOCATE did not help). */
static int pooled_symptom(clinic_db_t *db, int rv)
{
    char st[6];

    if (!db->pgsql)
        return 0;
    clinic_sqlstate(apr_dbd_error(db->dbd->driver, db->dbd->handle, rv), st);
    if (strcmp(st, "26000") != 0 && strcmp(st, "42P05") != 0)
        return 0;
    pooled_per_transaction(db);
    return 1;
}

/* Prepare statement i on this session: 0, or the driver's code. A name
 * PostgreSQL still holds (42P05: a stale statement) is deallocated and
 * prepared again. */
static int prepare_one(clinic_db_t *db, int i)
{
    apr_pool_t *pool = apr_hash_get(db->dbd->prepared, STMT_POOL_KEY, APR_HASH_KEY_STRING);
    apr_dbd_prepared_t *p = NULL;
    char st[6];
    int rv, n;

    if (!pool)
        pool = db->dbd->pool;
    rv = apr_dbd_prepare(db->dbd->driver, pool, db->dbd->handle,
                         stmts[i].sql, stmts[i].label, &p);
    if (rv != 0 && db->pgsql) {
        clinic_sqlstate(apr_dbd_error(db->dbd->driver, db->dbd->handle, rv), st);
        if (!strcmp(st, "42P05") && db->missing)   /* after 26000 a session has none */
            pooled_per_transaction(db);
        if (!strcmp(st, "42P05") &&
            apr_dbd_query(db->dbd->driver, db->dbd->handle, &n,
                          apr_pstrcat(db->r->pool, "DEALLOCATE ", stmts[i].label, NULL)) == 0) {
            p = NULL;
            rv = apr_dbd_prepare(db->dbd->driver, pool, db->dbd->handle,
                                 stmts[i].sql, stmts[i].label, &p);
        }
    }
    if (rv == 0)
        apr_hash_set(db->dbd->prepared, stmts[i].label, APR_HASH_KEY_STRING, p);
    return rv;
}

/* A table the driver says is missing (the statement names it). */
static int no_such_table(clinic_db_t *db, int rv)
{
    const char *msg = apr_dbd_error(db->dbd->driver, db->dbd->handle, rv);
    char st[6];

    if (!db->pgsql)
        return msg && !strncmp(msg, "no such table", 13);
    clinic_sqlstate(msg, st);
    return !strcmp(st, "42P01");
}

/* SQLite, after a schema change: the statement that meets it fails with
 * "database schema has changed", and every statement of the session then
 * fails with "not an error" (apr_dbd uses the legacy sqlite3_prepare). */
static int sqlite_stale(int rv, const char *msg)
{
    return (rv == 1 || rv == 17) && msg &&
           (!strcmp(msg, "database schema has changed") || !strcmp(msg, "not an error"));
}

/* PostgreSQL: a fresh pool for the session's statements, the previous one
 * (and the statements in it) freed, so that a long-lived session does not
 * grow with each repair or reconnect. SQLite keeps the session's pool: its
 * apr_dbd driver lists every prepared statement on the connection handle
 * and finalizes them when the connection closes. */
static void new_statement_pool(clinic_db_t *db)
{
    apr_pool_t *old = apr_hash_get(db->dbd->prepared, STMT_POOL_KEY, APR_HASH_KEY_STRING);
    apr_pool_t *pool;
    int i;

    if (!db->pgsql)
        return;
    for (i = 0; i < CLINIC_SQL_COUNT; i++)
        apr_hash_set(db->dbd->prepared, stmts[i].label, APR_HASH_KEY_STRING, NULL);
    apr_hash_set(db->dbd->prepared, STMT_POOL_KEY, APR_HASH_KEY_STRING, NULL);
    if (old)
        apr_pool_destroy(old);
    if (apr_pool_create(&pool, db->dbd->pool) == APR_SUCCESS)
        apr_hash_set(db->dbd->prepared, STMT_POOL_KEY, APR_HASH_KEY_STRING, pool);
}

/* Give this session the module's statements and check the schema version:
 * a session used for the first time, one that was reset, or one whose
 * statements went stale. why (NULL the first time) is logged at info. */
static int prepare_statements(clinic_db_t *db, const char *why)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_dbd_prepared_t *st;
    const char *v;
    int i, rv, version, attempt;

    apr_hash_set(db->dbd->prepared, READY_KEY, APR_HASH_KEY_STRING, NULL);
    new_statement_pool(db);
    db->repair = 0;
    /* SQLite prepares against the schema it last read; the first step of a
     * statement prepared on an outdated one fails once, and that step
     * reads the schema again. The other statements are prepared after it. */
    for (attempt = 0; attempt < 2; attempt++) {
        if ((rv = prepare_one(db, CLINIC_SQL_SCHEMA_GET)) != 0) {
            if (down(db, rv) || pooled_symptom(db, rv))
                return log_db_error(db, rv, "preparing statements"), CLINIC_DB_DOWN;
            if (!no_such_table(db, rv))
                return report_statement(db, CLINIC_SQL_SCHEMA_GET, rv, 0);
            rv = prepare_one(db, CLINIC_SQL_PATIENT_GET);
            return rv != 0 && no_such_table(db, rv) ? report_no_tables(db)
                                                    : report_version(db, 1, 1);
        }
        st = apr_hash_get(db->dbd->prepared, stmts[CLINIC_SQL_SCHEMA_GET].label,
                          APR_HASH_KEY_STRING);
        res = NULL;
        rv = apr_dbd_pselect(db->dbd->driver, db->r->pool, db->dbd->handle, &res, st, 1, 0, NULL);
        if (rv == 0 || db->pgsql ||
            !sqlite_stale(rv, apr_dbd_error(db->dbd->driver, db->dbd->handle, rv)))
            break;
    }
    if (rv != 0) {
        log_db_error(db, rv, stmts[CLINIC_SQL_SCHEMA_GET].label);
        return down(db, rv) || pooled_symptom(db, rv) ? CLINIC_DB_DOWN : CLINIC_DB_ERROR;
    }
    version = apr_dbd_get_row(db->dbd->driver, db->r->pool, res, &row, -1) == 0 &&
              (v = clinic_db_col(db, row, 0)) ? atoi(v) : 0;
    if (version < CLINIC_SCHEMA_VERSION)
        return report_version(db, version, 0);
    for (i = 0; i < CLINIC_SQL_COUNT; i++) {
        if (i == CLINIC_SQL_SCHEMA_GET || (stmts[i].pgsql_only && !db->pgsql) ||
            (rv = prepare_one(db, i)) == 0)
            continue;
        if (down(db, rv) || pooled_symptom(db, rv))
            return log_db_error(db, rv, "preparing statements"), CLINIC_DB_DOWN;
        return report_statement(db, i, rv, version);
    }
    apr_hash_set(db->dbd->prepared, READY_KEY, APR_HASH_KEY_STRING, READY_KEY);
    if (why) {
        clinic_info(db->r, "statements prepared again on this database session (%s)", why);
        clinic_metric_db_error(CLINIC_DBERR_REPAIRED);
    }
    return CLINIC_DB_OK;
}

/* prepare_statements under the deadline: its round trips are one watch. */
static int prepare_session(clinic_db_t *db, const char *why)
{
    int rc;

    if ((rc = arm(db, "preparing statements")) != CLINIC_DB_OK)
        return rc;
    rc = prepare_statements(db, why);
    return cut(db, "preparing statements") ? CLINIC_DB_DOWN : rc;
}

/* A statement that did not run because the session's prepared statements
 * are gone or stale: prepare them again and run the unit once more. */
static int stale(clinic_db_t *db, int rv, const char *what, const char *msg)
{
    int n;

    if (db->retried) {   /* already repaired once in this request */
        log_db_error(db, rv, what);
        return CLINIC_DB_DOWN;
    }
    first_line(msg, &n);
    clinic_info(db->r,
                "%s found its prepared statement stale (%d: %.*s)", what, rv, n, msg);
    db->repair = 1;
    return CLINIC_DB_RETRY;
}

/* PostgreSQL: open the session again (libpq walks DBDParams' hosts anew)
 * and give it its statements back now, so that it never returns to the
 * pool without them: CLINIC_DB_OK, CLINIC_DB_SCHEMA (the wrong database,
 * logged), else CLINIC_DB_DOWN. */
/* PQreset, bounded by the deadline: libpq's asynchronous reset, polled
 * with the time left (libpq walks the hosts itself). */
static int reset(clinic_db_t *db, PGconn *pg)
{
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    apr_interval_time_t left;

    if (db->expired)
        return CLINIC_DB_DOWN;
    clinic_wait_new_socket(db->wait);
    if (!PQresetStart(pg))
        return CLINIC_DB_DOWN;
    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        struct pollfd pfd = {PQsocket(pg), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};

        left = clinic_wait_deadline(db->wait) - apr_time_now();
        if (left <= 0 || pfd.fd < 0 ||
            poll(&pfd, 1, (int)((left + 999) / 1000)) == 0) {
            if (left <= 0 || pfd.fd >= 0)
                return expired(db, CLINIC_PHASE_CONNECT, "to reconnect");
            return CLINIC_DB_DOWN;
        }
        st = PQresetPoll(pg);
    }
    return st == PGRES_POLLING_OK ? CLINIC_DB_OK : CLINIC_DB_DOWN;
}

static int reconnect(clinic_db_t *db, const char *why)
{
    PGconn *pg = apr_dbd_native_handle(db->dbd->driver, db->dbd->handle);
    int rc;

    db->in_txn = 0;
    if (reset(db, pg) != CLINIC_DB_OK || PQstatus(pg) != CONNECTION_OK)
        return CLINIC_DB_DOWN;
    rc = prepare_session(db, why);
    return rc == CLINIC_DB_OK || rc == CLINIC_DB_SCHEMA ? rc : CLINIC_DB_DOWN;
}

/* SQLSTATE 25006: this session is on a server that no longer takes writes
 * (a standby, a demoted old primary, default_transaction_read_only). Answer
 * 503 and open the session again: libpq walks DBDParams' host list anew and
 * target_session_attrs=read-write finds the current primary; when none is
 * reachable yet the broken handle is dropped by mod_dbd on release. */
static int read_only(clinic_db_t *db)
{
    clinic_warn(db->r,
                "the database server is read-only (standby or demoted primary): "
                "reconnecting; add target_session_attrs=read-write to DBDParams");
    reconnect(db, "reconnected after a read-only server");
    return CLINIC_DB_DOWN;
}

/* SQLite: busy or locked after the driver's retries, a full disk, a
 * read-only file: 503, with what to do logged; stale statements are
 * prepared again; anything else is a 500. */
static int classify_sqlite(clinic_db_t *db, int rv, const char *what, int prepared,
                           const char *msg)
{
    const char *hint = NULL;

    if (prepared && sqlite_stale(rv, msg))
        return stale(db, rv, what, msg);
    log_db_error(db, rv, what);
    if (!sqlite_blocked(db, rv, &hint)) {
        clinic_metric_db_error(CLINIC_DBERR_OTHER);
        return CLINIC_DB_ERROR;
    }
    if (hint)
        clinic_error(db->r, "%s; until then requests answer 503", hint);
    clinic_metric_db_error(hint ? CLINIC_DBERR_UNAVAILABLE : CLINIC_DBERR_TIMEOUT);
    return CLINIC_DB_DOWN;
}

/* After a failed step: what to answer. `repeatable` says whether running
 * the unit of work again could not write twice; `prepared` that the step
 * was one of the module's prepared statements. */
static int classify(clinic_db_t *db, int rv, const char *what, int repeatable, int prepared)
{
    const char *msg;
    char st[6];
    int rc;

    if (db->expired)      /* cut at the deadline: logged, never run again */
        return CLINIC_DB_DOWN;
    msg = apr_dbd_error(db->dbd->driver, db->dbd->handle, rv);
    if (!db->pgsql)
        return classify_sqlite(db, rv, what, prepared, msg);
    if (PQstatus(apr_dbd_native_handle(db->dbd->driver, db->dbd->handle)) == CONNECTION_BAD) {
        /* The server went away under a pooled connection: PQreset it now. */
        log_db_error(db, rv, what);
        clinic_metric_db_error(CLINIC_DBERR_UNAVAILABLE);
        if ((rc = reconnect(db, "the session was reset")) != CLINIC_DB_OK)
            return rc;
        return repeatable && !db->retried ? CLINIC_DB_RETRY : CLINIC_DB_DOWN;
    }
    clinic_sqlstate(msg, st);
    if (!strcmp(st, "25006")) {   /* the server no longer accepts writes */
        clinic_metric_db_error(CLINIC_DBERR_UNAVAILABLE);
        return read_only(db);
    }
    /* 26000: prepared statement does not exist; 0A000 here: a column the
     * statement returns changed type; 42P01, 42703, 42704: a table, column
     * or type it names is gone (preparing again then says which, once).
     * None of them ran. */
    if (prepared && (!strcmp(st, "26000") || !strcmp(st, "42P01") || !strcmp(st, "42703") ||
                     !strcmp(st, "42704") ||
                     (!strcmp(st, "0A000") && strstr(msg, "cached plan must not change")))) {
        if (!strcmp(st, "26000")) {
            if (db->retried)      /* gone again right after being prepared */
                pooled_per_transaction(db);
            db->missing = what;
        }
        return stale(db, rv, what, msg);
    }
    log_db_error(db, rv, what);
    clinic_metric_db_error(!clinic_sqlstate_is_transient(st) ? CLINIC_DBERR_OTHER
                           : (!strcmp(st, "57014") || !strcmp(st, "55P03"))
                               ? CLINIC_DBERR_TIMEOUT : CLINIC_DBERR_UNAVAILABLE);
    return clinic_sqlstate_is_transient(st) ? CLINIC_DB_DOWN : CLINIC_DB_ERROR;
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

/* PostgreSQL: a pooled session idle between requests has nothing to read
 * unless its server closed it meanwhile (a FATAL such as 57P01 on a
 * restart, idle_session_timeout, and/or EOF). Such a session is reset now,
 * before the request's first statement, which may be a write that must
 * not run twice and so could not be repeated after failing on it. One
 * poll(2) that does not wait; a needless reset is harmless. */
static int check_alive(clinic_db_t *db)
{
    PGconn *pg = apr_dbd_native_handle(db->dbd->driver, db->dbd->handle);
    struct pollfd pfd = {PQsocket(pg), POLLIN, 0};
    int rc;

    if (PQstatus(pg) == CONNECTION_OK && pfd.fd >= 0 && poll(&pfd, 1, 0) == 0)
        return CLINIC_DB_OK;
    clinic_info(db->r, "the pooled database session was closed by its server: reconnecting");
    clinic_metric_db_error(CLINIC_DBERR_UNAVAILABLE);
    rc = reconnect(db, "the server closed this pooled session");
    if (rc == CLINIC_DB_DOWN && PQstatus(pg) != CONNECTION_OK)
        clinic_error(db->r, "reconnecting the database session failed: %.*s",
                     (int)strcspn(PQerrorMessage(pg), "\r\n"), PQerrorMessage(pg));
    return rc;
}

/* ClinicDBMaxWaiting requests of this process wait for a connection
 * already: 503 at once, logged at most once a second per process. */
static int refused(clinic_db_t *db)
{
    static apr_uint32_t last;
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(apr_time_now());
    apr_uint32_t was = apr_atomic_read32(&last);
    int in_use, waiting, max;

    clinic_metric_pool_refused();
    clinic_metric_db_error(CLINIC_DBERR_UNAVAILABLE);
    if (was != now && apr_atomic_cas32(&last, now, was) == was) {
        clinic_wait_counts(db->wait, &in_use, &waiting, &max);
        clinic_error(db->r,
                     "every pooled connection of this process is in use (%d of %d) and %d "
                     "requests wait already (ClinicDBMaxWaiting): answered 503 at once "
                     "(logged once a second; clinic_db_pool_refused_total counts them)",
                     in_use, max, waiting);
    }
    return CLINIC_DB_DOWN;
}

/* SQLite: the session's handle replaced by a new one on path (its
 * statements then prepared again). */
static int sqlite_swap(clinic_db_t *db, const char *path)
{
    apr_dbd_t *fresh = NULL;

    if (apr_dbd_open(db->dbd->driver, db->dbd->pool, path, &fresh) != APR_SUCCESS || !fresh)
        return CLINIC_DB_DOWN;
    apr_dbd_close(db->dbd->driver, db->dbd->handle);
    db->dbd->handle = fresh;
    apr_hash_clear(db->dbd->prepared);
    return CLINIC_DB_OK;
}

/* SQLite opens a file it may not write read-only, and while one session of
 * a process has it open so, every new session opens it read-only too. So
 * a session used for the first time on a file this process may not write
 * lets go of it (it keeps an in-memory database meanwhile) and answers 503;
 * once the file is writable it opens it again. */
static int sqlite_writable(clinic_db_t *db)
{
    int flagged = apr_hash_get(db->dbd->prepared, READ_ONLY_KEY, APR_HASH_KEY_STRING) != NULL;
    const char *path;

    if (!flagged && apr_hash_get(db->dbd->prepared, READY_KEY, APR_HASH_KEY_STRING))
        return CLINIC_DB_OK;      /* checked when first used */
    path = clinic_dbd_setting(db->r->pool, db->r->server, "DBDParams");
    if (!path)
        return CLINIC_DB_OK;
    if (access(path, W_OK) == 0) {
        if (!flagged || sqlite_swap(db, path) != CLINIC_DB_OK)
            return flagged ? CLINIC_DB_DOWN : CLINIC_DB_OK;
        clinic_info(db->r, "the SQLite database file is writable again: its session was reopened");
        return CLINIC_DB_OK;
    }
    if (!flagged && sqlite_swap(db, ":memory:") == CLINIC_DB_OK)
        apr_hash_set(db->dbd->prepared, READ_ONLY_KEY, APR_HASH_KEY_STRING, READ_ONLY_KEY);
    clinic_error(db->r, "%s (%s); until then requests answer 503", READ_ONLY_HINT, path);
    clinic_metric_db_error(CLINIC_DBERR_UNAVAILABLE);
    return CLINIC_DB_DOWN;
}

int clinic_db_acquire(request_rec *r, clinic_db_t **dbp)
{
    clinic_db_t *db = apr_pcalloc(r->pool, sizeof *db);
    int rc;

    *dbp = db;
    db->r = r;
    switch (clinic_wait_enter(r, &db->wait)) {
    case CLINIC_WAIT_FULL:
        return refused(db);
    case CLINIC_WAIT_EXPIRED:
        return expired(db, CLINIC_PHASE_POOL, NULL);
    case CLINIC_WAIT_AWAY:
        clinic_metric_db_error(CLINIC_DBERR_UNAVAILABLE);
        return CLINIC_DB_DOWN;
    }
    db->dbd = dbd_acquire ? dbd_acquire(r) : NULL;
    if (!db->dbd) {
        static int hinted;   /* once per process */
        clinic_error(r, "no database connection from mod_dbd%s", hinted++ ? "" :
                     " (mod_dbd says why; \"prepared statement ... already exists\" there means "
                     "the sessions are pooled per transaction: use PgBouncer pool_mode = session)");
        clinic_metric_db_error(CLINIC_DBERR_UNAVAILABLE);
        return settle(db, CLINIC_DB_DOWN);
    }
    db->pgsql = !strcmp(apr_dbd_name(db->dbd->driver), "pgsql");
    if (db->pgsql)   /* messages then carry the SQLSTATE */
        PQsetErrorVerbosity(apr_dbd_native_handle(db->dbd->driver, db->dbd->handle),
                            PQERRORS_VERBOSE);
    apr_pool_cleanup_register(r->pool, db, txn_cleanup, apr_pool_cleanup_null);
    apr_pool_userdata_setn(db, "clinic_db", NULL, r->pool);
    if (apr_time_now() >= clinic_wait_deadline(db->wait))
        return expired(db, CLINIC_PHASE_CONNECT, NULL);
    if (!db->pgsql && (rc = sqlite_writable(db)) != CLINIC_DB_OK)
        return rc;
    if (!apr_hash_get(db->dbd->prepared, READY_KEY, APR_HASH_KEY_STRING))
        return settle(db, prepare_session(db, NULL));
    return db->pgsql ? settle(db, check_alive(db)) : CLINIC_DB_OK;
}

clinic_db_t *clinic_db_of(request_rec *r)
{
    void *db = NULL;

    apr_pool_userdata_get(&db, "clinic_db", r->pool);
    return db && ((clinic_db_t *)db)->dbd && !((clinic_db_t *)db)->expired &&
           clinic_wait_deadline(((clinic_db_t *)db)->wait) - apr_time_now() >
               apr_time_from_sec(1) &&
           apr_hash_get(((clinic_db_t *)db)->dbd->prepared, READY_KEY, APR_HASH_KEY_STRING)
               ? db : NULL;
}

static apr_dbd_prepared_t *statement(clinic_db_t *db, clinic_sql_t q)
{
    apr_dbd_prepared_t *st = apr_hash_get(db->dbd->prepared, stmts[q].label,
                                          APR_HASH_KEY_STRING);
    if (!st)
        clinic_error(db->r, "statement %s is not prepared on this connection",
                     stmts[q].label);
    return st;
}

/* One prepared statement, once: rows into *res (a select) or a count into
 * *nrows. */
static int run_once(clinic_db_t *db, clinic_sql_t q, const char **args,
                    apr_dbd_results_t **res, int *nrows)
{
    apr_dbd_prepared_t *st = statement(db, q);
    apr_time_t t0;
    int rv;

    if (!st)
        return CLINIC_DB_ERROR;
    if ((rv = arm(db, stmts[q].label)) != CLINIC_DB_OK)
        return rv;
    t0 = clinic_metric_now();
    if (res) {
        *res = NULL;
        rv = apr_dbd_pselect(db->dbd->driver, db->r->pool, db->dbd->handle, res, st,
                             1, stmts[q].nargs, args);
    } else {
        *nrows = 0;
        rv = apr_dbd_pquery(db->dbd->driver, db->r->pool, db->dbd->handle, nrows, st,
                            stmts[q].nargs, args);
    }
    clinic_metric_db_time(db->r, t0);
    if (cut(db, stmts[q].label) && rv != 0)
        return CLINIC_DB_DOWN;
    return rv == 0 ? CLINIC_DB_OK
                   : classify(db, rv, stmts[q].label, db->in_txn || !stmts[q].writes, 1);
}

/* Outside a transaction a statement is its own unit of work: after a
 * repaired session it runs again here (inside one, clinic_db_run re-runs
 * the whole transaction). */
static int again(clinic_db_t *db, int rc, int was_in_txn)
{
    if (rc != CLINIC_DB_RETRY || was_in_txn)
        return rc;
    db->retried = 1;
    if (db->repair && (rc = prepare_session(db, "its statements were stale")) != CLINIC_DB_OK)
        return rc;
    return CLINIC_DB_RETRY;
}

static int run_statement(clinic_db_t *db, clinic_sql_t q, const char **args,
                         apr_dbd_results_t **res, int *nrows)
{
    int in_txn = db->in_txn;
    int rc = again(db, run_once(db, q, args, res, nrows), in_txn);

    /* Inside a transaction a RETRY goes back to clinic_db_run, which runs
     * the whole unit again (never this statement alone: the transaction
     * is aborted or, after a reset, gone). */
    if (rc == CLINIC_DB_RETRY && !in_txn &&
        (rc = run_once(db, q, args, res, nrows)) == CLINIC_DB_RETRY)
        rc = CLINIC_DB_DOWN;
    return rc;
}

int clinic_db_select(clinic_db_t *db, clinic_sql_t q, const char **args,
                     apr_dbd_results_t **res)
{
    return run_statement(db, q, args, res, NULL);
}

int clinic_db_exec(clinic_db_t *db, clinic_sql_t q, const char **args, int *nrows)
{
    return run_statement(db, q, args, NULL, nrows);
}

int clinic_db_row(clinic_db_t *db, apr_dbd_results_t *res, apr_dbd_row_t **row)
{
    *row = NULL;
    return apr_dbd_get_row(db->dbd->driver, db->r->pool, res, row, -1) == 0 ? CLINIC_DB_OK
                                                                             : CLINIC_DB_NO_ROW;
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
    int rv;

    /* SQLite: take the write lock now, so that racing writers queue here
     * (with the driver's busy retries) instead of failing at COMMIT. */
    rv = plain(db, db->pgsql ? "BEGIN" : "BEGIN IMMEDIATE");
    clinic_metric_db_time(db->r, t0);
    if (rv != 0)
        return classify(db, rv, "BEGIN", 1, 0);
    db->in_txn = 1;
    return CLINIC_DB_OK;
}

int clinic_db_end(clinic_db_t *db, int rollback)
{
    apr_time_t t0;
    int n, rv, rc;

    if (!db->in_txn)
        return CLINIC_DB_OK;
    t0 = clinic_metric_now();
    rv = plain(db, rollback ? "ROLLBACK" : "COMMIT");
    clinic_metric_db_time(db->r, t0);
    /* A COMMIT whose outcome is unknown must not be repeated. */
    rc = rv == 0 ? CLINIC_DB_OK : classify(db, rv, rollback ? "ROLLBACK" : "COMMIT", 0, 0);
    /* A COMMIT SQLite refused (busy) leaves the transaction open: roll it
     * back (after reading why it failed) before the session goes back to
     * the pool. After a full disk SQLite has rolled back already. */
    if (rv != 0 && !rollback && !db->pgsql && db->in_txn)
        apr_dbd_query(db->dbd->driver, db->dbd->handle, &n, "ROLLBACK");
    db->in_txn = 0;
    return rc;
}

int clinic_db_savepoint(clinic_db_t *db, int rollback_to)
{
    int rv = plain(db, rollback_to ? "ROLLBACK TO SAVEPOINT clinic_work"
                                   : "SAVEPOINT clinic_work");

    return rv == 0 ? CLINIC_DB_OK : classify(db, rv, "SAVEPOINT", 1, 0);
}

int clinic_db_run(clinic_db_t *db, int (*work)(clinic_db_t *db, void *arg), void *arg)
{
    int rc = work(db, arg);

    if (rc != CLINIC_DB_OK)
        clinic_db_end(db, 1);
    if (rc == CLINIC_DB_RETRY) {
        db->retried = 1;
        if (db->repair && (rc = prepare_session(db, "its statements were stale")) != CLINIC_DB_OK)
            return rc;
        rc = work(db, arg);
        if (rc != CLINIC_DB_OK)
            clinic_db_end(db, 1);
        if (rc == CLINIC_DB_RETRY)
            rc = CLINIC_DB_DOWN;
    }
    return rc;
}
