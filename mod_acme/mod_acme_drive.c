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
 * acme_driver_* functions run in the watchdog thread, worker_* in worker threads.
 */
#include <signal.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <http_core.h>
#include <mod_watchdog.h>

#include "acme_ari.h"
#include "mod_acme.h"

#define DRIVER_TICK        apr_time_from_msec(100)
#define DRIVER_WORKERS_MAX 8
#define DRIVER_LOCK        "jobs/driver.lock"
#define ORDER_WAIT         apr_time_from_sec(300) /* bound on one attempt's polling */
/* A restart waits at most this long for other workers, so that one activates a batch. */
#define COALESCE_MAX apr_time_from_sec(60)

typedef struct driver_t driver_t;

typedef struct worker_t {
    driver_t *drv;
    acme_domain_t *d;
    apr_pool_t *pool; /* unmanaged: freed by the driver after the join */
    apr_thread_t *thread;
    apr_time_t started;
    volatile apr_uint32_t done;
    volatile apr_uint32_t challenges; /* answers published and not withdrawn */
    acme_job_t *job;
    const char *ca_url; /* CA of the current try */
    int staged;
    apr_time_t next_run;
    int ari_only;            /* this worker only asks the CA for renewal information */
    int ari_absent;          /* ... and learnt that the CA offers none */
    apr_time_t ari_renew_at; /* ... or when to renew, picked in the CA's window */
    apr_time_t ari_check_at; /* ... and when to ask again */
} worker_t;

struct driver_t {
    acme_runtime_t *rt;
    apr_pool_t *pool; /* the driver's own, in the child */
    apr_file_t *lock;
    int locked;
    int lock_busy_logged;
    apr_time_t lock_error_logged;      /* an unusable lock file is reported once a minute */
    apr_thread_mutex_t *account_mutex; /* first-time account setup, one at a time */
    worker_t **workers;                /* per domain, NULL when idle */
    apr_time_t *next_run;              /* per domain */
    int *staged;                       /* per domain: a valid set waits for activation */
    int restart_asked;
    apr_time_t restart_retry; /* after a failed flag write */
    int *blocked_logged;      /* per domain: the parent could not activate its set */
    apr_time_t *job_mtime;    /* per domain: job file last seen, for re-publication */
    apr_time_t republish_check;
    apr_time_t *ari_renew_at; /* per domain: from the CA's renewal information, or 0 */
    apr_time_t *ari_check_at; /* per domain: when to ask the CA again */
    int ari_absent;           /* the CA offers no renewal information */
    int ari_known;            /* the CA answered renewal information once */
    acme_clock_t clock;       /* the system clock, with sleeps that end when stopping */
    volatile apr_uint32_t stopping;
    volatile apr_uint32_t active;            /* workers not yet finished */
    volatile apr_uint32_t release_when_idle; /* stopping: the last worker releases the lock */
};

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

static const char *key_path(const acme_domain_t *d, apr_pool_t *p)
{
    return apr_pstrcat(p, "jobs/", d->set_name, ".key", NULL);
}

/* --- the token table as the issuance sees it: socache plus the job file --- */

static apr_status_t job_tokens_put(acme_tokens_t *t, const char *token, const char *host,
                                   const char *keyauth, apr_time_t expires)
{
    worker_t *w = t->baton;
    acme_tokens_t *cache = acme_tokens_socache(w->drv->rt, w->pool);
    acme_job_chal_t *ch;
    apr_status_t rv;

    rv = cache->put(cache, token, host, keyauth, expires);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    ch = apr_array_push(w->job->challenges);
    ch->token = apr_pstrdup(w->pool, token);
    ch->host = apr_pstrdup(w->pool, host);
    ch->keyauth = apr_pstrdup(w->pool, keyauth);
    ch->expires = expires;
    apr_atomic_inc32(&w->challenges);
    /* Persisted so that the parent publishes it again after a restart wiped shared memory. */
    return acme_job_save(w->drv->rt->store, w->job, w->pool);
}

static apr_status_t job_tokens_get(acme_tokens_t *t, const char *token, const char **phost,
                                   const char **pkeyauth, apr_pool_t *p)
{
    worker_t *w = t->baton;
    acme_tokens_t *cache = acme_tokens_socache(w->drv->rt, p);
    return cache->get(cache, token, phost, pkeyauth, p);
}

