/*
 * cg_result_with_client_sni(): a verdict evaluated without the client's
 * SNI (a cached one), given the SNI the client sent inside the tunnel, is
 * the verdict cg_evaluate() gives with it: the same struct byte for byte,
 * for every policy shape that decides it (weights, thresholds,
 * exemptions of every kind, custom rules after the built-ins, sni_mismatch
 * turned off), also after the result went through the cache's packed form.
 */

#include "certguard.h"
#include "tap.h"
#include "certs.h"


static X509        *root, *inter, *leaf, *self;
static cg_trust_t  *trust;


static void
check(const char *what, const cg_policy_t *p, X509 *cert, X509 **chain,
    int n, const char *client_sni)
{
    size_t         len;
    cg_result_t    want, got, packed;
    unsigned char  buf[CG_PACK_MAX];

    if (unit_eval(p, trust, cert, chain, n, "www.example.test", client_sni,
                  &want) != CG_OK
        || unit_eval(p, trust, cert, chain, n, "www.example.test", NULL,
                     &got) != CG_OK)
    {
        unit_bail("evaluation");
    }

    /* through the cache's form, as a cached verdict is */
    len = cg_result_pack(&got, buf, sizeof(buf));
    if (cg_result_unpack(buf, len, &packed) != CG_OK) {
        unit_bail("unpack");
    }

    is_int(cg_result_with_client_sni(p, &packed, client_sni), CG_OK,
           "%s: CG_OK", what);

    if (!ok(memcmp(&want, &packed, sizeof(cg_result_t)) == 0,
            "%s: as evaluated with the client SNI (score %d, %s)", what,
            want.score, cg_verdict_name(want.verdict)))
    {
        char  a[4096], b[4096];

        cg_format_json(&want, a, sizeof(a));
        cg_format_json(&packed, b, sizeof(b));
        printf("#   want %s\n#   got  %s\n", a, b);
    }

    /* a second time changes nothing */
    got = packed;
    cg_result_with_client_sni(p, &packed, client_sni);
    ok(memcmp(&got, &packed, sizeof(cg_result_t)) == 0,
       "%s: idempotent", what);
}


static void
all_snis(const char *what, const cg_policy_t *p, X509 *cert, X509 **chain,
    int n)
{
    char  name[128];

    snprintf(name, sizeof(name), "%s, other SNI", what);
    check(name, p, cert, chain, n, "other.test");
    snprintf(name, sizeof(name), "%s, same SNI in capitals with a dot", what);
    check(name, p, cert, chain, n, "WWW.Example.TEST.");
    snprintf(name, sizeof(name), "%s, empty SNI", what);
    check(name, p, cert, chain, n, "");
    snprintf(name, sizeof(name), "%s, no SNI", what);
    check(name, p, cert, chain, n, NULL);
}


int
main(void)
{
    char          cwd[1024], inc[1200], text[4096];
    EVP_PKEY     *k_root, *k_int, *k_leaf;
    cg_policy_t  *p;
    cg_result_t   res;
    int           i;

    unit_setup();

    k_root = unit_key();
    k_int = unit_key();
    k_leaf = unit_key();

    root = unit_cert("CN=sni unit root", k_root, NULL, NULL, NULL, 1, 1);
    inter = unit_cert("CN=sni unit intermediate", k_int, root, k_root, NULL,
                      1, 2);
    leaf = unit_cert("CN=www.example.test", k_leaf, inter, k_int,
                     "DNS:www.example.test", 0, 3);
    self = unit_cert("CN=www.example.test,O=Acme Co", k_leaf, NULL, NULL,
                     "DNS:www.example.test", 0, 4);
    trust = unit_trust(root);

    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        unit_bail("getcwd");
    }

    snprintf(inc, sizeof(inc), "include %s/%s;\n", cwd,
             access("policies/default.policy", R_OK) == 0
             ? "policies/default.policy" : "../policies/default.policy");

    p = unit_policy("default", inc);
    all_snis("default, clean chain", p, leaf, &inter, 1);
    all_snis("default, self-signed", p, self, NULL, 0);
    cg_policy_free(p);

    /* the mismatch alone decides: allow, tag or block by thresholds */
    snprintf(text, sizeof(text), "%sthreshold tag 50;\nthreshold block 60;\n",
             inc);
    p = unit_policy("thresholds", text);
    all_snis("block at 60", p, leaf, &inter, 1);
    cg_policy_free(p);

    snprintf(text, sizeof(text), "%sweight sni_mismatch 0;\n", inc);
    p = unit_policy("off", text);
    all_snis("sni_mismatch off", p, leaf, &inter, 1);
    cg_policy_free(p);

    /* exemptions: of sni_mismatch by name, of everything, of others */
    snprintf(text, sizeof(text),
             "%sexempt {\n    sni www.example.test;\n"
             "    signals sni_mismatch;\n}\n", inc);
    p = unit_policy("exempt_sni", text);
    all_snis("exempt sni_mismatch", p, self, NULL, 0);
    all_snis("exempt sni_mismatch, no other hit", p, leaf, &inter, 1);
    cg_policy_free(p);

    snprintf(text, sizeof(text),
             "%sexempt {\n    subject \"Acme Co\";\n}\n", inc);
    p = unit_policy("exempt_all", text);
    all_snis("exempt all by subject", p, self, NULL, 0);
    all_snis("exemption that does not match", p, leaf, &inter, 1);
    cg_policy_free(p);

    snprintf(text, sizeof(text),
             "%sexempt {\n    dst 192.0.2.0/24;\n"
             "    signals self_signed untrusted_chain;\n}\n", inc);
    p = unit_policy("exempt_other", text);
    all_snis("exemption of other signals", p, self, NULL, 0);
    cg_policy_free(p);

    /* custom rules come after every built-in hit */
    snprintf(text, sizeof(text),
             "%srule corp subject Acme 5 \"Acme\";\n"
             "rule www sni www 1;\n", inc);
    p = unit_policy("rules", text);
    all_snis("custom rules after it", p, self, NULL, 0);
    cg_policy_free(p);

    /* a full list: the score and the verdict are still exact */
    snprintf(text, sizeof(text), "%s", inc);
    for (i = 0; i < 20; i++) {
        snprintf(text + strlen(text), sizeof(text) - strlen(text),
                 "rule r%d subject CN %d;\n", i, 1 + i % 3);
    }
    p = unit_policy("full", text);
    {
        cg_result_t  want;

        unit_eval(p, trust, self, NULL, 0, "www.example.test", "other.test",
                  &want);
        unit_eval(p, trust, self, NULL, 0, "www.example.test", NULL, &res);
        cg_result_with_client_sni(p, &res, "other.test");
        is_int(res.score, want.score, "full list: the same score");
        is_int(res.verdict, want.verdict, "full list: the same verdict");
        is_int(res.nhits, CG_MAX_HITS, "full list: still full");
        is_int(res.hits_dropped, want.hits_dropped,
               "full list: the same count dropped");
        ok(strstr(cg_format_signal_ids(&res, text, sizeof(text))
                  ? text : "", "sni_mismatch") != NULL,
           "full list: sni_mismatch (60) is listed");
    }
    cg_policy_free(p);

    is_int(cg_result_with_client_sni(NULL, &res, "x"), CG_ERR_ARG,
           "no policy: CG_ERR_ARG");

    cg_trust_free(trust);
    X509_free(root);
    X509_free(inter);
    X509_free(leaf);
    X509_free(self);
    EVP_PKEY_free(k_root);
    EVP_PKEY_free(k_int);
    EVP_PKEY_free(k_leaf);

    unit_cleanup();

    return done_testing();
}
