/*
 * CORS for the seeds' browser front ends (ClinicCORSOrigins,
 * ClinicCORSMaxAge). The first step of every request, before the method
 * check and before authentication:
 *
 *  - a preflight (OPTIONS with Origin and Access-Control-Request-Method)
 *    from an allowed origin, for POST and only the headers the routes use,
 *    answers 204 with the Access-Control-Allow-* headers; any other
 *    preflight is handled as if CORS were off (405, no CORS headers), and
 *    the browser refuses;
 *  - any other request from an allowed origin gets Access-Control-Allow-
 *    Origin and -Expose-Headers in r->err_headers_out, which httpd sends
 *    with every answer the module gives. They are set at header_parser time
 *    already (clinic_cors_early), so that answers httpd gives itself after
 *    the location walk -- a `Require` that denies, before the handler --
 *    carry them too (docs/security.md, "Browser front ends": what is not covered).
 *
 * Unset (or `none`): nothing here runs, not even Vary.
 */
#include "clinic.h"
#include "apr_lib.h"
#include "http_core.h"
#include "http_protocol.h"

#define CORS_ALLOW_METHODS  "POST"
#define CORS_ALLOW_HEADERS  "Authorization, Content-Type, Idempotency-Key, X-Request-Id, DPoP"
#define CORS_EXPOSE_HEADERS \
    "Retry-After, WWW-Authenticate, X-Request-Id, Idempotent-Replayed, DPoP-Nonce"

static const char *const request_headers[] = {
    "authorization", "content-type", "idempotency-key", "x-request-id", "dpop", NULL
};

