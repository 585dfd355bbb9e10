/* acme-drive - obtains a certificate with the mod_acme core alone, no httpd: account from the
 * store (created on first use), order, challenges, finalize, download, then stage and promote the
 * set in the store. The integration tests run it against pebble; it is also a handy tool.
 *
 *   acme-drive -d DIRECTORY_URL -s STORE [-c CA_FILE] [-k ec256] [-e EMAIL] [-a] [-v] NAME...
 *
 * Prints "key: value" lines on success (requests, serial, names, chain, generation) and exits 0;
 * prints the error and exits 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_getopt.h>
#include <apr_strings.h>

#include "acme_issue.h"

static void log_stderr(void *baton, acme_log_level_e level, apr_status_t rv, const char *msg)
{
    static const char *const names[] = {"error", "warn", "notice", "info", "debug", "trace"};
    char safe[8192];
    (void)baton;
    (void)rv;
    /* The core's messages carry the CA's text: escaped for a terminal, as httpd does for its
     * error log. */
    fprintf(stderr, "[%s] %s\n", names[level], acme_log_escape(safe, sizeof(safe), msg));
}

static int usage(void)
{
    fprintf(stderr, "usage: acme-drive -d DIRECTORY_URL -s STORE [-c CA_FILE] [-k KEYTYPE] "
                    "[-e EMAIL] [-a] [-v] [-t SECONDS] NAME...\n");
    return 2;
}

static int fail(const char *what, apr_status_t rv, const acme_problem_t *prob, apr_pool_t *p)
{
    fprintf(stderr, "acme-drive: %s: %s%s%s\n", what, acme_strerror(rv, p), prob ? ": " : "",
            prob ? acme_problem_describe(prob, p) : "");
    return 1;
}

int main(int argc, const char *const *argv)
{
    static const apr_getopt_option_t opts[] = {
        {"directory", 'd', 1, "ACME directory URL"},
        {"store", 's', 1, "store folder"},
        {"ca-file", 'c', 1, "trust roots for the CA's TLS"},
        {"key-type", 'k', 1, "certificate key type"},
        {"email", 'e', 1, "account contact"},
        {"agree", 'a', 0, "accept the CA's terms of service"},
        {"verbose", 'v', 0, "log each request"},
        {"timeout", 't', 1, "seconds to wait for the order"},
        {NULL, 0, 0, NULL},
    };
    apr_pool_t *p;
    apr_getopt_t *g;
    const char *arg, *dir_url = NULL, *store_dir = NULL, *why = NULL;
    acme_http_opts_t hopts;
    acme_account_req_t areq;
    acme_issue_req_t ireq;
    acme_issue_result_t *res;
    acme_problem_t *prob = NULL;
    acme_log_t log = {log_stderr, NULL, ACME_LOG_NOTICE};
    acme_http_t *http;
    acme_client_t *client;
    acme_store_t *store;
    acme_certset_t *set;
    apr_array_header_t *names, *contacts, *sans;
    acme_key_type_e key_type = ACME_KEY_EC256;
    long timeout_s = 300;
    int opt, i;
    apr_status_t rv;

    apr_app_initialize(&argc, &argv, NULL);
    atexit(apr_terminate);
    apr_pool_create(&p, NULL);
    memset(&hopts, 0, sizeof(hopts));
    memset(&areq, 0, sizeof(areq));
    memset(&ireq, 0, sizeof(ireq));
    contacts = apr_array_make(p, 1, sizeof(const char *));

    apr_getopt_init(&g, p, argc, argv);
    while ((rv = apr_getopt_long(g, opts, &opt, &arg)) == APR_SUCCESS) {
        switch (opt) {
        case 'd':
            dir_url = arg;
            break;
        case 's':
            store_dir = arg;
            break;
        case 'c':
            hopts.ca_file = arg;
            break;
        case 'k':
            if (acme_key_type_parse(&key_type, arg) != APR_SUCCESS) {
                fprintf(stderr, "acme-drive: unknown key type '%s'\n", arg);
                return 2;
            }
            break;
        case 'e':
            APR_ARRAY_PUSH(contacts, const char *) = apr_pstrcat(p, "mailto:", arg, NULL);
            break;
        case 'a':
            areq.terms_agreed = 1;
            break;
        case 'v':
            log.max_level = ACME_LOG_DEBUG;
            break;
        case 't':
            timeout_s = atol(arg);
            break;
        }
    }
    if (rv != APR_EOF || !dir_url || !store_dir || g->ind >= argc) {
        return usage();
    }
    names = apr_array_make(p, argc - g->ind, sizeof(const char *));
    for (i = g->ind; i < argc; i++) {
        APR_ARRAY_PUSH(names, const char *) = argv[i];
    }
    areq.contacts = contacts;

    rv = acme_http_global_init();
    if (rv == APR_SUCCESS) {
        rv = acme_http_curl_create(&http, &hopts, &log, p);
    }
    if (rv != APR_SUCCESS) {
        return fail("transport", rv, NULL, p);
    }
    rv = acme_client_create(&client, dir_url, http, &log, NULL, p);
    if (rv == APR_SUCCESS) {
        rv = acme_store_open(&store, store_dir, p);
    }
    if (rv != APR_SUCCESS) {
        return fail("setup", rv, NULL, p);
    }
    rv = acme_account_setup(client, store, &areq, ACME_KEY_EC256, &prob, p);
    if (rv != APR_SUCCESS) {
        return fail("account", rv, prob, p);
    }

    ireq.domain = APR_ARRAY_IDX(names, 0, const char *);
    ireq.names = names;
    ireq.key_type = key_type;
    ireq.max_wait = apr_time_from_sec(timeout_s);
    ireq.alternates = 1;
    rv = acme_tokens_hash_create(&ireq.tokens, p);
    if (rv == APR_SUCCESS) {
        rv = acme_issue(&res, &prob, client, &ireq, p);
    }
    if (rv != APR_SUCCESS) {
        return fail("issuance", rv, prob, p);
    }
    rv = acme_store_stage(store, ireq.domain, res->key, res->chain_pem, res->chain_len, NULL, &why,
                          p);
    if (rv == APR_SUCCESS) {
        rv = acme_store_promote(store, ireq.domain, names, apr_time_now(), &why, p);
    }
    if (rv == APR_SUCCESS) {
        rv = acme_store_load(&set, store, ireq.domain, 0, &why, p);
    }
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "acme-drive: store: %s%s%s\n", acme_strerror(rv, p), why ? ": " : "",
                why ? why : "");
        return 1;
    }
    rv = acme_cert_names(&sans, APR_ARRAY_IDX(set->chain, 0, acme_cert_t *), p);
    if (rv != APR_SUCCESS) {
        return fail("reading the certificate", rv, NULL, p);
    }
    printf("requests: %u\n", acme_client_requests(client));
    printf("authorizations: %d (%d reused)\n", res->authz_total, res->authz_reused);
    printf("serial: %s\n", acme_cert_serial_hex(APR_ARRAY_IDX(set->chain, 0, acme_cert_t *), p));
    printf("names: %s\n", apr_array_pstrcat(p, sans, ' '));
    printf("chain: %d\n", set->chain->nelts);
    printf("alternates: %d\n", res->alt_chains->nelts);
    printf("generation: %d\n", set->generation);
    printf("fullchain: %s\n", set->chain_file);
    printf("privkey: %s\n", set->key_file);
    return 0;
}
