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


static int cg_facts_cert(cg_cert_facts_t *c, X509 *x, unsigned depth,
    BIO *bio);
static char *cg_facts_dn(const X509_NAME *name, BIO *bio, size_t *len);
static int cg_facts_time(const ASN1_TIME *t, int64_t *out);
static void cg_facts_serial(X509 *x, char *buf, size_t size);
static void cg_facts_san(cg_facts_t *f);
static void cg_facts_verify(cg_facts_t *f);
static int cg_facts_verify_cb(int ok, X509_STORE_CTX *ctx);


int
cg_facts_init(cg_facts_t *f, const cg_input_t *in)
{
    int              n, i;
    unsigned         k;
    X509            *x;
    BIO             *bio;
    STACK_OF(X509)  *chain;

    memset(f, 0, sizeof(cg_facts_t));

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

    f->certs = calloc((size_t) n + 1, sizeof(cg_cert_facts_t));
    if (f->certs == NULL) {
        return CG_ERR_NOMEM;
    }

    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return CG_ERR_NOMEM;
    }

    if (cg_facts_cert(&f->certs[0], in->leaf, 0, bio) != CG_OK) {
        BIO_free(bio);
        return CG_ERR_NOMEM;
    }

    f->ncerts = 1;

    for (i = 0; i < n; i++) {
        x = sk_X509_value(chain, i);

        /* the chain "may hold the leaf": it is then its first element */
        if (x == NULL
            || (i == 0 && (x == in->leaf || X509_cmp(x, in->leaf) == 0)))
        {
            continue;
        }

        k = f->ncerts;

        if (cg_facts_cert(&f->certs[k], x, k, bio) != CG_OK) {
            BIO_free(bio);
            return CG_ERR_NOMEM;
        }

        f->ncerts++;
    }

    BIO_free(bio);

    cg_facts_serial(in->leaf, f->serial, sizeof(f->serial));
    cg_facts_san(f);

    f->has_sct = X509_get_ext_by_NID(in->leaf, NID_ct_precert_scts, -1) >= 0;

    cg_facts_verify(f);

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
        }

        free(f->certs);
        f->certs = NULL;
    }

    GENERAL_NAMES_free(f->san);
    f->san = NULL;

    cg_facts_memory_free(f);
}


