/*
 * Query-string parameters (docs/API.md §5). No httpd headers.
 */
#include <string.h>

#include "query.h"

const char *clinic_query_param(const char *query, const char *name, size_t *len, int *count)
{
    size_t n = strlen(name);
    const char *q = query, *found = NULL;

    *count = 0;
    while (q && *q) {
        const char *end = q + strcspn(q, "&;");

        if (!strncmp(q, name, n) && (q[n] == '=' || q + n == end)) {
            if (!found) {
                found = q[n] == '=' ? q + n + 1 : q + n;
                *len = (size_t)(end - found);
            }
            ++*count;
        }
        q = *end ? end + 1 : end;
    }
    return found;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int clinic_form_decode(char *s)
{
    char *out = s;
    int bad = 0;

    for (; *s; s++, out++) {
        int hi, lo;

        if (*s == '+') {
            *out = ' ';
        } else if (*s != '%') {
            *out = *s;
        } else if ((hi = hexval(s[1])) < 0 || (lo = hexval(s[2])) < 0) {
            *out = '%';
            bad = 1;
        } else {
            *out = (char)(hi * 16 + lo);
            bad |= *out == '\0';
            s += 2;
        }
    }
    *out = '\0';
    return bad ? -1 : 0;
}
