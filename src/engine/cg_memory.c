/*
 * The certificate memory's store: an LMDB environment (a directory with
 * data.mdb and lock.mdb) holding, per "name:port", the certificates it
 * presented.  Three databases:
 *
 *   names   "name:port" -> the entry, packed (below)
 *   lru     8-byte big-endian last sighting + "name:port" -> "", so that
 *           the least recently seen names are the first keys
 *   meta    "version" -> the format's version
 *
 * LMDB gives what the memory needs without a server: readers in every
 * process of the node at once, one writer at a time across them, and
 * copy-on-write pages with a robust lock, so that a process killed in the
 * middle of a transaction leaves the last committed state intact.  The
 * bound is enforced here: a number of names derived from the map size,
 * and a margin of the map kept free so that a write transaction (which
 * needs fresh pages) always fits; past either, least recently seen names
 * go first.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <lmdb.h>

#include "cg_memory.h"
#include "cg_internal.h"


#define CG_MEM_VERSION          1
#define CG_MEM_EVICT_EXTRA      64      /* names evicted per call beyond n */
#define CG_MEM_FULL_PERCENT     75      /* of the map: evict past it */
#define CG_MEM_READER_CHECK     256     /* record calls between checks */
#define CG_MEM_VALUE_MAX        8192


struct cg_memory_s {
    MDB_env            *env;
    MDB_dbi             names;
    MDB_dbi             lru;
    MDB_dbi             meta;
    MDB_txn            *rtxn;           /* reset between lookups */
    size_t              max_names;
    unsigned            writes;         /* record calls, for reader checks */
    unsigned            rdonly:1;
    cg_memory_entry_t  *scratch;        /* an entry being merged */
    char                dir[CG_NAME_MAX];
};


/* A packed value: the fields in a fixed order, host byte order (an LMDB
 * file is not portable between byte orders either). */
typedef struct {
    unsigned char      *p;
    size_t              len;
    size_t              pos;
    int                 bad;
} cg_mem_buf_t;


static int cg_mem_error(cg_memory_t *m, cg_error_t *err, int rc,
    const char *what);
static int cg_mem_txn(cg_memory_t *m, unsigned flags, MDB_txn **txn);
static void cg_mem_put(cg_mem_buf_t *b, const void *v, size_t n);
static void cg_mem_get(cg_mem_buf_t *b, void *v, size_t n);
static size_t cg_mem_encode(const cg_memory_entry_t *e, unsigned char *p,
    size_t len);
static int cg_mem_decode(const unsigned char *p, size_t len,
    cg_memory_entry_t *e);
static int cg_mem_split_key(const char *key, size_t len,
    cg_memory_entry_t *e);
static void cg_mem_lru_key(int64_t t, const char *key, size_t klen,
    unsigned char *out);
static void cg_mem_cert_merge(cg_memory_entry_t *e,
    const cg_memory_cert_t *c);
static int cg_mem_store(cg_memory_t *m, MDB_txn *txn,
    const cg_memory_entry_t *in);
static int cg_mem_evict(cg_memory_t *m, MDB_txn *txn, size_t limit,
    size_t extra);
static int cg_mem_delete(cg_memory_t *m, MDB_txn *txn, MDB_val *key,
    MDB_val *val);


static int
cg_mem_error(cg_memory_t *m, cg_error_t *err, int rc, const char *what)
{
    return cg_errorf(err, CG_ERR_IO, NULL, 0, "memory %s: %s: %s",
                     m ? m->dir : "", what, mdb_strerror(rc));
}


int
cg_memory_key(const char *name, unsigned port, char *key, size_t size)
{
    size_t    n, i, k;
    int       len;
    uint32_t  cp;

    if (name == NULL || key == NULL) {
        return -1;
    }

    n = strlen(name);

    if (n > 1 && name[n - 1] == '.') {
        n--;
    }

    if (n == 0 || n >= CG_NAME_MAX || port > 65535) {
        return -1;
    }

    /* printable UTF-8 only, so that a name exported is the name imported */

    for (i = 0; i < n; i += k) {
        k = cg_utf8_decode((const unsigned char *) name + i, n - i, &cp);

        if (k == 0 || cp < 0x20 || cp == 0x7f) {
            return -1;
        }
    }

    len = snprintf(key, size, "%.*s:%u", (int) n, name, port ? port : 443);
    if (len < 0 || (size_t) len >= size) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        if (key[i] >= 'A' && key[i] <= 'Z') {
            key[i] = (char) (key[i] - 'A' + 'a');
        }
    }

    return 0;
}


