/*
 * ngx_stream_certguard_module: certificate probes for HTTPS egress that
 * nginx's HTTP module never sees.
 *
 * Two front ends in a preread-phase handler:
 *   certguard_connect on;  the client's "CONNECT host:port" request is read
 *                          from the preread buffer and answered here;
 *   certguard_probe on;    SNI passthrough: the destination is the name in
 *                          the client's ClientHello.
 * Both then resolve the destination, refuse ports and addresses that would
 * make the proxy an open relay, and probe the destination: an asynchronous
 * TLS handshake of the proxy's own, with the same SNI, whose certificate
 * chain the engine scores.  Concurrent sessions of a worker that need the
 * same probe wait on one; verdicts are cached in a shared zone.  Only then
 * does the session go on to the content phase, where
 * "proxy_pass $certguard_upstream;" connects to the very address that was
 * probed.  Blocked sessions end before the destination sees a client byte.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>
#include <ngx_stream.h>

#include <ifaddrs.h>

#include "certguard.h"
#include "cg_clienthello.h"
#include "ngx_certguard_shared.h"


#define NGX_STREAM_CERTGUARD_ENFORCE        0
#define NGX_STREAM_CERTGUARD_MONITOR        1

#define NGX_STREAM_CERTGUARD_FAILURE_ALLOW  0
#define NGX_STREAM_CERTGUARD_FAILURE_BLOCK  1

#define NGX_STREAM_CERTGUARD_HOST_MAX       253

/* an HTTP error answer with a literal reason */
#define ngx_stream_certguard_error(s, status, text)                          \
    ngx_stream_certguard_respond(s, status, text, sizeof(text) - 1)


/* Where a session is; the preread handler is a loop over these. */
typedef enum {
    ngx_stream_certguard_st_read = 0,       /* CONNECT request / ClientHello */
    ngx_stream_certguard_st_lookup,         /* have host and port */
    ngx_stream_certguard_st_resolving,
    ngx_stream_certguard_st_address,        /* have the destination address */
    ngx_stream_certguard_st_probing,        /* waiting on a probe */
    ngx_stream_certguard_st_decided,        /* have a result or a failure */
    ngx_stream_certguard_st_hello,          /* waiting for the ClientHello */
    ngx_stream_certguard_st_refused,        /* not resolved or not allowed */
    ngx_stream_certguard_st_done
} ngx_stream_certguard_state_e;


typedef struct {
    in_port_t                       low;
    in_port_t                       high;
} ngx_stream_certguard_ports_t;


typedef struct {
    ngx_flag_t                      connect;
    ngx_flag_t                      probe;
    ngx_flag_t                      connect_sni;
    ngx_uint_t                      probe_port;
    ngx_array_t                    *ports;       /* port ranges */
    ngx_array_t                    *allow;       /* ngx_cidr_t */
    ngx_array_t                    *deny;        /* ngx_cidr_t */
    ngx_msec_t                      probe_timeout;
    ngx_uint_t                      probe_failure;
    ngx_uint_t                      mode;

    cg_policy_t                    *policy;
    cg_trust_t                     *trust;
    cg_geoip_t                     *geoip;
    ngx_str_t                       geoip_country;
    ngx_str_t                       geoip_asn;

    ngx_certguard_cache_t           cache;
    ngx_certguard_log_t            *log;
} ngx_stream_certguard_srv_conf_t;


typedef struct {
    ngx_ssl_t                      *ssl;         /* probes' client context */
    cg_trust_t                     *default_trust;
    ngx_array_t                    *special;     /* ngx_cidr_t never dialled */
    ngx_array_t                    *own;         /* the host's own addresses */
    ngx_queue_t                     probes;      /* this worker's probes */
} ngx_stream_certguard_main_conf_t;


/* One probe of (policy, name, address:port) in a worker; sessions wait. */
typedef struct {
    ngx_queue_t                     queue;       /* in main conf's probes */
    ngx_queue_t                     waiters;     /* sessions' ctx->queue */
    ngx_pool_t                     *pool;
    ngx_log_t                       log;
    ngx_str_t                       key;
    ngx_str_t                       name;        /* SNI, or an IP literal */
    ngx_str_t                       addr_text;   /* address:port */
    u_char                          addr_only[NGX_SOCKADDR_STRLEN];
    in_port_t                       port;
    ngx_peer_connection_t           peer;
    ngx_event_t                     timeout;
    ngx_event_t                     poll;        /* another worker probes */
    ngx_msec_t                      deadline;
    ngx_stream_certguard_srv_conf_t  *conf;
    ngx_ssl_t                      *ssl;
    unsigned                        claimed:1;   /* holds the zone's claim */

    X509                           *leaf;        /* captured in the handshake */
    STACK_OF(X509)                 *chain;
} ngx_stream_certguard_probe_t;


typedef struct {
    ngx_stream_session_t           *session;
    ngx_stream_certguard_state_e    state;

    ngx_str_t                       host;        /* lower case, no brackets */
    ngx_str_t                       target;      /* "host:port", for CEF */
    in_port_t                       port;
    size_t                          consumed;    /* CONNECT request bytes */
    size_t                          scanned;     /* whole lines seen so far */
    size_t                          looked;      /* searched for LF so far */
    size_t                          hello_need;  /* bytes before a parse */
    ngx_uint_t                      lines;

    ngx_sockaddr_t                  sockaddr;    /* the destination */
    socklen_t                       socklen;
    ngx_str_t                       upstream;    /* "address:port" */
    u_char                          addr_only[NGX_SOCKADDR_STRLEN];
    u_char                          client_addr[NGX_SOCKADDR_STRLEN];

    ngx_resolver_ctx_t             *resolver;
    ngx_stream_certguard_probe_t   *probe;
    ngx_queue_t                     queue;       /* in probe->waiters */
    ngx_event_t                     resume;

    cg_result_t                    *result;      /* NULL: nothing scored */
    ngx_str_t                       chain;       /* DER, leaf first */
    char                            client_sni[256];
    const char                     *failure;     /* why the probe failed */
    ngx_str_t                       key;

    unsigned                        in_handler:1;
    unsigned                        logged:1;
    unsigned                        failed:1;
    unsigned                        blocked:1;
    unsigned                        ip_literal:1;
} ngx_stream_certguard_ctx_t;


