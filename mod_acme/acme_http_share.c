/* acme_http_share.c - TLS sessions, DNS and kept handles shared by the transports of one CA. */
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <curl/curl.h>

#include "acme_http_share.h"

struct acme_http_share_t {
    CURLSH *sh;
    /* libcurl asks for one lock per kind of data at a time; a mutex each. */
    apr_thread_mutex_t *locks[CURL_LOCK_DATA_LAST];
    apr_thread_mutex_t *idle_mutex; /* guards idle, nidle and the counts */
    CURL *idle[ACME_HTTP_SHARE_IDLE_MAX];
    int nidle, idle_max;
    int reused, connects;
};

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *userptr)
{
    acme_http_share_t *share = userptr;

    (void)c;
    (void)access; /* shared or single: one mutex serves both */
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST && share->locks[data]) {
        apr_thread_mutex_lock(share->locks[data]);
    }
}

static void share_unlock(CURL *c, curl_lock_data data, void *userptr)
{
    acme_http_share_t *share = userptr;

    (void)c;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST && share->locks[data]) {
        apr_thread_mutex_unlock(share->locks[data]);
    }
}

/* The pool goes with the process (the driver's) or with a test: kept handles are closed; the
 * share itself only when no handle uses it any more (curl_share_cleanup refuses otherwise). */
static apr_status_t share_cleanup(void *data)
{
    acme_http_share_t *share = data;
    int i;

    for (i = 0; i < share->nidle; i++) {
        curl_easy_cleanup(share->idle[i]);
    }
    share->nidle = 0;
    if (curl_share_cleanup(share->sh) != CURLSHE_OK) {
        /* A transport still holds a handle: leave the share to the process's exit. */
        return APR_SUCCESS;
    }
    share->sh = NULL;
    return APR_SUCCESS;
}

apr_status_t acme_http_share_create(acme_http_share_t **pshare, int idle_max, apr_pool_t *p)
{
    acme_http_share_t *share = apr_pcalloc(p, sizeof(*share));
    apr_status_t rv;
    int i;

    for (i = 0; i < CURL_LOCK_DATA_LAST; i++) {
        rv = apr_thread_mutex_create(&share->locks[i], APR_THREAD_MUTEX_DEFAULT, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    rv = apr_thread_mutex_create(&share->idle_mutex, APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    share->idle_max = idle_max < 0                          ? 0
                      : idle_max > ACME_HTTP_SHARE_IDLE_MAX ? ACME_HTTP_SHARE_IDLE_MAX
                                                            : idle_max;
    share->sh = curl_share_init();
    if (!share->sh) {
        return APR_ENOMEM;
    }
    if (curl_share_setopt(share->sh, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
        curl_share_setopt(share->sh, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
        curl_share_setopt(share->sh, CURLSHOPT_USERDATA, share) != CURLSHE_OK ||
        curl_share_setopt(share->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK ||
        curl_share_setopt(share->sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
        curl_share_cleanup(share->sh);
        return ACME_ETRANSPORT;
    }
    apr_pool_cleanup_register(p, share, share_cleanup, apr_pool_cleanup_null);
    *pshare = share;
    return APR_SUCCESS;
}

void *acme_http_share_take(acme_http_share_t *share)
{
    CURL *c = NULL;

    apr_thread_mutex_lock(share->idle_mutex);
    if (share->nidle > 0) {
        c = share->idle[--share->nidle];
        share->reused++;
    }
    apr_thread_mutex_unlock(share->idle_mutex);
    return c;
}

void acme_http_share_give(acme_http_share_t *share, void *curl)
{
    CURL *c = curl;

    apr_thread_mutex_lock(share->idle_mutex);
    if (share->nidle < share->idle_max) {
        share->idle[share->nidle++] = c;
        c = NULL;
    }
    apr_thread_mutex_unlock(share->idle_mutex);
    if (c) {
        curl_easy_cleanup(c);
    }
}

void *acme_http_share_curlsh(acme_http_share_t *share)
{
    return share->sh;
}

void acme_http_share_connected(acme_http_share_t *share, long connects)
{
    if (connects > 0) {
        apr_thread_mutex_lock(share->idle_mutex);
        share->connects += (int)connects;
        apr_thread_mutex_unlock(share->idle_mutex);
    }
}

void acme_http_share_counts(acme_http_share_t *share, int *preused, int *pconnects)
{
    apr_thread_mutex_lock(share->idle_mutex);
    *preused = share->reused;
    *pconnects = share->connects;
    apr_thread_mutex_unlock(share->idle_mutex);
}
