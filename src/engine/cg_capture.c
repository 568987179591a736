/*
 * Capture files (cg_capture.h): one sighting of a chain written into a
 * directory that many processes share.
 *
 * Writers take turns on an flock() of DIR/.lock for the read, update and
 * rename of a sidecar and for eviction, so that two workers seeing the same
 * chain both count; readers take no lock, since every file appears whole by
 * rename().  The lock is held for a few small writes and, when a chain is
 * new, one pass over the directory.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/file.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cg_capture.h"
#include "cg_internal.h"


#define CG_CAPTURE_PATH_MAX     4096
#define CG_CAPTURE_TMP          ".tmp-"
#define CG_CAPTURE_TMP_AGE      60          /* seconds before a stale one
                                               is removed */
#define CG_CAPTURE_MODE         0640


typedef struct {
    char             sha256[65];
    struct timespec  seen;                  /* the sidecar's mtime */
    uint64_t         size;
} cg_capture_entry_t;


static int cg_capture_path(char *buf, const char *dir, const char *sha,
    const char *ext);
static int cg_capture_put(const char *dir, const char *name,
    const char *data, size_t len, cg_error_t *err);
static int cg_capture_pem(X509 *leaf, STACK_OF(X509) *chain, BIO *bio);
static int cg_capture_hexname(const char *name, size_t len);
static int cg_capture_older(const void *a, const void *b);
static int cg_capture_evict(const char *dir, uint64_t max_size, time_t now,
    cg_error_t *err);


/* The certificates of a handshake in order: leaf, then the chain without
 * the leaf, as cg_facts reads them. */
#define cg_capture_each(leaf, chain, i, x)                                    \
    for (i = -1, x = leaf; x != NULL;                                         \
         x = (++i < sk_X509_num(chain)) ? sk_X509_value(chain, i) : NULL)     \
        if (i != 0 || (x != leaf && X509_cmp(x, leaf) != 0))


int
cg_capture_digest(X509 *leaf, STACK_OF(X509) *chain, char hex[65])
{
    int             i, n, rc;
    X509           *x;
    EVP_MD_CTX     *md;
    unsigned char  *der, digest[32];
    unsigned        dlen;

    if (leaf == NULL && chain != NULL && sk_X509_num(chain) > 0) {
        leaf = sk_X509_value(chain, 0);
    }

    if (leaf == NULL) {
        return CG_ERR_ARG;
    }

    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, cg_md_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return CG_ERR_NOMEM;
    }

    rc = CG_OK;

    cg_capture_each(leaf, chain, i, x) {
        der = NULL;
        n = i2d_X509(x, &der);

        if (n <= 0 || EVP_DigestUpdate(md, der, (size_t) n) != 1) {
            rc = CG_ERR_NOMEM;
        }

        OPENSSL_free(der);

        if (rc != CG_OK) {
            break;
        }
    }

    if (rc == CG_OK && EVP_DigestFinal_ex(md, digest, &dlen) != 1) {
        rc = CG_ERR_NOMEM;
    }

    EVP_MD_CTX_free(md);

    if (rc == CG_OK) {
        for (i = 0; i < 32; i++) {
            snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        }
    }

    return rc;
}


static int
cg_capture_path(char *buf, const char *dir, const char *sha,
    const char *ext)
{
    int  n;

    n = snprintf(buf, CG_CAPTURE_PATH_MAX, "%s/%s%s", dir, sha, ext);

    return (n < 0 || n >= CG_CAPTURE_PATH_MAX) ? -1 : 0;
}


/* dir/name holds data, or did not change: a temporary file and rename(),
 * so a reader sees the old file or the new one, never a part. */
static int
cg_capture_put(const char *dir, const char *name, const char *data,
    size_t len, cg_error_t *err)
{
    int      fd, e;
    char     tmp[CG_CAPTURE_PATH_MAX], path[CG_CAPTURE_PATH_MAX];
    size_t   done;
    ssize_t  n;

    if (snprintf(tmp, sizeof(tmp), "%s/" CG_CAPTURE_TMP "XXXXXX", dir)
        >= (int) sizeof(tmp)
        || snprintf(path, sizeof(path), "%s/%s", dir, name)
           >= (int) sizeof(path))
    {
        return cg_errorf(err, CG_ERR_IO, dir, 0, "%s: path too long", dir);
    }

    fd = mkstemp(tmp);
    if (fd == -1) {
        e = errno;
        return cg_errorf(err, CG_ERR_IO, dir, 0, "%s: cannot create a "
                         "temporary file: %s", dir, strerror(e));
    }

    (void) fchmod(fd, CG_CAPTURE_MODE);

    for (done = 0; done < len; done += (size_t) n) {
        n = write(fd, data + done, len - done);

        if (n == -1 && errno == EINTR) {
            n = 0;
            continue;
        }

        if (n <= 0) {
            e = n == 0 ? EIO : errno;
            close(fd);
            unlink(tmp);
            return cg_errorf(err, CG_ERR_IO, tmp, 0, "%s: write: %s", tmp,
                             strerror(e));
        }
    }

    if (close(fd) != 0) {
        e = errno;
        unlink(tmp);
        return cg_errorf(err, CG_ERR_IO, tmp, 0, "%s: close: %s", tmp,
                         strerror(e));
    }

    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return cg_errorf(err, CG_ERR_IO, path, 0, "%s: rename: %s", path,
                         strerror(e));
    }

    return CG_OK;
}


