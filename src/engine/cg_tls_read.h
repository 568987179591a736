/*
 * Reading TLS handshake messages (RFC 8446 3.3, 3.4): big-endian integers
 * and length-prefixed vectors, every length checked against what remains.
 * The ClientHello and the ServerHello parsers share it.  Internal.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef CG_TLS_READ_H
#define CG_TLS_READ_H

#include <stddef.h>


typedef struct {
    const unsigned char  *p;
    size_t                left;
} cg_tls_reader_t;


/* Each returns CG_OK, or CG_ERR_INPUT when r has too few bytes left. */
int cg_tls_read_skip(cg_tls_reader_t *r, size_t n);

/* An integer of 1 to 3 bytes. */
int cg_tls_read_uint(cg_tls_reader_t *r, size_t bytes, size_t *v);

/* A vector with a length of lenbytes: sub covers its contents, r moves
 * past it. */
int cg_tls_read_vector(cg_tls_reader_t *r, size_t lenbytes,
    cg_tls_reader_t *sub);

/* An extension (RFC 8446 4.2): its type, and data covering its contents. */
int cg_tls_read_extension(cg_tls_reader_t *r, size_t *type,
    cg_tls_reader_t *data);

#endif /* CG_TLS_READ_H */
