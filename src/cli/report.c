/*
 * certguard report: one HTML page about a set of chains (a capture
 * directory, typically) under a policy, and with a second policy what
 * would change: the verdict mix, the score histogram, the signals that
 * fire most, the issuers and destinations behind the blocks and tags.
 *
 * The page stands alone: inline CSS, inline SVG (report_svg.c), no
 * scripts, no fonts or images from elsewhere, so it can be mailed or
 * attached to a change ticket.  Every name and certificate field on it is
 * text a server or a client chose, and is escaped as such.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"


#define CLI_REPORT_SIGNALS      15
#define CLI_REPORT_ISSUERS      20
#define CLI_REPORT_ROWS         100


static const char  cli_report_usage[] =
"usage: certguard report --policy P [--policy NEW]\n"
"                        [--ca-file FILE [--no-system-roots]]\n"
"                        [--sni NAME] [--at UNIXTIME]\n"
"                        DIR|FILES -o report.html\n"
"\n"
"Scores each chain (or each chain of a capture directory) under P and\n"
"writes one self-contained HTML page to -o (\"-\": stdout): the verdict\n"
"mix, a score histogram, the signals that fire most, the issuers and\n"
"destinations behind the blocks and tags; with a second policy, the\n"
"verdicts that change.  Name, destination and time come from each\n"
"chain's sidecar unless --sni or --at give them.  --geoip-country FILE,\n"
"--geoip-asn FILE and --crl FILE (repeatable) as for check.\n"
"Exit status: 0 when the page was written from every input; 2 on usage\n"
"errors and unreadable input (the page is still written from the rest).\n";


typedef struct {
    const char     *path;
    char            name[CG_NAME_MAX];
    char            dst[CG_CAPTURE_ADDR_MAX + 8];
    char            issuer[CG_DN_MAX];
    uint64_t        seen;                   /* sightings */
    int64_t         last_seen;
    cli_outcome_t   o[2];
} cli_row_t;


typedef struct {
    char            id[CG_ID_MAX];
    unsigned        n[2];                   /* chains it fires for */
} cli_signal_t;


typedef struct {
    cli_run_t      *run;
    FILE           *f;
    cli_row_t      *rows;
    unsigned        nrows;
    int             npol;
    uint64_t        sightings;
    int64_t         first, last;
    unsigned        verdicts[2][3];
    uint64_t        seen[2][3];
} cli_report_t;


static int cli_report_row(cli_report_t *r, cli_chain_t *ch,
    cg_result_t *res);
static void cli_report_page(cli_report_t *r);
static void cli_report_head(cli_report_t *r);
static void cli_report_verdicts(cli_report_t *r);
static void cli_report_scores(cli_report_t *r);
static void cli_report_signals(cli_report_t *r);
static void cli_report_issuers(cli_report_t *r);
static void cli_report_destinations(cli_report_t *r);
static void cli_report_changes(cli_report_t *r);
static void cli_report_policy(cli_report_t *r, int p);
static void cli_report_ids(FILE *f, const cli_outcome_t *o);
static void cli_report_time(FILE *f, int64_t t);
static int cli_report_by_issuer(const void *a, const void *b);
static int cli_report_by_verdict(const void *a, const void *b);
static int cli_report_by_count(const void *a, const void *b);


static const char  cli_report_css[] =
"body{font-family:system-ui,-apple-system,\"Segoe UI\",sans-serif;"
"margin:0;background:#f5f6f8;color:#1d2330}"
"main{max-width:1100px;margin:0 auto;padding:24px 32px 48px}"
"h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:0 0 12px}"
"header p{margin:2px 0;color:#4a5263}"
"section{background:#fff;border:1px solid #dde1e8;border-radius:8px;"
"padding:18px 22px;margin:18px 0}"
".cards{display:flex;gap:14px;flex-wrap:wrap;margin-top:16px}"
".card{background:#fff;border:1px solid #dde1e8;border-radius:8px;"
"padding:12px 18px;min-width:120px}"
".card b{display:block;font-size:26px}.card span{color:#4a5263}"
".card.allow b{color:#3b8b3f}.card.tag b{color:#b07d00}"
".card.block b{color:#c62828}"
"table{border-collapse:collapse;width:100%;font-size:14px;"
"margin-top:10px}"
"th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #edf0f4;"
"vertical-align:top}th{background:#f0f2f6}"
"td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
"td.dn{word-break:break-all;max-width:420px}"
".v{font-weight:600}.v.allow{color:#3b8b3f}.v.tag{color:#b07d00}"
".v.block{color:#c62828}"
"code{font-size:13px;background:#f0f2f6;padding:1px 4px;border-radius:3px}"
"svg.chart{display:block;max-width:100%;height:auto;margin:8px 0}"
"svg text{font-size:12px;fill:#1d2330}svg text.in{fill:#fff}"
"svg text.tick{fill:#4a5263;font-size:11px}"
"svg line.grid{stroke:#e3e6ec}"
".empty{color:#4a5263;font-style:italic}"
"footer{color:#6b7385;font-size:12px;margin-top:20px}";


