/* acme_responder.c - the http-01 responder: answers published in a token table (the one the
 * issuance uses when the caller gives no responders). The other types have files of their own
 * (acme_tlsalpn.c, acme_dns.c). */
#include <string.h>

#include "acme_issue.h"

static int http01_can_answer(acme_responder_t *r, const acme_ident_t *id, int wildcard)
{
    (void)r;
    (void)id;
    return !wildcard; /* RFC 8555 section 8.3: not for wildcard names */
}

static apr_status_t http01_setup(acme_responder_t *r, const acme_ident_t *id, int wildcard,
                                 const char *token, const char *keyauth, apr_time_t expires,
                                 acme_problem_t **pprob, apr_pool_t *p)
{
    acme_tokens_t *t = r->baton;

    (void)wildcard;
    (void)pprob;
    (void)p;
    return t ? t->put(t, token, id->value, keyauth, expires) : APR_SUCCESS;
}

static void http01_teardown(acme_responder_t *r, const acme_ident_t *id, int wildcard,
                            const char *token, const char *keyauth, apr_pool_t *p)
{
    acme_tokens_t *t = r->baton;

    (void)id;
    (void)wildcard;
    (void)keyauth;
    (void)p;
    if (t) {
        t->remove(t, token);
    }
}

void acme_responder_http01(acme_responder_t *r, acme_tokens_t *tokens)
{
    memset(r, 0, sizeof(*r));
    r->type = "http-01";
    r->can_answer = http01_can_answer;
    r->setup = http01_setup;
    r->teardown = http01_teardown;
    r->baton = tokens;
}
