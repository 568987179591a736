/*
 * Certificate facts: everything the signals look at, computed once per
 * evaluation (cg_facts.c) so that no signal parses, prints, hashes or
 * verifies anything itself.  Internal to the engine: cg_eval.c builds the
 * facts, cg_signals.c reads them.
 */

#ifndef CG_FACTS_H
#define CG_FACTS_H

#include <openssl/x509v3.h>

#include "cg_internal.h"
#include "cg_sct.h"


#define CG_VERIFY_ERR_MAX   8


/* Trust anchors (cg_chain.c): loaded into memory once, read-only after. */
/*
 * The anchors certguard verifies against, and which of them are public
 * roots (the system bundle's): CT and the CA/Browser Forum lifetime rules
 * bind only those, so no_sct and long_validity ask which kind of anchor a
 * chain ends in.  With the system bundle alone as the store, every anchor
 * is; with a CA file as well, those in the bundle; when the system's
 * anchors are a hashed directory that cannot be listed, all but the
 * file's.
 */
/* A certificate of the store as loaded, with its SHA-256. */
typedef struct {
    X509           *x;
    unsigned char   sha256[32];
} cg_anchor_t;

struct cg_trust_s {
    X509_STORE     *store;
    cg_anchor_t    *anchors;                /* sorted by address */
    size_t          nanchors;
    unsigned char  (*public_roots)[32];    /* SHA-256, sorted */
    size_t          npublic;
    unsigned char  (*own_roots)[32];       /* the CA file's, with
                                              system_dir */
    size_t          nown;
    const X509_NAME **dup_names;           /* subjects two or more anchors
                                              share, one entry each */
    size_t          ndup;
    unsigned        all_public:1;
    unsigned        system_dir:1;          /* system anchors by lookup */
    unsigned        names_listed:1;        /* see cg_trust_one_issuer() */
};

/* 1 when the certificate is one of the public roots; _md by its
 * SHA-256. */
int cg_trust_is_public(const cg_trust_t *t, X509 *x);
int cg_trust_is_public_md(const cg_trust_t *t, const unsigned char *md);

/*
 * Whether a chain the store is searched for, whose untrusted certificates
 * (and leaf) name the issuer given, can meet two store certificates of
 * one name (then OpenSSL's search prefers one by its validity): 0 when it
 * cannot.  Known only when every anchor was listed at load
 * (names_listed); else 1.
 */
int cg_trust_name_shared(const cg_trust_t *t, const X509_NAME *issuer);

/* The SHA-256 of a certificate object the store held when loaded: 1, or
 * 0 for any other object. */
int cg_trust_digest(const cg_trust_t *t, X509 *x, unsigned char *md);

/* d2i_X509(NULL, pp, len) through certs (cg_certs.c): a certificate
 * already in chain is decoded again, so that a chain never holds one
 * object twice. */
X509 *cg_certs_d2i(cg_certs_t *certs, const unsigned char **pp, long len,
    STACK_OF(X509) *chain);


/* The intermediates pool (cg_pool.c): CA certificates sorted by subject,
 * read-only after loading. */
#define CG_POOL_WARN_MAX    8

struct cg_intermediates_s {
    X509          **certs;
    size_t          n;
    cg_error_t      warnings[CG_POOL_WARN_MAX];
    unsigned        nwarnings;
};

/* Appends to untrusted the pool's certificates that issue, by name, the
 * leaf, a certificate already in untrusted or one added; at most
 * CG_POOL_ADD_MAX, none already there.  0, or -1 out of memory. */
#define CG_POOL_ADD_MAX     8

int cg_pool_complete(const cg_intermediates_t *pool, X509 *leaf,
    STACK_OF(X509) *untrusted);


