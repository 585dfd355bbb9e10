/* test_client.c - the protocol through a fake CA: directory caching, nonce reuse, badNonce
 * retries, Retry-After, problem documents, bad answers, and a whole issuance with authorization
 * reuse and alternate chains. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <apr_date.h>
#include <apr_thread_proc.h>

#include "acme_issue.h"
#include "fake_ca.h"
#include "pki_util.h"

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
#define ACCT_CREATED                                                                               \
    {                                                                                              \
        "POST", CA "/acct", 201, JSON "Location: " CA "/acct/1\n", "{\"status\":\"valid\"}", 0     \
    }

#define TOKEN_A "tokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define TOKEN_B "tokenBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"

#define ORDER(status, extra)                                                                       \
    "{\"status\":\"" status "\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.test\"},"         \
    "{\"type\":\"dns\",\"value\":\"b.test\"}],\"authorizations\":[\"" CA "/authz/a\",\"" CA        \
    "/authz/b\"],\"finalize\":\"" CA "/finalize/1\"" extra "}"

#define AUTHZ(name, status, token, chstatus)                                                       \
    "{\"status\":\"" status "\",\"identifier\":{\"type\":\"dns\",\"value\":\"" name "\"},"         \
    "\"challenges\":[{\"type\":\"http-01\",\"url\":\"" CA "/chal/" name                            \
    "/http\",\"token\":\"" token "\",\"status\":\"" chstatus                                       \
    "\"},{\"type\":\"dns-01\",\"url\":\"" CA "/chal/" name "/dns\",\"token\":\"" token             \
    "\",\"status\":\"" chstatus "\"}]}"

#define CHAIN_PEM "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

typedef struct fixture_t {
    apr_pool_t *p;
    fake_ca_t *ca;
    unit_log_t *log;
    unit_clock_t *clock;
    acme_client_t *client;
    acme_key_t *account_key;
} fixture_t;

static fixture_t *fixture(apr_pool_t *p, fake_ca_t *ca, int with_account)
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

static apr_array_header_t *names2(apr_pool_t *p)
{
    apr_array_header_t *names = apr_array_make(p, 2, sizeof(const char *));
    APR_ARRAY_PUSH(names, const char *) = "a.test";
    APR_ARRAY_PUSH(names, const char *) = "b.test";
    return names;
}

/* A token table that records each answer published and removed, with the number of CA
 * requests made by then, before handing over to the hash table. */
typedef struct published_t {
    const char *token, *host, *keyauth;
    apr_time_t expires;
    int put_at;     /* CA requests made before the answer was published */
    int removed_at; /* idem before it was removed; -1 while published */
} published_t;

typedef struct recorder_t {
    acme_tokens_t tokens;
    acme_tokens_t *inner;
    const fake_ca_t *ca;
    apr_array_header_t *seen; /* published_t */
} recorder_t;

static apr_status_t rec_put(acme_tokens_t *t, const char *token, const char *host,
                            const char *keyauth, apr_time_t expires)
{
    recorder_t *r = t->baton;
    published_t *e = apr_array_push(r->seen);
    apr_pool_t *p = r->seen->pool;

    e->token = apr_pstrdup(p, token);
    e->host = apr_pstrdup(p, host);
    e->keyauth = apr_pstrdup(p, keyauth);
    e->expires = expires;
    e->put_at = r->ca->requests->nelts;
    e->removed_at = -1;
    return r->inner->put(r->inner, token, host, keyauth, expires);
}

static apr_status_t rec_get(acme_tokens_t *t, const char *token, const char **phost,
                            const char **pkeyauth, apr_pool_t *p)
{
    recorder_t *r = t->baton;
    return r->inner->get(r->inner, token, phost, pkeyauth, p);
}

static apr_status_t rec_remove(acme_tokens_t *t, const char *token)
{
    recorder_t *r = t->baton;
    int i;

    for (i = 0; i < r->seen->nelts; i++) {
        published_t *e = &APR_ARRAY_IDX(r->seen, i, published_t);
        if (strcmp(e->token, token) == 0 && e->removed_at < 0) {
            e->removed_at = r->ca->requests->nelts;
        }
    }
    return r->inner->remove(r->inner, token);
}

static recorder_t *recorder(fixture_t *f)
{
    recorder_t *r = apr_pcalloc(f->p, sizeof(*r));

    assert_int_equal(acme_tokens_hash_create(&r->inner, f->p), APR_SUCCESS);
    r->ca = f->ca;
    r->seen = apr_array_make(f->p, 2, sizeof(published_t));
    r->tokens.put = rec_put;
    r->tokens.get = rec_get;
    r->tokens.remove = rec_remove;
    r->tokens.baton = r;
    return r;
}

/* The one answer recorded, published for host with the key authorization of token under the
 * fixture's account key. */
static const published_t *published_once(fixture_t *f, const recorder_t *r, const char *token,
                                         const char *host)
{
    const published_t *e;
    const char *thumb;

    assert_int_equal(r->seen->nelts, 1);
    e = &APR_ARRAY_IDX(r->seen, 0, published_t);
    assert_string_equal(e->token, token);
    assert_string_equal(e->host, host);
    assert_int_equal(acme_key_thumbprint(&thumb, f->account_key, f->p), APR_SUCCESS);
    assert_string_equal(e->keyauth, apr_pstrcat(f->p, token, ".", thumb, NULL));
    return e;
}

static void directory_cached_and_nonces_reused(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        ACCT_CREATED,
        {"POST", CA "/order", 201, JSON "Location: " CA "/order/1\n", ORDER("pending", ""), 0},
        {"POST", CA "/order/1", 200, JSON, ORDER("pending", ""), 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 0);
    acme_account_req_t areq = {NULL, 1, NULL, NULL, NULL, NULL};
    acme_problem_t *prob = NULL;
    acme_order_t *order;
    const char *url;

    assert_int_equal(acme_account_register(&url, &prob, f->client, f->account_key, &areq, f->p),
                     APR_SUCCESS);
    assert_string_equal(url, CA "/acct/1");
    acme_client_set_account(f->client, f->account_key, url);
    assert_int_equal(acme_order_new(&order, &prob, f->client, names2(f->p), NULL, f->p),
                     APR_SUCCESS);
    assert_int_equal(acme_order_get(&order, &prob, f->client, order->url, f->p), APR_SUCCESS);
    assert_int_equal(order->authzs->nelts, 2);
    assert_int_equal(acme_client_resource(&url, NULL, f->client, "newOrder"), APR_SUCCESS);
    assert_string_equal(url, CA "/order");
    assert_int_equal(acme_client_resource(&url, NULL, f->client, "renewalInfo"), APR_NOTFOUND);

    /* One directory GET and one HEAD newNonce in all: every later POST uses the nonce of the
     * answer before it. newAccount is signed with jwk, everything after with kid. */
    assert_int_equal(f->ca->requests->nelts, 5);
    assert_string_equal(fake_req(f->ca, 2)->nonce, "nonce0001");
    assert_true(fake_req(f->ca, 2)->has_jwk);
    assert_null(fake_req(f->ca, 2)->kid);
    assert_string_equal(fake_req(f->ca, 3)->nonce, "nonce0002");
    assert_string_equal(fake_req(f->ca, 3)->kid, CA "/acct/1");
    assert_false(fake_req(f->ca, 3)->has_jwk);
    assert_string_equal(fake_req(f->ca, 4)->nonce, "nonce0003");
    assert_string_equal(fake_req(f->ca, 4)->payload, ""); /* POST-as-GET */
    assert_non_null(strstr(fake_req(f->ca, 2)->payload, "\"termsOfServiceAgreed\":true"));
    assert_int_equal(acme_client_requests(f->client), 5);
}

