/*
 * Bearer-token verification: the algorithm is pinned before any signature
 * work, the key is chosen from a ready-to-verify set (by `kid` for a JWKS),
 * keyset.c checks the signature with OpenSSL, and the registered claims are
 * checked here.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

json_t *clinic_jws_payload(const char *dot1, const char *dot2)
{
    unsigned char buf[CLINIC_TOKEN_MAX];
    long got = clinic_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), buf);
    json_t *claims = got > 0 ? json_loadb((const char *)buf, (size_t)got, JSON_REJECT_DUPLICATES,
                                          NULL) : NULL;

    if (json_is_object(claims))
        return claims;
    json_decref(claims);
    return NULL;
}

/* The signature over tok[0..dot2) checked with the chosen key, then the
 * claims read from the very payload bytes it covers, with duplicate names
 * rejected (an ambiguous token is refused). */
static json_t *verified_claims(const clinic_token_policy_t *p, const clinic_vkey_t *k,
                               const char *tok, const char *dot1, const char *dot2,
                               const char *end, const char **why)
{
    unsigned char buf[CLINIC_TOKEN_MAX];
    long got;
    json_t *claims;

    got = clinic_b64url_decode(dot2 + 1, (size_t)(end - dot2 - 1), buf);
    if (got <= 0 || !clinic_keyset_verify(p->keys, k, (const unsigned char *)tok,
                                          (size_t)(dot2 - tok), buf, (size_t)got)) {
        *why = "signature or encoding invalid";
        return NULL;
    }
    if (!(claims = clinic_jws_payload(dot1, dot2)))
        *why = "claims are not one JSON object";
    return claims;
}

/* RFC 7515 4.1.11: a JWS whose "crit" names extensions the recipient does
 * not understand is invalid; this verifier understands none. RFC 7797's
 * unencoded payload ("b64": false) is one of them. */
static int header_extensions_ok(json_t *hdr)
{
    json_t *b64 = json_object_get(hdr, "b64");

    return !json_object_get(hdr, "crit") && (!b64 || json_is_true(b64));
}

/* Three base64url segments, at most CLINIC_TOKEN_MAX bytes: the two dots. */
static int split_token(const char *tok, size_t len, const char **dot1, const char **dot2,
                       const char **why)
{
    size_t i;

    if (len > CLINIC_TOKEN_MAX) {
        *why = "token too long";
        return -1;
    }
    *dot1 = memchr(tok, '.', len);
    *dot2 = *dot1 ? memchr(*dot1 + 1, '.', len - (size_t)(*dot1 + 1 - tok)) : NULL;
    if (!*dot2 || memchr(*dot2 + 1, '.', len - (size_t)(*dot2 + 1 - tok))) {
        *why = "not three segments";
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (tok[i] != '.' && !is_b64url(tok[i])) {
            *why = "bad character";
            return -1;
        }
    }
    return 0;
}

/* The verified claims against the policy: exp/nbf/iat, iss, aud. */
static int check_claims(const clinic_token_policy_t *p, json_t *c, long now, const char **why)
{
    if (check_times(c, now, p->leeway, why) != 0)
        return -1;
    if (p->issuer) {
        json_t *iss = json_object_get(c, "iss");
        if (!json_is_string(iss) || strcmp(json_string_value(iss), p->issuer) != 0) {
            *why = "wrong iss";
            return -1;
        }
    }
    if (p->audience && !check_aud(c, p->audience)) {
        *why = "wrong aud";
        return -1;
    }
    return 0;
}

int clinic_token_verify(const clinic_token_policy_t *p, const char *tok,
                        size_t len, long now, json_t **claims,
                        const char **why)
{
    const char *dot1, *dot2, *kid = NULL;
    const clinic_vkey_t *key;
    int unknown = 0, rc = -1;
    json_t *hdr, *alg, *jkid, *c = NULL;

    *claims = NULL;
    if (split_token(tok, len, &dot1, &dot2, why) != 0)
        return -1;
    hdr = parse_header(tok, (size_t)(dot1 - tok));
    alg = json_object_get(hdr, "alg");
    jkid = json_object_get(hdr, "kid");
    if (!json_is_object(hdr) || !json_is_string(alg) || (jkid && !json_is_string(jkid))) {
        *why = "bad header";
        goto out;
    }
    /* The algorithm is pinned before any signature work. */
    if (strcmp(json_string_value(alg), p->alg) != 0 || !p->keys ||
        strcmp(p->keys->alg, p->alg) != 0) {
        *why = "algorithm mismatch";
        goto out;
    }
    if (!header_extensions_ok(hdr)) {
        *why = "header has crit or b64 (unsupported extension)";
        goto out;
    }
    kid = jkid ? json_string_value(jkid) : NULL;
    if (!(key = clinic_keyset_pick(p->keys, kid, &unknown, why))) {
        if (unknown)
            rc = CLINIC_TOKEN_UNKNOWN_KID;
        goto out;
    }
    c = verified_claims(p, key, tok, dot1, dot2, tok + len, why);
    if (!c)
        goto out;
    if (check_claims(p, c, now, why) != 0)
        goto bad;
    json_decref(hdr);
    *claims = c;
    return 0;
bad:
    json_decref(c);
out:
    json_decref(hdr);
    return rc;
}

