/* acme_jws.h - JSON Web Signatures (RFC 7515) as ACME uses them (RFC 8555 section 6.2):
 * flattened JSON serialization, ES256/ES384 with raw r||s signatures, RS256, and HS256 for
 * external account binding (RFC 8555 section 7.3.4).
 *
 * Any thread may call these.
 */
#ifndef ACME_JWS_H
#define ACME_JWS_H

#include "acme_key.h"

/* Signature over input with the key's algorithm (acme_key_jws_alg): for EC the fixed-size
 * r||s concatenation (64 bytes for P-256, 96 for P-384), for RSA PKCS#1 v1.5 with SHA-256. */
apr_status_t acme_jws_signature(const unsigned char **psig, apr_size_t *psiglen,
                                const acme_key_t *key, const void *input, apr_size_t inlen,
                                apr_pool_t *p);

/* Flattened JWS {"protected","payload","signature"} for an ACME request.
 * The protected header holds alg, nonce, url and either kid (when kid != NULL) or the key's
 * jwk. payload == NULL means POST-as-GET: the empty string, not "{}". */
apr_status_t acme_jws_sign(json_t **pjws, const acme_key_t *key, const char *kid, const char *nonce,
                           const char *url, const json_t *payload, apr_pool_t *p);

/* Flattened JWS with a protected header given as JSON and a payload given as bytes;
 * the general form behind acme_jws_sign. */
apr_status_t acme_jws_sign_raw(json_t **pjws, const acme_key_t *key, const json_t *protected_hdr,
                               const void *payload, apr_size_t plen, apr_pool_t *p);

/* HMAC-SHA256 over input (RFC 7515 appendix A.1 and EAB). */
apr_status_t acme_jws_hs256(const unsigned char **pmac, apr_size_t *pmaclen,
                            const unsigned char *hmac_key, apr_size_t keylen, const void *input,
                            apr_size_t inlen, apr_pool_t *p);

/* externalAccountBinding value (RFC 8555 section 7.3.4): flattened JWS with protected
 * {"alg":"HS256","kid":eab_kid,"url":new_account_url}, payload = the account key's public JWK,
 * MAC with the base64url-decoded hmac_b64u. APR_EINVAL when hmac_b64u is not base64url. */
apr_status_t acme_jws_eab(json_t **pjws, const acme_key_t *account_key, const char *eab_kid,
                          const char *hmac_b64u, const char *new_account_url, apr_pool_t *p);

/* The MAC key of an external account binding as CAs hand it out, made strict base64url for
 * acme_jws_eab: base64url, or base64 with '+', '/' and '=' padding; white space around it (a
 * final newline) is ignored. APR_EINVAL for anything else, or a key of no bytes. The key is a
 * credential: nothing here logs it, and the caller keeps *pb64u out of logs and files. */
apr_status_t acme_jws_eab_key(const char **pb64u, const char *text, apr_size_t len, apr_pool_t *p);

#endif /* ACME_JWS_H */
