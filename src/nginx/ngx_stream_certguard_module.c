/*
 * ngx_stream_certguard_module: certificate probes for HTTPS egress that
 * nginx's HTTP module never sees.
 *
 * Two front ends in a preread-phase handler:
 *   certguard_connect on;  the client's "CONNECT host:port" request is read
 *                          from the preread buffer and answered here;
 *   certguard_probe on;    SNI passthrough: the destination is the name in
 *                          the client's ClientHello.
 * Both then resolve the destination, refuse ports and addresses that would
 * make the proxy an open relay, and probe the destination: an asynchronous
 * TLS handshake of the proxy's own, with the SNI and parameters of the
 * client's ClientHello (a CONNECT is answered first to get it), whose
 * certificate chain the engine scores.  Concurrent sessions that need the
 * same probe wait on one; verdicts are cached in a shared zone.  Only then
 * does the session go on to the content phase, where
 * "proxy_pass $certguard_upstream;" connects to the very address that was
 * probed.  Blocked sessions end before the destination sees a client byte;
 * a stream filter compares the certificate of a TLS 1.2 tunnel with the
 * probed one.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include "ngx_stream_certguard_module.h"
#include "ngx_certguard_metrics.h"
#include "ngx_certguard_memo.h"


static ngx_int_t ngx_stream_certguard_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_certguard_upstream_variable(
    ngx_stream_session_t *s, ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_certguard_user_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_stream_certguard_add_variables(ngx_conf_t *cf);
static void *ngx_stream_certguard_create_main_conf(ngx_conf_t *cf);
static void *ngx_stream_certguard_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_certguard_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_stream_certguard_init(ngx_conf_t *cf);
static char *ngx_stream_certguard_http_pass(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);


static ngx_conf_enum_t  ngx_stream_certguard_failures[] = {
    { ngx_string("allow"), NGX_STREAM_CERTGUARD_FAILURE_ALLOW },
    { ngx_string("block"), NGX_STREAM_CERTGUARD_FAILURE_BLOCK },
    { ngx_null_string, 0 }
};


static char *ngx_stream_certguard_memory(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_stream_certguard_init_process(ngx_cycle_t *cycle);
static void ngx_stream_certguard_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_stream_certguard_commands[] = {

    { ngx_string("certguard_memory"),
      NGX_STREAM_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_stream_certguard_memory,
      NGX_STREAM_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_verify_memo"),
      NGX_STREAM_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_certguard_memo_set,
      NGX_STREAM_MAIN_CONF_OFFSET,
      offsetof(ngx_stream_certguard_main_conf_t, verify_memo),
      NULL },

    { ngx_string("certguard_capture"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE12,
      ngx_certguard_capture_set,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, capture),
      NULL },

    { ngx_string("certguard_connect"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, connect),
      NULL },

    { ngx_string("certguard_probe"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, probe),
      NULL },

    { ngx_string("certguard_probe_port"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, probe_port),
      NULL },

    { ngx_string("certguard_connect_ports"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_1MORE,
      ngx_certguard_guard_set_ports,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, ports),
      NULL },

    /* the older names of certguard_allow and certguard_deny */

    { ngx_string("certguard_connect_allow"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_1MORE,
      ngx_certguard_guard_set_cidrs,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, common.guard.allow),
      NULL },

    { ngx_string("certguard_connect_deny"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_1MORE,
      ngx_certguard_guard_set_cidrs,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, common.guard.deny),
      NULL },

    { ngx_string("certguard_connect_sni"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, connect_sni),
      NULL },

    { ngx_string("certguard_probe_timeout"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, probe_timeout),
      NULL },

    { ngx_string("certguard_probe_failure"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, probe_failure),
      &ngx_stream_certguard_failures },

    { ngx_string("certguard_probe_limit"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE123,
      ngx_stream_certguard_limit_set,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_http_pass"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_certguard_http_pass,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, http_pass),
      NULL },

    NGX_CERTGUARD_CONF_COMMANDS(NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF,
                                NGX_STREAM_SRV_CONF_OFFSET,
                                ngx_stream_certguard_srv_conf_t,
                                &ngx_stream_certguard_module),

      ngx_null_command
};


static ngx_stream_module_t  ngx_stream_certguard_module_ctx = {
    ngx_stream_certguard_add_variables,     /* preconfiguration */
    ngx_stream_certguard_init,              /* postconfiguration */

    ngx_stream_certguard_create_main_conf,  /* create main configuration */
    NULL,                                   /* init main configuration */

    ngx_stream_certguard_create_srv_conf,   /* create server configuration */
    ngx_stream_certguard_merge_srv_conf     /* merge server configuration */
};


