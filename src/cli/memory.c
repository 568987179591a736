/*
 * certguard memory DIR show NAME | export | import FILE | forget NAME
 *
 * Inspects and seeds a certificate memory (docs/memory.md): show prints
 * what it holds for a name (every port, or NAME:PORT) for people; export
 * writes every certificate as one JSON object a line; import merges such
 * lines (a known-good inventory, or another node's export); forget drops
 * a name.  show and export open the memory read-only, beside running
 * nginx workers.
 *
 * Exit status: 0; 1 when show finds nothing for the name; 2 for usage
 * errors, a memory that cannot be opened, and lines import refused (each
 * reported as FILE:LINE: message; the other lines are imported).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certguard.h"
#include "cg_memory.h"
#include "memory.h"


#define CLI_MEM_OK          0
#define CLI_MEM_NONE        1
#define CLI_MEM_ERR         2

#define CLI_MEM_BATCH       256     /* import lines per transaction */
#define CLI_MEM_LINE_MAX    (64 * 1024)


const char  cli_memory_usage[] =
"       certguard memory DIR show NAME[:PORT]\n"
"       certguard memory DIR export\n"
"       certguard memory DIR import FILE\n"
"       certguard memory DIR forget NAME[:PORT]\n";


static void
cli_mem_safe(FILE *f, const char *s)
{
    for (/* void */; *s; s++) {
        fputc(((unsigned char) *s < 0x20 || *s == 0x7f) ? '?' : *s, f);
    }
}


static int
cli_mem_usage(const char *msg)
{
    fprintf(stderr, "certguard: memory: %s (see certguard --help)\n", msg);

    return CLI_MEM_ERR;
}


static void
cli_mem_time(int64_t t, char *buf, size_t size)
{
    time_t     tt;
    struct tm  tm;

    tt = (time_t) t;

    if (t == 0 || gmtime_r(&tt, &tm) == NULL) {
        snprintf(buf, size, "-");
        return;
    }

    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}


static void
cli_mem_hex(const unsigned char *md, char *buf)
{
    int  i;

    for (i = 0; i < 32; i++) {
        snprintf(buf + 2 * i, 3, "%02x", md[i]);
    }
}


/* "name" (port 0: every port) or "name:port"; an IPv6 literal takes the
 * brackets, "[::1]:443", or stands alone. */
static int
cli_mem_name(const char *arg, char *name, size_t size, unsigned *port)
{
    char          *end;
    const char    *colon;
    size_t         n;
    unsigned long  p;

    *port = 0;

    if (arg[0] == '[') {
        colon = strchr(arg, ']');
        if (colon == NULL || (colon[1] != '\0' && colon[1] != ':')) {
            return -1;
        }
        n = (size_t) (colon - arg - 1);
        if (n == 0 || n >= size) {
            return -1;
        }
        memcpy(name, arg + 1, n);
        name[n] = '\0';
        colon = colon[1] == ':' ? colon + 1 : NULL;

    } else {
        colon = strrchr(arg, ':');
        if (colon && strchr(arg, ':') != colon) {
            colon = NULL;       /* a bare IPv6 address */
        }
        n = colon ? (size_t) (colon - arg) : strlen(arg);
        if (n == 0 || n >= size) {
            return -1;
        }
        memcpy(name, arg, n);
        name[n] = '\0';
    }

    if (colon) {
        errno = 0;
        p = strtoul(colon + 1, &end, 10);
        if (colon[1] < '0' || colon[1] > '9' || errno || *end != '\0'
            || p == 0 || p > 65535)
        {
            return -1;
        }
        *port = (unsigned) p;
    }

    return 0;
}


typedef struct {
    unsigned     port;
    unsigned     shown;
} cli_mem_show_t;


