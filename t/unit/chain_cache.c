/*
 * cg_chain_parse_cached(): a certificate parsed before is the same object
 * again, a chain never holds one object twice, and every input gives what
 * cg_chain_parse() gives (status, message, certificates), whatever the
 * cache holds; a run of many distinct certificates keeps it bounded and
 * keeps the one they share.
 */

#include "certs.h"
#include "tap.h"


static EVP_PKEY  *k_root, *k_leaf;
static X509      *root, *inter;


static long
pem_of(X509 *const *xs, int n, char *buf, long size)
{
    int    i;
    long   len;
    char  *data;
    BIO   *bio;

    bio = BIO_new(BIO_s_mem());

    for (i = 0; i < n; i++) {
        PEM_write_bio_X509(bio, xs[i]);
    }

    len = BIO_get_mem_data(bio, &data);
    if (len > size) {
        unit_bail("pem_of: buffer too small");
    }

    memcpy(buf, data, (size_t) len);
    BIO_free(bio);

    return len;
}


/* Both parses of the same bytes agree: status, message, certificates. */
static int
same_as_uncached(cg_certs_t *certs, const unsigned char *data, size_t len)
{
    int              rc1, rc2, i, same;
    cg_error_t       e1, e2;
    STACK_OF(X509)  *s1, *s2;

    memset(&e1, 0, sizeof(e1));
    memset(&e2, 0, sizeof(e2));

    rc1 = cg_chain_parse(data, len, &s1, &e1);
    rc2 = cg_chain_parse_cached(data, len, certs, &s2, &e2);

    same = rc1 == rc2 && strcmp(e1.msg, e2.msg) == 0
           && (s1 == NULL) == (s2 == NULL)
           && (s1 == NULL || sk_X509_num(s1) == sk_X509_num(s2));

    for (i = 0; same && s1 && i < sk_X509_num(s1); i++) {
        same = X509_cmp(sk_X509_value(s1, i), sk_X509_value(s2, i)) == 0;
    }

    if (!same) {
        printf("# uncached %d \"%s\", cached %d \"%s\"\n", rc1, e1.msg, rc2,
               e2.msg);
    }

    sk_X509_pop_free(s1, X509_free);
    sk_X509_pop_free(s2, X509_free);

    return same;
}


static void
test_shared(cg_certs_t *certs)
{
    int              rc;
    char             pem[8192];
    long             len;
    X509            *leaf, *xs[3];
    cg_error_t       err;
    STACK_OF(X509)  *a, *b;

    leaf = unit_cert("CN=a.test", k_leaf, inter, k_root, "DNS:a.test", 0, 10);
    xs[0] = leaf;
    xs[1] = inter;
    len = pem_of(xs, 2, pem, sizeof(pem));

    rc = cg_chain_parse_cached((unsigned char *) pem, (size_t) len, certs, &a,
                               &err);
    is_int(rc, CG_OK, "cached: a chain parses");
    rc = cg_chain_parse_cached((unsigned char *) pem, (size_t) len, certs, &b,
                               &err);
    is_int(rc, CG_OK, "cached: the same chain again");

    ok(a && b && sk_X509_value(a, 1) == sk_X509_value(b, 1)
       && sk_X509_value(a, 0) == sk_X509_value(b, 0),
       "cached: the second parse gives the objects of the first");
    ok(a && X509_cmp(sk_X509_value(a, 1), inter) == 0,
       "cached: and they are the certificates sent");

    sk_X509_pop_free(a, X509_free);
    sk_X509_pop_free(b, X509_free);

    /* the intermediate twice in one chain: two objects, as uncached */
    xs[2] = inter;
    len = pem_of(xs, 3, pem, sizeof(pem));
    rc = cg_chain_parse_cached((unsigned char *) pem, (size_t) len, certs, &a,
                               &err);
    is_int(rc, CG_OK, "cached: a chain with a certificate twice");
    ok(a && sk_X509_num(a) == 3
       && sk_X509_value(a, 1) != sk_X509_value(a, 2)
       && X509_cmp(sk_X509_value(a, 1), sk_X509_value(a, 2)) == 0,
       "cached: a chain never holds one object twice");
    sk_X509_pop_free(a, X509_free);

    X509_free(leaf);
}


/* The bucket cg_certs.c puts a DER in (FNV-1a of its length and last 32
 * bytes, 128 buckets): the test needs two certificates that meet there,
 * which a random signature gives once in 128 leaves. */
