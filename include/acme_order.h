/* acme_order.h - ACME resources as single steps (RFC 8555 sections 7.1.2-7.5): accounts, orders,
 * authorizations, challenges, finalize and certificate download. Each call is one request (plus
 * badNonce retries); waiting and sequencing belong to the caller (acme_issue.c, and the renewal
 * driver's state machine), so every step can be resumed after a restart from the URLs it left.
 *
 * Objects from the CA are checked and bounded here: a missing member, a wrong type or more
 * entries than the bounds below give ACME_EPROTO with a debug log line naming the member.
 * Callers: whoever holds the acme_client_t (one thread at a time).
 */
#ifndef ACME_ORDER_H
#define ACME_ORDER_H

#include "acme_client.h"

#define ACME_ORDER_IDENTIFIERS_MAX 100 /* Let's Encrypt allows 100 names per certificate */
#define ACME_AUTHZ_CHALLENGES_MAX  16

typedef enum {
    ACME_STATE_UNKNOWN = 0,
    ACME_STATE_PENDING,
    ACME_STATE_READY,
    ACME_STATE_PROCESSING,
    ACME_STATE_VALID,
    ACME_STATE_INVALID,
    ACME_STATE_DEACTIVATED,
    ACME_STATE_EXPIRED,
    ACME_STATE_REVOKED,
} acme_state_e;

acme_state_e acme_state_parse(const char *s);
const char *acme_state_name(acme_state_e state);

/* --- accounts (section 7.3) --- */

typedef struct acme_account_req_t {
    const apr_array_header_t *contacts; /* const char *: "mailto:..." */
    int terms_agreed;
    const char *eab_kid;  /* external account binding, or NULL */
    const char *eab_hmac; /* base64url HMAC key */
    /* Which of several accounts at one CA (say one per contact address): the store keeps it in
     * accounts/<ca-id>-<variant> instead of accounts/<ca-id>. [A-Za-z0-9] only; NULL: none. */
    const char *variant;
    /* ACMECluster: the shared folder (docs/cluster.md), opened as a store; NULL: none. An
     * account missing here is imported from it; a new one is published to it. */
    struct acme_store_t *shared;
} acme_account_req_t;

/* newAccount with the key (jwk): creates the account or returns the existing one for the key.
 * *purl = the account URL (kid). */
apr_status_t acme_account_register(const char **purl, acme_problem_t **pprob, acme_client_t *client,
                                   const acme_key_t *key, const acme_account_req_t *req,
                                   apr_pool_t *p);

/* newAccount with onlyReturnExisting: ACME_ENOACCOUNT when the CA knows no account for key. */
apr_status_t acme_account_find(const char **purl, acme_problem_t **pprob, acme_client_t *client,
                               const acme_key_t *key, apr_pool_t *p);

/* --- orders (sections 7.1.3, 7.4) --- */

typedef struct acme_ident_t {
    const char *type; /* "dns" or "ip" */
    const char *value;
} acme_ident_t;

typedef struct acme_order_t {
    const char *url;
    acme_state_e status;
    apr_array_header_t *identifiers; /* acme_ident_t */
    apr_array_header_t *authzs;      /* const char * URLs */
    const char *finalize;
    const char *certificate; /* NULL until valid */
    acme_problem_t *error;   /* NULL unless the CA gave one */
    apr_interval_time_t retry_after;
    const char *profile; /* the profile the CA says the order is under, or NULL */
} acme_order_t;

/* Identifiers for names: "ip" for IP literals, "dns" otherwise. */
apr_array_header_t *acme_idents_for(const apr_array_header_t *names, apr_pool_t *p);

/* newOrder for names (const char *); replaces (RFC 9773 section 5) is the ARI certID of the
 * certificate this order renews, or NULL. */
apr_status_t acme_order_new(acme_order_t **porder, acme_problem_t **pprob, acme_client_t *client,
                            const apr_array_header_t *names, const char *replaces, apr_pool_t *p);

/* newOrder as acme_order_new, asking for profile (draft-ietf-acme-profiles) when it is not NULL.
 * Name only a profile the CA lists (acme_profile_pick): a CA refuses others (invalidProfile). */
apr_status_t acme_order_new_profile(acme_order_t **porder, acme_problem_t **pprob,
                                    acme_client_t *client, const apr_array_header_t *names,
                                    const char *replaces, const char *profile, apr_pool_t *p);

/* --- profiles (draft-ietf-acme-profiles) --- */

#define ACME_PROFILE_NAME_MAX 64 /* longest profile name we ask for or show */
#define ACME_PROFILES_SHOWN   16 /* profile names of a directory shown in a message */

/* The profile to order under for the wanted one (ACMEProfile): *puse = name when the CA's
 * directory lists it in meta.profiles. When it does not: *puse = NULL (order without it) and
 * APR_SUCCESS, or, when mandatory, ACME_ECONFIG with *pprob saying what the CA offers. *poffered
 * (when not NULL) gets the names the CA lists, "none" when it lists none. The directory's own
 * failure comes back as from acme_client_resource. */
apr_status_t acme_profile_pick(const char **puse, const char **poffered, acme_problem_t **pprob,
                               acme_client_t *client, const char *name, int mandatory,
                               apr_pool_t *p);

/* POST-as-GET of an order URL. */
apr_status_t acme_order_get(acme_order_t **porder, acme_problem_t **pprob, acme_client_t *client,
                            const char *url, apr_pool_t *p);

/* Finalize with a DER CSR; the order must be ready (else the CA answers orderNotReady). */
apr_status_t acme_order_finalize(acme_order_t **porder, acme_problem_t **pprob,
                                 acme_client_t *client, const acme_order_t *order,
                                 const unsigned char *csr, apr_size_t csr_len, apr_pool_t *p);

/* --- authorizations and challenges (sections 7.5, 8) --- */

typedef struct acme_challenge_t {
    const char *type; /* "http-01", "dns-01", "tls-alpn-01", ... */
    const char *url;
    const char *token; /* checked: base64url, bounded */
    acme_state_e status;
    acme_problem_t *error;
} acme_challenge_t;

typedef struct acme_authz_t {
    const char *url;
    acme_ident_t identifier;
    acme_state_e status;
    int wildcard;
    apr_array_header_t *challenges; /* acme_challenge_t */
    apr_interval_time_t retry_after;
} acme_authz_t;

apr_status_t acme_authz_get(acme_authz_t **pauthz, acme_problem_t **pprob, acme_client_t *client,
                            const char *url, apr_pool_t *p);

/* The challenge of the given type, or NULL. */
const acme_challenge_t *acme_authz_challenge(const acme_authz_t *authz, const char *type);

/* First error found in an authorization's challenges, or NULL. */
const acme_problem_t *acme_authz_error(const acme_authz_t *authz);

/* Tells the CA the challenge is ready to be validated (POST {}). */
apr_status_t acme_challenge_respond(acme_challenge_t **pchall, acme_problem_t **pprob,
                                    acme_client_t *client, const char *url, apr_pool_t *p);

/* --- certificate (section 7.4.2) --- */

/* Downloads the PEM chain; *palternates (when not NULL) receives the URLs of alternate chains
 * (Link rel="alternate"). The text is not parsed here. */
apr_status_t acme_chain_download(const char **ppem, apr_size_t *plen,
                                 apr_array_header_t **palternates, acme_problem_t **pprob,
                                 acme_client_t *client, const char *url, apr_pool_t *p);

#endif /* ACME_ORDER_H */
