/* mod_acme_config.c - directives, their checks, the merge, and the whole-configuration checks
 * of check_config (which `apachectl configtest` runs too).
 *
 * Every message names the directive, the value and what is expected.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_sha1.h>
#include <apr_strings.h>
#include <http_core.h>
#include <openssl/crypto.h>

#include "acme_csr.h"
#include "acme_jws.h"
#include "acme_dns.h"
#include "mod_acme.h"

#define EAB_FILE_MAX 4096 /* a MAC key file holds one key of a few dozen characters */

void *acme_conf_create(apr_pool_t *p, server_rec *s)
{
    acme_conf_t *c = apr_pcalloc(p, sizeof(*c));

    (void)s;
    c->domains = apr_array_make(p, 4, sizeof(acme_domain_t *));
    c->agreement = -1;
    c->auto_restart = -1;
    c->hsts_max_age = -1;
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
    /* Each pair is given together: it merges together. */
    c->eab_kid = add->eab_kid ? add->eab_kid : base->eab_kid;
    c->eab_file = add->eab_kid ? add->eab_file : base->eab_file;
    c->eab_key = add->eab_kid ? add->eab_key : base->eab_key;
    c->profile = add->profile ? add->profile : base->profile;
    c->profile_mandatory = add->profile ? add->profile_mandatory : base->profile_mandatory;
    ACME_MERGE(cache_spec, NULL);
    ACME_MERGE(cache_provider, NULL);
    ACME_MERGE(cache_args, NULL);
    ACME_MERGE(dns_command, NULL);
    ACME_MERGE(dns_timeout, 0);
    ACME_MERGE(dns_propagation, 0);
    ACME_MERGE(dns_resolver, NULL);
    ACME_MERGE(preferred_chain, NULL);
    ACME_MERGE(notify_command, NULL);
    ACME_MERGE(notify_timeout, 0);
    ACME_MERGE(expiry_warning, 0);
    ACME_MERGE(ca_all, NULL);
    ACME_MERGE(require_https, ACME_HTTPS_UNSET);
    ACME_MERGE(hsts_max_age, -1);
    ACME_MERGE(port_http, 0);
    ACME_MERGE(port_https, 0);
    ACME_MERGE(http_proxy, NULL);
    ACME_MERGE(http_proxy_ca, NULL);
    ACME_MERGE(key_reuse, 0);
    ACME_MERGE(activation, 0);
    ACME_MERGE(cluster, NULL);
    c->vhost_served = 0;
    c->vhost_domain = NULL; /* per server, found in check_config */
    c->vhost_fallback = 0;
    c->vhost_tls = 0;
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

const char *acme_cmd_global(cmd_parms *cmd, int already_set)
{
    return global_only(cmd, already_set);
}

acme_conf_t *acme_cmd_conf(cmd_parms *cmd)
{
    return cmd_conf(cmd);
}

const char *acme_cmd_per_cert(cmd_parms *cmd, int already_set)
{
    return per_cert(cmd, already_set);
}

const char *acme_cmd_file(cmd_parms *cmd, const char *arg, const char *expected, const char **ppath)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);
    apr_finfo_t fi;

    if (!path || apr_stat(&fi, path, APR_FINFO_TYPE, cmd->temp_pool) != APR_SUCCESS ||
        fi.filetype != APR_REG) {
        return apr_psprintf(cmd->pool, "%s %s: no such file (expected %s)", cmd->cmd->name, arg,
                            expected);
    }
    *ppath = path;
    return NULL;
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
    const acme_domain_t *o;
    const char *err = global_only(cmd, 0);
    int i, j, auto_names = 0;

    if (err) {
        return err;
    }
    /* "auto" last: the vhosts' names join (mod_acme_autonames.c); no CA issues for "auto". */
    if (argc >= 2 && strcasecmp(argv[argc - 1], "auto") == 0) {
        argc--;
        auto_names = 1;
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
        /* A wildcard is "*." before a host name (acme_name_is_dns); that it comes with dns-01
         * is checked in acme_conf_check, once ACMEChallenges and ACMEDNSCommand are known. */
        if (!acme_name_is_dns(name) && !acme_name_is_ip(name)) {
            return apr_psprintf(cmd->pool,
                                "ACMEDomain %s: not a host name (letters, digits and '-' in "
                                "dot-separated labels, e.g. www.example.org), a wildcard "
                                "(*.example.org) or an IP address",
                                argv[i]);
        }
        for (j = 0; j < d->names->nelts; j++) {
            if (strcmp(APR_ARRAY_IDX(d->names, j, const char *), name) == 0) {
                return apr_psprintf(cmd->pool, "ACMEDomain %s: %s is given twice", argv[0],
                                    argv[i]);
            }
        }
        /* A name belongs to one certificate: otherwise which one a vhost gets is a guess.
         * Looked up in the index: a walk over every ACMEDomain made N of them cost O(N^2). */
        if (!c->names) {
            c->names = acme_name_index_make(cmd->pool);
        }
        o = acme_name_index_get(c->names, name);
        if (o) {
            return apr_psprintf(cmd->pool,
                                "ACMEDomain %s: %s is already in ACMEDomain %s (%s); a name can "
                                "be in one ACMEDomain only",
                                argv[0], name, o->name, o->defined_at);
        }
        APR_ARRAY_PUSH(d->names, const char *) = name;
    }
    for (i = 0; i < d->names->nelts; i++) {
        acme_name_index_add(c->names, APR_ARRAY_IDX(d->names, i, const char *), d);
    }
    d->name = APR_ARRAY_IDX(d->names, 0, const char *);
    /* The store takes [A-Za-z0-9._-] only; a '*' in a folder name would also be a glob in every
     * shell command an operator types there. No DNS name or IP starts with '_'. */
    d->set_name = d->name[0] == '*'
                      ? apr_pstrcat(cmd->pool, ACME_WILDCARD_SET_PREFIX, d->name + 2, NULL)
                      : d->name;
    if (!acme_store_name_ok(d->set_name)) {
        return apr_psprintf(cmd->pool,
                            "ACMEDomain %s: too long for the store's folder name %s (at most 255 "
                            "characters); put a shorter name first",
                            d->name, d->set_name);
    }
    d->primary = 1;
    d->auto_names = auto_names;
    d->n_configured = d->names->nelts;
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
    const char *err = per_cert(cmd, c->ca_file != NULL);

    (void)dc;
    return err ? err : acme_cmd_file(cmd, arg, "a PEM file of CA certificates", &c->ca_file);
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

