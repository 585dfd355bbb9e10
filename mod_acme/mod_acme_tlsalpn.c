/* mod_acme_tlsalpn.c - which names the challenge types can answer, and tls-alpn-01 (RFC 8737)
 * in the TLS handshake.
 *
 * check_config (the parent at every start and restart, `apachectl configtest`, and the
 * automatic restart's `httpd -t`) reads the configuration the way mod_ssl and httpd's core will
 * use it: whether some Listen reaches a server without TLS (http-01), and for each name which
 * TLS virtual host receives the validator's handshake and whether its Protocols allow
 * acme-tls/1 (tls-alpn-01). docs/apache.md, "Which challenge types answer", states the rules.
 *
 * The handshake hooks run in every child, in mod_ssl's ALPN callback: a validator offers only
 * acme-tls/1; we propose it, take the protocol switch, and give mod_ssl the answer from the
 * token table: one lookup, no file, nothing kept beyond the connection's pool.
 */
#include <string.h>

#include <ap_listen.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_ssl.h>
#include <util_cfgtree.h>

#include "acme_csr.h"
#include "acme_tlsalpn.h"
#include "mod_acme.h"

#define SNI_MAX 253

/* A server (the main one first, then the vhosts in configuration order) and whether mod_ssl
 * will speak TLS on it. */
typedef struct server_info_t {
    server_rec *s;
    int tls;
} server_info_t;

/* Every server, and what the checks look up in them, indexed once per check: a walk over the
 * vhosts for each vhost or name made N certificates with their vhosts cost O(N^2). */
typedef struct servers_t {
    server_info_t *sv;
    int n;
    acme_name_index_t *tls_names; /* ServerName and ServerAlias -> the first TLS vhost's sv */
    apr_array_header_t *tls_wild; /* int: the TLS vhosts with a wildcard ServerAlias, in order */
    int first_tls;                /* the first TLS vhost (not the main server), or 0 */
} servers_t;

/* --- the configuration as mod_ssl will read it --- */

/* The last SSLEngine among the directives from first on: 1 for on (or a list of addresses),
 * 0 for off or optional (optional means TLS only after an upgrade on a plain connection), -1
 * when there is none. */
static int sslengine_in(const ap_directive_t *first, apr_pool_t *p)
{
    const ap_directive_t *d;
    int v = -1;

    for (d = first; d; d = d->next) {
        if (strcasecmp(d->directive, "SSLEngine") == 0 && d->args) {
            const char *args = d->args;
            const char *w = ap_getword_conf(p, &args);
            v = strcasecmp(w, "off") != 0 && strcasecmp(w, "optional") != 0;
        }
    }
    return v;
}

/* The <VirtualHost> section v was made from (same file and line). <IfModule>, <IfDefine> and
 * Include leave their contents in place of themselves, so the sections are at the top. */
static const char *section_key(const char *filename, int line, apr_pool_t *p)
{
    return apr_psprintf(p, "%d:%s", line, filename);
}

/* The top-level <VirtualHost> sections by file and line, found in one walk. */
static apr_hash_t *vhost_sections(apr_pool_t *p)
{
    apr_hash_t *h = apr_hash_make(p);
    const ap_directive_t *d;

    for (d = ap_conftree; d; d = d->next) {
        if (strcasecmp(d->directive, "<VirtualHost") == 0 && d->filename) {
            const char *key = section_key(d->filename, d->line_num, p);
            if (!apr_hash_get(h, key, APR_HASH_KEY_STRING)) { /* the first, as a walk finds */
                apr_hash_set(h, key, APR_HASH_KEY_STRING, d);
            }
        }
    }
    return h;
}

static const ap_directive_t *vhost_section(const server_rec *v, apr_hash_t *sections, apr_pool_t *p)
{
    if (!v->defn_name) {
        return NULL;
    }
    return apr_hash_get(sections, section_key(v->defn_name, (int)v->defn_line_number, p),
                        APR_HASH_KEY_STRING);
}

static int addr_matches(const server_addr_rec *sa, const ap_listen_rec *lr)
{
    if (!lr->bind_addr) {
        return 0;
    }
    if (sa->host_port && sa->host_port != lr->bind_addr->port) {
        return 0;
    }
    return !sa->host_addr || apr_sockaddr_is_wildcard(sa->host_addr) ||
           apr_sockaddr_is_wildcard(lr->bind_addr) ||
           apr_sockaddr_equal(sa->host_addr, lr->bind_addr);
}

