/*
 * Certificate facts, computed once per evaluation: DN strings, digests,
 * validity, key and signature parameters, SANs, SCTs and the result of
 * chain verification.  Every OpenSSL call that can return NULL or fail on
 * a hostile certificate is checked; what cannot be read is left unknown.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cg_facts.h"
#include "cg_memo.h"


/* untrusted certificates compared pairwise by cg_facts_one_issuer() */
#define CG_ONE_ISSUER_MAX   16


static int cg_facts_dn_same(const X509_NAME *name, const X509_NAME *known);
static char *cg_facts_dn_again(const X509_NAME *name,
    const X509_NAME *known, const char *str, size_t len, BIO **bio,
    size_t *out_len);
static int cg_facts_sent(cg_facts_t *f, unsigned k, X509 *x, BIO **bio);
static int cg_facts_store(cg_facts_t *f, cg_cert_facts_t *c, X509 *x,
    unsigned i, BIO **bio);
static int cg_facts_remembered(const cg_certs_found_t *found,
    cg_cert_facts_t *c);
static void cg_facts_remember(const cg_certs_found_t *found,
    const cg_cert_facts_t *c);
static int cg_facts_copy(cg_cert_facts_t *dst, const cg_cert_facts_t *src);
static int cg_facts_cert(cg_cert_facts_t *c, X509 *x, unsigned depth,
    const cg_cert_facts_t *child, const cg_cert_facts_t *parent,
    const unsigned char *sha256, const unsigned char *spki, BIO **bio);
static int cg_facts_time(const ASN1_TIME *t, int64_t *out);
static void cg_facts_serial(X509 *x, char *buf, size_t size);
static void cg_facts_san(cg_facts_t *f);
static void cg_facts_verify(cg_facts_t *f, BIO **bio);
static int cg_facts_verify_run(cg_facts_t *f, STACK_OF(X509) *untrusted,
    BIO **bio);
static int cg_facts_verify_cb(int ok, X509_STORE_CTX *ctx);
static int cg_facts_one_issuer(const cg_facts_t *f,
    STACK_OF(X509) *untrusted);
static void cg_facts_path(cg_facts_t *f, STACK_OF(X509) *chain,
    int untrusted, BIO **bio);
static void cg_facts_path_as_sent(cg_facts_t *f);
static void cg_facts_depth(cg_facts_t *f);


int
cg_facts_init(cg_facts_t *f, const cg_input_t *in)
{
    int              n, i;
    unsigned         k, max;
    X509            *x;
    BIO             *bio;
    STACK_OF(X509)  *chain;

    memset(f, 0, sizeof(cg_facts_t));
    bio = NULL;

    if (in == NULL || in->leaf == NULL || in->policy == NULL) {
        return CG_ERR_ARG;
    }

    f->in = in;
    f->policy = in->policy;
    f->now = in->now ? in->now : (int64_t) time(NULL);

    chain = in->chain;
    n = chain ? sk_X509_num(chain) : 0;
    if (n < 0) {
        n = 0;
    }

    /* a chain longer than the policy's max_chain is counted, and only its
     * first certificates are looked at (chain_too_long says so) */
    max = in->policy->max_chain ? in->policy->max_chain : CG_MAX_CHAIN;
    max = max < CG_MAX_CHAIN_MAX ? max : CG_MAX_CHAIN_MAX;

    f->certs = calloc((size_t) (n + 1 < (int) max ? n + 1 : (int) max),
                      sizeof(cg_cert_facts_t));
    if (f->certs == NULL) {
        return CG_ERR_NOMEM;
    }

    /* the leaf's facts after the others': its issuer's name is then
     * usually the next one's subject, remembered or printed already */
    f->ncerts = 1;
    f->nsent = 1;

    for (i = 0; i < n; i++) {
        x = sk_X509_value(chain, i);

        /* the chain "may hold the leaf": it is then its first element */
        if (x == NULL
            || (i == 0 && (x == in->leaf || X509_cmp(x, in->leaf) == 0)))
        {
            continue;
        }

        f->nsent++;
        k = f->ncerts;

        if (k == max) {
            continue;
        }

        if (cg_facts_sent(f, k, x, &bio) != CG_OK) {
            BIO_free(bio);
            return CG_ERR_NOMEM;
        }

        f->certs[k].sent = (int) k;
        f->ncerts++;
    }

    if (cg_facts_cert(&f->certs[0], in->leaf, 0, NULL,
                      f->ncerts > 1 ? &f->certs[1] : NULL, in->leaf_sha256,
                      in->leaf_spki_sha256, &bio)
        != CG_OK)
    {
        BIO_free(bio);
        return CG_ERR_NOMEM;
    }

    cg_facts_serial(in->leaf, f->serial, sizeof(f->serial));
    cg_facts_san(f);

    f->has_sct = X509_get_ext_by_NID(in->leaf, NID_ct_precert_scts, -1) >= 0;

    cg_facts_verify(f, &bio);
    cg_facts_depth(f);

    BIO_free(bio);

    if (f->path == NULL) {
        cg_facts_path_as_sent(f);
        if (f->path == NULL) {
            return CG_ERR_NOMEM;
        }
    }

    return CG_OK;
}


