/* mod_acme_config.c - directives, their checks, the merge, and the whole-configuration checks
 * of check_config (which `apachectl configtest` runs too).
 *
 * Every message names the directive, the value and what is expected.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

#include <apr_strings.h>
#include <http_core.h>

#include "acme_csr.h"
#include "mod_acme.h"

void *acme_conf_create(apr_pool_t *p, server_rec *s)
{
    acme_conf_t *c = apr_pcalloc(p, sizeof(*c));

    (void)s;
    c->domains = apr_array_make(p, 4, sizeof(acme_domain_t *));
    c->agreement = -1;
    c->auto_restart = -1;
    return c;
}

/* One line per field: the value of add when it was set, else base's. */
#define ACME_MERGE(f, unset) c->f = (add->f != (unset)) ? add->f : base->f

void *acme_conf_merge(apr_pool_t *p, void *basev, void *addv)
{
    const acme_conf_t *base = basev, *add = addv;
    acme_conf_t *c = apr_pcalloc(p, sizeof(*c));

    c->domains = add->domains->nelts ? add->domains : base->domains;
    ACME_MERGE(ca_urls, NULL);
    ACME_MERGE(ca_file, NULL);
    ACME_MERGE(email, NULL);
    ACME_MERGE(agreement, -1);
    ACME_MERGE(store_dir, NULL);
    if (add->n_key_types) {
        memcpy(c->key_types, add->key_types, sizeof(c->key_types));
        c->n_key_types = add->n_key_types;
    } else {
        memcpy(c->key_types, base->key_types, sizeof(c->key_types));
        c->n_key_types = base->n_key_types;
    }
    ACME_MERGE(auto_restart, -1);
    c->renew_window = add->renew_window_set ? add->renew_window : base->renew_window;
    ACME_MERGE(renew_window_set, 0);
    ACME_MERGE(challenge_types, NULL);
    ACME_MERGE(cache_spec, NULL);
    ACME_MERGE(cache_provider, NULL);
    ACME_MERGE(cache_args, NULL);
    ACME_MERGE(ca_all, NULL);
    c->vhost_domain = NULL; /* per server, found in check_config */
    c->vhost_fallback = 0;
    return c;
}

/* While a <ACMEDomain> section is read: the configuration its directives fill. Reading the
 * configuration is single-threaded, and the section handler resets it before it returns. */
static acme_conf_t *section_conf;

static acme_conf_t *server_conf(cmd_parms *cmd)
{
    return ap_get_module_config(cmd->server->module_config, &acme_module);
}

/* Where a directive's value goes: the section being read, else the server. */
static acme_conf_t *cmd_conf(cmd_parms *cmd)
{
    return section_conf ? section_conf : server_conf(cmd);
}

/* Directives are outside <VirtualHost>; repeated single-value directives are refused. */
static const char *scope_check(cmd_parms *cmd, int already_set)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err) {
        return err;
    }
    if (already_set) {
        return apr_psprintf(cmd->pool, "%s is duplicate%s: give it once", cmd->cmd->name,
                            section_conf ? " in this <ACMEDomain> section" : "");
    }
    return NULL;
}

/* A directive for the whole server: not inside <ACMEDomain>. */
static const char *global_only(cmd_parms *cmd, int already_set)
{
    if (section_conf) {
        return apr_psprintf(cmd->pool,
                            "%s cannot be used inside <ACMEDomain>: it applies to the whole "
                            "server; put it outside the section",
                            cmd->cmd->name);
    }
    return scope_check(cmd, already_set);
}

/* A per-certificate directive: global, or inside <ACMEDomain> for that certificate only. */
static const char *per_cert(cmd_parms *cmd, int already_set)
{
    return scope_check(cmd, already_set);
}

static const char *lowercase(apr_pool_t *p, const char *s)
{
    char *out = apr_pstrdup(p, s), *c;

    for (c = out; *c; c++) {
        *c = (char)tolower((unsigned char)*c);
    }
    return out;
}

