/*
 * The shared-memory verdict cache of both modules.
 *
 * A red-black tree (by the SHA-256 of the key) and an LRU queue in a slab
 * zone.  An entry holds the result in its packed form (cg_result_pack(), a
 * few hundred bytes for most certificates), so a hit is a copy of those
 * bytes under the zone's mutex and an unpack after it; when the slab
 * allocator runs out, the least recently used entries go first, so the
 * zone stays bounded.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

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


/*
 * Every allocation of the zone after its start is one block of one slab
 * size class, so memory an eviction frees is memory the next entry can
 * use: an insertion evicts about as many blocks as it needs, not a run of
 * contiguous pages.  An entry is a head block (tree node, LRU link, key
 * digest, the first bytes of the packed result) and, for a result too
 * large for it, more blocks in a list.
 */
#define NGX_CERTGUARD_CACHE_BLOCK     512


typedef struct ngx_certguard_cache_block_s  ngx_certguard_cache_block_t;

struct ngx_certguard_cache_block_s {
    ngx_certguard_cache_block_t  *next;
    u_char                        data[NGX_CERTGUARD_CACHE_BLOCK
                                       - sizeof(void *)];
};


typedef struct {
    ngx_rbtree_node_t             node;         /* key: digest's first bytes */
    ngx_queue_t                   queue;
    time_t                        expire;
    ngx_certguard_cache_block_t  *more;         /* the rest of the result */
    uint32_t                      generation;   /* of the configuration */
    uint16_t                      len;          /* packed bytes */
    u_char                        pending;      /* a claim, no result yet */
    u_char                        key[SHA256_DIGEST_LENGTH];
    u_char                        data[1];      /* the packed result */
} ngx_certguard_cache_node_t;


#define NGX_CERTGUARD_CACHE_HEAD                                              \
    (NGX_CERTGUARD_CACHE_BLOCK - offsetof(ngx_certguard_cache_node_t, data))
#define NGX_CERTGUARD_CACHE_MORE                                              \
    sizeof(((ngx_certguard_cache_block_t *) 0)->data)


static ngx_int_t ngx_certguard_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_certguard_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_certguard_cache_digest(ngx_str_t *key, u_char *md);
static ngx_certguard_cache_node_t *ngx_certguard_cache_find(
    ngx_certguard_cache_ctx_t *ctx, u_char *md);
static void ngx_certguard_cache_delete(ngx_certguard_cache_ctx_t *ctx,
    ngx_certguard_cache_node_t *cn);
static void *ngx_certguard_cache_block(ngx_certguard_cache_ctx_t *ctx);
static ngx_certguard_cache_node_t *ngx_certguard_cache_alloc(
    ngx_certguard_cache_ctx_t *ctx, u_char *md, const u_char *data,
    size_t len);


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

            p = (ngx_memcmp(cn->key, cnt->key, sizeof(cn->key)) < 0)
                ? &temp->left : &temp->right;
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


/*
 * Entries are found by the SHA-256 of the caller's key: a fixed size
 * whatever the name, and no two keys an attacker chooses (host names)
 * share one.
 */
static ngx_int_t
ngx_certguard_cache_digest(ngx_str_t *key, u_char *md)
{
    return ngx_certguard_sha256(key->data, key->len, md);
}


/*
 * The digest and its context are made once per process (OpenSSL 3's
 * SHA256() and EVP_sha256() fetch the algorithm on every call, 0.3 us).
 */
static EVP_MD *
ngx_certguard_md_sha256(void)
{
    static EVP_MD  *sha256;

    if (sha256 == NULL) {
        sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    }

    return sha256;
}