/* ACMEActivation (mod_acme_live.c does the rest) */
static const char *cmd_activation(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = acme_cmd_conf(cmd);
    const char *err = acme_cmd_per_cert(cmd, c->activation != 0);

    (void)dc;
    if (err) {
        return err;
    }
    if (strcasecmp(arg, "graceful") == 0) {
        c->activation = ACME_ACTIVATION_GRACEFUL;
    } else if (strcasecmp(arg, "live") == 0) {
        c->activation = ACME_ACTIVATION_LIVE;
    } else {
        return apr_psprintf(cmd->pool,
                            "ACMEActivation %s: expected graceful (a graceful restart serves a "
                            "new certificate) or live (served from the next TLS handshake, "
                            "without a restart)",
                            arg);
    }
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
static const char *const challenge_types_known[] = {"http-01", "tls-alpn-01", "dns-01"};
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
            const char *known = "";
            for (k = 0; k < sizeof(challenge_types_known) / sizeof(challenge_types_known[0]); k++) {
                known =
                    apr_pstrcat(cmd->pool, known, k ? ", " : "", challenge_types_known[k], NULL);
            }
            return apr_psprintf(cmd->pool, "ACMEChallenges %s: expected one or more of %s", argv[i],
                                known);
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

/* The common name of a root, as a certificate names it (RFC 5280 ub-common-name: 64). */
static const char *cmd_preferred_chain(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = per_cert(cmd, c->preferred_chain != NULL), *q;

    (void)dc;
    if (err) {
        return err;
    }
    for (q = arg; *q && (unsigned char)*q >= 0x20 && *q != 0x7f; q++) {
    }
    if (!*arg || *q || strlen(arg) > 64) {
        return apr_psprintf(cmd->pool,
                            "ACMEPreferredChain %s: expected the common name of the root the "
                            "chain should end at, as the CA's certificates name it, 1 to 64 "
                            "characters in quotes, e.g. ACMEPreferredChain \"ISRG Root X1\"",
                            arg);
    }
    c->preferred_chain = arg;
    return NULL;
}

/* ACMEExternalAccountBinding KID FILE: the key ID as the CA gave it; the file is read and
 * checked in check_config (eab_key_read), by root. */
static const char *cmd_eab(cmd_parms *cmd, void *dc, const char *kid, const char *file)
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = per_cert(cmd, c->eab_kid != NULL), *k;

    (void)dc;
    if (err) {
        return err;
    }
    for (k = kid; *k && *k > ' ' && *k < 0x7f && *k != '"'; k++) {
    }
    if (!*kid || *k || strlen(kid) > 256) {
        return apr_psprintf(cmd->pool,
                            "ACMEExternalAccountBinding %s: expected the key ID the CA gave "
                            "(printable characters, no spaces) and then the file holding the "
                            "MAC key",
                            kid);
    }
    c->eab_file = ap_server_root_relative(cmd->pool, file);
    if (!c->eab_file) {
        return apr_psprintf(cmd->pool, "ACMEExternalAccountBinding %s %s: not a valid path", kid,
                            file);
    }
    c->eab_kid = kid;
    return NULL;
}

