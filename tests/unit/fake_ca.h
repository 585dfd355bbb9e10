/* fake_ca.h - a CA transport that replays a script of recorded answers, for unit tests of
 * protocol edge cases pebble cannot produce. Each request must match the next script entry
 * (method and URL); the request, and the nonce and payload of its JWS, are recorded. Like pebble
 * and Boulder, answers to HEAD and POST carry a fresh Replay-Nonce (unless the script names one or
 * says "X-No-Nonce"), answers to GET none.
 *
 * Every answer of a script must be asked for: a test that uses a fake CA runs as FAKE_CA_TEST(f),
 * whose teardown fails the test when answers were left over (the code stopped earlier than the
 * test believes). A test that means to leave answers unused says how many with
 * fake_ca_leave_unused(). */
#ifndef ACME_FAKE_CA_H
#define ACME_FAKE_CA_H

#include "acme_http.h"
#include "unit.h"

#define CA "https://ca.test"
#define FAKE_DIRECTORY                                                                             \
    "{\"newNonce\":\"" CA "/nonce\",\"newAccount\":\"" CA "/acct\",\"newOrder\":\"" CA             \
    "/order\",\"revokeCert\":\"" CA "/revoke\",\"keyChange\":\"" CA "/kc\","                       \
    "\"meta\":{\"termsOfService\":\"" CA "/tos\"}}"

typedef struct fake_answer_t {
    const char *method;
    const char *url;
    int status;
    const char *headers; /* "Name: value\n" lines */
    const char *body;
    apr_status_t rv; /* when set: the transport fails with it instead of answering */
} fake_answer_t;

typedef struct fake_request_t {
    const char *method;
    const char *url;
    const char *nonce; /* from the JWS protected header */
    const char *kid;   /* idem, NULL when jwk was used */
    int has_jwk;
    const char *payload; /* decoded JWS payload */
} fake_request_t;

typedef struct fake_ca_t {
    acme_http_t http;
    const fake_answer_t *script;
    int n, next;
    int nonces;
    int unused;                   /* answers the test leaves unused on purpose */
    apr_array_header_t *requests; /* fake_request_t */
    struct fake_ca_t *next_ca;    /* the other fake CAs of this test */
} fake_ca_t;

/* The fake CAs made by the running test; fake_ca_armed when it runs as FAKE_CA_TEST. */
static fake_ca_t *fake_ca_all;
static int fake_ca_armed;

static inline void fake_record(fake_ca_t *ca, const acme_http_req_t *req, apr_pool_t *p)
{
    fake_request_t *r = apr_array_push(ca->requests);
    json_t *jws, *prot;
    const unsigned char *raw;
    apr_size_t len;

    memset(r, 0, sizeof(*r));
    r->method = apr_pstrdup(ca->requests->pool, req->method);
    r->url = apr_pstrdup(ca->requests->pool, req->url);
    if (!req->body) {
        return;
    }
    jws = acme_json_pool(p, json_loadb(req->body, req->body_len, 0, NULL));
    assert_non_null(jws);
    assert_int_equal(acme_b64u_decode(&raw, &len, acme_json_str(jws, "protected"),
                                      strlen(acme_json_str(jws, "protected")), p),
                     APR_SUCCESS);
    prot = acme_json_pool(p, json_loadb((const char *)raw, len, 0, NULL));
    assert_non_null(prot);
    /* The url of the protected header is the request URL (RFC 8555 section 6.4). */
    assert_string_equal(acme_json_str(prot, "url"), req->url);
    r->nonce = apr_pstrdup(ca->requests->pool, acme_json_str(prot, "nonce"));
    r->kid = acme_json_str(prot, "kid")
                 ? apr_pstrdup(ca->requests->pool, acme_json_str(prot, "kid"))
                 : NULL;
    r->has_jwk = json_object_get(prot, "jwk") != NULL;
    assert_int_equal(acme_b64u_decode(&raw, &len, acme_json_str(jws, "payload"),
                                      strlen(acme_json_str(jws, "payload")), p),
                     APR_SUCCESS);
    r->payload = apr_pstrmemdup(ca->requests->pool, (const char *)raw, len);
}

