/*
 * The formatters' bounded output buffer and JSON string escaper (cg_out.h).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cg_internal.h"
#include "cg_out.h"


static const char  cg_out_hex[] = "0123456789abcdef";


void
cg_out_init(cg_out_t *o, char *buf, size_t len)
{
    o->buf = buf;
    o->len = len;
    o->pos = 0;
}


void
cg_out_fmt(cg_out_t *o, const char *fmt, ...)
{
    int      n;
    char     tmp[128];
    va_list  ap;

    /* only numbers and fixed words come through here, well below 128 */
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);

    if (n > 0) {
        cg_out_mem(o, tmp, (size_t) n < sizeof(tmp) ? (size_t) n
                                                      : sizeof(tmp) - 1);
    }
}


void
cg_out_int(cg_out_t *o, const char *prefix, long long v)
{
    char                 tmp[24], *p;
    unsigned long long   u;

    cg_out_str(o, prefix);

    /* the magnitude unsigned: LLONG_MIN has no positive counterpart */
    u = v < 0 ? 0ULL - (unsigned long long) v : (unsigned long long) v;

    p = tmp + sizeof(tmp);
    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u);

    if (v < 0) {
        *--p = '-';
    }

    cg_out_mem(o, p, (size_t) (tmp + sizeof(tmp) - p));
}


size_t
cg_out_done(cg_out_t *o)
{
    if (o->len) {
        o->buf[o->pos < o->len ? o->pos : o->len - 1] = '\0';
    }

    return o->pos;
}


/* Anything a log pipeline might take for the end of a line or a terminal
 * command. */
int
cg_is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)
           || cp == 0x2028 || cp == 0x2029;
}


void
cg_out_json_str(cg_out_t *o, const char *s, size_t max)
{
    char                  esc[8];
    size_t                n, i, k;
    uint32_t              cp;
    const unsigned char  *p;

    p = (const unsigned char *) s;
    n = cg_strnlen(s, max);

    cg_out_mem(o, "\"", 1);

    for (i = 0; i < n; i += k) {
        k = cg_utf8_decode(p + i, n - i, &cp);

        if (k == 0) {
            cg_out_mem(o, "\\ufffd", 6);
            k = 1;
            continue;
        }

        if (cp == '"' || cp == '\\') {
            esc[0] = '\\';
            esc[1] = (char) cp;
            cg_out_mem(o, esc, 2);

        } else if (cg_is_control(cp)) {
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = cg_out_hex[(cp >> 12) & 0xf];
            esc[3] = cg_out_hex[(cp >> 8) & 0xf];
            esc[4] = cg_out_hex[(cp >> 4) & 0xf];
            esc[5] = cg_out_hex[cp & 0xf];
            cg_out_mem(o, esc, 6);

        } else {
            cg_out_mem(o, s + i, k);
        }
    }

    cg_out_mem(o, "\"", 1);
}


void
cg_out_json_hex(cg_out_t *o, const unsigned char *p, size_t n)
{
    size_t  i;
    char    two[2];

    cg_out_mem(o, "\"", 1);

    for (i = 0; i < n; i++) {
        two[0] = cg_out_hex[p[i] >> 4];
        two[1] = cg_out_hex[p[i] & 0x0f];
        cg_out_mem(o, two, 2);
    }

    cg_out_mem(o, "\"", 1);
}
