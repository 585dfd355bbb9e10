/* acmectl.c - the operator's command-line tool for mod_acme (docs/acmectl.md, acmectl.1):
 * global options, the command table and the log seam. Each command lives in a file of its own
 * (acmectl_<command>.c) and is reached through acmectl.h.
 *
 * Single-threaded; runs as root beside the server (see acmectl.h for what it trusts).
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <apr_file_info.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "config.h"

#include "acmectl.h"

typedef struct acmectl_cmd_t {
    const char *name;
    int (*fn)(acmectl_t *ctx, int argc, char **argv);
    int open_store; /* 1: main opens ctx->store before the command runs */
    const char *summary;
} acmectl_cmd_t;

/* check looks at a store that may be broken or missing and never opens it: opening refuses a
 * store that fails the owner check and makes missing folders. The others open an existing
 * store only. */
static const acmectl_cmd_t commands[] = {
    {"status", acmectl_status, 1, "the certificates of the store, their state and next renewal"},
    {"renew", acmectl_renew, 1, "ask the running server to renew a certificate now"},
    {"revoke", acmectl_revoke, 1, "revoke a certificate at its CA, then renew it"},
    {"account", acmectl_account, 1, "show, roll over (new key) or deactivate the ACME account"},
    {"import", acmectl_import, 1, "take over certificates and accounts of certbot or mod_md"},
    {"check", acmectl_check, 0, "check the owners and modes of the store, say what fixes them"},
    {NULL, NULL, 0, NULL},
};

/* The core's log: to stderr, escaped (the core logs text from the CA and from files the User
 * wrote), at the verbosity the operator asked for. */
static void log_stderr(void *baton, acme_log_level_e level, apr_status_t rv, const char *msg)
{
    static const char *const names[] = {"error", "warn", "notice", "info", "debug", "trace"};
    FILE *err = baton;
    char safe[2048];

    fprintf(err, "acmectl: [%s] %s\n", names[level], acme_log_escape(safe, sizeof(safe), msg));
}

/* 1 when the command's arguments ask for its help: it is shown without a store. */
static int wants_help(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            return 1;
        }
    }
    return 0;
}

