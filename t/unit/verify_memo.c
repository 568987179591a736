/*
 * The memo of verified signatures (src/engine/cg_memo.c): the table (hit,
 * miss, bounded eviction), the key (a changed byte of either certificate
 * misses), the verify step against OpenSSL's own (the same callback calls,
 * errors and depths, with the memo empty and full), and evaluations with
 * a memo (a hit skips the check, a forged signature still fails).
 */

#include "tap.h"
#include "certs.h"

#include <openssl/rand.h>


#define TRACE_MAX   64


typedef struct {
    int     n;
    int     ok[TRACE_MAX];
    int     err[TRACE_MAX];
    int     depth[TRACE_MAX];
    X509   *cert[TRACE_MAX];
} trace_t;


static trace_t                 *cur_trace;
static const cg_verify_memo_t  *cur_memo;


static int
trace_cb(int ok, X509_STORE_CTX *ctx)
{
    trace_t  *t = cur_trace;

    if (t->n < TRACE_MAX) {
        t->ok[t->n] = ok;
        t->err[t->n] = ok ? 0 : X509_STORE_CTX_get_error(ctx);
        t->depth[t->n] = X509_STORE_CTX_get_error_depth(ctx);
        t->cert[t->n] = X509_STORE_CTX_get_current_cert(ctx);
    }

    t->n++;

    /* as the engine's callback: record every error and go on */
    return 1;
}


static int  steps;


static int
memo_step(X509_STORE_CTX *ctx)
{
    steps++;

    return cg_memo_verify(ctx, cur_memo);
}


/* One X509_verify_cert(): the stock step (memo 0) or the memo's. */
static int
run(trace_t *t, X509 *root, X509 *leaf, X509 **inter, int ninter,
    unsigned long flags, int memo, int *error)
{
    int              i, rc;
    X509_STORE      *store;
    X509_STORE_CTX  *ctx;
    STACK_OF(X509)  *sk;

    memset(t, 0, sizeof(trace_t));
    cur_trace = t;

    store = X509_STORE_new();
    if (root) {
        X509_STORE_add_cert(store, root);
    }

    sk = sk_X509_new_null();
    for (i = 0; i < ninter; i++) {
        sk_X509_push(sk, inter[i]);
    }

    ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, leaf, sk);
    X509_STORE_CTX_set_default(ctx, "ssl_server");
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), UNIT_NOW);
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), flags);
    X509_STORE_CTX_set_verify_cb(ctx, trace_cb);

    if (memo) {
        X509_STORE_CTX_set_verify(ctx, memo_step);
    }

    rc = X509_verify_cert(ctx);
    *error = X509_STORE_CTX_get_error(ctx);

    X509_STORE_CTX_free(ctx);
    sk_X509_free(sk);
    X509_STORE_free(store);

    return rc;
}


static int
trace_eq(const trace_t *a, const trace_t *b)
{
    int  i;

    if (a->n != b->n) {
        printf("# %d callback calls against %d\n", a->n, b->n);
        return 0;
    }

    for (i = 0; i < a->n && i < TRACE_MAX; i++) {
        if (a->ok[i] != b->ok[i] || a->err[i] != b->err[i]
            || a->depth[i] != b->depth[i] || a->cert[i] != b->cert[i])
        {
            printf("# call %d: ok %d err %d depth %d against ok %d err %d "
                   "depth %d%s\n", i, a->ok[i], a->err[i], a->depth[i],
                   b->ok[i], b->err[i], b->depth[i],
                   a->cert[i] != b->cert[i] ? ", another certificate" : "");
            return 0;
        }
    }

    return 1;
}


static int
trace_errors(const trace_t *t)
{
    int  i, n;

    for (i = 0, n = 0; i < t->n && i < TRACE_MAX; i++) {
        n += !t->ok[i];
    }

    return n;
}


/* A certificate as unit_cert() makes it, with other times and keyUsage;
 * kept in the pool, freed at the end. */
static X509  *pool[64];
static int    npool;

