/* mod_acme_cluster_cmd.c - the ACMECluster directive (docs/cluster.md), checked as it is read
 * (configtest): the engine's form, an absolute shared folder, the node name, the lease bounds.
 * Apart from mod_acme_cluster.c (the driver's side) so that the configuration's fuzz target
 * links it alone.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <http_core.h>

#include "acme_cluster.h"
#include "mod_acme.h"

const char *acme_cmd_cluster(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    acme_conf_t *c = acme_cmd_conf(cmd);
    const char *err = acme_cmd_global(cmd, c->cluster != NULL), *why, *host;
    acme_cluster_conf_t *cl;
    apr_port_t port;
    char hostname[APRMAXHOSTLEN + 1];
    int kind, i;

    (void)dc;
    if (err) {
        return err;
    }
    if (argc < 2) {
        return "ACMECluster needs the engine and the shared folder: ACMECluster "
               "memcache:HOST:PORT|redis:HOST:PORT /shared/folder [node=NAME] [lease=SECONDS]";
    }
    cl = apr_pcalloc(cmd->pool, sizeof(*cl));
    if (acme_cluster_engine_parse(&kind, &host, &port, argv[0], &why, cmd->temp_pool) !=
        APR_SUCCESS) {
        return apr_psprintf(cmd->pool, "ACMECluster %s: %s", argv[0], why);
    }
    cl->engine = apr_pstrdup(cmd->pool, argv[0]);
    if (argv[1][0] != '/') {
        return apr_psprintf(cmd->pool,
                            "ACMECluster %s: the shared folder must be an absolute path "
                            "(the same on every node)",
                            argv[1]);
    }
    cl->dir = apr_pstrdup(cmd->pool, argv[1]);
    cl->lease = 60;
    for (i = 2; i < argc; i++) {
        if (strncmp(argv[i], "node=", 5) == 0 && !cl->node) {
            if (!acme_cluster_node_ok(argv[i] + 5)) {
                return apr_psprintf(cmd->pool,
                                    "ACMECluster %s: a node name is 1 to %d of A-Z a-z 0-9 . _ - "
                                    "(not first: . -)",
                                    argv[i], ACME_CLUSTER_NODE_MAX);
            }
            cl->node = apr_pstrdup(cmd->pool, argv[i] + 5);
        } else if (strncmp(argv[i], "lease=", 6) == 0 && !cl->lease_set) {
            char *end;
            long v = strtol(argv[i] + 6, &end, 10);
            if (!argv[i][6] || *end || v < ACME_CLUSTER_LEASE_MIN || v > ACME_CLUSTER_LEASE_MAX) {
                return apr_psprintf(cmd->pool,
                                    "ACMECluster %s: the lease is a number of seconds from %d to "
                                    "%d",
                                    argv[i], ACME_CLUSTER_LEASE_MIN, ACME_CLUSTER_LEASE_MAX);
            }
            cl->lease = (int)v;
            cl->lease_set = 1;
        } else {
            return apr_psprintf(cmd->pool,
                                "ACMECluster %s: expected node=NAME or lease=SECONDS (each once)",
                                argv[i]);
        }
    }
    if (!cl->node) {
        if (apr_gethostname(hostname, sizeof(hostname), cmd->temp_pool) != APR_SUCCESS ||
            !acme_cluster_node_ok(hostname)) {
            return "ACMECluster: the host name cannot name this node: give node=NAME";
        }
        cl->node = apr_pstrdup(cmd->pool, hostname);
    }
    c->cluster = cl;
    return NULL;
}
