/*
 * Embedded SCTs against the policy's CT log list.  The list is OpenSSL's
 * CT log file, loaded once with CTLOG_STORE_load_file(); the leaf's SCTs
 * are checked with OpenSSL's CT API (SCT_validate) against the leaf, its
 * issuer on the verified path and the evaluation time, once per
 * evaluation and only when a policy names a list and invalid_sct or
 * unverified_sct asks: without a list nothing here runs, and no_sct stays
 * a presence check.
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/conf.h>
#include <openssl/ct.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cg_facts.h"
#include "cg_policy.h"


/* At most this many SCTs of one leaf are verified (real leaves carry two
 * to five): a hostile list of hundreds must not cost hundreds of
 * signature checks. */
#define CG_SCT_MAX              16

/* OpenSSL's own allowance (SCT_CLOCK_DRIFT_TOLERANCE) for a log's clock
 * ahead of ours. */
#define CG_SCT_DRIFT            300

/* The date of no_sct (cg_signals.c): CT required by Chrome from
 * 2018-05-01T00:00:00Z. */
#define CG_SCT_REQUIRED_FROM    1525132800


static int cg_ctlog_check(const char *path, const char *data, size_t len,
    cg_error_t *err);
static int cg_ctlog_check_log(const char *path, const char *data,
    size_t len, CONF *conf, const char *name, unsigned names_line,
    cg_error_t *err);
static unsigned cg_ctlog_line(const char *data, size_t len,
    const char *section, const char *key);
static const char *cg_ctlog_reason(void);
static const cg_sct_facts_t *cg_facts_sct(cg_facts_t *f);
static void cg_sct_one(cg_sct_facts_t *sf, SCT *sct, CT_POLICY_EVAL_CTX *ctx,
    const CTLOG_STORE *store, uint64_t ms);


/* ---- the log list ------------------------------------------------------ */


int
cg_ctlog_load(CTLOG_STORE **store, const char *path, cg_error_t *err)
{
    int           rc;
    char         *data;
    size_t        len;
    CTLOG_STORE  *s;

    *store = NULL;

    rc = cg_file_read(path, &data, &len, err);
    if (rc != CG_OK) {
        return rc;
    }

    rc = cg_ctlog_check(path, data, len, err);
    free(data);

    if (rc != CG_OK) {
        return rc;
    }

    s = CTLOG_STORE_new();
    if (s == NULL) {
        return cg_errorf(err, CG_ERR_NOMEM, path, 0, "out of memory");
    }

    /* what was checked above is what OpenSSL reads now */
    if (CTLOG_STORE_load_file(s, path) != 1) {
        CTLOG_STORE_free(s);
        return cg_errorf(err, CG_ERR_SYNTAX, path, 0,
                         "OpenSSL cannot load it as a CT log list: %s",
                         cg_ctlog_reason());
    }

    *store = s;

    return CG_OK;
}


void
cg_ctlog_free(CTLOG_STORE *store)
{
    CTLOG_STORE_free(store);
}


/*
 * What CTLOG_STORE_load_file() would refuse, found first with the line at
 * fault: OpenSSL says only that the file is invalid.  Its rules: a CONF
 * file, "enabled_logs" in the default section naming sections, each with
 * "description" and "key" (base64 DER SubjectPublicKeyInfo).
 */

static int
cg_ctlog_check(const char *path, const char *data, size_t len,
    cg_error_t *err)
{
    int          rc;
    long         eline;
    char        *names, *name, *p, *end;
    BIO         *bio;
    CONF        *conf;
    size_t       n;
    unsigned     line;
    const char  *enabled;

    if (len > INT_MAX) {
        return cg_errorf(err, CG_ERR_SYNTAX, path, 0, "file too large");
    }

    bio = BIO_new_mem_buf(data, (int) len);
    conf = NCONF_new(NULL);

    if (bio == NULL || conf == NULL) {
        BIO_free(bio);
        NCONF_free(conf);
        return cg_errorf(err, CG_ERR_NOMEM, path, 0, "out of memory");
    }

    eline = 0;
    names = NULL;

    if (NCONF_load_bio(conf, bio, &eline) <= 0) {
        rc = cg_errorf(err, CG_ERR_SYNTAX, path,
                       eline > 0 ? (unsigned) eline : 1,
                       "invalid CT log list: %s, expected OpenSSL's CONF "
                       "syntax (name = value, [section])",
                       cg_ctlog_reason());
        goto done;
    }

    enabled = NCONF_get_string(conf, NULL, "enabled_logs");
    ERR_clear_error();

    line = cg_ctlog_line(data, len, NULL, "enabled_logs");

    if (enabled == NULL) {
        rc = cg_errorf(err, CG_ERR_SYNTAX, path, 0,
                       "no \"enabled_logs\", expected \"enabled_logs = "
                       "NAME,...\" before the first section");
        goto done;
    }

    names = strdup(enabled);
    if (names == NULL) {
        rc = cg_errorf(err, CG_ERR_NOMEM, path, line, "out of memory");
        goto done;
    }

    rc = CG_OK;
    n = 0;

    for (p = names; p != NULL && rc == CG_OK; p = end) {
        end = strchr(p, ',');
        if (end) {
            *end++ = '\0';
        }

        while (*p == ' ' || *p == '\t') {
            p++;
        }

        name = p;
        p += strlen(p);
        while (p > name && (p[-1] == ' ' || p[-1] == '\t')) {
            *--p = '\0';
        }

        if (*name == '\0') {
            continue;
        }

        rc = cg_ctlog_check_log(path, data, len, conf, name, line, err);
        n++;
    }

    if (rc == CG_OK && n == 0) {
        rc = cg_errorf(err, CG_ERR_SYNTAX, path, line,
                       "\"enabled_logs\" names no log, expected at least "
                       "one section name");
    }

done:

    free(names);
    NCONF_free(conf);
    BIO_free(bio);
    ERR_clear_error();

    return rc;
}


