/*
 * The configuration block common to the HTTP and the stream module: its
 * directive handlers and its merge (see ngx_certguard_conf.h).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_certguard_conf.h"


static char *ngx_certguard_conf_merge_auth(ngx_conf_t *cf,
    ngx_certguard_conf_t *prev, ngx_certguard_conf_t *conf);
static void ngx_certguard_conf_crls_cleanup(void *data);


#define ngx_certguard_conf_of(conf, cmd)                                      \
    ((ngx_certguard_conf_t *) ((char *) (conf) + (cmd)->offset))


ngx_conf_enum_t  ngx_certguard_conf_modes[] = {
    { ngx_string("enforce"), NGX_CERTGUARD_ENFORCE },
    { ngx_string("monitor"), NGX_CERTGUARD_MONITOR },
    { ngx_null_string, 0 }
};


char *
ngx_certguard_conf_set_policy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_certguard_conf_t  *cgcf = ngx_certguard_conf_of(conf, cmd);

    ngx_str_t  *value;

    if (cgcf->policy != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    return ngx_certguard_policy_conf(cf, &value[1], &cgcf->policy);
}


/* "certguard_trusted_certificate FILE [system=off];": the file's anchors
 * are added to the system bundle unless system=off drops it */

char *
ngx_certguard_conf_set_trusted(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_certguard_conf_t  *cgcf = ngx_certguard_conf_of(conf, cmd);

    ngx_str_t  *value;

    if (cgcf->trusted_certificate.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    cgcf->trusted_certificate = value[1];

    if (cf->args->nelts == 3) {
        if (ngx_strcmp(value[2].data, "system=off") == 0) {
            cgcf->no_system_roots = 1;

        } else if (ngx_strcmp(value[2].data, "system=on") != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * "certguard_crl FILE;", repeatable: the block's CRLs, read here so that
 * a missing or malformed file is an error at its own line; a block that
 * names none inherits the enclosing block's set.
 */

char *
ngx_certguard_conf_set_crl(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_certguard_conf_t  *cgcf = ngx_certguard_conf_of(conf, cmd);

    ngx_str_t            *value, full;
    cg_error_t            err;
    ngx_pool_cleanup_t   *cln;

    value = cf->args->elts;
    full = value[1];

    if (ngx_conf_full_name(cf->cycle, &full, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cln = NULL;

    if (cgcf->crls == NULL) {
        cln = ngx_pool_cleanup_add(cf->pool, 0);
        if (cln == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    ngx_memzero(&err, sizeof(cg_error_t));

    if (cg_crls_load(&cgcf->crls, (char *) full.data, &err) != CG_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "certguard_crl \"%V\": %s",
                           &full, err.msg);
        return NGX_CONF_ERROR;
    }

    if (cln) {
        cln->handler = ngx_certguard_conf_crls_cleanup;
        cln->data = cgcf->crls;
    }

    return NGX_CONF_OK;
}


static void
ngx_certguard_conf_crls_cleanup(void *data)
{
    cg_crls_free(data);
}


/*
 * "certguard_intermediates FILE;", repeatable: CA certificates that
 * complete chains, never anchors.  The file loads where the module scores
 * (the merge); its directive's place is kept for the error then.
 */

char *
ngx_certguard_conf_set_intermediates(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_certguard_conf_t  *cgcf = ngx_certguard_conf_of(conf, cmd);

    ngx_str_t                  *value;
    ngx_certguard_conf_file_t  *file;

    if (cgcf->intermediates_files == NGX_CONF_UNSET_PTR) {
        cgcf->intermediates_files = ngx_array_create(cf->pool, 2,
                                            sizeof(ngx_certguard_conf_file_t));
        if (cgcf->intermediates_files == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty file name";
    }

    file = ngx_array_push(cgcf->intermediates_files);
    if (file == NULL) {
        return NGX_CONF_ERROR;
    }

    file->name = value[1];
    file->conf_file = cf->conf_file->file.name;
    file->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


char *
ngx_certguard_conf_set_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_certguard_conf_t  *cgcf = ngx_certguard_conf_of(conf, cmd);

    /* zones of the two modules hold entries of different shapes: a zone
     * name is one module's, so the tag (cmd->post) is the module */

    return ngx_certguard_cache_conf(cf, cmd->post, &cgcf->cache);
}


char *
ngx_certguard_conf_set_log(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_certguard_conf_t  *cgcf = ngx_certguard_conf_of(conf, cmd);

    return ngx_certguard_log_conf(cf, &cgcf->log);
}


char *
ngx_certguard_conf_set_auth(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_certguard_conf_t  *cgcf = ngx_certguard_conf_of(conf, cmd);

    return ngx_certguard_auth_conf(cf, &cgcf->auth);
}


void
ngx_certguard_conf_init(ngx_certguard_conf_t *conf)
{
    /*
     * set by the module's ngx_pcalloc():
     *
     *     conf->trusted_certificate = { 0, NULL };
     *     conf->trust = NULL;
     *     conf->crls = NULL;
     *     conf->geoip_country = { 0, NULL };
     *     conf->geoip_asn = { 0, NULL };
     *     conf->geoip = NULL;
     *     conf->auth_user_file = { 0, NULL };
     *     conf->intermediates = NULL;
     */

    conf->mode = NGX_CONF_UNSET_UINT;
    conf->policy = NGX_CONF_UNSET_PTR;
    conf->cache.shm_zone = NGX_CONF_UNSET_PTR;
    conf->cache.valid = NGX_CONF_UNSET;
    conf->log = NGX_CONF_UNSET_PTR;
    conf->guard.allow = NGX_CONF_UNSET_PTR;
    conf->guard.deny = NGX_CONF_UNSET_PTR;
    conf->guard.allow_names = NGX_CONF_UNSET_PTR;
    conf->guard.deny_names = NGX_CONF_UNSET_PTR;
    conf->auth = NGX_CONF_UNSET_PTR;
    conf->intermediates_files = NGX_CONF_UNSET_PTR;
}


char *
ngx_certguard_conf_merge(ngx_conf_t *cf, ngx_certguard_conf_t *prev,
    ngx_certguard_conf_t *conf, ngx_uint_t active, const char *name)
{
    ngx_conf_merge_uint_value(conf->mode, prev->mode, NGX_CERTGUARD_ENFORCE);
    ngx_conf_merge_ptr_value(conf->policy, prev->policy, NULL);
    if (conf->trusted_certificate.data == NULL) {
        conf->trusted_certificate = prev->trusted_certificate;
        conf->no_system_roots = prev->no_system_roots;
    }

    ngx_conf_merge_str_value(conf->trusted_certificate,
                             prev->trusted_certificate, "");

    if (conf->crls == NULL) {
        conf->crls = prev->crls;
    }
    ngx_conf_merge_ptr_value(conf->log, prev->log, NULL);
    ngx_conf_merge_str_value(conf->geoip_country, prev->geoip_country, "");
    ngx_conf_merge_str_value(conf->geoip_asn, prev->geoip_asn, "");
    ngx_conf_merge_ptr_value(conf->intermediates_files,
                             prev->intermediates_files, NULL);

    ngx_certguard_guard_merge(&conf->guard, &prev->guard);

    if (ngx_certguard_conf_merge_auth(cf, prev, conf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    /* zone and validity go together: "certguard_cache off;" is a value */

    if (conf->cache.shm_zone == NGX_CONF_UNSET_PTR) {
        conf->cache = prev->cache;
    }

    if (conf->cache.shm_zone == NGX_CONF_UNSET_PTR) {
        conf->cache.shm_zone = NULL;
        conf->cache.valid = 0;
    }

    if (!active) {
        return NGX_CONF_OK;
    }

    if (conf->policy == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" is on but no \"certguard_policy\" is set",
                           name);
        return NGX_CONF_ERROR;
    }

    /*
     * Files load only where the module scores, so a block with certguard
     * off names a file without needing it; the loader shares one object per
     * file and cycle, so a file (or the system bundle, when none is named)
     * is read once however many blocks use it.
     */

    if (ngx_certguard_trust_conf2(cf, &conf->trusted_certificate,
                                  conf->no_system_roots, &conf->trust)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->intermediates_files
        && ngx_certguard_intermediates_conf(cf, conf->intermediates_files,
                                            &conf->intermediates)
           != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->geoip == NULL
        && (conf->geoip_country.len || conf->geoip_asn.len)
        && ngx_certguard_geoip_conf(cf, &conf->geoip_country,
                                    &conf->geoip_asn, &conf->geoip)
           != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The realm and the user file may be set at different levels; the users
 * are read once per auth object, and a block that names another file than
 * the one it inherits gets an object of its own.
 */

static char *
ngx_certguard_conf_merge_auth(ngx_conf_t *cf, ngx_certguard_conf_t *prev,
    ngx_certguard_conf_t *conf)
{
    ngx_certguard_auth_t  *auth;

    ngx_conf_merge_ptr_value(conf->auth, prev->auth, NULL);
    ngx_conf_merge_str_value(conf->auth_user_file, prev->auth_user_file, "");

    if (conf->auth == NULL) {
        return NGX_CONF_OK;
    }

    if (conf->auth_user_file.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"certguard_proxy_auth\" is on but no "
                           "\"certguard_proxy_auth_user_file\" is set");
        return NGX_CONF_ERROR;
    }

    if (conf->auth->users) {
        if (conf->auth->given.len == conf->auth_user_file.len
            && ngx_strncmp(conf->auth->given.data, conf->auth_user_file.data,
                           conf->auth_user_file.len) == 0)
        {
            return NGX_CONF_OK;
        }

        auth = ngx_palloc(cf->pool, sizeof(ngx_certguard_auth_t));
        if (auth == NULL) {
            return NGX_CONF_ERROR;
        }

        *auth = *conf->auth;
        auth->users = NULL;
        conf->auth = auth;
    }

    conf->auth->given = conf->auth_user_file;

    return ngx_certguard_auth_load(cf, conf->auth, &conf->auth_user_file);
}
