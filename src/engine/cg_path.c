/*
 * Path building beyond OpenSSL's.  X509_verify_cert() takes, at each step,
 * the first sent certificate that can be the issuer and does not go back
 * when the path fails further up (a name constraint, an issuer of another
 * root under the same name); its alternative chains only swap in trusted
 * certificates.  When the chain as sent offers more than one issuer for a
 * certificate, the other simple paths through the sent certificates are
 * tried in turn, each as the only untrusted certificates of a
 * verification.
 *
 * Only a chain that failed comes here, and the work is bounded: chains of
 * at most CG_PATH_SENT_MAX certificates, at most CG_PATH_TRIES paths.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cg_facts.h"


#define CG_PATH_SENT_MAX    16
#define CG_PATH_TRIES       8


typedef struct {
    X509              **sent;
    unsigned            n;
    unsigned char      *issues;     /* issues[i * (n + 1) + j]: sent[j]
                                       can issue node i (0 the leaf,
                                       k the sent[k - 1]) */
    unsigned            path[CG_PATH_SENT_MAX];
    unsigned char       used[CG_PATH_SENT_MAX];
    unsigned            tries;
    cg_path_try_pt      try;
    void               *data;
    STACK_OF(X509)     *found;
    unsigned            nomem:1;
} cg_path_t;


static int cg_path_walk(cg_path_t *p, unsigned node, unsigned len);


int
cg_path_search(X509 *leaf, X509 **sent, unsigned n, cg_path_try_pt try,
    void *data, STACK_OF(X509) **found)
{
    int        branches;
    unsigned   i, j, k;
    X509      *x;
    cg_path_t  p;

    *found = NULL;

    if (n < 2 || n > CG_PATH_SENT_MAX) {
        return 0;
    }

    memset(&p, 0, sizeof(cg_path_t));
    p.sent = sent;
    p.n = n;
    p.try = try;
    p.data = data;

    p.issues = calloc((size_t) (n + 1) * n, 1);
    if (p.issues == NULL) {
        return -1;
    }

    /* names, key identifiers and key usage: no signature is checked */
    branches = 0;

    for (i = 0; i <= n; i++) {
        x = i == 0 ? leaf : sent[i - 1];
        k = 0;

        for (j = 0; j < n; j++) {
            if (j + 1 != i && X509_check_issued(sent[j], x) == X509_V_OK) {
                p.issues[i * n + j] = 1;
                k++;
            }
        }

        branches |= k > 1;
    }

    if (branches) {
        (void) cg_path_walk(&p, 0, 0);
    }

    free(p.issues);

    if (p.nomem) {
        return -1;
    }

    *found = p.found;

    return p.found != NULL;
}


/*
 * Depth first from node; a path ends where no unused sent certificate can
 * issue its last one, and is tried then.  1 stops the walk (found, out of
 * tries or of memory).
 */

static int
cg_path_walk(cg_path_t *p, unsigned node, unsigned len)
{
    int              more;
    unsigned         j, i;
    STACK_OF(X509)  *sk;

    more = 0;

    for (j = 0; j < p->n; j++) {
        if (!p->issues[node * p->n + j] || p->used[j]) {
            continue;
        }

        more = 1;
        p->used[j] = 1;
        p->path[len] = j;

        if (cg_path_walk(p, j + 1, len + 1)) {
            return 1;
        }

        p->used[j] = 0;
    }

    if (more || len == 0) {
        return 0;
    }

    if (p->tries++ == CG_PATH_TRIES) {
        return 1;
    }

    sk = sk_X509_new_reserve(NULL, (int) len);
    if (sk == NULL) {
        p->nomem = 1;
        return 1;
    }

    for (i = 0; i < len; i++) {
        (void) sk_X509_push(sk, p->sent[p->path[i]]);
    }

    switch (p->try(p->data, sk)) {

    case 1:
        p->found = sk;
        return 1;

    case -1:
        p->nomem = 1;
        sk_X509_free(sk);
        return 1;
    }

    sk_X509_free(sk);

    return 0;
}
