/* mkjwt: mint JWTs and JWKS documents from real keys, for tests and `make run`.
 *
 *   mkjwt sign --alg ALG --key FILE [--kid KID] [--claims JSON] [--exp-in SECONDS] [--no-exp]
 *              [--iat-now]
 *   mkjwt jwks [--kid KID] [--alg ALG] PUBFILE [[--kid KID] [--alg ALG] PUBFILE ...]
 *   mkjwt jws --alg ALG --key FILE --header JSON --claims JSON [--count N]
 *   mkjwt jwk PUBFILE | mkjwt jkt PUBFILE
 *
 * Exit 0 on success, 2 with a message on stderr otherwise.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>

#include "b64url.h"
#include "dpop.h"

/* %1$s: the name the tool was invoked as (clinic-mkjwt once installed by the package). */
#define USAGE                                                                                 \
    "usage: %1$s sign --alg ALG --key FILE [--kid KID] [--claims JSON] [--exp-in SECONDS]\n"    \
    "                  [--no-exp] [--iat-now]\n"                                             \
    "       %1$s jwks [--kid KID] [--alg ALG] PUBFILE [[--kid KID] [--alg ALG] PUBFILE ...]\n"  \
    "       %1$s jws --alg RS256|ES256 --key FILE --header JSON --claims JSON [--count N]\n"   \
    "       %1$s jwk PUBFILE | %1$s jkt PUBFILE\n"

static const char *progname = "mkjwt";

static int fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

static int usage(void)
{
    fprintf(stderr, USAGE, progname);
    return 2;
}

/* Whole file, malloc'd and NUL-terminated; NULL on error. */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL, *grown;
    size_t cap = 0, n = 0;

    while (f) {
        if (n + 1 >= cap) {
            if (!(grown = realloc(buf, cap = cap ? 2 * cap : 4096)))
                break;
            buf = grown;
        }
        n += fread(buf + n, 1, cap - n - 1, f);
        if (feof(f) || ferror(f))
            break;
    }
    if (!f || !buf || ferror(f) || !feof(f)) {
        if (buf)
            OPENSSL_clear_free(buf, cap);
        buf = NULL;
    } else {
        buf[n] = '\0';
        *len = n;
    }
    if (f)
        fclose(f);
    return buf;
}

static int cmd_sign(int argc, char **argv)
{
    const char *alg_name = NULL, *key_file = NULL, *kid = NULL, *claims = NULL;
    long exp_in = 3600;
    int no_exp = 0, iat_now = 0, rc = 2, i;
    unsigned char *key = NULL;
    size_t key_len = 0;
    json_t *parsed = NULL;
    jwt_t *jwt = NULL;
    char *token = NULL, *end;
    time_t now = time(NULL);
    jwt_alg_t alg;

    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-exp"))
            no_exp = 1;
        else if (!strcmp(a, "--iat-now"))
            iat_now = 1;
        else if (i + 1 == argc)
            return usage();
        else if (!strcmp(a, "--alg"))
            alg_name = argv[++i];
        else if (!strcmp(a, "--key"))
            key_file = argv[++i];
        else if (!strcmp(a, "--kid"))
            kid = argv[++i];
        else if (!strcmp(a, "--claims"))
            claims = argv[++i];
        else if (!strcmp(a, "--exp-in")) {
            errno = 0;
            exp_in = strtol(argv[++i], &end, 10);
            if (errno || end == argv[i] || *end)
                return fail("--exp-in wants an integer number of seconds, not \"%s\"", argv[i]);
        } else
            return usage();
    }
    alg = alg_name ? jwt_str_alg(alg_name) : JWT_ALG_INVAL;
    if (alg == JWT_ALG_INVAL)
        return fail("--alg must be one of none HS256 HS384 HS512 RS256 RS384 RS512 "
                    "ES256 ES384 ES512");
    if (alg != JWT_ALG_NONE && !key_file)
        return fail("--alg %s needs --key", alg_name);
    if (claims)
        parsed = json_loads(claims, JSON_REJECT_DUPLICATES, NULL); /* json_is_* evaluates twice */
    if (claims && !json_is_object(parsed)) {
        fail("--claims must be a JSON object");
        goto out;
    }
    if (alg != JWT_ALG_NONE) {
        if (!(key = read_file(key_file, &key_len))) {
            fail("cannot read %s: %s", key_file, strerror(errno));
            goto out;
        }
        if (alg <= JWT_ALG_HS512 && key_len && key[key_len - 1] == '\n')
            key[--key_len] = '\0';
    }
    if (jwt_new(&jwt) || jwt_set_alg(jwt, alg, key, (int)key_len)) {
        fail("cannot use %s as a %s key", key_file ? key_file : "(none)", alg_name);
        goto out;
    }
    if (claims && jwt_add_grants_json(jwt, claims)) {
        fail("cannot add --claims");
        goto out;
    }
    if (kid && jwt_add_header(jwt, "kid", kid)) {
        fail("cannot add kid header");
        goto out;
    }
    if (!no_exp && !json_object_get(parsed, "exp")
        && jwt_add_grant_int(jwt, "exp", (long)now + exp_in)) {
        fail("cannot add exp");
        goto out;
    }
    if (iat_now && jwt_add_grant_int(jwt, "iat", (long)now)) {
        fail("cannot add iat (already in --claims?)");
        goto out;
    }
    if (!(token = jwt_encode_str(jwt))) {
        fail("signing failed (does %s hold a %s private key?)", key_file, alg_name);
        goto out;
    }
    printf("%s\n", token);
    rc = 0;
