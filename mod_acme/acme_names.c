/* acme_names.c - the name index (acme_names.h): an APR hash keyed by the lowercase name. */
#include <apr_hash.h>
#include <apr_strings.h>

#include "acme_names.h"

struct acme_name_index_t {
    apr_pool_t *pool;
    apr_hash_t *hash;
};

acme_name_index_t *acme_name_index_make(apr_pool_t *p)
{
    acme_name_index_t *ix = apr_pcalloc(p, sizeof(*ix));

    ix->pool = p;
    ix->hash = apr_hash_make(p);
    return ix;
}

/* The ASCII lowercase of name into buf (ACME_NAME_INDEX_MAX + 1 bytes); its length, or 0 when
 * it does not fit. Only A-Z change: strcasecmp's meaning in the C locale. */
static apr_size_t lower(char *buf, const char *name)
{
    apr_size_t i;

    for (i = 0; name[i]; i++) {
        char ch = name[i];
        if (i >= ACME_NAME_INDEX_MAX) {
            return 0;
        }
        buf[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    buf[i] = '\0';
    return i;
}

void *acme_name_index_add(acme_name_index_t *ix, const char *name, void *value)
{
    char buf[ACME_NAME_INDEX_MAX + 1];
    apr_size_t len = name ? lower(buf, name) : 0;
    void *held;

    if (!len) {
        return NULL;
    }
    held = apr_hash_get(ix->hash, buf, (apr_ssize_t)len);
    if (held) {
        return held;
    }
    apr_hash_set(ix->hash, apr_pstrmemdup(ix->pool, buf, len), (apr_ssize_t)len, value);
    return value;
}

void *acme_name_index_get(const acme_name_index_t *ix, const char *host)
{
    char buf[ACME_NAME_INDEX_MAX + 1];
    apr_size_t len = host ? lower(buf, host) : 0;

    return len ? apr_hash_get(ix->hash, buf, (apr_ssize_t)len) : NULL;
}

unsigned int acme_name_index_count(const acme_name_index_t *ix)
{
    return apr_hash_count(ix->hash);
}
