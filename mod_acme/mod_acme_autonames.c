/* mod_acme_autonames.c - "ACMEDomain example.org auto": the certificate's names are its
 * configured names plus every ServerName and ServerAlias of the virtual hosts that carry one of
 * them. Runs in check_config (also `apachectl configtest`) before acme_conf_check, which then
 * finds each vhost's ACMEDomain, makes the key-type units and fingerprints the configuration
 * (config_id) with the names as gathered here: a vhost alias added to the configuration is a
 * changed ACMEDomain, so a new certificate is obtained after the restart, as after an edit of
 * the ACMEDomain line. docs/apache.md, "Names from the vhosts".
 *
 * The rules (each refusal or omission is logged with the vhost and the name):
 * - a configured name of any ACMEDomain stays with it; between two "auto" ACMEDomains a vhost
 *   name goes to the first in the configuration (ACME03603);
 * - a wildcard alias "*.example.org" needs dns-01 with ACMEDNSCommand for that certificate:
 *   configtest fails (ACME03602); other patterns ("*", "www?.example.org") are left out;
 * - an IP address is kept (in its canonical text), as in ACMEDomain;
 * - a name that is no DNS name (one label like "localhost", a port, '_') is left out (ACME03601);
 * - more names than a CA allows in one certificate (ACME_ORDER_IDENTIFIERS_MAX, Let's Encrypt's
 *   100) fails configtest (ACME03604): a certificate the CA refuses serves no one.
 * Parent (root), check_config only.
 */
#include <arpa/inet.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>

#include "acme_csr.h"
#include "acme_order.h"
#include "mod_acme.h"

/* Lowercase, IP addresses in the canonical text ACMEDomain keeps ("2001:DB8:0::1" is
 * "2001:db8::1"). */
static const char *name_form(const char *raw, apr_pool_t *p)
{
    char *n = apr_pstrdup(p, raw), *q, buf[INET6_ADDRSTRLEN];
    unsigned char addr[16];

    for (q = n; *q; q++) {
        *q = (char)apr_tolower(*q);
    }
    if (inet_pton(AF_INET6, n, addr) == 1 && inet_ntop(AF_INET6, addr, buf, sizeof(buf))) {
        return apr_pstrdup(p, buf);
    }
    if (inet_pton(AF_INET, n, addr) == 1 && inet_ntop(AF_INET, addr, buf, sizeof(buf))) {
        return apr_pstrdup(p, buf);
    }
    return n;
}

