/* acme_client.c - directory, nonces, signed requests and error answers of one CA session. */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include "acme_client.h"
#include "acme_jws.h"

struct acme_client_t {
    apr_pool_t *pool; /* lives as long as the client: directory, nonce, kid */
    const char *directory_url;
    acme_http_t *http;
    const acme_log_t *log;
    const acme_clock_t *clock;
    json_t *directory;
    char nonce[256]; /* latest Replay-Nonce; "" when none is held */
    const acme_key_t *key;
    const char *kid;
    unsigned requests;
    volatile apr_uint32_t *cancel;     /* non-zero: stop before the next request */
    acme_problem_t *directory_problem; /* why the last directory fetch failed */
};

apr_status_t acme_client_create(acme_client_t **pclient, const char *directory_url,
                                acme_http_t *http, const acme_log_t *log, const acme_clock_t *clock,
                                apr_pool_t *p)
{
    acme_client_t *c;

    if (!directory_url || !http) {
        return APR_EINVAL;
    }
    c = apr_pcalloc(p, sizeof(*c));
    c->pool = p;
    c->directory_url = apr_pstrdup(p, directory_url);
    c->http = http;
    c->log = log;
    c->clock = clock ? clock : acme_clock_system();
    *pclient = c;
    return APR_SUCCESS;
}

const acme_log_t *acme_client_log(const acme_client_t *client)
{
    return client->log;
}

const acme_clock_t *acme_client_clock(const acme_client_t *client)
{
    return client->clock;
}

const char *acme_client_directory_url(const acme_client_t *client)
{
    return client->directory_url;
}

unsigned acme_client_requests(const acme_client_t *client)
{
    return client->requests;
}

void acme_client_set_account(acme_client_t *client, const acme_key_t *key, const char *kid)
{
    client->key = key;
    client->kid = kid ? apr_pstrdup(client->pool, kid) : NULL;
}

const char *acme_client_kid(const acme_client_t *client)
{
    return client->kid;
}

const acme_key_t *acme_client_key(const acme_client_t *client)
{
    return client->key;
}

/* Keeps the nonce of any answer, good or bad (RFC 8555 section 7.2). A nonce is base64url of at
 * most a few dozen characters; anything else is ignored rather than echoed back. */
static void keep_nonce(acme_client_t *c, const acme_http_resp_t *resp)
{
    const char *n = resp->headers ? apr_table_get(resp->headers, "Replay-Nonce") : NULL;
    apr_size_t len, i;

    if (!n) {
        return;
    }
    len = strlen(n);
    if (len == 0 || len >= sizeof(c->nonce)) {
        return;
    }
    for (i = 0; i < len; i++) {
        char ch = n[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_')) {
            return;
        }
    }
    memcpy(c->nonce, n, len + 1);
}

void acme_client_set_cancel(acme_client_t *client, volatile apr_uint32_t *flag)
{
    client->cancel = flag;
}

/* One request. When no answer comes, *pprob (if pprob) says why in words. */
static apr_status_t perform(acme_http_resp_t **presp, acme_problem_t **pprob, acme_client_t *c,
                            const char *method, const char *url, const char *body, apr_size_t len,
                            apr_pool_t *p)
{
    acme_http_req_t req;
    apr_status_t rv;

    if (c->cancel && *c->cancel) {
        return ACME_ECANCELLED;
    }
    memset(&req, 0, sizeof(req));
    req.method = method;
    req.url = url;
    if (body) {
        req.content_type = "application/jose+json";
        req.body = body;
        req.body_len = len;
    }
    c->requests++;
    c->http->error[0] = '\0';
    rv = c->http->perform(c->http, &req, presp, p);
    if (rv != APR_SUCCESS) {
        const char *why = apr_psprintf(p, "%s %s: %s", method, url,
                                       c->http->error[0] ? c->http->error : acme_strerror(rv, p));
        acme_log(c->log, ACME_LOG_DEBUG, rv, "%s", why);
        if (pprob) {
            *pprob = acme_problem_make(rv, 0, why, p);
        }
        return rv;
    }
    acme_log(c->log, ACME_LOG_DEBUG, APR_SUCCESS, "%s %s -> %d (%" APR_SIZE_T_FMT " bytes)", method,
             url, (*presp)->status, (*presp)->body_len);
    keep_nonce(c, *presp);
    return APR_SUCCESS;
}

static int is_json_type(const char *ct)
{
    return ct && (strstr(ct, "application/json") || strstr(ct, "+json"));
}

/* Retry-After as the caller may use it: a CA (or a proxy in front of it) cannot park us for
 * longer than ACME_RETRY_AFTER_MAX. */
