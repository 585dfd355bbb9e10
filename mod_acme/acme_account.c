/* acme_account.c - newAccount: create, find (onlyReturnExisting), external account binding; an
 * account shared through the cluster's folder (import, publish). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <apr_strings.h>

#include "acme_issue.h"
#include "acme_jws.h"

static apr_status_t new_account(const char **purl, acme_problem_t **pprob, acme_client_t *client,
                                const acme_key_t *key, json_t *payload, apr_pool_t *p)
{
    const char *url;
    acme_resp_t *resp;
    apr_status_t rv;

    /* The directory was checked to name newAccount: only its own failure can come back. */
    rv = acme_client_resource(&url, pprob, client, "newAccount");
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = acme_client_post(&resp, pprob, client, url, payload, key, 1, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* 201 for a new account, 200 for an existing one; both carry the URL (section 7.3). */
    if (!resp->location) {
        acme_log(acme_client_log(client), ACME_LOG_DEBUG, ACME_EPROTO,
                 "newAccount answered %d without a Location", resp->status);
        return ACME_EPROTO;
    }
    if (resp->json && acme_json_str(resp->json, "status") &&
        acme_state_parse(acme_json_str(resp->json, "status")) != ACME_STATE_VALID) {
        acme_log(acme_client_log(client), ACME_LOG_DEBUG, ACME_EUNAUTHORIZED, "account %s is %s",
                 resp->location, acme_json_str(resp->json, "status"));
        return ACME_EUNAUTHORIZED;
    }
    *purl = apr_pstrdup(p, resp->location);
    return APR_SUCCESS;
}

apr_status_t acme_account_register(const char **purl, acme_problem_t **pprob, acme_client_t *client,
                                   const acme_key_t *key, const acme_account_req_t *req,
                                   apr_pool_t *p)
{
    json_t *payload = acme_json_pool(p, json_object());
    json_t *contacts = json_array();
    apr_status_t rv;
    int i;

    json_object_set_new(payload, "contact", contacts);
    for (i = 0; req->contacts && i < req->contacts->nelts; i++) {
        json_array_append_new(contacts, json_string(APR_ARRAY_IDX(req->contacts, i, const char *)));
    }
    if (req->terms_agreed) {
        json_object_set_new(payload, "termsOfServiceAgreed", json_true());
    }
    if (req->eab_kid && req->eab_hmac) {
        json_t *eab;
        const char *url;
        rv = acme_client_resource(&url, pprob, client, "newAccount");
        if (rv != APR_SUCCESS) {
            return rv;
        }
        rv = acme_jws_eab(&eab, key, req->eab_kid, req->eab_hmac, url, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        json_object_set(payload, "externalAccountBinding", eab);
    }
    return new_account(purl, pprob, client, key, payload, p);
}

apr_status_t acme_account_find(const char **purl, acme_problem_t **pprob, acme_client_t *client,
                               const acme_key_t *key, apr_pool_t *p)
{
    json_t *payload = acme_json_pool(p, json_pack("{s:b}", "onlyReturnExisting", 1));

    return new_account(purl, pprob, client, key, payload, p);
}

/* --- sharing through the cluster's folder (ACMECluster, docs/cluster.md) --- */

/* The account in folder dir of store (accounts/<ca-id>[-<variant>]), checked as
 * acme_account_setup checks the store's own: walked without following links, sizes bounded, the
 * key parses and account.json names this very key's thumbprint, the CA and a URL. APR_ENOENT
 * when there is no key; anything else wrong is a status with *pwhy. */
static apr_status_t share_check(char **ppem, apr_size_t *plen, json_t **pinfo, const char **pwhy,
                                acme_store_t *store, const char *dir, const char *ca_url,
                                apr_pool_t *p)
{
    const char *thumb, *url;
    acme_key_t *key;
    json_t *info;
    apr_status_t rv;

    rv = acme_store_read(ppem, plen, store, apr_pstrcat(p, dir, "/account.key", NULL),
                         ACME_STORE_KEY_MAX, p);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return rv;
    }
    if (rv != APR_SUCCESS) {
        *pwhy = apr_psprintf(p, "account.key cannot be read (%s)", acme_strerror(rv, p));
        return rv;
    }
    rv = acme_key_from_pem(&key, *ppem, *plen, p);
    if (rv == APR_SUCCESS) {
        rv = acme_key_thumbprint(&thumb, key, p);
    }
    if (rv != APR_SUCCESS) {
        *pwhy = apr_psprintf(p, "account.key is not a key (%s)", acme_strerror(rv, p));
        return rv;
    }
    rv = acme_store_json_read(&info, store, apr_pstrcat(p, dir, "/account.json", NULL), p);
    if (rv != APR_SUCCESS) {
        *pwhy = apr_psprintf(p, "account.json cannot be read (%s)", acme_strerror(rv, p));
        return APR_STATUS_IS_ENOENT(rv) ? ACME_EBADSTORE : rv;
    }
    url = acme_json_str(info, "url");
    if (!acme_json_str(info, "key") || strcmp(acme_json_str(info, "key"), thumb) != 0) {
        *pwhy = "account.json belongs to another key";
        return ACME_EBADSTORE;
    }
    if (!acme_json_str(info, "ca") || strcmp(acme_json_str(info, "ca"), ca_url) != 0) {
        *pwhy = "account.json names another CA";
        return ACME_EBADSTORE;
    }
    if (!url || strncmp(url, "https://", 8) != 0 || strlen(url) > 2048 ||
        strcspn(url, "\x01\x02\x03\x04\x05\x06\x07\x08\t\n\v\f\r\x0e\x0f\x10\x11\x12\x13\x14\x15"
                     "\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f \"") != strlen(url)) {
        *pwhy = "account.json holds no account URL (https://...)";
        return ACME_EBADSTORE;
    }
    *pinfo = info;
    return APR_SUCCESS;
}

