/* acme_selfsigned.h - self-signed certificates: the fallback a vhost serves until its first
 * real certificate exists (mod_ssl answers 503 with it), and later tls-alpn-01 answers.
 * Any thread may call this.
 */
#ifndef ACME_SELFSIGNED_H
#define ACME_SELFSIGNED_H

#include "acme_key.h"

/* PEM of a certificate for names (subjectAltName; CN = first name when it fits), signed by key,
 * valid from not_before to not_after. */
apr_status_t acme_selfsigned_create(const char **ppem, apr_size_t *plen, const acme_key_t *key,
                                    const apr_array_header_t *names, apr_time_t not_before,
                                    apr_time_t not_after, apr_pool_t *p);

#endif /* ACME_SELFSIGNED_H */
