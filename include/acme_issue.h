/* acme_issue.h - getting a certificate from start to end with the single steps of acme_order.h:
 * the account (kept in the store per CA), the order, authorizations (already valid ones are
 * skipped), challenge answers published in the token table, polling that honours Retry-After
 * within a bounded total time, finalize with a fresh key, and the chain (with its alternates when
 * asked for).
 *
 * The calls block their thread while they wait; the caller owns the thread (the renewal driver
 * runs one issuance per worker, the test driver runs one in main). Logging names the domain.
 */
#ifndef ACME_ISSUE_H
#define ACME_ISSUE_H

#include "acme_order.h"
#include "acme_store.h"
#include "acme_tokens.h"

#define ACME_ALT_CHAINS_MAX 4 /* alternate chains downloaded and kept */

/* Polling without Retry-After: waits of 15, 45, 135, 405 ms, 1.2, 3.6, 10, 10 s ... A CA that
 * validates at once (pebble, Boulder for most names) is done by the first poll; one that takes
 * seconds is asked at most once more than with a 100 ms start doubling (the former schedule),
 * and no more often from 12.7 s on. */
#define ACME_POLL_FIRST        (15 * 1000) /* first wait after answering or finalizing */
#define ACME_POLL_GROWTH       3           /* each next wait is this many times longer */
#define ACME_POLL_MAX          (10 * APR_USEC_PER_SEC) /* longest wait between two polls */
#define ACME_POLL_RETRY_MIN    (100 * 1000) /* a Retry-After of 0 is waited at least this */
#define ACME_POLL_ATTEMPTS_MAX 60           /* polls of one order, whatever the time */

/* Makes the account for the client's CA usable: loads accounts/<ca-id>/account.key (with
 * req->variant: accounts/<ca-id>-<variant>/) and
 * account.json from the store (no request when the account URL is known), else creates the key
 * and registers it (or, without terms_agreed, only looks for an existing account) and saves both.
 * On success the client signs with the account (acme_client_set_account); the key lives in p,
 * which must outlive the client's use of it. Callers serialise calls for one store and CA (two
 * first-time setups at once would each make a key). */
apr_status_t acme_account_setup(acme_client_t *client, acme_store_t *store,
                                const acme_account_req_t *req, acme_key_type_e key_type,
                                acme_problem_t **pprob, apr_pool_t *p);

/* ACMECluster (docs/cluster.md), called by acme_account_setup with req->shared. import: when
 * store has no key in dir (accounts/<ca-id>[-<variant>]) and shared holds an account there that
 * passes the store's checks (no links, bounded sizes, the key parses, account.json names this
 * very key, the CA and an https URL), puts it into store in one rename; APR_ENOENT when shared
 * has none, APR_EEXIST when store has its own. publish: puts store's account into shared in one
 * rename unless shared holds a valid one already (APR_EEXIST: the first published wins); a
 * shared account that fails the checks is replaced. Both log what they did (ACME04018-04022). */
apr_status_t acme_account_share_import(acme_store_t *store, acme_store_t *shared, const char *dir,
                                       const char *ca_url, const acme_log_t *log, apr_pool_t *p);
apr_status_t acme_account_share_publish(acme_store_t *store, acme_store_t *shared, const char *dir,
                                        const char *ca_url, const acme_log_t *log, apr_pool_t *p);

/* Forgets the stored account URL (after the CA said the account does not exist), keeping the
 * key; the next acme_account_setup registers the key again. */
apr_status_t acme_account_forget(acme_client_t *client, acme_store_t *store,
                                 const acme_account_req_t *req, apr_pool_t *p);

/* One way of answering challenges (RFC 8555 section 8, RFC 8737). The issuance picks, for each
 * pending authorization, the first responder of the caller's list (its order of preference)
 * whose type the CA offers and that can answer for the identifier; it sets up the answers of
 * every authorization of the order first, then lets each responder used wait until its answers
 * are visible (ready), and only then tells the CA to validate. Answers are torn down when the
 * order ends, not when the attempt only stopped waiting (the order is resumed later). */
typedef struct acme_responder_t acme_responder_t;
struct acme_responder_t {
    const char *type; /* the challenge type: "http-01", "tls-alpn-01", "dns-01" */
    /* 1 when this responder can answer for the identifier (wildcard set: the authorization is
     * for *.value); NULL = every identifier. */
    int (*can_answer)(acme_responder_t *r, const acme_ident_t *id, int wildcard);
    /* Publishes the answer of one challenge: its token and key authorization, for identifier id
     * (a wildcard authorization's base name), until expires. */
    apr_status_t (*setup)(acme_responder_t *r, const acme_ident_t *id, int wildcard,
                          const char *token, const char *keyauth, apr_time_t expires,
                          acme_problem_t **pprob, apr_pool_t *p);
    /* Called once after every setup of the order, before the CA is told: waits (at most until
     * deadline) until the answers can be seen where the CA looks, e.g. a TXT record at the
     * zone's servers. NULL: they are at once. */
    apr_status_t (*ready)(acme_responder_t *r, apr_time_t deadline, acme_problem_t **pprob,
                          apr_pool_t *p);
    /* Removes an answer set up before. */
    void (*teardown)(acme_responder_t *r, const acme_ident_t *id, int wildcard, const char *token,
                     const char *keyauth, apr_pool_t *p);
    void *baton;
};

