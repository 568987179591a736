/*
 * certguard: the server name (SNI) of a TLS ClientHello, read from the bytes
 * a client sent, for the stream module's passthrough probes and its check
 * that the SNI inside a CONNECT tunnel matches the CONNECT host.
 *
 * Plain C, no allocation, no nginx types; the input may be a prefix of what
 * the client will send, so the caller can ask again once more bytes arrive.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef CG_CLIENTHELLO_H
#define CG_CLIENTHELLO_H

#include <stddef.h>

#include "certguard.h"

/* Returned when buf is a valid prefix of a ClientHello that is not complete. */
#define CG_CLIENTHELLO_AGAIN    (-1)

/* The largest ClientHello body read (records are reassembled up to this). */
#define CG_CLIENTHELLO_MAX      16384

/* More records than this for one ClientHello is an attack, not TLS. */
#define CG_CLIENTHELLO_RECORDS  64

/*
 * CG_OK: sni holds the host_name of the server_name extension, or "" when the
 * ClientHello has none; CG_CLIENTHELLO_AGAIN: more bytes are needed;
 * CG_ERR_INPUT: not a TLS ClientHello, malformed, larger than
 * CG_CLIENTHELLO_MAX, or a name that is not a plain DNS name or does not fit
 * in snilen bytes with its NUL.
 */
int cg_clienthello_sni(const unsigned char *buf, size_t len, char *sni,
    size_t snilen);

/*
 * After CG_CLIENTHELLO_AGAIN: the length buf must reach before another call
 * can decide (the end of the record that is incomplete), so that a client
 * sending its ClientHello a byte at a time costs one parse, not one per byte.
 */
size_t cg_clienthello_need(const unsigned char *buf, size_t len);

#endif /* CG_CLIENTHELLO_H */
