/*
 * Small helpers the engine files share.
 */

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cg_internal.h"


static const EVP_MD *cg_md_fetched(_Atomic(EVP_MD *) *slot, const char *name,
    const EVP_MD *legacy);


static _Atomic(EVP_MD *)  cg_sha256_md;
static _Atomic(EVP_MD *)  cg_sha1_md;


const EVP_MD *
cg_md_sha256(void)
{
    return cg_md_fetched(&cg_sha256_md, "SHA256", EVP_sha256());
}


const EVP_MD *
cg_md_sha1(void)
{
    return cg_md_fetched(&cg_sha1_md, "SHA1", EVP_sha1());
}


/*
 * SHA-256 of n bytes through the digest fetched once: 1, or 0.  The
 * context is the thread's, made once and kept: EVP_Digest() makes and
 * frees one a call, and a new leaf takes four.
 */

static _Thread_local EVP_MD_CTX  *cg_sha256_ctx;


int
cg_sha256(const void *p, size_t n, unsigned char md[32])
{
    unsigned int  len;

    if (cg_sha256_ctx == NULL) {
        cg_sha256_ctx = EVP_MD_CTX_new();
        if (cg_sha256_ctx == NULL) {
            return 0;
        }
    }

    len = 0;

    return EVP_DigestInit_ex2(cg_sha256_ctx, cg_md_sha256(), NULL) == 1
           && EVP_DigestUpdate(cg_sha256_ctx, p, n) == 1
           && EVP_DigestFinal_ex(cg_sha256_ctx, md, &len) == 1
           && len == 32;
}


/*
 * The first caller fetches; a thread that loses the race frees its copy.
 * If the fetch fails the legacy handle still works, only slower.  The
 * fetched digest lives as long as the process (nginx workers and the
 * CLI exit without unloading OpenSSL's default provider).
 */

static const EVP_MD *
cg_md_fetched(_Atomic(EVP_MD *) *slot, const char *name, const EVP_MD *legacy)
{
    EVP_MD  *md, *none;

    md = atomic_load(slot);
    if (md != NULL) {
        return md;
    }

    md = EVP_MD_fetch(NULL, name, NULL);
    if (md == NULL) {
        return legacy;
    }

    none = NULL;
    if (!atomic_compare_exchange_strong(slot, &none, md)) {
        EVP_MD_free(md);
        return none;
    }

    return md;
}


size_t
cg_strlcpy(char *dst, const char *src, size_t size)
{
    size_t  n;

    n = strlen(src);

    if (size) {
        size_t  m = n < size - 1 ? n : size - 1;

        memcpy(dst, src, m);
        dst[m] = '\0';
    }

    return n;
}


/*
 * Seconds since 1970 of a broken-down UTC time, as timegm() gives for the
 * in-range fields ASN1_TIME_to_tm() writes (years 0 to 9999), without
 * glibc's normalising mktime machinery, which was a tenth of a new leaf's
 * facts: the days from the civil date by the proleptic Gregorian
 * calendar's 400-year eras, March first so that leap days end a year.
 */
int64_t
cg_tm_to_epoch(const struct tm *tm)
{
    int64_t  y, m, era, yoe, doy, doe;

    y = (int64_t) tm->tm_year + 1900;
    m = (int64_t) tm->tm_mon + 1;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + tm->tm_mday - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return ((era * 146097 + doe - 719468) * 24 + tm->tm_hour) * 3600
           + (int64_t) tm->tm_min * 60 + tm->tm_sec;
}


/* a / b rounded towards minus infinity (C's / rounds towards zero) */
int64_t
cg_floor_div(int64_t a, int64_t b)
{
    int64_t  q;

    q = a / b;

    if ((a % b != 0) && ((a < 0) != (b < 0))) {
        q--;
    }

    return q;
}


/*
 * The broken-down UTC time of unix seconds t, as gmtime_r() gives within
 * time_t's range but without its time-zone lock and TZ check, which the
 * memo's walk paid on every new leaf: the civil date from the days by the
 * same 400-year eras as cg_tm_to_epoch() (H. Hinnant's public-domain
 * algorithm).  Only the date and time fields are set.
 */
