/*
 * The capture sidecar: one flat JSON object (cg_capture.h), written and
 * read here.  The reader takes what the writer writes and what a person
 * may have edited by hand; it skips keys it does not know, so that a later
 * version may add some, and refuses anything that is not JSON.
 */

#include <stdlib.h>
#include <string.h>

#include "cg_capture.h"
#include "cg_internal.h"
#include "cg_out.h"
#include "cg_policy.h"


#define CG_JSON_DEPTH   16


typedef struct {
    const unsigned char  *p;
    const unsigned char  *end;
    const char           *problem;
} cg_json_t;


static void cg_cap_key(cg_out_t *o, const char *key);
static void cg_cap_str(cg_out_t *o, const char *key, const char *s);
static void cg_cap_int(cg_out_t *o, const char *key, long long v,
    int null_if_zero);
static void cg_json_ws(cg_json_t *j);
static int cg_json_lit(cg_json_t *j, const char *lit);
static int cg_json_hex4(cg_json_t *j, uint32_t *v);
static int cg_json_string(cg_json_t *j, char *buf, size_t size);
static int cg_json_int(cg_json_t *j, int64_t *v);
static int cg_json_skip(cg_json_t *j, unsigned depth);
static int cg_json_value(cg_json_t *j, const char *key,
    cg_capture_record_t *rec);


static void
cg_cap_key(cg_out_t *o, const char *key)
{
    cg_out_mem(o, "\"", 1);
    cg_out_str(o, key);
    cg_out_mem(o, "\":", 2);
}


/* "key":"value" (or null for ""); bytes that are not UTF-8 become U+FFFD
 * so that the file stays JSON whatever a server or client sent. */
static void
cg_cap_str(cg_out_t *o, const char *key, const char *s)
{
    cg_cap_key(o, key);

    if (s == NULL || s[0] == '\0') {
        cg_out_mem(o, "null", 4);
        return;
    }

    cg_out_json_str(o, s, strlen(s));
}


static void
cg_cap_int(cg_out_t *o, const char *key, long long v, int null_if_zero)
{
    cg_cap_key(o, key);

    if (v == 0 && null_if_zero) {
        cg_out_mem(o, "null", 4);
        return;
    }

    cg_out_fmt(o, "%lld", v);
}


size_t
cg_capture_format(const cg_capture_record_t *rec, char *buf, size_t len)
{
    cg_out_t  o;

    cg_out_init(&o, buf, len);

    cg_out_mem(&o, "{", 1);
    cg_cap_str(&o, "sha256", rec->sha256);
    cg_out_mem(&o, ",", 1);
    cg_cap_str(&o, "name", rec->name);
    cg_out_mem(&o, ",", 1);
    cg_cap_str(&o, "client_sni", rec->client_sni);
    cg_out_mem(&o, ",", 1);
    cg_cap_str(&o, "dst_addr", rec->dst_addr);
    cg_out_mem(&o, ",", 1);
    cg_cap_int(&o, "dst_port", (long long) rec->dst_port, 1);
    cg_out_mem(&o, ",", 1);
    cg_cap_int(&o, "first_seen", (long long) rec->first_seen, 0);
    cg_out_mem(&o, ",", 1);
    cg_cap_int(&o, "last_seen", (long long) rec->last_seen, 0);
    cg_out_mem(&o, ",", 1);
    cg_cap_int(&o, "count", (long long) rec->count, 0);
    cg_out_mem(&o, ",", 1);
    cg_cap_str(&o, "verdict", cg_verdict_name(rec->verdict));
    cg_out_mem(&o, ",", 1);
    cg_cap_str(&o, "policy", rec->policy);
    cg_out_mem(&o, "}\n", 2);

    return cg_out_done(&o);
}


static void
cg_json_ws(cg_json_t *j)
{
    while (j->p < j->end
           && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n'
               || *j->p == '\r'))
    {
        j->p++;
    }
}


