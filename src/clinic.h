/*
 * mod_clinic: shared types of the httpd-facing code.
 *
 * The per-request context and the prototypes of the request layer; the
 * configuration is config.h's, the logging macros log.h's.
 *
 * Return convention of the request layer (respond.c, request.c, cors.c, the
 * handlers, idempotency.c's prepare and claim): an int that is the handler
 * hook's return value once an answer was given -- OK after the module sent
 * it, or an HTTP status for httpd to answer -- and CLINIC_GO from a step that
 * has not answered and lets the request carry on. Nothing else: below this
 * layer the database answers CLINIC_DB_* (db.h), the core 0/-1 (core.h).
 */
#ifndef CLINIC_H
#define CLINIC_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_strings.h"

#include <jansson.h>

#include "config.h"
#include "log.h"
#include "keyset.h"
#include "token.h"


extern module AP_MODULE_DECLARE_DATA clinic_module;

#define CLINIC_RETRY_AFTER "5"


/* Which error shape a route answers in. */
typedef enum {
    CLINIC_SHAPE_DRF,       /* POST /visits: Django REST framework */
    CLINIC_SHAPE_ENVELOPE   /* add-and-link: {success, error, code} */
} clinic_shape_t;

/* One request being handled. */
typedef struct {
    request_rec *r;
    const clinic_dir_conf *conf;
    clinic_shape_t shape;
    json_t *claims;            /* verified token claims, NULL when auth off */
    char *body;                /* request body, NUL-terminated */
    apr_size_t body_len;
    json_t *json;              /* parsed body */
    const char *outcome;       /* what the answer was, for logs and metrics:
                                * add-and-link's `code` (LINKED on success,
                                * REPLAYED for a replay), a lower-case word on
                                * /visits (created, invalid, unauthorized, ...);
                                * set by respond.c when an answer is sent */
} clinic_req_t;

/* What mod_clinic knows of one request across Apache's phases: the module's
 * one r->request_config slot (rstate.c); other files keep theirs in here. */
enum { CLINIC_ROUTE_NONE, CLINIC_ROUTE_VISITS, CLINIC_ROUTE_LINK };
enum {
    CLINIC_AUTHN_UNTRIED,      /* nobody asked yet */
    CLINIC_AUTHN_OK,           /* the token verified: claims set */
    CLINIC_AUTHN_NONE,         /* no bearer token */
    CLINIC_AUTHN_BAD,          /* a token that does not verify */
    CLINIC_AUTHN_OFF,          /* ClinicAuth off */
    CLINIC_AUTHN_NOKEY,        /* no usable key: ClinicAuth jwt without algorithm
                                * or key, or no fetcher for the Location (500) */
    CLINIC_AUTHN_KEYS_WAIT     /* keys from a URL not fetched yet (503) */
};
typedef struct {
    int route;                 /* CLINIC_ROUTE_*: the Location's clinic handler */
    int authn;                 /* CLINIC_AUTHN_* */
    json_t *claims;            /* verified claims (the pool owns them) */
    const char *why;           /* CLINIC_AUTHN_NOKEY: what is missing, for the log */
    void *metrics;             /* metrics.c's per-request figures */
    void *sender;              /* dpop.c's: the scheme, the proof, the 401's error */
} clinic_rstate_t;

/* --- rstate.c: the request's state, below every other file --- */
/* The request's state, made on first use. */
clinic_rstate_t *clinic_rstate(request_rec *r);
/* CLINIC_ROUTE_* of the handler the current per-dir config sets (not cached). */
int clinic_route_of(request_rec *r);

/* --- authz.c: authentication once per request, Require clinic-claim --- */
/* Verify the bearer token the first time any phase asks, remembering the
 * answer (CLINIC_AUTHN_*); on success r->user is the ClinicUserClaim. */
int clinic_authenticate(request_rec *r);
void clinic_authz_register(apr_pool_t *p);

/* --- audit.c: request id and the notes mod_log_config writes (respond.c
 * writes CLINIC_NOTE_OUTCOME with every answer) --- */
