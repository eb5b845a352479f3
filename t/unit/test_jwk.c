/* Unit tests for src/core/b64url.c and src/core/jwk.c, with keys generated at test time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "b64url.h"
#include "jwk.h"

static EVP_PKEY *rsa, *rsa1024, *p256, *p384;

static int setup(void **state)
{
    (void)state;
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    return rsa && rsa1024 && p256 && p384 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    return 0;
}

/* PEM of pkey in the given encoder structure ("SubjectPublicKeyInfo", "type-specific") and
   selection; malloc'd. */
static char *pem_of(EVP_PKEY *pkey, int selection, const char *structure)
{
    OSSL_ENCODER_CTX *ctx = OSSL_ENCODER_CTX_new_for_pkey(pkey, selection, "PEM", structure, NULL);
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out;
    long len;

    assert_non_null(ctx);
    assert_int_equal(OSSL_ENCODER_to_bio(ctx, bio), 1);
    len = BIO_get_mem_data(bio, &data);
    out = strndup(data, (size_t)len);
    assert_non_null(out);
    OSSL_ENCODER_CTX_free(ctx);
    BIO_free(bio);
    return out;
}

static char *spki_pem(EVP_PKEY *pkey)
{
    return pem_of(pkey, EVP_PKEY_PUBLIC_KEY, "SubjectPublicKeyInfo");
}

/* base64url of a BIGNUM key parameter, left-padded to pad bytes (0: minimal); the last byte
   xor'ed with flip. Returns a static buffer. */
static const char *b64_param(EVP_PKEY *pkey, const char *param, int pad, unsigned char flip)
{
    static char txt[1500];
    unsigned char bin[1100];
    BIGNUM *bn = NULL;
    int len;

    assert_int_equal(EVP_PKEY_get_bn_param(pkey, param, &bn), 1);
    len = pad ? pad : BN_num_bytes(bn);
    assert_int_equal(BN_bn2binpad(bn, bin, len), len);
    bin[len - 1] ^= flip;
    clinic_b64url_encode(bin, (size_t)len, txt);
    BN_free(bn);
    return txt;
}

/* JWK object text for a generated public key, with extra members appended. */
static char *jwk_of(EVP_PKEY *pkey, const char *extra, unsigned char flip_y)
{
    char n[1500], x[128], *out;
    int flen = (EVP_PKEY_get_bits(pkey) + 7) / 8;

    if (EVP_PKEY_is_a(pkey, "RSA")) {
        strcpy(n, b64_param(pkey, OSSL_PKEY_PARAM_RSA_N, 0, 0));
        assert_true(asprintf(&out, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s}", n,
                             b64_param(pkey, OSSL_PKEY_PARAM_RSA_E, 0, 0), extra) > 0);
    } else {
        strcpy(x, b64_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, flen, 0));
        assert_true(asprintf(&out, "{\"kty\":\"EC\",\"crv\":\"P-%d\",\"x\":\"%s\",\"y\":\"%s\"%s}",
                             EVP_PKEY_get_bits(pkey), x,
                             b64_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, flen, flip_y), extra) > 0);
    }
    return out;
}

static int parse(const char *json, clinic_jwk_t **keys, size_t *n, char *err)
{
    err[0] = '\0';
    return clinic_jwks_parse(json, strlen(json), keys, n, err, 128);
}

/* Parse {"keys":[one]} and expect failure with a message. */
static void expect_rejected(const char *jwk)
{
    char *json, err[128];
    clinic_jwk_t *keys = NULL;
    size_t n = 0;

    assert_true(asprintf(&json, "{\"keys\":[%s]}", jwk) > 0);
    assert_int_equal(parse(json, &keys, &n, err), -1);
    assert_true(err[0] != '\0');
    assert_null(keys);
    free(json);
}

