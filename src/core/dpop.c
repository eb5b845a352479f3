/*
 * DPoP proofs (RFC 9449 §4.3) and the thumbprints that bind a token to a
 * key (RFC 7638, cnf.jkt) or to a TLS client certificate (RFC 8705,
 * cnf.x5t#S256). The proof's algorithm is checked against the accepted
 * list before any signature work; its claims are read from the verified
 * payload only, with duplicate names refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pthread.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "b64url.h"
#include "dpop.h"
#include "keyset.h"
#include "token.h"

const char *const clinic_dpop_algs[] = { "RS256", "RS384", "RS512", "ES256", "ES384", "ES512",
                                         NULL };

/* JWK members that hold private key material (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
static const char *const private_members[] = { "d", "p", "q", "dp", "dq", "qi", "oth", "k",
                                               NULL };

int clinic_dpop_alg_is_asymmetric(const char *alg)
{
    int i;

    for (i = 0; alg && clinic_dpop_algs[i]; i++)
        if (!strcmp(alg, clinic_dpop_algs[i]))
            return 1;
    return 0;
}

void clinic_sha256_b64url(const void *data, size_t len, char out[CLINIC_SHA256_B64])
{
    unsigned char md[SHA256_DIGEST_LENGTH];

    SHA256(data, len, md);
    clinic_b64url_encode(md, sizeof md, out);
}

int clinic_jwk_thumbprint(json_t *jwk, char out[CLINIC_SHA256_B64])
{
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    const char *const ec[] = { "crv", "kty", "x", "y", NULL };
    const char *const rsa[] = { "e", "kty", "n", NULL };
    const char *const *names = kty && !strcmp(kty, "EC") ? ec : kty && !strcmp(kty, "RSA") ? rsa
                                                                                          : NULL;
    json_t *members;
    char *text;
    int i;

    if (!names || !(members = json_object()))
        return -1;
    for (i = 0; names[i]; i++) {
        json_t *v = json_object_get(jwk, names[i]);
        if (!json_is_string(v) || json_object_set(members, names[i], v) != 0) {
            json_decref(members);
            return -1;
        }
    }
    /* RFC 7638 §3: the required members only, sorted, no whitespace. */
    text = json_dumps(members, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(members);
    if (!text)
        return -1;
    clinic_sha256_b64url(text, strlen(text), out);
    free(text);
    return 0;
}

int clinic_cert_thumbprint(const char *pem, size_t len, char out[CLINIC_SHA256_B64])
{
    BIO *bio = pem && len ? BIO_new_mem_buf(pem, (int)len) : NULL;
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL;
    int n = cert ? i2d_X509(cert, &der) : -1;

    if (n > 0)
        clinic_sha256_b64url(der, (size_t)n, out);
    OPENSSL_free(der);
    X509_free(cert);
    BIO_free(bio);
    return n > 0 ? 0 : -1;
}

/* ---- htu ---- */

typedef struct {
    char *buf;
    size_t n, cap;
} text_t;

static int put(text_t *t, char ch)
{
    if (t->n + 1 >= t->cap)
        return -1;
    t->buf[t->n++] = ch;
    t->buf[t->n] = '\0';
    return 0;
}

static int hexval(char ch)
{
    static const char digits[] = "0123456789abcdef";
    const char *d = ch ? strchr(digits, ch | 0x20) : NULL;   /* A-F as a-f */

    return d ? (int)(d - digits) : -1;
}

