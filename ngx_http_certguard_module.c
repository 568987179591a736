/*
 * ngx_http_certguard_module: scores the certificate of every upstream that
 * the proxy module connects to over TLS, inside the handshake, with the
 * certguard engine (src/engine/certguard.h), and blocks, tags or allows it.
 *
 * The hook is an OpenSSL certificate verification callback installed on the
 * proxy module's per-location SSL_CTX: it runs X509_verify_cert itself, so
 * nginx's own verification (proxy_ssl_verify) is unchanged, then asks the
 * engine.  A block aborts the handshake before a byte of the request leaves,
 * and is turned into certguard_block_status instead of a 502.
 *
 * The verdict cache, the CEF log, loading the engine's files and the values
 * of the variables are src/nginx/ngx_certguard_*.c, as in the stream module.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <dlfcn.h>

#include "ngx_certguard_conf.h"
#include "ngx_certguard_capture.h"
#include "ngx_http_certguard_forward.h"
#include "ngx_certguard_metrics.h"
#include "ngx_certguard_memory.h"
#include "ngx_certguard_memo.h"
#include "ngx_http_certguard_module.h"




static int ngx_http_certguard_verify(X509_STORE_CTX *xs, void *arg);
static int ngx_http_certguard_verify_pass(int ok, X509_STORE_CTX *xs);
static void ngx_http_certguard_info_callback(const SSL *ssl, int where,
    int ret);
static cg_verdict_t ngx_http_certguard_score(ngx_http_request_t *r,
    ngx_connection_t *c, SSL *ssl, X509 *leaf, STACK_OF(X509) *chain,
    ngx_http_certguard_loc_conf_t *cglcf);
static void ngx_http_certguard_keep(ngx_http_request_t *r, SSL *ssl,
    ngx_connection_t *c, ngx_http_certguard_loc_conf_t *cglcf,
    cg_result_t *res);
static void ngx_http_certguard_free_blocked_peer(ngx_peer_connection_t *pc,
    void *data, ngx_uint_t state);
static void ngx_http_certguard_log_result(ngx_http_request_t *r,
    ngx_http_certguard_ctx_t *ctx, ngx_http_certguard_loc_conf_t *cglcf);
static ngx_http_certguard_ctx_t *ngx_http_certguard_get_ctx(
    ngx_http_request_t *r);
static ngx_http_certguard_ctx_t *ngx_http_certguard_restore(
    ngx_http_request_t *r);

static ngx_int_t ngx_http_certguard_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_certguard_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);

static ngx_int_t ngx_http_certguard_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_certguard_variable_id(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static char *ngx_http_certguard_block_status(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_certguard_memory(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void *ngx_http_certguard_create_main_conf(ngx_conf_t *cf);
static ngx_int_t ngx_http_certguard_init_process(ngx_cycle_t *cycle);
static void ngx_http_certguard_exit_process(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_certguard_add_variables(ngx_conf_t *cf);
static void *ngx_http_certguard_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_certguard_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_certguard_install(ngx_conf_t *cf, ngx_ssl_t *ssl);
static ngx_int_t ngx_http_certguard_init(ngx_conf_t *cf);


extern ngx_module_t  ngx_http_proxy_module;

static int  ngx_http_certguard_ssl_ctx_index = -1;
static int  ngx_http_certguard_ssl_index = -1;
static int  ngx_http_certguard_session_index = -1;


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

    NGX_CERTGUARD_CONF_COMMANDS(NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF
                                |NGX_HTTP_LOC_CONF,
                                NGX_HTTP_LOC_CONF_OFFSET,
                                ngx_http_certguard_loc_conf_t,
                                &ngx_http_certguard_module),

    { ngx_string("certguard_capture"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_certguard_capture_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_certguard_loc_conf_t, capture),
      NULL },

    { ngx_string("certguard_block_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_certguard_block_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_memory"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_certguard_memory,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_verify_memo"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_certguard_memo_set,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_certguard_main_conf_t, verify_memo),
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
    ngx_http_certguard_init_process,        /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    ngx_http_certguard_exit_process,        /* exit process */
    NULL,                                   /* exit master */
    NGX_MODULE_V1_PADDING
};


