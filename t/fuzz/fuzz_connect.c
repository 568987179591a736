/*
 * libFuzzer target: arbitrary bytes as the start of a connection to the
 * proxy port, read by the CONNECT request parser (client-controlled input,
 * before any check).  Whatever arrives, the parser answers OK, AGAIN, TOO
 * LARGE or an error with a reason; what it reports lies inside the request;
 * a CONNECT it accepts names a plain host and a port in 1-65535; a target
 * with userinfo is never handed out; the same bytes arriving as a slow
 * client sends them give the same answer; and a smaller max only turns an
 * accepted request into TOO LARGE.
 *
 *   scripts/fuzz.sh 60 fuzz_connect
 */

#include <stdlib.h>
#include <string.h>

#include "cg_connect.h"


#define MAX  16384


int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);


static void
check(const unsigned char *data, size_t size, size_t max, int rc,
    const cg_connect_t *req)
{
    size_t  i;

    switch (rc) {

    case CG_OK:
        if (req->header_end == 0 || req->header_end > size
            || req->header_end > max || req->userinfo || req->error)
        {
            abort();
        }

        if (req->target_off + req->target_len > req->header_end
            || req->host_off + req->host_len > req->header_end
            || (req->auth && req->auth_off + req->auth_len > req->header_end)
            || req->method_len == 0 || req->version > 1)
        {
            abort();
        }

        if (memchr(data + req->target_off, '@', req->target_len)) {
            abort();                    /* userinfo handed out */
        }

        if (req->connect && (req->host_len == 0 || req->port == 0)) {
            abort();
        }

        if (req->host_len
            && (req->host_len > CG_CONNECT_HOST_MAX || req->port == 0
                || req->port > 65535))
        {
            abort();
        }

        for (i = 0; i < req->host_len; i++) {
            if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                       "0123456789.-_:", data[req->host_off + i]) == NULL
                || data[req->host_off + i] == '\0')
            {
                abort();                /* not a plain name or literal */
            }
        }

        break;

    case CG_CONNECT_AGAIN:
        if (size >= max) {
            abort();
        }
        break;

    case CG_CONNECT_TOO_LARGE:
        if (size < max || req->error == NULL) {
            abort();
        }
        break;

    case CG_ERR_INPUT:
        if (req->error == NULL || (req->userinfo && req->target_len)) {
            abort();
        }
        break;

    default:
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    int           rc, prc;
    size_t        len, max;
    cg_connect_t  whole, slow, small;

    memset(&whole, 0, sizeof(whole));
    rc = cg_connect_parse(data, size, MAX, &whole);
    check(data, size, MAX, rc, &whole);

    /* the bytes arriving one at a time, into one struct */

    memset(&slow, 0, sizeof(slow));
    prc = CG_CONNECT_AGAIN;

    for (len = 0; len <= size && prc == CG_CONNECT_AGAIN; len++) {
        prc = cg_connect_parse(data, len, MAX, &slow);
        check(data, len, MAX, prc, &slow);

        if (prc == CG_OK && len != whole.header_end) {
            abort();                    /* done before its end */
        }
    }

    if (prc != rc && !(prc == CG_ERR_INPUT && rc == CG_ERR_INPUT)) {
        abort();
    }

    if (rc == CG_OK
        && (slow.header_end != whole.header_end
            || slow.connect != whole.connect
            || slow.host_off != whole.host_off
            || slow.host_len != whole.host_len
            || slow.port != whole.port
            || slow.auth != whole.auth
            || slow.auth_off != whole.auth_off
            || slow.auth_len != whole.auth_len))
    {
        abort();
    }

    /* a buffer smaller than the request: too large, never another answer */

    if (rc == CG_OK && whole.header_end > 1) {
        max = whole.header_end - 1;

        memset(&small, 0, sizeof(small));
        prc = cg_connect_parse(data, size, max, &small);
        check(data, size, max, prc, &small);

        if (prc != CG_CONNECT_TOO_LARGE) {
            abort();
        }
    }

    return 0;
}