void
cg_facts_free(cg_facts_t *f)
{
    unsigned  i;

    if (f->certs) {
        for (i = 0; i < f->ncerts; i++) {
            free(f->certs[i].subject);
            free(f->certs[i].issuer);
            if (f->certs[i].owned) {
                X509_free(f->certs[i].x);
            }
        }

        free(f->certs);
        f->certs = NULL;
    }

    if (f->store_certs) {
        for (i = 0; i < f->nstore; i++) {
            free(f->store_certs[i].subject);
            free(f->store_certs[i].issuer);
            X509_free(f->store_certs[i].x);
        }

        free(f->store_certs);
        f->store_certs = NULL;
    }

    free(f->path);
    f->path = NULL;

    GENERAL_NAMES_free(f->san);
    f->san = NULL;

    cg_facts_memory_free(f);
    X509_free(f->san_cert);
    f->san_cert = NULL;
}


/*
 * The k-th certificate as sent (k > 0), through the caller's cache of
 * decoded certificates: bytes it holds are evaluated as the object
 * decoded from them before, with the facts made of it then; new ones go
 * there with their facts.  Out of memory on the way, the certificate is
 * looked at as sent.
 */

static int
cg_facts_sent(cg_facts_t *f, unsigned k, X509 *x, BIO **bio)
{
    cg_cert_facts_t   *c;
    cg_certs_found_t   found;

    c = &f->certs[k];

    cg_certs_find(f->in->certs, x, f->certs, k, &found);

    if (found.x != x && !X509_up_ref(found.x)) {
        found.x = x;
        found.facts = NULL;
        found.keep = NULL;
    }

    if (!cg_facts_remembered(&found, c)
        && cg_facts_cert(c, found.x, k, k > 1 ? &f->certs[k - 1] : NULL,
                          NULL, NULL, NULL, bio) != CG_OK)
    {
        if (found.x != x) {
            X509_free(found.x);
        }
        return CG_ERR_NOMEM;
    }

    c->x = found.x;
    c->owned = found.x != x;

    cg_facts_remember(&found, c);

    return CG_OK;
}


/*
 * A certificate of the store on the path at depth i > 0 (an anchor, or an
 * intermediate it holds): its facts from the caller's decoded-certificate
 * cache by its DER, the object staying the store's; made, with the
 * trust's digest of it, and kept there otherwise.
 */

static int
cg_facts_store(cg_facts_t *f, cg_cert_facts_t *c, X509 *x, unsigned i,
    BIO **bio)
{
    unsigned char      md[32];
    cg_certs_found_t   found;

    cg_certs_find(i > 0 ? f->in->certs : NULL, x, NULL, 0, &found);

    if (!cg_facts_remembered(&found, c)
        && cg_facts_cert(c, x, i, i ? f->path[i - 1] : NULL, NULL,
                         cg_trust_digest(f->in->trust, x, md) ? md : NULL,
                         NULL, bio)
           != CG_OK)
    {
        return CG_ERR_NOMEM;
    }

    c->x = x;
    c->owned = 0;

    cg_facts_remember(&found, c);

    return CG_OK;
}


/*
 * Facts kept for the same DER (every member follows from the bytes, and
 * above the leaf self_signed does too), into c with strings of its own:
 * 1, or 0 when there are none or no memory for the strings.
 */

static int
cg_facts_remembered(const cg_certs_found_t *found, cg_cert_facts_t *c)
{
    return found->facts != NULL && cg_facts_copy(c, found->facts);
}


/* c, made of found->x's bytes above the leaf, kept where found says */

static void
cg_facts_remember(const cg_certs_found_t *found, const cg_cert_facts_t *c)
{
    cg_cert_facts_t  *keep;

    if (found->keep == NULL || *found->keep != NULL) {
        return;
    }

    keep = malloc(sizeof(cg_cert_facts_t));
    if (keep == NULL) {
        return;
    }

    if (!cg_facts_copy(keep, c)) {
        free(keep);
        return;
    }

    keep->x = NULL;
    keep->owned = 0;
    keep->sent = 0;
    *found->keep = keep;
}


/* dst = src with names of its own: 1, or 0 (dst zeroed) out of memory */

static int
cg_facts_copy(cg_cert_facts_t *dst, const cg_cert_facts_t *src)
{
    *dst = *src;
    dst->subject = malloc(src->subject_len + 1);
    dst->issuer = malloc(src->issuer_len + 1);

    if (dst->subject == NULL || dst->issuer == NULL) {
        free(dst->subject);
        free(dst->issuer);
        memset(dst, 0, sizeof(cg_cert_facts_t));
        return 0;
    }

    memcpy(dst->subject, src->subject, src->subject_len + 1);
    memcpy(dst->issuer, src->issuer, src->issuer_len + 1);

    return 1;
}


/*
 * child: the certificate before this one in the chain, whose issuer is
 * usually this one's subject, as this one's issuer is its own subject when
 * self-issued; parent (the leaf's): the one after it, whose subject is
 * usually its issuer.  A name with the same DER prints the same, so it is
 * printed once (printing is most of the facts' own work).
 */

