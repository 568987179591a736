/*
 * Certificates, policies and evaluations for the unit tests that need a
 * real cg_result_t (pack.c, client_sni.c): built with the OpenSSL API at
 * a fixed time, policies written to files and loaded as nginx loads them.
 */

#ifndef CG_UNIT_CERTS_H
#define CG_UNIT_CERTS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certguard.h"


#define UNIT_DAY    86400
#define UNIT_NOW    1767225600      /* 2026-01-01T00:00:00Z */


static char  unit_dir[] = "/tmp/cg-unit-XXXXXX";


static void
unit_bail(const char *what)
{
    printf("Bail out! %s\n", what);
    ERR_print_errors_fp(stdout);
    exit(1);
}


static void
unit_setup(void)
{
    if (mkdtemp(unit_dir) == NULL) {
        unit_bail("mkdtemp");
    }
}


static void
unit_cleanup(void)
{
    char  cmd[64];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", unit_dir);
    if (system(cmd) != 0) {
        printf("# could not remove %s\n", unit_dir);
    }
}


static void
unit_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX       ctx;
    X509_EXTENSION  *ext;

    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) {
        unit_bail(value);
    }

    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
}


/* subject as "CN=a,O=b" (UTF-8); issuer NULL: self-signed; san NULL:
 * none. */
static X509 *
unit_cert(const char *subject, EVP_PKEY *key, X509 *issuer,
    EVP_PKEY *issuer_key, const char *san, int ca, long serial)
{
    char        *copy, *part, *save, *eq;
    X509        *x;
    X509_NAME   *name;

    x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);

    name = X509_NAME_new();
    copy = strdup(subject);

    for (part = strtok_r(copy, ",", &save); part;
         part = strtok_r(NULL, ",", &save))
    {
        eq = strchr(part, '=');
        *eq = '\0';
        X509_NAME_add_entry_by_txt(name, part, MBSTRING_UTF8,
                                   (unsigned char *) eq + 1, -1, -1, 0);
    }

    free(copy);

    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_NAME_free(name);

    ASN1_TIME_set(X509_getm_notBefore(x), UNIT_NOW - 30 * UNIT_DAY);
    ASN1_TIME_set(X509_getm_notAfter(x), UNIT_NOW + 60 * UNIT_DAY);
    X509_set_pubkey(x, key);

    unit_ext(x, issuer, NID_subject_key_identifier, "hash");
    if (issuer) {
        unit_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
    }

    if (ca) {
        unit_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
        unit_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");

    } else {
        unit_ext(x, issuer, NID_basic_constraints, "CA:FALSE");
        unit_ext(x, issuer, NID_ext_key_usage, "serverAuth");
    }

    if (san) {
        unit_ext(x, issuer, NID_subject_alt_name, san);
    }

    if (X509_sign(x, issuer ? issuer_key : key, EVP_sha256()) == 0) {
        unit_bail("X509_sign");
    }

    return x;
}


static EVP_PKEY *
unit_key(void)
{
    EVP_PKEY  *k = EVP_EC_gen("P-256");

    if (k == NULL) {
        unit_bail("EC key");
    }

    return k;
}


static const char *
unit_file(const char *name, const char *text)
{
    static char  path[256];
    FILE        *fp;

    snprintf(path, sizeof(path), "%s/%s", unit_dir, name);

    fp = fopen(path, "w");
    if (fp == NULL || fputs(text, fp) < 0 || fclose(fp) != 0) {
        unit_bail(path);
    }

    return path;
}


static cg_policy_t *
unit_policy(const char *name, const char *text)
{
    char          file[64];
    cg_error_t    err;
    cg_policy_t  *p;

    snprintf(file, sizeof(file), "%s.policy", name);

    if (cg_policy_load(&p, unit_file(file, text), &err) != CG_OK) {
        printf("# %s:%u: %s\n", err.file, err.line, err.msg);
        unit_bail("policy");
    }

    return p;
}


/* A policy that includes policies/default.policy and nothing else; the
 * tests run from t/ (prove) or the top directory. */
__attribute__((unused)) static cg_policy_t *
unit_default_policy(const char *name)
{
    char  cwd[1024], line[1200];

    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        unit_bail("getcwd");
    }

    snprintf(line, sizeof(line), "include %s/%s;\n", cwd,
             access("policies/default.policy", R_OK) == 0
             ? "policies/default.policy" : "../policies/default.policy");

    return unit_policy(name, line);
}


/* The n certificates as the only anchors, in that order in the file. */
static cg_trust_t *
unit_trust_n(X509 **roots, int n)
{
    int          i;
    FILE        *fp;
    char         path[256];
    cg_error_t   err;
    cg_trust_t  *t;

    snprintf(path, sizeof(path), "%s/root.pem", unit_dir);
    fp = fopen(path, "w");
    if (fp == NULL) {
        unit_bail(path);
    }
    for (i = 0; i < n; i++) {
        PEM_write_X509(fp, roots[i]);
    }
    fclose(fp);

    if (cg_trust_load(&t, path, CG_TRUST_NO_SYSTEM, &err) != CG_OK) {
        unit_bail(err.msg);
    }

    return t;
}


static cg_trust_t *
unit_trust(X509 *root)
{
    return unit_trust_n(&root, 1);
}


/* leaf, then n certificates as sent; client_sni NULL: none. */
__attribute__((unused)) static int
unit_eval(const cg_policy_t *p, const cg_trust_t *trust, X509 *leaf,
    X509 **chain, int n, const char *name, const char *client_sni,
    cg_result_t *res)
{
    int              i, rc;
    cg_input_t       in;
    STACK_OF(X509)  *sk;

    sk = sk_X509_new_null();
    for (i = 0; i < n; i++) {
        sk_X509_push(sk, chain[i]);
    }

    rc = cg_input_handshake(&in, p, trust, NULL, leaf, sk, name,
                            "192.0.2.7", 443, UNIT_NOW);
    if (rc == CG_OK) {
        in.client_sni = client_sni;
        rc = cg_evaluate(&in, res);
    }

    sk_X509_free(sk);

    return rc;
}

#endif /* CG_UNIT_CERTS_H */
