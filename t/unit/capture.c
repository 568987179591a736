/*
 * Unit tests of the capture files (src/engine/cg_capture.h): the chain
 * digest, the sidecar format and its reader, writing and updating entries,
 * many writers at once, the size budget and stale temporary files.
 */

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "cg_capture.h"
#include "tap.h"


static char  tmpdir[256];


static X509 *
mkcert(const char *cn, X509 *issuer, EVP_PKEY *key, EVP_PKEY *sign_key)
{
    static long   serial = 1;
    X509         *x;
    X509_NAME    *name;

    x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);

    name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               (const unsigned char *) cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_NAME_free(name);

    X509_gmtime_adj(X509_getm_notBefore(x), -86400);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400 * 30);
    X509_set_pubkey(x, key);
    X509_sign(x, sign_key, EVP_sha256());

    return x;
}


static int
count_files(const char *dir, const char *suffix, const char *prefix)
{
    int             n;
    DIR            *d;
    size_t          l, sl;
    struct dirent  *de;

    n = 0;
    d = opendir(dir);
    if (d == NULL) {
        return -1;
    }

    sl = suffix ? strlen(suffix) : 0;

    while ((de = readdir(d)) != NULL) {
        l = strlen(de->d_name);

        if (prefix && strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
            n++;

        } else if (suffix && l > sl
                   && strcmp(de->d_name + l - sl, suffix) == 0)
        {
            n++;
        }
    }

    closedir(d);

    return n;
}


static void
path_of(char *buf, size_t len, const char *dir, const char *sha,
    const char *ext)
{
    snprintf(buf, len, "%s/%s%s", dir, sha, ext);
}


static void
test_parse(void)
{
    cg_error_t           err;
    cg_capture_record_t  rec, back;
    char                 buf[2048];
    size_t               n;

    static const char  good[] =
        "{\"sha256\":\"00112233445566778899aabbccddeeff"
        "00112233445566778899aabbccddeeff\","
        " \"name\" : \"h\\u00e9st.example\", \"client_sni\": null,"
        "\"dst_addr\":\"::1\",\"dst_port\":8443,\"first_seen\":100,"
        "\"last_seen\":200,\"count\":7,\"verdict\":\"tag\","
        "\"policy\":\"de\\\"fault\",\"later\":{\"a\":[1,2,{\"b\":null}]},"
        "\"more\":true}\n";

    static const char  *bad[] = {
        "",
        "[]",
        "{\"name\":\"x\"",
        "{\"name\":\"x\",}",
        "{\"name\":1}",
        "{\"dst_port\":70000}",
        "{\"dst_port\":\"443\"}",
        "{\"count\":-1}",
        "{\"first_seen\":1.5}",
        "{\"verdict\":\"maybe\"}",
        "{\"sha256\":\"abc\"}",
        "{\"name\":\"a\\u0000b\"}",
        "{\"name\":\"\\ud800\"}",
        "{\"name\":\"\xff\"}",
        "{\"name\":\"tab\there\"}",
        "{} {}",
        "{\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}",
    };

    unsigned  i;

    memset(&err, 0, sizeof(err));
    ok(cg_capture_parse(good, sizeof(good) - 1, &rec, &err) == CG_OK,
       "a sidecar parses (%s)", err.msg);
    is_str(rec.name, "h\xc3\xa9st.example", "name, \\u escape decoded");
    is_str(rec.client_sni, "", "null client_sni is empty");
    is_str(rec.dst_addr, "::1", "dst_addr");
    is_int(rec.dst_port, 8443, "dst_port");
    is_int(rec.first_seen, 100, "first_seen");
    is_int(rec.last_seen, 200, "last_seen");
    is_int(rec.count, 7, "count");
    is_int(rec.verdict, CG_TAG, "verdict");
    is_str(rec.policy, "de\"fault", "policy, quote unescaped");

    /* what is written reads back the same */

    n = cg_capture_format(&rec, buf, sizeof(buf));
    ok(n < sizeof(buf) && buf[n - 1] == '\n', "format: one line");
    ok(cg_capture_parse(buf, n, &back, &err) == CG_OK, "format reads back");
    ok(memcmp(&rec, &back, sizeof(rec)) == 0, "round trip is exact");
    ok(strstr(buf, "\"client_sni\":null") != NULL, "empty is written null");

    is_int(cg_capture_format(&rec, buf, 10), n, "format: full length "
           "returned when truncated");
    is_int(strlen(buf), 9, "format: truncated output is terminated");

    /* bytes that are not UTF-8 are written as U+FFFD, still JSON */

    strcpy(rec.name, "a\xff\x01z");
    n = cg_capture_format(&rec, buf, sizeof(buf));
    ok(strstr(buf, "\"name\":\"a\\ufffd\\u0001z\"") != NULL,
       "format escapes invalid UTF-8 and controls");
    ok(cg_capture_parse(buf, n, &back, &err) == CG_OK,
       "escaped name reads back");

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        ok(cg_capture_parse(bad[i], strlen(bad[i]), &rec, &err)
           == CG_ERR_INPUT && err.msg[0] != '\0',
           "refused: %s (%s)", bad[i], err.msg);
    }

    ok(cg_capture_parse("{}", 2, &rec, &err) == CG_OK && rec.count == 0,
       "an empty object is an empty record");

    /* a key given twice: the last value, and nothing of the first */

    ok(cg_capture_parse("{\"name\":\"longer.example\",\"name\":\"a\"}", 36,
                        &rec, &err) == CG_OK, "a key twice parses");
    is_str(rec.name, "a", "a key twice: the last value");
    ok(rec.name[2] == '\0' && rec.name[5] == '\0',
       "a key twice: nothing of the first value left");
}


