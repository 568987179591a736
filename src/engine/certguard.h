/*
 * certguard engine: scores a TLS server certificate chain against a policy.
 *
 * Plain C11, OpenSSL 3, PCRE2 and libmaxminddb; no nginx types.  The shape
 * follows libmaxminddb: objects opened once (policy, trust store, GeoIP),
 * an evaluation that fills a caller's struct, formatters that write into a
 * caller's buffer, *_free to close.  Objects are immutable after they are
 * loaded, so one policy serves every nginx worker and thread at once.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef CERTGUARD_H
#define CERTGUARD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#define CG_VERSION          "0.1.0"

#define CG_OK               0
#define CG_ERR_NOMEM        1
#define CG_ERR_IO           2       /* a file could not be opened or read */
#define CG_ERR_SYNTAX       3       /* policy or list syntax; err->line set */
#define CG_ERR_INPUT        4       /* malformed certificate or chain */
#define CG_ERR_ARG          5       /* a caller's argument is invalid */

/* Sizes of the flat result: it is copied as-is into nginx shared memory. */
#define CG_ID_MAX           32
#define CG_DETAIL_MAX       96
#define CG_MAX_HITS         16      /* keeps a cache entry in one page */
#define CG_DN_MAX           256
#define CG_SERIAL_MAX       84      /* 40 bytes as hex and NUL */
#define CG_NAME_MAX         256


typedef struct cg_policy_s  cg_policy_t;    /* parsed policy file */
typedef struct cg_trust_s   cg_trust_t;     /* trust anchors (CA bundle) */
typedef struct cg_geoip_s   cg_geoip_t;     /* country and ASN databases */
typedef struct cg_memory_s  cg_memory_t;    /* certificate memory (LMDB),
                                               cg_memory.h */
typedef struct cg_crls_s    cg_crls_t;      /* CRLs (cg_crls_load) */
typedef struct cg_intermediates_s  cg_intermediates_t;
                                            /* CA certificates that complete
                                               chains, never anchors */


/*
 * A memo of verified signatures (cg_memo.c, docs/performance.md): key is
 * CG_MEMO_KEY_LEN bytes, a SHA-256 over the full DER of an issuer
 * certificate and of a certificate it signed; a key is inserted only after
 * X509_verify() accepted that signature, and a key found means exactly
 * those bytes verified before, so the check is skipped.  The caller owns
 * the storage (process memory, shared memory) and its locking; lookup
 * returns 1 for a key it holds.  Everything else of a verification runs
 * on every evaluation.
 */
#define CG_MEMO_KEY_LEN     32

typedef struct {
    int         (*lookup)(void *data, const unsigned char *key);
    void        (*insert)(void *data, const unsigned char *key);
    void         *data;
} cg_verify_memo_t;


typedef struct {
    char          file[CG_NAME_MAX];        /* file the error is in, or "" */
    unsigned      line;                     /* 1-based, 0 when not known */
    char          msg[256];
} cg_error_t;


typedef enum {
    CG_ALLOW = 0,
    CG_TAG,
    CG_BLOCK
} cg_verdict_t;


/* One fired signal: a built-in signal or a custom rule of the policy. */
typedef struct {
    char          id[CG_ID_MAX];
    int           weight;                   /* counted in score; 0 if exempt */
    unsigned      exempt:1;                 /* suppressed by an exemption */
    char          detail[CG_DETAIL_MAX];    /* short, printable UTF-8 */
} cg_hit_t;


/*
 * Everything a caller needs after an evaluation, flat (no pointers) so that
 * it can be cached in shared memory with memcpy.  Strings are NUL-terminated
 * and truncated to fit; they are attacker-controlled text and must be escaped
 * by whoever prints them (the formatters below do).
 */
