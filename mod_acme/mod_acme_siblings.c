/* mod_acme_siblings.c - the key types of one ACMEDomain (ACMEKeyType ecdsa rsa: one unit, and
 * one certificate, per type) seen from the renewal driver: a ring that links a unit to its
 * siblings, and whether two of them may order at the same time. They may unless both would
 * answer a name by something other than http-01: one tls-alpn-01 answer certificate per name,
 * one dns-01 TXT record set per name, so one order would overwrite the other's answer.
 *
 * These functions run in the watchdog thread.
 */
#include <string.h>

#include "acme_csr.h"
#include "mod_acme_drive.h"

/* The units of one ACMEDomain (its key types, chained from the first by next_type) in a ring of
 * indexes, so that a unit finds the others without a walk over every domain. */
void acme_driver_link_siblings(driver_t *drv)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    apr_hash_t *index = apr_hash_make(drv->pool);
    int i;

    drv->next_sibling = apr_pcalloc(drv->pool, sizeof(int) * (apr_size_t)domains->nelts);
    for (i = 0; i < domains->nelts; i++) {
        const acme_domain_t **key = &APR_ARRAY_IDX(domains, i, const acme_domain_t *);
        apr_hash_set(index, key, sizeof(*key), &drv->next_sibling[i]);
        drv->next_sibling[i] = i;
    }
    for (i = 0; i < domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(domains, i, const acme_domain_t *);
        const acme_domain_t *x;
        int first = i, prev = i;
        if (!d->primary) {
            continue;
        }
        for (x = d->next_type; x; x = x->next_type) {
            int *slot = apr_hash_get(index, &x, sizeof(x));
            int j;
            if (!slot) {
                continue;
            }
            j = (int)(slot - drv->next_sibling);
            drv->next_sibling[prev] = j;
            prev = j;
        }
        drv->next_sibling[prev] = first;
    }
}

/* 1 when an order for d answers a name in a way that an order for another key type of the same
 * names would overwrite: tls-alpn-01 has one answer certificate per name (the validator's SNI
 * says nothing about the order), dns-01 one TXT record set per name that a teardown empties.
 * http-01 answers are per token and never collide. Predicted as the worker chooses: the first
 * of the certificate's ACMEChallenges that this configuration can answer; wildcards take
 * dns-01. */
static int answers_collide(const driver_t *drv, const acme_domain_t *d, apr_pool_t *p)
{
    int i;

    for (i = 0; i < d->names->nelts; i++) {
        const char *name = APR_ARRAY_IDX(d->names, i, const char *);
        const char *type;
        acme_ident_t id;
        if (name[0] == '*') {
            return 1;
        }
        id.type = acme_name_is_ip(name) ? "ip" : "dns";
        id.value = name;
        type = acme_reach_answer_type(drv->rt->conf, d->conf, &id, p);
        if (type && strcmp(type, "http-01") != 0) {
            return 1;
        }
    }
    return 0;
}

/* 1 while an order for another key type of d's names runs and the two would overwrite each
 * other's challenge answers: d waits for it (a tick after it ends). */
int acme_driver_sibling_ordering(const driver_t *drv, int i, apr_pool_t *p)
{
    int j;

    for (j = drv->next_sibling[i]; j != i; j = drv->next_sibling[j]) {
        if (drv->workers[j] && !drv->workers[j]->ari_only) {
            return answers_collide(drv, APR_ARRAY_IDX(drv->rt->conf->domains, i, acme_domain_t *),
                                   p);
        }
    }
    return 0;
}
