/*
 * Chains and trust anchors: certificate chains from PEM or DER bytes (the
 * CLI and the fuzzers), and the X509_STORE every evaluation verifies
 * against, loaded into memory once so that verification does no file I/O.
 */

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cg_facts.h"


static int cg_chain_parse_pem(const unsigned char *data, size_t len,
    cg_certs_t *certs, STACK_OF(X509) *chain, cg_error_t *err);
static int cg_chain_parse_der(const unsigned char *data, size_t len,
    cg_certs_t *certs, STACK_OF(X509) *chain, cg_error_t *err);
static const char *cg_openssl_reason(void);
static const char *cg_default_bundle(void);
static int cg_digest_cmp(const void *a, const void *b);
static int cg_trust_load_system(cg_trust_t *t, cg_error_t *err);
static size_t cg_digests_read(const char *file, unsigned char (**md)[32]);
static int cg_anchor_cmp(const void *a, const void *b);
static int cg_trust_anchors(cg_trust_t *t);
static int cg_name_ptr_cmp(const void *a, const void *b);
static int cg_trust_names(cg_trust_t *t, int all);
static int cg_trust_dup(const cg_trust_t *t, const X509_NAME *name);
static void cg_err_reset(void);


/* memmem() is a GNU extension; nginx compiles the engine without it. */

static int
cg_has_pem_marker(const unsigned char *data, size_t len)
{
    const unsigned char  *p, *end;

    if (len < 10) {
        return 0;
    }

    end = data + len - 10;

    for (p = data; p <= end; p++) {
        p = memchr(p, '-', end - p + 1);

        if (p == NULL) {
            return 0;
        }

        if (memcmp(p, "-----BEGIN", 10) == 0) {
            return 1;
        }
    }

    return 0;
}


int
cg_chain_parse(const unsigned char *data, size_t len,
    STACK_OF(X509) **chain, cg_error_t *err)
{
    return cg_chain_parse_cached(data, len, NULL, chain, err);
}


int
cg_chain_parse_cached(const unsigned char *data, size_t len,
    cg_certs_t *certs, STACK_OF(X509) **chain, cg_error_t *err)
{
    int              rc;
    STACK_OF(X509)  *sk;

    if (chain == NULL) {
        return cg_errorf(err, CG_ERR_ARG, NULL, 0, "no chain to fill");
    }

    *chain = NULL;

    if (data == NULL || len == 0) {
        return cg_errorf(err, CG_ERR_INPUT, NULL, 0,
                         "empty input: no certificate");
    }

    if (len > INT_MAX) {
        return cg_errorf(err, CG_ERR_INPUT, NULL, 0,
                         "input too large (%zu bytes)", len);
    }

    sk = sk_X509_new_null();
    if (sk == NULL) {
        return cg_errorf(err, CG_ERR_NOMEM, NULL, 0, "out of memory");
    }

    /* OpenSSL's error queue belongs to the caller (nginx reads it) */
    ERR_set_mark();

    /*
     * DER starts with a SEQUENCE in long length form (a certificate is
     * longer than 127 bytes), which no PEM text does; a subject may well
     * contain "-----BEGIN", so DER is recognised first.
     */
    if (!(len > 1 && data[0] == 0x30 && data[1] >= 0x81 && data[1] <= 0x84)
        && cg_has_pem_marker(data, len))
    {
        rc = cg_chain_parse_pem(data, len, certs, sk, err);

    } else {
        rc = cg_chain_parse_der(data, len, certs, sk, err);
    }

    ERR_pop_to_mark();

    if (rc != CG_OK) {
        sk_X509_pop_free(sk, X509_free);
        return rc;
    }

    *chain = sk;

    return CG_OK;
}


/*
 * Certificate blocks in order; other blocks (a key left in the file, a
 * CRL) and text between blocks (openssl s_client -showcerts) are skipped.
 */