static X509 *
mk(const char *subject, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, int ca,
    long nb_days, long na_days, const char *ku, long serial)
{
    X509  *x;

    x = unit_cert(subject, key, issuer, ikey, ca ? NULL : "DNS:a.test", ca,
                  serial);

    if (ku) {
        X509_EXTENSION_free(X509_delete_ext(x,
                            X509_get_ext_by_NID(x, NID_key_usage, -1)));
        unit_ext(x, issuer, NID_key_usage, ku);
    }

    ASN1_TIME_set(X509_getm_notBefore(x), UNIT_NOW + nb_days * UNIT_DAY);
    ASN1_TIME_set(X509_getm_notAfter(x), UNIT_NOW + na_days * UNIT_DAY);

    if (X509_sign(x, issuer ? ikey : key, EVP_sha256()) == 0) {
        unit_bail("X509_sign");
    }

    if (npool < 64) {
        pool[npool++] = x;
    }

    return x;
}


/* x with a validity time given as its DER string, signed again */
static X509 *
retime(X509 *x, EVP_PKEY *ikey, int after, const char *der_time)
{
    ASN1_TIME  *t;

    t = after ? X509_getm_notAfter(x) : X509_getm_notBefore(x);

    if (!ASN1_STRING_set(t, der_time, (int) strlen(der_time))) {
        unit_bail("ASN1_STRING_set");
    }

    t->type = strlen(der_time) == 13 ? V_ASN1_UTCTIME
                                     : V_ASN1_GENERALIZEDTIME;

    if (X509_sign(x, ikey, EVP_sha256()) == 0) {
        unit_bail("X509_sign");
    }

    return x;
}


static void
pool_free(void)
{
    while (npool > 0) {
        X509_free(pool[--npool]);
    }
}


/* A copy of x with byte i of its DER changed, or NULL if it does not
 * parse then. */
static X509 *
flip(X509 *x, int i)
{
    int                   n;
    unsigned char        *der, *p;
    const unsigned char  *q;
    X509                 *y;

    n = i2d_X509(x, NULL);
    if (i >= n) {
        return NULL;
    }

    der = malloc((size_t) n);
    p = der;
    i2d_X509(x, &p);

    der[i] ^= 0x01;

    q = der;
    y = d2i_X509(NULL, &q, n);
    if (y != NULL && q != der + n) {
        X509_free(y);
        y = NULL;
    }

    free(der);
    ERR_clear_error();

    return y;
}


static void
test_table(void)
{
    int              i, k;
    unsigned char    mem[4096], key[8][CG_MEMO_KEY_LEN];
    cg_memo_stats_t  st;

    is_int(cg_memo_table_init(mem, 16), CG_ERR_ARG, "a table smaller than a "
           "bucket is refused");
    is_int(cg_memo_table_init(NULL, 4096), CG_ERR_ARG, "no memory refused");
    is_int(cg_memo_table_lookup(mem, key[0]), 0,
           "an unformatted table has nothing");

    for (i = 0; i < 8; i++) {
        RAND_bytes(key[i], CG_MEMO_KEY_LEN);
    }

    is_int(cg_memo_table_init(mem, sizeof(mem)), CG_OK, "4 KB formatted");
    cg_memo_table_stats(mem, &st);
    ok(st.entries >= 64 && st.entries * CG_MEMO_KEY_LEN <= sizeof(mem),
       "room %llu keys in 4 KB", (unsigned long long) st.entries);

    is_int(cg_memo_table_lookup(mem, key[0]), 0, "empty: a miss");
    cg_memo_table_insert(mem, key[0]);
    is_int(cg_memo_table_lookup(mem, key[0]), 1, "inserted: a hit");
    key[0][31] ^= 1;
    is_int(cg_memo_table_lookup(mem, key[0]), 0, "one bit off: a miss");
    key[0][31] ^= 1;

    cg_memo_table_insert(mem, key[0]);
    cg_memo_table_stats(mem, &st);
    is_int(st.inserts, 1, "the same key twice is one entry");
    is_int(st.hits, 1, "one hit counted");
    is_int(st.misses, 2, "two misses counted");

    /* the smallest table: one bucket of four, least recently used out */
    for (k = 0; k < (int) sizeof(mem); k++) {
        if (cg_memo_table_init(mem, (size_t) k) == CG_OK) {
            break;
        }
    }
    cg_memo_table_stats(mem, &st);
    is_int(st.entries, 4, "it holds four keys");

    for (i = 0; i < 4; i++) {
        cg_memo_table_insert(mem, key[i]);
    }

    is_int(cg_memo_table_lookup(mem, key[0]), 1, "key 0 kept (and now "
           "most recently used)");
    cg_memo_table_insert(mem, key[4]);
    cg_memo_table_stats(mem, &st);
    is_int(st.evictions, 1, "a fifth key evicts one");
    is_int(cg_memo_table_lookup(mem, key[1]), 0, "the least recently used "
           "(key 1) went");
    is_int(cg_memo_table_lookup(mem, key[0]), 1, "key 0, used since, stays");
    is_int(cg_memo_table_lookup(mem, key[4]), 1, "key 4 is in");

    for (i = 0; i < 8; i++) {
        cg_memo_table_insert(mem, key[i]);
    }

    cg_memo_table_stats(mem, &st);
    for (i = 0, k = 0; i < 8; i++) {
        k += cg_memo_table_lookup(mem, key[i]);
    }

    is_int(k, 4, "never more than its room");
}


