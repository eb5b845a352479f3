#ifndef CLINIC_JWK_H
#define CLINIC_JWK_H

#include <stddef.h>

/* The JWT algorithms the module knows, NULL-terminated: the one list
 * (ClinicJWTAlgorithm takes exactly these). */
extern const char *const clinic_jwt_algs[];

typedef enum { CLINIC_KTY_RSA = 1, CLINIC_KTY_EC, CLINIC_KTY_OCT } clinic_kty_t;

typedef struct {
    char *kid;            /* NULL if the JWK has no "kid" */
    char *alg;            /* the JWK's optional "alg" member, or NULL */
    clinic_kty_t kty;
    int ec_bits;          /* 256, 384 or 521 for EC keys (P-256, P-384, P-521), else 0 */
    unsigned char *key;   /* RSA/EC: a PEM "PUBLIC KEY" (SubjectPublicKeyInfo) text, NUL-terminated;
                             OCT: the raw secret bytes (also followed by a NUL) */
    size_t key_len;       /* length of key (without the NUL) */
} clinic_jwk_t;

/* Parse a JWKS document {"keys":[...]}. Keys with "use" other than "sig" are skipped; keys of
   unsupported kty/crv are skipped (not an error). A JWK with kty RSA needs n,e (n of at most
   CLINIC_RSA_MAX_BITS bits, else the document is refused, saying so); EC needs crv
   (P-256/P-384/P-521), x, y (checked lengths, point checked on curve); oct needs k. Private
   members (d, p, ...) are ignored; never exported. On success returns 0 and a malloc'd array
   (*keys, *n). On malformed JSON / no usable key / a malformed supported key returns -1 and
   writes a short human message into err. */
int clinic_jwks_parse(const char *json, size_t len, clinic_jwk_t **keys, size_t *n,
                      char *err, size_t errlen);
void clinic_jwks_free(clinic_jwk_t *keys, size_t n);

/* The largest RSA modulus taken, from a file or a provider: a check against a 16,384-bit key
   costs about sixty 2,048-bit ones (a forged token naming it needs no valid signature). */
#define CLINIC_RSA_MAX_BITS 8192

/* Does this key material fit a JWT algorithm name ("HS256".."ES512")? For RS*: a PEM public key
   (SubjectPublicKeyInfo or "RSA PUBLIC KEY") that is RSA (2048 to CLINIC_RSA_MAX_BITS bits); ES256/384/512: a PEM
   EC public key on P-256/P-384/P-521 respectively; HS*: a non-empty byte string that is not a
   PEM block, a JWK or a JWKS (public key material: whoever has it could mint tokens).
   Returns 1 fits, 0 not, and writes why into err (if non-NULL) when 0. */
int clinic_key_fits_alg(const unsigned char *key, size_t len, const char *alg,
                        char *err, size_t errlen);

/* printf into err[0..errlen) when err is not NULL (the key parsers' error messages). */
void clinic_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The PEM "PUBLIC KEY" / "RSA PUBLIC KEY" in key[0..len) as an EVP_PKEY (caller frees), NULL
   for anything else (a private key included) or trailing bytes after the DER structure. */
struct evp_pkey_st;
struct evp_pkey_st *clinic_pem_public_key(const unsigned char *key, size_t len);

/* Does a parsed JWK fit alg (same rules; kty OCT fits HS*; if jwk->alg is set it must equal
   alg)? 1/0 */
int clinic_jwk_fits_alg(const clinic_jwk_t *k, const char *alg);

#endif
