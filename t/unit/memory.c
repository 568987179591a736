/*
 * Unit tests of the certificate memory: the LMDB store (keys, sightings,
 * merging, ordering, eviction, forgetting, reopening, read-only handles,
 * a damaged value, a writer killed inside its transaction), the JSON
 * lines format, and the memory signals through cg_evaluate() with
 * certificates built here (two CAs, two keys), at fixed times.
 */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cg_memory.h"
#include "cg_internal.h"
#include "tap.h"


#define DAY         86400
#define T0          1767225600      /* 2026-01-01T00:00:00Z */


static char  tmpdir[] = "/tmp/cg-memory-XXXXXX";


static char *
path(const char *name)
{
    static char  buf[4][512];
    static int   n;
    char        *p = buf[n++ % 4];

    snprintf(p, 512, "%s/%s", tmpdir, name);

    return p;
}


static void
rm_rf(const char *dir)
{
    char  cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        printf("# could not remove %s\n", dir);
    }
}


/* Certificates: a CA (self-signed) or a leaf signed by one. */

static X509 *
mkcert(const char *cn, const char *o, EVP_PKEY *key, X509 *issuer,
    EVP_PKEY *issuer_key, int64_t nb, int64_t na, const char *san)
{
    static long      serial = 100;
    X509            *x;
    X509_NAME       *name;
    X509V3_CTX       ctx;
    X509_EXTENSION  *ext;

    x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);

    name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               (const unsigned char *) cn, -1, -1, 0);
    if (o) {
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                   (const unsigned char *) o, -1, -1, 0);
    }

    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_NAME_free(name);

    ASN1_TIME_set(X509_getm_notBefore(x), (time_t) nb);
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t) na);
    X509_set_pubkey(x, key);

    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);

    if (san) {
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);

    } else {
        /* a CA: what verification asks of one */
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
                                  "critical,CA:TRUE");
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
                                  "critical,keyCertSign,cRLSign");
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }

    if (X509_sign(x, issuer ? issuer_key : key, EVP_sha256()) == 0) {
        printf("Bail out! X509_sign failed\n");
        exit(1);
    }

    return x;
}


static void
sighting(cg_memory_sighting_t *s, const char *name, unsigned port,
    int64_t at, unsigned char id, const char *issuer, const char *addr)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->port = port;
    s->at = at;
    memset(s->sha256, id, 32);
    memset(s->spki, id, 32);
    snprintf(s->issuer, sizeof(s->issuer), "%s", issuer);
    s->not_before = at - 10 * DAY;
    s->not_after = at + 80 * DAY;

    if (addr) {
        snprintf(s->addr, sizeof(s->addr), "%s", addr);
    }
}


static int
record1(cg_memory_t *m, const cg_memory_sighting_t *s)
{
    cg_error_t  err;

    memset(&err, 0, sizeof(err));

    if (cg_memory_record(m, s, 1, &err) != CG_OK) {
        printf("#   record: %s\n", err.msg);
        return -1;
    }

    return 0;
}


static void
test_key(void)
{
    char  key[CG_MEMORY_KEY_MAX], longname[300];

    is_int(cg_memory_key("Example.COM.", 0, key, sizeof(key)), 0,
           "key: a name");
    is_str(key, "example.com:443", "key: lower case, final dot, port 443");
    cg_memory_key("a.test", 8443, key, sizeof(key));
    is_str(key, "a.test:8443", "key: a port");
    cg_memory_key("::1", 443, key, sizeof(key));
    is_str(key, "::1:443", "key: an IPv6 literal");
    is_int(cg_memory_key("", 443, key, sizeof(key)), -1, "key: empty");
    is_int(cg_memory_key(".", 443, key, sizeof(key)), 0, "key: a dot alone");
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    is_int(cg_memory_key(longname, 443, key, sizeof(key)), -1,
           "key: too long");
    is_int(cg_memory_key("a.test", 70000, key, sizeof(key)), -1,
           "key: port out of range");
    is_int(cg_memory_key("a\nb.test", 443, key, sizeof(key)), -1,
           "key: a control character");
    is_int(cg_memory_key("a\xff.test", 443, key, sizeof(key)), -1,
           "key: not UTF-8");
    is_int(cg_memory_key("caf\xc3\xa9.test", 443, key, sizeof(key)), 0,
           "key: UTF-8");
    memset(longname, 'a', 200);
    strcpy(longname + 200, ".test");
    is_int(cg_memory_key(longname, 443, key, sizeof(key)), 0,
           "key: a long name");
}


static int
count_cb(const cg_memory_entry_t *e, void *arg)
{
    (*(unsigned *) arg)++;
    return 0;
}


