/* acme_http.c - libcurl transport and response header helpers. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <apr_date.h>
#include <apr_strings.h>
#include <curl/curl.h>

#include "acme_http.h"
#include "acme_http_share.h"

typedef struct curl_baton_t {
    CURL *curl;
    acme_http_opts_t opts;
    const char *masked_proxy; /* opts.proxy as it may be shown */
} curl_baton_t;

/* What one transfer collects; every append is checked against the bounds in acme_http.h. */
typedef struct transfer_t {
    apr_pool_t *p;
    char *body;
    apr_size_t len, cap;
    apr_table_t *headers;
    int header_lines;
    int overflow; /* a bound was hit: the transfer is aborted and reported as ACME_ETOOLARGE */
} transfer_t;

apr_status_t acme_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? APR_SUCCESS : ACME_ETRANSPORT;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    transfer_t *t = userdata;
    apr_size_t n = size * nmemb;

    if (t->len + n > ACME_HTTP_BODY_MAX) {
        t->overflow = 1;
        return 0; /* makes libcurl abort with CURLE_WRITE_ERROR */
    }
    if (t->len + n + 1 > t->cap) {
        apr_size_t cap = t->cap ? t->cap : 4096;
        char *nb;
        while (cap < t->len + n + 1) {
            cap *= 2;
        }
        nb = apr_palloc(t->p, cap);
        if (t->len) {
            memcpy(nb, t->body, t->len);
        }
        t->body = nb;
        t->cap = cap;
    }
    memcpy(t->body + t->len, data, n);
    t->len += n;
    t->body[t->len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    transfer_t *t = userdata;
    apr_size_t n = size * nmemb, end = n;
    const char *colon;
    char *name, *value;

    if (n > ACME_HTTP_HEADER_LINE_MAX || ++t->header_lines > ACME_HTTP_HEADERS_MAX) {
        t->overflow = 1;
        return 0;
    }
    /* A new status line starts a new header block (after 100 Continue, or proxy CONNECT). */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        apr_table_clear(t->headers);
        return n;
    }
    while (end > 0 && (data[end - 1] == '\r' || data[end - 1] == '\n')) {
        end--;
    }
    colon = memchr(data, ':', end);
    if (!colon || colon == data) {
        return n; /* blank line or junk: nothing to keep */
    }
    name = apr_pstrmemdup(t->p, data, (apr_size_t)(colon - data));
    colon++;
    while (colon < data + end && (*colon == ' ' || *colon == '\t')) {
        colon++;
    }
    value = apr_pstrmemdup(t->p, colon, (apr_size_t)(data + end - colon));
    apr_table_add(t->headers, name, value);
    return n;
}

/* libcurl calls this while a transfer runs, also while it waits for a connection or an answer:
 * a stopping server must not wait for a CA that does not answer. */
static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    const curl_baton_t *b = userdata;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return b->opts.cancel && *b->opts.cancel ? 1 : 0; /* non-zero aborts the transfer */
}

static apr_status_t curl_baton_cleanup(void *data)
{
    curl_baton_t *b = data;
    if (b->opts.share) {
        acme_http_share_give(b->opts.share, b->curl); /* kept open for the next transport */
    } else {
        curl_easy_cleanup(b->curl);
    }
    return APR_SUCCESS;
}

