/* mod_acme_challenge.c - the token table in socache (shared memory by default) and the answers
 * to http-01 validation requests.
 *
 * The parent creates the table in post_config and re-publishes pending challenges from the job
 * files (a graceful restart makes a new segment); every child attaches in child_init; the
 * driver publishes and removes answers through acme_tokens_socache(); request children answer
 * GET /.well-known/acme-challenge/<token> from it in a quick_handler, before mod_rewrite,
 * proxies and access control, without touching a file. tls-alpn-01 answers live in the same
 * table under "tls-alpn-01:<server name>" (no token holds a colon); mod_acme_tlsalpn.c hands
 * them to mod_ssl during the handshake.
 */
#include <string.h>

#include <apr_strings.h>
#include <http_core.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_mutex.h>

#include "acme_csr.h"
#include "acme_tlsalpn.h"
#include "mod_acme.h"

#define TOKEN_VALUE_MAX 2048 /* "host\nkeyauth" */
#define PREFIX_LEN      (sizeof(ACME_CHALLENGE_PREFIX) - 1)
#define CERT_ID_PREFIX  "tls-alpn-01:"
#define SNI_MAX         253 /* a DNS name; reverse names of IPv6 addresses are 72 */
/* An answer read back from a job file is published for a day at most, whatever it says. */
#define SAVED_ANSWER_MAX apr_time_from_sec(86400)

static apr_status_t cache_destroy(void *data)
{
    acme_runtime_t *rt = data;
    rt->conf->cache_provider->destroy(rt->cache, rt->s);
    return APR_SUCCESS;
}

