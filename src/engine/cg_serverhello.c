/*
 * The certificate chain in a TLS server's first flight (RFC 5246 7.4.1.3,
 * 7.4.2; RFC 8446 4.1.3 for the version).  Handshake records are
 * reassembled into a bounded buffer, messages read from it in order:
 * ServerHello, then (HelloRequests aside) Certificate or something else.
 * Records are read only once complete: the caller forwards the bytes
 * meanwhile, so a server's flight always completes.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <stdlib.h>
#include <string.h>

#include "cg_serverhello.h"
#include "cg_tls_read.h"


#define CG_TLS_CHANGE_CIPHER    20
#define CG_TLS_ALERT            21
#define CG_TLS_HANDSHAKE        22
#define CG_TLS_RECORD_MAX       (16384 + 2048)

#define CG_HS_HELLO_REQUEST     0
#define CG_HS_SERVER_HELLO      2
#define CG_HS_CERTIFICATE       11

#define CG_EXT_SUPPORTED_VERSIONS  43


typedef struct {
    unsigned char        *hs;           /* handshake bytes reassembled */
    size_t                have;
    size_t                used;         /* of them, in messages read */
    unsigned              hello:1;      /* the ServerHello was read */
    unsigned             *version;
    STACK_OF(X509)      **chain;
    cg_serverhello_known_pt  known;
    void                 *data;
} cg_sh_flight_t;


static int cg_sh_messages(cg_sh_flight_t *f);
static int cg_sh_server_hello(const unsigned char *p, size_t len,
    unsigned *version);
static int cg_sh_certificate(cg_sh_flight_t *f, const unsigned char *p,
    size_t len);


int
cg_serverhello_chain(const unsigned char *buf, size_t len,
    unsigned *version, STACK_OF(X509) **chain)
{
    return cg_serverhello_chain_known(buf, len, version, chain, NULL, NULL);
}


int
cg_serverhello_chain_known(const unsigned char *buf, size_t len,
    unsigned *version, STACK_OF(X509) **chain, cg_serverhello_known_pt known,
    void *data)
{
    int                   rc;
    size_t                pos, rlen, records;
    const unsigned char  *p;
    cg_sh_flight_t        f;

    *version = 0;
    *chain = NULL;

    /* a server's first bytes are a handshake record */

    if ((len >= 1 && buf[0] != CG_TLS_HANDSHAKE)
        || (len >= 2 && buf[1] != 3))
    {
        return CG_ERR_INPUT;
    }

    memset(&f, 0, sizeof(cg_sh_flight_t));
    f.version = version;
    f.chain = chain;
    f.known = known;
    f.data = data;

    f.hs = malloc(CG_SERVERHELLO_MAX);
    if (f.hs == NULL) {
        return CG_ERR_NOMEM;
    }

    rc = CG_SERVERHELLO_AGAIN;
    pos = 0;
    records = 0;

    while (len - pos >= 5) {

        if (buf[pos + 1] != 3 || ++records > CG_SERVERHELLO_RECORDS) {
            rc = CG_ERR_INPUT;
            break;
        }

        rlen = ((size_t) buf[pos + 3] << 8) | buf[pos + 4];

        if (rlen == 0 || rlen > CG_TLS_RECORD_MAX) {
            rc = CG_ERR_INPUT;
            break;
        }

        if (len - pos - 5 < rlen) {
            break;                      /* the record is not all here */
        }

        p = buf + pos + 5;

        switch (buf[pos]) {

        case CG_TLS_HANDSHAKE:
            if (rlen > CG_SERVERHELLO_MAX - f.have) {
                rc = CG_ERR_INPUT;
                break;
            }

            memcpy(f.hs + f.have, p, rlen);
            f.have += rlen;

            rc = cg_sh_messages(&f);
            break;

        case CG_TLS_ALERT:

            /* a warning goes on; a fatal alert ends the handshake */

            if (rlen != 2 || (p[0] != 1 && p[0] != 2)) {
                rc = CG_ERR_INPUT;

            } else if (p[0] == 2) {
                rc = CG_SERVERHELLO_NO_CERT;
            }

            break;

        case CG_TLS_CHANGE_CIPHER:

            /* right after the ServerHello: an abbreviated handshake, the
             * session resumed without a certificate */

            rc = f.hello ? CG_SERVERHELLO_NO_CERT : CG_ERR_INPUT;
            break;

        default:
            rc = CG_ERR_INPUT;
        }

        if (rc != CG_SERVERHELLO_AGAIN) {
            break;
        }

        pos += 5 + rlen;
    }

    free(f.hs);

    return rc;
}


/* The messages complete so far, from where the last call stopped. */

