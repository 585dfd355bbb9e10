/* acmectl_import_src.c - reading certbot's configuration folder and mod_md's store into import
 * candidates (acmectl_import.h). Every file goes through acme_import_read: bounded, links
 * followed only inside the folder. A certificate that cannot be read carries the reason and
 * the others go on. */
#include <string.h>
#include <strings.h>

#include <apr_hash.h>
#include <apr_strings.h>

#include "acmectl_import.h"

static acmectl_imp_cert_t *cert_new(const char *source, apr_pool_t *p)
{
    acmectl_imp_cert_t *c = apr_pcalloc(p, sizeof(*c));

    c->source = source;
    c->names = apr_array_make(p, 4, sizeof(const char *));
    return c;
}

static int has_name(const apr_array_header_t *names, const char *name)
{
    int i;

    for (i = 0; name && i < names->nelts; i++) {
        if (strcasecmp(APR_ARRAY_IDX(names, i, const char *), name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* names with first moved to the front. */
static apr_array_header_t *first_first(const apr_array_header_t *names, const char *first,
                                       apr_pool_t *p)
{
    apr_array_header_t *out = apr_array_make(p, names->nelts, sizeof(const char *));
    int i;

    APR_ARRAY_PUSH(out, const char *) = first;
    for (i = 0; i < names->nelts; i++) {
        const char *n = APR_ARRAY_IDX(names, i, const char *);
        if (strcasecmp(n, first) != 0) {
            APR_ARRAY_PUSH(out, const char *) = n;
        }
    }
    return out;
}

/* The set name mod_acme gives the unit of key type index k of an ACMEDomain whose first name
 * is first (mod_acme_config.c): the first name (a wildcard as _wildcard.<rest>), and for the
 * further key types "_<type>" after it, an IPv6 address with '-' for its colons. */
static const char *set_name_for(const char *first, int k, acme_key_type_e type, apr_pool_t *p)
{
    const char *base = acmectl_set_name(first, p);
    char *s, *q;

    if (!base || k == 0) {
        return base;
    }
    s = apr_psprintf(p, "%s_%s", base, acme_key_type_name(type));
    for (q = s; *q; q++) {
        if (*q == ':') {
            *q = '-';
        }
    }
    return acme_store_name_ok(s) ? s : NULL;
}

/* Reads a chain file into c (parsed); on failure c->why. */
static void read_chain(acmectl_imp_cert_t *c, acme_import_src_t *src, const char *path,
                       apr_pool_t *p)
{
    const char *why = NULL;
    char *pem;
    apr_size_t len;
    apr_status_t rv;

    rv = acme_import_read(&pem, &len, src, path, ACME_CERT_PEM_MAX, &why, p);
    if (rv != APR_SUCCESS) {
        c->why = why ? why : apr_psprintf(p, "%s: %s", path, acme_strerror(rv, p));
        return;
    }
    rv = acme_cert_chain_parse(&c->chain, pem, len, p);
    if (rv != APR_SUCCESS) {
        c->why = apr_psprintf(p, "%s is not a PEM certificate chain%s", path,
                              rv == ACME_ETOOLARGE ? " (too large)" : "");
        return;
    }
    c->chain_pem = pem;
    c->chain_len = len;
}

/* Reads a private key file into c; on failure c->why. */
static void read_key(acme_key_t **pkey, acmectl_imp_cert_t *c, acme_import_src_t *src,
                     const char *path, const unsigned char *pass, apr_size_t pass_len,
                     apr_pool_t *p)
{
    const char *why = NULL;
    char *pem;
    apr_size_t len;
    apr_status_t rv;

    rv = acme_import_read(&pem, &len, src, path, ACME_IMPORT_TEXT_MAX, &why, p);
    if (rv == APR_SUCCESS) {
        rv = acme_import_pem_key(pkey, pem, len, pass, pass_len, &why, p);
        if (rv != APR_SUCCESS) {
            why = apr_psprintf(p, "%s: %s", path, why ? why : acme_strerror(rv, p));
        }
    }
    if (rv != APR_SUCCESS) {
        c->why = why ? why : apr_psprintf(p, "%s: %s", path, acme_strerror(rv, p));
    }
}

/* --- certbot --- */

static acmectl_imp_acct_t *certbot_account(apr_hash_t *seen, acme_import_src_t *src,
                                           const acme_certbot_conf_t *conf, apr_pool_t *p)
{
    const char *base = acme_certbot_account_dir(conf->server, p), *dir, *why = NULL;
    acmectl_imp_acct_t *a;
    char *text;
    apr_size_t len;
    apr_status_t rv;

    dir = base ? apr_pstrcat(p, base, "/", conf->account, NULL) : NULL;
    a = dir ? apr_hash_get(seen, dir, APR_HASH_KEY_STRING) : NULL;
    if (a) {
        return a;
    }
    a = apr_pcalloc(p, sizeof(*a));
    a->source = dir ? dir : "accounts/";
    a->ca_url = conf->server;
    a->contacts = apr_array_make(p, 1, sizeof(const char *));
    if (!dir) {
        a->why = "the server URL names no account folder";
        return a;
    }
    apr_hash_set(seen, dir, APR_HASH_KEY_STRING, a);
    rv = acme_import_read(&text, &len, src, apr_pstrcat(p, dir, "/private_key.json", NULL),
                          ACME_IMPORT_TEXT_MAX, &why, p);
    if (rv == APR_SUCCESS) {
        rv = acme_import_jwk_key(&a->key, text, len, &why, p);
        why = rv == APR_SUCCESS ? NULL : apr_psprintf(p, "%s/private_key.json: %s", dir, why);
    }
    if (rv == APR_SUCCESS) {
        rv = acme_import_read(&text, &len, src, apr_pstrcat(p, dir, "/regr.json", NULL),
                              ACME_IMPORT_TEXT_MAX, &why, p);
        if (rv == APR_SUCCESS) {
            rv = acme_certbot_regr_url(&a->url, text, len, &why, p);
            why = rv == APR_SUCCESS ? NULL : apr_psprintf(p, "%s/regr.json: %s", dir, why);
        }
    }
    if (rv != APR_SUCCESS) {
        a->key = NULL;
        a->why = why ? why : apr_psprintf(p, "%s: %s", dir, acme_strerror(rv, p));
    }
    return a;
}

/* The first name of a certbot lineage: its folder name when the certificate has that name
 * (certbot names it after the first -d), without a "-0001" that certbot adds to a second
 * lineage of the same name; else the certificate's first name. */
static const char *certbot_first(const char *lineage, const apr_array_header_t *names,
                                 apr_pool_t *p)
{
    const char *dash = strrchr(lineage, '-');

    if (has_name(names, lineage)) {
        return lineage;
    }
    if (dash && strlen(dash) == 5 && strspn(dash + 1, "0123456789") == 4) {
        const char *base = apr_pstrmemdup(p, lineage, (apr_size_t)(dash - lineage));
        if (has_name(names, base)) {
            return base;
        }
    }
    return APR_ARRAY_IDX(names, 0, const char *);
}

static acmectl_imp_cert_t *certbot_cert(apr_hash_t *seen, acme_import_src_t *src,
                                        const char *lineage, apr_pool_t *p)
{
    const char *live = apr_pstrcat(p, "live/", lineage, NULL), *why = NULL;
    acmectl_imp_cert_t *c = cert_new(live, p);
    acme_certbot_conf_t *conf = NULL;
    apr_array_header_t *names = NULL;
    const char *conf_path = apr_pstrcat(p, "renewal/", lineage, ".conf", NULL);
    char *text;
    apr_size_t len;
    apr_status_t rv;

    c->first = lineage;
    rv = acme_import_read(&text, &len, src, conf_path, ACME_IMPORT_TEXT_MAX, &why, p);
    if (rv == APR_SUCCESS) {
        rv = acme_certbot_conf_parse(&conf, text, len, &why, p);
        why = rv == APR_SUCCESS ? NULL : apr_psprintf(p, "%s: %s", conf_path, why);
    }
    if (rv != APR_SUCCESS) {
        c->why = why ? why : apr_psprintf(p, "%s: %s", conf_path, acme_strerror(rv, p));
        return c;
    }
    c->ca_url = conf->server;
    read_chain(c, src, apr_pstrcat(p, live, "/fullchain.pem", NULL), p);
    if (!c->why) {
        read_key(&c->key, c, src, apr_pstrcat(p, live, "/privkey.pem", NULL), NULL, 0, p);
    }
    if (c->why) {
        return c;
    }
    rv = acme_cert_names(&names, APR_ARRAY_IDX(c->chain, 0, acme_cert_t *), p);
    if (rv != APR_SUCCESS || names->nelts == 0) {
        c->why = apr_psprintf(p, "%s/fullchain.pem: the certificate names no DNS name or IP", live);
        return c;
    }
    c->first = certbot_first(lineage, names, p);
    c->names = first_first(names, c->first, p);
    c->set_name = set_name_for(c->first, 0, acme_key_type(c->key), p);
    c->account = certbot_account(seen, src, conf, p);
    return c;
}

apr_status_t acmectl_scan_certbot(apr_array_header_t **pcerts, acme_import_src_t *src,
                                  const char **pwhy, apr_pool_t *p)
{
    apr_array_header_t *files = NULL, *certs = apr_array_make(p, 8, sizeof(acmectl_imp_cert_t *));
    apr_hash_t *seen = apr_hash_make(p);
    apr_status_t rv;
    int i;

    rv = acme_import_list(&files, src, "renewal", pwhy, p);
    if (rv != APR_SUCCESS) {
        if (APR_STATUS_IS_ENOENT(rv)) {
            *pwhy = "it has no renewal/ folder: not certbot's configuration folder";
        }
        return rv;
    }
    for (i = 0; i < files->nelts; i++) {
        const char *f = APR_ARRAY_IDX(files, i, const char *);
        apr_size_t n = strlen(f);
        if (n <= 5 || strcmp(f + n - 5, ".conf") != 0 || f[0] == '.') {
            continue;
        }
        APR_ARRAY_PUSH(certs, acmectl_imp_cert_t *) =
            certbot_cert(seen, src, apr_pstrmemdup(p, f, n - 5), p);
    }
    *pcerts = certs;
    return APR_SUCCESS;
}

/* --- mod_md --- */

typedef struct md_ctx_t {
    acme_import_src_t *src;
    const unsigned char *pass;
    apr_size_t pass_len;
    const char *pass_why; /* why there is no pass phrase, when there is none */
    apr_hash_t *seen;     /* accounts by folder */
} md_ctx_t;

static acmectl_imp_acct_t *md_account(md_ctx_t *m, const char *id, apr_pool_t *p)
{
    const char *dir = apr_pstrcat(p, "accounts/", id, NULL), *why = NULL;
    acmectl_imp_acct_t *a = apr_hash_get(m->seen, dir, APR_HASH_KEY_STRING);
    acme_md_account_t *info = NULL;
    char *text;
    apr_size_t len;
    apr_status_t rv;

    if (a) {
        return a;
    }
    a = apr_pcalloc(p, sizeof(*a));
    a->source = dir;
    apr_hash_set(m->seen, dir, APR_HASH_KEY_STRING, a);
    rv = acme_import_read(&text, &len, m->src, apr_pstrcat(p, dir, "/account.json", NULL),
                          ACME_IMPORT_TEXT_MAX, &why, p);
    if (rv == APR_SUCCESS) {
        rv = acme_md_account_parse(&info, text, len, &why, p);
        why = rv == APR_SUCCESS ? NULL : apr_psprintf(p, "%s/account.json: %s", dir, why);
    }
    if (rv == APR_SUCCESS && info->status && strcmp(info->status, "valid") != 0) {
        why = apr_psprintf(p, "%s is %s at the CA", dir, acme_log_safe(info->status, 32, p));
        rv = ACME_EBADSTORE;
    }
    if (rv == APR_SUCCESS) {
        a->url = info->url;
        a->ca_url = info->ca_url;
        a->contacts = info->contacts;
        rv = acme_import_read(&text, &len, m->src, apr_pstrcat(p, dir, "/account.pem", NULL),
                              ACME_IMPORT_TEXT_MAX, &why, p);
        if (rv == APR_SUCCESS) {
            rv = acme_import_pem_key(&a->key, text, len, m->pass, m->pass_len, &why, p);
            if (rv != APR_SUCCESS) {
                why = apr_psprintf(p, "%s/account.pem: %s%s%s", dir, why, m->pass_why ? "; " : "",
                                   m->pass_why ? m->pass_why : "");
            }
        }
    }
    if (rv != APR_SUCCESS) {
        a->key = NULL;
        a->why = why ? why : apr_psprintf(p, "%s: %s", dir, acme_strerror(rv, p));
    }
    return a;
}

/* The key and certificate files of a mod_md domain folder, by the type of their key: the
 * default key type's are privkey.pem and pubcert.pem, the others' privkey.<spec>.pem and
 * pubcert.<spec>.pem. */
static void md_files(apr_hash_t *by_type, md_ctx_t *m, acmectl_imp_cert_t *proto,
                     const apr_array_header_t *entries, apr_pool_t *p)
{
    int i;

    for (i = 0; i < entries->nelts; i++) {
        const char *e = APR_ARRAY_IDX(entries, i, const char *), *suffix;
        acmectl_imp_cert_t *c;
        acme_key_t *key = NULL;
        apr_size_t n = strlen(e);
        acme_key_type_e type;

        if (strncmp(e, "privkey", 7) != 0 || n < 11 || strcmp(e + n - 4, ".pem") != 0) {
            continue;
        }
        suffix = e + 7; /* ".pem" or ".<spec>.pem" */
        c = apr_pmemdup(p, proto, sizeof(*proto));
        read_key(&key, c, m->src, apr_pstrcat(p, proto->source, "/", e, NULL), NULL, 0, p);
        if (!key) {
            /* A key that cannot be read has no type: kept by its file name for the report. */
            apr_hash_set(by_type, apr_pstrdup(p, e), APR_HASH_KEY_STRING, c);
            continue;
        }
        type = acme_key_type(key);
        c->key = key;
        read_chain(c, m->src, apr_pstrcat(p, proto->source, "/pubcert", suffix, NULL), p);
        apr_hash_set(by_type, acme_key_type_name(type), APR_HASH_KEY_STRING, c);
    }
}

static void md_domain(apr_array_header_t *certs, md_ctx_t *m, const char *name, apr_pool_t *p)
{
    const char *dir = apr_pstrcat(p, "domains/", name, NULL), *why = NULL;
    acmectl_imp_cert_t *proto = cert_new(dir, p), *c;
    apr_array_header_t *entries = NULL;
    apr_hash_t *by_type = apr_hash_make(p);
    apr_hash_index_t *hi;
    acme_md_t *md = NULL;
    char *text;
    apr_size_t len;
    apr_status_t rv;
    int k;

    proto->first = name;
    rv = acme_import_read(&text, &len, m->src, apr_pstrcat(p, dir, "/md.json", NULL),
                          ACME_IMPORT_TEXT_MAX, &why, p);
    if (rv == APR_SUCCESS) {
        rv = acme_md_parse(&md, text, len, &why, p);
        why = rv == APR_SUCCESS ? NULL : apr_psprintf(p, "%s/md.json: %s", dir, why);
    }
    if (rv == APR_SUCCESS) {
        rv = acme_import_list(&entries, m->src, dir, &why, p);
    }
    if (rv != APR_SUCCESS) {
        proto->why = why ? why : apr_psprintf(p, "%s: %s", dir, acme_strerror(rv, p));
        APR_ARRAY_PUSH(certs, acmectl_imp_cert_t *) = proto;
        return;
    }
    proto->first =
        has_name(md->domains, md->name) ? md->name : APR_ARRAY_IDX(md->domains, 0, const char *);
    proto->names = first_first(md->domains, proto->first, p);
    proto->ca_url = md->ca_url;
    proto->account = md->account ? md_account(m, md->account, p) : NULL;
    md_files(by_type, m, proto, entries, p);
    if (apr_hash_count(by_type) == 0) {
        proto->why = apr_psprintf(p, "%s has no certificate yet (no privkey.pem)", dir);
        APR_ARRAY_PUSH(certs, acmectl_imp_cert_t *) = proto;
        return;
    }
    /* In MDPrivateKeys order: the first type is the ACMEDomain's first ACMEKeyType. */
    for (k = 0; k < md->key_types->nelts; k++) {
        acme_key_type_e type = APR_ARRAY_IDX(md->key_types, k, acme_key_type_e);
        c = apr_hash_get(by_type, acme_key_type_name(type), APR_HASH_KEY_STRING);
        if (!c) {
            c = apr_pmemdup(p, proto, sizeof(*proto));
            c->why = apr_psprintf(p, "%s has no %s key and certificate yet", dir,
                                  acme_key_type_name(type));
        }
        c->set_name = set_name_for(c->first, k, type, p);
        APR_ARRAY_PUSH(certs, acmectl_imp_cert_t *) = c;
        apr_hash_set(by_type, acme_key_type_name(type), APR_HASH_KEY_STRING, NULL);
    }
    /* Files of no key type in md.json: unreadable ones, or left from an older MDPrivateKeys. */
    for (hi = apr_hash_first(p, by_type); hi; hi = apr_hash_next(hi)) {
        const void *key;
        void *val;
        apr_hash_this(hi, &key, NULL, &val);
        c = val;
        if (!c->why) {
            c->why = apr_psprintf(p,
                                  "%s: a %s key that md.json's private key types no longer "
                                  "name",
                                  dir, (const char *)key);
        }
        APR_ARRAY_PUSH(certs, acmectl_imp_cert_t *) = c;
    }
}

apr_status_t acmectl_scan_md(apr_array_header_t **pcerts, acme_import_src_t *src, const char **pwhy,
                             apr_pool_t *p)
{
    apr_array_header_t *names = NULL, *certs = apr_array_make(p, 8, sizeof(acmectl_imp_cert_t *));
    md_ctx_t m;
    const char *why = NULL;
    char *text;
    apr_size_t len;
    apr_status_t rv;
    int i;

    memset(&m, 0, sizeof(m));
    m.src = src;
    m.seen = apr_hash_make(p);
    rv = acme_import_list(&names, src, "domains", pwhy, p);
    if (rv != APR_SUCCESS) {
        if (APR_STATUS_IS_ENOENT(rv)) {
            *pwhy = "it has no domains/ folder: not mod_md's store (MDStoreDir)";
        }
        return rv;
    }
    /* mod_md encrypts its account keys with the store's pass phrase. */
    rv = acme_import_read(&text, &len, src, "md_store.json", ACME_IMPORT_TEXT_MAX, &why, p);
    if (rv == APR_SUCCESS) {
        rv = acme_md_store_pass(&m.pass, &m.pass_len, text, len, &why, p);
    }
    if (rv != APR_SUCCESS) {
        m.pass_why = apr_psprintf(p, "md_store.json: %s", why ? why : acme_strerror(rv, p));
    }
    for (i = 0; i < names->nelts; i++) {
        const char *n = APR_ARRAY_IDX(names, i, const char *);
        if (n[0] != '.') {
            md_domain(certs, &m, n, p);
        }
    }
    *pcerts = certs;
    return APR_SUCCESS;
}
