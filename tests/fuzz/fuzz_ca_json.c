/* fuzz_ca_json.c - the JSON objects a CA sends, through the real client calls that receive them:
 * directory, account, order (newOrder, POST-as-GET, finalize), authorization, challenge,
 * problem documents (with the badNonce retry loop) and renewalInfo (RFC 9773), and what the
 * core does next with each (key authorization of a token, the retry schedule of a problem, a
 * time in the ARI window).
 *
 * Input: one byte choosing the object, one byte of flags (201, Location, Retry-After and its
 * form, Content-Type, a variant of the call), one byte choosing the HTTP status of an error
 * answer, then the body the CA answers with.
 */
#include "fuzz.h"

#include "acme_ari.h"
#include "acme_job.h"
#include "acme_order.h"
#include "acme_tokens.h"

enum {
    K_DIRECTORY,
    K_ACCOUNT,
    K_ORDER_NEW,
    K_ORDER_GET,
    K_FINALIZE,
    K_AUTHZ,
    K_CHALLENGE,
    K_PROBLEM,
    K_ARI,
    K_COUNT
};

static const int error_statuses[] = {400, 401, 403, 404, 409, 429, 500, 503};
static const char *const content_types[] = {"application/json", "application/problem+json", "",
                                            "text/html; charset=utf-8"};

#define ORDER_OK                                                                                   \
    "{\"status\":\"pending\",\"expires\":\"2025-06-08T00:00:00Z\",\"identifiers\":[{\"type\":"     \
    "\"dns\",\"value\":\"a.test\"}],\"authorizations\":[\"" FUZZ_CA "/authz/1\"],"                 \
    "\"finalize\":\"" FUZZ_CA "/finalize/1\"}"

static const acme_key_t *account_key(void)
{
    static acme_key_t *key;

    if (!key) {
        FUZZ_ASSERT(acme_key_generate(&key, ACME_KEY_EC256, fuzz_root_pool()) == APR_SUCCESS);
        fuzz_keep(acme_key_evp(key));
    }
    return key;
}

static void check_problem(const acme_problem_t *prob, apr_status_t rv, apr_pool_t *p)
{
    acme_job_t *job;
    int i;

    if (!prob) {
        return;
    }
    FUZZ_ASSERT(prob->type && prob->name && prob->detail && prob->subproblems);
    FUZZ_ASSERT(strlen(prob->detail) <= ACME_PROBLEM_DETAIL_MAX);
    FUZZ_ASSERT(prob->subproblems->nelts <= ACME_PROBLEM_SUB_MAX);
    FUZZ_ASSERT(prob->retry_after >= -1 && prob->retry_after <= ACME_RETRY_AFTER_MAX);
    /* The CA's text is kept as written (log sinks escape it); what a tool would print is one
     * line with no control character. */
    {
        const char *safe = acme_log_safe(acme_problem_describe(prob, p), 0, p);
        for (i = 0; safe[i]; i++) {
            FUZZ_ASSERT((unsigned char)safe[i] >= 0x20 && safe[i] != 0x7f);
        }
    }
    FUZZ_ASSERT(acme_problem_advice(prob->rv) != NULL);
    (void)acme_ari_replaces_refused(prob);
    /* What the driver does with a failure: the retry schedule, never sooner than asked. */
    job = acme_job_make("a.test", p);
    acme_job_failed(job, rv, prob, FUZZ_NOW, 12345, p);
    FUZZ_ASSERT(job->next_run > FUZZ_NOW);
    FUZZ_ASSERT(prob->retry_after < 0 || job->next_run >= FUZZ_NOW + prob->retry_after);
}

static void check_order(const acme_order_t *o)
{
    int i;

    FUZZ_ASSERT(o->status != ACME_STATE_UNKNOWN);
    FUZZ_ASSERT(o->identifiers->nelts >= 1 && o->identifiers->nelts <= ACME_ORDER_IDENTIFIERS_MAX);
    FUZZ_ASSERT(o->authzs->nelts <= ACME_ORDER_IDENTIFIERS_MAX);
    FUZZ_ASSERT(o->finalize && (o->status != ACME_STATE_VALID || o->certificate));
    for (i = 0; i < o->identifiers->nelts; i++) {
        const acme_ident_t *id = &APR_ARRAY_IDX(o->identifiers, i, acme_ident_t);
        FUZZ_ASSERT(id->type && id->value);
    }
    FUZZ_ASSERT(acme_state_name(o->status) != NULL);
}

