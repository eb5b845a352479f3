#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "b64url.h"
#include "jwk.h"

#define RSA_MAX_N_BYTES 2048 /* 16384 bits, OpenSSL's own modulus limit (the cap is lower) */
#define RSA_MAX_E_BYTES 8    /* OpenSSL refuses public exponents over 64 bits */

static const struct {
    const char *crv, *group;
    int bits;
} curves[] = {
    { "P-256", "prime256v1", 256 },
    { "P-384", "secp384r1", 384 },
    { "P-521", "secp521r1", 521 },
};

const char *const clinic_jwt_algs[] = { "HS256", "HS384", "HS512", "RS256", "RS384",
                                        "RS512", "ES256", "ES384", "ES512", NULL };

/* "HS256".."ES512" -> 0..8 (family = i / 3: HS, RS, ES; curve or hash size = i % 3), else -1 */
static int alg_index(const char *alg)
{
    int i;

    for (i = 0; alg && clinic_jwt_algs[i]; i++)
        if (!strcmp(alg, clinic_jwt_algs[i]))
            return i;
    return -1;
}

void clinic_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A present member that is not a string without embedded NULs. */
static int bad_string(const json_t *v)
{
    return v && (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v));
}

/* Decode the base64url member name of j into a malloc'd, NUL-terminated buffer of
   min..max bytes; NULL (err set) otherwise. */
static unsigned char *b64_member(const json_t *j, const char *name, size_t min, size_t max,
                                 size_t *outlen, size_t idx, char *err, size_t errlen)
{
    const json_t *v = json_object_get(j, name);
    unsigned char *buf;
    size_t len;
    long n;

    if (!json_is_string(v)) {
        clinic_errf(err, errlen, "key %zu: missing \"%s\"", idx, name);
        return NULL;
    }
    len = json_string_length(v);
    if (!(buf = malloc(len / 4 * 3 + 4))) {
        clinic_errf(err, errlen, "out of memory");
        return NULL;
    }
    n = clinic_b64url_decode(json_string_value(v), len, buf);
    if (n < 0 || (size_t)n < min || (size_t)n > max) {
        clinic_errf(err, errlen, "key %zu: \"%s\" is %s", idx, name,
                n < 0 ? "not valid base64url" : "of the wrong length");
        OPENSSL_clear_free(buf, len / 4 * 3 + 4);
        return NULL;
    }
    buf[n] = '\0';
    *outlen = (size_t)n;
    return buf;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY *pkey = NULL;

    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

static EVP_PKEY *rsa_from_jwk(const json_t *j, size_t idx, char *err, size_t errlen)
{
    size_t nlen, elen;
    unsigned char *n = b64_member(j, "n", 1, RSA_MAX_N_BYTES, &nlen, idx, err, errlen);
    unsigned char *e = n ? b64_member(j, "e", 1, RSA_MAX_E_BYTES, &elen, idx, err, errlen) : NULL;
    BIGNUM *bn_n = e ? BN_bin2bn(n, (int)nlen, NULL) : NULL;
    BIGNUM *bn_e = e ? BN_bin2bn(e, (int)elen, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    int big = bn_n && BN_num_bits(bn_n) > CLINIC_RSA_MAX_BITS;

    if (big)
        clinic_errf(err, errlen, "key %zu: RSA modulus of %d bits, more than the %d allowed",
                    idx, BN_num_bits(bn_n), CLINIC_RSA_MAX_BITS);
    else if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n)
             && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
        pkey = from_params("RSA", bld);
    if (!pkey && e && !big)
        clinic_errf(err, errlen, "key %zu: unusable RSA key", idx);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return pkey;
}

static EVP_PKEY *ec_from_jwk(const json_t *j, int c, size_t idx, char *err, size_t errlen)
{
    size_t flen = (size_t)(curves[c].bits + 7) / 8, xlen, ylen;
    unsigned char *x = b64_member(j, "x", flen, flen, &xlen, idx, err, errlen);
    unsigned char *y = x ? b64_member(j, "y", flen, flen, &ylen, idx, err, errlen) : NULL;
    unsigned char *pt = y ? malloc(1 + 2 * flen) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = NULL;

    if (pt && bld) {
        pt[0] = 0x04; /* uncompressed point */
        memcpy(pt + 1, x, flen);
        memcpy(pt + 1 + flen, y, flen);
        if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curves[c].group, 0)
            && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, 1 + 2 * flen))
            pkey = from_params("EC", bld);
    }
    if (pkey && (!(ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL))
                 || EVP_PKEY_public_check(ctx) != 1)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    if (!pkey && y)
        clinic_errf(err, errlen, "key %zu: x,y is not a valid %s point", idx, curves[c].crv);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_BLD_free(bld);
    free(pt);
    free(x);
    free(y);
    return pkey;
}