static void bad_nonce_retried_with_fresh_nonce(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/order/1", 400, PROBLEM "Replay-Nonce: freshFromError\n",
         "{\"type\":\"urn:ietf:params:acme:error:badNonce\",\"detail\":\"JWS has an invalid "
         "anti-replay nonce\"}",
         0},
        {"POST", CA "/order/1", 200, JSON, ORDER("ready", ""), 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    acme_problem_t *prob = NULL;
    acme_order_t *order;

    assert_int_equal(acme_order_get(&order, &prob, f->client, CA "/order/1", f->p), APR_SUCCESS);
    assert_int_equal(order->status, ACME_STATE_READY);
    assert_string_equal(fake_req(f->ca, 3)->nonce, "freshFromError");
    assert_null(prob);
}

static void bad_nonce_retries_are_bounded(void **state)
{
    fake_answer_t script[2 + ACME_BADNONCE_RETRIES + 1];
    fixture_t *f;
    acme_problem_t *prob = NULL;
    acme_order_t *order;
    int i;

    script[0] = (fake_answer_t)DIR_OK;
    script[1] = (fake_answer_t)NONCE_OK;
    for (i = 2; i < (int)(sizeof(script) / sizeof(script[0])); i++) {
        script[i] = (fake_answer_t){"POST",
                                    CA "/order/1",
                                    400,
                                    PROBLEM,
                                    "{\"type\":\"urn:ietf:params:acme:error:badNonce\"}",
                                    0};
    }
    f = fixture(*state, FAKE_CA(*state, script), 1);
    assert_int_equal(acme_order_get(&order, &prob, f->client, CA "/order/1", f->p), ACME_EBADNONCE);
    assert_int_equal(f->ca->requests->nelts, 2 + ACME_BADNONCE_RETRIES + 1);
    assert_non_null(prob);
    assert_string_equal(prob->name, "badNonce");
}

static void rate_limit_surfaces_retry_after(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/order", 429, PROBLEM "Retry-After: 3600\n",
         "{\"type\":\"urn:ietf:params:acme:error:rateLimited\",\"detail\":\"too many "
         "certificates already issued for a.test\",\"status\":429}",
         0},
        {"POST", CA "/order", 503, "Retry-After: Fri, 15 Jan 2027 08:00:00 GMT\n",
         "<html>down for maintenance</html>", 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    acme_problem_t *prob = NULL;
    acme_order_t *order;

    assert_int_equal(acme_order_new(&order, &prob, f->client, names2(f->p), NULL, f->p),
                     ACME_ERATELIMITED);
    assert_int_equal(prob->retry_after, apr_time_from_sec(3600));
    assert_non_null(strstr(acme_problem_describe(prob, f->p), "too many certificates"));
    prob = NULL;
    assert_int_equal(acme_order_new(&order, &prob, f->client, names2(f->p), NULL, f->p),
                     ACME_ESERVER);
    /* An HTTP-date counts from the (fake) clock's now. */
    assert_int_equal(prob->retry_after,
                     apr_date_parse_http("Fri, 15 Jan 2027 08:00:00 GMT") - f->clock->now);
    assert_non_null(strstr(prob->detail, "down for maintenance"));
}

static void bad_answers_are_refused(void **state)
{
    static const struct {
        int status;
        const char *headers;
        const char *body;
        apr_status_t rv;
        apr_status_t expect;
    } rows[] = {
        {200, JSON, "{\"status\":\"pending\",\"identif", 0, ACME_EPROTO}, /* truncated */
        {200, JSON, "[\"not\",\"an\",\"object\"]", 0, ACME_EPROTO},       /* wrong type */
        {200, JSON, "{\"status\":\"pending\"}", 0, ACME_EPROTO},          /* members */
        {200, JSON, "{\"status\":7,\"identifiers\":[],\"finalize\":1}", 0, ACME_EPROTO},
        {200, JSON, ORDER("bogus", ""), 0, ACME_EPROTO}, /* state */
        {200, JSON, ORDER("valid", ""), 0, ACME_EPROTO}, /* no certificate */
        {200, JSON, ORDER("valid", ",\"certificate\":\"ftp://x\""), 0, ACME_EPROTO},
        {500, "", "", 0, ACME_ESERVER},
        {404, PROBLEM, "{\"type\":\"urn:ietf:params:acme:error:malformed\"}", 0, ACME_EMALFORMED},
        {0, NULL, NULL, ACME_ETOOLARGE, ACME_ETOOLARGE},   /* transport bound hit */
        {0, NULL, NULL, ACME_ETRANSPORT, ACME_ETRANSPORT}, /* no answer */
    };
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        fake_answer_t *script = apr_pcalloc(*state, 3 * sizeof(*script));
        fixture_t *f;
        acme_problem_t *prob = NULL;
        acme_order_t *order = NULL;

        script[0] = (fake_answer_t)DIR_OK;
        script[1] = (fake_answer_t)NONCE_OK;
        script[2] = (fake_answer_t){"POST",          CA "/order/1", rows[i].status,
                                    rows[i].headers, rows[i].body,  rows[i].rv};
        f = fixture(*state, fake_ca_make(*state, script, 3), 1);
        assert_int_equal(acme_order_get(&order, &prob, f->client, CA "/order/1", f->p),
                         rows[i].expect);
        assert_null(order);
    }
}

static void directory_and_nonce_failures(void **state)
{
    static const fake_answer_t no_nonce[] = {
        DIR_OK,
        {"HEAD", CA "/nonce", 200, "X-No-Nonce: 1\n", "", 0},
    };
    static const fake_answer_t bad_dir[] = {
        {"GET", CA "/dir", 200, JSON, "{\"newNonce\":\"" CA "/nonce\"}", 0},
    };
    static const fake_answer_t html_dir[] = {
        {"GET", CA "/dir", 200, "Content-Type: text/html\n", "<html>captive portal</html>", 0},
    };
    fixture_t *f;
    acme_order_t *order;
    acme_problem_t *prob = NULL;
    const json_t *dir;

    f = fixture(*state, FAKE_CA(*state, no_nonce), 1);
    assert_int_equal(acme_order_get(&order, &prob, f->client, CA "/order/1", f->p), ACME_EPROTO);
    f = fixture(*state, FAKE_CA(*state, bad_dir), 1);
    assert_int_equal(acme_client_directory(&dir, f->client), ACME_EPROTO);
    assert_true(unit_log_has(f->log, "no newAccount URL"));
    f = fixture(*state, FAKE_CA(*state, html_dir), 1);
    assert_int_equal(acme_client_directory(&dir, f->client), ACME_EPROTO);
}

static void retry_after_forms(void **state)
{
    static const struct {
        const char *value;
        apr_interval_time_t expect;
    } rows[] = {
        {"120", apr_time_from_sec(120)},
        {" 7 ", apr_time_from_sec(7)},
        {"0", 0},
        {"-5", -1},
        {"12abc", -1},
        {"soon", -1},
        {"Wed, 21 Oct 2015 07:28:00 GMT", 0}, /* past */
        {"99999999999999", apr_time_from_sec(366 * 24 * 3600)},
    };
    apr_pool_t *p = *state;
    acme_http_resp_t resp;
    size_t i;

    memset(&resp, 0, sizeof(resp));
    assert_int_equal(acme_http_retry_after(&resp, apr_time_now()), -1);
    resp.headers = apr_table_make(p, 1);
    assert_int_equal(acme_http_retry_after(&resp, apr_time_now()), -1);
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        apr_table_set(resp.headers, "Retry-After", rows[i].value);
        assert_int_equal(acme_http_retry_after(&resp, apr_time_now()), rows[i].expect);
    }
    apr_table_set(resp.headers, "Retry-After", "Sun, 06 Nov 2033 08:49:37 GMT");
    assert_int_equal(
        acme_http_retry_after(&resp, apr_date_parse_http("Sun, 06 Nov 2033 08:48:37 GMT")),
        apr_time_from_sec(60));
}

