/*
 * Formatters: a result as JSON, as a CEF record, as human text; and the
 * version line.
 *
 * Every string in a result may be attacker-controlled (a certificate's
 * subject, issuer, the name a client asked for), so every formatter escapes
 * everything it prints and none of them can be made to emit a raw newline.
 * All of them follow snprintf: they write at most len bytes including the
 * NUL and return the length the full output has.
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <maxminddb.h>
#include <openssl/crypto.h>

#include "cg_internal.h"
#include "cg_out.h"


/* Caps for CEF extension values, in bytes after escaping.  With every value
 * at its cap the record is still below CG_CEF_MAX (t/unit/format.c checks
 * the worst case), so one record always fits one syslog message; records
 * of real certificates and requests stay well below 2048 bytes. */
#define CG_CEF_CAP_ACT      16
#define CG_CEF_CAP_ADDR     46
#define CG_CEF_CAP_HOST     128
#define CG_CEF_CAP_USER     64
#define CG_CEF_CAP_REQUEST  96
#define CG_CEF_CAP_REASON   120
#define CG_CEF_CAP_MSG      120
#define CG_CEF_CAP_DN       224
#define CG_CEF_CAP_HASH     64
#define CG_CEF_CAP_SERIAL   84
#define CG_CEF_CAP_SIGNALS  120
#define CG_CEF_CAP_POLICY   64
#define CG_CEF_CAP_METHOD   16
#define CG_CEF_CAP_AGENT    128
#define CG_CEF_CAP_DVCHOST  64
#define CG_CEF_CAP_TLSVER   16
#define CG_CEF_CAP_CIPHER   48
#define CG_CEF_CAP_CONNID   16
#define CG_CEF_CAP_SHA1     40
#define CG_CEF_CAP_MAX      224

#define CG_CEF_REQUEST_MAX  4096        /* bytes of a request looked at */

#define CG_TIME_LIMIT       ((int64_t) 1 << 43)     /* seconds */


static void cg_text_str(cg_out_t *o, const char *s, size_t max);
static int cg_cef_plain(unsigned char c, int header);
static size_t cg_cef_escape(char *dst, size_t cap, const char *s, size_t n,
    int header, int *all);
static void cg_cef_value(cg_out_t *o, const char *key, const char *s,
    size_t max, size_t cap);
static void cg_cef_value_len(cg_out_t *o, const char *key, const char *s,
    size_t n, size_t cap);
static void cg_cef_label(cg_out_t *o, const char *key, const char *label,
    const char *s, size_t max, size_t cap);
static void cg_cef_header(cg_out_t *o, const char *cls, const char *name,
    int sev);
static void cg_cef_device(cg_out_t *o, const cg_event_t *ev);
static void cg_cef_peers(cg_out_t *o, const cg_event_t *ev);
static void cg_cef_request(cg_out_t *o, const cg_event_t *ev);
static void cg_cef_client(cg_out_t *o, const cg_event_t *ev);
static int cg_is_probe_failure(const cg_result_t *res);
static void cg_cef_memory(cg_out_t *o, const cg_result_t *res);
static void cg_cef_revocation(cg_out_t *o, const cg_result_t *res);
static void cg_iso_time(char *buf, size_t len, int64_t t);
static int64_t cg_clamp(int64_t v, int64_t limit);
static unsigned cg_nhits(const cg_result_t *res);
static size_t cg_ids(const cg_result_t *res, char *buf, size_t len,
    int all);


/* Human text: printable UTF-8 stays, control characters become \xNN (C1
 * and separators \u{NNNN}), so a subject cannot start a line of its own. */
static void
cg_text_str(cg_out_t *o, const char *s, size_t max)
{
    char                  esc[16];
    size_t                n, i, k;
    uint32_t              cp;
    const unsigned char  *p;

    p = (const unsigned char *) s;
    n = cg_strnlen(s, max);

    for (i = 0; i < n; i += k) {
        k = cg_utf8_decode(p + i, n - i, &cp);

        if (k == 0) {
            cg_out_mem(o, "\xef\xbf\xbd", 3);
            k = 1;

        } else if (cg_is_control(cp)) {
            snprintf(esc, sizeof(esc), cp < 0x80 ? "\\x%02X" : "\\u{%04X}",
                     (unsigned) cp);
            cg_out_str(o, esc);

        } else {
            cg_out_mem(o, s + i, k);
        }
    }
}