/* ACMEProfile NAME [mandatory] (draft-ietf-acme-profiles). */
static const char *cmd_profile(cmd_parms *cmd, void *dc, const char *name, const char *flag)
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = per_cert(cmd, c->profile != NULL);

    (void)dc;
    if (err) {
        return err;
    }
    if (!*name || strlen(name) > ACME_PROFILE_NAME_MAX ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
            strlen(name)) {
        return apr_psprintf(cmd->pool,
                            "ACMEProfile %s: expected the name of a profile the CA offers "
                            "(letters, digits, '.', '_' and '-', e.g. classic, tlsserver or "
                            "shortlived)",
                            name);
    }
    if (flag && strcasecmp(flag, "mandatory") != 0) {
        return apr_psprintf(cmd->pool,
                            "ACMEProfile %s %s: the only word after the name is 'mandatory' "
                            "(no certificate when the CA does not offer the profile)",
                            name, flag);
    }
    c->profile = name;
    c->profile_mandatory = flag != NULL;
    return NULL;
}

/* A program directive (ACMEDNSCommand, ACMENotifyCommand): an absolute path to a program that
 * root checks here (the User runs it later, in the watchdog child, without a shell or PATH), and
 * its arguments, kept in *pargv. */
const char *acme_cmd_program(cmd_parms *cmd, apr_array_header_t **pargv, int argc,
                             char *const argv[], const char *example)
{
    const char *directive = cmd->cmd->name;
    apr_finfo_t fi;
    int i;

    if (argc < 1) {
        return apr_psprintf(cmd->pool, "%s needs a program: %s %s [args]", directive, directive,
                            example);
    }
    if (argv[0][0] != '/') {
        return apr_psprintf(cmd->pool,
                            "%s %s: expected an absolute path to a program (it runs without a "
                            "shell and without PATH)",
                            directive, argv[0]);
    }
    if (apr_stat(&fi, argv[0], APR_FINFO_TYPE | APR_FINFO_PROT, cmd->temp_pool) != APR_SUCCESS ||
        fi.filetype != APR_REG) {
        return apr_psprintf(cmd->pool, "%s %s: no such file (expected a program)", directive,
                            argv[0]);
    }
    if (!(fi.protection & (APR_FPROT_UEXECUTE | APR_FPROT_GEXECUTE | APR_FPROT_WEXECUTE))) {
        return apr_psprintf(cmd->pool,
                            "%s %s: not executable (chmod +x it; the server's User runs it)",
                            directive, argv[0]);
    }
    *pargv = apr_array_make(cmd->pool, argc, sizeof(const char *));
    for (i = 0; i < argc; i++) {
        APR_ARRAY_PUSH(*pargv, const char *) = apr_pstrdup(cmd->pool, argv[i]);
    }
    return NULL;
}

/* ACMEDNSCommand /path/to/program [args]. */
static const char *cmd_dns_command(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = per_cert(cmd, c->dns_command != NULL);

    (void)dc;
    if (err) {
        return err;
    }
    return acme_cmd_program(cmd, &c->dns_command, argc, argv, "/usr/local/bin/dns01");
}

/* A duration as ACMERenewWindow takes one ("90s", "2m", plain seconds), for the DNS timeouts. */
static const char *dns_duration(cmd_parms *cmd, apr_interval_time_t *pt, const char *arg,
                                apr_interval_time_t max)
{
    acme_renew_window_t w;
    const char *err = per_cert(cmd, *pt != 0);

    if (err) {
        return err;
    }
    if (acme_renew_window_parse(&w, arg) != APR_SUCCESS || w.percent || w.left <= 0 ||
        w.left > max) {
        return apr_psprintf(cmd->pool,
                            "%s %s: expected a duration of at most %d minutes (e.g. 90s, 2m, or "
                            "seconds)",
                            cmd->cmd->name, arg, (int)(apr_time_sec(max) / 60));
    }
    *pt = w.left;
    return NULL;
}

static const char *cmd_dns_timeout(cmd_parms *cmd, void *dc, const char *arg)
{
    (void)dc;
    return dns_duration(cmd, &cmd_conf(cmd)->dns_timeout, arg, apr_time_from_sec(600));
}

