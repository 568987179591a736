/*
 * The policy language: loading, includes, the statements of docs/policy.md
 * read one by one and handed to their handlers (cg_policy_stmt.c,
 * cg_policy_exempt.c), and the checks that need the whole policy.  Words
 * come from cg_policy_lex.c.  Parsing happens once, at load; the result
 * (struct cg_policy_s in cg_internal.h) is immutable afterwards.
 *
 * Every error names the file and line it is about and what was expected,
 * because the people reading it are editing a policy under pressure.
 */

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <libpsl.h>

#include "cg_policy.h"
#include "cg_policy_parse.h"
#include "cg_sct.h"


typedef int (*cg_handler_pt)(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);

typedef struct {
    const char     *name;
    cg_handler_pt   handler;
    unsigned        min;        /* arguments after the name */
    unsigned        max;
    unsigned        block:1;
    const char     *usage;
} cg_command_t;


static int cg_parse_src(cg_parse_t *ps, cg_src_t *src);
static int cg_command_check(const cg_command_t *cmd, cg_src_t *src,
    cg_stmt_t *st, cg_error_t *err);
static int cg_parse_finish(cg_parse_t *ps);


static const cg_command_t  cg_commands[] = {
    { "name", cg_cmd_name, 1, 1, 0, "name NAME;" },
    { "include", cg_cmd_include, 1, 1, 0, "include FILE;" },
    { "threshold", cg_cmd_threshold, 2, 2, 0,
      "threshold tag|block N;" },
    { "weight", cg_cmd_weight, 2, 2, 0, "weight SIGNAL N;" },
    { "window", cg_cmd_window, 2, 3, 0,
      "window SIGNAL DURATION [DURATION];" },
    { "list", cg_cmd_list, 2, 2, 0, "list KIND FILE;" },
    { "geo_country", cg_cmd_geo_country, 2, CG_ARGS_MAX, 0,
      "geo_country WEIGHT CC...;" },
    { "geo_asn", cg_cmd_geo_asn, 2, CG_ARGS_MAX, 0,
      "geo_asn WEIGHT ASN...;" },
    { "rule", cg_cmd_rule, 4, 5, 0,
      "rule ID FIELD PATTERN WEIGHT [DETAIL];" },
    { "max_chain", cg_cmd_max_chain, 1, 1, 0, "max_chain N;" },
    { "ct_log_list", cg_cmd_ct_log_list, 1, 1, 0, "ct_log_list FILE;" },
    { "exempt", cg_cmd_exempt, 0, 0, 1, "exempt { ... }" },
    { NULL, NULL, 0, 0, 0, NULL }
};


/* ---- loading ---------------------------------------------------------- */


static int
cg_policy_new(cg_policy_t **policy, const char *path)
{
    unsigned      i, n;
    size_t        len;
    const char   *base;
    cg_policy_t  *pol;

    pol = calloc(1, sizeof(cg_policy_t));
    if (pol == NULL) {
        return CG_ERR_NOMEM;
    }

    cg_strlcpy(pol->path, path, sizeof(pol->path));

    base = strrchr(path, '/');
    base = base ? base + 1 : path;
    len = strlen(base);
    if (len > 7 && strcmp(base + len - 7, ".policy") == 0) {
        len -= 7;
    }
    if (len >= sizeof(pol->name)) {
        len = sizeof(pol->name) - 1;
    }
    memcpy(pol->name, base, len);
    pol->name[len] = '\0';

    pol->tag_threshold = 30;
    pol->block_threshold = 70;
    pol->max_chain = CG_MAX_CHAIN;

    n = cg_signal_count();
    for (i = 0; i < n && i < CG_SIG_MAX; i++) {
        pol->weight[i] = cg_signal_default_weight(i);
    }

    *policy = pol;

    return CG_OK;
}


static int
cg_policy_run(cg_policy_t **policy, cg_parse_t *ps, int rc)
{
    if (rc == CG_OK) {
        rc = cg_parse_finish(ps);
    }

    /* the ids the refs point to belong to the exempts */
    free(ps->refs);

    if (rc != CG_OK) {
        cg_policy_free(ps->pol);
        *policy = NULL;
        return rc;
    }

    *policy = ps->pol;

    return CG_OK;
}