static apr_status_t job_tokens_remove(acme_tokens_t *t, const char *token)
{
    worker_t *w = t->baton;
    acme_tokens_t *cache = acme_tokens_socache(w->drv->rt, w->pool);
    apr_array_header_t *chals = w->job->challenges;
    int i;

    for (i = 0; i < chals->nelts; i++) {
        if (strcmp(APR_ARRAY_IDX(chals, i, acme_job_chal_t).token, token) == 0) {
            memmove(&APR_ARRAY_IDX(chals, i, acme_job_chal_t),
                    &APR_ARRAY_IDX(chals, i + 1, acme_job_chal_t),
                    (size_t)(chals->nelts - i - 1) * sizeof(acme_job_chal_t));
            chals->nelts--;
            apr_atomic_dec32(&w->challenges);
            break;
        }
    }
    acme_job_save(w->drv->rt->store, w->job, w->pool);
    return cache->remove(cache, token);
}

static void worker_on_order(void *baton, const char *url)
{
    worker_t *w = baton;

    if (!w->job->order_url || strcmp(w->job->order_url, url) != 0) {
        w->job->order_url = apr_pstrdup(w->pool, url);
        w->job->ca_url = w->ca_url;
        acme_job_save(w->drv->rt->store, w->job, w->pool);
    }
}

static apr_status_t worker_on_key(void *baton, const acme_key_t *key)
{
    worker_t *w = baton;
    const char *pem;
    apr_size_t len;
    apr_status_t rv;

    rv = acme_key_to_pem(&pem, &len, key, w->pool);
    if (rv == APR_SUCCESS) {
        rv = acme_store_write(w->drv->rt->store, key_path(w->d, w->pool), pem, len,
                              APR_FPROT_UREAD | APR_FPROT_UWRITE, w->pool);
    }
    return rv;
}

/* The key of a finalized order of an earlier attempt, if one was kept. */
static acme_key_t *worker_kept_key(worker_t *w)
{
    acme_key_t *key = NULL;
    char *pem;
    apr_size_t len;

    if (acme_store_read(&pem, &len, w->drv->rt->store, key_path(w->d, w->pool), ACME_STORE_KEY_MAX,
                        w->pool) != APR_SUCCESS ||
        acme_key_from_pem(&key, pem, len, w->pool) != APR_SUCCESS) {
        return NULL;
    }
    return key;
}

static json_t *set_meta(worker_t *w, apr_pool_t *p)
{
    json_t *names = json_array();
    int i;

    for (i = 0; i < w->d->names->nelts; i++) {
        json_array_append_new(names, json_string(APR_ARRAY_IDX(w->d->names, i, const char *)));
    }
    return acme_json_pool(p, json_pack("{s:o, s:s, s:s, s:I}", "names", names, "ca", w->ca_url,
                                       "key-type", acme_key_type_name(w->d->key_type), "obtained",
                                       (json_int_t)apr_time_sec(apr_time_now())));
}

