/*
 * libFuzzer target: arbitrary bytes as a chain (PEM or DER) -> verdict ->
 * JSON and CEF.  The engine must never crash, and whatever a certificate
 * says, the CEF record stays one line under the 2 KB cap and the JSON is
 * one object.  Scored again through a decoded-certificate cache and a memo
 * of verified signatures that live across inputs (cg_input_t certs and
 * verify_memo, as a worker's: the memo's walk and its chain building
 * without OpenSSL's time checks, against OpenSSL's own), the JSON is the
 * same bytes.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 \
 *       -D_GNU_SOURCE -Isrc t/fuzz/fuzz_chain.c src/cg_*.c \
 *       -lssl -lcrypto -lpcre2-8 -lmaxminddb -o fuzz_chain
 *   ./fuzz_chain t/fuzz/corpus/chain
 *
 * Environment: CERTGUARD_POLICY (default policies/default.policy relative
 * to the working directory), CERTGUARD_CA_FILE (trust anchors; default
 * t/fuzz/anchors.pem, the seeds' roots, so that fuzzed chains build paths
 * to an anchor; none when that file is missing).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "certguard.h"
#include "cg_internal.h"
#include "cg_policy.h"


static cg_policy_t  *policy;
static cg_policy_t  *pinned;        /* exemptions that look for the issuer */
static cg_trust_t   *trust;
static cg_certs_t   *certs;        /* across inputs, as a worker's */
static cg_verify_memo_t  memo;     /* the same */
static unsigned char     memo_mem[256 * 1024];

/* A pin no fuzzed chain will have: the issuer search runs to the end. */
static const char  pinned_text[] =
    "exempt {\n"
    "    issuer_spki 00000000000000000000000000000000"
    "00000000000000000000000000000000;\n"
    "}\n"
    "exempt {\n"
    "    issuer_fingerprint 00000000000000000000000000000000"
    "00000000000000000000000000000001;\n"
    "}\n";


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char  *path, *ca;
    cg_error_t   err;

    path = getenv("CERTGUARD_POLICY");
    if (path == NULL) {
        path = "policies/default.policy";
    }

    memset(&err, 0, sizeof(err));

    if (cg_policy_load(&policy, path, &err) != CG_OK) {
        fprintf(stderr, "fuzz_chain: %s:%u: %s\n", err.file, err.line,
                err.msg);
        exit(1);
    }

    if (cg_policy_load_mem(&pinned, pinned_text, sizeof(pinned_text) - 1,
                           "pinned.policy", &err) != CG_OK)
    {
        fprintf(stderr, "fuzz_chain: pinned.policy:%u: %s\n", err.line,
                err.msg);
        exit(1);
    }

    if (cg_certs_new(&certs) != CG_OK) {
        exit(1);
    }

    cg_memo_table_init(memo_mem, sizeof(memo_mem));
    memo.lookup = cg_memo_table_lookup;
    memo.insert = cg_memo_table_insert;
    memo.data = memo_mem;

    ca = getenv("CERTGUARD_CA_FILE");
    if (ca == NULL) {
        ca = access("t/fuzz/anchors.pem", R_OK) == 0 ? "t/fuzz/anchors.pem"
                                                     : NULL;
    }

    /* the file alone: runs do not depend on the machine's bundle */
    if (ca && cg_trust_load(&trust, ca, CG_TRUST_NO_SYSTEM, &err) != CG_OK) {
        fprintf(stderr, "fuzz_chain: %s: %s\n", ca, err.msg);
        exit(1);
    }

    return 0;
}


/* cg_cert_digests() gives a hostile certificate OpenSSL's two digests */

static void
digests_same(X509 *x)
{
    int             n, done;
    unsigned int    len;
    unsigned char  *der, md[32], spki[32], want[32];

    done = cg_cert_digests(x, md, spki);

    if ((done & CG_DIGEST_CERT)
        && (X509_digest(x, EVP_sha256(), want, &len) != 1
            || memcmp(md, want, 32) != 0))
    {
        abort();
    }

    if (done & CG_DIGEST_SPKI) {
        der = NULL;
        n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
        if (n <= 0
            || EVP_Digest(der, (size_t) n, want, &len, EVP_sha256(), NULL)
               != 1
            || memcmp(spki, want, 32) != 0)
        {
            abort();
        }
        OPENSSL_free(der);
    }
}


