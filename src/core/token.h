/*
 * Bearer-token verification against a ready-to-verify key set (keyset.h),
 * free of httpd headers so that the unit tests and the fuzz targets link it
 * alone.
 */
#ifndef CLINIC_TOKEN_H
#define CLINIC_TOKEN_H

#include <stddef.h>
#include <jansson.h>
#include "keyset.h"

#define CLINIC_TOKEN_MAX 8192   /* bytes; a longer token is rejected unread */

typedef struct {
    const char *alg;                 /* the pinned algorithm, e.g. "RS256" */
    const clinic_keyset_t *keys;     /* keys that fit alg (key file, JWKS file or URL) */
    const char *issuer;              /* required iss, or NULL */
    const char *audience;            /* required aud member, or NULL */
    long leeway;                     /* seconds */
} clinic_token_policy_t;

/* "Bearer <token>" (scheme case-insensitive). Returns 1 with the token's
 * span, or 0 for no token: no header, another scheme, an empty token. */
int clinic_bearer_token(const char *hdr, const char **tok, size_t *len);

/* Verify tok[0..len) against the policy at time now (seconds since the
 * epoch). 0: *claims is a new reference to the verified claims object.
 * -1: *why says what failed (a fixed string, never token content).
 * CLINIC_TOKEN_UNKNOWN_KID: the same, because the header's kid names no key
 * of the set (a fetched set may be refetched for it). */
#define CLINIC_TOKEN_UNKNOWN_KID (-2)
int clinic_token_verify(const clinic_token_policy_t *p, const char *tok,
                        size_t len, long now, json_t **claims,
                        const char **why);

/* clinic_token_verify behind a per-process cache of verified tokens (1,024
 * slots, each holding a copy of its token, compared in full): a token seen
 * before under the same policy skips the signature work until its exp
 * (checked with the leeway on every hit). Tokens over 2,048 bytes are not
 * kept. Thread-safe. */
int clinic_token_verify_cached(const clinic_token_policy_t *p, const char *tok,
                               size_t len, long now, json_t **claims,
                               const char **why);
/* Was this thread's last clinic_token_verify_cached answered from the cache? */
int clinic_token_last_was_hit(void);
/* Cache hits so far in this process (for tests and the benchmark). */
unsigned long clinic_token_cache_hits(void);

/* Does claim `name` equal `value`? A string compares as is, an integer as its
 * decimal text; anything else (or absent) does not. */
int clinic_claim_equals(json_t *claims, const char *name, const char *value);

/* The JWS pieces the DPoP proof checks (dpop.c) share with token checks:
 * three base64url segments of at most CLINIC_TOKEN_MAX bytes (the two dots,
 * or -1 and *why), the decoded JOSE header (NULL when it is not one JSON
 * object of at most 1 KiB, duplicate names rejected), and whether that
 * header asks for no extension (no crit, b64 absent or true). */
int clinic_jws_split(const char *tok, size_t len, const char **dot1, const char **dot2,
                     const char **why);
json_t *clinic_jws_header(const char *tok, size_t n);
/* The payload between dot1 and dot2 as one JSON object (duplicate names
 * rejected), or NULL. Call it only once the signature was checked. */
json_t *clinic_jws_payload(const char *dot1, const char *dot2);
int clinic_jws_header_is_plain(json_t *hdr);

#endif
