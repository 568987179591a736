/*
 * Engine unit tests: certificates are built here with the OpenSSL API (no
 * checked-in blobs that expire), evaluated at a fixed time, and every
 * built-in signal is asserted to fire and not to fire.  Policies are built
 * in memory, so that these tests pin the engine and not the parser; one
 * section at the end goes through cg_policy_load() from a file.
 */

#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cg_internal.h"
#include "tap.h"


#define DAY         86400
#define NOW         1767225600      /* 2026-01-01T00:00:00Z */


/* What a test certificate looks like; zero values mean sensible defaults. */
typedef struct {
    const char     *subject;        /* "/CN=x/O=y" */
    EVP_PKEY       *key;            /* the certificate's key */
    X509           *issuer;         /* NULL: self-signed */
    EVP_PKEY       *issuer_key;
    int64_t         not_before;     /* 0: NOW - 30d */
    int64_t         not_after;      /* 0: not_before + 90d */
    const char     *san;            /* "DNS:a,IP:1.2.3.4", NULL: none */
    const EVP_MD   *md;             /* NULL: SHA-256 */
    int             ca;
    int             sct;            /* add an SCT list extension */
    long            serial;         /* 0: a counter */
} spec_t;


static EVP_PKEY     *k_ca, *k_int, *k_leaf, *k_other;
static char          tmpdir[] = "/tmp/cg-unit-XXXXXX";


static EVP_PKEY *
ec_key(const char *curve)
{
    EVP_PKEY  *k = EVP_EC_gen(curve);

    if (k == NULL) {
        printf("Bail out! cannot generate an EC %s key\n", curve);
        exit(1);
    }

    return k;
}


static void
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX       ctx;
    X509_EXTENSION  *ext;

    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);

    if (ext == NULL) {
        printf("Bail out! extension %d %s\n", nid, value);
        exit(1);
    }

    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
}


static X509 *
mkcert(const spec_t *s)
{
    static long       serial = 1000;
    X509             *x;
    X509_NAME        *name;
    ASN1_INTEGER     *sn;
    ASN1_OCTET_STRING *os;
    X509_EXTENSION   *ext;
    int64_t           nb, na;
    EVP_PKEY         *sign_key;

    x = X509_new();
    X509_set_version(x, 2);

    sn = ASN1_INTEGER_new();
    ASN1_INTEGER_set(sn, s->serial ? s->serial : serial++);
    X509_set_serialNumber(x, sn);
    ASN1_INTEGER_free(sn);

    name = X509_NAME_new();
    if (s->subject[0] == '/') {
        X509_NAME_free(name);
        name = X509_NAME_new();
        {
            char  *copy = strdup(s->subject + 1), *part, *save, *eq;

            for (part = strtok_r(copy, "/", &save); part;
                 part = strtok_r(NULL, "/", &save))
            {
                eq = strchr(part, '=');
                *eq = '\0';
                /* as typed, even where a profile forbids it (C=Earth) */
                if (!X509_NAME_add_entry_by_txt(name, part, MBSTRING_UTF8,
                                                (unsigned char *) eq + 1,
                                                -1, -1, 0))
                {
                    X509_NAME_add_entry_by_txt(name, part,
                                               V_ASN1_UTF8STRING,
                                               (unsigned char *) eq + 1,
                                               -1, -1, 0);
                }
            }

            free(copy);
        }
    }

    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, s->issuer ? X509_get_subject_name(s->issuer)
                                      : name);
    X509_NAME_free(name);

    nb = s->not_before ? s->not_before : NOW - 30 * DAY;
    na = s->not_after ? s->not_after : nb + 90 * DAY;
    ASN1_TIME_set(X509_getm_notBefore(x), (time_t) nb);
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t) na);

    X509_set_pubkey(x, s->key);

    add_ext(x, s->issuer, NID_subject_key_identifier, "hash");
    if (s->issuer) {
        add_ext(x, s->issuer, NID_authority_key_identifier, "keyid:always");
    }

    if (s->ca) {
        add_ext(x, s->issuer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, s->issuer, NID_key_usage, "critical,keyCertSign,cRLSign");

    } else {
        add_ext(x, s->issuer, NID_basic_constraints, "CA:FALSE");
        add_ext(x, s->issuer, NID_ext_key_usage, "serverAuth");
    }

    if (s->san) {
        add_ext(x, s->issuer, NID_subject_alt_name, s->san);
    }

    if (s->sct) {
        /* presence is what no_sct looks at: an empty TLS list */
        os = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(os, (const unsigned char *) "\x04\x02\x00\x00",
                              4);
        ext = X509_EXTENSION_create_by_NID(NULL, NID_ct_precert_scts, 0, os);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        ASN1_OCTET_STRING_free(os);
    }

    sign_key = s->issuer ? s->issuer_key : s->key;

    if (X509_sign(x, sign_key, s->md ? s->md : EVP_sha256()) == 0) {
        printf("Bail out! X509_sign failed for %s\n", s->subject);
        ERR_print_errors_fp(stdout);
        exit(1);
    }

    return x;
}


static char *
write_pem(const char *file, X509 **certs, int n)
{
    static char  path[256];
    FILE        *fp;
    int          i;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, file);
    fp = fopen(path, "w");
    for (i = 0; i < n; i++) {
        PEM_write_X509(fp, certs[i]);
    }

    fclose(fp);

    return path;
}


static cg_policy_t *
policy_new(void)
{
    unsigned      i;
    cg_policy_t  *p;

    p = calloc(1, sizeof(cg_policy_t));
    strcpy(p->name, "unit");
    p->tag_threshold = 30;
    p->block_threshold = 70;

    for (i = 0; i < cg_signal_count(); i++) {
        p->weight[i] = cg_signal_default_weight(i);
    }

    return p;
}


static void
policy_list(cg_policy_t *p, cg_list_kind_t kind, const char *pattern)
{
    cg_error_t  err;

    if (cg_patlist_add(&p->lists[kind], pattern, 0, &err) != CG_OK) {
        printf("Bail out! pattern %s: %s\n", pattern, err.msg);
        exit(1);
    }
}


static cg_rule_t *
policy_rule(cg_policy_t *p, const char *id, cg_field_t field,
    const char *pattern, int weight)
{
    cg_rule_t   *r;
    cg_error_t   err;

    p->rules = realloc(p->rules, (p->nrules + 1) * sizeof(cg_rule_t));
    r = &p->rules[p->nrules++];
    memset(r, 0, sizeof(cg_rule_t));
    strcpy(r->id, id);
    r->field = field;
    r->weight = weight;

    if (cg_pattern_compile(&r->pattern, pattern, 0, &err) != CG_OK) {
        printf("Bail out! rule pattern %s: %s\n", pattern, err.msg);
        exit(1);
    }

    return r;
}


static cg_exempt_t *
policy_exempt(cg_policy_t *p)
{
    cg_exempt_t  *ex;

    p->exempts = realloc(p->exempts,
                         (p->nexempts + 1) * sizeof(cg_exempt_t));
    ex = &p->exempts[p->nexempts++];
    memset(ex, 0, sizeof(cg_exempt_t));
    ex->all = 1;

    return ex;
}


static void
policy_free(cg_policy_t *p)
{
    size_t  i, k;

    for (i = 0; i < CG_LIST_MAX; i++) {
        cg_patlist_free(&p->lists[i]);
    }

    cg_digestset_free(&p->blocklist);

    for (i = 0; i < p->nrules; i++) {
        cg_pattern_free(&p->rules[i].pattern);
        free(p->rules[i].detail);
    }

    for (i = 0; i < p->nexempts; i++) {
        cg_patlist_free(&p->exempts[i].sni);
        cg_patlist_free(&p->exempts[i].issuer);
        cg_patlist_free(&p->exempts[i].subject);
        cg_digestset_free(&p->exempts[i].fingerprint);
        cg_digestset_free(&p->exempts[i].issuer_spki);
        cg_digestset_free(&p->exempts[i].issuer_fingerprint);
        free(p->exempts[i].dst);
        for (k = 0; k < p->exempts[i].nrules; k++) {
            free(p->exempts[i].rules[k]);
        }
        free(p->exempts[i].rules);
    }

    free(p->rules);
    free(p->exempts);
    free(p->geo_country);
    free(p->geo_asn);
    free(p);
}


