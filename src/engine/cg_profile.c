/*
 * The engine's own checks of the verified path, beyond what OpenSSL's
 * verification finds: CA/Browser Forum and RFC 5280 profile rules.  They
 * run once per evaluation, when the first signal that reads them asks,
 * over the path cg_facts_verify() kept, and read what OpenSSL has already
 * decoded and cached for each certificate where it can.
 */

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cg_facts.h"


static const char  *cg_prof_text[CG_PROF_MAX - CG_PROF_BASE] = {
    "RSA modulus not a multiple of 8 bits",
    "EC key not on P-256, P-384 or P-521",
    "serial number not positive",
    "serial number longer than 20 octets",
    "not an X.509 v3 certificate",
    "subjectAltName critical beside a subject",
    "authorityInfoAccess empty or malformed",
    "policyConstraints not critical",
    "DNS subjectAltName not a host name",
    "authorityKeyIdentifier without keyIdentifier",
    "authorityKeyIdentifier names an issuer or serial",
    "authorityKeyIdentifier is not its subjectKeyIdentifier",
    "no authorityKeyIdentifier on a certificate not self-issued",
    "basicConstraints cA TRUE on a CA-issued leaf",
    "nameConstraints on a certificate that is not a CA",
    "nameConstraints without a subtree",
    "nameConstraints dNSName not a domain name",
    "a wildcard name covers an excluded subtree",
    "extendedKeyUsage critical",
    "extendedKeyUsage holds anyExtendedKeyUsage",
    "extendedKeyUsage on a root",
    "CN is an IP address not written as its IP SAN",
    "CN is a DNS SAN in other letter case",
    "CN is an A-label no DNS SAN spells",
};


const char *
cg_finding_text(int code)
{
    const char  *s;

    if (code >= CG_PROF_BASE && code < CG_PROF_MAX) {
        return cg_prof_text[code - CG_PROF_BASE];
    }

    s = X509_verify_cert_error_string(code);

    return s ? s : "profile violation";
}


/*
 * A public root's own defects are not held against a chain: a root
 * program vetted it, and no server can change it (the same rule as for
 * OpenSSL's strict findings in cg_facts.c).
 */

static int
cg_profile_public_anchor(cg_facts_t *f, unsigned i)
{
    return i + 1 == f->npath && f->path_anchor
           && cg_facts_anchor_public(f, f->path[i]->x);
}


/* CA/Browser Forum BR 6.1.5: RSA moduli a multiple of 8 bits; EC keys on
 * P-256, P-384 or P-521.  Smaller keys are weak_key's. */

static void
cg_profile_key(cg_facts_t *f, unsigned i)
{
    int                     nid, ptype;
    X509_ALGOR             *alg;
    const void             *pval;
    const ASN1_OBJECT      *aobj;
    const cg_cert_facts_t  *c;

    c = f->path[i];

    if ((c->key_id == EVP_PKEY_RSA || c->key_id == EVP_PKEY_RSA_PSS)
        && c->key_bits > 0 && c->key_bits % 8 != 0)
    {
        cg_finding_add(&f->profile, CG_PROF_RSA_BITS, (int) i);
    }

    if (c->key_id != EVP_PKEY_EC || c->key_bits < 256) {
        return;
    }

    /* the curve as the certificate names it, its namedCurve OID: asking
     * the decoded key for its group name costs a provider parameter
     * round trip on every new leaf; explicit parameters name no group
     * and are a path error already */
    alg = NULL;
    if (X509_PUBKEY_get0_param(NULL, NULL, NULL, &alg,
                               X509_get_X509_PUBKEY(c->x)) != 1
        || alg == NULL)
    {
        return;
    }

    X509_ALGOR_get0(&aobj, &ptype, &pval, alg);

    if (ptype != V_ASN1_OBJECT || pval == NULL) {
        return;
    }

    nid = OBJ_obj2nid(pval);

    if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1
        && nid != NID_secp521r1)
    {
        cg_finding_add(&f->profile, CG_PROF_EC_CURVE, (int) i);
    }
}


/*
 * RFC 5280 4.1.2.2: a positive serial of at most 20 octets.  The magnitude
 * is counted: a 20-octet serial with its top bit set takes a 21st, zero,
 * octet in DER, which every validator accepts.
 */

