/*
 * The configuration block common to the HTTP and the stream module.
 *
 * Each module embeds ngx_certguard_conf_t as the first member of its own
 * location (HTTP) or server (stream) configuration, lists the common
 * directives with NGX_CERTGUARD_CONF_COMMANDS(), and calls
 * ngx_certguard_conf_create() and ngx_certguard_conf_merge() from its own
 * create and merge handlers: a common directive is written once and
 * behaves the same in both modules (the shape of njs's ngx_js_loc_conf_t).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef NGX_CERTGUARD_CONF_H_INCLUDED_
#define NGX_CERTGUARD_CONF_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_certguard_shared.h"
#include "ngx_certguard_auth.h"
#include "ngx_certguard_guard.h"


#define NGX_CERTGUARD_ENFORCE       0
#define NGX_CERTGUARD_MONITOR       1


/* A file a directive named, and where: for errors found when it loads. */
typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   conf_file;
    ngx_uint_t                  line;
} ngx_certguard_conf_file_t;


typedef struct {
    ngx_uint_t                  mode;
    cg_policy_t                *policy;
    ngx_str_t                   trusted_certificate;
    ngx_uint_t                  no_system_roots;
    cg_trust_t                 *trust;
    cg_crls_t                  *crls;
    ngx_str_t                   geoip_country;
    ngx_str_t                   geoip_asn;
    cg_geoip_t                 *geoip;
    ngx_certguard_cache_t       cache;
    ngx_certguard_log_t        *log;
    ngx_certguard_guard_t       guard;
    ngx_certguard_auth_t       *auth;
    ngx_str_t                   auth_user_file;
    ngx_array_t                *intermediates_files;  /* of
                                                  ngx_certguard_conf_file_t */
    cg_intermediates_t         *intermediates;
} ngx_certguard_conf_t;


/*
 * The common directives, for a module's ngx_command_t array: ctx is the
 * contexts (e.g. NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF),
 * offset the conf offset (e.g. NGX_HTTP_LOC_CONF_OFFSET), type the module's
 * conf struct, whose first member "common" is an ngx_certguard_conf_t,
 * module the module itself (it tags the module's cache zones).
 */
