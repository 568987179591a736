/*
 * The certificate memory's part of an evaluation: the lookup (once, as a
 * fact), the four signals that read it, the result's first-seen time and
 * previous certificate, and the sighting a caller records afterwards.
 * The signal table entries are in cg_signals.c; the rules are documented
 * in docs/signals.md ("Certificate memory") and docs/memory.md.
 *
 * "The same CA": the same issuer DN; or, when both certificates verified
 * to public roots (whose CAs' names are vetted by the root programs), the
 * same organization (O), with case, punctuation and a trailing legal form
 * ("Inc", "LLC", ...) ignored, so that a public CA's next intermediate
 * (Let's Encrypt R10 after R3) is the same CA.  A private or untrusted CA
 * can name itself anything: there only the whole DN counts.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "cg_facts.h"
#include "cg_memory.h"


#define CG_CA_MAX           128


struct cg_memfacts_s {
    int                 self;           /* this leaf in entry, or -1 */
    int                 prev;           /* the certificate a change was
                                           seen against, or -1 */
    unsigned            has_spki:1;
    unsigned            public_root:1;
    unsigned char       spki[32];
    char                ca[CG_CA_MAX];  /* this leaf's CA, normalized */
    char                issuer[CG_DN_MAX];  /* as results and sightings
                                               have it */
    cg_memory_entry_t   entry;
};


typedef enum {
    CG_MEM_SAME = 0,
    CG_MEM_CERT_CHANGED,                /* another CA and another key */
    CG_MEM_ISSUER_CHANGED               /* another CA, a key seen before */
} cg_mem_change_t;


cg_memfacts_t *
cg_facts_memory(cg_facts_t *f)
{
    unsigned        i;
    cg_memfacts_t  *mf;

    if (f->mem_done) {
        return f->mem;
    }

    f->mem_done = 1;

    if (f->in->memory == NULL || f->in->name == NULL
        || f->in->name[0] == '\0' || !f->certs[0].digests)
    {
        return NULL;
    }

    mf = malloc(sizeof(cg_memfacts_t));
    if (mf == NULL) {
        return NULL;
    }

    if (cg_memory_lookup(f->in->memory, f->in->name, f->in->dst_port,
                         &mf->entry)
        != CG_OK)
    {
        free(mf);
        return NULL;    /* unreadable: scored without the memory */
    }

    mf->self = -1;
    mf->prev = -1;
    mf->has_spki = f->certs[0].spki_ok;
    memcpy(mf->spki, f->certs[0].spki, sizeof(mf->spki));
    mf->public_root = f->public_root;
    mf->ca[0] = '\0';
    cg_utf8_copy(mf->issuer, sizeof(mf->issuer), f->certs[0].issuer,
                 f->certs[0].issuer_len);

    for (i = 0; i < mf->entry.ncerts; i++) {
        if (memcmp(mf->entry.certs[i].sha256, f->certs[0].sha256, 32) == 0) {
            mf->self = (int) i;
            break;
        }
    }

    f->mem = mf;

    return mf;
}


void
cg_facts_memory_free(cg_facts_t *f)
{
    free(f->mem);
    f->mem = NULL;
}


static int
cg_ca_legal_form(const char *w, size_t n)
{
    size_t  i;

    static const char  *forms[] = {
        "inc", "llc", "ltd", "limited", "corp", "corporation", "co",
        "company", "gmbh", "ag", "sa", "sas", "srl", "spa", "bv", "nv",
        "plc", "pty", "ab", "as", "oy", "kk", "lp"
    };

    for (i = 0; i < cg_nelem(forms); i++) {
        if (strlen(forms[i]) == n && memcmp(forms[i], w, n) == 0) {
            return 1;
        }
    }

    return 0;
}