out:
    free(token);
    jwt_free(jwt);
    json_decref(parsed);
    if (key)
        OPENSSL_clear_free(key, key_len + 1);
    return rc;
}

/* Set o[name] to the base64url of the big-endian BIGNUM param, left-padded to pad bytes
   (0: minimal length). */
static int set_bn(json_t *o, const char *name, const EVP_PKEY *pkey, const char *param,
                  int pad)
{
    BIGNUM *bn = NULL;
    unsigned char *bin = NULL;
    char *txt = NULL;
    int len, ok = 0;

    if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
        return 0;
    len = pad ? pad : BN_num_bytes(bn);
    if ((bin = malloc((size_t)len + 1)) && (txt = malloc(((size_t)len + 2) / 3 * 4 + 1))
        && BN_bn2binpad(bn, bin, len) == len) {
        clinic_b64url_encode(bin, (size_t)len, txt);
        ok = !json_object_set_new(o, name, json_string(txt));
    }
    free(txt);
    free(bin);
    BN_free(bn);
    return ok;
}

static json_t *jwk_from_pem(const char *path, const char *kid, const char *alg)
{
    static const char *const crvs[][2] = {
        { "prime256v1", "P-256" }, { "secp384r1", "P-384" }, { "secp521r1", "P-521" } };
    FILE *f = fopen(path, "r");
    EVP_PKEY *pkey = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
    json_t *jwk = json_object();
    char group[32];
    int ok, rsa, c = 0, flen;

    if (f)
        fclose(f);
    if (!pkey) {
        fail("%s: not a PEM public key", path);
        json_decref(jwk);
        return NULL;
    }
    rsa = EVP_PKEY_is_a(pkey, "RSA");
    ok = !json_object_set_new(jwk, "kty", json_string(rsa ? "RSA" : "EC"))
         && !json_object_set_new(jwk, "use", json_string("sig"))
         && !(kid && json_object_set_new(jwk, "kid", json_string(kid)))
         && !(alg && json_object_set_new(jwk, "alg", json_string(alg)));
    if (ok && rsa) {
        ok = set_bn(jwk, "n", pkey, OSSL_PKEY_PARAM_RSA_N, 0)
             && set_bn(jwk, "e", pkey, OSSL_PKEY_PARAM_RSA_E, 0);
    } else if (ok) {
        ok = EVP_PKEY_is_a(pkey, "EC")
             && EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                               sizeof(group), NULL);
        while (ok && c < 3 && strcmp(group, crvs[c][0]))
            c++;
        flen = (EVP_PKEY_get_bits(pkey) + 7) / 8;
        ok = ok && c < 3 && !json_object_set_new(jwk, "crv", json_string(crvs[c][1]))
             && set_bn(jwk, "x", pkey, OSSL_PKEY_PARAM_EC_PUB_X, flen)
             && set_bn(jwk, "y", pkey, OSSL_PKEY_PARAM_EC_PUB_Y, flen);
    }
    EVP_PKEY_free(pkey);
    if (!ok) {
        fail("%s: not an RSA or P-256/P-384/P-521 EC public key", path);
        json_decref(jwk);
        return NULL;
    }
    return jwk;
}

