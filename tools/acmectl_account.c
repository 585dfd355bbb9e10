/* acmectl_account.c - acmectl account show | rollover | deactivate: the ACME accounts of the
 * store (accounts/<ca-id>[-<variant>]/account.key, account.json; docs/store.md).
 *
 * rollover is RFC 8555 section 7.3.5 (keyChange: an outer JWS by the old key around an inner JWS
 * by the new key) and keeps the account at every instant: the new key is written beside the old
 * one (account.key.new) before the CA is asked, and takes the old one's place (one rename) only
 * once the CA accepted it; a rollover interrupted after the CA's answer is finished by the next
 * one. deactivate is section 7.3.6; the account's folder is then moved aside, so that the next
 * issuance registers a new account, as at the first start.
 *
 * The files are the User's: written with acme_store_write_owned, so the server reads them at
 * every instant. A running server's order in flight while the key changes fails once and is
 * retried with the new key (the driver reads the account at each attempt).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_strings.h>

#include "acme_jws.h"
#include "acme_order.h"
#include "acme_store_ctl.h"
#include "acmectl.h"

#define NEW_KEY "account.key.new"

typedef struct account_opts_t {
    const char *ca;      /* only the accounts at this directory URL */
    const char *ca_file; /* trust roots for the CA's TLS */
    acme_key_type_e key_type;
    int json;
    int yes;
} account_opts_t;

static void account_usage(FILE *out)
{
    fprintf(out,
            "usage: acmectl [--store DIR] account show [--json] [--ca URL]\n"
            "       acmectl [--store DIR] account rollover [--ca URL] [--key-type T] [--ca-file "
            "FILE]\n"
            "       acmectl [--store DIR] account deactivate --yes [--ca URL] [--ca-file FILE]\n\n"
            "show        the accounts of the store: CA, account URL, key type and thumbprint\n"
            "            (never the key)\n"
            "rollover    a new account key (RFC 8555 keyChange); the new key replaces the old\n"
            "            one in the store only once the CA accepted it\n"
            "deactivate  ends the account at the CA (RFC 8555 7.3.6); its folder is moved aside\n"
            "            (accounts/<ca-id>.deactivated-<time>) and the next certificate the\n"
            "            server obtains registers a new account (with ACMEAgreement accepted)\n\n"
            "  --ca URL        the account at this CA (directory URL) only; needed when the\n"
            "                  store has accounts at several CAs\n"
            "  --key-type T    the new key's type: ec256 (default), ec384, rsa2048, rsa3072,\n"
            "                  rsa4096\n"
            "  --ca-file FILE  trust these roots for the CA's TLS (default: the system's)\n"
            "  --json          show as JSON\n"
            "  --yes           deactivation cannot be undone: say so\n\n"
            "Exit status: 0 done; 1 the CA refused, or no such account; 2 usage; 3 failure.\n");
}

/* The one account the command works on: at opts->ca, or the only one of the store. */
static int pick_account(acmectl_account_t **pacct, acmectl_t *ctx, const account_opts_t *opts)
{
    apr_array_header_t *accts;
    acmectl_account_t *found = NULL;
    int i, n = 0;

    if (acmectl_accounts(&accts, ctx, 1) != APR_SUCCESS) {
        acmectl_err(ctx, "account: cannot list %s/accounts", ctx->store_dir);
        return ACMECTL_EXIT_FAIL;
    }
    for (i = 0; i < accts->nelts; i++) {
        acmectl_account_t *a = APR_ARRAY_IDX(accts, i, acmectl_account_t *);
        if (!opts->ca || strcmp(opts->ca, a->ca) == 0) {
            found = a;
            n++;
        }
    }
    if (n == 0) {
        acmectl_err(ctx, "account: the store %s has no account%s%s", ctx->store_dir,
                    opts->ca ? " at " : "",
                    opts->ca ? acme_log_safe(opts->ca, 512, ctx->pool) : "");
        return ACMECTL_EXIT_PROBLEM;
    }
    if (n > 1) {
        acmectl_err(ctx,
                    "account: the store has %d accounts%s; name one with --ca URL "
                    "('acmectl account show' lists them)",
                    n, opts->ca ? " at that CA (a section with its own contact has its own)" : "");
        return ACMECTL_EXIT_USAGE;
    }
    *pacct = found;
    return ACMECTL_EXIT_OK;
}