static int
cg_capture_pem(X509 *leaf, STACK_OF(X509) *chain, BIO *bio)
{
    int    i;
    X509  *x;

    cg_capture_each(leaf, chain, i, x) {
        if (PEM_write_bio_X509(bio, x) != 1) {
            return CG_ERR_NOMEM;
        }
    }

    return CG_OK;
}


int
cg_capture_write(const char *dir, uint64_t max_size, X509 *leaf,
    STACK_OF(X509) *chain, const cg_capture_record_t *seen,
    cg_capture_record_t *out, cg_error_t *err)
{
    int                   fd, rc, fresh, e;
    BIO                  *bio;
    long                  plen;
    char                 *pem, lock[CG_CAPTURE_PATH_MAX];
    char                  path[CG_CAPTURE_PATH_MAX], name[80], side[8192];
    char                  sha[65];
    size_t                n;
    time_t                now;
    struct stat           st;
    cg_capture_record_t   rec, old;

    if (dir == NULL || seen == NULL) {
        return cg_errorf(err, CG_ERR_ARG, NULL, 0, "no directory");
    }

    if (leaf == NULL && chain != NULL && sk_X509_num(chain) > 0) {
        leaf = sk_X509_value(chain, 0);
    }

    rc = cg_capture_digest(leaf, chain, sha);
    if (rc != CG_OK) {
        return cg_errorf(err, rc, NULL, 0, "no chain to capture");
    }

    now = seen->last_seen ? (time_t) seen->last_seen : time(NULL);

    rec = *seen;
    memcpy(rec.sha256, sha, sizeof(sha));
    rec.last_seen = now;

    if (snprintf(lock, sizeof(lock), "%s/.lock", dir) >= (int) sizeof(lock)
        || cg_capture_path(path, dir, sha, ".json") != 0)
    {
        return cg_errorf(err, CG_ERR_IO, dir, 0, "%s: path too long", dir);
    }

    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, CG_CAPTURE_MODE);
    if (fd == -1) {
        e = errno;
        return cg_errorf(err, CG_ERR_IO, lock, 0, "%s: %s", lock,
                         strerror(e));
    }

    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            e = errno;
            close(fd);
            return cg_errorf(err, CG_ERR_IO, lock, 0, "%s: flock: %s", lock,
                             strerror(e));
        }
    }

    /* the chain: written once, its name is its content */

    rc = CG_OK;
    fresh = 0;

    if (cg_capture_path(path, dir, sha, ".pem") == 0
        && stat(path, &st) != 0)
    {
        fresh = 1;

        bio = BIO_new(BIO_s_mem());

        if (bio == NULL || cg_capture_pem(leaf, chain, bio) != CG_OK) {
            rc = cg_errorf(err, CG_ERR_NOMEM, NULL, 0, "out of memory");

        } else {
            plen = BIO_get_mem_data(bio, &pem);
            snprintf(name, sizeof(name), "%s.pem", sha);
            rc = cg_capture_put(dir, name, pem, (size_t) plen, err);
        }

        BIO_free(bio);
    }

    /* the sidecar: what was seen last, since when, how often */

    if (rc == CG_OK) {
        (void) cg_capture_path(path, dir, sha, ".json");

        if (!fresh && cg_capture_read(path, &old, NULL) == CG_OK
            && strcmp(old.sha256, sha) == 0 && old.count > 0)
        {
            rec.first_seen = old.first_seen ? old.first_seen : now;
            rec.count = old.count + 1;

        } else {
            rec.first_seen = now;
            rec.count = 1;
        }

        n = cg_capture_format(&rec, side, sizeof(side));

        if (n >= sizeof(side)) {
            rc = cg_errorf(err, CG_ERR_ARG, NULL, 0, "sidecar too long");

        } else {
            snprintf(name, sizeof(name), "%s.json", sha);
            rc = cg_capture_put(dir, name, side, n, err);
        }
    }

    if (rc == CG_OK && fresh && max_size > 0) {
        rc = cg_capture_evict(dir, max_size, now, err);
    }

    (void) flock(fd, LOCK_UN);
    close(fd);

    if (rc == CG_OK && out) {
        *out = rec;
    }

    return rc;
}


