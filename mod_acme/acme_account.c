/* acme_account.c - newAccount: create, find (onlyReturnExisting), external account binding. */
#include <apr_strings.h>

#include "acme_jws.h"
#include "acme_order.h"

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
