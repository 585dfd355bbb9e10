/* acme_problem.h - ACME problem documents (RFC 8555 section 6.7, RFC 7807): parsing, mapping to
 * status codes in one table, and messages an operator can act on.
 *
 * Any thread may call these.
 */
#ifndef ACME_PROBLEM_H
#define ACME_PROBLEM_H

#include "acme_core.h"

#define ACME_PROBLEM_NS         "urn:ietf:params:acme:error:"
#define ACME_PROBLEM_SUB_MAX    20  /* subproblems kept; the rest are counted */
#define ACME_PROBLEM_DETAIL_MAX 512 /* characters of detail kept */

typedef struct acme_problem_t {
    const char *type;                /* as sent, e.g. "urn:ietf:params:acme:error:rateLimited" */
    const char *name;                /* type without the ACME namespace, e.g. "rateLimited" */
    const char *detail;              /* printable, bounded; "" when absent */
    int http_status;                 /* HTTP status of the response, or "status" member */
    const char *identifier;          /* subproblems: "dns:a.test"; NULL otherwise */
    apr_status_t rv;                 /* the mapped status code */
    apr_interval_time_t retry_after; /* Retry-After of the response; -1 when absent */
    apr_array_header_t *subproblems; /* acme_problem_t * */
    int subproblems_dropped;
} acme_problem_t;

/* Problem from a JSON object (a problem document, or a challenge's "error" member).
 * Missing or mistyped members are tolerated: a problem is always returned. */
acme_problem_t *acme_problem_from_json(const json_t *json, int http_status, apr_pool_t *p);

/* Problem from a response body of any content. A body that is not a JSON problem gives a
 * problem of name "" with the HTTP status mapped (5xx -> ACME_ESERVER, else ACME_EPROTO). */
acme_problem_t *acme_problem_from_body(const char *body, apr_size_t len, int http_status,
                                       apr_pool_t *p);

/* A problem of our own making (no document from the CA): name "", the given detail. */
acme_problem_t *acme_problem_make(apr_status_t rv, int http_status, const char *detail,
                                  apr_pool_t *p);

/* The status for a problem type name ("badNonce"), or ACME_EPROTO for unknown names. */
apr_status_t acme_problem_rv(const char *name, int http_status);

/* One line: "rateLimited (HTTP 429): too many certificates; dns:a.test: ..." */
const char *acme_problem_describe(const acme_problem_t *prob, apr_pool_t *p);

/* What the operator must do about a status, or what happens next, in words; never NULL. */
const char *acme_problem_advice(apr_status_t rv);

/* 1 when trying again later may succeed without the operator changing anything. */
int acme_status_is_transient(apr_status_t rv);

#endif /* ACME_PROBLEM_H */
