/* acme_names.h - which certificate holds a host name: an index from name to a value (the
 * ACMEDomain), compared as ASCII without case, so that check_config and the request path find
 * it in constant time whatever the number of ACMEDomains (a linear walk made every request cost
 * O(N) and check_config O(N^2); docs/performance.md, "Scale").
 */
#ifndef ACME_NAMES_H
#define ACME_NAMES_H

#include "acme_core.h"

#define ACME_NAME_INDEX_MAX 255 /* longer names are never held, nor found */

typedef struct acme_name_index_t acme_name_index_t;

/* An empty index, in p (where every key it keeps is copied). */
acme_name_index_t *acme_name_index_make(apr_pool_t *p);

/* Adds name -> value unless the name is held already, and returns the value now held for it
 * (the first one added wins, as a walk in configuration order would find it); NULL for a name
 * the index cannot hold (NULL, empty or longer than ACME_NAME_INDEX_MAX). */
void *acme_name_index_add(acme_name_index_t *ix, const char *name, void *value);

/* The value held for host (any case), or NULL. */
void *acme_name_index_get(const acme_name_index_t *ix, const char *host);

/* How many names are held. */
unsigned int acme_name_index_count(const acme_name_index_t *ix);

#endif
