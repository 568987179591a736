/*
 * The compact form of a result, for the verdict caches of both modules:
 * a few hundred bytes for a typical certificate instead of the flat
 * struct's 3 KB, and nothing lost, so that what the records and the
 * variables print from a cached verdict is what they print from a fresh
 * one.
 *
 * Format: a version byte, then the fields that are not zero or "" in
 * increasing tag order, each a tag byte and its value, then a 0 byte (so
 * that a cut-off form never reads as a shorter result):
 *
 *   int    zigzag LEB128, at most 10 bytes
 *   str    a length byte (below the member's size), the bytes, no NUL;
 *          or, under its tag with CG_PACK_RAW set, one byte: 0x80 | the
 *          index of a word of cg_pack_words, or the tag of an earlier str
 *          of the same value (a self-signed leaf's issuer is its subject)
 *   hex    a length byte n, then n bytes: 2n hex digits of the member's
 *          case; a member that is not such hex is a str under its tag
 *          with CG_PACK_RAW set
 *   flags  one byte, the bit-fields
 *   hits   a count byte, then per hit: an int code, (signal index + 1)
 *          << 1 | exempt, with index -1 for a custom rule whose id (a str)
 *          follows; the weight (int); the detail (str)
 *
 * Packed bytes are read back from shared memory other workers wrote:
 * cg_result_unpack() trusts no length, tag or value.  Adding a member to
 * cg_result_t is a line in cg_pack_fields (a new tag, above the last), or
 * a bit in the flags; the size check below fails the build until then.
 */

#include <limits.h>
#include <string.h>

#include "cg_internal.h"


#define CG_PACK_VERSION     1
#define CG_PACK_RAW         0x80
#define CG_PACK_END         0

/* Adding a member to cg_result_t (or cg_hit_t): pack it below, then
 * change the size here. */
#if defined(__x86_64__) || defined(__aarch64__)
_Static_assert(sizeof(cg_result_t) == 3712,
               "cg_result_t changed: add its new members to cg_pack.c");
_Static_assert(sizeof(cg_hit_t) == 136,
               "cg_hit_t changed: pack its new members in cg_pack_hits()");
#endif


typedef enum {
    CG_PK_INT = 0,          /* int or int64_t, by size */
    CG_PK_UINT,             /* unsigned */
    CG_PK_VERDICT,          /* cg_verdict_t */
    CG_PK_STR,
    CG_PK_HEX,              /* lower-case hex */
    CG_PK_HEXU,             /* upper-case hex */
    CG_PK_FLAGS,            /* the result's bit-fields */
    CG_PK_HITS              /* nhits and hits[] */
} cg_pack_kind_t;

typedef struct {
    unsigned char   tag;
    unsigned char   kind;
    unsigned short  offset;
    unsigned short  size;
} cg_pack_field_t;


#define CG_PK(tag, kind, member)                                              \
    { tag, kind, offsetof(cg_result_t, member),                               \
      sizeof(((cg_result_t *) 0)->member) }

/* Tags ascend; a tag is never reused for another member. */
static const cg_pack_field_t  cg_pack_fields[] = {
    CG_PK(1, CG_PK_VERDICT, verdict),
    CG_PK(2, CG_PK_INT, score),
    CG_PK(3, CG_PK_HITS, hits),
    CG_PK(4, CG_PK_UINT, hits_dropped),
    CG_PK(5, CG_PK_STR, subject),
    CG_PK(6, CG_PK_STR, issuer),
    CG_PK(7, CG_PK_HEXU, serial),
    CG_PK(8, CG_PK_HEX, sha256),
    CG_PK(9, CG_PK_HEX, sha1),
    CG_PK(10, CG_PK_HEX, spki_sha256),
    CG_PK(11, CG_PK_INT, not_before),
    CG_PK(12, CG_PK_INT, not_after),
    CG_PK(13, CG_PK_INT, key_bits),
    CG_PK(14, CG_PK_STR, key_type),
    CG_PK(15, CG_PK_STR, sig_alg),
    CG_PK(16, CG_PK_UINT, chain_len),
    { 17, CG_PK_FLAGS, 0, 1 },
    CG_PK(18, CG_PK_STR, name),
    CG_PK(19, CG_PK_STR, policy),
    CG_PK(20, CG_PK_INT, first_seen),
    CG_PK(21, CG_PK_HEX, prev_sha256),
    CG_PK(22, CG_PK_STR, prev_issuer),
};


