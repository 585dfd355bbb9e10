/* mod_acme_ari.c - the CA's renewal information (ACME ARI, RFC 9773) for the certificates the
 * server serves: a worker asks the issuer (acme_worker_ari) and keeps the answer in the
 * domain's job file until the CA's time to ask again; the driver takes it over at the join
 * (acme_driver_ari_reaped), reads it back when a new generation's driver starts
 * (acme_driver_ari_load), so that a restart asks the CA nothing it answered already, and
 * decides when to ask (acme_driver_ari_due).
 *
 * acme_worker_ari runs in a worker thread, the acme_driver_ari_* in the watchdog thread.
 */
#include <string.h>

#include <apr_strings.h>

#include "acme_ari.h"
#include "mod_acme_drive.h"

/* The answer in the job file, for the next generations. A job file that does not load is
 * left alone: the next order reports it. */
static void ari_keep(worker_t *w, const acme_ari_t *ari)
{
    acme_store_t *store = w->drv->rt->store;
    acme_job_t *job;
    apr_status_t rv;

    rv = acme_job_load(&job, store, w->d->set_name, w->pool);
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_DEBUG, rv, w->drv->rt->s,
                       "ACME02313: %s: the job file cannot be read: the renewal information is "
                       "not kept, the next server generation asks the CA again",
                       w->d->name);
        return;
    }
    job->ari_cert = w->d->ari_cert_id;
    job->ari_check_at = w->ari_check_at;
    job->ari_start = ari ? w->ari_start : 0;
    job->ari_end = ari ? w->ari_end : 0;
    job->ari_renew_at = ari ? w->ari_renew_at : 0;
    job->ari_explanation =
        ari && w->ari_explanation && strlen(w->ari_explanation) <= 511 ? w->ari_explanation : NULL;
    rv = acme_job_save(store, job, w->pool);
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_WARNING, rv, w->drv->rt->s,
                       "ACME02310: %s: cannot keep the renewal information in %s; the next "
                       "server generation asks the CA again",
                       w->d->name,
                       acme_store_path(store,
                                       apr_pstrcat(w->pool, "jobs/", w->d->set_name, ".json", NULL),
                                       w->pool));
    }
}

/* Asks the CA that issued the certificate when to renew (RFC 9773): a time picked uniformly in
 * its suggested window, cut so that the certificate cannot expire meanwhile. */
void acme_worker_ari(worker_t *w)
{
    acme_runtime_t *rt = w->drv->rt;
    acme_client_t *client;
    acme_problem_t *prob = NULL;
    acme_ari_t *ari;
    apr_uint64_t rnd = 0;
    char from[APR_RFC822_DATE_LEN], to[APR_RFC822_DATE_LEN], at[APR_RFC822_DATE_LEN];
    apr_status_t rv;
    int cut;

    w->ca_url = APR_ARRAY_IDX(rt->conf->ca_all, w->ari_ca, const char *);
    w->ari_check_at = apr_time_now() + apr_time_from_sec(3600);
    rv = acme_driver_client(&client, w->drv, w->d, w->ca_url, w->pool);
    if (rv != APR_SUCCESS) {
        return;
    }
    rv = acme_ari_fetch(&ari, &prob, client, w->d->ari_cert_id, w->pool);
    /* What renewalInfo answers says nothing about the rest of the directory: it is kept. */
    acme_driver_client_done(w->drv, client, w->ca_url, APR_SUCCESS, w->pool);
    if (rv == APR_NOTFOUND) {
        w->ari_absent = 1;
        acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, rt->s,
                       "ACME03904: %s: %s offers no renewal information (no renewalInfo in its "
                       "directory); the renewal window applies to its certificates",
                       w->d->name, w->ca_url);
        return;
    }
    if (rv == ACME_ECANCELLED) {
        return; /* the server stops */
    }
    if (rv == APR_ENOENT) {
        w->ari_check_at = apr_time_now() + ACME_ARI_RECHECK_DEFAULT;
        acme_log_error(APLOG_MARK, APLOG_INFO, 0, rt->s,
                       "ACME02305: %s: %s has no renewal information for this certificate (%s); "
                       "asking again in %d hours, the renewal window applies meanwhile",
                       w->d->name, w->ca_url, acme_problem_describe(prob, w->pool),
                       (int)(apr_time_sec(ACME_ARI_RECHECK_DEFAULT) / 3600));
        ari_keep(w, NULL);
        return;
    }
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_INFO, 0, rt->s,
                       "ACME01065: %s: no renewal information from %s (%s); asking again in an "
                       "hour, the renewal window applies meanwhile",
                       w->d->name, w->ca_url,
                       prob ? acme_problem_describe(prob, w->pool) : acme_strerror(rv, w->pool));
        return;
    }
    w->ari_start = ari->start;
    w->ari_end = ari->end;
    w->ari_explanation = ari->explanation ? apr_pstrdup(w->pool, ari->explanation) : NULL;
    apr_rfc822_date(from, ari->start);
    apr_rfc822_date(to, ari->end);
    cut = acme_ari_clamp(ari, w->d->not_before, w->d->not_after);
    apr_generate_random_bytes((unsigned char *)&rnd, sizeof(rnd));
    w->ari_renew_at = acme_ari_pick(ari, rnd);
    w->ari_check_at = ari->recheck;
    apr_rfc822_date(at, w->ari_renew_at);
    acme_log_error(
        APLOG_MARK, APLOG_INFO, 0, rt->s,
        "ACME01066: %s: the CA suggests renewing between %s and %s%s%s%s; renewing at %s",
        w->d->name, from, to, ari->explanation ? " (see " : "",
        ari->explanation ? apr_pstrcat(w->pool, ari->explanation, ")", NULL) : "",
        cut ? ", which ends too close to the certificate's expiry: cut to its last "
              "tenth"
            : "",
        at);
    ari_keep(w, ari);
}