ngx_module_t  ngx_stream_certguard_module = {
    NGX_MODULE_V1,
    &ngx_stream_certguard_module_ctx,       /* module context */
    ngx_stream_certguard_commands,          /* module directives */
    NGX_STREAM_MODULE,                      /* module type */
    NULL,                                   /* init master */
    NULL,                                   /* init module */
    ngx_stream_certguard_init_process,      /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    ngx_stream_certguard_exit_process,      /* exit process */
    NULL,                                   /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_stream_variable_t  ngx_stream_certguard_vars[] = {

    { ngx_string("certguard_verdict"), NULL, ngx_stream_certguard_variable,
      NGX_CERTGUARD_VAR_VERDICT, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_score"), NULL, ngx_stream_certguard_variable,
      NGX_CERTGUARD_VAR_SCORE, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_signals"), NULL, ngx_stream_certguard_variable,
      NGX_CERTGUARD_VAR_SIGNALS, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cert_sha256"), NULL,
      ngx_stream_certguard_variable,
      NGX_CERTGUARD_VAR_SHA256, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cert_subject"), NULL,
      ngx_stream_certguard_variable,
      NGX_CERTGUARD_VAR_SUBJECT, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cert_issuer"), NULL,
      ngx_stream_certguard_variable,
      NGX_CERTGUARD_VAR_ISSUER, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_cef"), NULL, ngx_stream_certguard_variable,
      NGX_CERTGUARD_VAR_CEF, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_upstream"), NULL,
      ngx_stream_certguard_upstream_variable,
      0, NGX_STREAM_VAR_NOCACHEABLE, 0 },

    { ngx_string("certguard_user"), NULL,
      ngx_stream_certguard_user_variable,
      0, NGX_STREAM_VAR_NOCACHEABLE, 0 },

      ngx_stream_null_variable
};


static ngx_int_t
ngx_stream_certguard_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    cg_event_t                   ev;
    ngx_stream_certguard_ctx_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_certguard_module);

    if (ctx == NULL || ctx->result == NULL) {
        return ngx_certguard_variable(s->connection->pool, NULL, NULL,
                                      (ngx_certguard_var_e) data, v);
    }

    ngx_stream_certguard_event(s, ctx, &ev);

    return ngx_certguard_variable(s->connection->pool, ctx->result, &ev,
                                  (ngx_certguard_var_e) data, v);
}


static ngx_int_t
ngx_stream_certguard_upstream_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_stream_certguard_ctx_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_certguard_module);

    if (ctx == NULL || ctx->upstream.len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->len = ctx->upstream.len;
    v->data = ctx->upstream.data;

    return NGX_OK;
}


/* The proxy user, once authenticated (a failed attempt's name is not). */

static ngx_int_t
ngx_stream_certguard_user_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data)
{
    ngx_stream_certguard_ctx_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_certguard_module);

    if (ctx == NULL || !ctx->authenticated) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->len = ctx->user.len;
    v->data = ctx->user.data;

    return NGX_OK;
}


