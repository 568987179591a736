/*
 * The memo of verified signatures: a verify step for X509_STORE_CTX that
 * does what OpenSSL 3.0's internal_verify() does (crypto/x509/x509_vfy.c:
 * each certificate's signature under its issuer's key, then its validity
 * times, every error through the verify callback at the depth OpenSSL
 * reports it) but asks a memo before each X509_verify(), and the memo's
 * storage, a fixed set-associative table in caller memory.
 *
 * Why a hit may skip the check: X509_verify(subject, key) is a function of
 * the subject's encoding (its to-be-signed bytes kept as received, the
 * signature algorithm and value) and of the key, which is read from the
 * issuer's encoding; the memo key is a SHA-256 over both encodings, so a
 * hit means the same bytes verified before, short of a SHA-256 collision.
 * Everything else of the verification (chain building, extensions,
 * purposes, names, revocation, times, trust) runs on every evaluation, as
 * X509_verify_cert() calls this step between them.  docs/performance.md
 * has the whole argument and what differs from OpenSSL's step.
 */

#include <stdint.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "cg_facts.h"
#include "cg_memo.h"


#define CG_MEMO_WAYS        4
#define CG_MEMO_MAGIC       0x63676d656d6f3031ULL   /* "cgmemo01" */


typedef struct {
    uint64_t         magic;
    uint64_t         nbuckets;          /* below 2^32 */
    uint64_t         salt;              /* bucket index, per table */
    cg_memo_stats_t  stats;
    unsigned char    slots[];           /* nbuckets * WAYS * KEY_LEN */
} cg_memo_table_t;


/* the SHA-256 of x's DER when the caller has it already: 1, else 0 */
typedef int (*cg_memo_digest_pt)(void *arg, X509 *x, unsigned char *md);

/* the time a walk checks validity against, broken down once; at, when
 * not NULL: the evaluation's, whatever the flags say */
typedef struct {
    unsigned        made:1;
    unsigned        ok:1;
    const int64_t  *at;
    struct tm       tm;
} cg_memo_now_t;

static int cg_memo_step(X509_STORE_CTX *ctx, const cg_verify_memo_t *memo,
    cg_memo_digest_pt digest, void *arg, const int64_t *at);
static int cg_memo_facts_digest(void *arg, X509 *x, unsigned char *md);
static int cg_memo_key_of(X509 *issuer, X509 *subject, unsigned char *key,
    cg_memo_digest_pt digest, void *arg);
static int cg_memo_facts_verify(X509_STORE_CTX *ctx);
static int cg_memo_fail(X509_STORE_CTX *ctx, X509 *x, int depth, int err);
static int cg_memo_walk(X509_STORE_CTX *ctx, const cg_verify_memo_t *memo,
    cg_memo_digest_pt digest, void *arg, cg_memo_now_t *now);
static int cg_memo_check_time(X509_STORE_CTX *ctx, X509 *x, int depth,
    cg_memo_now_t *now);
static int cg_memo_cmp_time(const ASN1_TIME *t, const cg_memo_now_t *now);
static int cg_memo_signing_allowed(X509 *issuer, X509 *subject);
static int cg_memo_signature(const cg_verify_memo_t *memo, X509 *issuer,
    X509 *subject, EVP_PKEY *pkey, cg_memo_digest_pt digest, void *arg);


int
cg_memo_supported(void)
{
    /* 0xMNN00PP0: major 3, minor 0, whose internal_verify() this matches */
    return (OpenSSL_version_num() >> 20) == 0x300;
}


void
cg_memo_hook(X509_STORE_CTX *ctx, const cg_input_t *in)
{
    if (in->verify_memo != NULL && cg_memo_supported()) {
        X509_STORE_CTX_set_verify(ctx, cg_memo_facts_verify);
    }
}


static int
cg_memo_facts_verify(X509_STORE_CTX *ctx)
{
    cg_facts_t  *f;

    f = X509_STORE_CTX_get_app_data(ctx);

    return cg_memo_step(ctx, f ? f->in->verify_memo : NULL,
                        cg_memo_facts_digest, f,
                        f && f->walk_time ? &f->now : NULL);
}


