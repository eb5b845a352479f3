/*
 * Liveness and readiness for balancers (docs/API.md "Health checks",
 * FARM.md "Health checks").
 *
 * clinic-live answers 200 while the process serves requests: it touches
 * neither the database nor a key provider.
 *
 * clinic-ready answers 200 only when this process can serve the clinic
 * routes now, else 503 with Retry-After. Its checks:
 *  - database: a pooled connection of the request's server (through the
 *    gate of dbwait.c, under a deadline of CHECK_TIMEOUT or ClinicDBTimeout
 *    if shorter, the watchdog armed) answers SELECT max(version) FROM
 *    clinic_schema, and that pool is not away now;
 *  - schema: the version read is at least CLINIC_SCHEMA_VERSION;
 *  - keys: every key set fetched from a provider (ClinicJWKSURL,
 *    ClinicOIDCIssuer) is loaded in this process;
 *  - running: the MPM is not stopping (a graceful stop or restart: the
 *    process drains its requests in flight and answers 503 meanwhile).
 * The database's result is shared by the process's probes for SHARED: one
 * check runs at a time and a probe arriving meanwhile waits for its result,
 * so a probe a second from each of several balancers costs one statement
 * a second per process at most.
 */
#include "clinic.h"
#include "db.h"
#include "metrics.h"
#include "ap_mpm.h"
#include "http_protocol.h"
#include "http_request.h"

#include <pthread.h>

#define SHARED apr_time_from_sec(1)
#define CHECK_TIMEOUT apr_time_from_sec(3)

/* One database check's result. */
typedef struct {
    int db;                     /* CLINIC_DB_* */
    int found;                  /* the schema version read, 0: none */
    apr_time_t at;              /* when it ended, 0: never */
    server_rec *s;              /* whose pool it used */
} dbcheck_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;
static dbcheck_t last;          /* this process's last check */
static int checking;            /* a request runs one now */
static int was_ready = -1;      /* the last answer, for the log */

/* The trivial statement on a pooled connection, bounded. */
static void check_database(request_rec *r, dbcheck_t *out)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    clinic_db_t *db = NULL;
    const char *v;
    int rc;

    clinic_wait_limit(r, CHECK_TIMEOUT);
    rc = clinic_db_acquire(r, &db);
    if (rc == CLINIC_DB_OK)
        rc = clinic_db_select(db, CLINIC_SQL_SCHEMA_GET, NULL, &res);
    out->found = 0;
    if (rc == CLINIC_DB_OK && clinic_db_row(db, res, &row) == CLINIC_DB_OK &&
        (v = clinic_db_col(db, row, 0)))
        out->found = atoi(v);
    out->db = rc;
    out->s = r->server;
    out->at = apr_time_now();
}

/* The process's last result when it is recent and for r's server, else a
 * new one: one check at a time, the others wait for it. */
static dbcheck_t shared_check(request_rec *r)
{
    apr_time_t until = apr_time_now() + CHECK_TIMEOUT + apr_time_from_sec(1);
    struct timespec ts = {(time_t)apr_time_sec(until), (long)apr_time_usec(until) * 1000};
    dbcheck_t got;

    pthread_mutex_lock(&lock);
    while (checking && pthread_cond_timedwait(&done, &lock, &ts) == 0)
        ;
    got = last;
    if (checking || (last.s == r->server && apr_time_now() - last.at < SHARED)) {
        pthread_mutex_unlock(&lock);
        if (got.s != r->server || !got.at)
            got.db = CLINIC_DB_DOWN, got.found = 0;   /* still running: not known yet */
        return got;
    }
    checking = 1;
    pthread_mutex_unlock(&lock);
    check_database(r, &got);
    pthread_mutex_lock(&lock);
    last = got;
    checking = 0;
    pthread_cond_broadcast(&done);
    pthread_mutex_unlock(&lock);
    return got;
}

static int stopping(void)
{
    int state = AP_MPMQ_RUNNING;

    return ap_mpm_query(AP_MPMQ_MPM_STATE, &state) == APR_SUCCESS &&
           state == AP_MPMQ_STOPPING;
}

static const char *state_word(int v)
{
    return v < 0 ? "unknown" : v ? "ok" : "fail";
}

/* {"state": ...} with a detail when it failed. */
static json_t *check_json(int v, const char *detail)
{
    json_t *o = json_pack("{s:s}", "state", state_word(v));

    if (o && v == 0 && detail)
        json_object_set_new(o, "detail", json_string(detail));
    return o;
}

