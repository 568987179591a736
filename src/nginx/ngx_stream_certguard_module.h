/*
 * ngx_stream_certguard_module: what the module's files share (its
 * configuration and the per-session context), not an API for others.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef NGX_STREAM_CERTGUARD_MODULE_H
#define NGX_STREAM_CERTGUARD_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_stream.h>

#include "certguard.h"
#include "cg_clienthello.h"
#include "cg_connect.h"
#include "ngx_certguard_conf.h"
#include "ngx_certguard_probe.h"
#include "ngx_certguard_capture.h"
#include "ngx_certguard_memory.h"
#include "ngx_certguard_memo.h"


#define NGX_STREAM_CERTGUARD_FAILURE_ALLOW  0
#define NGX_STREAM_CERTGUARD_FAILURE_BLOCK  1

#define NGX_STREAM_CERTGUARD_HOST_MAX       253

/* how often a session held by certguard_probe_limit looks for a slot */
#define NGX_STREAM_CERTGUARD_LIMIT_LOOK     50

/* HTTP answers to a CONNECT that nginx's stream module names no code for */
#define NGX_STREAM_CERTGUARD_METHOD         405
#define NGX_STREAM_CERTGUARD_PROXY_AUTH     407

/* an HTTP error answer with a literal reason */
#define ngx_stream_certguard_error(s, status, text)                          \
    ngx_stream_certguard_respond(s, status, text, sizeof(text) - 1)


typedef struct ngx_stream_certguard_limit_node_s
    ngx_stream_certguard_limit_node_t;


/* Where a session is; the preread handler is a loop over these. */
typedef enum {
    ngx_stream_certguard_st_read = 0,       /* CONNECT request / ClientHello */
    ngx_stream_certguard_st_lookup,         /* have host and port */
    ngx_stream_certguard_st_resolving,
    ngx_stream_certguard_st_address,        /* have the destination address */
    ngx_stream_certguard_st_probing,        /* waiting on a probe */
    ngx_stream_certguard_st_limited,        /* waiting for a probe slot */
    ngx_stream_certguard_st_decided,        /* have a result or a failure */
    ngx_stream_certguard_st_hello,          /* answered, waiting for the
                                               tunnel's ClientHello */
    ngx_stream_certguard_st_refused,        /* not resolved or not allowed */
    ngx_stream_certguard_st_done
} ngx_stream_certguard_state_e;


typedef struct {
    ngx_certguard_conf_t            common;      /* must be first */

    ngx_flag_t                      connect;
    ngx_flag_t                      probe;
    ngx_flag_t                      connect_sni;
    ngx_uint_t                      probe_port;
    ngx_array_t                    *ports;       /* port ranges */
    ngx_msec_t                      probe_timeout;
    ngx_uint_t                      probe_failure;
    ngx_str_t                       http_pass;   /* "" : none */
    ngx_uint_t                      probe_limit; /* 0: off */
    ngx_uint_t                      probe_rate;  /* 0: none */
    ngx_msec_t                      probe_wait;  /* for a slot; 0: none */
    ngx_certguard_capture_t         capture;

    /* a worker's: the configuration's part of the cache keys, made on
     * its first session (ngx_stream_certguard_session.c) */
    ngx_str_t                       key_prefix;
} ngx_stream_certguard_srv_conf_t;


typedef struct {
    ngx_ssl_t                      *ssl;         /* probes' client context */
    ngx_queue_t                     probes;      /* this worker's probes */
    ngx_certguard_memory_t         *memory;      /* certguard_memory */

    /* this worker's clients waiting for probes (certguard_probe_limit) */
    ngx_rbtree_t                    limit_tree;
    ngx_rbtree_node_t               limit_sentinel;
    ngx_queue_t                     limit_lru;
    ngx_certguard_memo_conf_t       verify_memo; /* certguard_verify_memo */
} ngx_stream_certguard_main_conf_t;


