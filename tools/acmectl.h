/* acmectl.h - what the commands of acmectl (tools/acmectl*.c) share: the context main() fills
 * from the global options before it calls a command, and one function per command.
 *
 * acmectl is a command-line tool on the core library alone (libacmecore, no httpd API). It runs
 * as root beside a server whose User owns some folders of the store (jobs/, staging/,
 * accounts/): everything under those is hostile input to it, read only through the store's
 * no-follow walkers (acme_store.h). Each command runs in the one thread of the tool.
 *
 * A command gets argv from its own name on (argv[0] is the command name, as getopt wants it) and
 * returns the exit status of the tool: ACMECTL_EXIT_OK, ACMECTL_EXIT_PROBLEM when it ran and
 * found or caused a problem (check findings, a CA refusal), ACMECTL_EXIT_USAGE for a wrong
 * command line, ACMECTL_EXIT_FAIL when it could not do its work (store unreadable, CA
 * unreachable).
 */
#ifndef ACMECTL_H
#define ACMECTL_H

#include <stdio.h>

#include <apr_pools.h>

#include "acme_core.h"
#include "acme_store.h"

#define ACMECTL_EXIT_OK      0
#define ACMECTL_EXIT_PROBLEM 1
#define ACMECTL_EXIT_USAGE   2
#define ACMECTL_EXIT_FAIL    3

typedef struct acmectl_t {
    apr_pool_t *pool;      /* lives until the tool exits; commands make subpools for loops */
    const char *store_dir; /* absolute path of the store (--store, or the compiled-in default) */
    acme_store_t *store;   /* opened before the command runs, for commands that say so; else NULL */
    int verbose;           /* -v count: 0 quiet, 1 info, 2 debug */
    acme_log_t log;        /* the core's log seam: to stderr, escaped, at the verbosity */
    FILE *out;             /* stdout: what the command answers */
    FILE *err;             /* stderr: diagnostics */
} acmectl_t;

/* The store when --store is not given: the compiled-in default (configure --with-default-store),
 * relative to the compiled-in ServerRoot (configure --with-server-root) when it is relative, as
 * the module resolves it under ServerRoot. */
const char *acmectl_default_store(apr_pool_t *p);

/* Prints "acmectl: " and the message to ctx->err, outside text escaped by the caller. */
void acmectl_err(const acmectl_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The commands. */
int acmectl_status(acmectl_t *ctx, int argc, char **argv);
int acmectl_renew(acmectl_t *ctx, int argc, char **argv);
int acmectl_revoke(acmectl_t *ctx, int argc, char **argv);
int acmectl_account(acmectl_t *ctx, int argc, char **argv);
int acmectl_check(acmectl_t *ctx, int argc, char **argv);
/* tools/acmectl_import.c: acmectl import certbot|md [DIR]. ctx->store is open. */
int acmectl_import(acmectl_t *ctx, int argc, char **argv);

#endif /* ACMECTL_H */
