/*
 * mod_clinic's configuration, in one place (docs/API.md §2): the
 * per-directory settings' create and merge, the directive table and its
 * setters (Apache's ap_set_*_slot where one fits), key loading (key files
 * and JWKS documents are read and parsed here, once, never per request), and
 * the start-up check.
 *
 * The start-up check runs at check_config, so that `apachectl configtest`
 * fails too: every <Location> whose SetHandler is a clinic handler must,
 * with ClinicAuth jwt in effect, have an algorithm and a key that fits it. A
 * misconfigured Location stops Apache; it never serves unauthenticated. The
 * effective configuration of a Location is rebuilt as the location walk
 * would: the server's defaults, then every <Location> section that matches
 * the path, in configuration order.
 */
#include "clinic.h"
#include "datetime.h"
#include "metrics.h"
#include "dbwait.h"
#include "apr_file_io.h"
#include "http_core.h"
#include "ap_regex.h"

/* The fields a <Location> inherits from the enclosing section when it does
 * not set them: pointers (NULL when unset) and longs (CLINIC_UNSET); auth,
 * max_body and the time offset are merged by name below. Every field of
 * clinic_dir_conf is in one of these or there. */
#define OFF(f) APR_OFFSETOF(clinic_dir_conf, f)
static const size_t inherited_ptrs[] = {
    OFF(alg), OFF(keys), OFF(issuer), OFF(audience), OFF(uid_claim), OFF(picture_base),
    OFF(cors_origins), OFF(tls_ca_file), OFF(jwks_cache_dir), OFF(user_claim),
    OFF(dpop_algs), OFF(dpop_url)};
static const size_t inherited_longs[] = {
    OFF(leeway), OFF(idem_ttl), OFF(cors_max_age), OFF(jwks_refresh),
    OFF(dpop), OFF(dpop_window), OFF(cert_bound)};
#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

void *clinic_create_dir_conf(apr_pool_t *p, char *dir)
{
    clinic_dir_conf *c = apr_pcalloc(p, sizeof *c);
    const long unset = CLINIC_UNSET;
    size_t i;

    (void)dir;
    c->auth = CLINIC_UNSET;
    c->max_body = CLINIC_UNSET;
    for (i = 0; i < NFIELDS(inherited_longs); i++)
        memcpy((char *)c + inherited_longs[i], &unset, sizeof unset);
    return c;
}

/* dst's field at off, sizeof n bytes, is base's when dst's equals unset. */
static void inherit(clinic_dir_conf *dst, const clinic_dir_conf *base, size_t off,
                    const void *unset, size_t n)
{
    if (!memcmp((char *)dst + off, unset, n))
        memcpy((char *)dst + off, (const char *)base + off, n);
}

void *clinic_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    const clinic_dir_conf *base = basev;
    clinic_dir_conf *c = apr_pmemdup(p, addv, sizeof *c);
    const void *no_ptr = NULL;
    const long unset = CLINIC_UNSET;
    size_t i;

    for (i = 0; i < NFIELDS(inherited_ptrs); i++)
        inherit(c, base, inherited_ptrs[i], &no_ptr, sizeof no_ptr);
    for (i = 0; i < NFIELDS(inherited_longs); i++)
        inherit(c, base, inherited_longs[i], &unset, sizeof unset);
    if (c->auth == CLINIC_UNSET)
        c->auth = base->auth;
    if (c->max_body == CLINIC_UNSET)
        c->max_body = base->max_body;
    if (!c->time_offset_set) {
        c->time_offset_set = base->time_offset_set;
        c->time_offset = base->time_offset;
    }
    return c;
}

/* ---- directives ---- */

static const char *set_auth(cmd_parms *cmd, void *cfg, const char *arg)
{
    clinic_dir_conf *c = cfg;

    (void)cmd;
    if (!strcasecmp(arg, "jwt"))
        c->auth = 1;
    else if (!strcasecmp(arg, "off"))
        c->auth = 0;
    else
        return "ClinicAuth takes jwt or off";
    return NULL;
}