/* IP literals in one canonical text form (RFC 5952 for IPv6), as certificates show them. */
static const char *canonical_name(apr_pool_t *p, const char *name)
{
    unsigned char addr[16];
    char buf[INET6_ADDRSTRLEN];

    if (inet_pton(AF_INET6, name, addr) == 1 && inet_ntop(AF_INET6, addr, buf, sizeof(buf))) {
        return apr_pstrdup(p, buf);
    }
    if (inet_pton(AF_INET, name, addr) == 1 && inet_ntop(AF_INET, addr, buf, sizeof(buf))) {
        return apr_pstrdup(p, buf);
    }
    return name;
}

/* One ACMEDomain, from the one-line directive or a section's opening line. */
static const char *add_domain(cmd_parms *cmd, int argc, char *const argv[], acme_domain_t **pd)
{
    acme_conf_t *c = server_conf(cmd);
    acme_domain_t *d;
    const char *err = global_only(cmd, 0);
    int i, j, k;

    if (err) {
        return err;
    }
    if (argc < 1) {
        return "ACMEDomain needs at least one name: ACMEDomain example.org www.example.org";
    }
    if (argc > ACME_ORDER_IDENTIFIERS_MAX) {
        return apr_psprintf(cmd->pool, "ACMEDomain %s: %d names, CAs allow at most %d", argv[0],
                            argc, ACME_ORDER_IDENTIFIERS_MAX);
    }
    d = apr_pcalloc(cmd->pool, sizeof(*d));
    d->names = apr_array_make(cmd->pool, argc, sizeof(const char *));
    d->defined_at =
        apr_psprintf(cmd->pool, "%s:%d", cmd->directive->filename, cmd->directive->line_num);
    for (i = 0; i < argc; i++) {
        /* Compared in the form kept, so that "2001:DB8:0::1" meets "2001:db8::1". */
        const char *name = canonical_name(cmd->pool, lowercase(cmd->pool, argv[i]));
        if (name[0] == '*') {
            return apr_psprintf(cmd->pool,
                                "ACMEDomain %s: wildcard names need the dns-01 challenge, which "
                                "mod_acme does not offer yet",
                                argv[i]);
        }
        if (!acme_name_is_dns(name) && !acme_name_is_ip(name)) {
            return apr_psprintf(cmd->pool,
                                "ACMEDomain %s: not a host name (letters, digits and '-' in "
                                "dot-separated labels, e.g. www.example.org) or an IP address",
                                argv[i]);
        }
        for (j = 0; j < d->names->nelts; j++) {
            if (strcmp(APR_ARRAY_IDX(d->names, j, const char *), name) == 0) {
                return apr_psprintf(cmd->pool, "ACMEDomain %s: %s is given twice", argv[0],
                                    argv[i]);
            }
        }
        /* A name belongs to one certificate: otherwise which one a vhost gets is a guess. */
        for (k = 0; k < c->domains->nelts; k++) {
            const acme_domain_t *o = APR_ARRAY_IDX(c->domains, k, acme_domain_t *);
            for (j = 0; j < o->names->nelts; j++) {
                if (strcmp(APR_ARRAY_IDX(o->names, j, const char *), name) == 0) {
                    return apr_psprintf(cmd->pool,
                                        "ACMEDomain %s: %s is already in ACMEDomain %s (%s); a "
                                        "name can be in one ACMEDomain only",
                                        argv[0], name, o->name, o->defined_at);
                }
            }
        }
        APR_ARRAY_PUSH(d->names, const char *) = name;
    }
    d->name = APR_ARRAY_IDX(d->names, 0, const char *);
    d->set_name = d->name;
    d->primary = 1;
    APR_ARRAY_PUSH(c->domains, acme_domain_t *) = d;
    *pd = d;
    return NULL;
}

static const char *cmd_domain(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    acme_domain_t *d;

    (void)dc;
    return add_domain(cmd, argc, argv, &d);
}