ngx_int_t
ngx_certguard_sha256(const u_char *data, size_t len, u_char *md)
{
    unsigned int         n;
    static EVP_MD_CTX   *ctx;

    if (ngx_certguard_md_sha256() == NULL) {
        return NGX_ERROR;
    }

    if (ctx == NULL) {
        ctx = EVP_MD_CTX_new();

        if (ctx == NULL) {
            return NGX_ERROR;
        }
    }

    if (EVP_DigestInit_ex(ctx, ngx_certguard_md_sha256(), NULL) != 1
        || EVP_DigestUpdate(ctx, data, len) != 1
        || EVP_DigestFinal_ex(ctx, md, &n) != 1)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a certificate's SHA-256, 32 bytes, through the digest fetched once */
ngx_int_t
ngx_certguard_cert_sha256(X509 *x, u_char *md)
{
    unsigned int  n;

    if (ngx_certguard_md_sha256() == NULL
        || X509_digest(x, ngx_certguard_md_sha256(), md, &n) != 1
        || n != 32)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_rbtree_key_t
ngx_certguard_cache_hash(u_char *md)
{
    ngx_rbtree_key_t  k;

    ngx_memcpy(&k, md, sizeof(k));

    return k;
}


static ngx_certguard_cache_node_t *
ngx_certguard_cache_find(ngx_certguard_cache_ctx_t *ctx, u_char *md)
{
    ngx_int_t                    rc;
    ngx_rbtree_key_t             hash;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_certguard_cache_node_t  *cn;

    hash = ngx_certguard_cache_hash(md);
    node = ctx->sh->rbtree.root;
    sentinel = ctx->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        cn = (ngx_certguard_cache_node_t *) node;

        rc = ngx_memcmp(md, cn->key, sizeof(cn->key));

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
    ngx_certguard_cache_block_t  *b, *next;

    ngx_queue_remove(&cn->queue);
    ngx_rbtree_delete(&ctx->sh->rbtree, &cn->node);

    for (b = cn->more; b; b = next) {
        next = b->next;
        ngx_slab_free_locked(ctx->shpool, b);
    }

    ngx_slab_free_locked(ctx->shpool, cn);
}


/* One block, evicting the least recently used entries until one is free;
 * each eviction frees at least one block of the same size class. */

static void *
ngx_certguard_cache_block(ngx_certguard_cache_ctx_t *ctx)
{
    void         *p;
    ngx_queue_t  *q;

    for ( ;; ) {
        p = ngx_slab_alloc_locked(ctx->shpool, NGX_CERTGUARD_CACHE_BLOCK);

        if (p != NULL || ngx_queue_empty(&ctx->sh->lru)) {
            return p;
        }

        q = ngx_queue_last(&ctx->sh->lru);
        ngx_certguard_cache_delete(ctx,
                  ngx_queue_data(q, ngx_certguard_cache_node_t, queue));

        ngx_certguard_metrics_eviction();
    }
}


/* A new entry holding len packed bytes, in the tree and first in the LRU
 * queue; NULL when the zone cannot hold it even empty. */

static ngx_certguard_cache_node_t *
ngx_certguard_cache_alloc(ngx_certguard_cache_ctx_t *ctx, u_char *md,
    const u_char *data, size_t len)
{
    u_char                        *p;
    size_t                         n;
    ngx_certguard_cache_node_t    *cn;
    ngx_certguard_cache_block_t   *b, *next, **last;

    cn = ngx_certguard_cache_block(ctx);
    if (cn == NULL) {
        return NULL;
    }

    ngx_memzero(cn, offsetof(ngx_certguard_cache_node_t, data));
    cn->len = (uint16_t) len;

    n = ngx_min(len, NGX_CERTGUARD_CACHE_HEAD);
    p = cn->data;
    last = &cn->more;

    for ( ;; ) {
        if (n) {
            ngx_memcpy(p, data, n);
            data += n;
            len -= n;
        }

        if (len == 0) {
            break;
        }

        b = ngx_certguard_cache_block(ctx);

        if (b == NULL) {
            for (b = cn->more; b; b = next) {
                next = b->next;
                ngx_slab_free_locked(ctx->shpool, b);
            }

            ngx_slab_free_locked(ctx->shpool, cn);
            return NULL;
        }

        b->next = NULL;
        *last = b;
        last = &b->next;

        n = ngx_min(len, NGX_CERTGUARD_CACHE_MORE);
        p = b->data;
    }

    ngx_memcpy(cn->key, md, sizeof(cn->key));
    cn->node.key = ngx_certguard_cache_hash(md);
    cn->generation = (uint32_t) ctx->generation;

    ngx_rbtree_insert(&ctx->sh->rbtree, &cn->node);
    ngx_queue_insert_head(&ctx->sh->lru, &cn->queue);

    return cn;
}


ngx_int_t
ngx_certguard_cache_get(ngx_certguard_cache_t *cache, ngx_str_t *key,
    cg_result_t *res)
{
    size_t                        n, len;
    ngx_int_t                     rc;
    ngx_certguard_cache_ctx_t    *ctx;
    ngx_certguard_cache_node_t   *cn;
    ngx_certguard_cache_block_t  *b;
    u_char                        md[SHA256_DIGEST_LENGTH];
    u_char                        buf[CG_PACK_MAX];

    if (cache == NULL || cache->shm_zone == NULL
        || ngx_certguard_cache_digest(key, md) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ctx = cache->shm_zone->data;

    rc = NGX_DECLINED;
    len = 0;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_certguard_cache_find(ctx, md);

    if (cn == NULL) {
        goto done;
    }

    if (cn->expire <= ngx_time()) {
        ngx_certguard_cache_delete(ctx, cn);
        goto done;
    }

    /* a verdict of another configuration (before or after a reload) */

    if (cn->generation != (uint32_t) ctx->generation) {
        goto done;
    }

    if (cn->pending) {
        rc = NGX_BUSY;
        goto done;
    }

    /* the packed bytes out, unpacked after the lock */

    len = ngx_min((size_t) cn->len, sizeof(buf));
    n = ngx_min(len, NGX_CERTGUARD_CACHE_HEAD);
    ngx_memcpy(buf, cn->data, n);

    for (b = cn->more; b && n < len; b = b->next) {
        ngx_memcpy(buf + n, b->data, ngx_min(len - n,
                                              NGX_CERTGUARD_CACHE_MORE));
        n += ngx_min(len - n, NGX_CERTGUARD_CACHE_MORE);
    }

    len = n;

    ngx_queue_remove(&cn->queue);
    ngx_queue_insert_head(&ctx->sh->lru, &cn->queue);

    rc = NGX_OK;

done:

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    if (rc == NGX_OK && cg_result_unpack(buf, len, res) != CG_OK) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "certguard: a damaged entry in zone \"%V\" ignored",
                      &cache->shm_zone->shm.name);
        rc = NGX_DECLINED;
    }

    return rc;
}


ngx_int_t
ngx_certguard_cache_put(ngx_certguard_cache_t *cache, ngx_str_t *key,
    const cg_result_t *res)
{
    size_t                       len;
    time_t                       now, expire;
    ngx_certguard_cache_ctx_t   *ctx;
    ngx_certguard_cache_node_t  *cn;
    u_char                       md[SHA256_DIGEST_LENGTH];
    u_char                       buf[CG_PACK_MAX];

    if (cache == NULL || cache->shm_zone == NULL) {
        return NGX_DECLINED;
    }

    len = cg_result_pack(res, buf, sizeof(buf));

    if (len > sizeof(buf) || ngx_certguard_cache_digest(key, md) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx = cache->shm_zone->data;

    /* a verdict does not outlive the certificate it is about */

    now = ngx_time();
    expire = now + cache->valid;

    if (res->not_after > now && res->not_after < expire) {
        expire = (time_t) res->not_after;
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_certguard_cache_find(ctx, md);
    if (cn) {
        ngx_certguard_cache_delete(ctx, cn);
    }

    cn = ngx_certguard_cache_alloc(ctx, md, buf, len);

    if (cn) {
        cn->expire = expire;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return cn ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_certguard_cache_claim(ngx_certguard_cache_t *cache, ngx_str_t *key,
    time_t ttl)
{
    ngx_int_t                    rc;
    ngx_certguard_cache_ctx_t   *ctx;
    ngx_certguard_cache_node_t  *cn;
    u_char                       md[SHA256_DIGEST_LENGTH];

    if (cache == NULL || cache->shm_zone == NULL
        || ngx_certguard_cache_digest(key, md) != NGX_OK)
    {
        return NGX_OK;
    }

    ctx = cache->shm_zone->data;

    rc = NGX_OK;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_certguard_cache_find(ctx, md);

    if (cn && cn->expire > ngx_time()
        && cn->generation == (uint32_t) ctx->generation)
    {
        /* somebody else probes, or has just stored the result */
        rc = cn->pending ? NGX_BUSY : NGX_DECLINED;
        goto done;
    }

    if (cn) {
        ngx_certguard_cache_delete(ctx, cn);
    }

    cn = ngx_certguard_cache_alloc(ctx, md, NULL, 0);
    if (cn == NULL) {
        goto done;              /* no room for a claim: probe anyway */
    }

    cn->expire = ngx_time() + ttl;
    cn->pending = 1;

done:

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


void
ngx_certguard_cache_release(ngx_certguard_cache_t *cache, ngx_str_t *key)
{
    ngx_certguard_cache_ctx_t   *ctx;
    ngx_certguard_cache_node_t  *cn;
    u_char                       md[SHA256_DIGEST_LENGTH];

    if (cache == NULL || cache->shm_zone == NULL
        || ngx_certguard_cache_digest(key, md) != NGX_OK)
    {
        return;
    }

    ctx = cache->shm_zone->data;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    cn = ngx_certguard_cache_find(ctx, md);

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