static int account_show(acmectl_t *ctx, const account_opts_t *opts)
{
    apr_array_header_t *accts;
    json_t *list;
    int i;

    if (acmectl_accounts(&accts, ctx, 1) != APR_SUCCESS) {
        acmectl_err(ctx, "account: cannot list %s/accounts", ctx->store_dir);
        return ACMECTL_EXIT_FAIL;
    }
    list = acme_json_pool(ctx->pool, json_array());
    for (i = 0; i < accts->nelts; i++) {
        const acmectl_account_t *a = APR_ARRAY_IDX(accts, i, const acmectl_account_t *);
        const char *type = acme_key_type_name(acme_key_type(a->key));

        if (opts->ca && strcmp(opts->ca, a->ca) != 0) {
            continue;
        }
        if (opts->json) {
            json_array_append_new(list, json_pack("{s:s,s:s,s:s,s:s,s:s}", "folder", a->dir, "ca",
                                                  a->ca, "url", a->url, "key_type", type,
                                                  "key_thumbprint", a->thumb));
            continue;
        }
        fprintf(ctx->out,
                "%s\n  CA:         %s\n  account:    %s\n  key:        %s, thumbprint %s\n", a->dir,
                acme_log_safe(a->ca, 512, ctx->pool), acme_log_safe(a->url, 512, ctx->pool), type,
                acme_log_safe(a->thumb, 128, ctx->pool));
    }
    if (opts->json) {
        char *text = json_dumps(list, JSON_INDENT(2));
        fprintf(ctx->out, "%s\n", text ? text : "[]");
        free(text);
    } else if (!accts->nelts) {
        fprintf(ctx->out, "no account yet: the server registers one with its first order\n");
    }
    return ACMECTL_EXIT_OK;
}

/* RFC 8555 section 7.3.5: the inner JWS, by the new key, with its jwk and the keyChange URL but
 * no nonce and no kid; its payload names the account and the old key. */
