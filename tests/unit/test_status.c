/* test_status.c - the status document of one certificate, state by state, from a real store. */
#include "store_util.h"

#include "acme_job.h"
#include "acme_status.h"

/* The store as the worker leaves it: a set staged with meta.json, then promoted. */
static void stage_with_meta(acme_store_t *store, const tset_t *s, apr_pool_t *p)
{
    const char *why = NULL;
    json_t *meta = acme_json_pool(
        p, json_pack("{s:[s,s], s:s, s:s, s:I, s:s}", "names", NAME, "www." NAME, "ca",
                     "https://ca.test/dir", "key-type", "ec256", "obtained",
                     (json_int_t)apr_time_sec(apr_time_now()), "profile", "shortlived"));

    assert_int_equal(acme_store_stage(store, NAME, s->key, s->pem, strlen(s->pem), meta, &why, p),
                     APR_SUCCESS);
}

static json_t *status_of(fx_t *fx, const acme_status_in_t *in)
{
    json_t *doc = NULL;

    assert_int_equal(acme_status_cert(&doc, fx->store, NAME, in, fx->p), APR_SUCCESS);
    assert_non_null(doc);
    return doc;
}

static const char *str(const json_t *doc, const char *key)
{
    return acme_json_str(doc, key);
}

static const char *renewal(const json_t *doc, const char *key)
{
    return acme_json_str(json_object_get(doc, "renewal"), key);
}

static void fallback_before_any_certificate(void **state)
{
    fx_t *fx = *state;
    json_t *doc = status_of(fx, NULL);

    assert_string_equal(str(doc, "state"), "fallback");
    assert_string_equal(str(doc, "domain"), NAME);
    assert_true(json_is_null(json_object_get(doc, "certificate")));
    assert_true(json_is_null(json_object_get(doc, "staged")));
    assert_string_equal(renewal(doc, "reason"), "config-change");
    assert_int_equal(json_integer_value(json_object_get(doc, "failures")), 0);
    assert_true(json_is_null(json_object_get(doc, "last-attempt")));
    assert_null(json_object_get(doc, "store-errors"));
}

static void valid_after_issuance_and_no_key_material(void **state)
{
    fx_t *fx = *state;
    tset_t s = valid_set(fx->p);
    const char *key_pem, *text, *fp;
    apr_size_t key_len;
    const json_t *cert;
    json_t *doc;
    acme_status_in_t in;

    stage_with_meta(fx->store, &s, fx->p);
    promote_ok(fx->store, fx->p);
    acme_status_in_init(&in);
    in.domain = NAME;
    doc = status_of(fx, &in);
    assert_string_equal(str(doc, "state"), "valid");
    assert_string_equal(str(doc, "key-type"), "ec256");
    assert_string_equal(str(doc, "ca"), "https://ca.test/dir");
    cert = json_object_get(doc, "certificate");
    assert_true(json_is_object(cert));
    assert_non_null(str(cert, "serial"));
    assert_string_equal(str(cert, "issuer"), "CN=store test");
    assert_string_equal(str(cert, "profile"), "shortlived");
    assert_string_equal(str(cert, "key-type"), "ec256");
    assert_int_equal(json_integer_value(json_object_get(cert, "generation")), 1);
    assert_int_equal(json_array_size(json_object_get(cert, "names")), 2);
    fp = str(cert, "sha256-fingerprint");
    assert_non_null(fp);
    assert_int_equal(strlen(fp), 32 * 3 - 1);
    assert_non_null(str(cert, "not-after"));
    /* Not due for 60 days: the window decides. */
    assert_string_equal(renewal(doc, "reason"), "window");
    assert_true(str(json_object_get(doc, "last-attempt"), "result") != NULL);
    assert_string_equal(str(json_object_get(doc, "last-attempt"), "result"), "success");

    text = json_dumps(doc, JSON_COMPACT);
    assert_non_null(text);
    assert_null(strstr(text, "PRIVATE KEY"));
    assert_int_equal(acme_key_to_pem(&key_pem, &key_len, s.key, fx->p), APR_SUCCESS);
    /* Not a line of the key's base64 either. */
    assert_null(strstr(text, apr_pstrndup(fx->p, strchr(key_pem, '\n') + 1, 40)));
    free((void *)text);
}

