/*
 * The intermediates pool: CA certificates that complete a chain whose
 * server leaves its intermediate out, as browsers complete it from the
 * intermediates they preload or fetch.  Pool certificates join the
 * untrusted certificates of a verification, never the anchors: a chain
 * they complete still ends in an anchor of the trust store.
 *
 * And what mimicked_ca asks of a CA name: do the certificates of that
 * name the trust store and the pool know carry the key the chain uses?
 * A name is text anyone can copy; a key is not.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cg_facts.h"


static int cg_pool_read(cg_intermediates_t *pool, const char *file,
    size_t *cap, cg_error_t *err);
static int cg_pool_cmp(const void *a, const void *b);
static int cg_pool_same_key(X509 *x, X509 *k, int issuer);
static size_t cg_pool_find(const cg_intermediates_t *pool,
    const X509_NAME *name, size_t *count);
static void cg_pool_warn(cg_intermediates_t *pool, const char *file,
    int block, X509 *x, const char *why);


int
cg_intermediates_load(cg_intermediates_t **pool, const char *const *files,
    unsigned nfiles, cg_error_t *err)
{
    int                  rc;
    size_t               cap;
    unsigned             i;
    cg_intermediates_t  *p;

    if (pool == NULL) {
        return cg_errorf(err, CG_ERR_ARG, NULL, 0, "no pool to fill");
    }

    *pool = NULL;

    if (files == NULL || nfiles == 0) {
        return cg_errorf(err, CG_ERR_ARG, NULL, 0,
                         "no intermediates file given");
    }

    p = calloc(1, sizeof(cg_intermediates_t));
    if (p == NULL) {
        return cg_errorf(err, CG_ERR_NOMEM, files[0], 0, "out of memory");
    }

    cap = 0;
    rc = CG_OK;

    /* OpenSSL's error queue belongs to the caller (nginx reads it) */
    ERR_set_mark();

    for (i = 0; i < nfiles && rc == CG_OK; i++) {
        if (files[i] == NULL || files[i][0] == '\0') {
            rc = cg_errorf(err, CG_ERR_ARG, NULL, 0,
                           "empty intermediates file name");
            break;
        }

        rc = cg_pool_read(p, files[i], &cap, err);
    }

    ERR_pop_to_mark();

    if (rc != CG_OK) {
        cg_intermediates_free(p);
        return rc;
    }

    if (p->n > 1) {
        qsort(p->certs, p->n, sizeof(X509 *), cg_pool_cmp);
    }

    *pool = p;

    return CG_OK;
}


/*
 * One PEM file: every CERTIFICATE block (text between blocks, as in a
 * CCADB export, is skipped).  A certificate that is not a CA could only
 * pose as an issuer: it is left out, with a warning.
 */

static int
cg_pool_read(cg_intermediates_t *pool, const char *file, size_t *cap,
    cg_error_t *err)
{
    int           block, kept;
    BIO          *bio;
    X509         *x, **grown;
    struct stat   st;

    if (stat(file, &st) != 0) {
        return cg_errorf(err, CG_ERR_IO, file, 0, "cannot open: %s",
                         strerror(errno));
    }

    bio = BIO_new_file(file, "r");
    if (bio == NULL) {
        return cg_errorf(err, CG_ERR_IO, file, 0, "cannot open: %s",
                         strerror(errno));
    }

    kept = 0;

    for (block = 1; /* void */; block++) {
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

        if (x == NULL) {
            unsigned long  e = ERR_peek_last_error();

            if (ERR_GET_LIB(e) == ERR_LIB_PEM
                && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
            {
                ERR_pop_to_mark();
                ERR_set_mark();
                break;
            }

            BIO_free(bio);
            return cg_errorf(err, CG_ERR_INPUT, file, 0,
                             "certificate %d is malformed (%s)", block,
                             ERR_reason_error_string(e)
                             ? ERR_reason_error_string(e) : "unknown error");
        }

        /* computes the extension cache now, not in a worker's handshake */
        if (X509_check_ca(x) == 0) {
            cg_pool_warn(pool, file, block, x,
                         "is not a CA certificate: skipped");
            X509_free(x);
            continue;
        }

        if (pool->n == *cap) {
            *cap = *cap ? *cap * 2 : 64;
            grown = realloc(pool->certs, *cap * sizeof(X509 *));
            if (grown == NULL) {
                X509_free(x);
                BIO_free(bio);
                return cg_errorf(err, CG_ERR_NOMEM, file, 0,
                                 "out of memory");
            }
            pool->certs = grown;
        }

        pool->certs[pool->n++] = x;
        kept++;
    }

    BIO_free(bio);

    if (kept == 0) {
        return cg_errorf(err, CG_ERR_INPUT, file, 0,
                         "no CA certificate in the file");
    }

    return CG_OK;
}


static void
cg_pool_warn(cg_intermediates_t *pool, const char *file, int block, X509 *x,
    const char *why)
{
    char        cn[64];
    cg_error_t  *w;

    if (pool->nwarnings == CG_POOL_WARN_MAX) {
        return;
    }

    w = &pool->warnings[pool->nwarnings++];
    cn[0] = '\0';

    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName,
                                  cn, sizeof(cn)) < 0)
    {
        cn[0] = '\0';
    }

    cg_errorf(w, CG_OK, file, 0, "certificate %d%s%.60s%s %s", block,
              cn[0] ? " (CN=" : "", cn, cn[0] ? ")" : "", why);
}


