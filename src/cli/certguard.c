/*
 * certguard: the command-line tool for scoring certificate chains against a
 * policy, the way the nginx module would score them.
 *
 *   certguard check --policy FILE [--ca-file FILE [--no-system-roots]]
 *       [--sni NAME] [--dst IP[:PORT]] [--at UNIXTIME] [--format json|cef|text]
 *       [--geoip-country FILE] [--geoip-asn FILE] [--client-sni NAME]
 *       [--memory DIR] [--crl FILE]... [--ocsp FILE] CHAIN.pem...|DIR
 *   certguard diff --policy OLD --policy NEW [--sni NAME] [--at UNIXTIME]
 *       [--ca-file FILE] [--format text|json] CHAIN.pem...|DIR
 *   certguard report --policy P [--policy NEW] DIR|FILES -o report.html
 *   certguard memory DIR show NAME|export|import FILE|forget NAME
 *   certguard lint FILE...
 *   certguard pin [--fingerprint] CA.pem...
 *   certguard signals
 *   certguard version
 *
 * Exit status: 0 when every input reached a verdict (or every policy linted
 * clean), 2 for usage errors and unreadable or malformed input, each such
 * problem reported as one line on stderr.  The other inputs are still
 * evaluated.  The output formats are a contract other tools parse: see
 * docs/cef.md and the README.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>

#include "cli.h"
#include "cg_memory.h"
#include "memory.h"


#define CLI_MAX_INPUT   (64 * 1024 * 1024)

#define cli_nelem(a)    (sizeof(a) / sizeof((a)[0]))


typedef enum {
    CLI_JSON = 0,
    CLI_CEF,
    CLI_TEXT
} cli_format_t;


typedef struct {
    const char     *policy_file;
    const char     *ca_file;            /* added to the system bundle */
    unsigned        no_system:1;        /* ... or instead of it */
    const char     *sni;
    const char     *client_sni;         /* the SNI seen inside a tunnel */
    const char     *geoip_country;
    const char     *geoip_asn;
    const char     *memory_dir;         /* --memory: read, then updated */
    char            dst_addr[64];       /* without brackets */
    unsigned        dst_port;
    unsigned        has_dst:1;
    unsigned        has_at:1;
    int64_t         at;
    cli_format_t    format;

    const char    **pool_files;         /* --intermediates, in order */
    unsigned        npool_files;
    unsigned        max_depth;          /* --max-depth */
    unsigned        has_max_depth:1;

    cg_policy_t    *policy;
    cg_trust_t     *trust;
    cg_geoip_t     *geoip;
    cg_memory_t    *memory;
    cg_crls_t      *crls;               /* --crl, every file's */
    unsigned char  *ocsp;               /* --ocsp: a stapled response */
    size_t          ocsp_len;
    cg_intermediates_t  *pool;
    cg_certs_t     *certs;              /* the chains' certificates */

    char           *out;                /* formatter buffer, grown on need */
    size_t          out_len;
} cli_check_t;


static void cli_usage(FILE *f);
static int cli_parse_dst(cli_check_t *c, const char *arg);
static int cli_check(int argc, char **argv);
static int cli_check_file(cli_check_t *c, const char *path, int many);
static int cli_remember(cli_check_t *c, const cg_input_t *in,
    const cg_result_t *res);
static int cli_format(cli_check_t *c, const cg_result_t *res,
    const cg_event_t *ev);
static int cli_lint(int argc, char **argv);
static int cli_pin(int argc, char **argv);
static int cli_pin_file(const char *path, int kind);
static int cli_signals(void);
static int cli_version(void);


