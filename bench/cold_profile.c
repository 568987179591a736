/*
 * The cold path as the modules run it, for a profiler (bench/profile.sh
 * runs it under callgrind): for each of N handshakes, d2i_X509 of the
 * chain's DER (what the TLS stack parses), cg_input_handshake and
 * cg_evaluate, cg_format_cef of the verdict (certguard_log) and
 * cg_result_pack (the verdict cache's put), with or without a memo of
 * verified signatures.  With several chains it takes them in turn: a new
 * leaf on every handshake when they are bench/leaves.c's.
 *
 *   cold_profile POLICY CA_FILE on|sig|off N CHAIN.pem...
 *
 * on: the memo of verified signatures and a decoded-certificate cache
 * (cg_input_t certs), as the modules run with certguard_verify_memo;
 * sig: the memo alone; off: neither.
 *
 * The trust store is CA_FILE alone (no system bundle: its loading is not
 * the handshake's).
 *
 * With TIME=1 in the environment it times each step natively instead
 * (CLOCK_THREAD_CPUTIME_ID, after N/10 handshakes of warm-up) and prints
 * microseconds per handshake, with two steps certguard does not run:
 * "plain", the X509_verify_cert OpenSSL runs for a plain nginx proxy with
 * proxy_ssl_verify off (an empty store, the default callback), which the
 * module's verify callback replaces; and "floor", X509_verify of the leaf
 * under its issuer's key (an issuer object kept from the first handshake,
 * its key set up), the one check a new leaf cannot skip.
 *
 * With POLLUTE=KB it writes that much memory, untimed, before each timed
 * step (nginx's own work between two handshakes, roughly).
 *
 * The name checked is the chain file's name without ".pem" (leaves.c
 * names them so), or $NAME.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "certguard.h"


typedef struct {
    char            name[256];
    int             n;
    unsigned char  *der[8];
    int             len[8];
} chain_t;


static int
load(chain_t *c, const char *path)
{
    int              i;
    char            *p;
    const char      *base;
    FILE            *f;
    unsigned char   *data, *q;
    long             size;
    cg_error_t       err;
    STACK_OF(X509)  *sk;

    f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) <= 0) {
        return -1;
    }
    rewind(f);
    data = malloc((size_t) size);
    if (data == NULL || fread(data, 1, (size_t) size, f) != (size_t) size) {
        return -1;
    }
    fclose(f);

    if (cg_chain_parse(data, (size_t) size, &sk, &err) != CG_OK) {
        return -1;
    }
    free(data);

    c->n = sk_X509_num(sk) < 8 ? sk_X509_num(sk) : 8;
    for (i = 0; i < c->n; i++) {
        c->len[i] = i2d_X509(sk_X509_value(sk, i), NULL);
        c->der[i] = malloc((size_t) c->len[i]);
        q = c->der[i];
        i2d_X509(sk_X509_value(sk, i), &q);
    }
    sk_X509_pop_free(sk, X509_free);

    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(c->name, sizeof(c->name), "%s",
             getenv("NAME") ? getenv("NAME") : base);
    p = strstr(c->name, ".pem");
    if (p) {
        *p = '\0';
    }

    return 0;
}


/* Each step in a function of its own, so that a profile's inclusive count
 * of it is that step's alone. */


/* With POLLUTE=KB, a line of every 64 bytes of that much memory written
 * before each timed step, untimed: in a proxy nginx's own handshake work
 * runs between two evaluations and leaves the caches colder than this
 * loop does. */

__attribute__((noinline)) static void
cp_pollute(unsigned char *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i += 64) {
        p[i]++;
    }
}

__attribute__((noinline)) static STACK_OF(X509) *
cp_parse(const chain_t *c)
{
    int                   k;
    const unsigned char  *q;
    STACK_OF(X509)       *sk;

    sk = sk_X509_new_null();
    for (k = 0; k < c->n; k++) {
        q = c->der[k];
        sk_X509_push(sk, d2i_X509(NULL, &q, c->len[k]));
    }

    return sk;
}


