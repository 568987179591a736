/*
 * cg_input_t certs, the cache of decoded certificates sent above a leaf: a
 * chain scored through it reads byte for byte as one scored without it, new
 * leaves under a remembered intermediate and all; the same bytes parsed
 * again are evaluated as the object and facts kept for them, and one
 * changed byte is a certificate of its own (a flipped signature byte
 * fails verification after the good one was remembered, and the good one
 * verifies after it); a certificate sent twice stays two objects; the
 * anchor's facts are kept too, and so are the results of the policy's
 * name lists for the names of certificates above leaves.
 */

#include "certs.h"
#include "tap.h"

#include "cg_facts.h"


static EVP_PKEY     *k_root, *k_inter, *k_leaf;
static X509         *root, *inter;
static cg_policy_t  *def;
static cg_trust_t   *trust;


/* x decoded again from its DER: a new object of the same bytes; with
 * flip, the last byte (the signature's) changed */
static X509 *
reparse(X509 *x, int flip)
{
    int                   n;
    X509                 *y;
    unsigned char        *der;
    const unsigned char  *p;

    der = NULL;
    n = i2d_X509(x, &der);
    if (n <= 0) {
        unit_bail("i2d_X509");
    }

    if (flip) {
        der[n - 1] ^= 0x01;
    }

    p = der;
    y = d2i_X509(NULL, &p, n);
    OPENSSL_free(der);

    if (y == NULL) {
        unit_bail("d2i_X509");
    }

    return y;
}


/* leaf then n as sent, scored through certs (or none), as JSON */
static int
score(cg_certs_t *certs, X509 *leaf, X509 **sent, int n, char *out,
    size_t size)
{
    int              i, rc;
    cg_input_t       in;
    cg_result_t     *res;
    STACK_OF(X509)  *sk;

    res = calloc(1, sizeof(cg_result_t));
    sk = sk_X509_new_null();
    if (res == NULL || sk == NULL) {
        unit_bail("calloc");
    }

    for (i = 0; i < n; i++) {
        sk_X509_push(sk, sent[i]);
    }

    rc = cg_input_handshake(&in, def, trust, NULL, leaf, sk,
                            "www.example.test", "192.0.2.7", 443, UNIT_NOW);
    if (rc == CG_OK) {
        in.certs = certs;
        rc = cg_evaluate(&in, res);
    }

    if (rc == CG_OK && cg_format_json(res, out, size) >= size) {
        rc = CG_ERR_NOMEM;
    }

    sk_X509_free(sk);
    free(res);

    return rc;
}


/* the same chain with and without the cache: same status, same JSON */
static int
same_with_cache(cg_certs_t *certs, X509 *leaf, X509 **sent, int n,
    char *with)
{
    char  without[16384];

    if (score(NULL, leaf, sent, n, without, sizeof(without)) != CG_OK
        || score(certs, leaf, sent, n, with, 16384) != CG_OK)
    {
        return 0;
    }

    return strcmp(with, without) == 0;
}


static X509 *
new_leaf(long serial)
{
    return unit_cert("CN=www.example.test", k_leaf, inter, k_inter,
                     "DNS:www.example.test", 0, serial);
}


static void
test_new_leaves(cg_certs_t *certs)
{
    int    i, same, trusted;
    char   out[16384];
    X509  *leaf, *sent[2];

    same = 1;
    trusted = 1;

    /* every handshake parses its own copy of the intermediate */
    for (i = 0; i < 10; i++) {
        leaf = new_leaf(100 + i);
        sent[0] = reparse(inter, 0);
        sent[1] = reparse(root, 0);

        same &= same_with_cache(certs, leaf, sent, 2, out);
        trusted &= strstr(out, "\"trusted\":true") != NULL;

        X509_free(sent[0]);
        X509_free(sent[1]);
        X509_free(leaf);
    }

    ok(same, "ten new leaves: each scores as without the cache");
    ok(trusted, "ten new leaves: each verifies (%s)", out);
}


static void
test_found(cg_certs_t *certs)
{
    unsigned char      md[32];
    unsigned int       len;
    X509              *copy;
    cg_certs_found_t   found;

    copy = reparse(inter, 0);
    cg_certs_find(certs, copy, NULL, 0, &found);

    ok(found.x != NULL && found.x != copy,
       "the same bytes again: the object remembered for them");
    ok(found.facts != NULL
       && strcmp(found.facts->subject, "CN=cache inter") == 0
       && strcmp(found.facts->issuer, "CN=cache root") == 0,
       "their facts are kept: subject and issuer");

    len = 0;
    ok(found.facts != NULL && found.facts->digests
       && X509_digest(copy, EVP_sha256(), md, &len) == 1 && len == 32
       && memcmp(found.facts->sha256, md, 32) == 0,
       "their facts are kept: the SHA-256 of these bytes");

    X509_free(copy);

    copy = reparse(root, 0);
    cg_certs_find(certs, copy, NULL, 0, &found);
    ok(found.facts != NULL
       && strcmp(found.facts->subject, "CN=cache root") == 0,
       "the anchor's facts are kept too");
    X509_free(copy);

    copy = reparse(inter, 1);
    cg_certs_find(certs, copy, NULL, 0, &found);
    ok(found.x == copy && found.facts == NULL,
       "one changed byte: a certificate of its own, no facts yet");
    X509_free(copy);
}


