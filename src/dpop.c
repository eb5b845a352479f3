/*
 * Sender-constrained tokens: DPoP (RFC 9449) and certificate-bound tokens
 * (RFC 8705), per Location (ClinicDPoP, ClinicDPoPAlgorithms,
 * ClinicDPoPWindow, ClinicDPoPURL, ClinicCertBoundTokens).
 *
 * The token is verified first, as any bearer token (authz.c); then its
 * binding here: a token with cnf.x5t#S256 needs the TLS client certificate
 * mod_ssl verified, with that SHA-256; a token with cnf.jkt needs the DPoP
 * scheme and a proof (src/core/dpop.c) made by the key of that thumbprint
 * for this method and URL, within the window, with ath the token's hash.
 * A bound token is checked whatever the Location's settings say (RFC 8705
 * §3, RFC 9449 §7.1: it must not work as a plain bearer token anywhere).
 *
 * The proof's jti is recorded in the database (dpop_jtis) by the handler,
 * before the route's own work: the table every node of a farm shares, so a
 * proof replayed on another node is refused too. Server-provided nonces
 * (RFC 9449 §8) are not used: docs/security.md says why and what stands in for them.
 */
#include "clinic.h"
#include "datetime.h"
#include "db.h"
#include "dpop.h"
#include "metrics.h"
#include "http_core.h"
#include "mod_ssl.h"
#include "apr_atomic.h"
#include "apr_optional.h"

#define DPOP_PURGE_INTERVAL 5   /* seconds between purges of expired jti rows, per process */

/* One request's sender-constraint state (clinic_rstate_t.sender). */
typedef struct {
    int scheme_dpop;              /* Authorization: DPoP */
    const char *error;            /* the 401's RFC 6750 / RFC 9449 error, or NULL */
    int have_proof;               /* proof verified: its jti still to be recorded */
    clinic_dpop_proof_t proof;
    long expires;                 /* the jti's row lives until then */
} sender_t;

static sender_t *sender_of(request_rec *r)
{
    clinic_rstate_t *st = clinic_rstate(r);

    if (!st->sender)
        st->sender = apr_pcalloc(r->pool, sizeof(sender_t));
    return st->sender;
}

/* ---- directives ---- */

const char *clinic_dpop_set_mode(cmd_parms *cmd, void *cfg, const char *arg)
{
    clinic_dir_conf *c = cfg;

    if (cmd->info) {                      /* ClinicCertBoundTokens */
        if (strcasecmp(arg, "off") && strcasecmp(arg, "require"))
            return "ClinicCertBoundTokens takes off or require";
        c->cert_bound = !strcasecmp(arg, "require");
        return NULL;
    }
    if (!strcasecmp(arg, "off"))
        c->dpop = CLINIC_DPOP_OFF;
    else if (!strcasecmp(arg, "accept"))
        c->dpop = CLINIC_DPOP_ACCEPT;
    else if (!strcasecmp(arg, "require"))
        c->dpop = CLINIC_DPOP_REQUIRE;
    else
        return "ClinicDPoP takes off, accept or require";
    return NULL;
}

const char *clinic_dpop_add_alg(cmd_parms *cmd, void *cfg, const char *arg)
{
    clinic_dir_conf *c = cfg;
    int i;

    for (i = 0; clinic_dpop_algs[i] && strcmp(arg, clinic_dpop_algs[i]); i++)
        ;
    if (!clinic_dpop_algs[i])
        return apr_psprintf(cmd->pool, "ClinicDPoPAlgorithms: '%s' is not one of RS256 RS384 "
                            "RS512 ES256 ES384 ES512 (a proof is signed with a private key: "
                            "no HS, no none)", arg);
    if (!c->dpop_algs)
        c->dpop_algs = apr_array_make(cmd->pool, 6, sizeof(const char *));
    APR_ARRAY_PUSH(c->dpop_algs, const char *) = clinic_dpop_algs[i];
    return NULL;
}

const char *clinic_dpop_set_url(cmd_parms *cmd, void *cfg, const char *arg)
{
    char out[CLINIC_URL_MAX];

    if (clinic_htu_normalise(arg, out, sizeof out) != 0 || strpbrk(arg, "?#"))
        return apr_psprintf(cmd->pool, "ClinicDPoPURL: '%s' is not an http(s) URL without "
                            "query or fragment (e.g. https://api.hospital.example/visits)", arg);
    ((clinic_dir_conf *)cfg)->dpop_url = arg;
    return NULL;
}

/* The accepted proof algorithms, NULL-terminated. */
static const char *const *algs_of(apr_pool_t *p, const clinic_dir_conf *conf)
{
    const char **a;

    if (!conf->dpop_algs)
        return clinic_dpop_algs;
    a = apr_pcalloc(p, sizeof *a * (size_t)(conf->dpop_algs->nelts + 1));
    memcpy(a, conf->dpop_algs->elts, sizeof *a * (size_t)conf->dpop_algs->nelts);
    return a;
}

