/*
 * The policy language (cg_policy.c) and its matching primitives
 * (cg_match.c): every statement, every error with its file:line, includes,
 * lists (an SSLBL CSV sample written here), patterns, CIDRs, exemptions,
 * and that the shipped policies load and keep their documented balance.
 *
 * Policies are written to a fresh temporary directory, so the tests need
 * nothing but the engine and can run from any directory; the shipped
 * policies are found from the repository root (the working directory of
 * "make test", or two levels above this file).
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cg_internal.h"
#include "cg_policy.h"
#include "tap.h"


static char  tmpdir[256];

static void test_ct_log_list(void);


static void
write_file(const char *name, const char *text)
{
    char   path[512];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);

    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        exit(2);
    }

    fputs(text, f);
    fclose(f);
}


static const char *
tpath(const char *name)
{
    static char  path[4][512];
    static int   i;

    i = (i + 1) % 4;
    snprintf(path[i], sizeof(path[i]), "%s/%s", tmpdir, name);

    return path[i];
}


/* Writes name with text and loads it. */

static cg_policy_t *
load_text(const char *name, const char *text, cg_error_t *err)
{
    cg_policy_t  *p;

    write_file(name, text);
    memset(err, 0, sizeof(*err));

    if (cg_policy_load(&p, tpath(name), err) != CG_OK) {
        return NULL;
    }

    return p;
}


/*
 * The policy must fail with an error in file (relative to tmpdir) at line
 * whose message contains want.
 */

static void
fails(const char *label, const char *text, const char *file, unsigned line,
    const char *want)
{
    cg_error_t    err;
    cg_policy_t  *p;

    p = load_text("err.policy", text, &err);

    if (!ok(p == NULL, "%s: rejected", label)) {
        cg_policy_free(p);
        return;
    }

    is_str(err.file, tpath(file), "%s: error names %s", label, file);
    is_int(err.line, line, "%s: error at line %u", label, line);

    if (!ok(strstr(err.msg, want) != NULL, "%s: message says \"%s\"",
            label, want))
    {
        printf("#   message: %s\n", err.msg);
    }
}


static int
sig(const char *id)
{
    int  i = cg_signal_find(id);

    if (i < 0) {
        printf("# signal %s is missing from the signal table\n", id);
        exit(2);
    }

    return i;
}


/* ---- patterns ---------------------------------------------------------- */


static int
pmatch(const char *pattern, int host, const char *s)
{
    int           m;
    cg_error_t    err;
    cg_pattern_t  p;

    if (cg_pattern_compile(&p, pattern, host, &err) != CG_OK) {
        printf("# cannot compile %s: %s\n", pattern, err.msg);
        return -1;
    }

    m = cg_pattern_match(&p, s, strlen(s));
    cg_pattern_free(&p);

    return m;
}