static const char *cmd_dns_propagation(cmd_parms *cmd, void *dc, const char *arg)
{
    (void)dc;
    /* One attempt waits at most 5 minutes for its order in all (ORDER_WAIT). */
    return dns_duration(cmd, &cmd_conf(cmd)->dns_propagation, arg, apr_time_from_sec(300));
}

static const char *cmd_dns_resolver(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = cmd_conf(cmd);
    const char *err = per_cert(cmd, c->dns_resolver != NULL);

    (void)dc;
    if (err) {
        return err;
    }
    if (!acme_dns_resolver_ok(arg)) {
        return apr_psprintf(cmd->pool,
                            "ACMEDNSResolver %s: expected an IP address with an optional port "
                            "(192.0.2.53, 192.0.2.53:5353, [2001:db8::53]:5353)",
                            arg);
    }
    c->dns_resolver = apr_pstrdup(cmd->pool, arg);
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
    AP_INIT_TAKE_ARGV("ACMECluster", acme_cmd_cluster, NULL, RSRC_CONF,
                      "memcache:HOST:PORT|redis:HOST:PORT /shared/folder [node=NAME] "
                      "[lease=SECONDS]: one order per certificate among several nodes"),
    AP_INIT_TAKE1("ACMEPreferredChain", cmd_preferred_chain, NULL, RSRC_CONF,
                  "the common name of the root the chain kept should end at, e.g. "
                  "\"ISRG Root X1\""),
    AP_INIT_TAKE2("ACMEExternalAccountBinding", cmd_eab, NULL, RSRC_CONF,
                  "key ID and file with the MAC key of the CA account (external account binding)"),
    AP_INIT_TAKE12("ACMEProfile", cmd_profile, NULL, RSRC_CONF,
                   "NAME [mandatory]: the certificate profile to ask the CA for; with "
                   "'mandatory', no certificate when the CA does not offer it"),
    AP_INIT_TAKE_ARGV("ACMEDNSCommand", cmd_dns_command, NULL, RSRC_CONF,
                      "program [args], run as: program [args] setup|teardown NAME VALUE"),
    AP_INIT_TAKE1("ACMEDNSTimeout", cmd_dns_timeout, NULL, RSRC_CONF,
                  "how long ACMEDNSCommand may run before it is killed (default 60s)"),
    AP_INIT_TAKE1("ACMEDNSPropagationTimeout", cmd_dns_propagation, NULL, RSRC_CONF,
                  "how long to wait for the TXT records to be visible (default 2m)"),
    AP_INIT_TAKE1("ACMEDNSResolver", cmd_dns_resolver, NULL, RSRC_CONF,
                  "address[:port] of the resolver that must see the TXT records (default: the "
                  "zone's authoritative servers)"),
    AP_INIT_TAKE1("ACMEHttpProxy", acme_cmd_http_proxy, NULL, RSRC_CONF,
                  "proxy for requests to the CA: http://[user:password@]host:port"),
    AP_INIT_TAKE1("ACMEHttpProxyCACertificateFile", acme_cmd_http_proxy_ca, NULL, RSRC_CONF,
                  "PEM file of CA certificates an https:// ACMEHttpProxy is checked against"),
    AP_INIT_FLAG("ACMEKeyReuse", acme_cmd_key_reuse, NULL, RSRC_CONF,
                 "on: a renewal keeps the private key of the current certificate"),
    AP_INIT_TAKE1("ACMEActivation", cmd_activation, NULL, RSRC_CONF,
                  "graceful (default): a new certificate is served after a graceful restart; "
                  "live: from the next TLS handshake, without a restart"),
    AP_INIT_TAKE_ARGV("ACMENotifyCommand", acme_cmd_notify_command, NULL, RSRC_CONF,
                      "program [args], run as: program [args] EVENT NAME on certificate events"),
    AP_INIT_TAKE1("ACMENotifyTimeout", acme_cmd_notify_timeout, NULL, RSRC_CONF,
                  "how long ACMENotifyCommand may run before it is killed (default 30s)"),
    AP_INIT_TAKE1("ACMEExpiryWarning", acme_cmd_expiry_warning, NULL, RSRC_CONF,
                  "tell 'expiring' when less than this is left of the served certificate "
                  "(default 7d)"),
    AP_INIT_TAKE1("ACMERequireHttps", acme_cmd_require_https, NULL, RSRC_CONF,
                  "off, temporary or permanent: redirect plain-HTTP requests for names with a "
                  "certificate to https (302 or 301; permanent also sends HSTS)"),
    AP_INIT_TAKE1("ACMEHstsMaxAge", acme_cmd_hsts_max_age, NULL, RSRC_CONF,
                  "max-age of the Strict-Transport-Security header of ACMERequireHttps "
                  "permanent (default 365d)"),
    AP_INIT_TAKE_ARGV("ACMEPortMap", acme_cmd_port_map, NULL, RSRC_CONF,
                      "http:PORT https:PORT: the external ports that reach the plain and the TLS "
                      "listeners"),
    {NULL, {NULL}, NULL, 0, 0, NULL},
};

