/*
 * libFuzzer target: arbitrary bytes as a packed result, read by
 * cg_result_unpack() the way a worker reads what another wrote into the
 * verdict cache's shared memory.  Whatever the bytes, it refuses them
 * (and leaves the result zeroed) or gives a well-formed result: strings end
 * inside their members, the hit list fits, the verdict is one of three;
 * such a result packs again within CG_PACK_MAX, to a form that reads back
 * to the same struct, and every formatter prints it.
 *
 *   scripts/fuzz.sh 60 fuzz_pack
 */

#include <stdlib.h>
#include <string.h>

#include "certguard.h"


int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);


static void
check_str(const char *s, size_t size)
{
    if (memchr(s, '\0', size) == NULL) {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    size_t                    n, m;
    unsigned                  i;
    cg_event_t                ev;
    cg_result_t               res, again;
    static const cg_result_t  zero;
    static unsigned char      buf[CG_PACK_MAX], small[64];
    static char               out[8192];

    if (cg_result_unpack(data, size, &res) != CG_OK) {
        if (memcmp(&res, &zero, sizeof(res)) != 0) {
            abort();                    /* a refusal leaves it zeroed */
        }

        return 0;
    }

    if (res.nhits > CG_MAX_HITS || res.verdict > CG_BLOCK) {
        abort();
    }

    check_str(res.subject, sizeof(res.subject));
    check_str(res.issuer, sizeof(res.issuer));
    check_str(res.serial, sizeof(res.serial));
    check_str(res.sha256, sizeof(res.sha256));
    check_str(res.sha1, sizeof(res.sha1));
    check_str(res.spki_sha256, sizeof(res.spki_sha256));
    check_str(res.key_type, sizeof(res.key_type));
    check_str(res.sig_alg, sizeof(res.sig_alg));
    check_str(res.name, sizeof(res.name));
    check_str(res.policy, sizeof(res.policy));
    check_str(res.prev_sha256, sizeof(res.prev_sha256));
    check_str(res.prev_issuer, sizeof(res.prev_issuer));

    for (i = 0; i < res.nhits; i++) {
        check_str(res.hits[i].id, sizeof(res.hits[i].id));
        check_str(res.hits[i].detail, sizeof(res.hits[i].detail));
    }

    n = cg_result_pack(&res, buf, sizeof(buf));

    if (n > CG_PACK_MAX || cg_result_unpack(buf, n, &again) != CG_OK
        || memcmp(&res, &again, sizeof(res)) != 0)
    {
        abort();
    }

    /* a short buffer: the same length, nothing written past it (ASan) */
    m = cg_result_pack(&res, small, sizeof(small));
    if (m != n) {
        abort();
    }

    memset(&ev, 0, sizeof(ev));
    ev.request = "example.test:443";

    (void) cg_format_json(&res, out, sizeof(out));
    (void) cg_format_cef(&res, &ev, out, sizeof(out));
    (void) cg_format_text(&res, out, sizeof(out));
    (void) cg_format_signal_ids(&res, out, sizeof(out));

    return 0;
}