static int serves_listener(const server_rec *v, const ap_listen_rec *lr)
{
    const server_addr_rec *sa;

    for (sa = v->addrs; sa; sa = sa->next) {
        if (addr_matches(sa, lr)) {
            return 1;
        }
    }
    return 0;
}

/* As mod_ssl decides: the vhost's SSLEngine, else the main server's, else on when the vhost's
 * port has a "Listen ... https" (port 443 is https by default). */
static int vhost_is_tls(const server_rec *v, int main_engine, apr_hash_t *sections, apr_pool_t *p)
{
    const ap_directive_t *sec = vhost_section(v, sections, p);
    const ap_listen_rec *lr;
    const char *proto;
    int engine = sec ? sslengine_in(sec->first_child, p) : -1;

    if (engine < 0) {
        engine = main_engine;
    }
    if (engine >= 0) {
        return engine;
    }
    proto = ap_get_server_protocol((server_rec *)v);
    for (lr = ap_listeners; !proto && lr; lr = lr->next) {
        if (serves_listener(v, lr)) {
            proto = lr->protocol;
        }
    }
    return proto && strcasecmp(proto, "https") == 0;
}

/* http-01: some Listen (not an https one) receives connections that a server without TLS
 * answers: a vhost on its address and port without TLS, or the main server when no vhost is
 * on it. Our answers come before any vhost's own handling, so which one does not matter. */
static int has_plain_listener(const server_info_t *sv, int n)
{
    const ap_listen_rec *lr;
    int i;

    for (lr = ap_listeners; lr; lr = lr->next) {
        int matched = 0, plain = 0;
        if (lr->protocol && strcasecmp(lr->protocol, "https") == 0) {
            continue;
        }
        for (i = 1; i < n; i++) {
            if (serves_listener(sv[i].s, lr)) {
                matched = 1;
                plain |= !sv[i].tls;
            }
        }
        if (plain || (!matched && !sv[0].tls)) {
            return 1;
        }
    }
    return 0;
}

