/*
 * Engine objects (policies, trust stores, GeoIP databases, intermediates
 * pools) loaded at
 * configuration time and freed with the cycle: a file named again in the
 * same cycle, by either module, is loaded once and shared.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_certguard_shared.h"
#include "ngx_certguard_conf.h"


typedef enum {
    NGX_CERTGUARD_FILE_POLICY = 0,
    NGX_CERTGUARD_FILE_TRUST,
    NGX_CERTGUARD_FILE_GEOIP,
    NGX_CERTGUARD_FILE_INTERMEDIATES
} ngx_certguard_file_e;


/* An engine object loaded at configuration time: the cleanup's data. */
typedef struct {
    ngx_certguard_file_e          kind;
    ngx_str_t                     key;          /* "path\0path2\0" */
    unsigned                      flags;        /* cg_trust_load()'s */
    void                         *obj;
} ngx_certguard_file_t;


static void *ngx_certguard_file_load(ngx_conf_t *cf,
    ngx_certguard_file_e kind, ngx_str_t *path, ngx_str_t *path2,
    unsigned flags);
static void ngx_certguard_file_cleanup(void *data);
static ngx_certguard_file_t *ngx_certguard_file_find(ngx_conf_t *cf,
    ngx_certguard_file_e kind, u_char *key, size_t len, unsigned flags);


char *
ngx_certguard_policy_conf(ngx_conf_t *cf, ngx_str_t *path,
    cg_policy_t **policy)
{
    *policy = ngx_certguard_file_load(cf, NGX_CERTGUARD_FILE_POLICY, path,
                                      NULL, 0);

    return *policy ? NGX_CONF_OK : NGX_CONF_ERROR;
}


char *
ngx_certguard_trust_conf(ngx_conf_t *cf, ngx_str_t *path, cg_trust_t **trust)
{
    return ngx_certguard_trust_conf2(cf, path, 0, trust);
}


char *
ngx_certguard_trust_conf2(ngx_conf_t *cf, ngx_str_t *path,
    ngx_uint_t no_system, cg_trust_t **trust)
{
    *trust = ngx_certguard_file_load(cf, NGX_CERTGUARD_FILE_TRUST, path, NULL,
                                     no_system ? CG_TRUST_NO_SYSTEM : 0);

    return *trust ? NGX_CONF_OK : NGX_CONF_ERROR;
}


char *
ngx_certguard_geoip_conf(ngx_conf_t *cf, ngx_str_t *country, ngx_str_t *asn,
    cg_geoip_t **geoip)
{
    *geoip = ngx_certguard_file_load(cf, NGX_CERTGUARD_FILE_GEOIP, country,
                                     asn, 0);

    return *geoip ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/*
 * Loads a policy, trust bundle or GeoIP pair once per configuration cycle,
 * however many directives name it.  The loaded files are found through
 * their cleanups on the cycle's pool, as ngx_pool_run_cleanup_file() finds
 * a file's, so the objects and what they were loaded from live and die
 * with the cycle.  NULL on error, logged with file:line where known.
 */

static void *
ngx_certguard_file_load(ngx_conf_t *cf, ngx_certguard_file_e kind,
    ngx_str_t *path, ngx_str_t *path2, unsigned flags)
{
    int                    rc;
    char                  *name, *name2;
    u_char                *p;
    size_t                 len;
    ngx_str_t              full, full2;
    cg_error_t             err;
    cg_trust_t            *trust;
    cg_geoip_t            *geoip;
    cg_policy_t           *policy;
    const char            *what, *msg;
    ngx_pool_cleanup_t    *cln;
    ngx_certguard_file_t  *file;

    ngx_str_null(&full);
    ngx_str_null(&full2);

    if (path && path->len) {
        full = *path;

        if (ngx_conf_full_name(cf->cycle, &full, 1) != NGX_OK) {
            return NULL;
        }
    }

    if (path2 && path2->len) {
        full2 = *path2;

        if (ngx_conf_full_name(cf->cycle, &full2, 1) != NGX_OK) {
            return NULL;
        }
    }

    /* the key: both names, each NUL-terminated for the engine */

    len = full.len + 1 + full2.len + 1;

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, full.data, full.len);
    p[full.len] = '\0';
    ngx_memcpy(p + full.len + 1, full2.data, full2.len);
    p[len - 1] = '\0';

    name = full.len ? (char *) p : NULL;
    name2 = full2.len ? (char *) p + full.len + 1 : NULL;

    for (cln = cf->pool->cleanup; cln; cln = cln->next) {

        if (cln->handler != ngx_certguard_file_cleanup) {
            continue;
        }

        file = cln->data;

        if (file->kind == kind && file->flags == flags
            && file->key.len == len
            && ngx_memcmp(file->key.data, p, len) == 0)
        {
            return file->obj;
        }
    }

    /* added first, armed once loaded: a failed load leaks nothing */

    cln = ngx_pool_cleanup_add(cf->pool, sizeof(ngx_certguard_file_t));
    if (cln == NULL) {
        return NULL;
    }

    ngx_memzero(&err, sizeof(cg_error_t));

    file = cln->data;
    file->kind = kind;
    file->flags = flags;
    file->key.data = p;
    file->key.len = len;

    switch (kind) {

    case NGX_CERTGUARD_FILE_POLICY:
        rc = cg_policy_load(&policy, name ? name : "", &err);
        file->obj = (rc == CG_OK) ? policy : NULL;
        break;

    case NGX_CERTGUARD_FILE_TRUST:
        rc = cg_trust_load(&trust, name, flags, &err);
        file->obj = (rc == CG_OK) ? trust : NULL;
        break;

    default: /* NGX_CERTGUARD_FILE_GEOIP */
        rc = cg_geoip_open(&geoip, name, name2, &err);
        file->obj = (rc == CG_OK) ? geoip : NULL;
        break;
    }

    if (rc != CG_OK) {
        what = err.file[0] ? err.file
                           : name ? name : name2 ? name2 : "default CA paths";
        msg = err.msg[0] ? err.msg : cg_strerror(rc);

        if (err.line) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "certguard: %s:%ui: %s",
                               what, (ngx_uint_t) err.line, msg);

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "certguard: %s: %s",
                               what, msg);
        }

        return NULL;
    }

    cln->handler = ngx_certguard_file_cleanup;

    /* what lint warns about, nginx -t and a reload say too */

    if (kind == NGX_CERTGUARD_FILE_POLICY) {
        unsigned    i;
        cg_error_t  w;

        for (i = 0; cg_policy_warning(file->obj, i, &w) == CG_OK; i++) {
            ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                               "certguard: %s:%ui: warning: %s", w.file,
                               (ngx_uint_t) w.line, w.msg);
        }
    }

    return file->obj;
}