static int
cg_chain_parse_pem(const unsigned char *data, size_t len,
    cg_certs_t *certs, STACK_OF(X509) *chain, cg_error_t *err)
{
    int                   nblock;
    long                  dlen;
    char                 *name, *header;
    unsigned char        *der;
    const unsigned char  *p;
    BIO                  *bio;
    X509                 *x;
    unsigned long         e;

    bio = BIO_new_mem_buf(data, (int) len);
    if (bio == NULL) {
        return cg_errorf(err, CG_ERR_NOMEM, NULL, 0, "out of memory");
    }

    for (nblock = 1; /* void */; nblock++) {
        name = NULL;
        header = NULL;
        der = NULL;
        dlen = 0;

        cg_err_reset();

        if (PEM_read_bio(bio, &name, &header, &der, &dlen) != 1) {
            e = ERR_peek_last_error();

            if (ERR_GET_LIB(e) == ERR_LIB_PEM
                && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
            {
                break;      /* no more blocks */
            }

            BIO_free(bio);
            return cg_errorf(err, CG_ERR_INPUT, NULL, 0,
                             "PEM block %d is malformed (%s)", nblock,
                             cg_openssl_reason());
        }

        if (strcmp(name, PEM_STRING_X509) != 0
            && strcmp(name, PEM_STRING_X509_OLD) != 0)
        {
            OPENSSL_free(name);
            OPENSSL_free(header);
            OPENSSL_free(der);
            continue;
        }

        p = der;
        x = cg_certs_d2i(certs, &p, dlen, chain);

        if (x == NULL || p != der + dlen) {
            X509_free(x);
            OPENSSL_free(name);
            OPENSSL_free(header);
            OPENSSL_free(der);
            BIO_free(bio);
            return cg_errorf(err, CG_ERR_INPUT, NULL, 0,
                             "PEM block %d is not a valid X.509 "
                             "certificate (%s)", nblock,
                             x ? "trailing bytes" : cg_openssl_reason());
        }

        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);

        if (!sk_X509_push(chain, x)) {
            X509_free(x);
            BIO_free(bio);
            return cg_errorf(err, CG_ERR_NOMEM, NULL, 0, "out of memory");
        }
    }

    BIO_free(bio);

    if (sk_X509_num(chain) == 0) {
        return cg_errorf(err, CG_ERR_INPUT, NULL, 0,
                         "no CERTIFICATE block in PEM input");
    }

    return CG_OK;
}


/* One DER certificate or several concatenated. */

static int
cg_chain_parse_der(const unsigned char *data, size_t len,
    cg_certs_t *certs, STACK_OF(X509) *chain, cg_error_t *err)
{
    size_t                off;
    const unsigned char  *p;
    X509                 *x;

    off = 0;

    while (off < len) {
        p = data + off;
        cg_err_reset();

        x = cg_certs_d2i(certs, &p, (long) (len - off), chain);
        if (x == NULL) {
            return cg_errorf(err, CG_ERR_INPUT, NULL, 0,
                             "not a PEM or DER certificate chain: "
                             "certificate %d at byte %zu is malformed (%s)",
                             sk_X509_num(chain) + 1, off,
                             cg_openssl_reason());
        }

        if (!sk_X509_push(chain, x)) {
            X509_free(x);
            return cg_errorf(err, CG_ERR_NOMEM, NULL, 0, "out of memory");
        }

        off = (size_t) (p - data);
    }

    return CG_OK;
}


/* Drops our errors and keeps the caller's: ERR_clear_error would not. */

static void
cg_err_reset(void)
{
    ERR_pop_to_mark();
    ERR_set_mark();
}


static const char *
cg_openssl_reason(void)
{
    const char  *r;

    r = ERR_reason_error_string(ERR_peek_last_error());

    return r ? r : "unknown error";
}


