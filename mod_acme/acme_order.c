/* acme_order.c - orders, authorizations, challenges, finalize, certificate download. */
#include <string.h>

#include <apr_strings.h>

#include "acme_csr.h"
#include "acme_order.h"
#include "acme_tokens.h"

static const char *const state_names[] = {
    [ACME_STATE_UNKNOWN] = "unknown",
    [ACME_STATE_PENDING] = "pending",
    [ACME_STATE_READY] = "ready",
    [ACME_STATE_PROCESSING] = "processing",
    [ACME_STATE_VALID] = "valid",
    [ACME_STATE_INVALID] = "invalid",
    [ACME_STATE_DEACTIVATED] = "deactivated",
    [ACME_STATE_EXPIRED] = "expired",
    [ACME_STATE_REVOKED] = "revoked",
};

acme_state_e acme_state_parse(const char *s)
{
    size_t i;

    for (i = 1; s && i < sizeof(state_names) / sizeof(state_names[0]); i++) {
        if (strcmp(s, state_names[i]) == 0) {
            return (acme_state_e)i;
        }
    }
    return ACME_STATE_UNKNOWN;
}

const char *acme_state_name(acme_state_e state)
{
    if ((size_t)state >= sizeof(state_names) / sizeof(state_names[0])) {
        return "unknown";
    }
    return state_names[state];
}

/* Reports a CA object that lacks what RFC 8555 promises. */
static apr_status_t bad_object(acme_client_t *c, acme_problem_t **pprob, const char *what,
                               const char *url, const char *member, apr_pool_t *p)
{
    const char *why = apr_psprintf(p, "%s %s: missing or invalid '%s'", what, url, member);

    acme_log(acme_client_log(c), ACME_LOG_DEBUG, ACME_EPROTO, "%s", why);
    if (pprob) {
        *pprob = acme_problem_make(ACME_EPROTO, 0, why, p);
    }
    return ACME_EPROTO;
}

/* A URL member: a string starting with http(s)://, of sane length. */
static const char *url_member(const json_t *obj, const char *key)
{
    const char *s = acme_json_str(obj, key);

    if (!s || strlen(s) > 2048 ||
        (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)) {
        return NULL;
    }
    return s;
}

static int ident_parse(acme_ident_t *id, const json_t *obj, apr_pool_t *p)
{
    const char *type = acme_json_str(obj, "type"), *value = acme_json_str(obj, "value");

    if (!type || !value || strlen(value) > 253 || strlen(type) > 16) {
        return 0;
    }
    id->type = apr_pstrdup(p, type);
    id->value = apr_pstrdup(p, value);
    return 1;
}

apr_array_header_t *acme_idents_for(const apr_array_header_t *names, apr_pool_t *p)
{
    apr_array_header_t *ids = apr_array_make(p, names->nelts, sizeof(acme_ident_t));
    int i;

    for (i = 0; i < names->nelts; i++) {
        acme_ident_t *id = apr_array_push(ids);
        id->value = APR_ARRAY_IDX(names, i, const char *);
        id->type = acme_name_is_ip(id->value) ? "ip" : "dns";
    }
    return ids;
}