static void
cli_usage(FILE *f)
{
    fputs(
"usage: certguard check --policy FILE [--ca-file FILE [--no-system-roots]]\n"
"                       [--sni NAME] [--dst IP[:PORT]] [--at UNIXTIME]\n"
"                       [--format json|cef|text]\n"
"                       [--geoip-country FILE] [--geoip-asn FILE]\n"
"                       [--client-sni NAME] [--memory DIR]\n"
"                       [--crl FILE]... [--ocsp FILE]\n"
"                       [--intermediates FILE]... [--max-depth N]\n"
"                       [--no-verify-memo] [--verify-memo-stats]\n"
"                       CHAIN.pem...|DIR\n"
"       certguard diff --policy OLD --policy NEW [--sni NAME]\n"
"                      [--at UNIXTIME] [--ca-file FILE]\n"
"                      [--format text|json] CHAIN.pem...|DIR\n"
"       certguard report --policy P [--policy NEW] [--ca-file FILE]\n"
"                        DIR|FILES -o report.html\n"
"       certguard lint POLICY...\n"
"       certguard pin [--fingerprint] CA.pem...\n"
"       certguard signals\n"
"       certguard version\n", f);
    fputs(cli_memory_usage, f);
    fputs(
"\n"
"check   score each chain (PEM or DER, leaf first; \"-\" reads stdin) and\n"
"        print one result per file: JSON (default; one object a line, with\n"
"        a \"file\" key when there are several files), the CEF record the\n"
"        proxy would log, or text for people.  --at evaluates at that unix\n"
"        time; --dst is 1.2.3.4, 1.2.3.4:443, ::1 or [::1]:443;\n"
"        --client-sni is the SNI a client sent inside a CONNECT tunnel\n"
"        (sni_mismatch fires when it is not the --sni name; CEF\n"
"        destinationServiceName).  Chains\n"
"        verify against the system CA bundle and the --ca-file roots;\n"
"        --no-system-roots leaves the system bundle out.\n"
"        --intermediates (repeatable) names PEM files of CA certificates\n"
"        that complete a chain whose server left its intermediate out;\n"
"        they are never anchors.  --max-depth is the most intermediates\n"
"        a verified path may hold (self-issued ones not counted).  A capture\n"
"        directory (certguard_capture) or its files replay what the proxy\n"
"        saw: name, destination, client SNI and time (last seen) come\n"
"        from each chain's sidecar unless an option gives them.\n"
"        --memory reads the certificate memory in DIR (created if need\n"
"        be) and records each chain in it, in the order given.\n"
"        --crl (repeatable) names CRLs, PEM or DER, several a file: the\n"
"        verified path is checked against them (revoked, crl_invalid); a\n"
"        certificate whose CA has none there is not checked.  --ocsp is a\n"
"        DER OCSP response, as a server would staple it with every chain\n"
"        (revoked, ocsp_invalid).\n"
"        A signature the run verified once is not checked again for the\n"
"        same two certificates, and a certificate above a leaf is\n"
"        described once (--no-verify-memo checks and describes every one;\n"
"        --verify-memo-stats prints the memo's counters to stderr).\n"
"diff    score each chain under both policies; one line per chain whose\n"
"        verdict changes, then \"N of M verdicts change\".\n"
"report  one self-contained HTML file: verdict mix, score histogram,\n"
"        signals, issuers and destinations of blocks and tags, and with\n"
"        two policies what changes.\n"
"memory  show what a memory holds for a name, export it as JSON lines,\n"
"        import such lines (a known-good inventory), forget a name.\n"
"lint    check policy files; \"FILE: ok\" or file:line: message;\n"
"        warnings (file:line: warning: ...) on stderr do not fail it.\n"
"pin     print the exemption condition that pins each certificate of\n"
"        the files: issuer_spki (its key), or with --fingerprint\n"
"        issuer_fingerprint (the certificate itself).\n"
"signals list the built-in signals: id, default weight, description.\n"
"\n"
"Exit status: 0 when every file got a verdict; 2 on usage errors and on\n"
"unreadable or malformed input (one line on stderr per problem).\n", f);
}


int
cli_usage_error(const char *fmt, ...)
{
    va_list  ap;

    fputs("certguard: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see certguard --help)\n", stderr);

    return CLI_EXIT_ERR;
}


/* A file name or message made safe for one line of stderr: a name with a
 * newline in it must not split the one-line error contract. */
const char *
cli_safe(const char *s, char *buf, size_t len)
{
    size_t  i;

    for (i = 0; s[i] && i < len - 1; i++) {
        buf[i] = ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    }

    buf[i] = '\0';

    return buf;
}


/* RFC 8259 string; bytes that are not UTF-8 become U+FFFD so the line
 * stays valid JSON whatever the file name is. */
