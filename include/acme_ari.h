/* acme_ari.h - ACME Renewal Information (RFC 9773): the certificate identifier, the CA's
 * suggested renewal window, the time picked in it, and when to ask again.
 *
 * Any thread may call these; acme_ari_fetch uses the client (one thread at a time).
 */
#ifndef ACME_ARI_H
#define ACME_ARI_H

#include "acme_cert.h"
#include "acme_client.h"

#define ACME_ARI_RECHECK_MIN     apr_time_from_sec(60)        /* Retry-After clamped to */
#define ACME_ARI_RECHECK_MAX     apr_time_from_sec(24 * 3600) /* [1 minute, 1 day] */
#define ACME_ARI_RECHECK_DEFAULT apr_time_from_sec(6 * 3600)

/* certID (RFC 9773 section 4.1): base64url(keyIdentifier of the Authority Key Identifier) "."
 * base64url(the serial number's DER content octets, a leading zero octet kept), no padding.
 * ACME_EBADSTORE when the certificate has no AKI keyIdentifier. */
apr_status_t acme_ari_cert_id(const char **pid, const acme_cert_t *cert, apr_pool_t *p);

typedef struct acme_ari_t {
    apr_time_t start, end;   /* suggestedWindow, end > start */
    const char *explanation; /* explanationURL or NULL */
    apr_time_t recheck;      /* when to ask again: Retry-After clamped, from now */
} acme_ari_t;

/* GET <renewalInfo>/<certID>. APR_NOTFOUND when the CA's directory has no renewalInfo URL (or
 * an empty or non-http(s) one; then nothing is sent); APR_ENOENT when the CA answers 404: it has
 * no renewal information for this certificate (another CA issued it, say), which says nothing
 * about the CA's other certificates; ACME_EPROTO for a window that is missing, unparsable or
 * empty. */
apr_status_t acme_ari_fetch(acme_ari_t **pari, acme_problem_t **pprob, acme_client_t *client,
                            const char *cert_id, apr_pool_t *p);

/* Parses the JSON body (exposed for tests). */
apr_status_t acme_ari_parse(acme_ari_t **pari, const char *body, apr_size_t len,
                            apr_interval_time_t retry_after, apr_time_t now, apr_pool_t *p);

/* 1 when the client's CA offers renewal information (a usable renewalInfo URL). */
int acme_ari_offered(acme_client_t *client);

/* A suggested window that ends after the last tenth of the certificate's lifetime is cut
 * there, so that the certificate cannot expire while we wait and retries after a failure still
 * have time (a window wholly after that point shrinks to it). Returns 1 when it cut. */
int acme_ari_clamp(acme_ari_t *ari, apr_time_t not_before, apr_time_t not_after);

/* A time chosen uniformly in [start, end) from rnd (RFC 9773 section 4.2). */
apr_time_t acme_ari_pick(const acme_ari_t *ari, apr_uint64_t rnd);

/* RFC 3339 date-time ("2025-01-02T04:00:00Z", fractions and offsets allowed). APR_EINVAL for
 * anything else. */
apr_status_t acme_rfc3339_parse(apr_time_t *pt, const char *s);

/* 1 when a problem means the CA refuses "replaces" for this order, which is then sent once
 * more without it (alreadyReplaced, or the account cannot replace that certificate). */
int acme_ari_replaces_refused(const acme_problem_t *prob);

#endif /* ACME_ARI_H */
