/* mod_acme_ca.c - what the renewal driver keeps per CA for all its workers: the CA's directory,
 * in memory for the server generation and in the store across generations (acme_cadir.h), so
 * that a generation with nothing to ask the CA never fetches it, and one with work fetches it
 * at most once a day; and one HTTP share per CA (acme_http_share.h): TLS sessions, DNS, and
 * the handles of finished workers with their open connections, so that the next worker
 * continues on a connection instead of a new TLS handshake.
 *
 * Called from the worker threads (the memory cache is guarded by drv->dir_mutex; the store
 * file is written with one atomic rename).
 */
#include <string.h>

#include <apr_strings.h>

#include "acme_cadir.h"
#include "acme_http_share.h"
#include "mod_acme_drive.h"

const char *acme_driver_directory(driver_t *drv, const char *ca_url, apr_pool_t *p)
{
    const char *dir, *kept = NULL;
    apr_interval_time_t age = 0;
    apr_status_t rv;

    apr_thread_mutex_lock(drv->dir_mutex);
    dir = apr_hash_get(drv->dir_cache, ca_url, APR_HASH_KEY_STRING);
    dir = dir ? apr_pstrdup(p, dir) : NULL;
    apr_thread_mutex_unlock(drv->dir_mutex);
    if (dir) {
        return dir;
    }
    rv = acme_cadir_load(&kept, &age, drv->rt->store, ca_url, apr_time_now(), p);
    if (rv == ACME_EBADSTORE) {
        acme_log_error(APLOG_MARK, APLOG_INFO, rv, drv->rt->s,
                       "ACME03902: %s: the directory kept in %s/jobs/%s.directory is not one "
                       "mod_acme wrote; it is fetched from the CA and the file replaced",
                       ca_url, acme_store_dir(drv->rt->store), acme_store_ca_id(ca_url, p));
    }
    if (rv != APR_SUCCESS) {
        return NULL;
    }
    apr_thread_mutex_lock(drv->dir_mutex);
    if (!apr_hash_get(drv->dir_cache, ca_url, APR_HASH_KEY_STRING)) {
        apr_hash_set(drv->dir_cache, apr_pstrdup(drv->dir_pool, ca_url), APR_HASH_KEY_STRING,
                     apr_pstrdup(drv->dir_pool, kept));
    }
    apr_thread_mutex_unlock(drv->dir_mutex);
    acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, drv->rt->s,
                   "ACME03901: %s: using the directory kept in the store (fetched %" APR_TIME_T_FMT
                   " s ago; fetched again after %d hours)",
                   ca_url, apr_time_sec(age), (int)(apr_time_sec(ACME_CADIR_MAX_AGE) / 3600));
    return kept;
}

void acme_driver_directory_keep(driver_t *drv, const char *ca_url, const char *dir, int distrust,
                                apr_pool_t *p)
{
    int fresh = 0;
    apr_status_t rv;

    apr_thread_mutex_lock(drv->dir_mutex);
    if (dir && !apr_hash_get(drv->dir_cache, ca_url, APR_HASH_KEY_STRING)) {
        apr_hash_set(drv->dir_cache, apr_pstrdup(drv->dir_pool, ca_url), APR_HASH_KEY_STRING,
                     apr_pstrdup(drv->dir_pool, dir));
        fresh = 1; /* fetched by this worker: neither in memory nor in the store */
    } else if (!dir) {
        apr_hash_set(drv->dir_cache, ca_url, APR_HASH_KEY_STRING, NULL);
    }
    apr_thread_mutex_unlock(drv->dir_mutex);
    if (distrust) {
        /* The CA's answers did not fit its directory: the next generation fetches it too. */
        acme_cadir_forget(drv->rt->store, ca_url, p);
        return;
    }
    if (fresh) {
        rv = acme_cadir_save(drv->rt->store, ca_url, dir, apr_time_now(), p);
        if (rv != APR_SUCCESS) {
            acme_log_error(APLOG_MARK, APLOG_WARNING, rv, drv->rt->s,
                           "ACME03903: %s: cannot keep the CA's directory in %s/jobs/%s.directory; "
                           "each server generation fetches it again",
                           ca_url, acme_store_dir(drv->rt->store), acme_store_ca_id(ca_url, p));
        }
    }
}

acme_http_share_t *acme_driver_http_share(driver_t *drv, const char *ca_url)
{
    acme_http_share_t *share;

    apr_thread_mutex_lock(drv->dir_mutex);
    if (!drv->http_shares) {
        drv->http_shares = apr_hash_make(drv->dir_pool);
    }
    share = apr_hash_get(drv->http_shares, ca_url, APR_HASH_KEY_STRING);
    if (!share &&
        acme_http_share_create(&share, DRIVER_WORKERS_MAX, drv->dir_pool) == APR_SUCCESS) {
        apr_hash_set(drv->http_shares, apr_pstrdup(drv->dir_pool, ca_url), APR_HASH_KEY_STRING,
                     share);
    }
    apr_thread_mutex_unlock(drv->dir_mutex);
    return share; /* NULL: each worker connects on its own, as without a share */
}

void acme_driver_http_done(driver_t *drv, const char *ca_url)
{
    acme_http_share_t *share;
    int reused = 0, connects = 0;

    apr_thread_mutex_lock(drv->dir_mutex);
    share = drv->http_shares ? apr_hash_get(drv->http_shares, ca_url, APR_HASH_KEY_STRING) : NULL;
    apr_thread_mutex_unlock(drv->dir_mutex);
    if (share) {
        acme_http_share_counts(share, &reused, &connects);
        acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, drv->rt->s,
                       "ACME03905: %s: %d connection(s) to the CA opened in this process so "
                       "far, %d worker(s) continued on a connection a finished one left open",
                       ca_url, connects, reused);
    }
}
