/*
 * The policy language: an nginx-like tokenizer, the statements of
 * docs/policy.md, includes and lists.  Parsing happens once, at load; the
 * result (struct cg_policy_s in cg_internal.h) is immutable afterwards.
 *
 * Every error names the file and line it is about and what was expected,
 * because the people reading it are editing a policy under pressure.
 */

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cg_internal.h"
#include "cg_policy.h"


#define CG_INCLUDE_DEPTH    8
#define CG_TOKEN_MAX        (64 * 1024)
#define CG_ARGS_MAX         4096
#define CG_WEIGHT_MAX       1000
#define CG_THRESHOLD_MAX    100000
#define CG_DURATION_MAX     (100LL * 365 * 86400)


enum {
    CG_TOK_ERROR = -1,
    CG_TOK_EOF = 0,
    CG_TOK_WORD,
    CG_TOK_SEMI,
    CG_TOK_OPEN,
    CG_TOK_CLOSE
};


/* One file (or memory buffer) being read. */
typedef struct {
    const char     *file;       /* its name in errors and for "include" */
    const char     *pos;
    const char     *end;
    unsigned        line;
    int             status;     /* of the last CG_TOK_ERROR */
    dev_t           dev;
    ino_t           ino;
} cg_src_t;


/* One statement: its words, the line of each, and how it ended. */
typedef struct {
    char          **args;
    unsigned       *lines;
    size_t          nargs;
    size_t          cap;
    int             end;        /* CG_TOK_SEMI, _OPEN, _CLOSE or _EOF */
} cg_stmt_t;


/* A custom rule id named in an exempt's "signals", checked at the end
 * because rules may be defined after the exemption. */
typedef struct {
    size_t          exempt;
    const char     *id;         /* owned by the exempt */
    unsigned        line;
} cg_ref_t;


typedef struct {
    cg_policy_t    *pol;
    cg_error_t     *err;
    unsigned        files:1;    /* include and list may read files */
    unsigned        depth;
    cg_src_t       *stack[CG_INCLUDE_DEPTH + 1];

    cg_ref_t       *refs;
    size_t          nrefs;

    char            thr_file[CG_NAME_MAX];  /* the last threshold */
    unsigned        thr_line;
} cg_parse_t;


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
static int cg_parse_path(cg_parse_t *ps, const char *path, cg_src_t *from,
    unsigned line);
static int cg_stmt_read(cg_src_t *src, cg_stmt_t *st, cg_error_t *err);
static void cg_stmt_clear(cg_stmt_t *st);
static int cg_command_check(const cg_command_t *cmd, cg_src_t *src,
    cg_stmt_t *st, cg_error_t *err);
static int cg_parse_finish(cg_parse_t *ps);

