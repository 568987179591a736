/*
 * certguard_capture (ngx_certguard_capture.h): the directive, and the
 * posted event that writes a sighting with cg_capture_write().
 *
 * The write is a few small files under an flock shared by the workers: it
 * is kept out of the TLS callback, where it would add its latency to the
 * handshake, but runs in the worker, later in the same event loop turn.
 * The directory is registered with ngx_add_path(), so that nginx creates
 * it at start and gives it to the worker user, as it does temp paths.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_certguard_capture.h"
#include "cg_capture.h"


typedef struct {
    ngx_event_t           event;
    const char           *dir;
    uint64_t              max_size;
    STACK_OF(X509)       *chain;
    cg_capture_record_t   rec;
} ngx_certguard_capture_job_t;


static void ngx_certguard_capture_handler(ngx_event_t *ev);


char *
ngx_certguard_capture_set(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_certguard_capture_t  *cap = (ngx_certguard_capture_t *)
                                    ((char *) conf + cmd->offset);

    u_char      *p;
    ngx_str_t   *value, name, s;
    ngx_uint_t   i;

    if (cap->set) {
        return "is duplicate";
    }

    value = cf->args->elts;
    cap->set = 1;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts > 2) {
            return "takes no parameters with \"off\"";
        }

        cap->path = NULL;
        return NGX_CONF_OK;
    }

    cap->max_size = NGX_CERTGUARD_CAPTURE_MAX_SIZE;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "max_size=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            cap->max_size = ngx_parse_offset(&s);

            if (cap->max_size == NGX_ERROR || cap->max_size == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid max_size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    name = value[1];

    while (name.len > 1 && name.data[name.len - 1] == '/') {
        name.len--;
    }

    if (name.len == 0) {
        return "needs a directory";
    }

    if (ngx_conf_full_name(cf->cycle, &name, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* the engine takes a C string; name may be a part of an argument */

    p = ngx_pnalloc(cf->pool, name.len + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(p, name.data, name.len);
    p[name.len] = '\0';

    cap->path = ngx_pcalloc(cf->pool, sizeof(ngx_path_t));
    if (cap->path == NULL) {
        return NGX_CONF_ERROR;
    }

    cap->path->name.data = p;
    cap->path->name.len = name.len;
    cap->path->conf_file = cf->conf_file->file.name.data;
    cap->path->line = cf->conf_file->line;

    if (ngx_add_path(cf, &cap->path) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


void
ngx_certguard_capture_init(ngx_certguard_capture_t *cap)
{
    cap->path = NULL;
    cap->max_size = 0;
    cap->set = 0;
}


void
ngx_certguard_capture_merge(ngx_certguard_capture_t *prev,
    ngx_certguard_capture_t *conf)
{
    if (!conf->set) {
        *conf = *prev;
    }
}


void
ngx_certguard_capture_post(ngx_certguard_capture_t *cap, ngx_log_t *log,
    X509 *leaf, STACK_OF(X509) *chain, const cg_result_t *res,
    const char *dst_addr, ngx_uint_t dst_port, const char *client_sni)
{
    int                           i, n;
    X509                         *x;
    ngx_certguard_capture_job_t  *job;

    if (cap->path == NULL || res == NULL) {
        return;
    }

    if (leaf == NULL && chain != NULL && sk_X509_num(chain) > 0) {
        leaf = sk_X509_value(chain, 0);
    }

    if (leaf == NULL) {
        return;
    }

    job = ngx_calloc(sizeof(ngx_certguard_capture_job_t), log);
    if (job == NULL) {
        return;
    }

    /* references, not copies: the certificates outlive the connection */

    job->chain = sk_X509_new_null();
    if (job->chain == NULL || !sk_X509_push(job->chain, leaf)) {
        goto failed;
    }

    X509_up_ref(leaf);

    n = chain ? sk_X509_num(chain) : 0;

    for (i = 0; i < n; i++) {
        x = sk_X509_value(chain, i);

        if (i == 0 && (x == leaf || X509_cmp(x, leaf) == 0)) {
            continue;
        }

        if (!sk_X509_push(job->chain, x)) {
            goto failed;
        }

        X509_up_ref(x);
    }

    job->dir = (const char *) cap->path->name.data;
    job->max_size = (uint64_t) cap->max_size;

    ngx_cpystrn((u_char *) job->rec.name, (u_char *) res->name,
                sizeof(job->rec.name));
    ngx_cpystrn((u_char *) job->rec.policy, (u_char *) res->policy,
                sizeof(job->rec.policy));

    if (dst_addr) {
        ngx_cpystrn((u_char *) job->rec.dst_addr, (u_char *) dst_addr,
                    sizeof(job->rec.dst_addr));
    }

    if (client_sni) {
        ngx_cpystrn((u_char *) job->rec.client_sni, (u_char *) client_sni,
                    sizeof(job->rec.client_sni));
    }

    job->rec.dst_port = (unsigned) dst_port;
    job->rec.verdict = res->verdict;
    job->rec.last_seen = (int64_t) ngx_time();

    job->event.handler = ngx_certguard_capture_handler;
    job->event.data = job;
    job->event.log = ngx_cycle->log;

    ngx_post_event(&job->event, &ngx_posted_events);

    return;

failed:

    if (job->chain) {
        sk_X509_pop_free(job->chain, X509_free);
    }

    ngx_free(job);
}


static void
ngx_certguard_capture_handler(ngx_event_t *ev)
{
    cg_error_t                    err;
    ngx_certguard_capture_job_t  *job;

    job = ev->data;

    ngx_memzero(&err, sizeof(cg_error_t));

    if (cg_capture_write(job->dir, job->max_size, NULL, job->chain,
                         &job->rec, NULL, &err)
        != CG_OK)
    {
        ngx_log_error(NGX_LOG_ERR, ev->log, 0, "certguard: capture: %s",
                      err.msg);

    } else {
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, ev->log, 0,
                       "certguard: captured the chain of \"%s\" in %s",
                       job->rec.name, job->dir);
    }

    sk_X509_pop_free(job->chain, X509_free);
    ngx_free(job);
}
