/*
 * cg_cert_digests() (cg_der.c) against OpenSSL's two digests it stands in
 * for, X509_digest(SHA-256) and SHA-256 of i2d_X509_PUBKEY(): certificates
 * of every key type the engine meets, the fuzz seeds and the badssl chains
 * when ../shared has them, and copies whose SPKI is re-encoded out of DER
 * (a long length form, nonzero unused bits, an INTEGER padded) that OpenSSL
 * still parses, where the SPKI must come from OpenSSL's own encoding.
 */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "certguard.h"
#include "cg_internal.h"
#include "tap.h"


static int  checked, nfound, nfile;


static void
openssl_digests(X509 *x, unsigned char sha256[32], unsigned char spki[32])
{
    int             n;
    unsigned int    len;
    unsigned char  *der;

    memset(sha256, 0, 32);
    memset(spki, 0, 32);

    (void) X509_digest(x, EVP_sha256(), sha256, &len);

    der = NULL;
    n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
    if (n > 0) {
        (void) EVP_Digest(der, (size_t) n, spki, &len, EVP_sha256(), NULL);
    }
    OPENSSL_free(der);
}


/* 1 when cg_der_spki() finds in x's DER the bytes OpenSSL encodes as its
 * SPKI: the fast path, which must not fall back for DER certificates */

static int
found(X509 *x)
{
    int                   n, m, r;
    size_t                len;
    unsigned char        *der, *spki;
    const unsigned char  *s;

    der = NULL;
    spki = NULL;
    n = i2d_X509(x, &der);
    m = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);

    r = n > 0 && m > 0 && cg_der_spki(der, (size_t) n, &s, &len)
        && len == (size_t) m && memcmp(s, spki, len) == 0;

    OPENSSL_free(der);
    OPENSSL_free(spki);

    return r;
}


/* 1 when both digests are OpenSSL's, alone and together */

static int
same(X509 *x)
{
    int            done, a, b;
    unsigned char  want[32], wspki[32], got[32], gspki[32], only[32];

    openssl_digests(x, want, wspki);

    done = cg_cert_digests(x, got, gspki);
    a = cg_cert_digests(x, only, NULL);
    b = cg_cert_digests(x, NULL, only + 0);

    checked++;

    return done == (CG_DIGEST_CERT | CG_DIGEST_SPKI)
           && a == CG_DIGEST_CERT && b == CG_DIGEST_SPKI
           && memcmp(got, want, 32) == 0 && memcmp(gspki, wspki, 32) == 0
           && memcmp(only, wspki, 32) == 0;
}


static X509 *
make_cert(EVP_PKEY *key, int version, int serial_bytes)
{
    int            i;
    X509          *x;
    X509_NAME     *n;
    BIGNUM        *bn;
    unsigned char  s[40];

    x = X509_new();
    n = X509_NAME_new();
    bn = NULL;

    for (i = 0; i < serial_bytes; i++) {
        s[i] = (unsigned char) (0x80 + i);
    }

    if (x == NULL || n == NULL
        || X509_set_version(x, version) != 1
        || (bn = BN_bin2bn(s, serial_bytes, NULL)) == NULL
        || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL
        || X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                      (const unsigned char *) "der.test",
                                      -1, -1, 0) != 1
        || X509_set_subject_name(x, n) != 1
        || X509_set_issuer_name(x, n) != 1
        || X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL
        || X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL
        || X509_set_pubkey(x, key) != 1
        || X509_sign(x, key, EVP_PKEY_get_id(key) == EVP_PKEY_ED25519
                             ? NULL : EVP_sha256()) == 0)
    {
        printf("Bail out! a test certificate\n");
        exit(1);
    }

    BN_free(bn);
    X509_NAME_free(n);

    return x;
}


/* the certificate decoded again from its DER, as a handshake has it */

static X509 *
reparse(const unsigned char *der, int n)
{
    const unsigned char  *p;

    p = der;

    return d2i_X509(NULL, &p, n);
}


/* a DER header's length: its size, and the contents' length in *len */