/* <ACMEDomain name [name ...]> ... </ACMEDomain>: one certificate with settings of its own. */
static const char *cmd_domain_section(cmd_parms *cmd, void *dc, const char *arg)
{
    const char *endp = ap_strrchr_c(arg, '>'), *args, *err;
    apr_array_header_t *words;
    acme_domain_t *d;
    char *w;

    if (section_conf) {
        return "<ACMEDomain> sections cannot be nested";
    }
    if (!endp) {
        return "<ACMEDomain> lacks its closing '>': <ACMEDomain example.org www.example.org>";
    }
    args = apr_pstrmemdup(cmd->temp_pool, arg, (apr_size_t)(endp - arg));
    words = apr_array_make(cmd->temp_pool, 4, sizeof(char *));
    while (*(w = ap_getword_conf(cmd->temp_pool, &args)) != '\0') {
        APR_ARRAY_PUSH(words, char *) = w;
    }
    if (words->nelts == 0) {
        return "<ACMEDomain> needs at least one name: <ACMEDomain example.org www.example.org>";
    }
    err = add_domain(cmd, words->nelts, (char *const *)words->elts, &d);
    if (err) {
        return apr_pstrcat(cmd->pool, "<", err, NULL);
    }
    d->section = acme_conf_create(cmd->pool, cmd->server);
    section_conf = d->section;
    err = ap_walk_config(cmd->directive->first_child, cmd, cmd->context);
    section_conf = NULL;
    return err;
}

static const char *cmd_ca(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = per_cert(cmd, c->ca_urls != NULL);
    int i;

    (void)dc;
    if (err) {
        return err;
    }
    if (argc < 1) {
        return "ACMECertificateAuthority needs a directory URL, letsencrypt or "
               "letsencrypt-staging";
    }
    c->ca_urls = apr_array_make(cmd->pool, argc, sizeof(const char *));
    for (i = 0; i < argc; i++) {
        const char *v = argv[i];
        if (strcasecmp(v, "letsencrypt") == 0) {
            v = ACME_LETSENCRYPT;
        } else if (strcasecmp(v, "letsencrypt-staging") == 0) {
            v = ACME_LETSENCRYPT_STAGING;
        } else if (strncasecmp(v, "https://", 8) != 0 || strlen(v) < 12 || strlen(v) > 1024 ||
                   strpbrk(v, " \t\"'<>")) {
            return apr_psprintf(cmd->pool,
                                "ACMECertificateAuthority %s: expected an https:// ACME "
                                "directory URL, letsencrypt or letsencrypt-staging",
                                argv[i]);
        }
        APR_ARRAY_PUSH(c->ca_urls, const char *) = v;
    }
    return NULL;
}

static const char *cmd_ca_file(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = per_cert(cmd, c->ca_file != NULL), *path;
    apr_finfo_t fi;

    (void)dc;
    if (err) {
        return err;
    }
    path = ap_server_root_relative(cmd->pool, arg);
    if (!path || apr_stat(&fi, path, APR_FINFO_TYPE, cmd->temp_pool) != APR_SUCCESS ||
        fi.filetype != APR_REG) {
        return apr_psprintf(cmd->pool,
                            "ACMECACertificateFile %s: no such file (expected a PEM "
                            "file of CA certificates)",
                            arg);
    }
    c->ca_file = path;
    return NULL;
}

static const char *cmd_email(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = per_cert(cmd, c->email != NULL);
    const char *at, *v = arg;

    (void)dc;
    if (err) {
        return err;
    }
    if (strncasecmp(v, "mailto:", 7) == 0) {
        v += 7;
    }
    at = strchr(v, '@');
    if (!at || at == v || !at[1] || strchr(at + 1, '@') || strpbrk(v, " \t,;<>\"'") ||
        strlen(v) > 254) {
        return apr_psprintf(cmd->pool,
                            "ACMEContactEmail %s: expected one e-mail address, "
                            "e.g. admin@example.org",
                            arg);
    }
    c->email = apr_pstrdup(cmd->pool, v);
    return NULL;
}

static const char *cmd_agreement(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = global_only(cmd, c->agreement != -1);

    (void)dc;
    if (err) {
        return err;
    }
    if (strcasecmp(arg, "accepted") != 0) {
        return apr_psprintf(cmd->pool,
                            "ACMEAgreement %s: the only value is 'accepted', to accept the CA's "
                            "terms of service",
                            arg);
    }
    c->agreement = 1;
    return NULL;
}