/* the others are ngx_certguard_var_e, shared with the stream module */
#define NGX_HTTP_CERTGUARD_VAR_CACHE     (NGX_CERTGUARD_VAR_CEF + 1)
#define NGX_HTTP_CERTGUARD_VAR_ACTION    (NGX_CERTGUARD_VAR_CEF + 2)


static ngx_http_variable_t  ngx_http_certguard_vars[] = {

    { ngx_string("certguard_verdict"), NULL, ngx_http_certguard_variable,
      NGX_CERTGUARD_VAR_VERDICT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_score"), NULL, ngx_http_certguard_variable,
      NGX_CERTGUARD_VAR_SCORE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_signals"), NULL, ngx_http_certguard_variable,
      NGX_CERTGUARD_VAR_SIGNALS, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cert_sha256"), NULL, ngx_http_certguard_variable,
      NGX_CERTGUARD_VAR_SHA256, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cert_subject"), NULL, ngx_http_certguard_variable,
      NGX_CERTGUARD_VAR_SUBJECT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cert_issuer"), NULL, ngx_http_certguard_variable,
      NGX_CERTGUARD_VAR_ISSUER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cef"), NULL, ngx_http_certguard_variable,
      NGX_CERTGUARD_VAR_CEF, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cache"), NULL, ngx_http_certguard_variable,
      NGX_HTTP_CERTGUARD_VAR_CACHE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_action"), NULL, ngx_http_certguard_variable,
      NGX_HTTP_CERTGUARD_VAR_ACTION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_id"), NULL, ngx_http_certguard_variable_id,
      0, 0, 0 },

      ngx_http_null_variable
};


static void (*ngx_http_certguard_info_next)(const SSL *ssl, int where,
    int ret);
static ngx_uint_t  ngx_http_certguard_info_set;
static ngx_uint_t  ngx_http_certguard_info_mixed;

static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


