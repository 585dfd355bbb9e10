/* acme_cert.h - the certificates we get from the CA: PEM chains, names, validity, key match
 * and issuer linkage. Used to check a chain before it is stored and before it is promoted.
 *
 * A certificate lives in the pool it was parsed in (X509 freed by a pool cleanup).
 * Any thread may call these.
 */
#ifndef ACME_CERT_H
#define ACME_CERT_H

#include <openssl/x509.h>

#include "acme_key.h"

/* Clock skew tolerated when a new certificate is activated: a notBefore up to ACME_CERT_SKEW
 * ahead of our clock counts as reached (a CA that backdates little, a server clock a little
 * behind: clients whose clocks agree with the CA's see it valid already). Up to
 * ACME_CERT_EARLY_MAX ahead, the certificate waits until our clock reaches notBefore -
 * ACME_CERT_SKEW; further ahead it is refused: that clock needs fixing. */
#define ACME_CERT_SKEW      apr_time_from_sec(300)
#define ACME_CERT_EARLY_MAX apr_time_from_sec(86400)

/* At most this many certificates in one chain, and this many bytes of PEM. */
#define ACME_CERT_CHAIN_MAX 10
#define ACME_CERT_PEM_MAX   (256 * 1024)

typedef struct acme_cert_t acme_cert_t;

/* Parses a PEM chain (leaf first) into an array of acme_cert_t *. Only CERTIFICATE blocks and
 * whitespace are accepted; ACME_EBADSTORE (with nothing returned) for anything else, an empty
 * text, or a truncated block; ACME_ETOOLARGE beyond the bounds above. */
apr_status_t acme_cert_chain_parse(apr_array_header_t **pchain, const char *pem, apr_size_t len,
                                   apr_pool_t *p);

/* The PEM text of one certificate. */
apr_status_t acme_cert_to_pem(const char **ppem, const acme_cert_t *cert, apr_pool_t *p);

X509 *acme_cert_x509(const acme_cert_t *cert);

/* subjectAltName dNSName values (lowercased) and iPAddress values (as text), in order. */
apr_status_t acme_cert_names(apr_array_header_t **pnames, const acme_cert_t *cert, apr_pool_t *p);

apr_time_t acme_cert_not_before(const acme_cert_t *cert);
apr_time_t acme_cert_not_after(const acme_cert_t *cert);

/* Serial number as lowercase hex without leading zeros. */
const char *acme_cert_serial_hex(const acme_cert_t *cert, apr_pool_t *p);

/* 1 when the certificate's public key is the key's public half. */
int acme_cert_matches_key(const acme_cert_t *cert, const acme_key_t *key);

/* 1 when issuer's subject is cert's issuer name and issuer's key verifies cert's signature. */
int acme_cert_issued_by(const acme_cert_t *cert, const acme_cert_t *issuer);

/* 1 when a and b are the same certificate (the same DER). */
int acme_cert_same(const acme_cert_t *a, const acme_cert_t *b);

/* The common name (UTF-8) of the issuer of the chain's last certificate: the "topmost issuer",
 * the root a client reaches from this chain, as certbot's --preferred-chain and nginx's
 * preferred_chain use it. The first CN of the issuer name; NULL for an empty chain, an issuer
 * without a CN, or one that does not convert to UTF-8 text without NUL bytes. */
const char *acme_cert_chain_top_issuer(const apr_array_header_t *chain, apr_pool_t *p);

/* Index of the first chain of chains (each an array of acme_cert_t *, the CA's default first,
 * then its alternates in the order offered) whose topmost issuer is issuer_cn, compared byte by
 * byte (as certbot does: "ISRG Root X1" is not "isrg root x1", nor "ISRG Root"); -1 when none
 * is, or issuer_cn is NULL or empty. A NULL entry of chains (one that could not be used) is
 * skipped. */
int acme_cert_chain_pick(const apr_array_header_t *chains, const char *issuer_cn, apr_pool_t *p);

/* APR_SUCCESS when every name in names (const char *) is among the certificate's SANs
 * (case-insensitive; a wildcard SAN covers only the same wildcard name). Else ACME_EBADSTORE with
 * *pmissing set to the first name not covered. */
apr_status_t acme_cert_covers(const acme_cert_t *cert, const apr_array_header_t *names,
                              const char **pmissing);

/* Checks a chain as a whole: leaf matches key (when key != NULL), each certificate is issued by
 * the next, leaf covers names (when names != NULL; names beyond them do not matter), now lies in
 * the leaf's validity with ACME_CERT_SKEW allowed before notBefore (when now != 0; 0 skips the
 * time check).
 * On failure ACME_EBADSTORE and *pwhy says what is wrong in words an operator can act on. */
apr_status_t acme_cert_chain_check(const apr_array_header_t *chain, const acme_key_t *key,
                                   const apr_array_header_t *names, apr_time_t now,
                                   const char **pwhy, apr_pool_t *p);

/* Whether a new chain may be activated now: acme_cert_chain_check with key and names, then the
 * time. APR_SUCCESS; APR_EAGAIN when its notBefore is more than ACME_CERT_SKEW but at most
 * ACME_CERT_EARLY_MAX ahead of now (*pwhen: from when it may be; *pwhy says so); else
 * ACME_EBADSTORE with *pwhy in words an operator can act on. */
apr_status_t acme_cert_activation_check(const apr_array_header_t *chain, const acme_key_t *key,
                                        const apr_array_header_t *names, apr_time_t now,
                                        apr_time_t *pwhen, const char **pwhy, apr_pool_t *p);

#endif /* ACME_CERT_H */
