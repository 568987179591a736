/*
 * Evaluation: facts, then each built-in signal in table order, then the
 * policy's custom rules in policy order; exemptions zero the hits they
 * cover; the score is the sum of what counts; thresholds give the verdict.
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "cg_facts.h"


typedef struct {
    cg_facts_t      *facts;
    cg_result_t     *res;
    long long        score;

    /* exemptions are matched once, when the first hit needs them */
    unsigned char   *exempt_matched;    /* per policy->exempts entry */
    uint64_t         exempt_mask;       /* built-ins covered */
    unsigned         exempt_all:1;
    unsigned         exempt_done:1;
    unsigned         nomem:1;
} cg_eval_t;


static void cg_eval_result(cg_facts_t *f, cg_result_t *res);
static void cg_eval_rules(cg_eval_t *e);
static void cg_eval_hit(cg_eval_t *e, const char *id, int sig,
    int weight, const char *detail);
static void cg_result_hit(cg_result_t *res, unsigned pos, const char *id,
    int weight, int exempt, const char *detail);
static void cg_eval_verdict(const cg_policy_t *p, cg_result_t *res);
static void cg_eval_exempts(cg_eval_t *e);
static int cg_exempt_matches(const cg_exempt_t *ex, cg_facts_t *f);
static int cg_exempt_issuer_pin(const cg_digestset_t *set, cg_facts_t *f,
    int spki);


int
cg_evaluate(const cg_input_t *in, cg_result_t *res)
{
    int                 rc, weight, sig;
    unsigned            i, n;
    char                detail[CG_DETAIL_MAX];
    cg_facts_t          facts;
    cg_eval_t           e;
    const cg_policy_t  *p;

    if (res == NULL) {
        return CG_ERR_ARG;
    }

    memset(res, 0, sizeof(cg_result_t));

    if (in == NULL || in->policy == NULL || in->leaf == NULL) {
        return CG_ERR_ARG;
    }

    /* OpenSSL's error queue belongs to the caller (nginx reads it after
     * a handshake): what the checks below push is dropped at the end */
    ERR_set_mark();

    rc = cg_facts_init(&facts, in);
    if (rc != CG_OK) {
        cg_facts_free(&facts);
        ERR_pop_to_mark();
        return rc;
    }

    p = in->policy;

    memset(&e, 0, sizeof(cg_eval_t));
    e.facts = &facts;
    e.res = res;

    cg_eval_result(&facts, res);

    n = cg_signal_count();

    for (i = 0; i < n && i < CG_SIG_MAX; i++) {
        weight = p->weight[i];
        if (weight <= 0 && cg_signal_default_weight(i) != 0) {
            continue;       /* disabled: not even computed */
        }

        /* a signal whose default weight is 0 is informational (first_seen):
         * computed and reported at weight 0 unless the policy weighs it */

        if (cg_signal_check(i, &facts, detail, sizeof(detail), &weight)) {
            cg_eval_hit(&e, cg_signal_id(i), (int) i, weight, detail);
        }
    }

    cg_eval_rules(&e);
    cg_memory_result(&facts, res);

    res->score = e.score > INT_MAX ? INT_MAX : (int) e.score;

    cg_eval_verdict(p, res);

    /* whether an exemption covers sni_mismatch, for a verdict of this
     * result with a client's SNI (cg_result_with_client_sni) */

    sig = cg_signal_find("sni_mismatch");

    if (sig >= 0 && sig < CG_SIG_MAX && p->weight[sig] > 0 && p->nexempts) {
        if (!e.exempt_done) {
            cg_eval_exempts(&e);
        }

        res->sni_exempt = e.exempt_all
                          || ((e.exempt_mask >> sig) & 1) != 0;
    }

    rc = e.nomem ? CG_ERR_NOMEM : CG_OK;

    free(e.exempt_matched);
    cg_facts_free(&facts);
    ERR_pop_to_mark();

    return rc;
}


