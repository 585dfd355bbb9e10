/* acme_core.h - what every unit of the mod_acme core shares: status codes, the log and clock
 * seams, and small JSON/pool helpers.
 *
 * The core (mod_acme/acme_*.c) never includes httpd headers: it builds without the httpd
 * include path. Apache glue reaches it through the seams declared here and in acme_http.h.
 * Any thread may call these functions; none keeps global state.
 */
#ifndef ACME_CORE_H
#define ACME_CORE_H

#include <stdarg.h>

#include <apr_errno.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <jansson.h>

/* Status codes of our own, above APR's user range. Problem documents from the CA map onto
 * these in one table (acme_problem.c). */
#define ACME_ERR_BASE      (APR_OS_START_USERERR + 8500)
#define ACME_EPROTO        (ACME_ERR_BASE + 1)  /* CA answer unusable (bad JSON, missing field) */
#define ACME_ETOOLARGE     (ACME_ERR_BASE + 2)  /* outside input over its bound */
#define ACME_ETRANSPORT    (ACME_ERR_BASE + 3)  /* could not reach the CA */
#define ACME_ETIMEOUT      (ACME_ERR_BASE + 4)  /* polling gave up after its bound */
#define ACME_EBADNONCE     (ACME_ERR_BASE + 5)  /* badNonce */
#define ACME_ERATELIMITED  (ACME_ERR_BASE + 6)  /* rateLimited: see retry_after */
#define ACME_EUNAUTHORIZED (ACME_ERR_BASE + 7)  /* unauthorized */
#define ACME_EMALFORMED    (ACME_ERR_BASE + 8)  /* malformed */
#define ACME_EBADCSR       (ACME_ERR_BASE + 9)  /* badCSR */
#define ACME_EREJECTED     (ACME_ERR_BASE + 10) /* rejected/unsupportedIdentifier */
#define ACME_ENOTREADY     (ACME_ERR_BASE + 11) /* orderNotReady */
#define ACME_ENOACCOUNT    (ACME_ERR_BASE + 12) /* accountDoesNotExist */
#define ACME_EEAB          (ACME_ERR_BASE + 13) /* externalAccountRequired */
#define ACME_EUSERACTION   (ACME_ERR_BASE + 14) /* userActionRequired (new terms) */
#define ACME_ESERVER       (ACME_ERR_BASE + 15) /* serverInternal, 5xx */
#define ACME_EVALIDATION   (ACME_ERR_BASE + 16) /* challenge failed: dns, connection, tls, ... */
#define ACME_EINVALID      (ACME_ERR_BASE + 17) /* order or authorization became invalid */
#define ACME_EBADKEY       (ACME_ERR_BASE + 18) /* badPublicKey, badSignatureAlgorithm */
#define ACME_ECONFIG       (ACME_ERR_BASE + 19) /* caller asked for something impossible */
#define ACME_ECRYPTO       (ACME_ERR_BASE + 20) /* OpenSSL failed */
#define ACME_EBADSTORE     (ACME_ERR_BASE + 21) /* a store file fails validation */
#define ACME_ECANCELLED    (ACME_ERR_BASE + 22) /* the caller asked to stop (server stopping) */
#define ACME_EDNS          (ACME_ERR_BASE + 23) /* a dns-01 record not set, removed or seen */
#define ACME_ERR_END       (ACME_ERR_BASE + 24)

/* Text for our codes and APR's; never NULL. */
const char *acme_strerror(apr_status_t rv, apr_pool_t *p);

typedef enum {
    ACME_LOG_ERR = 0,
    ACME_LOG_WARN,
    ACME_LOG_NOTICE,
    ACME_LOG_INFO,
    ACME_LOG_DEBUG,
    ACME_LOG_TRACE,
} acme_log_level_e;

/* Log seam: Apache routes this to ap_log_error, tests to a buffer, tools to stderr. */
typedef void acme_log_fn(void *baton, acme_log_level_e level, apr_status_t rv, const char *msg);

typedef struct acme_log_t {
    acme_log_fn *fn;
    void *baton;
    acme_log_level_e max_level; /* messages above it are not formatted at all */
} acme_log_t;

int acme_log_is_on(const acme_log_t *log, acme_log_level_e level);
/* Formats the message and passes it to the seam as it is. Everything the core logs can carry
 * text from the CA, a client or a file the User wrote, so each seam escapes what it writes:
 * httpd's error log escapes every message itself (ap_escape_errorlog_item: bytes outside
 * printable ASCII, backslash and quote), a seam that writes elsewhere uses acme_log_escape. */
void acme_log(const acme_log_t *log, acme_log_level_e level, apr_status_t rv, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Outside text made fit for a log line where httpd's own escaping does not apply (tools and
 * tests writing to a terminal or file): control characters (C0, DEL, C1 as UTF-8) and backslash
 * become \xNN escapes, so a CA, a client or a planted file cannot forge log lines or send
 * terminal escapes. Writes at most outlen bytes including the NUL; cuts at a whole escape.
 * Returns out. */
char *acme_log_escape(char *out, apr_size_t outlen, const char *in);
/* The same into a pool copy of at most max input bytes (0: no limit). */
const char *acme_log_safe(const char *in, apr_size_t max, apr_pool_t *p);

/* Clock seam: renewal timing and polling go through it, so tests control time. */
typedef struct acme_clock_t {
    apr_time_t (*now)(void *baton);
    void (*sleep)(void *baton, apr_interval_time_t t);
    void *baton;
} acme_clock_t;

/* The real clock: apr_time_now() and apr_sleep(). */
const acme_clock_t *acme_clock_system(void);

/* Registers json_decref of j as a cleanup of p and returns j, so JSON values follow pool
 * lifetimes like everything else in the core. NULL is passed through. */
json_t *acme_json_pool(apr_pool_t *p, json_t *j);

/* Getters that check types; NULL / -1 when absent or of another type. */
const char *acme_json_str(const json_t *obj, const char *key);

/* base64url without padding (RFC 7515 section 2). */
const char *acme_b64u_encode(apr_pool_t *p, const void *data, apr_size_t len);
/* Decodes strict base64url; APR_EINVAL on characters outside the alphabet or padding. */
apr_status_t acme_b64u_decode(const unsigned char **pout, apr_size_t *plen, const char *s,
                              apr_size_t slen, apr_pool_t *p);

#endif /* ACME_CORE_H */
