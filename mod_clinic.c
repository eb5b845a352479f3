/*
 * mod_clinic: a hospital's patient API inside Apache httpd.
 *
 * This file is glue only: the module record, the directives, the
 * per-directory configuration create/merge and the hooks. The logic lives in
 * src/, one file per concern.
 */
#define CLINIC_MAIN_FILE
#include "src/clinic.h"
#include "src/datetime.h"
#include "src/objectid.h"
#include "src/metrics.h"
#include "http_protocol.h"
#include "http_request.h"
#include "apr_file_io.h"

#include <errno.h>

/* ---- per-directory configuration ---- */

void *clinic_create_dir_conf(apr_pool_t *p, char *dir)
{
    clinic_dir_conf *c = apr_pcalloc(p, sizeof *c);

    (void)dir;
    c->auth = CLINIC_UNSET;
    c->leeway = CLINIC_UNSET;
    c->max_body = CLINIC_UNSET;
    c->idem_ttl = CLINIC_UNSET;
    c->cors_max_age = CLINIC_UNSET;
    c->jwks_refresh = CLINIC_UNSET;
    return c;
}

#define MERGE_PTR(f)  (add->f ? add->f : base->f)
#define MERGE_INT(f)  (add->f != CLINIC_UNSET ? add->f : base->f)

void *clinic_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    const clinic_dir_conf *base = basev, *add = addv;
    clinic_dir_conf *c = apr_palloc(p, sizeof *c);

    c->auth = MERGE_INT(auth);
    c->alg = MERGE_PTR(alg);
    c->keys = MERGE_PTR(keys);
    c->issuer = MERGE_PTR(issuer);
    c->audience = MERGE_PTR(audience);
    c->leeway = MERGE_INT(leeway);
    c->uid_claim = MERGE_PTR(uid_claim);
    c->max_body = MERGE_INT(max_body);
    c->time_offset_set = add->time_offset_set || base->time_offset_set;
    c->time_offset = add->time_offset_set ? add->time_offset : base->time_offset;
    c->picture_base = MERGE_PTR(picture_base);
    c->idem_ttl = MERGE_INT(idem_ttl);
    c->cors_origins = MERGE_PTR(cors_origins);
    c->cors_max_age = MERGE_INT(cors_max_age);
    c->jwks_refresh = MERGE_INT(jwks_refresh);
    c->tls_ca_file = MERGE_PTR(tls_ca_file);
    c->jwks_cache_dir = MERGE_PTR(jwks_cache_dir);
    c->user_claim = MERGE_PTR(user_claim);
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
    static const char *const algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                       "RS512", "ES256", "ES384", "ES512", NULL};
    int i;

    for (i = 0; algs[i]; i++) {
        if (!strcmp(arg, algs[i])) {
            ((clinic_dir_conf *)cfg)->alg = algs[i];
            return NULL;
        }
    }
    return apr_psprintf(cmd->pool, "ClinicJWTAlgorithm: unknown algorithm '%s' "
                        "(one of HS256 HS384 HS512 RS256 RS384 RS512 ES256 ES384 ES512)",
                        arg);
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

static const char *set_str(cmd_parms *cmd, void *cfg, const char *arg)
{
    *(const char **)((char *)cfg + (size_t)cmd->info) = arg;
    return NULL;
}

static const char *set_leeway(cmd_parms *cmd, void *cfg, const char *arg)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (*arg == '\0' || *end || v < 0 || v > 86400)
        return apr_psprintf(cmd->pool, "ClinicJWTLeeway: '%s' is not 0-86400 seconds", arg);
    ((clinic_dir_conf *)cfg)->leeway = v;
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

static const char *set_idem_ttl(cmd_parms *cmd, void *cfg, const char *arg)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (*arg == '\0' || *end || v < 1 || v > 31 * 86400)
        return apr_psprintf(cmd->pool, "ClinicIdempotencyTTL: '%s' is not 1-2678400 seconds",
                            arg);
    ((clinic_dir_conf *)cfg)->idem_ttl = v;
    return NULL;
}

static const char *set_cors_origin(cmd_parms *cmd, void *cfg, const char *arg)
{
    return clinic_cors_add_origin(cmd->pool, cfg, arg);
}

static const char *set_cors_max_age(cmd_parms *cmd, void *cfg, const char *arg)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (*arg == '\0' || *end || v < 0 || v > 86400)
        return apr_psprintf(cmd->pool, "ClinicCORSMaxAge: '%s' is not 0-86400 seconds", arg);
    ((clinic_dir_conf *)cfg)->cors_max_age = v;
    return NULL;
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