static int
cg_facts_cert(cg_cert_facts_t *c, X509 *x, unsigned depth,
    const cg_cert_facts_t *child, const cg_cert_facts_t *parent,
    const unsigned char *sha256, const unsigned char *spki, BIO **bio)
{
    int               sha1, done;
    unsigned int      mdlen;
    EVP_PKEY         *pkey;
    const X509_NAME  *subject, *issuer;

    c->x = x;

    subject = X509_get_subject_name(x);
    issuer = X509_get_issuer_name(x);

    if (child && child->issuer) {
        c->subject = cg_facts_dn_again(subject, X509_get_issuer_name(child->x),
                                       child->issuer, child->issuer_len, bio,
                                       &c->subject_len);
    } else {
        c->subject = cg_facts_dn(subject, bio, &c->subject_len);
    }

    if (c->subject == NULL) {
        return CG_ERR_NOMEM;
    }

    if (parent && parent->subject && !cg_facts_dn_same(issuer, subject)) {
        c->issuer = cg_facts_dn_again(issuer, X509_get_subject_name(parent->x),
                                      parent->subject, parent->subject_len,
                                      bio, &c->issuer_len);
    } else {
        c->issuer = cg_facts_dn_again(issuer, subject, c->subject,
                                      c->subject_len, bio, &c->issuer_len);
    }

    if (c->issuer == NULL) {
        return CG_ERR_NOMEM;
    }

    /* the extensions cached first: X509_digest() then takes OpenSSL's
     * SHA-1 of the certificate from that cache instead of encoding and
     * hashing it again */
    (void) X509_get_extension_flags(x);

    mdlen = 0;
    sha1 = X509_digest(x, cg_md_sha1(), c->sha1, &mdlen) == 1 && mdlen == 20;

    /* the caller's digests, the others from one encoding of it */
    done = (sha256 ? CG_DIGEST_CERT : 0) | (spki ? CG_DIGEST_SPKI : 0);

    if (sha256 != NULL) {
        memcpy(c->sha256, sha256, 32);
    }

    if (spki != NULL) {
        memcpy(c->spki, spki, 32);
    }

    if (done != (CG_DIGEST_CERT | CG_DIGEST_SPKI)) {
        done |= cg_cert_digests(x, sha256 ? NULL : c->sha256,
                                spki ? NULL : c->spki);
    }

    c->digests = sha1 && (done & CG_DIGEST_CERT);
    c->spki_ok = (done & CG_DIGEST_SPKI) != 0;

    c->has_not_before = cg_facts_time(X509_get0_notBefore(x),
                                      &c->not_before);
    c->has_not_after = cg_facts_time(X509_get0_notAfter(x), &c->not_after);

    c->key_id = NID_undef;
    pkey = X509_get0_pubkey(x);     /* NULL for key types OpenSSL lacks */
    if (pkey) {
        c->key_id = EVP_PKEY_get_base_id(pkey);
        c->key_bits = EVP_PKEY_get_bits(pkey);
        if (c->key_bits < 0) {
            c->key_bits = 0;
        }
    }

    c->sig_mdnid = NID_undef;
    c->sig_pknid = NID_undef;

    if (X509_get_signature_info(x, &c->sig_mdnid, &c->sig_pknid,
                                &c->sig_secbits, NULL) == 1)
    {
        c->sig_known = 1;

    } else {
        /* algorithms OpenSSL no longer implements, MD2 and MD4 among
         * them, are still known by their OIDs */
        c->sig_mdnid = NID_undef;
        c->sig_pknid = NID_undef;
        c->sig_secbits = 0;
        if (OBJ_find_sigid_algs(X509_get_signature_nid(x), &c->sig_mdnid,
                                &c->sig_pknid) != 1)
        {
            c->sig_mdnid = NID_undef;
            c->sig_pknid = NID_undef;
        }
    }

    /*
     * The leaf's own signature is checked (the self_signed signal); a
     * certificate further up only needs to look self-signed (names and
     * key ids) for weak_signature to skip it, and a signature check there
     * would cost as much as the whole verification of the chain.
     */
    c->self_signed = X509_self_signed(x, depth == 0) == 1;

    return CG_OK;
}


static int
cg_facts_dn_same(const X509_NAME *name, const X509_NAME *known)
{
    size_t                a, b;
    const unsigned char  *da, *db;

    return name && known
           && X509_NAME_get0_der(name, &da, &a) == 1
           && X509_NAME_get0_der(known, &db, &b) == 1
           && a == b && memcmp(da, db, a) == 0;
}


/* name printed: a copy of str when its DER is known's, else printed */

static char *
cg_facts_dn_again(const X509_NAME *name, const X509_NAME *known,
    const char *str, size_t len, BIO **bio, size_t *out_len)
{
    char  *s;

    if (cg_facts_dn_same(name, known)) {
        s = malloc(len + 1);
        if (s == NULL) {
            return NULL;
        }

        memcpy(s, str, len + 1);
        *out_len = len;

        return s;
    }

    return cg_facts_dn(name, bio, out_len);
}


/*
 * RFC 2253 with UTF-8 kept as is (no \XX escapes of high bytes); a name
 * whose strings do not convert to UTF-8 is printed again fully escaped.
 * cg_dn_print() writes the common names, OpenSSL the rest.
 */

char *
cg_facts_dn(const X509_NAME *name, BIO **bio, size_t *len)
{
    int    k;
    char  *data, *s, buf[1024];
    long   n;

    k = name != NULL ? cg_dn_print(name, buf, sizeof(buf)) : -1;

    if (k >= 0) {
        s = malloc((size_t) k + 1);
        if (s == NULL) {
            return NULL;
        }

        memcpy(s, buf, (size_t) k + 1);
        *len = (size_t) k;

        return s;
    }

    /* made on the first name OpenSSL prints, kept for the caller's next */

    if (*bio == NULL) {
        *bio = BIO_new(BIO_s_mem());
        if (*bio == NULL) {
            return NULL;
        }
    }

    (void) BIO_reset(*bio);

    if (name != NULL
        && X509_NAME_print_ex(*bio, name, 0,
                              XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB)
           < 0)
    {
        (void) BIO_reset(*bio);
        if (X509_NAME_print_ex(*bio, name, 0, XN_FLAG_RFC2253) < 0) {
            (void) BIO_reset(*bio);
        }
    }

    n = BIO_get_mem_data(*bio, &data);
    if (n < 0 || data == NULL) {
        n = 0;
    }

    s = malloc((size_t) n + 1);
    if (s == NULL) {
        return NULL;
    }

    if (n) {
        memcpy(s, data, (size_t) n);
    }

    s[n] = '\0';
    *len = (size_t) n;

    return s;
}


