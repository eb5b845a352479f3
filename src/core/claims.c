/*
 * Claim lookup (exact name, else a dotted path) and the membership test of
 * `Require clinic-claim`, on claims that were verified already.
 */
#include <stdio.h>
#include <string.h>

#include "claims.h"

json_t *clinic_claim_get(json_t *claims, const char *name)
{
    json_t *v = json_object_get(claims, name);
    const char *seg = name, *dot;

    if (v || !strchr(name, '.'))
        return v;
    v = claims;
    while (v) {
        dot = strchr(seg, '.');
        if (dot == seg || (!dot && !*seg) || !json_is_object(v))
            return NULL;   /* an empty segment, or a path through a non-object */
        v = dot ? json_object_getn(v, seg, (size_t)(dot - seg)) : json_object_get(v, seg);
        if (!dot)
            return v;
        seg = dot + 1;
    }
    return NULL;
}

const char *clinic_claim_scalar(json_t *v, char buf[CLINIC_CLAIM_TEXT_MAX])
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, CLINIC_CLAIM_TEXT_MAX, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    return NULL;
}

static int one_of(const char *s, size_t len, const char *const *values, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strlen(values[i]) == len && memcmp(values[i], s, len) == 0)
            return 1;
    return 0;
}

/* A space-separated list (RFC 8693's scope) s[0..len) containing one of
 * the values. */
static int list_has(const char *s, size_t len, const char *const *values, size_t n)
{
    const char *end = s + len, *sp;

    while (s < end) {
        if (*s == ' ') {
            s++;
            continue;
        }
        sp = memchr(s, ' ', (size_t)(end - s));
        if (!sp)
            sp = end;
        if (one_of(s, (size_t)(sp - s), values, n))
            return 1;
        s = sp;
    }
    return 0;
}

/* Text and length of a scalar claim (strings may hold \u0000). */
static const char *scalar_len(json_t *v, char buf[CLINIC_CLAIM_TEXT_MAX], size_t *len)
{
    const char *s = clinic_claim_scalar(v, buf);

    if (s)
        *len = json_is_string(v) ? json_string_length(v) : strlen(s);
    return s;
}

int clinic_claim_has(json_t *claims, const char *name, const char *const *values, size_t n)
{
    json_t *v = clinic_claim_get(claims, name), *item;
    char buf[CLINIC_CLAIM_TEXT_MAX];
    const char *s;
    size_t i, len;

    if (json_is_array(v)) {
        json_array_foreach(v, i, item) {
            if ((s = scalar_len(item, buf, &len)) && one_of(s, len, values, n))
                return 1;
        }
        return 0;
    }
    if (!(s = scalar_len(v, buf, &len)))
        return 0;
    if (json_is_string(v) && (!strcmp(name, "scope") || !strcmp(name, "scp")))
        return list_has(s, len, values, n);
    return one_of(s, len, values, n);
}