static apr_status_t order_parse(acme_order_t **porder, acme_problem_t **pprob, acme_client_t *c,
                                const char *url, const acme_resp_t *resp, apr_pool_t *p)
{
    const json_t *j = resp->json;
    const json_t *ids = json_object_get(j, "identifiers");
    const json_t *authzs = json_object_get(j, "authorizations");
    const json_t *err = json_object_get(j, "error");
    acme_order_t *o = apr_pcalloc(p, sizeof(*o));
    size_t i;

    if (!j) {
        return bad_object(c, pprob, "order", url, "(body)", p);
    }
    o->url = apr_pstrdup(p, url);
    o->status = acme_state_parse(acme_json_str(j, "status"));
    if (o->status == ACME_STATE_UNKNOWN) {
        return bad_object(c, pprob, "order", url, "status", p);
    }
    if (!json_is_array(ids) || json_array_size(ids) == 0 ||
        json_array_size(ids) > ACME_ORDER_IDENTIFIERS_MAX) {
        return bad_object(c, pprob, "order", url, "identifiers", p);
    }
    o->identifiers = apr_array_make(p, (int)json_array_size(ids), sizeof(acme_ident_t));
    for (i = 0; i < json_array_size(ids); i++) {
        if (!ident_parse(apr_array_push(o->identifiers), json_array_get(ids, i), p)) {
            return bad_object(c, pprob, "order", url, "identifiers", p);
        }
    }
    /* One authorization per identifier at most (section 7.1.3). */
    if (!json_is_array(authzs) || json_array_size(authzs) > ACME_ORDER_IDENTIFIERS_MAX) {
        return bad_object(c, pprob, "order", url, "authorizations", p);
    }
    o->authzs = apr_array_make(p, (int)json_array_size(authzs), sizeof(const char *));
    for (i = 0; i < json_array_size(authzs); i++) {
        const json_t *a = json_array_get(authzs, i);
        const char *s = json_is_string(a) ? json_string_value(a) : NULL;
        if (!s || (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)) {
            return bad_object(c, pprob, "order", url, "authorizations", p);
        }
        APR_ARRAY_PUSH(o->authzs, const char *) = apr_pstrdup(p, s);
    }
    o->finalize = url_member(j, "finalize");
    if (!o->finalize) {
        return bad_object(c, pprob, "order", url, "finalize", p);
    }
    o->finalize = apr_pstrdup(p, o->finalize);
    o->certificate = url_member(j, "certificate");
    if (o->status == ACME_STATE_VALID && !o->certificate) {
        return bad_object(c, pprob, "order", url, "certificate", p);
    }
    o->certificate = o->certificate ? apr_pstrdup(p, o->certificate) : NULL;
    if (json_is_object(err)) {
        o->error = acme_problem_from_json(err, 0, p);
    }
    /* Optional (draft-ietf-acme-profiles); an odd one is ignored, not an error. */
    if (acme_json_str(j, "profile") &&
        strlen(acme_json_str(j, "profile")) <= ACME_PROFILE_NAME_MAX) {
        o->profile = apr_pstrdup(p, acme_json_str(j, "profile"));
    }
    o->retry_after = resp->retry_after;
    *porder = o;
    return APR_SUCCESS;
}

apr_status_t acme_order_new(acme_order_t **porder, acme_problem_t **pprob, acme_client_t *client,
                            const apr_array_header_t *names, const char *replaces, apr_pool_t *p)
{
    return acme_order_new_profile(porder, pprob, client, names, replaces, NULL, p);
}

