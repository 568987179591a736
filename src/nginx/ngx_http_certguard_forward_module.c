/*
 * ngx_http_certguard_forward_module: the forward-proxy half of the HTTP
 * side.  A location with "certguard_forward on;" serves absolute-form
 * requests ("GET http://host[:port]/path"): in the access phase it checks
 * proxy authentication, the port, the name, resolves the name with the
 * location's resolver and judges the address (ngx_certguard_guard.c), and
 * only then lets nginx's own proxy module connect, to the very address that
 * was judged ($certguard_upstream).  Plain HTTP (proxy_pass http://) and
 * TLS origination (proxy_pass https://, scored in the handshake by
 * ngx_http_certguard_module) go through the same checks.
 *
 * It lives in the same shared object as ngx_http_certguard_module and
 * reads that module's common configuration block (policy, log, guards,
 * authentication), so a directive is written once for both.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_certguard_conf.h"
#include "ngx_http_certguard_forward.h"
#include "ngx_certguard_metrics.h"


#define NGX_HTTP_CERTGUARD_HOST_MAX     253
#define NGX_HTTP_CERTGUARD_PROXY_AUTH   407     /* nginx names no 407 */


typedef struct {
    ngx_flag_t                  enable;
    ngx_array_t                *ports;          /* port ranges */
} ngx_http_certguard_forward_loc_conf_t;


typedef struct {
    ngx_certguard_resolve_t     resolve;
    ngx_http_request_t         *request;
    ngx_str_t                   host;           /* lower case, no brackets */
    ngx_str_t                   authority;      /* host[:port] of the URI */
    ngx_str_t                   upstream;       /* address:port */
    ngx_str_t                   user;           /* also of a failure */
    ngx_int_t                   status;         /* NGX_DECLINED: go on */
    unsigned                    resolving:1;
    unsigned                    done:1;
    unsigned                    authenticated:1;
} ngx_http_certguard_forward_ctx_t;


static ngx_int_t ngx_http_certguard_forward_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_certguard_forward_target(ngx_http_request_t *r,
    ngx_http_certguard_forward_ctx_t *ctx);
static ngx_int_t ngx_http_certguard_forward_auth(ngx_http_request_t *r,
    ngx_http_certguard_forward_ctx_t *ctx, ngx_certguard_conf_t *cgcf);
static void ngx_http_certguard_forward_resolved(
    ngx_certguard_resolve_t *res);
static ngx_int_t ngx_http_certguard_forward_decide(ngx_http_request_t *r,
    ngx_http_certguard_forward_ctx_t *ctx);
static ngx_int_t ngx_http_certguard_forward_refuse(ngx_http_request_t *r,
    ngx_http_certguard_forward_ctx_t *ctx, ngx_uint_t status,
    const char *reason);
static void ngx_http_certguard_forward_log(ngx_http_request_t *r,
    ngx_certguard_conf_t *cgcf, ngx_http_certguard_forward_ctx_t *ctx,
    const char *reason, ngx_uint_t count);
static void ngx_http_certguard_forward_cleanup(void *data);
static void ngx_http_certguard_forward_hide(ngx_http_request_t *r,
    ngx_table_elt_t *h);
static ngx_table_elt_t *ngx_http_certguard_forward_header(
    ngx_http_request_t *r, const char *name, size_t len);

static ngx_int_t ngx_http_certguard_forward_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_certguard_forward_add_variables(ngx_conf_t *cf);
static void *ngx_http_certguard_forward_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_certguard_forward_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_certguard_forward_init(ngx_conf_t *cf);


extern ngx_module_t  ngx_http_certguard_module;


