/*
 * The SNI of a TLS ClientHello (RFC 8446 4.1.2, RFC 6066 3).  The handshake
 * message may span several records, so record payloads are reassembled into
 * a bounded buffer first; every length is checked against what remains.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <string.h>

#include "cg_clienthello.h"


#define CG_TLS_HANDSHAKE        0x16
#define CG_TLS_CLIENT_HELLO     0x01
#define CG_TLS_EXT_SERVER_NAME  0x0000
#define CG_TLS_RECORD_MAX       (16384 + 2048)


typedef struct {
    const unsigned char  *p;
    size_t                left;
} cg_reader_t;


static int cg_read_skip(cg_reader_t *r, size_t n);
static int cg_read_u8(cg_reader_t *r, unsigned *v);
static int cg_read_u16(cg_reader_t *r, unsigned *v);
static int cg_read_vector(cg_reader_t *r, size_t lenbytes, cg_reader_t *sub);
static int cg_clienthello_parse(const unsigned char *hs, size_t len,
    char *sni, size_t snilen);
static int cg_clienthello_server_name(cg_reader_t *ext, char *sni,
    size_t snilen);


int
cg_clienthello_sni(const unsigned char *buf, size_t len, char *sni,
    size_t snilen)
{
    size_t         pos, rlen, avail, copy, have, need, records;
    unsigned char  hs[CG_CLIENTHELLO_MAX + 4];

    if (sni == NULL || snilen == 0) {
        return CG_ERR_INPUT;
    }

    sni[0] = '\0';

    /* reject plain text (an HTTP request, say) at its first bytes */

    if (len >= 1 && buf[0] != CG_TLS_HANDSHAKE) {
        return CG_ERR_INPUT;
    }

    if (len >= 2 && buf[1] != 3) {
        return CG_ERR_INPUT;
    }

    pos = 0;
    have = 0;
    records = 0;

    while (len - pos >= 5) {

        if (buf[pos] != CG_TLS_HANDSHAKE || buf[pos + 1] != 3
            || ++records > CG_CLIENTHELLO_RECORDS)
        {
            return CG_ERR_INPUT;
        }

        rlen = ((size_t) buf[pos + 3] << 8) | buf[pos + 4];

        if (rlen == 0 || rlen > CG_TLS_RECORD_MAX) {
            return CG_ERR_INPUT;
        }

        pos += 5;

        avail = len - pos < rlen ? len - pos : rlen;

        copy = avail;
        if (copy > sizeof(hs) - have) {
            copy = sizeof(hs) - have;
        }

        memcpy(hs + have, buf + pos, copy);
        have += copy;
        pos += avail;

        if (have >= 1 && hs[0] != CG_TLS_CLIENT_HELLO) {
            return CG_ERR_INPUT;
        }

        if (have >= 4) {
            need = 4 + (((size_t) hs[1] << 16) | ((size_t) hs[2] << 8)
                        | hs[3]);

            if (need > sizeof(hs)) {
                return CG_ERR_INPUT;
            }

            if (have >= need) {
                return cg_clienthello_parse(hs + 4, need - 4, sni, snilen);
            }
        }

        if (avail < rlen) {
            break;
        }
    }

    return CG_CLIENTHELLO_AGAIN;
}


size_t
cg_clienthello_need(const unsigned char *buf, size_t len)
{
    size_t  pos, end, records;

    pos = 0;

    for (records = 0; records <= CG_CLIENTHELLO_RECORDS; records++) {

        if (len - pos < 5) {
            return pos + 5;
        }

        end = pos + 5 + (((size_t) buf[pos + 3] << 8) | buf[pos + 4]);

        if (end > len) {
            return end;
        }

        pos = end;
    }

    return len + 1;
}


static int
cg_clienthello_parse(const unsigned char *hs, size_t len, char *sni,
    size_t snilen)
{
    unsigned     version, type;
    cg_reader_t  r, exts, ext;

    r.p = hs;
    r.left = len;

    if (cg_read_u16(&r, &version) != CG_OK || (version >> 8) != 3) {
        return CG_ERR_INPUT;
    }

    if (cg_read_skip(&r, 32) != CG_OK                  /* random */
        || cg_read_vector(&r, 1, &ext) != CG_OK         /* session id */
        || ext.left > 32
        || cg_read_vector(&r, 2, &ext) != CG_OK         /* cipher suites */
        || ext.left == 0 || ext.left % 2
        || cg_read_vector(&r, 1, &ext) != CG_OK         /* compression */
        || ext.left == 0)
    {
        return CG_ERR_INPUT;
    }

    if (r.left == 0) {
        return CG_OK;           /* no extensions at all: no SNI */
    }

    if (cg_read_vector(&r, 2, &exts) != CG_OK || r.left != 0) {
        return CG_ERR_INPUT;
    }

    while (exts.left) {

        if (cg_read_u16(&exts, &type) != CG_OK
            || cg_read_vector(&exts, 2, &ext) != CG_OK)
        {
            return CG_ERR_INPUT;
        }

        if (type == CG_TLS_EXT_SERVER_NAME) {
            return cg_clienthello_server_name(&ext, sni, snilen);
        }
    }

    return CG_OK;
}


static int
cg_clienthello_server_name(cg_reader_t *ext, char *sni, size_t snilen)
{
    size_t       i;
    unsigned     type;
    cg_reader_t  list, name;

    if (cg_read_vector(ext, 2, &list) != CG_OK || ext->left != 0) {
        return CG_ERR_INPUT;
    }

    while (list.left) {

        if (cg_read_u8(&list, &type) != CG_OK
            || cg_read_vector(&list, 2, &name) != CG_OK)
        {
            return CG_ERR_INPUT;
        }

        if (type != 0) {
            continue;           /* only host_name (0) is defined */
        }

        if (name.left == 0 || name.left >= snilen) {
            return CG_ERR_INPUT;
        }

        /* the name is used for DNS and logs: letters, digits, "-_." only */

        for (i = 0; i < name.left; i++) {
            unsigned char  ch = name.p[i];

            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
                  || (ch >= '0' && ch <= '9')
                  || ch == '-' || ch == '.' || ch == '_'))
            {
                return CG_ERR_INPUT;
            }
        }

        memcpy(sni, name.p, name.left);
        sni[name.left] = '\0';

        return CG_OK;
    }

    return CG_OK;
}


static int
cg_read_skip(cg_reader_t *r, size_t n)
{
    if (r->left < n) {
        return CG_ERR_INPUT;
    }

    r->p += n;
    r->left -= n;

    return CG_OK;
}


static int
cg_read_u8(cg_reader_t *r, unsigned *v)
{
    if (r->left < 1) {
        return CG_ERR_INPUT;
    }

    *v = r->p[0];

    return cg_read_skip(r, 1);
}


static int
cg_read_u16(cg_reader_t *r, unsigned *v)
{
    if (r->left < 2) {
        return CG_ERR_INPUT;
    }

    *v = ((unsigned) r->p[0] << 8) | r->p[1];

    return cg_read_skip(r, 2);
}


/* A length-prefixed vector: sub covers its contents, r moves past it. */

static int
cg_read_vector(cg_reader_t *r, size_t lenbytes, cg_reader_t *sub)
{
    unsigned  n;

    if ((lenbytes == 1 ? cg_read_u8(r, &n) : cg_read_u16(r, &n)) != CG_OK
        || r->left < n)
    {
        return CG_ERR_INPUT;
    }

    sub->p = r->p;
    sub->left = n;

    return cg_read_skip(r, n);
}