int
cli_report(int argc, char **argv)
{
    int            i, rc, status, tostdout;
    char           safe[512];
    cli_run_t      run;
    cli_chain_t    ch;
    cg_result_t   *res;
    cli_report_t   r;

    rc = cli_run_open(&run, argc, argv, cli_report_usage);
    if (rc != 0) {
        cli_run_close(&run);
        return rc > 0 ? CLI_EXIT_OK : CLI_EXIT_ERR;
    }

    memset(&r, 0, sizeof(r));
    r.run = &run;
    r.npol = run.npolicies;
    status = CLI_EXIT_ERR;
    res = NULL;
    tostdout = 0;

    if (run.output == NULL) {
        cli_usage_error("report: -o FILE is required (\"-\": stdout)");
        goto done;
    }

    if (run.format) {
        cli_usage_error("report: --format is for diff; report writes "
                        "HTML");
        goto done;
    }

    res = calloc(1, sizeof(cg_result_t));
    r.rows = calloc((size_t) run.nchains + 1, sizeof(cli_row_t));
    if (res == NULL || r.rows == NULL) {
        fputs("certguard: out of memory\n", stderr);
        goto done;
    }

    status = run.problems ? CLI_EXIT_ERR : CLI_EXIT_OK;

    for (i = 0; i < run.nchains; i++) {
        if (cli_chain_load(&ch, run.chains[i], &run.ctx) != 0) {
            status = CLI_EXIT_ERR;
            continue;
        }

        if (cli_report_row(&r, &ch, res) != 0) {
            status = CLI_EXIT_ERR;
        }

        cli_chain_free(&ch);
    }

    tostdout = strcmp(run.output, "-") == 0;
    r.f = tostdout ? stdout : fopen(run.output, "w");

    if (r.f == NULL) {
        fprintf(stderr, "certguard: %s: %s\n",
                cli_safe(run.output, safe, sizeof(safe)), strerror(errno));
        status = CLI_EXIT_ERR;
        goto done;
    }

    cli_report_page(&r);

    if (fflush(r.f) != 0 || ferror(r.f)
        || (!tostdout && fclose(r.f) != 0))
    {
        fprintf(stderr, "certguard: %s: %s\n",
                cli_safe(run.output, safe, sizeof(safe)), strerror(errno));
        status = CLI_EXIT_ERR;
    }

done:

    free(res);
    free(r.rows);
    cli_run_close(&run);

    return status;
}


static int
cli_report_row(cli_report_t *r, cli_chain_t *ch, cg_result_t *res)
{
    int         p;
    cli_row_t  *row;

    row = &r->rows[r->nrows];
    memset(row, 0, sizeof(cli_row_t));

    for (p = 0; p < r->npol; p++) {
        if (cli_chain_score(ch, r->run->policy[p], r->run->trust,
                            r->run->geoip, NULL, res, NULL)
            != 0)
        {
            return -1;
        }

        cli_outcome(res, &row->o[p]);

        if (p == 0) {
            memcpy(row->issuer, res->issuer, sizeof(row->issuer));
        }
    }

    row->path = ch->path;
    snprintf(row->name, sizeof(row->name), "%s", ch->name ? ch->name : "");

    if (ch->dst_addr) {
        snprintf(row->dst, sizeof(row->dst),
                 strchr(ch->dst_addr, ':') ? "[%s]:%u" : "%s:%u",
                 ch->dst_addr, ch->dst_port);
    }

    row->seen = (ch->has_rec && ch->rec.count) ? ch->rec.count : 1;
    row->last_seen = ch->has_rec ? ch->rec.last_seen : 0;

    if (ch->has_rec && ch->rec.first_seen
        && (r->first == 0 || ch->rec.first_seen < r->first))
    {
        r->first = ch->rec.first_seen;
    }

    if (ch->has_rec && ch->rec.last_seen > r->last) {
        r->last = ch->rec.last_seen;
    }

    for (p = 0; p < r->npol; p++) {
        r->verdicts[p][row->o[p].verdict]++;
        r->seen[p][row->o[p].verdict] += row->seen;
    }

    r->sightings += row->seen;
    r->nrows++;

    return 0;
}