static void
test_store(void)
{
    int                   rc;
    unsigned              n, removed;
    cg_error_t            err;
    cg_memory_t          *m, *ro;
    cg_memory_entry_t     e;
    cg_memory_sighting_t  s[3];

    memset(&err, 0, sizeof(err));
    rc = cg_memory_open(&m, path("store"), 0, 0, &err);
    is_int(rc, CG_OK, "open: a new directory");
    if (rc != CG_OK) {
        printf("#   %s\n", err.msg);
        return;
    }

    rc = cg_memory_lookup(m, "a.test", 443, &e);
    is_int(rc, CG_OK, "lookup: nothing yet is not an error");
    is_int(e.ncerts, 0, "lookup: nothing yet");
    is_str(e.name, "a.test", "lookup: the name is filled in anyway");

    sighting(&s[0], "A.test", 0, T0, 1, "CN=ca1", "192.0.2.1");
    ok(record1(m, &s[0]) == 0, "record: one sighting");

    cg_memory_lookup(m, "a.test.", 443, &e);
    is_int(e.ncerts, 1, "lookup: one certificate");
    is_int(e.port, 443, "lookup: port 0 is 443");
    is_int(e.first_seen, T0, "lookup: entry first seen");
    is_int(e.certs[0].count, 1, "lookup: count 1");
    is_str(e.certs[0].issuer, "CN=ca1", "lookup: issuer");
    is_int(e.certs[0].not_after, T0 + 80 * DAY, "lookup: not_after");
    ok(e.certs[0].has_spki && e.certs[0].spki[0] == 1, "lookup: spki");
    is_str(e.certs[0].addrs[0], "192.0.2.1", "lookup: the address");

    /* the same certificate later, from another address */

    sighting(&s[0], "a.test", 443, T0 + DAY, 1, "CN=ca1", "192.0.2.2");
    s[0].asn = 64496;
    memcpy(s[0].country, "DE", 3);
    sighting(&s[1], "a.test", 443, T0 + 2 * DAY, 2, "CN=ca2", NULL);
    sighting(&s[2], "b.test", 443, T0 + 2 * DAY, 3, "CN=ca1", NULL);

    memset(&err, 0, sizeof(err));
    is_int(cg_memory_record(m, s, 3, &err), CG_OK, "record: a batch of 3");

    cg_memory_lookup(m, "a.test", 443, &e);
    is_int(e.ncerts, 2, "merge: two certificates for a.test");
    is_int(e.certs[0].sha256[0], 2, "merge: most recently seen first");
    is_int(e.certs[1].count, 2, "merge: count adds up");
    is_int(e.certs[1].first_seen, T0, "merge: first seen kept");
    is_int(e.certs[1].last_seen, T0 + DAY, "merge: last seen moves");
    is_int(e.certs[1].naddrs, 2, "merge: two addresses");
    is_str(e.certs[1].addrs[0], "192.0.2.2", "merge: the newer first");
    is_int(e.certs[1].ngeo, 1, "merge: one location");
    is_int(e.certs[1].geo[0].asn, 64496, "merge: its ASN");
    is_str(e.certs[1].geo[0].country, "DE", "merge: its country");
    is_int(e.last_seen, T0 + 2 * DAY, "merge: entry last seen");

    /* an older sighting after a newer one (a corpus out of order) */
    sighting(&s[0], "a.test", 443, T0 - DAY, 1, "CN=ca1", "192.0.2.3");
    record1(m, &s[0]);
    cg_memory_lookup(m, "a.test", 443, &e);
    is_int(e.certs[1].first_seen, T0 - DAY, "merge: an earlier sighting");
    is_int(e.certs[1].last_seen, T0 + DAY, "merge: last seen stays");
    is_str(e.certs[1].addrs[0], "192.0.2.2", "merge: older address after");
    is_int(e.first_seen, T0 - DAY, "merge: entry first seen earlier");

    /* other ports, foreach, forget */

    sighting(&s[0], "a.test", 8443, T0, 4, "CN=ca1", NULL);
    record1(m, &s[0]);
    sighting(&s[0], "a.test.example", 443, T0, 5, "CN=ca1", NULL);
    record1(m, &s[0]);

    n = 0;
    cg_memory_foreach(m, NULL, count_cb, &n);
    is_int(n, 4, "foreach: every entry");
    n = 0;
    cg_memory_foreach(m, "A.test", count_cb, &n);
    is_int(n, 2, "foreach: both ports of a.test, not a.test.example");

    memset(&err, 0, sizeof(err));
    is_int(cg_memory_forget(m, "a.test", 8443, &removed, &err), CG_OK,
           "forget: one port");
    is_int(removed, 1, "forget: one entry");
    cg_memory_forget(m, "a.test", 8443, &removed, &err);
    is_int(removed, 0, "forget: again, nothing");

    ro = NULL;
    is_int(cg_memory_open(&ro, path("store"), 0, CG_MEMORY_RDONLY, &err),
           CG_OK, "open read-only beside a writer");
    if (ro) {
        cg_memory_lookup(ro, "b.test", 443, &e);
        is_int(e.ncerts, 1, "read-only: sees what was written");
        is_int(cg_memory_record(ro, s, 1, &err), CG_ERR_ARG,
               "read-only: no writing");
        cg_memory_close(ro);
    }

    cg_memory_forget(m, "a.test", 0, &removed, &err);
    is_int(removed, 1, "forget: every port of a name");
    cg_memory_lookup(m, "a.test", 443, &e);
    is_int(e.ncerts, 0, "forget: gone");
    cg_memory_lookup(m, "a.test.example", 443, &e);
    is_int(e.ncerts, 1, "forget: a longer name stays");

    cg_memory_close(m);

    /* what was written survives the handle */

    m = NULL;
    is_int(cg_memory_open(&m, path("store"), 0, 0, &err), CG_OK, "reopen");
    if (m) {
        cg_memory_lookup(m, "b.test", 443, &e);
        is_int(e.ncerts, 1, "reopen: the memory is still there");
        cg_memory_close(m);
    }

    memset(&err, 0, sizeof(err));
    is_int(cg_memory_open(&m, path("nowhere"), 0, CG_MEMORY_RDONLY, &err),
           CG_ERR_IO, "read-only open of a missing directory fails");
    ok(strstr(err.msg, "nowhere") != NULL, "the message names it: %s",
       err.msg);

    mkdir(path("empty"), 0700);
    is_int(cg_memory_open(&m, path("empty"), 0, CG_MEMORY_RDONLY, &err),
           CG_ERR_IO, "read-only open of an empty directory fails");
}


