/*
 * cg_serverhello_chain(): the first flight of an OpenSSL server (TLS 1.2
 * with its chain in the clear, TLS 1.3 with it encrypted), every prefix,
 * records split, alerts, a resumed session, and corruptions.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cg_serverhello.h"
#include "tap.h"


static EVP_PKEY  *key;
static X509      *cert;
static SSL_CTX   *sctx;             /* one, so that sessions resume */


static void
make_cert(void)
{
    X509_NAME  *name;

    key = EVP_EC_gen("P-256");
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *) "flight.test", -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);

    if (key == NULL || X509_sign(cert, key, EVP_sha256()) == 0) {
        printf("Bail out! no test certificate\n");
        exit(1);
    }
}


/*
 * The server's answer to an OpenSSL client's ClientHello, as it would go
 * on the wire; with session set, the client offers it (and gets it back
 * in *session afterwards when NULL was given).
 */

static size_t
make_flight(int version, SSL_SESSION **session, unsigned char *out,
    size_t len)
{
    int       n, i;
    SSL      *c, *s;
    BIO      *c_in, *c_out, *s_in, *s_out;
    SSL_CTX  *cctx;
    char      buf[16384];

    cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(cctx, version);
    SSL_CTX_set_max_proto_version(cctx, version);

    c = SSL_new(cctx);
    s = SSL_new(sctx);
    c_in = BIO_new(BIO_s_mem());
    c_out = BIO_new(BIO_s_mem());
    s_in = BIO_new(BIO_s_mem());
    s_out = BIO_new(BIO_s_mem());
    SSL_set_bio(c, c_in, c_out);
    SSL_set_bio(s, s_in, s_out);
    SSL_set_tlsext_host_name(c, "flight.test");

    if (session && *session) {
        SSL_set_session(c, *session);
    }

    SSL_connect(c);
    n = BIO_read(c_out, buf, sizeof(buf));
    BIO_write(s_in, buf, n);
    SSL_accept(s);

    n = BIO_read(s_out, out, (int) len);

    if (session && *session == NULL) {

        /* the rest of the handshake, for a session to resume */

        BIO_write(c_in, out, n);
        for (i = 0; i < 4; i++) {
            SSL_connect(c);
            while (BIO_ctrl_pending(c_out)) {
                int  m = BIO_read(c_out, buf, sizeof(buf));
                BIO_write(s_in, buf, m);
            }
            SSL_accept(s);
            while (BIO_ctrl_pending(s_out)) {
                int  m = BIO_read(s_out, buf, sizeof(buf));
                BIO_write(c_in, buf, m);
            }
        }
        SSL_read(c, buf, 1);
        *session = SSL_get1_session(c);

        /* a session ended without a shutdown is not resumed */
        SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    }

    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cctx);

    return n > 0 ? (size_t) n : 0;
}


/* Every handshake record re-cut into records of at most "size" bytes. */

static size_t
recut(const unsigned char *in, size_t len, size_t size, unsigned char *out)
{
    size_t  pos, rlen, o, off, k;

    pos = 0;
    o = 0;

    while (len - pos >= 5) {
        rlen = ((size_t) in[pos + 3] << 8) | in[pos + 4];

        for (off = 0; off < rlen; off += k) {
            k = rlen - off < size ? rlen - off : size;
            memcpy(out + o, in + pos, 3);
            out[o + 3] = (unsigned char) (k >> 8);
            out[o + 4] = (unsigned char) k;
            memcpy(out + o + 5, in + pos + 5 + off, k);
            o += 5 + k;
        }

        pos += 5 + rlen;
    }

    return o;
}


static int
same_leaf(STACK_OF(X509) *chain)
{
    return chain && sk_X509_num(chain) >= 1
           && X509_cmp(sk_X509_value(chain, 0), cert) == 0;
}


/* cg_serverhello_chain_known()'s callback: what it was shown, and its
 * answer */
typedef struct {
    int             answer;
    unsigned        calls;
    int             has_leaf;           /* the message holds the leaf's DER */
} known_t;