/* ACMEHttpProxy: what configtest takes, and the URL as log lines show it (no password). */
static void proxy_urls(void **state)
{
    apr_pool_t *p = *state;
    static const char *const good[] = {"http://127.0.0.1:3128", "http://proxy.example.org:3128/",
                                       "https://p.example.org", "http://u:p@127.0.0.1:3128",
                                       "HTTP://[::1]:8080"};
    static const char *const bad[] = {
        "socks5://127.0.0.1:1080", "127.0.0.1:3128", "http://",     "http://h:1/path",
        "http://h:1?q=1",          "http://h:1#f",   "http://h :1", "ftp://h:21"};
    const char *why;
    size_t i;

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(acme_http_proxy_check(good[i], &why, p), APR_SUCCESS);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_int_equal(acme_http_proxy_check(bad[i], &why, p), APR_EINVAL);
        assert_non_null(why);
    }
    assert_string_equal(acme_http_proxy_masked("http://u:s3cr3t@127.0.0.1:3128", p),
                        "http://u:***@127.0.0.1:3128");
    /* A password holding '@' or ':' is hidden whole; user information without ':' (a token
     * as the user name) too. */
    assert_string_equal(acme_http_proxy_masked("https://u:a@b:c@h:1", p), "https://u:***@h:1");
    assert_string_equal(acme_http_proxy_masked("http://tok@h:1", p), "http://***@h:1");
    assert_string_equal(acme_http_proxy_masked("http://h:1", p), "http://h:1");
    assert_string_equal(acme_http_proxy_masked("socks5://u:pw@h:1/x", p), "socks5://u:***@h:1/x");
    assert_string_equal(acme_http_proxy_masked(NULL, p), "(proxy)");
}

static void link_headers(void **state)
{
    apr_pool_t *p = *state;
    acme_http_resp_t resp;
    apr_array_header_t *links;

    memset(&resp, 0, sizeof(resp));
    resp.headers = apr_table_make(p, 4);
    apr_table_add(resp.headers, "Link", "<" CA "/cert/1/1>;rel=\"alternate\"");
    apr_table_add(resp.headers, "link", "<" CA "/dir>;rel=\"index\", </cert/1/2>; rel=alternate");
    apr_table_add(resp.headers, "Link", "<" CA "/cert/1/3>; title=\"x\"; rel=\"up alternate\"");
    apr_table_add(resp.headers, "Link", "garbage without brackets");
    apr_table_add(resp.headers, "Link", "<unterminated; rel=alternate");
    links = acme_http_links(&resp, "alternate", CA "/cert/1", p);
    assert_int_equal(links->nelts, 3);
    assert_string_equal(APR_ARRAY_IDX(links, 0, const char *), CA "/cert/1/1");
    assert_string_equal(APR_ARRAY_IDX(links, 1, const char *), CA "/cert/1/2");
    assert_string_equal(APR_ARRAY_IDX(links, 2, const char *), CA "/cert/1/3");
    links = acme_http_links(&resp, "index", CA "/cert/1", p);
    assert_int_equal(links->nelts, 1);
}

/* A whole issuance: a.test's authorization is reused (valid), b.test's needs http-01; the CA
 * asks to wait 2 s while validating and 1 s while issuing; the chain has an alternate. */
static void issuance_reuses_authz_and_honours_retry_after(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/order", 201, JSON "Location: " CA "/order/1\n", ORDER("pending", ""), 0},
        {"POST", CA "/authz/a", 200, JSON, AUTHZ("a.test", "valid", TOKEN_A, "valid"), 0},
        {"POST", CA "/authz/b", 200, JSON, AUTHZ("b.test", "pending", TOKEN_B, "pending"), 0},
        {"POST", CA "/chal/b.test/http", 200, JSON,
         "{\"type\":\"http-01\",\"url\":\"" CA "/chal/b.test/http\",\"token\":\"" TOKEN_B
         "\",\"status\":\"processing\"}",
         0},
        {"POST", CA "/order/1", 200, JSON "Retry-After: 2\n", ORDER("pending", ""), 0},
        {"POST", CA "/order/1", 200, JSON, ORDER("ready", ""), 0},
        {"POST", CA "/finalize/1", 200, JSON "Retry-After: 1\n", ORDER("processing", ""), 0},
        {"POST", CA "/order/1", 200, JSON, ORDER("valid", ",\"certificate\":\"" CA "/cert/1\""), 0},
        {"POST", CA "/cert/1", 200,
         "Content-Type: application/pem-certificate-chain\nLink: <" CA
         "/cert/1/1>;rel=\"alternate\"\n",
         CHAIN_PEM, 0},
        {"POST", CA "/cert/1/1", 200, "Content-Type: application/pem-certificate-chain\n",
         CHAIN_PEM CHAIN_PEM, 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    recorder_t *rec = recorder(f);
    acme_issue_req_t req;
    acme_issue_result_t *res = NULL;
    acme_problem_t *prob = NULL;
    const published_t *pub;
    const char *host, *keyauth;
    int i;

    memset(&req, 0, sizeof(req));
    req.domain = "a.test";
    req.alternates = 1;
    req.names = names2(f->p);
    req.key_type = ACME_KEY_EC256;
    req.tokens = &rec->tokens;

    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), APR_SUCCESS);
    assert_int_equal(res->authz_total, 2);
    assert_int_equal(res->authz_reused, 1);
    assert_string_equal(res->chain_pem, CHAIN_PEM);
    assert_int_equal(res->alt_chains->nelts, 1);
    assert_non_null(res->key);

    /* Exactly the script: no challenge for the reused authorization, one poll per round. */
    assert_int_equal(f->ca->requests->nelts, (int)(sizeof(script) / sizeof(script[0])));
    for (i = 0; i < f->ca->requests->nelts; i++) {
        assert_null(strstr(fake_req(f->ca, i)->url, "/chal/a.test"));
    }
    /* Responding to a challenge posts "{}", not the empty POST-as-GET payload. */
    assert_string_equal(fake_req(f->ca, 5)->payload, "{}");
    assert_non_null(strstr(fake_req(f->ca, 8)->payload, "\"csr\":\""));
    /* The first poll comes ACME_POLL_FIRST after the answer; then the CA's Retry-After is
     * honoured: 2 s, then 1 s after finalize, nothing shorter. */
    assert_int_equal(f->clock->sleeps, 3);
    assert_int_equal(f->clock->slept, ACME_POLL_FIRST + apr_time_from_sec(3));
    /* b.test's answer (and no other) was published after its authorization was fetched and
     * before the CA was told to validate (request 5), and removed once the certificate was
     * there (after all 12 requests). */
    pub = published_once(f, rec, TOKEN_B, "b.test");
    assert_int_equal(pub->put_at, 5);
    assert_int_equal(pub->removed_at, 12);
    assert_int_equal(pub->expires, f->clock->now - f->clock->slept + apr_time_from_sec(300));
    assert_int_equal(req.tokens->get(req.tokens, TOKEN_B, &host, &keyauth, f->p), APR_NOTFOUND);
}

/* An issuance whose authorizations are all valid already, ending in the download of cert,
 * whose answer carries links: the rest of the script (n answers) follows, for the alternates. */
#define PEM_CHAIN "Content-Type: application/pem-certificate-chain\n"
static fixture_t *chain_fixture(apr_pool_t *p, const char *links, const char *pem,
                                const fake_answer_t *more, int n)
{
    fake_answer_t *script = apr_pcalloc(p, sizeof(fake_answer_t) * (apr_size_t)(5 + n));
    const fake_answer_t head[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/order", 201, JSON "Location: " CA "/order/1\n", ORDER("ready", ""), 0},
        {"POST", CA "/finalize/1", 200, JSON, ORDER("valid", ",\"certificate\":\"" CA "/cert/1\""),
         0},
        {"POST", CA "/cert/1", 200, apr_pstrcat(p, PEM_CHAIN, links, NULL), pem, 0},
    };

    memcpy(script, head, sizeof(head));
    memcpy(script + 5, more, sizeof(fake_answer_t) * (apr_size_t)n);
    return fixture(p, fake_ca_make(p, script, 5 + n), 1);
}

