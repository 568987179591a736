/*
 * The small public functions the glue and the CLI use instead of engine
 * internals: the input for a handshake, failure results, action names, the
 * signal list, UTF-8 decoding, the version line and the pin lines.  Only
 * certguard.h of the engine is included, as for any caller (OpenSSL too,
 * to compute a pin by hand); chains and the policy are the repository's
 * own files (the tests run from its root).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "certguard.h"
#include "tap.h"


#define NOW         1767225600      /* 2026-01-01T00:00:00Z */

static char  buf[8192];


static STACK_OF(X509) *
load_chain(const char *path)
{
    FILE            *f;
    size_t           n;
    cg_error_t       err;
    STACK_OF(X509)  *chain;
    static unsigned char  data[65536];

    f = fopen(path, "rb");
    if (f == NULL) {
        printf("Bail out! cannot open %s\n", path);
        exit(1);
    }

    n = fread(data, 1, sizeof(data), f);
    fclose(f);

    memset(&err, 0, sizeof(err));
    chain = NULL;

    if (cg_chain_parse(data, n, &chain, &err) != CG_OK) {
        printf("Bail out! %s: %s\n", path, err.msg);
        exit(1);
    }

    return chain;
}


static void
test_action_name(void)
{
    is_str(cg_action_name(CG_ALLOW, 0), "allowed", "action: allow");
    is_str(cg_action_name(CG_TAG, 0), "tagged", "action: tag");
    is_str(cg_action_name(CG_BLOCK, 0), "blocked", "action: block");
    is_str(cg_action_name(CG_ALLOW, 1), "allowed",
           "action: allow in monitor mode");
    is_str(cg_action_name(CG_TAG, 1), "tagged", "action: tag in monitor mode");
    is_str(cg_action_name(CG_BLOCK, 1), "would-block",
           "action: block in monitor mode is would-block");
    is_str(cg_action_name(CG_BLOCK, 2), "would-block",
           "action: any non-zero monitor");
    is_str(cg_action_name((cg_verdict_t) 9, 0), "unknown",
           "action: unknown verdict");
}


static void
test_signal_info(void)
{
    unsigned          i, n, good, self_signed;
    cg_signal_info_t  info;

    n = cg_signal_count();
    ok(n >= 20 && n <= 64, "signals: %u built-in signals", n);

    good = 1;
    self_signed = 0;

    for (i = 0; i < n; i++) {
        memset(&info, 0, sizeof(info));

        if (cg_signal_info(i, &info) != CG_OK || info.id == NULL
            || info.id[0] == '\0' || info.doc == NULL
            || info.weight < 0 || info.weight > 1000)
        {
            printf("# signal %u: bad info\n", i);
            good = 0;
            continue;
        }

        if (strcmp(info.id, "self_signed") == 0) {
            self_signed = 1;
            is_int(info.weight, 50, "signals: self_signed weighs 50");
            ok(strstr(info.doc, "own key") != NULL,
               "signals: self_signed doc line");
        }
    }

    ok(good, "signals: every index has an id, a doc line and a weight");
    ok(self_signed, "signals: self_signed is listed");

    memset(&info, 0, sizeof(info));
    is_int(cg_signal_info(n, &info), CG_ERR_ARG,
           "signals: index past the last is CG_ERR_ARG");
    ok(info.id == NULL, "signals: info untouched past the last");
    is_int(cg_signal_info(0, NULL), CG_ERR_ARG,
           "signals: NULL info is CG_ERR_ARG");
}


