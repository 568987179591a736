/*
 * The certificates a run has parsed, by their DER.  Under OpenSSL 3.0 a
 * d2i_X509() of an ECDSA certificate costs about 1.4 M instructions, four
 * fifths of them setting up the decoder of its key, and a run over a
 * directory of chains decodes the same intermediates and roots in every
 * file.  A certificate found here is the object decoded from the same
 * bytes before, which is what decoding them again would give.
 *
 * Two ways a bucket, by a hash of the DER: a chain's two certificates
 * that hash alike both stay.  A miss takes the way with fewer hits (the
 * one used less recently on a tie), and when that way has hits it only
 * counts one down: a shared intermediate keeps its place against the
 * leaves that pass through it once.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "cg_facts.h"


#define CG_CERTS_BUCKETS    128
#define CG_CERTS_WAYS       2
#define CG_CERTS_HITS_MAX   16


typedef struct {
    X509           *x;
    unsigned char  *der;
    size_t          len;
    unsigned        hits;
} cg_certs_slot_t;


typedef struct {
    cg_certs_slot_t  way[CG_CERTS_WAYS];
    unsigned         last;              /* the way used last */
} cg_certs_bucket_t;


struct cg_certs_s {
    cg_certs_bucket_t  bucket[CG_CERTS_BUCKETS];
};


int
cg_certs_new(cg_certs_t **certs)
{
    if (certs == NULL) {
        return CG_ERR_ARG;
    }

    *certs = calloc(1, sizeof(cg_certs_t));

    return *certs ? CG_OK : CG_ERR_NOMEM;
}


void
cg_certs_free(cg_certs_t *certs)
{
    unsigned          i, w;
    cg_certs_slot_t  *s;

    if (certs == NULL) {
        return;
    }

    for (i = 0; i < CG_CERTS_BUCKETS; i++) {
        for (w = 0; w < CG_CERTS_WAYS; w++) {
            s = &certs->bucket[i].way[w];
            X509_free(s->x);
            free(s->der);
        }
    }

    free(certs);
}


/* The length of the DER SEQUENCE at p, header included, if it has a
 * definite one that fits in len; else 0. */

static size_t
cg_certs_tlv_len(const unsigned char *p, size_t len)
{
    size_t    n, body, i;

    if (len < 2 || p[0] != 0x30) {
        return 0;
    }

    if (p[1] < 0x80) {
        body = p[1];
        n = 2;

    } else if (p[1] >= 0x81 && p[1] <= 0x84) {
        n = 2 + (size_t) (p[1] & 0x7f);
        if (len < n) {
            return 0;
        }

        body = 0;
        for (i = 2; i < n; i++) {
            body = body << 8 | p[i];
        }

    } else {
        return 0;
    }

    return body <= len - n ? n + body : 0;
}


static uint32_t
cg_certs_hash(const unsigned char *p, size_t len)
{
    size_t    i;
    uint32_t  h;

    /* FNV-1a: the key is the whole DER anyway, compared on a hit */
    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h = (h ^ p[i]) * 16777619u;
    }

    return h;
}


static int
cg_certs_in(STACK_OF(X509) *chain, X509 *x)
{
    int  i;

    for (i = 0; chain && i < sk_X509_num(chain); i++) {
        if (sk_X509_value(chain, i) == x) {
            return 1;
        }
    }

    return 0;
}


X509 *
cg_certs_d2i(cg_certs_t *certs, const unsigned char **pp, long len,
    STACK_OF(X509) *chain)
{
    size_t                n;
    X509                 *x;
    unsigned              w, v;
    unsigned char        *der;
    cg_certs_slot_t      *s;
    cg_certs_bucket_t    *b;
    const unsigned char  *start;

    start = *pp;
    n = (certs && len > 0) ? cg_certs_tlv_len(start, (size_t) len) : 0;

    if (n == 0) {
        return d2i_X509(NULL, pp, len);
    }

    b = &certs->bucket[cg_certs_hash(start, n) % CG_CERTS_BUCKETS];

    for (w = 0; w < CG_CERTS_WAYS; w++) {
        s = &b->way[w];

        if (s->x && s->len == n && memcmp(s->der, start, n) == 0
            && !cg_certs_in(chain, s->x) && X509_up_ref(s->x))
        {
            if (s->hits < CG_CERTS_HITS_MAX) {
                s->hits++;
            }

            b->last = w;
            *pp = start + n;
            return s->x;
        }
    }

    x = d2i_X509(NULL, pp, len);

    if (x == NULL || (size_t) (*pp - start) != n) {
        return x;
    }

    /* the victim: an empty way, else the one with fewer hits, else the
     * one not used last */
    v = b->last == 0 ? 1 : 0;

    for (w = 0; w < CG_CERTS_WAYS; w++) {
        if (b->way[w].x == NULL) {
            v = w;
            break;
        }

        if (b->way[w].hits < b->way[v].hits) {
            v = w;
        }
    }

    s = &b->way[v];

    if (s->x && s->hits > 0) {
        s->hits--;
        return x;
    }

    der = malloc(n);
    if (der == NULL || !X509_up_ref(x)) {
        free(der);
        return x;           /* not kept: the chain has it all the same */
    }

    memcpy(der, start, n);

    X509_free(s->x);
    free(s->der);

    s->x = x;
    s->der = der;
    s->len = n;
    s->hits = 0;
    b->last = v;

    return x;
}