static int cg_cmd_name(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
static int cg_cmd_include(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
static int cg_cmd_threshold(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
static int cg_cmd_weight(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
static int cg_cmd_window(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
static int cg_cmd_list(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
static int cg_cmd_geo_country(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
static int cg_cmd_geo_asn(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
static int cg_cmd_rule(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
static int cg_cmd_exempt(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);


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
    { "exempt", cg_cmd_exempt, 0, 0, 1, "exempt { ... }" },
    { NULL, NULL, 0, 0, 0, NULL }
};


static int cg_ex_patterns(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st,
    cg_exempt_t *ex);
static int cg_ex_fingerprint(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st,
    cg_exempt_t *ex);
static int cg_ex_dst(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st,
    cg_exempt_t *ex);
static int cg_ex_signals(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st,
    cg_exempt_t *ex);
static int cg_ex_reason(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st,
    cg_exempt_t *ex);

typedef int (*cg_ex_handler_pt)(cg_parse_t *ps, cg_src_t *src,
    cg_stmt_t *st, cg_exempt_t *ex);

static const struct {
    const char        *name;
    cg_ex_handler_pt   handler;
} cg_exempt_commands[] = {
    { "sni", cg_ex_patterns },
    { "issuer", cg_ex_patterns },
    { "subject", cg_ex_patterns },
    { "fingerprint", cg_ex_fingerprint },
    { "dst", cg_ex_dst },
    { "signals", cg_ex_signals },
    { "reason", cg_ex_reason },
    { NULL, NULL }
};


static const char  *cg_list_kinds[CG_LIST_MAX] = {
    "free_dv_issuer", "staging_issuer", "default_subject", "public_ca"
};

static const char  *cg_field_names[] = {
    "subject", "issuer", "san", "serial", "sni"
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
        free(ex->dst);

        for (j = 0; j < ex->nrules; j++) {
            free(ex->rules[j]);
        }
        free(ex->rules);
        free(ex->reason);
        free(ex->file);
    }
    free(pol->exempts);

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

static int
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
                           "geo_country, geo_asn, rule or exempt",
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


/* ---- tokenizer -------------------------------------------------------- */


static void
cg_stmt_clear(cg_stmt_t *st)
{
    size_t  i;

    for (i = 0; i < st->nargs; i++) {
        free(st->args[i]);
    }

    st->nargs = 0;
    st->end = CG_TOK_EOF;
}


static int
cg_stmt_push(cg_stmt_t *st, char *word, unsigned line)
{
    size_t     cap;
    char     **args;
    unsigned  *lines;

    if (st->nargs == st->cap) {
        cap = st->cap ? st->cap * 2 : 8;

        args = realloc(st->args, cap * sizeof(char *));
        if (args == NULL) {
            return CG_ERR_NOMEM;
        }
        st->args = args;

        lines = realloc(st->lines, cap * sizeof(unsigned));
        if (lines == NULL) {
            return CG_ERR_NOMEM;
        }
        st->lines = lines;

        st->cap = cap;
    }

    st->args[st->nargs] = word;
    st->lines[st->nargs] = line;
    st->nargs++;

    return CG_OK;
}


/*
 * nginx's rules: white space separates words, "#" at the start of a word
 * comments out the rest of the line, ";" "{" "}" end a word, a word may be
 * quoted with " or '.  A backslash makes the next character ordinary; it
 * is dropped before a quote or a backslash, turns t, n and r into control
 * characters, and is kept before anything else, so that regular
 * expressions such as "~^CN=a\.b" need no doubling.
 */

static int
cg_token(cg_src_t *src, char **word, unsigned *line, cg_error_t *err)
{
    char         quote, *buf, *d;
    unsigned     start;
    const char  *p, *s;

    p = src->pos;

    for ( ;; ) {
        while (p < src->end && (*p == ' ' || *p == '\t' || *p == '\r'
                                || *p == '\n'))
        {
            if (*p == '\n') {
                src->line++;
            }
            p++;
        }

        if (p < src->end && *p == '#') {
            while (p < src->end && *p != '\n') {
                p++;
            }
            continue;
        }

        break;
    }

    if (p == src->end) {
        src->pos = p;
        return CG_TOK_EOF;
    }

    switch (*p) {
    case ';':
        src->pos = p + 1;
        return CG_TOK_SEMI;
    case '{':
        src->pos = p + 1;
        return CG_TOK_OPEN;
    case '}':
        src->pos = p + 1;
        return CG_TOK_CLOSE;
    }

    quote = 0;
    if (*p == '"' || *p == '\'') {
        quote = *p++;
    }

    start = src->line;
    *line = start;
    src->status = CG_ERR_SYNTAX;

    /* find the end first, so that one allocation holds the word */
    for (s = p; s < src->end; s++) {
        if (*s == '\0') {
            src->pos = s;
            cg_errorf(err, CG_ERR_SYNTAX, src->file, src->line,
                      "unexpected NUL byte");
            return CG_TOK_ERROR;
        }

        if (*s == '\\' && s + 1 < src->end) {
            if (s[1] == '\n') {
                src->line++;
            }
            s++;
            continue;
        }

        if (*s == '\n') {
            if (!quote) {
                break;
            }
            src->line++;
        }

        if (quote) {
            if (*s == quote) {
                break;
            }

        } else if (*s == ' ' || *s == '\t' || *s == '\r' || *s == ';'
                   || *s == '{' || *s == '}')
        {
            break;
        }
    }

    if (quote && s >= src->end) {
        src->pos = s;
        cg_errorf(err, CG_ERR_SYNTAX, src->file, start,
                  "unexpected end of file, expected a closing %c", quote);
        return CG_TOK_ERROR;
    }

    if (s - p > CG_TOKEN_MAX) {
        cg_errorf(err, CG_ERR_SYNTAX, src->file, start,
                  "word longer than %d bytes", CG_TOKEN_MAX);
        return CG_TOK_ERROR;
    }

    buf = malloc((size_t) (s - p) + 1);
    if (buf == NULL) {
        src->status = cg_errorf(err, CG_ERR_NOMEM, src->file, start,
                                "out of memory");
        return CG_TOK_ERROR;
    }

    for (d = buf; p < s; ) {
        if (*p == '\\' && p + 1 < s) {
            switch (p[1]) {
            case '"':
            case '\'':
            case '\\':
                p++;
                break;
            case 't':
                *d++ = '\t';
                p += 2;
                continue;
            case 'n':
                *d++ = '\n';
                p += 2;
                continue;
            case 'r':
                *d++ = '\r';
                p += 2;
                continue;
            default:
                *d++ = *p++;
                break;
            }
        }
        *d++ = *p++;
    }
    *d = '\0';

    if (quote) {
        s++;    /* the closing quote */

        if (s < src->end && *s != ' ' && *s != '\t' && *s != '\r'
            && *s != '\n' && *s != ';' && *s != '{' && *s != '}')
        {
            free(buf);
            src->pos = s;
            cg_errorf(err, CG_ERR_SYNTAX, src->file, src->line,
                      "unexpected \"%c\" after a quoted word, expected "
                      "white space, \";\" or \"{\"", *s);
            return CG_TOK_ERROR;
        }
    }

    src->pos = s;
    *word = buf;

    return CG_TOK_WORD;
}


static int
cg_stmt_read(cg_src_t *src, cg_stmt_t *st, cg_error_t *err)
{
    int       t;
    char     *word;
    unsigned  line;

    cg_stmt_clear(st);

    for ( ;; ) {
        word = NULL;
        line = src->line;
        t = cg_token(src, &word, &line, err);

        switch (t) {

        case CG_TOK_ERROR:
            return src->status;

        case CG_TOK_WORD:
            if (st->nargs == CG_ARGS_MAX + 1) {
                free(word);
                return cg_errorf(err, CG_ERR_SYNTAX, src->file, line,
                                 "more than %d arguments, expected \";\"",
                                 CG_ARGS_MAX);
            }
            if (cg_stmt_push(st, word, line) != CG_OK) {
                free(word);
                return cg_errorf(err, CG_ERR_NOMEM, src->file, line,
                                 "out of memory");
            }
            continue;

        case CG_TOK_SEMI:
        case CG_TOK_OPEN:
            if (st->nargs == 0) {
                return cg_errorf(err, CG_ERR_SYNTAX, src->file, src->line,
                                 "unexpected \"%c\", expected a statement",
                                 t == CG_TOK_SEMI ? ';' : '{');
            }
            st->end = t;
            return CG_OK;

        case CG_TOK_CLOSE:
            if (st->nargs) {
                return cg_errorf(err, CG_ERR_SYNTAX, src->file, src->line,
                                 "unexpected \"}\", expected \";\"");
            }
            st->end = t;
            return CG_OK;

        default:    /* CG_TOK_EOF */
            if (st->nargs) {
                return cg_errorf(err, CG_ERR_SYNTAX, src->file, src->line,
                                 "unexpected end of file, expected \";\"");
            }
            st->end = CG_TOK_EOF;
            return CG_OK;
        }
    }
}


/* ---- values ----------------------------------------------------------- */


static int
cg_parse_int(const char *s, long long min, long long max, long long *out)
{
    long long  v;

    if (*s == '\0') {
        return -1;
    }

    for (v = 0; *s; s++) {
        if (!isdigit((unsigned char) *s)) {
            return -1;
        }

        v = v * 10 + (*s - '0');
        if (v > max) {
            return -1;
        }
    }

    if (v < min) {
        return -1;
    }

    *out = v;

    return 0;
}


static int
cg_weight(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st, size_t i, int *w)
{
    long long  v;

    if (cg_parse_int(st->args[i], 0, CG_WEIGHT_MAX, &v) != 0) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[i],
                         "invalid weight \"%.32s\", expected an integer "
                         "from 0 to %d", st->args[i], CG_WEIGHT_MAX);
    }

    *w = (int) v;

    return CG_OK;
}


/* "90s", "30m", "12h", "7d", "52w", "1y", combinations such as "1d12h",
 * or bare seconds. */

static int
cg_parse_duration(const char *s, int64_t *out)
{
    int64_t    total, v, unit;
    long long  n;
    char       num[24];
    size_t     k;

    if (cg_parse_int(s, 1, CG_DURATION_MAX, &n) == 0) {
        *out = n;
        return 0;
    }

    for (total = 0; *s; ) {
        for (k = 0; isdigit((unsigned char) s[k]); k++) {
            if (k == sizeof(num) - 1) {
                return -1;
            }
            num[k] = s[k];
        }
        num[k] = '\0';

        if (k == 0 || cg_parse_int(num, 0, CG_DURATION_MAX, &n) != 0) {
            return -1;
        }

        switch (s[k]) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        case 'y': unit = 365 * 86400; break;
        default: return -1;
        }

        v = n;
        if (v > CG_DURATION_MAX / unit) {
            return -1;
        }

        total += v * unit;
        if (total > CG_DURATION_MAX) {
            return -1;
        }

        s += k + 1;
    }

    if (total <= 0) {
        return -1;
    }

    *out = total;

    return 0;
}


static int
cg_signal_arg(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st, size_t i)
{
    int  idx;

    idx = cg_signal_find(st->args[i]);
    if (idx < 0 || idx >= CG_SIG_MAX) {
        cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[i],
                  "unknown signal \"%.64s\", expected a signal id "
                  "(see docs/signals.md)", st->args[i]);
        return -1;
    }

    return idx;
}


/* Relative to the directory of the file that names it. */

static int
cg_resolve(cg_parse_t *ps, cg_src_t *src, unsigned line, const char *name,
    char *out, size_t size)
{
    int          n;
    const char  *slash;

    slash = strrchr(src->file, '/');

    if (name[0] == '/' || slash == NULL) {
        n = snprintf(out, size, "%s", name);

    } else {
        n = snprintf(out, size, "%.*s/%s", (int) (slash - src->file),
                     src->file, name);
    }

    if (n < 0 || (size_t) n >= size) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, line,
                         "file name \"%.64s...\" too long", name);
    }

    return CG_OK;
}


static int
cg_printable(const char *s)
{
    for ( ; *s; s++) {
        if ((unsigned char) *s < 0x20 || *s == 0x7f) {
            return 0;
        }
    }

    return 1;
}


/* ---- statements ------------------------------------------------------- */


static int
cg_cmd_name(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st)
{
    const char  *s;

    s = st->args[1];

    if (*s == '\0'
        || strlen(s) >= sizeof(ps->pol->name)
        || strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._-") != strlen(s))
    {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[1],
                         "invalid name \"%.64s\", expected 1 to %zu "
                         "letters, digits, \".\", \"_\" or \"-\"", s,
                         sizeof(ps->pol->name) - 1);
    }

    cg_strlcpy(ps->pol->name, s, sizeof(ps->pol->name));

    return CG_OK;
}


static int
cg_cmd_include(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st)
{
    int   rc;
    char  path[CG_NAME_MAX];

    if (!ps->files) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[0],
                         "\"include\" needs a policy loaded from a file");
    }

    rc = cg_resolve(ps, src, st->lines[1], st->args[1], path, sizeof(path));
    if (rc != CG_OK) {
        return rc;
    }

    return cg_parse_path(ps, path, src, st->lines[0]);
}


