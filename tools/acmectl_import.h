/* acmectl_import.h - what the two halves of `acmectl import` share: the readers of certbot's
 * and mod_md's folders (acmectl_import_src.c) hand the command (acmectl_import.c) one
 * acmectl_imp_cert_t per certificate and key type, and the accounts those name. A candidate
 * that cannot be imported carries why; nothing in these records is ever printed but names,
 * paths, URLs and reasons (never key material).
 */
#ifndef ACMECTL_IMPORT_H
#define ACMECTL_IMPORT_H

#include "acme_cert.h"
#include "acme_import.h"
#include "acmectl.h"

/* An account of the other client. */
typedef struct acmectl_imp_acct_t {
    const char *source;           /* its folder, relative to the source folder */
    const char *ca_url;           /* the CA's directory URL */
    const char *url;              /* the account URL */
    acme_key_t *key;              /* NULL when why is set */
    apr_array_header_t *contacts; /* const char *, may be empty */
    const char *why;              /* why it cannot be taken over, or NULL */
} acmectl_imp_acct_t;

/* One certificate of the other client, for one key type. */
typedef struct acmectl_imp_cert_t {
    const char *source;        /* its folder, relative to the source folder: live/<name> */
    const char *first;         /* the ACMEDomain's first name */
    apr_array_header_t *names; /* const char *, first first: the ACMEDomain line to write */
    const char *set_name;      /* the set in mod_acme's store; NULL when it has none */
    const char *ca_url;        /* the CA's directory URL, or NULL when unknown */
    acme_key_t *key;
    const char *chain_pem;
    apr_size_t chain_len;
    apr_array_header_t *chain;   /* acme_cert_t *, leaf first */
    acmectl_imp_acct_t *account; /* the account it was obtained with, or NULL */
    const char *why;             /* why it cannot be imported, or NULL */
} acmectl_imp_cert_t;

/* The certificates (acmectl_imp_cert_t *) of certbot's configuration folder src: one per
 * renewal/<name>.conf, read from live/<name>/privkey.pem and fullchain.pem. APR_SUCCESS with
 * candidates that may each carry why; an error (*pwhy) only when the folder is no certbot
 * folder at all. */
apr_status_t acmectl_scan_certbot(apr_array_header_t **pcerts, acme_import_src_t *src,
                                  const char **pwhy, apr_pool_t *p);

/* The same for mod_md's store src: per domains/<name>/md.json, one candidate per key type
 * (MDPrivateKeys order: the first one gets the set <name>, the others <name>_<type> as
 * ACMEKeyType names them), from privkey[.<spec>].pem and pubcert[.<spec>].pem. */
apr_status_t acmectl_scan_md(apr_array_header_t **pcerts, acme_import_src_t *src, const char **pwhy,
                             apr_pool_t *p);

#endif /* ACMECTL_IMPORT_H */