#define NGX_CERTGUARD_CONF_COMMANDS(ctx, offset, type, module)                \
                                                                              \
    { ngx_string("certguard_policy"),                                         \
      ctx|NGX_CONF_TAKE1,                                                     \
      ngx_certguard_conf_set_policy,                                          \
      offset,                                                                 \
      offsetof(type, common),                                                 \
      NULL },                                                                 \
                                                                              \
    { ngx_string("certguard_mode"),                                           \
      ctx|NGX_CONF_TAKE1,                                                     \
      ngx_conf_set_enum_slot,                                                 \
      offset,                                                                 \
      offsetof(type, common.mode),                                            \
      &ngx_certguard_conf_modes },                                            \
                                                                              \
    { ngx_string("certguard_trusted_certificate"),                            \
      ctx|NGX_CONF_TAKE12,                                                    \
      ngx_certguard_conf_set_trusted,                                         \
      offset,                                                                 \
      offsetof(type, common),                                                 \
      NULL },                                                                 \
                                                                              \
    { ngx_string("certguard_crl"),                                            \
      ctx|NGX_CONF_TAKE1,                                                     \
      ngx_certguard_conf_set_crl,                                             \
      offset,                                                                 \
      offsetof(type, common),                                                 \
      NULL },                                                                 \
                                                                              \
    { ngx_string("certguard_intermediates"),                                  \
      ctx|NGX_CONF_TAKE1,                                                     \
      ngx_certguard_conf_set_intermediates,                                   \
      offset,                                                                 \
      offsetof(type, common),                                                 \
      NULL },                                                                 \
                                                                              \
    { ngx_string("certguard_geoip_country"),                                  \
      ctx|NGX_CONF_TAKE1,                                                     \
      ngx_conf_set_str_slot,                                                  \
      offset,                                                                 \
      offsetof(type, common.geoip_country),                                   \
      NULL },                                                                 \
                                                                              \
    { ngx_string("certguard_geoip_asn"),                                      \
      ctx|NGX_CONF_TAKE1,                                                     \
      ngx_conf_set_str_slot,                                                  \
      offset,                                                                 \
      offsetof(type, common.geoip_asn),                                       \
      NULL },                                                                 \
                                                                              \
    { ngx_string("certguard_cache"),                                          \
      ctx|NGX_CONF_TAKE12,                                                    \
      ngx_certguard_conf_set_cache,                                           \
      offset,                                                                 \
      offsetof(type, common),                                                 \
      module },                                                               \
                                                                              \
    { ngx_string("certguard_allow"),                                          \
      ctx|NGX_CONF_1MORE,                                                     \
      ngx_certguard_guard_set_cidrs,                                          \
      offset,                                                                 \
      offsetof(type, common.guard.allow),                                     \
      NULL },                                                                 \
                                                                              \
    { ngx_string("certguard_deny"),                                           \
      ctx|NGX_CONF_1MORE,                                                     \
      ngx_certguard_guard_set_cidrs,                                          \
      offset,                                                                 \
      offsetof(type, common.guard.deny),                                      \
      NULL },                                                                 \
                                                                              \
    { ngx_string("certguard_allow_name"),                                     \
      ctx|NGX_CONF_1MORE,                                                     \
      ngx_certguard_guard_set_names,                                          \
      offset,                                                                 \
      offsetof(type, common.guard.allow_names),                               \
      NULL },                                                                 \
                                                                              \
    { ngx_string("certguard_deny_name"),                                      \
      ctx|NGX_CONF_1MORE,                                                     \
      ngx_certguard_guard_set_names,                                          \
      offset,                                                                 \
      offsetof(type, common.guard.deny_names),                                \
      NULL },                                                                 \
                                                                              \
    { ngx_string("certguard_proxy_auth"),                                     \
      ctx|NGX_CONF_TAKE1,                                                     \
      ngx_certguard_conf_set_auth,                                            \
      offset,                                                                 \
      offsetof(type, common),                                                 \
      NULL },                                                                 \
                                                                              \
    { ngx_string("certguard_proxy_auth_user_file"),                           \
      ctx|NGX_CONF_TAKE1,                                                     \
      ngx_conf_set_str_slot,                                                  \
      offset,                                                                 \
      offsetof(type, common.auth_user_file),                                  \
      NULL },                                                                 \
                                                                              \
    { ngx_string("certguard_log"),                                            \
      ctx|NGX_CONF_TAKE123,                                                   \
      ngx_certguard_conf_set_log,                                             \
      offset,                                                                 \
      offsetof(type, common),                                                 \
      NULL }


extern ngx_conf_enum_t  ngx_certguard_conf_modes[];


char *ngx_certguard_conf_set_policy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_certguard_conf_set_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_certguard_conf_set_log(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_certguard_conf_set_trusted(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_certguard_conf_set_auth(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_certguard_conf_set_crl(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_certguard_conf_set_intermediates(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

/* Marks every member unset; call from the module's create handler. */
void ngx_certguard_conf_init(ngx_certguard_conf_t *conf);

/*
 * Inherits what conf leaves unset from prev.  With active set (the module
 * scores here) it also requires a policy and loads the trust store (the
 * system bundle when none is named) and the GeoIP databases, which load
 * nowhere else; name is the
 * directive that made it active, for the error message.
 */
char *ngx_certguard_conf_merge(ngx_conf_t *cf, ngx_certguard_conf_t *prev,
    ngx_certguard_conf_t *conf, ngx_uint_t active, const char *name);


#endif /* NGX_CERTGUARD_CONF_H_INCLUDED_ */