/* "<64 hex>.pem" or "<64 hex>.json": 1 for .pem, 2 for .json. */
static int
cg_capture_hexname(const char *name, size_t len)
{
    size_t  i;

    if (len < 68) {
        return 0;
    }

    for (i = 0; i < 64; i++) {
        if (!((name[i] >= '0' && name[i] <= '9')
              || (name[i] >= 'a' && name[i] <= 'f')))
        {
            return 0;
        }
    }

    if (strcmp(name + 64, ".pem") == 0) {
        return 1;
    }

    if (strcmp(name + 64, ".json") == 0) {
        return 2;
    }

    return 0;
}


static int
cg_capture_older(const void *a, const void *b)
{
    const cg_capture_entry_t  *x = a, *y = b;

    if (x->seen.tv_sec != y->seen.tv_sec) {
        return x->seen.tv_sec < y->seen.tv_sec ? -1 : 1;
    }

    if (x->seen.tv_nsec != y->seen.tv_nsec) {
        return x->seen.tv_nsec < y->seen.tv_nsec ? -1 : 1;
    }

    return strcmp(x->sha256, y->sha256);
}


/*
 * One pass over the directory, under the lock: the capture files and
 * their sizes, stale temporary files, sidecars without a chain; then the
 * entries seen least recently go until the rest fits.  A sidecar is
 * rewritten at each sighting, so its mtime is the last sighting.
 */
static int
cg_capture_evict(const char *dir, uint64_t max_size, time_t now,
    cg_error_t *err)
{
    int                  e, kind;
    DIR                 *d;
    char                 path[CG_CAPTURE_PATH_MAX], sha[65];
    size_t               i, n, size, len;
    uint64_t             total;
    struct stat          st, js;
    struct dirent       *de;
    cg_capture_entry_t  *all, *na;

    d = opendir(dir);
    if (d == NULL) {
        e = errno;
        return cg_errorf(err, CG_ERR_IO, dir, 0, "%s: %s", dir, strerror(e));
    }

    all = NULL;
    n = 0;
    size = 0;
    total = 0;

    while ((de = readdir(d)) != NULL) {
        len = strlen(de->d_name);

        if (strncmp(de->d_name, CG_CAPTURE_TMP, sizeof(CG_CAPTURE_TMP) - 1)
            == 0)
        {
            if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name)
                < (int) sizeof(path)
                && stat(path, &st) == 0
                && st.st_mtime < now - CG_CAPTURE_TMP_AGE)
            {
                (void) unlink(path);
            }

            continue;
        }

        kind = cg_capture_hexname(de->d_name, len);
        if (kind == 0) {
            continue;
        }

        memcpy(sha, de->d_name, 64);
        sha[64] = '\0';

        if (kind == 2) {
            /* counted with its chain; alone, it describes nothing */
            if (cg_capture_path(path, dir, sha, ".pem") == 0
                && stat(path, &st) != 0 && errno == ENOENT
                && cg_capture_path(path, dir, sha, ".json") == 0)
            {
                (void) unlink(path);
            }

            continue;
        }

        if (cg_capture_path(path, dir, sha, ".pem") != 0
            || stat(path, &st) != 0)
        {
            continue;
        }

        if (n == size) {
            size = size ? size * 2 : 256;
            na = realloc(all, size * sizeof(cg_capture_entry_t));
            if (na == NULL) {
                free(all);
                closedir(d);
                return cg_errorf(err, CG_ERR_NOMEM, NULL, 0,
                                 "out of memory");
            }
            all = na;
        }

        memcpy(all[n].sha256, sha, sizeof(sha));
        all[n].size = (uint64_t) st.st_size;
        all[n].seen = st.st_mtim;

        if (cg_capture_path(path, dir, sha, ".json") == 0
            && stat(path, &js) == 0)
        {
            all[n].size += (uint64_t) js.st_size;
            all[n].seen = js.st_mtim;
        }

        total += all[n].size;
        n++;
    }

    closedir(d);

    if (total > max_size) {
        qsort(all, n, sizeof(cg_capture_entry_t), cg_capture_older);

        for (i = 0; i < n && total > max_size; i++) {
            if (cg_capture_path(path, dir, all[i].sha256, ".json") == 0) {
                (void) unlink(path);
            }

            if (cg_capture_path(path, dir, all[i].sha256, ".pem") == 0) {
                (void) unlink(path);
            }

            total -= all[i].size;
        }
    }

    free(all);

    return CG_OK;
}
