/*
 * ngx_stream_certguard_module: an open tunnel whose TLS is 1.2 or older
 * carries the server's certificate in the clear.  A stream filter reads the
 * destination's first flight as it goes to the client, and when its
 * certificate is not the one the probe scored (a destination that shows
 * its probes one certificate and its clients another), scores the chain the
 * client received with cert_cloaking and cuts the tunnel on a block.  The
 * first flight is read once, and certguard is out of the data path after.
 * A Certificate message this worker saw before, with the probed leaf, is
 * not parsed again: warm tunnels to one server send the same bytes.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include "ngx_stream_certguard_module.h"
#include "cg_serverhello.h"
#include "ngx_certguard_memo.h"


/* the handshake bytes the engine reads, and the record headers around */
#define NGX_STREAM_CERTGUARD_FLIGHT_MAX                                      \
    (CG_SERVERHELLO_MAX + 5 * CG_SERVERHELLO_RECORDS)

/* Certificate messages this worker saw parse, whose leaf was the probed
 * one: a warm tunnel to the same server sends the same message, and its
 * certificates need not be parsed again (most of a tunnel's cost else).
 * A message is found by its length and last bytes (of the last
 * certificate's signature) and compared whole. */
#define NGX_STREAM_CERTGUARD_SEEN           64
#define NGX_STREAM_CERTGUARD_SEEN_MAX       16384   /* longer: not kept */


typedef struct {
    u_char                         *msg;         /* the message's body
                                                    (ngx_alloc()); NULL:
                                                    free */
    size_t                          len;
    u_char                          leaf[65];    /* its leaf's SHA-256,
                                                    hex */
} ngx_stream_certguard_seen_t;


/* a tunnel's Certificate message, for ngx_stream_certguard_tunnel_known() */
typedef struct {
    ngx_stream_certguard_ctx_t     *ctx;
    u_char                         *copy;        /* to keep if its leaf is
                                                    the probed one
                                                    (ngx_alloc()) */
    size_t                          len;
} ngx_stream_certguard_msg_t;


static ngx_int_t ngx_stream_certguard_tunnel_filter(ngx_stream_session_t *s,
    ngx_chain_t *in, ngx_uint_t from_upstream);
static ngx_int_t ngx_stream_certguard_tunnel_read(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, ngx_chain_t *in);
static ngx_int_t ngx_stream_certguard_tunnel_append(
    ngx_stream_certguard_ctx_t *ctx, u_char *p, size_t n, ngx_log_t *log);
static ngx_stream_certguard_seen_t *ngx_stream_certguard_tunnel_slot(
    const u_char *msg, size_t len);
static int ngx_stream_certguard_tunnel_known(const unsigned char *msg,
    size_t len, void *data);
static ngx_int_t ngx_stream_certguard_tunnel_compare(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, STACK_OF(X509) *chain,
    ngx_stream_certguard_msg_t *fm);
static void ngx_stream_certguard_tunnel_alert(ngx_connection_t *c);


static ngx_stream_filter_pt  ngx_stream_next_filter;

static ngx_stream_certguard_seen_t
    ngx_stream_certguard_seen[NGX_STREAM_CERTGUARD_SEEN];


