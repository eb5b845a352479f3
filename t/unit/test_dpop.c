/* Unit tests for src/core/dpop.c: DPoP proofs made here with real P-256 and RSA keys
   (OpenSSL), each refusal of RFC 9449 §4.3, thumbprints (RFC 7638's own example, RFC 8705
   certificates) and htu normalisation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "b64url.h"
#include "dpop.h"

#define NOW 1800000000L
#define URL "https://api.hospital.example/visits"
#define TOKEN "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2ln"

static EVP_PKEY *ec, *ec2, *rsa;
static char ec_jwk[512], ec2_jwk[512], rsa_jwk[1024];
static const char *const all_algs[] = { "ES256", "RS256", NULL };
static const clinic_dpop_policy_t policy = { all_algs, 60 };
static const clinic_dpop_request_t req = { "POST", URL, TOKEN, sizeof TOKEN - 1 };

static void b64_bn(EVP_PKEY *k, const char *param, size_t pad, char *out)
{
    BIGNUM *bn = NULL;
    unsigned char buf[512];
    int n;

    assert_int_equal(EVP_PKEY_get_bn_param(k, param, &bn), 1);
    n = pad ? BN_bn2binpad(bn, buf, (int)pad) : BN_bn2bin(bn, buf);
    clinic_b64url_encode(buf, (size_t)n, out);
    BN_free(bn);
}

static void ec_jwk_of(EVP_PKEY *k, char *out, size_t len)
{
    char x[64], y[64];

    b64_bn(k, OSSL_PKEY_PARAM_EC_PUB_X, 32, x);
    b64_bn(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32, y);
    snprintf(out, len, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
}

static int setup(void **state)
{
    char n[400], e[16];

    (void)state;
    ec = EVP_EC_gen("P-256");
    ec2 = EVP_EC_gen("P-256");
    rsa = EVP_RSA_gen(2048);
    ec_jwk_of(ec, ec_jwk, sizeof ec_jwk);
    ec_jwk_of(ec2, ec2_jwk, sizeof ec2_jwk);
    b64_bn(rsa, OSSL_PKEY_PARAM_RSA_N, 0, n);
    b64_bn(rsa, OSSL_PKEY_PARAM_RSA_E, 0, e);
    snprintf(rsa_jwk, sizeof rsa_jwk, "{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"}", n, e);
    return ec && ec2 && rsa ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ec2);
    EVP_PKEY_free(rsa);
    return 0;
}

/* JWS r||s from an ECDSA DER signature (P-256). */
static size_t ec_raw(const unsigned char *der, size_t n, unsigned char *out)
{
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &der, (long)n);

    assert_non_null(sig);
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), out, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), out + 32, 32);
    ECDSA_SIG_free(sig);
    return 64;
}

/* header.payload signed by key (ES256 or RS256 by its type), into a static buffer. */
static const char *sign(EVP_PKEY *key, const char *header, const char *payload)
{
    static char out[8192];
    unsigned char sig[600], raw[600];
    size_t n, siglen = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int is_ec = EVP_PKEY_is_a(key, "EC");

    n = clinic_b64url_encode((const unsigned char *)header, strlen(header), out);
    out[n++] = '.';
    n += clinic_b64url_encode((const unsigned char *)payload, strlen(payload), out + n);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)out, n), 1);
    EVP_MD_CTX_free(ctx);
    if (is_ec)
        siglen = ec_raw(sig, siglen, raw);
    else
        memcpy(raw, sig, siglen);
    out[n++] = '.';
    clinic_b64url_encode(raw, siglen, out + n);
    return out;
}

static const char *header(const char *alg, const char *jwk)
{
    static char h[1200];

    snprintf(h, sizeof h, "{\"typ\":\"dpop+jwt\",\"alg\":\"%s\",\"jwk\":%s}", alg, jwk);
    return h;
}

/* Claims valid for req at NOW but for what is given: ath NULL is the token's hash, "" none. */
static const char *claims(long iat, const char *htm, const char *htu, const char *ath)
{
    static char c[1024];
    char good[CLINIC_SHA256_B64], a[128] = "";

    clinic_sha256_b64url(TOKEN, sizeof TOKEN - 1, good);
    if (!ath || *ath)
        snprintf(a, sizeof a, ",\"ath\":\"%s\"", ath ? ath : good);
    snprintf(c, sizeof c, "{\"jti\":\"j-1\",\"htm\":\"%s\",\"htu\":\"%s\",\"iat\":%ld%s}",
             htm, htu, iat, a);
    return c;
}

