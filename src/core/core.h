/*
 * mod_clinic's core: the httpd-free part of the module (src/core/), built into
 * one static library that the module, the unit tests, the fuzz targets and
 * tools/ link. The build compiles it without httpd's or APR's include paths,
 * so an httpd header here fails the build: the core may use the C library,
 * jansson, libjwt and OpenSSL, nothing else.
 *
 * Return convention of the core (every header of src/core/ follows it):
 *  - a function that does something returns 0 when it did it and -1 when it
 *    could not, leaving its outputs untouched (or says which it fills), and
 *    writes a short reason into an err buffer where one is given; a failure
 *    the caller must tell apart has a negative constant of its own, named in
 *    its header (token.h's CLINIC_TOKEN_UNKNOWN_KID);
 *  - a function that answers a question, named as one (..._fits_...,
 *    ..._equals, ..._valid, ..._is_..., clinic_bearer_token: "is there a
 *    token?") returns 1 for yes and 0 for no;
 *  - sizes and lengths are size_t, instants clinic_time_t (datetime.h).
 * Nothing here logs, allocates from a pool, or keeps a pointer it was given.
 */
#ifndef CLINIC_CORE_H
#define CLINIC_CORE_H

#include <stddef.h>
#include <stdint.h>

#endif
