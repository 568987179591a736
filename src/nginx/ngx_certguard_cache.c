/*
 * The shared-memory verdict cache of both modules.
 *
 * A red-black tree (hash of the key, then the key bytes) and an LRU queue
 * in a slab zone.  An entry holds the flat cg_result_t, so a hit is one
 * memcpy under the zone's mutex; when the slab allocator runs out, the
 * least recently used entries go first, so the zone stays bounded.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_certguard_shared.h"
#include "ngx_certguard_metrics.h"


typedef struct {
    ngx_rbtree_t                  rbtree;
    ngx_rbtree_node_t             sentinel;
    ngx_queue_t                   lru;          /* most recent first */
    ngx_uint_t                    generation;
} ngx_certguard_cache_sh_t;


typedef struct {
    ngx_certguard_cache_sh_t     *sh;
    ngx_slab_pool_t              *shpool;
    ngx_uint_t                    generation;   /* of this configuration */
} ngx_certguard_cache_ctx_t;


typedef struct {
    ngx_rbtree_node_t             node;         /* key: crc32 of the key */
    ngx_queue_t                   queue;
    time_t                        expire;
    ngx_uint_t                    generation;   /* of the configuration */
    ngx_uint_t                    pending;      /* a claim, no result yet */
    size_t                        keylen;
    size_t                        bloblen;
    cg_result_t                   result;
    u_char                        data[1];      /* key, then blob */
} ngx_certguard_cache_node_t;


static ngx_int_t ngx_certguard_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_certguard_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_certguard_cache_node_t *ngx_certguard_cache_find(
    ngx_certguard_cache_ctx_t *ctx, ngx_str_t *key, uint32_t hash);
static void ngx_certguard_cache_delete(ngx_certguard_cache_ctx_t *ctx,
    ngx_certguard_cache_node_t *cn);
static ngx_certguard_cache_node_t *ngx_certguard_cache_alloc(
    ngx_certguard_cache_ctx_t *ctx, size_t size);


