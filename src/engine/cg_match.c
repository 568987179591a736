/*
 * Patterns, pattern lists, certificate digest sets and CIDR ranges: the
 * matching primitives of the policy language.
 *
 * Everything here is built once when a policy is loaded and only read
 * afterwards, so matching is reentrant: a regex match allocates its own
 * PCRE2 match data and shares nothing.
 */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cg_internal.h"
#include "cg_policy.h"


static int cg_host_match(const cg_pattern_t *p, const char *s, size_t len);

/* The text a pattern list is matched against, lowered once for all its
 * substrings (the buffer holds a typical name; longer ones are allocated). */
typedef struct {
    const char  *s;
    size_t       len;
    char        *lower;         /* NULL until asked for */
    char         buf[512];
} cg_hay_t;

static const char *cg_hay_lower(cg_hay_t *h);
static void cg_hay_free(cg_hay_t *h);
static void cg_ascii_lower(char *dst, const char *src, size_t len);
static int cg_mem_find(const char *hay, size_t len, const char *needle,
    size_t nlen);
static int cg_pattern_match_hay(const cg_pattern_t *p, cg_hay_t *hay);
static int cg_hex_value(int c);
static int cg_digest_cmp(const void *a, const void *b);
static int cg_line_next(const char **pos, const char *end, const char **line,
    size_t *len);


static _Atomic uint64_t  cg_patlist_ids;


int
cg_file_read(const char *path, char **data, size_t *len, cg_error_t *err)
{
    int          fd;
    char        *buf;
    size_t       size, got;
    ssize_t      n;
    struct stat  st;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return cg_errorf(err, CG_ERR_IO, path, 0, "cannot open: %s",
                         strerror(errno));
    }

    /* A FIFO or a device would block or never end. */
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cg_errorf(err, CG_ERR_IO, path, 0, "not a regular file");
    }

    if (st.st_size > CG_FILE_MAX) {
        close(fd);
        return cg_errorf(err, CG_ERR_IO, path, 0,
                         "larger than %d bytes", CG_FILE_MAX);
    }

    size = (size_t) st.st_size;
    buf = malloc(size + 1);
    if (buf == NULL) {
        close(fd);
        return cg_errorf(err, CG_ERR_NOMEM, path, 0, "out of memory");
    }

    for (got = 0; got < size; got += (size_t) n) {
        n = read(fd, buf + got, size - got);
        if (n == -1 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n <= 0) {
            break;
        }
    }

    close(fd);

    if (got < size && n == -1) {
        free(buf);
        return cg_errorf(err, CG_ERR_IO, path, 0, "cannot read: %s",
                         strerror(errno));
    }

    /*
     * Editors on Windows start UTF-8 files with a byte-order mark; kept,
     * it would glue itself to the first word or pattern and silently
     * disable that entry, so it is dropped here, for every file the
     * engine reads.
     */
    if (got >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
        got -= 3;
        memmove(buf, buf + 3, got);
    }

    buf[got] = '\0';
    *data = buf;
    *len = got;

    return CG_OK;
}