static ngx_command_t  ngx_http_certguard_forward_commands[] = {

    { ngx_string("certguard_forward"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_certguard_forward_loc_conf_t, enable),
      NULL },

    { ngx_string("certguard_http_ports"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_certguard_guard_set_ports,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_certguard_forward_loc_conf_t, ports),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_certguard_forward_module_ctx = {
    ngx_http_certguard_forward_add_variables,  /* preconfiguration */
    ngx_http_certguard_forward_init,        /* postconfiguration */

    NULL,                                   /* create main configuration */
    NULL,                                   /* init main configuration */

    NULL,                                   /* create server configuration */
    NULL,                                   /* merge server configuration */

    ngx_http_certguard_forward_create_loc_conf, /* create location conf */
    ngx_http_certguard_forward_merge_loc_conf   /* merge location conf */
};


ngx_module_t  ngx_http_certguard_forward_module = {
    NGX_MODULE_V1,
    &ngx_http_certguard_forward_module_ctx, /* module context */
    ngx_http_certguard_forward_commands,    /* module directives */
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


#define NGX_HTTP_CERTGUARD_FWD_UPSTREAM    0
#define NGX_HTTP_CERTGUARD_FWD_HOST        1
#define NGX_HTTP_CERTGUARD_FWD_AUTHORITY   2
#define NGX_HTTP_CERTGUARD_FWD_USER        3


static ngx_http_variable_t  ngx_http_certguard_forward_vars[] = {

    { ngx_string("certguard_upstream"), NULL,
      ngx_http_certguard_forward_variable,
      NGX_HTTP_CERTGUARD_FWD_UPSTREAM, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_host"), NULL,
      ngx_http_certguard_forward_variable,
      NGX_HTTP_CERTGUARD_FWD_HOST, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_authority"), NULL,
      ngx_http_certguard_forward_variable,
      NGX_HTTP_CERTGUARD_FWD_AUTHORITY, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_user"), NULL,
      ngx_http_certguard_forward_variable,
      NGX_HTTP_CERTGUARD_FWD_USER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_int_t
ngx_http_certguard_forward_handler(ngx_http_request_t *r)
{
    ngx_int_t                               rc;
    ngx_pool_cleanup_t                     *cln;
    ngx_certguard_conf_t                   *cgcf;
    ngx_http_core_loc_conf_t               *clcf;
    ngx_http_certguard_forward_ctx_t       *ctx;
    ngx_http_certguard_forward_loc_conf_t  *fwcf;

    fwcf = ngx_http_get_module_loc_conf(r, ngx_http_certguard_forward_module);

    if (!fwcf->enable || r != r->main) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_certguard_forward_module);

    if (ctx) {
        return ctx->done ? ctx->status : NGX_AGAIN;     /* NGX_DECLINED */
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_certguard_forward_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->status = NGX_DECLINED;
    ngx_http_set_ctx(r, ctx, ngx_http_certguard_forward_module);

    cgcf = ngx_http_get_module_loc_conf(r, ngx_http_certguard_module);

    /* hop-by-hop: for this proxy, not for the destination */

    ngx_http_certguard_forward_hide(r,
        ngx_http_certguard_forward_header(r, "proxy-connection",
                                          sizeof("proxy-connection") - 1));

    /* credentials first: an unauthenticated client learns nothing about
     * which destinations exist or are allowed */

    rc = ngx_http_certguard_forward_auth(r, ctx, cgcf);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_certguard_forward_target(r, ctx);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ngx_certguard_guard_port(fwcf->ports, ctx->resolve.port)
        != NGX_CERTGUARD_GUARD_OK)
    {
        return ngx_http_certguard_forward_refuse(r, ctx, NGX_HTTP_FORBIDDEN,
                   ngx_certguard_guard_reason(NGX_CERTGUARD_GUARD_PORT));
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    ctx->resolve.name = ctx->host;
    ctx->resolve.guard = &cgcf->guard;
    ctx->resolve.resolver = clcf->resolver;
    ctx->resolve.timeout = clcf->resolver_timeout;
    ctx->resolve.log = r->connection->log;
    ctx->resolve.handler = ngx_http_certguard_forward_resolved;
    ctx->resolve.data = ctx;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_certguard_forward_cleanup;
    cln->data = ctx;

    rc = ngx_certguard_resolve(&ctx->resolve);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_AGAIN) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "certguard forward: resolving \"%V\"", &ctx->host);

        ctx->resolving = 1;
        return NGX_AGAIN;
    }

    return ngx_http_certguard_forward_decide(r, ctx);
}


/*
 * The destination from the absolute URI nginx parsed (r->schema, the host
 * it put in headers_in.server, the port after it); an origin-form request
 * on a forward-proxy location is a client that was not told to use a proxy.
 */

static ngx_int_t
ngx_http_certguard_forward_target(ngx_http_request_t *r,
    ngx_http_certguard_forward_ctx_t *ctx)
{
    u_char     *p, *last;
    ngx_int_t   port;
    ngx_str_t   host;

    if (r->host_start == NULL || r->host_end == NULL
        || r->schema.len == 0)
    {
        return ngx_http_certguard_forward_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                                 "not_absolute_uri");
    }

    if (r->schema.len != 4
        || ngx_strncasecmp(r->schema.data, (u_char *) "http", 4) != 0)
    {
        /* "GET https://..." through a proxy is a client error: HTTPS goes
         * through CONNECT */
        return ngx_http_certguard_forward_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                                 "scheme");
    }

    host.data = r->host_start;
    host.len = r->host_end - r->host_start;

    if (host.len > 1 && host.data[0] == '[') {
        host.data++;
        host.len -= 2;
    }

    if (host.len == 0 || host.len > NGX_HTTP_CERTGUARD_HOST_MAX) {
        return ngx_http_certguard_forward_refuse(r, ctx, NGX_HTTP_BAD_REQUEST,
                                                 "host");
    }

    port = 80;

    if (r->port_end) {
        p = r->host_end + 1;
        last = r->port_end;

        port = (last > p && last - p <= 5) ? ngx_atoi(p, last - p)
                                           : NGX_ERROR;

        if (port < 1 || port > 65535) {
            return ngx_http_certguard_forward_refuse(r, ctx,
                                                     NGX_HTTP_BAD_REQUEST,
                                                     "port");
        }
    }

    ctx->host.len = host.len;
    ctx->host.data = ngx_pnalloc(r->pool, host.len);
    if (ctx->host.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_strlow(ctx->host.data, host.data, host.len);

    ctx->authority.data = r->host_start;
    ctx->authority.len = (r->port_end ? r->port_end : r->host_end)
                         - r->host_start;

    ctx->resolve.port = (in_port_t) port;

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_certguard_forward_auth(ngx_http_request_t *r,
    ngx_http_certguard_forward_ctx_t *ctx, ngx_certguard_conf_t *cgcf)
{
    ngx_table_elt_t       *h;
    ngx_certguard_auth_e   rc;

    h = ngx_http_certguard_forward_header(r, "proxy-authorization",
                                          sizeof("proxy-authorization") - 1);

    if (cgcf->auth == NULL) {
        ngx_http_certguard_forward_hide(r, h);
        return NGX_DECLINED;
    }

    rc = ngx_certguard_auth_check(cgcf->auth, h ? &h->value : NULL, r->pool,
                                  &ctx->user);

    /* the credentials are the proxy's: never forwarded to a destination */

    ngx_http_certguard_forward_hide(r, h);

    if (rc == NGX_CERTGUARD_AUTH_OK) {
        ctx->authenticated = 1;
        return NGX_DECLINED;
    }

    if (rc == NGX_CERTGUARD_AUTH_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_certguard_forward_refuse(r, ctx,
                                             NGX_HTTP_CERTGUARD_PROXY_AUTH,
                                             ngx_certguard_auth_reason(rc));
}


static void
ngx_http_certguard_forward_resolved(ngx_certguard_resolve_t *res)
{
    ngx_int_t                          rc;
    ngx_connection_t                  *c;
    ngx_http_request_t                *r;
    ngx_http_certguard_forward_ctx_t  *ctx;

    ctx = res->data;
    r = ctx->request;
    c = r->connection;

    ctx->resolving = 0;

    rc = ngx_http_certguard_forward_decide(r, ctx);

    if (rc == NGX_DECLINED) {
        r->write_event_handler = ngx_http_core_run_phases;
        ngx_http_core_run_phases(r);

    } else if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }

    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_certguard_forward_decide(ngx_http_request_t *r,
    ngx_http_certguard_forward_ctx_t *ctx)
{
    u_char                     *p;
    ngx_uint_t                  status;
    ngx_certguard_resolve_t    *res;

    res = &ctx->resolve;

    if (res->rc != NGX_CERTGUARD_GUARD_OK) {
        status = (res->rc == NGX_CERTGUARD_GUARD_RESOLVE)
                 ? NGX_HTTP_BAD_GATEWAY : NGX_HTTP_FORBIDDEN;

        return ngx_http_certguard_forward_refuse(r, ctx, status,
                                        ngx_certguard_guard_reason(res->rc));
    }

    p = ngx_pnalloc(r->pool, NGX_SOCKADDR_STRLEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->upstream.data = p;
    ctx->upstream.len = ngx_sock_ntop(&res->sockaddr.sockaddr, res->socklen,
                                      p, NGX_SOCKADDR_STRLEN, 1);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "certguard forward: \"%V\" is %V",
                   &ctx->host, &ctx->upstream);

    ctx->done = 1;
    ctx->status = NGX_DECLINED;

    return NGX_DECLINED;
}


/*
 * A refusal: an error-log line, a CEF record of its own class, and the
 * response, sent here and not left to the access phase, where "satisfy
 * any" would let another module's "allow" override a 403.  Returns
 * NGX_DONE for the handler to return.
 */

static ngx_int_t
ngx_http_certguard_forward_refuse(ngx_http_request_t *r,
    ngx_http_certguard_forward_ctx_t *ctx, ngx_uint_t status,
    const char *reason)
{
    u_char                    *p;
    ngx_int_t                  rc;
    ngx_str_t                  type = ngx_string("text/plain");
    ngx_uint_t                 count, suppressed;
    ngx_table_elt_t           *h;
    ngx_certguard_conf_t      *cgcf;
    ngx_http_complex_value_t   cv;

    ctx->done = 1;
    ctx->status = NGX_DONE;

    cgcf = ngx_http_get_module_loc_conf(r, ngx_http_certguard_module);

    ngx_certguard_metrics_refusal(reason);

    count = 1;

    if (status == NGX_HTTP_CERTGUARD_PROXY_AUTH) {

        /* a client without credentials is asked for them: only a wrong
         * or malformed answer is a failure worth a record */

        if (ngx_strcmp(reason, "auth_missing") == 0) {
            count = 0;

        } else if (ngx_certguard_auth_log_allowed(&suppressed)) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "certguard: proxy authentication failed (%s)",
                          reason);
            count = 1 + suppressed;

        } else {
            count = 0;
        }

        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Proxy-Authenticate");
        h->value = cgcf->auth->challenge;

        ngx_str_set(&r->headers_out.status_line,
                    "407 Proxy Authentication Required");

    } else {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "certguard: destination \"%V\" refused: %s",
                      ctx->host.len ? &ctx->host : &r->request_line,
                      reason);
    }

    if (count) {
        ngx_http_certguard_forward_log(r, cgcf, ctx, reason, count);
    }

    ngx_memzero(&cv, sizeof(ngx_http_complex_value_t));

    cv.value.len = sizeof("certguard: refused (") - 1 + ngx_strlen(reason)
                   + sizeof(")\n") - 1;
    cv.value.data = ngx_pnalloc(r->pool, cv.value.len);
    if (cv.value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(cv.value.data, "certguard: refused (%s)\n", reason);
    cv.value.len = p - cv.value.data;

    rc = ngx_http_send_response(r, status, &type, &cv);

    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}


static void
ngx_http_certguard_forward_log(ngx_http_request_t *r,
    ngx_certguard_conf_t *cgcf, ngx_http_certguard_forward_ctx_t *ctx,
    const char *reason, ngx_uint_t count)
{
    size_t       n;
    u_char       src[NGX_SOCKADDR_STRLEN + 1];
    u_char       dhost[NGX_HTTP_CERTGUARD_HOST_MAX + 1];
    u_char       user[256];
    u_char       method[32], agent[256], request[512], host[256];
    u_char       id[17];
    ngx_str_t    target;
    ngx_time_t  *tp;
    cg_event_t   ev;

    if (cgcf->log == NULL) {
        return;
    }

    ngx_memzero(&ev, sizeof(cg_event_t));

    n = ngx_sock_ntop(r->connection->sockaddr, r->connection->socklen,
                      src, NGX_SOCKADDR_STRLEN, 0);
    src[n] = '\0';
    ev.src_addr = (const char *) src;
    ev.src_port = ngx_inet_get_port(r->connection->sockaddr);

    if (ctx->host.len) {
        (void) ngx_cpystrn(dhost, ctx->host.data, ctx->host.len + 1);
        ev.dhost = (const char *) dhost;
        ev.dst_port = ctx->resolve.port;
    }

    if (ctx->user.len && ctx->user.len < sizeof(user)) {
        (void) ngx_cpystrn(user, ctx->user.data, ctx->user.len + 1);
        ev.user = (const char *) user;
    }

    /*
     * the rest as the HTTP module's verdict records have it; copies cut
     * to the stack are still longer than the record's caps, which mark a
     * value they cut
     */

    if (r->method_name.len) {
        (void) ngx_cpystrn(method, r->method_name.data,
                           ngx_min(r->method_name.len + 1, sizeof(method)));
        ev.method = (const char *) method;
    }

    if (r->headers_in.user_agent && r->headers_in.user_agent->value.len) {
        (void) ngx_cpystrn(agent, r->headers_in.user_agent->value.data,
                           ngx_min(r->headers_in.user_agent->value.len + 1,
                                   sizeof(agent)));
        ev.user_agent = (const char *) agent;
    }

    /* the target as the client wrote it: the absolute URI, not its path */

    target = r->unparsed_uri;

    if (r->schema_start && r->uri_end > r->schema_start) {
        target.data = r->schema_start;
        target.len = r->uri_end - r->schema_start;
    }

    if (target.len) {
        (void) ngx_cpystrn(request, target.data,
                           ngx_min(target.len + 1, sizeof(request)));
        ev.request = (const char *) request;
    }

    if (ngx_cycle->hostname.len) {
        (void) ngx_cpystrn(host, ngx_cycle->hostname.data,
                           ngx_min(ngx_cycle->hostname.len + 1,
                                   sizeof(host)));
        ev.dvchost = (const char *) host;
    }

    ngx_certguard_conn_id(r->connection, id);
    ev.conn_id = (const char *) id;
    ev.keep_query = cgcf->log->keep_query;

    tp = ngx_timeofday();
    ev.rt_ms = (int64_t) tp->sec * 1000 + tp->msec;

    ngx_certguard_log_refusal(cgcf->log, r->connection->log, &ev, reason,
                              count);
}


static void
ngx_http_certguard_forward_cleanup(void *data)
{
    ngx_http_certguard_forward_ctx_t  *ctx = data;

    if (ctx->resolving) {
        ngx_certguard_resolve_cancel(&ctx->resolve);
        ctx->resolving = 0;
    }
}


/*
 * nginx's header list cannot lose an element; renaming it to a header the
 * proxy module always drops (it sends Keep-Alive only when configured to)
 * keeps it from the destination whatever proxy_set_header says of the
 * others.
 */

static void
ngx_http_certguard_forward_hide(ngx_http_request_t *r, ngx_table_elt_t *h)
{
    if (h == NULL) {
        return;
    }

    ngx_explicit_memzero(h->value.data, h->value.len);
    h->value.len = 0;

    ngx_str_set(&h->key, "Keep-Alive");
    h->lowcase_key = (u_char *) "keep-alive";
    h->hash = ngx_hash_key(h->lowcase_key, h->key.len);
}


static ngx_table_elt_t *
ngx_http_certguard_forward_header(ngx_http_request_t *r, const char *name,
    size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncmp(h[i].lowcase_key, name, len) == 0)
        {
            return &h[i];
        }
    }
}