static void
test_key(X509 *inter, X509 *leaf)
{
    int            i, n, parsed, same;
    X509          *y;
    unsigned char  k0[CG_MEMO_KEY_LEN], k1[CG_MEMO_KEY_LEN];

    is_int(cg_memo_key(inter, leaf, k0), CG_OK, "key of (intermediate, "
           "leaf)");
    is_int(cg_memo_key(leaf, inter, k1), CG_OK, "key of (leaf, "
           "intermediate)");
    ok(memcmp(k0, k1, sizeof(k0)) != 0, "the order of the two counts");

    /* every byte of either certificate, where the result still parses */
    for (n = 0; n < 2; n++) {
        parsed = 0;
        same = 0;

        for (i = 0; i < i2d_X509(n ? inter : leaf, NULL); i++) {
            y = flip(n ? inter : leaf, i);
            if (y == NULL) {
                continue;
            }

            parsed++;

            if (cg_memo_key(n ? y : inter, n ? leaf : y, k1) != CG_OK
                || memcmp(k0, k1, sizeof(k0)) == 0)
            {
                same++;
            }

            X509_free(y);
        }

        ok(parsed > 100, "%d one-byte changes of the %s parse", parsed,
           n ? "issuer" : "subject");
        is_int(same, 0, "every changed byte of the %s changes the key",
               n ? "issuer" : "subject");
    }
}