void
cli_json_str(FILE *f, const char *s)
{
    size_t                i, k, n;
    uint32_t              cp;
    const unsigned char  *p;

    p = (const unsigned char *) s;
    n = strlen(s);

    fputc('"', f);

    for (i = 0; i < n; i += k) {
        k = cg_utf8_decode(p + i, n - i, &cp);

        if (k == 0) {
            fputs("\\ufffd", f);
            k = 1;

        } else if (cp == '"' || cp == '\\') {
            fprintf(f, "\\%c", (int) cp);

        } else if (cp < 0x20 || cp == 0x7f) {
            fprintf(f, "\\u%04x", (unsigned) cp);

        } else {
            fwrite(p + i, 1, k, f);
        }
    }

    fputc('"', f);
}


int
cli_read_file(const char *path, unsigned char **data, size_t *len,
    const char **problem)
{
    FILE           *f;
    size_t          n, size, got;
    unsigned char  *buf, *nb;

    *data = NULL;
    *len = 0;

    if (strcmp(path, "-") == 0) {
        f = stdin;

    } else {
        f = fopen(path, "rb");
        if (f == NULL) {
            *problem = strerror(errno);
            return -1;
        }
    }

    buf = NULL;
    size = 0;
    n = 0;

    for ( ;; ) {
        if (n == size) {
            if (size >= CLI_MAX_INPUT) {
                *problem = "file too large (over 64 MB)";
                goto failed;
            }

            size = size ? size * 2 : 16384;
            nb = realloc(buf, size);
            if (nb == NULL) {
                *problem = "out of memory";
                goto failed;
            }
            buf = nb;
        }

        got = fread(buf + n, 1, size - n, f);
        n += got;

        if (got == 0) {
            break;
        }
    }

    if (ferror(f)) {
        *problem = strerror(errno ? errno : EIO);
        goto failed;
    }

    if (f != stdin) {
        fclose(f);
    }

    *data = buf;
    *len = n;

    return 0;

failed:

    free(buf);

    if (f != stdin) {
        fclose(f);
    }

    return -1;
}


/* 1.2.3.4, 1.2.3.4:443, ::1, [::1], [::1]:443 */
static int
cli_parse_dst(cli_check_t *c, const char *arg)
{
    char            *end;
    const char      *addr, *port, *close;
    size_t           alen;
    unsigned long    p;
    unsigned char    bin[16];

    port = NULL;

    if (arg[0] == '[') {
        close = strchr(arg, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
            return -1;
        }

        addr = arg + 1;
        alen = (size_t) (close - addr);
        port = close[1] == ':' ? close + 2 : NULL;

        if (alen == 0 || alen >= sizeof(c->dst_addr)) {
            return -1;
        }

        memcpy(c->dst_addr, addr, alen);
        c->dst_addr[alen] = '\0';

        if (inet_pton(AF_INET6, c->dst_addr, bin) != 1) {
            return -1;
        }

    } else if (strchr(arg, ':') != strrchr(arg, ':')) {
        /* two colons or more: a bare IPv6 address, no port */
        if (strlen(arg) >= sizeof(c->dst_addr)
            || inet_pton(AF_INET6, arg, bin) != 1)
        {
            return -1;
        }

        strcpy(c->dst_addr, arg);

    } else {
        close = strchr(arg, ':');
        alen = close ? (size_t) (close - arg) : strlen(arg);
        port = close ? close + 1 : NULL;

        if (alen == 0 || alen >= sizeof(c->dst_addr)) {
            return -1;
        }

        memcpy(c->dst_addr, arg, alen);
        c->dst_addr[alen] = '\0';

        if (inet_pton(AF_INET, c->dst_addr, bin) != 1) {
            return -1;
        }
    }

    c->dst_port = 0;

    if (port) {
        if (*port < '0' || *port > '9') {
            return -1;
        }

        errno = 0;
        p = strtoul(port, &end, 10);

        if (errno || *end != '\0' || p == 0 || p > 65535) {
            return -1;
        }

        c->dst_port = (unsigned) p;
    }

    c->has_dst = 1;

    return 0;
}


