/* test_issue.c - a whole issuance through a fake CA: authorization reuse, Retry-After,
 * published answers, responders picked per authorization, alternate and preferred chains,
 * polling bounds (resumed orders and profiles: test_issue_resume.c). */
#include <apr_date.h>

#include "client_util.h"
#include "pki_util.h"

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

static const struct CMUnitTest tests[] = {
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
};

UNIT_MAIN("issue", tests)