static void
cli_report_time(FILE *f, int64_t t)
{
    char       buf[32];
    time_t     tt;
    struct tm  tm;

    tt = (time_t) t;

    if (t == 0 || gmtime_r(&tt, &tm) == NULL) {
        fputs("-", f);
        return;
    }

    strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm);
    fputs(buf, f);
}


/* "default (policies/default.policy)" */
static void
cli_report_policy(cli_report_t *r, int p)
{
    fputs("<code>", r->f);
    cli_html(r->f, cg_policy_name(r->run->policy[p]));
    fputs("</code> (", r->f);
    cli_html(r->f, r->run->policy_file[p]);
    fputs(")", r->f);
}


static void
cli_report_ids(FILE *f, const cli_outcome_t *o)
{
    unsigned  i;

    for (i = 0; i < o->nhits; i++) {
        fputs(i ? ", " : "", f);
        cli_html(f, o->ids[i]);
    }
}


static void
cli_report_page(cli_report_t *r)
{
    FILE  *f;

    f = r->f;

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
          "<meta charset=\"utf-8\">\n"
          "<meta http-equiv=\"Content-Security-Policy\" content=\""
          "default-src 'none'; style-src 'unsafe-inline'\">\n"
          "<title>certguard report</title>\n<style>", f);
    fputs(cli_report_css, f);
    fputs("</style>\n</head>\n<body>\n", f);

    fprintf(f, "<main id=\"report\" data-chains=\"%u\" "
            "data-sightings=\"%llu\" data-policies=\"%d\">\n", r->nrows,
            (unsigned long long) r->sightings, r->npol);

    cli_report_head(r);
    cli_report_verdicts(r);
    cli_report_scores(r);
    cli_report_signals(r);
    cli_report_issuers(r);
    cli_report_destinations(r);

    if (r->npol == 2) {
        cli_report_changes(r);
    }

    fputs("<footer>Written by certguard " CG_VERSION " (certguard report)"
          ". Scores are the engine's, replayed with each chain's name, "
          "destination and time of its last sighting.</footer>\n", f);
    fputs("</main>\n</body>\n</html>\n", f);
}


static void
cli_report_head(cli_report_t *r)
{
    int       v;
    FILE     *f;
    time_t    now;

    f = r->f;
    now = time(NULL);

    fputs("<header>\n<h1>certguard report</h1>\n<p>Policy ", f);
    cli_report_policy(r, 0);

    if (r->npol == 2) {
        fputs(", compared with ", f);
        cli_report_policy(r, 1);
    }

    fprintf(f, "</p>\n<p>%u chains, %llu sightings", r->nrows,
            (unsigned long long) r->sightings);

    if (r->first) {
        fputs(", seen from ", f);
        cli_report_time(f, r->first);
        fputs(" to ", f);
        cli_report_time(f, r->last);
    }

    fputs("; written ", f);
    cli_report_time(f, (int64_t) now);
    fputs("</p>\n<div class=\"cards\">\n", f);

    fprintf(f, "<div class=\"card\" id=\"card-chains\"><b>%u</b>"
            "<span>chains</span></div>\n", r->nrows);

    for (v = 0; v < 3; v++) {
        fprintf(f, "<div class=\"card %s\" id=\"card-%s\" "
                "data-count=\"%u\"><b>%u</b><span>%s</span></div>\n",
                cg_verdict_name(v), cg_verdict_name(v), r->verdicts[0][v],
                r->verdicts[0][v], cg_verdict_name(v));
    }

    fputs("</div>\n</header>\n", f);
}