int
cli_parse_at(const char *arg, int64_t *at)
{
    char       *end;
    long long   v;

    if (!((arg[0] >= '0' && arg[0] <= '9')
          || (arg[0] == '-' && arg[1] >= '0' && arg[1] <= '9')))
    {
        return -1;
    }

    errno = 0;
    v = strtoll(arg, &end, 10);

    /* keep rt = at * 1000 representable */
    if (errno || *end != '\0' || v > INT64_MAX / 1000
        || v < INT64_MIN / 1000)
    {
        return -1;
    }

    *at = v;

    return 0;
}


/*
 * Matches "--name VALUE" and "--name=VALUE" at argv[*i]; 1 on a match (and
 * *i moved past the value), 0 when argv[*i] is another option, -1 when the
 * value is missing.
 */
int
cli_option(int argc, char **argv, int *i, const char *name,
    const char **value)
{
    size_t       n;
    const char  *a;

    a = argv[*i];
    n = strlen(name);

    if (strncmp(a, name, n) != 0) {
        return 0;
    }

    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }

    if (a[n] != '\0') {
        return 0;
    }

    if (*i + 1 >= argc) {
        return -1;
    }

    *value = argv[++*i];

    return 1;
}


static int
cli_check(int argc, char **argv)
{
    int           i, rc, status, nfiles, files_at, opts_done, m, nchains;
    unsigned      k;
    char          safe[512];
    char        **chains;
    const char   *v, *dst, *at, *fmt, *ocsp, *depth, **files, **crls;
    int           ncrls;
    const char   *problem;
    cg_error_t    err;
    cli_check_t   c;

    static const char  *names[] = {
        "--policy", "--ca-file", "--sni", "--dst", "--at", "--format",
        "--geoip-country", "--geoip-asn", "--client-sni", "--memory",
        "--crl", "--ocsp", "--intermediates", "--max-depth"
    };

    memset(&c, 0, sizeof(c));
    chains = NULL;
    dst = NULL;
    at = NULL;
    depth = NULL;
    fmt = "json";
    ocsp = NULL;
    ncrls = 0;

    files = calloc((size_t) argc + 1, sizeof(char *));
    crls = calloc((size_t) argc + 1, sizeof(char *));
    c.pool_files = calloc((size_t) argc + 1, sizeof(char *));
    if (files == NULL || crls == NULL || c.pool_files == NULL) {
        free(files);
        free(crls);
        free(c.pool_files);
        fputs("certguard: out of memory\n", stderr);
        return CLI_EXIT_ERR;
    }

    nfiles = 0;
    opts_done = 0;

    for (i = 2; i < argc; i++) {
        if (opts_done || argv[i][0] != '-' || strcmp(argv[i], "-") == 0) {
            files[nfiles++] = argv[i];
            continue;
        }

        if (strcmp(argv[i], "--") == 0) {
            opts_done = 1;
            continue;
        }

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            cli_usage(stdout);
            free(files);
            free(crls);
            return CLI_EXIT_OK;
        }

        if (strcmp(argv[i], "--no-system-roots") == 0) {
            c.no_system = 1;
            continue;
        }

        if (strcmp(argv[i], "--no-verify-memo") == 0
            || strcmp(argv[i], "--verify-memo-stats") == 0)
        {
            cli_verify_memo_options(argv[i][2] == 'n', argv[i][2] == 'v');
            continue;
        }

        m = 0;
        v = NULL;

        for (k = 0; k < cli_nelem(names); k++) {
            m = cli_option(argc, argv, &i, names[k], &v);
            if (m != 0) {
                break;
            }
        }

        if (m == 0) {
            free(files);
            free(crls);
            return cli_usage_error("check: unknown option \"%s\"",
                                   cli_safe(argv[i], safe, sizeof(safe)));
        }

        if (m < 0) {
            free(files);
            free(crls);
            return cli_usage_error("check: %s needs a value", names[k]);
        }

        switch (k) {
        case 0: c.policy_file = v; break;
        case 1: c.ca_file = v; break;
        case 2: c.sni = v; break;
        case 3: dst = v; break;
        case 4: at = v; break;
        case 5: fmt = v; break;
        case 6: c.geoip_country = v; break;
        case 7: c.geoip_asn = v; break;
        case 9: c.memory_dir = v; break;
        case 10: crls[ncrls++] = v; break;
        case 11: ocsp = v; break;
        case 12: c.pool_files[c.npool_files++] = v; break;
        case 13: depth = v; break;
        default: c.client_sni = v; break;
        }
    }

    rc = CLI_EXIT_ERR;

    if (c.policy_file == NULL) {
        cli_usage_error("check: --policy FILE is required");
        goto done;
    }

    if (nfiles == 0) {
        cli_usage_error("check: no CHAIN.pem given");
        goto done;
    }

    if (c.no_system && c.ca_file == NULL) {
        cli_usage_error("check: --no-system-roots needs --ca-file FILE");
        goto done;
    }

    if (strcmp(fmt, "json") == 0) {
        c.format = CLI_JSON;

    } else if (strcmp(fmt, "cef") == 0) {
        c.format = CLI_CEF;

    } else if (strcmp(fmt, "text") == 0) {
        c.format = CLI_TEXT;

    } else {
        cli_usage_error("check: --format must be json, cef or text, not "
                        "\"%s\"", cli_safe(fmt, safe, sizeof(safe)));
        goto done;
    }

    if (dst && cli_parse_dst(&c, dst) != 0) {
        cli_usage_error("check: --dst \"%s\" is not IP, IP:PORT, IPv6 or "
                        "[IPv6]:PORT", cli_safe(dst, safe, sizeof(safe)));
        goto done;
    }

    if (at) {
        if (cli_parse_at(at, &c.at) != 0) {
            cli_usage_error("check: --at \"%s\" is not a unix time in "
                            "seconds", cli_safe(at, safe, sizeof(safe)));
            goto done;
        }

        c.has_at = 1;

    } else {
        c.at = (int64_t) time(NULL);
    }

    if (depth) {
        char           *end;
        unsigned long   d;

        errno = 0;
        d = strtoul(depth, &end, 10);

        if (depth[0] < '0' || depth[0] > '9' || *end != '\0' || errno
            || d > 65535)
        {
            cli_usage_error("check: --max-depth \"%s\" is not a number "
                            "of intermediates from 0 to 65535",
                            cli_safe(depth, safe, sizeof(safe)));
            goto done;
        }

        c.max_depth = (unsigned) d;
        c.has_max_depth = 1;
    }

    memset(&err, 0, sizeof(err));

    if (cg_policy_load(&c.policy, c.policy_file, &err) != CG_OK) {
        if (err.line) {
            fprintf(stderr, "%s:%u: ",
                    cli_safe(err.file[0] ? err.file : c.policy_file, safe,
                             sizeof(safe)), err.line);
        } else {
            fprintf(stderr, "certguard: %s: ",
                    cli_safe(err.file[0] ? err.file : c.policy_file, safe,
                             sizeof(safe)));
        }

        fprintf(stderr, "%s\n", cli_safe(err.msg, safe, sizeof(safe)));
        goto done;
    }

    memset(&err, 0, sizeof(err));

    if (cg_trust_load(&c.trust, c.ca_file,
                      c.no_system ? CG_TRUST_NO_SYSTEM : 0, &err)
        != CG_OK)
    {
        fprintf(stderr, "certguard: %s: ",
                c.ca_file ? cli_safe(c.ca_file, safe, sizeof(safe))
                          : "system CA bundle");
        fprintf(stderr, "%s\n", cli_safe(err.msg, safe, sizeof(safe)));
        goto done;
    }

    if (cli_load_crls(crls, ncrls, &c.crls) != 0) {
        goto done;
    }

    if (ocsp && cli_read_file(ocsp, &c.ocsp, &c.ocsp_len, &problem) != 0) {
        fprintf(stderr, "certguard: %s: %s\n",
                cli_safe(ocsp, safe, sizeof(safe)), problem);
        goto done;
    }

    if (c.npool_files) {
        memset(&err, 0, sizeof(err));

        if (cg_intermediates_load(&c.pool, c.pool_files, c.npool_files,
                                  &err)
            != CG_OK)
        {
            fprintf(stderr, "certguard: %s: ",
                    cli_safe(err.file[0] ? err.file : c.pool_files[0], safe,
                             sizeof(safe)));
            fprintf(stderr, "%s\n", cli_safe(err.msg, safe, sizeof(safe)));
            goto done;
        }

        for (k = 0; cg_intermediates_warning(c.pool, k, &err) == CG_OK; k++)
        {
            fprintf(stderr, "certguard: %s: warning: ",
                    cli_safe(err.file, safe, sizeof(safe)));
            fprintf(stderr, "%s\n", cli_safe(err.msg, safe, sizeof(safe)));
        }
    }

    if (c.geoip_country || c.geoip_asn) {
        memset(&err, 0, sizeof(err));

        if (cg_geoip_open(&c.geoip, c.geoip_country, c.geoip_asn, &err)
            != CG_OK)
        {
            /* the message already names the file */
            fprintf(stderr, "certguard: %s\n",
                    cli_safe(err.msg, safe, sizeof(safe)));
            goto done;
        }
    }

    if (c.memory_dir) {
        memset(&err, 0, sizeof(err));

        if (cg_memory_open(&c.memory, c.memory_dir, 0, 0, &err) != CG_OK) {
            fprintf(stderr, "certguard: %s\n",
                    cli_safe(err.msg, safe, sizeof(safe)));
            goto done;
        }
    }

    if (cg_certs_new(&c.certs) != CG_OK) {
        fputs("certguard: out of memory\n", stderr);
        goto done;
    }

    status = CLI_EXIT_OK;

    m = cli_inputs((char **) files, nfiles, &chains, &nchains);
    if (m < 0) {
        goto done;
    }

    if (m > 0) {
        status = CLI_EXIT_ERR;
    }

    for (files_at = 0; files_at < nchains; files_at++) {
        if (cli_check_file(&c, chains[files_at], nchains > 1) != 0) {
            status = CLI_EXIT_ERR;
        }
    }

    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "certguard: writing the results: %s\n",
                strerror(errno));
        status = CLI_EXIT_ERR;
    }

    rc = status;

