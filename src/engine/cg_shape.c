/*
 * Shapes no real CA produces: the marks that tools which make their own
 * certificates leave whatever names they write (docs/signals.md,
 * "Offensive tools covered").  Names no CA writes (malformed_name), dates
 * no CA sets (impossible_validity), a version X.509 does not have
 * (bad_version), a leaf signed by its own key under another issuer's name
 * (forged_issuer), a leaf with its CA's key (issuer_key_reuse).
 *
 * The name, date and version checks read every certificate as sent (up to
 * max_chain): a tool's CA is odd whether or not a path uses it, and what
 * the server sends is what it controls.  A sent public root is skipped:
 * a root program vetted it, and old roots have odd names.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cg_facts.h"


/* 1950-01-01T00:00:00Z: UTCTime's first year.  RFC 5280 4.1.2.5 allows
 * GeneralizedTime only from 2050 on; an earlier date in it is a zero or
 * made-up time (Go writes year 1 for a time.Time never set). */
#define CG_SHAPE_EPOCH      (-631152000LL)

#define CG_SHAPE_VALUE_MAX  16      /* characters of a value in a detail */


typedef struct {
    unsigned    n;
    char       *detail;
    size_t      size;
} cg_shape_t;


/* Sent certificates the shape checks skip: public roots. */

static int
cg_shape_skip(const cg_facts_t *f, unsigned i)
{
    const cg_cert_facts_t  *c = &f->certs[i];

    return i > 0 && c->self_signed && f->in->trust != NULL
           && (c->digests ? cg_trust_is_public_md(f->in->trust, c->sha256)
                          : cg_trust_is_public(f->in->trust, c->x));
}


static void
cg_shape_init(cg_shape_t *s, char *detail, size_t size)
{
    s->n = 0;
    s->detail = detail;
    s->size = size;
}


/* A finding: the first is the detail, the others are counted. */

static void
cg_shape_note(cg_shape_t *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void
cg_shape_note(cg_shape_t *s, const char *fmt, ...)
{
    char     buf[512];
    va_list  ap;

    if (s->n++ > 0) {
        return;
    }

    /* the size cg_detailf() formats into */
    va_start(ap, fmt);
    (void) vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);

    cg_detailf(s->detail, s->size, "%s", buf);
}


/* Whether there were findings; the count of the others goes after the
 * detail. */

static int
cg_shape_finish(cg_shape_t *s)
{
    size_t  len;

    if (s->n > 1) {
        len = strlen(s->detail);
        cg_detailf(s->detail + len, s->size - len, " (+%u more)", s->n - 1);
    }

    return s->n > 0;
}


/*
 * An attribute with an empty value (Go writes one for every "" in a
 * pkix.Name slice: Sliver's and Havoc's STREET, ST, L, O), a countryName
 * that is not an ISO 3166 alpha-2 code in capitals (Cobalt Strike's and
 * Modlishka's "Earth", Burp's "PortSwigger", Modlishka's CA's "pl").
 */

static void
cg_shape_name(cg_shape_t *s, const X509_NAME *name, const char *which,
    const char *part)
{
    int                   i, n, nid, len;
    const char           *sn;
    const ASN1_STRING    *v;
    const unsigned char  *d;
    X509_NAME_ENTRY      *e;

    n = X509_NAME_entry_count(name);

    for (i = 0; i < n; i++) {
        e = X509_NAME_get_entry(name, i);
        v = e ? X509_NAME_ENTRY_get_data(e) : NULL;
        if (v == NULL) {
            continue;
        }

        nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        sn = nid != NID_undef ? OBJ_nid2sn(nid) : "attribute";
        len = ASN1_STRING_length(v);
        d = ASN1_STRING_get0_data(v);

        if (len <= 0) {
            cg_shape_note(s, "%s %s: empty %s", which, part, sn);
            continue;
        }

        if (nid == NID_countryName
            && (len != 2 || d[0] < 'A' || d[0] > 'Z'
                || d[1] < 'A' || d[1] > 'Z'))
        {
            cg_shape_note(s, "%s %s: %s \"%.*s\"", which, part, sn,
                          len > CG_SHAPE_VALUE_MAX ? CG_SHAPE_VALUE_MAX : len,
                          (const char *) d);
        }
    }
}


int
cg_check_malformed_name(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    unsigned     i;
    X509        *x;
    const char  *name;
    char         which[24];
    cg_shape_t   s;

    cg_shape_init(&s, detail, size);

    for (i = 0; i < f->ncerts; i++) {
        if (cg_shape_skip(f, i)) {
            continue;
        }

        x = f->certs[i].x;
        name = cg_which(i, which, sizeof(which));

        /* RFC 5280 4.1.2.4: the issuer field MUST hold a non-empty name;
         * Sliver's CAs, Merlin, frp and Responder leave it empty */
        if (X509_NAME_entry_count(X509_get_issuer_name(x)) == 0) {
            cg_shape_note(&s, "%s issuer is empty", name);
        }

        /* a server certificate that names nothing: no subject and no
         * subjectAltName (an empty subject beside a SAN is what Let's
         * Encrypt issues now) */
        if (i == 0 && X509_NAME_entry_count(X509_get_subject_name(x)) == 0
            && X509_get_ext_by_NID(x, NID_subject_alt_name, -1) < 0)
        {
            cg_shape_note(&s, "%s names nothing (empty subject, "
                          "no subjectAltName)", name);
        }

        cg_shape_name(&s, X509_get_subject_name(x), name, "subject");
        cg_shape_name(&s, X509_get_issuer_name(x), name, "issuer");
    }

    return cg_shape_finish(&s);
}


