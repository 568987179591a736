/*
 * Small helpers the engine files share.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cg_internal.h"


size_t
cg_strlcpy(char *dst, const char *src, size_t size)
{
    size_t  n;

    n = strlen(src);

    if (size) {
        size_t  m = n < size - 1 ? n : size - 1;

        memcpy(dst, src, m);
        dst[m] = '\0';
    }

    return n;
}


int
cg_errorf(cg_error_t *err, int status, const char *file, unsigned line,
    const char *fmt, ...)
{
    va_list  ap;

    if (err == NULL) {
        return status;
    }

    cg_strlcpy(err->file, file ? file : "", sizeof(err->file));
    err->line = line;

    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);

    return status;
}
