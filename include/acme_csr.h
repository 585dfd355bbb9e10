/* acme_csr.h - certificate signing requests for finalize (RFC 8555 section 7.4).
 *
 * The CSR carries the identifiers as subjectAltName entries, exactly and in order: dNSName for
 * names, iPAddress for IPv4/IPv6 literals (RFC 8738). The subject CN is the first name when it is
 * a DNS name of at most 64 characters, else the subject is empty. Any thread may call this.
 */
#ifndef ACME_CSR_H
#define ACME_CSR_H

#include <openssl/x509.h>

#include "acme_key.h"

/* names: array of const char *, at least one, no duplicates (case-insensitive).
 * APR_EINVAL for an empty list, a duplicate or a name that is neither a DNS name nor an IP. */
apr_status_t acme_csr_create(const unsigned char **pder, apr_size_t *plen, const acme_key_t *key,
                             const apr_array_header_t *names, apr_pool_t *p);

/* subjectAltName extension for names (checked as for acme_csr_create), owned by p. */
apr_status_t acme_san_extension(X509_EXTENSION **pext, const apr_array_header_t *names,
                                int critical, apr_pool_t *p);

/* 1 when s is an IPv4 or IPv6 literal (identifier type "ip"), else 0. */
int acme_name_is_ip(const char *s);

/* 1 when s is a DNS name we may request: LDH labels of 1..63 characters, at most 253 in all,
 * at least two labels, an optional leading "*." wildcard label; else 0. */
int acme_name_is_dns(const char *s);

#endif /* ACME_CSR_H */