static void
cg_profile_serial(cg_facts_t *f, unsigned i)
{
    int                   k, n;
    const unsigned char  *p;
    const ASN1_INTEGER   *sn;

    sn = X509_get0_serialNumber(f->path[i]->x);
    if (sn == NULL) {
        return;
    }

    p = ASN1_STRING_get0_data(sn);
    n = ASN1_STRING_length(sn);

    for (k = 0; p && k < n && p[k] == 0; k++) {
        /* void */
    }

    if (ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER || p == NULL || k == n) {
        cg_finding_add(&f->profile, CG_PROF_SERIAL_SIGN, (int) i);

    } else if (n - k > 20) {
        cg_finding_add(&f->profile, CG_PROF_SERIAL_LONG, (int) i);
    }
}


/*
 * An extension whose value is not a non-empty SEQUENCE filling it (an
 * empty one, DER 30 00, or something else): the outer structure is read,
 * not decoded.
 */

static int
cg_profile_ext_empty(X509 *x, int nid)
{
    int                   idx, tag, cls, rc;
    long                  len, n;
    X509_EXTENSION       *ext;
    ASN1_OCTET_STRING    *v;
    const unsigned char  *p, *start;

    idx = X509_get_ext_by_NID(x, nid, -1);
    if (idx < 0) {
        return 0;
    }

    ext = X509_get_ext(x, idx);
    v = ext ? X509_EXTENSION_get_data(ext) : NULL;
    start = v ? ASN1_STRING_get0_data(v) : NULL;
    n = v ? ASN1_STRING_length(v) : 0;

    if (start == NULL || n <= 0) {
        return 1;
    }

    p = start;
    rc = ASN1_get_object(&p, &len, &tag, &cls, n);

    return (rc & 0x80) || !(rc & V_ASN1_CONSTRUCTED) || tag != V_ASN1_SEQUENCE
           || cls != V_ASN1_UNIVERSAL || len == 0 || (p - start) + len != n;
}


static int
cg_profile_ext_noncritical(X509 *x, int nid)
{
    int              idx;
    X509_EXTENSION  *ext;

    idx = X509_get_ext_by_NID(x, nid, -1);
    if (idx < 0) {
        return 0;
    }

    ext = X509_get_ext(x, idx);

    return ext && !X509_EXTENSION_get_critical(ext);
}


/*
 * RFC 5280 4.2.1.6 (the preferred name syntax of RFC 1034 as amended by
 * RFC 1123) and CA/Browser Forum 7.1.2.7.12: labels of letters, digits
 * and hyphens, not starting or ending with a hyphen, at most 63 octets,
 * at most 253 in all; a wildcard only as the whole left-most label of a
 * name with at least two more.  No trailing dot, no empty label.
 */

static int
cg_profile_dns_ok(const unsigned char *s, int n)
{
    int  i, start, labels;

    if (n <= 0 || n > 253) {
        return 0;
    }

    i = 0;
    labels = 0;

    if (n > 2 && s[0] == '*' && s[1] == '.') {
        i = 2;
    }

    while (i <= n) {
        start = i;

        while (i < n && s[i] != '.') {
            if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
                  || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            {
                return 0;
            }

            i++;
        }

        if (i == start || i - start > 63 || s[start] == '-'
            || s[i - 1] == '-')
        {
            return 0;
        }

        labels++;
        i++;
    }

    return s[0] != '*' || labels >= 2;
}


static void
cg_profile_leaf_names(cg_facts_t *f)
{
    int            i, n;
    GENERAL_NAME  *gn;
    X509          *x;

    x = f->path[0]->x;

    if (X509_NAME_entry_count(X509_get_subject_name(x)) > 0
        && (X509_get_extension_flags(x) & EXFLAG_SAN_CRITICAL))
    {
        cg_finding_add(&f->profile, CG_PROF_SAN_CRITICAL, 0);
    }

    n = f->san ? sk_GENERAL_NAME_num(f->san) : 0;

    for (i = 0; i < n; i++) {
        gn = sk_GENERAL_NAME_value(f->san, i);

        if (gn && gn->type == GEN_DNS
            && !cg_profile_dns_ok(ASN1_STRING_get0_data(gn->d.dNSName),
                                  ASN1_STRING_length(gn->d.dNSName)))
        {
            cg_finding_add(&f->profile, CG_PROF_DNS_SYNTAX, 0);
            return;
        }
    }
}


