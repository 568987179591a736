/*
 * The built-in signals.  Each lives in one place: its entry in the table at
 * the end of this file (id, one-line doc, default weight and windows) and
 * its check function, which reads only the precomputed facts.  Adding a
 * signal is a check function and a table line, plus its section in
 * docs/signals.md.  Ids are a stable contract: never rename one.
 *
 * A check returns 1 when the signal fires and writes a short detail; it
 * may change *weight (the geo signals fire with their list's weight).
 */

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include <libpsl.h>
#include <openssl/ct.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "cg_facts.h"


#define CG_DAY              86400

/* CT became mandatory for publicly trusted certificates in Chrome for
 * those issued from 2018-05-01T00:00:00Z on. */
#define CG_CT_REQUIRED_FROM 1525132800

/* 2020-09-01T00:00:00Z: the 398-day limit for publicly trusted leaves. */
#define CG_SC31_DATE        1598918400


typedef struct {
    const char     *id;
    const char     *doc;
    int             weight;         /* default weight */
    int64_t         window[2];      /* default windows, seconds */
    cg_check_fn    *check;
} cg_signal_t;


/* Written by hand: the checks name a certificate for every one they look
 * at, and snprintf() was a visible part of a cold evaluation. */

const char *
cg_which(unsigned i, char *buf, size_t size)
{
    char    digits[16];
    size_t  n, k;

    if (i == 0) {
        return "leaf";
    }

    n = 0;
    do {
        digits[n++] = (char) ('0' + i % 10);
        i /= 10;
    } while (i > 0 && n < sizeof(digits));

    if (size < sizeof("depth ") + n) {
        return size ? (buf[0] = '\0', buf) : "";
    }

    memcpy(buf, "depth ", sizeof("depth ") - 1);

    for (k = 0; k < n; k++) {
        buf[sizeof("depth ") - 1 + k] = digits[n - 1 - k];
    }

    buf[sizeof("depth ") - 1 + n] = '\0';

    return buf;
}


/*
 * Which certificate of the verified path: "leaf", "depth N" (its place on
 * the path, which is the place as sent when the server sends in order),
 * or "anchor" for the one verification ended in.
 */

static const char *
cg_which_path(const cg_facts_t *f, unsigned i, char *buf, size_t size)
{
    if (i > 0 && i + 1 == f->npath && f->path_anchor) {
        return "anchor";
    }

    return cg_which(i, buf, size);
}


static void
cg_duration(int64_t s, char *buf, size_t size)
{
    if (s < 0) {
        snprintf(buf, size, "%llds", (long long) s);

    } else if (s >= 2 * CG_DAY) {
        snprintf(buf, size, "%lldd", (long long) (s / CG_DAY));

    } else if (s >= 3600) {
        snprintf(buf, size, "%lldh", (long long) (s / 3600));

    } else {
        snprintf(buf, size, "%llds", (long long) s);
    }
}


int64_t
cg_signal_window(const cg_policy_t *p, unsigned index, unsigned which)
{
    if (index >= CG_SIG_MAX || which > 1) {
        return 0;
    }

    if (p && p->window[index][which] > 0) {
        return p->window[index][which];
    }

    return cg_signal_default_window(index, which);
}


static int
cg_check_untrusted_chain(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    if (f->in->trust == NULL) {
        cg_detailf(detail, size, "no trust anchors configured");
        return 1;
    }

    if (f->npath_errors == 0) {
        return 0;
    }

    cg_detailf(detail, size, "%s (depth %d; %u error%s)",
               X509_verify_cert_error_string(f->first_path_error.code),
               f->first_path_error.depth, f->npath_errors,
               f->npath_errors == 1 ? "" : "s");

    return 1;
}


static int
cg_check_self_signed(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    if (!f->certs[0].self_signed) {
        return 0;
    }

    cg_detailf(detail, size, "issuer is subject, signed by its own key");

    return 1;
}


/* Shared by expired and not_yet_valid: every certificate on the verified
 * path, the anchor included. */

static int
cg_check_validity(cg_facts_t *f, char *detail, size_t size, int after)
{
    int               unreadable;
    unsigned          i, n, first;
    int64_t           t;
    const char       *name;
    char              when[32], which[24];
    cg_cert_facts_t  *c;

    n = 0;
    first = 0;
    unreadable = 0;
    t = 0;

    for (i = 0; i < f->npath; i++) {
        c = f->path[i];

        if (after ? !c->has_not_after : !c->has_not_before) {
            /* a date that cannot be read cannot be shown to be valid */
            if (n++ == 0) {
                first = i;
                unreadable = 1;
            }

            continue;
        }

        if (after ? c->not_after < f->now : c->not_before > f->now) {
            if (n++ == 0) {
                first = i;
                t = after ? c->not_after : c->not_before;
            }
        }
    }

    if (n == 0) {
        return 0;
    }

    name = cg_which_path(f, first, which, sizeof(which));

    if (unreadable) {
        cg_detailf(detail, size, "%s %s unreadable", name,
                   after ? "notAfter" : "notBefore");

    } else {
        cg_time_format(t, when, sizeof(when));
        cg_detailf(detail, size, "%s %s %s", name,
                   after ? "expired" : "not valid before", when);
    }

    if (n > 1) {
        size_t  len = strlen(detail);

        cg_detailf(detail + len, size - len, " (+%u more)", n - 1);
    }

    return 1;
}


