/*
 * What the files of the certguard CLI share: the helpers of certguard.c,
 * reading chains with their capture sidecars (capture.c), loading the
 * engine's objects (load.c), and the commands of the tuning loop, diff
 * (diff.c) and report (report.c, report_svg.c).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef CLI_H
#define CLI_H

#include <stdio.h>

#include "certguard.h"
#include "cg_capture.h"


#define CLI_EXIT_OK     0
#define CLI_EXIT_ERR    2


/* certguard.c */
int cli_usage_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
const char *cli_safe(const char *s, char *buf, size_t len);
void cli_json_str(FILE *f, const char *s);
int cli_read_file(const char *path, unsigned char **data, size_t *len,
    const char **problem);
int cli_parse_at(const char *arg, int64_t *at);
int cli_option(int argc, char **argv, int *i, const char *name,
    const char **value);


/* verify_memo.c: the run's memo of verified signatures (NULL: off) */
void cli_verify_memo_options(int off, int stats);
const cg_verify_memo_t *cli_verify_memo(void);
void cli_verify_memo_done(void);


/* What the command line says for every chain of a run; NULL (has_at 0)
 * where each chain's sidecar, if any, says it. */
typedef struct {
    const char          *sni;
    const char          *client_sni;
    const char          *dst_addr;
    unsigned             dst_port;
    int64_t              at;                /* the clock when not has_at */
    unsigned             has_at:1;
    cg_certs_t          *certs;             /* the run's parsed ones, or
                                               NULL */
    const cg_crls_t     *crls;              /* --crl, every file's, or
                                               NULL */
} cli_context_t;


/* One chain to score, with what its sidecar said and what it is scored
 * with: the command line's value, else the sidecar's, else none. */
typedef struct {
    const char          *path;
    STACK_OF(X509)      *chain;
    cg_capture_record_t  rec;
    unsigned             has_rec:1;

    const char          *name;
    const char          *client_sni;
    const char          *dst_addr;
    unsigned             dst_port;
    int64_t              at;

    const cg_crls_t     *crls;              /* NULL: none */
    const unsigned char *ocsp;              /* a stapled response, or NULL */
    size_t               ocsp_len;
    /* check's own: zero for the other commands */
    const cg_intermediates_t *intermediates;
    unsigned             max_depth;
    unsigned             max_depth_on;
    cg_certs_t          *certs;     /* the run's, as parsed through */
} cli_chain_t;


/*
 * The chain files that arguments name: a directory stands for its *.pem
 * files in name order, a sidecar (x.json beside x.pem) for its chain, and
 * a chain named twice in a row (x.json x.pem, as a shell glob of DIR gives
 * them) is scored once.  *paths is NULL-terminated; free it with
 * cli_inputs_free().  Returns the number of problems, each reported as one
 * stderr line; -1 when out of memory.
 */
int cli_inputs(char **args, int nargs, char ***paths, int *npaths);
void cli_inputs_free(char **paths);

/* Reads the chain at path and its sidecar; 0, or -1 after one stderr
 * line naming the file. */
int cli_chain_load(cli_chain_t *ch, const char *path,
    const cli_context_t *ctx);
void cli_chain_free(cli_chain_t *ch);

/* Scores a loaded chain; 0, or -1 after one stderr line. */
/* memory and inp may be NULL; *inp is the input evaluated, valid while
 * ch is (for recording a sighting). */
int cli_chain_score(const cli_chain_t *ch, const cg_policy_t *policy,
    const cg_trust_t *trust, const cg_geoip_t *geoip, cg_memory_t *memory,
    cg_result_t *res, cg_input_t *inp);


/* load.c: each reports its failure as check does, and returns -1. */
int cli_load_policy(const char *path, cg_policy_t **policy);
int cli_load_trust(const char *ca_file, int no_system, cg_trust_t **trust);
/* every file's CRLs (--crl, repeatable) into *crls */
int cli_load_crls(const char **files, int nfiles, cg_crls_t **crls);


/* A run of diff or report: its options, the objects and the chains. */
typedef struct {
    const char          *cmd;
    const char          *policy_file[2];
    int                  npolicies;
    const char          *ca_file;
    unsigned             no_system:1;       /* --no-system-roots */
    const char          *geoip_country;
    const char          *geoip_asn;
    const char          *format;            /* diff: text or json */
    const char          *output;            /* report: -o FILE */
    cli_context_t        ctx;

    cg_policy_t         *policy[2];
    cg_trust_t          *trust;
    cg_geoip_t          *geoip;
    cg_crls_t           *crls;

    char               **chains;
    int                  nchains;
    int                  problems;          /* inputs not listed */
} cli_run_t;

/*
 * Parses the options of cmd (argv[1]); usage is its usage text, printed
 * for --help.  Then loads the objects and lists the chains.  0 to go on,
 * 1 when --help was printed, -1 after one stderr line (exit 2); a chain
 * file that cannot be listed only counts in run->problems.
 */
int cli_run_open(cli_run_t *run, int argc, char **argv, const char *usage);
void cli_run_close(cli_run_t *run);


/* A result reduced to what diff and report compare: the hits that count
 * (not exempt), in the engine's order. */
typedef struct {
    cg_verdict_t         verdict;
    int                  score;
    unsigned             nhits;
    char                 ids[CG_MAX_HITS][CG_ID_MAX];
    int                  weights[CG_MAX_HITS];
} cli_outcome_t;

void cli_outcome(const cg_result_t *res, cli_outcome_t *o);

/* "+fires_now -fired_before id 10->40": how the hits of one chain differ
 * between two outcomes, "" when they do not; cut to fit len. */
void cli_outcome_delta(char *buf, size_t len, const cli_outcome_t *from,
    const cli_outcome_t *to);

int cli_diff(int argc, char **argv);
int cli_report(int argc, char **argv);


/* report_svg.c: HTML text and the report's inline SVG charts; every
 * count is also a data-count attribute, which the tests read. */
void cli_html(FILE *f, const char *s);

typedef struct {
    const char          *label;
    unsigned             v[3];              /* by verdict */
} cli_stack_t;

/* One horizontal bar per row, split by verdict, with a legend. */
void cli_svg_stack(FILE *f, const char *id, const cli_stack_t *rows,
    unsigned n);

/* Bins of width scores from low, each split by verdict. */
void cli_svg_histogram(FILE *f, const char *id, int low, int width,
    const unsigned (*bins)[3], unsigned nbins);

/* One horizontal bar per label, longest first as given. */
void cli_svg_bars(FILE *f, const char *id, const char *const *labels,
    const unsigned *v, unsigned n);

#endif /* CLI_H */
