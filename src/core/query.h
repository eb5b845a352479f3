/*
 * The query string of add-and-link (docs/API.md §5: `?uid=`), decoded as
 * httpd's ap_unescape_urlencoded does. Conventions: core.h.
 */
#ifndef CLINIC_QUERY_H
#define CLINIC_QUERY_H

#include "core.h"

/* The raw (still encoded) value of the first `name` parameter of query
 * (parameters separated by '&' or ';'; `name=value`, or a bare `name` whose
 * value is empty): a pointer into query and its length in *len, and in
 * *count how many times the query gives the parameter. NULL (and *count 0)
 * when query is NULL or has no such parameter. */
const char *clinic_query_param(const char *query, const char *name, size_t *len, int *count);

/* Decode an application/x-www-form-urlencoded value in place: '+' is a
 * space, %XX a byte. 0 ok; -1 when a '%' is not followed by two hex digits
 * or decodes to NUL (s then holds a partly decoded text). */
int clinic_form_decode(char *s);

#endif