static void
cg_hex(const unsigned char *md, size_t len, char *buf)
{
    static const char  hex[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < len; i++) {
        buf[2 * i] = hex[md[i] >> 4];
        buf[2 * i + 1] = hex[md[i] & 0x0f];
    }

    buf[2 * len] = '\0';
}


static const char *
cg_key_type(X509 *x, int id, char *buf, size_t size)
{
    const ASN1_OBJECT  *obj;
    X509_PUBKEY        *pub;

    switch (id) {

    case EVP_PKEY_RSA:
        return "RSA";
    case EVP_PKEY_RSA_PSS:
        return "RSA-PSS";
    case EVP_PKEY_DSA:
        return "DSA";
    case EVP_PKEY_DH:
    case EVP_PKEY_DHX:
        return "DH";
    case EVP_PKEY_EC:
        return "EC";
    case EVP_PKEY_SM2:
        return "SM2";
    case EVP_PKEY_ED25519:
        return "ED25519";
    case EVP_PKEY_ED448:
        return "ED448";
    case EVP_PKEY_X25519:
        return "X25519";
    case EVP_PKEY_X448:
        return "X448";
    }

    /* a key OpenSSL cannot use: name its algorithm OID */
    obj = NULL;
    pub = X509_get_X509_PUBKEY(x);

    if (pub && X509_PUBKEY_get0_param((ASN1_OBJECT **) &obj, NULL, NULL,
                                      NULL, pub) == 1
        && obj && OBJ_obj2txt(buf, (int) size, obj, 0) > 0)
    {
        return buf;
    }

    return "unknown";
}


static void
cg_eval_result(cg_facts_t *f, cg_result_t *res)
{
    int                     nid;
    char                    buf[64];
    const char             *s;
    const ASN1_OBJECT      *obj;
    const X509_ALGOR       *alg;
    const cg_cert_facts_t  *c;
    const cg_input_t       *in;

    in = f->in;
    c = &f->certs[0];

    cg_utf8_copy(res->subject, sizeof(res->subject), c->subject,
                 c->subject_len);
    cg_utf8_copy(res->issuer, sizeof(res->issuer), c->issuer,
                 c->issuer_len);
    cg_strlcpy(res->serial, f->serial, sizeof(res->serial));

    if (c->digests) {
        cg_hex(c->sha256, sizeof(c->sha256), res->sha256);
        cg_hex(c->sha1, sizeof(c->sha1), res->sha1);
    }

    if (c->spki_ok) {
        cg_hex(c->spki, sizeof(c->spki), res->spki_sha256);
    }

    res->not_before = c->has_not_before ? c->not_before : 0;
    res->not_after = c->has_not_after ? c->not_after : 0;

    res->key_bits = c->key_bits;
    cg_strlcpy(res->key_type, cg_key_type(c->x, c->key_id, buf, sizeof(buf)),
               sizeof(res->key_type));

    nid = X509_get_signature_nid(c->x);
    s = nid != NID_undef ? OBJ_nid2ln(nid) : NULL;

    if (s == NULL) {
        alg = NULL;
        obj = NULL;
        X509_get0_signature(NULL, &alg, c->x);

        if (alg) {
            X509_ALGOR_get0(&obj, NULL, NULL, alg);
        }

        s = obj && OBJ_obj2txt(buf, sizeof(buf), obj, 1) > 0 ? buf
                                                             : "unknown";
    }

    cg_strlcpy(res->sig_alg, s, sizeof(res->sig_alg));

    res->chain_len = f->nsent;
    res->trusted = f->trusted;
    res->public_root = f->public_root;

    if (in->name) {
        cg_utf8_copy(res->name, sizeof(res->name), in->name,
                     strlen(in->name));
    }

    cg_utf8_copy(res->policy, sizeof(res->policy), in->policy->name,
                 strnlen(in->policy->name, sizeof(in->policy->name)));
}