static apr_status_t curl_perform(acme_http_t *http, const acme_http_req_t *req,
                                 acme_http_resp_t **presp, apr_pool_t *p)
{
    curl_baton_t *b = http->baton;
    CURL *c = b->curl;
    struct curl_slist *hdrs = NULL;
    transfer_t t;
    acme_http_resp_t *resp;
    apr_status_t rv = APR_SUCCESS;
    CURLcode cc;
    long code = 0;
    char errbuf[CURL_ERROR_SIZE] = "";

    if (b->opts.cancel && *b->opts.cancel) {
        apr_cpystrn(http->error, "cancelled: the server is stopping", sizeof(http->error));
        return ACME_ECANCELLED;
    }
    memset(&t, 0, sizeof(t));
    t.p = p;
    t.headers = apr_table_make(p, 16);

    /* The handle is reused so the connection to the CA stays open between requests; options
     * of the previous request are reset first. */
    curl_easy_reset(c);
    if (b->opts.share) {
        curl_easy_setopt(c, CURLOPT_SHARE, acme_http_share_curlsh(b->opts.share));
    }
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* ACME Location headers are data */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);       /* we run in threads */
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
                     b->opts.connect_timeout_s > 0 ? b->opts.connect_timeout_s : 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, b->opts.timeout_s > 0 ? b->opts.timeout_s : 30L);
    curl_easy_setopt(c, CURLOPT_USERAGENT,
                     b->opts.user_agent ? b->opts.user_agent : "mod_acme/" PACKAGE_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    if (b->opts.cancel) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, b);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    if (b->opts.ca_file) {
        curl_easy_setopt(c, CURLOPT_CAINFO, b->opts.ca_file);
    }
    if (b->opts.proxy) {
        /* Credentials in the URL are sent as Proxy-Authorization (Basic); the URL itself is
         * never logged, only acme_http_proxy_masked's form of it. */
        curl_easy_setopt(c, CURLOPT_PROXY, b->opts.proxy);
        if (b->opts.proxy_ca_file) {
            curl_easy_setopt(c, CURLOPT_PROXY_CAINFO, b->opts.proxy_ca_file);
        }
    }
    if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        if (req->content_type) {
            hdrs =
                curl_slist_append(hdrs, apr_pstrcat(p, "Content-Type: ", req->content_type, NULL));
        }
        /* No "Expect: 100-continue" round trip for our small bodies. */
        hdrs = curl_slist_append(hdrs, "Expect:");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    }

    cc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    if (b->opts.share) {
        long connects = 0;
        curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &connects);
        acme_http_share_connected(b->opts.share, connects);
    }
    if (t.overflow) {
        apr_snprintf(http->error, sizeof(http->error),
                     "answer larger than %d bytes or %d header lines", ACME_HTTP_BODY_MAX,
                     ACME_HTTP_HEADERS_MAX);
        acme_log(http->log, ACME_LOG_DEBUG, ACME_ETOOLARGE,
                 "%s %s: answer exceeds the size bounds (body %d bytes, header lines %d)",
                 req->method, req->url, ACME_HTTP_BODY_MAX, ACME_HTTP_HEADERS_MAX);
        rv = ACME_ETOOLARGE;
        goto out;
    }
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
        apr_cpystrn(http->error, "cancelled: the server is stopping", sizeof(http->error));
        acme_log(http->log, ACME_LOG_DEBUG, ACME_ECANCELLED, "%s %s: cancelled", req->method,
                 req->url);
        rv = ACME_ECANCELLED;
        goto out;
    }
    if (cc != CURLE_OK && b->opts.proxy) {
        /* Through a proxy: the error names it (masked), and a refusal says which. */
        long pcode = 0;
        curl_easy_getinfo(c, CURLINFO_HTTP_CONNECTCODE, &pcode);
        apr_snprintf(http->error, sizeof(http->error), "through the proxy %s: %s", b->masked_proxy,
                     pcode == 407 ? "the proxy refused the credentials (407 Proxy "
                                    "Authentication Required)"
                     : errbuf[0]  ? errbuf
                                  : curl_easy_strerror(cc));
        acme_log(http->log, ACME_LOG_DEBUG, ACME_ETRANSPORT, "ACME03701: %s %s: %s", req->method,
                 req->url, http->error);
        rv = ACME_ETRANSPORT;
        goto out;
    }
    if (cc != CURLE_OK) {
        apr_cpystrn(http->error, errbuf[0] ? errbuf : curl_easy_strerror(cc), sizeof(http->error));
        acme_log(http->log, ACME_LOG_DEBUG, ACME_ETRANSPORT, "%s %s: %s", req->method, req->url,
                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
        rv = ACME_ETRANSPORT;
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);

    resp = apr_pcalloc(p, sizeof(*resp));
    resp->status = (int)code;
    resp->headers = t.headers;
    resp->body = t.body ? t.body : "";
    resp->body_len = t.len;
    *presp = resp;
out:
    /* errbuf is on our stack: the handle must not keep pointing at it. */
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    return rv;
}

