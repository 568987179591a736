/*
 * The report's charts, inline SVG written directly: the page must stand
 * alone (no scripts, fonts or images from anywhere), and a chart is a few
 * rectangles.  Text in a chart is escaped like the rest of the page; each
 * mark carries its number as data-count so that a test reads the page's
 * numbers back from the DOM.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <string.h>

#include "cli.h"


#define CLI_SVG_W       720

static const char  *cli_verdict_fill[3] = { "#3b8b3f", "#d99a00", "#c62828" };


static unsigned cli_svg_nice(unsigned max);


/* Attacker-controlled text (subjects, issuers, names) as HTML: markup
 * escaped, bytes that are not UTF-8 and control characters as U+FFFD. */
void
cli_html(FILE *f, const char *s)
{
    size_t                i, k, n;
    uint32_t              cp;
    const unsigned char  *p;

    p = (const unsigned char *) s;
    n = strlen(s);

    for (i = 0; i < n; i += k) {
        k = cg_utf8_decode(p + i, n - i, &cp);

        if (k == 0 || cp < 0x20 || cp == 0x7f) {
            fputs("\xef\xbf\xbd", f);
            k = k ? k : 1;
            continue;
        }

        switch (cp) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fwrite(p + i, 1, k, f); break;
        }
    }
}


/* An axis maximum at or above max: 1, 2, 5 times a power of ten. */
static unsigned
cli_svg_nice(unsigned max)
{
    unsigned  m;

    for (m = 1; ; m *= 10) {
        if (max <= m) {
            return m;
        }
        if (max <= 2 * m) {
            return 2 * m;
        }
        if (max <= 5 * m) {
            return 5 * m;
        }
        if (m > 400000000) {
            return max;
        }
    }
}


void
cli_svg_stack(FILE *f, const char *id, const cli_stack_t *rows, unsigned n)
{
    unsigned  i, v, total, h, y, lw;
    double    x, w;

    lw = 150;
    h = 28 * n + 34;

    fprintf(f, "<svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/"
            "2000/svg\" width=\"%u\" height=\"%u\" viewBox=\"0 0 %u %u\" "
            "role=\"img\">\n", id, CLI_SVG_W, h, CLI_SVG_W, h);

    for (i = 0; i < n; i++) {
        y = 28 * i + 4;
        total = rows[i].v[0] + rows[i].v[1] + rows[i].v[2];

        fprintf(f, "<g class=\"stack\" data-label=\"");
        cli_html(f, rows[i].label);
        fprintf(f, "\" data-count=\"%u\">\n<text x=\"0\" y=\"%u\" "
                "class=\"label\">", total, y + 15);
        cli_html(f, rows[i].label);
        fputs("</text>\n", f);

        x = lw;

        for (v = 0; v < 3; v++) {
            w = total ? (double) (CLI_SVG_W - lw - 10) * rows[i].v[v]
                        / total
                      : 0;

            fprintf(f, "<rect class=\"seg %s\" data-count=\"%u\" x=\"%.1f\" "
                    "y=\"%u\" width=\"%.1f\" height=\"20\" fill=\"%s\">"
                    "<title>%s: %u</title></rect>\n",
                    cg_verdict_name(v), rows[i].v[v], x, y, w,
                    cli_verdict_fill[v], cg_verdict_name(v), rows[i].v[v]);

            if (w >= 28) {
                fprintf(f, "<text x=\"%.1f\" y=\"%u\" class=\"in\">%u"
                        "</text>\n", x + 4, y + 15, rows[i].v[v]);
            }

            x += w;
        }

        fputs("</g>\n", f);
    }

    /* the legend */

    y = 28 * n + 10;

    for (v = 0; v < 3; v++) {
        fprintf(f, "<rect x=\"%u\" y=\"%u\" width=\"12\" height=\"12\" "
                "fill=\"%s\"/><text x=\"%u\" y=\"%u\" class=\"label\">%s"
                "</text>\n", lw + 90 * v, y, cli_verdict_fill[v],
                lw + 90 * v + 16, y + 11, cg_verdict_name(v));
    }

    fputs("</svg>\n", f);
}