static int
cg_facts_cert(cg_cert_facts_t *c, X509 *x, unsigned depth, BIO *bio)
{
    unsigned int  mdlen;
    EVP_PKEY     *pkey;

    c->x = x;

    c->subject = cg_facts_dn(X509_get_subject_name(x), bio, &c->subject_len);
    c->issuer = cg_facts_dn(X509_get_issuer_name(x), bio, &c->issuer_len);

    if (c->subject == NULL || c->issuer == NULL) {
        return CG_ERR_NOMEM;
    }

    mdlen = 0;
    if (X509_digest(x, EVP_sha1(), c->sha1, &mdlen) == 1 && mdlen == 20) {
        mdlen = 0;
        if (X509_digest(x, EVP_sha256(), c->sha256, &mdlen) == 1
            && mdlen == 32)
        {
            c->digests = 1;
        }
    }

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


/*
 * RFC 2253 with UTF-8 kept as is (no \XX escapes of high bytes); a name
 * whose strings do not convert to UTF-8 is printed again fully escaped.
 */

static char *
cg_facts_dn(const X509_NAME *name, BIO *bio, size_t *len)
{
    char  *data, *s;
    long   n;

    (void) BIO_reset(bio);

    if (name != NULL
        && X509_NAME_print_ex(bio, name, 0,
                              XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB)
           < 0)
    {
        (void) BIO_reset(bio);
        if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0) {
            (void) BIO_reset(bio);
        }
    }

    n = BIO_get_mem_data(bio, &data);
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
    time_t     v;

    if (t == NULL) {
        return 0;
    }

    memset(&tm, 0, sizeof(struct tm));

    if (ASN1_TIME_to_tm(t, &tm) != 1) {
        return 0;
    }

    v = timegm(&tm);
    if (v == (time_t) -1 && tm.tm_year != 69) {
        return 0;
    }

    *out = (int64_t) v;

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


static void
cg_facts_san(cg_facts_t *f)
{
    int           i, n;
    GENERAL_NAME *gn;

    f->san = X509_get_ext_d2i(f->in->leaf, NID_subject_alt_name, NULL, NULL);
    if (f->san == NULL) {
        return;
    }

    n = sk_GENERAL_NAME_num(f->san);

    for (i = 0; i < n; i++) {
        gn = sk_GENERAL_NAME_value(f->san, i);
        if (gn && (gn->type == GEN_DNS || gn->type == GEN_IPADD)) {
            f->san_dns_ip = 1;
            return;
        }
    }
}


static int
cg_facts_time_error(int code)
{
    return code == X509_V_ERR_CERT_NOT_YET_VALID
           || code == X509_V_ERR_CERT_HAS_EXPIRED
           || code == X509_V_ERR_CRL_NOT_YET_VALID
           || code == X509_V_ERR_CRL_HAS_EXPIRED;
}


static void
cg_facts_verify_record(cg_facts_t *f, int depth, int code)
{
    if (f->nerrors < CG_VERIFY_ERR_MAX) {
        f->errors[f->nerrors].depth = depth;
        f->errors[f->nerrors].code = code;
    }

    f->nerrors++;

    if (!cg_facts_time_error(code)) {
        if (f->npath_errors == 0) {
            f->first_path_error.depth = depth;
            f->first_path_error.code = code;
        }

        f->npath_errors++;
    }
}


/* Records every error and goes on, so that one verification tells all
 * that is wrong with the chain, not only the first thing. */

static int
cg_facts_verify_cb(int ok, X509_STORE_CTX *ctx)
{
    cg_facts_t  *f;

    if (ok) {
        return 1;
    }

    f = X509_STORE_CTX_get_app_data(ctx);
    if (f) {
        cg_facts_verify_record(f, X509_STORE_CTX_get_error_depth(ctx),
                               X509_STORE_CTX_get_error(ctx));
    }

    return 1;
}


static void
cg_facts_verify(cg_facts_t *f)
{
    int                  rc, code, n;
    unsigned             i;
    X509_STORE          *store;
    X509_STORE_CTX      *ctx;
    X509_VERIFY_PARAM   *param;
    STACK_OF(X509)      *untrusted, *chain;

    if (f->in->trust == NULL) {
        /* no anchors: untrusted_chain says so itself */
        f->npath_errors = 1;
        f->first_path_error.code = X509_V_ERR_UNSPECIFIED;
        f->trusted = 0;
        return;
    }

    store = f->in->trust->store;
    untrusted = NULL;
    ctx = NULL;

    if (f->ncerts > 1) {
        untrusted = sk_X509_new_reserve(NULL, (int) f->ncerts - 1);
        if (untrusted == NULL) {
            goto failed;
        }

        for (i = 1; i < f->ncerts; i++) {
            (void) sk_X509_push(untrusted, f->certs[i].x);
        }
    }

    ctx = X509_STORE_CTX_new();
    if (ctx == NULL) {
        goto failed;
    }

    if (X509_STORE_CTX_init(ctx, store, f->in->leaf, untrusted) != 1) {
        goto failed;
    }

    (void) X509_STORE_CTX_set_default(ctx, "ssl_server");

    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, (time_t) f->now);

    X509_STORE_CTX_set_verify_cb(ctx, cg_facts_verify_cb);
    (void) X509_STORE_CTX_set_app_data(ctx, f);

    rc = X509_verify_cert(ctx);

    if (rc != 1 && f->nerrors == 0) {
        /* failed without telling the callback: an internal error */
        code = X509_STORE_CTX_get_error(ctx);
        cg_facts_verify_record(f, X509_STORE_CTX_get_error_depth(ctx),
                               code != X509_V_OK ? code
                                                 : X509_V_ERR_UNSPECIFIED);
    }

    f->trusted = f->npath_errors == 0;

    if (f->trusted) {
        chain = X509_STORE_CTX_get0_chain(ctx);
        n = chain ? sk_X509_num(chain) : 0;

        f->public_root = n > 0
            && cg_trust_is_public(f->in->trust, sk_X509_value(chain, n - 1));
    }

    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);

    return;

failed:

    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);

    cg_facts_verify_record(f, 0, X509_V_ERR_OUT_OF_MEM);
    f->trusted = 0;
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
