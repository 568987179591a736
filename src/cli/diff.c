/*
 * certguard diff: what a policy change does to a set of chains, before it
 * is enforced.  Each chain is scored under the old and the new policy with
 * the same name, destination and time (from its capture sidecar unless an
 * option gives them); one line per chain whose verdict changes, then
 * "N of M verdicts change" with the count of each transition.  Exit 0 when
 * it ran, whatever changes: a change is an answer, not an error.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"


static const char  cli_diff_usage[] =
"usage: certguard diff --policy OLD --policy NEW [--sni NAME]\n"
"                      [--at UNIXTIME] [--ca-file FILE [--no-system-roots]]\n"
"                      [--format text|json] CHAIN.pem...|DIR\n"
"\n"
"Scores each chain (or each chain of a capture directory) under both\n"
"policies and prints one line per chain whose verdict changes:\n"
"  FILE: allow -> block (+fires_now -fired_before id 25->40; score 10 -> 80;\n"
"        name NAME)\n"
"then \"N of M verdicts change\" with a count per transition.  Name,\n"
"destination and time come from each chain's sidecar unless --sni or\n"
"--at give them.  --format json: one object a line, the summary last.\n"
"--geoip-country FILE, --geoip-asn FILE and --crl FILE (repeatable) as for\n"
"check.\n"
"Exit status: 0 when it ran; 2 on usage errors and unreadable input.\n";


static void cli_diff_ids(FILE *f, const cli_outcome_t *a,
    const cli_outcome_t *b);


void
cli_outcome(const cg_result_t *res, cli_outcome_t *o)
{
    unsigned  i, n;

    memset(o, 0, sizeof(cli_outcome_t));
    o->verdict = res->verdict;
    o->score = res->score;

    n = res->nhits < CG_MAX_HITS ? res->nhits : CG_MAX_HITS;

    for (i = 0; i < n; i++) {
        if (res->hits[i].exempt) {
            continue;
        }

        memcpy(o->ids[o->nhits], res->hits[i].id, CG_ID_MAX);
        o->ids[o->nhits][CG_ID_MAX - 1] = '\0';
        o->weights[o->nhits] = res->hits[i].weight;
        o->nhits++;
    }
}


static int
cli_outcome_find(const cli_outcome_t *o, const char *id)
{
    unsigned  i;

    for (i = 0; i < o->nhits; i++) {
        if (strcmp(o->ids[i], id) == 0) {
            return (int) i;
        }
    }

    return -1;
}


void
cli_outcome_delta(char *buf, size_t len, const cli_outcome_t *from,
    const cli_outcome_t *to)
{
    int       k;
    size_t    pos;
    unsigned  i;

    pos = 0;
    buf[0] = '\0';

#define cli_delta_put(...)                                                    \
    do {                                                                      \
        if (pos < len) {                                                      \
            int  n_ = snprintf(buf + pos, len - pos, __VA_ARGS__);            \
            pos = (n_ < 0) ? len : pos + (size_t) n_;                         \
        }                                                                     \
    } while (0)

    for (i = 0; i < to->nhits; i++) {
        if (cli_outcome_find(from, to->ids[i]) < 0) {
            cli_delta_put("%s+%s", pos ? " " : "", to->ids[i]);
        }
    }

    for (i = 0; i < from->nhits; i++) {
        if (cli_outcome_find(to, from->ids[i]) < 0) {
            cli_delta_put("%s-%s", pos ? " " : "", from->ids[i]);
        }
    }

    for (i = 0; i < to->nhits; i++) {
        k = cli_outcome_find(from, to->ids[i]);

        if (k >= 0 && from->weights[k] != to->weights[i]) {
            cli_delta_put("%s%s %d->%d", pos ? " " : "", to->ids[i],
                          from->weights[k], to->weights[i]);
        }
    }

#undef cli_delta_put

    if (pos >= len && len > 0) {
        buf[len - 1] = '\0';
    }
}


/* "added":[...],"removed":[...] */
static void
cli_diff_ids(FILE *f, const cli_outcome_t *a, const cli_outcome_t *b)
{
    int       first;
    unsigned  i;

    fputs("\"added\":[", f);
    first = 1;

    for (i = 0; i < b->nhits; i++) {
        if (cli_outcome_find(a, b->ids[i]) < 0) {
            if (!first) {
                fputc(',', f);
            }
            cli_json_str(f, b->ids[i]);
            first = 0;
        }
    }

    fputs("],\"removed\":[", f);
    first = 1;

    for (i = 0; i < a->nhits; i++) {
        if (cli_outcome_find(b, a->ids[i]) < 0) {
            if (!first) {
                fputc(',', f);
            }
            cli_json_str(f, a->ids[i]);
            first = 0;
        }
    }

    fputc(']', f);
}