/* scheme://host[:port], nothing after: what a browser sends as Origin. */
static int is_origin(const char *s)
{
    const char *p = s;

    if (!apr_isalpha(*p))
        return 0;
    while (apr_isalnum(*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    if (strncmp(p, "://", 3))
        return 0;
    p += 3;
    if (*p == '[') {                        /* IPv6 literal */
        const char *end = strchr(p, ']');
        if (!end || end == p + 1 || strspn(p + 1, "0123456789abcdefABCDEF:.") != (size_t)(end - p - 1))
            return 0;
        p = end + 1;
    } else {
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");
        if (!n)
            return 0;
        p += n;
    }
    if (*p == ':') {
        size_t n = strspn(++p, "0123456789");
        if (n < 1 || n > 5 || atol(p) > 65535)
            return 0;
        p += n;
    }
    return *p == '\0';
}

static int is_word(const apr_array_header_t *a, const char *w)
{
    return a->nelts == 1 && !strcmp(APR_ARRAY_IDX(a, 0, const char *), w);
}

const char *clinic_cors_add_origin(apr_pool_t *p, clinic_dir_conf *c, const char *arg)
{
    int alone = !strcmp(arg, "*") || !strcasecmp(arg, "none");

    if (!alone && !is_origin(arg))
        return apr_psprintf(p, "ClinicCORSOrigins: '%s' is not an origin: write "
                            "scheme://host[:port] with no path or trailing slash "
                            "(e.g. https://registration.hospital.example), * or none", arg);
    if (!c->cors_origins)
        c->cors_origins = apr_array_make(p, 2, sizeof(const char *));
    else if (alone || is_word(c->cors_origins, "*") || is_word(c->cors_origins, "none"))
        return "ClinicCORSOrigins: * and none stand alone, not beside other origins";
    APR_ARRAY_PUSH(c->cors_origins, const char *) = alone && strcmp(arg, "*") ? "none" : arg;
    return NULL;
}

/* What Access-Control-Allow-Origin says to this Origin, NULL: not allowed. */
static const char *allow_origin(const apr_array_header_t *a, const char *origin)
{
    int i;

    if (is_word(a, "*"))
        return "*";
    for (i = 0; i < a->nelts; i++)
        if (!strcasecmp(APR_ARRAY_IDX(a, i, const char *), origin))
            return origin;
    return NULL;
}

/* Access-Control-Request-Headers: every name one the routes read? */
static int headers_allowed(apr_pool_t *p, const char *list)
{
    char *copy = apr_pstrdup(p, list ? list : ""), *last, *name;
    int i;

    for (name = apr_strtok(copy, ",", &last); name; name = apr_strtok(NULL, ",", &last)) {
        apr_collapse_spaces(name, name);
        if (!*name)
            continue;
        for (i = 0; request_headers[i] && strcasecmp(request_headers[i], name); i++)
            ;
        if (!request_headers[i])
            return 0;
    }
    return 1;
}

/* NULL when this is a preflight the route answers 204; else why not. */
static const char *preflight_refusal(request_rec *r, const apr_array_header_t *origins,
                                     const char *method, const char **allow)
{
    const char *origin = apr_table_get(r->headers_in, "Origin");

    *allow = origin ? allow_origin(origins, origin) : NULL;
    if (!*allow)
        return "origin not in ClinicCORSOrigins";
    if (strcmp(method, "POST"))
        return "method other than POST";
    if (!headers_allowed(r->pool, apr_table_get(r->headers_in, "Access-Control-Request-Headers")))
        return "a request header the routes do not take";
    return NULL;
}

static const char *preflight_method(request_rec *r)
{
    return r->method_number == M_OPTIONS
               ? apr_table_get(r->headers_in, "Access-Control-Request-Method") : NULL;
}

static int cors_on(const clinic_dir_conf *conf)
{
    return conf->cors_origins && !is_word(conf->cors_origins, "none");
}

int clinic_cors_preflight_ok(request_rec *r, const clinic_dir_conf *conf)
{
    const char *method = preflight_method(r), *allow;

    return cors_on(conf) && method && !preflight_refusal(r, conf->cors_origins, method, &allow);
}

void clinic_cors_headers(request_rec *r, const clinic_dir_conf *conf)
{
    apr_table_t *h = r->err_headers_out;
    const char *origin, *allow;

    if (!cors_on(conf) || apr_table_get(r->notes, "clinic-cors"))
        return;
    apr_table_setn(r->notes, "clinic-cors", "1");
    /* The answer depends on Origin, whatever it was: caches must know. */
    apr_table_mergen(h, "Vary", "Origin");
    origin = apr_table_get(r->headers_in, "Origin");
    allow = origin ? allow_origin(conf->cors_origins, origin) : NULL;
    if (allow && !preflight_method(r)) {
        apr_table_setn(h, "Access-Control-Allow-Origin", allow);
        apr_table_setn(h, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
    }
}

int clinic_cors_begin(clinic_req_t *c)
{
    request_rec *r = c->r;
    apr_table_t *h = r->err_headers_out;
    const char *method = preflight_method(r), *allow, *why;

    clinic_cors_headers(r, c->conf);
    if (!method || !cors_on(c->conf))
        return CLINIC_GO;
    if ((why = preflight_refusal(r, c->conf->cors_origins, method, &allow)) != NULL) {
        /* As without CORS (405), and nothing the browser could accept. */
        clinic_info(r, "CORS preflight refused: %s", why);
        return CLINIC_GO;
    }
    apr_table_setn(h, "Access-Control-Allow-Origin", allow);
    apr_table_setn(h, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS);
    apr_table_setn(h, "Access-Control-Allow-Headers", CORS_ALLOW_HEADERS);
    apr_table_setn(h, "Access-Control-Max-Age",
                   apr_ltoa(r->pool, CLINIC_CORS_MAX_AGE(c->conf)));
    c->outcome = c->shape == CLINIC_SHAPE_ENVELOPE ? "PREFLIGHT" : "preflight";
    return clinic_send_text(c, HTTP_NO_CONTENT, "");
}

int clinic_cors_early(request_rec *r)
{
    if (r->main || !cors_on(ap_get_module_config(r->per_dir_config, &clinic_module)))
        return DECLINED;
    if (clinic_rstate(r)->route != CLINIC_ROUTE_NONE)
        clinic_cors_headers(r, ap_get_module_config(r->per_dir_config, &clinic_module));
    return DECLINED;
}