/*
 * The anchor's authority key identifier.  A self-issued root names itself
 * by keyIdentifier alone (CA/Browser Forum 7.1.2.1.3: keyIdentifier
 * present and equal to the subjectKeyIdentifier, no issuer, no serial);
 * an anchor issued by another CA (a trusted intermediate) must name that
 * CA (RFC 5280 4.2.1.1).
 */

static void
cg_profile_anchor_aki(cg_facts_t *f, unsigned i)
{
    int                        self_issued;
    X509                      *x;
    const ASN1_OCTET_STRING   *kid, *skid;

    x = f->path[i]->x;
    kid = X509_get0_authority_key_id(x);
    skid = X509_get0_subject_key_id(x);

    self_issued = X509_NAME_cmp(X509_get_subject_name(x),
                                X509_get_issuer_name(x)) == 0;

    if (X509_get_ext_by_NID(x, NID_authority_key_identifier, -1) < 0) {
        if (!self_issued) {
            cg_finding_add(&f->profile, CG_PROF_AKI_MISSING, (int) i);
        }

        return;
    }

    if (kid == NULL) {
        cg_finding_add(&f->profile, CG_PROF_AKI_NO_KEYID, (int) i);
    }

    if (!self_issued) {
        return;
    }

    if (X509_get0_authority_issuer(x) != NULL
        || X509_get0_authority_serial(x) != NULL)
    {
        cg_finding_add(&f->profile, CG_PROF_AKI_ISSUER, (int) i);
    }

    if (kid && skid && ASN1_OCTET_STRING_cmp(kid, skid) != 0) {
        cg_finding_add(&f->profile, CG_PROF_AKI_NOT_SKI, (int) i);
    }
}


/*
 * A dNSName subtree of a name constraint is a domain name (RFC 5280
 * 4.2.1.10): no wildcard and no leading period (a URI constraint's way of
 * saying "below", which OpenSSL also takes for DNS, and other validators
 * do not).
 */

static int
cg_profile_nc_dns_ok(const ASN1_IA5STRING *s)
{
    const unsigned char  *p;

    p = ASN1_STRING_get0_data(s);

    return p && ASN1_STRING_length(s) > 0 && p[0] != '*'
           && cg_profile_dns_ok(p, ASN1_STRING_length(s));
}


/* "*.B" covers exactly the names one label below B. */

static int
cg_profile_wildcard_covers(const unsigned char *w, int wn,
    const unsigned char *e, int en)
{
    int  i, base;

    if (wn < 3 || w[0] != '*' || w[1] != '.') {
        return 0;
    }

    base = wn - 1;      /* ".B" */

    if (en <= base || strncasecmp((const char *) e + en - base,
                                  (const char *) w + 1, (size_t) base) != 0)
    {
        return 0;
    }

    for (i = 0; i < en - base; i++) {
        if (e[i] == '.' || e[i] == '*') {
            return 0;
        }
    }

    return 1;
}


/*
 * OpenSSL compares a wildcard SAN with name constraints as text: excluded
 * "bar.example.com" does not end "*.example.com", so that SAN passes,
 * although it covers bar.example.com (CVE-2025-61727, the same class in
 * Go).  A wildcard one label above an excluded subtree is a violation.
 */

