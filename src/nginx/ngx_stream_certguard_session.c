/*
 * ngx_stream_certguard_module: a session's way through the preread phase,
 * from the CONNECT request (or the ClientHello) to the verdict, the answer
 * to the client and the CEF record.
 *
 * With certguard_connect_sni (the default) a CONNECT is answered 200 once
 * the guards pass, and the probe waits for the client's ClientHello, whose
 * SNI and parameters it sends as its own: a destination cannot show the
 * probe one certificate and the client another by what the client offers.
 * A destination already known to show a blocked certificate (from the
 * cache) is refused with 403 before that; a tunnel refused after the 200
 * gets a TLS alert.  Without certguard_connect_sni, the probe runs with
 * OpenSSL's defaults before the answer, which is then 200 or 403.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include "ngx_stream_certguard_module.h"
#include "ngx_certguard_metrics.h"


/* bytes a refused client may still send us before the close, and the
 * longest it may take: then the answer is read, not lost to a reset */
#define NGX_STREAM_CERTGUARD_LINGER_BYTES   (1024 * 1024)
#define NGX_STREAM_CERTGUARD_LINGER_TIME    5000

/* bytes of a key that stand for the configuration */
#define NGX_STREAM_CERTGUARD_PREFIX_LEN     16


static ngx_int_t ngx_stream_certguard_step(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_address(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_key_prefix(
    ngx_stream_certguard_srv_conf_t *cgscf);
static ngx_int_t ngx_stream_certguard_answer(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_hello(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_verdict(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_probe(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static void ngx_stream_certguard_probe_handler(
    ngx_certguard_probe_waiter_t *w, cg_result_t *res, const char *failure);
static ngx_int_t ngx_stream_certguard_decide(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static void ngx_stream_certguard_consume(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_refuse(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx);
static ngx_int_t ngx_stream_certguard_refuse_tls(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, ngx_uint_t status);
static ngx_int_t ngx_stream_certguard_limited(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, ngx_uint_t log, ngx_uint_t suppressed);
static ngx_uint_t ngx_stream_certguard_sni_is_host(
    ngx_stream_certguard_ctx_t *ctx);
static void ngx_stream_certguard_linger_handler(ngx_event_t *rev);
static void ngx_stream_certguard_linger_timeout(ngx_event_t *ev);
static void ngx_stream_certguard_resume(ngx_event_t *ev);
static void ngx_stream_certguard_cleanup(void *data);


ngx_int_t
ngx_stream_certguard_preread_handler(ngx_stream_session_t *s)
{
    ngx_int_t                         rc;
    ngx_connection_t                 *c;
    ngx_pool_cleanup_t               *cln;
    ngx_stream_certguard_ctx_t       *ctx;
    ngx_stream_certguard_srv_conf_t  *cgscf;

    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    if (!cgscf->connect && !cgscf->probe) {
        return NGX_DECLINED;
    }

    c = s->connection;

    if (c->type != SOCK_STREAM) {
        return NGX_DECLINED;
    }

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_certguard_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(c->pool, sizeof(ngx_stream_certguard_ctx_t));
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        cln = ngx_pool_cleanup_add(c->pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }

        cln->handler = ngx_stream_certguard_cleanup;
        cln->data = ctx;

        ctx->session = s;
        ctx->state = ngx_stream_certguard_st_read;
        ctx->resume.handler = ngx_stream_certguard_resume;
        ctx->resume.data = s;
        ctx->resume.log = c->log;
        ctx->limit_wait.handler = ngx_stream_certguard_resume;
        ctx->limit_wait.data = s;
        ctx->limit_wait.log = c->log;
        ctx->linger.handler = ngx_stream_certguard_linger_timeout;
        ctx->linger.data = s;
        ctx->linger.log = c->log;

        ngx_stream_set_ctx(s, ctx, ngx_stream_certguard_module);
    }

    /*
     * A client read event may run the phases before a posted resume does
     * (both ready in one iteration): the session then goes on from here,
     * and the resume must not run its phases a second time.
     */

    if (ctx->resume.posted) {
        ngx_delete_posted_event(&ctx->resume);
    }

    /*
     * Resolver and probe callbacks may run from inside this handler (a
     * cached name, a connect() that fails at once): then they only change
     * the state, and the loop in ngx_stream_certguard_step() goes on.
     */

    ctx->in_handler = 1;
    rc = ngx_stream_certguard_step(s, ctx);
    ctx->in_handler = 0;

    return rc;
}




static ngx_int_t
ngx_stream_certguard_step(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    ngx_int_t                         rc;
    ngx_stream_certguard_srv_conf_t  *cgscf;

    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    for ( ;; ) {

        switch (ctx->state) {

        case ngx_stream_certguard_st_read:
            rc = cgscf->connect ? ngx_stream_certguard_read_connect(s, ctx)
                                : ngx_stream_certguard_read_sni(s, ctx);
            if (rc != NGX_OK) {
                return rc;
            }

            ctx->state = ngx_stream_certguard_st_lookup;
            break;

        case ngx_stream_certguard_st_lookup:
            rc = ngx_stream_certguard_lookup(s, ctx);
            if (rc != NGX_OK) {
                return rc;
            }

            break;

        case ngx_stream_certguard_st_resolving:
        case ngx_stream_certguard_st_probing:
            return NGX_DONE;

        case ngx_stream_certguard_st_limited:
            if (ctx->limit_wait.timer_set) {
                return NGX_DONE;
            }

            rc = ngx_stream_certguard_verdict(s, ctx);
            if (rc != NGX_OK) {
                return rc;
            }

            break;

        case ngx_stream_certguard_st_address:
            rc = ngx_stream_certguard_address(s, ctx);
            if (rc != NGX_OK) {
                return rc;
            }

            break;

        case ngx_stream_certguard_st_hello:
            rc = ngx_stream_certguard_hello(s, ctx);
            if (rc != NGX_OK) {
                return rc;
            }

            break;

        case ngx_stream_certguard_st_decided:
        case ngx_stream_certguard_st_refused:
            return ngx_stream_certguard_decide(s, ctx);

        default: /* ngx_stream_certguard_st_done */
            return NGX_DECLINED;
        }
    }
}


/*
 * With the destination's address: its key (configuration, engine objects,
 * name, address:port), then the answer first (certguard_connect_sni) or
 * the verdict first.
 */

static ngx_int_t
ngx_stream_certguard_address(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    u_char                            *p;
    size_t                             len;
    ngx_connection_t                  *c;
    ngx_stream_certguard_srv_conf_t   *cgscf;

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    /* the address once, and "address:port" ("[address]:port") from it,
     * as ngx_sock_ntop() would write it */

    len = ngx_sock_ntop(&ctx->resolve.sockaddr.sockaddr, ctx->resolve.socklen,
                        ctx->addr_only, NGX_SOCKADDR_STRLEN - 1, 0);
    ctx->addr_only[len] = '\0';

    ctx->upstream.data = ngx_pnalloc(c->pool, NGX_SOCKADDR_STRLEN);
    if (ctx->upstream.data == NULL) {
        return NGX_ERROR;
    }

    p = ctx->upstream.data;

    if (ctx->resolve.sockaddr.sockaddr.sa_family == AF_INET6) {
        *p++ = '[';
        p = ngx_cpymem(p, ctx->addr_only, len);
        *p++ = ']';

    } else {
        p = ngx_cpymem(p, ctx->addr_only, len);
    }

    p = ngx_sprintf(p, ":%ui",
                    (ngx_uint_t) ngx_inet_get_port(
                                           &ctx->resolve.sockaddr.sockaddr));
    ctx->upstream.len = p - ctx->upstream.data;

    ngx_log_debug2(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "certguard: destination of %V is %V", &ctx->target,
                   &ctx->upstream);

    /* the key: configuration, engine objects (the same for every session
     * of this server, written once), name and address:port */

    if (cgscf->key_prefix.data == NULL
        && ngx_stream_certguard_key_prefix(cgscf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->dest_key.data = ngx_pnalloc(c->pool, cgscf->key_prefix.len + 1
                                              + ctx->host.len
                                              + ctx->upstream.len);
    if (ctx->dest_key.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(ctx->dest_key.data, cgscf->key_prefix.data,
                   cgscf->key_prefix.len);
    p = ngx_cpymem(p, ctx->host.data, ctx->host.len);
    *p++ = '|';
    p = ngx_cpymem(p, ctx->upstream.data, ctx->upstream.len);
    ctx->dest_key.len = p - ctx->dest_key.data;

    if (cgscf->connect && cgscf->connect_sni) {
        return ngx_stream_certguard_answer(s, ctx);
    }

    return ngx_stream_certguard_verdict(s, ctx);
}


/*
 * The configuration's part of a destination's key: what it names,
 * "generation|policy|trust|geoip|crls|intermediates|zone" (the generation
 * is the zone's of this configuration), is fixed for the cycle, so it is
 * made once per worker, on its first session.  Its SHA-256, cut to 16
 * bytes, stands for it: two configurations sharing a zone still differ,
 * and the key the cache hashes for every tunnel is short (one SHA-256
 * block for most names, not three).
 */

static ngx_int_t
ngx_stream_certguard_key_prefix(ngx_stream_certguard_srv_conf_t *cgscf)
{
    u_char  *p, *last;
    u_char   md[32];
    u_char   buf[NGX_INT_T_LEN + 6 * (NGX_PTR_SIZE * 2 + 1)];

    last = ngx_snprintf(buf, sizeof(buf), "%ui|%p|%p|%p|%p|%p|%p",
                        ngx_certguard_cache_generation(&cgscf->common.cache),
                        cgscf->common.policy, cgscf->common.trust,
                        cgscf->common.geoip, cgscf->common.crls,
                        cgscf->common.intermediates,
                        cgscf->common.cache.shm_zone);

    if (ngx_certguard_sha256(buf, last - buf, md) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(ngx_cycle->pool, NGX_STREAM_CERTGUARD_PREFIX_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, md, NGX_STREAM_CERTGUARD_PREFIX_LEN);

    cgscf->key_prefix.len = NGX_STREAM_CERTGUARD_PREFIX_LEN;
    cgscf->key_prefix.data = p;

    return NGX_OK;
}


/*
 * The answer before the verdict: 403 at once for a destination the cache
 * knows to show a blocked certificate (the key without a client's
 * parameters holds blocks of probes that sent its name, and the verdicts
 * of probes with OpenSSL's defaults); else 200, and the tunnel's
 * ClientHello is awaited.
 */

static ngx_int_t
ngx_stream_certguard_answer(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    ngx_int_t                         rc;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cgscf;

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    if (cgscf->common.mode == NGX_CERTGUARD_ENFORCE) {
        ctx->result = ngx_palloc(c->pool, sizeof(cg_result_t));
        if (ctx->result == NULL) {
            return NGX_ERROR;
        }

        rc = ngx_certguard_cache_get(&cgscf->common.cache, &ctx->dest_key,
                                     ctx->result);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK && ctx->result->verdict == CG_BLOCK) {
            ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                           "certguard: %V is known to show a blocked "
                           "certificate", &ctx->upstream);
            ngx_certguard_metrics_cache(1);
            ctx->cached = 1;
            ctx->state = ngx_stream_certguard_st_decided;
            return NGX_OK;
        }

        ctx->result = NULL;
    }

    if (ngx_stream_certguard_respond(s, NGX_STREAM_OK, NULL, 0)
        != NGX_STREAM_OK)
    {
        return NGX_STREAM_OK;           /* the client is gone */
    }

    ctx->answered = 1;
    ngx_stream_certguard_consume(s, ctx);

    ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "certguard: CONNECT answered, waiting for the "
                   "ClientHello");

    ctx->state = ngx_stream_certguard_st_hello;

    return NGX_OK;
}


/*
 * Inside the tunnel: the client's ClientHello, whose SNI and parameters the
 * probe copies.  An SNI other than the CONNECT host (domain fronting) is
 * scored as client_sni, which fires sni_mismatch, as does a TLS ClientHello
 * the parser refuses (then probed with OpenSSL's defaults).  A client that
 * speaks no TLS has its destination probed with the defaults.  One larger
 * than the preread buffer cannot be copied: refused.
 */

static ngx_int_t
ngx_stream_certguard_hello(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    ngx_int_t          rc;
    ngx_connection_t  *c;

    c = s->connection;

    rc = ngx_stream_certguard_read_hello(s, ctx);

    switch (rc) {

    case NGX_OK:
        break;

    case NGX_AGAIN:
    case NGX_ERROR:
        return rc;

    case NGX_ABORT:
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "certguard: ClientHello in the tunnel to \"%V\" larger "
                      "than preread_buffer_size", &ctx->target);
        ngx_stream_certguard_log_refusal(s, ctx, "malformed", 1);
        ctx->state = ngx_stream_certguard_st_done;
        return ngx_stream_certguard_refuse_tls(s, ctx,
                                               NGX_STREAM_BAD_REQUEST);

    case NGX_BUSY:

        /* it does not name the CONNECT host, so it counts as a mismatch */

        ngx_cpystrn((u_char *) ctx->client_sni,
                    (u_char *) "(malformed ClientHello)",
                    sizeof(ctx->client_sni));
        break;

    default: /* NGX_DECLINED */
        ctx->client_sni[0] = '\0';
    }

    ngx_log_debug2(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "certguard: client SNI \"%s\" in the tunnel to %V",
                   ctx->client_sni, &ctx->target);

    return ngx_stream_certguard_verdict(s, ctx);
}


/*
 * The verdict for this destination and, with a ClientHello, this client's
 * parameters (ngx_certguard_probe_hello_id(): what the probe sends and
 * scores), from the cache or a probe.
 */

static ngx_int_t
ngx_stream_certguard_verdict(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    u_char                           *p;
    const char                       *client_sni;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cgscf;
    u_char                            id[33];

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    client_sni = (cgscf->connect && ctx->client_sni[0]) ? ctx->client_sni
                                                         : NULL;

    if (ctx->state == ngx_stream_certguard_st_limited) {
        /* looked at again after a wait for a probe slot: the same key */

    } else if (ctx->hello == NULL && client_sni == NULL) {
        ctx->key = ctx->dest_key;

    } else {
        ngx_certguard_probe_hello_id(ctx->hello, client_sni, id);

        ctx->key.data = ngx_pnalloc(c->pool, ctx->dest_key.len + 1 + 32);
        if (ctx->key.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(ctx->key.data, ctx->dest_key.data, ctx->dest_key.len);
        *p++ = '|';
        p = ngx_cpymem(p, id, 32);
        ctx->key.len = p - ctx->key.data;
    }

    if (ctx->lookup == NULL) {
        ctx->lookup = ngx_palloc(c->pool, sizeof(cg_result_t));
        if (ctx->lookup == NULL) {
            return NGX_ERROR;
        }
    }

    ctx->result = ctx->lookup;

    switch (ngx_certguard_cache_get(&cgscf->common.cache, &ctx->key,
                                    ctx->result))
    {
    case NGX_OK:
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "certguard: cached verdict for %V", &ctx->upstream);
        ngx_certguard_metrics_cache(1);
        ctx->cached = 1;
        ctx->state = ngx_stream_certguard_st_decided;
        return NGX_OK;

    case NGX_ERROR:
        return NGX_ERROR;

    default:
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "certguard: no cached verdict for %V", &ctx->upstream);

        if (cgscf->common.cache.shm_zone) {
            ngx_certguard_metrics_cache(0);
        }

        ctx->result = NULL;
        return ngx_stream_certguard_probe(s, ctx);
    }
}


/*
 * The probe of this key; sessions share it.  A block is marked on the
 * destination's own key too when the probe sent the name the destination
 * is asked for, so that the next client of it is refused at once.
 */

static ngx_int_t
ngx_stream_certguard_probe(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    void                              *slot;
    ngx_int_t                          rc;
    ngx_uint_t                         log, suppressed;
    ngx_msec_int_t                     wait;
    ngx_certguard_probe_params_t       params;
    ngx_stream_certguard_srv_conf_t   *cgscf;
    ngx_stream_certguard_main_conf_t  *cgmcf;

    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);
    cgmcf = ngx_stream_get_module_main_conf(s, ngx_stream_certguard_module);

    slot = NULL;

    /* a new probe takes one of the client's slots until it ends, whether
     * the client waits or not; joining a running one takes none */

    if (cgscf->probe_limit
        && !ngx_certguard_probe_running(&cgmcf->probes, &ctx->key))
    {
        if (!ctx->limit_waited) {
            ctx->limit_waited = 1;
            ctx->limit_until = ngx_current_msec + cgscf->probe_wait;
        }

        wait = (ngx_msec_int_t) (ctx->limit_until - ngx_current_msec);

        rc = ngx_stream_certguard_limit_take(s, wait <= 0, &slot, &log,
                                             &suppressed);

        if (rc == NGX_DECLINED && wait > 0) {

            /* held: looked at again shortly, from the cache first (a
             * probe of another session may have scored it meanwhile) */

            ctx->state = ngx_stream_certguard_st_limited;
            ngx_add_timer(&ctx->limit_wait,
                          ngx_min((ngx_msec_t) wait,
                                  NGX_STREAM_CERTGUARD_LIMIT_LOOK));
            return NGX_OK;
        }

        if (rc == NGX_DECLINED) {
            return ngx_stream_certguard_limited(s, ctx, log, suppressed);
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }
    }

    ngx_memzero(&params, sizeof(ngx_certguard_probe_params_t));

    params.key = ctx->key;
    params.name = ctx->host;
    params.hello = ctx->hello;
    params.client_sni = (cgscf->connect && ctx->client_sni[0])
                        ? ctx->client_sni : NULL;
    params.sockaddr = &ctx->resolve.sockaddr.sockaddr;
    params.socklen = ctx->resolve.socklen;
    params.ssl = cgmcf->ssl;
    params.timeout = cgscf->probe_timeout;
    params.policy = cgscf->common.policy;
    params.trust = cgscf->common.trust;
    params.geoip = cgscf->common.geoip;
    params.crls = cgscf->common.crls;
    params.intermediates = cgscf->common.intermediates;
    params.cache = &cgscf->common.cache;
    params.memory = cgmcf->memory;
    params.capture = &cgscf->capture;
    params.probes = &cgmcf->probes;
    params.log = s->connection->log;

    if (ctx->key.data != ctx->dest_key.data
        && ngx_stream_certguard_sni_is_host(ctx))
    {
        params.mark = ctx->dest_key;
    }

    ctx->waiter.handler = ngx_stream_certguard_probe_handler;
    ctx->waiter.data = ctx;

    if (slot) {
        params.done = ngx_stream_certguard_limit_release;
        params.done_data = slot;
    }

    /* the handler may run inside ngx_certguard_probe_start() */

    ctx->state = ngx_stream_certguard_st_probing;

    rc = ngx_certguard_probe_start(&params, &ctx->waiter);

    if (rc != NGX_OK) {
        ngx_stream_certguard_limit_release(slot);   /* no probe */
    }

    return rc;
}


/*
 * The client is at its certguard_probe_limit: refused before any probe,
 * with 503 before the answer, a TLS alert after it; the error-log line and
 * the CEF record (probe_limit) once a second a client, with the count.
 */

static ngx_int_t
ngx_stream_certguard_limited(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, ngx_uint_t log, ngx_uint_t suppressed)
{
    size_t                            len;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cgscf;

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    /* ngx_stream_certguard_log_refusal() counts those it logs */

    if (!log) {
        ngx_certguard_metrics_refusal("probe_limit");

    } else {
        len = ngx_sock_ntop(c->sockaddr, c->socklen, ctx->client_addr,
                            NGX_SOCKADDR_STRLEN - 1, 0);
        ctx->client_addr[len] = '\0';

        ngx_log_error(NGX_LOG_WARN, c->log, 0,
                      "certguard: client %s over certguard_probe_limit, "
                      "probe of \"%V\" refused (%ui refusals)",
                      ctx->client_addr, &ctx->target, suppressed + 1);

        ngx_stream_certguard_log_refusal(s, ctx, "probe_limit",
                                         suppressed + 1);
    }

    ctx->state = ngx_stream_certguard_st_done;
    ngx_stream_certguard_hello_free(ctx);

    if (cgscf->connect && !ctx->answered) {
        return ngx_stream_certguard_error(s, NGX_STREAM_SERVICE_UNAVAILABLE,
                                          "certguard: too many probes for "
                                          "this client");
    }

    return ngx_stream_certguard_refuse_tls(s, ctx,
                                           NGX_STREAM_SERVICE_UNAVAILABLE);
}


/* The client's SNI is the destination's name: none for an IP literal. */

static ngx_uint_t
ngx_stream_certguard_sni_is_host(ngx_stream_certguard_ctx_t *ctx)
{
    ngx_uint_t  literal;

    if (ctx->hello == NULL) {
        return 0;
    }

    literal = (ctx->resolve.ip_literal != 0);

    if (ctx->hello->sni[0] == '\0') {
        return literal;
    }

    return !literal
           && !cg_sni_mismatch((char *) ctx->host.data, ctx->hello->sni);
}


/* The probe ended: a copy of its result, and the session goes on. */

static void
ngx_stream_certguard_probe_handler(ngx_certguard_probe_waiter_t *w,
    cg_result_t *res, const char *failure)
{
    ngx_pool_t                  *pool;
    ngx_stream_session_t        *s;
    ngx_stream_certguard_ctx_t  *ctx;

    ctx = w->data;
    s = ctx->session;
    pool = s->connection->pool;

    ctx->state = ngx_stream_certguard_st_decided;

    if (failure) {
        ctx->failed = 1;
        ctx->failure = failure;         /* static strings only */

    } else {
        ctx->result = ngx_palloc(pool, sizeof(cg_result_t));

        if (ctx->result == NULL) {
            ctx->failed = 1;
            ctx->failure = "internal error";

        } else {
            ngx_memcpy(ctx->result, res, sizeof(cg_result_t));
        }
    }

    ngx_stream_certguard_wake(s, ctx);
}


/*
 * A result (or a failure) is here: block, or go on to the tunnel.  In
 * state "refused", the destination was refused before any probe (not
 * allowed, not resolved).  A block before the answer is a 403; after it
 * (or in passthrough), a TLS alert.
 */

static ngx_int_t
ngx_stream_certguard_decide(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    u_char                           *p;
    size_t                            n;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cgscf;
    u_char                            reason[256];

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    if (ctx->state == ngx_stream_certguard_st_refused) {
        return ngx_stream_certguard_refuse(s, ctx);
    }

    ctx->state = ngx_stream_certguard_st_done;

    ngx_stream_certguard_hello_free(ctx);

    if (ctx->failed) {

        /*
         * a result of our own, so that logs and variables show the
         * failure; a chain the engine could not evaluate is blocked
         * whatever certguard_probe_failure says (it could be anything)
         */

        ctx->result = ngx_palloc(c->pool, sizeof(cg_result_t));
        if (ctx->result == NULL) {
            return NGX_ERROR;
        }

        if (ctx->failure == ngx_certguard_probe_eval_failed) {
            (void) cg_result_failure(ctx->result, CG_FAILURE_ENGINE,
                                     CG_BLOCK, (char *) ctx->host.data,
                                     ctx->failure);

        } else {
            (void) cg_result_failure(ctx->result, CG_FAILURE_PROBE,
                  (cgscf->probe_failure == NGX_STREAM_CERTGUARD_FAILURE_BLOCK)
                  ? CG_BLOCK : CG_ALLOW,
                  (char *) ctx->host.data, ctx->failure);
        }
    }

    ctx->blocked = (ctx->result->verdict == CG_BLOCK
                    && cgscf->common.mode == NGX_CERTGUARD_ENFORCE);

    ngx_log_debug4(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "certguard: verdict %s, score %d, for %V%s",
                   cg_verdict_name(ctx->result->verdict), ctx->result->score,
                   &ctx->target, ctx->failed ? " (probe failed)" : "");

    if (ctx->blocked) {
        ngx_stream_certguard_log_result(s, ctx);

        if (ctx->answered || !cgscf->connect) {
            return ngx_stream_certguard_refuse_tls(s, ctx,
                                                   NGX_STREAM_FORBIDDEN);
        }

        if (ctx->failed) {
            p = ngx_snprintf(reason, sizeof(reason) - 1,
                             "certguard: probe failed: %s", ctx->failure);

        } else {
            p = ngx_cpymem(reason, "certguard: certificate blocked: ",
                           sizeof("certguard: certificate blocked: ") - 1);
            n = cg_format_signal_ids(ctx->result, (char *) p,
                                     reason + sizeof(reason) - p);
            p += ngx_min(n, (size_t) (reason + sizeof(reason) - p - 1));
        }

        return ngx_stream_certguard_respond(s, NGX_STREAM_FORBIDDEN,
                                            (char *) reason, p - reason);
    }

    if (cgscf->connect && !ctx->answered) {

        /* certguard_connect_sni off: the answer after the verdict */

        if (ngx_stream_certguard_respond(s, NGX_STREAM_OK, NULL, 0)
            != NGX_STREAM_OK)
        {
            return NGX_STREAM_OK;       /* the client is gone */
        }

        ctx->answered = 1;
        ngx_stream_certguard_consume(s, ctx);
    }

    ngx_stream_certguard_log_result(s, ctx);

    /* with TLS 1.2 or older the tunnel shows the certificate the client
     * gets: it must be the one scored (ngx_stream_certguard_tunnel.c) */

    ctx->inspect = (ctx->tls && !ctx->failed
                    && ctx->result->sha256[0] != '\0');

    ngx_log_debug2(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "certguard: tunnel to %V open, verdict %s",
                   &ctx->upstream, cg_verdict_name(ctx->result->verdict));

    return NGX_DECLINED;
}


/* The tunnel starts after the CONNECT request. */

static void
ngx_stream_certguard_consume(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    ngx_buf_t  *b;

    b = s->connection->buffer;
    b->pos += ctx->request.header_end;

    if (b->pos == b->last) {
        b->pos = b->start;
        b->last = b->start;
    }
}


/* The guards refused the destination before any probe. */

static ngx_int_t
ngx_stream_certguard_refuse(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    ngx_connection_t       *c;
    ngx_certguard_guard_e   rc;

    c = s->connection;
    rc = ctx->resolve.rc;

    ngx_log_error(NGX_LOG_ERR, c->log, 0,
                  "certguard: destination \"%V\" refused: %s",
                  &ctx->target, ngx_certguard_guard_reason(rc));

    ngx_stream_certguard_log_refusal(s, ctx, ngx_certguard_guard_reason(rc),
                                     1);

    switch (rc) {

    case NGX_CERTGUARD_GUARD_PORT:
        return ngx_stream_certguard_error(s, NGX_STREAM_FORBIDDEN,
                                          "port not allowed");

    case NGX_CERTGUARD_GUARD_RESOLVE:
        return ngx_stream_certguard_error(s, NGX_STREAM_BAD_GATEWAY,
                                          "could not resolve the host");

    case NGX_CERTGUARD_GUARD_ERROR:
        return ngx_stream_certguard_error(s, NGX_STREAM_BAD_GATEWAY,
                                          "internal error");

    default:
        return ngx_stream_certguard_error(s, NGX_STREAM_FORBIDDEN,
                                          "destination not allowed");
    }
}




/*
 * A tunnel refused after its 200 (or a passthrough connection): a client
 * that spoke TLS gets a fatal handshake_failure alert (RFC 8446 6.2) as a
 * server would send it, then the connection closes.
 */

static ngx_int_t
ngx_stream_certguard_refuse_tls(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, ngx_uint_t status)
{
    ssize_t            n;
    ngx_connection_t  *c;

    static u_char  alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28 };

    c = s->connection;

    if (ctx->tls) {
        n = c->send(c, alert, sizeof(alert));

        if (n != (ssize_t) sizeof(alert)) {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "certguard: could not send the TLS alert");
            return status;
        }

        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "certguard: handshake_failure alert sent");
    }

    return ngx_stream_certguard_linger(s, ctx, status);
}


/*
 * After a refusal: the write side is shut, and what the client still sends
 * is read and dropped until it closes (bounded in bytes and time), so that
 * the kernel does not answer its unread bytes with a reset that could
 * destroy the answer before the client reads it.  The session then ends
 * with status.  NGX_DONE, or status when the socket cannot linger.
 */

ngx_int_t
ngx_stream_certguard_linger(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, ngx_uint_t status)
{
    ngx_msec_t                   timeout;
    ngx_connection_t            *c;
    ngx_stream_core_srv_conf_t  *cscf;

    c = s->connection;
    cscf = ngx_stream_get_module_srv_conf(s, ngx_stream_core_module);

    if (ngx_shutdown_socket(c->fd, NGX_WRITE_SHUTDOWN) == -1) {
        ngx_connection_error(c, ngx_socket_errno,
                             ngx_shutdown_socket_n " failed");
        return status;
    }

    ctx->status = status;
    ctx->state = ngx_stream_certguard_st_done;

    c->read->handler = ngx_stream_certguard_linger_handler;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    timeout = ngx_min(cscf->preread_timeout, NGX_STREAM_CERTGUARD_LINGER_TIME);
    ngx_add_timer(&ctx->linger, timeout);

    ngx_log_debug2(NGX_LOG_DEBUG_STREAM, c->log, 0,
                   "certguard: lingering for %M ms before %ui", timeout,
                   status);

    /* bytes may be there already: no new event would tell */

    ngx_post_event(c->read, &ngx_posted_events);

    return NGX_DONE;
}


static void
ngx_stream_certguard_linger_handler(ngx_event_t *rev)
{
    ssize_t                      n;
    ngx_connection_t            *c;
    ngx_stream_session_t        *s;
    ngx_stream_certguard_ctx_t  *ctx;
    u_char                       buf[4096];

    c = rev->data;
    s = c->data;
    ctx = ngx_stream_get_module_ctx(s, ngx_stream_certguard_module);

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                break;
            }

            return;
        }

        if (n == NGX_ERROR || n == 0) {
            break;
        }

        ctx->lingered += n;

        if (ctx->lingered > NGX_STREAM_CERTGUARD_LINGER_BYTES) {
            break;
        }
    }

    ngx_stream_finalize_session(s, ctx->status);
}