__attribute__((noinline)) static int
cp_evaluate(const cg_policy_t *policy, const cg_trust_t *trust,
    STACK_OF(X509) *sk, const char *name, const cg_verify_memo_t *memo,
    cg_certs_t *certs, cg_result_t *res)
{
    int         rc;
    cg_input_t  in;

    rc = cg_input_handshake(&in, policy, trust, NULL, NULL, sk, name,
                            "198.51.100.7", 443, 0);
    if (rc == CG_OK) {
        in.verify_memo = memo;
        in.certs = certs;
        rc = cg_evaluate(&in, res);
    }

    return rc;
}


__attribute__((noinline)) static void
cp_format(const cg_result_t *res, const cg_event_t *ev, char *cef)
{
    (void) cg_format_cef(res, ev, cef, CG_CEF_MAX);
}


__attribute__((noinline)) static void
cp_pack(const cg_result_t *res, unsigned char *packed)
{
    (void) cg_result_pack(res, packed, CG_PACK_MAX);
}


/* What a plain proxy's TLS stack runs (proxy_ssl_verify off). */

__attribute__((noinline)) static void
cp_plain(X509_STORE *store, STACK_OF(X509) *sk)
{
    X509_STORE_CTX  *ctx;

    ctx = X509_STORE_CTX_new();
    if (ctx != NULL
        && X509_STORE_CTX_init(ctx, store, sk_X509_value(sk, 0), sk))
    {
        (void) X509_verify_cert(ctx);
    }
    X509_STORE_CTX_free(ctx);
}


/* The leaf's signature under its issuer's key, the key set up once (the
 * issuer parsed before the loop), as a check at the floor pays. */

__attribute__((noinline)) static void
cp_floor(STACK_OF(X509) *sk, X509 *issuer)
{
    (void) X509_verify(sk_X509_value(sk, 0), X509_get0_pubkey(issuer));
}


static double
cp_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}


enum { T_PARSE, T_PLAIN, T_FLOOR, T_EVAL, T_FORMAT, T_PACK, T_N };

static const char  *cp_step[T_N] = {
    "parse (d2i, the TLS stack's)", "plain (X509_verify_cert, verify off)",
    "floor (X509_verify of the leaf)", "evaluate (cg_input + cg_evaluate)",
    "format (cg_format_cef)", "pack (cg_result_pack)"
};


