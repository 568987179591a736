/*
 * libFuzzer target: arbitrary bytes as a stapled OCSP response, checked as
 * the engine checks a staple (cg_ocsp_check) for two leaves of a test CA,
 * one good and one revoked, at a fixed time.  A staple is whatever the
 * server sends: it must never crash, leak or leave OpenSSL errors behind,
 * and it must say something: a status, or a problem.
 *
 *   scripts/fuzz.sh SECONDS fuzz_ocsp      (seeds: t/fuzz/corpus/ocsp/)
 *
 * The seeds are DER responses of that CA made with openssl ocsp from its
 * index: good (leaf 1001), revoked (leaf 1002, keyCompromise), signed by
 * a delegated responder, and signed by another key.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "cg_facts.h"


/* 2026-12-01: the certificates run from 2020 to 2120 */
#define FUZZ_NOW    1796083200


static const char  ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBejCCASCgAwIBAgICEAAwCgYIKoZIzj0EAwIwIzEhMB8GA1UEAwwYY2VydGd1\n"
    "YXJkIGZ1enogb2NzcCByb290MCAXDTIwMDEwMTAwMDAwMFoYDzIxMjAwMTAxMDAw\n"
    "MDAwWjAjMSEwHwYDVQQDDBhjZXJ0Z3VhcmQgZnV6eiBvY3NwIHJvb3QwWTATBgcq\n"
    "hkjOPQIBBggqhkjOPQMBBwNCAATn267XVHNn+Bt41Eu0IvkF2CzHF0R3W4pcrmEf\n"
    "FK24Wv3zOhq1FON9cK8d1g/FmzGmm7HLeSLU+CHpEPv59s7Vo0IwQDAPBgNVHRMB\n"
    "Af8EBTADAQH/MA4GA1UdDwEB/wQEAwIBhjAdBgNVHQ4EFgQUdwhTZMbGYH+7KJU+\n"
    "HR2gRQniCF4wCgYIKoZIzj0EAwIDSAAwRQIgHJVgAoDVXGagxJzURPUEViy3zW4C\n"
    "XAr5nhcSqb8uam0CIQDiNCbG5slJDAl7e+4IPijlAza6418bAvzPPqj4ukc0tA==\n"
    "-----END CERTIFICATE-----\n";

static const char  leaf_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBtDCCAVmgAwIBAgICEAEwCgYIKoZIzj0EAwIwIzEhMB8GA1UEAwwYY2VydGd1\n"
    "YXJkIGZ1enogb2NzcCByb290MCAXDTIwMDEwMTAwMDAwMFoYDzIxMjAwMTAxMDAw\n"
    "MDAwWjAUMRIwEAYDVQQDDAlmdXp6LnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMB\n"
    "BwNCAATeGEL5kNnpNhEciWYswZfKg3SpC2BTM7M7XU1Uk4apQWY9Uyrz8Yvh5clw\n"
    "hp7BEGy2yDEG+ZmaZj+Sm65D/t0Jo4GJMIGGMAkGA1UdEwQCMAAwDgYDVR0PAQH/\n"
    "BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMBQGA1UdEQQNMAuCCWZ1enoudGVz\n"
    "dDAdBgNVHQ4EFgQU80oq2/s8rdk9qzEtTjAnB6rbgZswHwYDVR0jBBgwFoAUdwhT\n"
    "ZMbGYH+7KJU+HR2gRQniCF4wCgYIKoZIzj0EAwIDSQAwRgIhAOsic0yFXjAeR9Hs\n"
    "MpVmTu+QXLegQBLNyokKL7gFrccaAiEAl49B4Bi4ee6qq+ctshzQKnp3caCTes58\n"
    "68l2iV3CMW8=\n"
    "-----END CERTIFICATE-----\n";

static const char  leaf2_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBsjCCAVmgAwIBAgICEAIwCgYIKoZIzj0EAwIwIzEhMB8GA1UEAwwYY2VydGd1\n"
    "YXJkIGZ1enogb2NzcCByb290MCAXDTIwMDEwMTAwMDAwMFoYDzIxMjAwMTAxMDAw\n"
    "MDAwWjAUMRIwEAYDVQQDDAlmdXp6LnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMB\n"
    "BwNCAATeGEL5kNnpNhEciWYswZfKg3SpC2BTM7M7XU1Uk4apQWY9Uyrz8Yvh5clw\n"
    "hp7BEGy2yDEG+ZmaZj+Sm65D/t0Jo4GJMIGGMAkGA1UdEwQCMAAwDgYDVR0PAQH/\n"
    "BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMBQGA1UdEQQNMAuCCWZ1enoudGVz\n"
    "dDAdBgNVHQ4EFgQU80oq2/s8rdk9qzEtTjAnB6rbgZswHwYDVR0jBBgwFoAUdwhT\n"
    "ZMbGYH+7KJU+HR2gRQniCF4wCgYIKoZIzj0EAwIDRwAwRAIgYeM7ihlgi7EZv5xD\n"
    "EzyLytYMujUP/01PdHm/rzYrZ3wCIBm90IoIdOQsaz9y9kWY3s75z3xSCQ2Dkfu3\n"
    "KKeluwwK\n"
    "-----END CERTIFICATE-----\n";


static X509  *ca, *leaf, *leaf2;


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);


static X509 *
fuzz_cert(const char *pem)
{
    BIO   *bio;
    X509  *x;

    bio = BIO_new_mem_buf(pem, -1);
    x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);

    if (x == NULL) {
        fprintf(stderr, "fuzz_ocsp: an embedded certificate does not "
                "parse\n");
        exit(1);
    }

    return x;
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ca = fuzz_cert(ca_pem);
    leaf = fuzz_cert(leaf_pem);
    leaf2 = fuzz_cert(leaf2_pem);

    return 0;
}


static void
fuzz_one(const unsigned char *data, size_t size, X509 *x)
{
    cg_ocsp_status_t  st;

    cg_ocsp_check(data, size, x, ca, FUZZ_NOW, &st);

    /* sound and current, or a problem named */
    if (st.problem == NULL
        && !(st.verified && st.status >= 0 && st.status <= 2))
    {
        abort();
    }

    if (st.problem && st.problem[0] == '\0') {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    fuzz_one(data, size, leaf);
    fuzz_one(data, size, leaf2);

    /* the engine leaves the caller's error queue as it found it */
    if (ERR_peek_error() != 0) {
        abort();
    }

    return 0;
}