static void
test_utf8_decode(void)
{
    uint32_t  cp;

    static const struct {
        const char  *bytes;
        size_t       n;
        size_t       len;
        uint32_t     cp;
        const char  *what;
    } cases[] = {
        { "A", 1, 1, 0x41, "ASCII" },
        { "\x7f", 1, 1, 0x7f, "DEL is one byte (callers escape it)" },
        { "\xc3\xa9", 2, 2, 0xe9, "two bytes" },
        { "\xe2\x82\xac", 3, 3, 0x20ac, "three bytes" },
        { "\xf0\x9f\x94\x92", 4, 4, 0x1f512, "four bytes" },
        { "\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff, "U+10FFFF" },
        { "\xc0\x80", 2, 0, 0, "overlong two bytes" },
        { "\xc1\xbf", 2, 0, 0, "overlong C1" },
        { "\xe0\x80\x80", 3, 0, 0, "overlong three bytes" },
        { "\xf0\x80\x80\x80", 4, 0, 0, "overlong four bytes" },
        { "\xed\xa0\x80", 3, 0, 0, "surrogate" },
        { "\xf4\x90\x80\x80", 4, 0, 0, "above U+10FFFF" },
        { "\xf5\x80\x80\x80", 4, 0, 0, "F5 lead byte" },
        { "\x80", 1, 0, 0, "lone continuation byte" },
        { "\xe2\x82\xac", 2, 0, 0, "cut by n" },
        { "\xe2\x28\xac", 3, 0, 0, "bad continuation" },
        { "A", 0, 0, 0, "n 0" },
    };
    unsigned  i;
    size_t    len;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cp = 0xdeadbeef;
        len = cg_utf8_decode((const unsigned char *) cases[i].bytes,
                             cases[i].n, &cp);

        if (cases[i].len) {
            ok(len == cases[i].len && cp == cases[i].cp, "utf8: %s",
               cases[i].what);
        } else {
            ok(len == 0, "utf8: %s refused", cases[i].what);
        }
    }
}


static void
test_version(void)
{
    size_t  n, m;
    char    small[12];

    n = cg_format_version(buf, sizeof(buf));
    is_int(n, strlen(buf), "version: returns the length written");
    ok(strncmp(buf, "certguard " CG_VERSION " (",
               strlen("certguard " CG_VERSION " (")) == 0,
       "version: starts with certguard " CG_VERSION);
    ok(strstr(buf, "OpenSSL") != NULL && strstr(buf, ", PCRE2 ") != NULL
       && strstr(buf, ", libmaxminddb ") != NULL && buf[n - 1] == ')',
       "version: names OpenSSL, PCRE2 and libmaxminddb");
    ok(strchr(buf, '\n') == NULL, "version: one line, no newline");

    memset(small, 'x', sizeof(small));
    m = cg_format_version(small, sizeof(small));
    ok(m == n && small[sizeof(small) - 1] == '\0'
       && strncmp(small, buf, sizeof(small) - 1) == 0,
       "version: truncated like snprintf");
}