ngx_int_t
ngx_stream_certguard_tunnel_init(ngx_conf_t *cf)
{
    ngx_stream_next_filter = ngx_stream_top_filter;
    ngx_stream_top_filter = ngx_stream_certguard_tunnel_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_stream_certguard_tunnel_filter(ngx_stream_session_t *s, ngx_chain_t *in,
    ngx_uint_t from_upstream)
{
    ngx_stream_certguard_ctx_t  *ctx;

    if (from_upstream && in) {
        ctx = ngx_stream_get_module_ctx(s, ngx_stream_certguard_module);

        if (ctx && ctx->inspect
            && ngx_stream_certguard_tunnel_read(s, ctx, in) != NGX_OK)
        {
            ngx_stream_certguard_tunnel_alert(s->connection);
            return NGX_ERROR;       /* the stream proxy ends the session */
        }
    }

    return ngx_stream_next_filter(s, in, from_upstream);
}


/*
 * The bytes so far, read again whole each time more arrive (a first flight
 * comes in a few reads): NGX_OK to pass them on, NGX_ERROR to cut the
 * tunnel before the client has the certificate.  Bytes that are no TLS
 * server's first flight, or one too large to read, are cut too in enforce
 * mode: a flight the engine cannot read might be one a client accepts.
 */

static ngx_int_t
ngx_stream_certguard_tunnel_read(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, ngx_chain_t *in)
{
    int                               rc;
    unsigned                          version;
    ngx_int_t                         cut;
    ngx_chain_t                      *cl;
    STACK_OF(X509)                   *chain;
    ngx_connection_t                 *c;
    ngx_stream_certguard_srv_conf_t  *cgscf;
    ngx_stream_certguard_msg_t        fm;

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    rc = CG_SERVERHELLO_AGAIN;

    fm.ctx = ctx;
    fm.copy = NULL;

    for (cl = in; cl; cl = cl->next) {
        if (!ngx_buf_in_memory(cl->buf) || cl->buf->last == cl->buf->pos) {
            continue;
        }

        if (ngx_stream_certguard_tunnel_append(ctx, cl->buf->pos,
                                               cl->buf->last - cl->buf->pos,
                                               c->log)
            != NGX_OK)
        {
            rc = CG_ERR_INPUT;
            break;
        }
    }

    if (rc == CG_SERVERHELLO_AGAIN) {
        rc = cg_serverhello_chain_known(ctx->flight, ctx->flight_len,
                                        &version, &chain,
                                        ngx_stream_certguard_tunnel_known,
                                        &fm);

        if (rc != CG_OK && fm.copy) {
            ngx_free(fm.copy);
            fm.copy = NULL;
        }
    }

    switch (rc) {

    case CG_SERVERHELLO_AGAIN:
        if (ctx->flight_len < NGX_STREAM_CERTGUARD_FLIGHT_MAX) {
            return NGX_OK;
        }

        rc = CG_ERR_INPUT;
        break;

    case CG_SERVERHELLO_ENCRYPTED:
    case CG_SERVERHELLO_NO_CERT:
        ngx_log_debug2(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "certguard: TLS %xd in the tunnel to %V, no "
                       "certificate in the clear", version, &ctx->upstream);
        ngx_stream_certguard_tunnel_done(ctx);
        return NGX_OK;

    case CG_OK:
        ngx_stream_certguard_tunnel_done(ctx);

        if (chain == NULL) {
            ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                           "certguard: the tunnel to %V carries the probed "
                           "certificate (a Certificate message seen before)",
                           &ctx->upstream);
            return NGX_OK;
        }

        cut = ngx_stream_certguard_tunnel_compare(s, ctx, chain, &fm);
        sk_X509_pop_free(chain, X509_free);

        if (fm.copy) {
            ngx_free(fm.copy);
        }

        return cut;

    default:
        break;
    }

    ngx_stream_certguard_tunnel_done(ctx);

    ngx_log_error(NGX_LOG_ERR, c->log, 0,
                  "certguard: the certificate in the tunnel to \"%V\" could "
                  "not be read: %s", &ctx->target,
                  rc == CG_ERR_NOMEM ? "out of memory"
                                     : "no TLS first flight, or too large");

    return (cgscf->common.mode == NGX_CERTGUARD_ENFORCE) ? NGX_ERROR : NGX_OK;
}


static ngx_int_t
ngx_stream_certguard_tunnel_append(ngx_stream_certguard_ctx_t *ctx,
    u_char *p, size_t n, ngx_log_t *log)
{
    u_char  *nf;
    size_t   size;

    if (n > NGX_STREAM_CERTGUARD_FLIGHT_MAX - ctx->flight_len) {
        return NGX_ERROR;
    }

    if (ctx->flight_len + n > ctx->flight_size) {
        size = ngx_max(ctx->flight_len + n, ngx_max(ctx->flight_size * 2,
                                                    4096));
        size = ngx_min(size, NGX_STREAM_CERTGUARD_FLIGHT_MAX);

        nf = ngx_alloc(size, log);
        if (nf == NULL) {
            return NGX_ERROR;
        }

        if (ctx->flight) {
            ngx_memcpy(nf, ctx->flight, ctx->flight_len);
            ngx_free(ctx->flight);
        }

        ctx->flight = nf;
        ctx->flight_size = size;
    }

    ngx_memcpy(ctx->flight + ctx->flight_len, p, n);
    ctx->flight_len += n;

    return NGX_OK;
}


/*
 * A cut tunnel's client is in the middle of its handshake: a fatal
 * handshake_failure alert tells it why the connection ends, unless bytes
 * of the server's are still queued for it (the alert would come first).
 */

static void
ngx_stream_certguard_tunnel_alert(ngx_connection_t *c)
{
    static u_char  alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28 };

    if (!c->buffered) {
        (void) c->send(c, alert, sizeof(alert));
    }
}


/* Reading is over: the tunnel is plain nginx from here on. */

void
ngx_stream_certguard_tunnel_done(ngx_stream_certguard_ctx_t *ctx)
{
    ctx->inspect = 0;

    if (ctx->flight) {
        ngx_free(ctx->flight);
        ctx->flight = NULL;
    }

    ctx->flight_len = 0;
    ctx->flight_size = 0;
}


static ngx_stream_certguard_seen_t *
ngx_stream_certguard_tunnel_slot(const u_char *msg, size_t len)
{
    uint32_t  h, tail;

    h = (uint32_t) len;

    if (len >= sizeof(tail)) {
        ngx_memcpy(&tail, msg + len - sizeof(tail), sizeof(tail));
        h ^= tail;
    }

    return &ngx_stream_certguard_seen[h % NGX_STREAM_CERTGUARD_SEEN];
}


/*
 * A Certificate message seen before (the same bytes parse the same way)
 * whose leaf was this tunnel's probed certificate: nothing to parse.
 * Else a copy, to keep once the parse shows its leaf is the probed one.
 */

