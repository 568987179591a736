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


#define CG_VERIFY_ERR_MAX   8


/* Trust anchors (cg_chain.c): loaded into memory once, read-only after. */
/*
 * The anchors certguard verifies against, and which of them are public
 * roots (the system bundle): CT and the CA/Browser Forum lifetime rules
 * bind only those, so no_sct and long_validity ask which kind of anchor a
 * chain ends in.  With the system bundle as the store, every anchor is.
 */
struct cg_trust_s {
    X509_STORE     *store;
    unsigned char  (*public_roots)[32];    /* SHA-256, sorted */
    size_t          npublic;
    unsigned        all_public:1;
};

/* 1 when the certificate is one of the public roots. */
int cg_trust_is_public(const cg_trust_t *t, X509 *x);


/* One certificate as the server sent it. */
typedef struct {
    X509           *x;
    char           *subject;        /* RFC 2253, UTF-8, NUL-terminated */
    size_t          subject_len;
    char           *issuer;
    size_t          issuer_len;

    unsigned char   sha1[20];
    unsigned char   sha256[32];

    int64_t         not_before;     /* unix seconds; valid if has_* */
    int64_t         not_after;

    int             key_id;         /* EVP_PKEY_get_base_id, or NID_undef */
    int             key_bits;       /* 0 when the key is not understood */

    int             sig_mdnid;      /* NID_undef when not known */
    int             sig_pknid;
    int             sig_secbits;    /* 0 when not known */

    unsigned        digests:1;      /* sha1 and sha256 are set */
    unsigned        has_not_before:1;
    unsigned        has_not_after:1;
    unsigned        self_signed:1;  /* leaf: X509_self_signed(x, 1);
                                       above: names and key ids only */
    unsigned        sig_known:1;
} cg_cert_facts_t;


typedef struct {
    int             depth;
    int             code;           /* X509_V_ERR_* */
} cg_verify_err_t;


typedef struct {
    const cg_input_t   *in;
    const cg_policy_t  *policy;
    int64_t             now;

    cg_cert_facts_t    *certs;      /* [0] is the leaf, then as sent */
    unsigned            ncerts;

    GENERAL_NAMES      *san;        /* leaf; NULL: none or malformed */
    char                serial[CG_SERIAL_MAX];

    unsigned            san_dns_ip:1;   /* a DNS or IP SAN is present */
    unsigned            has_sct:1;      /* embedded SCT list extension */
    unsigned            trusted:1;      /* no path errors */
    unsigned            public_root:1;  /* trusted, to a public root */
    unsigned            geo_done:1;
    unsigned            geo_ok:1;

    /* chain verification: every error the verify callback saw */
    unsigned            nerrors;        /* all of them, counted */
    unsigned            npath_errors;   /* other than time validity */
    cg_verify_err_t     errors[CG_VERIFY_ERR_MAX];
    cg_verify_err_t     first_path_error;

    cg_geo_t            geo;

    /* the certificate memory's lookup (cg_memory_eval.c), done once */
    struct cg_memfacts_s *mem;
    unsigned            mem_done:1;
} cg_facts_t;


/* CG_OK or CG_ERR_NOMEM / CG_ERR_ARG; cg_facts_free in every case. */
int cg_facts_init(cg_facts_t *f, const cg_input_t *in);
void cg_facts_free(cg_facts_t *f);

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


/* Signal table (cg_signals.c), for cg_eval.c. */
int cg_signal_check(unsigned index, cg_facts_t *f, char *detail,
    size_t size, int *weight);
int64_t cg_signal_window(const cg_policy_t *p, unsigned index,
    unsigned which);


/* Certificate memory (cg_memory_eval.c): what the memory holds for the
 * input's name, looked up once (NULL: no memory, no name, or the store
 * could not be read); the checks of its signals; the result's fields. */
typedef struct cg_memfacts_s  cg_memfacts_t;

cg_memfacts_t *cg_facts_memory(cg_facts_t *f);
void cg_facts_memory_free(cg_facts_t *f);
void cg_memory_result(cg_facts_t *f, cg_result_t *res);
int cg_check_first_seen(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight);
int cg_check_cert_changed(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight);
int cg_check_issuer_changed(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight);
int cg_check_cert_moved(cg_facts_t *f, unsigned index, char *detail,
    size_t size, int *weight);

#endif /* CG_FACTS_H */
