/* acme_tlsalpn.h - the tls-alpn-01 challenge (RFC 8737; RFC 8738 section 6 for IP addresses):
 * the server name a validator sends, the answer certificate, and the responder that publishes it
 * in a token table (acme_tokens.h put_cert), where the TLS server finds it during the handshake.
 *
 * Any thread may call these; nothing is kept between calls.
 */
#ifndef ACME_TLSALPN_H
#define ACME_TLSALPN_H

#include "acme_issue.h"

#define ACME_TLSALPN_PROTOCOL "acme-tls/1" /* the ALPN protocol id, RFC 8737 section 6.2 */
#define ACME_TLSALPN_PEM_MAX  4096         /* one answer: certificate and key, as PEM */

/* The server name (SNI) a validator sends for identifier id: a DNS name in lowercase, or for an
 * IP address its reverse name (RFC 8738 section 6: "1.2.0.192.in-addr.arpa", or 32 nibbles
 * under "ip6.arpa"), without a trailing dot. NULL for a wildcard or anything else. */
const char *acme_tlsalpn_sni(const acme_ident_t *id, apr_pool_t *p);

/* The answer to a tls-alpn-01 challenge for id with keyauth: a fresh EC P-256 key and a
 * self-signed certificate for id alone with the critical acmeIdentifier extension holding
 * SHA-256(keyauth) (acme_selfsigned_acme_id), valid from a day before now to a week after, as one
 * PEM text, certificate first, then the key (PKCS#8), at most ACME_TLSALPN_PEM_MAX bytes. */
apr_status_t acme_tlsalpn_answer(const char **ppem, const acme_ident_t *id, const char *keyauth,
                                 apr_time_t now, apr_pool_t *p);

/* The tls-alpn-01 responder over a token table: setup publishes the answer with put_cert under
 * the identifier's server name, teardown removes it. Answers for every DNS name and IP address,
 * never for a wildcard (a validator has no name to connect to). */
void acme_responder_tlsalpn01(acme_responder_t *r, acme_tokens_t *tokens);

#endif /* ACME_TLSALPN_H */