int
cg_memory_open(cg_memory_t **mem, const char *dir, size_t size,
    unsigned flags, cg_error_t *err)
{
    int           rc, dead;
    char          data[CG_NAME_MAX + 16];
    MDB_txn      *txn;
    MDB_val       k, v;
    struct stat   st;
    MDB_envinfo   info;
    cg_memory_t  *m;
    unsigned      envflags, dbflags, version;

    if (mem == NULL || dir == NULL || dir[0] == '\0') {
        return cg_errorf(err, CG_ERR_ARG, NULL, 0, "memory: no directory");
    }

    *mem = NULL;

    if (size && size < CG_MEMORY_SIZE_MIN) {
        size = CG_MEMORY_SIZE_MIN;
    }

    m = calloc(1, sizeof(cg_memory_t));
    if (m == NULL) {
        return cg_errorf(err, CG_ERR_NOMEM, NULL, 0, "memory: no memory");
    }

    cg_strlcpy(m->dir, dir, sizeof(m->dir));
    m->rdonly = (flags & CG_MEMORY_RDONLY) != 0;

    m->scratch = malloc(sizeof(cg_memory_entry_t));
    if (m->scratch == NULL) {
        free(m);
        return cg_errorf(err, CG_ERR_NOMEM, NULL, 0, "memory: no memory");
    }

    if (!m->rdonly && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = cg_errorf(err, CG_ERR_IO, NULL, 0, "memory %s: %s", m->dir,
                       strerror(errno));
        goto failed;
    }

    rc = mdb_env_create(&m->env);
    if (rc != 0) {
        rc = cg_mem_error(m, err, rc, "mdb_env_create");
        goto failed;
    }

    (void) mdb_env_set_maxdbs(m->env, 4);

    /* size 0: the size the store has (LMDB keeps it), so that the CLI
     * does not shrink what nginx sized; a new store gets the default */

    if (size == 0) {
        snprintf(data, sizeof(data), "%s/data.mdb", dir);
        if (stat(data, &st) != 0) {
            size = CG_MEMORY_SIZE_DEFAULT;
        }
    }

    if (size) {
        rc = mdb_env_set_mapsize(m->env, size);
        if (rc != 0) {
            rc = cg_mem_error(m, err, rc, "mdb_env_set_mapsize");
            goto failed;
        }
    }

    /*
     * MDB_NOTLS: read transactions belong to the handle, so one can be
     * reset and renewed; MDB_NOMETASYNC: a system crash may undo the last
     * transaction, never corrupt (a process crash loses nothing).
     */

    envflags = MDB_NOTLS | MDB_NOMETASYNC | (m->rdonly ? MDB_RDONLY : 0);

    rc = mdb_env_open(m->env, dir, envflags, 0600);
    if (rc != 0) {
        rc = cg_mem_error(m, err, rc, "mdb_env_open");
        goto failed;
    }

    if (mdb_env_info(m->env, &info) == 0) {
        m->max_names = info.me_mapsize / CG_MEMORY_BYTES_PER_NAME;
    }

    if (m->max_names == 0) {
        m->max_names = CG_MEMORY_SIZE_MIN / CG_MEMORY_BYTES_PER_NAME;
    }

    /* slots of readers that died (a worker killed mid-lookup) */
    (void) mdb_reader_check(m->env, &dead);

    rc = mdb_txn_begin(m->env, NULL, m->rdonly ? MDB_RDONLY : 0, &txn);
    if (rc != 0) {
        rc = cg_mem_error(m, err, rc, "mdb_txn_begin");
        goto failed;
    }

    dbflags = m->rdonly ? 0 : MDB_CREATE;

    rc = mdb_dbi_open(txn, "names", dbflags, &m->names);
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "lru", dbflags, &m->lru);
    }
    if (rc == 0) {
        rc = mdb_dbi_open(txn, "meta", dbflags, &m->meta);
    }

    if (rc != 0) {
        mdb_txn_abort(txn);
        rc = rc == MDB_NOTFOUND
             ? cg_errorf(err, CG_ERR_IO, NULL, 0,
                         "memory %s: not a certificate memory (nothing "
                         "recorded yet)", m->dir)
             : cg_mem_error(m, err, rc, "mdb_dbi_open");
        goto failed;
    }

    k.mv_data = "version";
    k.mv_size = 7;

    rc = mdb_get(txn, m->meta, &k, &v);

    if (rc == MDB_NOTFOUND && !m->rdonly) {
        version = CG_MEM_VERSION;
        v.mv_data = &version;
        v.mv_size = sizeof(version);
        rc = mdb_put(txn, m->meta, &k, &v, 0);

    } else if (rc == 0) {
        version = 0;
        if (v.mv_size == sizeof(version)) {
            memcpy(&version, v.mv_data, sizeof(version));
        }

        if (version != CG_MEM_VERSION) {
            mdb_txn_abort(txn);
            rc = cg_errorf(err, CG_ERR_IO, NULL, 0,
                           "memory %s: format version %u, this certguard "
                           "reads %u", m->dir, version, CG_MEM_VERSION);
            goto failed;
        }
    }

    if (rc != 0 && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        rc = cg_mem_error(m, err, rc, "version");
        goto failed;
    }

    /* a read-only transaction is committed too: that keeps the handles */
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        rc = cg_mem_error(m, err, rc, "mdb_txn_commit");
        goto failed;
    }

    *mem = m;

    return CG_OK;

failed:

    cg_memory_close(m);

    return rc;
}


void
cg_memory_close(cg_memory_t *m)
{
    if (m == NULL) {
        return;
    }

    if (m->rtxn) {
        mdb_txn_abort(m->rtxn);
    }

    if (m->env) {
        mdb_env_close(m->env);
    }

    free(m->scratch);
    free(m);
}


/* A transaction; another process may have grown the map meanwhile, which
 * this one adopts. */
