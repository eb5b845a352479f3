/*
 * Every answer mod_clinic gives: JSON built with jansson, the common
 * headers, and the two error shapes (DRF for /visits, the {success, error,
 * code} envelope for add-and-link) with the words of each refusal kept in
 * this one place. Below every feature: it uses the counters (metrics.c) only.
 */
#include "clinic.h"
#include "db.h"
#include "metrics.h"
#include "http_protocol.h"
#include "apr_buckets.h"
#include "util_filter.h"

#define FORBIDDEN_TEXT "You do not have permission to perform this action"

static apr_status_t json_cleanup(void *v)
{
    json_decref((json_t *)v);
    return APR_SUCCESS;
}

json_t *clinic_json_pool(apr_pool_t *p, json_t *v)
{
    if (v)
        apr_pool_cleanup_register(p, v, json_cleanup, apr_pool_cleanup_null);
    return v;
}

/* jansson writes the text straight into pool memory: no malloc'd buffer
 * grown from 16 bytes and copied afterwards. */
typedef struct {
    apr_pool_t *p;
    char *buf;
    size_t len, cap;
} pool_text_t;

static int to_pool(const char *data, size_t n, void *arg)
{
    pool_text_t *t = arg;

    if (t->len + n + 1 > t->cap) {
        char *nbuf;
        while (t->len + n + 1 > t->cap)
            t->cap *= 2;
        nbuf = apr_palloc(t->p, t->cap);
        memcpy(nbuf, t->buf, t->len);
        t->buf = nbuf;
    }
    memcpy(t->buf + t->len, data, n);
    t->len += n;
    return 0;
}

char *clinic_json_text(apr_pool_t *p, json_t *body)
{
    pool_text_t t = {p, NULL, 0, 1024};
    int rc;

    if (!body)
        return NULL;
    t.buf = apr_palloc(p, t.cap);
    rc = json_dump_callback(body, to_pool, &t, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (rc != 0)
        return NULL;
    t.buf[t.len] = '\0';
    return t.buf;
}

/* The /visits outcome word for an answer's status. */
static const char *drf_outcome(int status)
{
    switch (status) {
    case HTTP_OK: return "created";
    case HTTP_NO_CONTENT: return "preflight";
    case HTTP_BAD_REQUEST: return "invalid";
    case HTTP_UNAUTHORIZED: return "unauthorized";
    case HTTP_FORBIDDEN: return "forbidden";
    case HTTP_METHOD_NOT_ALLOWED: return "method_not_allowed";
    case HTTP_CONFLICT: return "in_progress";
    case HTTP_REQUEST_ENTITY_TOO_LARGE: return "too_large";
    case HTTP_UNSUPPORTED_MEDIA_TYPE: return "unsupported_media_type";
    case HTTP_UNPROCESSABLE_ENTITY: return "key_reused";
    case HTTP_SERVICE_UNAVAILABLE: return "unavailable";
    case HTTP_INTERNAL_SERVER_ERROR: return "error";
    default: return "other";
    }
}

int clinic_send_text(clinic_req_t *c, int status, const char *text)
{
    request_rec *r = c->r;
    apr_bucket_brigade *bb;
    apr_size_t len = strlen(text);

    if (c->shape == CLINIC_SHAPE_DRF && (!c->outcome || status != HTTP_OK))
        c->outcome = c->outcome && !strcmp(c->outcome, "replayed") ? c->outcome
                                                                   : drf_outcome(status);
    else if (!c->outcome)
        c->outcome = status == HTTP_OK ? "LINKED" : "OTHER";
    clinic_metric_outcome(r, c->outcome);
    apr_table_setn(r->notes, CLINIC_NOTE_OUTCOME, c->outcome);
    r->status = status;
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
    ap_set_content_length(r, (apr_off_t)len);
    if (r->header_only)
        return OK;
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create(text, len, bb->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(bb->bucket_alloc));
    if (ap_pass_brigade(r->output_filters, bb) != APR_SUCCESS)
        return AP_FILTER_ERROR;
    return OK;
}

int clinic_send_json(clinic_req_t *c, int status, json_t *body)
{
    char *text = clinic_json_text(c->r->pool, body);

    if (!text) {
        clinic_error(c->r, "cannot serialise the response");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    return clinic_send_text(c, status, text);
}

json_t *clinic_error_json(clinic_shape_t shape, int status, const char *code, const char *msg)
{
    if (shape == CLINIC_SHAPE_ENVELOPE)
        return json_pack("{s:b, s:s, s:s}", "success", 0, "error", msg, "code", code);
    if (status == HTTP_INTERNAL_SERVER_ERROR)
        return json_pack("{s:s}", "error", msg);
    return json_pack("{s:s}", "detail", msg);
}

const char *clinic_keys_unavailable_text(clinic_shape_t shape)
{
    return shape == CLINIC_SHAPE_ENVELOPE ? "Token keys are not available yet"
                                          : "Token keys are not available yet; try again later.";
}

const char *clinic_denial_text(clinic_shape_t shape, int status, int bad_token,
                               const char **code)
{
    int drf = shape == CLINIC_SHAPE_DRF;

    if (status == HTTP_FORBIDDEN) {
        *code = "FORBIDDEN";
        return drf ? FORBIDDEN_TEXT "." : FORBIDDEN_TEXT;
    }
    *code = bad_token ? "INVALID_TOKEN" : "AUTH_REQUIRED";
    if (bad_token)
        return drf ? "Invalid or expired token." : "Invalid or expired token";
    return drf ? "Authentication credentials were not provided." : "Missing bearer token";
}

void clinic_challenge(apr_table_t *t, int bad_token)
{
    apr_table_setn(t, "WWW-Authenticate",
                   bad_token ? "Bearer realm=\"clinic\", error=\"invalid_token\""
                             : "Bearer realm=\"clinic\"");
}

int clinic_fail(clinic_req_t *c, int status, const char *code, const char *msg)
{
    if (c->shape == CLINIC_SHAPE_ENVELOPE)
        c->outcome = code;
    if (status == HTTP_SERVICE_UNAVAILABLE)
        apr_table_setn(c->r->headers_out, "Retry-After", CLINIC_RETRY_AFTER);
    return clinic_send_json(c, status, clinic_error_json(c->shape, status, code, msg));
}

int clinic_fail_internal(clinic_req_t *c, const char *why)
{
    clinic_error(c->r, "internal error: %s", why);
    return clinic_fail(c, HTTP_INTERNAL_SERVER_ERROR, "INTERNAL_ERROR",
                       "Internal server error");
}

int clinic_db_fail(clinic_req_t *c, int outcome)
{
    if (outcome == CLINIC_DB_DOWN)
        return clinic_fail(c, HTTP_SERVICE_UNAVAILABLE, "DATABASE_UNAVAILABLE",
                           "The database is unavailable; retry later.");
    if (outcome == CLINIC_DB_SCHEMA)   /* reachable but the wrong one: logged once */
        return clinic_fail(c, HTTP_INTERNAL_SERVER_ERROR, "INTERNAL_ERROR",
                           "Internal server error");
    return clinic_fail_internal(c, "database statement failed");
}
