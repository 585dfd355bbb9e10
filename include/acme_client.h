/* acme_client.h - one ACME session with one CA (RFC 8555 sections 6 and 7.1-7.2): the directory
 * (fetched once and cached), nonces (the latest Replay-Nonce of any response is reused; newNonce
 * only when none is held), signed requests with jwk or kid, badNonce retried with the nonce the
 * error carried (bounded), problem documents and Retry-After surfaced to the caller.
 *
 * A client is used by one thread at a time (it holds the nonce and, through the transport, a
 * connection); the renewal driver makes one per worker.
 */
#ifndef ACME_CLIENT_H
#define ACME_CLIENT_H

#include "acme_http.h"
#include "acme_key.h"
#include "acme_problem.h"

#define ACME_BADNONCE_RETRIES 5 /* pebble rejects 5% of good nonces; CAs may do likewise */
#define ACME_RETRY_AFTER_MAX  (24 * 3600 * APR_USEC_PER_SEC) /* longest wait a CA can ask for */

typedef struct acme_client_t acme_client_t;

/* A successful answer (2xx) of the CA. */
typedef struct acme_resp_t {
    int status;
    const char *url;                 /* the request URL */
    const char *location;            /* Location header or NULL */
    apr_interval_time_t retry_after; /* -1 when absent */
    const char *content_type;        /* "" when absent */
    json_t *json;                    /* the body when it is a JSON object, else NULL */
    acme_http_resp_t *http;          /* headers and raw body */
} acme_resp_t;

apr_status_t acme_client_create(acme_client_t **pclient, const char *directory_url,
                                acme_http_t *http, const acme_log_t *log, const acme_clock_t *clock,
                                apr_pool_t *p);

const acme_log_t *acme_client_log(const acme_client_t *client);
const acme_clock_t *acme_client_clock(const acme_client_t *client);
const char *acme_client_directory_url(const acme_client_t *client);

/* Fetches the directory on first use; later calls return the cached copy. The directory must
 * be a JSON object naming newNonce, newAccount and newOrder, else ACME_EPROTO. */
apr_status_t acme_client_directory(const json_t **pdir, acme_client_t *client);

/* URL of a directory resource ("newOrder", "renewalInfo", ...). Fetches the directory if needed
 * and returns its failure (ACME_ETRANSPORT when the CA is unreachable, ...) with *pprob saying
 * why; APR_NOTFOUND when the CA offers no such resource. */
apr_status_t acme_client_resource(const char **purl, acme_problem_t **pprob, acme_client_t *client,
                                  const char *name);

/* The account used for kid-signed requests. key stays owned by the caller, whose pool must live
 * as long as the client uses the account. */
void acme_client_set_account(acme_client_t *client, const acme_key_t *key, const char *kid);
const char *acme_client_kid(const acme_client_t *client);
const acme_key_t *acme_client_key(const acme_client_t *client);

/* Signed POST (kid when an account is set and use_jwk is 0; else jwk with key). payload NULL is
 * POST-as-GET. On a 2xx answer *presp is set. On an error answer the mapped status comes back
 * (acme_problem.h) and *pprob, when pprob is not NULL, describes it, including retry_after.
 * badNonce is retried here with the CA's fresh nonce, at most ACME_BADNONCE_RETRIES times. */
apr_status_t acme_client_post(acme_resp_t **presp, acme_problem_t **pprob, acme_client_t *client,
                              const char *url, const json_t *payload, const acme_key_t *key,
                              int use_jwk, apr_pool_t *p);

/* Unsigned GET of a resource that allows it (directory, renewalInfo). */
apr_status_t acme_client_get(acme_resp_t **presp, acme_problem_t **pprob, acme_client_t *client,
                             const char *url, apr_pool_t *p);

/* Gives the client a directory another client of the same CA fetched (JSON text), saving a
 * request. APR_EINVAL, and nothing changes, when it lacks the required URLs. */
apr_status_t acme_client_seed_directory(acme_client_t *client, const char *json, apr_size_t len);

/* The directory as JSON text for seeding other clients, or NULL when none was fetched yet. */
const char *acme_client_directory_json(const acme_client_t *client, apr_pool_t *p);

/* Why the last directory fetch failed (NULL after a success); its detail names the URL and the
 * transport's or CA's words. */
const acme_problem_t *acme_client_directory_problem(const acme_client_t *client);

/* While *flag is non-zero, every request fails at once with ACME_ECANCELLED (the server is
 * stopping). NULL removes the flag. */
void acme_client_set_cancel(acme_client_t *client, volatile apr_uint32_t *flag);

/* HTTP requests sent to the CA by this client so far (a performance figure). */
unsigned acme_client_requests(const acme_client_t *client);

#endif /* ACME_CLIENT_H */