/* Store pkey's SubjectPublicKeyInfo PEM in k->key. */
static int to_pem(EVP_PKEY *pkey, clinic_jwk_t *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long len;
    int ok = 0;

    if (bio && PEM_write_bio_PUBKEY(bio, pkey) == 1 && (len = BIO_get_mem_data(bio, &data)) > 0
        && (k->key = malloc((size_t)len + 1))) {
        memcpy(k->key, data, (size_t)len);
        k->key[len] = '\0';
        k->key_len = (size_t)len;
        ok = 1;
    }
    BIO_free(bio);
    return ok;
}

static void free_one(clinic_jwk_t *k)
{
    free(k->kid);
    free(k->alg);
    if (k->key)
        OPENSSL_clear_free(k->key, k->key_len + 1);
    memset(k, 0, sizeof(*k));
}

/* 1 parsed into k, 0 skipped, -1 malformed (err set). k starts zeroed; unless 1, the caller
   free_one()s whatever was left in it. */
static int parse_one(const json_t *j, size_t idx, clinic_jwk_t *k, char *err, size_t errlen)
{
    const json_t *kty = json_object_get(j, "kty"), *use = json_object_get(j, "use");
    const json_t *kid = json_object_get(j, "kid"), *alg = json_object_get(j, "alg");
    const json_t *crv = json_object_get(j, "crv");
    const char *t;
    EVP_PKEY *pkey;
    int c, ok;

    if (!json_is_object(j) || !json_is_string(kty)) {
        clinic_errf(err, errlen, "key %zu: not a JWK (no \"kty\")", idx);
        return -1;
    }
    if (bad_string(use) || bad_string(kid) || bad_string(alg)) {
        clinic_errf(err, errlen, "key %zu: \"use\", \"kid\" and \"alg\" must be strings", idx);
        return -1;
    }
    if (use && strcmp(json_string_value(use), "sig"))
        return 0;
    t = json_string_value(kty);
    if (!strcmp(t, "oct")) {
        k->kty = CLINIC_KTY_OCT;
        if (!(k->key = b64_member(j, "k", 1, SIZE_MAX, &k->key_len, idx, err, errlen)))
            return -1;
    } else if (!strcmp(t, "RSA") || !strcmp(t, "EC")) {
        if (t[0] == 'R') {
            k->kty = CLINIC_KTY_RSA;
            pkey = rsa_from_jwk(j, idx, err, errlen);
        } else {
            if (!json_is_string(crv)) {
                clinic_errf(err, errlen, "key %zu: EC key without \"crv\"", idx);
                return -1;
            }
            for (c = 0; c < 3 && strcmp(json_string_value(crv), curves[c].crv); c++)
                ;
            if (c == 3)
                return 0;
            k->kty = CLINIC_KTY_EC;
            k->ec_bits = curves[c].bits;
            pkey = ec_from_jwk(j, c, idx, err, errlen);
        }
        if (!pkey)
            return -1;
        ok = to_pem(pkey, k);
        EVP_PKEY_free(pkey);
        if (!ok) {
            clinic_errf(err, errlen, "out of memory");
            return -1;
        }
    } else {
        return 0;
    }
    if ((kid && !(k->kid = strdup(json_string_value(kid))))
        || (alg && !(k->alg = strdup(json_string_value(alg))))) {
        clinic_errf(err, errlen, "out of memory");
        return -1;
    }
    return 1;
}

int clinic_jwks_parse(const char *json, size_t len, clinic_jwk_t **keys, size_t *n,
                      char *err, size_t errlen)
{
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    const json_t *arr = json_object_get(root, "keys");
    clinic_jwk_t *out = NULL;
    size_t i, count = 0;
    int rc = -1;

    if (!json_is_array(arr))
        clinic_errf(err, errlen, root ? "JWKS has no \"keys\" array" : "JWKS is not valid JSON");
    else if (!(out = calloc(json_array_size(arr) + 1, sizeof(*out))))
        clinic_errf(err, errlen, "out of memory");
    else {
        for (i = 0, rc = 0; rc >= 0 && i < json_array_size(arr); i++) {
            rc = parse_one(json_array_get(arr, i), i, &out[count], err, errlen);
            if (rc > 0)
                count++;
            else if (rc == 0)
                free_one(&out[count]);
        }
        if (rc >= 0 && !count) {
            clinic_errf(err, errlen, "JWKS has no usable signing key");
            rc = -1;
        }
        if (rc < 0) {
            clinic_jwks_free(out, count + 1); /* entries past count are zeroed or partial */
            ERR_clear_error();
        } else {
            *keys = out;
            *n = count;
            rc = 0;
        }
    }
    json_decref(root);
    return rc;
}