static void test_b64url_vectors(void **state)
{
    static const char *const v[][2] = {
        { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg" },
        { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" },
        { "\xfb\xff", "-_8" }, { "\xfb\xef\xbe", "----" }, { "\xff\xff\xff", "____" },
        { "\x03\xe0\x3f", "A-A_" },
    };
    char enc[16];
    unsigned char dec[16];
    size_t i, len;

    (void)state;
    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        len = strlen(v[i][0]);
        assert_int_equal(clinic_b64url_encode((const unsigned char *)v[i][0], len, enc),
                         strlen(v[i][1]));
        assert_string_equal(enc, v[i][1]);
        assert_int_equal(clinic_b64url_decode(v[i][1], strlen(v[i][1]), dec), (long)len);
        assert_memory_equal(dec, v[i][0], len);
    }
    assert_int_equal(clinic_b64url_decode("Zg==", 4, dec), 1);
    assert_int_equal(dec[0], 'f');
    assert_int_equal(clinic_b64url_decode("Zm8=", 4, dec), 2);
    assert_memory_equal(dec, "fo", 2);
    assert_int_equal(clinic_b64url_decode("Zm9vYmFy", 4, dec), 3); /* only len bytes are read */
}

static void test_b64url_invalid(void **state)
{
    static const char *const bad[] = {
        "Zm9v+", "Zm9/", "Zm 9v", "Zm9v\n", "Z", "Zm9vY", "Zg=", "Zm9v=", "Zm9v==", "Z===",
        "====", "Zg==Zg", "Zh", "Zm9", "Zm9vYmF=",
    };
    unsigned char dec[16];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(clinic_b64url_decode(bad[i], strlen(bad[i]), dec), -1);
    assert_int_equal(clinic_b64url_decode("Zm\0v", 4, dec), -1);
}

/* clinic_jwks_parse on a one-key JWKS yields a loadable PEM of the same public key. */
static void roundtrip(EVP_PKEY *pkey, clinic_kty_t kty, int ec_bits, const char *alg)
{
    char *jwk, *json, err[128], extra[96];
    clinic_jwk_t *keys;
    size_t n;
    BIO *bio;
    EVP_PKEY *back;

    snprintf(extra, sizeof(extra), ",\"kid\":\"k-%s\",\"alg\":\"%s\",\"use\":\"sig\",\"d\":\"AQAB\"",
             alg, alg);
    jwk = jwk_of(pkey, extra, 0);
    assert_true(asprintf(&json, "{\"keys\":[%s]}", jwk) > 0);
    assert_int_equal(parse(json, &keys, &n, err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(keys[0].kty, kty);
    assert_int_equal(keys[0].ec_bits, ec_bits);
    assert_string_equal(keys[0].alg, alg);
    assert_string_equal(keys[0].kid + 2, alg);
    assert_int_equal(keys[0].key_len, strlen((char *)keys[0].key));
    assert_non_null(strstr((char *)keys[0].key, "-----BEGIN PUBLIC KEY-----\n"));
    bio = BIO_new_mem_buf(keys[0].key, (int)keys[0].key_len);
    back = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    assert_non_null(back);
    assert_int_equal(EVP_PKEY_eq(back, pkey), 1);
    assert_true(clinic_jwk_fits_alg(&keys[0], alg));
    assert_true(clinic_key_fits_alg(keys[0].key, keys[0].key_len, alg, err, sizeof(err)));
    assert_false(clinic_jwk_fits_alg(&keys[0], "HS256"));
    assert_false(clinic_jwk_fits_alg(&keys[0], kty == CLINIC_KTY_RSA ? "RS384" : "ES512"));
    EVP_PKEY_free(back);
    BIO_free(bio);
    clinic_jwks_free(keys, n);
    free(json);
    free(jwk);
}

static void test_jwks_roundtrip(void **state)
{
    (void)state;
    roundtrip(rsa, CLINIC_KTY_RSA, 0, "RS256");
    roundtrip(p256, CLINIC_KTY_EC, 256, "ES256");
    roundtrip(p384, CLINIC_KTY_EC, 384, "ES384");
}

static void test_jwks_skips(void **state)
{
    char *r = jwk_of(rsa, ",\"use\":\"enc\",\"kid\":\"enc\"", 0);
    char *e = jwk_of(p256, ",\"kid\":\"sig\"", 0);
    char *json, err[128];
    clinic_jwk_t *keys;
    size_t n;

    (void)state;
    assert_true(asprintf(&json,
                         "{\"keys\":[%s,"
                         "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},"
                         "{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"AA\",\"y\":\"AA\"},"
                         "%s,{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":\"hs\"}]}",
                         r, e) > 0);
    assert_int_equal(parse(json, &keys, &n, err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0].kid, "sig");
    assert_null(keys[0].alg);
    assert_int_equal(keys[0].kty, CLINIC_KTY_EC);
    assert_true(clinic_jwk_fits_alg(&keys[0], "ES256"));
    assert_false(clinic_jwk_fits_alg(&keys[0], "ES384"));
    assert_string_equal(keys[1].kid, "hs");
    assert_int_equal(keys[1].kty, CLINIC_KTY_OCT);
    assert_int_equal(keys[1].key_len, 6);
    assert_memory_equal(keys[1].key, "secret", 6);
    assert_true(clinic_jwk_fits_alg(&keys[1], "HS512"));
    assert_false(clinic_jwk_fits_alg(&keys[1], "RS256"));
    assert_false(clinic_jwk_fits_alg(&keys[1], "none"));
    clinic_jwks_free(keys, n);
    free(json);

    /* Nothing usable left: an error, not an empty set. */
    assert_true(asprintf(&json, "{\"keys\":[%s]}", r) > 0);
    assert_int_equal(parse(json, &keys, &n, err), -1);
    assert_non_null(strstr(err, "no usable"));
    free(json);
    free(e);
    free(r);
}

static void test_jwks_rejects(void **state)
{
    char *off = jwk_of(p256, "", 1), *swapped, *bad_x;
    char x256[64];

    (void)state;
    expect_rejected(off); /* y with its last bit flipped: not on the curve */

    /* A P-256 point labelled P-384: wrong coordinate lengths. */
    swapped = jwk_of(p256, "", 0);
    memcpy(strstr(swapped, "P-256"), "P-384", 5);
    expect_rejected(swapped);

    strcpy(x256, b64_param(p256, OSSL_PKEY_PARAM_EC_PUB_X, 32, 0));
    x256[5] = '+'; /* standard-alphabet character */
    assert_true(asprintf(&bad_x, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}",
                         x256, b64_param(p256, OSSL_PKEY_PARAM_EC_PUB_Y, 32, 0)) > 0);
    expect_rejected(bad_x);
    expect_rejected("{\"kty\":\"RSA\",\"n\":\"AQ=B\",\"e\":\"AQAB\"}");
    expect_rejected("{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQ*B\"}");
    expect_rejected("{\"kty\":\"RSA\",\"e\":\"AQAB\"}");
    expect_rejected("{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"\"}");
    expect_rejected("{\"kty\":\"oct\",\"k\":\"\"}");
    expect_rejected("{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"kid\":7}");
    expect_rejected("{\"kty\":\"oct\",\"k\":\"c2VjcmV0\",\"use\":[\"sig\"]}");
    expect_rejected("{\"kty\":\"EC\",\"x\":\"AA\",\"y\":\"AA\"}");
    expect_rejected("{\"k\":\"c2VjcmV0\"}");
    expect_rejected("\"oct\"");
    free(bad_x);
    free(swapped);
    free(off);
}

static void test_jwks_malformed_json(void **state)
{
    static const char *const bad[] = {
        "", "{", "[]", "{\"keys\":{}}", "{\"kys\":[]}", "{\"keys\":[]}",
        "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\",\"k\":\"AA\"}]}",
    };
    char err[128];
    clinic_jwk_t *keys = NULL;
    size_t i, n = 0;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i], &keys, &n, err), -1);
        assert_true(err[0] != '\0');
    }
    /* len bounds the input: a valid prefix without its closing brace is malformed */
    assert_int_equal(clinic_jwks_parse("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\"}]}", 32, &keys,
                                       &n, err, sizeof(err)), -1);
    assert_null(keys);
}