/* a byte cg_cef_escape() writes as it is: printable ASCII but the
 * escapes' */
static int
cg_cef_plain(unsigned char c, int header)
{
    return c >= 0x20 && c < 0x7f && c != '\\' && c != (header ? '|' : '=');
}


/*
 * Escapes n bytes of s for CEF into dst, at most cap bytes, never splitting
 * an escape or a UTF-8 sequence.  Header values escape \ and |; extension
 * values escape \ and =, and write CR and LF as \r and \n.  Other control
 * characters become a space and invalid UTF-8 becomes U+FFFD, so the record
 * stays one line of valid UTF-8.  *all is set when s fitted whole.
 */
static size_t
cg_cef_escape(char *dst, size_t cap, const char *s, size_t n, int header,
    int *all)
{
    char                  tok[4];
    size_t                i, k, t, out;
    uint32_t              cp;
    const unsigned char  *p;

    p = (const unsigned char *) s;
    out = 0;

    for (i = 0; i < n; i += k) {

        /* a run of printable ASCII that needs no escape, the common case,
         * is copied at once: byte for byte what the loop below writes */

        for (k = 0; i + k < n && cg_cef_plain(p[i + k], header); k++) {
            /* void */
        }

        if (k) {
            if (out + k > cap) {
                memcpy(dst + out, s + i, cap - out);
                *all = 0;
                return cap;
            }

            memcpy(dst + out, s + i, k);
            out += k;
            continue;
        }

        k = cg_utf8_decode(p + i, n - i, &cp);

        if (k == 0) {
            memcpy(tok, "\xef\xbf\xbd", 3);
            t = 3;
            k = 1;

        } else if (cp == '\\' || (header && cp == '|')
                   || (!header && cp == '='))
        {
            tok[0] = '\\';
            tok[1] = (char) cp;
            t = 2;

        } else if (cp == '\n' || cp == '\r') {
            tok[0] = '\\';
            tok[1] = cp == '\n' ? 'n' : 'r';
            t = 2;

            if (header) {
                tok[0] = ' ';
                t = 1;
            }

        } else if (cg_is_control(cp)) {
            tok[0] = ' ';
            t = 1;

        } else {
            memcpy(tok, s + i, k);
            t = k;
        }

        if (out + t > cap) {
            *all = 0;
            return out;
        }

        memcpy(dst + out, tok, t);
        out += t;
    }

    *all = 1;
    return out;
}


/* " key=value", the value escaped and capped; nothing for an empty value
 * (an absent key is clearer to a SIEM than an empty one). */
static void
cg_cef_value(cg_out_t *o, const char *key, const char *s, size_t max,
    size_t cap)
{
    if (s != NULL) {
        cg_cef_value_len(o, key, s, cg_strnlen(s, max), cap);
    }
}


/* The same for the first n bytes of s. */
static void
cg_cef_value_len(cg_out_t *o, const char *key, const char *s, size_t n,
    size_t cap)
{
    int     all, direct;
    char    tmp[CG_CEF_CAP_MAX], *dst;
    size_t  m, klen;

    if (n == 0) {
        return;
    }

    /* with room for the capped value, escaped straight into the record */
    klen = strlen(key);
    direct = o->pos + klen + 2 + cap < o->len;

    cg_out_mem(o, " ", 1);
    cg_out_mem(o, key, klen);
    cg_out_mem(o, "=", 1);

    dst = direct ? o->buf + o->pos : tmp;

    m = cg_cef_escape(dst, cap, s, n, 0, &all);

    if (!all) {
        /* room for the mark that tells a reader the value was cut */
        m = cg_cef_escape(dst, cap - 3, s, n, 0, &all);
        memcpy(dst + m, "...", 3);
        m += 3;
    }

    if (direct) {
        o->pos += m;

    } else {
        cg_out_mem(o, tmp, m);
    }
}


/* "csNLabel=label csN=value" pairs, both or neither. */
static void
cg_cef_label(cg_out_t *o, const char *key, const char *label, const char *s,
    size_t max, size_t cap)
{
    if (s == NULL || cg_strnlen(s, max) == 0) {
        return;
    }

    cg_out_mem(o, " ", 1);
    cg_out_str(o, key);
    cg_out_mem(o, "Label=", 6);
    cg_out_str(o, label);
    cg_cef_value(o, key, s, max, cap);
}