/*
 * The anchors: the system bundle and the caller's file together, so that
 * an internal CA added for some destinations takes nothing away from the
 * public ones; CG_TRUST_NO_SYSTEM leaves the file alone (a test suite's
 * roots, an air-gapped estate).  Whichever anchors are loaded, only the
 * system bundle's count as public roots.
 */
int
cg_trust_load(cg_trust_t **trust, const char *ca_file, unsigned flags,
    cg_error_t *err)
{
    int           rc;
    struct stat   st;
    cg_trust_t   *t;

    if (trust == NULL) {
        return cg_errorf(err, CG_ERR_ARG, NULL, 0, "no trust to fill");
    }

    *trust = NULL;

    if (flags & ~(unsigned) CG_TRUST_NO_SYSTEM) {
        return cg_errorf(err, CG_ERR_ARG, ca_file, 0,
                         "unknown trust flags 0x%x", flags);
    }

    if (ca_file == NULL && (flags & CG_TRUST_NO_SYSTEM)) {
        return cg_errorf(err, CG_ERR_ARG, NULL, 0,
                         "no trust anchors: the system bundle is left out "
                         "and no CA file is given");
    }

    t = calloc(1, sizeof(cg_trust_t));
    if (t == NULL) {
        return cg_errorf(err, CG_ERR_NOMEM, ca_file, 0, "out of memory");
    }

    t->store = X509_STORE_new();
    if (t->store == NULL) {
        free(t);
        return cg_errorf(err, CG_ERR_NOMEM, ca_file, 0, "out of memory");
    }

    ERR_set_mark();
    rc = CG_OK;

    if (ca_file) {
        if (stat(ca_file, &st) != 0) {
            rc = cg_errorf(err, CG_ERR_IO, ca_file, 0, "cannot open: %s",
                           strerror(errno));

        } else if (X509_STORE_load_file(t->store, ca_file) != 1) {
            rc = cg_errorf(err, CG_ERR_INPUT, ca_file, 0,
                           "no usable CA certificate (%s)",
                           cg_openssl_reason());
        }
    }

    if (rc == CG_OK && !(flags & CG_TRUST_NO_SYSTEM)) {
        rc = cg_trust_load_system(t, err);
    }

    if (rc == CG_OK && t->system_dir && ca_file) {
        /* the system anchors cannot be listed: every anchor but the
         * file's counts as theirs */
        t->nown = cg_digests_read(ca_file, &t->own_roots);

    } else if (rc == CG_OK && ca_file) {
        t->npublic = cg_digests_read(cg_default_bundle(), &t->public_roots);

    } else if (rc == CG_OK) {
        /* the system bundle alone: every anchor is one of it */
        t->all_public = 1;
    }

    if (rc == CG_OK && cg_trust_anchors(t) != CG_OK) {
        rc = cg_errorf(err, CG_ERR_NOMEM, ca_file, 0, "out of memory");
    }

    cg_err_reset();
    ERR_pop_to_mark();

    if (rc != CG_OK) {
        cg_trust_free(t);
        return rc;
    }

    *trust = t;

    return CG_OK;
}


/*
 * The system bundle as one file, read into memory now: the hashed
 * directory would mean file lookups during every verification.
 * SSL_CERT_FILE overrides it as it does for OpenSSL itself.  Without the
 * file, OpenSSL's default paths (looked up during verification).
 */
static int
cg_trust_load_system(cg_trust_t *t, cg_error_t *err)
{
    const char   *file;
    struct stat   st;

    file = cg_default_bundle();

    if (stat(file, &st) == 0 && X509_STORE_load_file(t->store, file) == 1) {
        return CG_OK;
    }

    cg_err_reset();

    if (X509_STORE_set_default_paths(t->store) != 1) {
        return cg_errorf(err, CG_ERR_IO, file, 0,
                         "cannot load the default CA bundle (%s)",
                         cg_openssl_reason());
    }

    t->system_dir = 1;

    return CG_OK;
}