static void
test_digest(X509 *leaf, X509 *ca)
{
    char             a[65], b[65], c[65], d[65];
    STACK_OF(X509)  *with, *without;

    with = sk_X509_new_null();
    sk_X509_push(with, leaf);
    sk_X509_push(with, ca);
    without = sk_X509_new_null();
    sk_X509_push(without, ca);

    ok(cg_capture_digest(leaf, with, a) == CG_OK, "digest");
    ok(cg_capture_digest(leaf, without, b) == CG_OK, "digest, no leaf in "
       "the chain");
    ok(cg_capture_digest(NULL, with, c) == CG_OK, "digest, leaf NULL");
    ok(cg_capture_digest(leaf, NULL, d) == CG_OK, "digest, lone leaf");
    is_str(a, b, "the leaf counts once");
    is_str(a, c, "leaf NULL is the chain's first");
    ok(strcmp(a, d) != 0, "a lone leaf is another chain");
    is_int(strlen(a), 64, "64 hex digits");
    ok(cg_capture_digest(NULL, NULL, a) == CG_ERR_ARG, "no certificate");

    sk_X509_free(with);
    sk_X509_free(without);
}


static void
test_write(X509 *leaf, X509 *ca, X509 *other)
{
    int                  rc, i, status, fails;
    char                 sha[65], path[512], dir[300];
    pid_t                pid;
    STACK_OF(X509)      *chain, *parsed;
    unsigned char       *data;
    size_t               len;
    FILE                *f;
    struct stat          st;
    cg_error_t           err;
    cg_capture_record_t  seen, rec, out;

    snprintf(dir, sizeof(dir), "%s/cap", tmpdir);
    mkdir(dir, 0700);

    chain = sk_X509_new_null();
    sk_X509_push(chain, leaf);
    sk_X509_push(chain, ca);
    cg_capture_digest(leaf, chain, sha);

    memset(&seen, 0, sizeof(seen));
    strcpy(seen.name, "one.test");
    strcpy(seen.dst_addr, "127.0.0.1");
    seen.dst_port = 8443;
    seen.verdict = CG_BLOCK;
    strcpy(seen.policy, "default");
    seen.last_seen = 1000;
    seen.count = 99;                /* ignored */
    seen.first_seen = 5;            /* ignored */

    memset(&err, 0, sizeof(err));
    rc = cg_capture_write(dir, 0, leaf, chain, &seen, &out, &err);
    ok(rc == CG_OK, "first sighting written (%s)", err.msg);
    is_int(out.count, 1, "count 1");
    is_int(out.first_seen, 1000, "first_seen is the sighting");
    is_str(out.sha256, sha, "named by the chain's digest");

    path_of(path, sizeof(path), dir, sha, ".pem");
    f = fopen(path, "rb");
    ok(f != NULL, "PEM file exists");
    data = malloc(65536);
    len = f ? fread(data, 1, 65536, f) : 0;
    if (f) {
        fclose(f);
    }

    parsed = NULL;
    ok(cg_chain_parse(data, len, &parsed, &err) == CG_OK
       && sk_X509_num(parsed) == 2, "PEM holds the chain, two certificates");
    ok(parsed && X509_cmp(sk_X509_value(parsed, 0), leaf) == 0,
       "leaf first");
    if (parsed) {
        sk_X509_pop_free(parsed, X509_free);
    }
    free(data);

    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640,
       "PEM mode 0640");

    path_of(path, sizeof(path), dir, sha, ".json");
    ok(cg_capture_read(path, &rec, &err) == CG_OK, "sidecar reads");
    is_str(rec.name, "one.test", "sidecar name");
    is_str(rec.dst_addr, "127.0.0.1", "sidecar dst_addr");
    is_int(rec.dst_port, 8443, "sidecar dst_port");
    is_int(rec.verdict, CG_BLOCK, "sidecar verdict");
    is_str(rec.policy, "default", "sidecar policy");
    is_int(rec.last_seen, 1000, "sidecar last_seen");

    /* a second sighting: counted, latest context, first_seen kept */

    strcpy(seen.name, "two.test");
    strcpy(seen.client_sni, "sni.test");
    seen.verdict = CG_ALLOW;
    seen.last_seen = 2000;
    ok(cg_capture_write(dir, 0, NULL, chain, &seen, NULL, &err) == CG_OK,
       "second sighting");
    ok(cg_capture_read(path, &rec, &err) == CG_OK, "sidecar reads again");
    is_int(rec.count, 2, "count 2");
    is_int(rec.first_seen, 1000, "first_seen kept");
    is_int(rec.last_seen, 2000, "last_seen updated");
    is_str(rec.name, "two.test", "latest name");
    is_str(rec.client_sni, "sni.test", "latest client SNI");
    is_int(rec.verdict, CG_ALLOW, "latest verdict");

    is_int(count_files(dir, ".pem", NULL), 1, "one PEM file");
    is_int(count_files(dir, NULL, ".tmp-"), 0, "no temporary file left");

    /* many writers at once: every sighting counted */

    fails = 0;
    seen.last_seen = 0;

    for (i = 0; i < 4; i++) {
        pid = fork();

        if (pid == 0) {
            int  k, bad;

            bad = 0;
            for (k = 0; k < 25; k++) {
                bad += cg_capture_write(dir, 0, leaf, chain, &seen, NULL,
                                        NULL) != CG_OK;
            }
            _exit(bad ? 1 : 0);
        }
    }

    for (i = 0; i < 4; i++) {
        if (wait(&status) < 0 || !WIFEXITED(status)
            || WEXITSTATUS(status) != 0)
        {
            fails++;
        }
    }

    is_int(fails, 0, "four writers, no failure");
    ok(cg_capture_read(path, &rec, &err) == CG_OK, "sidecar intact");
    is_int(rec.count, 102, "every sighting of four writers counted");
    is_int(count_files(dir, NULL, ".tmp-"), 0, "no temporary file left");

    /* errors name the file */

    memset(&err, 0, sizeof(err));
    ok(cg_capture_write("/nonexistent/dir", 0, leaf, chain, &seen, NULL,
                        &err) == CG_ERR_IO
       && strstr(err.msg, "/nonexistent/dir") != NULL,
       "missing directory: CG_ERR_IO naming it (%s)", err.msg);
    ok(cg_capture_write(dir, 0, NULL, NULL, &seen, NULL, &err) != CG_OK,
       "no chain: refused");

    sk_X509_free(chain);
    (void) other;
}


