/* Unit tests for src/core/token.c, with keys generated at test time and tokens signed by libjwt
   (or forged by hand for the attacks). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "b64url.h"
#include "token.h"

#define NOW 1800000000L
#define ISS "https://auth.example"
#define AUD "clinic"
#define STD "\"sub\":\"u1\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\""
#define SECRET "a shared secret of some length, 32 bytes or more"
#define HS_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static EVP_PKEY *rsa, *rsa2, *ec;
static char *rsa_pub, *rsa_priv, *rsa2_priv, *ec_pub, *ec_priv;
static clinic_jwk_t *jwks_all, *jwks_one;   /* {k1 rsa, k2 rsa2, e1 ec}, {k1 rsa, e1 ec} */
static size_t njwks_all, njwks_one;
static char valid[128];                     /* claims valid at NOW for an ISS/AUD policy */
static clinic_keyset_t *made[64];           /* key sets made by the tests, freed at teardown */
static size_t nmade;

/* printf into one of four static buffers, used in turn. */
static const char *fmt(const char *f, ...)
{
    static char bufs[4][8192];
    static unsigned next;
    char *buf = bufs[next++ % 4];
    va_list ap;

    va_start(ap, f);
    assert_true(vsnprintf(buf, sizeof bufs[0], f, ap) < (int)sizeof bufs[0]);
    va_end(ap);
    return buf;
}

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
    return out;
}

/* base64url of a key's BIGNUM parameter, left-padded to pad bytes (0: minimal). */
static const char *b64_param(EVP_PKEY *k, const char *param, int pad)
{
    static char bufs[2][700];
    static unsigned next;
    char *txt = bufs[next++ % 2];
    unsigned char bin[512];
    BIGNUM *bn = NULL;
    int len;

    if (EVP_PKEY_get_bn_param(k, param, &bn) != 1)
        return "";
    len = pad ? pad : BN_num_bytes(bn);
    BN_bn2binpad(bn, bin, len);
    clinic_b64url_encode(bin, (size_t)len, txt);
    BN_free(bn);
    return txt;
}

static const char *jwk_rsa(EVP_PKEY *k, const char *kid)
{
    return fmt("{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"}", kid,
               b64_param(k, OSSL_PKEY_PARAM_RSA_N, 0), b64_param(k, OSSL_PKEY_PARAM_RSA_E, 0));
}

static const char *jwk_ec(EVP_PKEY *k, const char *kid)
{
    return fmt("{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}", kid,
               b64_param(k, OSSL_PKEY_PARAM_EC_PUB_X, 32),
               b64_param(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32));
}

static int parse_jwks(const char *json, clinic_jwk_t **keys, size_t *n)
{
    char err[128];

    if (clinic_jwks_parse(json, strlen(json), keys, n, err, sizeof err) != 0) {
        fprintf(stderr, "clinic_jwks_parse: %s\n", err);
        return -1;
    }
    return 0;
}

static int setup(void **state)
{
    (void)state;
    snprintf(valid, sizeof valid, "{" STD ",\"exp\":%ld}", NOW + 3600);
    rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!rsa || !rsa2 || !ec)
        return -1;
    rsa_pub = pem_of(rsa, 0);
    rsa_priv = pem_of(rsa, 1);
    rsa2_priv = pem_of(rsa2, 1);
    ec_pub = pem_of(ec, 0);
    ec_priv = pem_of(ec, 1);
    if (!rsa_pub || !rsa_priv || !rsa2_priv || !ec_pub || !ec_priv)
        return -1;
    return parse_jwks(fmt("{\"keys\":[%s,%s,%s]}", jwk_rsa(rsa, "k1"), jwk_rsa(rsa2, "k2"),
                          jwk_ec(ec, "e1")), &jwks_all, &njwks_all) ||
           parse_jwks(fmt("{\"keys\":[%s,%s]}", jwk_rsa(rsa, "k1"), jwk_ec(ec, "e1")),
                      &jwks_one, &njwks_one);
}

static int teardown(void **state)
{
    (void)state;
    clinic_jwks_free(jwks_all, njwks_all);
    clinic_jwks_free(jwks_one, njwks_one);
    while (nmade)
        clinic_keyset_unref(made[--nmade]);
    free(rsa_pub);
    free(rsa_priv);
    free(rsa2_priv);
    free(ec_pub);
    free(ec_priv);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(rsa2);
    EVP_PKEY_free(ec);
    return 0;
}


