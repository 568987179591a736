/*
 * Policy and list loading from memory, and the file reader they share.
 *
 * For the fuzzers and for callers that already hold the text; the nginx
 * module and the CLI use cg_policy_load() from certguard.h.  Not installed.
 */

#ifndef CG_POLICY_H
#define CG_POLICY_H

#include "cg_internal.h"


/* Largest policy, list or blocklist file read (the full SSLBL CSV is about
 * 2 MB). */
#define CG_FILE_MAX         (64 * 1024 * 1024)


/*
 * Load a policy from memory.  name stands for the file in errors and gives
 * the default policy name.  A policy loaded this way may not use "include"
 * or "list": it has no directory to resolve them against, and a fuzzer must
 * not make it read arbitrary files.
 */
int cg_policy_load_mem(cg_policy_t **policy, const char *data, size_t len,
    const char *name, cg_error_t *err);

/* The list parsers behind cg_patlist_load() and cg_digestset_load(); name
 * is the file name used in errors.  Entries are appended; digest sets must
 * be sorted with cg_digestset_sort() before cg_digestset_find(). */
int cg_patlist_load_mem(cg_patlist_t *l, const char *data, size_t len,
    const char *name, int host, cg_error_t *err);
int cg_digestset_load_mem(cg_digestset_t *s, const char *data, size_t len,
    const char *name, cg_error_t *err);

/* Read a regular file whole, NUL-terminated, at most CG_FILE_MAX bytes;
 * free *data with free(). */
int cg_file_read(const char *path, char **data, size_t *len,
    cg_error_t *err);

#endif /* CG_POLICY_H */
