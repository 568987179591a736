/*
 * certguard's probe: connect, TLS handshake with the client's SNI, capture
 * the chain, score it, put the verdict in the cache, tell the waiters.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <ngx_event_connect.h>

#include "ngx_certguard_probe.h"
#include "ngx_certguard_memo.h"
#include "ngx_certguard_metrics.h"


struct ngx_certguard_probe_s {
    ngx_queue_t                      queue;       /* in params->probes */
    ngx_queue_t                      waiters;     /* waiters' queue */
    ngx_pool_t                      *pool;
    ngx_log_t                        log;
    ngx_str_t                        key;
    ngx_str_t                        name;        /* NUL-terminated */
    ngx_str_t                        mark;
    cg_clienthello_t                *hello;       /* NULL: defaults */
    char                            *client_sni;  /* NULL: none */
    ngx_str_t                        addr_text;   /* address:port */
    u_char                           addr_only[NGX_SOCKADDR_STRLEN];
    in_port_t                        port;
    ngx_peer_connection_t            peer;
    ngx_event_t                      timeout;
    ngx_event_t                      poll;        /* another worker probes */
    ngx_msec_t                       deadline;
    ngx_msec_t                       started;     /* for the histogram */
    ngx_msec_t                       probe_timeout;
    ngx_ssl_t                       *ssl;
    const cg_policy_t               *policy;
    const cg_trust_t                *trust;
    const cg_geoip_t                *geoip;
    const cg_crls_t                 *crls;
    const cg_intermediates_t        *intermediates;
    ngx_certguard_memory_t          *memory;
    ngx_certguard_capture_t         *capture;
    ngx_certguard_cache_t           *cache;
    unsigned                         claimed:1;   /* holds the zone's claim */

    void                           (*done)(void *data);
    void                            *done_data;

    X509                            *leaf;        /* captured in the
                                                     handshake */
    STACK_OF(X509)                  *chain;
    u_char                          *ocsp;        /* the stapled response,
                                                     copied before the
                                                     connection closes */
    size_t                           ocsp_len;
};


static ngx_certguard_probe_t *ngx_certguard_probe_create(
    ngx_certguard_probe_params_t *params);
static ngx_certguard_probe_t *ngx_certguard_probe_find(ngx_queue_t *probes,
    ngx_str_t *key);
static void ngx_certguard_probe_connect(ngx_certguard_probe_t *probe);
static void ngx_certguard_probe_poll(ngx_event_t *ev);
static void ngx_certguard_probe_connected(ngx_event_t *ev);
static void ngx_certguard_probe_handshaked(ngx_connection_t *c);
static void ngx_certguard_probe_timeout(ngx_event_t *ev);
static void ngx_certguard_probe_finish(ngx_certguard_probe_t *probe,
    const char *failure);
static void ngx_certguard_probe_notify(ngx_certguard_probe_t *probe,
    cg_result_t *res, const char *failure);
static ngx_int_t ngx_certguard_probe_sni(ngx_certguard_probe_t *probe,
    SSL *ssl);
static void ngx_certguard_probe_mirror(ngx_certguard_probe_t *probe,
    SSL *ssl);
static void ngx_certguard_probe_versions(const cg_clienthello_t *ch,
    int *min, int *max);
static u_char *ngx_certguard_probe_names(ngx_certguard_probe_t *probe,
    SSL *ssl, const uint16_t *ids, ngx_uint_t n, const char *(*name)(unsigned),
    int (*set)(SSL *ssl, const char *list));
static const char *ngx_certguard_probe_group(unsigned id);
static const char *ngx_certguard_probe_sigalg(unsigned id);
static int ngx_certguard_probe_set_groups(SSL *ssl, const char *list);
static int ngx_certguard_probe_set_sigalgs(SSL *ssl, const char *list);
static int ngx_certguard_probe_verify(X509_STORE_CTX *x509, void *arg);
static void ngx_certguard_probe_staple(ngx_certguard_probe_t *probe,
    SSL *ssl);
static u_char *ngx_certguard_probe_log_error(ngx_log_t *log, u_char *buf,
    size_t len);


const char  ngx_certguard_probe_eval_failed[] =
    "certificate could not be evaluated";


/* IANA TLS Supported Groups and SignatureScheme code points, with the
 * names OpenSSL's lists take (OpenSSL has no lookup by code point). */

typedef struct {
    unsigned      id;
    const char   *name;
} ngx_certguard_probe_code_t;


static ngx_certguard_probe_code_t  ngx_certguard_probe_groups[] = {
    { 0x0017, "P-256" },
    { 0x0018, "P-384" },
    { 0x0019, "P-521" },
    { 0x001a, "brainpoolP256r1" },
    { 0x001b, "brainpoolP384r1" },
    { 0x001c, "brainpoolP512r1" },
    { 0x001d, "X25519" },
    { 0x001e, "X448" },
    { 0x0100, "ffdhe2048" },
    { 0x0101, "ffdhe3072" },
    { 0x0102, "ffdhe4096" },
    { 0x0103, "ffdhe6144" },
    { 0x0104, "ffdhe8192" },
    { 0, NULL }
};


