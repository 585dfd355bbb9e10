/* fuzz_challenge.c - the http-01 answers: mod_acme_challenge.c's quick handler with its token
 * and Host checks, the token table in socache (the value "host\nkeyauth" stored and parsed
 * back), and the parent re-publishing the challenges of a job file after a restart.
 *
 * What must hold: an answer (200) only for GET /.well-known/acme-challenge/<token> with a
 * well-formed token, on a Host that is one of our names and the name the token was published
 * for, and its body is exactly the key authorization published; other paths and other names are
 * declined (another module answers), our names get a 404.
 *
 * Input: one byte of flags (method, HEAD, lookup_only, publish through a job file), then lines:
 * the request's Host, its path, the token, host and key authorization published; with the job
 * flag the rest is the job file instead of the last three.
 */
#include <apr_file_io.h>

#include "fuzz.h"
#include "fuzz_httpd.h"

#include "acme_tokens.h"

#define PREFIX "/.well-known/acme-challenge/"

static const char *const our_names[] = {"example.org", "www.example.org", "192.0.2.1",
                                        "2001:db8::1"};

static acme_runtime_t *runtime_make(apr_pool_t *p)
{
    static acme_store_t *store;
    acme_runtime_t *rt = apr_pcalloc(p, sizeof(*rt));
    acme_domain_t *d = apr_pcalloc(p, sizeof(*d));
    size_t i;

    if (!store) {
        FUZZ_ASSERT(acme_store_open(&store, fuzz_scratch_dir(), fuzz_root_pool()) == APR_SUCCESS);
    }
    rt->s = fuzz_httpd_server("example.org", p);
    rt->conf = acme_conf_get(rt->s);
    rt->conf->cache_provider = &fuzz_socache_provider;
    rt->store = store;
    d->names = apr_array_make(p, 4, sizeof(const char *));
    for (i = 0; i < sizeof(our_names) / sizeof(our_names[0]); i++) {
        APR_ARRAY_PUSH(d->names, const char *) = our_names[i];
    }
    d->name = d->set_name = our_names[0];
    d->primary = 1;
    APR_ARRAY_PUSH(rt->conf->domains, acme_domain_t *) = d;
    FUZZ_ASSERT(fuzz_socache_provider.create(&rt->cache, NULL, p, p) == NULL);
    fuzz_httpd_set_runtime(rt);
    return rt;
}

static int is_ours(const char *host)
{
    size_t i;

    for (i = 0; host && i < sizeof(our_names) / sizeof(our_names[0]); i++) {
        if (strcasecmp(host, our_names[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fuzz_pool();
    acme_runtime_t *rt = runtime_make(p);
    acme_tokens_t *tokens = acme_tokens_socache(rt, p);
    fuzz_input_t in;
    request_rec *r = apr_pcalloc(p, sizeof(*r));
    struct ap_logconf log = {NULL, APLOG_TRACE8};
    const char *host, *uri, *token = NULL, *pub_host = NULL, *keyauth = NULL, *body;
    const char *got_host, *got_keyauth;
    apr_size_t len;
    unsigned flags;
    int published = 0, ret;

    fuzz_input_init(&in, data, size);
    flags = fuzz_byte(&in);
    host = fuzz_part(&in, "\n", NULL, p);
    uri = fuzz_part(&in, "\n", NULL, p);
    if (flags & 8) {
        /* The parent after a restart: challenges of the job file back into the table. */
        const char *job = fuzz_rest(&in, &len, p);
        apr_file_t *f;
        const char *path = acme_store_path(rt->store, "jobs/example.org.json", p);
        FUZZ_ASSERT(apr_file_open(&f, path, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE,
                                  APR_FPROT_UREAD | APR_FPROT_UWRITE, p) == APR_SUCCESS);
        FUZZ_ASSERT(len == 0 || apr_file_write_full(f, job, len, NULL) == APR_SUCCESS);
        apr_file_close(f);
        acme_parent_tokens_republish(rt, p);
    } else {
        token = fuzz_part(&in, "\n", NULL, p);
        pub_host = fuzz_part(&in, "\n", NULL, p);
        keyauth = fuzz_rest(&in, NULL, p);
        published = tokens->put(tokens, token, pub_host, keyauth,
                                apr_time_now() + apr_time_from_sec(3600)) == APR_SUCCESS;
        FUZZ_ASSERT(!published || acme_token_ok(token, strlen(token)));
        /* The table gives back what was published. */
        if (published) {
            FUZZ_ASSERT(tokens->get(tokens, token, &got_host, &got_keyauth, p) == APR_SUCCESS);
            FUZZ_ASSERT(strcmp(got_host, pub_host) == 0 && strcmp(got_keyauth, keyauth) == 0);
        }
    }

    r->pool = p;
    r->server = rt->s;
    r->log = &log;
    r->uri = apr_pstrdup(p, uri);
    r->hostname = host[0] ? host : NULL;
    r->method_number = (flags & 1) ? M_POST : M_GET;
    r->method = (flags & 1) ? "POST" : "GET";
    r->header_only = (flags & 2) != 0;
    r->headers_out = apr_table_make(p, 4);
    fuzz_httpd_reset_output();
    ret = acme_challenge_quick(r, (flags & 4) != 0); /* first in the module's quick handler */

    if (ret == OK) {
        FUZZ_ASSERT(!(flags & 4) && !(flags & 1));
        FUZZ_ASSERT(is_ours(r->hostname));
        FUZZ_ASSERT(strncmp(r->uri, PREFIX, strlen(PREFIX)) == 0);
        FUZZ_ASSERT(acme_token_ok(r->uri + strlen(PREFIX), strlen(r->uri + strlen(PREFIX))));
        FUZZ_ASSERT(strcmp(apr_table_get(r->headers_out, "Cache-Control"), "no-store") == 0);
        FUZZ_ASSERT(strcmp(fuzz_httpd_content_type(), "text/plain") == 0);
        body = fuzz_httpd_body(&len);
        FUZZ_ASSERT(r->header_only ? len == 0 : (apr_off_t)len == fuzz_httpd_content_length());
        if (published) {
            /* Only the answer published for this token and this name. */
            FUZZ_ASSERT(strcmp(r->uri + strlen(PREFIX), token) == 0);
            FUZZ_ASSERT(strcasecmp(pub_host, r->hostname) == 0);
            FUZZ_ASSERT(fuzz_httpd_content_length() == (apr_off_t)strlen(keyauth));
            FUZZ_ASSERT(r->header_only || memcmp(body, keyauth, len) == 0);
        }
    } else if (ret == HTTP_NOT_FOUND) {
        FUZZ_ASSERT(!(flags & 4) && !(flags & 1) && is_ours(r->hostname));
        FUZZ_ASSERT(strncmp(r->uri, PREFIX, strlen(PREFIX)) == 0);
        FUZZ_ASSERT(!published || strcmp(r->uri + strlen(PREFIX), token) != 0 ||
                    strcasecmp(pub_host, r->hostname) != 0);
    } else {
        FUZZ_ASSERT(ret == DECLINED);
        FUZZ_ASSERT((flags & 5) || !is_ours(r->hostname) ||
                    strncmp(r->uri, PREFIX, strlen(PREFIX)) != 0);
    }
    apr_pool_destroy(p);
    return 0;
}