static int
ngx_stream_certguard_tunnel_known(const unsigned char *msg, size_t len,
    void *data)
{
    ngx_stream_certguard_msg_t  *fm = data;

    ngx_stream_certguard_seen_t  *seen;

    seen = ngx_stream_certguard_tunnel_slot(msg, len);

    if (seen->msg && seen->len == len
        && ngx_memcmp(seen->msg, msg, len) == 0
        && ngx_strncasecmp(seen->leaf, (u_char *) fm->ctx->result->sha256,
                           64)
           == 0)
    {
        return 1;
    }

    if (len <= NGX_STREAM_CERTGUARD_SEEN_MAX && fm->copy == NULL) {
        fm->copy = ngx_alloc(len, fm->ctx->session->connection->log);

        if (fm->copy) {
            ngx_memcpy(fm->copy, msg, len);
            fm->len = len;
        }
    }

    return 0;
}


/*
 * The leaf the client is about to receive against the probed one; another
 * is scored, as received, with the probed digest (cert_cloaking fires), and
 * its verdict is the tunnel's: a second record, and a block cuts.
 */

static ngx_int_t
ngx_stream_certguard_tunnel_compare(ngx_stream_session_t *s,
    ngx_stream_certguard_ctx_t *ctx, STACK_OF(X509) *chain,
    ngx_stream_certguard_msg_t *fm)
{
    int                               rc;
    u_char                           *p;
    cg_input_t                        in;
    cg_result_t                      *res;
    ngx_connection_t                 *c;
    ngx_stream_certguard_seen_t      *seen;
    ngx_stream_certguard_srv_conf_t  *cgscf;
    u_char                            leaf[EVP_MAX_MD_SIZE];
    u_char                            hex[65], probed[65];

    c = s->connection;
    cgscf = ngx_stream_get_module_srv_conf(s, ngx_stream_certguard_module);

    if (ngx_certguard_cert_sha256(sk_X509_value(chain, 0), leaf) == NGX_OK) {
        p = ngx_hex_dump(hex, leaf, 32);

    } else {
        p = hex;
    }

    *p = '\0';

    if (p != hex
        && ngx_strncasecmp(hex, (u_char *) ctx->result->sha256, 64) == 0)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, c->log, 0,
                       "certguard: the tunnel to %V carries the probed "
                       "certificate", &ctx->upstream);

        if (fm->copy) {
            seen = ngx_stream_certguard_tunnel_slot(fm->copy, fm->len);

            if (seen->msg) {
                ngx_free(seen->msg);
            }

            seen->msg = fm->copy;
            seen->len = fm->len;
            ngx_memcpy(seen->leaf, hex, sizeof(seen->leaf));
            fm->copy = NULL;
        }

        return NGX_OK;
    }

    ngx_cpystrn(probed, (u_char *) ctx->result->sha256, sizeof(probed));

    ngx_log_error(NGX_LOG_ERR, c->log, 0,
                  "certguard: the certificate in the tunnel to \"%V\" is not "
                  "the one probed: SHA-256 %s, probed %s", &ctx->target, hex,
                  probed);

    res = ngx_palloc(c->pool, sizeof(cg_result_t));
    if (res == NULL) {
        return NGX_ERROR;
    }

    rc = cg_input_handshake(&in, cgscf->common.policy, cgscf->common.trust,
                            cgscf->common.geoip, NULL, chain,
                            (char *) ctx->host.data, (char *) ctx->addr_only,
                            ctx->port, ngx_time());

    if (rc == CG_OK) {
        in.client_sni = (cgscf->connect && ctx->client_sni[0])
                        ? ctx->client_sni : NULL;
        in.probed_sha256 = (char *) probed;
        in.verify_memo = ngx_certguard_memo();
        in.certs = ngx_certguard_certs();

        rc = cg_evaluate(&in, res);
        ngx_certguard_certs_account();
    }

    if (rc != CG_OK) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "certguard: the certificate in the tunnel could not be "
                      "evaluated: %s", cg_strerror(rc));

        (void) cg_result_failure(res, CG_FAILURE_ENGINE, CG_BLOCK,
                                 (char *) ctx->host.data,
                                 ngx_certguard_probe_eval_failed);
    }

    ctx->result = res;
    ctx->cached = 0;
    ctx->logged = 0;
    ctx->blocked = (res->verdict == CG_BLOCK
                    && cgscf->common.mode == NGX_CERTGUARD_ENFORCE);

    ngx_stream_certguard_log_result(s, ctx);

    /*
     * the cached verdict was the probe's, fooled: a destination caught
     * cloaking is refused from now on, before any ClientHello (the
     * destination's key) and for clients like this one (TLS 1.3 ones
     * included, whose certificate cannot be seen)
     */

    if (res->verdict == CG_BLOCK) {
        (void) ngx_certguard_cache_put(&cgscf->common.cache, &ctx->dest_key,
                                       res);

        if (ctx->key.data != ctx->dest_key.data) {
            (void) ngx_certguard_cache_put(&cgscf->common.cache, &ctx->key,
                                           res);
        }
    }

    return ctx->blocked ? NGX_ERROR : NGX_OK;
}
