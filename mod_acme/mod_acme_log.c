/* mod_acme_log.c - the glue's log lines (mod_acme.h, acme_log_error and acme_log_rerror). Any
 * process and thread may call these. Its own file so that the fuzz targets of the glue's checks
 * link it without the module record.
 *
 * Most lines carry outside text (the CA's words, a client's request, a file the User wrote).
 * httpd's error log escapes every message before it writes it (ap_escape_errorlog_item: each
 * byte outside printable ASCII, backslash and quote), so a newline or a terminal escape from
 * outside cannot forge a line; escaping here as well would double every backslash. What these
 * add is our status codes: APR cannot name them, the message already does.
 */
#include <apr_strings.h>

#include "mod_acme.h"

static apr_status_t apr_status_only(apr_status_t status)
{
    return status > ACME_ERR_BASE && status < ACME_ERR_END ? APR_SUCCESS : status;
}

void acme_log_error_(const char *file, int line, int mi, int level, apr_status_t status,
                     const server_rec *s, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;

    va_start(ap, fmt);
    apr_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    ap_log_error_(file, line, mi, level, apr_status_only(status), s, "%s", buf);
}

void acme_log_rerror_(const char *file, int line, int mi, int level, apr_status_t status,
                      const request_rec *r, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;

    va_start(ap, fmt);
    apr_vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    ap_log_rerror_(file, line, mi, level, apr_status_only(status), r, "%s", buf);
}