/* The SHA-256 the facts computed already (the sent certificates) or
 * the trust did (the store's). */

static int
cg_memo_facts_digest(void *arg, X509 *x, unsigned char *md)
{
    return arg != NULL && cg_facts_sha256(arg, x, md);
}


/*
 * Behaves as OpenSSL 3.0's internal_verify(), written on the public API;
 * where that needs internals:
 *
 * - ossl_x509_likely_issued(xi, xi) == X509_V_OK is EXFLAG_SS without
 *   EXFLAG_INVALID: x509v3_cache_extensions() sets EXFLAG_SS from the same
 *   three tests (names, key identifiers, key type against signature
 *   algorithm), and likely_issued() fails on an invalid certificate;
 * - ctx->bare_ta_signed is only set by DANE, which neither the engine's
 *   contexts nor nginx's upstream ones enable;
 * - ctx->current_issuer has no setter: it keeps what the steps before set
 *   (NULL without CRL checks); the callbacks certguard runs under, its
 *   own and nginx's, do not read it.
 */

int
cg_memo_verify(X509_STORE_CTX *ctx, const cg_verify_memo_t *memo)
{
    return cg_memo_step(ctx, memo, NULL, NULL, NULL);
}


static int
cg_memo_step(X509_STORE_CTX *ctx, const cg_verify_memo_t *memo,
    cg_memo_digest_pt digest, void *arg, const int64_t *at)
{
    cg_memo_now_t  now;

    now.made = 0;
    now.at = at;

    return cg_memo_walk(ctx, memo, digest, arg, &now);
}


static int
cg_memo_walk(X509_STORE_CTX *ctx, const cg_verify_memo_t *memo,
    cg_memo_digest_pt digest, void *arg, cg_memo_now_t *now)
{
    int                       n, ret, issuer_depth;
    uint32_t                  xflags;
    unsigned long             flags;
    X509                     *xi, *xs;
    EVP_PKEY                 *pkey;
    STACK_OF(X509)           *chain;
    X509_STORE_CTX_verify_cb  cb;

    chain = X509_STORE_CTX_get0_chain(ctx);
    flags = X509_VERIFY_PARAM_get_flags(X509_STORE_CTX_get0_param(ctx));
    cb = X509_STORE_CTX_get_verify_cb(ctx);

    n = sk_X509_num(chain) - 1;
    xi = sk_X509_value(chain, n);
    xs = xi;

    X509_STORE_CTX_set_error_depth(ctx, n);

    xflags = X509_get_extension_flags(xi);

    if (((xflags & EXFLAG_SS) == 0 || (xflags & EXFLAG_INVALID) != 0)
        && (flags & X509_V_FLAG_PARTIAL_CHAIN) == 0)
    {
        if (n > 0) {
            n--;
            X509_STORE_CTX_set_error_depth(ctx, n);
            xs = sk_X509_value(chain, n);

        } else if (!cg_memo_fail(ctx, xi, 0,
                                 X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE))
        {
            return 0;
        }
    }

    while (n >= 0) {

        if (xs != xi
            || ((flags & X509_V_FLAG_CHECK_SS_SIGNATURE) != 0
                && (X509_get_extension_flags(xi) & EXFLAG_SS) != 0))
        {
            issuer_depth = n + (xs == xi ? 0 : 1);

            ret = (xs == xi && (X509_get_extension_flags(xi) & EXFLAG_CA) == 0)
                  ? X509_V_OK : cg_memo_signing_allowed(xi, xs);

            if (ret != X509_V_OK
                && !cg_memo_fail(ctx, xi, issuer_depth, ret))
            {
                return 0;
            }

            pkey = X509_get0_pubkey(xi);

            if (pkey == NULL) {
                if (!cg_memo_fail(ctx, xi, issuer_depth,
                                  X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY))
                {
                    return 0;
                }

            } else if (cg_memo_signature(memo, xi, xs, pkey, digest, arg)
                       <= 0
                       && !cg_memo_fail(ctx, xs, n,
                                        X509_V_ERR_CERT_SIGNATURE_FAILURE))
            {
                return 0;
            }
        }

        if (!cg_memo_check_time(ctx, xs, n, now)) {
            return 0;
        }

        X509_STORE_CTX_set_current_cert(ctx, xs);
        X509_STORE_CTX_set_error_depth(ctx, n);

        if (!cb(1, ctx)) {
            return 0;
        }

        if (--n >= 0) {
            xi = xs;
            xs = sk_X509_value(chain, n);
        }
    }

    return 1;
}


