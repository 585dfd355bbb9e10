/* mod_acme_redirect.c - ACMERequireHttps: plain-HTTP requests for a name whose real certificate
 * is served go to https, and with `permanent` https responses carry Strict-Transport-Security
 * (docs/https.md).
 *
 * Both happen in a quick_handler, the hook the http-01 answers use: it runs on every main
 * request after the request line and headers are read and before translate_name, so before
 * mod_rewrite, mod_alias, proxies and access control; an operator's rules never see a request
 * that is redirected. The challenge path is never redirected (the CA's http-01 requests come
 * over plain HTTP, and may come for a renewal while a certificate is served).
 *
 * Whether a real certificate is served for a name is what the parent found in post_config
 * (has_active, covers_names), inherited by the children: a request costs two lookups in name
 * indexes (its domain, then that domain's https port), no walk, no file and no lock. A name only
 * the fallback serves is left alone: a redirect would land the visitor on the self-signed
 * certificate.
 *
 * The https port of the Location is found once, after mod_ssl's post_config has asked for each
 * TLS vhost's certificate (vhost_tls): ACMEPortMap https:PORT when given, else the port of the
 * first TLS vhost in the server's list (httpd's list runs from the last configured) that uses
 * the certificate, left out when it is 443. It is kept in a name index (acme_names.h) keyed by
 * the domain's name: whatever the number of ACMEDomains, a redirect finds it in constant time,
 * and post_config finds all ports in one walk of the vhosts.
 */
#include <string.h>

#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_ssl.h>

#include "acme_names.h"
#include "mod_acme.h"

#define PREFIX_LEN (sizeof(ACME_CHALLENGE_PREFIX) - 1)

/* The https port of a certificate, found at its first TLS vhost. */
typedef struct port_slot_t {
    int port;  /* 0: 443 */
    int found; /* a TLS vhost uses the certificate */
} port_slot_t;

/* d->name -> port_slot_t for each certificate, for the runtime it was found for. Set in the
 * parent's post_config, inherited by the children. */
static const acme_runtime_t *g_ports_rt;
static acme_name_index_t *g_ports;
/* Some certificate has ACMERequireHttps temporary or permanent: without one, every request
 * leaves the quick handler at once instead of looking its host up. */
static int g_redirect_any;

/* After mod_ssl's post_config: which TLS vhost serves each certificate, and on which port. */
static int acme_redirect_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                     server_rec *s)
{
    acme_runtime_t *rt = acme_runtime();
    const server_rec *v;
    int i;

    (void)plog;
    (void)ptemp;
    g_ports_rt = NULL;
    g_redirect_any = 0;
    if (!rt) {
        return OK;
    }
    g_ports = acme_name_index_make(pconf);
    for (i = 0; i < rt->conf->domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(rt->conf->domains, i, acme_domain_t *);
        acme_name_index_add(g_ports, d->name, apr_pcalloc(pconf, sizeof(port_slot_t)));
        g_redirect_any |= d->conf && (d->conf->require_https == ACME_HTTPS_TEMPORARY ||
                                      d->conf->require_https == ACME_HTTPS_PERMANENT);
    }
    /* In configuration order: the first TLS vhost of each certificate gives its port. */
    for (v = s; v; v = v->next) {
        const acme_conf_t *vc = acme_conf_get(v);
        port_slot_t *slot;
        if (!vc->vhost_tls || !vc->vhost_domain) {
            continue;
        }
        slot = acme_name_index_get(g_ports, vc->vhost_domain->name);
        if (slot && !slot->found) {
            slot->found = 1;
            slot->port = v->addrs && v->addrs->host_port ? v->addrs->host_port : 0;
        }
    }
    g_ports_rt = rt;
    return OK;
}

/* A certificate from the CA, with every configured name, is served for d: some key type's
 * active set. Not the fallback, and not an older set that lacks a name added since. */
static int serves_real(const acme_domain_t *d)
{
    const acme_domain_t *u;

    for (u = d; u; u = u->next_type) {
        if (u->has_active && u->covers_names) {
            return 1;
        }
    }
    return 0;
}