static const char *set_alg(cmd_parms *cmd, void *cfg, const char *arg)
{
    apr_array_header_t *names = apr_array_make(cmd->temp_pool, 9, sizeof(const char *));
    int i;

    for (i = 0; clinic_jwt_algs[i]; i++) {
        if (!strcmp(arg, clinic_jwt_algs[i])) {
            ((clinic_dir_conf *)cfg)->alg = clinic_jwt_algs[i];
            return NULL;
        }
        APR_ARRAY_PUSH(names, const char *) = clinic_jwt_algs[i];
    }
    return apr_psprintf(cmd->pool, "ClinicJWTAlgorithm: unknown algorithm '%s' (one of %s)",
                        arg, apr_array_pstrcat(cmd->temp_pool, names, ' '));
}

/* Read a whole file into the configuration pool. */
static const char *slurp(cmd_parms *cmd, const char *arg, char **buf, apr_size_t *len)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);
    apr_file_t *f;
    apr_finfo_t fi;
    apr_status_t rv;

    if (!path)
        return apr_psprintf(cmd->pool, "%s: bad path '%s'", cmd->cmd->name, arg);
    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, cmd->temp_pool);
    if (rv == APR_SUCCESS)
        rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    if (rv == APR_SUCCESS) {
        *len = (apr_size_t)fi.size;
        *buf = apr_palloc(cmd->pool, *len + 1);
        rv = *len ? apr_file_read_full(f, *buf, *len, NULL) : APR_SUCCESS;
        (*buf)[*len] = '\0';
    }
    if (rv != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "%s: cannot read '%s': %pm", cmd->cmd->name, path, &rv);
    return NULL;
}

static apr_status_t free_keysrc(void *d)
{
    clinic_keysrc_t *k = d;
    size_t i;

    clinic_jwks_free(k->jwks, k->njwks);
    for (i = 0; i < sizeof k->sets / sizeof k->sets[0]; i++)
        clinic_keyset_unref(k->sets[i]);
    return APR_SUCCESS;
}

static const char *set_key_file(cmd_parms *cmd, void *cfg, const char *arg)
{
    clinic_keysrc_t *k = apr_pcalloc(cmd->pool, sizeof *k);
    char *buf;
    apr_size_t len;
    const char *err = slurp(cmd, arg, &buf, &len);

    if (err)
        return err;
    if (len && buf[len - 1] == '\n')           /* one trailing newline */
        buf[--len] = '\0';
    if (len && buf[len - 1] == '\r')
        buf[--len] = '\0';
    if (!len)
        return apr_psprintf(cmd->pool, "ClinicJWTKeyFile: '%s' is empty", arg);
    k->path = arg;
    k->key = (unsigned char *)buf;
    k->key_len = len;
    apr_pool_cleanup_register(cmd->pool, k, free_keysrc, apr_pool_cleanup_null);
    ((clinic_dir_conf *)cfg)->keys = k;
    return NULL;
}

static const char *set_jwks_file(cmd_parms *cmd, void *cfg, const char *arg)
{
    clinic_keysrc_t *k = apr_pcalloc(cmd->pool, sizeof *k);
    char *buf, why[256];
    apr_size_t len;
    const char *err = slurp(cmd, arg, &buf, &len);

    if (err)
        return err;
    if (clinic_jwks_parse(buf, len, &k->jwks, &k->njwks, why, sizeof why) != 0)
        return apr_psprintf(cmd->pool, "ClinicJWKSFile: '%s': %s", arg, why);
    apr_pool_cleanup_register(cmd->pool, k, free_keysrc, apr_pool_cleanup_null);
    k->path = arg;
    k->is_jwks = 1;
    ((clinic_dir_conf *)cfg)->keys = k;
    return NULL;
}

/* Every "seconds, MIN-MAX" directive: cmd->info is its seconds_slot_t. */
typedef struct {
    size_t offset;             /* of a long in clinic_dir_conf */
    long min, max;
} seconds_slot_t;

static const seconds_slot_t leeway_slot = {APR_OFFSETOF(clinic_dir_conf, leeway), 0, 86400};
static const seconds_slot_t idem_ttl_slot = {APR_OFFSETOF(clinic_dir_conf, idem_ttl), 1,
                                             31 * 86400};