done:

    cli_verify_memo_done();
    cli_inputs_free(chains);
    free(files);
    free(crls);
    free(c.ocsp);
    cg_crls_free(c.crls);
    free(c.out);
    free(c.pool_files);
    cg_intermediates_free(c.pool);
    cg_certs_free(c.certs);
    cg_memory_close(c.memory);
    cg_geoip_free(c.geoip);
    cg_trust_free(c.trust);
    cg_policy_free(c.policy);

    return rc;
}


static int
cli_check_file(cli_check_t *c, const char *path, int many)
{
    int              forgot;
    cg_input_t       in;
    char             safe[512];
    cg_event_t       ev;
    cg_result_t     *res;
    cli_chain_t      ch;
    cli_context_t    ctx;

    cli_safe(path, safe, sizeof(safe));

    ctx.sni = c->sni;
    ctx.client_sni = c->client_sni;
    ctx.dst_addr = c->has_dst ? c->dst_addr : NULL;
    ctx.dst_port = c->dst_port;
    ctx.at = c->at;
    ctx.has_at = c->has_at;
    ctx.certs = c->certs;

    if (cli_chain_load(&ch, path, &ctx) != 0) {
        return -1;
    }

    ch.crls = c->crls;
    ch.ocsp = c->ocsp;
    ch.ocsp_len = c->ocsp_len;
    ch.intermediates = c->pool;
    ch.max_depth = c->max_depth;
    ch.max_depth_on = c->has_max_depth;

    /* the result is large (about 4 KB): keep it off small stacks */
    res = calloc(1, sizeof(cg_result_t));
    if (res == NULL) {
        cli_chain_free(&ch);
        fprintf(stderr, "certguard: %s: out of memory\n", safe);
        return -1;
    }

    if (cli_chain_score(&ch, c->policy, c->trust, c->geoip, c->memory, res,
                        &in)
        != 0)
    {
        cli_chain_free(&ch);
        free(res);
        return -1;
    }

    /* the CLI records synchronously: the next file sees this one */

    forgot = c->memory && cli_remember(c, &in, res) != 0;

    /* what the proxy would log: enforce mode, the destination used */
    memset(&ev, 0, sizeof(ev));
    ev.dst_addr = ch.dst_addr;
    ev.dst_port = ch.dst_port;
    ev.rt_ms = ch.at * 1000;
    ev.client_sni = ch.client_sni;

    if (cli_format(c, res, &ev) != 0) {
        fprintf(stderr, "certguard: %s: out of memory\n", safe);
        cli_chain_free(&ch);
        free(res);
        return -1;
    }

    cli_chain_free(&ch);
    free(res);

    switch (c->format) {

    case CLI_JSON:
        if (many) {
            fputs("{\"file\":", stdout);
            cli_json_str(stdout, path);
            fputc(',', stdout);
            fputs(c->out + 1, stdout);

        } else {
            fputs(c->out, stdout);
        }
        break;

    case CLI_TEXT:
        if (many) {
            fprintf(stdout, "file: %s\n", safe);
        }
        fputs(c->out, stdout);
        if (many) {
            fputc('\n', stdout);
        }
        break;

    default:
        fputs(c->out, stdout);
        break;
    }

    fputc('\n', stdout);

    return forgot ? -1 : 0;
}