apr_status_t acme_http_curl_create(acme_http_t **phttp, const acme_http_opts_t *opts,
                                   const acme_log_t *log, apr_pool_t *p)
{
    curl_baton_t *b = apr_pcalloc(p, sizeof(*b));
    acme_http_t *http;

    b->curl = opts && opts->share ? acme_http_share_take(opts->share) : NULL;
    if (!b->curl) {
        b->curl = curl_easy_init();
    }
    if (!b->curl) {
        return APR_ENOMEM;
    }
    apr_pool_cleanup_register(p, b, curl_baton_cleanup, apr_pool_cleanup_null);
    if (opts) {
        b->opts = *opts;
        b->opts.ca_file = opts->ca_file ? apr_pstrdup(p, opts->ca_file) : NULL;
        b->opts.proxy = opts->proxy ? apr_pstrdup(p, opts->proxy) : NULL;
        b->opts.proxy_ca_file = opts->proxy_ca_file ? apr_pstrdup(p, opts->proxy_ca_file) : NULL;
        b->masked_proxy = opts->proxy ? acme_http_proxy_masked(opts->proxy, p) : NULL;
        b->opts.user_agent = opts->user_agent ? apr_pstrdup(p, opts->user_agent) : NULL;
    }
    http = apr_pcalloc(p, sizeof(*http));
    http->perform = curl_perform;
    http->baton = b;
    http->log = log;
    *phttp = http;
    return APR_SUCCESS;
}

#define PROXY_URL_MAX 1024

/* 1 when url is a proxy URL acme_http_proxy_check takes, else 0 and *pwhy. */
static int proxy_parse(const char *url, const char **pwhy)
{
    CURLU *u;
    char *scheme = NULL, *host = NULL, *path = NULL, *query = NULL, *frag = NULL;
    int ok = 0;

    *pwhy = NULL;
    if (!url || strlen(url) > PROXY_URL_MAX || strpbrk(url, " \t\r\n\"'<>")) {
        *pwhy = "expected a URL of at most 1024 characters without spaces or quotes";
        return 0;
    }
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
        *pwhy = "expected http://[user:password@]host:port or https://...";
        return 0;
    }
    u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        *pwhy = "not a URL with a host";
        goto out;
    }
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
    if ((path && strcmp(path, "/") != 0) || query || frag) {
        *pwhy = "a proxy URL has no path, query or fragment: give scheme://host:port";
        goto out;
    }
    ok = 1;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(path);
    curl_free(query);
    curl_free(frag);
    curl_url_cleanup(u);
    return ok;
}

apr_status_t acme_http_proxy_check(const char *url, const char **pwhy, apr_pool_t *p)
{
    const char *why;

    (void)p;
    if (!proxy_parse(url, &why)) {
        *pwhy = why;
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

const char *acme_http_proxy_masked(const char *url, apr_pool_t *p)
{
    const char *auth, *end, *at = NULL, *colon, *q;

    if (!url || strlen(url) > PROXY_URL_MAX) {
        return "(proxy)";
    }
    auth = strstr(url, "://");
    auth = auth ? auth + 3 : url;
    end = auth + strcspn(auth, "/?#");
    /* The last '@' of the authority ends the user information (a password may hold '@'). */
    for (q = auth; q < end; q++) {
        if (*q == '@') {
            at = q;
        }
    }
    if (!at) {
        return apr_pstrdup(p, url);
    }
    /* The user name is shown (it tells which account), the password never; user information
     * without a ':' may be a token: hidden whole. */
    colon = memchr(auth, ':', (apr_size_t)(at - auth));
    return apr_pstrcat(p, apr_pstrmemdup(p, url, (apr_size_t)((colon ? colon : auth) - url)),
                       colon ? ":***" : "***", at, NULL);
}

typedef struct collect_t {
    const char *name;
    apr_array_header_t *values;
} collect_t;

static int collect_one(void *baton, const char *key, const char *value)
{
    collect_t *c = baton;
    if (strcasecmp(key, c->name) == 0) {
        APR_ARRAY_PUSH(c->values, const char *) = value;
    }
    return 1;
}

apr_array_header_t *acme_http_header_values(const acme_http_resp_t *resp, const char *name,
                                            apr_pool_t *p)
{
    collect_t c;

    c.name = name;
    c.values = apr_array_make(p, 2, sizeof(const char *));
    if (resp && resp->headers) {
        apr_table_do(collect_one, &c, resp->headers, name, NULL);
    }
    return c.values;
}

/* Resolves ref against base with libcurl's URL parser; ref unchanged when that fails. */
const char *acme_http_resolve(const char *base, const char *ref, apr_pool_t *p)
{
    CURLU *u;
    char *full = NULL;
    const char *out = ref;

    if (!base) {
        return ref;
    }
    u = curl_url();
    if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, ref, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &full, 0) == CURLUE_OK) {
        out = apr_pstrdup(p, full);
    }
    curl_free(full);
    curl_url_cleanup(u);
    return out;
}