/* Puts key and info as folder dir of store in one step: both written (each fsynced) in a
 * temporary folder beside it, then renamed to dir. A dir that exists (another node's, or an
 * account made meanwhile) stays: APR_EEXIST. */
static apr_status_t share_put(acme_store_t *store, const char *dir, const char *pem, apr_size_t len,
                              const json_t *info, apr_pool_t *p)
{
    const char *tmp = apr_psprintf(p, "accounts/.tmp.%" APR_PID_T_FMT ".%" APR_TIME_T_FMT, getpid(),
                                   apr_time_now());
    apr_status_t rv;

    rv = acme_store_write(store, apr_pstrcat(p, tmp, "/account.key", NULL), pem, len,
                          APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    if (rv == APR_SUCCESS) {
        rv = acme_store_json_write(store, apr_pstrcat(p, tmp, "/account.json", NULL), info, p);
    }
    if (rv == APR_SUCCESS) {
        rv = acme_store_rename(store, tmp, dir, p);
        if (rv == APR_FROM_OS_ERROR(ENOTEMPTY) || rv == APR_FROM_OS_ERROR(ENOTDIR)) {
            rv = APR_EEXIST;
        }
    }
    if (rv != APR_SUCCESS) {
        acme_store_remove(store, tmp, p);
    }
    return rv;
}

apr_status_t acme_account_share_import(acme_store_t *store, acme_store_t *shared, const char *dir,
                                       const char *ca_url, const acme_log_t *log, apr_pool_t *p)
{
    const char *why = NULL;
    char *pem;
    apr_size_t len;
    json_t *info;
    apr_status_t rv;

    rv = acme_store_read(&pem, &len, store, apr_pstrcat(p, dir, "/account.key", NULL),
                         ACME_STORE_KEY_MAX, p);
    if (!APR_STATUS_IS_ENOENT(rv)) {
        return APR_EEXIST; /* this node's own account (or key) comes first */
    }
    rv = share_check(&pem, &len, &info, &why, shared, dir, ca_url, p);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return rv;
    }
    if (rv != APR_SUCCESS) {
        acme_log(log, ACME_LOG_WARN, rv,
                 "ACME04019: the account for %s in the shared folder %s is refused: %s; this "
                 "node registers its own and publishes it in its place",
                 ca_url, acme_store_path(shared, dir, p), why);
        return rv;
    }
    rv = share_put(store, dir, pem, len, info, p);
    if (rv != APR_SUCCESS) {
        acme_log(log, ACME_LOG_ERR, rv,
                 "ACME04022: the shared account for %s cannot be written to %s (%s); this node "
                 "goes on without it",
                 ca_url, acme_store_path(store, dir, p), acme_strerror(rv, p));
        return rv;
    }
    acme_log(log, ACME_LOG_NOTICE, APR_SUCCESS,
             "ACME04018: the account %s for %s imported from the shared folder %s: no new "
             "registration",
             acme_json_str(info, "url"), ca_url, acme_store_path(shared, dir, p));
    return APR_SUCCESS;
}

apr_status_t acme_account_share_publish(acme_store_t *store, acme_store_t *shared, const char *dir,
                                        const char *ca_url, const acme_log_t *log, apr_pool_t *p)
{
    const char *why = NULL, *why_own = NULL;
    char *pem, *own_pem;
    apr_size_t len, own_len;
    json_t *info, *own;
    apr_status_t rv;

    rv = share_check(&own_pem, &own_len, &own, &why_own, store, dir, ca_url, p);
    if (rv != APR_SUCCESS) {
        return rv; /* not ours to publish: setup just wrote and checked it */
    }
    rv = share_check(&pem, &len, &info, &why, shared, dir, ca_url, p);
    if (rv == APR_SUCCESS) {
        if (strcmp(acme_json_str(info, "url"), acme_json_str(own, "url")) != 0) {
            acme_log(log, ACME_LOG_INFO, APR_SUCCESS,
                     "ACME04021: the shared folder %s holds the account %s for %s already (the "
                     "first published wins): not published; this node keeps its own, %s",
                     acme_store_path(shared, dir, p), acme_json_str(info, "url"), ca_url,
                     acme_json_str(own, "url"));
        }
        return APR_EEXIST;
    }
    if (!APR_STATUS_IS_ENOENT(rv)) {
        /* Refused on import (ACME04019): replaced, as a bad shared set is. The removal walks
         * without following links: a link is removed, never what it points to. */
        acme_store_remove(shared, dir, p);
    }
    rv = share_put(shared, dir, own_pem, own_len, own, p);
    if (APR_STATUS_IS_EEXIST(rv)) {
        acme_log(log, ACME_LOG_INFO, APR_SUCCESS,
                 "ACME04021: another node published its account for %s to %s first: not "
                 "published; this node keeps its own, %s",
                 ca_url, acme_store_path(shared, dir, p), acme_json_str(own, "url"));
        return rv;
    }
    if (rv != APR_SUCCESS) {
        acme_log(log, ACME_LOG_WARN, rv,
                 "ACME04022: the account %s for %s cannot be published to %s (%s); the other "
                 "nodes register their own",
                 acme_json_str(own, "url"), ca_url, acme_store_path(shared, dir, p),
                 acme_strerror(rv, p));
        return rv;
    }
    acme_log(log, ACME_LOG_NOTICE, APR_SUCCESS,
             "ACME04020: the account %s for %s published to the shared folder %s",
             acme_json_str(own, "url"), ca_url, acme_store_path(shared, dir, p));
    return APR_SUCCESS;
}