static void staged_when_a_set_waits(void **state)
{
    fx_t *fx = *state;
    tset_t s1 = valid_set(fx->p), s2 = valid_set(fx->p);
    json_t *doc;

    stage_with_meta(fx->store, &s1, fx->p);
    promote_ok(fx->store, fx->p);
    stage_with_meta(fx->store, &s2, fx->p);
    doc = status_of(fx, NULL);
    assert_string_equal(str(doc, "state"), "staged");
    assert_true(json_is_object(json_object_get(doc, "staged")));
    assert_string_not_equal(str(json_object_get(doc, "staged"), "serial"),
                            str(json_object_get(doc, "certificate"), "serial"));
    assert_true(json_is_null(json_object_get(json_object_get(doc, "renewal"), "next")));
}

static void failed_with_problem_type(void **state)
{
    fx_t *fx = *state;
    apr_time_t now = apr_time_now();
    acme_problem_t *prob;
    acme_job_t *job = acme_job_make(NAME, fx->p);
    const json_t *last;
    json_t *doc;
    const char *body = "{\"type\":\"urn:ietf:params:acme:error:rejectedIdentifier\","
                       "\"detail\":\"no \\u001b[31m such name\"}";

    prob = acme_problem_from_body(body, strlen(body), 400, fx->p);
    acme_job_failed(job, prob->rv, prob, now, 0, fx->p);
    job->order_url = "https://ca.test/order/1";
    job->ca_url = "https://ca.test/dir";
    assert_int_equal(acme_job_save(fx->store, job, fx->p), APR_SUCCESS);

    doc = status_of(fx, NULL);
    assert_string_equal(str(doc, "state"), "failed");
    assert_int_equal(json_integer_value(json_object_get(doc, "failures")), 1);
    last = json_object_get(doc, "last-attempt");
    assert_string_equal(str(last, "result"), "failed");
    assert_string_equal(str(last, "problem-type"), "urn:ietf:params:acme:error:rejectedIdentifier");
    assert_non_null(strstr(str(last, "detail"), "rejectedIdentifier"));
    assert_null(strchr(str(last, "detail"), 0x1b)); /* no terminal escapes from the CA */
    assert_non_null(str(doc, "next-retry"));
    assert_string_equal(str(json_object_get(doc, "order"), "url"), "https://ca.test/order/1");
    assert_string_equal(str(doc, "ca"), "https://ca.test/dir");
}

static void renewing_expired_and_reasons(void **state)
{
    fx_t *fx = *state;
    tset_t s = valid_set(fx->p);
    acme_status_in_t in;
    json_t *doc;

    stage_with_meta(fx->store, &s, fx->p);
    promote_ok(fx->store, fx->p);
    acme_status_in_init(&in);

    in.now = apr_time_now() + apr_time_from_sec(80 * 86400); /* past the window */
    doc = status_of(fx, &in);
    assert_string_equal(str(doc, "state"), "renewing");
    assert_string_equal(renewal(doc, "reason"), "window");

    in.now = apr_time_now() + apr_time_from_sec(91 * 86400);
    assert_string_equal(str(status_of(fx, &in), "state"), "expired");

    in.now = 0;
    in.in_progress = 1;
    assert_string_equal(str(status_of(fx, &in), "state"), "renewing");
    in.in_progress = 0;

    in.ari_start = apr_time_now() + apr_time_from_sec(86400);
    in.ari_end = in.ari_start + apr_time_from_sec(3600);
    in.ari_renew_at = in.ari_start + apr_time_from_sec(60);
    in.ari_next_check = apr_time_now() + apr_time_from_sec(6 * 3600);
    in.ari_explanation = "https://ca.test/why";
    doc = status_of(fx, &in);
    assert_string_equal(renewal(doc, "reason"), "ari");
    assert_string_equal(renewal(doc, "next"), acme_status_time(in.ari_renew_at, fx->p));
    assert_string_equal(str(json_object_get(doc, "ari"), "explanation-url"), "https://ca.test/why");

    in.mismatch = "it lacks www2.a.test";
    assert_string_equal(renewal(status_of(fx, &in), "reason"), "config-change");
    in.requested = 1;
    doc = status_of(fx, &in);
    assert_string_equal(renewal(doc, "reason"), "requested");
    assert_string_equal(str(doc, "state"), "renewing");
}