/* The CA an issuer DN (RFC 2253) names, normalized into out. */
static void
cg_memory_ca(const char *dn, char *out, size_t size)
{
    int          at_attr, in_o;
    char         val[CG_CA_MAX];
    size_t       i, n, len, nwords;
    size_t       word[CG_CA_MAX / 2];
    const char  *p;

    n = 0;
    in_o = 0;
    at_attr = 1;

    /* the value of the first O=, unescaped */

    for (p = dn; *p; p++) {
        if (at_attr) {
            at_attr = 0;
            if (p[0] == 'O' && p[1] == '=') {
                in_o = 1;
                p++;
                continue;
            }
        }

        if (*p == '\\' && p[1]) {
            p++;
            if (in_o && n < sizeof(val) - 1) {
                val[n++] = *p;
            }
            continue;
        }

        if (*p == ',' || *p == '+') {
            if (in_o) {
                break;
            }
            at_attr = 1;
            continue;
        }

        if (in_o && n < sizeof(val) - 1) {
            val[n++] = *p;
        }
    }

    if (!in_o) {
        /* no organization: the whole DN, case and punctuation aside */
        n = cg_strlcpy(val, dn, sizeof(val));
        if (n >= sizeof(val)) {
            n = sizeof(val) - 1;
        }
    }

    /* words of ASCII letters and digits (and any non-ASCII byte), lower
     * case, one space between them */

    len = 0;
    nwords = 0;

    for (i = 0; i < n; i++) {
        if ((unsigned char) val[i] < 0x80
            && !((val[i] >= 'a' && val[i] <= 'z')
                 || (val[i] >= 'A' && val[i] <= 'Z')
                 || (val[i] >= '0' && val[i] <= '9')))
        {
            continue;
        }

        if (i == 0 || !((unsigned char) val[i - 1] >= 0x80
                        || (val[i - 1] >= 'a' && val[i - 1] <= 'z')
                        || (val[i - 1] >= 'A' && val[i - 1] <= 'Z')
                        || (val[i - 1] >= '0' && val[i - 1] <= '9')))
        {
            if (len && len < size - 1) {
                out[len++] = ' ';
            }
            if (nwords < cg_nelem(word)) {
                word[nwords++] = len;
            }
        }

        if (len < size - 1) {
            out[len++] = (char) ((val[i] >= 'A' && val[i] <= 'Z')
                                 ? val[i] - 'A' + 'a' : val[i]);
        }
    }

    /* "DigiCert Inc" is "DigiCert": trailing legal forms go, not the
     * last word */

    while (in_o && nwords > 1
           && cg_ca_legal_form(out + word[nwords - 1],
                               len - word[nwords - 1]))
    {
        len = word[--nwords] - 1;
    }

    out[len] = '\0';
}


static int
cg_memory_same_ca(cg_memfacts_t *mf, const cg_memory_cert_t *r)
{
    char  other[CG_CA_MAX];

    if (strcmp(mf->issuer, r->issuer) == 0) {
        return 1;
    }

    if (!mf->public_root || !r->public_root) {
        return 0;
    }

    if (mf->ca[0] == '\0') {
        cg_memory_ca(mf->issuer, mf->ca, sizeof(mf->ca));
    }

    cg_memory_ca(r->issuer, other, sizeof(other));

    return other[0] != '\0' && strcmp(mf->ca, other) == 0;
}


/*
 * What changed for this name:port, by the rule of docs/signals.md: the
 * prior certificates that count were first seen before this leaf, are
 * still valid now and were seen within the signal's second window; this
 * leaf is new (first seen less than the first window ago).  Another CA
 * and another key than every one of them: a certificate change; another
 * CA but one of their keys: an issuer change.  *prev is the most recently
 * seen of them.
 */
