/*
 * ngx_stream_certguard_module: certguard_probe_limit, the probes one client
 * address may have running at once, and start in one second, in one
 * worker: a probe counts from its start to its end, whether or not the
 * client waits for it; joining a running probe costs nothing and counts
 * nothing.  A probe's cost is the worker's event loop: OpenSSL parses every
 * certificate a destination sends (about 0.1 ms each, up to the 32 KB the
 * probe reads) before anything else runs, so one client flooding cold
 * names would otherwise take the worker's time from all its other clients.
 * Counted per worker, because that is the resource shared: a client gets
 * the limit in each worker, and each worker keeps time for the others.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include "ngx_stream_certguard_module.h"


/* a client's count; freed once none of its probes runs and its second is
 * over */
struct ngx_stream_certguard_limit_node_s {
    ngx_str_node_t                   sn;          /* key: CRC32 of addr,
                                                     str: addr */
    ngx_queue_t                      queue;       /* least recent last */
    ngx_stream_certguard_main_conf_t  *cgmcf;
    ngx_uint_t                       waiting;     /* probes running */
    ngx_uint_t                       started;     /* in this second */
    ngx_uint_t                       suppressed;  /* refusals not logged */
    time_t                           second;
    time_t                           logged;      /* second of the last
                                                     refusal logged */
    u_char                           addr[16];
};


static void ngx_stream_certguard_limit_expire(
    ngx_stream_certguard_main_conf_t *cgmcf, ngx_uint_t n);
static void ngx_stream_certguard_limit_free(
    ngx_stream_certguard_main_conf_t *cgmcf,
    ngx_stream_certguard_limit_node_t *ln);


