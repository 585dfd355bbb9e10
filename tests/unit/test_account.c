/* test_account.c - the account through a fake CA and a store: the external account binding
 * (RFC 8555 section 7.3.4) sent in newAccount and checked with OpenSSL's HMAC, a binding the CA
 * refuses (a configuration error that names the key ID, never the key), a CA that requires one,
 * and no binding once the account is known; an account shared through a cluster's folder
 * (published once, imported instead of registered, hostile copies refused). */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "acme_issue.h"
#include "acme_jws.h"
#include "fake_ca.h"

#define DIR_OK                                                                                     \
    {                                                                                              \
        "GET", CA "/dir", 200, "Content-Type: application/json\n", FAKE_DIRECTORY, 0               \
    }
#define NONCE_OK                                                                                   \
    {                                                                                              \
        "HEAD", CA "/nonce", 200, "", "", 0                                                        \
    }
#define PROBLEM "Content-Type: application/problem+json\n"

/* The MAC key: bytes 0x00..0x1f, as the CA would hand it out (base64url). */
#define MAC_KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

/* The running test's store folder, removed by the teardown whatever the outcome. */
static char test_dir[64];

typedef struct fixture_t {
    apr_pool_t *p;
    acme_store_t *store;
    fake_ca_t *ca;
    unit_log_t *log;
    acme_client_t *client;
    acme_account_req_t req;
} fixture_t;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static fixture_t *fixture(apr_pool_t *p, fake_ca_t *ca, const char *eab_kid)
{
    fixture_t *f = apr_pcalloc(p, sizeof(*f));

    f->p = p;
    f->ca = ca;
    strcpy(test_dir, "/tmp/acme-account-test-XXXXXX");
    assert_non_null(mkdtemp(test_dir));
    assert_int_equal(acme_store_open(&f->store, apr_pstrcat(p, test_dir, "/store", NULL), p),
                     APR_SUCCESS);
    f->log = unit_log_make(p);
    ca->http.log = &f->log->log;
    assert_int_equal(acme_client_create(&f->client, CA "/dir", &ca->http, &f->log->log, NULL, p),
                     APR_SUCCESS);
    f->req.terms_agreed = 1;
    f->req.eab_kid = eab_kid;
    f->req.eab_hmac = eab_kid ? MAC_KEY : NULL;
    return f;
}

static int account_teardown(void **state)
{
    if (test_dir[0]) {
        nftw(test_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        test_dir[0] = '\0';
    }
    return fake_ca_teardown(state);
}

#define ACCOUNT_TEST(f) cmocka_unit_test_setup_teardown(f, fake_ca_setup, account_teardown)

/* base64url of bytes by OpenSSL's encoder (not the code under test). */
static const char *ossl_b64u(apr_pool_t *p, const unsigned char *data, int len)
{
    char *out = apr_palloc(p, (apr_size_t)(4 * ((len + 2) / 3) + 1)), *c;
    int n = EVP_EncodeBlock((unsigned char *)out, data, len);

    while (n > 0 && out[n - 1] == '=') {
        n--;
    }
    out[n] = '\0';
    for (c = out; *c; c++) {
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    }
    return out;
}

static json_t *b64u_json(apr_pool_t *p, const char *s)
{
    const unsigned char *raw;
    apr_size_t len;

    assert_int_equal(acme_b64u_decode(&raw, &len, s, strlen(s), p), APR_SUCCESS);
    return acme_json_pool(p, json_loadb((const char *)raw, len, 0, NULL));
}

/* No log line and no problem carries the MAC key. */
static void key_never_shown(const fixture_t *f, const acme_problem_t *prob)
{
    int i;

    for (i = 0; i < f->log->lines->nelts; i++) {
        assert_null(strstr(APR_ARRAY_IDX(f->log->lines, i, const char *), MAC_KEY));
    }
    assert_true(!prob || !strstr(prob->detail, MAC_KEY));
}

static void binding_sent_in_new_account(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/acct", 201, "Content-Type: application/json\nLocation: " CA "/acct/1\n",
         "{\"status\":\"valid\"}", 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), "kid-1");
    acme_problem_t *prob = NULL;
    json_t *payload, *eab, *hdr, *jwk;
    unsigned char key[32], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    const char *input;
    int i;

    assert_int_equal(acme_account_setup(f->client, f->store, &f->req, ACME_KEY_EC256, &prob, f->p),
                     APR_SUCCESS);
    assert_string_equal(acme_client_kid(f->client), CA "/acct/1");
    /* The outer JWS is signed by the account key (jwk); the binding rides in its payload. */
    assert_true(fake_req(f->ca, 2)->has_jwk);
    payload = acme_json_pool(f->p, json_loads(fake_req(f->ca, 2)->payload, 0, NULL));
    eab = json_object_get(payload, "externalAccountBinding");
    assert_non_null(eab);
    assert_int_equal(json_object_size(eab), 3);
    hdr = b64u_json(f->p, acme_json_str(eab, "protected"));
    assert_int_equal(json_object_size(hdr), 3);
    assert_string_equal(acme_json_str(hdr, "alg"), "HS256");
    assert_string_equal(acme_json_str(hdr, "kid"), "kid-1");
    assert_string_equal(acme_json_str(hdr, "url"), CA "/acct"); /* newAccount, no nonce */
    assert_int_equal(acme_key_jwk(&jwk, acme_client_key(f->client), f->p), APR_SUCCESS);
    assert_true(json_equal(b64u_json(f->p, acme_json_str(eab, "payload")), jwk));
    for (i = 0; i < 32; i++) {
        key[i] = (unsigned char)i;
    }
    input = apr_pstrcat(f->p, acme_json_str(eab, "protected"), ".", acme_json_str(eab, "payload"),
                        NULL);
    assert_non_null(
        HMAC(EVP_sha256(), key, 32, (const unsigned char *)input, strlen(input), mac, &maclen));
    assert_string_equal(acme_json_str(eab, "signature"), ossl_b64u(f->p, mac, (int)maclen));
    key_never_shown(f, prob);

    /* Known now: no newAccount, so no binding either (the script has no more answers). */
    acme_client_set_account(f->client, NULL, NULL);
    assert_int_equal(acme_account_setup(f->client, f->store, &f->req, ACME_KEY_EC256, &prob, f->p),
                     APR_SUCCESS);
    assert_string_equal(acme_client_kid(f->client), CA "/acct/1");
}

