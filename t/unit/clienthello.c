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


/* A ClientHello of an OpenSSL client configured as a test asks. */

typedef struct {
    const unsigned char  *alpn;
    unsigned              alpn_len;
    const char           *groups;
    const char           *ciphers;          /* TLS 1.2 */
    const char           *suites;           /* TLS 1.3 */
    const char           *sigalgs;
    int                   min_version;
    int                   no_ticket;
} hello_opts_t;


static size_t
make_hello_opts(const char *sni, const hello_opts_t *o, unsigned char *out,
    size_t len)
{
    SSL      *ssl;
    BIO      *rbio, *wbio;
    SSL_CTX  *ctx;
    int       n;

    ctx = SSL_CTX_new(TLS_client_method());
    ssl = SSL_new(ctx);
    rbio = BIO_new(BIO_s_mem());
    wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rbio, wbio);

    if (sni) {
        SSL_set_tlsext_host_name(ssl, sni);
    }

    if (o->alpn && SSL_set_alpn_protos(ssl, o->alpn, o->alpn_len) != 0) {
        printf("# SSL_set_alpn_protos failed\n");
    }

    if (o->groups && SSL_set1_groups_list(ssl, o->groups) != 1) {
        printf("# SSL_set1_groups_list failed\n");
    }

    if (o->ciphers && SSL_set_cipher_list(ssl, o->ciphers) != 1) {
        printf("# SSL_set_cipher_list failed\n");
    }

    if (o->suites && SSL_set_ciphersuites(ssl, o->suites) != 1) {
        printf("# SSL_set_ciphersuites failed\n");
    }

    if (o->sigalgs && SSL_set1_sigalgs_list(ssl, o->sigalgs) != 1) {
        printf("# SSL_set1_sigalgs_list failed\n");
    }

    if (o->min_version) {
        SSL_set_min_proto_version(ssl, o->min_version);
    }

    if (o->no_ticket) {
        SSL_set_options(ssl, SSL_OP_NO_TICKET);
    }

    SSL_connect(ssl);

    n = BIO_read(wbio, out, (int) len);

    SSL_free(ssl);
    SSL_CTX_free(ctx);

    return n > 0 ? (size_t) n : 0;
}


/*
 * A ClientHello written by hand, one record: the cipher suites and the
 * extensions (type, then length-prefixed body, already encoded) given.
 */

static size_t
hand_hello(const unsigned char *suites, size_t nsuites,
    const unsigned char *exts, size_t extlen, unsigned char *out)
{
    size_t  n, body;

    n = 9;                                      /* record, message header */
    out[n++] = 3;
    out[n++] = 3;
    memset(out + n, 0x42, 32);                  /* random */
    n += 32;
    out[n++] = 0;                               /* session id */
    out[n++] = (unsigned char) (nsuites >> 8);
    out[n++] = (unsigned char) nsuites;
    memcpy(out + n, suites, nsuites);
    n += nsuites;
    out[n++] = 1;                               /* compression: null */
    out[n++] = 0;
    out[n++] = (unsigned char) (extlen >> 8);
    out[n++] = (unsigned char) extlen;
    memcpy(out + n, exts, extlen);
    n += extlen;

    body = n - 9;
    out[0] = 0x16;
    out[1] = 3;
    out[2] = 1;
    out[3] = (unsigned char) ((body + 4) >> 8);
    out[4] = (unsigned char) (body + 4);
    out[5] = 1;
    out[6] = 0;
    out[7] = (unsigned char) (body >> 8);
    out[8] = (unsigned char) body;

    return n;
}


static int
has_u16(const uint16_t *list, unsigned n, unsigned v)
{
    unsigned  i;

    for (i = 0; i < n; i++) {
        if (list[i] == v) {
            return 1;
        }
    }

    return 0;
}


/* What cg_clienthello_parse() reads besides the name. */