int
cg_pattern_compile(cg_pattern_t *p, const char *text, int host,
    cg_error_t *err)
{
    int          rc;
    char         msg[160];
    size_t       len;
    uint32_t     opts;
    PCRE2_SIZE   off;
    const char  *re;

    memset(p, 0, sizeof(*p));

    len = strlen(text);
    if (len == 0) {
        return cg_errorf(err, CG_ERR_SYNTAX, NULL, 0, "empty pattern");
    }

    p->text = strdup(text);
    if (p->text == NULL) {
        return cg_errorf(err, CG_ERR_NOMEM, NULL, 0, "out of memory");
    }
    p->len = len;

    if (text[0] == '~') {
        /* PCRE2_MATCH_INVALID_UTF: certificate text is attacker-controlled
         * and need not be valid UTF-8; this makes that safe. */
        opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
        re = text + 1;

        if (re[0] == '*') {
            opts |= PCRE2_CASELESS;
            re++;
        }

        if (re[0] == '\0') {
            cg_pattern_free(p);
            return cg_errorf(err, CG_ERR_SYNTAX, NULL, 0,
                             "empty regular expression");
        }

        p->kind = CG_PAT_REGEX;
        p->re = pcre2_compile((PCRE2_SPTR) re, PCRE2_ZERO_TERMINATED, opts,
                              &rc, &off, NULL);
        if (p->re == NULL) {
            pcre2_get_error_message(rc, (PCRE2_UCHAR *) msg, sizeof(msg));
            cg_pattern_free(p);
            return cg_errorf(err, CG_ERR_SYNTAX, NULL, 0,
                             "invalid regular expression \"%.60s\" at "
                             "offset %zu: %s", re, (size_t) off, msg);
        }

        /* JIT is an optimisation: without it (no JIT support on this
         * platform) pcre2_match() interprets the same code. */
        (void) pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);

        return CG_OK;
    }

    if (!host) {
        p->kind = CG_PAT_SUBSTR;

        p->lower = malloc(len + 1);
        if (p->lower == NULL) {
            cg_pattern_free(p);
            return cg_errorf(err, CG_ERR_NOMEM, NULL, 0, "out of memory");
        }

        cg_ascii_lower(p->lower, p->text, len + 1);

        return CG_OK;
    }

    if (len >= 2 && text[0] == '*' && text[1] == '.') {
        p->kind = CG_PAT_HOST_SUFFIX;
        memmove(p->text, p->text + 1, len);     /* "*.x" -> ".x" */
        p->len = len - 1;

    } else if (text[0] == '.') {
        p->kind = CG_PAT_HOST_SUFFIX;
        p->dot_too = 1;

    } else {
        p->kind = CG_PAT_HOST_EXACT;
    }

    if (p->kind == CG_PAT_HOST_SUFFIX && p->len < 2) {
        cg_pattern_free(p);
        return cg_errorf(err, CG_ERR_SYNTAX, NULL, 0,
                         "invalid host pattern \"%s\": expected a name "
                         "after the dot", text);
    }

    if (strpbrk(p->text, "*/ \t") != NULL) {
        cg_pattern_free(p);
        return cg_errorf(err, CG_ERR_SYNTAX, NULL, 0,
                         "invalid host pattern \"%s\": expected a name, "
                         "\"*.name\", \".name\" or \"~regex\"", text);
    }

    return CG_OK;
}


void
cg_pattern_free(cg_pattern_t *p)
{
    if (p->re) {
        pcre2_code_free(p->re);
        p->re = NULL;
    }

    free(p->text);
    p->text = NULL;
    free(p->lower);
    p->lower = NULL;
}


int
cg_pattern_match(const cg_pattern_t *p, const char *s, size_t len)
{
    int       m;
    cg_hay_t  hay;

    hay.s = s;
    hay.len = len;
    hay.lower = NULL;

    m = cg_pattern_match_hay(p, &hay);

    cg_hay_free(&hay);

    return m;
}


/*
 * One pair of offsets is all a yes/no match needs: one block a thread,
 * made on its first regex and kept, as a match never starts another
 * (an evaluation used to allocate and free one per list it matched).
 */

static _Thread_local pcre2_match_data  *cg_match_data;


static int
cg_pattern_match_hay(const cg_pattern_t *p, cg_hay_t *hay)
{
    size_t       len, i;
    const char  *s, *lower;

    s = hay->s;
    len = hay->len;

    switch (p->kind) {

    case CG_PAT_SUBSTR:
        /* case-insensitive as C's tolower() in the "C" locale, the one
         * nginx and the CLI run in: ASCII letters only */
        if (p->len > len) {
            return 0;
        }

        lower = cg_hay_lower(hay);
        if (lower != NULL) {
            return cg_mem_find(lower, len, p->lower, p->len);
        }

        /* no memory for a long name's lowered copy: compared in place,
         * slower, so a blocklisted name still matches */
        for (i = 0; i + p->len <= len; i++) {
            if (strncasecmp(s + i, p->lower, p->len) == 0) {
                return 1;
            }
        }

        return 0;

    case CG_PAT_REGEX:
        if (cg_match_data == NULL) {
            cg_match_data = pcre2_match_data_create(1, NULL);
            if (cg_match_data == NULL) {
                return 0;
            }
        }

        return pcre2_match(p->re, (PCRE2_SPTR) s, len, 0, 0, cg_match_data,
                           NULL)
               >= 0;

    case CG_PAT_HOST_SUFFIX:
    case CG_PAT_HOST_EXACT:
        return cg_host_match(p, s, len);
    }

    return 0;
}


