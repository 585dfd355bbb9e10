/* mod_acme_request.c - the renewal driver's side of `acmectl renew` and `acmectl revoke`: a
 * request file jobs/<name>.renew (acme_store_ctl.h) makes the driver renew that certificate at
 * its next tick, whatever its renewal time or backoff says.
 *
 * Runs in the watchdog thread, under the driver's lock (jobs/driver.lock), so that one driver
 * alone acts on a request. The file is the User's folder's: anything running as the User may
 * have written it, so it is read bounded, through the store's no-follow walkers, and at worst
 * costs one renewal.
 */
#include <apr_strings.h>

#include "acme_store_ctl.h"
#include "mod_acme_drive.h"
#include "mod_acme_status.h"

/* One driver thread per process: what it saw of jobs/ at its last tick. */
static acme_renew_watch_t g_watch;
static int g_maybe = 1;

void acme_driver_requests_look(driver_t *drv, apr_pool_t *ptemp)
{
    g_maybe = acme_renew_requests_maybe(&g_watch, drv->rt->store, apr_time_now(), ptemp);
}

int acme_driver_request_pending(driver_t *drv, int i, apr_pool_t *ptemp)
{
    const acme_domain_t *d = APR_ARRAY_IDX(drv->rt->conf->domains, i, acme_domain_t *);
    const char *path = acme_renew_request_path(d->set_name, ptemp);
    apr_finfo_t fi;

    return g_maybe && path &&
           apr_stat(&fi, acme_store_path(drv->rt->store, path, ptemp), APR_FINFO_LINK, ptemp) ==
               APR_SUCCESS;
}

int acme_driver_take_request(driver_t *drv, int i, apr_pool_t *ptemp)
{
    const acme_domain_t *d = APR_ARRAY_IDX(drv->rt->conf->domains, i, acme_domain_t *);
    const char *path = acme_renew_request_path(d->set_name, ptemp);
    acme_renew_request_t *req = NULL;
    char at[APR_RFC822_DATE_LEN];
    apr_status_t rv;

    if (!path || !g_maybe) {
        return 0; /* a name acmectl cannot ask for either, or no request in jobs/ at all */
    }
    rv = acme_renew_request_read(&req, drv->rt->store, d->set_name, ptemp);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return 0;
    }
    /* Taken before it is acted on: a request that cannot be removed would renew at every
     * tick. */
    if (acme_renew_request_clear(drv->rt->store, d->set_name, ptemp) != APR_SUCCESS) {
        /* Said once a minute: the driver looks at every tick. One driver thread per process. */
        static apr_time_t logged;
        if (apr_time_now() - logged > apr_time_from_sec(60)) {
            acme_log_error(APLOG_MARK, APLOG_ERR, 0, drv->rt->s,
                           "ACME03201: %s: a renewal is requested, but %s/%s cannot be removed; "
                           "nothing is renewed until the server's User may remove it",
                           d->name, drv->rt->store_dir, path);
            logged = apr_time_now();
        }
        return 0;
    }
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_ERR, rv, drv->rt->s,
                       "ACME03202: %s: %s/%s is not a renewal request (a link, too large, or "
                       "not what acmectl writes); removed, nothing is renewed",
                       d->name, drv->rt->store_dir, path);
        return 0;
    }
    apr_rfc822_date(at, req->time);
    if (d->promote_failed) {
        acme_log_error(APLOG_MARK, APLOG_ERR, 0, drv->rt->s,
                       "ACME03203: %s: renewal requested (%s), but the staged certificate could "
                       "not be activated at the last start (see ACME01021): fix the store and "
                       "restart the server; the request is dropped",
                       d->name, at);
        return 0;
    }
    if (drv->staged[i]) {
        acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, drv->rt->s,
                       "ACME03204: %s: renewal requested (%s), but a new certificate is already "
                       "staged: it is served after the next graceful restart "
                       "('" ACME_RESTART_COMMAND "'); nothing else is ordered",
                       d->name, at);
        return 0;
    }
    acme_driver_status_requested(drv, i, 1, ptemp);
    acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, drv->rt->s,
                   "ACME03205: %s: renewal requested%s (acmectl, %s): renewing now, reason "
                   "requested",
                   d->name, strcmp(req->reason, "revoked") == 0 ? " after a revocation" : "", at);
    if (strcmp(req->reason, "revoked") == 0 && d->reuse_key) {
        /* ACMEKeyReuse: a revoked certificate's key is not taken again (a compromise may be
         * why). Only the driver thread reads it before the worker starts; the next start reads
         * the new certificate's key. */
        APR_ARRAY_IDX(drv->rt->conf->domains, i, acme_domain_t *)->reuse_key = NULL;
        acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, drv->rt->s,
                       "ACME03711: %s: the certificate was revoked: the new one gets a new key "
                       "(ACMEKeyReuse on keeps the key only over renewals)",
                       d->name);
    }
    return 1;
}

void acme_driver_request_done(driver_t *drv, int i)
{
    acme_driver_status_requested(drv, i, 0, NULL);
}
