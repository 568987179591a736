/*
 * The policy tokenizer: nginx's rules for words, quotes and comments, a
 * statement at a time, and the values words stand for (integers,
 * durations, printable text).
 */

#include <ctype.h>
#include <stdlib.h>

#include "cg_policy_parse.h"


#define CG_TOKEN_MAX        (64 * 1024)
#define CG_DURATION_MAX     (100LL * 365 * 86400)


/* ---- tokenizer -------------------------------------------------------- */


void
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


int
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


int
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




/* "90s", "30m", "12h", "7d", "52w", "1y", combinations such as "1d12h",
 * or bare seconds. */

int
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


int
cg_printable(const char *s)
{
    for ( ; *s; s++) {
        if ((unsigned char) *s < 0x20 || *s == 0x7f) {
            return 0;
        }
    }

    return 1;
}
