/* acme_http.h - the HTTP transport seam between the ACME client and the network.
 *
 * Production uses libcurl (acme_http_curl_create); unit tests plug in a transport that replays
 * recorded CA answers. Everything that comes back is bounded: body size, header count and
 * header line length, total time.
 *
 * A transport made by acme_http_curl_create keeps one connection open for reuse and must be used
 * by one thread at a time; make one per thread (with a share, acme_http_share.h, the next
 * transport of the same CA continues on it). Call acme_http_global_init once per process,
 * before threads start.
 */
#ifndef ACME_HTTP_H
#define ACME_HTTP_H

#include "acme_core.h"

#define ACME_HTTP_BODY_MAX        (1024 * 1024) /* directory, orders, chains are far smaller */
#define ACME_HTTP_HEADERS_MAX     100           /* header lines per response */
#define ACME_HTTP_HEADER_LINE_MAX (8 * 1024)

typedef struct acme_http_req_t {
    const char *method; /* "GET", "HEAD" or "POST" */
    const char *url;
    const char *content_type; /* for POST */
    const char *body;
    apr_size_t body_len;
} acme_http_req_t;

typedef struct acme_http_resp_t {
    int status;
    apr_table_t *headers; /* case-insensitive names; repeated headers (Link) kept */
    const char *body;     /* NUL-terminated, body_len bytes */
    apr_size_t body_len;
} acme_http_resp_t;

typedef struct acme_http_t acme_http_t;
typedef struct acme_http_share_t acme_http_share_t; /* acme_http_share.h */

/* Performs one request. APR_SUCCESS for any HTTP status (the caller judges it);
 * ACME_ETRANSPORT when no answer came (DNS, connect, TLS, timeout), ACME_ETOOLARGE when the
 * answer exceeds a bound, ACME_ECANCELLED when the caller's cancel flag stopped it. The response
 * lives in p. */
typedef apr_status_t acme_http_perform_fn(acme_http_t *http, const acme_http_req_t *req,
                                          acme_http_resp_t **presp, apr_pool_t *p);

struct acme_http_t {
    acme_http_perform_fn *perform;
    void *baton;
    const acme_log_t *log; /* transport-level failures are logged here at DEBUG */
    char error[256];       /* why the last failed request failed, in words ("" if unknown) */
};

typedef struct acme_http_opts_t {
    const char *ca_file;       /* trust roots for the CA; NULL = system roots */
    const char *proxy;         /* outgoing proxy URL (http:// or https://, credentials allowed)
                                * or NULL: libcurl's environment (https_proxy, no_proxy) */
    const char *proxy_ca_file; /* trust roots for an https:// proxy; NULL = system roots */
    const char *user_agent;    /* NULL = "mod_acme/<version>" */
    long connect_timeout_s;    /* 0 = 10 */
    long timeout_s;            /* whole request; 0 = 30 */
    /* While *cancel is non-zero no request starts and one in progress is aborted (libcurl asks
     * about once a second, more often while data flows): ACME_ECANCELLED. NULL: never. */
    volatile apr_uint32_t *cancel;
    /* TLS sessions, DNS and the handles of released transports (with their connections) shared
     * with the other transports of the same CA in any thread (acme_http_share.h); NULL: none. */
    acme_http_share_t *share;
} acme_http_opts_t;

apr_status_t acme_http_global_init(void);

/* Checks an outgoing proxy URL: http:// or https://, a host, an optional port and user:password,
 * nothing else (no path, query or fragment), at most 1024 characters. APR_EINVAL and *pwhy in
 * words (without the credentials) when it is not one. */
apr_status_t acme_http_proxy_check(const char *url, const char **pwhy, apr_pool_t *p);

/* The proxy URL as it may be shown: the password replaced by "***", "http://user:***@host:port"
 * (user information without ':', which may be a token, becomes "***" whole), also for a URL
 * acme_http_proxy_check refuses. Never NULL; "(proxy)" for one too long. */
const char *acme_http_proxy_masked(const char *url, apr_pool_t *p);

/* The libcurl transport. Its handle is released with p. */
apr_status_t acme_http_curl_create(acme_http_t **phttp, const acme_http_opts_t *opts,
                                   const acme_log_t *log, apr_pool_t *p);

/* Every value of a header (case-insensitive), in order; an empty array when there is none. */
apr_array_header_t *acme_http_header_values(const acme_http_resp_t *resp, const char *name,
                                            apr_pool_t *p);

/* URLs of the Link headers with the given rel (RFC 8288: <url>;rel="alternate"), resolved
 * against base when relative. */
apr_array_header_t *acme_http_links(const acme_http_resp_t *resp, const char *rel, const char *base,
                                    apr_pool_t *p);

/* ref resolved against base (RFC 3986 section 5); ref itself when that fails. */
const char *acme_http_resolve(const char *base, const char *ref, apr_pool_t *p);

/* Retry-After (RFC 9110 section 10.2.3): delta-seconds or an HTTP-date, as an interval from now.
 * -1 when absent or unparseable; a date in the past gives 0. */
apr_interval_time_t acme_http_retry_after(const acme_http_resp_t *resp, apr_time_t now);

#endif /* ACME_HTTP_H */