#define GOOD claims(NOW, "POST", URL, NULL)

static int verify(const char *proof, clinic_dpop_proof_t *out, const char **why)
{
    *why = NULL;
    return clinic_dpop_verify(&policy, proof, strlen(proof), &req, NOW, out, why);
}

static void refused(const char *proof, const char *want)
{
    clinic_dpop_proof_t out;
    const char *why;

    assert_int_equal(verify(proof, &out, &why), -1);
    assert_string_equal(why, want);
}

static void test_es256_and_rs256_proofs(void **state)
{
    clinic_dpop_proof_t a, b;
    char jkt[CLINIC_SHA256_B64];
    const char *why;
    json_t *jwk = json_loads(ec_jwk, 0, NULL);

    (void)state;
    assert_int_equal(verify(sign(ec, header("ES256", ec_jwk), GOOD), &a, &why), 0);
    assert_int_equal(clinic_jwk_thumbprint(jwk, jkt), 0);
    assert_string_equal(a.jkt, jkt);
    assert_int_equal(a.iat, NOW);
    assert_int_equal(strlen(a.replay_key), 64);
    assert_int_equal(verify(sign(rsa, header("RS256", rsa_jwk), GOOD), &b, &why), 0);
    assert_string_not_equal(a.jkt, b.jkt);
    assert_string_not_equal(a.replay_key, b.replay_key);   /* the same jti, another key */
    /* the window's edges are inside */
    assert_int_equal(verify(sign(ec, header("ES256", ec_jwk),
                                 claims(NOW - 60, "POST", URL, NULL)), &a, &why), 0);
    assert_int_equal(verify(sign(ec, header("ES256", ec_jwk),
                                 claims(NOW + 60, "POST", URL, NULL)), &a, &why), 0);
    json_decref(jwk);
}

static void test_request_bound_refusals(void **state)
{
    (void)state;
    refused(sign(ec, header("ES256", ec_jwk), claims(NOW, "GET", URL, NULL)),
            "DPoP proof: htm is not the request's method");
    refused(sign(ec, header("ES256", ec_jwk), claims(NOW, "POST", URL "/other", NULL)),
            "DPoP proof: htu is not the request's URL");
    refused(sign(ec, header("ES256", ec_jwk),
                 claims(NOW, "POST", "https://api.other.example/visits", NULL)),
            "DPoP proof: htu is not the request's URL");
    refused(sign(ec, header("ES256", ec_jwk), claims(NOW - 61, "POST", URL, NULL)),
            "DPoP proof: iat too old");
    refused(sign(ec, header("ES256", ec_jwk), claims(NOW + 61, "POST", URL, NULL)),
            "DPoP proof: iat in the future");
    refused(sign(ec, header("ES256", ec_jwk), claims(NOW, "POST", URL, "AAAA")),
            "DPoP proof: ath is not the access token's hash");
    refused(sign(ec, header("ES256", ec_jwk), claims(NOW, "POST", URL, "")),
            "DPoP proof: ath is not the access token's hash");
    refused(sign(ec, header("ES256", ec_jwk),
                 "{\"htm\":\"POST\",\"htu\":\"" URL "\",\"iat\":1800000000}"),
            "DPoP proof: no usable jti");
    refused(sign(ec, header("ES256", ec_jwk),
                 "{\"jti\":\"a\",\"jti\":\"b\",\"htm\":\"POST\",\"htu\":\"" URL
                 "\",\"iat\":1800000000}"),
            "DPoP proof: claims are not one JSON object");
}

static void test_key_refusals(void **state)
{
    char priv[600], hdr[1300];
    size_t n = strlen(ec_jwk);

    (void)state;
    /* signed by another key than the jwk it carries */
    refused(sign(ec2, header("ES256", ec_jwk), GOOD), "DPoP proof: signature invalid");
    /* a private member in jwk */
    snprintf(priv, sizeof priv, "%.*s,\"d\":\"AAAA\"}", (int)n - 1, ec_jwk);
    refused(sign(ec, header("ES256", priv), GOOD), "DPoP proof: jwk holds a private key");
    /* none, HS256, an algorithm not in the list, another typ */
    refused(sign(ec, header("none", ec_jwk), GOOD), "DPoP proof: algorithm not accepted");
    refused(sign(ec, header("HS256", ec_jwk), GOOD), "DPoP proof: algorithm not accepted");
    refused(sign(ec, header("ES384", ec_jwk), GOOD), "DPoP proof: algorithm not accepted");
    snprintf(hdr, sizeof hdr, "{\"typ\":\"JWT\",\"alg\":\"ES256\",\"jwk\":%s}", ec_jwk);
    refused(sign(ec, hdr, GOOD), "DPoP proof: typ is not dpop+jwt");
    /* a jwk that does not fit alg: an RSA key for ES256 */
    refused(sign(rsa, header("ES256", rsa_jwk), GOOD),
            "DPoP proof: jwk is not a public key that fits alg");
    refused("not.a-proof", "DPoP proof: not a compact JWS");
}