typedef struct {
    ngx_stream_session_t           *session;
    ngx_stream_certguard_state_e    state;

    ngx_str_t                       host;        /* lower case, no brackets */
    ngx_str_t                       target;      /* "host:port", for CEF */
    in_port_t                       port;
    cg_connect_t                    request;     /* the CONNECT request */
    size_t                          hello_need;  /* bytes before a parse */

    ngx_certguard_resolve_t         resolve;     /* the destination */
    ngx_str_t                       upstream;    /* "address:port" */
    u_char                          addr_only[NGX_SOCKADDR_STRLEN];
    u_char                          client_addr[NGX_SOCKADDR_STRLEN];

    ngx_certguard_probe_waiter_t    waiter;      /* on a probe */
    ngx_event_t                     resume;
    ngx_event_t                     limit_wait;  /* the next look for a
                                                    probe slot */
    ngx_msec_t                      limit_until;
    ngx_event_t                     linger;      /* a refused client's
                                                    last bytes are read */
    ngx_uint_t                      status;      /* ... then this one */
    size_t                          lingered;

    cg_clienthello_t               *hello;       /* the client's until the
                                                    verdict (ngx_alloc());
                                                    NULL: none, not TLS */
    ngx_str_t                       dest_key;    /* the destination's key:
                                                    no client in it */
    u_char                         *flight;      /* the server's first
                                                    bytes in the tunnel
                                                    (ngx_alloc()) */
    size_t                          flight_len;
    size_t                          flight_size;

    cg_result_t                    *result;      /* NULL: nothing scored */
    cg_result_t                    *lookup;      /* for a cached result */
    char                            client_sni[256];
    const char                     *failure;     /* why the probe failed */
    ngx_str_t                       user;        /* proxy user, also of a
                                                    failed attempt; with
                                                    a NUL */
    ngx_str_t                       key;

    unsigned                        in_handler:1;
    unsigned                        limit_waited:1; /* limit_until set */
    unsigned                        logged:1;
    unsigned                        failed:1;
    unsigned                        blocked:1;
    unsigned                        cached:1;
    unsigned                        authenticated:1;
    unsigned                        answered:1;  /* 200 sent */
    unsigned                        tls:1;       /* the client's first
                                                    bytes were TLS */
    unsigned                        inspect:1;   /* the server's flight is
                                                    read (cert_cloaking) */
} ngx_stream_certguard_ctx_t;


extern ngx_module_t  ngx_stream_certguard_module;


/* ngx_stream_certguard_session.c */
ngx_int_t ngx_stream_certguard_preread_handler(ngx_stream_session_t *s);
ngx_int_t ngx_stream_certguard_respond(ngx_stream_session_t *s,
    ngx_uint_t status, const char *reason, size_t len);
ngx_int_t ngx_stream_certguard_log_handler(ngx_stream_session_t *s);
void ngx_stream_certguard_event(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, cg_event_t *ev);
void ngx_stream_certguard_log_refusal(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, const char *reason, ngx_uint_t count);
void ngx_stream_certguard_wake(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
void ngx_stream_certguard_log_result(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
ngx_int_t ngx_stream_certguard_linger(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, ngx_uint_t status);

/* ngx_stream_certguard_limit.c */
void ngx_stream_certguard_limit_init(ngx_stream_certguard_main_conf_t *cgmcf);
ngx_int_t ngx_stream_certguard_limit_take(ngx_stream_session_t *s,
    ngx_uint_t final, void **slot, ngx_uint_t *log, ngx_uint_t *suppressed);
void ngx_stream_certguard_limit_release(void *slot);
char *ngx_stream_certguard_limit_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_stream_certguard_tunnel.c */
ngx_int_t ngx_stream_certguard_tunnel_init(ngx_conf_t *cf);
void ngx_stream_certguard_tunnel_done(ngx_stream_certguard_ctx_t *ctx);

/* ngx_stream_certguard_request.c */
ngx_int_t ngx_stream_certguard_read_connect(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
ngx_int_t ngx_stream_certguard_read_sni(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
ngx_int_t ngx_stream_certguard_read_hello(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
void ngx_stream_certguard_hello_free(ngx_stream_certguard_ctx_t *ctx);

/* ngx_stream_certguard_destination.c */
ngx_int_t ngx_stream_certguard_lookup(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);


#endif /* NGX_STREAM_CERTGUARD_MODULE_H */
