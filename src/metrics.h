/*
 * Prometheus metrics and the mod_status section (docs/operations.md "Metrics").
 *
 * Counters live in one shared-memory segment made in the parent at
 * post_config: a header, then one block of counters per slot. A process adds
 * to the block of slot (pid % slots) with relaxed atomic adds, so the
 * request path takes no lock; a scrape sums every block. The segment is kept
 * across graceful restarts (the process pool holds it) and zeroed on a full
 * start or restart (the pre_mpm hook runs only then), so figures survive a
 * child's exit and a graceful restart and start from zero on a full restart.
 * With `ClinicMetrics off` there is no segment and every call returns at once.
 */
#ifndef CLINIC_METRICS_H
#define CLINIC_METRICS_H

#include "httpd.h"
#include "http_config.h"

/* The version: the Makefile passes it from debian/changelog's first entry. */
#ifndef CLINIC_VERSION
#error "CLINIC_VERSION is not defined: build with the Makefile (make mod_clinic.so)"
#endif

#define CLINIC_HANDLER_METRICS "clinic-metrics"

/* Database error classes (clinic_db_errors_total{class}). */
typedef enum {
    CLINIC_DBERR_UNAVAILABLE,   /* no connection, connection lost, overloaded */
    CLINIC_DBERR_TIMEOUT,       /* statement or lock timeout; SQLite still busy */
    CLINIC_DBERR_REPAIRED,      /* a session lost its statements and was repaired */
    CLINIC_DBERR_OTHER,         /* anything else (answered 500) */
    CLINIC_DBERR_COUNT
} clinic_dberr_t;

/* Idempotency outcomes (clinic_idempotency_total{outcome}). */
typedef enum {
    CLINIC_IDEM_STORED,         /* an answer stored with the request's writes */
    CLINIC_IDEM_REPLAYED,
    CLINIC_IDEM_IN_PROGRESS,
    CLINIC_IDEM_KEY_REUSED,
    CLINIC_IDEM_COUNT
} clinic_idem_outcome_t;

/* --- configuration and hooks (mod_clinic.c) --- */
const char *clinic_metrics_set(cmd_parms *cmd, void *cfg, int on);   /* ClinicMetrics */
/* The segment's life, the clinic-metrics handler, the mod_status section. */
void clinic_metrics_register_hooks(apr_pool_t *p);

/* --- the request path --- */
/* Around a route's handler: begin before it, end with its return code
 * (returned). route: 0 visits, 1 add-and-link. */
void clinic_metric_begin(request_rec *r);
int clinic_metric_end(request_rec *r, int route, int rc);
/* The answer's outcome word (respond.c). */
void clinic_metric_outcome(request_rec *r, const char *outcome);
/* Time spent in one database call that started at t0 = clinic_metric_now()
 * (0 when metrics are off: then nothing is read from the clock) (db.c). */
apr_time_t clinic_metric_now(void);
void clinic_metric_db_time(request_rec *r, apr_time_t t0);
void clinic_metric_db_error(clinic_dberr_t cls);
/* The gate in front of mod_dbd's pool (dbwait.c): this process's pool
 * size, a change of its connections in use and requests waiting, a wait's
 * length, a request refused at once, a deadline that ran out (phase:
 * dbwait.h's clinic_phase_t). */
void clinic_metric_pool_max(int max);
void clinic_metric_pool_change(int in_use, int waiting);
void clinic_metric_pool_wait(apr_interval_time_t us);
void clinic_metric_pool_refused(void);
void clinic_metric_db_expired(int phase);
/* Readiness (health.c): the checks, and the last answer of this process
 * with each check's result (1 ok, 0 failing, -1 not known). */
typedef enum {
    CLINIC_CHECK_DATABASE,      /* a pooled connection answers a trivial statement */
    CLINIC_CHECK_SCHEMA,        /* the schema version is the one the module needs */
    CLINIC_CHECK_KEYS,          /* every key set fetched from a provider is loaded */
    CLINIC_CHECK_RUNNING,       /* the server is not stopping or restarting */
    CLINIC_CHECK_COUNT
} clinic_check_t;
extern const char *const clinic_check_names[CLINIC_CHECK_COUNT];
void clinic_metric_ready(int ready, const int checks[CLINIC_CHECK_COUNT]);
/* A token verification's result: "ok", "cache_hit", "missing", or the
 * verifier's reason string (mapped to a short label; unknown: "other"). */
void clinic_metric_token(const char *result);
/* STORED counts once the request's answer is not a 5xx. */
void clinic_metric_idem(request_rec *r, clinic_idem_outcome_t o);

/* --- key sets fetched from a URL (for the key-fetching code) --- */
/* After each fetch of the key set at url: ok, and the keys now loaded.
 * Sets clinic_jwks_last_success_timestamp_seconds and clinic_jwks_keys,
 * counts clinic_jwks_fetch_failures_total. At most 16 URLs are tracked. */
void clinic_metric_keyset_fetch(const char *url, int ok, unsigned nkeys);

#endif