static const char *cmd_store(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = global_only(cmd, c->store_dir != NULL);

    (void)dc;
    if (err) {
        return err;
    }
    c->store_dir = ap_server_root_relative(cmd->pool, arg);
    if (!c->store_dir) {
        return apr_psprintf(cmd->pool, "ACMEStoreDir %s: not a valid path", arg);
    }
    return NULL;
}

static const char *cmd_key_type(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = per_cert(cmd, c->n_key_types != 0);
    int i, j;

    (void)dc;
    if (err) {
        return err;
    }
    if (argc < 1 || argc > 5) {
        return "ACMEKeyType takes one to five of ec256, ec384, rsa2048, rsa3072, rsa4096";
    }
    for (i = 0; i < argc; i++) {
        if (acme_key_type_parse(&c->key_types[i], argv[i]) != APR_SUCCESS) {
            return apr_psprintf(cmd->pool,
                                "ACMEKeyType %s: expected ec256, ec384, rsa2048, rsa3072 or "
                                "rsa4096",
                                argv[i]);
        }
        for (j = 0; j < i; j++) {
            if (c->key_types[j] == c->key_types[i]) {
                return apr_psprintf(cmd->pool, "ACMEKeyType %s is given twice", argv[i]);
            }
        }
    }
    c->n_key_types = argc;
    return NULL;
}

static const char *cmd_auto_restart(cmd_parms *cmd, void *dc, int flag)
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = global_only(cmd, c->auto_restart != -1);

    (void)dc;
    if (err) {
        return err;
    }
    c->auto_restart = flag ? 1 : 0;
    return NULL;
}

static const char *cmd_renew_window(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = per_cert(cmd, c->renew_window_set);

    (void)dc;
    if (err) {
        return err;
    }
    if (acme_renew_window_parse(&c->renew_window, arg) != APR_SUCCESS) {
        return apr_psprintf(cmd->pool,
                            "ACMERenewWindow %s: expected the part of the lifetime left when "
                            "renewing, as a percentage (1%%..99%%, e.g. 33%%) or a duration "
                            "(e.g. 30d, 12h, 90m, 600s)",
                            arg);
    }
    c->renew_window_set = 1;
    return NULL;
}

/* The challenge types this build answers, in the default order of preference. */
static const char *const challenge_types_known[] = {"http-01"};

static const char *cmd_challenges(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = per_cert(cmd, c->challenge_types != NULL);
    size_t k;
    int i, j;

    (void)dc;
    if (err) {
        return err;
    }
    if (argc < 1) {
        return "ACMEChallenges needs at least one challenge type, e.g. ACMEChallenges http-01";
    }
    c->challenge_types = apr_array_make(cmd->pool, argc, sizeof(const char *));
    for (i = 0; i < argc; i++) {
        const char *type = NULL;
        for (k = 0; k < sizeof(challenge_types_known) / sizeof(challenge_types_known[0]); k++) {
            if (strcasecmp(argv[i], challenge_types_known[k]) == 0) {
                type = challenge_types_known[k];
            }
        }
        if (!type) {
            return apr_psprintf(cmd->pool, "ACMEChallenges %s: expected one or more of http-01",
                                argv[i]);
        }
        for (j = 0; j < c->challenge_types->nelts; j++) {
            if (APR_ARRAY_IDX(c->challenge_types, j, const char *) == type) {
                return apr_psprintf(cmd->pool, "ACMEChallenges %s is given twice", argv[i]);
            }
        }
        APR_ARRAY_PUSH(c->challenge_types, const char *) = type;
    }
    return NULL;
}

static const char *cmd_cache(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = global_only(cmd, c->cache_spec != NULL);
    const char *colon = strchr(arg, ':');

    (void)dc;
    if (err) {
        return err;
    }
    c->cache_spec = arg;
    c->cache_args = colon ? colon + 1 : NULL;
    /* The provider itself is looked up in check_config: its module may be loaded later. */
    return NULL;
}