static int
cli_mem_show_entry(const cg_memory_entry_t *e, void *arg)
{
    char                     a[32], b[32], hex[65];
    unsigned                 i, j;
    cli_mem_show_t          *sh = arg;
    const cg_memory_cert_t  *c;

    if (sh->port && e->port != sh->port) {
        return 0;
    }

    sh->shown++;

    cli_mem_time(e->first_seen, a, sizeof(a));
    cli_mem_time(e->last_seen, b, sizeof(b));
    cli_mem_safe(stdout, e->name);
    printf(":%u  first seen %s, last seen %s, %u certificate%s\n", e->port,
           a, b, e->ncerts, e->ncerts == 1 ? "" : "s");

    for (i = 0; i < e->ncerts; i++) {
        c = &e->certs[i];

        cli_mem_hex(c->sha256, hex);
        printf("  sha256 %s\n", hex);
        printf("    issuer: ");
        cli_mem_safe(stdout, c->issuer);
        printf("\n");

        if (c->has_spki) {
            cli_mem_hex(c->spki, hex);
            printf("    spki sha256: %s\n", hex);
        }

        cli_mem_time(c->not_before, a, sizeof(a));
        cli_mem_time(c->not_after, b, sizeof(b));
        printf("    valid: %s to %s\n", a, b);
        cli_mem_time(c->first_seen, a, sizeof(a));
        cli_mem_time(c->last_seen, b, sizeof(b));
        printf("    seen: %s to %s, %u time%s\n", a, b, (unsigned) c->count,
               c->count == 1 ? "" : "s");

        if (c->naddrs) {
            printf("    addresses:");
            for (j = 0; j < c->naddrs; j++) {
                printf(" ");
                cli_mem_safe(stdout, c->addrs[j]);
            }
            printf("\n");
        }

        for (j = 0; j < c->ngeo; j++) {
            cli_mem_time(c->geo[j].first_seen, a, sizeof(a));
            cli_mem_time(c->geo[j].last_seen, b, sizeof(b));
            printf("    from: AS%u %s, %s to %s\n", (unsigned) c->geo[j].asn,
                   c->geo[j].country[0] ? c->geo[j].country : "??", a, b);
        }
    }

    return 0;
}


typedef struct {
    char        *buf;
    size_t       len;
    int          failed;
} cli_mem_export_t;


static int
cli_mem_export_entry(const cg_memory_entry_t *e, void *arg)
{
    char              *nb;
    size_t             need;
    unsigned           i;
    cli_mem_export_t  *ex = arg;

    for (i = 0; i < e->ncerts; i++) {
        need = cg_memory_format_json(e, i, ex->buf, ex->len);

        if (need >= ex->len) {
            nb = realloc(ex->buf, need + 1);
            if (nb == NULL) {
                ex->failed = 1;
                return 1;
            }
            ex->buf = nb;
            ex->len = need + 1;
            cg_memory_format_json(e, i, ex->buf, ex->len);
        }

        fputs(ex->buf, stdout);
        fputc('\n', stdout);
    }

    return 0;
}


static int
cli_mem_import(cg_memory_t *mem, const char *file)
{
    int                 status, broken;
    FILE               *f;
    char               *line;
    size_t              n, len, nbatch, imported;
    unsigned long       lineno;
    cg_error_t          err;
    cg_memory_entry_t  *batch;

    if (strcmp(file, "-") == 0) {
        f = stdin;

    } else {
        f = fopen(file, "r");
        if (f == NULL) {
            fprintf(stderr, "certguard: ");
            cli_mem_safe(stderr, file);
            fprintf(stderr, ": %s\n", strerror(errno));
            return CLI_MEM_ERR;
        }
    }

    batch = malloc(CLI_MEM_BATCH * sizeof(cg_memory_entry_t));
    line = malloc(CLI_MEM_LINE_MAX);

    if (batch == NULL || line == NULL) {
        free(batch);
        free(line);
        if (f != stdin) {
            fclose(f);
        }
        fputs("certguard: out of memory\n", stderr);
        return CLI_MEM_ERR;
    }

    status = CLI_MEM_OK;
    broken = 0;
    lineno = 0;
    nbatch = 0;
    imported = 0;

    for ( ;; ) {
        if (fgets(line, CLI_MEM_LINE_MAX, f) == NULL) {
            break;
        }

        lineno++;
        len = strlen(line);

        if (len == CLI_MEM_LINE_MAX - 1 && line[len - 1] != '\n') {
            fprintf(stderr, "certguard: ");
            cli_mem_safe(stderr, file);
            fprintf(stderr, ":%lu: line too long\n", lineno);
            status = CLI_MEM_ERR;

            /* the rest of it */
            while (fgets(line, CLI_MEM_LINE_MAX, f) != NULL
                   && line[strlen(line) - 1] != '\n')
            {
                /* void */
            }
            continue;
        }

        n = strspn(line, " \t\r\n");
        if (line[n] == '\0' || line[n] == '#') {
            continue;
        }

        memset(&err, 0, sizeof(err));

        if (cg_memory_parse_json(line, len, (int64_t) time(NULL),
                                 &batch[nbatch], &err)
            != CG_OK)
        {
            fprintf(stderr, "certguard: ");
            cli_mem_safe(stderr, file);
            fprintf(stderr, ":%lu: ", lineno);
            cli_mem_safe(stderr, err.msg);
            fputc('\n', stderr);
            status = CLI_MEM_ERR;
            continue;
        }

        if (++nbatch == CLI_MEM_BATCH) {
            if (cg_memory_merge(mem, batch, nbatch, &err) != CG_OK) {
                fprintf(stderr, "certguard: ");
                cli_mem_safe(stderr, err.msg);
                fputc('\n', stderr);
                status = CLI_MEM_ERR;
                broken = 1;
                break;
            }

            imported += nbatch;
            nbatch = 0;
        }
    }

    if (ferror(f)) {
        fprintf(stderr, "certguard: ");
        cli_mem_safe(stderr, file);
        fprintf(stderr, ": %s\n", strerror(errno ? errno : EIO));
        status = CLI_MEM_ERR;
    }

    if (nbatch && !broken) {
        memset(&err, 0, sizeof(err));

        if (cg_memory_merge(mem, batch, nbatch, &err) != CG_OK) {
            fprintf(stderr, "certguard: ");
            cli_mem_safe(stderr, err.msg);
            fputc('\n', stderr);
            status = CLI_MEM_ERR;

        } else {
            imported += nbatch;
        }
    }

    printf("imported %zu certificate%s\n", imported,
           imported == 1 ? "" : "s");

    free(batch);
    free(line);

    if (f != stdin) {
        fclose(f);
    }

    return status;
}


