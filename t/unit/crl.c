/*
 * CRL sets (cg_crls_load): PEM and DER files, several CRLs a file, several
 * files a set, and files that fail without changing the set.  The CRLs are
 * made here with OpenSSL's API (a fresh EC key, one revoked serial), into
 * files of a scratch directory; t/revocation.t checks them against chains.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cg_facts.h"
#include "tap.h"


static char  dir[] = "/tmp/certguard-unit-crl-XXXXXX";


static X509_CRL *
make_crl(EVP_PKEY *key, const char *cn, long serial)
{
    X509_CRL      *crl;
    X509_NAME     *name;
    X509_REVOKED  *rev;
    ASN1_TIME     *t;
    ASN1_INTEGER  *s;

    crl = X509_CRL_new();
    name = X509_NAME_new();
    rev = X509_REVOKED_new();
    t = ASN1_TIME_set(NULL, 1767225600);    /* 2026-01-01 */
    s = ASN1_INTEGER_new();

    if (crl == NULL || name == NULL || rev == NULL || t == NULL || s == NULL
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       (const unsigned char *) cn, -1, -1, 0)
        || !X509_CRL_set_version(crl, X509_CRL_VERSION_2)
        || !X509_CRL_set_issuer_name(crl, name)
        || !X509_CRL_set1_lastUpdate(crl, t)
        || !ASN1_INTEGER_set(s, serial)
        || !X509_REVOKED_set_serialNumber(rev, s)
        || !X509_REVOKED_set_revocationDate(rev, t)
        || !X509_CRL_add0_revoked(crl, rev)
        || !X509_CRL_sort(crl)
        || !X509_CRL_sign(crl, key, EVP_sha256()))
    {
        printf("Bail out! cannot make a CRL\n");
        exit(1);
    }

    X509_NAME_free(name);
    ASN1_TIME_free(t);
    ASN1_INTEGER_free(s);

    return crl;
}


static const char *
path_of(const char *file)
{
    static char  p[4][256];
    static int   i;

    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, file);

    return p[i];
}


static void
write_bytes(const char *file, const void *data, size_t len, const char *how)
{
    FILE  *f;

    f = fopen(path_of(file), how);
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        printf("Bail out! cannot write %s\n", file);
        exit(1);
    }
}


static void
write_crl(const char *file, X509_CRL *crl, int pem, const char *how)
{
    int             n;
    BIO            *bio;
    char           *data;
    long            len;
    unsigned char  *der, *p;

    if (pem) {
        bio = BIO_new(BIO_s_mem());
        if (bio == NULL || !PEM_write_bio_X509_CRL(bio, crl)) {
            printf("Bail out! PEM_write_bio_X509_CRL\n");
            exit(1);
        }

        len = BIO_get_mem_data(bio, &data);
        write_bytes(file, data, (size_t) len, how);
        BIO_free(bio);
        return;
    }

    n = i2d_X509_CRL(crl, NULL);
    der = malloc((size_t) n);
    p = der;

    if (der == NULL || i2d_X509_CRL(crl, &p) != n) {
        printf("Bail out! i2d_X509_CRL\n");
        exit(1);
    }

    write_bytes(file, der, (size_t) n, how);
    free(der);
}