static void check_challenge(const acme_challenge_t *ch, apr_pool_t *p)
{
    const char *keyauth = NULL;

    FUZZ_ASSERT(ch->type && ch->url);
    if (ch->token) {
        FUZZ_ASSERT(acme_token_ok(ch->token, strlen(ch->token)));
        /* The http-01 answer made from it (RFC 8555 section 8.1). */
        FUZZ_ASSERT(acme_key_authorization(&keyauth, account_key(), ch->token, p) == APR_SUCCESS);
        FUZZ_ASSERT(strncmp(keyauth, ch->token, strlen(ch->token)) == 0);
    }
}

static void fuzz_directory(fuzz_ca_t *ca, const char *body, apr_size_t len, apr_pool_t *p)
{
    acme_client_t *client, *other;
    acme_problem_t *prob = NULL;
    const json_t *dir;
    const char *url, *json;
    acme_order_t *order;
    acme_ari_t *ari;
    apr_array_header_t *names = apr_array_make(p, 1, sizeof(const char *));
    apr_status_t rv;

    ca->directory = body;
    ca->directory_len = len;
    client = fuzz_client(ca, p);
    /* Seeding from the same text decides as the fetch does. */
    other = fuzz_client(ca, p);
    (void)acme_client_seed_directory(other, body, len);
    rv = acme_client_directory(&dir, client);
    if (rv != APR_SUCCESS) {
        FUZZ_ASSERT(acme_client_directory_problem(client) != NULL);
        check_problem(acme_client_directory_problem(client), rv, p);
        FUZZ_ASSERT(acme_client_directory_json(client, p) == NULL);
        return;
    }
    FUZZ_ASSERT(acme_client_directory_problem(client) == NULL);
    json = acme_client_directory_json(client, p);
    FUZZ_ASSERT(json != NULL);
    other = fuzz_client(ca, p);
    FUZZ_ASSERT(acme_client_seed_directory(other, json, strlen(json)) == APR_SUCCESS);
    (void)acme_client_resource(&url, &prob, client, "keyChange");
    /* The URLs of the directory are used as they are: a new order and a renewalInfo query. */
    acme_client_set_account(client, account_key(), FUZZ_CA "/acct/1");
    APR_ARRAY_PUSH(names, const char *) = "a.test";
    ca->status = 201;
    apr_table_set(ca->headers, "Location", "/order/1");
    apr_table_set(ca->headers, "Content-Type", "application/json");
    ca->body = ORDER_OK;
    ca->body_len = strlen(ORDER_OK);
    prob = NULL;
    ca->requests = 0;
    rv = acme_order_new(&order, &prob, client, names, NULL, p);
    if (rv == APR_SUCCESS) {
        check_order(order);
    } else {
        check_problem(prob, rv, p);
    }
    prob = NULL;
    ca->requests = 0;
    rv = acme_ari_fetch(&ari, &prob, client, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", p);
    if (rv == APR_SUCCESS) {
        FUZZ_ASSERT(ari->end > ari->start);
    } else {
        check_problem(prob, rv, p);
    }
}

static void fuzz_object(fuzz_ca_t *ca, int kind, unsigned opt, unsigned st, const char *body,
                        apr_size_t len, apr_pool_t *p)
{
    acme_client_t *client = fuzz_client(ca, p);
    acme_problem_t *prob = NULL;
    acme_order_t *order = NULL, given;
    acme_authz_t *authz;
    acme_challenge_t *ch;
    acme_ari_t *ari;
    apr_array_header_t *names = apr_array_make(p, 2, sizeof(const char *));
    const char *url = NULL;
    apr_status_t rv = APR_SUCCESS;
    int i;

    acme_client_set_account(client, account_key(), FUZZ_CA "/acct/1");
    ca->status = kind == K_ACCOUNT || kind == K_ORDER_NEW ? 200 + (opt & 1) : 200;
    if (kind == K_PROBLEM) {
        ca->status = error_statuses[st % (sizeof(error_statuses) / sizeof(error_statuses[0]))];
    }
    apr_table_set(ca->headers, "Content-Type", content_types[(opt >> 3) % 4]);
    if (opt & 2) {
        apr_table_set(ca->headers, "Location", FUZZ_CA "/obj/1");
    }
    if (opt & 4) {
        apr_table_set(ca->headers, "Retry-After",
                      (opt & 0x80) ? "120" : "Sun, 01 Jun 2025 01:00:00 GMT");
    }
    ca->body = body;
    ca->body_len = len;
    APR_ARRAY_PUSH(names, const char *) = "a.test";
    APR_ARRAY_PUSH(names, const char *) = "192.0.2.1";

    switch (kind) {
    case K_ACCOUNT:
        rv = (opt & 0x40)
                 ? acme_account_find(&url, &prob, client, account_key(), p)
                 : acme_account_register(&url, &prob, client, account_key(),
                                         &(acme_account_req_t){NULL, 1, NULL, NULL, NULL, NULL}, p);
        FUZZ_ASSERT(rv != APR_SUCCESS || url != NULL);
        break;
    case K_ORDER_NEW:
        rv = acme_order_new(&order, &prob, client, names, (opt & 0x40) ? "a.b" : NULL, p);
        break;
    case K_ORDER_GET:
    case K_PROBLEM:
        rv = acme_order_get(&order, &prob, client, FUZZ_CA "/order/1", p);
        break;
    case K_FINALIZE:
        memset(&given, 0, sizeof(given));
        given.url = FUZZ_CA "/order/1";
        given.finalize = FUZZ_CA "/finalize/1";
        rv = acme_order_finalize(&order, &prob, client, &given, (const unsigned char *)"\x30\x00",
                                 2, p);
        break;
    case K_AUTHZ:
        rv = acme_authz_get(&authz, &prob, client, FUZZ_CA "/authz/1", p);
        if (rv == APR_SUCCESS) {
            FUZZ_ASSERT(authz->identifier.type && authz->identifier.value);
            FUZZ_ASSERT(authz->challenges->nelts <= ACME_AUTHZ_CHALLENGES_MAX);
            for (i = 0; i < authz->challenges->nelts; i++) {
                check_challenge(&APR_ARRAY_IDX(authz->challenges, i, acme_challenge_t), p);
            }
            (void)acme_authz_challenge(authz, "http-01");
            check_problem(acme_authz_error(authz), ACME_EVALIDATION, p);
        }
        break;
    case K_CHALLENGE:
        rv = acme_challenge_respond(&ch, &prob, client, FUZZ_CA "/chall/1", p);
        if (rv == APR_SUCCESS) {
            check_challenge(ch, p);
            check_problem(ch->error, ACME_EVALIDATION, p);
        }
        break;
    case K_ARI:
        /* The body as the parser sees it, and through the GET that fetches it. */
        rv = acme_ari_parse(&ari, body, len, (opt & 4) ? apr_time_from_sec(120) : -1, FUZZ_NOW, p);
        if (rv == APR_SUCCESS) {
            FUZZ_ASSERT(ari->end > ari->start);
            FUZZ_ASSERT(ari->recheck >= FUZZ_NOW + ACME_ARI_RECHECK_MIN &&
                        ari->recheck <= FUZZ_NOW + ACME_ARI_RECHECK_MAX);
            i = 0;
            while (i < 4) {
                apr_time_t t =
                    acme_ari_pick(ari, (apr_uint64_t)opt * 0x9e3779b97f4a7c15ULL + (apr_uint64_t)i);
                FUZZ_ASSERT(t >= ari->start && t < ari->end);
                i++;
            }
        }
        prob = NULL;
        ca->requests = 0;
        rv = acme_ari_fetch(&ari, &prob, client, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", p);
        break;
    }
    if (order) {
        check_order(order);
        check_problem(order->error, ACME_EINVALID, p);
    }
    if (rv != APR_SUCCESS) {
        check_problem(prob, rv, p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    fuzz_input_t in;
    fuzz_ca_t *ca = fuzz_ca_make(p);
    unsigned kind, opt, st;
    apr_size_t len;
    const char *body;

    fuzz_input_init(&in, data, size);
    kind = fuzz_byte(&in) % K_COUNT;
    opt = fuzz_byte(&in);
    st = fuzz_byte(&in);
    body = fuzz_rest(&in, &len, p);
    if (kind == K_DIRECTORY) {
        fuzz_directory(ca, body, len, p);
    } else {
        fuzz_object(ca, (int)kind, opt, st, body, len, p);
    }
    apr_pool_destroy(p);
    return 0;
}