static apr_status_t key_change(acme_problem_t **pprob, acme_client_t *client,
                               const acmectl_account_t *acct, const acme_key_t *new_key,
                               apr_pool_t *p)
{
    json_t *hdr, *inner = NULL, *old_jwk = NULL, *new_jwk = NULL, *payload;
    acme_resp_t *resp;
    const char *url;
    char *text;
    apr_status_t rv;

    rv = acme_client_resource(&url, pprob, client, "keyChange");
    if (rv == APR_SUCCESS) {
        rv = acme_key_jwk(&old_jwk, acct->key, p);
    }
    if (rv == APR_SUCCESS) {
        rv = acme_key_jwk(&new_jwk, new_key, p);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    hdr = acme_json_pool(p, json_pack("{s:s,s:O,s:s}", "alg", acme_key_jws_alg(new_key), "jwk",
                                      new_jwk, "url", url));
    payload = acme_json_pool(p, json_pack("{s:s,s:O}", "account", acct->url, "oldKey", old_jwk));
    text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    if (!hdr || !text) {
        free(text);
        return APR_ENOMEM;
    }
    rv = acme_jws_sign_raw(&inner, new_key, hdr, text, strlen(text), p);
    free(text);
    if (rv == APR_SUCCESS) {
        rv = acme_client_post(&resp, pprob, client, url, inner, NULL, 0, p);
    }
    return rv;
}

/* The new key in the old one's place, then account.json with its thumbprint. In that order: a
 * crash between the two leaves the new key with the old thumbprint, which the server takes as
 * "registration unknown" and finds again at the CA (newAccount answers the existing account of
 * a key), never an account lost. */
static apr_status_t swap_in(acmectl_t *ctx, const acmectl_account_t *acct, const char *thumb)
{
    json_t *info;
    char *text;
    apr_status_t rv;

    rv = acme_store_rename(ctx->store, apr_pstrcat(ctx->pool, acct->dir, "/" NEW_KEY, NULL),
                           apr_pstrcat(ctx->pool, acct->dir, "/account.key", NULL), ctx->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    info = acme_json_pool(
        ctx->pool, json_pack("{s:s,s:s,s:s}", "url", acct->url, "ca", acct->ca, "key", thumb));
    text = info ? json_dumps(info, JSON_COMPACT) : NULL;
    if (!text) {
        return APR_ENOMEM;
    }
    rv =
        acme_store_write_owned(ctx->store, apr_pstrcat(ctx->pool, acct->dir, "/account.json", NULL),
                               text, strlen(text), APR_FPROT_UREAD | APR_FPROT_UWRITE, ctx->pool);
    free(text);
    return rv;
}

/* A key left by a rollover that stopped after the CA's answer: when the CA knows the account by
 * it, that rollover happened and is finished now; else the key is of no use and goes. */
static int finish_interrupted(acmectl_t *ctx, acme_client_t *client, acmectl_account_t *acct)
{
    const char *path = apr_pstrcat(ctx->pool, acct->dir, "/" NEW_KEY, NULL), *url = NULL;
    const char *thumb = NULL;
    acme_problem_t *prob = NULL;
    acme_key_t *key;
    char *pem;
    apr_size_t len;
    apr_status_t rv;

    rv = acme_store_read(&pem, &len, ctx->store, path, ACME_STORE_KEY_MAX, ctx->pool);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return 0;
    }
    if (rv == APR_SUCCESS) {
        rv = acme_key_from_pem(&key, pem, len, ctx->pool);
    }
    if (rv == APR_SUCCESS) {
        rv = acme_account_find(&url, &prob, client, key, ctx->pool);
    }
    if (rv == APR_SUCCESS && strcmp(url, acct->url) == 0 &&
        acme_key_thumbprint(&thumb, key, ctx->pool) == APR_SUCCESS &&
        swap_in(ctx, acct, thumb) == APR_SUCCESS) {
        fprintf(ctx->out,
                "%s: an earlier rollover had been accepted by the CA; its key is the "
                "account key now\n",
                acct->dir);
        acct->key = key;
        acct->thumb = thumb;
        acme_client_set_account(client, key, acct->url);
        return 1;
    }
    acme_store_remove(ctx->store, path, ctx->pool);
    return 0;
}

static int account_rollover(acmectl_t *ctx, const account_opts_t *opts)
{
    acmectl_account_t *acct = NULL;
    acme_client_t *client;
    acme_problem_t *prob = NULL;
    acme_key_t *key;
    const char *pem, *thumb, *old_thumb;
    apr_size_t len;
    pid_t pid = 0;
    int ret, lockfd = -1;
    apr_status_t rv;

    ret = pick_account(&acct, ctx, opts);
    if (ret != ACMECTL_EXIT_OK) {
        return ret;
    }
    rv = acmectl_client(&client, ctx, acct->ca, opts->ca_file, acct);
    if (rv != APR_SUCCESS) {
        acmectl_err(ctx, "account rollover: %s", acme_strerror(rv, ctx->pool));
        return ACMECTL_EXIT_FAIL;
    }
    /* A stopped server stays out while the key changes; a running one's driver reads the
     * account at each attempt, and an attempt that overlaps fails once and is retried. */
    if (acme_store_driver_lock(&lockfd, &pid, ctx->store, ctx->pool) == APR_EAGAIN) {
        fprintf(ctx->err, "acmectl: the server runs: an order in flight while the key changes "
                          "fails once and is retried with the new key\n");
    }
    finish_interrupted(ctx, client, acct);
    old_thumb = acct->thumb;
    rv = acme_key_generate(&key, opts->key_type, ctx->pool);
    if (rv == APR_SUCCESS) {
        rv = acme_key_to_pem(&pem, &len, key, ctx->pool);
    }
    if (rv == APR_SUCCESS) {
        rv = acme_key_thumbprint(&thumb, key, ctx->pool);
    }
    /* Saved before the CA hears of it: accepted and then lost, it would lose the account. */
    if (rv == APR_SUCCESS) {
        rv =
            acme_store_write_owned(ctx->store, apr_pstrcat(ctx->pool, acct->dir, "/" NEW_KEY, NULL),
                                   pem, len, APR_FPROT_UREAD | APR_FPROT_UWRITE, ctx->pool);
    }
    if (rv != APR_SUCCESS) {
        acmectl_err(ctx, "account rollover: cannot make and save a new key in %s/%s: %s",
                    ctx->store_dir, acct->dir, acme_strerror(rv, ctx->pool));
        ret = ACMECTL_EXIT_FAIL;
        goto out;
    }
    rv = key_change(&prob, client, acct, key, ctx->pool);
    if (rv != APR_SUCCESS) {
        acme_store_remove(ctx->store, apr_pstrcat(ctx->pool, acct->dir, "/" NEW_KEY, NULL),
                          ctx->pool);
        acmectl_ca_error(ctx, "account rollover: the CA refused the new key; the old key stays", rv,
                         prob);
        ret = acme_status_is_transient(rv) ? ACMECTL_EXIT_FAIL : ACMECTL_EXIT_PROBLEM;
        goto out;
    }
    rv = swap_in(ctx, acct, thumb);
    if (rv != APR_SUCCESS) {
        acmectl_err(ctx,
                    "account rollover: the CA took the new key, but it could not replace "
                    "the old one in %s/%s (%s): run 'acmectl account rollover' again, which "
                    "finishes it",
                    ctx->store_dir, acct->dir, acme_strerror(rv, ctx->pool));
        ret = ACMECTL_EXIT_FAIL;
        goto out;
    }
    fprintf(ctx->out, "%s: account %s rolled over to a new %s key (thumbprint %s, was %s)\n",
            acct->dir, acme_log_safe(acct->url, 512, ctx->pool), acme_key_type_name(opts->key_type),
            thumb, acme_log_safe(old_thumb, 128, ctx->pool));
    ret = ACMECTL_EXIT_OK;
out:
    if (lockfd >= 0) {
        close(lockfd);
    }
    return ret;
}

static int account_deactivate(acmectl_t *ctx, const account_opts_t *opts)
{
    acmectl_account_t *acct = NULL;
    acme_client_t *client;
    acme_problem_t *prob = NULL;
    acme_resp_t *resp;
    json_t *payload;
    const char *aside;
    int ret;
    apr_status_t rv;

    if (!opts->yes) {
        acmectl_err(ctx, "account deactivate: this ends the account at the CA for good; add "
                         "--yes to do it");
        return ACMECTL_EXIT_USAGE;
    }
    ret = pick_account(&acct, ctx, opts);
    if (ret != ACMECTL_EXIT_OK) {
        return ret;
    }
    rv = acmectl_client(&client, ctx, acct->ca, opts->ca_file, acct);
    if (rv == APR_SUCCESS) {
        payload = acme_json_pool(ctx->pool, json_pack("{s:s}", "status", "deactivated"));
        rv = acme_client_post(&resp, &prob, client, acct->url, payload, NULL, 0, ctx->pool);
    }
    if (rv != APR_SUCCESS) {
        acmectl_ca_error(ctx, "account deactivate: the CA did not deactivate it", rv, prob);
        return acme_status_is_transient(rv) ? ACMECTL_EXIT_FAIL : ACMECTL_EXIT_PROBLEM;
    }
    /* Moved aside, not removed: the key still proves who held the account. */
    aside = apr_psprintf(ctx->pool, "%s.deactivated-%" APR_TIME_T_FMT, acct->dir,
                         apr_time_sec(apr_time_now()));
    rv = acme_store_rename(ctx->store, acct->dir, aside, ctx->pool);
    fprintf(ctx->out, "%s: account %s deactivated at the CA.\n", acct->dir,
            acme_log_safe(acct->url, 512, ctx->pool));
    if (rv != APR_SUCCESS) {
        acmectl_err(ctx,
                    "account deactivate: cannot move %s/%s aside (%s): move it away by "
                    "hand, or the server keeps using the deactivated account",
                    ctx->store_dir, acct->dir, acme_strerror(rv, ctx->pool));
        return ACMECTL_EXIT_FAIL;
    }
    fprintf(ctx->out,
            "Its files are in %s/%s. The next certificate the server obtains registers "
            "a new account (ACMEAgreement accepted is needed for that).\n",
            ctx->store_dir, aside);
    return ACMECTL_EXIT_OK;
}

int acmectl_account(acmectl_t *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"ca", required_argument, NULL, 'C'},
        {"ca-file", required_argument, NULL, 'c'},
        {"key-type", required_argument, NULL, 'k'},
        {"json", no_argument, NULL, 'j'},
        {"yes", no_argument, NULL, 'y'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    account_opts_t opts;
    const char *sub;
    int opt;

    memset(&opts, 0, sizeof(opts));
    opts.key_type = ACME_KEY_EC256;
    /* The subcommand first, then its options (getopt would move it otherwise). */
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
            account_usage(ctx->out);
            return ACMECTL_EXIT_OK;
        }
        account_usage(ctx->err);
        return ACMECTL_EXIT_USAGE;
    }
    sub = argv[1];
    argc--;
    argv++;
    argv[0] = apr_pstrcat(ctx->pool, "acmectl account ", sub, NULL); /* for getopt's messages */
    while ((opt = getopt_long(argc, argv, "C:c:k:jyh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'C':
            opts.ca = optarg;
            break;
        case 'c':
            opts.ca_file = optarg;
            break;
        case 'k':
            if (acme_key_type_parse(&opts.key_type, optarg) != APR_SUCCESS) {
                acmectl_err(ctx,
                            "account: --key-type %s: not a key type (ec256, ec384, rsa2048, "
                            "rsa3072, rsa4096)",
                            acme_log_safe(optarg, 64, ctx->pool));
                return ACMECTL_EXIT_USAGE;
            }
            break;
        case 'j':
            opts.json = 1;
            break;
        case 'y':
            opts.yes = 1;
            break;
        case 'h':
            account_usage(ctx->out);
            return ACMECTL_EXIT_OK;
        default:
            account_usage(ctx->err);
            return ACMECTL_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        account_usage(ctx->err);
        return ACMECTL_EXIT_USAGE;
    }
    if (!strcmp(sub, "show")) {
        return account_show(ctx, &opts);
    }
    if (!strcmp(sub, "rollover")) {
        return account_rollover(ctx, &opts);
    }
    if (!strcmp(sub, "deactivate")) {
        return account_deactivate(ctx, &opts);
    }
    acmectl_err(ctx, "account: unknown subcommand '%s' (show, rollover, deactivate)",
                acme_log_safe(sub, 64, ctx->pool));
    return ACMECTL_EXIT_USAGE;
}