static void
cg_profile_nc_wildcard(cg_facts_t *f, unsigned i, NAME_CONSTRAINTS *nc)
{
    int                    j, k, m, n;
    GENERAL_NAME          *gn, *base;
    GENERAL_SUBTREE       *st;
    const ASN1_IA5STRING  *w, *e;

    n = f->san ? sk_GENERAL_NAME_num(f->san) : 0;
    m = nc->excludedSubtrees ? sk_GENERAL_SUBTREE_num(nc->excludedSubtrees)
                             : 0;

    for (k = 0; k < n; k++) {
        gn = sk_GENERAL_NAME_value(f->san, k);
        if (gn == NULL || gn->type != GEN_DNS) {
            continue;
        }

        w = gn->d.dNSName;

        for (j = 0; j < m; j++) {
            st = sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, j);
            base = st ? st->base : NULL;
            if (base == NULL || base->type != GEN_DNS) {
                continue;
            }

            e = base->d.dNSName;

            if (cg_profile_wildcard_covers(ASN1_STRING_get0_data(w),
                                           ASN1_STRING_length(w),
                                           ASN1_STRING_get0_data(e),
                                           ASN1_STRING_length(e)))
            {
                if (f->nc.n == 0) {
                    cg_detailf(f->nc_text, sizeof(f->nc_text),
                               "%.*s, %.*s excluded",
                               ASN1_STRING_length(w) > 32
                               ? 32 : ASN1_STRING_length(w),
                               (const char *) ASN1_STRING_get0_data(w),
                               ASN1_STRING_length(e) > 32
                               ? 32 : ASN1_STRING_length(e),
                               (const char *) ASN1_STRING_get0_data(e));
                }

                cg_finding_add(&f->nc, CG_PROF_NC_WILDCARD, (int) i);
            }
        }
    }
}


/* A certificate's nameConstraints: where it may be, what it may hold, and
 * the wildcard rule above for those of CAs over the leaf. */

static void
cg_profile_nc(cg_facts_t *f, unsigned i, int public_anchor)
{
    int                          j, k, n, empty, bad;
    X509                        *x;
    GENERAL_SUBTREE             *st;
    NAME_CONSTRAINTS            *nc;
    STACK_OF(GENERAL_SUBTREE)   *l;

    x = f->path[i]->x;

    if (X509_get_ext_by_NID(x, NID_name_constraints, -1) < 0) {
        return;
    }

    nc = X509_get_ext_d2i(x, NID_name_constraints, NULL, NULL);

    if (!public_anchor) {
        if (!(X509_get_extension_flags(x) & EXFLAG_CA)) {
            cg_finding_add(&f->profile, CG_PROF_NC_NOT_CA, (int) i);
        }

        empty = nc == NULL
                || (sk_GENERAL_SUBTREE_num(nc->permittedSubtrees) <= 0
                    && sk_GENERAL_SUBTREE_num(nc->excludedSubtrees) <= 0);
        bad = 0;

        for (k = 0; nc && k < 2; k++) {
            l = k ? nc->excludedSubtrees : nc->permittedSubtrees;
            n = l ? sk_GENERAL_SUBTREE_num(l) : 0;

            for (j = 0; j < n; j++) {
                st = sk_GENERAL_SUBTREE_value(l, j);
                if (st && st->base && st->base->type == GEN_DNS
                    && !cg_profile_nc_dns_ok(st->base->d.dNSName))
                {
                    bad = 1;
                }
            }
        }

        if (empty) {
            cg_finding_add(&f->profile, CG_PROF_NC_EMPTY, (int) i);
        }

        if (bad) {
            cg_finding_add(&f->profile, CG_PROF_NC_DNS_SYNTAX, (int) i);
        }
    }

    if (nc && i > 0) {
        cg_profile_nc_wildcard(f, i, nc);
    }

    NAME_CONSTRAINTS_free(nc);
}


/*
 * CA/Browser Forum 7.1.2.7.10 and 7.1.2.1.2: a server certificate's
 * extendedKeyUsage is not critical and does not hold anyExtendedKeyUsage
 * (OpenSSL's TLS-server purpose accepts both), and a root has none (an
 * intermediate may, to restrict what it issues).
 */

static void
cg_profile_eku(cg_facts_t *f)
{
    int       idx;
    unsigned  i;
    X509     *x;

    x = f->path[0]->x;
    idx = X509_get_ext_by_NID(x, NID_ext_key_usage, -1);

    if (idx >= 0) {
        if (X509_EXTENSION_get_critical(X509_get_ext(x, idx))) {
            cg_finding_add(&f->eku, CG_PROF_EKU_CRITICAL, 0);
        }

        if (X509_get_extended_key_usage(x) & XKU_ANYEKU) {
            cg_finding_add(&f->eku, CG_PROF_EKU_ANY, 0);
        }
    }

    i = f->npath - 1;

    if (i > 0 && f->path_anchor && !cg_profile_public_anchor(f, i)
        && X509_get_ext_by_NID(f->path[i]->x, NID_ext_key_usage, -1) >= 0)
    {
        cg_finding_add(&f->eku, CG_PROF_EKU_ANCHOR, (int) i);
    }
}