static void
test_step(void)
{
    int               i, r0, r1, r2, e0, e1, e2, cases;
    long              serial;
    void             *mem;
    trace_t           t0, t1, t2;
    EVP_PKEY         *kr, *ki, *kl, *kx;
    X509             *root, *inter, *leaf, *noku, *inv, *invss, *x[40][4];
    cg_verify_memo_t  memo;
    unsigned long     fl[40];
    int               nx[40];
    const char       *what[40];
    static const struct {
        const char   *what;
        int           after;            /* notAfter, else notBefore */
        const char   *der;
    } times[] = {
        { "leaf expiring at the second checked", 1, "260101000000Z" },
        { "leaf expiring a second after", 1, "260101000001Z" },
        { "leaf valid from the second checked", 0, "260101000000Z" },
        { "leaf valid from a second after", 0, "260101000001Z" },
        { "leaf expired the year before, GeneralizedTime", 1,
          "20251231235959Z" },
        { "leaf valid to 2050, GeneralizedTime", 1, "20500101000000Z" },
        { "leaf expiring in month 13", 1, "261301000000Z" },
        { "leaf valid from February 30th", 0, "250230000000Z" },
        { "leaf expiring at 24:00", 1, "261231240000Z" },
    };

    kr = unit_key();
    ki = unit_key();
    kl = unit_key();
    kx = unit_key();
    serial = 100;

    root = mk("CN=Memo Root", kr, NULL, NULL, 1, -100, 1000, NULL, serial++);
    inter = mk("CN=Memo Inter", ki, root, kr, 1, -50, 500, NULL, serial++);
    leaf = mk("CN=a.test", kl, inter, ki, 0, -10, 80, NULL, serial++);

    cases = 0;

#define CASE(w, l, i1, i2, f)                                                 \
    what[cases] = (w); x[cases][0] = (l); x[cases][1] = (i1);                 \
    x[cases][2] = (i2); nx[cases] = (i2) ? 2 : (i1) ? 1 : 0;                  \
    fl[cases] = (f); cases++

    CASE("good chain", leaf, inter, NULL, 0);
    CASE("good chain, partial chains allowed", leaf, inter, NULL,
         X509_V_FLAG_PARTIAL_CHAIN);
    CASE("good chain, self-signed anchor checked", leaf, inter, NULL,
         X509_V_FLAG_CHECK_SS_SIGNATURE);
    CASE("good chain, strict", leaf, inter, NULL,
         X509_V_FLAG_X509_STRICT | X509_V_FLAG_PARTIAL_CHAIN);
    CASE("expired leaf", mk("CN=a.test", kl, inter, ki, 0, -100, -1, NULL,
                            serial++), inter, NULL, 0);
    CASE("leaf not yet valid", mk("CN=a.test", kl, inter, ki, 0, 2, 80, NULL,
                                  serial++), inter, NULL, 0);
    CASE("expired intermediate",
         leaf, mk("CN=Memo Inter", ki, root, kr, 1, -50, -2, NULL, serial++),
         NULL, 0);
    CASE("leaf signed by another key", mk("CN=a.test", kl, inter, kx, 0,
                                          -10, 80, NULL, serial++),
         inter, NULL, 0);
    CASE("intermediate signed by another key",
         leaf, mk("CN=Memo Inter", ki, root, kx, 1, -50, 500, NULL, serial++),
         NULL, 0);
    noku = mk("CN=Memo Inter", ki, root, kr, 1, -50, 500,
              "critical,digitalSignature", serial++);
    CASE("intermediate without keyCertSign",
         mk("CN=a.test", kl, noku, ki, 0, -10, 80, NULL, serial++), noku,
         NULL, 0);
    CASE("root without keyCertSign, self-signature checked",
         mk("CN=a.test", kl, noku, ki, 0, -10, 80, NULL, serial++), noku,
         NULL, X509_V_FLAG_CHECK_SS_SIGNATURE);
    /* an invalid issuer (an extension twice): its keyUsage read from
     * the extension, not from what OpenSSL caches of a valid one */
    inv = mk("CN=Memo Inter", ki, root, kr, 1, -50, 500,
             "critical,digitalSignature", serial++);
    unit_ext(inv, root, NID_subject_key_identifier, "hash");
    if (X509_sign(inv, kr, EVP_sha256()) == 0) {
        unit_bail("X509_sign");
    }
    CASE("invalid intermediate without keyCertSign",
         mk("CN=a.test", kl, inv, ki, 0, -10, 80, NULL, serial++), inv,
         NULL, 0);
    invss = mk("CN=Memo Self", ki, NULL, NULL, 1, -50, 500,
               "critical,digitalSignature", serial++);
    unit_ext(invss, NULL, NID_subject_key_identifier, "hash");
    if (X509_sign(invss, ki, EVP_sha256()) == 0) {
        unit_bail("X509_sign");
    }
    CASE("invalid self-signed CA without keyCertSign, self-signature checked",
         invss, NULL, NULL,
         X509_V_FLAG_CHECK_SS_SIGNATURE | X509_V_FLAG_PARTIAL_CHAIN);
    CASE("no intermediate sent", leaf, NULL, NULL, 0);
    CASE("no intermediate, partial chains", leaf, NULL, NULL,
         X509_V_FLAG_PARTIAL_CHAIN);
    CASE("self-signed leaf", mk("CN=a.test", kl, NULL, NULL, 0, -10, 80,
                                NULL, serial++), NULL, NULL, 0);
    CASE("self-signed leaf, checked", x[cases - 1][0], NULL, NULL,
         X509_V_FLAG_CHECK_SS_SIGNATURE | X509_V_FLAG_PARTIAL_CHAIN);
    CASE("intermediate sent twice", leaf, inter, inter, 0);
    /* validity at the second of the check (2026-01-01T00:00:00Z), one
     * either side of it, as GeneralizedTime, and out of range */
    for (i = 0; i < (int) (sizeof(times) / sizeof(times[0])); i++) {
        CASE(times[i].what,
             retime(mk("CN=a.test", kl, inter, ki, 0, -10, 80, NULL,
                       serial++),
                    ki, times[i].after, times[i].der),
             inter, NULL, 0);
    }
    CASE("expired leaf, expired intermediate, wrong key",
         mk("CN=a.test", kl, inter, kx, 0, -100, -1, NULL, serial++),
         mk("CN=Memo Inter", ki, root, kr, 1, -50, -2, NULL, serial++),
         NULL, X509_V_FLAG_PARTIAL_CHAIN);

    mem = malloc(64 * 1024);
    cg_memo_table_init(mem, 64 * 1024);
    memo.lookup = cg_memo_table_lookup;
    memo.insert = cg_memo_table_insert;
    memo.data = mem;
    cur_memo = &memo;

    for (i = 0; i < cases; i++) {
        r0 = run(&t0, root, x[i][0], &x[i][1], nx[i], fl[i], 0, &e0);
        r1 = run(&t1, root, x[i][0], &x[i][1], nx[i], fl[i], 1, &e1);
        r2 = run(&t2, root, x[i][0], &x[i][1], nx[i], fl[i], 1, &e2);

        ok(r0 == r1 && e0 == e1 && trace_eq(&t0, &t1),
           "%s: the memo's step, memo cold, as OpenSSL's (%d calls, "
           "%d errors, error %d)", what[i], t0.n, trace_errors(&t0), e0);
        ok(r0 == r2 && e0 == e2 && trace_eq(&t0, &t2),
           "%s: ... and with what it memorized", what[i]);
    }

    is_int(steps, 2 * cases, "the memo's step ran in each of those");

    /* the same without a memo at all */
    cur_memo = NULL;
    for (i = 0; i < cases; i++) {
        r0 = run(&t0, root, x[i][0], &x[i][1], nx[i], fl[i], 0, &e0);
        r1 = run(&t1, root, x[i][0], &x[i][1], nx[i], fl[i], 1, &e1);
        ok(r0 == r1 && e0 == e1 && trace_eq(&t0, &t1),
           "%s: the step without a memo as OpenSSL's", what[i]);
    }

    free(mem);
    pool_free();

    EVP_PKEY_free(kr);
    EVP_PKEY_free(ki);
    EVP_PKEY_free(kl);
    EVP_PKEY_free(kx);
}


