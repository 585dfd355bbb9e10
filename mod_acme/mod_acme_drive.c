/* mod_acme_drive.c - the renewal driver: a mod_watchdog singleton in one child, running as the
 * User, so that network-facing code can only ever cost a child.
 *
 * Every tick (DRIVER_TICK) it looks at each ACMEDomain in memory: no certificate, one that
 * misses a configured name, or one due for renewal gets a worker thread, unless its job says to
 * wait (backoff after failures) or a new set is already staged. Workers run concurrently (at
 * most DRIVER_WORKERS_MAX), each with its own CA client, so one slow CA answer never stalls the
 * other domains. A worker's progress is kept in jobs/<name>.json (order, published challenges,
 * key of a finalized order), so an order survives restarts and child recycles.
 *
 * The singleton is single only per generation: during a graceful restart a busy old child's
 * driver may run beside the new one. A flock on jobs/driver.lock, held while a driver works,
 * keeps two from working at once; the process's exit releases it.
 *
 * While workers run, the tick also comes the moment one finishes (acme_driver_wake): a staged
 * set gets its restart asked for at once, not one tick later.
 *
 * These functions run in the watchdog thread; the workers are in mod_acme_worker.c, renewal
 * information in mod_acme_ari.c, the CA clients in mod_acme_ca.c, the restart request in
 * mod_acme_restart.c.
 */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <apr_strings.h>
#include <ap_mpm.h>
#include <http_core.h>
#include <mod_watchdog.h>

#include "acme_csr.h"
#include "acme_dns.h"
#include "mod_acme_drive.h"
#include "mod_acme_status.h"
#include "mod_acme_notify.h"

void acme_driver_wake(driver_t *drv)
{
    if (!drv->wake_ready) {
        return;
    }
    pthread_mutex_lock(&drv->wake_mutex);
    drv->woken = 1;
    pthread_cond_signal(&drv->wake_cond);
    pthread_mutex_unlock(&drv->wake_mutex);
}

/* The stop's wake: prefork may run the stop from its SIGTERM handler in the watchdog thread
 * itself, which may hold wake_mutex in driver_wait; never wait for it there. A wake skipped
 * costs at most one DRIVER_TICK: driver_run looks at the stop flag after each wait. */
static void driver_wake_stop(driver_t *drv)
{
    if (!drv->wake_ready || pthread_mutex_trylock(&drv->wake_mutex) != 0) {
        return;
    }
    drv->woken = 1;
    pthread_cond_signal(&drv->wake_cond);
    pthread_mutex_unlock(&drv->wake_mutex);
}

/* Waits up to t for a worker to finish (or the stop). */
static void driver_wait(driver_t *drv, apr_interval_time_t t)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(t / APR_USEC_PER_SEC);
    until.tv_nsec += (long)(t % APR_USEC_PER_SEC) * 1000;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&drv->wake_mutex);
    while (!drv->woken && pthread_cond_timedwait(&drv->wake_cond, &drv->wake_mutex, &until) == 0) {
    }
    drv->woken = 0;
    pthread_mutex_unlock(&drv->wake_mutex);
}

/* The condition waits on the monotonic clock: a change of the system time does not stretch
 * or cut them. */
static void driver_wake_init(driver_t *drv)
{
    pthread_condattr_t attr;

    if (pthread_condattr_init(&attr) != 0) {
        acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, drv->rt->s,
                       "ACME02311: the renewal driver cannot wait for its workers (no condition "
                       "attributes); it looks at them every %d ms instead",
                       (int)apr_time_as_msec(DRIVER_TICK));
        return;
    }
    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
        pthread_mutex_init(&drv->wake_mutex, NULL) == 0) {
        if (pthread_cond_init(&drv->wake_cond, &attr) == 0) {
            drv->wake_ready = 1;
        } else {
            pthread_mutex_destroy(&drv->wake_mutex);
        }
    }
    pthread_condattr_destroy(&attr);
    if (!drv->wake_ready) {
        acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, drv->rt->s,
                       "ACME02311: the renewal driver cannot wait for its workers (no monotonic "
                       "condition); it looks at them every %d ms instead",
                       (int)apr_time_as_msec(DRIVER_TICK));
    }
}