static int wild_names_server(const server_rec *v, const char *name)
{
    int i;

    for (i = 0; v->wild_names && i < v->wild_names->nelts; i++) {
        if (ap_strcasecmp_match(name, APR_ARRAY_IDX(v->wild_names, i, const char *)) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Indexes the TLS vhosts' names (sv[i].tls set). A ServerName or ServerAlias is compared
 * without case, as strcasecmp did; a wildcard alias is matched in order over the few vhosts
 * that have one. */
static void servers_index(servers_t *ss, apr_pool_t *p)
{
    int i, j;

    ss->tls_names = acme_name_index_make(p);
    ss->tls_wild = apr_array_make(p, 1, sizeof(int));
    ss->first_tls = 0;
    for (i = 1; i < ss->n; i++) {
        const server_rec *v = ss->sv[i].s;
        if (!ss->sv[i].tls) {
            continue;
        }
        ss->first_tls = ss->first_tls ? ss->first_tls : i;
        if (v->server_hostname) {
            acme_name_index_add(ss->tls_names, v->server_hostname, &ss->sv[i]);
        }
        for (j = 0; v->names && j < v->names->nelts; j++) {
            acme_name_index_add(ss->tls_names, APR_ARRAY_IDX(v->names, j, const char *),
                                &ss->sv[i]);
        }
        if (v->wild_names && v->wild_names->nelts) {
            APR_ARRAY_PUSH(ss->tls_wild, int) = i;
        }
    }
}

/* The TLS server whose Protocols decide the validator's handshake for name: for a DNS name the
 * first TLS vhost that has it as ServerName or ServerAlias (mod_ssl's SNI match), else the
 * first TLS vhost (a name no vhost has lands on a default one); for an IP address, whose
 * reverse name no vhost has, the first TLS vhost on that very address, else the first on a
 * wildcard address. NULL when no TLS server would answer. */
static const server_info_t *handshake_server(const servers_t *ss, const char *name, apr_pool_t *p)
{
    const server_info_t *sv = ss->sv;
    int n = ss->n;
    apr_sockaddr_t *ip = NULL;
    const server_addr_rec *sa;
    int i, exact;

    if (acme_name_is_ip(name)) {
        if (apr_sockaddr_info_get(&ip, name, APR_UNSPEC, 0, 0, p) != APR_SUCCESS) {
            return NULL;
        }
        for (exact = 1; exact >= 0; exact--) {
            for (i = 1; i < n; i++) {
                for (sa = sv[i].s->addrs; sv[i].tls && sa; sa = sa->next) {
                    int wild = !sa->host_addr || apr_sockaddr_is_wildcard(sa->host_addr);
                    if (exact ? !wild && apr_sockaddr_equal(sa->host_addr, ip) : wild) {
                        return &sv[i];
                    }
                }
            }
        }
    } else {
        /* The first TLS vhost naming it: by name from the index, unless a vhost before that
         * one has a wildcard alias matching it. */
        const server_info_t *hit = acme_name_index_get(ss->tls_names, name);
        for (i = 0; i < ss->tls_wild->nelts; i++) {
            int k = APR_ARRAY_IDX(ss->tls_wild, i, int);
            if (hit && k >= hit - sv) {
                break;
            }
            if (wild_names_server(sv[k].s, name)) {
                return &sv[k];
            }
        }
        if (hit) {
            return hit;
        }
        if (ss->first_tls) {
            return &sv[ss->first_tls];
        }
    }
    return sv[0].tls ? &sv[0] : NULL;
}

/* "Protocols <what the server allows now> acme-tls/1": the line to add. */
static const char *protocols_line(const server_rec *v, apr_pool_t *p)
{
    core_server_config *conf = ap_get_core_module_config(v->module_config);
    const char *line = "Protocols";
    int i;

    if (!conf->protocols || !conf->protocols->nelts) {
        return "Protocols http/1.1 " ACME_TLSALPN_PROTOCOL;
    }
    for (i = 0; i < conf->protocols->nelts; i++) {
        line = apr_pstrcat(p, line, " ", APR_ARRAY_IDX(conf->protocols, i, const char *), NULL);
    }
    return apr_pstrcat(p, line, " " ACME_TLSALPN_PROTOCOL, NULL);
}

static const char *server_where(const server_info_t *sv, apr_pool_t *p)
{
    if (!sv->s->is_virtual) {
        return "the main server (SSLEngine on outside any VirtualHost)";
    }
    return apr_psprintf(p, "the TLS virtual host %s (%s:%u)",
                        sv->s->server_hostname ? sv->s->server_hostname : "(no ServerName)",
                        sv->s->defn_name, sv->s->defn_line_number);
}

/* Names of one ACMEDomain that tls-alpn-01 cannot answer, grouped by the server that
 * receives their handshakes (NULL: none). */
typedef struct group_t {
    const server_info_t *sv;
    const char *names;
} group_t;

static void group_add(apr_array_header_t *groups, const server_info_t *sv, const char *name,
                      apr_pool_t *p)
{
    group_t *g;
    int i;

    for (i = 0; i < groups->nelts; i++) {
        g = &APR_ARRAY_IDX(groups, i, group_t);
        if (g->sv == sv) {
            g->names = apr_pstrcat(p, g->names, ", ", name, NULL);
            return;
        }
    }
    g = apr_array_push(groups);
    g->sv = sv;
    g->names = name;
}

static int names_type(const apr_array_header_t *types, const char *type)
{
    int i;

    for (i = 0; types && i < types->nelts; i++) {
        if (strcmp(APR_ARRAY_IDX(types, i, const char *), type) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The ACMEChallenges a certificate is obtained with: its section's, else the global one; NULL
 * for the default. */
static const apr_array_header_t *domain_types(const acme_conf_t *c, const acme_domain_t *d)
{
    return d->conf ? d->conf->challenge_types : c->challenge_types;
}

int acme_conf_check_reach(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s)
{
    acme_conf_t *c = acme_conf_get(s);
    acme_reach_t *reach;
    server_info_t *sv;
    servers_t ss;
    apr_hash_t *sections;
    server_rec *v;
    const apr_array_header_t *http_refused = NULL;
    const char *http_blocked, *tls_blocked;
    int i, j, n = 0, main_engine, failed = 0;

    (void)plog;
    if (!c->domains->nelts) {
        return OK;
    }
    reach = apr_pcalloc(pconf, sizeof(*reach));
    reach->tlsalpn = apr_hash_make(pconf);
    reach->notes = apr_array_make(pconf, 1, sizeof(const char *));
    reach->warnings = apr_array_make(pconf, 1, sizeof(const char *));
    c->reach = reach;

    for (v = s; v; v = v->next) {
        n++;
    }
    sv = apr_pcalloc(ptemp, sizeof(*sv) * (apr_size_t)n);
    main_engine = sslengine_in(ap_conftree, ptemp);
    sections = vhost_sections(ptemp);
    for (v = s, i = 0; v; v = v->next, i++) {
        sv[i].s = v;
        sv[i].tls = i == 0 ? main_engine == 1 : vhost_is_tls(v, main_engine, sections, ptemp);
    }
    ss.sv = sv;
    ss.n = n;
    servers_index(&ss, ptemp);
    reach->http01 = has_plain_listener(sv, n);
    /* ACMEPortMap may say the CA's port 80 or 443 does not reach the listeners. */
    http_blocked = acme_port_map_blocks(c, "http-01", pconf);
    tls_blocked = acme_port_map_blocks(c, "tls-alpn-01", pconf);
    if (http_blocked) {
        reach->http01 = 0;
    }

    for (i = 0; i < c->domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(c->domains, i, acme_domain_t *);
        const apr_array_header_t *types = domain_types(c, d);
        apr_array_header_t *groups = apr_array_make(ptemp, 2, sizeof(group_t));
        /* An ACMEChallenges that names a type says the operator counts on it: what cannot work
         * is refused. With the default, each name gets the types that can answer for it. */
        int explicit_http = names_type(types, "http-01");
        int explicit_tls = names_type(types, "tls-alpn-01");
        if (!d->primary) {
            continue; /* the units of further key types share the names and settings */
        }
        if (explicit_http && http_blocked && http_refused != types) {
            http_refused = types;
            acme_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                           "ACME03510: ACMEChallenges http-01%s: %s; correct ACMEPortMap, or "
                           "remove http-01 from ACMEChallenges",
                           d->section ? apr_psprintf(ptemp, " (<ACMEDomain %s>)", d->name) : "",
                           http_blocked);
            failed = 1;
        }
        if (explicit_tls && tls_blocked) {
            acme_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                           "ACME03511: ACMEChallenges tls-alpn-01 (ACMEDomain %s): %s; correct "
                           "ACMEPortMap, or remove tls-alpn-01 from ACMEChallenges",
                           d->name, tls_blocked);
            failed = 1;
            continue;
        }
        if (explicit_http && !reach->http01 && http_refused != types) {
            http_refused = types; /* said once for the global ACMEChallenges */
            acme_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                           "ACME02604: ACMEChallenges http-01%s: no Listen reaches a server "
                           "without TLS, so the CA's http-01 requests (port 80) cannot be "
                           "answered; add a plain listener such as 'Listen 80', or remove "
                           "http-01 from ACMEChallenges",
                           d->section ? apr_psprintf(ptemp, " (<ACMEDomain %s>)", d->name) : "");
            failed = 1;
        }
        if (types && !explicit_tls) {
            continue; /* tls-alpn-01 is not wanted here */
        }
        for (j = 0; j < d->names->nelts; j++) {
            const char *name = APR_ARRAY_IDX(d->names, j, const char *);
            acme_ident_t id = {acme_name_is_ip(name) ? "ip" : "dns", name};
            const char *sni = acme_tlsalpn_sni(&id, pconf);
            const server_info_t *hs;
            if (!sni) {
                continue; /* a wildcard: dns-01 only */
            }
            hs = handshake_server(&ss, name, ptemp);
            if (!tls_blocked && hs &&
                ap_is_allowed_protocol(NULL, NULL, hs->s, ACME_TLSALPN_PROTOCOL)) {
                apr_hash_set(reach->tlsalpn, sni, APR_HASH_KEY_STRING, hs->s);
            } else {
                group_add(groups, tls_blocked ? NULL : hs, name, ptemp);
            }
        }
        for (j = 0; j < groups->nelts; j++) {
            const group_t *g = &APR_ARRAY_IDX(groups, j, group_t);
            const char *why;
            if (explicit_tls && g->sv) {
                acme_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                               "ACME02602: ACMEChallenges tls-alpn-01: %s receives the CA's "
                               "acme-tls/1 handshakes for %s (ACMEDomain %s) but its Protocols "
                               "do not allow acme-tls/1; add the line '%s' to it (or outside "
                               "any VirtualHost, for all of them)",
                               server_where(g->sv, ptemp), g->names, d->name,
                               protocols_line(g->sv->s, ptemp));
                failed = 1;
                continue;
            }
            if (explicit_tls) {
                acme_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                               "ACME02603: ACMEChallenges tls-alpn-01: no TLS virtual host "
                               "(SSLEngine on) receives the CA's handshakes for %s (ACMEDomain "
                               "%s); add one with the line 'Protocols http/1.1 acme-tls/1', or "
                               "remove tls-alpn-01 from ACMEChallenges",
                               g->names, d->name);
                failed = 1;
                continue;
            }
            /* The default: said once at start (acme_parent_reach_log). */
            why = tls_blocked ? tls_blocked
                  : g->sv
                      ? apr_psprintf(pconf,
                                     "%s, which receives their handshakes, does not allow the "
                                     "protocol acme-tls/1 (the line '%s' there would)",
                                     server_where(g->sv, ptemp), protocols_line(g->sv->s, ptemp))
                      : "no TLS virtual host (SSLEngine on) receives their handshakes";
            if (reach->http01) {
                APR_ARRAY_PUSH(reach->notes, const char *) = apr_psprintf(
                    pconf, "%s: tls-alpn-01 is not used for %s: %s; http-01 answers for them",
                    d->name, g->names, why);
            } else {
                APR_ARRAY_PUSH(reach->warnings, const char *) = apr_psprintf(
                    pconf,
                    "%s: no challenge type can answer for %s: for http-01 %s, and for "
                    "tls-alpn-01 %s; no certificate can be obtained for them until the "
                    "configuration allows one",
                    d->name, g->names,
                    http_blocked ? http_blocked
                                 : "the server has no plain-HTTP listener (Listen 80 would be one)",
                    why);
            }
        }
    }
    /* configtest says it too: post_config, which says it at start, does not run there. */
    if (ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST) {
        for (i = 0; i < reach->warnings->nelts; i++) {
            acme_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "ACME03512: %s",
                           APR_ARRAY_IDX(reach->warnings, i, const char *));
        }
    }
    return failed ? HTTP_INTERNAL_SERVER_ERROR : OK;
}

