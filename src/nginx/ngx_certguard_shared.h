/*
 * nginx glue shared by the certguard modules (HTTP and stream): the
 * shared-memory verdict cache, the CEF log writer, loading the engine's
 * objects at configuration time, and the values of the $certguard_*
 * variables.  Only nginx core types are used here, so the HTTP and stream
 * modules can both call it (ngx_http_variable_value_t and
 * ngx_stream_variable_value_t are both ngx_variable_value_t).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef NGX_CERTGUARD_SHARED_H_INCLUDED_
#define NGX_CERTGUARD_SHARED_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "certguard.h"


#define NGX_CERTGUARD_CACHE_VALID   600         /* seconds, valid= default */
#define NGX_CERTGUARD_CERT_LIST_MAX 32768       /* bytes of certificates a
                                                   probed server may send */
#define NGX_CERTGUARD_CEF_MAX       4096


/*
 * A cache as a directive configured it: the zone (shared by every directive
 * naming it) and this directive's validity.  Keys are opaque bytes built by
 * the caller: the HTTP module keys by leaf SHA-256 + name + destination, the
 * stream module by probe key (policy, name, address:port).
 */
typedef struct {
    ngx_shm_zone_t   *shm_zone;
    time_t            valid;
} ngx_certguard_cache_t;


typedef struct {
    ngx_open_file_t    *file;
    ngx_syslog_peer_t  *syslog;
    cg_verdict_t        min_verdict;
    unsigned            keep_query:1;   /* query=on: cg_event_t keep_query */
} ngx_certguard_log_t;


/* What a variable shows of a result. */
typedef enum {
    NGX_CERTGUARD_VAR_VERDICT = 0,
    NGX_CERTGUARD_VAR_SCORE,
    NGX_CERTGUARD_VAR_SIGNALS,
    NGX_CERTGUARD_VAR_SHA256,
    NGX_CERTGUARD_VAR_SUBJECT,
    NGX_CERTGUARD_VAR_ISSUER,
    NGX_CERTGUARD_VAR_CEF
} ngx_certguard_var_e;


/*
 * "certguard_cache zone=NAME[:SIZE] [valid=TIME];" with cf->args as given;
 * tag keeps one module's zones apart from another's (pass the module).
 * "certguard_cache off;" leaves cache->shm_zone NULL.
 */
char *ngx_certguard_cache_conf(ngx_conf_t *cf, void *tag,
    ngx_certguard_cache_t *cache);

/*
 * NGX_OK and *res filled on a fresh hit of this configuration's generation
 * (an entry stored before a reload is a miss); NGX_BUSY when the key is
 * claimed (being probed, see below); NGX_DECLINED on a miss.
 */
ngx_int_t ngx_certguard_cache_get(ngx_certguard_cache_t *cache,
    ngx_str_t *key, cg_result_t *res);

/* Stores (replaces) an entry for valid seconds, or until the certificate's
 * not_after if that comes first, evicting the least recently used when the
 * zone is full.  NGX_ERROR only when nothing fits. */
ngx_int_t ngx_certguard_cache_put(ngx_certguard_cache_t *cache,
    ngx_str_t *key, const cg_result_t *res);

/*
 * A claim lets workers share one slow computation of a key (a probe):
 * NGX_OK: the caller computes it, then puts the result (which replaces the
 * claim) or releases the claim; NGX_BUSY: another worker holds a live
 * claim, poll with ngx_certguard_cache_get(); NGX_DECLINED: a result is
 * already there.  A claim expires after ttl seconds, so a worker that dies
 * holding one delays the others at most that long.
 */
ngx_int_t ngx_certguard_cache_claim(ngx_certguard_cache_t *cache,
    ngx_str_t *key, time_t ttl);
void ngx_certguard_cache_release(ngx_certguard_cache_t *cache,
    ngx_str_t *key);

/* Bumped each time the configuration is loaded; entries remember theirs,
 * so a verdict made under a previous policy is never returned. */
