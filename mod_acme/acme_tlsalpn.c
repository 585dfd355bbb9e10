/* acme_tlsalpn.c - tls-alpn-01 answers: server names, certificates, the responder. */
#include <arpa/inet.h>
#include <string.h>

#include <apr_lib.h>
#include <apr_strings.h>
#include <openssl/evp.h>

#include "acme_csr.h"
#include "acme_selfsigned.h"
#include "acme_tlsalpn.h"

#define ANSWER_BEFORE apr_time_from_sec(86400)     /* validity starts a day early: skewed clocks */
#define ANSWER_AFTER  apr_time_from_sec(7 * 86400) /* and lasts longer than any validation */

static int is_ip(const acme_ident_t *id)
{
    return id->type ? strcmp(id->type, "ip") == 0 : acme_name_is_ip(id->value);
}

const char *acme_tlsalpn_sni(const acme_ident_t *id, apr_pool_t *p)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char addr[16];
    char *out, *c;
    int i;

    if (!id || !id->value) {
        return NULL;
    }
    if (is_ip(id)) {
        if (inet_pton(AF_INET, id->value, addr) == 1) {
            return apr_psprintf(p, "%u.%u.%u.%u.in-addr.arpa", (unsigned)addr[3], (unsigned)addr[2],
                                (unsigned)addr[1], (unsigned)addr[0]);
        }
        if (inet_pton(AF_INET6, id->value, addr) != 1) {
            return NULL;
        }
        /* Lowest nibble first, one label each (RFC 3596 section 2.5). */
        out = c = apr_palloc(p, 16 * 4 + sizeof("ip6.arpa"));
        for (i = 15; i >= 0; i--) {
            *c++ = hex[addr[i] & 0x0f];
            *c++ = '.';
            *c++ = hex[addr[i] >> 4];
            *c++ = '.';
        }
        memcpy(c, "ip6.arpa", sizeof("ip6.arpa"));
        return out;
    }
    if (!acme_name_is_dns(id->value) || id->value[0] == '*') {
        return NULL;
    }
    out = apr_pstrdup(p, id->value);
    for (c = out; *c; c++) {
        *c = (char)apr_tolower(*c);
    }
    return out;
}

apr_status_t acme_tlsalpn_answer(const char **ppem, const acme_ident_t *id, const char *keyauth,
                                 apr_time_t now, apr_pool_t *p)
{
    unsigned char digest[ACME_SHA256_LEN];
    unsigned int dlen = 0;
    apr_pool_t *ptmp = NULL;
    acme_key_t *key;
    const char *cert, *kpem;
    apr_size_t clen, klen;
    apr_status_t rv;

    if (!id || !id->value || !keyauth || !acme_tlsalpn_sni(id, p)) {
        return APR_EINVAL;
    }
    if (!EVP_Digest(keyauth, strlen(keyauth), digest, &dlen, EVP_sha256(), NULL) ||
        dlen != sizeof(digest)) {
        return ACME_ECRYPTO;
    }
    /* The key and the certificate live only until they are PEM text in p. */
    rv = apr_pool_create(&ptmp, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_key_generate(&key, ACME_KEY_EC256, ptmp);
    if (rv == APR_SUCCESS) {
        rv = acme_selfsigned_acme_id(&cert, &clen, key, id->value, digest, now - ANSWER_BEFORE,
                                     now + ANSWER_AFTER, ptmp);
    }
    if (rv == APR_SUCCESS) {
        rv = acme_key_to_pem(&kpem, &klen, key, ptmp);
    }
    if (rv != APR_SUCCESS) {
        goto out;
    }
    if (clen + klen >= ACME_TLSALPN_PEM_MAX) {
        rv = ACME_ETOOLARGE;
        goto out;
    }
    *ppem = apr_pstrcat(p, cert, kpem, NULL);
out:
    if (ptmp) {
        apr_pool_destroy(ptmp);
    }
    return rv;
}

/* --- the responder over a token table --- */

static int tlsalpn_can_answer(acme_responder_t *r, const acme_ident_t *id, int wildcard)
{
    (void)r;
    if (wildcard || !id || !id->value) {
        return 0;
    }
    return is_ip(id) ? acme_name_is_ip(id->value)
                     : acme_name_is_dns(id->value) && id->value[0] != '*';
}

static apr_status_t tlsalpn_setup(acme_responder_t *r, const acme_ident_t *id, int wildcard,
                                  const char *token, const char *keyauth, apr_time_t expires,
                                  acme_problem_t **pprob, apr_pool_t *p)
{
    acme_tokens_t *t = r->baton;
    const char *sni = acme_tlsalpn_sni(id, p), *pem;
    apr_status_t rv;

    (void)token;
    (void)pprob;
    if (wildcard || !sni) {
        return APR_EINVAL;
    }
    if (!t || !t->put_cert) {
        return APR_ENOTIMPL;
    }
    rv = acme_tlsalpn_answer(&pem, id, keyauth, apr_time_now(), p);
    if (rv == APR_SUCCESS) {
        rv = t->put_cert(t, sni, pem, expires);
    }
    return rv;
}

static void tlsalpn_teardown(acme_responder_t *r, const acme_ident_t *id, int wildcard,
                             const char *token, const char *keyauth, apr_pool_t *p)
{
    acme_tokens_t *t = r->baton;
    const char *sni = acme_tlsalpn_sni(id, p);

    (void)wildcard;
    (void)token;
    (void)keyauth;
    if (t && t->remove_cert && sni) {
        t->remove_cert(t, sni);
    }
}

void acme_responder_tlsalpn01(acme_responder_t *r, acme_tokens_t *tokens)
{
    memset(r, 0, sizeof(*r));
    r->type = "tls-alpn-01";
    r->can_answer = tlsalpn_can_answer;
    r->setup = tlsalpn_setup;
    r->teardown = tlsalpn_teardown;
    r->baton = tokens;
}
