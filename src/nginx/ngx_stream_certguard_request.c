/*
 * ngx_stream_certguard_module: what the client asks for.  With
 * certguard_connect, its CONNECT request (read by the engine's parser); with
 * certguard_probe, the server name of its ClientHello and the probe port.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include "ngx_stream_certguard_module.h"
#include "ngx_certguard_metrics.h"
#include "cg_clienthello.h"


static ngx_int_t ngx_stream_certguard_auth(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_uint_t ngx_stream_certguard_absolute_http(u_char *p,
    cg_connect_t *req);
static ngx_int_t ngx_stream_certguard_hand_off(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);


/*
 * "CONNECT host:port HTTP/1.1" and header lines up to an empty line, all
 * in the preread buffer (preread_buffer_size bounds the size, and
 * preread_timeout the time a slow client may take), read by the engine's
 * parser.  Header values are not kept: Proxy-Authorization must never reach
 * a log, nor a password in the target (the parser refuses those).
 */

ngx_int_t
ngx_stream_certguard_read_connect(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    int                               rc;
    u_char                           *p;
    ngx_buf_t                        *b;
    cg_connect_t                     *req;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cgscf;

    c = s->connection;
    b = c->buffer;

    if (b == NULL || b->pos == b->last) {
        return NGX_AGAIN;
    }

    p = b->pos;
    req = &ctx->request;

    rc = cg_connect_parse(p, b->last - p, b->end - p, req);

    switch (rc) {

    case CG_OK:
        break;

    case CG_CONNECT_AGAIN:
        return NGX_AGAIN;

    case CG_CONNECT_TOO_LARGE:
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "certguard: CONNECT request too large");
        ngx_stream_certguard_log_refusal(s, ctx, "malformed", 1);
        return ngx_stream_certguard_error(s, NGX_STREAM_BAD_REQUEST,
                                          "request too large");

    case CG_ERR_INPUT:
        if (req->target_len) {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "certguard: %s, target \"%*s\"", req->error,
                          req->target_len, p + req->target_off);

            ctx->target.len = req->target_len;
            ctx->target.data = ngx_pnalloc(c->pool, ctx->target.len + 1);
            if (ctx->target.data == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(ctx->target.data, p + req->target_off,
                       ctx->target.len);
            ctx->target.data[ctx->target.len] = '\0';

        } else {
            ngx_log_error(NGX_LOG_INFO, c->log, 0, "certguard: %s",
                          req->error);
        }

        /* a user:password@ target: neither target nor host is recorded */

        ngx_stream_certguard_log_refusal(s, ctx,
                                         req->userinfo ? "userinfo"
                                                       : "malformed", 1);

        return ngx_stream_certguard_respond(s, NGX_STREAM_BAD_REQUEST,
                                            req->error,
                                            ngx_strlen(req->error));

    default:
        return NGX_ERROR;
    }

    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    if (!req->connect) {
        if (cgscf->http_pass.len && ngx_stream_certguard_absolute_http(p, req))
        {
            return ngx_stream_certguard_hand_off(s, ctx);
        }

        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "certguard: method \"%*s\" is not CONNECT",
                      req->method_len, p);
        ngx_stream_certguard_log_refusal(s, ctx, "method", 1);
        return ngx_stream_certguard_error(s, NGX_STREAM_CERTGUARD_METHOD,
                                          "only CONNECT is allowed");
    }

    ctx->host.len = req->host_len;
    ctx->host.data = ngx_pnalloc(c->pool, ctx->host.len + 1);
    ctx->target.len = req->target_len;
    ctx->target.data = ngx_pnalloc(c->pool, ctx->target.len + 1);
    if (ctx->host.data == NULL || ctx->target.data == NULL) {
        return NGX_ERROR;
    }

    ngx_strlow(ctx->host.data, p + req->host_off, ctx->host.len);
    ctx->host.data[ctx->host.len] = '\0';

    ngx_memcpy(ctx->target.data, p + req->target_off, ctx->target.len);
    ctx->target.data[ctx->target.len] = '\0';

    ctx->port = (in_port_t) req->port;

    ngx_log_debug2(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "certguard: CONNECT %V, %uz bytes of request",
                   &ctx->target, req->header_end);

    if (cgscf->common.auth) {
        return ngx_stream_certguard_auth(s, ctx);
    }

    return NGX_OK;
}


/*
 * Proxy authentication, before anything is said about the destination: an
 * unauthenticated client learns nothing about which destinations exist or
 * are allowed.  A client that sent no credentials is asked for them (407,
 * no record); a failed attempt is a warning and a CEF record, both
 * rate-limited, and never shows the password.
 */

