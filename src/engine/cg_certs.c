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
 *
 * The modules keep one per worker for the certificates a server sends
 * above its leaf (cg_certs_find(), through cg_input_t certs): the object
 * remembered for the same bytes has its extensions cached and its key set
 * up (an RSA key's Montgomery context among it), and the facts made of it
 * the first time are kept with it, as they depend on the bytes alone.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "cg_facts.h"


#define CG_CERTS_BUCKETS    128
#define CG_CERTS_WAYS       2
#define CG_CERTS_HITS_MAX   16
#define CG_FNV_BASIS        2166136261u


typedef struct {
    X509             *x;
    unsigned char    *der;
    size_t            len;
    unsigned          hits;
    cg_cert_facts_t  *facts;        /* made of x above a leaf, or NULL */
} cg_certs_slot_t;


typedef struct {
    cg_certs_slot_t  way[CG_CERTS_WAYS];
    unsigned         last;              /* the way used last */
} cg_certs_bucket_t;


/*
 * Which pattern of a list a name matched, for the names of certificates
 * above leaves (cg_certs_match()): a shared intermediate's subject and
 * issuer are matched against the same lists on every handshake below it.
 * Keyed by the list's id and the whole name; a slot is overwritten by the
 * next name that hashes to it.
 */
#define CG_CERTS_MATCHES    256
#define CG_CERTS_MATCH_MAX  240         /* longer names are not kept */

typedef struct {
    uint64_t           list;            /* cg_patlist_t id; 0: empty */
    uint32_t           hash;
    uint32_t           found;           /* the pattern's index + 1, or 0 */
    uint32_t           len;
    char               name[CG_CERTS_MATCH_MAX];
} cg_certs_match_t;


/*
 * Slots by the object they hold, for cg_certs_find() of that object again:
 * an anchor is the trust store's object on every handshake, and a slot
 * holds a reference to its object, so no other can have its address while
 * it is there.  A slot's bucket * ways + way + 1, or 0; checked against
 * the slot's object before use.
 */
#define CG_CERTS_BY_OBJECT  64


struct cg_certs_s {
    cg_certs_bucket_t  bucket[CG_CERTS_BUCKETS];
    uint64_t           found;           /* cg_certs_find() */
    uint64_t           missed;
    cg_certs_match_t  *matches;         /* [CG_CERTS_MATCHES], at first use */
    uint16_t           by_object[CG_CERTS_BY_OBJECT];
};


static cg_certs_slot_t *cg_certs_victim(cg_certs_bucket_t *b);
static int cg_certs_put(cg_certs_bucket_t *b, cg_certs_slot_t *s, X509 *x,
    const unsigned char *der, size_t len);
static void cg_certs_slot_clear(cg_certs_slot_t *s);
static unsigned cg_certs_object_index(const X509 *x);
static uint32_t cg_fnv(uint32_t h, const unsigned char *p, size_t n);
static uint32_t cg_fnv_int(uint32_t h, uint64_t v, size_t n);
static void cg_certs_found(cg_certs_t *certs, cg_certs_bucket_t *b,
    unsigned w, cg_certs_found_t *found);
static void cg_certs_by_object(cg_certs_t *certs, cg_certs_bucket_t *b,
    unsigned w);


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
            cg_certs_slot_clear(s);
        }
    }

    free(certs->matches);
    free(certs);
}


static void
cg_certs_slot_clear(cg_certs_slot_t *s)
{
    X509_free(s->x);
    free(s->der);

    if (s->facts) {
        free(s->facts->subject);
        free(s->facts->issuer);
        free(s->facts);
    }

    memset(s, 0, sizeof(cg_certs_slot_t));
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


/*
 * FNV-1a of the length and the last 32 bytes, which are the signature's:
 * the whole DER is compared on a hit anyway, and hashing all of a 1 KB
 * certificate a byte at a time costs a microsecond, which a new leaf's
 * lookup of its intermediate would pay on every handshake.
 */

static uint32_t
cg_certs_hash(const unsigned char *p, size_t len)
{
    size_t  from;

    from = len > 32 ? len - 32 : 0;

    return cg_fnv(cg_fnv_int(CG_FNV_BASIS, len, sizeof(uint32_t)), p + from,
                  len - from);
}


/* FNV-1a on from h: n bytes, or the low n bytes of v, low byte first */

static uint32_t
cg_fnv(uint32_t h, const unsigned char *p, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }

    return h;
}


static uint32_t
cg_fnv_int(uint32_t h, uint64_t v, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        h = (h ^ ((v >> (8 * i)) & 0xff)) * 16777619u;
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
    unsigned              w;
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

    s = cg_certs_victim(b);

    if (s != NULL) {
        (void) cg_certs_put(b, s, x, start, n);     /* not kept: the chain
                                                       has it all the same */
    }

    return x;
}