static int
cg_json_lit(cg_json_t *j, const char *lit)
{
    size_t  n;

    n = strlen(lit);

    if ((size_t) (j->end - j->p) < n || memcmp(j->p, lit, n) != 0) {
        return 0;
    }

    j->p += n;

    return 1;
}


static int
cg_json_hex4(cg_json_t *j, uint32_t *v)
{
    int            i;
    unsigned char  c;

    *v = 0;

    if (j->end - j->p < 4) {
        return -1;
    }

    for (i = 0; i < 4; i++) {
        c = *j->p++;

        if (c >= '0' && c <= '9') {
            *v = *v * 16 + (c - '0');

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            *v = *v * 16 + ((c | 0x20) - 'a' + 10);

        } else {
            return -1;
        }
    }

    return 0;
}


/*
 * A string at j->p (after its opening quote has been checked), decoded
 * into buf as UTF-8 and NUL-terminated; buf NULL skips it.  A string that
 * does not fit, holds a NUL or is not UTF-8 is refused: these are names
 * the CLI scores with, and a cut or altered name would score another.
 */
static int
cg_json_string(cg_json_t *j, char *buf, size_t size)
{
    size_t          n, k;
    uint32_t        cp, lo;
    unsigned char   u[4], c;

    n = 0;
    j->p++;

    for ( ;; ) {
        if (j->p >= j->end) {
            j->problem = "unterminated string";
            return -1;
        }

        c = *j->p;

        if (c == '"') {
            j->p++;
            break;
        }

        if (c < 0x20) {
            j->problem = "control character in a string";
            return -1;
        }

        if (c != '\\') {
            k = cg_utf8_decode(j->p, (size_t) (j->end - j->p), &cp);
            if (k == 0) {
                j->problem = "string is not UTF-8";
                return -1;
            }

            memcpy(u, j->p, k);
            j->p += k;

        } else {
            j->p++;

            if (j->p >= j->end) {
                j->problem = "unterminated string";
                return -1;
            }

            c = *j->p++;

            switch (c) {
            case '"': case '\\': case '/': cp = c; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;

            case 'u':
                if (cg_json_hex4(j, &cp) != 0) {
                    j->problem = "bad \\u escape";
                    return -1;
                }

                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    j->problem = "lone low surrogate";
                    return -1;
                }

                if (cp >= 0xd800 && cp <= 0xdbff) {
                    if (!cg_json_lit(j, "\\u") || cg_json_hex4(j, &lo) != 0
                        || lo < 0xdc00 || lo > 0xdfff)
                    {
                        j->problem = "lone high surrogate";
                        return -1;
                    }

                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }

                break;

            default:
                j->problem = "bad escape";
                return -1;
            }

            if (cp == 0) {
                j->problem = "NUL in a string";
                return -1;
            }

            if (cp < 0x80) {
                u[0] = (unsigned char) cp;
                k = 1;

            } else if (cp < 0x800) {
                u[0] = (unsigned char) (0xc0 | (cp >> 6));
                u[1] = (unsigned char) (0x80 | (cp & 0x3f));
                k = 2;

            } else if (cp < 0x10000) {
                u[0] = (unsigned char) (0xe0 | (cp >> 12));
                u[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
                u[2] = (unsigned char) (0x80 | (cp & 0x3f));
                k = 3;

            } else {
                u[0] = (unsigned char) (0xf0 | (cp >> 18));
                u[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
                u[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
                u[3] = (unsigned char) (0x80 | (cp & 0x3f));
                k = 4;
            }
        }

        if (buf) {
            if (n + k >= size) {
                j->problem = "string too long";
                return -1;
            }

            memcpy(buf + n, u, k);
        }

        n += k;
    }

    if (buf) {
        buf[n] = '\0';
    }

    return 0;
}


/* An integer; fractions and exponents are not what the writer writes. */
static int
cg_json_int(cg_json_t *j, int64_t *v)
{
    int       neg, digits;
    uint64_t  u;

    neg = 0;
    digits = 0;
    u = 0;

    if (j->p < j->end && *j->p == '-') {
        neg = 1;
        j->p++;
    }

    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        if (u > (UINT64_C(1) << 62) / 10) {
            j->problem = "number out of range";
            return -1;
        }

        u = u * 10 + (uint64_t) (*j->p++ - '0');
        digits++;
    }

    if (digits == 0
        || (j->p < j->end
            && (*j->p == '.' || *j->p == 'e' || *j->p == 'E')))
    {
        j->problem = "not an integer";
        return -1;
    }

    *v = neg ? -(int64_t) u : (int64_t) u;

    return 0;
}


/* A value of a key that is not known: any JSON value. */
static int
cg_json_skip(cg_json_t *j, unsigned depth)
{
    int            first;
    int64_t        v;
    unsigned char  close;

    if (depth > CG_JSON_DEPTH) {
        j->problem = "nested too deep";
        return -1;
    }

    cg_json_ws(j);

    if (j->p >= j->end) {
        j->problem = "value missing";
        return -1;
    }

    switch (*j->p) {

    case '"':
        return cg_json_string(j, NULL, 0);

    case '{':
    case '[':
        close = (*j->p == '{') ? '}' : ']';
        j->p++;
        first = 1;

        for ( ;; ) {
            cg_json_ws(j);

            if (j->p < j->end && *j->p == close && first) {
                j->p++;
                return 0;
            }

            if (close == '}') {
                if (j->p >= j->end || *j->p != '"'
                    || cg_json_string(j, NULL, 0) != 0)
                {
                    j->problem = "key expected";
                    return -1;
                }

                cg_json_ws(j);

                if (!cg_json_lit(j, ":")) {
                    j->problem = "\":\" expected";
                    return -1;
                }
            }

            if (cg_json_skip(j, depth + 1) != 0) {
                return -1;
            }

            cg_json_ws(j);
            first = 0;

            if (cg_json_lit(j, ",")) {
                continue;
            }

            if (j->p < j->end && *j->p == close) {
                j->p++;
                return 0;
            }

            j->problem = "\",\" expected";
            return -1;
        }

    default:
        if (cg_json_lit(j, "null") || cg_json_lit(j, "true")
            || cg_json_lit(j, "false"))
        {
            return 0;
        }

        if (cg_json_int(j, &v) == 0) {
            return 0;
        }

        j->problem = "not a value";
        return -1;
    }
}


static int
cg_json_value(cg_json_t *j, const char *key, cg_capture_record_t *rec)
{
    size_t    i, size;
    char     *buf, verdict[16];
    int64_t   v;

    buf = NULL;
    size = 0;

    if (strcmp(key, "sha256") == 0) {
        buf = rec->sha256;
        size = sizeof(rec->sha256);

    } else if (strcmp(key, "name") == 0) {
        buf = rec->name;
        size = sizeof(rec->name);

    } else if (strcmp(key, "client_sni") == 0) {
        buf = rec->client_sni;
        size = sizeof(rec->client_sni);

    } else if (strcmp(key, "dst_addr") == 0) {
        buf = rec->dst_addr;
        size = sizeof(rec->dst_addr);

    } else if (strcmp(key, "policy") == 0) {
        buf = rec->policy;
        size = sizeof(rec->policy);

    } else if (strcmp(key, "verdict") == 0) {
        buf = verdict;
        size = sizeof(verdict);
        verdict[0] = '\0';
    }

    if (buf) {
        /* a key given twice: nothing of the first value stays behind */
        memset(buf, 0, size);

        if (cg_json_lit(j, "null")) {
            return 0;
        }

        if (j->p >= j->end || *j->p != '"') {
            j->problem = "string expected";
            return -1;
        }

        if (cg_json_string(j, buf, size) != 0) {
            return -1;
        }

        if (buf == rec->sha256) {
            for (i = 0; i < 64; i++) {
                if (!((buf[i] >= '0' && buf[i] <= '9')
                      || (buf[i] >= 'a' && buf[i] <= 'f')))
                {
                    break;
                }
            }

            if (i != 64 || buf[64] != '\0') {
                j->problem = "sha256 is not 64 lower-case hex digits";
                return -1;
            }
        }

        if (buf == verdict) {
            if (strcmp(verdict, "allow") == 0) {
                rec->verdict = CG_ALLOW;

            } else if (strcmp(verdict, "tag") == 0) {
                rec->verdict = CG_TAG;

            } else if (strcmp(verdict, "block") == 0) {
                rec->verdict = CG_BLOCK;

            } else {
                j->problem = "verdict is not allow, tag or block";
                return -1;
            }
        }

        return 0;
    }

    if (strcmp(key, "dst_port") == 0 || strcmp(key, "first_seen") == 0
        || strcmp(key, "last_seen") == 0 || strcmp(key, "count") == 0)
    {
        if (cg_json_lit(j, "null")) {
            v = 0;

        } else if (cg_json_int(j, &v) != 0) {
            return -1;
        }

        if (key[0] == 'd') {
            if (v < 0 || v > 65535) {
                j->problem = "dst_port out of range";
                return -1;
            }

            rec->dst_port = (unsigned) v;

        } else if (key[0] == 'c') {
            if (v < 0) {
                j->problem = "count is negative";
                return -1;
            }

            rec->count = (uint64_t) v;

        } else if (key[0] == 'f') {
            rec->first_seen = v;

        } else {
            rec->last_seen = v;
        }

        return 0;
    }

    return cg_json_skip(j, 1);
}


int
cg_capture_parse(const char *data, size_t len, cg_capture_record_t *rec,
    cg_error_t *err)
{
    char       key[256];
    cg_json_t  j;

    memset(rec, 0, sizeof(cg_capture_record_t));

    j.p = (const unsigned char *) data;
    j.end = j.p + len;
    j.problem = NULL;

    cg_json_ws(&j);

    if (!cg_json_lit(&j, "{")) {
        j.problem = "not a JSON object";
        goto failed;
    }

    cg_json_ws(&j);

    if (!cg_json_lit(&j, "}")) {

        for ( ;; ) {
            cg_json_ws(&j);

            if (j.p >= j.end || *j.p != '"') {
                j.problem = "key expected";
                goto failed;
            }

            if (cg_json_string(&j, key, sizeof(key)) != 0) {
                goto failed;
            }

            cg_json_ws(&j);

            if (!cg_json_lit(&j, ":")) {
                j.problem = "\":\" expected";
                goto failed;
            }

            cg_json_ws(&j);

            if (cg_json_value(&j, key, rec) != 0) {
                goto failed;
            }

            cg_json_ws(&j);

            if (cg_json_lit(&j, ",")) {
                continue;
            }

            if (cg_json_lit(&j, "}")) {
                break;
            }

            j.problem = "\",\" or \"}\" expected";
            goto failed;
        }
    }

    cg_json_ws(&j);

    if (j.p != j.end) {
        j.problem = "data after the object";
        goto failed;
    }

    return CG_OK;

failed:

    memset(rec, 0, sizeof(cg_capture_record_t));

    return cg_errorf(err, CG_ERR_INPUT, NULL, 0, "sidecar at byte %zu: %s",
                     (size_t) (j.p - (const unsigned char *) data),
                     j.problem ? j.problem : "malformed");
}


int
cg_capture_read(const char *path, cg_capture_record_t *rec, cg_error_t *err)
{
    int      rc;
    char    *data;
    size_t   len;

    memset(rec, 0, sizeof(cg_capture_record_t));

    rc = cg_file_read(path, &data, &len, err);
    if (rc != CG_OK) {
        return rc;
    }

    rc = cg_capture_parse(data, len, rec, err);
    free(data);

    if (rc != CG_OK && err) {
        cg_strlcpy(err->file, path, sizeof(err->file));
    }

    return rc;
}
