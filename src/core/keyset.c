/*
 * Key sets parsed once into ready-to-verify keys, and the signature checks
 * themselves: EVP_DigestVerify for RS (PKCS#1 v1.5) and ES (the JWS r||s
 * signature turned into DER first), HMAC compared with CRYPTO_memcmp for HS.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/hmac.h>

#include "keyset.h"

static unsigned long next_id;   /* atomic */

/* "HS256".."ES512": family 0/1/2 and the digest; -1 for anything else. */
static int alg_info(const char *alg, const EVP_MD **md, size_t *ec_len)
{
    int fam;

    if (!alg || strlen(alg) != 5)
        return -1;
    if (!strncmp(alg, "HS", 2))
        fam = 0;
    else if (!strncmp(alg, "RS", 2))
        fam = 1;
    else if (!strncmp(alg, "ES", 2))
        fam = 2;
    else
        return -1;
    if (!strcmp(alg + 2, "256")) {
        *md = EVP_sha256();
        *ec_len = 32;
    } else if (!strcmp(alg + 2, "384")) {
        *md = EVP_sha384();
        *ec_len = 48;
    } else if (!strcmp(alg + 2, "512")) {
        *md = EVP_sha512();
        *ec_len = 66;     /* P-521 */
    } else {
        return -1;
    }
    return fam;
}

int clinic_alg_index(const char *alg)
{
    const EVP_MD *md;
    size_t ec;
    int fam = alg_info(alg, &md, &ec);

    return fam < 0 ? -1 : fam * 3 + (ec == 32 ? 0 : ec == 48 ? 1 : 2);
}

size_t clinic_hs_min_len(const char *alg)
{
    const EVP_MD *md;
    size_t ec;

    return alg_info(alg, &md, &ec) == 0 ? (size_t)EVP_MD_get_size(md) : 0;
}

static clinic_keyset_t *new_set(const char *alg, size_t cap, char *err, size_t errlen)
{
    clinic_keyset_t *ks = calloc(1, sizeof *ks);

    if (!ks || !(ks->keys = calloc(cap ? cap : 1, sizeof *ks->keys))) {
        free(ks);
        clinic_errf(err, errlen, "out of memory");
        return NULL;
    }
    ks->family = alg_info(alg, &ks->md, &ks->ec_len);
    if (ks->family < 0) {
        free(ks->keys);
        free(ks);
        clinic_errf(err, errlen, "unsupported algorithm \"%s\"", alg ? alg : "(null)");
        return NULL;
    }
    /* An explicitly fetched digest: EVP_sha256() and friends make OpenSSL 3 look the
       implementation up again in every EVP_DigestVerifyInit. */
    ks->md_fetched = EVP_MD_fetch(NULL, EVP_MD_get0_name(ks->md), NULL);
    if (ks->md_fetched)
        ks->md = ks->md_fetched;
    ks->alg = alg;
    ks->refs = 1;
    ks->id = __atomic_add_fetch(&next_id, 1, __ATOMIC_RELAXED);
    return ks;
}

/* Fill k from key material that fits ks->alg. 0 ok, -1 (err set). */
static int fill(clinic_keyset_t *ks, clinic_vkey_t *k, const unsigned char *key, size_t len,
                char *err, size_t errlen)
{
    if (ks->family == 0) {
        size_t min = clinic_hs_min_len(ks->alg);
        if (len < min) {
            clinic_errf(err, errlen, "%s needs a secret of at least %zu bytes, not %zu", ks->alg,
                    min, len);
            return -1;
        }
        if (!(k->secret = malloc(len))) {
            clinic_errf(err, errlen, "out of memory");
            return -1;
        }
        memcpy(k->secret, key, len);
        k->secret_len = len;
        return 0;
    }
    if (!clinic_key_fits_alg(key, len, ks->alg, err, errlen))
        return -1;
    if (!(k->pkey = clinic_pem_public_key(key, len))) {
        ERR_clear_error();
        clinic_errf(err, errlen, "%s: unusable public key", ks->alg);
        return -1;
    }
    /* OpenSSL 3 looks the signature implementation up (under its global
       locks) in every EVP_DigestVerifyInit: do it once, then copy. */
    if (!(k->tmpl = EVP_MD_CTX_new()) ||
        EVP_DigestVerifyInit(k->tmpl, NULL, ks->md, NULL, k->pkey) != 1) {
        ERR_clear_error();
        clinic_errf(err, errlen, "%s: the public key cannot verify", ks->alg);
        return -1;
    }
    return 0;
}

clinic_keyset_t *clinic_keyset_from_key(const unsigned char *key, size_t len, const char *alg,
                                        char *err, size_t errlen)
{
    clinic_keyset_t *ks = new_set(alg, 1, err, errlen);

    if (!ks)
        return NULL;
    ks->any_kid = 1;
    if (fill(ks, &ks->keys[0], key, len, err, errlen) != 0) {
        clinic_keyset_unref(ks);
        return NULL;
    }
    ks->n = 1;
    return ks;
}