int
cg_policy_load(cg_policy_t **policy, const char *path, cg_error_t *err)
{
    int         rc;
    cg_parse_t  ps;

    *policy = NULL;

    if (path == NULL || path[0] == '\0') {
        return cg_errorf(err, CG_ERR_ARG, NULL, 0, "no policy file given");
    }

    memset(&ps, 0, sizeof(ps));
    ps.err = err;
    ps.files = 1;

    if (cg_policy_new(&ps.pol, path) != CG_OK) {
        return cg_errorf(err, CG_ERR_NOMEM, path, 0, "out of memory");
    }

    rc = cg_parse_path(&ps, path, NULL, 0);

    /* the publicsuffix package's list when it is newer than libpsl's
     * built-in copy (which the checks use without it) */
    if (rc == CG_OK) {
        ps.pol->psl = psl_latest(NULL);
    }

    return cg_policy_run(policy, &ps, rc);
}


int
cg_policy_load_mem(cg_policy_t **policy, const char *data, size_t len,
    const char *name, cg_error_t *err)
{
    int         rc;
    cg_src_t    src;
    cg_parse_t  ps;

    *policy = NULL;

    if (name == NULL || name[0] == '\0') {
        name = "(memory)";
    }

    memset(&ps, 0, sizeof(ps));
    ps.err = err;

    if (cg_policy_new(&ps.pol, name) != CG_OK) {
        return cg_errorf(err, CG_ERR_NOMEM, name, 0, "out of memory");
    }

    memset(&src, 0, sizeof(src));
    src.file = name;
    src.pos = data;
    src.end = data + len;
    src.line = 1;

    rc = cg_parse_src(&ps, &src);

    return cg_policy_run(policy, &ps, rc);
}


void
cg_policy_free(cg_policy_t *pol)
{
    size_t        i, j;
    cg_exempt_t  *ex;

    if (pol == NULL) {
        return;
    }

    for (i = 0; i < CG_LIST_MAX; i++) {
        cg_patlist_free(&pol->lists[i]);
    }

    cg_digestset_free(&pol->blocklist);
    cg_keyset_free(&pol->leaked);
    psl_free(pol->psl);
    free(pol->geo_country);
    free(pol->geo_asn);

    for (i = 0; i < pol->nrules; i++) {
        cg_pattern_free(&pol->rules[i].pattern);
        free(pol->rules[i].detail);
    }
    free(pol->rules);

    for (i = 0; i < pol->nexempts; i++) {
        ex = &pol->exempts[i];

        cg_patlist_free(&ex->sni);
        cg_patlist_free(&ex->issuer);
        cg_patlist_free(&ex->subject);
        cg_digestset_free(&ex->fingerprint);
        cg_digestset_free(&ex->issuer_spki);
        cg_digestset_free(&ex->issuer_fingerprint);
        free(ex->dst);

        for (j = 0; j < ex->nrules; j++) {
            free(ex->rules[j]);
        }
        free(ex->rules);
        free(ex->reason);
        free(ex->file);
    }
    free(pol->exempts);

    cg_ctlog_free(pol->ct_logs);

    free(pol);
}


const char *
cg_policy_name(const cg_policy_t *policy)
{
    return policy ? policy->name : "";
}


/*
 * Opens, guards and parses one file.  from/line are the "include" that
 * named it (NULL for the top-level file), for errors.
 */

int
cg_parse_path(cg_parse_t *ps, const char *path, cg_src_t *from,
    unsigned line)
{
    int          rc;
    char        *data;
    size_t       len, i;
    cg_src_t     src;
    struct stat  st;

    memset(&st, 0, sizeof(st));

    if (ps->depth > CG_INCLUDE_DEPTH) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, from->file, line,
                         "includes nested deeper than %d, expected fewer "
                         "levels", CG_INCLUDE_DEPTH);
    }

    /* Loops are caught by identity, not by name: "a/../x" is "x". */
    if (stat(path, &st) == 0) {
        for (i = 0; i < ps->depth; i++) {
            if (ps->stack[i]->dev == st.st_dev
                && ps->stack[i]->ino == st.st_ino)
            {
                return cg_errorf(ps->err, CG_ERR_SYNTAX, from->file, line,
                                 "include loop: \"%s\" is already being "
                                 "read", path);
            }
        }
    }

    rc = cg_file_read(path, &data, &len, ps->err);
    if (rc != CG_OK) {
        if (from && ps->err) {
            char  msg[sizeof(ps->err->msg)];

            cg_strlcpy(msg, ps->err->msg, sizeof(msg));
            cg_errorf(ps->err, rc, from->file, line, "include \"%s\": %s",
                      path, msg);
        }
        return rc;
    }

    memset(&src, 0, sizeof(src));
    src.file = path;
    src.pos = data;
    src.end = data + len;
    src.line = 1;
    src.dev = st.st_dev;
    src.ino = st.st_ino;

    rc = cg_parse_src(ps, &src);
    free(data);

    return rc;
}


