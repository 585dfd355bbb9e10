/* mod_acme_drive.h - what the renewal driver (mod_acme_drive.c, the watchdog thread) and its
 * workers (mod_acme_worker.c, one thread per certificate being obtained or asked about) share.
 * Private to those two files. */
#ifndef MOD_ACME_DRIVE_H
#define MOD_ACME_DRIVE_H

#include <pthread.h>

#include <apr_atomic.h>
#include <apr_hash.h>
#include <apr_thread_mutex.h>

#include "mod_acme.h"

#define DRIVER_TICK apr_time_from_msec(100)
/* While workers run, the driver's callback stays in mod_watchdog's thread and ticks whenever
 * one finishes (woken, not one tick later), returning to mod_watchdog at least this often. */
#define DRIVER_BUSY_MAX    apr_time_from_sec(5)
#define DRIVER_WORKERS_MAX 8
#define DRIVER_LOCK        "jobs/driver.lock"
#define ORDER_WAIT         apr_time_from_sec(300) /* bound on one attempt's polling */
/* A worker started less than this long ago is young: a restart waits for it (at most
 * driver_t.restart_hold past the time due), so that one restart activates a batch. */
#define COALESCE_YOUNG apr_time_from_sec(60)
/* A stopping driver waits at most this long for its workers. Their CA requests are aborted
 * (they leave within about a second); httpd warns about a child still running after 3 s of a
 * stop (AH00045) and kills it after 9 s (AH00046). */
#define DRIVER_STOP_WAIT apr_time_from_msec(2500)

typedef struct driver_t driver_t;

/* explanationURLs longer than this are not shown (status only; the log has them whole). */
#define ACME_DRIVE_EXPLANATION_MAX 512

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
    int finalizing;     /* the current try handed its order a key: a certificate may come */
    int staged;
    apr_time_t staged_at; /* ... and may be activated from then on (its notBefore) */
    apr_time_t next_run;
    int ari_only;            /* this worker only asks the CA for renewal information */
    int ari_ca;              /* ... of this CA (index into conf->ca_all) */
    int ari_absent;          /* ... and learnt that the CA offers none */
    apr_time_t ari_renew_at; /* ... or when to renew, picked in the CA's window */
    apr_time_t ari_check_at; /* ... and when to ask again */
    const char *profile;     /* the profile ordered under (ACMEProfile, when the CA offers it) */
    int *profile_noted;      /* the driver's flag for this domain: "not offered" was logged */
    int failed;              /* the attempt failed (counted in the job), not abandoned */
    apr_time_t ari_start, ari_end; /* the CA's window as it gave it (before any cut) */
    const char *ari_explanation;   /* its explanationURL, in the worker's pool, or NULL */
} worker_t;