/* ---- the request ---- */

int clinic_sender_token(request_rec *r, const clinic_dir_conf *conf, const char **tok,
                        size_t *len)
{
    const char *hdr = apr_table_get(r->headers_in, "Authorization");

    if (clinic_bearer_token(hdr, tok, len))
        return 1;
    /* "DPoP <token>": the same syntax under another scheme name. */
    if (CLINIC_DPOP(conf) == CLINIC_DPOP_OFF || !hdr || strncasecmp(hdr, "DPoP", 4) ||
        !clinic_bearer_token(apr_pstrcat(r->pool, "Bearer", hdr + 4, NULL), tok, len))
        return 0;
    sender_of(r)->scheme_dpop = 1;
    return 1;
}

/* RFC 8705 §3: cnf.x5t#S256 equals the SHA-256 of the client certificate
 * mod_ssl verified on this connection. */
static int check_cert(request_rec *r, const clinic_dir_conf *conf, json_t *cnf,
                      const char **why)
{
    static APR_OPTIONAL_FN_TYPE(ssl_var_lookup) *lookup;
    json_t *x5t = json_object_get(cnf, "x5t#S256");
    const char *pem, *verify;
    char got[CLINIC_SHA256_B64];

    if (!x5t) {
        *why = CLINIC_CERT_BOUND(conf) ? "binding: not a certificate-bound token" : NULL;
        return *why ? -1 : 0;
    }
    if (!lookup)
        lookup = APR_RETRIEVE_OPTIONAL_FN(ssl_var_lookup);
    pem = lookup ? lookup(r->pool, r->server, r->connection, r, "SSL_CLIENT_CERT") : NULL;
    verify = lookup ? lookup(r->pool, r->server, r->connection, r, "SSL_CLIENT_VERIFY") : NULL;
    if (!pem || !*pem || !verify || (strcmp(verify, "SUCCESS") && strcmp(verify, "GENEROUS")))
        *why = "binding: certificate-bound token without a verified client certificate";
    else if (!json_is_string(x5t) || clinic_cert_thumbprint(pem, strlen(pem), got) != 0 ||
             strcmp(json_string_value(x5t), got))
        *why = "binding: the client certificate is not the token's cnf.x5t#S256";
    else
        return 0;
    return -1;
}

/* The one DPoP header, verified for this request. */
static int check_proof(request_rec *r, const clinic_dir_conf *conf, const char *tok, size_t len,
                       sender_t *s, const char **why)
{
    const char *proof = apr_table_get(r->headers_in, "DPoP");
    clinic_dpop_policy_t pol = { algs_of(r->pool, conf), CLINIC_DPOP_WINDOW(conf) };
    clinic_dpop_request_t q = { r->method, conf->dpop_url, tok, len };

    /* httpd joins repeated fields with ", "; a proof has neither. */
    if (!proof || !*proof || strpbrk(proof, ", \t")) {
        *why = "DPoP proof: not exactly one DPoP header";
        return -1;
    }
    if (!q.url)
        q.url = ap_construct_url(r->pool, r->parsed_uri.path ? r->parsed_uri.path : "/", r);
    if (clinic_dpop_verify(&pol, proof, strlen(proof), &q, (long)apr_time_sec(r->request_time),
                           &s->proof, why) != 0)
        return -1;
    s->have_proof = 1;
    s->expires = s->proof.iat + pol.window;
    return 0;
}

int clinic_sender_check(request_rec *r, const clinic_dir_conf *conf, const char *tok,
                        size_t len, json_t *claims, const char **why)
{
    sender_t *s = sender_of(r);
    json_t *cnf = json_object_get(claims, "cnf");
    json_t *jjkt = json_object_get(cnf, "jkt");
    const char *jkt = json_string_value(jjkt);

    s->error = "invalid_token";
    if (check_cert(r, conf, cnf, why) != 0)
        return -1;
    if (jjkt && !jkt)
        *why = "binding: cnf.jkt is not a string";
    else if (!s->scheme_dpop && jkt)
        *why = "binding: a DPoP-bound token presented as Bearer";
    else if (!s->scheme_dpop && CLINIC_DPOP(conf) == CLINIC_DPOP_REQUIRE)
        *why = "binding: DPoP required, a Bearer token given";
    else if (!s->scheme_dpop)
        return s->error = NULL, 0;
    else if (check_proof(r, conf, tok, len, s, why) != 0)
        s->error = "invalid_dpop_proof";
    else if (!jkt || strcmp(jkt, s->proof.jkt))
        *why = "binding: cnf.jkt is not the DPoP proof key's thumbprint";
    else
        return s->error = NULL, 0;
    s->have_proof = 0;
    return -1;
}