static void
cli_report_verdicts(cli_report_t *r)
{
    int          p, v;
    char         label[2][160];
    FILE        *f;
    cli_stack_t  rows[2];

    f = r->f;

    fputs("<section id=\"verdicts\">\n<h2>Verdict mix</h2>\n", f);

    for (p = 0; p < r->npol; p++) {
        snprintf(label[p], sizeof(label[p]), "%s%s",
                 cg_policy_name(r->run->policy[p]),
                 r->npol == 2 ? (p ? " (new)" : " (old)") : "");
        rows[p].label = label[p];

        for (v = 0; v < 3; v++) {
            rows[p].v[v] = r->verdicts[p][v];
        }
    }

    cli_svg_stack(f, "verdict-chart", rows, (unsigned) r->npol);

    fputs("<table class=\"verdicts\">\n<tr><th>policy</th><th>verdict</th>"
          "<th class=\"n\">chains</th><th class=\"n\">share</th>"
          "<th class=\"n\">sightings</th></tr>\n", f);

    for (p = 0; p < r->npol; p++) {
        for (v = 0; v < 3; v++) {
            fprintf(f, "<tr class=\"verdict\" data-policy=\"%d\" "
                    "data-verdict=\"%s\" data-count=\"%u\"><td>", p,
                    cg_verdict_name(v), r->verdicts[p][v]);
            cli_html(f, label[p]);
            fprintf(f, "</td><td class=\"v %s\">%s</td><td class=\"n\">%u"
                    "</td><td class=\"n\">%.1f%%</td><td class=\"n\">%llu"
                    "</td></tr>\n", cg_verdict_name(v), cg_verdict_name(v),
                    r->verdicts[p][v],
                    r->nrows ? 100.0 * r->verdicts[p][v] / r->nrows : 0.0,
                    (unsigned long long) r->seen[p][v]);
        }
    }

    fputs("</table>\n</section>\n", f);
}


static void
cli_report_scores(cli_report_t *r)
{
    int        p, lo, hi, width, s;
    char       id[32];
    FILE      *f;
    unsigned   i, nbins, k;
    unsigned (*bins)[3];

    static const int  widths[] = { 1, 2, 5, 10, 20, 25, 50, 100, 200, 250,
                                   500, 1000, 2000, 5000, 10000, 100000,
                                   1000000, 10000000, 100000000 };

    f = r->f;

    fputs("<section id=\"scores\">\n<h2>Score histogram</h2>\n", f);

    if (r->nrows == 0) {
        fputs("<p class=\"empty\">No chains.</p>\n</section>\n", f);
        return;
    }

    for (p = 0; p < r->npol; p++) {
        lo = 0;
        hi = 0;

        for (i = 0; i < r->nrows; i++) {
            s = r->rows[i].o[p].score;
            lo = s < lo ? s : lo;
            hi = s > hi ? s : hi;
        }

        /* at most 24 bins of a round width, 0 on a bin's edge */

        width = widths[0];

        for (k = 0; k < sizeof(widths) / sizeof(widths[0]); k++) {
            width = widths[k];

            if (((long long) hi - (lo - (((lo % width) + width) % width)))
                / width + 1 <= 24)
            {
                break;
            }
        }

        lo -= ((lo % width) + width) % width;
        nbins = (unsigned) (((long long) hi - lo) / width + 1);

        bins = calloc(nbins, sizeof(*bins));
        if (bins == NULL) {
            fputs("<p class=\"empty\">Out of memory.</p>\n", f);
            continue;
        }

        for (i = 0; i < r->nrows; i++) {
            k = (unsigned) (((long long) r->rows[i].o[p].score - lo)
                            / width);
            bins[k][r->rows[i].o[p].verdict]++;
        }

        if (r->npol == 2) {
            fputs("<h3>", f);
            cli_report_policy(r, p);
            fputs(p ? " (new)</h3>\n" : " (old)</h3>\n", f);
        }

        snprintf(id, sizeof(id), "score-histogram-%d", p);
        cli_svg_histogram(f, id, lo, width, (const unsigned (*)[3]) bins,
                          nbins);
        free(bins);
    }

    fputs("</section>\n", f);
}


static int
cli_report_by_count(const void *a, const void *b)
{
    const cli_signal_t  *x = a, *y = b;

    if (x->n[0] != y->n[0]) {
        return x->n[0] < y->n[0] ? 1 : -1;
    }

    if (x->n[1] != y->n[1]) {
        return x->n[1] < y->n[1] ? 1 : -1;
    }

    return strcmp(x->id, y->id);
}


