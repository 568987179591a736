/*
 * cg_connect_parse(): CONNECT requests as curl sends them, IPv6 literals,
 * targets without or with a bad port, methods other than CONNECT (absolute
 * form for a later one-port proxy), userinfo, folded and malformed header
 * lines, control bytes, oversized headers, and every prefix of a request
 * (need more, never an error), fed at once and a byte at a time.
 */

#include <stdlib.h>
#include <string.h>

#include "cg_connect.h"
#include "tap.h"


#define MAX  16384

/* a literal with its length, NUL bytes included */
#define LIT(s)  (const unsigned char *) (s), sizeof(s) - 1


static int
parse(const char *text, cg_connect_t *req)
{
    memset(req, 0, sizeof(cg_connect_t));

    return cg_connect_parse((const unsigned char *) text, strlen(text), MAX,
                            req);
}


/* A part of the request as a string, for is_str(). */

static const char *
part(const char *text, size_t off, size_t len)
{
    static char  buf[512];

    if (len >= sizeof(buf)) {
        return "(too long)";
    }

    memcpy(buf, text + off, len);
    buf[len] = '\0';

    return buf;
}


/* A request that must parse: its host, port and whether it is a CONNECT. */

static void
good(const char *text, const char *host, unsigned port, int connect,
    const char *name)
{
    int           rc;
    cg_connect_t  req;

    rc = parse(text, &req);

    is_int(rc, CG_OK, "%s: parses", name);
    is_int(req.connect, connect, "%s: %s", name,
           connect ? "a CONNECT" : "not a CONNECT");
    is_str(part(text, req.host_off, req.host_len), host, "%s: host", name);
    is_int(req.port, port, "%s: port", name);
}


/* A request that must be refused, with the reason. */

static void
bad(const char *text, int status, const char *error, const char *name)
{
    int           rc;
    cg_connect_t  req;

    rc = parse(text, &req);

    is_int(rc, status, "%s: refused", name);
    is_str(req.error, error, "%s: %s", name, error);
}


static void
test_connect(void)
{
    int           rc;
    cg_connect_t  req;
    const char   *r;

    r = "CONNECT example.com:443 HTTP/1.1\r\n"
        "Host: example.com:443\r\n"
        "User-Agent: curl/7.88.1\r\n"
        "Proxy-Connection: Keep-Alive\r\n"
        "\r\n";

    rc = parse(r, &req);
    is_int(rc, CG_OK, "curl's CONNECT parses");
    ok(req.connect, "curl's CONNECT: a CONNECT");
    is_int(req.method_len, 7, "method length");
    is_str(part(r, req.target_off, req.target_len), "example.com:443",
           "target as sent");
    is_str(part(r, req.host_off, req.host_len), "example.com", "host");
    is_int(req.port, 443, "port");
    is_int(req.version, 1, "HTTP/1.1");
    is_int(req.header_end, strlen(r), "header end: the whole request");
    ok(!req.auth, "no Proxy-Authorization");
    ok(!req.userinfo, "no userinfo");

    r = "CONNECT Example.COM:8443 HTTP/1.0\r\n\r\n\x16\x03\x01";
    rc = parse(r, &req);
    is_int(rc, CG_OK, "CONNECT with TLS bytes after it parses");
    is_int(req.header_end, strlen(r) - 3,
           "header end: before the client's first TLS bytes");
    is_str(part(r, req.host_off, req.host_len), "Example.COM",
           "host in the case it was sent");
    is_int(req.version, 0, "HTTP/1.0");

    good("CONNECT a.test:1 HTTP/1.1\n\n", "a.test", 1, 1,
         "bare LF line ends");
    good("CONNECT a.test:65535 HTTP/1.1\r\n\r\n", "a.test", 65535, 1,
         "port 65535");
    good("CONNECT a.test:00443 HTTP/1.1\r\n\r\n", "a.test", 443, 1,
         "port with leading zeros");
    good("CONNECT 192.0.2.1:443 HTTP/1.1\r\n\r\n", "192.0.2.1", 443, 1,
         "IPv4 literal");
    good("CONNECT my_host-1.example:443 HTTP/1.1\r\n\r\n",
         "my_host-1.example", 443, 1, "'_' and '-' in a name");
    good("CONNECT a.test:443 HTTP/1.1\r\nX-Tab:\ta\tb\r\n\r\n", "a.test",
         443, 1, "tabs in a header value");
    good("CONNECT a.test:443 HTTP/1.1\r\nX-Bytes: \xc3\xa9\xff\r\n\r\n",
         "a.test", 443, 1, "bytes above 0x7f in a header value");
}