static unsigned
bucket_of(X509 *x)
{
    int             i, n;
    uint32_t        h;
    unsigned char  *der;

    der = NULL;
    n = i2d_X509(x, &der);
    h = 2166136261u;

    for (i = 0; i < 4; i++) {
        h = (h ^ (((unsigned) n >> (8 * i)) & 0xff)) * 16777619u;
    }

    for (i = n > 32 ? n - 32 : 0; i < n; i++) {
        h = (h ^ der[i]) * 16777619u;
    }

    OPENSSL_free(der);

    return h % 128;
}


/* a leaf that shares its intermediate's bucket: both stay, and the
 * second parse gives the first's objects (direct-mapped, they took each
 * other's place on every parse) */
static void
test_same_bucket(void)
{
    int              i, rc, same;
    char             pem[8192], cn[32];
    long             len;
    X509            *leaf, *xs[2];
    cg_certs_t      *certs;
    cg_error_t       err;
    STACK_OF(X509)  *a, *b;

    leaf = NULL;

    for (i = 0; i < 4000; i++) {
        snprintf(cn, sizeof(cn), "CN=b%d.test", i);
        leaf = unit_cert(cn, k_leaf, inter, k_root, NULL, 0, 5000 + i);

        if (bucket_of(leaf) == bucket_of(inter)) {
            break;
        }

        X509_free(leaf);
        leaf = NULL;
    }

    if (leaf == NULL) {
        unit_bail("no leaf in the intermediate's bucket in 4000 tries");
    }

    xs[0] = leaf;
    xs[1] = inter;
    len = pem_of(xs, 2, pem, sizeof(pem));
    same = 1;

    if (cg_certs_new(&certs) != CG_OK) {
        unit_bail("cg_certs_new");
    }

    a = NULL;
    rc = cg_chain_parse_cached((unsigned char *) pem, (size_t) len, certs, &a,
                               &err);

    for (i = 0; rc == CG_OK && i < 3; i++) {
        rc = cg_chain_parse_cached((unsigned char *) pem, (size_t) len,
                                   certs, &b, &err);
        if (rc != CG_OK) {
            break;
        }

        same = same && sk_X509_value(a, 0) == sk_X509_value(b, 0)
               && sk_X509_value(a, 1) == sk_X509_value(b, 1);
        sk_X509_pop_free(b, X509_free);
    }

    is_int(rc, CG_OK, "same bucket: the chain parses");
    ok(same, "same bucket: the leaf and its intermediate both stay");

    sk_X509_pop_free(a, X509_free);
    cg_certs_free(certs);
    X509_free(leaf);
}


static void
test_same_errors(cg_certs_t *certs)
{
    int             n, i, all;
    long            len, k;
    char            pem[8192];
    unsigned char   der[8192], *p, bad[8192];
    X509           *xs[2];

    xs[0] = inter;
    xs[1] = root;
    len = pem_of(xs, 2, pem, sizeof(pem));

    /* the certificates are in the cache now */
    ok(same_as_uncached(certs, (unsigned char *) pem, (size_t) len),
       "same: PEM chain");
    ok(same_as_uncached(certs, (unsigned char *) pem, (size_t) len),
       "same: PEM chain, cached");

    p = der;
    n = i2d_X509(inter, &p);
    i2d_X509(root, &p);
    k = p - der;

    ok(same_as_uncached(certs, der, (size_t) k), "same: DER chain");
    ok(same_as_uncached(certs, der, (size_t) n), "same: one DER certificate");

    /* trailing bytes, truncation, every prefix, a byte changed */
    memcpy(bad, der, (size_t) k);
    bad[k] = 0x30;
    bad[k + 1] = 0x82;
    ok(same_as_uncached(certs, bad, (size_t) k + 2),
       "same: DER with trailing bytes");

    all = 1;
    for (i = 1; i < k && all; i += 5) {
        all = same_as_uncached(certs, der, (size_t) i);
    }
    ok(all, "same: every DER prefix");

    all = 1;
    for (i = 0; i < n && all; i += 3) {
        memcpy(bad, der, (size_t) k);
        bad[i] ^= 0x01;
        all = same_as_uncached(certs, bad, (size_t) k);
    }
    ok(all, "same: DER with any byte of the first certificate changed");

    all = 1;
    for (i = 1; i < len && all; i += 11) {
        all = same_as_uncached(certs, (unsigned char *) pem, (size_t) i);
    }
    ok(all, "same: every PEM prefix");
}