/* Evaluate leaf + chain (chain as sent, without the leaf). */
static int
eval(const cg_policy_t *p, const cg_trust_t *trust, X509 *leaf,
    X509 **chain, int n, const char *name, cg_result_t *res)
{
    int              i, rc;
    cg_input_t       in;
    STACK_OF(X509)  *sk;

    memset(&in, 0, sizeof(cg_input_t));
    sk = NULL;

    if (n) {
        sk = sk_X509_new_null();
        for (i = 0; i < n; i++) {
            sk_X509_push(sk, chain[i]);
        }
    }

    in.policy = p;
    in.trust = trust;
    in.leaf = leaf;
    in.chain = sk;
    in.name = name;
    in.now = NOW;

    rc = cg_evaluate(&in, res);
    sk_X509_free(sk);

    return rc;
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


static int
fired(const cg_result_t *res, const char *id)
{
    return hit(res, id) != NULL;
}


static const char *
detail(const cg_result_t *res, const char *id)
{
    const cg_hit_t  *h = hit(res, id);

    return h ? h->detail : "(not fired)";
}


/* The ids of a result, for diagnostics. */
static void
diag_hits(const cg_result_t *res)
{
    unsigned  i;

    for (i = 0; i < res->nhits; i++) {
        printf("#   hit %s %d%s: %s\n", res->hits[i].id, res->hits[i].weight,
               res->hits[i].exempt ? " (exempt)" : "", res->hits[i].detail);
    }
}


static int
has_control(const char *s)
{
    for (/* void */; *s; s++) {
        if ((unsigned char) *s < 0x20 || *s == 0x7f) {
            return 1;
        }
    }

    return 0;
}


/* The fixture: root CA -> intermediate -> leaf, all EC P-256. */
static X509          *ca, *inter, *leaf, *other_ca;
static cg_trust_t    *trust, *other_trust, *private_trust;


static X509 *
mkleaf(const char *subject, const char *san, int64_t nb, int64_t na)
{
    spec_t  s;

    memset(&s, 0, sizeof(spec_t));
    s.subject = subject;
    s.key = k_leaf;
    s.issuer = inter;
    s.issuer_key = k_int;
    s.san = san;
    s.not_before = nb;
    s.not_after = na;
    s.sct = 1;

    return mkcert(&s);
}


static void
test_chain_parse(void)
{
    int              rc, i, len;
    unsigned char   *der, *p, buf[4096];
    BIO             *bio;
    char            *pem;
    long             pemlen;
    cg_error_t       err;
    STACK_OF(X509)  *sk;

    /* PEM with two certificates and text around them */
    bio = BIO_new(BIO_s_mem());
    BIO_puts(bio, "depth=0 CN = www.example.com\n");
    PEM_write_bio_X509(bio, leaf);
    BIO_puts(bio, "some text in between\n");
    PEM_write_bio_X509(bio, inter);
    pemlen = BIO_get_mem_data(bio, &pem);

    rc = cg_chain_parse((unsigned char *) pem, pemlen, &sk, &err);
    is_int(rc, CG_OK, "chain_parse: PEM with two certificates parses");
    is_int(sk ? sk_X509_num(sk) : -1, 2, "chain_parse: PEM gives two");
    ok(sk && X509_cmp(sk_X509_value(sk, 0), leaf) == 0,
       "chain_parse: PEM order kept, leaf first");
    sk_X509_pop_free(sk, X509_free);

    /* truncated PEM */
    rc = cg_chain_parse((unsigned char *) pem, pemlen / 4, &sk, &err);
    is_int(rc, CG_ERR_INPUT, "chain_parse: truncated PEM is CG_ERR_INPUT");
    ok(err.msg[0] != '\0', "chain_parse: truncated PEM has a message (%s)",
       err.msg);
    ok(sk == NULL, "chain_parse: no chain on error");

    /* PEM with its base64 broken */
    if (pemlen > (long) sizeof(buf)) {
        pemlen = sizeof(buf);
    }
    memcpy(buf, pem, pemlen);
    buf[100] = '!';
    buf[101] = '!';
    rc = cg_chain_parse(buf, pemlen, &sk, &err);
    is_int(rc, CG_ERR_INPUT, "chain_parse: bad base64 is CG_ERR_INPUT (%s)",
           err.msg);

    /* a PEM block that is not a certificate only */
    {
        const char  *key = "-----BEGIN PRIVATE KEY-----\nAAAA\n"
                           "-----END PRIVATE KEY-----\n";

        rc = cg_chain_parse((const unsigned char *) key, strlen(key), &sk,
                            &err);
    }
    is_int(rc, CG_ERR_INPUT, "chain_parse: PEM without a certificate (%s)",
           err.msg);
    BIO_free(bio);

    /* DER, one and concatenated */
    len = i2d_X509(leaf, NULL);
    der = malloc(len * 2 + i2d_X509(inter, NULL));
    p = der;
    i2d_X509(leaf, &p);
    rc = cg_chain_parse(der, p - der, &sk, &err);
    is_int(rc, CG_OK, "chain_parse: one DER certificate");
    is_int(sk ? sk_X509_num(sk) : -1, 1, "chain_parse: DER gives one");
    sk_X509_pop_free(sk, X509_free);

    i2d_X509(inter, &p);
    rc = cg_chain_parse(der, p - der, &sk, &err);
    is_int(rc, CG_OK, "chain_parse: concatenated DER");
    is_int(sk ? sk_X509_num(sk) : -1, 2, "chain_parse: concatenated DER "
           "gives two");
    ok(sk && X509_cmp(sk_X509_value(sk, 1), inter) == 0,
       "chain_parse: DER order kept");
    sk_X509_pop_free(sk, X509_free);

    /* DER with trailing garbage, and truncated */
    *p++ = 0x30;
    *p++ = 0x82;
    rc = cg_chain_parse(der, p - der, &sk, &err);
    is_int(rc, CG_ERR_INPUT, "chain_parse: DER with trailing bytes (%s)",
           err.msg);
    rc = cg_chain_parse(der, len - 10, &sk, &err);
    is_int(rc, CG_ERR_INPUT, "chain_parse: truncated DER (%s)", err.msg);

    /* every prefix of the DER and of a mangled copy: no crash, no leak */
    for (i = 1; i < len; i += 7) {
        rc = cg_chain_parse(der, i, &sk, &err);
        if (rc != CG_OK && rc != CG_ERR_INPUT) {
            break;
        }

        sk_X509_pop_free(sk, X509_free);
        sk = NULL;
    }

    ok(i >= len, "chain_parse: every DER prefix is CG_OK or CG_ERR_INPUT");

    /* DER whose subject says "-----BEGIN" is still DER */
    {
        spec_t  s;
        X509   *x;

        memset(&s, 0, sizeof(spec_t));
        s.subject = "/CN=-----BEGIN CERTIFICATE-----";
        s.key = k_other;
        x = mkcert(&s);
        p = der;
        i2d_X509(x, &p);
        rc = cg_chain_parse(der, p - der, &sk, &err);
        is_int(rc, CG_OK, "chain_parse: DER with \"-----BEGIN\" inside");
        sk_X509_pop_free(sk, X509_free);
        X509_free(x);
    }

    rc = cg_chain_parse((unsigned char *) "", 0, &sk, &err);
    is_int(rc, CG_ERR_INPUT, "chain_parse: empty input (%s)", err.msg);
    rc = cg_chain_parse((unsigned char *) "hello world\n", 12, &sk, &err);
    is_int(rc, CG_ERR_INPUT, "chain_parse: text is not a chain (%s)",
           err.msg);

    free(der);

    /* the caller's OpenSSL error queue is left alone */
    ERR_clear_error();
    ERR_raise_data(ERR_LIB_USER, 42, "caller's error");
    rc = cg_chain_parse((unsigned char *) "garbage", 7, &sk, &err);
    ok(ERR_GET_REASON(ERR_peek_last_error()) == 42
       && ERR_GET_LIB(ERR_peek_last_error()) == ERR_LIB_USER,
       "chain_parse: caller's OpenSSL error queue untouched");
    ERR_clear_error();
}


static void
test_trust(void)
{
    int          rc;
    char         path[256];
    FILE        *fp;
    cg_trust_t  *t;
    cg_error_t   err;

    snprintf(path, sizeof(path), "%s/missing.pem", tmpdir);
    rc = cg_trust_load(&t, path, 0, &err);
    is_int(rc, CG_ERR_IO, "trust: missing CA file is CG_ERR_IO (%s)",
           err.msg);
    ok(t == NULL, "trust: none on error");

    snprintf(path, sizeof(path), "%s/empty.pem", tmpdir);
    fp = fopen(path, "w");
    fputs("no certificates here\n", fp);
    fclose(fp);
    rc = cg_trust_load(&t, path, 0, &err);
    is_int(rc, CG_ERR_INPUT, "trust: file without certificates (%s)",
           err.msg);
    rc = cg_trust_load(&t, path, CG_TRUST_NO_SYSTEM, &err);
    is_int(rc, CG_ERR_INPUT, "trust: the same without the system bundle");

    rc = cg_trust_load(&t, NULL, 0, &err);
    is_int(rc, CG_OK, "trust: default system bundle loads");
    cg_trust_free(t);

    t = (cg_trust_t *) &err;
    rc = cg_trust_load(&t, NULL, CG_TRUST_NO_SYSTEM, &err);
    is_int(rc, CG_ERR_ARG, "trust: no system bundle and no file (%s)",
           err.msg);
    ok(t == NULL, "trust: none then either");
    rc = cg_trust_load(&t, NULL, 0x80, &err);
    is_int(rc, CG_ERR_ARG, "trust: unknown flags refused");
}


/*
 * A CA file adds to the system bundle (SSL_CERT_FILE here): a chain to a
 * system root still verifies, as a public root, beside the file's private
 * ones; CG_TRUST_NO_SYSTEM leaves the file's alone.
 */
static void
test_trust_union(const cg_policy_t *p)
{
    X509         *x, *chain[1] = { inter };
    char          ca_path[256], public_path[256];
    spec_t        s;
    cg_trust_t   *t;
    cg_error_t    err;
    cg_result_t   res;

    snprintf(ca_path, sizeof(ca_path), "%s", write_pem("u-ca.pem", &ca, 1));
    snprintf(public_path, sizeof(public_path), "%s",
             write_pem("u-public.pem", &other_ca, 1));
    setenv("SSL_CERT_FILE", public_path, 1);

    /* a leaf straight under the "system" root */
    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=public.example.com";
    s.key = k_leaf;
    s.issuer = other_ca;
    s.issuer_key = k_other;
    s.san = "DNS:public.example.com";
    s.sct = 1;
    s.serial = 4242;
    x = mkcert(&s);

    if (cg_trust_load(&t, ca_path, 0, &err) != CG_OK) {
        ok(0, "trust union: load (%s)", err.msg);
        X509_free(x);
        return;
    }

    eval(p, t, x, NULL, 0, "public.example.com", &res);
    ok(res.trusted && res.public_root && !fired(&res, "untrusted_chain"),
       "trust union: a system root's chain verifies beside a CA file, "
       "public");
    eval(p, t, leaf, chain, 1, "www.example.com", &res);
    ok(res.trusted && !res.public_root,
       "trust union: the file's root verifies, private");
    cg_trust_free(t);

    if (cg_trust_load(&t, ca_path, CG_TRUST_NO_SYSTEM, &err) != CG_OK) {
        ok(0, "trust union: load without the system bundle (%s)", err.msg);
        X509_free(x);
        return;
    }

    eval(p, t, x, NULL, 0, "public.example.com", &res);
    ok(!res.trusted && fired(&res, "untrusted_chain"),
       "trust union: without the system bundle its chain does not verify");
    eval(p, t, leaf, chain, 1, "www.example.com", &res);
    ok(res.trusted && !res.public_root,
       "trust union: the file alone still verifies its own, private");
    cg_trust_free(t);

    /* the file holds a system root: public either way */
    if (cg_trust_load(&t, public_path, CG_TRUST_NO_SYSTEM, &err) != CG_OK) {
        ok(0, "trust union: load the system root as a file (%s)", err.msg);
        X509_free(x);
        return;
    }

    eval(p, t, x, NULL, 0, "public.example.com", &res);
    ok(res.trusted && res.public_root,
       "trust union: a system root given as the file stays public");
    cg_trust_free(t);

    X509_free(x);
}


static void
test_good(const cg_policy_t *p)
{
    int          rc;
    unsigned     i;
    char         hex[65];
    unsigned char md[32];
    unsigned int mdlen;
    X509        *chain[1] = { inter };
    X509        *with_leaf[2];
    cg_result_t  res;

    rc = eval(p, trust, leaf, chain, 1, "www.example.com", &res);
    is_int(rc, CG_OK, "good: evaluation succeeds");
    is_int(res.nhits, 0, "good: a clean chain fires nothing");
    diag_hits(&res);
    is_int(res.score, 0, "good: score 0");
    is_str(cg_verdict_name(res.verdict), "allow", "good: verdict allow");
    ok(res.trusted, "good: trusted");
    is_int(res.chain_len, 2, "good: chain_len counts leaf + intermediate");
    is_str(res.subject, "CN=www.example.com,O=Example Org,C=US",
           "good: subject in RFC 2253 order");
    is_str(res.issuer, "O=Unit PKI,CN=Unit Intermediate",
           "good: issuer");
    is_str(res.serial, "03E9", "good: serial upper-case hex");
    is_str(res.key_type, "EC", "good: key type");
    is_int(res.key_bits, 256, "good: key bits");
    is_str(res.sig_alg, "ecdsa-with-SHA256", "good: signature algorithm");
    is_int(res.not_before, NOW - 30 * DAY, "good: not_before");
    is_int(res.not_after, NOW + 60 * DAY, "good: not_after");
    is_str(res.name, "www.example.com", "good: name");
    is_str(res.policy, "unit", "good: policy name");

    X509_digest(leaf, EVP_sha256(), md, &mdlen);
    for (i = 0; i < 32; i++) {
        sprintf(hex + 2 * i, "%02x", md[i]);
    }
    is_str(res.sha256, hex, "good: sha256 of the leaf DER, lower-case hex");
    is_int(strlen(res.sha1), 40, "good: sha1 hex");

    /* the SPKI digest, from the key's DER encoding made here */
    {
        int             n;
        unsigned char  *der = NULL;

        n = i2d_PUBKEY(X509_get0_pubkey(leaf), &der);
        EVP_Digest(der, (size_t) n, md, &mdlen, EVP_sha256(), NULL);
        OPENSSL_free(der);
        for (i = 0; i < 32; i++) {
            sprintf(hex + 2 * i, "%02x", md[i]);
        }
    }
    is_str(res.spki_sha256, hex, "good: spki_sha256 of the leaf's "
           "SubjectPublicKeyInfo, lower-case hex");

    /* the chain may hold the leaf as its first element */
    with_leaf[0] = leaf;
    with_leaf[1] = inter;
    rc = eval(p, trust, leaf, with_leaf, 2, "www.example.com", &res);
    is_int(res.chain_len, 2, "good: a leaf in the chain is not counted "
           "twice");
    ok(res.trusted && res.nhits == 0, "good: leaf in the chain, clean");

    /* arguments */
    is_int(cg_evaluate(NULL, &res), CG_ERR_ARG, "eval: NULL input");
    is_str(cg_strerror(CG_ERR_INPUT), "malformed certificate or chain",
           "cg_strerror");
    is_str(cg_verdict_name(CG_BLOCK), "block", "cg_verdict_name block");
    is_str(cg_verdict_name(CG_TAG), "tag", "cg_verdict_name tag");
}


static void
test_untrusted(const cg_policy_t *p)
{
    X509         *chain[1] = { inter };
    cg_result_t   res;

    eval(p, other_trust, leaf, chain, 1, "www.example.com", &res);
    ok(fired(&res, "untrusted_chain"), "untrusted_chain: fires against "
       "another CA (%s)", detail(&res, "untrusted_chain"));
    ok(!res.trusted, "untrusted_chain: result not trusted");

    eval(p, NULL, leaf, chain, 1, "www.example.com", &res);
    is_str(detail(&res, "untrusted_chain"), "no trust anchors configured",
           "untrusted_chain: no trust anchors");

    eval(p, trust, leaf, NULL, 0, "www.example.com", &res);
    ok(fired(&res, "untrusted_chain"), "untrusted_chain: fires without the "
       "intermediate (%s)", detail(&res, "untrusted_chain"));
    ok(strstr(detail(&res, "untrusted_chain"), "depth 0") != NULL,
       "untrusted_chain: detail names the depth");

    eval(p, trust, leaf, chain, 1, "www.example.com", &res);
    ok(!fired(&res, "untrusted_chain"), "untrusted_chain: not fired on a "
       "chain to the anchor");
}


static void
test_validity(const cg_policy_t *p)
{
    spec_t        s;
    X509         *x, *old_inter, *chain[1];
    cg_result_t   res;

    chain[0] = inter;

    x = mkleaf("/CN=www.example.com", "DNS:www.example.com",
               NOW - 100 * DAY, NOW - DAY);
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(fired(&res, "expired"), "expired: fires on an expired leaf (%s)",
       detail(&res, "expired"));
    ok(strncmp(detail(&res, "expired"), "leaf expired 2025-12-31", 23) == 0,
       "expired: detail names the leaf and the date");
    ok(!fired(&res, "untrusted_chain"),
       "expired: time errors alone do not make the chain untrusted");
    ok(res.trusted, "expired: chain still counts as trusted");
    ok(!fired(&res, "not_yet_valid"), "not_yet_valid: not on expired");
    X509_free(x);

    x = mkleaf("/CN=www.example.com", "DNS:www.example.com",
               NOW + DAY, NOW + 90 * DAY);
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(fired(&res, "not_yet_valid"), "not_yet_valid: fires (%s)",
       detail(&res, "not_yet_valid"));
    ok(!fired(&res, "expired"), "expired: not fired on a future leaf");
    X509_free(x);

    /* an expired intermediate as sent */
    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=Unit Intermediate/O=Unit PKI";
    s.key = k_int;
    s.issuer = ca;
    s.issuer_key = k_ca;
    s.ca = 1;
    s.not_before = NOW - 400 * DAY;
    s.not_after = NOW - 10 * DAY;
    old_inter = mkcert(&s);
    chain[0] = old_inter;

    eval(p, trust, leaf, chain, 1, "www.example.com", &res);
    ok(strncmp(detail(&res, "expired"), "depth 1 expired", 15) == 0,
       "expired: an expired intermediate is named by depth (%s)",
       detail(&res, "expired"));
    X509_free(old_inter);

    chain[0] = inter;
    eval(p, trust, leaf, chain, 1, "www.example.com", &res);
    ok(!fired(&res, "expired") && !fired(&res, "not_yet_valid"),
       "expired/not_yet_valid: not fired inside validity");
}


static void
test_self_signed(const cg_policy_t *p)
{
    spec_t        s;
    X509         *x, *y;
    cg_result_t   res;

    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=selfie.example";
    s.key = k_other;
    s.san = "DNS:selfie.example";
    x = mkcert(&s);

    eval(p, trust, x, NULL, 0, "selfie.example", &res);
    ok(fired(&res, "self_signed"), "self_signed: fires (%s)",
       detail(&res, "self_signed"));
    ok(fired(&res, "untrusted_chain"), "self_signed: and it is untrusted");

    /* same names, signed by another key: issuer == subject, not self-signed */
    s.issuer = x;
    s.issuer_key = k_leaf;
    y = mkcert(&s);
    eval(p, trust, y, NULL, 0, "selfie.example", &res);
    ok(!fired(&res, "self_signed"), "self_signed: not fired when the "
       "signature is not its own key's");
    X509_free(x);
    X509_free(y);

    eval(p, trust, leaf, &inter, 1, "www.example.com", &res);
    ok(!fired(&res, "self_signed"), "self_signed: not on a CA-issued leaf");
}


static void
test_weak(const cg_policy_t *p)
{
    spec_t        s;
    X509         *x, *sha1_inter, *sha1_root, *chain[2];
    EVP_PKEY     *rsa1024, *p224;
    cg_result_t   res;

    chain[0] = inter;

    /* a SHA-1 signed leaf */
    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=www.example.com";
    s.key = k_leaf;
    s.issuer = inter;
    s.issuer_key = k_int;
    s.san = "DNS:www.example.com";
    s.md = EVP_sha1();
    x = mkcert(&s);
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(fired(&res, "weak_signature"), "weak_signature: SHA-1 leaf (%s)",
       detail(&res, "weak_signature"));
    ok(strstr(detail(&res, "weak_signature"), "leaf") != NULL,
       "weak_signature: detail names the leaf");
    X509_free(x);

    /* a SHA-1 signed intermediate */
    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=Unit Intermediate/O=Unit PKI";
    s.key = k_int;
    s.issuer = ca;
    s.issuer_key = k_ca;
    s.ca = 1;
    s.md = EVP_sha1();
    sha1_inter = mkcert(&s);
    chain[0] = sha1_inter;
    eval(p, trust, leaf, chain, 1, "www.example.com", &res);
    ok(strncmp(detail(&res, "weak_signature"), "depth 1", 7) == 0,
       "weak_signature: SHA-1 intermediate (%s)",
       detail(&res, "weak_signature"));
    X509_free(sha1_inter);

    /* a SHA-1 self-signed root sent along: its own signature is ignored */
    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=Unit Root/O=Unit PKI";
    s.key = k_ca;
    s.ca = 1;
    s.md = EVP_sha1();
    sha1_root = mkcert(&s);
    chain[0] = inter;
    chain[1] = sha1_root;
    eval(p, trust, leaf, chain, 2, "www.example.com", &res);
    ok(!fired(&res, "weak_signature"),
       "weak_signature: a sent root's own SHA-1 signature does not count");
    X509_free(sha1_root);

    eval(p, trust, leaf, chain, 1, "www.example.com", &res);
    ok(!fired(&res, "weak_signature"), "weak_signature: not on SHA-256");
    ok(!fired(&res, "weak_key"), "weak_key: not on P-256");

    /* weak keys: RSA 1024 and P-224 */
    rsa1024 = EVP_RSA_gen(1024);
    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=www.example.com";
    s.key = rsa1024;
    s.issuer = inter;
    s.issuer_key = k_int;
    s.san = "DNS:www.example.com";
    x = mkcert(&s);
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(fired(&res, "weak_key"), "weak_key: RSA 1024 (%s)",
       detail(&res, "weak_key"));
    is_str(res.key_type, "RSA", "weak_key: key type RSA");
    is_int(res.key_bits, 1024, "weak_key: 1024 bits reported");
    X509_free(x);

    p224 = ec_key("P-224");
    s.key = p224;
    x = mkcert(&s);
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(fired(&res, "weak_key"), "weak_key: EC P-224 (%s)",
       detail(&res, "weak_key"));
    X509_free(x);

    /* an RSA 1024 self-signed leaf signed with SHA-1: both, no crash */
    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=old.example";
    s.key = rsa1024;
    s.md = EVP_sha1();
    x = mkcert(&s);
    eval(p, trust, x, NULL, 0, NULL, &res);
    ok(fired(&res, "weak_key") && fired(&res, "weak_signature")
       && fired(&res, "self_signed"),
       "weak: self-signed RSA 1024 SHA-1 leaf fires all three");
    X509_free(x);

    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(p224);
}


static void
test_names(const cg_policy_t *p)
{
    X509         *x, *chain[1] = { inter };
    cg_result_t   res;

    eval(p, trust, leaf, chain, 1, "other.example.com", &res);
    ok(fired(&res, "hostname_mismatch"), "hostname_mismatch: other name "
       "(%s)", detail(&res, "hostname_mismatch"));
    eval(p, trust, leaf, chain, 1, "WWW.Example.COM", &res);
    ok(!fired(&res, "hostname_mismatch"),
       "hostname_mismatch: case-insensitive match");
    eval(p, trust, leaf, chain, 1, "www.example.com.", &res);
    ok(!fired(&res, "hostname_mismatch"),
       "hostname_mismatch: a trailing dot matches");
    eval(p, trust, leaf, chain, 1, NULL, &res);
    ok(!fired(&res, "hostname_mismatch"), "hostname_mismatch: no name");
    eval(p, trust, leaf, chain, 1, "", &res);
    ok(!fired(&res, "hostname_mismatch"), "hostname_mismatch: empty name");

    /* wildcards: whole left-most label only */
    x = mkleaf("/CN=wild", "DNS:*.example.com", 0, 0);
    eval(p, trust, x, chain, 1, "a.example.com", &res);
    ok(!fired(&res, "hostname_mismatch"), "wildcard: one label matches");
    eval(p, trust, x, chain, 1, "a.b.example.com", &res);
    ok(fired(&res, "hostname_mismatch"), "wildcard: two labels do not");
    eval(p, trust, x, chain, 1, "example.com", &res);
    ok(fired(&res, "hostname_mismatch"), "wildcard: the bare domain does "
       "not");
    X509_free(x);

    x = mkleaf("/CN=wild", "DNS:w*.example.com", 0, 0);
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(fired(&res, "hostname_mismatch"), "wildcard: partial label "
       "wildcards are refused");
    X509_free(x);

    /* the SANs' exact spellings are matched without X509_check_host():
     * every answer still is X509_check_host()'s */
    {
        int           i, j, same;
        size_t        len;
        const char   *name;
        static const char  *sans[] = {
            "DNS:a.example.com",
            "DNS:A.Example.COM,DNS:b.example.com",
            "DNS:*.example.com,DNS:a.example.com",
            "DNS:a.example.co,DNS:a.example.comx,DNS:xa.example.com",
            "DNS:*.example.com",
            "DNS:a-b_c.example.com,IP:127.0.0.1",
            "DNS:a.example.com.,DNS:.example.com",
        };
        static const char  *names[] = {
            "a.example.com", "A.EXAMPLE.COM", "a.example.com.",
            "b.example.com", "a.example.co", "a.example.comx",
            "*.example.com", "a-b_c.example.com", "A-B_C.example.com",
            "x.a.example.com", "example.com", ".example.com",
            "a.example.com..", "127.0.0.1", "a",
        };

        same = 1;

        for (i = 0; i < (int) (sizeof(sans) / sizeof(sans[0])); i++) {
            x = mkleaf("/CN=x", sans[i], 0, 0);

            for (j = 0; j < (int) (sizeof(names) / sizeof(names[0])); j++) {
                name = names[j];
                len = strlen(name);
                if (len > 1 && name[len - 1] == '.') {
                    len--;
                }

                if (strcmp(name, "127.0.0.1") == 0) {
                    continue;
                }

                eval(p, trust, x, chain, 1, name, &res);

                if (fired(&res, "hostname_mismatch")
                    != (X509_check_host(x, name, len,
                                        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                                        NULL) != 1))
                {
                    printf("# %s for %s: %s\n", sans[i], name,
                           fired(&res, "hostname_mismatch") ? "fired"
                                                             : "quiet");
                    same = 0;
                }
            }

            X509_free(x);
        }

        ok(same, "hostname_mismatch: exact SAN spellings, case, wildcards "
           "and near misses decided as X509_check_host() does");
    }

    /* no CN fallback when a DNS SAN exists; CN used when there is none */
    x = mkleaf("/CN=host.example.com", "DNS:other.example.com", 0, 0);
    eval(p, trust, x, chain, 1, "host.example.com", &res);
    ok(fired(&res, "hostname_mismatch"), "hostname_mismatch: CN ignored "
       "when a DNS SAN exists");
    X509_free(x);

    x = mkleaf("/CN=host.example.com", NULL, 0, 0);
    eval(p, trust, x, chain, 1, "host.example.com", &res);
    ok(!fired(&res, "hostname_mismatch"), "hostname_mismatch: CN used "
       "without SANs");
    ok(fired(&res, "no_san"), "no_san: fires without SANs (%s)",
       detail(&res, "no_san"));
    X509_free(x);

    x = mkleaf("/CN=mail", "email:a@example.com", 0, 0);
    eval(p, trust, x, chain, 1, NULL, &res);
    ok(fired(&res, "no_san"), "no_san: an email SAN alone does not count");
    X509_free(x);

    /* IP literals against IP SANs */
    x = mkleaf("/CN=ip", "IP:192.0.2.1,IP:2001:db8::1,DNS:198.51.100.1", 0,
               0);
    eval(p, trust, x, chain, 1, "192.0.2.1", &res);
    ok(!fired(&res, "hostname_mismatch"), "ip: IPv4 SAN matches");
    ok(!fired(&res, "no_san"), "no_san: IP SANs count");
    eval(p, trust, x, chain, 1, "192.0.2.2", &res);
    ok(fired(&res, "hostname_mismatch"), "ip: another IPv4 does not");
    eval(p, trust, x, chain, 1, "2001:db8::1", &res);
    ok(!fired(&res, "hostname_mismatch"), "ip: IPv6 SAN matches");
    eval(p, trust, x, chain, 1, "[2001:db8:0::1]", &res);
    ok(!fired(&res, "hostname_mismatch"), "ip: bracketed IPv6 matches");
    eval(p, trust, x, chain, 1, "198.51.100.1", &res);
    ok(fired(&res, "hostname_mismatch"), "ip: an IP in a DNS SAN does not "
       "match an IP literal");
    X509_free(x);

    eval(p, trust, leaf, chain, 1, "www.example.com", &res);
    ok(!fired(&res, "no_san"), "no_san: not fired with a DNS SAN");
}


static void
test_lifetime(cg_policy_t *p)
{
    int           i;
    X509         *x, *chain[1] = { inter };
    cg_result_t   res;

    i = cg_signal_find("issued_recently");

    x = mkleaf("/CN=www.example.com", "DNS:www.example.com", NOW - 3600,
               NOW + 90 * DAY);
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(fired(&res, "issued_recently"), "issued_recently: 1h ago (%s)",
       detail(&res, "issued_recently"));

    p->window[i][0] = 1800;
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(!fired(&res, "issued_recently"), "issued_recently: policy window "
       "30m is used");
    p->window[i][0] = 0;
    X509_free(x);

    x = mkleaf("/CN=www.example.com", "DNS:www.example.com", NOW - 4 * DAY,
               NOW + 90 * DAY);
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(!fired(&res, "issued_recently"), "issued_recently: 4d ago is not");
    X509_free(x);

    x = mkleaf("/CN=www.example.com", "DNS:www.example.com", NOW - 4 * DAY,
               NOW + 2 * DAY);
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(fired(&res, "short_validity"), "short_validity: 6d lifetime (%s)",
       detail(&res, "short_validity"));
    X509_free(x);

    eval(p, trust, leaf, chain, 1, "www.example.com", &res);
    ok(!fired(&res, "short_validity") && !fired(&res, "long_validity"),
       "short/long_validity: 90d is neither");

    x = mkleaf("/CN=www.example.com", "DNS:www.example.com", NOW - 4 * DAY,
               NOW + 396 * DAY);
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(fired(&res, "long_validity"), "long_validity: 400d trusted (%s)",
       detail(&res, "long_validity"));
    eval(p, other_trust, x, chain, 1, "www.example.com", &res);
    ok(!fired(&res, "long_validity"), "long_validity: 400d untrusted is "
       "under 825d");
    eval(p, private_trust, x, chain, 1, "www.example.com", &res);
    ok(res.trusted && !fired(&res, "long_validity"),
       "long_validity: 400d from a private root is under 825d");
    X509_free(x);

    x = mkleaf("/CN=www.example.com", "DNS:www.example.com", NOW - 4 * DAY,
               NOW + 3650 * DAY);
    eval(p, other_trust, x, chain, 1, "www.example.com", &res);
    ok(fired(&res, "long_validity"), "long_validity: ten years untrusted "
       "(%s)", detail(&res, "long_validity"));
    X509_free(x);
}


static void
test_lists(cg_policy_t *p)
{
    int           i;
    spec_t        s;
    X509         *x, *stg_inter, *le_inter, *chain[1];
    cg_result_t   res;

    policy_list(p, CG_LIST_STAGING, "(STAGING)");
    policy_list(p, CG_LIST_FREE_DV, "O=Let's Encrypt");
    policy_list(p, CG_LIST_PUBLIC_CA, "DigiCert");
    policy_list(p, CG_LIST_PUBLIC_CA, "Unit PKI");
    policy_list(p, CG_LIST_DEFAULT_SUBJECT, "O=Internet Widgits Pty Ltd");
    policy_list(p, CG_LIST_DEFAULT_SUBJECT, "~^CN=Major Cobalt Strike,");

    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=(STAGING) Artificial Apricot R3/O=(STAGING) Let's "
                "Encrypt";
    s.key = k_int;
    s.issuer = ca;
    s.issuer_key = k_ca;
    s.ca = 1;
    stg_inter = mkcert(&s);

    s.subject = "/CN=R3/O=Let's Encrypt/C=US";
    le_inter = mkcert(&s);

    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=www.example.com";
    s.key = k_leaf;
    s.issuer = stg_inter;
    s.issuer_key = k_int;
    s.san = "DNS:www.example.com";
    s.sct = 1;
    x = mkcert(&s);
    chain[0] = stg_inter;
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(fired(&res, "staging_issuer"), "staging_issuer: fires (%s)",
       detail(&res, "staging_issuer"));
    ok(!fired(&res, "free_dv_issuer"), "free_dv_issuer: \"(STAGING) Let's "
       "Encrypt\" is not O=Let's Encrypt");

    /* the staging root sent alone as an intermediate also counts */
    eval(p, trust, leaf, chain, 1, "www.example.com", &res);
    ok(fired(&res, "staging_issuer"), "staging_issuer: any sent "
       "certificate's subject (%s)", detail(&res, "staging_issuer"));
    X509_free(x);

    s.issuer = le_inter;
    x = mkcert(&s);
    chain[0] = le_inter;
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(fired(&res, "free_dv_issuer"), "free_dv_issuer: fires (%s)",
       detail(&res, "free_dv_issuer"));
    ok(!fired(&res, "staging_issuer"), "staging_issuer: not on production");
    ok(!fired(&res, "mimicked_ca"), "mimicked_ca: not on a trusted chain "
       "naming a public CA");
    X509_free(x);

    eval(p, trust, leaf, &inter, 1, "www.example.com", &res);
    ok(!fired(&res, "free_dv_issuer"), "free_dv_issuer: not on another CA");

    /* the same public-CA names, untrusted: an issuer merely missing */
    eval(p, other_trust, leaf, &inter, 1, "www.example.com", &res);
    ok(!fired(&res, "mimicked_ca"), "mimicked_ca: not when the public CA's "
       "root is only missing (%s)", detail(&res, "mimicked_ca"));

    /* the intermediate's name, signed by another key than its root's */
    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=Unit Intermediate/O=Unit PKI";
    s.key = k_other;
    s.issuer = ca;
    s.issuer_key = k_other;
    s.ca = 1;
    chain[0] = mkcert(&s);

    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=www.example.com";
    s.key = k_leaf;
    s.issuer = chain[0];
    s.issuer_key = k_other;
    s.san = "DNS:www.example.com";
    s.sct = 1;
    x = mkcert(&s);
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(fired(&res, "mimicked_ca"), "mimicked_ca: a known CA's name on "
       "another key (%s)", detail(&res, "mimicked_ca"));
    X509_free(x);
    X509_free(chain[0]);

    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=DigiCert Global Root G2/O=DigiCert Inc";
    s.key = k_other;
    s.san = "DNS:www.example.com";
    x = mkcert(&s);
    eval(p, trust, x, NULL, 0, "www.example.com", &res);
    ok(fired(&res, "mimicked_ca"), "mimicked_ca: self-signed \"DigiCert\" "
       "(%s)", detail(&res, "mimicked_ca"));
    X509_free(x);

    s.subject = "/C=AU/ST=Some-State/O=Internet Widgits Pty Ltd";
    x = mkcert(&s);
    eval(p, trust, x, NULL, 0, NULL, &res);
    ok(fired(&res, "default_subject"), "default_subject: OpenSSL default "
       "(%s)", detail(&res, "default_subject"));
    ok(!fired(&res, "mimicked_ca"), "mimicked_ca: not on unrelated names");
    X509_free(x);

    s.subject = "/C=Earth/ST=Cyberspace/L=Somewhere/O=cobaltstrike"
                "/OU=AdvancedPenTesting/CN=Major Cobalt Strike";
    x = mkcert(&s);
    eval(p, trust, x, NULL, 0, NULL, &res);
    is_str(res.subject, "CN=Major Cobalt Strike,OU=AdvancedPenTesting,"
           "O=cobaltstrike,L=Somewhere,ST=Cyberspace,C=Earth",
           "default_subject: DN as documented in policy.md");
    ok(fired(&res, "default_subject"), "default_subject: Cobalt Strike "
       "regex (%s)", detail(&res, "default_subject"));
    X509_free(x);

    eval(p, trust, leaf, &inter, 1, NULL, &res);
    ok(!fired(&res, "default_subject"), "default_subject: not on a normal "
       "leaf");

    X509_free(stg_inter);
    X509_free(le_inter);

    for (i = 0; i < CG_LIST_MAX; i++) {
        cg_patlist_free(&p->lists[i]);
        memset(&p->lists[i], 0, sizeof(cg_patlist_t));
    }
}


static void
test_sct(const cg_policy_t *p)
{
    spec_t        s;
    X509         *x;
    cg_result_t   res;

    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=www.example.com";
    s.key = k_leaf;
    s.issuer = inter;
    s.issuer_key = k_int;
    s.san = "DNS:www.example.com";
    x = mkcert(&s);
    eval(p, trust, x, &inter, 1, "www.example.com", &res);
    ok(fired(&res, "no_sct"), "no_sct: trusted 2025 leaf without SCTs (%s)",
       detail(&res, "no_sct"));
    eval(p, other_trust, x, &inter, 1, "www.example.com", &res);
    ok(!fired(&res, "no_sct"), "no_sct: not on an untrusted chain");
    eval(p, private_trust, x, &inter, 1, "www.example.com", &res);
    ok(res.trusted && !fired(&res, "no_sct"),
       "no_sct: not on a chain to a private root (internal CA)");
    X509_free(x);

    /* issued before May 2018, evaluated within its validity */
    s.not_before = 1483228800;          /* 2017-01-01 */
    s.not_after = 1483228800 + 90 * DAY;
    x = mkcert(&s);
    {
        cg_input_t  in;

        memset(&in, 0, sizeof(cg_input_t));
        in.policy = p;
        in.trust = trust;
        in.leaf = x;
        in.now = 1483228800 + DAY;
        in.chain = sk_X509_new_null();
        sk_X509_push(in.chain, inter);
        /* the fixture's CA is valid from NOW - 1y only: "not yet valid"
         * is a time error and leaves the chain trusted */
        cg_evaluate(&in, &res);
        sk_X509_free(in.chain);
    }
    ok(res.trusted, "no_sct: 2017 chain trusted at its time");
    ok(!fired(&res, "no_sct"), "no_sct: not on a leaf issued before May "
       "2018");
    X509_free(x);

    eval(p, trust, leaf, &inter, 1, "www.example.com", &res);
    ok(!fired(&res, "no_sct"), "no_sct: not with an embedded SCT list");
}


static void
test_blocklist(cg_policy_t *p)
{
    cg_digest_t   d;
    unsigned int  n;
    X509         *chain[1] = { inter };
    cg_result_t   res;

    eval(p, trust, leaf, chain, 1, "www.example.com", &res);
    ok(!fired(&res, "blocklisted"), "blocklisted: empty list");

    memset(&d, 0, sizeof(cg_digest_t));
    X509_digest(inter, EVP_sha1(), d.md, &n);
    d.len = 20;
    strcpy(d.reason, "Unit C&C");
    cg_digestset_add(&p->blocklist, &d);
    cg_digestset_sort(&p->blocklist);

    eval(p, trust, leaf, chain, 1, "www.example.com", &res);
    ok(fired(&res, "blocklisted"), "blocklisted: intermediate SHA-1 (%s)",
       detail(&res, "blocklisted"));
    ok(strstr(detail(&res, "blocklisted"), "Unit C&C") != NULL,
       "blocklisted: detail has the listing reason");
    is_str(cg_verdict_name(res.verdict), "block",
           "blocklisted: default weight blocks");

    eval(p, trust, leaf, NULL, 0, "www.example.com", &res);
    ok(!fired(&res, "blocklisted"), "blocklisted: not when the listed "
       "certificate is not sent");

    memset(&d, 0, sizeof(cg_digest_t));
    X509_digest(leaf, EVP_sha256(), d.md, &n);
    d.len = 32;
    cg_digestset_add(&p->blocklist, &d);
    cg_digestset_sort(&p->blocklist);

    eval(p, trust, leaf, NULL, 0, "www.example.com", &res);
    ok(fired(&res, "blocklisted"), "blocklisted: leaf SHA-256 (%s)",
       detail(&res, "blocklisted"));

    cg_digestset_free(&p->blocklist);
    memset(&p->blocklist, 0, sizeof(cg_digestset_t));
}


static void
test_sni_mismatch(const cg_policy_t *p)
{
    cg_input_t   in;
    cg_result_t  res;

    memset(&in, 0, sizeof(cg_input_t));
    in.policy = p;
    in.trust = trust;
    in.leaf = leaf;
    in.now = NOW;
    in.chain = sk_X509_new_null();
    sk_X509_push(in.chain, inter);

    in.name = "www.example.com";
    in.client_sni = "cdn.example.net";
    cg_evaluate(&in, &res);
    ok(fired(&res, "sni_mismatch"), "sni_mismatch: fires (%s)",
       detail(&res, "sni_mismatch"));

    in.client_sni = "WWW.example.com";
    cg_evaluate(&in, &res);
    ok(!fired(&res, "sni_mismatch"), "sni_mismatch: case-insensitive "
       "equal");

    in.client_sni = NULL;
    cg_evaluate(&in, &res);
    ok(!fired(&res, "sni_mismatch"), "sni_mismatch: no client SNI");

    /* cert_cloaking: the chain a client got is not the probed one */
    in.probed_sha256 = "00112233445566778899aabbccddeeff"
                       "00112233445566778899aabbccddeeff";
    cg_evaluate(&in, &res);
    ok(fired(&res, "cert_cloaking"), "cert_cloaking: fires (%s)",
       detail(&res, "cert_cloaking"));
    ok(res.verdict == CG_BLOCK, "cert_cloaking: blocks on its own");

    {
        char    same[65], upper[65];
        size_t  i;

        memcpy(same, res.sha256, sizeof(same));     /* this very leaf */
        in.probed_sha256 = same;

        for (i = 0; i < sizeof(upper); i++) {
            upper[i] = (char) toupper((unsigned char) same[i]);
        }

        cg_evaluate(&in, &res);
        ok(!fired(&res, "cert_cloaking"), "cert_cloaking: quiet for the "
           "probed leaf");

        in.probed_sha256 = upper;
        cg_evaluate(&in, &res);
        ok(!fired(&res, "cert_cloaking"), "cert_cloaking: hex of any case");
    }

    in.probed_sha256 = NULL;
    cg_evaluate(&in, &res);
    ok(!fired(&res, "cert_cloaking"), "cert_cloaking: nothing probed");

    /* geo signals need a database: without one they are skipped */
    in.dst_addr = "192.0.2.1";
    cg_evaluate(&in, &res);
    ok(!fired(&res, "geo_country") && !fired(&res, "geo_asn"),
       "geo: skipped without a GeoIP database");

    sk_X509_free(in.chain);
}


static void
test_rules_exempts(cg_policy_t *p)
{
    int           i, sig;
    cg_rule_t    *r;
    cg_exempt_t  *ex;
    cg_digest_t   d;
    unsigned int  n;
    cg_input_t    in;
    cg_result_t   res;
    X509         *x;

    x = mkleaf("/O=Example Org/CN=www.example.com",
               "DNS:www.example.com,IP:192.0.2.7,URI:https://x.example/p",
               0, 0);

    memset(&in, 0, sizeof(cg_input_t));
    in.policy = p;
    in.trust = other_trust;             /* untrusted_chain fires: 30 */
    in.leaf = x;
    in.now = NOW;
    in.name = "www.example.com";
    in.dst_addr = "10.1.2.3";

    policy_rule(p, "r_subject", CG_FIELD_SUBJECT, "~^CN=www\\.", 11);
    policy_rule(p, "r_issuer", CG_FIELD_ISSUER, "Unit Intermediate", 12);
    policy_rule(p, "r_san_ip", CG_FIELD_SAN, "~^192\\.0\\.2\\.7$", 13);
    policy_rule(p, "r_san_uri", CG_FIELD_SAN, "x.example/p", 14);
    r = policy_rule(p, "r_serial", CG_FIELD_SERIAL, "~^[0-9A-F]+$", 15);
    r->detail = strdup("serial is hex");
    policy_rule(p, "r_sni", CG_FIELD_SNI, "~*^WWW\\.", 16);
    policy_rule(p, "r_none", CG_FIELD_SUBJECT, "no such thing", 50);

    cg_evaluate(&in, &res);
    ok(fired(&res, "r_subject"), "rule: subject regex");
    ok(fired(&res, "r_issuer"), "rule: issuer substring");
    ok(fired(&res, "r_san_ip"), "rule: IP SAN as text");
    ok(fired(&res, "r_san_uri"), "rule: URI SAN");
    is_str(detail(&res, "r_serial"), "serial is hex", "rule: own detail");
    ok(fired(&res, "r_sni"), "rule: sni, case-insensitive regex");
    ok(!fired(&res, "r_none"), "rule: no match, no hit");
    is_str(detail(&res, "r_subject"), "subject matches ~^CN=www\\.",
           "rule: default detail is FIELD matches PATTERN");
    is_int(res.hits[0].weight, 30, "order: built-in signals first");
    is_str(res.hits[res.nhits - 1].id, "r_sni", "order: rules in policy "
           "order");
    is_int(res.score, 30 + 11 + 12 + 13 + 14 + 15 + 16, "score: sum of "
           "weights");
    is_str(cg_verdict_name(res.verdict), "block", "verdict: block at 111");

    /* an exemption naming signals, by destination and issuer (AND) */
    ex = policy_exempt(p);
    ex->all = 0;
    sig = cg_signal_find("untrusted_chain");
    ex->signals = (uint64_t) 1 << sig;
    ex->rules = calloc(1, sizeof(char *));
    ex->rules[0] = strdup("r_issuer");
    ex->nrules = 1;
    ex->dst = calloc(1, sizeof(cg_cidr_t));
    cg_cidr_parse(&ex->dst[0], "10.0.0.0/8");
    ex->ndst = 1;
    cg_patlist_add(&ex->issuer, "CN=Unit Intermediate", 0, NULL);

    cg_evaluate(&in, &res);
    ok(hit(&res, "untrusted_chain") && hit(&res, "untrusted_chain")->exempt
       && hit(&res, "untrusted_chain")->weight == 0,
       "exempt: a named signal is reported, exempt, weight 0");
    ok(hit(&res, "r_issuer") && hit(&res, "r_issuer")->exempt,
       "exempt: a named custom rule");
    ok(hit(&res, "r_subject") && !hit(&res, "r_subject")->exempt,
       "exempt: signals not named still count");
    is_int(res.score, 11 + 13 + 14 + 15 + 16, "exempt: score without the "
           "exempt hits");

    in.dst_addr = "192.0.2.99";
    cg_evaluate(&in, &res);
    ok(hit(&res, "untrusted_chain") && !hit(&res, "untrusted_chain")->exempt,
       "exempt: all conditions must match (dst outside)");
    in.dst_addr = NULL;
    cg_evaluate(&in, &res);
    ok(hit(&res, "untrusted_chain") && !hit(&res, "untrusted_chain")->exempt,
       "exempt: dst condition fails without a destination");

    /* everything, by host pattern */
    ex = policy_exempt(p);
    cg_patlist_add(&ex->sni, ".example.com", 1, NULL);
    cg_evaluate(&in, &res);
    is_int(res.score, 0, "exempt: sni .example.com exempts everything");
    is_str(cg_verdict_name(res.verdict), "allow", "exempt: verdict allow");
    ok(res.nhits > 0 && res.hits[0].exempt, "exempt: hits still reported");
    in.name = "www.example.org";
    cg_evaluate(&in, &res);
    ok(res.score > 0, "exempt: another name is not exempt");
    cg_patlist_free(&ex->sni);
    memset(&ex->sni, 0, sizeof(cg_patlist_t));

    /* by fingerprint of a sent certificate */
    memset(&d, 0, sizeof(cg_digest_t));
    X509_digest(inter, EVP_sha256(), d.md, &n);
    d.len = 32;
    cg_digestset_add(&ex->fingerprint, &d);
    cg_digestset_sort(&ex->fingerprint);
    cg_evaluate(&in, &res);
    ok(res.score > 0, "exempt: fingerprint of a certificate not sent");
    in.chain = sk_X509_new_null();
    sk_X509_push(in.chain, inter);
    cg_evaluate(&in, &res);
    is_int(res.score, 0, "exempt: fingerprint of a sent intermediate");
    sk_X509_free(in.chain);
    in.chain = NULL;

    /* more hits than fit: dropped, still counted */
    p->nexempts = 0;
    in.name = "www.example.com";
    for (i = 0; i < 30; i++) {
        char  id[32];

        snprintf(id, sizeof(id), "many_%d", i);
        policy_rule(p, id, CG_FIELD_SUBJECT, "CN=", 1);
    }

    cg_evaluate(&in, &res);
    is_int(res.nhits, CG_MAX_HITS, "hits: at most CG_MAX_HITS kept");
    ok(res.hits_dropped > 0, "hits: the rest are counted as dropped (%u)",
       res.hits_dropped);
    is_int(res.score, 30 + 11 + 12 + 13 + 14 + 15 + 16 + 30,
           "hits: dropped hits still count in the score");

    /* a heavy hit after the list is full replaces the lightest one */
    policy_rule(p, "heavy_last", CG_FIELD_SUBJECT, "CN=", 500);
    cg_evaluate(&in, &res);
    ok(fired(&res, "heavy_last"), "hits: a heavy hit is kept when full");
    is_int(res.nhits, CG_MAX_HITS, "hits: still at most CG_MAX_HITS");
    is_int(res.score, 30 + 11 + 12 + 13 + 14 + 15 + 16 + 30 + 500,
           "hits: the score counts everything");
    p->nexempts = 2;

    X509_free(x);
}


static void
test_weights(cg_policy_t *p)
{
    int           i;
    cg_result_t   res;

    i = cg_signal_find("untrusted_chain");
    ok(i >= 0, "signal table: untrusted_chain is found");
    is_int(cg_signal_find("no_such_signal"), -1, "signal table: unknown id");
    is_str(cg_signal_id(i), "untrusted_chain", "signal table: id by index");
    ok(cg_signal_doc(i) && cg_signal_doc(i)[0], "signal table: doc line");
    is_int(cg_signal_default_window(cg_signal_find("long_validity"), 1),
           825 * DAY, "signal table: long_validity untrusted window");
    ok(cg_signal_id(cg_signal_count()) == NULL, "signal table: bounds");

    eval(p, other_trust, leaf, &inter, 1, "www.example.com", &res);
    is_int(res.score, 30, "weights: untrusted chain scores its weight");
    is_str(cg_verdict_name(res.verdict), "tag", "weights: 30 tags");

    p->weight[i] = 0;
    eval(p, other_trust, leaf, &inter, 1, "www.example.com", &res);
    ok(!fired(&res, "untrusted_chain"), "weights: weight 0 disables");
    is_str(cg_verdict_name(res.verdict), "allow", "weights: allow then");
    p->weight[i] = cg_signal_default_weight(i);
}


static void
test_hostile(const cg_policy_t *p)
{
    int           i;
    spec_t        s;
    X509         *x, **many;
    cg_result_t   res;

    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=evil\n\r\x01\x7f\xc3\xa9t\xc3\xa9/O=\xe2\x80\xae"
                "gnp.exe";
    s.key = k_other;
    s.serial = -12345;
    s.san = "DNS:evil.example";
    x = mkcert(&s);
    eval(p, trust, x, NULL, 0, "evil\x01name", &res);
    ok(res.serial[0] == '-', "hostile: negative serial keeps its sign (%s)",
       res.serial);
    ok(!has_control(res.subject), "hostile: no control characters in the "
       "subject (%s)", res.subject);
    ok(strstr(res.subject, "\xc3\xa9t\xc3\xa9") != NULL,
       "hostile: UTF-8 kept as UTF-8");
    ok(strstr(res.subject, "\xe2\x80\xae") == NULL,
       "hostile: no right-to-left override in the subject");
    ok(!has_control(res.name), "hostile: no control characters in name");
    for (i = 0; i < (int) res.nhits; i++) {
        if (has_control(res.hits[i].detail)) {
            break;
        }
    }
    ok(i == (int) res.nhits, "hostile: no control characters in details");

    /* a long chain of duplicates: no crash, counted */
    many = calloc(300, sizeof(X509 *));
    for (i = 0; i < 300; i++) {
        many[i] = i % 2 ? inter : x;
    }
    is_int(eval(p, trust, leaf, many, 300, "www.example.com", &res), CG_OK,
           "hostile: 300 certificates evaluate");
    is_int(res.chain_len, 301, "hostile: chain_len counts them all");
    free(many);
    X509_free(x);

    /* the caller's OpenSSL error queue is left alone */
    ERR_clear_error();
    ERR_raise_data(ERR_LIB_USER, 43, "caller's error");
    eval(p, other_trust, leaf, NULL, 0, "x", &res);
    ok(ERR_GET_REASON(ERR_peek_last_error()) == 43,
       "eval: caller's OpenSSL error queue untouched");
    ERR_clear_error();
}


static void
test_policy_file(void)
{
    int           rc;
    char          path[256];
    FILE         *fp;
    cg_policy_t  *p;
    cg_error_t    err;
    cg_result_t   res;
    X509         *chain[1] = { inter };

    memset(&err, 0, sizeof(cg_error_t));
    snprintf(path, sizeof(path), "%s/unit.policy", tmpdir);
    fp = fopen(path, "w");
    fputs("name unit-file;\n"
          "threshold tag 10;\n"
          "threshold block 40;\n"
          "weight hostname_mismatch 25;\n"
          "rule unit_org subject \"O=Example Org\" 15 \"example org\";\n"
          "exempt {\n"
          "    sni www.example.com;\n"
          "    signals unit_org;\n"
          "}\n", fp);
    fclose(fp);

    rc = cg_policy_load(&p, path, &err);
    is_int(rc, CG_OK, "policy file: loads (%s:%u %s)", err.file, err.line,
           rc ? err.msg : "");
    if (rc != CG_OK) {
        return;
    }

    eval(p, trust, leaf, chain, 1, "other.example.com", &res);
    is_str(res.policy, "unit-file", "policy file: name");
    is_int(hit(&res, "hostname_mismatch") ? hit(&res, "hostname_mismatch")
           ->weight : -1, 25, "policy file: weight statement");
    is_str(detail(&res, "unit_org"), "example org", "policy file: rule");
    is_int(res.score, 40, "policy file: score 25 + 15");
    is_str(cg_verdict_name(res.verdict), "block", "policy file: block "
           "threshold 40");

    eval(p, trust, leaf, chain, 1, "www.example.com", &res);
    ok(hit(&res, "unit_org") && hit(&res, "unit_org")->exempt,
       "policy file: exempt rule by sni");
    is_str(cg_verdict_name(res.verdict), "allow", "policy file: allow");

    cg_policy_free(p);
}


/* Profile findings that the openssl command line cannot make: a v1 leaf
 * and a negative serial. */
static void
test_profile(const cg_policy_t *p)
{
    spec_t         s;
    X509          *x, *chain[1] = { inter };
    X509_NAME     *name;
    cg_result_t    res;

    x = X509_new();
    X509_set_version(x, 0);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4711);
    name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *) "www.example.com", -1,
                               -1, 0);
    X509_set_subject_name(x, name);
    X509_NAME_free(name);
    X509_set_issuer_name(x, X509_get_subject_name(inter));
    ASN1_TIME_set(X509_getm_notBefore(x), (time_t) (NOW - 30 * DAY));
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t) (NOW + 60 * DAY));
    X509_set_pubkey(x, k_leaf);
    X509_sign(x, k_int, EVP_sha256());

    eval(p, trust, x, chain, 1, "www.example.com", &res);
    ok(!fired(&res, "untrusted_chain"), "profile: a v1 leaf verifies");
    is_str(detail(&res, "nonconformant"),
           "leaf: not an X.509 v3 certificate", "profile: a v1 leaf");
    X509_free(x);

    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=www.example.com";
    s.key = k_leaf;
    s.issuer = inter;
    s.issuer_key = k_int;
    s.san = "DNS:www.example.com";
    s.sct = 1;
    s.serial = -4711;
    x = mkcert(&s);
    eval(p, trust, x, chain, 1, "www.example.com", &res);
    is_str(detail(&res, "nonconformant"), "leaf: serial number not positive",
           "profile: a negative serial");
    X509_free(x);

    eval(p, trust, leaf, chain, 1, "www.example.com", &res);
    ok(!fired(&res, "nonconformant") && !fired(&res, "ca_leaf"),
       "profile: nothing on the fixture's chain");
}