ngx_int_t
ngx_http_certguard_forward_user(ngx_http_request_t *r, ngx_str_t *user)
{
    ngx_http_certguard_forward_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_certguard_forward_module);

    if (ctx == NULL || !ctx->authenticated) {
        ngx_str_null(user);
        return NGX_DECLINED;
    }

    *user = ctx->user;

    return NGX_OK;
}


static ngx_int_t
ngx_http_certguard_forward_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                         *s;
    ngx_http_certguard_forward_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_certguard_forward_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_CERTGUARD_FWD_UPSTREAM:
        s = &ctx->upstream;
        break;

    case NGX_HTTP_CERTGUARD_FWD_HOST:
        s = &ctx->host;
        break;

    case NGX_HTTP_CERTGUARD_FWD_AUTHORITY:
        s = &ctx->authority;
        break;

    default: /* NGX_HTTP_CERTGUARD_FWD_USER */
        if (!ctx->authenticated) {
            v->not_found = 1;
            return NGX_OK;
        }

        s = &ctx->user;
        break;
    }

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_certguard_forward_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_certguard_forward_vars; v->name.len; v++) {
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
ngx_http_certguard_forward_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_certguard_forward_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_certguard_forward_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->enable = NGX_CONF_UNSET;
    conf->ports = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_certguard_forward_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_certguard_forward_loc_conf_t  *prev = parent;
    ngx_http_certguard_forward_loc_conf_t  *conf = child;

    static in_port_t  http_ports[] = { 80, 443 };

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_ptr_value(conf->ports, prev->ports, NULL);

    if (conf->ports == NULL) {
        conf->ports = ngx_certguard_guard_default_ports(cf, http_ports, 2);
        if (conf->ports == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->enable && ngx_certguard_guard_init(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_certguard_forward_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_certguard_forward_handler;

    return NGX_OK;
}
