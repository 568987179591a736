/*
 * certguard's probe: connect, TLS handshake with the client's SNI, capture
 * the chain, score it, put the verdict in the cache, tell the waiters.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include "ngx_certguard_probe.h"
#include "ngx_certguard_memo.h"
#include "ngx_certguard_metrics.h"


struct ngx_certguard_probe_s {
    ngx_queue_t                      queue;       /* in params->probes */
    ngx_queue_t                      waiters;     /* waiters' queue */
    ngx_pool_t                      *pool;
    ngx_log_t                        log;
    ngx_str_t                        key;
    ngx_str_t                        name;        /* NUL-terminated */
    ngx_str_t                        addr_text;   /* address:port */
    u_char                           addr_only[NGX_SOCKADDR_STRLEN];
    in_port_t                        port;
    ngx_peer_connection_t            peer;
    ngx_event_t                      timeout;
    ngx_event_t                      poll;        /* another worker probes */
    ngx_msec_t                       deadline;
    ngx_msec_t                       started;     /* for the histogram */
    ngx_msec_t                       probe_timeout;
    ngx_ssl_t                       *ssl;
    const cg_policy_t               *policy;
    const cg_trust_t                *trust;
    const cg_geoip_t                *geoip;
    ngx_certguard_memory_t          *memory;
    ngx_certguard_capture_t         *capture;
    ngx_certguard_cache_t           *cache;
    unsigned                         claimed:1;   /* holds the zone's claim */

    X509                            *leaf;        /* captured in the
                                                     handshake */
    STACK_OF(X509)                  *chain;
};


static ngx_certguard_probe_t *ngx_certguard_probe_create(
    ngx_certguard_probe_params_t *params);
static void ngx_certguard_probe_connect(ngx_certguard_probe_t *probe);
static void ngx_certguard_probe_poll(ngx_event_t *ev);
static void ngx_certguard_probe_connected(ngx_event_t *ev);
static void ngx_certguard_probe_handshaked(ngx_connection_t *c);
static void ngx_certguard_probe_timeout(ngx_event_t *ev);
static void ngx_certguard_probe_finish(ngx_certguard_probe_t *probe,
    const char *failure);
static void ngx_certguard_probe_notify(ngx_certguard_probe_t *probe,
    cg_result_t *res, const char *failure);
static int ngx_certguard_probe_verify(X509_STORE_CTX *x509, void *arg);
static u_char *ngx_certguard_probe_log_error(ngx_log_t *log, u_char *buf,
    size_t len);


ngx_ssl_t *
ngx_certguard_probe_ssl(ngx_conf_t *cf)
{
    ngx_ssl_t           *ssl;
    ngx_pool_cleanup_t  *cln;

    ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (ssl == NULL) {
        return NULL;
    }

    ssl->log = cf->log;

    if (ngx_ssl_create(ssl, NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL) != NGX_OK) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(ssl);
        return NULL;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = ssl;

    SSL_CTX_set_verify(ssl->ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_cert_verify_callback(ssl->ctx, ngx_certguard_probe_verify,
                                     NULL);

    return ssl;
}


/*
 * A probe belongs to no caller (callers may come and go while it runs), so
 * it has its own pool and log, and the caller's list finds it by key.
 */

ngx_int_t
ngx_certguard_probe_start(ngx_certguard_probe_params_t *params,
    ngx_certguard_probe_waiter_t *w)
{
    ngx_int_t               rc;
    ngx_queue_t            *q;
    ngx_certguard_probe_t  *probe;

    for (q = ngx_queue_head(params->probes);
         q != ngx_queue_sentinel(params->probes);
         q = ngx_queue_next(q))
    {
        probe = ngx_queue_data(q, ngx_certguard_probe_t, queue);

        if (probe->key.len == params->key.len
            && ngx_memcmp(probe->key.data, params->key.data, params->key.len)
               == 0)
        {
            ngx_log_debug1(NGX_LOG_DEBUG_STREAM, params->log, 0,
                           "certguard: waiting on the probe of %V",
                           &probe->addr_text);

            w->probe = probe;
            ngx_queue_insert_tail(&probe->waiters, &w->queue);
            return NGX_OK;
        }
    }

    probe = ngx_certguard_probe_create(params);
    if (probe == NULL) {
        return NGX_ERROR;
    }

    ngx_queue_insert_tail(params->probes, &probe->queue);

    w->probe = probe;
    ngx_queue_insert_tail(&probe->waiters, &w->queue);

    /*
     * Workers share probes through the zone: the first claims the key, the
     * others poll the zone until its result is there (or the claim is gone,
     * after a failure: then they probe themselves).
     */

    probe->deadline = ngx_current_msec + 2 * probe->probe_timeout + 1000;
    probe->started = ngx_current_msec;

    rc = ngx_certguard_cache_claim(probe->cache, &probe->key,
                                   probe->probe_timeout / 1000 + 2);

    if (rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                       "certguard: another worker probes %V",
                       &probe->addr_text);

        ngx_add_timer(&probe->poll, rc == NGX_BUSY ? 20 : 1);
        return NGX_OK;
    }

    probe->claimed = (probe->cache->shm_zone != NULL);

    ngx_log_debug2(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                   "certguard: probe of %V starts%s", &probe->addr_text,
                   probe->claimed ? ", the zone's claim held" : "");

    ngx_certguard_probe_connect(probe);

    return NGX_OK;
}


