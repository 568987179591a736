/*
 * What ngx_http_certguard_forward_module tells the rest of the HTTP glue.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef NGX_HTTP_CERTGUARD_FORWARD_H_INCLUDED_
#define NGX_HTTP_CERTGUARD_FORWARD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* The authenticated proxy user of a request: NGX_OK and *user, or
 * NGX_DECLINED (no authentication here, or none yet). */
ngx_int_t ngx_http_certguard_forward_user(ngx_http_request_t *r,
    ngx_str_t *user);


#endif /* NGX_HTTP_CERTGUARD_FORWARD_H_INCLUDED_ */