/* the TLS 1.2 schemes OpenSSL has no name for go as "SIG+HASH" */

static ngx_certguard_probe_code_t  ngx_certguard_probe_sigalgs[] = {
    { 0x0201, "RSA+SHA1" },
    { 0x0202, "DSA+SHA1" },
    { 0x0203, "ECDSA+SHA1" },
    { 0x0301, "RSA+SHA224" },
    { 0x0302, "DSA+SHA224" },
    { 0x0303, "ECDSA+SHA224" },
    { 0x0401, "rsa_pkcs1_sha256" },
    { 0x0402, "DSA+SHA256" },
    { 0x0403, "ecdsa_secp256r1_sha256" },
    { 0x0501, "rsa_pkcs1_sha384" },
    { 0x0502, "DSA+SHA384" },
    { 0x0503, "ecdsa_secp384r1_sha384" },
    { 0x0601, "rsa_pkcs1_sha512" },
    { 0x0602, "DSA+SHA512" },
    { 0x0603, "ecdsa_secp521r1_sha512" },
    { 0x0804, "rsa_pss_rsae_sha256" },
    { 0x0805, "rsa_pss_rsae_sha384" },
    { 0x0806, "rsa_pss_rsae_sha512" },
    { 0x0807, "ed25519" },
    { 0x0808, "ed448" },
    { 0x0809, "rsa_pss_pss_sha256" },
    { 0x080a, "rsa_pss_pss_sha384" },
    { 0x080b, "rsa_pss_pss_sha512" },
    { 0, NULL }
};


ngx_ssl_t *
ngx_certguard_probe_ssl(ngx_conf_t *cf)
{
    ngx_ssl_t           *ssl;
    ngx_pool_cleanup_t  *cln;

    ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (ssl == NULL) {
        return NULL;
    }

    ssl->log = cf->log;

    /* TLS 1.0 and 1.1 for probes of clients that offer them; a probe
     * without a client's ClientHello asks for TLS 1.2 at least */

    if (ngx_ssl_create(ssl, NGX_SSL_TLSv1|NGX_SSL_TLSv1_1|NGX_SSL_TLSv1_2
                            |NGX_SSL_TLSv1_3, NULL)
        != NGX_OK)
    {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(ssl);
        return NULL;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = ssl;

    SSL_CTX_set_verify(ssl->ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_cert_verify_callback(ssl->ctx, ngx_certguard_probe_verify,
                                     NULL);

    return ssl;
}


/*
 * A probe belongs to no caller (callers may come and go while it runs), so
 * it has its own pool and log, and the caller's list finds it by key.
 */

ngx_int_t
ngx_certguard_probe_start(ngx_certguard_probe_params_t *params,
    ngx_certguard_probe_waiter_t *w)
{
    ngx_int_t               rc;
    ngx_certguard_probe_t  *probe;

    probe = ngx_certguard_probe_find(params->probes, &params->key);

    if (probe) {
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, params->log, 0,
                       "certguard: waiting on the probe of %V",
                       &probe->addr_text);

        w->probe = probe;
        ngx_queue_insert_tail(&probe->waiters, &w->queue);
        return NGX_OK;
    }

    probe = ngx_certguard_probe_create(params);
    if (probe == NULL) {
        return NGX_ERROR;
    }

    probe->done = params->done;
    probe->done_data = params->done_data;

    ngx_queue_insert_tail(params->probes, &probe->queue);

    w->probe = probe;
    ngx_queue_insert_tail(&probe->waiters, &w->queue);

    /*
     * Workers share probes through the zone: the first claims the key, the
     * others poll the zone until its result is there (or the claim is gone,
     * after a failure: then they probe themselves).
     */

    probe->deadline = ngx_current_msec + 2 * probe->probe_timeout + 1000;
    probe->started = ngx_current_msec;

    rc = ngx_certguard_cache_claim(probe->cache, &probe->key,
                                   probe->probe_timeout / 1000 + 2);

    if (rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                       "certguard: another worker probes %V",
                       &probe->addr_text);

        ngx_add_timer(&probe->poll, rc == NGX_BUSY ? 20 : 1);
        return NGX_OK;
    }

    probe->claimed = (probe->cache->shm_zone != NULL);

    ngx_log_debug2(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                   "certguard: probe of %V starts%s", &probe->addr_text,
                   probe->claimed ? ", the zone's claim held" : "");

    ngx_certguard_probe_connect(probe);

    return NGX_OK;
}


