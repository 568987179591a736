/*
 * "exempt { ... }": the conditions of one exemption and what it exempts.
 */

#include <stdlib.h>
#include <string.h>

#include "cg_policy_parse.h"


static int cg_ex_patterns(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st,
    cg_exempt_t *ex);
static int cg_ex_fingerprint(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st,
    cg_exempt_t *ex);
static int cg_ex_issuer_pin(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st,
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
    { "issuer_spki", cg_ex_issuer_pin },
    { "issuer_fingerprint", cg_ex_issuer_pin },
    { "dst", cg_ex_dst },
    { "signals", cg_ex_signals },
    { "reason", cg_ex_reason },
    { NULL, NULL }
};


int
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
                             "sni, issuer, issuer_spki, issuer_fingerprint, "
                             "subject, fingerprint, dst, signals or reason",
                             st->args[0]);
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
        && ex->fingerprint.n == 0 && ex->issuer_spki.n == 0
        && ex->issuer_fingerprint.n == 0 && ex->ndst == 0)
    {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, line,
                         "exempt without a condition would exempt "
                         "everything, expected sni, issuer, issuer_spki, "
                         "issuer_fingerprint, subject, fingerprint or dst");
    }

    cg_digestset_sort(&ex->fingerprint);
    cg_digestset_sort(&ex->issuer_spki);
    cg_digestset_sort(&ex->issuer_fingerprint);

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


/* SHA-256 only: a pin is worth no more than its hash, and SHA-1 has
 * chosen-prefix collisions. */
static int
cg_ex_issuer_pin(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st,
    cg_exempt_t *ex)
{
    size_t           i;
    cg_digest_t      d;
    cg_digestset_t  *set;

    set = (strcmp(st->args[0], "issuer_spki") == 0) ? &ex->issuer_spki
                                                    : &ex->issuer_fingerprint;

    for (i = 1; i < st->nargs; i++) {
        if (cg_digest_parse(&d, st->args[i]) != 0 || d.len != 32) {
            return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[i],
                             "invalid %s \"%.40s\", expected a SHA-256: 64 "
                             "hex digits, optionally after \"sha256:\" "
                             "(certguard pin CA.pem prints it)", st->args[0],
                             st->args[i]);
        }

        if (cg_digestset_add(set, &d) != CG_OK) {
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


/*
 * An issuer or subject DN is text: a rogue CA can carry the name of the
 * CA an exemption means.  An exemption that names an issuer by DN and
 * pins no certificate or key (fingerprint, issuer_spki,
 * issuer_fingerprint) is such a pass.
 */
int
cg_policy_warning(const cg_policy_t *policy, unsigned index,
    cg_error_t *warning)
{
    size_t              i;
    unsigned            k;
    const cg_exempt_t  *ex;

    if (policy == NULL) {
        return CG_ERR_ARG;
    }

    k = 0;

    for (i = 0; i < policy->nexempts; i++) {
        ex = &policy->exempts[i];

        if (ex->issuer.n == 0 || ex->fingerprint.n || ex->issuer_spki.n
            || ex->issuer_fingerprint.n)
        {
            continue;
        }

        if (k++ == index) {
            return cg_errorf(warning, CG_OK, ex->file,
                             ex->issuer.items[0].line,
                             "exempt matches the issuer by name only, and "
                             "any CA can carry that name: pin it with "
                             "issuer_spki or issuer_fingerprint (certguard "
                             "pin CA.pem prints them)");
        }
    }

    return CG_ERR_ARG;
}