/* --- the driver --- */

/* A staged set that the parent's checks would pass, now or (its notBefore a little ahead of
 * our clock) at *pwhen: it only waits for a restart. The same rule as the parent's, so that
 * the driver never asks for a restart the parent would refuse, nor orders again while a good
 * set waits. */
static int staged_ok(driver_t *drv, const acme_domain_t *d, apr_time_t *pwhen, apr_pool_t *p)
{
    const char *why;
    apr_status_t rv;

    *pwhen = 0;
    rv = acme_store_check_staged_at(drv->rt->store, d->set_name, d->names, apr_time_now(), pwhen,
                                    &why, p);
    return rv == APR_SUCCESS || APR_STATUS_IS_EAGAIN(rv);
}

static apr_status_t driver_start(driver_t *drv)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    int ncas = drv->rt->conf->ca_all->nelts;
    apr_status_t rv;

    rv = apr_pool_create_unmanaged_ex(&drv->pool, NULL, NULL);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_mutex_create(&drv->account_mutex, APR_THREAD_MUTEX_DEFAULT, drv->pool);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_thread_mutex_create(&drv->dir_mutex, APR_THREAD_MUTEX_DEFAULT, drv->pool);
    }
    /* The directory cache has a pool (and allocator) of its own: workers write it, under
     * dir_mutex, while the driver thread allocates from drv->pool. */
    if (rv == APR_SUCCESS) {
        rv = apr_pool_create_unmanaged_ex(&drv->dir_pool, NULL, NULL);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    drv->dir_cache = apr_hash_make(drv->dir_pool);
    drv->workers = apr_pcalloc(drv->pool, sizeof(worker_t *) * (apr_size_t)domains->nelts);
    drv->next_run = apr_pcalloc(drv->pool, sizeof(apr_time_t) * (apr_size_t)domains->nelts);
    drv->staged = apr_pcalloc(drv->pool, sizeof(int) * (apr_size_t)domains->nelts);
    drv->staged_at = apr_pcalloc(drv->pool, sizeof(apr_time_t) * (apr_size_t)domains->nelts);
    drv->restart_due = apr_pcalloc(drv->pool, sizeof(apr_time_t) * (apr_size_t)domains->nelts);
    drv->renewing = apr_pcalloc(drv->pool, sizeof(int) * (apr_size_t)domains->nelts);
    drv->blocked_logged = apr_pcalloc(drv->pool, sizeof(int) * (apr_size_t)domains->nelts);
    drv->job_mtime = apr_pcalloc(drv->pool, sizeof(apr_time_t) * (apr_size_t)domains->nelts);
    drv->ari_renew_at = apr_pcalloc(drv->pool, sizeof(apr_time_t) * (apr_size_t)domains->nelts);
    drv->ari_check_at = apr_pcalloc(drv->pool, sizeof(apr_time_t) * (apr_size_t)domains->nelts);
    drv->ari_start = apr_pcalloc(drv->pool, sizeof(apr_time_t) * (apr_size_t)domains->nelts);
    drv->ari_end = apr_pcalloc(drv->pool, sizeof(apr_time_t) * (apr_size_t)domains->nelts);
    drv->ari_explanation =
        apr_pcalloc(drv->pool, sizeof(*drv->ari_explanation) * (apr_size_t)domains->nelts);
    drv->ari_absent = apr_pcalloc(drv->pool, sizeof(int) * (apr_size_t)ncas);
    drv->ari_known = apr_pcalloc(drv->pool, sizeof(int) * (apr_size_t)ncas);
    drv->profile_noted = apr_pcalloc(drv->pool, sizeof(int) * (apr_size_t)domains->nelts);
    acme_driver_link_siblings(drv);
    acme_driver_clock_init(drv); /* mod_acme_ca.c */
    drv->restart_hold = acme_restart_hold(drv->rt->pass_time);
    drv->lock_path = acme_store_path(drv->rt->store, DRIVER_LOCK, drv->pool);
    rv = acme_driver_cluster_start(drv);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return acme_driver_notify_start(drv);
}