void
ngx_stream_certguard_limit_init(ngx_stream_certguard_main_conf_t *cgmcf)
{
    ngx_rbtree_init(&cgmcf->limit_tree, &cgmcf->limit_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_queue_init(&cgmcf->limit_lru);
}


/*
 * A slot for a new probe of this session's client: NGX_OK (*slot holds it,
 * or is NULL for a client without an address, a unix socket, which is not
 * counted; ngx_stream_certguard_limit_release(*slot) gives it back),
 * NGX_DECLINED when the client is at its limit, NGX_ERROR without memory.
 * A final refusal (the session will not look again) is counted: *log says
 * it is the one of its second to log, *suppressed the refusals since the
 * last logged one.
 */

ngx_int_t
ngx_stream_certguard_limit_take(ngx_stream_session_t *s, ngx_uint_t final,
    void **slot, ngx_uint_t *log, ngx_uint_t *suppressed)
{
    size_t                              len;
    u_char                             *addr;
    time_t                              now;
    uint32_t                            hash;
    ngx_str_t                           key;
    ngx_connection_t                   *c;
    struct sockaddr_in                 *sin;
#if (NGX_HAVE_INET6)
    struct sockaddr_in6                *sin6;
#endif
    ngx_stream_certguard_limit_node_t  *ln;
    ngx_stream_certguard_srv_conf_t    *cgscf;
    ngx_stream_certguard_main_conf_t   *cgmcf;

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);
    cgmcf = ngx_stream_get_module_main_conf(s, ngx_stream_certguard_module);

    *slot = NULL;
    *log = 0;
    *suppressed = 0;

    switch (c->sockaddr->sa_family) {

    case AF_INET:
        sin = (struct sockaddr_in *) c->sockaddr;
        addr = (u_char *) &sin->sin_addr;
        len = 4;
        break;

#if (NGX_HAVE_INET6)
    case AF_INET6:
        sin6 = (struct sockaddr_in6 *) c->sockaddr;
        addr = sin6->sin6_addr.s6_addr;
        len = 16;
        break;
#endif

    default:
        return NGX_OK;
    }

    now = ngx_time();
    hash = ngx_crc32_short(addr, len);

    ngx_stream_certguard_limit_expire(cgmcf, 2);

    key.data = addr;
    key.len = len;

    ln = (ngx_stream_certguard_limit_node_t *)
             ngx_str_rbtree_lookup(&cgmcf->limit_tree, &key, hash);

    if (ln == NULL) {
        ln = ngx_alloc(sizeof(ngx_stream_certguard_limit_node_t), c->log);
        if (ln == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(ln, sizeof(ngx_stream_certguard_limit_node_t));

        ln->sn.node.key = hash;
        ln->cgmcf = cgmcf;
        ngx_memcpy(ln->addr, addr, len);
        ln->sn.str.data = ln->addr;
        ln->sn.str.len = len;
        ln->second = now;

        ngx_rbtree_insert(&cgmcf->limit_tree, &ln->sn.node);
        ngx_queue_insert_head(&cgmcf->limit_lru, &ln->queue);

    } else {
        ngx_queue_remove(&ln->queue);
        ngx_queue_insert_head(&cgmcf->limit_lru, &ln->queue);
    }

    if (ln->second != now) {
        ln->second = now;
        ln->started = 0;
    }

    if (ln->waiting >= cgscf->probe_limit
        || (cgscf->probe_rate && ln->started >= cgscf->probe_rate))
    {
        if (!final) {
            return NGX_DECLINED;
        }

        if (ln->logged != now) {
            ln->logged = now;
            *log = 1;
            *suppressed = ln->suppressed;
            ln->suppressed = 0;

        } else {
            ln->suppressed++;
        }

        return NGX_DECLINED;
    }

    ln->waiting++;
    ln->started++;
    *slot = ln;

    return NGX_OK;
}


/* The probe's end (ngx_certguard_probe_params_t.done). */

void
ngx_stream_certguard_limit_release(void *slot)
{
    ngx_stream_certguard_limit_node_t  *ln = slot;

    if (ln == NULL) {
        return;
    }

    ln->waiting--;

    ngx_stream_certguard_limit_expire(ln->cgmcf, 2);
}


/* Up to n of the least recently used clients that wait for nothing and
 * whose second is over are forgotten: what is kept stays bounded by the
 * waiting sessions and the clients of the last second. */

static void
ngx_stream_certguard_limit_expire(ngx_stream_certguard_main_conf_t *cgmcf,
    ngx_uint_t n)
{
    time_t                              now;
    ngx_queue_t                        *q;
    ngx_stream_certguard_limit_node_t  *ln;

    now = ngx_time();

    while (n-- && !ngx_queue_empty(&cgmcf->limit_lru)) {
        q = ngx_queue_last(&cgmcf->limit_lru);
        ln = ngx_queue_data(q, ngx_stream_certguard_limit_node_t, queue);

        if (ln->waiting || ln->second == now || ln->logged == now) {
            return;
        }

        ngx_stream_certguard_limit_free(cgmcf, ln);
    }
}


static void
ngx_stream_certguard_limit_free(ngx_stream_certguard_main_conf_t *cgmcf,
    ngx_stream_certguard_limit_node_t *ln)
{
    ngx_queue_remove(&ln->queue);
    ngx_rbtree_delete(&cgmcf->limit_tree, &ln->sn.node);
    ngx_free(ln);
}


char *
ngx_stream_certguard_limit_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_stream_certguard_srv_conf_t  *cgscf = conf;

    ngx_int_t    n;
    ngx_str_t   *value, v;
    ngx_uint_t   i;
    ngx_msec_t   wait;

    if (cgscf->probe_limit != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        cgscf->probe_limit = 0;
        cgscf->probe_rate = 0;
        cgscf->probe_wait = 0;
        return NGX_CONF_OK;
    }

    n = ngx_atoi(value[1].data, value[1].len);

    if (n < 1 || n > 65535) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "certguard_probe_limit: \"%V\" is not 1-65535 "
                           "or \"off\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    cgscf->probe_limit = (ngx_uint_t) n;
    cgscf->probe_rate = 0;

    /* a client past its limit is held, not refused at once: a burst of
     * its own waits its turn, and a flood's connections wait too instead
     * of coming back as fast as they are refused */
    cgscf->probe_wait = 1000;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "rate=", 5) == 0) {
            n = ngx_atoi(value[i].data + 5, value[i].len - 5);

            if (n < 1 || n > 65535) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "certguard_probe_limit: rate must be "
                                   "1-65535 probes a second");
                return NGX_CONF_ERROR;
            }

            cgscf->probe_rate = (ngx_uint_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "wait=", 5) == 0) {
            v.data = value[i].data + 5;
            v.len = value[i].len - 5;

            wait = ngx_parse_time(&v, 0);

            if (wait == (ngx_msec_t) NGX_ERROR || wait > 60000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "certguard_probe_limit: wait must be a "
                                   "time up to 60s, 0 to refuse at once");
                return NGX_CONF_ERROR;
            }

            cgscf->probe_wait = wait;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "certguard_probe_limit: unknown parameter \"%V\"",
                           &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}