/* A MAC that does not verify (pebble: unauthorized): a configuration error, retried after long,
 * that names the key ID and what the CA said; the account is not recorded. */
static void refused_binding_is_a_configuration_error(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/acct", 403, PROBLEM,
         "{\"type\":\"urn:ietf:params:acme:error:unauthorized\",\"detail\":\"external account "
         "binding JWS verification error: square/go-jose: error in cryptographic primitive\","
         "\"status\":403}",
         0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), "kid-1");
    acme_problem_t *prob = NULL;
    apr_status_t rv;

    rv = acme_account_setup(f->client, f->store, &f->req, ACME_KEY_EC256, &prob, f->p);
    assert_int_equal(rv, ACME_ECONFIG);
    assert_false(acme_status_is_transient(rv));
    assert_non_null(prob);
    assert_non_null(strstr(prob->detail, "refused the external account binding with key ID kid-1"));
    assert_non_null(strstr(prob->detail, "JWS verification error"));
    assert_non_null(strstr(prob->detail, "ACMEExternalAccountBinding"));
    assert_true(unit_log_has(f->log, "ACME00161: "));
    assert_null(acme_client_kid(f->client));
    key_never_shown(f, prob);
}

/* No binding configured and the CA requires one: the operator is told which directive. */
static void required_binding_names_the_directive(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/acct", 400, PROBLEM,
         "{\"type\":\"urn:ietf:params:acme:error:externalAccountRequired\",\"detail\":\"ACME "
         "server policy requires newAccount requests must include a value for the "
         "'externalAccountBinding' field\",\"status\":400}",
         0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), NULL);
    acme_problem_t *prob = NULL;
    apr_status_t rv;

    rv = acme_account_setup(f->client, f->store, &f->req, ACME_KEY_EC256, &prob, f->p);
    assert_int_equal(rv, ACME_EEAB);
    assert_false(acme_status_is_transient(rv));
    assert_null(strstr(fake_req(f->ca, 2)->payload, "externalAccountBinding"));
    assert_non_null(strstr(acme_problem_advice(rv), "set ACMEExternalAccountBinding"));
}

/* --- the account shared through a cluster's folder (docs/cluster.md) --- */

static acme_store_t *open_store(fixture_t *f, const char *name)
{
    acme_store_t *s;

    assert_int_equal(acme_store_open(&s, apr_pstrcat(f->p, test_dir, "/", name, NULL), f->p),
                     APR_SUCCESS);
    return s;
}

