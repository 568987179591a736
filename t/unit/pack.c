/*
 * cg_result_pack() and cg_result_unpack(): the compact form the verdict
 * caches keep.  Round trips of real evaluations and of a result with every
 * member at its largest give back the same struct, byte for byte, and the
 * same JSON, CEF and text; a cut-off or altered form is refused or reads
 * as a well-formed result, never past its bytes; typical results are
 * small.
 */

#include <limits.h>

#include "certguard.h"
#include "tap.h"
#include "certs.h"


static unsigned  rnd_state = 12345;


static unsigned
rnd(void)
{
    rnd_state = rnd_state * 1103515245 + 12345;

    return (rnd_state >> 16) & 0x7fff;
}


/* The records and variables print the same from both. */
static int
same_output(const cg_result_t *a, const cg_result_t *b)
{
    char        x[8192], y[8192];
    cg_event_t  ev;

    memset(&ev, 0, sizeof(cg_event_t));
    ev.src_addr = "127.0.0.1";
    ev.dst_addr = "192.0.2.7";
    ev.dst_port = 443;
    ev.request = "example.test:443";
    ev.method = "CONNECT";
    ev.rt_ms = 1767225600000LL;

    cg_format_json(a, x, sizeof(x));
    cg_format_json(b, y, sizeof(y));
    if (strcmp(x, y) != 0) {
        return 0;
    }

    cg_format_cef(a, &ev, x, sizeof(x));
    cg_format_cef(b, &ev, y, sizeof(y));
    if (strcmp(x, y) != 0) {
        return 0;
    }

    cg_format_text(a, x, sizeof(x));
    cg_format_text(b, y, sizeof(y));
    if (strcmp(x, y) != 0) {
        return 0;
    }

    cg_format_signal_ids(a, x, sizeof(x));
    cg_format_signal_ids(b, y, sizeof(y));

    return strcmp(x, y) == 0 && strcmp(a->subject, b->subject) == 0
           && strcmp(a->issuer, b->issuer) == 0
           && strcmp(a->sha256, b->sha256) == 0 && a->score == b->score
           && a->verdict == b->verdict;
}


static size_t
round_trip(const char *what, const cg_result_t *res)
{
    size_t         n, m;
    cg_result_t    back;
    unsigned char  buf[CG_PACK_MAX];

    n = cg_result_pack(res, buf, sizeof(buf));
    ok(n > 0 && n <= CG_PACK_MAX, "%s: packs into %zu bytes (of %zu)", what,
       n, sizeof(cg_result_t));

    m = cg_result_pack(res, NULL, 0);
    is_int(m, n, "%s: the length without a buffer is the same", what);

    is_int(cg_result_unpack(buf, n, &back), CG_OK, "%s: unpacks", what);
    ok(memcmp(res, &back, sizeof(cg_result_t)) == 0,
       "%s: the same struct, byte for byte", what);
    ok(same_output(res, &back), "%s: JSON, CEF, text and ids the same",
       what);

    return n;
}


/* Every member set, strings at their longest. */
static void
fill_max(cg_result_t *res, int builtin_hits)
{
    unsigned   i;
    cg_hit_t  *h;

    memset(res, 0, sizeof(cg_result_t));

    res->verdict = CG_BLOCK;
    res->score = INT_MAX;
    res->nhits = CG_MAX_HITS;
    res->hits_dropped = UINT_MAX;

    for (i = 0; i < CG_MAX_HITS; i++) {
        h = &res->hits[i];

        if (builtin_hits) {
            cg_signal_info_t  info;

            cg_signal_info(i % cg_signal_count(), &info);
            strcpy(h->id, info.id);

        } else {
            memset(h->id, 'a' + i, sizeof(h->id) - 1);
        }

        h->weight = i % 2 ? INT_MIN : INT_MAX;
        h->exempt = i % 3 == 0;
        memset(h->detail, 'd', sizeof(h->detail) - 1);
        /* UTF-8 over several bytes */
        memcpy(h->detail, "\xc3\xa9\xe2\x82\xac", 5);
    }

    memset(res->subject, 's', sizeof(res->subject) - 1);
    memset(res->issuer, 'i', sizeof(res->issuer) - 1);
    memset(res->serial, 'F', sizeof(res->serial) - 1);     /* odd: raw */
    memset(res->sha256, 'f', sizeof(res->sha256) - 1);
    memset(res->sha1, '0', sizeof(res->sha1) - 1);
    memset(res->spki_sha256, '9', sizeof(res->spki_sha256) - 1);
    res->not_before = INT64_MIN;
    res->not_after = INT64_MAX;
    res->key_bits = INT_MIN;
    memset(res->key_type, 'k', sizeof(res->key_type) - 1);
    memset(res->sig_alg, 'g', sizeof(res->sig_alg) - 1);
    res->chain_len = UINT_MAX;
    res->trusted = 1;
    res->public_root = 1;
    res->sni_exempt = 1;
    memset(res->name, 'n', sizeof(res->name) - 1);
    memset(res->policy, 'p', sizeof(res->policy) - 1);
    res->first_seen = INT64_MIN + 1;
    memset(res->prev_sha256, 'e', sizeof(res->prev_sha256) - 1);
    memset(res->prev_issuer, 'q', sizeof(res->prev_issuer) - 1);
}