/* More certificates for one name than an entry keeps: expired go first. */
static void
test_cert_bound(void)
{
    unsigned              i, expired_kept;
    cg_error_t            err;
    cg_memory_t          *m;
    cg_memory_entry_t     e;
    cg_memory_sighting_t  s;

    memset(&err, 0, sizeof(err));
    if (cg_memory_open(&m, path("bound"), 0, 0, &err) != CG_OK) {
        ok(0, "open: %s", err.msg);
        return;
    }

    /* one old certificate that expired, then many new ones */
    sighting(&s, "c.test", 443, T0 - 100 * DAY, 200, "CN=old", NULL);
    s.not_after = T0 - 50 * DAY;
    record1(m, &s);

    sighting(&s, "c.test", 443, T0 - 90 * DAY, 201, "CN=long", NULL);
    s.not_after = T0 + 365 * DAY;
    record1(m, &s);

    for (i = 0; i < CG_MEMORY_CERTS_MAX; i++) {
        sighting(&s, "c.test", 443, T0 + i, (unsigned char) (10 + i),
                 "CN=new", NULL);
        record1(m, &s);
    }

    cg_memory_lookup(m, "c.test", 443, &e);
    is_int(e.ncerts, CG_MEMORY_CERTS_MAX, "certs per name are bounded");

    expired_kept = 0;
    for (i = 0; i < e.ncerts; i++) {
        expired_kept |= e.certs[i].sha256[0] == 200;
    }

    ok(!expired_kept, "the expired certificate made room first");
    is_int(e.certs[0].sha256[0], 10 + CG_MEMORY_CERTS_MAX - 1,
           "the newest is kept, first");

    cg_memory_close(m);
}


static void
test_eviction(void)
{
    int                   rc;
    char                  name[64];
    size_t                names, max;
    unsigned              i, k;
    cg_error_t            err;
    cg_memory_t          *m;
    cg_memory_entry_t     e;
    cg_memory_sighting_t  s[10];

    memset(&err, 0, sizeof(err));
    rc = cg_memory_open(&m, path("small"), CG_MEMORY_SIZE_MIN, 0, &err);
    is_int(rc, CG_OK, "open: the smallest map");
    if (rc != CG_OK) {
        return;
    }

    cg_memory_stat(m, NULL, &max);
    is_int(max, CG_MEMORY_SIZE_MIN / CG_MEMORY_BYTES_PER_NAME,
           "names bounded by map size");

    /* three times the bound, in batches of 10, each newer than the last */

    rc = CG_OK;

    for (i = 0; i < 3 * max / 10 && rc == CG_OK; i++) {
        for (k = 0; k < 10; k++) {
            snprintf(name, sizeof(name), "n%u.test", i * 10 + k);
            sighting(&s[k], name, 443, T0 + i * 10 + k,
                     (unsigned char) k, "CN=ca1", "192.0.2.1");
        }

        rc = cg_memory_record(m, s, 10, &err);
    }

    is_int(rc, CG_OK, "record: past the bound") ;
    if (rc != CG_OK) {
        printf("#   %s\n", err.msg);
    }

    cg_memory_stat(m, &names, NULL);
    ok(names <= max, "eviction: %zu names held, at most %zu", names, max);
    ok(names >= max / 2, "eviction: not emptied (%zu)", names);

    cg_memory_lookup(m, "n0.test", 443, &e);
    is_int(e.ncerts, 0, "eviction: the least recently seen went");
    snprintf(name, sizeof(name), "n%u.test", i * 10 - 1);
    cg_memory_lookup(m, name, 443, &e);
    is_int(e.ncerts, 1, "eviction: the most recent stays");

    /* seeing an old name again moves it to the front */

    cg_memory_lookup(m, "n360.test", 443, &e);
    if (e.ncerts) {
        sighting(&s[0], "n360.test", 443, T0 + 100000, 0, "CN=ca1", NULL);
        record1(m, &s[0]);

        for (k = 0; k < max; k += 10) {
            unsigned  j;

            for (j = 0; j < 10; j++) {
                snprintf(name, sizeof(name), "m%u.test", k + j);
                sighting(&s[j], name, 443, T0 + 50000 + k + j, 1, "CN=ca1",
                         NULL);
            }
            cg_memory_record(m, s, 10, &err);
        }

        cg_memory_lookup(m, "n360.test", 443, &e);
        ok(e.ncerts > 0, "eviction: a name seen again is recent");

    } else {
        ok(0, "n360.test was kept to test LRU order (bound %zu)", max);
    }

    cg_memory_close(m);

    /* size 0 on reopening: the store's own size, not the default */

    rc = cg_memory_open(&m, path("small"), 0, 0, &err);
    is_int(rc, CG_OK, "reopen with size 0");
    if (rc == CG_OK) {
        cg_memory_stat(m, &names, &max);
        is_int(max, CG_MEMORY_SIZE_MIN / CG_MEMORY_BYTES_PER_NAME,
               "reopen with size 0: the store keeps its size");
        cg_memory_close(m);
    }

    /* large entries: the map fills before the name bound, and the pages in
     * use, not the count, have names evicted */

    memset(&err, 0, sizeof(err));
    rc = cg_memory_open(&m, path("full"), CG_MEMORY_SIZE_MIN, 0, &err);
    if (rc != CG_OK) {
        ok(0, "open: %s", err.msg);
        return;
    }

    memset(name, 'x', sizeof(name));

    for (i = 0; i < max && rc == CG_OK; i++) {
        for (k = 0; k < CG_MEMORY_CERTS_MAX && rc == CG_OK; k++) {
            char  big[CG_DN_MAX];

            memset(big, 'I', sizeof(big) - 1);
            big[sizeof(big) - 1] = '\0';
            snprintf(name, sizeof(name), "full%u.test", i);
            sighting(&s[0], name, 443, T0 + i * 10 + k, (unsigned char) k,
                     big, "2001:db8::1234:5678:9abc:def0");
            rc = cg_memory_record(m, s, 1, &err);
        }
    }

    is_int(rc, CG_OK, "full: every write fits") ;
    if (rc != CG_OK) {
        printf("#   %s\n", err.msg);
    }

    cg_memory_stat(m, &names, NULL);
    ok(names < max, "full: fewer names than the bound (%zu < %zu)", names,
       max);
    ok(names > 0, "full: not emptied");
    snprintf(name, sizeof(name), "full%u.test", i - 1);
    cg_memory_lookup(m, name, 443, &e);
    is_int(e.ncerts, CG_MEMORY_CERTS_MAX, "full: the newest name is whole");

    cg_memory_close(m);
}