/* One try against one CA. */
static apr_status_t worker_try(worker_t *w, acme_problem_t **pprob)
{
    acme_runtime_t *rt = w->drv->rt;
    acme_conf_t *conf = rt->conf;
    acme_http_opts_t hopts;
    acme_account_req_t areq;
    acme_issue_req_t ireq;
    acme_issue_result_t *res;
    acme_tokens_t tokens;
    acme_http_t *http;
    acme_client_t *client;
    apr_array_header_t *contacts;
    const char *why = NULL;
    apr_status_t rv;
    int again;

    memset(&hopts, 0, sizeof(hopts));
    hopts.ca_file = conf->ca_file;
    rv = acme_http_curl_create(&http, &hopts, &rt->log, w->pool);
    if (rv == APR_SUCCESS) {
        rv = acme_client_create(&client, w->ca_url, http, &rt->log, &w->drv->clock, w->pool);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    acme_client_set_cancel(client, &w->drv->stopping);

    memset(&areq, 0, sizeof(areq));
    contacts = apr_array_make(w->pool, 1, sizeof(const char *));
    if (conf->email) {
        APR_ARRAY_PUSH(contacts, const char *) = apr_pstrcat(w->pool, "mailto:", conf->email, NULL);
    }
    areq.contacts = contacts;
    areq.terms_agreed = conf->agreement == 1;

    memset(&ireq, 0, sizeof(ireq));
    memset(&tokens, 0, sizeof(tokens));
    tokens.put = job_tokens_put;
    tokens.get = job_tokens_get;
    tokens.remove = job_tokens_remove;
    tokens.baton = w;
    ireq.domain = w->d->name;
    ireq.names = w->d->names;
    ireq.key_type = w->d->key_type;
    ireq.tokens = &tokens;
    ireq.max_wait = ORDER_WAIT;
    ireq.on_order = worker_on_order;
    ireq.on_key = worker_on_key;
    ireq.baton = w;
    if (w->job->order_url && w->job->ca_url && strcmp(w->job->ca_url, w->ca_url) == 0) {
        ireq.order_url = w->job->order_url;
        ireq.key = worker_kept_key(w);
    }

    for (again = 1; again >= 0; again--) {
        apr_thread_mutex_lock(w->drv->account_mutex);
        rv = acme_account_setup(client, rt->store, &areq, ACME_KEY_EC256, pprob, w->pool);
        apr_thread_mutex_unlock(w->drv->account_mutex);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        /* A renewal names the certificate it replaces (RFC 9773), when the CA does ARI. */
        {
            const char *ari_url;
            if (w->d->has_active && w->d->ari_cert_id &&
                acme_client_resource(&ari_url, NULL, client, "renewalInfo") == APR_SUCCESS) {
                ireq.replaces = w->d->ari_cert_id;
            }
        }
        rv = acme_issue(&res, pprob, client, &ireq, w->pool);
        /* The CA forgot the account (a reset test CA, a deleted account): register again. */
        if (rv == ACME_ENOACCOUNT && again) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, rv, rt->s,
                         "ACME01051: %s: the CA %s no longer knows our account; registering "
                         "again",
                         w->d->name, w->ca_url);
            apr_thread_mutex_lock(w->drv->account_mutex);
            acme_account_forget(client, rt->store, w->pool);
            apr_thread_mutex_unlock(w->drv->account_mutex);
            continue;
        }
        break;
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = acme_store_stage(rt->store, w->d->set_name, res->key, res->chain_pem, res->chain_len,
                          set_meta(w, w->pool), &why, w->pool);
    if (rv != APR_SUCCESS) {
        *pprob = acme_problem_make(rv, 0,
                                   apr_psprintf(w->pool,
                                                "the new certificate cannot be "
                                                "stored: %s",
                                                why ? why : acme_strerror(rv, w->pool)),
                                   w->pool);
        return rv;
    }
    return APR_SUCCESS;
}

static const char *when_text(apr_time_t t, apr_pool_t *p)
{
    char buf[APR_RFC822_DATE_LEN];
    apr_rfc822_date(buf, t);
    return apr_pstrdup(p, buf);
}

static apr_status_t worker_obtain(worker_t *w)
{
    acme_runtime_t *rt = w->drv->rt;
    apr_array_header_t *cas = rt->conf->ca_urls;
    const char *fallback_ca[] = {ACME_LETSENCRYPT};
    acme_problem_t *prob = NULL;
    apr_uint32_t rnd = 0;
    apr_status_t rv;
    int n, start = 0, k;

    rv = acme_job_load(&w->job, rt->store, w->d->set_name, w->pool);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, rt->s,
                     "ACME01052: %s: the job file in %s/jobs cannot be read; starting afresh",
                     w->d->name, rt->store_dir);
    }
    n = cas ? cas->nelts : 1;
    /* An order in flight continues at its own CA. */
    for (k = 0; cas && w->job->ca_url && k < n; k++) {
        if (strcmp(APR_ARRAY_IDX(cas, k, const char *), w->job->ca_url) == 0) {
            start = k;
        }
    }
    for (k = 0; k < n; k++) {
        w->ca_url = cas ? APR_ARRAY_IDX(cas, (start + k) % n, const char *) : fallback_ca[0];
        prob = NULL;
        rv = worker_try(w, &prob);
        if (rv == APR_SUCCESS || rv == ACME_ECANCELLED || !acme_status_is_transient(rv) ||
            k + 1 == n) {
            break;
        }
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, rt->s,
                     "ACME01053: %s: %s failed (%s); trying the next ACMECertificateAuthority",
                     w->d->name, w->ca_url,
                     prob ? acme_problem_describe(prob, w->pool) : acme_strerror(rv, w->pool));
    }
    if (rv == APR_SUCCESS) {
        acme_job_done(w->job);
        acme_job_save(rt->store, w->job, w->pool);
        acme_store_remove(rt->store, key_path(w->d, w->pool), w->pool);
        w->staged = 1;
        w->next_run = 0;
        ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, rt->s,
                     "ACME01054: %s: new certificate obtained from %s; %s", w->d->name, w->ca_url,
                     rt->conf->auto_restart != 0
                         ? "a graceful restart activates it shortly"
                         : "ACMEAutoRestart is off: run 'apachectl graceful' to activate it");
        return APR_SUCCESS;
    }
    if (rv == ACME_ECANCELLED) {
        return rv; /* the server stops; the job resumes in the next generation */
    }
    apr_generate_random_bytes((unsigned char *)&rnd, sizeof(rnd));
    acme_job_failed(w->job, rv, prob, apr_time_now(), rnd, w->pool);
    acme_job_save(rt->store, w->job, w->pool);
    w->next_run = w->job->next_run;
    ap_log_error(APLOG_MARK, APLOG_ERR, rv, rt->s,
                 "ACME01055: %s: no certificate from %s: %s; %s; next attempt %s (attempt %d)",
                 w->d->name, w->ca_url, w->job->last_error, acme_problem_advice(rv),
                 when_text(w->next_run, w->pool), w->job->failures);
    return rv;
}

