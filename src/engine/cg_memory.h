/*
 * certguard certificate memory: what each destination (name and port)
 * presented before, kept in an LMDB environment (a directory) that the
 * nginx workers of one node and the CLI share.  docs/memory.md has the
 * design; the signals that read it (first_seen, cert_changed,
 * issuer_changed, cert_moved) are in docs/signals.md.
 *
 * The shape is the rest of the engine's: a handle opened once, lookups that
 * fill a caller's struct, an explicit close.  A handle belongs to one
 * thread (it keeps one read transaction for reuse); each process opens its
 * own, after any fork.  Lookups only read; writes (sightings, imports,
 * forgetting) are write transactions, which LMDB serializes across the
 * processes of the node.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef CG_MEMORY_H
#define CG_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#include "certguard.h"


#define CG_MEMORY_CERTS_MAX     8       /* certificates kept per name:port */
#define CG_MEMORY_ADDRS_MAX     4       /* destination addresses per cert */
#define CG_MEMORY_GEO_MAX       4       /* ASN/country pairs per cert */
#define CG_MEMORY_ADDR_LEN      46      /* INET6_ADDRSTRLEN */
#define CG_MEMORY_KEY_MAX       (CG_NAME_MAX + 8)   /* "name:port" */

#define CG_MEMORY_SIZE_DEFAULT  ((size_t) 256 * 1024 * 1024)
#define CG_MEMORY_SIZE_MIN      ((size_t) 256 * 1024)

/* The names an environment holds at most: one per this many bytes of its
 * map size (docs/memory.md, "Sizing"). */
#define CG_MEMORY_BYTES_PER_NAME  2048

/* cg_memory_open() flags */
#define CG_MEMORY_RDONLY        0x01    /* lookups, show and export only */


/* Where a certificate was served from, with GeoIP. */
typedef struct {
    uint32_t        asn;                /* 0: not known */
    char            country[3];         /* ISO 3166 alpha-2, or "" */
    int64_t         first_seen;         /* unix seconds */
    int64_t         last_seen;
} cg_memory_geo_t;


/* One certificate a name:port presented. */
typedef struct {
    unsigned char   sha256[32];         /* the leaf's DER */
    unsigned char   spki[32];           /* its SubjectPublicKeyInfo DER */
    unsigned        has_spki:1;         /* an import may lack it */
    unsigned        public_root:1;      /* its chain verified to a public
                                           root (the system bundle) */
    char            issuer[CG_DN_MAX];  /* RFC 2253, UTF-8 */
    int64_t         not_before;         /* unix seconds; 0: not known */
    int64_t         not_after;          /* 0: not known (taken as valid) */
    int64_t         first_seen;
    int64_t         last_seen;
    uint32_t        count;              /* sightings recorded, saturating */
    unsigned        naddrs;             /* most recent first */
    char            addrs[CG_MEMORY_ADDRS_MAX][CG_MEMORY_ADDR_LEN];
    unsigned        ngeo;
    cg_memory_geo_t geo[CG_MEMORY_GEO_MAX];
} cg_memory_cert_t;


/* Everything the memory holds for one name:port. */
typedef struct {
    char              name[CG_NAME_MAX];    /* lower case, no final dot */
    unsigned          port;
    int64_t           first_seen;           /* of the name:port */
    int64_t           last_seen;
    unsigned          ncerts;               /* 0: never seen */
    cg_memory_cert_t  certs[CG_MEMORY_CERTS_MAX];  /* most recent first */
} cg_memory_entry_t;


/* What one handshake showed, flat so that a caller can queue it. */
typedef struct {
    char            name[CG_NAME_MAX];
    unsigned        port;
    int64_t         at;                 /* unix seconds */
    unsigned char   sha256[32];
    unsigned char   spki[32];
    char            issuer[CG_DN_MAX];
    int64_t         not_before;
    int64_t         not_after;
    unsigned        public_root:1;
    char            addr[CG_MEMORY_ADDR_LEN];   /* "" not known */
    uint32_t        asn;
    char            country[3];
} cg_memory_sighting_t;


