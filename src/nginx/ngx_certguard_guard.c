/*
 * Destination guards (see ngx_certguard_guard.h).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <ifaddrs.h>

#include "ngx_certguard_guard.h"


static void ngx_certguard_resolve_handler(ngx_resolver_ctx_t *rctx);
static ngx_certguard_guard_e ngx_certguard_guard_pick(
    ngx_certguard_resolve_t *res, ngx_resolver_addr_t *addrs,
    ngx_uint_t naddrs);
static ngx_int_t ngx_certguard_guard_own(ngx_conf_t *cf, ngx_array_t *own);
static ngx_int_t ngx_certguard_pattern_match(ngx_certguard_pattern_t *p,
    ngx_uint_t n, ngx_str_t *name);


/*
 * Never dialled unless certguard_allow names them: loopback, "this
 * network", private and shared (CGNAT) ranges, link-local (cloud metadata
 * services at 169.254.169.254 and fd00:ec2::254 included), multicast and
 * reserved.  IPv4-mapped IPv6 addresses are matched as the IPv4 address.
 */
static char  *ngx_certguard_guard_special_text[] = {
    "127.0.0.0/8", "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10",
    "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16", "192.0.0.0/24",
    "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
#if (NGX_HAVE_INET6)
    "::1/128", "::/128", "fe80::/10", "fc00::/7", "ff00::/8",
    "64:ff9b:1::/48",
#endif
    NULL
};


/* Built once per cycle, read by every request of that cycle's workers. */
static ngx_cycle_t  *ngx_certguard_guard_cycle;
static ngx_array_t  *ngx_certguard_guard_special;
static ngx_array_t  *ngx_certguard_guard_own_addrs;


