/* acme_setcache.c - the parent's cache of store folders whose key and chain were checked good
 * (acme_setcache.h). Two generations of entries, each a hash in its own pool: the current pass
 * and the one before it. A lookup that finds its entry in the previous generation moves it to
 * the current one; dropping the previous generation is destroying its pool, so memory never
 * grows beyond the entries of two passes, and after acme_setcache_pass_done of one. */
#include <string.h>

#include <apr_hash.h>
#include <apr_strings.h>

#include "acme_setcache.h"

typedef struct entry_t {
    const char *dir;
    acme_store_file_id_t key_id;
    acme_store_file_id_t chain_id;
    acme_key_t *key; /* a reference living in the entry's generation pool, or NULL */
} entry_t;

typedef struct generation_t {
    apr_pool_t *pool;
    apr_hash_t *entries; /* dir -> entry_t */
} generation_t;

struct acme_setcache_t {
    apr_pool_t *pool;
    generation_t cur;
    generation_t prev; /* pool NULL when dropped */
    int open;          /* between acme_setcache_pass and acme_setcache_pass_done */
    apr_uint64_t hits;
};

static void generation_make(generation_t *g, apr_pool_t *parent)
{
    apr_pool_create(&g->pool, parent);
    apr_pool_tag(g->pool, "acme_setcache");
    g->entries = apr_hash_make(g->pool);
}

static void generation_drop(generation_t *g)
{
    if (g->pool) {
        apr_pool_destroy(g->pool); /* also releases the keys' references */
        g->pool = NULL;
        g->entries = NULL;
    }
}

acme_setcache_t *acme_setcache_create(apr_pool_t *p)
{
    acme_setcache_t *cache = apr_pcalloc(p, sizeof(*cache));

    cache->pool = p;
    generation_make(&cache->cur, p);
    return cache;
}

void acme_setcache_pass(acme_setcache_t *cache)
{
    generation_drop(&cache->prev);
    cache->prev = cache->cur;
    generation_make(&cache->cur, cache->pool);
    cache->open = 1;
}

void acme_setcache_pass_done(acme_setcache_t *cache)
{
    generation_drop(&cache->prev);
    cache->open = 0;
}

static int same_file(const acme_store_file_id_t *a, const acme_store_file_id_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

static entry_t *entry_add(generation_t *g, const char *dir, const acme_store_file_id_t *key_id,
                          const acme_store_file_id_t *chain_id, const acme_key_t *key)
{
    entry_t *e = apr_pcalloc(g->pool, sizeof(*e));

    e->dir = apr_pstrdup(g->pool, dir);
    e->key_id = *key_id;
    e->chain_id = *chain_id;
    e->key = key ? acme_key_ref(key, g->pool) : NULL;
    apr_hash_set(g->entries, e->dir, APR_HASH_KEY_STRING, e);
    return e;
}

int acme_setcache_get(acme_setcache_t *cache, const char *dir, const acme_store_file_id_t *key_id,
                      const acme_store_file_id_t *chain_id, acme_key_t **pkey, apr_pool_t *p)
{
    entry_t *e;

    if (!cache->open) {
        return 0;
    }
    e = apr_hash_get(cache->cur.entries, dir, APR_HASH_KEY_STRING);
    if (!e && cache->prev.entries) {
        e = apr_hash_get(cache->prev.entries, dir, APR_HASH_KEY_STRING);
        if (e) {
            /* Kept for this pass whatever the outcome below decides. */
            e = entry_add(&cache->cur, dir, &e->key_id, &e->chain_id, e->key);
        }
    }
    if (!e) {
        return 0;
    }
    if (!same_file(&e->key_id, key_id) || !same_file(&e->chain_id, chain_id)) {
        apr_hash_set(cache->cur.entries, dir, APR_HASH_KEY_STRING, NULL);
        return 0;
    }
    cache->hits++;
    if (pkey) {
        *pkey = e->key ? acme_key_ref(e->key, p) : NULL;
    }
    return 1;
}

void acme_setcache_put(acme_setcache_t *cache, const char *dir, const acme_store_file_id_t *key_id,
                       const acme_store_file_id_t *chain_id, const acme_key_t *key)
{
    if (cache->open) {
        entry_add(&cache->cur, dir, key_id, chain_id, key);
    }
}

apr_uint64_t acme_setcache_hits(const acme_setcache_t *cache)
{
    return cache->hits;
}

unsigned acme_setcache_count(const acme_setcache_t *cache)
{
    return apr_hash_count(cache->cur.entries) +
           (cache->prev.entries ? apr_hash_count(cache->prev.entries) : 0);
}
