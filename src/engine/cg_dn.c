/*
 * A distinguished name printed as the engine prints every name:
 * X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB),
 * RFC 2253 with UTF-8 kept as is.  OpenSSL writes that one character per
 * BIO_write(), a twentieth of a new leaf's own work; the names nearly every
 * certificate carries are printed here into a buffer instead, to the byte,
 * and any other name is left to OpenSSL (t/unit/dn.c holds the two to the
 * same output, byte by byte and over random names).
 *
 * Copyright (c) 2026 certguard developers.  BSD-2-Clause (see LICENSE).
 */

#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509.h>

#include "cg_internal.h"


typedef struct {
    char    *p;
    char    *last;
} cg_dn_out_t;


static int
cg_dn_put(cg_dn_out_t *o, const char *s, size_t n)
{
    if ((size_t) (o->last - o->p) < n) {
        return 0;
    }

    memcpy(o->p, s, n);
    o->p += n;

    return 1;
}


/*
 * One value.  The string types OpenSSL prints a byte at a time: a
 * UTF8String's bytes as they are, another type's byte above 0x7f as the
 * UTF-8 of that Latin-1 character.  RFC 2253's specials take a backslash,
 * as do a leading space or '#' and a trailing space (a one-character value
 * is only its last character, as OpenSSL sees it).  A control character
 * (OpenSSL writes \XX, or for NUL a backslash and the NUL) or another type
 * is left to OpenSSL: 0.
 */

static int
cg_dn_value(cg_dn_out_t *o, const ASN1_STRING *v)
{
    int                   i, n, type, last;
    unsigned char         c;
    const unsigned char  *d;

    type = ASN1_STRING_type(v);

    if (type != V_ASN1_UTF8STRING && type != V_ASN1_PRINTABLESTRING
        && type != V_ASN1_IA5STRING && type != V_ASN1_T61STRING
        && type != V_ASN1_NUMERICSTRING)
    {
        return 0;
    }

    d = ASN1_STRING_get0_data(v);
    n = ASN1_STRING_length(v);

    if ((size_t) (o->last - o->p) < (size_t) n * 2) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        c = d[i];
        last = i == n - 1;

        if (c >= 0x80) {
            if (type == V_ASN1_UTF8STRING) {
                *o->p++ = (char) c;

            } else {
                *o->p++ = (char) (0xc0 | c >> 6);
                *o->p++ = (char) (0x80 | (c & 0x3f));
            }

            continue;
        }

        if (c < 0x20 || c == 0x7f) {
            return 0;
        }

        if (c == '"' || c == '+' || c == ',' || c == ';' || c == '<'
            || c == '>' || c == '\\'
            || (i == 0 && !last && (c == ' ' || c == '#'))
            || (last && c == ' '))
        {
            *o->p++ = '\\';
        }

        *o->p++ = (char) c;
    }

    return 1;
}


/*
 * The name into buf (NUL-terminated): its length, or -1 when OpenSSL has
 * to print it (an attribute it has no name for, a value of another kind,
 * a control character) or it does not fit in size.
 */

int
cg_dn_print(const X509_NAME *name, char *buf, size_t size)
{
    int                     i, n, nid, set, prev;
    const char             *sn;
    cg_dn_out_t             o;
    const X509_NAME_ENTRY  *ent;

    if (size == 0) {
        return -1;
    }

    o.p = buf;
    o.last = buf + size - 1;
    prev = -1;

    n = X509_NAME_entry_count(name);

    for (i = n - 1; i >= 0; i--) {
        ent = X509_NAME_get_entry(name, i);
        set = X509_NAME_ENTRY_set(ent);

        if (prev != -1 && !cg_dn_put(&o, set == prev ? "+" : ",", 1)) {
            return -1;
        }

        prev = set;

        nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(ent));
        sn = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;

        if (sn == NULL
            || !cg_dn_put(&o, sn, strlen(sn))
            || !cg_dn_put(&o, "=", 1)
            || !cg_dn_value(&o, X509_NAME_ENTRY_get_data(ent)))
        {
            return -1;
        }
    }

    *o.p = '\0';

    return (int) (o.p - buf);
}
