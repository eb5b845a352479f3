/*
 * Apache's own authentication and authorization for clinic Locations.
 *
 * The bearer token is verified once per request, by whichever phase asks
 * first (`Require clinic-claim` in the authz phase, the check_user_id hook
 * when another provider such as `Require valid-user` needs a user, or the
 * handler), and the answer is kept in the request's state; r->user becomes
 * the token's ClinicUserClaim and AUTH_TYPE `Bearer`.
 *
 * The provider tells mod_authz_core the truth (granted, denied, or
 * "denied, no user" when there is no usable token), so that it composes
 * with `Require ip`, `<RequireAll>`, `<RequireAny>` and `Require not`. The
 * 401, 403 and 500 that Apache then answers itself in a clinic Location are
 * turned into the route's JSON shape in the insert_error_filter hook: the
 * body as a per-request custom response, the content type fixed by a
 * one-shot output filter (ap_send_error_response sets text/html after the
 * hook). An ErrorDocument that names a URL is left to do its redirect.
 */
#include "clinic.h"
#include "claims.h"
#include "metrics.h"
#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_auth.h"
#include "util_filter.h"

static ap_filter_rec_t *error_type_filter;

/* r->user from the ClinicUserClaim claim: a string without NUL, an integer. */
static void set_user(request_rec *r, const clinic_dir_conf *conf, json_t *claims)
{
    json_t *v = clinic_claim_get(claims, CLINIC_USER_CLAIM(conf));
    char buf[CLINIC_CLAIM_TEXT_MAX];
    const char *s = json_is_boolean(v) ? NULL : clinic_claim_scalar(v, buf);

    if (!s || !*s || (json_is_string(v) && strlen(s) != json_string_length(v)))
        return;
    r->user = apr_pstrdup(r->pool, s);
    r->ap_auth_type = "Bearer";
    apr_table_setn(r->notes, CLINIC_NOTE_CALLER, r->user);
}

/* The key set to verify against: the Location's own, or the fetcher's
 * current one (*rem set; the caller drops the reference). NULL: st says why. */
static clinic_keyset_t *keys_for(const clinic_dir_conf *conf,
                                 clinic_rstate_t *st, clinic_remote_t **rem)
{
    clinic_keyset_t *set;
    char err[256];

    *rem = NULL;
    if (conf->keys->url) {
        if (!(*rem = clinic_remote_lookup(conf))) {
            st->why = "no key fetcher for this location "
                      "(ClinicJWKSURL / ClinicOIDCIssuer outside <Location>?)";
            st->authn = CLINIC_AUTHN_NOKEY;
        } else if (!(set = clinic_remote_acquire(*rem))) {
            st->authn = CLINIC_AUTHN_KEYS_WAIT;
        } else {
            return set;
        }
        return NULL;
    }
    if ((set = clinic_keysrc_set(conf->keys, conf->alg, err, sizeof err)))
        return set;
    st->why = "the configured key does not fit the algorithm";
    st->authn = CLINIC_AUTHN_NOKEY;
    return NULL;
}

