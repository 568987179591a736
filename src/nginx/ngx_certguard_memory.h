/*
 * The certificate memory in nginx, for both modules: the directive
 * "certguard_memory PATH [size=SIZE];", a handle per worker process
 * (opened in init_process, closed in exit_process), and the writer: the
 * handshake only reads (a lookup inside cg_evaluate()) and queues its
 * sighting in a small ring of the worker's; a timer writes the ring in
 * bounded batches, one write transaction each.  docs/memory.md.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef NGX_CERTGUARD_MEMORY_H_INCLUDED_
#define NGX_CERTGUARD_MEMORY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "certguard.h"
#include "cg_memory.h"


#define NGX_CERTGUARD_MEMORY_RING       256     /* sightings queued */
#define NGX_CERTGUARD_MEMORY_BATCH      64      /* written per tick */
#define NGX_CERTGUARD_MEMORY_TICK       1000    /* ms from the first queued
                                                   sighting to its write */


/*
 * One memory per directory and cycle.  The path must be first: the HTTP
 * and the stream module (each a .so of its own) register the directory
 * with ngx_add_path(), which hands the second the first one's path, and
 * so the same object; its process opens one LMDB environment for both,
 * as LMDB requires.
 */
typedef struct {
    ngx_path_t                  path;       /* created by the master, for
                                               the workers' user */
    size_t                      size;       /* the map */
    unsigned                    size_set:1; /* size= given */

    /* per worker process */
    ngx_uint_t                  users;      /* modules that opened it */
    cg_memory_t                *mem;
    cg_memory_sighting_t       *ring;
    ngx_uint_t                  head;       /* oldest queued */
    ngx_uint_t                  nqueued;
    ngx_uint_t                  dropped;    /* ring full, since last tick */
    ngx_event_t                 tick;
    ngx_log_t                  *log;
} ngx_certguard_memory_t;


/*
 * "certguard_memory PATH [size=SIZE];" with cf->args as given: *memp is
 * the memory of PATH, the same object for the HTTP and the stream module
 * (another size= for it is an error).  The directory is created, and
 * given to the workers' user, as nginx does for its temp paths.
 */
char *ngx_certguard_memory_conf(ngx_conf_t *cf, ngx_certguard_memory_t **memp);

/* From each module's init_process and exit_process: every memory of the
 * cycle, whichever module named it, is opened by the first module's call
 * and closed by the last one's.  A memory that cannot be opened is logged
 * and left off: the worker scores without it. */
ngx_int_t ngx_certguard_memory_init_process(ngx_cycle_t *cycle);
void ngx_certguard_memory_exit_process(ngx_cycle_t *cycle);

/* The handle for cg_input_t's memory: NULL when m is NULL or not open. */
cg_memory_t *ngx_certguard_memory_handle(ngx_certguard_memory_t *m);

/* Queues the sighting of an evaluated handshake (a name is needed); never
 * writes.  A full ring drops the sighting and counts it. */
void ngx_certguard_memory_queue(ngx_certguard_memory_t *m,
    const cg_input_t *in, const cg_result_t *res);


#endif /* NGX_CERTGUARD_MEMORY_H_INCLUDED_ */