static const char *acct_dir(fixture_t *f)
{
    return apr_pstrcat(f->p, "accounts/", acme_store_ca_id(CA "/dir", f->p), NULL);
}

static const char *acct_file(fixture_t *f, const char *file)
{
    return apr_pstrcat(f->p, acct_dir(f), "/", file, NULL);
}

/* The first node registers and publishes; a second node (its own store, the same folder) takes
 * the account without a request; a third that registered its own meanwhile keeps it and leaves
 * the shared one alone (the first published wins). */
static void shared_account_published_imported_first_wins(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/acct", 201, "Content-Type: application/json\nLocation: " CA "/acct/1\n",
         "{\"status\":\"valid\"}", 0},
        {"POST", CA "/acct", 201, "Content-Type: application/json\nLocation: " CA "/acct/2\n",
         "{\"status\":\"valid\"}", 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), NULL);
    acme_store_t *second = open_store(f, "second"), *third = open_store(f, "third");
    acme_problem_t *prob = NULL;
    char *a, *b;
    apr_size_t alen, blen;
    json_t *info;

    f->req.shared = open_store(f, "shared");
    assert_int_equal(acme_account_setup(f->client, f->store, &f->req, ACME_KEY_EC256, &prob, f->p),
                     APR_SUCCESS);
    assert_true(unit_log_has(f->log, "ACME04020: the account " CA "/acct/1"));
    assert_int_equal(acme_store_read(&a, &alen, f->store, acct_file(f, "account.key"), 65536, f->p),
                     APR_SUCCESS);
    assert_int_equal(
        acme_store_read(&b, &blen, f->req.shared, acct_file(f, "account.key"), 65536, f->p),
        APR_SUCCESS);
    assert_string_equal(a, b);

    /* The second node: no request (the script's next answer stays for the third). */
    acme_client_set_account(f->client, NULL, NULL);
    assert_int_equal(acme_account_setup(f->client, second, &f->req, ACME_KEY_EC256, &prob, f->p),
                     APR_SUCCESS);
    assert_string_equal(acme_client_kid(f->client), CA "/acct/1");
    assert_true(unit_log_has(f->log, "ACME04018: the account " CA "/acct/1"));
    assert_int_equal(f->ca->requests->nelts, 3);
    assert_int_equal(acme_store_read(&b, &blen, second, acct_file(f, "account.key"), 65536, f->p),
                     APR_SUCCESS);
    assert_string_equal(a, b);

    /* The third registered alone (no shared folder then), and publishes later: not over. */
    f->req.shared = NULL;
    acme_client_set_account(f->client, NULL, NULL);
    assert_int_equal(acme_account_setup(f->client, third, &f->req, ACME_KEY_EC256, &prob, f->p),
                     APR_SUCCESS);
    assert_string_equal(acme_client_kid(f->client), CA "/acct/2");
    f->req.shared = open_store(f, "shared");
    assert_int_equal(acme_account_share_publish(third, f->req.shared, acct_dir(f), CA "/dir",
                                                &f->log->log, f->p),
                     APR_EEXIST);
    assert_true(unit_log_has(f->log, "ACME04021: the shared folder"));
    assert_int_equal(acme_store_json_read(&info, f->req.shared, acct_file(f, "account.json"), f->p),
                     APR_SUCCESS);
    assert_string_equal(acme_json_str(info, "url"), CA "/acct/1");
}