static int
cg_cmd_threshold(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st)
{
    int        block;
    long long  v;

    if (strcmp(st->args[1], "tag") == 0) {
        block = 0;

    } else if (strcmp(st->args[1], "block") == 0) {
        block = 1;

    } else {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[1],
                         "invalid threshold \"%.32s\", expected \"tag\" or "
                         "\"block\"", st->args[1]);
    }

    if (block && strcmp(st->args[2], "off") == 0) {
        v = INT_MAX;

    } else if (cg_parse_int(st->args[2], 1, CG_THRESHOLD_MAX, &v) != 0) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[2],
                         "invalid score \"%.32s\", expected an integer "
                         "from 1 to %d%s", st->args[2], CG_THRESHOLD_MAX,
                         block ? " or \"off\"" : "");
    }

    if (block) {
        ps->pol->block_threshold = (int) v;
    } else {
        ps->pol->tag_threshold = (int) v;
    }

    cg_strlcpy(ps->thr_file, src->file, sizeof(ps->thr_file));
    ps->thr_line = st->lines[0];

    return CG_OK;
}


static int
cg_cmd_weight(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st)
{
    int  idx, w, rc;

    w = 0;
    idx = cg_signal_arg(ps, src, st, 1);
    if (idx < 0) {
        return CG_ERR_SYNTAX;
    }

    rc = cg_weight(ps, src, st, 2, &w);
    if (rc != CG_OK) {
        return rc;
    }

    ps->pol->weight[idx] = w;

    return CG_OK;
}