#define CLINIC_NOTE_REQUEST_ID  "clinic-request-id"
#define CLINIC_NOTE_CLIENT_REQUEST_ID "clinic-client-request-id"
#define CLINIC_NOTE_ROUTE       "clinic-route"
#define CLINIC_NOTE_CALLER      "clinic-caller"
#define CLINIC_NOTE_OUTCOME     "clinic-outcome"
#define CLINIC_NOTE_VISIT       "clinic-visit"
#define CLINIC_NOTE_PATIENT     "clinic-patient"
#define CLINIC_NOTE_APPOINTMENT "clinic-appointment"
/* Record a touched record's id (copied) under one of the notes above. */
void clinic_audit_record(request_rec *r, const char *note, const char *id);
/* A replayed answer (text) names the records its first answer touched. */
void clinic_audit_replayed(clinic_req_t *c, const char *text);
void clinic_audit_register(apr_pool_t *p);

/* --- respond.c: every answer goes through here --- */
/* Send body (reference stolen) with status and the common headers. */
int clinic_send_json(clinic_req_t *c, int status, json_t *body);
/* Send already serialised JSON (text must live as long as r->pool). */
int clinic_send_text(clinic_req_t *c, int status, const char *text);
/* Serialise into the pool (reference stolen); NULL on failure. */
char *clinic_json_text(apr_pool_t *p, json_t *body);
/* An error body in a shape: DRF {"detail": msg} ({"error": msg} for 500)
 * or the envelope with code. A new reference. */
json_t *clinic_error_json(clinic_shape_t shape, int status, const char *code, const char *msg);
/* The words of a 401 (bad_token: a token was given) or a 403 in a shape;
 * *code gets the envelope's code. */
const char *clinic_denial_text(clinic_shape_t shape, int status, int bad_token,
                               const char **code);
/* The words of the 503 given while a fetched key set has no keys yet. */
const char *clinic_keys_unavailable_text(clinic_shape_t shape);
/* WWW-Authenticate for a 401 into headers t. */
void clinic_challenge(apr_table_t *t, int bad_token);
/* Error in the route's shape: DRF {"detail": msg} or the envelope with code. */
int clinic_fail(clinic_req_t *c, int status, const char *code, const char *msg);
/* 500 in the route's shape, logging why (never request data). */
int clinic_fail_internal(clinic_req_t *c, const char *why);
/* A failed database step's CLINIC_DB_* (db.h) answered in the route's shape:
 * 503 when the database is down, else 500. */
int clinic_db_fail(clinic_req_t *c, int outcome);
/* Tie a jansson value's lifetime to a pool. Returns v. */
json_t *clinic_json_pool(apr_pool_t *p, json_t *v);

/* --- request.c: the steps shared by both routes --- */
/* A step's "carry on" (see the convention above): distinct from OK, DECLINED
 * and every HTTP status. */
#define CLINIC_GO (-100)
/* Method, auth, media type, size, JSON. Returns CLINIC_GO with c filled, or
 * the already-sent answer's return code. */
int clinic_request_begin(clinic_req_t *c, request_rec *r, clinic_shape_t shape);

/* --- cors.c: ClinicCORSOrigins / ClinicCORSMaxAge --- */
/* One ClinicCORSOrigins argument: an origin, `*` or `none`. NULL or an error. */
const char *clinic_cors_add_origin(apr_pool_t *p, clinic_dir_conf *c, const char *arg);
/* First step of every request: answers a valid preflight (204), else makes
 * sure the CORS headers for an allowed Origin are in r->err_headers_out. */
int clinic_cors_begin(clinic_req_t *c);
/* header_parser hook: the same headers before Apache's access checks run,
 * in clinic Locations only. */
int clinic_cors_early(request_rec *r);
/* Put the answer headers for this Origin in r->err_headers_out (once). */
void clinic_cors_headers(request_rec *r, const clinic_dir_conf *conf);
/* A preflight this Location will answer 204: an authz provider may grant it
 * (a browser never sends credentials with a preflight). */
int clinic_cors_preflight_ok(request_rec *r, const clinic_dir_conf *conf);