static const char *
cg_default_bundle(void)
{
    const char  *file;

    file = getenv(X509_get_default_cert_file_env());
    if (file == NULL || file[0] == '\0') {
        file = X509_get_default_cert_file();
    }

    return file;
}


static int
cg_digest_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}


/* The SHA-256 of every certificate of a PEM file, sorted, in *md; the
 * count (0 for a file that cannot be read: nothing matches then). */
static size_t
cg_digests_read(const char *file, unsigned char (**md)[32])
{
    BIO            *bio;
    X509           *x;
    size_t          n, cap;
    unsigned int    len;
    unsigned char (*d)[32], (*grown)[32];

    *md = NULL;

    bio = BIO_new_file(file, "r");
    if (bio == NULL) {
        return 0;
    }

    d = NULL;
    n = 0;
    cap = 0;

    /* _AUX: "TRUSTED CERTIFICATE" blocks too, as X509_STORE_load_file */
    while ((x = PEM_read_bio_X509_AUX(bio, NULL, NULL, NULL)) != NULL) {
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            grown = realloc(d, cap * sizeof(*d));
            if (grown == NULL) {
                X509_free(x);
                break;
            }
            d = grown;
        }

        if (X509_digest(x, cg_md_sha256(), d[n], &len) == 1 && len == 32) {
            n++;
        }

        X509_free(x);
    }

    BIO_free(bio);

    if (n) {
        qsort(d, n, sizeof(*d), cg_digest_cmp);
    }

    *md = d;

    return n;
}


/*
 * The anchors' digests, computed once: every evaluation asks whether its
 * anchor is a public root, and the memo keys its signature by the
 * anchor's digest.  An object of the store stays there until the store is
 * freed, so its address names it; one added later (a lookup in the hashed
 * directory) is digested when asked.
 */
static int
cg_trust_anchors(cg_trust_t *t)
{
    int                    i, n;
    X509                  *x;
    size_t                 k, ncerts;
    unsigned int           len;
    STACK_OF(X509_OBJECT)  *objs;

    objs = X509_STORE_get0_objects(t->store);
    n = objs ? sk_X509_OBJECT_num(objs) : 0;

    if (n <= 0) {
        return CG_OK;
    }

    t->anchors = calloc((size_t) n, sizeof(cg_anchor_t));
    if (t->anchors == NULL) {
        return CG_ERR_NOMEM;
    }

    k = 0;
    ncerts = 0;

    for (i = 0; i < n; i++) {
        x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));
        ncerts += x != NULL;

        if (x == NULL
            || X509_digest(x, cg_md_sha256(), t->anchors[k].sha256, &len) != 1
            || len != 32)
        {
            continue;
        }

        if (!X509_up_ref(x)) {
            t->nanchors = k;        /* for cg_trust_free() */
            return CG_ERR_NOMEM;
        }

        t->anchors[k++].x = x;
    }

    t->nanchors = k;

    qsort(t->anchors, k, sizeof(cg_anchor_t), cg_anchor_cmp);

    /* every certificate of the store listed: none failed its digest */
    return cg_trust_names(t, k == ncerts);
}


static int
cg_name_ptr_cmp(const void *a, const void *b)
{
    return X509_NAME_cmp(*(const X509_NAME * const *) a,
                         *(const X509_NAME * const *) b);
}


/*
 * The subjects anchors share, and whether the store's own certificates
 * can lead a search to one: an anchor not validly self-signed (where
 * OpenSSL's chain building ends) whose issuer is such a name.  Only with
 * every certificate of the store listed here (all, none skipped, none
 * looked up in a directory during verification).
 */
