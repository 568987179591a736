/*
 * Engine microbenchmark: the cost, in microseconds, of what certguard does
 * per handshake, without nginx and without TLS.
 *
 *   engine_micro POLICY CA_FILE NAME CHAIN.pem [SECONDS]
 *
 * Prints one line per measurement (median of 5 rounds of about SECONDS/5
 * each, default 2 s in all per measurement):
 *
 *   evaluate        cg_evaluate on a parsed chain (objects reused)
 *   parse_pem       cg_chain_parse of the PEM chain, and freeing it
 *   d2i             d2i_X509 of each certificate (DER), and freeing them
 *   d2i+evaluate    both, with fresh X509 objects every time, as after a
 *                   handshake (the engine's cold verdict = this - d2i)
 *   format_cef      cg_format_cef of the result, with a connection context
 *   format_json     cg_format_json
 *   hit_digest      X509_digest(SHA-256) of the leaf: the cache key's
 *                   expensive part, computed on every handshake
 *   hit_lookup      the rest of the module's cache hit: build the key (digest,
 *                   object pointers, name, address:port), CRC32 it, take and
 *                   release a lock with an atomic compare-and-swap, find the
 *                   entry in a red-black tree of 1,000 entries (glibc's
 *                   tsearch tree, ordered by CRC32 then bytes, as nginx's
 *                   rbtree in the module), and copy the flat cg_result_t out
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#define _GNU_SOURCE

#include <search.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certguard.h"


#define ROUNDS      5
#define ENTRIES     1000
#define KEY_MAX     512


typedef struct {
    uint32_t      hash;
    size_t        len;
    cg_result_t   result;
    unsigned char key[KEY_MAX];
} entry_t;


static cg_policy_t     *policy;
static cg_trust_t      *trust;
static const char      *name;
static unsigned char   *pem;
static size_t           pem_len;
static STACK_OF(X509)  *chain;
static cg_result_t      result;
static char             out[4096];
static void            *tree;
static volatile int     lock;
static uint32_t         crc_table[256];
static volatile size_t  sink;


static double
now_us(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}


static void
crc_init(void)
{
    uint32_t  c, i, k;

    for (i = 0; i < 256; i++) {
        c = i;

        for (k = 0; k < 8; k++) {
            c = (c & 1) ? 0xedb88320 ^ (c >> 1) : c >> 1;
        }

        crc_table[i] = c;
    }
}


static uint32_t
crc32(const unsigned char *p, size_t len)
{
    uint32_t  c = 0xffffffff;

    while (len--) {
        c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
    }

    return c ^ 0xffffffff;
}


static int
entry_cmp(const void *a, const void *b)
{
    const entry_t  *x = a, *y = b;
    size_t          n;
    int             rc;

    if (x->hash != y->hash) {
        return x->hash < y->hash ? -1 : 1;
    }

    n = x->len < y->len ? x->len : y->len;
    rc = memcmp(x->key, y->key, n);

    return rc ? rc : (int) x->len - (int) y->len;
}


/* The cache key the module builds: digest, objects, "name\0addr:port". */

static size_t
make_key(unsigned char *key, const unsigned char *md, unsigned mdlen,
    const char *addr, unsigned port)
{
    unsigned char  *p = key;
    const void     *objs[3] = { policy, trust, NULL };

    memcpy(p, md, mdlen);
    p += mdlen;
    memcpy(p, objs, sizeof(objs));
    p += sizeof(objs);
    p += snprintf((char *) p, KEY_MAX - (p - key), "%s%c%s:%u", name, 0,
                  addr, port) + 1;

    return p - key;
}


static unsigned char  *der[8];
static int             der_len[8];
static int             nder;


/* Fresh X509 objects from DER, as the TLS stack makes them per handshake. */

static STACK_OF(X509) *
fresh(void)
{
    int                   i;
    X509                 *x;
    STACK_OF(X509)       *c;
    const unsigned char  *p;

    c = sk_X509_new_null();

    for (i = 0; i < nder; i++) {
        p = der[i];
        x = d2i_X509(NULL, &p, der_len[i]);
        if (c == NULL || x == NULL || !sk_X509_push(c, x)) {
            exit(2);
        }
    }

    return c;
}