static void
test_input_handshake(const cg_policy_t *p)
{
    int              rc;
    cg_input_t       in, hand;
    cg_result_t     *a, *b;
    STACK_OF(X509)  *chain, *empty;

    chain = load_chain("t/fuzz/corpus/chain/chain-ec.pem");
    ok(sk_X509_num(chain) == 2, "input: the test chain has two certificates");

    memset(&in, 0xa5, sizeof(in));
    rc = cg_input_handshake(&in, p, NULL, NULL, NULL, chain, "", "", 0, NOW);
    is_int(rc, CG_OK, "input: chain without leaf is CG_OK");
    ok(in.leaf == sk_X509_value(chain, 0) && in.chain == chain,
       "input: leaf NULL takes the chain's first certificate");
    ok(in.policy == p && in.trust == NULL && in.geoip == NULL,
       "input: the configuration's objects");
    ok(in.name == NULL && in.dst_addr == NULL && in.client_sni == NULL,
       "input: empty name and destination are not known; no client SNI");
    ok(in.dst_port == 0 && in.now == NOW, "input: port and time");

    rc = cg_input_handshake(&in, p, NULL, NULL, sk_X509_value(chain, 1),
                            chain, "example.com", "192.0.2.7", 8443, 0);
    ok(rc == CG_OK && in.leaf == sk_X509_value(chain, 1),
       "input: a leaf given is kept");
    ok(in.name != NULL && strcmp(in.name, "example.com") == 0
       && in.dst_addr != NULL && strcmp(in.dst_addr, "192.0.2.7") == 0
       && in.dst_port == 8443 && in.now == 0,
       "input: name, destination, port, now 0 (the clock)");

    rc = cg_input_handshake(&in, p, NULL, NULL, sk_X509_value(chain, 0),
                            NULL, NULL, NULL, 0, NOW);
    ok(rc == CG_OK && in.chain == NULL && in.leaf != NULL,
       "input: a lone leaf");

    is_int(cg_input_handshake(&in, NULL, NULL, NULL, NULL, chain, NULL,
                              NULL, 0, NOW),
           CG_ERR_ARG, "input: no policy is CG_ERR_ARG");
    is_int(cg_input_handshake(&in, p, NULL, NULL, NULL, NULL, NULL, NULL, 0,
                              NOW),
           CG_ERR_ARG, "input: no certificate is CG_ERR_ARG");
    ok(in.leaf == NULL && in.chain == NULL,
       "input: and the input is cleared");

    empty = sk_X509_new_null();
    is_int(cg_input_handshake(&in, p, NULL, NULL, NULL, empty, NULL, NULL,
                              0, NOW),
           CG_ERR_ARG, "input: an empty chain is CG_ERR_ARG");
    sk_X509_free(empty);

    is_int(cg_input_handshake(NULL, p, NULL, NULL, NULL, chain, NULL, NULL,
                              0, NOW),
           CG_ERR_ARG, "input: NULL input is CG_ERR_ARG");

    /* what it builds scores as the input built by hand does */

    a = calloc(1, sizeof(cg_result_t));
    b = calloc(1, sizeof(cg_result_t));

    rc = cg_input_handshake(&in, p, NULL, NULL, NULL, chain, "example.com",
                            "", 443, NOW);
    in.client_sni = "other.example";

    memset(&hand, 0, sizeof(hand));
    hand.policy = p;
    hand.leaf = sk_X509_value(chain, 0);
    hand.chain = chain;
    hand.name = "example.com";
    hand.client_sni = "other.example";
    hand.dst_port = 443;
    hand.now = NOW;

    ok(rc == CG_OK && cg_evaluate(&in, a) == CG_OK
       && cg_evaluate(&hand, b) == CG_OK,
       "input: both inputs evaluate");
    ok(memcmp(a, b, sizeof(cg_result_t)) == 0,
       "input: same result as the input built by hand");
    is_str(a->name, "example.com", "input: the result names the name");
    cg_format_signal_ids(a, buf, sizeof(buf));
    ok(strstr(buf, "sni_mismatch") != NULL,
       "input: client SNI set after it counts");

    free(a);
    free(b);
    sk_X509_pop_free(chain, X509_free);
}