ngx_uint_t
ngx_certguard_probe_running(ngx_queue_t *probes, ngx_str_t *key)
{
    return ngx_certguard_probe_find(probes, key) != NULL;
}


static ngx_certguard_probe_t *
ngx_certguard_probe_find(ngx_queue_t *probes, ngx_str_t *key)
{
    ngx_queue_t            *q;
    ngx_certguard_probe_t  *probe;

    for (q = ngx_queue_head(probes);
         q != ngx_queue_sentinel(probes);
         q = ngx_queue_next(q))
    {
        probe = ngx_queue_data(q, ngx_certguard_probe_t, queue);

        if (probe->key.len == key->len
            && ngx_memcmp(probe->key.data, key->data, key->len) == 0)
        {
            return probe;
        }
    }

    return NULL;
}


void
ngx_certguard_probe_cancel(ngx_certguard_probe_waiter_t *w)
{
    if (w->probe == NULL) {
        return;
    }

    ngx_queue_remove(&w->queue);
    w->probe = NULL;
}


static ngx_certguard_probe_t *
ngx_certguard_probe_create(ngx_certguard_probe_params_t *params)
{
    size_t                  len;
    ngx_pool_t             *pool;
    ngx_certguard_probe_t  *probe;

    pool = ngx_create_pool(2048, ngx_cycle->log);
    if (pool == NULL) {
        return NULL;
    }

    probe = ngx_pcalloc(pool, sizeof(ngx_certguard_probe_t));
    if (probe == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    probe->pool = pool;
    probe->ssl = params->ssl;
    probe->probe_timeout = params->timeout;
    probe->policy = params->policy;
    probe->trust = params->trust;
    probe->geoip = params->geoip;
    probe->crls = params->crls;
    probe->intermediates = params->intermediates;
    probe->memory = params->memory;
    probe->capture = params->capture;
    probe->cache = params->cache;
    probe->port = ngx_inet_get_port(params->sockaddr);

    probe->key.data = ngx_pstrdup(pool, &params->key);
    probe->key.len = params->key.len;

    if (params->mark.len) {
        probe->mark.data = ngx_pstrdup(pool, &params->mark);
        if (probe->mark.data == NULL) {
            ngx_destroy_pool(pool);
            return NULL;
        }

        probe->mark.len = params->mark.len;
    }

    if (params->hello) {
        probe->hello = ngx_palloc(pool, sizeof(cg_clienthello_t));
        if (probe->hello == NULL) {
            ngx_destroy_pool(pool);
            return NULL;
        }

        ngx_memcpy(probe->hello, params->hello, sizeof(cg_clienthello_t));
    }

    if (params->client_sni && params->client_sni[0]) {
        len = ngx_strlen(params->client_sni);

        probe->client_sni = ngx_pnalloc(pool, len + 1);
        if (probe->client_sni == NULL) {
            ngx_destroy_pool(pool);
            return NULL;
        }

        ngx_memcpy(probe->client_sni, params->client_sni, len + 1);
    }
    probe->name.data = ngx_pnalloc(pool, params->name.len + 1);
    probe->addr_text.data = ngx_pnalloc(pool, NGX_SOCKADDR_STRLEN);
    probe->peer.sockaddr = ngx_palloc(pool, params->socklen);

    if (probe->key.data == NULL || probe->name.data == NULL
        || probe->addr_text.data == NULL || probe->peer.sockaddr == NULL)
    {
        ngx_destroy_pool(pool);
        return NULL;
    }

    ngx_memcpy(probe->name.data, params->name.data, params->name.len);
    probe->name.data[params->name.len] = '\0';
    probe->name.len = params->name.len;

    probe->addr_text.len = ngx_sock_ntop(params->sockaddr, params->socklen,
                                         probe->addr_text.data,
                                         NGX_SOCKADDR_STRLEN, 1);

    len = ngx_sock_ntop(params->sockaddr, params->socklen, probe->addr_only,
                        NGX_SOCKADDR_STRLEN - 1, 0);
    probe->addr_only[len] = '\0';

    probe->log = *params->log;
    probe->log.connection = 0;
    probe->log.handler = ngx_certguard_probe_log_error;
    probe->log.data = probe;
    probe->log.action = "connecting to the destination";
    pool->log = &probe->log;

    ngx_queue_init(&probe->waiters);

    probe->timeout.handler = ngx_certguard_probe_timeout;
    probe->timeout.data = probe;
    probe->timeout.log = &probe->log;

    probe->poll.handler = ngx_certguard_probe_poll;
    probe->poll.data = probe;
    probe->poll.log = &probe->log;

    ngx_memcpy(probe->peer.sockaddr, params->sockaddr, params->socklen);
    probe->peer.socklen = params->socklen;
    probe->peer.name = &probe->addr_text;
    probe->peer.get = ngx_event_get_peer;
    probe->peer.log = &probe->log;
    probe->peer.log_error = NGX_ERROR_ERR;

    return probe;
}


static void
ngx_certguard_probe_connect(ngx_certguard_probe_t *probe)
{
    ngx_int_t          rc;
    ngx_connection_t  *pc;

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                   "certguard: probing %V", &probe->addr_text);

    ngx_add_timer(&probe->timeout, probe->probe_timeout);

    rc = ngx_event_connect_peer(&probe->peer);

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_certguard_probe_finish(probe, "connection failed");
        return;
    }

    pc = probe->peer.connection;
    pc->data = probe;
    pc->pool = probe->pool;
    pc->read->handler = ngx_certguard_probe_connected;
    pc->write->handler = ngx_certguard_probe_connected;

    if (rc == NGX_AGAIN) {
        return;
    }

    ngx_certguard_probe_connected(pc->write);
}


