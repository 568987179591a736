/*
 * The values of the $certguard_* variables, for both modules.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_sha1.h>

#include <openssl/rand.h>

#include "ngx_certguard_shared.h"


void
ngx_certguard_conn_id(ngx_connection_t *c, u_char buf[17])
{
    u_char            md[20];
    uint64_t          v[2];
    ngx_sha1_t        sha1;

    static u_char     key[16];
    static ngx_pid_t  key_pid;

    /*
     * c->number alone repeats after a restart and across hosts, and tells
     * how many connections a worker had: it is mixed with a key of the
     * process, made in the process (a worker's is not its master's)
     */

    if (key_pid != ngx_pid) {
        if (RAND_bytes(key, sizeof(key)) != 1) {
            v[0] = (uint64_t) ngx_random() << 32 ^ (uint64_t) ngx_random();
            v[1] = (uint64_t) ngx_time() << 20 ^ (uint64_t) ngx_random();
            ngx_memcpy(key, v, sizeof(key));
        }

        key_pid = ngx_pid;
    }

    v[0] = (uint64_t) ngx_pid;
    v[1] = (uint64_t) c->number;

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, key, sizeof(key));
    ngx_sha1_update(&sha1, v, sizeof(v));
    ngx_sha1_final(md, &sha1);

    *ngx_hex_dump(buf, md, 8) = '\0';
}


ngx_int_t
ngx_certguard_variable(ngx_pool_t *pool, const cg_result_t *res,
    const cg_event_t *ev, ngx_certguard_var_e which, ngx_variable_value_t *v)
{
    u_char      *p;
    size_t       n, size;
    const char  *s;

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    if (res == NULL) {
        v->len = 0;
        v->data = (u_char *) "";
        return NGX_OK;
    }

    switch (which) {

    case NGX_CERTGUARD_VAR_VERDICT:
        s = cg_verdict_name(res->verdict);
        break;

    case NGX_CERTGUARD_VAR_SCORE:
        p = ngx_pnalloc(pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->len = ngx_sprintf(p, "%i", (ngx_int_t) res->score) - p;
        v->data = p;
        return NGX_OK;

    case NGX_CERTGUARD_VAR_SHA256:
        s = res->sha256;
        break;

    case NGX_CERTGUARD_VAR_SUBJECT:
        s = res->subject;
        break;

    case NGX_CERTGUARD_VAR_ISSUER:
        s = res->issuer;
        break;

    case NGX_CERTGUARD_VAR_SIGNALS:
    case NGX_CERTGUARD_VAR_CEF:
    default:
        size = 512;

        for ( ;; ) {
            p = ngx_pnalloc(pool, size);
            if (p == NULL) {
                return NGX_ERROR;
            }

            if (which == NGX_CERTGUARD_VAR_SIGNALS) {
                n = cg_format_signal_ids(res, (char *) p, size);

            } else {
                n = cg_format_cef(res, ev, (char *) p, size);
            }

            if (n < size) {
                break;
            }

            size = n + 1;
        }

        v->len = n;
        v->data = p;
        return NGX_OK;
    }

    n = ngx_strlen(s);

    p = ngx_pnalloc(pool, n);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, s, n);

    v->len = n;
    v->data = p;

    return NGX_OK;
}