static clinic_keyset_t *keep(clinic_keyset_t *ks)
{
    assert_true(nmade < sizeof made / sizeof made[0]);
    return made[nmade++] = ks;
}

static clinic_token_policy_t policy(const char *alg, const char *key)
{
    char err[256];
    clinic_keyset_t *ks = keep(clinic_keyset_from_key((const unsigned char *)key, strlen(key),
                                                      alg, err, sizeof err));
    clinic_token_policy_t p = { alg, ks, ISS, AUD, 60 };

    if (!ks)
        fail_msg("clinic_keyset_from_key(%s): %s", alg, err);
    return p;
}

static clinic_token_policy_t jwks_policy(const char *alg, const clinic_jwk_t *keys, size_t n)
{
    char err[256];
    clinic_keyset_t *ks = keep(clinic_keyset_from_jwks(keys, n, alg, err, sizeof err));
    clinic_token_policy_t p = { alg, ks, ISS, AUD, 60 };

    if (!ks)
        fail_msg("clinic_keyset_from_jwks(%s): %s", alg, err);
    return p;
}

/* A token signed by libjwt with key (a private PEM, or the HS secret); malloc'd. */
static char *sign(const char *alg, const char *key, const char *kid, const char *claims)
{
    jwt_t *jwt = NULL;
    char *tok;

    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
    if (kid)
        assert_int_equal(jwt_add_header(jwt, "kid", kid), 0);
    assert_int_equal(jwt_set_alg(jwt, jwt_str_alg(alg), (const unsigned char *)key,
                                 (int)strlen(key)), 0);
    tok = jwt_encode_str(jwt);
    assert_non_null(tok);
    jwt_free(jwt);
    return tok;
}

static char *rs256(const char *claims)
{
    return sign("RS256", rsa_priv, NULL, claims);
}

/* header.payload.signature by hand: HMAC-SHA256 with secret, or an empty signature when secret
   is NULL. malloc'd. */
static char *forge(const char *header, const char *payload, const char *secret)
{
    size_t hl = strlen(header), pl = strlen(payload), n;
    char *tok = malloc((hl + 2) / 3 * 4 + (pl + 2) / 3 * 4 + 48);
    unsigned char mac[32];
    unsigned maclen = 0;

    assert_non_null(tok);
    n = clinic_b64url_encode((const unsigned char *)header, hl, tok);
    tok[n++] = '.';
    n += clinic_b64url_encode((const unsigned char *)payload, pl, tok + n);
    tok[n++] = '.';
    tok[n] = '\0';
    if (secret) {
        assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)tok,
                             n - 1, mac, &maclen));
        clinic_b64url_encode(mac, maclen, tok + n);
    }
    return tok;
}

/* tok with its payload segment replaced, header and signature kept; malloc'd. */
static char *with_payload(const char *tok, const char *payload)
{
    const char *dot1 = strchr(tok, '.'), *dot2 = strchr(dot1 + 1, '.');
    char *out = malloc(strlen(tok) + strlen(payload) * 2 + 8);

    assert_non_null(out);
    memcpy(out, tok, (size_t)(dot1 + 1 - tok));
    clinic_b64url_encode((const unsigned char *)payload, strlen(payload), out + (dot1 + 1 - tok));
    strcat(out, dot2);
    return out;
}

/* Verify tok (freed here) and expect acceptance with claim sub "u1"; returns the claims' exp. */
static json_int_t accept(const clinic_token_policy_t *p, char *tok)
{
    json_t *claims = NULL;
    const char *why = NULL;
    json_int_t exp;

    if (clinic_token_verify(p, tok, strlen(tok), NOW, &claims, &why) != 0)
        fail_msg("rejected (%s): %s", why, tok);
    free(tok);
    assert_true(json_is_object(claims));
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "u1");
    exp = json_integer_value(json_object_get(claims, "exp"));
    json_decref(claims);
    return exp;
}

