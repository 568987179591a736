/*
 * Revocation: CRLs the configuration names (cg_crls_load) and the OCSP
 * response a server staples, both checked against the path that verified,
 * once, when the first revocation signal asks.
 *
 * The CRLs are checked by a verification of their own, after the one
 * cg_facts.c runs, with the verified path as its untrusted certificates and
 * X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL: the path's judgement
 * stays what it was, and what this pass finds is only revocation.  A
 * certificate whose issuer has no CRL among them is not checked (OpenSSL's
 * UNABLE_TO_GET_CRL is dropped): an estate names the CRLs of the CAs it
 * cares about, not of every CA on the Internet.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cg_facts.h"


/* A CRL file larger than this is refused: the largest public CRLs are a
 * few tens of MB, and each is held in memory for the cycle. */
#define CG_CRL_FILE_MAX     (256 * 1024 * 1024)

/* Clock skew allowed on a staple's thisUpdate and nextUpdate: the five
 * minutes OpenSSL's own tools allow. */
#define CG_OCSP_SKEW        300


struct cg_crls_s {
    STACK_OF(X509_CRL)  *sk;
};


static int cg_crls_parse(cg_crls_t *set, const unsigned char *data,
    size_t len, const char *path, cg_error_t *err);
static void cg_revoke_crl(cg_facts_t *f);
static int cg_revoke_crl_cb(int ok, X509_STORE_CTX *ctx);
static int cg_revoke_reason(const cg_crls_t *set, X509 *x);
static void cg_revoke_crlnumber(cg_facts_t *f);
static const char *cg_revoke_reason_text(int reason);


int
cg_crls_load(cg_crls_t **crls, const char *path, cg_error_t *err)
{
    int             rc, fresh;
    long            size;
    FILE           *fp;
    cg_crls_t      *set;
    unsigned char  *data;

    if (crls == NULL || path == NULL) {
        return cg_errorf(err, CG_ERR_ARG, path, 0, "no CRL set or file");
    }

    fp = fopen(path, "rb");
    if (fp == NULL) {
        return cg_errorf(err, CG_ERR_IO, path, 0, "cannot open: %s",
                         strerror(errno));
    }

    data = NULL;
    size = -1;

    if (fseek(fp, 0, SEEK_END) == 0) {
        size = ftell(fp);
    }

    if (size < 0 || size > CG_CRL_FILE_MAX || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return cg_errorf(err, CG_ERR_IO, path, 0,
                         size > CG_CRL_FILE_MAX ? "larger than 256 MB"
                                                : "cannot read: %s",
                         strerror(errno));
    }

    data = malloc(size ? (size_t) size : 1);
    if (data == NULL) {
        fclose(fp);
        return cg_errorf(err, CG_ERR_NOMEM, path, 0, "out of memory");
    }

    if (size && fread(data, 1, (size_t) size, fp) != (size_t) size) {
        free(data);
        fclose(fp);
        return cg_errorf(err, CG_ERR_IO, path, 0, "cannot read: %s",
                         strerror(errno));
    }

    fclose(fp);

    set = *crls;
    fresh = (set == NULL);

    if (fresh) {
        set = calloc(1, sizeof(cg_crls_t));
        if (set == NULL || (set->sk = sk_X509_CRL_new_null()) == NULL) {
            free(set);
            free(data);
            return cg_errorf(err, CG_ERR_NOMEM, path, 0, "out of memory");
        }
    }

    ERR_set_mark();
    rc = cg_crls_parse(set, data, (size_t) size, path, err);
    ERR_pop_to_mark();

    free(data);

    if (rc != CG_OK) {
        if (fresh) {
            cg_crls_free(set);
        }

        return rc;
    }

    *crls = set;

    return CG_OK;
}


/*
 * Every CRL of the file, PEM blocks ("X509 CRL"; others are skipped) or
 * DER concatenated.  Nothing is added unless the whole file reads, so a
 * set is never left half-extended by a bad file.
 */