static acme_issue_req_t *chain_req(fixture_t *f, const char *preferred)
{
    acme_issue_req_t *req = apr_pcalloc(f->p, sizeof(*req));

    req->domain = "a.test";
    req->names = names2(f->p);
    req->key_type = ACME_KEY_EC256;
    req->preferred_chain = preferred;
    return req;
}

/* ACMEPreferredChain: the alternates are fetched and the first chain ending at the preferred
 * issuer is kept. One alternate fails to download, one is for another certificate, one is
 * not a chain: each is left out with its reason, and the issuance goes on. */
static void preferred_chain_kept(void **state)
{
    apr_pool_t *p = *state;
    cross_t *c = cross_make(p, "Root A", "Root B");
    cross_t *other = cross_make(p, "Root A", "Root B");
    const fake_answer_t alts[] = {
        {"POST", CA "/cert/1/1", 500, PROBLEM,
         "{\"type\":\"urn:ietf:params:acme:error:serverInternal\",\"detail\":\"gone\"}", 0},
        {"POST", CA "/cert/1/2", 200, PEM_CHAIN, other->via_b, 0},
        {"POST", CA "/cert/1/3", 200, PEM_CHAIN, apr_pstrcat(p, c->via_b, c->root_a_pem, NULL), 0},
        {"POST", CA "/cert/1/4", 200, PEM_CHAIN, c->via_b, 0},
    };
    fixture_t *f = chain_fixture(p,
                                 "Link: <" CA "/cert/1/1>;rel=\"alternate\"\n"
                                 "Link: <" CA "/cert/1/2>;rel=\"alternate\"\n"
                                 "Link: <" CA "/cert/1/3>;rel=\"alternate\"\n"
                                 "Link: <" CA "/cert/1/4>;rel=\"alternate\"\n",
                                 c->via_a, alts, 4);
    acme_issue_result_t *res = NULL;
    acme_problem_t *prob = NULL;

    assert_int_equal(acme_issue(&res, &prob, f->client, chain_req(f, "Root B"), f->p), APR_SUCCESS);
    assert_string_equal(res->chain_pem, c->via_b);
    assert_int_equal(res->chain_len, strlen(c->via_b));
    assert_int_equal(res->chain_index, 4);
    assert_true(res->chain_preferred);
    assert_string_equal(res->chain_issuer, "Root B");
    assert_string_equal(res->chain_issuers, "\"Root A\" (default), \"Root B\"");
    assert_int_equal(res->alt_chains->nelts, 3);
    assert_true(unit_log_has(f->log, "ACME00190: a.test: the alternate chain " CA
                                     "/cert/1/1 could not be downloaded (serverInternal "));
    assert_true(unit_log_has(f->log, "the chain kept is chosen among the others"));
    assert_true(unit_log_has(f->log, "ACME00191: a.test: the alternate chain " CA
                                     "/cert/1/2 is not considered: its first certificate is not "
                                     "the one issued"));
    assert_true(unit_log_has(f->log, "ACME00191: a.test: the alternate chain " CA
                                     "/cert/1/3 is not considered: it does not hold together: "
                                     "certificate 2 is not issued by certificate 3"));
}

/* No chain ends at the preferred issuer: the default is kept and the issuers are named; with
 * the default matching, no alternate wins over it. */
static void preferred_chain_absent_keeps_default(void **state)
{
    apr_pool_t *p = *state;
    cross_t *c = cross_make(p, "Root A", "Root B");
    const fake_answer_t alts[] = {
        {"POST", CA "/cert/1/1", 200, PEM_CHAIN, c->via_b, 0},
        {"POST", CA "/cert/1/1", 200, PEM_CHAIN, c->via_b, 0},
    };
    fixture_t *f =
        chain_fixture(p, "Link: <" CA "/cert/1/1>;rel=\"alternate\"\n", c->via_a, alts, 1);
    acme_issue_result_t *res = NULL;
    acme_problem_t *prob = NULL;

    assert_int_equal(acme_issue(&res, &prob, f->client, chain_req(f, "Root C"), f->p), APR_SUCCESS);
    assert_string_equal(res->chain_pem, c->via_a);
    assert_int_equal(res->chain_index, 0);
    assert_false(res->chain_preferred);
    assert_string_equal(res->chain_issuer, "Root A");
    assert_string_equal(res->chain_issuers, "\"Root A\" (default), \"Root B\"");

    f = chain_fixture(p, "Link: <" CA "/cert/1/1>;rel=\"alternate\"\n", c->via_a, alts + 1, 1);
    assert_int_equal(acme_issue(&res, &prob, f->client, chain_req(f, "Root A"), f->p), APR_SUCCESS);
    assert_string_equal(res->chain_pem, c->via_a);
    assert_int_equal(res->chain_index, 0);
    assert_true(res->chain_preferred);
}

/* Without a preference no alternate is asked for (the script has no answer for one), and a CA
 * that offers no alternate leaves the default, said so. */
static void alternates_only_when_preferred(void **state)
{
    apr_pool_t *p = *state;
    cross_t *c = cross_make(p, "Root A", "Root B");
    fixture_t *f =
        chain_fixture(p, "Link: <" CA "/cert/1/1>;rel=\"alternate\"\n", c->via_a, NULL, 0);
    acme_issue_result_t *res = NULL;
    acme_problem_t *prob = NULL;

    assert_int_equal(acme_issue(&res, &prob, f->client, chain_req(f, NULL), f->p), APR_SUCCESS);
    assert_string_equal(res->chain_pem, c->via_a);
    assert_int_equal(res->alt_chains->nelts, 0);
    assert_null(res->chain_issuers);
    assert_int_equal(f->ca->requests->nelts, 5);

    f = chain_fixture(p, "", c->via_a, NULL, 0);
    assert_int_equal(acme_issue(&res, &prob, f->client, chain_req(f, "Root B"), f->p), APR_SUCCESS);
    assert_string_equal(res->chain_pem, c->via_a);
    assert_false(res->chain_preferred);
    assert_string_equal(res->chain_issuers, "\"Root A\" (default)");
}

static void issuance_publishes_key_authorization(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/order", 201, JSON "Location: " CA "/order/1\n", ORDER("pending", ""), 0},
        {"POST", CA "/authz/a", 200, JSON, AUTHZ("a.test", "pending", TOKEN_A, "pending"), 0},
        {"POST", CA "/authz/b", 500, "", "", 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    recorder_t *rec = recorder(f);
    acme_issue_req_t req;
    acme_issue_result_t *res = NULL;
    acme_problem_t *prob = NULL;
    const published_t *pub;
    const char *host, *keyauth;

    memset(&req, 0, sizeof(req));
    req.domain = "a.test";
    req.names = names2(f->p);
    req.tokens = &rec->tokens;
    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), ACME_ESERVER);
    assert_null(res);
    assert_true(unit_log_has(f->log, "a.test: fetching an authorization failed"));
    /* token.thumbprint of the account key, for a.test, published once its authorization was
     * fetched (request 4); the CA is told to validate only once every answer of the order is
     * set up, so a.test's challenge was never answered; on failure the answer is removed too
     * (after all 5 requests). */
    pub = published_once(f, rec, TOKEN_A, "a.test");
    assert_int_equal(pub->put_at, 4);
    assert_int_equal(pub->removed_at, 5);
    assert_int_equal(pub->expires, f->clock->now + apr_time_from_sec(300));
    assert_int_equal(rec->tokens.get(&rec->tokens, TOKEN_A, &host, &keyauth, f->p), APR_NOTFOUND);
}

