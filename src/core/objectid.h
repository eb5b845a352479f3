/*
 * MongoDB-style ObjectIds: 4-byte big-endian seconds, 5 random bytes drawn
 * once per process, a 3-byte counter that starts at a random value. Unique
 * across a farm without coordination. No httpd headers.
 */
#ifndef CLINIC_OBJECTID_H
#define CLINIC_OBJECTID_H

#include <stdint.h>

#define CLINIC_OBJECTID_LEN 24

/* Draw this process's random bytes and counter start from the kernel's
 * CSPRNG. Call once per process (httpd: child_init), before threads use
 * clinic_objectid_new. 0 ok, -1 if no randomness could be had. */
int clinic_objectid_init(void);

/* Write 24 lowercase hex digits and a NUL into out; thread-safe. -1 (and
 * nothing written) when clinic_objectid_init has not succeeded. */
int clinic_objectid_new(uint32_t seconds, char out[CLINIC_OBJECTID_LEN + 1]);

#endif
