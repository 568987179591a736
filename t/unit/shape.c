/*
 * The signals of shapes no CA produces (cg_shape.c): malformed_name,
 * impossible_validity, bad_version, forged_issuer, issuer_key_reuse, each
 * asserted to fire and not to fire; and mimicked_ca quiet for a
 * public-looking leaf whose intermediate is not sent.  t/offensive.t runs
 * the same signals on offensive tools' defaults.
 */

#include "certs.h"
#include "tap.h"


static EVP_PKEY     *k_root, *k_leaf, *k_other;
static X509         *root;
static cg_trust_t   *trust;
static cg_policy_t  *pol;


static void
resign(X509 *x, EVP_PKEY *key)
{
    if (X509_sign(x, key, EVP_sha256()) == 0) {
        unit_bail("X509_sign");
    }
}


/* A name of raw attributes: countryName "Earth" and empty values, which
 * the MBSTRING_* forms refuse. */
static X509_NAME *
raw_name(const char *const *pairs)
{
    X509_NAME  *n = X509_NAME_new();

    for (/* void */; pairs[0]; pairs += 2) {
        if (!X509_NAME_add_entry_by_txt(n, pairs[0], V_ASN1_PRINTABLESTRING,
                                        (const unsigned char *) pairs[1],
                                        (int) strlen(pairs[1]), -1, 0))
        {
            unit_bail(pairs[0]);
        }
    }

    return n;
}


static const cg_hit_t *
hit(const cg_result_t *res, const char *id)
{
    unsigned  i;

    for (i = 0; i < res->nhits; i++) {
        if (strcmp(res->hits[i].id, id) == 0) {
            return &res->hits[i];
        }
    }

    return NULL;
}


static const char *
detail(const cg_result_t *res, const char *id)
{
    const cg_hit_t  *h = hit(res, id);

    return h ? h->detail : "(not fired)";
}


static void
eval(X509 *leaf, X509 **chain, int n, cg_result_t *res)
{
    if (unit_eval(pol, trust, leaf, chain, n, "shape.test", NULL, res)
        != CG_OK)
    {
        unit_bail("cg_evaluate");
    }
}


static void
test_malformed_name(void)
{
    static const char *const  earth[] = { "C", "Earth", "O", "cobaltstrike",
                                          NULL };
    static const char *const  lower[] = { "C", "pl", "CN", "pl", NULL };
    static const char *const  street[] = { "C", "US", "street", "",
                                           "CN", "localhost", NULL };
    X509         *x, *ca;
    X509_NAME    *n;
    cg_result_t   res;

    x = unit_cert("CN=shape.test", k_leaf, root, k_root, "DNS:shape.test",
                  0, 7);
    eval(x, NULL, 0, &res);
    ok(hit(&res, "malformed_name") == NULL, "malformed_name: not on an "
       "ordinary leaf");

    /* C=Earth, self-signed */
    n = raw_name(earth);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_NAME_free(n);
    resign(x, k_leaf);
    eval(x, NULL, 0, &res);
    is_str(detail(&res, "malformed_name"),
           "leaf subject: C \"Earth\" (+1 more)",
           "malformed_name: C=Earth in subject and issuer");

    /* lower-case country code */
    n = raw_name(lower);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    X509_NAME_free(n);
    resign(x, k_leaf);
    eval(x, NULL, 0, &res);
    is_str(detail(&res, "malformed_name"), "leaf subject: C \"pl\" (+1 more)",
           "malformed_name: C=pl");

    /* an empty value */
    n = raw_name(street);
    X509_set_subject_name(x, n);
    X509_NAME_free(n);
    X509_set_issuer_name(x, X509_get_subject_name(root));
    resign(x, k_root);
    eval(x, NULL, 0, &res);
    is_str(detail(&res, "malformed_name"), "leaf subject: empty street",
           "malformed_name: STREET=\"\"");
    X509_free(x);

    /* an empty issuer: the leaf of a CA without a name */
    ca = unit_cert("CN=x", k_other, NULL, NULL, NULL, 1, 8);
    n = X509_NAME_new();
    X509_set_subject_name(ca, n);
    X509_set_issuer_name(ca, n);
    X509_NAME_free(n);
    resign(ca, k_other);
    x = unit_cert("CN=shape.test", k_leaf, ca, k_other, "DNS:shape.test", 0,
                  9);
    eval(x, NULL, 0, &res);
    is_str(detail(&res, "malformed_name"), "leaf issuer is empty",
           "malformed_name: empty issuer");
    eval(x, &ca, 1, &res);
    is_str(detail(&res, "malformed_name"), "leaf issuer is empty (+1 more)",
           "malformed_name: and the sent CA's");
    X509_free(x);
    X509_free(ca);

    /* an empty subject: with a critical SAN fine, without one no name */
    x = unit_cert("CN=shape.test", k_leaf, root, k_root, NULL, 0, 10);
    n = X509_NAME_new();
    X509_set_subject_name(x, n);
    X509_NAME_free(n);
    resign(x, k_root);
    eval(x, NULL, 0, &res);
    is_str(detail(&res, "malformed_name"),
           "leaf names nothing (empty subject, no subjectAltName)",
           "malformed_name: a leaf naming nothing");
    unit_ext(x, root, NID_subject_alt_name, "critical,DNS:shape.test");
    resign(x, k_root);
    eval(x, NULL, 0, &res);
    ok(hit(&res, "malformed_name") == NULL, "malformed_name: not on an "
       "empty subject with a critical SAN (%s)",
       detail(&res, "malformed_name"));
    ok(res.verdict == CG_ALLOW, "empty subject, critical SAN, "
       "trusted: allowed");
    X509_free(x);
}