/* The header of every record, with the first key of the extension. */
static void
cg_cef_header(cg_out_t *o, const char *cls, const char *name, int sev)
{
    int     all;
    char    hdr[64];
    size_t  m;

    cg_out_str(o, "CEF:0|certguard|certguard|");
    m = cg_cef_escape(hdr, sizeof(hdr), CG_VERSION, strlen(CG_VERSION), 1,
                      &all);
    cg_out_mem(o, hdr, m);
    /* the space after the seventh pipe: liblognorm's CEF parser otherwise
     * loses the first character of the first key */
    cg_out_mem(o, "|", 1);
    cg_out_str(o, cls);
    cg_out_mem(o, "|", 1);
    cg_out_str(o, name);
    cg_out_int(o, "|", sev);
    cg_out_mem(o, "| ", 2);

    /* a constant first key: the extension never starts with escaped text */
    cg_out_str(o, "deviceDirection=1");
}


/* src, spt, dst, dpt: each only when known. */
static void
cg_cef_peers(cg_out_t *o, const cg_event_t *ev)
{
    cg_cef_value(o, "src", ev->src_addr, CG_CEF_CAP_MAX, CG_CEF_CAP_ADDR);

    if (ev->src_port) {
        cg_out_int(o, " spt=", ev->src_port & 0xffff);
    }

    cg_cef_value(o, "dst", ev->dst_addr, CG_CEF_CAP_MAX, CG_CEF_CAP_ADDR);

    if (ev->dst_port) {
        cg_out_int(o, " dpt=", ev->dst_port & 0xffff);
    }
}


/* dvchost and connectionId: which proxy, which client connection. */
static void
cg_cef_device(cg_out_t *o, const cg_event_t *ev)
{
    cg_cef_value(o, "dvchost", ev->dvchost, CG_CEF_CAP_MAX,
                 CG_CEF_CAP_DVCHOST);
    cg_cef_value(o, "connectionId", ev->conn_id, CG_CEF_CAP_MAX,
                 CG_CEF_CAP_CONNID);
}


/*
 * requestMethod, request, requestClientApplication.  The query string
 * stays out of request unless the event keeps it: tokens, session ids and
 * personal data travel there (Squid strips it by default too).  The '?'
 * stays, so a reader knows there was one.
 */
static void
cg_cef_request(cg_out_t *o, const cg_event_t *ev)
{
    size_t       n;
    const char  *q;

    cg_cef_value(o, "requestMethod", ev->method, CG_CEF_CAP_MAX,
                 CG_CEF_CAP_METHOD);

    if (ev->request) {
        n = cg_strnlen(ev->request, CG_CEF_REQUEST_MAX);

        if (!ev->keep_query) {
            q = memchr(ev->request, '?', n);
            if (q) {
                n = (size_t) (q - ev->request) + 1;
            }
        }

        cg_cef_value_len(o, "request", ev->request, n, CG_CEF_CAP_REQUEST);
    }

    cg_cef_value(o, "requestClientApplication", ev->user_agent,
                 CG_CEF_CAP_MAX, CG_CEF_CAP_AGENT);
}


/* destinationServiceName: the name the client itself asked the server
 * for, inside a tunnel; dhost is the name certguard checked. */
static void
cg_cef_client(cg_out_t *o, const cg_event_t *ev)
{
    cg_cef_value(o, "destinationServiceName", ev->client_sni, CG_CEF_CAP_MAX,
                 CG_CEF_CAP_HOST);
}


/* The result cg_result_failure(CG_FAILURE_PROBE) makes (and the stream
 * module's own of the same shape): the one probe_failed hit, and no
 * certificate. */
static int
cg_is_probe_failure(const cg_result_t *res)
{
    return res->nhits == 1 && res->sha256[0] == '\0'
           && strncmp(res->hits[0].id, "probe_failed", CG_ID_MAX) == 0;
}


static int64_t
cg_clamp(int64_t v, int64_t limit)
{
    return v > limit ? limit : v < -limit ? -limit : v;
}


/* ISO 8601 in UTC from unix seconds, without gmtime's time_t range or
 * locale. */
static void
cg_iso_time(char *buf, size_t len, int64_t t)
{
    struct tm  tm;

    cg_epoch_to_tm(cg_clamp(t, CG_TIME_LIMIT), &tm);

    snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02dZ",
             (long long) tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
}


