/* acmectl_common.c - small helpers every command of acmectl may use (acmectl.h), apart from
 * main() so that the unit tests link the commands without it. */
#include <stdarg.h>

#include <apr_file_info.h>
#include <apr_strings.h>

#include "config.h"

#include "acmectl.h"

#ifndef ACME_SERVER_ROOT
#define ACME_SERVER_ROOT "/etc/apache2"
#endif

const char *acmectl_default_store(apr_pool_t *p)
{
    const char *store = ACME_DEFAULT_STORE;
    char *path = NULL;

    if (store[0] == '/')
        return store;
    if (apr_filepath_merge(&path, ACME_SERVER_ROOT, store, APR_FILEPATH_NOTABOVEROOT, p) !=
        APR_SUCCESS)
        return apr_pstrcat(p, ACME_SERVER_ROOT, "/", store, NULL);
    return path;
}

void acmectl_err(const acmectl_t *ctx, const char *fmt, ...)
{
    va_list ap;

    fputs("acmectl: ", ctx->err);
    va_start(ap, fmt);
    vfprintf(ctx->err, fmt, ap);
    va_end(ap);
    fputc('\n', ctx->err);
}