static int
header(const unsigned char *p, size_t *len)
{
    int  i, k;

    if (!(p[1] & 0x80)) {
        *len = p[1];
        return 2;
    }

    k = p[1] & 0x7f;
    for (*len = 0, i = 0; i < k; i++) {
        *len = *len << 8 | p[2 + i];
    }

    return 2 + k;
}


static unsigned char *
put_header(unsigned char *p, unsigned char tag, size_t len)
{
    *p++ = tag;

    if (len < 0x80) {
        *p++ = (unsigned char) len;
    } else if (len < 0x100) {
        *p++ = 0x81;
        *p++ = (unsigned char) len;
    } else {
        *p++ = 0x82;
        *p++ = (unsigned char) (len >> 8);
        *p++ = (unsigned char) len;
    }

    return p;
}


/*
 * A copy of x's DER with its SPKI (an EC P-256 key's: 30 59, the algorithm
 * 30 13 ..., the key 03 42 00 04 ...) sent in a form that is BER but not
 * DER, the enclosing lengths grown to match: CONSTRUCTED 0, its length in
 * a needless long form (30 81 59); 1, the key's BIT STRING in BER's
 * constructed form, one primitive segment inside (23 44 03 42 ...).
 */

static X509 *
spki_ber(X509 *x, int how)
{
    int             n, h1, h2;
    size_t          l1, l2, i, rest, len, k;
    unsigned char  *der, spki[128], body[4096], out[4096], *p, *tbs;
    X509           *y;

    der = NULL;
    n = i2d_X509(x, &der);
    y = NULL;

    h1 = header(der, &l1);
    h2 = header(der + h1, &l2);
    tbs = der + h1 + h2;
    rest = (size_t) n - (size_t) (h1 + h2) - l2;    /* the signature */

    for (i = 0; i + 91 <= l2; i++) {
        if (tbs[i] != 0x30 || tbs[i + 1] != 0x59 || tbs[i + 2] != 0x30
            || tbs[i + 3] != 0x13 || tbs[i + 23] != 0x03
            || tbs[i + 24] != 0x42)
        {
            continue;
        }

        if (how == 0) {
            memcpy(spki, "\x30\x81\x59", 3);
            memcpy(spki + 3, tbs + i + 2, 89);
            k = 92;

        } else {
            memcpy(spki, "\x30\x5b", 2);
            memcpy(spki + 2, tbs + i + 2, 21);
            memcpy(spki + 23, "\x23\x44", 2);
            memcpy(spki + 25, tbs + i + 23, 68);
            k = 93;
        }

        /* tbsCertificate with the new SPKI, then the signature */
        p = put_header(body, 0x30, l2 - 91 + k);
        memcpy(p, tbs, i);
        p += i;
        memcpy(p, spki, k);
        p += k;
        memcpy(p, tbs + i + 91, l2 - i - 91);
        p += l2 - i - 91;
        memcpy(p, tbs + l2, rest);
        p += rest;

        len = (size_t) (p - body);
        p = put_header(out, 0x30, len);
        memcpy(p, body, len);
        y = reparse(out, (int) ((size_t) (p - out) + len));
        break;
    }

    OPENSSL_free(der);

    return y;
}


/* x's DER with the last byte of its SPKI's BIT STRING given unused bits */

static X509 *
spki_unused_bits(X509 *x)
{
    int             n, i;
    unsigned char  *der;
    X509           *y;

    der = NULL;
    n = i2d_X509(x, &der);
    y = NULL;

    for (i = 8; i + 3 < n; i++) {
        /* the P-256 point: 03 42 00 04 */
        if (der[i] == 0x03 && der[i + 1] == 0x42 && der[i + 2] == 0x00
            && der[i + 3] == 0x04)
        {
            der[i + 2] = 0x03;              /* three unused bits */
            der[i + 2 + 0x42 - 1] |= 0x05;  /* two of them set */
            y = reparse(der, n);
            break;
        }
    }

    OPENSSL_free(der);

    return y;
}


