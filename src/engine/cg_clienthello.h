/*
 * certguard: what a TLS ClientHello offers, read from the bytes a client
 * sent, for the stream module: the server name (passthrough probes, and the
 * check that the SNI inside a CONNECT tunnel matches the CONNECT host) and
 * the parameters a probe copies so that a destination cannot tell it from
 * the client it speaks for (ALPN, versions, groups, cipher suites,
 * signature algorithms, the extensions offered).
 *
 * Plain C, no allocation, no nginx types; the input may be a prefix of what
 * the client will send, so the caller can ask again once more bytes arrive.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef CG_CLIENTHELLO_H
#define CG_CLIENTHELLO_H

#include <stddef.h>
#include <stdint.h>

#include "certguard.h"

/* Returned when buf is a valid prefix of a ClientHello that is not complete. */
#define CG_CLIENTHELLO_AGAIN    (-1)

/* The largest ClientHello body read (records are reassembled up to this). */
#define CG_CLIENTHELLO_MAX      16384

/* More records than this for one ClientHello is an attack, not TLS. */
#define CG_CLIENTHELLO_RECORDS  64

/* What cg_clienthello_t keeps of each list; a longer list is cut there
 * (truncated set).  Real clients offer a fraction of these. */
#define CG_CLIENTHELLO_ALPN_MAX     256     /* bytes of the wire list */
#define CG_CLIENTHELLO_VERSIONS     16
#define CG_CLIENTHELLO_CIPHERS      128
#define CG_CLIENTHELLO_GROUPS       64
#define CG_CLIENTHELLO_SIGALGS      64
#define CG_CLIENTHELLO_EXTENSIONS   64

/* TLS extension types (IANA) that the stream module's probe mirrors */
#define CG_TLS_EXT_SERVER_NAME          0
#define CG_TLS_EXT_STATUS_REQUEST       5
#define CG_TLS_EXT_SUPPORTED_GROUPS     10
#define CG_TLS_EXT_SIGNATURE_ALGORITHMS 13
#define CG_TLS_EXT_ALPN                 16
#define CG_TLS_EXT_SCT                  18
#define CG_TLS_EXT_ENCRYPT_THEN_MAC     22
#define CG_TLS_EXT_EXTENDED_MASTER      23
#define CG_TLS_EXT_SESSION_TICKET       35
#define CG_TLS_EXT_SUPPORTED_VERSIONS   43
#define CG_TLS_EXT_POST_HANDSHAKE_AUTH  49


/*
 * A ClientHello as offered, in the client's order.  Lists are IANA code
 * points with GREASE values (RFC 8701) left out, since clients pick them
 * at random per connection; alpn is the protocol_name_list of the ALPN
 * extension as sent (length-prefixed names, GREASE names left out).
 * nversions 0: no supported_versions extension (TLS 1.2 or older, whose
 * version is legacy_version).
 */
typedef struct {
    char            sni[256];               /* host_name, or "" */
    unsigned        legacy_version;         /* e.g. 0x0303 */
    unsigned char   alpn[CG_CLIENTHELLO_ALPN_MAX];
    size_t          alpn_len;               /* 0: no ALPN */
    uint16_t        versions[CG_CLIENTHELLO_VERSIONS];
    unsigned        nversions;
    uint16_t        ciphers[CG_CLIENTHELLO_CIPHERS];
    unsigned        nciphers;
    uint16_t        groups[CG_CLIENTHELLO_GROUPS];
    unsigned        ngroups;
    uint16_t        sigalgs[CG_CLIENTHELLO_SIGALGS];
    unsigned        nsigalgs;
    uint16_t        extensions[CG_CLIENTHELLO_EXTENSIONS];  /* types */
    unsigned        nextensions;
    unsigned        truncated:1;            /* a list did not fit */
} cg_clienthello_t;


/*
 * CG_OK: *ch describes the ClientHello at the start of buf (bytes after it
 * are not read); CG_CLIENTHELLO_AGAIN: more bytes are needed;
 * CG_ERR_INPUT: not a TLS ClientHello, malformed (in its own fields or in
 * one of the extensions read: server_name, ALPN, supported_versions,
 * supported_groups, signature_algorithms; an extension twice), larger than
 * CG_CLIENTHELLO_MAX, or a server name that is not a plain DNS name
 * ([A-Za-z0-9._-]).  *ch is filled only on CG_OK.
 */
int cg_clienthello_parse(const unsigned char *buf, size_t len,
    cg_clienthello_t *ch);

/*
 * cg_clienthello_parse() for the server name alone: CG_OK with sni holding
 * it, or "" when the ClientHello has none; CG_ERR_INPUT also for a name
 * that does not fit in snilen bytes with its NUL.
 */
int cg_clienthello_sni(const unsigned char *buf, size_t len, char *sni,
    size_t snilen);

/*
 * After CG_CLIENTHELLO_AGAIN: the length buf must reach before another call
 * can decide (the end of the record that is incomplete), so that a client
 * sending its ClientHello a byte at a time costs one parse, not one per byte.
 */
size_t cg_clienthello_need(const unsigned char *buf, size_t len);

/* Whether an extension of this type was offered. */
int cg_clienthello_has(const cg_clienthello_t *ch, unsigned type);

/* Whether v is a GREASE value (RFC 8701: 0x0A0A, 0x1A1A, ... 0xFAFA). */
int cg_tls_grease(unsigned v);

#endif /* CG_CLIENTHELLO_H */