char *
ngx_certguard_cache_conf(ngx_conf_t *cf, void *tag,
    ngx_certguard_cache_t *cache)
{
    u_char                     *p;
    ssize_t                     size;
    ngx_str_t                  *value, name, s;
    ngx_int_t                   valid;
    ngx_uint_t                  i;
    ngx_shm_zone_t             *shm_zone;
    ngx_certguard_cache_ctx_t  *ctx;

    if (cache->shm_zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        cache->shm_zone = NULL;
        cache->valid = 0;
        return NGX_CONF_OK;
    }

    ngx_str_null(&name);
    size = 0;
    valid = NGX_CERTGUARD_CACHE_VALID;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            name.data = value[i].data + 5;
            name.len = value[i].len - 5;

            p = (u_char *) ngx_strchr(name.data, ':');

            if (p) {
                s.data = p + 1;
                s.len = name.data + name.len - s.data;
                name.len = p - name.data;

                size = ngx_parse_size(&s);

                if (size == NGX_ERROR) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "invalid zone size \"%V\"", &value[i]);
                    return NGX_CONF_ERROR;
                }

                if (size < (ssize_t) (8 * ngx_pagesize)) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "zone \"%V\" is too small", &value[i]);
                    return NGX_CONF_ERROR;
                }
            }

            if (name.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone name \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "valid=", 6) == 0) {

            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            valid = ngx_parse_time(&s, 1);

            if (valid == NGX_ERROR || valid == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"valid\" value \"%V\"",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"certguard_cache\" must have "
                           "\"zone\" parameter");
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size, tag);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data == NULL) {
        ctx = ngx_pcalloc(cf->pool, sizeof(ngx_certguard_cache_ctx_t));
        if (ctx == NULL) {
            return NGX_CONF_ERROR;
        }

        shm_zone->init = ngx_certguard_cache_init_zone;
        shm_zone->data = ctx;
    }

    cache->shm_zone = shm_zone;
    cache->valid = valid;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_certguard_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_certguard_cache_ctx_t  *octx = data;

    size_t                      len;
    ngx_certguard_cache_ctx_t  *ctx;

    ctx = shm_zone->data;

    if (octx) {
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        goto done;
    }

    ctx->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        ctx->sh = ctx->shpool->data;
        goto done;
    }

    ctx->sh = ngx_slab_alloc(ctx->shpool, sizeof(ngx_certguard_cache_sh_t));
    if (ctx->sh == NULL) {
        return NGX_ERROR;
    }

    ctx->shpool->data = ctx->sh;

    ngx_rbtree_init(&ctx->sh->rbtree, &ctx->sh->sentinel,
                    ngx_certguard_cache_rbtree_insert);
    ngx_queue_init(&ctx->sh->lru);
    ctx->sh->generation = 0;

    len = sizeof(" in certguard zone \"\"") + shm_zone->shm.name.len;

    ctx->shpool->log_ctx = ngx_slab_alloc(ctx->shpool, len);
    if (ctx->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(ctx->shpool->log_ctx, " in certguard zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* running out of slab memory is normal: the LRU entries are evicted */
    ctx->shpool->log_nomem = 0;

done:

    ngx_shmtx_lock(&ctx->shpool->mutex);
    ctx->generation = ++ctx->sh->generation;
    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


static void
ngx_certguard_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t           **p;
    ngx_certguard_cache_node_t   *cn, *cnt;

    for ( ;; ) {

        if (node->key != temp->key) {
            p = (node->key < temp->key) ? &temp->left : &temp->right;

        } else {
            cn = (ngx_certguard_cache_node_t *) node;
            cnt = (ngx_certguard_cache_node_t *) temp;

            p = (ngx_memn2cmp(cn->data, cnt->data, cn->keylen, cnt->keylen)
                 < 0) ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_certguard_cache_node_t *
ngx_certguard_cache_find(ngx_certguard_cache_ctx_t *ctx, ngx_str_t *key,
    uint32_t hash)
{
    ngx_int_t                    rc;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_certguard_cache_node_t  *cn;

    node = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        cn = (ngx_certguard_cache_node_t *) node;

        rc = ngx_memn2cmp(key->data, cn->data, key->len, cn->keylen);

        if (rc == 0) {
            return cn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_certguard_cache_delete(ngx_certguard_cache_ctx_t *ctx,
    ngx_certguard_cache_node_t *cn)
{
    ngx_queue_remove(&cn->queue);
    ngx_rbtree_delete(&ctx->sh->rbtree, &cn->node);
    ngx_slab_free_locked(ctx->shpool, cn);
}


/* Evicts the least recently used entries until the node fits, if it can. */

static ngx_certguard_cache_node_t *
ngx_certguard_cache_alloc(ngx_certguard_cache_ctx_t *ctx, size_t size)
{
    ngx_queue_t                 *q;
    ngx_certguard_cache_node_t  *cn;

    for ( ;; ) {
        cn = ngx_slab_alloc_locked(ctx->shpool, size);

        if (cn != NULL || ngx_queue_empty(&ctx->sh->lru)) {
            return cn;
        }

        q = ngx_queue_last(&ctx->sh->lru);
        ngx_certguard_cache_delete(ctx,
                  ngx_queue_data(q, ngx_certguard_cache_node_t, queue));

        ngx_certguard_metrics_eviction();
    }
}


ngx_int_t
ngx_certguard_cache_get(ngx_certguard_cache_t *cache, ngx_str_t *key,
    cg_result_t *res, ngx_pool_t *pool, ngx_str_t *blob)
{
    uint32_t                     hash;
    ngx_int_t                    rc;
    ngx_certguard_cache_ctx_t   *ctx;
    ngx_certguard_cache_node_t  *cn;

    if (cache == NULL || cache->shm_zone == NULL) {
        return NGX_DECLINED;
    }

    ctx = cache->shm_zone->data;
    hash = ngx_crc32_short(key->data, key->len);

    if (blob) {
        ngx_str_null(blob);
    }

    rc = NGX_DECLINED;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_certguard_cache_find(ctx, key, hash);

    if (cn == NULL) {
        goto done;
    }

    if (cn->expire <= ngx_time()) {
        ngx_certguard_cache_delete(ctx, cn);
        goto done;
    }

    /* a verdict of another configuration (before or after a reload) */

    if (cn->generation != ctx->generation) {
        goto done;
    }

    if (cn->pending) {
        rc = NGX_BUSY;
        goto done;
    }

    ngx_memcpy(res, &cn->result, sizeof(cg_result_t));

    if (blob && cn->bloblen) {
        blob->data = ngx_pnalloc(pool, cn->bloblen);
        if (blob->data == NULL) {
            rc = NGX_ERROR;
            goto done;
        }

        ngx_memcpy(blob->data, cn->data + cn->keylen, cn->bloblen);
        blob->len = cn->bloblen;
    }

    ngx_queue_remove(&cn->queue);
    ngx_queue_insert_head(&ctx->sh->lru, &cn->queue);

    rc = NGX_OK;

done:

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


ngx_int_t
ngx_certguard_cache_put(ngx_certguard_cache_t *cache, ngx_str_t *key,
    const cg_result_t *res, ngx_str_t *blob)
{
    size_t                       size, bloblen;
    time_t                       now, expire;
    uint32_t                     hash;
    ngx_certguard_cache_ctx_t   *ctx;
    ngx_certguard_cache_node_t  *cn;

    if (cache == NULL || cache->shm_zone == NULL) {
        return NGX_DECLINED;
    }

    ctx = cache->shm_zone->data;
    hash = ngx_crc32_short(key->data, key->len);

    /* a verdict does not outlive the certificate it is about */

    now = ngx_time();
    expire = now + cache->valid;

    if (res->not_after > now && res->not_after < expire) {
        expire = (time_t) res->not_after;
    }

    bloblen = (blob && blob->len <= NGX_CERTGUARD_BLOB_MAX) ? blob->len : 0;
    size = offsetof(ngx_certguard_cache_node_t, data) + key->len + bloblen;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_certguard_cache_find(ctx, key, hash);
    if (cn) {
        ngx_certguard_cache_delete(ctx, cn);
    }

    cn = ngx_certguard_cache_alloc(ctx, size);
    if (cn == NULL) {
        ngx_shmtx_unlock(&ctx->shpool->mutex);
        return NGX_ERROR;
    }

    cn->node.key = hash;
    cn->expire = expire;
    cn->generation = ctx->generation;
    cn->pending = 0;
    cn->keylen = key->len;
    cn->bloblen = bloblen;
    ngx_memcpy(&cn->result, res, sizeof(cg_result_t));
    ngx_memcpy(cn->data, key->data, key->len);

    if (bloblen) {
        ngx_memcpy(cn->data + key->len, blob->data, bloblen);
    }

    ngx_rbtree_insert(&ctx->sh->rbtree, &cn->node);
    ngx_queue_insert_head(&ctx->sh->lru, &cn->queue);

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


ngx_int_t
ngx_certguard_cache_claim(ngx_certguard_cache_t *cache, ngx_str_t *key,
    time_t ttl)
{
    size_t                       size;
    uint32_t                     hash;
    ngx_int_t                    rc;
    ngx_certguard_cache_ctx_t   *ctx;
    ngx_certguard_cache_node_t  *cn;

    if (cache == NULL || cache->shm_zone == NULL) {
        return NGX_OK;
    }

    ctx = cache->shm_zone->data;
    hash = ngx_crc32_short(key->data, key->len);
    size = offsetof(ngx_certguard_cache_node_t, data) + key->len;

    rc = NGX_OK;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_certguard_cache_find(ctx, key, hash);

    if (cn && cn->expire > ngx_time() && cn->generation == ctx->generation) {
        /* somebody else probes, or has just stored the result */
        rc = cn->pending ? NGX_BUSY : NGX_DECLINED;
        goto done;
    }

    if (cn) {
        ngx_certguard_cache_delete(ctx, cn);
    }

    cn = ngx_certguard_cache_alloc(ctx, size);
    if (cn == NULL) {
        goto done;              /* no room for a claim: probe anyway */
    }

    ngx_memzero(&cn->result, sizeof(cg_result_t));
    cn->node.key = hash;
    cn->expire = ngx_time() + ttl;
    cn->generation = ctx->generation;
    cn->pending = 1;
    cn->keylen = key->len;
    cn->bloblen = 0;
    ngx_memcpy(cn->data, key->data, key->len);

    ngx_rbtree_insert(&ctx->sh->rbtree, &cn->node);
    ngx_queue_insert_head(&ctx->sh->lru, &cn->queue);

done:

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


void
ngx_certguard_cache_release(ngx_certguard_cache_t *cache, ngx_str_t *key)
{
    ngx_certguard_cache_ctx_t   *ctx;
    ngx_certguard_cache_node_t  *cn;

    if (cache == NULL || cache->shm_zone == NULL) {
        return;
    }

    ctx = cache->shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_certguard_cache_find(ctx, key,
                                  ngx_crc32_short(key->data, key->len));

    if (cn && cn->pending) {
        ngx_certguard_cache_delete(ctx, cn);
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);
}


ngx_uint_t
ngx_certguard_cache_generation(ngx_certguard_cache_t *cache)
{
    ngx_certguard_cache_ctx_t  *ctx;

    if (cache == NULL || cache->shm_zone == NULL) {
        return 0;
    }

    ctx = cache->shm_zone->data;

    return ctx->generation;
}