int clinic_authenticate(request_rec *r)
{
    clinic_rstate_t *st = clinic_rstate(r);
    const clinic_dir_conf *conf;
    clinic_token_policy_t pol;
    clinic_remote_t *rem;
    clinic_keyset_t *set;
    const char *tok, *why = NULL;
    size_t len;
    long now = (long)apr_time_sec(r->request_time);
    int rc;

    if (st->authn != CLINIC_AUTHN_UNTRIED)
        return st->authn;
    conf = ap_get_module_config(r->per_dir_config, &clinic_module);
    if (!CLINIC_AUTH_ON(conf))
        return st->authn = CLINIC_AUTHN_OFF;
    if (!conf->alg || !conf->keys)
        /* check_config refuses this; never serve unauthenticated anyway */
        return st->authn = CLINIC_AUTHN_NOKEY;
    if (!clinic_sender_token(r, conf, &tok, &len)) {
        clinic_metric_token("missing");
        return st->authn = CLINIC_AUTHN_NONE;
    }
    if (!(pol.keys = set = keys_for(conf, st, &rem)))
        return st->authn;
    pol.alg = conf->alg;
    /* With discovery, iss must be the issuer unless ClinicJWTIssuer says otherwise. */
    pol.issuer = conf->issuer ? CLINIC_CHECKED(conf->issuer)
                              : conf->keys->oidc ? conf->keys->url : NULL;
    pol.audience = CLINIC_CHECKED(conf->audience);
    pol.leeway = CLINIC_LEEWAY(conf);
    clinic_debug(r, "verifying the bearer token");
    rc = clinic_token_verify_cached(&pol, tok, len, now, &st->claims, &why);
    if (rc == CLINIC_TOKEN_UNKNOWN_KID && rem && clinic_remote_refetch(rem, set)) {
        clinic_keyset_unref(set);
        pol.keys = set = clinic_remote_acquire(rem);
        rc = clinic_token_verify_cached(&pol, tok, len, now, &st->claims, &why);
    }
    if (rem)
        clinic_keyset_unref(set);
    if (rc != 0) {
        clinic_info(r, "token rejected: %s", why);
        clinic_metric_token(why);
        return st->authn = CLINIC_AUTHN_BAD;
    }
    clinic_json_pool(r->pool, st->claims);
    if (clinic_sender_check(r, conf, tok, len, st->claims, &why) != 0) {
        clinic_info(r, "token rejected: %s", why);
        clinic_metric_token(why);
        st->claims = NULL;
        return st->authn = CLINIC_AUTHN_BAD;
    }
    clinic_metric_token(clinic_token_last_was_hit() ? "cache_hit" : "ok");
    set_user(r, conf, st->claims);
    return st->authn = CLINIC_AUTHN_OK;
}

/* ---- Require clinic-claim NAME VALUE... ---- */

typedef struct {
    const char *name;
    const char **values;
    size_t n;
} claim_rule_t;

static const char *claim_parse(cmd_parms *cmd, const char *line, const void **parsed)
{
    claim_rule_t *rule = apr_pcalloc(cmd->pool, sizeof *rule);
    apr_array_header_t *values = apr_array_make(cmd->pool, 4, sizeof(const char *));
    const char *w;

    rule->name = ap_getword_conf(cmd->pool, &line);
    while (*(w = ap_getword_conf(cmd->pool, &line)))
        *(const char **)apr_array_push(values) = w;
    if (!*rule->name || !values->nelts)
        return "Require clinic-claim takes a claim name and one or more values";
    rule->values = (const char **)values->elts;
    rule->n = (size_t)values->nelts;
    *parsed = rule;
    return NULL;
}

static authz_status claim_check(request_rec *r, const char *line, const void *parsed)
{
    const claim_rule_t *rule = parsed;
    clinic_rstate_t *st = clinic_rstate(r);

    (void)line;
    if (!st->route) {
        clinic_error(r,
                     "Require clinic-claim outside a clinic handler's Location: "
                     "denied");
        return AUTHZ_DENIED;
    }
    /* The handler answers anything but POST with 405, before authentication
     * (and a CORS preflight carries no token). */
    if (r->method_number != M_POST || r->header_only)
        return AUTHZ_GRANTED;
    switch (clinic_authenticate(r)) {
    case CLINIC_AUTHN_OK:
        break;
    case CLINIC_AUTHN_NONE:
    case CLINIC_AUTHN_BAD:
    case CLINIC_AUTHN_KEYS_WAIT:
        return AUTHZ_DENIED_NO_USER;     /* authentication answers 401 (503) */
    case CLINIC_AUTHN_OFF:
        clinic_error(r,
                     "Require clinic-claim with ClinicAuth off: no claims, denied");
        return AUTHZ_DENIED;
    default:
        return AUTHZ_GENERAL_ERROR;
    }
    if (clinic_claim_has(st->claims, rule->name, rule->values, rule->n))
        return AUTHZ_GRANTED;
    clinic_info(r,
                "claim '%s' holds none of the values Require clinic-claim asks for",
                rule->name);
    return AUTHZ_DENIED;
}

