/*
 * An HTTP/1.x proxy request: request line (RFC 9112 3), header fields
 * (RFC 9112 5) up to the empty line, and the target in authority form for
 * CONNECT (RFC 9112 3.2.3) or absolute form (3.2.2).  Every byte is checked
 * once, as it is searched for the end of its line; a line is parsed when it
 * is complete.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <string.h>
#include <strings.h>

#include "cg_connect.h"


static int cg_connect_request_line(const unsigned char *buf, size_t end,
    cg_connect_t *req);
static int cg_connect_field(const unsigned char *buf, size_t pos,
    size_t end, cg_connect_t *req);
static int cg_connect_absolute(const unsigned char *p, size_t n,
    size_t off, cg_connect_t *req);
static int cg_connect_authority(const unsigned char *p, size_t n,
    size_t off, unsigned default_port, cg_connect_t *req);
static int cg_connect_tchar(unsigned char ch);
static int cg_connect_fail(cg_connect_t *req, const char *error);


int
cg_connect_parse(const unsigned char *buf, size_t len, size_t max,
    cg_connect_t *req)
{
    int            rc;
    size_t         pos, i, end, limit;
    unsigned char  ch;

    if (req == NULL || max == 0 || (buf == NULL && len)
        || req->scanned > len || req->looked > len)
    {
        return CG_ERR_ARG;
    }

    if (len == 0) {
        return CG_CONNECT_AGAIN;
    }

    /* a client talking TLS or binary to a proxy port: no need to wait */

    if (buf[0] < 'A' || buf[0] > 'Z') {
        return cg_connect_fail(req, "not an HTTP request");
    }

    limit = len < max ? len : max;
    pos = req->scanned;

    for ( ;; ) {

        i = req->looked > pos ? req->looked : pos;

        for ( /* void */ ; i < limit && buf[i] != '\n'; i++) {
            ch = buf[i];

            if (ch == '\r') {
                if (i + 1 == limit) {
                    break;              /* its LF may be on the way */
                }

                if (buf[i + 1] == '\n') {
                    continue;
                }

            } else if (ch >= 0x20 && ch != 0x7f) {
                continue;

            } else if (ch == '\t') {
                continue;
            }

            return cg_connect_fail(req, "control character in request");
        }

        if (i == limit || buf[i] != '\n') {
            req->looked = i;

            if (len >= max) {
                req->error = "request too large";
                return CG_CONNECT_TOO_LARGE;
            }

            return CG_CONNECT_AGAIN;
        }

        end = (i > pos && buf[i - 1] == '\r') ? i - 1 : i;

        if (pos == 0) {
            rc = cg_connect_request_line(buf, end, req);

        } else if (end == pos) {
            req->header_end = i + 1;
            req->scanned = i + 1;
            req->looked = i + 1;
            return CG_OK;

        } else {
            rc = cg_connect_field(buf, pos, end, req);
        }

        if (rc != CG_OK) {
            return rc;
        }

        pos = i + 1;
        req->scanned = pos;
        req->looked = pos;
    }
}


/* METHOD SP target SP HTTP/1.x, nothing else. */

static int
cg_connect_request_line(const unsigned char *buf, size_t end,
    cg_connect_t *req)
{
    size_t               i, sp1, sp2;
    const unsigned char  *sp;

    sp = memchr(buf, ' ', end);
    sp1 = sp ? (size_t) (sp - buf) : end;

    sp = sp1 < end ? memchr(buf + sp1 + 1, ' ', end - sp1 - 1) : NULL;
    sp2 = sp ? (size_t) (sp - buf) : end;

    if (sp2 == end || sp2 == sp1 + 1
        || end - sp2 != sizeof(" HTTP/1.1") - 1
        || memcmp(buf + sp2, " HTTP/1.", sizeof(" HTTP/1.") - 1) != 0
        || (buf[end - 1] != '0' && buf[end - 1] != '1'))
    {
        return cg_connect_fail(req, "malformed request line");
    }

    for (i = 0; i < sp1; i++) {
        if (buf[i] < 'A' || buf[i] > 'Z') {
            return cg_connect_fail(req, "malformed method");
        }
    }

    req->method_len = sp1;
    req->version = buf[end - 1] - '0';
    req->connect = (sp1 == sizeof("CONNECT") - 1
                    && memcmp(buf, "CONNECT", sp1) == 0);

    /* a password in the target must not reach a log: keep no trace of it */

    if (memchr(buf + sp1 + 1, '@', sp2 - sp1 - 1) != NULL) {
        req->userinfo = 1;
        return cg_connect_fail(req, "userinfo in the request target");
    }

    req->target_off = sp1 + 1;
    req->target_len = sp2 - sp1 - 1;

    if (!req->connect) {
        return cg_connect_absolute(buf + req->target_off, req->target_len,
                                   req->target_off, req);
    }

    if (cg_connect_authority(buf + req->target_off, req->target_len,
                             req->target_off, 0, req)
        != CG_OK)
    {
        return cg_connect_fail(req, "invalid CONNECT target");
    }

    return CG_OK;
}


/* "name: value"; the value of Proxy-Authorization is kept, as offsets. */