static int
known(const unsigned char *msg, size_t len, void *data)
{
    int             n;
    size_t          i;
    known_t        *k = data;
    unsigned char  *der;

    k->calls++;

    der = NULL;
    n = i2d_X509(cert, &der);
    k->has_leaf = 0;

    for (i = 0; n > 0 && i + (size_t) n <= len && !k->has_leaf; i++) {
        k->has_leaf = (memcmp(msg + i, der, (size_t) n) == 0);
    }

    OPENSSL_free(der);

    return k->answer;
}


int
main(void)
{
    int              rc, all_again, ok_split, no_crash;
    size_t           n, m, i;
    unsigned         version;
    SSL_SESSION     *session;
    STACK_OF(X509)  *chain;
    unsigned char    flight[16384], copy[16384], cut[32768];

    make_cert();

    sctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(sctx, cert);
    SSL_CTX_use_PrivateKey(sctx, key);

    /* TLS 1.2: the certificate in the clear */

    n = make_flight(TLS1_2_VERSION, NULL, flight, sizeof(flight));
    ok(n > 100, "OpenSSL answered with a TLS 1.2 flight (%zu bytes)", n);

    rc = cg_serverhello_chain(flight, n, &version, &chain);
    is_int(rc, CG_OK, "TLS 1.2 flight: the chain is read");
    is_int(version, 0x0303, "TLS 1.2 flight: version 0x0303");
    ok(same_leaf(chain), "TLS 1.2 flight: the server's certificate");
    sk_X509_pop_free(chain, X509_free);

    /* a Certificate message the caller knows is not parsed */

    {
        known_t  k = { 0, 0, 0 };

        rc = cg_serverhello_chain_known(flight, n, &version, &chain, known,
                                        &k);
        ok(rc == CG_OK && same_leaf(chain), "not known: the chain is read");
        ok(k.calls == 1 && k.has_leaf, "known() is shown the Certificate "
           "message, once");
        sk_X509_pop_free(chain, X509_free);

        k.answer = 1;
        k.calls = 0;
        rc = cg_serverhello_chain_known(flight, n, &version, &chain, known,
                                        &k);
        ok(rc == CG_OK && chain == NULL && k.calls == 1,
           "known: CG_OK, nothing parsed");

        /* the leaf's DER with its first byte (SEQUENCE) changed */

        memcpy(copy, flight, n);
        {
            int             dn;
            unsigned char  *der = NULL;

            dn = i2d_X509(cert, &der);
            for (i = 0; dn > 0 && i + (size_t) dn <= n; i++) {
                if (memcmp(copy + i, der, (size_t) dn) == 0) {
                    copy[i] = 0x31;
                    break;
                }
            }
            OPENSSL_free(der);
        }
        k.answer = 0;
        k.calls = 0;
        rc = cg_serverhello_chain_known(copy, n, &version, &chain, known, &k);
        ok(rc == CG_ERR_INPUT && k.calls == 1, "a damaged certificate "
           "still fails when not known");
    }

    all_again = 1;
    for (i = 0; i < n && all_again; i++) {
        rc = cg_serverhello_chain(flight, i, &version, &chain);
        if (rc == CG_OK) {
            sk_X509_pop_free(chain, X509_free);
            break;                      /* ServerKeyExchange and on */
        }
        if (rc != CG_SERVERHELLO_AGAIN || chain != NULL) {
            all_again = 0;
            printf("# prefix %zu gave %d\n", i, rc);
        }
    }
    ok(all_again, "every prefix before the Certificate's end asks for more");

    ok_split = 1;
    for (m = 16; m < 1200; m += 97) {
        size_t  k = recut(flight, n, m, cut);

        rc = cg_serverhello_chain(cut, k, &version, &chain);
        ok_split &= (rc == CG_OK && same_leaf(chain));
        sk_X509_pop_free(chain, X509_free);
    }
    ok(ok_split, "records of every size are reassembled");

    m = recut(flight, n, 1, cut);
    rc = cg_serverhello_chain(cut, m, &version, &chain);
    is_int(rc, CG_ERR_INPUT, "one-byte records: more than the records kept");

    /* a warning alert first goes on, a fatal one ends it */

    m = recut(flight, n, 64, cut);
    memcpy(copy, cut, 5 + 64);
    memcpy(copy + 69, "\x15\x03\x03\x00\x02\x01\x5a", 7);
    memcpy(copy + 76, cut + 69, m - 69);
    rc = cg_serverhello_chain(copy, m + 7, &version, &chain);
    ok(rc == CG_OK && same_leaf(chain), "a warning alert in between is "
       "skipped");
    sk_X509_pop_free(chain, X509_free);

    memcpy(copy + 69, "\x15\x03\x03\x00\x02\x02\x28", 7);
    rc = cg_serverhello_chain(copy, m + 7, &version, &chain);
    is_int(rc, CG_SERVERHELLO_NO_CERT, "a fatal alert: no certificate");

    /* TLS 1.3: encrypted */

    n = make_flight(TLS1_3_VERSION, NULL, flight, sizeof(flight));
    rc = cg_serverhello_chain(flight, n, &version, &chain);
    is_int(rc, CG_SERVERHELLO_ENCRYPTED, "TLS 1.3 flight: encrypted");
    is_int(version, 0x0304, "TLS 1.3 flight: version 0x0304");
    ok(chain == NULL, "TLS 1.3 flight: no chain");

    {
        known_t  k = { 1, 0, 0 };

        rc = cg_serverhello_chain_known(flight, n, &version, &chain, known,
                                        &k);
        ok(rc == CG_SERVERHELLO_ENCRYPTED && k.calls == 0,
           "TLS 1.3 flight: known() is not asked");
    }

    /* a resumed TLS 1.2 session: ServerHello, then ChangeCipherSpec */

    session = NULL;
    (void) make_flight(TLS1_2_VERSION, &session, flight, sizeof(flight));
    ok(session != NULL, "a TLS 1.2 session to resume");
    n = make_flight(TLS1_2_VERSION, &session, flight, sizeof(flight));
    rc = cg_serverhello_chain(flight, n, &version, &chain);
    is_int(rc, CG_SERVERHELLO_NO_CERT, "a resumed session: no certificate");
    SSL_SESSION_free(session);

    /* not a server's flight */

    rc = cg_serverhello_chain((const unsigned char *) "HTTP/1.1 200 OK\r\n",
                              17, &version, &chain);
    is_int(rc, CG_ERR_INPUT, "plain text fails");
    rc = cg_serverhello_chain((const unsigned char *) "", 0, &version,
                              &chain);
    is_int(rc, CG_SERVERHELLO_AGAIN, "no bytes yet asks for more");

    n = make_flight(TLS1_2_VERSION, NULL, flight, sizeof(flight));
    memcpy(copy, flight, n);
    copy[5] = 1;                                    /* a ClientHello */
    rc = cg_serverhello_chain(copy, n, &version, &chain);
    is_int(rc, CG_ERR_INPUT, "another message than a ServerHello fails");

    memcpy(copy, flight, n);
    copy[0] = 0x17;                                 /* application data */
    rc = cg_serverhello_chain(copy, n, &version, &chain);
    is_int(rc, CG_ERR_INPUT, "application data first fails");

    /* every byte set to 0x00 and 0xff: a status, never a crash */

    no_crash = 1;
    for (i = 0; i < n; i++) {
        int  v;

        for (v = 0; v < 2; v++) {
            memcpy(copy, flight, n);
            copy[i] = v ? 0xff : 0x00;
            rc = cg_serverhello_chain(copy, n, &version, &chain);
            if (rc == CG_OK) {
                no_crash &= (chain != NULL);
                sk_X509_pop_free(chain, X509_free);
            } else if (chain != NULL) {
                no_crash = 0;
            }
        }
    }
    ok(no_crash, "single-byte corruptions give a status (%zu bytes)", n);

    SSL_CTX_free(sctx);
    X509_free(cert);
    EVP_PKEY_free(key);

    return done_testing();
}