/* One certificate as the server sent it. */
typedef struct {
    X509           *x;
    char           *subject;        /* RFC 2253, UTF-8, NUL-terminated */
    size_t          subject_len;
    char           *issuer;
    size_t          issuer_len;

    unsigned char   sha1[20];
    unsigned char   sha256[32];
    unsigned char   spki[32];       /* SHA-256 of SubjectPublicKeyInfo */

    int64_t         not_before;     /* unix seconds; valid if has_* */
    int64_t         not_after;

    int             key_id;         /* EVP_PKEY_get_base_id, or NID_undef */
    int             key_bits;       /* 0 when the key is not understood */

    int             sig_mdnid;      /* NID_undef when not known */
    int             sig_pknid;
    int             sig_secbits;    /* 0 when not known */

    int             sent;           /* position as sent, -1: from the
                                       trust store */

    unsigned        digests:1;      /* sha1 and sha256 are set */
    unsigned        spki_ok:1;      /* spki is set */
    unsigned        has_not_before:1;
    unsigned        has_not_after:1;
    unsigned        self_signed:1;  /* leaf: X509_self_signed(x, 1);
                                       above: names and key ids only */
    unsigned        sig_known:1;
    unsigned        owned:1;        /* x is a reference of the facts' own
                                       (from in->certs) */
} cg_cert_facts_t;

/*
 * A certificate sent above the leaf, looked up in certs by its DER
 * (cg_certs.c): found->x is the object remembered for the same bytes, or x
 * itself (then remembered, unless its bucket keeps busier ones, or the
 * remembered object is one of taken[0..ntaken-1] already), borrowed until
 * the next call on certs.  found->facts: the facts kept with it (made at
 * a depth above 0), or NULL; found->keep, when not NULL, is where facts
 * made of found->x go, malloc'd with their strings, for certs to free.
 */
typedef struct {
    X509                    *x;
    const cg_cert_facts_t   *facts;
    cg_cert_facts_t        **keep;
} cg_certs_found_t;

void cg_certs_find(cg_certs_t *certs, X509 *x, const cg_cert_facts_t *taken,
    unsigned ntaken, cg_certs_found_t *found);

/* cg_patlist_match(l, s, len), its result kept in certs (when not NULL)
 * for the next match of the same name against the same list: for names
 * that recur, those of certificates above leaves. */
const cg_pattern_t *cg_certs_match(cg_certs_t *certs, const cg_patlist_t *l,
    const char *s, size_t len);


typedef struct {
    int             depth;
    int             code;           /* X509_V_ERR_* */
} cg_verify_err_t;


/* A certificate whose key verifiably signed the leaf: what issuer_spki
 * and issuer_fingerprint exemptions compare. */
#define CG_ISSUERS_MAX      8

typedef struct {
    unsigned char   spki[32];       /* SHA-256 of SubjectPublicKeyInfo */
    unsigned char   sha256[32];     /* SHA-256 of the certificate DER */
} cg_issuer_pin_t;

/* Findings of one kind on the verified path: the first (what, and its
 * depth on the path) and how many. */
typedef struct {
    int             code;           /* X509_V_ERR_* or CG_PROF_* */
    int             depth;
    unsigned        n;
} cg_finding_t;

/* The engine's own profile findings (cg_profile.c), after OpenSSL's
 * X509_V_ERR_* codes. */
#define CG_PROF_BASE            1000
#define CG_PROF_RSA_BITS        1000    /* modulus not a multiple of 8 */
#define CG_PROF_EC_CURVE        1001    /* not P-256, P-384 or P-521 */
#define CG_PROF_SERIAL_SIGN     1002    /* serial zero or negative */
#define CG_PROF_SERIAL_LONG     1003    /* serial over 20 octets */
#define CG_PROF_NOT_V3          1004
#define CG_PROF_SAN_CRITICAL    1005    /* beside a non-empty subject */
#define CG_PROF_AIA_EMPTY       1006
#define CG_PROF_PC_NONCRITICAL  1007    /* policyConstraints */
#define CG_PROF_DNS_SYNTAX      1008    /* a DNS SAN not a host name */
#define CG_PROF_AKI_NO_KEYID    1009    /* anchor: AKI without keyid */
#define CG_PROF_AKI_ISSUER      1010    /* anchor: AKI issuer/serial */
#define CG_PROF_AKI_NOT_SKI     1011    /* self-issued anchor: AKI != SKI */
#define CG_PROF_AKI_MISSING     1012    /* anchor not self-issued */
#define CG_PROF_CA_LEAF         1013    /* the ca_leaf signal's */
#define CG_PROF_NC_NOT_CA       1014    /* nameConstraints on a non-CA */
#define CG_PROF_NC_EMPTY        1015    /* no subtree, or unreadable */
#define CG_PROF_NC_DNS_SYNTAX   1016    /* a dNSName base not a name */
#define CG_PROF_NC_WILDCARD     1017    /* the name_constraints signal's */
#define CG_PROF_EKU_CRITICAL    1018    /* the eku signal's, from here */
#define CG_PROF_EKU_ANY         1019
#define CG_PROF_EKU_ANCHOR      1020
#define CG_PROF_CN_IP           1021    /* the cn_mismatch signal's */
#define CG_PROF_CN_CASE         1022
#define CG_PROF_CN_IDN          1023
#define CG_PROF_MAX             1024