static void
ngx_stream_certguard_linger_timeout(ngx_event_t *ev)
{
    ngx_stream_session_t        *s;
    ngx_stream_certguard_ctx_t  *ctx;

    s = ev->data;
    ctx = ngx_stream_get_module_ctx(s, ngx_stream_certguard_module);

    ngx_stream_finalize_session(s, ctx->status);
}




/* An HTTP answer to a CONNECT; in passthrough mode there is nobody to
 * answer, and the connection just closes.  Returns the session status,
 * or NGX_DONE for an error answer that lingers. */

ngx_int_t
ngx_stream_certguard_respond(ngx_stream_session_t *s, ngx_uint_t status,
    const char *reason, size_t len)
{
    u_char                           *p, *buf;
    size_t                            size;
    ssize_t                           n;
    ngx_str_t                         extra;
    ngx_connection_t                 *c;
    const char                       *text;
    ngx_stream_certguard_ctx_t       *ctx;
    ngx_stream_certguard_srv_conf_t  *cgscf;
    u_char                            local[512];

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    if (!cgscf->connect) {
        return status;
    }

    buf = local;
    size = sizeof(local);
    ngx_str_null(&extra);

    if (status == NGX_STREAM_OK) {
        p = ngx_cpymem(buf, "HTTP/1.1 200 Connection established" CRLF CRLF,
                       sizeof("HTTP/1.1 200 Connection established" CRLF CRLF)
                       - 1);

    } else {
        switch (status) {
        case NGX_STREAM_BAD_REQUEST:
            text = "Bad Request";
            break;
        case NGX_STREAM_FORBIDDEN:
            text = "Forbidden";
            break;
        case NGX_STREAM_CERTGUARD_METHOD:
            text = "Method Not Allowed";
            ngx_str_set(&extra, "Allow: CONNECT" CRLF);
            break;
        case NGX_STREAM_CERTGUARD_PROXY_AUTH:
            text = "Proxy Authentication Required";
            break;
        case NGX_STREAM_INTERNAL_SERVER_ERROR:
            text = "Internal Server Error";
            break;
        case NGX_STREAM_SERVICE_UNAVAILABLE:
            text = "Service Unavailable";
            break;
        default:
            text = "Bad Gateway";
        }

        len = ngx_min(len, 256);

        if (status == NGX_STREAM_CERTGUARD_PROXY_AUTH) {

            /* the realm is the configuration's, of any length */

            extra.len = sizeof("Proxy-Authenticate: " CRLF) - 1
                        + cgscf->common.auth->challenge.len;
            size += extra.len;

            buf = ngx_pnalloc(c->pool, size);
            extra.data = ngx_pnalloc(c->pool, extra.len);
            if (buf == NULL || extra.data == NULL) {
                return NGX_ERROR;
            }

            (void) ngx_sprintf(extra.data, "Proxy-Authenticate: %V" CRLF,
                               &cgscf->common.auth->challenge);
        }

        p = ngx_snprintf(buf, size,
                         "HTTP/1.1 %ui %s" CRLF
                         "Content-Type: text/plain" CRLF
                         "Content-Length: %uz" CRLF
                         "%V"
                         "Connection: close" CRLF CRLF
                         "%*s\n",
                         status, text, len + 1, &extra, len, reason);

        ngx_log_debug3(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "certguard: answering %ui: \"%*s\"", status, len,
                       reason);
    }

    n = c->send(c, buf, p - buf);

    if (n != p - buf) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "certguard: could not send the %ui response", status);

        if (status == NGX_STREAM_OK) {
            return NGX_ERROR;
        }

        return status;
    }

    if (status == NGX_STREAM_OK) {
        return status;
    }

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_certguard_module);

    return ngx_stream_certguard_linger(s, ctx, status);
}


