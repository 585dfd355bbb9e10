/* mod_acme_status.h - the published status (mod_acme_status.c) and its readers: the acme-status
 * handler, the acme-metrics handler and the server-status section (mod_acme_metrics.c).
 *
 * Published in shared memory made by the parent before the fork: one slot per certificate
 * (the JSON document of acme_status_cert, and its figures), filled by the parent from the store
 * at each start and updated by the renewal driver as it works; and counters that live as long
 * as the parent process, so that they survive graceful restarts. Request children only read
 * it: they never wait for the driver nor read the store. The parent (root) never reads what the
 * children write there; readers bound every length and terminate every string themselves.
 *
 * acme_parent_* run in post_config, acme_driver_* in the driver's watchdog thread (one writer
 * per generation), acme_request_* on any request thread.
 */
#ifndef MOD_ACME_STATUS_H
#define MOD_ACME_STATUS_H

#include "acme_http.h"
#include "acme_status.h"
#include "mod_acme.h"

/* The figures of one certificate, as a reader copies them out of its slot. */
typedef struct acme_status_view_t {
    int state;    /* acme_status_state_code */
    int reason;   /* acme_status_reason_code, -1 when there is no next renewal */
    int failures; /* consecutive */
    int has_cert; /* a certificate is served (not the fallback) */
    apr_int64_t not_before, not_after, next_renewal, next_retry; /* seconds; 0: none */
    char serial[80];
    char issuer[256];
    char profile[64];
} acme_status_view_t;

typedef struct acme_status_counters_t {
    apr_uint64_t renewals; /* new certificates staged */
    apr_uint64_t errors;   /* attempts that failed */
} acme_status_counters_t;

/* post_config, after acme_parent_prepare_certs: makes the slots (and, once per parent process,
 * the counters) and fills the slots from the store. */
apr_status_t acme_parent_status_create(acme_runtime_t *rt, apr_pool_t *pconf, apr_pool_t *ptemp);

/* The number of certificates (slots) of this generation: rt->conf->domains, in order. */
int acme_request_status_count(void);

/* Copies slot i: its figures into *view and, when pjson is not NULL, its JSON text into p.
 * APR_EAGAIN when the slot was being written for too long (the reader never waits on a lock). */
apr_status_t acme_request_status_read(int i, acme_status_view_t *view, const char **pjson,
                                      apr_pool_t *p);

/* {"module":...,"store":...,"cas":[...],"certificates":[ as made by the parent. */
const char *acme_request_status_head(void);

void acme_request_status_counters(acme_status_counters_t *c);

/* Calls fn for each counted (CA, HTTP status) pair; status 0 means no HTTP answer. Pairs
 * counted twice (two generations' drivers added one at the same time) are merged. */
typedef void acme_status_ca_fn(void *baton, const char *ca, int status, apr_uint64_t count);
void acme_request_status_ca_counts(acme_status_ca_fn *fn, void *baton, apr_pool_t *p);

/* The driver's side. The driver_t is the one of mod_acme_drive.h. */
struct driver_t;
/* Builds certificate i's status again (job file, staged set, what the driver knows) and
 * publishes it. */
void acme_driver_status_publish(struct driver_t *drv, int i, apr_pool_t *ptemp);
/* Publishes again what changed since the last time: a worker started or ended, an ARI time
 * learnt; and every certificate once a minute, at the next time a state moves on with the
 * clock alone (expiry, the renewal time, the next retry), or now when force. Each tick. */
void acme_driver_status_refresh(struct driver_t *drv, int force, apr_pool_t *ptemp);
/* An operator asked for certificate i to be renewed now (acmectl renew): the status says
 * reason "requested" until the attempt has ended (requested 0). Publishes at once (not when
 * ptemp is NULL). */
void acme_driver_status_requested(struct driver_t *drv, int i, int requested, apr_pool_t *ptemp);
/* Certificate i's served set changed without a restart (ACMEActivation live): info as
 * acme_status_set_info made it in the parent. The next publication shows it. */
void acme_driver_status_served(struct driver_t *drv, int i, json_t *info);
/* Worker w of certificate i ended (called after the join, before the driver takes its
 * results): counts a renewal (a set staged) or an error (a failed attempt); the next refresh
 * publishes. */
struct worker_t;
void acme_driver_status_reaped(struct driver_t *drv, int i, const struct worker_t *w);
/* The transport http, counting each request to ca in acme_ca_requests_total. */
acme_http_t *acme_driver_status_http(acme_http_t *http, const char *ca, apr_pool_t *p);

void acme_status_register_hooks(void);

/* mod_acme_metrics.c */
void acme_metrics_register_hooks(void);
/* The acme-metrics handler: called by the acme-status one (one handler hook for both). */
int acme_metrics_handler(request_rec *r);

#endif /* MOD_ACME_STATUS_H */