int
main(void)
{
    static const char  junk[] = "-----BEGIN X509 CRL-----\n"
                                "bm90IGEgQ1JM\n"
                                "-----END X509 CRL-----\n";
    static const char  key_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                                   "AAAA\n"
                                   "-----END PRIVATE KEY-----\n";
    static const char *files[] = { "a.pem", "a.der", "ab.der", "mixed.pem",
                                   "nocrl.pem", "bad.pem", "empty.pem",
                                   "badb64.pem", "trunc.der", NULL };
    int         rc;
    EVP_PKEY   *key;
    X509_CRL   *a, *b;
    cg_crls_t  *set, *kept;
    cg_error_t  err;

    if (mkdtemp(dir) == NULL) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }

    key = EVP_EC_gen("P-256");
    if (key == NULL) {
        printf("Bail out! EVP_EC_gen\n");
        return 1;
    }

    a = make_crl(key, "unit crl a", 1001);
    b = make_crl(key, "unit crl b", 1002);

    write_crl("a.pem", a, 1, "wb");
    write_crl("a.der", a, 0, "wb");
    write_crl("ab.der", a, 0, "wb");
    write_crl("ab.der", b, 0, "ab");
    /* a key block before the CRL and text between: skipped */
    write_bytes("mixed.pem", key_pem, sizeof(key_pem) - 1, "wb");
    write_bytes("mixed.pem", "some text\n", 10, "ab");
    write_crl("mixed.pem", b, 1, "ab");
    write_bytes("nocrl.pem", key_pem, sizeof(key_pem) - 1, "wb");
    write_crl("bad.pem", a, 1, "wb");
    write_bytes("bad.pem", junk, sizeof(junk) - 1, "ab");
    write_bytes("empty.pem", "", 0, "wb");
    write_crl("badb64.pem", a, 1, "wb");
    write_bytes("badb64.pem", "-----BEGIN X509 CRL-----\n!!!!\n", 30, "ab");
    write_crl("trunc.der", a, 0, "wb");
    write_bytes("trunc.der", "\x30\x82\x05\x00\x01", 5, "ab");

    memset(&err, 0, sizeof(err));
    is_int(cg_crls_load(NULL, path_of("a.pem"), &err), CG_ERR_ARG,
           "no set to fill: CG_ERR_ARG");

    set = NULL;
    is_int(cg_crls_load(&set, path_of("missing.pem"), &err), CG_ERR_IO,
           "a missing file: CG_ERR_IO");
    ok(set == NULL, "a missing file: no set made");
    ok(strstr(err.msg, "cannot open") != NULL && strstr(err.file, "missing"),
       "a missing file: the message and the file");

    rc = cg_crls_load(&set, path_of("a.pem"), &err);
    is_int(rc, CG_OK, "PEM: loads");
    is_int(cg_crls_count(set), 1, "PEM: one CRL");

    kept = set;
    is_int(cg_crls_load(&set, path_of("ab.der"), &err), CG_OK,
           "two DER CRLs concatenated: load");
    ok(set == kept, "a second file extends the same set");
    is_int(cg_crls_count(set), 3, "two DER CRLs: three in the set");

    is_int(cg_crls_load(&set, path_of("mixed.pem"), &err), CG_OK,
           "a key block and text before the CRL: skipped");
    is_int(cg_crls_count(set), 4, "mixed PEM: its one CRL added");

    is_int(cg_crls_load(&set, path_of("bad.pem"), &err), CG_ERR_INPUT,
           "a good CRL then a malformed one: CG_ERR_INPUT");
    ok(strstr(err.msg, "PEM block 2") != NULL, "the bad block is named");
    is_int(cg_crls_count(set), 4, "a bad file adds nothing, not even its "
           "good CRL");

    is_int(cg_crls_load(&set, path_of("nocrl.pem"), &err), CG_ERR_INPUT,
           "a PEM file without a CRL: CG_ERR_INPUT");
    ok(strstr(err.msg, "no X509 CRL") != NULL, "... says so");
    is_int(cg_crls_load(&set, path_of("badb64.pem"), &err), CG_ERR_INPUT,
           "a good CRL then a block that is not base64: CG_ERR_INPUT");
    ok(strstr(err.msg, "PEM block 2 is malformed") != NULL,
       "... block 2 named");
    is_int(cg_crls_load(&set, path_of("empty.pem"), &err), CG_ERR_INPUT,
           "an empty file: CG_ERR_INPUT");
    is_int(cg_crls_load(&set, path_of("trunc.der"), &err), CG_ERR_INPUT,
           "DER with a truncated second CRL: CG_ERR_INPUT");
    ok(strstr(err.msg, "CRL 2 at byte") != NULL, "... names where");
    is_int(cg_crls_count(set), 4, "the set is as it was");

    cg_crls_free(set);
    cg_crls_free(NULL);

    set = NULL;
    is_int(cg_crls_load(&set, path_of("a.der"), &err), CG_OK,
           "a lone DER CRL loads");
    is_int(cg_crls_count(set), 1, "... one CRL");
    cg_crls_free(set);

    X509_CRL_free(a);
    X509_CRL_free(b);
    EVP_PKEY_free(key);

    for (rc = 0; files[rc]; rc++) {
        (void) unlink(path_of(files[rc]));
    }

    (void) rmdir(dir);

    return done_testing();
}
