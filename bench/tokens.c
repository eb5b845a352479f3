/*
 * Token helpers for bench/bench.pl.
 *
 *   tokens mint RSA_PRIVATE_PEM N
 *       N distinct RS256 tokens, one a line: {"sub":"bench","userId":
 *       "doc-bench","jti":"pool-<i>","iat":now,"exp":now+3600}, signed with
 *       OpenSSL directly (tools/mkjwt makes one token per process: too slow
 *       for thousands). They make every request a token-cache miss.
 *
 *   tokens cost RS256_TOKEN_FILE RSA_PUBLIC_PEM HS256_TOKEN_FILE HS_SECRET_FILE
 *       Native cost of the token work the module does per request (callgrind
 *       counts instructions under valgrind, whose CPUID hides SHA-NI and
 *       other extensions from OpenSSL; this times the real thing on this CPU:
 *       process CPU time, the best of 7 trials, so that other processes on
 *       the machine count as little as possible). Prints "name microseconds"
 *       lines:
 *   jwt_decode_rs256      libjwt jwt_decode with the PEM key: what the module
 *                         runs for an RS256 token it has not seen (cache miss)
 *   pem_parse             PEM_read_bio_PUBKEY alone: the part libjwt repeats
 *                         on every call
 *   evp_verify_rs256      the RS256 signature check with an EVP_PKEY parsed
 *                         once (what a verifier that keeps the key would pay)
 *   jwt_decode_hs256      libjwt jwt_decode, HS256
 *   sha256_token_implicit EVP_Digest(..., EVP_sha256()) of the RS256 token: the
 *                         token cache's key, as the module computes it
 *   sha256_token_fetched  the same with an EVP_MD fetched once
 */
#include <jwt.h>
#include "b64url.h"
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        perror(path);
        exit(2);
    }
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        exit(2);
    }
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static char *slurp_line(const char *path)
{
    size_t n;
    char *s = slurp(path, &n);

    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);   /* CPU time: waiting for a core is not counted */
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int mint(const char *pem_path, long n)
{
    static const char hdr[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    char hdr64[64], claims[256], claims64[400], input[512], sig64[1024];
    unsigned char sig[512];
    size_t sig_len;
    long i, t = (long)time(NULL);
    EVP_PKEY *key;
    FILE *f = fopen(pem_path, "r");

    if (!f || !(key = PEM_read_PrivateKey(f, NULL, NULL, NULL))) {
        fprintf(stderr, "tokens: cannot read %s\n", pem_path);
        return 2;
    }
    fclose(f);
    clinic_b64url_encode((const unsigned char *)hdr, strlen(hdr), hdr64);
    for (i = 1; i <= n; i++) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        snprintf(claims, sizeof claims,
                 "{\"sub\":\"bench\",\"userId\":\"doc-bench\",\"jti\":\"pool-%ld\","
                 "\"iat\":%ld,\"exp\":%ld}", i, t, t + 3600);
        clinic_b64url_encode((const unsigned char *)claims, strlen(claims), claims64);
        snprintf(input, sizeof input, "%s.%s", hdr64, claims64);
        sig_len = sizeof sig;
        if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) != 1 ||
            EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)input, strlen(input)) != 1) {
            fprintf(stderr, "tokens: signing failed\n");
            return 1;
        }
        EVP_MD_CTX_free(ctx);
        clinic_b64url_encode(sig, sig_len, sig64);
        printf("%s.%s\n", input, sig64);
    }
    EVP_PKEY_free(key);
    return 0;
}

/* The best of 7 trials of at least 50 ms of CPU each: other processes on
 * the machine only ever make a trial slower (caches, frequency). */
#define TIME(name, body)                                                     \
    do {                                                                     \
        double best = 1e9;                                                   \
        for (int trial_ = 0; trial_ < 7; trial_++) {                         \
            long iters = 0;                                                  \
            double t0 = now(), t;                                            \
            do {                                                             \
                for (int k_ = 0; k_ < 10; k_++, iters++) { body; }           \
            } while ((t = now() - t0) < 0.05);                               \
            if (t / iters < best)                                            \
                best = t / iters;                                            \
        }                                                                    \
        printf("%s %.2f\n", name, best * 1e6);                               \
    } while (0)

static int cost(char **argv)
{
    size_t pem_len, secret_len;
    char *rs_tok, *hs_tok, *pem, *secret;
    const char *dot;
    unsigned char sig[1024], d[32];
    unsigned int dlen;
    size_t sig_len;
    EVP_PKEY *pkey;
    EVP_MD *sha256;
    BIO *bio;

    rs_tok = slurp_line(argv[0]);
    pem = slurp(argv[1], &pem_len);
    hs_tok = slurp_line(argv[2]);
    secret = slurp(argv[3], &secret_len);
    while (secret_len && secret[secret_len - 1] == '\n')
        secret[--secret_len] = '\0';

    TIME("jwt_decode_rs256", {
        jwt_t *jwt = NULL;
        if (jwt_decode(&jwt, rs_tok, (const unsigned char *)pem, (int)pem_len) != 0) {
            fprintf(stderr, "RS256 token does not verify\n");
            return 1;
        }
        jwt_free(jwt);
    });
    TIME("pem_parse", {
        BIO *b = BIO_new_mem_buf(pem, (int)pem_len);
        EVP_PKEY *k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        if (!k) return 1;
        EVP_PKEY_free(k);
        BIO_free(b);
    });

    bio = BIO_new_mem_buf(pem, (int)pem_len);
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    BIO_free(bio);
    dot = strrchr(rs_tok, '.');
    if (!pkey || !dot)
        return 1;
    sig_len = (size_t)clinic_b64url_decode(dot + 1, strlen(dot + 1), sig);
    TIME("evp_verify_rs256", {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
            EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)rs_tok,
                             (size_t)(dot - rs_tok)) != 1) {
            fprintf(stderr, "EVP verify failed\n");
            return 1;
        }
        EVP_MD_CTX_free(ctx);
    });

    TIME("jwt_decode_hs256", {
        jwt_t *jwt = NULL;
        if (jwt_decode(&jwt, hs_tok, (const unsigned char *)secret, (int)secret_len) != 0) {
            fprintf(stderr, "HS256 token does not verify\n");
            return 1;
        }
        jwt_free(jwt);
    });

    TIME("sha256_token_implicit", {
        if (!EVP_Digest(rs_tok, strlen(rs_tok), d, &dlen, EVP_sha256(), NULL)) return 1;
    });
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    TIME("sha256_token_fetched", {
        if (!EVP_Digest(rs_tok, strlen(rs_tok), d, &dlen, sha256, NULL)) return 1;
    });
    EVP_MD_free(sha256);
    EVP_PKEY_free(pkey);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "mint"))
        return mint(argv[2], atol(argv[3]));
    if (argc == 6 && !strcmp(argv[1], "cost"))
        return cost(argv + 2);
    fprintf(stderr, "usage: tokens mint RSA_PRIVATE_PEM N\n"
                    "       tokens cost RS256_TOKEN_FILE RSA_PUBLIC_PEM HS256_TOKEN_FILE HS_SECRET_FILE\n");
    return 2;
}
