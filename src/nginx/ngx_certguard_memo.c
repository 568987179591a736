/*
 * The memo of verified signatures in shared memory.  The table is the
 * engine's (fixed room, four keys a bucket, least recently used out), laid
 * in one slab allocation of the zone and used under the zone's mutex: a
 * lookup or an insert holds it for the compare of one 128-byte bucket,
 * never across a signature check, so the lock costs far less than the
 * check it saves.  A lock-free table would have to publish a 32-byte key
 * atomically; a torn one could only make a miss, but the lock is simpler
 * to argue and not measurable against 13 to 41 µs per verify.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_certguard_memo.h"
#include "ngx_certguard_metrics.h"


static ngx_int_t ngx_certguard_memo_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static int ngx_certguard_memo_lookup(void *data, const unsigned char *key);
static void ngx_certguard_memo_insert(void *data, const unsigned char *key);
static int ngx_certguard_memo_step(X509_STORE_CTX *xs);


/* This shared object's zone: one module's. */
static ngx_shm_zone_t    *ngx_certguard_memo_zone;
static cg_verify_memo_t   ngx_certguard_memo_engine;
static cg_certs_t        *ngx_certguard_certs_worker;
static ngx_uint_t         ngx_certguard_certs_failed;
static uint64_t           ngx_certguard_certs_found;
static uint64_t           ngx_certguard_certs_missed;


char *
ngx_certguard_memo_set(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ssize_t                     size;
    ngx_str_t                  *value, s;
    ngx_certguard_memo_conf_t  *mcf;

    mcf = (ngx_certguard_memo_conf_t *) ((u_char *) conf + cmd->offset);

    if (mcf->set) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        mcf->set = 1;
        mcf->size = 0;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[1].data, "size=", 5) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\": \"off\" or "
                           "\"size=SIZE\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    s.data = value[1].data + 5;
    s.len = value[1].len - 5;

    size = ngx_parse_size(&s);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid memo size \"%V\": at least %uzk",
                           &value[1], 8 * ngx_pagesize / 1024);
        return NGX_CONF_ERROR;
    }

    mcf->set = 1;
    mcf->size = (size_t) size;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_certguard_memo_conf(ngx_conf_t *cf, ngx_certguard_memo_conf_t *mcf,
    const char *module)
{
    size_t           size;
    ngx_str_t        name;
    ngx_shm_zone_t  *shm_zone;

    size = mcf->set ? mcf->size : NGX_CERTGUARD_MEMO_DEFAULT;

    if (size == 0) {
        return NGX_OK;
    }

    name.len = sizeof(NGX_CERTGUARD_MEMO_ZONE) - 1 + ngx_strlen(module);
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(name.data, NGX_CERTGUARD_MEMO_ZONE "%s", module);

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_certguard_memo_engine);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_certguard_memo_init_zone;

    return NGX_OK;
}


/*
 * The worker's zone is found in its own cycle, not remembered from the
 * configuration: a reload that fails after its zones were declared must
 * not leave a respawned worker of the running cycle pointing at them.
 */