/*
 * Once a session's verdict is final: the error-log line of a verdict, the
 * shape both modules write, and the CEF record.
 */

void
ngx_stream_certguard_log_result(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    u_char                           *p, *last;
    cg_event_t                        ev;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cgscf;
    u_char                            tail[NGX_STREAM_CERTGUARD_HOST_MAX
                                           + 512];

    if (ctx->result == NULL || ctx->logged) {
        return;
    }

    ctx->logged = 1;

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    /* an allowed tunnel's line is info: most error logs drop it, and its
     * tail is not worth formatting then */

    if (c->log->log_level
        < ngx_certguard_log_verdict_level(ctx->result,
                                cgscf->common.mode == NGX_CERTGUARD_MONITOR))
    {
        goto logged;
    }

    p = tail;
    last = tail + sizeof(tail) - 1;

    p = ngx_slprintf(p, last, ", destination %V, cache %s", &ctx->target,
                     ctx->cached ? "HIT"
                     : (cgscf->common.cache.shm_zone ? "MISS" : "BYPASS"));

    if (ctx->failed) {
        p = ngx_slprintf(p, last, ", probe failed: %s", ctx->failure);
    }

    if (cg_sni_mismatch((char *) ctx->host.data, ctx->client_sni)) {
        p = ngx_slprintf(p, last, ", client SNI \"%s\"", ctx->client_sni);
    }

    *p = '\0';

    ngx_certguard_log_verdict(c->log, ctx->result,
                              cgscf->common.mode == NGX_CERTGUARD_MONITOR,
                              ctx->addr_only[0] ? (char *) ctx->addr_only
                                                : "-",
                              (char *) tail);

logged:

    ngx_certguard_metrics_verdict(ctx->result);

    if (cgscf->common.log == NULL) {
        return;
    }

    ngx_stream_certguard_event(s, ctx, &ev);

    ngx_certguard_log_write(cgscf->common.log, c->log, ctx->result, &ev);
}


