/*
 * The request's Content-Type (docs/API.md §4). Conventions: core.h.
 */
#ifndef CLINIC_MEDIATYPE_H
#define CLINIC_MEDIATYPE_H

#include "core.h"

/* Is this Content-Type value one the routes take: application/json (any
 * case, blanks around), with parameters after ';' where a charset, if any,
 * is utf-8 (any case, quoted or not)? NULL is not. 1 yes, 0 no. */
int clinic_media_type_is_json(const char *ct);

#endif
