/* mod_acme_conf_check.c - the checks of the whole configuration in check_config (which
 * `apachectl configtest` and the automatic restart's `httpd -t` run too): each certificate's
 * settings merged with the server's, the CAs in use, dns-01, the external account binding's
 * key file, the vhost each certificate serves; and which ACMEDomain a host name or a vhost
 * belongs to.
 *
 * Every message names the directive, the value and what is expected.
 */
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
#include "mod_acme.h"

#define EAB_FILE_MAX 4096 /* a MAC key file holds one key of a few dozen characters */

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
