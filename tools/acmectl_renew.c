/* acmectl_renew.c - acmectl renew NAME: asks the running server's renewal driver to renew a
 * certificate now, through a request file it picks up within a tick (jobs/<name>.renew,
 * acme_store_ctl.h; mod_acme_request.c is the driver's side). */
#include <getopt.h>
#include <string.h>

#include <apr_file_info.h>
#include <apr_strings.h>

#include "config.h"

#include "acme_store_ctl.h"
#include "acmectl.h"

const char *acmectl_set_name(const char *name, apr_pool_t *p)
{
    const char *set;

    if (!name || strlen(name) > 253) {
        return NULL;
    }
    set = strncmp(name, "*.", 2) == 0 ? apr_pstrcat(p, "_wildcard.", name + 2, NULL) : name;
    return acme_store_name_ok(set) ? set : NULL;
}

int acmectl_known(const acmectl_t *ctx, const char *name)
{
    static const char *const places[] = {"domains/", "fallback/", NULL};
    apr_finfo_t fi;
    json_t *job;
    int i;

    /* domains/ and fallback/ are root's: looking at them by path is safe. */
    for (i = 0; places[i]; i++) {
        const char *path =
            acme_store_path(ctx->store, apr_pstrcat(ctx->pool, places[i], name, NULL), ctx->pool);
        if (apr_stat(&fi, path, APR_FINFO_LINK | APR_FINFO_TYPE, ctx->pool) == APR_SUCCESS) {
            return 1;
        }
    }
    return acme_store_json_read(&job, ctx->store,
                                apr_pstrcat(ctx->pool, "jobs/", name, ".json", NULL),
                                ctx->pool) == APR_SUCCESS;
}

int acmectl_request_renewal(acmectl_t *ctx, const char *name, const char *reason)
{
    const char *path = acme_renew_request_path(name, ctx->pool);
    pid_t pid = 0;
    apr_status_t rv;

    rv = acme_renew_request_write(ctx->store, name, reason, apr_time_now(), ctx->pool);
    if (rv != APR_SUCCESS) {
        acmectl_err(ctx, "cannot write %s/%s: %s", ctx->store_dir, path,
                    acme_strerror(rv, ctx->pool));
        return ACMECTL_EXIT_FAIL;
    }
    rv = acme_store_driver_holder(&pid, ctx->store, ctx->pool);
    if (rv == APR_SUCCESS) {
        fprintf(ctx->out,
                "%s: renewal requested; the running server (renewal driver%s) starts it within "
                "a second and logs ACME03205. Follow it with 'acmectl status %s'; the new "
                "certificate is served after the graceful restart the server asks for itself.\n",
                name, pid > 0 ? apr_psprintf(ctx->pool, ", process %ld", (long)pid) : "", name);
        return ACMECTL_EXIT_OK;
    }
    fprintf(ctx->out,
            "%s: renewal requested (%s/%s), but no running server holds the store: it is renewed "
            "when the server starts. The server must be running for anything to happen.\n",
            name, ctx->store_dir, path);
    return ACMECTL_EXIT_PROBLEM;
}

static void renew_usage(FILE *out)
{
    fprintf(out, "usage: acmectl [--store DIR] renew NAME\n\n"
                 "Asks the running server to renew the certificate NAME now (its first name as in\n"
                 "ACMEDomain, or its store name, e.g. example.org_rsa2048), whatever its renewal\n"
                 "time: the renewal driver picks the request up within a second, logs ACME03205\n"
                 "and reports the reason 'requested' meanwhile. The new certificate is served\n"
                 "after the graceful restart the server asks for itself.\n\n"
                 "Exit status: 0 the running server renews it now; 1 no server is running (the\n"
                 "request waits for its start); 2 usage; 3 the request could not be written.\n");
}

int acmectl_renew(acmectl_t *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name;
    int opt;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (opt == 'h') {
            renew_usage(ctx->out);
            return ACMECTL_EXIT_OK;
        }
        renew_usage(ctx->err);
        return ACMECTL_EXIT_USAGE;
    }
    if (optind != argc - 1) {
        renew_usage(ctx->err);
        return ACMECTL_EXIT_USAGE;
    }
    name = acmectl_set_name(argv[optind], ctx->pool);
    if (!name) {
        acmectl_err(ctx, "renew: '%s' is not a certificate name",
                    acme_log_safe(argv[optind], 255, ctx->pool));
        return ACMECTL_EXIT_USAGE;
    }
    if (!acmectl_known(ctx, name)) {
        acmectl_err(ctx, "renew: the store %s has no certificate %s ('acmectl status' lists them)",
                    ctx->store_dir, name);
        return ACMECTL_EXIT_PROBLEM;
    }
    return acmectl_request_renewal(ctx, name, "operator");
}
