/*
 * cg_clienthello_sni(): ClientHellos made by OpenSSL itself (TLS 1.2 and
 * 1.3, with and without SNI), every prefix, records split in two, hostile
 * names and every single-byte corruption.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "cg_clienthello.h"
#include "tap.h"


/* The first flight of an OpenSSL client: its ClientHello records. */

static size_t
make_hello(const char *sni, int max_version, unsigned char *out, size_t len)
{
    SSL      *ssl;
    BIO      *rbio, *wbio;
    SSL_CTX  *ctx;
    int       n;

    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_max_proto_version(ctx, max_version);
    ssl = SSL_new(ctx);
    rbio = BIO_new(BIO_s_mem());
    wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rbio, wbio);

    if (sni) {
        SSL_set_tlsext_host_name(ssl, sni);
    }

    SSL_connect(ssl);

    n = BIO_read(wbio, out, (int) len);

    SSL_free(ssl);
    SSL_CTX_free(ctx);

    return n > 0 ? (size_t) n : 0;
}


/* Re-wrap one record's handshake bytes into two records split at "at". */

static size_t
split_record(const unsigned char *in, size_t len, size_t at,
    unsigned char *out)
{
    size_t  body = len - 5, second = body - at;

    memcpy(out, in, 5);
    out[3] = (unsigned char) (at >> 8);
    out[4] = (unsigned char) at;
    memcpy(out + 5, in + 5, at);

    memcpy(out + 5 + at, in, 5);
    out[5 + at + 3] = (unsigned char) (second >> 8);
    out[5 + at + 4] = (unsigned char) second;
    memcpy(out + 10 + at, in + 5 + at, second);

    return len + 5;
}


