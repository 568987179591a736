/*
 * The policy parser's own types, shared by its files: cg_policy.c (loading,
 * includes, the statement loop), cg_policy_lex.c (words and values),
 * cg_policy_stmt.c (the top-level statements) and cg_policy_exempt.c
 * (exempt blocks).  Internal to the engine.
 */

#ifndef CG_POLICY_PARSE_H
#define CG_POLICY_PARSE_H

#include <sys/types.h>

#include "cg_internal.h"


#define CG_INCLUDE_DEPTH    8
#define CG_ARGS_MAX         4096


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


/* cg_policy.c: reads and parses one file (include); from and line are the
 * "include" naming it, NULL and 0 for the top-level file. */
int cg_parse_path(cg_parse_t *ps, const char *path, cg_src_t *from,
    unsigned line);

/*
 * cg_policy_lex.c.  cg_stmt_read: the next statement into st (the words of
 * the last one freed first), CG_OK with st->end saying how it ended
 * (CG_TOK_EOF without words at the end of the source), or the status of an
 * error already written to err.  cg_stmt_clear frees the words and keeps
 * the arrays.
 */
int cg_stmt_read(cg_src_t *src, cg_stmt_t *st, cg_error_t *err);
void cg_stmt_clear(cg_stmt_t *st);
/* 0 and *out for a decimal integer from min to max, -1 otherwise. */
int cg_parse_int(const char *s, long long min, long long max, long long *out);
/* 0 and *out seconds for "90s", "1d12h", bare seconds..., at most 100
 * years; -1 otherwise. */
int cg_parse_duration(const char *s, int64_t *out);
/* 1 when s has no control character (C0 or DEL). */
int cg_printable(const char *s);

/* cg_policy_stmt.c: the handlers of the commands table in cg_policy.c,
 * called with the arguments counted and the end of the statement checked;
 * each writes its own error. */
int cg_cmd_name(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
int cg_cmd_include(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
int cg_cmd_threshold(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
int cg_cmd_weight(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
int cg_cmd_window(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
int cg_cmd_list(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
int cg_cmd_geo_country(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
int cg_cmd_geo_asn(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
int cg_cmd_rule(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
int cg_cmd_max_chain(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
int cg_cmd_ct_log_list(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);
/* 1 when id can name a rule: 1 to CG_ID_MAX - 1 of a-z, 0-9 and "_". */
int cg_rule_id_valid(const char *id);

/* cg_policy_exempt.c: "exempt {", read to its "}". */
int cg_cmd_exempt(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st);

#endif /* CG_POLICY_PARSE_H */
