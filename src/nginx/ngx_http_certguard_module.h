/*
 * The HTTP module's own types, shared by its files: the module itself
 * (ngx_http_certguard_module.c: directives, the handshake hook, verdicts
 * kept with sessions and connections, responses) and the CEF event it
 * builds (src/nginx/ngx_http_certguard_event.c).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef NGX_HTTP_CERTGUARD_MODULE_H_INCLUDED_
#define NGX_HTTP_CERTGUARD_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_certguard_conf.h"
#include "ngx_certguard_capture.h"
#include "ngx_certguard_memory.h"
#include "ngx_certguard_memo.h"


/* where a request's verdict came from: $certguard_cache */
#define NGX_HTTP_CERTGUARD_BYPASS     0     /* scored, no cache zone */
#define NGX_HTTP_CERTGUARD_MISS       1
#define NGX_HTTP_CERTGUARD_HIT        2
#define NGX_HTTP_CERTGUARD_SESSION    3     /* resumed TLS session */
#define NGX_HTTP_CERTGUARD_KEEPALIVE  4     /* reused upstream connection */

#define NGX_HTTP_CERTGUARD_KEY_MAX    (32 + 5 * sizeof(void *)                \
                                       + CG_NAME_MAX + NGX_SOCKADDR_STRLEN + 8)


typedef struct {
    ngx_certguard_memory_t     *memory;         /* certguard_memory, or NULL */
    ngx_certguard_memo_conf_t   verify_memo;    /* certguard_verify_memo */
} ngx_http_certguard_main_conf_t;


typedef struct {
    ngx_certguard_conf_t        common;         /* must be first */
    ngx_flag_t                  enable;
    ngx_uint_t                  block_status;
    ngx_certguard_capture_t     capture;
} ngx_http_certguard_loc_conf_t;


/*
 * A verdict kept with an upstream connection (SSL ex_data, for keepalive)
 * or with a TLS session (SSL_SESSION ex_data, for resumption): the objects
 * it was scored with, so that another configuration does not trust it.
 */
typedef struct {
    const cg_policy_t          *policy;
    const cg_trust_t           *trust;
    const cg_geoip_t           *geoip;
    const cg_crls_t            *crls;
    const cg_intermediates_t   *intermediates;
    cg_result_t                 result;
} ngx_http_certguard_record_t;


/* Per-SSL_CTX state: what nginx had configured before certguard. */
typedef struct {
    void                      (*info_callback)(const SSL *ssl, int where,
                                               int ret);
    unsigned                    verify_none:1;
} ngx_http_certguard_ssl_t;


typedef struct {
    cg_result_t                 result;
    u_char                      dst[NGX_SOCKADDR_STRLEN + 1];
    in_port_t                   dst_port;
    ngx_uint_t                  source;
    cg_event_t                  event;          /* for the CEF record */
    u_char                      src[NGX_SOCKADDR_STRLEN + 1];
    u_char                      user[256];      /* the proxy user, CEF */
    u_char                      tls_version[16];    /* of the upstream, */
    u_char                      tls_cipher[64];     /* kept like dst */
    u_char                      conn_id[17];
    ngx_str_t                   body;
    ngx_event_free_peer_pt      peer_free;
    void                       *peer_data;
    u_char                      key[NGX_HTTP_CERTGUARD_KEY_MAX];
    size_t                      key_len;        /* of the cache entry */
    unsigned                    scored:1;
    unsigned                    monitor:1;      /* a block is not enforced */
    unsigned                    evented:1;      /* event is filled in */
    unsigned                    blocked:1;      /* enforce mode block */
    unsigned                    replaced:1;     /* response is ours */
    unsigned                    body_sent:1;
    unsigned                    pending:1;      /* TLS 1.2: scored, waits
                                                   for the staple */
} ngx_http_certguard_ctx_t;


extern ngx_module_t  ngx_http_certguard_module;


/* The name nginx verifies, into buf: proxy_ssl_name or the upstream host,
 * without a port. */
ngx_int_t ngx_http_certguard_name(ngx_http_request_t *r,
    ngx_http_upstream_t *u, u_char *buf, size_t len);

/* The CEF event of the request's verdict, filled once; NULL when out of
 * memory. */
cg_event_t *ngx_http_certguard_event(ngx_http_request_t *r,
    ngx_http_certguard_ctx_t *ctx);

/* The upstream's TLS version and cipher, kept in ctx at scoring time. */
void ngx_http_certguard_tls(ngx_http_certguard_ctx_t *ctx, const SSL *ssl);

/* The engine's input for the chain the upstream sent (name: CG_NAME_MAX
 * bytes, the name checked; ctx->dst: the destination's address); NGX_ERROR
 * when there is nothing to score. */
ngx_int_t ngx_http_certguard_input(ngx_http_request_t *r,
    ngx_http_certguard_ctx_t *ctx, ngx_http_certguard_loc_conf_t *cglcf,
    X509 *leaf, STACK_OF(X509) *chain, u_char *name, cg_input_t *in);

/* Makes the verdict in ctx final: the sighting and the cache entry (fresh:
 * the engine's, just made), the logs, the block, the verdict kept with the
 * connection and the session. */
void ngx_http_certguard_decide(ngx_http_request_t *r, ngx_connection_t *c,
    SSL *ssl, ngx_http_certguard_loc_conf_t *cglcf,
    ngx_http_certguard_ctx_t *ctx, cg_input_t *in, ngx_uint_t fresh);

/* The stapled OCSP response the handshake has so far: its length, 0 for
 * none (src/nginx/ngx_http_certguard_staple.c). */
size_t ngx_http_certguard_staple(SSL *ssl, const unsigned char **resp);

/* The status callback (SSL_CTX_set_tlsext_status_cb): decides a TLS 1.2
 * verdict that waits for the staple. */
int ngx_http_certguard_ocsp_status(SSL *ssl, void *arg);

/* Decides a verdict that waits for the staple: with it (staple), or, for a
 * handshake that fails before it comes, as it was scored; NGX_DECLINED
 * when it blocks the handshake. */
ngx_int_t ngx_http_certguard_settle(SSL *ssl, ngx_uint_t staple);


#endif /* NGX_HTTP_CERTGUARD_MODULE_H_INCLUDED_ */
