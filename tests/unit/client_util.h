/* client_util.h - what the fake-CA tests of the client (test_client.c) and of the issuance
 * (test_issue.c, test_issue_resume.c) share: the usual answers and a client set up against a fake
 * CA. */
#ifndef CLIENT_UTIL_H
#define CLIENT_UTIL_H

#include "acme_issue.h"
#include "fake_ca.h"

#define DIR_OK                                                                                     \
    {                                                                                              \
        "GET", CA "/dir", 200, "Content-Type: application/json\n", FAKE_DIRECTORY, 0               \
    }
#define NONCE_OK                                                                                   \
    {                                                                                              \
        "HEAD", CA "/nonce", 200, "", "", 0                                                        \
    }
#define JSON    "Content-Type: application/json\n"
#define PROBLEM "Content-Type: application/problem+json\n"

/* An authorization of name with an http-01 and a dns-01 challenge (test_issue*.c). */
#define TOKEN_A "tokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define TOKEN_B "tokenBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

#define AUTHZ(name, status, token, chstatus)                                                       \
    "{\"status\":\"" status "\",\"identifier\":{\"type\":\"dns\",\"value\":\"" name "\"},"         \
    "\"challenges\":[{\"type\":\"http-01\",\"url\":\"" CA "/chal/" name                            \
    "/http\",\"token\":\"" token "\",\"status\":\"" chstatus                                       \
    "\"},{\"type\":\"dns-01\",\"url\":\"" CA "/chal/" name "/dns\",\"token\":\"" token             \
    "\",\"status\":\"" chstatus "\"}]}"

#define CHAIN_PEM "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

#define ORDER(status, extra)                                                                       \
    "{\"status\":\"" status "\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.test\"},"         \
    "{\"type\":\"dns\",\"value\":\"b.test\"}],\"authorizations\":[\"" CA "/authz/a\",\"" CA        \
    "/authz/b\"],\"finalize\":\"" CA "/finalize/1\"" extra "}"

typedef struct fixture_t {
    apr_pool_t *p;
    fake_ca_t *ca;
    unit_log_t *log;
    unit_clock_t *clock;
    acme_client_t *client;
    acme_key_t *account_key;
} fixture_t;

static inline fixture_t *fixture(apr_pool_t *p, fake_ca_t *ca, int with_account)
{
    fixture_t *f = apr_pcalloc(p, sizeof(*f));

    f->p = p;
    f->ca = ca;
    f->log = unit_log_make(p);
    f->clock = unit_clock_make(p, apr_time_from_sec(1800000000));
    ca->http.log = &f->log->log;
    assert_int_equal(
        acme_client_create(&f->client, CA "/dir", &ca->http, &f->log->log, &f->clock->clock, p),
        APR_SUCCESS);
    assert_int_equal(acme_key_generate(&f->account_key, ACME_KEY_EC256, p), APR_SUCCESS);
    if (with_account) {
        acme_client_set_account(f->client, f->account_key, CA "/acct/1");
    }
    return f;
}

static inline apr_array_header_t *names2(apr_pool_t *p)
{
    apr_array_header_t *names = apr_array_make(p, 2, sizeof(const char *));
    APR_ARRAY_PUSH(names, const char *) = "a.test";
    APR_ARRAY_PUSH(names, const char *) = "b.test";
    return names;
}

#endif /* CLIENT_UTIL_H */
