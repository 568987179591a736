/*
 * Formatters (cg_format.c) on hand-built results: exact output, JSON
 * validity, CEF structure under hostile certificate text, the 2 KB cap, and
 * snprintf-like truncation.  The JSON and CEF checks use small parsers
 * written here, independent of the formatters' own escaping code.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <limits.h>
#include <stdio.h>

#include "certguard.h"
#include "cg_internal.h"
#include "cg_out.h"
#include "tap.h"


#define BIG  (64 * 1024)
#define NELEM(a)  (sizeof(a) / sizeof((a)[0]))

static char  buf[BIG];


/* --- a minimal RFC 8259 validator ------------------------------------ */

static const char *json_value(const char *p, int depth);


static const char *
json_ws(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
        p++;
    }

    return p;
}


static int
utf8_ok(const unsigned char *p, size_t *len)
{
    unsigned  c = p[0], n, i, cp, min;

    if (c < 0x80) {
        *len = 1;
        return 1;
    }

    if ((c & 0xe0) == 0xc0) {
        n = 2; cp = c & 0x1f; min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3; cp = c & 0x0f; min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4; cp = c & 0x07; min = 0x10000;
    } else {
        return 0;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }

    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }

    *len = n;
    return 1;
}


static int
utf8_valid(const char *s)
{
    size_t  k;

    while (*s) {
        if (!utf8_ok((const unsigned char *) s, &k)) {
            return 0;
        }
        s += k;
    }

    return 1;
}


static const char *
json_string(const char *p)
{
    size_t  k;
    int     i;

    if (*p++ != '"') {
        return NULL;
    }

    while (*p != '"') {
        if ((unsigned char) *p < 0x20) {
            return NULL;
        }

        if (*p == '\\') {
            p++;
            if (strchr("\"\\/bfnrt", *p) && *p) {
                p++;
                continue;
            }
            if (*p != 'u') {
                return NULL;
            }
            for (i = 1; i <= 4; i++) {
                if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) {
                    return NULL;
                }
            }
            p += 5;
            continue;
        }

        if (!utf8_ok((const unsigned char *) p, &k)) {
            return NULL;
        }
        p += k;
    }

    return p + 1;
}


static const char *
json_number(const char *p)
{
    if (*p == '-') {
        p++;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    } else {
        return NULL;
    }
    return p;
}


static const char *
json_value(const char *p, int depth)
{
    char  close;

    if (depth > 16) {
        return NULL;
    }

    p = json_ws(p);

    if (*p == '{' || *p == '[') {
        close = *p == '{' ? '}' : ']';
        p = json_ws(p + 1);
        if (*p == close) {
            return p + 1;
        }
        for ( ;; ) {
            if (close == '}') {
                p = json_string(json_ws(p));
                if (p == NULL || *(p = json_ws(p)) != ':') {
                    return NULL;
                }
                p++;
            }
            p = json_value(p, depth + 1);
            if (p == NULL) {
                return NULL;
            }
            p = json_ws(p);
            if (*p == close) {
                return p + 1;
            }
            if (*p++ != ',') {
                return NULL;
            }
        }
    }

    if (*p == '"') {
        return json_string(p);
    }
    if (strncmp(p, "true", 4) == 0) {
        return p + 4;
    }
    if (strncmp(p, "false", 5) == 0) {
        return p + 5;
    }
    if (strncmp(p, "null", 4) == 0) {
        return p + 4;
    }
    return json_number(p);
}


static int
json_valid(const char *s)
{
    const char  *p;

    p = json_value(s, 0);
    return p && *json_ws(p) == '\0';
}


/* --- an independent CEF parser ---------------------------------------- */

#define MAXKV 64

typedef struct {
    char  key[64];
    char  val[1024];
} kv_t;

static kv_t  kv[MAXKV];
static int   nkv;


/* Splits the header on unescaped pipes (must be exactly 7 before the
 * extension), then the extension on unescaped '=' preceded by " key".
 * Returns 0 when the record is malformed. */
static int
cef_parse(const char *rec)
{
    const char  *p, *ext, *eq[MAXKV + 1], *ks[MAXKV + 1];
    int          pipes, n, i;
    size_t       j, o;

    nkv = 0;

    if (strncmp(rec, "CEF:0|", 6) != 0 || strchr(rec, '\n')
        || strchr(rec, '\r'))
    {
        return 0;
    }

    pipes = 0;
    for (p = rec; *p && pipes < 7; p++) {
        if (*p == '\\' && p[1]) {
            p++;
        } else if (*p == '|') {
            pipes++;
        }
    }

    if (pipes != 7 || *p != ' ') {
        return 0;
    }

    ext = p + 1;
    n = 0;

    for (p = ext; *p; p++) {
        if (*p == '\\') {
            if (p[1] == '\0') {
                return 0;   /* a lone trailing backslash: split escape */
            }
            p++;
            continue;
        }
        if (*p != '=') {
            continue;
        }
        /* walk back over the key to a space or the start */
        const char *k = p;
        while (k > ext && ((k[-1] >= 'a' && k[-1] <= 'z')
                           || (k[-1] >= 'A' && k[-1] <= 'Z')
                           || (k[-1] >= '0' && k[-1] <= '9')))
        {
            k--;
        }
        if (k == p || (k != ext && k[-1] != ' ') || n == MAXKV) {
            return 0;
        }
        ks[n] = k;
        eq[n] = p;
        n++;
    }

    for (i = 0; i < n; i++) {
        const char *end = i + 1 < n ? ks[i + 1] - 1 : ext + strlen(ext);

        if ((size_t) (eq[i] - ks[i]) >= sizeof(kv[i].key)) {
            return 0;
        }
        memcpy(kv[i].key, ks[i], eq[i] - ks[i]);
        kv[i].key[eq[i] - ks[i]] = '\0';

        o = 0;
        for (j = 0; eq[i] + 1 + j < end && o < sizeof(kv[i].val) - 1; j++) {
            char c = eq[i][1 + j];
            if (c == '\\') {
                j++;
                c = eq[i][1 + j];
                c = c == 'n' ? '\n' : c == 'r' ? '\r' : c;
            }
            kv[i].val[o++] = c;
        }
        kv[i].val[o] = '\0';
    }

    nkv = n;
    return 1;
}


static const char *
cef_get(const char *key)
{
    int  i;

    for (i = 0; i < nkv; i++) {
        if (strcmp(kv[i].key, key) == 0) {
            return kv[i].val;
        }
    }

    return NULL;
}


static int
cef_count(const char *key)
{
    int  i, c = 0;

    for (i = 0; i < nkv; i++) {
        c += strcmp(kv[i].key, key) == 0;
    }

    return c;
}


/* --- fixtures ---------------------------------------------------------- */

static void
add_hit(cg_result_t *r, const char *id, int weight, int exempt,
    const char *detail)
{
    cg_hit_t  *h = &r->hits[r->nhits++];

    snprintf(h->id, sizeof(h->id), "%s", id);
    h->weight = weight;
    h->exempt = exempt;
    snprintf(h->detail, sizeof(h->detail), "%s", detail);
}