static unsigned
cg_nhits(const cg_result_t *res)
{
    return res->nhits < CG_MAX_HITS ? res->nhits : CG_MAX_HITS;
}


/* Comma-separated hit ids: the counted ones, or all with "(exempt)" marks
 * and a "+N" for hits beyond CG_MAX_HITS. */
static size_t
cg_ids(const cg_result_t *res, char *buf, size_t len, int all)
{
    unsigned        i, n, first;
    cg_out_t        o;
    const cg_hit_t *h;

    cg_out_init(&o, buf, len);

    n = cg_nhits(res);
    first = 1;

    for (i = 0; i < n; i++) {
        h = &res->hits[i];

        if (h->exempt && !all) {
            continue;
        }

        if (!first) {
            cg_out_mem(&o, ",", 1);
        }

        first = 0;
        cg_out_mem(&o, h->id, cg_strnlen(h->id, sizeof(h->id)));

        if (h->exempt) {
            cg_out_str(&o, "(exempt)");
        }
    }

    if (all && res->hits_dropped) {
        cg_out_fmt(&o, "%s+%u", first ? "" : ",", res->hits_dropped);
    }

    return cg_out_done(&o);
}


size_t
cg_format_signal_ids(const cg_result_t *res, char *buf, size_t len)
{
    return cg_ids(res, buf, len, 0);
}


size_t
cg_format_json(const cg_result_t *res, char *buf, size_t len)
{
    char            tm[64];
    unsigned        i, n;
    cg_out_t        o;
    const cg_hit_t *h;

    cg_out_init(&o, buf, len);

    cg_out_fmt(&o, "{\"verdict\":\"%s\",\"score\":%d,\"signals\":[",
               cg_verdict_name(res->verdict), res->score);

    n = cg_nhits(res);

    for (i = 0; i < n; i++) {
        h = &res->hits[i];

        cg_out_str(&o, i ? ",{\"id\":" : "{\"id\":");
        cg_out_json_str(&o, h->id, sizeof(h->id));
        cg_out_fmt(&o, ",\"weight\":%d", h->weight);

        if (h->exempt) {
            cg_out_str(&o, ",\"exempt\":true");
        }

        cg_out_str(&o, ",\"detail\":");
        cg_out_json_str(&o, h->detail, sizeof(h->detail));
        cg_out_mem(&o, "}", 1);
    }

    cg_out_mem(&o, "]", 1);

    if (res->hits_dropped) {
        cg_out_fmt(&o, ",\"signals_dropped\":%u", res->hits_dropped);
    }

    cg_out_str(&o, ",\"subject\":");
    cg_out_json_str(&o, res->subject, sizeof(res->subject));
    cg_out_str(&o, ",\"issuer\":");
    cg_out_json_str(&o, res->issuer, sizeof(res->issuer));
    cg_out_str(&o, ",\"serial\":");
    cg_out_json_str(&o, res->serial, sizeof(res->serial));
    cg_out_str(&o, ",\"sha256\":");
    cg_out_json_str(&o, res->sha256, sizeof(res->sha256));
    cg_out_str(&o, ",\"sha1\":");
    cg_out_json_str(&o, res->sha1, sizeof(res->sha1));
    cg_out_str(&o, ",\"spki_sha256\":");
    cg_out_json_str(&o, res->spki_sha256, sizeof(res->spki_sha256));

    cg_iso_time(tm, sizeof(tm), res->not_before);
    cg_out_str(&o, ",\"not_before\":");
    cg_out_json_str(&o, tm, sizeof(tm));
    cg_iso_time(tm, sizeof(tm), res->not_after);
    cg_out_str(&o, ",\"not_after\":");
    cg_out_json_str(&o, tm, sizeof(tm));

    cg_out_str(&o, ",\"key_type\":");
    cg_out_json_str(&o, res->key_type, sizeof(res->key_type));
    cg_out_fmt(&o, ",\"key_bits\":%d", res->key_bits);
    cg_out_str(&o, ",\"sig_alg\":");
    cg_out_json_str(&o, res->sig_alg, sizeof(res->sig_alg));
    cg_out_fmt(&o, ",\"chain_len\":%u,\"trusted\":%s,\"public_root\":%s",
               res->chain_len, res->trusted ? "true" : "false",
               res->public_root ? "true" : "false");
    cg_out_str(&o, ",\"name\":");
    cg_out_json_str(&o, res->name, sizeof(res->name));
    cg_out_str(&o, ",\"policy\":");
    cg_out_json_str(&o, res->policy, sizeof(res->policy));

    /* the certificate memory's, when there is one */

    if (res->first_seen != 0) {
        cg_iso_time(tm, sizeof(tm), res->first_seen);
        cg_out_str(&o, ",\"first_seen\":");
        cg_out_json_str(&o, tm, sizeof(tm));
    }

    if (res->prev_sha256[0]) {
        cg_out_str(&o, ",\"prev_sha256\":");
        cg_out_json_str(&o, res->prev_sha256, sizeof(res->prev_sha256));
        cg_out_str(&o, ",\"prev_issuer\":");
        cg_out_json_str(&o, res->prev_issuer, sizeof(res->prev_issuer));
    }

    cg_out_mem(&o, "}", 1);

    return cg_out_done(&o);
}