static void
test_patterns(void)
{
    cg_error_t    err;
    cg_pattern_t  p;
    cg_patlist_t  l;
    const char   *dn = "CN=Major Cobalt Strike,OU=AdvancedPenTesting,"
                       "O=cobaltstrike,L=Somewhere,ST=Cyberspace,C=Earth";

    is_int(pmatch("major cobalt", 0, dn), 1, "substring is case-insensitive");
    is_int(pmatch("Major Cobalt Striker", 0, dn), 0,
           "substring longer than the match fails");
    is_int(pmatch("C=Earth", 0, dn), 1, "substring at the very end");
    is_int(pmatch("~^CN=Major", 0, dn), 1, "regex anchored at start");
    is_int(pmatch("~^cn=major", 0, dn), 0, "~ regex is case-sensitive");
    is_int(pmatch("~*^cn=major", 0, dn), 1, "~* regex is case-insensitive");
    is_int(pmatch("~O=cobaltstrike,", 0, dn), 1, "regex in the middle");
    is_int(pmatch("~\\bStrike\\b", 0, dn), 1, "PCRE2 escapes work");
    is_int(pmatch("~^\\xff", 0, "\xff\xfe"), 0,
           "regex on invalid UTF-8 does not match nor crash");
    is_int(pmatch("x", 0, "\xff\xfex"), 1, "substring on invalid UTF-8");
    is_int(pmatch("COBALT", 0, dn), 1, "upper-case substring, any case");
    is_int(pmatch("\xc9T\xc9", 0, "\xc9t\xc9"), 1,
           "substring: ASCII letters fold, other bytes as they are");
    is_int(pmatch("\xc9t\xc9", 0, "\xe9t\xe9"), 0,
           "substring: no folding beyond ASCII (the C locale's tolower)");
    is_int(pmatch("aab", 0, "aaaaaab"), 1,
           "substring after repeated first bytes");
    is_int(pmatch("ab", 0, "a"), 0, "substring longer than the text");
    {
        char  big[2000];

        memset(big, 'A', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        big[1500] = 'Z';
        is_int(pmatch("az", 0, big), 1,
               "substring in a text longer than the stack buffer");
        is_int(pmatch("za", 0, big), 1, "... and after the match point");
        is_int(pmatch("zz", 0, big), 0, "... and no false match");
    }

    /* not NUL-terminated: only len bytes count */
    ok(cg_pattern_compile(&p, "strike", 0, &err) == CG_OK, "compile strike");
    is_int(cg_pattern_match(&p, dn, 21), 0, "match sees only len bytes");
    is_int(cg_pattern_match(&p, dn, 22), 1, "match within len bytes");
    cg_pattern_free(&p);
    ok(cg_pattern_compile(&p, "~Strike$", 0, &err) == CG_OK,
       "compile ~Strike$");
    is_int(cg_pattern_match(&p, dn, 22), 1, "regex $ at len, not at NUL");
    cg_pattern_free(&p);

    /* host patterns */
    is_int(pmatch("www.example.com", 1, "WWW.Example.COM"), 1,
           "host exact, any case");
    is_int(pmatch("www.example.com", 1, "www.example.com."), 1,
           "host exact, trailing dot");
    is_int(pmatch("www.example.com", 1, "a.www.example.com"), 0,
           "host exact does not match below");
    is_int(pmatch("example.com", 1, "badexample.com"), 0,
           "host exact is not a substring");
    is_int(pmatch("*.example.com", 1, "a.example.com"), 1,
           "*.x matches a name below");
    is_int(pmatch("*.example.com", 1, "a.b.example.com"), 1,
           "*.x matches deeper names");
    is_int(pmatch("*.example.com", 1, "example.com"), 0,
           "*.x does not match x");
    is_int(pmatch("*.example.com", 1, "badexample.com"), 0,
           "*.x needs the dot");
    is_int(pmatch(".example.com", 1, "example.com"), 1, ".x matches x");
    is_int(pmatch(".example.com", 1, "a.Example.com"), 1,
           ".x matches below");
    is_int(pmatch(".example.com", 1, "xexample.com"), 0,
           ".x needs a label boundary");
    is_int(pmatch("~^api[0-9]+\\.", 1, "api12.example.com"), 1,
           "host regex");
    is_int(pmatch("example", 0, "EXAMPLE.com"), 1,
           "non-host plain text is a substring");

    ok(cg_pattern_compile(&p, "", 0, &err) != CG_OK, "empty pattern fails");
    ok(cg_pattern_compile(&p, "~", 0, &err) != CG_OK, "empty regex fails");
    ok(cg_pattern_compile(&p, "~*", 0, &err) != CG_OK,
       "empty caseless regex fails");
    ok(cg_pattern_compile(&p, "~(", 0, &err) == CG_ERR_SYNTAX,
       "bad regex fails");
    ok(strstr(err.msg, "regular expression") != NULL,
       "bad regex message names the regex");
    ok(cg_pattern_compile(&p, "*.", 1, &err) != CG_OK,
       "host \"*.\" fails");
    ok(cg_pattern_compile(&p, "a*.example.com", 1, &err) != CG_OK,
       "host with an inner * fails");
    ok(cg_pattern_compile(&p, "*", 1, &err) != CG_OK, "host \"*\" fails");

    /* lists */
    memset(&l, 0, sizeof(l));
    ok(cg_patlist_add(&l, "nomatch", 0, &err) == CG_OK, "patlist add 1");
    ok(cg_patlist_add(&l, "~Cyber", 0, &err) == CG_OK, "patlist add 2");
    ok(cg_patlist_add(&l, "earth", 0, &err) == CG_OK, "patlist add 3");
    ok(cg_patlist_match(&l, dn, strlen(dn)) == &l.items[1],
       "patlist returns the first matching pattern");
    ok(cg_patlist_match(&l, "zzz", 3) == NULL, "patlist no match");
    cg_patlist_free(&l);
    is_int(l.n, 0, "patlist free empties");

    write_file("pats.list",
               "# comment\n"
               "\n"
               "  Internet Widgits  \r\n"
               "~^CN=,\n"
               "\t# indented comment\n");
    memset(&l, 0, sizeof(l));
    ok(cg_patlist_load(&l, tpath("pats.list"), 0, &err) == CG_OK,
       "pattern list file loads");
    is_int(l.n, 2, "pattern list: comments and blanks skipped");
    is_str(l.n ? l.items[0].text : NULL, "Internet Widgits",
           "pattern list: white space and CR trimmed");
    is_int(l.n ? l.items[1].line : 0, 4, "pattern list: line recorded");
    cg_patlist_free(&l);

    write_file("bad.list", "ok\n# c\n~a(b\n");
    memset(&l, 0, sizeof(l));
    ok(cg_patlist_load(&l, tpath("bad.list"), 0, &err) == CG_ERR_SYNTAX,
       "bad pattern list fails");
    is_str(err.file, tpath("bad.list"), "bad pattern list: file named");
    is_int(err.line, 3, "bad pattern list: line 3");
    cg_patlist_free(&l);

    ok(cg_patlist_load(&l, tpath("missing.list"), 0, &err) == CG_ERR_IO,
       "missing list is an IO error");
    ok(cg_patlist_load(&l, tmpdir, 0, &err) == CG_ERR_IO,
       "a directory is not a list");
    ok(cg_patlist_load_mem(&l, "a\n\0b\n", 5, "mem", 0, &err)
       == CG_ERR_SYNTAX, "NUL byte in a list fails");
    is_int(err.line, 2, "NUL byte: line 2");
    cg_patlist_free(&l);
}


/* ---- digests ----------------------------------------------------------- */


static void
test_digests(void)
{
    cg_error_t          err;
    cg_digest_t         d;
    cg_digestset_t      s;
    unsigned char       md[32];
    const cg_digest_t  *f;
    size_t              i;

    ok(cg_digest_parse(&d, "0123456789abcdef0123456789ABCDEF01234567") == 0,
       "sha1 hex parses");
    is_int(d.len, 20, "sha1 is 20 bytes");
    is_int(d.md[0], 0x01, "first byte");
    is_int(d.md[19], 0x67, "last byte");
    ok(cg_digest_parse(&d, "sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B"
                           "2B0B822CD15D6C15B0F00A08") == 0,
       "sha256: prefix parses");
    is_int(d.len, 32, "sha256 is 32 bytes");
    ok(cg_digest_parse(&d, "SHA1:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:"
                           "cd:ef:01:23:45:67") == 0,
       "colons and upper-case prefix");
    is_int(d.len, 20, "colon form is 20 bytes");
    ok(cg_digest_parse(&d, "sha256:0123456789abcdef0123456789abcdef01234567")
       != 0, "sha256: prefix with 40 digits fails");
    ok(cg_digest_parse(&d, "0123456789abcdef0123456789abcdef0123456") != 0,
       "odd number of digits fails");
    ok(cg_digest_parse(&d, "0123456789abcdef0123456789abcdef012345zz") != 0,
       "non-hex fails");
    ok(cg_digest_parse(&d, "00112233") != 0, "short digest fails");
    ok(cg_digest_parse(&d, "") != 0, "empty digest fails");

    /* An SSLBL file as published: banner comments, a commented header,
     * rows with a space in the date; plus a bare header and CRLF. */
    write_file("sslbl.csv",
        "################################################################\n"
        "# abuse.ch SSLBL SSL Certificate Blacklist (SHA1 Fingerprints) #\n"
        "# Last updated: 2026-11-25 08:00:00 UTC                        #\n"
        "################################################################\n"
        "#\n"
        "# Listingdate,SHA1,Listingreason\n"
        "2026-11-24 13:26:21,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1,"
        "AsyncRAT C&C\n"
        "Listingdate,SHA1,Listingreason\r\n"
        "2026-11-23 01:02:03,0000000000000000000000000000000000000002,"
        "\"Quoted, with comma\"\r\n"
        "2026-11-22 01:02:03,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1,dup\n"
        "2026-11-21 01:02:03,ffffffffffffffffffffffffffffffffffffffff,"
        "A reason that is much longer than forty-seven characters in all\n");

    memset(&s, 0, sizeof(s));
    ok(cg_digestset_load(&s, tpath("sslbl.csv"), &err) == CG_OK,
       "SSLBL CSV loads");
    is_int(s.n, 4, "SSLBL rows counted, header skipped");
    cg_digestset_sort(&s);
    is_int(s.n, 3, "duplicates dropped by sort");

    memset(md, 0xaa, 20);
    md[19] = 0xa1;
    f = cg_digestset_find(&s, md, 20);
    ok(f != NULL, "SSLBL sha1 found");
    is_str(f ? f->reason : NULL, "AsyncRAT C&C", "SSLBL reason kept");

    memset(md, 0, 20);
    md[19] = 2;
    f = cg_digestset_find(&s, md, 20);
    is_str(f ? f->reason : NULL, "Quoted, with comma",
           "quoted reason with a comma, CR stripped");

    memset(md, 0xff, 20);
    f = cg_digestset_find(&s, md, 20);
    is_int(f ? strlen(f->reason) : 0, sizeof(f->reason) - 1,
           "long reason truncated");

    md[0] = 0xfe;
    ok(cg_digestset_find(&s, md, 20) == NULL, "unlisted sha1 not found");
    memset(md, 0xff, 32);
    ok(cg_digestset_find(&s, md, 32) == NULL,
       "a sha256 never matches a sha1 entry");
    ok(cg_digestset_find(&s, md, 16) == NULL, "odd length is not found");
    cg_digestset_free(&s);

    /* plain hex lists, sha256sum output */
    write_file("hex.list",
        "# plain list\n"
        "sha256:" "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15"
        "B0F00A08\n"
        "01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13:14\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        "  leaf.der\n");
    memset(&s, 0, sizeof(s));
    ok(cg_digestset_load(&s, tpath("hex.list"), &err) == CG_OK,
       "hex list loads");
    is_int(s.n, 3, "hex list entries");
    cg_digestset_sort(&s);
    for (i = 0; i < 20; i++) {
        md[i] = (unsigned char) (i + 1);
    }
    ok(cg_digestset_find(&s, md, 20) != NULL, "colon sha1 found");
    ok(cg_digest_parse(&d, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934c"
                           "a495991b7852b855") == 0, "parse sha256");
    ok(cg_digestset_find(&s, d.md, 32) != NULL,
       "sha256sum-style line found");
    cg_digestset_free(&s);

    write_file("badrow.csv", "# c\n2026-01-01 00:00:00,nothex,reason\n");
    memset(&s, 0, sizeof(s));
    ok(cg_digestset_load(&s, tpath("badrow.csv"), &err) == CG_ERR_SYNTAX,
       "bad SSLBL row fails");
    is_int(err.line, 2, "bad SSLBL row: line 2");
    is_str(err.file, tpath("badrow.csv"), "bad SSLBL row: file named");
    ok(strstr(err.msg, "SHA-1") != NULL, "bad SSLBL row: says SHA-1");
    cg_digestset_free(&s);

    write_file("badrow2.csv", "2026-01-01,aaaa\n");
    ok(cg_digestset_load(&s, tpath("badrow2.csv"), &err) == CG_ERR_SYNTAX,
       "CSV row with two fields fails");
    is_int(err.line, 1, "two-field row: line 1");
    cg_digestset_free(&s);

    write_file("badhex.list", "\n\nnot-a-digest\n");
    ok(cg_digestset_load(&s, tpath("badhex.list"), &err) == CG_ERR_SYNTAX,
       "bad hex line fails");
    is_int(err.line, 3, "bad hex line: line 3");
    cg_digestset_free(&s);

    memset(&s, 0, sizeof(s));
    cg_digestset_sort(&s);
    ok(cg_digestset_find(&s, md, 20) == NULL, "empty set finds nothing");
}


/* ---- CIDRs ------------------------------------------------------------- */


static int
cmatch(const char *cidr, const char *addr)
{
    cg_cidr_t  c;

    if (cg_cidr_parse(&c, cidr) != 0) {
        return -1;
    }

    return cg_cidr_match(&c, addr);
}


static void
test_cidrs(void)
{
    cg_cidr_t  c;

    is_int(cmatch("10.0.0.0/8", "10.200.3.4"), 1, "v4 /8 inside");
    is_int(cmatch("10.0.0.0/8", "11.0.0.1"), 0, "v4 /8 outside");
    is_int(cmatch("192.168.16.0/20", "192.168.31.255"), 1,
           "v4 /20 last address");
    is_int(cmatch("192.168.16.0/20", "192.168.32.0"), 0,
           "v4 /20 next block");
    is_int(cmatch("192.168.16.0/20", "192.168.15.255"), 0,
           "v4 /20 previous block");
    is_int(cmatch("0.0.0.0/0", "203.0.113.9"), 1, "v4 /0 matches all v4");
    is_int(cmatch("0.0.0.0/0", "2001:db8::1"), 0, "v4 /0 not v6");
    is_int(cmatch("203.0.113.9", "203.0.113.9"), 1, "bare v4 address");
    is_int(cmatch("203.0.113.9", "203.0.113.8"), 0, "bare v4 other address");
    is_int(cmatch("10.1.2.3/8", "10.9.9.9"), 1, "host bits are masked");
    is_int(cmatch("2001:db8::/32", "2001:db8:ffff::1"), 1, "v6 /32 inside");
    is_int(cmatch("2001:db8::/32", "2001:db9::1"), 0, "v6 /32 outside");
    is_int(cmatch("fd00::/8", "[fd12::1]"), 1, "bracketed v6 address");
    is_int(cmatch("2001:db8::1/128", "2001:db8::1"), 1, "v6 /128");
    is_int(cmatch("2001:db8::/33", "2001:db8:8000::"), 0, "v6 /33 bit");
    is_int(cmatch("10.0.0.0/8", "::ffff:10.1.1.1"), 1,
           "IPv4-mapped v6 matches a v4 range");
    is_int(cmatch("10.0.0.0/8", "not-an-ip"), 0, "garbage address");
    is_int(cmatch("10.0.0.0/8", ""), 0, "empty address");

    ok(cg_cidr_parse(&c, "10.0.0.0/33") != 0, "v4 /33 rejected");
    ok(cg_cidr_parse(&c, "::/129") != 0, "v6 /129 rejected");
    ok(cg_cidr_parse(&c, "10.0.0.0/") != 0, "empty prefix rejected");
    ok(cg_cidr_parse(&c, "10.0.0.0/+8") != 0, "signed prefix rejected");
    ok(cg_cidr_parse(&c, "10.0.0/8") != 0, "short v4 rejected");
    ok(cg_cidr_parse(&c, "example.com") != 0, "name rejected");
    ok(cg_cidr_parse(&c, "::ffff:10.0.0.0/104") != 0,
       "v4 range written as mapped v6 rejected");
    ok(cg_cidr_parse(&c, "") != 0, "empty rejected");
    ok(cg_cidr_match(&c, NULL) == 0, "NULL address never matches");
}


/* ---- statements -------------------------------------------------------- */


static void
test_statements(void)
{
    cg_error_t     err;
    cg_policy_t   *p;
    cg_exempt_t   *ex;
    const char    *cdn = "CN=Major Cobalt Strike,O=cobaltstrike";
    unsigned       i;
    size_t         k;

    write_file("free.list", "O=Let's Encrypt\n");
    write_file("staging.list", "(STAGING)\n");
    write_file("default.list", "~*cobalt\nInternet Widgits\n");
    write_file("public.list", "DigiCert\n");
    write_file("block.csv", "# c\n2026-01-01 00:00:00,"
               "1111111111111111111111111111111111111111,test\n");
    write_file("block.hex",
               "22222222222222222222222222222222"
               "22222222222222222222222222222222\n");

    p = load_text("all.policy",
        "# every statement\n"
        "name all-statements_1.0;\n"
        "threshold tag 25;   # trailing comment\n"
        "threshold block 90;\n"
        "weight self_signed 55;\n"
        "weight hostname_mismatch 0;\n"
        "window issued_recently 5d;\n"
        "window long_validity 1y 1d12h;\n"
        "window short_validity 3600;\n"
        "list free_dv_issuer free.list;\n"
        "list staging_issuer staging.list;\n"
        "list default_subject default.list;\n"
        "list public_ca public.list;\n"
        "list blocklist block.csv;\n"
        "list blocklist block.hex;\n"
        "geo_country 20 kp IR;\n"
        "geo_country 5 IR\n"
        "    RU;\n"
        "geo_asn 15 AS64496 64511 as64512;\n"
        "rule corp_serial serial ~^DEAD 40 \"serial \\\"dead\\\" prefix\";\n"
        "rule 'build_host' subject '~*^CN=build-\\d+' 30;\n"
        "exempt {\n"
        "    sni .corp.example.com *.svc.cluster.local;\n"
        "    sni legacy.example.net;\n"
        "    issuer \"CN=Example Corp Internal CA\";\n"
        "    subject ~*^CN=build-;\n"
        "    fingerprint sha256:9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B"
        "822CD15D6C15B0F00A08;\n"
        "    dst 10.0.0.0/8 fd00::/8;\n"
        "    signals self_signed untrusted_chain build_host;\n"
        "    reason \"internal PKI\";\n"
        "}\n"
        "exempt { dst 192.0.2.1; }\n",
        &err);

    if (!ok(p != NULL, "policy with every statement loads")) {
        printf("#   %s:%u: %s\n", err.file, err.line, err.msg);
        return;
    }

    is_str(cg_policy_name(p), "all-statements_1.0", "name");
    is_str(p->path, tpath("all.policy"), "path kept");
    is_int(p->tag_threshold, 25, "threshold tag");
    is_int(p->block_threshold, 90, "threshold block");
    is_int(p->weight[sig("self_signed")], 55, "weight set");
    is_int(p->weight[sig("hostname_mismatch")], 0, "weight 0 disables");
    is_int(p->weight[sig("expired")],
           cg_signal_default_weight((unsigned) sig("expired")),
           "unmentioned weight is the signal's default");
    is_int(p->window[sig("issued_recently")][0], 5 * 86400, "window 5d");
    is_int(p->window[sig("issued_recently")][1], 0, "second window unset");
    is_int(p->window[sig("long_validity")][0], 365 * 86400, "window 1y");
    is_int(p->window[sig("long_validity")][1], 86400 + 12 * 3600,
           "window 1d12h");
    is_int(p->window[sig("short_validity")][0], 3600, "bare seconds");
    is_int(p->window[sig("expired")][0], 0, "no window: 0");

    is_int(p->lists[CG_LIST_FREE_DV].n, 1, "free_dv_issuer list");
    is_int(p->lists[CG_LIST_STAGING].n, 1, "staging_issuer list");
    is_int(p->lists[CG_LIST_DEFAULT_SUBJECT].n, 2, "default_subject list");
    is_int(p->lists[CG_LIST_PUBLIC_CA].n, 1, "public_ca list");
    ok(cg_patlist_match(&p->lists[CG_LIST_DEFAULT_SUBJECT], cdn,
                        strlen(cdn)) != NULL, "default_subject list matches");
    is_int(p->blocklist.n, 2, "two blocklists add up");
    {
        unsigned char  md[32];

        memset(md, 0x11, 20);
        ok(cg_digestset_find(&p->blocklist, md, 20) != NULL,
           "blocklist is sorted and searchable (sha1)");
        memset(md, 0x22, 32);
        ok(cg_digestset_find(&p->blocklist, md, 32) != NULL,
           "blocklist is sorted and searchable (sha256)");
    }

    is_int(p->ngeo_country, 3, "geo_country entries (IR once)");
    for (k = 0, i = 0; k < p->ngeo_country; k++) {
        if (strcmp(p->geo_country[k].cc, "KP") == 0) {
            is_int(p->geo_country[k].weight, 20, "KP upper-cased, weight 20");
            i++;
        }
        if (strcmp(p->geo_country[k].cc, "IR") == 0) {
            is_int(p->geo_country[k].weight, 5, "IR re-weighted to 5");
            i++;
        }
        if (strcmp(p->geo_country[k].cc, "RU") == 0) {
            is_int(p->geo_country[k].weight, 5,
                   "RU on a continuation line");
            i++;
        }
    }
    is_int(i, 3, "KP, IR and RU present");

    is_int(p->ngeo_asn, 3, "geo_asn entries");
    is_int(p->ngeo_asn ? p->geo_asn[0].asn : 0, 64496, "AS prefix stripped");
    is_int(p->ngeo_asn == 3 ? p->geo_asn[2].asn : 0, 64512,
           "lower-case as prefix");
    is_int(p->ngeo_asn ? p->geo_asn[1].weight : 0, 15, "geo_asn weight");

    is_int(p->nrules, 2, "two rules");
    if (p->nrules == 2) {
        is_str(p->rules[0].id, "corp_serial", "rule id");
        is_int(p->rules[0].field, CG_FIELD_SERIAL, "rule field serial");
        is_int(p->rules[0].weight, 40, "rule weight");
        is_str(p->rules[0].detail, "serial \"dead\" prefix",
               "rule detail with escaped quotes");
        is_int(cg_pattern_match(&p->rules[0].pattern, "DEADBEEF", 8), 1,
               "rule regex matches");
        is_int(cg_pattern_match(&p->rules[0].pattern, "deadbeef", 8), 0,
               "rule ~ regex is case-sensitive");
        is_str(p->rules[1].id, "build_host", "single-quoted rule id");
        is_int(p->rules[1].field, CG_FIELD_SUBJECT, "rule field subject");
        ok(p->rules[1].detail == NULL, "no detail: NULL");
        is_str(p->rules[1].pattern.text, "~*^CN=build-\\d+",
               "backslash before d kept for the regex");
        is_int(cg_pattern_match(&p->rules[1].pattern, "cn=Build-42,O=x", 15),
               1, "rule ~* regex matches");
        is_int(p->rules[1].pattern.line, 21, "rule pattern line");
    }

    is_int(p->nexempts, 2, "two exempts");
    if (p->nexempts == 2) {
        ex = &p->exempts[0];
        is_int(ex->sni.n, 3, "sni lines add up");
        is_int(cg_patlist_match(&ex->sni, "corp.example.com", 16) != NULL, 1,
               "exempt sni .x matches x");
        is_int(cg_patlist_match(&ex->sni, "a.svc.cluster.local", 19) != NULL,
               1, "exempt sni *.x matches below");
        is_int(cg_patlist_match(&ex->sni, "svc.cluster.local", 17) != NULL,
               0, "exempt sni *.x not x");
        is_int(ex->issuer.n, 1, "issuer pattern");
        is_str(ex->issuer.n ? ex->issuer.items[0].text : NULL,
               "CN=Example Corp Internal CA", "quoted issuer");
        is_int(ex->subject.n, 1, "subject pattern");
        is_int(ex->fingerprint.n, 1, "fingerprint");
        is_int(ex->ndst, 2, "dst ranges");
        ok(ex->ndst == 2 && cg_cidr_match(&ex->dst[1], "fd00::5"),
           "dst v6 range matches");
        ok(ex->signals == (((uint64_t) 1 << sig("self_signed"))
                           | ((uint64_t) 1 << sig("untrusted_chain"))),
           "signals mask");
        is_int(ex->nrules, 1, "rule id in signals");
        is_str(ex->nrules ? ex->rules[0] : NULL, "build_host",
               "rule id kept");
        is_int(ex->all, 0, "signals given: not all");
        is_str(ex->reason, "internal PKI", "reason");
        is_int(ex->line, 22, "exempt line");
        is_str(ex->file, tpath("all.policy"), "exempt file");

        ex = &p->exempts[1];
        is_int(ex->all, 1, "no signals: all");
        is_int(ex->ndst, 1, "one-line exempt block");
        ok(ex->reason == NULL, "no reason: NULL");
    }

    cg_policy_free(p);

    /* defaults */
    p = load_text("my-rules.policy", "# nothing\n", &err);
    ok(p != NULL, "empty policy loads");
    if (p) {
        is_str(cg_policy_name(p), "my-rules", "default name is the stem");
        is_int(p->tag_threshold, 30, "default tag threshold");
        is_int(p->block_threshold, 70, "default block threshold");
        is_int(p->max_chain, 10, "default max_chain 10");
        for (i = 0, k = 0; i < cg_signal_count(); i++) {
            k += p->weight[i] != cg_signal_default_weight(i);
        }
        is_int(k, 0, "all weights default");
        is_int(p->nexempts + p->nrules + p->blocklist.n, 0, "nothing else");
        cg_policy_free(p);
    }

    p = load_text("monitor-like", "threshold tag 40;\nthreshold block off;\n",
                  &err);
    ok(p != NULL, "threshold block off loads");
    if (p) {
        is_int(p->block_threshold, INT_MAX, "block off: never reached");
        is_int(p->tag_threshold, 40, "tag with block off");
        is_str(cg_policy_name(p), "monitor-like", "stem without .policy");
        cg_policy_free(p);
    }

    p = load_text("order.policy",
                  "threshold block 10;\nthreshold tag 5;\n", &err);
    ok(p != NULL, "block then tag in any order, checked at the end");
    cg_policy_free(p);

    p = load_text("equal.policy",
                  "threshold tag 50; threshold block 50;", &err);
    ok(p != NULL, "block == tag allowed; statements on one line");
    cg_policy_free(p);

    p = load_text("hash.policy",
                  "rule h subject ~a#b 1;   # the first # is in a word\n"
                  "rule semi subject 'a;b' 1 \"x { y }\";\n", &err);
    ok(p != NULL, "# inside a word and ; { } inside quotes");
    if (p && p->nrules == 2) {
        is_str(p->rules[0].pattern.text, "~a#b", "# kept inside a word");
        is_str(p->rules[1].pattern.text, "a;b", "; kept inside quotes");
        is_str(p->rules[1].detail, "x { y }", "braces kept inside quotes");
    }
    cg_policy_free(p);

    p = load_text("max.policy",
                  "weight blocklisted 1000;\nthreshold block 100000;\n",
                  &err);
    ok(p != NULL, "weight 1000 and threshold 100000 are in range");
    cg_policy_free(p);

    p = load_text("chain.policy", "max_chain 1;\nmax_chain 100;\n", &err);
    ok(p != NULL, "max_chain 1 and 100 load");
    if (p) {
        is_int(p->max_chain, 100, "the last max_chain counts");
        cg_policy_free(p);
    }
}


/* ---- errors ------------------------------------------------------------ */


static void
test_errors(void)
{
    fails("unknown statement", "name x;\n\nfoo bar;\n", "err.policy", 3,
          "unknown statement \"foo\"");
    fails("unknown signal", "weight nosuch 10;\n", "err.policy", 1,
          "unknown signal \"nosuch\"");
    fails("weight too big", "weight expired\n  1001;\n", "err.policy", 2,
          "expected an integer from 0 to 1000");
    fails("negative weight", "weight expired -1;\n", "err.policy", 1,
          "invalid weight");
    fails("weight not a number", "weight expired 1e3;\n", "err.policy", 1,
          "invalid weight");
    fails("missing argument", "\nweight expired;\n", "err.policy", 2,
          "expected: weight SIGNAL N;");
    fails("extra argument", "name a b;\n", "err.policy", 1,
          "expected: name NAME;");
    fails("empty name", "name '';\n", "err.policy", 1, "invalid name");
    fails("invalid name", "name \"a b\";\n", "err.policy", 1,
          "invalid name");
    fails("block below tag",
          "threshold tag 60;\n# c\nthreshold block 50;\nweight expired 1;\n",
          "err.policy", 3, "expected block >= tag");
    fails("threshold kind", "threshold warn 5;\n", "err.policy", 1,
          "expected \"tag\" or \"block\"");
    fails("threshold zero", "threshold tag 0;\n", "err.policy", 1,
          "invalid score");
    fails("tag off", "threshold tag off;\n", "err.policy", 1,
          "invalid score");
    fails("max_chain 0", "max_chain 0;\n", "err.policy", 1,
          "expected an integer from 1 to 100");
    fails("max_chain 101", "\nmax_chain 101;\n", "err.policy", 2,
          "invalid max_chain \"101\"");
    fails("max_chain two numbers", "max_chain 5 6;\n", "err.policy", 1,
          "expected: max_chain N;");
    fails("window on a signal without one", "window expired 3d;\n",
          "err.policy", 1, "takes no window");
    fails("second window where one is taken",
          "window issued_recently 3d\n 4d;\n", "err.policy", 2,
          "takes one window");
    fails("bad duration", "window issued_recently 3x;\n", "err.policy", 1,
          "invalid duration \"3x\"");
    fails("zero duration", "window issued_recently 0d;\n", "err.policy", 1,
          "invalid duration");
    fails("huge duration", "window issued_recently 99999999999y;\n",
          "err.policy", 1, "invalid duration");
    fails("unit without number", "window issued_recently d;\n",
          "err.policy", 1, "invalid duration");
    fails("bad list kind", "list evil x.list;\n", "err.policy", 1,
          "unknown list kind \"evil\"");
    fails("missing list", "\nlist public_ca nosuch.list;\n", "err.policy", 2,
          "nosuch.list");

    write_file("badre.list", "# ok\nDigiCert\n~*(unclosed\n");
    fails("bad regex in a list names the list file",
          "list public_ca badre.list;\n", "badre.list", 3,
          "invalid regular expression");

    write_file("badbl.csv", "# c\n# c\n\n2026-01-01 00:00:00,xyz,r\n");
    fails("bad blocklist row names the list file",
          "list blocklist badbl.csv;\n", "badbl.csv", 4, "SHA-1");

    test_ct_log_list();

    fails("country code length", "geo_country 10 USA;\n", "err.policy", 1,
          "invalid country code \"USA\"");
    fails("country code digits", "geo_country 10 U1;\n", "err.policy", 1,
          "two letters");
    fails("geo weight", "geo_country x RU;\n", "err.policy", 1,
          "invalid weight");
    fails("ASN not numeric", "geo_asn 10 64496\n ASX;\n", "err.policy", 2,
          "invalid ASN \"ASX\"");
    fails("ASN zero", "geo_asn 10 0;\n", "err.policy", 1, "invalid ASN");
    fails("ASN too big", "geo_asn 10 4294967296;\n", "err.policy", 1,
          "invalid ASN");

    fails("rule id is a built-in", "rule self_signed subject x 10;\n",
          "err.policy", 1, "is a built-in signal");
    fails("duplicate rule id",
          "rule a subject x 10;\nrule a issuer y 10;\n", "err.policy", 2,
          "duplicate rule id \"a\"");
    fails("rule id syntax", "rule Bad-Id subject x 10;\n", "err.policy", 1,
          "invalid rule id");
    fails("rule id too long",
          "rule a23456789012345678901234567890123 subject x 1;\n",
          "err.policy", 1, "invalid rule id");
    fails("rule field", "rule a owner x 10;\n", "err.policy", 1,
          "unknown field \"owner\"");
    fails("rule regex", "\n\nrule a subject ~( 10;\n", "err.policy", 3,
          "invalid regular expression");
    fails("rule weight", "rule a subject x 2000;\n", "err.policy", 1,
          "invalid weight");
    fails("rule detail control char", "rule a subject x 1 \"a\\nb\";\n",
          "err.policy", 1, "invalid detail");

    fails("exempt without condition",
          "\nexempt {\n    signals expired;\n    reason \"x\";\n}\n",
          "err.policy", 2, "exempt without a condition");
    fails("empty exempt", "exempt { }\n", "err.policy", 1,
          "without a condition");
    fails("exempt unknown condition", "exempt {\n    owner x;\n}\n",
          "err.policy", 2, "unknown exempt condition \"owner\"");
    fails("exempt unknown signal",
          "exempt {\n    sni a.example;\n    signals expired Nope;\n}\n",
          "err.policy", 3, "unknown signal \"Nope\"");
    fails("exempt unknown rule id",
          "exempt {\n    sni a.example;\n    signals\n  no_such_rule;\n}\n"
          "rule other subject x 1;\n",
          "err.policy", 4, "unknown signal \"no_such_rule\"");
    fails("exempt bad fingerprint",
          "exempt {\n    fingerprint abc;\n}\n", "err.policy", 2,
          "invalid fingerprint");
    fails("exempt bad dst", "exempt {\n    dst 10.0.0.0/40;\n}\n",
          "err.policy", 2, "invalid address");
    fails("exempt bad sni", "exempt {\n    sni *;\n}\n", "err.policy", 2,
          "invalid host pattern");
    fails("exempt empty condition", "exempt {\n    sni;\n}\n", "err.policy",
          2, "needs at least one value");
    fails("two reasons",
          "exempt {\n dst 10.0.0.1;\n reason a;\n reason b;\n}\n",
          "err.policy", 4, "expected one \"reason TEXT;\"");
    fails("nested block", "exempt {\n    sni { }\n}\n", "err.policy", 2,
          "takes no block");
    fails("exempt without {", "exempt;\n", "err.policy", 1,
          "expected \"{\" after \"exempt\"");
    fails("block on a plain statement", "weight expired 1 {\n}\n",
          "err.policy", 1, "takes no block");
    fails("unclosed exempt", "exempt {\n    dst 10.0.0.1;\n", "err.policy",
          3, "expected \"}\"");

    fails("missing ;", "weight expired 1;\nweight expired 2\n", "err.policy",
          3, "unexpected end of file, expected \";\"");
    fails("unterminated quote", "\nrule a subject \"abc 1;\n", "err.policy",
          2, "closing \"");
    fails("unexpected }", "weight expired 1;\n}\n", "err.policy", 2,
          "unexpected \"}\"");
    fails("} ends a statement", "exempt {\n  dst 10.0.0.1 }\n",
          "err.policy", 2, "expected \";\"");
    fails("lone ;", "weight expired 1;;\n", "err.policy", 1,
          "unexpected \";\"");
    fails("text after quote", "name \"a\"b;\n", "err.policy", 1,
          "after a quoted word");
}


/* ---- includes ---------------------------------------------------------- */


static void
test_includes(void)
{
    int            i;
    char           name[64], text[128];
    cg_error_t     err;
    cg_policy_t   *p;

    mkdir(tpath("sub"), 0755);
    mkdir(tpath("sub/lists"), 0755);

    write_file("sub/lists/dv.list", "ZeroSSL\n");
    write_file("sub/inner.policy",
               "weight expired 7;\n"
               "list free_dv_issuer lists/dv.list;  # relative to sub/\n");
    write_file("sub/base.policy",
               "name base;\nthreshold tag 11;\ninclude inner.policy;\n");

    p = load_text("top.policy",
                  "include sub/base.policy;\nname top;\nweight no_san 3;\n",
                  &err);
    if (ok(p != NULL, "nested include loads")) {
        is_str(cg_policy_name(p), "top", "later name wins");
        is_int(p->tag_threshold, 11, "included threshold applies");
        is_int(p->weight[sig("expired")], 7, "twice-included weight");
        is_int(p->weight[sig("no_san")], 3, "own weight");
        is_int(p->lists[CG_LIST_FREE_DV].n, 1,
               "list resolved relative to the including file");
    } else {
        printf("#   %s:%u: %s\n", err.file, err.line, err.msg);
    }
    cg_policy_free(p);

    /* an error inside an included file names it */
    write_file("sub/broken.policy", "# fine\nweight expired x;\n");
    fails("error in an included file", "include sub/broken.policy;\n",
          "sub/broken.policy", 2, "invalid weight");

    fails("missing include", "\n\ninclude nope.policy;\n", "err.policy", 3,
          "include");

    /* loops: direct, and through another name for the same file */
    write_file("loop-a.policy", "include loop-b.policy;\n");
    write_file("loop-b.policy", "\ninclude sub/../loop-a.policy;\n");
    fails("include loop", "include loop-a.policy;\n", "loop-b.policy", 2,
          "include loop");
    fails("include itself", "weight expired 1;\ninclude err.policy;\n",
          "err.policy", 2, "include loop");

    /* depth: d1 includes d2 ... d9; top + 8 levels is the limit */
    for (i = 1; i <= 9; i++) {
        snprintf(name, sizeof(name), "d%d.policy", i);
        snprintf(text, sizeof(text), "include d%d.policy;\n", i + 1);
        write_file(name, i < 9 ? text : "weight expired 9;\n");
    }
    write_file("d10.policy", "weight expired 10;\n");

    p = load_text("depth8.policy", "include d2.policy;\n", &err);
    ok(p != NULL, "8 levels of include load");
    if (p) {
        is_int(p->weight[sig("expired")], 9, "deepest file read");
    } else {
        printf("#   %s:%u: %s\n", err.file, err.line, err.msg);
    }
    cg_policy_free(p);

    write_file("d9.policy", "include d10.policy;\n");
    fails("9 levels of include", "include d2.policy;\n", "d9.policy", 1,
          "deeper than 8");
}


/* ---- memory loader ----------------------------------------------------- */


/* "ct_log_list FILE;": OpenSSL's CT log file, its errors at its lines */

#define CG_TEST_CT_KEY                                                      \
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEfahLEimAoz2t01p3uMziiLOl/fHTDM0Y"  \
    "DOhBRuiBARsV4UvxG2LdNgoIGLrtCzWE0J5APC2em4JlvR8EEEFMoA=="

static void
test_ct_log_list(void)
{
    cg_error_t    err;
    cg_policy_t  *p;

    write_file("ct.cnf", "enabled_logs = pilot\n\n[pilot]\n"
               "description = Google 'Pilot' log\nkey = " CG_TEST_CT_KEY "\n");
    p = load_text("ct.policy", "ct_log_list ct.cnf;\n", &err);
    if (!ok(p != NULL && p->ct_logs != NULL, "ct_log_list loads")) {
        printf("#   %s:%u: %s\n", err.file, err.line, err.msg);
    }
    cg_policy_free(p);

    p = load_text("ct2.policy", "ct_log_list ct.cnf;\nct_log_list ct.cnf;\n",
                  &err);
    ok(p != NULL && p->ct_logs != NULL, "a second ct_log_list replaces it");
    cg_policy_free(p);

    p = load_text("ct3.policy", "name no-list;\n", &err);
    ok(p != NULL && p->ct_logs == NULL, "no ct_log_list: no logs");
    cg_policy_free(p);

    fails("ct_log_list missing", "\nct_log_list nosuch.cnf;\n", "err.policy",
          2, "nosuch.cnf");
    fails("ct_log_list two files", "ct_log_list a b;\n", "err.policy", 1,
          "expected: ct_log_list FILE;");

    write_file("ct-nokey.cnf", "enabled_logs = a\n[a]\ndescription = x\n");
    fails("ct log without a key", "ct_log_list ct-nokey.cnf;\n",
          "ct-nokey.cnf", 2, "has no \"key\"");
    write_file("ct-badkey.cnf", "enabled_logs = a\n[a]\ndescription = x\n"
               "key = AAAA\n");
    fails("ct log with a bad key", "ct_log_list ct-badkey.cnf;\n",
          "ct-badkey.cnf", 4, "invalid key");
    write_file("ct-nolog.cnf", "# x\nenabled_logs = b\n");
    fails("ct log list naming no section", "ct_log_list ct-nolog.cnf;\n",
          "ct-nolog.cnf", 2, "expected a [b] section");
    write_file("ct-none.cnf", "[a]\ndescription = x\n");
    fails("ct log list without enabled_logs", "\n\nct_log_list ct-none.cnf;\n",
          "err.policy", 3, "no \"enabled_logs\"");
}


static void
test_mem(void)
{
    cg_error_t     err;
    cg_policy_t   *p;
    const char    *t = "name m;\nweight expired 3;\n";

    ok(cg_policy_load_mem(&p, t, strlen(t), "mem.policy", &err) == CG_OK,
       "memory policy loads");
    if (p) {
        is_str(cg_policy_name(p), "m", "memory policy name");
        is_int(p->weight[sig("expired")], 3, "memory policy weight");
        cg_policy_free(p);
    }

    t = "\ninclude /etc/passwd;\n";
    ok(cg_policy_load_mem(&p, t, strlen(t), "mem.policy", &err)
       == CG_ERR_SYNTAX && p == NULL, "memory policy refuses include");
    is_int(err.line, 2, "include refusal at line 2");
    is_str(err.file, "mem.policy", "memory policy error names it");

    t = "ct_log_list /etc/passwd;\n";
    ok(cg_policy_load_mem(&p, t, strlen(t), "mem.policy", &err)
       == CG_ERR_SYNTAX && p == NULL, "memory policy refuses ct_log_list");

    t = "list public_ca /etc/passwd;\n";
    ok(cg_policy_load_mem(&p, t, strlen(t), NULL, &err) == CG_ERR_SYNTAX,
       "memory policy refuses list");
    is_str(err.file, "(memory)", "unnamed memory policy");

    ok(cg_policy_load_mem(&p, "weight\0expired 1;", 17, "m", &err)
       == CG_ERR_SYNTAX, "NUL byte in a policy fails");
    ok(strstr(err.msg, "NUL") != NULL, "NUL byte message");

    cg_policy_free(NULL);
    is_str(cg_policy_name(NULL), "", "name of NULL policy");

    ok(cg_policy_load(&p, "", &err) == CG_ERR_ARG, "empty path");
    ok(cg_policy_load(&p, tpath("no.policy"), &err) == CG_ERR_IO,
       "missing policy is an IO error");
    is_str(err.file, tpath("no.policy"), "missing policy named");
}


/* ---- the shipped policies ---------------------------------------------- */


static const char *
root(void)
{
    static char  dir[512];
    char        *s;

    if (access("policies/default.policy", R_OK) == 0) {
        return ".";
    }

    snprintf(dir, sizeof(dir), "%s", __FILE__);
    s = strstr(dir, "t/unit/policy.c");
    if (s) {
        *s = '\0';
        if (s == dir) {
            return ".";
        }
        return dir;
    }

    return ".";
}


static int
dn_in(const cg_policy_t *p, cg_list_kind_t kind, const char *dn)
{
    return cg_patlist_match(&p->lists[kind], dn, strlen(dn)) != NULL;
}


static void
test_shipped(void)
{
    int           w;
    char          path[600];
    cg_error_t    err;
    cg_policy_t  *def, *strict, *mon;

#define W(p, id)  ((p)->weight[sig(id)])

    snprintf(path, sizeof(path), "%s/policies/default.policy", root());
    def = NULL;
    if (!ok(cg_policy_load(&def, path, &err) == CG_OK,
            "policies/default.policy loads"))
    {
        printf("#   %s:%u: %s\n", err.file, err.line, err.msg);
        return;
    }

    is_str(cg_policy_name(def), "default", "default name");
    is_int(def->tag_threshold, 30, "default tag 30");
    is_int(def->block_threshold, 70, "default block 70");

    w = W(def, "self_signed") + W(def, "untrusted_chain");
    ok(w >= def->block_threshold,
       "default: self-signed with a SAN blocks (%d)", w);
    w = W(def, "free_dv_issuer") + W(def, "issued_recently");
    ok(w < def->tag_threshold, "default: fresh free DV allows (%d)", w);
    ok(W(def, "free_dv_issuer") < def->tag_threshold,
       "default: free DV alone allows");
    ok(W(def, "blocklisted") >= def->block_threshold,
       "default: blocklisted alone blocks");
    ok(W(def, "default_subject") + W(def, "untrusted_chain")
       >= def->block_threshold, "default: untrusted tool default blocks");
    ok(W(def, "mimicked_ca") + W(def, "untrusted_chain")
       >= def->block_threshold, "default: mimicked CA blocks");
    ok(W(def, "staging_issuer") + W(def, "untrusted_chain")
       >= def->block_threshold, "default: staging chain blocks");
    w = W(def, "untrusted_chain");
    ok(w >= def->tag_threshold && w < def->block_threshold,
       "default: internal CA tags (%d)", w);
    is_int(W(def, "geo_country"), 1, "default geo_country weight");
    is_int((int) (def->ngeo_country + def->ngeo_asn), 0,
           "default geo lists empty");
    is_int((int) def->blocklist.n, 0, "shipped blocklist has no entries");
    is_int((int) def->nexempts, 0, "no default exemptions");

    ok(def->lists[CG_LIST_FREE_DV].n >= 4, "free DV list loaded");
    ok(dn_in(def, CG_LIST_FREE_DV, "CN=R11,O=Let's Encrypt,C=US"),
       "free DV: Let's Encrypt R11");
    ok(dn_in(def, CG_LIST_FREE_DV, "CN=E6,O=Let's Encrypt,C=US"),
       "free DV: Let's Encrypt E6");
    ok(dn_in(def, CG_LIST_FREE_DV,
             "CN=ZeroSSL RSA Domain Secure Site CA,O=ZeroSSL,C=AT"),
       "free DV: ZeroSSL");
    ok(dn_in(def, CG_LIST_FREE_DV, "CN=WR1,O=Google Trust Services,C=US"),
       "free DV: GTS WR1");
    ok(dn_in(def, CG_LIST_FREE_DV,
             "CN=cPanel\\, Inc. Certification Authority,O=cPanel\\, Inc.,"
             "L=Houston,ST=TX,C=US"),
       "free DV: cPanel with RFC 2253 escaped comma");
    ok(!dn_in(def, CG_LIST_FREE_DV,
              "CN=(STAGING) Ersatz Edamame E1,O=(STAGING) Let's Encrypt,"
              "C=US"), "free DV: staging is not free DV");
    ok(!dn_in(def, CG_LIST_FREE_DV,
              "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1,"
              "O=DigiCert Inc,C=US"), "free DV: DigiCert is not");

    ok(dn_in(def, CG_LIST_STAGING,
             "CN=(STAGING) Ersatz Edamame E1,O=(STAGING) Let's Encrypt,C=US"),
       "staging: LE staging");
    ok(dn_in(def, CG_LIST_STAGING, "CN=Fake LE Intermediate X1"),
       "staging: Fake LE Intermediate");
    ok(!dn_in(def, CG_LIST_STAGING, "CN=R11,O=Let's Encrypt,C=US"),
       "staging: production LE is not");

    ok(dn_in(def, CG_LIST_DEFAULT_SUBJECT,
             "CN=Major Cobalt Strike,OU=AdvancedPenTesting,O=cobaltstrike,"
             "L=Somewhere,ST=Cyberspace,C=Earth"),
       "default subject: Cobalt Strike");
    ok(dn_in(def, CG_LIST_DEFAULT_SUBJECT,
             "CN=x,O=Internet Widgits Pty Ltd,ST=Some-State,C=AU"),
       "default subject: OpenSSL");
    ok(dn_in(def, CG_LIST_DEFAULT_SUBJECT, "O=Acme Co"),
       "default subject: Go");
    ok(!dn_in(def, CG_LIST_DEFAULT_SUBJECT, "O=Acme Corporation"),
       "default subject: Acme Corporation is not Go's default");
    ok(dn_in(def, CG_LIST_DEFAULT_SUBJECT, "CN=,OU=,O=,L=,ST=,C="),
       "default subject: empty DN");
    ok(dn_in(def, CG_LIST_DEFAULT_SUBJECT, "C=,CN="),
       "default subject: empty DN subset");
    ok(!dn_in(def, CG_LIST_DEFAULT_SUBJECT, "CN=,O=Example"),
       "default subject: partly empty DN is not");
    ok(!dn_in(def, CG_LIST_DEFAULT_SUBJECT,
              "CN=www.example.com,O=Example Inc,L=Berlin,C=DE"),
       "default subject: an ordinary DN is not");

    ok(dn_in(def, CG_LIST_PUBLIC_CA, "CN=DigiCert Global Root G2"),
       "public CA: DigiCert");
    ok(dn_in(def, CG_LIST_PUBLIC_CA, "CN=Amazon RSA 2048 M01,O=Amazon"),
       "public CA: Amazon");
    ok(dn_in(def, CG_LIST_PUBLIC_CA, "CN=ISRG Root X1"),
       "public CA: ISRG");
    ok(!dn_in(def, CG_LIST_PUBLIC_CA, "CN=settings.example.org,O=Amazonia"),
       "public CA: no match inside other words");
    ok(dn_in(def, CG_LIST_PUBLIC_CA, "CN=SSL.com RSA SSL subCA,O=SSL Corp"),
       "public CA: SSL.com");
    ok(!dn_in(def, CG_LIST_PUBLIC_CA,
              "CN=edellroot.badssl.com,O=BadSSL,L=San Francisco,C=US"),
       "public CA: badssl.com is not SSL.com");
    ok(!dn_in(def, CG_LIST_PUBLIC_CA,
              "CN=(STAGING) Ersatz Edamame E1,O=(STAGING) Let's Encrypt,C=US"),
       "public CA: LE staging is left to staging_issuer");
    ok(dn_in(def, CG_LIST_PUBLIC_CA, "CN=R11,O=Let's Encrypt,C=US"),
       "public CA: Let's Encrypt");

    snprintf(path, sizeof(path), "%s/policies/strict.policy", root());
    strict = NULL;
    if (ok(cg_policy_load(&strict, path, &err) == CG_OK,
           "policies/strict.policy loads"))
    {
        is_str(cg_policy_name(strict), "strict", "strict name");
        ok(strict->block_threshold < def->block_threshold
           && strict->tag_threshold < def->tag_threshold,
           "strict thresholds are lower");
        w = W(strict, "free_dv_issuer") + W(strict, "issued_recently");
        ok(w >= strict->tag_threshold && w < strict->block_threshold,
           "strict: fresh free DV tags (%d)", w);
        ok(W(strict, "hostname_mismatch") >= strict->block_threshold,
           "strict: hostname mismatch blocks");
        ok(strict->lists[CG_LIST_DEFAULT_SUBJECT].n
           == def->lists[CG_LIST_DEFAULT_SUBJECT].n,
           "strict inherits the lists");
        cg_policy_free(strict);
    } else {
        printf("#   %s:%u: %s\n", err.file, err.line, err.msg);
    }

    snprintf(path, sizeof(path), "%s/policies/monitor.policy", root());
    mon = NULL;
    if (ok(cg_policy_load(&mon, path, &err) == CG_OK,
           "policies/monitor.policy loads"))
    {
        is_str(cg_policy_name(mon), "monitor", "monitor name");
        is_int(mon->block_threshold, INT_MAX, "monitor never blocks");
        is_int(mon->tag_threshold, def->tag_threshold,
               "monitor tags like default");
        is_int(W(mon, "self_signed"), W(def, "self_signed"),
               "monitor weights are the default's");
        cg_policy_free(mon);
    } else {
        printf("#   %s:%u: %s\n", err.file, err.line, err.msg);
    }

    cg_policy_free(def);

#undef W
}


/* ---- issuer pins and warnings ------------------------------------------ */


static void
test_pins(void)
{
    unsigned      k;
    cg_error_t    err, w;
    cg_policy_t  *p;
    cg_exempt_t  *ex;

    p = load_text("pins.policy",
                  "exempt {\n"
                  "    issuer_spki 9F86D081884C7D659A2FEAA0C55AD015"
                  "A3BF4F1B2B0B822CD15D6C15B0F00A08\n"
                  "        sha256:00000000000000000000000000000000"
                  "00000000000000000000000000000001;\n"
                  "    issuer_fingerprint sha256:9f:86:d0:81:88:4c:7d:65:9a:"
                  "2f:ea:a0:c5:5a:d0:15:a3:bf:4f:1b:2b:0b:82:2c:d1:5d:6c:"
                  "15:b0:f0:0a:08;\n"
                  "}\n", &err);
    ok(p != NULL, "issuer_spki and issuer_fingerprint load (%s)", err.msg);

    if (p && p->nexempts == 1) {
        ex = &p->exempts[0];
        is_int(ex->issuer_spki.n, 2, "two issuer_spki values");
        is_int(ex->issuer_fingerprint.n, 1, "one issuer_fingerprint value");
        ok(ex->issuer_spki.n == 2 && ex->issuer_spki.items[0].len == 32
           && ex->issuer_spki.items[0].md[31] == 0x01,
           "issuer_spki values sorted, 32 bytes");
        ok(ex->issuer_fingerprint.n == 1
           && ex->issuer_fingerprint.items[0].md[0] == 0x9f,
           "issuer_fingerprint with colons and a prefix");
        ok(cg_policy_warning(p, 0, &w) == CG_ERR_ARG,
           "pins alone: no warning");
    }

    cg_policy_free(p);

    fails("issuer_spki sha1",
          "exempt {\n    issuer_spki sha1:a94a8fe5ccb19ba61c4c0873d391e987"
          "982fbbd3;\n}\n", "err.policy", 2, "invalid issuer_spki");
    fails("issuer_spki 40 hex digits",
          "exempt {\n    issuer_spki a94a8fe5ccb19ba61c4c0873d391e987982fbbd3;"
          "\n}\n", "err.policy", 2, "expected a SHA-256");
    fails("issuer_fingerprint short",
          "exempt {\n  sni a.example;\n  issuer_fingerprint abcd;\n}\n",
          "err.policy", 3, "invalid issuer_fingerprint");
    fails("issuer_spki without a value", "exempt {\n    issuer_spki;\n}\n",
          "err.policy", 2, "needs at least one value");

    /* warnings: issuer by DN without a pin, at the issuer's line */
    write_file("inc-warn.policy",
               "exempt {\n    sni .corp.example;\n\n"
               "    issuer \"CN=Corp CA\";\n}\n");
    p = load_text("warn.policy",
                  "exempt {\n    issuer \"CN=Corp CA\";\n}\n"
                  "exempt {\n    issuer \"CN=Corp CA\";\n"
                  "    issuer_spki sha256:" "9f86d081884c7d659a2feaa0c55ad015"
                  "a3bf4f1b2b0b822cd15d6c15b0f00a08;\n}\n"
                  "exempt {\n    issuer \"CN=Corp CA\";\n"
                  "    fingerprint 9f86d081884c7d659a2feaa0c55ad015"
                  "a3bf4f1b2b0b822cd15d6c15b0f00a08;\n}\n"
                  "exempt {\n    subject \"CN=x\";\n    sni x.example;\n}\n"
                  "include inc-warn.policy;\n", &err);
    ok(p != NULL, "a policy with warnings loads (%s)", err.msg);

    if (p) {
        memset(&w, 0, sizeof(w));
        is_int(cg_policy_warning(p, 0, &w), CG_OK, "first warning");
        is_str(w.file, tpath("warn.policy"), "first warning: its file");
        is_int(w.line, 2, "first warning: the issuer line");
        ok(strstr(w.msg, "issuer_spki") != NULL
           && strstr(w.msg, "by name only") != NULL,
           "first warning: says why and what to use");

        is_int(cg_policy_warning(p, 1, &w), CG_OK, "second warning");
        is_str(w.file, tpath("inc-warn.policy"),
               "second warning: the included file");
        is_int(w.line, 4, "second warning: its issuer line");

        for (k = 0; cg_policy_warning(p, k, &w) == CG_OK; k++) {
            /* count */
        }
        is_int(k, 2, "pinned, fingerprinted and issuer-less exempts: "
               "no warning");
        cg_policy_free(p);
    }

    ok(cg_policy_warning(NULL, 0, &w) == CG_ERR_ARG, "warning: NULL policy");
}


static void
cleanup(void)
{
    char  cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
        printf("# could not remove %s\n", tmpdir);
    }
}


int
main(void)
{
    const char  *t;

    t = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/cg-policy-XXXXXX", t ? t : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 2;
    }

    test_patterns();
    test_digests();
    test_cidrs();
    test_statements();
    test_errors();
    test_includes();
    test_mem();
    test_shipped();
    test_pins();

    cleanup();

    return done_testing();
}
