/* test_client.c - the protocol through a fake CA: directory caching, nonce reuse, badNonce
 * retries, Retry-After, problem documents, bad answers, proxies, cancellation; the issuance is
 * in test_issue.c. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <apr_date.h>
#include <apr_thread_proc.h>

#include "client_util.h"

#define ACCT_CREATED                                                                               \
    {                                                                                              \
        "POST", CA "/acct", 201, JSON "Location: " CA "/acct/1\n", "{\"status\":\"valid\"}", 0     \
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
    FAKE_CA_TEST(cancel_and_bounds),
    FAKE_CA_TEST(unreachable_ca_says_why),
    FAKE_CA_TEST(seeded_directory_saves_a_request),
    UNIT_TEST(curl_request_aborted_by_cancel),
};

UNIT_MAIN("client", tests)