static int
cg_sh_messages(cg_sh_flight_t *f)
{
    int                   rc;
    size_t                type, mlen;
    const unsigned char  *p;

    while (f->have - f->used >= 4) {
        p = f->hs + f->used;
        type = p[0];
        mlen = ((size_t) p[1] << 16) | ((size_t) p[2] << 8) | p[3];

        if (mlen > CG_SERVERHELLO_MAX - 4) {
            return CG_ERR_INPUT;
        }

        if (f->have - f->used - 4 < mlen) {
            return CG_SERVERHELLO_AGAIN;
        }

        f->used += 4 + mlen;
        p += 4;

        if (type == CG_HS_HELLO_REQUEST) {
            if (mlen != 0) {
                return CG_ERR_INPUT;
            }

            continue;                   /* a client ignores it here */
        }

        if (!f->hello) {
            if (type != CG_HS_SERVER_HELLO) {
                return CG_ERR_INPUT;
            }

            rc = cg_sh_server_hello(p, mlen, f->version);
            if (rc != CG_OK) {
                return rc;
            }

            f->hello = 1;
            continue;
        }

        if (type != CG_HS_CERTIFICATE) {
            return CG_SERVERHELLO_NO_CERT;
        }

        return cg_sh_certificate(f, p, mlen);
    }

    return CG_SERVERHELLO_AGAIN;
}


/* CG_OK with the version, or CG_SERVERHELLO_ENCRYPTED for TLS 1.3 (a
 * HelloRetryRequest included: it names TLS 1.3 the same way). */

static int
cg_sh_server_hello(const unsigned char *p, size_t len, unsigned *version)
{
    size_t           legacy, type, selected, v;
    cg_tls_reader_t  r, sub, exts, ext;

    r.p = p;
    r.left = len;

    if (cg_tls_read_uint(&r, 2, &legacy) != CG_OK || (legacy >> 8) != 3
        || cg_tls_read_skip(&r, 32) != CG_OK                  /* random */
        || cg_tls_read_vector(&r, 1, &sub) != CG_OK || sub.left > 32
        || cg_tls_read_skip(&r, 3) != CG_OK)                  /* suite,
                                                           compression */
    {
        return CG_ERR_INPUT;
    }

    selected = 0;

    if (r.left) {
        if (cg_tls_read_vector(&r, 2, &exts) != CG_OK || r.left != 0) {
            return CG_ERR_INPUT;
        }

        while (exts.left) {
            if (cg_tls_read_extension(&exts, &type, &ext) != CG_OK) {
                return CG_ERR_INPUT;
            }

            if (type != CG_EXT_SUPPORTED_VERSIONS) {
                continue;
            }

            if (ext.left != 2 || cg_tls_read_uint(&ext, 2, &v) != CG_OK) {
                return CG_ERR_INPUT;
            }

            selected = v;
        }
    }

    *version = (unsigned) (selected ? selected : legacy);

    /* TLS 1.3 and its drafts (0x7fXX) encrypt the certificate */

    if (*version >= 0x0304 || (*version >> 8) == 0x7f) {
        return CG_SERVERHELLO_ENCRYPTED;
    }

    if ((*version >> 8) != 3) {
        return CG_ERR_INPUT;
    }

    return CG_OK;
}


static int
cg_sh_certificate(cg_sh_flight_t *f, const unsigned char *p, size_t len)
{
    X509                 *x;
    cg_tls_reader_t       r, list, der;
    const unsigned char  *d;
    STACK_OF(X509)       *sk;

    r.p = p;
    r.left = len;

    if (cg_tls_read_vector(&r, 3, &list) != CG_OK || r.left != 0) {
        return CG_ERR_INPUT;
    }

    if (list.left == 0) {
        return CG_SERVERHELLO_NO_CERT;
    }

    if (f->known && f->known(p, len, f->data)) {
        return CG_OK;                   /* *chain stays NULL */
    }

    sk = sk_X509_new_null();
    if (sk == NULL) {
        return CG_ERR_NOMEM;
    }

    while (list.left) {
        if (cg_tls_read_vector(&list, 3, &der) != CG_OK || der.left == 0) {
            goto invalid;
        }

        d = der.p;
        x = d2i_X509(NULL, &d, (long) der.left);

        if (x == NULL || d != der.p + der.left) {
            X509_free(x);
            goto invalid;
        }

        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            sk_X509_pop_free(sk, X509_free);
            return CG_ERR_NOMEM;
        }
    }

    *f->chain = sk;

    return CG_OK;

invalid:

    sk_X509_pop_free(sk, X509_free);

    return CG_ERR_INPUT;
}