typedef struct {
    const cg_input_t   *in;
    const cg_policy_t  *policy;
    int64_t             now;

    cg_cert_facts_t    *certs;      /* [0] is the leaf, then as sent */
    unsigned            ncerts;     /* at most the policy's max_chain */
    unsigned            nsent;      /* certificates the server sent */

    /*
     * The path verification built, leaf first: up to the anchor when it
     * reached one (path_anchor), else as far as it got.  Sent certificates
     * share their facts with certs[]; the others (the anchor, an
     * intermediate of the CA file) have theirs in store_certs[].  Without
     * a verification (no anchors, out of memory) the path is the chain as
     * sent.  Validity and keys are judged on the path: what the server
     * sent and no path uses does not count.
     */
    cg_cert_facts_t   **path;
    unsigned            npath;
    cg_cert_facts_t    *store_certs;
    unsigned            nstore;

    GENERAL_NAMES      *san;        /* leaf, the first CG_SAN_MAX; NULL:
                                       none or malformed */
    X509               *san_cert;   /* with san_truncated: a certificate
                                       of the leaf's subject and san only,
                                       for the name checks */
    char                serial[CG_SERIAL_MAX];

    unsigned            san_dns_ip:1;   /* a DNS or IP SAN is present */
    unsigned            san_truncated:1;    /* more SANs than CG_SAN_MAX */
    unsigned            has_sct:1;      /* embedded SCT list extension */
    unsigned            trusted:1;      /* no path errors */
    unsigned            public_root:1;  /* trusted, to a public root */
    unsigned            path_anchor:1;  /* path[npath - 1] is an anchor */
    unsigned            anchor_checked:1;
    unsigned            anchor_public:1;    /* ... of the system bundle */
    unsigned            geo_done:1;
    unsigned            geo_ok:1;

    /* chain verification: every error the verify callback saw */
    unsigned            nerrors;        /* all of them, counted */
    unsigned            npath_errors;   /* other than time validity and
                                           profile findings */
    cg_verify_err_t     errors[CG_VERIFY_ERR_MAX];
    cg_verify_err_t     first_path_error;

    /* RFC 5280 / CA/Browser Forum profile findings that do not break a
     * path (the nonconformant signal): OpenSSL's strict checks, then the
     * engine's own (cg_profile.c, once a signal asks) */
    cg_finding_t        profile;
    cg_finding_t        ca_leaf;        /* a CA-issued leaf with cA TRUE */
    cg_finding_t        nc;             /* a wildcard over an excluded
                                           subtree: which CA, and nc_text
                                           names the two */
    char                nc_text[80];
    cg_finding_t        eku;            /* the TLS server profile's EKU */
    cg_finding_t        cn;             /* a CN that is a SAN misspelt */
    unsigned            profile_done:1;
    unsigned            walk_time:1;    /* the memo's walk checks validity
                                           at now, OpenSSL's search does
                                           not (cg_facts_verify_run()) */

    cg_geo_t            geo;

    cg_issuer_pin_t     issuers[CG_ISSUERS_MAX];
    unsigned            nissuers;
    unsigned            issuers_done:1;
    /* the certificate memory's lookup (cg_memory_eval.c), done once */
    struct cg_memfacts_s *mem;
    unsigned            mem_done:1;
    /* the leaf's SCTs against the policy's ct_log_list (cg_sct.c) */
    cg_sct_facts_t      sct;

    /* revocation of the verified path (cg_revoke.c), checked once */
    int                 rev_source;     /* CG_REV_CRL, CG_REV_OCSP, 0 */
    int                 rev_depth;      /* of the revoked certificate */
    int                 rev_reason;     /* CRLReason, -1: none given */
    cg_finding_t        crl_bad;        /* a CRL of a path's CA that
                                           cannot be used: X509_V_ERR_*
                                           or CG_REV_NO_CRLNUMBER */
    const char         *ocsp_problem;   /* the staple's, static text */
    unsigned            rev_done:1;
} cg_facts_t;


