/* mod_acme_log.c - the glue's log lines: formatted, then made safe by the core's
 * acme_log_escape before httpd writes them (mod_acme.h, acme_log_error and acme_log_rerror).
 * Any process and thread may call these. Its own file so that the fuzz targets of the glue's
 * checks link it without the module record.
 */
#include <apr_strings.h>

#include "mod_acme.h"

/* Formats, then escapes into safe: the one place the glue's lines pass before httpd sees them. */
static const char *format_safe(char *safe, apr_size_t len, const char *fmt, va_list ap)
{
    char buf[4096];

    apr_vsnprintf(buf, sizeof(buf), fmt, ap);
    return acme_log_escape(safe, len, buf);
}

void acme_log_error_(const char *file, int line, int mi, int level, apr_status_t status,
                     const server_rec *s, const char *fmt, ...)
{
    char safe[4096];
    va_list ap;

    /* Our own codes mean nothing to APR's strerror; the message names the cause already. */
    if (status > ACME_ERR_BASE && status < ACME_ERR_END) {
        status = APR_SUCCESS;
    }
    va_start(ap, fmt);
    ap_log_error_(file, line, mi, level, status, s, "%s", format_safe(safe, sizeof(safe), fmt, ap));
    va_end(ap);
}

void acme_log_rerror_(const char *file, int line, int mi, int level, apr_status_t status,
                      const request_rec *r, const char *fmt, ...)
{
    char safe[4096];
    va_list ap;

    if (status > ACME_ERR_BASE && status < ACME_ERR_END) {
        status = APR_SUCCESS;
    }
    va_start(ap, fmt);
    ap_log_rerror_(file, line, mi, level, status, r, "%s",
                   format_safe(safe, sizeof(safe), fmt, ap));
    va_end(ap);
}
