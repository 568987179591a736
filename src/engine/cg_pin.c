/*
 * Pins: the SHA-256 of a CA certificate's key (SubjectPublicKeyInfo) and
 * of its DER; the certificates that signed a leaf, for the issuer_spki and
 * issuer_fingerprint exemptions; and the policy lines that pin a CA.
 *
 * An issuer DN is text anyone can copy into a CA of their own; a key is
 * not.  So a pin counts only for a certificate whose key verifies the
 * leaf's signature: a server that sends the real CA's certificate beside a
 * leaf it signed itself does not match.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "cg_facts.h"


static void cg_pin_add(cg_facts_t *f, X509 *cand, X509 *leaf);
static void cg_pin_hex(const unsigned char *md, char *hex);


int
cg_spki_sha256(X509 *x, unsigned char md[32])
{
    int             n;
    unsigned char  *der;

    der = NULL;
    n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);

    if (n <= 0 || der == NULL) {
        return CG_ERR_INPUT;
    }

    n = cg_sha256(der, (size_t) n, md);
    OPENSSL_free(der);

    return n ? CG_OK : CG_ERR_INPUT;
}


/*
 * Candidates are the certificates sent (the leaf too: a self-signed leaf
 * is its own issuer) and the anchors of the trust store named as the
 * leaf's issuer; each counts when its subject is that name and its key
 * verifies the leaf's signature.  Found once per evaluation, and only
 * when an exemption asks.
 */
const cg_issuer_pin_t *
cg_facts_issuers(cg_facts_t *f, unsigned *n)
{
    int              i, k;
    unsigned         j;
    X509            *leaf;
    X509_STORE_CTX  *ctx;
    STACK_OF(X509)  *anchors;

    if (!f->issuers_done) {
        f->issuers_done = 1;
        leaf = f->in->leaf;

        for (j = 0; j < f->ncerts; j++) {
            cg_pin_add(f, f->certs[j].x, leaf);
        }

        if (f->in->trust != NULL) {
            ctx = X509_STORE_CTX_new();

            if (ctx != NULL
                && X509_STORE_CTX_init(ctx, f->in->trust->store, leaf, NULL)
                   == 1)
            {
                anchors = X509_STORE_CTX_get1_certs(ctx,
                                                X509_get_issuer_name(leaf));
                k = anchors ? sk_X509_num(anchors) : 0;

                for (i = 0; i < k; i++) {
                    cg_pin_add(f, sk_X509_value(anchors, i), leaf);
                }

                sk_X509_pop_free(anchors, X509_free);
            }

            X509_STORE_CTX_free(ctx);
        }
    }

    *n = f->nissuers;

    return f->issuers;
}


static void
cg_pin_add(cg_facts_t *f, X509 *cand, X509 *leaf)
{
    unsigned          i;
    EVP_PKEY         *key;
    unsigned int      len;
    cg_issuer_pin_t   pin;

    if (cand == NULL || f->nissuers == CG_ISSUERS_MAX
        || X509_NAME_cmp(X509_get_subject_name(cand),
                         X509_get_issuer_name(leaf)) != 0)
    {
        return;
    }

    key = X509_get0_pubkey(cand);

    if (key == NULL || X509_verify(leaf, key) != 1
        || cg_spki_sha256(cand, pin.spki) != CG_OK
        || X509_digest(cand, cg_md_sha256(), pin.sha256, &len) != 1
        || len != 32)
    {
        return;
    }

    /* an anchor that was sent as well is one candidate */
    for (i = 0; i < f->nissuers; i++) {
        if (memcmp(f->issuers[i].sha256, pin.sha256, 32) == 0) {
            return;
        }
    }

    f->issuers[f->nissuers++] = pin;
}


static void
cg_pin_hex(const unsigned char *md, char *hex)
{
    unsigned              i;
    static const char     digits[] = "0123456789abcdef";

    for (i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0xf];
    }

    hex[64] = '\0';
}


size_t
cg_format_pin(X509 *ca, int kind, char *buf, size_t len)
{
    int             n;
    char            hex[65], subject[CG_DN_MAX];
    BIO            *bio;
    char           *dn;
    size_t          dn_len;
    unsigned int    mdlen;
    unsigned char   md[32];

    if (ca == NULL || (kind != CG_PIN_SPKI && kind != CG_PIN_CERT)) {
        return 0;
    }

    if (kind == CG_PIN_SPKI) {
        if (cg_spki_sha256(ca, md) != CG_OK) {
            return 0;
        }

    } else if (X509_digest(ca, cg_md_sha256(), md, &mdlen) != 1
               || mdlen != 32)
    {
        return 0;
    }

    cg_pin_hex(md, hex);

    subject[0] = '\0';
    bio = NULL;
    dn = cg_facts_dn(X509_get_subject_name(ca), &bio, &dn_len);

    if (dn != NULL) {
        /* a comment ends at the line end: nothing in it may end it */
        cg_utf8_copy(subject, sizeof(subject), dn, dn_len);
        free(dn);
    }

    BIO_free(bio);

    n = snprintf(buf, len, "%s %s;%s%s",
                 kind == CG_PIN_SPKI ? "issuer_spki" : "issuer_fingerprint",
                 hex, subject[0] ? "  # " : "", subject);

    return n > 0 ? (size_t) n : 0;
}