/* What became of the set a worker staged last: the parent refused it (it recorded why in
 * refused/<name>.json), which counts as a failed attempt with its backoff, so that a set the
 * parent will not take is not ordered again at once, over and over; or it was activated, and
 * the failures are forgotten. */
static void driver_settle_staged(driver_t *drv, const acme_domain_t *d, acme_job_t *job, int i,
                                 apr_time_t now, apr_pool_t *ptemp)
{
    acme_refusal_t *ref;
    apr_uint32_t rnd = 0;
    char at[APR_RFC822_DATE_LEN];

    if (acme_store_refusal_read(&ref, drv->rt->store, d->set_name, ptemp) == APR_SUCCESS) {
        apr_generate_random_bytes((unsigned char *)&rnd, sizeof(rnd));
        if (acme_job_refused(job, ref->time, ref->why, now, rnd, ptemp)) {
            acme_job_save(drv->rt->store, job, ptemp);
            /* Also when the parent refused a set live, between two starts (mod_acme_live.c) */
            drv->next_run[i] = job->next_run;
            apr_rfc822_date(at, job->next_run);
            acme_log_error(
                APLOG_MARK, APLOG_ERR, 0, drv->rt->s,
                "ACME02306: %s: the certificate obtained last was refused at activation: "
                "%s (kept in %s/%s); this counts as a failed attempt: if the reason is "
                "the server's clock, fix it; if it is the CA's certificate, see the "
                "CA; next attempt %s (attempt %d)",
                d->name, ref->why, drv->rt->store_dir, ref->kept, at, job->failures);
            acme_driver_notify_refused(drv, i, job->last_error);
            return;
        }
    }
    if (job->staged && !drv->staged[i]) {
        acme_job_done(job); /* activated (or removed by the operator) */
        acme_job_save(drv->rt->store, job, ptemp);
    }
}

void acme_driver_activated(driver_t *drv, int i, apr_pool_t *ptemp)
{
    const acme_domain_t *d = APR_ARRAY_IDX(drv->rt->conf->domains, i, const acme_domain_t *);
    acme_job_t *job;

    drv->staged[i] = staged_ok(drv, d, &drv->staged_at[i], ptemp);
    drv->blocked_logged[i] = 0;
    drv->ari_renew_at[i] = drv->ari_check_at[i] = 0; /* the new certificate's own window */
    drv->ari_start[i] = drv->ari_end[i] = 0;
    drv->ari_explanation[i][0] = '\0';
    if (acme_job_load(&job, drv->rt->store, d->set_name, ptemp) == APR_SUCCESS) {
        driver_settle_staged(drv, d, job, i, apr_time_now(), ptemp);
    }
}

/* What each domain's job and staging say, read once the lock is held: until then a driver of
 * the previous generation may still stage a set or record a backoff, and a reading taken
 * before would order again at once (a duplicate certificate, or a retry during backoff). */
static void driver_load_state(driver_t *drv, apr_pool_t *ptemp)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    apr_time_t now = apr_time_now();
    int i;

    for (i = 0; i < domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(domains, i, acme_domain_t *);
        acme_job_t *job;
        char at[APR_RFC822_DATE_LEN];

        drv->next_run[i] = 0;
        drv->staged[i] = staged_ok(drv, d, &drv->staged_at[i], ptemp);
        if (drv->staged[i]) {
            /* Staged by the previous generation after its restart began: a renewal of what
             * is served waits for the next batch, as it would have there. */
            acme_driver_restart_due(drv, i, 1);
        }
        if (acme_job_load(&job, drv->rt->store, d->set_name, ptemp) == APR_SUCCESS) {
            driver_settle_staged(drv, d, job, i, now, ptemp);
            acme_driver_ari_load(drv, i, job, now); /* what the CA said, until it is due */
            /* A time saved by a clock that ran ahead must not stall renewal for long. */
            apr_time_t cap = now + ACME_BACKOFF_PERMANENT;
            drv->next_run[i] = job->next_run < cap ? job->next_run : cap;
            /* The failures were with another configuration: the operator changed it (fixed a
             * key file, a CA URL, a DNS command), so the backoff meant for the old one does
             * not apply. A configuration is read at a start, so this is once per restart. */
            if (drv->next_run[i] > now && job->failures && job->config && d->config_id &&
                strcmp(job->config, d->config_id) != 0) {
                apr_rfc822_date(at, drv->next_run[i]);
                acme_log_error(APLOG_MARK, APLOG_NOTICE, 0, drv->rt->s,
                               "ACME02309: %s: the configuration changed since the last failed "
                               "attempt (%s); trying again now instead of at %s",
                               d->name, job->last_error ? job->last_error : "no reason kept", at);
                drv->next_run[i] = 0;
            }
        }
        if (drv->next_run[i] > now) {
            apr_rfc822_date(at, drv->next_run[i]);
            acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, drv->rt->s,
                           "ACME02302: %s: waiting for the next attempt at %s (%d failed so far)",
                           d->name, at, job->failures);
        }
        if (drv->staged[i]) {
            acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, drv->rt->s,
                           "ACME02303: %s: a new certificate is staged; it waits for a restart",
                           d->name);
        }
    }
    acme_driver_status_refresh(drv, 1, ptemp);
}