static int fits(const char *key, const char *alg)
{
    char err[128] = "";
    int r = clinic_key_fits_alg((const unsigned char *)key, strlen(key), alg, err, sizeof(err));

    assert_true(r ? err[0] == '\0' : err[0] != '\0');
    return r;
}

static void test_key_fits_alg(void **state)
{
    char *r = spki_pem(rsa), *r1k = spki_pem(rsa1024), *e256 = spki_pem(p256);
    char *e384 = spki_pem(p384), *pkcs1 = pem_of(rsa, EVP_PKEY_PUBLIC_KEY, "type-specific");
    char *priv = pem_of(rsa, EVP_PKEY_KEYPAIR, "PrivateKeyInfo");
    char *trailing;

    (void)state;
    assert_true(fits(r, "RS256") && fits(r, "RS384") && fits(r, "RS512"));
    assert_false(fits(r, "ES256"));
    assert_false(fits(r1k, "RS256"));
    assert_non_null(strstr(pkcs1, "-----BEGIN RSA PUBLIC KEY-----"));
    assert_true(fits(pkcs1, "RS256"));
    assert_false(fits(priv, "RS256"));
    assert_true(fits(e256, "ES256"));
    assert_false(fits(e256, "ES384") || fits(e256, "ES512") || fits(e256, "RS256"));
    assert_true(fits(e384, "ES384"));
    assert_false(fits(e384, "ES256"));
    assert_true(fits("x", "HS256") && fits("\x01\x02", "HS512"));
    assert_false(fits("", "HS256"));
    assert_false(fits("not a pem", "RS256") || fits("", "ES256"));
    assert_false(fits(r, "none") || fits(r, "PS256") || fits(r, "rs256"));
    assert_false(clinic_key_fits_alg((const unsigned char *)"x", 1, NULL, NULL, 0));
    assert_true(asprintf(&trailing, "text before\n%sand after\n", r) > 0);
    assert_true(fits(trailing, "RS256"));
    free(trailing);
    free(priv);
    free(pkcs1);
    free(e384);
    free(e256);
    free(r1k);
    free(r);
}