static void
sample(cg_result_t *r)
{
    memset(r, 0, sizeof(*r));
    r->verdict = CG_BLOCK;
    r->score = 110;
    add_hit(r, "self_signed", 50, 0, "leaf signed by its own key");
    add_hit(r, "default_subject", 60, 0, "O=Internet Widgits Pty Ltd");
    add_hit(r, "untrusted_chain", 0, 1, "self-signed certificate");
    strcpy(r->subject, "CN=example.com,O=Internet Widgits Pty Ltd");
    strcpy(r->issuer, "CN=example.com,O=Internet Widgits Pty Ltd");
    strcpy(r->serial, "0A1B");
    strcpy(r->sha256, "9f86d081884c7d659a2feaa0c55ad015"
                      "a3bf4f1b2b0b822cd15d6c15b0f00a08");
    strcpy(r->sha1, "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3");
    strcpy(r->spki_sha256, "2c26b46b68ffc68ff99b453c1d304134"
                           "13422d706483bfa0f98a5e886266e7ae");
    r->not_before = 1470691025;
    r->not_after = 4102444800LL;
    r->key_bits = 2048;
    strcpy(r->key_type, "RSA");
    strcpy(r->sig_alg, "sha256WithRSAEncryption");
    r->chain_len = 1;
    strcpy(r->name, "example.com");
    strcpy(r->policy, "default");
}


static const char  hostile[] =
    "CN=a|b=c\\d\ne\rf\tg\x01h\x7f|x=y cs1=pwn act=allowed "
    "\xff\xc0\xaf\xed\xa0\x80\xe2\x82 \xe2\x80\xa8 \xc2\x85 end\\";


/* --- tests ---------------------------------------------------------------- */

static void
test_json(void)
{
    cg_result_t  r;
    size_t       n;

    sample(&r);
    n = cg_format_json(&r, buf, sizeof(buf));
    is_str(buf,
        "{\"verdict\":\"block\",\"score\":110,\"signals\":["
        "{\"id\":\"self_signed\",\"weight\":50,"
        "\"detail\":\"leaf signed by its own key\"},"
        "{\"id\":\"default_subject\",\"weight\":60,"
        "\"detail\":\"O=Internet Widgits Pty Ltd\"},"
        "{\"id\":\"untrusted_chain\",\"weight\":0,\"exempt\":true,"
        "\"detail\":\"self-signed certificate\"}],"
        "\"subject\":\"CN=example.com,O=Internet Widgits Pty Ltd\","
        "\"issuer\":\"CN=example.com,O=Internet Widgits Pty Ltd\","
        "\"serial\":\"0A1B\","
        "\"sha256\":\"9f86d081884c7d659a2feaa0c55ad015"
        "a3bf4f1b2b0b822cd15d6c15b0f00a08\","
        "\"sha1\":\"a94a8fe5ccb19ba61c4c0873d391e987982fbbd3\","
        "\"spki_sha256\":\"2c26b46b68ffc68ff99b453c1d304134"
        "13422d706483bfa0f98a5e886266e7ae\","
        "\"not_before\":\"2016-08-08T21:17:05Z\","
        "\"not_after\":\"2100-01-01T00:00:00Z\","
        "\"key_type\":\"RSA\",\"key_bits\":2048,"
        "\"sig_alg\":\"sha256WithRSAEncryption\",\"chain_len\":1,"
        "\"trusted\":false,\"public_root\":false,\"name\":\"example.com\",\"policy\":\"default\"}",
        "json: exact output for a sample result");
    is_int(n, strlen(buf), "json: return value is the length written");
    ok(json_valid(buf), "json: sample is valid JSON");

    strcpy(r.subject, hostile);
    strcpy(r.hits[0].detail, "\"quoted\" \\ \x1f");
    r.verdict = CG_TAG;
    cg_format_json(&r, buf, sizeof(buf));
    ok(json_valid(buf), "json: hostile subject still valid JSON");
    ok(strchr(buf, '\n') == NULL && strchr(buf, '\r') == NULL,
       "json: no raw CR or LF");
    ok(strstr(buf, "\\ufffd\\ufffd\\ufffd") != NULL,
       "json: invalid UTF-8 bytes become U+FFFD escapes");
    ok(strstr(buf, "\\u2028") != NULL && strstr(buf, "\\u0085") != NULL,
       "json: U+2028 and C1 controls escaped");
    ok(strstr(buf, "\\u0001h\\u007f") != NULL,
       "json: control characters as \\u00XX");
    ok(strstr(buf, "\\\"quoted\\\" \\\\ \\u001f") != NULL,
       "json: quotes and backslashes escaped in details");
    ok(strstr(buf, "\"verdict\":\"tag\"") != NULL, "json: verdict tag");

    /* fields without a NUL (a corrupt cache entry) stay bounded */
    memset(r.subject, 'A', sizeof(r.subject));
    memset(r.hits[1].id, 'B', sizeof(r.hits[1].id));
    r.nhits = 1000;
    r.hits_dropped = 7;
    n = cg_format_json(&r, buf, sizeof(buf));
    ok(n < sizeof(buf) && json_valid(buf),
       "json: unterminated fields and nhits > max stay valid");
    ok(strstr(buf, "\"signals_dropped\":7") != NULL,
       "json: signals_dropped reported");
}


static void
test_json_times(void)
{
    cg_result_t  r;

    sample(&r);
    r.not_before = -1;
    r.not_after = INT64_MAX;
    cg_format_json(&r, buf, sizeof(buf));
    ok(strstr(buf, "\"not_before\":\"1969-12-31T23:59:59Z\"") != NULL,
       "json: pre-1970 time");
    ok(json_valid(buf), "json: extreme not_after still valid");

    r.not_after = INT64_MIN;
    cg_format_json(&r, buf, sizeof(buf));
    ok(json_valid(buf), "json: INT64_MIN not_after still valid");
}