static const char *
cg_hay_lower(cg_hay_t *h)
{
    if (h->lower == NULL) {
        h->lower = h->len <= sizeof(h->buf) ? h->buf : malloc(h->len);

        if (h->lower != NULL) {
            cg_ascii_lower(h->lower, h->s, h->len);
        }
    }

    return h->lower;
}


static void
cg_hay_free(cg_hay_t *h)
{
    if (h->lower != NULL && h->lower != h->buf) {
        free(h->lower);
    }

    h->lower = NULL;
}


/* needle (1 <= nlen <= len) in hay: memchr() for its first byte, then a
 * compare (memmem() is not in C11) */

static int
cg_mem_find(const char *hay, size_t len, const char *needle, size_t nlen)
{
    const char  *p, *last;

    p = hay;
    last = hay + (len - nlen);

    while (p <= last) {
        p = memchr(p, (unsigned char) needle[0], (size_t) (last - p) + 1);

        if (p == NULL) {
            return 0;
        }

        if (memcmp(p, needle, nlen) == 0) {
            return 1;
        }

        p++;
    }

    return 0;
}


static void
cg_ascii_lower(char *dst, const char *src, size_t len)
{
    size_t  i;
    char    c;

    for (i = 0; i < len; i++) {
        c = src[i];
        dst[i] = (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
    }
}


static int
cg_host_match(const cg_pattern_t *p, const char *s, size_t len)
{
    /* "example.com." is the same name as "example.com". */
    if (len && s[len - 1] == '.') {
        len--;
    }

    if (p->kind == CG_PAT_HOST_EXACT) {
        return len == p->len && strncasecmp(s, p->text, len) == 0;
    }

    /* ".x": the name x itself only when the pattern was written ".x" */
    if (p->dot_too && len == p->len - 1
        && strncasecmp(s, p->text + 1, len) == 0)
    {
        return 1;
    }

    /* a name below: at least one character before ".x" */
    return len > p->len
           && strncasecmp(s + len - p->len, p->text, p->len) == 0;
}


const cg_pattern_t *
cg_patlist_match(const cg_patlist_t *l, const char *s, size_t len)
{
    size_t               i;
    cg_hay_t             hay;
    const cg_pattern_t  *found;

    found = NULL;
    hay.s = s;
    hay.len = len;
    hay.lower = NULL;

    for (i = 0; i < l->n; i++) {
        if (cg_pattern_match_hay(&l->items[i], &hay)) {
            found = &l->items[i];
            break;
        }
    }

    cg_hay_free(&hay);

    return found;
}


int
cg_patlist_add(cg_patlist_t *l, const char *text, int host, cg_error_t *err)
{
    int            rc;
    cg_pattern_t   p, *items;

    rc = cg_pattern_compile(&p, text, host, err);
    if (rc != CG_OK) {
        return rc;
    }

    items = realloc(l->items, (l->n + 1) * sizeof(cg_pattern_t));
    if (items == NULL) {
        cg_pattern_free(&p);
        return cg_errorf(err, CG_ERR_NOMEM, NULL, 0, "out of memory");
    }

    l->items = items;
    l->items[l->n++] = p;
    l->id = atomic_fetch_add(&cg_patlist_ids, 1) + 1;

    return CG_OK;
}


int
cg_patlist_load(cg_patlist_t *l, const char *path, int host, cg_error_t *err)
{
    int      rc;
    char    *data;
    size_t   len;

    data = NULL;
    len = 0;
    rc = cg_file_read(path, &data, &len, err);
    if (rc != CG_OK) {
        return rc;
    }

    rc = cg_patlist_load_mem(l, data, len, path, host, err);
    free(data);

    return rc;
}


int
cg_patlist_load_mem(cg_patlist_t *l, const char *data, size_t len,
    const char *name, int host, cg_error_t *err)
{
    int          rc;
    char        *text;
    size_t       n;
    unsigned     lineno;
    const char  *pos, *end, *line;

    pos = data;
    end = data + len;

    for (lineno = 1; cg_line_next(&pos, end, &line, &n); lineno++) {

        if (n == 0 || line[0] == '#') {
            continue;
        }

        if (memchr(line, '\0', n) != NULL) {
            return cg_errorf(err, CG_ERR_SYNTAX, name, lineno,
                             "unexpected NUL byte, expected a pattern");
        }

        text = strndup(line, n);
        if (text == NULL) {
            return cg_errorf(err, CG_ERR_NOMEM, name, lineno,
                             "out of memory");
        }

        rc = cg_patlist_add(l, text, host, err);
        free(text);

        if (rc != CG_OK) {
            /* the message is the pattern's; the place is this line */
            if (err) {
                cg_strlcpy(err->file, name, sizeof(err->file));
                err->line = lineno;
            }
            return rc;
        }

        l->items[l->n - 1].line = lineno;
    }

    return CG_OK;
}


void
cg_patlist_free(cg_patlist_t *l)
{
    size_t  i;

    for (i = 0; i < l->n; i++) {
        cg_pattern_free(&l->items[i]);
    }

    free(l->items);
    l->items = NULL;
    l->n = 0;
    l->id = 0;
}


/*
 * Yields the next line without its end of line and without surrounding
 * white space; 0 at the end of the data.
 */

static int
cg_line_next(const char **pos, const char *end, const char **line,
    size_t *len)
{
    const char  *p, *e, *nl;

    p = *pos;
    if (p >= end) {
        return 0;
    }

    nl = memchr(p, '\n', (size_t) (end - p));
    e = nl ? nl : end;
    *pos = nl ? nl + 1 : end;

    while (p < e && (*p == ' ' || *p == '\t')) {
        p++;
    }

    while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) {
        e--;
    }

    *line = p;
    *len = (size_t) (e - p);

    return 1;
}