/* A real public key kept in t/keys/ (an 8,256-bit key takes a minute to generate). */
static EVP_PKEY *key_file(const char *name, char **pem)
{
    char path[256];
    FILE *f;
    EVP_PKEY *pkey;

    snprintf(path, sizeof path, "t/keys/%s", name);
    assert_non_null(f = fopen(path, "r"));
    assert_non_null(pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL));
    fclose(f);
    *pem = spki_pem(pkey);
    return pkey;
}

/* RSA moduli up to 8,192 bits, from a PEM file or a JWKS; larger ones refused, saying so. */
/* Public key material is never an HS secret: PEM (any block), a JWK, a JWKS. */
static void test_hs_secret_not_public(void **state)
{
    char *r = spki_pem(rsa), *jwk = jwk_of(rsa, "", 0), *jwks, *spaced, err[160];
    static const char *const fine[] = {
        "{\"not\": \"a key\"}", "{ unparsable but a secret of its own", "-----BEGI", "-- x --",
    };
    size_t i;

    (void)state;
    assert_true(asprintf(&jwks, "{\"keys\":[%s]}", jwk) > 0);
    assert_true(asprintf(&spaced, " \n\t%s\n", jwk) > 0);
    assert_false(clinic_key_fits_alg((const unsigned char *)r, strlen(r), "HS256", err, sizeof err));
    assert_non_null(strstr(err, "HS256 needs a shared secret, not a PEM block"));
    assert_false(fits("secret secret secret\n-----BEGIN CERTIFICATE-----\n", "HS256"));
    assert_false(clinic_key_fits_alg((const unsigned char *)jwk, strlen(jwk), "HS384", err,
                                     sizeof err));
    assert_non_null(strstr(err, "not a JWK"));
    assert_false(fits(spaced, "HS512"));
    assert_false(clinic_key_fits_alg((const unsigned char *)jwks, strlen(jwks), "HS256", err,
                                     sizeof err));
    assert_non_null(strstr(err, "not a JWKS document"));
    assert_false(fits("{\"kty\":\"oct\",\"k\":\"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0\"}",
                      "HS256"));
    for (i = 0; i < sizeof fine / sizeof fine[0]; i++)
        assert_true(fits(fine[i], "HS256"));
    free(spaced);
    free(jwks);
    free(jwk);
    free(r);
}

static void test_rsa_cap(void **state)
{
    char *pem8192, *pem8256, *jwk, *json, err[128];
    EVP_PKEY *k8192 = key_file("rsa8192-public.pem", &pem8192);
    EVP_PKEY *k8256 = key_file("rsa8256-public.pem", &pem8256);
    clinic_jwk_t *keys;
    size_t n;

    (void)state;
    assert_int_equal(EVP_PKEY_get_bits(k8256), 8256);
    assert_true(fits(pem8192, "RS256"));
    assert_false(clinic_key_fits_alg((const unsigned char *)pem8256, strlen(pem8256), "RS256",
                                     err, sizeof err));
    assert_non_null(strstr(err, "8256 bits, more than the 8192 allowed"));

    jwk = jwk_of(k8192, "", 0);
    assert_true(asprintf(&json, "{\"keys\":[%s]}", jwk) > 0);
    assert_int_equal(parse(json, &keys, &n, err), 0);
    assert_true(clinic_jwk_fits_alg(&keys[0], "RS512"));
    clinic_jwks_free(keys, n);
    free(json);
    free(jwk);
    jwk = jwk_of(k8256, "", 0);
    assert_true(asprintf(&json, "{\"keys\":[%s]}", jwk) > 0);
    assert_int_equal(parse(json, &keys, &n, err), -1);
    assert_string_equal(err, "key 0: RSA modulus of 8256 bits, more than the 8192 allowed");
    free(json);
    free(jwk);
    free(pem8256);
    free(pem8192);
    EVP_PKEY_free(k8256);
    EVP_PKEY_free(k8192);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url_vectors),
        cmocka_unit_test(test_b64url_invalid),
        cmocka_unit_test(test_jwks_roundtrip),
        cmocka_unit_test(test_jwks_skips),
        cmocka_unit_test(test_jwks_rejects),
        cmocka_unit_test(test_jwks_malformed_json),
        cmocka_unit_test(test_key_fits_alg),
        cmocka_unit_test(test_rsa_cap),
        cmocka_unit_test(test_hs_secret_not_public),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