static void
test_damage(void)
{
    int                   rc;
    MDB_env              *env;
    MDB_txn              *txn;
    MDB_dbi               dbi;
    MDB_val               k, v;
    pid_t                 pid;
    int                   status;
    cg_error_t            err;
    cg_memory_t          *m;
    cg_memory_entry_t     e;
    cg_memory_sighting_t  s;

    memset(&err, 0, sizeof(err));
    if (cg_memory_open(&m, path("damage"), 0, 0, &err) != CG_OK) {
        ok(0, "open: %s", err.msg);
        return;
    }

    sighting(&s, "d.test", 443, T0, 1, "CN=ca1", NULL);
    record1(m, &s);
    cg_memory_close(m);

    /* a value that does not decode, written behind the memory's back */

    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 4);
    rc = mdb_env_open(env, path("damage"), 0, 0600);
    if (rc == 0) {
        mdb_txn_begin(env, NULL, 0, &txn);
        mdb_dbi_open(txn, "names", 0, &dbi);
        k.mv_data = "d.test:443";
        k.mv_size = 10;
        v.mv_data = "\x01\x05garbage";
        v.mv_size = 9;
        mdb_put(txn, dbi, &k, &v, 0);
        mdb_txn_commit(txn);
    }
    mdb_env_close(env);

    cg_memory_open(&m, path("damage"), 0, 0, &err);
    cg_memory_lookup(m, "d.test", 443, &e);
    is_int(e.ncerts, 0, "damage: an undecodable value reads as nothing");
    sighting(&s, "d.test", 443, T0 + 1, 2, "CN=ca1", NULL);
    ok(record1(m, &s) == 0, "damage: a new sighting replaces it");
    cg_memory_lookup(m, "d.test", 443, &e);
    is_int(e.ncerts, 1, "damage: readable again");
    cg_memory_close(m);

    /* a writer killed inside its transaction, holding LMDB's write lock */

    fflush(stdout);
    pid = fork();

    if (pid == 0) {
        mdb_env_create(&env);
        mdb_env_set_maxdbs(env, 4);
        if (mdb_env_open(env, path("damage"), 0, 0600) != 0
            || mdb_txn_begin(env, NULL, 0, &txn) != 0
            || mdb_dbi_open(txn, "names", 0, &dbi) != 0)
        {
            _exit(1);
        }
        k.mv_data = "killed.test:443";
        k.mv_size = 15;
        v.mv_data = "half";
        v.mv_size = 4;
        mdb_put(txn, dbi, &k, &v, 0);
        raise(SIGKILL);
        _exit(2);
    }

    waitpid(pid, &status, 0);
    ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
       "killed: the writer died with SIGKILL inside its transaction");

    memset(&err, 0, sizeof(err));
    rc = cg_memory_open(&m, path("damage"), 0, 0, &err);
    is_int(rc, CG_OK, "killed: the store opens");
    if (rc == CG_OK) {
        sighting(&s, "e.test", 443, T0 + 2, 3, "CN=ca1", NULL);
        ok(record1(m, &s) == 0, "killed: the write lock is taken over");
        cg_memory_lookup(m, "killed.test", 443, &e);
        is_int(e.ncerts, 0, "killed: the unfinished write is not there");
        cg_memory_lookup(m, "d.test", 443, &e);
        is_int(e.ncerts, 1, "killed: the committed state is");
        cg_memory_close(m);
    }
}


