/*
 * What a TLS ClientHello offers (RFC 8446 4.1.2): the SNI (RFC 6066 3), ALPN
 * (RFC 7301), versions, groups, cipher suites and signature algorithms.
 * The handshake message may span several records, so record payloads are
 * reassembled into a bounded buffer first; every length is checked against
 * what remains.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <string.h>

#include "cg_clienthello.h"
#include "cg_tls_read.h"


#define CG_TLS_HANDSHAKE        0x16
#define CG_TLS_CLIENT_HELLO     0x01
#define CG_TLS_RECORD_MAX       (16384 + 2048)


static int cg_clienthello_body(const unsigned char *hs, size_t len,
    cg_clienthello_t *ch);
static int cg_clienthello_list(cg_tls_reader_t *list, cg_clienthello_t *ch,
    uint16_t *to, unsigned *n, unsigned max);
static void cg_list_add(cg_clienthello_t *ch, uint16_t *to, unsigned *n,
    unsigned max, unsigned v);
static int cg_clienthello_alpn(cg_tls_reader_t *ext, cg_clienthello_t *ch);
static int cg_clienthello_server_name(cg_tls_reader_t *ext, char *sni,
    size_t snilen);


int
cg_clienthello_sni(const unsigned char *buf, size_t len, char *sni,
    size_t snilen)
{
    int               rc;
    size_t            n;
    cg_clienthello_t  ch;

    if (sni == NULL || snilen == 0) {
        return CG_ERR_INPUT;
    }

    sni[0] = '\0';

    rc = cg_clienthello_parse(buf, len, &ch);
    if (rc != CG_OK) {
        return rc;
    }

    n = strlen(ch.sni);
    if (n >= snilen) {
        return CG_ERR_INPUT;
    }

    memcpy(sni, ch.sni, n + 1);

    return CG_OK;
}


int
cg_clienthello_parse(const unsigned char *buf, size_t len,
    cg_clienthello_t *ch)
{
    int            rc;
    size_t         pos, rlen, avail, copy, have, need, records;
    unsigned char  hs[CG_CLIENTHELLO_MAX + 4];

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
                memset(ch, 0, sizeof(cg_clienthello_t));
                rc = cg_clienthello_body(hs + 4, need - 4, ch);
                if (rc != CG_OK) {
                    memset(ch, 0, sizeof(cg_clienthello_t));
                }
                return rc;
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


/* The ClientHello body (RFC 8446 4.1.2), then its extensions. */

static int
cg_clienthello_body(const unsigned char *hs, size_t len, cg_clienthello_t *ch)
{
    size_t           version, type;
    unsigned         i;
    cg_tls_reader_t  r, exts, ext, list;

    r.p = hs;
    r.left = len;

    if (cg_tls_read_uint(&r, 2, &version) != CG_OK || (version >> 8) != 3) {
        return CG_ERR_INPUT;
    }

    ch->legacy_version = version;

    if (cg_tls_read_skip(&r, 32) != CG_OK              /* random */
        || cg_tls_read_vector(&r, 1, &ext) != CG_OK     /* session id */
        || ext.left > 32
        || cg_tls_read_vector(&r, 2, &list) != CG_OK    /* cipher suites */
        || list.left == 0 || list.left % 2
        || cg_tls_read_vector(&r, 1, &ext) != CG_OK     /* compression */
        || ext.left == 0)
    {
        return CG_ERR_INPUT;
    }

    if (cg_clienthello_list(&list, ch, ch->ciphers, &ch->nciphers,
                            CG_CLIENTHELLO_CIPHERS)
        != CG_OK)
    {
        return CG_ERR_INPUT;
    }

    if (r.left == 0) {
        return CG_OK;           /* no extensions at all */
    }

    if (cg_tls_read_vector(&r, 2, &exts) != CG_OK || r.left != 0) {
        return CG_ERR_INPUT;
    }

    while (exts.left) {

        if (cg_tls_read_extension(&exts, &type, &ext) != CG_OK) {
            return CG_ERR_INPUT;
        }

        if (!cg_tls_grease(type)) {

            /* RFC 8446 4.2: no extension type twice */

            for (i = 0; i < ch->nextensions; i++) {
                if (ch->extensions[i] == type) {
                    return CG_ERR_INPUT;
                }
            }

            cg_list_add(ch, ch->extensions, &ch->nextensions,
                        CG_CLIENTHELLO_EXTENSIONS, type);
        }

        switch (type) {

        case CG_TLS_EXT_SERVER_NAME:
            if (cg_clienthello_server_name(&ext, ch->sni, sizeof(ch->sni))
                != CG_OK)
            {
                return CG_ERR_INPUT;
            }
            break;

        case CG_TLS_EXT_ALPN:
            if (cg_clienthello_alpn(&ext, ch) != CG_OK) {
                return CG_ERR_INPUT;
            }
            break;

        case CG_TLS_EXT_SUPPORTED_VERSIONS:
            if (cg_tls_read_vector(&ext, 1, &list) != CG_OK
                || ext.left != 0 || list.left == 0 || list.left % 2
                || cg_clienthello_list(&list, ch, ch->versions,
                                       &ch->nversions,
                                       CG_CLIENTHELLO_VERSIONS)
                   != CG_OK)
            {
                return CG_ERR_INPUT;
            }
            break;

        case CG_TLS_EXT_SUPPORTED_GROUPS:
            if (cg_tls_read_vector(&ext, 2, &list) != CG_OK
                || ext.left != 0 || list.left == 0 || list.left % 2
                || cg_clienthello_list(&list, ch, ch->groups, &ch->ngroups,
                                       CG_CLIENTHELLO_GROUPS)
                   != CG_OK)
            {
                return CG_ERR_INPUT;
            }
            break;

        case CG_TLS_EXT_SIGNATURE_ALGORITHMS:
            if (cg_tls_read_vector(&ext, 2, &list) != CG_OK
                || ext.left != 0 || list.left == 0 || list.left % 2
                || cg_clienthello_list(&list, ch, ch->sigalgs,
                                       &ch->nsigalgs, CG_CLIENTHELLO_SIGALGS)
                   != CG_OK)
            {
                return CG_ERR_INPUT;
            }
            break;

        default:
            break;
        }
    }

    return CG_OK;
}