/* Asks the CA when to renew (RFC 9773): a time picked uniformly in its suggested window. */
static void worker_ari(worker_t *w)
{
    acme_runtime_t *rt = w->drv->rt;
    apr_array_header_t *cas = rt->conf->ca_urls;
    acme_http_opts_t hopts;
    acme_http_t *http;
    acme_client_t *client;
    acme_problem_t *prob = NULL;
    acme_ari_t *ari;
    apr_uint64_t rnd = 0;
    char from[APR_RFC822_DATE_LEN], to[APR_RFC822_DATE_LEN], at[APR_RFC822_DATE_LEN];
    apr_status_t rv;

    memset(&hopts, 0, sizeof(hopts));
    hopts.ca_file = rt->conf->ca_file;
    w->ca_url = cas ? APR_ARRAY_IDX(cas, 0, const char *) : ACME_LETSENCRYPT;
    w->ari_check_at = apr_time_now() + apr_time_from_sec(3600);
    rv = acme_http_curl_create(&http, &hopts, &rt->log, w->pool);
    if (rv == APR_SUCCESS) {
        rv = acme_client_create(&client, w->ca_url, http, &rt->log, &w->drv->clock, w->pool);
    }
    if (rv != APR_SUCCESS) {
        return;
    }
    acme_client_set_cancel(client, &w->drv->stopping);
    rv = acme_ari_fetch(&ari, &prob, client, w->d->ari_cert_id, w->pool);
    if (rv == APR_NOTFOUND) {
        w->ari_absent = 1;
        return;
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, rt->s,
                     "ACME01065: %s: no renewal information from %s (%s); asking again in an "
                     "hour, the renewal window applies meanwhile",
                     w->d->name, w->ca_url,
                     prob ? acme_problem_describe(prob, w->pool) : acme_strerror(rv, w->pool));
        return;
    }
    apr_generate_random_bytes((unsigned char *)&rnd, sizeof(rnd));
    w->ari_renew_at = acme_ari_pick(ari, rnd);
    w->ari_check_at = ari->recheck;
    apr_rfc822_date(from, ari->start);
    apr_rfc822_date(to, ari->end);
    apr_rfc822_date(at, w->ari_renew_at);
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, rt->s,
                 "ACME01066: %s: the CA suggests renewing between %s and %s%s%s; renewing at %s",
                 w->d->name, from, to, ari->explanation ? " (see " : "",
                 ari->explanation ? apr_pstrcat(w->pool, ari->explanation, ")", NULL) : "", at);
}