/*
 * Replaces X509_verify_cert for the whole handshake of a certguard SSL_CTX.
 * Stock verification runs first where nginx reads its result, and that
 * result is returned unchanged unless certguard blocks, so proxy_ssl_verify
 * keeps its exact semantics.
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

    c = (ssl != NULL) ? ngx_ssl_get_connection(ssl) : NULL;
    r = (c != NULL) ? c->data : NULL;

    if (r == NULL || r->upstream == NULL) {
        return X509_verify_cert(xs);
    }

    cgs = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
                              ngx_http_certguard_ssl_ctx_index);

    /*
     * nginx reads the stock result only with proxy_ssl_verify on (after
     * the handshake, from SSL_get_verify_result()); otherwise the stock
     * verification would check every signature of the chain for nothing,
     * as certguard's accept-all verify callback lets it run to the end
     */

    ok = r->upstream->conf->ssl_verify ? ngx_certguard_memo_verify_cert(xs)
                                       : 1;

    /*
     * with SSL_VERIFY_NONE, which nginx leaves on upstream contexts,
     * OpenSSL ignores this return value; certguard had to set
     * SSL_VERIFY_PEER to be able to abort, so it reports success for
     * nginx's part
     */

    stock = (cgs != NULL && cgs->verify_none) ? 1 : ok;

    /* the stock verification itself failed (no memory): fail closed */

    if (ok < 0) {
        return ok;
    }

    cglcf = ngx_http_get_module_loc_conf(r, ngx_http_certguard_module);

    if (!cglcf->enable || cglcf->common.policy == NULL) {
        return stock;
    }

    if (ngx_http_certguard_score(r, c, ssl, X509_STORE_CTX_get0_cert(xs),
                                 X509_STORE_CTX_get0_untrusted(xs), cglcf)
        == CG_BLOCK
        && cglcf->common.mode == NGX_CERTGUARD_ENFORCE)
    {
        X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);

        /*
         * nginx logs a failed handshake at "crit" unless the first error
         * queued is one it knows to be the peer's doing; a block is
         * certguard's decision, already logged above with its reason
         */
        ERR_raise(ERR_LIB_SSL, SSL_R_CALLBACK_FAILED);

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

    /* about twenty calls a handshake: the callback every context had is
     * called without looking up the context's state */

    if (!ngx_http_certguard_info_mixed) {
        if (ngx_http_certguard_info_next) {
            ngx_http_certguard_info_next(ssl, where, ret);
        }

    } else {
        cgs = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl),
                                  ngx_http_certguard_ssl_ctx_index);

        if (cgs != NULL && cgs->info_callback) {
            cgs->info_callback(ssl, where, ret);
        }
    }

    /* most calls are the handshake's steps, which nothing below needs */

    if (!(where & (SSL_CB_ALERT|SSL_CB_HANDSHAKE_START|SSL_CB_HANDSHAKE_DONE))
        || SSL_is_server(ssl))
    {
        return;
    }

    /* a TLS 1.2 verdict still waiting for the staple: the handshake ended
     * without the status callback */

    if (((where & SSL_CB_ALERT) && (ret >> 8) == SSL3_AL_FATAL)
        || (where & SSL_CB_HANDSHAKE_DONE))
    {
        (void) ngx_http_certguard_settle((SSL *) ssl, 0);
    }

    if (!(where & (SSL_CB_HANDSHAKE_START|SSL_CB_HANDSHAKE_DONE))) {
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

    if (!cglcf->enable || cglcf->common.policy == NULL) {
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
                          cg_action_name(ctx->result.verdict, ctx->monitor),
                          ctx->result.name,
                          ctx->result.score);

            ngx_http_certguard_log_result(r, ctx, cglcf);
        }

        return;
    }

    /*
     * a renegotiation the server asked for (TLS 1.2): the connection keeps
     * its session, which must not be taken away in the middle of it (the
     * handshake fails with an OpenSSL internal error); a certificate it
     * brings goes through the verify callback as any other
     */

    if (c->ssl && c->ssl->handshaked) {
        return;
    }

    /* SSL_CB_HANDSHAKE_START: a new handshake, a new verdict */

    ctx = ngx_http_get_module_ctx(r, ngx_http_certguard_module);

    if (ctx != NULL) {
        ctx->scored = 0;
        ctx->blocked = 0;
        ctx->pending = 0;
    }

    sess = SSL_get_session(ssl);
    if (sess == NULL) {
        return;
    }

    rec = SSL_SESSION_get_ex_data(sess, ngx_http_certguard_session_index);

    /* a "would-block" of monitor mode must not pass an enforcing location */

    if (rec != NULL
        && rec->policy == cglcf->common.policy
        && rec->trust == cglcf->common.trust
        && rec->geoip == cglcf->common.geoip
        && rec->crls == cglcf->common.crls
        && rec->intermediates == cglcf->common.intermediates
        && (rec->result.verdict != CG_BLOCK
            || cglcf->common.mode == NGX_CERTGUARD_MONITOR)
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


/* The engine's input for the chain the upstream sent; ctx->dst takes the
 * destination's address, name (CG_NAME_MAX) the name checked. */

ngx_int_t
ngx_http_certguard_input(ngx_http_request_t *r, ngx_http_certguard_ctx_t *ctx,
    ngx_http_certguard_loc_conf_t *cglcf, X509 *leaf, STACK_OF(X509) *chain,
    u_char *name, cg_input_t *in)
{
    size_t                           n;
    ngx_http_upstream_t             *u;
    ngx_http_certguard_main_conf_t  *cgmcf;

    u = r->upstream;

    if (ngx_http_certguard_name(r, u, name, CG_NAME_MAX) != NGX_OK) {
        name[0] = '\0';
    }

    ctx->dst[0] = '\0';

    if (u->peer.sockaddr) {
        n = ngx_sock_ntop(u->peer.sockaddr, u->peer.socklen, ctx->dst,
                          NGX_SOCKADDR_STRLEN, 0);
        ctx->dst[n] = '\0';
    }

    if (cg_input_handshake(in, cglcf->common.policy, cglcf->common.trust,
                           cglcf->common.geoip, leaf, chain,
                           (const char *) name, (const char *) ctx->dst,
                           u->peer.sockaddr
                           ? ngx_inet_get_port(u->peer.sockaddr) : 0,
                           ngx_time())
        != CG_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "certguard: no certificate to score from \"%s\"",
                      name);
        return NGX_ERROR;
    }

    /* the memory is only read here; a miss queues its sighting later */

    cgmcf = ngx_http_get_module_main_conf(r, ngx_http_certguard_module);

    in->crls = cglcf->common.crls;
    in->memory = ngx_certguard_memory_handle(cgmcf->memory);
    in->intermediates = cglcf->common.intermediates;
    in->verify_memo = ngx_certguard_memo();
    in->certs = ngx_certguard_certs();

    return NGX_OK;
}


