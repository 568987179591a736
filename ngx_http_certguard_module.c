/*
 * ngx_http_certguard_module: scores the certificate of every upstream that
 * the proxy module connects to over TLS, inside the handshake, with the
 * certguard engine (src/certguard.h), and blocks, tags or allows it.
 *
 * The hook is an OpenSSL certificate verification callback installed on the
 * proxy module's per-location SSL_CTX: it runs X509_verify_cert itself, so
 * nginx's own verification (proxy_ssl_verify) is unchanged, then asks the
 * engine.  A block aborts the handshake before a byte of the request leaves,
 * and is turned into certguard_block_status instead of a 502.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <dlfcn.h>

#include "certguard.h"


#define NGX_HTTP_CERTGUARD_ENFORCE    0
#define NGX_HTTP_CERTGUARD_MONITOR    1

#define NGX_HTTP_CERTGUARD_POLICY     0
#define NGX_HTTP_CERTGUARD_TRUST      1
#define NGX_HTTP_CERTGUARD_GEOIP      2

/* where a request's verdict came from: $certguard_cache */
#define NGX_HTTP_CERTGUARD_BYPASS     0     /* scored, no cache zone */
#define NGX_HTTP_CERTGUARD_MISS       1
#define NGX_HTTP_CERTGUARD_HIT        2
#define NGX_HTTP_CERTGUARD_SESSION    3     /* resumed TLS session */
#define NGX_HTTP_CERTGUARD_KEEPALIVE  4     /* reused upstream connection */

#define NGX_HTTP_CERTGUARD_CEF_MAX    2048
#define NGX_HTTP_CERTGUARD_KEY_MAX    (32 + 3 * sizeof(void *)                \
                                       + CG_NAME_MAX + NGX_SOCKADDR_STRLEN + 8)


/* A policy, trust store or GeoIP object, loaded once per cycle per path. */
typedef struct {
    ngx_uint_t                  kind;
    ngx_str_t                   key;
    void                       *obj;
} ngx_http_certguard_file_t;


typedef struct {
    ngx_array_t                 files;      /* ngx_http_certguard_file_t */
} ngx_http_certguard_main_conf_t;


typedef struct {
    ngx_open_file_t            *file;
    ngx_syslog_peer_t          *syslog;
    cg_verdict_t                min_verdict;
} ngx_http_certguard_log_t;


/* The shared verdict cache: an rbtree by key hash and an LRU queue. */
typedef struct {
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 queue;
    ngx_uint_t                  generation;
} ngx_http_certguard_shctx_t;


typedef struct {
    ngx_http_certguard_shctx_t *sh;
    ngx_slab_pool_t            *shpool;
    ngx_uint_t                  generation;     /* this cycle's */
} ngx_http_certguard_cache_t;


typedef struct {
    ngx_rbtree_node_t           node;
    ngx_queue_t                 queue;
    time_t                      expire;
    ngx_uint_t                  generation;
    size_t                      len;
    cg_result_t                 result;
    u_char                      key[1];
} ngx_http_certguard_node_t;


typedef struct {
    ngx_flag_t                  enable;
    ngx_uint_t                  mode;
    cg_policy_t                *policy;
    ngx_str_t                   trusted_certificate;
    ngx_str_t                   geoip_country;
    ngx_str_t                   geoip_asn;
    cg_trust_t                 *trust;
    cg_geoip_t                 *geoip;
    ngx_shm_zone_t             *cache;
    time_t                      cache_valid;
    ngx_uint_t                  block_status;
    ngx_http_certguard_log_t   *log;
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
    ngx_uint_t                  mode;
    ngx_str_t                   cef;
    ngx_str_t                   body;
    ngx_event_free_peer_pt      peer_free;
    void                       *peer_data;
    unsigned                    scored:1;
    unsigned                    blocked:1;      /* enforce mode block */
    unsigned                    replaced:1;     /* response is ours */
    unsigned                    body_sent:1;
} ngx_http_certguard_ctx_t;


static int ngx_http_certguard_verify(X509_STORE_CTX *xs, void *arg);
static int ngx_http_certguard_verify_pass(int ok, X509_STORE_CTX *xs);
static void ngx_http_certguard_info_callback(const SSL *ssl, int where,
    int ret);
static cg_verdict_t ngx_http_certguard_score(ngx_http_request_t *r,
    ngx_connection_t *c, X509_STORE_CTX *xs,
    ngx_http_certguard_loc_conf_t *cglcf);
static ngx_int_t ngx_http_certguard_name(ngx_http_request_t *r,
    ngx_http_upstream_t *u, u_char *buf, size_t len);
static void ngx_http_certguard_keep(ngx_http_request_t *r, SSL *ssl,
    ngx_connection_t *c, ngx_http_certguard_loc_conf_t *cglcf,
    cg_result_t *res);
static void ngx_http_certguard_free_blocked_peer(ngx_peer_connection_t *pc,
    void *data, ngx_uint_t state);
static ngx_int_t ngx_http_certguard_cache_lookup(ngx_shm_zone_t *zone,
    u_char *key, size_t len, time_t now, cg_result_t *res);
static void ngx_http_certguard_cache_insert(ngx_shm_zone_t *zone,
    u_char *key, size_t len, time_t expire, cg_result_t *res);
static void ngx_http_certguard_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_certguard_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_certguard_log_result(ngx_http_request_t *r,
    ngx_http_certguard_ctx_t *ctx, ngx_http_certguard_loc_conf_t *cglcf);
static ngx_int_t ngx_http_certguard_format_cef(ngx_http_request_t *r,
    ngx_http_certguard_ctx_t *ctx);
static const char *ngx_http_certguard_action(ngx_http_certguard_ctx_t *ctx);
static ngx_http_certguard_ctx_t *ngx_http_certguard_get_ctx(
    ngx_http_request_t *r);
static ngx_http_certguard_ctx_t *ngx_http_certguard_restore(
    ngx_http_request_t *r);

static ngx_int_t ngx_http_certguard_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_certguard_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);

static ngx_int_t ngx_http_certguard_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static void *ngx_http_certguard_load(ngx_conf_t *cf, ngx_uint_t kind,
    ngx_str_t *path, ngx_str_t *path2);