/*
 * An IPv4 address in any of the forms inet_aton() and old clients read: a
 * 0x number, or four dot-separated parts of digits (leading zeros, octal)
 * or 0x numbers.  Anything else with letters is a host name.
 */

static int
cg_profile_ipv4_like(const unsigned char *s, size_t n)
{
    size_t  i, dots, digits;
    int     hex;

    dots = 0;
    digits = 0;
    hex = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (digits == 0) {
                return 0;
            }

            dots++;
            digits = 0;
            hex = 0;

        } else if (digits == 1 && s[i - 1] == '0'
                   && (s[i] == 'x' || s[i] == 'X'))
        {
            hex = 1;
            digits = 0;

        } else if ((s[i] >= '0' && s[i] <= '9')
                   || (hex && ((s[i] >= 'a' && s[i] <= 'f')
                               || (s[i] >= 'A' && s[i] <= 'F'))))
        {
            digits++;

        } else {
            return 0;
        }
    }

    return digits > 0 && (dots == 3 || (dots == 0 && hex));
}


/*
 * CA/Browser Forum 7.1.4.3: a CN is one of the subjectAltName values,
 * written the same way: an IP address as its IP SAN's text (dotted quad,
 * RFC 5952 for IPv6), a domain name byte for byte.  Only near-copies are
 * findings: a CN that is an IP address but not as an IP SAN writes it, a
 * DNS SAN in other letter case, an internationalized name in A-labels
 * (xn--) that no DNS SAN spells the same.  A CN that is simply some
 * other name is left alone: plenty of certificates name their host in
 * the CN and their services in the SANs; so is a CN in Unicode, the
 * display form of an IDN.  Without SANs the CN is the name.
 */

static int
cg_profile_cn_one(cg_facts_t *f, const unsigned char *cn, size_t len)
{
    int             i, n, k, case_only, ip;
    char            buf[64], text[INET6_ADDRSTRLEN];
    GENERAL_NAME   *gn;
    unsigned char   addr[16];
    const unsigned char  *v;

    n = sk_GENERAL_NAME_num(f->san);
    case_only = 0;

    for (i = 0; i < n; i++) {
        gn = sk_GENERAL_NAME_value(f->san, i);

        if (gn == NULL) {
            continue;
        }

        if (gn->type == GEN_DNS) {
            v = ASN1_STRING_get0_data(gn->d.dNSName);
            k = ASN1_STRING_length(gn->d.dNSName);

            if (v && (size_t) k == len) {
                if (memcmp(v, cn, len) == 0) {
                    return 0;
                }

                if (strncasecmp((const char *) v, (const char *) cn, len)
                    == 0)
                {
                    case_only = 1;
                }
            }

        } else if (gn->type == GEN_IPADD) {
            v = ASN1_STRING_get0_data(gn->d.iPAddress);
            k = ASN1_STRING_length(gn->d.iPAddress);

            if (v && (k == 4 || k == 16)
                && inet_ntop(k == 4 ? AF_INET : AF_INET6, v, text,
                             sizeof(text))
                && strlen(text) == len && memcmp(text, cn, len) == 0)
            {
                return 0;
            }
        }
    }

    ip = cg_profile_ipv4_like(cn, len);

    if (!ip && memchr(cn, ':', len) && len < sizeof(buf)) {
        memcpy(buf, cn, len);
        buf[len] = '\0';
        ip = inet_pton(AF_INET6, buf, addr) == 1;
    }

    if (ip) {
        return CG_PROF_CN_IP;
    }

    if (case_only) {
        return CG_PROF_CN_CASE;
    }

    for (i = 0; (size_t) i < len; i++) {
        if (cn[i] >= 0x80) {
            /* a U-label is the display form of an A-label SAN: public
             * CAs wrote CNs so until 2023 (badssl's xn--n1aae7f7o) */
            return 0;
        }
    }

    for (i = 0; (size_t) i < len; i++) {
        if ((i == 0 || cn[i - 1] == '.') && len - i > 4
            && strncasecmp((const char *) cn + i, "xn--", 4) == 0)
        {
            return CG_PROF_CN_IDN;
        }
    }

    return 0;
}