const cg_pattern_t *
cg_certs_match(cg_certs_t *certs, const cg_patlist_t *l, const char *s,
    size_t len)
{
    uint32_t             h;
    cg_certs_match_t    *m;
    const cg_pattern_t  *p;

    if (certs == NULL || l->n == 0 || l->id == 0
        || len > CG_CERTS_MATCH_MAX)
    {
        return cg_patlist_match(l, s, len);
    }

    if (certs->matches == NULL) {
        certs->matches = calloc(CG_CERTS_MATCHES, sizeof(cg_certs_match_t));
        if (certs->matches == NULL) {
            return cg_patlist_match(l, s, len);
        }
    }

    /* the name, then the list's id */
    h = cg_fnv_int(cg_fnv(CG_FNV_BASIS, (const unsigned char *) s, len),
                   l->id, sizeof(uint64_t));

    m = &certs->matches[h % CG_CERTS_MATCHES];

    if (m->list == l->id && m->hash == h && m->len == len
        && memcmp(m->name, s, len) == 0)
    {
        return m->found ? &l->items[m->found - 1] : NULL;
    }

    p = cg_patlist_match(l, s, len);

    m->list = l->id;
    m->hash = h;
    m->len = (uint32_t) len;
    m->found = p ? (uint32_t) (p - l->items) + 1 : 0;
    memcpy(m->name, s, len);

    return p;
}


void
cg_certs_counts(const cg_certs_t *certs, uint64_t *found, uint64_t *missed)
{
    *found = certs ? certs->found : 0;
    *missed = certs ? certs->missed : 0;
}


/* The way a miss takes: an empty one, else the one with fewer hits, else
 * the one not used last; NULL when that one has hits, which it then
 * counts down instead. */

static cg_certs_slot_t *
cg_certs_victim(cg_certs_bucket_t *b)
{
    unsigned          w, v;
    cg_certs_slot_t  *s;

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
        return NULL;
    }

    return s;
}


static int
cg_certs_put(cg_certs_bucket_t *b, cg_certs_slot_t *s, X509 *x,
    const unsigned char *der, size_t len)
{
    unsigned char  *copy;

    copy = malloc(len);
    if (copy == NULL || !X509_up_ref(x)) {
        free(copy);
        return 0;
    }

    memcpy(copy, der, len);

    cg_certs_slot_clear(s);

    s->x = x;
    s->der = copy;
    s->len = len;
    b->last = (unsigned) (s - b->way);

    return 1;
}


/* is x one of the n facts' objects (a chain must not hold one twice) */

static int
cg_certs_taken(const cg_cert_facts_t *taken, unsigned n, X509 *x)
{
    unsigned  i;

    for (i = 0; i < n; i++) {
        if (taken[i].x == x) {
            return 1;
        }
    }

    return 0;
}


static unsigned
cg_certs_object_index(const X509 *x)
{
    uintptr_t  p;

    p = (uintptr_t) x;

    return (unsigned) ((p >> 4) ^ (p >> 12)) % CG_CERTS_BY_OBJECT;
}


/* found from the slot of bucket b, way w, which holds found->x */

static void
cg_certs_found(cg_certs_t *certs, cg_certs_bucket_t *b, unsigned w,
    cg_certs_found_t *found)
{
    cg_certs_slot_t  *s;

    s = &b->way[w];

    if (s->hits < CG_CERTS_HITS_MAX) {
        s->hits++;
    }

    b->last = w;
    found->x = s->x;
    found->facts = s->facts;
    found->keep = &s->facts;
    certs->found++;

    cg_certs_by_object(certs, b, w);
}


/* the slot of bucket b, way w, found by its object from now on */

static void
cg_certs_by_object(cg_certs_t *certs, cg_certs_bucket_t *b, unsigned w)
{
    certs->by_object[cg_certs_object_index(b->way[w].x)] =
        (uint16_t) ((size_t) (b - certs->bucket) * CG_CERTS_WAYS + w + 1);
}


void
cg_certs_find(cg_certs_t *certs, X509 *x, const cg_cert_facts_t *taken,
    unsigned ntaken, cg_certs_found_t *found)
{
    int                n;
    size_t             len;
    unsigned           w, k;
    unsigned char     *der, *p, buf[4096];
    cg_certs_slot_t   *s;
    cg_certs_bucket_t *b;

    found->x = x;
    found->facts = NULL;
    found->keep = NULL;

    if (certs == NULL) {
        return;
    }

    /* the object itself held: its bytes need not be encoded to find it */

    k = certs->by_object[cg_certs_object_index(x)];

    if (k != 0) {
        b = &certs->bucket[(k - 1) / CG_CERTS_WAYS];
        w = (k - 1) % CG_CERTS_WAYS;

        if (b->way[w].x == x) {
            cg_certs_found(certs, b, w, found);
            return;
        }
    }

    n = i2d_X509(x, NULL);
    if (n <= 0) {
        return;
    }

    len = (size_t) n;
    der = len <= sizeof(buf) ? buf : malloc(len);
    if (der == NULL) {
        return;
    }

    p = der;
    if (i2d_X509(x, &p) != n) {
        goto done;
    }

    b = &certs->bucket[cg_certs_hash(der, len) % CG_CERTS_BUCKETS];

    for (w = 0; w < CG_CERTS_WAYS; w++) {
        s = &b->way[w];

        if (s->x == NULL || s->len != len || memcmp(s->der, der, len) != 0) {
            continue;
        }

        /* the same bytes sent twice: the second is its own object */
        if (s->x != x && cg_certs_taken(taken, ntaken, s->x)) {
            goto done;
        }

        cg_certs_found(certs, b, w, found);
        goto done;
    }

    certs->missed++;

    s = cg_certs_victim(b);

    if (s != NULL && cg_certs_put(b, s, x, der, len)) {
        found->keep = &s->facts;
        cg_certs_by_object(certs, b, (unsigned) (s - b->way));
    }

done:

    if (der != buf) {
        free(der);
    }
}