static int
cg_rule_match_san(const cg_rule_t *r, cg_facts_t *f)
{
    int             i, n, len;
    char            ip[INET6_ADDRSTRLEN];
    GENERAL_NAME   *gn;
    ASN1_STRING    *s;

    if (f->san == NULL) {
        return 0;
    }

    n = sk_GENERAL_NAME_num(f->san);

    for (i = 0; i < n; i++) {
        gn = sk_GENERAL_NAME_value(f->san, i);
        if (gn == NULL) {
            continue;
        }

        switch (gn->type) {

        case GEN_DNS:
        case GEN_EMAIL:
        case GEN_URI:
            s = gn->d.ia5;
            break;

        case GEN_IPADD:
            s = gn->d.iPAddress;
            if (s == NULL) {
                continue;
            }

            len = ASN1_STRING_length(s);
            if ((len != 4 && len != 16)
                || inet_ntop(len == 4 ? AF_INET : AF_INET6,
                             ASN1_STRING_get0_data(s), ip, sizeof(ip))
                   == NULL)
            {
                continue;
            }

            if (cg_pattern_match(&r->pattern, ip, strlen(ip))) {
                return 1;
            }

            continue;

        default:
            continue;
        }

        if (s && ASN1_STRING_get0_data(s)
            && cg_pattern_match(&r->pattern,
                                (const char *) ASN1_STRING_get0_data(s),
                                (size_t) ASN1_STRING_length(s)))
        {
            return 1;
        }
    }

    return 0;
}


static void
cg_eval_rules(cg_eval_t *e)
{
    int                     m;
    size_t                  i;
    const char             *field, *s;
    char                    detail[CG_DETAIL_MAX];
    cg_facts_t             *f;
    const cg_rule_t        *r;
    const cg_cert_facts_t  *c;

    static const char  *fields[] = {
        "subject", "issuer", "san", "serial", "sni"
    };

    f = e->facts;
    c = &f->certs[0];

    for (i = 0; i < f->policy->nrules; i++) {
        r = &f->policy->rules[i];

        switch (r->field) {

        case CG_FIELD_SUBJECT:
            m = cg_pattern_match(&r->pattern, c->subject, c->subject_len);
            break;

        case CG_FIELD_ISSUER:
            m = cg_pattern_match(&r->pattern, c->issuer, c->issuer_len);
            break;

        case CG_FIELD_SAN:
            m = cg_rule_match_san(r, f);
            break;

        case CG_FIELD_SERIAL:
            m = cg_pattern_match(&r->pattern, f->serial, strlen(f->serial));
            break;

        case CG_FIELD_SNI:
            s = f->in->name;
            m = s && s[0] && cg_pattern_match(&r->pattern, s, strlen(s));
            break;

        default:
            m = 0;
        }

        if (!m) {
            continue;
        }

        if (r->detail) {
            cg_detailf(detail, sizeof(detail), "%s", r->detail);

        } else {
            field = (unsigned) r->field < cg_nelem(fields)
                    ? fields[r->field] : "field";
            cg_detailf(detail, sizeof(detail), "%s matches %s", field,
                       r->pattern.text ? r->pattern.text : "");
        }

        cg_eval_hit(e, r->id, -1, r->weight, detail);
    }
}


static void
cg_eval_exempts(cg_eval_t *e)
{
    size_t              i, n;
    const cg_exempt_t  *ex;

    e->exempt_done = 1;

    n = e->facts->policy->nexempts;
    if (n == 0) {
        return;
    }

    e->exempt_matched = calloc(n, 1);
    if (e->exempt_matched == NULL) {
        e->nomem = 1;
        return;
    }

    for (i = 0; i < n; i++) {
        ex = &e->facts->policy->exempts[i];

        if (!cg_exempt_matches(ex, e->facts)) {
            continue;
        }

        e->exempt_matched[i] = 1;

        if (ex->all) {
            e->exempt_all = 1;

        } else {
            e->exempt_mask |= ex->signals;
        }
    }
}