/* A responder of another type that records, with the number of CA requests made by then,
 * when each of its steps ran. */
typedef struct probe_t {
    acme_responder_t r;
    const fake_ca_t *ca;
    int answers_for_ips;
    int setups, setup_at, ready_at, teardowns, teardown_at;
    int wildcard;
    const char *value, *keyauth;
} probe_t;

static int probe_can_answer(acme_responder_t *r, const acme_ident_t *id, int wildcard)
{
    probe_t *pr = r->baton;
    (void)wildcard;
    return pr->answers_for_ips || strcmp(id->type, "ip") != 0;
}

static apr_status_t probe_setup(acme_responder_t *r, const acme_ident_t *id, int wildcard,
                                const char *token, const char *keyauth, apr_time_t expires,
                                acme_problem_t **pprob, apr_pool_t *p)
{
    probe_t *pr = r->baton;
    (void)token;
    (void)expires;
    (void)pprob;
    pr->setups++;
    pr->setup_at = pr->ca->requests->nelts;
    pr->wildcard = wildcard;
    pr->value = apr_pstrdup(p, id->value);
    pr->keyauth = apr_pstrdup(p, keyauth);
    return APR_SUCCESS;
}

static apr_status_t probe_ready(acme_responder_t *r, apr_time_t deadline, acme_problem_t **pprob,
                                apr_pool_t *p)
{
    probe_t *pr = r->baton;
    (void)deadline;
    (void)pprob;
    (void)p;
    pr->ready_at = pr->ca->requests->nelts;
    return APR_SUCCESS;
}

static void probe_teardown(acme_responder_t *r, const acme_ident_t *id, int wildcard,
                           const char *token, const char *keyauth, apr_pool_t *p)
{
    probe_t *pr = r->baton;
    (void)id;
    (void)wildcard;
    (void)token;
    (void)keyauth;
    (void)p;
    pr->teardowns++;
    pr->teardown_at = pr->ca->requests->nelts;
}

static probe_t *probe(fixture_t *f, const char *type)
{
    probe_t *pr = apr_pcalloc(f->p, sizeof(*pr));
    pr->ca = f->ca;
    pr->r.type = type;
    pr->r.can_answer = probe_can_answer;
    pr->r.setup = probe_setup;
    pr->r.ready = probe_ready;
    pr->r.teardown = probe_teardown;
    pr->r.baton = pr;
    return pr;
}

/* a.test offers http-01 and dns-01, *.b.test dns-01 only (RFC 8555 section 7.1.3: wildcards are
 * validated over DNS). With responders "http-01, dns-01" a.test gets http-01 and *.b.test dns-01;
 * both answers are set up, the dns-01 responder is asked to wait until its answer is visible,
 * and only then is the CA told to validate either. */
static void responders_picked_per_authorization(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/order", 201, JSON "Location: " CA "/order/1\n", ORDER("pending", ""), 0},
        {"POST", CA "/authz/a", 200, JSON, AUTHZ("a.test", "pending", TOKEN_A, "pending"), 0},
        {"POST", CA "/authz/b", 200, JSON,
         "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"b.test\"},"
         "\"wildcard\":true,\"challenges\":[{\"type\":\"dns-01\",\"url\":\"" CA
         "/chal/b.test/dns\",\"token\":\"" TOKEN_B "\",\"status\":\"pending\"}]}",
         0},
        {"POST", CA "/chal/a.test/http", 200, JSON,
         "{\"type\":\"http-01\",\"url\":\"" CA "/chal/a.test/http\",\"token\":\"" TOKEN_A
         "\",\"status\":\"processing\"}",
         0},
        {"POST", CA "/chal/b.test/dns", 200, JSON,
         "{\"type\":\"dns-01\",\"url\":\"" CA "/chal/b.test/dns\",\"token\":\"" TOKEN_B
         "\",\"status\":\"processing\"}",
         0},
        {"POST", CA "/order/1", 200, JSON, ORDER("invalid", ""), 0},
        {"POST", CA "/authz/a", 200, JSON, AUTHZ("a.test", "valid", TOKEN_A, "valid"), 0},
        {"POST", CA "/authz/b", 200, JSON,
         "{\"status\":\"invalid\",\"identifier\":{\"type\":\"dns\",\"value\":\"b.test\"},"
         "\"wildcard\":true,\"challenges\":[{\"type\":\"dns-01\",\"url\":\"" CA
         "/chal/b.test/dns\",\"token\":\"" TOKEN_B "\",\"status\":\"invalid\",\"error\":{"
         "\"type\":\"urn:ietf:params:acme:error:dns\",\"detail\":\"no TXT record\"}}]}",
         0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    recorder_t *rec = recorder(f);
    probe_t *dns = probe(f, "dns-01");
    acme_responder_t http;
    apr_array_header_t *responders = apr_array_make(f->p, 2, sizeof(acme_responder_t *));
    acme_issue_req_t req;
    acme_issue_result_t *res = NULL;
    acme_problem_t *prob = NULL;
    const published_t *pub;

    acme_responder_http01(&http, &rec->tokens);
    APR_ARRAY_PUSH(responders, acme_responder_t *) = &http;
    APR_ARRAY_PUSH(responders, acme_responder_t *) = &dns->r;
    memset(&req, 0, sizeof(req));
    req.domain = "a.test";
    req.names = names2(f->p);
    req.responders = responders;
    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), ACME_EINVALID);
    assert_true(unit_log_has(f->log, "validation of b.test failed: dns"));

    /* http-01 for a.test, published after its authorization (request 4)... */
    pub = published_once(f, rec, TOKEN_A, "a.test");
    assert_int_equal(pub->put_at, 4);
    /* ...dns-01 for the wildcard, with the key authorization of its own token... */
    assert_int_equal(dns->setups, 1);
    assert_int_equal(dns->setup_at, 5);
    assert_true(dns->wildcard);
    assert_string_equal(dns->value, "b.test");
    assert_int_equal(strncmp(dns->keyauth, TOKEN_B ".", strlen(TOKEN_B) + 1), 0);
    /* ...ready before the first challenge was answered (request 6), and both torn down when
     * the order failed. */
    assert_int_equal(dns->ready_at, 5);
    assert_string_equal(fake_req(f->ca, 5)->url, CA "/chal/a.test/http");
    assert_int_equal(dns->teardowns, 1);
    assert_int_equal(dns->teardown_at, 10);
    assert_int_equal(pub->removed_at, 10);
}

/* An authorization no responder can answer fails the attempt before any challenge is answered,
 * as a configuration problem naming what the CA offers and what we answer. */
static void no_responder_for_authorization(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/order", 201, JSON "Location: " CA "/order/1\n", ORDER("pending", ""), 0},
        {"POST", CA "/authz/a", 200, JSON, AUTHZ("a.test", "pending", TOKEN_A, "pending"), 0},
        {"POST", CA "/authz/b", 200, JSON,
         "{\"status\":\"pending\",\"identifier\":{\"type\":\"dns\",\"value\":\"b.test\"},"
         "\"wildcard\":true,\"challenges\":[{\"type\":\"dns-01\",\"url\":\"" CA
         "/chal/b.test/dns\",\"token\":\"" TOKEN_B "\",\"status\":\"pending\"}]}",
         0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    recorder_t *rec = recorder(f);
    acme_issue_req_t req;
    acme_issue_result_t *res = NULL;
    acme_problem_t *prob = NULL;
    const published_t *pub;

    memset(&req, 0, sizeof(req));
    req.domain = "a.test";
    req.names = names2(f->p);
    req.tokens = &rec->tokens;
    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), ACME_ECONFIG);
    assert_non_null(prob);
    assert_non_null(strstr(prob->detail, "no challenge type we can answer for *.b.test: the CA "
                                         "offers dns-01, we answer http-01"));
    /* a.test's answer, set up first, is taken down again. */
    pub = published_once(f, rec, TOKEN_A, "a.test");
    assert_int_equal(pub->removed_at, 5);
}

