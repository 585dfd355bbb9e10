/* acmectl_ca.c - what the commands that talk to the CA share (revoke, account): the accounts of
 * the store and a client for their CA.
 *
 * accounts/ is the User's folder: every file is read through the store's no-follow walkers and
 * bounded, and what it says (the CA's URL) is only ever used to talk to that CA.
 */
#include <string.h>

#include <apr_strings.h>

#include "config.h"

#include "acme_http.h"
#include "acme_store_ctl.h"
#include "acmectl.h"

static apr_status_t account_load(acmectl_account_t **pacct, acmectl_t *ctx, const char *dir,
                                 int keys, apr_pool_t *p)
{
    acmectl_account_t *a = apr_pcalloc(p, sizeof(*a));
    json_t *info = NULL;
    char *pem;
    apr_size_t len;
    apr_status_t rv;

    a->dir = apr_pstrcat(p, "accounts/", dir, NULL);
    rv = acme_store_json_read(&info, ctx->store, apr_pstrcat(p, a->dir, "/account.json", NULL), p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    a->ca = acme_json_str(info, "ca");
    a->url = acme_json_str(info, "url");
    a->thumb = acme_json_str(info, "key");
    if (!a->ca || !a->url || !a->thumb || strncmp(a->ca, "https://", 8) != 0) {
        rv = ACME_EBADSTORE;
        goto out;
    }
    a->ca = apr_pstrdup(p, a->ca);
    a->url = apr_pstrdup(p, a->url);
    a->thumb = apr_pstrdup(p, a->thumb);
    if (keys) {
        const char *thumb = NULL;

        rv = acme_store_read(&pem, &len, ctx->store, apr_pstrcat(p, a->dir, "/account.key", NULL),
                             ACME_STORE_KEY_MAX, p);
        if (rv == APR_SUCCESS) {
            rv = acme_key_from_pem(&a->key, pem, len, p);
        }
        if (rv == APR_SUCCESS) {
            rv = acme_key_thumbprint(&thumb, a->key, p);
        }
        /* The module uses the URL only with the key it was registered with: so do we. */
        if (rv == APR_SUCCESS && strcmp(thumb, a->thumb) != 0) {
            rv = ACME_EBADSTORE;
        }
    }
out:
    if (rv == APR_SUCCESS) {
        *pacct = a;
    }
    return rv;
}

apr_status_t acmectl_accounts(apr_array_header_t **paccts, acmectl_t *ctx, int keys)
{
    apr_array_header_t *names = NULL, *accts;
    apr_status_t rv;
    int i;

    accts = apr_array_make(ctx->pool, 4, sizeof(acmectl_account_t *));
    rv = acme_store_list(&names, ctx->store, "accounts", ctx->pool);
    if (APR_STATUS_IS_ENOENT(rv)) {
        *paccts = accts;
        return APR_SUCCESS;
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    for (i = 0; i < names->nelts; i++) {
        const char *n = APR_ARRAY_IDX(names, i, const char *);
        acmectl_account_t *a;

        /* Account folders only: CA ids and their variants; deactivated ones and leftovers
         * begin with '.' or carry a suffix the store does not take. */
        if (n[0] == '.' || !acme_store_name_ok(n) || strstr(n, ".deactivated")) {
            continue;
        }
        rv = account_load(&a, ctx, n, keys, ctx->pool);
        if (APR_STATUS_IS_ENOENT(rv)) {
            continue; /* a key without a registration yet */
        }
        if (rv != APR_SUCCESS) {
            acmectl_err(ctx, "accounts/%s: cannot be read (%s); left out",
                        acme_log_safe(n, 255, ctx->pool), acme_strerror(rv, ctx->pool));
            continue;
        }
        APR_ARRAY_PUSH(accts, acmectl_account_t *) = a;
    }
    *paccts = accts;
    return APR_SUCCESS;
}

apr_status_t acmectl_client(acme_client_t **pclient, acmectl_t *ctx, const char *ca_url,
                            const char *ca_file, const acmectl_account_t *acct)
{
    acme_http_opts_t hopts;
    acme_http_t *http;
    acme_client_t *client;
    apr_status_t rv;

    memset(&hopts, 0, sizeof(hopts));
    hopts.ca_file = ca_file;
    hopts.proxy = ctx->proxy; /* --proxy; without it libcurl's https_proxy from the environment */
    hopts.user_agent = "mod_acme-acmectl/" PACKAGE_VERSION;
    rv = acme_http_global_init();
    if (rv == APR_SUCCESS) {
        rv = acme_http_curl_create(&http, &hopts, &ctx->log, ctx->pool);
    }
    if (rv == APR_SUCCESS) {
        rv = acme_client_create(&client, ca_url, http, &ctx->log, acme_clock_system(), ctx->pool);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (acct) {
        acme_client_set_account(client, acct->key, acct->url);
    }
    *pclient = client;
    return APR_SUCCESS;
}

void acmectl_ca_error(acmectl_t *ctx, const char *what, apr_status_t rv, const acme_problem_t *prob)
{
    acmectl_err(ctx, "%s: %s", what,
                prob ? acme_log_safe(acme_problem_describe(prob, ctx->pool), 1024, ctx->pool)
                     : acme_strerror(rv, ctx->pool));
}