void
ngx_certguard_probe_cancel(ngx_certguard_probe_waiter_t *w)
{
    if (w->probe == NULL) {
        return;
    }

    ngx_queue_remove(&w->queue);
    w->probe = NULL;
}


static ngx_certguard_probe_t *
ngx_certguard_probe_create(ngx_certguard_probe_params_t *params)
{
    size_t                  len;
    ngx_pool_t             *pool;
    ngx_certguard_probe_t  *probe;

    pool = ngx_create_pool(2048, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    probe = ngx_pcalloc(pool, sizeof(ngx_certguard_probe_t));
    if (probe == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    probe->pool = pool;
    probe->ssl = params->ssl;
    probe->probe_timeout = params->timeout;
    probe->policy = params->policy;
    probe->trust = params->trust;
    probe->geoip = params->geoip;
    probe->memory = params->memory;
    probe->capture = params->capture;
    probe->cache = params->cache;
    probe->port = ngx_inet_get_port(params->sockaddr);

    probe->key.data = ngx_pstrdup(pool, &params->key);
    probe->key.len = params->key.len;
    probe->name.data = ngx_pnalloc(pool, params->name.len + 1);
    probe->addr_text.data = ngx_pnalloc(pool, NGX_SOCKADDR_STRLEN);
    probe->peer.sockaddr = ngx_palloc(pool, params->socklen);

    if (probe->key.data == NULL || probe->name.data == NULL
        || probe->addr_text.data == NULL || probe->peer.sockaddr == NULL)
    {
        ngx_destroy_pool(pool);
        return NULL;
    }

    ngx_memcpy(probe->name.data, params->name.data, params->name.len);
    probe->name.data[params->name.len] = '\0';
    probe->name.len = params->name.len;

    probe->addr_text.len = ngx_sock_ntop(params->sockaddr, params->socklen,
                                         probe->addr_text.data,
                                         NGX_SOCKADDR_STRLEN, 1);

    len = ngx_sock_ntop(params->sockaddr, params->socklen, probe->addr_only,
                        NGX_SOCKADDR_STRLEN - 1, 0);
    probe->addr_only[len] = '\0';

    probe->log = *params->log;
    probe->log.connection = 0;
    probe->log.handler = ngx_certguard_probe_log_error;
    probe->log.data = probe;
    probe->log.action = "connecting to the destination";
    pool->log = &probe->log;

    ngx_queue_init(&probe->waiters);

    probe->timeout.handler = ngx_certguard_probe_timeout;
    probe->timeout.data = probe;
    probe->timeout.log = &probe->log;

    probe->poll.handler = ngx_certguard_probe_poll;
    probe->poll.data = probe;
    probe->poll.log = &probe->log;

    ngx_memcpy(probe->peer.sockaddr, params->sockaddr, params->socklen);
    probe->peer.socklen = params->socklen;
    probe->peer.name = &probe->addr_text;
    probe->peer.get = ngx_event_get_peer;
    probe->peer.log = &probe->log;
    probe->peer.log_error = NGX_ERROR_ERR;

    return probe;
}


static void
ngx_certguard_probe_connect(ngx_certguard_probe_t *probe)
{
    ngx_int_t          rc;
    ngx_connection_t  *pc;

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                   "certguard: probing %V", &probe->addr_text);

    ngx_add_timer(&probe->timeout, probe->probe_timeout);

    rc = ngx_event_connect_peer(&probe->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_certguard_probe_finish(probe, "connection failed");
        return;
    }

    pc = probe->peer.connection;
    pc->data = probe;
    pc->pool = probe->pool;
    pc->read->handler = ngx_certguard_probe_connected;
    pc->write->handler = ngx_certguard_probe_connected;

    if (rc == NGX_AGAIN) {
        return;
    }

    ngx_certguard_probe_connected(pc->write);
}


static void
ngx_certguard_probe_poll(ngx_event_t *ev)
{
    ngx_int_t               rc;
    cg_result_t             res;
    ngx_certguard_probe_t  *probe;

    probe = ev->data;

    rc = ngx_certguard_cache_get(probe->cache, &probe->key, &res);

    if (rc == NGX_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                       "certguard: the other worker's verdict for %V",
                       &probe->addr_text);

        ngx_certguard_probe_notify(probe, &res, NULL);
        return;
    }

    if ((ngx_msec_int_t) (ngx_current_msec - probe->deadline) > 0) {
        ngx_certguard_probe_notify(probe, NULL, "timed out");
        return;
    }

    if (rc == NGX_BUSY) {
        ngx_add_timer(&probe->poll, 20);
        return;
    }

    /* the other worker failed or its claim expired: probe here */

    rc = ngx_certguard_cache_claim(probe->cache, &probe->key,
                                   probe->probe_timeout / 1000 + 2);

    if (rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_add_timer(&probe->poll, 20);
        return;
    }

    probe->claimed = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                   "certguard: probe of %V starts, the claim taken over",
                   &probe->addr_text);

    ngx_certguard_probe_connect(probe);
}


