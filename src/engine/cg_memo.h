/*
 * The memo of verified signatures inside the engine (cg_memo.c): the hook
 * cg_facts.c calls on each X509_STORE_CTX it verifies with.
 */

#ifndef CG_MEMO_H
#define CG_MEMO_H

#include <openssl/x509.h>

#include "certguard.h"


/*
 * Makes ctx's verify step the memo's when in->verify_memo is set and
 * cg_memo_supported(); ctx's app data must be the evaluation's cg_facts_t
 * (its in is read when the step runs).
 */
void cg_memo_hook(X509_STORE_CTX *ctx, const cg_input_t *in);


#endif /* CG_MEMO_H */