static int cmd_jwks(int argc, char **argv)
{
    const char *kid = NULL, *alg = NULL;
    json_t *keys = json_array(), *doc = json_pack("{s:o}", "keys", keys), *jwk;
    char *out;
    int i, rc = 2;

    if (!doc)
        return fail("out of memory");
    for (i = 0; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--kid"))
            kid = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--alg"))
            alg = argv[++i];
        else if (!strncmp(argv[i], "--", 2))
            break;
        else if (!(jwk = jwk_from_pem(argv[i], kid, alg)) || json_array_append_new(keys, jwk))
            goto out;
        else
            kid = alg = NULL;
    }
    if (i < argc || kid || alg || !json_array_size(keys)) {
        rc = usage();
        goto out;
    }
    if (!(out = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
        fail("out of memory");
        goto out;
    }
    printf("%s\n", out);
    free(out);
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

/* One PEM public key as a JWK, or its RFC 7638 thumbprint (a token's cnf.jkt). */
static int cmd_jwk(int argc, char **argv, int thumbprint)
{
    json_t *jwk = argc == 1 ? jwk_from_pem(argv[0], NULL, NULL) : NULL;
    char jkt[CLINIC_SHA256_B64], *out = NULL;
    int rc = 2;

    if (argc != 1)
        return usage();
    if (jwk && thumbprint && clinic_jwk_thumbprint(jwk, jkt) == 0)
        rc = printf("%s\n", jkt) > 0 ? 0 : 2;
    else if (jwk && !thumbprint && (out = json_dumps(jwk, JSON_COMPACT)))
        rc = printf("%s\n", out) > 0 ? 0 : 2;
    free(out);
    json_decref(jwk);
    return rc;
}

/* header.claims signed with key (RS256 or ES256, by the key's type; the header says
   which alg it claims), printed: a JWS with exactly the header given (libjwt would
   put its own typ in), such as a DPoP proof. */
static int print_jws(EVP_PKEY *key, const char *header, const char *claims)
{
    char out[16384];
    unsigned char sig[1024];
    const unsigned char *p = sig;
    size_t n, siglen = sizeof sig, half;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ECDSA_SIG *es = NULL;
    int ok;

    if (strlen(header) + strlen(claims) > sizeof out / 2)
        return 0;
    n = clinic_b64url_encode((const unsigned char *)header, strlen(header), out);
    out[n++] = '.';
    n += clinic_b64url_encode((const unsigned char *)claims, strlen(claims), out + n);
    ok = ctx && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
         EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)out, n) == 1;
    EVP_MD_CTX_free(ctx);
    if (ok && EVP_PKEY_is_a(key, "EC") && (es = d2i_ECDSA_SIG(NULL, &p, (long)siglen))) {
        half = (size_t)(EVP_PKEY_get_bits(key) + 7) / 8;
        BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, (int)half);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + half, (int)half);
        siglen = 2 * half;
        ECDSA_SIG_free(es);
    }
    out[n++] = '.';
    clinic_b64url_encode(sig, siglen, out + n);
    return ok && printf("%s\n", out) > 0;
}

/* mkjwt jws: --count N prints N of them, the claims' jti suffixed with -1 .. -N. */
static int cmd_jws(int argc, char **argv)
{
    const char *key_file = NULL, *header = NULL, *claims = NULL;
    long count = 1, i;
    FILE *f;
    EVP_PKEY *key;
    json_t *c;
    char *text, jti[300], base[208] = "";
    int ok = 1, a;

    for (a = 0; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "--key"))
            key_file = argv[a + 1];
        else if (!strcmp(argv[a], "--header"))
            header = argv[a + 1];
        else if (!strcmp(argv[a], "--claims"))
            claims = argv[a + 1];
        else if (!strcmp(argv[a], "--count"))
            count = atol(argv[a + 1]);
        else if (strcmp(argv[a], "--alg"))
            return usage();
    }
    if (a != argc || !key_file || !header || !claims || count < 1 ||
        !(c = json_loads(claims, JSON_REJECT_DUPLICATES, NULL)))
        return usage();
    f = fopen(key_file, "r");
    key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (json_is_string(json_object_get(c, "jti")))
        snprintf(base, sizeof base, "%.200s", json_string_value(json_object_get(c, "jti")));
    for (i = 1; key && ok && i <= count; i++) {
        if (count > 1 && *base) {
            snprintf(jti, sizeof jti, "%s-%ld", base, i);
            json_object_set_new(c, "jti", json_string(jti));
        }
        text = count > 1 ? json_dumps(c, JSON_COMPACT) : strdup(claims);
        ok = text && print_jws(key, header, text);
        free(text);
    }
    json_decref(c);
    EVP_PKEY_free(key);
    return key && ok ? 0 : fail("%s: not a PEM private key, or signing failed", key_file);
}

#define HELP                                                                                 \
    "Mint JSON Web Tokens and JWKS documents from real keys (for testing mod_clinic).\n\n"    \
    USAGE                                                                                  \
    "\n"                                                                                   \
    "sign   prints a signed token. --key is a PEM private key (RS/ES) or the HS secret\n"     \
    "       file; --claims is a JSON object; exp is now + --exp-in (default 3600) unless\n"   \
    "       --no-exp; --iat-now adds iat.\n"                                                \
    "jwks   prints a JWKS document holding the given PEM public keys.\n"                    \
    "jws    prints header.claims signed as given (a DPoP proof: typ dpop+jwt, jwk), one per\n" \
    "       line; --count N prints N, the jti of each suffixed -1 .. -N.\n"                  \
    "jwk    prints one PEM public key as a JWK; jkt its RFC 7638 thumbprint (cnf.jkt).\n\n"   \
    "Exit status: 0 on success, 2 on a usage or key error.\n"

int main(int argc, char **argv)
{
    const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;

    if (argc > 0 && argv[0][0])
        progname = slash ? slash + 1 : argv[0];
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf(HELP, progname);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "sign"))
        return cmd_sign(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "jwks"))
        return cmd_jwks(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "jws"))
        return cmd_jws(argc - 2, argv + 2);
    if (argc >= 2 && (!strcmp(argv[1], "jwk") || !strcmp(argv[1], "jkt")))
        return cmd_jwk(argc - 2, argv + 2, argv[1][2] == 't');
    return usage();
}
