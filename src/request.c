/*
 * The steps both routes take before their own rules: method, bearer token,
 * media type, a body read bounded by ClinicMaxBody (chunked included), and
 * the JSON parse. Each step either fills the request context or answers.
 */
#include <time.h>

#include "clinic.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"
#include "mediatype.h"
#include "validate.h"

static int check_method(clinic_req_t *c)
{
    request_rec *r = c->r;

    if (r->method_number == M_POST && !r->header_only)
        return CLINIC_GO;
    apr_table_setn(r->headers_out, "Allow", "POST");
    return clinic_fail(c, HTTP_METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED",
                       c->shape == CLINIC_SHAPE_DRF
                           ? apr_psprintf(r->pool, "Method \"%s\" not allowed.", r->method)
                           : "Method not allowed");
}

static int auth_fail(clinic_req_t *c, int had_token)
{
    const char *code, *msg = clinic_sender_denial(c->r, c->shape, had_token, &code,
                                                  c->r->headers_out);

    return clinic_fail(c, HTTP_UNAUTHORIZED, code, msg);
}

/* A fetched key set that has no keys yet: the token is not known to be bad. */
static int keys_unavailable(clinic_req_t *c)
{
    return clinic_fail(c, HTTP_SERVICE_UNAVAILABLE, "KEYS_UNAVAILABLE",
                       clinic_keys_unavailable_text(c->shape));
}

/* The token was verified once for this request, by whichever phase came
 * first (authz.c); the handler reads that answer. */
static int check_auth(clinic_req_t *c)
{
    switch (clinic_authenticate(c->r)) {
    case CLINIC_AUTHN_OFF:
        return CLINIC_GO;
    case CLINIC_AUTHN_OK:
        c->claims = clinic_rstate(c->r)->claims;
        return clinic_dpop_remember(c);
    case CLINIC_AUTHN_NOKEY:
        return clinic_fail_internal(c, clinic_rstate(c->r)->why
                                           ? clinic_rstate(c->r)->why
                                           : "ClinicAuth jwt without algorithm or key");
    case CLINIC_AUTHN_KEYS_WAIT:
        return keys_unavailable(c);
    default:
        return auth_fail(c, clinic_rstate(c->r)->authn == CLINIC_AUTHN_BAD);
    }
}

/* application/json, optionally with charset=utf-8 (mediatype.h). */
static int check_media_type(clinic_req_t *c)
{
    request_rec *r = c->r;
    const char *ct = apr_table_get(r->headers_in, "Content-Type");

    if (clinic_media_type_is_json(ct))
        return CLINIC_GO;
    return clinic_fail(c, HTTP_UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE",
                       apr_psprintf(r->pool, "Unsupported media type \"%s\" in request.",
                                    ct ? ct : ""));
}

static int too_large(clinic_req_t *c, apr_off_t max)
{
    /* Do not read (or let httpd discard) the rest of an oversized body. */
    c->r->connection->keepalive = AP_CONN_CLOSE;
    return clinic_fail(c, HTTP_REQUEST_ENTITY_TOO_LARGE, "BODY_TOO_LARGE",
                       apr_psprintf(c->r->pool,
                                    "Request body is larger than %" APR_OFF_T_FMT " bytes.",
                                    max));
}

/* 413 at once when the Content-Length announces more than max. */
static int body_announced(clinic_req_t *c, apr_off_t max)
{
    request_rec *r = c->r;
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_off_t n;

    if (cl && !apr_table_get(r->headers_in, "Transfer-Encoding") &&
        apr_strtoff(&n, cl, NULL, 10) == APR_SUCCESS && n > max)
        return too_large(c, max);
    return CLINIC_GO;
}

/* Move one brigade's data buckets to body, counting them against max; *eos
 * at its end. CLINIC_GO or the answer. */