static cg_mem_change_t
cg_memory_change(cg_facts_t *f, unsigned index, int *prev)
{
    int                      best, ca_known, key_known;
    int64_t                  t, fresh, recent, nfs;
    unsigned                 i;
    cg_memfacts_t           *mf;
    const cg_memory_cert_t  *r;

    *prev = -1;

    mf = cg_facts_memory(f);
    if (mf == NULL || mf->entry.ncerts == 0) {
        return CG_MEM_SAME;
    }

    t = f->now;
    fresh = cg_signal_window(f->policy, index, 0);
    recent = cg_signal_window(f->policy, index, 1);
    nfs = INT64_MAX;

    if (mf->self >= 0) {
        nfs = mf->entry.certs[mf->self].first_seen;

        if (nfs <= t && t - nfs >= fresh) {
            return CG_MEM_SAME;     /* this certificate is established */
        }
    }

    best = -1;
    ca_known = 0;
    key_known = 0;

    for (i = 0; i < mf->entry.ncerts; i++) {
        r = &mf->entry.certs[i];

        if ((int) i == mf->self || r->first_seen >= nfs
            || (r->not_after != 0 && r->not_after <= t)
            || r->last_seen < t - recent)
        {
            continue;
        }

        if (cg_memory_same_ca(mf, r)) {
            ca_known = 1;
        }

        if (mf->has_spki && r->has_spki && memcmp(mf->spki, r->spki, 32) == 0)
        {
            key_known = 1;
        }

        if (best < 0 || r->last_seen > mf->entry.certs[best].last_seen) {
            best = (int) i;
        }
    }

    if (best < 0 || ca_known) {
        return CG_MEM_SAME;
    }

    *prev = best;

    return key_known ? CG_MEM_ISSUER_CHANGED : CG_MEM_CERT_CHANGED;
}


static void
cg_memory_ago(int64_t s, char *buf, size_t size)
{
    if (s < 0) {
        s = 0;
    }

    if (s >= 2 * 86400) {
        snprintf(buf, size, "%lldd", (long long) (s / 86400));
    } else if (s >= 3600) {
        snprintf(buf, size, "%lldh", (long long) (s / 3600));
    } else {
        snprintf(buf, size, "%llds", (long long) s);
    }
}


static int
cg_memory_check_change(cg_facts_t *f, unsigned index, cg_mem_change_t want,
    char *detail, size_t size)
{
    int                      prev;
    char                     ago[24];
    cg_memfacts_t           *mf;
    const cg_memory_cert_t  *r;

    if (cg_memory_change(f, index, &prev) != want) {
        return 0;
    }

    mf = f->mem;
    mf->prev = prev;
    r = &mf->entry.certs[prev];

    cg_memory_ago(f->now - r->last_seen, ago, sizeof(ago));
    cg_detailf(detail, size, "%s; before %.44s, seen %s ago",
               want == CG_MEM_CERT_CHANGED ? "new issuer and key"
                                           : "new issuer, known key",
               r->issuer, ago);

    return 1;
}


int
cg_check_cert_changed(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    return cg_memory_check_change(f, index, CG_MEM_CERT_CHANGED, detail,
                                  size);
}


int
cg_check_issuer_changed(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    return cg_memory_check_change(f, index, CG_MEM_ISSUER_CHANGED, detail,
                                  size);
}


int
cg_check_first_seen(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    cg_memfacts_t  *mf;

    mf = cg_facts_memory(f);
    if (mf == NULL || mf->entry.ncerts != 0) {
        return 0;
    }

    cg_detailf(detail, size, "first sighting of %.64s:%u", mf->entry.name,
               mf->entry.port);

    return 1;
}


/*
 * The same leaf from an AS or a country it was not served from before:
 * the locations that count were recorded before the current one was;
 * the current one is new until it has been seen for the window.
 */
int
cg_check_cert_moved(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    int                      asn_new, cc_new;
    int64_t                  fresh, lfs;
    unsigned                 i;
    cg_memfacts_t           *mf;
    const cg_geo_t          *g;
    const cg_memory_geo_t   *x, *before;
    const cg_memory_cert_t  *r;

    if (f->in->geoip == NULL) {
        return 0;
    }

    mf = cg_facts_memory(f);
    if (mf == NULL || mf->self < 0) {
        return 0;
    }

    g = cg_facts_geo(f);
    if (g == NULL || (g->asn == 0 && g->country[0] == '\0')) {
        return 0;
    }

    r = &mf->entry.certs[mf->self];
    fresh = cg_signal_window(f->policy, index, 0);
    lfs = INT64_MAX;

    for (i = 0; i < r->ngeo; i++) {
        x = &r->geo[i];

        if (x->asn == g->asn && strncmp(x->country, g->country, 2) == 0) {
            lfs = x->first_seen;
            if (lfs <= f->now && f->now - lfs >= fresh) {
                return 0;
            }
            break;
        }
    }

    asn_new = g->asn != 0;
    cc_new = g->country[0] != '\0';
    before = NULL;

    for (i = 0; i < r->ngeo; i++) {
        x = &r->geo[i];

        if (x->first_seen >= lfs) {
            continue;
        }

        if (before == NULL || x->last_seen > before->last_seen) {
            before = x;
        }

        if (x->asn == g->asn) {
            asn_new = 0;
        }

        if (strncmp(x->country, g->country, 2) == 0) {
            cc_new = 0;
        }
    }

    if (before == NULL || (!asn_new && !cc_new)) {
        return 0;
    }

    cg_detailf(detail, size, "served from AS%u %.2s, before from AS%u %.2s",
               (unsigned) g->asn, g->country[0] ? g->country : "??",
               (unsigned) before->asn,
               before->country[0] ? before->country : "??");

    return 1;
}


