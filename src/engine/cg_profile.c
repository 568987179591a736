/*
 * The engine's own checks of the verified path, beyond what OpenSSL's
 * verification finds: CA/Browser Forum and RFC 5280 profile rules.  They
 * run once per evaluation, when the first signal that reads them asks,
 * over the path cg_facts_verify() kept, and read what OpenSSL has already
 * decoded and cached for each certificate where it can.
 */

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cg_facts.h"


static const char  *cg_prof_text[CG_PROF_MAX - CG_PROF_BASE] = {
    "RSA modulus not a multiple of 8 bits",
    "EC key not on P-256, P-384 or P-521",
};


const char *
cg_finding_text(int code)
{
    const char  *s;

    if (code >= CG_PROF_BASE && code < CG_PROF_MAX) {
        return cg_prof_text[code - CG_PROF_BASE];
    }

    s = X509_verify_cert_error_string(code);

    return s ? s : "profile violation";
}


/*
 * A public root's own defects are not held against a chain: a root
 * program vetted it, and no server can change it (the same rule as for
 * OpenSSL's strict findings in cg_facts.c).
 */

static int
cg_profile_public_anchor(cg_facts_t *f, unsigned i)
{
    return i + 1 == f->npath && f->path_anchor
           && cg_facts_anchor_public(f, f->path[i]->x);
}


/* CA/Browser Forum BR 6.1.5: RSA moduli a multiple of 8 bits; EC keys on
 * P-256, P-384 or P-521.  Smaller keys are weak_key's. */

static void
cg_profile_key(cg_facts_t *f, unsigned i)
{
    int                     nid;
    char                    group[64];
    EVP_PKEY               *pkey;
    const cg_cert_facts_t  *c;

    c = f->path[i];

    if ((c->key_id == EVP_PKEY_RSA || c->key_id == EVP_PKEY_RSA_PSS)
        && c->key_bits > 0 && c->key_bits % 8 != 0)
    {
        cg_finding_add(&f->profile, CG_PROF_RSA_BITS, (int) i);
    }

    if (c->key_id != EVP_PKEY_EC || c->key_bits < 256) {
        return;
    }

    pkey = X509_get0_pubkey(c->x);

    /* explicit parameters name no group: a path error already */
    if (pkey == NULL
        || EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME,
                                          group, sizeof(group), NULL) != 1)
    {
        return;
    }

    nid = OBJ_sn2nid(group);

    if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1
        && nid != NID_secp521r1)
    {
        cg_finding_add(&f->profile, CG_PROF_EC_CURVE, (int) i);
    }
}


void
cg_facts_profile(cg_facts_t *f)
{
    unsigned  i;

    if (f->profile_done) {
        return;
    }

    f->profile_done = 1;

    for (i = 0; i < f->npath; i++) {
        if (cg_profile_public_anchor(f, i)) {
            continue;
        }

        cg_profile_key(f, i);
    }
}