static void ngx_http_certguard_cleanup_file(void *data);
static char *ngx_http_certguard_policy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_certguard_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_certguard_log(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_certguard_block_status(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_certguard_add_variables(ngx_conf_t *cf);
static void *ngx_http_certguard_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_certguard_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_certguard_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_certguard_install(ngx_conf_t *cf, ngx_ssl_t *ssl);
static ngx_int_t ngx_http_certguard_init(ngx_conf_t *cf);


extern ngx_module_t  ngx_http_proxy_module;

static int  ngx_http_certguard_ssl_ctx_index = -1;
static int  ngx_http_certguard_ssl_index = -1;
static int  ngx_http_certguard_session_index = -1;


static ngx_conf_enum_t  ngx_http_certguard_modes[] = {
    { ngx_string("enforce"), NGX_HTTP_CERTGUARD_ENFORCE },
    { ngx_string("monitor"), NGX_HTTP_CERTGUARD_MONITOR },
    { ngx_null_string, 0 }
};


static ngx_str_t  ngx_http_certguard_sources[] = {
    ngx_string("BYPASS"),
    ngx_string("MISS"),
    ngx_string("HIT"),
    ngx_string("SESSION"),
    ngx_string("KEEPALIVE")
};


static ngx_command_t  ngx_http_certguard_commands[] = {

    { ngx_string("certguard"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_certguard_loc_conf_t, enable),
      NULL },

    { ngx_string("certguard_policy"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_certguard_policy,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_mode"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_certguard_loc_conf_t, mode),
      &ngx_http_certguard_modes },

    { ngx_string("certguard_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_certguard_loc_conf_t, trusted_certificate),
      NULL },

    { ngx_string("certguard_geoip_country"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_certguard_loc_conf_t, geoip_country),
      NULL },

    { ngx_string("certguard_geoip_asn"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_certguard_loc_conf_t, geoip_asn),
      NULL },

    { ngx_string("certguard_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_certguard_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_block_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_certguard_block_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_log"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_certguard_log,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_certguard_module_ctx = {
    ngx_http_certguard_add_variables,       /* preconfiguration */
    ngx_http_certguard_init,                /* postconfiguration */

    ngx_http_certguard_create_main_conf,    /* create main configuration */
    NULL,                                   /* init main configuration */

    NULL,                                   /* create server configuration */
    NULL,                                   /* merge server configuration */

    ngx_http_certguard_create_loc_conf,     /* create location configuration */
    ngx_http_certguard_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_certguard_module = {
    NGX_MODULE_V1,
    &ngx_http_certguard_module_ctx,         /* module context */
    ngx_http_certguard_commands,            /* module directives */
    NGX_HTTP_MODULE,                        /* module type */
    NULL,                                   /* init master */
    NULL,                                   /* init module */
    NULL,                                   /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    NULL,                                   /* exit process */
    NULL,                                   /* exit master */
    NGX_MODULE_V1_PADDING
};


#define NGX_HTTP_CERTGUARD_VAR_VERDICT   0
#define NGX_HTTP_CERTGUARD_VAR_SCORE     1
#define NGX_HTTP_CERTGUARD_VAR_SIGNALS   2
#define NGX_HTTP_CERTGUARD_VAR_SHA256    3
#define NGX_HTTP_CERTGUARD_VAR_SUBJECT   4
#define NGX_HTTP_CERTGUARD_VAR_ISSUER    5
#define NGX_HTTP_CERTGUARD_VAR_CEF       6
#define NGX_HTTP_CERTGUARD_VAR_CACHE     7
#define NGX_HTTP_CERTGUARD_VAR_ACTION    8


static ngx_http_variable_t  ngx_http_certguard_vars[] = {

    { ngx_string("certguard_verdict"), NULL, ngx_http_certguard_variable,
      NGX_HTTP_CERTGUARD_VAR_VERDICT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_score"), NULL, ngx_http_certguard_variable,
      NGX_HTTP_CERTGUARD_VAR_SCORE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_signals"), NULL, ngx_http_certguard_variable,
      NGX_HTTP_CERTGUARD_VAR_SIGNALS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cert_sha256"), NULL, ngx_http_certguard_variable,
      NGX_HTTP_CERTGUARD_VAR_SHA256, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cert_subject"), NULL, ngx_http_certguard_variable,
      NGX_HTTP_CERTGUARD_VAR_SUBJECT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cert_issuer"), NULL, ngx_http_certguard_variable,
      NGX_HTTP_CERTGUARD_VAR_ISSUER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cef"), NULL, ngx_http_certguard_variable,
      NGX_HTTP_CERTGUARD_VAR_CEF, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cache"), NULL, ngx_http_certguard_variable,
      NGX_HTTP_CERTGUARD_VAR_CACHE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_action"), NULL, ngx_http_certguard_variable,
      NGX_HTTP_CERTGUARD_VAR_ACTION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


/*
 * Replaces X509_verify_cert for the whole handshake of a certguard SSL_CTX.
 * Stock verification runs first and its result is returned unchanged unless
 * certguard blocks, so proxy_ssl_verify keeps its exact semantics.
 */

static int
ngx_http_certguard_verify(X509_STORE_CTX *xs, void *arg)
{
    int                             ok, stock;
    SSL                            *ssl;
    ngx_connection_t               *c;
    ngx_http_request_t             *r;
    ngx_http_certguard_ssl_t       *cgs;
    ngx_http_certguard_loc_conf_t  *cglcf;

    ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());

    ok = X509_verify_cert(xs);

    if (ssl == NULL) {
        return ok;
    }

    cgs = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
                              ngx_http_certguard_ssl_ctx_index);

    /*
     * with proxy_ssl_verify off nginx leaves SSL_VERIFY_NONE, where OpenSSL
     * ignores this return value; certguard had to set SSL_VERIFY_PEER to be
     * able to abort, so it reports success for nginx's part
     */

    stock = (cgs != NULL && cgs->verify_none) ? 1 : ok;

    if (ok < 0) {
        return stock;
    }

    c = ngx_ssl_get_connection(ssl);
    if (c == NULL || c->data == NULL) {
        return stock;
    }

    r = c->data;

    if (r->upstream == NULL) {
        return stock;
    }

    cglcf = ngx_http_get_module_loc_conf(r, ngx_http_certguard_module);

    if (!cglcf->enable || cglcf->policy == NULL) {
        return stock;
    }

    if (ngx_http_certguard_score(r, c, xs, cglcf) == CG_BLOCK
        && cglcf->mode == NGX_HTTP_CERTGUARD_ENFORCE)
    {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }

    return stock;
}


static int
ngx_http_certguard_verify_pass(int ok, X509_STORE_CTX *xs)
{
    /* as nginx's own callback: record errors, decide later */
    return 1;
}


/*
 * An abbreviated handshake carries no certificate, so the verify callback
 * does not run.  A session is only offered for resumption when it carries
 * a verdict scored by this same configuration (sessions kept in an upstream
 * zone are serialized and lose it): otherwise the handshake is a full one.
 */

static void
ngx_http_certguard_info_callback(const SSL *ssl, int where, int ret)
{
    u_char                          name[CG_NAME_MAX];
    SSL_SESSION                    *sess;
    ngx_connection_t               *c;
    ngx_http_request_t             *r;
    ngx_http_certguard_ctx_t       *ctx;
    ngx_http_certguard_ssl_t       *cgs;
    ngx_http_certguard_record_t    *rec;
    ngx_http_certguard_loc_conf_t  *cglcf;

    cgs = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
                              ngx_http_certguard_ssl_ctx_index);

    if (cgs != NULL && cgs->info_callback) {
        cgs->info_callback(ssl, where, ret);
    }

    if (!(where & (SSL_CB_HANDSHAKE_START|SSL_CB_HANDSHAKE_DONE))
        || SSL_is_server(ssl))
    {
        return;
    }

    c = ngx_ssl_get_connection((SSL *) ssl);
    if (c == NULL || c->data == NULL) {
        return;
    }

    r = c->data;

    if (r->upstream == NULL) {
        return;
    }

    cglcf = ngx_http_get_module_loc_conf(r, ngx_http_certguard_module);

    if (!cglcf->enable || cglcf->policy == NULL) {
        return;
    }

    if (where & SSL_CB_HANDSHAKE_DONE) {

        /* an abbreviated handshake is logged with the session's verdict */

        if (!SSL_session_reused((SSL *) ssl)) {
            return;
        }

        ctx = ngx_http_certguard_restore(r);

        if (ctx != NULL && ctx->scored
            && ctx->source == NGX_HTTP_CERTGUARD_SESSION)
        {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "certguard: %s certificate of \"%s\", score %d, "
                          "resumed session",
                          ngx_http_certguard_action(ctx), ctx->result.name,
                          ctx->result.score);

            ngx_http_certguard_log_result(r, ctx, cglcf);
        }

        return;
    }

    /* SSL_CB_HANDSHAKE_START: a new handshake, a new verdict */

    ctx = ngx_http_get_module_ctx(r, ngx_http_certguard_module);

    if (ctx != NULL) {
        ctx->scored = 0;
        ctx->blocked = 0;
    }

    sess = SSL_get_session(ssl);
    if (sess == NULL) {
        return;
    }

    rec = SSL_SESSION_get_ex_data(sess, ngx_http_certguard_session_index);

    /* a "would-block" of monitor mode must not pass an enforcing location */

    if (rec != NULL
        && rec->policy == cglcf->policy
        && rec->trust == cglcf->trust
        && rec->geoip == cglcf->geoip
        && (rec->result.verdict != CG_BLOCK
            || cglcf->mode == NGX_HTTP_CERTGUARD_MONITOR)
        && ngx_http_certguard_name(r, r->upstream, name, sizeof(name))
           == NGX_OK
        && ngx_strcmp(name, rec->result.name) == 0)
    {
        return;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "certguard: session without verdict, full handshake");

    (void) SSL_set_session((SSL *) ssl, NULL);
}


static cg_verdict_t
ngx_http_certguard_score(ngx_http_request_t *r, ngx_connection_t *c,
    X509_STORE_CTX *xs, ngx_http_certguard_loc_conf_t *cglcf)
{
    u_char                     *p, *last;
    u_char                      name[CG_NAME_MAX];
    u_char                      addr[NGX_SOCKADDR_STRLEN + 1];
    u_char                      key[NGX_HTTP_CERTGUARD_KEY_MAX];
    u_char                      md[EVP_MAX_MD_SIZE];
    size_t                      n;
    time_t                      now, expire;
    unsigned int                mdlen;
    cg_input_t                  in;
    ngx_uint_t                  cached, level;
    cg_result_t                *res;
    ngx_http_upstream_t        *u;
    ngx_http_certguard_ctx_t   *ctx;

    u = r->upstream;
    now = ngx_time();

    ctx = ngx_http_certguard_get_ctx(r);
    if (ctx == NULL) {
        return CG_ALLOW;
    }

    res = &ctx->result;
    ctx->scored = 0;
    ctx->blocked = 0;
    ctx->cef.len = 0;
    ctx->mode = cglcf->mode;
    ctx->source = cglcf->cache ? NGX_HTTP_CERTGUARD_MISS
                               : NGX_HTTP_CERTGUARD_BYPASS;

    if (ngx_http_certguard_name(r, u, name, sizeof(name)) != NGX_OK) {
        name[0] = '\0';
    }

    addr[0] = '\0';

    if (u->peer.sockaddr) {
        n = ngx_sock_ntop(u->peer.sockaddr, u->peer.socklen, addr,
                          NGX_SOCKADDR_STRLEN, 0);
        addr[n] = '\0';
    }

    ngx_memzero(&in, sizeof(cg_input_t));

    in.policy = cglcf->policy;
    in.trust = cglcf->trust;
    in.geoip = cglcf->geoip;
    in.leaf = X509_STORE_CTX_get0_cert(xs);
    in.chain = X509_STORE_CTX_get0_untrusted(xs);
    in.name = name[0] ? (const char *) name : NULL;
    in.dst_addr = addr[0] ? (const char *) addr : NULL;
    in.dst_port = u->peer.sockaddr ? ngx_inet_get_port(u->peer.sockaddr) : 0;
    in.now = now;

    if (in.leaf == NULL) {
        return CG_ALLOW;
    }

    cached = 0;
    n = 0;

    if (cglcf->cache
        && X509_digest(in.leaf, EVP_sha256(), md, &mdlen) == 1)
    {
        /* leaf SHA-256, the objects it is scored with, name, destination */

        p = key;
        last = key + sizeof(key);

        p = ngx_cpymem(p, md, mdlen);
        p = ngx_cpymem(p, &in.policy, sizeof(void *));
        p = ngx_cpymem(p, &in.trust, sizeof(void *));
        p = ngx_cpymem(p, &in.geoip, sizeof(void *));
        p = ngx_slprintf(p, last, "%s%Z%s:%ui", name, addr,
                         (ngx_uint_t) in.dst_port);

        n = p - key;

        cached = (ngx_http_certguard_cache_lookup(cglcf->cache, key, n, now,
                                                  res)
                  == NGX_OK);
    }

    if (cached) {
        ctx->source = NGX_HTTP_CERTGUARD_HIT;

    } else if (cg_evaluate(&in, res) != CG_OK) {

        /* fail closed: a certificate the engine cannot read is a signal */

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "certguard: engine could not score the certificate "
                      "of \"%s\"", name);

        ngx_memzero(res, sizeof(cg_result_t));
        res->verdict = CG_BLOCK;
        res->nhits = 1;
        ngx_cpystrn((u_char *) res->hits[0].id, (u_char *) "engine_error",
                    CG_ID_MAX);
        ngx_cpystrn((u_char *) res->name, name, CG_NAME_MAX);
        n = 0;

    } else if (n) {
        expire = now + cglcf->cache_valid;

        if (res->not_after > now && res->not_after < expire) {
            expire = (time_t) res->not_after;
        }

        ngx_http_certguard_cache_insert(cglcf->cache, key, n, expire, res);
    }

    ctx->scored = 1;
    ngx_memcpy(ctx->dst, addr, sizeof(addr));
    ctx->dst_port = (in_port_t) in.dst_port;

    if (res->verdict == CG_BLOCK && cglcf->mode == NGX_HTTP_CERTGUARD_ENFORCE)
    {
        ctx->blocked = 1;

        /*
         * a policy decision is not a failure of the server: keep it out of
         * max_fails accounting and out of proxy_next_upstream retries
         */

        if (u->peer.free != ngx_http_certguard_free_blocked_peer) {
            ctx->peer_free = u->peer.free;
            ctx->peer_data = u->peer.data;
            u->peer.free = ngx_http_certguard_free_blocked_peer;
            u->peer.data = ctx;
        }
    }

    level = (res->verdict == CG_BLOCK) ? NGX_LOG_WARN : NGX_LOG_INFO;

    ngx_log_error(level, r->connection->log, 0,
                  "certguard: %s certificate of \"%s\" at %s, score %d, "
                  "cache %V",
                  ngx_http_certguard_action(ctx), name, addr, res->score,
                  &ngx_http_certguard_sources[ctx->source]);

    ngx_http_certguard_log_result(r, ctx, cglcf);

    if (!ctx->blocked) {
        ngx_http_certguard_keep(r, X509_STORE_CTX_get_ex_data(xs,
                                    SSL_get_ex_data_X509_STORE_CTX_idx()),
                                c, cglcf, res);
    }

    return res->verdict;
}


/* The name nginx verifies: proxy_ssl_name or the upstream host, no port. */

static ngx_int_t
ngx_http_certguard_name(ngx_http_request_t *r, ngx_http_upstream_t *u,
    u_char *buf, size_t len)
{
    u_char     *p, *last;
    ngx_str_t   name;

    if (u->conf->ssl_name) {
        if (ngx_http_complex_value(r, u->conf->ssl_name, &name) != NGX_OK) {
            return NGX_ERROR;
        }

    } else {
        name = u->ssl_name;
    }

    p = name.data;
    last = name.data + name.len;

    if (name.len && *p == '[') {
        p = ngx_strlchr(p, last, ']');

        if (p != NULL) {
            name.data++;
            name.len = p - name.data;
            goto done;
        }

        p = name.data;
    }

    p = ngx_strlchr(p, last, ':');

    if (p != NULL) {
        name.len = p - name.data;
    }

done:

    if (name.len >= len) {
        name.len = len - 1;
    }

    ngx_memcpy(buf, name.data, name.len);
    buf[name.len] = '\0';

    return NGX_OK;
}


/*
 * Keeps a verdict that lets the connection through with the connection
 * (upstream keepalive) and with its TLS session (resumption).
 */

static void
ngx_http_certguard_keep(ngx_http_request_t *r, SSL *ssl, ngx_connection_t *c,
    ngx_http_certguard_loc_conf_t *cglcf, cg_result_t *res)
{
    SSL_SESSION                  *sess;
    ngx_http_certguard_record_t  *rec;

    if (ssl == NULL) {
        return;
    }

    rec = SSL_get_ex_data(ssl, ngx_http_certguard_ssl_index);

    if (rec == NULL) {
        rec = ngx_palloc(c->pool, sizeof(ngx_http_certguard_record_t));
        if (rec == NULL) {
            return;
        }

        if (SSL_set_ex_data(ssl, ngx_http_certguard_ssl_index, rec) == 0) {
            return;
        }
    }

    rec->policy = cglcf->policy;
    rec->trust = cglcf->trust;
    rec->geoip = cglcf->geoip;
    ngx_memcpy(&rec->result, res, sizeof(cg_result_t));

    sess = SSL_get_session(ssl);
    if (sess == NULL) {
        return;
    }

    rec = ngx_alloc(sizeof(ngx_http_certguard_record_t), r->connection->log);
    if (rec == NULL) {
        return;
    }

    rec->policy = cglcf->policy;
    rec->trust = cglcf->trust;
    rec->geoip = cglcf->geoip;
    ngx_memcpy(&rec->result, res, sizeof(cg_result_t));

    /* the free callback releases a previous record */

    if (SSL_SESSION_set_ex_data(sess, ngx_http_certguard_session_index, rec)
        == 0)
    {
        ngx_free(rec);
    }
}


static void
ngx_http_certguard_session_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad,
    int idx, long argl, void *argp)
{
    ngx_free(ptr);
}


/* TLS 1.3 tickets make new sessions from the current one: copy the verdict */

static int
ngx_http_certguard_session_dup(CRYPTO_EX_DATA *to, const CRYPTO_EX_DATA *from,
    void **from_d, int idx, long argl, void *argp)
{
    ngx_http_certguard_record_t  *rec;

    if (*from_d == NULL) {
        return 1;
    }

    rec = ngx_alloc(sizeof(ngx_http_certguard_record_t), ngx_cycle->log);
    if (rec == NULL) {
        *from_d = NULL;
        return 1;
    }

    ngx_memcpy(rec, *from_d, sizeof(ngx_http_certguard_record_t));
    *from_d = rec;

    return 1;
}


static void
ngx_http_certguard_free_blocked_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
    ngx_http_certguard_ctx_t  *ctx = data;

    pc->free = ctx->peer_free;
    pc->data = ctx->peer_data;

    pc->free(pc, pc->data, state & ~NGX_PEER_FAILED);

    pc->tries = 0;
}


static ngx_int_t
ngx_http_certguard_cache_lookup(ngx_shm_zone_t *zone, u_char *key, size_t len,
    time_t now, cg_result_t *res)
{
    uint32_t                     hash;
    ngx_int_t                    rc;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_http_certguard_node_t   *cn;
    ngx_http_certguard_cache_t  *cache;

    cache = zone->data;
    hash = ngx_crc32_short(key, len);

    ngx_shmtx_lock(&cache->shpool->mutex);

    node = cache->sh->rbtree.root;
    sentinel = cache->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        cn = (ngx_http_certguard_node_t *) node;

        rc = ngx_memn2cmp(key, cn->key, len, cn->len);

        if (rc == 0) {
            if (cn->expire <= now || cn->generation != cache->generation) {
                ngx_queue_remove(&cn->queue);
                ngx_rbtree_delete(&cache->sh->rbtree, node);
                ngx_slab_free_locked(cache->shpool, cn);
                break;
            }

            ngx_queue_remove(&cn->queue);
            ngx_queue_insert_head(&cache->sh->queue, &cn->queue);

            ngx_memcpy(res, &cn->result, sizeof(cg_result_t));

            ngx_shmtx_unlock(&cache->shpool->mutex);
            return NGX_OK;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return NGX_DECLINED;
}


static void
ngx_http_certguard_cache_insert(ngx_shm_zone_t *zone, u_char *key, size_t len,
    time_t expire, cg_result_t *res)
{
    size_t                       size;
    ngx_uint_t                   i;
    ngx_queue_t                 *q;
    ngx_http_certguard_node_t   *cn;
    ngx_http_certguard_cache_t  *cache;

    cache = zone->data;
    size = offsetof(ngx_http_certguard_node_t, key) + len;

    ngx_shmtx_lock(&cache->shpool->mutex);

    /* evict least recently used entries until the new one fits */

    for (i = 0; i < 16; i++) {
        cn = ngx_slab_alloc_locked(cache->shpool, size);
        if (cn != NULL) {
            break;
        }

        if (ngx_queue_empty(&cache->sh->queue)) {
            break;
        }

        q = ngx_queue_last(&cache->sh->queue);
        ngx_queue_remove(q);

        cn = ngx_queue_data(q, ngx_http_certguard_node_t, queue);
        ngx_rbtree_delete(&cache->sh->rbtree, &cn->node);
        ngx_slab_free_locked(cache->shpool, cn);
        cn = NULL;
    }

    if (cn == NULL) {
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return;
    }

    cn->node.key = ngx_crc32_short(key, len);
    cn->expire = expire;
    cn->generation = cache->generation;
    cn->len = len;
    ngx_memcpy(&cn->result, res, sizeof(cg_result_t));
    ngx_memcpy(cn->key, key, len);

    ngx_rbtree_insert(&cache->sh->rbtree, &cn->node);
    ngx_queue_insert_head(&cache->sh->queue, &cn->queue);

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


static void
ngx_http_certguard_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t          **p;
    ngx_http_certguard_node_t   *cn, *cnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            cn = (ngx_http_certguard_node_t *) node;
            cnt = (ngx_http_certguard_node_t *) temp;

            p = (ngx_memn2cmp(cn->key, cnt->key, cn->len, cnt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_int_t
ngx_http_certguard_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_certguard_cache_t  *ocache = data;

    size_t                       len;
    ngx_http_certguard_cache_t  *cache;

    cache = shm_zone->data;

    if (ocache) {

        /*
         * a reload keeps the zone; entries of the previous configuration
         * are ignored by generation, since its policy may have changed
         */

        cache->sh = ocache->sh;
        cache->shpool = ocache->shpool;

        ngx_shmtx_lock(&cache->shpool->mutex);
        cache->generation = ++cache->sh->generation;
        ngx_shmtx_unlock(&cache->shpool->mutex);

        return NGX_OK;
    }

    cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        cache->sh = cache->shpool->data;
        cache->generation = cache->sh->generation;
        return NGX_OK;
    }

    cache->sh = ngx_slab_alloc(cache->shpool,
                               sizeof(ngx_http_certguard_shctx_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    cache->shpool->data = cache->sh;

    ngx_rbtree_init(&cache->sh->rbtree, &cache->sh->sentinel,
                    ngx_http_certguard_rbtree_insert_value);
    ngx_queue_init(&cache->sh->queue);

    cache->sh->generation = 1;
    cache->generation = 1;

    len = sizeof(" in certguard_cache zone \"\"") + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in certguard_cache zone \"%V\"%Z",
                &shm_zone->shm.name);

    cache->shpool->log_nomem = 0;

    return NGX_OK;
}


/* One CEF record per scored handshake, as access_log writes its lines. */

static void
ngx_http_certguard_log_result(ngx_http_request_t *r,
    ngx_http_certguard_ctx_t *ctx, ngx_http_certguard_loc_conf_t *cglcf)
{
    u_char                    *p;
    u_char                     line[NGX_HTTP_CERTGUARD_CEF_MAX + 512];
    ssize_t                    n;
    ngx_http_certguard_log_t  *log;

    log = cglcf->log;

    if (log == NULL || ctx->result.verdict < log->min_verdict) {
        return;
    }

    if (ngx_http_certguard_format_cef(r, ctx) != NGX_OK) {
        return;
    }

    if (log->syslog) {
        p = ngx_syslog_add_header(log->syslog, line);
        p = ngx_cpymem(p, ctx->cef.data, ctx->cef.len);

        n = ngx_syslog_send(log->syslog, line, p - line);

        if (n < 0) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "certguard: send() to syslog failed");
        }

        return;
    }

    p = ngx_cpymem(line, ctx->cef.data, ctx->cef.len);
    ngx_linefeed(p);

    n = ngx_write_fd(log->file->fd, line, p - line);

    if (n == -1) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                      ngx_write_fd_n " to \"%s\" failed",
                      log->file->name.data);
    }
}


static ngx_int_t
ngx_http_certguard_format_cef(ngx_http_request_t *r,
    ngx_http_certguard_ctx_t *ctx)
{
    u_char              *p;
    u_char               src[NGX_SOCKADDR_STRLEN + 1];
    u_char               request[2048];
    size_t               n;
    ngx_time_t          *tp;
    cg_event_t           ev;
    ngx_http_upstream_t *u;

    if (ctx->cef.len) {
        return NGX_OK;
    }

    ngx_memzero(&ev, sizeof(cg_event_t));

    ev.action = ngx_http_certguard_action(ctx);

    n = ngx_sock_ntop(r->connection->sockaddr, r->connection->socklen, src,
                      NGX_SOCKADDR_STRLEN, 0);
    src[n] = '\0';
    ev.src_addr = (const char *) src;
    ev.src_port = ngx_inet_get_port(r->connection->sockaddr);

    /* kept at scoring time: a blocked peer is released before logging */

    if (ctx->dst[0]) {
        ev.dst_addr = (const char *) ctx->dst;
        ev.dst_port = ctx->dst_port;
    }

    u = r->upstream;

    p = ngx_snprintf(request, sizeof(request) - 1, "%V%s%V",
                     (u && u->schema.len) ? &u->schema : &r->schema,
                     ctx->result.name, &r->unparsed_uri);
    *p = '\0';
    ev.request = (const char *) request;

    tp = ngx_timeofday();
    ev.rt_ms = (int64_t) tp->sec * 1000 + tp->msec;

    ctx->cef.data = ngx_pnalloc(r->pool, NGX_HTTP_CERTGUARD_CEF_MAX);
    if (ctx->cef.data == NULL) {
        return NGX_ERROR;
    }

    n = cg_format_cef(&ctx->result, &ev, (char *) ctx->cef.data,
                      NGX_HTTP_CERTGUARD_CEF_MAX);

    if (n >= NGX_HTTP_CERTGUARD_CEF_MAX) {
        n = NGX_HTTP_CERTGUARD_CEF_MAX - 1;
    }

    ctx->cef.len = n;

    return NGX_OK;
}


static const char *
ngx_http_certguard_action(ngx_http_certguard_ctx_t *ctx)
{
    switch (ctx->result.verdict) {

    case CG_BLOCK:
        return ctx->mode == NGX_HTTP_CERTGUARD_MONITOR ? "would-block"
                                                       : "blocked";
    case CG_TAG:
        return "tagged";

    default:
        return "allowed";
    }
}


static ngx_http_certguard_ctx_t *
ngx_http_certguard_get_ctx(ngx_http_request_t *r)
{
    ngx_http_certguard_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_certguard_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_certguard_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_certguard_module);
    }

    return ctx;
}