static int
cg_mem_txn(cg_memory_t *m, unsigned flags, MDB_txn **txn)
{
    int  rc;

    rc = mdb_txn_begin(m->env, NULL, flags, txn);

    if (rc == MDB_MAP_RESIZED) {
        rc = mdb_env_set_mapsize(m->env, 0);
        if (rc == 0) {
            rc = mdb_txn_begin(m->env, NULL, flags, txn);
        }
    }

    return rc;
}


/* The handle's read transaction, renewed; reset again by the caller. */
static int
cg_mem_read_txn(cg_memory_t *m, MDB_txn **txn)
{
    int  rc;

    if (m->rtxn == NULL) {
        rc = cg_mem_txn(m, MDB_RDONLY, &m->rtxn);
        if (rc != 0) {
            m->rtxn = NULL;
            return rc;
        }

        *txn = m->rtxn;
        return 0;
    }

    rc = mdb_txn_renew(m->rtxn);

    if (rc == MDB_MAP_RESIZED) {
        mdb_txn_abort(m->rtxn);
        m->rtxn = NULL;
        return cg_mem_read_txn(m, txn);
    }

    if (rc != 0) {
        mdb_txn_abort(m->rtxn);
        m->rtxn = NULL;
        return rc;
    }

    *txn = m->rtxn;

    return 0;
}


int
cg_memory_lookup(cg_memory_t *m, const char *name, unsigned port,
    cg_memory_entry_t *e)
{
    int       rc;
    char      key[CG_MEMORY_KEY_MAX];
    MDB_txn  *txn;
    MDB_val   k, v;

    if (e == NULL) {
        return CG_ERR_ARG;
    }

    memset(e, 0, offsetof(cg_memory_entry_t, certs));

    if (m == NULL || cg_memory_key(name, port, key, sizeof(key)) != 0) {
        return CG_ERR_ARG;
    }

    rc = cg_mem_read_txn(m, &txn);
    if (rc != 0) {
        return CG_ERR_IO;
    }

    k.mv_data = key;
    k.mv_size = strlen(key);

    rc = mdb_get(txn, m->names, &k, &v);

    if (rc == 0) {
        if (cg_mem_decode(v.mv_data, v.mv_size, e) != 0) {
            memset(e, 0, offsetof(cg_memory_entry_t, certs));
        }
    }

    mdb_txn_reset(txn);

    (void) cg_mem_split_key(key, strlen(key), e);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        return CG_ERR_IO;
    }

    return CG_OK;
}


static void
cg_mem_put(cg_mem_buf_t *b, const void *v, size_t n)
{
    if (b->bad || b->len - b->pos < n) {
        b->bad = 1;
        return;
    }

    memcpy(b->p + b->pos, v, n);
    b->pos += n;
}


static void
cg_mem_get(cg_mem_buf_t *b, void *v, size_t n)
{
    if (b->bad || b->len - b->pos < n) {
        b->bad = 1;
        memset(v, 0, n);
        return;
    }

    memcpy(v, b->p + b->pos, n);
    b->pos += n;
}


/*
 * value: version u8, ncerts u8, first_seen, last_seen (i64), then each
 * certificate: sha256[32], spki[32], flags u8 (1 has_spki, 2
 * public_root), naddrs u8, ngeo u8,
 * issuer length u16, not_before, not_after, first_seen, last_seen (i64),
 * count u32, each address (length u8, text), each location (asn u32,
 * country[2], first_seen, last_seen), the issuer's bytes.
 */
static size_t
cg_mem_encode(const cg_memory_entry_t *e, unsigned char *p, size_t len)
{
    unsigned char            u8;
    uint16_t                 u16;
    unsigned                 i, j;
    cg_mem_buf_t             b;
    const cg_memory_cert_t  *c;

    b.p = p;
    b.len = len;
    b.pos = 0;
    b.bad = 0;

    u8 = CG_MEM_VERSION;
    cg_mem_put(&b, &u8, 1);
    u8 = (unsigned char) e->ncerts;
    cg_mem_put(&b, &u8, 1);
    cg_mem_put(&b, &e->first_seen, 8);
    cg_mem_put(&b, &e->last_seen, 8);

    for (i = 0; i < e->ncerts; i++) {
        c = &e->certs[i];

        cg_mem_put(&b, c->sha256, 32);
        cg_mem_put(&b, c->spki, 32);
        u8 = (unsigned char) (c->has_spki | (c->public_root << 1));
        cg_mem_put(&b, &u8, 1);
        u8 = (unsigned char) c->naddrs;
        cg_mem_put(&b, &u8, 1);
        u8 = (unsigned char) c->ngeo;
        cg_mem_put(&b, &u8, 1);
        u16 = (uint16_t) strnlen(c->issuer, sizeof(c->issuer) - 1);
        cg_mem_put(&b, &u16, 2);
        cg_mem_put(&b, &c->not_before, 8);
        cg_mem_put(&b, &c->not_after, 8);
        cg_mem_put(&b, &c->first_seen, 8);
        cg_mem_put(&b, &c->last_seen, 8);
        cg_mem_put(&b, &c->count, 4);

        for (j = 0; j < c->naddrs; j++) {
            u8 = (unsigned char) strnlen(c->addrs[j], CG_MEMORY_ADDR_LEN - 1);
            cg_mem_put(&b, &u8, 1);
            cg_mem_put(&b, c->addrs[j], u8);
        }

        for (j = 0; j < c->ngeo; j++) {
            cg_mem_put(&b, &c->geo[j].asn, 4);
            cg_mem_put(&b, c->geo[j].country, 2);
            cg_mem_put(&b, &c->geo[j].first_seen, 8);
            cg_mem_put(&b, &c->geo[j].last_seen, 8);
        }

        cg_mem_put(&b, c->issuer, u16);
    }

    return b.bad ? 0 : b.pos;
}