static ngx_int_t
ngx_stream_certguard_auth(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    ngx_str_t                         value, *v, user;
    ngx_buf_t                        *b;
    ngx_uint_t                        suppressed;
    const char                       *reason;
    ngx_connection_t                 *c;
    ngx_certguard_auth_e              rc;
    ngx_stream_certguard_srv_conf_t  *cgscf;

    c = s->connection;
    b = c->buffer;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    v = NULL;

    if (ctx->request.auth) {
        value.data = b->pos + ctx->request.auth_off;
        value.len = ctx->request.auth_len;
        v = &value;
    }

    rc = ngx_certguard_auth_check(cgscf->common.auth, v, c->pool, &user);

    /* the tunnel starts after the request: the credentials are not needed
     * in the buffer any more */

    if (v) {
        ngx_explicit_memzero(value.data, value.len);
    }

    if (user.len) {
        ctx->user.data = ngx_pnalloc(c->pool, user.len + 1);
        if (ctx->user.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ctx->user.data, user.data, user.len);
        ctx->user.data[user.len] = '\0';
        ctx->user.len = user.len;
    }

    if (rc == NGX_CERTGUARD_AUTH_OK) {
        ctx->authenticated = 1;

        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "certguard: proxy user \"%V\"", &ctx->user);

        return NGX_OK;
    }

    reason = ngx_certguard_auth_reason(rc);

    /* every attempt counted, only some logged */

    ngx_certguard_metrics_refusal(reason);

    if (rc == NGX_CERTGUARD_AUTH_ERROR) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "certguard: proxy authentication could not be "
                      "checked");
        ngx_stream_certguard_log_refusal(s, ctx, reason, 1);
        return ngx_stream_certguard_error(s, NGX_STREAM_INTERNAL_SERVER_ERROR,
                                          "internal error");
    }

    if (rc != NGX_CERTGUARD_AUTH_MISSING
        && ngx_certguard_auth_log_allowed(&suppressed))
    {
        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "certguard: proxy authentication failed (%s)", reason);
        ngx_stream_certguard_log_refusal(s, ctx, reason, 1 + suppressed);
    }

    return ngx_stream_certguard_error(s, NGX_STREAM_CERTGUARD_PROXY_AUTH,
                                      "proxy authentication required");
}


/*
 * "GET http://host/ HTTP/1.1": a client that uses this port as its HTTP
 * proxy too.  Other targets ("GET /", "GET https://...") are no proxy
 * request for plain HTTP and get the 405 a CONNECT-only port gives.
 */

