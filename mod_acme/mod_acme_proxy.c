/* mod_acme_proxy.c - the directives of the way to the CA and of the certificate key:
 * ACMEHttpProxy, ACMEHttpProxyCACertificateFile (every request to the CA goes through the
 * proxy: acme_http.c sets libcurl's proxy options) and ACMEKeyReuse (a renewal keeps the key of
 * the current certificate: mod_acme_certs.c keeps it, mod_acme_worker.c hands it to the order).
 *
 * All three are per certificate: global, or inside <ACMEDomain> for that certificate only.
 * The proxy URL may hold a user and password: it is kept as given for libcurl and only ever
 * shown through acme_http_proxy_masked ("http://user:***@host:port").
 */
#include <apr_strings.h>
#include <http_core.h>

#include "mod_acme.h"

const char *acme_cmd_http_proxy(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = acme_cmd_conf(cmd);
    const char *err = acme_cmd_per_cert(cmd, c->http_proxy != NULL), *why = NULL;

    (void)dc;
    if (err) {
        return err;
    }
    if (acme_http_proxy_check(arg, &why, cmd->temp_pool) != APR_SUCCESS) {
        /* The value is not echoed: it may hold a password. */
        return apr_psprintf(cmd->pool, "ACMEHttpProxy %s: %s",
                            acme_http_proxy_masked(arg, cmd->pool), why);
    }
    c->http_proxy = apr_pstrdup(cmd->pool, arg);
    return NULL;
}

const char *acme_cmd_http_proxy_ca(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = acme_cmd_conf(cmd);
    const char *err = acme_cmd_per_cert(cmd, c->http_proxy_ca != NULL);

    (void)dc;
    return err ? err
               : acme_cmd_file(cmd, arg,
                               "a PEM file of the CA certificates an https:// ACMEHttpProxy is "
                               "checked against",
                               &c->http_proxy_ca);
}

const char *acme_cmd_key_reuse(cmd_parms *cmd, void *dc, int on)
{
    acme_conf_t *c = acme_cmd_conf(cmd);
    const char *err = acme_cmd_per_cert(cmd, c->key_reuse != 0);

    (void)dc;
    if (err) {
        return err;
    }
    c->key_reuse = on ? 2 : 1;
    return NULL;
}