static int
cg_crls_parse(cg_crls_t *set, const unsigned char *data, size_t len,
    const char *path, cg_error_t *err)
{
    int                   n, i, pem;
    long                  dlen;
    char                 *name, *header;
    size_t                off;
    unsigned char        *der;
    const unsigned char  *p;
    BIO                  *bio;
    X509_CRL             *crl;
    unsigned long         e;
    STACK_OF(X509_CRL)   *got;

    if (len == 0 || len > INT_MAX) {
        return cg_errorf(err, CG_ERR_INPUT, path, 0, "no CRL in the file");
    }

    got = sk_X509_CRL_new_null();
    if (got == NULL) {
        return cg_errorf(err, CG_ERR_NOMEM, path, 0, "out of memory");
    }

    /* DER is a SEQUENCE in long length form, which no PEM text starts
     * with */
    pem = !(len > 1 && data[0] == 0x30 && data[1] >= 0x81 && data[1] <= 0x84);
    bio = NULL;
    off = 0;

    for (n = 1; /* void */; n++) {
        crl = NULL;

        if (pem) {
            if (bio == NULL) {
                bio = BIO_new_mem_buf(data, (int) len);
                if (bio == NULL) {
                    goto nomem;
                }
            }

            name = NULL;
            header = NULL;
            der = NULL;

            ERR_set_mark();

            if (PEM_read_bio(bio, &name, &header, &der, &dlen) != 1) {
                e = ERR_peek_last_error();
                ERR_pop_to_mark();

                if (ERR_GET_LIB(e) == ERR_LIB_PEM
                    && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
                {
                    break;      /* no more blocks */
                }

                BIO_free(bio);
                sk_X509_CRL_pop_free(got, X509_CRL_free);
                return cg_errorf(err, CG_ERR_INPUT, path, 0,
                                 "PEM block %d is malformed", n);
            }

            ERR_pop_to_mark();

            if (strcmp(name, PEM_STRING_X509_CRL) == 0) {
                p = der;
                crl = d2i_X509_CRL(NULL, &p, dlen);

                if (crl && p != der + dlen) {
                    X509_CRL_free(crl);
                    crl = NULL;
                }

                if (crl == NULL) {
                    OPENSSL_free(name);
                    OPENSSL_free(header);
                    OPENSSL_free(der);
                    BIO_free(bio);
                    sk_X509_CRL_pop_free(got, X509_CRL_free);
                    return cg_errorf(err, CG_ERR_INPUT, path, 0,
                                     "PEM block %d is not a valid CRL", n);
                }
            }

            OPENSSL_free(name);
            OPENSSL_free(header);
            OPENSSL_free(der);

            if (crl == NULL) {
                continue;
            }

        } else {
            if (off == len) {
                break;
            }

            p = data + off;
            crl = d2i_X509_CRL(NULL, &p, (long) (len - off));

            if (crl == NULL) {
                sk_X509_CRL_pop_free(got, X509_CRL_free);
                return cg_errorf(err, CG_ERR_INPUT, path, 0,
                                 "not a PEM or DER CRL: CRL %d at byte %zu "
                                 "is malformed", n, off);
            }

            off = (size_t) (p - data);
        }

        if (!sk_X509_CRL_push(got, crl)) {
            X509_CRL_free(crl);
            goto nomem;
        }
    }

    BIO_free(bio);

    if (sk_X509_CRL_num(got) == 0) {
        sk_X509_CRL_free(got);
        return cg_errorf(err, CG_ERR_INPUT, path, 0,
                         "no X509 CRL block in the file");
    }

    for (i = 0; i < sk_X509_CRL_num(got); i++) {
        if (!sk_X509_CRL_push(set->sk, sk_X509_CRL_value(got, i))) {
            /* the ones pushed already belong to the set */
            while (i < sk_X509_CRL_num(got)) {
                X509_CRL_free(sk_X509_CRL_value(got, i++));
            }

            sk_X509_CRL_free(got);
            return cg_errorf(err, CG_ERR_NOMEM, path, 0, "out of memory");
        }
    }

    sk_X509_CRL_free(got);

    return CG_OK;

nomem:

    BIO_free(bio);
    sk_X509_CRL_pop_free(got, X509_CRL_free);

    return cg_errorf(err, CG_ERR_NOMEM, path, 0, "out of memory");
}


unsigned
cg_crls_count(const cg_crls_t *crls)
{
    return crls ? (unsigned) sk_X509_CRL_num(crls->sk) : 0;
}


void
cg_crls_free(cg_crls_t *crls)
{
    if (crls == NULL) {
        return;
    }

    sk_X509_CRL_pop_free(crls->sk, X509_CRL_free);
    free(crls);
}


/*
 * Only a verified path is checked: revocation of an untrusted chain says
 * nothing untrusted_chain does not, and a CRL or staple could not be tied
 * to a CA that is not established.
 */

void
cg_facts_revocation(cg_facts_t *f)
{
    cg_ocsp_status_t  st;

    if (f->rev_done) {
        return;
    }

    f->rev_done = 1;

    if (!f->trusted || !f->path_anchor || f->npath < 2) {
        return;
    }

    ERR_set_mark();

    if (f->in->crls && cg_crls_count(f->in->crls)) {
        cg_revoke_crl(f);
        cg_revoke_crlnumber(f);
    }

    if (f->in->ocsp && f->in->ocsp_len) {
        cg_ocsp_check(f->in->ocsp, f->in->ocsp_len, f->in->leaf,
                      f->path[1]->x, f->now, &st);

        f->ocsp_problem = st.problem;

        if (st.status == V_OCSP_CERTSTATUS_REVOKED && st.verified
            && f->rev_source == 0)
        {
            f->rev_source = CG_REV_OCSP;
            f->rev_depth = 0;
            f->rev_reason = st.reason;
        }
    }

    ERR_pop_to_mark();
}


static void
cg_revoke_crl(cg_facts_t *f)
{
    unsigned             i;
    X509_STORE_CTX      *ctx;
    STACK_OF(X509)      *untrusted;
    X509_VERIFY_PARAM   *param;

    ctx = X509_STORE_CTX_new();
    untrusted = sk_X509_new_reserve(NULL, (int) f->npath);

    if (ctx == NULL || untrusted == NULL) {
        goto failed;
    }

    for (i = 1; i < f->npath; i++) {
        (void) sk_X509_push(untrusted, f->path[i]->x);
    }

    if (X509_STORE_CTX_init(ctx, f->in->trust->store, f->in->leaf,
                            untrusted)
        != 1)
    {
        goto failed;
    }

    (void) X509_STORE_CTX_set_default(ctx, "ssl_server");

    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, (time_t) f->now);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN
                                       | X509_V_FLAG_CRL_CHECK
                                       | X509_V_FLAG_CRL_CHECK_ALL);

    X509_STORE_CTX_set0_crls(ctx, f->in->crls->sk);
    X509_STORE_CTX_set_verify_cb(ctx, cg_revoke_crl_cb);
    (void) X509_STORE_CTX_set_app_data(ctx, f);

    (void) X509_verify_cert(ctx);

    goto done;