static void
ngx_certguard_probe_poll(ngx_event_t *ev)
{
    ngx_int_t               rc;
    cg_result_t             res;
    ngx_certguard_probe_t  *probe;

    probe = ev->data;

    rc = ngx_certguard_cache_get(probe->cache, &probe->key, &res);

    if (rc == NGX_OK) {
        ngx_log_debug1(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                       "certguard: the other worker's verdict for %V",
                       &probe->addr_text);

        ngx_certguard_probe_notify(probe, &res, NULL);
        return;
    }

    if ((ngx_msec_int_t) (ngx_current_msec - probe->deadline) > 0) {
        ngx_certguard_probe_notify(probe, NULL, "timed out");
        return;
    }

    if (rc == NGX_BUSY) {
        ngx_add_timer(&probe->poll, 20);
        return;
    }

    /* the other worker failed or its claim expired: probe here */

    rc = ngx_certguard_cache_claim(probe->cache, &probe->key,
                                   probe->probe_timeout / 1000 + 2);

    if (rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_add_timer(&probe->poll, 20);
        return;
    }

    probe->claimed = 1;

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                   "certguard: probe of %V starts, the claim taken over",
                   &probe->addr_text);

    ngx_certguard_probe_connect(probe);
}


static void
ngx_certguard_probe_connected(ngx_event_t *ev)
{
    int                     err;
    socklen_t               len;
    ngx_int_t               rc;
    ngx_connection_t       *pc;
    ngx_certguard_probe_t  *probe;

    pc = ev->data;
    probe = pc->data;

    err = 0;
    len = sizeof(int);

    if (getsockopt(pc->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len) == -1) {
        err = ngx_socket_errno;
    }

    if (err) {
        (void) ngx_connection_error(pc, err, "connect() failed");
        ngx_certguard_probe_finish(probe, "connection refused");
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                   "certguard: probe connected to %V", &probe->addr_text);

    probe->log.action = "SSL handshaking with the destination";

    if (ngx_ssl_create_connection(probe->ssl, pc,
                                  NGX_SSL_BUFFER|NGX_SSL_CLIENT)
        != NGX_OK)
    {
        ngx_certguard_probe_finish(probe, "internal error");
        return;
    }

    /* a stapled OCSP response, checked with the chain */

    if (SSL_set_tlsext_status_type(pc->ssl->connection,
                                   TLSEXT_STATUSTYPE_ocsp)
        != 1)
    {
        ngx_ssl_error(NGX_LOG_ERR, pc->log, 0,
                      "SSL_set_tlsext_status_type() failed");
        ngx_certguard_probe_finish(probe, "internal error");
        return;
    }

    if (ngx_certguard_probe_sni(probe, pc->ssl->connection) != NGX_OK) {
        ngx_certguard_probe_finish(probe, "internal error");
        return;
    }

    if (probe->hello) {
        ngx_certguard_probe_mirror(probe, pc->ssl->connection);

    } else if (SSL_set_min_proto_version(pc->ssl->connection, TLS1_2_VERSION)
               != 1)
    {
        ngx_ssl_error(NGX_LOG_ERR, pc->log, 0,
                      "SSL_set_min_proto_version() failed");
        ngx_certguard_probe_finish(probe, "internal error");
        return;
    }

    rc = ngx_ssl_handshake(pc);

    if (rc == NGX_AGAIN) {
        pc->ssl->handler = ngx_certguard_probe_handshaked;
        return;
    }

    ngx_certguard_probe_handshaked(pc);
}


/*
 * The SNI the client sends: with its ClientHello, the name in it (none if
 * it sent none); without, the name scored, but none for an IP literal
 * (RFC 6066).
 */