/* A value as stored; -1 for one that does not decode whole. */
static int
cg_mem_decode(const unsigned char *p, size_t len, cg_memory_entry_t *e)
{
    unsigned char      u8, version;
    uint16_t           u16;
    unsigned           i, j;
    cg_mem_buf_t       b;
    cg_memory_cert_t  *c;

    b.p = (unsigned char *) p;
    b.len = len;
    b.pos = 0;
    b.bad = 0;

    cg_mem_get(&b, &version, 1);
    cg_mem_get(&b, &u8, 1);

    if (b.bad || version != CG_MEM_VERSION || u8 > CG_MEMORY_CERTS_MAX) {
        return -1;
    }

    e->ncerts = u8;
    cg_mem_get(&b, &e->first_seen, 8);
    cg_mem_get(&b, &e->last_seen, 8);

    for (i = 0; i < e->ncerts && !b.bad; i++) {
        c = &e->certs[i];
        memset(c, 0, sizeof(cg_memory_cert_t));

        cg_mem_get(&b, c->sha256, 32);
        cg_mem_get(&b, c->spki, 32);
        cg_mem_get(&b, &u8, 1);
        c->has_spki = (u8 & 1) != 0;
        c->public_root = (u8 & 2) != 0;
        cg_mem_get(&b, &u8, 1);
        c->naddrs = u8;
        cg_mem_get(&b, &u8, 1);
        c->ngeo = u8;
        cg_mem_get(&b, &u16, 2);
        cg_mem_get(&b, &c->not_before, 8);
        cg_mem_get(&b, &c->not_after, 8);
        cg_mem_get(&b, &c->first_seen, 8);
        cg_mem_get(&b, &c->last_seen, 8);
        cg_mem_get(&b, &c->count, 4);

        if (c->naddrs > CG_MEMORY_ADDRS_MAX || c->ngeo > CG_MEMORY_GEO_MAX
            || u16 >= sizeof(c->issuer))
        {
            return -1;
        }

        for (j = 0; j < c->naddrs; j++) {
            cg_mem_get(&b, &u8, 1);
            if (u8 >= CG_MEMORY_ADDR_LEN) {
                return -1;
            }
            cg_mem_get(&b, c->addrs[j], u8);
            c->addrs[j][u8] = '\0';
        }

        for (j = 0; j < c->ngeo; j++) {
            cg_mem_get(&b, &c->geo[j].asn, 4);
            cg_mem_get(&b, c->geo[j].country, 2);
            c->geo[j].country[2] = '\0';
            cg_mem_get(&b, &c->geo[j].first_seen, 8);
            cg_mem_get(&b, &c->geo[j].last_seen, 8);
        }

        cg_mem_get(&b, c->issuer, u16);
        c->issuer[u16] = '\0';
    }

    return (b.bad || b.pos != len) ? -1 : 0;
}


/* "name:port" into e->name and e->port. */
static int
cg_mem_split_key(const char *key, size_t len, cg_memory_entry_t *e)
{
    size_t         i, colon;
    unsigned long  port;

    colon = len;

    for (i = len; i > 0; i--) {
        if (key[i - 1] == ':') {
            colon = i - 1;
            break;
        }
    }

    if (colon == len || colon == 0 || colon >= sizeof(e->name)
        || len - colon < 2 || len - colon > 6)
    {
        return -1;
    }

    port = 0;

    for (i = colon + 1; i < len; i++) {
        if (key[i] < '0' || key[i] > '9') {
            return -1;
        }
        port = port * 10 + (unsigned long) (key[i] - '0');
    }

    if (port == 0 || port > 65535) {
        return -1;
    }

    memcpy(e->name, key, colon);
    e->name[colon] = '\0';
    e->port = (unsigned) port;

    return 0;
}


/* Offset binary, big-endian: negative times sort first too. */
static void
cg_mem_lru_key(int64_t t, const char *key, size_t klen, unsigned char *out)
{
    int       i;
    uint64_t  u;

    u = (uint64_t) t ^ ((uint64_t) 1 << 63);

    for (i = 7; i >= 0; i--) {
        out[i] = (unsigned char) (u & 0xff);
        u >>= 8;
    }

    memcpy(out + 8, key, klen);
}


static void
cg_mem_addrs_merge(cg_memory_cert_t *d, const cg_memory_cert_t *c,
    int newer)
{
    unsigned                 i, j, n;
    char                     out[CG_MEMORY_ADDRS_MAX][CG_MEMORY_ADDR_LEN];
    const cg_memory_cert_t  *first, *second, *src;

    first = newer ? c : d;
    second = newer ? d : c;
    n = 0;

    for (src = first; src; src = (src == first ? second : NULL)) {
        for (i = 0; i < src->naddrs && n < CG_MEMORY_ADDRS_MAX; i++) {
            for (j = 0; j < n; j++) {
                if (strcmp(out[j], src->addrs[i]) == 0) {
                    break;
                }
            }

            if (j == n && src->addrs[i][0]) {
                cg_strlcpy(out[n++], src->addrs[i], CG_MEMORY_ADDR_LEN);
            }
        }
    }

    memcpy(d->addrs, out, sizeof(out));
    d->naddrs = n;
}