/*
 * A lifetime of zero or less (Deimos passes 8760 as a time.Duration:
 * 8,760 nanoseconds), or a date before 1950 (frp up to v0.63 leaves both
 * dates at Go's zero time, 0001-01-01).  Unreadable dates are the
 * expired and not_yet_valid signals'.
 */

int
cg_check_impossible_validity(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    unsigned          i;
    const char       *name;
    char              which[24], nb[32], na[32];
    cg_shape_t        s;
    cg_cert_facts_t  *c;

    cg_shape_init(&s, detail, size);

    for (i = 0; i < f->ncerts; i++) {
        c = &f->certs[i];

        if (!c->has_not_before || !c->has_not_after || cg_shape_skip(f, i)) {
            continue;
        }

        if (c->not_before >= CG_SHAPE_EPOCH && c->not_after >= CG_SHAPE_EPOCH
            && c->not_after > c->not_before)
        {
            continue;
        }

        name = cg_which(i, which, sizeof(which));
        cg_time_format(c->not_before, nb, sizeof(nb));
        cg_time_format(c->not_after, na, sizeof(na));

        if (c->not_before < CG_SHAPE_EPOCH || c->not_after < CG_SHAPE_EPOCH)
        {
            cg_shape_note(&s, "%s valid %s to %s, before 1950", name, nb,
                          na);

        } else {
            cg_shape_note(&s, "%s notAfter %s not after notBefore %s",
                          name, na, nb);
        }
    }

    return cg_shape_finish(&s);
}


/* X.509 knows v1 to v3 (0 to 2); M2Crypto's set_version(3), meant as
 * "v3", writes a 3: Pupy's certificates say "Version: 4". */

int
cg_check_bad_version(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    long        v;
    unsigned    i;
    char        which[24];
    cg_shape_t  s;

    cg_shape_init(&s, detail, size);

    for (i = 0; i < f->ncerts; i++) {
        v = X509_get_version(f->certs[i].x);

        if (v >= X509_VERSION_1 && v <= X509_VERSION_3) {
            continue;
        }

        cg_shape_note(&s, "%s version field %ld (X.509 has 0 to 2, v1 to "
                      "v3)", cg_which(i, which, sizeof(which)), v);
    }

    return cg_shape_finish(&s);
}


/*
 * The leaf's signature verifies with its own public key, yet it is not
 * self-signed (its issuer names someone else, or its key identifiers
 * disagree): Metasploit's default certificates and DcRAT's invent an
 * issuer and sign with the leaf's key.  No CA signs with its customer's
 * key.  A verified path whose issuer has another key settles it without
 * a signature check; otherwise it costs one verification of the leaf.
 */

int
cg_check_forged_issuer(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    int               rc;
    EVP_PKEY         *pkey;
    cg_cert_facts_t  *c, *up;

    c = &f->certs[0];

    if (c->self_signed) {
        return 0;
    }

    if (f->trusted && f->npath > 1) {
        up = f->path[1];
        if (c->spki_ok && up->spki_ok
            && memcmp(c->spki, up->spki, sizeof(c->spki)) != 0)
        {
            return 0;
        }
    }

    pkey = X509_get0_pubkey(c->x);
    if (pkey == NULL) {
        return 0;
    }

    ERR_set_mark();
    rc = X509_verify(c->x, pkey);
    ERR_pop_to_mark();

    if (rc != 1) {
        return 0;
    }

    if (c->issuer_len == 0) {
        cg_detailf(detail, size, "empty issuer, signed by the leaf's own "
                   "key");

    } else {
        cg_detailf(detail, size, "issuer %.60s%s, signed by the leaf's own "
                   "key", c->issuer, c->issuer_len > 60 ? "..." : "");
    }

    return 1;
}


/*
 * The leaf's public key is the key of a CA the server sent or the path
 * ends in: mitmproxy gives every leaf its CA's key.  A CA is a
 * certificate with cA TRUE or the one the leaf names as issuer.  A copy
 * of the leaf itself (servers that send it twice) is no CA.
 */

int
cg_check_issuer_key_reuse(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    unsigned          i, n;
    char              which[24];
    const char       *name;
    cg_cert_facts_t  *leaf, *c;

    leaf = &f->certs[0];

    if (!leaf->spki_ok) {
        return 0;
    }

    n = f->ncerts + f->npath;

    for (i = 1; i < n; i++) {
        if (i < f->ncerts) {
            c = &f->certs[i];
            name = cg_which(i, which, sizeof(which));

        } else {
            /* the path's certificates the server did not send */
            c = f->path[i - f->ncerts];
            if (c->sent >= 0 || c == leaf) {
                continue;
            }
            name = "anchor";
        }

        if (!c->spki_ok
            || memcmp(c->spki, leaf->spki, sizeof(leaf->spki)) != 0
            || (leaf->digests && c->digests
                && memcmp(c->sha256, leaf->sha256, sizeof(c->sha256)) == 0))
        {
            continue;
        }

        if (X509_check_ca(c->x) <= 0
            && X509_NAME_cmp(X509_get_issuer_name(leaf->x),
                             X509_get_subject_name(c->x)) != 0)
        {
            continue;
        }

        cg_detailf(detail, size, "leaf key is the key of %s (%.60s%s)",
                   name, c->subject, c->subject_len > 60 ? "..." : "");

        return 1;
    }

    return 0;
}