static void polling_is_bounded(void **state)
{
    fake_answer_t script[3 + 2 + 2 + 40];
    fixture_t *f;
    acme_issue_req_t req;
    acme_issue_result_t *res = NULL;
    acme_problem_t *prob = NULL;
    int i, n = 0;

    script[n++] = (fake_answer_t)DIR_OK;
    script[n++] = (fake_answer_t)NONCE_OK;
    script[n++] = (fake_answer_t){
        "POST", CA "/order", 201, JSON "Location: " CA "/order/1\n", ORDER("pending", ""), 0};
    script[n++] = (fake_answer_t){
        "POST", CA "/authz/a", 200, JSON, AUTHZ("a.test", "valid", TOKEN_A, "valid"), 0};
    script[n++] = (fake_answer_t){
        "POST", CA "/authz/b", 200, JSON, AUTHZ("b.test", "valid", TOKEN_B, "valid"), 0};
    for (i = 0; i < 40; i++) {
        script[n++] = (fake_answer_t){
            "POST", CA "/order/1", 200, JSON "Retry-After: 1\n", ORDER("pending", ""), 0};
    }
    f = fixture(*state, fake_ca_make(*state, script, n), 1);
    /* A CA that says "pending" for ever: the client stops after 10 of its 40 answers. */
    fake_ca_leave_unused(f->ca, 30);
    memset(&req, 0, sizeof(req));
    req.domain = "a.test";
    req.names = names2(f->p);
    req.max_wait = apr_time_from_sec(10);
    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), ACME_ETIMEOUT);
    /* 10 s of budget: ACME_POLL_FIRST, then 1 s per Retry-After; the 11th wait would end after
     * the budget. 10 waits and 10 polls, never a tight loop. */
    assert_int_equal(f->clock->sleeps, 10);
    assert_int_equal(f->clock->slept, ACME_POLL_FIRST + apr_time_from_sec(9));
    assert_int_equal(f->ca->requests->nelts, 5 + 10);
    assert_true(unit_log_has(f->log, "a.test: gave up waiting for validation after 10 polls"));
    assert_non_null(prob);
    assert_int_equal(prob->rv, ACME_ETIMEOUT);
}

static void long_retry_after_ends_the_attempt(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/order", 201, JSON "Location: " CA "/order/1\n", ORDER("ready", ""), 0},
        {"POST", CA "/finalize/1", 200, JSON "Retry-After: 7200\n", ORDER("processing", ""), 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    acme_issue_req_t req;
    acme_issue_result_t *res = NULL;
    acme_problem_t *prob = NULL;

    memset(&req, 0, sizeof(req));
    req.domain = "a.test";
    req.names = names2(f->p);
    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), ACME_ETIMEOUT);
    /* No sleeping through two hours: the caller learns when to come back. */
    assert_int_equal(f->clock->sleeps, 0);
    assert_int_equal(prob->retry_after, apr_time_from_sec(7200));
}

static void invalid_order_names_the_failed_identifier(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/order", 201, JSON "Location: " CA "/order/1\n", ORDER("pending", ""), 0},
        {"POST", CA "/authz/a", 200, JSON, AUTHZ("a.test", "valid", TOKEN_A, "valid"), 0},
        {"POST", CA "/authz/b", 200, JSON, AUTHZ("b.test", "pending", TOKEN_B, "processing"), 0},
        {"POST", CA "/order/1", 200, JSON, ORDER("invalid", ""), 0},
        {"POST", CA "/authz/a", 200, JSON, AUTHZ("a.test", "valid", TOKEN_A, "valid"), 0},
        {"POST", CA "/authz/b", 200, JSON,
         "{\"status\":\"invalid\",\"identifier\":{\"type\":\"dns\",\"value\":\"b.test\"},"
         "\"challenges\":[{\"type\":\"http-01\",\"url\":\"" CA "/chal/b\",\"token\":\"" TOKEN_B
         "\",\"status\":\"invalid\",\"error\":{\"type\":\"urn:ietf:params:acme:error:connection\""
         ",\"detail\":\"Connection refused\",\"status\":400}}]}",
         0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    acme_issue_req_t req;
    acme_issue_result_t *res = NULL;
    acme_problem_t *prob = NULL;

    memset(&req, 0, sizeof(req));
    req.domain = "a.test";
    req.names = names2(f->p);
    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), ACME_EINVALID);
    assert_true(unit_log_has(f->log, "a.test: validation of b.test failed: connection (HTTP "
                                     "400): Connection refused"));
}

static void hostile_tokens_are_refused(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/authz/a", 200, JSON,
         AUTHZ("a.test", "pending", "../../etc/passwd/AAAAAAAAAAAAAAAA", "pending"), 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    acme_authz_t *a = NULL;
    acme_problem_t *prob = NULL;

    assert_int_equal(acme_authz_get(&a, &prob, f->client, CA "/authz/a", f->p), ACME_EPROTO);
    assert_null(a);
    assert_false(acme_token_ok("short", 5));
    assert_false(acme_token_ok("AAAAAAAAAAAAAAAA/AAAAA", 22));
    assert_true(acme_token_ok(TOKEN_A, strlen(TOKEN_A)));
}

static void record_order(void *baton, const char *url)
{
    *(const char **)baton = url;
}

/* An order left by an earlier attempt is resumed when pending, replaced when invalid. */
static void issuance_resumes_pending_order(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/order/7", 200, JSON, ORDER("pending", ""), 0},
        {"POST", CA "/authz/a", 200, JSON, AUTHZ("a.test", "valid", TOKEN_A, "valid"), 0},
        {"POST", CA "/authz/b", 200, JSON, AUTHZ("b.test", "pending", TOKEN_B, "processing"), 0},
        {"POST", CA "/order/7", 200, JSON, ORDER("invalid", ""), 0},
        {"POST", CA "/authz/a", 200, JSON, AUTHZ("a.test", "valid", TOKEN_A, "valid"), 0},
        {"POST", CA "/authz/b", 200, JSON, AUTHZ("b.test", "invalid", TOKEN_B, "invalid"), 0},
        /* second attempt: the persisted order is invalid now, a new one is made */
        {"POST", CA "/order/7", 200, JSON, ORDER("invalid", ""), 0},
        {"POST", CA "/order", 201, JSON "Location: " CA "/order/8\n", ORDER("ready", ""), 0},
        {"POST", CA "/finalize/1", 200, JSON, ORDER("valid", ",\"certificate\":\"" CA "/c/8\""), 0},
        {"POST", CA "/c/8", 200, "", CHAIN_PEM, 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    acme_issue_req_t req;
    acme_issue_result_t *res = NULL;
    acme_problem_t *prob = NULL;
    const char *seen = NULL;
    int i;

    memset(&req, 0, sizeof(req));
    req.domain = "a.test";
    req.names = names2(f->p);
    req.order_url = CA "/order/7";
    req.on_order = record_order;
    req.baton = &seen;
    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), ACME_EINVALID);
    assert_string_equal(seen, CA "/order/7");
    /* The challenge already being processed is not answered a second time. */
    for (i = 0; i < f->ca->requests->nelts; i++) {
        assert_null(strstr(fake_req(f->ca, i)->url, "/chal/"));
    }
    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), APR_SUCCESS);
    assert_string_equal(seen, CA "/order/8");
    assert_string_equal(res->order_url, CA "/order/8");
    assert_true(unit_log_has(f->log, "earlier order " CA "/order/7 is invalid"));
}

static apr_status_t keep_key(void *baton, const acme_key_t *key)
{
    *(const acme_key_t **)baton = key;
    return APR_SUCCESS;
}