void acme_parent_reach_log(acme_runtime_t *rt)
{
    const acme_reach_t *reach = rt->conf->reach;
    int i;

    if (!reach) {
        return;
    }
    acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, rt->s,
                   "ACME02605: http-01 %s (%s); tls-alpn-01 answers for %u name(s)",
                   reach->http01 ? "answers" : "cannot answer",
                   reach->http01 ? "a Listen reaches a server without TLS"
                                 : "every Listen is served with TLS",
                   apr_hash_count(reach->tlsalpn));
    for (i = 0; i < reach->notes->nelts; i++) {
        acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, rt->s, "ACME02600: %s",
                       APR_ARRAY_IDX(reach->notes, i, const char *));
    }
    for (i = 0; i < reach->warnings->nelts; i++) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, rt->s, "ACME02601: %s",
                       APR_ARRAY_IDX(reach->warnings, i, const char *));
    }
}

const char *acme_reach_answer_type(const acme_conf_t *conf, const acme_conf_t *dc,
                                   const acme_ident_t *id, apr_pool_t *p)
{
    int i, n = acme_challenge_count(dc);

    for (i = 0; i < n; i++) {
        const char *type = acme_challenge_type(dc, i);
        if (acme_reach_can_answer(conf, type, id, p)) {
            return type;
        }
    }
    return NULL;
}

