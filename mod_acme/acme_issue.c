/* acme_issue.c - account setup from the store and one blocking issuance. */
#include <stdarg.h>
#include <string.h>

#include <apr_strings.h>

#include "acme_ari.h"
#include "acme_cert.h"
#include "acme_csr.h"
#include "acme_issue.h"

/* Why the work stops, said once: as the problem the caller logs at error level with what
 * happens next, and here at INFO with the tag and the place. */
static apr_status_t stop_with(const acme_log_t *log, acme_problem_t **pprob, apr_status_t rv,
                              apr_pool_t *p, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static apr_status_t stop_with(const acme_log_t *log, acme_problem_t **pprob, apr_status_t rv,
                              apr_pool_t *p, const char *tag, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    acme_log(log, ACME_LOG_INFO, rv, "%s: %s", tag, msg);
    if (pprob) {
        *pprob = acme_problem_make(rv, 0, msg, p);
    }
    return rv;
}

/* --- account --- */

static const char *account_dir(acme_client_t *client, const acme_account_req_t *req, apr_pool_t *p)
{
    const char *v = req ? req->variant : NULL;

    if (v && (!*v || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") !=
                         strlen(v))) {
        v = NULL; /* never a path of its own making */
    }
    return apr_pstrcat(p, "accounts/", acme_store_ca_id(acme_client_directory_url(client), p),
                       v ? "-" : "", v ? v : "", NULL);
}

apr_status_t acme_account_setup(acme_client_t *client, acme_store_t *store,
                                const acme_account_req_t *req, acme_key_type_e key_type,
                                acme_problem_t **pprob, apr_pool_t *p)
{
    const acme_log_t *log = acme_client_log(client);
    const char *dir = account_dir(client, req, p);
    const char *key_path = apr_pstrcat(p, dir, "/account.key", NULL);
    const char *json_path = apr_pstrcat(p, dir, "/account.json", NULL);
    const char *url = NULL, *pem, *thumb = NULL;
    acme_key_t *key = NULL;
    json_t *info = NULL;
    char *text;
    apr_size_t len;
    apr_status_t rv;

    if (req->shared) {
        acme_account_share_import(store, req->shared, dir, acme_client_directory_url(client), log,
                                  p);
    }
    rv = acme_store_read(&text, &len, store, key_path, ACME_STORE_KEY_MAX, p);
    if (rv == APR_SUCCESS) {
        rv = acme_key_from_pem(&key, text, len, p);
        if (rv != APR_SUCCESS) {
            /* Never replace an account key we cannot read: the operator must look at it. */
            return stop_with(log, pprob, rv, p, "ACME00010",
                             "account key %s cannot be used (%s); move it away to let a new "
                             "account be created",
                             acme_store_path(store, key_path, p), acme_strerror(rv, p));
        }
        /* The URL counts only with the thumbprint of this very key: a key and a URL from two
         * registrations would sign every request under the wrong account. */
        if (acme_store_json_read(&info, store, json_path, p) == APR_SUCCESS &&
            acme_key_thumbprint(&thumb, key, p) == APR_SUCCESS && acme_json_str(info, "key") &&
            strcmp(acme_json_str(info, "key"), thumb) == 0) {
            url = acme_json_str(info, "url");
        }
    } else if (APR_STATUS_IS_ENOENT(rv)) {
        rv = acme_key_generate(&key, key_type, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        rv = acme_key_to_pem(&pem, &len, key, p);
        if (rv == APR_SUCCESS) {
            rv = acme_store_write(store, key_path, pem, len, APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
        }
        if (rv != APR_SUCCESS) {
            return stop_with(log, pprob, rv, p, "ACME00011",
                             "cannot save a new account key in %s (%s)",
                             acme_store_path(store, key_path, p), acme_strerror(rv, p));
        }
    } else {
        return stop_with(log, pprob, rv, p, "ACME00012", "cannot read account key %s (%s)",
                         acme_store_path(store, key_path, p), acme_strerror(rv, p));
    }

    if (!url) {
        if (req->terms_agreed) {
            rv = acme_account_register(&url, pprob, client, key, req, p);
            /* With a binding sent, these answers refuse the binding (RFC 8555 section 7.3.4: an
             * unknown key ID, a MAC that does not verify, a MAC algorithm the CA will not take).
             * Retrying cannot help: it is a configuration error, retried after long. */
            if (req->eab_kid &&
                (rv == ACME_EUNAUTHORIZED || rv == ACME_EEAB || rv == ACME_EBADKEY)) {
                return stop_with(log, pprob, ACME_ECONFIG, p, "ACME00161",
                                 "the CA %s refused the external account binding with key ID %s "
                                 "(%s); ACMEExternalAccountBinding must name the key ID and the "
                                 "MAC key the CA issued together",
                                 acme_client_directory_url(client), req->eab_kid,
                                 pprob && *pprob ? acme_problem_describe(*pprob, p)
                                                 : acme_strerror(rv, p));
            }
        } else {
            /* Without agreement we may still use an account that exists already. */
            rv = acme_account_find(&url, pprob, client, key, p);
            if (rv == ACME_ENOACCOUNT) {
                return stop_with(log, pprob, ACME_ECONFIG, p, "ACME00013",
                                 "no account at %s and the terms of service are not accepted; "
                                 "set 'ACMEAgreement accepted'",
                                 acme_client_directory_url(client));
            }
        }
        if (rv != APR_SUCCESS) {
            return rv;
        }
        rv = acme_key_thumbprint(&thumb, key, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        info = acme_json_pool(p, json_pack("{s:s, s:s, s:s}", "url", url, "ca",
                                           acme_client_directory_url(client), "key", thumb));
        rv = acme_store_json_write(store, json_path, info, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        acme_log(log, ACME_LOG_NOTICE, APR_SUCCESS, "ACME00014: account %s ready at %s", url,
                 acme_client_directory_url(client));
        if (req->shared) {
            acme_account_share_publish(store, req->shared, dir, acme_client_directory_url(client),
                                       log, p);
        }
    }
    acme_client_set_account(client, key, url);
    return APR_SUCCESS;
}

apr_status_t acme_account_forget(acme_client_t *client, acme_store_t *store,
                                 const acme_account_req_t *req, apr_pool_t *p)
{
    acme_client_set_account(client, NULL, NULL);
    return acme_store_remove(store,
                             apr_pstrcat(p, account_dir(client, req, p), "/account.json", NULL), p);
}

/* --- polling --- */

apr_interval_time_t acme_poll_interval(int attempt, apr_interval_time_t retry_after)
{
    apr_interval_time_t t = ACME_POLL_FIRST;

    /* The CA knows best when it will be done (RFC 8555 section 7.5.1): its word wins. */
    if (retry_after >= 0) {
        return retry_after < ACME_POLL_RETRY_MIN ? ACME_POLL_RETRY_MIN : retry_after;
    }
    while (attempt-- > 0 && t < ACME_POLL_MAX) {
        t *= ACME_POLL_GROWTH;
    }
    return t > ACME_POLL_MAX ? ACME_POLL_MAX : t;
}

/* An answer set up for the order, torn down at its end. */
typedef struct published_t {
    acme_responder_t *r;
    acme_ident_t id;
    int wildcard;
    const char *token, *keyauth;
    const char *challenge_url; /* to tell the CA, or NULL when it needs no telling */
} published_t;

typedef struct issue_t {
    acme_client_t *client;
    const acme_issue_req_t *req;
    const acme_log_t *log;
    const acme_clock_t *clock;
    apr_time_t deadline;
    int polls;
    acme_problem_t **pprob;
    const apr_array_header_t *responders; /* acme_responder_t * */
    apr_array_header_t *published;        /* published_t */
} issue_t;

/* Waits before the next poll; ACME_ETIMEOUT when the wait would pass the deadline or the poll
 * count is used up. */
static apr_status_t poll_wait(issue_t *is, apr_interval_time_t retry_after, const char *what,
                              apr_pool_t *p)
{
    apr_interval_time_t t = acme_poll_interval(is->polls, retry_after);
    apr_time_t now = is->clock->now(is->clock->baton);

    if (++is->polls > ACME_POLL_ATTEMPTS_MAX || now + t > is->deadline) {
        acme_log(is->log, ACME_LOG_INFO, ACME_ETIMEOUT,
                 "ACME00020: %s: gave up waiting for %s after %d polls; the order is resumed "
                 "at the next attempt",
                 is->req->domain, what, is->polls - 1);
        *is->pprob = acme_problem_make(ACME_ETIMEOUT, 0,
                                       apr_psprintf(p, "timed out waiting for %s", what), p);
        (*is->pprob)->retry_after = retry_after;
        return ACME_ETIMEOUT;
    }
    acme_log(is->log, ACME_LOG_TRACE, APR_SUCCESS, "%s: waiting %" APR_TIME_T_FMT " ms for %s",
             is->req->domain, apr_time_as_msec(t), what);
    is->clock->sleep(is->clock->baton, t);
    return APR_SUCCESS;
}

/* Logs a failed step with the domain, the CA's words and what happens next. */
static apr_status_t step_failed(issue_t *is, apr_status_t rv, const char *step,
                                const acme_problem_t *prob, apr_pool_t *p)
{
    if (!prob) {
        *is->pprob =
            acme_problem_make(rv, 0, apr_psprintf(p, "%s: %s", step, acme_strerror(rv, p)), p);
    }
    acme_log(is->log, ACME_LOG_INFO, rv, "ACME00021: %s: %s failed: %s; %s", is->req->domain, step,
             prob ? acme_problem_describe(prob, p) : acme_strerror(rv, p), acme_problem_advice(rv));
    return rv;
}

/* The responder for an authorization: the first of the caller's list whose type the CA offers
 * and that can answer for the identifier. Answering a type we cannot provision would only burn
 * the CA's failed-validation limit. */
static acme_responder_t *pick_responder(issue_t *is, const acme_authz_t *a,
                                        const acme_challenge_t **pch)
{
    int i;

    for (i = 0; i < is->responders->nelts; i++) {
        acme_responder_t *r = APR_ARRAY_IDX(is->responders, i, acme_responder_t *);
        const acme_challenge_t *ch = acme_authz_challenge(a, r->type);
        if (ch && (!r->can_answer || r->can_answer(r, &a->identifier, a->wildcard))) {
            *pch = ch;
            return r;
        }
    }
    return NULL;
}

/* 1 when some responder could answer for the authorization's identifier, offered or not. */
static int any_can_answer(issue_t *is, const acme_authz_t *a)
{
    int i;

    for (i = 0; i < is->responders->nelts; i++) {
        acme_responder_t *r = APR_ARRAY_IDX(is->responders, i, acme_responder_t *);
        if (!r->can_answer || r->can_answer(r, &a->identifier, a->wildcard)) {
            return 1;
        }
    }
    return 0;
}

/* "http-01, dns-01": the types of a list, for messages. */
static const char *type_list(const apr_array_header_t *arr, int responders, apr_pool_t *p)
{
    const char *out = "";
    int i;

    for (i = 0; i < arr->nelts; i++) {
        const char *t = responders ? APR_ARRAY_IDX(arr, i, acme_responder_t *)->type
                                   : APR_ARRAY_IDX(arr, i, acme_challenge_t).type;
        out = apr_pstrcat(p, out, i ? ", " : "", t ? t : "?", NULL);
    }
    return *out ? out : "none";
}

/* Fetches each authorization once: valid ones are skipped, pending ones get their answer set
 * up. Then each responder used waits until its answers are visible, and only then is the CA
 * told to validate, so that it never looks before an answer is there. */
static apr_status_t start_authzs(issue_t *is, acme_order_t *order, acme_issue_result_t *res,
                                 apr_pool_t *p)
{
    apr_array_header_t *used = apr_array_make(p, 2, sizeof(acme_responder_t *));
    int i, j;
    apr_status_t rv;

    for (i = 0; i < order->authzs->nelts; i++) {
        const char *url = APR_ARRAY_IDX(order->authzs, i, const char *);
        const acme_challenge_t *ch = NULL;
        acme_responder_t *r;
        acme_authz_t *a;
        published_t *pub;
        const char *keyauth;

        rv = acme_authz_get(&a, is->pprob, is->client, url, p);
        if (rv != APR_SUCCESS) {
            return step_failed(is, rv, "fetching an authorization", *is->pprob, p);
        }
        res->authz_total++;
        if (a->status == ACME_STATE_VALID) {
            res->authz_reused++;
            acme_log(is->log, ACME_LOG_DEBUG, APR_SUCCESS, "%s: %s:%s already authorized",
                     is->req->domain, a->identifier.type, a->identifier.value);
            continue;
        }
        if (a->status != ACME_STATE_PENDING) {
            return stop_with(is->log, is->pprob, ACME_EINVALID, p, "ACME00022",
                             "authorization for %s is %s: %s; a new order is made at the next "
                             "attempt",
                             a->identifier.value, acme_state_name(a->status),
                             acme_authz_error(a) ? acme_problem_describe(acme_authz_error(a), p)
                                                 : "no reason given");
        }
        r = pick_responder(is, a, &ch);
        if (!r) {
            return stop_with(is->log, is->pprob, ACME_ECONFIG, p, "ACME00023",
                             "no challenge type we can answer for %s%s: the CA offers %s, we "
                             "answer %s (ACMEChallenges)%s",
                             a->wildcard ? "*." : "", a->identifier.value,
                             type_list(a->challenges, 0, p), type_list(is->responders, 1, p),
                             any_can_answer(is, a) ? "" : ", none of them for this name here");
        }
        if (!ch->token) {
            return stop_with(is->log, is->pprob, ACME_EPROTO, p, "ACME00024",
                             "the CA's %s challenge for %s has no token", r->type,
                             a->identifier.value);
        }
        rv = acme_key_authorization(&keyauth, acme_client_key(is->client), ch->token, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        rv = r->setup(r, &a->identifier, a->wildcard, ch->token, keyauth, is->deadline, is->pprob,
                      p);
        if (rv != APR_SUCCESS) {
            return step_failed(is, rv,
                               apr_psprintf(p, "setting up the %s answer for %s%s", r->type,
                                            a->wildcard ? "*." : "", a->identifier.value),
                               *is->pprob, p);
        }
        pub = apr_array_push(is->published);
        pub->r = r;
        pub->id = a->identifier;
        pub->wildcard = a->wildcard;
        pub->token = ch->token;
        pub->keyauth = keyauth;
        pub->challenge_url = ch->status == ACME_STATE_PENDING ? ch->url : NULL;
        for (j = 0; j < used->nelts && APR_ARRAY_IDX(used, j, acme_responder_t *) != r; j++) {
        }
        if (j == used->nelts) {
            APR_ARRAY_PUSH(used, acme_responder_t *) = r;
        }
    }
    for (j = 0; j < used->nelts; j++) {
        acme_responder_t *r = APR_ARRAY_IDX(used, j, acme_responder_t *);
        if (r->ready) {
            rv = r->ready(r, is->deadline, is->pprob, p);
            if (rv != APR_SUCCESS) {
                return step_failed(is, rv, apr_psprintf(p, "waiting for the %s answers", r->type),
                                   *is->pprob, p);
            }
        }
    }
    for (i = 0; i < is->published->nelts; i++) {
        const published_t *pub = &APR_ARRAY_IDX(is->published, i, published_t);
        acme_challenge_t *answered;
        if (pub->challenge_url) {
            rv = acme_challenge_respond(&answered, is->pprob, is->client, pub->challenge_url, p);
            if (rv != APR_SUCCESS) {
                return step_failed(is, rv, "answering the challenge", *is->pprob, p);
            }
        }
        acme_log(is->log, ACME_LOG_DEBUG, APR_SUCCESS, "%s: %s for %s%s answered", is->req->domain,
                 pub->r->type, pub->wildcard ? "*." : "", pub->id.value);
    }
    return APR_SUCCESS;
}

/* After a failed order, fetches the authorizations to say which name failed and why; the first
 * reason found (or the order's own error) becomes the problem of the attempt. */
static void explain_invalid(issue_t *is, const acme_order_t *order, apr_pool_t *p)
{
    int i, found = 0;

    if (order->error) {
        *is->pprob = order->error;
        found = 1;
    }
    for (i = 0; i < order->authzs->nelts; i++) {
        acme_problem_t *ignored = NULL;
        acme_authz_t *a;
        if (acme_authz_get(&a, &ignored, is->client, APR_ARRAY_IDX(order->authzs, i, const char *),
                           p) != APR_SUCCESS) {
            continue;
        }
        if (a->status == ACME_STATE_INVALID) {
            const acme_problem_t *err = acme_authz_error(a);
            acme_log(is->log, ACME_LOG_INFO, err ? err->rv : ACME_EVALIDATION,
                     "ACME00025: %s: validation of %s failed: %s; %s", is->req->domain,
                     a->identifier.value, err ? acme_problem_describe(err, p) : "no reason given",
                     acme_problem_advice(err ? err->rv : ACME_EVALIDATION));
            if (!found) {
                *is->pprob = acme_problem_make(
                    err ? err->rv : ACME_EVALIDATION, 0,
                    apr_psprintf(p, "validation of %s failed: %s", a->identifier.value,
                                 err ? acme_problem_describe(err, p) : "no reason given"),
                    p);
                found = 1;
            }
        }
    }
    if (!found) {
        stop_with(is->log, is->pprob, ACME_EINVALID, p, "ACME00031",
                  "order %s became invalid without a reason from the CA; a new order is made at "
                  "the next attempt",
                  order->url);
    }
}

/* Polls the order until it leaves the states in which the CA is working. Polling the order
 * rather than each authorization costs one request per round whatever the number of names. */
static apr_status_t await_order(issue_t *is, acme_order_t **porder, acme_state_e from,
                                const char *what, apr_pool_t *p)
{
    acme_order_t *o = *porder;
    apr_status_t rv;

    is->polls = 0; /* each phase starts with short waits again */
    while (o->status == from || o->status == ACME_STATE_PROCESSING) {
        rv = poll_wait(is, o->retry_after, what, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        rv = acme_order_get(&o, is->pprob, is->client, o->url, p);
        if (rv != APR_SUCCESS) {
            return step_failed(is, rv, "polling the order", *is->pprob, p);
        }
    }
    *porder = o;
    return APR_SUCCESS;
}

static void unpublish(issue_t *is, apr_pool_t *p)
{
    int i;

    for (i = 0; i < is->published->nelts; i++) {
        const published_t *pub = &APR_ARRAY_IDX(is->published, i, published_t);
        if (pub->r->teardown) {
            pub->r->teardown(pub->r, &pub->id, pub->wildcard, pub->token, pub->keyauth, p);
        }
    }
}

/* 1 when the order is for exactly these names (as a set). */
static int same_names(const acme_order_t *order, const apr_array_header_t *names)
{
    int i, j;

    if (order->identifiers->nelts != names->nelts) {
        return 0;
    }
    for (i = 0; i < names->nelts; i++) {
        const char *n = APR_ARRAY_IDX(names, i, const char *);
        for (j = 0; j < order->identifiers->nelts; j++) {
            if (strcasecmp(APR_ARRAY_IDX(order->identifiers, j, acme_ident_t).value, n) == 0) {
                break;
            }
        }
        if (j == order->identifiers->nelts) {
            return 0;
        }
    }
    return 1;
}

/* The order of an earlier attempt, when it can still lead to a certificate from here: pending
 * or ready, or already finalized when the caller kept the key it was finalized with. *porder
 * stays NULL when a new order is needed. A CA that cannot answer now fails the attempt: making a
 * new order then could end with two certificates. */
static apr_status_t resume_order(acme_order_t **porder, issue_t *is, const char *url, apr_pool_t *p)
{
    acme_order_t *order;
    acme_problem_t *prob = NULL;
    apr_status_t rv;
    int usable;

    rv = acme_order_get(&order, &prob, is->client, url, p);
    if (rv != APR_SUCCESS) {
        if (acme_status_is_transient(rv) && rv != ACME_EPROTO && rv != ACME_EUNAUTHORIZED) {
            *is->pprob = prob;
            return step_failed(is, rv, "fetching the earlier order", prob, p);
        }
        acme_log(is->log, ACME_LOG_INFO, rv,
                 "ACME00029: %s: earlier order %s is gone (%s); making a new one", is->req->domain,
                 url, prob ? acme_problem_describe(prob, p) : "no answer");
        return APR_SUCCESS;
    }
    usable = order->status == ACME_STATE_PENDING || order->status == ACME_STATE_READY ||
             ((order->status == ACME_STATE_PROCESSING || order->status == ACME_STATE_VALID) &&
              is->req->key);
    /* The CA names the order's profile (draft-ietf-acme-profiles): one ordered under another
     * ACMEProfile is not what the operator now asks for. */
    if (usable && is->req->profile && order->profile &&
        strcmp(order->profile, is->req->profile) != 0) {
        acme_log(is->log, ACME_LOG_INFO, APR_SUCCESS,
                 "ACME00029: %s: earlier order %s is for the profile %s, not %s; making a new one",
                 is->req->domain, url, order->profile, is->req->profile);
        return APR_SUCCESS;
    }
    if (!usable || !same_names(order, is->req->names)) {
        acme_log(is->log, ACME_LOG_INFO, APR_SUCCESS,
                 "ACME00029: %s: earlier order %s is %s; making a new one", is->req->domain, url,
                 acme_state_name(order->status));
        return APR_SUCCESS;
    }
    acme_log(is->log, ACME_LOG_INFO, APR_SUCCESS, "ACME00030: %s: resuming order %s (%s)",
             is->req->domain, url, acme_state_name(order->status));
    *porder = order;
    return APR_SUCCESS;
}

/* The chain downloaded from url as parsed, or NULL (said why, at INFO) when it cannot stand in
 * for the default one: it does not parse, its leaf is not the certificate issued, or a
 * certificate in it is not issued by the next. */
static apr_array_header_t *usable_alternate(issue_t *is, const apr_array_header_t *dflt,
                                            const char *url, const char *pem, apr_size_t len,
                                            apr_pool_t *p)
{
    apr_array_header_t *chain = NULL;
    const char *why = NULL;
    apr_status_t rv;

    rv = acme_cert_chain_parse(&chain, pem, len, p);
    if (rv != APR_SUCCESS) {
        why = apr_psprintf(p, "it does not parse (%s)", acme_strerror(rv, p));
    } else if (!acme_cert_same(APR_ARRAY_IDX(chain, 0, acme_cert_t *),
                               APR_ARRAY_IDX(dflt, 0, acme_cert_t *))) {
        why = "its first certificate is not the one issued";
    } else if (acme_cert_chain_check(chain, NULL, NULL, 0, &why, p) != APR_SUCCESS) {
        why = apr_psprintf(p, "it does not hold together: %s", why);
    }
    if (why) {
        acme_log(is->log, ACME_LOG_INFO, ACME_EPROTO,
                 "ACME00191: %s: the alternate chain %s is not considered: %s", is->req->domain,
                 url, why);
        return NULL;
    }
    return chain;
}

/* Downloads the alternate chains (at most ACME_ALT_CHAINS_MAX) and, for a preferred chain,
 * keeps the first chain, the default first, whose topmost issuer is the one preferred. An
 * alternate is a bonus: one that fails to download or cannot be used is logged and left out,
 * and the issuance never fails for it; the default chain stays when none matches. */
static void alternates(issue_t *is, acme_issue_result_t *res, const apr_array_header_t *urls,
                       apr_pool_t *p)
{
    const char *pref = is->req->preferred_chain;
    apr_array_header_t *chains = NULL, *dflt = NULL, *pems, *lens;
    const char *offered = "";
    int i, k;

    pems = apr_array_make(p, 5, sizeof(const char *));
    lens = apr_array_make(p, 5, sizeof(apr_size_t));
    APR_ARRAY_PUSH(pems, const char *) = res->chain_pem;
    APR_ARRAY_PUSH(lens, apr_size_t) = res->chain_len;
    if (urls && urls->nelts > ACME_ALT_CHAINS_MAX) {
        acme_log(is->log, ACME_LOG_INFO, APR_SUCCESS,
                 "ACME00192: %s: the CA offers %d alternate chains; the first %d are considered",
                 is->req->domain, urls->nelts, ACME_ALT_CHAINS_MAX);
    }
    for (i = 0; urls && i < urls->nelts && i < ACME_ALT_CHAINS_MAX; i++) {
        const char *url = APR_ARRAY_IDX(urls, i, const char *), *pem = NULL;
        apr_size_t len = 0;
        acme_problem_t *prob = NULL;
        apr_status_t rv = acme_chain_download(&pem, &len, NULL, &prob, is->client, url, p);
        if (rv == ACME_ECANCELLED) {
            break; /* the server stops: what we have is kept */
        }
        if (rv != APR_SUCCESS) {
            acme_log(is->log, ACME_LOG_INFO, rv,
                     "ACME00190: %s: the alternate chain %s could not be downloaded (%s); it is "
                     "left out%s",
                     is->req->domain, url,
                     prob ? acme_problem_describe(prob, p) : acme_strerror(rv, p),
                     pref ? "; the chain kept is chosen among the others" : "");
        } else {
            APR_ARRAY_PUSH(res->alt_chains, const char *) = pem;
        }
        APR_ARRAY_PUSH(pems, const char *) = rv == APR_SUCCESS ? pem : NULL;
        APR_ARRAY_PUSH(lens, apr_size_t) = len;
    }
    if (!pref) {
        return;
    }
    res->chain_index = 0;
    /* The default chain must parse for anything to be chosen (else the caller's own check of
     * the default fails the attempt, as without a preference). */
    if (acme_cert_chain_parse(&dflt, res->chain_pem, res->chain_len, p) != APR_SUCCESS) {
        res->chain_issuers = "(the default chain does not parse)";
        return;
    }
    chains = apr_array_make(p, pems->nelts, sizeof(apr_array_header_t *));
    for (i = 0; i < pems->nelts; i++) {
        const char *pem = APR_ARRAY_IDX(pems, i, const char *);
        apr_array_header_t *chain = NULL;
        const char *top;
        if (i == 0) {
            chain = dflt;
        } else if (pem) {
            chain = usable_alternate(is, dflt, APR_ARRAY_IDX(urls, i - 1, const char *), pem,
                                     APR_ARRAY_IDX(lens, i, apr_size_t), p);
        }
        APR_ARRAY_PUSH(chains, apr_array_header_t *) = chain;
        if (!chain) {
            continue;
        }
        top = acme_cert_chain_top_issuer(chain, p);
        offered = apr_pstrcat(p, offered, *offered ? ", " : "",
                              top ? apr_pstrcat(p, "\"", top, "\"", NULL) : "(no issuer name)",
                              i == 0 ? " (default)" : "", NULL);
    }
    res->chain_issuers = offered;
    k = acme_cert_chain_pick(chains, pref, p);
    res->chain_preferred = k >= 0;
    res->chain_index = k > 0 ? k : 0;
    res->chain_pem = APR_ARRAY_IDX(pems, res->chain_index, const char *);
    res->chain_len = APR_ARRAY_IDX(lens, res->chain_index, apr_size_t);
    res->chain_issuer = acme_cert_chain_top_issuer(
        APR_ARRAY_IDX(chains, res->chain_index, apr_array_header_t *), p);
}

static apr_status_t run(issue_t *is, acme_issue_result_t *res, apr_pool_t *p)
{
    const acme_issue_req_t *req = is->req;
    acme_order_t *order;
    const unsigned char *csr;
    apr_size_t csr_len;
    apr_array_header_t *alts = NULL;
    apr_status_t rv;

    order = NULL;
    if (req->order_url) {
        rv = resume_order(&order, is, req->order_url, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (order && order->status != ACME_STATE_PENDING && order->status != ACME_STATE_READY) {
            res->key = req->key; /* finalized earlier with this key */
        }
    }
    if (!order) {
        rv = acme_order_new_profile(&order, is->pprob, is->client, req->names, req->replaces,
                                    req->profile, p);
        /* RFC 9773 section 5: a CA that will not take "replaces" here gets the order once more
         * without it; renewal must not depend on it. */
        if (rv != APR_SUCCESS && req->replaces && acme_ari_replaces_refused(*is->pprob)) {
            acme_log(is->log, ACME_LOG_INFO, rv,
                     "ACME00032: %s: the CA refused replaces=%s (%s); ordering without it",
                     req->domain, req->replaces, acme_problem_describe(*is->pprob, p));
            rv = acme_order_new_profile(&order, is->pprob, is->client, req->names, NULL,
                                        req->profile, p);
        }
        if (rv != APR_SUCCESS) {
            return step_failed(is, rv, "creating the order", *is->pprob, p);
        }
    }
    res->order_url = order->url;
    if (req->on_order) {
        req->on_order(req->baton, order->url);
    }
    acme_log(is->log, ACME_LOG_INFO, APR_SUCCESS, "ACME00026: %s: order %s is %s", req->domain,
             order->url, acme_state_name(order->status));

    if (order->status == ACME_STATE_PENDING) {
        rv = start_authzs(is, order, res, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        rv = await_order(is, &order, ACME_STATE_PENDING, "validation", p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    if (order->status == ACME_STATE_INVALID) {
        explain_invalid(is, order, p);
        return ACME_EINVALID;
    }
    if (order->status == ACME_STATE_READY) {
        if (req->reuse_key && acme_key_type(req->reuse_key) == req->key_type) {
            res->key = req->reuse_key;
            rv = APR_SUCCESS;
        } else {
            rv = acme_key_generate(&res->key, req->key_type, p);
        }
        if (rv == APR_SUCCESS) {
            rv = acme_csr_create(&csr, &csr_len, res->key, req->names, p);
        }
        /* The key is handed over before finalize: if the answer is lost, the next attempt
         * resumes this order with it instead of asking for a second certificate. */
        if (rv == APR_SUCCESS && req->on_key) {
            rv = req->on_key(req->baton, res->key);
        }
        if (rv != APR_SUCCESS) {
            return step_failed(is, rv, "making the key and certificate request", NULL, p);
        }
        rv = acme_order_finalize(&order, is->pprob, is->client, order, csr, csr_len, p);
        if (rv != APR_SUCCESS) {
            return step_failed(is, rv, "finalizing the order", *is->pprob, p);
        }
        rv = await_order(is, &order, ACME_STATE_READY, "the certificate", p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    /* An order finalized by an earlier attempt may still be processing: wait for it as if we
     * had just finalized it, rather than fail the attempt. */
    if (order->status == ACME_STATE_PROCESSING && res->key) {
        rv = await_order(is, &order, ACME_STATE_PROCESSING, "the certificate", p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    if (order->status != ACME_STATE_VALID || !res->key) {
        /* A valid order we did not finalize ourselves has a certificate for a key we lack. */
        return stop_with(is->log, is->pprob, ACME_EINVALID, p, "ACME00027",
                         "order %s ended %s%s%s; a new order is made at the next attempt",
                         order->url, acme_state_name(order->status), order->error ? ": " : "",
                         order->error ? acme_problem_describe(order->error, p) : "");
    }
    rv = acme_chain_download(&res->chain_pem, &res->chain_len, &alts, is->pprob, is->client,
                             order->certificate, p);
    if (rv != APR_SUCCESS) {
        return step_failed(is, rv, "downloading the certificate", *is->pprob, p);
    }
    res->alt_chains = apr_array_make(p, 0, sizeof(const char *));
    /* Alternates cost a request each: fetched only for a caller that will use them. */
    if (req->alternates || req->preferred_chain) {
        alternates(is, res, alts, p);
    }
    return APR_SUCCESS;
}

apr_status_t acme_issue(acme_issue_result_t **presult, acme_problem_t **pprob,
                        acme_client_t *client, const acme_issue_req_t *req, apr_pool_t *p)
{
    acme_problem_t *prob = NULL;
    acme_issue_result_t *res = apr_pcalloc(p, sizeof(*res));
    issue_t is;
    apr_status_t rv;

    memset(&is, 0, sizeof(is));
    is.client = client;
    is.req = req;
    is.log = acme_client_log(client);
    is.clock = acme_client_clock(client);
    is.deadline = is.clock->now(is.clock->baton) +
                  (req->max_wait > 0 ? req->max_wait : apr_time_from_sec(300));
    is.pprob = &prob;
    is.published = apr_array_make(p, 4, sizeof(published_t));
    if (req->responders && req->responders->nelts) {
        is.responders = req->responders;
    } else {
        apr_array_header_t *arr = apr_array_make(p, 1, sizeof(acme_responder_t *));
        acme_responder_t *r = apr_palloc(p, sizeof(*r));
        acme_responder_http01(r, req->tokens);
        APR_ARRAY_PUSH(arr, acme_responder_t *) = r;
        is.responders = arr;
    }

    if (!acme_client_kid(client) || !req->names || req->names->nelts == 0) {
        return APR_EINVAL;
    }
    rv = run(&is, res, p);
    /* While the CA may still validate (we only stopped waiting), the answers stay up until they
     * expire; the order is resumed at the next attempt. */
    if (rv != ACME_ETIMEOUT && rv != ACME_ECANCELLED) {
        unpublish(&is, p);
    }
    if (rv != APR_SUCCESS) {
        if (pprob && prob) {
            *pprob = prob;
        }
        return rv;
    }
    res->profile = req->profile;
    acme_log(is.log, ACME_LOG_NOTICE, APR_SUCCESS,
             "ACME00028: %s: certificate issued%s%s (%d of %d authorizations reused, %u requests "
             "to the CA so far)",
             req->domain, req->profile ? " under the profile " : "",
             req->profile ? req->profile : "", res->authz_reused, res->authz_total,
             acme_client_requests(client));
    *presult = res;
    return APR_SUCCESS;
}