static int
cg_facts_time(const ASN1_TIME *t, int64_t *out)
{
    struct tm  tm;

    if (t == NULL) {
        return 0;
    }

    memset(&tm, 0, sizeof(struct tm));

    if (!cg_asn1_time_tm(t, &tm) && ASN1_TIME_to_tm(t, &tm) != 1) {
        return 0;
    }

    *out = cg_tm_to_epoch(&tm);

    return 1;
}


/* The serial as `openssl x509 -serial` prints it: upper-case hex of the
 * magnitude, '-' for a negative one (which DER allows and CAs must not). */

static void
cg_facts_serial(X509 *x, char *buf, size_t size)
{
    static const char     hex[] = "0123456789ABCDEF";
    const ASN1_INTEGER   *serial;
    const unsigned char  *p;
    size_t                i, n, k;

    buf[0] = '\0';

    serial = X509_get0_serialNumber(x);
    if (serial == NULL) {
        return;
    }

    p = ASN1_STRING_get0_data(serial);
    n = (size_t) ASN1_STRING_length(serial);
    k = 0;

    if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER && k + 1 < size) {
        buf[k++] = '-';
    }

    if (p == NULL || n == 0) {
        if (k + 2 < size) {
            buf[k++] = '0';
            buf[k++] = '0';
        }
    }

    for (i = 0; p && i < n && k + 2 < size; i++) {
        buf[k++] = hex[p[i] >> 4];
        buf[k++] = hex[p[i] & 0x0f];
    }

    buf[k] = '\0';
}


/*
 * The leaf's SANs as X509_get_ext_d2i() reads them (NULL for none, two
 * extensions or a malformed one), but one GeneralName at a time and at
 * most CG_SAN_MAX: a certificate of 10,000 names costs what one of 1,000
 * does.  Past the limit nothing is read, so nothing there is malformed.
 */
static void
cg_facts_san(cg_facts_t *f)
{
    int                    idx, i, n, tag, cls, rc;
    long                   len;
    X509                  *leaf;
    GENERAL_NAME          *gn;
    GENERAL_NAMES         *san;
    ASN1_OCTET_STRING     *os;
    const unsigned char   *p, *end, *q;

    leaf = f->in->leaf;

    idx = X509_get_ext_by_NID(leaf, NID_subject_alt_name, -1);
    if (idx < 0 || X509_get_ext_by_NID(leaf, NID_subject_alt_name, idx) >= 0)
    {
        return;
    }

    os = X509_EXTENSION_get_data(X509_get_ext(leaf, idx));
    p = os ? ASN1_STRING_get0_data(os) : NULL;
    if (p == NULL) {
        return;
    }

    /* SEQUENCE OF GeneralName, definite length */
    rc = ASN1_get_object(&p, &len, &tag, &cls, ASN1_STRING_length(os));
    if (rc != V_ASN1_CONSTRUCTED || tag != V_ASN1_SEQUENCE
        || cls != V_ASN1_UNIVERSAL)
    {
        return;
    }

    san = sk_GENERAL_NAME_new_null();
    if (san == NULL) {
        return;
    }

    end = p + len;

    for (n = 0; p < end; n++) {
        if (n == CG_SAN_MAX) {
            f->san_truncated = 1;
            break;
        }

        q = p;
        gn = d2i_GENERAL_NAME(NULL, &q, end - p);

        if (gn == NULL || !sk_GENERAL_NAME_push(san, gn)) {
            GENERAL_NAME_free(gn);
            GENERAL_NAMES_free(san);
            f->san_truncated = 0;
            return;
        }

        p = q;
    }

    f->san = san;

    for (i = 0; i < sk_GENERAL_NAME_num(san); i++) {
        gn = sk_GENERAL_NAME_value(san, i);
        if (gn->type == GEN_DNS || gn->type == GEN_IPADD) {
            f->san_dns_ip = 1;
            return;
        }
    }
}


X509 *
cg_facts_name_cert(cg_facts_t *f)
{
    X509  *x;

    if (!f->san_truncated) {
        return f->in->leaf;
    }

    if (f->san_cert == NULL) {
        x = X509_new();

        if (x == NULL
            || X509_set_subject_name(x, X509_get_subject_name(f->in->leaf))
               != 1
            || X509_add1_ext_i2d(x, NID_subject_alt_name, f->san, 0,
                                 X509V3_ADD_DEFAULT) != 1)
        {
            X509_free(x);
            return NULL;
        }

        f->san_cert = x;
    }

    return f->san_cert;
}