static int
cg_ctlog_check_log(const char *path, const char *data, size_t len,
    CONF *conf, const char *name, unsigned names_line, cg_error_t *err)
{
    int          ok;
    CTLOG       *log;
    unsigned     line;
    const char  *desc, *key;

    line = cg_ctlog_line(data, len, name, NULL);

    if (NCONF_get_section(conf, name) == NULL) {
        return cg_errorf(err, CG_ERR_SYNTAX, path, names_line,
                         "\"enabled_logs\" names \"%.64s\", expected a "
                         "[%.64s] section", name, name);
    }

    desc = NCONF_get_string(conf, name, "description");
    key = NCONF_get_string(conf, name, "key");
    ERR_clear_error();

    if (desc == NULL || key == NULL) {
        return cg_errorf(err, CG_ERR_SYNTAX, path, line,
                         "log [%.64s] has no \"%s\", expected "
                         "\"description\" and \"key\"", name,
                         desc == NULL ? "description" : "key");
    }

    log = NULL;
    ok = CTLOG_new_from_base64(&log, key, desc) == 1;
    CTLOG_free(log);

    if (!ok) {
        line = cg_ctlog_line(data, len, name, "key");
        return cg_errorf(err, CG_ERR_SYNTAX, path, line,
                         "log [%.64s]: invalid key, expected the base64 "
                         "of a DER SubjectPublicKeyInfo", name);
    }

    return CG_OK;
}


/*
 * The line of "[section]" (key NULL) or of "key =" inside it (section
 * NULL: before the first section or in [default]), for errors; 0 when not
 * found, and the statement's line is named instead.
 */

static unsigned
cg_ctlog_line(const char *data, size_t len, const char *section,
    const char *key)
{
    int          in;
    size_t       n, slen, klen;
    unsigned     line;
    const char  *p, *end, *e, *s;

    in = section == NULL;
    slen = section ? strlen(section) : 0;
    klen = key ? strlen(key) : 0;
    end = data + len;

    for (p = data, line = 1; p < end; p = e + 1, line++) {
        e = memchr(p, '\n', (size_t) (end - p));
        if (e == NULL) {
            e = end;
        }

        for (s = p; s < e && (*s == ' ' || *s == '\t'); s++) {
            /* void */
        }

        n = (size_t) (e - s);

        if (n > 0 && *s == '[') {
            for (s++, n--; n > 0 && (*s == ' ' || *s == '\t'); s++, n--) {
                /* void */
            }

            if (section == NULL) {
                in = n >= 8 && strncmp(s, "default", 7) == 0
                     && (s[7] == ']' || s[7] == ' ' || s[7] == '\t');

            } else {
                in = n > slen && strncmp(s, section, slen) == 0
                     && (s[slen] == ']' || s[slen] == ' '
                         || s[slen] == '\t');

                if (in && key == NULL) {
                    return line;
                }
            }

            continue;
        }

        if (in && key && n > klen && strncmp(s, key, klen) == 0) {
            for (s += klen; s < e && (*s == ' ' || *s == '\t'); s++) {
                /* void */
            }

            if (s < e && *s == '=') {
                return line;
            }
        }
    }

    return 0;
}


static const char *
cg_ctlog_reason(void)
{
    const char     *s;
    unsigned long   e;

    e = ERR_peek_last_error();
    s = e ? ERR_reason_error_string(e) : NULL;

    return s ? s : "unknown error";
}


/* ---- the leaf's SCTs --------------------------------------------------- */