/* ---- the replay store ---- */

/* At most one batch of expired rows per DPOP_PURGE_INTERVAL and process
 * (again at once while full batches show a backlog). */
static void purge(clinic_db_t *db, const char *now_iso, apr_time_t now)
{
    static apr_uint32_t next_due, running;
    const char *args[2] = {now_iso, now_iso};
    apr_uint32_t sec = (apr_uint32_t)apr_time_sec(now);
    int n = 0;

    if (sec < apr_atomic_read32(&next_due) || apr_atomic_cas32(&running, 1, 0) != 0)
        return;
    if (clinic_db_exec(db, CLINIC_SQL_DPOP_PURGE, args, &n) == CLINIC_DB_OK)
        clinic_debug(db->r, "%d expired DPoP jti rows deleted", n);
    apr_atomic_set32(&next_due, n >= CLINIC_DPOP_PURGE_BATCH ? sec : sec + DPOP_PURGE_INTERVAL);
    apr_atomic_set32(&running, 0);
}

static const char *iso_at(apr_pool_t *p, long sec)
{
    char *buf = apr_palloc(p, CLINIC_ISO_MAX);

    clinic_format_iso((clinic_time_t)sec * 1000000, 0, buf);
    return buf;
}

int clinic_dpop_remember(clinic_req_t *c)
{
    clinic_rstate_t *st = clinic_rstate(c->r);
    sender_t *s = st->sender;
    const char *args[3], *code, *msg;
    clinic_db_t *db;
    int rc, n = 0;

    if (!s || !s->have_proof)
        return CLINIC_GO;
    s->have_proof = 0;
    args[0] = s->proof.replay_key;
    args[1] = iso_at(c->r->pool, s->expires);
    args[2] = iso_at(c->r->pool, (long)apr_time_sec(c->r->request_time));
    if ((rc = clinic_db_acquire(c->r, &db)) != CLINIC_DB_OK ||
        (rc = clinic_db_exec(db, CLINIC_SQL_DPOP_JTI, args, &n)) != CLINIC_DB_OK)
        return clinic_db_fail(c, rc);
    if (n == 0) {
        clinic_info(c->r, "token rejected: DPoP proof replayed (jti seen before)");
        clinic_metric_token("DPoP proof: jti seen before");
        s->error = "invalid_dpop_proof";
        st->authn = CLINIC_AUTHN_BAD;
        msg = clinic_sender_denial(c->r, c->shape, 1, &code, c->r->headers_out);
        return clinic_fail(c, HTTP_UNAUTHORIZED, code, msg);
    }
    purge(db, args[2], c->r->request_time);
    return CLINIC_GO;
}

/* ---- the 401 ---- */

/* RFC 9449 §7.1: the DPoP challenge, with the accepted algorithms. */
static const char *dpop_challenge(request_rec *r, const clinic_dir_conf *conf, const char *err)
{
    const char *const *a = algs_of(r->pool, conf);
    const char *algs = "";
    int i;

    for (i = 0; a[i]; i++)
        algs = apr_pstrcat(r->pool, algs, i ? " " : "", a[i], NULL);
    if (!err)
        return apr_psprintf(r->pool, "DPoP algs=\"%s\"", algs);
    return apr_psprintf(r->pool, "DPoP error=\"%s\", algs=\"%s\"", err, algs);
}

const char *clinic_sender_denial(request_rec *r, clinic_shape_t shape, int bad_token,
                                 const char **code, apr_table_t *t)
{
    const clinic_dir_conf *conf = ap_get_module_config(r->per_dir_config, &clinic_module);
    sender_t *s = clinic_rstate(r)->sender;
    int mode = CLINIC_DPOP(conf), dpop_used = s && s->scheme_dpop;
    const char *err = bad_token ? (s && s->error ? s->error : "invalid_token") : NULL;

    /* Bearer's challenge where Bearer is taken, its error when Bearer was used. */
    if (mode != CLINIC_DPOP_REQUIRE)
        clinic_challenge(t, bad_token && !dpop_used);
    else
        apr_table_unset(t, "WWW-Authenticate");
    if (mode != CLINIC_DPOP_OFF)
        apr_table_addn(t, "WWW-Authenticate",
                       dpop_challenge(r, conf, dpop_used || mode == CLINIC_DPOP_REQUIRE ? err
                                                                                        : NULL));
    if (!err || strcmp(err, "invalid_dpop_proof"))
        return clinic_denial_text(shape, HTTP_UNAUTHORIZED, bad_token, code);
    *code = "INVALID_DPOP_PROOF";
    return shape == CLINIC_SHAPE_DRF ? "Invalid DPoP proof." : "Invalid DPoP proof";
}