/* What an error of the verification is: the classes below. */
#define CG_VERR_PATH        0       /* no valid path: untrusted_chain */
#define CG_VERR_TIME        1       /* expired, not_yet_valid */
#define CG_VERR_PROFILE     2       /* a strict finding: nonconformant */
#define CG_VERR_IGNORED     3       /* counted, but no signal's */

int cg_verify_class(X509_STORE_CTX *ctx, int code, int depth);


/* CG_OK or CG_ERR_NOMEM / CG_ERR_ARG; cg_facts_free in every case. */
int cg_facts_init(cg_facts_t *f, const cg_input_t *in);
void cg_facts_free(cg_facts_t *f);

/* A DN as the results print it (RFC 2253, UTF-8), malloc'ed; NULL when out
 * of memory.  A name cg_dn_print() cannot write goes through a scratch
 * memory BIO, made in *bio on first need (*bio NULL) and the caller's to
 * free: most evaluations never need one. */
char *cg_facts_dn(const X509_NAME *name, BIO **bio, size_t *len);

/* The certificates whose key signed the leaf (cg_pin.c), found on the
 * first call: sent ones and trust anchors named as the leaf's issuer. */
const cg_issuer_pin_t *cg_facts_issuers(cg_facts_t *f, unsigned *n);

/* SHA-256 of the DER SubjectPublicKeyInfo (an HPKP pin-sha256, in hex);
 * CG_OK or CG_ERR_INPUT when the key cannot be encoded. */
int cg_spki_sha256(X509 *x, unsigned char md[32]);

/*
 * Other paths through the sent certificates (cg_path.c), for a chain whose
 * verification failed: try is called with the untrusted certificates of
 * each, until it returns 1 (that path verifies: *found, the caller's to
 * free) or -1 (out of memory).  1 when one was found, 0 when none (or
 * the chain offers no other path), -1 out of memory.
 */
typedef int (*cg_path_try_pt)(void *data, STACK_OF(X509) *untrusted);

int cg_path_search(X509 *leaf, X509 **sent, unsigned n, cg_path_try_pt try,
    void *data, STACK_OF(X509) **found);

/*
 * Whether a CA name on the chain comes with that CA's key (cg_pool.c),
 * against the certificates of that name the trust store and the
 * intermediates pool know: for x's subject (issuer 0) its key is theirs,
 * for its issuer (issuer 1) one of theirs verifies its signature.  1 a
 * known key, 0 the name is known with other keys only, -1 not known.
 */
int cg_facts_known_key(cg_facts_t *f, X509 *x, int issuer);

/* The engine's own checks of the verified path (cg_profile.c), run once,
 * when the first signal that reads them asks. */
void cg_facts_profile(cg_facts_t *f);
void cg_finding_add(cg_finding_t *fd, int code, int depth);
/* What a finding code means, for details. */
const char *cg_finding_text(int code);
/* 1 when the anchor the path ends in is a public root. */
int cg_facts_anchor_public(cg_facts_t *f, X509 *top);
/* The SHA-256 of x when it is a sent certificate (its facts have it) or
 * one of the store's: 1, else 0 (the caller digests it). */
int cg_facts_sha256(const cg_facts_t *f, X509 *x, unsigned char *md);

/* The certificate the name checks (X509_check_host and _ip) look at: the
 * leaf, or for a leaf of more than CG_SAN_MAX SANs one that holds its
 * subject and the first of them, made on the first call; NULL when out of
 * memory. */
X509 *cg_facts_name_cert(cg_facts_t *f);

/* The destination's GeoIP record, looked up once; NULL when unknown. */
const cg_geo_t *cg_facts_geo(cg_facts_t *f);