static int
cg_cmd_window(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st)
{
    int      idx;
    size_t   i;
    int64_t  d;

    idx = cg_signal_arg(ps, src, st, 1);
    if (idx < 0) {
        return CG_ERR_SYNTAX;
    }

    /* A signal takes as many windows as it has defaults. */
    if (cg_signal_default_window((unsigned) idx, 0) == 0) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[1],
                         "signal \"%s\" takes no window, expected "
                         "issued_recently, short_validity or "
                         "long_validity", st->args[1]);
    }

    if (st->nargs == 4 && cg_signal_default_window((unsigned) idx, 1) == 0) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[3],
                         "signal \"%s\" takes one window, expected \";\"",
                         st->args[1]);
    }

    for (i = 2; i < st->nargs; i++) {
        if (cg_parse_duration(st->args[i], &d) != 0) {
            return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[i],
                             "invalid duration \"%.32s\", expected a "
                             "number with s, m, h, d, w or y, up to 100y",
                             st->args[i]);
        }

        ps->pol->window[idx][i - 2] = d;
    }

    return CG_OK;
}


static int
cg_cmd_list(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st)
{
    int       rc, kind;
    char      path[CG_NAME_MAX], msg[256];
    unsigned  i;

    kind = -1;
    for (i = 0; i < CG_LIST_MAX; i++) {
        if (strcmp(st->args[1], cg_list_kinds[i]) == 0) {
            kind = (int) i;
        }
    }

    if (kind == -1 && strcmp(st->args[1], "blocklist") != 0) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[1],
                         "unknown list kind \"%.32s\", expected "
                         "free_dv_issuer, staging_issuer, default_subject, "
                         "public_ca or blocklist", st->args[1]);
    }

    if (!ps->files) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[0],
                         "\"list\" needs a policy loaded from a file");
    }

    rc = cg_resolve(ps, src, st->lines[2], st->args[2], path, sizeof(path));
    if (rc != CG_OK) {
        return rc;
    }

    if (kind == -1) {
        rc = cg_digestset_load(&ps->pol->blocklist, path, ps->err);
    } else {
        rc = cg_patlist_load(&ps->pol->lists[kind], path, 0, ps->err);
    }

    /* Syntax errors name the list file and its line; a list that cannot
     * be read is the fault of the statement naming it. */
    if (rc != CG_OK && ps->err && ps->err->line == 0) {
        cg_strlcpy(msg, ps->err->msg, sizeof(msg));
        cg_errorf(ps->err, rc, src->file, st->lines[2], "list \"%s\": %s",
                  path, msg);
    }

    return rc;
}