static apr_interval_time_t retry_after(const acme_http_resp_t *hr, apr_time_t now)
{
    apr_interval_time_t t = acme_http_retry_after(hr, now);
    return t > ACME_RETRY_AFTER_MAX ? ACME_RETRY_AFTER_MAX : t;
}

/* Turns an HTTP answer into our result: 2xx -> acme_resp_t, else a problem. */
static apr_status_t judge(acme_resp_t **presp, acme_problem_t **pprob, acme_client_t *c,
                          const char *url, acme_http_resp_t *hr, apr_pool_t *p)
{
    const char *ct = apr_table_get(hr->headers, "Content-Type");
    const char *loc = apr_table_get(hr->headers, "Location");
    apr_time_t now = c->clock->now(c->clock->baton);
    acme_resp_t *resp;

    if (hr->status < 200 || hr->status > 299) {
        acme_problem_t *prob = acme_problem_from_body(hr->body, hr->body_len, hr->status, p);
        prob->retry_after = retry_after(hr, now);
        if (pprob) {
            *pprob = prob;
        }
        return prob->rv;
    }
    resp = apr_pcalloc(p, sizeof(*resp));
    resp->status = hr->status;
    resp->url = url;
    /* A relative Location (RFC 9110 section 10.2.2) names a resource on the CA. */
    resp->location = loc ? acme_http_resolve(url, loc, p) : NULL;
    resp->retry_after = retry_after(hr, now);
    resp->content_type = ct ? ct : "";
    resp->http = hr;
    if (is_json_type(ct) || (hr->body_len && hr->body[0] == '{')) {
        json_error_t err;
        resp->json =
            acme_json_pool(p, json_loadb(hr->body, hr->body_len, JSON_REJECT_DUPLICATES, &err));
        if (!json_is_object(resp->json)) {
            const char *why =
                apr_psprintf(p, "%s: the answer (HTTP %d) is not a JSON object (%s): %.80s", url,
                             hr->status, resp->json ? "another JSON type" : err.text, hr->body);
            acme_log(c->log, ACME_LOG_DEBUG, ACME_EPROTO, "%s", why);
            if (pprob) {
                *pprob = acme_problem_make(ACME_EPROTO, 0, why, p);
            }
            return ACME_EPROTO;
        }
    }
    *presp = resp;
    return APR_SUCCESS;
}

