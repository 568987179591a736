/*
 * libFuzzer target: arbitrary bytes as the start of a TLS connection, read
 * by the stream module's ClientHello parser (client-controlled input on the
 * proxy's hot path).  Whatever arrives, the parser answers OK, AGAIN or an
 * error; a name it returns is a plain DNS name that fits its buffer; AGAIN
 * asks for more bytes than it was given; and a prefix of a ClientHello that
 * parses is never an error, so a client writing slowly is not refused.
 *
 *   scripts/fuzz.sh 60 fuzz_clienthello
 */

#include <stdlib.h>
#include <string.h>

#include "cg_clienthello.h"


int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);


static void
check_name(const char *sni, size_t snilen)
{
    size_t  n;

    n = strnlen(sni, snilen);

    if (n == snilen) {
        abort();                        /* not NUL-terminated */
    }

    if (strspn(sni, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789.-_") != n)
    {
        abort();                        /* not a plain DNS name */
    }
}


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    int     rc, prc;
    char    sni[256], small[8];
    size_t  need, len;

    rc = cg_clienthello_sni(data, size, sni, sizeof(sni));

    switch (rc) {

    case CG_OK:
        check_name(sni, sizeof(sni));
        break;

    case CG_CLIENTHELLO_AGAIN:
        if (cg_clienthello_need(data, size) <= size) {
            abort();
        }
        break;

    case CG_ERR_INPUT:
        break;

    default:
        abort();
    }

    /* a short buffer gives a name that fits, or an error, never overflow */
    rc = cg_clienthello_sni(data, size, small, sizeof(small));
    if (rc == CG_OK) {
        check_name(small, sizeof(small));
    }

    if (cg_clienthello_sni(data, size, sni, sizeof(sni)) != CG_OK) {
        return 0;
    }

    /* the bytes arriving as a slow client sends them */
    for (len = 0; len < size; len = need) {
        prc = cg_clienthello_sni(data, len, sni, sizeof(sni));

        if (prc == CG_OK) {
            break;
        }

        if (prc != CG_CLIENTHELLO_AGAIN) {
            abort();                    /* a valid prefix was refused */
        }

        need = cg_clienthello_need(data, len);
        if (need <= len) {
            abort();
        }
    }

    return 0;
}
