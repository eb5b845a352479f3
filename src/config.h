/*
 * mod_clinic's configuration (src/config.c): the per-directory settings,
 * their defaults, the directive table, key loading and the start-up check
 * (docs/API.md §2).
 *
 * Return convention of this layer, Apache's own: a directive setter returns
 * NULL or the error text Apache prints with the file and line; the hooks'
 * helpers return OK or an HTTP status (which stops start-up).
 */
#ifndef CLINIC_CONFIG_H
#define CLINIC_CONFIG_H

#include "httpd.h"
#include "http_config.h"

#include "keyset.h"

#define CLINIC_HANDLER_VISITS "clinic-visits"
#define CLINIC_HANDLER_LINK   "clinic-add-and-link"

#define CLINIC_UNSET (-1)
#define CLINIC_DEFAULT_LEEWAY 60
#define CLINIC_DEFAULT_MAX_BODY 65536
#define CLINIC_DEFAULT_UID_CLAIM "sub"
#define CLINIC_DEFAULT_USER_CLAIM "sub"
#define CLINIC_DEFAULT_IDEM_TTL 86400
#define CLINIC_DEFAULT_CORS_MAX_AGE 600

/* Key material, read once when the configuration is read. */
typedef struct {
    const char *path;          /* file it came from, for messages */
    int is_jwks;
    unsigned char *key;        /* ClinicJWTKeyFile contents */
    size_t key_len;
    clinic_jwk_t *jwks;        /* ClinicJWKSFile keys */
    size_t njwks;
    clinic_keyset_t *sets[9];  /* ready-to-verify, per algorithm (keyset.c's index) */
    const char *url;           /* ClinicJWKSURL / ClinicOIDCIssuer: fetched (remote.c) */
    int oidc;                  /* url is an issuer: discovery first */
} clinic_keysrc_t;

/* Per-directory configuration; every field has an unset state so that a
 * <Location> inherits what it does not set. */
typedef struct {
    int auth;                          /* CLINIC_UNSET, 0 off, 1 jwt */
    const char *alg;                   /* ClinicJWTAlgorithm, NULL unset */
    const clinic_keysrc_t *keys;       /* NULL unset */
    const char *issuer;                /* NULL unset */
    const char *audience;              /* NULL unset */
    long leeway;                       /* CLINIC_UNSET */
    const char *uid_claim;             /* NULL unset; "" = none */
    apr_off_t max_body;                /* CLINIC_UNSET */
    int time_offset;                   /* seconds east of UTC */
    int time_offset_set;
    const char *picture_base;          /* NULL unset */
    long idem_ttl;                     /* CLINIC_UNSET */
    apr_array_header_t *cors_origins;  /* const char *; NULL unset, empty = none */
    long cors_max_age;                 /* CLINIC_UNSET */
    /* keys fetched from a provider (remote.c) */
    long jwks_refresh;                 /* ClinicJWKSRefresh, CLINIC_UNSET */
    const char *tls_ca_file;           /* ClinicTLSCAFile, NULL: the system's store */
    const char *jwks_cache_dir;        /* ClinicJWKSCacheDir, NULL: runtime dir */
    const char *user_claim;            /* ClinicUserClaim, NULL unset */
    /* sender-constrained tokens (dpop.c) */
    long dpop;                         /* ClinicDPoP: CLINIC_UNSET, CLINIC_DPOP_OFF/ACCEPT/REQUIRE */
    apr_array_header_t *dpop_algs;     /* ClinicDPoPAlgorithms: const char *, NULL unset */
    long dpop_window;                  /* ClinicDPoPWindow, CLINIC_UNSET */
    const char *dpop_url;              /* ClinicDPoPURL, NULL: the request's own URL */
    long cert_bound;                   /* ClinicCertBoundTokens: CLINIC_UNSET, 0 off, 1 require */
} clinic_dir_conf;

/* Effective values with the defaults applied. */
#define CLINIC_AUTH_ON(c)   ((c)->auth != 0)
#define CLINIC_LEEWAY(c)    ((c)->leeway == CLINIC_UNSET ? CLINIC_DEFAULT_LEEWAY : (c)->leeway)
#define CLINIC_MAX_BODY(c)  ((c)->max_body == CLINIC_UNSET ? CLINIC_DEFAULT_MAX_BODY : (c)->max_body)
#define CLINIC_UID_CLAIM(c) ((c)->uid_claim ? (c)->uid_claim : CLINIC_DEFAULT_UID_CLAIM)
#define CLINIC_IDEM_TTL(c)  ((c)->idem_ttl == CLINIC_UNSET ? CLINIC_DEFAULT_IDEM_TTL : (c)->idem_ttl)
#define CLINIC_CORS_MAX_AGE(c) \
    ((c)->cors_max_age == CLINIC_UNSET ? CLINIC_DEFAULT_CORS_MAX_AGE : (c)->cors_max_age)
#define CLINIC_DEFAULT_JWKS_REFRESH 3600
#define CLINIC_JWKS_REFRESH(c) \
    ((c)->jwks_refresh == CLINIC_UNSET ? CLINIC_DEFAULT_JWKS_REFRESH : (c)->jwks_refresh)
#define CLINIC_USER_CLAIM(c) ((c)->user_claim ? (c)->user_claim : CLINIC_DEFAULT_USER_CLAIM)
/* ClinicJWTIssuer * / ClinicJWTAudience *: the administrator's explicit "any" (not checked),
 * which keys from a provider need instead of a value (warned about at start-up). */
#define CLINIC_ANY "*"
#define CLINIC_IS_ANY(v) ((v) && !strcmp((v), CLINIC_ANY))
#define CLINIC_CHECKED(v) (CLINIC_IS_ANY(v) ? NULL : (v))

#define CLINIC_DPOP_OFF     0
#define CLINIC_DPOP_ACCEPT  1
#define CLINIC_DPOP_REQUIRE 2
#define CLINIC_DEFAULT_DPOP_WINDOW 60
#define CLINIC_DPOP(c) ((c)->dpop == CLINIC_UNSET ? CLINIC_DPOP_OFF : (c)->dpop)
#define CLINIC_DPOP_WINDOW(c) \
    ((c)->dpop_window == CLINIC_UNSET ? CLINIC_DEFAULT_DPOP_WINDOW : (c)->dpop_window)
#define CLINIC_CERT_BOUND(c) ((c)->cert_bound == 1)

extern const command_rec clinic_cmds[];

void *clinic_create_dir_conf(apr_pool_t *p, char *dir);
void *clinic_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);

/* check_config: every <Location> with a clinic handler and ClinicAuth jwt
 * has a usable key (else logged, naming the Location, and an HTTP status is
 * returned, which stops Apache). *found: how many clinic Locations there are. */
int clinic_config_check(apr_pool_t *p, server_rec *s, int *found);

#endif
