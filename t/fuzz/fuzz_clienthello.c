/*
 * libFuzzer target: arbitrary bytes as the start of a TLS connection, read
 * by the stream module's ClientHello parser (client-controlled input on the
 * proxy's hot path).  Whatever arrives, the parser answers OK, AGAIN or an
 * error; a name it returns is a plain DNS name that fits its buffer; the
 * parameters it returns are within their bounds, GREASE-free, with an ALPN
 * list of non-empty length-prefixed names that ends where it says; AGAIN
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


static void
check_list(const uint16_t *list, unsigned n, unsigned max)
{
    unsigned  i;

    if (n > max) {
        abort();
    }

    for (i = 0; i < n; i++) {
        if (cg_tls_grease(list[i])) {
            abort();
        }
    }
}


static void
check_hello(const cg_clienthello_t *ch)
{
    size_t  i;

    check_name(ch->sni, sizeof(ch->sni));
    check_list(ch->versions, ch->nversions, CG_CLIENTHELLO_VERSIONS);
    check_list(ch->ciphers, ch->nciphers, CG_CLIENTHELLO_CIPHERS);
    check_list(ch->groups, ch->ngroups, CG_CLIENTHELLO_GROUPS);
    check_list(ch->sigalgs, ch->nsigalgs, CG_CLIENTHELLO_SIGALGS);
    check_list(ch->extensions, ch->nextensions, CG_CLIENTHELLO_EXTENSIONS);

    if (ch->alpn_len > sizeof(ch->alpn)) {
        abort();
    }

    for (i = 0; i < ch->alpn_len; i += 1 + ch->alpn[i]) {
        if (ch->alpn[i] == 0 || i + 1 + ch->alpn[i] > ch->alpn_len) {
            abort();                    /* not a protocol_name_list */
        }
    }
}


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    int               rc, prc;
    char              sni[256], small[8];
    size_t            need, len;
    cg_clienthello_t  ch;

    rc = cg_clienthello_parse(data, size, &ch);

    if (rc == CG_OK) {
        check_hello(&ch);

    } else if (rc != CG_CLIENTHELLO_AGAIN && rc != CG_ERR_INPUT) {
        abort();
    }

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