static void
test_eval(void)
{
    int               i;
    void             *mem;
    long              serial;
    X509             *root, *inter, *leaf, *leaf2, *forged;
    EVP_PKEY         *kr, *ki, *kl;
    cg_input_t        in;
    cg_result_t       a, b;
    cg_policy_t      *p;
    cg_trust_t       *trust;
    cg_memo_stats_t   st, st2;
    cg_verify_memo_t  memo;
    STACK_OF(X509)   *sk;

    kr = unit_key();
    ki = unit_key();
    kl = unit_key();
    serial = 500;

    root = mk("CN=Eval Root", kr, NULL, NULL, 1, -100, 1000, NULL, serial++);
    inter = mk("CN=Eval Inter", ki, root, kr, 1, -50, 500, NULL, serial++);
    leaf = mk("CN=a.test", kl, inter, ki, 0, -10, 80, NULL, serial++);
    leaf2 = mk("CN=a.test", kl, inter, ki, 0, -9, 81, NULL, serial++);

    /* the genuine leaf's bytes with the last byte of its signature off */
    forged = flip(leaf, i2d_X509(leaf, NULL) - 1);
    ok(forged != NULL, "a forged copy of the leaf parses");

    p = unit_default_policy("memo");
    trust = unit_trust(root);

    mem = malloc(64 * 1024);
    cg_memo_table_init(mem, 64 * 1024);
    memo.lookup = cg_memo_table_lookup;
    memo.insert = cg_memo_table_insert;
    memo.data = mem;

    sk = sk_X509_new_null();
    sk_X509_push(sk, inter);

#define EVAL(l, m, r)                                                         \
    do {                                                                      \
        memset(&(r), 0, sizeof(r));                                           \
        if (cg_input_handshake(&in, p, trust, NULL, (l), sk, "a.test",        \
                               "192.0.2.7", 443, UNIT_NOW) != CG_OK) {        \
            unit_bail("input");                                               \
        }                                                                     \
        in.verify_memo = (m);                                                 \
        if (cg_evaluate(&in, &(r)) != CG_OK) {                                \
            unit_bail("evaluate");                                            \
        }                                                                     \
    } while (0)

    EVAL(leaf, NULL, a);
    ok(a.trusted, "the chain verifies without a memo");

    EVAL(leaf, &memo, b);
    cg_memo_table_stats(mem, &st);
    ok(memcmp(&a, &b, sizeof(a)) == 0, "the same result with a cold memo");
    is_int(st.hits, 0, "cold: no hit");
    is_int(st.inserts, 2, "cold: two signatures memorized");

    EVAL(leaf, &memo, b);
    cg_memo_table_stats(mem, &st2);
    ok(memcmp(&a, &b, sizeof(a)) == 0, "the same result from the memo");
    is_int(st2.hits - st.hits, 2, "warm: both signatures were hits");
    is_int(st2.inserts, 2, "warm: nothing checked, nothing memorized");

    EVAL(leaf2, &memo, b);
    cg_memo_table_stats(mem, &st);
    ok(b.trusted, "a new leaf under the known intermediate verifies");
    is_int(st.hits - st2.hits, 1, "... the intermediate's signature a hit");
    is_int(st.inserts - st2.inserts, 1, "... the new leaf's checked once");

    /* the memo holds the genuine leaf: its forged copy must still fail */
    EVAL(forged, NULL, a);
    EVAL(forged, &memo, b);
    ok(!a.trusted, "the forged leaf fails without a memo");
    ok(!b.trusted, "the forged leaf fails with the genuine one memorized");
    ok(memcmp(&a, &b, sizeof(a)) == 0, "... with the same result");
    cg_memo_table_stats(mem, &st2);
    is_int(st2.inserts, st.inserts, "a failed signature is not memorized");

    for (i = 0; i < 3; i++) {
        EVAL(i == 2 ? forged : leaf, &memo, b);
    }
    ok(!b.trusted, "still failing after the genuine leaf's hits");

    sk_X509_free(sk);
    free(mem);
    cg_trust_free(trust);
    cg_policy_free(p);
    X509_free(forged);
    pool_free();
    EVP_PKEY_free(kr);
    EVP_PKEY_free(ki);
    EVP_PKEY_free(kl);
}


