/*
 * The values of the $certguard_* variables, for both modules.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_certguard_shared.h"


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