typedef struct {
    cg_verdict_t  verdict;
    int           score;
    unsigned      nhits;
    unsigned      hits_dropped;             /* fired beyond CG_MAX_HITS */
    cg_hit_t      hits[CG_MAX_HITS];

    char          subject[CG_DN_MAX];       /* leaf, RFC 2253, UTF-8 */
    char          issuer[CG_DN_MAX];
    char          serial[CG_SERIAL_MAX];    /* hex, upper case */
    char          sha256[65];               /* leaf DER, hex, lower case */
    char          sha1[41];
    char          spki_sha256[65];          /* leaf SubjectPublicKeyInfo
                                               DER, hex, lower case: the
                                               same across re-issues under
                                               one key */
    int64_t       not_before;               /* unix seconds */
    int64_t       not_after;
    int           key_bits;
    char          key_type[16];             /* "RSA", "EC", "ED25519", ... */
    char          sig_alg[48];              /* e.g. "sha256WithRSAEncryption" */
    unsigned      chain_len;                /* certificates the server sent */
    unsigned      trusted:1;                /* chain verifies to an anchor */
    unsigned      public_root:1;            /* ... of the system bundle */
    unsigned      sni_exempt:1;             /* an exemption of the policy
                                               covers sni_mismatch for this
                                               chain (for
                                               cg_result_with_client_sni) */
    char          name[CG_NAME_MAX];        /* name checked (SNI), or "" */
    char          policy[64];               /* the policy's name */

    /* with a certificate memory (cg_input_t memory), else 0 and "" */
    int64_t       first_seen;               /* this leaf at this name:port,
                                               unix seconds; now if new */
    char          prev_sha256[65];          /* on cert_changed or
                                               issuer_changed: the previous */
    char          prev_issuer[CG_DN_MAX];   /* certificate it compared to */
} cg_result_t;


typedef struct cg_certs_s  cg_certs_t;     /* below, cg_certs_new() */

/* What is being evaluated: the chain as the server sent it, and where. */
typedef struct {
    const cg_policy_t  *policy;             /* required */
    const cg_trust_t   *trust;              /* NULL: untrusted_chain always */
    const cg_geoip_t   *geoip;              /* NULL: no geo signals */

    X509               *leaf;               /* required */
    STACK_OF(X509)     *chain;              /* as sent; may hold the leaf;
                                               NULL for a lone leaf */

    const char         *name;               /* SNI or host name checked
                                               against the SANs; NULL: none;
                                               an IP literal checks IP SANs */
    const char         *client_sni;         /* SNI the client sent inside a
                                               tunnel; NULL: not known */
    const char         *probed_sha256;      /* the leaf a probe saw, as
                                               cg_result_t.sha256, when
                                               this chain is what a client
                                               received instead; NULL:
                                               none (cert_cloaking) */
    const char         *dst_addr;           /* destination IP as text, or NULL */
    unsigned            dst_port;           /* 0: not known */
    int64_t             now;                /* unix seconds; 0: the clock */

    cg_memory_t        *memory;             /* NULL: no memory signals;
                                               only read (a lookup) by
                                               cg_evaluate(), which is then
                                               reentrant per handle only */

    const cg_crls_t    *crls;               /* NULL: no CRL checked */
    const unsigned char *ocsp;              /* the stapled OCSP response
                                               (DER) as the server sent
                                               it; NULL: none stapled */
    size_t              ocsp_len;
    const cg_intermediates_t *intermediates;    /* NULL: none; CA
                                               certificates that may
                                               complete the chain as sent */
    unsigned            max_depth;          /* with max_depth_on: the most
                                               intermediates a verified
                                               path may hold, self-issued
                                               ones not counted */
    unsigned            max_depth_on;
    const cg_verify_memo_t  *verify_memo;   /* NULL: every signature is
                                               checked */
    cg_certs_t         *certs;              /* NULL: none; the caller's
                                               cache of decoded
                                               certificates (one a process
                                               or thread): a certificate
                                               above the leaf whose DER is
                                               there is evaluated as the
                                               object and facts kept for
                                               those bytes, and one that is
                                               not is kept */
    const unsigned char *leaf_sha256;       /* NULL: computed; the leaf's
                                               SHA-256 (32 bytes) when the
                                               caller has it already */
    const unsigned char *leaf_spki_sha256;  /* NULL: computed; its SPKI's
                                               SHA-256 likewise (both from
                                               cg_cert_digests()) */
} cg_input_t;