static void
test_synthetic(void)
{
    cg_result_t    res, back;
    unsigned char  buf[CG_PACK_MAX];
    size_t         n;

    memset(&res, 0, sizeof(cg_result_t));
    n = round_trip("empty result", &res);
    is_int(n, 2, "empty result: the version and the end");

    fill_max(&res, 0);
    round_trip("largest result, custom hits", &res);

    fill_max(&res, 1);
    round_trip("largest result, built-in hits", &res);

    /* equal strings and common words are written once */
    memset(&res, 0, sizeof(cg_result_t));
    strcpy(res.subject, "CN=self,O=Example Inc.");
    strcpy(res.issuer, res.subject);
    strcpy(res.name, res.subject);
    strcpy(res.prev_issuer, res.subject);
    strcpy(res.sig_alg, "ecdsa-with-SHA256");
    strcpy(res.key_type, "EC");
    strcpy(res.policy, "default");
    n = round_trip("issuer = subject, common words", &res);
    ok(n < 40, "issuer = subject, common words: %zu bytes", n);

    /* hex that is not the engine's: kept as it is */
    memset(&res, 0, sizeof(cg_result_t));
    strcpy(res.sha256, "ABCDEF");
    strcpy(res.sha1, "abc");
    strcpy(res.serial, "-0A1B");
    strcpy(res.spki_sha256, "zz");
    round_trip("odd hex kept raw", &res);

    /* one field at a time, each bit-field alone */
    memset(&res, 0, sizeof(cg_result_t));
    res.public_root = 1;
    round_trip("public_root alone", &res);

    memset(&res, 0, sizeof(cg_result_t));
    res.verdict = CG_TAG;
    res.not_before = -1;
    round_trip("negative time", &res);

    /* the failure results of the glue */
    cg_result_failure(&res, CG_FAILURE_PROBE, CG_BLOCK, "example.test",
                      "timed out");
    round_trip("probe failure", &res);

    /* a hit count above the list (never made by the engine) packs the
     * list */
    fill_max(&res, 0);
    res.nhits = 40;
    n = cg_result_pack(&res, buf, sizeof(buf));
    is_int(cg_result_unpack(buf, n, &back), CG_OK,
           "more hits than the list: packs the list");
    is_int(back.nhits, CG_MAX_HITS, "more hits than the list: 16 read back");
}


static void
test_truncation(void)
{
    size_t         n, len, i;
    cg_result_t    res, back;
    unsigned char  buf[CG_PACK_MAX + 16], full[CG_PACK_MAX];
    int            over, refused;

    fill_max(&res, 0);
    n = cg_result_pack(&res, full, sizeof(full));

    /* a short buffer: the whole length is returned, nothing written past
     * what was given */
    over = 0;

    for (len = 0; len < n; len += 7) {
        memset(buf, 0xa5, sizeof(buf));

        if (cg_result_pack(&res, buf, len) != n) {
            over++;
        }

        for (i = len; i < sizeof(buf); i++) {
            if (buf[i] != 0xa5) {
                over++;
                break;
            }
        }
    }

    is_int(over, 0, "short buffers: full length returned, no byte past len");

    /* every cut-off form is refused, and leaves the result zeroed */
    refused = 0;

    for (len = 0; len < n; len++) {
        memset(&back, 0x5a, sizeof(back));

        if (cg_result_unpack(full, len, &back) == CG_ERR_INPUT) {
            static const cg_result_t  zero;

            refused += memcmp(&back, &zero, sizeof(zero)) == 0;
        }
    }

    is_int(refused, n, "every one of the %zu prefixes refused, zeroed", n);

    /* and a byte too many */
    memcpy(buf, full, n);
    buf[n] = 0;
    is_int(cg_result_unpack(buf, n + 1, &back), CG_ERR_INPUT,
           "a trailing byte is refused");

    is_int(cg_result_unpack(NULL, 0, &back), CG_ERR_INPUT, "NULL refused");
    is_int(cg_result_unpack(full, n, NULL), CG_ERR_ARG, "no result: ARG");
}