static void usage(FILE *out, const char *store)
{
    const acmectl_cmd_t *c;

    fprintf(out,
            "usage: acmectl [--store DIR] [--proxy URL] [-v] COMMAND [ARGS]\n"
            "       acmectl COMMAND --help\n"
            "       acmectl --help | --version\n\n"
            "Options:\n"
            "  --store DIR   the mod_acme store (default: %s)\n"
            "  --proxy URL   requests to the CA through this proxy,\n"
            "                http://[user:password@]host:port (default: https_proxy)\n"
            "  -v, --verbose more detail on stderr (twice: debug)\n"
            "  -h, --help    this help\n"
            "  --version     the version\n\n"
            "Commands:\n",
            store);
    for (c = commands; c->name; c++)
        fprintf(out, "  %-9s %s\n", c->name, c->summary);
    fprintf(out, "\nExit status: 0 done, 1 a problem found or reported by the CA, 2 usage, "
                 "3 failure.\nSee acmectl(1).\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"store", required_argument, NULL, 's'}, {"proxy", required_argument, NULL, 'P'},
        {"verbose", no_argument, NULL, 'v'},     {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},     {NULL, 0, NULL, 0},
    };
    acmectl_t ctx;
    const acmectl_cmd_t *c;
    const char *why = NULL;
    apr_status_t rv;
    int opt, cmd, ret = ACMECTL_EXIT_FAIL;

    memset(&ctx, 0, sizeof(ctx));
    ctx.out = stdout;
    ctx.err = stderr;
    if (apr_app_initialize(&argc, (const char *const **)&argv, NULL) != APR_SUCCESS) {
        fprintf(stderr, "acmectl: cannot initialise APR\n");
        return ACMECTL_EXIT_FAIL;
    }
    atexit(apr_terminate);
    if (apr_pool_create(&ctx.pool, NULL) != APR_SUCCESS) {
        fprintf(stderr, "acmectl: out of memory\n");
        return ACMECTL_EXIT_FAIL;
    }
    ctx.store_dir = acmectl_default_store(ctx.pool);

    /* "+": options end at the command name; what follows is the command's. */
    while ((opt = getopt_long(argc, argv, "+s:vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            if (!optarg[0]) {
                acmectl_err(&ctx, "--store needs a folder");
                return ACMECTL_EXIT_USAGE;
            }
            ctx.store_dir = optarg;
            break;
        case 'P':
            if (acme_http_proxy_check(optarg, &why, ctx.pool) != APR_SUCCESS) {
                acmectl_err(&ctx, "--proxy %s: %s", acme_http_proxy_masked(optarg, ctx.pool), why);
                return ACMECTL_EXIT_USAGE;
            }
            ctx.proxy = optarg;
            break;
        case 'v':
            ctx.verbose++;
            break;
        case 'h':
            usage(stdout, acmectl_default_store(ctx.pool));
            return ACMECTL_EXIT_OK;
        case 'V':
            printf("acmectl (mod_acme) %s\n", PACKAGE_VERSION);
            return ACMECTL_EXIT_OK;
        default:
            usage(stderr, acmectl_default_store(ctx.pool));
            return ACMECTL_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr, acmectl_default_store(ctx.pool));
        return ACMECTL_EXIT_USAGE;
    }
    ctx.log.fn = log_stderr;
    ctx.log.baton = ctx.err;
    ctx.log.max_level = ctx.verbose >= 2 ? ACME_LOG_DEBUG
                        : ctx.verbose    ? ACME_LOG_INFO
                                         : ACME_LOG_WARN;
    if (ctx.store_dir[0] != '/') {
        char *abs = NULL;

        if (apr_filepath_merge(&abs, NULL, ctx.store_dir, 0, ctx.pool) != APR_SUCCESS) {
            acmectl_err(&ctx, "--store %s: cannot make it absolute", ctx.store_dir);
            return ACMECTL_EXIT_USAGE;
        }
        ctx.store_dir = abs;
    }

    for (c = commands; c->name; c++)
        if (!strcmp(c->name, argv[optind]))
            break;
    if (!c->name) {
        acmectl_err(&ctx, "unknown command '%s' (acmectl --help lists them)",
                    acme_log_safe(argv[optind], 64, ctx.pool));
        return ACMECTL_EXIT_USAGE;
    }
    if (c->open_store && !wants_help(argc - optind, argv + optind)) {
        apr_finfo_t fi;

        /* A missing store is a wrong --store (the module makes it when it starts): never make
         * one here. A store that fails the owner check is refused before anything is made in
         * it. */
        if (apr_stat(&fi, ctx.store_dir, APR_FINFO_TYPE, ctx.pool) != APR_SUCCESS ||
            fi.filetype != APR_DIR) {
            acmectl_err(&ctx,
                        "no store at %s (--store DIR names another; the module makes it "
                        "when the server starts)",
                        ctx.store_dir);
            return ACMECTL_EXIT_FAIL;
        }
        rv = acme_store_check_owner(ctx.store_dir, &why, ctx.pool);
        if (rv == APR_SUCCESS)
            rv = acme_store_open(&ctx.store, ctx.store_dir, ctx.pool);
        if (rv != APR_SUCCESS) {
            acmectl_err(&ctx, "store %s: %s%s%s (acmectl check says what to fix)", ctx.store_dir,
                        acme_strerror(rv, ctx.pool), why ? ": " : "", why ? why : "");
            return ACMECTL_EXIT_FAIL;
        }
    }
    /* The command sees its own name as argv[0], as getopt wants; getopt starts again. */
    cmd = optind;
    optind = 0;
    /* getopt names argv[0] in its messages: "acmectl check: unrecognized option ...". */
    argv[cmd] = apr_pstrcat(ctx.pool, "acmectl ", c->name, NULL);
    ret = c->fn(&ctx, argc - cmd, argv + cmd);
    return ret;
}