static int
cg_cmd_geo_country(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st)
{
    int                w, rc;
    char               cc[3];
    size_t             i, j;
    cg_policy_t       *pol = ps->pol;
    cg_geo_country_t  *items;

    w = 0;
    rc = cg_weight(ps, src, st, 1, &w);
    if (rc != CG_OK) {
        return rc;
    }

    for (i = 2; i < st->nargs; i++) {
        const char  *s = st->args[i];

        if (strlen(s) != 2 || !isalpha((unsigned char) s[0])
            || !isalpha((unsigned char) s[1]))
        {
            return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[i],
                             "invalid country code \"%.32s\", expected two "
                             "letters (ISO 3166 alpha-2)", s);
        }

        cc[0] = (char) toupper((unsigned char) s[0]);
        cc[1] = (char) toupper((unsigned char) s[1]);
        cc[2] = '\0';

        /* A later statement (say, a stricter policy including this one)
         * re-weights a country rather than listing it twice. */
        for (j = 0; j < pol->ngeo_country; j++) {
            if (strcmp(pol->geo_country[j].cc, cc) == 0) {
                break;
            }
        }

        if (j == pol->ngeo_country) {
            items = realloc(pol->geo_country,
                            (j + 1) * sizeof(cg_geo_country_t));
            if (items == NULL) {
                return cg_errorf(ps->err, CG_ERR_NOMEM, src->file,
                                 st->lines[i], "out of memory");
            }
            pol->geo_country = items;
            pol->ngeo_country++;
            memcpy(items[j].cc, cc, 3);
        }

        pol->geo_country[j].weight = w;
    }

    return CG_OK;
}


