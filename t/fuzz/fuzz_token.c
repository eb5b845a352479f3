/*
 * libFuzzer target for the bearer-token path: src/core/token.c (+ src/core/jwk.c, src/core/b64url.c, libjwt).
 *
 * The input is an Authorization header value. A NUL-terminated copy goes to
 * clinic_bearer_token; the token it finds (copied into an exact-size buffer, so an over-read is
 * an ASan report) goes to clinic_token_verify, and to clinic_token_verify_cached (what
 * src/request.c calls) at the same fixed "now" and at a later one, under each of five fixed
 * policies built once in LLVMFuzzerInitialize:
 *
 *   0  HS256, secret "fuzz-secret-0123456789"
 *   1  HS256, same secret, issuer ISS, audience AUD, leeway 60
 *   2  RS256, an RSA-2048 public key PEM generated at init
 *   3  RS256, JWKS {RSA kid "a" alg RS256, EC P-256 kid "b"} via clinic_jwks_parse
 *   4  ES256, the same JWKS
 *
 * The keys are fresh at every start, so only HS256 tokens made with the fixed secret can pass
 * (the corpus has a few); the rest exercise the rejection paths.
 *
 * Second step, so the claim checks after a good signature are fuzzed too: the input bytes are
 * also used as a claims set, signed here with HS256 and the fixed secret, and verified (cached
 * and not) under policies 0 and 1; the result is compared with the claim rules applied
 * independently.
 *
 * Properties checked (abort() on violation):
 *   - after any successful verify, the token's own header alg (decoded here with
 *     clinic_b64url_decode + jansson) equals the policy's alg, and the returned claims are an
 *     object that meets the policy (exp integer and in the future, nbf/iat, iss, aud);
 *   - a failed verify returns no claims and a reason;
 *   - clinic_token_verify_cached agrees with clinic_token_verify (same verdict, equal claims,
 *     never an expired token), except as noted at check_cached;
 *   - a self-signed claims set is accepted exactly when the claim rules say so.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "b64url.h"
#include "jwk.h"
#include "token.h"

#define NOW 1795000000L
#define SECRET "fuzz-secret-0123456789-0123456789"   /* >= 32 bytes (RFC 7518 3.2) */
#define ISS "https://auth.clinic.example"
#define AUD "mod_clinic"
#define NPOL 5

static clinic_token_policy_t pol[NPOL];
static char *rsa_pub_pem;
static clinic_jwk_t *jwks;
static size_t njwks;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_token: %s\n", what);
    abort();
}

/* ---------------------------------------------------------------- init helpers */

static char *pem_of(EVP_PKEY *k, int private)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long len;

    if (bio && (private ? PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL)
                        : PEM_write_bio_PUBKEY(bio, k)) == 1
        && (len = BIO_get_mem_data(bio, &data)) > 0)
        out = strndup(data, (size_t)len);
    BIO_free(bio);
    if (!out)
        die("init: cannot write a PEM");
    return out;
}

/* base64url of a key's BIGNUM parameter, left-padded to pad bytes (0: minimal), malloc'd. */
static char *b64_param(EVP_PKEY *k, const char *param, int pad)
{
    unsigned char bin[1024];
    BIGNUM *bn = NULL;
    char *txt;
    int len;

    if (EVP_PKEY_get_bn_param(k, param, &bn) != 1)
        die("init: EVP_PKEY_get_bn_param");
    len = pad ? pad : BN_num_bytes(bn);
    if (len > (int)sizeof bin || BN_bn2binpad(bn, bin, len) != len)
        die("init: BN_bn2binpad");
    txt = malloc(((size_t)len + 2) / 3 * 4 + 1);
    clinic_b64url_encode(bin, (size_t)len, txt);
    BN_free(bn);
    return txt;
}

/* Sign with libjwt (init-time self-tests only). */
static char *mint(jwt_alg_t alg, const char *key, const char *kid)
{
    jwt_t *jwt = NULL;
    char *tok;

    if (jwt_new(&jwt) || jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)strlen(key)) ||
        jwt_add_grant(jwt, "sub", "x") || jwt_add_grant(jwt, "iss", ISS) ||
        jwt_add_grant(jwt, "aud", AUD) || jwt_add_grant_int(jwt, "exp", NOW + 3600) ||
        (kid && jwt_add_header(jwt, "kid", kid)))
        die("init: cannot build a self-test token");
    tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    if (!tok)
        die("init: cannot sign a self-test token");
    return tok;
}