static const char *db_detail(const dbcheck_t *d, int away)
{
    if (d->db == CLINIC_DB_OK && away)
        return "away";
    return d->db == CLINIC_DB_DOWN ? "unavailable" : d->db == CLINIC_DB_ERROR ? "error" : NULL;
}

/* The checks' results and the body naming them. */
static json_t *readiness(request_rec *r, int checks[CLINIC_CHECK_COUNT])
{
    dbcheck_t d = shared_check(r);
    int away = clinic_wait_away(r), total = 0, loaded = clinic_remote_loaded(&total);
    json_t *body, *c;

    checks[CLINIC_CHECK_DATABASE] = d.db != CLINIC_DB_DOWN && d.db != CLINIC_DB_ERROR && !away;
    checks[CLINIC_CHECK_SCHEMA] = d.db == CLINIC_DB_SCHEMA ? 0
                                  : d.db != CLINIC_DB_OK ? -1
                                  : d.found >= CLINIC_SCHEMA_VERSION;
    checks[CLINIC_CHECK_KEYS] = loaded == total;
    checks[CLINIC_CHECK_RUNNING] = !stopping();
    c = json_object();
    json_object_set_new(c, clinic_check_names[CLINIC_CHECK_DATABASE],
                        check_json(checks[CLINIC_CHECK_DATABASE], db_detail(&d, away)));
    json_object_set_new(c, clinic_check_names[CLINIC_CHECK_SCHEMA],
                        json_pack("{s:s, s:i, s:i}", "state",
                                  state_word(checks[CLINIC_CHECK_SCHEMA]), "needed",
                                  CLINIC_SCHEMA_VERSION, "found", d.found));
    json_object_set_new(c, clinic_check_names[CLINIC_CHECK_KEYS],
                        json_pack("{s:s, s:i, s:i}", "state",
                                  state_word(checks[CLINIC_CHECK_KEYS]), "loaded", loaded,
                                  "expected", total));
    json_object_set_new(c, clinic_check_names[CLINIC_CHECK_RUNNING],
                        check_json(checks[CLINIC_CHECK_RUNNING], "stopping"));
    body = json_pack("{s:s, s:o}", "status", "", "checks", c);
    return clinic_json_pool(r->pool, body);
}

static int send_body(request_rec *r, int status, json_t *body)
{
    char *text = clinic_json_text(r->pool, json_incref(body));

    if (!text)
        return HTTP_INTERNAL_SERVER_ERROR;
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    if (status == HTTP_SERVICE_UNAVAILABLE)
        apr_table_setn(r->headers_out, "Retry-After", CLINIC_RETRY_AFTER);
    ap_set_content_length(r, (apr_off_t)strlen(text));
    if (!r->header_only)
        ap_rputs(text, r);
    return OK;
}

static int ready(request_rec *r)
{
    int checks[CLINIC_CHECK_COUNT], ok = 1, i;
    json_t *body = readiness(r, checks);

    for (i = 0; i < CLINIC_CHECK_COUNT; i++)
        ok = ok && checks[i] == 1;
    json_object_set_new(body, "status", json_string(ok ? "ready" : "not ready"));
    clinic_metric_ready(ok, checks);
    if (was_ready != ok) {
        char *text = clinic_json_text(r->pool, json_incref(json_object_get(body, "checks")));
        clinic_rlog(r, ok ? APLOG_NOTICE : APLOG_WARNING, 0, "this process is %s: %s",
                    ok ? "ready" : "not ready", text ? text : "");
        was_ready = ok;
    }
    return send_body(r, ok ? HTTP_OK : HTTP_SERVICE_UNAVAILABLE, body);
}

static int clinic_health_handle(request_rec *r)
{
    int live;

    if (!r->handler)
        return DECLINED;
    live = !strcmp(r->handler, CLINIC_HANDLER_LIVE);
    if (!live && strcmp(r->handler, CLINIC_HANDLER_READY))
        return DECLINED;
    if (r->method_number != M_GET) {
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
        return send_body(r, HTTP_METHOD_NOT_ALLOWED,
                         clinic_json_pool(r->pool, json_pack("{s:s}", "status",
                                                             "method not allowed")));
    }
    if (live)
        return send_body(r, HTTP_OK,
                         clinic_json_pool(r->pool, json_pack("{s:s}", "status", "live")));
    return ready(r);
}

void clinic_health_register(apr_pool_t *p)
{
    (void)p;
    ap_hook_handler(clinic_health_handle, NULL, NULL, APR_HOOK_MIDDLE);
}