/* verify_cb_cert(): the error, its depth and certificate, the callback. */

static int
cg_memo_fail(X509_STORE_CTX *ctx, X509 *x, int depth, int err)
{
    if (depth < 0) {
        depth = X509_STORE_CTX_get_error_depth(ctx);

    } else {
        X509_STORE_CTX_set_error_depth(ctx, depth);
    }

    X509_STORE_CTX_set_current_cert(ctx, x != NULL
                                    ? x
                                    : sk_X509_value(
                                          X509_STORE_CTX_get0_chain(ctx),
                                          depth));

    if (err != X509_V_OK) {
        X509_STORE_CTX_set_error(ctx, err);
    }

    return X509_STORE_CTX_get_verify_cb(ctx)(0, ctx);
}


/*
 * ossl_x509_check_cert_time() of 3.0, for depth >= 0.  The time checked
 * against is broken down once a walk (*now), not printed into an
 * ASN1_TIME once a comparison as X509_cmp_time() does: that was a tenth
 * of a new leaf's evaluation.
 */

static int
cg_memo_check_time(X509_STORE_CTX *ctx, X509 *x, int depth, cg_memo_now_t *now)
{
    int                 i;
    time_t              t, *ptime;
    X509_VERIFY_PARAM  *param;

    param = X509_STORE_CTX_get0_param(ctx);

    if (now->at) {
        t = (time_t) *now->at;
        ptime = &t;

    } else if (X509_VERIFY_PARAM_get_flags(param) & X509_V_FLAG_USE_CHECK_TIME)
    {
        t = X509_VERIFY_PARAM_get_time(param);
        ptime = &t;

    } else if (X509_VERIFY_PARAM_get_flags(param) & X509_V_FLAG_NO_CHECK_TIME)
    {
        return 1;

    } else {
        ptime = NULL;
    }

    if (!now->made) {
        now->made = 1;
        t = ptime ? *ptime : time(NULL);

        /* gmtime_r()'s failure, a year beyond int, as the bound */
        now->ok = t > -((time_t) 1 << 55) && t < ((time_t) 1 << 55);

        if (now->ok) {
            cg_epoch_to_tm((int64_t) t, &now->tm);
        }
    }

    i = cg_memo_cmp_time(X509_get0_notBefore(x), now);

    if (i == 0
        && !cg_memo_fail(ctx, x, depth,
                         X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD))
    {
        return 0;
    }

    if (i > 0 && !cg_memo_fail(ctx, x, depth, X509_V_ERR_CERT_NOT_YET_VALID))
    {
        return 0;
    }

    i = cg_memo_cmp_time(X509_get0_notAfter(x), now);

    if (i == 0
        && !cg_memo_fail(ctx, x, depth,
                         X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD))
    {
        return 0;
    }

    if (i < 0 && !cg_memo_fail(ctx, x, depth, X509_V_ERR_CERT_HAS_EXPIRED)) {
        return 0;
    }

    return 1;
}


/*
 * X509_cmp_time(t, the time now holds) of 3.0: 0 when t is not in RFC
 * 5280's form (YYMMDDHHMMSSZ as UTCTime, YYYYMMDDHHMMSSZ as
 * GeneralizedTime, digits then Z; the ranges checked as ASN1_TIME_to_tm()
 * checks them, cg_asn1_time_tm(), as ASN1_TIME_diff() did through it) or
 * now is unknown, -1 when t is at or before now, 1 when after.  Fields in
 * range compare as the times do.
 */