static void *APR_THREAD_FUNC worker_main(apr_thread_t *thread, void *data)
{
    worker_t *w = data;
    sigset_t all;

    /* Signals are the server's business: they go to the main thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    if (w->ari_only) {
        worker_ari(w);
    } else {
        worker_obtain(w);
    }
    apr_atomic_set32(&w->done, 1);
    /* Stopping, the last worker to finish lets the next generation's driver work. */
    if (apr_atomic_dec32(&w->drv->active) == 0 && apr_atomic_read32(&w->drv->release_when_idle) &&
        w->drv->lock) {
        apr_file_unlock(w->drv->lock);
    }
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

/* --- the driver --- */

/* A staged set that would pass the parent's checks: it only waits for a restart. */
static int staged_ok(driver_t *drv, const acme_domain_t *d, apr_pool_t *p)
{
    acme_certset_t *set;
    const char *why;

    return acme_store_load(&set, drv->rt->store, d->set_name, 1, &why, p) == APR_SUCCESS &&
           acme_cert_chain_check(set->chain, set->key, d->names, apr_time_now(), &why, p) ==
               APR_SUCCESS;
}

static apr_status_t driver_start(driver_t *drv)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    apr_status_t rv;
    int i;

    rv = apr_pool_create_unmanaged_ex(&drv->pool, NULL, NULL);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_mutex_create(&drv->account_mutex, APR_THREAD_MUTEX_DEFAULT, drv->pool);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    drv->workers = apr_pcalloc(drv->pool, sizeof(worker_t *) * (apr_size_t)domains->nelts);
    drv->next_run = apr_pcalloc(drv->pool, sizeof(apr_time_t) * (apr_size_t)domains->nelts);
    drv->staged = apr_pcalloc(drv->pool, sizeof(int) * (apr_size_t)domains->nelts);
    drv->blocked_logged = apr_pcalloc(drv->pool, sizeof(int) * (apr_size_t)domains->nelts);
    drv->job_mtime = apr_pcalloc(drv->pool, sizeof(apr_time_t) * (apr_size_t)domains->nelts);
    drv->ari_renew_at = apr_pcalloc(drv->pool, sizeof(apr_time_t) * (apr_size_t)domains->nelts);
    drv->ari_check_at = apr_pcalloc(drv->pool, sizeof(apr_time_t) * (apr_size_t)domains->nelts);
    drv->clock.now = driver_clock_now;
    drv->clock.sleep = driver_clock_sleep;
    drv->clock.baton = drv;
    for (i = 0; i < domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(domains, i, acme_domain_t *);
        acme_job_t *job;
        if (acme_job_load(&job, drv->rt->store, d->set_name, drv->pool) == APR_SUCCESS) {
            /* A time saved by a clock that ran ahead must not stall renewal for long. */
            apr_time_t cap = apr_time_now() + ACME_BACKOFF_PERMANENT;
            drv->next_run[i] = job->next_run < cap ? job->next_run : cap;
        }
        drv->staged[i] = staged_ok(drv, d, drv->pool);
    }
    return APR_SUCCESS;
}

