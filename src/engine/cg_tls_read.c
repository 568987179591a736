/*
 * Reading TLS handshake messages (cg_tls_read.h).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include "certguard.h"
#include "cg_tls_read.h"


int
cg_tls_read_skip(cg_tls_reader_t *r, size_t n)
{
    if (r->left < n) {
        return CG_ERR_INPUT;
    }

    r->p += n;
    r->left -= n;

    return CG_OK;
}


int
cg_tls_read_uint(cg_tls_reader_t *r, size_t bytes, size_t *v)
{
    size_t  i;

    if (r->left < bytes) {
        return CG_ERR_INPUT;
    }

    *v = 0;

    for (i = 0; i < bytes; i++) {
        *v = (*v << 8) | r->p[i];
    }

    return cg_tls_read_skip(r, bytes);
}


int
cg_tls_read_vector(cg_tls_reader_t *r, size_t lenbytes, cg_tls_reader_t *sub)
{
    size_t  n;

    if (cg_tls_read_uint(r, lenbytes, &n) != CG_OK || r->left < n) {
        return CG_ERR_INPUT;
    }

    sub->p = r->p;
    sub->left = n;

    return cg_tls_read_skip(r, n);
}


int
cg_tls_read_extension(cg_tls_reader_t *r, size_t *type,
    cg_tls_reader_t *data)
{
    if (cg_tls_read_uint(r, 2, type) != CG_OK) {
        return CG_ERR_INPUT;
    }

    return cg_tls_read_vector(r, 2, data);
}