char *
ngx_certguard_guard_set_cidrs(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_array_t  **a = (ngx_array_t **) ((char *) conf + cmd->offset);

    ngx_int_t    rc;
    ngx_str_t   *value;
    ngx_uint_t   i;
    ngx_cidr_t  *cidr;

    if (*a == NGX_CONF_UNSET_PTR || *a == NULL) {
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

        /* "certguard_deny all;" with an allow list: only the allow list */

        if (ngx_strcmp(value[i].data, "all") == 0) {
            ngx_memzero(cidr, sizeof(ngx_cidr_t));
            cidr->family = AF_INET;
#if (NGX_HAVE_INET6)
            cidr = ngx_array_push(*a);
            if (cidr == NULL) {
                return NGX_CONF_ERROR;
            }

            ngx_memzero(cidr, sizeof(ngx_cidr_t));
            cidr->family = AF_INET6;
#endif
            continue;
        }

        rc = ngx_ptocidr(&value[i], cidr);

        if (rc == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid network \"%V\"", &value[i]);
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


char *
ngx_certguard_guard_set_names(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_array_t  **a = (ngx_array_t **) ((char *) conf + cmd->offset);

    u_char                    errstr[NGX_MAX_CONF_ERRSTR];
    ngx_str_t                *value, name;
    ngx_uint_t                i;
    ngx_regex_compile_t       rc;
    ngx_certguard_pattern_t  *p;

    if (*a == NGX_CONF_UNSET_PTR || *a == NULL) {
        *a = ngx_array_create(cf->pool, 4, sizeof(ngx_certguard_pattern_t));
        if (*a == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        p = ngx_array_push(*a);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(p, sizeof(ngx_certguard_pattern_t));
        name = value[i];

        if (name.len > 1 && name.data[0] == '~') {
            ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

            rc.pattern.data = name.data + 1;
            rc.pattern.len = name.len - 1;
            rc.options = NGX_REGEX_CASELESS;
            rc.pool = cf->pool;
            rc.err.len = NGX_MAX_CONF_ERRSTR;
            rc.err.data = errstr;

            if (ngx_regex_compile(&rc) != NGX_OK) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V", &rc.err);
                return NGX_CONF_ERROR;
            }

            p->regex = rc.regex;
            p->name = name;
            continue;
        }

        if (name.len > 2 && name.data[0] == '*' && name.data[1] == '.') {
            p->subdomains = 1;
            name.data += 1;
            name.len -= 1;

        } else if (name.len > 1 && name.data[0] == '.') {
            p->suffix = 1;

        } else if (name.len == 0 || ngx_strlchr(name.data,
                                                 name.data + name.len, '*'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid name pattern \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        /* kept with its leading dot for the suffix forms */

        p->name.len = name.len;
        p->name.data = ngx_pnalloc(cf->pool, name.len);
        if (p->name.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_strlow(p->name.data, name.data, name.len);
    }

    return NGX_CONF_OK;
}


char *
ngx_certguard_guard_set_ports(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_array_t  **a = (ngx_array_t **) ((char *) conf + cmd->offset);

    u_char                      *dash;
    ngx_int_t                    low, high;
    ngx_str_t                   *value;
    ngx_uint_t                   i;
    ngx_certguard_port_range_t  *range;

    if (*a != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    *a = ngx_array_create(cf->pool, cf->args->nelts - 1,
                          sizeof(ngx_certguard_port_range_t));
    if (*a == NULL) {
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

        range = ngx_array_push(*a);
        if (range == NULL) {
            return NGX_CONF_ERROR;
        }

        range->low = (in_port_t) low;
        range->high = (in_port_t) high;
    }

    return NGX_CONF_OK;
}


ngx_array_t *
ngx_certguard_guard_default_ports(ngx_conf_t *cf, in_port_t *ports,
    ngx_uint_t n)
{
    ngx_uint_t                   i;
    ngx_array_t                 *a;
    ngx_certguard_port_range_t  *range;

    a = ngx_array_create(cf->pool, n, sizeof(ngx_certguard_port_range_t));
    if (a == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        range = ngx_array_push(a);
        range->low = ports[i];
        range->high = ports[i];
    }

    return a;
}


void
ngx_certguard_guard_merge(ngx_certguard_guard_t *conf,
    ngx_certguard_guard_t *prev)
{
    ngx_conf_merge_ptr_value(conf->allow, prev->allow, NULL);
    ngx_conf_merge_ptr_value(conf->deny, prev->deny, NULL);
    ngx_conf_merge_ptr_value(conf->allow_names, prev->allow_names, NULL);
    ngx_conf_merge_ptr_value(conf->deny_names, prev->deny_names, NULL);
}


ngx_int_t
ngx_certguard_guard_init(ngx_conf_t *cf)
{
    char         **text;
    ngx_str_t      s;
    ngx_cidr_t    *cidr;
    ngx_array_t   *special, *own;

    if (ngx_certguard_guard_cycle == cf->cycle) {
        return NGX_OK;
    }

    special = ngx_array_create(cf->cycle->pool, 24, sizeof(ngx_cidr_t));
    own = ngx_array_create(cf->cycle->pool, 8, sizeof(ngx_cidr_t));
    if (special == NULL || own == NULL) {
        return NGX_ERROR;
    }

    for (text = ngx_certguard_guard_special_text; *text; text++) {
        cidr = ngx_array_push(special);
        if (cidr == NULL) {
            return NGX_ERROR;
        }

        s.data = (u_char *) *text;
        s.len = ngx_strlen(*text);

        if (ngx_ptocidr(&s, cidr) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "certguard: invalid built-in network \"%V\"",
                               &s);
            return NGX_ERROR;
        }
    }

    if (ngx_certguard_guard_own(cf, own) != NGX_OK) {
        return NGX_ERROR;
    }

    /*
     * a failed reload keeps the old cycle, and with it these: they are
     * replaced only by a cycle that got this far
     */

    ngx_certguard_guard_cycle = cf->cycle;
    ngx_certguard_guard_special = special;
    ngx_certguard_guard_own_addrs = own;

    return NGX_OK;
}


static ngx_int_t
ngx_certguard_guard_own(ngx_conf_t *cf, ngx_array_t *own)
{
    ngx_cidr_t      *cidr;
    struct ifaddrs  *ifa, *i;

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
            cidr = ngx_array_push(own);
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
            cidr = ngx_array_push(own);
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


ngx_certguard_guard_e
ngx_certguard_guard_port(ngx_array_t *ports, in_port_t port)
{
    ngx_uint_t                   i;
    ngx_certguard_port_range_t  *range;

    if (ports == NULL) {
        return NGX_CERTGUARD_GUARD_OK;
    }

    range = ports->elts;

    for (i = 0; i < ports->nelts; i++) {
        if (port >= range[i].low && port <= range[i].high) {
            return NGX_CERTGUARD_GUARD_OK;
        }
    }

    return NGX_CERTGUARD_GUARD_PORT;
}


ngx_certguard_guard_e
ngx_certguard_guard_name(ngx_certguard_guard_t *guard, ngx_str_t *name)
{
    if (guard->allow_names
        && ngx_certguard_pattern_match(guard->allow_names->elts,
                                       guard->allow_names->nelts, name)
           == NGX_OK)
    {
        return NGX_CERTGUARD_GUARD_OK;
    }

    if (guard->deny_names
        && ngx_certguard_pattern_match(guard->deny_names->elts,
                                       guard->deny_names->nelts, name)
           == NGX_OK)
    {
        return NGX_CERTGUARD_GUARD_NAME;
    }

    return NGX_CERTGUARD_GUARD_OK;
}


static ngx_int_t
ngx_certguard_pattern_match(ngx_certguard_pattern_t *p, ngx_uint_t n,
    ngx_str_t *name)
{
    size_t       len;
    u_char      *tail;
    ngx_uint_t   i;

    len = name->len;

    /* "example.com." is "example.com" */

    if (len > 1 && name->data[len - 1] == '.') {
        len--;
    }

    for (i = 0; i < n; i++) {

        if (p[i].regex) {
            ngx_str_t  s = { len, name->data };

            if (ngx_regex_exec(p[i].regex, &s, NULL, 0) >= 0) {
                return NGX_OK;
            }

            continue;
        }

        if (p[i].suffix && len + 1 == p[i].name.len
            && ngx_strncasecmp(name->data, p[i].name.data + 1, len) == 0)
        {
            return NGX_OK;      /* ".example.com" includes example.com */
        }

        if (!p[i].suffix && !p[i].subdomains) {
            if (len == p[i].name.len
                && ngx_strncasecmp(name->data, p[i].name.data, len) == 0)
            {
                return NGX_OK;
            }

            continue;
        }

        if (len > p[i].name.len) {
            tail = name->data + len - p[i].name.len;

            if (ngx_strncasecmp(tail, p[i].name.data, p[i].name.len) == 0) {
                return NGX_OK;
            }
        }
    }

    return NGX_DECLINED;
}


ngx_certguard_guard_e
ngx_certguard_guard_addr(ngx_certguard_guard_t *guard, struct sockaddr *sa)
{
#if (NGX_HAVE_INET6)
    u_char               *p;
    struct sockaddr_in    sin;
    struct sockaddr_in6  *sin6;

    /* ::ffff:10.0.0.1 reaches 10.0.0.1: judge it as that */

    if (sa->sa_family == AF_INET6) {
        sin6 = (struct sockaddr_in6 *) sa;

        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            ngx_memzero(&sin, sizeof(struct sockaddr_in));
            sin.sin_family = AF_INET;
            sin.sin_port = sin6->sin6_port;
            p = sin6->sin6_addr.s6_addr;
            ngx_memcpy(&sin.sin_addr.s_addr, p + 12, 4);
            sa = (struct sockaddr *) &sin;
        }
    }
#endif

    if (guard->allow && ngx_cidr_match(sa, guard->allow) == NGX_OK) {
        return NGX_CERTGUARD_GUARD_OK;
    }

    if (guard->deny && ngx_cidr_match(sa, guard->deny) == NGX_OK) {
        return NGX_CERTGUARD_GUARD_DENY;
    }

    if (ngx_certguard_guard_special == NULL
        || ngx_cidr_match(sa, ngx_certguard_guard_special) == NGX_OK)
    {
        return NGX_CERTGUARD_GUARD_SPECIAL;
    }

    if (ngx_certguard_guard_own_addrs->nelts
        && ngx_cidr_match(sa, ngx_certguard_guard_own_addrs) == NGX_OK)
    {
        return NGX_CERTGUARD_GUARD_OWN;
    }

    return NGX_CERTGUARD_GUARD_OK;
}


ngx_int_t
ngx_certguard_resolve(ngx_certguard_resolve_t *res)
{
    ngx_addr_t            addr;
    ngx_pool_t           *pool;
    ngx_resolver_ctx_t   *rctx, temp;
    ngx_resolver_addr_t   literal;

    res->ctx = NULL;
    res->ip_literal = 0;

    /* a name the patterns refuse is never sent to DNS */

    res->rc = ngx_certguard_guard_name(res->guard, &res->name);
    if (res->rc != NGX_CERTGUARD_GUARD_OK) {
        return NGX_OK;
    }

    pool = ngx_create_pool(256, res->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    if (ngx_parse_addr(pool, &addr, res->name.data, res->name.len)
        == NGX_OK)
    {
        res->ip_literal = 1;

        ngx_memzero(&literal, sizeof(ngx_resolver_addr_t));
        literal.sockaddr = addr.sockaddr;
        literal.socklen = addr.socklen;

        res->rc = ngx_certguard_guard_pick(res, &literal, 1);
        ngx_destroy_pool(pool);
        return NGX_OK;
    }

    ngx_destroy_pool(pool);

    if (res->resolver == NULL) {
        res->rc = NGX_CERTGUARD_GUARD_RESOLVE;
        return NGX_OK;
    }

    temp.name = res->name;

    rctx = ngx_resolve_start(res->resolver, &temp);
    if (rctx == NULL) {
        return NGX_ERROR;
    }

    if (rctx == NGX_NO_RESOLVER) {
        ngx_log_error(NGX_LOG_ERR, res->log, 0,
                      "certguard: no resolver defined to resolve %V",
                      &res->name);
        res->rc = NGX_CERTGUARD_GUARD_RESOLVE;
        return NGX_OK;
    }

    rctx->name = res->name;
    rctx->handler = ngx_certguard_resolve_handler;
    rctx->data = res;
    rctx->timeout = res->timeout;

    res->ctx = rctx;

    if (ngx_resolve_name(rctx) != NGX_OK) {
        res->ctx = NULL;
        return NGX_ERROR;
    }

    return NGX_AGAIN;
}


static void
ngx_certguard_resolve_handler(ngx_resolver_ctx_t *rctx)
{
    ngx_certguard_resolve_t  *res = rctx->data;

    res->ctx = NULL;

    if (rctx->state) {
        ngx_log_error(NGX_LOG_ERR, res->log, 0,
                      "certguard: %V could not be resolved (%i: %s)",
                      &rctx->name, rctx->state,
                      ngx_resolver_strerror(rctx->state));

        res->rc = NGX_CERTGUARD_GUARD_RESOLVE;

    } else {
        res->rc = ngx_certguard_guard_pick(res, rctx->addrs, rctx->naddrs);

        ngx_log_debug3(NGX_LOG_DEBUG_CORE, res->log, 0,
                       "certguard: %V resolved, addresses: %ui, %s",
                       &rctx->name, rctx->naddrs,
                       (res->rc == NGX_CERTGUARD_GUARD_OK) ? "one allowed"
                                                           : "none allowed");
    }

    ngx_resolve_name_done(rctx);

    res->handler(res);
}


/*
 * The first address the guards allow is the one dialled, so a name that
 * also resolves to a refused address cannot steer the connection there;
 * with none allowed, the first refusal is the reason.
 */

static ngx_certguard_guard_e
ngx_certguard_guard_pick(ngx_certguard_resolve_t *res,
    ngx_resolver_addr_t *addrs, ngx_uint_t naddrs)
{
    ngx_uint_t             i;
    ngx_certguard_guard_e  rc, first;

    first = NGX_CERTGUARD_GUARD_RESOLVE;

    for (i = 0; i < naddrs; i++) {

        if (addrs[i].socklen > sizeof(ngx_sockaddr_t)) {
            continue;
        }

        ngx_memcpy(&res->sockaddr, addrs[i].sockaddr, addrs[i].socklen);
        res->socklen = addrs[i].socklen;
        ngx_inet_set_port(&res->sockaddr.sockaddr, res->port);

        rc = ngx_certguard_guard_addr(res->guard, &res->sockaddr.sockaddr);

        if (rc == NGX_CERTGUARD_GUARD_OK) {
            return rc;
        }

        if (first == NGX_CERTGUARD_GUARD_RESOLVE) {
            first = rc;
        }
    }

    return first;
}


void
ngx_certguard_resolve_cancel(ngx_certguard_resolve_t *res)
{
    if (res->ctx) {
        ngx_resolve_name_done(res->ctx);
        res->ctx = NULL;
    }
}


const char *
ngx_certguard_guard_reason(ngx_certguard_guard_e rc)
{
    static const char  *reasons[] = {
        "ok", "port", "name", "special_address", "own_address",
        "denied_address", "unresolved", "error"
    };

    return (rc <= NGX_CERTGUARD_GUARD_ERROR) ? reasons[rc] : "error";
}
