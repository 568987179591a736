/*
 * certguard engine internals shared between its files: the parsed policy
 * (written by cg_policy*.c, read by cg_eval.c and cg_signals.c), patterns
 * and lists (cg_match.c), the signal table (cg_signals.c) and GeoIP lookups
 * (cg_geoip.c).  Not installed, not for glue code: the glue uses certguard.h.
 */

#ifndef CG_INTERNAL_H
#define CG_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdint.h>
#include <stddef.h>
#include <time.h>
#include <pcre2.h>

#include "certguard.h"


#define CG_SIG_MAX          64      /* built-in signals; a uint64_t mask */

/* Bounds of the work one handshake costs: certificates of a chain looked
 * at (the policy's max_chain, default and largest) and the leaf's SANs
 * read, whatever the server sends. */
#define CG_MAX_CHAIN        10
#define CG_MAX_CHAIN_MAX    100
#define CG_SAN_MAX          1000

#define cg_nelem(a)         (sizeof(a) / sizeof((a)[0]))


/* Patterns, as in nginx: "text" is a case-insensitive substring, "~re" a
 * PCRE2 regex, "~*re" a case-insensitive regex.  Host patterns (exempt sni)
 * also accept "*.example.com" (any name below) and ".example.com" (the
 * name and any below). */
typedef enum {
    CG_PAT_SUBSTR = 0,
    CG_PAT_REGEX,
    CG_PAT_HOST_SUFFIX,     /* "*.x" or ".x"; text holds ".x" */
    CG_PAT_HOST_EXACT       /* host patterns without a wildcard */
} cg_pat_kind_t;

typedef struct {
    cg_pat_kind_t   kind;
    unsigned        dot_too:1;      /* ".x" also matches "x" itself */
    char           *text;           /* NUL-terminated, as written */
    char           *lower;          /* substrings: text in ASCII lower
                                       case, as the text matched is */
    size_t          len;
    pcre2_code     *re;
    unsigned        line;           /* where it was written, for details */
} cg_pattern_t;

typedef struct {
    cg_pattern_t   *items;
    size_t          n;
    uint64_t        id;             /* new with every pattern added, unique
                                       in the process: what results kept
                                       of the list are keyed by */
} cg_patlist_t;

/* Compile one pattern; host selects host-pattern syntax. */
int cg_pattern_compile(cg_pattern_t *p, const char *text, int host,
    cg_error_t *err);
void cg_pattern_free(cg_pattern_t *p);
/* 1 on a match, 0 otherwise; s need not be NUL-terminated. */
int cg_pattern_match(const cg_pattern_t *p, const char *s, size_t len);
/* The first matching pattern of the list, or NULL. */
const cg_pattern_t *cg_patlist_match(const cg_patlist_t *l, const char *s,
    size_t len);
/* A list file: one pattern a line, '#' comments, blank lines skipped. */
int cg_patlist_load(cg_patlist_t *l, const char *path, int host,
    cg_error_t *err);
int cg_patlist_add(cg_patlist_t *l, const char *text, int host,
    cg_error_t *err);
void cg_patlist_free(cg_patlist_t *l);


/* Certificate fingerprints: SHA-1 (20 bytes) or SHA-256 (32 bytes). */
typedef struct {
    unsigned char   md[32];
    unsigned char   len;            /* 20 or 32 */
    char            reason[48];     /* SSLBL Listingreason, or "" */
} cg_digest_t;

typedef struct {
    cg_digest_t    *items;          /* sorted by (len, md) for bsearch */
    size_t          n;
} cg_digestset_t;

/* abuse.ch SSLBL CSV ("Listingdate,SHA1,Listingreason", '#' comments) or
 * one hex digest a line (40 or 64 hex digits, colons allowed, optional
 * "sha1:" / "sha256:" prefix). */
int cg_digestset_load(cg_digestset_t *s, const char *path, cg_error_t *err);
/* Parse a single digest as written in a policy; 0 on success. */
int cg_digest_parse(cg_digest_t *d, const char *text);
int cg_digestset_add(cg_digestset_t *s, const cg_digest_t *d);
void cg_digestset_sort(cg_digestset_t *s);
const cg_digest_t *cg_digestset_find(const cg_digestset_t *s,
    const unsigned char *md, size_t len);
void cg_digestset_free(cg_digestset_t *s);


/*
 * Keys whose private halves are public (list leaked_root): SPKI SHA-256s,
 * and the certificates the list gives in full, whose keys verify what
 * they issued when the server does not send them.
 */
typedef struct {
    cg_digestset_t  spki;           /* sorted */
    X509          **roots;
    size_t          nroots;
} cg_keyset_t;

/* One hex SPKI SHA-256 a line (text after white space, a comment, is
 * ignored) and PEM CERTIFICATE blocks, '#' comments; appends to ks. */
int cg_keyset_load(cg_keyset_t *ks, const char *path, cg_error_t *err);
void cg_keyset_free(cg_keyset_t *ks);


typedef struct {
    int             family;         /* AF_INET or AF_INET6 */
    unsigned char   addr[16];
    unsigned        prefix;
} cg_cidr_t;

int cg_cidr_parse(cg_cidr_t *c, const char *text);
/* addr is text; 1 when it is inside the range. */
int cg_cidr_match(const cg_cidr_t *c, const char *addr);


/* Geo lists: "geo_country 40 RU KP;" "geo_asn 30 64496 AS64511;" */
typedef struct {
    char            cc[3];          /* ISO 3166 alpha-2, upper case */
    int             weight;
} cg_geo_country_t;

