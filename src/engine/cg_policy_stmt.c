/*
 * The top-level statements of docs/policy.md but "exempt"
 * (cg_policy_exempt.c): each checks its words and writes the policy.
 */

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cg_policy_parse.h"
#include "cg_sct.h"


#define CG_WEIGHT_MAX       1000
#define CG_THRESHOLD_MAX    100000


static const char  *cg_list_kinds[CG_LIST_MAX] = {
    "free_dv_issuer", "staging_issuer", "default_subject", "public_ca"
};

static const char  *cg_field_names[] = {
    "subject", "issuer", "san", "serial", "sni"
};


/* ---- arguments -------------------------------------------------------- */


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


/* ---- statements ------------------------------------------------------- */


int
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


int
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


int
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


int
cg_cmd_max_chain(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st)
{
    long long  v;

    if (cg_parse_int(st->args[1], 1, CG_MAX_CHAIN_MAX, &v) != 0) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[1],
                         "invalid max_chain \"%.32s\", expected an integer "
                         "from 1 to %d", st->args[1], CG_MAX_CHAIN_MAX);
    }

    ps->pol->max_chain = (unsigned) v;

    return CG_OK;
}


int
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


int
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
                         "issued_recently, short_validity, long_validity, "
                         "cert_changed, issuer_changed or cert_moved",
                         st->args[1]);
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


int
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

    if (kind == -1 && strcmp(st->args[1], "blocklist") != 0
        && strcmp(st->args[1], "leaked_root") != 0)
    {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[1],
                         "unknown list kind \"%.32s\", expected "
                         "free_dv_issuer, staging_issuer, default_subject, "
                         "public_ca, blocklist or leaked_root",
                         st->args[1]);
    }

    if (!ps->files) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[0],
                         "\"list\" needs a policy loaded from a file");
    }

    rc = cg_resolve(ps, src, st->lines[2], st->args[2], path, sizeof(path));
    if (rc != CG_OK) {
        return rc;
    }

    if (kind == -1 && strcmp(st->args[1], "leaked_root") == 0) {
        rc = cg_keyset_load(&ps->pol->leaked, path, ps->err);
    } else if (kind == -1) {
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


int
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


int
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


int
cg_rule_id_valid(const char *id)
{
    size_t  len = strlen(id);

    return len > 0 && len < CG_ID_MAX
           && strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789_") == len;
}


int
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


int
cg_cmd_ct_log_list(cg_parse_t *ps, cg_src_t *src, cg_stmt_t *st)
{
    int                     rc;
    char                    path[CG_NAME_MAX], msg[256];
    struct ctlog_store_st  *store;

    if (!ps->files) {
        return cg_errorf(ps->err, CG_ERR_SYNTAX, src->file, st->lines[0],
                         "\"ct_log_list\" needs a policy loaded from a "
                         "file");
    }

    rc = cg_resolve(ps, src, st->lines[1], st->args[1], path, sizeof(path));
    if (rc != CG_OK) {
        return rc;
    }

    rc = cg_ctlog_load(&store, path, ps->err);

    /* as for lists: a line of the file at fault names the file, anything
     * else the statement */
    if (rc != CG_OK) {
        if (ps->err && ps->err->line == 0) {
            cg_strlcpy(msg, ps->err->msg, sizeof(msg));
            cg_errorf(ps->err, rc, src->file, st->lines[1],
                      "ct_log_list \"%s\": %s", path, msg);
        }

        return rc;
    }

    /* a later statement (a policy including another) replaces the list */
    cg_ctlog_free(ps->pol->ct_logs);
    ps->pol->ct_logs = store;

    return CG_OK;
}
