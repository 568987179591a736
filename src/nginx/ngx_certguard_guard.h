/*
 * Destination guards for every path that connects where a client asks:
 * CONNECT tunnels, the probe, plain HTTP and TLS origination.  One
 * implementation for both modules: ports, name patterns checked before any
 * DNS query, and the resolved address checked before connecting (special
 * ranges, the host's own addresses, the deny and allow lists), with the
 * resolution itself, so that the address checked is the address dialled.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef NGX_CERTGUARD_GUARD_H_INCLUDED_
#define NGX_CERTGUARD_GUARD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef enum {
    NGX_CERTGUARD_GUARD_OK = 0,
    NGX_CERTGUARD_GUARD_PORT,           /* port not allowed */
    NGX_CERTGUARD_GUARD_NAME,           /* name refused by a pattern */
    NGX_CERTGUARD_GUARD_SPECIAL,        /* loopback, link-local, private.. */
    NGX_CERTGUARD_GUARD_OWN,            /* one of the proxy's addresses */
    NGX_CERTGUARD_GUARD_DENY,           /* in the deny list */
    NGX_CERTGUARD_GUARD_RESOLVE,        /* the name does not resolve */
    NGX_CERTGUARD_GUARD_ERROR           /* no memory, resolver failed */
} ngx_certguard_guard_e;


typedef struct {
    in_port_t                   low;
    in_port_t                   high;
} ngx_certguard_port_range_t;


/* Part of the common configuration block (ngx_certguard_conf_t). */
typedef struct {
    ngx_array_t                *allow;          /* ngx_cidr_t */
    ngx_array_t                *deny;           /* ngx_cidr_t */
    ngx_array_t                *allow_names;    /* ngx_certguard_pattern_t */
    ngx_array_t                *deny_names;     /* ngx_certguard_pattern_t */
} ngx_certguard_guard_t;


/* A name pattern: "example.com" exactly, "*.example.com" or
 * ".example.com" (the domain and below), or "~regex". */
typedef struct {
    ngx_str_t                   name;           /* lower case */
    ngx_regex_t                *regex;
    unsigned                    suffix:1;       /* ".example.com" */
    unsigned                    subdomains:1;   /* "*.example.com" */
} ngx_certguard_pattern_t;


typedef struct ngx_certguard_resolve_s  ngx_certguard_resolve_t;

typedef void (*ngx_certguard_resolve_pt)(ngx_certguard_resolve_t *res);

/*
 * One resolution of a destination: on completion handler runs (also when
 * ngx_certguard_resolve() answers at once for an IP literal it returns
 * NGX_OK without calling it), with rc OK and the first allowed address in
 * sockaddr/socklen (port set), or the reason of the refusal.
 */
struct ngx_certguard_resolve_s {
    ngx_str_t                   name;           /* host, no brackets */
    in_port_t                   port;
    ngx_certguard_guard_t      *guard;
    ngx_resolver_t             *resolver;
    ngx_msec_t                  timeout;
    ngx_log_t                  *log;

    ngx_certguard_resolve_pt    handler;
    void                       *data;

    ngx_certguard_guard_e       rc;
    ngx_sockaddr_t              sockaddr;
    socklen_t                   socklen;
    ngx_resolver_ctx_t         *ctx;            /* while resolving */
    unsigned                    ip_literal:1;
};


/* "certguard_allow CIDR...;" and "certguard_deny CIDR...;" (the offset
 * names the ngx_array_t * of the module's conf). */
char *ngx_certguard_guard_set_cidrs(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* "certguard_allow_name PATTERN...;", "certguard_deny_name PATTERN...;" */
char *ngx_certguard_guard_set_names(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* "certguard_connect_ports 443 8000-8999;": ngx_array_t * of ranges. */
char *ngx_certguard_guard_set_ports(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* Ranges for the given ports, for a merge's default. */
ngx_array_t *ngx_certguard_guard_default_ports(ngx_conf_t *cf,
    in_port_t *ports, ngx_uint_t n);

/* Reads this host's addresses and parses the special ranges; once per
 * configuration cycle, whichever module asks first. */
ngx_int_t ngx_certguard_guard_init(ngx_conf_t *cf);

void ngx_certguard_guard_merge(ngx_certguard_guard_t *conf,
    ngx_certguard_guard_t *prev);

ngx_certguard_guard_e ngx_certguard_guard_port(ngx_array_t *ports,
    in_port_t port);
ngx_certguard_guard_e ngx_certguard_guard_name(ngx_certguard_guard_t *guard,
    ngx_str_t *name);
ngx_certguard_guard_e ngx_certguard_guard_addr(ngx_certguard_guard_t *guard,
    struct sockaddr *sa);

/*
 * Checks the name, then resolves it (or parses an IP literal) and checks
 * the addresses.  NGX_OK: done, res->rc says how (handler not called);
 * NGX_AGAIN: res->handler will run; NGX_ERROR: no memory.
 */
ngx_int_t ngx_certguard_resolve(ngx_certguard_resolve_t *res);

/* Cancels a resolution in progress (the client went away). */
void ngx_certguard_resolve_cancel(ngx_certguard_resolve_t *res);

/* A word for logs and CEF records: "port", "special_address", ... */
const char *ngx_certguard_guard_reason(ngx_certguard_guard_e rc);


#endif /* NGX_CERTGUARD_GUARD_H_INCLUDED_ */