/* Holds the cross-generation lock, taking it when free. */
static int driver_lock(driver_t *drv)
{
    const char *path;
    apr_status_t rv;

    if (drv->locked) {
        return 1;
    }
    if (!drv->lock) {
        path = acme_store_path(drv->rt->store, DRIVER_LOCK, drv->pool);
        rv = apr_file_open(&drv->lock, path, APR_FOPEN_WRITE | APR_FOPEN_CREATE,
                           APR_FPROT_UREAD | APR_FPROT_UWRITE, drv->pool);
        if (rv != APR_SUCCESS) {
            if (apr_time_now() - drv->lock_error_logged > apr_time_from_sec(60)) {
                ap_log_error(APLOG_MARK, APLOG_ERR, rv, drv->rt->s,
                             "ACME01056: cannot open %s; no certificate can be obtained or "
                             "renewed until the server's User may write in %s/jobs (and reach "
                             "it through every parent folder)",
                             path, drv->rt->store_dir);
                drv->lock_error_logged = apr_time_now();
            }
            drv->lock = NULL;
            return 0;
        }
    }
    rv = apr_file_lock(drv->lock, APR_FLOCK_EXCLUSIVE | APR_FLOCK_NONBLOCK);
    if (rv != APR_SUCCESS) {
        if (!drv->lock_busy_logged) {
            ap_log_error(APLOG_MARK, APLOG_DEBUG, rv, drv->rt->s,
                         "ACME01057: the renewal driver of an earlier generation still works; "
                         "waiting for it");
            drv->lock_busy_logged = 1;
        }
        return 0;
    }
    drv->locked = 1;
    return 1;
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
            ap_log_error(APLOG_MARK, APLOG_ERR, 0, drv->rt->s,
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
    return now >=
           acme_renew_at(&drv->rt->conf->renew_window, d->not_before, d->not_after, d->renew_seed);
}

static void reap(driver_t *drv, int i)
{
    worker_t *w = drv->workers[i];
    apr_status_t trv;

    apr_thread_join(&trv, w->thread);
    if (w->ari_only) {
        drv->ari_absent |= w->ari_absent;
        drv->ari_check_at[i] = w->ari_check_at;
        if (w->ari_renew_at) {
            drv->ari_renew_at[i] = w->ari_renew_at;
            drv->ari_known = 1;
        }
        apr_pool_destroy(w->pool);
        drv->workers[i] = NULL;
        return;
    }
    drv->staged[i] = w->staged;
    drv->next_run[i] = w->next_run;
    if (w->staged) {
        drv->restart_asked = 0; /* a new set: a restart is wanted again */
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
    /* Counted before the thread exists: it may finish before apr_thread_create returns. */
    apr_atomic_inc32(&drv->active);
    rv = apr_threadattr_create(&attr, p);
    if (rv == APR_SUCCESS) {
        rv = apr_thread_create(&w->thread, attr, worker_main, w, p);
    }
    if (rv != APR_SUCCESS) {
        apr_atomic_dec32(&drv->active);
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, drv->rt->s,
                     "ACME01058: %s: cannot start a worker thread; trying again shortly", d->name);
        apr_pool_destroy(p);
        drv->next_run[i] = now + apr_time_from_sec(10);
        return;
    }
    drv->workers[i] = w;
    if (ari_only) {
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_INFO, 0, drv->rt->s, "ACME01062: %s: %s%s%s", d->name,
                 !d->has_active ? "no certificate yet: obtaining one"
                 : d->mismatch  ? "the certificate "
                                : "the certificate is due for renewal: renewing",
                 d->has_active && d->mismatch ? d->mismatch : "",
                 d->has_active && d->mismatch ? ": obtaining a new one" : "");
}

/* Asks the parent for one graceful restart once new sets are staged, when no challenge is
 * being validated, waiting a little for other workers so one restart activates them all. */
static void maybe_ask_restart(driver_t *drv, apr_time_t now, apr_pool_t *ptemp)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    const char *names = "";
    int i, any = 0;

    if (drv->restart_asked || drv->rt->conf->auto_restart == 0 || now < drv->restart_retry) {
        return;
    }
    for (i = 0; i < domains->nelts; i++) {
        worker_t *w = drv->workers[i];
        if (w && (apr_atomic_read32(&w->challenges) || now - w->started < COALESCE_MAX)) {
            return;
        }
        if (drv->staged[i] && !APR_ARRAY_IDX(domains, i, acme_domain_t *)->promote_failed) {
            any = 1;
            names = apr_pstrcat(ptemp, names, " ", APR_ARRAY_IDX(domains, i, acme_domain_t *)->name,
                                NULL);
        }
    }
    if (!any) {
        return;
    }
    if (acme_store_write(drv->rt->store, ACME_RESTART_FLAG, names, strlen(names),
                         APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD | APR_FPROT_WREAD,
                         ptemp) == APR_SUCCESS) {
        drv->restart_asked = 1;
        ap_log_error(APLOG_MARK, APLOG_INFO, 0, drv->rt->s,
                     "ACME01059: new certificates staged for%s; asking for a graceful restart",
                     names);
    } else {
        drv->restart_retry = now + apr_time_from_sec(60);
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, drv->rt->s,
                     "ACME01064: new certificates staged for%s, but %s cannot be written; "
                     "trying again in a minute (or run 'apachectl graceful')",
                     names, acme_store_path(drv->rt->store, ACME_RESTART_FLAG, ptemp));
    }
}

/* A driver of the previous generation may still publish challenge answers after this
 * generation's parent published the pending ones: they land in the old shared memory only. So
 * job files that changed are read again (once a second) and their answers published here. */
static void republish_changed(driver_t *drv, apr_time_t now, apr_pool_t *ptemp)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    acme_tokens_t *tokens;
    int i, j;

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
        for (j = 0; j < job->challenges->nelts; j++) {
            const acme_job_chal_t *ch = &APR_ARRAY_IDX(job->challenges, j, acme_job_chal_t);
            if (ch->expires > now) {
                tokens->put(tokens, ch->token, ch->host, ch->keyauth, ch->expires);
            }
        }
    }
}