/*
 * X509_V_FLAG_X509_STRICT adds RFC 5280's profile checks to the
 * verification (key identifiers, critical basicConstraints, keyUsage of a
 * non-CA, empty names, ...).  What only those checks find does not break
 * a path: RFC 5280's path validation (section 6) does not ask it, and
 * private PKIs often lack key identifiers.  It is a finding of the
 * nonconformant signal instead.  A CA without keyUsage is not even that:
 * RFC 5280 binds the issuing CA, every validator accepts it, and old roots
 * lack it.  Two strict checks stay path errors, as they point at an
 * attack rather than a careless CA: signature algorithms that differ
 * inside and outside the signed part, and an EC key with explicit curve
 * parameters (CVE-2020-0601).
 *
 * Two codes are shared with the lenient checks and strict only in some
 * places: INVALID_CA of the leaf (a v1 or basicConstraints-less
 * certificate OpenSSL would take as a CA) or of the top certificate when
 * it is a CA by keyUsage or as a v1 root; INVALID_PURPOSE of a CA whose
 * CA-ness is of those kinds.
 */

int
cg_verify_class(X509_STORE_CTX *ctx, int code, int depth)
{
    int              n, ca;
    X509            *x;
    STACK_OF(X509)  *chain;

    switch (code) {

    case X509_V_ERR_CERT_NOT_YET_VALID:
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_HAS_EXPIRED:
        return CG_VERR_TIME;

    case X509_V_ERR_CA_CERT_MISSING_KEY_USAGE:
        return CG_VERR_IGNORED;

    case X509_V_ERR_PATHLEN_INVALID_FOR_NON_CA:
    case X509_V_ERR_PATHLEN_WITHOUT_KU_KEY_CERT_SIGN:
    case X509_V_ERR_KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA:
    case X509_V_ERR_ISSUER_NAME_EMPTY:
    case X509_V_ERR_SUBJECT_NAME_EMPTY:
    case X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER:
    case X509_V_ERR_MISSING_SUBJECT_KEY_IDENTIFIER:
    case X509_V_ERR_EMPTY_SUBJECT_ALT_NAME:
    case X509_V_ERR_EMPTY_SUBJECT_SAN_NOT_CRITICAL:
    case X509_V_ERR_CA_BCONS_NOT_CRITICAL:
    case X509_V_ERR_AUTHORITY_KEY_IDENTIFIER_CRITICAL:
    case X509_V_ERR_SUBJECT_KEY_IDENTIFIER_CRITICAL:
    case X509_V_ERR_EXTENSIONS_REQUIRE_VERSION_3:
        return CG_VERR_PROFILE;

    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_INVALID_PURPOSE:
        break;

    default:
        return CG_VERR_PATH;
    }

    x = ctx ? X509_STORE_CTX_get_current_cert(ctx) : NULL;
    chain = ctx ? X509_STORE_CTX_get0_chain(ctx) : NULL;
    n = chain ? sk_X509_num(chain) : 0;

    if (x == NULL || depth < 0) {
        return CG_VERR_PATH;
    }

    if (code == X509_V_ERR_INVALID_CA) {
        if (depth == 0) {
            return CG_VERR_PROFILE;
        }

        return depth + 1 == n && X509_check_ca(x) != 0 ? CG_VERR_PROFILE
                                                       : CG_VERR_PATH;
    }

    if (depth == 0) {
        return CG_VERR_PATH;
    }

    /* a trusted certificate rejected for the purpose by its own trust
     * settings is rejected whatever the checks */
    if (depth >= X509_STORE_CTX_get_num_untrusted(ctx)
        && X509_check_trust(x, X509_TRUST_SSL_SERVER, X509_TRUST_NO_SS_COMPAT)
           == X509_TRUST_REJECTED)
    {
        return CG_VERR_PATH;
    }

    ca = X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 1);

    return ca != 0 && ca != 1 ? CG_VERR_PROFILE : CG_VERR_PATH;
}


static void
cg_facts_verify_record(cg_facts_t *f, int depth, int code, int cls)
{
    if (f->nerrors < CG_VERIFY_ERR_MAX) {
        f->errors[f->nerrors].depth = depth;
        f->errors[f->nerrors].code = code;
    }

    f->nerrors++;

    if (cls == CG_VERR_PATH) {
        if (f->npath_errors == 0) {
            f->first_path_error.depth = depth;
            f->first_path_error.code = code;
        }

        f->npath_errors++;

    } else if (cls == CG_VERR_PROFILE) {
        cg_finding_add(&f->profile, code, depth);
    }
}


void
cg_finding_add(cg_finding_t *fd, int code, int depth)
{
    if (fd->n++ == 0) {
        fd->code = code;
        fd->depth = depth;
    }
}


int
cg_facts_anchor_public(cg_facts_t *f, X509 *top)
{
    unsigned char  md[32];

    if (!f->anchor_checked) {
        f->anchor_checked = 1;
        f->anchor_public = top && f->in->trust
                           && (cg_facts_sha256(f, top, md)
                               ? cg_trust_is_public_md(f->in->trust, md)
                               : cg_trust_is_public(f->in->trust, top));
    }

    return f->anchor_public;
}


int
cg_facts_sha256(const cg_facts_t *f, X509 *x, unsigned char *md)
{
    unsigned  i;

    for (i = 0; i < f->ncerts; i++) {
        if (f->certs[i].x == x && f->certs[i].digests) {
            memcpy(md, f->certs[i].sha256, 32);
            return 1;
        }
    }

    return cg_trust_digest(f->in->trust, x, md);
}


/*
 * Profile findings that say nothing about the server: those of a public
 * root, which a root program vetted and certguard's user cannot change,
 * and a missing authority key identifier where the issuer has no subject
 * key identifier to name (the issuer's finding, not this certificate's).
 */