static int
cg_memo_cmp_time(const ASN1_TIME *t, const cg_memo_now_t *now)
{
    int        d;
    struct tm  tm;

    if (t == NULL || !now->ok || !cg_asn1_time_tm(t, &tm)) {
        return 0;
    }

    d = tm.tm_year - now->tm.tm_year;
    d = d ? d : tm.tm_mon - now->tm.tm_mon;
    d = d ? d : tm.tm_mday - now->tm.tm_mday;
    d = d ? d : tm.tm_hour - now->tm.tm_hour;
    d = d ? d : tm.tm_min - now->tm.tm_min;
    d = d ? d : tm.tm_sec - now->tm.tm_sec;

    return d > 0 ? 1 : -1;
}


/*
 * ossl_x509_signing_allowed(): the issuer's keyUsage must allow
 * keyCertSign (digitalSignature for a proxy certificate).  ex_kusage has no
 * getter that works on an invalid certificate (X509_get_key_usage() then
 * gives 0), so there the first two bytes are read as
 * x509v3_cache_extensions() reads them into it.
 */

static int
cg_memo_signing_allowed(X509 *issuer, X509 *subject)
{
    uint32_t           ku, need, flags;
    ASN1_BIT_STRING   *usage;

    flags = X509_get_extension_flags(issuer);

    if ((flags & EXFLAG_KUSAGE) == 0) {
        return X509_V_OK;
    }

    ku = 0;
    usage = NULL;

    if ((flags & EXFLAG_INVALID) == 0) {
        ku = X509_get_key_usage(issuer);

    } else {
        usage = X509_get_ext_d2i(issuer, NID_key_usage, NULL, NULL);
    }

    if (usage != NULL) {
        if (usage->length > 0) {
            ku = usage->data[0];
            if (usage->length > 1) {
                ku |= (uint32_t) usage->data[1] << 8;
            }
        }

        ASN1_BIT_STRING_free(usage);
    }

    need = (X509_get_extension_flags(subject) & EXFLAG_PROXY)
           ? KU_DIGITAL_SIGNATURE : KU_KEY_CERT_SIGN;

    if ((ku & need) == 0) {
        return need == KU_DIGITAL_SIGNATURE
               ? X509_V_ERR_KEYUSAGE_NO_DIGITAL_SIGNATURE
               : X509_V_ERR_KEYUSAGE_NO_CERTSIGN;
    }

    return X509_V_OK;
}


/* X509_verify(subject, pkey), unless the memo has these two encodings;
 * only an accepted signature goes in. */

static int
cg_memo_signature(const cg_verify_memo_t *memo, X509 *issuer, X509 *subject,
    EVP_PKEY *pkey, cg_memo_digest_pt digest, void *arg)
{
    int            rc;
    unsigned char  key[CG_MEMO_KEY_LEN];

    if (memo == NULL
        || cg_memo_key_of(issuer, subject, key, digest, arg) != CG_OK)
    {
        return X509_verify(subject, pkey);
    }

    if (memo->lookup(memo->data, key)) {
        return 1;
    }

    rc = X509_verify(subject, pkey);

    if (rc > 0) {
        memo->insert(memo->data, key);
    }

    return rc;
}


/* SHA-256 of a tag, SHA-256(issuer DER), SHA-256(subject DER): each
 * digest fixes its whole encoding, and the tag the key's use. */

int
cg_memo_key(X509 *issuer, X509 *subject, unsigned char *key)
{
    return cg_memo_key_of(issuer, subject, key, NULL, NULL);
}


static int
cg_memo_key_of(X509 *issuer, X509 *subject, unsigned char *key,
    cg_memo_digest_pt digest, void *arg)
{
    unsigned int   len;
    unsigned char  buf[8 + 2 * 32];

    memcpy(buf, "cgmemo01", 8);

    len = 32;
    if ((digest == NULL || !digest(arg, issuer, buf + 8))
        && (X509_digest(issuer, cg_md_sha256(), buf + 8, &len) != 1
            || len != 32))
    {
        return CG_ERR_INPUT;
    }

    len = 32;
    if ((digest == NULL || !digest(arg, subject, buf + 40))
        && (X509_digest(subject, cg_md_sha256(), buf + 40, &len) != 1
            || len != 32))
    {
        return CG_ERR_INPUT;
    }

    return cg_sha256(buf, sizeof(buf), key) ? CG_OK : CG_ERR_INPUT;
}