/* The entry of the set that holds the certificate's SHA-1 or SHA-256, or
 * NULL (also when the certificate's digests could not be computed). */
const cg_digest_t *cg_facts_digest_find(const cg_cert_facts_t *c,
    const cg_digestset_t *s);

/*
 * Copies at most len bytes of src into dst (size bytes with the NUL) as
 * printable UTF-8: control characters, invisible format characters
 * (U+200B-U+200F, U+2028-U+202E, U+2060-U+206F, U+FEFF) and invalid
 * sequences become '?', and truncation never splits a character.  Returns
 * the bytes written, without the NUL.
 */
size_t cg_utf8_copy(char *dst, size_t size, const char *src, size_t len);

/* snprintf through cg_utf8_copy: details are short, printable UTF-8. */
void cg_detailf(char *dst, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* "2026-11-25T15:09:55Z" into buf (at least 24 bytes). */
void cg_time_format(int64_t t, char *buf, size_t size);


/* A signal's check (cg_signals.c's table): 1 when the signal fires, with a
 * short detail; it may change *weight.  The checks that live in other
 * files are declared with it below. */
typedef int cg_check_fn(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight);

/* "leaf" or "depth N": which certificate, as sent, a detail is about
 * (cg_signals.c). */
const char *cg_which(unsigned i, char *buf, size_t size);


/* Signal table (cg_signals.c), for cg_eval.c. */
int cg_signal_check(unsigned index, cg_facts_t *f, char *detail,
    size_t size, int *weight);
int64_t cg_signal_window(const cg_policy_t *p, unsigned index,
    unsigned which);
/* The detail of sni_mismatch, for the check and for
 * cg_result_with_client_sni(). */
void cg_sni_mismatch_detail(char *detail, size_t size,
    const char *client_sni, const char *name);


/* Certificate memory (cg_memory_eval.c): what the memory holds for the
 * input's name, looked up once (NULL: no memory, no name, or the store
 * could not be read); the checks of its signals; the result's fields. */
typedef struct cg_memfacts_s  cg_memfacts_t;

cg_memfacts_t *cg_facts_memory(cg_facts_t *f);
void cg_facts_memory_free(cg_facts_t *f);
void cg_memory_result(cg_facts_t *f, cg_result_t *res);
cg_check_fn cg_check_first_seen;
cg_check_fn cg_check_cert_changed;
cg_check_fn cg_check_issuer_changed;
cg_check_fn cg_check_cert_moved;

/* Embedded SCTs (cg_sct.c): quiet without a ct_log_list. */
cg_check_fn cg_check_invalid_sct;
cg_check_fn cg_check_unverified_sct;

/* Revocation (cg_revoke.c): the CRL pass and the staple's check, run once
 * when the first revocation signal asks; the checks of those signals. */
#define CG_REV_CRL              1
#define CG_REV_OCSP             2
#define CG_REV_NO_CRLNUMBER     2000    /* crl_bad: RFC 5280 5.2.3 */

typedef struct {
    int             status;         /* V_OCSP_CERTSTATUS_*, -1: none */
    int             reason;         /* CRLReason when revoked, else -1 */
    unsigned        verified:1;     /* signed by the CA or its responder,
                                       with a status for the leaf */
    const char     *problem;        /* NULL: sound and current */
} cg_ocsp_status_t;

void cg_facts_revocation(cg_facts_t *f);
unsigned cg_crls_count(const cg_crls_t *crls);

/* A stapled response (DER, len bytes, from the server: anything) for leaf
 * under issuer at now: never fails, *st says what it is. */
void cg_ocsp_check(const unsigned char *der, size_t len, X509 *leaf,
    X509 *issuer, int64_t now, cg_ocsp_status_t *st);

cg_check_fn cg_check_revoked;
cg_check_fn cg_check_crl_invalid;
cg_check_fn cg_check_ocsp_invalid;

/* Shapes no CA produces (cg_shape.c): the checks of their signals. */
cg_check_fn cg_check_malformed_name;
cg_check_fn cg_check_impossible_validity;
cg_check_fn cg_check_bad_version;
cg_check_fn cg_check_forged_issuer;
cg_check_fn cg_check_issuer_key_reuse;

#endif /* CG_FACTS_H */
