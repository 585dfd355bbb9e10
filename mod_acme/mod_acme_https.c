/* mod_acme_https.c - the directives ACMERequireHttps, ACMEHstsMaxAge and ACMEPortMap, and what
 * the port map says about the challenge types (docs/https.md).
 *
 * The handlers run while the configuration is read; acme_port_map_blocks runs in check_config
 * (the parent, configtest). The redirect and the HSTS header are in mod_acme_redirect.c. Its
 * own file, without request-time hooks, so that the configuration fuzz target links it.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include "mod_acme.h"

/* The longest ACMEHstsMaxAge: two years, the longest the HSTS preload lists ask for. */
#define HSTS_MAX_AGE_MAX (2 * 366 * 86400LL)

const char *acme_cmd_require_https(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = acme_cmd_conf(cmd);
    const char *err = acme_cmd_per_cert(cmd, c->require_https != ACME_HTTPS_UNSET);

    (void)dc;
    if (err) {
        return err;
    }
    if (strcasecmp(arg, "off") == 0) {
        c->require_https = ACME_HTTPS_OFF;
    } else if (strcasecmp(arg, "temporary") == 0) {
        c->require_https = ACME_HTTPS_TEMPORARY;
    } else if (strcasecmp(arg, "permanent") == 0) {
        c->require_https = ACME_HTTPS_PERMANENT;
    } else {
        return apr_psprintf(cmd->pool,
                            "ACMERequireHttps %s: expected off, temporary (redirect with 302) or "
                            "permanent (301 and Strict-Transport-Security)",
                            arg);
    }
    return NULL;
}

const char *acme_cmd_hsts_max_age(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = acme_cmd_conf(cmd);
    const char *err = acme_cmd_per_cert(cmd, c->hsts_max_age >= 0);
    acme_renew_window_t w;

    (void)dc;
    if (err) {
        return err;
    }
    /* 0 is how a site tells browsers to forget what an earlier max-age said (RFC 6797 6.1.1). */
    if (strcmp(arg, "0") == 0 || strcmp(arg, "0s") == 0) {
        c->hsts_max_age = 0;
        return NULL;
    }
    if (acme_renew_window_parse(&w, arg) != APR_SUCCESS || w.percent || w.left <= 0 ||
        apr_time_sec(w.left) > HSTS_MAX_AGE_MAX) {
        return apr_psprintf(cmd->pool,
                            "ACMEHstsMaxAge %s: expected a duration of at most 732 days (e.g. "
                            "365d, 12h, or seconds; 0 to tell browsers to forget HSTS)",
                            arg);
    }
    c->hsts_max_age = apr_time_sec(w.left);
    return NULL;
}

/* A port 1-65535, digits only; 0 for anything else. */
static int port_parse(const char *s)
{
    char *end = NULL;
    long v;

    if (!*s || strlen(s) > 5 || strspn(s, "0123456789") != strlen(s)) {
        return 0;
    }
    v = strtol(s, &end, 10);
    return v >= 1 && v <= 65535 ? (int)v : 0;
}

const char *acme_cmd_port_map(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    acme_conf_t *c = acme_cmd_conf(cmd);
    const char *err;
    int i;

    (void)dc;
    if (c != ap_get_module_config(cmd->server->module_config, &acme_module)) {
        return "ACMEPortMap cannot be used inside <ACMEDomain>: it says how the whole server is "
               "reached; put it outside the section";
    }
    err = acme_cmd_per_cert(cmd, c->port_http || c->port_https);
    if (err) {
        return err;
    }
    if (argc < 1 || argc > 2) {
        return "ACMEPortMap: expected one or two of http:PORT https:PORT, the external ports "
               "that reach the server's plain and TLS listeners (e.g. ACMEPortMap http:80 "
               "https:443)";
    }
    for (i = 0; i < argc; i++) {
        const char *colon = strchr(argv[i], ':');
        int *slot = NULL, port;
        if (colon && (size_t)(colon - argv[i]) == 4 && strncasecmp(argv[i], "http", 4) == 0) {
            slot = &c->port_http;
        } else if (colon && (size_t)(colon - argv[i]) == 5 &&
                   strncasecmp(argv[i], "https", 5) == 0) {
            slot = &c->port_https;
        }
        if (!slot) {
            return apr_psprintf(cmd->pool,
                                "ACMEPortMap %s: expected http:PORT or https:PORT (e.g. "
                                "ACMEPortMap http:80 https:443)",
                                argv[i]);
        }
        if (*slot) {
            return apr_psprintf(cmd->pool, "ACMEPortMap %s: %.*s is given twice", argv[i],
                                (int)(colon - argv[i]), argv[i]);
        }
        port = port_parse(colon + 1);
        if (!port) {
            return apr_psprintf(
                cmd->pool, "ACMEPortMap %s: the port must be a number from 1 to 65535", argv[i]);
        }
        *slot = port;
    }
    return NULL;
}

const char *acme_port_map_blocks(const acme_conf_t *c, const char *type, apr_pool_t *p)
{
    /* RFC 8555 8.3: the CA connects to port 80 for http-01; RFC 8737 3: to 443 for
     * tls-alpn-01. A map that sends another port to the listener says the CA's does not. */
    if (strcmp(type, "http-01") == 0 && c->port_http && c->port_http != 80) {
        return apr_psprintf(p,
                            "ACMEPortMap http:%d says the plain listener is reached on port %d, "
                            "and the CA's http-01 requests come to port 80",
                            c->port_http, c->port_http);
    }
    if (strcmp(type, "tls-alpn-01") == 0 && c->port_https && c->port_https != 443) {
        return apr_psprintf(p,
                            "ACMEPortMap https:%d says the TLS listener is reached on port %d, "
                            "and the CA's tls-alpn-01 handshakes come to port 443",
                            c->port_https, c->port_https);
    }
    return NULL;
}
