/*
 * The certificate memory's export format: one JSON object a line per
 * certificate of a name:port (cg_memory.h documents the keys).  The
 * formatter escapes everything (names and issuers come from the network);
 * the parser reads what the formatter writes and what an operator writes
 * by hand for a known-good inventory, and refuses anything else with a
 * message, never reading past the line.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <stdlib.h>
#include <string.h>

#include "cg_memory.h"
#include "cg_facts.h"
#include "cg_out.h"


#define CG_JSON_STR_MAX     1024
#define CG_JSON_DEPTH_MAX   16


typedef struct {
    const char     *p;
    const char     *end;
    const char     *start;
    cg_error_t     *err;
    int             failed;
} cg_jin_t;


size_t
cg_memory_format_json(const cg_memory_entry_t *e, unsigned i, char *buf,
    size_t len)
{
    unsigned                 j;
    cg_out_t                 o;
    const cg_memory_cert_t  *c;

    cg_out_init(&o, buf, len);

    if (e == NULL || i >= e->ncerts || i >= CG_MEMORY_CERTS_MAX) {
        if (len) {
            buf[0] = '\0';
        }
        return 0;
    }

    c = &e->certs[i];

    cg_out_mem(&o, "{\"name\":", 8);
    cg_out_json_str(&o, e->name, sizeof(e->name));
    cg_out_fmt(&o, ",\"port\":%u,\"sha256\":", e->port);
    cg_out_json_hex(&o, c->sha256, 32);

    if (c->has_spki) {
        cg_out_mem(&o, ",\"spki\":", 8);
        cg_out_json_hex(&o, c->spki, 32);
    }

    cg_out_mem(&o, ",\"issuer\":", 10);
    cg_out_json_str(&o, c->issuer, sizeof(c->issuer));
    cg_out_fmt(&o, ",\"public_root\":%s", c->public_root ? "true" : "false");
    cg_out_fmt(&o, ",\"not_before\":%lld,\"not_after\":%lld",
                (long long) c->not_before, (long long) c->not_after);
    cg_out_fmt(&o, ",\"first_seen\":%lld,\"last_seen\":%lld,\"count\":%u",
                (long long) c->first_seen, (long long) c->last_seen,
                (unsigned) c->count);

    cg_out_mem(&o, ",\"addrs\":[", 10);

    for (j = 0; j < c->naddrs && j < CG_MEMORY_ADDRS_MAX; j++) {
        if (j) {
            cg_out_mem(&o, ",", 1);
        }
        cg_out_json_str(&o, c->addrs[j], CG_MEMORY_ADDR_LEN);
    }

    cg_out_mem(&o, "],\"geo\":[", 9);

    for (j = 0; j < c->ngeo && j < CG_MEMORY_GEO_MAX; j++) {
        cg_out_fmt(&o, "%s{\"asn\":%u,\"country\":", j ? "," : "",
                    (unsigned) c->geo[j].asn);
        cg_out_json_str(&o, c->geo[j].country, sizeof(c->geo[j].country));
        cg_out_fmt(&o, ",\"first_seen\":%lld,\"last_seen\":%lld}",
                    (long long) c->geo[j].first_seen,
                    (long long) c->geo[j].last_seen);
    }

    cg_out_mem(&o, "]}", 2);

    return cg_out_done(&o);
}


/* The parser.  Errors name the byte offset in the line. */

static int
cg_jfail(cg_jin_t *in, const char *what)
{
    if (!in->failed) {
        in->failed = 1;
        cg_errorf(in->err, CG_ERR_SYNTAX, NULL, 0, "%s at byte %zu", what,
                  (size_t) (in->p - in->start) + 1);
    }

    return -1;
}


static void
cg_jws(cg_jin_t *in)
{
    while (in->p < in->end
           && (*in->p == ' ' || *in->p == '\t' || *in->p == '\r'
               || *in->p == '\n'))
    {
        in->p++;
    }
}


static int
cg_jchar(cg_jin_t *in, char c)
{
    cg_jws(in);

    if (in->p < in->end && *in->p == c) {
        in->p++;
        return 0;
    }

    return -1;
}