static int
cg_hex_value(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/*
 * A digest as written: 40 or 64 hex digits, optionally separated by
 * colons, optionally after "sha1:" or "sha256:", which must then agree
 * with the length.
 */

static int
cg_digest_parse_n(cg_digest_t *d, const char *text, size_t len)
{
    int          hi, lo;
    size_t       n, want;
    const char  *p, *end;

    memset(d, 0, sizeof(*d));

    p = text;
    end = text + len;
    want = 0;

    if (len > 5 && strncasecmp(p, "sha1:", 5) == 0) {
        want = 20;
        p += 5;

    } else if (len > 7 && strncasecmp(p, "sha256:", 7) == 0) {
        want = 32;
        p += 7;
    }

    for (n = 0; p < end; ) {
        if (*p == ':') {
            p++;
            continue;
        }

        if (end - p < 2 || n == 32) {
            return -1;
        }

        hi = cg_hex_value((unsigned char) p[0]);
        lo = cg_hex_value((unsigned char) p[1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }

        d->md[n++] = (unsigned char) (hi << 4 | lo);
        p += 2;
    }

    if ((n != 20 && n != 32) || (want && n != want)) {
        return -1;
    }

    d->len = (unsigned char) n;

    return 0;
}


int
cg_digest_parse(cg_digest_t *d, const char *text)
{
    return cg_digest_parse_n(d, text, strlen(text));
}


int
cg_digestset_add(cg_digestset_t *s, const cg_digest_t *d)
{
    cg_digest_t  *items;

    items = realloc(s->items, (s->n + 1) * sizeof(cg_digest_t));
    if (items == NULL) {
        return CG_ERR_NOMEM;
    }

    s->items = items;
    s->items[s->n++] = *d;

    return CG_OK;
}


int
cg_digestset_load(cg_digestset_t *s, const char *path, cg_error_t *err)
{
    int      rc;
    char    *data;
    size_t   len;

    data = NULL;
    len = 0;
    rc = cg_file_read(path, &data, &len, err);
    if (rc != CG_OK) {
        return rc;
    }

    rc = cg_digestset_load_mem(s, data, len, path, err);
    free(data);

    return rc;
}


/*
 * SSLBL rows are "2024-01-02 13:26:21,<40 hex>,<reason>"; the header
 * "Listingdate,SHA1,Listingreason" is a comment in the published file but
 * is accepted bare too.  Other lines hold one digest, and anything after
 * white space is ignored, so that sha256sum output can be used as is.
 */

int
cg_digestset_load_mem(cg_digestset_t *s, const char *data, size_t len,
    const char *name, cg_error_t *err)
{
    size_t        n, rlen;
    unsigned      lineno;
    const char   *pos, *end, *line, *c1, *c2, *reason, *sp;
    cg_digest_t   d;

    pos = data;
    end = data + len;

    for (lineno = 1; cg_line_next(&pos, end, &line, &n); lineno++) {

        if (n == 0 || line[0] == '#') {
            continue;
        }

        c1 = memchr(line, ',', n);

        if (c1 == NULL) {
            sp = line;
            while (sp < line + n && *sp != ' ' && *sp != '\t') {
                sp++;
            }

            if (cg_digest_parse_n(&d, line, (size_t) (sp - line)) != 0) {
                return cg_errorf(err, CG_ERR_SYNTAX, name, lineno,
                                 "expected a SHA-1 or SHA-256 fingerprint "
                                 "(40 or 64 hex digits) or an SSLBL CSV "
                                 "row");
            }

        } else {
            if (n >= 12 && strncasecmp(line, "Listingdate,", 12) == 0) {
                continue;
            }

            c2 = memchr(c1 + 1, ',', (size_t) (line + n - c1 - 1));
            if (c1 == line || c2 == NULL) {
                return cg_errorf(err, CG_ERR_SYNTAX, name, lineno,
                                 "expected an SSLBL CSV row "
                                 "\"Listingdate,SHA1,Listingreason\"");
            }

            if (c2 - c1 - 1 != 40
                || cg_digest_parse_n(&d, c1 + 1, 40) != 0)
            {
                return cg_errorf(err, CG_ERR_SYNTAX, name, lineno,
                                 "expected a SHA-1 fingerprint (40 hex "
                                 "digits) in the second CSV field");
            }

            reason = c2 + 1;
            rlen = (size_t) (line + n - reason);

            if (rlen >= 2 && reason[0] == '"' && reason[rlen - 1] == '"') {
                reason++;
                rlen -= 2;
            }

            if (rlen >= sizeof(d.reason)) {
                rlen = sizeof(d.reason) - 1;
            }

            memcpy(d.reason, reason, rlen);
            d.reason[rlen] = '\0';
        }

        if (cg_digestset_add(s, &d) != CG_OK) {
            return cg_errorf(err, CG_ERR_NOMEM, name, lineno,
                             "out of memory");
        }
    }

    return CG_OK;
}


static int
cg_digest_cmp(const void *a, const void *b)
{
    const cg_digest_t  *x = a, *y = b;

    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }

    return memcmp(x->md, y->md, x->len);
}


/* Sorts and drops duplicates.  qsort is not stable: which duplicate's
 * reason is kept is not defined, which is good enough for a reason. */

void
cg_digestset_sort(cg_digestset_t *s)
{
    size_t  i, j;

    if (s->n < 2) {
        return;
    }

    qsort(s->items, s->n, sizeof(cg_digest_t), cg_digest_cmp);

    for (i = 0, j = 1; j < s->n; j++) {
        if (cg_digest_cmp(&s->items[i], &s->items[j]) != 0) {
            s->items[++i] = s->items[j];
        }
    }

    s->n = i + 1;
}


const cg_digest_t *
cg_digestset_find(const cg_digestset_t *s, const unsigned char *md,
    size_t len)
{
    cg_digest_t  key;

    if (s->n == 0 || (len != 20 && len != 32)) {
        return NULL;
    }

    memcpy(key.md, md, len);
    key.len = (unsigned char) len;

    return bsearch(&key, s->items, s->n, sizeof(cg_digest_t),
                   cg_digest_cmp);
}


void
cg_digestset_free(cg_digestset_t *s)
{
    free(s->items);
    s->items = NULL;
    s->n = 0;
}


/*
 * Text to an address: IPv4, IPv6, "[v6]"; an IPv4-mapped IPv6 address
 * ("::ffff:192.0.2.1") counts as the IPv4 address, so that dual-stack
 * sockets match IPv4 ranges.
 */

static int
cg_addr_parse(const char *text, size_t len, int *family, unsigned char *addr)
{
    char                  buf[INET6_ADDRSTRLEN + 1];
    static const unsigned char  mapped[12] = {
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
    };

    if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
        text++;
        len -= 2;
    }

    if (len == 0 || len >= sizeof(buf)) {
        return -1;
    }

    memcpy(buf, text, len);
    buf[len] = '\0';

    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = AF_INET;
        return 0;
    }

    if (inet_pton(AF_INET6, buf, addr) == 1) {
        if (memcmp(addr, mapped, 12) == 0) {
            memmove(addr, addr + 12, 4);
            *family = AF_INET;
            return 0;
        }

        *family = AF_INET6;
        return 0;
    }

    return -1;
}