static ngx_int_t
ngx_certguard_probe_sni(ngx_certguard_probe_t *probe, SSL *ssl)
{
    const char  *sni;

    if (probe->hello) {
        sni = probe->hello->sni[0] ? probe->hello->sni : NULL;

    } else if (ngx_inet_addr(probe->name.data, probe->name.len) == INADDR_NONE
               && ngx_strlchr(probe->name.data,
                              probe->name.data + probe->name.len, ':')
                  == NULL)
    {
        sni = (char *) probe->name.data;

    } else {
        sni = NULL;
    }

    if (sni && SSL_set_tlsext_host_name(ssl, sni) == 0) {
        ngx_ssl_error(NGX_LOG_ERR, &probe->log, 0,
                      "SSL_set_tlsext_host_name(\"%s\") failed", sni);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The client's parameters as the probe's, so that the destination sees a
 * ClientHello like the client's: ALPN as sent, the version range, cipher
 * suites, groups and signature algorithms in the client's order (those
 * OpenSSL knows; GREASE was left out by the parser), and the extensions
 * OpenSSL can leave out or add.  What OpenSSL refuses keeps its default:
 * the probe then differs from the client there, and the debug log says so.
 */

static void
ngx_certguard_probe_mirror(ngx_certguard_probe_t *probe, SSL *ssl)
{
    int                      min, max;
    u_char                  *list12, *list13, *p12, *p13;
    ngx_uint_t               i;
    const SSL_CIPHER        *cipher;
    const char              *name;
    const cg_clienthello_t  *ch;
    u_char                   id[2];

    ch = probe->hello;

    if (ch->alpn_len
        && SSL_set_alpn_protos(ssl, ch->alpn, (unsigned) ch->alpn_len) != 0)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                       "certguard: the client's ALPN not set");
    }

    ngx_certguard_probe_versions(ch, &min, &max);

    if (SSL_set_min_proto_version(ssl, min) != 1
        || SSL_set_max_proto_version(ssl, max) != 1)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                       "certguard: the client's versions not set");
    }

    /* OpenSSL takes TLS 1.3 suites and the older ones in two lists */

    list12 = ngx_pnalloc(probe->pool, ch->nciphers * 64 + 1);
    list13 = ngx_pnalloc(probe->pool, ch->nciphers * 64 + 1);

    if (list12 && list13) {
        p12 = list12;
        p13 = list13;

        for (i = 0; i < ch->nciphers; i++) {

            /* signalling values: OpenSSL sends its own as it needs */

            if (ch->ciphers[i] == 0x00ff || ch->ciphers[i] == 0x5600) {
                continue;
            }

            id[0] = (u_char) (ch->ciphers[i] >> 8);
            id[1] = (u_char) ch->ciphers[i];

            cipher = SSL_CIPHER_find(ssl, id);
            if (cipher == NULL) {
                continue;
            }

            name = SSL_CIPHER_get_name(cipher);

            if (id[0] == 0x13) {
                p13 = ngx_sprintf(p13, "%s%s", p13 == list13 ? "" : ":",
                                  name);
            } else {
                p12 = ngx_sprintf(p12, "%s%s", p12 == list12 ? "" : ":",
                                  name);
            }
        }

        *p12 = '\0';
        *p13 = '\0';

        if (p13 != list13 && SSL_set_ciphersuites(ssl, (char *) list13) != 1)
        {
            ngx_log_debug1(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                           "certguard: TLS 1.3 suites \"%s\" not set",
                           list13);
        }

        if (p12 != list12 && SSL_set_cipher_list(ssl, (char *) list12) != 1)
        {
            ngx_log_debug1(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                           "certguard: cipher list \"%s\" not set", list12);
        }

        ERR_clear_error();
    }

    (void) ngx_certguard_probe_names(probe, ssl, ch->groups, ch->ngroups,
                                     ngx_certguard_probe_group,
                                     ngx_certguard_probe_set_groups);

    (void) ngx_certguard_probe_names(probe, ssl, ch->sigalgs, ch->nsigalgs,
                                     ngx_certguard_probe_sigalg,
                                     ngx_certguard_probe_set_sigalgs);

    if (!cg_clienthello_has(ch, CG_TLS_EXT_SESSION_TICKET)) {
        SSL_set_options(ssl, SSL_OP_NO_TICKET);
    }

    if (!cg_clienthello_has(ch, CG_TLS_EXT_ENCRYPT_THEN_MAC)) {
        SSL_set_options(ssl, SSL_OP_NO_ENCRYPT_THEN_MAC);
    }

    if (!cg_clienthello_has(ch, CG_TLS_EXT_EXTENDED_MASTER)) {
        SSL_set_options(ssl, SSL_OP_NO_EXTENDED_MASTER_SECRET);
    }

    if (cg_clienthello_has(ch, CG_TLS_EXT_STATUS_REQUEST)) {
        (void) SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp);
    }

    if (cg_clienthello_has(ch, CG_TLS_EXT_POST_HANDSHAKE_AUTH)) {
        SSL_set_post_handshake_auth(ssl, 1);
    }

    ngx_log_debug7(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                   "certguard: probe with the client's parameters: SNI "
                   "\"%s\", ALPN %uz bytes, versions %xd-%xd, %ui suites, "
                   "%ui groups, %ui signature algorithms",
                   ch->sni, ch->alpn_len, min, max, (ngx_uint_t) ch->nciphers,
                   (ngx_uint_t) ch->ngroups, (ngx_uint_t) ch->nsigalgs);
}


