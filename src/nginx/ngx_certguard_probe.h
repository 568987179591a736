/*
 * certguard's probe: a TLS handshake of the proxy's own to a destination,
 * with the SNI the client asks for, whose certificate chain (captured by
 * the verify callback, accepted whatever it is) the engine scores.  Nothing
 * here knows a stream session or an HTTP request: a caller gives the
 * destination, the engine objects and a waiter, and its handler gets the
 * result.
 *
 * Probes run in a worker's event loop and belong to no connection: callers
 * that need the same key while a probe runs wait on it, and workers share
 * one probe of a key through the cache's claim (the others poll the zone).
 * Results are put in the cache by the probe.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef NGX_CERTGUARD_PROBE_H_INCLUDED_
#define NGX_CERTGUARD_PROBE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "certguard.h"
#include "cg_clienthello.h"
#include "ngx_certguard_shared.h"
#include "ngx_certguard_capture.h"
#include "ngx_certguard_memory.h"


typedef struct ngx_certguard_probe_s         ngx_certguard_probe_t;
typedef struct ngx_certguard_probe_waiter_s  ngx_certguard_probe_waiter_t;


/*
 * Called once for each waiter when its probe ends: with the result and
 * failure NULL; or with res NULL and failure a static string ("timed
 * out", "TLS handshake failed", ...).  res is the probe's and gone after
 * the call: copy what is kept.  The handler may run
 * inside ngx_certguard_probe_start() (a connect() that fails at once); it
 * should only take the result and post an event, not finalize anything.
 */
typedef void (*ngx_certguard_probe_handler_pt)(
    ngx_certguard_probe_waiter_t *w, cg_result_t *res, const char *failure);


/* A caller waiting on a probe; the caller's memory, zero it first. */
struct ngx_certguard_probe_waiter_s {
    ngx_certguard_probe_handler_pt   handler;
    void                            *data;        /* the caller's */

    ngx_certguard_probe_t           *probe;       /* NULL: not waiting */
    ngx_queue_t                      queue;       /* in the probe's list */
};


/* What to probe and how to score it; read by ngx_certguard_probe_start(),
 * which copies what it keeps (the engine objects and the cache must live as
 * long as the configuration does). */
typedef struct {
    ngx_str_t                        key;         /* the cache key: names
                                                     the configuration, the
                                                     name and address:port */
    ngx_str_t                        name;        /* the name scored; sent
                                                     as SNI without a hello,
                                                     but an IP literal is
                                                     sent none (RFC 6066)
                                                     and checked against IP
                                                     SANs */
    const cg_clienthello_t          *hello;       /* the client's: its SNI
                                                     and parameters are the
                                                     probe's (part of key);
                                                     NULL: name as SNI and
                                                     OpenSSL's defaults */
    const char                      *client_sni;  /* scored as client_sni
                                                     (sni_mismatch); NULL:
                                                     none */
    ngx_str_t                        mark;        /* a block is also put
                                                     under this key: the
                                                     destination's, for
                                                     clients not yet heard;
                                                     len 0: none */
    struct sockaddr                 *sockaddr;    /* with the port */
    socklen_t                        socklen;

    ngx_ssl_t                       *ssl;         /* made by ..._ssl() */
    ngx_msec_t                       timeout;     /* connect and handshake */

    const cg_policy_t               *policy;
    const cg_trust_t                *trust;
    const cg_geoip_t                *geoip;       /* NULL: no geo signals */
    const cg_crls_t                 *crls;        /* NULL: no CRLs */
    const cg_intermediates_t        *intermediates;   /* NULL: none */

    ngx_certguard_cache_t           *cache;       /* shm_zone NULL: none */
    ngx_certguard_memory_t          *memory;      /* NULL: no memory */
    ngx_certguard_capture_t         *capture;     /* NULL: no capture */
    ngx_queue_t                     *probes;      /* the worker's running
                                                     probes of this caller
                                                     (ngx_queue_init once) */
    ngx_log_t                       *log;         /* copied: the probe's log
                                                     names the caller's
                                                     client */
    void                           (*done)(void *data);
    void                            *done_data;   /* done(done_data) once
                                                     this probe ends, if it
                                                     is a new one; NULL:
                                                     nothing */
} ngx_certguard_probe_params_t;


/*
 * The client context of probes: TLS 1.0 to 1.3 (a probe without a
 * client's ClientHello asks for 1.2 at least), no verification by OpenSSL
 * (the engine judges the chain), freed with the cycle.
 */
ngx_ssl_t *ngx_certguard_probe_ssl(ngx_conf_t *cf);

/*
 * Starts a probe of params->key, or joins the one running; w waits on it
 * until its handler is called.  NGX_OK, or NGX_ERROR (out of memory; w is
 * not waiting).
 */
ngx_int_t ngx_certguard_probe_start(ngx_certguard_probe_params_t *params,
    ngx_certguard_probe_waiter_t *w);

/* Whether this worker runs a probe of this key (a start would join it). */
ngx_uint_t ngx_certguard_probe_running(ngx_queue_t *probes, ngx_str_t *key);

/* Stops waiting (a client that left); the probe runs on for the others
 * and for the cache.  Does nothing when w is not waiting. */
void ngx_certguard_probe_cancel(ngx_certguard_probe_waiter_t *w);

/*
 * What a probe sends for this ClientHello and scores with this client_sni,
 * as 32 hex digits (a SHA-256, cut) and a NUL in id: a cache key names it,
 * so that clients share a verdict only when a destination cannot tell
 * their probes apart.  The lists as the client offered them (GREASE aside),
 * the version range and the extensions the probe mirrors count; the order
 * of the extensions does not (clients shuffle it, and the probe cannot
 * copy it).
 */
void ngx_certguard_probe_hello_id(const cg_clienthello_t *hello,
    const char *client_sni, u_char id[33]);

/* The failure of a probe whose chain the engine could not evaluate: no
 * probe_failure setting lets that through. */
extern const char  ngx_certguard_probe_eval_failed[];


#endif /* NGX_CERTGUARD_PROBE_H_INCLUDED_ */
