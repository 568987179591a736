/*
 * What every caller does around one TLS handshake, in one place so that the
 * HTTP module, the stream module and the CLI do it alike: the input for
 * cg_evaluate(), and a result when no verdict of the engine's can be had.
 */

#include <string.h>

#include "cg_facts.h"


int
cg_input_handshake(cg_input_t *in, const cg_policy_t *policy,
    const cg_trust_t *trust, const cg_geoip_t *geoip, X509 *leaf,
    STACK_OF(X509) *chain, const char *name, const char *dst_addr,
    unsigned dst_port, int64_t now)
{
    if (in == NULL) {
        return CG_ERR_ARG;
    }

    memset(in, 0, sizeof(cg_input_t));

    if (leaf == NULL && chain != NULL && sk_X509_num(chain) > 0) {
        leaf = sk_X509_value(chain, 0);
    }

    in->policy = policy;
    in->trust = trust;
    in->geoip = geoip;
    in->leaf = leaf;
    in->chain = chain;
    in->name = (name && name[0]) ? name : NULL;
    in->dst_addr = (dst_addr && dst_addr[0]) ? dst_addr : NULL;
    in->dst_port = dst_port;
    in->now = now;

    if (policy == NULL || leaf == NULL) {
        return CG_ERR_ARG;
    }

    return CG_OK;
}


int
cg_result_failure(cg_result_t *res, cg_failure_t failure,
    cg_verdict_t verdict, const char *name, const char *detail)
{
    const char  *id;

    if (res == NULL) {
        return CG_ERR_ARG;
    }

    memset(res, 0, sizeof(cg_result_t));

    switch (failure) {

    case CG_FAILURE_PROBE:
        id = "probe_failed";
        break;

    case CG_FAILURE_ENGINE:
        id = "engine_error";
        break;

    default:
        id = NULL;
    }

    /* a caller that ignores the status still fails closed */

    if (id == NULL
        || (verdict != CG_ALLOW && verdict != CG_TAG && verdict != CG_BLOCK))
    {
        res->verdict = CG_BLOCK;
        return CG_ERR_ARG;
    }

    res->verdict = verdict;
    res->nhits = 1;
    cg_strlcpy(res->hits[0].id, id, sizeof(res->hits[0].id));

    /* the same text rules as an evaluated result: printable UTF-8 */

    if (detail) {
        cg_utf8_copy(res->hits[0].detail, sizeof(res->hits[0].detail),
                     detail, strlen(detail));
    }

    if (name) {
        cg_utf8_copy(res->name, sizeof(res->name), name, strlen(name));
    }

    return CG_OK;
}