/* good, flipped, good: the cache never lends one's verdict to the other */
static void
test_changed_byte(cg_certs_t *certs)
{
    int    i, same;
    char   out[3][16384];
    X509  *leaf, *sent[2];

    same = 1;
    leaf = new_leaf(200);

    for (i = 0; i < 3; i++) {
        sent[0] = reparse(inter, i == 1);
        sent[1] = reparse(root, 0);
        same &= same_with_cache(certs, leaf, sent, 2, out[i]);
        X509_free(sent[0]);
        X509_free(sent[1]);
    }

    X509_free(leaf);

    ok(same, "good, flipped, good: each scores as without the cache");
    ok(strstr(out[0], "\"trusted\":true") != NULL,
       "the good intermediate verifies");
    ok(strstr(out[1], "\"trusted\":false") != NULL,
       "its copy with a flipped signature byte does not (%s)", out[1]);
    ok(strstr(out[2], "\"trusted\":true") != NULL,
       "and the good one verifies again after it");
}


static void
test_sent_twice(cg_certs_t *certs)
{
    int    same;
    char   out[16384];
    X509  *leaf, *sent[3];

    leaf = new_leaf(300);
    sent[0] = reparse(inter, 0);
    sent[1] = reparse(inter, 0);
    sent[2] = reparse(root, 0);

    same = same_with_cache(certs, leaf, sent, 3, out)
           && same_with_cache(certs, leaf, sent, 3, out);

    ok(same, "the intermediate sent twice scores as without the cache");
    ok(strstr(out, "\"chain_len\":4") != NULL,
       "and counts as sent twice (%s)", out);

    X509_free(sent[0]);
    X509_free(sent[1]);
    X509_free(sent[2]);
    X509_free(leaf);
}


/* many intermediates pass: the cache stays bounded and keeps scoring */
static void
test_many(cg_certs_t *certs)
{
    int       i, same;
    char      out[16384], subject[64];
    X509     *other, *leaf, *sent[1];
    EVP_PKEY *k;

    same = 1;
    k = unit_key();

    for (i = 0; i < 300; i++) {
        snprintf(subject, sizeof(subject), "CN=passing inter %d", i);
        other = unit_cert(subject, k, root, k_root, NULL, 1, 1000 + i);
        leaf = unit_cert("CN=www.example.test", k_leaf, other, k,
                         "DNS:www.example.test", 0, 5000 + i);
        sent[0] = other;

        same &= same_with_cache(certs, leaf, sent, 1, out);

        X509_free(leaf);
        X509_free(other);
    }

    EVP_PKEY_free(k);

    ok(same, "300 intermediates: each scores as without the cache");
    ok(strstr(out, "\"trusted\":true") != NULL,
       "and the last one verifies (%s)", out);
}


/*
 * Which pattern a CA's name matched is kept with the decoded certificates:
 * two policies whose lists differ, used in turn through the same cache
 * (and a third loaded from the first's text, a list of its own), each get
 * their own list's answer, as without the cache.
 */
static void
test_name_matches(cg_certs_t *certs)
{
    int           i, same, hit, miss;
    char          out[16384], list[300];
    X509         *tool, *leaf, *sent[1];
    cg_policy_t  *saved, *pol[3];

    tool = unit_cert("O=Fake Tools,CN=tool inter", k_inter, root, k_root,
                     NULL, 1, 3);

    snprintf(list, sizeof(list), "list default_subject %s;\n",
             unit_file("fake.list", "O=Fake Tools\n"));
    pol[0] = unit_policy("fake", list);
    pol[2] = unit_policy("fake-again", list);
    snprintf(list, sizeof(list), "list default_subject %s;\n",
             unit_file("other.list", "O=Other Tools\n"));
    pol[1] = unit_policy("other", list);

    saved = def;
    same = 1;
    hit = 0;
    miss = 0;

    for (i = 0; i < 9; i++) {
        def = pol[i % 3];
        leaf = unit_cert("CN=www.example.test", k_leaf, tool, k_inter,
                         "DNS:www.example.test", 0, 7000 + i);
        sent[0] = reparse(tool, 0);

        same &= same_with_cache(certs, leaf, sent, 1, out);

        if (strstr(out, "leaf issuer matches \\\"O=Fake Tools\\\"")) {
            hit += i % 3 != 1;
        } else {
            miss += i % 3 == 1;
        }

        X509_free(sent[0]);
        X509_free(leaf);
    }

    def = saved;

    ok(same, "three policies in turn: each scores as without the cache");
    is_int(hit, 6, "the two with O=Fake Tools listed match the CA's name "
           "every time (%s)", out);
    is_int(miss, 3, "the one without never does");

    for (i = 0; i < 3; i++) {
        cg_policy_free(pol[i]);
    }
    X509_free(tool);
}


int
main(void)
{
    cg_certs_t  *certs;

    unit_setup();

    k_root = unit_key();
    k_inter = unit_key();
    k_leaf = unit_key();
    root = unit_cert("CN=cache root", k_root, NULL, NULL, NULL, 1, 1);
    inter = unit_cert("CN=cache inter", k_inter, root, k_root, NULL, 1, 2);

    def = unit_default_policy("default");
    trust = unit_trust(root);

    is_int(cg_certs_new(&certs), CG_OK, "cg_certs_new");

    test_new_leaves(certs);
    test_found(certs);
    test_changed_byte(certs);
    test_sent_twice(certs);
    test_many(certs);
    test_name_matches(certs);

    cg_certs_free(certs);

    cg_trust_free(trust);
    cg_policy_free(def);
    X509_free(inter);
    X509_free(root);
    EVP_PKEY_free(k_leaf);
    EVP_PKEY_free(k_inter);
    EVP_PKEY_free(k_root);

    unit_cleanup();

    return done_testing();
}