struct driver_t {
    acme_runtime_t *rt;
    apr_pool_t *pool; /* the driver's own, in the child */
    /* Serialises the watchdog thread's ticks and the stop: mod_watchdog calls the STOPPING
     * callback from the child's exit (main thread) while its own thread may still tick. */
    apr_thread_mutex_t *mutex;
    apr_time_t stop_deadline; /* set by the first stop: workers get until then */
    const char *lock_path;
    apr_file_t *lock;
    int locked;
    int lock_news; /* the lock was just taken: the tick says what it started */
    int lock_busy_logged;
    apr_time_t lock_error_logged;      /* an unusable lock file is reported once a minute */
    apr_thread_mutex_t *account_mutex; /* first-time account setup, one at a time */
    worker_t **workers;                /* per domain, NULL when idle */
    apr_time_t *next_run;              /* per domain */
    int *staged;                       /* per domain: a valid set waits for activation */
    apr_time_t *staged_at;             /* per domain: ... from then on (its notBefore) */
    apr_time_t *restart_due;           /* per domain: ... and wants its restart then at the
                                        * latest (acme_restart_due) */
    int *renewing;                     /* per domain: the running order renews a served
                                        * certificate on schedule (its restart may wait) */
    int restart_asked;
    int restart_more; /* sets staged since: see acme_driver_ask_restart */
    /* How long a restart waits at most for young workers (acme_restart_hold of pass_time). */
    apr_interval_time_t restart_hold;
    apr_time_t restart_retry; /* after a failed flag write */
    int *blocked_logged;      /* per domain: the parent could not activate its set */
    int *next_sibling;        /* per domain: the next unit of its ACMEDomain (another key
                               * type), around in a ring; itself when it has none */
    apr_time_t *job_mtime;    /* per domain: job file last seen, for re-publication */
    apr_time_t republish_check;
    apr_time_t *ari_renew_at; /* per domain: from the CA's renewal information, or 0 */
    apr_time_t *ari_check_at; /* per domain: when to ask the CA again */
    apr_time_t *ari_start;    /* per domain: the CA's window as it last gave it, or 0 */
    apr_time_t *ari_end;
    char (*ari_explanation)[ACME_DRIVE_EXPLANATION_MAX]; /* per domain: its explanationURL, or "" */
    int *ari_absent;               /* per CA: it offers no renewal information */
    int *ari_known;                /* per CA: it answered renewal information once */
    int *profile_noted;            /* per domain: ACMEProfile not offered, logged once */
    acme_clock_t clock;            /* the system clock, with sleeps that end when stopping */
    apr_thread_mutex_t *dir_mutex; /* guards dir_cache */
    apr_hash_t *dir_cache;         /* CA directory URL -> its directory as JSON text */
    apr_pool_t *dir_pool;          /* the cache's own (unmanaged) pool */
    void *notify;                  /* ACMENotifyCommand's events (mod_acme_notify.c) */
    volatile apr_uint32_t stopping;
    volatile apr_uint32_t active;            /* workers not yet finished */
    volatile apr_uint32_t release_when_idle; /* stopping: the last worker releases the lock */
    /* A finished worker (or the stop) wakes the driver's thread: plain pthreads, set up in the
     * child and never destroyed, so that a worker still running at the child's exit cannot
     * signal a freed condition. */
    pthread_mutex_t wake_mutex;
    pthread_cond_t wake_cond;
    int wake_ready; /* the two above are set up */
    int woken;      /* under wake_mutex: something happened since the driver last looked */
    /* CA URL -> acme_http_share_t, made at first use under dir_mutex (mod_acme_ca.c) */
    apr_hash_t *http_shares;
    void *cluster; /* ACMECluster's state (mod_acme_cluster.c), NULL without it */
};

/* Wakes the driver's thread if it waits for its workers (acme_driver_wait). Any thread. */
void acme_driver_wake(driver_t *drv);

/* mod_acme_ca.c: the driver's clock (drv->clock): the system's, with sleeps that end when
 * the driver stops. */
void acme_driver_clock_init(driver_t *drv);

/* A client for the CA with the driver's stop flag and sleeps, seeded with the directory an
 * earlier worker fetched (one request less per issuance). */
apr_status_t acme_driver_client(acme_client_t **pclient, driver_t *drv, const acme_domain_t *d,
                                const char *ca_url, apr_pool_t *p);

/* Keeps the client's directory for later workers; forgets it after a protocol error (the CA
 * may have moved its resources). */
void acme_driver_client_done(driver_t *drv, acme_client_t *client, const char *ca_url,
                             apr_status_t rv, apr_pool_t *p);

/* mod_acme_ca.c: the CA's directory for a worker's client, from memory or from the store
 * (NULL: the client fetches it); and what a client ended with kept for later workers and
 * generations (dir NULL: forgotten in memory; distrust: forgotten in the store too). */
const char *acme_driver_directory(driver_t *drv, const char *ca_url, apr_pool_t *p);
void acme_driver_directory_keep(driver_t *drv, const char *ca_url, const char *dir, int distrust,
                                apr_pool_t *p);
/* mod_acme_ca.c: the HTTP share of the CA's workers (made at first use; NULL when it cannot be
 * made), and a debug line with its connection counts once a worker's client is done. */
acme_http_share_t *acme_driver_http_share(driver_t *drv, const char *ca_url);
void acme_driver_http_done(driver_t *drv, const char *ca_url);

/* The CA that issued the domain's certificate, as an index into the server's list of every CA
 * in use (conf->ca_all): it alone knows the certificate's renewal information. The domain's
 * first CA when the issuer is not known or no longer one of its CAs (then the certificate is
 * replaced anyway). */
int acme_driver_ca_index(const driver_t *drv, const acme_domain_t *d);

/* When the set domain i just staged wants the restart that activates it (acme_restart_due;
 * scheduled: the order was a renewal on schedule, not asked for by the operator): a renewal of
 * the certificate served waits for others to share one graceful restart, and the log says
 * until when (ACME01067). */
void acme_driver_restart_due(driver_t *drv, int i, int scheduled);