const acme_domain_t *acme_domain_for_host(const acme_conf_t *conf, const char *host)
{
    int i, j;

    if (conf->names && conf->names_complete) {
        return host ? acme_name_index_get(conf->names, host) : NULL;
    }
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

/* 1 when the wildcard name pattern ("*.example.org") covers host: one label, not "*" itself,
 * in front of the base (RFC 6125 section 6.4.3: a wildcard stands for one label only). */
static int wildcard_covers(const char *pattern, const char *host)
{
    const char *dot = host ? strchr(host, '.') : NULL;

    return pattern[0] == '*' && pattern[1] == '.' && dot && dot != host && host[0] != '*' &&
           strcasecmp(dot + 1, pattern + 2) == 0;
}

/* The ACMEDomain with a wildcard name covering host, or NULL. */
static const acme_domain_t *domain_covering(const acme_conf_t *conf, const char *host)
{
    int i, j;

    if (conf->names && conf->names_complete) {
        /* The pattern that would cover it is "*" and host from its first dot on. */
        const char *dot = host ? strchr(host, '.') : NULL;
        const acme_domain_t *d;
        char pattern[ACME_NAME_INDEX_MAX + 1];
        if (!dot || dot == host || host[0] == '*' || strlen(dot) >= ACME_NAME_INDEX_MAX) {
            return NULL;
        }
        pattern[0] = '*';
        memcpy(pattern + 1, dot, strlen(dot) + 1);
        d = acme_name_index_get(conf->names, pattern);
        return d && d->primary ? d : NULL;
    }
    for (i = 0; host && i < conf->domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(conf->domains, i, acme_domain_t *);
        for (j = 0; d->primary && j < d->names->nelts; j++) {
            if (wildcard_covers(APR_ARRAY_IDX(d->names, j, const char *), host)) {
                return d;
            }
        }
    }
    return NULL;
}

/* The ACMEDomain of a vhost: one that names its ServerName or a ServerAlias (a wildcard alias
 * "*.example.org" too, by its text); else one whose wildcard covers them, so that a vhost
 * foo.example.org is served by the certificate of ACMEDomain *.example.org. An exact name
 * wins over a wildcard. */
static acme_domain_t *match_server(const acme_conf_t *conf, const server_rec *s)
{
    const acme_domain_t *d = acme_domain_for_host(conf, s->server_hostname);
    int i;

    for (i = 0; !d && s->names && i < s->names->nelts; i++) {
        d = acme_domain_for_host(conf, APR_ARRAY_IDX(s->names, i, const char *));
    }
    for (i = 0; !d && s->wild_names && i < s->wild_names->nelts; i++) {
        d = acme_domain_for_host(conf, APR_ARRAY_IDX(s->wild_names, i, const char *));
    }
    if (!d) {
        d = domain_covering(conf, s->server_hostname);
    }
    for (i = 0; !d && s->names && i < s->names->nelts; i++) {
        d = domain_covering(conf, APR_ARRAY_IDX(s->names, i, const char *));
    }
    return (acme_domain_t *)d;
}

/* "www-data (uid 33)", or "uid 33" for a uid without a name. */
static const char *uid_text(uid_t uid, apr_pool_t *p)
{
    struct passwd pw, *found = NULL;
    char buf[1024];

    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found) {
        return apr_psprintf(p, "%s (uid %ld)", found->pw_name, (long)uid);
    }
    return apr_psprintf(p, "uid %ld", (long)uid);
}

/* A path as one shell word, for commands that fix things. */
static const char *shell_word(const char *path, apr_pool_t *p)
{
    const char *q;
    const char *out = "'";

    if (!strpbrk(path, " \t\n'\"\\$`!*?[]{}()<>|&;#~")) {
        return path;
    }
    for (q = path; *q; q++) {
        out = *q == '\'' ? apr_pstrcat(p, out, "'\\''", NULL)
                         : apr_pstrcat(p, out, apr_pstrmemdup(p, q, 1), NULL);
    }
    return apr_pstrcat(p, out, "'", NULL);
}