failed:

    /* CRLs were named but could not be checked: not silently "good" */
    cg_finding_add(&f->crl_bad, X509_V_ERR_OUT_OF_MEM, 0);

done:

    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
}


/* What the CRL pass finds beyond the first verification: revocation, and
 * a CRL of a path's CA that cannot be used. */

static int
cg_revoke_crl_cb(int ok, X509_STORE_CTX *ctx)
{
    int          code, depth;
    cg_facts_t  *f;

    if (ok) {
        return 1;
    }

    f = X509_STORE_CTX_get_app_data(ctx);
    if (f == NULL) {
        return 1;
    }

    code = X509_STORE_CTX_get_error(ctx);
    depth = X509_STORE_CTX_get_error_depth(ctx);

    switch (code) {

    case X509_V_ERR_CERT_REVOKED:
        if (f->rev_source == 0 || depth < f->rev_depth) {
            f->rev_source = CG_REV_CRL;
            f->rev_depth = depth;
            f->rev_reason = cg_revoke_reason(f->in->crls,
                                X509_STORE_CTX_get_current_cert(ctx));
        }
        break;

    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
    case X509_V_ERR_DIFFERENT_CRL_SCOPE:
    case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
        cg_finding_add(&f->crl_bad, code, depth);
        break;

    default:
        /* UNABLE_TO_GET_CRL (no CRL of that issuer: not checked) and the
         * path's own errors, judged by the first verification */
        break;
    }

    return 1;
}