static void
test_json(void)
{
    int                   rc;
    char                  line[2048], line2[2048];
    size_t                n;
    cg_error_t            err;
    cg_memory_entry_t     e, f;
    cg_memory_cert_t     *c;
    const char           *in;

    memset(&e, 0, sizeof(e));
    strcpy(e.name, "q\"uote\\.test");
    e.port = 443;
    e.ncerts = 1;
    c = &e.certs[0];
    memset(c->sha256, 0xab, 32);
    memset(c->spki, 0x01, 32);
    c->has_spki = 1;
    strcpy(c->issuer, "CN=R3,O=Let's Encrypt,C=US\n");
    c->not_before = T0 - DAY;
    c->not_after = T0 + 89 * DAY;
    c->first_seen = T0;
    c->last_seen = T0 + 5;
    c->count = 7;
    c->naddrs = 2;
    strcpy(c->addrs[0], "192.0.2.1");
    strcpy(c->addrs[1], "2001:db8::1");
    c->ngeo = 1;
    c->geo[0].asn = 64496;
    strcpy(c->geo[0].country, "US");
    c->geo[0].first_seen = T0;
    c->geo[0].last_seen = T0 + 5;

    n = cg_memory_format_json(&e, 0, line, sizeof(line));
    ok(n > 0 && n < sizeof(line), "format: a line (%zu bytes)", n);
    ok(strchr(line, '\n') == NULL, "format: no raw newline");
    ok(strstr(line, "\"name\":\"q\\\"uote\\\\.test\"") != NULL,
       "format: the name escaped");
    ok(strstr(line, "\"addrs\":[\"192.0.2.1\",\"2001:db8::1\"]") != NULL,
       "format: addresses");
    is_int(cg_memory_format_json(&e, 0, line2, 10), n,
           "format: truncated, the full length returned");
    is_int(strlen(line2), 9, "format: truncated output is terminated");

    memset(&err, 0, sizeof(err));
    rc = cg_memory_parse_json(line, n, T0 + 100, &f, &err);
    is_int(rc, CG_OK, "parse: what format wrote");
    if (rc != CG_OK) {
        printf("#   %s\n", err.msg);
    }
    is_str(f.name, e.name, "parse: name");
    ok(memcmp(f.certs[0].sha256, c->sha256, 32) == 0, "parse: sha256");
    ok(f.certs[0].has_spki && memcmp(f.certs[0].spki, c->spki, 32) == 0,
       "parse: spki");
    is_str(f.certs[0].issuer, "CN=R3,O=Let's Encrypt,C=US?",
           "parse: issuer (the newline was never printable)");
    is_int(f.certs[0].count, 7, "parse: count");
    is_int(f.certs[0].last_seen, T0 + 5, "parse: last_seen");
    is_int(f.certs[0].naddrs, 2, "parse: addresses");
    is_int(f.certs[0].geo[0].asn, 64496, "parse: geo asn");

    n = cg_memory_format_json(&f, 0, line2, sizeof(line2));
    cg_memory_format_json(&e, 0, line, sizeof(line));
    ok(n > 0, "format again");

    /* a hand-written inventory line: the minimum, unknown keys */
    in = "  {\"sha256\":\"" "abababababababababababababababab"
         "abababababababababababababababab\", \"x\": {\"y\": [1, 2.5e3, "
         "true, null, \"z\"]}, \"name\": \"caf\\u00e9.test\"}  ";
    rc = cg_memory_parse_json(in, strlen(in), T0 + 100, &f, &err);
    is_int(rc, CG_OK, "parse: minimal line with unknown keys");
    is_str(f.name, "caf\xc3\xa9.test", "parse: \\u escape to UTF-8");
    is_int(f.port, 443, "parse: port defaults to 443");
    is_int(f.certs[0].first_seen, T0 + 100, "parse: times default to now");
    is_int(f.certs[0].count, 1, "parse: count defaults to 1");

    in = "{\"name\":\"a\",\"sha256\":\"ab\"}";
    ok(cg_memory_parse_json(in, strlen(in), T0, &f, &err) == CG_ERR_SYNTAX
       && strstr(err.msg, "64 hex") != NULL, "parse: short digest: %s",
       err.msg);
    in = "{\"name\":\"a\"}";
    ok(cg_memory_parse_json(in, strlen(in), T0, &f, &err) == CG_ERR_SYNTAX
       && strstr(err.msg, "sha256") != NULL, "parse: sha256 required: %s",
       err.msg);
    in = "{\"name\":\"a\",\"port\":0}";
    is_int(cg_memory_parse_json(in, strlen(in), T0, &f, &err),
           CG_ERR_SYNTAX, "parse: port 0");
    in = "{\"name\":\"a\"} x";
    is_int(cg_memory_parse_json(in, strlen(in), T0, &f, &err),
           CG_ERR_SYNTAX, "parse: text after the object");
    in = "{\"name\":\"\\ud800\"}";
    is_int(cg_memory_parse_json(in, strlen(in), T0, &f, &err),
           CG_ERR_SYNTAX, "parse: unpaired surrogate");
    in = "{\"name\":\"a\",\"count\":1.5}";
    is_int(cg_memory_parse_json(in, strlen(in), T0, &f, &err),
           CG_ERR_SYNTAX, "parse: a fraction where an integer goes");
    in = "{\"name\":\"a\",\"first_seen\":99999999999999999999}";
    is_int(cg_memory_parse_json(in, strlen(in), T0, &f, &err),
           CG_ERR_SYNTAX, "parse: integer overflow");
    in = "{\"name\":\"a\",\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}";
    is_int(cg_memory_parse_json(in, strlen(in), T0, &f, &err),
           CG_ERR_SYNTAX, "parse: nested too deep");
    in = "{\"name\":\"a\",\"x\":\"unterminated";
    is_int(cg_memory_parse_json(in, strlen(in), T0, &f, &err),
           CG_ERR_SYNTAX, "parse: unterminated string");
    in = "{\"name\":\"a\\u0000b\",\"sha256\":\"" "abababababababababababab"
         "abababababababababababababababababababab\"}";
    is_int(cg_memory_parse_json(in, strlen(in), T0, &f, &err),
           CG_ERR_SYNTAX, "parse: a NUL in the name");
    in = "{\"name\":\"a\\u0001b\"}";
    is_int(cg_memory_parse_json(in, strlen(in), T0, &f, &err),
           CG_ERR_SYNTAX, "parse: a control character in the name");
    in = "{\"name\":\"" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test\",\"sha256\":\""
         "abababababababababababababababababababababababababababababababab\"}";
    is_int(cg_memory_parse_json(in, strlen(in), T0, &f, &err), CG_OK,
           "parse: a name of 105 bytes");
    in = "{\"name\":\"a\",\"geo\":[{\"country\":\"d\\u00e9\"}]}";
    is_int(cg_memory_parse_json(in, strlen(in), T0, &f, &err),
           CG_ERR_SYNTAX, "parse: a country that is not two letters");
}


