/*
 * Proxy authentication (see ngx_certguard_auth.h).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_crypt.h>

#include <openssl/crypto.h>

#include "ngx_certguard_auth.h"


#define NGX_CERTGUARD_AUTH_FILE_MAX   (16 * 1024 * 1024)
#define NGX_CERTGUARD_AUTH_VALUE_MAX  1024


static ngx_int_t ngx_certguard_auth_parse(ngx_conf_t *cf,
    ngx_certguard_auth_t *auth, u_char *p, u_char *last);
static ngx_certguard_auth_user_t *ngx_certguard_auth_find(
    ngx_certguard_auth_t *auth, ngx_str_t *name);


char *
ngx_certguard_auth_conf(ngx_conf_t *cf, ngx_certguard_auth_t **authp)
{
    u_char                *p;
    ngx_str_t             *value;
    ngx_certguard_auth_t  *auth;

    if (*authp != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        *authp = NULL;
        return NGX_CONF_OK;
    }

    if (value[1].len == 0
        || ngx_strlchr(value[1].data, value[1].data + value[1].len, '"'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid realm \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    auth = ngx_pcalloc(cf->pool, sizeof(ngx_certguard_auth_t));
    if (auth == NULL) {
        return NGX_CONF_ERROR;
    }

    auth->realm = value[1];

    auth->challenge.len = sizeof("Basic realm=\"\"") - 1 + value[1].len;
    auth->challenge.data = ngx_pnalloc(cf->pool, auth->challenge.len);
    if (auth->challenge.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(auth->challenge.data, "Basic realm=\"",
                   sizeof("Basic realm=\"") - 1);
    p = ngx_cpymem(p, value[1].data, value[1].len);
    *p = '"';

    *authp = auth;

    return NGX_CONF_OK;
}


char *
ngx_certguard_auth_load(ngx_conf_t *cf, ngx_certguard_auth_t *auth,
    ngx_str_t *file)
{
    u_char           *buf;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t         name;
    ngx_file_t        f;
    ngx_file_info_t   fi;

    name = *file;

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed", name.data);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&f, sizeof(ngx_file_t));
    f.fd = fd;
    f.name = name;
    f.log = cf->log;

    buf = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", name.data);
        goto failed;
    }

    if (ngx_file_size(&fi) > NGX_CERTGUARD_AUTH_FILE_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "user file \"%s\" is too large", name.data);
        goto failed;
    }

    buf = ngx_pnalloc(cf->temp_pool, (size_t) ngx_file_size(&fi) + 1);
    if (buf == NULL) {
        goto failed;
    }

    n = ngx_read_file(&f, buf, (size_t) ngx_file_size(&fi), 0);
    if (n == NGX_ERROR) {
        goto failed;
    }

    (void) ngx_close_file(fd);
    fd = NGX_INVALID_FILE;

    auth->file = name;

    if (ngx_certguard_auth_parse(cf, auth, buf, buf + n) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

failed:

    if (fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(fd);
    }

    return NGX_CONF_ERROR;
}


/*
 * "name:hash[:comment]" lines; '#' starts a comment line; as in
 * auth_basic_user_file, the hash ends at ':' or the end of the line.
 */

static ngx_int_t
ngx_certguard_auth_parse(ngx_conf_t *cf, ngx_certguard_auth_t *auth,
    u_char *p, u_char *last)
{
    u_char                     *eol, *colon, *end;
    ngx_uint_t                  line;
    ngx_certguard_auth_user_t  *u;

    auth->users = ngx_array_create(cf->pool, 8,
                                   sizeof(ngx_certguard_auth_user_t));
    if (auth->users == NULL) {
        return NGX_ERROR;
    }

    for (line = 1; p < last; p = eol + 1, line++) {

        eol = ngx_strlchr(p, last, LF);
        if (eol == NULL) {
            eol = last;
        }

        end = eol;
        if (end > p && end[-1] == CR) {
            end--;
        }

        if (end == p || *p == '#') {
            continue;
        }

        colon = ngx_strlchr(p, end, ':');

        if (colon == NULL || colon == p || colon + 1 == end) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid line %ui in user file \"%V\": "
                               "\"name:password\" expected",
                               line, &auth->file);
            return NGX_ERROR;
        }

        u = ngx_array_push(auth->users);
        if (u == NULL) {
            return NGX_ERROR;
        }

        u->name.len = colon - p;
        u->name.data = p;
        u->name.data = ngx_pstrdup(cf->pool, &u->name);
        if (u->name.data == NULL) {
            return NGX_ERROR;
        }

        p = colon + 1;
        colon = ngx_strlchr(p, end, ':');
        if (colon) {
            end = colon;
        }

        u->hash = ngx_pnalloc(cf->pool, end - p + 1);
        if (u->hash == NULL) {
            return NGX_ERROR;
        }

        ngx_cpystrn(u->hash, p, end - p + 1);
    }

    if (auth->users->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "user file \"%V\" names no user", &auth->file);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_certguard_auth_e