/*
 * The range the client offers, within what the probes' context allows (TLS
 * 1.0 to 1.3): from supported_versions, or up to legacy_version without it
 * (from TLS 1.0 then, as such a client says no more).
 */

static void
ngx_certguard_probe_versions(const cg_clienthello_t *ch, int *min, int *max)
{
    unsigned    v, lo, hi;
    ngx_uint_t  i;

    lo = 0xffff;
    hi = 0;

    if (ch->nversions) {
        for (i = 0; i < ch->nversions; i++) {
            v = ch->versions[i];

            if (v < TLS1_VERSION || v > TLS1_3_VERSION) {
                continue;               /* drafts, SSL 3, DTLS */
            }

            lo = ngx_min(lo, v);
            hi = ngx_max(hi, v);
        }

    } else {
        lo = TLS1_VERSION;
        hi = ch->legacy_version;
    }

    hi = ngx_min(ngx_max(hi, TLS1_VERSION), TLS1_3_VERSION);
    lo = ngx_min(ngx_max(lo, TLS1_VERSION), hi);

    *min = (int) lo;
    *max = (int) hi;
}


/*
 * A list of the names OpenSSL has for these code points, in order, each
 * tried alone first (one name OpenSSL lacks would fail the whole list),
 * then set as one.  NULL when none was taken: the default stays.
 */

static u_char *
ngx_certguard_probe_names(ngx_certguard_probe_t *probe, SSL *ssl,
    const uint16_t *ids, ngx_uint_t n, const char *(*name)(unsigned),
    int (*set)(SSL *ssl, const char *list))
{
    u_char      *list, *p;
    ngx_uint_t   i;
    const char  *nm;

    if (n == 0) {
        return NULL;
    }

    list = ngx_pnalloc(probe->pool, n * 32 + 1);
    if (list == NULL) {
        return NULL;
    }

    p = list;

    for (i = 0; i < n; i++) {
        nm = name(ids[i]);

        if (nm == NULL || set(ssl, nm) != 1) {
            continue;
        }

        p = ngx_sprintf(p, "%s%s", p == list ? "" : ":", nm);
    }

    *p = '\0';

    ERR_clear_error();

    if (p == list) {
        ngx_log_debug0(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                       "certguard: none of the client's list known");
        return NULL;
    }

    if (set(ssl, (char *) list) != 1) {
        ERR_clear_error();
        return NULL;
    }

    return list;
}


static const char *
ngx_certguard_probe_code(ngx_certguard_probe_code_t *table, unsigned id)
{
    for ( /* void */ ; table->name; table++) {
        if (table->id == id) {
            return table->name;
        }
    }

    return NULL;
}


static const char *
ngx_certguard_probe_group(unsigned id)
{
    return ngx_certguard_probe_code(ngx_certguard_probe_groups, id);
}


static const char *
ngx_certguard_probe_sigalg(unsigned id)
{
    return ngx_certguard_probe_code(ngx_certguard_probe_sigalgs, id);
}


static int
ngx_certguard_probe_set_groups(SSL *ssl, const char *list)
{
    return (int) SSL_set1_groups_list(ssl, list);
}


static int
ngx_certguard_probe_set_sigalgs(SSL *ssl, const char *list)
{
    return (int) SSL_set1_sigalgs_list(ssl, list);
}