static apr_status_t eab_key_wipe(void *data)
{
    OPENSSL_cleanse(data, strlen(data));
    return APR_SUCCESS;
}

/* ACMEExternalAccountBinding's file holds the credential of the CA account: whoever reads it
 * (a CGI running as the User) can open accounts in the operator's name. So it must be a file of
 * the user the server starts as (root) that group and others cannot read. The parent reads it
 * here, before the children become the User (who could not read it); they inherit the key in
 * memory. Nothing of the file's content goes into a message. NULL when the key is read, else
 * why the file is refused. */
static const char *eab_key_read(acme_conf_t *c, apr_pool_t *pconf, apr_pool_t *ptemp)
{
    const uid_t me = geteuid();
    const char *word = shell_word(c->eab_file, ptemp), *why = NULL, *key;
    char buf[EAB_FILE_MAX + 1];
    struct stat st;
    ssize_t n = 0;
    int fd;

    /* O_NONBLOCK: a FIFO in its place must not hang the start. */
    fd = open(c->eab_file, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return apr_psprintf(ptemp, "%s cannot be opened (%s)", c->eab_file, strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        why = apr_psprintf(ptemp, "%s cannot be examined (%s)", c->eab_file, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        why = apr_psprintf(ptemp, "%s is not a regular file", c->eab_file);
    } else if (st.st_uid != me || (st.st_mode & (S_IRWXG | S_IRWXO))) {
        const char *owner = me == 0 ? "root:root" : apr_psprintf(ptemp, "%ld", (long)me);
        int bad_owner = st.st_uid != me, bad_mode = (st.st_mode & (S_IRWXG | S_IRWXO)) != 0;
        why = apr_psprintf(
            ptemp,
            "%s %s%s%s; it holds the MAC key of the CA account, which no one but %s may read; to "
            "fix: %s%s%s",
            c->eab_file,
            bad_owner ? apr_psprintf(ptemp, "belongs to %s", uid_text(st.st_uid, ptemp)) : "",
            bad_owner && bad_mode ? " and " : "",
            bad_mode ? apr_psprintf(ptemp, "can be read or written by group or others (mode %04o)",
                                    (unsigned)(st.st_mode & 07777))
                     : "",
            me == 0 ? "root" : uid_text(me, ptemp),
            bad_owner ? apr_psprintf(ptemp, "chown %s %s", owner, word) : "",
            bad_owner && bad_mode ? " && " : "",
            bad_mode ? apr_psprintf(ptemp, "chmod 600 %s", word) : "");
    } else {
        n = read(fd, buf, sizeof(buf));
        if (n < 0) {
            why = apr_psprintf(ptemp, "%s cannot be read (%s)", c->eab_file, strerror(errno));
        } else if (n > EAB_FILE_MAX) {
            why = apr_psprintf(ptemp,
                               "%s is larger than %d bytes: expected the MAC key alone, as the "
                               "CA gives it",
                               c->eab_file, EAB_FILE_MAX);
        } else if (acme_jws_eab_key(&key, buf, (apr_size_t)n, pconf) != APR_SUCCESS) {
            why = apr_psprintf(ptemp,
                               "%s does not hold a MAC key: expected the key as the CA gives it, "
                               "in base64url (or base64), alone in the file",
                               c->eab_file);
        } else {
            c->eab_key = key;
            /* Wiped when the generation's configuration goes, not left in freed memory. */
            apr_pool_cleanup_register(pconf, key, eab_key_wipe, apr_pool_cleanup_null);
        }
        if (n > 0) {
            OPENSSL_cleanse(buf, (size_t)n);
        }
    }
    close(fd);
    return why;
}

/* dns-01 as configured for each certificate (its own configuration, d->conf): a wildcard needs
 * it, and it needs a command. Logs what to add. */
static int check_dns01(const acme_conf_t *c, server_rec *s)
{
    int i, j, used = 0;

    for (i = 0; i < c->domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(c->domains, i, acme_domain_t *);
        const acme_conf_t *dc = d->conf;
        int dns01 = acme_challenge_listed(dc, "dns-01");
        if (!d->primary) {
            continue;
        }
        used |= dns01;
        for (j = 0; j < d->names->nelts; j++) {
            const char *n = APR_ARRAY_IDX(d->names, j, const char *);
            if (n[0] == '*' && (!dns01 || !dc->dns_command)) {
                acme_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                               "ACME02700: ACMEDomain %s (%s): wildcard names need the dns-01 "
                               "challenge (RFC 8555 section 7.1.3): add %s%s%s",
                               n, d->defined_at,
                               dns01 ? "" : "'ACMEChallenges http-01 dns-01' (or dns-01 alone)",
                               !dns01 && !dc->dns_command ? " and " : "",
                               dc->dns_command ? ""
                                               : "'ACMEDNSCommand /path/to/program', which sets "
                                                 "and removes the TXT records");
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
        if (dns01 && !dc->dns_command) {
            acme_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                           "ACME02701: ACMEDomain %s (%s): ACMEChallenges lists dns-01 but no "
                           "ACMEDNSCommand is set: add 'ACMEDNSCommand /path/to/program', which "
                           "sets and removes the TXT records, or remove dns-01",
                           d->name, d->defined_at);
            return HTTP_INTERNAL_SERVER_ERROR;
        }
    }
    if (!used && (c->dns_command || c->dns_resolver || c->dns_timeout || c->dns_propagation)) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                       "ACME02702: ACMEDNS* directives are set but no ACMEDomain's ACMEChallenges "
                       "lists dns-01: they have no effect");
    }
    return OK;
}

