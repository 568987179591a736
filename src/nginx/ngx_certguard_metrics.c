/*
 * Counters in shared memory and their Prometheus exposition (see
 * ngx_certguard_metrics.h).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_certguard_metrics.h"


#define NGX_CERTGUARD_METRICS_ZONE  "certguard_metrics_"


static ngx_int_t ngx_certguard_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


/* From a fast loopback handshake to certguard_probe_timeout, in ms. */
static ngx_msec_t  ngx_certguard_metrics_bounds[NGX_CERTGUARD_METRICS_BUCKETS]
    = { 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000 };


/* the bounds as Prometheus writes them in "le" */
static const char  *ngx_certguard_metrics_le[NGX_CERTGUARD_METRICS_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    "10"
};


/* The reasons a refusal names; anything else counts as "other". */
static const char  *ngx_certguard_metrics_reasons[] = {
    "port", "name", "special_address", "own_address", "denied_address",
    "unresolved", "error", "auth_missing", "auth_malformed",
    "auth_unknown_user", "auth_bad_password", "auth_error",
    "not_absolute_uri", "scheme", "host", "userinfo", "malformed",
    "other", NULL
};

#define NGX_CERTGUARD_METRICS_OTHER  17


static const char  *ngx_certguard_metrics_probe_results[] = {
    "ok", "timeout", "error"
};


/* This shared object's zone: one module's. */
static ngx_certguard_metrics_t  *ngx_certguard_metrics;


ngx_int_t
ngx_certguard_metrics_conf(ngx_conf_t *cf, const char *module)
{
    ngx_str_t        name;
    ngx_shm_zone_t  *shm_zone;

    name.len = sizeof(NGX_CERTGUARD_METRICS_ZONE) - 1 + ngx_strlen(module);
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name.data, NGX_CERTGUARD_METRICS_ZONE "%s", module);

    shm_zone = ngx_shared_memory_add(cf, &name, 8 * ngx_pagesize,
                                     &ngx_certguard_metrics);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_certguard_metrics_init_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_certguard_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t  *shpool;

    /* the zone of the previous cycle: its counters go on */

    if (data) {
        shm_zone->data = data;
        ngx_certguard_metrics = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        ngx_certguard_metrics = shpool->data;
        return NGX_OK;
    }

    ngx_certguard_metrics = ngx_slab_calloc(shpool,
                                            sizeof(ngx_certguard_metrics_t));
    if (ngx_certguard_metrics == NULL) {
        return NGX_ERROR;
    }

    shpool->data = ngx_certguard_metrics;
    shm_zone->data = ngx_certguard_metrics;

    return NGX_OK;
}


void
ngx_certguard_metrics_verdict(const cg_result_t *res)
{
    unsigned                  i, j, n;
    cg_signal_info_t          info;
    ngx_certguard_metrics_t  *m = ngx_certguard_metrics;

    if (m == NULL) {
        return;
    }

    (void) ngx_atomic_fetch_add(&m->verdicts[res->verdict <= CG_BLOCK
                                             ? res->verdict : CG_BLOCK], 1);

    n = ngx_min(cg_signal_count(), NGX_CERTGUARD_METRICS_SIGNALS);

    for (i = 0; i < res->nhits && i < CG_MAX_HITS; i++) {

        for (j = 0; j < n; j++) {
            if (cg_signal_info(j, &info) == CG_OK
                && ngx_strcmp(info.id, res->hits[i].id) == 0)
            {
                break;
            }
        }

        /* j == n: a custom rule of the policy */

        (void) ngx_atomic_fetch_add(&m->signals[j], 1);
    }
}


void
ngx_certguard_metrics_cache(ngx_uint_t hit)
{
    if (ngx_certguard_metrics) {
        (void) ngx_atomic_fetch_add(hit ? &ngx_certguard_metrics->cache_hits
                                    : &ngx_certguard_metrics->cache_misses,
                                    1);
    }
}


