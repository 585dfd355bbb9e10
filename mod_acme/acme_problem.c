/* acme_problem.c - problem documents mapped to statuses and advice. */
#include <string.h>

#include <apr_strings.h>

#include "acme_problem.h"

/* RFC 8555 section 6.7 error types, plus later ones from the IANA registry. One row each:
 * the status we map to. Types not listed map by HTTP status. */
static const struct {
    const char *name;
    apr_status_t rv;
} problem_map[] = {
    {"accountDoesNotExist", ACME_ENOACCOUNT},
    {"alreadyRevoked", ACME_EMALFORMED},
    {"badCSR", ACME_EBADCSR},
    {"badNonce", ACME_EBADNONCE},
    {"badPublicKey", ACME_EBADKEY},
    {"badRevocationReason", ACME_EMALFORMED},
    {"badSignatureAlgorithm", ACME_EBADKEY},
    {"caa", ACME_EVALIDATION},
    {"compound", ACME_EVALIDATION},
    {"connection", ACME_EVALIDATION},
    {"dns", ACME_EVALIDATION},
    {"externalAccountRequired", ACME_EEAB},
    {"incorrectResponse", ACME_EVALIDATION},
    {"invalidContact", ACME_ECONFIG},
    {"invalidProfile", ACME_ECONFIG},
    {"malformed", ACME_EMALFORMED},
    {"orderNotReady", ACME_ENOTREADY},
    {"rateLimited", ACME_ERATELIMITED},
    {"rejectedIdentifier", ACME_EREJECTED},
    {"serverInternal", ACME_ESERVER},
    {"tls", ACME_EVALIDATION},
    {"unauthorized", ACME_EUNAUTHORIZED},
    {"unsupportedContact", ACME_ECONFIG},
    {"unsupportedIdentifier", ACME_EREJECTED},
    {"userActionRequired", ACME_EUSERACTION},
};

apr_status_t acme_problem_rv(const char *name, int http_status)
{
    size_t i;

    for (i = 0; name && i < sizeof(problem_map) / sizeof(problem_map[0]); i++) {
        if (strcmp(problem_map[i].name, name) == 0) {
            return problem_map[i].rv;
        }
    }
    if (http_status == 429) {
        return ACME_ERATELIMITED;
    }
    if (http_status >= 500) {
        return ACME_ESERVER;
    }
    return ACME_EPROTO;
}

/* Keeps the CA's text bounded, as the CA wrote it (the job file is JSON); each log seam
 * escapes what it writes (include/acme_core.h). */
static const char *clean_text(const char *s, apr_pool_t *p)
{
    if (!s) {
        return "";
    }
    return strlen(s) > ACME_PROBLEM_DETAIL_MAX ? apr_pstrmemdup(p, s, ACME_PROBLEM_DETAIL_MAX)
                                               : apr_pstrdup(p, s);
}

static acme_problem_t *from_json(const json_t *json, int http_status, int depth, apr_pool_t *p)
{
    acme_problem_t *prob = apr_pcalloc(p, sizeof(*prob));
    const char *type = acme_json_str(json, "type");
    const json_t *st = json_is_object(json) ? json_object_get(json, "status") : NULL;
    const json_t *ident = json_is_object(json) ? json_object_get(json, "identifier") : NULL;
    const json_t *subs = json_is_object(json) ? json_object_get(json, "subproblems") : NULL;

    prob->type = clean_text(type, p);
    prob->name = prob->type;
    if (strncmp(prob->type, ACME_PROBLEM_NS, strlen(ACME_PROBLEM_NS)) == 0) {
        prob->name = prob->type + strlen(ACME_PROBLEM_NS);
    }
    prob->detail = clean_text(acme_json_str(json, "detail"), p);
    prob->http_status = http_status;
    prob->retry_after = -1;
    if (!http_status && json_is_integer(st)) {
        prob->http_status = (int)json_integer_value(st);
    }
    if (acme_json_str(ident, "type") && acme_json_str(ident, "value")) {
        prob->identifier = apr_pstrcat(p, clean_text(acme_json_str(ident, "type"), p), ":",
                                       clean_text(acme_json_str(ident, "value"), p), NULL);
    }
    prob->rv = acme_problem_rv(prob->name, prob->http_status);
    prob->subproblems = apr_array_make(p, 0, sizeof(acme_problem_t *));
    /* Subproblems do not nest (RFC 8555 section 6.7.1); deeper levels are ignored. */
    if (depth == 0 && json_is_array(subs)) {
        size_t i;
        for (i = 0; i < json_array_size(subs); i++) {
            if (i >= ACME_PROBLEM_SUB_MAX) {
                prob->subproblems_dropped++;
                continue;
            }
            APR_ARRAY_PUSH(prob->subproblems, acme_problem_t *) =
                from_json(json_array_get(subs, i), 0, depth + 1, p);
        }
    }
    return prob;
}