/* Holds the cross-generation lock, taking it when free; the state of the domains is read
 * when it is taken. */
static int driver_lock(driver_t *drv, apr_pool_t *ptemp)
{
    apr_pool_t *lp;
    apr_status_t rv;

    if (drv->locked) {
        return 1;
    }
    if (!drv->lock) {
        /* Opened in a pool of its own, dropped on failure: a driver retries every tick for as
         * long as the file cannot be opened, and must not grow meanwhile. */
        rv = apr_pool_create(&lp, drv->pool);
        if (rv == APR_SUCCESS) {
            rv = apr_file_open(&drv->lock, drv->lock_path, APR_FOPEN_WRITE | APR_FOPEN_CREATE,
                               APR_FPROT_UREAD | APR_FPROT_UWRITE, lp);
            if (rv != APR_SUCCESS) {
                apr_pool_destroy(lp);
            }
        }
        if (rv != APR_SUCCESS) {
            if (apr_time_now() - drv->lock_error_logged > apr_time_from_sec(60)) {
                acme_log_error(APLOG_MARK, APLOG_ERR, rv, drv->rt->s,
                               "ACME01056: cannot open %s; no certificate can be obtained or "
                               "renewed until the server's User may write in %s/jobs (and reach "
                               "it through every parent folder)",
                               drv->lock_path, drv->rt->store_dir);
                drv->lock_error_logged = apr_time_now();
            }
            drv->lock = NULL;
            return 0;
        }
    }
    rv = apr_file_lock(drv->lock, APR_FLOCK_EXCLUSIVE | APR_FLOCK_NONBLOCK);
    if (rv != APR_SUCCESS) {
        if (!drv->lock_busy_logged) {
            acme_log_error(APLOG_MARK, APLOG_DEBUG, rv, drv->rt->s,
                           "ACME01057: the renewal driver of an earlier generation still works; "
                           "waiting for it");
            drv->lock_busy_logged = 1;
        }
        return 0;
    }
    drv->locked = 1;
    drv->lock_news = 1;
    acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, drv->rt->s,
                   "ACME02315: the server's configuration pass took %" APR_TIME_T_FMT
                   " ms: a new certificate waits at most %" APR_TIME_T_FMT
                   " s past its staging for running orders to share its restart",
                   apr_time_as_msec(drv->rt->pass_time), apr_time_sec(drv->restart_hold));
    driver_load_state(drv, ptemp);
    acme_driver_notify_locked(drv);
    return 1;
}

int acme_driver_ca_index(const driver_t *drv, const acme_domain_t *d)
{
    const apr_array_header_t *all = drv->rt->conf->ca_all, *cas = d->conf->ca_urls;
    const char *ca = cas ? APR_ARRAY_IDX(cas, 0, const char *) : ACME_LETSENCRYPT;
    int k;

    for (k = 0; cas && d->active_ca && k < cas->nelts; k++) {
        if (strcmp(APR_ARRAY_IDX(cas, k, const char *), d->active_ca) == 0) {
            ca = d->active_ca;
        }
    }
    for (k = 0; k < all->nelts; k++) {
        if (strcmp(APR_ARRAY_IDX(all, k, const char *), ca) == 0) {
            return k;
        }
    }
    return 0;
}