static void driver_tick(driver_t *drv, apr_pool_t *ptemp)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    apr_time_t now = apr_time_now();
    int i, running = 0, asking = 0;

    if (apr_atomic_read32(&drv->stopping)) {
        return;
    }
    if (!driver_lock(drv)) {
        republish_changed(drv, now, ptemp);
        return;
    }
    for (i = 0; i < domains->nelts; i++) {
        if (drv->workers[i] && apr_atomic_read32(&drv->workers[i]->done)) {
            reap(drv, i);
        }
        running += drv->workers[i] != NULL;
        asking += drv->workers[i] && drv->workers[i]->ari_only;
    }
    for (i = 0; i < domains->nelts && running < DRIVER_WORKERS_MAX; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(domains, i, acme_domain_t *);
        if (drv->workers[i]) {
            continue;
        }
        if (needs_work(drv, i, now)) {
            spawn(drv, i, now, 0);
        } else if (d->has_active && !d->mismatch && d->ari_cert_id && !drv->ari_absent &&
                   !drv->staged[i] && now >= drv->ari_check_at[i] && (drv->ari_known || !asking)) {
            /* Until the CA has shown it does ARI, one domain asks on behalf of all. */
            spawn(drv, i, now, 1);
            asking += drv->workers[i] != NULL;
        }
        running += drv->workers[i] != NULL;
    }
    maybe_ask_restart(drv, now, ptemp);
}

static void driver_stop(driver_t *drv)
{
    apr_array_header_t *domains = drv->rt->conf->domains;
    apr_time_t until = apr_time_now() + apr_time_from_sec(2);
    int i, busy = 1;

    apr_atomic_set32(&drv->stopping, 1);
    /* Workers stop before their next request; give them a moment, but never hold up the
     * restart: a worker still inside a request dies with its process. */
    while (busy && apr_time_now() < until) {
        busy = 0;
        for (i = 0; drv->workers && i < domains->nelts; i++) {
            if (drv->workers[i] && apr_atomic_read32(&drv->workers[i]->done)) {
                reap(drv, i);
            }
            busy |= drv->workers[i] != NULL;
        }
        if (busy) {
            apr_sleep(apr_time_from_msec(20));
        }
    }
    if (!busy && drv->locked) {
        apr_file_unlock(drv->lock);
        drv->locked = 0;
    } else if (busy) {
        apr_atomic_set32(&drv->release_when_idle, 1);
    }
}

/* A child exits without always telling mod_watchdog (prefork never does): workers are stopped
 * here before the process's exit handlers pull OpenSSL and libcurl from under them. */
static apr_status_t driver_child_exit(void *data)
{
    driver_t *drv = data;
    apr_time_t until = apr_time_now() + apr_time_from_sec(2);

    apr_atomic_set32(&drv->stopping, 1);
    while (apr_atomic_read32(&drv->active) && apr_time_now() < until) {
        apr_sleep(apr_time_from_msec(20));
    }
    return APR_SUCCESS;
}

void acme_child_driver_init(acme_runtime_t *rt, apr_pool_t *pchild)
{
    if (rt->driver) {
        apr_pool_pre_cleanup_register(pchild, rt->driver, driver_child_exit);
    }
}

static apr_status_t driver_callback(int state, void *data, apr_pool_t *ptemp)
{
    driver_t *drv = data;
    apr_status_t rv;

    switch (state) {
    case AP_WATCHDOG_STATE_STARTING:
        rv = driver_start(drv);
        if (rv == APR_SUCCESS) {
            driver_tick(drv, ptemp); /* start work now, not one interval later */
        }
        return rv;
    case AP_WATCHDOG_STATE_RUNNING:
        if (drv->pool) {
            driver_tick(drv, ptemp);
        }
        return APR_SUCCESS;
    case AP_WATCHDOG_STATE_STOPPING:
        if (drv->pool) {
            driver_stop(drv);
        }
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
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, rt->s,
                     "ACME01060: mod_watchdog is not loaded; add LoadModule watchdog_module "
                     "modules/mod_watchdog.so");
        return APR_EGENERAL;
    }
    rv = acme_http_global_init();
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
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, rt->s,
                     "ACME01061: cannot register the renewal driver with mod_watchdog");
    }
    return rv;
}
