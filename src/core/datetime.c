#include "datetime.h"

#include <string.h>

#define US_PER_SEC 1000000
#define SEC_PER_DAY 86400

/* Bounded cursor over s[0..len): nothing ever reads at or past end. */
typedef struct {
    const char *p, *end;
} cur_t;

/* Broken-down local date and time. */
struct civil {
    int y, mo, d, h, mi, s, us;
};

static const char *const month_names[12] = {
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december"
};

static int isdig(const cur_t *c)
{
    return c->p < c->end && *c->p >= '0' && *c->p <= '9';
}

static int eat(cur_t *c, char ch)
{
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* Read min..max digits (max <= 9, so no overflow). Returns the count, or 0 if fewer than min. */
static int num(cur_t *c, int min, int max, int *v)
{
    int n = 0;

    *v = 0;
    while (n < max && isdig(c)) {
        *v = *v * 10 + (*c->p++ - '0');
        n++;
    }
    return n >= min ? n : 0;
}

static int leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int valid_date(int y, int m, int d)
{
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    return y >= 1 && y <= 9999 && m >= 1 && m <= 12 && d >= 1
        && d <= mdays[m - 1] + (m == 2 && leap(y));
}

static int64_t floordiv(int64_t a, int64_t b, int64_t *rem)
{
    int64_t q = a / b, r = a % b;

    if (r < 0) {
        r += b;
        q--;
    }
    *rem = r;
    return q;
}

/* Days since 1970-01-01 of a Gregorian date, year >= 1 (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Inverse of days_from_civil, for any day count. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    era = floordiv(z + 719468, 146097, &doe);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Write sep (unless 0), then v as exactly w zero-padded digits. */
static char *put(char *p, char sep, int64_t v, int w)
{
    int i;

    if (sep)
        *p++ = sep;
    for (i = w - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + w;
}

static clinic_time_t instant(const struct civil *f, int off)
{
    int64_t secs = days_from_civil(f->y, f->mo, f->d) * SEC_PER_DAY
                   + f->h * 3600 + f->mi * 60 + f->s - off;

    return secs * US_PER_SEC + f->us;
}

/* "YYYY-MM-DD" */
static int date(cur_t *c, struct civil *f)
{
    return num(c, 4, 4, &f->y) && eat(c, '-') && num(c, 2, 2, &f->mo) && eat(c, '-')
        && num(c, 2, 2, &f->d) && valid_date(f->y, f->mo, f->d);
}

/* "hh:mm[:ss[.f{1,6}]]"; seconds mandatory when need_sec. */
static int tod(cur_t *c, struct civil *f, int need_sec)
{
    int n;

    if (!num(c, 2, 2, &f->h) || f->h > 23 || !eat(c, ':') || !num(c, 2, 2, &f->mi) || f->mi > 59)
        return 0;
    if (!eat(c, ':'))
        return !need_sec;
    if (!num(c, 2, 2, &f->s) || f->s > 59)
        return 0;
    if (eat(c, '.')) {
        if (!(n = num(c, 1, 6, &f->us)))
            return 0;
        while (n++ < 6)
            f->us *= 10;
    }
    return 1;
}

/* [+-]HH then ":MM" (or bare "MM" unless db), then ":SS" only if db. */
static int tz(cur_t *c, int db, int *off)
{
    int sign, h, m = 0, s = 0;

    if (eat(c, '+'))
        sign = 1;
    else if (eat(c, '-'))
        sign = -1;
    else
        return 0;
    if (!num(c, 2, 2, &h) || h > 23)
        return 0;
    if (eat(c, ':') || (!db && isdig(c))) {
        if (!num(c, 2, 2, &m) || m > 59)
            return 0;
        if (db && eat(c, ':') && (!num(c, 2, 2, &s) || s > 59))
            return 0;
    }
    *off = sign * (h * 3600 + m * 60 + s);
    return 1;
}

/* Full English month name, ASCII case-insensitive. */
static int month(cur_t *c, int *mo)
{
    const char *start = c->p;
    size_t n, i;
    int k;

    while (c->p < c->end && ((*c->p | 0x20) >= 'a' && (*c->p | 0x20) <= 'z'))
        c->p++;
    n = (size_t)(c->p - start);
    for (k = 0; k < 12; k++) {
        if (strlen(month_names[k]) != n)
            continue;
        for (i = 0; i < n && (start[i] | 0x20) == month_names[k][i]; i++)
            ;
        if (i == n) {
            *mo = k + 1;
            return 1;
        }
    }
    return 0;
}

/* moment.js "D MMMM YYYY H:mm" */
static int human(cur_t *c, struct civil *f)
{
    return num(c, 1, 2, &f->d) && eat(c, ' ') && month(c, &f->mo) && eat(c, ' ')
        && num(c, 4, 4, &f->y) && eat(c, ' ') && num(c, 1, 2, &f->h) && f->h <= 23
        && eat(c, ':') && num(c, 2, 2, &f->mi) && f->mi <= 59
        && valid_date(f->y, f->mo, f->d);
}

static int iso(cur_t *c, struct civil *f, int *off)
{
    if (!date(c, f) || !(eat(c, 'T') || eat(c, 't') || eat(c, ' ')) || !tod(c, f, 0))
        return 0;
    if (eat(c, 'Z') || eat(c, 'z')) {
        *off = 0;
        return 1;
    }
    return c->p == c->end || tz(c, 0, off);
}

int clinic_parse_offset(const char *s, int *offset_sec)
{
    size_t n = 0;
    cur_t c;
    int off;

    if (!s || !offset_sec)
        return -1;
    while (n < 6 && s[n])
        n++;
    c.p = s;
    c.end = s + n;
    if (n < 6 || s[6] || s[3] != ':' || !tz(&c, 0, &off))
        return -1;
    *offset_sec = off;
    return 0;
}

int clinic_parse_visit_date(const char *s, size_t len, int default_offset, clinic_time_t *out)
{
    struct civil f = { 0, 0, 0, 0, 0, 0, 0 };
    int off = default_offset, ok;
    cur_t c;

    if (!s || !out || default_offset <= -SEC_PER_DAY || default_offset >= SEC_PER_DAY)
        return -1;
    c.p = s;
    c.end = s + len;
    ok = (len > 4 && s[4] == '-') ? iso(&c, &f, &off) : human(&c, &f);
    if (!ok || c.p != c.end)
        return -1;
    *out = instant(&f, off);
    return 0;
}

int clinic_parse_db_timestamp(const char *s, clinic_time_t *out)
{
    struct civil f = { 0, 0, 0, 0, 0, 0, 0 };
    int off = 0;
    cur_t c;

    if (!s || !out)
        return -1;
    c.p = s;
    c.end = s + strlen(s);
    if (!date(&c, &f))
        return -1;
    if (eat(&c, 'T')) {
        if (!tod(&c, &f, 1) || !eat(&c, 'Z'))
            return -1;
    } else if (eat(&c, ' ')) {
        if (!tod(&c, &f, 1) || (c.p != c.end && !tz(&c, 1, &off)))
            return -1;
    }
    if (c.p != c.end)
        return -1;
    *out = instant(&f, off);
    return 0;
}

size_t clinic_format_iso(clinic_time_t t, int offset_sec, char *buf)
{
    int64_t secs, us, rem, y;
    int m, d, a;
    char *p = buf;

    *p = '\0';
    if (offset_sec <= -SEC_PER_DAY || offset_sec >= SEC_PER_DAY)
        return 0;
    a = offset_sec < 0 ? -offset_sec : offset_sec;
    secs = floordiv(t, US_PER_SEC, &us) + offset_sec;
    civil_from_days(floordiv(secs, SEC_PER_DAY, &rem), &y, &m, &d);
    if (y < 1 || y > 9999)
        return 0;
    p = put(p, 0, y, 4);
    p = put(p, '-', m, 2);
    p = put(p, '-', d, 2);
    p = put(p, 'T', rem / 3600, 2);
    p = put(p, ':', rem / 60 % 60, 2);
    p = put(p, ':', rem % 60, 2);
    if (us)
        p = put(p, '.', us, 6);
    if (offset_sec == 0) {
        *p++ = 'Z';
    } else {
        p = put(p, offset_sec < 0 ? '-' : '+', a / 3600, 2);
        p = put(p, ':', a / 60 % 60, 2);
        if (a % 60)
            p = put(p, ':', a % 60, 2);
    }
    *p = '\0';
    return (size_t)(p - buf);
}

int clinic_parse_date_ymd(const char *s, size_t len, int *y, int *m, int *d)
{
    struct civil f = { 0, 0, 0, 0, 0, 0, 0 };
    cur_t c;

    if (!s || len != 10)
        return -1;
    c.p = s;
    c.end = s + len;
    if (!date(&c, &f) || c.p != c.end)
        return -1;
    if (y)
        *y = f.y;
    if (m)
        *m = f.mo;
    if (d)
        *d = f.d;
    return 0;
}
