/*
 * The certificate memory in nginx (see ngx_certguard_memory.h): the
 * directive, the per-worker handle, and the writer timer.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_certguard_memory.h"


/* ngx_path_t data of a certguard memory: the same value in both modules'
 * .so (nginx only compares it), unlike any address of their own */
#define NGX_CERTGUARD_MEMORY_TAG    ((void *) (uintptr_t) 0x63676d)


static ngx_int_t ngx_certguard_memory_open(ngx_cycle_t *cycle,
    ngx_certguard_memory_t *m);
static void ngx_certguard_memory_close(ngx_certguard_memory_t *m);
static void ngx_certguard_memory_tick(ngx_event_t *ev);
static void ngx_certguard_memory_write(ngx_certguard_memory_t *m,
    ngx_uint_t max);


char *
ngx_certguard_memory_conf(ngx_conf_t *cf, ngx_certguard_memory_t **memp)
{
    size_t                   giga;
    ssize_t                  size;
    ngx_str_t               *value, s;
    ngx_uint_t               i;
    ngx_path_t              *path;
    ngx_certguard_memory_t  *m, *first;

    value = cf->args->elts;

    m = ngx_pcalloc(cf->pool, sizeof(ngx_certguard_memory_t));
    if (m == NULL) {
        return NGX_CONF_ERROR;
    }

    m->path.name = value[1];

    if (m->path.name.len > 1
        && m->path.name.data[m->path.name.len - 1] == '/')
    {
        m->path.name.len--;
    }

    if (ngx_conf_full_name(cf->cycle, &m->path.name, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* the engine and ngx_create_paths() take it NUL-terminated */

    s.len = m->path.name.len;
    s.data = ngx_pnalloc(cf->pool, s.len + 1);
    if (s.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(s.data, m->path.name.data, s.len);
    s.data[s.len] = '\0';
    m->path.name = s;

    if (m->path.name.len >= CG_NAME_MAX - sizeof("/data.mdb")) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "certguard_memory path \"%V\" is too long",
                           &m->path.name);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "size=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;
            giga = 1;

            /* ngx_parse_size() knows k and m; a memory may want g */
            if (s.len > 1 && (s.data[s.len - 1] == 'g'
                              || s.data[s.len - 1] == 'G'))
            {
                s.len--;
                giga = 1024 * 1024 * 1024;
            }

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR
                || (size_t) size > NGX_MAX_SIZE_T_VALUE / giga
                || (size_t) size * giga < CG_MEMORY_SIZE_MIN)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid certguard_memory size \"%V\", "
                                   "expected at least %uzk",
                                   &value[i], CG_MEMORY_SIZE_MIN / 1024);
                return NGX_CONF_ERROR;
            }

            m->size = (size_t) size * giga;
            m->size_set = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (m->size == 0) {
        m->size = CG_MEMORY_SIZE_DEFAULT;
    }

    /* a directory of another module's (a temp path) is refused by
     * ngx_add_path(): its data differs */

    m->path.data = NGX_CERTGUARD_MEMORY_TAG;
    m->path.conf_file = cf->conf_file->file.name.data;
    m->path.line = cf->conf_file->line;

    path = &m->path;

    if (ngx_add_path(cf, &path) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (path != &m->path) {
        /* the other module's memory of this directory: the same one */

        first = (ngx_certguard_memory_t *) path;

        if (m->size_set && first->size_set && m->size != first->size) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "certguard_memory \"%V\" has another size "
                               "in %s:%ui", &first->path.name,
                               first->path.conf_file, first->path.line);
            return NGX_CONF_ERROR;
        }

        if (m->size_set) {
            first->size = m->size;
            first->size_set = 1;
        }

        m = first;
    }

    *memp = m;

    return NGX_CONF_OK;
}


/*
 * Both modules call these from their init_process and exit_process; each
 * call opens (closes) every memory of the cycle once for that module: the
 * memories are found among the cycle's paths by their tag, so neither
 * module looks up its own, and a memory both use is opened by the first
 * call and closed by the last.
 */

