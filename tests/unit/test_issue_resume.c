/* test_issue_resume.c - issuance through a fake CA that continues where an earlier attempt
 * left off: a pending order, a finalized one with the key kept, one still processing; and
 * the certificate profile picked from the CA's directory and asked for in the order. */
#include "client_util.h"
#include "pki_util.h"

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

static const struct CMUnitTest tests[] = {
    FAKE_CA_TEST(issuance_resumes_pending_order),
    FAKE_CA_TEST(finalized_order_resumed_with_kept_key),
    FAKE_CA_TEST(processing_order_resumed_is_polled),
    FAKE_CA_TEST(profile_picked_from_directory),
    FAKE_CA_TEST(issuance_asks_for_the_profile),
};

UNIT_MAIN("issue_resume", tests)
