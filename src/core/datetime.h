#ifndef CLINIC_DATETIME_H
#define CLINIC_DATETIME_H

#include <stddef.h>
#include <stdint.h>

/* An instant: microseconds since 1970-01-01T00:00:00Z. Offsets: seconds east of UTC. */
typedef int64_t clinic_time_t;
#define CLINIC_ISO_MAX 40   /* buffer size enough for any formatted value + NUL */

/* Parsers leave their outputs untouched when they return -1. */

/* "+HH:MM" or "-HH:MM", exactly 6 chars, HH 00-23, MM 00-59 -> seconds east of UTC. 0 ok, -1 bad. */
int clinic_parse_offset(const char *s, int *offset_sec);

/* A client-supplied visit date, s[0..len) (not necessarily NUL-terminated; NUL bytes -> reject).
   (a) "DD MMMM YYYY HH:mm" as moment.js writes it, e.g. "21 November 2026 14:05": day 1-2 digits,
       full English month name (ASCII case-insensitive), 4-digit year, hour 1-2 digits, minute 2 digits.
   (b) ISO 8601 "YYYY-MM-DDThh:mm[:ss[.f{1,6}]]" then optionally "Z", "z", "+HH:MM", "+HHMM", "+HH"
       (or '-'); separator 'T', 't' or one space.
   Naive values are in default_offset, which must be within +-86399 (else -1).
   Real calendar, year 0001-9999, hh 0-23, mm/ss 0-59. Anything else -> -1. 0 ok with *out set. */
int clinic_parse_visit_date(const char *s, size_t len, int default_offset, clinic_time_t *out);

/* A NUL-terminated timestamp read back from the database:
   PostgreSQL "YYYY-MM-DD HH:MM:SS[.f{1,6}][+HH|-HH[:MM[:SS]]]" (naive = UTC);
   SQLite "YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z" (the 'T' form requires Z); bare "YYYY-MM-DD" (midnight UTC).
   0 ok, -1 otherwise. */
int clinic_parse_db_timestamp(const char *s, clinic_time_t *out);

/* Format t in offset_sec as Python's datetime.isoformat() would, except "Z" for offset 0:
   "YYYY-MM-DDTHH:MM:SS[.ffffff]" then "Z" or "+HH:MM"/"-HH:MM" (":SS" appended if the offset has
   seconds). Fraction only when non-zero, always 6 digits. buf must hold CLINIC_ISO_MAX bytes.
   Writes NUL; returns length. If |offset_sec| >= 86400 or the local year is outside 0001-9999,
   writes "" and returns 0. */
size_t clinic_format_iso(clinic_time_t t, int offset_sec, char *buf);

/* "YYYY-MM-DD", exactly 10 chars at s[0..len), a real calendar date, year 0001-9999.
   0 ok, -1 bad. y/m/d may be NULL. */
int clinic_parse_date_ymd(const char *s, size_t len, int *y, int *m, int *d);

#endif