typedef struct {
    uint32_t        asn;
    int             weight;
} cg_geo_asn_t;


typedef enum {
    CG_FIELD_SUBJECT = 0,
    CG_FIELD_ISSUER,
    CG_FIELD_SAN,           /* each DNS, IP, email and URI SAN in turn */
    CG_FIELD_SERIAL,        /* upper-case hex, no separators */
    CG_FIELD_SNI
} cg_field_t;

/* "rule ID FIELD PATTERN WEIGHT ["detail"];" */
typedef struct {
    char            id[CG_ID_MAX];
    cg_field_t      field;
    cg_pattern_t    pattern;
    int             weight;
    char           *detail;         /* NULL: the pattern is the detail */
} cg_rule_t;

/* "exempt { ... }": every condition given must match (AND); the values of
 * one condition are alternatives (OR).  No "signals" means all signals. */
typedef struct {
    cg_patlist_t    sni;            /* host patterns */
    cg_patlist_t    issuer;         /* patterns on the leaf issuer DN */
    cg_patlist_t    subject;        /* patterns on the leaf subject DN */
    cg_digestset_t  fingerprint;    /* any chain certificate */
    cg_digestset_t  issuer_spki;    /* SHA-256 of the SubjectPublicKeyInfo
                                       of the CA certificate whose key
                                       signed the leaf */
    cg_digestset_t  issuer_fingerprint; /* SHA-256 of that certificate */
    cg_cidr_t      *dst;
    size_t          ndst;
    uint64_t        signals;        /* built-in signal mask */
    char          **rules;          /* custom rule ids suppressed */
    size_t          nrules;
    unsigned        all:1;          /* no "signals" statement: everything */
    char           *reason;         /* "reason" statement, or NULL */
    char           *file;
    unsigned        line;
} cg_exempt_t;


typedef enum {
    CG_LIST_FREE_DV = 0,            /* issuer patterns */
    CG_LIST_STAGING,                /* issuer patterns */
    CG_LIST_DEFAULT_SUBJECT,        /* subject (and issuer) patterns */
    CG_LIST_PUBLIC_CA,              /* names of public CAs: mimicked_ca */
    CG_LIST_MAX
} cg_list_kind_t;


struct cg_policy_s {
    char            name[64];       /* "name default;", else the file stem */
    char            path[CG_NAME_MAX];
    int             tag_threshold;
    int             block_threshold;
    unsigned        max_chain;      /* certificates examined; 0: the
                                       default, CG_MAX_CHAIN */

    int             weight[CG_SIG_MAX];     /* by signal index */
    int64_t         window[CG_SIG_MAX][2];  /* seconds; 0 = default */

    cg_patlist_t    lists[CG_LIST_MAX];
    cg_digestset_t  blocklist;

    cg_geo_country_t *geo_country;
    size_t          ngeo_country;
    cg_geo_asn_t   *geo_asn;
    size_t          ngeo_asn;

    cg_rule_t      *rules;
    size_t          nrules;

    cg_exempt_t    *exempts;
    size_t          nexempts;

    struct ctlog_store_st *ct_logs;     /* ct_log_list, or NULL */
    cg_keyset_t     leaked;         /* list leaked_root */
    struct psl_ctx_st *psl;         /* the Public Suffix List of the
                                       publicsuffix package, loaded with
                                       a policy file; NULL: libpsl's
                                       built-in copy */
};


/* Signal table (cg_signals.c): index by id, for the policy parser;
 * cg_signal_count() is in certguard.h. */
int cg_signal_find(const char *id);         /* index, or -1 */
const char *cg_signal_id(unsigned index);
const char *cg_signal_doc(unsigned index);
int cg_signal_default_weight(unsigned index);
/* Default windows in seconds for window[index][0..1]; 0 when the signal
 * takes no window. */
int64_t cg_signal_default_window(unsigned index, unsigned which);


/* GeoIP (cg_geoip.c): 0 on a hit; fields unknown are left "" / 0. */
typedef struct {
    char            country[3];
    uint32_t        asn;
    char            as_org[64];
} cg_geo_t;

int cg_geoip_lookup(const cg_geoip_t *g, const char *addr, cg_geo_t *out);


/* Bounded string helpers (cg_util.c; cg_utf8_decode() is in certguard.h). */
size_t cg_strlcpy(char *dst, const char *src, size_t size);
size_t cg_strnlen(const char *s, size_t max);
int64_t cg_tm_to_epoch(const struct tm *tm);
void cg_epoch_to_tm(int64_t t, struct tm *tm);
int64_t cg_floor_div(int64_t a, int64_t b);
int cg_asn1_time_tm(const ASN1_TIME *t, struct tm *tm);
int cg_dn_print(const X509_NAME *name, char *buf, size_t size);

/* The SubjectPublicKeyInfo inside a Certificate's DER (cg_der.c), when it
 * is DER throughout: 1, else 0. */
int cg_der_spki(const unsigned char *der, size_t n,
    const unsigned char **spki, size_t *spki_len);
int cg_errorf(cg_error_t *err, int status, const char *file, unsigned line,
    const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/*
 * SHA-256 and SHA-1 fetched once per process (cg_util.c).  OpenSSL 3's
 * EVP_sha256() is a legacy handle that every digest call fetches again
 * (a lock and a hash lookup, about a third of an X509_digest() here).
 */
const EVP_MD *cg_md_sha256(void);
const EVP_MD *cg_md_sha1(void);
int cg_sha256(const void *p, size_t n, unsigned char md[32]);

#endif /* CG_INTERNAL_H */