/* A list of 16-bit code points, GREASE left out. */

static int
cg_clienthello_list(cg_tls_reader_t *list, cg_clienthello_t *ch,
    uint16_t *to, unsigned *n, unsigned max)
{
    size_t  v;

    while (list->left) {
        if (cg_tls_read_uint(list, 2, &v) != CG_OK) {
            return CG_ERR_INPUT;
        }

        cg_list_add(ch, to, n, max, v);
    }

    return CG_OK;
}


static void
cg_list_add(cg_clienthello_t *ch, uint16_t *to, unsigned *n, unsigned max,
    unsigned v)
{
    if (cg_tls_grease(v)) {
        return;
    }

    if (*n == max) {
        ch->truncated = 1;
        return;
    }

    to[(*n)++] = (uint16_t) v;
}


/* RFC 7301 3.1: a non-empty list of non-empty names, kept as sent but for
 * GREASE names (RFC 8701 reserves the two-byte names 0x?A?A). */

static int
cg_clienthello_alpn(cg_tls_reader_t *ext, cg_clienthello_t *ch)
{
    cg_tls_reader_t  list, name;

    if (cg_tls_read_vector(ext, 2, &list) != CG_OK || ext->left != 0
        || list.left == 0)
    {
        return CG_ERR_INPUT;
    }

    while (list.left) {

        if (cg_tls_read_vector(&list, 1, &name) != CG_OK || name.left == 0) {
            return CG_ERR_INPUT;
        }

        if (name.left == 2
            && cg_tls_grease(((unsigned) name.p[0] << 8) | name.p[1]))
        {
            continue;
        }

        if (ch->alpn_len + 1 + name.left > sizeof(ch->alpn)) {
            ch->truncated = 1;
            continue;
        }

        ch->alpn[ch->alpn_len++] = (unsigned char) name.left;
        memcpy(ch->alpn + ch->alpn_len, name.p, name.left);
        ch->alpn_len += name.left;
    }

    return CG_OK;
}


static int
cg_clienthello_server_name(cg_tls_reader_t *ext, char *sni, size_t snilen)
{
    size_t           i, type;
    cg_tls_reader_t  list, name;

    if (cg_tls_read_vector(ext, 2, &list) != CG_OK || ext->left != 0) {
        return CG_ERR_INPUT;
    }

    while (list.left) {

        if (cg_tls_read_uint(&list, 1, &type) != CG_OK
            || cg_tls_read_vector(&list, 2, &name) != CG_OK)
        {
            return CG_ERR_INPUT;
        }

        if (type != 0 || sni[0] != '\0') {
            continue;           /* only host_name (0) is defined, once */
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
    }

    return CG_OK;
}


int
cg_clienthello_has(const cg_clienthello_t *ch, unsigned type)
{
    unsigned  i;

    for (i = 0; i < ch->nextensions; i++) {
        if (ch->extensions[i] == type) {
            return 1;
        }
    }

    return 0;
}


int
cg_tls_grease(unsigned v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}