static int
cg_jhex4(const char *p, uint32_t *v)
{
    int  i;
    char c;

    *v = 0;

    for (i = 0; i < 4; i++) {
        c = p[i];
        *v <<= 4;

        if (c >= '0' && c <= '9') {
            *v |= (uint32_t) (c - '0');
        } else if (c >= 'a' && c <= 'f') {
            *v |= (uint32_t) (c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            *v |= (uint32_t) (c - 'A' + 10);
        } else {
            return -1;
        }
    }

    return 0;
}


static size_t
cg_jutf8(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char) cp;
        return 1;
    }

    if (cp < 0x800) {
        out[0] = (char) (0xc0 | (cp >> 6));
        out[1] = (char) (0x80 | (cp & 0x3f));
        return 2;
    }

    if (cp < 0x10000) {
        out[0] = (char) (0xe0 | (cp >> 12));
        out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char) (0x80 | (cp & 0x3f));
        return 3;
    }

    out[0] = (char) (0xf0 | (cp >> 18));
    out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char) (0x80 | (cp & 0x3f));
    return 4;
}


/* A string into buf (NUL-terminated, at most size - 1 bytes); *n its
 * length.  A string that does not fit is an error. */
static int
cg_jstr(cg_jin_t *in, char *buf, size_t size, size_t *n)
{
    char      c, u[4];
    size_t    len, k;
    uint32_t  cp, lo;

    cg_jws(in);

    if (in->p >= in->end || *in->p != '"') {
        return cg_jfail(in, "expected a string");
    }

    in->p++;
    len = 0;

    for ( ;; ) {
        if (in->p >= in->end) {
            return cg_jfail(in, "unterminated string");
        }

        c = *in->p++;

        if (c == '"') {
            break;
        }

        if ((unsigned char) c < 0x20) {
            return cg_jfail(in, "control character in a string");
        }

        if (c != '\\') {
            u[0] = c;
            k = 1;

        } else {
            if (in->p >= in->end) {
                return cg_jfail(in, "unterminated string");
            }

            c = *in->p++;
            k = 1;

            switch (c) {
            case '"': case '\\': case '/': u[0] = c; break;
            case 'b': u[0] = '\b'; break;
            case 'f': u[0] = '\f'; break;
            case 'n': u[0] = '\n'; break;
            case 'r': u[0] = '\r'; break;
            case 't': u[0] = '\t'; break;

            case 'u':
                if (in->end - in->p < 4 || cg_jhex4(in->p, &cp) != 0) {
                    return cg_jfail(in, "invalid \\u escape");
                }
                in->p += 4;

                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (in->end - in->p < 6 || in->p[0] != '\\'
                        || in->p[1] != 'u' || cg_jhex4(in->p + 2, &lo) != 0
                        || lo < 0xdc00 || lo > 0xdfff)
                    {
                        return cg_jfail(in, "unpaired surrogate");
                    }
                    in->p += 6;
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);

                } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                    return cg_jfail(in, "unpaired surrogate");
                }

                k = cg_jutf8(cp, u);
                break;

            default:
                return cg_jfail(in, "invalid escape");
            }
        }

        if (len + k >= size) {
            return cg_jfail(in, "string too long");
        }

        memcpy(buf + len, u, k);
        len += k;
    }

    buf[len] = '\0';

    if (n) {
        *n = len;
    }

    return 0;
}


/* An integer (no fraction, no exponent) from min to max. */
static int
cg_jint(cg_jin_t *in, int64_t min, int64_t max, int64_t *v)
{
    int       neg;
    uint64_t  u, limit;

    cg_jws(in);

    neg = 0;
    if (in->p < in->end && *in->p == '-') {
        neg = 1;
        in->p++;
    }

    if (in->p >= in->end || *in->p < '0' || *in->p > '9') {
        return cg_jfail(in, "expected an integer");
    }

    limit = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;
    u = 0;

    while (in->p < in->end && *in->p >= '0' && *in->p <= '9') {
        if (u > (limit - (uint64_t) (*in->p - '0')) / 10) {
            return cg_jfail(in, "integer out of range");
        }
        u = u * 10 + (uint64_t) (*in->p - '0');
        in->p++;
    }

    if (in->p < in->end
        && (*in->p == '.' || *in->p == 'e' || *in->p == 'E'))
    {
        return cg_jfail(in, "expected an integer");
    }

    if (neg) {
        *v = u == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) u;
    } else {
        *v = (int64_t) u;
    }

    if (*v < min || *v > max) {
        return cg_jfail(in, "integer out of range");
    }

    return 0;
}


static int
cg_jbool(cg_jin_t *in, int64_t *v)
{
    cg_jws(in);

    if (in->end - in->p >= 4 && memcmp(in->p, "true", 4) == 0) {
        in->p += 4;
        *v = 1;
        return 0;
    }

    if (in->end - in->p >= 5 && memcmp(in->p, "false", 5) == 0) {
        in->p += 5;
        *v = 0;
        return 0;
    }

    return cg_jfail(in, "expected true or false");
}


