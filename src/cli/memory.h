/*
 * certguard memory: the CLI's view of a certificate memory (memory.c).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#ifndef CLI_MEMORY_H
#define CLI_MEMORY_H

/* "certguard memory DIR show NAME|export|import FILE|forget NAME":
 * argv[0] is the program, argv[1] "memory". */
int cli_memory(int argc, char **argv);

/* The usage lines of the subcommand, for certguard --help. */
extern const char  cli_memory_usage[];

#endif /* CLI_MEMORY_H */