void
ngx_certguard_metrics_verify_memo(ngx_uint_t hit)
{
    if (ngx_certguard_metrics) {
        (void) ngx_atomic_fetch_add(hit
                                    ? &ngx_certguard_metrics->verify_memo_hits
                                    : &ngx_certguard_metrics
                                          ->verify_memo_misses,
                                    1);
    }
}


void
ngx_certguard_metrics_decoded_certs(ngx_atomic_uint_t hits,
    ngx_atomic_uint_t misses)
{
    if (ngx_certguard_metrics) {
        (void) ngx_atomic_fetch_add(&ngx_certguard_metrics->decoded_certs_hits,
                                    hits);
        (void) ngx_atomic_fetch_add(
                                &ngx_certguard_metrics->decoded_certs_misses,
                                misses);
    }
}


void
ngx_certguard_metrics_eviction(void)
{
    if (ngx_certguard_metrics) {
        (void) ngx_atomic_fetch_add(&ngx_certguard_metrics->cache_evictions,
                                    1);
    }
}


void
ngx_certguard_metrics_probe(ngx_certguard_probe_result_e result,
    ngx_msec_t duration)
{
    ngx_uint_t                i;
    ngx_certguard_metrics_t  *m = ngx_certguard_metrics;

    if (m == NULL || result >= NGX_CERTGUARD_PROBE_RESULTS) {
        return;
    }

    (void) ngx_atomic_fetch_add(&m->probes[result], 1);
    (void) ngx_atomic_fetch_add(&m->probe_count, 1);
    (void) ngx_atomic_fetch_add(&m->probe_msec, duration);

    /* cumulative buckets are summed when printed: one add here */

    for (i = 0; i < NGX_CERTGUARD_METRICS_BUCKETS; i++) {
        if (duration <= ngx_certguard_metrics_bounds[i]) {
            (void) ngx_atomic_fetch_add(&m->probe_buckets[i], 1);
            break;
        }
    }
}


void
ngx_certguard_metrics_refusal(const char *reason)
{
    ngx_uint_t                i;
    ngx_certguard_metrics_t  *m = ngx_certguard_metrics;

    if (m == NULL) {
        return;
    }

    for (i = 0; ngx_certguard_metrics_reasons[i]; i++) {
        if (ngx_strcmp(ngx_certguard_metrics_reasons[i], reason) == 0) {
            break;
        }
    }

    if (ngx_certguard_metrics_reasons[i] == NULL) {
        i = NGX_CERTGUARD_METRICS_OTHER;
    }

    (void) ngx_atomic_fetch_add(&m->refusals[i], 1);

    if (ngx_strncmp(reason, "auth_", 5) == 0
        && ngx_strcmp(reason, "auth_missing") != 0)
    {
        (void) ngx_atomic_fetch_add(&m->auth_failures, 1);
    }
}


void
ngx_certguard_zones_init(ngx_certguard_zones_t *it, ngx_cycle_t *cycle)
{
    it->part = &cycle->shared_memory.part;
    it->next = 0;
    ngx_str_null(&it->rest);
}


ngx_shm_zone_t *
ngx_certguard_zones_next(ngx_certguard_zones_t *it, u_char *prefix,
    size_t len)
{
    ngx_shm_zone_t  *zone;

    for ( ;; ) {

        if (it->next >= it->part->nelts) {
            if (it->part->next == NULL) {
                return NULL;
            }

            it->part = it->part->next;
            it->next = 0;
            continue;
        }

        zone = (ngx_shm_zone_t *) it->part->elts + it->next++;

        if (zone->shm.name.len > len
            && ngx_strncmp(zone->shm.name.data, prefix, len) == 0)
        {
            it->rest.data = zone->shm.name.data + len;
            it->rest.len = zone->shm.name.len - len;
            return zone;
        }
    }
}


typedef struct {
    ngx_str_t                 module;
    ngx_certguard_metrics_t  *m;
} ngx_certguard_metrics_zone_t;


/* A counter with one value a module: the name, its HELP text, and where
 * the value is in a zone. */

