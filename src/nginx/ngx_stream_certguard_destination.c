/*
 * ngx_stream_certguard_module: where a session may go.  The CONNECT port,
 * then the shared destination guards (ngx_certguard_guard.c): the name
 * patterns before any DNS query, the name resolved with the server's
 * resolver, and the first address the guards allow, the one probed and
 * dialled, so that the proxy is no open relay.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include "ngx_stream_certguard_module.h"


static void ngx_stream_certguard_resolve_handler(ngx_certguard_resolve_t *res);
static void ngx_stream_certguard_resolved(ngx_stream_certguard_ctx_t *ctx);


ngx_int_t
ngx_stream_certguard_lookup(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    ngx_int_t                         rc;
    ngx_connection_t                 *c;
    ngx_certguard_resolve_t          *res;
    ngx_stream_core_srv_conf_t       *cscf;
    ngx_stream_certguard_srv_conf_t  *cgscf;

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);
    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_core_module);

    res = &ctx->resolve;

    if (cgscf->connect
        && ngx_certguard_guard_port(cgscf->ports, ctx->port)
           != NGX_CERTGUARD_GUARD_OK)
    {
        res->rc = NGX_CERTGUARD_GUARD_PORT;
        ctx->state = ngx_stream_certguard_st_refused;
        return NGX_OK;
    }

    res->name = ctx->host;
    res->port = ctx->port;
    res->guard = &cgscf->common.guard;
    res->resolver = cscf->resolver;
    res->timeout = cscf->resolver_timeout;
    res->log = c->log;
    res->handler = ngx_stream_certguard_resolve_handler;
    res->data = ctx;

    /* the handler may run inside ngx_certguard_resolve() (a cached name) */

    ctx->state = ngx_stream_certguard_st_resolving;

    rc = ngx_certguard_resolve(res);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_AGAIN) {
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "certguard: resolving %V", &ctx->host);
        return NGX_OK;
    }

    /* NGX_OK: an IP literal, a name the patterns refuse, no resolver */

    if (res->ip_literal) {
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "certguard: %V is an IP literal", &ctx->host);
    }

    ngx_stream_certguard_resolved(ctx);

    return NGX_OK;
}


static void
ngx_stream_certguard_resolve_handler(ngx_certguard_resolve_t *res)
{
    ngx_stream_certguard_ctx_t  *ctx = res->data;

    ngx_stream_certguard_resolved(ctx);

    ngx_stream_certguard_wake(ctx->session, ctx);
}


static void
ngx_stream_certguard_resolved(ngx_stream_certguard_ctx_t *ctx)
{
    ngx_log_debug2(NGX_LOG_DEBUG_STREAM, ctx->session->connection->log, 0,
                   "certguard: destination %V: %s", &ctx->host,
                   ngx_certguard_guard_reason(ctx->resolve.rc));

    ctx->state = (ctx->resolve.rc == NGX_CERTGUARD_GUARD_OK)
                 ? ngx_stream_certguard_st_address
                 : ngx_stream_certguard_st_refused;
}