/* "192.0.2.0/24", "2001:db8::/32", or a bare address (a single host).
 * Host bits beyond the prefix are cleared, as nginx's allow/deny do. */

int
cg_cidr_parse(cg_cidr_t *c, const char *text)
{
    char        *e;
    size_t       len, i;
    unsigned     max;
    const char  *slash;
    unsigned long  prefix;

    memset(c, 0, sizeof(*c));

    slash = strchr(text, '/');
    len = slash ? (size_t) (slash - text) : strlen(text);

    if (cg_addr_parse(text, len, &c->family, c->addr) != 0) {
        return -1;
    }

    /* "::ffff:10.0.0.0/104" would be an IPv4 range written as IPv6;
     * keep it simple and require IPv4 ranges to be written as such. */
    if (c->family == AF_INET && strchr(text, ':') != NULL) {
        return -1;
    }

    max = c->family == AF_INET ? 32 : 128;

    if (slash == NULL) {
        c->prefix = max;
        return 0;
    }

    if (!isdigit((unsigned char) slash[1])) {
        return -1;
    }

    errno = 0;
    prefix = strtoul(slash + 1, &e, 10);
    if (errno || *e != '\0' || prefix > max) {
        return -1;
    }

    c->prefix = (unsigned) prefix;

    for (i = 0; i < 16; i++) {
        if (i * 8 >= c->prefix) {
            c->addr[i] = 0;

        } else if (i * 8 + 8 > c->prefix) {
            c->addr[i] &= (unsigned char) (0xff << (8 - (c->prefix - i * 8)));
        }
    }

    return 0;
}


int
cg_cidr_match(const cg_cidr_t *c, const char *addr)
{
    int            family;
    unsigned       full, rest;
    unsigned char  a[16];

    if (addr == NULL
        || cg_addr_parse(addr, strlen(addr), &family, a) != 0
        || family != c->family)
    {
        return 0;
    }

    full = c->prefix / 8;
    rest = c->prefix % 8;

    if (memcmp(a, c->addr, full) != 0) {
        return 0;
    }

    if (rest == 0) {
        return 1;
    }

    return ((a[full] ^ c->addr[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}