static void account_and_bad_files(void **state)
{
    fx_t *fx = *state;
    acme_status_in_t in;
    json_t *doc, *acct;
    const char *id;

    acme_status_in_init(&in);
    in.ca_url = "https://ca.test/dir";
    id = acme_store_ca_id(in.ca_url, fx->p);
    acct = acme_json_pool(fx->p, json_pack("{s:s}", "url", "https://ca.test/acct/7"));
    assert_int_equal(
        acme_store_json_write(fx->store, apr_pstrcat(fx->p, "accounts/", id, "/account.json", NULL),
                              acct, fx->p),
        APR_SUCCESS);
    assert_int_equal(
        acme_store_write(fx->store, "jobs/" NAME ".json", "[1,", 3, APR_FPROT_UREAD, fx->p),
        APR_SUCCESS);
    doc = status_of(fx, &in);
    assert_string_equal(str(doc, "account"), "https://ca.test/acct/7");
    assert_string_equal(str(doc, "state"), "fallback");
    assert_int_equal(json_array_size(json_object_get(doc, "store-errors")), 1);

    assert_int_equal(acme_status_cert(&doc, fx->store, "../etc", NULL, fx->p), APR_EINVAL);
    assert_int_equal(acme_status_cert(&doc, fx->store, "*.a.test", NULL, fx->p), APR_EINVAL);
}

static void whole_document_and_codes(void **state)
{
    fx_t *fx = *state;
    apr_array_header_t *certs = apr_array_make(fx->p, 1, sizeof(json_t *));
    apr_array_header_t *cas = apr_array_make(fx->p, 1, sizeof(const char *));
    json_t *doc;
    int i;

    APR_ARRAY_PUSH(certs, json_t *) = status_of(fx, NULL);
    APR_ARRAY_PUSH(cas, const char *) = "https://ca.test/dir";
    assert_int_equal(acme_status_doc(&doc, "0.9", "/var/lib/acme", cas, certs, fx->p), APR_SUCCESS);
    assert_string_equal(str(doc, "module"), "0.9");
    assert_int_equal(json_array_size(json_object_get(doc, "certificates")), 1);
    assert_int_equal(json_array_size(json_object_get(doc, "cas")), 1);

    for (i = 0; i < 6; i++) {
        assert_int_equal(acme_status_state_code(acme_status_state_name(i)), i);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(acme_status_reason_code(acme_status_reason_name(i)), i);
    }
    assert_null(acme_status_state_name(6));
    assert_null(acme_status_state_name(-1));
    assert_int_equal(acme_status_state_code("bogus"), -1);
    assert_string_equal(acme_status_time(apr_time_from_sec(0), fx->p), "1970-01-01T00:00:00Z");
}

static const struct CMUnitTest tests[] = {
    STORE_TEST(fallback_before_any_certificate),
    STORE_TEST(valid_after_issuance_and_no_key_material),
    STORE_TEST(staged_when_a_set_waits),
    STORE_TEST(failed_with_problem_type),
    STORE_TEST(renewing_expired_and_reasons),
    STORE_TEST(account_and_bad_files),
    STORE_TEST(whole_document_and_codes),
};

UNIT_MAIN("status", tests)