static int
cg_eval_exempt_rule(cg_eval_t *e, const char *id)
{
    size_t              i, k;
    const cg_exempt_t  *ex;

    if (e->exempt_matched == NULL) {
        return 0;
    }

    for (i = 0; i < e->facts->policy->nexempts; i++) {
        if (!e->exempt_matched[i]) {
            continue;
        }

        ex = &e->facts->policy->exempts[i];

        for (k = 0; k < ex->nrules; k++) {
            if (ex->rules[k] && strcmp(ex->rules[k], id) == 0) {
                return 1;
            }
        }
    }

    return 0;
}


/* sig: the built-in signal's index, or -1 for a custom rule. */

static void
cg_eval_hit(cg_eval_t *e, const char *id, int sig, int weight,
    const char *detail)
{
    int  exempt;

    if (!e->exempt_done) {
        cg_eval_exempts(e);
    }

    if (e->exempt_all) {
        exempt = 1;

    } else if (sig >= 0) {
        exempt = sig < 64 && (e->exempt_mask & ((uint64_t) 1 << sig)) != 0;

    } else {
        exempt = cg_eval_exempt_rule(e, id);
    }

    if (weight < 0) {
        weight = 0;
    }

    if (exempt) {
        weight = 0;
    }

    e->score += weight;

    cg_result_hit(e->res, e->res->nhits, id, weight, exempt, detail);
}


/* A hit into the list at pos; a full list keeps what weighs most. */

static void
cg_result_hit(cg_result_t *res, unsigned pos, const char *id, int weight,
    int exempt, const char *detail)
{
    unsigned   i;
    cg_hit_t  *h;

    if (res->nhits >= CG_MAX_HITS) {
        h = &res->hits[0];

        for (i = 1; i < CG_MAX_HITS; i++) {
            if (res->hits[i].weight < h->weight) {
                h = &res->hits[i];
            }
        }

        res->hits_dropped++;

        if (weight <= h->weight) {
            return;
        }

        /* in its place (no old bytes behind the new strings) */
        memset(h, 0, sizeof(cg_hit_t));

    } else {
        if (pos > res->nhits) {
            pos = res->nhits;
        }

        memmove(&res->hits[pos + 1], &res->hits[pos],
                (res->nhits - pos) * sizeof(cg_hit_t));
        res->nhits++;

        h = &res->hits[pos];
        memset(h, 0, sizeof(cg_hit_t));
    }

    cg_strlcpy(h->id, id, sizeof(h->id));
    h->weight = weight;
    h->exempt = exempt;
    cg_utf8_copy(h->detail, sizeof(h->detail), detail, strlen(detail));
}


int
cg_result_with_client_sni(const cg_policy_t *policy, cg_result_t *res,
    const char *client_sni)
{
    int        sig, k, weight;
    unsigned   i, pos;
    char       detail[CG_DETAIL_MAX];
    long long  score;

    if (policy == NULL || res == NULL) {
        return CG_ERR_ARG;
    }

    sig = cg_signal_find("sni_mismatch");

    if (sig < 0 || sig >= CG_SIG_MAX || policy->weight[sig] <= 0
        || !cg_sni_mismatch(res->name, client_sni))
    {
        return CG_OK;
    }

    /* built-ins come in table order, custom rules after them */

    pos = res->nhits < CG_MAX_HITS ? res->nhits : CG_MAX_HITS;

    for (i = 0; i < res->nhits && i < CG_MAX_HITS; i++) {
        k = cg_signal_find(res->hits[i].id);

        if (k == sig) {
            return CG_OK;
        }

        if ((k < 0 || k > sig) && pos == res->nhits) {
            pos = i;
        }
    }

    weight = res->sni_exempt ? 0 : policy->weight[sig];

    cg_sni_mismatch_detail(detail, sizeof(detail), client_sni, res->name);
    cg_result_hit(res, pos, "sni_mismatch", weight, res->sni_exempt, detail);

    score = (long long) res->score + weight;
    res->score = score > INT_MAX ? INT_MAX : (int) score;

    cg_eval_verdict(policy, res);

    return CG_OK;
}