static void
cg_mem_geo_merge(cg_memory_cert_t *d, const cg_memory_geo_t *g)
{
    unsigned          i, old;
    cg_memory_geo_t  *x;

    for (i = 0; i < d->ngeo; i++) {
        x = &d->geo[i];

        if (x->asn == g->asn && strcmp(x->country, g->country) == 0) {
            if (g->first_seen < x->first_seen) {
                x->first_seen = g->first_seen;
            }
            if (g->last_seen > x->last_seen) {
                x->last_seen = g->last_seen;
            }
            return;
        }
    }

    if (d->ngeo < CG_MEMORY_GEO_MAX) {
        d->geo[d->ngeo++] = *g;
        return;
    }

    /* full: the least recently seen location makes room */

    old = 0;

    for (i = 1; i < d->ngeo; i++) {
        if (d->geo[i].last_seen < d->geo[old].last_seen) {
            old = i;
        }
    }

    if (d->geo[old].last_seen <= g->last_seen) {
        d->geo[old] = *g;
    }
}


/*
 * One certificate into an entry.  When the entry is full, an expired
 * certificate makes room first, then the least recently seen, so that a
 * destination flooding the memory with new certificates pushes out what
 * it presented last, not what it presented for a year.
 */
static void
cg_mem_cert_merge(cg_memory_entry_t *e, const cg_memory_cert_t *c)
{
    int                newer;
    unsigned           i, j, victim;
    uint64_t           count;
    cg_memory_cert_t  *d, tmp;

    for (i = 0; i < e->ncerts; i++) {
        if (memcmp(e->certs[i].sha256, c->sha256, 32) == 0) {
            break;
        }
    }

    if (i < e->ncerts) {
        d = &e->certs[i];
        newer = c->last_seen >= d->last_seen;

        if (c->first_seen < d->first_seen) {
            d->first_seen = c->first_seen;
        }
        if (c->last_seen > d->last_seen) {
            d->last_seen = c->last_seen;
        }

        count = (uint64_t) d->count + c->count;
        d->count = count > UINT32_MAX ? UINT32_MAX : (uint32_t) count;

        d->public_root |= c->public_root;

        if (!d->has_spki && c->has_spki) {
            memcpy(d->spki, c->spki, 32);
            d->has_spki = 1;
        }
        if (d->issuer[0] == '\0') {
            cg_strlcpy(d->issuer, c->issuer, sizeof(d->issuer));
        }
        if (d->not_before == 0) {
            d->not_before = c->not_before;
        }
        if (d->not_after == 0) {
            d->not_after = c->not_after;
        }

        cg_mem_addrs_merge(d, c, newer);

        for (j = 0; j < c->ngeo && j < CG_MEMORY_GEO_MAX; j++) {
            cg_mem_geo_merge(d, &c->geo[j]);
        }

    } else if (e->ncerts < CG_MEMORY_CERTS_MAX) {
        e->certs[e->ncerts++] = *c;

    } else {
        victim = CG_MEMORY_CERTS_MAX;

        for (i = 0; i < e->ncerts; i++) {
            d = &e->certs[i];

            if (d->not_after != 0 && d->not_after < c->last_seen
                && (victim == CG_MEMORY_CERTS_MAX
                    || d->last_seen < e->certs[victim].last_seen))
            {
                victim = i;
            }
        }

        if (victim == CG_MEMORY_CERTS_MAX) {
            victim = 0;

            for (i = 1; i < e->ncerts; i++) {
                if (e->certs[i].last_seen < e->certs[victim].last_seen) {
                    victim = i;
                }
            }
        }

        e->certs[victim] = *c;
    }

    if (c->first_seen < e->first_seen) {
        e->first_seen = c->first_seen;
    }

    if (c->last_seen > e->last_seen) {
        e->last_seen = c->last_seen;
    }

    /* most recently seen first: a handful, insertion sort */

    for (i = 1; i < e->ncerts; i++) {
        tmp = e->certs[i];

        for (j = i; j > 0 && e->certs[j - 1].last_seen < tmp.last_seen; j--) {
            e->certs[j] = e->certs[j - 1];
        }

        e->certs[j] = tmp;
    }
}


/*
 * Merges each certificate of in into what the store holds for in's
 * name:port, and moves the name in the LRU order.  MDB_* codes.
 */