static u_char *
ngx_certguard_metrics_counter(u_char *p, u_char *last,
    ngx_certguard_metrics_zone_t *z, ngx_uint_t n, const char *name,
    const char *help, size_t offset)
{
    ngx_uint_t  k;

    p = ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s counter\n",
                     name, help, name);

    for (k = 0; k < n; k++) {
        p = ngx_slprintf(p, last, "%s{module=\"%V\"} %uA\n", name,
                         &z[k].module,
                         *(ngx_atomic_t *) ((u_char *) z[k].m + offset));
    }

    return p;
}


ngx_chain_t *
ngx_certguard_metrics_page(ngx_pool_t *pool, ngx_cycle_t *cycle)
{
    u_char                        *p, *last;
    unsigned                       j, nsig;
    ngx_buf_t                     *b;
    ngx_uint_t                     k, n, cum;
    ngx_chain_t                   *out;
    ngx_shm_zone_t                *zone;
    cg_signal_info_t               info;
    ngx_certguard_metrics_t       *m;
    ngx_certguard_zones_t          it;
    ngx_certguard_metrics_zone_t   z[4];

    n = 0;
    ngx_certguard_zones_init(&it, cycle);

    while (n < 4) {
        zone = ngx_certguard_zones_next(&it,
                                        (u_char *) NGX_CERTGUARD_METRICS_ZONE,
                                        sizeof(NGX_CERTGUARD_METRICS_ZONE) - 1);
        if (zone == NULL) {
            break;
        }

        if (zone->data == NULL) {
            continue;
        }

        z[n].module = it.rest;      /* the label: "http" or "stream" */
        z[n].m = zone->data;
        n++;
    }

    b = ngx_create_temp_buf(pool, 64 * 1024);
    out = ngx_alloc_chain_link(pool);
    if (b == NULL || out == NULL) {
        return NULL;
    }

    p = b->pos;
    last = b->end;

    /* each family whole, with the samples of every module in it */

    p = ngx_slprintf(p, last,
            "# HELP certguard_verdicts_total Certificate verdicts, "
            "cache hits included.\n"
            "# TYPE certguard_verdicts_total counter\n");

    for (k = 0; k < n; k++) {
        for (j = 0; j <= CG_BLOCK; j++) {
            p = ngx_slprintf(p, last,
                    "certguard_verdicts_total{module=\"%V\",verdict=\"%s\"} "
                    "%uA\n", &z[k].module, cg_verdict_name(j),
                    z[k].m->verdicts[j]);
        }
    }

    p = ngx_slprintf(p, last,
            "# HELP certguard_signals_total Signals fired in verdicts "
            "(custom rules of the policy as signal=\"custom\").\n"
            "# TYPE certguard_signals_total counter\n");

    nsig = ngx_min(cg_signal_count(), NGX_CERTGUARD_METRICS_SIGNALS);

    for (k = 0; k < n; k++) {
        for (j = 0; j <= nsig; j++) {
            m = z[k].m;

            if (j < nsig && cg_signal_info(j, &info) != CG_OK) {
                continue;
            }

            p = ngx_slprintf(p, last,
                    "certguard_signals_total{module=\"%V\",signal=\"%s\"} "
                    "%uA\n", &z[k].module, j < nsig ? info.id : "custom",
                    m->signals[j]);
        }
    }

    p = ngx_slprintf(p, last,
            "# HELP certguard_cache_requests_total Verdict cache lookups.\n"
            "# TYPE certguard_cache_requests_total counter\n");

    for (k = 0; k < n; k++) {
        p = ngx_slprintf(p, last,
                "certguard_cache_requests_total{module=\"%V\",result=\"hit\"} "
                "%uA\n"
                "certguard_cache_requests_total{module=\"%V\",result=\"miss\"}"
                " %uA\n",
                &z[k].module, z[k].m->cache_hits,
                &z[k].module, z[k].m->cache_misses);
    }

    p = ngx_certguard_metrics_counter(p, last, z, n,
            "certguard_cache_evictions_total",
            "Entries evicted from a full verdict cache.",
            offsetof(ngx_certguard_metrics_t, cache_evictions));

    p = ngx_slprintf(p, last,
            "# HELP certguard_probes_total Certificate probes of CONNECT "
            "destinations, by outcome.\n"
            "# TYPE certguard_probes_total counter\n");

    for (k = 0; k < n; k++) {
        for (j = 0; j < NGX_CERTGUARD_PROBE_RESULTS; j++) {
            p = ngx_slprintf(p, last,
                    "certguard_probes_total{module=\"%V\",result=\"%s\"} "
                    "%uA\n", &z[k].module,
                    ngx_certguard_metrics_probe_results[j],
                    z[k].m->probes[j]);
        }
    }

    p = ngx_slprintf(p, last,
            "# HELP certguard_probe_duration_seconds Time from the start of "
            "a probe to its verdict or failure.\n"
            "# TYPE certguard_probe_duration_seconds histogram\n");

    for (k = 0; k < n; k++) {
        m = z[k].m;
        cum = 0;

        for (j = 0; j < NGX_CERTGUARD_METRICS_BUCKETS; j++) {
            cum += m->probe_buckets[j];
            p = ngx_slprintf(p, last,
                    "certguard_probe_duration_seconds_bucket{module=\"%V\","
                    "le=\"%s\"} %ui\n", &z[k].module,
                    ngx_certguard_metrics_le[j], cum);
        }

        p = ngx_slprintf(p, last,
                "certguard_probe_duration_seconds_bucket{module=\"%V\","
                "le=\"+Inf\"} %uA\n"
                "certguard_probe_duration_seconds_sum{module=\"%V\"} "
                "%uA.%03uA\n"
                "certguard_probe_duration_seconds_count{module=\"%V\"} "
                "%uA\n",
                &z[k].module, m->probe_count,
                &z[k].module, m->probe_msec / 1000, m->probe_msec % 1000,
                &z[k].module, m->probe_count);
    }

    p = ngx_slprintf(p, last,
            "# HELP certguard_refusals_total Requests refused before any "
            "certificate: destination guards, credentials, malformed "
            "requests.\n"
            "# TYPE certguard_refusals_total counter\n");

    for (k = 0; k < n; k++) {
        for (j = 0; ngx_certguard_metrics_reasons[j]; j++) {
            p = ngx_slprintf(p, last,
                    "certguard_refusals_total{module=\"%V\",reason=\"%s\"} "
                    "%uA\n", &z[k].module, ngx_certguard_metrics_reasons[j],
                    z[k].m->refusals[j]);
        }
    }

    p = ngx_certguard_metrics_counter(p, last, z, n,
            "certguard_auth_failures_total",
            "Failed proxy authentications (wrong or malformed credentials).",
            offsetof(ngx_certguard_metrics_t, auth_failures));

    p = ngx_certguard_metrics_counter(p, last, z, n,
            "certguard_verify_memo_hits_total",
            "Signature checks skipped: the same issuer and certificate "
            "bytes verified before.",
            offsetof(ngx_certguard_metrics_t, verify_memo_hits));

    p = ngx_certguard_metrics_counter(p, last, z, n,
            "certguard_verify_memo_misses_total",
            "Signature checks the memo did not have.",
            offsetof(ngx_certguard_metrics_t, verify_memo_misses));

    p = ngx_certguard_metrics_counter(p, last, z, n,
            "certguard_decoded_certs_hits_total",
            "Certificates above a leaf (sent, or the anchor) a worker had "
            "decoded and described before, by their bytes.",
            offsetof(ngx_certguard_metrics_t, decoded_certs_hits));

    p = ngx_certguard_metrics_counter(p, last, z, n,
            "certguard_decoded_certs_misses_total",
            "Certificates above a leaf new to the worker's "
            "decoded-certificate cache.",
            offsetof(ngx_certguard_metrics_t, decoded_certs_misses));

    b->last = p;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out->buf = b;
    out->next = NULL;

    return out;
}