ngx_int_t
ngx_certguard_memory_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t    i;
    ngx_path_t  **path;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;      /* cache managers and helpers do not score */
    }

    path = cycle->paths.elts;

    for (i = 0; i < cycle->paths.nelts; i++) {
        if (path[i]->data == NGX_CERTGUARD_MEMORY_TAG
            && ngx_certguard_memory_open(cycle,
                                         (ngx_certguard_memory_t *) path[i])
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


void
ngx_certguard_memory_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t    i;
    ngx_path_t  **path;

    path = cycle->paths.elts;

    for (i = 0; i < cycle->paths.nelts; i++) {
        if (path[i]->data == NGX_CERTGUARD_MEMORY_TAG) {
            ngx_certguard_memory_close((ngx_certguard_memory_t *) path[i]);
        }
    }
}


static ngx_int_t
ngx_certguard_memory_open(ngx_cycle_t *cycle, ngx_certguard_memory_t *m)
{
    cg_error_t  err;

    if (m->users++ > 0) {
        return NGX_OK;      /* opened by the other module */
    }

    m->log = cycle->log;

    m->ring = ngx_alloc(NGX_CERTGUARD_MEMORY_RING
                        * sizeof(cg_memory_sighting_t), cycle->log);
    if (m->ring == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&err, sizeof(cg_error_t));

    if (cg_memory_open(&m->mem, (const char *) m->path.name.data, m->size,
                       0, &err)
        != CG_OK)
    {
        ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                      "certguard: %s, scoring without the certificate "
                      "memory", err.msg);
        m->mem = NULL;
        ngx_free(m->ring);
        m->ring = NULL;
        return NGX_OK;
    }

    m->tick.handler = ngx_certguard_memory_tick;
    m->tick.data = m;
    m->tick.log = cycle->log;
    m->tick.cancelable = 1;

    return NGX_OK;
}


static void
ngx_certguard_memory_close(ngx_certguard_memory_t *m)
{
    if (m->users == 0 || --m->users > 0 || m->mem == NULL) {
        return;
    }

    if (m->tick.timer_set) {
        ngx_del_timer(&m->tick);
    }

    /* what is queued: the ring is bounded, so is this */
    ngx_certguard_memory_write(m, NGX_CERTGUARD_MEMORY_RING);

    cg_memory_close(m->mem);
    m->mem = NULL;

    ngx_free(m->ring);
    m->ring = NULL;
}


cg_memory_t *
ngx_certguard_memory_handle(ngx_certguard_memory_t *m)
{
    return m ? m->mem : NULL;
}


void
ngx_certguard_memory_queue(ngx_certguard_memory_t *m, const cg_input_t *in,
    const cg_result_t *res)
{
    cg_memory_sighting_t  *s;

    if (m == NULL || m->mem == NULL || in->name == NULL) {
        return;
    }

    if (m->nqueued == NGX_CERTGUARD_MEMORY_RING) {
        m->dropped++;
        return;
    }

    s = &m->ring[(m->head + m->nqueued) % NGX_CERTGUARD_MEMORY_RING];

    if (cg_memory_sighting(s, in, res) != CG_OK) {
        return;
    }

    m->nqueued++;

    if (!m->tick.timer_set) {
        ngx_add_timer(&m->tick, NGX_CERTGUARD_MEMORY_TICK);
    }
}


static void
ngx_certguard_memory_tick(ngx_event_t *ev)
{
    ngx_certguard_memory_t  *m = ev->data;

    if (m->dropped) {
        ngx_log_error(NGX_LOG_WARN, m->log, 0,
                      "certguard: certificate memory: %ui sightings "
                      "dropped, the queue was full", m->dropped);
        m->dropped = 0;
    }

    ngx_certguard_memory_write(m, NGX_CERTGUARD_MEMORY_BATCH);

    if (m->nqueued && !ngx_exiting) {
        ngx_add_timer(&m->tick, NGX_CERTGUARD_MEMORY_TICK / 10);
    }
}


/* At most max sightings, oldest first, a batch per write transaction. */
static void
ngx_certguard_memory_write(ngx_certguard_memory_t *m, ngx_uint_t max)
{
    ngx_uint_t   n;
    cg_error_t   err;

    while (m->nqueued && max) {
        /* a batch is contiguous in the ring */
        n = ngx_min(m->nqueued, NGX_CERTGUARD_MEMORY_RING - m->head);
        n = ngx_min(n, ngx_min(max, NGX_CERTGUARD_MEMORY_BATCH));

        ngx_memzero(&err, sizeof(cg_error_t));

        if (cg_memory_record(m->mem, &m->ring[m->head], n, &err) != CG_OK) {
            ngx_log_error(NGX_LOG_ERR, m->log, 0,
                          "certguard: %s, %ui sightings lost", err.msg, n);
        }

        ngx_log_debug1(NGX_LOG_DEBUG_CORE, m->log, 0,
                       "certguard: memory: %ui sightings written", n);

        m->head = (m->head + n) % NGX_CERTGUARD_MEMORY_RING;
        m->nqueued -= n;
        max -= n;
    }
}