static const seconds_slot_t jwks_refresh_slot = {APR_OFFSETOF(clinic_dir_conf, jwks_refresh),
                                                 1, 7 * 86400};
static const seconds_slot_t cors_max_age_slot = {APR_OFFSETOF(clinic_dir_conf, cors_max_age),
                                                 0, 86400};
static const seconds_slot_t dpop_window_slot = {APR_OFFSETOF(clinic_dir_conf, dpop_window),
                                                1, 600};

static const char *set_seconds(cmd_parms *cmd, void *cfg, const char *arg)
{
    const seconds_slot_t *slot = cmd->info;
    char *end;
    long v = strtol(arg, &end, 10);

    if (*arg == '\0' || *end || v < slot->min || v > slot->max)
        return apr_psprintf(cmd->pool, "%s: '%s' is not %ld-%ld seconds", cmd->cmd->name, arg,
                            slot->min, slot->max);
    *(long *)((char *)cfg + slot->offset) = v;
    return NULL;
}

static const char *set_uid_claim(cmd_parms *cmd, void *cfg, const char *arg)
{
    (void)cmd;
    ((clinic_dir_conf *)cfg)->uid_claim = strcasecmp(arg, "none") ? arg : "";
    return NULL;
}

static const char *set_max_body(cmd_parms *cmd, void *cfg, const char *arg)
{
    apr_off_t v;
    char *end;

    if (apr_strtoff(&v, arg, &end, 10) != APR_SUCCESS || *end || v < 1 ||
        v > 64 * 1024 * 1024)
        return apr_psprintf(cmd->pool, "ClinicMaxBody: '%s' is not 1-67108864 bytes", arg);
    ((clinic_dir_conf *)cfg)->max_body = v;
    return NULL;
}

static const char *set_offset(cmd_parms *cmd, void *cfg, const char *arg)
{
    clinic_dir_conf *c = cfg;

    if (clinic_parse_offset(arg, &c->time_offset) != 0)
        return apr_psprintf(cmd->pool, "ClinicTimeOffset: '%s' is not +HH:MM or -HH:MM", arg);
    c->time_offset_set = 1;
    return NULL;
}

static const char *set_cors_origin(cmd_parms *cmd, void *cfg, const char *arg)
{
    return clinic_cors_add_origin(cmd->pool, cfg, arg);
}

/* ClinicJWKSURL (info 0) and ClinicOIDCIssuer (info 1): keys fetched over HTTPS. */
static const char *set_key_url(cmd_parms *cmd, void *cfg, const char *arg)
{
    clinic_keysrc_t *k = apr_pcalloc(cmd->pool, sizeof *k);

    if (strncasecmp(arg, "https://", 8) != 0 || !arg[8])
        return apr_psprintf(cmd->pool, "%s: '%s' is not an https:// URL", cmd->cmd->name, arg);
    k->path = arg;
    k->url = arg;
    k->oidc = cmd->info != NULL;
    ((clinic_dir_conf *)cfg)->keys = k;
    return NULL;
}

/* ClinicTLSCAFile (a readable file) and ClinicJWKSCacheDir, server-root relative. */
static const char *set_path(cmd_parms *cmd, void *cfg, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);
    apr_finfo_t fi;

    if (!path)
        return apr_psprintf(cmd->pool, "%s: bad path '%s'", cmd->cmd->name, arg);
    if (!strcmp(cmd->cmd->name, "ClinicTLSCAFile") &&
        apr_stat(&fi, path, APR_FINFO_TYPE, cmd->temp_pool) != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "ClinicTLSCAFile: cannot read '%s'", path);
    *(const char **)((char *)cfg + (size_t)cmd->info) = path;
    return NULL;
}

#define DIRCONF (RSRC_CONF | ACCESS_CONF)

/* One line a directive: name, setter, the setter's cmd->info, help. */
#define TAKE1(name, fn, info, help) AP_INIT_TAKE1(name, fn, (void *)(info), DIRCONF, help)
/* A field of clinic_dir_conf set by ap_set_string_slot or set_path. */
#define FIELD(name, fn, field, help) TAKE1(name, fn, APR_OFFSETOF(clinic_dir_conf, field), help)
/* Seconds within a seconds_slot_t's range. */
#define SECONDS(name, slot, help) TAKE1(name, set_seconds, &(slot), help)