/* Verify tok (freed here) and expect rejection for the reason want. */
static void reject(const clinic_token_policy_t *p, char *tok, const char *want)
{
    json_t *claims = json_true();   /* a singleton: must come back NULL */
    const char *why = NULL;
    int rc = clinic_token_verify(p, tok, strlen(tok), NOW, &claims, &why);

    /* an unknown kid (and only that) says so, so that a fetched set may be refetched */
    if (rc != (strcmp(want, "unknown kid") ? -1 : CLINIC_TOKEN_UNKNOWN_KID))
        fail_msg("accepted, or rc %d (%s): %s", rc, why ? why : "", tok);
    free(tok);
    assert_null(claims);
    assert_non_null(why);
    assert_string_equal(why, want);
}

static void test_bearer(void **state)
{
    static const char *const none[] = { "Basic abc", "Bearer", "Bearer   ", "Bearer \t ",
                                        "Bearerabc", "", "Bear abc", "xBearer abc" };
    static const char *const some[][2] = {
        { "Bearer abc", "abc" }, { "bearer abc", "abc" }, { "BEARER\tabc  ", "abc" },
        { "Bearer  \t a.b.c\t", "a.b.c" }, { "bEaReR x", "x" },
    };
    const char *tok;
    size_t len;

    (void)state;
    for (size_t i = 0; i < sizeof some / sizeof some[0]; i++) {
        tok = NULL;
        len = 0;
        assert_int_equal(clinic_bearer_token(some[i][0], &tok, &len), 1);
        assert_int_equal(len, strlen(some[i][1]));
        assert_memory_equal(tok, some[i][1], len);
        assert_true(tok >= some[i][0] && tok < some[i][0] + strlen(some[i][0]));
    }
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        if (clinic_bearer_token(none[i], &tok, &len) != 0)
            fail_msg("token found in \"%s\"", none[i]);
    assert_int_equal(clinic_bearer_token(NULL, &tok, &len), 0);
}