static int
cg_mem_store(cg_memory_t *m, MDB_txn *txn, const cg_memory_entry_t *in)
{
    int                 rc, found;
    char                key[CG_MEMORY_KEY_MAX];
    size_t              klen, vlen;
    unsigned            i;
    int64_t             old_last;
    MDB_val             k, v;
    cg_memory_entry_t  *e;
    unsigned char       lru[8 + CG_MEMORY_KEY_MAX];
    unsigned char       buf[CG_MEM_VALUE_MAX];

    if (in->ncerts == 0
        || cg_memory_key(in->name, in->port, key, sizeof(key)) != 0)
    {
        return 0;       /* nothing to keep, or no key: skipped */
    }

    klen = strlen(key);
    k.mv_data = key;
    k.mv_size = klen;

    e = m->scratch;
    memset(e, 0, offsetof(cg_memory_entry_t, certs));
    found = 0;
    old_last = 0;

    rc = mdb_get(txn, m->names, &k, &v);

    if (rc == 0 && cg_mem_decode(v.mv_data, v.mv_size, e) == 0) {
        found = 1;
        old_last = e->last_seen;

    } else if (rc == 0) {
        /* undecodable: replaced, and its LRU key is not known */
        memset(e, 0, offsetof(cg_memory_entry_t, certs));

    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }

    for (i = 0; i < in->ncerts && i < CG_MEMORY_CERTS_MAX; i++) {
        if (e->ncerts == 0) {
            e->first_seen = in->certs[i].first_seen;
            e->last_seen = in->certs[i].last_seen;
        }

        cg_mem_cert_merge(e, &in->certs[i]);
    }

    vlen = cg_mem_encode(e, buf, sizeof(buf));
    if (vlen == 0) {
        return MDB_BAD_VALSIZE;
    }

    v.mv_data = buf;
    v.mv_size = vlen;

    rc = mdb_put(txn, m->names, &k, &v, 0);
    if (rc != 0) {
        return rc;
    }

    if (found && old_last == e->last_seen) {
        return 0;
    }

    if (found) {
        cg_mem_lru_key(old_last, key, klen, lru);
        k.mv_data = lru;
        k.mv_size = 8 + klen;

        rc = mdb_del(txn, m->lru, &k, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return rc;
        }
    }

    cg_mem_lru_key(e->last_seen, key, klen, lru);
    k.mv_data = lru;
    k.mv_size = 8 + klen;
    v.mv_data = "";
    v.mv_size = 0;

    return mdb_put(txn, m->lru, &k, &v, 0);
}


/* Pages the databases hold now (not the map's high-water mark, which
 * LMDB reuses freed pages below). */
static size_t
cg_mem_pages(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_stat  st;

    if (mdb_stat(txn, dbi, &st) != 0) {
        return 0;
    }

    return st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
}


/*
 * Evicts least recently seen names while the store is over its bound: the
 * names past max_names, and a sixteenth of them at a time while the pages
 * in use pass CG_MEM_FULL_PERCENT of the map (extra: more names to evict
 * regardless, for a map that filled).  At most limit names.  MDB_* codes.
 */
static int
cg_mem_evict(cg_memory_t *m, MDB_txn *txn, size_t limit, size_t extra)
{
    int          rc;
    size_t       n, want, pages, total;
    MDB_env     *env;
    MDB_val      k, v, nk;
    MDB_stat     st;
    MDB_envinfo  info;
    MDB_cursor  *cur;

    rc = mdb_stat(txn, m->names, &st);
    if (rc != 0) {
        return rc;
    }

    n = st.ms_entries;
    want = n > m->max_names ? n - m->max_names : 0;
    want += extra;

    env = mdb_txn_env(txn);

    /* MAIN_DBI (1) holds the named databases' records; pages on LMDB's
     * free list are reusable and not counted */

    if (mdb_env_info(env, &info) == 0 && mdb_env_stat(env, &st) == 0
        && st.ms_psize > 0)
    {
        total = info.me_mapsize / st.ms_psize;
        pages = cg_mem_pages(txn, 1) + cg_mem_pages(txn, m->names)
                + cg_mem_pages(txn, m->lru) + cg_mem_pages(txn, m->meta);

        if (pages * 100 > total * CG_MEM_FULL_PERCENT) {
            want += n / 16 + 1;
        }
    }

    if (want > limit) {
        want = limit;
    }

    if (want == 0) {
        return 0;
    }

    rc = mdb_cursor_open(txn, m->lru, &cur);
    if (rc != 0) {
        return rc;
    }

    while (want-- > 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (rc != 0) {
            break;
        }

        if (k.mv_size > 8) {
            nk.mv_data = (char *) k.mv_data + 8;
            nk.mv_size = k.mv_size - 8;

            rc = mdb_del(txn, m->names, &nk, NULL);
            if (rc != 0 && rc != MDB_NOTFOUND) {
                break;
            }
        }

        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) {
            break;
        }
    }

    mdb_cursor_close(cur);

    return rc == MDB_NOTFOUND ? 0 : rc;
}


static void
cg_mem_sighting_cert(const cg_memory_sighting_t *s, cg_memory_entry_t *e)
{
    cg_memory_cert_t  *c;

    memset(e, 0, offsetof(cg_memory_entry_t, certs));
    cg_strlcpy(e->name, s->name, sizeof(e->name));
    e->port = s->port;
    e->first_seen = s->at;
    e->last_seen = s->at;
    e->ncerts = 1;

    c = &e->certs[0];
    memset(c, 0, sizeof(cg_memory_cert_t));
    memcpy(c->sha256, s->sha256, 32);
    memcpy(c->spki, s->spki, 32);
    c->has_spki = 1;
    c->public_root = s->public_root;
    cg_strlcpy(c->issuer, s->issuer, sizeof(c->issuer));
    c->not_before = s->not_before;
    c->not_after = s->not_after;
    c->first_seen = s->at;
    c->last_seen = s->at;
    c->count = 1;

    if (s->addr[0]) {
        cg_strlcpy(c->addrs[0], s->addr, CG_MEMORY_ADDR_LEN);
        c->naddrs = 1;
    }

    if (s->asn || s->country[0]) {
        c->geo[0].asn = s->asn;
        memcpy(c->geo[0].country, s->country, 3);
        c->geo[0].country[2] = '\0';
        c->geo[0].first_seen = s->at;
        c->geo[0].last_seen = s->at;
        c->ngeo = 1;
    }
}