/* Strings the engine writes into many results (signature algorithms as
 * OpenSSL names them, key types, the policies' names). */
static const char  *cg_pack_words[] = {
    "sha256WithRSAEncryption", "sha384WithRSAEncryption",
    "sha512WithRSAEncryption", "sha1WithRSAEncryption", "rsassaPss",
    "ecdsa-with-SHA256", "ecdsa-with-SHA384", "ecdsa-with-SHA512",
    "ecdsa-with-SHA1", "ED25519", "ED448", "RSA", "RSA-PSS", "EC",
    "default", "strict", "monitor"
};


#define CG_FLAG_TRUSTED       0x01
#define CG_FLAG_PUBLIC_ROOT   0x02
#define CG_FLAG_SNI_EXEMPT    0x04
#define CG_FLAG_ALL           0x07


typedef struct {
    unsigned char  *buf;
    size_t          len;
    size_t          n;          /* what the whole output takes */
} cg_wr_t;

typedef struct {
    const unsigned char  *p;
    const unsigned char  *last;
} cg_rd_t;


static void
cg_put(cg_wr_t *w, const void *data, size_t n)
{
    if (w->n + n <= w->len) {
        memcpy(w->buf + w->n, data, n);
    }

    w->n += n;
}


static void
cg_put_byte(cg_wr_t *w, unsigned c)
{
    unsigned char  b = (unsigned char) c;

    cg_put(w, &b, 1);
}


static void
cg_put_uint(cg_wr_t *w, uint64_t v)
{
    while (v >= 0x80) {
        cg_put_byte(w, (unsigned) (v & 0x7f) | 0x80);
        v >>= 7;
    }

    cg_put_byte(w, (unsigned) v);
}


static void
cg_put_int(cg_wr_t *w, int64_t v)
{
    cg_put_uint(w, v < 0 ? ~((uint64_t) v << 1) : (uint64_t) v << 1);
}


/* size is the member's: what is stored is shorter than it, so it fits
 * when read back. */
static void
cg_put_str(cg_wr_t *w, const char *s, size_t size)
{
    size_t  n;

    n = strnlen(s, size - 1);
    n = n < 255 ? n : 255;

    cg_put_byte(w, (unsigned) n);
    cg_put(w, s, n);
}


static inline int
cg_hex_value(int c, int upper)
{
    unsigned  d;

    /* unsigned differences: one compare a range, as the three digests of
     * every verdict take 384 of these */
    d = (unsigned) c - '0';
    if (d < 10) {
        return (int) d;
    }

    d = (unsigned) c - (upper ? 'A' : 'a');

    return d < 6 ? (int) d + 10 : -1;
}


/* Decoded in one pass into a buffer, written at once: a verdict holds
 * three digests, and byte-at-a-time writes were most of a cache insert. */

static void
cg_put_hex(cg_wr_t *w, unsigned tag, const char *s, size_t size, int upper)
{
    int            hi, lo;
    size_t         i, n;
    unsigned char  bytes[255];

    n = strnlen(s, size - 1);

    if (n % 2 || n / 2 > sizeof(bytes)) {
        goto raw;
    }

    for (i = 0; i < n; i += 2) {
        hi = cg_hex_value((unsigned char) s[i], upper);
        lo = cg_hex_value((unsigned char) s[i + 1], upper);

        if (hi < 0 || lo < 0) {
            goto raw;
        }

        bytes[i / 2] = (unsigned char) (hi << 4 | lo);
    }

    cg_put_byte(w, tag);
    cg_put_byte(w, (unsigned) (n / 2));
    cg_put(w, bytes, n / 2);

    return;

raw:

    cg_put_byte(w, tag | CG_PACK_RAW);
    cg_put_str(w, s, size);
}


static int64_t
cg_get_member_int(const cg_result_t *res, const cg_pack_field_t *fd)
{
    int32_t   v32;
    int64_t   v64;
    uint32_t  u32;

    if (fd->kind == CG_PK_UINT) {
        memcpy(&u32, (const char *) res + fd->offset, sizeof(u32));
        return u32;
    }

    if (fd->size == sizeof(int64_t)) {
        memcpy(&v64, (const char *) res + fd->offset, sizeof(v64));
        return v64;
    }

    memcpy(&v32, (const char *) res + fd->offset, sizeof(v32));

    return v32;
}