static int body_take(clinic_req_t *c, apr_bucket_brigade *bb, apr_bucket_brigade *body,
                     apr_off_t max, apr_off_t *len, int *eos)
{
    apr_bucket *e;

    while ((e = APR_BRIGADE_FIRST(bb)) != APR_BRIGADE_SENTINEL(bb)) {
        const char *data;
        apr_size_t n;
        if (APR_BUCKET_IS_EOS(e)) {
            *eos = 1;
            break;
        }
        if (APR_BUCKET_IS_METADATA(e)) {
            apr_bucket_delete(e);
            continue;
        }
        if (apr_bucket_read(e, &data, &n, APR_BLOCK_READ) != APR_SUCCESS ||
            apr_bucket_setaside(e, c->r->pool) != APR_SUCCESS) {
            c->r->connection->keepalive = AP_CONN_CLOSE;
            return HTTP_BAD_REQUEST;
        }
        if ((*len += (apr_off_t)n) > max)
            return too_large(c, max);
        APR_BUCKET_REMOVE(e);
        APR_BRIGADE_INSERT_TAIL(body, e);
    }
    return CLINIC_GO;
}

/* Read the whole body, at most max bytes, whatever the framing: its buckets
 * are kept as they come and copied once, into one buffer of its size. */
static int read_body(clinic_req_t *c)
{
    request_rec *r = c->r;
    apr_off_t max = CLINIC_MAX_BODY(c->conf), len = 0;
    apr_bucket_brigade *bb, *body;
    apr_size_t n;
    int rc, eos = 0;

    if ((rc = body_announced(c, max)) != CLINIC_GO)
        return rc;
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    body = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    while (!eos) {
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                                         APR_BLOCK_READ, HUGE_STRING_LEN);
        if (rv != APR_SUCCESS) {
            clinic_rlog(r, APLOG_INFO, rv, "reading the request body failed");
            r->connection->keepalive = AP_CONN_CLOSE;
            return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        }
        rc = body_take(c, bb, body, max, &len, &eos);
        apr_brigade_cleanup(bb);
        if (rc != CLINIC_GO)
            return rc;
    }
    n = (apr_size_t)len;
    c->body = apr_palloc(r->pool, n + 1);
    rc = apr_brigade_flatten(body, c->body, &n) == APR_SUCCESS ? CLINIC_GO : HTTP_BAD_REQUEST;
    c->body[n] = '\0';
    c->body_len = n;
    apr_brigade_destroy(body);
    return rc;
}

static int parse_body(clinic_req_t *c)
{
    char err[256];
    json_t *v = clinic_json_pool(c->r->pool,
                                 clinic_json_parse(c->body, c->body_len, err, sizeof err));

    if (!v)
        return clinic_fail(c, HTTP_BAD_REQUEST, "INVALID_JSON", err);
    if (json_is_object(v)) {
        c->json = v;
        return CLINIC_GO;
    }
    if (c->shape == CLINIC_SHAPE_ENVELOPE)
        return clinic_fail(c, HTTP_BAD_REQUEST, "INVALID_JSON",
                           "Request body must be a JSON object");
    return clinic_send_json(c, HTTP_BAD_REQUEST,
        json_pack("{s:[s]}", "non_field_errors",
                  apr_psprintf(c->r->pool, "Invalid data. Expected a dictionary, but got %s.",
                               clinic_json_pytype(v))));
}

int clinic_request_begin(clinic_req_t *c, request_rec *r, clinic_shape_t shape)
{
    int rc;

    memset(c, 0, sizeof *c);
    c->r = r;
    c->shape = shape;
    c->conf = ap_get_module_config(r->per_dir_config, &clinic_module);
    if ((rc = clinic_cors_begin(c)) == CLINIC_GO &&
        (rc = check_method(c)) == CLINIC_GO && (rc = check_auth(c)) == CLINIC_GO &&
        (rc = check_media_type(c)) == CLINIC_GO && (rc = read_body(c)) == CLINIC_GO)
        rc = parse_body(c);
    return rc;
}