static void
ngx_certguard_probe_connected(ngx_event_t *ev)
{
    int                     err;
    socklen_t               len;
    ngx_int_t               rc;
    ngx_connection_t       *pc;
    ngx_certguard_probe_t  *probe;

    pc = ev->data;
    probe = pc->data;

    err = 0;
    len = sizeof(int);

    if (getsockopt(pc->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    if (err) {
        (void) ngx_connection_error(pc, err, "connect() failed");
        ngx_certguard_probe_finish(probe, "connection refused");
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                   "certguard: probe connected to %V", &probe->addr_text);

    probe->log.action = "SSL handshaking with the destination";

    if (ngx_ssl_create_connection(probe->ssl, pc,
                                  NGX_SSL_BUFFER|NGX_SSL_CLIENT)
        != NGX_OK)
    {
        ngx_certguard_probe_finish(probe, "internal error");
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
        ngx_certguard_probe_finish(probe, "internal error");
        return;
    }

    rc = ngx_ssl_handshake(pc);

    if (rc == NGX_AGAIN) {
        pc->ssl->handler = ngx_certguard_probe_handshaked;
        return;
    }

    ngx_certguard_probe_handshaked(pc);
}


static void
ngx_certguard_probe_handshaked(ngx_connection_t *pc)
{
    ngx_certguard_probe_t  *probe;

    probe = pc->data;

    ngx_log_debug3(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                   "certguard: probe handshake with %V %s, chain %s",
                   &probe->addr_text,
                   pc->ssl->handshaked ? "done" : "failed",
                   probe->leaf ? "captured" : "not seen");

    /*
     * A chain captured before the handshake failed still counts: a server
     * that requires a client certificate sends its own first, and with
     * TLS 1.2 rejects the probe only after that.
     */

    ngx_certguard_probe_finish(probe, pc->ssl->handshaked
                                      ? NULL : "TLS handshake failed");
}


static void
ngx_certguard_probe_timeout(ngx_event_t *ev)
{
    ngx_certguard_probe_t  *probe;

    probe = ev->data;

    ngx_log_error(NGX_LOG_ERR, &probe->log, NGX_ETIMEDOUT,
                  "certguard probe timed out");

    ngx_certguard_probe_finish(probe, "timed out");
}


static void
ngx_certguard_probe_finish(ngx_certguard_probe_t *probe,
    const char *failure)
{
    int                 rc;
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

    if (probe->leaf) {
        rc = cg_input_handshake(&in, probe->policy, probe->trust,
                                probe->geoip, probe->leaf, probe->chain,
                                (char *) probe->name.data,
                                (char *) probe->addr_only, probe->port,
                                ngx_time());

        if (rc == CG_OK) {
            /* the memory is only read here; the sighting is queued */
            in.memory = ngx_certguard_memory_handle(probe->memory);
            in.verify_memo = ngx_certguard_memo();
            rc = cg_evaluate(&in, &res);
        }

        if (rc == CG_OK) {
            ngx_certguard_memory_queue(probe->memory, &in, &res);
            ngx_certguard_capture_post(probe->capture, &probe->log,
                                       probe->leaf, probe->chain, &res,
                                       (char *) probe->addr_only,
                                       probe->port, NULL);
        }

        if (rc == CG_OK) {
            failure = NULL;

            ngx_log_debug3(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                           "certguard: probe verdict %s, score %d, for %V",
                           cg_verdict_name(res.verdict), res.score,
                           &probe->addr_text);

        } else {
            ngx_log_error(NGX_LOG_ERR, &probe->log, 0,
                          "certguard: evaluation failed");
            failure = "certificate could not be evaluated";
        }

        if (failure == NULL) {
            (void) ngx_certguard_cache_put(probe->cache, &probe->key, &res);
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
        ngx_certguard_cache_release(probe->cache, &probe->key);
        probe->claimed = 0;
    }

    ngx_certguard_metrics_probe(failure == NULL ? NGX_CERTGUARD_PROBE_OK
                                : ngx_strcmp(failure, "timed out") == 0
                                ? NGX_CERTGUARD_PROBE_TIMEOUT
                                : NGX_CERTGUARD_PROBE_ERROR,
                                ngx_current_msec - probe->started);

    ngx_certguard_probe_notify(probe, failure ? NULL : &res, failure);
}


/* Every waiter gets the result, then the probe is gone. */

static void
ngx_certguard_probe_notify(ngx_certguard_probe_t *probe, cg_result_t *res,
    const char *failure)
{
    ngx_queue_t                   *q;
    ngx_certguard_probe_waiter_t  *w;

    if (probe->timeout.timer_set) {
        ngx_del_timer(&probe->timeout);
    }

    if (probe->poll.timer_set) {
        ngx_del_timer(&probe->poll);
    }

    while (!ngx_queue_empty(&probe->waiters)) {
        q = ngx_queue_head(&probe->waiters);
        ngx_queue_remove(q);

        w = ngx_queue_data(q, ngx_certguard_probe_waiter_t, queue);
        w->probe = NULL;

        w->handler(w, res, failure);
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
ngx_certguard_probe_verify(X509_STORE_CTX *x509, void *arg)
{
    SSL                    *ssl;
    X509                   *leaf;
    STACK_OF(X509)         *chain;
    ngx_connection_t       *pc;
    ngx_certguard_probe_t  *probe;

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
ngx_certguard_probe_log_error(ngx_log_t *log, u_char *buf, size_t len)
{
    ngx_certguard_probe_t  *probe;

    probe = log->data;

    return ngx_snprintf(buf, len, ", certguard probe of \"%V\" at %V",
                        &probe->name, &probe->addr_text);
}