static int
cg_connect_field(const unsigned char *buf, size_t pos, size_t end,
    cg_connect_t *req)
{
    size_t  i, v, e;

    /* obs-fold: a continuation line could hide a field (RFC 9112 5.2) */

    if (buf[pos] == ' ' || buf[pos] == '\t') {
        return cg_connect_fail(req, "folded header line");
    }

    for (i = pos; i < end && cg_connect_tchar(buf[i]); i++) {
        /* void */
    }

    if (i == pos || i == end || buf[i] != ':') {
        return cg_connect_fail(req, "malformed header line");
    }

    if (i - pos != sizeof("Proxy-Authorization") - 1
        || strncasecmp((const char *) buf + pos, "Proxy-Authorization",
                       i - pos) != 0)
    {
        return CG_OK;
    }

    if (req->auth) {
        return cg_connect_fail(req, "more than one Proxy-Authorization");
    }

    for (v = i + 1; v < end && (buf[v] == ' ' || buf[v] == '\t'); v++) {
        /* void */
    }

    for (e = end; e > v && (buf[e - 1] == ' ' || buf[e - 1] == '\t'); e--) {
        /* void */
    }

    req->auth = 1;
    req->auth_off = v;
    req->auth_len = e - v;

    return CG_OK;
}


/*
 * The host of "http://host[:port]/..." or "https://...", for a later
 * route; any other target (origin form "/", "*") has none, which is no
 * error: the request line itself is well formed.
 */

static int
cg_connect_absolute(const unsigned char *p, size_t n, size_t off,
    cg_connect_t *req)
{
    size_t    skip, a;
    unsigned  port;

    if (n > sizeof("http://") - 1
        && strncasecmp((const char *) p, "http://", sizeof("http://") - 1)
           == 0)
    {
        skip = sizeof("http://") - 1;
        port = 80;

    } else if (n > sizeof("https://") - 1
               && strncasecmp((const char *) p, "https://",
                              sizeof("https://") - 1) == 0)
    {
        skip = sizeof("https://") - 1;
        port = 443;

    } else {
        return CG_OK;
    }

    for (a = skip; a < n && p[a] != '/' && p[a] != '?' && p[a] != '#'; a++) {
        /* void */
    }

    if (cg_connect_authority(p + skip, a - skip, off + skip, port, req)
        != CG_OK)
    {
        req->host_off = 0;
        req->host_len = 0;
        req->port = 0;
    }

    return CG_OK;
}


/*
 * host:port or [v6]:port; with a default port, the port may be missing.
 * Host names are letters, digits, '-', '.', '_' (what resolvers take); a
 * bracketed literal is hex digits, ':' and '.'.  The resolver, not this
 * parser, finds out whether the name exists.
 */

static int
cg_connect_authority(const unsigned char *p, size_t n, size_t off,
    unsigned default_port, cg_connect_t *req)
{
    size_t         h, hlen, i, colon;
    unsigned       port;
    unsigned char  ch;

    if (n == 0) {
        return CG_ERR_INPUT;
    }

    if (p[0] == '[') {
        for (i = 1; i < n && p[i] != ']'; i++) {
            ch = p[i];

            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')
                  || (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.'))
            {
                return CG_ERR_INPUT;
            }
        }

        if (i == n || memchr(p + 1, ':', i - 1) == NULL) {
            return CG_ERR_INPUT;
        }

        h = 1;
        hlen = i - 1;
        colon = i + 1;

        if (colon < n && p[colon] != ':') {
            return CG_ERR_INPUT;
        }

    } else {
        for (colon = n; colon > 0 && p[colon - 1] != ':'; colon--) {
            /* void */
        }

        colon = colon ? colon - 1 : n;

        for (i = 0; i < colon; i++) {
            ch = p[i];

            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
                  || (ch >= '0' && ch <= '9')
                  || ch == '-' || ch == '.' || ch == '_'))
            {
                return CG_ERR_INPUT;
            }
        }

        h = 0;
        hlen = colon;
    }

    if (hlen == 0 || hlen > CG_CONNECT_HOST_MAX) {
        return CG_ERR_INPUT;
    }

    if (colon >= n) {
        if (default_port == 0) {
            return CG_ERR_INPUT;        /* CONNECT names its port */
        }

        port = default_port;

    } else {
        if (colon + 1 == n) {
            return CG_ERR_INPUT;
        }

        port = 0;

        for (i = colon + 1; i < n; i++) {
            if (p[i] < '0' || p[i] > '9') {
                return CG_ERR_INPUT;
            }

            port = port * 10 + (p[i] - '0');

            if (port > 65535) {
                return CG_ERR_INPUT;
            }
        }

        if (port == 0) {
            return CG_ERR_INPUT;
        }
    }

    req->host_off = off + h;
    req->host_len = hlen;
    req->port = port;

    return CG_OK;
}


/* tchar of RFC 9110 5.6.2: what a field name is made of. */

static int
cg_connect_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
           || (ch >= '0' && ch <= '9')
           || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}


static int
cg_connect_fail(cg_connect_t *req, const char *error)
{
    req->error = error;

    return CG_ERR_INPUT;
}