static int needs_work(driver_t *drv, int i, apr_time_t now)
{
    const acme_domain_t *d = APR_ARRAY_IDX(drv->rt->conf->domains, i, acme_domain_t *);

    if (drv->staged[i] || drv->next_run[i] > now) {
        return 0;
    }
    /* The parent could not activate what is staged (it logged why at start): ordering again
     * would only stage again; the operator's fix and a restart come first. */
    if (d->promote_failed) {
        if (!drv->blocked_logged[i]) {
            acme_log_error(APLOG_MARK, APLOG_ERR, 0, drv->rt->s,
                           "ACME01063: %s: the staged certificate could not be activated at the "
                           "last start (see ACME01021); no new order until the store is fixed and "
                           "the server restarted",
                           d->name);
            drv->blocked_logged[i] = 1;
        }
        return 0;
    }
    if (!d->has_active || d->mismatch) {
        return 1;
    }
    /* The CA's renewal information, when it gave some, decides; else the renewal window. */
    if (drv->ari_renew_at[i]) {
        return now >= drv->ari_renew_at[i];
    }
    return now >= acme_renew_at(&d->conf->renew_window, d->not_before, d->not_after, d->renew_seed);
}

#define ORDER_DUE       1 /* no certificate, a changed one, or its renewal time */
#define ORDER_REQUESTED 2 /* the operator asked */

/* Nonzero (ORDER_DUE, ORDER_REQUESTED) when domain i gets an order now: the operator asked (acmectl
 * renew: it overrides the renewal time), or it needs one. With ACMECluster only once this node
 * holds the order lease, and the operator's request is taken only then, so that it is not used up
 * while another node orders. */
static int wants_order(driver_t *drv, int i, apr_time_t now, apr_pool_t *ptemp)
{
    if (!drv->cluster) {
        return acme_driver_take_request(drv, i, ptemp) ? ORDER_REQUESTED
               : needs_work(drv, i, now)               ? ORDER_DUE
                                                       : 0;
    }
    if (!acme_driver_request_pending(drv, i, ptemp) && !needs_work(drv, i, now)) {
        return 0;
    }
    if (!acme_driver_cluster_may_order(drv, i, now, ptemp)) {
        return 0;
    }
    return acme_driver_take_request(drv, i, ptemp) ? ORDER_REQUESTED : ORDER_DUE;
}

static void reap(driver_t *drv, int i)
{
    worker_t *w = drv->workers[i];
    apr_status_t trv;

    apr_thread_join(&trv, w->thread);
    acme_driver_status_reaped(drv, i, w);
    acme_driver_notify_reaped(drv, i, w);
    if (w->ari_only) {
        acme_driver_ari_reaped(drv, i, w);
        apr_pool_destroy(w->pool);
        drv->workers[i] = NULL;
        return;
    }
    acme_driver_request_done(drv, i);
    acme_driver_cluster_reaped(drv, i, w); /* ACMECluster: published, lease let go */
    drv->staged[i] = w->staged;
    drv->staged_at[i] = w->staged_at;
    drv->next_run[i] = w->next_run;
    if (w->staged) {
        drv->restart_more = 1; /* a new set: asked for again unless the flag still waits */
        acme_driver_restart_due(drv, i, drv->renewing[i]);
    }
    apr_pool_destroy(w->pool);
    drv->workers[i] = NULL;
}