static void
test_impossible_validity(void)
{
    X509         *x;
    cg_result_t   res;

    x = unit_cert("CN=shape.test", k_leaf, root, k_root, "DNS:shape.test",
                  0, 11);
    eval(x, NULL, 0, &res);
    ok(hit(&res, "impossible_validity") == NULL, "impossible_validity: not "
       "on an ordinary leaf");

    ASN1_TIME_set(X509_getm_notBefore(x), 1579867200);
    ASN1_TIME_set(X509_getm_notAfter(x), 1579867200);
    resign(x, k_root);
    eval(x, NULL, 0, &res);
    is_str(detail(&res, "impossible_validity"),
           "leaf notAfter 2020-01-24T12:00:00Z not after notBefore "
           "2020-01-24T12:00:00Z", "impossible_validity: zero lifetime");

    ASN1_TIME_set(X509_getm_notAfter(x), 1579867200 - 1);
    resign(x, k_root);
    eval(x, NULL, 0, &res);
    ok(hit(&res, "impossible_validity") != NULL, "impossible_validity: "
       "negative lifetime");

    if (!ASN1_TIME_set_string_X509(X509_getm_notBefore(x), "00010101000000Z")
        || !ASN1_TIME_set_string_X509(X509_getm_notAfter(x),
                                      "00010101000000Z"))
    {
        unit_bail("year 1");
    }
    resign(x, k_root);
    eval(x, NULL, 0, &res);
    ok(strstr(detail(&res, "impossible_validity"), "before 1950") != NULL,
       "impossible_validity: year 1 (%s)", detail(&res,
                                                   "impossible_validity"));
    X509_free(x);
}


static void
test_bad_version(void)
{
    X509                 *x, *y;
    unsigned char        *der, *p;
    const unsigned char  *q;
    int                   len, i;
    cg_result_t           res;

    x = unit_cert("CN=shape.test", k_leaf, root, k_root, "DNS:shape.test",
                  0, 12);
    eval(x, NULL, 0, &res);
    ok(hit(&res, "bad_version") == NULL, "bad_version: not on v3");

    /* the version field written as 3, as M2Crypto's set_version(3) does;
     * the signature no longer matters to this signal */
    der = NULL;
    len = i2d_X509(x, &der);
    for (p = der, i = 0; i + 5 <= len; i++) {
        if (memcmp(p + i, "\xa0\x03\x02\x01\x02", 5) == 0) {
            p[i + 4] = 3;
            break;
        }
    }
    q = der;
    y = d2i_X509(NULL, &q, len);
    OPENSSL_free(der);
    ok(y != NULL, "a version 3 field parses");

    if (y) {
        eval(y, NULL, 0, &res);
        is_str(detail(&res, "bad_version"),
               "leaf version field 3 (X.509 has 0 to 2, v1 to v3)",
               "bad_version: fires");
        X509_free(y);
    }

    X509_free(x);
}


