/*
 * libFuzzer target for src/core/datetime.c.
 *
 * The input is one candidate date string, given to every parser:
 *   clinic_parse_visit_date  on the raw bytes (an exact-size, NOT NUL-terminated copy, so an
 *                            over-read is an ASan report), at several default offsets;
 *   clinic_parse_db_timestamp and clinic_parse_offset on a NUL-terminated copy;
 *   clinic_parse_date_ymd    on the raw bytes.
 *
 * Properties checked (abort() on violation, so libFuzzer saves the input):
 *   - a parser that returns -1 leaves its outputs untouched;
 *   - a naive visit date moves with the default offset, an explicit one does not;
 *   - round trip: clinic_format_iso of a parsed instant at several offsets, parsed back with
 *     clinic_parse_visit_date, gives the same instant (and, with 'T' -> ' ' and no 'Z', the same
 *     through clinic_parse_db_timestamp, which also covers offsets with seconds);
 *   - clinic_format_iso writes "" exactly when the local year is outside 0001-9999;
 *   - an accepted "+HH:MM" / "YYYY-MM-DD" reads back as the same text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datetime.h"

#define SENTINEL ((clinic_time_t)0x5A5A5A5A5A5A5A5ALL)
#define US 1000000LL
/* Local seconds of 0001-01-01T00:00:00 and 10000-01-01T00:00:00. */
#define MIN_LOCAL (-62135596800LL)
#define END_LOCAL 253402300800LL

static void fail(const char *what, const char *in, size_t len, const char *extra)
{
    fprintf(stderr, "fuzz_dates: %s\n  input: \"%.*s\"\n  %s\n", what, (int)len, in,
            extra ? extra : "");
    abort();
}

static int64_t floordiv(int64_t a, int64_t b)
{
    return a / b - (a % b < 0);
}

/* Minute-multiple offsets: what clinic_parse_visit_date can read back. */
static const int minute_offsets[] = { 0, 60, -60, 3600, -3600, 19800, -34200, 50400,
                                      -43200, 86340, -86340 };
/* Offsets with seconds: formatted with ":SS", only the database parser reads them. */
static const int second_offsets[] = { 1, -1, 86399, -86399, 3723 };

static void check_db_round_trip(clinic_time_t t, int off, const char *iso, size_t n)
{
    char db[CLINIC_ISO_MAX];
    clinic_time_t back = SENTINEL;
    char msg[160];

    memcpy(db, iso, n + 1);
    db[10] = ' ';
    if (db[n - 1] == 'Z')
        db[n - 1] = '\0';
    if (clinic_parse_db_timestamp(db, &back) != 0 || back != t) {
        snprintf(msg, sizeof msg, "offset %d: \"%s\" -> %lld, want %lld", off, db,
                 (long long)back, (long long)t);
        fail("format/parse_db_timestamp round trip", iso, n, msg);
    }
}

/* Format t at off; check the "" rule and the round trips. */
static void round_trip(clinic_time_t t, int off, int visit_too, const char *in, size_t len)
{
    char *iso = malloc(CLINIC_ISO_MAX);   /* exact size: ASan sees any overflow */
    char msg[200];
    clinic_time_t back = SENTINEL;
    int64_t local = floordiv(t, US) + off;
    int in_range = local >= MIN_LOCAL && local < END_LOCAL;
    size_t n;

    memset(iso, 'X', CLINIC_ISO_MAX);
    n = clinic_format_iso(t, off, iso);
    if (n >= CLINIC_ISO_MAX || strlen(iso) != n) {
        snprintf(msg, sizeof msg, "t=%lld offset %d: length %zu", (long long)t, off, n);
        fail("clinic_format_iso length", in, len, msg);
    }
    if ((n > 0) != in_range) {
        snprintf(msg, sizeof msg, "t=%lld offset %d: wrote \"%s\", local year in range: %d",
                 (long long)t, off, iso, in_range);
        fail("clinic_format_iso range rule", in, len, msg);
    }
    if (n && visit_too) {
        /* An explicit offset: the default offset must not matter. */
        char *exact = malloc(n);
        int rc;

        memcpy(exact, iso, n);
        rc = clinic_parse_visit_date(exact, n, 12345, &back);
        free(exact);
        if (rc != 0 || back != t) {
            snprintf(msg, sizeof msg, "t=%lld offset %d: \"%s\" -> rc %d, %lld", (long long)t,
                     off, iso, rc, (long long)back);
            fail("format/parse_visit_date round trip", in, len, msg);
        }
    }
    if (n)
        check_db_round_trip(t, off, iso, n);
    free(iso);
}