int
main(void)
{
    int            rc, all_again, no_crash, split_ok;
    char           sni[256];
    size_t         n, m, i;
    unsigned char  hello[4096], split[4096], copy[4096], *p;

    n = make_hello("www.example.com", TLS1_3_VERSION, hello, sizeof(hello));
    ok(n > 100, "OpenSSL made a TLS 1.3 ClientHello (%zu bytes)", n);

    rc = cg_clienthello_sni(hello, n, sni, sizeof(sni));
    is_int(rc, CG_OK, "TLS 1.3 ClientHello parses");
    is_str(sni, "www.example.com", "TLS 1.3 SNI read");

    all_again = 1;
    for (i = 0; i < n; i++) {
        rc = cg_clienthello_sni(hello, i, sni, sizeof(sni));
        if (rc != CG_CLIENTHELLO_AGAIN) {
            all_again = 0;
            printf("# prefix %zu gave %d\n", i, rc);
            break;
        }
    }
    ok(all_again, "every strict prefix asks for more");

    is_int(cg_clienthello_need(hello, 0), 5, "need: a record header first");
    is_int(cg_clienthello_need(hello, 7), n, "need: the whole record");
    is_int(cg_clienthello_need(hello, n - 1), n, "need: still the record");

    memcpy(copy, hello, n);
    memcpy(copy + n, "\x17\x03\x03\x00\x01x", 6);
    rc = cg_clienthello_sni(copy, n + 6, sni, sizeof(sni));
    ok(rc == CG_OK && strcmp(sni, "www.example.com") == 0,
       "bytes after the ClientHello are ignored");

    m = make_hello("legacy.example.org", TLS1_2_VERSION, hello, sizeof(hello));
    rc = cg_clienthello_sni(hello, m, sni, sizeof(sni));
    is_int(rc, CG_OK, "TLS 1.2 ClientHello parses");
    is_str(sni, "legacy.example.org", "TLS 1.2 SNI read");

    rc = cg_clienthello_sni(hello, m, sni, 10);
    is_int(rc, CG_ERR_INPUT, "a name longer than the caller's buffer fails");

    m = make_hello(NULL, TLS1_3_VERSION, hello, sizeof(hello));
    strcpy(sni, "stale");
    rc = cg_clienthello_sni(hello, m, sni, sizeof(sni));
    is_int(rc, CG_OK, "ClientHello without SNI parses");
    is_str(sni, "", "no SNI gives an empty name");

    /* the same hello as two records, split at several places */

    n = make_hello("split.example.net", TLS1_3_VERSION, hello, sizeof(hello));
    split_ok = 1;
    for (i = 1; i < n - 5; i += 37) {
        m = split_record(hello, n, i, split);
        rc = cg_clienthello_sni(split, m, sni, sizeof(sni));
        if (rc != CG_OK || strcmp(sni, "split.example.net") != 0) {
            split_ok = 0;
        }
        rc = cg_clienthello_sni(split, m - 1, sni, sizeof(sni));
        if (rc != CG_CLIENTHELLO_AGAIN) {
            split_ok = 0;
        }
    }
    ok(split_ok, "a ClientHello split over two records is reassembled");

    rc = cg_clienthello_sni((const unsigned char *) "CONNECT a:443 HTTP/1.1",
                            22, sni, sizeof(sni));
    is_int(rc, CG_ERR_INPUT, "an HTTP request is not a ClientHello");

    rc = cg_clienthello_sni((const unsigned char *) "G", 1, sni, sizeof(sni));
    is_int(rc, CG_ERR_INPUT, "plain text fails at its first byte");

    rc = cg_clienthello_sni((const unsigned char *) "", 0, sni, sizeof(sni));
    is_int(rc, CG_CLIENTHELLO_AGAIN, "no bytes yet asks for more");

    /* a ClientHello cut into one-byte records */

    m = 0;
    for (i = 5; i < n && m + 6 < sizeof(split); i++) {
        memcpy(split + m, hello, 3);
        split[m + 3] = 0;
        split[m + 4] = 1;
        split[m + 5] = hello[i];
        m += 6;
    }
    rc = cg_clienthello_sni(split, m, sni, sizeof(sni));
    is_int(rc, CG_ERR_INPUT, "more than CG_CLIENTHELLO_RECORDS records fail");
    ok(cg_clienthello_need(split, m) > m,
       "need: never less than what is there");

    memcpy(copy, hello, n);
    copy[5] = 2;                                    /* ServerHello */
    rc = cg_clienthello_sni(copy, n, sni, sizeof(sni));
    is_int(rc, CG_ERR_INPUT, "another handshake message fails");

    memcpy(copy, hello, 5);
    copy[3] = 0x50;                                 /* 20 KB record */
    copy[4] = 0x00;
    rc = cg_clienthello_sni(copy, 5, sni, sizeof(sni));
    is_int(rc, CG_ERR_INPUT, "an oversized record fails");

    memcpy(copy, hello, n);
    copy[6] = 0x7f;                                 /* 8 MB handshake */
    rc = cg_clienthello_sni(copy, n, sni, sizeof(sni));
    is_int(rc, CG_ERR_INPUT, "an oversized ClientHello fails");

    /* a control character inside the name */

    memcpy(copy, hello, n);
    p = memmem(copy, n, "split.example.net", 17);
    ok(p != NULL, "SNI bytes found in the record");
    if (p) {
        p[5] = '\n';
        rc = cg_clienthello_sni(copy, n, sni, sizeof(sni));
        is_int(rc, CG_ERR_INPUT, "a name with a newline fails");
        p[5] = '|';
        rc = cg_clienthello_sni(copy, n, sni, sizeof(sni));
        is_int(rc, CG_ERR_INPUT, "a name with a pipe fails");
    }

    /* every byte set to 0x00 and 0xff: a status, never a crash or overread */

    no_crash = 1;
    for (i = 0; i < n; i++) {
        int  v;

        for (v = 0; v < 2; v++) {
            memcpy(copy, hello, n);
            copy[i] = v ? 0xff : 0x00;
            rc = cg_clienthello_sni(copy, n, sni, sizeof(sni));
            if (rc != CG_OK && rc != CG_ERR_INPUT
                && rc != CG_CLIENTHELLO_AGAIN)
            {
                no_crash = 0;
            }
            if (rc == CG_OK && strlen(sni) >= sizeof(sni)) {
                no_crash = 0;
            }
        }
    }
    ok(no_crash, "single-byte corruptions give a status (%zu bytes)", n);

    return done_testing();
}