static void
cli_report_signals(cli_report_t *r)
{
    int            p;
    FILE          *f;
    unsigned       i, j, h, n, size, shown;
    cli_signal_t  *all, *na;
    const char    *labels[CLI_REPORT_SIGNALS];
    unsigned       counts[CLI_REPORT_SIGNALS];

    f = r->f;
    all = NULL;
    n = 0;
    size = 0;

    for (i = 0; i < r->nrows; i++) {
        for (p = 0; p < r->npol; p++) {
            for (h = 0; h < r->rows[i].o[p].nhits; h++) {
                for (j = 0; j < n; j++) {
                    if (strcmp(all[j].id, r->rows[i].o[p].ids[h]) == 0) {
                        break;
                    }
                }

                if (j == n) {
                    if (n == size) {
                        size = size ? size * 2 : 32;
                        na = realloc(all, size * sizeof(cli_signal_t));
                        if (na == NULL) {
                            free(all);
                            return;
                        }
                        all = na;
                    }

                    memset(&all[n], 0, sizeof(cli_signal_t));
                    memcpy(all[n].id, r->rows[i].o[p].ids[h], CG_ID_MAX);
                    n++;
                }

                all[j].n[p]++;
            }
        }
    }

    if (n) {
        qsort(all, n, sizeof(cli_signal_t), cli_report_by_count);
    }

    fputs("<section id=\"signals\">\n<h2>Signals that fire most</h2>\n",
          f);

    shown = 0;

    for (i = 0; i < n && shown < CLI_REPORT_SIGNALS; i++) {
        if (all[i].n[0] == 0) {
            continue;
        }

        labels[shown] = all[i].id;
        counts[shown] = all[i].n[0];
        shown++;
    }

    if (shown) {
        cli_svg_bars(f, "signal-chart", labels, counts, shown);
    }

    if (n == 0) {
        fputs("<p class=\"empty\">No signal fired.</p>\n</section>\n", f);
        free(all);
        return;
    }

    fprintf(f, "<table class=\"signals\">\n<tr><th>signal</th>"
            "<th class=\"n\">chains%s</th>%s</tr>\n",
            r->npol == 2 ? " (old)" : "",
            r->npol == 2 ? "<th class=\"n\">chains (new)</th>" : "");

    for (i = 0; i < n; i++) {
        fputs("<tr class=\"signal\" data-signal=\"", f);
        cli_html(f, all[i].id);
        fprintf(f, "\" data-count=\"%u\"", all[i].n[0]);

        if (r->npol == 2) {
            fprintf(f, " data-count-new=\"%u\"", all[i].n[1]);
        }

        fputs("><td><code>", f);
        cli_html(f, all[i].id);
        fprintf(f, "</code></td><td class=\"n\">%u</td>", all[i].n[0]);

        if (r->npol == 2) {
            fprintf(f, "<td class=\"n\">%u</td>", all[i].n[1]);
        }

        fputs("</tr>\n", f);
    }

    fputs("</table>\n</section>\n", f);
    free(all);
}


static int
cli_report_by_issuer(const void *a, const void *b)
{
    const cli_row_t  *x = *(cli_row_t * const *) a;
    const cli_row_t  *y = *(cli_row_t * const *) b;

    return strcmp(x->issuer, y->issuer);
}


typedef struct {
    const char  *issuer;
    unsigned     n[3];
    uint64_t     seen;
} cli_issuer_t;


static int
cli_report_issuer_cmp(const void *a, const void *b)
{
    const cli_issuer_t  *x = a, *y = b;
    unsigned             nx, ny;

    nx = x->n[CG_BLOCK] + x->n[CG_TAG];
    ny = y->n[CG_BLOCK] + y->n[CG_TAG];

    if (x->n[CG_BLOCK] != y->n[CG_BLOCK]) {
        return x->n[CG_BLOCK] < y->n[CG_BLOCK] ? 1 : -1;
    }

    if (nx != ny) {
        return nx < ny ? 1 : -1;
    }

    return strcmp(x->issuer, y->issuer);
}


