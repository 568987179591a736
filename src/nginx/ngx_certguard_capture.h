/*
 * certguard_capture DIR [max_size=SIZE] | off: both modules keep each
 * chain they score cold (a cache miss) in DIR for replay with the CLI
 * (src/engine/cg_capture.h has the files).  The chain is written after the
 * handshake callback returns, from an event posted to the worker's queue:
 * the callback only takes references to the certificates.
 *
 * A module embeds ngx_certguard_capture_t in its configuration, lists the
 * directive with ngx_certguard_capture_set as its handler (the offset of
 * the member in cmd->offset, as nginx's slot handlers take it), calls
 * ngx_certguard_capture_init() and ngx_certguard_capture_merge() from its
 * create and merge handlers, and ngx_certguard_capture_post() where it
 * scored a chain.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef NGX_CERTGUARD_CAPTURE_H_INCLUDED_
#define NGX_CERTGUARD_CAPTURE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "certguard.h"


#define NGX_CERTGUARD_CAPTURE_MAX_SIZE  (16 * 1024 * 1024)


typedef struct {
    ngx_path_t       *path;         /* NULL: off */
    off_t             max_size;
    ngx_uint_t        set;          /* the directive was given here */
} ngx_certguard_capture_t;


char *ngx_certguard_capture_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_certguard_capture_init(ngx_certguard_capture_t *cap);
void ngx_certguard_capture_merge(ngx_certguard_capture_t *prev,
    ngx_certguard_capture_t *conf);

/*
 * Queues one sighting of the chain the server sent (leaf, then chain as
 * cg_input_handshake() takes them), scored as res: the name checked, the
 * verdict and the policy come from res; dst_addr may be NULL or "",
 * client_sni NULL.  Nothing when capture is off.
 */
void ngx_certguard_capture_post(ngx_certguard_capture_t *cap, ngx_log_t *log,
    X509 *leaf, STACK_OF(X509) *chain, const cg_result_t *res,
    const char *dst_addr, ngx_uint_t dst_port, const char *client_sni);


#endif /* NGX_CERTGUARD_CAPTURE_H_INCLUDED_ */