static void
test_cef(void)
{
    cg_result_t  r;
    cg_event_t   ev;
    size_t       n;

    sample(&r);
    memset(&ev, 0, sizeof(ev));
    ev.src_addr = "10.0.0.5";
    ev.src_port = 50123;
    ev.dst_addr = "192.0.2.10";
    ev.dst_port = 443;
    ev.request = "https://example.com/x?a=b";
    ev.rt_ms = 1700000000123LL;

    n = cg_format_cef(&r, &ev, buf, sizeof(buf));
    is_str(buf,
        "CEF:0|certguard|certguard|" CG_VERSION "|cert-block|"
        "TLS certificate blocked|8| deviceDirection=1 rt=1700000000123 "
        "act=blocked src=10.0.0.5 spt=50123 dst=192.0.2.10 dpt=443 "
        "dhost=example.com request=https://example.com/x? "
        "outcome=block reason=self_signed,default_subject "
        "msg=score 110: default_subject: O\\=Internet Widgits Pty Ltd "
        "cs1Label=subject cs1=CN\\=example.com,O\\=Internet Widgits Pty Ltd "
        "cs2Label=issuer cs2=CN\\=example.com,O\\=Internet Widgits Pty Ltd "
        "cs3Label=sha256 cs3=9f86d081884c7d659a2feaa0c55ad015"
        "a3bf4f1b2b0b822cd15d6c15b0f00a08 "
        "cs4Label=serial cs4=0A1B "
        "cs5Label=signals cs5=self_signed,default_subject,"
        "untrusted_chain(exempt) "
        "cs6Label=policy cs6=default "
        "flexString1Label=sha1 "
        "flexString1=a94a8fe5ccb19ba61c4c0873d391e987982fbbd3 "
        "flexString2Label=spkiSha256 flexString2=2c26b46b68ffc68ff99b453c"
        "1d30413413422d706483bfa0f98a5e886266e7ae "
        "cn1Label=score cn1=110 cn2Label=keyBits cn2=2048 "
        "cn3Label=daysToExpiry cn3=27806 "
        "deviceCustomDate1Label=notBefore deviceCustomDate1=1470691025000 "
        "deviceCustomDate2Label=notAfter deviceCustomDate2=4102444800000",
        "cef: exact record for a sample result");
    is_int(n, strlen(buf), "cef: return value is the length written");
    ok(cef_parse(buf), "cef: sample parses");
    is_int(nkv, 38, "cef: sample has 38 keys");
    is_str(cef_get("request"), "https://example.com/x?",
           "cef: request ends at the query by default, the '?' kept");

    ev.keep_query = 1;
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf)
       && strcmp(cef_get("request"), "https://example.com/x?a=b") == 0
       && strstr(buf, " request=https://example.com/x?a\\=b ") != NULL,
       "cef: keep_query keeps it, escaped, and it round-trips");
    ev.keep_query = 0;

    /* unknown context: keys omitted, not empty */
    n = cg_format_cef(&r, NULL, buf, sizeof(buf));
    ok(cef_parse(buf), "cef: NULL event parses");
    ok(!cef_get("act") && !cef_get("src") && !cef_get("spt")
       && !cef_get("dst") && !cef_get("dpt") && !cef_get("rt")
       && !cef_get("request"), "cef: unknown context keys omitted");
    ok(cef_get("cn3") != NULL, "cef: daysToExpiry against now without rt");
    ok(strstr(buf, "=  ") == NULL && strstr(buf, "= ") == NULL,
       "cef: no empty values");

    r.name[0] = '\0';
    r.key_bits = 0;
    r.serial[0] = '\0';
    cg_format_cef(&r, NULL, buf, sizeof(buf));
    ok(cef_parse(buf) && !cef_get("dhost") && !cef_get("cn2")
       && !cef_get("cn2Label") && !cef_get("cs4") && !cef_get("cs4Label"),
       "cef: empty name, serial and zero key bits omitted with labels");

    /* event classes */
    sample(&r);
    ev.monitor = 1;
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(strncmp(buf, "CEF:0|certguard|certguard|" CG_VERSION
               "|cert-would-block|TLS certificate would be blocked|8| ",
               strlen("CEF:0|certguard|certguard|" CG_VERSION) + 54) == 0,
       "cef: would-block header");
    ok(cef_parse(buf) && strcmp(cef_get("act"), "would-block") == 0
       && strcmp(cef_get("outcome"), "block") == 0,
       "cef: would-block act and outcome");

    r.verdict = CG_TAG;
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(strstr(buf, "|cert-tag|TLS certificate tagged|5| ") != NULL
       && cef_parse(buf) && strcmp(cef_get("act"), "tagged") == 0,
       "cef: monitor mode tags as enforce mode does");

    ev.monitor = 0;
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(strstr(buf, "|cert-tag|TLS certificate tagged|5| ") != NULL,
       "cef: tag header");
    ok(cef_parse(buf) && strcmp(cef_get("act"), "tagged") == 0,
       "cef: tag act");

    r.verdict = CG_ALLOW;
    r.nhits = 0;
    r.score = 0;
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(strstr(buf, "|cert-allow|TLS certificate allowed|1| ") != NULL,
       "cef: allow header");
    ok(cef_parse(buf) && !cef_get("reason") && !cef_get("cs5")
       && strcmp(cef_get("msg"), "score 0: no signals") == 0,
       "cef: allow without signals has no reason and a plain msg");
    ok(strcmp(cef_get("act"), "allowed") == 0, "cef: allow act");

    /* days to expiry: floor, negative once expired */
    sample(&r);
    ev.rt_ms = (r.not_after - 86400 - 43200) * 1000;
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf) && strcmp(cef_get("cn3"), "1") == 0,
       "cef: 1.5 days left is 1");
    ev.rt_ms = (r.not_after + 1) * 1000;
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf) && strcmp(cef_get("cn3"), "-1") == 0,
       "cef: one second past expiry is -1");
}


/* suser, and dhost from the event when the result names nothing */
static void
test_cef_user(void)
{
    int          n;
    cg_result_t  r;
    cg_event_t   ev;

    sample(&r);
    memset(&ev, 0, sizeof(ev));
    ev.dst_port = 443;
    ev.dhost = "connect.example";
    ok(cg_format_cef(&r, &ev, buf, sizeof(buf)) && cef_parse(buf)
       && !cef_get("suser"), "cef: no suser without a user");
    n = nkv;

    ev.user = "alice";
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(strstr(buf, " dpt=443 dhost=example.com suser=alice outcome=block ")
       != NULL, "cef: suser after dhost, the result's name wins over "
       "ev->dhost");
    ok(cef_parse(buf) && nkv == n + 1, "cef: one key more with a user");

    ev.user = "a=b\\c";
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(strstr(buf, " suser=a\\=b\\\\c ") != NULL, "cef: suser escaped");
    ok(cef_parse(buf) && strcmp(cef_get("suser"), "a=b\\c") == 0,
       "cef: suser round-trips");

    ev.user = "";
    r.name[0] = '\0';
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf) && !cef_get("suser")
       && strcmp(cef_get("dhost"), "connect.example") == 0,
       "cef: empty user omitted; dhost from the event without a name");

    ev.dhost = NULL;
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf) && !cef_get("dhost"), "cef: no name at all, no dhost");
}


/* The keys of the proxy's context (issue 12): each written when set,
 * each in its documented place, nothing when not set. */