static void test_algorithms(void **state)
{
    clinic_token_policy_t rs = policy("RS256", rsa_pub), es = policy("ES256", ec_pub);
    clinic_token_policy_t hs = policy("HS256", SECRET), hs_pem = policy("HS256", rsa_pub);

    (void)state;
    assert_int_equal(accept(&rs, rs256(valid)), NOW + 3600);
    assert_int_equal(accept(&es, sign("ES256", ec_priv, NULL, valid)), NOW + 3600);
    assert_int_equal(accept(&hs, sign("HS256", SECRET, NULL, valid)), NOW + 3600);
    assert_int_equal(accept(&hs, forge(HS_HEADER, valid, SECRET)), NOW + 3600);

    reject(&rs, sign("RS256", rsa2_priv, NULL, valid), "signature or encoding invalid");
    reject(&hs, sign("HS256", "another secret", NULL, valid), "signature or encoding invalid");
    reject(&es, rs256(valid), "algorithm mismatch");
    reject(&rs, sign("ES256", ec_priv, NULL, valid), "algorithm mismatch");
    reject(&rs, sign("RS384", rsa_priv, NULL, valid), "algorithm mismatch");
    reject(&rs, forge("{\"alg\":\"none\"}", valid, NULL), "algorithm mismatch");
    reject(&rs, forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", valid, NULL), "algorithm mismatch");
    /* key confusion: HS256 keyed with the RSA public key PEM. The forgery is sound (an HS256
       policy holding that PEM as its secret accepts it), yet the RS256 policy must not. */
    assert_int_equal(accept(&hs_pem, forge(HS_HEADER, valid, rsa_pub)), NOW + 3600);
    reject(&rs, forge(HS_HEADER, valid, rsa_pub), "algorithm mismatch");
    reject(&rs, forge("{\"alg\":\"RS256\"}", valid, rsa_pub), "signature or encoding invalid");
}

static void test_times(void **state)
{
    clinic_token_policy_t rs = policy("RS256", rsa_pub);

    (void)state;
    reject(&rs, rs256(fmt("{" STD ",\"exp\":%ld}", NOW - 61)), "expired");
    reject(&rs, rs256(fmt("{" STD ",\"exp\":%ld}", NOW - 60)), "expired");
    assert_int_equal(accept(&rs, rs256(fmt("{" STD ",\"exp\":%ld}", NOW - 59))), NOW - 59);
    reject(&rs, rs256(fmt("{" STD ",\"exp\":%ld,\"nbf\":%ld}", NOW + 3600, NOW + 61)),
           "not yet valid (nbf)");
    accept(&rs, rs256(fmt("{" STD ",\"exp\":%ld,\"nbf\":%ld}", NOW + 3600, NOW + 59)));
    reject(&rs, rs256(fmt("{" STD ",\"exp\":%ld,\"iat\":%ld}", NOW + 3600, NOW + 61)),
           "issued in the future (iat)");
    accept(&rs, rs256(fmt("{" STD ",\"exp\":%ld,\"iat\":%ld}", NOW + 3600, NOW + 59)));
    reject(&rs, rs256("{" STD "}"), "no exp");
    reject(&rs, rs256("{" STD ",\"exp\":\"123\"}"), "exp is not an integer");
    reject(&rs, rs256("{" STD ",\"exp\":1.7e9}"), "exp is not an integer");
    reject(&rs, rs256("{" STD ",\"exp\":null}"), "exp is not an integer");
    reject(&rs, rs256(fmt("{" STD ",\"exp\":%ld,\"nbf\":\"0\"}", NOW + 3600)),
           "nbf or iat is not an integer");
    reject(&rs, rs256(fmt("{" STD ",\"exp\":%ld,\"iat\":1.5}", NOW + 3600)),
           "nbf or iat is not an integer");
}

static void test_iss_aud(void **state)
{
    clinic_token_policy_t rs = policy("RS256", rsa_pub), open = rs;
    const char *c = "{\"sub\":\"u1\",\"exp\":%ld,\"iss\":%s,\"aud\":%s}";

    (void)state;
    open.issuer = open.audience = NULL;
    accept(&rs, rs256(fmt(c, NOW + 60, "\"" ISS "\"", "\"" AUD "\"")));
    accept(&rs, rs256(fmt(c, NOW + 60, "\"" ISS "\"", "[\"other\",\"" AUD "\"]")));
    reject(&rs, rs256(fmt(c, NOW + 60, "\"https://evil.example\"", "\"" AUD "\"")), "wrong iss");
    reject(&rs, rs256(fmt(c, NOW + 60, "\"" ISS "/\"", "\"" AUD "\"")), "wrong iss");
    reject(&rs, rs256(fmt(c, NOW + 60, "[\"" ISS "\"]", "\"" AUD "\"")), "wrong iss");
    reject(&rs, rs256(fmt("{\"sub\":\"u1\",\"exp\":%ld,\"aud\":\"" AUD "\"}", NOW + 60)),
           "wrong iss");
    reject(&rs, rs256(fmt(c, NOW + 60, "\"" ISS "\"", "\"other\"")), "wrong aud");
    reject(&rs, rs256(fmt(c, NOW + 60, "\"" ISS "\"", "\"" AUD "x\"")), "wrong aud");
    reject(&rs, rs256(fmt(c, NOW + 60, "\"" ISS "\"", "[\"other\",\"x" AUD "\"]")), "wrong aud");
    reject(&rs, rs256(fmt(c, NOW + 60, "\"" ISS "\"", "[]")), "wrong aud");
    reject(&rs, rs256(fmt("{\"sub\":\"u1\",\"exp\":%ld,\"iss\":\"" ISS "\"}", NOW + 60)),
           "wrong aud");
    accept(&open, rs256(fmt("{\"sub\":\"u1\",\"exp\":%ld}", NOW + 60)));
}

static void test_format(void **state)
{
    clinic_token_policy_t rs = policy("RS256", rsa_pub), hs = policy("HS256", SECRET);
    char *tok = rs256(valid), *cut, pad[6200];

    (void)state;
    reject(&rs, with_payload(tok, fmt("{" STD ",\"exp\":%ld}", NOW + 3601)),
           "signature or encoding invalid");
    reject(&rs, with_payload(tok, fmt("{\"sub\":\"admin\",\"iss\":\"" ISS "\",\"aud\":\"" AUD "\","
                                      "\"exp\":%ld}", NOW + 3600)),
           "signature or encoding invalid");
    cut = strdup(tok);
    *strrchr(cut, '.') = '\0';
    reject(&rs, cut, "not three segments");
    reject(&rs, strdup(fmt("%s.x", tok)), "not three segments");
    reject(&rs, strdup("a.b"), "not three segments");
    reject(&rs, strdup(""), "not three segments");
    reject(&rs, strdup(".."), "bad header");
    cut = strdup(tok);
    strrchr(cut, '.')[5] = '+';
    reject(&rs, cut, "bad character");
    reject(&rs, strdup(fmt("%s=", tok)), "bad character");
    reject(&rs, strdup(fmt(" %s", tok)), "bad character");
    free(tok);

    reject(&rs, forge("not json", valid, SECRET), "bad header");
    reject(&rs, forge("[\"RS256\"]", valid, SECRET), "bad header");
    reject(&rs, forge("{\"typ\":\"JWT\"}", valid, SECRET), "bad header");
    reject(&rs, forge("{\"alg\":\"RS256\",\"kid\":5}", valid, SECRET), "bad header");
    reject(&rs, forge("{\"alg\":\"RS256\",\"alg\":\"RS256\"}", valid, SECRET), "bad header");

    /* a 20-char header, two dots, a 43-char signature: a payload of 6095 bytes makes an
       8192-byte token, 6096 bytes one of 8193 */
    memset(pad, ' ', sizeof pad);
    strcpy(pad + 6095 - strlen(valid), valid);
    tok = forge("{\"alg\":\"HS256\"}", pad, SECRET);
    assert_int_equal(strlen(tok), CLINIC_TOKEN_MAX);
    accept(&hs, tok);
    memset(pad, ' ', sizeof pad);
    strcpy(pad + 6096 - strlen(valid), valid);
    tok = forge("{\"alg\":\"HS256\"}", pad, SECRET);
    assert_int_equal(strlen(tok), CLINIC_TOKEN_MAX + 1);
    reject(&hs, tok, "token too long");
}

static void test_jwks(void **state)
{
    clinic_token_policy_t all = jwks_policy("RS256", jwks_all, njwks_all);
    clinic_token_policy_t one = jwks_policy("RS256", jwks_one, njwks_one);
    clinic_token_policy_t es = jwks_policy("ES256", jwks_all, njwks_all);
    char err[256];

    (void)state;
    assert_int_equal(njwks_all, 3);
    assert_int_equal(njwks_one, 2);
    accept(&all, sign("RS256", rsa_priv, "k1", valid));
    accept(&all, sign("RS256", rsa2_priv, "k2", valid));
    reject(&all, sign("RS256", rsa2_priv, "k1", valid), "signature or encoding invalid");
    reject(&all, sign("RS256", rsa_priv, "zz", valid), "unknown kid");
    reject(&all, sign("RS256", rsa_priv, "e1", valid), "unknown kid");
    reject(&all, sign("RS256", rsa_priv, NULL, valid), "no kid and not exactly one key fits");
    accept(&one, sign("RS256", rsa_priv, NULL, valid));
    reject(&one, sign("RS256", rsa2_priv, NULL, valid), "signature or encoding invalid");
    accept(&es, sign("ES256", ec_priv, "e1", valid));
    accept(&es, sign("ES256", ec_priv, NULL, valid));
    reject(&es, sign("ES256", ec_priv, "k1", valid), "unknown kid");
    /* pinned: a set holds only what fits its algorithm; no oct key here fits HS256 */
    assert_null(clinic_keyset_from_jwks(jwks_all, njwks_all, "HS256", err, sizeof err));
    assert_non_null(strstr(err, "no key of the set fits HS256"));
}

/* RFC 7515 4.1.11: crit naming an extension not understood (b64 among them) is invalid. */
static void test_crit(void **state)
{
    clinic_token_policy_t hs = policy("HS256", SECRET);

    (void)state;
    reject(&hs, forge("{\"alg\":\"HS256\",\"crit\":[\"x-unknown\"],\"x-unknown\":1}", valid,
                      SECRET), "header has crit or b64 (unsupported extension)");
    reject(&hs, forge("{\"alg\":\"HS256\",\"b64\":false,\"crit\":[\"b64\"]}", valid, SECRET),
           "header has crit or b64 (unsupported extension)");
    reject(&hs, forge("{\"alg\":\"HS256\",\"b64\":false}", valid, SECRET),
           "header has crit or b64 (unsupported extension)");
    reject(&hs, forge("{\"alg\":\"HS256\",\"crit\":[]}", valid, SECRET),
           "header has crit or b64 (unsupported extension)");
    accept(&hs, forge("{\"alg\":\"HS256\",\"b64\":true}", valid, SECRET));
}

/* RFC 7518 3.2: an HS key shorter than the hash is refused. */
static void test_hs_key_size(void **state)
{
    static const char k64[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char err[256];
    clinic_keyset_t *ks;

    (void)state;
    assert_int_equal(clinic_hs_min_len("HS256"), 32);
    assert_int_equal(clinic_hs_min_len("HS384"), 48);
    assert_int_equal(clinic_hs_min_len("HS512"), 64);
    assert_int_equal(clinic_hs_min_len("RS256"), 0);
    assert_null(clinic_keyset_from_key((const unsigned char *)k64, 31, "HS256", err, sizeof err));
    assert_string_equal(err, "HS256 needs a secret of at least 32 bytes, not 31");
    assert_null(clinic_keyset_from_key((const unsigned char *)k64, 47, "HS384", err, sizeof err));
    assert_null(clinic_keyset_from_key((const unsigned char *)k64, 63, "HS512", err, sizeof err));
    ks = clinic_keyset_from_key((const unsigned char *)k64, 32, "HS256", err, sizeof err);
    assert_non_null(ks);
    clinic_keyset_unref(ks);
    ks = clinic_keyset_from_key((const unsigned char *)k64, 64, "HS512", err, sizeof err);
    assert_non_null(ks);
    clinic_keyset_unref(ks);
}

/* ES: the JWS signature is r||s of exactly twice the field size; anything else is refused. */
static void test_es_signature_form(void **state)
{
    clinic_token_policy_t es = policy("ES256", ec_pub);
    char *tok = sign("ES256", ec_priv, NULL, valid);
    char *cut = strdup(tok);

    (void)state;
    cut[strlen(cut) - 4] = '\0';   /* 3 bytes short */
    reject(&es, cut, "signature or encoding invalid");
    accept(&es, tok);
}

static void test_claim_equals(void **state)
{
    json_t *c = json_loads("{\"s\":\"abc\",\"i\":42,\"n\":-7,\"big\":9007199254740993,"
                           "\"r\":42.0,\"r0\":0.0,\"b\":true,\"z\":null,\"a\":[\"abc\"]}", 0, NULL);

    (void)state;
    assert_non_null(c);
    assert_true(clinic_claim_equals(c, "s", "abc"));
    assert_false(clinic_claim_equals(c, "s", "ab"));
    assert_false(clinic_claim_equals(c, "s", "abcd"));
    assert_true(clinic_claim_equals(c, "i", "42"));
    assert_false(clinic_claim_equals(c, "i", "042"));
    assert_false(clinic_claim_equals(c, "i", "4"));
    assert_true(clinic_claim_equals(c, "n", "-7"));
    assert_true(clinic_claim_equals(c, "big", "9007199254740993"));
    assert_false(clinic_claim_equals(c, "r", "42"));
    assert_false(clinic_claim_equals(c, "r", "42.0"));
    assert_false(clinic_claim_equals(c, "r0", "0"));
    assert_false(clinic_claim_equals(c, "b", "true"));
    assert_false(clinic_claim_equals(c, "b", "1"));
    assert_false(clinic_claim_equals(c, "z", "null"));
    assert_false(clinic_claim_equals(c, "a", "abc"));
    assert_false(clinic_claim_equals(c, "missing", ""));
    json_decref(c);
}

/* A correctly signed token whose claims name "exp" twice is ambiguous. */
static void test_duplicate_claims(void **state)
{
    clinic_token_policy_t hs = policy("HS256", SECRET);
    char *tok = forge(HS_HEADER, fmt("{" STD ",\"exp\":1,\"exp\":%ld}", NOW + 3600), SECRET);

    (void)state;
    reject(&hs, tok, "claims are not one JSON object");
}

/* Verify tok twice under p: the second is a cache hit. The hit count after. */
static unsigned long assert_cached(const clinic_token_policy_t *p, const char *tok, size_t n)
{
    json_t *claims = NULL;
    const char *why = NULL;
    unsigned long h;

    assert_int_equal(clinic_token_verify_cached(p, tok, n, NOW, &claims, &why), 0);
    json_decref(claims);
    h = clinic_token_cache_hits();
    assert_int_equal(clinic_token_verify_cached(p, tok, n, NOW, &claims, &why), 0);
    json_decref(claims);
    assert_int_equal(clinic_token_cache_hits(), h + 1);
    return h + 1;
}

/* The cache of verified tokens: a hit skips verification, but exp still
 * applies, the policy must be the same, and a changed token is verified. */
static void test_cache(void **state)
{
    clinic_token_policy_t rs = policy("RS256", rsa_pub), other = rs;
    char *tok = rs256(fmt("{" STD ",\"exp\":%ld}", NOW + 100));
    size_t n = strlen(tok);
    unsigned long hits = clinic_token_cache_hits();
    json_t *claims = NULL;
    const char *why = NULL;

    (void)state;
    assert_int_equal(clinic_token_verify_cached(&rs, tok, n, NOW, &claims, &why), 0);
    assert_int_equal(clinic_token_cache_hits(), hits);
    json_decref(claims);
    claims = NULL;
    assert_int_equal(clinic_token_verify_cached(&rs, tok, n, NOW + 10, &claims, &why), 0);
    assert_int_equal(clinic_token_cache_hits(), hits + 1);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "u1");
    json_decref(claims);

    claims = NULL;
    assert_int_equal(clinic_token_verify_cached(&rs, tok, n, NOW + 160, &claims, &why), -1);
    assert_null(claims);
    assert_string_equal(why, "expired");

    other.audience = "someone-else";
    assert_int_equal(clinic_token_verify_cached(&other, tok, n, NOW, &claims, &why), -1);
    assert_string_equal(why, "wrong aud");
    other = rs;
    other.leeway = 0;
    assert_int_equal(clinic_token_verify_cached(&other, tok, n, NOW, &claims, &why), 0);
    json_decref(claims);

    /* a new key set (a rotation) is a new policy: nothing verified under the old set is
       taken from the cache, and a key since removed no longer verifies */
    {
        clinic_token_policy_t rot = jwks_policy("RS256", jwks_all, njwks_all);
        clinic_token_policy_t k2only = jwks_policy("RS256", jwks_all + 1, 1);
        char *ktok = sign("RS256", rsa_priv, "k1", fmt("{" STD ",\"exp\":%ld}", NOW + 100));
        size_t kn = strlen(ktok);
        unsigned long h = assert_cached(&rot, ktok, kn);

        k2only.issuer = rot.issuer;   /* same strings: only the key set differs */
        assert_int_equal(clinic_token_verify_cached(&k2only, ktok, kn, NOW, &claims, &why),
                         CLINIC_TOKEN_UNKNOWN_KID);
        assert_null(claims);
        assert_int_equal(clinic_token_cache_hits(), h);
        free(ktok);
    }
    /* the same length and the same signature (so the same slot) with one
       payload character changed: compared in full, verified, refused */
    {
        char *forged = strdup(tok);
        char *p = strchr(forged, '.') + 2;
        unsigned long h = assert_cached(&rs, tok, n);
        *p = *p == 'A' ? 'B' : 'A';
        assert_int_equal(clinic_token_verify_cached(&rs, forged, n, NOW, &claims, &why), -1);
        assert_null(claims);
        assert_int_equal(clinic_token_cache_hits(), h);
        free(forged);
    }
    hits = clinic_token_cache_hits() - 1;

    tok[n - 3] = tok[n - 3] == 'A' ? 'B' : 'A';   /* one signature character */
    assert_int_equal(clinic_token_verify_cached(&rs, tok, n, NOW, &claims, &why), -1);
    assert_null(claims);
    assert_int_equal(clinic_token_cache_hits(), hits + 1);
    free(tok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_algorithms),
        cmocka_unit_test(test_times),
        cmocka_unit_test(test_iss_aud),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_jwks),
        cmocka_unit_test(test_claim_equals),
        cmocka_unit_test(test_duplicate_claims),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_crit),
        cmocka_unit_test(test_hs_key_size),
        cmocka_unit_test(test_es_signature_form),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