static int
cg_trust_names(cg_trust_t *t, int all)
{
    size_t            i, n;
    uint32_t          fl;
    const X509_NAME  **names;

    t->names_listed = 0;

    if (!all || t->system_dir) {
        return CG_OK;
    }

    n = t->nanchors;
    names = calloc(n ? n : 1, sizeof(X509_NAME *));
    if (names == NULL) {
        return CG_ERR_NOMEM;
    }

    for (i = 0; i < n; i++) {
        names[i] = X509_get_subject_name(t->anchors[i].x);
    }

    qsort(names, n, sizeof(X509_NAME *), cg_name_ptr_cmp);

    t->dup_names = calloc(n ? n : 1, sizeof(X509_NAME *));
    if (t->dup_names == NULL) {
        free(names);
        return CG_ERR_NOMEM;
    }

    t->ndup = 0;

    for (i = 1; i < n; i++) {
        if (X509_NAME_cmp(names[i], names[i - 1]) == 0
            && (t->ndup == 0
                || X509_NAME_cmp(names[i], t->dup_names[t->ndup - 1]) != 0))
        {
            t->dup_names[t->ndup++] = names[i];
        }
    }

    free(names);

    for (i = 0; i < n; i++) {
        fl = X509_get_extension_flags(t->anchors[i].x);

        if (((fl & EXFLAG_SS) == 0 || (fl & EXFLAG_INVALID) != 0)
            && cg_trust_dup(t, X509_get_issuer_name(t->anchors[i].x)))
        {
            return CG_OK;
        }
    }

    t->names_listed = 1;

    return CG_OK;
}


static int
cg_trust_dup(const cg_trust_t *t, const X509_NAME *name)
{
    size_t  i;

    for (i = 0; i < t->ndup; i++) {
        if (X509_NAME_cmp(name, t->dup_names[i]) == 0) {
            return 1;
        }
    }

    return 0;
}


int
cg_trust_name_shared(const cg_trust_t *t, const X509_NAME *issuer)
{
    return !t->names_listed || cg_trust_dup(t, issuer);
}


static int
cg_anchor_cmp(const void *a, const void *b)
{
    uintptr_t  x, y;

    x = (uintptr_t) ((const cg_anchor_t *) a)->x;
    y = (uintptr_t) ((const cg_anchor_t *) b)->x;

    return x < y ? -1 : x > y;
}


int
cg_trust_digest(const cg_trust_t *t, X509 *x, unsigned char *md)
{
    cg_anchor_t         key;
    const cg_anchor_t  *a;

    if (t == NULL || t->nanchors == 0) {
        return 0;
    }

    key.x = x;
    a = bsearch(&key, t->anchors, t->nanchors, sizeof(cg_anchor_t),
                cg_anchor_cmp);

    if (a == NULL) {
        return 0;
    }

    memcpy(md, a->sha256, 32);

    return 1;
}


int
cg_trust_is_public(const cg_trust_t *t, X509 *x)
{
    unsigned int   len;
    unsigned char  md[32];

    if (t->all_public) {
        return 1;
    }

    if (!cg_trust_digest(t, x, md)
        && (X509_digest(x, cg_md_sha256(), md, &len) != 1 || len != 32))
    {
        return 0;
    }

    return cg_trust_is_public_md(t, md);
}


int
cg_trust_is_public_md(const cg_trust_t *t, const unsigned char *md)
{
    if (t->all_public) {
        return 1;
    }

    if (t->system_dir) {
        return t->nown == 0
               || bsearch(md, t->own_roots, t->nown, 32, cg_digest_cmp)
                  == NULL;
    }

    return t->npublic
           && bsearch(md, t->public_roots, t->npublic, 32, cg_digest_cmp)
              != NULL;
}


void
cg_trust_free(cg_trust_t *trust)
{
    size_t  i;

    if (trust == NULL) {
        return;
    }

    for (i = 0; i < trust->nanchors; i++) {
        X509_free(trust->anchors[i].x);
    }

    free(trust->anchors);
    free(trust->dup_names);
    X509_STORE_free(trust->store);
    free(trust->public_roots);
    free(trust->own_roots);
    free(trust);
}
