/* acme_selfsigned.h - self-signed certificates: the fallback a vhost serves until its first
 * real certificate exists (mod_ssl answers 503 with it), and the tls-alpn-01 answers
 * (acme_tlsalpn.h). Any thread may call this.
 */
#ifndef ACME_SELFSIGNED_H
#define ACME_SELFSIGNED_H

#include "acme_key.h"

#define ACME_SHA256_LEN 32

/* PEM of a certificate for names (subjectAltName; CN = first name when it fits), signed by key,
 * valid from not_before to not_after. */
apr_status_t acme_selfsigned_create(const char **ppem, apr_size_t *plen, const acme_key_t *key,
                                    const apr_array_header_t *names, apr_time_t not_before,
                                    apr_time_t not_after, apr_pool_t *p);

/* PEM of the tls-alpn-01 answer (RFC 8737 section 3): name (a DNS name or an IP address) as the
 * only subjectAltName, an empty subject, and the critical id-pe-acmeIdentifier extension
 * (1.3.6.1.5.5.7.1.31) whose value is the DER OCTET STRING of digest (ACME_SHA256_LEN bytes, the
 * SHA-256 of the key authorization). APR_EINVAL for a name that is neither. */
apr_status_t acme_selfsigned_acme_id(const char **ppem, apr_size_t *plen, const acme_key_t *key,
                                     const char *name, const unsigned char *digest,
                                     apr_time_t not_before, apr_time_t not_after, apr_pool_t *p);

#endif /* ACME_SELFSIGNED_H */