static int
cg_cmd_geo_asn(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st)
{
    int            w, rc;
    size_t         i, j;
    long long      v;
    const char    *s;
    cg_policy_t   *pol = ps->pol;
    cg_geo_asn_t  *items;

    w = 0;
    rc = cg_weight(ps, src, st, 1, &w);
    if (rc != CG_OK) {
        return rc;
    }

    for (i = 2; i < st->nargs; i++) {
        s = st->args[i];
        if (strncasecmp(s, "AS", 2) == 0) {
            s += 2;
        }

        if (cg_parse_int(s, 1, 4294967295LL, &v) != 0) {
            return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[i],
                             "invalid ASN \"%.32s\", expected a number "
                             "from 1 to 4294967295, optionally after "
                             "\"AS\"", st->args[i]);
        }

        for (j = 0; j < pol->ngeo_asn; j++) {
            if (pol->geo_asn[j].asn == (uint32_t) v) {
                break;
            }
        }

        if (j == pol->ngeo_asn) {
            items = realloc(pol->geo_asn, (j + 1) * sizeof(cg_geo_asn_t));
            if (items == NULL) {
                return cg_errorf(ps->err, CG_ERR_NOMEM, src->file,
                                 st->lines[i], "out of memory");
            }
            pol->geo_asn = items;
            pol->ngeo_asn++;
            items[j].asn = (uint32_t) v;
        }

        pol->geo_asn[j].weight = w;
    }

    return CG_OK;
}


static int
cg_rule_id_valid(const char *id)
{
    size_t  len = strlen(id);

    return len > 0 && len < CG_ID_MAX
           && strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}


static int
cg_cmd_rule(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st)
{
    int           rc, w;
    size_t        i;
    unsigned      f;
    cg_rule_t    *rules, *r;
    cg_policy_t  *pol = ps->pol;
    const char   *id = st->args[1];

    if (!cg_rule_id_valid(id)) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[1],
                         "invalid rule id \"%.40s\", expected 1 to %d "
                         "characters a-z, 0-9 or \"_\"", id, CG_ID_MAX - 1);
    }

    if (cg_signal_find(id) >= 0) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[1],
                         "rule id \"%s\" is a built-in signal, expected an "
                         "id of its own", id);
    }

    for (i = 0; i < pol->nrules; i++) {
        if (strcmp(pol->rules[i].id, id) == 0) {
            return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[1],
                             "duplicate rule id \"%s\", expected an id of "
                             "its own", id);
        }
    }

    for (f = 0; f < cg_nelem(cg_field_names); f++) {
        if (strcmp(st->args[2], cg_field_names[f]) == 0) {
            break;
        }
    }

    if (f == cg_nelem(cg_field_names)) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[2],
                         "unknown field \"%.32s\", expected subject, issuer, "
                         "san, serial or sni", st->args[2]);
    }

    w = 0;
    rc = cg_weight(ps, src, st, 4, &w);
    if (rc != CG_OK) {
        return rc;
    }

    if (st->nargs == 6
        && (strlen(st->args[5]) >= CG_DETAIL_MAX
            || !cg_printable(st->args[5])))
    {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[5],
                         "invalid detail, expected at most %d printable "
                         "characters", CG_DETAIL_MAX - 1);
    }

    rules = realloc(pol->rules, (pol->nrules + 1) * sizeof(cg_rule_t));
    if (rules == NULL) {
        return cg_errorf(ps->err, CG_ERR_NOMEM, src->file, st->lines[0],
                         "out of memory");
    }
    pol->rules = rules;

    r = &rules[pol->nrules];
    memset(r, 0, sizeof(*r));

    rc = cg_pattern_compile(&r->pattern, st->args[3], 0, ps->err);
    if (rc != CG_OK) {
        if (ps->err) {
            cg_strlcpy(ps->err->file, src->file, sizeof(ps->err->file));
            ps->err->line = st->lines[3];
        }
        return rc;
    }

    r->pattern.line = st->lines[3];
    pol->nrules++;

    cg_strlcpy(r->id, id, sizeof(r->id));
    r->field = (cg_field_t) f;
    r->weight = w;

    if (st->nargs == 6) {
        r->detail = strdup(st->args[5]);
        if (r->detail == NULL) {
            return cg_errorf(ps->err, CG_ERR_NOMEM, src->file, st->lines[5],
                             "out of memory");
        }
    }

    return CG_OK;
}