static ngx_int_t ngx_stream_certguard_preread_handler(ngx_stream_session_t *s);
static ngx_int_t ngx_stream_certguard_step(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_read_connect(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_parse_target(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, u_char *p, u_char *last);
static ngx_int_t ngx_stream_certguard_read_sni(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_lookup(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static void ngx_stream_certguard_resolve_handler(ngx_resolver_ctx_t *rctx);
static ngx_int_t ngx_stream_certguard_address(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_allowed(ngx_stream_session_t *s,
    struct sockaddr *sa);
static ngx_int_t ngx_stream_certguard_decide(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_hello(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_reevaluate(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_respond(ngx_stream_session_t *s,
    ngx_uint_t status, const char *reason, size_t len);
static void ngx_stream_certguard_log_result(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_log_handler(ngx_stream_session_t *s);
static void ngx_stream_certguard_event(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, cg_event_t *ev);
static void ngx_stream_certguard_wake(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static void ngx_stream_certguard_resume(ngx_event_t *ev);
static void ngx_stream_certguard_cleanup(void *data);

static ngx_int_t ngx_stream_certguard_probe_start(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static void ngx_stream_certguard_probe_connect(
    ngx_stream_certguard_probe_t *probe);
static void ngx_stream_certguard_probe_poll(ngx_event_t *ev);
static void ngx_stream_certguard_probe_connected(ngx_event_t *ev);
static void ngx_stream_certguard_probe_handshaked(ngx_connection_t *c);
static void ngx_stream_certguard_probe_timeout(ngx_event_t *ev);
static void ngx_stream_certguard_probe_finish(
    ngx_stream_certguard_probe_t *probe, const char *failure);
static void ngx_stream_certguard_probe_notify(
    ngx_stream_certguard_probe_t *probe, cg_result_t *res, ngx_str_t *der,
    const char *failure);
static int ngx_stream_certguard_probe_verify(X509_STORE_CTX *x509, void *arg);
static u_char *ngx_stream_certguard_probe_log_error(ngx_log_t *log,
    u_char *buf, size_t len);

static ngx_int_t ngx_stream_certguard_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_certguard_upstream_variable(
    ngx_stream_session_t *s, ngx_stream_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_stream_certguard_add_variables(ngx_conf_t *cf);
static void *ngx_stream_certguard_create_main_conf(ngx_conf_t *cf);
static void *ngx_stream_certguard_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_certguard_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_stream_certguard_init(ngx_conf_t *cf);
static ngx_int_t ngx_stream_certguard_init_addresses(ngx_conf_t *cf,
    ngx_stream_certguard_main_conf_t *cmcf);
static char *ngx_stream_certguard_ports(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_certguard_cidrs(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_certguard_policy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_certguard_trusted(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_certguard_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_certguard_log(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_conf_enum_t  ngx_stream_certguard_modes[] = {
    { ngx_string("enforce"), NGX_STREAM_CERTGUARD_ENFORCE },
    { ngx_string("monitor"), NGX_STREAM_CERTGUARD_MONITOR },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_stream_certguard_failures[] = {
    { ngx_string("allow"), NGX_STREAM_CERTGUARD_FAILURE_ALLOW },
    { ngx_string("block"), NGX_STREAM_CERTGUARD_FAILURE_BLOCK },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_stream_certguard_commands[] = {

    { ngx_string("certguard_connect"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, connect),
      NULL },

    { ngx_string("certguard_probe"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, probe),
      NULL },

    { ngx_string("certguard_probe_port"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, probe_port),
      NULL },

    { ngx_string("certguard_connect_ports"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_1MORE,
      ngx_stream_certguard_ports,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_connect_allow"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_1MORE,
      ngx_stream_certguard_cidrs,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, allow),
      NULL },

    { ngx_string("certguard_connect_deny"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_1MORE,
      ngx_stream_certguard_cidrs,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, deny),
      NULL },

    { ngx_string("certguard_connect_sni"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, connect_sni),
      NULL },

    { ngx_string("certguard_probe_timeout"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, probe_timeout),
      NULL },

    { ngx_string("certguard_probe_failure"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, probe_failure),
      &ngx_stream_certguard_failures },

    { ngx_string("certguard_mode"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, mode),
      &ngx_stream_certguard_modes },

    { ngx_string("certguard_policy"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_certguard_policy,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_trusted_certificate"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_certguard_trusted,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_geoip_country"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, geoip_country),
      NULL },

    { ngx_string("certguard_geoip_asn"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, geoip_asn),
      NULL },

    { ngx_string("certguard_cache"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE12,
      ngx_stream_certguard_cache,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_log"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE12,
      ngx_stream_certguard_log,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_certguard_module_ctx = {
    ngx_stream_certguard_add_variables,     /* preconfiguration */
    ngx_stream_certguard_init,              /* postconfiguration */

    ngx_stream_certguard_create_main_conf,  /* create main configuration */
    NULL,                                   /* init main configuration */

    ngx_stream_certguard_create_srv_conf,   /* create server configuration */
    ngx_stream_certguard_merge_srv_conf     /* merge server configuration */
};


ngx_module_t  ngx_stream_certguard_module = {
    NGX_MODULE_V1,
    &ngx_stream_certguard_module_ctx,       /* module context */
    ngx_stream_certguard_commands,          /* module directives */
    NGX_STREAM_MODULE,                      /* module type */
    NULL,                                   /* init master */
    NULL,                                   /* init module */
    NULL,                                   /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    NULL,                                   /* exit process */
    NULL,                                   /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_stream_variable_t  ngx_stream_certguard_vars[] = {

    { ngx_string("certguard_verdict"), NULL, ngx_stream_certguard_variable,
      NGX_CERTGUARD_VAR_VERDICT, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_score"), NULL, ngx_stream_certguard_variable,
      NGX_CERTGUARD_VAR_SCORE, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_signals"), NULL, ngx_stream_certguard_variable,
      NGX_CERTGUARD_VAR_SIGNALS, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cert_sha256"), NULL,
      ngx_stream_certguard_variable,
      NGX_CERTGUARD_VAR_SHA256, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cert_subject"), NULL,
      ngx_stream_certguard_variable,
      NGX_CERTGUARD_VAR_SUBJECT, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cert_issuer"), NULL,
      ngx_stream_certguard_variable,
      NGX_CERTGUARD_VAR_ISSUER, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cef"), NULL, ngx_stream_certguard_variable,
      NGX_CERTGUARD_VAR_CEF, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_upstream"), NULL,
      ngx_stream_certguard_upstream_variable,
      0, NGX_STREAM_VAR_NOCACHEABLE, 0 },

      ngx_stream_null_variable
};


/* Loopback, "this network", link-local and multicast are never dialled
 * unless certguard_connect_allow names them. */
static char  *ngx_stream_certguard_special[] = {
    "127.0.0.0/8", "0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4",
    "240.0.0.0/4",
#if (NGX_HAVE_INET6)
    "::1/128", "::/128", "fe80::/10", "ff00::/8",
    "::ffff:127.0.0.0/104", "::ffff:169.254.0.0/112", "::ffff:0.0.0.0/104",
#endif
    NULL
};


static ngx_int_t
ngx_stream_certguard_preread_handler(ngx_stream_session_t *s)
{
    ngx_int_t                         rc;
    ngx_connection_t                 *c;
    ngx_pool_cleanup_t               *cln;
    ngx_stream_certguard_ctx_t       *ctx;
    ngx_stream_certguard_srv_conf_t  *cscf;

    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    if (!cscf->connect && !cscf->probe) {
        return NGX_DECLINED;
    }

    c = s->connection;

    if (c->type != SOCK_STREAM) {
        return NGX_DECLINED;
    }

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_certguard_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(c->pool, sizeof(ngx_stream_certguard_ctx_t));
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        cln = ngx_pool_cleanup_add(c->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_stream_certguard_cleanup;
        cln->data = ctx;

        ctx->session = s;
        ctx->state = ngx_stream_certguard_st_read;
        ctx->resume.handler = ngx_stream_certguard_resume;
        ctx->resume.data = s;
        ctx->resume.log = c->log;

        ngx_stream_set_ctx(s, ctx, ngx_stream_certguard_module);
    }

    /*
     * A client read event may run the phases before a posted resume does
     * (both ready in one iteration): the session then goes on from here,
     * and the resume must not run its phases a second time.
     */

    if (ctx->resume.posted) {
        ngx_delete_posted_event(&ctx->resume);
    }

    /*
     * Resolver and probe callbacks may run from inside this handler (a
     * cached name, a connect() that fails at once): then they only change
     * the state, and the loop in ngx_stream_certguard_step() goes on.
     */

    ctx->in_handler = 1;
    rc = ngx_stream_certguard_step(s, ctx);
    ctx->in_handler = 0;

    return rc;
}


static ngx_int_t
ngx_stream_certguard_step(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    ngx_int_t                         rc;
    ngx_stream_certguard_srv_conf_t  *cscf;

    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    for ( ;; ) {

        switch (ctx->state) {

        case ngx_stream_certguard_st_read:
            rc = cscf->connect ? ngx_stream_certguard_read_connect(s, ctx)
                               : ngx_stream_certguard_read_sni(s, ctx);
            if (rc != NGX_OK) {
                return rc;
            }

            ctx->state = ngx_stream_certguard_st_lookup;
            break;

        case ngx_stream_certguard_st_lookup:
            rc = ngx_stream_certguard_lookup(s, ctx);
            if (rc != NGX_OK) {
                return rc;
            }

            break;

        case ngx_stream_certguard_st_resolving:
        case ngx_stream_certguard_st_probing:
            return NGX_DONE;

        case ngx_stream_certguard_st_address:
            rc = ngx_stream_certguard_address(s, ctx);
            if (rc != NGX_OK) {
                return rc;
            }

            break;

        case ngx_stream_certguard_st_decided:
        case ngx_stream_certguard_st_refused:
            return ngx_stream_certguard_decide(s, ctx);

        case ngx_stream_certguard_st_hello:
            return ngx_stream_certguard_hello(s, ctx);

        default: /* ngx_stream_certguard_st_done */
            return NGX_DECLINED;
        }
    }
}


/*
 * "CONNECT host:port HTTP/1.1" and header lines up to an empty line, all
 * in the preread buffer (preread_buffer_size bounds the size, and
 * preread_timeout the time a slow client may take).  Header values are not
 * kept: Proxy-Authorization must never reach a log.
 */

static ngx_int_t
ngx_stream_certguard_read_connect(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    u_char            *p, *last, *line, *end, *sp1, *sp2, *eol, *q;
    ngx_buf_t         *b;
    ngx_uint_t         first;
    ngx_connection_t  *c;

    c = s->connection;
    b = c->buffer;

    if (b == NULL || b->pos == b->last) {
        return NGX_AGAIN;
    }

    p = b->pos;
    last = b->last;

    /* a client speaking TLS or binary to a proxy port: no need to wait */

    if (*p < 'A' || *p > 'Z') {
        return ngx_stream_certguard_error(s, NGX_STREAM_BAD_REQUEST,
                                          "not an HTTP request");
    }

    /* complete lines were checked on earlier calls: a slow client must
     * not make every byte it sends cost a scan of all the earlier ones */

    end = NULL;
    first = (ctx->lines == 0);

    for (line = p + ctx->scanned; line < last; line = eol + 1) {

        eol = ngx_strlchr(ngx_max(line, p + ctx->looked), last, LF);
        if (eol == NULL) {
            ctx->looked = last - p;
            break;
        }

        q = (eol > line && eol[-1] == CR) ? eol - 1 : eol;

        for (sp1 = line; sp1 < q; sp1++) {
            if ((*sp1 < 0x20 && *sp1 != '\t') || *sp1 == 0x7f) {
                return ngx_stream_certguard_error(s, NGX_STREAM_BAD_REQUEST,
                    "control character in request");
            }
        }

        if (q == line) {
            if (first) {
                return ngx_stream_certguard_error(s, NGX_STREAM_BAD_REQUEST,
                                                  "empty request line");
            }

            end = eol + 1;
            break;
        }

        if (!first && ngx_strlchr(line, q, ':') == NULL) {
            return ngx_stream_certguard_error(s, NGX_STREAM_BAD_REQUEST,
                                              "malformed header line");
        }

        first = 0;
        ctx->lines++;
        ctx->scanned = eol + 1 - p;
    }

    if (end == NULL) {
        if (b->last == b->end) {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "certguard: CONNECT request too large");
            return ngx_stream_certguard_error(s, NGX_STREAM_BAD_REQUEST,
                                              "request too large");
        }

        return NGX_AGAIN;
    }

    ctx->consumed = end - b->pos;

    /* the request line: METHOD SP target SP HTTP/1.x */

    eol = ngx_strlchr(p, end, LF);
    q = (eol > p && eol[-1] == CR) ? eol - 1 : eol;

    sp1 = ngx_strlchr(p, q, ' ');
    sp2 = sp1 ? ngx_strlchr(sp1 + 1, q, ' ') : NULL;

    if (sp1 == NULL || sp2 == NULL || sp2 == sp1 + 1
        || q - sp2 != sizeof(" HTTP/1.1") - 1
        || ngx_strncmp(sp2, " HTTP/1.", sizeof(" HTTP/1.") - 1) != 0
        || (sp2[8] != '0' && sp2[8] != '1'))
    {
        return ngx_stream_certguard_error(s, NGX_STREAM_BAD_REQUEST,
                                          "malformed request line");
    }

    for (line = p; line < sp1; line++) {
        if (*line < 'A' || *line > 'Z') {
            return ngx_stream_certguard_error(s, NGX_STREAM_BAD_REQUEST,
                                              "malformed method");
        }
    }

    if (sp1 - p != sizeof("CONNECT") - 1
        || ngx_strncmp(p, "CONNECT", sizeof("CONNECT") - 1) != 0)
    {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "certguard: method \"%*s\" is not CONNECT",
                      (size_t) (sp1 - p), p);
        return ngx_stream_certguard_error(s, 405,
                                          "only CONNECT is allowed");
    }

    return ngx_stream_certguard_parse_target(s, ctx, sp1 + 1, sp2);
}


/* "host:port", "[v6]:port": a DNS name or an address, and a port. */

static ngx_int_t
ngx_stream_certguard_parse_target(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, u_char *p, u_char *last)
{
    u_char            *colon, *h, *hend;
    ngx_int_t          port;
    ngx_uint_t         i;
    ngx_connection_t  *c;

    c = s->connection;

    if (*p == '[') {
        h = p + 1;
        hend = ngx_strlchr(h, last, ']');

        if (hend == NULL || hend + 1 >= last || hend[1] != ':') {
            goto invalid;
        }

        colon = hend + 1;

    } else {
        h = p;
        colon = NULL;

        for (hend = last - 1; hend > p; hend--) {
            if (*hend == ':') {
                colon = hend;
                break;
            }
        }

        if (colon == NULL) {
            goto invalid;
        }

        hend = colon;
    }

    if (hend == h || hend - h > NGX_STREAM_CERTGUARD_HOST_MAX) {
        goto invalid;
    }

    port = ngx_atoi(colon + 1, last - colon - 1);

    if (port < 1 || port > 65535) {
        goto invalid;
    }

    for (i = 0; i < (ngx_uint_t) (hend - h); i++) {
        u_char  ch = h[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9')
              || ch == '-' || ch == '.' || ch == '_'
              || (ch == ':' && *p == '[')))
        {
            goto invalid;
        }
    }

    ctx->host.len = hend - h;
    ctx->host.data = ngx_pnalloc(c->pool, ctx->host.len + 1);
    if (ctx->host.data == NULL) {
        return NGX_ERROR;
    }

    ngx_strlow(ctx->host.data, h, ctx->host.len);
    ctx->host.data[ctx->host.len] = '\0';

    ctx->target.len = last - p;
    ctx->target.data = ngx_pnalloc(c->pool, ctx->target.len + 1);
    if (ctx->target.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->target.data, p, ctx->target.len);
    ctx->target.data[ctx->target.len] = '\0';

    ctx->port = (in_port_t) port;

    return NGX_OK;

invalid:

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "certguard: invalid CONNECT target \"%*s\"",
                  (size_t) (last - p), p);

    return ngx_stream_certguard_error(s, NGX_STREAM_BAD_REQUEST,
                                      "invalid CONNECT target");
}


/* SNI passthrough: the destination is the name in the ClientHello. */

static ngx_int_t
ngx_stream_certguard_read_sni(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    int                               rc;
    size_t                            len;
    ngx_buf_t                        *b;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cscf;
    char                              sni[NGX_STREAM_CERTGUARD_HOST_MAX + 2];

    c = s->connection;
    b = c->buffer;

    if (b == NULL
        || ((size_t) (b->last - b->pos) < ctx->hello_need
            && b->last != b->end))
    {
        return NGX_AGAIN;
    }

    rc = cg_clienthello_sni(b->pos, b->last - b->pos, sni, sizeof(sni));

    if (rc == CG_CLIENTHELLO_AGAIN && b->last != b->end) {
        ctx->hello_need = cg_clienthello_need(b->pos, b->last - b->pos);
        return NGX_AGAIN;
    }

    if (rc != CG_OK || sni[0] == '\0') {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "certguard: no server name in the ClientHello");

        cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

        if (cscf->probe_failure == NGX_STREAM_CERTGUARD_FAILURE_ALLOW) {
            ctx->state = ngx_stream_certguard_st_done;
            return NGX_DECLINED;
        }

        return NGX_STREAM_FORBIDDEN;
    }

    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    len = ngx_strlen(sni);

    ctx->host.data = ngx_pnalloc(c->pool, len + 1);
    ctx->target.data = ngx_pnalloc(c->pool, len + sizeof(":65535"));
    if (ctx->host.data == NULL || ctx->target.data == NULL) {
        return NGX_ERROR;
    }

    ngx_strlow(ctx->host.data, (u_char *) sni, len);
    ctx->host.data[len] = '\0';
    ctx->host.len = len;

    ctx->port = (in_port_t) cscf->probe_port;
    ctx->target.len = ngx_sprintf(ctx->target.data, "%V:%ui%Z", &ctx->host,
                                  cscf->probe_port)
                      - ctx->target.data - 1;

    return NGX_OK;
}


static ngx_int_t
ngx_stream_certguard_lookup(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    ngx_uint_t                        i;
    ngx_addr_t                        addr;
    ngx_connection_t                 *c;
    ngx_resolver_ctx_t               *rctx, temp;
    ngx_stream_certguard_ports_t     *range;
    ngx_stream_core_srv_conf_t       *cscf;
    ngx_stream_certguard_srv_conf_t  *gscf;

    c = s->connection;
    gscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    if (gscf->connect) {
        range = gscf->ports->elts;

        for (i = 0; i < gscf->ports->nelts; i++) {
            if (ctx->port >= range[i].low && ctx->port <= range[i].high) {
                break;
            }
        }

        if (i == gscf->ports->nelts) {
            ngx_log_error(NGX_LOG_WARN, c->log, 0,
                          "certguard: CONNECT to port %d refused",
                          (int) ctx->port);
            return ngx_stream_certguard_error(s, NGX_STREAM_FORBIDDEN,
                                              "port not allowed");
        }
    }

    if (ngx_parse_addr(c->pool, &addr, ctx->host.data, ctx->host.len)
        == NGX_OK)
    {
        ngx_memcpy(&ctx->sockaddr, addr.sockaddr, addr.socklen);
        ctx->socklen = addr.socklen;
        ngx_inet_set_port(&ctx->sockaddr.sockaddr, ctx->port);
        ctx->ip_literal = 1;
        ctx->state = ngx_stream_certguard_st_address;

        return NGX_OK;
    }

    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_core_module);

    temp.name = ctx->host;

    rctx = ngx_resolve_start(cscf->resolver, &temp);
    if (rctx == NULL) {
        return NGX_ERROR;
    }

    if (rctx == NGX_NO_RESOLVER) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "certguard: no resolver defined to resolve %V",
                      &ctx->host);
        return ngx_stream_certguard_error(s, NGX_STREAM_BAD_GATEWAY,
                                          "cannot resolve the host");
    }

    rctx->name = ctx->host;
    rctx->handler = ngx_stream_certguard_resolve_handler;
    rctx->data = s;
    rctx->timeout = cscf->resolver_timeout;

    ctx->resolver = rctx;
    ctx->state = ngx_stream_certguard_st_resolving;

    if (ngx_resolve_name(rctx) != NGX_OK) {
        ctx->resolver = NULL;
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_stream_certguard_resolve_handler(ngx_resolver_ctx_t *rctx)
{
    ngx_uint_t                   i;
    ngx_connection_t            *c;
    ngx_stream_session_t        *s;
    ngx_stream_certguard_ctx_t  *ctx;

    s = rctx->data;
    c = s->connection;
    ctx = ngx_stream_get_module_ctx(s, ngx_stream_certguard_module);

    ctx->resolver = NULL;

    if (rctx->state) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "certguard: %V could not be resolved (%i: %s)",
                      &rctx->name, rctx->state,
                      ngx_resolver_strerror(rctx->state));

        ctx->failure = "could not resolve the host";
        ctx->state = ngx_stream_certguard_st_refused;
        goto done;
    }

    /* the first address policy allows is the one probed and dialled */

    ctx->failure = "destination not allowed";
    ctx->state = ngx_stream_certguard_st_refused;

    for (i = 0; i < rctx->naddrs; i++) {

        if (rctx->addrs[i].socklen > sizeof(ngx_sockaddr_t)) {
            continue;
        }

        ngx_memcpy(&ctx->sockaddr, rctx->addrs[i].sockaddr,
                   rctx->addrs[i].socklen);
        ctx->socklen = rctx->addrs[i].socklen;
        ngx_inet_set_port(&ctx->sockaddr.sockaddr, ctx->port);

        if (ngx_stream_certguard_allowed(s, &ctx->sockaddr.sockaddr)
            == NGX_OK)
        {
            ctx->failure = NULL;
            ctx->state = ngx_stream_certguard_st_address;
            break;
        }
    }

done:

    ngx_resolve_name_done(rctx);

    ngx_stream_certguard_wake(s, ctx);
}


/* With the destination's address: policy, cache, then a probe. */

static ngx_int_t
ngx_stream_certguard_address(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    size_t                             len;
    ngx_connection_t                  *c;
    ngx_stream_certguard_srv_conf_t   *cscf;

    c = s->connection;
    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    if (ngx_stream_certguard_allowed(s, &ctx->sockaddr.sockaddr) != NGX_OK) {
        ctx->failure = "destination not allowed";
        ctx->state = ngx_stream_certguard_st_refused;
        return NGX_OK;
    }

    ctx->upstream.data = ngx_pnalloc(c->pool, NGX_SOCKADDR_STRLEN);
    if (ctx->upstream.data == NULL) {
        return NGX_ERROR;
    }

    ctx->upstream.len = ngx_sock_ntop(&ctx->sockaddr.sockaddr, ctx->socklen,
                                      ctx->upstream.data, NGX_SOCKADDR_STRLEN,
                                      1);

    len = ngx_sock_ntop(&ctx->sockaddr.sockaddr, ctx->socklen, ctx->addr_only,
                        NGX_SOCKADDR_STRLEN - 1, 0);
    ctx->addr_only[len] = '\0';

    /* the key: configuration, engine objects, name and address:port */

    ctx->key.data = ngx_pnalloc(c->pool, NGX_INT_T_LEN + 4 * (NGX_PTR_SIZE * 2
                                                             + 3)
                                         + 8 + ctx->host.len
                                         + ctx->upstream.len);
    if (ctx->key.data == NULL) {
        return NGX_ERROR;
    }

    ctx->key.len = ngx_sprintf(ctx->key.data, "%ui|%p|%p|%p|%p|%V|%V",
                               ngx_certguard_cache_generation(&cscf->cache),
                               cscf->policy, cscf->trust, cscf->geoip,
                               cscf->cache.shm_zone, &ctx->host,
                               &ctx->upstream)
                   - ctx->key.data;

    ctx->result = ngx_palloc(c->pool, sizeof(cg_result_t));
    if (ctx->result == NULL) {
        return NGX_ERROR;
    }

    switch (ngx_certguard_cache_get(&cscf->cache, &ctx->key, ctx->result,
                                    c->pool, &ctx->chain))
    {
    case NGX_OK:
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "certguard: cached verdict for %V", &ctx->upstream);
        ctx->state = ngx_stream_certguard_st_decided;
        return NGX_OK;

    case NGX_ERROR:
        return NGX_ERROR;

    default:
        ctx->result = NULL;
        return ngx_stream_certguard_probe_start(s, ctx);
    }
}


static ngx_int_t
ngx_stream_certguard_allowed(ngx_stream_session_t *s, struct sockaddr *sa)
{
    ngx_stream_certguard_srv_conf_t   *cscf;
    ngx_stream_certguard_main_conf_t  *cmcf;

    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);
    cmcf = ngx_stream_get_module_main_conf(s, ngx_stream_certguard_module);

    if (cscf->allow && ngx_cidr_match(sa, cscf->allow) == NGX_OK) {
        return NGX_OK;
    }

    if (cscf->deny && ngx_cidr_match(sa, cscf->deny) == NGX_OK) {
        return NGX_DECLINED;
    }

    if (ngx_cidr_match(sa, cmcf->special) == NGX_OK) {
        return NGX_DECLINED;
    }

    if (cmcf->own->nelts && ngx_cidr_match(sa, cmcf->own) == NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * A result (or a failure) is here: block, or answer the CONNECT and go on.
 * In state "refused", the destination was refused before any
 * probe (not allowed, not resolved).
 */

static ngx_int_t
ngx_stream_certguard_decide(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    u_char                           *p;
    size_t                            n;
    ngx_buf_t                        *b;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cscf;
    u_char                            reason[256];

    c = s->connection;
    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    if (ctx->state == ngx_stream_certguard_st_refused) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0, "certguard: %V refused: %s",
                      &ctx->target, ctx->failure);

        p = ngx_snprintf(reason, sizeof(reason), "%s", ctx->failure);

        return ngx_stream_certguard_respond(s,
                   ngx_strcmp(ctx->failure, "destination not allowed") == 0
                   ? NGX_STREAM_FORBIDDEN : NGX_STREAM_BAD_GATEWAY,
                   (char *) reason, p - reason);
    }

    if (ctx->failed) {

        /* a result of our own, so that logs and variables show the failure */

        ctx->result = ngx_pcalloc(c->pool, sizeof(cg_result_t));
        if (ctx->result == NULL) {
            return NGX_ERROR;
        }

        ctx->result->verdict =
                  (cscf->probe_failure == NGX_STREAM_CERTGUARD_FAILURE_BLOCK)
                  ? CG_BLOCK : CG_ALLOW;
        ctx->result->nhits = 1;
        ngx_cpystrn((u_char *) ctx->result->hits[0].id,
                    (u_char *) "probe_failed", CG_ID_MAX);
        ngx_cpystrn((u_char *) ctx->result->hits[0].detail,
                    (u_char *) ctx->failure, CG_DETAIL_MAX);
        ngx_cpystrn((u_char *) ctx->result->name, ctx->host.data,
                    CG_NAME_MAX);
    }

    ctx->blocked = (ctx->result->verdict == CG_BLOCK
                    && cscf->mode == NGX_STREAM_CERTGUARD_ENFORCE);

    if (ctx->blocked) {
        ngx_stream_certguard_log_result(s, ctx);

        if (ctx->failed) {
            p = ngx_snprintf(reason, sizeof(reason) - 1,
                             "certguard: probe failed: %s", ctx->failure);

        } else {
            p = ngx_cpymem(reason, "certguard: certificate blocked: ",
                           sizeof("certguard: certificate blocked: ") - 1);
            n = cg_format_signal_ids(ctx->result, (char *) p,
                                     reason + sizeof(reason) - p);
            p += ngx_min(n, (size_t) (reason + sizeof(reason) - p - 1));
        }

        ngx_log_error(NGX_LOG_WARN, c->log, 0, "%*s, destination %V",
                      (size_t) (p - reason), reason, &ctx->target);

        return ngx_stream_certguard_respond(s, NGX_STREAM_FORBIDDEN,
                                            (char *) reason, p - reason);
    }

    if (!cscf->connect) {
        ngx_stream_certguard_log_result(s, ctx);
        ctx->state = ngx_stream_certguard_st_done;
        return NGX_DECLINED;
    }

    if (ngx_stream_certguard_respond(s, NGX_STREAM_OK, NULL, 0)
        != NGX_STREAM_OK)
    {
        return NGX_STREAM_OK;           /* the client is gone */
    }

    /* the tunnel starts after the CONNECT request */

    b = c->buffer;
    b->pos += ctx->consumed;

    if (b->pos == b->last) {
        b->pos = b->start;
        b->last = b->start;
    }

    if (cscf->connect_sni && ctx->chain.len) {
        ctx->state = ngx_stream_certguard_st_hello;
        return ngx_stream_certguard_hello(s, ctx);
    }

    ngx_stream_certguard_log_result(s, ctx);
    ctx->state = ngx_stream_certguard_st_done;

    return NGX_DECLINED;
}


/*
 * Inside the tunnel: the client's ClientHello.  An SNI other than the
 * CONNECT host (domain fronting) is scored again with client_sni, which
 * fires sni_mismatch, as does a TLS ClientHello the parser refuses.
 * Anything but TLS goes on unchecked.
 */

static ngx_int_t
ngx_stream_certguard_hello(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    int                               rc;
    size_t                            len;
    ngx_buf_t                        *b;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cscf;

    c = s->connection;
    b = c->buffer;

    if ((size_t) (b->last - b->pos) < ctx->hello_need && b->last != b->end) {
        return NGX_AGAIN;
    }

    rc = cg_clienthello_sni(b->pos, b->last - b->pos, ctx->client_sni,
                            sizeof(ctx->client_sni));

    if (rc == CG_CLIENTHELLO_AGAIN && b->last != b->end) {
        ctx->hello_need = cg_clienthello_need(b->pos, b->last - b->pos);
        return NGX_AGAIN;
    }

    if (rc == CG_ERR_INPUT && b->pos[0] == 0x16) {

        /*
         * a TLS handshake record whose ClientHello the parser refuses (a
         * server name that is no plain DNS name, a malformed extension):
         * it does not name the CONNECT host, so it counts as a mismatch
         */

        ngx_cpystrn((u_char *) ctx->client_sni,
                    (u_char *) "(malformed ClientHello)",
                    sizeof(ctx->client_sni));

    } else if (rc != CG_OK) {
        ctx->client_sni[0] = '\0';
    }

    len = ngx_strlen(ctx->client_sni);

    if (len && len - (ctx->client_sni[len - 1] == '.') == ctx->host.len
        && ngx_strncasecmp((u_char *) ctx->client_sni, ctx->host.data,
                           ctx->host.len) == 0)
    {
        len = 0;                        /* the same name */
    }

    if (len && ngx_stream_certguard_reevaluate(s, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    ctx->blocked = (ctx->result->verdict == CG_BLOCK
                    && cscf->mode == NGX_STREAM_CERTGUARD_ENFORCE);

    ngx_stream_certguard_log_result(s, ctx);

    ctx->state = ngx_stream_certguard_st_done;

    if (ctx->blocked) {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "certguard: tunnel to %V blocked, client SNI \"%s\"",
                      &ctx->target, ctx->client_sni);
        return NGX_STREAM_FORBIDDEN;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_stream_certguard_reevaluate(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    int                               rc;
    X509                             *x;
    cg_input_t                        in;
    cg_result_t                      *res;
    const u_char                     *p, *last;
    STACK_OF(X509)                   *chain;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cscf;

    c = s->connection;
    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    chain = sk_X509_new_null();
    if (chain == NULL) {
        return NGX_ERROR;
    }

    p = ctx->chain.data;
    last = p + ctx->chain.len;

    while (p < last) {
        x = d2i_X509(NULL, &p, last - p);
        if (x == NULL || !sk_X509_push(chain, x)) {
            X509_free(x);
            break;
        }
    }

    rc = CG_ERR_INPUT;

    res = ngx_palloc(c->pool, sizeof(cg_result_t));

    if (res && sk_X509_num(chain) > 0) {
        ngx_memzero(&in, sizeof(cg_input_t));

        in.policy = cscf->policy;
        in.trust = cscf->trust;
        in.geoip = cscf->geoip;
        in.leaf = sk_X509_value(chain, 0);
        in.chain = chain;
        in.name = (char *) ctx->host.data;
        in.client_sni = ctx->client_sni;
        in.dst_addr = (char *) ctx->addr_only;
        in.dst_port = ctx->port;
        in.now = ngx_time();

        rc = cg_evaluate(&in, res);
    }

    sk_X509_pop_free(chain, X509_free);

    if (rc != CG_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "certguard: evaluation with client SNI failed: %s",
                      cg_strerror(rc));
        return NGX_OK;                  /* the earlier verdict stands */
    }

    ctx->result = res;

    return NGX_OK;
}


/* An HTTP answer to a CONNECT; in passthrough mode there is nobody to
 * answer, and the connection just closes.  Returns the session status. */

static ngx_int_t
ngx_stream_certguard_respond(ngx_stream_session_t *s, ngx_uint_t status,
    const char *reason, size_t len)
{
    u_char                           *p;
    ssize_t                           n;
    ngx_connection_t                 *c;
    const char                       *text;
    ngx_stream_certguard_srv_conf_t  *cscf;
    u_char                            buf[512];

    c = s->connection;
    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    if (!cscf->connect) {
        return status == NGX_STREAM_OK ? NGX_STREAM_OK : (ngx_int_t) status;
    }

    if (status == NGX_STREAM_OK) {
        p = ngx_cpymem(buf, "HTTP/1.1 200 Connection established" CRLF CRLF,
                       sizeof("HTTP/1.1 200 Connection established" CRLF CRLF)
                       - 1);

    } else {
        switch (status) {
        case NGX_STREAM_BAD_REQUEST:
            text = "Bad Request";
            break;
        case NGX_STREAM_FORBIDDEN:
            text = "Forbidden";
            break;
        case 405:
            text = "Method Not Allowed";
            break;
        default:
            text = "Bad Gateway";
        }

        len = ngx_min(len, 256);

        p = ngx_snprintf(buf, sizeof(buf),
                         "HTTP/1.1 %ui %s" CRLF
                         "Content-Type: text/plain" CRLF
                         "Content-Length: %uz" CRLF
                         "%s"
                         "Connection: close" CRLF CRLF
                         "%*s\n",
                         status, text, len + 1,
                         status == 405 ? "Allow: CONNECT" CRLF : "",
                         len, reason);
    }

    n = c->send(c, buf, p - buf);

    if (n != p - buf) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "certguard: could not send the %ui response", status);

        if (status == NGX_STREAM_OK) {
            return NGX_ERROR;
        }
    }

    return status;
}


static void
ngx_stream_certguard_log_result(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    cg_event_t                        ev;
    ngx_stream_certguard_srv_conf_t  *cscf;

    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    if (cscf->log == NULL || ctx->result == NULL || ctx->logged) {
        return;
    }

    ctx->logged = 1;

    ngx_stream_certguard_event(s, ctx, &ev);

    ngx_certguard_log_write(cscf->log, s->connection->log, ctx->result, &ev);
}


/*
 * Records are written when the tunnel is decided, not when it ends; this
 * catches the sessions that ended before that (a client that closed while
 * its ClientHello was awaited).
 */

static ngx_int_t
ngx_stream_certguard_log_handler(ngx_stream_session_t *s)
{
    ngx_stream_certguard_ctx_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_certguard_module);

    if (ctx && ctx->result) {
        ngx_stream_certguard_log_result(s, ctx);
    }

    return NGX_OK;
}


static void
ngx_stream_certguard_event(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, cg_event_t *ev)
{
    size_t                            len;
    ngx_time_t                       *tp;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cscf;

    c = s->connection;
    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    ngx_memzero(ev, sizeof(cg_event_t));

    switch (ctx->result->verdict) {
    case CG_BLOCK:
        ev->action = (cscf->mode == NGX_STREAM_CERTGUARD_MONITOR)
                     ? "would-block" : "blocked";
        break;
    case CG_TAG:
        ev->action = "tagged";
        break;
    default:
        ev->action = "allowed";
    }

    len = ngx_sock_ntop(c->sockaddr, c->socklen, ctx->client_addr,
                        NGX_SOCKADDR_STRLEN - 1, 0);
    ctx->client_addr[len] = '\0';

    ev->src_addr = (char *) ctx->client_addr;
    ev->src_port = ngx_inet_get_port(c->sockaddr);
    ev->dst_addr = ctx->addr_only[0] ? (char *) ctx->addr_only : NULL;
    ev->dst_port = ctx->port;
    ev->request = (char *) ctx->target.data;

    tp = ngx_timeofday();
    ev->rt_ms = (int64_t) tp->sec * 1000 + tp->msec;
}


static void
ngx_stream_certguard_wake(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    if (ctx->in_handler) {
        return;                 /* the preread handler's loop goes on */
    }

    ngx_post_event(&ctx->resume, &ngx_posted_events);
}


static void
ngx_stream_certguard_resume(ngx_event_t *ev)
{
    ngx_stream_session_t  *s;

    s = ev->data;

    ngx_stream_core_run_phases(s);
}


static void
ngx_stream_certguard_cleanup(void *data)
{
    ngx_stream_certguard_ctx_t  *ctx = data;

    if (ctx->resolver) {
        ngx_resolve_name_done(ctx->resolver);
        ctx->resolver = NULL;
    }

    if (ctx->probe) {
        ngx_queue_remove(&ctx->queue);
        ctx->probe = NULL;
    }

    if (ctx->resume.posted) {
        ngx_delete_posted_event(&ctx->resume);
    }
}


/*
 * The probe: connect, TLS handshake with SNI, capture the chain, score it.
 * It belongs to no session (sessions may come and go while it runs), so it
 * has its own pool and log, and the worker's list finds it by key.
 */

static ngx_int_t
ngx_stream_certguard_probe_start(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    size_t                             len;
    ngx_int_t                          rc;
    ngx_queue_t                       *q;
    ngx_pool_t                        *pool;
    ngx_connection_t                  *c;
    ngx_stream_certguard_probe_t      *probe;
    ngx_stream_certguard_srv_conf_t   *cscf;
    ngx_stream_certguard_main_conf_t  *cmcf;

    c = s->connection;
    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);
    cmcf = ngx_stream_get_module_main_conf(s, ngx_stream_certguard_module);

    ctx->state = ngx_stream_certguard_st_probing;

    for (q = ngx_queue_head(&cmcf->probes);
         q != ngx_queue_sentinel(&cmcf->probes);
         q = ngx_queue_next(q))
    {
        probe = ngx_queue_data(q, ngx_stream_certguard_probe_t, queue);

        if (probe->key.len == ctx->key.len
            && ngx_memcmp(probe->key.data, ctx->key.data, ctx->key.len) == 0)
        {
            ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                           "certguard: waiting on the probe of %V",
                           &probe->addr_text);

            ctx->probe = probe;
            ngx_queue_insert_tail(&probe->waiters, &ctx->queue);
            return NGX_OK;
        }
    }

    pool = ngx_create_pool(2048, ngx_cycle->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    probe = ngx_pcalloc(pool, sizeof(ngx_stream_certguard_probe_t));
    if (probe == NULL) {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    probe->pool = pool;
    probe->conf = cscf;
    probe->ssl = cmcf->ssl;
    probe->port = ctx->port;

    probe->key.data = ngx_pstrdup(pool, &ctx->key);
    probe->key.len = ctx->key.len;
    probe->name.data = ngx_pnalloc(pool, ctx->host.len + 1);
    probe->addr_text.data = ngx_pstrdup(pool, &ctx->upstream);
    probe->addr_text.len = ctx->upstream.len;
    probe->peer.sockaddr = ngx_palloc(pool, ctx->socklen);

    if (probe->key.data == NULL || probe->name.data == NULL
        || probe->addr_text.data == NULL || probe->peer.sockaddr == NULL)
    {
        ngx_destroy_pool(pool);
        return NGX_ERROR;
    }

    ngx_memcpy(probe->name.data, ctx->host.data, ctx->host.len + 1);
    probe->name.len = ctx->host.len;

    len = ngx_strlen(ctx->addr_only);
    ngx_memcpy(probe->addr_only, ctx->addr_only, len + 1);

    probe->log = *c->log;
    probe->log.connection = 0;
    probe->log.handler = ngx_stream_certguard_probe_log_error;
    probe->log.data = probe;
    probe->log.action = "connecting to the destination";
    pool->log = &probe->log;

    ngx_queue_init(&probe->waiters);
    ngx_queue_insert_tail(&cmcf->probes, &probe->queue);

    ctx->probe = probe;
    ngx_queue_insert_tail(&probe->waiters, &ctx->queue);

    probe->timeout.handler = ngx_stream_certguard_probe_timeout;
    probe->timeout.data = probe;
    probe->timeout.log = &probe->log;

    probe->poll.handler = ngx_stream_certguard_probe_poll;
    probe->poll.data = probe;
    probe->poll.log = &probe->log;

    ngx_memcpy(probe->peer.sockaddr, &ctx->sockaddr, ctx->socklen);
    probe->peer.socklen = ctx->socklen;
    probe->peer.name = &probe->addr_text;
    probe->peer.get = ngx_event_get_peer;
    probe->peer.log = &probe->log;
    probe->peer.log_error = NGX_ERROR_ERR;

    /*
     * Workers share probes through the zone: the first claims the key, the
     * others poll the zone until its result is there (or the claim is gone,
     * after a failure: then they probe themselves).
     */

    probe->deadline = ngx_current_msec + 2 * cscf->probe_timeout + 1000;

    rc = ngx_certguard_cache_claim(&cscf->cache, &probe->key,
                                   cscf->probe_timeout / 1000 + 2);

    if (rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "certguard: another worker probes %V",
                       &probe->addr_text);

        ngx_add_timer(&probe->poll, rc == NGX_BUSY ? 20 : 1);
        return NGX_OK;
    }

    probe->claimed = (cscf->cache.shm_zone != NULL);

    ngx_stream_certguard_probe_connect(probe);

    return NGX_OK;
}


static void
ngx_stream_certguard_probe_connect(ngx_stream_certguard_probe_t *probe)
{
    ngx_int_t          rc;
    ngx_connection_t  *pc;

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                   "certguard: probing %V", &probe->addr_text);

    ngx_add_timer(&probe->timeout, probe->conf->probe_timeout);

    rc = ngx_event_connect_peer(&probe->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_stream_certguard_probe_finish(probe, "connection failed");
        return;
    }

    pc = probe->peer.connection;
    pc->data = probe;
    pc->pool = probe->pool;
    pc->read->handler = ngx_stream_certguard_probe_connected;
    pc->write->handler = ngx_stream_certguard_probe_connected;

    if (rc == NGX_AGAIN) {
        return;
    }

    ngx_stream_certguard_probe_connected(pc->write);
}


static void
ngx_stream_certguard_probe_poll(ngx_event_t *ev)
{
    ngx_int_t                      rc;
    ngx_str_t                      der;
    cg_result_t                    res;
    ngx_stream_certguard_probe_t  *probe;

    probe = ev->data;

    rc = ngx_certguard_cache_get(&probe->conf->cache, &probe->key, &res,
                                 probe->pool, &der);

    if (rc == NGX_OK) {
        ngx_stream_certguard_probe_notify(probe, &res, &der, NULL);
        return;
    }

    if ((ngx_msec_int_t) (ngx_current_msec - probe->deadline) > 0) {
        ngx_stream_certguard_probe_notify(probe, NULL, NULL, "timed out");
        return;
    }

    if (rc == NGX_BUSY) {
        ngx_add_timer(&probe->poll, 20);
        return;
    }

    /* the other worker failed or its claim expired: probe here */

    rc = ngx_certguard_cache_claim(&probe->conf->cache, &probe->key,
                                   probe->conf->probe_timeout / 1000 + 2);

    if (rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_add_timer(&probe->poll, 20);
        return;
    }

    probe->claimed = 1;

    ngx_stream_certguard_probe_connect(probe);
}


static void
ngx_stream_certguard_probe_connected(ngx_event_t *ev)
{
    int                                err;
    socklen_t                          len;
    ngx_int_t                          rc;
    ngx_connection_t                  *pc;
    ngx_stream_certguard_probe_t      *probe;

    pc = ev->data;
    probe = pc->data;

    err = 0;
    len = sizeof(int);

    if (getsockopt(pc->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    if (err) {
        (void) ngx_connection_error(pc, err, "connect() failed");
        ngx_stream_certguard_probe_finish(probe, "connection refused");
        return;
    }

    probe->log.action = "SSL handshaking with the destination";

    if (ngx_ssl_create_connection(probe->ssl, pc,
                                  NGX_SSL_BUFFER|NGX_SSL_CLIENT)
        != NGX_OK)
    {
        ngx_stream_certguard_probe_finish(probe, "internal error");
        return;
    }

    /* the same SNI the client sends; none for an IP literal (RFC 6066) */

    if (ngx_inet_addr(probe->name.data, probe->name.len) == INADDR_NONE
        && ngx_strlchr(probe->name.data, probe->name.data + probe->name.len,
                       ':') == NULL
        && SSL_set_tlsext_host_name(pc->ssl->connection,
                                    (char *) probe->name.data) == 0)
    {
        ngx_ssl_error(NGX_LOG_ERR, pc->log, 0,
                      "SSL_set_tlsext_host_name(\"%V\") failed",
                      &probe->name);
        ngx_stream_certguard_probe_finish(probe, "internal error");
        return;
    }

    rc = ngx_ssl_handshake(pc);

    if (rc == NGX_AGAIN) {
        pc->ssl->handler = ngx_stream_certguard_probe_handshaked;
        return;
    }

    ngx_stream_certguard_probe_handshaked(pc);
}


static void
ngx_stream_certguard_probe_handshaked(ngx_connection_t *pc)
{
    ngx_stream_certguard_probe_t  *probe;

    probe = pc->data;

    /*
     * A chain captured before the handshake failed still counts: a server
     * that requires a client certificate sends its own first, and with
     * TLS 1.2 rejects the probe only after that.
     */

    ngx_stream_certguard_probe_finish(probe,
                                      pc->ssl->handshaked
                                      ? NULL : "TLS handshake failed");
}


static void
ngx_stream_certguard_probe_timeout(ngx_event_t *ev)
{
    ngx_stream_certguard_probe_t  *probe;

    probe = ev->data;

    ngx_log_error(NGX_LOG_ERR, &probe->log, NGX_ETIMEDOUT,
                  "certguard probe timed out");

    ngx_stream_certguard_probe_finish(probe, "timed out");
}


static void
ngx_stream_certguard_probe_finish(ngx_stream_certguard_probe_t *probe,
    const char *failure)
{
    int                 i, n, len;
    u_char             *p;
    ngx_str_t           der;
    cg_input_t          in;
    cg_result_t         res;
    ngx_connection_t   *pc;

    if (probe->timeout.timer_set) {
        ngx_del_timer(&probe->timeout);
    }

    pc = probe->peer.connection;

    if (pc) {
        if (pc->ssl) {
            pc->ssl->no_wait_shutdown = 1;
            pc->ssl->no_send_shutdown = 1;
            (void) ngx_ssl_shutdown(pc);
        }

        ngx_close_connection(pc);
        probe->peer.connection = NULL;
    }

    ngx_str_null(&der);

    if (probe->leaf) {
        ngx_memzero(&in, sizeof(cg_input_t));

        in.policy = probe->conf->policy;
        in.trust = probe->conf->trust;
        in.geoip = probe->conf->geoip;
        in.leaf = probe->leaf;
        in.chain = probe->chain;
        in.name = (char *) probe->name.data;
        in.dst_addr = (char *) probe->addr_only;
        in.dst_port = probe->port;
        in.now = ngx_time();

        if (cg_evaluate(&in, &res) == CG_OK) {
            failure = NULL;

        } else {
            ngx_log_error(NGX_LOG_ERR, &probe->log, 0,
                          "certguard: evaluation failed");
            failure = "certificate could not be evaluated";
        }

        /* the chain as DER, for a second look with the client's SNI */

        n = probe->chain ? sk_X509_num(probe->chain) : 0;

        for (i = 0; failure == NULL && i < n; i++) {
            len = i2d_X509(sk_X509_value(probe->chain, i), NULL);
            if (len > 0) {
                der.len += len;
            }
        }

        if (der.len && der.len <= NGX_CERTGUARD_BLOB_MAX) {
            der.data = ngx_pnalloc(probe->pool, der.len);

            if (der.data) {
                p = der.data;
                for (i = 0; i < n; i++) {
                    (void) i2d_X509(sk_X509_value(probe->chain, i), &p);
                }

            } else {
                der.len = 0;
            }

        } else {
            der.len = 0;
        }

        if (failure == NULL) {
            (void) ngx_certguard_cache_put(&probe->conf->cache, &probe->key,
                                           &res, &der);
            probe->claimed = 0;
        }

    } else if (failure == NULL) {
        failure = "no certificate";
    }

    if (failure) {
        ngx_log_error(NGX_LOG_WARN, &probe->log, 0,
                      "certguard probe failed: %s", failure);
    }

    if (probe->claimed) {
        ngx_certguard_cache_release(&probe->conf->cache, &probe->key);
        probe->claimed = 0;
    }

    ngx_stream_certguard_probe_notify(probe, failure ? NULL : &res, &der,
                                      failure);
}


/* Every session waiting on the probe gets a copy and is resumed. */

static void
ngx_stream_certguard_probe_notify(ngx_stream_certguard_probe_t *probe,
    cg_result_t *res, ngx_str_t *der, const char *failure)
{
    ngx_queue_t                 *q;
    ngx_stream_session_t        *s;
    ngx_stream_certguard_ctx_t  *ctx;

    if (probe->timeout.timer_set) {
        ngx_del_timer(&probe->timeout);
    }

    if (probe->poll.timer_set) {
        ngx_del_timer(&probe->poll);
    }

    while (!ngx_queue_empty(&probe->waiters)) {
        q = ngx_queue_head(&probe->waiters);
        ngx_queue_remove(q);

        ctx = ngx_queue_data(q, ngx_stream_certguard_ctx_t, queue);
        s = ctx->session;
        ctx->probe = NULL;
        ctx->state = ngx_stream_certguard_st_decided;

        if (failure) {
            ctx->failed = 1;
            ctx->failure = failure;     /* static strings only */

        } else {
            ctx->result = ngx_palloc(s->connection->pool, sizeof(cg_result_t));
            ctx->chain.data = der->len ? ngx_pnalloc(s->connection->pool,
                                                     der->len)
                                       : NULL;

            if (ctx->result == NULL || (der->len && ctx->chain.data == NULL))
            {
                ctx->failed = 1;
                ctx->failure = "internal error";

            } else {
                ngx_memcpy(ctx->result, res, sizeof(cg_result_t));

                if (der->len) {
                    ngx_memcpy(ctx->chain.data, der->data, der->len);
                    ctx->chain.len = der->len;
                }
            }
        }

        ngx_stream_certguard_wake(s, ctx);
    }

    ngx_queue_remove(&probe->queue);

    if (probe->chain) {
        sk_X509_pop_free(probe->chain, X509_free);
    }

    if (probe->leaf) {
        X509_free(probe->leaf);
    }

    ngx_destroy_pool(probe->pool);
}


/*
 * Installed as the probes' certificate verification: keeps the chain the
 * destination sent and accepts it, so that the handshake goes as far as
 * the destination lets it; the engine, not OpenSSL, judges the chain.
 */

static int
ngx_stream_certguard_probe_verify(X509_STORE_CTX *x509, void *arg)
{
    SSL                           *ssl;
    X509                          *leaf;
    STACK_OF(X509)                *chain;
    ngx_connection_t              *pc;
    ngx_stream_certguard_probe_t  *probe;

    ssl = X509_STORE_CTX_get_ex_data(x509,
                                     SSL_get_ex_data_X509_STORE_CTX_idx());
    if (ssl == NULL) {
        return 1;
    }

    pc = ngx_ssl_get_connection(ssl);
    if (pc == NULL || pc->data == NULL) {
        return 1;
    }

    probe = pc->data;

    if (probe->leaf) {
        return 1;
    }

    leaf = X509_STORE_CTX_get0_cert(x509);
    chain = X509_STORE_CTX_get0_untrusted(x509);

    if (leaf == NULL) {
        return 1;
    }

    X509_up_ref(leaf);
    probe->leaf = leaf;

    if (chain) {
        probe->chain = X509_chain_up_ref(chain);
    }

    return 1;
}


static u_char *
ngx_stream_certguard_probe_log_error(ngx_log_t *log, u_char *buf, size_t len)
{
    ngx_stream_certguard_probe_t  *probe;

    probe = log->data;

    return ngx_snprintf(buf, len, ", certguard probe of \"%V\" at %V",
                        &probe->name, &probe->addr_text);
}


static ngx_int_t
ngx_stream_certguard_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    cg_event_t                   ev;
    ngx_stream_certguard_ctx_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_certguard_module);

    if (ctx == NULL || ctx->result == NULL) {
        return ngx_certguard_variable(s->connection->pool, NULL, NULL,
                                      (ngx_certguard_var_e) data, v);
    }

    ngx_stream_certguard_event(s, ctx, &ev);

    return ngx_certguard_variable(s->connection->pool, ctx->result, &ev,
                                  (ngx_certguard_var_e) data, v);
}


static ngx_int_t
ngx_stream_certguard_upstream_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_stream_certguard_ctx_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_certguard_module);

    if (ctx == NULL || ctx->upstream.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->len = ctx->upstream.len;
    v->data = ctx->upstream.data;

    return NGX_OK;
}


static ngx_int_t
ngx_stream_certguard_add_variables(ngx_conf_t *cf)
{
    ngx_stream_variable_t  *var, *v;

    for (v = ngx_stream_certguard_vars; v->name.len; v++) {
        var = ngx_stream_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_stream_certguard_create_main_conf(ngx_conf_t *cf)
{
    ngx_stream_certguard_main_conf_t  *cmcf;

    cmcf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_certguard_main_conf_t));
    if (cmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     cmcf->ssl = NULL;
     *     cmcf->default_trust = NULL;
     */

    ngx_queue_init(&cmcf->probes);

    if (ngx_stream_certguard_init_addresses(cf, cmcf) != NGX_OK) {
        return NULL;
    }

    return cmcf;
}


static void *
ngx_stream_certguard_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_certguard_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_certguard_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->geoip = NULL;
     *     conf->geoip_country = { 0, NULL };
     *     conf->geoip_asn = { 0, NULL };
     */

    conf->connect = NGX_CONF_UNSET;
    conf->probe = NGX_CONF_UNSET;
    conf->connect_sni = NGX_CONF_UNSET;
    conf->probe_port = NGX_CONF_UNSET_UINT;
    conf->ports = NGX_CONF_UNSET_PTR;
    conf->allow = NGX_CONF_UNSET_PTR;
    conf->deny = NGX_CONF_UNSET_PTR;
    conf->probe_timeout = NGX_CONF_UNSET_MSEC;
    conf->probe_failure = NGX_CONF_UNSET_UINT;
    conf->mode = NGX_CONF_UNSET_UINT;
    conf->policy = NGX_CONF_UNSET_PTR;
    conf->trust = NGX_CONF_UNSET_PTR;
    conf->cache.shm_zone = NGX_CONF_UNSET_PTR;
    conf->cache.valid = NGX_CONF_UNSET;
    conf->log = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_stream_certguard_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_stream_certguard_srv_conf_t  *prev = parent;
    ngx_stream_certguard_srv_conf_t  *conf = child;

    ngx_stream_certguard_ports_t      *range;
    ngx_stream_certguard_main_conf_t  *cmcf;

    ngx_conf_merge_value(conf->connect, prev->connect, 0);
    ngx_conf_merge_value(conf->probe, prev->probe, 0);
    ngx_conf_merge_value(conf->connect_sni, prev->connect_sni, 1);
    ngx_conf_merge_uint_value(conf->probe_port, prev->probe_port, 443);
    ngx_conf_merge_ptr_value(conf->ports, prev->ports, NULL);
    ngx_conf_merge_ptr_value(conf->allow, prev->allow, NULL);
    ngx_conf_merge_ptr_value(conf->deny, prev->deny, NULL);
    ngx_conf_merge_msec_value(conf->probe_timeout, prev->probe_timeout, 5000);
    ngx_conf_merge_uint_value(conf->probe_failure, prev->probe_failure,
                              NGX_STREAM_CERTGUARD_FAILURE_BLOCK);
    ngx_conf_merge_uint_value(conf->mode, prev->mode,
                              NGX_STREAM_CERTGUARD_ENFORCE);
    ngx_conf_merge_ptr_value(conf->policy, prev->policy, NULL);
    ngx_conf_merge_ptr_value(conf->trust, prev->trust, NULL);
    ngx_conf_merge_ptr_value(conf->log, prev->log, NULL);
    ngx_conf_merge_ptr_value(conf->cache.shm_zone, prev->cache.shm_zone,
                             NULL);
    ngx_conf_merge_value(conf->cache.valid, prev->cache.valid,
                         NGX_CERTGUARD_CACHE_VALID);
    ngx_conf_merge_str_value(conf->geoip_country, prev->geoip_country, "");
    ngx_conf_merge_str_value(conf->geoip_asn, prev->geoip_asn, "");

    if (conf->probe_port == 0 || conf->probe_port > 65535) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "certguard_probe_port must be 1-65535");
        return NGX_CONF_ERROR;
    }

    if (conf->ports == NULL) {
        /* like Squid's SSL_ports: only HTTPS unless configured */

        conf->ports = ngx_array_create(cf->pool, 1,
                                       sizeof(ngx_stream_certguard_ports_t));
        if (conf->ports == NULL) {
            return NGX_CONF_ERROR;
        }

        range = ngx_array_push(conf->ports);
        if (range == NULL) {
            return NGX_CONF_ERROR;
        }

        range->low = 443;
        range->high = 443;
    }

    if (!conf->connect && !conf->probe) {
        return NGX_CONF_OK;
    }

    if (conf->connect && conf->probe) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"certguard_connect\" and \"certguard_probe\" "
                           "cannot both be on in a server");
        return NGX_CONF_ERROR;
    }

    if (conf->policy == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"certguard_policy\" is required where "
                           "\"certguard_connect\" or \"certguard_probe\" "
                           "is on");
        return NGX_CONF_ERROR;
    }

    cmcf = ngx_stream_conf_get_module_main_conf(cf,
                                                ngx_stream_certguard_module);

    if (conf->trust == NULL) {
        if (cmcf->default_trust == NULL
            && ngx_certguard_trust_conf(cf, NULL, &cmcf->default_trust)
               != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        conf->trust = cmcf->default_trust;
    }

    if (conf->geoip_country.len || conf->geoip_asn.len) {
        if (prev->geoip
            && ngx_strcmp(conf->geoip_country.data, prev->geoip_country.data)
               == 0
            && ngx_strcmp(conf->geoip_asn.data, prev->geoip_asn.data) == 0)
        {
            conf->geoip = prev->geoip;

        } else if (ngx_certguard_geoip_conf(cf, &conf->geoip_country,
                                            &conf->geoip_asn, &conf->geoip)
                   != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (cmcf->ssl == NULL) {
        ngx_pool_cleanup_t  *cln;

        cmcf->ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
        if (cmcf->ssl == NULL) {
            return NGX_CONF_ERROR;
        }

        cmcf->ssl->log = cf->log;

        if (ngx_ssl_create(cmcf->ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            ngx_ssl_cleanup_ctx(cmcf->ssl);
            return NGX_CONF_ERROR;
        }

        cln->handler = ngx_ssl_cleanup_ctx;
        cln->data = cmcf->ssl;

        SSL_CTX_set_verify(cmcf->ssl->ctx, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_cert_verify_callback(cmcf->ssl->ctx,
                                         ngx_stream_certguard_probe_verify,
                                         NULL);
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_stream_certguard_init(ngx_conf_t *cf)
{
    ngx_stream_handler_pt        *h;
    ngx_stream_core_main_conf_t  *cmcf;

    cmcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_STREAM_PREREAD_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_stream_certguard_preread_handler;

    h = ngx_array_push(&cmcf->phases[NGX_STREAM_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_stream_certguard_log_handler;

    return NGX_OK;
}


/* Addresses never dialled: the special ranges and this host's own. */

static ngx_int_t
ngx_stream_certguard_init_addresses(ngx_conf_t *cf,
    ngx_stream_certguard_main_conf_t *cmcf)
{
    char            **text;
    ngx_str_t         s;
    ngx_cidr_t       *cidr;
    struct ifaddrs   *ifa, *i;

    cmcf->special = ngx_array_create(cf->pool, 16, sizeof(ngx_cidr_t));
    cmcf->own = ngx_array_create(cf->pool, 8, sizeof(ngx_cidr_t));
    if (cmcf->special == NULL || cmcf->own == NULL) {
        return NGX_ERROR;
    }

    for (text = ngx_stream_certguard_special; *text; text++) {
        cidr = ngx_array_push(cmcf->special);
        if (cidr == NULL) {
            return NGX_ERROR;
        }

        s.data = (u_char *) *text;
        s.len = ngx_strlen(*text);

        if (ngx_ptocidr(&s, cidr) == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "certguard: invalid built-in network \"%V\"",
                               &s);
            return NGX_ERROR;
        }
    }

    if (getifaddrs(&ifa) == -1) {
        ngx_log_error(NGX_LOG_WARN, cf->log, ngx_errno,
                      "certguard: getifaddrs() failed, the host's own "
                      "addresses are not refused");
        return NGX_OK;
    }

    for (i = ifa; i; i = i->ifa_next) {

        if (i->ifa_addr == NULL) {
            continue;
        }

        if (i->ifa_addr->sa_family == AF_INET) {
            cidr = ngx_array_push(cmcf->own);
            if (cidr == NULL) {
                break;
            }

            cidr->family = AF_INET;
            cidr->u.in.addr =
                      ((struct sockaddr_in *) i->ifa_addr)->sin_addr.s_addr;
            cidr->u.in.mask = 0xffffffff;
        }

#if (NGX_HAVE_INET6)
        if (i->ifa_addr->sa_family == AF_INET6) {
            cidr = ngx_array_push(cmcf->own);
            if (cidr == NULL) {
                break;
            }

            cidr->family = AF_INET6;
            ngx_memcpy(cidr->u.in6.addr.s6_addr,
                       ((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr.s6_addr,
                       16);
            ngx_memset(cidr->u.in6.mask.s6_addr, 0xff, 16);
        }
#endif
    }

    freeifaddrs(ifa);

    return NGX_OK;
}


static char *
ngx_stream_certguard_ports(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_certguard_srv_conf_t  *cscf = conf;

    u_char                        *dash;
    ngx_int_t                      low, high;
    ngx_str_t                     *value;
    ngx_uint_t                     i;
    ngx_stream_certguard_ports_t  *range;

    if (cscf->ports != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    cscf->ports = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                   sizeof(ngx_stream_certguard_ports_t));
    if (cscf->ports == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        dash = ngx_strlchr(value[i].data, value[i].data + value[i].len, '-');

        if (dash) {
            low = ngx_atoi(value[i].data, dash - value[i].data);
            high = ngx_atoi(dash + 1, value[i].data + value[i].len - dash - 1);

        } else {
            low = ngx_atoi(value[i].data, value[i].len);
            high = low;
        }

        if (low < 1 || high > 65535 || low > high) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid port or range \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        range = ngx_array_push(cscf->ports);
        if (range == NULL) {
            return NGX_CONF_ERROR;
        }

        range->low = (in_port_t) low;
        range->high = (in_port_t) high;
    }

    return NGX_CONF_OK;
}


static char *
ngx_stream_certguard_cidrs(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_int_t     rc;
    ngx_str_t    *value;
    ngx_uint_t    i;
    ngx_cidr_t   *cidr;
    ngx_array_t **a;

    a = (ngx_array_t **) (p + cmd->offset);

    if (*a == NGX_CONF_UNSET_PTR) {
        *a = ngx_array_create(cf->pool, 4, sizeof(ngx_cidr_t));
        if (*a == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        cidr = ngx_array_push(*a);
        if (cidr == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_strcmp(value[i].data, "all") == 0) {
            ngx_str_t  any = ngx_string("0.0.0.0/0");

            (void) ngx_ptocidr(&any, cidr);
#if (NGX_HAVE_INET6)
            cidr = ngx_array_push(*a);
            if (cidr == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_str_set(&any, "::/0");
            (void) ngx_ptocidr(&any, cidr);
#endif
            continue;
        }

        rc = ngx_ptocidr(&value[i], cidr);

        if (rc == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid address or network \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_DONE) {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "low address bits of %V are meaningless",
                               &value[i]);
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_stream_certguard_policy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_certguard_srv_conf_t  *cscf = conf;

    ngx_str_t  *value;

    if (cscf->policy != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    return ngx_certguard_policy_conf(cf, &value[1], &cscf->policy);
}


static char *
ngx_stream_certguard_trusted(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_certguard_srv_conf_t  *cscf = conf;

    ngx_str_t  *value;

    if (cscf->trust != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    return ngx_certguard_trust_conf(cf, &value[1], &cscf->trust);
}


static char *
ngx_stream_certguard_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_certguard_srv_conf_t  *cscf = conf;

    return ngx_certguard_cache_conf(cf, &ngx_stream_certguard_module,
                                    &cscf->cache);
}


static char *
ngx_stream_certguard_log(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_certguard_srv_conf_t  *cscf = conf;

    return ngx_certguard_log_conf(cf, &cscf->log);
}