const command_rec acme_cmds[] = {
    AP_INIT_TAKE_ARGV("ACMEDomain", cmd_domain, NULL, RSRC_CONF,
                      "names of one certificate; the first is its name"),
    AP_INIT_RAW_ARGS("<ACMEDomain", cmd_domain_section, NULL, RSRC_CONF,
                     "a certificate with settings of its own: <ACMEDomain name ...> ... "
                     "</ACMEDomain>"),
    AP_INIT_TAKE_ARGV("ACMECertificateAuthority", cmd_ca, NULL, RSRC_CONF,
                      "ACME directory URL(s), letsencrypt or letsencrypt-staging"),
    AP_INIT_TAKE1("ACMECACertificateFile", cmd_ca_file, NULL, RSRC_CONF,
                  "PEM file of roots trusted for talking to the CA"),
    AP_INIT_TAKE1("ACMEContactEmail", cmd_email, NULL, RSRC_CONF, "account contact address"),
    AP_INIT_TAKE1("ACMEAgreement", cmd_agreement, NULL, RSRC_CONF,
                  "'accepted' accepts the CA's terms of service"),
    AP_INIT_TAKE1("ACMEStoreDir", cmd_store, NULL, RSRC_CONF,
                  "folder for keys, certificates and state (relative to ServerRoot)"),
    AP_INIT_TAKE_ARGV("ACMEKeyType", cmd_key_type, NULL, RSRC_CONF,
                      "ec256 (default), ec384, rsa2048, rsa3072 or rsa4096"),
    AP_INIT_TAKE1("ACMERenewWindow", cmd_renew_window, NULL, RSRC_CONF,
                  "renew when this much of the lifetime is left: N% or a duration (30d, 12h)"),
    AP_INIT_FLAG("ACMEAutoRestart", cmd_auto_restart, NULL, RSRC_CONF,
                 "restart gracefully when new certificates are ready (default on)"),
    AP_INIT_TAKE_ARGV("ACMEChallenges", cmd_challenges, NULL, RSRC_CONF,
                      "challenge types to answer, in order of preference"),
    AP_INIT_TAKE1("ACMEChallengeCache", cmd_cache, NULL, RSRC_CONF,
                  "socache provider[:args] for challenge answers (default shmcb)"),
    {NULL, {NULL}, NULL, 0, 0, NULL},
};

const acme_domain_t *acme_domain_for_host(const acme_conf_t *conf, const char *host)
{
    int i, j;

    for (i = 0; host && i < conf->domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(conf->domains, i, acme_domain_t *);
        for (j = 0; j < d->names->nelts; j++) {
            if (strcasecmp(APR_ARRAY_IDX(d->names, j, const char *), host) == 0) {
                return d;
            }
        }
    }
    return NULL;
}

acme_domain_t *acme_domain_for_server(const server_rec *s)
{
    return acme_conf_get(s)->vhost_domain;
}

static acme_domain_t *match_server(const acme_conf_t *conf, const server_rec *s)
{
    const acme_domain_t *d = acme_domain_for_host(conf, s->server_hostname);
    int i;

    for (i = 0; !d && s->names && i < s->names->nelts; i++) {
        d = acme_domain_for_host(conf, APR_ARRAY_IDX(s->names, i, const char *));
    }
    return (acme_domain_t *)d;
}

/* Adds the CAs of one certificate's configuration to the server's list of every CA in use
 * (the renewal driver keeps what it learns per CA). */
static void ca_all_add(acme_conf_t *c, const acme_conf_t *dc)
{
    int i, j;

    for (i = 0; i < (dc->ca_urls ? dc->ca_urls->nelts : 1); i++) {
        const char *url =
            dc->ca_urls ? APR_ARRAY_IDX(dc->ca_urls, i, const char *) : ACME_LETSENCRYPT;
        for (j = 0; j < c->ca_all->nelts; j++) {
            if (strcmp(APR_ARRAY_IDX(c->ca_all, j, const char *), url) == 0) {
                break;
            }
        }
        if (j == c->ca_all->nelts) {
            APR_ARRAY_PUSH(c->ca_all, const char *) = url;
        }
    }
}