static const cg_sct_facts_t *
cg_facts_sct(cg_facts_t *f)
{
    int                  crit, i, n;
    X509                *leaf, *issuer;
    uint64_t             ms;
    cg_sct_facts_t      *sf;
    STACK_OF(SCT)       *scts;
    CT_POLICY_EVAL_CTX  *ctx;

    sf = &f->sct;

    if (sf->done) {
        return sf;
    }

    sf->done = 1;
    leaf = f->in->leaf;

    crit = -1;
    scts = X509_get_ext_d2i(leaf, NID_ct_precert_scts, &crit, NULL);

    if (scts == NULL) {
        /* present (has_sct) but not one readable list: also two of them
         * (crit -2) */
        sf->unreadable = 1;
        return sf;
    }

    /* The issuer whose key the precertificate's SCTs sign over: the one
     * the path verified, not whatever the server sent second. */
    issuer = NULL;
    if (f->npath >= 2) {
        issuer = f->path[1]->x;

    } else if (f->certs[0].self_signed) {
        issuer = leaf;
    }

    ctx = CT_POLICY_EVAL_CTX_new();

    if (ctx == NULL
        || CT_POLICY_EVAL_CTX_set1_cert(ctx, leaf) != 1
        || (issuer && CT_POLICY_EVAL_CTX_set1_issuer(ctx, issuer) != 1))
    {
        CT_POLICY_EVAL_CTX_free(ctx);
        SCT_LIST_free(scts);
        sf->failed = 1;
        return sf;
    }

    ms = (uint64_t) (f->now > 0 ? f->now : 0) + CG_SCT_DRIFT;
    ms *= 1000;

    CT_POLICY_EVAL_CTX_set_shared_CTLOG_STORE(ctx, f->policy->ct_logs);
    CT_POLICY_EVAL_CTX_set_time(ctx, ms);

    n = sk_SCT_num(scts);

    for (i = 0; i < n; i++) {
        sf->total++;

        if (i >= CG_SCT_MAX) {
            sf->unchecked++;
            continue;
        }

        cg_sct_one(sf, sk_SCT_value(scts, i), ctx, f->policy->ct_logs, ms);
    }

    CT_POLICY_EVAL_CTX_free(ctx);
    SCT_LIST_free(scts);

    return sf;
}


static void
cg_sct_one(cg_sct_facts_t *sf, SCT *sct, CT_POLICY_EVAL_CTX *ctx,
    const CTLOG_STORE *store, uint64_t ms)
{
    size_t          idlen;
    const char     *name;
    const CTLOG    *log;
    unsigned char  *id;

    if (sct == NULL) {
        sf->unchecked++;
        return;
    }

    /* one SCT at a time, not SCT_LIST_validate(): an error on one must
     * not leave the others unchecked */
    (void) SCT_validate(sct, ctx);

    switch (SCT_get_validation_status(sct)) {

    case SCT_VALIDATION_STATUS_VALID:
        sf->valid++;
        return;

    case SCT_VALIDATION_STATUS_UNKNOWN_LOG:
        sf->unknown++;
        return;

    case SCT_VALIDATION_STATUS_INVALID:
        break;

    default:
        /* an unknown version, no issuer to check against, or an error */
        sf->unchecked++;
        return;
    }

    sf->invalid++;

    if (SCT_get_timestamp(sct) > ms) {
        sf->future++;
    }

    if (sf->invalid == 1) {
        idlen = SCT_get0_log_id(sct, &id);
        log = CTLOG_STORE_get0_log_by_id(store, id, idlen);
        name = log ? CTLOG_get0_name(log) : NULL;
        cg_utf8_copy(sf->log, sizeof(sf->log), name ? name : "?",
                     name ? strlen(name) : 1);
    }
}


/* ---- the signals ------------------------------------------------------- */


int
cg_check_invalid_sct(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    const cg_sct_facts_t  *sf;

    if (f->policy->ct_logs == NULL || !f->has_sct) {
        return 0;
    }

    sf = cg_facts_sct(f);

    if (sf->failed) {
        cg_detailf(detail, size, "embedded SCTs not checked: out of memory");
        return 1;
    }

    if (sf->unreadable) {
        cg_detailf(detail, size, "the embedded SCT list does not parse");
        return 1;
    }

    if (sf->invalid == 0) {
        return 0;
    }

    cg_detailf(detail, size, "SCT of \"%s\" %s (%u of %u; %u unlisted)",
               sf->log, sf->future == sf->invalid
                        ? "dated after the evaluation time"
                        : "does not verify",
               sf->invalid, sf->total, sf->unknown);

    return 1;
}


int
cg_check_unverified_sct(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight)
{
    const cg_sct_facts_t  *sf;
    const cg_cert_facts_t *c;

    c = &f->certs[0];

    if (f->policy->ct_logs == NULL || !f->has_sct || !f->public_root
        || !c->has_not_before || c->not_before < CG_SCT_REQUIRED_FROM)
    {
        return 0;
    }

    sf = cg_facts_sct(f);

    /* invalid_sct's */
    if (sf->failed || sf->unreadable || sf->invalid || sf->valid) {
        return 0;
    }

    if (sf->total == 0) {
        cg_detailf(detail, size, "the embedded SCT list holds no SCT");
        return 1;
    }

    cg_detailf(detail, size, "no SCT from a listed log: %u of %u from "
               "unlisted logs, %u not checkable", sf->unknown, sf->total,
               sf->unchecked);

    return 1;
}