static void
test_evict(X509 *leaf, X509 *ca, X509 *other, X509 *third)
{
    char                 dir[300], path[512], sa[65], sb[65], sc[65];
    int                  fd;
    struct stat          st;
    struct timespec      old[2];
    uint64_t             one;
    cg_error_t           err;
    cg_capture_record_t  seen;
    STACK_OF(X509)      *a, *b, *c;

    snprintf(dir, sizeof(dir), "%s/evict", tmpdir);
    mkdir(dir, 0700);

    a = sk_X509_new_null();
    sk_X509_push(a, leaf);
    sk_X509_push(a, ca);
    b = sk_X509_new_null();
    sk_X509_push(b, other);
    c = sk_X509_new_null();
    sk_X509_push(c, third);

    memset(&seen, 0, sizeof(seen));
    strcpy(seen.name, "x.test");
    strcpy(seen.policy, "p");
    seen.last_seen = 1000;

    ok(cg_capture_write(dir, 0, NULL, a, &seen, NULL, &err) == CG_OK
       && cg_capture_write(dir, 0, NULL, b, &seen, NULL, &err) == CG_OK,
       "two entries");

    cg_capture_digest(NULL, a, sa);
    cg_capture_digest(NULL, b, sb);
    cg_capture_digest(NULL, c, sc);

    /* a seen long ago, b just now: a is the one to go */

    old[0].tv_sec = 1000;
    old[0].tv_nsec = 0;
    old[1] = old[0];
    path_of(path, sizeof(path), dir, sa, ".json");
    utimensat(AT_FDCWD, path, old, 0);

    path_of(path, sizeof(path), dir, sb, ".pem");
    stat(path, &st);
    one = (uint64_t) st.st_size;
    path_of(path, sizeof(path), dir, sb, ".json");
    stat(path, &st);
    one += (uint64_t) st.st_size;

    /* a stale temporary file, and a fresh one another writer holds */

    snprintf(path, sizeof(path), "%s/.tmp-stale1", dir);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    utimensat(AT_FDCWD, path, old, 0);
    snprintf(path, sizeof(path), "%s/.tmp-fresh1", dir);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);

    /* room for two single-certificate entries, not for three */

    seen.last_seen = 0;
    ok(cg_capture_write(dir, 2 * one + one / 2, NULL, c, &seen, NULL, &err)
       == CG_OK, "third entry, over the budget (%s)", err.msg);

    path_of(path, sizeof(path), dir, sa, ".pem");
    ok(stat(path, &st) != 0, "least recently seen chain evicted");
    path_of(path, sizeof(path), dir, sa, ".json");
    ok(stat(path, &st) != 0, "... and its sidecar");
    path_of(path, sizeof(path), dir, sb, ".pem");
    ok(stat(path, &st) == 0, "recent chain kept");
    path_of(path, sizeof(path), dir, sc, ".pem");
    ok(stat(path, &st) == 0, "new chain kept");

    snprintf(path, sizeof(path), "%s/.tmp-stale1", dir);
    ok(stat(path, &st) != 0, "stale temporary file removed");
    snprintf(path, sizeof(path), "%s/.tmp-fresh1", dir);
    ok(stat(path, &st) == 0, "fresh temporary file left alone");
    unlink(path);

    /* a budget smaller than one entry keeps nothing */

    ok(cg_capture_write(dir, 10, NULL, a, &seen, NULL, &err) == CG_OK,
       "tiny budget");
    is_int(count_files(dir, ".pem", NULL), 0, "tiny budget: nothing kept");
    is_int(count_files(dir, ".json", NULL), 0, "tiny budget: no sidecar");

    sk_X509_free(a);
    sk_X509_free(b);
    sk_X509_free(c);
}


int
main(void)
{
    char       cmd[300];
    X509      *ca, *leaf, *other, *third;
    EVP_PKEY  *kca, *kleaf;

    snprintf(tmpdir, sizeof(tmpdir), "%s/cg-capture-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }

    kca = EVP_EC_gen("P-256");
    kleaf = EVP_EC_gen("P-256");
    ca = mkcert("capture test ca", NULL, kca, kca);
    leaf = mkcert("one.test", ca, kleaf, kca);
    other = mkcert("other.test", NULL, kleaf, kleaf);
    third = mkcert("third.test", NULL, kleaf, kleaf);

    test_parse();
    test_digest(leaf, ca);
    test_write(leaf, ca, other);
    test_evict(leaf, ca, other, third);

    X509_free(ca);
    X509_free(leaf);
    X509_free(other);
    X509_free(third);
    EVP_PKEY_free(kca);
    EVP_PKEY_free(kleaf);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
        printf("# could not remove %s\n", tmpdir);
    }

    return done_testing();
}