static int
cg_facts_profile_moot(cg_facts_t *f, X509_STORE_CTX *ctx, int depth,
    int code)
{
    int              n;
    X509            *top;
    STACK_OF(X509)  *chain;

    chain = X509_STORE_CTX_get0_chain(ctx);
    n = chain ? sk_X509_num(chain) : 0;

    if (depth < 0 || depth >= n) {
        return 0;
    }

    if (code == X509_V_ERR_MISSING_AUTHORITY_KEY_IDENTIFIER
        && depth + 1 < n
        && X509_get0_subject_key_id(sk_X509_value(chain, depth + 1)) == NULL)
    {
        return 1;
    }

    if (depth + 1 < n || depth < X509_STORE_CTX_get_num_untrusted(ctx)) {
        return 0;
    }

    top = sk_X509_value(chain, n - 1);

    return cg_facts_anchor_public(f, top);
}


/* Records every error and goes on, so that one verification tells all
 * that is wrong with the chain, not only the first thing. */

static int
cg_facts_verify_cb(int ok, X509_STORE_CTX *ctx)
{
    int          depth, code, cls;
    cg_facts_t  *f;

    if (ok) {
        return 1;
    }

    f = X509_STORE_CTX_get_app_data(ctx);
    if (f) {
        depth = X509_STORE_CTX_get_error_depth(ctx);
        code = X509_STORE_CTX_get_error(ctx);
        cls = cg_verify_class(ctx, code, depth);

        if (cls == CG_VERR_PROFILE
            && cg_facts_profile_moot(f, ctx, depth, code))
        {
            cls = CG_VERR_IGNORED;
        }

        cg_facts_verify_record(f, depth, code, cls);
    }

    return 1;
}


/*
 * One verification of the leaf with these untrusted certificates; the
 * errors go to f's counters, and with bio the path it built to f->path.
 * CG_OK, or CG_ERR_NOMEM with nothing verified.
 */

static int
cg_facts_verify_run(cg_facts_t *f, STACK_OF(X509) *untrusted, BIO **bio)
{
    int                  rc, code, n;
    X509_STORE_CTX      *ctx;
    X509_VERIFY_PARAM   *param;
    STACK_OF(X509)      *chain;

    ctx = X509_STORE_CTX_new();
    if (ctx == NULL) {
        return CG_ERR_NOMEM;
    }

    if (X509_STORE_CTX_init(ctx, f->in->trust->store, f->in->leaf,
                            untrusted)
        != 1)
    {
        X509_STORE_CTX_free(ctx);
        return CG_ERR_NOMEM;
    }

    (void) X509_STORE_CTX_set_default(ctx, "ssl_server");

    param = X509_STORE_CTX_get0_param(ctx);

    f->walk_time = cg_facts_one_issuer(f, untrusted);

    if (f->walk_time) {
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_NO_CHECK_TIME);

    } else {
        X509_VERIFY_PARAM_set_time(param, (time_t) f->now);
    }

    /*
     * The profile checks as well: what they alone find is sorted out by
     * cg_verify_class(), in the same pass.  Any certificate of the store
     * is an anchor (RFC 5280 6.1: a trust anchor is a name and a key, not
     * a self-signed certificate): an intermediate or a leaf pinned in the
     * CA file ends a path.
     */
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT
                                       | X509_V_FLAG_PARTIAL_CHAIN);

    X509_STORE_CTX_set_verify_cb(ctx, cg_facts_verify_cb);
    (void) X509_STORE_CTX_set_app_data(ctx, f);

    /* signatures these bytes passed before are not checked again */
    cg_memo_hook(ctx, f->in);

    rc = X509_verify_cert(ctx);

    if (rc != 1 && f->nerrors == 0) {
        /* failed without telling the callback: an internal error */
        code = X509_STORE_CTX_get_error(ctx);
        cg_facts_verify_record(f, X509_STORE_CTX_get_error_depth(ctx),
                               code != X509_V_OK ? code
                                                 : X509_V_ERR_UNSPECIFIED,
                               CG_VERR_PATH);
    }

    f->trusted = f->npath_errors == 0;

    chain = X509_STORE_CTX_get0_chain(ctx);
    n = chain ? sk_X509_num(chain) : 0;

    if (f->trusted && bio) {
        f->public_root = n > 0
                         && cg_facts_anchor_public(f,
                                                   sk_X509_value(chain, n - 1));
    }

    if (n > 0 && bio) {
        cg_facts_path(f, chain, X509_STORE_CTX_get_num_untrusted(ctx), bio);
    }

    X509_STORE_CTX_free(ctx);

    return CG_OK;
}


/*
 * OpenSSL's chain building compares an issuer's validity with the time
 * (four X509_cmp_time() calls, each printing an ASN1_TIME: a tenth of a
 * new leaf's evaluation) only to prefer a valid one among several that
 * match a certificate's issuer: with one candidate at most, the path is
 * the same without.  Then, and when the memo's walk (which checks
 * validity at f->now, as OpenSSL's own walk would) replaces OpenSSL's,
 * the search runs with X509_V_FLAG_NO_CHECK_TIME.  One candidate at most:
 * the untrusted certificates' subjects all differ, and no issuer they or
 * the leaf name is a subject anchors share (cg_trust_name_shared(), which
 * also rules out anchors leading to one).
 */