static void
test_bounded(cg_certs_t *certs)
{
    int              i, rc, kept, n;
    char             pem[8192], cn[32];
    long             len;
    X509            *xs[2], *first;
    cg_error_t       err;
    STACK_OF(X509)  *sk;

    first = NULL;
    kept = 1;
    n = 300;        /* more than the cache's 256 slots */

    for (i = 0; i < n; i++) {
        snprintf(cn, sizeof(cn), "CN=h%d.test", i);
        xs[0] = unit_cert(cn, k_leaf, inter, k_root, NULL, 0, 100 + i);
        xs[1] = inter;
        len = pem_of(xs, 2, pem, sizeof(pem));
        X509_free(xs[0]);

        rc = cg_chain_parse_cached((unsigned char *) pem, (size_t) len, certs,
                                   &sk, &err);
        if (rc != CG_OK) {
            kept = 0;
            break;
        }

        if (first == NULL) {
            first = sk_X509_value(sk, 1);
            X509_up_ref(first);

        } else if (sk_X509_value(sk, 1) != first) {
            kept = 0;
        }

        sk_X509_pop_free(sk, X509_free);
    }

    ok(kept, "bounded: the shared intermediate stays across %d leaves", n);
    X509_free(first);
}


/* A chain scored from cached objects reads as one scored from fresh
 * ones, the second time as the first (the trust's anchors hold their
 * digests, the objects what OpenSSL cached on them). */
static void
test_evaluate(cg_certs_t *certs)
{
    int              i, rc, same;
    char             pem[8192];
    char             out[3][16384];
    long             len;
    X509            *leaf, *xs[3];
    cg_error_t       err;
    cg_trust_t      *trust;
    cg_policy_t     *def;
    cg_result_t     *res;
    STACK_OF(X509)  *sk;

    def = unit_default_policy("default");
    trust = unit_trust(root);

    leaf = unit_cert("CN=www.example.test", k_leaf, inter, k_root,
                     "DNS:www.example.test", 0, 20);
    xs[0] = leaf;
    xs[1] = inter;
    xs[2] = root;
    len = pem_of(xs, 3, pem, sizeof(pem));
    X509_free(leaf);

    res = calloc(1, sizeof(cg_result_t));
    if (res == NULL) {
        unit_bail("calloc");
    }

    same = 1;

    for (i = 0; i < 3; i++) {
        out[i][0] = '\0';
        sk = NULL;

        rc = i == 0 ? cg_chain_parse((unsigned char *) pem, (size_t) len,
                                     &sk, &err)
                    : cg_chain_parse_cached((unsigned char *) pem,
                                            (size_t) len, certs, &sk, &err);

        if (rc != CG_OK || sk_X509_num(sk) != 3) {
            same = 0;

        } else {
            xs[0] = sk_X509_value(sk, 1);
            xs[1] = sk_X509_value(sk, 2);

            if (unit_eval(def, trust, sk_X509_value(sk, 0), xs, 2,
                          "www.example.test", NULL, res)
                != CG_OK
                || cg_format_json(res, out[i], sizeof(out[i]))
                   >= sizeof(out[i]))
            {
                same = 0;
            }
        }

        sk_X509_pop_free(sk, X509_free);
    }

    ok(same, "evaluate: fresh, cached and cached again all score");
    is_str(out[1], out[0], "evaluate: cached objects score as fresh ones");
    is_str(out[2], out[0], "evaluate: and again");
    ok(strstr(out[0], "\"trusted\":true") != NULL,
       "evaluate: the chain verifies (%s)", out[0]);

    free(res);
    cg_trust_free(trust);
    cg_policy_free(def);
}


int
main(void)
{
    cg_certs_t  *certs;

    unit_setup();

    k_root = unit_key();
    k_leaf = unit_key();
    root = unit_cert("CN=cache root", k_root, NULL, NULL, NULL, 1, 1);
    inter = unit_cert("CN=cache inter", k_root, root, k_root, NULL, 1, 2);

    is_int(cg_certs_new(&certs), CG_OK, "cg_certs_new");

    test_shared(certs);
    test_same_errors(certs);
    test_bounded(certs);
    test_same_bucket();
    test_evaluate(certs);

    cg_certs_free(certs);
    cg_certs_free(NULL);

    X509_free(inter);
    X509_free(root);
    EVP_PKEY_free(k_leaf);
    EVP_PKEY_free(k_root);

    unit_cleanup();

    return done_testing();
}