int
cg_intermediates_warning(const cg_intermediates_t *pool, unsigned index,
    cg_error_t *warning)
{
    if (pool == NULL || warning == NULL || index >= pool->nwarnings) {
        return CG_ERR_ARG;
    }

    *warning = pool->warnings[index];

    return CG_OK;
}


unsigned
cg_intermediates_count(const cg_intermediates_t *pool)
{
    return pool ? (unsigned) pool->n : 0;
}


void
cg_intermediates_free(cg_intermediates_t *pool)
{
    size_t  i;

    if (pool == NULL) {
        return;
    }

    for (i = 0; i < pool->n; i++) {
        X509_free(pool->certs[i]);
    }

    free(pool->certs);
    free(pool);
}


static int
cg_pool_cmp(const void *a, const void *b)
{
    X509 *const  *x = a, *const *y = b;

    return X509_NAME_cmp(X509_get_subject_name(*x),
                         X509_get_subject_name(*y));
}


/* The first certificate whose subject is name, and how many follow. */

static size_t
cg_pool_find(const cg_intermediates_t *pool, const X509_NAME *name,
    size_t *count)
{
    int     c;
    size_t  lo, hi, mid, first;

    *count = 0;
    lo = 0;
    hi = pool->n;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = X509_NAME_cmp(X509_get_subject_name(pool->certs[mid]), name);

        if (c < 0) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    first = lo;

    while (lo < pool->n
           && X509_NAME_cmp(X509_get_subject_name(pool->certs[lo]), name)
              == 0)
    {
        lo++;
    }

    *count = lo - first;

    return first;
}


static int
cg_pool_has(STACK_OF(X509) *sk, X509 *x)
{
    int  i;

    for (i = 0; i < sk_X509_num(sk); i++) {
        if (sk_X509_value(sk, i) == x
            || X509_cmp(sk_X509_value(sk, i), x) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * Issuers by name only: OpenSSL's path building picks among them by key
 * identifiers and signatures.  The certificates the server sent come
 * first in untrusted, so a sent intermediate wins over a pool copy.
 */

int
cg_pool_complete(const cg_intermediates_t *pool, X509 *leaf,
    STACK_OF(X509) *untrusted)
{
    int        i, n;
    X509      *x, *cand;
    size_t     first, count, k;
    unsigned   added;

    if (pool == NULL || pool->n == 0) {
        return 0;
    }

    added = 0;

    /* i -1 is the leaf; untrusted grows as issuers are added */
    for (i = -1; i < sk_X509_num(untrusted); i++) {
        x = i < 0 ? leaf : sk_X509_value(untrusted, i);

        if (X509_NAME_cmp(X509_get_subject_name(x),
                          X509_get_issuer_name(x)) == 0)
        {
            continue;       /* self-issued: its issuer is itself */
        }

        first = cg_pool_find(pool, X509_get_issuer_name(x), &count);

        for (k = first; k < first + count; k++) {
            cand = pool->certs[k];

            if (added == CG_POOL_ADD_MAX) {
                return 0;
            }

            if (cand == x || cg_pool_has(untrusted, cand)) {
                continue;
            }

            n = sk_X509_push(untrusted, cand);
            if (n <= 0) {
                return -1;
            }

            added++;
        }
    }

    return 0;
}


/* Whether k's key signed x (issuer) or is x's own. */

static int
cg_pool_same_key(X509 *x, X509 *k, int issuer)
{
    EVP_PKEY  *key;

    key = X509_get0_pubkey(k);

    if (key == NULL) {
        return 0;
    }

    if (issuer) {
        return X509_verify(x, key) == 1;
    }

    return X509_get0_pubkey(x) != NULL
           && EVP_PKEY_eq(X509_get0_pubkey(x), key) == 1;
}


/* The trust store's certificates of that subject, and the pool's. */

int
cg_facts_known_key(cg_facts_t *f, X509 *x, int issuer)
{
    int              i, n, known, match;
    size_t           first, count, j;
    X509_NAME       *name;
    X509_STORE_CTX  *ctx;
    STACK_OF(X509)  *certs;

    name = issuer ? X509_get_issuer_name(x) : X509_get_subject_name(x);
    known = 0;
    match = 0;
    certs = NULL;

    /* a signature that does not verify leaves errors: not the caller's */
    ERR_set_mark();

    if (f->in->trust != NULL) {
        ctx = X509_STORE_CTX_new();

        if (ctx != NULL
            && X509_STORE_CTX_init(ctx, f->in->trust->store, x, NULL) == 1)
        {
            certs = X509_STORE_CTX_get1_certs(ctx, name);
        }

        X509_STORE_CTX_free(ctx);
    }

    n = certs ? sk_X509_num(certs) : 0;

    for (i = 0; i < n && !match; i++) {
        known = 1;
        match = cg_pool_same_key(x, sk_X509_value(certs, i), issuer);
    }

    sk_X509_pop_free(certs, X509_free);

    if (!match && f->in->intermediates != NULL) {
        first = cg_pool_find(f->in->intermediates, name, &count);

        for (j = first; j < first + count && !match; j++) {
            known = 1;
            match = cg_pool_same_key(x, f->in->intermediates->certs[j],
                                     issuer);
        }
    }

    ERR_pop_to_mark();

    return match ? 1 : known ? 0 : -1;
}