clinic_keyset_t *clinic_keyset_from_jwks(const clinic_jwk_t *jwks, size_t n, const char *alg,
                                         char *err, size_t errlen)
{
    clinic_keyset_t *ks = new_set(alg, n, err, errlen);
    size_t i, min = clinic_hs_min_len(alg);

    if (!ks)
        return NULL;
    for (i = 0; i < n; i++) {
        const clinic_jwk_t *j = &jwks[i];
        clinic_vkey_t *k = &ks->keys[ks->n];
        if (!clinic_jwk_fits_alg(j, alg) || (ks->family == 0 && j->key_len < min))
            continue;
        if (fill(ks, k, j->key, j->key_len, NULL, 0) != 0)
            continue;
        if (j->kid && !(k->kid = strdup(j->kid))) {
            ks->n++;
            clinic_keyset_unref(ks);
            clinic_errf(err, errlen, "out of memory");
            return NULL;
        }
        ks->n++;
    }
    if (!ks->n) {
        clinic_errf(err, errlen, "no key of the set fits %s%s", alg,
                ks->family == 0 ? " (or its secret is shorter than the hash)" : "");
        clinic_keyset_unref(ks);
        return NULL;
    }
    return ks;
}

clinic_keyset_t *clinic_keyset_from_doc(const char *json, size_t len, const char *alg,
                                        char *err, size_t errlen)
{
    clinic_jwk_t *jwks = NULL;
    size_t n = 0;
    clinic_keyset_t *ks;

    if (clinic_jwks_parse(json, len, &jwks, &n, err, errlen) != 0)
        return NULL;
    ks = clinic_keyset_from_jwks(jwks, n, alg, err, errlen);
    clinic_jwks_free(jwks, n);
    return ks;
}

const clinic_vkey_t *clinic_keyset_pick(const clinic_keyset_t *ks, const char *kid,
                                        int *unknown_kid, const char **why)
{
    size_t i;

    *unknown_kid = 0;
    if (!ks || !ks->n) {
        *why = "no key configured";
        return NULL;
    }
    if (ks->any_kid)
        return &ks->keys[0];
    if (!kid) {
        if (ks->n == 1)
            return &ks->keys[0];
        *why = "no kid and not exactly one key fits";
        return NULL;
    }
    for (i = 0; i < ks->n; i++)
        if (ks->keys[i].kid && !strcmp(ks->keys[i].kid, kid))
            return &ks->keys[i];
    *unknown_kid = 1;
    *why = "unknown kid";
    return NULL;
}

/* JWS r||s (2 * n bytes) -> a DER ECDSA-Sig-Value in der (malloc'd by OpenSSL). */
static int ecdsa_der(const unsigned char *sig, size_t n, unsigned char **der)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)n, NULL), *s = BN_bin2bn(sig + n, (int)n, NULL);
    int len = -1;

    if (es && r && s && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL;   /* owned by es now */
        *der = NULL;
        len = i2d_ECDSA_SIG(es, der);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return len;
}

int clinic_keyset_verify(const clinic_keyset_t *ks, const clinic_vkey_t *k,
                         const unsigned char *data, size_t len,
                         const unsigned char *sig, size_t siglen)
{
    unsigned char mac[EVP_MAX_MD_SIZE], *der = NULL;
    unsigned int maclen = 0;
    EVP_MD_CTX *ctx;
    int ok = 0, dlen;

    if (ks->family == 0) {
        if (!HMAC(ks->md, k->secret, (int)k->secret_len, data, len, mac, &maclen))
            return 0;
        ok = siglen == maclen && CRYPTO_memcmp(mac, sig, maclen) == 0;
        OPENSSL_cleanse(mac, sizeof mac);
        return ok;
    }
    if (ks->family == 2) {
        if (siglen != 2 * ks->ec_len || (dlen = ecdsa_der(sig, ks->ec_len, &der)) <= 0)
            return 0;
        sig = der;
        siglen = (size_t)dlen;
    } else if (siglen != (size_t)EVP_PKEY_get_size(k->pkey)) {
        return 0;
    }
    if ((ctx = EVP_MD_CTX_new()) != NULL && EVP_MD_CTX_copy_ex(ctx, k->tmpl) == 1)
        ok = EVP_DigestVerify(ctx, sig, siglen, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    if (!ok)
        ERR_clear_error();
    return ok;
}

clinic_keyset_t *clinic_keyset_ref(clinic_keyset_t *ks)
{
    if (ks)
        __atomic_add_fetch(&ks->refs, 1, __ATOMIC_RELAXED);
    return ks;
}

void clinic_keyset_unref(clinic_keyset_t *ks)
{
    size_t i;

    if (!ks || __atomic_sub_fetch(&ks->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (i = 0; i < ks->n; i++) {
        free(ks->keys[i].kid);
        EVP_MD_CTX_free(ks->keys[i].tmpl);
        EVP_PKEY_free(ks->keys[i].pkey);
        if (ks->keys[i].secret)
            OPENSSL_clear_free(ks->keys[i].secret, ks->keys[i].secret_len);
    }
    free(ks->keys);
    EVP_MD_free(ks->md_fetched);
    free(ks);
}
