/* fuzz_import.c - the parsers of `acmectl import` (acme_import.h), fed what another client's
 * folder could hold: certbot's renewal configuration, the account folder made from its server
 * URL, a JWK private key, regr.json; mod_md's md.json, md_store.json, account.json, and a PEM key
 * opened with a pass phrase. What comes back must be what the header promises: https URLs,
 * folder names without a way up, names and key types within their bounds, keys the core uses.
 *
 * Input: one byte choosing the parser, then the file contents.
 */
#include "fuzz.h"

#include "acme_import.h"

enum {
    K_CERTBOT_CONF,
    K_ACCOUNT_DIR,
    K_JWK,
    K_REGR,
    K_MD,
    K_MD_STORE,
    K_MD_ACCOUNT,
    K_PEM,
    K_COUNT
};

static int https(const char *s)
{
    return s && strncmp(s, "https://", 8) == 0 && strlen(s) <= 2048;
}

static void check_key(const acme_key_t *key, apr_pool_t *p)
{
    const char *thumb = NULL;

    FUZZ_ASSERT(key != NULL);
    FUZZ_ASSERT(acme_key_thumbprint(&thumb, key, p) == APR_SUCCESS && thumb && *thumb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char pass[] = "0123456789abcdef0123456789abcdef0123456789abcdef";
    apr_pool_t *p = fuzz_pool();
    fuzz_input_t in;
    const char *why = NULL, *s = NULL;
    acme_key_t *key = NULL;
    apr_size_t len;
    char *text;
    unsigned kind;

    fuzz_input_init(&in, data, size);
    kind = fuzz_byte(&in) % K_COUNT;
    text = fuzz_rest(&in, &len, p);
    switch (kind) {
    case K_CERTBOT_CONF: {
        acme_certbot_conf_t *conf = NULL;
        if (acme_certbot_conf_parse(&conf, text, len, &why, p) == APR_SUCCESS) {
            FUZZ_ASSERT(https(conf->server));
            FUZZ_ASSERT(conf->account && *conf->account && !strchr(conf->account, '/') &&
                        !strchr(conf->account, '.'));
        } else {
            FUZZ_ASSERT(conf == NULL && why != NULL);
        }
        break;
    }
    case K_ACCOUNT_DIR:
        s = acme_certbot_account_dir(text, p);
        if (s) {
            FUZZ_ASSERT(strncmp(s, "accounts/", 9) == 0 && !strstr(s, "/../") && !strstr(s, "//") &&
                        strcmp(s + strlen(s) - 3, "/..") != 0);
        }
        break;
    case K_JWK:
        if (acme_import_jwk_key(&key, text, len, &why, p) == APR_SUCCESS) {
            check_key(key, p);
        } else {
            FUZZ_ASSERT(key == NULL);
        }
        break;
    case K_REGR:
        if (acme_certbot_regr_url(&s, text, len, &why, p) == APR_SUCCESS) {
            FUZZ_ASSERT(https(s));
        }
        break;
    case K_MD: {
        acme_md_t *md = NULL;
        if (acme_md_parse(&md, text, len, &why, p) == APR_SUCCESS) {
            FUZZ_ASSERT(md->name && md->domains->nelts > 0 &&
                        md->domains->nelts <= ACME_IMPORT_NAMES_MAX);
            FUZZ_ASSERT(md->key_types->nelts <= 8);
            FUZZ_ASSERT(!md->ca_url || https(md->ca_url));
            FUZZ_ASSERT(!md->account || (!strchr(md->account, '/') && strcmp(md->account, "..")));
        } else {
            FUZZ_ASSERT(md == NULL);
        }
        break;
    }
    case K_MD_STORE: {
        const unsigned char *pw = NULL;
        apr_size_t pwlen = 0;
        if (acme_md_store_pass(&pw, &pwlen, text, len, &why, p) == APR_SUCCESS) {
            FUZZ_ASSERT(pw && pwlen > 0 && pwlen <= 1024);
        }
        break;
    }
    case K_MD_ACCOUNT: {
        acme_md_account_t *a = NULL;
        if (acme_md_account_parse(&a, text, len, &why, p) == APR_SUCCESS) {
            FUZZ_ASSERT(https(a->url) && (!a->ca_url || https(a->ca_url)) && a->contacts);
        }
        break;
    }
    case K_PEM:
        if (acme_import_pem_key(&key, text, len, pass, sizeof(pass) - 1, &why, p) == APR_SUCCESS) {
            check_key(key, p);
        } else {
            FUZZ_ASSERT(key == NULL && why != NULL);
        }
        break;
    }
    apr_pool_destroy(p);
    return 0;
}