int
cli_diff(int argc, char **argv)
{
    int            i, rc, status, json, first;
    char           safe[512], delta[1024];
    unsigned       from, to, total, changed, moves[3][3];
    cli_run_t      run;
    cli_chain_t    ch;
    cg_result_t   *res;
    cli_outcome_t  o[2];

    rc = cli_run_open(&run, argc, argv, cli_diff_usage);
    if (rc != 0) {
        cli_run_close(&run);
        return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_ERR;
    }

    status = CLI_EXIT_ERR;
    json = 0;
    res = NULL;

    if (run.npolicies != 2) {
        cli_usage_error("diff: --policy OLD --policy NEW: two policies");
        goto done;
    }

    if (run.output) {
        cli_usage_error("diff: -o is for report; diff writes to stdout");
        goto done;
    }

    if (run.format == NULL || strcmp(run.format, "text") == 0) {
        json = 0;

    } else if (strcmp(run.format, "json") == 0) {
        json = 1;

    } else {
        cli_usage_error("diff: --format must be text or json, not \"%s\"",
                        cli_safe(run.format, safe, sizeof(safe)));
        goto done;
    }

    res = calloc(1, sizeof(cg_result_t));
    if (res == NULL) {
        fputs("certguard: out of memory\n", stderr);
        goto done;
    }

    status = run.problems ? CLI_EXIT_ERR : CLI_EXIT_OK;
    total = 0;
    changed = 0;
    memset(moves, 0, sizeof(moves));

    for (i = 0; i < run.nchains; i++) {
        if (cli_chain_load(&ch, run.chains[i], &run.ctx) != 0) {
            status = CLI_EXIT_ERR;
            continue;
        }

        if (cli_chain_score(&ch, run.policy[0], run.trust, run.geoip,
                            NULL, res, NULL)
            != 0)
        {
            cli_chain_free(&ch);
            status = CLI_EXIT_ERR;
            continue;
        }

        cli_outcome(res, &o[0]);

        if (cli_chain_score(&ch, run.policy[1], run.trust, run.geoip,
                            NULL, res, NULL)
            != 0)
        {
            cli_chain_free(&ch);
            status = CLI_EXIT_ERR;
            continue;
        }

        cli_outcome(res, &o[1]);
        total++;

        if (o[0].verdict == o[1].verdict) {
            cli_chain_free(&ch);
            continue;
        }

        changed++;
        moves[o[0].verdict][o[1].verdict]++;

        if (json) {
            fputs("{\"file\":", stdout);
            cli_json_str(stdout, ch.path);
            fputs(",\"name\":", stdout);
            if (ch.name) {
                cli_json_str(stdout, ch.name);
            } else {
                fputs("null", stdout);
            }
            printf(",\"from\":\"%s\",\"to\":\"%s\",\"score_from\":%d,"
                   "\"score_to\":%d,", cg_verdict_name(o[0].verdict),
                   cg_verdict_name(o[1].verdict), o[0].score, o[1].score);
            cli_diff_ids(stdout, &o[0], &o[1]);
            fputs("}\n", stdout);

        } else {
            /* a capture file's name is a digest: say whose chain it is */
            cli_outcome_delta(delta, sizeof(delta), &o[0], &o[1]);
            printf("%s: %s -> %s (%s%sscore %d -> %d",
                   cli_safe(ch.path, safe, sizeof(safe)),
                   cg_verdict_name(o[0].verdict),
                   cg_verdict_name(o[1].verdict),
                   delta, delta[0] ? "; " : "", o[0].score, o[1].score);
            printf("%s%s)\n", ch.name ? "; name " : "",
                   ch.name ? cli_safe(ch.name, safe, sizeof(safe)) : "");
        }

        cli_chain_free(&ch);
    }

    if (json) {
        printf("{\"changed\":%u,\"total\":%u,\"transitions\":{", changed,
               total);
    } else {
        printf("%u of %u verdicts change", changed, total);
    }

    first = 1;

    for (from = 0; from < 3; from++) {
        for (to = 0; to < 3; to++) {
            if (moves[from][to] == 0) {
                continue;
            }

            if (json) {
                printf("%s\"%s -> %s\":%u", first ? "" : ",",
                       cg_verdict_name(from), cg_verdict_name(to),
                       moves[from][to]);
            } else {
                printf("%s%s -> %s: %u", first ? " (" : ", ",
                       cg_verdict_name(from), cg_verdict_name(to),
                       moves[from][to]);
            }

            first = 0;
        }
    }

    if (json) {
        fputs("}}\n", stdout);
    } else {
        fputs(first ? "\n" : ")\n", stdout);
    }

    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "certguard: writing the results: %s\n",
                strerror(errno));
        status = CLI_EXIT_ERR;
    }

done:

    free(res);
    cli_run_close(&run);

    return status;
}