/*
 * Context of the connection for a CEF record; every field may be NULL/0.
 * The action (CEF act) is cg_action_name(verdict, monitor).
 */
typedef struct {
    unsigned      monitor:1;    /* monitor mode: a block is not enforced */
    unsigned      keep_query:1; /* request keeps its query string; without
                                   it request ends at the first '?' */
    const char   *src_addr;
    unsigned      src_port;
    const char   *dst_addr;
    unsigned      dst_port;
    const char   *request;      /* URL or CONNECT target */
    int64_t       rt_ms;        /* event time, unix milliseconds */
    const char   *user;         /* authenticated proxy user (CEF suser) */
    const char   *dhost;        /* destination name where no result names
                                   one: a refused CONNECT or GET; a
                                   result's name takes precedence */
    const char   *method;       /* request method, "CONNECT" for a tunnel
                                   (requestMethod) */
    const char   *user_agent;   /* the client's User-Agent
                                   (requestClientApplication) */
    const char   *dvchost;      /* the proxy's host name (dvchost) */
    const char   *client_sni;   /* SNI the client sent inside a tunnel
                                   (destinationServiceName) */
    const char   *tls_version;  /* upstream TLS version, "TLSv1.3" (app) */
    const char   *tls_cipher;   /* upstream cipher suite (tlsCipher) */
    const char   *conn_id;      /* the client connection's id, as
                                   $certguard_id (connectionId) */

} cg_event_t;


/* The built-in signals as cg_signal_info() describes them. */
typedef struct {
    const char   *id;
    const char   *doc;          /* one line ("" if none); docs/signals.md
                                   has the rest */
    int           weight;       /* default weight */
} cg_signal_info_t;


/* Why a handshake has no verdict of the engine's; each names the one hit
 * of the result cg_result_failure() fills. */
typedef enum {
    CG_FAILURE_PROBE = 0,       /* "probe_failed": no chain to score (no
                                   connection, timeout, TLS handshake
                                   failure, no certificate) */
    CG_FAILURE_ENGINE           /* "engine_error": a chain cg_evaluate()
                                   gave no verdict for */
} cg_failure_t;


/* Policy: parsed once, with file:line errors.  Includes resolve relative
 * to the including file's directory. */
int cg_policy_load(cg_policy_t **policy, const char *path, cg_error_t *err);
void cg_policy_free(cg_policy_t *policy);
const char *cg_policy_name(const cg_policy_t *policy);

/* The index-th warning about a loaded policy (0 first), with file:line:
 * something that loads but does less than it seems to, such as an
 * exemption that trusts an issuer by its name alone.  CG_OK and *warning
 * filled, or CG_ERR_ARG past the last. */
int cg_policy_warning(const cg_policy_t *policy, unsigned index,
    cg_error_t *warning);

/*
 * Trust anchors: the system bundle (OpenSSL's default file, or its default
 * paths) together with the PEM file ca_file when it is not NULL; with
 * CG_TRUST_NO_SYSTEM in flags, ca_file alone (then required).  Either way
 * only anchors of the system bundle count as public roots (the no_sct and
 * CA/Browser Forum lifetime rules bind those only); the file's others are
 * private roots.
 */
#define CG_TRUST_NO_SYSTEM  0x1

int cg_trust_load(cg_trust_t **trust, const char *ca_file, unsigned flags,
    cg_error_t *err);
void cg_trust_free(cg_trust_t *trust);

/*
 * CRLs, checked against the verified path (signals revoked and
 * crl_invalid): every CRL of the file at path, PEM ("X509 CRL" blocks,
 * other blocks skipped) or DER (one or several concatenated), added to
 * *crls (NULL: a new set).  A certificate whose issuer has no CRL in the
 * set is not checked.  On error nothing is added (a new set is not made).
 * Immutable once loaded, like a trust store.
 */
