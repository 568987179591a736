/*
 * cg_dn_print() (cg_dn.c) against the printer it stands in for,
 * X509_NAME_print_ex(XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB): every byte
 * value first, inside, last and alone in every string type, multi-valued
 * RDNs, attributes OpenSSL has no name for, long names, and random names.
 * Where cg_dn_print() prints, the bytes must be OpenSSL's; the common names
 * must not be left to OpenSSL, or the fast path would be dead.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "cg_internal.h"
#include "tap.h"


static BIO  *bio;
static long  printed, fallbacks, mismatches;


/* OpenSSL's form of the name, NUL-terminated in out; -1 on its error */

static int
openssl_dn(const X509_NAME *name, char *out, size_t size)
{
    long   n;
    char  *data;

    (void) BIO_reset(bio);

    if (X509_NAME_print_ex(bio, name, 0,
                           XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
    {
        return -1;
    }

    n = BIO_get_mem_data(bio, &data);
    if (n < 0 || (size_t) n >= size) {
        return -1;
    }

    memcpy(out, data, (size_t) n);
    out[n] = '\0';

    return (int) n;
}


/* 1 when cg_dn_print() agrees with OpenSSL or leaves the name to it */

static int
same(const X509_NAME *name, int must_print)
{
    int   a, b;
    char  mine[2048], theirs[8192];

    a = cg_dn_print(name, mine, sizeof(mine));
    b = openssl_dn(name, theirs, sizeof(theirs));

    if (a < 0) {
        fallbacks++;
        if (must_print) {
            if (mismatches++ < 5) {
                printf("# left to OpenSSL: '%s'\n", b < 0 ? "" : theirs);
            }
            return 0;
        }
        return 1;
    }

    printed++;

    if (b != a || memcmp(mine, theirs, (size_t) a + 1) != 0) {
        if (mismatches++ < 5) {
            printf("# mine '%s'\n# openssl '%s'\n", mine, b < 0 ? "" : theirs);
        }
        return 0;
    }

    return 1;
}


static X509_NAME *
name1(int nid, int type, const unsigned char *v, int len)
{
    X509_NAME  *n;

    n = X509_NAME_new();
    if (n == NULL
        || X509_NAME_add_entry_by_NID(n, nid, type, v, len, -1, 0) != 1)
    {
        X509_NAME_free(n);
        return NULL;
    }

    return n;
}


/* the types a parsed name's value can have (X509_NAME_ENTRY's
 * DirectoryString and the rest OpenSSL's ASN1_PRINTABLE takes); the first
 * five are the ones cg_dn_print() prints */
static const int  types[] = {
    V_ASN1_UTF8STRING, V_ASN1_PRINTABLESTRING, V_ASN1_IA5STRING,
    V_ASN1_T61STRING, V_ASN1_NUMERICSTRING, V_ASN1_BMPSTRING,
    V_ASN1_UNIVERSALSTRING, V_ASN1_BIT_STRING
};

#define NFAST  5


/* a value of type t whose characters are v's bytes, in the type's width */

static X509_NAME *
name_typed(int t, const unsigned char *v, int len)
{
    int            i, w;
    unsigned char  wide[64];

    w = t == V_ASN1_BMPSTRING ? 2 : t == V_ASN1_UNIVERSALSTRING ? 4 : 1;
    if (w == 1) {
        return name1(NID_commonName, t, v, len);
    }

    memset(wide, 0, sizeof(wide));
    for (i = 0; i < len && (i + 1) * w <= (int) sizeof(wide); i++) {
        wide[(i + 1) * w - 1] = v[i];
    }

    return name1(NID_commonName, t, wide, i * w);
}


/* each byte alone, first, inside and last of a value, in each type */

static void
test_bytes(void)
{
    int             c, t, pos, bad, len, fast, plain;
    X509_NAME      *n;
    unsigned char   v[4];

    bad = 0;

    for (t = 0; t < (int) (sizeof(types) / sizeof(types[0])); t++) {
        for (c = 0; c < 256; c++) {
            for (pos = 0; pos < 4; pos++) {
                memcpy(v, "abc", 3);
                len = 3;

                switch (pos) {
                case 0: v[0] = (unsigned char) c; len = 1; break;
                case 1: v[0] = (unsigned char) c; break;
                case 2: v[1] = (unsigned char) c; break;
                default: v[2] = (unsigned char) c; break;
                }

                /* ASCII other than control characters, in the types
                 * certificates use, must not fall back */
                plain = c >= 0x20 && c < 0x7f;
                fast = plain && t < NFAST;

                /* the type given is the type kept (X509_NAME_ENTRY_set_data
                 * converts only an MBSTRING_ type), as a parsed name's */
                n = name_typed(types[t], v, len);
                if (n == NULL) {
                    bad++;
                    continue;
                }

                if (!same(n, fast)) {
                    bad++;
                }

                X509_NAME_free(n);
            }
        }
    }

    is_int(bad, 0, "every byte, first, inside, last and alone, in eight "
           "types: cg_dn_print() prints OpenSSL's bytes, and prints "
           "ASCII of the certificate string types itself");
}


/* the stored type is the one given, not OpenSSL's choice */

static void
test_types_kept(void)
{
    X509_NAME        *n;
    X509_NAME_ENTRY  *e;

    n = name1(NID_commonName, V_ASN1_T61STRING,
              (const unsigned char *) "x\xe9y", 3);
    ok(n != NULL, "a T61String name is made");
    if (n == NULL) {
        return;
    }

    e = X509_NAME_get_entry(n, 0);
    is_int(ASN1_STRING_type(X509_NAME_ENTRY_get_data(e)), V_ASN1_T61STRING,
           "the test's names keep the type they are given");
    ok(same(n, 1), "a Latin-1 byte of a T61String is printed as its UTF-8");

    X509_NAME_free(n);
}


static void
test_shapes(void)
{
    int          i;
    char         big[300], out[64];
    X509_NAME   *n;
    ASN1_OBJECT *unknown;

    /* several RDNs, one of them multi-valued */
    n = X509_NAME_new();
    ok(n
       && X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC,
                                     (const unsigned char *) "US", -1, -1, 0)
       && X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
                                     (const unsigned char *) "Example, Inc.",
                                     -1, -1, 0)
       && X509_NAME_add_entry_by_txt(n, "OU", MBSTRING_ASC,
                                     (const unsigned char *) "Ops", -1, -1, 0)
       && X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                     (const unsigned char *) "a+b",
                                     -1, -1, -1)
       && same(n, 1),
       "C, O with a comma, a multi-valued OU+CN: OpenSSL's order and "
       "separators");
    X509_NAME_free(n);

    /* an attribute OpenSSL has no name for is dumped by it, not here */
    n = X509_NAME_new();
    unknown = OBJ_txt2obj("1.3.6.1.4.1.55555.1", 1);
    ok(n && unknown
       && X509_NAME_add_entry_by_OBJ(n, unknown, V_ASN1_UTF8STRING,
                                     (const unsigned char *) "v", 1, -1, 0)
       && cg_dn_print(n, out, sizeof(out)) == -1 && same(n, 0),
       "an unnamed attribute is left to OpenSSL");
    ASN1_OBJECT_free(unknown);
    X509_NAME_free(n);

    /* the empty name, and one too long for the buffer */
    n = X509_NAME_new();
    ok(n && cg_dn_print(n, out, sizeof(out)) == 0 && out[0] == '\0'
       && same(n, 1), "the empty name prints as nothing");

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ok(n
       && X509_NAME_add_entry_by_txt(n, "CN", V_ASN1_UTF8STRING,
                                     (const unsigned char *) big, -1, -1, 0)
       && cg_dn_print(n, out, sizeof(out)) == -1,
       "a name longer than the buffer is left to OpenSSL");

    for (i = 0; i < 20; i++) {
        (void) X509_NAME_add_entry_by_txt(n, i % 2 ? "OU" : "DC",
                                          MBSTRING_ASC,
                                          (const unsigned char *) " #x ",
                                          -1, -1, i % 3 == 0 ? -1 : 0);
    }
    ok(n && same(n, 1), "a long name of many RDNs, values with leading "
       "and trailing spaces");
    X509_NAME_free(n);

    n = X509_NAME_new();
    ok(n && cg_dn_print(n, out, 0) == -1,
       "no room, not even for the NUL: left to OpenSSL");
    X509_NAME_free(n);
}