/* Any value, for keys this version does not know. */
static int
cg_jskip(cg_jin_t *in, unsigned depth)
{
    char    tmp[CG_JSON_STR_MAX];
    size_t  n;
    char    close;

    if (depth > CG_JSON_DEPTH_MAX) {
        return cg_jfail(in, "nested too deep");
    }

    cg_jws(in);

    if (in->p >= in->end) {
        return cg_jfail(in, "expected a value");
    }

    switch (*in->p) {

    case '"':
        return cg_jstr(in, tmp, sizeof(tmp), &n);

    case '{':
    case '[':
        close = *in->p == '{' ? '}' : ']';
        in->p++;

        if (cg_jchar(in, close) == 0) {
            return 0;
        }

        for ( ;; ) {
            if (close == '}') {
                if (cg_jstr(in, tmp, sizeof(tmp), &n) != 0) {
                    return -1;
                }
                if (cg_jchar(in, ':') != 0) {
                    return cg_jfail(in, "expected ':'");
                }
            }

            if (cg_jskip(in, depth + 1) != 0) {
                return -1;
            }

            if (cg_jchar(in, close) == 0) {
                return 0;
            }

            if (cg_jchar(in, ',') != 0) {
                return cg_jfail(in, "expected ',' or the end");
            }
        }

    default:
        break;
    }

    if (in->end - in->p >= 4 && memcmp(in->p, "true", 4) == 0) {
        in->p += 4;
        return 0;
    }

    if (in->end - in->p >= 5 && memcmp(in->p, "false", 5) == 0) {
        in->p += 5;
        return 0;
    }

    if (in->end - in->p >= 4 && memcmp(in->p, "null", 4) == 0) {
        in->p += 4;
        return 0;
    }

    if (*in->p == '-' || (*in->p >= '0' && *in->p <= '9')) {
        in->p++;
        while (in->p < in->end
               && ((*in->p >= '0' && *in->p <= '9') || *in->p == '.'
                   || *in->p == 'e' || *in->p == 'E' || *in->p == '+'
                   || *in->p == '-'))
        {
            in->p++;
        }
        return 0;
    }

    return cg_jfail(in, "expected a value");
}


static int
cg_jdigest(cg_jin_t *in, unsigned char *md)
{
    char      hex[CG_JSON_STR_MAX];
    size_t    n, i;
    uint32_t  v;
    char      four[4];

    if (cg_jstr(in, hex, sizeof(hex), &n) != 0) {
        return -1;
    }

    if (n != 64) {
        return cg_jfail(in, "expected 64 hex digits");
    }

    for (i = 0; i < 32; i++) {
        four[0] = '0';
        four[1] = '0';
        four[2] = hex[2 * i];
        four[3] = hex[2 * i + 1];

        if (cg_jhex4(four, &v) != 0) {
            return cg_jfail(in, "expected 64 hex digits");
        }

        md[i] = (unsigned char) v;
    }

    return 0;
}


/* An array of values read by item (NULL: the closing bracket). */
static int
cg_jarray(cg_jin_t *in, int (*item)(cg_jin_t *in, void *arg), void *arg)
{
    if (cg_jchar(in, '[') != 0) {
        return cg_jfail(in, "expected an array");
    }

    if (cg_jchar(in, ']') == 0) {
        return 0;
    }

    for ( ;; ) {
        if (item(in, arg) != 0) {
            return -1;
        }

        if (cg_jchar(in, ']') == 0) {
            return 0;
        }

        if (cg_jchar(in, ',') != 0) {
            return cg_jfail(in, "expected ',' or ']'");
        }
    }
}


static int
cg_jaddr(cg_jin_t *in, void *arg)
{
    char               s[CG_JSON_STR_MAX];
    size_t             n;
    cg_memory_cert_t  *c = arg;

    if (cg_jstr(in, s, sizeof(s), &n) != 0) {
        return -1;
    }

    if (n == 0 || n >= CG_MEMORY_ADDR_LEN) {
        return cg_jfail(in, "invalid address");
    }

    if (c->naddrs < CG_MEMORY_ADDRS_MAX) {
        cg_utf8_copy(c->addrs[c->naddrs++], CG_MEMORY_ADDR_LEN, s, n);
    }

    return 0;
}


