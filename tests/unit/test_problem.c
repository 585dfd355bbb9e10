/* test_problem.c - problem documents: the mapping table, parsing of odd bodies, messages. */
#include "acme_problem.h"
#include "unit.h"

static void maps_every_rfc_type(void **state)
{
    static const struct {
        const char *name;
        int http;
        apr_status_t rv;
        int transient;
    } rows[] = {
        {"badNonce", 400, ACME_EBADNONCE, 1},
        {"rateLimited", 429, ACME_ERATELIMITED, 1},
        {"badCSR", 400, ACME_EBADCSR, 0},
        {"rejectedIdentifier", 400, ACME_EREJECTED, 0},
        {"unsupportedIdentifier", 400, ACME_EREJECTED, 0},
        {"malformed", 400, ACME_EMALFORMED, 0},
        {"orderNotReady", 403, ACME_ENOTREADY, 1},
        {"accountDoesNotExist", 400, ACME_ENOACCOUNT, 1},
        {"externalAccountRequired", 400, ACME_EEAB, 0},
        {"userActionRequired", 403, ACME_EUSERACTION, 0},
        {"serverInternal", 500, ACME_ESERVER, 1},
        {"unauthorized", 403, ACME_EUNAUTHORIZED, 1},
        {"connection", 400, ACME_EVALIDATION, 1},
        {"dns", 400, ACME_EVALIDATION, 1},
        {"incorrectResponse", 403, ACME_EVALIDATION, 1},
        {"caa", 403, ACME_EVALIDATION, 1},
        {"badPublicKey", 400, ACME_EBADKEY, 0},
        {"somethingNew", 400, ACME_EPROTO, 1},
        {"somethingNew", 503, ACME_ESERVER, 1},
        {"somethingNew", 429, ACME_ERATELIMITED, 1},
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        apr_status_t rv = acme_problem_rv(rows[i].name, rows[i].http);
        assert_int_equal(rv, rows[i].rv);
        assert_int_equal(acme_status_is_transient(rv), rows[i].transient);
        assert_non_null(acme_problem_advice(rv));
    }
}

static void parses_problem_with_subproblems(void **state)
{
    apr_pool_t *p = *state;
    const char *body = "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
                       "\"detail\":\"Some identifiers were rejected\",\"status\":400,"
                       "\"subproblems\":[{\"type\":\"urn:ietf:params:acme:error:malformed\","
                       "\"detail\":\"Invalid underscore in DNS name \\\"_example.org\\\"\","
                       "\"identifier\":{\"type\":\"dns\",\"value\":\"_example.org\"}},"
                       "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
                       "\"detail\":\"This CA will not issue for \\\"example.net\\\"\","
                       "\"identifier\":{\"type\":\"dns\",\"value\":\"example.net\"}}]}";
    acme_problem_t *prob = acme_problem_from_body(body, strlen(body), 400, p);
    const char *d;

    assert_string_equal(prob->name, "rejectedIdentifier");
    assert_int_equal(prob->rv, ACME_EREJECTED);
    assert_int_equal(prob->subproblems->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(prob->subproblems, 0, acme_problem_t *)->identifier,
                        "dns:_example.org");
    assert_int_equal(APR_ARRAY_IDX(prob->subproblems, 1, acme_problem_t *)->rv, ACME_EREJECTED);
    d = acme_problem_describe(prob, p);
    assert_non_null(strstr(d, "rejectedIdentifier (HTTP 400): Some identifiers were rejected"));
    assert_non_null(strstr(d, "dns:example.net: rejectedIdentifier"));
}

static void tolerates_bad_bodies(void **state)
{
    apr_pool_t *p = *state;
    static const struct {
        const char *body;
        int http;
        apr_status_t rv;
    } rows[] = {
        {"", 500, ACME_ESERVER},
        {"<html><body>502 Bad Gateway</body></html>", 502, ACME_ESERVER},
        {"{\"type\":", 400, ACME_EPROTO},                  /* truncated JSON */
        {"[1,2,3]", 400, ACME_EPROTO},                     /* not an object */
        {"{\"type\":42,\"detail\":[]}", 400, ACME_EPROTO}, /* wrong types */
        {"{\"detail\":\"no type\"}", 429, ACME_ERATELIMITED},
        {"{\"type\":\"urn:ietf:params:acme:error:badNonce\",\"type\":\"x\"}", 400,
         ACME_EPROTO}, /* duplicate keys are refused */
    };
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        acme_problem_t *prob =
            acme_problem_from_body(rows[i].body, strlen(rows[i].body), rows[i].http, p);
        assert_non_null(prob);
        assert_int_equal(prob->rv, rows[i].rv);
        assert_non_null(acme_problem_describe(prob, p));
    }
}

static void bounds_detail_and_subproblems(void **state)
{
    apr_pool_t *p = *state;
    json_t *j = acme_json_pool(p, json_object());
    json_t *subs = json_array();
    char *longdetail = apr_palloc(p, 5001);
    acme_problem_t *prob;
    int i;

    memset(longdetail, 'x', 5000);
    longdetail[5000] = '\0';
    longdetail[10] = '\n'; /* kept as the CA wrote it: the log escapes it (test_core) */
    json_object_set_new(j, "type", json_string("urn:ietf:params:acme:error:malformed"));
    json_object_set_new(j, "detail", json_string(longdetail));
    for (i = 0; i < 1000; i++) {
        json_array_append_new(subs, json_pack("{s:s}", "type", "x"));
    }
    json_object_set_new(j, "subproblems", subs);
    prob = acme_problem_from_json(j, 400, p);
    assert_int_equal(strlen(prob->detail), ACME_PROBLEM_DETAIL_MAX);
    assert_int_equal(prob->detail[10], '\n');
    assert_int_equal(prob->subproblems->nelts, ACME_PROBLEM_SUB_MAX);
    assert_int_equal(prob->subproblems_dropped, 1000 - ACME_PROBLEM_SUB_MAX);
    assert_non_null(strstr(acme_problem_describe(prob, p), "and 980 more"));
}

static const struct CMUnitTest tests[] = {
    UNIT_TEST(maps_every_rfc_type),
    UNIT_TEST(parses_problem_with_subproblems),
    UNIT_TEST(tolerates_bad_bodies),
    UNIT_TEST(bounds_detail_and_subproblems),
};

UNIT_MAIN("problem", tests)