/*
 * One write transaction for a batch, the given sightings (s) or entries
 * (e); a map that filled has names evicted in a transaction of their own
 * and the batch is tried once more.
 */
static int
cg_mem_write(cg_memory_t *m, const cg_memory_sighting_t *s,
    const cg_memory_entry_t *e, size_t n, cg_error_t *err)
{
    int                 rc, attempt, dead;
    size_t              i;
    MDB_txn            *txn;
    cg_memory_entry_t  *one;

    if (m == NULL || (n && s == NULL && e == NULL)) {
        return cg_errorf(err, CG_ERR_ARG, NULL, 0, "memory: no handle");
    }

    if (m->rdonly) {
        return cg_errorf(err, CG_ERR_ARG, NULL, 0,
                         "memory %s: opened read-only", m->dir);
    }

    if (n == 0) {
        return CG_OK;
    }

    one = NULL;

    if (s) {
        one = malloc(sizeof(cg_memory_entry_t));
        if (one == NULL) {
            return cg_errorf(err, CG_ERR_NOMEM, NULL, 0, "memory: no memory");
        }
    }

    if (++m->writes % CG_MEM_READER_CHECK == 0) {
        (void) mdb_reader_check(m->env, &dead);
    }

    rc = 0;

    for (attempt = 0; attempt < 2; attempt++) {
        rc = cg_mem_txn(m, 0, &txn);
        if (rc != 0) {
            break;
        }

        for (i = 0; i < n && rc == 0; i++) {
            if (s) {
                cg_mem_sighting_cert(&s[i], one);
                rc = cg_mem_store(m, txn, one);

            } else {
                rc = cg_mem_store(m, txn, &e[i]);
            }
        }

        if (rc == 0) {
            rc = cg_mem_evict(m, txn, n + CG_MEM_EVICT_EXTRA, 0);
        }

        if (rc == 0) {
            rc = mdb_txn_commit(txn);

        } else {
            mdb_txn_abort(txn);
        }

        if (rc != MDB_MAP_FULL || attempt > 0) {
            break;
        }

        /* the map filled: room first, in a transaction of its own */

        rc = cg_mem_txn(m, 0, &txn);
        if (rc != 0) {
            break;
        }

        rc = cg_mem_evict(m, txn, (size_t) -1, m->max_names / 8 + 1);

        if (rc != 0) {
            mdb_txn_abort(txn);
            break;
        }

        rc = mdb_txn_commit(txn);
        if (rc != 0) {
            break;
        }
    }

    free(one);

    if (rc != 0) {
        return cg_mem_error(m, err, rc, "write");
    }

    return CG_OK;
}


int
cg_memory_record(cg_memory_t *m, const cg_memory_sighting_t *s, size_t n,
    cg_error_t *err)
{
    return cg_mem_write(m, s, NULL, n, err);
}


int
cg_memory_merge(cg_memory_t *m, const cg_memory_entry_t *e, size_t n,
    cg_error_t *err)
{
    return cg_mem_write(m, NULL, e, n, err);
}


/* Deletes the entry at key (its value in val) and its LRU key. */
static int
cg_mem_delete(cg_memory_t *m, MDB_txn *txn, MDB_val *key, MDB_val *val)
{
    int            rc;
    int64_t        last;
    MDB_val        k;
    unsigned char  lru[8 + CG_MEMORY_KEY_MAX];

    last = 0;

    if (val->mv_size >= 18 && key->mv_size < CG_MEMORY_KEY_MAX) {
        memcpy(&last, (unsigned char *) val->mv_data + 10, 8);
        cg_mem_lru_key(last, key->mv_data, key->mv_size, lru);

        k.mv_data = lru;
        k.mv_size = 8 + key->mv_size;

        rc = mdb_del(txn, m->lru, &k, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return rc;
        }
    }

    return mdb_del(txn, m->names, key, NULL);
}


/* Is k one of name's keys: prefix "name:" and a port after it? */
static int
cg_mem_key_of(const MDB_val *k, const char *prefix, size_t plen)
{
    size_t       i;
    const char  *p;

    if (k->mv_size <= plen || k->mv_size > plen + 5
        || memcmp(k->mv_data, prefix, plen) != 0)
    {
        return 0;
    }

    p = k->mv_data;

    for (i = plen; i < k->mv_size; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
    }

    return 1;
}


/* "name:" of a name as keyed, into prefix; its length, or 0. */
static size_t
cg_mem_prefix(const char *name, char *prefix, size_t size)
{
    char  *colon;

    if (cg_memory_key(name, 443, prefix, size) != 0) {
        return 0;
    }

    colon = strrchr(prefix, ':');
    colon[1] = '\0';

    return (size_t) (colon + 1 - prefix);
}