static cg_verdict_t
ngx_http_certguard_score(ngx_http_request_t *r, ngx_connection_t *c,
    SSL *ssl, X509 *leaf, STACK_OF(X509) *chain,
    ngx_http_certguard_loc_conf_t *cglcf)
{
    int                         rc, done;
    u_char                     *p, *last;
    u_char                      name[CG_NAME_MAX];
    u_char                      md[EVP_MAX_MD_SIZE], spki[32];
    ngx_str_t                   key;
    cg_input_t                  in;
    ngx_uint_t                  cached, fresh;
    cg_result_t                *res;
    ngx_http_certguard_ctx_t   *ctx;

    /* nothing to record the verdict in, or nothing to score: fail closed */

    ctx = ngx_http_certguard_get_ctx(r);
    if (ctx == NULL) {
        return CG_BLOCK;
    }

    res = &ctx->result;
    ctx->scored = 0;
    ctx->blocked = 0;
    ctx->evented = 0;
    ctx->pending = 0;
    ctx->key_len = 0;
    ctx->monitor = (cglcf->common.mode == NGX_CERTGUARD_MONITOR);
    ctx->source = cglcf->common.cache.shm_zone ? NGX_HTTP_CERTGUARD_MISS
                                        : NGX_HTTP_CERTGUARD_BYPASS;

    if (ngx_http_certguard_input(r, ctx, cglcf, leaf, chain, name, &in)
        != NGX_OK)
    {
        return CG_BLOCK;
    }

    /*
     * The stapled OCSP response: over TLS 1.3 it came with the
     * certificate, before this callback; over TLS 1.2 the CertificateStatus
     * message comes after it, and ngx_http_certguard_status() takes it.
     */

    if (SSL_version(ssl) >= TLS1_3_VERSION) {
        in.ocsp_len = ngx_http_certguard_staple(ssl, &in.ocsp);
    }

    cached = 0;
    fresh = 0;
    key.len = 0;

    if (cglcf->common.cache.shm_zone
        && ((done = cg_cert_digests(in.leaf, md, spki)) & CG_DIGEST_CERT))
    {
        /* leaf SHA-256, the objects it is scored with, name, destination */

        p = ctx->key;
        last = ctx->key + sizeof(ctx->key);

        p = ngx_cpymem(p, md, 32);
        p = ngx_cpymem(p, &in.policy, sizeof(void *));
        p = ngx_cpymem(p, &in.trust, sizeof(void *));
        p = ngx_cpymem(p, &in.geoip, sizeof(void *));
        p = ngx_cpymem(p, &in.crls, sizeof(void *));
        p = ngx_cpymem(p, &in.intermediates, sizeof(void *));
        p = ngx_slprintf(p, last, "%s%Z%s:%ui", name, ctx->dst,
                         (ngx_uint_t) in.dst_port);

        key.data = ctx->key;
        key.len = p - ctx->key;
        ctx->key_len = key.len;

        /* the facts take the leaf's digest from the key, and its key's
         * from the same encoding */
        in.leaf_sha256 = md;
        in.leaf_spki_sha256 = (done & CG_DIGEST_SPKI) ? spki : NULL;

        cached = (ngx_certguard_cache_get(&cglcf->common.cache, &key, res)
                  == NGX_OK);

        ngx_certguard_metrics_cache(cached);
    }

    if (cached) {
        ctx->source = NGX_HTTP_CERTGUARD_HIT;

    } else {
        rc = cg_evaluate(&in, res);
        ngx_certguard_certs_account();

        if (rc == CG_OK) {
            fresh = 1;

        } else {

            /* fail closed: a certificate the engine cannot read is a
             * signal */

            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "certguard: engine could not score the "
                          "certificate of \"%s\"", name);

            (void) cg_result_failure(res, CG_FAILURE_ENGINE, CG_BLOCK,
                                     (const char *) name, NULL);
        }
    }

    ctx->scored = 1;
    ctx->dst_port = (in_port_t) in.dst_port;

    /* the ServerHello is in: version and cipher are the negotiated ones */

    ngx_http_certguard_tls(ctx, ssl);

    /*
     * TLS 1.2: a verdict the staple may still change waits for it (the
     * status callback comes with the ServerHelloDone, before a byte of the
     * request), to be logged, cached and kept once; a block cannot get
     * better, and a cached verdict is reused as it is, as over TLS 1.3
     */

    if (fresh && res->verdict != CG_BLOCK
        && SSL_version(ssl) < TLS1_3_VERSION
        && SSL_get_tlsext_status_type(ssl) == TLSEXT_STATUSTYPE_ocsp)
    {
        ctx->pending = 1;
        return res->verdict;
    }

    ngx_http_certguard_decide(r, c, ssl, cglcf, ctx, &in, fresh);

    return res->verdict;
}