static int
cg_check_expired(cg_facts_t *f, unsigned index, char *detail, size_t size,
    int *weight)
{
    return cg_check_validity(f, detail, size, 1);
}


static int
cg_check_not_yet_valid(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    return cg_check_validity(f, detail, size, 0);
}


static int
cg_weak_md(int nid)
{
    return nid == NID_md5 || nid == NID_sha1 || nid == NID_md5_sha1
           || nid == NID_md4 || nid == NID_md2 || nid == NID_mdc2;
}


static int
cg_check_weak_signature(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    unsigned          i;
    const char       *alg;
    char              which[24];
    cg_cert_facts_t  *c;

    for (i = 0; i < f->ncerts; i++) {
        c = &f->certs[i];

        if (i > 0 && c->self_signed) {
            continue;       /* a root's own signature does not matter */
        }

        if (cg_weak_md(c->sig_mdnid)
            || (c->sig_known && c->sig_secbits > 0 && c->sig_secbits < 80))
        {
            alg = OBJ_nid2ln(X509_get_signature_nid(c->x));

            cg_detailf(detail, size, "%s signed with %s",
                       cg_which(i, which, sizeof(which)),
                       alg ? alg : "a weak digest");
            return 1;
        }
    }

    return 0;
}


/*
 * Every key of the verified path, the anchor's too: a chain is as strong
 * as its weakest signer.  DSA is legacy at any size (withdrawn for
 * signatures by FIPS 186-5, gone from TLS 1.3, issued by no public CA).
 */

static int
cg_check_weak_key(cg_facts_t *f, unsigned index, char *detail, size_t size,
    int *weight)
{
    int               min;
    unsigned          i;
    const char       *type;
    char              which[24];
    cg_cert_facts_t  *c;

    for (i = 0; i < f->npath; i++) {
        c = f->path[i];

        switch (c->key_id) {

        case EVP_PKEY_RSA:
        case EVP_PKEY_RSA_PSS:
            type = "RSA";
            min = 2048;
            break;

        case EVP_PKEY_DSA:
            cg_detailf(detail, size, "%s DSA key of %d bits (DSA is legacy)",
                       cg_which_path(f, i, which, sizeof(which)),
                       c->key_bits);
            return 1;

        case EVP_PKEY_DH:
        case EVP_PKEY_DHX:
            type = "DH";
            min = 2048;
            break;

        case EVP_PKEY_EC:
        case EVP_PKEY_SM2:
            type = "EC";
            min = 256;
            break;

        default:
            continue;
        }

        if (c->key_bits > 0 && c->key_bits < min) {
            cg_detailf(detail, size, "%s %s key of %d bits",
                       cg_which_path(f, i, which, sizeof(which)), type,
                       c->key_bits);
            return 1;
        }
    }

    return 0;
}


/*
 * A DNS SAN that spells the name exactly, but for ASCII letter case, with
 * no wildcard and no NUL: a name X509_check_host() matches for certain
 * (it folds A-Z alone), found in the SANs the facts decoded once instead
 * of X509_check_host() decoding them again on every new leaf.  Anything
 * else, wildcards included, is X509_check_host()'s to decide.
 */