static void spawn(driver_t *drv, int i, apr_time_t now, int ari_only)
{
    acme_domain_t *d = APR_ARRAY_IDX(drv->rt->conf->domains, i, acme_domain_t *);
    apr_threadattr_t *attr;
    apr_pool_t *p;
    worker_t *w;
    apr_status_t rv;

    rv = apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    if (rv != APR_SUCCESS) {
        return;
    }
    w = apr_pcalloc(p, sizeof(*w));
    w->drv = drv;
    w->d = d;
    w->pool = p;
    w->started = now;
    w->ari_only = ari_only;
    w->ari_ca = acme_driver_ca_index(drv, d);
    w->profile_noted = &drv->profile_noted[i]; /* one worker per domain at a time */
    /* Counted before the thread exists: it may finish before apr_thread_create returns. */
    apr_atomic_inc32(&drv->active);
    rv = apr_threadattr_create(&attr, p);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&w->thread, attr, acme_worker_main, w, p);
    }
    if (rv != APR_SUCCESS) {
        apr_atomic_dec32(&drv->active);
        acme_log_error(APLOG_MARK, APLOG_ERR, rv, drv->rt->s,
                       "ACME01058: %s: cannot start a worker thread; trying again shortly",
                       d->name);
        apr_pool_destroy(p);
        drv->next_run[i] = now + apr_time_from_sec(10);
        return;
    }
    drv->workers[i] = w;
    if (ari_only) {
        return;
    }
    acme_log_error(APLOG_MARK, APLOG_INFO, 0, drv->rt->s, "ACME01062: %s: %s%s%s", d->name,
                   !d->has_active ? "no certificate yet: obtaining one"
                   : d->mismatch  ? "the certificate "
                                  : "the certificate is due for renewal: renewing",
                   d->has_active && d->mismatch ? d->mismatch : "",
                   d->has_active && d->mismatch ? ": obtaining a new one" : "");
}

/* A driver of the previous generation may still publish challenge answers after this
 * generation's parent published the pending ones: they land in the old shared memory only. So
 * job files that changed are read again (once a second) and their answers published here. */
static void republish_changed(driver_t *drv, apr_time_t now, apr_pool_t *ptemp)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    acme_tokens_t *tokens;
    int i;

    if (now < drv->republish_check) {
        return;
    }
    drv->republish_check = now + apr_time_from_sec(1);
    tokens = acme_tokens_socache(drv->rt, ptemp);
    for (i = 0; i < domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(domains, i, acme_domain_t *);
        const char *path = apr_pstrcat(ptemp, "jobs/", d->set_name, ".json", NULL);
        apr_finfo_t fi;
        acme_job_t *job;
        if (drv->workers[i] ||
            apr_stat(&fi, acme_store_path(drv->rt->store, path, ptemp), APR_FINFO_MTIME, ptemp) !=
                APR_SUCCESS ||
            fi.mtime == drv->job_mtime[i]) {
            continue;
        }
        drv->job_mtime[i] = fi.mtime;
        if (acme_job_load(&job, drv->rt->store, d->set_name, ptemp) != APR_SUCCESS) {
            continue;
        }
        acme_tokens_publish_job(drv->rt, tokens, d, job, now, ptemp);
    }
}

/* One look at every domain: reaps, starts work, asks for the restart. Returns the workers in
 * place (started and not yet joined). */
static int driver_tick(driver_t *drv, apr_pool_t *ptemp)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    apr_time_t now = apr_time_now();
    int i, want, running = 0;

    if (apr_atomic_read32(&drv->stopping)) {
        return 0;
    }
    if (!driver_lock(drv, ptemp)) {
        republish_changed(drv, now, ptemp);
        return 0;
    }
    for (i = 0; i < domains->nelts; i++) {
        if (drv->workers[i] && apr_atomic_read32(&drv->workers[i]->done)) {
            reap(drv, i);
        }
        running += drv->workers[i] != NULL;
    }
    /* A set just reaped is due "now" as the reap saw it (acme_driver_restart_due): a clock read
     * before would put its restart off by a tick. */
    now = apr_time_now();
    acme_driver_requests_look(drv, ptemp);
    for (i = 0; i < domains->nelts && running < DRIVER_WORKERS_MAX; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(domains, i, acme_domain_t *);
        if (drv->workers[i]) {
            continue;
        }
        /* The operator's request (acmectl renew) first: it overrides the renewal time. */
        if (acme_driver_sibling_ordering(drv, i, ptemp)) {
            continue;
        }
        if ((want = wants_order(drv, i, now, ptemp)) != 0) {
            drv->renewing[i] = want == ORDER_DUE && d->has_active && !d->mismatch;
            spawn(drv, i, now, 0);
        } else if (acme_driver_ari_due(drv, i, now)) {
            spawn(drv, i, now, 1);
        }
        running += drv->workers[i] != NULL;
    }
    acme_driver_cluster_tick(drv, now, ptemp); /* ACMECluster: leases, sets of other nodes */
    acme_driver_ask_restart(drv, now, ptemp);  /* mod_acme_restart.c */
    acme_driver_live_sync(drv, ptemp);         /* ACMEActivation live (mod_acme_live.c) */
    acme_driver_status_refresh(drv, 0, ptemp);
    acme_driver_notify_tick(drv, now);
    if (drv->lock_news) {
        drv->lock_news = 0;
        acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, drv->rt->s,
                       "ACME02304: the renewal driver works now (it holds %s): %d worker(s) "
                       "started",
                       drv->lock_path, running);
    }
    return running;
}