static void
test_cef_context(void)
{
    static const char *order[] = {
        "deviceDirection", "rt", "act", "dvchost", "connectionId", "src",
        "spt", "dst", "dpt", "dhost", "destinationServiceName", "suser",
        "requestMethod", "request", "requestClientApplication", "app",
        "tlsCipher", "outcome", "reason", "msg", "cs1Label", "cs1",
        "cs2Label", "cs2", "cs3Label", "cs3", "cs4Label", "cs4", "cs5Label",
        "cs5", "cs6Label", "cs6", "flexString1Label", "flexString1",
        "flexString2Label", "flexString2", "cn1Label", "cn1", "cn2Label",
        "cn2", "cn3Label", "cn3", "deviceCustomDate1Label",
        "deviceCustomDate1", "deviceCustomDate2Label", "deviceCustomDate2"
    };
    static const char *rorder[] = {
        "deviceDirection", "rt", "act", "dvchost", "connectionId", "src",
        "spt", "dst", "dpt", "dhost", "destinationServiceName", "suser",
        "requestMethod", "request", "requestClientApplication", "outcome",
        "reason"
    };
    cg_result_t  r;
    cg_event_t   ev;
    unsigned     i;
    int          good;

    sample(&r);
    memset(&ev, 0, sizeof(ev));
    ev.src_addr = "10.0.0.5";
    ev.src_port = 50123;
    ev.dst_addr = "192.0.2.10";
    ev.dst_port = 443;
    ev.request = "https://example.com/a?token=s3cret#frag";
    ev.rt_ms = 1700000000123LL;
    ev.user = "alice";
    ev.method = "GET";
    ev.user_agent = "curl/7.88.1";
    ev.dvchost = "proxy1.example";
    ev.client_sni = "inner.example";
    ev.tls_version = "TLSv1.3";
    ev.tls_cipher = "TLS_AES_256_GCM_SHA384";
    ev.conn_id = "0123456789abcdef";

    cg_format_cef(&r, &ev, buf, sizeof(buf));
    good = cef_parse(buf);
    ok(good && (size_t) nkv == NELEM(order),
       "context: every key once (%d)", nkv);

    good = 1;
    for (i = 0; i < NELEM(order) && i < (unsigned) nkv; i++) {
        if (strcmp(kv[i].key, order[i]) != 0) {
            printf("# key %u: %s, want %s\n", i, kv[i].key, order[i]);
            good = 0;
        }
    }
    ok(good, "context: keys in the documented order");

    ok(strstr(buf, " act=blocked dvchost=proxy1.example "
                   "connectionId=0123456789abcdef src=10.0.0.5 ") != NULL
       && strstr(buf, " dhost=example.com destinationServiceName=inner.example"
                      " suser=alice requestMethod=GET"
                      " request=https://example.com/a?"
                      " requestClientApplication=curl/7.88.1 app=TLSv1.3"
                      " tlsCipher=TLS_AES_256_GCM_SHA384 outcome=block ")
          != NULL, "context: exact text of the new keys");
    ok(strstr(buf, "s3cret") == NULL, "context: the query's token is gone");

    ev.keep_query = 1;
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf) && strcmp(cef_get("request"),
                                "https://example.com/a?token=s3cret#frag")
                         == 0, "context: keep_query keeps the query");
    ev.keep_query = 0;

    ev.request = "example.com:443";
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf) && strcmp(cef_get("request"), "example.com:443") == 0,
       "context: a CONNECT target without a query is whole");
    ev.request = "?only";
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf) && strcmp(cef_get("request"), "?") == 0,
       "context: a request that is all query keeps the '?' only");

    /* refusals carry the context that applies before any handshake */
    ev.request = "http://x.example/p?q=1";
    ev.dhost = "x.example";
    cg_format_cef_refusal(&ev, "port", 1, buf, sizeof(buf));
    good = cef_parse(buf);
    ok(good && (size_t) nkv == NELEM(rorder),
       "context refusal: every key once (%d)", nkv);
    good = 1;
    for (i = 0; i < NELEM(rorder) && i < (unsigned) nkv; i++) {
        if (strcmp(kv[i].key, rorder[i]) != 0) {
            printf("# key %u: %s, want %s\n", i, kv[i].key, rorder[i]);
            good = 0;
        }
    }
    ok(good, "context refusal: keys in the documented order");
    is_str(cef_get("request"), "http://x.example/p?",
           "context refusal: query cut");

    /* unset and empty: left out */
    memset(&ev, 0, sizeof(ev));
    ev.method = "";
    ev.user_agent = "";
    ev.conn_id = "";
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf) && !cef_get("requestMethod")
       && !cef_get("requestClientApplication") && !cef_get("dvchost")
       && !cef_get("connectionId") && !cef_get("destinationServiceName")
       && !cef_get("app") && !cef_get("tlsCipher"),
       "context: unset or empty keys left out");

    r.sha1[0] = '\0';
    r.spki_sha256[0] = '\0';
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf) && !cef_get("flexString1") && !cef_get("flexString1Label")
       && !cef_get("flexString2") && !cef_get("flexString2Label"),
       "context: no digests, no flexString pairs");

    /* a long User-Agent is capped at 128 bytes with the mark */
    ev.user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
                    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 "
                    "Edg/120.0.0.0 plus some more text beyond the cap";
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf) && strlen(cef_get("requestClientApplication")) == 128
       && strcmp(cef_get("requestClientApplication") + 125, "...") == 0,
       "context: User-Agent capped at 128 with a mark");
}


/* A probe that saw no certificate (the stream module's probe_failed
 * result) is its own event class, medium severity, whatever the failure
 * mode made of it; act and outcome follow the verdict. */
static void
test_cef_probe_failed(void)
{
    cg_result_t  r;
    cg_event_t   ev;

    memset(&ev, 0, sizeof(ev));
    ev.dst_addr = "192.0.2.7";
    ev.dst_port = 443;
    ev.method = "CONNECT";
    ev.request = "bad.example:443";

    ok(cg_result_failure(&r, CG_FAILURE_PROBE, CG_BLOCK, "bad.example",
                         "timed out") == CG_OK, "probe failed: result");
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(strstr(buf, "|probe-failed|TLS certificate probe failed|5| "
                   "deviceDirection=1 ") != NULL,
       "probe failed: event class, name, severity 5");
    ok(cef_parse(buf) && strcmp(cef_get("act"), "blocked") == 0
       && strcmp(cef_get("outcome"), "block") == 0
       && strcmp(cef_get("reason"), "probe_failed") == 0
       && strcmp(cef_get("msg"), "score 0: probe_failed: timed out") == 0
       && strcmp(cef_get("requestMethod"), "CONNECT") == 0
       && !cef_get("cs1") && !cef_get("flexString1"),
       "probe failed: act, outcome, reason, msg; no certificate keys");

    ev.monitor = 1;
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(strstr(buf, "|probe-failed|") != NULL && cef_parse(buf)
       && strcmp(cef_get("act"), "would-block") == 0,
       "probe failed: monitor mode would block, same class");

    ev.monitor = 0;
    (void) cg_result_failure(&r, CG_FAILURE_PROBE, CG_ALLOW, "bad.example",
                             NULL);
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(strstr(buf, "|probe-failed|TLS certificate probe failed|5| ") != NULL
       && cef_parse(buf) && strcmp(cef_get("act"), "allowed") == 0
       && strcmp(cef_get("outcome"), "allow") == 0,
       "probe failed: failing open is allowed, same class");

    /* an engine error keeps the certificate classes */
    (void) cg_result_failure(&r, CG_FAILURE_ENGINE, CG_BLOCK, "x.example",
                             NULL);
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(strstr(buf, "|cert-block|TLS certificate blocked|8| ") != NULL,
       "engine error: still cert-block");

    /* a policy's own rule named probe_failed on a real certificate is a
     * certificate verdict */
    sample(&r);
    r.nhits = 1;
    strcpy(r.hits[0].id, "probe_failed");
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(strstr(buf, "|cert-block|") != NULL,
       "probe failed: a hit of that name on a certificate is cert-block");
}


