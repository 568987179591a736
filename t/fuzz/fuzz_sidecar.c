/*
 * libFuzzer target: arbitrary bytes as a capture sidecar, read by
 * cg_capture_parse() (the CLI reads sidecars from a directory it is
 * given, which a copy from a proxy or a person may have changed).  A
 * sidecar either parses or is refused with a message; a record it accepts
 * is written back by cg_capture_format() as JSON that parses again to the
 * same record.
 *
 *   scripts/fuzz.sh 60 fuzz_sidecar
 */

#include <stdlib.h>
#include <string.h>

#include "cg_capture.h"


int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char                 out[8192];
    size_t               n;
    cg_error_t           err;
    cg_capture_record_t  rec, back;

    memset(&err, 0, sizeof(err));

    if (cg_capture_parse((const char *) data, size, &rec, &err) != CG_OK) {
        if (err.msg[0] == '\0') {
            abort();
        }

        return 0;
    }

    n = cg_capture_format(&rec, out, sizeof(out));

    if (n >= sizeof(out) || out[n - 1] != '\n') {
        abort();
    }

    if (cg_capture_parse(out, n, &back, &err) != CG_OK
        || memcmp(&rec, &back, sizeof(rec)) != 0)
    {
        abort();
    }

    return 0;
}