typedef struct {
    cg_memory_cert_t  *cert;
    int64_t            now;
} cg_jgeo_arg_t;


static int
cg_jgeo(cg_jin_t *in, void *arg)
{
    char              key[64], cc[CG_JSON_STR_MAX];
    size_t            n;
    int64_t           v;
    cg_jgeo_arg_t    *ga = arg;
    cg_memory_geo_t   g;

    memset(&g, 0, sizeof(g));
    g.first_seen = INT64_MIN;
    g.last_seen = INT64_MIN;

    if (cg_jchar(in, '{') != 0) {
        return cg_jfail(in, "expected an object");
    }

    if (cg_jchar(in, '}') != 0) {
        for ( ;; ) {
            if (cg_jstr(in, key, sizeof(key), &n) != 0) {
                return -1;
            }

            if (cg_jchar(in, ':') != 0) {
                return cg_jfail(in, "expected ':'");
            }

            if (strcmp(key, "asn") == 0) {
                if (cg_jint(in, 0, UINT32_MAX, &v) != 0) {
                    return -1;
                }
                g.asn = (uint32_t) v;

            } else if (strcmp(key, "country") == 0) {
                if (cg_jstr(in, cc, sizeof(cc), &n) != 0) {
                    return -1;
                }
                if (n != 0 && n != 2) {
                    return cg_jfail(in, "expected a two-letter country");
                }
                g.country[0] = (char) (n ? (cc[0] & ~0x20) : 0);
                g.country[1] = (char) (n ? (cc[1] & ~0x20) : 0);
                if (n && (g.country[0] < 'A' || g.country[0] > 'Z'
                          || g.country[1] < 'A' || g.country[1] > 'Z'))
                {
                    return cg_jfail(in, "expected a two-letter country");
                }

            } else if (strcmp(key, "first_seen") == 0) {
                if (cg_jint(in, INT64_MIN, INT64_MAX, &g.first_seen) != 0) {
                    return -1;
                }

            } else if (strcmp(key, "last_seen") == 0) {
                if (cg_jint(in, INT64_MIN, INT64_MAX, &g.last_seen) != 0) {
                    return -1;
                }

            } else if (cg_jskip(in, 2) != 0) {
                return -1;
            }

            if (cg_jchar(in, '}') == 0) {
                break;
            }

            if (cg_jchar(in, ',') != 0) {
                return cg_jfail(in, "expected ',' or '}'");
            }
        }
    }

    if (g.first_seen == INT64_MIN) {
        g.first_seen = g.last_seen != INT64_MIN ? g.last_seen : ga->now;
    }

    if (g.last_seen == INT64_MIN) {
        g.last_seen = g.first_seen;
    }

    if ((g.asn || g.country[0]) && ga->cert->ngeo < CG_MEMORY_GEO_MAX) {
        ga->cert->geo[ga->cert->ngeo++] = g;
    }

    return 0;
}


