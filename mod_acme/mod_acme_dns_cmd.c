/* mod_acme_dns_cmd.c - the directives of dns-01 (docs/dns.md), checked as they are read
 * (configtest): ACMEDNSCommand, ACMEDNSTimeout, ACMEDNSPropagationTimeout, ACMEDNSResolver.
 * Apart from mod_acme_dns.c (the worker's side) so that the configuration's fuzz target links
 * it alone.
 */
#include <string.h>

#include <apr_strings.h>
#include <http_core.h>

#include "acme_dns.h"
#include "mod_acme.h"

/* ACMEDNSCommand /path/to/program [args]. */
const char *acme_cmd_dns_command(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    acme_conf_t *c = acme_cmd_conf(cmd);
    const char *err = acme_cmd_per_cert(cmd, c->dns_command != NULL);

    (void)dc;
    if (err) {
        return err;
    }
    return acme_cmd_program(cmd, &c->dns_command, argc, argv, "/usr/local/bin/dns01");
}

const char *acme_cmd_dns_timeout(cmd_parms *cmd, void *dc, const char *arg)
{
    (void)dc;
    return acme_cmd_duration(cmd, &acme_cmd_conf(cmd)->dns_timeout, arg, apr_time_from_sec(600),
                             "90s, 5m");
}

const char *acme_cmd_dns_propagation(cmd_parms *cmd, void *dc, const char *arg)
{
    (void)dc;
    /* One attempt waits at most 5 minutes for its order in all (ORDER_WAIT). */
    return acme_cmd_duration(cmd, &acme_cmd_conf(cmd)->dns_propagation, arg, apr_time_from_sec(300),
                             "90s, 2m");
}

const char *acme_cmd_dns_resolver(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = acme_cmd_conf(cmd);
    const char *err = acme_cmd_per_cert(cmd, c->dns_resolver != NULL);

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
