/*
 * The CEF log of both modules: a file through nginx's open_file, or
 * syslog through nginx's own syslog code.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_certguard_shared.h"


char *
ngx_certguard_log_conf(ngx_conf_t *cf, ngx_certguard_log_t **logp)
{
    ngx_str_t            *value, s;
    ngx_uint_t            i;
    ngx_certguard_log_t  *log;

    if (*logp != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts != 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        *logp = NULL;
        return NGX_CONF_OK;
    }

    log = ngx_pcalloc(cf->pool, sizeof(ngx_certguard_log_t));
    if (log == NULL) {
        return NGX_CONF_ERROR;
    }

    log->min_verdict = CG_ALLOW;

    if (ngx_strncmp(value[1].data, "syslog:", 7) == 0) {

        log->syslog = ngx_pcalloc(cf->pool, sizeof(ngx_syslog_peer_t));
        if (log->syslog == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_syslog_process_conf(cf, log->syslog) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }

    } else {
        log->file = ngx_conf_open_file(cf->cycle, &value[1]);
        if (log->file == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "min_verdict=", 12) == 0) {
            s.data = value[i].data + 12;
            s.len = value[i].len - 12;

            if (s.len == 5 && ngx_strncmp(s.data, "allow", 5) == 0) {
                log->min_verdict = CG_ALLOW;

            } else if (s.len == 3 && ngx_strncmp(s.data, "tag", 3) == 0) {
                log->min_verdict = CG_TAG;

            } else if (s.len == 5 && ngx_strncmp(s.data, "block", 5) == 0) {
                log->min_verdict = CG_BLOCK;

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid parameter \"%V\": min_verdict "
                                   "must be allow, tag or block", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    *logp = log;

    return NGX_CONF_OK;
}


void
ngx_certguard_log_write(ngx_certguard_log_t *log, ngx_log_t *errlog,
    const cg_result_t *res, const cg_event_t *ev)
{
    u_char   *p, *start;
    size_t    n, room;
    ssize_t   written;
    u_char    buf[NGX_CERTGUARD_CEF_MAX + 512];

    if (log == NULL || res->verdict < log->min_verdict) {
        return;
    }

    p = buf;

    if (log->syslog) {
        /* PRI and HEADER: at most "<255>Jan 01 00:00:00 " host SP tag ": " */
        if (ngx_cycle->hostname.len + log->syslog->tag.len + 32 > 512) {
            return;
        }

        p = ngx_syslog_add_header(log->syslog, buf);
    }

    start = p;
    room = buf + sizeof(buf) - p - 1;

    n = cg_format_cef(res, ev, (char *) start, room);
    if (n >= room) {
        n = room - 1;
    }

    p = start + n;

    if (log->syslog) {
        written = ngx_syslog_send(log->syslog, buf, p - buf);

        if (written == NGX_ERROR) {
            ngx_log_error(NGX_LOG_WARN, errlog, 0,
                          "certguard: send() to syslog failed");
        }

        return;
    }

    *p++ = LF;

    if (log->file->fd == NGX_INVALID_FILE) {
        return;
    }

    /* one write() per record: O_APPEND keeps workers' records whole */

    written = ngx_write_fd(log->file->fd, buf, p - buf);

    if (written != p - buf) {
        ngx_log_error(NGX_LOG_ALERT, errlog, ngx_errno,
                      ngx_write_fd_n " to \"%s\" failed", log->file->name.data);
    }
}
