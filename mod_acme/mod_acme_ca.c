/* mod_acme_ca.c - what the renewal driver keeps per CA for all its workers: the CA's directory,
 * in memory for the server generation and in the store across generations (acme_cadir.h), so
 * that a generation with nothing to ask the CA never fetches it, and one with work fetches it
 * at most once a day; and one HTTP share per CA (acme_http_share.h): TLS sessions, DNS, and
 * the handles of finished workers with their open connections, so that the next worker
 * continues on a connection instead of a new TLS handshake.
 *
 * Also the workers' ACME client for a CA (acme_driver_client), on the driver's clock whose
 * sleeps end when the server stops.
 *
 * Called from the worker threads (the memory cache is guarded by drv->dir_mutex; the store
 * file is written with one atomic rename).
 */
#include <string.h>

#include <apr_strings.h>

#include "acme_cadir.h"
#include "acme_http_share.h"
#include "mod_acme_drive.h"
#include "mod_acme_status.h"

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

static apr_time_t driver_clock_now(void *baton)
{
    (void)baton;
    return apr_time_now();
}

/* Waits in short slices: a stopping server must not wait for a worker's Retry-After. */
static void driver_clock_sleep(void *baton, apr_interval_time_t t)
{
    driver_t *drv = baton;
    apr_time_t until = apr_time_now() + t;

    while (!apr_atomic_read32(&drv->stopping) && apr_time_now() < until) {
        apr_interval_time_t left = until - apr_time_now();
        apr_sleep(left < apr_time_from_msec(100) ? left : apr_time_from_msec(100));
    }
}

void acme_driver_clock_init(driver_t *drv)
{
    drv->clock.now = driver_clock_now;
    drv->clock.sleep = driver_clock_sleep;
    drv->clock.baton = drv;
}

apr_status_t acme_driver_client(acme_client_t **pclient, driver_t *drv, const acme_domain_t *d,
                                const char *ca_url, apr_pool_t *p)
{
    acme_http_opts_t hopts;
    acme_http_t *http;
    acme_client_t *client;
    const char *dir;
    apr_status_t rv;

    memset(&hopts, 0, sizeof(hopts));
    hopts.ca_file = d->conf->ca_file;
    hopts.proxy = d->conf->http_proxy; /* ACMEHttpProxy (mod_acme_proxy.c) */
    hopts.proxy_ca_file = d->conf->http_proxy_ca;
    hopts.cancel = &drv->stopping; /* a stop aborts requests in flight */
    /* TLS sessions, DNS and connections shared with the CA's other workers (mod_acme_ca.c) */
    hopts.share = acme_driver_http_share(drv, ca_url);
    rv = acme_http_curl_create(&http, &hopts, &drv->rt->log, p);
    if (rv == APR_SUCCESS) {
        http = acme_driver_status_http(http, ca_url, p); /* acme_ca_requests_total */
        rv = acme_client_create(&client, ca_url, http, &drv->rt->log, &drv->clock, p);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    acme_client_set_cancel(client, &drv->stopping);
    dir = acme_driver_directory(drv, ca_url, p); /* mod_acme_ca.c */
    if (dir) {
        acme_client_seed_directory(client, dir, strlen(dir));
    }
    *pclient = client;
    return APR_SUCCESS;
}

void acme_driver_client_done(driver_t *drv, acme_client_t *client, const char *ca_url,
                             apr_status_t rv, apr_pool_t *p)
{
    int distrust = rv == ACME_EPROTO || rv == ACME_EMALFORMED;
    const char *dir = distrust ? NULL : acme_client_directory_json(client, p);

    acme_driver_directory_keep(drv, ca_url, dir, distrust, p); /* mod_acme_ca.c */
    acme_driver_http_done(drv, ca_url);
}
