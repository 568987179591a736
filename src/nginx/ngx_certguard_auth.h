/*
 * Proxy authentication for both modules: "Proxy-Authorization: Basic"
 * checked against a user file in the formats auth_basic_user_file reads,
 * with nginx's own ngx_crypt().
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef NGX_CERTGUARD_AUTH_H_INCLUDED_
#define NGX_CERTGUARD_AUTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


typedef enum {
    NGX_CERTGUARD_AUTH_OK = 0,
    NGX_CERTGUARD_AUTH_MISSING,         /* no Proxy-Authorization */
    NGX_CERTGUARD_AUTH_MALFORMED,       /* not Basic, bad base64, no ':' */
    NGX_CERTGUARD_AUTH_UNKNOWN,         /* no such user */
    NGX_CERTGUARD_AUTH_MISMATCH,        /* wrong password */
    NGX_CERTGUARD_AUTH_ERROR            /* ngx_crypt() failed */
} ngx_certguard_auth_e;


typedef struct {
    ngx_str_t                   name;
    u_char                     *hash;           /* NUL-terminated */
} ngx_certguard_auth_user_t;


typedef struct {
    ngx_str_t                   realm;
    ngx_str_t                   challenge;      /* Basic realm="..." */
    ngx_str_t                   given;          /* as configured */
    ngx_str_t                   file;           /* full path */
    ngx_array_t                *users;          /* ngx_certguard_auth_user_t */
} ngx_certguard_auth_t;


/*
 * "certguard_proxy_auth REALM | off;": realm, or NULL for off, in *authp
 * (the user file comes from ngx_certguard_auth_load()).
 */
char *ngx_certguard_auth_conf(ngx_conf_t *cf, ngx_certguard_auth_t **authp);

/* Reads the user file into memory at configuration time: a reload reads
 * it again, a request never touches the disk. */
char *ngx_certguard_auth_load(ngx_conf_t *cf, ngx_certguard_auth_t *auth,
    ngx_str_t *file);

/*
 * Checks a Proxy-Authorization value (NULL: absent).  The user's name goes
 * to *user when the name is one of the file's (also on a wrong password),
 * so that the record can say who failed without echoing what a client
 * typed; the password never leaves this function.
 */
ngx_certguard_auth_e ngx_certguard_auth_check(ngx_certguard_auth_t *auth,
    ngx_str_t *value, ngx_pool_t *pool, ngx_str_t *user);

const char *ngx_certguard_auth_reason(ngx_certguard_auth_e rc);

/*
 * Failed attempts are logged at most NGX_CERTGUARD_AUTH_LOG_RATE times a
 * second per worker, so a password-guessing client cannot flood the error
 * log or the SIEM; every attempt is counted.  Returns 1 when this one may
 * be logged, with *suppressed the attempts not logged since the last one.
 */
#define NGX_CERTGUARD_AUTH_LOG_RATE  10

ngx_uint_t ngx_certguard_auth_log_allowed(ngx_uint_t *suppressed);


#endif /* NGX_CERTGUARD_AUTH_H_INCLUDED_ */