static int names_have(const apr_array_header_t *names, int upto, const char *name)
{
    int j;

    for (j = 0; j < upto && j < names->nelts; j++) {
        if (strcmp(APR_ARRAY_IDX(names, j, const char *), name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The other ACMEDomain that has name: a configured one first (it always keeps its names), else
 * one that gathered it already (the first in the configuration wins). */
static const acme_domain_t *claimed_elsewhere(const acme_conf_t *c, const acme_domain_t *self,
                                              const char *name)
{
    int i;

    for (i = 0; i < c->domains->nelts; i++) {
        const acme_domain_t *o = APR_ARRAY_IDX(c->domains, i, acme_domain_t *);
        if (o != self && names_have(o->names, o->n_configured, name)) {
            return o;
        }
    }
    for (i = 0; i < c->domains->nelts; i++) {
        const acme_domain_t *o = APR_ARRAY_IDX(c->domains, i, acme_domain_t *);
        if (o != self && names_have(o->names, o->names->nelts, name)) {
            return o;
        }
    }
    return NULL;
}

/* 1 when the vhost has one of d's configured names as ServerName or ServerAlias. */
static int vhost_carries(const acme_domain_t *d, const server_rec *v, apr_pool_t *p)
{
    int i;

    if (v->server_hostname &&
        names_have(d->names, d->n_configured, name_form(v->server_hostname, p))) {
        return 1;
    }
    for (i = 0; v->names && i < v->names->nelts; i++) {
        const char *n = name_form(APR_ARRAY_IDX(v->names, i, const char *), p);
        if (names_have(d->names, d->n_configured, n)) {
            return 1;
        }
    }
    for (i = 0; v->wild_names && i < v->wild_names->nelts; i++) {
        const char *n = name_form(APR_ARRAY_IDX(v->wild_names, i, const char *), p);
        if (names_have(d->names, d->n_configured, n)) {
            return 1;
        }
    }
    return 0;
}

/* 1 when the certificate's own configuration (its section over the global one) answers dns-01
 * with a command: what a wildcard needs. */
static int dns01_ready(const acme_conf_t *c, const acme_domain_t *d, apr_pool_t *p)
{
    const acme_conf_t *dc = d->section ? acme_conf_merge(p, (void *)c, d->section) : c;

    return acme_challenge_listed(dc, "dns-01") && dc->dns_command != NULL;
}

static const char *vhost_at(const server_rec *v, apr_pool_t *p)
{
    return v->defn_name ? apr_psprintf(p, "%s:%u", v->defn_name, v->defn_line_number)
                        : "the main server";
}

/* Adds one name of vhost v to d, or says why not. OK, or an error that stops the start. */
static int add_name(acme_conf_t *c, acme_domain_t *d, const server_rec *v, const char *raw,
                    server_rec *s, apr_pool_t *pconf, apr_pool_t *ptemp)
{
    const char *name = name_form(raw, ptemp);
    const acme_domain_t *o;

    if (names_have(d->names, d->names->nelts, name)) {
        return OK;
    }
    if (!acme_name_is_dns(name) && !acme_name_is_ip(name)) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                       "ACME03601: ACMEDomain %s auto (%s): the VirtualHost at %s has the name %s, "
                       "which is neither a DNS name with a dot (e.g. www.example.org), nor a "
                       "wildcard *.example.org, nor an IP address; it is left out of the "
                       "certificate",
                       d->name, d->defined_at, vhost_at(v, ptemp), raw);
        return OK;
    }
    if ((o = claimed_elsewhere(c, d, name)) != NULL) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                       "ACME03603: ACMEDomain %s auto (%s): %s of the VirtualHost at %s stays "
                       "with ACMEDomain %s (%s), which %s; a name is in one certificate only",
                       d->name, d->defined_at, name, vhost_at(v, ptemp), o->name, o->defined_at,
                       names_have(o->names, o->n_configured, name) ? "names it"
                                                                   : "comes first and has it");
        return OK;
    }
    if (name[0] == '*' && !dns01_ready(c, d, ptemp)) {
        acme_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                       "ACME03602: ACMEDomain %s auto (%s): the VirtualHost at %s has the "
                       "wildcard alias %s, and a wildcard name needs the dns-01 challenge (RFC "
                       "8555 section 7.1.3); this certificate's ACMEChallenges does not list "
                       "dns-01 with an ACMEDNSCommand: add 'ACMEChallenges http-01 dns-01' and "
                       "'ACMEDNSCommand /path/to/program' (in its <ACMEDomain %s auto> section or "
                       "globally), or remove the alias, or drop 'auto'",
                       d->name, d->defined_at, vhost_at(v, ptemp), name, d->name);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (d->names->nelts >= ACME_ORDER_IDENTIFIERS_MAX) {
        acme_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                       "ACME03604: ACMEDomain %s auto (%s): with %s of the VirtualHost at %s it "
                       "would have more than %d names, more than CAs (Let's Encrypt) put in one "
                       "certificate; give some of these vhosts an ACMEDomain of their own",
                       d->name, d->defined_at, name, vhost_at(v, ptemp),
                       ACME_ORDER_IDENTIFIERS_MAX);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    APR_ARRAY_PUSH(d->names, const char *) = apr_pstrdup(pconf, name);
    return OK;
}

/* The names of vhost v, in their order: ServerName, the ServerAliases, the wildcard ones. */
static int add_vhost(acme_conf_t *c, acme_domain_t *d, const server_rec *v, server_rec *s,
                     apr_pool_t *pconf, apr_pool_t *ptemp)
{
    int i, rv = OK;

    /* A vhost without ServerName has the main server's, which is no name of the vhost's own. */
    if (v->server_hostname && (v == s || v->server_hostname != s->server_hostname)) {
        rv = add_name(c, d, v, v->server_hostname, s, pconf, ptemp);
    }
    for (i = 0; rv == OK && v->names && i < v->names->nelts; i++) {
        rv = add_name(c, d, v, APR_ARRAY_IDX(v->names, i, const char *), s, pconf, ptemp);
    }
    for (i = 0; rv == OK && v->wild_names && i < v->wild_names->nelts; i++) {
        rv = add_name(c, d, v, APR_ARRAY_IDX(v->wild_names, i, const char *), s, pconf, ptemp);
    }
    return rv;
}

int acme_conf_auto_names(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    acme_conf_t *c = acme_conf_get(s);
    const server_rec *v;
    int i, j;

    (void)plog;
    for (i = 0; i < c->domains->nelts; i++) {
        acme_domain_t *d = APR_ARRAY_IDX(c->domains, i, acme_domain_t *);
        const char *added = NULL;
        if (!d->primary || !d->auto_names) {
            continue;
        }
        /* Both passes of the configuration start from the configured names. */
        d->names->nelts = d->n_configured;
        for (v = s; v; v = v->next) {
            if (vhost_carries(d, v, ptemp) && add_vhost(c, d, v, s, pconf, ptemp) != OK) {
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
        for (j = d->n_configured; j < d->names->nelts; j++) {
            const char *n = APR_ARRAY_IDX(d->names, j, const char *);
            added = added ? apr_pstrcat(ptemp, added, " ", n, NULL) : n;
        }
        acme_log_error(APLOG_MARK, APLOG_INFO, 0, s, "ACME03600: ACMEDomain %s auto (%s): %s",
                       d->name, d->defined_at,
                       added ? apr_pstrcat(ptemp, "the vhosts add ", added, NULL)
                             : "no vhost adds a name");
    }
    return OK;
}