/* random names: random attributes, types, bytes and RDN grouping */

static void
test_random(void)
{
    int             i, j, k, len, t, bad, nids[8];
    unsigned int    seed;
    X509_NAME      *n;
    X509_NAME_ENTRY *e;
    unsigned char   v[24];

    nids[0] = NID_commonName;
    nids[1] = NID_organizationName;
    nids[2] = NID_organizationalUnitName;
    nids[3] = NID_countryName;
    nids[4] = NID_domainComponent;
    nids[5] = NID_pkcs9_emailAddress;
    nids[6] = NID_serialNumber;
    nids[7] = NID_localityName;

    seed = 20261202;
    bad = 0;

    for (i = 0; i < 20000; i++) {
        n = X509_NAME_new();
        if (n == NULL) {
            bad++;
            continue;
        }

        for (j = rand_r(&seed) % 6; j >= 0; j--) {
            len = rand_r(&seed) % (int) sizeof(v);
            for (k = 0; k < len; k++) {
                /* mostly printable ASCII, with the specials and high bytes */
                v[k] = (unsigned char) (rand_r(&seed) % 4
                                        ? 0x20 + rand_r(&seed) % 0x5f
                                        : rand_r(&seed) % 256);
            }

            t = types[rand_r(&seed) % NFAST];
            e = X509_NAME_ENTRY_create_by_NID(NULL, nids[rand_r(&seed) % 8],
                                              t, v, len);
            if (e == NULL || X509_NAME_ENTRY_set_data(e, t, v, len) != 1
                || X509_NAME_add_entry(n, e, -1, rand_r(&seed) % 4 ? 0 : -1)
                   != 1)
            {
                bad++;
            }
            X509_NAME_ENTRY_free(e);
        }

        if (!same(n, 0)) {
            bad++;
        }

        X509_NAME_free(n);
    }

    is_int(bad, 0, "20,000 random names: cg_dn_print() prints OpenSSL's "
           "bytes wherever it prints");
    ok(printed > 10000, "most of them were printed by cg_dn_print() (%ld "
       "printed, %ld left to OpenSSL)", printed, fallbacks);
}


int
main(void)
{
    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return 1;
    }

    test_bytes();
    test_types_kept();
    test_shapes();
    test_random();

    is_int(mismatches, 0, "no mismatch anywhere");

    BIO_free(bio);

    return done_testing();
}