/* --- storage.c: no DocumentRoot mapping for the clinic routes --- */
/* translate_name (REALLY_FIRST) and map_to_storage (FIRST) hooks. */
int clinic_storage_note(request_rec *r);
int clinic_map_to_storage(request_rec *r);

/* --- handlers --- */
int clinic_visits_handle(request_rec *r);
int clinic_link_handle(request_rec *r);

/* --- db.c --- */
int clinic_db_init(server_rec *s, int needed);

/* --- remote.c: key sets fetched over HTTPS, refreshed in every child --- */
typedef struct clinic_remote clinic_remote_t;
/* check_config: the fetcher for a Location's effective settings (shared by
 * Locations with the same ones). NULL: *why says what is wrong. */
clinic_remote_t *clinic_remote_register(apr_pool_t *pconf, server_rec *s,
                                        const clinic_dir_conf *c, const char **why);
/* The fetcher for a request's settings, NULL if none was registered. */
clinic_remote_t *clinic_remote_lookup(const clinic_dir_conf *c);
int clinic_remote_post_config(apr_pool_t *p, server_rec *s);
void clinic_remote_child_init(apr_pool_t *p, server_rec *s);
/* The current set with a reference held (release with clinic_keyset_unref),
 * or NULL while there is none. */
clinic_keyset_t *clinic_remote_acquire(clinic_remote_t *rem);
/* Fetchers with a key set loaded in this process; *total: fetchers. */
int clinic_remote_loaded(int *total);
/* An unknown kid in a token checked against `mine`: ask for a refetch (at
 * most one per 60 s per process; a request arriving while one runs waits for
 * it too), waiting a bounded short time. 1 when a set other than mine is
 * current now (worth verifying again). */
int clinic_remote_refetch(clinic_remote_t *rem, const clinic_keyset_t *mine);

/* The key file's (or JWKS file's) ready-to-verify set for alg, built on
 * first use; NULL with why when nothing of it fits alg. */
clinic_keyset_t *clinic_keysrc_set(const clinic_keysrc_t *k, const char *alg, char *why,
                                   size_t whylen);

/* --- dpop.c: DPoP proofs and certificate-bound tokens --- */
/* ClinicDPoP (cmd->info NULL) and ClinicCertBoundTokens (cmd->info 1). */
const char *clinic_dpop_set_mode(cmd_parms *cmd, void *cfg, const char *arg);
const char *clinic_dpop_add_alg(cmd_parms *cmd, void *cfg, const char *arg);
const char *clinic_dpop_set_url(cmd_parms *cmd, void *cfg, const char *arg);
/* The access token of `Authorization: Bearer` or, where DPoP is accepted,
 * `Authorization: DPoP` (remembered for the checks below). 1/0 as
 * clinic_bearer_token. */
int clinic_sender_token(request_rec *r, const clinic_dir_conf *conf, const char **tok,
                        size_t *len);
/* The verified token's binding: cnf.x5t#S256 against mod_ssl's client
 * certificate, cnf.jkt against the DPoP proof (checked here but for its jti),
 * a bound token never as Bearer. 0, or -1 with *why for the log. */
int clinic_sender_check(request_rec *r, const clinic_dir_conf *conf, const char *tok,
                        size_t len, json_t *claims, const char **why);
/* In the handler, before the route's own work: the proof's jti recorded in
 * the database, refused when any node saw it within the window. */
int clinic_dpop_remember(clinic_req_t *c);
/* The words of a 401 and its WWW-Authenticate challenges (Bearer, DPoP,
 * with the error of a refused proof or binding) into t. */
const char *clinic_sender_denial(request_rec *r, clinic_shape_t shape, int bad_token,
                                 const char **code, apr_table_t *t);

/* --- health.c: liveness and readiness for balancers --- */
#define CLINIC_HANDLER_LIVE  "clinic-live"
#define CLINIC_HANDLER_READY "clinic-ready"
void clinic_health_register(apr_pool_t *p);

/* --- purge.c: after the answer, delete a batch of expired Idempotency-Key rows --- */
int clinic_idem_purge(request_rec *r);


#endif
