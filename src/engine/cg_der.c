/*
 * A certificate's SHA-256 and its SubjectPublicKeyInfo's from one
 * encoding.  X509_digest() encodes the certificate into memory it
 * allocates and cg_spki_sha256() encodes the key again: a third of what
 * the two cost, on every new leaf.  Here the certificate is encoded once
 * and the SPKI is found in those bytes.  The SPKI is taken from them only
 * when it is DER throughout (minimal lengths, strings primitive, a BIT
 * STRING's unused bits zero, minimal INTEGERs, BOOLEANs 00 or ff), the
 * form OpenSSL's own encoding of the key writes: a certificate sent in
 * another form (OpenSSL keeps its to-be-signed bytes as sent) has its key
 * encoded by OpenSSL as before, so both digests are always the ones
 * X509_digest() and i2d_X509_PUBKEY() give.  t/unit/der.c and fuzz_chain
 * hold them to that.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <string.h>

#include <openssl/x509.h>

#include "cg_internal.h"
#include "cg_facts.h"


#define CG_DER_SEQUENCE    0x30
#define CG_DER_INTEGER     0x02
#define CG_DER_BIT_STRING  0x03
#define CG_DER_BOOLEAN     0x01
#define CG_DER_ENUMERATED  0x0a
#define CG_DER_SET         0x31
#define CG_DER_CONTEXT0    0xa0
#define CG_DER_DEPTH       8


/*
 * One TLV at *p, before end, in DER's form: a one-byte tag (a tag number
 * below 31) and a definite length in the fewest bytes.  *p moves to the
 * contents.  0 when it is not.
 */

static int
cg_der_tlv(const unsigned char **p, const unsigned char *end,
    unsigned *tag, size_t *len)
{
    size_t                n, k;
    const unsigned char  *s;

    s = *p;

    if (end - s < 2 || (s[0] & 0x1f) == 0x1f) {
        return 0;
    }

    *tag = s[0];
    n = s[1];
    s += 2;

    if (n & 0x80) {
        k = n & 0x7f;

        /* long form only past 127, without leading zero bytes, and no
         * longer than a certificate can be */
        if (k == 0 || k > 3 || (size_t) (end - s) < k || s[0] == 0) {
            return 0;
        }

        for (n = 0; k > 0; k--) {
            n = n << 8 | *s++;
        }

        if (n < 0x80) {
            return 0;
        }
    }

    if ((size_t) (end - s) < n) {
        return 0;
    }

    *p = s;
    *len = n;

    return 1;
}


/* every TLV of [p, end) in DER's form, constructed ones to their leaves */

static int
cg_der_strict(const unsigned char *p, const unsigned char *end, int depth)
{
    size_t    len;
    unsigned  tag;

    if (depth > CG_DER_DEPTH) {
        return 0;
    }

    while (p < end) {
        if (!cg_der_tlv(&p, end, &tag, &len)) {
            return 0;
        }

        if (tag & 0x20) {
            /* of the universal types only SEQUENCE and SET are
             * constructed in DER; a string in BER's constructed form is
             * one OpenSSL joins and writes back primitive */
            if (((tag & 0xc0) == 0 && tag != CG_DER_SEQUENCE
                 && tag != CG_DER_SET)
                || !cg_der_strict(p, p + len, depth + 1))
            {
                return 0;
            }

        } else if (tag == 0) {
            return 0;

        } else if (tag == CG_DER_BOOLEAN) {
            /* OpenSSL keeps a BOOLEAN as a truth value: DER's 00 or ff */
            if (len != 1 || (p[0] != 0 && p[0] != 0xff)) {
                return 0;
            }

        } else if (tag == CG_DER_BIT_STRING) {
            /* OpenSSL clears unused bits when it decodes, so only zero
             * ones come back as they were sent */
            if (len == 0 || p[0] > 7 || (len == 1 && p[0] != 0)
                || (p[len - 1] & ((1u << p[0]) - 1)) != 0)
            {
                return 0;
            }

        } else if (tag == CG_DER_INTEGER || tag == CG_DER_ENUMERATED) {
            if (len == 0
                || (len > 1 && ((p[0] == 0 && !(p[1] & 0x80))
                                || (p[0] == 0xff && (p[1] & 0x80)))))
            {
                return 0;
            }
        }

        p += len;
    }

    return 1;
}


/*
 * The SPKI of a Certificate's encoding: tbsCertificate's seventh field,
 * after the optional version, serialNumber, signature, issuer, validity
 * and subject (RFC 5280 4.1).
 */

int
cg_der_spki(const unsigned char *der, size_t n, const unsigned char **spki,
    size_t *spki_len)
{
    int                   i;
    size_t                len;
    unsigned              tag;
    const unsigned char  *p, *end, *s;
    static const unsigned char  fields[] = {
        CG_DER_INTEGER, CG_DER_SEQUENCE, CG_DER_SEQUENCE, CG_DER_SEQUENCE,
        CG_DER_SEQUENCE
    };

    p = der;
    end = der + n;

    /* Certificate, then tbsCertificate */
    for (i = 0; i < 2; i++) {
        if (!cg_der_tlv(&p, end, &tag, &len) || tag != CG_DER_SEQUENCE) {
            return 0;
        }

        end = p + len;
    }

    s = p;
    if (!cg_der_tlv(&s, end, &tag, &len)) {
        return 0;
    }

    if (tag == CG_DER_CONTEXT0) {
        p = s + len;
    }

    for (i = 0; i < (int) sizeof(fields); i++) {
        if (!cg_der_tlv(&p, end, &tag, &len) || tag != fields[i]) {
            return 0;
        }

        p += len;
    }

    s = p;
    if (!cg_der_tlv(&p, end, &tag, &len) || tag != CG_DER_SEQUENCE
        || !cg_der_strict(p, p + len, 1))
    {
        return 0;
    }

    *spki = s;
    *spki_len = (size_t) (p - s) + len;

    return 1;
}


/*
 * sha256 and spki, either may be NULL: which of them were computed
 * (CG_DIGEST_CERT, CG_DIGEST_SPKI), each as OpenSSL alone would compute
 * it or not at all.
 */

int
cg_cert_digests(X509 *x, unsigned char sha256[32], unsigned char spki[32])
{
    int                   n, done;
    size_t                len;
    unsigned int          mdlen;
    unsigned char        *p, buf[8192];
    const unsigned char  *s;

    done = 0;
    n = i2d_X509(x, NULL);
    p = buf;

    if (n > 0 && (size_t) n <= sizeof(buf) && i2d_X509(x, &p) == n) {
        if (sha256 != NULL && cg_sha256(buf, (size_t) n, sha256)) {
            done |= CG_DIGEST_CERT;
        }

        if (spki != NULL && cg_der_spki(buf, (size_t) n, &s, &len)) {
            return done | (cg_sha256(s, len, spki) ? CG_DIGEST_SPKI : 0);
        }

    } else if (sha256 != NULL) {
        /* larger than the buffer, or not encodable: X509_digest() */
        mdlen = 0;
        if (X509_digest(x, cg_md_sha256(), sha256, &mdlen) == 1
            && mdlen == 32)
        {
            done |= CG_DIGEST_CERT;
        }
    }

    if (spki != NULL && cg_spki_sha256(x, spki) == CG_OK) {
        done |= CG_DIGEST_SPKI;
    }

    return done;
}