/*
 * Records are written when the tunnel is decided, not when it ends; this
 * catches the sessions that ended before that (a client that closed while
 * its ClientHello was awaited).
 */

ngx_int_t
ngx_stream_certguard_log_handler(ngx_stream_session_t *s)
{
    ngx_stream_certguard_ctx_t  *ctx;

    ctx = ngx_stream_get_module_ctx(s, ngx_stream_certguard_module);

    if (ctx && ctx->result) {
        ngx_stream_certguard_log_result(s, ctx);
    }

    return NGX_OK;
}


void
ngx_stream_certguard_event(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, cg_event_t *ev)
{
    size_t                            len;
    ngx_time_t                       *tp;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cgscf;

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    ngx_memzero(ev, sizeof(cg_event_t));

    ev->monitor = (cgscf->common.mode == NGX_CERTGUARD_MONITOR);

    len = ngx_sock_ntop(c->sockaddr, c->socklen, ctx->client_addr,
                        NGX_SOCKADDR_STRLEN - 1, 0);
    ctx->client_addr[len] = '\0';

    ev->src_addr = (char *) ctx->client_addr;
    ev->src_port = ngx_inet_get_port(c->sockaddr);
    ev->dst_addr = ctx->addr_only[0] ? (char *) ctx->addr_only : NULL;
    ev->dst_port = ctx->port;
    ev->request = (char *) ctx->target.data;
    ev->user = ctx->authenticated ? (char *) ctx->user.data : NULL;

    tp = ngx_timeofday();
    ev->rt_ms = (int64_t) tp->sec * 1000 + tp->msec;
}