/* A sighting of a chain with a name; a chain without one is not kept. */
static int
cli_remember(cli_check_t *c, const cg_input_t *in, const cg_result_t *res)
{
    char                  safe[512];
    cg_error_t            err;
    cg_memory_sighting_t  s;

    if (in->name == NULL || cg_memory_sighting(&s, in, res) != CG_OK) {
        return 0;
    }

    memset(&err, 0, sizeof(err));

    if (cg_memory_record(c->memory, &s, 1, &err) != CG_OK) {
        fprintf(stderr, "certguard: %s\n",
                cli_safe(err.msg, safe, sizeof(safe)));
        return -1;
    }

    return 0;
}


/* Formats into c->out, growing it until the whole output fits. */
static int
cli_format(cli_check_t *c, const cg_result_t *res, const cg_event_t *ev)
{
    char    *nb;
    size_t   need;

    for ( ;; ) {
        if (c->out == NULL) {
            c->out_len = 8192;
            c->out = malloc(c->out_len);
            if (c->out == NULL) {
                return -1;
            }
        }

        switch (c->format) {
        case CLI_JSON:
            need = cg_format_json(res, c->out, c->out_len);
            break;
        case CLI_CEF:
            need = cg_format_cef(res, ev, c->out, c->out_len);
            break;
        default:
            need = cg_format_text(res, c->out, c->out_len);
            break;
        }

        if (need < c->out_len) {
            return 0;
        }

        nb = realloc(c->out, need + 1);
        if (nb == NULL) {
            return -1;
        }

        c->out = nb;
        c->out_len = need + 1;
    }
}


