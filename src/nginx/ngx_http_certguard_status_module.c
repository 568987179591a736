/*
 * ngx_http_certguard_status_module: "certguard_status;" in a location
 * serves the counters of both certguard modules in the Prometheus text
 * exposition format (ngx_certguard_metrics.c).  It lives in the HTTP
 * module's shared object; the stream module's counters are read from its
 * zone by name.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_certguard_metrics.h"


static ngx_int_t ngx_http_certguard_status_handler(ngx_http_request_t *r);
static char *ngx_http_certguard_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_certguard_status_init(ngx_conf_t *cf);


static ngx_command_t  ngx_http_certguard_status_commands[] = {

    { ngx_string("certguard_status"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_certguard_status,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_certguard_status_module_ctx = {
    NULL,                                   /* preconfiguration */
    ngx_http_certguard_status_init,         /* postconfiguration */

    NULL,                                   /* create main configuration */
    NULL,                                   /* init main configuration */

    NULL,                                   /* create server configuration */
    NULL,                                   /* merge server configuration */

    NULL,                                   /* create location configuration */
    NULL                                    /* merge location configuration */
};


ngx_module_t  ngx_http_certguard_status_module = {
    NGX_MODULE_V1,
    &ngx_http_certguard_status_module_ctx,  /* module context */
    ngx_http_certguard_status_commands,     /* module directives */
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


static ngx_int_t
ngx_http_certguard_status_handler(ngx_http_request_t *r)
{
    ngx_int_t     rc;
    ngx_chain_t  *out;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    out = ngx_certguard_metrics_page(r->pool, (ngx_cycle_t *) ngx_cycle);
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = out->buf->last - out->buf->pos;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, out);
}


static char *
ngx_http_certguard_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_certguard_status_handler;

    return NGX_CONF_OK;
}


/* The HTTP module's counters exist whenever the module is loaded, so a
 * status page shows zeros, not nothing, before the first verdict. */

static ngx_int_t
ngx_http_certguard_status_init(ngx_conf_t *cf)
{
    return ngx_certguard_metrics_conf(cf, "http");
}