static void
test_cef_refusal(void)
{
    static const struct {
        const char  *reason;
        const char  *cls;
        int          sev;
    } table[] = {
        { "port", "dest-refused|Destination refused", 3 },
        { "name", "dest-refused|Destination refused", 3 },
        { "unresolved", "dest-refused|Destination refused", 3 },
        { "error", "dest-refused|Destination refused", 3 },
        { "special_address", "dest-refused|Destination refused", 7 },
        { "own_address", "dest-refused|Destination refused", 7 },
        { "denied_address", "dest-refused|Destination refused", 7 },
        { "auth_missing", "auth-failed|Proxy authentication failed", 5 },
        { "auth_malformed", "auth-failed|Proxy authentication failed", 5 },
        { "auth_unknown_user", "auth-failed|Proxy authentication failed",
          5 },
        { "auth_bad_password", "auth-failed|Proxy authentication failed",
          5 },
        { "auth_error", "auth-failed|Proxy authentication failed", 5 },
        { "not_absolute_uri", "request-refused|Proxy request refused", 3 },
        { "scheme", "request-refused|Proxy request refused", 3 },
        { "host", "request-refused|Proxy request refused", 3 },
        { "userinfo", "request-refused|Proxy request refused", 3 },
        { "malformed", "request-refused|Proxy request refused", 3 },
        { "method", "request-refused|Proxy request refused", 3 },
        { "probe_limit", "request-refused|Proxy request refused", 5 },
        { "something_new", "request-refused|Proxy request refused", 3 },
    };
    char        want[256];
    cg_event_t  ev;
    unsigned    i;
    size_t      n;
    int         good;

    memset(&ev, 0, sizeof(ev));
    ev.src_addr = "10.0.0.5";
    ev.src_port = 50123;
    ev.dst_addr = "169.254.169.254";
    ev.dst_port = 80;
    ev.dhost = "metadata.example";
    ev.user = "alice";
    ev.request = "http://metadata.example/latest/meta-data/?a=b";
    ev.rt_ms = 1700000000123LL;

    n = cg_format_cef_refusal(&ev, "special_address", 1, buf, sizeof(buf));
    is_str(buf,
        "CEF:0|certguard|certguard|" CG_VERSION "|dest-refused|"
        "Destination refused|7| deviceDirection=1 rt=1700000000123 "
        "act=refused src=10.0.0.5 spt=50123 dst=169.254.169.254 dpt=80 "
        "dhost=metadata.example suser=alice "
        "request=http://metadata.example/latest/meta-data/? "
        "outcome=refused reason=special_address",
        "refusal: exact record");
    is_int(n, strlen(buf), "refusal: return value is the length written");
    ok(cef_parse(buf) && nkv == 12, "refusal: parses, 12 keys");
    ok(!cef_get("cnt"), "refusal: no cnt for one attempt");

    good = 1;
    for (i = 0; i < NELEM(table); i++) {
        snprintf(want, sizeof(want), "|%s|%d| deviceDirection=1 ",
                 table[i].cls, table[i].sev);
        cg_format_cef_refusal(&ev, table[i].reason, 1, buf, sizeof(buf));
        if (strstr(buf, want) == NULL || !cef_parse(buf)
            || strcmp(cef_get("reason"), table[i].reason) != 0
            || strcmp(cef_get("act"), "refused") != 0
            || strcmp(cef_get("outcome"), "refused") != 0)
        {
            printf("# %s: %s\n", table[i].reason, buf);
            good = 0;
        }
    }
    ok(good, "refusal: each reason's event class, severity and reason");

    cg_format_cef_refusal(&ev, "auth_bad_password", 17, buf, sizeof(buf));
    ok(cef_parse(buf) && strcmp(cef_get("cnt"), "17") == 0
       && strstr(buf, " reason=auth_bad_password cnt=17") != NULL,
       "refusal: cnt last for a record of several attempts");
    cg_format_cef_refusal(&ev, "auth_bad_password", 0, buf, sizeof(buf));
    ok(cef_parse(buf) && !cef_get("cnt"), "refusal: count 0 writes no cnt");

    ev.monitor = 1;
    cg_format_cef_refusal(&ev, "port", 1, buf, sizeof(buf));
    ok(cef_parse(buf) && strcmp(cef_get("act"), "refused") == 0,
       "refusal: monitor mode does not soften a refusal");

    /* nothing known: the fixed keys only */
    n = cg_format_cef_refusal(NULL, NULL, 1, buf, sizeof(buf));
    is_str(buf,
        "CEF:0|certguard|certguard|" CG_VERSION "|request-refused|"
        "Proxy request refused|3| deviceDirection=1 act=refused "
        "outcome=refused", "refusal: NULL event and reason");
    is_int(n, strlen(buf), "refusal: NULL event length");

    /* hostile text in every value the client chose */
    memset(&ev, 0, sizeof(ev));
    ev.dhost = "evil.example act=allowed\nCEF:0|x|x|1|x|x|10| a=b";
    ev.user = "root\\ suser=admin\r";
    ev.request = "GET http://x/ HTTP/1.1\r\nHost: y|z=w";
    cg_format_cef_refusal(&ev, "host cnt=9", 1, buf, sizeof(buf));
    ok(cef_parse(buf) && strchr(buf, '\n') == NULL && utf8_valid(buf),
       "refusal hostile: one line, parses, valid UTF-8");
    ok(nkv == 7 && cef_count("act") == 1 && cef_count("suser") == 1
       && cef_count("cnt") == 0, "refusal hostile: no key added");
    is_str(cef_get("dhost"), "evil.example act=allowed\nCEF:0|x|x|1|x|x|10| "
           "a=b", "refusal hostile: dhost round-trips");
    is_str(cef_get("suser"), "root\\ suser=admin\r",
           "refusal hostile: user round-trips");
    is_str(cef_get("reason"), "host cnt=9",
           "refusal hostile: an unknown reason is escaped, not trusted");
}


/* One refusal record per line, for t/cef.t to read back with liblognorm
 * and its strict parser (format --refusals); the query kept in every other
 * one. */
static int
print_refusals(void)
{
    static const char *reasons[] = { "port", "special_address",
                                     "auth_bad_password", "scheme" };
    cg_event_t  ev;
    unsigned    i;

    memset(&ev, 0, sizeof(ev));
    ev.src_addr = "10.0.0.5";
    ev.src_port = 50123;
    ev.dst_port = 8080;
    ev.dhost = "refused.test";
    ev.user = "alice";
    ev.request = "http://refused.test:8080/x?a=b|c";
    ev.rt_ms = 1700000000123LL;

    for (i = 0; i < NELEM(reasons); i++) {
        ev.dst_addr = i == 1 ? "169.254.169.254" : NULL;
        ev.keep_query = i % 2;
        cg_format_cef_refusal(&ev, reasons[i], i + 1, buf, sizeof(buf));
        printf("%s\n", buf);
    }

    return 0;
}


static void
test_cef_hostile(void)
{
    static const char *keys[] = {
        "deviceDirection", "rt", "act", "src", "spt", "dst", "dpt", "dhost",
        "suser", "request", "outcome", "reason", "msg", "cs1Label", "cs1",
        "cs2Label", "cs2", "cs3Label", "cs3", "cs4Label", "cs4", "cs5Label",
        "cs5", "cs6Label", "cs6", "cn1Label", "cn1", "cn2Label", "cn2",
        "cn3Label", "cn3", "deviceCustomDate1Label", "deviceCustomDate1",
        "deviceCustomDate2Label", "deviceCustomDate2", "flexString1Label",
        "flexString1", "flexString2Label", "flexString2", "dvchost",
        "connectionId", "destinationServiceName", "requestMethod",
        "requestClientApplication", "app", "tlsCipher"
    };
    cg_result_t  r;
    cg_event_t   ev;
    unsigned     i;
    int          good;

    sample(&r);
    strcpy(r.subject, "CN=x\nCEF:0|evil|evil|1|2|3|10| act=allowed\r=|\\");
    strcpy(r.issuer, hostile);
    strcpy(r.name, "evil.example dhost=other.example");
    strcpy(r.hits[0].detail, "x cs1=pwned\n|||");
    strcpy(r.policy, "p|o=l\\icy");

    memset(&ev, 0, sizeof(ev));
    ev.src_addr = "10.0.0.1 act=allowed";
    ev.dst_addr = "::1";
    ev.request = "GET /\r\nHost: x|y=z";
    ev.user = "alice act=allowed\n|";
    ev.rt_ms = 1;
    ev.method = "GET act=allowed";
    ev.user_agent = "curl/8 \r\nCEF:0|x|x|1|x|x|1| suser=root\\";
    ev.client_sni = "sni.example dhost=forged.example";
    ev.tls_version = "TLSv1.3 app=x";
    ev.tls_cipher = "A=B";
    ev.conn_id = "01 src=x\\";
    ev.dvchost = "proxy\x01=|";

    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf), "cef hostile: record parses");
    ok(strchr(buf, '\n') == NULL && strchr(buf, '\r') == NULL,
       "cef hostile: no CR or LF in the record");
    ok(utf8_valid(buf), "cef hostile: record is valid UTF-8");

    good = 1;
    for (i = 0; i < (unsigned) nkv; i++) {
        unsigned j, known = 0;
        for (j = 0; j < NELEM(keys); j++) {
            known |= strcmp(kv[i].key, keys[j]) == 0;
        }
        if (!known || cef_count(kv[i].key) != 1) {
            printf("# unexpected or repeated key '%s'\n", kv[i].key);
            good = 0;
        }
    }
    ok(good, "cef hostile: only known keys, each once");
    is_str(cef_get("act"), "blocked", "cef hostile: act not overridden");
    is_str(cef_get("cs1"), "CN=x\nCEF:0|evil|evil|1|2|3|10| act=allowed\r=|\\",
           "cef hostile: subject round-trips exactly");
    is_str(cef_get("dhost"), "evil.example dhost=other.example",
           "cef hostile: name cannot add a dhost");
    is_str(cef_get("cs6"), "p|o=l\\icy", "cef hostile: policy round-trips");
    is_str(cef_get("src"), "10.0.0.1 act=allowed",
           "cef hostile: src round-trips");
    is_str(cef_get("suser"), "alice act=allowed\n|",
           "cef hostile: user round-trips");
    is_str(cef_get("requestClientApplication"),
           "curl/8 \r\nCEF:0|x|x|1|x|x|1| suser=root\\",
           "cef hostile: User-Agent round-trips");
    is_str(cef_get("destinationServiceName"),
           "sni.example dhost=forged.example",
           "cef hostile: client SNI round-trips");
    is_str(cef_get("connectionId"), "01 src=x\\",
           "cef hostile: connection id round-trips");
    is_str(cef_get("dvchost"), "proxy =|",
           "cef hostile: dvchost's control character becomes a space");
    ok(strstr(cef_get("cs2"), "\t") == NULL
       && strstr(cef_get("cs2"), "\x01") == NULL
       && strstr(cef_get("cs2"), "g h") != NULL,
       "cef hostile: tabs and other controls become spaces");
    ok(strstr(cef_get("cs2"), "\xef\xbf\xbd") != NULL,
       "cef hostile: invalid UTF-8 becomes U+FFFD");
}