static STACK_OF(X509) *
parse(void)
{
    STACK_OF(X509)  *c;
    cg_error_t       err;

    if (cg_chain_parse(pem, pem_len, &c, &err) != CG_OK) {
        fprintf(stderr, "engine_micro: %s\n", err.msg);
        exit(2);
    }

    return c;
}


static void
evaluate(STACK_OF(X509) *c, cg_result_t *res)
{
    cg_input_t  in;

    memset(&in, 0, sizeof(in));
    in.policy = policy;
    in.trust = trust;
    in.leaf = sk_X509_value(c, 0);
    in.chain = c;
    in.name = name;
    in.dst_addr = "127.0.0.1";
    in.dst_port = 443;

    if (cg_evaluate(&in, res) != CG_OK) {
        fprintf(stderr, "engine_micro: cg_evaluate failed\n");
        exit(2);
    }
}


static void
do_evaluate(void)
{
    evaluate(chain, &result);
}


static void
do_parse(void)
{
    sk_X509_pop_free(parse(), X509_free);
}


static void
do_d2i(void)
{
    sk_X509_pop_free(fresh(), X509_free);
}


static void
do_parse_evaluate(void)
{
    STACK_OF(X509)  *c;

    c = fresh();
    evaluate(c, &result);
    sk_X509_pop_free(c, X509_free);
}


static void
do_format_cef(void)
{
    cg_event_t  ev;

    memset(&ev, 0, sizeof(ev));
    ev.src_addr = "127.0.0.1";
    ev.src_port = 51234;
    ev.dst_addr = "127.0.0.1";
    ev.dst_port = 443;
    ev.request = "https://bench.certguard.test/";
    ev.rt_ms = 1764000000000LL;

    sink += cg_format_cef(&result, &ev, out, sizeof(out));
}


static void
do_format_json(void)
{
    sink += cg_format_json(&result, out, sizeof(out));
}


/*
 * OpenSSL caches no SHA-256 of a certificate: every X509_digest encodes the
 * certificate again (from the encoding kept by d2i) and hashes it, so the
 * parsed object can be reused here without making the digest cheaper.
 */

static void
do_digest(void)
{
    unsigned char    md[EVP_MAX_MD_SIZE];
    unsigned         mdlen;

    X509_digest(sk_X509_value(chain, 0), EVP_sha256(), md, &mdlen);
    sink += md[0];
}


static unsigned char  leaf_md[EVP_MAX_MD_SIZE];
static unsigned       leaf_mdlen;


static void
do_lookup(void)
{
    entry_t        q, **found;
    cg_result_t    res;

    q.len = make_key(q.key, leaf_md, leaf_mdlen, "127.0.0.1", 443);
    q.hash = crc32(q.key, q.len);

    while (!__sync_bool_compare_and_swap(&lock, 0, 1)) { /* void */ }

    found = tfind(&q, &tree, entry_cmp);
    if (found == NULL) {
        fprintf(stderr, "engine_micro: key not in the tree\n");
        exit(2);
    }

    memcpy(&res, &(*found)->result, sizeof(cg_result_t));

    __atomic_store_n(&lock, 0, __ATOMIC_RELEASE);

    sink += res.score + res.subject[0];
}


static void
fill_tree(void)
{
    int             i;
    char            addr[32];
    entry_t        *e;
    unsigned char   md[EVP_MAX_MD_SIZE];

    /* 999 other certificates' entries, and this one's */

    for (i = 0; i < ENTRIES; i++) {
        e = calloc(1, sizeof(entry_t));
        if (e == NULL) {
            exit(2);
        }

        if (i == ENTRIES / 2) {
            e->len = make_key(e->key, leaf_md, leaf_mdlen, "127.0.0.1", 443);

        } else {
            snprintf(addr, sizeof(addr), "10.0.%d.%d", i / 250, i % 250);
            memcpy(md, leaf_md, leaf_mdlen);
            md[0] ^= i & 0xff;
            md[1] ^= i >> 8;
            e->len = make_key(e->key, md, leaf_mdlen, addr, 443);
        }

        e->hash = crc32(e->key, e->len);
        memcpy(&e->result, &result, sizeof(cg_result_t));
        tsearch(e, &tree, entry_cmp);
    }
}


static int
cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


/* Median over ROUNDS rounds of the mean time of one call, in us. */

