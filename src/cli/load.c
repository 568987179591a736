/*
 * What diff and report share before they score: their options, and the
 * engine's objects loaded with the errors check prints ("file:line:
 * message" for a policy, "certguard: FILE: message" for the rest).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"


int
cli_load_policy(const char *path, cg_policy_t **policy)
{
    char        safe[512], msg[512];
    cg_error_t  err;

    memset(&err, 0, sizeof(err));
    *policy = NULL;

    if (cg_policy_load(policy, path, &err) == CG_OK) {
        return 0;
    }

    cli_safe(err.file[0] ? err.file : path, safe, sizeof(safe));
    cli_safe(err.msg, msg, sizeof(msg));

    if (err.line) {
        fprintf(stderr, "%s:%u: %s\n", safe, err.line, msg);
    } else {
        fprintf(stderr, "certguard: %s: %s\n", safe, msg);
    }

    return -1;
}


int
cli_load_trust(const char *ca_file, int no_system, cg_trust_t **trust)
{
    char        safe[512], msg[512];
    cg_error_t  err;

    memset(&err, 0, sizeof(err));
    *trust = NULL;

    if (cg_trust_load(trust, ca_file, no_system ? CG_TRUST_NO_SYSTEM : 0,
                      &err)
        == CG_OK)
    {
        return 0;
    }

    fprintf(stderr, "certguard: %s: %s\n",
            ca_file ? cli_safe(ca_file, safe, sizeof(safe))
                    : "system CA bundle",
            cli_safe(err.msg, msg, sizeof(msg)));

    return -1;
}


int
cli_load_crls(const char **files, int nfiles, cg_crls_t **crls)
{
    int         i;
    char        safe[512], msg[512];
    cg_error_t  err;

    for (i = 0; i < nfiles; i++) {
        memset(&err, 0, sizeof(err));

        if (cg_crls_load(crls, files[i], &err) != CG_OK) {
            fprintf(stderr, "certguard: %s: %s\n",
                    cli_safe(files[i], safe, sizeof(safe)),
                    cli_safe(err.msg, msg, sizeof(msg)));
            return -1;
        }
    }

    return 0;
}


int
cli_run_open(cli_run_t *run, int argc, char **argv, const char *usage)
{
    int           i, m, nfiles, opts_done, rc;
    unsigned      k;
    int           ncrls;
    char          safe[512], msg[512], **files;
    cg_error_t    err;
    const char   *v, *at, **crls;

    static const char  *names[] = {
        "--policy", "--ca-file", "--sni", "--at", "--format", "-o",
        "--geoip-country", "--geoip-asn", "--crl"
    };

    memset(run, 0, sizeof(cli_run_t));
    run->cmd = argv[1];
    at = NULL;

    files = calloc((size_t) argc + 1, sizeof(char *));
    crls = calloc((size_t) argc + 1, sizeof(char *));
    if (files == NULL || crls == NULL) {
        free(files);
        free(crls);
        fputs("certguard: out of memory\n", stderr);
        return -1;
    }

    ncrls = 0;

    nfiles = 0;
    opts_done = 0;
    rc = -1;

    for (i = 2; i < argc; i++) {
        if (opts_done || argv[i][0] != '-' || strcmp(argv[i], "-") == 0) {
            files[nfiles++] = argv[i];
            continue;
        }

        if (strcmp(argv[i], "--") == 0) {
            opts_done = 1;
            continue;
        }

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            free(files);
            free(crls);
            return 1;
        }

        if (strcmp(argv[i], "--no-system-roots") == 0) {
            run->no_system = 1;
            continue;
        }

        m = 0;
        v = NULL;

        for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            m = cli_option(argc, argv, &i, names[k], &v);
            if (m != 0) {
                break;
            }
        }

        if (m == 0) {
            cli_usage_error("%s: unknown option \"%s\"", run->cmd,
                            cli_safe(argv[i], safe, sizeof(safe)));
            goto done;
        }

        if (m < 0) {
            cli_usage_error("%s: %s needs a value", run->cmd, names[k]);
            goto done;
        }

        switch (k) {
        case 0:
            if (run->npolicies == 2) {
                cli_usage_error("%s: --policy at most twice (old, new)",
                                run->cmd);
                goto done;
            }
            run->policy_file[run->npolicies++] = v;
            break;
        case 1: run->ca_file = v; break;
        case 2: run->ctx.sni = v; break;
        case 3: at = v; break;
        case 4: run->format = v; break;
        case 5: run->output = v; break;
        case 6: run->geoip_country = v; break;
        case 7: run->geoip_asn = v; break;
        default: crls[ncrls++] = v; break;
        }
    }

    if (run->npolicies == 0) {
        cli_usage_error("%s: --policy FILE is required", run->cmd);
        goto done;
    }

    if (nfiles == 0) {
        cli_usage_error("%s: no CHAIN.pem or DIR given", run->cmd);
        goto done;
    }

    if (run->no_system && run->ca_file == NULL) {
        cli_usage_error("%s: --no-system-roots needs --ca-file FILE",
                        run->cmd);
        goto done;
    }

    if (at) {
        if (cli_parse_at(at, &run->ctx.at) != 0) {
            cli_usage_error("%s: --at \"%s\" is not a unix time in seconds",
                            run->cmd, cli_safe(at, safe, sizeof(safe)));
            goto done;
        }

        run->ctx.has_at = 1;

    } else {
        run->ctx.at = (int64_t) time(NULL);
    }

    for (i = 0; i < run->npolicies; i++) {
        if (cli_load_policy(run->policy_file[i], &run->policy[i]) != 0) {
            goto done;
        }
    }

    if (cli_load_trust(run->ca_file, run->no_system, &run->trust) != 0) {
        goto done;
    }

    if (run->geoip_country || run->geoip_asn) {
        memset(&err, 0, sizeof(err));

        if (cg_geoip_open(&run->geoip, run->geoip_country, run->geoip_asn,
                          &err)
            != CG_OK)
        {
            fprintf(stderr, "certguard: %s\n",
                    cli_safe(err.msg, msg, sizeof(msg)));
            goto done;
        }
    }

    if (cli_load_crls(crls, ncrls, &run->crls) != 0) {
        goto done;
    }

    run->ctx.crls = run->crls;

    /* the run's chains usually share their CAs: each decoded once */
    if (cg_certs_new(&run->ctx.certs) != CG_OK) {
        fputs("certguard: out of memory\n", stderr);
        goto done;
    }

    run->problems = cli_inputs(files, nfiles, &run->chains, &run->nchains);

    if (run->problems >= 0) {
        rc = 0;
    }

done:

    free(files);
    free(crls);

    return rc;
}


void
cli_run_close(cli_run_t *run)
{
    cli_inputs_free(run->chains);
    cg_certs_free(run->ctx.certs);
    cg_crls_free(run->crls);
    cg_geoip_free(run->geoip);
    cg_trust_free(run->trust);
    cg_policy_free(run->policy[0]);
    cg_policy_free(run->policy[1]);
}