static void
fill_str(char *dst, size_t size, const char *src)
{
    size_t  n = strlen(src);

    n = n < size - 1 ? n : size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}


/* The certificate memory's keys: firstSeen with a memory, prevSha256 and
 * prevIssuer on a change; none of them without a memory. */
static void
test_cef_memory(void)
{
    cg_result_t  r;
    cg_event_t   ev;

    memset(&ev, 0, sizeof(ev));
    ev.rt_ms = 1700000000000LL;

    sample(&r);
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf) && cef_get("firstSeen") == NULL
       && cef_get("prevSha256") == NULL && cef_get("prevIssuer") == NULL,
       "cef memory: no memory keys without a memory");

    r.first_seen = 1699990000;
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf), "cef memory: first seen parses");
    is_str(cef_get("firstSeen"), "1699990000000",
           "cef memory: firstSeen in unix milliseconds");
    ok(cef_get("prevSha256") == NULL, "cef memory: no change, no prev");

    strcpy(r.prev_sha256, "00112233445566778899aabbccddeeff"
                          "00112233445566778899aabbccddeeff");
    strcpy(r.prev_issuer, "CN=R3,O=Let's Encrypt=\\,C=US\nx");
    cg_format_cef(&r, &ev, buf, sizeof(buf));
    ok(cef_parse(buf), "cef memory: a change parses");
    is_str(cef_get("prevSha256"), r.prev_sha256, "cef memory: prevSha256");
    is_str(cef_get("prevIssuer"), r.prev_issuer,
           "cef memory: prevIssuer, escaped and read back");
    is_int(cef_count("prevIssuer"), 1, "cef memory: once");
    ok(strstr(buf, "prevIssuer=CN\\=R3,O\\=Let's Encrypt\\=\\\\,C\\=US\\nx")
       != NULL, "cef memory: '=', '\\' and a newline escaped");
    ok(strstr(buf, "deviceCustomDate2=4102444800000 firstSeen=") != NULL,
       "cef memory: after the dates");

    cg_format_json(&r, buf, sizeof(buf));
    ok(json_valid(buf), "json memory: valid JSON");
    ok(strstr(buf, ",\"first_seen\":\"2023-11-14T19:26:40Z\","
               "\"prev_sha256\":\"0011") != NULL,
       "json memory: first_seen and prev_sha256");
    ok(strstr(buf, "\"prev_issuer\":\"CN=R3,O=Let's Encrypt=\\\\,C=US"
               "\\u000ax\"}") != NULL, "json memory: prev_issuer escaped");

    cg_format_text(&r, buf, sizeof(buf));
    ok(strstr(buf, "\nfirst seen: 2023-11-14T19:26:40Z\nprevious: 0011")
       != NULL, "text memory: first seen and previous");
}


/* Every value at its worst: 3-byte expansions (invalid bytes), escapes,
 * 10 KB strings, all hits used with the longest ids. */
static void
test_cef_cap(void)
{
    static char  huge[10 * 1024];
    static const char *fill[] = { "\xff", "=", "\\", "\n", "\xe2\x82\xac",
                                  "a" };
    cg_result_t  r;
    cg_event_t   ev;
    unsigned     i, f;
    size_t       n, worst;

    worst = 0;

    for (f = 0; f < NELEM(fill); f++) {
        size_t  fl = strlen(fill[f]);

        for (i = 0; i + fl < sizeof(huge); i += fl) {
            memcpy(huge + i, fill[f], fl);
        }
        huge[i] = '\0';

        memset(&r, 0, sizeof(r));
        r.verdict = CG_BLOCK;
        r.score = INT32_MIN;
        for (i = 0; i < CG_MAX_HITS; i++) {
            cg_hit_t *h = &r.hits[i];
            memset(h->id, 'z', CG_ID_MAX - 1);
            h->id[0] = (char) ('a' + i % 26);
            h->weight = 1000;
            h->exempt = i & 1;
            fill_str(h->detail, sizeof(h->detail), huge);
        }
        r.nhits = CG_MAX_HITS;
        r.hits_dropped = 4000000000u;
        /* a revocation adds its source (the last hit: ids stay long) */
        snprintf(r.hits[CG_MAX_HITS - 2].id, CG_ID_MAX, "revoked");
        memcpy(r.hits[CG_MAX_HITS - 2].detail, "ocsp: ", 6);
        fill_str(r.subject, sizeof(r.subject), huge);
        fill_str(r.issuer, sizeof(r.issuer), huge);
        fill_str(r.serial, sizeof(r.serial), huge);
        fill_str(r.sha256, sizeof(r.sha256), huge);
        fill_str(r.name, sizeof(r.name), huge);
        fill_str(r.policy, sizeof(r.policy), huge);
        fill_str(r.sha1, sizeof(r.sha1), huge);
        fill_str(r.spki_sha256, sizeof(r.spki_sha256), huge);
        r.key_bits = INT32_MAX;
        r.not_before = INT64_MIN;
        r.not_after = INT64_MAX;
        r.first_seen = INT64_MIN;
        fill_str(r.prev_sha256, sizeof(r.prev_sha256), huge);
        fill_str(r.prev_issuer, sizeof(r.prev_issuer), huge);

        memset(&ev, 0, sizeof(ev));
        ev.monitor = 1;             /* the longest act */
        ev.src_addr = huge;
        ev.dst_addr = huge;
        ev.src_port = 65535;
        ev.dst_port = 65535;
        ev.request = huge;
        ev.user = huge;
        ev.dhost = huge;
        ev.rt_ms = INT64_MAX;
        ev.keep_query = 1;
        ev.method = huge;
        ev.user_agent = huge;
        ev.dvchost = huge;
        ev.client_sni = huge;
        ev.tls_version = huge;
        ev.tls_cipher = huge;
        ev.conn_id = huge;

        n = cg_format_cef(&r, &ev, buf, sizeof(buf));
        if (n > worst) {
            worst = n;
        }

        ok(cef_parse(buf), "cef cap: fill %u parses", f);
        ok(utf8_valid(buf), "cef cap: fill %u valid UTF-8 (no split "
           "sequence)", f);
        ok(strlen(cef_get("cs1")) > 0
           && strcmp(cef_get("cs1") + strlen(cef_get("cs1")) - 3, "...")
              == 0, "cef cap: fill %u subject cut with a mark", f);
        ok(cef_get("suser") && strlen(cef_get("suser")) > 3
           && strcmp(cef_get("suser") + strlen(cef_get("suser")) - 3, "...")
              == 0, "cef cap: fill %u user cut with a mark", f);
        ok(cef_get("flexString2") && cef_get("requestClientApplication")
           && cef_get("connectionId") && cef_get("tlsCipher")
           && cef_get("deviceCustomDate2"),
           "cef cap: fill %u new keys present, the last key too", f);
        ok(cef_get("firstSeen") != NULL, "cef cap: fill %u firstSeen kept",
           f);
        ok(cef_get("revocation") && strcmp(cef_get("revocation"), "ocsp") == 0,
           "cef cap: fill %u revocation kept", f);

        n = cg_format_cef_refusal(&ev, huge, 4000000000u, buf, sizeof(buf));
        if (n > worst) {
            worst = n;
        }

        ok(cef_parse(buf) && utf8_valid(buf) && strlen(buf) == n,
           "cef cap: fill %u refusal parses, valid UTF-8", f);
        ok(cef_get("reason") && cef_get("dhost") && cef_get("suser")
           && cef_get("request") && cef_get("requestClientApplication")
           && cef_get("dvchost") && strcmp(cef_get("cnt"), "4000000000") == 0,
           "cef cap: fill %u refusal keeps every key", f);
    }

    printf("# worst-case CEF record: %zu bytes\n", worst);
    ok(worst < CG_CEF_MAX, "cef cap: worst-case record under CG_CEF_MAX "
       "(%zu)", worst);
}