static void
cg_pack_hits(cg_wr_t *w, const cg_result_t *res)
{
    int              sig;
    unsigned         i, n;
    const cg_hit_t  *h;

    n = res->nhits < CG_MAX_HITS ? res->nhits : CG_MAX_HITS;

    cg_put_byte(w, n);

    for (i = 0; i < n; i++) {
        h = &res->hits[i];

        /* an id is a built-in's only when it is exactly the table's */
        sig = strnlen(h->id, sizeof(h->id)) < sizeof(h->id)
              ? cg_signal_find(h->id) : -1;

        cg_put_uint(w, (uint64_t) (sig + 1) << 1 | h->exempt);

        if (sig < 0) {
            cg_put_str(w, h->id, sizeof(h->id));
        }

        cg_put_int(w, h->weight);
        cg_put_str(w, h->detail, sizeof(h->detail));
    }
}


/* The str of field i, as a word, a reference or itself. */
static void
cg_pack_str(cg_wr_t *w, const cg_result_t *res, size_t i)
{
    size_t                  k;
    const char             *s, *t;
    const cg_pack_field_t  *fd;

    fd = &cg_pack_fields[i];
    s = (const char *) res + fd->offset;

    /* the first byte before strncmp(): a call for each word and earlier
     * field was a third of the pack */
    for (k = 0; k < cg_nelem(cg_pack_words); k++) {
        if (s[0] == cg_pack_words[k][0]
            && strncmp(s, cg_pack_words[k], fd->size) == 0)
        {
            cg_put_byte(w, fd->tag | CG_PACK_RAW);
            cg_put_byte(w, 0x80 | (unsigned) k);
            return;
        }
    }

    for (k = 0; k < i; k++) {
        t = (const char *) res + cg_pack_fields[k].offset;

        if (cg_pack_fields[k].kind == CG_PK_STR
            && cg_pack_fields[k].size == fd->size
            && s[0] == t[0]
            && strncmp(s, t, fd->size) == 0)
        {
            cg_put_byte(w, fd->tag | CG_PACK_RAW);
            cg_put_byte(w, cg_pack_fields[k].tag);
            return;
        }
    }

    cg_put_byte(w, fd->tag);
    cg_put_str(w, s, fd->size);
}


size_t
cg_result_pack(const cg_result_t *res, unsigned char *buf, size_t len)
{
    size_t                  i;
    int64_t                 v;
    unsigned                flags;
    const char             *s;
    cg_wr_t                 w;
    const cg_pack_field_t  *fd;

    w.buf = buf;
    w.len = buf ? len : 0;
    w.n = 0;

    cg_put_byte(&w, CG_PACK_VERSION);

    for (i = 0; i < cg_nelem(cg_pack_fields); i++) {
        fd = &cg_pack_fields[i];
        s = (const char *) res + fd->offset;

        switch (fd->kind) {

        case CG_PK_INT:
        case CG_PK_UINT:
        case CG_PK_VERDICT:
            v = fd->kind == CG_PK_VERDICT ? (int64_t) res->verdict
                                          : cg_get_member_int(res, fd);
            if (v != 0) {
                cg_put_byte(&w, fd->tag);
                cg_put_int(&w, v);
            }
            break;

        case CG_PK_STR:
            if (s[0] != '\0') {
                cg_pack_str(&w, res, i);
            }
            break;

        case CG_PK_HEX:
        case CG_PK_HEXU:
            if (s[0] != '\0') {
                cg_put_hex(&w, fd->tag, s, fd->size, fd->kind == CG_PK_HEXU);
            }
            break;

        case CG_PK_FLAGS:
            flags = (res->trusted ? CG_FLAG_TRUSTED : 0)
                    | (res->public_root ? CG_FLAG_PUBLIC_ROOT : 0)
                    | (res->sni_exempt ? CG_FLAG_SNI_EXEMPT : 0);
            if (flags) {
                cg_put_byte(&w, fd->tag);
                cg_put_byte(&w, flags);
            }
            break;

        case CG_PK_HITS:
            if (res->nhits) {
                cg_put_byte(&w, fd->tag);
                cg_pack_hits(&w, res);
            }
            break;
        }
    }

    cg_put_byte(&w, CG_PACK_END);

    return w.n;
}