/* The reason code of x's entry in a CRL of its issuer's name, -1: none
 * given (or the entry not found again). */

static int
cg_revoke_reason(const cg_crls_t *set, X509 *x)
{
    int            i, crit, reason;
    X509_CRL      *crl;
    X509_REVOKED  *rev;
    ASN1_ENUMERATED *e;

    if (x == NULL) {
        return -1;
    }

    for (i = 0; i < sk_X509_CRL_num(set->sk); i++) {
        crl = sk_X509_CRL_value(set->sk, i);
        rev = NULL;

        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(x))
            != 0
            || X509_CRL_get0_by_cert(crl, &rev, x) != 1 || rev == NULL)
        {
            continue;
        }

        e = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, NULL);
        if (e == NULL) {
            return -1;
        }

        reason = (int) ASN1_ENUMERATED_get(e);
        ASN1_ENUMERATED_free(e);

        return reason;
    }

    return -1;
}


/*
 * RFC 5280 5.2.3: a CRL MUST carry a CRLNumber; OpenSSL uses one without.
 * A CRL of a path's CA (its name, and its signature verifies with that
 * CA's key) that has none is not used as a sound CRL either.
 */

static void
cg_revoke_crlnumber(cg_facts_t *f)
{
    int        i;
    unsigned   d;
    X509      *issuer;
    X509_CRL  *crl;
    EVP_PKEY  *key;

    for (d = 0; d + 1 < f->npath; d++) {
        issuer = f->path[d + 1]->x;
        key = X509_get0_pubkey(issuer);

        if (key == NULL) {
            continue;
        }

        for (i = 0; i < sk_X509_CRL_num(f->in->crls->sk); i++) {
            crl = sk_X509_CRL_value(f->in->crls->sk, i);

            if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
                              X509_get_subject_name(issuer))
                == 0
                && X509_CRL_get_ext_by_NID(crl, NID_crl_number, -1) < 0
                && X509_CRL_verify(crl, key) == 1)
            {
                cg_finding_add(&f->crl_bad, CG_REV_NO_CRLNUMBER, (int) d);
            }
        }
    }
}


/*
 * A stapled response for leaf, issued by issuer (the verified path's):
 * signed by the issuer itself or by a responder certificate the issuer
 * issued for OCSP signing (OCSP_basic_verify against a store that holds
 * the issuer alone, at now); the leaf's status; thisUpdate and nextUpdate
 * around now.  The store is the issuer alone so that no other anchor can
 * vouch for a responder: only the leaf's CA speaks for the leaf.
 */

