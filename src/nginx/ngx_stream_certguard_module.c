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
 * TLS handshake of the proxy's own, with the same SNI, whose certificate
 * chain the engine scores.  Concurrent sessions of a worker that need the
 * same probe wait on one; verdicts are cached in a shared zone.  Only then
 * does the session go on to the content phase, where
 * "proxy_pass $certguard_upstream;" connects to the very address that was
 * probed.  Blocked sessions end before the destination sees a client byte.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include "ngx_stream_certguard_module.h"


static ngx_int_t ngx_stream_certguard_variable(ngx_stream_session_t *s,
    ngx_stream_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_stream_certguard_upstream_variable(
    ngx_stream_session_t *s, ngx_stream_variable_value_t *v, uintptr_t data);

static ngx_int_t ngx_stream_certguard_add_variables(ngx_conf_t *cf);
static void *ngx_stream_certguard_create_main_conf(ngx_conf_t *cf);
static void *ngx_stream_certguard_create_srv_conf(ngx_conf_t *cf);
static char *ngx_stream_certguard_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_stream_certguard_init(ngx_conf_t *cf);
static char *ngx_stream_certguard_ports(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_certguard_cidrs(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_certguard_policy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_certguard_trusted(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_certguard_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_stream_certguard_log(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_conf_enum_t  ngx_stream_certguard_modes[] = {
    { ngx_string("enforce"), NGX_STREAM_CERTGUARD_ENFORCE },
    { ngx_string("monitor"), NGX_STREAM_CERTGUARD_MONITOR },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_stream_certguard_failures[] = {
    { ngx_string("allow"), NGX_STREAM_CERTGUARD_FAILURE_ALLOW },
    { ngx_string("block"), NGX_STREAM_CERTGUARD_FAILURE_BLOCK },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_stream_certguard_commands[] = {

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
      ngx_stream_certguard_ports,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_connect_allow"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_1MORE,
      ngx_stream_certguard_cidrs,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, allow),
      NULL },

    { ngx_string("certguard_connect_deny"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_1MORE,
      ngx_stream_certguard_cidrs,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, deny),
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

    { ngx_string("certguard_mode"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, mode),
      &ngx_stream_certguard_modes },

    { ngx_string("certguard_policy"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_certguard_policy,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_trusted_certificate"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_stream_certguard_trusted,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_geoip_country"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, geoip_country),
      NULL },

    { ngx_string("certguard_geoip_asn"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_STREAM_SRV_CONF_OFFSET,
      offsetof(ngx_stream_certguard_srv_conf_t, geoip_asn),
      NULL },

    { ngx_string("certguard_cache"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE12,
      ngx_stream_certguard_cache,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("certguard_log"),
      NGX_STREAM_MAIN_CONF|NGX_STREAM_SRV_CONF|NGX_CONF_TAKE12,
      ngx_stream_certguard_log,
      NGX_STREAM_SRV_CONF_OFFSET,
      0,
      NULL },

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
    NULL,                                   /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    NULL,                                   /* exit process */
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
     *     cgmcf->default_trust = NULL;
     */

    ngx_queue_init(&cgmcf->probes);

    if (ngx_stream_certguard_init_addresses(cf, cgmcf) != NGX_OK) {
        return NULL;
    }

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

    /*
     * set by ngx_pcalloc():
     *
     *     conf->geoip = NULL;
     *     conf->geoip_country = { 0, NULL };
     *     conf->geoip_asn = { 0, NULL };
     */

    conf->connect = NGX_CONF_UNSET;
    conf->probe = NGX_CONF_UNSET;
    conf->connect_sni = NGX_CONF_UNSET;
    conf->probe_port = NGX_CONF_UNSET_UINT;
    conf->ports = NGX_CONF_UNSET_PTR;
    conf->allow = NGX_CONF_UNSET_PTR;
    conf->deny = NGX_CONF_UNSET_PTR;
    conf->probe_timeout = NGX_CONF_UNSET_MSEC;
    conf->probe_failure = NGX_CONF_UNSET_UINT;
    conf->mode = NGX_CONF_UNSET_UINT;
    conf->policy = NGX_CONF_UNSET_PTR;
    conf->trust = NGX_CONF_UNSET_PTR;
    conf->cache.shm_zone = NGX_CONF_UNSET_PTR;
    conf->cache.valid = NGX_CONF_UNSET;
    conf->log = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_stream_certguard_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_stream_certguard_srv_conf_t  *prev = parent;
    ngx_stream_certguard_srv_conf_t  *conf = child;

    ngx_stream_certguard_ports_t      *range;
    ngx_stream_certguard_main_conf_t  *cgmcf;

    ngx_conf_merge_value(conf->connect, prev->connect, 0);
    ngx_conf_merge_value(conf->probe, prev->probe, 0);
    ngx_conf_merge_value(conf->connect_sni, prev->connect_sni, 1);
    ngx_conf_merge_uint_value(conf->probe_port, prev->probe_port, 443);
    ngx_conf_merge_ptr_value(conf->ports, prev->ports, NULL);
    ngx_conf_merge_ptr_value(conf->allow, prev->allow, NULL);
    ngx_conf_merge_ptr_value(conf->deny, prev->deny, NULL);
    ngx_conf_merge_msec_value(conf->probe_timeout, prev->probe_timeout, 5000);
    ngx_conf_merge_uint_value(conf->probe_failure, prev->probe_failure,
                              NGX_STREAM_CERTGUARD_FAILURE_BLOCK);
    ngx_conf_merge_uint_value(conf->mode, prev->mode,
                              NGX_STREAM_CERTGUARD_ENFORCE);
    ngx_conf_merge_ptr_value(conf->policy, prev->policy, NULL);
    ngx_conf_merge_ptr_value(conf->trust, prev->trust, NULL);
    ngx_conf_merge_ptr_value(conf->log, prev->log, NULL);
    ngx_conf_merge_ptr_value(conf->cache.shm_zone, prev->cache.shm_zone,
                             NULL);
    ngx_conf_merge_value(conf->cache.valid, prev->cache.valid,
                         NGX_CERTGUARD_CACHE_VALID);
    ngx_conf_merge_str_value(conf->geoip_country, prev->geoip_country, "");
    ngx_conf_merge_str_value(conf->geoip_asn, prev->geoip_asn, "");

    if (conf->probe_port == 0 || conf->probe_port > 65535) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "certguard_probe_port must be 1-65535");
        return NGX_CONF_ERROR;
    }

    if (conf->ports == NULL) {
        /* like Squid's SSL_ports: only HTTPS unless configured */

        conf->ports = ngx_array_create(cf->pool, 1,
                                       sizeof(ngx_stream_certguard_ports_t));
        if (conf->ports == NULL) {
            return NGX_CONF_ERROR;
        }

        range = ngx_array_push(conf->ports);
        if (range == NULL) {
            return NGX_CONF_ERROR;
        }

        range->low = 443;
        range->high = 443;
    }

    if (!conf->connect && !conf->probe) {
        return NGX_CONF_OK;
    }

    if (conf->connect && conf->probe) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"certguard_connect\" and \"certguard_probe\" "
                           "cannot both be on in a server");
        return NGX_CONF_ERROR;
    }

    if (conf->policy == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"certguard_policy\" is required where "
                           "\"certguard_connect\" or \"certguard_probe\" "
                           "is on");
        return NGX_CONF_ERROR;
    }

    cgmcf = ngx_stream_conf_get_module_main_conf(cf,
                                                 ngx_stream_certguard_module);

    if (conf->trust == NULL) {
        if (cgmcf->default_trust == NULL
            && ngx_certguard_trust_conf(cf, NULL, &cgmcf->default_trust)
               != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }

        conf->trust = cgmcf->default_trust;
    }

    if (conf->geoip_country.len || conf->geoip_asn.len) {
        if (prev->geoip
            && ngx_strcmp(conf->geoip_country.data, prev->geoip_country.data)
               == 0
            && ngx_strcmp(conf->geoip_asn.data, prev->geoip_asn.data) == 0)
        {
            conf->geoip = prev->geoip;

        } else if (ngx_certguard_geoip_conf(cf, &conf->geoip_country,
                                            &conf->geoip_asn, &conf->geoip)
                   != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (cgmcf->ssl == NULL) {
        cgmcf->ssl = ngx_certguard_probe_ssl(cf);
        if (cgmcf->ssl == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_stream_certguard_init(ngx_conf_t *cf)
{
    ngx_stream_handler_pt        *h;
    ngx_stream_core_main_conf_t  *cmcf;

    cmcf = ngx_stream_conf_get_module_main_conf(cf, ngx_stream_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_STREAM_PREREAD_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_stream_certguard_preread_handler;

    h = ngx_array_push(&cmcf->phases[NGX_STREAM_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_stream_certguard_log_handler;

    return NGX_OK;
}


static char *
ngx_stream_certguard_ports(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_certguard_srv_conf_t  *cgscf = conf;

    u_char                        *dash;
    ngx_int_t                      low, high;
    ngx_str_t                     *value;
    ngx_uint_t                     i;
    ngx_stream_certguard_ports_t  *range;

    if (cgscf->ports != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    cgscf->ports = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                    sizeof(ngx_stream_certguard_ports_t));
    if (cgscf->ports == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        dash = ngx_strlchr(value[i].data, value[i].data + value[i].len, '-');

        if (dash) {
            low = ngx_atoi(value[i].data, dash - value[i].data);
            high = ngx_atoi(dash + 1, value[i].data + value[i].len - dash - 1);

        } else {
            low = ngx_atoi(value[i].data, value[i].len);
            high = low;
        }

        if (low < 1 || high > 65535 || low > high) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid port or range \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        range = ngx_array_push(cgscf->ports);
        if (range == NULL) {
            return NGX_CONF_ERROR;
        }

        range->low = (in_port_t) low;
        range->high = (in_port_t) high;
    }

    return NGX_CONF_OK;
}


static char *
ngx_stream_certguard_cidrs(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_int_t     rc;
    ngx_str_t    *value;
    ngx_uint_t    i;
    ngx_cidr_t   *cidr;
    ngx_array_t **a;

    a = (ngx_array_t **) (p + cmd->offset);

    if (*a == NGX_CONF_UNSET_PTR) {
        *a = ngx_array_create(cf->pool, 4, sizeof(ngx_cidr_t));
        if (*a == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        cidr = ngx_array_push(*a);
        if (cidr == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_strcmp(value[i].data, "all") == 0) {
            ngx_str_t  any = ngx_string("0.0.0.0/0");

            (void) ngx_ptocidr(&any, cidr);
#if (NGX_HAVE_INET6)
            cidr = ngx_array_push(*a);
            if (cidr == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_str_set(&any, "::/0");
            (void) ngx_ptocidr(&any, cidr);
#endif
            continue;
        }

        rc = ngx_ptocidr(&value[i], cidr);

        if (rc == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid address or network \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_DONE) {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "low address bits of %V are meaningless",
                               &value[i]);
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_stream_certguard_policy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_certguard_srv_conf_t  *cgscf = conf;

    ngx_str_t  *value;

    if (cgscf->policy != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    return ngx_certguard_policy_conf(cf, &value[1], &cgscf->policy);
}


static char *
ngx_stream_certguard_trusted(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_certguard_srv_conf_t  *cgscf = conf;

    ngx_str_t  *value;

    if (cgscf->trust != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    return ngx_certguard_trust_conf(cf, &value[1], &cgscf->trust);
}


static char *
ngx_stream_certguard_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_certguard_srv_conf_t  *cgscf = conf;

    return ngx_certguard_cache_conf(cf, &ngx_stream_certguard_module,
                                    &cgscf->cache);
}


static char *
ngx_stream_certguard_log(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_stream_certguard_srv_conf_t  *cgscf = conf;

    return ngx_certguard_log_conf(cf, &cgscf->log);
}
