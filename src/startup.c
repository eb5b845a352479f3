/*
 * Start-up checks, run at check_config so that `apachectl configtest` fails
 * too: every <Location> whose SetHandler is a clinic handler must, with
 * ClinicAuth jwt in effect, have an algorithm and a key that fits it. A
 * misconfigured Location stops Apache; it never serves unauthenticated.
 *
 * The effective configuration of a Location is rebuilt as the location walk
 * would: the server's defaults, then every <Location> section that matches
 * the path, in configuration order.
 */
#include "clinic.h"
#include "http_core.h"
#include "ap_regex.h"

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
        if (!strncmp(c->alg, "HS", 2))
            return apr_psprintf(p, "%s %s: a provider's published keys cannot be %s secrets",
                                c->keys->oidc ? "ClinicOIDCIssuer" : "ClinicJWKSURL",
                                c->keys->url, c->alg);
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
            const char *why;

            if (!strcmp(path, "~")) {
                const char *rest = d->args + strspn(d->args, " \t") + 1;
                path = first_arg(p, rest);
            }
            (*found)++;
            why = auth_problem(p, s, effective(p, s, path, is_regex));
            if (why) {
                ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, 0, s, APLOGNO(10530)
                             "clinic: %s %s> (%s:%d): %s", d->directive, path,
                             d->filename, d->line_num, why);
                rc = HTTP_INTERNAL_SERVER_ERROR;
            }
        } else if (d->first_child) {
            rc = walk(p, main_s, s, d->first_child, found);
        }
    }
    return rc;
}

int clinic_check_locations(apr_pool_t *p, server_rec *s, int *found)
{
    *found = 0;
    return walk(p, s, s, ap_conftree, found);
}