static void
test_parameters(void)
{
    int               rc, grease;
    size_t            n;
    unsigned          i;
    hello_opts_t      o;
    cg_clienthello_t  ch;
    unsigned char     hello[4096];

    static const unsigned char  alpn[] = "\x02h2\x08http/1.1";

    memset(&o, 0, sizeof(hello_opts_t));
    o.alpn = alpn;
    o.alpn_len = sizeof(alpn) - 1;
    o.groups = "P-384:X25519";
    o.ciphers = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256";
    o.suites = "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
    o.sigalgs = "ed25519:rsa_pss_rsae_sha256:ecdsa_secp256r1_sha256";
    o.min_version = TLS1_2_VERSION;

    n = make_hello_opts("params.example", &o, hello, sizeof(hello));
    rc = cg_clienthello_parse(hello, n, &ch);
    is_int(rc, CG_OK, "a configured ClientHello parses");
    is_str(ch.sni, "params.example", "its server name");
    is_int(ch.alpn_len, sizeof(alpn) - 1, "ALPN: the wire list's length");
    ok(memcmp(ch.alpn, alpn, sizeof(alpn) - 1) == 0,
       "ALPN: h2, http/1.1 as sent");
    is_int(ch.legacy_version, 0x0303, "legacy_version 0x0303");
    ok(ch.nversions == 2 && ch.versions[0] == 0x0304
       && ch.versions[1] == 0x0303, "supported_versions: 1.3, then 1.2");
    ok(ch.ngroups == 2 && ch.groups[0] == 24 && ch.groups[1] == 29,
       "supported_groups: secp384r1, then x25519 (%u)", ch.ngroups);
    ok(ch.nciphers >= 4 && ch.ciphers[0] == 0x1303
       && ch.ciphers[1] == 0x1301, "cipher suites: TLS 1.3 ones first");
    ok(has_u16(ch.ciphers, ch.nciphers, 0xc030)
       && has_u16(ch.ciphers, ch.nciphers, 0xc02b),
       "cipher suites: the TLS 1.2 ones too");
    ok(ch.nsigalgs == 3 && ch.sigalgs[0] == 0x0807
       && ch.sigalgs[1] == 0x0804 && ch.sigalgs[2] == 0x0403,
       "signature_algorithms in order");
    ok(cg_clienthello_has(&ch, 0) && cg_clienthello_has(&ch, 16)
       && cg_clienthello_has(&ch, 43) && cg_clienthello_has(&ch, 35),
       "extensions: server_name, ALPN, supported_versions, session_ticket");
    ok(!ch.truncated, "nothing truncated");

    o.no_ticket = 1;
    o.alpn = NULL;
    n = make_hello_opts(NULL, &o, hello, sizeof(hello));
    rc = cg_clienthello_parse(hello, n, &ch);
    ok(rc == CG_OK && ch.alpn_len == 0 && ch.sni[0] == '\0'
       && !cg_clienthello_has(&ch, 35) && !cg_clienthello_has(&ch, 0),
       "no ALPN, no SNI, no session_ticket: none read");

    /* TLS 1.2 only: no supported_versions */

    n = make_hello("old.example", TLS1_2_VERSION, hello, sizeof(hello));
    rc = cg_clienthello_parse(hello, n, &ch);
    ok(rc == CG_OK && ch.nversions == 0 && ch.legacy_version == 0x0303,
       "TLS 1.2 ClientHello: legacy_version only");

    /* GREASE values everywhere are left out */

    {
        static const unsigned char  suites[] = {
            0x3a, 0x3a, 0x13, 0x01, 0xc0, 0x2b
        };
        static const unsigned char  exts[] = {
            0x0a, 0x0a, 0x00, 0x00,                         /* GREASE */
            0x00, 0x0a, 0x00, 0x08, 0x00, 0x06,             /* groups */
                0x4a, 0x4a, 0x00, 0x1d, 0x00, 0x17,
            0x00, 0x2b, 0x00, 0x07, 0x06,                   /* versions */
                0xea, 0xea, 0x03, 0x04, 0x03, 0x03,
            0x00, 0x10, 0x00, 0x08, 0x00, 0x06,             /* ALPN */
                0x02, 0x5a, 0x5a, 0x02, 0x68, 0x32,
            0x00, 0x0d, 0x00, 0x06, 0x00, 0x04,             /* sigalgs */
                0xfa, 0xfa, 0x04, 0x03,
            0x1a, 0x1a, 0x00, 0x01, 0x00                    /* GREASE */
        };

        n = hand_hello(suites, sizeof(suites), exts, sizeof(exts), hello);
        rc = cg_clienthello_parse(hello, n, &ch);
        is_int(rc, CG_OK, "a ClientHello with GREASE parses");

        grease = 0;
        for (i = 0; i < ch.nciphers; i++) {
            grease |= cg_tls_grease(ch.ciphers[i]);
        }
        for (i = 0; i < ch.nextensions; i++) {
            grease |= cg_tls_grease(ch.extensions[i]);
        }
        ok(!grease && ch.nciphers == 2 && ch.nextensions == 4,
           "GREASE cipher suites and extensions left out");
        ok(ch.ngroups == 2 && ch.groups[0] == 29 && ch.nversions == 2
           && ch.versions[0] == 0x0304 && ch.nsigalgs == 1,
           "GREASE groups, versions and sigalgs left out");
        ok(ch.alpn_len == 3 && memcmp(ch.alpn, "\x02h2", 3) == 0,
           "a GREASE ALPN name left out");
        ok(cg_tls_grease(0x0a0a) && cg_tls_grease(0xfafa)
           && !cg_tls_grease(0x0a1a) && !cg_tls_grease(0x1301),
           "cg_tls_grease()");
    }

    /* malformed extensions the parser reads */

    {
        static const unsigned char  suites[] = { 0x13, 0x01 };
        static const unsigned char  twice[] = {
            0x00, 0x17, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00
        };
        static const unsigned char  empty_alpn[] = {
            0x00, 0x10, 0x00, 0x03, 0x00, 0x01, 0x00
        };
        static const unsigned char  odd_groups[] = {
            0x00, 0x0a, 0x00, 0x03, 0x00, 0x01, 0x1d
        };
        static const unsigned char  short_versions[] = {
            0x00, 0x2b, 0x00, 0x03, 0x04, 0x03, 0x04
        };
        static const unsigned char  unknown[] = {
            0xfe, 0x0d, 0x00, 0x02, 0xff, 0xff
        };

        n = hand_hello(suites, sizeof(suites), twice, sizeof(twice), hello);
        is_int(cg_clienthello_parse(hello, n, &ch), CG_ERR_INPUT,
               "an extension twice fails");
        n = hand_hello(suites, sizeof(suites), empty_alpn,
                       sizeof(empty_alpn), hello);
        is_int(cg_clienthello_parse(hello, n, &ch), CG_ERR_INPUT,
               "an empty ALPN name fails");
        n = hand_hello(suites, sizeof(suites), odd_groups,
                       sizeof(odd_groups), hello);
        is_int(cg_clienthello_parse(hello, n, &ch), CG_ERR_INPUT,
               "supported_groups of an odd length fails");
        n = hand_hello(suites, sizeof(suites), short_versions,
                       sizeof(short_versions), hello);
        is_int(cg_clienthello_parse(hello, n, &ch), CG_ERR_INPUT,
               "supported_versions shorter than it says fails");
        n = hand_hello(suites, sizeof(suites), unknown, sizeof(unknown),
                       hello);
        rc = cg_clienthello_parse(hello, n, &ch);
        ok(rc == CG_OK && ch.nextensions == 1 && ch.extensions[0] == 0xfe0d,
           "an unknown extension is listed, not read");
    }

    /* more cipher suites than kept */

    {
        unsigned char  suites[2 * 200];
        static const unsigned char  none[] = { 0 };

        for (i = 0; i < 200; i++) {
            suites[2 * i] = 0xc0;
            suites[2 * i + 1] = (unsigned char) i;
        }

        n = hand_hello(suites, sizeof(suites), none, 0, hello);
        rc = cg_clienthello_parse(hello, n, &ch);
        ok(rc == CG_OK && ch.nciphers == CG_CLIENTHELLO_CIPHERS
           && ch.truncated, "200 cipher suites: %u kept, truncated",
           ch.nciphers);
    }
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

    test_parameters();

    return done_testing();
}