/*
 * A request that did not handshake (a keepalive connection, or a resumed
 * session) takes the verdict kept with the connection or the session.
 */

static ngx_http_certguard_ctx_t *
ngx_http_certguard_restore(ngx_http_request_t *r)
{
    SSL                            *ssl;
    size_t                          n;
    SSL_SESSION                    *sess;
    ngx_uint_t                      source;
    ngx_connection_t               *c;
    ngx_http_upstream_t            *u;
    ngx_http_certguard_ctx_t       *ctx;
    ngx_http_certguard_record_t    *rec, *srec;
    ngx_http_certguard_loc_conf_t  *cglcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_certguard_module);

    if (ctx != NULL && ctx->scored) {
        return ctx;
    }

    u = r->upstream;

    if (u == NULL || u->peer.connection == NULL
        || u->peer.connection->ssl == NULL)
    {
        return ctx;
    }

    cglcf = ngx_http_get_module_loc_conf(r, ngx_http_certguard_module);

    if (!cglcf->enable || cglcf->policy == NULL) {
        return ctx;
    }

    c = u->peer.connection;
    ssl = c->ssl->connection;

    rec = SSL_get_ex_data(ssl, ngx_http_certguard_ssl_index);
    source = NGX_HTTP_CERTGUARD_KEEPALIVE;

    if (rec == NULL && SSL_session_reused(ssl)) {
        sess = SSL_get_session(ssl);

        srec = sess ? SSL_SESSION_get_ex_data(sess,
                                          ngx_http_certguard_session_index)
                    : NULL;

        if (srec == NULL) {
            return ctx;
        }

        rec = ngx_palloc(c->pool, sizeof(ngx_http_certguard_record_t));
        if (rec == NULL) {
            return ctx;
        }

        ngx_memcpy(rec, srec, sizeof(ngx_http_certguard_record_t));

        if (SSL_set_ex_data(ssl, ngx_http_certguard_ssl_index, rec) == 0) {
            return ctx;
        }

        source = NGX_HTTP_CERTGUARD_SESSION;
    }

    if (rec == NULL
        || rec->policy != cglcf->policy
        || rec->trust != cglcf->trust
        || rec->geoip != cglcf->geoip)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "certguard: no verdict kept with the connection");
        return ctx;
    }

    ctx = ngx_http_certguard_get_ctx(r);
    if (ctx == NULL) {
        return NULL;
    }

    ngx_memcpy(&ctx->result, &rec->result, sizeof(cg_result_t));
    ctx->scored = 1;
    ctx->source = source;

    /* a kept "would-block" verdict was not blocked: say so, also here */

    ctx->mode = (rec->result.verdict == CG_BLOCK) ? NGX_HTTP_CERTGUARD_MONITOR
                                                  : cglcf->mode;
    ctx->cef.len = 0;
    ctx->dst[0] = '\0';
    ctx->dst_port = 0;

    if (u->peer.sockaddr) {
        n = ngx_sock_ntop(u->peer.sockaddr, u->peer.socklen, ctx->dst,
                          NGX_SOCKADDR_STRLEN, 0);
        ctx->dst[n] = '\0';
        ctx->dst_port = ngx_inet_get_port(u->peer.sockaddr);
    }

    return ctx;
}


