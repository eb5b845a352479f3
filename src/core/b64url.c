#include "b64url.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int value_of(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

long clinic_b64url_decode(const char *s, size_t len, unsigned char *out)
{
    size_t i, pad = 0, n = 0;
    unsigned long acc = 0;
    int bits = 0;

    while (pad < 2 && len > 0 && s[len - 1] == '=') {
        len--;
        pad++;
    }
    if (len % 4 == 1 || (pad && (len + pad) % 4))
        return -1;
    for (i = 0; i < len; i++) {
        int v = value_of((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = ((acc << 6) | (unsigned long)v) & 0xfff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1UL << bits) - 1))
        return -1;
    return (long)n;
}

size_t clinic_b64url_encode(const unsigned char *in, size_t len, char *out)
{
    size_t i, n = 0;
    unsigned long acc = 0;
    int bits = 0;

    for (i = 0; i < len; i++) {
        acc = ((acc << 8) | in[i]) & 0xfff;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[n++] = alphabet[(acc >> bits) & 63];
        }
    }
    if (bits)
        out[n++] = alphabet[(acc << (6 - bits)) & 63];
    out[n] = '\0';
    return n;
}
