/* acme_import.h - reading what other ACME clients left on disk, for `acmectl import`: a source
 * folder read without ever leaving it, and the parsers of certbot's files (renewal/<name>.conf,
 * the account's private_key.json JWK and regr.json) and of mod_md's (md.json, md_store.json,
 * accounts/<id>/account.json, keys encrypted with the store's pass phrase).
 *
 * The folder is the operator's (/etc/letsencrypt, mod_md's store), but the tool runs as root and
 * what lies there is not trusted: every file is bounded, opened without following the last link,
 * and a symbolic link on the way is followed only when it leads to a place inside the folder
 * (certbot's live/<name>/ files are links into archive/). No function here logs or returns key
 * material. Any thread may call these; a source is used by one thread at a time.
 */
#ifndef ACME_IMPORT_H
#define ACME_IMPORT_H

#include "acme_key.h"

/* Bounds for the files of a source. */
#define ACME_IMPORT_TEXT_MAX  (64 * 1024) /* renewal conf, JSON files, keys */
#define ACME_IMPORT_LINKS_MAX 16          /* symbolic links followed for one path */
#define ACME_IMPORT_NAMES_MAX 100         /* names of one certificate */
#define ACME_IMPORT_LIST_MAX  10000       /* entries of one listed folder */

typedef struct acme_import_src_t acme_import_src_t;

/* Opens the folder dir (followed as the operator gave it) as a source. */
apr_status_t acme_import_src_open(acme_import_src_t **psrc, const char *dir, apr_pool_t *p);

/* The folder's path as given. */
const char *acme_import_src_dir(const acme_import_src_t *src);

/* Reads relpath below the source, at most max bytes, NUL-terminated. Symbolic links on the way
 * (the last one included) are followed only within the folder: relative ones that do not climb
 * above it, absolute ones that name a place inside it; at most ACME_IMPORT_LINKS_MAX of them.
 * The file must be a plain file with one name. APR_ENOENT when missing; ACME_EBADSTORE and
 * *pwhy (e.g. "live/a.test/privkey.pem is a link to /etc/shadow, which leads out of /etc/le")
 * for a link out, a loop, a hard link, anything but a file; ACME_ETOOLARGE over max. */
apr_status_t acme_import_read(char **pdata, apr_size_t *plen, acme_import_src_t *src,
                              const char *relpath, apr_size_t max, const char **pwhy,
                              apr_pool_t *p);

/* The names in the folder reldir of the source ("" for the top), reached the same way, sorted,
 * without "." and ".."; at most ACME_IMPORT_LIST_MAX. APR_ENOENT when missing. */
apr_status_t acme_import_list(apr_array_header_t **pnames, acme_import_src_t *src,
                              const char *reldir, const char **pwhy, apr_pool_t *p);

/* --- certbot --- */

/* What acmectl takes from certbot's renewal/<name>.conf (its [renewalparams]). */
typedef struct acme_certbot_conf_t {
    const char *server;        /* the CA's directory URL (https) */
    const char *account;       /* the account's folder name below accounts/<server>/ */
    const char *key_type;      /* "ecdsa", "rsa" or NULL */
    const char *authenticator; /* "standalone", "webroot", "apache", ... or NULL */
} acme_certbot_conf_t;

/* Parses a renewal configuration (INI-like "key = value" lines, '#' comments, [sections]).
 * ACME_EBADSTORE and *pwhy when it is no such file, lacks server or account, or they do not
 * have the form above (an account name outside [A-Za-z0-9_-]). */
apr_status_t acme_certbot_conf_parse(acme_certbot_conf_t **pconf, const char *text, apr_size_t len,
                                     const char **pwhy, apr_pool_t *p);

/* certbot's folder of the accounts at a CA, relative to its configuration folder:
 * "accounts/" + host[:port] + path of the directory URL ("accounts/127.0.0.1:14000/dir").
 * NULL for a URL that is not https or has an empty, "." or ".." component. */
const char *acme_certbot_account_dir(const char *server, apr_pool_t *p);

/* A private key as a JWK (RFC 7517/7518: kty RSA with n, e, d, p, q, dp, dq, qi; kty EC with
 * crv P-256 or P-384, x, y, d), as certbot keeps account keys. The key is checked (its public
 * and private halves belong together). ACME_EBADSTORE and *pwhy for anything else,
 * APR_ENOTIMPL for a key type or size the core does not use. */
apr_status_t acme_import_jwk_key(acme_key_t **pkey, const char *json, apr_size_t len,
                                 const char **pwhy, apr_pool_t *p);

/* The account URL ("uri", https) of certbot's regr.json. */
apr_status_t acme_certbot_regr_url(const char **purl, const char *json, apr_size_t len,
                                   const char **pwhy, apr_pool_t *p);

/* --- mod_md --- */

/* What acmectl takes from mod_md's domains/<name>/md.json. */
typedef struct acme_md_t {
    const char *name;              /* the MDomain's name */
    apr_array_header_t *domains;   /* const char *, its names, first = name usually */
    apr_array_header_t *contacts;  /* const char *, "mailto:..." */
    const char *ca_url;            /* the first CA directory URL (https), or NULL */
    const char *account;           /* the account's folder name below accounts/, or NULL */
    apr_array_header_t *key_types; /* acme_key_type_e in MDPrivateKeys order; [rsa2048] when
                                    * md.json names none (mod_md's default) */
    int key_types_unknown;         /* key specs that the core has no type for */
} acme_md_t;

apr_status_t acme_md_parse(acme_md_t **pmd, const char *json, apr_size_t len, const char **pwhy,
                           apr_pool_t *p);

/* The pass phrase of a mod_md store: the base64url "key" of md_store.json, decoded. mod_md
 * writes the private keys of its accounts (not of its domains) encrypted with it. */
apr_status_t acme_md_store_pass(const unsigned char **ppass, apr_size_t *plen, const char *json,
                                apr_size_t len, const char **pwhy, apr_pool_t *p);

/* mod_md's accounts/<id>/account.json. */
typedef struct acme_md_account_t {
    const char *url;              /* the account URL (https) */
    const char *ca_url;           /* the CA directory URL, or NULL */
    const char *status;           /* "valid", "deactivated", "revoked", ... or NULL */
    apr_array_header_t *contacts; /* const char * */
} acme_md_account_t;

apr_status_t acme_md_account_parse(acme_md_account_t **pacct, const char *json, apr_size_t len,
                                   const char **pwhy, apr_pool_t *p);

/* A PEM private key, encrypted with pass (PKCS#8, as mod_md writes its account keys) or not
 * (pass NULL: an encrypted key is refused). ACME_EBADSTORE and *pwhy when the text is no key
 * or the pass phrase does not open it, APR_ENOTIMPL for a type or size the core does not use. */
apr_status_t acme_import_pem_key(acme_key_t **pkey, const char *pem, apr_size_t len,
                                 const unsigned char *pass, apr_size_t pass_len, const char **pwhy,
                                 apr_pool_t *p);

#endif /* ACME_IMPORT_H */
