/* fuzz_http.c - response headers from the CA: the header lines as libcurl hands them to the
 * transport (acme_http.c's on_header, with its bounds), then Link (alternate chains), Location,
 * Retry-After in both forms and Replay-Nonce as the client uses them: nonces kept and sent back,
 * relative Locations resolved, waits taken from error answers.
 *
 * Input: one byte choosing the HTTP status, whether HEAD newNonce gets the same answer, whether
 * an error is badNonce (retried) and whether the second request downloads a chain; then the
 * header block, one header per line.
 */
#include "fuzz.h"

#include "acme_order.h"

/* The transport's header callback is static: this target compiles acme_http.c in, and the copy
 * in the core library is then not linked. */
#include "../../mod_acme/acme_http.c"

#define BASE "https://ca.test/acme/cert/1"

static const int statuses[] = {200, 201, 204, 400, 404, 429, 500, 503};

#define ORDER_OK                                                                                   \
    "{\"status\":\"valid\",\"identifiers\":[{\"type\":\"dns\",\"value\":\"a.test\"}],"             \
    "\"authorizations\":[\"" FUZZ_CA "/authz/1\"],\"finalize\":\"" FUZZ_CA "/finalize/1\","        \
    "\"certificate\":\"" FUZZ_CA "/cert/1\"}"
#define BAD_NONCE    "{\"type\":\"urn:ietf:params:acme:error:badNonce\",\"detail\":\"stale\"}"
#define RATE_LIMITED "{\"type\":\"urn:ietf:params:acme:error:rateLimited\",\"detail\":\"too many\"}"
#define CHAIN        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

static const acme_key_t *account_key(void)
{
    static acme_key_t *key;

    if (!key) {
        FUZZ_ASSERT(acme_key_generate(&key, ACME_KEY_EC256, fuzz_root_pool()) == APR_SUCCESS);
        fuzz_keep(acme_key_evp(key));
    }
    return key;
}

/* Feeds the lines as libcurl would: the status line, each header line with its CRLF, the empty
 * line. Returns 0 when a bound was hit (the transfer is then aborted). */
static int feed_headers(transfer_t *t, const char *text, apr_size_t len)
{
    static char status[] = "HTTP/1.1 200 OK\r\n";
    static char crlf[] = "\r\n";
    apr_size_t pos = 0;

    if (on_header(status, 1, sizeof(status) - 1, t) != sizeof(status) - 1) {
        return 0;
    }
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        apr_size_t n = nl ? (apr_size_t)(nl - (text + pos)) + 1 : len - pos;
        char *line = apr_pmemdup(t->p, text + pos, n);
        if (on_header(line, 1, n, t) != n) {
            FUZZ_ASSERT(t->overflow);
            return 0;
        }
        pos += n;
    }
    return on_header(crlf, 1, 2, t) == 2;
}

static void check_links(const acme_http_resp_t *resp, const char *rel, apr_pool_t *p)
{
    apr_array_header_t *links = acme_http_links(resp, rel, BASE, p);
    int i;

    for (i = 0; i < links->nelts; i++) {
        FUZZ_ASSERT(APR_ARRAY_IDX(links, i, const char *) != NULL);
    }
}

/* Two signed requests (signing dominates the cost): the second signs with the nonce the first
 * answer carried, if it was usable, and is the chain download when the flags say so. */
static void client_exchange(const acme_http_resp_t *hr, unsigned opt, apr_pool_t *p)
{
    fuzz_ca_t *ca = fuzz_ca_make(p);
    acme_client_t *client = fuzz_client(ca, p);
    acme_problem_t *prob = NULL;
    acme_order_t *order;
    apr_array_header_t *alts = NULL;
    const char *pem;
    apr_size_t len;
    apr_status_t rv;
    int i;

    ca->status = hr->status;
    ca->headers = hr->headers;
    ca->raw = (opt & 8) != 0;
    ca->body = hr->status < 300 ? ORDER_OK : (opt & 16) ? BAD_NONCE : RATE_LIMITED;
    ca->body_len = strlen(ca->body);
    acme_client_set_account(client, account_key(), FUZZ_CA "/acct/1");
    for (i = 0; i < 2; i++) {
        prob = NULL;
        ca->requests = 0;
        if (i == 1 && (opt & 32)) {
            ca->body = hr->status < 300 ? CHAIN : ca->body;
            ca->body_len = strlen(ca->body);
            rv = acme_chain_download(&pem, &len, &alts, &prob, client, BASE, p);
            if (rv == APR_SUCCESS) {
                int j;
                for (j = 0; j < alts->nelts; j++) {
                    FUZZ_ASSERT(APR_ARRAY_IDX(alts, j, const char *) != NULL);
                }
            }
        } else {
            rv = acme_order_get(&order, &prob, client, FUZZ_CA "/order/1", p);
        }
        if (rv != APR_SUCCESS && prob) {
            FUZZ_ASSERT(prob->retry_after >= -1 && prob->retry_after <= ACME_RETRY_AFTER_MAX);
            FUZZ_ASSERT(acme_problem_describe(prob, p) != NULL);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    fuzz_input_t in;
    transfer_t t;
    acme_http_resp_t resp;
    apr_interval_time_t ra;
    const char *text, *loc;
    apr_size_t len;
    unsigned opt;

    fuzz_input_init(&in, data, size);
    opt = fuzz_byte(&in);
    text = fuzz_rest(&in, &len, p);
    memset(&t, 0, sizeof(t));
    t.p = p;
    t.headers = apr_table_make(p, 16);
    if (!feed_headers(&t, text, len)) {
        FUZZ_ASSERT(t.overflow);
        goto out;
    }
    FUZZ_ASSERT(t.header_lines <= ACME_HTTP_HEADERS_MAX);
    memset(&resp, 0, sizeof(resp));
    resp.status = statuses[opt % (sizeof(statuses) / sizeof(statuses[0]))];
    resp.headers = t.headers;
    resp.body = "";

    (void)acme_http_header_values(&resp, "Replay-Nonce", p);
    check_links(&resp, "alternate", p);
    check_links(&resp, "up", p);
    /* Any wait here (an HTTP-date may lie years ahead); the client caps it (checked below). */
    ra = acme_http_retry_after(&resp, FUZZ_NOW);
    FUZZ_ASSERT(ra >= -1);
    loc = apr_table_get(resp.headers, "Location");
    if (loc) {
        FUZZ_ASSERT(acme_http_resolve(BASE, loc, p) != NULL);
    }
    client_exchange(&resp, opt, p);
out:
    apr_pool_destroy(p);
    return 0;
}