int acme_reach_can_answer(const acme_conf_t *conf, const char *type, const acme_ident_t *id,
                          apr_pool_t *p)
{
    const acme_reach_t *reach = conf->reach;
    const char *sni;

    if (!reach) {
        return 1;
    }
    if (strcmp(type, "http-01") == 0) {
        return reach->http01;
    }
    if (strcmp(type, "tls-alpn-01") == 0) {
        sni = acme_tlsalpn_sni(id, p);
        return sni && apr_hash_get(reach->tlsalpn, sni, APR_HASH_KEY_STRING) != NULL;
    }
    return 1;
}

/* --- the handshake (every child) --- */

/* A validator offers acme-tls/1 alone (RFC 8737 section 3); mod_ssl selects it only where the
 * vhost's Protocols allow it (ap_select_protocol). */
static int acme_protocol_propose(conn_rec *c, request_rec *r, server_rec *s,
                                 const apr_array_header_t *offers, apr_array_header_t *proposals)
{
    (void)s;
    if (r || !acme_runtime() || !offers || !ap_array_str_contains(offers, ACME_TLSALPN_PROTOCOL) ||
        !ap_ssl_conn_is_ssl(c)) {
        return DECLINED;
    }
    APR_ARRAY_PUSH(proposals, const char *) = ACME_TLSALPN_PROTOCOL;
    return OK;
}