static double
measure(void (*fn)(void), double seconds)
{
    int      r;
    long     n, i;
    double   t0, t, one, per[ROUNDS];

    /* calibrate: how many calls fill a round */

    t0 = now_us();
    for (n = 0; now_us() - t0 < 20000; n++) {
        fn();
    }
    one = (now_us() - t0) / n;
    n = (long) (seconds * 1e6 / ROUNDS / one) + 1;

    for (r = 0; r < ROUNDS; r++) {
        t0 = now_us();
        for (i = 0; i < n; i++) {
            fn();
        }
        t = now_us();
        per[r] = (t - t0) / n;
    }

    qsort(per, ROUNDS, sizeof(double), cmp_double);

    return per[ROUNDS / 2];
}


int
main(int argc, char **argv)
{
    FILE         *f;
    long          size;
    double        secs, parse_us, pe_us, d_us;
    cg_error_t    err;

    if (argc < 5) {
        fprintf(stderr,
                "usage: engine_micro POLICY CA_FILE NAME CHAIN.pem [SECONDS]\n");
        return 2;
    }

    name = argv[3];
    secs = argc > 5 ? atof(argv[5]) : 2.0;

    if (cg_policy_load(&policy, argv[1], &err) != CG_OK
        || cg_trust_load(&trust, argv[2], 0, &err) != CG_OK)
    {
        fprintf(stderr, "engine_micro: %s:%u: %s\n", err.file, err.line,
                err.msg);
        return 2;
    }

    f = fopen(argv[4], "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) <= 0) {
        fprintf(stderr, "engine_micro: cannot read %s\n", argv[4]);
        return 2;
    }
    rewind(f);
    pem_len = (size_t) size;
    pem = malloc(pem_len);
    if (pem == NULL || fread(pem, 1, pem_len, f) != pem_len) {
        return 2;
    }
    fclose(f);

    crc_init();
    chain = parse();

    for (nder = 0; nder < sk_X509_num(chain) && nder < 8; nder++) {
        der[nder] = NULL;
        der_len[nder] = i2d_X509(sk_X509_value(chain, nder), &der[nder]);
        if (der_len[nder] <= 0) {
            return 2;
        }
    }
    evaluate(chain, &result);

    printf("chain: %d certificates, leaf %s %d bits; verdict %s, score %d, "
           "%u signals\n", sk_X509_num(chain), result.key_type,
           result.key_bits, cg_verdict_name(result.verdict), result.score,
           result.nhits);

    X509_digest(sk_X509_value(chain, 0), EVP_sha256(), leaf_md, &leaf_mdlen);
    fill_tree();

    printf("%-16s %9.2f us\n", "evaluate", measure(do_evaluate, secs));
    printf("%-16s %9.2f us   (cg_chain_parse of the PEM file)\n", "parse_pem",
           measure(do_parse, secs));
    parse_us = measure(do_d2i, secs);
    printf("%-16s %9.2f us   (d2i_X509 of each certificate)\n", "d2i",
           parse_us);
    pe_us = measure(do_parse_evaluate, secs);
    printf("%-16s %9.2f us\n", "d2i+evaluate", pe_us);
    printf("%-16s %9.2f us   (d2i+evaluate - d2i: fresh objects)\n",
           "cold_verdict", pe_us - parse_us);
    d_us = measure(do_format_cef, secs);
    printf("%-16s %9.2f us   (%zu bytes)\n", "format_cef", d_us,
           strlen(out));
    printf("%-16s %9.2f us\n", "format_json", measure(do_format_json, secs));
    d_us = measure(do_digest, secs);
    printf("%-16s %9.2f us   (X509_digest SHA-256 of the leaf)\n",
           "hit_digest", d_us);
    pe_us = measure(do_lookup, secs);
    printf("%-16s %9.2f us   (key, crc32, lock, tfind in %d, copy %zu B)\n",
           "hit_lookup", pe_us, ENTRIES, sizeof(cg_result_t));
    printf("%-16s %9.2f us   (hit_digest + hit_lookup)\n", "cache_hit",
           d_us + pe_us);

    sk_X509_pop_free(chain, X509_free);
    cg_trust_free(trust);
    cg_policy_free(policy);

    return sink == 42;
}