apr_status_t acme_client_get(acme_resp_t **presp, acme_problem_t **pprob, acme_client_t *client,
                             const char *url, apr_pool_t *p)
{
    acme_http_resp_t *hr;
    apr_status_t rv;

    rv = perform(&hr, pprob, client, "GET", url, NULL, 0, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return judge(presp, pprob, client, url, hr, p);
}

/* Remembers why the directory could not be had, in words naming its URL, for the callers'
 * problem (the directory is fetched on behalf of whatever request comes first). */
static void directory_failed(acme_client_t *c, apr_status_t rv, const acme_problem_t *prob,
                             const char *why, apr_pool_t *ptmp)
{
    if (prob) {
        /* Our own problems (no document, no status) name the URL already. */
        why = prob->name[0] || prob->http_status
                  ? apr_psprintf(ptmp, "directory %s: %s", c->directory_url,
                                 acme_problem_describe(prob, ptmp))
                  : acme_problem_describe(prob, ptmp);
    }
    acme_log(c->log, ACME_LOG_DEBUG, rv, "%s", why);
    c->directory_problem = acme_problem_make(rv, 0, why, c->pool);
    c->directory_problem->retry_after = prob ? prob->retry_after : -1;
}

apr_status_t acme_client_directory(const json_t **pdir, acme_client_t *client)
{
    static const char *const required[] = {"newNonce", "newAccount", "newOrder"};
    acme_resp_t *resp = NULL;
    acme_problem_t *prob = NULL;
    apr_pool_t *ptmp;
    apr_status_t rv;
    size_t i;

    if (client->directory) {
        *pdir = client->directory;
        return APR_SUCCESS;
    }
    /* A temporary pool: a long-lived client must not grow with every failed fetch. */
    rv = apr_pool_create(&ptmp, client->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = acme_client_get(&resp, &prob, client, client->directory_url, ptmp);
    if (rv != APR_SUCCESS) {
        directory_failed(client, rv, prob, acme_strerror(rv, ptmp), ptmp);
        goto out;
    }
    rv = ACME_EPROTO;
    if (!resp->json) {
        directory_failed(client, rv, NULL,
                         apr_psprintf(ptmp, "directory %s: the answer is not JSON (%s)",
                                      client->directory_url, resp->content_type),
                         ptmp);
        goto out;
    }
    for (i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        if (!acme_json_str(resp->json, required[i])) {
            directory_failed(
                client, rv, NULL,
                apr_psprintf(ptmp, "directory %s: no %s URL", client->directory_url, required[i]),
                ptmp);
            goto out;
        }
    }
    /* The directory lives as long as the client. */
    client->directory = acme_json_pool(client->pool, json_incref(resp->json));
    client->directory_problem = NULL;
    *pdir = client->directory;
    rv = APR_SUCCESS;
out:
    apr_pool_destroy(ptmp);
    return rv;
}

static int directory_ok(const json_t *dir)
{
    return acme_json_str(dir, "newNonce") && acme_json_str(dir, "newAccount") &&
           acme_json_str(dir, "newOrder");
}

apr_status_t acme_client_seed_directory(acme_client_t *client, const char *json, apr_size_t len)
{
    json_t *dir = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);

    if (!json_is_object(dir) || !directory_ok(dir)) {
        json_decref(dir);
        return APR_EINVAL;
    }
    client->directory = acme_json_pool(client->pool, dir);
    return APR_SUCCESS;
}

const char *acme_client_directory_json(const acme_client_t *client, apr_pool_t *p)
{
    char *s;
    const char *out;

    if (!client->directory) {
        return NULL;
    }
    s = json_dumps(client->directory, JSON_COMPACT);
    out = s ? apr_pstrdup(p, s) : NULL;
    free(s);
    return out;
}

const acme_problem_t *acme_client_directory_problem(const acme_client_t *client)
{
    return client->directory_problem;
}

apr_status_t acme_client_resource(const char **purl, acme_problem_t **pprob, acme_client_t *client,
                                  const char *name)
{
    const json_t *dir;
    const char *url;
    apr_status_t rv;

    rv = acme_client_directory(&dir, client);
    if (rv != APR_SUCCESS) {
        if (pprob && client->directory_problem) {
            *pprob = client->directory_problem;
        }
        return rv;
    }
    url = acme_json_str(dir, name);
    if (!url) {
        return APR_NOTFOUND;
    }
    *purl = url;
    return APR_SUCCESS;
}

/* Makes sure a nonce is held: HEAD newNonce (RFC 8555 section 7.2) only when none is. */
static apr_status_t ensure_nonce(acme_client_t *c, acme_problem_t **pprob, apr_pool_t *p)
{
    const char *url;
    acme_http_resp_t *hr;
    acme_problem_t *prob;
    apr_status_t rv;

    if (c->nonce[0]) {
        return APR_SUCCESS;
    }
    rv = acme_client_resource(&url, pprob, c, "newNonce");
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = perform(&hr, pprob, c, "HEAD", url, NULL, 0, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (!c->nonce[0]) {
        prob = acme_problem_make(hr->status >= 500 ? ACME_ESERVER : ACME_EPROTO, hr->status,
                                 apr_psprintf(p, "HEAD %s gave no Replay-Nonce", url), p);
        prob->retry_after = retry_after(hr, c->clock->now(c->clock->baton));
        acme_log(c->log, ACME_LOG_DEBUG, prob->rv, "%s", prob->detail);
        if (pprob) {
            *pprob = prob;
        }
        return prob->rv;
    }
    return APR_SUCCESS;
}

apr_status_t acme_client_post(acme_resp_t **presp, acme_problem_t **pprob, acme_client_t *client,
                              const char *url, const json_t *payload, const acme_key_t *key,
                              int use_jwk, apr_pool_t *p)
{
    const acme_key_t *signer = key ? key : client->key;
    const char *kid = use_jwk ? NULL : client->kid;
    int attempt;
    apr_status_t rv = APR_EGENERAL;

    if (!signer || (!use_jwk && !kid)) {
        return APR_EINVAL;
    }
    for (attempt = 0; attempt <= ACME_BADNONCE_RETRIES; attempt++) {
        acme_problem_t *prob = NULL;
        acme_http_resp_t *hr;
        json_t *jws;
        char *body, nonce[sizeof(client->nonce)];

        rv = ensure_nonce(client, pprob, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        /* A nonce is good for one request: take it out before sending. */
        memcpy(nonce, client->nonce, sizeof(nonce));
        client->nonce[0] = '\0';
        rv = acme_jws_sign(&jws, signer, kid, nonce, url, payload, p);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        body = json_dumps(jws, JSON_COMPACT);
        if (!body) {
            return APR_ENOMEM;
        }
        rv = perform(&hr, pprob, client, "POST", url, body, strlen(body), p);
        free(body);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        rv = judge(presp, &prob, client, url, hr, p);
        if (rv == ACME_EBADNONCE && attempt < ACME_BADNONCE_RETRIES) {
            acme_log(client->log, ACME_LOG_DEBUG, rv, "%s: badNonce, retrying with the new nonce",
                     url);
            continue;
        }
        if (rv != APR_SUCCESS && prob && pprob) {
            *pprob = prob;
        }
        return rv;
    }
    return rv;
}