static void
cli_report_issuers(cli_report_t *r)
{
    FILE          *f;
    unsigned       i, n, ng;
    cli_row_t    **sel;
    cli_issuer_t  *g;

    f = r->f;

    fputs("<section id=\"issuers\">\n<h2>Issuers behind blocks and tags"
          "</h2>\n", f);

    sel = calloc(r->nrows + 1, sizeof(cli_row_t *));
    g = calloc(r->nrows + 1, sizeof(cli_issuer_t));

    if (sel == NULL || g == NULL) {
        free(sel);
        free(g);
        fputs("<p class=\"empty\">Out of memory.</p>\n</section>\n", f);
        return;
    }

    n = 0;

    for (i = 0; i < r->nrows; i++) {
        if (r->rows[i].o[0].verdict != CG_ALLOW) {
            sel[n++] = &r->rows[i];
        }
    }

    qsort(sel, n, sizeof(cli_row_t *), cli_report_by_issuer);

    ng = 0;

    for (i = 0; i < n; i++) {
        if (ng == 0 || strcmp(g[ng - 1].issuer, sel[i]->issuer) != 0) {
            g[ng++].issuer = sel[i]->issuer;
        }

        g[ng - 1].n[sel[i]->o[0].verdict]++;
        g[ng - 1].seen += sel[i]->seen;
    }

    qsort(g, ng, sizeof(cli_issuer_t), cli_report_issuer_cmp);

    if (ng == 0) {
        fputs("<p class=\"empty\">Nothing was blocked or tagged.</p>\n", f);

    } else {
        fputs("<table class=\"issuers\">\n<tr><th>issuer</th>"
              "<th class=\"n\">block</th><th class=\"n\">tag</th>"
              "<th class=\"n\">sightings</th></tr>\n", f);

        for (i = 0; i < ng && i < CLI_REPORT_ISSUERS; i++) {
            fprintf(f, "<tr class=\"issuer\" data-block=\"%u\" "
                    "data-tag=\"%u\"><td class=\"dn\">", g[i].n[CG_BLOCK],
                    g[i].n[CG_TAG]);
            cli_html(f, g[i].issuer[0] ? g[i].issuer : "(empty)");
            fprintf(f, "</td><td class=\"n\">%u</td><td class=\"n\">%u</td>"
                    "<td class=\"n\">%llu</td></tr>\n", g[i].n[CG_BLOCK],
                    g[i].n[CG_TAG], (unsigned long long) g[i].seen);
        }

        fputs("</table>\n", f);

        if (ng > CLI_REPORT_ISSUERS) {
            fprintf(f, "<p class=\"empty\">and %u more issuers</p>\n",
                    ng - CLI_REPORT_ISSUERS);
        }
    }

    fputs("</section>\n", f);
    free(sel);
    free(g);
}


static int
cli_report_by_verdict(const void *a, const void *b)
{
    const cli_row_t  *x = *(cli_row_t * const *) a;
    const cli_row_t  *y = *(cli_row_t * const *) b;

    if (x->o[0].verdict != y->o[0].verdict) {
        return x->o[0].verdict < y->o[0].verdict ? 1 : -1;
    }

    if (x->o[0].score != y->o[0].score) {
        return x->o[0].score < y->o[0].score ? 1 : -1;
    }

    return strcmp(x->path, y->path);
}


static void
cli_report_destinations(cli_report_t *r)
{
    FILE        *f;
    unsigned     i, n;
    cli_row_t  **sel, *row;

    f = r->f;

    fputs("<section id=\"destinations\">\n<h2>Destinations behind blocks "
          "and tags</h2>\n", f);

    sel = calloc(r->nrows + 1, sizeof(cli_row_t *));
    if (sel == NULL) {
        fputs("<p class=\"empty\">Out of memory.</p>\n</section>\n", f);
        return;
    }

    n = 0;

    for (i = 0; i < r->nrows; i++) {
        if (r->rows[i].o[0].verdict != CG_ALLOW) {
            sel[n++] = &r->rows[i];
        }
    }

    qsort(sel, n, sizeof(cli_row_t *), cli_report_by_verdict);

    if (n == 0) {
        fputs("<p class=\"empty\">Nothing was blocked or tagged.</p>\n", f);

    } else {
        fputs("<table class=\"destinations\">\n<tr><th>name</th>"
              "<th>destination</th><th>verdict</th><th class=\"n\">score"
              "</th><th>signals</th><th class=\"n\">sightings</th>"
              "<th>last seen</th><th>chain</th></tr>\n", f);

        for (i = 0; i < n && i < CLI_REPORT_ROWS; i++) {
            row = sel[i];

            fprintf(f, "<tr class=\"destination\" data-verdict=\"%s\" "
                    "data-score=\"%d\"><td>",
                    cg_verdict_name(row->o[0].verdict), row->o[0].score);
            cli_html(f, row->name[0] ? row->name : "-");
            fputs("</td><td>", f);
            cli_html(f, row->dst[0] ? row->dst : "-");
            fprintf(f, "</td><td class=\"v %s\">%s</td><td class=\"n\">%d"
                    "</td><td>", cg_verdict_name(row->o[0].verdict),
                    cg_verdict_name(row->o[0].verdict), row->o[0].score);
            cli_report_ids(f, &row->o[0]);
            fprintf(f, "</td><td class=\"n\">%llu</td><td>",
                    (unsigned long long) row->seen);
            cli_report_time(f, row->last_seen);
            fputs("</td><td class=\"dn\"><code>", f);
            cli_html(f, strrchr(row->path, '/') ? strrchr(row->path, '/') + 1
                                                : row->path);
            fputs("</code></td></tr>\n", f);
        }

        fputs("</table>\n", f);

        if (n > CLI_REPORT_ROWS) {
            fprintf(f, "<p class=\"empty\">and %u more chains</p>\n",
                    n - CLI_REPORT_ROWS);
        }
    }

    fputs("</section>\n", f);
    free(sel);
}