static ngx_int_t
ngx_http_certguard_header_filter(ngx_http_request_t *r)
{
    u_char                         *p;
    u_char                          ids[CG_MAX_HITS * CG_ID_MAX];
    ngx_http_certguard_ctx_t       *ctx;
    ngx_http_certguard_loc_conf_t  *cglcf;

    ctx = ngx_http_certguard_restore(r);

    if (ctx == NULL || !ctx->blocked || ctx->replaced
        || r->headers_out.status != NGX_HTTP_BAD_GATEWAY)
    {
        return ngx_http_next_header_filter(r);
    }

    /* the 502 of the aborted handshake becomes certguard's answer */

    cglcf = ngx_http_get_module_loc_conf(r, ngx_http_certguard_module);

    (void) cg_format_signal_ids(&ctx->result, (char *) ids, sizeof(ids));

    ctx->body.data = ngx_pnalloc(r->pool, sizeof(ids) + 128);
    if (ctx->body.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(ctx->body.data,
                    "certguard: upstream certificate blocked "
                    "(score %d; signals: %s)" CRLF,
                    ctx->result.score, ids);

    ctx->body.len = p - ctx->body.data;
    ctx->replaced = 1;

    r->err_status = cglcf->block_status;
    r->headers_out.status = cglcf->block_status;
    r->headers_out.status_line.len = 0;

    ngx_str_set(&r->headers_out.content_type, "text/plain");
    r->headers_out.content_type_len = sizeof("text/plain") - 1;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    r->headers_out.content_length_n = ctx->body.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_certguard_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t                 *b;
    ngx_uint_t                 last;
    ngx_chain_t               *cl, out;
    ngx_http_certguard_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_certguard_module);

    if (ctx == NULL || !ctx->replaced) {
        return ngx_http_next_body_filter(r, in);
    }

    /* swallow nginx's error page, send the short body instead */

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_buf || cl->buf->last_in_chain) {
            last = 1;
        }

        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (!last || ctx->body_sent) {
        return NGX_OK;
    }

    ctx->body_sent = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->memory = 1;
    b->pos = ctx->body.data;
    b->last = ctx->body.data + ctx->body.len;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