/* a string type whose ASCII bytes are its UTF-8 as they stand */
static int
cg_profile_ascii(const ASN1_STRING *s)
{
    int                   i, n, type;
    const unsigned char  *p;

    type = ASN1_STRING_type(s);

    if (type != V_ASN1_UTF8STRING && type != V_ASN1_PRINTABLESTRING
        && type != V_ASN1_IA5STRING)
    {
        return 0;
    }

    p = ASN1_STRING_get0_data(s);
    n = ASN1_STRING_length(s);

    for (i = 0; i < n; i++) {
        if (p[i] == 0 || p[i] >= 0x80) {
            return 0;
        }
    }

    return p != NULL;
}


static void
cg_profile_cn(cg_facts_t *f)
{
    int                   i, len, code;
    unsigned char        *utf8;
    X509_NAME            *name;
    X509_NAME_ENTRY      *e;
    const unsigned char  *p;
    const ASN1_STRING    *s;

    if (!f->san_dns_ip) {
        return;
    }

    name = X509_get_subject_name(f->path[0]->x);

    for (i = X509_NAME_get_index_by_NID(name, NID_commonName, -1); i >= 0;
         i = X509_NAME_get_index_by_NID(name, NID_commonName, i))
    {
        e = X509_NAME_get_entry(name, i);
        utf8 = NULL;
        s = e ? X509_NAME_ENTRY_get_data(e) : NULL;
        len = -1;

        if (s && cg_profile_ascii(s)) {
            /* what ASN1_STRING_to_UTF8 would copy, without the copy */
            p = ASN1_STRING_get0_data(s);
            len = ASN1_STRING_length(s);

        } else if (s) {
            len = ASN1_STRING_to_UTF8(&utf8, s);
            p = utf8;
        }

        if (len > 0) {
            code = cg_profile_cn_one(f, p, (size_t) len);
            if (code) {
                cg_finding_add(&f->cn, code, 0);
            }
        }

        OPENSSL_free(utf8);
    }
}


void
cg_facts_profile(cg_facts_t *f)
{
    unsigned  i;
    uint32_t  flags;
    X509     *x;

    if (f->profile_done) {
        return;
    }

    f->profile_done = 1;

    for (i = 0; i < f->npath; i++) {
        if (cg_profile_public_anchor(f, i)) {
            cg_profile_nc(f, i, 1);
            continue;
        }

        x = f->path[i]->x;

        cg_profile_nc(f, i, 0);

        cg_profile_key(f, i);
        cg_profile_serial(f, i);

        if (X509_get_version(x) != X509_VERSION_3) {
            cg_finding_add(&f->profile, CG_PROF_NOT_V3, (int) i);
        }

        if (cg_profile_ext_empty(x, NID_info_access)) {
            cg_finding_add(&f->profile, CG_PROF_AIA_EMPTY, (int) i);
        }

        if (cg_profile_ext_noncritical(x, NID_policy_constraints)) {
            cg_finding_add(&f->profile, CG_PROF_PC_NONCRITICAL, (int) i);
        }

        if (i + 1 == f->npath && f->path_anchor) {
            cg_profile_anchor_aki(f, i);
        }
    }

    cg_profile_leaf_names(f);
    cg_profile_eku(f);
    cg_profile_cn(f);

    /* a leaf that can issue certificates, from a CA that made it so: the
     * server's key signs for any name under that CA's anchor */
    flags = X509_get_extension_flags(f->path[0]->x);

    if ((flags & EXFLAG_BCONS) && (flags & EXFLAG_CA)
        && !f->path[0]->self_signed)
    {
        cg_finding_add(&f->ca_leaf, CG_PROF_CA_LEAF, 0);
    }
}