static const authz_provider claim_provider = {
    &claim_check,
    &claim_parse,
};

/* check_user_id: reached when a provider needs a user (ours when the token
 * is missing or bad, `Require valid-user`, `Require user`). */
static int check_user_id(request_rec *r)
{
    clinic_rstate_t *st = clinic_rstate(r);

    if (!st->route)
        return DECLINED;
    switch (clinic_authenticate(r)) {
    case CLINIC_AUTHN_OK:
        if (r->user)
            return OK;
        clinic_info(r,
                    "the token has no usable user claim: no user");
        return HTTP_FORBIDDEN;
    case CLINIC_AUTHN_NONE:
    case CLINIC_AUTHN_BAD:
        return HTTP_UNAUTHORIZED;
    case CLINIC_AUTHN_KEYS_WAIT:
        return HTTP_SERVICE_UNAVAILABLE;
    case CLINIC_AUTHN_OFF:
        return DECLINED;
    default:
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

/* ---- Apache's own 401/403/500 in a clinic Location, in the route's shape ---- */

static apr_status_t error_type(ap_filter_t *f, apr_bucket_brigade *bb)
{
    ap_set_content_type(f->r, "application/json");
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

static void insert_error_filter(request_rec *r)
{
    clinic_rstate_t *st = ap_get_module_config(r->request_config, &clinic_module);
    clinic_shape_t shape;
    const char *code = "INTERNAL_ERROR", *msg = "Internal server error", *word = "error";
    const char *text;
    int bad = 0;

    if (!st || !st->route)
        return;
    shape = st->route == CLINIC_ROUTE_LINK ? CLINIC_SHAPE_ENVELOPE : CLINIC_SHAPE_DRF;
    switch (r->status) {
    case HTTP_UNAUTHORIZED:
        bad = st->authn == CLINIC_AUTHN_BAD;
        word = "unauthorized";
        msg = clinic_sender_denial(r, shape, bad, &code, r->err_headers_out);
        break;
    case HTTP_FORBIDDEN:
        word = "forbidden";
        msg = clinic_denial_text(shape, r->status, 0, &code);
        break;
    case HTTP_SERVICE_UNAVAILABLE:
        if (st->authn != CLINIC_AUTHN_KEYS_WAIT)
            return;
        apr_table_setn(r->err_headers_out, "Retry-After", CLINIC_RETRY_AFTER);
        word = "unavailable";
        code = "KEYS_UNAVAILABLE";
        msg = clinic_keys_unavailable_text(shape);
        break;
    case HTTP_INTERNAL_SERVER_ERROR:
        break;
    default:
        return;
    }
    text = clinic_json_text(r->pool, clinic_error_json(shape, r->status, code, msg));
    if (!text)
        return;
    ap_custom_response(r, r->status, text);
    apr_table_setn(r->err_headers_out, "Cache-Control", "no-store");
    apr_table_setn(r->err_headers_out, "X-Content-Type-Options", "nosniff");
    apr_table_setn(r->notes, CLINIC_NOTE_OUTCOME, shape == CLINIC_SHAPE_DRF ? word : code);
    ap_add_output_filter_handle(error_type_filter, NULL, r, r->connection);
}

void clinic_authz_register(apr_pool_t *p)
{
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "clinic-claim", AUTHZ_PROVIDER_VERSION,
                              &claim_provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_check_authn(check_user_id, NULL, NULL, APR_HOOK_MIDDLE, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_insert_error_filter(insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    error_type_filter = ap_register_output_filter("CLINIC_ERROR_JSON", error_type, NULL,
                                                  AP_FTYPE_CONTENT_SET);
}
