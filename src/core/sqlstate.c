/*
 * SQLSTATE classification (docs/API.md §8). No httpd headers.
 */
#include <string.h>

#include "sqlstate.h"

void clinic_sqlstate(const char *msg, char out[6])
{
    const char *p = msg ? strstr(msg, ":  ") : NULL;

    out[0] = '\0';
    if (p && strlen(p + 3) > 5 && p[8] == ':') {
        memcpy(out, p + 3, 5);
        out[5] = '\0';
    }
}

int clinic_sqlstate_is_transient(const char *st)
{
    static const char *const codes[] = {"57014", "55P03", "40001", "40P01", "57P01",
                                        "57P02", "57P03", NULL};
    int i;

    if (!strncmp(st, "08", 2) || !strncmp(st, "53", 2))
        return 1;
    for (i = 0; codes[i]; i++)
        if (!strcmp(st, codes[i]))
            return 1;
    return 0;
}
