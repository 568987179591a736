/*
 * certguard's probe: a TLS handshake of the proxy's own to a destination,
 * with the client's SNI, whose certificate chain the engine scores.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include "ngx_stream_certguard_module.h"


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
static u_char *ngx_stream_certguard_probe_log_error(ngx_log_t *log,
    u_char *buf, size_t len);


/*
 * The probe: connect, TLS handshake with SNI, capture the chain, score it.
 * It belongs to no session (sessions may come and go while it runs), so it
 * has its own pool and log, and the worker's list finds it by key.
 */

ngx_int_t
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

int
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