/*
 * One CEF record.  The class of event follows the verdict, except that a
 * block in monitor mode (act=would-block) is its own event, so a SIEM can
 * tell enforced blocks from the ones a policy under tuning would make, and
 * that a probe that saw no certificate is one too (probe-failed).
 * Severity rates the certificate, not the enforcement: a would-block is as
 * severe as a block.  docs/cef.md documents the table.
 */
size_t
cg_format_cef(const cg_result_t *res, const cg_event_t *ev, char *buf,
    size_t len)
{
    int                  sev, monitor;
    char                 ids[CG_MAX_HITS * (CG_ID_MAX + 9) + 16];
    char                 msg[CG_DETAIL_MAX + 64];
    int64_t              now, v;
    unsigned             i, n;
    cg_out_t             o, m;
    const char          *cls, *name, *action;
    const cg_hit_t      *h, *top;
    static const cg_event_t  none;

    action = NULL;
    monitor = 0;

    if (ev == NULL) {
        ev = &none;         /* no context: no act either */

    } else {
        monitor = ev->monitor;
        action = cg_action_name(res->verdict, monitor);
    }

    cg_out_init(&o, buf, len);

    if (cg_is_probe_failure(res)) {
        /* no certificate was seen: not a certificate's verdict, and rated
         * as a tag is, whatever the failure mode made of it */
        cls = "probe-failed";
        name = "TLS certificate probe failed";
        sev = 5;

    } else if (res->verdict == CG_BLOCK && monitor) {
        cls = "cert-would-block";
        name = "TLS certificate would be blocked";
        sev = 8;

    } else if (res->verdict == CG_BLOCK) {
        cls = "cert-block";
        name = "TLS certificate blocked";
        sev = 8;

    } else if (res->verdict == CG_TAG) {
        cls = "cert-tag";
        name = "TLS certificate tagged";
        sev = 5;

    } else {
        cls = "cert-allow";
        name = "TLS certificate allowed";
        sev = 1;
    }

    cg_cef_header(&o, cls, name, sev);

    if (ev->rt_ms > 0) {
        cg_out_int(&o, " rt=", (long long) ev->rt_ms);
    }

    cg_cef_value(&o, "act", action, CG_CEF_CAP_MAX, CG_CEF_CAP_ACT);
    cg_cef_device(&o, ev);
    cg_cef_peers(&o, ev);

    if (res->name[0]) {
        cg_cef_value(&o, "dhost", res->name, sizeof(res->name),
                     CG_CEF_CAP_HOST);
    } else {
        cg_cef_value(&o, "dhost", ev->dhost, CG_CEF_CAP_MAX,
                     CG_CEF_CAP_HOST);
    }

    cg_cef_client(&o, ev);
    cg_cef_value(&o, "suser", ev->user, CG_CEF_CAP_MAX, CG_CEF_CAP_USER);
    cg_cef_request(&o, ev);
    cg_cef_value(&o, "app", ev->tls_version, CG_CEF_CAP_MAX,
                 CG_CEF_CAP_TLSVER);
    cg_cef_value(&o, "tlsCipher", ev->tls_cipher, CG_CEF_CAP_MAX,
                 CG_CEF_CAP_CIPHER);
    cg_cef_value(&o, "outcome", cg_verdict_name(res->verdict), 16, 16);

    cg_ids(res, ids, sizeof(ids), 0);
    cg_cef_value(&o, "reason", ids, sizeof(ids), CG_CEF_CAP_REASON);

    /* msg: the score and the detail of the heaviest counted signal */
    top = NULL;
    n = cg_nhits(res);

    for (i = 0; i < n; i++) {
        h = &res->hits[i];

        if (!h->exempt && (top == NULL || h->weight > top->weight)) {
            top = h;
        }
    }

    /* cg_out, not snprintf: vfprintf's set-up was a tenth of a record */
    cg_out_init(&m, msg, sizeof(msg));
    cg_out_int(&m, "score ", res->score);

    if (top) {
        cg_out_str(&m, ": ");
        cg_out_mem(&m, top->id, cg_strnlen(top->id, sizeof(top->id)));
        cg_out_str(&m, ": ");
        cg_out_mem(&m, top->detail,
                   cg_strnlen(top->detail, sizeof(top->detail)));
    } else {
        cg_out_str(&m, ": no signals");
    }

    (void) cg_out_done(&m);

    cg_cef_value(&o, "msg", msg, sizeof(msg), CG_CEF_CAP_MSG);

    cg_cef_label(&o, "cs1", "subject", res->subject, sizeof(res->subject),
                 CG_CEF_CAP_DN);
    cg_cef_label(&o, "cs2", "issuer", res->issuer, sizeof(res->issuer),
                 CG_CEF_CAP_DN);
    cg_cef_label(&o, "cs3", "sha256", res->sha256, sizeof(res->sha256),
                 CG_CEF_CAP_HASH);
    cg_cef_label(&o, "cs4", "serial", res->serial, sizeof(res->serial),
                 CG_CEF_CAP_SERIAL);

    cg_ids(res, ids, sizeof(ids), 1);
    cg_cef_label(&o, "cs5", "signals", ids, sizeof(ids), CG_CEF_CAP_SIGNALS);
    cg_cef_label(&o, "cs6", "policy", res->policy, sizeof(res->policy),
                 CG_CEF_CAP_POLICY);

    /* the SHA-1 that blocklists such as abuse.ch's SSLBL publish, and the
     * key's digest, which stays when a certificate is re-issued */
    cg_cef_label(&o, "flexString1", "sha1", res->sha1, sizeof(res->sha1),
                 CG_CEF_CAP_SHA1);
    cg_cef_label(&o, "flexString2", "spkiSha256", res->spki_sha256,
                 sizeof(res->spki_sha256), CG_CEF_CAP_HASH);

    cg_out_int(&o, " cn1Label=score cn1=", res->score);

    if (res->key_bits > 0) {
        cg_out_int(&o, " cn2Label=keyBits cn2=", res->key_bits);
    }

    if (res->not_after != 0) {
        now = ev->rt_ms > 0 ? ev->rt_ms / 1000 : (int64_t) time(NULL);

        /* garbage times must not overflow the subtraction: clamp both to
         * about +-300000 years first */
        v = cg_clamp(res->not_after, CG_TIME_LIMIT)
            - cg_clamp(now, CG_TIME_LIMIT);
        v = cg_floor_div(v, 86400);
        cg_out_int(&o, " cn3Label=daysToExpiry cn3=", (long long) v);
    }

    if (res->not_before != 0) {
        v = cg_clamp(res->not_before, CG_TIME_LIMIT);
        cg_out_int(&o, " deviceCustomDate1Label=notBefore"
                   " deviceCustomDate1=", (long long) (v * 1000));
    }

    if (res->not_after != 0) {
        v = cg_clamp(res->not_after, CG_TIME_LIMIT);
        cg_out_int(&o, " deviceCustomDate2Label=notAfter"
                   " deviceCustomDate2=", (long long) (v * 1000));
    }

    cg_cef_revocation(&o, res);
    cg_cef_memory(&o, res);

    return cg_out_done(&o);
}


