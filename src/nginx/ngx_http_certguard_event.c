/*
 * ngx_http_certguard_module: what a verdict's CEF record says of the
 * request (the client, the destination, the user, the upstream's TLS), and
 * the name a handshake is checked against.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_certguard_module.h"
#include "ngx_http_certguard_forward.h"


static const char *ngx_http_certguard_cstr(ngx_pool_t *pool, ngx_str_t *s);


/* The name nginx verifies: proxy_ssl_name or the upstream host, no port. */

ngx_int_t
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
 * The event of a verdict for its CEF record, made once: the record logged
 * and $certguard_cef are the same, rt included.
 */

cg_event_t *
ngx_http_certguard_event(ngx_http_request_t *r, ngx_http_certguard_ctx_t *ctx)
{
    u_char                         *p;
    size_t                          n;
    ngx_str_t                      *schema, user, host;
    ngx_time_t                     *tp;
    cg_event_t                     *ev;
    ngx_http_upstream_t            *u;
    ngx_http_certguard_loc_conf_t  *cglcf;

    ev = &ctx->event;

    if (ctx->evented) {
        return ev;
    }

    ngx_memzero(ev, sizeof(cg_event_t));

    ev->monitor = ctx->monitor;

    n = ngx_sock_ntop(r->connection->sockaddr, r->connection->socklen,
                      ctx->src, NGX_SOCKADDR_STRLEN, 0);
    ctx->src[n] = '\0';
    ev->src_addr = (const char *) ctx->src;
    ev->src_port = ngx_inet_get_port(r->connection->sockaddr);

    /* kept at scoring time: a blocked peer is released before logging */

    if (ctx->dst[0]) {
        ev->dst_addr = (const char *) ctx->dst;
        ev->dst_port = ctx->dst_port;
    }

    u = r->upstream;
    schema = (u && u->schema.len) ? &u->schema : &r->schema;

    n = schema->len + ngx_strlen(ctx->result.name) + r->unparsed_uri.len + 1;

    p = ngx_pnalloc(r->pool, n);
    if (p == NULL) {
        return NULL;
    }

    (void) ngx_sprintf(p, "%V%s%V%Z", schema, ctx->result.name,
                       &r->unparsed_uri);
    ev->request = (const char *) p;

    if (ngx_http_certguard_forward_user(r, &user) == NGX_OK
        && user.len < sizeof(ctx->user))
    {
        (void) ngx_cpystrn(ctx->user, user.data, user.len + 1);
        ev->user = (const char *) ctx->user;
    }

    ev->method = ngx_http_certguard_cstr(r->pool, &r->method_name);

    if (r->headers_in.user_agent) {
        ev->user_agent = ngx_http_certguard_cstr(r->pool,
                                            &r->headers_in.user_agent->value);
    }

    host = ngx_cycle->hostname;
    ev->dvchost = ngx_http_certguard_cstr(r->pool, &host);

    if (ctx->tls_version[0]) {
        ev->tls_version = (const char *) ctx->tls_version;
    }

    if (ctx->tls_cipher[0]) {
        ev->tls_cipher = (const char *) ctx->tls_cipher;
    }

    ngx_certguard_conn_id(r->connection, ctx->conn_id);
    ev->conn_id = (const char *) ctx->conn_id;

    cglcf = ngx_http_get_module_loc_conf(r, ngx_http_certguard_module);
    ev->keep_query = (cglcf->common.log && cglcf->common.log->keep_query);

    tp = ngx_timeofday();
    ev->rt_ms = (int64_t) tp->sec * 1000 + tp->msec;

    ctx->evented = 1;

    return ev;
}


/* The upstream's TLS version and cipher, as the CEF record shows them. */

void
ngx_http_certguard_tls(ngx_http_certguard_ctx_t *ctx, const SSL *ssl)
{
    const char        *s;
    const SSL_CIPHER  *cipher;

    ctx->tls_version[0] = '\0';
    ctx->tls_cipher[0] = '\0';

    if (ssl == NULL) {
        return;
    }

    s = SSL_get_version(ssl);

    if (s && ngx_strcmp(s, "unknown") != 0) {
        (void) ngx_cpystrn(ctx->tls_version, (u_char *) s,
                           sizeof(ctx->tls_version));
    }

    /* inside a TLS 1.2 handshake the cipher is still the pending one */

    cipher = SSL_get_pending_cipher(ssl);
    if (cipher == NULL) {
        cipher = SSL_get_current_cipher(ssl);
    }

    s = cipher ? SSL_CIPHER_get_name(cipher) : NULL;

    if (s && ngx_strcmp(s, "(NONE)") != 0) {
        (void) ngx_cpystrn(ctx->tls_cipher, (u_char *) s,
                           sizeof(ctx->tls_cipher));
    }
}


/* A NUL-terminated copy for the engine, NULL for an empty string. */

static const char *
ngx_http_certguard_cstr(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char  *p;

    if (s->len == 0) {
        return NULL;
    }

    p = ngx_pnalloc(pool, s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    (void) ngx_cpystrn(p, s->data, s->len + 1);

    return (const char *) p;
}
