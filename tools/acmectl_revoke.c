/* acmectl_revoke.c - acmectl revoke NAME [--reason R]: revokes the active certificate of NAME at
 * the CA that issued it (RFC 8555 section 7.6, revokeCert signed with the account key), then
 * asks the running server for a new one (acmectl_request_renewal). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>
#include <openssl/x509.h>

#include "acme_store_ctl.h"
#include "acmectl.h"

/* RFC 5280 section 5.3.1 CRLReason codes (7 is unused). */
static const struct {
    const char *name;
    int code;
} reasons[] = {
    {"unspecified", 0},        {"keyCompromise", 1}, {"cACompromise", 2},
    {"affiliationChanged", 3}, {"superseded", 4},    {"cessationOfOperation", 5},
    {"certificateHold", 6},    {"removeFromCRL", 8}, {"privilegeWithdrawn", 9},
    {"aACompromise", 10},      {NULL, -1},
};

int acmectl_revoke_reason(const char *text)
{
    char *end = NULL;
    long n;
    int i;

    if (!text || !*text) {
        return -1;
    }
    for (i = 0; reasons[i].name; i++) {
        if (strcasecmp(text, reasons[i].name) == 0) {
            return reasons[i].code;
        }
    }
    if (text[0] < '0' || text[0] > '9' || strlen(text) > 2) {
        return -1;
    }
    n = strtol(text, &end, 10);
    for (i = 0; *end == '\0' && reasons[i].name; i++) {
        if (reasons[i].code == n) {
            return (int)n;
        }
    }
    return -1;
}

const char *acmectl_revoke_reason_name(int code)
{
    int i;

    for (i = 0; reasons[i].name; i++) {
        if (reasons[i].code == code) {
            return reasons[i].name;
        }
    }
    return NULL;
}

static void revoke_usage(FILE *out)
{
    int i;

    fprintf(out, "usage: acmectl [--store DIR] revoke [--reason R] [--ca-file FILE] NAME\n\n"
                 "Revokes the certificate NAME serves now at the CA that issued it (RFC 8555\n"
                 "revokeCert, signed with the account key of the store), then asks the running\n"
                 "server for a new certificate, as 'acmectl renew' does.\n\n"
                 "  --reason R      why (RFC 5280), by name or number:");
    for (i = 0; reasons[i].name; i++) {
        fprintf(out, "%s%s (%d)", i % 3 ? ", " : "\n                    ", reasons[i].name,
                reasons[i].code);
    }
    fprintf(out, "\n                  (default: unspecified; CAs may accept only some)\n"
                 "  --ca-file FILE  trust these roots for the CA's TLS (default: the system's)\n\n"
                 "Exit status: 0 revoked and the running server renews it; 1 revoked but no\n"
                 "server runs (renewed at its start), or the CA refused; 2 usage; 3 failure.\n");
}

static apr_status_t revoke_with(acme_problem_t **pprob, acmectl_t *ctx,
                                const acmectl_account_t *acct, const char *ca_file,
                                const char *cert_b64u, int reason)
{
    acme_client_t *client;
    acme_resp_t *resp;
    const char *url;
    json_t *payload;
    apr_status_t rv;

    rv = acmectl_client(&client, ctx, acct->ca, ca_file, acct);
    if (rv == APR_SUCCESS) {
        rv = acme_client_resource(&url, pprob, client, "revokeCert");
    }
    if (rv == APR_SUCCESS) {
        payload = acme_json_pool(
            ctx->pool, json_pack("{s:s,s:i}", "certificate", cert_b64u, "reason", reason));
        rv = acme_client_post(&resp, pprob, client, url, payload, NULL, 0, ctx->pool);
    }
    return rv;
}