static void
test_forged_issuer(void)
{
    X509_NAME    *n;
    X509         *x;
    cg_result_t   res;

    x = unit_cert("CN=shape.test", k_leaf, root, k_root, "DNS:shape.test",
                  0, 13);
    eval(x, NULL, 0, &res);
    ok(hit(&res, "forged_issuer") == NULL, "forged_issuer: not on a "
       "CA-issued leaf");

    /* another issuer's name, the leaf's own key */
    n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                               (const unsigned char *) "Lisa Gerald", -1, -1,
                               0);
    X509_set_issuer_name(x, n);
    X509_NAME_free(n);
    resign(x, k_leaf);
    eval(x, NULL, 0, &res);
    is_str(detail(&res, "forged_issuer"),
           "issuer CN=Lisa Gerald, signed by the leaf's own key",
           "forged_issuer: an invented issuer");
    ok(hit(&res, "self_signed") == NULL, "forged_issuer: not self_signed");

    /* the root's name, the leaf's key: still forged, and untrusted */
    X509_set_issuer_name(x, X509_get_subject_name(root));
    resign(x, k_leaf);
    eval(x, NULL, 0, &res);
    ok(hit(&res, "forged_issuer") != NULL && hit(&res, "untrusted_chain"),
       "forged_issuer: a real CA's name");
    X509_free(x);

    /* self-signed: self_signed's, not this */
    x = unit_cert("CN=shape.test", k_leaf, NULL, NULL, "DNS:shape.test", 0,
                  14);
    eval(x, NULL, 0, &res);
    ok(hit(&res, "forged_issuer") == NULL && hit(&res, "self_signed"),
       "forged_issuer: not on a self-signed leaf");
    X509_free(x);
}


static void
test_issuer_key_reuse(void)
{
    X509         *x, *ca, *chain[2];
    cg_trust_t   *t2;
    cg_result_t   res;

    ca = unit_cert("CN=mitm CA", k_other, NULL, NULL, NULL, 1, 15);

    /* an ordinary leaf of that CA */
    x = unit_cert("CN=shape.test", k_leaf, ca, k_other, "DNS:shape.test", 0,
                  16);
    eval(x, &ca, 1, &res);
    ok(hit(&res, "issuer_key_reuse") == NULL, "issuer_key_reuse: not on "
       "a leaf with its own key");
    X509_free(x);

    /* the leaf with its CA's key, the CA sent */
    x = unit_cert("CN=shape.test", k_other, ca, k_other, "DNS:shape.test", 0,
                  17);
    eval(x, &ca, 1, &res);
    is_str(detail(&res, "issuer_key_reuse"),
           "leaf key is the key of depth 1 (CN=mitm CA)",
           "issuer_key_reuse: the sent CA's key");

    /* the CA not sent but trusted: the anchor's key */
    t2 = unit_trust(ca);
    if (unit_eval(pol, t2, x, NULL, 0, "shape.test", NULL, &res) != CG_OK) {
        unit_bail("cg_evaluate");
    }
    is_str(detail(&res, "issuer_key_reuse"),
           "leaf key is the key of anchor (CN=mitm CA)",
           "issuer_key_reuse: the anchor's key, chain trusted");
    ok(res.trusted, "issuer_key_reuse: the chain itself verifies");
    cg_trust_free(t2);

    X509_free(x);

    /* a self-signed leaf sent twice (its own issuer, by name) is no CA */
    x = unit_cert("CN=shape.test", k_leaf, NULL, NULL, "DNS:shape.test", 0,
                  18);
    chain[0] = x;
    chain[1] = x;
    eval(x, chain, 2, &res);
    ok(hit(&res, "issuer_key_reuse") == NULL, "issuer_key_reuse: not on "
       "the leaf sent twice (%s)", detail(&res, "issuer_key_reuse"));
    ok(hit(&res, "self_signed") != NULL, "the leaf sent twice: self_signed");
    X509_free(x);
    X509_free(ca);
}