/* Every copy that fails the store's checks is refused with why, and nothing is imported. */
static void shared_account_hostile_refused(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/acct", 201, "Content-Type: application/json\nLocation: " CA "/acct/1\n",
         "{\"status\":\"valid\"}", 0},
    };
    static const struct {
        const char *what, *why;
    } cases[] = {
        {"other key", "account.json belongs to another key"},
        {"other CA", "account.json names another CA"},
        {"http URL", "holds no account URL"},
        {"URL with a newline", "holds no account URL"},
        {"not a key", "account.key is not a key"},
        {"key too large", "account.key cannot be read"},
        {"key a link", "account.key cannot be read"},
        {"folder a link", "account.key cannot be read"},
        {"no account.json", "account.json cannot be read"},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), NULL);
    acme_store_t *shared;
    acme_key_t *other;
    const char *other_pem, *dir = acct_dir(f);
    char *pem, *big;
    apr_size_t len, other_len;
    json_t *info;
    acme_problem_t *prob = NULL;
    int i;

    assert_int_equal(acme_account_setup(f->client, f->store, &f->req, ACME_KEY_EC256, &prob, f->p),
                     APR_SUCCESS);
    assert_int_equal(
        acme_store_read(&pem, &len, f->store, acct_file(f, "account.key"), 65536, f->p),
        APR_SUCCESS);
    assert_int_equal(acme_key_generate(&other, ACME_KEY_EC256, f->p), APR_SUCCESS);
    assert_int_equal(acme_key_to_pem(&other_pem, &other_len, other, f->p), APR_SUCCESS);
    big = apr_palloc(f->p, 70000);
    memset(big, 'A', 70000);
    for (i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++) {
        const char *name = apr_psprintf(f->p, "shared%d", i);
        acme_store_t *node = open_store(f, apr_psprintf(f->p, "node%d", i));
        const char *key_pem = pem;
        apr_size_t key_len = len;

        shared = open_store(f, name);
        assert_int_equal(acme_store_json_read(&info, f->store, acct_file(f, "account.json"), f->p),
                         APR_SUCCESS);
        info = json_deep_copy(info);
        if (strcmp(cases[i].what, "other key") == 0) {
            key_pem = other_pem;
            key_len = other_len;
        } else if (strcmp(cases[i].what, "other CA") == 0) {
            json_object_set_new(info, "ca", json_string("https://other.test/dir"));
        } else if (strcmp(cases[i].what, "http URL") == 0) {
            json_object_set_new(info, "url", json_string("http://ca.test/acct/1"));
        } else if (strcmp(cases[i].what, "URL with a newline") == 0) {
            json_object_set_new(info, "url", json_string(CA "/acct/1\nInjected: 1"));
        } else if (strcmp(cases[i].what, "not a key") == 0) {
            key_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
            key_len = strlen(key_pem);
        } else if (strcmp(cases[i].what, "key too large") == 0) {
            key_pem = big;
            key_len = 70000;
        }
        if (strcmp(cases[i].what, "key a link") == 0) {
            /* A link to the valid key of the first store: never followed. */
            assert_int_equal(
                acme_store_json_write(shared, acct_file(f, "account.json"), info, f->p),
                APR_SUCCESS);
            assert_int_equal(symlink(acme_store_path(f->store, acct_file(f, "account.key"), f->p),
                                     acme_store_path(shared, acct_file(f, "account.key"), f->p)),
                             0);
        } else if (strcmp(cases[i].what, "folder a link") == 0) {
            assert_int_equal(
                symlink(acme_store_path(f->store, dir, f->p), acme_store_path(shared, dir, f->p)),
                0);
        } else {
            assert_int_equal(acme_store_write(shared, acct_file(f, "account.key"), key_pem, key_len,
                                              APR_FPROT_UREAD | APR_FPROT_UWRITE, f->p),
                             APR_SUCCESS);
            if (strcmp(cases[i].what, "no account.json") != 0) {
                assert_int_equal(
                    acme_store_json_write(shared, acct_file(f, "account.json"), info, f->p),
                    APR_SUCCESS);
            }
        }
        apr_array_clear(f->log->lines);
        assert_int_not_equal(
            acme_account_share_import(node, shared, dir, CA "/dir", &f->log->log, f->p),
            APR_SUCCESS);
        if (!unit_log_has(f->log, "ACME04019: ") || !unit_log_has(f->log, cases[i].why)) {
            fail_msg("%s: no ACME04019 naming \"%s\"", cases[i].what, cases[i].why);
        }
        assert_int_equal(
            acme_store_read(&pem, &len, node, acct_file(f, "account.key"), 65536, f->p),
            APR_ENOENT);
        assert_int_equal(
            acme_store_read(&pem, &len, f->store, acct_file(f, "account.key"), 65536, f->p),
            APR_SUCCESS);
        /* Published in its place: a folder of the store's own again, a link removed, not what
         * it points to. */
        assert_int_equal(
            acme_account_share_publish(f->store, shared, dir, CA "/dir", &f->log->log, f->p),
            APR_SUCCESS);
        assert_int_equal(
            acme_account_share_import(node, shared, dir, CA "/dir", &f->log->log, f->p),
            APR_SUCCESS);
    }
}

static const struct CMUnitTest tests[] = {
    ACCOUNT_TEST(binding_sent_in_new_account),
    ACCOUNT_TEST(refused_binding_is_a_configuration_error),
    ACCOUNT_TEST(required_binding_names_the_directive),
    ACCOUNT_TEST(shared_account_published_imported_first_wins),
    ACCOUNT_TEST(shared_account_hostile_refused),
};

UNIT_MAIN("account", tests)