void
ngx_certguard_probe_hello_id(const cg_clienthello_t *hello,
    const char *client_sni, u_char id[33])
{
    int            min, max;
    u_char        *p;
    size_t         n;
    u_char         md[EVP_MAX_MD_SIZE];
    u_char         buf[sizeof(cg_clienthello_t) + 512];

    static const unsigned  mirrored[] = {
        CG_TLS_EXT_SESSION_TICKET, CG_TLS_EXT_ENCRYPT_THEN_MAC,
        CG_TLS_EXT_EXTENDED_MASTER, CG_TLS_EXT_STATUS_REQUEST,
        CG_TLS_EXT_POST_HANDSHAKE_AUTH
    };

    p = buf;

    /* fields in a fixed order, each with its length: no two inputs alike */

#define ngx_certguard_probe_field(data, len)                                 \
    n = (len);                                                               \
    *p++ = (u_char) (n >> 8);                                                \
    *p++ = (u_char) n;                                                       \
    p = ngx_cpymem(p, data, n)

    *p++ = 1;                                   /* the layout's version */

    if (hello) {
        ngx_certguard_probe_versions(hello, &min, &max);

        *p++ = 1;
        *p++ = (u_char) (min >> 8);
        *p++ = (u_char) min;
        *p++ = (u_char) (max >> 8);
        *p++ = (u_char) max;

        ngx_certguard_probe_field(hello->sni, ngx_strlen(hello->sni));
        ngx_certguard_probe_field(hello->alpn, hello->alpn_len);
        ngx_certguard_probe_field(hello->ciphers, 2 * hello->nciphers);
        ngx_certguard_probe_field(hello->groups, 2 * hello->ngroups);
        ngx_certguard_probe_field(hello->sigalgs, 2 * hello->nsigalgs);

        for (n = 0; n < sizeof(mirrored) / sizeof(mirrored[0]); n++) {
            *p++ = (u_char) cg_clienthello_has(hello, mirrored[n]);
        }

    } else {
        *p++ = 0;                               /* the probe's defaults */
    }

    if (client_sni) {
        ngx_certguard_probe_field(client_sni, ngx_strlen(client_sni));

    } else {
        *p++ = 0xff;
    }

#undef ngx_certguard_probe_field

    if (ngx_certguard_sha256(buf, p - buf, md) != NGX_OK) {
        ngx_memzero(md, sizeof(md));
    }

    *ngx_hex_dump(id, md, 16) = '\0';
}


static void
ngx_certguard_probe_handshaked(ngx_connection_t *pc)
{
    ngx_certguard_probe_t  *probe;

    probe = pc->data;

    ngx_log_debug3(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                   "certguard: probe handshake with %V %s, chain %s",
                   &probe->addr_text,
                   pc->ssl->handshaked ? "done" : "failed",
                   probe->leaf ? "captured" : "not seen");

    /*
     * A chain captured before the handshake failed still counts: a server
     * that requires a client certificate sends its own first, and with
     * TLS 1.2 rejects the probe only after that.
     */

    ngx_certguard_probe_finish(probe, pc->ssl->handshaked
                                      ? NULL : "TLS handshake failed");
}


static void
ngx_certguard_probe_timeout(ngx_event_t *ev)
{
    ngx_certguard_probe_t  *probe;

    probe = ev->data;

    ngx_log_error(NGX_LOG_ERR, &probe->log, NGX_ETIMEDOUT,
                  "certguard probe timed out");

    ngx_certguard_probe_finish(probe, "timed out");
}


static void
ngx_certguard_probe_finish(ngx_certguard_probe_t *probe,
    const char *failure)
{
    int                 rc;
    cg_input_t          in;
    cg_result_t         res;
    ngx_connection_t   *pc;

    if (probe->timeout.timer_set) {
        ngx_del_timer(&probe->timeout);
    }

    pc = probe->peer.connection;

    if (pc) {
        if (pc->ssl) {
            ngx_certguard_probe_staple(probe, pc->ssl->connection);

            pc->ssl->no_wait_shutdown = 1;
            pc->ssl->no_send_shutdown = 1;
            (void) ngx_ssl_shutdown(pc);
        }

        ngx_close_connection(pc);
        probe->peer.connection = NULL;
    }

    if (probe->leaf) {
        rc = cg_input_handshake(&in, probe->policy, probe->trust,
                                probe->geoip, probe->leaf, probe->chain,
                                (char *) probe->name.data,
                                (char *) probe->addr_only, probe->port,
                                ngx_time());

        if (rc == CG_OK) {
            in.crls = probe->crls;
            in.ocsp = probe->ocsp;
            in.ocsp_len = probe->ocsp_len;

            /* the memory is only read here; the sighting is queued */
            in.memory = ngx_certguard_memory_handle(probe->memory);
            in.client_sni = probe->client_sni;
            in.intermediates = probe->intermediates;
            in.verify_memo = ngx_certguard_memo();
            in.certs = ngx_certguard_certs();
            rc = cg_evaluate(&in, &res);
            ngx_certguard_certs_account();
        }

        if (rc == CG_OK) {
            ngx_certguard_memory_queue(probe->memory, &in, &res);
            ngx_certguard_capture_post(probe->capture, &probe->log,
                                       probe->leaf, probe->chain, &res,
                                       (char *) probe->addr_only,
                                       probe->port, NULL);
        }

        if (rc == CG_OK) {
            failure = NULL;

            ngx_log_debug3(NGX_LOG_DEBUG_STREAM, &probe->log, 0,
                           "certguard: probe verdict %s, score %d, for %V",
                           cg_verdict_name(res.verdict), res.score,
                           &probe->addr_text);

        } else {
            ngx_log_error(NGX_LOG_ERR, &probe->log, 0,
                          "certguard: evaluation failed: %s",
                          cg_strerror(rc));
            failure = ngx_certguard_probe_eval_failed;
        }

        if (failure == NULL) {
            (void) ngx_certguard_cache_put(probe->cache, &probe->key, &res);
            probe->claimed = 0;

            /* the destination is known to show a blocked certificate */

            if (res.verdict == CG_BLOCK && probe->mark.len) {
                (void) ngx_certguard_cache_put(probe->cache, &probe->mark,
                                               &res);
            }
        }

    } else if (failure == NULL) {
        failure = "no certificate";
    }

    if (failure) {
        ngx_log_error(NGX_LOG_WARN, &probe->log, 0,
                      "certguard probe failed: %s", failure);
    }

    if (probe->claimed) {
        ngx_certguard_cache_release(probe->cache, &probe->key);
        probe->claimed = 0;
    }

    ngx_certguard_metrics_probe(failure == NULL ? NGX_CERTGUARD_PROBE_OK
                                : ngx_strcmp(failure, "timed out") == 0
                                ? NGX_CERTGUARD_PROBE_TIMEOUT
                                : NGX_CERTGUARD_PROBE_ERROR,
                                ngx_current_msec - probe->started);

    ngx_certguard_probe_notify(probe, failure ? NULL : &res, failure);
}