/* An SCT list extension of n SCTs (v1, empty extensions, a 4-byte
 * signature): OpenSSL parses them, nobody verifies them here. */
static void
add_scts(X509 *x, int n)
{
    int                 i, len;
    unsigned char       buf[512], *p;
    ASN1_OCTET_STRING  *os;
    X509_EXTENSION     *ext;

    p = buf + 2;

    for (i = 0; i < n; i++) {
        *p++ = 0;
        *p++ = 49;                          /* this SCT's length */
        *p++ = 0;                           /* v1 */
        memset(p, 0x40 + i, 32);            /* log id */
        p += 32;
        memset(p, 0, 8);                    /* timestamp */
        p[5] = 1;
        p += 8;
        *p++ = 0;                           /* no extensions */
        *p++ = 0;
        *p++ = 4;                           /* sha256 */
        *p++ = 3;                           /* ecdsa */
        *p++ = 0;
        *p++ = 2;
        *p++ = 0x30;
        *p++ = 0x00;
    }

    len = (int) (p - buf);
    buf[0] = (unsigned char) ((len - 2) >> 8);
    buf[1] = (unsigned char) (len - 2);

    /* the extension's value is an OCTET STRING holding the TLS list */
    os = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(os, buf, len);
    p = NULL;
    len = i2d_ASN1_OCTET_STRING(os, &p);
    ASN1_OCTET_STRING_set(os, p, len);
    OPENSSL_free(p);

    ext = X509_EXTENSION_create_by_NID(NULL, NID_ct_precert_scts, 0, os);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(os);
}


static void
test_mimicked_missing(void)
{
    X509         *inter, *x;
    cg_result_t   res;
    char          text[512];
    cg_policy_t  *saved;

    snprintf(text, sizeof(text), "list public_ca %s;\n",
             unit_file("public.list", "DigiCert\n"));
    saved = pol;
    pol = unit_policy("mimic", text);

    inter = unit_cert("CN=DigiCert SHA2 Secure Server CA,O=DigiCert Inc",
                      k_other, NULL, NULL, NULL, 1, 20);

    /* the intermediate not sent: an issuer merely missing, not mimicry */
    x = unit_cert("CN=shape.test", k_leaf, inter, k_other, "DNS:shape.test",
                  0, 21);
    add_scts(x, 3);
    resign(x, k_other);
    eval(x, NULL, 0, &res);
    ok(hit(&res, "mimicked_ca") == NULL,
       "mimicked_ca: quiet when the public CA's name is merely not sent");
    ok(res.verdict == CG_TAG, "mimicked_ca: such a leaf tags (untrusted)");

    /* the fake CA sent, self-issued, known to no bundle: full weight */
    eval(x, &inter, 1, &res);
    ok(hit(&res, "mimicked_ca") && hit(&res, "mimicked_ca")->weight == 60,
       "mimicked_ca: full weight with the fake CA sent (%s)",
       detail(&res, "mimicked_ca"));
    ok(res.verdict == CG_BLOCK, "mimicked_ca: that blocks");

    X509_free(x);
    X509_free(inter);
    cg_policy_free(pol);
    pol = saved;
}


int
main(void)
{
    unit_setup();

    k_root = unit_key();
    k_leaf = unit_key();
    k_other = unit_key();
    root = unit_cert("CN=Shape Root,O=Unit", k_root, NULL, NULL, NULL, 1, 1);
    trust = unit_trust(root);
    pol = unit_policy("shape", "name shape;\n");

    test_malformed_name();
    test_impossible_validity();
    test_bad_version();
    test_forged_issuer();
    test_issuer_key_reuse();
    test_mimicked_missing();

    cg_policy_free(pol);
    cg_trust_free(trust);
    X509_free(root);
    EVP_PKEY_free(k_root);
    EVP_PKEY_free(k_leaf);
    EVP_PKEY_free(k_other);
    unit_cleanup();

    return done_testing();
}