static int
cli_lint(int argc, char **argv)
{
    int           i, status;
    unsigned      k;
    char          safe[512], msg[512];
    cg_error_t    err;
    cg_policy_t  *policy;

    if (argc < 3) {
        return cli_usage_error("lint: no policy FILE given");
    }

    status = CLI_EXIT_OK;

    for (i = 2; i < argc; i++) {
        memset(&err, 0, sizeof(err));
        policy = NULL;

        if (cg_policy_load(&policy, argv[i], &err) == CG_OK) {
            printf("%s: ok\n", cli_safe(argv[i], safe, sizeof(safe)));

            /* after the ok line, so that scripts reading stdout see it
             * first; warnings leave the exit status alone */
            fflush(stdout);

            for (k = 0; cg_policy_warning(policy, k, &err) == CG_OK; k++) {
                cli_safe(err.file[0] ? err.file : argv[i], safe,
                         sizeof(safe));
                cli_safe(err.msg, msg, sizeof(msg));
                fprintf(stderr, "%s:%u: warning: %s\n", safe, err.line, msg);
            }

            cg_policy_free(policy);
            continue;
        }

        cli_safe(err.file[0] ? err.file : argv[i], safe, sizeof(safe));
        cli_safe(err.msg, msg, sizeof(msg));

        if (err.line) {
            fprintf(stderr, "%s:%u: %s\n", safe, err.line, msg);
        } else {
            fprintf(stderr, "%s: %s\n", safe, msg);
        }

        status = CLI_EXIT_ERR;
    }

    return status;
}