/* A certificate key is handed over before finalize; with it, an order that was finalized but
 * whose certificate never arrived is resumed, not ordered again. Without it, or when the CA
 * cannot say, no second certificate is asked for blindly. */
static void finalized_order_resumed_with_kept_key(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        /* attempt 1: finalize is sent, the answer is lost */
        {"POST", CA "/order", 201, JSON "Location: /order/9\n", ORDER("ready", ""), 0},
        {"POST", CA "/finalize/1", 0, NULL, NULL, ACME_ETRANSPORT},
        NONCE_OK, /* the lost answer took the nonce along */
        /* attempt 2: the CA does not answer about the order: no new order */
        {"POST", CA "/order/9", 503, "Retry-After: 120\n", "", 0},
        /* attempt 3: the order is valid; the kept key goes with its certificate */
        {"POST", CA "/order/9", 200, JSON, ORDER("valid", ",\"certificate\":\"" CA "/c/9\""), 0},
        {"POST", CA "/c/9", 200, "", CHAIN_PEM, 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    acme_issue_req_t req;
    acme_issue_result_t *res = NULL;
    acme_problem_t *prob = NULL;
    const acme_key_t *kept = NULL;

    memset(&req, 0, sizeof(req));
    req.domain = "a.test";
    req.names = names2(f->p);
    req.on_key = keep_key;
    req.baton = &kept;
    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), ACME_ETRANSPORT);
    assert_non_null(kept);
    /* The relative Location was resolved against the request URL. */
    assert_string_equal(fake_req(f->ca, 2)->url, CA "/order");
    assert_non_null(prob);
    assert_non_null(strstr(prob->detail, CA "/finalize/1"));

    req.order_url = CA "/order/9";
    req.key = (acme_key_t *)kept;
    prob = NULL;
    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), ACME_ESERVER);
    assert_int_equal(prob->retry_after, apr_time_from_sec(120));

    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), APR_SUCCESS);
    assert_ptr_equal(res->key, kept);
    assert_string_equal(res->chain_pem, CHAIN_PEM);
}

/* An order an earlier attempt finalized may still be processing when it is resumed: it is
 * polled until valid, as after a finalize of our own, and its certificate downloaded. */
static void processing_order_resumed_is_polled(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/order/9", 200, JSON, ORDER("processing", ""), 0},
        {"POST", CA "/order/9", 200, JSON "Retry-After: 2\n", ORDER("processing", ""), 0},
        {"POST", CA "/order/9", 200, JSON, ORDER("valid", ",\"certificate\":\"" CA "/c/9\""), 0},
        {"POST", CA "/c/9", 200, "", CHAIN_PEM, 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    acme_issue_req_t req;
    acme_issue_result_t *res = NULL;
    acme_problem_t *prob = NULL;
    acme_key_t *kept;

    assert_int_equal(acme_key_generate(&kept, ACME_KEY_EC256, f->p), APR_SUCCESS);
    memset(&req, 0, sizeof(req));
    req.domain = "a.test";
    req.names = names2(f->p);
    req.order_url = CA "/order/9";
    req.key = kept;
    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), APR_SUCCESS);
    assert_ptr_equal(res->key, kept);
    assert_string_equal(res->chain_pem, CHAIN_PEM);
    assert_int_equal(f->ca->requests->nelts, (int)(sizeof(script) / sizeof(script[0])));
    /* The first poll after ACME_POLL_FIRST, the second after the CA's Retry-After. */
    assert_int_equal(f->clock->slept, ACME_POLL_FIRST + apr_time_from_sec(2));
}

/* A directory listing profiles (draft-ietf-acme-profiles), and ones that list none. */
#define DIR_PROFILES(profiles)                                                                     \
    {                                                                                              \
        "GET", CA "/dir", 200, JSON,                                                               \
            "{\"newNonce\":\"" CA "/nonce\",\"newAccount\":\"" CA "/acct\",\"newOrder\":\"" CA     \
            "/order\",\"meta\":{\"profiles\":" profiles "}}",                                      \
            0                                                                                      \
    }

/* ACMEProfile: asked for when the directory lists it; else ordered without, or, when it is
 * mandatory, a configuration error that says what the CA offers. One directory fetch for all. */
static void profile_picked_from_directory(void **state)
{
    static const fake_answer_t script[] = {
        DIR_PROFILES("{\"classic\":\"90 days\",\"shortlived\":\"6 days\"}"),
    };
    static const fake_answer_t none[] = {DIR_OK};
    static const fake_answer_t odd[] = {DIR_PROFILES("[\"classic\"]")};
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 0);
    acme_problem_t *prob = NULL;
    const char *use = "x", *offered = NULL;
    apr_status_t rv;

    assert_int_equal(acme_profile_pick(&use, &offered, &prob, f->client, "shortlived", 1, f->p),
                     APR_SUCCESS);
    assert_string_equal(use, "shortlived");
    assert_string_equal(offered, "classic, shortlived");
    assert_int_equal(acme_profile_pick(&use, &offered, &prob, f->client, "tlsserver", 0, f->p),
                     APR_SUCCESS);
    assert_null(use);
    assert_string_equal(offered, "classic, shortlived");
    rv = acme_profile_pick(&use, &offered, &prob, f->client, "tlsserver", 1, f->p);
    assert_int_equal(rv, ACME_ECONFIG);
    assert_false(acme_status_is_transient(rv));
    assert_non_null(prob);
    assert_non_null(strstr(prob->detail, "does not offer the profile tlsserver (it offers: "
                                         "classic, shortlived), and ACMEProfile says it is "
                                         "mandatory"));
    assert_true(unit_log_has(f->log, "ACME00160: "));
    assert_int_equal(f->ca->requests->nelts, 1);

    /* A CA that lists no profiles (pebble 2.4), or lists them in another form. */
    f = fixture(*state, FAKE_CA(*state, none), 0);
    assert_int_equal(acme_profile_pick(&use, &offered, &prob, f->client, "classic", 0, f->p),
                     APR_SUCCESS);
    assert_null(use);
    assert_string_equal(offered, "none");
    f = fixture(*state, FAKE_CA(*state, odd), 0);
    assert_int_equal(acme_profile_pick(&use, &offered, &prob, f->client, "classic", 1, f->p),
                     ACME_ECONFIG);
    assert_non_null(strstr(prob->detail, "(it offers: none)"));
}

/* The order names the profile; an order of an earlier attempt under another profile is not
 * resumed; the issuance's log line names the profile. */
static void issuance_asks_for_the_profile(void **state)
{
    static const fake_answer_t script[] = {
        DIR_PROFILES("{\"classic\":\"\",\"shortlived\":\"\"}"),
        NONCE_OK,
        {"POST", CA "/order/7", 200, JSON, ORDER("pending", ",\"profile\":\"classic\""), 0},
        {"POST", CA "/order", 201, JSON "Location: " CA "/order/8\n",
         ORDER("ready", ",\"profile\":\"shortlived\""), 0},
        {"POST", CA "/finalize/1", 200, JSON, ORDER("valid", ",\"certificate\":\"" CA "/c/8\""), 0},
        {"POST", CA "/c/8", 200, "", CHAIN_PEM, 0},
        /* without a profile, none is named */
        {"POST", CA "/order", 201, JSON "Location: " CA "/order/9\n", ORDER("ready", ""), 0},
        {"POST", CA "/finalize/1", 200, JSON, ORDER("valid", ",\"certificate\":\"" CA "/c/9\""), 0},
        {"POST", CA "/c/9", 200, "", CHAIN_PEM, 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    acme_issue_req_t req;
    acme_issue_result_t *res = NULL;
    acme_problem_t *prob = NULL;
    json_t *payload;

    memset(&req, 0, sizeof(req));
    req.domain = "a.test";
    req.names = names2(f->p);
    req.order_url = CA "/order/7";
    req.profile = "shortlived";
    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), APR_SUCCESS);
    assert_string_equal(res->order_url, CA "/order/8");
    assert_string_equal(res->profile, "shortlived");
    payload = acme_json_pool(f->p, json_loads(fake_req(f->ca, 3)->payload, 0, NULL));
    assert_string_equal(acme_json_str(payload, "profile"), "shortlived");
    assert_true(unit_log_has(f->log, "earlier order " CA "/order/7 is for the profile classic, "
                                     "not shortlived; making a new one"));
    assert_true(unit_log_has(f->log, "a.test: certificate issued under the profile shortlived"));

    req.order_url = NULL;
    req.profile = NULL;
    assert_int_equal(acme_issue(&res, &prob, f->client, &req, f->p), APR_SUCCESS);
    assert_null(res->profile);
    payload = acme_json_pool(f->p, json_loads(fake_req(f->ca, 6)->payload, 0, NULL));
    assert_null(json_object_get(payload, "profile"));
}

