/*
 * Bearer-token verification: the algorithm is pinned before any signature
 * work, the key is chosen by configuration (and `kid` for a JWKS), libjwt
 * checks the signature, and the registered claims are checked here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "b64url.h"
#include "token.h"

#define HEADER_MAX 1024   /* decoded JOSE header bytes */

int clinic_bearer_token(const char *hdr, const char **tok, size_t *len)
{
    size_t n;

    if (!hdr || strncasecmp(hdr, "Bearer", 6) != 0 || (hdr[6] != ' ' && hdr[6] != '\t'))
        return 0;
    hdr += 6;
    while (*hdr == ' ' || *hdr == '\t')
        hdr++;
    n = strlen(hdr);
    while (n && (hdr[n - 1] == ' ' || hdr[n - 1] == '\t'))
        n--;
    if (!n)
        return 0;
    *tok = hdr;
    *len = n;
    return 1;
}

static int is_b64url(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

/* Decode and parse the JOSE header segment tok[0..n). */
static json_t *parse_header(const char *tok, size_t n)
{
    unsigned char buf[HEADER_MAX + 4];
    long got;

    if (n == 0 || n > (HEADER_MAX / 3) * 4)
        return NULL;
    got = clinic_b64url_decode(tok, n, buf);
    if (got <= 0)
        return NULL;
    return json_loadb((const char *)buf, (size_t)got, JSON_REJECT_DUPLICATES, NULL);
}

/* Pick the verification key: the key file, or the JWKS key named by kid, or
 * (no kid) the only JWKS key that fits the pinned algorithm. */
static int pick_key(const clinic_token_policy_t *p, const char *kid,
                    const unsigned char **key, size_t *key_len,
                    const char **why)
{
    const clinic_jwk_t *found = NULL;
    size_t i, fits = 0;

    if (!p->jwks) {
        if (!p->key) {
            *why = "no key configured";
            return -1;
        }
        *key = p->key;
        *key_len = p->key_len;
        return 0;
    }
    for (i = 0; i < p->njwks; i++) {
        const clinic_jwk_t *k = &p->jwks[i];
        if (!clinic_jwk_fits_alg(k, p->alg))
            continue;
        if (kid) {
            if (k->kid && strcmp(k->kid, kid) == 0) {
                found = k;
                break;
            }
        } else {
            fits++;
            found = k;
        }
    }
    if (!found || (!kid && fits != 1)) {
        *why = kid ? "unknown kid" : "no kid and not exactly one key fits";
        return -1;
    }
    *key = found->key;
    *key_len = found->key_len;
    return 0;
}

/* The time claims: exp required; all must be integers when present. */
static int check_times(json_t *claims, long now, long leeway, const char **why)
{
    json_t *exp = json_object_get(claims, "exp");
    json_t *nbf = json_object_get(claims, "nbf");
    json_t *iat = json_object_get(claims, "iat");

    if (!exp || !json_is_integer(exp)) {
        *why = exp ? "exp is not an integer" : "no exp";
        return -1;
    }
    if ((nbf && !json_is_integer(nbf)) || (iat && !json_is_integer(iat))) {
        *why = "nbf or iat is not an integer";
        return -1;
    }
    if ((json_int_t)now - leeway >= json_integer_value(exp)) {
        *why = "expired";
        return -1;
    }
    if (nbf && (json_int_t)now + leeway < json_integer_value(nbf)) {
        *why = "not yet valid (nbf)";
        return -1;
    }
    if (iat && (json_int_t)now + leeway < json_integer_value(iat)) {
        *why = "issued in the future (iat)";
        return -1;
    }
    return 0;
}

static int check_aud(json_t *claims, const char *want)
{
    json_t *aud = json_object_get(claims, "aud");
    size_t i;
    json_t *v;

    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (!json_is_array(aud))
        return 0;
    json_array_foreach(aud, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return 1;
    }
    return 0;
}

/* libjwt checks the signature; the claims are then read from the very
 * payload bytes it verified, with duplicate names rejected (libjwt's own
 * parse keeps the last of two "exp"s: an ambiguous token is refused). */
static json_t *verified_claims(const clinic_token_policy_t *p, const char *tok,
                               size_t len, const char *payload, size_t payload_len,
                               const unsigned char *key, size_t key_len, const char **why)
{
    char buf[CLINIC_TOKEN_MAX + 1];
    unsigned char body[CLINIC_TOKEN_MAX];
    jwt_t *jwt = NULL;
    long got;
    json_t *claims;

    memcpy(buf, tok, len);
    buf[len] = '\0';
    if (jwt_decode(&jwt, buf, key, (int)key_len) != 0) {
        *why = "signature or encoding invalid";
        return NULL;
    }
    /* libjwt accepts alg "none" with any key: pin the algorithm again. */
    if (jwt_get_alg(jwt) != jwt_str_alg(p->alg) || jwt_get_alg(jwt) == JWT_ALG_NONE) {
        jwt_free(jwt);
        *why = "algorithm mismatch";
        return NULL;
    }
    jwt_free(jwt);
    got = clinic_b64url_decode(payload, payload_len, body);
    claims = got > 0 ? json_loadb((const char *)body, (size_t)got, JSON_REJECT_DUPLICATES, NULL)
                     : NULL;
    if (!json_is_object(claims)) {
        json_decref(claims);
        *why = "claims are not one JSON object";
        return NULL;
    }
    return claims;
}

int clinic_token_verify(const clinic_token_policy_t *p, const char *tok,
                        size_t len, long now, json_t **claims,
                        const char **why)
{
    const char *dot1, *dot2, *kid = NULL;
    const unsigned char *key = NULL;
    size_t key_len = 0, i;
    json_t *hdr, *alg, *jkid, *c = NULL;

    *claims = NULL;
    if (len > CLINIC_TOKEN_MAX) {
        *why = "token too long";
        return -1;
    }
    dot1 = memchr(tok, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - tok)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - tok))) {
        *why = "not three segments";
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (tok[i] != '.' && !is_b64url(tok[i])) {
            *why = "bad character";
            return -1;
        }
    }
    hdr = parse_header(tok, (size_t)(dot1 - tok));
    alg = json_object_get(hdr, "alg");
    jkid = json_object_get(hdr, "kid");
    if (!json_is_object(hdr) || !json_is_string(alg) || (jkid && !json_is_string(jkid))) {
        *why = "bad header";
        goto out;
    }
    if (strcmp(json_string_value(alg), p->alg) != 0) {
        *why = "algorithm mismatch";
        goto out;
    }
    kid = jkid ? json_string_value(jkid) : NULL;
    if (pick_key(p, kid, &key, &key_len, why) != 0)
        goto out;
    c = verified_claims(p, tok, len, dot1 + 1, (size_t)(dot2 - dot1 - 1), key, key_len, why);
    if (!c)
        goto out;
    if (check_times(c, now, p->leeway, why) != 0)
        goto bad;
    if (p->issuer) {
        json_t *iss = json_object_get(c, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), p->issuer) != 0) {
            *why = "wrong iss";
            goto bad;
        }
    }
    if (p->audience && !check_aud(c, p->audience)) {
        *why = "wrong aud";
        goto bad;
    }
    json_decref(hdr);
    *claims = c;
    return 0;