void
cli_svg_histogram(FILE *f, const char *id, int low, int width,
    const unsigned (*bins)[3], unsigned nbins)
{
    int       lo, hi;
    unsigned  i, v, max, top, total, step, ph, pw, left, base;
    double    bw, x, y, h;

    left = 48;
    ph = 160;
    pw = CLI_SVG_W - left - 10;
    base = ph + 10;

    max = 0;

    for (i = 0; i < nbins; i++) {
        total = bins[i][0] + bins[i][1] + bins[i][2];
        max = total > max ? total : max;
    }

    /* even, so that the half-way tick is a whole number */
    top = cli_svg_nice(max > 2 ? max : 2);
    bw = nbins ? (double) pw / nbins : pw;

    fprintf(f, "<svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/"
            "2000/svg\" width=\"%u\" height=\"%u\" viewBox=\"0 0 %u %u\" "
            "role=\"img\">\n", id, CLI_SVG_W, base + 44, CLI_SVG_W,
            base + 44);

    /* the count axis: 0, half, top */

    for (i = 0; i <= 2; i++) {
        y = base - (double) ph * i / 2;
        fprintf(f, "<line x1=\"%u\" y1=\"%.1f\" x2=\"%u\" y2=\"%.1f\" "
                "class=\"grid\"/><text x=\"%u\" y=\"%.1f\" class=\"tick\" "
                "text-anchor=\"end\">%u</text>\n", left, y, left + pw, y,
                left - 6, y + 4, top * i / 2);
    }

    step = nbins > 12 ? (nbins + 11) / 12 : 1;

    for (i = 0; i < nbins; i++) {
        lo = low + (int) i * width;
        hi = lo + width - 1;
        total = bins[i][0] + bins[i][1] + bins[i][2];
        x = left + bw * i;

        fprintf(f, "<g class=\"bin\" data-low=\"%d\" data-high=\"%d\" "
                "data-count=\"%u\"><title>score %d to %d: %u (%u allow, "
                "%u tag, %u block)</title>\n", lo, hi, total, lo, hi, total,
                bins[i][0], bins[i][1], bins[i][2]);

        y = base;

        for (v = 0; v < 3; v++) {
            if (bins[i][v] == 0) {
                continue;
            }

            h = (double) ph * bins[i][v] / top;
            y -= h;

            fprintf(f, "<rect class=\"%s\" data-count=\"%u\" x=\"%.1f\" "
                    "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                    "fill=\"%s\"/>\n", cg_verdict_name(v), bins[i][v],
                    x + 1, y, bw > 3 ? bw - 2 : bw, h, cli_verdict_fill[v]);
        }

        fputs("</g>\n", f);

        if (i % step == 0) {
            fprintf(f, "<text x=\"%.1f\" y=\"%u\" class=\"tick\" "
                    "text-anchor=\"middle\">%d</text>\n", x + bw / 2,
                    base + 16, lo);
        }
    }

    fprintf(f, "<text x=\"%u\" y=\"%u\" class=\"label\" "
            "text-anchor=\"middle\">score (bins of %d)</text>\n",
            left + pw / 2, base + 38, width);

    fputs("</svg>\n", f);
}


void
cli_svg_bars(FILE *f, const char *id, const char *const *labels,
    const unsigned *v, unsigned n)
{
    unsigned  i, max, lw, y, h;
    double    w;

    lw = 190;
    h = 24 * n + 8;
    max = 0;

    for (i = 0; i < n; i++) {
        max = v[i] > max ? v[i] : max;
    }

    fprintf(f, "<svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/"
            "2000/svg\" width=\"%u\" height=\"%u\" viewBox=\"0 0 %u %u\" "
            "role=\"img\">\n", id, CLI_SVG_W, h, CLI_SVG_W, h);

    for (i = 0; i < n; i++) {
        y = 24 * i + 4;
        w = max ? (double) (CLI_SVG_W - lw - 50) * v[i] / max : 0;

        fputs("<g class=\"bar\" data-label=\"", f);
        cli_html(f, labels[i]);
        fprintf(f, "\" data-count=\"%u\"><text x=\"%u\" y=\"%u\" "
                "class=\"label\" text-anchor=\"end\">", v[i], lw - 8, y + 13);
        cli_html(f, labels[i]);
        fprintf(f, "</text><rect x=\"%u\" y=\"%u\" width=\"%.1f\" "
                "height=\"17\" fill=\"#5c6bc0\"/><text x=\"%.1f\" y=\"%u\" "
                "class=\"tick\">%u</text></g>\n", lw, y, w, lw + w + 6,
                y + 13, v[i]);
    }

    fputs("</svg>\n", f);
}
