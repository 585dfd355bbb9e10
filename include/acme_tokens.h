/* acme_tokens.h - the token table seam: where http-01 and tls-alpn-01 answers are published for
 * the request path (http-01) and the TLS handshake (tls-alpn-01) to serve.
 *
 * In Apache it is backed by socache in shared memory (mod_acme/mod_acme_challenge.c); the hash
 * table here serves tests and tools. Implementations must be safe for concurrent use.
 */
#ifndef ACME_TOKENS_H
#define ACME_TOKENS_H

#include "acme_core.h"

#define ACME_TOKEN_MIN 16  /* RFC 8555 section 8.1: 128 bits of entropy, base64url */
#define ACME_TOKEN_MAX 256 /* our bound on what we store and look up */

typedef struct acme_tokens_t acme_tokens_t;

struct acme_tokens_t {
    /* Publishes keyauth for token, valid for requests naming host, until expires. */
    apr_status_t (*put)(acme_tokens_t *t, const char *token, const char *host, const char *keyauth,
                        apr_time_t expires);
    /* APR_NOTFOUND when absent or expired; *phost and *pkeyauth are copies in p. */
    apr_status_t (*get)(acme_tokens_t *t, const char *token, const char **phost,
                        const char **pkeyauth, apr_pool_t *p);
    apr_status_t (*remove)(acme_tokens_t *t, const char *token);
    /* tls-alpn-01 (RFC 8737): publishes pem (the acmeIdentifier certificate, then its key) for
     * TLS handshakes that name sni (the validator's server name, acme_tlsalpn_sni) and offer
     * acme-tls/1, until expires. Kept apart from the tokens: no name is a token, nor the
     * reverse. NULL in a table that holds no certificates. */
    apr_status_t (*put_cert)(acme_tokens_t *t, const char *sni, const char *pem,
                             apr_time_t expires);
    /* APR_NOTFOUND when absent or expired; *ppem is a copy in p. */
    apr_status_t (*get_cert)(acme_tokens_t *t, const char *sni, const char **ppem, apr_pool_t *p);
    apr_status_t (*remove_cert)(acme_tokens_t *t, const char *sni);
    void *baton;
};

/* 1 when s[0..len) is a token we accept: base64url characters only, ACME_TOKEN_MIN..MAX long. */
int acme_token_ok(const char *s, apr_size_t len);

/* 1 when keyauth is token "." followed by the 43 base64url characters of a SHA-256 thumbprint
 * (RFC 8555 section 8.1), the only form we publish: checked where a key authorization is read
 * back from a file. */
int acme_keyauth_ok(const char *keyauth, const char *token);

/* An in-process table (mutex-protected hash), living in p. */
apr_status_t acme_tokens_hash_create(acme_tokens_t **ptokens, apr_pool_t *p);

#endif /* ACME_TOKENS_H */
