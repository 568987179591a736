/*
 * The CLI's memo of verified signatures: one table in this process's
 * memory for every chain of a run (check, diff, report), so that chains
 * under one intermediate check its signature once.  --no-verify-memo
 * turns it off (to compare verdicts); --verify-memo-stats prints its
 * counters to stderr at the end.
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <stdio.h>
#include <stdlib.h>

#include "cli.h"


/* 16,384 keys: a run of thousands of chains under a few hundred issuers */
#define CLI_MEMO_SIZE   (512 * 1024 + 256)


static struct {
    unsigned            off:1;
    unsigned            stats:1;
    void               *table;
    cg_verify_memo_t    memo;
} cli_memo;


void
cli_verify_memo_options(int off, int stats)
{
    cli_memo.off |= off ? 1 : 0;
    cli_memo.stats |= stats ? 1 : 0;
}


const cg_verify_memo_t *
cli_verify_memo(void)
{
    if (cli_memo.off) {
        return NULL;
    }

    if (cli_memo.table == NULL) {
        cli_memo.table = malloc(CLI_MEMO_SIZE);

        if (cli_memo.table == NULL
            || cg_memo_table_init(cli_memo.table, CLI_MEMO_SIZE) != CG_OK)
        {
            /* without a memo every signature is checked: same verdicts */
            free(cli_memo.table);
            cli_memo.table = NULL;
            return NULL;
        }

        cli_memo.memo.lookup = cg_memo_table_lookup;
        cli_memo.memo.insert = cg_memo_table_insert;
        cli_memo.memo.data = cli_memo.table;
    }

    return &cli_memo.memo;
}


void
cli_verify_memo_done(void)
{
    cg_memo_stats_t  st;

    if (cli_memo.stats) {
        cg_memo_table_stats(cli_memo.table, &st);
        fprintf(stderr, "verify memo: %s, %llu hits, %llu misses, "
                "%llu inserts, %llu evictions, room %llu\n",
                cli_memo.table ? "on" : "off",
                (unsigned long long) st.hits, (unsigned long long) st.misses,
                (unsigned long long) st.inserts,
                (unsigned long long) st.evictions,
                (unsigned long long) st.entries);
    }

    free(cli_memo.table);
    cli_memo.table = NULL;
}