static const char *location(request_rec *r, const acme_runtime_t *rt, const acme_domain_t *d)
{
    int port = rt->conf->port_https;
    const char *host = r->hostname, *rest;
    const port_slot_t *slot;

    if (!port && g_ports_rt == rt && (slot = acme_name_index_get(g_ports, d->name))) {
        port = slot->port;
    }
    if (strchr(host, ':') && host[0] != '[') {
        host = apr_pstrcat(r->pool, "[", host, "]", NULL); /* an IPv6 address */
    }
    /* Path and query as the client sent them, whatever the request line's form. */
    rest = apr_uri_unparse(r->pool, &r->parsed_uri, APR_URI_UNP_OMITSITEPART);
    if (!rest || rest[0] != '/') {
        rest = apr_pstrcat(r->pool, "/", rest ? rest : "", NULL);
    }
    if (port && port != 443) {
        return apr_psprintf(r->pool, "https://%s:%d%s", host, port, rest);
    }
    return apr_pstrcat(r->pool, "https://", host, rest, NULL);
}

static int redirect_quick(request_rec *r, int lookup_only)
{
    acme_runtime_t *rt;
    const acme_domain_t *d;
    const char *loc;
    int mode, status;

    if (!g_redirect_any || lookup_only || r->main || !r->hostname) {
        return DECLINED; /* the common case first: it runs for every request */
    }
    rt = acme_runtime();
    if (!rt) {
        return DECLINED;
    }
    d = acme_domain_for_host(rt->conf, r->hostname);
    if (!d || !d->conf) {
        return DECLINED; /* not our name */
    }
    mode = d->conf->require_https;
    if (mode != ACME_HTTPS_TEMPORARY && mode != ACME_HTTPS_PERMANENT) {
        return DECLINED;
    }
    if (!serves_real(d)) {
        return DECLINED; /* only the fallback: https would show a self-signed certificate */
    }
    if (ap_ssl_conn_is_ssl(r->connection)) {
        /* RFC 6797 7.2: only over a secure transport; never on a fallback vhost. */
        if (mode == ACME_HTTPS_PERMANENT && !acme_conf_get(r->server)->vhost_fallback) {
            apr_int64_t age =
                d->conf->hsts_max_age >= 0 ? d->conf->hsts_max_age : ACME_HSTS_MAX_AGE;
            apr_table_setn(r->err_headers_out, "Strict-Transport-Security",
                           apr_psprintf(r->pool, "max-age=%" APR_INT64_T_FMT, age));
        }
        return DECLINED;
    }
    if (strncmp(r->uri, ACME_CHALLENGE_PREFIX, PREFIX_LEN) == 0 || r->uri[0] != '/') {
        return DECLINED; /* the CA's http-01 requests (answered before this), and "*" */
    }
    loc = location(r, rt, d);
    /* GET and HEAD: 302/301 as asked. Other methods: 307/308, which keep method and body
     * (RFC 9110 15.4); browsers turn a POST redirected by 301/302 into a GET. */
    if (r->method_number == M_GET) {
        status = mode == ACME_HTTPS_PERMANENT ? HTTP_MOVED_PERMANENTLY : HTTP_MOVED_TEMPORARILY;
    } else {
        status = mode == ACME_HTTPS_PERMANENT ? HTTP_PERMANENT_REDIRECT : HTTP_TEMPORARY_REDIRECT;
    }
    apr_table_setn(r->headers_out, "Location", loc);
    acme_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                    "ACME03500: %s: plain-HTTP request redirected to %s (%d, ACMERequireHttps %s)",
                    d->name, loc, status, mode == ACME_HTTPS_PERMANENT ? "permanent" : "temporary");
    return status;
}

/* The module's one quick handler, run for every request: the http-01 answers
 * (mod_acme_challenge.c), then the redirect to https. One hook rather than two: each costs
 * every request a call. */
static int acme_quick_handler(request_rec *r, int lookup_only)
{
    int rv = acme_challenge_quick(r, lookup_only);

    return rv != DECLINED ? rv : redirect_quick(r, lookup_only);
}

void acme_redirect_register_hooks(void)
{
    static const char *const after_ssl[] = {"mod_ssl.c", NULL};

    ap_hook_post_config(acme_redirect_post_config, after_ssl, NULL, APR_HOOK_MIDDLE);
    /* Before mod_cache's quick handler and everything of translate_name. */
    ap_hook_quick_handler(acme_quick_handler, NULL, NULL, APR_HOOK_REALLY_FIRST);
}