static int
cg_parse_src(cg_parse_t *ps, cg_src_t *src)
{
    int                  rc;
    cg_stmt_t            st;
    const cg_command_t  *cmd;

    memset(&st, 0, sizeof(st));
    ps->stack[ps->depth++] = src;

    for ( ;; ) {
        rc = cg_stmt_read(src, &st, ps->err);
        if (rc != CG_OK) {
            break;
        }

        if (st.end == CG_TOK_EOF) {
            break;
        }

        if (st.end == CG_TOK_CLOSE) {
            rc = cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, src->line,
                           "unexpected \"}\"");
            break;
        }

        for (cmd = cg_commands; cmd->name; cmd++) {
            if (strcmp(cmd->name, st.args[0]) == 0) {
                break;
            }
        }

        if (cmd->name == NULL) {
            rc = cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st.lines[0],
                           "unknown statement \"%.64s\", expected name, "
                           "include, threshold, weight, window, list, "
                           "geo_country, geo_asn, rule, max_chain or exempt",
                           st.args[0]);
            break;
        }

        rc = cg_command_check(cmd, src, &st, ps->err);
        if (rc == CG_OK) {
            rc = cmd->handler(ps, src, &st);
        }

        if (rc != CG_OK) {
            break;
        }
    }

    cg_stmt_clear(&st);
    free(st.args);
    free(st.lines);
    ps->depth--;

    return rc;
}


static int
cg_command_check(const cg_command_t *cmd, cg_src_t *src, cg_stmt_t *st,
    cg_error_t *err)
{
    size_t  n = st->nargs - 1;

    if (cmd->block && st->end != CG_TOK_OPEN) {
        return cg_errorf(err, CG_ERR_SYNTAX, src->file, st->lines[0],
                         "expected \"{\" after \"%s\"", cmd->name);
    }

    if (!cmd->block && st->end != CG_TOK_SEMI) {
        return cg_errorf(err, CG_ERR_SYNTAX, src->file, st->lines[0],
                         "\"%s\" takes no block, expected \";\"",
                         cmd->name);
    }

    if (n < cmd->min || n > cmd->max) {
        return cg_errorf(err, CG_ERR_SYNTAX, src->file, st->lines[0],
                         "invalid number of arguments in \"%s\", "
                         "expected: %s", cmd->name, cmd->usage);
    }

    return CG_OK;
}


/* Checks that need the whole policy. */

static int
cg_parse_finish(cg_parse_t *ps)
{
    size_t        i, j;
    cg_ref_t     *ref;
    cg_policy_t  *pol = ps->pol;

    if (pol->block_threshold != INT_MAX
        && pol->block_threshold < pol->tag_threshold)
    {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, ps->thr_file, ps->thr_line,
                         "block threshold %d is below tag threshold %d, "
                         "expected block >= tag (or \"threshold block "
                         "off\")", pol->block_threshold, pol->tag_threshold);
    }

    for (i = 0; i < ps->nrefs; i++) {
        ref = &ps->refs[i];

        for (j = 0; j < pol->nrules; j++) {
            if (strcmp(pol->rules[j].id, ref->id) == 0) {
                break;
            }
        }

        if (j == pol->nrules) {
            return cg_errorf(ps->err, CG_ERR_SYNTAX,
                             pol->exempts[ref->exempt].file, ref->line,
                             "unknown signal \"%s\", expected a signal id "
                             "or the id of a rule", ref->id);
        }
    }

    cg_digestset_sort(&pol->blocklist);

    return CG_OK;
}