/* The connection carries nothing after the handshake: it is closed after it. */
static int acme_protocol_switch(conn_rec *c, request_rec *r, server_rec *s, const char *protocol)
{
    (void)s;
    if (r || !acme_runtime() || strcmp(protocol, ACME_TLSALPN_PROTOCOL) != 0 ||
        !ap_ssl_conn_is_ssl(c)) {
        return DECLINED;
    }
    ap_set_module_config(c->conn_config, &acme_module, (void *)ACME_TLSALPN_PROTOCOL);
    c->keepalive = AP_CONN_CLOSE;
    return OK;
}

static const char *acme_protocol_get(const conn_rec *c)
{
    return ap_get_module_config(c->conn_config, &acme_module);
}

/* mod_ssl asks, after switching to a protocol other than h2, whether the handshake is a
 * challenge. The answer for the server name replaces the vhost's certificate on this connection
 * only, and mod_ssl answers any request on it with 503. */
static int acme_answer_challenge(conn_rec *c, const char *server_name, const char **pcert_pem,
                                 const char **pkey_pem)
{
    acme_runtime_t *rt = acme_runtime();
    char name[SNI_MAX + 1], pem[ACME_TLSALPN_PEM_MAX];
    const char *end;
    apr_size_t len, i, clen;

    if (!rt || !server_name || strcmp(ap_get_protocol(c), ACME_TLSALPN_PROTOCOL) != 0) {
        return DECLINED;
    }
    len = strlen(server_name);
    if (len && server_name[len - 1] == '.') {
        len--; /* an absolute name */
    }
    if (len == 0 || len > SNI_MAX) {
        return DECLINED;
    }
    for (i = 0; i < len; i++) {
        name[i] = (char)apr_tolower(server_name[i]);
    }
    name[len] = '\0';
    if (acme_request_cert_lookup(rt, name, pem, sizeof(pem), c->pool) != APR_SUCCESS ||
        !(end = strstr(pem, "-----END CERTIFICATE-----\n"))) {
        acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, c->base_server,
                       "ACME02611: %s: an acme-tls/1 handshake from %s, and no tls-alpn-01 "
                       "answer for this name; the vhost's certificate is sent",
                       name, c->client_ip);
        return DECLINED;
    }
    clen = (apr_size_t)(end - pem) + sizeof("-----END CERTIFICATE-----\n") - 1;
    *pcert_pem = apr_pstrmemdup(c->pool, pem, clen);
    *pkey_pem = apr_pstrdup(c->pool, pem + clen);
    acme_log_error(APLOG_MARK, APLOG_INFO, 0, c->base_server,
                   "ACME02610: %s: answered a tls-alpn-01 challenge from %s", name, c->client_ip);
    return OK;
}

void acme_tlsalpn_register_hooks(void)
{
    /* After acme_conf_check, which makes the units of the ACMEDomains. */
    ap_hook_check_config(acme_conf_check_reach, NULL, NULL, APR_HOOK_LAST);
    ap_hook_protocol_propose(acme_protocol_propose, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_protocol_switch(acme_protocol_switch, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_protocol_get(acme_protocol_get, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_ssl_answer_challenge(acme_answer_challenge, NULL, NULL, APR_HOOK_MIDDLE);
}