static const char *set_jwks_refresh(cmd_parms *cmd, void *cfg, const char *arg)
{
    char *end;
    long v = strtol(arg, &end, 10);

    if (*arg == '\0' || *end || v < 1 || v > 7 * 86400)
        return apr_psprintf(cmd->pool, "ClinicJWKSRefresh: '%s' is not 1-604800 seconds", arg);
    ((clinic_dir_conf *)cfg)->jwks_refresh = v;
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

static const command_rec clinic_cmds[] = {
    AP_INIT_TAKE1("ClinicAuth", set_auth, NULL, DIRCONF,
                  "jwt (default) or off"),
    AP_INIT_TAKE1("ClinicJWTAlgorithm", set_alg, NULL, DIRCONF,
                  "the one JWT algorithm accepted, e.g. RS256"),
    AP_INIT_TAKE1("ClinicJWTKeyFile", set_key_file, NULL, DIRCONF,
                  "PEM public key (RS/ES) or shared secret (HS)"),
    AP_INIT_TAKE1("ClinicJWKSFile", set_jwks_file, NULL, DIRCONF,
                  "JWKS document; the token's kid picks the key"),
    AP_INIT_TAKE1("ClinicJWKSURL", set_key_url, NULL, DIRCONF,
                  "https:// URL of the provider's JWKS, fetched and refreshed"),
    AP_INIT_TAKE1("ClinicOIDCIssuer", set_key_url, (void *)1, DIRCONF,
                  "https:// OpenID Connect issuer: its discovery document names the JWKS"),
    AP_INIT_TAKE1("ClinicJWKSRefresh", set_jwks_refresh, NULL, DIRCONF,
                  "seconds between fetches of ClinicJWKSURL / ClinicOIDCIssuer (default 3600)"),
    AP_INIT_TAKE1("ClinicTLSCAFile", set_path,
                  (void *)APR_OFFSETOF(clinic_dir_conf, tls_ca_file), DIRCONF,
                  "CA certificates the key provider's certificate must chain to"),
    AP_INIT_TAKE1("ClinicJWKSCacheDir", set_path,
                  (void *)APR_OFFSETOF(clinic_dir_conf, jwks_cache_dir), DIRCONF,
                  "directory of the last good fetched key documents"),
    AP_INIT_TAKE1("ClinicJWTIssuer", set_str,
                  (void *)APR_OFFSETOF(clinic_dir_conf, issuer), DIRCONF,
                  "required iss claim"),
    AP_INIT_TAKE1("ClinicJWTAudience", set_str,
                  (void *)APR_OFFSETOF(clinic_dir_conf, audience), DIRCONF,
                  "value the aud claim must contain"),
    AP_INIT_TAKE1("ClinicJWTLeeway", set_leeway, NULL, DIRCONF,
                  "seconds of clock skew allowed on exp, nbf, iat (default 60)"),
    AP_INIT_TAKE1("ClinicUidClaim", set_uid_claim, NULL, DIRCONF,
                  "claim that must equal ?uid= on add-and-link, or none (default sub)"),
    AP_INIT_TAKE1("ClinicMaxBody", set_max_body, NULL, DIRCONF,
                  "largest request body in bytes (default 65536)"),
    AP_INIT_TAKE1("ClinicTimeOffset", set_offset, NULL, DIRCONF,
                  "+HH:MM or -HH:MM for naive dates and for dates in responses"),
    AP_INIT_TAKE1("ClinicPictureBaseURL", set_str,
                  (void *)APR_OFFSETOF(clinic_dir_conf, picture_base), DIRCONF,
                  "URL put before a patient's stored picture"),
    AP_INIT_TAKE1("ClinicIdempotencyTTL", set_idem_ttl, NULL, DIRCONF,
                  "seconds an Idempotency-Key is remembered (default 86400)"),
    AP_INIT_ITERATE("ClinicCORSOrigins", set_cors_origin, NULL, DIRCONF,
                    "origins (scheme://host[:port]) allowed to call from a browser, * or none"),
    AP_INIT_TAKE1("ClinicCORSMaxAge", set_cors_max_age, NULL, DIRCONF,
                  "seconds a browser may cache a preflight answer (default 600)"),
    AP_INIT_FLAG("ClinicMetrics", clinic_metrics_set, NULL, RSRC_CONF,
                 "On (default): count requests for clinic-metrics and mod_status"),
    AP_INIT_TAKE1("ClinicUserClaim", set_str,
                  (void *)APR_OFFSETOF(clinic_dir_conf, user_claim), DIRCONF,
                  "claim that becomes Apache's user, r->user (default sub)"),
    {NULL}
};

/* ---- hooks ---- */

static int clinic_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s)
{
    int found = 0, rc;

    (void)plog;
    (void)ptemp;
    if ((rc = clinic_check_locations(pconf, s, &found)) != OK)
        return rc;
    if ((rc = clinic_db_init(s, found)) != OK)
        return rc;
    return OK;
}

static int clinic_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                              server_rec *s)
{
    (void)plog;
    (void)ptemp;
    return clinic_remote_post_config(pconf, s);
}

/* ObjectIds need randomness of their own in every child process. */
static void clinic_child_init(apr_pool_t *p, server_rec *s)
{
    (void)p;
    if (clinic_objectid_init() != 0)
        ap_log_error(APLOG_MARK, APLOG_CRIT, errno, s, APLOGNO(10540)
                     "clinic: no randomness for ObjectIds");
    clinic_remote_child_init(p, s);
}

static int clinic_handler(request_rec *r)
{
    if (!r->handler)
        return DECLINED;
    if (!strcmp(r->handler, CLINIC_HANDLER_VISITS)) {
        clinic_metric_begin(r);
        return clinic_metric_end(r, 0, clinic_visits_handle(r));
    }
    if (!strcmp(r->handler, CLINIC_HANDLER_LINK)) {
        clinic_metric_begin(r);
        return clinic_metric_end(r, 1, clinic_link_handle(r));
    }
    return DECLINED;
}

static void clinic_register_hooks(apr_pool_t *p)
{
    ap_hook_check_config(clinic_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(clinic_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(clinic_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(clinic_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_header_parser(clinic_cors_early, NULL, NULL, APR_HOOK_MIDDLE);
    clinic_metrics_register_hooks(p);
    clinic_authz_register(p);
    clinic_audit_register(p);
    /* after mod_log_config, so that purging is not counted in %D */
    ap_hook_log_transaction(clinic_idem_purge, NULL, NULL, APR_HOOK_REALLY_LAST);
    ap_hook_translate_name(clinic_storage_note, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_map_to_storage(clinic_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
}

AP_DECLARE_MODULE(clinic) = {
    STANDARD20_MODULE_STUFF,
    clinic_create_dir_conf,
    clinic_merge_dir_conf,
    NULL,
    NULL,
    clinic_cmds,
    clinic_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_NONE
#endif
};