apr_status_t acme_order_new_profile(acme_order_t **porder, acme_problem_t **pprob,
                                    acme_client_t *client, const apr_array_header_t *names,
                                    const char *replaces, const char *profile, apr_pool_t *p)
{
    const char *url;
    apr_array_header_t *ids;
    json_t *payload, *jids;
    acme_resp_t *resp;
    apr_status_t rv;
    int i;

    rv = acme_client_resource(&url, pprob, client, "newOrder");
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (names->nelts == 0 || names->nelts > ACME_ORDER_IDENTIFIERS_MAX) {
        return APR_EINVAL;
    }
    ids = acme_idents_for(names, p);
    payload = acme_json_pool(p, json_object());
    jids = json_array();
    json_object_set_new(payload, "identifiers", jids);
    if (replaces) {
        json_object_set_new(payload, "replaces", json_string(replaces));
    }
    if (profile) {
        json_object_set_new(payload, "profile", json_string(profile));
    }
    for (i = 0; i < ids->nelts; i++) {
        const acme_ident_t *id = &APR_ARRAY_IDX(ids, i, acme_ident_t);
        json_array_append_new(jids, json_pack("{s:s, s:s}", "type", id->type, "value", id->value));
    }
    rv = acme_client_post(&resp, pprob, client, url, payload, NULL, 0, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (!resp->location) {
        return bad_object(client, pprob, "newOrder", url, "Location header", p);
    }
    return order_parse(porder, pprob, client, resp->location, resp, p);
}

apr_status_t acme_profile_pick(const char **puse, const char **poffered, acme_problem_t **pprob,
                               acme_client_t *client, const char *name, int mandatory,
                               apr_pool_t *p)
{
    const json_t *dir, *profiles;
    const char *offered = "", *key, *url;
    json_t *value;
    apr_status_t rv;
    int n = 0, listed = 0;

    /* Fetches the directory when needed, with its failure in *pprob. */
    rv = acme_client_resource(&url, pprob, client, "newOrder");
    if (rv == APR_SUCCESS) {
        rv = acme_client_directory(&dir, client);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* meta.profiles maps each name to a description; only the names matter here. */
    profiles = json_object_get(json_object_get(dir, "meta"), "profiles");
    if (json_is_object(profiles)) {
        json_object_foreach((json_t *)profiles, key, value)
        {
            (void)value;
            if (strcmp(key, name) == 0) {
                listed = 1;
            }
            if (n < ACME_PROFILES_SHOWN && strlen(key) <= ACME_PROFILE_NAME_MAX) {
                offered = apr_pstrcat(p, offered, n ? ", " : "", key, NULL);
            } else if (n == ACME_PROFILES_SHOWN) {
                offered = apr_pstrcat(p, offered, ", ...", NULL);
            }
            n++;
        }
    }
    if (!*offered) {
        offered = "none";
    }
    if (poffered) {
        *poffered = offered;
    }
    if (listed) {
        *puse = name;
        return APR_SUCCESS;
    }
    if (mandatory) {
        const char *why = apr_psprintf(p,
                                       "the CA %s does not offer the profile %s (it offers: %s), "
                                       "and ACMEProfile says it is mandatory",
                                       acme_client_directory_url(client), name, offered);
        acme_log(acme_client_log(client), ACME_LOG_INFO, ACME_ECONFIG, "ACME00160: %s", why);
        if (pprob) {
            *pprob = acme_problem_make(ACME_ECONFIG, 0, why, p);
        }
        return ACME_ECONFIG;
    }
    *puse = NULL;
    return APR_SUCCESS;
}

apr_status_t acme_order_get(acme_order_t **porder, acme_problem_t **pprob, acme_client_t *client,
                            const char *url, apr_pool_t *p)
{
    acme_resp_t *resp;
    apr_status_t rv;

    rv = acme_client_post(&resp, pprob, client, url, NULL, NULL, 0, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    return order_parse(porder, pprob, client, url, resp, p);
}

apr_status_t acme_order_finalize(acme_order_t **porder, acme_problem_t **pprob,
                                 acme_client_t *client, const acme_order_t *order,
                                 const unsigned char *csr, apr_size_t csr_len, apr_pool_t *p)
{
    json_t *payload;
    acme_resp_t *resp;
    apr_status_t rv;

    payload = acme_json_pool(p, json_pack("{s:s}", "csr", acme_b64u_encode(p, csr, csr_len)));
    rv = acme_client_post(&resp, pprob, client, order->finalize, payload, NULL, 0, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* The answer is the order object; its URL stays the order's, not finalize's. */
    return order_parse(porder, pprob, client, order->url, resp, p);
}

static int challenge_parse(acme_challenge_t *ch, const json_t *j, apr_pool_t *p)
{
    const char *type = acme_json_str(j, "type");
    const json_t *err = json_object_get(j, "error");

    memset(ch, 0, sizeof(*ch));
    if (!type || strlen(type) > 32 || !url_member(j, "url")) {
        return 0;
    }
    ch->type = apr_pstrdup(p, type);
    ch->url = apr_pstrdup(p, url_member(j, "url"));
    ch->status = acme_state_parse(acme_json_str(j, "status"));
    if (acme_json_str(j, "token")) {
        /* A token goes into URLs we serve and names we sign: never accept an odd one. */
        if (!acme_token_ok(acme_json_str(j, "token"), strlen(acme_json_str(j, "token")))) {
            return 0;
        }
        ch->token = apr_pstrdup(p, acme_json_str(j, "token"));
    }
    if (json_is_object(err)) {
        ch->error = acme_problem_from_json(err, 0, p);
    }
    return 1;
}

apr_status_t acme_authz_get(acme_authz_t **pauthz, acme_problem_t **pprob, acme_client_t *client,
                            const char *url, apr_pool_t *p)
{
    acme_resp_t *resp;
    acme_authz_t *a;
    const json_t *j, *chs;
    apr_status_t rv;
    size_t i;

    rv = acme_client_post(&resp, pprob, client, url, NULL, NULL, 0, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    j = resp->json;
    if (!j) {
        return bad_object(client, pprob, "authorization", url, "(body)", p);
    }
    a = apr_pcalloc(p, sizeof(*a));
    a->url = apr_pstrdup(p, url);
    a->status = acme_state_parse(acme_json_str(j, "status"));
    if (a->status == ACME_STATE_UNKNOWN) {
        return bad_object(client, pprob, "authorization", url, "status", p);
    }
    if (!ident_parse(&a->identifier, json_object_get(j, "identifier"), p)) {
        return bad_object(client, pprob, "authorization", url, "identifier", p);
    }
    a->wildcard = json_is_true(json_object_get(j, "wildcard"));
    chs = json_object_get(j, "challenges");
    if (!json_is_array(chs) || json_array_size(chs) > ACME_AUTHZ_CHALLENGES_MAX) {
        return bad_object(client, pprob, "authorization", url, "challenges", p);
    }
    a->challenges = apr_array_make(p, (int)json_array_size(chs), sizeof(acme_challenge_t));
    for (i = 0; i < json_array_size(chs); i++) {
        if (!challenge_parse(apr_array_push(a->challenges), json_array_get(chs, i), p)) {
            return bad_object(client, pprob, "authorization", url, "challenges", p);
        }
    }
    a->retry_after = resp->retry_after;
    *pauthz = a;
    return APR_SUCCESS;
}

const acme_challenge_t *acme_authz_challenge(const acme_authz_t *authz, const char *type)
{
    int i;

    for (i = 0; i < authz->challenges->nelts; i++) {
        const acme_challenge_t *ch = &APR_ARRAY_IDX(authz->challenges, i, acme_challenge_t);
        if (strcmp(ch->type, type) == 0) {
            return ch;
        }
    }
    return NULL;
}

const acme_problem_t *acme_authz_error(const acme_authz_t *authz)
{
    int i;

    for (i = 0; i < authz->challenges->nelts; i++) {
        const acme_challenge_t *ch = &APR_ARRAY_IDX(authz->challenges, i, acme_challenge_t);
        if (ch->error) {
            return ch->error;
        }
    }
    return NULL;
}

apr_status_t acme_challenge_respond(acme_challenge_t **pchall, acme_problem_t **pprob,
                                    acme_client_t *client, const char *url, apr_pool_t *p)
{
    json_t *empty = acme_json_pool(p, json_object());
    acme_challenge_t *ch;
    acme_resp_t *resp;
    apr_status_t rv;

    /* The payload is "{}", not the empty POST-as-GET payload (section 7.5.1). */
    rv = acme_client_post(&resp, pprob, client, url, empty, NULL, 0, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    ch = apr_pcalloc(p, sizeof(*ch));
    if (!resp->json || !challenge_parse(ch, resp->json, p)) {
        return bad_object(client, pprob, "challenge", url, "(body)", p);
    }
    *pchall = ch;
    return APR_SUCCESS;
}

apr_status_t acme_chain_download(const char **ppem, apr_size_t *plen,
                                 apr_array_header_t **palternates, acme_problem_t **pprob,
                                 acme_client_t *client, const char *url, apr_pool_t *p)
{
    acme_resp_t *resp;
    apr_status_t rv;

    rv = acme_client_post(&resp, pprob, client, url, NULL, NULL, 0, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (resp->http->body_len == 0 || !strstr(resp->http->body, "-----BEGIN CERTIFICATE-----")) {
        return bad_object(client, pprob, "certificate", url, "(PEM body)", p);
    }
    if (palternates) {
        *palternates = acme_http_links(resp->http, "alternate", url, p);
    }
    *ppem = resp->http->body;
    *plen = resp->http->body_len;
    return APR_SUCCESS;
}
