/* mod_acme_config.c - directives, their checks and the merge; the checks of the whole
 * configuration are in mod_acme_conf_check.c.
 *
 * Every message names the directive, the value and what is expected.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

#include <apr_strings.h>
#include <http_core.h>

#include "acme_csr.h"
#include "acme_dns.h"
#include "mod_acme.h"

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
 * checked in check_config (eab_key_read, mod_acme_conf_check.c), by root. */
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

const char *acme_cmd_duration(cmd_parms *cmd, apr_interval_time_t *pt, const char *arg,
                              apr_interval_time_t max, const char *examples)
{
    acme_renew_window_t w;
    const char *err = acme_cmd_per_cert(cmd, *pt != 0);
    apr_int64_t s = apr_time_sec(max);

    if (err) {
        return err;
    }
    if (acme_renew_window_parse(&w, arg) != APR_SUCCESS || w.percent || w.left <= 0 ||
        w.left > max) {
        return apr_psprintf(
            cmd->pool, "%s %s: expected a duration of at most %s (e.g. %s, or seconds)",
            cmd->cmd->name, arg,
            s % 86400 == 0 ? apr_psprintf(cmd->pool, "%" APR_INT64_T_FMT " day%s", s / 86400,
                                          s == 86400 ? "" : "s")
                           : apr_psprintf(cmd->pool, "%" APR_INT64_T_FMT " minutes", s / 60),
            examples);
    }
    *pt = w.left;
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
    AP_INIT_TAKE_ARGV("ACMEChallenges", acme_cmd_challenges, NULL, RSRC_CONF,
                      "challenge types to answer, in order of preference"),
    AP_INIT_TAKE1("ACMEChallengeCache", acme_cmd_challenge_cache, NULL, RSRC_CONF,
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
    AP_INIT_TAKE_ARGV("ACMEDNSCommand", acme_cmd_dns_command, NULL, RSRC_CONF,
                      "program [args], run as: program [args] setup|teardown NAME VALUE"),
    AP_INIT_TAKE1("ACMEDNSTimeout", acme_cmd_dns_timeout, NULL, RSRC_CONF,
                  "how long ACMEDNSCommand may run before it is killed (default 60s)"),
    AP_INIT_TAKE1("ACMEDNSPropagationTimeout", acme_cmd_dns_propagation, NULL, RSRC_CONF,
                  "how long to wait for the TXT records to be visible (default 2m)"),
    AP_INIT_TAKE1("ACMEDNSResolver", acme_cmd_dns_resolver, NULL, RSRC_CONF,
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
