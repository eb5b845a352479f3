#ifndef CLINIC_B64URL_H
#define CLINIC_B64URL_H

#include <stddef.h>

/* Decode base64url s[0..len) into out (needs (len*3)/4+3 bytes). Correct '=' padding is
   accepted; non-zero unused trailing bits (a non-canonical encoding) are rejected.
   Returns decoded length, or -1 on any invalid char / impossible length. */
long clinic_b64url_decode(const char *s, size_t len, unsigned char *out);

/* Encode; out needs ((len+2)/3)*4+1 bytes; NUL-terminates; returns length. No padding. */
size_t clinic_b64url_encode(const unsigned char *in, size_t len, char *out);

#endif