static void
ngx_certguard_file_cleanup(void *data)
{
    ngx_certguard_file_t  *file = data;

    switch (file->kind) {

    case NGX_CERTGUARD_FILE_POLICY:
        cg_policy_free(file->obj);
        break;

    case NGX_CERTGUARD_FILE_TRUST:
        cg_trust_free(file->obj);
        break;

    case NGX_CERTGUARD_FILE_INTERMEDIATES:
        cg_intermediates_free(file->obj);
        break;

    default: /* NGX_CERTGUARD_FILE_GEOIP */
        cg_geoip_free(file->obj);
        break;
    }
}


static ngx_certguard_file_t *
ngx_certguard_file_find(ngx_conf_t *cf, ngx_certguard_file_e kind,
    u_char *key, size_t len, unsigned flags)
{
    ngx_pool_cleanup_t    *cln;
    ngx_certguard_file_t  *file;

    for (cln = cf->pool->cleanup; cln; cln = cln->next) {

        if (cln->handler != ngx_certguard_file_cleanup) {
            continue;
        }

        file = cln->data;

        if (file->kind == kind && file->flags == flags
            && file->key.len == len && ngx_memcmp(file->key.data, key, len) == 0)
        {
            return file;
        }
    }

    return NULL;
}


/*
 * The pool of several files is one object, keyed by all their names in
 * order; an error is reported at the directive that named the bad file.
 */

char *
ngx_certguard_intermediates_conf(ngx_conf_t *cf, ngx_array_t *files,
    cg_intermediates_t **pool)
{
    int                         rc;
    u_char                     *key, *p;
    size_t                      len;
    unsigned                    i;
    ngx_str_t                   full;
    cg_error_t                  err;
    const char                **names;
    ngx_pool_cleanup_t         *cln;
    ngx_certguard_file_t       *file;
    ngx_certguard_conf_file_t  *f, *at;

    f = files->elts;

    names = ngx_palloc(cf->pool, files->nelts * sizeof(char *));
    if (names == NULL) {
        return NGX_CONF_ERROR;
    }

    len = 0;

    for (i = 0; i < files->nelts; i++) {
        full = f[i].name;

        if (ngx_conf_full_name(cf->cycle, &full, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        names[i] = (const char *) full.data;     /* NUL-terminated */
        len += full.len + 1;
    }

    key = ngx_pnalloc(cf->pool, len);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    for (p = key, i = 0; i < files->nelts; i++) {
        p = ngx_cpymem(p, names[i], ngx_strlen(names[i]) + 1);
    }

    file = ngx_certguard_file_find(cf, NGX_CERTGUARD_FILE_INTERMEDIATES, key,
                                   len, 0);
    if (file) {
        *pool = file->obj;
        return NGX_CONF_OK;
    }

    cln = ngx_pool_cleanup_add(cf->pool, sizeof(ngx_certguard_file_t));
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    file = cln->data;
    file->kind = NGX_CERTGUARD_FILE_INTERMEDIATES;
    file->flags = 0;
    file->key.data = key;
    file->key.len = len;
    file->obj = NULL;

    ngx_memzero(&err, sizeof(cg_error_t));

    rc = cg_intermediates_load(pool, names, files->nelts, &err);

    if (rc != CG_OK) {
        at = &f[0];

        for (i = 0; i < files->nelts; i++) {
            if (ngx_strcmp(names[i], err.file) == 0) {
                at = &f[i];
                break;
            }
        }

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "certguard: %s: %s in %V:%ui",
                      err.file[0] ? err.file : names[0],
                      err.msg[0] ? err.msg : cg_strerror(rc),
                      &at->conf_file, at->line);
        return NGX_CONF_ERROR;
    }

    file->obj = *pool;
    cln->handler = ngx_certguard_file_cleanup;

    for (i = 0; cg_intermediates_warning(*pool, i, &err) == CG_OK; i++) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "certguard: %s: warning: %s", err.file, err.msg);
    }

    return NGX_CONF_OK;
}