static inline apr_status_t fake_perform(acme_http_t *http, const acme_http_req_t *req,
                                        acme_http_resp_t **presp, apr_pool_t *p)
{
    fake_ca_t *ca = http->baton;
    const fake_answer_t *a;
    acme_http_resp_t *resp;
    char *lines, *line, *last = NULL;

    if (ca->next >= ca->n) {
        fail_msg("unexpected request %s %s (script has %d answers)", req->method, req->url, ca->n);
    }
    a = &ca->script[ca->next++];
    if (strcmp(a->method, req->method) != 0 || strcmp(a->url, req->url) != 0) {
        fail_msg("request %d: expected %s %s, got %s %s", ca->next, a->method, a->url, req->method,
                 req->url);
    }
    fake_record(ca, req, p);
    if (a->rv) {
        /* A failed transfer: the body of the script entry is the transport's words. */
        apr_cpystrn(http->error, a->body ? a->body : "", sizeof(http->error));
        return a->rv;
    }
    resp = apr_pcalloc(p, sizeof(*resp));
    resp->status = a->status;
    resp->headers = apr_table_make(p, 4);
    resp->body = a->body ? a->body : "";
    resp->body_len = strlen(resp->body);
    lines = apr_pstrdup(p, a->headers ? a->headers : "");
    for (line = apr_strtok(lines, "\n", &last); line; line = apr_strtok(NULL, "\n", &last)) {
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            apr_table_add(resp->headers, line, colon + 2);
        }
    }
    if (strcmp(req->method, "GET") != 0 && !apr_table_get(resp->headers, "Replay-Nonce") &&
        !apr_table_get(resp->headers, "X-No-Nonce")) {
        apr_table_set(resp->headers, "Replay-Nonce", apr_psprintf(p, "nonce%04d", ++ca->nonces));
    }
    *presp = resp;
    return APR_SUCCESS;
}

static inline fake_ca_t *fake_ca_make(apr_pool_t *p, const fake_answer_t *script, int n)
{
    fake_ca_t *ca = apr_pcalloc(p, sizeof(*ca));

    if (!fake_ca_armed) {
        fail_msg("a fake CA outside FAKE_CA_TEST: its unused answers would go unnoticed");
    }
    ca->http.perform = fake_perform;
    ca->http.baton = ca;
    ca->script = script;
    ca->n = n;
    ca->requests = apr_array_make(p, 8, sizeof(fake_request_t));
    ca->next_ca = fake_ca_all;
    fake_ca_all = ca;
    return ca;
}

/* The test leaves the last n answers of ca's script unused on purpose (exactly n). */
static inline void fake_ca_leave_unused(fake_ca_t *ca, int n)
{
    ca->unused = n;
}

static inline int fake_ca_setup(void **state)
{
    fake_ca_all = NULL;
    fake_ca_armed = 1;
    return unit_pool_setup(state);
}

/* Fails the test when a script was not used up (less the answers it leaves unused on purpose),
 * naming the first answer nobody asked for. */
static inline int fake_ca_teardown(void **state)
{
    const fake_ca_t *ca;
    int bad = 0;

    for (ca = fake_ca_all; ca; ca = ca->next_ca) {
        if (ca->n - ca->next != ca->unused) {
            print_error("fake CA: %d of %d scripted answers used, %d meant to stay unused%s%s%s\n",
                        ca->next, ca->n, ca->unused, ca->next < ca->n ? "; the first unused: " : "",
                        ca->next < ca->n ? ca->script[ca->next].method : "",
                        ca->next < ca->n ? apr_pstrcat(*state, " ", ca->script[ca->next].url, NULL)
                                         : "");
            bad = 1;
        }
    }
    fake_ca_all = NULL;
    fake_ca_armed = 0;
    unit_pool_teardown(state);
    return bad ? -1 : 0;
}

#define FAKE_CA_TEST(f) cmocka_unit_test_setup_teardown(f, fake_ca_setup, fake_ca_teardown)

#define FAKE_CA(p, script) fake_ca_make(p, script, (int)(sizeof(script) / sizeof(script[0])))

static inline const fake_request_t *fake_req(const fake_ca_t *ca, int i)
{
    assert_true(i < ca->requests->nelts);
    return &APR_ARRAY_IDX(ca->requests, i, fake_request_t);
}

#endif /* ACME_FAKE_CA_H */
