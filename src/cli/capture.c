/*
 * Reading what certguard_capture wrote: the chain files that arguments
 * name (a capture directory, its files, or any chain files), each chain
 * with its sidecar, and the name, destination and time a chain is scored
 * with, so that check, diff and report replay what the proxy saw.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "cli.h"


typedef struct {
    char   **v;
    int      n;
    int      size;
} cli_list_t;


static int cli_list_add(cli_list_t *l, const char *dir, const char *name);
static int cli_names_cmp(const void *a, const void *b);
static int cli_inputs_dir(cli_list_t *l, const char *dir);
static int cli_ends(const char *s, const char *suffix);


static int
cli_ends(const char *s, const char *suffix)
{
    size_t  n, m;

    n = strlen(s);
    m = strlen(suffix);

    return n > m && strcmp(s + n - m, suffix) == 0;
}


/* Appends dir/name (dir NULL: name), unless the last entry is the same. */
static int
cli_list_add(cli_list_t *l, const char *dir, const char *name)
{
    char    **nv, *p;
    size_t    len;

    len = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;

    p = malloc(len);
    if (p == NULL) {
        return -1;
    }

    if (dir) {
        snprintf(p, len, "%s%s%s", dir,
                 cli_ends(dir, "/") ? "" : "/", name);
    } else {
        memcpy(p, name, len);
    }

    if (l->n > 0 && strcmp(l->v[l->n - 1], p) == 0) {
        free(p);
        return 0;
    }

    if (l->n + 1 >= l->size) {
        l->size = l->size ? l->size * 2 : 64;
        nv = realloc(l->v, (size_t) l->size * sizeof(char *));
        if (nv == NULL) {
            free(p);
            return -1;
        }
        l->v = nv;
    }

    l->v[l->n++] = p;
    l->v[l->n] = NULL;

    return 0;
}


static int
cli_names_cmp(const void *a, const void *b)
{
    return strcmp(*(char * const *) a, *(char * const *) b);
}


/* The directory's *.pem files in name order; temporary files (".tmp-")
 * and other hidden files are not chains. */
static int
cli_inputs_dir(cli_list_t *l, const char *dir)
{
    int             n, size, i, rc;
    DIR            *d;
    char          **names, **nv, safe[512];
    struct dirent  *de;

    d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "certguard: %s: %s\n",
                cli_safe(dir, safe, sizeof(safe)), strerror(errno));
        return 1;
    }

    names = NULL;
    n = 0;
    size = 0;
    rc = 0;

    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !cli_ends(de->d_name, ".pem")) {
            continue;
        }

        if (n == size) {
            size = size ? size * 2 : 64;
            nv = realloc(names, (size_t) size * sizeof(char *));
            if (nv == NULL) {
                rc = -1;
                break;
            }
            names = nv;
        }

        names[n] = strdup(de->d_name);
        if (names[n] == NULL) {
            rc = -1;
            break;
        }

        n++;
    }

    closedir(d);

    if (rc == 0 && n == 0) {
        fprintf(stderr, "certguard: %s: no .pem files\n",
                cli_safe(dir, safe, sizeof(safe)));
        rc = 1;
    }

    if (rc == 0) {
        qsort(names, (size_t) n, sizeof(char *), cli_names_cmp);
    }

    for (i = 0; i < n; i++) {
        if (rc == 0 && cli_list_add(l, dir, names[i]) != 0) {
            rc = -1;
        }

        free(names[i]);
    }

    free(names);

    return rc;
}


int
cli_inputs(char **args, int nargs, char ***paths, int *npaths)
{
    int           i, problems, rc;
    char         *pem;
    size_t        len;
    struct stat   st;
    cli_list_t    l;

    memset(&l, 0, sizeof(l));
    problems = 0;
    *paths = NULL;
    *npaths = 0;

    for (i = 0; i < nargs; i++) {

        if (strcmp(args[i], "-") != 0 && stat(args[i], &st) == 0
            && S_ISDIR(st.st_mode))
        {
            rc = cli_inputs_dir(&l, args[i]);

        } else if (cli_ends(args[i], ".json")) {

            /* a sidecar stands for the chain beside it */

            len = strlen(args[i]);
            pem = malloc(len);
            if (pem == NULL) {
                rc = -1;

            } else {
                memcpy(pem, args[i], len - 5);
                memcpy(pem + len - 5, ".pem", 5);

                rc = (stat(pem, &st) == 0)
                     ? cli_list_add(&l, NULL, pem)
                     : cli_list_add(&l, NULL, args[i]);
                free(pem);
            }

        } else {
            rc = cli_list_add(&l, NULL, args[i]);
        }

        if (rc < 0) {
            fputs("certguard: out of memory\n", stderr);
            cli_inputs_free(l.v);
            return -1;
        }

        problems += rc;
    }

    if (l.v == NULL) {
        l.v = calloc(1, sizeof(char *));
        if (l.v == NULL) {
            fputs("certguard: out of memory\n", stderr);
            return -1;
        }
    }

    *paths = l.v;
    *npaths = l.n;

    return problems;
}