apr_status_t acme_parent_tokens_create(acme_runtime_t *rt, apr_pool_t *pconf)
{
    const ap_socache_provider_t *prov = rt->conf->cache_provider;
    struct ap_socache_hints hints = {43, 256, apr_time_from_sec(600)};
    const char *err;
    apr_status_t rv;

    err = prov->create(&rt->cache, rt->conf->cache_args, pconf, pconf);
    if (err) {
        acme_log_error(APLOG_MARK, APLOG_EMERG, 0, rt->s, "ACME01040: ACMEChallengeCache %s: %s",
                       rt->conf->cache_spec, err);
        return APR_EGENERAL;
    }
    rv = prov->init(rt->cache, "mod_acme-tokens", &hints, rt->s, pconf);
    if (rv != APR_SUCCESS) {
        acme_log_error(APLOG_MARK, APLOG_EMERG, rv, rt->s,
                       "ACME01041: cannot set up the challenge token cache (%s)",
                       rt->conf->cache_spec ? rt->conf->cache_spec : "shmcb");
        return rv;
    }
    apr_pool_cleanup_register(pconf, rt, cache_destroy, apr_pool_cleanup_null);
    if (prov->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
        rv = ap_global_mutex_create(&rt->cache_mutex, NULL, "acme-tokens", NULL, rt->s, pconf, 0);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    return APR_SUCCESS;
}

void acme_child_tokens_init(acme_runtime_t *rt, apr_pool_t *pchild)
{
    if (rt->cache_mutex) {
        apr_status_t rv = apr_global_mutex_child_init(
            &rt->cache_mutex, apr_global_mutex_lockfile(rt->cache_mutex), pchild);
        if (rv != APR_SUCCESS) {
            acme_log_error(APLOG_MARK, APLOG_ERR, rv, rt->s,
                           "ACME01042: cannot attach to the token cache lock; challenges may go "
                           "unanswered from this child");
        }
    }
}

/* shmcb is not safe across processes without the lock: no lock, no access. */
static apr_status_t cache_lock(acme_runtime_t *rt)
{
    return rt->cache_mutex ? apr_global_mutex_lock(rt->cache_mutex) : APR_SUCCESS;
}

static void cache_unlock(acme_runtime_t *rt)
{
    if (rt->cache_mutex) {
        apr_global_mutex_unlock(rt->cache_mutex);
    }
}

/* A store that failed: with a shared engine (ACMEChallengeCache memcache: or redis:, cluster
 * mode) the engine is down or full. The answer is then nowhere: the worker's attempt fails
 * before the CA is asked to validate (acme_issue.c), and is retried after its backoff. */
static void cache_store_failed(acme_runtime_t *rt, const char *host, apr_status_t rv)
{
    acme_log_error(APLOG_MARK, APLOG_ERR, rv, rt->s,
                   "ACME04015: %s: the challenge answer cannot be stored in the challenge cache "
                   "(ACMEChallengeCache %s): no node could answer the CA, so the CA is not asked "
                   "to validate; the attempt fails and is retried after its backoff",
                   host, rt->conf->cache_spec ? rt->conf->cache_spec : "shmcb");
}

/* One store (value != NULL) or remove in the table, locked, with a pool for the provider. */
static apr_status_t cache_change(acme_runtime_t *rt, const char *token, const char *value,
                                 unsigned int vlen, apr_time_t expires)
{
    apr_pool_t *p;
    apr_status_t rv;

    rv = apr_pool_create(&p, NULL);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = cache_lock(rt);
    if (rv == APR_SUCCESS) {
        rv = value
                 ? rt->conf->cache_provider->store(rt->cache, rt->s, (const unsigned char *)token,
                                                   (unsigned int)strlen(token), expires,
                                                   (unsigned char *)value, vlen, p)
                 : rt->conf->cache_provider->remove(rt->cache, rt->s, (const unsigned char *)token,
                                                    (unsigned int)strlen(token), p);
        cache_unlock(rt);
    }
    apr_pool_destroy(p);
    return rv;
}

static apr_status_t tokens_put(acme_tokens_t *t, const char *token, const char *host,
                               const char *keyauth, apr_time_t expires)
{
    char value[TOKEN_VALUE_MAX];
    apr_status_t rv;
    int n;

    /* The newline separates host and keyauth in the stored value: a host holding one would
     * shift the answer. apr_snprintf truncates silently, so the length is checked first. */
    if (!acme_token_ok(token, strlen(token)) || strchr(host, '\n')) {
        return APR_EINVAL;
    }
    if (strlen(host) + 1 + strlen(keyauth) >= sizeof(value)) {
        return ACME_ETOOLARGE;
    }
    n = apr_snprintf(value, sizeof(value), "%s\n%s", host, keyauth);
    rv = cache_change(t->baton, token, value, (unsigned int)n, expires);
    if (rv != APR_SUCCESS) {
        cache_store_failed(t->baton, host, rv);
    }
    return rv;
}

/* Looks a token up; *phost and *pkeyauth point into buf. */
static apr_status_t lookup(acme_runtime_t *rt, const char *token, apr_size_t tlen, char *buf,
                           apr_size_t bufsize, const char **phost, const char **pkeyauth,
                           apr_pool_t *p)
{
    unsigned int len = (unsigned int)bufsize - 1;
    char *nl;
    apr_status_t rv;

    if (cache_lock(rt) != APR_SUCCESS) {
        return APR_NOTFOUND;
    }
    rv = rt->conf->cache_provider->retrieve(rt->cache, rt->s, (const unsigned char *)token,
                                            (unsigned int)tlen, (unsigned char *)buf, &len, p);
    cache_unlock(rt);
    if (rv != APR_SUCCESS) {
        return APR_NOTFOUND;
    }
    buf[len] = '\0';
    nl = strchr(buf, '\n');
    if (!nl) {
        return APR_NOTFOUND;
    }
    *nl = '\0';
    *phost = buf;
    *pkeyauth = nl + 1;
    return APR_SUCCESS;
}

static apr_status_t tokens_get(acme_tokens_t *t, const char *token, const char **phost,
                               const char **pkeyauth, apr_pool_t *p)
{
    char buf[TOKEN_VALUE_MAX];
    const char *host, *keyauth;
    apr_status_t rv;

    rv = lookup(t->baton, token, strlen(token), buf, sizeof(buf), &host, &keyauth, p);
    if (rv == APR_SUCCESS) {
        *phost = apr_pstrdup(p, host);
        *pkeyauth = apr_pstrdup(p, keyauth);
    }
    return rv;
}

static apr_status_t tokens_remove(acme_tokens_t *t, const char *token)
{
    apr_status_t rv = cache_change(t->baton, token, NULL, 0, 0);
    return APR_STATUS_IS_NOTFOUND(rv) ? APR_SUCCESS : rv;
}

/* --- tls-alpn-01 answers, under "tls-alpn-01:<server name>" --- */

/* The table id of a server name, in buf; 0 when it cannot be one of ours. */
static int cert_id(char *buf, apr_size_t size, const char *sni)
{
    if (!sni || !*sni || strlen(sni) > SNI_MAX) {
        return 0;
    }
    apr_snprintf(buf, size, "%s%s", CERT_ID_PREFIX, sni);
    return 1;
}

static apr_status_t tokens_put_cert(acme_tokens_t *t, const char *sni, const char *pem,
                                    apr_time_t expires)
{
    char id[sizeof(CERT_ID_PREFIX) + SNI_MAX];
    apr_size_t len = pem ? strlen(pem) : 0;
    apr_status_t rv;

    if (!cert_id(id, sizeof(id), sni) || !len) {
        return APR_EINVAL;
    }
    if (len >= ACME_TLSALPN_PEM_MAX) {
        return ACME_ETOOLARGE;
    }
    rv = cache_change(t->baton, id, pem, (unsigned int)len, expires);
    if (rv != APR_SUCCESS) {
        cache_store_failed(t->baton, sni, rv);
    }
    return rv;
}

apr_status_t acme_request_cert_lookup(acme_runtime_t *rt, const char *sni, char *buf,
                                      apr_size_t size, apr_pool_t *p)
{
    char id[sizeof(CERT_ID_PREFIX) + SNI_MAX];
    unsigned int len = (unsigned int)size - 1;
    apr_status_t rv;

    if (!cert_id(id, sizeof(id), sni) || size < 2 || cache_lock(rt) != APR_SUCCESS) {
        return APR_NOTFOUND;
    }
    rv =
        rt->conf->cache_provider->retrieve(rt->cache, rt->s, (const unsigned char *)id,
                                           (unsigned int)strlen(id), (unsigned char *)buf, &len, p);
    cache_unlock(rt);
    if (rv != APR_SUCCESS || len == 0 || len >= size) {
        return APR_NOTFOUND;
    }
    buf[len] = '\0';
    return APR_SUCCESS;
}

static apr_status_t tokens_get_cert(acme_tokens_t *t, const char *sni, const char **ppem,
                                    apr_pool_t *p)
{
    char *buf = apr_palloc(p, ACME_TLSALPN_PEM_MAX);
    apr_status_t rv = acme_request_cert_lookup(t->baton, sni, buf, ACME_TLSALPN_PEM_MAX, p);

    if (rv == APR_SUCCESS) {
        *ppem = buf;
    }
    return rv;
}

static apr_status_t tokens_remove_cert(acme_tokens_t *t, const char *sni)
{
    char id[sizeof(CERT_ID_PREFIX) + SNI_MAX];
    apr_status_t rv;

    if (!cert_id(id, sizeof(id), sni)) {
        return APR_SUCCESS; /* never published */
    }
    rv = cache_change(t->baton, id, NULL, 0, 0);
    return APR_STATUS_IS_NOTFOUND(rv) ? APR_SUCCESS : rv;
}

acme_tokens_t *acme_tokens_socache(acme_runtime_t *rt, apr_pool_t *p)
{
    acme_tokens_t *t = apr_pcalloc(p, sizeof(*t));

    t->put = tokens_put;
    t->get = tokens_get;
    t->remove = tokens_remove;
    t->put_cert = tokens_put_cert;
    t->get_cert = tokens_get_cert;
    t->remove_cert = tokens_remove_cert;
    t->baton = rt;
    return t;
}

static int is_domain_name(const acme_domain_t *d, const char *host)
{
    int i;

    for (i = 0; host && i < d->names->nelts; i++) {
        if (strcasecmp(APR_ARRAY_IDX(d->names, i, const char *), host) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Publishes one answer of a job file; NULL, or why it is not published. */
static const char *publish_saved(acme_tokens_t *t, const acme_domain_t *d,
                                 const acme_job_chal_t *ch, apr_time_t now, apr_pool_t *p)
{
    apr_time_t expires = ch->expires;
    acme_ident_t id;
    const char *sni, *pem;
    apr_status_t rv;

    if (expires <= now) {
        return ""; /* expired: nothing to say */
    }
    if (strcmp(ch->type, "http-01") != 0 && strcmp(ch->type, "tls-alpn-01") != 0) {
        return ""; /* dns-01: the records are in the DNS, not here */
    }
    if (!is_domain_name(d, ch->host)) {
        return "it is not for a name of this ACMEDomain";
    }
    if (expires > now + SAVED_ANSWER_MAX) {
        expires = now + SAVED_ANSWER_MAX;
    }
    if (strcmp(ch->type, "http-01") == 0) {
        rv = t->put(t, ch->token, ch->host, ch->keyauth, expires);
        return rv == APR_SUCCESS ? NULL : acme_strerror(rv, p);
    }
    /* tls-alpn-01. Root makes the certificate from what it checked; nothing of it is read from the
     * file. */
    if (!acme_keyauth_ok(ch->keyauth, ch->token)) {
        return "its key authorization is not of the form token.thumbprint";
    }
    id.type = acme_name_is_ip(ch->host) ? "ip" : "dns";
    id.value = ch->host;
    sni = acme_tlsalpn_sni(&id, p);
    if (!sni) {
        return "it is not for a DNS name or an IP address";
    }
    rv = acme_tlsalpn_answer(&pem, &id, ch->keyauth, now, p);
    if (rv == APR_SUCCESS) {
        rv = t->put_cert(t, sni, pem, expires);
    }
    return rv == APR_SUCCESS ? NULL : acme_strerror(rv, p);
}

int acme_tokens_publish_job(acme_runtime_t *rt, acme_tokens_t *t, const acme_domain_t *d,
                            const acme_job_t *job, apr_time_t now, apr_pool_t *p)
{
    int j, n = 0;

    /* One pending answer per name at most: more is not ours, and no more certificates are
     * made than the names need. */
    for (j = 0; j < job->challenges->nelts && n < d->names->nelts; j++) {
        const acme_job_chal_t *ch = &APR_ARRAY_IDX(job->challenges, j, acme_job_chal_t);
        const char *why = publish_saved(t, d, ch, now, p);
        if (!why) {
            n++;
        } else if (*why) {
            acme_log_error(APLOG_MARK, APLOG_WARNING, 0, rt->s,
                           "ACME02612: %s: the %s answer for %.253s kept in jobs/%s.json is not "
                           "published again: %s; it is ignored, and the order is resumed or "
                           "made anew",
                           d->name, ch->type, ch->host, d->set_name, why);
        }
    }
    return n;
}

void acme_parent_tokens_republish(acme_runtime_t *rt, apr_pool_t *ptemp)
{
    acme_tokens_t *t = acme_tokens_socache(rt, ptemp);
    apr_time_t now = apr_time_now();
    int i, n = 0;

    for (i = 0; i < rt->conf->domains->nelts; i++) {
        const acme_domain_t *d = APR_ARRAY_IDX(rt->conf->domains, i, acme_domain_t *);
        acme_job_t *job;
        if (acme_job_load(&job, rt->store, d->set_name, ptemp) != APR_SUCCESS) {
            continue; /* the driver reports a bad job file when it reads it */
        }
        n += acme_tokens_publish_job(rt, t, d, job, now, ptemp);
    }
    if (n) {
        acme_log_error(APLOG_MARK, APLOG_INFO, 0, rt->s,
                       "ACME01043: %d pending challenge answer(s) published again after the "
                       "restart",
                       n);
    }
}

/* GET /.well-known/acme-challenge/<token>: answered from the table for the names being
 * validated, 404 for unknown tokens on our names, and left to others everywhere else. */
int acme_challenge_quick(request_rec *r, int lookup_only)
{
    acme_runtime_t *rt;
    char buf[TOKEN_VALUE_MAX];
    const char *token, *host, *keyauth;
    apr_size_t tlen, klen;

    if (lookup_only || strncmp(r->uri, ACME_CHALLENGE_PREFIX, PREFIX_LEN) != 0) {
        return DECLINED; /* every other request leaves here */
    }
    rt = acme_runtime();
    if (!rt) {
        return DECLINED;
    }
    if (r->method_number != M_GET || !r->hostname) {
        return DECLINED;
    }
    if (!acme_domain_for_host(rt->conf, r->hostname)) {
        return DECLINED; /* not our name: another ACME client on this server may answer */
    }
    token = r->uri + PREFIX_LEN;
    tlen = strlen(token);
    if (!acme_token_ok(token, tlen) ||
        lookup(rt, token, tlen, buf, sizeof(buf), &host, &keyauth, r->pool) != APR_SUCCESS ||
        strcasecmp(host, r->hostname) != 0) {
        acme_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                        "ACME01044: %s: no challenge answer for %.64s", r->hostname, r->uri);
        return HTTP_NOT_FOUND;
    }
    klen = strlen(keyauth);
    ap_set_content_type(r, "text/plain");
    ap_set_content_length(r, (apr_off_t)klen);
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (!r->header_only) {
        ap_rwrite(keyauth, (int)klen, r);
    }
    acme_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "ACME01045: %s: answered challenge %.16s...",
                    r->hostname, token);
    return OK;
}

void acme_challenge_register_hooks(void)
{
    /* The quick handler is the redirect's too: one hook for every request
     * (acme_redirect_register_hooks). */
}
