/*
 * Counters of both modules in shared memory, for certguard_status (the
 * Prometheus text exposition format).
 *
 * Each module has a zone of its own ("certguard_metrics_http",
 * "certguard_metrics_stream"): the two modules are separate shared objects,
 * each with its own copy of this code, and nginx keeps a zone to the module
 * that declared it.  The status page reads both zones by name.  A zone
 * keeps its size and name across reloads, so nginx hands the same memory
 * to the new cycle and the counters go on.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef NGX_CERTGUARD_METRICS_H_INCLUDED_
#define NGX_CERTGUARD_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "certguard.h"


#define NGX_CERTGUARD_METRICS_SIGNALS   96      /* built-ins, then "custom" */
#define NGX_CERTGUARD_METRICS_BUCKETS   11


typedef enum {
    NGX_CERTGUARD_PROBE_OK = 0,
    NGX_CERTGUARD_PROBE_TIMEOUT,
    NGX_CERTGUARD_PROBE_ERROR,
    NGX_CERTGUARD_PROBE_RESULTS
} ngx_certguard_probe_result_e;


typedef struct {
    ngx_atomic_t                verdicts[3];    /* allow, tag, block */
    ngx_atomic_t                signals[NGX_CERTGUARD_METRICS_SIGNALS + 1];
    ngx_atomic_t                cache_hits;
    ngx_atomic_t                cache_misses;
    ngx_atomic_t                cache_evictions;
    ngx_atomic_t                probes[NGX_CERTGUARD_PROBE_RESULTS];
    ngx_atomic_t                probe_buckets[NGX_CERTGUARD_METRICS_BUCKETS];
    ngx_atomic_t                probe_count;
    ngx_atomic_t                probe_msec;     /* sum */
    ngx_atomic_t                refusals[32];
    ngx_atomic_t                auth_failures;
    ngx_atomic_t                verify_memo_hits;
    ngx_atomic_t                verify_memo_misses;
    ngx_atomic_t                decoded_certs_hits;
    ngx_atomic_t                decoded_certs_misses;
} ngx_certguard_metrics_t;


/*
 * The cycle's shared zones whose names are a prefix and more, one a call
 * of ngx_certguard_zones_next() (NULL after the last), with what follows
 * the prefix in rest: each module names its zones prefix + "http" or
 * "stream", and a zone of the other shared object is found only by name.
 */
typedef struct {
    ngx_list_part_t            *part;
    ngx_uint_t                  next;
    ngx_str_t                   rest;
} ngx_certguard_zones_t;


void ngx_certguard_zones_init(ngx_certguard_zones_t *it, ngx_cycle_t *cycle);
ngx_shm_zone_t *ngx_certguard_zones_next(ngx_certguard_zones_t *it,
    u_char *prefix, size_t len);

/* Declares this module's zone ("http" or "stream"); from the module's
 * postconfiguration. */
ngx_int_t ngx_certguard_metrics_conf(ngx_conf_t *cf, const char *module);

void ngx_certguard_metrics_verdict(const cg_result_t *res);
void ngx_certguard_metrics_cache(ngx_uint_t hit);
void ngx_certguard_metrics_eviction(void);
void ngx_certguard_metrics_verify_memo(ngx_uint_t hit);
void ngx_certguard_metrics_decoded_certs(ngx_atomic_uint_t hits,
    ngx_atomic_uint_t misses);
void ngx_certguard_metrics_probe(ngx_certguard_probe_result_e result,
    ngx_msec_t duration);

/* A refusal by its reason word (ngx_certguard_guard_reason(),
 * ngx_certguard_auth_reason(), or a request reason); auth failures (not a
 * first request without credentials) are also counted apart. */
void ngx_certguard_metrics_refusal(const char *reason);

/* The exposition of both modules' zones, from the pool. */
ngx_chain_t *ngx_certguard_metrics_page(ngx_pool_t *pool, ngx_cycle_t *cycle);


#endif /* NGX_CERTGUARD_METRICS_H_INCLUDED_ */