/* cg_dn_print() prints a hostile name as OpenSSL does, or not at all */

static void
dn_same(const X509_NAME *name)
{
    int          k;
    long         n;
    char        *data, buf[1024];
    static BIO  *bio;

    k = cg_dn_print(name, buf, sizeof(buf));
    if (k < 0) {
        return;
    }

    if (bio == NULL && (bio = BIO_new(BIO_s_mem())) == NULL) {
        abort();
    }

    (void) BIO_reset(bio);
    if (X509_NAME_print_ex(bio, name, 0,
                           XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0)
    {
        abort();
    }

    n = BIO_get_mem_data(bio, &data);
    if (n != k || memcmp(data, buf, (size_t) k) != 0 || buf[k] != '\0') {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    int              i;
    size_t           n;
    cg_input_t       in;
    cg_event_t       ev;
    cg_error_t       err;
    STACK_OF(X509)  *chain;
    static char      out[65536], json[65536];
    static cg_result_t  res;

    chain = NULL;

    if (cg_chain_parse(data, size, &chain, &err) != CG_OK) {
        if (chain != NULL) {
            abort();    /* an error must not hand back a chain */
        }
        return 0;
    }

    memset(&in, 0, sizeof(in));
    in.policy = policy;
    in.trust = trust;
    in.leaf = sk_X509_value(chain, 0);
    in.chain = chain;
    /* the first byte picks a name form, so both name paths run */
    in.name = size && (data[0] & 1) ? "192.0.2.1" : "www.example.com";
    in.dst_addr = "192.0.2.1";
    in.dst_port = 443;
    /* the second byte picks a time: before the seeds' roots, or inside */
    in.now = size > 1 && (data[1] & 1) ? 1800000000 : 1700000000;

    memset(&res, 0, sizeof(res));

    if (cg_evaluate(&in, &res) == CG_OK) {
        n = cg_format_json(&res, out, sizeof(out));
        if (n >= sizeof(out) || out[0] != '{' || out[n - 1] != '}'
            || memchr(out, '\n', n) != NULL)
        {
            abort();
        }

        memcpy(json, out, n + 1);

        /* the cache only spares decoding and describing the same bytes,
         * the memo only signature checks of the same bytes */
        in.certs = certs;
        in.verify_memo = cg_memo_supported() ? &memo : NULL;
        memset(&res, 0, sizeof(res));
        if (cg_evaluate(&in, &res) != CG_OK
            || cg_format_json(&res, out, sizeof(out)) != n
            || memcmp(out, json, n) != 0)
        {
            abort();
        }
        in.certs = NULL;
        in.verify_memo = NULL;

        memset(&ev, 0, sizeof(ev));
        ev.dst_addr = in.dst_addr;
        ev.dst_port = in.dst_port;
        ev.rt_ms = in.now * 1000;

        n = cg_format_cef(&res, &ev, out, sizeof(out));
        if (n >= 2048 || strncmp(out, "CEF:0|", 6) != 0
            || memchr(out, '\n', n) != NULL || memchr(out, '\r', n) != NULL)
        {
            abort();
        }

        n = cg_format_text(&res, out, sizeof(out));
        if (n >= sizeof(out)) {
            abort();
        }
    }

    in.policy = pinned;

    if (cg_evaluate(&in, &res) == CG_OK) {
        for (n = 0; n < res.nhits && n < CG_MAX_HITS; n++) {
            if (res.hits[n].exempt) {
                abort();    /* nothing has those pins */
            }
        }
    }

    for (i = 0; i < sk_X509_num(chain); i++) {
        digests_same(sk_X509_value(chain, i));
        dn_same(X509_get_subject_name(sk_X509_value(chain, i)));
        dn_same(X509_get_issuer_name(sk_X509_value(chain, i)));

        n = cg_format_pin(sk_X509_value(chain, i), i & 1, out, sizeof(out));
        if (n >= sizeof(out) || memchr(out, '\n', n) != NULL) {
            abort();
        }
    }

    sk_X509_pop_free(chain, X509_free);

    return 0;
}