/* ---- the cache of verified tokens ---- */

#define CACHE_SLOTS 1024   /* direct-mapped; a collision just evicts */


/* Policies are compared by identity of their configuration strings, which
 * live as long as the configuration, and by the key set's id, unique in the
 * process: after a rotation the new set has a new id, so no token verified
 * under the old set (perhaps by a key since removed) is taken from here. */
typedef struct {
    const char *alg, *issuer, *audience;
    unsigned long keys_id;
    long leeway;
} policy_tag_t;

static policy_tag_t tag_of(const clinic_token_policy_t *p)
{
    policy_tag_t t = { p->alg, p->issuer, p->audience, p->keys ? p->keys->id : 0, p->leeway };

    return t;
}

static int same_policy(const policy_tag_t *a, const clinic_token_policy_t *p)
{
    return p->keys && a->alg == p->alg && a->keys_id == p->keys->id &&
           a->issuer == p->issuer && a->audience == p->audience && a->leeway == p->leeway;
}

/* A slot keeps its own copy of the token, compared in full on a hit: a
 * token is taken from here only when it is byte for byte one verified
 * before (no digest whose collision could stand in for a signature). The
 * slot is picked by a hash of the token's last bytes, its signature, which
 * differ between any two tokens a key signed; a crafted collision only
 * evicts. Tokens longer than CACHED_MAX are verified every time. */
#define CACHED_MAX 2048

typedef struct {
    char *token;                    /* malloc'd copy; NULL: empty slot */
    size_t len;
    policy_tag_t policy;            /* the policy it was verified under */
    json_int_t exp;
    json_t *claims;
} cache_slot_t;

static cache_slot_t cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long cache_hits;
static __thread int last_hit;   /* for clinic_token_last_was_hit */

/* FNV-1a over the length and the last 32 bytes. */
static cache_slot_t *slot_of(const char *tok, size_t len)
{
    uint64_t h = 14695981039346656037ULL ^ len;
    size_t i = len > 32 ? len - 32 : 0;

    for (; i < len; i++)
        h = (h ^ (unsigned char)tok[i]) * 1099511628211ULL;
    return &cache[(h ^ (h >> 32)) % CACHE_SLOTS];
}

/* Under cache_lock: the claims of tok if this slot holds it, verified under
 * this policy and not expired. */
static json_t *lookup(const cache_slot_t *s, const clinic_token_policy_t *p, const char *tok,
                      size_t len, long now)
{
    if (s->claims && s->len == len && same_policy(&s->policy, p) &&
        (json_int_t)now - p->leeway < s->exp && memcmp(s->token, tok, len) == 0)
        return json_incref(s->claims);
    return NULL;
}

int clinic_token_verify_cached(const clinic_token_policy_t *p, const char *tok,
                               size_t len, long now, json_t **claims,
                               const char **why)
{
    cache_slot_t *s;
    json_t *old_claims;
    char *copy, *old_token;
    int rc;

    last_hit = 0;
    if (len > CACHED_MAX)
        return clinic_token_verify(p, tok, len, now, claims, why);
    s = slot_of(tok, len);
    pthread_mutex_lock(&cache_lock);
    if ((*claims = lookup(s, p, tok, len, now)) != NULL) {
        cache_hits++;
        last_hit = 1;
        pthread_mutex_unlock(&cache_lock);
        return 0;
    }
    pthread_mutex_unlock(&cache_lock);

    if ((rc = clinic_token_verify(p, tok, len, now, claims, why)) != 0)
        return rc;
    if (!(copy = malloc(len)))
        return 0;   /* verified, just not kept */
    memcpy(copy, tok, len);
    pthread_mutex_lock(&cache_lock);
    old_claims = s->claims;
    old_token = s->token;
    s->token = copy;
    s->len = len;
    s->policy = tag_of(p);
    s->exp = json_integer_value(json_object_get(*claims, "exp"));
    s->claims = json_incref(*claims);
    pthread_mutex_unlock(&cache_lock);
    json_decref(old_claims);
    free(old_token);
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

int clinic_jws_split(const char *tok, size_t len, const char **dot1, const char **dot2,
                     const char **why)
{
    return split_token(tok, len, dot1, dot2, why);
}

json_t *clinic_jws_header(const char *tok, size_t n)
{
    return parse_header(tok, n);
}

int clinic_jws_header_is_plain(json_t *hdr)
{
    return header_extensions_ok(hdr);
}