acme_problem_t *acme_problem_from_json(const json_t *json, int http_status, apr_pool_t *p)
{
    return from_json(json, http_status, 0, p);
}

acme_problem_t *acme_problem_make(apr_status_t rv, int http_status, const char *detail,
                                  apr_pool_t *p)
{
    acme_problem_t *prob = apr_pcalloc(p, sizeof(*prob));

    prob->type = prob->name = "";
    prob->detail = clean_text(detail, p);
    prob->http_status = http_status;
    prob->rv = rv;
    prob->retry_after = -1;
    prob->subproblems = apr_array_make(p, 0, sizeof(acme_problem_t *));
    return prob;
}

acme_problem_t *acme_problem_from_body(const char *body, apr_size_t len, int http_status,
                                       apr_pool_t *p)
{
    json_t *json = NULL;
    acme_problem_t *prob;

    if (body && len) {
        json = acme_json_pool(p, json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL));
    }
    if (json_is_object(json) && acme_json_str(json, "type")) {
        return acme_problem_from_json(json, http_status, p);
    }
    prob = apr_pcalloc(p, sizeof(*prob));
    prob->type = prob->name = "";
    prob->http_status = http_status;
    prob->retry_after = -1;
    prob->subproblems = apr_array_make(p, 0, sizeof(acme_problem_t *));
    prob->rv =
        http_status >= 500 ? ACME_ESERVER : (http_status == 429 ? ACME_ERATELIMITED : ACME_EPROTO);
    /* Show the start of whatever came instead: often an HTML error page from a proxy. */
    prob->detail =
        clean_text(apr_pstrmemdup(p, body ? body : "", len > 120 ? 120 : (body ? len : 0)), p);
    return prob;
}

const char *acme_problem_describe(const acme_problem_t *prob, apr_pool_t *p)
{
    const char *s;
    int i;

    if (!prob->name[0] && !prob->http_status) {
        s = prob->detail[0] ? prob->detail : "no details";
    } else {
        s = apr_psprintf(p, "%s (HTTP %d)%s%s", prob->name[0] ? prob->name : "no problem document",
                         prob->http_status, prob->detail[0] ? ": " : "", prob->detail);
    }
    for (i = 0; i < prob->subproblems->nelts; i++) {
        const acme_problem_t *sub = APR_ARRAY_IDX(prob->subproblems, i, acme_problem_t *);
        s = apr_psprintf(p, "%s; %s: %s%s%s", s, sub->identifier ? sub->identifier : "?",
                         sub->name[0] ? sub->name : "problem", sub->detail[0] ? " " : "",
                         sub->detail);
    }
    if (prob->subproblems_dropped) {
        s = apr_psprintf(p, "%s; and %d more", s, prob->subproblems_dropped);
    }
    return s;
}

const char *acme_problem_advice(apr_status_t rv)
{
    switch (rv) {
    case ACME_ERATELIMITED:
        return "the CA's rate limit applies; retrying after the time it asks for";
    case ACME_EBADCSR:
        return "the CA refused the key or names of the request; check ACMEKeyType and "
               "ACMEDomain";
    case ACME_EREJECTED:
        return "the CA will not issue for a name; remove or correct it in ACMEDomain";
    case ACME_EMALFORMED:
        return "the CA rejected the request as malformed; this needs a configuration change "
               "or a fix in mod_acme";
    case ACME_EEAB:
        return "the CA requires an external account binding: set ACMEExternalAccountBinding "
               "to the key ID and a file with the MAC key the CA gave for your account";
    case ACME_EUSERACTION:
        return "the CA requires an action of the operator (often new terms of service); see "
               "the CA's instructions";
    case ACME_EUNAUTHORIZED:
        return "the CA did not authorize the request; check that the names point to this "
               "server and the account is valid";
    case ACME_EVALIDATION:
        return "the CA could not validate the challenge; check DNS and that port 80/443 reach "
               "this server";
    case ACME_EBADKEY:
        return "the CA refused the key type; choose another ACMEKeyType";
    case ACME_ECONFIG:
        return "the configuration must change";
    case ACME_EDNS:
        return "check ACMEDNSCommand (its output is in the log) and the DNS (ACMEDNSResolver, "
               "ACMEDNSPropagationTimeout); retrying later";
    case ACME_ETRANSPORT:
    case ACME_ESERVER:
    case ACME_ETIMEOUT:
    case ACME_EBADNONCE:
        return "retrying later";
    default:
        return "retrying later";
    }
}

int acme_status_is_transient(apr_status_t rv)
{
    switch (rv) {
    case ACME_EBADCSR:
    case ACME_EREJECTED:
    case ACME_EMALFORMED:
    case ACME_EEAB:
    case ACME_EUSERACTION:
    case ACME_EBADKEY:
    case ACME_ECONFIG:
        return 0;
    default:
        return 1;
    }
}