/*
 * Where a revocation came from (a custom key, as the memory's): "crl" or
 * "ocsp", the first word of the revoked hit's detail, when it fired.
 */
static void
cg_cef_revocation(cg_out_t *o, const cg_result_t *res)
{
    unsigned  i, n;

    n = cg_nhits(res);

    for (i = 0; i < n; i++) {
        if (strcmp(res->hits[i].id, "revoked") != 0) {
            continue;
        }

        if (strncmp(res->hits[i].detail, "crl:", 4) == 0) {
            cg_out_str(o, " revocation=crl");

        } else if (strncmp(res->hits[i].detail, "ocsp:", 5) == 0) {
            cg_out_str(o, " revocation=ocsp");
        }

        return;
    }
}


/*
 * The certificate memory's keys, custom ones (CEF has no field for them):
 * firstSeen always fits; prevSha256 and prevIssuer take the room the
 * record has left below CG_CEF_MAX, so that only a certificate
 * whose every value hit its cap loses them (prevIssuer first).
 */
static void
cg_cef_memory(cg_out_t *o, const cg_result_t *res)
{
    size_t   room, cap;
    int64_t  v;

    if (res->first_seen != 0) {
        v = cg_clamp(res->first_seen, CG_TIME_LIMIT);
        cg_out_int(o, " firstSeen=", (long long) (v * 1000));
    }

    room = o->pos < CG_CEF_MAX - 1 ? CG_CEF_MAX - 1 - o->pos
                                          : 0;

    if (res->prev_sha256[0] && room >= sizeof(" prevSha256=") + 64) {
        cg_cef_value(o, "prevSha256", res->prev_sha256,
                     sizeof(res->prev_sha256), CG_CEF_CAP_HASH);
    }

    room = o->pos < CG_CEF_MAX - 1 ? CG_CEF_MAX - 1 - o->pos
                                          : 0;

    if (res->prev_issuer[0] && room >= sizeof(" prevIssuer=") + 16) {
        cap = room - sizeof(" prevIssuer=");
        cg_cef_value(o, "prevIssuer", res->prev_issuer,
                     sizeof(res->prev_issuer),
                     cap < CG_CEF_CAP_DN ? cap : CG_CEF_CAP_DN);
    }
}


