/*
 * The memo of verified signatures in shared memory (the engine's
 * cg_memo_table_* under the zone's mutex), one zone a module
 * ("certguard_verify_memo_http", "..._stream"), shared by its workers and
 * kept across reloads; certguard_verify_memo in http{} or stream{} sizes
 * it or turns it off.  docs/performance.md says why a hit is sound.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef NGX_CERTGUARD_MEMO_H_INCLUDED_
#define NGX_CERTGUARD_MEMO_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "certguard.h"


#define NGX_CERTGUARD_MEMO_ZONE     "certguard_verify_memo_"
#define NGX_CERTGUARD_MEMO_DEFAULT  (1024 * 1024)


/* In the module's main conf, zeroed by ngx_pcalloc(). */
typedef struct {
    ngx_uint_t                  set;        /* the directive was given */
    size_t                      size;       /* 0: off */
} ngx_certguard_memo_conf_t;


/* certguard_verify_memo off | size=SIZE; conf at cmd->offset */
char *ngx_certguard_memo_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* Declares this module's zone ("http", "stream") unless it is off; from
 * the module's postconfiguration. */
ngx_int_t ngx_certguard_memo_conf(ngx_conf_t *cf,
    ngx_certguard_memo_conf_t *mcf, const char *module);

/* Finds this module's zone in the worker's cycle; from init_process. */
ngx_int_t ngx_certguard_memo_init_process(ngx_cycle_t *cycle,
    const char *module);

/* The engine's view of this module's memo (cg_input_t verify_memo), or
 * NULL when it is off. */
const cg_verify_memo_t *ngx_certguard_memo(void);

/*
 * The worker's cache of the decoded certificates servers send above their
 * leaves
 * (cg_input_t certs), made on first use, or NULL when the memo is off (so
 * that "off" evaluates every handshake from its bytes alone); freed from
 * exit_process.
 */
cg_certs_t *ngx_certguard_certs(void);
void ngx_certguard_certs_exit_process(void);

/* What the cache found and missed since the last call, to the status
 * page's counters; after each cg_evaluate() through it. */
void ngx_certguard_certs_account(void);

/* X509_verify_cert(xs) with its signatures through the memo: nginx's own
 * verification (proxy_ssl_verify) checks a signature the engine checked,
 * or will check, once. */
int ngx_certguard_memo_verify_cert(X509_STORE_CTX *xs);


#endif /* NGX_CERTGUARD_MEMO_H_INCLUDED_ */