/*
 * Opens (read-write: creates) the environment in directory dir, with a map
 * of size bytes (at least CG_MEMORY_SIZE_MIN; 0: the size the store was
 * last given, CG_MEMORY_SIZE_DEFAULT for a new one), which bounds the
 * store: past size / CG_MEMORY_BYTES_PER_NAME names, or when the pages in
 * use near the map's size, the least recently seen names are evicted.
 * Stale reader slots of processes that died are cleared.  CG_OK,
 * CG_ERR_IO with err->msg naming the directory, CG_ERR_NOMEM, CG_ERR_ARG.
 */
int cg_memory_open(cg_memory_t **mem, const char *dir, size_t size,
    unsigned flags, cg_error_t *err);
void cg_memory_close(cg_memory_t *mem);

/* The name as the memory keys it: lower case, one final dot dropped;
 * port 0 (not known) is 443.  0, or -1 for a name that cannot be a key
 * (empty, too long, or not printable UTF-8: such a name is not kept). */
int cg_memory_key(const char *name, unsigned port, char *key, size_t size);

/*
 * What the memory holds for name:port (port 0: 443): CG_OK with
 * e->ncerts 0 when nothing; CG_ERR_IO when the store could not be read
 * (the caller scores without the memory).  A stored value that does not
 * decode counts as nothing.
 */
int cg_memory_lookup(cg_memory_t *mem, const char *name, unsigned port,
    cg_memory_entry_t *e);

/*
 * The sighting of an evaluated handshake: the name, port and time of the
 * input (now 0: the clock), the leaf's digests, issuer and validity from
 * the result and the input's leaf, the destination address, and its ASN
 * and country when the input has GeoIP.  CG_ERR_ARG without a name (a
 * sighting is keyed by name) or a leaf.
 */
int cg_memory_sighting(cg_memory_sighting_t *s, const cg_input_t *in,
    const cg_result_t *res);

/*
 * Records n sightings in one write transaction, then evicts down to the
 * bound (at most n + 64 names per call, so that a step stays bounded).
 * CG_OK, or CG_ERR_IO (err set) when the transaction failed: nothing of
 * it was written.
 */
int cg_memory_record(cg_memory_t *mem, const cg_memory_sighting_t *s,
    size_t n, cg_error_t *err);

/* Merges n entries (an import) in one write transaction: counts add up,
 * first and last sightings widen, addresses and locations join. */
int cg_memory_merge(cg_memory_t *mem, const cg_memory_entry_t *e, size_t n,
    cg_error_t *err);

/* Removes name:port, or every port of name when port is 0; *removed (may
 * be NULL) is how many entries went. */
int cg_memory_forget(cg_memory_t *mem, const char *name, unsigned port,
    unsigned *removed, cg_error_t *err);

/*
 * Calls cb for each entry, in key order: every entry (name NULL), or each
 * port of name.  A non-zero return of cb stops the walk and is returned.
 * CG_ERR_IO when the store could not be read.
 */
int cg_memory_foreach(cg_memory_t *mem, const char *name,
    int (*cb)(const cg_memory_entry_t *e, void *arg), void *arg);

/* Names held and the bound on them. */
int cg_memory_stat(cg_memory_t *mem, size_t *names, size_t *max_names);

/*
 * The export format: one JSON object a line per certificate of an entry
 * (index i), without a newline; as the formatters of certguard.h, at most
 * len bytes with the NUL, returning the full length.
 *
 *   {"name":"a.example","port":443,"sha256":"<hex>","spki":"<hex>",
 *    "issuer":"CN=...","public_root":B,"not_before":N,"not_after":N,
 *    "first_seen":N,
 *    "last_seen":N,"count":N,"addrs":["192.0.2.1"],
 *    "geo":[{"asn":64496,"country":"DE","first_seen":N,"last_seen":N}]}
 */
size_t cg_memory_format_json(const cg_memory_entry_t *e, unsigned i,
    char *buf, size_t len);

/*
 * Parses one line of that format into e (one certificate).  name and
 * sha256 are required; the rest may be missing (times then default to
 * now, count to 1), unknown keys are skipped.  CG_OK, or CG_ERR_SYNTAX
 * with err->msg.
 */
int cg_memory_parse_json(const char *line, size_t len, int64_t now,
    cg_memory_entry_t *e, cg_error_t *err);

#endif /* CG_MEMORY_H */