int
cg_memo_table_init(void *mem, size_t size)
{
    size_t            room;
    cg_memo_table_t  *t;

    if (mem == NULL || size < sizeof(cg_memo_table_t)) {
        return CG_ERR_ARG;
    }

    room = (size - sizeof(cg_memo_table_t)) / (CG_MEMO_WAYS * CG_MEMO_KEY_LEN);
    if (room == 0) {
        return CG_ERR_ARG;
    }

    if (room > 0xffffffffUL) {
        room = 0xffffffffUL;
    }

    t = mem;
    memset(t, 0, sizeof(cg_memo_table_t));

    t->nbuckets = room;
    t->stats.entries = t->nbuckets * CG_MEMO_WAYS;

    /* a bucket an adversary cannot aim certificates at */
    if (RAND_bytes((unsigned char *) &t->salt, sizeof(t->salt)) != 1) {
        t->salt = (uint64_t) (uintptr_t) mem ^ 0x9e3779b97f4a7c15ULL;
    }

    memset(t->slots, 0, t->nbuckets * CG_MEMO_WAYS * CG_MEMO_KEY_LEN);
    t->magic = CG_MEMO_MAGIC;

    return CG_OK;
}


static unsigned char *
cg_memo_bucket(cg_memo_table_t *t, const unsigned char *key)
{
    uint64_t  h;

    memcpy(&h, key, sizeof(h));
    h = (h ^ t->salt) * 0x9e3779b97f4a7c15ULL;

    /* the high 32 bits scaled to [0, nbuckets): every byte of the zone */
    h = ((h >> 32) * t->nbuckets) >> 32;

    return t->slots + h * CG_MEMO_WAYS * CG_MEMO_KEY_LEN;
}


int
cg_memo_table_lookup(void *table, const unsigned char *key)
{
    unsigned          i;
    unsigned char    *b, tmp[CG_MEMO_KEY_LEN];
    cg_memo_table_t  *t;

    t = table;
    if (t == NULL || t->magic != CG_MEMO_MAGIC) {
        return 0;
    }

    b = cg_memo_bucket(t, key);

    for (i = 0; i < CG_MEMO_WAYS; i++) {
        if (memcmp(b + i * CG_MEMO_KEY_LEN, key, CG_MEMO_KEY_LEN) == 0) {

            /* most recently used first */
            if (i > 0) {
                memcpy(tmp, b + i * CG_MEMO_KEY_LEN, CG_MEMO_KEY_LEN);
                memmove(b + CG_MEMO_KEY_LEN, b, i * CG_MEMO_KEY_LEN);
                memcpy(b, tmp, CG_MEMO_KEY_LEN);
            }

            t->stats.hits++;
            return 1;
        }
    }

    t->stats.misses++;

    return 0;
}


void
cg_memo_table_insert(void *table, const unsigned char *key)
{
    unsigned          i;
    unsigned char    *b, *last;
    cg_memo_table_t  *t;
    static const unsigned char  zero[CG_MEMO_KEY_LEN];

    t = table;
    if (t == NULL || t->magic != CG_MEMO_MAGIC) {
        return;
    }

    b = cg_memo_bucket(t, key);

    for (i = 0; i < CG_MEMO_WAYS; i++) {
        if (memcmp(b + i * CG_MEMO_KEY_LEN, key, CG_MEMO_KEY_LEN) == 0) {
            return;
        }
    }

    last = b + (CG_MEMO_WAYS - 1) * CG_MEMO_KEY_LEN;

    if (memcmp(last, zero, CG_MEMO_KEY_LEN) != 0) {
        t->stats.evictions++;
    }

    memmove(b + CG_MEMO_KEY_LEN, b, (CG_MEMO_WAYS - 1) * CG_MEMO_KEY_LEN);
    memcpy(b, key, CG_MEMO_KEY_LEN);

    t->stats.inserts++;
}


void
cg_memo_table_stats(const void *table, cg_memo_stats_t *stats)
{
    const cg_memo_table_t  *t;

    memset(stats, 0, sizeof(cg_memo_stats_t));

    t = table;
    if (t != NULL && t->magic == CG_MEMO_MAGIC) {
        *stats = t->stats;
    }
}
