/*
 * What OpenSSL's own steps cost natively, for one leaf under its issuer:
 * the floor of a new leaf is X509_verify(), not `openssl speed`'s bare
 * verify, and the parse nginx pays for every certificate received is the
 * yardstick of everything else.  callgrind cannot give these: under
 * valgrind OpenSSL takes its generic code paths.
 *
 *   openssl_costs LEAF.pem ISSUER.pem [N]
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>


static double
now(void)
{
    struct timespec  t;

    clock_gettime(CLOCK_MONOTONIC, &t);

    return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}


static X509 *
load(const char *path)
{
    FILE  *f;
    X509  *x;

    f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        exit(2);
    }

    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);

    if (x == NULL) {
        fprintf(stderr, "%s: no certificate\n", path);
        exit(2);
    }

    return x;
}


static void
report(const char *what, double t0, int n)
{
    printf("%-36s %8.2f us\n", what, (now() - t0) / n * 1e6);
}


int
main(int argc, char **argv)
{
    int                   i, n, len;
    X509                 *leaf, *issuer, *y;
    double                t0;
    EVP_PKEY             *key;
    unsigned int          mdlen;
    unsigned char         md[EVP_MAX_MD_SIZE], *der, *p;
    const unsigned char  *q;

    if (argc < 3) {
        fprintf(stderr, "usage: openssl_costs LEAF.pem ISSUER.pem [N]\n");
        return 2;
    }

    leaf = load(argv[1]);
    issuer = load(argv[2]);
    n = argc > 3 ? atoi(argv[3]) : 5000;
    key = X509_get0_pubkey(issuer);

    if (n <= 0 || key == NULL || X509_verify(leaf, key) != 1) {
        fprintf(stderr, "openssl_costs: the leaf does not verify\n");
        return 2;
    }

    (void) X509_get_extension_flags(leaf);

    t0 = now();
    for (i = 0; i < n; i++) {
        (void) X509_verify(leaf, key);
    }
    report("X509_verify", t0, n);

    t0 = now();
    for (i = 0; i < n; i++) {
        (void) X509_digest(leaf, EVP_sha256(), md, &mdlen);
    }
    report("X509_digest SHA-256", t0, n);

    /* the SPKI pin's digest, as cg_spki_sha256() makes it: the whole
     * SubjectPublicKeyInfo (X509_pubkey_digest() hashes the key alone) */
    t0 = now();
    for (i = 0; i < n; i++) {
        p = NULL;
        len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &p);
        (void) EVP_Digest(p, (size_t) len, md, &mdlen, EVP_sha256(), NULL);
        OPENSSL_free(p);
    }
    report("SPKI SHA-256 (i2d + digest)", t0, n);

    der = NULL;
    len = i2d_X509(leaf, &der);
    if (len <= 0) {
        return 2;
    }

    t0 = now();
    for (i = 0; i < n; i++) {
        q = der;
        y = d2i_X509(NULL, &q, len);
        X509_free(y);
    }
    report("d2i_X509", t0, n);

    t0 = now();
    for (i = 0; i < n; i++) {
        q = der;
        y = d2i_X509(NULL, &q, len);
        (void) X509_get_extension_flags(y);
        X509_free(y);
    }
    report("d2i_X509 + extensions cache", t0, n);

    t0 = now();
    for (i = 0; i < n; i++) {
        p = NULL;
        (void) i2d_X509(leaf, &p);
        OPENSSL_free(p);
    }
    report("i2d_X509", t0, n);

    OPENSSL_free(der);
    X509_free(leaf);
    X509_free(issuer);

    return 0;
}