/* Every waiter gets the result, then the probe is gone. */

static void
ngx_certguard_probe_notify(ngx_certguard_probe_t *probe, cg_result_t *res,
    const char *failure)
{
    ngx_queue_t                   *q;
    ngx_certguard_probe_waiter_t  *w;

    if (probe->timeout.timer_set) {
        ngx_del_timer(&probe->timeout);
    }

    if (probe->poll.timer_set) {
        ngx_del_timer(&probe->poll);
    }

    while (!ngx_queue_empty(&probe->waiters)) {
        q = ngx_queue_head(&probe->waiters);
        ngx_queue_remove(q);

        w = ngx_queue_data(q, ngx_certguard_probe_waiter_t, queue);
        w->probe = NULL;

        w->handler(w, res, failure);
    }

    ngx_queue_remove(&probe->queue);

    if (probe->done) {
        probe->done(probe->done_data);
    }

    if (probe->chain) {
        sk_X509_pop_free(probe->chain, X509_free);
    }

    if (probe->leaf) {
        X509_free(probe->leaf);
    }

    ngx_destroy_pool(probe->pool);
}


/*
 * Installed as the probes' certificate verification: keeps the chain the
 * destination sent and accepts it, so that the handshake goes as far as
 * the destination lets it; the engine, not OpenSSL, judges the chain.
 */

static int
ngx_certguard_probe_verify(X509_STORE_CTX *x509, void *arg)
{
    SSL                    *ssl;
    X509                   *leaf;
    STACK_OF(X509)         *chain;
    ngx_connection_t       *pc;
    ngx_certguard_probe_t  *probe;

    ssl = X509_STORE_CTX_get_ex_data(x509,
                                     SSL_get_ex_data_X509_STORE_CTX_idx());
    if (ssl == NULL) {
        return 1;
    }

    pc = ngx_ssl_get_connection(ssl);
    if (pc == NULL || pc->data == NULL) {
        return 1;
    }

    probe = pc->data;

    if (probe->leaf) {
        return 1;
    }

    leaf = X509_STORE_CTX_get0_cert(x509);
    chain = X509_STORE_CTX_get0_untrusted(x509);

    if (leaf == NULL) {
        return 1;
    }

    X509_up_ref(leaf);
    probe->leaf = leaf;

    if (chain) {
        probe->chain = X509_chain_up_ref(chain);
    }

    return 1;
}


/* Over TLS 1.2 the CertificateStatus message follows the certificates:
 * the staple is taken once the handshake is over (or failed). */

static void
ngx_certguard_probe_staple(ngx_certguard_probe_t *probe, SSL *ssl)
{
    long            len;
    unsigned char  *p;

    if (probe->ocsp || probe->leaf == NULL) {
        return;
    }

    len = SSL_get_tlsext_status_ocsp_resp(ssl, &p);
    if (len <= 0 || p == NULL) {
        return;
    }

    probe->ocsp = ngx_pnalloc(probe->pool, (size_t) len);
    if (probe->ocsp == NULL) {
        return;
    }

    ngx_memcpy(probe->ocsp, p, (size_t) len);
    probe->ocsp_len = (size_t) len;
}


static u_char *
ngx_certguard_probe_log_error(ngx_log_t *log, u_char *buf, size_t len)
{
    ngx_certguard_probe_t  *probe;

    probe = log->data;

    return ngx_snprintf(buf, len, ", certguard probe of \"%V\" at %V",
                        &probe->name, &probe->addr_text);
}