static void
test_generated(void)
{
    int        bad, i;
    X509      *x, *y;
    EVP_PKEY  *keys[4];

    keys[0] = EVP_RSA_gen(2048);
    keys[1] = EVP_EC_gen("P-256");
    keys[2] = EVP_EC_gen("P-384");
    keys[3] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

    bad = 0;

    for (i = 0; i < 4; i++) {
        if (keys[i] == NULL) {
            printf("Bail out! a test key\n");
            exit(1);
        }

        /* v3 and v1 (no version field), serials of 1 and 20 bytes */
        x = make_cert(keys[i], 2, 20);
        y = make_cert(keys[i], 0, 1);
        bad += !same(x) + !same(y) + !found(x) + !found(y);
        X509_free(x);
        X509_free(y);
    }

    is_int(bad, 0, "RSA, P-256, P-384 and Ed25519 certificates, v3 and v1: "
           "OpenSSL's two digests, the SPKI found in the DER");

    x = make_cert(keys[1], 2, 20);

    y = spki_ber(x, 0);
    ok(y != NULL, "a copy with the SPKI's length in a long form parses");
    if (y) {
        unsigned char  a[32], b[32];

        ok(same(y) && !found(y), "its SPKI digest is OpenSSL's "
           "re-encoding, not the bytes sent");
        openssl_digests(x, a, b);
        {
            unsigned char  c[32], d[32];

            openssl_digests(y, c, d);
            ok(memcmp(b, d, 32) == 0 && memcmp(a, c, 32) != 0,
               "(OpenSSL's SPKI of it is the original's; the certificate's "
               "digest is not)");
        }
        X509_free(y);
    }

    y = spki_ber(x, 1);
    ok(y != NULL, "a copy whose public key is a constructed BIT STRING "
       "parses");
    if (y) {
        ok(same(y) && !found(y), "its SPKI digest is OpenSSL's "
           "re-encoding");
        X509_free(y);
    }

    y = spki_unused_bits(x);
    ok(y != NULL, "a copy whose public key has set unused bits parses");
    if (y) {
        ok(same(y) && !found(y), "its SPKI digest is OpenSSL's "
           "re-encoding");
        X509_free(y);
    }

    X509_free(x);

    for (i = 0; i < 4; i++) {
        EVP_PKEY_free(keys[i]);
    }
}


static int
file_certs(const char *path, int *bad)
{
    int     n;
    FILE   *f;
    X509   *x;

    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }

    n = 0;
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        *bad += !same(x);
        nfound += found(x);
        nfile++;
        X509_free(x);
        n++;
    }

    fclose(f);

    if (n == 0) {
        const unsigned char  *p;
        unsigned char         buf[65536];
        size_t                len;

        f = fopen(path, "rb");
        if (f == NULL) {
            return 0;
        }

        len = fread(buf, 1, sizeof(buf), f);
        fclose(f);

        p = buf;
        x = d2i_X509(NULL, &p, (long) len);
        if (x) {
            *bad += !same(x);
            X509_free(x);
            n++;
        }
    }

    return n;
}


static int
dir_certs(const char *dir, int *bad)
{
    int             n;
    char            path[4096];
    DIR            *d;
    struct dirent  *e;

    d = opendir(dir);
    if (d == NULL) {
        return 0;
    }

    n = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        n += file_certs(path, bad);
    }

    closedir(d);

    return n;
}


int
main(void)
{
    int  bad, n;

    test_generated();

    bad = 0;
    n = dir_certs("t/fuzz/corpus/chain", &bad);
    ok(n >= 10, "the fuzz seeds' %d certificates were read", n);
    is_int(bad, 0, "the fuzz seeds' certificates: OpenSSL's two digests");

    bad = 0;
    n = dir_certs("../shared/corpus/badssl", &bad);
    if (n > 0) {
        is_int(bad, 0, "%d badssl certificates (the 10,000-SAN one too): "
               "OpenSSL's two digests", n);
    }

    ok(checked > 20, "%d certificates compared", checked);
    ok(nfile > 0 && nfound * 10 >= nfile * 9, "the SPKI was found in the "
       "DER of %d of the %d PEM certificates read", nfound, nfile);

    return done_testing();
}
