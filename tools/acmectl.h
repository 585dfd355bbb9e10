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
#include <sys/types.h>

#include <apr_pools.h>

#include "acme_client.h"
#include "acme_core.h"
#include "acme_problem.h"
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
    const char *proxy;     /* --proxy URL for the commands that talk to the CA, or NULL */
} acmectl_t;

/* The store when --store is not given: the compiled-in default (configure --with-default-store),
 * relative to the compiled-in ServerRoot (configure --with-server-root) when it is relative, as
 * the module resolves it under ServerRoot. */
const char *acmectl_default_store(apr_pool_t *p);

/* Prints "acmectl: " and the message to ctx->err, outside text escaped by the caller. */
void acmectl_err(const acmectl_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The set name of the store for what the operator typed: a wildcard "*.example.org" is kept as
 * "_wildcard.example.org" (docs/store.md); NULL for a name the store would never take. */
const char *acmectl_set_name(const char *name, apr_pool_t *p);

/* 1 when the store knows the certificate name (an active set, a fallback or a job). */
int acmectl_known(const acmectl_t *ctx, const char *name);

/* Requests the renewal of name from the driver (jobs/<name>.renew) and says on ctx->out what
 * happens next: ACMECTL_EXIT_OK when a running server holds the store and starts it within a
 * tick, ACMECTL_EXIT_PROBLEM when no server runs (it is renewed when one starts). */
int acmectl_request_renewal(acmectl_t *ctx, const char *name, const char *reason);

/* tools/acmectl_ca.c: talking to the CA. */
typedef struct acmectl_account_t {
    const char *dir;   /* relative to the store: accounts/<ca-id>[-<variant>] */
    const char *ca;    /* the CA's directory URL */
    const char *url;   /* the account URL (kid) */
    acme_key_t *key;   /* the account key; NULL until loaded */
    const char *thumb; /* its JWK thumbprint */
} acmectl_account_t;

/* The accounts of the store (acmectl_account_t *), each with its key loaded when keys is 1;
 * accounts that cannot be read are reported on ctx->err and left out. */
apr_status_t acmectl_accounts(apr_array_header_t **paccts, acmectl_t *ctx, int keys);

/* A client for the CA at ca_url (ca_file: trust roots for its TLS, NULL = the system's),
 * signing with acct's key when acct is given. */
apr_status_t acmectl_client(acme_client_t **pclient, acmectl_t *ctx, const char *ca_url,
                            const char *ca_file, const acmectl_account_t *acct);

/* Says on ctx->err why a request to the CA failed. */
void acmectl_ca_error(acmectl_t *ctx, const char *what, apr_status_t rv,
                      const acme_problem_t *prob);

/* tools/acmectl_revoke.c: a revocation reason (RFC 5280 CRLReason) by name (any case) or number:
 * its code, -1 when it is none. And the name of a code, NULL when it is none. */
int acmectl_revoke_reason(const char *text);
const char *acmectl_revoke_reason_name(int code);

/* tools/acmectl_check.c: what is wrong with the owners and modes of the store at dir, for a
 * server that starts as root_uid and runs as user_uid:user_gid (docs/store.md, Ownership):
 * acmectl_finding_t, in the order found; an empty array when nothing is. */
typedef struct acmectl_finding_t {
    const char *path;    /* absolute */
    const char *problem; /* what is wrong and why it matters */
    const char *fix;     /* the shell command that fixes it */
} acmectl_finding_t;

apr_array_header_t *acmectl_check_store(const char *dir, uid_t root_uid, uid_t user_uid,
                                        gid_t user_gid, const char *user_name, apr_pool_t *p);

/* The commands. */
int acmectl_status(acmectl_t *ctx, int argc, char **argv);
int acmectl_renew(acmectl_t *ctx, int argc, char **argv);
int acmectl_revoke(acmectl_t *ctx, int argc, char **argv);
int acmectl_account(acmectl_t *ctx, int argc, char **argv);
int acmectl_check(acmectl_t *ctx, int argc, char **argv);
/* tools/acmectl_import.c: acmectl import certbot|md [DIR]. ctx->store is open. */
int acmectl_import(acmectl_t *ctx, int argc, char **argv);

#endif /* ACMECTL_H */