static ngx_int_t
ngx_http_certguard_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                    *p;
    size_t                     len;
    ngx_http_certguard_ctx_t  *ctx;

    ctx = ngx_http_certguard_restore(r);

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    if (ctx == NULL || !ctx->scored) {
        v->len = 0;
        v->data = (u_char *) "";
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_CERTGUARD_VAR_VERDICT:
        p = (u_char *) cg_verdict_name(ctx->result.verdict);
        len = ngx_strlen(p);
        break;

    case NGX_HTTP_CERTGUARD_VAR_SCORE:
        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        len = ngx_sprintf(p, "%d", ctx->result.score) - p;
        break;

    case NGX_HTTP_CERTGUARD_VAR_SIGNALS:
        len = CG_MAX_HITS * CG_ID_MAX;

        p = ngx_pnalloc(r->pool, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        (void) cg_format_signal_ids(&ctx->result, (char *) p, len);
        len = ngx_strlen(p);
        break;

    case NGX_HTTP_CERTGUARD_VAR_SHA256:
        p = (u_char *) ctx->result.sha256;
        len = ngx_strlen(p);
        break;

    case NGX_HTTP_CERTGUARD_VAR_SUBJECT:
        p = (u_char *) ctx->result.subject;
        len = ngx_strlen(p);
        break;

    case NGX_HTTP_CERTGUARD_VAR_ISSUER:
        p = (u_char *) ctx->result.issuer;
        len = ngx_strlen(p);
        break;

    case NGX_HTTP_CERTGUARD_VAR_CEF:
        if (ngx_http_certguard_format_cef(r, ctx) != NGX_OK) {
            return NGX_ERROR;
        }

        p = ctx->cef.data;
        len = ctx->cef.len;
        break;

    case NGX_HTTP_CERTGUARD_VAR_CACHE:
        p = ngx_http_certguard_sources[ctx->source].data;
        len = ngx_http_certguard_sources[ctx->source].len;
        break;

    default: /* NGX_HTTP_CERTGUARD_VAR_ACTION */
        p = (u_char *) ngx_http_certguard_action(ctx);
        len = ngx_strlen(p);
        break;
    }

    v->data = p;
    v->len = len;

    return NGX_OK;
}