static int unreserved(int ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* The path up to ?, # or the end: escapes of unreserved characters decoded,
 * the others in upper case; empty is "/". */
static int put_path(text_t *t, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int hi, lo, rc = 0;

    if (*s != '/' && put(t, '/') != 0)
        return -1;
    for (; *s && *s != '?' && *s != '#' && rc == 0; s++) {
        if (*s != '%') {
            rc = put(t, *s);
            continue;
        }
        if ((hi = hexval(s[1])) < 0 || (lo = hexval(s[2])) < 0)
            return -1;
        if (unreserved(hi * 16 + lo))
            rc = put(t, (char)(hi * 16 + lo));
        else
            rc = put(t, '%') || put(t, hex[hi]) || put(t, hex[lo]);
        s += 2;
    }
    return rc;
}

/* RFC 3986 §5.2.4: "." and ".." segments removed from a path that starts
 * with '/', in place. */
static void remove_dots(char *path)
{
    char *in = path, *out = path;

    while (*in) {
        size_t len = strcspn(in + 1, "/");
        int dot = len == 1 && in[1] == '.', dotdot = len == 2 && in[1] == '.' && in[2] == '.';

        if (dot || dotdot) {
            while (dotdot && out > path && *--out != '/')
                ;                       /* the last segment written goes */
            in += len + 1;
            if (!*in)
                *out++ = '/';           /* "/a/." is "/a/" */
            continue;
        }
        memmove(out, in, len + 1);
        out += len + 1;
        in += len + 1;
    }
    if (out == path)
        *out++ = '/';
    *out = '\0';
}

int clinic_htu_normalise(const char *in, char *out, size_t outlen)
{
    text_t t = { out, 0, outlen };
    const char *host, *end, *colon;
    size_t path;
    int https;

    if (!in || !outlen)
        return -1;
    out[0] = '\0';
    https = !strncasecmp(in, "https://", 8);
    if (!https && strncasecmp(in, "http://", 7))
        return -1;
    host = in + (https ? 8 : 7);
    end = host + strcspn(host, "/?#");
    colon = memchr(host, ':', (size_t)(end - host));
    if (host == end || colon == host || memchr(host, '@', (size_t)(end - host)) ||
        memchr(host, '[', (size_t)(end - host)))
        return -1;   /* no host, userinfo, IPv6 literals: not a route's URL */
    if (snprintf(out, outlen, "%s://", https ? "https" : "http") >= (int)outlen)
        return -1;
    t.n = strlen(out);
    for (; host < (colon ? colon : end); host++)
        if (put(&t, (char)(*host >= 'A' && *host <= 'Z' ? *host + 32 : *host)) != 0)
            return -1;
    if (colon && colon + 1 < end) {
        long port = strtol(colon + 1, NULL, 10);
        if (strspn(colon + 1, "0123456789") != (size_t)(end - colon - 1) || port < 1 ||
            port > 65535)
            return -1;
        if (port != (https ? 443 : 80) &&
            (put(&t, ':') != 0 || snprintf(out + t.n, outlen - t.n, "%ld", port) >=
                                      (int)(outlen - t.n)))
            return -1;
        t.n = strlen(out);
    }
    path = t.n;
    if (put_path(&t, end) != 0)
        return -1;
    remove_dots(out + path);
    return 0;
}

/* ---- the proof ---- */

/* typ, alg (pinned: in the list, asymmetric), a public jwk, no extension. */
static int check_header(const clinic_dpop_policy_t *p, json_t *hdr, const char **why)
{
    const char *typ = json_string_value(json_object_get(hdr, "typ"));
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    json_t *jwk = json_object_get(hdr, "jwk");
    int i, listed = 0;

    if (!json_is_object(hdr) || !typ || strcasecmp(typ, "dpop+jwt")) {
        *why = "DPoP proof: typ is not dpop+jwt";
        return -1;
    }
    for (i = 0; alg && p->algs[i]; i++)
        listed |= !strcmp(alg, p->algs[i]);
    if (!listed || !clinic_dpop_alg_is_asymmetric(alg)) {
        *why = "DPoP proof: algorithm not accepted";
        return -1;
    }
    if (!json_is_object(jwk) || !clinic_jws_header_is_plain(hdr)) {
        *why = "DPoP proof: no jwk, or an extension (crit, b64)";
        return -1;
    }
    for (i = 0; private_members[i]; i++) {
        if (json_object_get(jwk, private_members[i])) {
            *why = "DPoP proof: jwk holds a private key";
            return -1;
        }
    }
    return 0;
}

/* Proof keys already made into key sets, per process: a client signs every
 * proof with the same key, and making the set (the JWK's point or modulus
 * checked, an OpenSSL key built) costs several times the signature check.
 * A slot is taken only for the same thumbprint (SHA-256 of the key's
 * required members: the same public key) and algorithm; direct-mapped, a
 * collision evicts. */
#define KEY_SLOTS 256

static struct {
    char jkt[CLINIC_SHA256_B64];
    int alg;
    clinic_keyset_t *ks;
} key_cache[KEY_SLOTS];
static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;

/* Look up (ks NULL) or store (ks given) jkt's set for alg; a new reference or NULL. */
static clinic_keyset_t *key_slot(const char *jkt, int alg, clinic_keyset_t *ks)
{
    unsigned h = 2166136261u;
    clinic_keyset_t *got = NULL, *old = NULL;
    const char *c;

    for (c = jkt; *c; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    h %= KEY_SLOTS;
    pthread_mutex_lock(&key_lock);
    if (ks) {
        old = key_cache[h].ks;
        memcpy(key_cache[h].jkt, jkt, sizeof key_cache[h].jkt);
        key_cache[h].alg = alg;
        key_cache[h].ks = clinic_keyset_ref(ks);
    } else if (key_cache[h].ks && key_cache[h].alg == alg && !strcmp(key_cache[h].jkt, jkt)) {
        got = clinic_keyset_ref(key_cache[h].ks);
    }
    pthread_mutex_unlock(&key_lock);
    clinic_keyset_unref(old);
    return got;
}

/* The header's jwk as a one-key set for alg, and its thumbprint. */
static clinic_keyset_t *proof_key(json_t *hdr, char jkt[CLINIC_SHA256_B64], const char **why)
{
    json_t *jwk = json_object_get(hdr, "jwk");
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    json_t *doc = NULL;
    char *text = NULL, err[128];
    clinic_keyset_t *ks = NULL;

    if (clinic_jwk_thumbprint(jwk, jkt) == 0 &&
        !(ks = key_slot(jkt, clinic_alg_index(alg), NULL)) &&
        (doc = json_pack("{s:[O]}", "keys", jwk)) && (text = json_dumps(doc, JSON_COMPACT)) &&
        (ks = clinic_keyset_from_doc(text, strlen(text), alg, err, sizeof err)) && ks->n == 1)
        key_slot(jkt, clinic_alg_index(alg), ks);
    free(text);
    json_decref(doc);
    if (ks && ks->n != 1) {
        clinic_keyset_unref(ks);
        ks = NULL;
    }
    if (!ks)
        *why = "DPoP proof: jwk is not a public key that fits alg";
    return ks;
}

/* The signature checked with the proof's own key, then the claims from the
 * very payload it covers. */
static json_t *signed_claims(const clinic_keyset_t *ks, const char *tok, const char *dot1,
                             const char *dot2, const char *end, const char **why)
{
    unsigned char buf[CLINIC_DPOP_PROOF_MAX];
    int unknown = 0;
    const clinic_vkey_t *k = clinic_keyset_pick(ks, NULL, &unknown, why);
    json_t *claims;
    long got;

    got = clinic_b64url_decode(dot2 + 1, (size_t)(end - dot2 - 1), buf);
    if (!k || got <= 0 || !clinic_keyset_verify(ks, k, (const unsigned char *)tok,
                                                (size_t)(dot2 - tok), buf, (size_t)got)) {
        *why = "DPoP proof: signature invalid";
        return NULL;
    }
    if (!(claims = clinic_jws_payload(dot1, dot2)))
        *why = "DPoP proof: claims are not one JSON object";
    return claims;
}

/* htu against the request's URL, both normalised. */
static int same_url(const char *htu, const char *url)
{
    char a[CLINIC_URL_MAX], b[CLINIC_URL_MAX];

    return htu && clinic_htu_normalise(htu, a, sizeof a) == 0 &&
           clinic_htu_normalise(url, b, sizeof b) == 0 && !strcmp(a, b);
}

static int check_claims(const clinic_dpop_policy_t *p, json_t *c, const clinic_dpop_request_t *q,
                        long now, const char **why)
{
    json_t *jti = json_object_get(c, "jti"), *iat = json_object_get(c, "iat");
    const char *htm = json_string_value(json_object_get(c, "htm"));
    const char *ath = json_string_value(json_object_get(c, "ath"));
    char want[CLINIC_SHA256_B64];

    if (!json_is_string(jti) || !json_string_length(jti) ||
        json_string_length(jti) > CLINIC_DPOP_JTI_MAX ||
        strlen(json_string_value(jti)) != json_string_length(jti))
        *why = "DPoP proof: no usable jti";
    else if (!htm || strcmp(htm, q->method))
        *why = "DPoP proof: htm is not the request's method";
    else if (!same_url(json_string_value(json_object_get(c, "htu")), q->url))
        *why = "DPoP proof: htu is not the request's URL";
    else if (!json_is_integer(iat))
        *why = "DPoP proof: iat is not an integer";
    else if (json_integer_value(iat) < (json_int_t)now - p->window)
        *why = "DPoP proof: iat too old";
    else if (json_integer_value(iat) > (json_int_t)now + p->window)
        *why = "DPoP proof: iat in the future";
    else if (q->token && (clinic_sha256_b64url(q->token, q->token_len, want), !ath ||
                          strcmp(ath, want)))
        *why = "DPoP proof: ath is not the access token's hash";
    else
        return 0;
    return -1;
}

/* hex SHA-256 of the thumbprint and the jti: a jti is scoped by the key. */
static void replay_key(const char *jkt, json_t *jti, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char buf[CLINIC_SHA256_B64 + 1 + CLINIC_DPOP_JTI_MAX];
    size_t n = strlen(jkt);
    int i;

    memcpy(buf, jkt, n);
    buf[n++] = '\n';
    memcpy(buf + n, json_string_value(jti), json_string_length(jti));
    SHA256((const unsigned char *)buf, n + json_string_length(jti), md);
    for (i = 0; i < SHA256_DIGEST_LENGTH; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

int clinic_dpop_verify(const clinic_dpop_policy_t *p, const char *proof, size_t len,
                       const clinic_dpop_request_t *q, long now, clinic_dpop_proof_t *out,
                       const char **why)
{
    const char *dot1, *dot2;
    clinic_keyset_t *ks = NULL;
    json_t *hdr, *claims = NULL;
    int rc = -1;

    if (len > CLINIC_DPOP_PROOF_MAX || clinic_jws_split(proof, len, &dot1, &dot2, why) != 0) {
        *why = "DPoP proof: not a compact JWS";
        return -1;
    }
    hdr = clinic_jws_header(proof, (size_t)(dot1 - proof));
    if (check_header(p, hdr, why) == 0 && (ks = proof_key(hdr, out->jkt, why)) &&
        (claims = signed_claims(ks, proof, dot1, dot2, proof + len, why)) &&
        check_claims(p, claims, q, now, why) == 0) {
        replay_key(out->jkt, json_object_get(claims, "jti"), out->replay_key);
        out->iat = (long)json_integer_value(json_object_get(claims, "iat"));
        rc = 0;
    }
    json_decref(claims);
    clinic_keyset_unref(ks);
    json_decref(hdr);
    return rc;
}