void
cg_epoch_to_tm(int64_t t, struct tm *tm)
{
    int64_t  days, secs, era, doe, yoe, y, doy, mp, d, m;

    days = cg_floor_div(t, 86400);
    secs = t - days * 86400;

    days += 719468;
    era = cg_floor_div(days, 146097);
    doe = days - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = yoe + era * 400;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;

    memset(tm, 0, sizeof(struct tm));
    tm->tm_year = (int) (y - 1900);
    tm->tm_mon = (int) (m - 1);
    tm->tm_mday = (int) d;
    tm->tm_hour = (int) (secs / 3600);
    tm->tm_min = (int) (secs / 60 % 60);
    tm->tm_sec = (int) (secs % 60);
}


/*
 * RFC 5280's two time forms exactly, YYMMDDHHMMSSZ as UTCTime (1950 to
 * 2049) and YYYYMMDDHHMMSSZ as GeneralizedTime, to the fields with the
 * range checks ASN1_TIME_to_tm() makes (a day within its month, leap
 * years by the Gregorian rule, no leap second).  0 for anything else,
 * which callers leave to ASN1_TIME_to_tm(): this is its common case, read
 * in place, for the four times of every new leaf's walk.
 */
int
cg_asn1_time_tm(const ASN1_TIME *t, struct tm *tm)
{
    int                   i, n, len, y, v[5], md;
    const unsigned char  *p;
    static const int      mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
                                        31, 30, 31 };

    len = ASN1_STRING_length(t);
    p = ASN1_STRING_get0_data(t);

    if (p == NULL
        || !((ASN1_STRING_type(t) == V_ASN1_UTCTIME && len == 13)
             || (ASN1_STRING_type(t) == V_ASN1_GENERALIZEDTIME && len == 15))
        || p[len - 1] != 'Z')
    {
        return 0;
    }

    for (i = 0; i < len - 1; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
    }

    n = len == 15 ? 4 : 2;
    y = 0;
    for (i = 0; i < n; i++) {
        y = y * 10 + (p[i] - '0');
    }

    if (n == 2) {
        y += y < 50 ? 2000 : 1900;
    }

    for (i = 0; i < 5; i++) {
        v[i] = (p[n + 2 * i] - '0') * 10 + (p[n + 2 * i + 1] - '0');
    }

    /* v: month, day, hour, minute, second */
    if (v[0] < 1 || v[0] > 12 || v[1] < 1 || v[2] > 23 || v[3] > 59
        || v[4] > 59)
    {
        return 0;
    }

    md = mdays[v[0] - 1];
    if (v[0] == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) {
        md++;
    }

    if (v[1] > md) {
        return 0;
    }

    memset(tm, 0, sizeof(struct tm));
    tm->tm_year = y - 1900;
    tm->tm_mon = v[0] - 1;
    tm->tm_mday = v[1];
    tm->tm_hour = v[2];
    tm->tm_min = v[3];
    tm->tm_sec = v[4];

    return 1;
}


/* strnlen is POSIX, not C11: the engine also builds with strict flags */
size_t
cg_strnlen(const char *s, size_t max)
{
    const char  *p;

    p = memchr(s, '\0', max);

    return p ? (size_t) (p - s) : max;
}


int
cg_errorf(cg_error_t *err, int status, const char *file, unsigned line,
    const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL) {
        return status;
    }

    cg_strlcpy(err->file, file ? file : "", sizeof(err->file));
    err->line = line;

    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);

    return status;
}


/* The ranges of RFC 3629, table 3-7 of Unicode: the second byte's range
 * depends on the first, which is how overlong forms, surrogates and code
 * points above U+10FFFF are refused. */
size_t
cg_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char  c, lo, hi;
    size_t         len, i;

    if (n == 0) {
        return 0;
    }

    c = p[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }

    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        *cp = c & 0x1f;

    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        *cp = c & 0x0f;
        if (c == 0xe0) {
            lo = 0xa0;
        } else if (c == 0xed) {
            hi = 0x9f;
        }

    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        *cp = c & 0x07;
        if (c == 0xf0) {
            lo = 0x90;
        } else if (c == 0xf4) {
            hi = 0x8f;
        }

    } else {
        return 0;
    }

    if (n < len) {
        return 0;
    }

    for (i = 1; i < len; i++) {
        c = p[i];

        if (c < lo || c > hi) {
            return 0;
        }

        lo = 0x80;
        hi = 0xbf;
        *cp = (*cp << 6) | (c & 0x3f);
    }

    return len;
}
