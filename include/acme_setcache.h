/* acme_setcache.h - what the parent already checked in the store, kept across configuration
 * passes so that an unchanged key and certificate are not decoded and checked again at every
 * graceful restart (OpenSSL 3 decodes a key slowly: with 1,000 domains a quarter of a restart
 * went to decoding keys mod_ssl then decodes once more).
 *
 * An entry is one folder of the store (fallback/<name>, archive/<name>/<n>) whose key and chain,
 * each identified by acme_store_file_id_t, were found good together: the key decodes and the
 * chain's leaf is its certificate. A lookup hits only when both files are still the very same
 * versions; anything else is a miss and the caller checks the files as if there were no cache.
 * The files are still read through the store (no symlink, one name, bounded) on every pass: the
 * cache only saves the decoding, never the safety checks.
 *
 * Memory: acme_setcache_pass starts a pass; what is not looked up or added during a pass is
 * dropped at acme_setcache_pass_done (or at the next pass), so the cache holds entries for the
 * current configuration's domains only. Outside a pass (between pass_done and the next pass)
 * lookups miss and nothing is added: the parent's restart thread, which activates sets between
 * passes (ACMEActivation live) with the same code, neither uses nor grows it.
 *
 * One thread: the parent's post_config (the restart thread runs only between passes). Made in a
 * pool that lives as long as the process.
 */
#ifndef ACME_SETCACHE_H
#define ACME_SETCACHE_H

#include "acme_key.h"
#include "acme_store.h"

/* A cache living in (a subpool of) p. */
acme_setcache_t *acme_setcache_create(apr_pool_t *p);

/* A new configuration pass begins: entries not used since the previous pass began are dropped. */
void acme_setcache_pass(acme_setcache_t *cache);

/* The pass is over: entries it did not use are dropped now. */
void acme_setcache_pass_done(acme_setcache_t *cache);

/* 1 when dir's key and chain were checked good and are still key_id and chain_id; *pkey (may
 * be NULL) then gets the decoded key kept with the entry (NULL when none was kept), living in
 * p. The entry is kept for this pass. 0 otherwise (a stale entry is forgotten). */
int acme_setcache_get(acme_setcache_t *cache, const char *dir, const acme_store_file_id_t *key_id,
                      const acme_store_file_id_t *chain_id, acme_key_t **pkey, apr_pool_t *p);

/* Records that dir's key key_id and chain chain_id were checked good; key (may be NULL) is kept
 * with the entry for acme_setcache_get to hand out. */
void acme_setcache_put(acme_setcache_t *cache, const char *dir, const acme_store_file_id_t *key_id,
                       const acme_store_file_id_t *chain_id, const acme_key_t *key);

/* Lookups that hit and entries held, for tests and the debug log. */
apr_uint64_t acme_setcache_hits(const acme_setcache_t *cache);
unsigned acme_setcache_count(const acme_setcache_t *cache);

#endif /* ACME_SETCACHE_H */
