/* acme_tokens.c - token checks and the in-process token table. */
#include <string.h>

#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "acme_tokens.h"

int acme_token_ok(const char *s, apr_size_t len)
{
    apr_size_t i;

    if (!s || len < ACME_TOKEN_MIN || len > ACME_TOKEN_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_')) {
            return 0;
        }
    }
    return 1;
}

#define THUMBPRINT_LEN 43 /* base64url of 32 bytes, unpadded */

int acme_keyauth_ok(const char *keyauth, const char *token)
{
    apr_size_t tlen;

    if (!keyauth || !token) {
        return 0;
    }
    tlen = strlen(token);
    return acme_token_ok(token, tlen) && strncmp(keyauth, token, tlen) == 0 &&
           keyauth[tlen] == '.' && strlen(keyauth + tlen + 1) == THUMBPRINT_LEN &&
           acme_token_ok(keyauth + tlen + 1, THUMBPRINT_LEN);
}

/* tls-alpn-01 entries live beside the tokens under "tls-alpn-01:<name>": the colon is no
 * base64url character, so no token can reach them. */
#define CERT_KEY_PREFIX "tls-alpn-01:"

typedef struct entry_t {
    apr_pool_t *pool; /* one subpool per entry, so a removal frees it */
    const char *host;
    const char *keyauth;
    apr_time_t expires;
} entry_t;

typedef struct hash_table_t {
    apr_pool_t *pool;
    apr_hash_t *entries; /* token -> entry_t */
    apr_thread_mutex_t *mutex;
} hash_table_t;

static apr_status_t hash_remove_locked(hash_table_t *h, const char *token)
{
    entry_t *e = apr_hash_get(h->entries, token, APR_HASH_KEY_STRING);

    if (!e) {
        return APR_SUCCESS;
    }
    apr_hash_set(h->entries, token, APR_HASH_KEY_STRING, NULL);
    apr_pool_destroy(e->pool);
    return APR_SUCCESS;
}

static apr_status_t hash_put(acme_tokens_t *t, const char *token, const char *host,
                             const char *keyauth, apr_time_t expires)
{
    hash_table_t *h = t->baton;
    entry_t *e;
    apr_pool_t *ep;
    apr_status_t rv;

    if (!acme_token_ok(token, strlen(token)) || !host || !keyauth) {
        return APR_EINVAL;
    }
    apr_thread_mutex_lock(h->mutex);
    hash_remove_locked(h, token);
    rv = apr_pool_create(&ep, h->pool);
    if (rv == APR_SUCCESS) {
        e = apr_pcalloc(ep, sizeof(*e));
        e->pool = ep;
        e->host = apr_pstrdup(ep, host);
        e->keyauth = apr_pstrdup(ep, keyauth);
        e->expires = expires;
        apr_hash_set(h->entries, apr_pstrdup(ep, token), APR_HASH_KEY_STRING, e);
    }
    apr_thread_mutex_unlock(h->mutex);
    return rv;
}

static apr_status_t hash_get(acme_tokens_t *t, const char *token, const char **phost,
                             const char **pkeyauth, apr_pool_t *p)
{
    hash_table_t *h = t->baton;
    entry_t *e;
    apr_status_t rv = APR_NOTFOUND;

    apr_thread_mutex_lock(h->mutex);
    e = apr_hash_get(h->entries, token, APR_HASH_KEY_STRING);
    if (e && e->expires > apr_time_now()) {
        *phost = apr_pstrdup(p, e->host);
        *pkeyauth = apr_pstrdup(p, e->keyauth);
        rv = APR_SUCCESS;
    }
    apr_thread_mutex_unlock(h->mutex);
    return rv;
}

static apr_status_t hash_remove(acme_tokens_t *t, const char *token)
{
    hash_table_t *h = t->baton;
    apr_status_t rv;

    apr_thread_mutex_lock(h->mutex);
    rv = hash_remove_locked(h, token);
    apr_thread_mutex_unlock(h->mutex);
    return rv;
}

#define SNI_MAX 253 /* a DNS name */

/* The table key of a server name, in buf; 0 when the name cannot be one. */
static int cert_key(char *buf, apr_size_t size, const char *sni)
{
    if (!sni || !*sni || strlen(sni) > SNI_MAX) {
        return 0;
    }
    apr_snprintf(buf, size, "%s%s", CERT_KEY_PREFIX, sni);
    return 1;
}

static apr_status_t hash_put_cert(acme_tokens_t *t, const char *sni, const char *pem,
                                  apr_time_t expires)
{
    hash_table_t *h = t->baton;
    char key[sizeof(CERT_KEY_PREFIX) + SNI_MAX];
    entry_t *e;
    apr_pool_t *ep;
    apr_status_t rv;

    if (!cert_key(key, sizeof(key), sni) || !pem) {
        return APR_EINVAL;
    }
    apr_thread_mutex_lock(h->mutex);
    hash_remove_locked(h, key);
    rv = apr_pool_create(&ep, h->pool);
    if (rv == APR_SUCCESS) {
        e = apr_pcalloc(ep, sizeof(*e));
        e->pool = ep;
        e->host = apr_pstrdup(ep, sni);
        e->keyauth = apr_pstrdup(ep, pem);
        e->expires = expires;
        apr_hash_set(h->entries, apr_pstrdup(ep, key), APR_HASH_KEY_STRING, e);
    }
    apr_thread_mutex_unlock(h->mutex);
    return rv;
}

static apr_status_t hash_get_cert(acme_tokens_t *t, const char *sni, const char **ppem,
                                  apr_pool_t *p)
{
    char key[sizeof(CERT_KEY_PREFIX) + SNI_MAX];
    const char *host;

    if (!cert_key(key, sizeof(key), sni)) {
        return APR_NOTFOUND;
    }
    return hash_get(t, key, &host, ppem, p);
}

static apr_status_t hash_remove_cert(acme_tokens_t *t, const char *sni)
{
    hash_table_t *h = t->baton;
    char key[sizeof(CERT_KEY_PREFIX) + SNI_MAX];
    apr_status_t rv;

    if (!cert_key(key, sizeof(key), sni)) {
        return APR_SUCCESS; /* never put */
    }
    apr_thread_mutex_lock(h->mutex);
    rv = hash_remove_locked(h, key);
    apr_thread_mutex_unlock(h->mutex);
    return rv;
}

apr_status_t acme_tokens_hash_create(acme_tokens_t **ptokens, apr_pool_t *p)
{
    hash_table_t *h = apr_pcalloc(p, sizeof(*h));
    acme_tokens_t *t;
    apr_status_t rv;

    rv = apr_thread_mutex_create(&h->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    h->pool = p;
    h->entries = apr_hash_make(p);
    t = apr_pcalloc(p, sizeof(*t));
    t->put = hash_put;
    t->get = hash_get;
    t->remove = hash_remove;
    t->put_cert = hash_put_cert;
    t->get_cert = hash_get_cert;
    t->remove_cert = hash_remove_cert;
    t->baton = h;
    *ptokens = t;
    return APR_SUCCESS;
}