static ngx_int_t
ngx_stream_certguard_add_variables(ngx_conf_t *cf)
{
    ngx_stream_variable_t  *var, *v;

    for (v = ngx_stream_certguard_vars; v->name.len; v++) {
        var = ngx_stream_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_stream_certguard_create_main_conf(ngx_conf_t *cf)
{
    ngx_stream_certguard_main_conf_t  *cgmcf;

    cgmcf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_certguard_main_conf_t));
    if (cgmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     cgmcf->ssl = NULL;
     */

    ngx_queue_init(&cgmcf->probes);
    ngx_stream_certguard_limit_init(cgmcf);

    return cgmcf;
}


static void *
ngx_stream_certguard_create_srv_conf(ngx_conf_t *cf)
{
    ngx_stream_certguard_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_stream_certguard_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    ngx_certguard_conf_init(&conf->common);
    ngx_certguard_capture_init(&conf->capture);

    conf->connect = NGX_CONF_UNSET;
    conf->probe = NGX_CONF_UNSET;
    conf->connect_sni = NGX_CONF_UNSET;
    conf->probe_port = NGX_CONF_UNSET_UINT;
    conf->ports = NGX_CONF_UNSET_PTR;
    conf->probe_timeout = NGX_CONF_UNSET_MSEC;
    conf->probe_failure = NGX_CONF_UNSET_UINT;
    conf->probe_limit = NGX_CONF_UNSET_UINT;
    conf->probe_rate = NGX_CONF_UNSET_UINT;
    conf->probe_wait = NGX_CONF_UNSET_MSEC;

    return conf;
}


static char *
ngx_stream_certguard_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_stream_certguard_srv_conf_t  *prev = parent;
    ngx_stream_certguard_srv_conf_t  *conf = child;

    ngx_uint_t                         active;
    ngx_stream_certguard_main_conf_t  *cgmcf;

    /* like Squid's SSL_ports: only HTTPS unless configured */
    static in_port_t  https_ports[] = { 443 };

    ngx_certguard_capture_merge(&prev->capture, &conf->capture);
    ngx_conf_merge_value(conf->connect, prev->connect, 0);
    ngx_conf_merge_value(conf->probe, prev->probe, 0);
    ngx_conf_merge_value(conf->connect_sni, prev->connect_sni, 1);
    ngx_conf_merge_uint_value(conf->probe_port, prev->probe_port, 443);
    ngx_conf_merge_ptr_value(conf->ports, prev->ports, NULL);
    ngx_conf_merge_msec_value(conf->probe_timeout, prev->probe_timeout, 5000);
    ngx_conf_merge_uint_value(conf->probe_failure, prev->probe_failure,
                              NGX_STREAM_CERTGUARD_FAILURE_BLOCK);
    ngx_conf_merge_str_value(conf->http_pass, prev->http_pass, "");
    ngx_conf_merge_uint_value(conf->probe_limit, prev->probe_limit, 0);
    ngx_conf_merge_uint_value(conf->probe_rate, prev->probe_rate, 0);
    ngx_conf_merge_msec_value(conf->probe_wait, prev->probe_wait, 0);

    if (conf->probe_port == 0 || conf->probe_port > 65535) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "certguard_probe_port must be 1-65535");
        return NGX_CONF_ERROR;
    }

    if (conf->ports == NULL) {
        conf->ports = ngx_certguard_guard_default_ports(cf, https_ports, 1);
        if (conf->ports == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->connect && conf->probe) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"certguard_connect\" and \"certguard_probe\" "
                           "cannot both be on in a server");
        return NGX_CONF_ERROR;
    }

    active = conf->connect || conf->probe;

    if (ngx_certguard_conf_merge(cf, &prev->common, &conf->common, active,
                                 conf->probe ? "certguard_probe"
                                             : "certguard_connect")
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (!active) {
        return NGX_CONF_OK;
    }

    if (ngx_certguard_guard_init(cf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cgmcf = ngx_stream_conf_get_module_main_conf(cf,
                                                 ngx_stream_certguard_module);

    if (cgmcf->ssl == NULL) {
        cgmcf->ssl = ngx_certguard_probe_ssl(cf);
        if (cgmcf->ssl == NULL) {
            return NGX_CONF_ERROR;
        }

        /*
         * OpenSSL parses every certificate of the server's Certificate
         * message (about 0.1 ms each in OpenSSL 3.0) before any callback:
         * past this many bytes the probe fails unread instead.  Public
         * chains take 3 to 8 KB, one of 1,000 SANs 30 KB.
         */
        SSL_CTX_set_max_cert_list(cgmcf->ssl->ctx,
                                  NGX_CERTGUARD_CERT_LIST_MAX);
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_stream_certguard_init(ngx_conf_t *cf)
{
    ngx_stream_handler_pt             *h;
    ngx_stream_core_main_conf_t       *cmcf;
    ngx_stream_certguard_main_conf_t  *cgmcf;

    cmcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_STREAM_PREREAD_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_stream_certguard_preread_handler;

    if (ngx_certguard_metrics_conf(cf, "stream") != NGX_OK) {
        return NGX_ERROR;
    }

    cgmcf = ngx_stream_conf_get_module_main_conf(cf,
                                                 ngx_stream_certguard_module);

    if (ngx_certguard_memo_conf(cf, &cgmcf->verify_memo, "stream") != NGX_OK)
    {
        return NGX_ERROR;
    }

    h = ngx_array_push(&cmcf->phases[NGX_STREAM_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_stream_certguard_log_handler;

    return ngx_stream_certguard_tunnel_init(cf);
}


/*
 * "certguard_http_pass unix:/run/certguard/http.sock | 127.0.0.1:8080 |
 * off;": an address, not a name, as proxy_pass $certguard_upstream takes
 * it without a resolver.
 */

static char *
ngx_stream_certguard_http_pass(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_str_t  *field = (ngx_str_t *) ((char *) conf + cmd->offset);

    ngx_str_t  *value;
    ngx_url_t   u;

    if (field->data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(field, "");
        return NGX_CONF_OK;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = value[1];
    u.no_resolve = 1;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%s in \"%V\"",
                           u.err ? u.err : "invalid address", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0 || (u.family != AF_UNIX && u.no_port)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is no address with a port or unix: "
                           "path", &value[1]);
        return NGX_CONF_ERROR;
    }

    *field = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_stream_certguard_memory(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_certguard_main_conf_t  *cgmcf = conf;

    if (cgmcf->memory) {
        return "is duplicate";
    }

    return ngx_certguard_memory_conf(cf, &cgmcf->memory);
}


/* The memory is opened by each worker: an LMDB handle must not cross a
 * fork. */

static ngx_int_t
ngx_stream_certguard_init_process(ngx_cycle_t *cycle)
{
    (void) ngx_certguard_memo_init_process(cycle, "stream");

    return ngx_certguard_memory_init_process(cycle);
}


static void
ngx_stream_certguard_exit_process(ngx_cycle_t *cycle)
{
    ngx_certguard_memory_exit_process(cycle);
    ngx_certguard_certs_exit_process();
}