int acme_conf_check(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    acme_conf_t *c = acme_conf_get(s);
    const char *name, *why = NULL;
    server_rec *v;
    int i;

    (void)plog;
    if (!c->domains->nelts) {
        return OK;
    }
    name = c->cache_spec ? c->cache_spec : "shmcb";
    if (strchr(name, ':')) {
        name = apr_pstrmemdup(pconf, name, (apr_size_t)(strchr(name, ':') - name));
    }
    c->cache_provider =
        ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, name, AP_SOCACHE_PROVIDER_VERSION);
    if (!c->cache_provider) {
        acme_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                       "ACME01001: ACMEChallengeCache %s: no socache provider '%s' is loaded; "
                       "load it first, e.g. LoadModule socache_%s_module "
                       "modules/mod_socache_%s.so",
                       name, name, name, name);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (!c->store_dir) {
        c->store_dir = ap_server_root_relative(pconf, ACME_DEFAULT_STORE);
    }
    /* Here as well as when the store is opened, so that configtest (and the automatic restart,
     * which runs it first) catches a store the server would refuse. */
    if (acme_store_check_owner(c->store_dir, &why, ptemp) == ACME_EBADSTORE) {
        acme_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                       "ACME02100: ACMEStoreDir %s: %s; the server does not start with this store",
                       c->store_dir, why);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    /* One unit per ACMEDomain and key type: the first type keeps the plain store name (so a
     * change of the only type renews in place), the others get "_<type>", which no DNS name
     * can collide with. */
    if (!c->n_key_types) {
        c->key_types[0] = ACME_KEY_EC256;
        c->n_key_types = 1;
    }
    c->ca_all = apr_array_make(pconf, 2, sizeof(const char *));
    {
        int n = c->domains->nelts, k;
        for (i = 0; i < n; i++) {
            acme_domain_t *d = APR_ARRAY_IDX(c->domains, i, acme_domain_t *), *prev = d;
            /* Each certificate's configuration: the global values under its section's. */
            d->conf = d->section ? acme_conf_merge(pconf, c, d->section) : c;
            ca_all_add(c, d->conf);
            d->key_type = d->conf->key_types[0];
            for (k = 1; k < d->conf->n_key_types; k++) {
                acme_domain_t *u = apr_pmemdup(pconf, d, sizeof(*d));
                const char *type = acme_key_type_name(d->conf->key_types[k]);
                char *set_name = apr_psprintf(pconf, "%s_%s", d->name, type), *q;
                /* The store takes such a name in its folder alphabet ([A-Za-z0-9._-]): an IPv6
                 * name's colons become '-', which IPv6 text never holds, so names stay apart. */
                for (q = set_name; *q; q++) {
                    if (*q == ':') {
                        *q = '-';
                    }
                }
                u->key_type = d->conf->key_types[k];
                u->name = apr_psprintf(pconf, "%s (%s)", d->name, type);
                u->set_name = set_name;
                u->primary = 0;
                u->next_type = NULL;
                prev->next_type = u;
                prev = u;
                APR_ARRAY_PUSH(c->domains, acme_domain_t *) = u;
            }
        }
    }
    /* Which vhost uses which ACMEDomain; a vhost with several matching names takes the first. */
    for (v = s; v; v = v->next) {
        acme_domain_t *d = match_server(c, v);
        acme_conf_get(v)->vhost_domain = d;
        if (d) {
            d->vhosts++;
        }
    }
    for (i = 0; i < c->domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(c->domains, i, acme_domain_t *);
        if (d->primary && !d->vhosts) {
            acme_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                           "ACME01002: ACMEDomain %s (%s): no VirtualHost has one of its names as "
                           "ServerName or ServerAlias, so no vhost will serve its certificate; it "
                           "is obtained and kept in the store all the same",
                           d->name, d->defined_at);
        }
    }
    if (c->agreement != 1) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                       "ACME01003: ACMEAgreement is not 'accepted': accounts cannot be created at "
                       "CAs that have terms of service (Let's Encrypt has); add "
                       "'ACMEAgreement accepted' once you have read them");
    }
    return OK;
}