int
main(void)
{
    char          ca_path[256];
    spec_t       s;
    cg_error_t   err;
    cg_policy_t *p;
    char         cmd[300];

    if (mkdtemp(tmpdir) == NULL) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }

    k_ca = ec_key("P-256");
    k_int = ec_key("P-256");
    k_leaf = ec_key("P-256");
    k_other = ec_key("P-256");

    memset(&s, 0, sizeof(spec_t));
    s.subject = "/CN=Unit Root/O=Unit PKI";
    s.key = k_ca;
    s.ca = 1;
    s.not_before = NOW - 365 * DAY;
    s.not_after = NOW + 3650 * DAY;
    ca = mkcert(&s);

    s.subject = "/CN=Unit Other Root/O=Other";
    s.key = k_other;
    other_ca = mkcert(&s);

    s.subject = "/CN=Unit Intermediate/O=Unit PKI";
    s.key = k_int;
    s.issuer = ca;
    s.issuer_key = k_ca;
    s.not_after = NOW + 1000 * DAY;
    inter = mkcert(&s);

    memset(&s, 0, sizeof(spec_t));
    s.subject = "/C=US/O=Example Org/CN=www.example.com";
    s.key = k_leaf;
    s.issuer = inter;
    s.issuer_key = k_int;
    s.san = "DNS:www.example.com";
    s.sct = 1;
    s.serial = 1001;
    leaf = mkcert(&s);

    /*
     * the fixture's root stands for the system bundle (public roots: CT and
     * the 398-day rule apply); private_trust has the same anchor as a
     * private root, as an internal CA given to certguard_trusted_certificate
     */
    /* write_pem() returns a static buffer */
    snprintf(ca_path, sizeof(ca_path), "%s", write_pem("ca.pem", &ca, 1));
    setenv("SSL_CERT_FILE", ca_path, 1);

    if (cg_trust_load(&trust, ca_path, 0, &err) != CG_OK
        || cg_trust_load(&other_trust, write_pem("other.pem", &other_ca, 1),
                         CG_TRUST_NO_SYSTEM, &err) != CG_OK)
    {
        printf("Bail out! trust: %s\n", err.msg);
        return 1;
    }

    setenv("SSL_CERT_FILE", write_pem("public.pem", &other_ca, 1), 1);

    if (cg_trust_load(&private_trust, ca_path, 0, &err) != CG_OK) {
        printf("Bail out! trust: %s\n", err.msg);
        return 1;
    }

    p = policy_new();

    test_chain_parse();
    test_trust();
    test_good(p);
    test_untrusted(p);
    test_validity(p);
    test_self_signed(p);
    test_weak(p);
    test_profile(p);
    test_names(p);
    test_lifetime(p);
    test_sct(p);
    test_blocklist(p);
    test_sni_mismatch(p);
    test_weights(p);
    test_hostile(p);
    test_lists(p);
    test_rules_exempts(p);
    test_policy_file();
    test_trust_union(p);

    policy_free(p);
    cg_trust_free(trust);
    cg_trust_free(other_trust);
    cg_trust_free(private_trust);
    X509_free(ca);
    X509_free(other_ca);
    X509_free(inter);
    X509_free(leaf);
    EVP_PKEY_free(k_ca);
    EVP_PKEY_free(k_int);
    EVP_PKEY_free(k_leaf);
    EVP_PKEY_free(k_other);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
        printf("# could not remove %s\n", tmpdir);
    }

    return done_testing();
}
