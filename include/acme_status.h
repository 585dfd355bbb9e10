/* acme_status.h - what one certificate's status is, as a JSON document (docs/status.md, schema
 * in docs/status.schema.json), built from what the store holds: the active and staged sets,
 * the job file, the account. The status handler, the metrics, mod_status and acmectl all read
 * this one document, so none of them derives the state again.
 *
 * Nothing here reads or writes key material: sets are read for their certificates only, and
 * the document names no file whose content is a key.
 *
 * Any thread may call these; the store is only read. The Apache glue builds the documents in
 * the parent (post_config) and in the renewal driver, never on the request path.
 */
#ifndef ACME_STATUS_H
#define ACME_STATUS_H

#include "acme_job.h"
#include "acme_store.h"

/* The states, most urgent first (the first that applies is the state):
 *   expired   the served certificate's notAfter has passed
 *   staged    a new set waits for activation (a graceful restart)
 *   failed    the last attempt failed (failures > 0)
 *   fallback  no certificate yet: the self-signed fallback is served
 *   renewing  an order is in progress, or the renewal time has come
 *   valid     served, and not due */
#define ACME_STATUS_EXPIRED  "expired"
#define ACME_STATUS_STAGED   "staged"
#define ACME_STATUS_FAILED   "failed"
#define ACME_STATUS_FALLBACK "fallback"
#define ACME_STATUS_RENEWING "renewing"
#define ACME_STATUS_VALID    "valid"

/* Why the next renewal is at the time given:
 *   requested      an operator asked for it (acmectl renew)
 *   config-change  no certificate yet, or the served one no longer fits the configuration
 *   ari            the CA's renewal information (RFC 9773)
 *   window         ACMERenewWindow */
#define ACME_REASON_REQUESTED     "requested"
#define ACME_REASON_CONFIG_CHANGE "config-change"
#define ACME_REASON_ARI           "ari"
#define ACME_REASON_WINDOW        "window"

/* Bounds on what the document copies from store files the User may write. */
#define ACME_STATUS_TEXT_MAX 1024 /* detail, URLs */

/* What the caller knows beyond the store: every member may be left zero (acme_status_in_init),
 * and the document is then built from the store alone (what acmectl does with httpd down). */
typedef struct acme_status_in_t {
    const char *domain;                /* the name shown (ACMEDomain's first); NULL: set name */
    const char *key_type;              /* "ec256", ...; NULL: from meta.json, else the leaf */
    const apr_array_header_t *names;   /* configured names (const char *); NULL: meta.json */
    const acme_renew_window_t *window; /* ACMERenewWindow; NULL: the default */
    apr_uint32_t renew_seed;           /* as the driver uses it (acme_renew_at) */
    int renew_seed_set;                /* 0: derived from the serial, as the parent does */
    const char *ca_url;                /* the configured CA; NULL: meta.json, else the job */
    const char *account_id;            /* accounts/<this>/; NULL: acme_store_ca_id(CA) */
    const char *mismatch;              /* why the served set no longer fits, or NULL */
    int requested;                     /* an operator asked for renewal now */
    int in_progress;                   /* a worker works on it now (the driver knows) */
    apr_time_t ari_start, ari_end;     /* the CA's suggested window; 0: none known */
    const char *ari_explanation;       /* explanationURL, or NULL */
    apr_time_t ari_renew_at;           /* the time picked in the window; 0: none */
    apr_time_t ari_next_check;         /* when the CA is asked again; 0: not known */
    apr_time_t now;                    /* 0: apr_time_now() */
    /* The served set as acme_status_set_info made it earlier, or NULL: the active set is read
     * from the store. The driver (the User) cannot read archive/ (root's); it passes what the
     * parent found at start. */
    const json_t *active;
} acme_status_in_t;

void acme_status_in_init(acme_status_in_t *in);

/* The status of the certificate kept under set_name (the store's name: "a.test",
 * "_wildcard.a.test", "a.test_rsa2048") as a JSON object (docs/status.md), in p (released with
 * it). in may be NULL. A set or job file that does not parse is reported in the document
 * ("store-errors"), not as a failure: APR_EINVAL only for a name the store cannot take. */
apr_status_t acme_status_cert(json_t **pjson, acme_store_t *store, const char *set_name,
                              const acme_status_in_t *in, apr_pool_t *p);

/* What the document says of one set (active: staged == 0, or staged): names, serial, issuer,
 * notBefore, notAfter, key type, profile and CA (from meta.json), SHA-256 fingerprint of the
 * leaf, generation. APR_ENOENT when there is no such set; ACME_EBADSTORE (*pwhy) when it does not
 * load. */
apr_status_t acme_status_set_info(json_t **pinfo, acme_store_t *store, const char *set_name,
                                  int staged, const char **pwhy, apr_pool_t *p);

/* The whole document: {"module": version, "store": store_dir, "cas": [...], "certificates":
 * certs}. cas: const char * URLs (may be NULL); certs: json_t * from acme_status_cert (the
 * document takes a reference to each). In p. */
apr_status_t acme_status_doc(json_t **pjson, const char *version, const char *store_dir,
                             const apr_array_header_t *cas, const apr_array_header_t *certs,
                             apr_pool_t *p);

/* "mod_acme/<version>", as the document names the module. */
const char *acme_status_version(void);

/* RFC 3339 UTC text of t ("2026-12-05T07:25:12Z"), as the document writes times. */
const char *acme_status_time(apr_time_t t, apr_pool_t *p);

/* The state and reason codes as small numbers, for shared memory and metrics; -1 unknown. */
int acme_status_state_code(const char *state);
const char *acme_status_state_name(int code);
int acme_status_reason_code(const char *reason);
const char *acme_status_reason_name(int code);

#endif /* ACME_STATUS_H */