static void ari_take(driver_t *drv, int i, int ca, apr_time_t renew_at, apr_time_t start,
                     apr_time_t end, const char *explanation)
{
    drv->ari_renew_at[i] = renew_at;
    drv->ari_start[i] = start;
    drv->ari_end[i] = end;
    drv->ari_explanation[i][0] = '\0';
    if (explanation && strlen(explanation) < ACME_DRIVE_EXPLANATION_MAX) {
        apr_cpystrn(drv->ari_explanation[i], explanation, ACME_DRIVE_EXPLANATION_MAX);
    }
    drv->ari_known[ca] = 1;
}

void acme_driver_ari_reaped(driver_t *drv, int i, const worker_t *w)
{
    drv->ari_absent[w->ari_ca] |= w->ari_absent;
    drv->ari_check_at[i] = w->ari_check_at;
    if (w->ari_renew_at) {
        ari_take(drv, i, w->ari_ca, w->ari_renew_at, w->ari_start, w->ari_end, w->ari_explanation);
    }
}

void acme_driver_ari_load(driver_t *drv, int i, const acme_job_t *job, apr_time_t now)
{
    const acme_domain_t *d = APR_ARRAY_IDX(drv->rt->conf->domains, i, acme_domain_t *);
    acme_ari_t win;

    /* Kept for another certificate (the one before a renewal), or due again: asked anew. */
    if (!job->ari_cert || !d->has_active || !d->ari_cert_id ||
        strcmp(job->ari_cert, d->ari_cert_id) != 0 || job->ari_check_at <= now) {
        return;
    }
    /* A time to ask again further out than the CA may set (a clock that ran ahead, a file
     * edited by hand) is cut to it. */
    drv->ari_check_at[i] = job->ari_check_at < now + ACME_ARI_RECHECK_MAX
                               ? job->ari_check_at
                               : now + ACME_ARI_RECHECK_MAX;
    if (!job->ari_renew_at) {
        return; /* the CA had none for it: the renewal window applies */
    }
    /* The renewal time must lie in the window as cut for this certificate, as when it was
     * picked: else it is not used and the CA is asked again. */
    memset(&win, 0, sizeof(win));
    win.start = job->ari_start;
    win.end = job->ari_end;
    acme_ari_clamp(&win, d->not_before, d->not_after);
    if (job->ari_renew_at < win.start || job->ari_renew_at > win.end) {
        drv->ari_check_at[i] = 0;
        acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, drv->rt->s,
                       "ACME02312: %s: the renewal time kept in jobs/%s.json is outside the CA's "
                       "window for this certificate; asking the CA again",
                       d->name, d->set_name);
        return;
    }
    ari_take(drv, i, acme_driver_ca_index(drv, d), job->ari_renew_at, job->ari_start, job->ari_end,
             job->ari_explanation);
    acme_log_error(APLOG_MARK, APLOG_DEBUG, 0, drv->rt->s,
                   "ACME02314: %s: using the renewal information kept in jobs/%s.json; the CA "
                   "is asked again in %" APR_TIME_T_FMT " s",
                   d->name, d->set_name, apr_time_sec(drv->ari_check_at[i] - now));
}

/* 1 when a worker asks this CA for renewal information now. */
static int ari_asking(const driver_t *drv, int ca)
{
    int i;

    for (i = 0; i < drv->rt->conf->domains->nelts; i++) {
        if (drv->workers[i] && drv->workers[i]->ari_only && drv->workers[i]->ari_ca == ca) {
            return 1;
        }
    }
    return 0;
}

int acme_driver_ari_due(const driver_t *drv, int i, apr_time_t now)
{
    const acme_domain_t *d = APR_ARRAY_IDX(drv->rt->conf->domains, i, acme_domain_t *);
    int ca;

    if (!d->has_active || d->mismatch || !d->ari_cert_id || drv->staged[i] ||
        now < drv->ari_check_at[i]) {
        return 0;
    }
    /* Its issuer is asked; until that CA has shown it does ARI, one domain asks on behalf of
     * all its certificates. */
    ca = acme_driver_ca_index(drv, d);
    return !drv->ari_absent[ca] && (drv->ari_known[ca] || !ari_asking(drv, ca));
}