/* Workers that finished are joined; returns how many still run. Under drv->mutex. */
static int reap_done(driver_t *drv)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    int i, busy = 0;

    for (i = 0; drv->workers && i < domains->nelts; i++) {
        if (drv->workers[i] && apr_atomic_read32(&drv->workers[i]->done)) {
            reap(drv, i);
        }
        busy += drv->workers[i] != NULL;
    }
    return busy;
}

/* Stops the driver: no new work, requests in flight aborted, workers joined within
 * DRIVER_STOP_WAIT. May be called more than once and from two threads at the same time (the
 * watchdog thread's own stop, and the child's exit). */
static void driver_stop(driver_t *drv)
{
    int busy;

    apr_thread_mutex_lock(drv->mutex);
    if (!apr_atomic_read32(&drv->stopping)) {
        drv->stop_deadline = apr_time_now() + DRIVER_STOP_WAIT;
        apr_atomic_set32(&drv->stopping, 1);
    }
    apr_thread_mutex_unlock(drv->mutex);
    driver_wake_stop(drv); /* the watchdog thread returns from its wait */
    /* Requests in flight and waits between polls end at once; a worker may still be writing
     * the job file or making a key, so it gets a moment. The lock is held meanwhile. */
    for (;;) {
        apr_thread_mutex_lock(drv->mutex);
        busy = drv->pool ? reap_done(drv) : 0;
        if (!busy || apr_time_now() >= drv->stop_deadline) {
            break;
        }
        apr_thread_mutex_unlock(drv->mutex);
        apr_sleep(apr_time_from_msec(20));
    }
    acme_driver_notify_stop(drv);
    if (!busy && drv->locked) {
        apr_file_unlock(drv->lock);
        drv->locked = 0;
    } else if (busy && !apr_atomic_read32(&drv->release_when_idle)) {
        apr_atomic_set32(&drv->release_when_idle, 1);
        /* The last worker may have ended just before the flag was up: then nobody else
         * would let go of the lock. */
        if (!apr_atomic_read32(&drv->active) && drv->locked) {
            apr_file_unlock(drv->lock);
        }
        acme_log_error(APLOG_MARK, APLOG_WARNING, 0, drv->rt->s,
                       "ACME02301: %d renewal worker(s) still busy after %d ms of stopping; the "
                       "last one to finish lets the next generation work",
                       busy, (int)apr_time_as_msec(DRIVER_STOP_WAIT));
    }
    apr_thread_mutex_unlock(drv->mutex);
}

/* A child exits without always telling mod_watchdog (prefork never does): workers are stopped
 * here before the process's exit handlers pull OpenSSL and libcurl from under them. */
static apr_status_t driver_child_exit(void *data)
{
    driver_t *drv = data;

    driver_stop(drv);
    while (apr_atomic_read32(&drv->active) && apr_time_now() < drv->stop_deadline) {
        apr_sleep(apr_time_from_msec(20));
    }
    return APR_SUCCESS;
}