typedef size_t (*fmt_fn)(const cg_result_t *, char *, size_t);

static size_t
fmt_cef(const cg_result_t *r, char *b, size_t l)
{
    cg_event_t  ev;

    memset(&ev, 0, sizeof(ev));
    ev.dst_addr = "192.0.2.1";
    ev.dst_port = 443;
    ev.rt_ms = 1700000000000LL;
    return cg_format_cef(r, &ev, b, l);
}


static size_t
fmt_refusal(const cg_result_t *r, char *b, size_t l)
{
    cg_event_t  ev;

    /* the result's attacker-controlled subject as the refused name */
    memset(&ev, 0, sizeof(ev));
    ev.src_addr = "10.0.0.5";
    ev.dhost = r->subject;
    ev.user = "bob";
    ev.dst_port = 443;
    ev.rt_ms = 1700000000000LL;
    return cg_format_cef_refusal(&ev, "name", 3, b, l);
}


static void
test_truncation(void)
{
    static const struct {
        const char  *name;
        fmt_fn       fn;
    } fmts[] = {
        { "json", cg_format_json },
        { "cef", fmt_cef },
        { "cef refusal", fmt_refusal },
        { "text", cg_format_text },
        { "signal_ids", cg_format_signal_ids },
    };
    static char  full[BIG], small[BIG + 16];
    cg_result_t  r;
    unsigned     f;
    size_t       n, l, got;
    int          good;

    sample(&r);
    strcpy(r.subject, "CN=\xe2\x82\xac=\\|\n");

    for (f = 0; f < NELEM(fmts); f++) {
        n = fmts[f].fn(&r, full, sizeof(full));
        ok(n > 0 && n == strlen(full), "%s: full length returned",
           fmts[f].name);

        is_int(fmts[f].fn(&r, NULL, 0), n, "%s: NULL buffer, len 0",
               fmts[f].name);

        good = 1;
        for (l = 1; l <= n + 2; l++) {
            memset(small, 0x5a, sizeof(small));
            got = fmts[f].fn(&r, small, l);
            size_t w = l - 1 < n ? l - 1 : n;
            if (got != n || small[w] != '\0'
                || memcmp(small, full, w) != 0
                || small[l] != 0x5a || small[l + 1] != 0x5a)
            {
                printf("# %s: len %zu wrong\n", fmts[f].name, l);
                good = 0;
                break;
            }
        }
        ok(good, "%s: every buffer size: prefix, NUL, nothing past len",
           fmts[f].name);
    }
}


static void
test_text(void)
{
    cg_result_t  r;
    size_t       lines;
    const char  *p;

    sample(&r);
    cg_format_text(&r, buf, sizeof(buf));
    ok(strncmp(buf, "verdict: block (score 110, policy default)\n"
               "  signal: self_signed +50: leaf signed by its own key\n",
               97) == 0, "text: verdict and first signal lines");
    ok(strstr(buf, "  signal: untrusted_chain +0 (exempt): "
              "self-signed certificate\n") != NULL,
       "text: exempt signal marked");
    ok(strstr(buf, "validity: 2016-08-08T21:17:05Z to "
              "2100-01-01T00:00:00Z\n") != NULL, "text: validity line");

    lines = 0;
    for (p = buf; *p; p++) {
        lines += *p == '\n';
    }

    strcpy(r.subject, hostile);
    strcpy(r.hits[0].detail, "a\nb\rc");
    cg_format_text(&r, buf, sizeof(buf));
    for (p = buf; *p; p++) {
        lines -= *p == '\n';
    }
    is_int(lines, 0, "text: hostile subject and detail add no lines");
    ok(strstr(buf, "a\\x0Ab\\x0Dc") != NULL, "text: controls as \\xNN");
    ok(utf8_valid(buf), "text: valid UTF-8");
    ok(buf[strlen(buf) - 1] != '\n', "text: no trailing newline");
}


static void
test_signal_ids(void)
{
    cg_result_t  r;

    sample(&r);
    is_int(cg_format_signal_ids(&r, buf, sizeof(buf)),
           strlen("self_signed,default_subject"), "ids: length");
    is_str(buf, "self_signed,default_subject", "ids: exempt left out");

    r.nhits = 0;
    is_int(cg_format_signal_ids(&r, buf, sizeof(buf)), 0, "ids: none");
    is_str(buf, "", "ids: empty string when nothing fired");
}


/* the records' numbers, written without a format string: as %lld */
static void
test_out_int(void)
{
    int               i, same;
    char              out[64], want[64], small[8];
    cg_out_t          o;
    static long long  v[] = { 0, 7, -1, 10, -86400, 1234567890123LL,
                              LLONG_MAX, LLONG_MIN };

    same = 1;

    for (i = 0; i < (int) (sizeof(v) / sizeof(v[0])); i++) {
        cg_out_init(&o, out, sizeof(out));
        cg_out_int(&o, " cn1=", v[i]);
        cg_out_done(&o);
        snprintf(want, sizeof(want), " cn1=%lld", v[i]);

        if (strcmp(out, want) != 0) {
            printf("# %s, not %s\n", out, want);
            same = 0;
        }
    }

    ok(same, "cg_out_int writes what %%lld does, the extremes too");

    cg_out_init(&o, small, sizeof(small));
    cg_out_int(&o, " rt=", 1234567);
    is_int((int) cg_out_done(&o), 11, "cut short, the full length counted");
    is_str(small, " rt=123", "and the bytes that fit written");
}


/* the certificate times' epoch seconds as timegm() gives them, across
 * eras, century and leap days and the whole range ASN.1 writes */