int acmectl_revoke(acmectl_t *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"reason", required_argument, NULL, 'r'},
        {"ca-file", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name, *ca, *why = NULL, *ca_file = NULL, *b64u, *serial;
    apr_array_header_t *accts;
    acme_certset_t *set;
    acme_problem_t *prob = NULL;
    unsigned char *der = NULL;
    apr_status_t rv = APR_ENOENT;
    int opt, reason = 0, len, i, tried = 0;

    while ((opt = getopt_long(argc, argv, "r:c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            reason = acmectl_revoke_reason(optarg);
            if (reason < 0) {
                acmectl_err(ctx,
                            "revoke: --reason %s: not a revocation reason (acmectl revoke "
                            "--help lists them)",
                            acme_log_safe(optarg, 64, ctx->pool));
                return ACMECTL_EXIT_USAGE;
            }
            break;
        case 'c':
            ca_file = optarg;
            break;
        case 'h':
            revoke_usage(ctx->out);
            return ACMECTL_EXIT_OK;
        default:
            revoke_usage(ctx->err);
            return ACMECTL_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        revoke_usage(ctx->err);
        return ACMECTL_EXIT_USAGE;
    }
    name = acmectl_set_name(argv[optind], ctx->pool);
    if (!name) {
        acmectl_err(ctx, "revoke: '%s' is not a certificate name",
                    acme_log_safe(argv[optind], 255, ctx->pool));
        return ACMECTL_EXIT_USAGE;
    }
    rv = acme_store_load(&set, ctx->store, name, 0, &why, ctx->pool);
    if (rv != APR_SUCCESS) {
        acmectl_err(ctx, "revoke: %s: %s%s%s", name,
                    APR_STATUS_IS_ENOENT(rv) ? "no certificate from a CA is active (nothing to "
                                               "revoke; 'acmectl status' lists them)"
                                             : acme_strerror(rv, ctx->pool),
                    why ? ": " : "", why ? why : "");
        return ACMECTL_EXIT_PROBLEM;
    }
    ca = acme_json_str(set->meta, "ca");
    if (!ca) {
        acmectl_err(ctx,
                    "revoke: %s: its meta.json names no CA (a certificate not obtained by "
                    "mod_acme?); revoke it with the tool that obtained it",
                    name);
        return ACMECTL_EXIT_PROBLEM;
    }
    len = i2d_X509(acme_cert_x509(APR_ARRAY_IDX(set->chain, 0, acme_cert_t *)), &der);
    if (len <= 0) {
        acmectl_err(ctx, "revoke: %s: cannot encode the certificate", name);
        return ACMECTL_EXIT_FAIL;
    }
    b64u = acme_b64u_encode(ctx->pool, der, (apr_size_t)len);
    OPENSSL_free(der);
    serial = acme_cert_serial_hex(APR_ARRAY_IDX(set->chain, 0, acme_cert_t *), ctx->pool);

    rv = acmectl_accounts(&accts, ctx, 1);
    if (rv != APR_SUCCESS) {
        acmectl_err(ctx, "revoke: cannot list %s/accounts: %s", ctx->store_dir,
                    acme_strerror(rv, ctx->pool));
        return ACMECTL_EXIT_FAIL;
    }
    /* The account that ordered it is one of this CA's (the server's, or a section's own): a
     * CA answers unauthorized for the others, so each is tried in turn. */
    rv = APR_ENOENT;
    for (i = 0; i < accts->nelts; i++) {
        const acmectl_account_t *a = APR_ARRAY_IDX(accts, i, const acmectl_account_t *);

        if (strcmp(a->ca, ca) != 0) {
            continue;
        }
        tried++;
        prob = NULL;
        rv = revoke_with(&prob, ctx, a, ca_file, b64u, reason);
        if (rv != ACME_EUNAUTHORIZED) {
            break;
        }
    }
    if (!tried) {
        acmectl_err(ctx, "revoke: %s: the store has no account at %s, which issued it", name,
                    acme_log_safe(ca, 512, ctx->pool));
        return ACMECTL_EXIT_PROBLEM;
    }
    if (rv != APR_SUCCESS && !(prob && prob->name && !strcmp(prob->name, "alreadyRevoked"))) {
        acmectl_ca_error(
            ctx,
            apr_psprintf(ctx->pool, "revoke: %s: the CA did not revoke serial %s", name, serial),
            rv, prob);
        return acme_status_is_transient(rv) ? ACMECTL_EXIT_FAIL : ACMECTL_EXIT_PROBLEM;
    }
    fprintf(ctx->out, "%s: certificate serial %s %s at %s (reason %s).\n", name, serial,
            rv == APR_SUCCESS ? "revoked" : "was already revoked",
            acme_log_safe(ca, 512, ctx->pool), acmectl_revoke_reason_name(reason));
    return acmectl_request_renewal(ctx, name, "revoked");
}
