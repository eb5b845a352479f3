/*
 * Reading verified token claims for Apache: the claim that names the user
 * (ClinicUserClaim) and the test behind `Require clinic-claim NAME VALUE...`.
 * No httpd headers, so that the unit tests link it alone.
 */
#ifndef CLINIC_CLAIMS_H
#define CLINIC_CLAIMS_H

#include <stddef.h>
#include <jansson.h>

#define CLINIC_CLAIM_TEXT_MAX 32   /* room for an integer claim as decimal text */

/* The claim called name: the top-level member of that exact name if there
 * is one, else the dotted path through nested objects
 * ("realm_access.roles" is claims.realm_access.roles). NULL when absent. */
json_t *clinic_claim_get(json_t *claims, const char *name);

/* A string claim as is, an integer claim as decimal text (in buf), true and
 * false as "true"/"false"; NULL for anything else. */
const char *clinic_claim_scalar(json_t *v, char buf[CLINIC_CLAIM_TEXT_MAX]);

/* Does claim `name` hold any of values[0..n)? A string claim equals the
 * value, except `scope` and `scp`, which are space-separated lists that
 * contain it; an array contains it as one element; integers and booleans
 * compare as their text (clinic_claim_scalar). Objects and null never match. */
int clinic_claim_has(json_t *claims, const char *name, const char *const *values, size_t n);

#endif