void
cg_memory_result(cg_facts_t *f, cg_result_t *res)
{
    static const char        hex[] = "0123456789abcdef";
    unsigned                 i;
    cg_memfacts_t           *mf;
    const cg_memory_cert_t  *r;

    mf = cg_facts_memory(f);
    if (mf == NULL) {
        return;
    }

    res->first_seen = f->now;

    if (mf->self >= 0 && mf->entry.certs[mf->self].first_seen < f->now) {
        res->first_seen = mf->entry.certs[mf->self].first_seen;
    }

    if (mf->prev < 0) {
        return;
    }

    r = &mf->entry.certs[mf->prev];

    for (i = 0; i < 32; i++) {
        res->prev_sha256[2 * i] = hex[r->sha256[i] >> 4];
        res->prev_sha256[2 * i + 1] = hex[r->sha256[i] & 0x0f];
    }

    res->prev_sha256[64] = '\0';
    cg_utf8_copy(res->prev_issuer, sizeof(res->prev_issuer), r->issuer,
                 strnlen(r->issuer, sizeof(r->issuer)));
}


static int
cg_memory_unhex(const char *s, unsigned char *md, size_t n)
{
    size_t  i;
    int     hi, lo;

    for (i = 0; i < n; i++) {
        hi = s[2 * i];
        lo = hi ? s[2 * i + 1] : 0;

        hi = hi >= '0' && hi <= '9' ? hi - '0'
             : (hi >= 'a' && hi <= 'f' ? hi - 'a' + 10 : -1);
        lo = lo >= '0' && lo <= '9' ? lo - '0'
             : (lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 : -1);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        md[i] = (unsigned char) (hi << 4 | lo);
    }

    return 0;
}


int
cg_memory_sighting(cg_memory_sighting_t *s, const cg_input_t *in,
    const cg_result_t *res)
{
    cg_geo_t  g;

    if (s == NULL) {
        return CG_ERR_ARG;
    }

    memset(s, 0, sizeof(cg_memory_sighting_t));

    /* the result's digests when it has them (an evaluation computed
     * them once), else the leaf's */

    if (in == NULL || res == NULL || in->leaf == NULL || in->name == NULL
        || in->name[0] == '\0' || strlen(in->name) >= sizeof(s->name)
        || cg_memory_unhex(res->sha256, s->sha256, 32) != 0
        || (cg_memory_unhex(res->spki_sha256, s->spki, 32) != 0
            && cg_spki_sha256(in->leaf, s->spki) != CG_OK))
    {
        return CG_ERR_ARG;
    }

    cg_strlcpy(s->name, in->name, sizeof(s->name));
    s->port = in->dst_port ? in->dst_port : 443;
    s->at = in->now ? in->now : (int64_t) time(NULL);
    cg_strlcpy(s->issuer, res->issuer, sizeof(s->issuer));
    s->public_root = res->public_root;
    s->not_before = res->not_before;
    s->not_after = res->not_after;

    if (in->dst_addr) {
        cg_strlcpy(s->addr, in->dst_addr, sizeof(s->addr));

        if (in->geoip && cg_geoip_lookup(in->geoip, in->dst_addr, &g) == 0) {
            s->asn = g.asn;
            memcpy(s->country, g.country, 2);
            s->country[2] = '\0';
        }
    }

    return CG_OK;
}