void clinic_jwks_free(clinic_jwk_t *keys, size_t n)
{
    size_t i;

    for (i = 0; keys && i < n; i++)
        free_one(&keys[i]);
    free(keys);
}

/* Load a PEM "PUBLIC KEY" or "RSA PUBLIC KEY" block (nothing else, in particular no private
   key) from key[0..len). */
EVP_PKEY *clinic_pem_public_key(const unsigned char *key, size_t len)
{
    BIO *bio = len <= INT_MAX ? BIO_new_mem_buf(key, (int)len) : NULL;
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    long dlen = 0;
    EVP_PKEY *pkey = NULL;

    if (bio && PEM_read_bio(bio, &name, &header, &der, &dlen) == 1) {
        p = der;
        if (!strcmp(name, PEM_STRING_PUBLIC))
            pkey = d2i_PUBKEY(NULL, &p, dlen);
        else if (!strcmp(name, PEM_STRING_RSA_PUBLIC))
            pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, dlen);
        if (pkey && p != der + dlen) { /* trailing bytes after the DER structure */
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(bio);
    return pkey;
}

/* What an HS secret must not be: key material meant to be public, with which whoever holds it
   could mint tokens. NULL, or the kind of material found. */
static const char *public_material(const unsigned char *key, size_t len)
{
    size_t i = 0;
    json_t *doc;
    const char *what = NULL;

    if (memmem(key, len, "-----BEGIN", 10))
        return "a PEM block";
    while (i < len && key[i] && strchr(" \t\r\n", key[i]))
        i++;
    if (i == len || key[i] != '{')
        return NULL;
    doc = json_loadb((const char *)key + i, len - i, 0, NULL);
    if (json_object_get(doc, "keys"))
        what = "a JWKS document";
    else if (json_object_get(doc, "kty"))
        what = "a JWK";
    json_decref(doc);
    return what;
}

int clinic_key_fits_alg(const unsigned char *key, size_t len, const char *alg,
                        char *err, size_t errlen)
{
    const char *what = NULL;
    int i = alg_index(alg), fits = 0;
    char group[32];
    EVP_PKEY *pkey;

    if (i < 0) {
        clinic_errf(err, errlen, "unsupported algorithm \"%s\"", alg ? alg : "(null)");
        return 0;
    }
    if (i / 3 == 0) {
        if (!key || !len)
            clinic_errf(err, errlen, "%s needs a non-empty secret", alg);
        else if ((what = public_material(key, len)))
            clinic_errf(err, errlen, "%s needs a shared secret, not %s (a public key as a "
                        "secret lets whoever has it mint tokens)", alg, what);
        return key && len && !what;
    }
    if (!key || !(pkey = clinic_pem_public_key(key, len))) {
        clinic_errf(err, errlen, "%s needs a PEM public key", alg);
        ERR_clear_error();
        return 0;
    }
    if (i / 3 == 1) {
        if (!EVP_PKEY_is_a(pkey, "RSA"))
            clinic_errf(err, errlen, "%s needs an RSA key", alg);
        else if (EVP_PKEY_get_bits(pkey) < 2048)
            clinic_errf(err, errlen, "%s needs an RSA key of >= 2048 bits, not %d", alg,
                    EVP_PKEY_get_bits(pkey));
        else if (EVP_PKEY_get_bits(pkey) > CLINIC_RSA_MAX_BITS)
            clinic_errf(err, errlen, "%s: an RSA key of %d bits, more than the %d allowed", alg,
                    EVP_PKEY_get_bits(pkey), CLINIC_RSA_MAX_BITS);
        else
            fits = 1;
    } else {
        if (!EVP_PKEY_is_a(pkey, "EC")
            || !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                               sizeof(group), NULL)
            || strcmp(group, curves[i % 3].group))
            clinic_errf(err, errlen, "%s needs an EC key on %s", alg, curves[i % 3].crv);
        else
            fits = 1;
    }
    EVP_PKEY_free(pkey);
    if (!fits)
        ERR_clear_error();
    return fits;
}

int clinic_jwk_fits_alg(const clinic_jwk_t *k, const char *alg)
{
    int i = alg_index(alg);

    if (!k || i < 0 || (k->alg && strcmp(k->alg, alg)))
        return 0;
    if (k->kty == CLINIC_KTY_OCT)
        return i / 3 == 0 && k->key_len > 0;
    return i / 3 != 0 && clinic_key_fits_alg(k->key, k->key_len, alg, NULL, 0);
}
