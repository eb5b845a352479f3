/*
 * The Content-Type check both routes make (docs/API.md §4). No httpd headers.
 */
#include <string.h>
#include <strings.h>

#include "mediatype.h"

/* One ";name=value" parameter starting at p (after its ';'), ending at end:
 * only a charset is looked at, and it must be utf-8. */
static int param_ok(const char *name, const char *end)
{
    const char *val;

    name += strspn(name, " \t");
    if (strncasecmp(name, "charset", 7) != 0)
        return 1;
    val = name + 7 + strspn(name + 7, " \t");
    if (*val != '=')
        return 0;
    val++;
    val += strspn(val, " \t\"");
    return strncasecmp(val, "utf-8", 5) == 0 && (val + 5 + strspn(val + 5, " \t\"")) == end;
}

int clinic_media_type_is_json(const char *ct)
{
    const char *p;
    int ok;

    if (!ct)
        return 0;
    p = ct + strspn(ct, " \t");
    if (strncasecmp(p, "application/json", 16) != 0)
        return 0;
    p += 16;
    p += strspn(p, " \t");
    ok = (*p == '\0' || *p == ';');
    while (ok && *p == ';') {
        const char *name = ++p, *end = strchr(name, ';');

        if (!end)
            end = name + strlen(name);
        ok = param_ok(name, end);
        p = end;
    }
    return ok;
}