/* The signals, through cg_evaluate() with a memory. */

static cg_policy_t  *policy, *policy_1h;
static cg_memory_t  *mem;
static cg_trust_t   *trust;         /* NULL: chains are untrusted */


static cg_policy_t *
load_policy(const char *name, const char *text)
{
    FILE         *fp;
    cg_error_t    err;
    cg_policy_t  *p;

    fp = fopen(path(name), "w");
    fputs(text, fp);
    fclose(fp);

    memset(&err, 0, sizeof(err));
    if (cg_policy_load(&p, path(name), &err) != CG_OK) {
        printf("Bail out! policy %s:%u: %s\n", name, err.line, err.msg);
        exit(1);
    }

    return p;
}


static const cg_hit_t *
hit(const cg_result_t *res, const char *id)
{
    unsigned  i;

    for (i = 0; i < res->nhits; i++) {
        if (strcmp(res->hits[i].id, id) == 0) {
            return &res->hits[i];
        }
    }

    return NULL;
}


/* Evaluates leaf for name at time at, then records the sighting. */
static void
see(const cg_policy_t *p, X509 *leaf, const char *name, int64_t at,
    cg_result_t *res)
{
    int                   rc;
    cg_input_t            in;
    cg_memory_sighting_t  s;

    rc = cg_input_handshake(&in, p, trust, NULL, leaf, NULL, name,
                            "192.0.2.10", 443, at);
    in.memory = mem;

    if (rc == CG_OK) {
        rc = cg_evaluate(&in, res);
    }

    if (rc != CG_OK) {
        printf("#   evaluation failed: %s\n", cg_strerror(rc));
        memset(res, 0, sizeof(*res));
        return;
    }

    if (mem == NULL) {
        return;
    }

    if (cg_memory_sighting(&s, &in, res) != CG_OK) {
        if (name) {
            printf("#   no sighting\n");
        }
        return;
    }

    record1(mem, &s);
}