/* Loads a file once per configuration cycle, whatever names it. */

static void *
ngx_http_certguard_load(ngx_conf_t *cf, ngx_uint_t kind, ngx_str_t *path,
    ngx_str_t *path2)
{
    int                              rc;
    u_char                          *p;
    void                            *obj;
    size_t                           len;
    ngx_str_t                        full, full2;
    ngx_uint_t                       i;
    cg_error_t                       err;
    ngx_pool_cleanup_t              *cln;
    ngx_http_certguard_file_t       *file;
    ngx_http_certguard_main_conf_t  *cgmcf;

    cgmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_certguard_module);

    full = *path;
    full2 = path2 ? *path2 : (ngx_str_t) ngx_null_string;

    if (full.len && ngx_conf_full_name(cf->cycle, &full, 1) != NGX_OK) {
        return NULL;
    }

    if (full2.len && ngx_conf_full_name(cf->cycle, &full2, 1) != NGX_OK) {
        return NULL;
    }

    /* NUL-terminated, and a key for the cache: "path\0path2" */

    len = full.len + 1 + full2.len + 1;

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, full.data, full.len);
    p[full.len] = '\0';
    ngx_memcpy(p + full.len + 1, full2.data, full2.len);
    p[len - 1] = '\0';

    file = cgmcf->files.elts;

    for (i = 0; i < cgmcf->files.nelts; i++) {
        if (file[i].kind == kind && file[i].key.len == len
            && ngx_memcmp(file[i].key.data, p, len) == 0)
        {
            return file[i].obj;
        }
    }

    ngx_memzero(&err, sizeof(cg_error_t));
    obj = NULL;

    switch (kind) {

    case NGX_HTTP_CERTGUARD_POLICY:
        rc = cg_policy_load((cg_policy_t **) &obj, (char *) p, &err);
        break;

    case NGX_HTTP_CERTGUARD_TRUST:
        rc = cg_trust_load((cg_trust_t **) &obj,
                           full.len ? (char *) p : NULL, &err);
        break;

    default: /* NGX_HTTP_CERTGUARD_GEOIP */
        rc = cg_geoip_open((cg_geoip_t **) &obj,
                           full.len ? (char *) p : NULL,
                           full2.len ? (char *) p + full.len + 1 : NULL,
                           &err);
        break;
    }

    if (rc != CG_OK) {
        if (err.file[0] && err.line) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "certguard: %s:%ud: %s",
                               err.file, err.line, err.msg);

        } else if (err.file[0]) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "certguard: %s: %s",
                               err.file, err.msg[0] ? err.msg
                                                    : cg_strerror(rc));

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "certguard: \"%s\": %s",
                               p, err.msg[0] ? err.msg : cg_strerror(rc));
        }

        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, sizeof(ngx_http_certguard_file_t));
    if (cln == NULL) {
        ngx_http_certguard_cleanup_file(&(ngx_http_certguard_file_t)
                                        { kind, { 0, NULL }, obj });
        return NULL;
    }

    file = cln->data;
    file->kind = kind;
    file->key.data = p;
    file->key.len = len;
    file->obj = obj;

    cln->handler = ngx_http_certguard_cleanup_file;

    file = ngx_array_push(&cgmcf->files);
    if (file == NULL) {
        return NULL;
    }

    *file = *(ngx_http_certguard_file_t *) cln->data;

    return obj;
}