static void expect(int p, const char *tok, int ok)
{
    json_t *claims = NULL;
    const char *why = NULL;
    int rc = clinic_token_verify(&pol[p], tok, strlen(tok), NOW, &claims, &why);

    if ((rc == 0) != ok) {
        fprintf(stderr, "fuzz_token: init self-test: policy %d %s a token (%s)\n", p,
                rc == 0 ? "accepted" : "rejected", rc ? why : "");
        abort();
    }
    json_decref(claims);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    EVP_PKEY *rsa, *ec;
    char *rsa_priv, *ec_priv, *n, *e, *x, *y, *doc, err[256], *tok;
    const char *t;
    size_t tl;
    int i;

    (void)argc;
    (void)argv;
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!rsa || !ec)
        die("init: key generation failed");
    rsa_pub_pem = pem_of(rsa, 0);
    rsa_priv = pem_of(rsa, 1);
    ec_priv = pem_of(ec, 1);

    n = b64_param(rsa, OSSL_PKEY_PARAM_RSA_N, 0);
    e = b64_param(rsa, OSSL_PKEY_PARAM_RSA_E, 0);
    x = b64_param(ec, OSSL_PKEY_PARAM_EC_PUB_X, 32);
    y = b64_param(ec, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
    doc = malloc(strlen(n) + strlen(e) + strlen(x) + strlen(y) + 256);
    sprintf(doc,
            "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"sig\",\"kid\":\"a\",\"alg\":\"RS256\","
            "\"n\":\"%s\",\"e\":\"%s\"},"
            "{\"kty\":\"EC\",\"use\":\"sig\",\"kid\":\"b\",\"crv\":\"P-256\","
            "\"x\":\"%s\",\"y\":\"%s\"}]}",
            n, e, x, y);
    if (clinic_jwks_parse(doc, strlen(doc), &jwks, &njwks, err, sizeof err) != 0 || njwks != 2) {
        fprintf(stderr, "fuzz_token: init: clinic_jwks_parse: %s\n", err);
        abort();
    }
    free(doc);
    free(n);
    free(e);
    free(x);
    free(y);

    for (i = 0; i < NPOL; i++)
        memset(&pol[i], 0, sizeof pol[i]);
    pol[0].alg = "HS256";
    pol[0].keys = clinic_keyset_from_key((const unsigned char *)SECRET, strlen(SECRET), "HS256",
                                         err, sizeof err);
    pol[1] = pol[0];
    pol[1].issuer = ISS;
    pol[1].audience = AUD;
    pol[1].leeway = 60;
    pol[2].alg = "RS256";
    pol[2].keys = clinic_keyset_from_key((const unsigned char *)rsa_pub_pem,
                                         strlen(rsa_pub_pem), "RS256", err, sizeof err);
    pol[3].alg = "RS256";
    pol[3].keys = clinic_keyset_from_jwks(jwks, njwks, "RS256", err, sizeof err);
    pol[4] = pol[3];
    pol[4].alg = "ES256";
    pol[4].keys = clinic_keyset_from_jwks(jwks, njwks, "ES256", err, sizeof err);

    if (!pol[0].keys || !pol[2].keys || !pol[3].keys || !pol[4].keys)
        die("init: a key set could not be built");

    /* Self-tests: each policy accepts a token from its own key and nothing else's. */
    tok = mint(JWT_ALG_HS256, SECRET, NULL);
    expect(0, tok, 1);
    expect(1, tok, 1);
    expect(2, tok, 0);
    expect(3, tok, 0);
    free(tok);
    tok = mint(JWT_ALG_RS256, rsa_priv, NULL);
    expect(2, tok, 1);
    expect(3, tok, 1);    /* no kid, exactly one RS256 key */
    expect(0, tok, 0);
    free(tok);
    tok = mint(JWT_ALG_RS256, rsa_priv, "a");
    expect(3, tok, 1);
    expect(4, tok, 0);
    free(tok);
    tok = mint(JWT_ALG_ES256, ec_priv, "b");
    expect(4, tok, 1);
    expect(3, tok, 0);
    free(tok);
    if (clinic_bearer_token(NULL, &t, &tl) != 0)
        die("init: clinic_bearer_token(NULL) found a token");

    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    free(rsa_priv);
    free(ec_priv);
    return 0;
}

/* ---------------------------------------------------------------- checks */