/* 1 when the parameters of one link (";rel=x; title=y") name rel among their relation types;
 * rel may be quoted and may list several space-separated types (RFC 8288 section 3.3). */
static int link_has_rel(const char *params, const char *rel, apr_pool_t *p)
{
    char *copy = apr_pstrdup(p, params), *last = NULL, *tok;

    for (tok = apr_strtok(copy, ";", &last); tok; tok = apr_strtok(NULL, ";", &last)) {
        char *val, *q, *vlast = NULL, *rt;
        while (isspace((unsigned char)*tok)) {
            tok++;
        }
        if (strncasecmp(tok, "rel", 3) != 0) {
            continue;
        }
        val = tok + 3;
        while (isspace((unsigned char)*val)) {
            val++;
        }
        if (*val != '=') {
            continue;
        }
        val++;
        while (isspace((unsigned char)*val)) {
            val++;
        }
        if (*val == '"') {
            val++;
            q = strchr(val, '"');
            if (q) {
                *q = '\0';
            }
        }
        for (rt = apr_strtok(val, " \t", &vlast); rt; rt = apr_strtok(NULL, " \t", &vlast)) {
            if (strcasecmp(rt, rel) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

/* One Link header value may hold several links: <a>; rel="x", <b>; rel=y. */
static void parse_links(apr_array_header_t *out, const char *value, const char *rel,
                        const char *base, apr_pool_t *p)
{
    const char *s = value;

    while (s && *s) {
        const char *lt = strchr(s, '<'), *gt, *next;
        const char *url, *params;

        if (!lt) {
            return;
        }
        gt = strchr(lt, '>');
        if (!gt) {
            return;
        }
        url = apr_pstrmemdup(p, lt + 1, (apr_size_t)(gt - lt - 1));
        next = strchr(gt, ',');
        params = next ? apr_pstrmemdup(p, gt + 1, (apr_size_t)(next - gt - 1)) : gt + 1;
        if (link_has_rel(params, rel, p)) {
            APR_ARRAY_PUSH(out, const char *) = acme_http_resolve(base, url, p);
        }
        s = next ? next + 1 : NULL;
    }
}

apr_array_header_t *acme_http_links(const acme_http_resp_t *resp, const char *rel, const char *base,
                                    apr_pool_t *p)
{
    apr_array_header_t *values = acme_http_header_values(resp, "Link", p);
    apr_array_header_t *out = apr_array_make(p, 2, sizeof(const char *));
    int i;

    for (i = 0; i < values->nelts; i++) {
        parse_links(out, APR_ARRAY_IDX(values, i, const char *), rel, base, p);
    }
    return out;
}

apr_interval_time_t acme_http_retry_after(const acme_http_resp_t *resp, apr_time_t now)
{
    const char *v = resp && resp->headers ? apr_table_get(resp->headers, "Retry-After") : NULL;
    apr_time_t when;

    if (!v) {
        return -1;
    }
    while (isspace((unsigned char)*v)) {
        v++;
    }
    if (isdigit((unsigned char)*v)) {
        char *end = NULL;
        apr_int64_t secs = apr_strtoi64(v, &end, 10);
        while (end && isspace((unsigned char)*end)) {
            end++;
        }
        /* Cap absurd values before they overflow apr_time_t: a year is plenty. */
        if (!end || *end || secs < 0) {
            return -1;
        }
        if (secs > 366 * 24 * 3600) {
            secs = 366 * 24 * 3600;
        }
        return apr_time_from_sec(secs);
    }
    when = apr_date_parse_http(v);
    if (when == APR_DATE_BAD) {
        return -1;
    }
    return when > now ? when - now : 0;
}