/* mod_acme_restart.c: writes the restart flag once staged sets want their restart (restart_due)
 * and no challenge is being validated, waiting a little for workers just started so that one
 * restart activates them all (at most restart_hold past the time due). Once per tick. */
void acme_driver_ask_restart(driver_t *drv, apr_time_t now, apr_pool_t *ptemp);
/* 1 while the flag the driver wrote (staging/restart.wanted) is there: the parent has not taken
 * or dropped it yet. */
int acme_driver_flag_waiting(driver_t *drv, apr_pool_t *ptemp);

/* mod_acme_siblings.c: acme_driver_link_siblings, at the driver's start: the ring of the units
 * of each ACMEDomain (drv->next_sibling). acme_driver_sibling_ordering: 1 while another key
 * type of domain i's names has an order running and the two orders' challenge answers would
 * overwrite each other (tls-alpn-01, dns-01): i waits for it. */
void acme_driver_link_siblings(driver_t *drv);
int acme_driver_sibling_ordering(const driver_t *drv, int i, apr_pool_t *p);

/* mod_acme_dns.c: the dns-01 responder of worker w (ACMEDNSCommand and the propagation
 * check), and the removal of the dns-01 records an earlier attempt left in w's job file. */
void acme_worker_dns01(acme_responder_t *r, worker_t *w);
void acme_worker_dns01_leftovers(worker_t *w);

/* mod_acme_request.c: 1 when the operator asked for domain i to be renewed now (acmectl renew,
 * revoke): the request is taken (removed) and logged. Under the driver's lock. */
int acme_driver_take_request(driver_t *drv, int i, apr_pool_t *ptemp);
/* ... 1 when such a request is there, without taking it (ACMECluster: taken only once this
 * node may order). */
int acme_driver_request_pending(driver_t *drv, int i, apr_pool_t *ptemp);
/* Once per tick, before acme_driver_take_request: one look at jobs/ says whether any request
 * file may be there; without one, no domain's request is read this tick. */
void acme_driver_requests_look(driver_t *drv, apr_pool_t *ptemp);
/* ... and the worker of domain i is done: the status no longer says "requested" (published
 * with the worker's end). */
void acme_driver_request_done(driver_t *drv, int i);

/* Runs one worker: obtains a certificate, or asks the CA for renewal information. */
void *APR_THREAD_FUNC acme_worker_main(apr_thread_t *thread, void *data);

/* mod_acme_ari.c: a worker asks the CA for the renewal information of the domain's certificate
 * and keeps it in the job file; the driver takes it over at the join, reads it back from the
 * job file when it starts (only for the certificate served, and only until the CA's time to
 * ask again), and asks when that time has come (1 from acme_driver_ari_due: spawn a worker). */
void acme_worker_ari(worker_t *w);
void acme_driver_ari_reaped(driver_t *drv, int i, const worker_t *w);
void acme_driver_ari_load(driver_t *drv, int i, const acme_job_t *job, apr_time_t now);
int acme_driver_ari_due(const driver_t *drv, int i, apr_time_t now);

/* ACMEActivation live. acme_driver_live_sync (mod_acme_live.c), each tick with the lock held:
 * takes the sets the parent activated without a restart into the domains, the status and the
 * events. acme_driver_activated: what the driver keeps of certificate i once the parent took
 * its staged set live, activated or refused (staged state, job and refusal, ARI). */
void acme_driver_live_sync(driver_t *drv, apr_pool_t *ptemp);
void acme_driver_activated(driver_t *drv, int i, apr_pool_t *ptemp);

/* ACMECluster (mod_acme_cluster.c): the engine and per-certificate state, made at the driver's
 * start; 1 when domain i may be ordered here (this node holds its lease; without ACMECluster
 * always), else 0 (another node holds it, the engine is down, or the shared set was imported);
 * each tick: lease renewals and sets other nodes published; after a worker: its set published
 * and the lease let go (before the worker's pool goes). */
apr_status_t acme_driver_cluster_start(driver_t *drv);
int acme_driver_cluster_may_order(driver_t *drv, int i, apr_time_t now, apr_pool_t *ptemp);
void acme_driver_cluster_tick(driver_t *drv, apr_time_t now, apr_pool_t *ptemp);
void acme_driver_cluster_reaped(driver_t *drv, int i, const worker_t *w);

#endif /* MOD_ACME_DRIVE_H */