static void id_add(apr_sha1_ctx_t *ctx, const char *what, const char *value)
{
    apr_sha1_update(ctx, what, (unsigned int)strlen(what) + 1);
    apr_sha1_update(ctx, value ? value : "", (unsigned int)strlen(value ? value : "") + 1);
}

static void id_add_list(apr_sha1_ctx_t *ctx, const char *what, const apr_array_header_t *arr)
{
    int i;

    for (i = 0; arr && i < arr->nelts; i++) {
        id_add(ctx, what, APR_ARRAY_IDX(arr, i, const char *));
    }
}

/* A fingerprint (hex SHA-1) of everything in a certificate's configuration that decides how it
 * is obtained: a job file keeps the one of its last failed attempt, and a start with another
 * one tries again at once instead of waiting out a backoff meant for the old configuration
 * (the operator fixed the key file, the CA URL, the DNS command, ...). */
static const char *config_id(const acme_domain_t *d, apr_pool_t *p)
{
    const acme_conf_t *dc = d->conf;
    unsigned char md[APR_SHA1_DIGESTSIZE];
    apr_sha1_ctx_t ctx;
    char *hex = apr_palloc(p, 2 * APR_SHA1_DIGESTSIZE + 1);
    int i;

    apr_sha1_init(&ctx);
    id_add_list(&ctx, "name", d->names);
    id_add(&ctx, "key-type", acme_key_type_name(d->key_type));
    id_add_list(&ctx, "ca", dc->ca_urls);
    id_add(&ctx, "ca-file", dc->ca_file);
    id_add(&ctx, "email", dc->email);
    id_add(&ctx, "agreement", dc->agreement == 1 ? "accepted" : "");
    id_add(&ctx, "eab-kid", dc->eab_kid);
    id_add(&ctx, "eab-key", dc->eab_key);
    id_add(&ctx, "profile", dc->profile);
    id_add(&ctx, "profile-mandatory", dc->profile_mandatory ? "1" : "");
    id_add_list(&ctx, "challenge", dc->challenge_types);
    id_add_list(&ctx, "dns-command", dc->dns_command);
    id_add(&ctx, "dns-resolver", dc->dns_resolver);
    id_add(&ctx, "dns-timeouts",
           apr_psprintf(p, "%" APR_TIME_T_FMT "/%" APR_TIME_T_FMT, dc->dns_timeout,
                        dc->dns_propagation));
    id_add(&ctx, "preferred-chain", dc->preferred_chain);
    id_add(&ctx, "proxy", dc->http_proxy ? acme_http_proxy_masked(dc->http_proxy, p) : NULL);
    id_add(&ctx, "proxy-ca", dc->http_proxy_ca);
    apr_sha1_final(md, &ctx);
    for (i = 0; i < APR_SHA1_DIGESTSIZE; i++) {
        apr_snprintf(hex + 2 * i, 3, "%02x", md[i]);
    }
    return hex;
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

/* Reads the key of a binding (global, or of d's section), or says at start why not. */
static int eab_key_ok(acme_conf_t *c, const acme_domain_t *d, server_rec *s, apr_pool_t *pconf,
                      apr_pool_t *ptemp)
{
    const char *why = eab_key_read(c, pconf, ptemp);

    if (why) {
        acme_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                       "ACME02800: %s%s%sACMEExternalAccountBinding %s %s: %s; the server does "
                       "not start with it",
                       d ? "<ACMEDomain " : "", d ? d->name : "", d ? ">: " : "", c->eab_kid,
                       c->eab_file, why);
        return 0;
    }
    return 1;
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
    /* In a cluster the CA's validation may reach any node: an answer kept in one node's memory
     * is not seen by the others (dns-01 alone needs none). */
    if (c->cluster && strcmp(name, "memcache") != 0 && strcmp(name, "redis") != 0) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                       "ACME04016: ACMECluster with ACMEChallengeCache %s: the http-01 and "
                       "tls-alpn-01 answers stay on the node that orders, and a validation that "
                       "reaches another node fails; give ACMEChallengeCache %s (or use dns-01)",
                       name, c->cluster->engine);
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
    if (c->eab_kid && !eab_key_ok(c, NULL, s, pconf, ptemp)) {
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
            /* A binding of the section's own: its key is read before the merge hands it on. */
            if (d->section && d->section->eab_kid && !eab_key_ok(d->section, d, s, pconf, ptemp)) {
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            /* Each certificate's configuration: the global values under its section's. */
            d->conf = d->section ? acme_conf_merge(pconf, c, d->section) : c;
            ca_all_add(c, d->conf);
            d->key_type = d->conf->key_types[0];
            for (k = 1; k < d->conf->n_key_types; k++) {
                acme_domain_t *u = apr_pmemdup(pconf, d, sizeof(*d));
                const char *type = acme_key_type_name(d->conf->key_types[k]);
                char *set_name = apr_psprintf(pconf, "%s_%s", d->set_name, type), *q;
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
    if (check_dns01(c, s) != OK) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    for (i = 0; i < c->domains->nelts; i++) {
        acme_domain_t *d = APR_ARRAY_IDX(c->domains, i, acme_domain_t *);
        d->config_id = config_id(d, pconf);
    }
    /* Every name, the vhosts' own (auto) too, to the first ACMEDomain holding it: what a walk in
     * configuration order finds, in constant time (the request path asks it at every request). */
    c->names = acme_name_index_make(pconf);
    for (i = 0; i < c->domains->nelts; i++) {
        acme_domain_t *d = APR_ARRAY_IDX(c->domains, i, acme_domain_t *);
        int j;
        for (j = 0; j < d->names->nelts; j++) {
            acme_name_index_add(c->names, APR_ARRAY_IDX(d->names, j, const char *), d);
        }
    }
    c->names_complete = 1;
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
        const char *v6 = NULL;
        int j;
        /* httpd takes no IPv6 literal as ServerName ("[::1]" is a wildcard pattern to it, and
         * "::1" a port), so such a name can only ever be matched as a ServerAlias. */
        for (j = 0; j < d->names->nelts && !v6; j++) {
            const char *n = APR_ARRAY_IDX(d->names, j, const char *);
            v6 = strchr(n, ':') ? n : NULL;
        }
        if (d->primary && !d->vhosts) {
            acme_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                           "ACME01002: ACMEDomain %s (%s): no VirtualHost has one of its names as "
                           "ServerName or ServerAlias, so no vhost will serve its certificate; it "
                           "is obtained and kept in the store all the same%s%s%s",
                           d->name, d->defined_at,
                           v6 ? " (httpd takes no IPv6 address as ServerName: an IPv6 address "
                                "goes in ServerAlias (ServerAlias "
                              : "",
                           v6 ? v6 : "", v6 ? "))" : "");
        }
    }
    /* Let's Encrypt issues certificates for IP addresses only under its shortlived profile:
     * any other order with an IP address is refused, attempt after attempt. */
    for (i = 0; i < c->domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(c->domains, i, acme_domain_t *);
        const acme_conf_t *dc = d->conf;
        const char *ip = NULL;
        int j, le = !dc->ca_urls;
        for (j = 0; dc->ca_urls && j < dc->ca_urls->nelts; j++) {
            const char *u = APR_ARRAY_IDX(dc->ca_urls, j, const char *);
            le |= strcmp(u, ACME_LETSENCRYPT) == 0 || strcmp(u, ACME_LETSENCRYPT_STAGING) == 0;
        }
        for (j = 0; d->primary && j < d->names->nelts && !ip; j++) {
            if (acme_name_is_ip(APR_ARRAY_IDX(d->names, j, const char *))) {
                ip = APR_ARRAY_IDX(d->names, j, const char *);
            }
        }
        if (ip && le && (!dc->profile || strcmp(dc->profile, "shortlived") != 0)) {
            acme_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                           "ACME02801: ACMEDomain %s (%s): Let's Encrypt issues certificates for "
                           "IP addresses such as %s only under its profile shortlived (about 6 "
                           "days), and ACMEProfile is %s; add 'ACMEProfile shortlived' or its "
                           "orders are refused",
                           d->name, d->defined_at, ip, dc->profile ? dc->profile : "not set");
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
