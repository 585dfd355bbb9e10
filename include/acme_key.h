/* acme_key.h - private keys for accounts and certificates, their public JWK (RFC 7517) and
 * RFC 7638 thumbprint.
 *
 * A key lives in the pool it was made in (the EVP_PKEY is freed by a pool cleanup).
 * Any thread may call these; a key is read-only after creation and can be shared.
 */
#ifndef ACME_KEY_H
#define ACME_KEY_H

#include <openssl/evp.h>

#include "acme_core.h"

typedef enum {
    ACME_KEY_EC256 = 0, /* default: P-256, ES256 */
    ACME_KEY_EC384,     /* P-384, ES384 */
    ACME_KEY_RSA2048,
    ACME_KEY_RSA3072,
    ACME_KEY_RSA4096,
} acme_key_type_e;

typedef struct acme_key_t acme_key_t;

/* "ec256", "ec384", "rsa2048", "rsa3072", "rsa4096" (case-insensitive) -> type.
 * APR_EINVAL for anything else. */
apr_status_t acme_key_type_parse(acme_key_type_e *ptype, const char *name);
const char *acme_key_type_name(acme_key_type_e type);

apr_status_t acme_key_generate(acme_key_t **pkey, acme_key_type_e type, apr_pool_t *p);

/* Takes ownership of evp in every case (freed with p, or at once when refused). Only EC P-256/P-384
 * and RSA 2048..4096 are accepted: APR_ENOTIMPL for other algorithms and sizes. */
apr_status_t acme_key_from_evp(acme_key_t **pkey, EVP_PKEY *evp, apr_pool_t *p);

/* PEM private key (PKCS#8 or traditional), unencrypted. ACME_EBADSTORE when the text is no
 * key, APR_ENOTIMPL for an algorithm or size we do not use. */
apr_status_t acme_key_from_pem(acme_key_t **pkey, const char *pem, apr_size_t len, apr_pool_t *p);

/* Unencrypted PKCS#8 PEM; the caller writes it readable by its owner only (acme_store). */
apr_status_t acme_key_to_pem(const char **ppem, apr_size_t *plen, const acme_key_t *key,
                             apr_pool_t *p);

/* The same key, living (also) in p: the EVP_PKEY is shared, freed when its last pool goes. */
acme_key_t *acme_key_ref(const acme_key_t *key, apr_pool_t *p);

acme_key_type_e acme_key_type(const acme_key_t *key);
EVP_PKEY *acme_key_evp(const acme_key_t *key);

/* JWS algorithm for the key: "ES256", "ES384" or "RS256". */
const char *acme_key_jws_alg(const acme_key_t *key);

/* Public JWK with exactly the RFC 7638 required members (EC: crv, kty, x, y with coordinates
 * padded to the field size; RSA: e, kty, n without leading zero bytes). Owned by p. */
apr_status_t acme_key_jwk(json_t **pjwk, const acme_key_t *key, apr_pool_t *p);

/* RFC 7638 SHA-256 thumbprint, base64url. */
apr_status_t acme_key_thumbprint(const char **pb64u, const acme_key_t *key, apr_pool_t *p);

/* RFC 8555 section 8.1: token "." thumbprint. APR_EINVAL if token is not base64url. */
apr_status_t acme_key_authorization(const char **pkeyauth, const acme_key_t *account_key,
                                    const char *token, apr_pool_t *p);

#endif /* ACME_KEY_H */