static ngx_uint_t
ngx_stream_certguard_absolute_http(u_char *p, cg_connect_t *req)
{
    ngx_str_t   *m;
    u_char      *target;

    static ngx_str_t  methods[] = {
        ngx_string("GET"), ngx_string("HEAD"), ngx_string("POST"),
        ngx_string("PUT"), ngx_string("DELETE"), ngx_string("OPTIONS"),
        ngx_string("PATCH"), ngx_null_string
    };

    target = p + req->target_off;

    if (req->host_len == 0
        || req->target_len < sizeof("http://") - 1
        || ngx_strncasecmp(target, (u_char *) "http://",
                           sizeof("http://") - 1) != 0)
    {
        return 0;
    }

    for (m = methods; m->len; m++) {
        if (req->method_len == m->len
            && ngx_strncmp(p, m->data, m->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The hand-off: the whole connection, this request and the ones after it
 * on a kept-alive connection, goes to the HTTP server at certguard_http_pass,
 * which authenticates and guards each request itself (certguard_forward).
 * The PROXY protocol header in front tells it the client's address; nginx's
 * stream proxy sends c->buffer first, so the header goes in there with the
 * bytes already read.  Nothing is probed.
 */

static ngx_int_t
ngx_stream_certguard_hand_off(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    u_char                           *p;
    size_t                            n;
    ngx_buf_t                        *b, *nb;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cgscf;

    c = s->connection;
    b = c->buffer;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    n = b->last - b->pos;

    nb = ngx_create_temp_buf(c->pool, NGX_PROXY_PROTOCOL_MAX_HEADER + n);
    if (nb == NULL) {
        return NGX_ERROR;
    }

    p = ngx_proxy_protocol_write(c, nb->last, nb->end);
    if (p == NULL) {
        return NGX_ERROR;
    }

    nb->last = ngx_cpymem(p, b->pos, n);

    c->buffer = nb;

    ctx->upstream = cgscf->http_pass;
    ctx->state = ngx_stream_certguard_st_done;

    ngx_log_debug3(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "certguard: plain HTTP request (%*s), handed to %V",
                   ctx->request.method_len, b->pos, &ctx->upstream);

    return NGX_DECLINED;
}


/*
 * The ClientHello at b->pos, whole (records reassembled, bounded by the
 * preread buffer and preread_timeout): NGX_OK with ctx->hello, NGX_AGAIN,
 * NGX_DECLINED for bytes that are not TLS, NGX_BUSY for a TLS handshake
 * record the parser refuses, NGX_ABORT for one larger than the buffer.
 * ctx->tls tells a client that speaks TLS (to be refused with an alert).
 */

ngx_int_t
ngx_stream_certguard_read_hello(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    int                rc;
    size_t             len;
    ngx_buf_t         *b;
    ngx_connection_t  *c;
    cg_clienthello_t  *ch;

    c = s->connection;
    b = c->buffer;

    if (b == NULL || b->pos == b->last
        || ((size_t) (b->last - b->pos) < ctx->hello_need
            && b->last != b->end))
    {
        return NGX_AGAIN;
    }

    len = b->last - b->pos;
    ctx->tls = (b->pos[0] == 0x16);

    /* kept only until the probe has its copy: freed once decided */

    if (ctx->hello == NULL) {
        ctx->hello = ngx_alloc(sizeof(cg_clienthello_t), c->log);
        if (ctx->hello == NULL) {
            return NGX_ERROR;
        }
    }

    ch = ctx->hello;

    rc = cg_clienthello_parse(b->pos, len, ch);

    if (rc == CG_CLIENTHELLO_AGAIN) {
        if (b->last == b->end) {
            ngx_stream_certguard_hello_free(ctx);
            return NGX_ABORT;
        }

        ctx->hello_need = cg_clienthello_need(b->pos, len);
        return NGX_AGAIN;
    }

    if (rc != CG_OK) {
        ngx_stream_certguard_hello_free(ctx);
        return ctx->tls ? NGX_BUSY : NGX_DECLINED;
    }

    ngx_cpystrn((u_char *) ctx->client_sni, (u_char *) ch->sni,
                sizeof(ctx->client_sni));

    ngx_log_debug5(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "certguard: ClientHello: SNI \"%s\", ALPN %uz bytes, "
                   "%ui suites, %ui groups, %ui versions", ch->sni,
                   ch->alpn_len, (ngx_uint_t) ch->nciphers,
                   (ngx_uint_t) ch->ngroups, (ngx_uint_t) ch->nversions);

    return NGX_OK;
}


/* SNI passthrough: the destination is the name in the ClientHello. */

ngx_int_t
ngx_stream_certguard_read_sni(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    size_t                            len;
    ngx_int_t                         rc;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cgscf;

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    rc = ngx_stream_certguard_read_hello(s, ctx);

    if (rc == NGX_AGAIN || rc == NGX_ERROR) {
        return rc;
    }

    len = ngx_strlen(ctx->client_sni);

    if (rc != NGX_OK || len == 0 || len > NGX_STREAM_CERTGUARD_HOST_MAX + 1) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "certguard: no server name in the ClientHello");

        if (cgscf->probe_failure == NGX_STREAM_CERTGUARD_FAILURE_ALLOW) {
            ngx_stream_certguard_hello_free(ctx);
            ctx->state = ngx_stream_certguard_st_done;
            return NGX_DECLINED;
        }

        return NGX_STREAM_FORBIDDEN;
    }

    ctx->host.data = ngx_pnalloc(c->pool, len + 1);
    ctx->target.data = ngx_pnalloc(c->pool, len + sizeof(":65535"));
    if (ctx->host.data == NULL || ctx->target.data == NULL) {
        return NGX_ERROR;
    }

    ngx_strlow(ctx->host.data, (u_char *) ctx->client_sni, len);
    ctx->host.data[len] = '\0';
    ctx->host.len = len;

    ctx->port = (in_port_t) cgscf->probe_port;
    ctx->target.len = ngx_sprintf(ctx->target.data, "%V:%ui%Z", &ctx->host,
                                  cgscf->probe_port)
                      - ctx->target.data - 1;

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "certguard: ClientHello for %V", &ctx->target);

    return NGX_OK;
}


void
ngx_stream_certguard_hello_free(ngx_stream_certguard_ctx_t *ctx)
{
    if (ctx->hello) {
        ngx_free(ctx->hello);
        ctx->hello = NULL;
    }
}
