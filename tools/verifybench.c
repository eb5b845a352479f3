/*
 * verifybench: CPU per verification of a never-seen token, through the code
 * the module runs (src/core/token.c + src/core/keyset.c), against the libjwt path the
 * module used before (jwt_decode with the PEM parsed on every call).
 *
 *   tools/verifybench [N [ALG]]   N distinct tokens per algorithm (default 2000);
 *                                 ALG: only RS256 or ES256
 *
 * Prints microseconds per token (CPU time of this process, one thread).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "b64url.h"
#include "token.h"

#define NOW 1800000000L

static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *b64(const unsigned char *in, size_t n)
{
    char *out = malloc(n / 3 * 4 + 8);

    out[clinic_b64url_encode(in, n, out)] = '\0';
    return out;
}

static char *pem_of(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out;
    long len;

    PEM_write_bio_PUBKEY(bio, k);
    len = BIO_get_mem_data(bio, &data);
    out = strndup(data, (size_t)len);
    BIO_free(bio);
    return out;
}

/* A token of alg signed by k (RSA or EC, EVP_DigestSign); the claims differ per i. */
static char *mint(EVP_PKEY *k, const char *alg, const EVP_MD *md, size_t ec_len, int i)
{
    char hdr[64], claims[128], *h, *p, *s, *tok;
    unsigned char sig[1024], raw[132];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char *input;

    snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    snprintf(claims, sizeof claims, "{\"sub\":\"user-%d\",\"iat\":%ld,\"exp\":%ld}", i, NOW,
             NOW + 3600);
    h = b64((unsigned char *)hdr, strlen(hdr));
    p = b64((unsigned char *)claims, strlen(claims));
    input = malloc(strlen(h) + strlen(p) + 2);
    sprintf(input, "%s.%s", h, p);
    if (EVP_DigestSignInit(ctx, NULL, md, NULL, k) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, (unsigned char *)input, strlen(input)) != 1) {
        fprintf(stderr, "verifybench: signing failed\n");
        exit(1);
    }
    EVP_MD_CTX_free(ctx);
    if (ec_len) {   /* DER ECDSA-Sig-Value -> r||s */
        const unsigned char *d = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &d, (long)siglen);
        BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, (int)ec_len);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + ec_len, (int)ec_len);
        ECDSA_SIG_free(es);
        s = b64(raw, 2 * ec_len);
    } else {
        s = b64(sig, siglen);
    }
    tok = malloc(strlen(input) + strlen(s) + 2);
    sprintf(tok, "%s.%s", input, s);
    free(h);
    free(p);
    free(s);
    free(input);
    return tok;
}

static void bench(const char *alg, EVP_PKEY *k, const EVP_MD *md, size_t ec_len, int n)
{
    char err[256], *pem = pem_of(k);
    clinic_keyset_t *ks = clinic_keyset_from_key((unsigned char *)pem, strlen(pem), alg, err,
                                                 sizeof err);
    clinic_token_policy_t pol = { alg, ks, NULL, NULL, 60 };
    char **toks = malloc(sizeof *toks * (size_t)n);
    const char *why;
    json_t *claims;
    double t0, t_new, t_cached, t_old;
    int i, bad = 0;

    if (!ks) {
        fprintf(stderr, "verifybench: %s\n", err);
        exit(1);
    }
    for (i = 0; i < n; i++)
        toks[i] = mint(k, alg, md, ec_len, i);

    t0 = cpu_now();
    for (i = 0; i < n; i++) {
        if (clinic_token_verify(&pol, toks[i], strlen(toks[i]), NOW, &claims, &why) != 0)
            bad++;
        json_decref(claims);
    }
    t_new = cpu_now() - t0;

    t0 = cpu_now();   /* the module's call: never seen, so a miss plus the cache insert */
    for (i = 0; i < n; i++) {
        if (clinic_token_verify_cached(&pol, toks[i], strlen(toks[i]), NOW, &claims, &why) != 0)
            bad++;
        json_decref(claims);
    }
    t_cached = cpu_now() - t0;

    t0 = cpu_now();   /* before: libjwt, PEM parsed on every call */
    for (i = 0; i < n; i++) {
        jwt_t *jwt = NULL;
        if (jwt_decode(&jwt, toks[i], (unsigned char *)pem, (int)strlen(pem)) != 0)
            bad++;
        jwt_free(jwt);
    }
    t_old = cpu_now() - t0;

    printf("%-6s never-seen token: %7.1f us verify, %7.1f us through the cache (miss); "
           "libjwt jwt_decode %7.1f us%s\n", alg, t_new * 1e6 / n, t_cached * 1e6 / n,
           t_old * 1e6 / n, bad ? "  (SOME FAILED)" : "");
    for (i = 0; i < n; i++)
        free(toks[i]);
    free(toks);
    free(pem);
    clinic_keyset_unref(ks);
    if (bad)
        exit(1);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    if (n < 1 || !rsa || !ec)
        return 2;
    if (argc < 3 || !strcmp(argv[2], "RS256"))
        bench("RS256", rsa, EVP_sha256(), 0, n);
    if (argc < 3 || !strcmp(argv[2], "ES256"))
        bench("ES256", ec, EVP_sha256(), 32, n);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    return 0;
}