static int
cg_cmd_exempt(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st)
{
    int           rc;
    size_t        k, idx;
    unsigned      line;
    cg_exempt_t  *exempts, *ex;
    cg_policy_t  *pol = ps->pol;

    line = st->lines[0];

    exempts = realloc(pol->exempts, (pol->nexempts + 1) * sizeof(cg_exempt_t));
    if (exempts == NULL) {
        return cg_errorf(ps->err, CG_ERR_NOMEM, src->file, line,
                         "out of memory");
    }
    pol->exempts = exempts;

    idx = pol->nexempts++;
    ex = &exempts[idx];
    memset(ex, 0, sizeof(*ex));
    ex->all = 1;
    ex->line = line;
    ex->file = strdup(src->file);
    if (ex->file == NULL) {
        return cg_errorf(ps->err, CG_ERR_NOMEM, src->file, line,
                         "out of memory");
    }

    for ( ;; ) {
        rc = cg_stmt_read(src, st, ps->err);
        if (rc != CG_OK) {
            return rc;
        }

        if (st->end == CG_TOK_CLOSE) {
            break;
        }

        if (st->end == CG_TOK_EOF) {
            return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, src->line,
                             "unexpected end of file, expected \"}\" to "
                             "close the exempt of line %u", line);
        }

        for (k = 0; cg_exempt_commands[k].name; k++) {
            if (strcmp(cg_exempt_commands[k].name, st->args[0]) == 0) {
                break;
            }
        }

        if (cg_exempt_commands[k].name == NULL) {
            return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[0],
                             "unknown exempt condition \"%.64s\", expected "
                             "sni, issuer, subject, fingerprint, dst, "
                             "signals or reason", st->args[0]);
        }

        if (st->end != CG_TOK_SEMI) {
            return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[0],
                             "\"%s\" takes no block, expected \";\"",
                             st->args[0]);
        }

        if (st->nargs < 2) {
            return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[0],
                             "\"%s\" needs at least one value",
                             st->args[0]);
        }

        rc = cg_exempt_commands[k].handler(ps, src, st, ex);
        if (rc != CG_OK) {
            return rc;
        }
    }

    ex = &pol->exempts[idx];

    if (ex->sni.n == 0 && ex->issuer.n == 0 && ex->subject.n == 0
        && ex->fingerprint.n == 0 && ex->ndst == 0)
    {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, line,
                         "exempt without a condition would exempt "
                         "everything, expected sni, issuer, subject, "
                         "fingerprint or dst");
    }

    cg_digestset_sort(&ex->fingerprint);

    return CG_OK;
}


static int
cg_ex_patterns(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st, cg_exempt_t *ex)
{
    int            rc, host;
    size_t         i;
    cg_patlist_t  *l;

    host = 0;

    if (strcmp(st->args[0], "sni") == 0) {
        l = &ex->sni;
        host = 1;

    } else if (strcmp(st->args[0], "issuer") == 0) {
        l = &ex->issuer;

    } else {
        l = &ex->subject;
    }

    for (i = 1; i < st->nargs; i++) {
        rc = cg_patlist_add(l, st->args[i], host, ps->err);
        if (rc != CG_OK) {
            if (ps->err) {
                cg_strlcpy(ps->err->file, src->file, sizeof(ps->err->file));
                ps->err->line = st->lines[i];
            }
            return rc;
        }

        l->items[l->n - 1].line = st->lines[i];
    }

    return CG_OK;
}