/* The token's own "alg" header, decoded independently of src/core/token.c. */
static int header_alg_is(const char *tok, size_t len, const char *want)
{
    const char *dot = memchr(tok, '.', len);
    size_t n = dot ? (size_t)(dot - tok) : len;
    unsigned char *buf = malloc(n * 3 / 4 + 3);
    long got = clinic_b64url_decode(tok, n, buf);
    json_t *h = got > 0 ? json_loadb((const char *)buf, (size_t)got, 0, NULL) : NULL;
    json_t *alg = json_object_get(h, "alg");
    int same = json_is_string(alg) && strcmp(json_string_value(alg), want) == 0;

    json_decref(h);
    free(buf);
    return same;
}

static int aud_has(json_t *aud, const char *want)
{
    size_t i;
    json_t *v;

    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    json_array_foreach(aud, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return 1;
    }
    return 0;
}

/* The claim rules, written out again: does this claims object pass policy p at now? */
static int claims_ok(const clinic_token_policy_t *p, json_t *c, long now)
{
    json_t *exp = json_object_get(c, "exp"), *nbf = json_object_get(c, "nbf");
    json_t *iat = json_object_get(c, "iat"), *iss = json_object_get(c, "iss");

    if (!json_is_object(c) || !json_is_integer(exp) || (nbf && !json_is_integer(nbf)) ||
        (iat && !json_is_integer(iat)))
        return 0;
    if (json_integer_value(exp) <= (json_int_t)now - p->leeway)
        return 0;
    if (nbf && json_integer_value(nbf) > (json_int_t)now + p->leeway)
        return 0;
    if (iat && json_integer_value(iat) > (json_int_t)now + p->leeway)
        return 0;
    if (p->issuer && (!json_is_string(iss) || strcmp(json_string_value(iss), p->issuer)))
        return 0;
    if (p->audience && !aud_has(json_object_get(c, "aud"), p->audience))
        return 0;
    return 1;
}

/* Verify under policy i at now; check what an acceptance claims. Returns 1 accepted, 0 not;
   *out (if given) gets the claims of an acceptance, *why_out the reason of a rejection. */
static int verify_at(int i, const char *tok, size_t len, long now, json_t **out,
                     const char **why_out)
{
    json_t *claims = (json_t *)1;
    const char *why = NULL;
    int rc = clinic_token_verify(&pol[i], tok, len, now, &claims, &why);

    if (out)
        *out = NULL;
    if (why_out)
        *why_out = why;
    if (rc != 0) {
        if ((rc != -1 && rc != CLINIC_TOKEN_UNKNOWN_KID) || claims || !why ||
            ((rc == CLINIC_TOKEN_UNKNOWN_KID) != !strcmp(why, "unknown kid")))
            die("failed verify without -1 (or -2 for an unknown kid), NULL claims and a reason");
        if (clinic_claim_equals(claims, "sub", "x"))
            die("clinic_claim_equals(NULL) matched");
        return 0;
    }
    if (!header_alg_is(tok, len, pol[i].alg)) {
        fprintf(stderr, "fuzz_token: policy %d (%s) accepted a token whose header alg differs\n",
                i, pol[i].alg);
        abort();
    }
    if (!claims_ok(&pol[i], claims, now)) {
        fprintf(stderr, "fuzz_token: policy %d accepted claims that break its rules\n", i);
        abort();
    }
    (void)clinic_claim_equals(claims, "sub", "x");
    (void)clinic_claim_equals(claims, "exp", "1795003600");
    if (out)
        *out = claims;
    else
        json_decref(claims);
    return 1;
}

/* clinic_token_verify_cached (what the module calls) must agree with clinic_token_verify.
   One allowance: the cache skips nbf/iat on a hit, so a token cached at a later "now" may be
   accepted at an earlier one that the uncached check refuses as not yet valid; the target
   moves its clock back and forth between inputs, the server's clock only forward. */
