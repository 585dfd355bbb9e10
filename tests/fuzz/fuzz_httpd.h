/* fuzz_httpd.h - what the fuzz targets of the Apache glue (fuzz_config, fuzz_challenge) need in
 * place of a running httpd: the few httpd functions the glue files call (httpd_stubs.c: they are
 * defined by the httpd binary, not by a library), a server record, an in-memory socache provider
 * standing in for shmcb, and access to what a handler wrote.
 *
 * The glue files themselves (mod_acme_config.c, mod_acme_challenge.c) are compiled unchanged.
 */
#ifndef ACME_FUZZ_HTTPD_H
#define ACME_FUZZ_HTTPD_H

#include "mod_acme.h"

/* The socache provider ap_lookup_provider returns for "shmcb": a table in the instance's pool;
 * retrieve refuses (APR_ENOSPC) a value larger than the caller's buffer, as shmcb does. */
extern const ap_socache_provider_t fuzz_socache_provider;

/* A server record with its own acme configuration (acme_conf_create) and every log level on,
 * so that log arguments are formatted. */
server_rec *fuzz_httpd_server(const char *hostname, apr_pool_t *p);

/* What acme_runtime() returns. */
void fuzz_httpd_set_runtime(acme_runtime_t *rt);

/* The handler acme_challenge_register_hooks gave ap_hook_quick_handler, or NULL. */
typedef int fuzz_quick_handler_fn(request_rec *r, int lookup_only);
fuzz_quick_handler_fn *fuzz_httpd_quick_handler(void);

/* What ap_walk_config calls for each directive of a section's body (parms->directive is it). */
typedef const char *fuzz_walk_fn(ap_directive_t *dir, cmd_parms *parms);
void fuzz_httpd_set_walker(fuzz_walk_fn *fn);

/* The body written by ap_rwrite since the last reset, and the content type and length set. */
void fuzz_httpd_reset_output(void);
const char *fuzz_httpd_body(apr_size_t *plen);
const char *fuzz_httpd_content_type(void);
apr_off_t fuzz_httpd_content_length(void);

#endif /* ACME_FUZZ_HTTPD_H */