static void
test_result_failure(void)
{
    int          rc;
    char         name[300];
    cg_event_t   ev;
    cg_result_t  r;

    memset(&r, 0x5a, sizeof(r));
    rc = cg_result_failure(&r, CG_FAILURE_PROBE, CG_BLOCK, "bad.example",
                           "timed out");
    is_int(rc, CG_OK, "failure: probe failure is CG_OK");
    ok(r.verdict == CG_BLOCK && r.score == 0 && r.nhits == 1
       && r.hits_dropped == 0, "failure: block, score 0, one hit");
    is_str(r.hits[0].id, "probe_failed", "failure: probe_failed");
    is_str(r.hits[0].detail, "timed out", "failure: detail");
    ok(r.hits[0].weight == 0 && !r.hits[0].exempt,
       "failure: the hit weighs 0 and is not exempt");
    is_str(r.name, "bad.example", "failure: name");
    ok(r.subject[0] == '\0' && r.sha256[0] == '\0' && r.policy[0] == '\0'
       && r.chain_len == 0 && !r.trusted && r.not_after == 0,
       "failure: nothing else is set");

    cg_format_signal_ids(&r, buf, sizeof(buf));
    is_str(buf, "probe_failed", "failure: signal ids");

    memset(&ev, 0, sizeof(ev));
    ev.dst_addr = "192.0.2.7";
    ev.dst_port = 443;
    ev.rt_ms = (int64_t) NOW * 1000;
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(strstr(buf, "|probe-failed|TLS certificate probe failed|5| ") != NULL
       && strstr(buf, " act=blocked ") != NULL
       && strstr(buf, " reason=probe_failed ") != NULL
       && strstr(buf, " msg=score 0: probe_failed: timed out ") != NULL
       && strstr(buf, "dhost=bad.example") != NULL
       && strstr(buf, "cs6") == NULL,
       "failure: CEF record of a probe failure");

    ev.monitor = 1;
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(strstr(buf, "|probe-failed|") != NULL
       && strstr(buf, " act=would-block ") != NULL,
       "failure: monitor mode would block, still a probe failure");

    rc = cg_result_failure(&r, CG_FAILURE_PROBE, CG_ALLOW, NULL, NULL);
    ok(rc == CG_OK && r.verdict == CG_ALLOW && r.name[0] == '\0'
       && r.hits[0].detail[0] == '\0',
       "failure: fail open, no name, no detail");

    rc = cg_result_failure(&r, CG_FAILURE_ENGINE, CG_BLOCK, "x.example",
                           NULL);
    ok(rc == CG_OK && r.verdict == CG_BLOCK && r.nhits == 1
       && strcmp(r.hits[0].id, "engine_error") == 0
       && r.hits[0].detail[0] == '\0' && strcmp(r.name, "x.example") == 0,
       "failure: engine_error");
    cg_format_json(&r, buf, sizeof(buf));
    ok(strstr(buf, "{\"verdict\":\"block\",\"score\":0,\"signals\":"
                   "[{\"id\":\"engine_error\",\"weight\":0,\"detail\":\"\"}]")
       != NULL, "failure: JSON of an engine error");

    /* the name and detail follow the text rules of evaluated results */

    rc = cg_result_failure(&r, CG_FAILURE_PROBE, CG_BLOCK, "a\nb\xff",
                           "x\x01y");
    ok(rc == CG_OK && strcmp(r.name, "a?b?") == 0
       && strcmp(r.hits[0].detail, "x?y") == 0,
       "failure: control characters and invalid UTF-8 become ?");

    memset(name, 'n', sizeof(name));
    name[sizeof(name) - 1] = '\0';
    rc = cg_result_failure(&r, CG_FAILURE_PROBE, CG_BLOCK, name, name);
    ok(rc == CG_OK && strlen(r.name) == CG_NAME_MAX - 1
       && strlen(r.hits[0].detail) == CG_DETAIL_MAX - 1,
       "failure: long name and detail are truncated");

    rc = cg_result_failure(&r, (cg_failure_t) 7, CG_ALLOW, "x", "y");
    ok(rc == CG_ERR_ARG && r.verdict == CG_BLOCK && r.nhits == 0,
       "failure: unknown failure is CG_ERR_ARG and an empty block");
    rc = cg_result_failure(&r, CG_FAILURE_PROBE, (cg_verdict_t) 7, "x",
                           "y");
    ok(rc == CG_ERR_ARG && r.verdict == CG_BLOCK && r.nhits == 0,
       "failure: unknown verdict is CG_ERR_ARG and an empty block");
    is_int(cg_result_failure(NULL, CG_FAILURE_PROBE, CG_BLOCK, NULL, NULL),
           CG_ERR_ARG, "failure: NULL result is CG_ERR_ARG");
}


/* The pin lines: issuer_spki is the SHA-256 of the DER SPKI, computed
 * here without the engine; snprintf-like lengths. */
static void
test_format_pin(void)
{
    int              n;
    char             want[128];
    size_t           len, i;
    unsigned int     mdlen;
    unsigned char   *der, md[32];
    STACK_OF(X509)  *chain;
    X509            *ca;

    chain = load_chain("t/fuzz/corpus/chain/chain-ec.pem");
    ca = sk_X509_value(chain, 1);

    der = NULL;
    n = i2d_PUBKEY(X509_get0_pubkey(ca), &der);
    ok(n > 0 && EVP_Digest(der, (size_t) n, md, &mdlen, EVP_sha256(), NULL),
       "pin: SPKI digest by hand");
    OPENSSL_free(der);

    strcpy(want, "issuer_spki ");
    for (i = 0; i < 32; i++) {
        sprintf(want + 12 + 2 * i, "%02x", md[i]);
    }
    strcat(want, ";  # ");

    len = cg_format_pin(ca, CG_PIN_SPKI, buf, sizeof(buf));
    ok(len == strlen(buf) && strncmp(buf, want, strlen(want)) == 0,
       "pin: issuer_spki line, then the subject as a comment");
    if (strncmp(buf, want, strlen(want)) != 0) {
        printf("#   got: %s\n#   want: %s...\n", buf, want);
    }
    ok(strchr(buf, '\n') == NULL, "pin: one line");

    is_int(cg_format_pin(ca, CG_PIN_SPKI, NULL, 0), len,
           "pin: the full length without a buffer");
    cg_format_pin(ca, CG_PIN_SPKI, buf, 20);
    is_int(strlen(buf), 19, "pin: truncated to the buffer, NUL-terminated");

    X509_digest(ca, EVP_sha256(), md, &mdlen);
    strcpy(want, "issuer_fingerprint ");
    for (i = 0; i < 32; i++) {
        sprintf(want + 19 + 2 * i, "%02x", md[i]);
    }
    strcat(want, ";");
    cg_format_pin(ca, CG_PIN_CERT, buf, sizeof(buf));
    ok(strncmp(buf, want, strlen(want)) == 0,
       "pin: issuer_fingerprint is the DER's SHA-256");

    is_int(cg_format_pin(NULL, CG_PIN_SPKI, buf, sizeof(buf)), 0,
           "pin: NULL certificate");
    is_int(cg_format_pin(ca, 7, buf, sizeof(buf)), 0, "pin: unknown kind");

    sk_X509_pop_free(chain, X509_free);
}


