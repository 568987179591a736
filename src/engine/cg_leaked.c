/*
 * The leaked_root list: roots (and other CA keys) whose private keys are
 * public, so that anyone can issue under them (Superfish, eDellRoot,
 * Sennheiser HeadSetup, ...).  Entries are SPKI SHA-256s, which match the
 * key wherever it appears on a chain, and PEM certificates, whose keys can
 * also check the signature of a certificate they issued when the server
 * leaves them out (interception software never sends its root).
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cg_facts.h"
#include "cg_policy.h"


#define CG_PEM_BEGIN    "-----BEGIN CERTIFICATE-----"
#define CG_PEM_END      "-----END CERTIFICATE-----"


static int cg_keyset_pem(cg_keyset_t *ks, const char *p, size_t len,
    const char *path, unsigned line, cg_error_t *err);


int
cg_keyset_load(cg_keyset_t *ks, const char *path, cg_error_t *err)
{
    int           rc;
    char         *data, *end, *pos, *eol, *sp, *stop, tok[160];
    size_t        len, n;
    unsigned      lineno, first;
    cg_digest_t   d;

    data = NULL;
    rc = cg_file_read(path, &data, &len, err);
    if (rc != CG_OK) {
        return rc;
    }

    end = data + len;
    pos = data;
    rc = CG_OK;

    for (lineno = 1; pos < end && rc == CG_OK; lineno++) {
        eol = memchr(pos, '\n', (size_t) (end - pos));
        eol = eol ? eol : end;
        n = (size_t) (eol - pos);

        while (n && (pos[n - 1] == '\r' || pos[n - 1] == ' '
                     || pos[n - 1] == '\t'))
        {
            n--;
        }

        while (n && (*pos == ' ' || *pos == '\t')) {
            pos++;
            n--;
        }

        if (n >= sizeof(CG_PEM_BEGIN) - 1
            && memcmp(pos, CG_PEM_BEGIN, sizeof(CG_PEM_BEGIN) - 1) == 0)
        {
            /* the block runs to its END line */
            first = lineno;
            stop = pos;

            for (;;) {
                stop = memchr(stop, '-', (size_t) (end - stop));

                if (stop == NULL || (size_t) (end - stop)
                                    < sizeof(CG_PEM_END) - 1)
                {
                    rc = cg_errorf(err, CG_ERR_SYNTAX, path, first,
                                   "PEM block without its END line");
                    break;
                }

                if (memcmp(stop, CG_PEM_END, sizeof(CG_PEM_END) - 1) == 0) {
                    stop += sizeof(CG_PEM_END) - 1;
                    break;
                }

                stop++;
            }

            if (rc != CG_OK) {
                break;
            }

            rc = cg_keyset_pem(ks, pos, (size_t) (stop - pos), path, first,
                               err);

            for (; pos < stop; pos++) {
                lineno += (*pos == '\n');
            }

            eol = memchr(pos, '\n', (size_t) (end - pos));
            pos = eol ? eol + 1 : end;
            continue;
        }

        if (n && pos[0] != '#') {
            sp = pos;
            while (sp < pos + n && *sp != ' ' && *sp != '\t') {
                sp++;
            }

            memset(&d, 0, sizeof(d));
            tok[0] = '\0';

            if ((size_t) (sp - pos) < sizeof(tok)) {
                memcpy(tok, pos, (size_t) (sp - pos));
                tok[sp - pos] = '\0';
            }

            if (tok[0] == '\0' || cg_digest_parse(&d, tok) != 0
                || d.len != 32)
            {
                rc = cg_errorf(err, CG_ERR_SYNTAX, path, lineno,
                               "expected an SPKI SHA-256 (64 hex digits) "
                               "or a PEM certificate");
                break;
            }

            if (cg_digestset_add(&ks->spki, &d) != CG_OK) {
                rc = cg_errorf(err, CG_ERR_NOMEM, path, lineno,
                               "out of memory");
                break;
            }
        }

        pos = eol < end ? eol + 1 : end;
    }

    free(data);

    if (rc == CG_OK) {
        cg_digestset_sort(&ks->spki);
    }

    return rc;
}


static int
cg_keyset_pem(cg_keyset_t *ks, const char *p, size_t len, const char *path,
    unsigned line, cg_error_t *err)
{
    BIO            *bio;
    X509           *x, **grown;
    cg_digest_t     d;

    ERR_set_mark();

    bio = BIO_new_mem_buf(p, (int) len);
    x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);

    ERR_pop_to_mark();

    if (x == NULL) {
        return cg_errorf(err, CG_ERR_SYNTAX, path, line,
                         "not a valid PEM certificate");
    }

    memset(&d, 0, sizeof(d));
    d.len = 32;

    if (cg_spki_sha256(x, d.md) != CG_OK) {
        X509_free(x);
        return cg_errorf(err, CG_ERR_SYNTAX, path, line,
                         "the certificate's key cannot be encoded");
    }

    grown = realloc(ks->roots, (ks->nroots + 1) * sizeof(X509 *));
    if (grown == NULL || cg_digestset_add(&ks->spki, &d) != CG_OK) {
        ks->roots = grown ? grown : ks->roots;
        X509_free(x);
        return cg_errorf(err, CG_ERR_NOMEM, path, line, "out of memory");
    }

    ks->roots = grown;
    ks->roots[ks->nroots++] = x;

    return CG_OK;
}


void
cg_keyset_free(cg_keyset_t *ks)
{
    size_t  i;

    for (i = 0; i < ks->nroots; i++) {
        X509_free(ks->roots[i]);
    }

    free(ks->roots);
    ks->roots = NULL;
    ks->nroots = 0;
    cg_digestset_free(&ks->spki);
}
