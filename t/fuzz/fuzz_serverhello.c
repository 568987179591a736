/*
 * libFuzzer target: arbitrary bytes as what a destination sends first in
 * a tunnel, read by the stream module's check of the certificate a client
 * receives (server-controlled input).  Whatever arrives, the parser
 * answers one of its statuses; a chain comes with CG_OK alone and holds at
 * least one certificate; and every prefix of an input that gives a chain
 * asks for more or gives the same answer, so a server writing slowly is
 * read the same as one writing at once.
 *
 *   scripts/fuzz.sh 60 fuzz_serverhello
 */

#include <stdlib.h>

#include "cg_serverhello.h"


int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    int              rc, prc;
    size_t           len;
    unsigned         version;
    STACK_OF(X509)  *chain;

    rc = cg_serverhello_chain(data, size, &version, &chain);

    switch (rc) {

    case CG_OK:
        if (chain == NULL || sk_X509_num(chain) < 1) {
            abort();
        }
        sk_X509_pop_free(chain, X509_free);
        break;

    case CG_SERVERHELLO_AGAIN:
    case CG_SERVERHELLO_ENCRYPTED:
    case CG_SERVERHELLO_NO_CERT:
    case CG_ERR_INPUT:
    case CG_ERR_NOMEM:
        if (chain != NULL) {
            abort();
        }
        break;

    default:
        abort();
    }

    if (rc != CG_OK) {
        return 0;
    }

    /* the bytes arriving in pieces: never another answer before the end */

    for (len = 0; len < size; len += 1 + len / 2) {
        prc = cg_serverhello_chain(data, len, &version, &chain);

        if (prc == CG_OK) {
            sk_X509_pop_free(chain, X509_free);
            break;
        }

        if (prc != CG_SERVERHELLO_AGAIN) {
            abort();
        }
    }

    return 0;
}