static void cancel_and_bounds(void **state)
{
    static const fake_answer_t script[] = {
        DIR_OK,
        NONCE_OK,
        {"POST", CA "/order", 429, PROBLEM "Retry-After: 99999999\n",
         "{\"type\":\"urn:ietf:params:acme:error:rateLimited\"}", 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    volatile apr_uint32_t stop = 0;
    acme_problem_t *prob = NULL;
    acme_order_t *order;

    /* No CA may park us for more than a day. */
    assert_int_equal(acme_order_new(&order, &prob, f->client, names2(f->p), NULL, f->p),
                     ACME_ERATELIMITED);
    assert_int_equal(prob->retry_after, ACME_RETRY_AFTER_MAX);
    /* A stopping server stops before the next request. */
    acme_client_set_cancel(f->client, &stop);
    stop = 1;
    assert_int_equal(acme_order_new(&order, &prob, f->client, names2(f->p), NULL, f->p),
                     ACME_ECANCELLED);
    assert_int_equal(f->ca->requests->nelts, 3);
}

static void unreachable_ca_says_why(void **state)
{
    static const fake_answer_t script[] = {
        {"GET", CA "/dir", 0, NULL, "Failed to connect to ca.test port 443", ACME_ETRANSPORT},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    acme_problem_t *prob = NULL;
    acme_order_t *order;

    assert_int_equal(acme_order_new(&order, &prob, f->client, names2(f->p), NULL, f->p),
                     ACME_ETRANSPORT);
    assert_non_null(prob);
    assert_non_null(strstr(acme_problem_describe(prob, f->p), "GET " CA "/dir: Failed to connect"));
    assert_non_null(strstr(prob->detail, "Failed to connect to ca.test port 443"));
}

/* A directory handed over from an earlier client saves the GET; a bad one is refused. */
static void seeded_directory_saves_a_request(void **state)
{
    static const fake_answer_t script[] = {
        NONCE_OK,
        {"POST", CA "/order/1", 200, JSON, ORDER("ready", ""), 0},
    };
    fixture_t *f = fixture(*state, FAKE_CA(*state, script), 1);
    acme_problem_t *prob = NULL;
    acme_order_t *order;
    const char *json;

    assert_int_equal(acme_client_seed_directory(f->client, "{\"newNonce\":1}", 13), APR_EINVAL);
    assert_null(acme_client_directory_json(f->client, f->p));
    assert_int_equal(acme_client_seed_directory(f->client, FAKE_DIRECTORY, strlen(FAKE_DIRECTORY)),
                     APR_SUCCESS);
    assert_int_equal(acme_order_get(&order, &prob, f->client, CA "/order/1", f->p), APR_SUCCESS);
    assert_int_equal(f->ca->requests->nelts, 2); /* no GET of the directory */
    json = acme_client_directory_json(f->client, f->p);
    assert_non_null(strstr(json, CA "/order"));
}

typedef struct later_t {
    volatile apr_uint32_t *flag;
    apr_interval_time_t after;
} later_t;

static void *APR_THREAD_FUNC set_later(apr_thread_t *thread, void *data)
{
    later_t *l = data;
    apr_sleep(l->after);
    *l->flag = 1;
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

/* The real transport (libcurl) against a CA that accepts the connection and never answers: the
 * cancel flag aborts the request in flight (a stopping server), long before the transport's own
 * timeouts (10 s to connect, 30 s in all); a flag already up sends nothing. */
static void curl_request_aborted_by_cancel(void **state)
{
    apr_pool_t *p = *state;
    volatile apr_uint32_t stop = 0;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    acme_http_opts_t opts;
    acme_http_req_t req;
    acme_http_resp_t *resp;
    acme_http_t *http;
    apr_thread_t *t;
    apr_status_t trv;
    later_t later = {&stop, apr_time_from_msec(300)};
    int s = socket(AF_INET, SOCK_STREAM, 0);

    /* Listening is enough: the kernel completes the connection, nobody ever answers. */
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s, 4), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    assert_int_equal(acme_http_global_init(), APR_SUCCESS);
    memset(&opts, 0, sizeof(opts));
    opts.cancel = &stop;
    assert_int_equal(acme_http_curl_create(&http, &opts, NULL, p), APR_SUCCESS);
    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = apr_psprintf(p, "https://127.0.0.1:%d/dir", ntohs(sa.sin_port));

    assert_int_equal(apr_thread_create(&t, NULL, set_later, &later, p), APR_SUCCESS);
    /* Without the flag it would end at the connect timeout, as ACME_ETRANSPORT. */
    assert_int_equal(http->perform(http, &req, &resp, p), ACME_ECANCELLED);
    assert_non_null(strstr(http->error, "cancelled"));
    apr_thread_join(&trv, t);
    assert_int_equal(http->perform(http, &req, &resp, p), ACME_ECANCELLED);
    close(s);
}

static const struct CMUnitTest tests[] = {
    FAKE_CA_TEST(directory_cached_and_nonces_reused),
    FAKE_CA_TEST(bad_nonce_retried_with_fresh_nonce),
    FAKE_CA_TEST(bad_nonce_retries_are_bounded),
    FAKE_CA_TEST(rate_limit_surfaces_retry_after),
    FAKE_CA_TEST(bad_answers_are_refused),
    FAKE_CA_TEST(directory_and_nonce_failures),
    FAKE_CA_TEST(retry_after_forms),
    FAKE_CA_TEST(link_headers),
    FAKE_CA_TEST(proxy_urls),
    FAKE_CA_TEST(issuance_reuses_authz_and_honours_retry_after),
    FAKE_CA_TEST(issuance_publishes_key_authorization),
    FAKE_CA_TEST(preferred_chain_kept),
    FAKE_CA_TEST(preferred_chain_absent_keeps_default),
    FAKE_CA_TEST(alternates_only_when_preferred),
    FAKE_CA_TEST(responders_picked_per_authorization),
    FAKE_CA_TEST(no_responder_for_authorization),
    FAKE_CA_TEST(polling_is_bounded),
    FAKE_CA_TEST(long_retry_after_ends_the_attempt),
    FAKE_CA_TEST(invalid_order_names_the_failed_identifier),
    FAKE_CA_TEST(hostile_tokens_are_refused),
    FAKE_CA_TEST(issuance_resumes_pending_order),
    FAKE_CA_TEST(finalized_order_resumed_with_kept_key),
    FAKE_CA_TEST(processing_order_resumed_is_polled),
    FAKE_CA_TEST(cancel_and_bounds),
    FAKE_CA_TEST(unreachable_ca_says_why),
    FAKE_CA_TEST(seeded_directory_saves_a_request),
    FAKE_CA_TEST(profile_picked_from_directory),
    FAKE_CA_TEST(issuance_asks_for_the_profile),
    UNIT_TEST(curl_request_aborted_by_cancel),
};

UNIT_MAIN("client", tests)