/* The pool's API: its arguments, a file of a leaf and a CA, a missing file
 * (the chain checks themselves are t/chain.t's). */
static void
test_intermediates(void)
{
    int                  rc;
    FILE                *f;
    char                 path[] = "/tmp/cg-unit-pool-XXXXXX";
    int                  fd;
    unsigned             n;
    cg_error_t           err, w;
    const char          *files[2];
    STACK_OF(X509)      *chain;
    cg_intermediates_t  *pool;

    memset(&err, 0, sizeof(err));
    pool = (cg_intermediates_t *) &err;

    is_int(cg_intermediates_load(NULL, files, 1, &err), CG_ERR_ARG,
           "pool: NULL pool is CG_ERR_ARG");
    is_int(cg_intermediates_load(&pool, NULL, 0, &err), CG_ERR_ARG,
           "pool: no file is CG_ERR_ARG");
    ok(pool == NULL, "pool: NULL on error");

    files[0] = "/nonexistent/pool.pem";
    is_int(cg_intermediates_load(&pool, files, 1, &err), CG_ERR_IO,
           "pool: a missing file is CG_ERR_IO (%s)", err.msg);

    chain = load_chain("t/fuzz/corpus/chain/chain-ec.pem");

    fd = mkstemp(path);
    f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        printf("Bail out! %s: cannot create\n", path);
        exit(1);
    }

    /* the leaf, then its CA */
    PEM_write_X509(f, sk_X509_value(chain, 0));
    PEM_write_X509(f, sk_X509_value(chain, 1));
    fclose(f);

    files[0] = path;
    memset(&err, 0, sizeof(err));
    rc = cg_intermediates_load(&pool, files, 1, &err);
    ok(rc == CG_OK && cg_intermediates_count(pool) == 1,
       "pool: the CA is kept, the leaf not (%s)", err.msg);
    ok(cg_intermediates_warning(pool, 0, &w) == CG_OK
       && strstr(w.msg, "certificate 1") && strstr(w.msg, "not a CA"),
       "pool: a warning names the leaf (%s)", w.msg);
    is_int(cg_intermediates_warning(pool, 1, &w), CG_ERR_ARG,
           "pool: one warning only");

    n = cg_intermediates_count(NULL);
    is_int((int) n, 0, "pool: no pool counts 0");

    cg_intermediates_free(pool);
    cg_intermediates_free(NULL);

    unlink(path);
    sk_X509_pop_free(chain, X509_free);
}


int
main(void)
{
    cg_error_t    err;
    cg_policy_t  *p;

    test_action_name();
    test_signal_info();
    test_utf8_decode();
    test_version();
    test_format_pin();
    test_intermediates();

    memset(&err, 0, sizeof(err));
    if (cg_policy_load(&p, "policies/default.policy", &err) != CG_OK) {
        printf("Bail out! policies/default.policy: %s\n", err.msg);
        return 1;
    }

    test_input_handshake(p);
    test_result_failure();

    cg_policy_free(p);

    return done_testing();
}