void
cli_inputs_free(char **paths)
{
    char  **p;

    if (paths == NULL) {
        return;
    }

    for (p = paths; *p; p++) {
        free(*p);
    }

    free(paths);
}


int
cli_chain_load(cli_chain_t *ch, const char *path, const cli_context_t *ctx)
{
    int             rc;
    char            safe[512], msg[512], *side;
    size_t          len;
    cg_error_t      err;
    const char     *problem;
    struct stat     st;
    unsigned char  *data;

    memset(ch, 0, sizeof(cli_chain_t));
    ch->path = path;

    cli_safe(path, safe, sizeof(safe));

    if (cli_ends(path, ".json")) {
        fprintf(stderr, "certguard: %s: a sidecar without its chain "
                "(.pem)\n", safe);
        return -1;
    }

    problem = NULL;
    if (cli_read_file(path, &data, &len, &problem) != 0) {
        fprintf(stderr, "certguard: %s: %s\n", safe, problem);
        return -1;
    }

    memset(&err, 0, sizeof(err));

    ch->crls = ctx->crls;
    ch->certs = ctx->certs;

    rc = cg_chain_parse_cached(data, len, ctx->certs, &ch->chain, &err);
    free(data);

    if (rc != CG_OK || ch->chain == NULL || sk_X509_num(ch->chain) < 1) {
        fprintf(stderr, "certguard: %s: %s\n", safe,
                err.msg[0] ? cli_safe(err.msg, msg, sizeof(msg))
                           : cg_strerror(rc));
        cli_chain_free(ch);
        return -1;
    }

    /* x.pem's sidecar is x.json; a chain file without one is fine */

    if (cli_ends(path, ".pem")) {
        len = strlen(path);
        side = malloc(len + 2);
        if (side == NULL) {
            fprintf(stderr, "certguard: %s: out of memory\n", safe);
            cli_chain_free(ch);
            return -1;
        }

        memcpy(side, path, len - 4);
        memcpy(side + len - 4, ".json", 6);

        memset(&err, 0, sizeof(err));
        rc = CG_OK;

        if (stat(side, &st) == 0) {
            rc = cg_capture_read(side, &ch->rec, &err);
            ch->has_rec = (rc == CG_OK);
        }

        if (rc != CG_OK) {
            fprintf(stderr, "certguard: %s: ",
                    cli_safe(side, safe, sizeof(safe)));
            fprintf(stderr, "%s\n", cli_safe(err.msg, msg, sizeof(msg)));
            free(side);
            cli_chain_free(ch);
            return -1;
        }

        free(side);
    }

    ch->name = ctx->sni;
    ch->client_sni = ctx->client_sni;
    ch->dst_addr = ctx->dst_addr;
    ch->dst_port = ctx->dst_port;
    ch->at = ctx->at;

    if (ch->has_rec) {
        if (ch->name == NULL && ch->rec.name[0]) {
            ch->name = ch->rec.name;
        }

        if (ch->client_sni == NULL && ch->rec.client_sni[0]) {
            ch->client_sni = ch->rec.client_sni;
        }

        if (ch->dst_addr == NULL && ch->rec.dst_addr[0]) {
            ch->dst_addr = ch->rec.dst_addr;
            ch->dst_port = ch->rec.dst_port;
        }

        /* when it was last scored, so that its verdict is reproduced */
        if (!ctx->has_at && ch->rec.last_seen) {
            ch->at = ch->rec.last_seen;
        }
    }

    return 0;
}


void
cli_chain_free(cli_chain_t *ch)
{
    if (ch->chain) {
        sk_X509_pop_free(ch->chain, X509_free);
        ch->chain = NULL;
    }
}


int
cli_chain_score(const cli_chain_t *ch, const cg_policy_t *policy,
    const cg_trust_t *trust, const cg_geoip_t *geoip, cg_memory_t *memory,
    cg_result_t *res, cg_input_t *inp)
{
    int         rc;
    char        safe[512];
    cg_input_t  in;

    rc = cg_input_handshake(&in, policy, trust, geoip, NULL, ch->chain,
                            ch->name, ch->dst_addr, ch->dst_port, ch->at);
    if (rc == CG_OK) {
        in.client_sni = ch->client_sni;
        in.memory = memory;
        in.crls = ch->crls;
        in.ocsp = ch->ocsp;
        in.ocsp_len = ch->ocsp_len;
        in.intermediates = ch->intermediates;
        in.max_depth = ch->max_depth;
        in.max_depth_on = ch->max_depth_on;
        in.verify_memo = cli_verify_memo();
        in.certs = in.verify_memo ? ch->certs : NULL;
        rc = cg_evaluate(&in, res);
    }

    if (inp) {
        *inp = in;
    }

    if (rc != CG_OK) {
        fprintf(stderr, "certguard: %s: no verdict: %s\n",
                cli_safe(ch->path, safe, sizeof(safe)), cg_strerror(rc));
        return -1;
    }

    return 0;
}