const command_rec clinic_cmds[] = {
    TAKE1("ClinicAuth", set_auth, NULL, "jwt (default) or off"),
    TAKE1("ClinicJWTAlgorithm", set_alg, NULL, "the one JWT algorithm accepted, e.g. RS256"),
    TAKE1("ClinicJWTKeyFile", set_key_file, NULL, "PEM public key (RS/ES) or shared secret (HS)"),
    TAKE1("ClinicJWKSFile", set_jwks_file, NULL, "JWKS document; the token's kid picks the key"),
    TAKE1("ClinicJWKSURL", set_key_url, NULL,
          "https:// URL of the provider's JWKS, fetched and refreshed"),
    TAKE1("ClinicOIDCIssuer", set_key_url, 1,
          "https:// OpenID Connect issuer: its discovery document names the JWKS"),
    SECONDS("ClinicJWKSRefresh", jwks_refresh_slot,
            "seconds between fetches of ClinicJWKSURL / ClinicOIDCIssuer (default 3600)"),
    FIELD("ClinicTLSCAFile", set_path, tls_ca_file,
          "CA certificates the key provider's certificate must chain to"),
    FIELD("ClinicJWKSCacheDir", set_path, jwks_cache_dir,
          "directory of the last good fetched key documents"),
    FIELD("ClinicJWTIssuer", ap_set_string_slot, issuer, "required iss claim"),
    FIELD("ClinicJWTAudience", ap_set_string_slot, audience, "value the aud claim must contain"),
    SECONDS("ClinicJWTLeeway", leeway_slot,
            "seconds of clock skew allowed on exp, nbf, iat (default 60)"),
    TAKE1("ClinicUidClaim", set_uid_claim, NULL,
          "claim that must equal ?uid= on add-and-link, or none (default sub)"),
    TAKE1("ClinicMaxBody", set_max_body, NULL, "largest request body in bytes (default 65536)"),
    TAKE1("ClinicTimeOffset", set_offset, NULL,
          "+HH:MM or -HH:MM for naive dates and for dates in responses"),
    FIELD("ClinicPictureBaseURL", ap_set_string_slot, picture_base,
          "URL put before a patient's stored picture"),
    SECONDS("ClinicIdempotencyTTL", idem_ttl_slot,
            "seconds an Idempotency-Key is remembered (default 86400)"),
    AP_INIT_ITERATE("ClinicCORSOrigins", set_cors_origin, NULL, DIRCONF,
                    "origins (scheme://host[:port]) allowed to call from a browser, * or none"),
    SECONDS("ClinicCORSMaxAge", cors_max_age_slot,
            "seconds a browser may cache a preflight answer (default 600)"),
    AP_INIT_TAKE1("ClinicDBTimeout", clinic_wait_set, NULL, RSRC_CONF,
                  "seconds one request may spend on the database, pool included (default 10)"),
    AP_INIT_TAKE1("ClinicDBMaxWaiting", clinic_wait_set, (void *)1, RSRC_CONF,
                  "requests per process that may wait for a pooled connection (default: "
                  "a quarter of ThreadsPerChild)"),
    AP_INIT_FLAG("ClinicMetrics", clinic_metrics_set, NULL, RSRC_CONF,
                 "On (default): count requests for clinic-metrics and mod_status"),
    FIELD("ClinicUserClaim", ap_set_string_slot, user_claim,
          "claim that becomes Apache's user, r->user (default sub)"),
    TAKE1("ClinicDPoP", clinic_dpop_set_mode, NULL,
          "off (default), accept or require DPoP-bound tokens with a DPoP proof"),
    AP_INIT_ITERATE("ClinicDPoPAlgorithms", clinic_dpop_add_alg, NULL, DIRCONF,
                    "algorithms a DPoP proof may use (default RS256..RS512 ES256..ES512)"),
    SECONDS("ClinicDPoPWindow", dpop_window_slot,
            "seconds a DPoP proof's iat may be from now, either way (default 60)"),
    TAKE1("ClinicDPoPURL", clinic_dpop_set_url, NULL,
          "the route's URL as clients call it (htu), when a proxy in front rewrites it"),
    TAKE1("ClinicCertBoundTokens", clinic_dpop_set_mode, 1,
          "off (default) or require: tokens bound to the client's TLS certificate"),
    {NULL}
};

