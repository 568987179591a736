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

        /* query strings stay out of records unless asked for: tokens and
         * personal data travel there */

        if (value[i].len == 8
            && ngx_strncmp(value[i].data, "query=on", 8) == 0)
        {
            log->keep_query = 1;
            continue;
        }

        if (value[i].len == 9
            && ngx_strncmp(value[i].data, "query=off", 9) == 0)
        {
            log->keep_query = 0;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    *logp = log;

    return NGX_CONF_OK;
}


/*
 * Room for nginx's syslog header and one record; a record is formatted
 * straight after the header, so that it leaves in one send() or write().
 */
typedef struct {
    u_char    buf[NGX_CERTGUARD_CEF_MAX + 512];
    u_char   *start;
    size_t    room;
} ngx_certguard_log_buf_t;


static ngx_int_t ngx_certguard_log_begin(ngx_certguard_log_t *log,
    ngx_certguard_log_buf_t *b);
static void ngx_certguard_log_end(ngx_certguard_log_t *log,
    ngx_log_t *errlog, ngx_certguard_log_buf_t *b, size_t n);


void
ngx_certguard_log_write(ngx_certguard_log_t *log, ngx_log_t *errlog,
    const cg_result_t *res, const cg_event_t *ev)
{
    ngx_certguard_log_buf_t  b;

    if (log == NULL || res->verdict < log->min_verdict
        || ngx_certguard_log_begin(log, &b) != NGX_OK)
    {
        return;
    }

    ngx_certguard_log_end(log, errlog, &b,
                          cg_format_cef(res, ev, (char *) b.start, b.room));
}


/* Refusals have no verdict: min_verdict does not hide them, they are the
 * attempts a SIEM most wants to see. */

void
ngx_certguard_log_refusal(ngx_certguard_log_t *log, ngx_log_t *errlog,
    const cg_event_t *ev, const char *reason, ngx_uint_t count)
{
    ngx_certguard_log_buf_t  b;

    if (log == NULL || ngx_certguard_log_begin(log, &b) != NGX_OK) {
        return;
    }

    ngx_certguard_log_end(log, errlog, &b,
                          cg_format_cef_refusal(ev, reason, (unsigned) count,
                                                (char *) b.start, b.room));
}


/*
 * The error-log line of a verdict, one shape for both modules: a block is
 * an error (Debian's default error-log level shows it), a monitor-mode
 * "would-block" a warning, the rest info.
 */

ngx_uint_t
ngx_certguard_log_verdict_level(const cg_result_t *res, ngx_uint_t monitor)
{
    if (res->verdict == CG_BLOCK) {
        return monitor ? NGX_LOG_WARN : NGX_LOG_ERR;
    }

    return NGX_LOG_INFO;
}


void
ngx_certguard_log_verdict(ngx_log_t *errlog, const cg_result_t *res,
    ngx_uint_t monitor, const char *addr, const char *tail)
{
    char        ids[512];
    ngx_uint_t  level;

    level = ngx_certguard_log_verdict_level(res, monitor);

    if (errlog->log_level < level) {
        return;
    }

    if (cg_format_signal_ids(res, ids, sizeof(ids)) == 0) {
        ngx_cpystrn((u_char *) ids, (u_char *) "none", sizeof(ids));
    }

    ngx_log_error(level, errlog, 0,
                  "certguard: %s certificate of \"%s\" at %s, score %d, "
                  "signals %s%s",
                  cg_action_name(res->verdict, (int) monitor), res->name,
                  addr, res->score, ids, tail);
}


static ngx_int_t
ngx_certguard_log_begin(ngx_certguard_log_t *log, ngx_certguard_log_buf_t *b)
{
    b->start = b->buf;

    if (log->syslog) {
        /* PRI and HEADER: at most "<255>Jan 01 00:00:00 " host SP tag ": " */
        if (ngx_cycle->hostname.len + log->syslog->tag.len + 32 > 512) {
            return NGX_DECLINED;
        }

        b->start = ngx_syslog_add_header(log->syslog, b->buf);
    }

    b->room = b->buf + sizeof(b->buf) - b->start - 1;

    return NGX_OK;
}


static void
ngx_certguard_log_end(ngx_certguard_log_t *log, ngx_log_t *errlog,
    ngx_certguard_log_buf_t *b, size_t n)
{
    u_char   *p;
    ssize_t   written;

    if (n >= b->room) {
        n = b->room - 1;
    }

    p = b->start + n;

    if (log->syslog) {
        written = ngx_syslog_send(log->syslog, b->buf, p - b->buf);

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

    written = ngx_write_fd(log->file->fd, b->buf, p - b->buf);

    if (written != p - b->buf) {
        ngx_log_error(NGX_LOG_ALERT, errlog, ngx_errno,
                      ngx_write_fd_n " to \"%s\" failed", log->file->name.data);
    }
}