ngx_uint_t ngx_certguard_cache_generation(ngx_certguard_cache_t *cache);

/* SHA-256 of len bytes into md (32 bytes), with an algorithm fetched once
 * per process (ngx_certguard_cache.c). */
ngx_int_t ngx_certguard_sha256(const u_char *data, size_t len, u_char *md);
ngx_int_t ngx_certguard_cert_sha256(X509 *x, u_char *md);


/*
 * "certguard_log FILE | syslog:server=...[,...] | off [min_verdict=V]
 * [query=on|off];" with cf->args as given (the target must be the first
 * argument, as ngx_syslog_process_conf reads it there).  *logp is NULL for
 * "off"; a module sets its events' keep_query from (*logp)->keep_query.
 */
char *ngx_certguard_log_conf(ngx_conf_t *cf, ngx_certguard_log_t **logp);

/* One CEF record, unless the verdict is below min_verdict. */
void ngx_certguard_log_write(ngx_certguard_log_t *log, ngx_log_t *errlog,
    const cg_result_t *res, const cg_event_t *ev);

/* The error-log line of a verdict, both modules: "certguard: blocked
 * certificate of "NAME" at ADDR, score N, signals IDS" and tail. */
void ngx_certguard_log_verdict(ngx_log_t *errlog, const cg_result_t *res,
    ngx_uint_t monitor, const char *addr, const char *tail);

/* Its level: a caller with a costly tail checks the log's level first. */
ngx_uint_t ngx_certguard_log_verdict_level(const cg_result_t *res,
    ngx_uint_t monitor);

/* One CEF record of a refusal (a destination, a request or credentials
 * refused); count is how many attempts it stands for. */
void ngx_certguard_log_refusal(ngx_certguard_log_t *log, ngx_log_t *errlog,
    const cg_event_t *ev, const char *reason, ngx_uint_t count);


/* Engine objects loaded at configuration time and freed with the cycle;
 * a file (a GeoIP pair) named again in the same cycle is loaded once and
 * shared.  The error names file:line as the engine reports it.  Trust is
 * the system bundle plus the file a non-empty path names; no_system
 * (certguard_trusted_certificate FILE system=off) leaves the bundle out,
 * which needs a path.  ngx_certguard_trust_conf() is no_system 0. */
char *ngx_certguard_policy_conf(ngx_conf_t *cf, ngx_str_t *path,
    cg_policy_t **policy);
char *ngx_certguard_trust_conf(ngx_conf_t *cf, ngx_str_t *path,
    cg_trust_t **trust);
char *ngx_certguard_trust_conf2(ngx_conf_t *cf, ngx_str_t *path,
    ngx_uint_t no_system, cg_trust_t **trust);
char *ngx_certguard_geoip_conf(ngx_conf_t *cf, ngx_str_t *country,
    ngx_str_t *asn, cg_geoip_t **geoip);

/* The intermediates pool of the files (ngx_certguard_conf_file_t, in
 * order), shared by every block naming the same files; an error names the
 * file and the directive's file:line, warnings go to the log. */
char *ngx_certguard_intermediates_conf(ngx_conf_t *cf, ngx_array_t *files,
    cg_intermediates_t **pool);


/*
 * The id of a client connection as 16 lower-case hex characters and a NUL:
 * the same for every request and record of the connection, different for
 * every other connection of any worker, reload or restart (a digest of a
 * per-process random key, the pid and c->number).  $certguard_id and CEF
 * connectionId of both modules; an HTTP/2 stream gives its connection's.
 */
void ngx_certguard_conn_id(ngx_connection_t *c, u_char buf[17]);

/* The value of a $certguard_* variable from a result (res NULL: empty);
 * ev is only used for NGX_CERTGUARD_VAR_CEF. */
ngx_int_t ngx_certguard_variable(ngx_pool_t *pool, const cg_result_t *res,
    const cg_event_t *ev, ngx_certguard_var_e which,
    ngx_variable_value_t *v);


#endif /* NGX_CERTGUARD_SHARED_H_INCLUDED_ */