int cg_crls_load(cg_crls_t **crls, const char *path, cg_error_t *err);
void cg_crls_free(cg_crls_t *crls);

/*
 * Intermediates: CA certificates (such as the intermediates the CCADB
 * publishes, which Firefox preloads) that complete a chain whose server
 * leaves its intermediate out.  They join the certificates the server sent
 * when a path is built and are never anchors: a chain that needs one still
 * ends in an anchor of the trust store.  Each of the nfiles PEM files is
 * read whole; a certificate that is not a CA (X509_check_ca) is skipped
 * with a warning, a file without any CA certificate is an error.
 * cg_intermediates_warning() gives the index-th warning (file and block)
 * like cg_policy_warning(); cg_intermediates_count() how many were kept.
 */
int cg_intermediates_load(cg_intermediates_t **pool,
    const char *const *files, unsigned nfiles, cg_error_t *err);
int cg_intermediates_warning(const cg_intermediates_t *pool, unsigned index,
    cg_error_t *warning);
unsigned cg_intermediates_count(const cg_intermediates_t *pool);
void cg_intermediates_free(cg_intermediates_t *pool);

/* GeoIP: either path may be NULL. */
int cg_geoip_open(cg_geoip_t **geoip, const char *country_db,
    const char *asn_db, cg_error_t *err);
void cg_geoip_free(cg_geoip_t *geoip);

/*
 * The input for the chain a server sent in one TLS handshake, built the
 * same way by both nginx modules and the CLI: the objects a configuration
 * scores with; the chain as received (leaf NULL: its first certificate);
 * the name checked and the destination address, where "" means not known
 * as NULL does; now 0 for the clock.  Every other field is zero: set
 * client_sni afterwards when a tunnel's ClientHello named one, memory
 * when a certificate memory is configured, and intermediates when a pool
 * is.  CG_OK, or
 * CG_ERR_ARG without a policy or a certificate (nothing to evaluate).
 */
int cg_input_handshake(cg_input_t *in, const cg_policy_t *policy,
    const cg_trust_t *trust, const cg_geoip_t *geoip, X509 *leaf,
    STACK_OF(X509) *chain, const char *name, const char *dst_addr,
    unsigned dst_port, int64_t now);

/* Evaluation: fills *res; CG_OK when a verdict was reached.  Reentrant. */
int cg_evaluate(const cg_input_t *in, cg_result_t *res);

/*
 * The result of a handshake without a verdict of the engine's, so that logs
 * and variables show what happened: verdict is what the configuration's
 * failure mode makes of it (CG_BLOCK fails closed), the one hit names the
 * failure, with detail (NULL: none) and weight 0; name is the name that
 * was to be checked (NULL: none).  CG_OK, or CG_ERR_ARG for an unknown
 * failure or verdict, *res then an empty CG_BLOCK.
 */
int cg_result_failure(cg_result_t *res, cg_failure_t failure,
    cg_verdict_t verdict, const char *name, const char *detail);

/* Whether client_sni names another host than name: the rule of the
 * sni_mismatch signal (case-insensitive, one trailing dot ignored on either
 * side), 0 when either is NULL or "".  For a caller that evaluates a chain
 * again with client_sni only when the signal could fire. */
int cg_sni_mismatch(const char *name, const char *client_sni);

/*
 * The verdict the same evaluation would have given with in->client_sni set
 * to client_sni, from a result evaluated without one (a cached verdict,
 * when a tunnel's ClientHello names its host): when cg_sni_mismatch(name,
 * client_sni) and the policy weighs sni_mismatch, its hit goes in in table
 * order (weight 0 and exempt when res->sni_exempt), the score and the
 * verdict follow the policy's thresholds.  No chain is needed: nothing
 * else depends on the client's SNI.  Exact as cg_evaluate() is, except
 * which lightest hit a full list (CG_MAX_HITS) drops.  A result that has
 * the hit already is left as it is.  CG_OK, or CG_ERR_ARG.
 */