static int
cg_ex_fingerprint(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st,
    cg_exempt_t *ex)
{
    size_t       i;
    cg_digest_t  d;

    for (i = 1; i < st->nargs; i++) {
        if (cg_digest_parse(&d, st->args[i]) != 0) {
            return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[i],
                             "invalid fingerprint \"%.40s\", expected 40 or "
                             "64 hex digits, optionally after \"sha1:\" or "
                             "\"sha256:\"", st->args[i]);
        }

        if (cg_digestset_add(&ex->fingerprint, &d) != CG_OK) {
            return cg_errorf(ps->err, CG_ERR_NOMEM, src->file, st->lines[i],
                             "out of memory");
        }
    }

    return CG_OK;
}


static int
cg_ex_dst(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st, cg_exempt_t *ex)
{
    size_t      i;
    cg_cidr_t   c, *dst;

    for (i = 1; i < st->nargs; i++) {
        if (cg_cidr_parse(&c, st->args[i]) != 0) {
            return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[i],
                             "invalid address \"%.48s\", expected an IPv4 "
                             "or IPv6 address or CIDR such as 10.0.0.0/8",
                             st->args[i]);
        }

        dst = realloc(ex->dst, (ex->ndst + 1) * sizeof(cg_cidr_t));
        if (dst == NULL) {
            return cg_errorf(ps->err, CG_ERR_NOMEM, src->file, st->lines[i],
                             "out of memory");
        }

        ex->dst = dst;
        ex->dst[ex->ndst++] = c;
    }

    return CG_OK;
}


static int
cg_ex_signals(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st, cg_exempt_t *ex)
{
    int        idx;
    size_t     i;
    char     **rules, *id;
    cg_ref_t  *refs;

    ex->all = 0;

    for (i = 1; i < st->nargs; i++) {
        idx = cg_signal_find(st->args[i]);

        if (idx >= 0 && idx < CG_SIG_MAX) {
            ex->signals |= (uint64_t) 1 << idx;
            continue;
        }

        if (!cg_rule_id_valid(st->args[i])) {
            return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[i],
                             "unknown signal \"%.64s\", expected a signal "
                             "id or the id of a rule", st->args[i]);
        }

        /* a rule id: checked once the whole policy is read */
        id = strdup(st->args[i]);
        rules = realloc(ex->rules, (ex->nrules + 1) * sizeof(char *));
        refs = realloc(ps->refs, (ps->nrefs + 1) * sizeof(cg_ref_t));

        if (rules) {
            ex->rules = rules;
        }
        if (refs) {
            ps->refs = refs;
        }

        if (id == NULL || rules == NULL || refs == NULL) {
            free(id);
            return cg_errorf(ps->err, CG_ERR_NOMEM, src->file, st->lines[i],
                             "out of memory");
        }

        ex->rules[ex->nrules++] = id;

        refs[ps->nrefs].exempt = (size_t) (ex - ps->pol->exempts);
        refs[ps->nrefs].id = id;
        refs[ps->nrefs].line = st->lines[i];
        ps->nrefs++;
    }

    return CG_OK;
}


static int
cg_ex_reason(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st, cg_exempt_t *ex)
{
    if (st->nargs != 2 || ex->reason != NULL) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[0],
                         "expected one \"reason TEXT;\" in an exempt");
    }

    if (strlen(st->args[1]) >= CG_DETAIL_MAX || !cg_printable(st->args[1])) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[1],
                         "invalid reason, expected at most %d printable "
                         "characters", CG_DETAIL_MAX - 1);
    }

    ex->reason = strdup(st->args[1]);
    if (ex->reason == NULL) {
        return cg_errorf(ps->err, CG_ERR_NOMEM, src->file, st->lines[1],
                         "out of memory");
    }

    return CG_OK;
}