void acme_child_driver_init(acme_runtime_t *rt, apr_pool_t *pchild)
{
    driver_t *drv = rt->driver;

    /* Without its mutex the driver stays idle in this child (driver_callback). Nested: prefork
     * stops a child from its SIGTERM handler, which may run in the watchdog thread while that
     * thread holds the mutex in a tick; the stop must not wait for itself there. */
    if (drv) {
        driver_wake_init(drv); /* without it, the driver ticks at mod_watchdog's pace */
    }
    if (drv &&
        apr_thread_mutex_create(&drv->mutex, APR_THREAD_MUTEX_NESTED, pchild) == APR_SUCCESS) {
        apr_pool_pre_cleanup_register(pchild, drv, driver_child_exit);
    }
}

/* One tick; then, while workers run, a tick each time one finishes (or DRIVER_TICK passed),
 * so that a staged set is acted on at once rather than at mod_watchdog's next round. Back to
 * mod_watchdog when no worker runs, the server or the driver stops, or after DRIVER_BUSY_MAX
 * (its own loop then looks at the server's state). */
static void driver_run(driver_t *drv, apr_pool_t *ptemp)
{
    apr_time_t start = apr_time_now();
    apr_pool_t *p;
    int busy, state;

    if (apr_pool_create(&p, ptemp) != APR_SUCCESS) {
        return;
    }
    for (;;) {
        apr_thread_mutex_lock(drv->mutex);
        /* Workers not yet joined, also one that finished after the tick looked: its wake
         * is then pending and the wait below returns at once. */
        busy = drv->pool ? driver_tick(drv, p) : 0;
        apr_thread_mutex_unlock(drv->mutex);
        apr_pool_clear(p);
        if (!busy || !drv->wake_ready || apr_atomic_read32(&drv->stopping) ||
            apr_time_now() - start >= DRIVER_BUSY_MAX ||
            ap_mpm_query(AP_MPMQ_MPM_STATE, &state) != APR_SUCCESS || state == AP_MPMQ_STOPPING) {
            break;
        }
        driver_wait(drv, DRIVER_TICK);
    }
    apr_pool_destroy(p);
}

static apr_status_t driver_callback(int state, void *data, apr_pool_t *ptemp)
{
    driver_t *drv = data;
    apr_status_t rv = APR_SUCCESS;

    if (!drv->mutex) {
        return APR_EGENERAL; /* the child could not set the driver up: it stays idle */
    }
    switch (state) {
    case AP_WATCHDOG_STATE_STARTING:
        apr_thread_mutex_lock(drv->mutex);
        rv = apr_atomic_read32(&drv->stopping) ? APR_EGENERAL : driver_start(drv);
        apr_thread_mutex_unlock(drv->mutex);
        if (rv == APR_SUCCESS) {
            driver_run(drv, ptemp); /* start work now, not one interval later */
        }
        return rv;
    case AP_WATCHDOG_STATE_RUNNING:
        driver_run(drv, ptemp);
        return APR_SUCCESS;
    case AP_WATCHDOG_STATE_STOPPING:
        driver_stop(drv);
        return APR_SUCCESS;
    default:
        return APR_SUCCESS;
    }
}

apr_status_t acme_parent_driver_setup(acme_runtime_t *rt, apr_pool_t *pconf)
{
    APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) * wd_get;
    APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) * wd_register;
    ap_watchdog_t *wd;
    driver_t *drv;
    apr_status_t rv;

    wd_get = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    wd_register = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!wd_get || !wd_register) {
        acme_log_error(APLOG_MARK, APLOG_EMERG, 0, rt->s,
                       "ACME01060: mod_watchdog is not loaded; add LoadModule watchdog_module "
                       "modules/mod_watchdog.so");
        return APR_EGENERAL;
    }
    rv = acme_http_global_init();
    if (rv == APR_SUCCESS) {
        rv = acme_dns_global_init();
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    drv = apr_pcalloc(pconf, sizeof(*drv));
    drv->rt = rt;
    rt->driver = drv;
    rv = wd_get(&wd, "mod_acme", 0, 1, pconf);
    if (rv == APR_SUCCESS) {
        rv = wd_register(wd, DRIVER_TICK, drv, driver_callback);
    }
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_EMERG, rv, rt->s,
                       "ACME01061: cannot register the renewal driver with mod_watchdog");
    }
    return rv;
}
