/*
 * Capture: the chains a proxy scored, kept in a directory for replay.
 *
 * Each chain is stored once, named by the SHA-256 of its certificates
 * (the DER of each, leaf first, as the server sent them): <sha256>.pem,
 * the chain, written once and never changed, and <sha256>.json, a sidecar
 * rewritten at each sighting:
 *
 *   {"sha256":"...","name":"host.example","client_sni":null,
 *    "dst_addr":"192.0.2.1","dst_port":443,"first_seen":1700000000,
 *    "last_seen":1700000600,"count":3,"verdict":"allow","policy":"default"}
 *
 * name, client_sni, destination, verdict and policy are those of the
 * latest sighting; first_seen and count carry over.  Nothing else about a
 * client is kept.  Files appear whole (a temporary file, then rename()),
 * writers of many processes take turns on an flock() of DIR/.lock, and the
 * directory stays under a size budget by removing the entries seen least
 * recently.  The CLI reads sidecars with cg_capture_read() to replay what
 * was seen.  Plain C, no nginx types: the modules call cg_capture_write()
 * outside the TLS handshake, the unit tests call it directly.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef CG_CAPTURE_H
#define CG_CAPTURE_H

#include "certguard.h"


#define CG_CAPTURE_ADDR_MAX     64
#define CG_CAPTURE_POLICY_MAX   64


/* One sidecar; "" and 0 stand for what was not known. */
typedef struct {
    char          sha256[65];               /* the chain's, lower-case hex */
    char          name[CG_NAME_MAX];        /* the name checked */
    char          client_sni[CG_NAME_MAX];  /* SNI a client sent, tunnels */
    char          dst_addr[CG_CAPTURE_ADDR_MAX];
    unsigned      dst_port;
    int64_t       first_seen;               /* unix seconds */
    int64_t       last_seen;
    uint64_t      count;                    /* cold scorings */
    cg_verdict_t  verdict;
    char          policy[CG_CAPTURE_POLICY_MAX];
} cg_capture_record_t;


/*
 * The chain's digest as lower-case hex: leaf first (NULL: the chain's
 * first certificate), then the chain without the leaf when it starts with
 * it, as cg_input_handshake() takes them.  CG_OK, CG_ERR_ARG without a
 * certificate, CG_ERR_NOMEM.
 */
int cg_capture_digest(X509 *leaf, STACK_OF(X509) *chain, char hex[65]);

/*
 * Records one sighting in dir (which must exist): the chain's PEM file
 * when it is new, and its sidecar from seen (every field but sha256,
 * first_seen and count, which come from the chain and the sidecar before;
 * last_seen is the time of the sighting, 0 for the clock).  With max_size
 * above 0, a new chain then removes the entries seen least recently until
 * the directory's capture files add up to at most max_size bytes (the new
 * one too when it alone is larger).  Temporary files older than a minute,
 * left by a writer that died, go at the same time.  The record written is
 * copied to *out when out is not NULL.  CG_OK, or CG_ERR_IO with err->msg
 * naming the file and the system's reason.
 */
int cg_capture_write(const char *dir, uint64_t max_size, X509 *leaf,
    STACK_OF(X509) *chain, const cg_capture_record_t *seen,
    cg_capture_record_t *out, cg_error_t *err);

/* A sidecar as cg_capture_write() writes it; len the bytes written (like
 * snprintf: a return >= len means truncated). */
size_t cg_capture_format(const cg_capture_record_t *rec, char *buf,
    size_t len);

/*
 * Parses a sidecar: a JSON object; the keys above (others are skipped, so
 * that later versions may add some), null for what is not known.  CG_OK,
 * or CG_ERR_INPUT with err->msg saying what is wrong.
 */
int cg_capture_parse(const char *data, size_t len, cg_capture_record_t *rec,
    cg_error_t *err);

/* cg_capture_parse() of a file; CG_ERR_IO when it cannot be read. */
int cg_capture_read(const char *path, cg_capture_record_t *rec,
    cg_error_t *err);

#endif /* CG_CAPTURE_H */