static int
cg_facts_one_issuer(const cg_facts_t *f, STACK_OF(X509) *untrusted)
{
    int        i, j, n;
    X509      *x;

    if (f->in->verify_memo == NULL || !cg_memo_supported()
        || cg_trust_name_shared(f->in->trust,
                                X509_get_issuer_name(f->in->leaf)))
    {
        return 0;
    }

    n = untrusted ? sk_X509_num(untrusted) : 0;

    if (n > CG_ONE_ISSUER_MAX) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        x = sk_X509_value(untrusted, i);

        if (cg_trust_name_shared(f->in->trust, X509_get_issuer_name(x))) {
            return 0;
        }

        for (j = 0; j < i; j++) {
            if (X509_NAME_cmp(X509_get_subject_name(x),
                              X509_get_subject_name(sk_X509_value(untrusted,
                                                                  j)))
                == 0)
            {
                return 0;
            }
        }
    }

    return 1;
}


/* A path cg_path_search() offers: does it verify?  Into scratch facts. */

static int
cg_facts_path_try(void *data, STACK_OF(X509) *untrusted)
{
    cg_facts_t   s;
    cg_facts_t  *f;

    f = data;

    memset(&s, 0, sizeof(cg_facts_t));
    s.in = f->in;
    s.policy = f->policy;
    s.now = f->now;

    if (cg_facts_verify_run(&s, untrusted, NULL) != CG_OK) {
        return -1;
    }

    return s.npath_errors == 0;
}


/* Forgets a verification's outcome, for another one. */

static void
cg_facts_verify_reset(cg_facts_t *f)
{
    unsigned  i;

    for (i = 0; i < f->nstore; i++) {
        free(f->store_certs[i].subject);
        free(f->store_certs[i].issuer);
        X509_free(f->store_certs[i].x);
    }

    free(f->store_certs);
    free(f->path);

    f->store_certs = NULL;
    f->nstore = 0;
    f->path = NULL;
    f->npath = 0;
    f->path_anchor = 0;
    f->anchor_checked = 0;
    f->anchor_public = 0;
    f->trusted = 0;
    f->public_root = 0;
    f->nerrors = 0;
    f->npath_errors = 0;
    memset(f->errors, 0, sizeof(f->errors));
    memset(&f->first_path_error, 0, sizeof(cg_verify_err_t));
    memset(&f->profile, 0, sizeof(cg_finding_t));
}


static void
cg_facts_verify(cg_facts_t *f, BIO **bio)
{
    int                  rc;
    unsigned             i;
    X509               **sent;
    STACK_OF(X509)      *untrusted, *alt;

    if (f->in->trust == NULL) {
        /* no anchors: untrusted_chain says so itself */
        f->npath_errors = 1;
        f->first_path_error.code = X509_V_ERR_UNSPECIFIED;
        f->trusted = 0;
        return;
    }

    untrusted = NULL;
    sent = NULL;

    if (f->ncerts > 1 || f->in->intermediates != NULL) {
        untrusted = sk_X509_new_reserve(NULL, (int) f->ncerts - 1);
        if (untrusted == NULL) {
            goto failed;
        }

        for (i = 1; i < f->ncerts; i++) {
            (void) sk_X509_push(untrusted, f->certs[i].x);
        }

        /* issuers the server left out, from the intermediates pool */
        if (cg_pool_complete(f->in->intermediates, f->in->leaf, untrusted)
            != 0)
        {
            goto failed;
        }
    }

    if (cg_facts_verify_run(f, untrusted, bio) != CG_OK) {
        goto failed;
    }

    /* a failed path may have a sibling through other sent issuers */
    if (f->npath_errors > 0 && f->ncerts > 2) {
        sent = calloc(f->ncerts - 1, sizeof(X509 *));
        if (sent == NULL) {
            goto failed;
        }

        for (i = 1; i < f->ncerts; i++) {
            sent[i - 1] = f->certs[i].x;
        }

        rc = cg_path_search(f->in->leaf, sent, f->ncerts - 1,
                            cg_facts_path_try, f, &alt);

        if (rc == 1) {
            cg_facts_verify_reset(f);
            rc = cg_facts_verify_run(f, alt, bio);
            sk_X509_free(alt);

            if (rc != CG_OK) {
                goto failed;
            }
        }
    }

    free(sent);
    sk_X509_free(untrusted);

    return;

failed:

    free(sent);
    sk_X509_free(untrusted);

    cg_facts_verify_reset(f);
    cg_facts_verify_record(f, 0, X509_V_ERR_OUT_OF_MEM, CG_VERR_PATH);
    f->trusted = 0;
}


/*
 * The chain OpenSSL built, as facts: the certificates the server sent keep
 * theirs, the others (from the store, untrusted ones first) get their own.
 * Past num_untrusted every certificate came from the store, so the last
 * one is an anchor.
 */

static void
cg_facts_path(cg_facts_t *f, STACK_OF(X509) *chain, int untrusted,
    BIO **bio)
{
    int               n, i;
    unsigned          k;
    X509             *x;
    cg_cert_facts_t  *c;

    n = sk_X509_num(chain);

    f->path = calloc((size_t) n, sizeof(cg_cert_facts_t *));
    f->store_certs = calloc((size_t) n, sizeof(cg_cert_facts_t));

    if (f->path == NULL || f->store_certs == NULL) {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        x = sk_X509_value(chain, i);
        c = NULL;

        for (k = 0; k < f->ncerts; k++) {
            if (f->certs[k].x == x) {
                c = &f->certs[k];
                break;
            }
        }

        /* a sent copy of a store certificate: the same facts */
        for (k = 0; c == NULL && k < f->ncerts; k++) {
            if (X509_cmp(f->certs[k].x, x) == 0) {
                c = &f->certs[k];
            }
        }

        if (c == NULL) {
            c = &f->store_certs[f->nstore];

            if (!X509_up_ref(x)) {
                goto failed;
            }

            f->nstore++;

            if (cg_facts_store(f, c, x, (unsigned) i, bio) != CG_OK) {
                goto failed;
            }

            c->sent = -1;
        }

        f->path[i] = c;
    }

    f->npath = (unsigned) n;
    f->path_anchor = untrusted < n;

    return;

failed:

    /* the chain as sent stands in; cg_facts_free releases the rest */
    free(f->path);
    f->path = NULL;
}