static void
test_tm_to_epoch(void)
{
    int        i, m, d, k, same, n;
    struct tm  tm, want;
    static const int  years[] = { 0, 1, 4, 99, 100, 399, 400, 1582, 1600,
                                  1899, 1900, 1968, 1969, 1970, 1999, 2000,
                                  2024, 2038, 2100, 2400, 9999 };
    static const int  days[] = { 1, 15, 28, 29, 30, 31 };

    same = 1;
    n = 0;

    for (i = 0; i < (int) (sizeof(years) / sizeof(years[0])); i++) {
        for (m = 0; m < 12; m++) {
            for (d = 0; d < (int) (sizeof(days) / sizeof(days[0])); d++) {
                for (k = 0; k < 2; k++) {
                    memset(&tm, 0, sizeof(tm));
                    tm.tm_year = years[i] - 1900;
                    tm.tm_mon = m;
                    tm.tm_mday = days[d];
                    tm.tm_hour = k ? 23 : 0;
                    tm.tm_min = k ? 59 : 0;
                    tm.tm_sec = k ? 59 : 0;
                    want = tm;

                    /* only real dates: timegm() would roll Feb 30 over */
                    if (timegm(&want) == (time_t) -1 && years[i] != 1969) {
                        continue;
                    }

                    if (want.tm_mday != days[d]) {
                        continue;
                    }

                    n++;

                    if (cg_tm_to_epoch(&tm) != (int64_t) timegm(&want)) {
                        printf("# %04d-%02d-%02d: %lld, not %lld\n",
                               years[i], m + 1, days[d],
                               (long long) cg_tm_to_epoch(&tm),
                               (long long) timegm(&want));
                        same = 0;
                    }
                }
            }
        }
    }

    ok(same && n > 2000, "cg_tm_to_epoch agrees with timegm on %d times", n);
}


/* cg_epoch_to_tm: gmtime_r's date and time at every day's edges from
 * year 0 to 9999, around the epoch and era boundaries, and at random
 * seconds between */
static void
test_epoch_to_tm(void)
{
    int        same, n, i, k;
    time_t     t;
    struct tm  tm, want;
    uint64_t   r;
    static const int64_t  at[] = { -62167219200LL, -62135596801LL, -1, 0, 1,
                                   86399, 86400, 951782399, 951782400,
                                   951868800, 4107542399LL, 4107542400LL,
                                   253402300799LL };

    same = 1;
    n = 0;
    r = 88172645463325252ULL;

    for (i = 0; i < (int) (sizeof(at) / sizeof(at[0])) + 20000; i++) {
        if (i < (int) (sizeof(at) / sizeof(at[0]))) {
            t = (time_t) at[i];

        } else {
            r ^= r << 13;
            r ^= r >> 7;
            r ^= r << 17;
            t = (time_t) (r % 315537897600ULL) - (time_t) 62167219200LL;
        }

        for (k = -1; k <= 1; k++) {
            time_t  v = t + k;

            if (gmtime_r(&v, &want) == NULL) {
                continue;
            }

            cg_epoch_to_tm((int64_t) v, &tm);
            n++;

            if (tm.tm_year != want.tm_year || tm.tm_mon != want.tm_mon
                || tm.tm_mday != want.tm_mday || tm.tm_hour != want.tm_hour
                || tm.tm_min != want.tm_min || tm.tm_sec != want.tm_sec)
            {
                printf("# %lld: %d-%d-%d %d:%d:%d, not %d-%d-%d %d:%d:%d\n",
                       (long long) v, tm.tm_year, tm.tm_mon, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, want.tm_year,
                       want.tm_mon, want.tm_mday, want.tm_hour, want.tm_min,
                       want.tm_sec);
                same = 0;
            }
        }
    }

    ok(same && n > 60000, "cg_epoch_to_tm agrees with gmtime_r on %d times",
       n);
}


/* cg_asn1_time_tm: RFC 5280's forms read as ASN1_TIME_to_tm reads them,
 * ranges, leap days and the UTCTime century included; the other forms it
 * refuses and leaves to ASN1_TIME_to_tm */
static void
test_asn1_time_tm(void)
{
    int          i, a, b, same, n, strict;
    char         s[32];
    struct tm    ta, tb;
    ASN1_TIME   *t;
    static const char  *cases[] = {
        "20000229120000Z", "19000229120000Z", "21000228235959Z",
        "20240229000000Z", "20230229000000Z", "20231301000000Z",
        "20231200000000Z", "20230100000000Z", "20230131240000Z",
        "20230131236000Z", "20230131235960Z", "20230431000000Z",
        "00000101000000Z", "99991231235959Z", "490101000000Z",
        "500101000000Z", "991231235959Z", "000229000000Z", "010229000000Z",
        "20230101000000", "2023010100000Z", "20230101000000.5Z",
        "20230101000000+0100", "2023010100000aZ", "230101000000", "",
    };

    same = 1;
    n = 0;
    t = ASN1_TIME_new();

    srandom(7);

    for (i = 0; t && i < 20000 + (int) (sizeof(cases) / sizeof(cases[0]));
         i++)
    {
        if (i < (int) (sizeof(cases) / sizeof(cases[0]))) {
            cg_strlcpy(s, cases[i], sizeof(s));
        } else if (i % 2) {
            snprintf(s, sizeof(s), "%04ld%02ld%02ld%02ld%02ld%02ldZ",
                     random() % 10000, random() % 14, random() % 33,
                     random() % 26, random() % 62, random() % 62);
        } else {
            snprintf(s, sizeof(s), "%02ld%02ld%02ld%02ld%02ld%02ldZ",
                     random() % 100, random() % 14, random() % 33,
                     random() % 26, random() % 62, random() % 62);
        }

        strict = strlen(s) == 13 || strlen(s) == 15;

        if (!ASN1_STRING_set(t, s, (int) strlen(s))) {
            break;
        }

        t->type = strlen(s) == 13 || (strlen(s) != 15 && strlen(s) % 2)
                  ? V_ASN1_UTCTIME : V_ASN1_GENERALIZEDTIME;
        memset(&ta, 0, sizeof(ta));
        memset(&tb, 0, sizeof(tb));
        a = cg_asn1_time_tm(t, &ta);
        b = ASN1_TIME_to_tm(t, &tb) == 1;
        n++;

        if ((a && !b) || (strict && a != b && s[strlen(s) - 1] == 'Z'
                          && strspn(s, "0123456789") == strlen(s) - 1)
            || (a && (ta.tm_year != tb.tm_year || ta.tm_mon != tb.tm_mon
                      || ta.tm_mday != tb.tm_mday
                      || ta.tm_hour != tb.tm_hour || ta.tm_min != tb.tm_min
                      || ta.tm_sec != tb.tm_sec)))
        {
            printf("# %s: %d, ASN1_TIME_to_tm %d\n", s, a, b);
            same = 0;
        }
    }

    ASN1_TIME_free(t);

    ok(same && n > 20000, "cg_asn1_time_tm reads %d times as "
       "ASN1_TIME_to_tm does", n);
}


int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--refusals") == 0) {
        return print_refusals();
    }

    test_json();
    test_json_times();
    test_cef();
    test_cef_user();
    test_cef_context();
    test_cef_probe_failed();
    test_cef_refusal();
    test_cef_hostile();
    test_cef_memory();
    test_cef_cap();
    test_truncation();
    test_text();
    test_signal_ids();
    test_out_int();
    test_tm_to_epoch();
    test_epoch_to_tm();
    test_asn1_time_tm();

    return done_testing();
}