static int
cli_pin(int argc, char **argv)
{
    int    i, kind, status, nfiles;
    char   safe[256];

    kind = CG_PIN_SPKI;
    status = CLI_EXIT_OK;
    nfiles = 0;

    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--fingerprint") == 0) {
            kind = CG_PIN_CERT;
        }
    }

    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--fingerprint") == 0) {
            continue;
        }

        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error("pin: unknown option \"%s\"",
                                   cli_safe(argv[i], safe, sizeof(safe)));
        }

        nfiles++;

        if (cli_pin_file(argv[i], kind) != 0) {
            status = CLI_EXIT_ERR;
        }
    }

    if (nfiles == 0) {
        return cli_usage_error("pin: no CA.pem given");
    }

    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "certguard: writing the pins: %s\n",
                strerror(errno));
        status = CLI_EXIT_ERR;
    }

    return status;
}


/* One line per certificate of the file, in file order. */
static int
cli_pin_file(const char *path, int kind)
{
    int              i, rc;
    char             safe[512], line[512];
    size_t           len;
    cg_error_t       err;
    const char      *problem;
    unsigned char   *data;
    STACK_OF(X509)  *certs;

    cli_safe(path, safe, sizeof(safe));

    problem = NULL;
    if (cli_read_file(path, &data, &len, &problem) != 0) {
        fprintf(stderr, "certguard: %s: %s\n", safe, problem);
        return -1;
    }

    memset(&err, 0, sizeof(err));
    certs = NULL;

    rc = cg_chain_parse(data, len, &certs, &err);
    free(data);

    if (rc != CG_OK || certs == NULL) {
        fprintf(stderr, "certguard: %s: %s\n", safe,
                err.msg[0] ? cli_safe(err.msg, line, sizeof(line))
                           : cg_strerror(rc));
        return -1;
    }

    rc = 0;

    for (i = 0; i < sk_X509_num(certs); i++) {
        /* a subject is capped at CG_DN_MAX: the line always fits */
        if (cg_format_pin(sk_X509_value(certs, i), kind, line, sizeof(line))
            == 0)
        {
            fprintf(stderr, "certguard: %s: certificate %d: its key cannot "
                    "be read\n", safe, i + 1);
            rc = -1;
            continue;
        }

        printf("%s\n", line);
    }

    sk_X509_pop_free(certs, X509_free);

    return rc;
}


static int
cli_signals(void)
{
    unsigned          i, n;
    cg_signal_info_t  info;

    n = cg_signal_count();

    for (i = 0; i < n; i++) {
        if (cg_signal_info(i, &info) == CG_OK) {
            printf("%s\t%d\t%s\n", info.id, info.weight, info.doc);
        }
    }

    return CLI_EXIT_OK;
}


static int
cli_version(void)
{
    char  buf[512];

    cg_format_version(buf, sizeof(buf));
    printf("%s\n", buf);

    return CLI_EXIT_OK;
}


int
main(int argc, char **argv)
{
    const char  *cmd;
    char         safe[256];

    if (argc < 2) {
        cli_usage(stderr);
        return CLI_EXIT_ERR;
    }

    cmd = argv[1];

    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0
        || strcmp(cmd, "help") == 0)
    {
        cli_usage(stdout);
        return CLI_EXIT_OK;
    }

    if (strcmp(cmd, "check") == 0) {
        return cli_check(argc, argv);
    }

    if (strcmp(cmd, "lint") == 0) {
        if (argc > 2 && (strcmp(argv[2], "--help") == 0
                         || strcmp(argv[2], "-h") == 0))
        {
            cli_usage(stdout);
            return CLI_EXIT_OK;
        }

        return cli_lint(argc, argv);
    }

    if (strcmp(cmd, "diff") == 0) {
        return cli_diff(argc, argv);
    }

    if (strcmp(cmd, "report") == 0) {
        return cli_report(argc, argv);
    }

    if (strcmp(cmd, "pin") == 0) {
        if (argc > 2 && (strcmp(argv[2], "--help") == 0
                         || strcmp(argv[2], "-h") == 0))
        {
            cli_usage(stdout);
            return CLI_EXIT_OK;
        }

        return cli_pin(argc, argv);
    }

    if (strcmp(cmd, "signals") == 0) {
        return cli_signals();
    }

    if (strcmp(cmd, "memory") == 0) {
        return cli_memory(argc, argv);
    }

    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        return cli_version();
    }

    return cli_usage_error("unknown command \"%s\"",
                           cli_safe(cmd, safe, sizeof(safe)));
}