bad:
    json_decref(c);
out:
    json_decref(hdr);
    return -1;
}

/* ---- the cache of verified tokens ---- */

#define CACHE_SLOTS 1024   /* direct-mapped; a collision just evicts */

typedef struct {
    unsigned char digest[32];
    clinic_token_policy_t policy;   /* the policy it was verified under */
    json_int_t exp;
    json_t *claims;                 /* NULL: empty slot */
} cache_slot_t;

static cache_slot_t cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long cache_hits;
static __thread int last_hit;   /* for clinic_token_last_was_hit */

/* Policies are compared by identity of their configuration strings and
 * keys, which live as long as the configuration. */
static int same_policy(const clinic_token_policy_t *a, const clinic_token_policy_t *b)
{
    return a->alg == b->alg && a->key == b->key && a->key_len == b->key_len &&
           a->jwks == b->jwks && a->njwks == b->njwks && a->issuer == b->issuer &&
           a->audience == b->audience && a->leeway == b->leeway;
}

int clinic_token_verify_cached(const clinic_token_policy_t *p, const char *tok,
                               size_t len, long now, json_t **claims,
                               const char **why)
{
    unsigned char d[32];
    unsigned int dlen = 0;
    cache_slot_t *s;
    json_t *old;

    last_hit = 0;
    if (len > CLINIC_TOKEN_MAX || !EVP_Digest(tok, len, d, &dlen, EVP_sha256(), NULL))
        return clinic_token_verify(p, tok, len, now, claims, why);
    s = &cache[((unsigned)d[0] << 8 | d[1]) % CACHE_SLOTS];
    pthread_mutex_lock(&cache_lock);
    if (s->claims && memcmp(s->digest, d, sizeof d) == 0 && same_policy(&s->policy, p) &&
        (json_int_t)now - p->leeway < s->exp) {
        *claims = json_incref(s->claims);
        cache_hits++;
        last_hit = 1;
        pthread_mutex_unlock(&cache_lock);
        return 0;
    }
    pthread_mutex_unlock(&cache_lock);

    if (clinic_token_verify(p, tok, len, now, claims, why) != 0)
        return -1;
    pthread_mutex_lock(&cache_lock);
    old = s->claims;
    memcpy(s->digest, d, sizeof d);
    s->policy = *p;
    s->exp = json_integer_value(json_object_get(*claims, "exp"));
    s->claims = json_incref(*claims);
    pthread_mutex_unlock(&cache_lock);
    json_decref(old);
    return 0;
}

int clinic_token_last_was_hit(void)
{
    return last_hit;
}

unsigned long clinic_token_cache_hits(void)
{
    unsigned long n;

    pthread_mutex_lock(&cache_lock);
    n = cache_hits;
    pthread_mutex_unlock(&cache_lock);
    return n;
}

int clinic_claim_equals(json_t *claims, const char *name, const char *value)
{
    json_t *v = json_object_get(claims, name);
    char num[32];

    if (json_is_string(v))
        return strcmp(json_string_value(v), value) == 0;
    if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return strcmp(num, value) == 0;
    }
    return 0;
}