static void
cli_report_changes(cli_report_t *r)
{
    FILE       *f;
    char        delta[1024];
    unsigned    i, shown, changed, a, b, moves[3][3];
    cli_row_t  *row;

    f = r->f;
    changed = 0;
    memset(moves, 0, sizeof(moves));

    for (i = 0; i < r->nrows; i++) {
        a = r->rows[i].o[0].verdict;
        b = r->rows[i].o[1].verdict;

        if (a != b) {
            moves[a][b]++;
            changed++;
        }
    }

    fprintf(f, "<section id=\"changes\" data-changed=\"%u\" "
            "data-total=\"%u\">\n<h2>What changes</h2>\n<p class=\"summary\">"
            "%u of %u verdicts change</p>\n", changed, r->nrows, changed,
            r->nrows);

    if (changed == 0) {
        fputs("</section>\n", f);
        return;
    }

    fputs("<table class=\"transitions\">\n<tr><th>from</th><th>to</th>"
          "<th class=\"n\">chains</th></tr>\n", f);

    for (a = 0; a < 3; a++) {
        for (b = 0; b < 3; b++) {
            if (moves[a][b] == 0) {
                continue;
            }

            fprintf(f, "<tr class=\"transition\" data-from=\"%s\" "
                    "data-to=\"%s\" data-count=\"%u\"><td class=\"v %s\">%s"
                    "</td><td class=\"v %s\">%s</td><td class=\"n\">%u</td>"
                    "</tr>\n", cg_verdict_name(a), cg_verdict_name(b),
                    moves[a][b], cg_verdict_name(a), cg_verdict_name(a),
                    cg_verdict_name(b), cg_verdict_name(b), moves[a][b]);
        }
    }

    fputs("</table>\n<table class=\"changes\">\n<tr><th>name</th>"
          "<th>verdict</th><th class=\"n\">score</th><th>signals</th>"
          "<th>chain</th></tr>\n", f);

    shown = 0;

    for (i = 0; i < r->nrows && shown < CLI_REPORT_ROWS; i++) {
        row = &r->rows[i];

        if (row->o[0].verdict == row->o[1].verdict) {
            continue;
        }

        shown++;
        cli_outcome_delta(delta, sizeof(delta), &row->o[0], &row->o[1]);

        fprintf(f, "<tr class=\"change\" data-from=\"%s\" data-to=\"%s\">"
                "<td>", cg_verdict_name(row->o[0].verdict),
                cg_verdict_name(row->o[1].verdict));
        cli_html(f, row->name[0] ? row->name : "-");
        fprintf(f, "</td><td><span class=\"v %s\">%s</span> &rarr; "
                "<span class=\"v %s\">%s</span></td><td class=\"n\">%d "
                "&rarr; %d</td><td><code>",
                cg_verdict_name(row->o[0].verdict),
                cg_verdict_name(row->o[0].verdict),
                cg_verdict_name(row->o[1].verdict),
                cg_verdict_name(row->o[1].verdict),
                row->o[0].score, row->o[1].score);
        cli_html(f, delta[0] ? delta : "weights or thresholds");
        fputs("</code></td><td class=\"dn\"><code>", f);
        cli_html(f, strrchr(row->path, '/') ? strrchr(row->path, '/') + 1
                                            : row->path);
        fputs("</code></td></tr>\n", f);
    }

    fputs("</table>\n", f);

    if (changed > shown) {
        fprintf(f, "<p class=\"empty\">and %u more changes</p>\n",
                changed - shown);
    }

    fputs("</section>\n", f);
}