static void round_trips(clinic_time_t t, const char *in, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof minute_offsets / sizeof minute_offsets[0]; i++)
        round_trip(t, minute_offsets[i], 1, in, len);
    for (i = 0; i < sizeof second_offsets / sizeof second_offsets[0]; i++)
        round_trip(t, second_offsets[i], 0, in, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int defaults[] = { 0, 19800, -86399, 86399, -1 };
    char *raw = malloc(size ? size : 1);       /* exact size: no terminator to lean on */
    char *z = malloc(size + 1);                /* NUL-terminated copy */
    clinic_time_t t0 = SENTINEL, t = SENTINEL;
    int rc0, rc, off, y = -7, m = -7, d = -7;
    size_t i;
    char msg[200];

    memcpy(raw, data, size);
    memcpy(z, data, size);
    z[size] = '\0';

    /* ---- clinic_parse_visit_date ---- */
    rc0 = clinic_parse_visit_date(raw, size, 0, &t0);
    if (rc0 != 0 && rc0 != -1)
        fail("parse_visit_date return value", raw, size, NULL);
    if (rc0 != 0 && t0 != SENTINEL)
        fail("parse_visit_date wrote its output on failure", raw, size, NULL);
    for (i = 1; i < sizeof defaults / sizeof defaults[0]; i++) {
        t = SENTINEL;
        rc = clinic_parse_visit_date(raw, size, defaults[i], &t);
        if (rc != rc0) {
            snprintf(msg, sizeof msg, "default offset %d: rc %d vs %d", defaults[i], rc, rc0);
            fail("parse_visit_date acceptance depends on the default offset", raw, size, msg);
        }
        if (rc == 0 && t != t0 && t != t0 - (clinic_time_t)defaults[i] * US) {
            snprintf(msg, sizeof msg, "default offset %d: %lld vs %lld at 0", defaults[i],
                     (long long)t, (long long)t0);
            fail("parse_visit_date: default offset applied wrongly", raw, size, msg);
        }
        if (rc != 0 && t != SENTINEL)
            fail("parse_visit_date wrote its output on failure", raw, size, NULL);
    }
    /* Out-of-range default offsets are refused whatever the text. */
    t = SENTINEL;
    if (clinic_parse_visit_date(raw, size, 86400, &t) != -1 ||
        clinic_parse_visit_date(raw, size, -86400, &t) != -1 || t != SENTINEL)
        fail("parse_visit_date accepted default offset +-86400", raw, size, NULL);
    if (rc0 == 0) {
        round_trips(t0, raw, size);
        /* The same text at the default offset taken from the first byte, as the visits
           target does. */
        off = ((int)(unsigned char)raw[0] - 128) * 600;
        if (clinic_parse_visit_date(raw, size, off, &t) == 0)
            round_trips(t, raw, size);
    }

    /* ---- clinic_parse_db_timestamp ---- */
    t = SENTINEL;
    rc = clinic_parse_db_timestamp(z, &t);
    if (rc == 0)
        round_trips(t, z, strlen(z));
    else if (t != SENTINEL)
        fail("parse_db_timestamp wrote its output on failure", z, strlen(z), NULL);

    /* ---- clinic_parse_offset ---- */
    off = 0x7A7A7A7A;
    rc = clinic_parse_offset(z, &off);
    if (rc == 0) {
        char back[8];
        int a = off < 0 ? -off : off;

        if (strlen(z) != 6 || a % 60 || a > 23 * 3600 + 59 * 60)
            fail("parse_offset accepted a bad offset", z, size, NULL);
        snprintf(back, sizeof back, "%c%02d:%02d", z[0] == '-' ? '-' : '+', a / 3600,
                 a / 60 % 60);
        if (strcmp(back, z) != 0)
            fail("parse_offset value does not read back", z, size, back);
    } else if (off != 0x7A7A7A7A) {
        fail("parse_offset wrote its output on failure", z, size, NULL);
    }

    /* ---- clinic_parse_date_ymd ---- */
    rc = clinic_parse_date_ymd(raw, size, &y, &m, &d);
    if (rc == 0) {
        char back[16];
        clinic_time_t midnight = SENTINEL;

        snprintf(back, sizeof back, "%04d-%02d-%02d", y, m, d);
        if (size != 10 || memcmp(back, raw, 10) != 0)
            fail("parse_date_ymd value does not read back", raw, size, back);
        if (clinic_parse_date_ymd(raw, size, NULL, NULL, NULL) != 0)
            fail("parse_date_ymd with NULL outputs disagrees", raw, size, NULL);
        /* A bare date is midnight UTC to the database parser. */
        if (clinic_parse_db_timestamp(z, &midnight) != 0 || floordiv(midnight, US) % 86400)
            fail("parse_date_ymd accepted what parse_db_timestamp does not", raw, size, NULL);
    } else if (y != -7 || m != -7 || d != -7) {
        fail("parse_date_ymd wrote its outputs on failure", raw, size, NULL);
    }

    free(raw);
    free(z);
    return 0;
}