int
cg_memory_forget(cg_memory_t *m, const char *name, unsigned port,
    unsigned *removed, cg_error_t *err)
{
    int          rc;
    char         key[CG_MEMORY_KEY_MAX];
    size_t       plen;
    unsigned     n;
    MDB_txn     *txn;
    MDB_val      k, v;
    MDB_cursor  *cur;

    if (removed) {
        *removed = 0;
    }

    if (m == NULL || m->rdonly) {
        return cg_errorf(err, CG_ERR_ARG, NULL, 0,
                         "memory: not opened for writing");
    }

    plen = cg_mem_prefix(name, key, sizeof(key));
    if (plen == 0) {
        return cg_errorf(err, CG_ERR_ARG, NULL, 0, "memory: invalid name");
    }

    if (port) {
        if (cg_memory_key(name, port, key, sizeof(key)) != 0) {
            return cg_errorf(err, CG_ERR_ARG, NULL, 0,
                             "memory: invalid port");
        }
    }

    rc = cg_mem_txn(m, 0, &txn);
    if (rc != 0) {
        return cg_mem_error(m, err, rc, "forget");
    }

    rc = mdb_cursor_open(txn, m->names, &cur);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return cg_mem_error(m, err, rc, "forget");
    }

    n = 0;

    for ( ;; ) {
        k.mv_data = key;
        k.mv_size = strlen(key);

        rc = mdb_cursor_get(cur, &k, &v, port ? MDB_SET_KEY : MDB_SET_RANGE);
        if (rc != 0) {
            break;
        }

        if (!port && !cg_mem_key_of(&k, key, plen)) {
            /* the next key is not one of the name's: perhaps a longer
             * port before a shorter one in byte order; walk on */
            while ((rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) == 0
                   && k.mv_size > plen
                   && memcmp(k.mv_data, key, plen) == 0
                   && !cg_mem_key_of(&k, key, plen))
            {
                /* void */
            }

            if (rc != 0 || !cg_mem_key_of(&k, key, plen)) {
                break;
            }
        }

        rc = cg_mem_delete(m, txn, &k, &v);
        if (rc != 0) {
            break;
        }

        n++;

        if (port) {
            break;
        }
    }

    mdb_cursor_close(cur);

    if (rc != 0 && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return cg_mem_error(m, err, rc, "forget");
    }

    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        return cg_mem_error(m, err, rc, "forget");
    }

    if (removed) {
        *removed = n;
    }

    return CG_OK;
}


int
cg_memory_foreach(cg_memory_t *m, const char *name,
    int (*cb)(const cg_memory_entry_t *e, void *arg), void *arg)
{
    int                 rc, stop;
    char                prefix[CG_MEMORY_KEY_MAX];
    size_t              plen;
    MDB_txn            *txn;
    MDB_val             k, v;
    MDB_cursor         *cur;
    cg_memory_entry_t  *e;

    if (m == NULL || cb == NULL) {
        return CG_ERR_ARG;
    }

    plen = 0;

    if (name) {
        plen = cg_mem_prefix(name, prefix, sizeof(prefix));
        if (plen == 0) {
            return CG_ERR_ARG;
        }
    }

    e = malloc(sizeof(cg_memory_entry_t));
    if (e == NULL) {
        return CG_ERR_NOMEM;
    }

    rc = cg_mem_read_txn(m, &txn);
    if (rc != 0) {
        free(e);
        return CG_ERR_IO;
    }

    rc = mdb_cursor_open(txn, m->names, &cur);
    if (rc != 0) {
        mdb_txn_reset(txn);
        free(e);
        return CG_ERR_IO;
    }

    stop = 0;

    if (name) {
        k.mv_data = prefix;
        k.mv_size = plen;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);

    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }

    while (rc == 0) {
        if (name && (k.mv_size < plen
                     || memcmp(k.mv_data, prefix, plen) != 0))
        {
            break;
        }

        if ((name == NULL || cg_mem_key_of(&k, prefix, plen))
            && cg_mem_decode(v.mv_data, v.mv_size, e) == 0
            && cg_mem_split_key(k.mv_data, k.mv_size, e) == 0)
        {
            stop = cb(e, arg);
            if (stop) {
                break;
            }
        }

        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }

    mdb_cursor_close(cur);
    mdb_txn_reset(txn);
    free(e);

    if (stop) {
        return stop;
    }

    return (rc == 0 || rc == MDB_NOTFOUND) ? CG_OK : CG_ERR_IO;
}


int
cg_memory_stat(cg_memory_t *m, size_t *names, size_t *max_names)
{
    int       rc;
    MDB_txn  *txn;
    MDB_stat  st;

    if (m == NULL) {
        return CG_ERR_ARG;
    }

    rc = cg_mem_read_txn(m, &txn);
    if (rc != 0) {
        return CG_ERR_IO;
    }

    rc = mdb_stat(txn, m->names, &st);
    mdb_txn_reset(txn);

    if (rc != 0) {
        return CG_ERR_IO;
    }

    if (names) {
        *names = st.ms_entries;
    }

    if (max_names) {
        *max_names = m->max_names;
    }

    return CG_OK;
}