static void
test_signals(void)
{
    int           idx;
    char          hex[65];
    unsigned      i;
    EVP_PKEY     *kca1, *kca2, *k1, *k2;
    X509         *ca1, *ca2, *a, *a_renewed, *a_rekeyed, *b, *c, *old;
    X509         *le1, *le2, *lea, *leb;
    cg_error_t    err;
    cg_result_t   res;
    unsigned char md[32];
    unsigned int  mdlen;

    kca1 = EVP_EC_gen("P-256");
    kca2 = EVP_EC_gen("P-256");
    k1 = EVP_EC_gen("P-256");
    k2 = EVP_EC_gen("P-256");

    ca1 = mkcert("ca1", NULL, kca1, NULL, NULL, T0 - 900 * DAY,
                 T0 + 900 * DAY, NULL);
    ca2 = mkcert("ca2", NULL, kca2, NULL, NULL, T0 - 900 * DAY,
                 T0 + 900 * DAY, NULL);

    a = mkcert("n.test", NULL, k1, ca1, kca1, T0 - 10 * DAY, T0 + 80 * DAY,
               "DNS:n.test");
    a_renewed = mkcert("n.test", NULL, k1, ca1, kca1, T0 + DAY,
                       T0 + 90 * DAY, "DNS:n.test");
    a_rekeyed = mkcert("n.test", NULL, k2, ca1, kca1, T0 + DAY,
                       T0 + 90 * DAY, "DNS:n.test");
    b = mkcert("n.test", NULL, k2, ca2, kca2, T0, T0 + 90 * DAY,
               "DNS:n.test");
    c = mkcert("n.test", NULL, k1, ca2, kca2, T0, T0 + 90 * DAY,
               "DNS:n.test");
    old = mkcert("n.test", NULL, k1, ca1, kca1, T0 - 80 * DAY,
                 T0 + DAY, "DNS:n.test");

    memset(&err, 0, sizeof(err));
    if (cg_memory_open(&mem, path("signals"), 0, 0, &err) != CG_OK) {
        printf("Bail out! memory: %s\n", err.msg);
        exit(1);
    }

    idx = cg_signal_find("cert_changed");
    ok(idx >= 0, "table: cert_changed");
    is_int(cg_signal_default_weight(idx), 40, "table: cert_changed 40");
    is_int(cg_signal_default_window(idx, 0), 3 * DAY, "table: fresh 3d");
    is_int(cg_signal_default_window(idx, 1), 30 * DAY, "table: recent 30d");
    is_int(cg_signal_default_weight(cg_signal_find("issuer_changed")), 15,
           "table: issuer_changed 15");
    is_int(cg_signal_default_weight(cg_signal_find("cert_moved")), 20,
           "table: cert_moved 20");
    is_int(cg_signal_default_weight(cg_signal_find("first_seen")), 0,
           "table: first_seen 0");

    /* A from CA 1 with key 1, seen three times */

    see(policy, a, "n.test", T0, &res);
    ok(hit(&res, "first_seen") != NULL, "first_seen: a name never seen");
    is_int(hit(&res, "first_seen") ? hit(&res, "first_seen")->weight : -1,
           0, "first_seen: weight 0");
    is_int(res.score, 0, "first_seen: does not score");
    is_str(cg_verdict_name(res.verdict), "allow", "first_seen: allows");
    is_int(res.first_seen, T0, "result: first seen now, for a new one");
    is_str(res.prev_sha256, "", "result: no previous certificate");

    see(policy, a, "n.test", T0 + DAY, &res);
    ok(hit(&res, "first_seen") == NULL, "first_seen: not the second time");
    is_int(res.first_seen, T0, "result: first seen then");
    is_int(res.nhits, 0, "A again: nothing fires");
    see(policy, a, "N.test.", T0 + 2 * DAY, &res);
    is_int(res.nhits, 0, "A again, the name as written otherwise");

    /* renewals by CA 1: not a change */

    see(policy, a_renewed, "n.test", T0 + 3 * DAY, &res);
    ok(hit(&res, "cert_changed") == NULL && hit(&res, "issuer_changed")
       == NULL, "renewal from CA 1, same key: no change");
    see(policy, a_rekeyed, "n.test", T0 + 3 * DAY, &res);
    ok(hit(&res, "cert_changed") == NULL && hit(&res, "issuer_changed")
       == NULL, "renewal from CA 1, new key: no change");

    /* B from CA 2 with key 2 while A is valid: Sea Turtle */

    cg_memory_forget(mem, "n.test", 0, NULL, &err);
    see(policy, a, "n.test", T0, &res);
    see(policy, a, "n.test", T0 + DAY, &res);

    see(policy, b, "n.test", T0 + 2 * DAY, &res);
    ok(hit(&res, "cert_changed") != NULL, "cert_changed: CA 2 and key 2");
    is_int(hit(&res, "cert_changed") ? hit(&res, "cert_changed")->weight
                                     : -1, 40, "cert_changed: weight 40");
    ok(hit(&res, "issuer_changed") == NULL,
       "issuer_changed: not beside cert_changed");
    is_str(cg_verdict_name(res.verdict), "tag", "cert_changed: tags");
    printf("#   detail: %s\n", hit(&res, "cert_changed")
                               ? hit(&res, "cert_changed")->detail : "");
    ok(hit(&res, "cert_changed")
       && strstr(hit(&res, "cert_changed")->detail, "CN=ca1") != NULL,
       "cert_changed: the detail names the previous issuer");

    X509_digest(a, EVP_sha256(), md, &mdlen);
    for (i = 0; i < 32; i++) {
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    is_str(res.prev_sha256, hex, "result: the previous certificate's sha256");
    is_str(res.prev_issuer, "CN=ca1", "result: its issuer");
    is_int(res.first_seen, T0 + 2 * DAY, "result: B first seen now");

    see(policy, b, "n.test", T0 + 2 * DAY + 3600, &res);
    ok(hit(&res, "cert_changed") != NULL,
       "cert_changed: B again within the window still fires");
    see(policy_1h, b, "n.test", T0 + 2 * DAY + 7200, &res);
    ok(hit(&res, "cert_changed") == NULL,
       "cert_changed: not past the policy's window (1h)");
    see(policy, b, "n.test", T0 + 6 * DAY, &res);
    ok(hit(&res, "cert_changed") == NULL,
       "cert_changed: B established after 3d");
    see(policy, a, "n.test", T0 + 6 * DAY, &res);
    ok(hit(&res, "cert_changed") == NULL,
       "cert_changed: A, which came first, is not a change");

    /* CA 2 with key 1: another issuer, the same key */

    cg_memory_forget(mem, "n.test", 0, NULL, &err);
    see(policy, a, "n.test", T0, &res);
    see(policy, c, "n.test", T0 + DAY, &res);
    ok(hit(&res, "issuer_changed") != NULL, "issuer_changed: CA 2, key 1");
    ok(hit(&res, "cert_changed") == NULL, "cert_changed: key is known");
    is_str(res.prev_issuer, "CN=ca1", "issuer_changed: previous issuer");

    /* the old certificate expired, or was not seen for long */

    cg_memory_forget(mem, "n.test", 0, NULL, &err);
    see(policy, old, "n.test", T0 - 10 * DAY, &res);
    see(policy, b, "n.test", T0 + 2 * DAY, &res);
    ok(hit(&res, "cert_changed") == NULL,
       "cert_changed: not when the old one expired");

    cg_memory_forget(mem, "n.test", 0, NULL, &err);
    see(policy, a, "n.test", T0 - 40 * DAY, &res);
    see(policy, b, "n.test", T0 + 2 * DAY, &res);
    ok(hit(&res, "cert_changed") == NULL,
       "cert_changed: not when the old one was last seen 42d ago");

    /* other names, other ports: their own memory */

    see(policy, b, "other.test", T0 + 2 * DAY, &res);
    ok(hit(&res, "cert_changed") == NULL && hit(&res, "first_seen"),
       "another name has its own memory");

    /* the same CA by organization: Let's Encrypt's next intermediate */

    le1 = mkcert("R3", "Let's Encrypt", kca1, NULL, NULL, T0 - 900 * DAY,
                 T0 + 900 * DAY, NULL);
    le2 = mkcert("R10", "Let's Encrypt, Inc.", kca2, NULL, NULL,
                 T0 - 900 * DAY, T0 + 900 * DAY, NULL);
    lea = mkcert("le.test", NULL, k1, le1, kca1, T0 - 10 * DAY,
                 T0 + 80 * DAY, "DNS:le.test");
    leb = mkcert("le.test", NULL, k2, le2, kca2, T0, T0 + 90 * DAY,
                 "DNS:le.test");
    /* untrusted, or private: anyone can call a CA anything */
    see(policy, lea, "le.test", T0, &res);
    see(policy, leb, "le.test", T0 + DAY, &res);
    ok(hit(&res, "cert_changed") != NULL,
       "untrusted: O=Let's Encrypt twice is not the same CA");

    /* public roots (the system bundle: SSL_CERT_FILE here) */
    {
        FILE        *fp;
        X509        *roots[2];
        cg_error_t   terr;

        roots[0] = le1;
        roots[1] = le2;
        fp = fopen(path("public.pem"), "w");
        PEM_write_X509(fp, roots[0]);
        PEM_write_X509(fp, roots[1]);
        fclose(fp);
        setenv("SSL_CERT_FILE", path("public.pem"), 1);

        memset(&terr, 0, sizeof(terr));
        if (cg_trust_load(&trust, NULL, 0, &terr) != CG_OK) {
            printf("Bail out! trust: %s\n", terr.msg);
            exit(1);
        }
    }

    cg_memory_forget(mem, "le.test", 0, NULL, &err);
    see(policy, lea, "le.test", T0, &res);
    ok(res.public_root, "public: the chain ends in a public root");
    see(policy, leb, "le.test", T0 + DAY, &res);
    ok(hit(&res, "cert_changed") == NULL && hit(&res, "issuer_changed")
       == NULL, "public: O=Let's Encrypt and O=Let's Encrypt, Inc. are "
       "one CA");

    cg_trust_free(trust);
    trust = NULL;

    /* disabled: not computed */

    cg_memory_forget(mem, "n.test", 0, NULL, &err);
    policy->weight[idx] = 0;
    see(policy, a, "n.test", T0, &res);
    see(policy, b, "n.test", T0 + DAY, &res);
    ok(hit(&res, "cert_changed") == NULL, "cert_changed: weight 0 disables");
    is_str(res.prev_sha256, "", "disabled: no previous certificate");
    policy->weight[idx] = cg_signal_default_weight(idx);

    /* no name: no memory */

    see(policy, b, NULL, T0 + DAY, &res);
    ok(hit(&res, "first_seen") == NULL && res.first_seen == 0,
       "no name: the memory is not consulted");

    cg_memory_close(mem);
    mem = NULL;

    /* no memory: nothing of it */

    see(policy, b, "n.test", T0 + DAY, &res);
    ok(res.nhits == 0 && res.first_seen == 0, "no memory: no memory signals");

    X509_free(ca1);
    X509_free(ca2);
    X509_free(a);
    X509_free(a_renewed);
    X509_free(a_rekeyed);
    X509_free(b);
    X509_free(c);
    X509_free(old);
    X509_free(le1);
    X509_free(le2);
    X509_free(lea);
    X509_free(leb);
    EVP_PKEY_free(kca1);
    EVP_PKEY_free(kca2);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}


int
main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }

    /* without trust anchors: the memory signals alone */
    policy = load_policy("p.policy", "name memory;\n"
                         "weight untrusted_chain 0;\n"
                         "weight issued_recently 0;\n");
    policy_1h = load_policy("p1h.policy", "name memory-1h;\n"
                            "weight untrusted_chain 0;\n"
                            "weight issued_recently 0;\n"
                            "window cert_changed 1h 30d;\n");

    test_key();
    test_store();
    test_cert_bound();
    test_eviction();
    test_damage();
    test_json();
    test_signals();

    cg_policy_free(policy);
    cg_policy_free(policy_1h);
    rm_rf(tmpdir);

    return done_testing();
}