int
cli_memory(int argc, char **argv)
{
    int               rc, status;
    char              name[CG_NAME_MAX];
    unsigned          port, removed;
    const char       *dir, *cmd;
    cg_error_t        err;
    cg_memory_t      *mem;
    cli_mem_show_t    sh;
    cli_mem_export_t  ex;

    if (argc < 4) {
        return cli_mem_usage("expected DIR and show, export, import or "
                             "forget");
    }

    dir = argv[2];
    cmd = argv[3];
    port = 0;

    if (strcmp(cmd, "show") == 0 || strcmp(cmd, "forget") == 0) {
        if (argc != 5) {
            return cli_mem_usage(argc < 5 ? "expected a NAME"
                                          : "one NAME only");
        }

        if (cli_mem_name(argv[4], name, sizeof(name), &port) != 0) {
            return cli_mem_usage("NAME is a name, NAME:PORT or [IPv6]:PORT");
        }

    } else if (strcmp(cmd, "import") == 0) {
        if (argc != 5) {
            return cli_mem_usage(argc < 5 ? "import: expected a FILE"
                                          : "import: one FILE only");
        }

    } else if (strcmp(cmd, "export") == 0) {
        if (argc != 4) {
            return cli_mem_usage("export takes no argument");
        }

    } else {
        fprintf(stderr, "certguard: memory: unknown command \"");
        cli_mem_safe(stderr, cmd);
        fprintf(stderr, "\" (see certguard --help)\n");
        return CLI_MEM_ERR;
    }

    memset(&err, 0, sizeof(err));

    rc = cg_memory_open(&mem, dir, 0,
                        (cmd[0] == 's' || cmd[0] == 'e') ? CG_MEMORY_RDONLY
                                                         : 0,
                        &err);
    if (rc != CG_OK) {
        fprintf(stderr, "certguard: ");
        cli_mem_safe(stderr, err.msg);
        fputc('\n', stderr);
        return CLI_MEM_ERR;
    }

    status = CLI_MEM_OK;

    if (strcmp(cmd, "show") == 0) {
        memset(&sh, 0, sizeof(sh));
        sh.port = port;

        rc = cg_memory_foreach(mem, name, cli_mem_show_entry, &sh);

        if (rc != CG_OK) {
            fprintf(stderr, "certguard: memory %s: %s\n", dir,
                    cg_strerror(rc));
            status = CLI_MEM_ERR;

        } else if (sh.shown == 0) {
            fprintf(stderr, "certguard: memory: ");
            cli_mem_safe(stderr, argv[4]);
            fprintf(stderr, ": never seen\n");
            status = CLI_MEM_NONE;
        }

    } else if (strcmp(cmd, "export") == 0) {
        memset(&ex, 0, sizeof(ex));

        rc = cg_memory_foreach(mem, NULL, cli_mem_export_entry, &ex);

        if (rc != CG_OK || ex.failed) {
            fprintf(stderr, "certguard: memory %s: %s\n", dir,
                    ex.failed ? "out of memory" : cg_strerror(rc));
            status = CLI_MEM_ERR;
        }

        free(ex.buf);

    } else if (strcmp(cmd, "import") == 0) {
        status = cli_mem_import(mem, argv[4]);

    } else {
        if (cg_memory_forget(mem, name, port, &removed, &err) != CG_OK) {
            fprintf(stderr, "certguard: ");
            cli_mem_safe(stderr, err.msg);
            fputc('\n', stderr);
            status = CLI_MEM_ERR;

        } else {
            printf("forgot %u entr%s\n", removed, removed == 1 ? "y" : "ies");
        }
    }

    cg_memory_close(mem);

    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "certguard: writing: %s\n", strerror(errno));
        status = CLI_MEM_ERR;
    }

    return status;
}