int cg_result_with_client_sni(const cg_policy_t *policy, cg_result_t *res,
    const char *client_sni);

/*
 * A result in a compact form for shared memory (the verdict caches): the
 * members that are not zero or "", digests as bytes, built-in signals by
 * their index.  Nothing is lost: cg_result_unpack() gives back the same
 * struct (every member, and zero bytes elsewhere).  cg_result_pack()
 * writes at most len bytes and returns the length of the whole packed
 * form (a return > len means it did not fit; buf may be NULL with len 0);
 * that is at most CG_PACK_MAX.  cg_result_unpack() checks every length,
 * tag and value of buf (which another process may have written) and
 * fills *res, or leaves it zeroed and returns CG_ERR_INPUT; CG_ERR_ARG
 * without res.
 */
#define CG_PACK_MAX         (sizeof(cg_result_t) + 128)

size_t cg_result_pack(const cg_result_t *res, unsigned char *buf,
    size_t len);
int cg_result_unpack(const unsigned char *buf, size_t len, cg_result_t *res);

/* Formatters: write at most len bytes including a NUL, and return the
 * length the full output has (like snprintf), so a return >= len means
 * truncated.  Field caps keep every CEF record shorter than CG_CEF_MAX
 * bytes, whatever the certificate and the request hold (records of real
 * ones are about half of that). */
#define CG_CEF_MAX          3072

size_t cg_format_json(const cg_result_t *res, char *buf, size_t len);
size_t cg_format_cef(const cg_result_t *res, const cg_event_t *ev,
    char *buf, size_t len);
size_t cg_format_text(const cg_result_t *res, char *buf, size_t len);

/*
 * A CEF record for a request refused before any certificate was seen: the
 * destination (reason "port", "name", "special_address", "own_address",
 * "denied_address", "unresolved", "error"), the proxy credentials
 * ("auth_missing", "auth_malformed", "auth_unknown_user",
 * "auth_bad_password", "auth_error") or the
 * request itself ("not_absolute_uri", "scheme", "host", "userinfo",
 * "malformed", "method").  The
 * reason picks the event class and severity (docs/cef.md); another reason
 * is written as given, as a malformed request.  count is the number of
 * attempts the record stands for (CEF cnt, written when above 1), for a
 * caller that rate-limits its records.  ev->monitor is not consulted: a
 * refusal is always enforced.
 */
size_t cg_format_cef_refusal(const cg_event_t *ev, const char *reason,
    unsigned count, char *buf, size_t len);

/* The exemption condition that pins the CA certificate ca, as a policy
 * line: CG_PIN_SPKI "issuer_spki HEX;  # SUBJECT" (its key: survives the
 * CA's re-issue under the same key), CG_PIN_CERT "issuer_fingerprint HEX;
 * # SUBJECT" (this certificate only).  Written as the formatters write; 0
 * when the certificate's key or encoding cannot be read. */
#define CG_PIN_SPKI         0
#define CG_PIN_CERT         1

size_t cg_format_pin(X509 *ca, int kind, char *buf, size_t len);

/* Comma-separated ids of the hits that counted, e.g. "self_signed,expired". */
size_t cg_format_signal_ids(const cg_result_t *res, char *buf, size_t len);

/* "certguard 0.1.0 (OpenSSL ..., PCRE2 ..., libmaxminddb ...)": the engine
 * and the libraries it runs with, written as the formatters above write. */
size_t cg_format_version(char *buf, size_t len);

/* "allow", "tag", "block". */
const char *cg_verdict_name(cg_verdict_t v);

/* What the proxy does with a verdict: "blocked", "tagged", "allowed", or
 * "would-block" for a block in monitor mode (monitor non-zero). */
const char *cg_action_name(cg_verdict_t v, int monitor);

const char *cg_strerror(int status);

/* The built-in signals, index 0 to cg_signal_count() - 1 in table order.
 * CG_OK, or CG_ERR_ARG for an index past the last. */
