/*
 * Embedded SCTs checked against a CT log list (cg_sct.c): the policy's
 * "ct_log_list FILE;", loaded once with OpenSSL's CT API, and what the
 * leaf's SCTs are against it, found once per evaluation when invalid_sct
 * or unverified_sct asks.  Internal to the engine.
 */

#ifndef CG_SCT_H
#define CG_SCT_H

#include "cg_internal.h"


/* What the leaf's embedded SCTs are against the policy's logs. */
typedef struct {
    unsigned        total;          /* SCTs in the extension */
    unsigned        valid;          /* verify against a listed log */
    unsigned        invalid;        /* from a listed log, do not verify */
    unsigned        future;         /* of those, timestamped after the
                                       evaluation time */
    unsigned        unknown;        /* from a log the list lacks */
    unsigned        unchecked;      /* unknown SCT version, or no issuer
                                       on the path to check against */
    char            log[48];        /* the first invalid one's log */
    unsigned        unreadable:1;   /* the extension does not parse */
    unsigned        failed:1;       /* out of memory: not checked */
    unsigned        done:1;
} cg_sct_facts_t;


/* "ct_log_list FILE;": OpenSSL's CT log file (CTLOG_STORE_load_file),
 * checked first so that an error names the line at fault; errors without
 * a line (the file cannot be read) are the statement's to name. */
int cg_ctlog_load(struct ctlog_store_st **store, const char *path,
    cg_error_t *err);
void cg_ctlog_free(struct ctlog_store_st *store);

#endif /* CG_SCT_H */
