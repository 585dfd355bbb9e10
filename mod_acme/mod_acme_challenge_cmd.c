/* mod_acme_challenge_cmd.c - the challenge types the configuration asks for, checked as they
 * are read (configtest): ACMEChallenges, ACMEChallengeCache, and the order of preference each
 * certificate's names are answered in (acme_challenge_type). The answers themselves are in
 * mod_acme_challenge.c (http-01), mod_acme_tlsalpn.c and mod_acme_dns.c.
 */
#include <string.h>

#include <apr_strings.h>
#include <http_core.h>

#include "mod_acme.h"

/* The challenge types this build answers, in the default order of preference. */
static const char *const challenge_types_known[] = {"http-01", "tls-alpn-01", "dns-01"};
/* Without ACMEChallenges: each name gets the first of these the configuration can answer. */
static const char *const challenge_types_default[] = {"http-01", "tls-alpn-01"};

int acme_challenge_count(const acme_conf_t *c)
{
    return c->challenge_types
               ? c->challenge_types->nelts
               : (int)(sizeof(challenge_types_default) / sizeof(challenge_types_default[0]));
}

const char *acme_challenge_type(const acme_conf_t *c, int i)
{
    return c->challenge_types ? APR_ARRAY_IDX(c->challenge_types, i, const char *)
                              : challenge_types_default[i];
}

int acme_challenge_listed(const acme_conf_t *c, const char *type)
{
    int i, n = acme_challenge_count(c);

    for (i = 0; i < n; i++) {
        if (strcmp(acme_challenge_type(c, i), type) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ACMEChallenges type [type ...]: known types, each once. */
const char *acme_cmd_challenges(cmd_parms *cmd, void *dc, int argc, char *const argv[])
{
    acme_conf_t *c = acme_cmd_conf(cmd);
    const char *err = acme_cmd_per_cert(cmd, c->challenge_types != NULL);
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

/* ACMEChallengeCache provider[:args]. */
const char *acme_cmd_challenge_cache(cmd_parms *cmd, void *dc, const char *arg)
{
    acme_conf_t *c = acme_cmd_conf(cmd);
    const char *err = acme_cmd_global(cmd, c->cache_spec != NULL);
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