static void
cg_eval_verdict(const cg_policy_t *p, cg_result_t *res)
{
    if (res->score >= p->block_threshold) {
        res->verdict = CG_BLOCK;

    } else if (res->score >= p->tag_threshold) {
        res->verdict = CG_TAG;

    } else {
        res->verdict = CG_ALLOW;
    }
}


static int
cg_exempt_matches(const cg_exempt_t *ex, cg_facts_t *f)
{
    int                     hit;
    size_t                  i;
    const char             *s;
    const cg_cert_facts_t  *c;

    c = &f->certs[0];

    if (ex->sni.n) {
        s = f->in->name;
        if (s == NULL || s[0] == '\0'
            || cg_patlist_match(&ex->sni, s, strlen(s)) == NULL)
        {
            return 0;
        }
    }

    if (ex->issuer.n
        && cg_patlist_match(&ex->issuer, c->issuer, c->issuer_len) == NULL)
    {
        return 0;
    }

    if (ex->subject.n
        && cg_patlist_match(&ex->subject, c->subject, c->subject_len)
           == NULL)
    {
        return 0;
    }

    if (ex->fingerprint.n) {
        hit = 0;

        for (i = 0; i < f->ncerts && !hit; i++) {
            hit = cg_facts_digest_find(&f->certs[i], &ex->fingerprint)
                  != NULL;
        }

        if (!hit) {
            return 0;
        }
    }

    if (ex->issuer_spki.n && !cg_exempt_issuer_pin(&ex->issuer_spki, f, 1)) {
        return 0;
    }

    if (ex->issuer_fingerprint.n
        && !cg_exempt_issuer_pin(&ex->issuer_fingerprint, f, 0))
    {
        return 0;
    }

    if (ex->ndst) {
        s = f->in->dst_addr;
        if (s == NULL || s[0] == '\0') {
            return 0;
        }

        hit = 0;

        for (i = 0; i < ex->ndst && !hit; i++) {
            hit = cg_cidr_match(&ex->dst[i], s) == 1;
        }

        if (!hit) {
            return 0;
        }
    }

    return 1;
}


/* 1 when a certificate whose key signed the leaf has one of the pins. */
static int
cg_exempt_issuer_pin(const cg_digestset_t *set, cg_facts_t *f, int spki)
{
    unsigned                i, n;
    const cg_issuer_pin_t  *is;

    is = cg_facts_issuers(f, &n);

    for (i = 0; i < n; i++) {
        if (cg_digestset_find(set, spki ? is[i].spki : is[i].sha256, 32)
            != NULL)
        {
            return 1;
        }
    }

    return 0;
}


const char *
cg_verdict_name(cg_verdict_t v)
{
    switch (v) {

    case CG_ALLOW:
        return "allow";

    case CG_TAG:
        return "tag";

    case CG_BLOCK:
        return "block";
    }

    return "unknown";
}


const char *
cg_action_name(cg_verdict_t v, int monitor)
{
    switch (v) {

    case CG_ALLOW:
        return "allowed";

    case CG_TAG:
        return "tagged";

    case CG_BLOCK:
        return monitor ? "would-block" : "blocked";
    }

    return "unknown";
}


const char *
cg_strerror(int status)
{
    switch (status) {

    case CG_OK:
        return "success";

    case CG_ERR_NOMEM:
        return "out of memory";

    case CG_ERR_IO:
        return "file could not be opened or read";

    case CG_ERR_SYNTAX:
        return "syntax error";

    case CG_ERR_INPUT:
        return "malformed certificate or chain";

    case CG_ERR_ARG:
        return "invalid argument";
    }

    return "unknown error";
}