/* RFC 7638 §3.1's example, and a P-256 key against the canonical text built by hand. */
static void test_thumbprints(void **state)
{
    json_t *k = json_loads("{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78"
        "LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yB"
        "XArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5"
        "hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-cs"
        "FCur-kEgU8awapJzKnqDKgw\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}",
        0, NULL);
    char jkt[CLINIC_SHA256_B64], want[CLINIC_SHA256_B64], text[300];
    json_t *e = json_loads(ec_jwk, 0, NULL);

    (void)state;
    assert_int_equal(clinic_jwk_thumbprint(k, jkt), 0);
    assert_string_equal(jkt, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    snprintf(text, sizeof text, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
             json_string_value(json_object_get(e, "x")), json_string_value(json_object_get(e, "y")));
    clinic_sha256_b64url(text, strlen(text), want);
    assert_int_equal(clinic_jwk_thumbprint(e, jkt), 0);
    assert_string_equal(jkt, want);
    json_object_del(e, "y");
    assert_int_equal(clinic_jwk_thumbprint(e, jkt), -1);
    json_decref(k);
    json_decref(e);
}

static void test_cert_thumbprint(void **state)
{
    X509 *x = X509_new();
    BIO *bio = BIO_new(BIO_s_mem());
    unsigned char *der = NULL;
    char *pem, got[CLINIC_SHA256_B64], want[CLINIC_SHA256_B64];
    long n;
    int dlen;

    (void)state;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, ec);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"client", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    assert_true(X509_sign(x, ec, EVP_sha256()) > 0);
    PEM_write_bio_X509(bio, x);
    n = BIO_get_mem_data(bio, &pem);
    dlen = i2d_X509(x, &der);
    clinic_sha256_b64url(der, (size_t)dlen, want);
    assert_int_equal(clinic_cert_thumbprint(pem, (size_t)n, got), 0);
    assert_string_equal(got, want);
    assert_int_equal(clinic_cert_thumbprint("-----BEGIN CERTIFICATE-----\n", 28, got), -1);
    OPENSSL_free(der);
    BIO_free(bio);
    X509_free(x);
}

static void norm_is(const char *in, const char *want)
{
    char out[CLINIC_URL_MAX];

    if (!want) {
        assert_int_equal(clinic_htu_normalise(in, out, sizeof out), -1);
        return;
    }
    assert_int_equal(clinic_htu_normalise(in, out, sizeof out), 0);
    assert_string_equal(out, want);
}

static void test_htu_normalise(void **state)
{
    (void)state;
    norm_is("HTTPS://API.Hospital.Example:443/visits?x=1#f", "https://api.hospital.example/visits");
    norm_is("http://h:80", "http://h/");
    norm_is("http://h:8080/a%7eb%2f%2Fc", "http://h:8080/a~b%2F%2Fc");
    norm_is("https://h:8443/p", "https://h:8443/p");
    norm_is("ftp://h/p", NULL);
    norm_is("https://user@h/p", NULL);
    norm_is("https://h:99999/p", NULL);
    norm_is("https:///p", NULL);
    norm_is("https://h/%zz", NULL);
    norm_is("https://h/a/./b/../visits?x", "https://h/a/visits");
    norm_is("https://h/%2E%2E/%2e/visits", "https://h/visits");
    norm_is("https://h/a/..", "https://h/");
    norm_is("https://h/a/b/.", "https://h/a/b/");
    norm_is("https://h/..", "https://h/");
    norm_is("https://h/.well-known/..x", "https://h/.well-known/..x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_es256_and_rs256_proofs),
        cmocka_unit_test(test_request_bound_refusals),
        cmocka_unit_test(test_key_refusals),
        cmocka_unit_test(test_thumbprints),
        cmocka_unit_test(test_cert_thumbprint),
        cmocka_unit_test(test_htu_normalise),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