/*
 * A CEF record of a refusal: the destination, the request or the proxy
 * credentials.  What is known of the request goes in; the target of a
 * request refused for its userinfo was never copied.
 */

void
ngx_stream_certguard_log_refusal(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, const char *reason, ngx_uint_t count)
{
    size_t                            len;
    ngx_time_t                       *tp;
    cg_event_t                        ev;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cgscf;

    /* auth failures are counted where they are checked (and logged
     * only at a rate) */

    if (ngx_strncmp(reason, "auth_", 5) != 0) {
        ngx_certguard_metrics_refusal(reason);
    }

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    if (cgscf->common.log == NULL) {
        return;
    }

    ngx_memzero(&ev, sizeof(cg_event_t));

    len = ngx_sock_ntop(c->sockaddr, c->socklen, ctx->client_addr,
                        NGX_SOCKADDR_STRLEN - 1, 0);
    ctx->client_addr[len] = '\0';

    ev.src_addr = (char *) ctx->client_addr;
    ev.src_port = ngx_inet_get_port(c->sockaddr);

    if (ctx->host.len) {
        ev.dhost = (char *) ctx->host.data;
        ev.dst_port = ctx->port;
    }

    if (ctx->target.len) {
        ev.request = (char *) ctx->target.data;
    }

    if (ctx->user.len) {
        ev.user = (char *) ctx->user.data;
    }

    tp = ngx_timeofday();
    ev.rt_ms = (int64_t) tp->sec * 1000 + tp->msec;

    ngx_certguard_log_refusal(cgscf->common.log, c->log, &ev, reason, count);
}


void
ngx_stream_certguard_wake(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx)
{
    if (ctx->in_handler) {
        return;                 /* the preread handler's loop goes on */
    }

    ngx_post_event(&ctx->resume, &ngx_posted_events);
}


static void
ngx_stream_certguard_resume(ngx_event_t *ev)
{
    ngx_stream_session_t  *s;

    s = ev->data;

    ngx_stream_core_run_phases(s);
}


static void
ngx_stream_certguard_cleanup(void *data)
{
    ngx_stream_certguard_ctx_t  *ctx = data;

    ngx_certguard_resolve_cancel(&ctx->resolve);

    ngx_certguard_probe_cancel(&ctx->waiter);

    if (ctx->resume.posted) {
        ngx_delete_posted_event(&ctx->resume);
    }

    if (ctx->limit_wait.timer_set) {
        ngx_del_timer(&ctx->limit_wait);
    }

    if (ctx->linger.timer_set) {
        ngx_del_timer(&ctx->linger);
    }

    ngx_stream_certguard_tunnel_done(ctx);
    ngx_stream_certguard_hello_free(ctx);
}
