/*
 * Ready-to-verify key sets: a key file or a JWKS document parsed once into
 * OpenSSL keys (RS/ES) or secrets (HS), holding only the keys that fit the
 * pinned algorithm. A set is reference counted so that a request keeps the
 * set it started with while a fetcher swaps in a new one. Free of httpd
 * headers (unit tests and fuzz targets link it alone).
 */
#ifndef CLINIC_KEYSET_H
#define CLINIC_KEYSET_H

#include <stddef.h>
#include <openssl/evp.h>
#include "jwk.h"

typedef struct {
    char *kid;                /* NULL: the JWK had none (or a key file) */
    EVP_PKEY *pkey;           /* RS/ES */
    EVP_MD_CTX *tmpl;         /* RS/ES: initialised for pkey once, copied per verification
                               * (never changed after, so read by many threads at once) */
    unsigned char *secret;    /* HS */
    size_t secret_len;
} clinic_vkey_t;

typedef struct {
    unsigned long id;         /* unique in the process: the token cache's tag */
    int refs;                 /* atomic */
    int any_kid;              /* a key file: the token's kid is not consulted */
    const char *alg;          /* the pinned algorithm (static string) */
    const EVP_MD *md;
    EVP_MD *md_fetched;       /* md, fetched once (freed with the set) */
    int family;               /* 0 HS, 1 RS, 2 ES */
    size_t ec_len;            /* ES: bytes of r (and of s) */
    size_t n;
    clinic_vkey_t *keys;
} clinic_keyset_t;

/* "HS256".."ES512" -> 0..8, else -1. */
int clinic_alg_index(const char *alg);

/* Smallest HS secret for alg (RFC 7518 3.2: the hash size), 0 for RS/ES. */
size_t clinic_hs_min_len(const char *alg);

/* A set from a key file's bytes (PEM public key, or HS secret). NULL: err says why. */
clinic_keyset_t *clinic_keyset_from_key(const unsigned char *key, size_t len, const char *alg,
                                        char *err, size_t errlen);
/* A set of the parsed JWKs that fit alg (kty, crv, alg, size). NULL when none fits. */
clinic_keyset_t *clinic_keyset_from_jwks(const clinic_jwk_t *jwks, size_t n, const char *alg,
                                         char *err, size_t errlen);
/* Parse a JWKS document and keep what fits alg. */
clinic_keyset_t *clinic_keyset_from_doc(const char *json, size_t len, const char *alg,
                                        char *err, size_t errlen);

/* The key for kid (NULL: the only key), or NULL: *why says which failure. */
const clinic_vkey_t *clinic_keyset_pick(const clinic_keyset_t *ks, const char *kid,
                                        int *unknown_kid, const char **why);
/* 1 when sig[0..siglen) is the set's algorithm's signature of data by k. */
int clinic_keyset_verify(const clinic_keyset_t *ks, const clinic_vkey_t *k,
                         const unsigned char *data, size_t len,
                         const unsigned char *sig, size_t siglen);

clinic_keyset_t *clinic_keyset_ref(clinic_keyset_t *ks);
void clinic_keyset_unref(clinic_keyset_t *ks);

#endif