void
cg_ocsp_check(const unsigned char *der, size_t len, X509 *leaf,
    X509 *issuer, int64_t now, cg_ocsp_status_t *st)
{
    int                    status, reason, i;
    const unsigned char   *p;
    const EVP_MD          *md;
    OCSP_RESPONSE         *resp;
    OCSP_BASICRESP        *bs;
    OCSP_CERTID           *id;
    X509_STORE            *store;
    STACK_OF(X509)        *certs;
    ASN1_GENERALIZEDTIME  *rev, *thisupd, *nextupd;

    memset(st, 0, sizeof(cg_ocsp_status_t));
    st->status = -1;
    st->reason = -1;

    resp = NULL;
    bs = NULL;
    store = NULL;
    certs = NULL;

    ERR_set_mark();

    if (der == NULL || len == 0 || len > LONG_MAX || leaf == NULL
        || issuer == NULL)
    {
        st->problem = "empty response";
        goto done;
    }

    p = der;
    resp = d2i_OCSP_RESPONSE(NULL, &p, (long) len);

    if (resp == NULL || p != der + len) {
        st->problem = "not a DER OCSP response";
        goto done;
    }

    if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        st->problem = "responder did not answer successful";
        goto done;
    }

    bs = OCSP_response_get1_basic(resp);
    if (bs == NULL) {
        st->problem = "no basic response";
        goto done;
    }

    store = X509_STORE_new();
    certs = sk_X509_new_null();

    if (store == NULL || certs == NULL || X509_STORE_add_cert(store, issuer)
        != 1 || !sk_X509_push(certs, issuer))
    {
        st->problem = "out of memory";
        goto done;
    }

    X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(store), (time_t) now);

    if (OCSP_basic_verify(bs, certs, store,
                          OCSP_NOEXPLICIT | OCSP_PARTIAL_CHAIN)
        <= 0)
    {
        st->problem = "not signed by the leaf's CA or its responder";
        goto done;
    }

    st->verified = 1;

    /* the CertID's hash is the responder's choice: SHA-1 (RFC 6960's
     * usual) or SHA-256 */

    status = -1;
    rev = thisupd = nextupd = NULL;

    for (i = 0; i < 2 && status < 0; i++) {
        md = i == 0 ? cg_md_sha1() : cg_md_sha256();
        id = OCSP_cert_to_id(md, leaf, issuer);

        if (id == NULL) {
            continue;
        }

        if (OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd,
                                  &nextupd)
            != 1)
        {
            status = -1;
        }

        OCSP_CERTID_free(id);
    }

    if (status < 0) {
        st->verified = 0;
        st->problem = "no status for the leaf";
        goto done;
    }

    st->status = status;
    st->reason = status == V_OCSP_CERTSTATUS_REVOKED ? reason : -1;

    /* OCSP_check_validity() reads the clock; the evaluation has its own
     * time (the CLI's --at) */

    if (thisupd == NULL
        || ASN1_TIME_cmp_time_t(thisupd, (time_t) (now + CG_OCSP_SKEW)) > 0)
    {
        st->problem = "thisUpdate is in the future";

    } else if (nextupd
               && ASN1_TIME_cmp_time_t(nextupd, (time_t) (now - CG_OCSP_SKEW))
                  < 0)
    {
        st->problem = "stale: nextUpdate has passed";

    } else if (status == V_OCSP_CERTSTATUS_UNKNOWN) {
        st->problem = "the responder does not know the leaf";
    }

done:

    sk_X509_free(certs);
    X509_STORE_free(store);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);

    ERR_pop_to_mark();
}


static const char *
cg_revoke_reason_text(int reason)
{
    if (reason < 0) {
        return "no reason given";
    }

    return OCSP_crl_reason_str(reason);
}


int
cg_check_revoked(cg_facts_t *f, unsigned index, char *detail, size_t size,
    int *weight)
{
    cg_facts_revocation(f);

    if (f->rev_source == 0) {
        return 0;
    }

    if (f->rev_source == CG_REV_OCSP) {
        cg_detailf(detail, size, "ocsp: %s",
                   cg_revoke_reason_text(f->rev_reason));

    } else {
        cg_detailf(detail, size, "crl: depth %d: %s", f->rev_depth,
                   cg_revoke_reason_text(f->rev_reason));
    }

    return 1;
}


int
cg_check_crl_invalid(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    const char  *what;

    cg_facts_revocation(f);

    if (f->crl_bad.n == 0) {
        return 0;
    }

    what = f->crl_bad.code == CG_REV_NO_CRLNUMBER
           ? "CRL without CRLNumber"
           : X509_verify_cert_error_string(f->crl_bad.code);

    if (f->crl_bad.n > 1) {
        cg_detailf(detail, size, "depth %d: %s (+%u more)", f->crl_bad.depth,
                   what, f->crl_bad.n - 1);

    } else {
        cg_detailf(detail, size, "depth %d: %s", f->crl_bad.depth, what);
    }

    return 1;
}


int
cg_check_ocsp_invalid(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    cg_facts_revocation(f);

    if (f->ocsp_problem == NULL) {
        return 0;
    }

    cg_detailf(detail, size, "stapled OCSP: %s", f->ocsp_problem);

    return 1;
}
