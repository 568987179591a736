/*
 * Many leaves under one intermediate, for the benchmarks of the cold path
 * with a new leaf on every handshake (bench/http.sh rows *-new,
 * bench/profile.sh).
 *
 *   leaves INT.pem INT.key LEAF.key DOMAIN N OUTDIR
 *
 * Writes OUTDIR/nI.DOMAIN.pem for I in 1..N: a normal 90-day server
 * certificate for nI.DOMAIN (CN and SAN), issued ten days ago by INT with a
 * random serial, followed by INT itself (the chain an upstream sends).
 * Every leaf has the same key (LEAF.key), so that one key file serves
 * them all; each is still its own certificate, whose signature nothing
 * has verified before.  About 40 µs a leaf with a P-256 intermediate, 1 ms
 * with an RSA 2048 one.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>


static void
die(const char *what)
{
    fprintf(stderr, "leaves: %s\n", what);
    exit(1);
}


static void
ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX       ctx;
    X509_EXTENSION  *e;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (e == NULL || !X509_add_ext(x, e, -1)) {
        die(value);
    }
    X509_EXTENSION_free(e);
}


int
main(int argc, char **argv)
{
    long        i, n;
    char        path[4096], name[512], san[600];
    FILE       *f;
    X509       *ca, *x;
    EVP_PKEY   *cakey, *key;
    BIGNUM     *bn;
    X509_NAME  *subj;
    time_t      now;

    if (argc != 7) {
        fprintf(stderr, "usage: leaves INT.pem INT.key LEAF.key DOMAIN N "
                "OUTDIR\n");
        return 2;
    }

    f = fopen(argv[1], "r");
    ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    f = fopen(argv[2], "r");
    cakey = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);
    f = fopen(argv[3], "r");
    key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f) fclose(f);

    if (ca == NULL || cakey == NULL || key == NULL) {
        die("cannot read the intermediate, its key or the leaf key");
    }

    n = atol(argv[5]);
    now = time(NULL);
    bn = BN_new();

    for (i = 1; i <= n; i++) {
        snprintf(name, sizeof(name), "n%ld.%s", i, argv[4]);
        snprintf(san, sizeof(san), "DNS:%s", name);

        x = X509_new();
        X509_set_version(x, 2);
        if (!BN_rand(bn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY)
            || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        {
            die("serial");
        }

        subj = X509_NAME_new();
        X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC,
                                   (unsigned char *) name, -1, -1, 0);
        X509_set_subject_name(x, subj);
        X509_NAME_free(subj);
        X509_set_issuer_name(x, X509_get_subject_name(ca));

        X509_time_adj_ex(X509_getm_notBefore(x), -10, 0, &now);
        X509_time_adj_ex(X509_getm_notAfter(x), 80, 0, &now);
        X509_set_pubkey(x, key);

        ext(x, ca, NID_basic_constraints, "CA:FALSE");
        ext(x, ca, NID_key_usage, "critical,digitalSignature");
        ext(x, ca, NID_ext_key_usage, "serverAuth");
        ext(x, ca, NID_subject_key_identifier, "hash");
        ext(x, ca, NID_authority_key_identifier, "keyid:always");
        ext(x, ca, NID_subject_alt_name, san);

        if (X509_sign(x, cakey, EVP_sha256()) == 0) {
            die("X509_sign");
        }

        snprintf(path, sizeof(path), "%s/%s.pem", argv[6], name);
        f = fopen(path, "w");
        if (f == NULL || !PEM_write_X509(f, x) || !PEM_write_X509(f, ca)
            || fclose(f) != 0)
        {
            die(path);
        }

        X509_free(x);
    }

    BN_free(bn);
    X509_free(ca);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(key);

    return 0;
}
