/*
 * The bounded output buffer the engine's formatters write into (CEF, JSON
 * and text in cg_format.c, the memory export in cg_memory_json.c, the
 * capture sidecar in cg_capture_json.c), and the one JSON string escaper
 * they share, so every JSON the engine writes escapes the same characters.
 * Internal: not part of certguard.h.
 *
 * Like snprintf: writes stop at len - 1 bytes, pos keeps counting, and
 * cg_out_done() terminates and returns the length the full output has.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef CG_OUT_H
#define CG_OUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>


typedef struct {
    char           *buf;
    size_t          len;            /* size of buf */
    size_t          pos;            /* length of the full output so far */
} cg_out_t;


void cg_out_init(cg_out_t *o, char *buf, size_t len);

/* inline: a record is some hundred of these, most of a few bytes, and a
 * call each was a third of writing one */
static inline void
cg_out_mem(cg_out_t *o, const char *s, size_t n)
{
    size_t  room;

    if (o->pos < o->len) {
        room = o->len - 1 - o->pos;
        memcpy(o->buf + o->pos, s, n < room ? n : room);
    }

    o->pos += n;
}


static inline void
cg_out_str(cg_out_t *o, const char *s)
{
    cg_out_mem(o, s, strlen(s));
}


void cg_out_fmt(cg_out_t *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* prefix, then v in decimal as printf's %lld writes it: what the records
 * write per handshake goes through no format string */
void cg_out_int(cg_out_t *o, const char *prefix, long long v);
size_t cg_out_done(cg_out_t *o);

/* C0, DEL, C1 and the Unicode line and paragraph separators. */
int cg_is_control(uint32_t cp);

/* An RFC 8259 string of at most max bytes of s; invalid UTF-8 becomes
 * \ufffd, quotes, backslashes and cg_is_control() characters are escaped. */
void cg_out_json_str(cg_out_t *o, const char *s, size_t max);

/* n bytes as a quoted string of lowercase hex digits. */
void cg_out_json_hex(cg_out_t *o, const unsigned char *p, size_t n);

#endif /* CG_OUT_H */