static void
ngx_http_certguard_cleanup_file(void *data)
{
    ngx_http_certguard_file_t  *file = data;

    switch (file->kind) {

    case NGX_HTTP_CERTGUARD_POLICY:
        cg_policy_free(file->obj);
        break;

    case NGX_HTTP_CERTGUARD_TRUST:
        cg_trust_free(file->obj);
        break;

    default:
        cg_geoip_free(file->obj);
        break;
    }
}


static char *
ngx_http_certguard_policy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certguard_loc_conf_t  *cglcf = conf;

    ngx_str_t  *value;

    if (cglcf->policy != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    cglcf->policy = ngx_http_certguard_load(cf, NGX_HTTP_CERTGUARD_POLICY,
                                            &value[1], NULL);
    if (cglcf->policy == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_certguard_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certguard_loc_conf_t  *cglcf = conf;

    u_char                      *p;
    ssize_t                      size;
    ngx_str_t                   *value, name, s;
    ngx_uint_t                   i;
    ngx_shm_zone_t              *shm_zone;
    ngx_http_certguard_cache_t  *cache;

    if (cglcf->cache != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0 && cf->args->nelts == 2) {
        cglcf->cache = NULL;
        return NGX_CONF_OK;
    }

    name.len = 0;
    size = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            name.data = value[i].data + 5;

            p = (u_char *) ngx_strchr(name.data, ':');

            if (p == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            name.len = p - name.data;

            s.data = p + 1;
            s.len = value[i].data + value[i].len - s.data;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "valid=", 6) == 0) {

            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            cglcf->cache_valid = ngx_parse_time(&s, 1);

            if (cglcf->cache_valid == (time_t) NGX_ERROR
                || cglcf->cache_valid == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid valid time \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_certguard_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data == NULL) {
        cache = ngx_pcalloc(cf->pool, sizeof(ngx_http_certguard_cache_t));
        if (cache == NULL) {
            return NGX_CONF_ERROR;
        }

        shm_zone->init = ngx_http_certguard_init_zone;
        shm_zone->data = cache;
    }

    cglcf->cache = shm_zone;

    if (cglcf->cache_valid == NGX_CONF_UNSET) {
        cglcf->cache_valid = 600;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_certguard_log(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certguard_loc_conf_t  *cglcf = conf;

    ngx_str_t                 *value, s;
    ngx_http_certguard_log_t  *log;

    if (cglcf->log != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts != 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        cglcf->log = NULL;
        return NGX_CONF_OK;
    }

    log = ngx_pcalloc(cf->pool, sizeof(ngx_http_certguard_log_t));
    if (log == NULL) {
        return NGX_CONF_ERROR;
    }

    log->min_verdict = CG_ALLOW;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "min_verdict=", 12) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        s.data = value[2].data + 12;
        s.len = value[2].len - 12;

        if (s.len == 5 && ngx_strncmp(s.data, "allow", 5) == 0) {
            log->min_verdict = CG_ALLOW;

        } else if (s.len == 3 && ngx_strncmp(s.data, "tag", 3) == 0) {
            log->min_verdict = CG_TAG;

        } else if (s.len == 5 && ngx_strncmp(s.data, "block", 5) == 0) {
            log->min_verdict = CG_BLOCK;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_strncmp(value[1].data, "syslog:", 7) == 0) {

        log->syslog = ngx_pcalloc(cf->pool, sizeof(ngx_syslog_peer_t));
        if (log->syslog == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_syslog_process_conf(cf, log->syslog) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }

        cglcf->log = log;
        return NGX_CONF_OK;
    }

    log->file = ngx_conf_open_file(cf->cycle, &value[1]);
    if (log->file == NULL) {
        return NGX_CONF_ERROR;
    }

    cglcf->log = log;

    return NGX_CONF_OK;
}


static char *
ngx_http_certguard_block_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_certguard_loc_conf_t  *cglcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (cglcf->block_status != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);

    if (n < 400 || n > 599 || n == NGX_HTTP_BAD_GATEWAY) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid status \"%V\": 400-599 other than 502",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    cglcf->block_status = n;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_certguard_add_variables(ngx_conf_t *cf)
{
    Dl_info               info;
    ngx_http_variable_t  *var, *v;

    /* ex_data indexes are needed by merge_loc_conf, before postconfiguration */

    if (ngx_http_certguard_ssl_ctx_index == -1) {
        ngx_http_certguard_ssl_ctx_index = SSL_CTX_get_ex_new_index(0, NULL,
                                                                NULL, NULL,
                                                                NULL);
        ngx_http_certguard_ssl_index = SSL_get_ex_new_index(0, NULL, NULL,
                                                            NULL, NULL);
        ngx_http_certguard_session_index = SSL_SESSION_get_ex_new_index(0,
                                               NULL, NULL,
                                               ngx_http_certguard_session_dup,
                                               ngx_http_certguard_session_free);

        if (ngx_http_certguard_ssl_ctx_index == -1
            || ngx_http_certguard_ssl_index == -1
            || ngx_http_certguard_session_index == -1)
        {
            ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                          "certguard: ex_new_index() failed");
            return NGX_ERROR;
        }

        /*
         * OpenSSL keeps the session index's callbacks for the life of the
         * process and calls them for every session: the module must stay
         * mapped even if a reload drops its load_module
         */

        if (dladdr((void *) &ngx_http_certguard_module, &info) == 0
            || info.dli_fname == NULL
            || dlopen(info.dli_fname, RTLD_NOW|RTLD_NODELETE) == NULL)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "certguard: cannot pin the module: %s",
                               dlerror());
            return NGX_ERROR;
        }
    }

    for (v = ngx_http_certguard_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_certguard_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_certguard_main_conf_t  *cgmcf;

    cgmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_certguard_main_conf_t));
    if (cgmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&cgmcf->files, cf->pool, 4,
                       sizeof(ngx_http_certguard_file_t))
        != NGX_OK)
    {
        return NULL;
    }

    return cgmcf;
}


