/*
 * libFuzzer target: arbitrary bytes as a line of a certificate memory
 * import (certguard memory DIR import FILE), read by cg_memory_parse_json.
 * The parser never reads past the line; a line it accepts has a name (of
 * printable UTF-8), one
 * certificate, a port in 1-65535, bounded addresses and locations, times
 * in order; formatted again and parsed again it is the same entry.
 *
 *   scripts/fuzz.sh 60 fuzz_memory_json
 */

#include <stdlib.h>
#include <string.h>

#include "cg_memory.h"


int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);


static int
utf8(const char *s)
{
    size_t    i, k, n;
    uint32_t  cp;

    n = strlen(s);

    for (i = 0; i < n; i += k) {
        k = cg_utf8_decode((const unsigned char *) s + i, n - i, &cp);
        if (k == 0) {
            return 0;
        }
    }

    return 1;
}


static cg_memory_entry_t  e, f;
static char               line[16384];


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char        *copy;
    size_t       n;
    unsigned     i;
    cg_error_t   err;

    /* exactly size bytes: no NUL after them to lean on */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);

    memset(&err, 0, sizeof(err));

    if (cg_memory_parse_json(copy, size, 1700000000, &e, &err) != CG_OK) {
        if (err.msg[0] == '\0') {
            abort();            /* a refusal always says why */
        }
        free(copy);
        return 0;
    }

    free(copy);

    if (e.ncerts != 1 || e.name[0] == '\0' || e.port == 0 || e.port > 65535
        || e.certs[0].naddrs > CG_MEMORY_ADDRS_MAX
        || e.certs[0].ngeo > CG_MEMORY_GEO_MAX
        || e.certs[0].last_seen < e.certs[0].first_seen
        || strnlen(e.name, sizeof(e.name)) == sizeof(e.name))
    {
        abort();
    }

    n = cg_memory_format_json(&e, 0, line, sizeof(line));
    if (n >= sizeof(line)) {
        abort();                /* bounded fields, a bounded line */
    }

    memset(&err, 0, sizeof(err));

    if (cg_memory_parse_json(line, n, 1700000000, &f, &err) != CG_OK) {
        abort();                /* what the formatter writes parses */
    }

    /* names are printable UTF-8 (others cannot be keys): they come back
     * as they were */
    if (!utf8(e.name) || strcmp(e.name, f.name) != 0) {
        abort();
    }

    if (f.port != e.port
        || memcmp(f.certs[0].sha256, e.certs[0].sha256, 32) != 0
        || f.certs[0].count != e.certs[0].count
        || f.certs[0].public_root != e.certs[0].public_root
        || f.certs[0].first_seen != e.certs[0].first_seen
        || f.certs[0].last_seen != e.certs[0].last_seen
        || f.certs[0].naddrs != e.certs[0].naddrs
        || f.certs[0].ngeo != e.certs[0].ngeo)
    {
        abort();
    }

    for (i = 0; i < e.certs[0].ngeo; i++) {
        if (f.certs[0].geo[i].asn != e.certs[0].geo[i].asn) {
            abort();
        }
    }

    return 0;
}
