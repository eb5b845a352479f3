/*
 * PostgreSQL failures sorted by SQLSTATE, as libpq's verbose messages carry
 * it (docs/API.md §8). Conventions: core.h.
 */
#ifndef CLINIC_SQLSTATE_H
#define CLINIC_SQLSTATE_H

#include "core.h"

/* The SQLSTATE of a verbose libpq message ("ERROR:  57014: canceling ..."),
 * NUL-terminated into out; "" when msg is NULL or carries none. */
void clinic_sqlstate(const char *msg, char out[6]);

/* Does this SQLSTATE say "try again later" rather than "this request is
 * wrong"? Connection loss (08...), insufficient resources (53...), statement
 * timeout (57014), lock not available (55P03), serialization failure
 * (40001), deadlock (40P01), server shutting down (57P01-57P03): 1, else 0. */
int clinic_sqlstate_is_transient(const char *st);

#endif