/* The http-01 responder over a token table: answers for every identifier but wildcards. */
void acme_responder_http01(acme_responder_t *r, acme_tokens_t *tokens);

typedef struct acme_issue_req_t {
    const char *domain;              /* for log lines: the ACMEDomain's first name */
    const apr_array_header_t *names; /* const char *: the identifiers, in order */
    acme_key_type_e key_type;        /* of the certificate key */
    /* acme_responder_t *, in order of preference; NULL: http-01 through tokens. */
    const apr_array_header_t *responders;
    acme_tokens_t *tokens;        /* without responders: where http-01 answers go; may be NULL */
    apr_interval_time_t max_wait; /* bound on all waiting for this order; 0 = 5 minutes */
    const char *order_url;        /* an order of an earlier attempt to resume, or NULL */
    const char *replaces;         /* ARI certID of the certificate being renewed, or NULL */
    const char *profile; /* the profile to order under (one the CA lists: acme_profile_pick), or
                          * NULL; an earlier order under another profile is not resumed */
    int alternates;      /* also download the alternate chains (Link rel="alternate") */
    /* ACMEPreferredChain: the common name of the topmost issuer (acme_cert_chain_top_issuer)
     * of the chain to keep. When set, the alternate chains are downloaded too and the first
     * chain (the default, then the alternates in the CA's order) that ends at this issuer is
     * returned in chain_pem; when none does, the default. NULL: the default chain, and no
     * alternate is downloaded unless alternates is set. */
    const char *preferred_chain;
    /* The key an earlier attempt finalized order_url with (kept through on_key); lets a
     * processing or valid order be resumed instead of ordering a second certificate. */
    acme_key_t *key;
    /* For a new order: the key to finalize with instead of a new one (ACMEKeyReuse), used only
     * when it is of key_type; NULL: a new key. */
    acme_key_t *reuse_key;
    /* Called once the order is known (new or resumed), so the caller can persist its URL. */
    void (*on_order)(void *baton, const char *order_url);
    /* Called with the new certificate key just before finalize, so the caller can persist it;
     * an error stops the issuance before finalize. */
    apr_status_t (*on_key)(void *baton, const acme_key_t *key);
    void *baton;
} acme_issue_req_t;

typedef struct acme_issue_result_t {
    const char *order_url;
    acme_key_t *key;       /* the certificate's new private key */
    const char *chain_pem; /* leaf first, as the CA sent it */
    apr_size_t chain_len;
    apr_array_header_t *alt_chains; /* const char * PEM texts of alternate chains */
    /* With preferred_chain: which chain chain_pem is (0 = the CA's default, n = its n-th
     * alternate), whether it ends at the preferred issuer, its topmost issuer (NULL when it has
     * none that can be named), and, for log lines, the topmost issuers of every usable chain
     * offered, the default first: "\"Root A\" (default), \"Root B\"". */
    int chain_index;
    int chain_preferred;
    const char *chain_issuer;
    const char *chain_issuers;
    int authz_total;
    int authz_reused;    /* already valid: no challenge needed */
    const char *profile; /* the profile ordered under (req->profile), or NULL */
} acme_issue_result_t;

/* Runs one issuance. An order given in req->order_url is resumed when it is for the same
 * identifiers and still pending or ready, or processing or valid with req->key; when it is gone,
 * invalid, expired or for other names, a new order is made. When the CA cannot tell (no answer,
 * 5xx), the attempt fails without a new order.
 * On failure the mapped status comes back and *pprob (when given and the CA
 * sent one) holds the problem, with retry_after for rateLimited / 503. */
apr_status_t acme_issue(acme_issue_result_t **presult, acme_problem_t **pprob,
                        acme_client_t *client, const acme_issue_req_t *req, apr_pool_t *p);

/* The wait before poll number attempt (0-based): the CA's Retry-After when it gave one, shorter
 * or longer than our own schedule (at least ACME_POLL_RETRY_MIN), else ACME_POLL_FIRST
 * multiplied by ACME_POLL_GROWTH each time up to ACME_POLL_MAX. A wait that
 * would pass the order's max_wait ends the issuance with ACME_ETIMEOUT and the wait in
 * retry_after, so the caller can come back then. */
apr_interval_time_t acme_poll_interval(int attempt, apr_interval_time_t retry_after);

#endif /* ACME_ISSUE_H */