static int check_cached(int i, const char *tok, size_t len, long now, const char **why_out)
{
    json_t *u = NULL, *c = (json_t *)1;
    const char *uwhy = NULL, *cwhy = NULL;
    int ugot = verify_at(i, tok, len, now, &u, &uwhy);
    int crc = clinic_token_verify_cached(&pol[i], tok, len, now, &c, &cwhy);

    if (crc != 0 && ((crc != -1 && crc != CLINIC_TOKEN_UNKNOWN_KID) || c || !cwhy))
        die("failed cached verify without -1/-2, NULL claims and a reason");
    if (crc == 0 && ugot && !json_equal(c, u)) {
        fprintf(stderr, "fuzz_token: policy %d: cached claims differ from verified ones\n", i);
        abort();
    }
    if ((crc == 0) != ugot &&
        !(crc == 0 && (!strcmp(uwhy, "not yet valid (nbf)") ||
                       !strcmp(uwhy, "issued in the future (iat)")))) {
        fprintf(stderr, "fuzz_token: policy %d at %ld: cached verify %s, uncached %s (%s)\n", i,
                now, crc == 0 ? "accepts" : "rejects", ugot ? "accepts" : "rejects",
                ugot ? cwhy : uwhy);
        abort();
    }
    if (crc == 0) {
        json_t *exp = json_object_get(c, "exp");

        if (!json_is_integer(exp) || json_integer_value(exp) <= (json_int_t)now - pol[i].leeway)
            die("cached verify accepted an expired token");
        json_decref(c);
    }
    json_decref(u);
    if (why_out)
        *why_out = uwhy;
    return ugot;
}

/* Could the verdict change with a later "now"? */
static int time_matters(int accepted, const char *why)
{
    return accepted || !strcmp(why, "expired") || !strcmp(why, "not yet valid (nbf)") ||
           !strcmp(why, "issued in the future (iat)");
}

/* Sign claims[0..n) with HS256 and the fixed secret, as "header.payload.sig"; malloc'd. */
static char *hs256_token(const uint8_t *claims, size_t n, size_t *len)
{
    static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    size_t hl = sizeof hdr - 1, cap = (hl + 2) / 3 * 4 + (n + 2) / 3 * 4 + 64, at;
    char *tok = malloc(cap);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;

    at = clinic_b64url_encode((const unsigned char *)hdr, hl, tok);
    tok[at++] = '.';
    at += clinic_b64url_encode(claims, n, tok + at);
    if (!HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)tok, at, mac,
              &maclen))
        die("HMAC failed");
    tok[at++] = '.';
    at += clinic_b64url_encode(mac, maclen, tok + at);
    *len = at;
    return tok;
}

static void self_signed(const uint8_t *data, size_t size)
{
    size_t len;
    char *tok, *exact;
    int p;
    json_t *strict;

    if (size == 0 || size > 6000)      /* keep the token under CLINIC_TOKEN_MAX */
        return;
    tok = hs256_token(data, size, &len);
    exact = malloc(len);
    memcpy(exact, tok, len);
    free(tok);
    /* What the claim rules expect: decided only for a NUL-free, duplicate-free object (for the
       rest, libjwt's own reading of the payload decides; the acceptance checks still apply). */
    strict = memchr(data, '\0', size) ? NULL
           : json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    for (p = 0; p <= 1; p++) {
        const char *why = NULL;
        int got = check_cached(p, exact, len, NOW, &why);   /* verifies uncached too */

        if (time_matters(got, why))
            check_cached(p, exact, len, NOW + (long)data[size - 1] * 40, NULL);
        if (strict && got != claims_ok(&pol[p], strict, NOW)) {
            fprintf(stderr, "fuzz_token: self-signed claims %.*s: policy %d %s, rules say %s\n",
                    (int)size, (const char *)data, p, got ? "accepted" : "rejected",
                    got ? "reject" : "accept");
            abort();
        }
    }
    json_decref(strict);
    free(exact);
}

/* ---------------------------------------------------------------- the target */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *hdr = malloc(size + 1);
    const char *tok = NULL;
    size_t len = 0;
    int i;

    memcpy(hdr, data, size);
    hdr[size] = '\0';
    if (clinic_bearer_token(hdr, &tok, &len)) {
        char *exact;

        if (!tok || len == 0 || tok < hdr || tok + len > hdr + strlen(hdr))
            die("clinic_bearer_token span outside the header");
        exact = malloc(len);
        memcpy(exact, tok, len);
        /* a later "now", up to ~2.8 h on, from the last input byte */
        long later = NOW + (long)data[size - 1] * 40;

        for (i = 0; i < NPOL; i++) {
            const char *why = NULL;
            int got = check_cached(i, exact, len, NOW, &why);   /* verifies uncached too */

            if (time_matters(got, why))
                check_cached(i, exact, len, later, NULL);
        }
        free(exact);
    }
    free(hdr);
    self_signed(data, size);
    return 0;
}