/* A well-formed result: strings end inside their members, lists fit. */
static int
well_formed(const cg_result_t *r)
{
    unsigned  i;

    if (r->nhits > CG_MAX_HITS || r->verdict > CG_BLOCK
        || memchr(r->subject, 0, sizeof(r->subject)) == NULL
        || memchr(r->issuer, 0, sizeof(r->issuer)) == NULL
        || memchr(r->serial, 0, sizeof(r->serial)) == NULL
        || memchr(r->sha256, 0, sizeof(r->sha256)) == NULL
        || memchr(r->sha1, 0, sizeof(r->sha1)) == NULL
        || memchr(r->spki_sha256, 0, sizeof(r->spki_sha256)) == NULL
        || memchr(r->key_type, 0, sizeof(r->key_type)) == NULL
        || memchr(r->sig_alg, 0, sizeof(r->sig_alg)) == NULL
        || memchr(r->name, 0, sizeof(r->name)) == NULL
        || memchr(r->policy, 0, sizeof(r->policy)) == NULL
        || memchr(r->prev_sha256, 0, sizeof(r->prev_sha256)) == NULL
        || memchr(r->prev_issuer, 0, sizeof(r->prev_issuer)) == NULL)
    {
        return 0;
    }

    for (i = 0; i < r->nhits; i++) {
        if (memchr(r->hits[i].id, 0, sizeof(r->hits[i].id)) == NULL
            || memchr(r->hits[i].detail, 0, sizeof(r->hits[i].detail))
               == NULL)
        {
            return 0;
        }
    }

    return 1;
}


static void
test_hostile(const cg_result_t *real)
{
    int            bad, accepted, k;
    size_t         n, m, i;
    cg_result_t    back, again;
    unsigned char  buf[CG_PACK_MAX], orig[CG_PACK_MAX], re[CG_PACK_MAX];

    n = cg_result_pack(real, orig, sizeof(orig));
    bad = 0;
    accepted = 0;

    for (i = 0; i < 20000; i++) {
        memcpy(buf, orig, n);

        for (k = rnd() % 4; k >= 0; k--) {
            buf[rnd() % n] = (unsigned char) rnd();
        }

        if (cg_result_unpack(buf, n, &back) != CG_OK) {
            continue;
        }

        accepted++;

        /* what reads back packs again to the same result */
        m = cg_result_pack(&back, re, sizeof(re));

        if (!well_formed(&back) || m > CG_PACK_MAX
            || cg_result_unpack(re, m, &again) != CG_OK
            || memcmp(&back, &again, sizeof(back)) != 0)
        {
            bad++;
        }
    }

    is_int(bad, 0, "20000 altered forms: %d read back well-formed and "
           "stable, none badly", accepted);

    /* random bytes after the version */
    bad = 0;

    for (i = 0; i < 20000; i++) {
        m = 1 + rnd() % 64;
        buf[0] = 1;

        for (k = 1; k < (int) m; k++) {
            buf[k] = (unsigned char) rnd();
        }

        if (cg_result_unpack(buf, m, &back) == CG_OK && !well_formed(&back)) {
            bad++;
        }
    }

    is_int(bad, 0, "random forms: none read back badly");

    /* a hit with a custom id that is a built-in's, an unknown signal
     * index, a verdict out of range, a string with a NUL: refused */
    {
        static const unsigned char  forms[][16] = {
            { 1, 3, 1, 0, 7, 'e', 'x', 'p', 'i', 'r', 'e', 'd', 0, 0, 0 },
            { 1, 3, 1, 0x7e, 0, 0, 0 },
            { 1, 1, 6, 0 },
            { 1, 5, 3, 'a', 0, 'b', 0 },
            { 1, 2, 0, 0 },
            { 1, 5, 0, 0 },
            { 2, 0 },
            { 1, 2, 2, 1, 2, 0 },
            { 1, 17, 8, 0 },
            { 1, 0x80 | 5, 1, 'x', 0 },
            /* references: to a str not read, to a later one, to one of
             * another size; a word past the list; a word too long */
            { 1, 0x80 | 6, 5, 0 },
            { 1, 0x80 | 5, 6, 0 },
            { 1, 5, 1, 'x', 0x80 | 14, 5, 0 },
            { 1, 0x80 | 15, 0x80 | 0x7f, 0 },
            { 1, 0x80 | 14, 0x80 | 0, 0 },
        };
        static const size_t  lens[] = { 15, 7, 4, 7, 4, 4, 2, 6, 4, 5,
                                        4, 4, 7, 4, 4 };

        bad = 0;

        for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            if (cg_result_unpack(forms[i], lens[i], &back) != CG_ERR_INPUT) {
                printf("# form %zu accepted\n", i);
                bad++;
            }
        }

        is_int(bad, 0, "hand-made bad forms refused");
    }
}