/*
 * A caller's maximum depth (limbo's max_chain_depth), counted as RFC 5280
 * counts pathLenConstraint: the intermediates of the verified path, not
 * the leaf, not the anchor, and not a self-issued intermediate (a CA's
 * key rollover).  X509_VERIFY_PARAM_set_depth() would count those too.
 */

static void
cg_facts_depth(cg_facts_t *f)
{
    unsigned  i, n, last;
    X509     *x;

    if (!f->in->max_depth_on || !f->trusted || f->npath < 3) {
        return;
    }

    n = 0;
    last = f->npath - 1;

    for (i = 1; i < last; i++) {
        x = f->path[i]->x;

        if (X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x))
            != 0)
        {
            n++;
        }

        if (n > f->in->max_depth) {
            cg_facts_verify_record(f, (int) i, X509_V_ERR_CERT_CHAIN_TOO_LONG,
                                   CG_VERR_PATH);
            f->trusted = 0;
            f->public_root = 0;
            return;
        }
    }
}


static void
cg_facts_path_as_sent(cg_facts_t *f)
{
    unsigned  i;

    f->path = calloc(f->ncerts, sizeof(cg_cert_facts_t *));
    if (f->path == NULL) {
        return;
    }

    for (i = 0; i < f->ncerts; i++) {
        f->path[i] = &f->certs[i];
    }

    f->npath = f->ncerts;
    f->path_anchor = 0;
}


const cg_geo_t *
cg_facts_geo(cg_facts_t *f)
{
    if (!f->geo_done) {
        f->geo_done = 1;

        if (f->in->geoip && f->in->dst_addr && f->in->dst_addr[0]) {
            f->geo_ok = cg_geoip_lookup(f->in->geoip, f->in->dst_addr,
                                        &f->geo) == 0;
        }
    }

    return f->geo_ok ? &f->geo : NULL;
}


const cg_digest_t *
cg_facts_digest_find(const cg_cert_facts_t *c, const cg_digestset_t *s)
{
    const cg_digest_t  *d;

    if (!c->digests || s == NULL || s->n == 0) {
        return NULL;
    }

    d = cg_digestset_find(s, c->sha1, sizeof(c->sha1));
    if (d == NULL) {
        d = cg_digestset_find(s, c->sha256, sizeof(c->sha256));
    }

    return d;
}


/* U+200B-U+200F, U+2028-U+202E, U+2060-U+206F, U+FEFF */

static int
cg_utf8_format_char(const unsigned char *s)
{
    if (s[0] == 0xe2 && s[1] == 0x80) {
        return (s[2] >= 0x8b && s[2] <= 0x8f)
               || (s[2] >= 0xa8 && s[2] <= 0xae);
    }

    if (s[0] == 0xe2 && s[1] == 0x81) {
        return s[2] >= 0xa0 && s[2] <= 0xaf;
    }

    return s[0] == 0xef && s[1] == 0xbb && s[2] == 0xbf;
}


size_t
cg_utf8_copy(char *dst, size_t size, const char *src, size_t len)
{
    size_t               i, k, n;
    uint32_t             cp;
    const unsigned char *s;

    if (size == 0) {
        return 0;
    }

    s = (const unsigned char *) src;
    k = 0;

    for (i = 0; src && i < len; /* void */) {

        /* printable ASCII, most of any name, byte by byte */
        if (s[i] >= 0x20 && s[i] < 0x7f) {
            if (k + 1 >= size) {
                break;
            }

            dst[k++] = (char) s[i++];
            continue;
        }

        n = cg_utf8_decode(s + i, len - i, &cp);

        if (n == 0 || (n == 1 && (s[i] < 0x20 || s[i] == 0x7f))
            || (n == 2 && s[i] == 0xc2 && s[i + 1] < 0xa0)
            || (n == 3 && cg_utf8_format_char(s + i)))
        {
            /* C0, DEL, C1 controls, broken sequences, and the invisible
             * format characters that reorder or hide text in a viewer */
            if (k + 1 >= size) {
                break;
            }

            dst[k++] = '?';
            i += n ? n : 1;
            continue;
        }

        if (k + n >= size) {
            break;
        }

        memcpy(dst + k, s + i, n);
        k += n;
        i += n;
    }

    dst[k] = '\0';

    return k;
}


void
cg_detailf(char *dst, size_t size, const char *fmt, ...)
{
    int      n;
    char     buf[512];
    va_list  ap;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);

    if (n < 0) {
        n = 0;

    } else if ((size_t) n >= sizeof(buf)) {
        n = sizeof(buf) - 1;
    }

    cg_utf8_copy(dst, size, buf, (size_t) n);
}


void
cg_time_format(int64_t t, char *buf, size_t size)
{
    time_t     v;
    struct tm  tm;

    v = (time_t) t;

    if (gmtime_r(&v, &tm) == NULL
        || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        snprintf(buf, size, "%lld", (long long) t);
    }
}