/* ---- reading ---------------------------------------------------------- */


static int
cg_get_byte(cg_rd_t *r, unsigned *c)
{
    if (r->p >= r->last) {
        return -1;
    }

    *c = *r->p++;

    return 0;
}


static int
cg_get_uint(cg_rd_t *r, uint64_t *v)
{
    unsigned  c, shift;

    *v = 0;

    for (shift = 0; shift < 64; shift += 7) {
        if (cg_get_byte(r, &c) != 0) {
            return -1;
        }

        /* the tenth byte holds the top bit only */
        if (shift == 63 && c > 1) {
            return -1;
        }

        *v |= (uint64_t) (c & 0x7f) << shift;

        if (!(c & 0x80)) {
            return 0;
        }
    }

    return -1;
}


static int
cg_get_int(cg_rd_t *r, int64_t *v)
{
    uint64_t  u;

    if (cg_get_uint(r, &u) != 0) {
        return -1;
    }

    *v = (u & 1) ? (int64_t) ~(u >> 1) : (int64_t) (u >> 1);

    return 0;
}


static int
cg_get_int32(cg_rd_t *r, int *v)
{
    int64_t  x;

    if (cg_get_int(r, &x) != 0 || x < INT_MIN || x > INT_MAX) {
        return -1;
    }

    *v = (int) x;

    return 0;
}


/* A str into a member of size bytes; empty is refused where the packer
 * leaves the member out instead (nonempty). */
static int
cg_get_str(cg_rd_t *r, char *dst, size_t size, int nonempty)
{
    unsigned  n;

    if (cg_get_byte(r, &n) != 0 || n >= size || (nonempty && n == 0)
        || (size_t) (r->last - r->p) < n || memchr(r->p, '\0', n) != NULL)
    {
        return -1;
    }

    memcpy(dst, r->p, n);
    dst[n] = '\0';
    r->p += n;

    return 0;
}


static int
cg_get_hex(cg_rd_t *r, char *dst, size_t size, int upper)
{
    unsigned  n, i;
    const char  *digits;

    digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

    if (cg_get_byte(r, &n) != 0 || n == 0 || 2 * (size_t) n >= size
        || (size_t) (r->last - r->p) < n)
    {
        return -1;
    }

    for (i = 0; i < n; i++) {
        dst[2 * i] = digits[r->p[i] >> 4];
        dst[2 * i + 1] = digits[r->p[i] & 0x0f];
    }

    dst[2 * n] = '\0';
    r->p += n;

    return 0;
}


static int
cg_unpack_hits(cg_rd_t *r, cg_result_t *res)
{
    unsigned     i, n;
    uint64_t     code;
    const char  *id;
    cg_hit_t    *h;

    if (cg_get_byte(r, &n) != 0 || n == 0 || n > CG_MAX_HITS) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        h = &res->hits[i];

        if (cg_get_uint(r, &code) != 0) {
            return -1;
        }

        if (code >> 1 == 0) {
            if (cg_get_str(r, h->id, sizeof(h->id), 1) != 0
                || cg_signal_find(h->id) >= 0)
            {
                return -1;
            }

        } else {
            id = (code >> 1) - 1 < cg_signal_count()
                 ? cg_signal_id((unsigned) ((code >> 1) - 1)) : NULL;

            if (id == NULL || strlen(id) >= sizeof(h->id)) {
                return -1;
            }

            cg_strlcpy(h->id, id, sizeof(h->id));
        }

        h->exempt = code & 1;

        if (cg_get_int32(r, &h->weight) != 0
            || cg_get_str(r, h->detail, sizeof(h->detail), 0) != 0)
        {
            return -1;
        }
    }

    res->nhits = n;

    return 0;
}


/* A str written as a word or a reference to field i's. */
static int
cg_unpack_ref(cg_rd_t *r, size_t i, cg_result_t *res)
{
    size_t                  k;
    unsigned                b;
    const char             *src;
    const cg_pack_field_t  *fd;

    fd = &cg_pack_fields[i];

    if (cg_get_byte(r, &b) != 0) {
        return -1;
    }

    if (b & 0x80) {
        if ((b & 0x7f) >= cg_nelem(cg_pack_words)) {
            return -1;
        }

        src = cg_pack_words[b & 0x7f];

    } else {
        for (k = 0; k < i && cg_pack_fields[k].tag != b; k++) {
            /* void */
        }

        /* an earlier str of the same size, already read */
        if (k == i || cg_pack_fields[k].kind != CG_PK_STR
            || cg_pack_fields[k].size != fd->size)
        {
            return -1;
        }

        src = (const char *) res + cg_pack_fields[k].offset;
    }

    if (src[0] == '\0' || strnlen(src, fd->size) >= fd->size) {
        return -1;
    }

    memcpy((char *) res + fd->offset, src, strlen(src) + 1);

    return 0;
}