static void *
ngx_http_certguard_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_certguard_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_certguard_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->trusted_certificate = { 0, NULL };
     *     conf->geoip_country = { 0, NULL };
     *     conf->geoip_asn = { 0, NULL };
     *     conf->trust = NULL;
     *     conf->geoip = NULL;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->mode = NGX_CONF_UNSET_UINT;
    conf->policy = NGX_CONF_UNSET_PTR;
    conf->cache = NGX_CONF_UNSET_PTR;
    conf->cache_valid = NGX_CONF_UNSET;
    conf->block_status = NGX_CONF_UNSET_UINT;
    conf->log = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_certguard_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_certguard_loc_conf_t *prev = parent;
    ngx_http_certguard_loc_conf_t *conf = child;

    ngx_http_upstream_conf_t  *ucf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->mode, prev->mode,
                              NGX_HTTP_CERTGUARD_ENFORCE);
    ngx_conf_merge_ptr_value(conf->policy, prev->policy, NULL);
    ngx_conf_merge_str_value(conf->trusted_certificate,
                             prev->trusted_certificate, "");
    ngx_conf_merge_str_value(conf->geoip_country, prev->geoip_country, "");
    ngx_conf_merge_str_value(conf->geoip_asn, prev->geoip_asn, "");
    ngx_conf_merge_uint_value(conf->block_status, prev->block_status,
                              NGX_HTTP_FORBIDDEN);
    ngx_conf_merge_ptr_value(conf->log, prev->log, NULL);

    if (conf->cache == NGX_CONF_UNSET_PTR) {
        conf->cache = prev->cache;
        conf->cache_valid = prev->cache_valid;
    }

    if (conf->cache == NGX_CONF_UNSET_PTR) {
        conf->cache = NULL;
    }

    if (conf->cache_valid == NGX_CONF_UNSET) {
        conf->cache_valid = 600;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    if (conf->policy == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"certguard\" is on but no \"certguard_policy\" "
                           "is set");
        return NGX_CONF_ERROR;
    }

    conf->trust = ngx_http_certguard_load(cf, NGX_HTTP_CERTGUARD_TRUST,
                                          &conf->trusted_certificate, NULL);
    if (conf->trust == NULL) {
        return NGX_CONF_ERROR;
    }

    if (conf->geoip_country.len || conf->geoip_asn.len) {
        conf->geoip = ngx_http_certguard_load(cf, NGX_HTTP_CERTGUARD_GEOIP,
                                              &conf->geoip_country,
                                              &conf->geoip_asn);
        if (conf->geoip == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    /*
     * the proxy module merged this location before (module order), and its
     * location conf begins with ngx_http_upstream_conf_t
     */

    ucf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_proxy_module);

    if (ucf->ssl && ucf->ssl->ctx) {
        if (ngx_http_certguard_install(cf, ucf->ssl) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_certguard_install(ngx_conf_t *cf, ngx_ssl_t *ssl)
{
    ngx_http_certguard_ssl_t  *cgs;

    if (SSL_CTX_get_ex_data(ssl->ctx, ngx_http_certguard_ssl_ctx_index)
        != NULL)
    {
        return NGX_OK;
    }

    cgs = ngx_pcalloc(cf->pool, sizeof(ngx_http_certguard_ssl_t));
    if (cgs == NULL) {
        return NGX_ERROR;
    }

    cgs->info_callback = SSL_CTX_get_info_callback(ssl->ctx);
    cgs->verify_none = (SSL_CTX_get_verify_mode(ssl->ctx) == SSL_VERIFY_NONE);

    if (SSL_CTX_set_ex_data(ssl->ctx, ngx_http_certguard_ssl_ctx_index, cgs)
        == 0)
    {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      "SSL_CTX_set_ex_data() failed");
        return NGX_ERROR;
    }

    /* to abort a handshake OpenSSL needs SSL_VERIFY_PEER */

    if (cgs->verify_none) {
        SSL_CTX_set_verify(ssl->ctx, SSL_VERIFY_PEER,
                           ngx_http_certguard_verify_pass);
    }

    SSL_CTX_set_cert_verify_callback(ssl->ctx, ngx_http_certguard_verify,
                                     NULL);
    SSL_CTX_set_info_callback(ssl->ctx, ngx_http_certguard_info_callback);

    return NGX_OK;
}


static ngx_int_t
ngx_http_certguard_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_certguard_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_certguard_body_filter;

    return NGX_OK;
}
