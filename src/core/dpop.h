/*
 * Sender-constrained tokens, free of httpd headers: DPoP proofs (RFC 9449
 * §4.3: typ, an asymmetric algorithm of the accepted list, a public jwk,
 * the signature by that jwk, htm, htu, iat, jti, ath), RFC 7638 JWK
 * thumbprints (a token's cnf.jkt) and RFC 8705 certificate thumbprints (a
 * token's cnf.x5t#S256). The replay store for jti is the caller's (the
 * database: src/dpop.c); this file gives it the key to store.
 */
#ifndef CLINIC_DPOP_H
#define CLINIC_DPOP_H

#include <stddef.h>
#include <jansson.h>

#define CLINIC_DPOP_PROOF_MAX 8192   /* bytes; a longer proof is refused unread */
#define CLINIC_DPOP_JTI_MAX 256      /* bytes of jti */
#define CLINIC_SHA256_B64 44         /* base64url SHA-256 (43 characters) and its NUL */
#define CLINIC_URL_MAX 2048          /* a normalised htu, NUL included */

/* The algorithms a proof may use: RS and ES only (HS and none are refused
 * whatever the list says), NULL-terminated. */
extern const char *const clinic_dpop_algs[];

typedef struct {
    const char *const *algs;   /* accepted proof algorithms, NULL-terminated */
    long window;               /* seconds: iat within [now - window, now + window] */
} clinic_dpop_policy_t;

/* The request the proof must be made for. */
typedef struct {
    const char *method;        /* the request's method, e.g. "POST" */
    const char *url;           /* its URL (scheme://host[:port]/path; a query is ignored) */
    const char *token;         /* the access token (ath), or NULL: no ath check */
    size_t token_len;
} clinic_dpop_request_t;

/* What a verified proof says. */
typedef struct {
    char jkt[CLINIC_SHA256_B64];      /* RFC 7638 thumbprint of the proof's jwk */
    char replay_key[65];              /* hex SHA-256 of jkt and jti: the replay store's key */
    long iat;
} clinic_dpop_proof_t;

/* Verify the DPoP proof proof[0..len) for request q at time now. 0: *out
 * filled (the caller must still check jti has not been seen: replay_key,
 * until iat + window). -1: *why says what failed (a fixed string beginning
 * "DPoP proof", never proof content). */
int clinic_dpop_verify(const clinic_dpop_policy_t *p, const char *proof, size_t len,
                       const clinic_dpop_request_t *q, long now, clinic_dpop_proof_t *out,
                       const char **why);

/* RFC 7638 thumbprint (SHA-256, base64url) of a public RSA or EC JWK.
 * 0, or -1 when a required member is missing or not a string. */
int clinic_jwk_thumbprint(json_t *jwk, char out[CLINIC_SHA256_B64]);

/* RFC 8705 §3.1: base64url SHA-256 of the DER of the PEM certificate pem.
 * 0, or -1 when pem holds no certificate. */
int clinic_cert_thumbprint(const char *pem, size_t len, char out[CLINIC_SHA256_B64]);

/* base64url SHA-256 of data (RFC 9449 ath). */
void clinic_sha256_b64url(const void *data, size_t len, char out[CLINIC_SHA256_B64]);

/* RFC 9449 §4.3 / RFC 3986 §6.2.2-6.2.3 normalisation of an http(s) URL
 * for comparing htu: scheme and host in lower case, the default port
 * dropped, an empty path as "/", percent-escapes in upper case and those
 * of unreserved characters decoded, "." and ".." segments removed; the
 * query and fragment are dropped.
 * 0, or -1 when in is not an absolute http(s) URL or does not fit. */
int clinic_htu_normalise(const char *in, char *out, size_t outlen);

/* Is alg one a DPoP proof may use (RS256..RS512, ES256..ES512)? */
int clinic_dpop_alg_is_asymmetric(const char *alg);

#endif