/*
 * The verdict in ctx is final: record the sighting and cache it (fresh:
 * the engine's own, just made), log it, and keep it with the connection.
 */

void
ngx_http_certguard_decide(ngx_http_request_t *r, ngx_connection_t *c,
    SSL *ssl, ngx_http_certguard_loc_conf_t *cglcf,
    ngx_http_certguard_ctx_t *ctx, cg_input_t *in, ngx_uint_t fresh)
{
    u_char                           tail[32];
    ngx_str_t                        key;
    cg_result_t                     *res;
    ngx_http_upstream_t             *u;
    ngx_http_certguard_main_conf_t  *cgmcf;

    u = r->upstream;
    res = &ctx->result;
    ctx->pending = 0;

    if (fresh) {
        cgmcf = ngx_http_get_module_main_conf(r, ngx_http_certguard_module);
        ngx_certguard_memory_queue(cgmcf->memory, in, res);

        if (ctx->key_len) {
            key.data = ctx->key;
            key.len = ctx->key_len;
            (void) ngx_certguard_cache_put(&cglcf->common.cache, &key, res);
        }
    }

    if (ctx->source != NGX_HTTP_CERTGUARD_HIT) {
        ngx_certguard_capture_post(&cglcf->capture, c->log, in->leaf,
                                   in->chain, res, (const char *) ctx->dst,
                                   in->dst_port, NULL);
    }

    if (res->verdict == CG_BLOCK && cglcf->common.mode == NGX_CERTGUARD_ENFORCE)
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

    (void) ngx_snprintf(tail, sizeof(tail) - 1, ", cache %V%Z",
                        &ngx_http_certguard_sources[ctx->source]);

    ngx_certguard_log_verdict(r->connection->log, res, ctx->monitor,
                              (const char *) ctx->dst, (const char *) tail);

    ngx_http_certguard_log_result(r, ctx, cglcf);

    if (!ctx->blocked) {
        ngx_http_certguard_keep(r, ssl, c, cglcf, res);
    }
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
    ngx_http_certguard_record_t  *rec, *old;

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

    rec->policy = cglcf->common.policy;
    rec->trust = cglcf->common.trust;
    rec->geoip = cglcf->common.geoip;
    rec->crls = cglcf->common.crls;
    rec->intermediates = cglcf->common.intermediates;
    ngx_memcpy(&rec->result, res, sizeof(cg_result_t));

    /* nginx neither saves nor resumes the session with
     * proxy_ssl_session_reuse off: a copy with it would never be read */

    if (!r->upstream->conf->ssl_session_reuse) {
        return;
    }

    sess = SSL_get_session(ssl);
    if (sess == NULL) {
        return;
    }

    rec = ngx_alloc(sizeof(ngx_http_certguard_record_t), r->connection->log);
    if (rec == NULL) {
        return;
    }

    rec->policy = cglcf->common.policy;
    rec->trust = cglcf->common.trust;
    rec->geoip = cglcf->common.geoip;
    rec->crls = cglcf->common.crls;
    rec->intermediates = cglcf->common.intermediates;
    ngx_memcpy(&rec->result, res, sizeof(cg_result_t));

    /*
     * SSL_SESSION_set_ex_data() does not free what it replaces: a second
     * verdict on the same session (a renegotiation) would leak the first
     */

    old = SSL_SESSION_get_ex_data(sess, ngx_http_certguard_session_index);

    if (SSL_SESSION_set_ex_data(sess, ngx_http_certguard_session_index, rec)
        == 0)
    {
        ngx_free(rec);
        return;
    }

    if (old != NULL) {
        ngx_free(old);
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


/* One CEF record per scored handshake, as access_log writes its lines. */

static void
ngx_http_certguard_log_result(ngx_http_request_t *r,
    ngx_http_certguard_ctx_t *ctx, ngx_http_certguard_loc_conf_t *cglcf)
{
    cg_event_t  *ev;

    /* one record a verdict: the counters count what the records say */

    ngx_certguard_metrics_verdict(&ctx->result);

    if (cglcf->common.log == NULL) {
        return;
    }

    ev = ngx_http_certguard_event(r, ctx);
    if (ev == NULL) {
        return;
    }

    ngx_certguard_log_write(cglcf->common.log, r->connection->log,
                            &ctx->result, ev);
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

    if (!cglcf->enable || cglcf->common.policy == NULL) {
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
        || rec->policy != cglcf->common.policy
        || rec->trust != cglcf->common.trust
        || rec->geoip != cglcf->common.geoip
        || rec->crls != cglcf->common.crls
        || rec->intermediates != cglcf->common.intermediates)
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

    ctx->monitor = (rec->result.verdict == CG_BLOCK
                    || cglcf->common.mode == NGX_CERTGUARD_MONITOR);
    ctx->evented = 0;
    ctx->dst[0] = '\0';
    ctx->dst_port = 0;

    if (u->peer.sockaddr) {
        n = ngx_sock_ntop(u->peer.sockaddr, u->peer.socklen, ctx->dst,
                          NGX_SOCKADDR_STRLEN, 0);
        ctx->dst[n] = '\0';
        ctx->dst_port = ngx_inet_get_port(u->peer.sockaddr);
    }

    ngx_http_certguard_tls(ctx, ssl);

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
    ngx_int_t                  rc;
    cg_event_t                *ev;
    ngx_http_certguard_ctx_t  *ctx;

    ctx = ngx_http_certguard_restore(r);

    if (ctx == NULL || !ctx->scored) {
        rc = ngx_certguard_variable(r->pool, NULL, NULL, 0, v);
        v->no_cacheable = 1;
        return rc;
    }

    switch (data) {

    case NGX_HTTP_CERTGUARD_VAR_CACHE:
        v->data = ngx_http_certguard_sources[ctx->source].data;
        v->len = ngx_http_certguard_sources[ctx->source].len;
        break;

    case NGX_HTTP_CERTGUARD_VAR_ACTION:
        v->data = (u_char *) cg_action_name(ctx->result.verdict,
                                            ctx->monitor);
        v->len = ngx_strlen(v->data);
        break;

    default:
        ev = NULL;

        if (data == NGX_CERTGUARD_VAR_CEF) {
            ev = ngx_http_certguard_event(r, ctx);
            if (ev == NULL) {
                return NGX_ERROR;
            }
        }

        rc = ngx_certguard_variable(r->pool, &ctx->result, ev,
                                    (ngx_certguard_var_e) data, v);
        v->no_cacheable = 1;
        return rc;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* $certguard_id: also for requests certguard did not score, so that an
 * access log line and the CEF records of its connection can be joined. */

static ngx_int_t
ngx_http_certguard_variable_id(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, 17);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_certguard_conn_id(r->connection, p);

    v->data = p;
    v->len = 16;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
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


static char *
ngx_http_certguard_memory(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_certguard_main_conf_t  *cgmcf = conf;

    if (cgmcf->memory) {
        return "is duplicate";
    }

    return ngx_certguard_memory_conf(cf, &cgmcf->memory);
}


static void *
ngx_http_certguard_create_main_conf(ngx_conf_t *cf)
{
    /*
     * set by ngx_pcalloc():
     *
     *     cgmcf->memory = NULL;
     */

    return ngx_pcalloc(cf->pool, sizeof(ngx_http_certguard_main_conf_t));
}


/* The memory is opened by each worker: an LMDB handle must not cross a
 * fork. */

static ngx_int_t
ngx_http_certguard_init_process(ngx_cycle_t *cycle)
{
    (void) ngx_certguard_memo_init_process(cycle, "http");

    return ngx_certguard_memory_init_process(cycle);
}


static void
ngx_http_certguard_exit_process(ngx_cycle_t *cycle)
{
    ngx_certguard_memory_exit_process(cycle);
    ngx_certguard_certs_exit_process();
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
ngx_http_certguard_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_certguard_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_certguard_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    ngx_certguard_conf_init(&conf->common);

    conf->enable = NGX_CONF_UNSET;
    conf->block_status = NGX_CONF_UNSET_UINT;
    ngx_certguard_capture_init(&conf->capture);

    return conf;
}


static char *
ngx_http_certguard_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_certguard_loc_conf_t *prev = parent;
    ngx_http_certguard_loc_conf_t *conf = child;

    ngx_http_upstream_conf_t  *ucf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->block_status, prev->block_status,
                              NGX_HTTP_FORBIDDEN);
    ngx_certguard_capture_merge(&prev->capture, &conf->capture);

    if (ngx_certguard_conf_merge(cf, &prev->common, &conf->common,
                                 conf->enable, "certguard")
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (!conf->enable) {
        return NGX_CONF_OK;
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

    /* nginx gives every context its own one callback; any other mix is
     * looked up per context (the flag stays for the process's life) */

    if (!ngx_http_certguard_info_set) {
        ngx_http_certguard_info_set = 1;
        ngx_http_certguard_info_next = cgs->info_callback;

    } else if (cgs->info_callback != ngx_http_certguard_info_next) {
        ngx_http_certguard_info_mixed = 1;
    }

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

    /* every upstream SSL made from this context asks for a stapled OCSP
     * response (SSL_new() takes the status type from its context) */

    SSL_CTX_set_tlsext_status_type(ssl->ctx, TLSEXT_STATUSTYPE_ocsp);
    SSL_CTX_set_tlsext_status_cb(ssl->ctx, ngx_http_certguard_ocsp_status);
    SSL_CTX_set_info_callback(ssl->ctx, ngx_http_certguard_info_callback);

    return NGX_OK;
}


static ngx_int_t
ngx_http_certguard_init(ngx_conf_t *cf)
{
    ngx_http_certguard_main_conf_t  *cgmcf;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_certguard_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_certguard_body_filter;

    cgmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_certguard_module);

    return ngx_certguard_memo_conf(cf, &cgmcf->verify_memo, "http");
}
