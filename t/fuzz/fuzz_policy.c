/*
 * libFuzzer target: arbitrary bytes as a policy (cg_policy_load_mem), and,
 * selected by a first byte below 0x05, as the other inputs of the policy
 * language: a pattern list, a blocklist (SSLBL CSV or hex), a CIDR and an
 * address, a single pattern.  The parser must never crash nor leak, every
 * error must carry a message, and whatever loads must be consistent: a
 * sorted digest set finds each of its entries, a loaded policy's patterns
 * can be matched.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 \
 *       -D_GNU_SOURCE -Isrc t/fuzz/fuzz_policy.c src/cg_*.c \
 *       -lssl -lcrypto -lpcre2-8 -lmaxminddb -o fuzz_policy
 *   ./fuzz_policy t/fuzz/corpus/policy
 *
 * The memory loader refuses "include" and "list", so inputs cannot make the
 * fuzzer read files.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cg_internal.h"
#include "cg_policy.h"


int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);


static void
check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_policy: invariant broken: %s\n", what);
        abort();
    }
}


static void
fuzz_policy(const char *data, size_t size)
{
    size_t        i, j;
    unsigned      k;
    cg_error_t    err, w;
    cg_policy_t  *p;

    memset(&err, 0, sizeof(err));

    if (cg_policy_load_mem(&p, data, size, "fuzz.policy", &err) != CG_OK) {
        check(p == NULL, "failed load returns no policy");
        check(err.msg[0] != '\0', "failed load has a message");
        check(strcmp(err.file, "fuzz.policy") == 0, "error names the input");
        return;
    }

    check(p != NULL, "load returns a policy");
    check(cg_policy_name(p)[0] != '\0', "policy has a name");
    check(p->block_threshold >= p->tag_threshold, "block >= tag");

    /* what was loaded can be used: match every pattern against the input */
    for (i = 0; i < p->nrules; i++) {
        (void) cg_pattern_match(&p->rules[i].pattern, data, size);
    }

    for (i = 0; i < p->nexempts; i++) {
        (void) cg_patlist_match(&p->exempts[i].sni, data, size);
        (void) cg_patlist_match(&p->exempts[i].issuer, data, size);

        for (j = 0; j < p->exempts[i].fingerprint.n; j++) {
            check(cg_digestset_find(&p->exempts[i].fingerprint,
                                    p->exempts[i].fingerprint.items[j].md,
                                    p->exempts[i].fingerprint.items[j].len)
                  != NULL, "exempt fingerprint found");
        }

        for (j = 0; j < p->exempts[i].issuer_spki.n; j++) {
            check(p->exempts[i].issuer_spki.items[j].len == 32,
                  "issuer_spki is a SHA-256");
        }

        for (j = 0; j < p->exempts[i].issuer_fingerprint.n; j++) {
            check(p->exempts[i].issuer_fingerprint.items[j].len == 32,
                  "issuer_fingerprint is a SHA-256");
        }
    }

    /* at most one warning an exemption, each with a line */
    for (k = 0; cg_policy_warning(p, k, &w) == CG_OK; k++) {
        check(k < p->nexempts, "no more warnings than exemptions");
        check(w.line > 0 && w.msg[0] != '\0', "a warning has line and text");
    }

    cg_policy_free(p);
}


static void
fuzz_patlist(const char *data, size_t size, int host)
{
    cg_error_t    err;
    cg_patlist_t  l;

    memset(&l, 0, sizeof(l));

    if (cg_patlist_load_mem(&l, data, size, "fuzz.list", host, &err)
        != CG_OK)
    {
        check(err.line > 0, "list error has a line");
    }

    (void) cg_patlist_match(&l, data, size);
    cg_patlist_free(&l);
}


static void
fuzz_digests(const char *data, size_t size)
{
    size_t          i;
    cg_error_t      err;
    cg_digestset_t  s;

    memset(&s, 0, sizeof(s));

    if (cg_digestset_load_mem(&s, data, size, "fuzz.csv", &err) != CG_OK) {
        check(err.line > 0, "blocklist error has a line");
    }

    cg_digestset_sort(&s);

    for (i = 0; i < s.n; i++) {
        check(s.items[i].len == 20 || s.items[i].len == 32, "digest length");
        check(cg_digestset_find(&s, s.items[i].md, s.items[i].len)
              == &s.items[i], "sorted set finds each entry");
        check(i == 0 || s.items[i - 1].len < s.items[i].len
              || (s.items[i - 1].len == s.items[i].len
                  && memcmp(s.items[i - 1].md, s.items[i].md,
                            s.items[i].len) < 0),
              "sorted, without duplicates");
    }

    cg_digestset_free(&s);
}


static void
fuzz_cidr(const char *data, size_t size)
{
    char        *text, *addr;
    cg_cidr_t    c;

    /* "CIDR\0ADDRESS": both NUL-terminated copies */
    text = malloc(size + 2);
    if (text == NULL) {
        return;
    }

    memcpy(text, data, size);
    text[size] = '\0';
    text[size + 1] = '\0';
    addr = text + strlen(text) + 1;
    if (addr > text + size) {
        addr = text + size + 1;
    }

    if (cg_cidr_parse(&c, text) == 0) {
        check(c.prefix <= (c.family == AF_INET ? 32u : 128u),
              "prefix in range");
        (void) cg_cidr_match(&c, addr);
        check(cg_cidr_match(&c, text) == 1 || strchr(text, '/') != NULL,
              "a bare address matches itself");
    }

    free(text);
}


static void
fuzz_pattern(const char *data, size_t size, int host)
{
    char         *text;
    cg_error_t    err;
    cg_pattern_t  p;

    text = strndup(data, size);
    if (text == NULL) {
        return;
    }

    if (cg_pattern_compile(&p, text, host, &err) == CG_OK) {
        (void) cg_pattern_match(&p, data, size);
        (void) cg_pattern_match(&p, "", 0);
        cg_pattern_free(&p);
    }

    free(text);
}


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char  *d = (const char *) data;

    if (size == 0 || data[0] > 0x04) {
        fuzz_policy(d, size);
        return 0;
    }

    switch (data[0]) {
    case 0x00:
        fuzz_patlist(d + 1, size - 1, size > 1 && (data[1] & 1));
        break;
    case 0x01:
        fuzz_digests(d + 1, size - 1);
        break;
    case 0x02:
        fuzz_cidr(d + 1, size - 1);
        break;
    case 0x03:
        fuzz_pattern(d + 1, size - 1, 0);
        break;
    default:
        fuzz_pattern(d + 1, size - 1, 1);
        break;
    }

    return 0;
}
