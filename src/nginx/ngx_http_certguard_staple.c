/*
 * The HTTP module's stapled OCSP responses over TLS 1.2.  The verdict is
 * made in the certificate verify callback; over TLS 1.3 the staple rides
 * in the Certificate message and is there by then, but over TLS 1.2 the
 * CertificateStatus message follows the Certificate.  OpenSSL's client
 * calls the status callback once the server's flight is in (TLS 1.2: with
 * the ServerHelloDone; TLS 1.3: after the server's Finished), for every
 * full handshake that asked for a staple, whether one came or not; an
 * abbreviated one calls neither callback.  A TLS 1.2 verdict that was left
 * waiting there is scored again with the staple and only then decided.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_certguard_module.h"


size_t
ngx_http_certguard_staple(SSL *ssl, const unsigned char **resp)
{
    long            len;
    unsigned char  *p;

    *resp = NULL;

    len = SSL_get_tlsext_status_ocsp_resp(ssl, &p);
    if (len <= 0 || p == NULL) {
        return 0;
    }

    *resp = p;

    return (size_t) len;
}


int
ngx_http_certguard_ocsp_status(SSL *ssl, void *arg)
{
    return ngx_http_certguard_settle(ssl, 1) == NGX_OK;
}


/*
 * NGX_DECLINED when the verdict blocks in enforce mode: the status
 * callback's 0 then aborts the handshake (OpenSSL sends a
 * bad_certificate_status_response alert) before the client's key
 * exchange, and the request is never sent.  Without staple (a handshake
 * that fails before the status callback) the verdict is logged as it was
 * scored but not cached: it did not see what the server may staple.
 */

ngx_int_t
ngx_http_certguard_settle(SSL *ssl, ngx_uint_t staple)
{
    u_char                          name[CG_NAME_MAX];
    cg_input_t                      in;
    ngx_uint_t                      fresh;
    ngx_connection_t               *c;
    ngx_http_request_t             *r;
    ngx_http_certguard_ctx_t       *ctx;
    ngx_http_certguard_loc_conf_t  *cglcf;

    c = ngx_ssl_get_connection(ssl);
    r = (c != NULL) ? c->data : NULL;

    if (r == NULL || r->upstream == NULL) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_certguard_module);

    if (ctx == NULL || !ctx->pending) {
        return NGX_OK;
    }

    cglcf = ngx_http_get_module_loc_conf(r, ngx_http_certguard_module);
    fresh = staple;

    /* the chain the verify callback scored, as the session holds it */

    if (ngx_http_certguard_input(r, ctx, cglcf,
                                 SSL_get0_peer_certificate(ssl),
                                 SSL_get_peer_cert_chain(ssl), name, &in)
        != NGX_OK)
    {
        ngx_memzero(&in, sizeof(cg_input_t));
        (void) cg_result_failure(&ctx->result, CG_FAILURE_ENGINE, CG_BLOCK,
                                 (const char *) name, NULL);
        fresh = 0;

    } else if (staple) {
        in.ocsp_len = ngx_http_certguard_staple(ssl, &in.ocsp);

        /* no staple: the verdict stands as it was scored */

        if (in.ocsp_len && cg_evaluate(&in, &ctx->result) != CG_OK) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "certguard: engine could not score the "
                          "certificate of \"%s\" with its staple", name);

            (void) cg_result_failure(&ctx->result, CG_FAILURE_ENGINE,
                                     CG_BLOCK, (const char *) name, NULL);
            fresh = 0;
        }
    }

    ngx_http_certguard_decide(r, c, ssl, cglcf, ctx, &in, fresh);

    if (!ctx->blocked) {
        return NGX_OK;
    }

    /*
     * as in the verify callback: nginx logs the failed handshake at "error"
     * when the first error queued is a callback's; the block is certguard's
     * decision, logged above with its reason
     */

    ERR_clear_error();
    ERR_raise(ERR_LIB_SSL, SSL_R_CALLBACK_FAILED);

    return NGX_DECLINED;
}