ngx_int_t
ngx_certguard_memo_init_process(ngx_cycle_t *cycle, const char *module)
{
    size_t                  len;
    ngx_shm_zone_t         *zone;
    ngx_certguard_zones_t   it;

    ngx_certguard_memo_zone = NULL;

    len = ngx_strlen(module);
    ngx_certguard_zones_init(&it, cycle);

    for ( ;; ) {
        zone = ngx_certguard_zones_next(&it,
                                        (u_char *) NGX_CERTGUARD_MEMO_ZONE,
                                        sizeof(NGX_CERTGUARD_MEMO_ZONE) - 1);
        if (zone == NULL) {
            break;
        }

        if (zone->tag == &ngx_certguard_memo_engine && it.rest.len == len
            && ngx_strncmp(it.rest.data, module, len) == 0)
        {
            ngx_certguard_memo_zone = zone;
            break;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_certguard_memo_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    size_t            size;
    void             *table;
    ngx_slab_pool_t  *shpool;

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    /* the zone of the previous cycle: what it verified still holds */

    if (data) {
        shm_zone->data = data;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    /* the pages the slab pool has, less one for its own small chunks */

    size = (shpool->pfree > 1 ? shpool->pfree - 1 : 1) * ngx_pagesize;

    table = ngx_slab_alloc(shpool, size);
    if (table == NULL || cg_memo_table_init(table, size) != CG_OK) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "certguard: verify memo zone \"%V\" is too small",
                      &shm_zone->shm.name);
        return NGX_ERROR;
    }

    shpool->data = table;
    shm_zone->data = table;

    return NGX_OK;
}


const cg_verify_memo_t *
ngx_certguard_memo(void)
{
    if (ngx_certguard_memo_zone == NULL
        || ngx_certguard_memo_zone->data == NULL)
    {
        return NULL;
    }

    ngx_certguard_memo_engine.lookup = ngx_certguard_memo_lookup;
    ngx_certguard_memo_engine.insert = ngx_certguard_memo_insert;
    ngx_certguard_memo_engine.data = ngx_certguard_memo_zone;

    return &ngx_certguard_memo_engine;
}


/*
 * A worker meets the same few dozen intermediates under thousands of
 * leaves: the object and facts kept for their bytes spare a new leaf the
 * intermediate's extensions, digests, names and key setup.  Bounded by
 * cg_certs.c (256 certificates), per process, so no lock.
 */

cg_certs_t *
ngx_certguard_certs(void)
{
    if (ngx_certguard_memo() == NULL) {
        return NULL;
    }

    if (ngx_certguard_certs_worker == NULL && !ngx_certguard_certs_failed
        && cg_certs_new(&ngx_certguard_certs_worker) != CG_OK)
    {
        ngx_certguard_certs_worker = NULL;
        ngx_certguard_certs_failed = 1;
    }

    return ngx_certguard_certs_worker;
}


void
ngx_certguard_certs_account(void)
{
    uint64_t  found, missed;

    if (ngx_certguard_certs_worker == NULL) {
        return;
    }

    cg_certs_counts(ngx_certguard_certs_worker, &found, &missed);

    ngx_certguard_metrics_decoded_certs(
        (ngx_atomic_uint_t) (found - ngx_certguard_certs_found),
        (ngx_atomic_uint_t) (missed - ngx_certguard_certs_missed));

    ngx_certguard_certs_found = found;
    ngx_certguard_certs_missed = missed;
}


void
ngx_certguard_certs_exit_process(void)
{
    cg_certs_free(ngx_certguard_certs_worker);
    ngx_certguard_certs_worker = NULL;
    ngx_certguard_certs_found = 0;
    ngx_certguard_certs_missed = 0;
}


static int
ngx_certguard_memo_lookup(void *data, const unsigned char *key)
{
    int               hit;
    ngx_shm_zone_t   *shm_zone;
    ngx_slab_pool_t  *shpool;

    shm_zone = data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);
    hit = cg_memo_table_lookup(shm_zone->data, key);
    ngx_shmtx_unlock(&shpool->mutex);

    ngx_certguard_metrics_verify_memo(hit);

    return hit;
}


static void
ngx_certguard_memo_insert(void *data, const unsigned char *key)
{
    ngx_shm_zone_t   *shm_zone;
    ngx_slab_pool_t  *shpool;

    shm_zone = data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    ngx_shmtx_lock(&shpool->mutex);
    cg_memo_table_insert(shm_zone->data, key);
    ngx_shmtx_unlock(&shpool->mutex);
}


int
ngx_certguard_memo_verify_cert(X509_STORE_CTX *xs)
{
    /*
     * the step replaced is OpenSSL's signature and validity-time pass;
     * nginx's context has no DANE (the one thing the engine's copy of the
     * step leaves out), and everything else of the stock verification runs
     * as it does without certguard
     */

    if (ngx_certguard_memo() != NULL && cg_memo_supported()) {
        X509_STORE_CTX_set_verify(xs, ngx_certguard_memo_step);
    }

    return X509_verify_cert(xs);
}


static int
ngx_certguard_memo_step(X509_STORE_CTX *xs)
{
    return cg_memo_verify(xs, ngx_certguard_memo());
}