static void
test_ipv6(void)
{
    good("CONNECT [::1]:443 HTTP/1.1\r\n\r\n", "::1", 443, 1,
         "IPv6 literal [::1]:443");
    good("CONNECT [2001:DB8::a:1]:8443 HTTP/1.1\r\n\r\n", "2001:DB8::a:1",
         8443, 1, "IPv6 literal with hex letters");
    good("CONNECT [::ffff:192.0.2.1]:443 HTTP/1.1\r\n\r\n",
         "::ffff:192.0.2.1", 443, 1, "IPv4-mapped IPv6 literal");

    bad("CONNECT [::1] HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "IPv6 literal without a port");
    bad("CONNECT [::1]443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "IPv6 literal without ':' before the port");
    bad("CONNECT [::1:443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "IPv6 literal without ']'");
    bad("CONNECT []:443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "empty brackets");
    bad("CONNECT [good.test]:443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "a name in brackets");
    bad("CONNECT [::1%eth0]:443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "a zone id in brackets");
    bad("CONNECT ::1:443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "IPv6 literal without brackets");
}


static void
test_target(void)
{
    int           rc;
    char          r[600], host[300];
    cg_connect_t  req;

    rc = parse("CONNECT example.com HTTP/1.1\r\n\r\n", &req);
    is_int(rc, CG_ERR_INPUT, "missing port: refused");
    is_str(req.error, "invalid CONNECT target", "missing port: reason");
    is_str(part("CONNECT example.com HTTP/1.1", req.target_off,
                req.target_len), "example.com",
           "invalid target: target set for the log");

    bad("CONNECT example.com: HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "empty port");
    bad("CONNECT example.com:0 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "port 0");
    bad("CONNECT example.com:65536 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "port 65536");
    bad("CONNECT example.com:99999999999999999999 HTTP/1.1\r\n\r\n",
        CG_ERR_INPUT, "invalid CONNECT target", "port that overflows");
    bad("CONNECT example.com:https HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "port in letters");
    bad("CONNECT example.com:44a HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "port with a letter");
    bad("CONNECT example.com:-1 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "negative port");
    bad("CONNECT example.com:+443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "port with a sign");
    bad("CONNECT :443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "no host");
    bad("CONNECT go!od.test:443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "'!' in the host");
    bad("CONNECT a:b:443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "two colons without brackets");
    bad("CONNECT http://a.test:443/ HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "invalid CONNECT target", "CONNECT with an absolute URI");

    memset(host, 'a', 253);
    host[253] = '\0';
    snprintf(r, sizeof(r), "CONNECT %s:443 HTTP/1.1\r\n\r\n", host);
    good(r, host, 443, 1, "a host of 253 characters");

    memset(host, 'a', 254);
    host[254] = '\0';
    snprintf(r, sizeof(r), "CONNECT %s:443 HTTP/1.1\r\n\r\n", host);
    bad(r, CG_ERR_INPUT, "invalid CONNECT target",
        "a host of 254 characters");
}


static void
test_request_line(void)
{
    int           rc;
    cg_connect_t  req;

    bad("connect example.com:443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "not an HTTP request", "lower case method");
    bad("Connect example.com:443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "malformed method", "mixed case method");
    bad("CONNECT-X example.com:443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "malformed method", "'-' in the method");
    bad("\x16\x03\x01\x00\x05hello", CG_ERR_INPUT, "not an HTTP request",
        "TLS to the proxy port");
    bad("\r\nCONNECT a.test:443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "not an HTTP request", "an empty line first");

    rc = cg_connect_parse((const unsigned char *) "\x16", 1, MAX,
                          memset(&req, 0, sizeof(req)));
    is_int(rc, CG_ERR_INPUT, "TLS: refused at the first byte");

    rc = parse("BREW a.test:443 HTTP/1.1\r\n\r\n", &req);
    is_int(rc, CG_OK, "unknown method: parses");
    ok(!req.connect, "unknown method: not a CONNECT");
    is_int(req.method_len, 4, "unknown method: its length");

    rc = parse("CONNECTS a.test:443 HTTP/1.1\r\n\r\n", &req);
    is_int(rc, CG_OK, "CONNECTS: parses");
    ok(!req.connect, "CONNECTS: not a CONNECT");

    bad("CONNECT a.test:443 HTTP/2.0\r\n\r\n", CG_ERR_INPUT,
        "malformed request line", "HTTP/2.0");
    bad("CONNECT a.test:443 HTTP/1.2\r\n\r\n", CG_ERR_INPUT,
        "malformed request line", "HTTP/1.2");
    bad("CONNECT a.test:443 http/1.1\r\n\r\n", CG_ERR_INPUT,
        "malformed request line", "lower case version");
    bad("CONNECT a.test:443\r\n\r\n", CG_ERR_INPUT,
        "malformed request line", "no version");
    bad("CONNECT a.test:443 HTTP/1.1 \r\n\r\n", CG_ERR_INPUT,
        "malformed request line", "a space after the version");
    bad("CONNECT  a.test:443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "malformed request line", "two spaces after the method");
    bad("CONNECT a.test 443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "malformed request line", "a space in the target");
    bad("CONNECT\r\n\r\n", CG_ERR_INPUT, "malformed request line",
        "a method alone");
}


static void
test_other_methods(void)
{
    int           rc;
    cg_connect_t  req;
    const char   *r;

    r = "GET http://example.com/index.html HTTP/1.1\r\nHost: example.com\r\n"
        "\r\n";
    rc = parse(r, &req);
    is_int(rc, CG_OK, "absolute-form GET: parses");
    ok(!req.connect, "absolute-form GET: not a CONNECT");
    is_str(part(r, 0, req.method_len), "GET", "absolute-form GET: method");
    is_str(part(r, req.target_off, req.target_len),
           "http://example.com/index.html", "absolute-form GET: target");

    good("GET http://example.com/index.html HTTP/1.1\r\n\r\n",
         "example.com", 80, 0, "absolute-form GET: host, port 80");
    good("POST HTTPS://example.com:8443?q HTTP/1.1\r\n\r\n", "example.com",
         8443, 0, "absolute-form https with a port and a query");
    good("GET https://[::1]/ HTTP/1.1\r\n\r\n", "::1", 443, 0,
         "absolute-form https to an IPv6 literal");
    good("GET http://example.com HTTP/1.1\r\n\r\n", "example.com", 80, 0,
         "absolute-form without a path");
    good("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "", 0, 0,
         "origin-form GET: parses, no host");
    good("OPTIONS * HTTP/1.1\r\n\r\n", "", 0, 0, "asterisk form: no host");
    good("GET ftp://example.com/ HTTP/1.1\r\n\r\n", "", 0, 0,
         "another scheme: no host");
    good("GET http://ex!ample.com/ HTTP/1.1\r\n\r\n", "", 0, 0,
         "absolute-form with an invalid host: no host");
    good("GET http://example.com:0/ HTTP/1.1\r\n\r\n", "", 0, 0,
         "absolute-form with port 0: no host");
}


static void
test_userinfo(void)
{
    int           rc;
    cg_connect_t  req;

    rc = parse("CONNECT user:secret@example.com:443 HTTP/1.1\r\n\r\n", &req);
    is_int(rc, CG_ERR_INPUT, "CONNECT with userinfo: refused");
    ok(req.userinfo, "CONNECT with userinfo: userinfo set");
    is_int(req.target_len, 0, "CONNECT with userinfo: no target to log");
    is_int(req.host_len, 0, "CONNECT with userinfo: no host");
    ok(req.error && strstr(req.error, "secret") == NULL,
       "CONNECT with userinfo: the reason holds no input");

    rc = parse("CONNECT @example.com:443 HTTP/1.1\r\n\r\n", &req);
    is_int(rc, CG_ERR_INPUT, "empty userinfo: refused");
    ok(req.userinfo, "empty userinfo: userinfo set");

    rc = parse("GET http://user:secret@example.com/ HTTP/1.1\r\n\r\n", &req);
    is_int(rc, CG_ERR_INPUT, "absolute-form with userinfo: refused");
    ok(req.userinfo, "absolute-form with userinfo: userinfo set");
    is_int(req.target_len, 0, "absolute-form with userinfo: no target");

    rc = parse("CONNECT example.com:443 HTTP/1.1\r\n"
               "From: user@example.com\r\n\r\n", &req);
    is_int(rc, CG_OK, "'@' in a header value is no userinfo");
    ok(!req.userinfo, "'@' in a header value: userinfo clear");
}


static void
test_fields(void)
{
    int           rc;
    cg_connect_t  req;
    const char   *r;

    r = "CONNECT a.test:443 HTTP/1.1\r\n"
        "proxy-authorization: \t Basic c2VjcmV0 \t\r\n"
        "\r\n";
    rc = parse(r, &req);
    is_int(rc, CG_OK, "Proxy-Authorization: parses");
    ok(req.auth, "Proxy-Authorization: found (any case)");
    is_str(part(r, req.auth_off, req.auth_len), "Basic c2VjcmV0",
           "Proxy-Authorization: value without the whitespace");

    rc = parse("CONNECT a.test:443 HTTP/1.1\r\nProxy-Authorization:\r\n\r\n",
               &req);
    is_int(rc, CG_OK, "empty Proxy-Authorization: parses");
    ok(req.auth, "empty Proxy-Authorization: found");
    is_int(req.auth_len, 0, "empty Proxy-Authorization: empty value");

    rc = parse("CONNECT a.test:443 HTTP/1.1\r\n"
               "Proxy-Authorization-X: a\r\nX-Proxy-Authorization: b\r\n\r\n",
               &req);
    is_int(rc, CG_OK, "similar names: parse");
    ok(!req.auth, "similar names are not Proxy-Authorization");

    bad("CONNECT a.test:443 HTTP/1.1\r\nProxy-Authorization: Basic a\r\n"
        "Proxy-Authorization: Basic b\r\n\r\n", CG_ERR_INPUT,
        "more than one Proxy-Authorization", "two Proxy-Authorization");

    bad("CONNECT a.test:443 HTTP/1.1\r\nX-Long: a\r\n b\r\n\r\n",
        CG_ERR_INPUT, "folded header line", "header folding with a space");
    bad("CONNECT a.test:443 HTTP/1.1\r\nX-Long: a\r\n\tb: c\r\n\r\n",
        CG_ERR_INPUT, "folded header line", "header folding with a tab");
    bad("CONNECT a.test:443 HTTP/1.1\r\n Host: a.test\r\n\r\n",
        CG_ERR_INPUT, "folded header line", "a first field that folds");
    bad("CONNECT a.test:443 HTTP/1.1\r\nNoColon\r\n\r\n", CG_ERR_INPUT,
        "malformed header line", "a header line without ':'");
    bad("CONNECT a.test:443 HTTP/1.1\r\n: value\r\n\r\n", CG_ERR_INPUT,
        "malformed header line", "an empty field name");
    bad("CONNECT a.test:443 HTTP/1.1\r\nHost : a.test\r\n\r\n", CG_ERR_INPUT,
        "malformed header line", "a space before ':'");
    bad("CONNECT a.test:443 HTTP/1.1\r\nX(y): a\r\n\r\n", CG_ERR_INPUT,
        "malformed header line", "'(' in a field name");
}


static void
test_control(void)
{
    int           rc;
    cg_connect_t  req;

    bad("CONNECT go\x01od.test:443 HTTP/1.1\r\n\r\n", CG_ERR_INPUT,
        "control character in request", "control character in the target");
    bad("CONNECT a.test:443 HTTP/1.1\r\nX: a\x7f\r\n\r\n", CG_ERR_INPUT,
        "control character in request", "DEL in a header value");
    bad("CONNECT a.test:443 HTTP/1.1\r\nX: a\rb\r\n\r\n", CG_ERR_INPUT,
        "control character in request", "a bare CR");
    bad("CONNECT a.test:443 HTTP/1.1\r\r\n\r\n", CG_ERR_INPUT,
        "control character in request", "CR CR LF");

    /* NUL bytes: strlen() would stop there, so the lengths are explicit */

    rc = cg_connect_parse(LIT("CONNECT a.test\0:443 HTTP/1.1\r\n\r\n"), MAX,
                          memset(&req, 0, sizeof(req)));
    is_int(rc, CG_ERR_INPUT, "NUL in the target: refused");
    is_str(req.error, "control character in request", "NUL: reason");

    rc = cg_connect_parse(LIT("CONNECT a.test:443 HTTP/1.1\r\nX: \0\r\n\r\n"),
                          MAX, memset(&req, 0, sizeof(req)));
    is_int(rc, CG_ERR_INPUT, "NUL in a header value: refused");

    rc = cg_connect_parse(LIT("CONNECT a.test:443 HTTP/1.1\r\nX: a\0"), MAX,
                          memset(&req, 0, sizeof(req)));
    is_int(rc, CG_ERR_INPUT, "NUL in an incomplete line: refused at once");

    rc = cg_connect_parse(LIT("CONN\0"), MAX, memset(&req, 0, sizeof(req)));
    is_int(rc, CG_ERR_INPUT, "NUL in an incomplete request line: refused");
}


static void
test_size(void)
{
    int           rc;
    char         *r;
    size_t        len, n;
    cg_connect_t  req;

    /* like t/stream_connect.t: 200 lines of filler, a 16k buffer */

    r = malloc(32768);
    len = (size_t) snprintf(r, 32768, "CONNECT a.test:443 HTTP/1.1\r\n");
    for (n = 0; n < 200; n++) {
        len += (size_t) snprintf(r + len, 32768 - len, "X-Filler: %0100d\r\n",
                                 0);
    }

    memset(&req, 0, sizeof(req));
    rc = cg_connect_parse((unsigned char *) r, MAX, MAX, &req);
    is_int(rc, CG_CONNECT_TOO_LARGE, "oversized header: too large");
    is_str(req.error, "request too large", "oversized header: reason");

    memset(&req, 0, sizeof(req));
    rc = cg_connect_parse((unsigned char *) r, len, MAX, &req);
    is_int(rc, CG_CONNECT_TOO_LARGE,
           "oversized header, more bytes than max: too large");

    memset(&req, 0, sizeof(req));
    rc = cg_connect_parse((unsigned char *) r, MAX - 1, MAX, &req);
    is_int(rc, CG_CONNECT_AGAIN, "one byte short of max: need more");

    memcpy(r + len, "\r\n", 3);
    len += 2;

    memset(&req, 0, sizeof(req));
    rc = cg_connect_parse((unsigned char *) r, len, len, &req);
    is_int(rc, CG_OK, "a header of exactly max bytes parses");
    is_int(req.header_end, len, "... and ends at max");

    memset(&req, 0, sizeof(req));
    rc = cg_connect_parse((unsigned char *) r, len, len - 1, &req);
    is_int(rc, CG_CONNECT_TOO_LARGE, "one byte over max: too large");

    /* the request line alone over max */

    memset(r, 'a', 20000);
    memcpy(r, "CONNECT ", 8);
    memset(&req, 0, sizeof(req));
    rc = cg_connect_parse((unsigned char *) r, 20000, MAX, &req);
    is_int(rc, CG_CONNECT_TOO_LARGE, "a request line over max: too large");

    free(r);
}


static void
test_partial(void)
{
    int            rc, all_again, same;
    size_t         len, i;
    cg_connect_t   req, whole;
    const char    *r;

    r = "CONNECT [2001:db8::1]:443 HTTP/1.1\r\n"
        "Host: [2001:db8::1]:443\r\n"
        "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"
        "\r\n";
    len = strlen(r);

    rc = parse(r, &whole);
    is_int(rc, CG_OK, "the whole request parses");

    rc = cg_connect_parse((const unsigned char *) r, 0, MAX,
                          memset(&req, 0, sizeof(req)));
    is_int(rc, CG_CONNECT_AGAIN, "no bytes: need more");

    /* every prefix, each with a fresh struct */

    all_again = 1;
    for (i = 1; i < len; i++) {
        rc = cg_connect_parse((const unsigned char *) r, i, MAX,
                              memset(&req, 0, sizeof(req)));
        if (rc != CG_CONNECT_AGAIN) {
            all_again = 0;
            printf("#   prefix of %zu bytes: %d\n", i, rc);
        }
    }
    ok(all_again, "every prefix of %zu bytes: need more", len);

    /* a byte at a time into one struct, as a slow client sends */

    memset(&req, 0, sizeof(req));
    all_again = 1;
    for (i = 1; i < len; i++) {
        rc = cg_connect_parse((const unsigned char *) r, i, MAX, &req);
        if (rc != CG_CONNECT_AGAIN) {
            all_again = 0;
        }
    }
    ok(all_again, "a byte at a time: need more until the end");

    rc = cg_connect_parse((const unsigned char *) r, len, MAX, &req);
    is_int(rc, CG_OK, "a byte at a time: parses at the last byte");

    same = req.connect == whole.connect && req.host_off == whole.host_off
           && req.host_len == whole.host_len && req.port == whole.port
           && req.auth == whole.auth && req.auth_off == whole.auth_off
           && req.auth_len == whole.auth_len
           && req.header_end == whole.header_end;
    ok(same, "a byte at a time: the same result as at once");
    is_str(part(r, req.host_off, req.host_len), "2001:db8::1",
           "a byte at a time: host");
    is_str(part(r, req.auth_off, req.auth_len), "Basic dXNlcjpwYXNz",
           "a byte at a time: Proxy-Authorization value");

    /* lines read are not read again */

    memset(&req, 0, sizeof(req));
    rc = cg_connect_parse((const unsigned char *) r, 40, MAX, &req);
    is_int(rc, CG_CONNECT_AGAIN, "40 bytes: need more");
    is_int(req.scanned, 36, "40 bytes: the request line is read");
    is_int(req.looked, 40, "40 bytes: searched to the end");

    /* a prefix that ends between CR and LF */

    memset(&req, 0, sizeof(req));
    rc = cg_connect_parse((const unsigned char *) r, 35, MAX, &req);
    is_int(rc, CG_CONNECT_AGAIN, "a prefix ending in CR: need more");
    rc = cg_connect_parse((const unsigned char *) r, len, MAX, &req);
    is_int(rc, CG_OK, "... then the rest: parses");

    /* a bad line is refused as soon as it is complete */

    memset(&req, 0, sizeof(req));
    rc = cg_connect_parse((const unsigned char *) "CONNECT a.test HTTP/1.1\r\n",
                          25, MAX, &req);
    is_int(rc, CG_ERR_INPUT, "a bad request line: refused before the end "
           "of the header");

    /* arguments */

    rc = cg_connect_parse((const unsigned char *) r, len, MAX, NULL);
    is_int(rc, CG_ERR_ARG, "no struct: CG_ERR_ARG");
    rc = cg_connect_parse((const unsigned char *) r, len, 0,
                          memset(&req, 0, sizeof(req)));
    is_int(rc, CG_ERR_ARG, "max 0: CG_ERR_ARG");
    memset(&req, 0, sizeof(req));
    (void) cg_connect_parse((const unsigned char *) r, 40, MAX, &req);
    rc = cg_connect_parse((const unsigned char *) r, 30, MAX, &req);
    is_int(rc, CG_ERR_ARG, "a buffer that shrank: CG_ERR_ARG");
}


int
main(void)
{
    test_connect();
    test_ipv6();
    test_target();
    test_request_line();
    test_other_methods();
    test_userinfo();
    test_fields();
    test_control();
    test_size();
    test_partial();

    return done_testing();
}
