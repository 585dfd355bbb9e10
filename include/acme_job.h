/* acme_job.h - the renewal state of one domain, kept in <store>/jobs/<name>.json so that it
 * survives restarts and child recycles: the order in flight, the challenges published for it
 * (the parent re-publishes them after a graceful restart wipes shared memory), consecutive
 * failures and when to try next.
 *
 * Written by the renewal driver (child, as the User), read by the driver and by the parent in
 * post_config. A job file that does not parse is reported and treated as empty: nothing in it is
 * needed to keep serving, only to resume.
 */
#ifndef ACME_JOB_H
#define ACME_JOB_H

#include "acme_problem.h"
#include "acme_store.h"

#define ACME_JOB_CHALLENGES_MAX 100
#define ACME_BACKOFF_FIRST      apr_time_from_sec(60)        /* first retry after a failure */
#define ACME_BACKOFF_MAX        apr_time_from_sec(4 * 3600)  /* transient failures */
#define ACME_BACKOFF_PERMANENT  apr_time_from_sec(12 * 3600) /* needs the operator */

typedef struct acme_job_chal_t {
    const char *type; /* "http-01" (also when the file names none), "tls-alpn-01", "dns-01" */
    const char *token;
    const char *host;
    const char *keyauth;
    apr_time_t expires;
} acme_job_chal_t;

typedef struct acme_job_t {
    const char *name;
    const char *ca_url;       /* CA of the order in flight */
    const char *order_url;    /* NULL when none */
    int failures;             /* consecutive failed attempts */
    apr_time_t next_run;      /* not before; 0 = at once */
    const char *last_error;   /* NULL after a success */
    const char *last_problem; /* the ACME problem type of the last failure, or NULL */
    apr_time_t last_error_time;
    apr_array_header_t *challenges; /* acme_job_chal_t, published for the order in flight */
    /* When a set of ours was staged that waits for activation (0: none): the failures count on
     * until the parent has activated it (a refused set is a failed attempt, acme_job_refused). */
    apr_time_t staged;
    apr_time_t refusal_seen; /* time of the last refusal counted (acme_store_refusal_t) */
    /* Fingerprint of the configuration the last failed attempt ran with (the caller's, up to 64
     * characters of [0-9a-f]), or NULL: a start with another one need not wait for next_run. */
    const char *config;
    /* The CA's renewal information (ACME ARI) for the certificate served, kept until the CA's
     * time to ask again so that a restart does not ask again: the certificate it is for (its
     * ARI certID, up to 1024 characters; NULL: nothing kept), when to ask again, and unless the
     * CA had none for it, its window as given, the renewal time picked in it and its
     * explanationURL (up to 511 characters, or NULL). */
    const char *ari_cert;
    apr_time_t ari_check_at;
    apr_time_t ari_start, ari_end, ari_renew_at;
    const char *ari_explanation;
} acme_job_t;

/* The challenge type name as kept in a job file: one of the three we answer, else NULL. */
const char *acme_job_chal_type(const char *s);

acme_job_t *acme_job_make(const char *name, apr_pool_t *p);

/* Loads jobs/<name>.json. A missing file gives an empty job and APR_SUCCESS; a file that does
 * not parse gives an empty job and ACME_EBADSTORE (the caller logs it and goes on). */
apr_status_t acme_job_load(acme_job_t **pjob, acme_store_t *store, const char *name, apr_pool_t *p);

apr_status_t acme_job_save(acme_store_t *store, const acme_job_t *job, apr_pool_t *p);

/* Records a failed attempt: next_run = now + backoff (exponential from ACME_BACKOFF_FIRST, capped
 * at ACME_BACKOFF_MAX, +/-20% jitter from rnd), or ACME_BACKOFF_PERMANENT when retrying cannot
 * help; never sooner than the CA's Retry-After. */
void acme_job_failed(acme_job_t *job, apr_status_t rv, const acme_problem_t *prob, apr_time_t now,
                     apr_uint32_t rnd, apr_pool_t *p);

