/*
 * certguard: an HTTP/1.x proxy request (RFC 9112) read from the bytes a
 * client sent, up to the empty line that ends its header: for the stream
 * module's CONNECT front end, and for a proxy on one port that must tell a
 * CONNECT from an absolute-form request ("GET http://host/ HTTP/1.1").
 *
 * Plain C, no allocation, no nginx types.  Nothing is copied: results are
 * offsets into the caller's buffer.  The input may be a prefix of what the
 * client will send; the caller calls again with the same buffer, grown, and
 * the same struct, and lines read before are not read again (a client that
 * sends a byte at a time costs one pass over its request, not one per byte).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef CG_CONNECT_H
#define CG_CONNECT_H

#include <stddef.h>

#include "certguard.h"

/* Returned when buf is a valid prefix of a request that is not complete. */
#define CG_CONNECT_AGAIN        (-1)

/* Returned when the header has not ended within the caller's max bytes. */
#define CG_CONNECT_TOO_LARGE    (-2)

/* The longest host name of a target (RFC 1035). */
#define CG_CONNECT_HOST_MAX     253


typedef struct {
    /* The request, set on CG_OK; offsets are from buf. */
    size_t        method_len;       /* the method is at offset 0 */
    unsigned      connect:1;        /* the method is CONNECT */
    unsigned      version;          /* x of HTTP/1.x: 0 or 1 */
    size_t        target_off;       /* the request target as sent */
    size_t        target_len;
    size_t        host_off;         /* host of the target, without the */
    size_t        host_len;         /* brackets of an IPv6 literal, case
                                       as sent; 0: no host (a non-CONNECT
                                       target not absolute http(s)) */
    unsigned      port;             /* 1-65535, or the scheme's default */
    size_t        header_end;       /* the bytes the request takes, up to
                                       and with the empty line */
    unsigned      auth:1;           /* a Proxy-Authorization field was sent */
    size_t        auth_off;         /* its value, without the whitespace */
    size_t        auth_len;         /* around it */

    /*
     * Set with CG_ERR_INPUT when the target has a "user:pass@" part (RFC
     * 9110 4.2.4): the request is refused, and target_len stays 0 so that
     * the target, a password, is never logged.
     */
    unsigned      userinfo:1;

    /* Why CG_ERR_INPUT or CG_CONNECT_TOO_LARGE: static text, no input. */
    const char   *error;

    /* Between calls on a growing buffer; zero the struct before the first. */
    size_t        scanned;          /* complete lines read */
    size_t        looked;           /* bytes searched for a line end */
} cg_connect_t;


/*
 * Reads the request in the len bytes of buf; max is the most bytes the
 * request may take (the size of the caller's buffer).
 *
 * CG_OK: the header is complete and req is filled; a CONNECT has an
 * authority-form target "host:port" or "[v6]:port" (connect set), any other
 * method is reported with connect clear (the caller answers 405, or routes an
 * absolute-form request).  CG_CONNECT_AGAIN: more bytes are needed.
 * CG_CONNECT_TOO_LARGE: no empty line within max bytes.  CG_ERR_INPUT: not
 * an HTTP/1.0 or 1.1 request line (a client talking TLS is refused at its
 * first byte), a CONNECT target that is not host:port, a control character
 * or NUL, a malformed or folded header line, two Proxy-Authorization fields,
 * or userinfo in the target; req->error says which.  For an invalid CONNECT
 * target, target_off and target_len are set.  CG_ERR_ARG: req is NULL, max
 * is 0, or buf shrank since the last call.
 */
int cg_connect_parse(const unsigned char *buf, size_t len, size_t max,
    cg_connect_t *req);

#endif /* CG_CONNECT_H */