/* ---- the start-up check ---- */

/* The first word of a directive's arguments, without the section's '>'. */
static const char *first_arg(apr_pool_t *p, const char *args)
{
    char *a = apr_pstrdup(p, args);
    size_t n = strlen(a);
    const char *w;

    if (n && a[n - 1] == '>')
        a[n - 1] = '\0';
    w = ap_getword_conf(p, (const char **)&a);
    return w;
}

static int is_clinic_handler(apr_pool_t *p, const ap_directive_t *d)
{
    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "SetHandler")) {
            const char *h = first_arg(p, d->args);
            if (!strcmp(h, CLINIC_HANDLER_VISITS) || !strcmp(h, CLINIC_HANDLER_LINK))
                return 1;
        }
    }
    return 0;
}

static const clinic_dir_conf *effective(apr_pool_t *p, server_rec *s, const char *path,
                                        int is_regex)
{
    core_server_config *sconf = ap_get_core_module_config(s->module_config);
    ap_conf_vector_t **sec = (ap_conf_vector_t **)sconf->sec_url->elts;
    const clinic_dir_conf *eff = ap_get_module_config(s->lookup_defaults, &clinic_module);
    int i;

    for (i = 0; i < sconf->sec_url->nelts; i++) {
        core_dir_config *core = ap_get_core_module_config(sec[i]);
        const clinic_dir_conf *dc = ap_get_module_config(sec[i], &clinic_module);
        int match;

        if (!dc || !core->d)
            continue;
        if (is_regex)   /* a <LocationMatch> has no single path: same pattern only */
            match = !strcmp(core->d, path);
        else if (core->r)
            match = ap_regexec(core->r, path, 0, NULL, 0) == 0;
        else
            match = !strncmp(core->d, path, strlen(core->d));
        if (match)
            eff = clinic_merge_dir_conf(p, (void *)eff, (void *)dc);
    }
    return eff;
}

/* Keys from a provider sign tokens for all its clients (and a JWKS may be
 * shared by several issuers): an audience, and for a JWKS URL an issuer, are
 * required, or the explicit ClinicJWT... * that accepts any. */
static const char *provider_problem(apr_pool_t *p, const clinic_dir_conf *c)
{
    const char *src = apr_pstrcat(p, c->keys->oidc ? "ClinicOIDCIssuer " : "ClinicJWKSURL ",
                                  c->keys->url, NULL);

    if (!strncmp(c->alg, "HS", 2))
        return apr_psprintf(p, "%s: a provider's published keys cannot be %s secrets", src,
                            c->alg);
    if (!c->audience)
        return apr_psprintf(p, "%s needs ClinicJWTAudience: the provider signs tokens for "
                            "every one of its clients (ClinicJWTAudience " CLINIC_ANY
                            " accepts them all)", src);
    if (!c->keys->oidc && !c->issuer)
        return apr_psprintf(p, "%s needs ClinicJWTIssuer: one key set can sign for several "
                            "issuers (ClinicJWTIssuer " CLINIC_ANY " accepts them all)", src);
    return NULL;
}

/* The explicit opt-outs of provider_problem, said at every start. */
static void provider_warnings(server_rec *s, const ap_directive_t *d, const char *path,
                              const clinic_dir_conf *c)
{
    if (!CLINIC_AUTH_ON(c) || !c->keys || !c->keys->url)
        return;
    if (CLINIC_IS_ANY(c->audience))
        clinic_swarn(s, "%s %s> (%s:%d): ClinicJWTAudience " CLINIC_ANY ": tokens that %s issues "
                     "for any of its clients are accepted", d->directive, path, d->filename,
                     d->line_num, c->keys->url);
    if (CLINIC_IS_ANY(c->issuer))
        clinic_swarn(s, "%s %s> (%s:%d): ClinicJWTIssuer " CLINIC_ANY ": tokens of any issuer "
                     "signed with the keys of %s are accepted", d->directive, path,
                     d->filename, d->line_num, c->keys->url);
}