/*
 * The refusals the forward proxy makes before any certificate: which class
 * of event each is, and how severe.  Refused destinations in internal or
 * metadata ranges are attempts worth an alert; failed credentials rank
 * with a tagged certificate; a port or name outside the allow lists and a
 * malformed request are mostly misconfigured clients.
 */
typedef struct {
    const char  *reason;
    unsigned     cls;           /* index in cg_refusal_classes */
    int          sev;
} cg_refusal_t;


static const struct {
    const char  *id;
    const char  *name;
} cg_refusal_classes[] = {
    { "dest-refused", "Destination refused" },
    { "auth-failed", "Proxy authentication failed" },
    { "request-refused", "Proxy request refused" },
};


static const cg_refusal_t  cg_refusals[] = {
    { "port",              0, 3 },
    { "name",              0, 3 },
    { "unresolved",        0, 3 },
    { "error",             0, 3 },
    { "special_address",   0, 7 },
    { "own_address",       0, 7 },
    { "denied_address",    0, 7 },
    { "auth_missing",      1, 5 },
    { "auth_malformed",    1, 5 },
    { "auth_unknown_user", 1, 5 },
    { "auth_bad_password", 1, 5 },
    { "auth_error",        1, 5 },
    { "not_absolute_uri",  2, 3 },
    { "scheme",            2, 3 },
    { "host",              2, 3 },
    { "userinfo",          2, 3 },
    { "malformed",         2, 3 },
    { "method",            2, 3 },
    { "probe_limit",       2, 5 },
};


size_t
cg_format_cef_refusal(const cg_event_t *ev, const char *reason,
    unsigned count, char *buf, size_t len)
{
    unsigned                  i;
    cg_out_t                  o;
    const cg_refusal_t       *r;
    static const cg_event_t   none;
    static const cg_refusal_t  other = { "", 2, 3 };

    if (ev == NULL) {
        ev = &none;
    }

    r = &other;

    for (i = 0; reason && i < sizeof(cg_refusals) / sizeof(cg_refusals[0]);
         i++)
    {
        if (strcmp(reason, cg_refusals[i].reason) == 0) {
            r = &cg_refusals[i];
            break;
        }
    }

    cg_out_init(&o, buf, len);

    cg_cef_header(&o, cg_refusal_classes[r->cls].id,
                  cg_refusal_classes[r->cls].name, r->sev);

    if (ev->rt_ms > 0) {
        cg_out_int(&o, " rt=", (long long) ev->rt_ms);
    }

    cg_out_str(&o, " act=refused");
    cg_cef_device(&o, ev);
    cg_cef_peers(&o, ev);
    cg_cef_value(&o, "dhost", ev->dhost, CG_CEF_CAP_MAX, CG_CEF_CAP_HOST);
    cg_cef_client(&o, ev);
    cg_cef_value(&o, "suser", ev->user, CG_CEF_CAP_MAX, CG_CEF_CAP_USER);
    cg_cef_request(&o, ev);
    cg_out_str(&o, " outcome=refused");
    cg_cef_value(&o, "reason", reason, CG_CEF_CAP_MAX, CG_CEF_CAP_REASON);

    if (count > 1) {
        cg_out_int(&o, " cnt=", count);
    }

    return cg_out_done(&o);
}