static int
cg_unpack_field(cg_rd_t *r, const cg_pack_field_t *fd, int raw,
    cg_result_t *res)
{
    int       v32;
    char     *s;
    int64_t   v;
    unsigned  flags;
    uint32_t  u32;

    s = (char *) res + fd->offset;

    if (raw) {
        if (fd->kind == CG_PK_STR) {
            return cg_unpack_ref(r, fd - cg_pack_fields, res);
        }

        return (fd->kind == CG_PK_HEX || fd->kind == CG_PK_HEXU)
               ? cg_get_str(r, s, fd->size, 1) : -1;
    }

    switch (fd->kind) {

    case CG_PK_INT:
    case CG_PK_UINT:
    case CG_PK_VERDICT:
        if (cg_get_int(r, &v) != 0 || v == 0) {
            return -1;
        }

        if (fd->kind == CG_PK_VERDICT) {
            if (v != CG_TAG && v != CG_BLOCK) {
                return -1;
            }

            res->verdict = (cg_verdict_t) v;

        } else if (fd->kind == CG_PK_UINT) {
            if (v < 0 || v > UINT32_MAX) {
                return -1;
            }

            u32 = (uint32_t) v;
            memcpy(s, &u32, sizeof(u32));

        } else if (fd->size == sizeof(int64_t)) {
            memcpy(s, &v, sizeof(v));

        } else {
            if (v < INT_MIN || v > INT_MAX) {
                return -1;
            }

            v32 = (int) v;
            memcpy(s, &v32, sizeof(v32));
        }

        return 0;

    case CG_PK_STR:
        return cg_get_str(r, s, fd->size, 1);

    case CG_PK_HEX:
    case CG_PK_HEXU:
        return cg_get_hex(r, s, fd->size, fd->kind == CG_PK_HEXU);

    case CG_PK_FLAGS:
        if (cg_get_byte(r, &flags) != 0 || flags == 0
            || (flags & ~CG_FLAG_ALL))
        {
            return -1;
        }

        res->trusted = (flags & CG_FLAG_TRUSTED) != 0;
        res->public_root = (flags & CG_FLAG_PUBLIC_ROOT) != 0;
        res->sni_exempt = (flags & CG_FLAG_SNI_EXEMPT) != 0;

        return 0;

    case CG_PK_HITS:
        return cg_unpack_hits(r, res);
    }

    return -1;
}


int
cg_result_unpack(const unsigned char *buf, size_t len, cg_result_t *res)
{
    size_t                  i;
    unsigned                c, tag;
    cg_rd_t                 r;

    if (res == NULL) {
        return CG_ERR_ARG;
    }

    memset(res, 0, sizeof(cg_result_t));

    if (buf == NULL) {
        return CG_ERR_INPUT;
    }

    r.p = buf;
    r.last = buf + len;

    if (cg_get_byte(&r, &c) != 0 || c != CG_PACK_VERSION) {
        goto invalid;
    }

    i = 0;

    for ( ;; ) {
        if (cg_get_byte(&r, &c) != 0) {
            goto invalid;
        }

        if (c == CG_PACK_END) {
            if (r.p != r.last) {
                goto invalid;
            }

            break;
        }

        tag = c & ~CG_PACK_RAW;

        /* each field once, in table order */
        while (i < cg_nelem(cg_pack_fields) && cg_pack_fields[i].tag < tag) {
            i++;
        }

        if (i == cg_nelem(cg_pack_fields) || cg_pack_fields[i].tag != tag
            || cg_unpack_field(&r, &cg_pack_fields[i], (c & CG_PACK_RAW) != 0,
                               res)
               != 0)
        {
            goto invalid;
        }

        i++;
    }

    return CG_OK;

invalid:

    memset(res, 0, sizeof(cg_result_t));

    return CG_ERR_INPUT;
}