static void
test_real(void)
{
    int           rc;
    size_t        n, most;
    X509         *root, *inter, *leaf, *self, *odd;
    EVP_PKEY     *k_root, *k_int, *k_leaf;
    cg_trust_t   *trust;
    cg_policy_t  *def, *rules;
    cg_result_t   res;
    char          policy[4096], *p;
    int           i;

    k_root = unit_key();
    k_int = unit_key();
    k_leaf = unit_key();

    root = unit_cert("CN=certguard unit root,O=certguard", k_root, NULL,
                     NULL, NULL, 1, 1);
    inter = unit_cert("CN=certguard unit intermediate,O=certguard", k_int,
                      root, k_root, NULL, 1, 2);
    leaf = unit_cert("CN=www.example.test,O=Example Inc,L=San Francisco,"
                     "ST=California,C=US", k_leaf, inter, k_int,
                     "DNS:www.example.test,DNS:example.test", 0,
                     0x1234567890abcdefL);
    self = unit_cert("CN=localhost,O=Acme Co", k_leaf, NULL, NULL,
                     "DNS:localhost", 0, 77);
    odd = unit_cert("CN=caf\xc3\xa9 \xe2\x80\xae\x01 test,O=x\\y=z|w",
                    k_leaf, NULL, NULL, NULL, 0, 5);

    trust = unit_trust(root);

    def = unit_default_policy("default");

    /* many custom rules with long details: a full list of hits */
    p = policy;
    p += sprintf(p, "name rules;\n");
    for (i = 0; i < 20; i++) {
        p += sprintf(p, "rule r%02d_%s subject CN %d \"%s %d\";\n", i,
                     "long_rule_identifier", 1 + i,
                     "a detail as long as a detail can be, so that the "
                     "packed form is at its largest for real", i);
    }
    rules = unit_policy("rules", policy);

    rc = unit_eval(def, trust, leaf, &inter, 1, "www.example.test", NULL,
                   &res);
    is_int(rc, CG_OK, "trusted chain evaluated");
    n = round_trip("trusted chain, default policy", &res);
    ok(n < 400, "a typical result packs under 400 bytes (%zu)", n);
    most = n;

    rc = unit_eval(def, NULL, self, NULL, 0, "other.test", NULL, &res);
    is_int(rc, CG_OK, "self-signed evaluated");
    ok(res.nhits >= 3, "self-signed: %u hits", res.nhits);
    n = round_trip("self-signed, wrong name", &res);
    most = n > most ? n : most;
    ok(n < 400, "self-signed with hits packs under 400 bytes (%zu)", n);

    rc = unit_eval(def, NULL, odd, NULL, 0, "caf\xc3\xa9.test", NULL, &res);
    is_int(rc, CG_OK, "odd subject evaluated");
    round_trip("controls, bidi and CEF specials in the subject", &res);

    rc = unit_eval(rules, trust, leaf, &inter, 1, "www.example.test", NULL,
                   &res);
    is_int(rc, CG_OK, "20 rules evaluated");
    is_int(res.nhits, CG_MAX_HITS, "20 rules: a full list");
    ok(res.hits_dropped > 0, "20 rules: some dropped");
    round_trip("full list of custom hits", &res);

    test_hostile(&res);

    printf("# largest typical packed result: %zu bytes\n", most);

    cg_policy_free(def);
    cg_policy_free(rules);
    cg_trust_free(trust);
    X509_free(root);
    X509_free(inter);
    X509_free(leaf);
    X509_free(self);
    X509_free(odd);
    EVP_PKEY_free(k_root);
    EVP_PKEY_free(k_int);
    EVP_PKEY_free(k_leaf);
}


int
main(void)
{
    unit_setup();

    test_synthetic();
    test_truncation();
    test_real();

    unit_cleanup();

    return done_testing();
}