/* NULL when usable, else what is wrong. A fetched key set registers its
 * fetcher here (it has no keys yet: requests answer 503 until it has). */
static const char *auth_problem(apr_pool_t *p, server_rec *s, const clinic_dir_conf *c)
{
    char why[256];
    const char *rwhy = NULL;
    size_t min;

    if (!CLINIC_AUTH_ON(c))
        return NULL;
    if (!c->alg)
        return "ClinicAuth jwt needs ClinicJWTAlgorithm";
    if (!c->keys)
        return "ClinicAuth jwt needs ClinicJWTKeyFile, ClinicJWKSFile, ClinicJWKSURL "
               "or ClinicOIDCIssuer";
    if (c->keys->url) {
        const char *why_not = provider_problem(p, c);
        if (why_not)
            return why_not;
        return clinic_remote_register(p, s, c, &rwhy) ? NULL : rwhy;
    }
    min = clinic_hs_min_len(c->alg);
    if (!c->keys->is_jwks) {
        if (min && c->keys->key_len < min)
            return apr_psprintf(p, "ClinicJWTKeyFile %s: a %s secret must be at least %lu "
                                "bytes (RFC 7518 3.2), this one is %lu", c->keys->path,
                                c->alg, (unsigned long)min, (unsigned long)c->keys->key_len);
        if (!clinic_key_fits_alg(c->keys->key, c->keys->key_len, c->alg, why, sizeof why) ||
            !clinic_keysrc_set(c->keys, c->alg, why, sizeof why))
            return apr_psprintf(p, "ClinicJWTKeyFile %s does not fit %s: %s",
                                c->keys->path, c->alg, why);
        return NULL;
    }
    if (clinic_keysrc_set(c->keys, c->alg, why, sizeof why))
        return NULL;
    return apr_psprintf(p, "ClinicJWKSFile %s has no key for %s%s", c->keys->path, c->alg,
                        min ? apr_psprintf(p, " (an oct key of at least %lu bytes)",
                                           (unsigned long)min) : "");
}

static server_rec *vhost_of(server_rec *s, const ap_directive_t *d)
{
    for (s = s->next; s; s = s->next)
        if (s->defn_name && !strcmp(s->defn_name, d->filename) &&
            s->defn_line_number == (unsigned)d->line_num)
            return s;
    return NULL;
}

static int walk(apr_pool_t *p, server_rec *main_s, server_rec *s,
                const ap_directive_t *d, int *found)
{
    int rc = OK;

    for (; d && rc == OK; d = d->next) {
        if (!strcasecmp(d->directive, "<VirtualHost")) {
            server_rec *vs = vhost_of(main_s, d);
            rc = walk(p, main_s, vs ? vs : s, d->first_child, found);
        } else if ((!strcasecmp(d->directive, "<Location") ||
                    !strcasecmp(d->directive, "<LocationMatch")) &&
                   is_clinic_handler(p, d->first_child)) {
            const char *path = first_arg(p, d->args);
            int is_regex = !strcasecmp(d->directive, "<LocationMatch") || !strcmp(path, "~");
            const clinic_dir_conf *eff;
            const char *why;

            if (!strcmp(path, "~")) {
                const char *rest = d->args + strspn(d->args, " \t") + 1;
                path = first_arg(p, rest);
            }
            (*found)++;
            eff = effective(p, s, path, is_regex);
            why = auth_problem(p, s, eff);
            if (!why)
                provider_warnings(s, d, path, eff);
            if (why) {
                clinic_scrit(s, "%s %s> (%s:%d): %s", d->directive, path,
                             d->filename, d->line_num, why);
                rc = HTTP_INTERNAL_SERVER_ERROR;
            }
        } else if (d->first_child) {
            rc = walk(p, main_s, s, d->first_child, found);
        }
    }
    return rc;
}

int clinic_config_check(apr_pool_t *p, server_rec *s, int *found)
{
    *found = 0;
    return walk(p, s, s, ap_conftree, found);
}