int
cg_memory_parse_json(const char *line, size_t len, int64_t now,
    cg_memory_entry_t *e, cg_error_t *err)
{
    int                has_name, has_sha;
    char               key[64], s[CG_JSON_STR_MAX];
    char               mkey[CG_MEMORY_KEY_MAX];
    size_t             n;
    int64_t            v;
    cg_jin_t           in;
    cg_jgeo_arg_t      ga;
    cg_memory_cert_t  *c;

    if (line == NULL || e == NULL) {
        return cg_errorf(err, CG_ERR_ARG, NULL, 0, "no line");
    }

    memset(e, 0, offsetof(cg_memory_entry_t, certs));
    c = &e->certs[0];
    memset(c, 0, sizeof(cg_memory_cert_t));
    e->port = 443;
    c->first_seen = INT64_MIN;
    c->last_seen = INT64_MIN;
    c->count = 1;

    in.p = line;
    in.start = line;
    in.end = line + len;
    in.err = err;
    in.failed = 0;

    has_name = 0;
    has_sha = 0;

    if (cg_jchar(&in, '{') != 0) {
        return cg_jfail(&in, "expected '{'"), CG_ERR_SYNTAX;
    }

    if (cg_jchar(&in, '}') == 0) {
        goto done;
    }

    for ( ;; ) {
        if (cg_jstr(&in, key, sizeof(key), &n) != 0) {
            return CG_ERR_SYNTAX;
        }

        if (cg_jchar(&in, ':') != 0) {
            return cg_jfail(&in, "expected ':'"), CG_ERR_SYNTAX;
        }

        if (strcmp(key, "name") == 0) {
            if (cg_jstr(&in, s, sizeof(s), &n) != 0) {
                return CG_ERR_SYNTAX;
            }
            if (n == 0 || n >= sizeof(e->name) || memchr(s, '\0', n)
                || cg_memory_key(s, 443, mkey, sizeof(mkey)) != 0)
            {
                return cg_jfail(&in, "invalid name"), CG_ERR_SYNTAX;
            }
            memcpy(e->name, s, n + 1);
            has_name = 1;

        } else if (strcmp(key, "port") == 0) {
            if (cg_jint(&in, 1, 65535, &v) != 0) {
                return CG_ERR_SYNTAX;
            }
            e->port = (unsigned) v;

        } else if (strcmp(key, "sha256") == 0) {
            if (cg_jdigest(&in, c->sha256) != 0) {
                return CG_ERR_SYNTAX;
            }
            has_sha = 1;

        } else if (strcmp(key, "spki") == 0) {
            if (cg_jdigest(&in, c->spki) != 0) {
                return CG_ERR_SYNTAX;
            }
            c->has_spki = 1;

        } else if (strcmp(key, "issuer") == 0) {
            if (cg_jstr(&in, s, sizeof(s), &n) != 0) {
                return CG_ERR_SYNTAX;
            }
            cg_utf8_copy(c->issuer, sizeof(c->issuer), s, n);

        } else if (strcmp(key, "public_root") == 0) {
            if (cg_jbool(&in, &v) != 0) {
                return CG_ERR_SYNTAX;
            }
            c->public_root = v != 0;

        } else if (strcmp(key, "not_before") == 0) {
            if (cg_jint(&in, INT64_MIN, INT64_MAX, &c->not_before) != 0) {
                return CG_ERR_SYNTAX;
            }

        } else if (strcmp(key, "not_after") == 0) {
            if (cg_jint(&in, INT64_MIN, INT64_MAX, &c->not_after) != 0) {
                return CG_ERR_SYNTAX;
            }

        } else if (strcmp(key, "first_seen") == 0) {
            if (cg_jint(&in, INT64_MIN + 1, INT64_MAX, &c->first_seen) != 0)
            {
                return CG_ERR_SYNTAX;
            }

        } else if (strcmp(key, "last_seen") == 0) {
            if (cg_jint(&in, INT64_MIN + 1, INT64_MAX, &c->last_seen) != 0) {
                return CG_ERR_SYNTAX;
            }

        } else if (strcmp(key, "count") == 0) {
            if (cg_jint(&in, 0, UINT32_MAX, &v) != 0) {
                return CG_ERR_SYNTAX;
            }
            c->count = (uint32_t) v;

        } else if (strcmp(key, "addrs") == 0) {
            c->naddrs = 0;
            if (cg_jarray(&in, cg_jaddr, c) != 0) {
                return CG_ERR_SYNTAX;
            }

        } else if (strcmp(key, "geo") == 0) {
            c->ngeo = 0;
            ga.cert = c;
            ga.now = now;
            if (cg_jarray(&in, cg_jgeo, &ga) != 0) {
                return CG_ERR_SYNTAX;
            }

        } else if (cg_jskip(&in, 1) != 0) {
            return CG_ERR_SYNTAX;
        }

        if (cg_jchar(&in, '}') == 0) {
            break;
        }

        if (cg_jchar(&in, ',') != 0) {
            return cg_jfail(&in, "expected ',' or '}'"), CG_ERR_SYNTAX;
        }
    }

done:

    cg_jws(&in);

    if (in.p != in.end) {
        return cg_jfail(&in, "text after the object"), CG_ERR_SYNTAX;
    }

    if (!has_name || !has_sha) {
        return cg_errorf(err, CG_ERR_SYNTAX, NULL, 0, "\"%s\" is required",
                         has_name ? "sha256" : "name");
    }

    if (c->first_seen == INT64_MIN) {
        c->first_seen = c->last_seen != INT64_MIN ? c->last_seen : now;
    }

    if (c->last_seen == INT64_MIN) {
        c->last_seen = c->first_seen > now ? c->first_seen : now;
    }

    if (c->last_seen < c->first_seen) {
        return cg_errorf(err, CG_ERR_SYNTAX, NULL, 0,
                         "last_seen is before first_seen");
    }

    e->ncerts = 1;
    e->first_seen = c->first_seen;
    e->last_seen = c->last_seen;

    return CG_OK;
}