/* leaf and n sent under t, without the memo and with it: one result */
static void
eval_both(const char *what, cg_policy_t *p, cg_trust_t *t, X509 *leaf,
    X509 **sent, int n, cg_verify_memo_t *memo)
{
    int              i, k;
    cg_input_t       in;
    cg_result_t      r[2];
    STACK_OF(X509)  *sk;

    sk = sk_X509_new_null();
    for (i = 0; i < n; i++) {
        sk_X509_push(sk, sent[i]);
    }

    for (k = 0; k < 2; k++) {
        memset(&r[k], 0, sizeof(r[k]));
        if (cg_input_handshake(&in, p, t, NULL, leaf, sk, "a.test",
                               "192.0.2.7", 443, UNIT_NOW) != CG_OK)
        {
            unit_bail("input");
        }
        in.verify_memo = k ? memo : NULL;
        if (cg_evaluate(&in, &r[k]) != CG_OK) {
            unit_bail("evaluate");
        }
    }

    ok(r[0].trusted, "%s: verifies without the memo", what);
    ok(memcmp(&r[0], &r[1], sizeof(r[0])) == 0,
       "%s: the same result with it (%s)", what,
       r[1].hits[0].detail);

    sk_X509_free(sk);
}


/*
 * With the memo, chain building may skip OpenSSL's validity preference
 * (cg_facts_one_issuer()) only where there is nothing to prefer between:
 * a re-issued root (same name and key, one expired) in the store, or an
 * expired copy of the intermediate sent before the valid one, must give
 * the path OpenSSL's preference gives.  Each order is tried.
 */
