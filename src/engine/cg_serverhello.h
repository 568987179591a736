/*
 * certguard: the certificate chain a TLS server sends in the clear, read
 * from the bytes it sent a client (its first flight: ServerHello, then
 * Certificate), for the stream module's check that a tunnel with TLS 1.2
 * or older carries the certificate that was probed.  With TLS 1.3 the
 * Certificate message is encrypted, and this says so.
 *
 * No nginx types; the input may be a prefix of what the server will send,
 * so the caller asks again, with all the bytes so far, once more arrive.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef CG_SERVERHELLO_H
#define CG_SERVERHELLO_H

#include <stddef.h>

#include <openssl/x509.h>

#include "certguard.h"

#define CG_SERVERHELLO_AGAIN        (-1)    /* a valid prefix: more bytes */
#define CG_SERVERHELLO_ENCRYPTED    (-2)    /* TLS 1.3: nothing in clear */
#define CG_SERVERHELLO_NO_CERT      (-3)    /* no Certificate follows the
                                               ServerHello: a resumed
                                               session, a fatal alert, a
                                               key exchange without one */

/* Handshake bytes reassembled, at most, up to the end of the Certificate
 * message; a longer first flight is CG_ERR_INPUT. */
#define CG_SERVERHELLO_MAX          65536

/* The most records read for it (at least 4 KB of handshake a record on
 * average, or an attack). */
#define CG_SERVERHELLO_RECORDS      64


/*
 * CG_OK: *chain holds the certificates of the Certificate message, leaf
 * first, as sent (free with sk_X509_pop_free(chain, X509_free)), *version
 * is the ServerHello's version (0x0303 for TLS 1.2); the other statuses
 * above leave *chain NULL (*version set once a ServerHello was read);
 * CG_ERR_INPUT: not a TLS server's first flight, malformed (a record type
 * or a message out of place, a certificate that is no DER), or too large;
 * CG_ERR_NOMEM.
 */
int cg_serverhello_chain(const unsigned char *buf, size_t len,
    unsigned *version, STACK_OF(X509) **chain);

/*
 * A Certificate message seen before: known(msg, len, data) is asked, with
 * the message's body as sent, before any certificate is parsed.  Parsing
 * is deterministic, so a caller that remembers messages it saw parse, and
 * what it concluded, need not parse one again: when known() returns 1,
 * cg_serverhello_chain_known() returns CG_OK with *chain NULL.  Otherwise
 * (known NULL, or it returned 0) it is cg_serverhello_chain().
 */
typedef int (*cg_serverhello_known_pt)(const unsigned char *msg, size_t len,
    void *data);

int cg_serverhello_chain_known(const unsigned char *buf, size_t len,
    unsigned *version, STACK_OF(X509) **chain, cg_serverhello_known_pt known,
    void *data);

#endif /* CG_SERVERHELLO_H */