/* Records a success: failures, error, order and challenges cleared. */
void acme_job_done(acme_job_t *job);

/* Records a set staged at now: order and challenges cleared, next_run 0; failures and the last
 * error stay until the set is activated (acme_job_done) or refused. */
void acme_job_staged(acme_job_t *job, apr_time_t now);

/* Records that the parent refused the set staged last (at refusal_time, for why): a failed
 * attempt (acme_job_failed with ACME_EBADSTORE), counted once per refusal time, and only for a
 * set of ours (one staged at or before refusal_time): a set planted by someone else, refused,
 * is no attempt of ours. Returns 1 when counted, else 0. */
int acme_job_refused(acme_job_t *job, apr_time_t refusal_time, const char *why, apr_time_t now,
                     apr_uint32_t rnd, apr_pool_t *p);

/* ACMERenewWindow: renew when this much of the lifetime is left, as a percentage or a duration;
 * both 0 = the default (a third, or half for lifetimes of 10 days or less). */
typedef struct acme_renew_window_t {
    int percent;              /* 1..99 */
    apr_interval_time_t left; /* > 0 */
} acme_renew_window_t;

/* "33%", "30d", "12h", "90m", "600s" or plain seconds. APR_EINVAL for anything else, 0%, 100%
 * or more, or a zero duration. */
apr_status_t acme_renew_window_parse(acme_renew_window_t *w, const char *s);

/* When a certificate valid from not_before to not_after is due for renewal under window w
 * (NULL = default). A duration window as long as the lifetime or longer would renew forever:
 * half the lifetime is used then. The time is moved earlier by a spread derived from seed (the
 * certificate's serial, say: stable across restarts) of up to 1/20 of the window or an hour,
 * so that many servers do not renew at the same second. */
apr_time_t acme_renew_at(const acme_renew_window_t *w, apr_time_t not_before, apr_time_t not_after,
                         apr_uint32_t seed);

/* Renewals share graceful restarts: a renewed set of a certificate the server serves waits at
 * most this long for others to join its restart (and never more than a tenth of the time its
 * served certificate has left), so that a server with many certificates restarts a bounded
 * number of times an hour however their renewals fall. */
#define ACME_RESTART_BATCH apr_time_from_sec(3600)

/* When a set staged at staged wants the restart that activates it, at the latest: at once
 * unless it renews a certificate the server serves (renewal: its names, and no operator's
 * request), which waits until staged + ACME_RESTART_BATCH or a tenth of the time from staged to
 * limit (the served certificate's notAfter, or the end of the CA's renewal window when that
 * comes first), whichever comes first. */
apr_time_t acme_restart_due(apr_time_t staged, int renewal, apr_time_t limit);

/* A batch of first certificates (a server started with many new names) is activated by a
 * restart once its orders are done, but waits at most a while past the first one's staging, so
 * that a long issuance activates what it has in steps (a set that replaces a served certificate
 * waits ACME_RESTART_HOLD_MIN at most): ACME_RESTART_HOLD_MIN, or
 * ACME_RESTART_HOLD_SHARE times what one configuration pass of the server takes when that is
 * longer (a restart stops issuance for about that long, so restarts then take at most a fifth of
 * the time), never more than ACME_RESTART_HOLD_MAX. */
#define ACME_RESTART_HOLD_MIN   apr_time_from_sec(60)
#define ACME_RESTART_HOLD_SHARE 4
#define ACME_RESTART_HOLD_MAX   apr_time_from_sec(900)

/* How long a staged first certificate waits at most for running orders to share its restart,
 * given the duration of the server's last configuration pass (0 or less: unknown). */
apr_interval_time_t acme_restart_hold(apr_interval_time_t pass);

/* The wait after the given number of consecutive failures (>= 1), before jitter. */
apr_interval_time_t acme_job_backoff(int failures, int transient);

#endif /* ACME_JOB_H */