ngx_certguard_auth_check(ngx_certguard_auth_t *auth, ngx_str_t *value,
    ngx_pool_t *pool, ngx_str_t *user)
{
    u_char                     *colon, *passwd, *encrypted, *hash;
    size_t                      len, hlen;
    ngx_str_t                   b64, decoded, name;
    ngx_certguard_auth_e        rc;
    ngx_certguard_auth_user_t  *u;

    ngx_str_null(user);

    if (value == NULL || value->len == 0) {
        return NGX_CERTGUARD_AUTH_MISSING;
    }

    if (value->len > NGX_CERTGUARD_AUTH_VALUE_MAX
        || value->len < sizeof("Basic ") - 1
        || ngx_strncasecmp(value->data, (u_char *) "Basic ",
                           sizeof("Basic ") - 1) != 0)
    {
        return NGX_CERTGUARD_AUTH_MALFORMED;
    }

    b64.data = value->data + sizeof("Basic ") - 1;
    b64.len = value->len - (sizeof("Basic ") - 1);

    while (b64.len && *b64.data == ' ') {
        b64.data++;
        b64.len--;
    }

    while (b64.len && b64.data[b64.len - 1] == ' ') {
        b64.len--;
    }

    decoded.len = ngx_base64_decoded_length(b64.len);
    decoded.data = ngx_pnalloc(pool, decoded.len + 1);
    if (decoded.data == NULL) {
        return NGX_CERTGUARD_AUTH_ERROR;
    }

    if (b64.len == 0 || ngx_decode_base64(&decoded, &b64) != NGX_OK) {
        return NGX_CERTGUARD_AUTH_MALFORMED;
    }

    colon = ngx_strlchr(decoded.data, decoded.data + decoded.len, ':');
    if (colon == NULL || colon == decoded.data) {
        ngx_explicit_memzero(decoded.data, decoded.len);
        return NGX_CERTGUARD_AUTH_MALFORMED;
    }

    name.data = decoded.data;
    name.len = colon - decoded.data;

    /* ngx_crypt() wants a C string; a NUL inside cannot match a hash */

    passwd = colon + 1;
    len = decoded.data + decoded.len - passwd;
    passwd[len] = '\0';

    u = ngx_certguard_auth_find(auth, &name);

    /*
     * an unknown name costs one ngx_crypt() like a known one, against the
     * first user's hash, so that timing does not tell names apart
     */

    hash = u ? u->hash : ((ngx_certguard_auth_user_t *) auth->users->elts)
                             ->hash;

    if (ngx_strlen(passwd) != len
        || ngx_crypt(pool, passwd, hash, &encrypted) != NGX_OK)
    {
        encrypted = NULL;
    }

    ngx_explicit_memzero(decoded.data, decoded.len);

    if (u == NULL) {
        return NGX_CERTGUARD_AUTH_UNKNOWN;
    }

    *user = u->name;

    if (encrypted == NULL) {
        return (ngx_strlen(passwd) != len) ? NGX_CERTGUARD_AUTH_MISMATCH
                                           : NGX_CERTGUARD_AUTH_ERROR;
    }

    hlen = ngx_strlen(hash);

    rc = (ngx_strlen(encrypted) == hlen
          && CRYPTO_memcmp(encrypted, hash, hlen) == 0)
         ? NGX_CERTGUARD_AUTH_OK : NGX_CERTGUARD_AUTH_MISMATCH;

    ngx_explicit_memzero(encrypted, ngx_strlen(encrypted));

    return rc;
}


static ngx_certguard_auth_user_t *
ngx_certguard_auth_find(ngx_certguard_auth_t *auth, ngx_str_t *name)
{
    ngx_uint_t                  i;
    ngx_certguard_auth_user_t  *u;

    u = auth->users->elts;

    for (i = 0; i < auth->users->nelts; i++) {
        if (u[i].name.len == name->len
            && ngx_memcmp(u[i].name.data, name->data, name->len) == 0)
        {
            return &u[i];
        }
    }

    return NULL;
}


const char *
ngx_certguard_auth_reason(ngx_certguard_auth_e rc)
{
    switch (rc) {
    case NGX_CERTGUARD_AUTH_OK:
        return "ok";
    case NGX_CERTGUARD_AUTH_MISSING:
        return "auth_missing";
    case NGX_CERTGUARD_AUTH_MALFORMED:
        return "auth_malformed";
    case NGX_CERTGUARD_AUTH_UNKNOWN:
        return "auth_unknown_user";
    case NGX_CERTGUARD_AUTH_MISMATCH:
        return "auth_bad_password";
    default:
        return "auth_error";
    }
}


ngx_uint_t
ngx_certguard_auth_log_allowed(ngx_uint_t *suppressed)
{
    static time_t      second;
    static ngx_uint_t  logged, skipped;

    if (ngx_time() != second) {
        second = ngx_time();
        logged = 0;
    }

    if (logged >= NGX_CERTGUARD_AUTH_LOG_RATE) {
        skipped++;
        return 0;
    }

    logged++;
    *suppressed = skipped;
    skipped = 0;

    return 1;
}
