/*
 * ngx_stream_certguard_module: where a session may go.  The CONNECT port,
 * the name resolved to an address, and the addresses never dialled (the
 * special ranges, this host's own), so that the proxy is no open relay.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ifaddrs.h>

#include "ngx_stream_certguard_module.h"


static void ngx_stream_certguard_resolve_handler(ngx_resolver_ctx_t *rctx);


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


ngx_int_t
ngx_stream_certguard_lookup(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    ngx_uint_t                        i;
    ngx_addr_t                        addr;
    ngx_connection_t                 *c;
    ngx_resolver_ctx_t               *rctx, temp;
    ngx_stream_certguard_ports_t     *range;
    ngx_stream_core_srv_conf_t       *cscf;
    ngx_stream_certguard_srv_conf_t  *cgscf;

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    if (cgscf->connect) {
        range = cgscf->ports->elts;

        for (i = 0; i < cgscf->ports->nelts; i++) {
            if (ctx->port >= range[i].low && ctx->port <= range[i].high) {
                break;
            }
        }

        if (i == cgscf->ports->nelts) {
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

        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "certguard: %V is an IP literal", &ctx->host);

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

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "certguard: resolving %V", &ctx->host);

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

    ngx_log_debug3(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "certguard: %V resolved, addresses: %ui, %s", &rctx->name,
                   rctx->naddrs, ctx->failure ? "none allowed" : "one allowed");

done:

    ngx_resolve_name_done(rctx);

    ngx_stream_certguard_wake(s, ctx);
}


ngx_int_t
ngx_stream_certguard_allowed(ngx_stream_session_t *s, struct sockaddr *sa)
{
    ngx_stream_certguard_srv_conf_t   *cgscf;
    ngx_stream_certguard_main_conf_t  *cgmcf;

    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);
    cgmcf = ngx_stream_get_module_main_conf(s, ngx_stream_certguard_module);

    if (cgscf->allow && ngx_cidr_match(sa, cgscf->allow) == NGX_OK) {
        return NGX_OK;
    }

    if (cgscf->deny && ngx_cidr_match(sa, cgscf->deny) == NGX_OK) {
        return NGX_DECLINED;
    }

    if (ngx_cidr_match(sa, cgmcf->special) == NGX_OK) {
        return NGX_DECLINED;
    }

    if (cgmcf->own->nelts && ngx_cidr_match(sa, cgmcf->own) == NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* Addresses never dialled: the special ranges and this host's own. */

ngx_int_t
ngx_stream_certguard_init_addresses(ngx_conf_t *cf,
    ngx_stream_certguard_main_conf_t *cgmcf)
{
    char            **text;
    ngx_str_t         s;
    ngx_cidr_t       *cidr;
    struct ifaddrs   *ifa, *i;

    cgmcf->special = ngx_array_create(cf->pool, 16, sizeof(ngx_cidr_t));
    cgmcf->own = ngx_array_create(cf->pool, 8, sizeof(ngx_cidr_t));
    if (cgmcf->special == NULL || cgmcf->own == NULL) {
        return NGX_ERROR;
    }

    for (text = ngx_stream_certguard_special; *text; text++) {
        cidr = ngx_array_push(cgmcf->special);
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
            cidr = ngx_array_push(cgmcf->own);
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
            cidr = ngx_array_push(cgmcf->own);
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