static int
cg_san_spells(const GENERAL_NAMES *san, const char *name, size_t len)
{
    int                   i, n;
    const GENERAL_NAME   *gn;
    const unsigned char  *v;

    n = sk_GENERAL_NAME_num(san);

    for (i = 0; i < n; i++) {
        gn = sk_GENERAL_NAME_value(san, i);

        if (gn == NULL || gn->type != GEN_DNS
            || ASN1_STRING_type(gn->d.dNSName) != V_ASN1_IA5STRING
            || (size_t) ASN1_STRING_length(gn->d.dNSName) != len)
        {
            continue;
        }

        v = ASN1_STRING_get0_data(gn->d.dNSName);

        /* strncasecmp folds ASCII alone in the "C" locale the engine
         * runs in, as X509_check_host() does */
        if (v && memchr(v, '*', len) == NULL && memchr(v, '\0', len) == NULL
            && strncasecmp((const char *) v, name, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static int
cg_check_hostname_mismatch(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    int             rc;
    X509           *x;
    char           *peer;
    size_t          len;
    const char     *name;
    char            buf[CG_NAME_MAX];
    unsigned char   addr[16];

    name = f->in->name;
    if (name == NULL || name[0] == '\0') {
        return 0;
    }

    len = strlen(name);

    /* "[::1]" as in a Host header */
    if (name[0] == '[' && len > 2 && len < sizeof(buf)
        && name[len - 1] == ']')
    {
        memcpy(buf, name + 1, len - 2);
        buf[len - 2] = '\0';

    } else {
        cg_strlcpy(buf, name, sizeof(buf));
    }

    x = cg_facts_name_cert(f);

    if (x == NULL) {
        rc = 0;

    } else if (inet_pton(AF_INET, buf, addr) == 1
               || inet_pton(AF_INET6, buf, addr) == 1)
    {
        rc = X509_check_ip_asc(x, buf, 0);

    } else {
        len = strlen(name);
        if (len > 1 && name[len - 1] == '.') {
            len--;          /* a fully qualified "example.com." */
        }

        if (x == f->in->leaf && cg_san_spells(f->san, name, len)) {
            return 0;
        }

        peer = NULL;
        rc = X509_check_host(x, name, len,
                             X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, &peer);

        /* a wildcard over a public suffix ("*.co.uk") names no host: what
         * browsers refuse to match, unless a SAN names this one exactly */
        if (rc == 1 && peer && peer[0] == '*' && peer[1] == '.'
            && psl_is_public_suffix(f->policy->psl ? f->policy->psl
                                                   : psl_builtin(),
                                    peer + 2)
            && X509_check_host(x, name, len, X509_CHECK_FLAG_NO_WILDCARDS,
                               NULL)
               != 1)
        {
            cg_detailf(detail, size, "%s matches only %.60s, a wildcard "
                       "over a public suffix", name, peer);
            OPENSSL_free(peer);
            return 1;
        }

        OPENSSL_free(peer);
    }

    if (rc == 1) {
        return 0;
    }

    cg_detailf(detail, size, "%s not in the certificate's names", name);

    return 1;
}


static int
cg_check_no_san(cg_facts_t *f, unsigned index, char *detail, size_t size,
    int *weight)
{
    if (f->san_dns_ip) {
        return 0;
    }

    cg_detailf(detail, size, "no DNS or IP subjectAltName");

    return 1;
}


static int
cg_check_issued_recently(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    int64_t           age;
    char              dur[32], when[32];
    cg_cert_facts_t  *c;

    c = &f->certs[0];

    if (!c->has_not_before) {
        return 0;
    }

    age = f->now - c->not_before;

    if (age < 0 || age >= cg_signal_window(f->policy, index, 0)) {
        return 0;
    }

    cg_duration(age, dur, sizeof(dur));
    cg_time_format(c->not_before, when, sizeof(when));
    cg_detailf(detail, size, "issued %s ago (%s)", dur, when);

    return 1;
}


static int
cg_check_short_validity(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    int64_t           life, w;
    char              dur[32], max[32];
    cg_cert_facts_t  *c;

    c = &f->certs[0];

    if (!c->has_not_before || !c->has_not_after) {
        return 0;
    }

    life = c->not_after - c->not_before;
    w = cg_signal_window(f->policy, index, 0);

    if (life >= w) {
        return 0;
    }

    cg_duration(life, dur, sizeof(dur));
    cg_duration(w, max, sizeof(max));
    cg_detailf(detail, size, "lifetime %s < %s", dur, max);

    return 1;
}


static int
cg_check_long_validity(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    int               strict;
    int64_t           life, w;
    char              dur[32], max[32];
    cg_cert_facts_t  *c;

    c = &f->certs[0];

    if (!c->has_not_before || !c->has_not_after) {
        return 0;
    }

    /*
     * Public CAs may not issue leaves valid for more than 398 days since
     * 2020-09-01 (CA/Browser Forum ballot SC31); older trusted leaves are
     * held to the second window, as untrusted ones are.
     */
    life = c->not_after - c->not_before;
    strict = f->public_root && c->not_before >= CG_SC31_DATE;
    w = cg_signal_window(f->policy, index, strict ? 0 : 1);

    if (w <= 0 || life <= w) {
        return 0;
    }

    cg_duration(life, dur, sizeof(dur));
    cg_duration(w, max, sizeof(max));
    cg_detailf(detail, size, "lifetime %s > %s (%s)", dur, max,
               strict ? "public root, issued after 2020-09-01"
                      : (f->public_root ? "public root, before 2020-09-01"
                                        : (f->trusted ? "private root"
                                                      : "untrusted chain")));

    return 1;
}


/*
 * A list against the leaf issuer DN and, when all is set, every sent
 * certificate's subject and issuer DNs.
 */

static int
cg_same_name(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && memcmp(a, b, alen) == 0;
}


/*
 * certs[i]'s issuer or subject against l.  Names other than the leaf's
 * subject recur, those of the CAs above many leaves: their results are
 * kept with the decoded certificates.
 */

static const cg_pattern_t *
cg_name_match(cg_facts_t *f, const cg_patlist_t *l, unsigned i, int issuer)
{
    cg_cert_facts_t  *c;

    c = &f->certs[i];

    if (issuer) {
        return cg_certs_match(f->in->certs, l, c->issuer, c->issuer_len);
    }

    return i == 0 ? cg_patlist_match(l, c->subject, c->subject_len)
                  : cg_certs_match(f->in->certs, l, c->subject,
                                   c->subject_len);
}


static int
cg_check_dn_list(cg_facts_t *f, const cg_patlist_t *l, int all,
    int leaf_subject, char *detail, size_t size)
{
    unsigned             i;
    char                 which[24];
    cg_cert_facts_t     *c;
    const cg_pattern_t  *p;

    if (l->n == 0) {
        return 0;
    }

    c = &f->certs[0];

    /* the subject first: it is what a self-signed tool default names */

    if (leaf_subject) {
        p = cg_patlist_match(l, c->subject, c->subject_len);
        if (p) {
            cg_detailf(detail, size, "leaf subject matches \"%s\"",
                       p->text);
            return 1;
        }
    }

    p = cg_name_match(f, l, 0, 1);
    if (p) {
        cg_detailf(detail, size, "leaf issuer matches \"%s\"", p->text);
        return 1;
    }

    /* a name already matched without a hit is not matched again: the
     * leaf's issuer, its subject when it went first, and a subject that
     * is the previous certificate's issuer, as in any chain in order */

    for (i = 0; all && i < f->ncerts; i++) {
        c = &f->certs[i];

        p = (i == 0 && leaf_subject)
            || (i > 0 && cg_same_name(c->subject, c->subject_len,
                                      f->certs[i - 1].issuer,
                                      f->certs[i - 1].issuer_len))
            ? NULL : cg_name_match(f, l, i, 0);
        if (p) {
            cg_detailf(detail, size, "%s subject matches \"%s\"",
                       cg_which(i, which, sizeof(which)), p->text);
            return 1;
        }

        p = (i == 0) ? NULL : cg_name_match(f, l, i, 1);
        if (p) {
            cg_detailf(detail, size, "%s issuer matches \"%s\"",
                       cg_which(i, which, sizeof(which)), p->text);
            return 1;
        }
    }

    return 0;
}


static int
cg_check_staging_issuer(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    return cg_check_dn_list(f, &f->policy->lists[CG_LIST_STAGING], 1, 0,
                            detail, size);
}


static int
cg_check_free_dv_issuer(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    return cg_check_dn_list(f, &f->policy->lists[CG_LIST_FREE_DV], 0, 0,
                            detail, size);
}


/*
 * An untrusted chain with a public CA's name on a key that is not that
 * CA's: a certificate named like a CA the trust store or the
 * intermediates pool knows, whose key (subject) or signature (issuer) is
 * not theirs; or a self-issued certificate named like a public CA that no
 * one knows (public roots are all in the bundle).  A name the store does
 * not know on a certificate that is not self-issued is an issuer merely
 * missing, as when a server leaves its intermediate out: not mimicry.
 */

static int
cg_check_mimicked_ca(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    int                  k, self, issuer;
    unsigned             i;
    char                 which[24];
    cg_cert_facts_t     *c;
    const cg_patlist_t  *l;
    const cg_pattern_t  *p;

    l = &f->policy->lists[CG_LIST_PUBLIC_CA];

    if (f->trusted || l->n == 0) {
        return 0;
    }

    for (i = 0; i < f->ncerts; i++) {
        c = &f->certs[i];
        self = X509_NAME_cmp(X509_get_subject_name(c->x),
                             X509_get_issuer_name(c->x)) == 0;

        /* the leaf's issuer first: what the server claims signed it */
        for (issuer = 1; issuer >= 0; issuer--) {
            p = issuer ? cg_patlist_match(l, c->issuer, c->issuer_len)
                       : cg_patlist_match(l, c->subject, c->subject_len);

            if (p == NULL) {
                continue;
            }

            k = cg_facts_known_key(f, c->x, issuer);

            if (k == 1 || (k == -1 && !self)) {
                continue;
            }

            cg_detailf(detail, size, "%s %s matches \"%s\", %s",
                       cg_which(i, which, sizeof(which)),
                       issuer ? "issuer" : "subject", p->text,
                       k == 0 ? "another key than the known CA's"
                              : "self-issued, no such root known");
            return 1;
        }
    }

    return 0;
}


static int
cg_check_default_subject(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    /* every sent certificate: evilginx and mitmproxy send their CA */
    return cg_check_dn_list(f, &f->policy->lists[CG_LIST_DEFAULT_SUBJECT],
                            1, 1, detail, size);
}


static int
cg_check_no_sct(cg_facts_t *f, unsigned index, char *detail, size_t size,
    int *weight)
{
    char              when[32];
    cg_cert_facts_t  *c;

    c = &f->certs[0];

    if (!f->public_root || f->has_sct || !c->has_not_before
        || c->not_before < CG_CT_REQUIRED_FROM)
    {
        return 0;
    }

    cg_time_format(c->not_before, when, sizeof(when));
    cg_detailf(detail, size, "publicly trusted leaf issued %s without "
               "embedded SCTs", when);

    return 1;
}


static int
cg_check_blocklisted(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    unsigned            i;
    char                which[24];
    const cg_digest_t  *d;

    for (i = 0; i < f->ncerts; i++) {
        d = cg_facts_digest_find(&f->certs[i], &f->policy->blocklist);
        if (d == NULL) {
            continue;
        }

        cg_detailf(detail, size, "%s %s listed%s%s",
                   cg_which(i, which, sizeof(which)),
                   d->len == 20 ? "SHA-1" : "SHA-256",
                   d->reason[0] ? ": " : "", d->reason);
        return 1;
    }

    return 0;
}


static int
cg_check_geo_country(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    size_t           i;
    const cg_geo_t  *g;

    if (f->policy->ngeo_country == 0) {
        return 0;
    }

    g = cg_facts_geo(f);
    if (g == NULL || g->country[0] == '\0') {
        return 0;
    }

    for (i = 0; i < f->policy->ngeo_country; i++) {
        if (strncasecmp(f->policy->geo_country[i].cc, g->country, 2) == 0) {
            *weight = f->policy->geo_country[i].weight;
            cg_detailf(detail, size, "destination in %.2s", g->country);
            return 1;
        }
    }

    return 0;
}


static int
cg_check_geo_asn(cg_facts_t *f, unsigned index, char *detail, size_t size,
    int *weight)
{
    size_t           i;
    const cg_geo_t  *g;

    if (f->policy->ngeo_asn == 0) {
        return 0;
    }

    g = cg_facts_geo(f);
    if (g == NULL || g->asn == 0) {
        return 0;
    }

    for (i = 0; i < f->policy->ngeo_asn; i++) {
        if (f->policy->geo_asn[i].asn == g->asn) {
            *weight = f->policy->geo_asn[i].weight;
            cg_detailf(detail, size, "destination in AS%u%s%.*s",
                       (unsigned) g->asn, g->as_org[0] ? " " : "",
                       (int) sizeof(g->as_org), g->as_org);
            return 1;
        }
    }

    return 0;
}


/*
 * The one rule for "the same name", so that a caller that skips the second
 * evaluation of a tunnel (cg_sni_mismatch() says no) and the signal agree:
 * case does not count, nor does one trailing dot on either side
 * ("example.com." is the fully qualified form of "example.com").
 */

int
cg_sni_mismatch(const char *name, const char *client_sni)
{
    size_t  n, m;

    if (name == NULL || client_sni == NULL || name[0] == '\0'
        || client_sni[0] == '\0')
    {
        return 0;
    }

    n = strlen(name);
    m = strlen(client_sni);

    n -= (name[n - 1] == '.');
    m -= (client_sni[m - 1] == '.');

    return n != m || strncasecmp(name, client_sni, n) != 0;
}


static int
cg_check_sni_mismatch(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    const char  *sni, *name;

    sni = f->in->client_sni;
    name = f->in->name;

    if (!cg_sni_mismatch(name, sni)) {
        return 0;
    }

    cg_sni_mismatch_detail(detail, size, sni, name);

    return 1;
}


void
cg_sni_mismatch_detail(char *detail, size_t size, const char *client_sni,
    const char *name)
{
    cg_detailf(detail, size, "client SNI %.40s, destination %.40s",
               client_sni, name);
}


static int
cg_check_chain_too_long(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    if (f->nsent <= f->ncerts) {
        return 0;
    }

    cg_detailf(detail, size, "%u certificates sent, the first %u examined",
               f->nsent, f->ncerts);

    return 1;
}


/* "depth 1: what (+2 more)": the first finding of a kind and the count. */

static int
cg_finding_detail(const cg_facts_t *f, const cg_finding_t *fd, char *detail,
    size_t size)
{
    size_t  len;
    char    which[24];

    if (fd->n == 0) {
        return 0;
    }

    cg_detailf(detail, size, "%s: %s",
               fd->depth >= 0 && (unsigned) fd->depth < f->npath
               ? cg_which_path(f, (unsigned) fd->depth, which, sizeof(which))
               : "chain",
               cg_finding_text(fd->code));

    if (fd->n > 1) {
        len = strlen(detail);
        cg_detailf(detail + len, size - len, " (+%u more)", fd->n - 1);
    }

    return 1;
}


/*
 * RFC 5280 and CA/Browser Forum profile findings on the verified path that
 * do not break it: OpenSSL's strict checks (cg_verify_class) and the
 * engine's own.  The first is the detail; the rest are counted.
 */

static int
cg_check_nonconformant(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    cg_facts_profile(f);

    return cg_finding_detail(f, &f->profile, detail, size);
}


/* A CA-issued leaf that is itself a CA: its key, on a server, can sign a
 * certificate for any name under the same anchor. */

static int
cg_check_ca_leaf(cg_facts_t *f, unsigned index, char *detail, size_t size,
    int *weight)
{
    cg_facts_profile(f);

    if (f->ca_leaf.n == 0) {
        return 0;
    }

    cg_detailf(detail, size, "leaf has basicConstraints cA TRUE%s",
               f->npath > 1 ? "" : " (no path to its issuer)");

    return 1;
}


/* A name constraint of a CA on the path that the leaf's names escape
 * where OpenSSL's check does not see it (cg_profile_nc_wildcard). */

static int
cg_check_name_constraints(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    char  which[24];

    cg_facts_profile(f);

    if (f->nc.n == 0) {
        return 0;
    }

    cg_detailf(detail, size, "leaf %s by %s", f->nc_text,
               cg_which_path(f, (unsigned) f->nc.depth, which,
                             sizeof(which)));

    return 1;
}


static int
cg_check_eku(cg_facts_t *f, unsigned index, char *detail, size_t size,
    int *weight)
{
    cg_facts_profile(f);

    return cg_finding_detail(f, &f->eku, detail, size);
}


static int
cg_check_cn_mismatch(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    cg_facts_profile(f);

    return cg_finding_detail(f, &f->cn, detail, size);
}


/*
 * The chain a client received in a tunnel is not the one the probe scored
 * (the stream module reads it off tunnels with TLS 1.2 or older, where it
 * travels in the clear): the destination shows its probe a certificate it
 * does not show clients.  A leaf whose digest could not be taken is not
 * the probed one either.
 */

static int
cg_check_cert_cloaking(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    unsigned        i;
    const char     *probed;
    char            hex[65];

    static const char  digits[] = "0123456789abcdef";

    probed = f->in->probed_sha256;

    if (probed == NULL || probed[0] == '\0') {
        return 0;
    }

    if (!f->certs[0].digests) {
        cg_detailf(detail, size, "probed %.16s, received a leaf without "
                   "a digest", probed);
        return 1;
    }

    for (i = 0; i < 32; i++) {
        hex[2 * i] = digits[f->certs[0].sha256[i] >> 4];
        hex[2 * i + 1] = digits[f->certs[0].sha256[i] & 0x0f];
    }

    hex[64] = '\0';

    if (strcasecmp(hex, probed) == 0) {
        return 0;
    }

    cg_detailf(detail, size, "probed SHA-256 %.16s, received %.16s", probed,
               hex);

    return 1;
}


/* "CN" of a certificate for a detail, else its whole subject. */

static void
cg_cert_name(X509 *x, char *buf, size_t size)
{
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                  buf, (int) size) < 0)
    {
        buf[0] = '\0';
    }
}


/*
 * A key of the leaked_root list anywhere on the chain (sent, or on the
 * verified path: an anchor the proxy's own store holds), or the key that
 * signed the top of a path that reached no anchor: interception software
 * does not send its root.
 */

static int
cg_check_leaked_root(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    int                 ok;
    unsigned            i;
    size_t              k;
    X509               *top, *r;
    char                which[24], cn[64];
    cg_cert_facts_t    *c;
    const cg_keyset_t  *ks;

    ks = &f->policy->leaked;

    if (ks->spki.n == 0) {
        return 0;
    }

    for (i = 0; i < f->npath + f->ncerts; i++) {
        c = i < f->npath ? f->path[i] : &f->certs[i - f->npath];

        if (!c->spki_ok || cg_digestset_find(&ks->spki, c->spki, 32) == NULL)
        {
            continue;
        }

        cg_cert_name(c->x, cn, sizeof(cn));
        cg_detailf(detail, size, "%s has a leaked private key (%.48s)",
                   i < f->npath ? cg_which_path(f, i, which, sizeof(which))
                                : cg_which(i - f->npath, which,
                                           sizeof(which)),
                   cn[0] ? cn : "listed SPKI");
        return 1;
    }

    if (f->path_anchor || f->npath == 0) {
        return 0;
    }

    top = f->path[f->npath - 1]->x;

    for (k = 0; k < ks->nroots; k++) {
        r = ks->roots[k];

        if (X509_NAME_cmp(X509_get_subject_name(r), X509_get_issuer_name(top))
            != 0)
        {
            continue;
        }

        ERR_set_mark();
        ok = X509_get0_pubkey(r) != NULL
             && X509_verify(top, X509_get0_pubkey(r)) == 1;
        ERR_pop_to_mark();

        if (ok) {
            cg_cert_name(r, cn, sizeof(cn));
            cg_detailf(detail, size, "%s signed by the leaked key of %.48s",
                       cg_which(f->npath - 1, which, sizeof(which)),
                       cn[0] ? cn : "a listed root");
            return 1;
        }
    }

    return 0;
}


/* The table: order is the order hits are reported in. */

static const cg_signal_t  cg_signals[] = {

    { "untrusted_chain",
      "no path from the chain to an anchor of the configured CA bundle",
      30, { 0, 0 }, cg_check_untrusted_chain },

    { "self_signed",
      "the leaf is signed by its own key (issuer equals subject)",
      50, { 0, 0 }, cg_check_self_signed },

    { "expired",
      "a certificate of the verified path (anchor too) is past notAfter",
      30, { 0, 0 }, cg_check_expired },

    { "not_yet_valid",
      "a certificate of the verified path (anchor too) is before notBefore",
      30, { 0, 0 }, cg_check_not_yet_valid },

    { "weak_signature",
      "MD5 or SHA-1 (under 80 bits) signs the leaf or an intermediate",
      20, { 0, 0 }, cg_check_weak_signature },

    { "weak_key",
      "a path key (anchor too): RSA/DH < 2048 bits, EC < 256, any DSA",
      30, { 0, 0 }, cg_check_weak_key },

    { "hostname_mismatch",
      "the name (SNI) is not in the leaf's SANs (RFC 6125)",
      30, { 0, 0 }, cg_check_hostname_mismatch },

    { "no_san",
      "the leaf has no DNS or IP subjectAltName",
      10, { 0, 0 }, cg_check_no_san },

    { "issued_recently",
      "the leaf's notBefore is within the window (default 3d)",
      10, { 3 * CG_DAY, 0 }, cg_check_issued_recently },

    { "short_validity",
      "the leaf's lifetime is under the window (default 7d)",
      5, { 7 * CG_DAY, 0 }, cg_check_short_validity },

    { "long_validity",
      "leaf lifetime over 398d (public root, from 2020-09) or 825d",
      15, { 398 * CG_DAY, 825 * CG_DAY }, cg_check_long_validity },

    { "staging_issuer",
      "a certificate is from a staging/test CA (certbot --dry-run)",
      40, { 0, 0 }, cg_check_staging_issuer },

    { "free_dv_issuer",
      "the leaf is from a free DV CA (Let's Encrypt, ZeroSSL, ...)",
      10, { 0, 0 }, cg_check_free_dv_issuer },

    { "mimicked_ca",
      "an untrusted chain names a well-known public CA",
      60, { 0, 0 }, cg_check_mimicked_ca },

    { "default_subject",
      "a sent subject or issuer is a tool or placeholder default",
      80, { 0, 0 }, cg_check_default_subject },

    { "no_sct",
      "a leaf of a public root, issued from May 2018 on, has no SCTs",
      20, { 0, 0 }, cg_check_no_sct },

    { "blocklisted",
      "SHA-1 or SHA-256 of a sent certificate is on a blocklist",
      100, { 0, 0 }, cg_check_blocklisted },

    { "geo_country",
      "the destination's country is listed (weight from geo_country)",
      1, { 0, 0 }, cg_check_geo_country },

    { "geo_asn",
      "the destination's AS is listed (weight from geo_asn)",
      1, { 0, 0 }, cg_check_geo_asn },

    { "sni_mismatch",
      "the SNI inside the tunnel is not the CONNECT host",
      60, { 0, 0 }, cg_check_sni_mismatch },

    { "nonconformant",
      "a certificate of the verified path breaks the RFC 5280/CABF profile",
      15, { 0, 0 }, cg_check_nonconformant },

    { "ca_leaf",
      "the leaf, issued by another CA, is a CA itself (cA TRUE)",
      30, { 0, 0 }, cg_check_ca_leaf },

    { "name_constraints",
      "a wildcard SAN covers a name a CA of the path excludes",
      30, { 0, 0 }, cg_check_name_constraints },

    { "eku",
      "leaf EKU critical or anyExtendedKeyUsage, or the root has an EKU",
      15, { 0, 0 }, cg_check_eku },

    { "cn_mismatch",
      "the leaf's CN is one of its SANs written another way",
      15, { 0, 0 }, cg_check_cn_mismatch },

    /* certificate memory (cg_memory_eval.c): windows are how long a new
     * certificate counts as new, and how recently a previous one must
     * have been seen */

    { "first_seen",
      "the memory has never seen this name:port (informational)",
      0, { 0, 0 }, cg_check_first_seen },

    { "cert_changed",
      "another CA and another key than the valid ones seen before",
      40, { 3 * CG_DAY, 30 * CG_DAY }, cg_check_cert_changed },

    { "issuer_changed",
      "another CA, with a key seen before, while the old is valid",
      15, { 3 * CG_DAY, 30 * CG_DAY }, cg_check_issuer_changed },

    { "cert_moved",
      "a known certificate served from a new ASN or country (GeoIP)",
      20, { 3 * CG_DAY, 0 }, cg_check_cert_moved },

    { "chain_too_long",
      "more certificates than the policy's max_chain (default 10)",
      30, { 0, 0 }, cg_check_chain_too_long },

    /* embedded SCTs against the policy's ct_log_list (cg_sct.c); quiet
     * without one */

    { "invalid_sct",
      "an embedded SCT of a listed CT log does not verify (ct_log_list)",
      60, { 0, 0 }, cg_check_invalid_sct },

    { "unverified_sct",
      "a public root's leaf has SCTs, none from a listed log (ct_log_list)",
      10, { 0, 0 }, cg_check_unverified_sct },

    /* revocation (cg_revoke.c): of the verified path only */

    { "revoked",
      "a CRL or the stapled OCSP response revokes a certificate of the path",
      100, { 0, 0 }, cg_check_revoked },

    { "crl_invalid",
      "a CRL of a CA of the path cannot be used (signature, time, profile)",
      30, { 0, 0 }, cg_check_crl_invalid },

    { "ocsp_invalid",
      "the stapled OCSP response is not the CA's, is stale or has no status",
      10, { 0, 0 }, cg_check_ocsp_invalid },

    /* a tunnel's received chain against the probe's (stream module) */

    { "cert_cloaking",
      "a tunnel's client received another certificate than the probe",
      100, { 0, 0 }, cg_check_cert_cloaking },

    /* interception roots whose private keys are public (cg_leaked.c) */

    { "leaked_root",
      "a key on the chain, or the one that signed it, is publicly known",
      100, { 0, 0 }, cg_check_leaked_root },

    /* shapes no CA produces (cg_shape.c): the marks of offensive tools
     * that make their own certificates */

    { "malformed_name",
      "a sent DN no CA writes: empty issuer or value, C not ISO 3166",
      50, { 0, 0 }, cg_check_malformed_name },

    { "impossible_validity",
      "a sent certificate's lifetime is zero or less, or starts before 1950",
      50, { 0, 0 }, cg_check_impossible_validity },

    { "bad_version",
      "a sent certificate's version field is not v1, v2 or v3",
      50, { 0, 0 }, cg_check_bad_version },

    { "forged_issuer",
      "the leaf names another issuer but is signed by its own key",
      60, { 0, 0 }, cg_check_forged_issuer },

    { "issuer_key_reuse",
      "the leaf's key is the key of a CA the chain holds (its issuer)",
      60, { 0, 0 }, cg_check_issuer_key_reuse },
};


int
cg_signal_check(unsigned index, cg_facts_t *f, char *detail, size_t size,
    int *weight)
{
    if (index >= cg_nelem(cg_signals)) {
        return 0;
    }

    detail[0] = '\0';

    return cg_signals[index].check(f, index, detail, size, weight);
}


int
cg_signal_find(const char *id)
{
    unsigned  i;

    if (id == NULL) {
        return -1;
    }

    /* every evaluation and every packed hit looks a name up: the first
     * byte rules out most of the table without a call */

    for (i = 0; i < cg_nelem(cg_signals); i++) {
        if (cg_signals[i].id[0] == id[0] && strcmp(cg_signals[i].id, id) == 0)
        {
            return (int) i;
        }
    }

    return -1;
}


unsigned
cg_signal_count(void)
{
    return cg_nelem(cg_signals);
}


const char *
cg_signal_id(unsigned index)
{
    return index < cg_nelem(cg_signals) ? cg_signals[index].id : NULL;
}


const char *
cg_signal_doc(unsigned index)
{
    return index < cg_nelem(cg_signals) ? cg_signals[index].doc : NULL;
}


int
cg_signal_default_weight(unsigned index)
{
    return index < cg_nelem(cg_signals) ? cg_signals[index].weight : 0;
}


int
cg_signal_info(unsigned index, cg_signal_info_t *info)
{
    if (index >= cg_nelem(cg_signals) || info == NULL) {
        return CG_ERR_ARG;
    }

    info->id = cg_signals[index].id;
    info->doc = cg_signals[index].doc ? cg_signals[index].doc : "";
    info->weight = cg_signals[index].weight;

    return CG_OK;
}


int64_t
cg_signal_default_window(unsigned index, unsigned which)
{
    if (index >= cg_nelem(cg_signals) || which > 1) {
        return 0;
    }

    return cg_signals[index].window[which];
}