unsigned cg_signal_count(void);
int cg_signal_info(unsigned index, cg_signal_info_t *info);

/* The length of the well-formed UTF-8 sequence (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF) at p, at most n bytes, or
 * 0 if p does not start one; *cp receives the code point.  For callers
 * that print text of their own the way the formatters do. */
size_t cg_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp);

/* Chains from PEM or DER bytes, leaf first; for the CLI and the fuzzers.
 * On success *chain holds at least one certificate; free with
 * sk_X509_pop_free(chain, X509_free). */
int cg_chain_parse(const unsigned char *data, size_t len,
    STACK_OF(X509) **chain, cg_error_t *err);

/*
 * Certificates a run has parsed, by their DER (cg_certs.c): a run over
 * many chain files decodes the intermediate and root they share once, as
 * OpenSSL 3.0 spends most of d2i_X509() setting up the key's decoder.
 * Bounded (a fixed number of entries; a certificate seen often keeps its
 * place).  Not thread-safe.  cg_chain_parse_cached() is cg_chain_parse()
 * through certs (NULL: none): the same certificates, the same errors.
 * The same certs can go to cg_evaluate() (cg_input_t certs).
 */

int cg_certs_new(cg_certs_t **certs);
void cg_certs_free(cg_certs_t *certs);
int cg_chain_parse_cached(const unsigned char *data, size_t len,
    cg_certs_t *certs, STACK_OF(X509) **chain, cg_error_t *err);

/* How many certificates above a leaf cg_evaluate() found in certs by their
 * bytes, and how many it did not, since cg_certs_new(). */
void cg_certs_counts(const cg_certs_t *certs, uint64_t *found,
    uint64_t *missed);

/*
 * The memo's storage in caller memory (a process-local table, or one in
 * shared memory under the caller's lock): set-associative, four keys a
 * bucket, least recently used evicted within a bucket, so its room is
 * fixed by size.  cg_memo_table_init() formats mem (CG_OK, or CG_ERR_ARG
 * when size holds less than one bucket); lookup and insert are the
 * callbacks of cg_verify_memo_t with data the table.  Not thread-safe.
 */
typedef struct {
    uint64_t      hits;
    uint64_t      misses;
    uint64_t      inserts;
    uint64_t      evictions;
    uint64_t      entries;          /* room: buckets * 4 */
} cg_memo_stats_t;

int cg_memo_table_init(void *mem, size_t size);
int cg_memo_table_lookup(void *table, const unsigned char *key);
void cg_memo_table_insert(void *table, const unsigned char *key);
void cg_memo_table_stats(const void *table, cg_memo_stats_t *stats);

/*
 * The verify step of a caller's own X509_verify_cert() (nginx's
 * proxy_ssl_verify) through memo, so that a signature is checked once per
 * handshake at most: the engine's copy of OpenSSL 3.0's internal_verify()
 * (signatures and validity times, the same errors, depths and callback
 * calls) that consults memo (NULL: none) before each X509_verify().  The
 * caller installs a function of its own with X509_STORE_CTX_set_verify()
 * that finds its memo and calls this, and only where cg_memo_supported():
 * the running libcrypto is 3.0, whose step this copies.
 */
int cg_memo_supported(void);
int cg_memo_verify(X509_STORE_CTX *ctx, const cg_verify_memo_t *memo);

/* The memo key of (issuer, subject): CG_OK, or CG_ERR_INPUT when either
 * cannot be encoded. */
int cg_memo_key(X509 *issuer, X509 *subject, unsigned char *key);

/*
 * A certificate's SHA-256 and its SubjectPublicKeyInfo's (either pointer
 * may be NULL) from one encoding of it, as X509_digest() and a digest of
 * i2d_X509_PUBKEY() would give them: which were computed.
 */
#define CG_DIGEST_CERT  0x01
#define CG_DIGEST_SPKI  0x02

int cg_cert_digests(X509 *x, unsigned char sha256[32],
    unsigned char spki[32]);

#endif /* CERTGUARD_H */