static void
test_one_issuer(void)
{
    void             *mem;
    long              serial;
    X509             *old, *cur, *iold, *icur, *leaf, *sent[2], *roots[2];
    EVP_PKEY         *kr, *ki, *kl;
    cg_policy_t      *p;
    cg_trust_t       *t;
    cg_verify_memo_t  memo;

    kr = unit_key();
    ki = unit_key();
    kl = unit_key();
    serial = 900;

    old = mk("CN=Dup Root", kr, NULL, NULL, 1, -100, -1, NULL, serial++);
    cur = mk("CN=Dup Root", kr, NULL, NULL, 1, -100, 1000, NULL, serial++);
    iold = mk("CN=Dup Inter", ki, cur, kr, 1, -50, -2, NULL, serial++);
    icur = mk("CN=Dup Inter", ki, cur, kr, 1, -50, 500, NULL, serial++);
    leaf = mk("CN=a.test", kl, icur, ki, 0, -10, 80, NULL, serial++);

    p = unit_default_policy("one-issuer");

    mem = malloc(64 * 1024);
    cg_memo_table_init(mem, 64 * 1024);
    memo.lookup = cg_memo_table_lookup;
    memo.insert = cg_memo_table_insert;
    memo.data = mem;

    roots[0] = old;
    roots[1] = cur;
    t = unit_trust_n(roots, 2);
    sent[0] = icur;
    eval_both("re-issued root, the expired one first", p, t, leaf, sent, 1,
              &memo);
    cg_trust_free(t);

    roots[0] = cur;
    roots[1] = old;
    t = unit_trust_n(roots, 2);
    eval_both("re-issued root, the valid one first", p, t, leaf, sent, 1,
              &memo);
    cg_trust_free(t);

    t = unit_trust(cur);
    sent[0] = iold;
    sent[1] = icur;
    eval_both("expired copy of the intermediate sent first", p, t, leaf,
              sent, 2, &memo);
    sent[0] = icur;
    sent[1] = iold;
    eval_both("expired copy of the intermediate sent second", p, t, leaf,
              sent, 2, &memo);
    sent[0] = icur;
    eval_both("one of each name (the fast path)", p, t, leaf, sent, 1,
              &memo);
    cg_trust_free(t);

    free(mem);
    cg_policy_free(p);
    pool_free();
    EVP_PKEY_free(kr);
    EVP_PKEY_free(ki);
    EVP_PKEY_free(kl);
}


int
main(void)
{
    long              serial;
    EVP_PKEY         *kr, *kl;
    X509             *root, *leaf;

    unit_setup();

    ok(cg_memo_supported(), "the running libcrypto is 3.0 (%s)",
       OpenSSL_version(OPENSSL_VERSION));

    test_table();

    kr = unit_key();
    kl = unit_key();
    serial = 1;
    root = mk("CN=Key Root", kr, NULL, NULL, 1, -100, 1000, NULL, serial++);
    leaf = mk("CN=a.test", kl, root, kr, 0, -10, 80, NULL, serial++);
    test_key(root, leaf);
    pool_free();
    EVP_PKEY_free(kr);
    EVP_PKEY_free(kl);

    test_step();
    test_eval();
    test_one_issuer();

    unit_cleanup();

    (void) unit_eval;

    return done_testing();
}