size_t
cg_format_version(char *buf, size_t len)
{
    cg_out_t  o;

    cg_out_init(&o, buf, len);

    cg_out_str(&o, "certguard " CG_VERSION " (");
    cg_out_str(&o, OpenSSL_version(OPENSSL_VERSION));
    cg_out_fmt(&o, ", PCRE2 %d.%d, libmaxminddb ", PCRE2_MAJOR, PCRE2_MINOR);
    cg_out_str(&o, MMDB_lib_version());
    cg_out_mem(&o, ")", 1);

    return cg_out_done(&o);
}


size_t
cg_format_text(const cg_result_t *res, char *buf, size_t len)
{
    char            nb[64], na[64];
    unsigned        i, n;
    cg_out_t        o;
    const cg_hit_t *h;

    cg_out_init(&o, buf, len);

    cg_out_fmt(&o, "verdict: %s (score %d, policy ",
               cg_verdict_name(res->verdict), res->score);
    cg_text_str(&o, res->policy, sizeof(res->policy));
    cg_out_str(&o, ")\n");

    n = cg_nhits(res);

    for (i = 0; i < n; i++) {
        h = &res->hits[i];

        cg_out_str(&o, "  signal: ");
        cg_text_str(&o, h->id, sizeof(h->id));
        cg_out_fmt(&o, " %+d%s: ", h->weight, h->exempt ? " (exempt)" : "");
        cg_text_str(&o, h->detail, sizeof(h->detail));
        cg_out_mem(&o, "\n", 1);
    }

    if (res->hits_dropped) {
        cg_out_fmt(&o, "  (%u more signals)\n", res->hits_dropped);
    }

    if (n == 0) {
        cg_out_str(&o, "  no signals\n");
    }

    cg_out_str(&o, "subject: ");
    cg_text_str(&o, res->subject, sizeof(res->subject));
    cg_out_str(&o, "\nissuer: ");
    cg_text_str(&o, res->issuer, sizeof(res->issuer));

    cg_iso_time(nb, sizeof(nb), res->not_before);
    cg_iso_time(na, sizeof(na), res->not_after);
    cg_out_fmt(&o, "\nvalidity: %s to %s\n", nb, na);

    cg_out_str(&o, "key: ");
    cg_text_str(&o, res->key_type, sizeof(res->key_type));
    cg_out_fmt(&o, " %d bits, ", res->key_bits);
    cg_text_str(&o, res->sig_alg, sizeof(res->sig_alg));
    cg_out_fmt(&o, "; chain of %u, %s\n", res->chain_len,
               res->public_root ? "trusted (public root)"
               : (res->trusted ? "trusted (private root)" : "not trusted"));

    if (res->name[0]) {
        cg_out_str(&o, "name: ");
        cg_text_str(&o, res->name, sizeof(res->name));
        cg_out_mem(&o, "\n", 1);
    }

    cg_out_str(&o, "sha256: ");
    cg_text_str(&o, res->sha256, sizeof(res->sha256));

    if (res->first_seen != 0) {
        cg_iso_time(nb, sizeof(nb), res->first_seen);
        cg_out_fmt(&o, "\nfirst seen: %s", nb);
    }

    if (res->prev_sha256[0]) {
        cg_out_str(&o, "\nprevious: ");
        cg_text_str(&o, res->prev_sha256, sizeof(res->prev_sha256));
        cg_out_str(&o, " from ");
        cg_text_str(&o, res->prev_issuer, sizeof(res->prev_issuer));
    }

    return cg_out_done(&o);
}