int
main(int argc, char **argv)
{
    int                   i, nchains, rc;
    long                  n, h;
    char                 *cef;
    void                 *table;
    chain_t              *chains;
    cg_result_t           res;
    cg_error_t            err;
    cg_event_t            ev;
    cg_trust_t           *trust;
    cg_policy_t          *policy;
    unsigned char         packed[CG_PACK_MAX];
    cg_verify_memo_t      memo;
    cg_certs_t           *certs;
    STACK_OF(X509)       *sk, *sk2, *first;
    int                   timed;
    size_t                njunk;
    unsigned char        *junk;
    long                  warm;
    double                t0, t[T_N];
    X509_STORE           *empty;

    if (argc < 6) {
        fprintf(stderr, "usage: cold_profile POLICY CA_FILE on|sig|off N "
                "CHAIN.pem...\n");
        return 2;
    }

    if (cg_policy_load(&policy, argv[1], &err) != CG_OK
        || cg_trust_load(&trust, argv[2], CG_TRUST_NO_SYSTEM, &err) != CG_OK)
    {
        fprintf(stderr, "cold_profile: %s\n", err.msg);
        return 1;
    }

    table = NULL;
    certs = NULL;
    if (strcmp(argv[3], "on") == 0 && cg_certs_new(&certs) != CG_OK) {
        return 1;
    }

    if (strcmp(argv[3], "on") == 0 || strcmp(argv[3], "sig") == 0) {
        table = malloc(1024 * 1024);
        cg_memo_table_init(table, 1024 * 1024);
        memo.lookup = cg_memo_table_lookup;
        memo.insert = cg_memo_table_insert;
        memo.data = table;
    }

    n = atol(argv[4]);
    nchains = argc - 5;
    chains = calloc((size_t) nchains, sizeof(chain_t));
    for (i = 0; i < nchains; i++) {
        if (load(&chains[i], argv[5 + i]) != 0) {
            fprintf(stderr, "cold_profile: cannot read %s\n", argv[5 + i]);
            return 1;
        }
    }

    cef = malloc(CG_CEF_MAX);
    memset(&ev, 0, sizeof(ev));
    ev.src_addr = "192.0.2.1";
    ev.dst_addr = "198.51.100.7";
    ev.dst_port = 443;
    ev.method = "GET";

    timed = getenv("TIME") != NULL;
    njunk = getenv("POLLUTE") ? (size_t) atol(getenv("POLLUTE")) * 1024 : 0;
    junk = njunk ? calloc(1, njunk) : NULL;
    if (njunk && junk == NULL) {
        return 1;
    }
    warm = n / 10;
    memset(t, 0, sizeof(t));
    empty = X509_STORE_new();
    first = cp_parse(&chains[0]);
    if (timed && sk_X509_num(first) < 2) {
        fprintf(stderr, "cold_profile: TIME needs chains with an issuer\n");
        return 1;
    }

    for (h = 0; h < n + (timed ? warm : 0); h++) {
        chain_t  *c = &chains[h % nchains];

        if (timed) {
            /* the plain and floor steps on objects of their own, so each
             * starts from a freshly parsed chain as the handshake does */
            if (h == warm) {
                memset(t, 0, sizeof(t));
            }
            t0 = cp_now();
            sk2 = cp_parse(c);
            t[T_PARSE] += cp_now() - t0;
            cp_pollute(junk, njunk);
            t0 = cp_now();
            cp_plain(empty, sk2);
            t[T_PLAIN] += cp_now() - t0;
            sk_X509_pop_free(sk2, X509_free);
            sk2 = cp_parse(c);
            cp_pollute(junk, njunk);
            t0 = cp_now();
            cp_floor(sk2, sk_X509_value(first, 1));
            t[T_FLOOR] += cp_now() - t0;
            sk_X509_pop_free(sk2, X509_free);
        }

        sk = cp_parse(c);
        cp_pollute(junk, njunk);
        t0 = timed ? cp_now() : 0;
        rc = cp_evaluate(policy, trust, sk, c->name, table ? &memo : NULL,
                         certs, &res);
        if (timed) {
            t[T_EVAL] += cp_now() - t0;
        }
        if (rc != CG_OK) {
            fprintf(stderr, "cold_profile: no verdict\n");
            return 1;
        }
        if (h == 0) {
            fprintf(stderr, "cold_profile: %s score %d%s\n",
                    cg_verdict_name(res.verdict), res.score,
                    res.trusted ? ", trusted" : ", NOT trusted");
        }

        t0 = timed ? cp_now() : 0;
        cp_format(&res, &ev, cef);
        if (timed) {
            t[T_FORMAT] += cp_now() - t0;
            t0 = cp_now();
        }
        cp_pack(&res, packed);
        if (timed) {
            t[T_PACK] += cp_now() - t0;
        }

        sk_X509_pop_free(sk, X509_free);
    }

    if (timed) {
        double  added = t[T_EVAL] + t[T_FORMAT] + t[T_PACK] - t[T_PLAIN];

        for (i = 0; i < T_N; i++) {
            printf("%-40s %8.2f us\n", cp_step[i], t[i] / n);
        }
        printf("%-40s %8.2f us\n", "added (evaluate+format+pack - plain)",
               added / n);
        printf("%-40s %8.2f us\n", "added - floor", (added - t[T_FLOOR]) / n);
    }

    X509_STORE_free(empty);
    sk_X509_pop_free(first, X509_free);

    free(cef);
    free(table);
    free(junk);
    cg_certs_free(certs);
    cg_trust_free(trust);
    cg_policy_free(policy);

    return 0;
}
