/* acmectl_status.c - acmectl status [--json] [NAME]: the certificates of the store, from the
 * store alone (the server may be down). Each certificate's document is acme_status_cert's, the
 * one the server's acme-status page shows, with what only the running server knows (the
 * configuration's names, a renewal in progress, the CA's renewal window) left out. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <apr_hash.h>
#include <apr_strings.h>

#include "acme_status.h"
#include "acme_store_ctl.h"
#include "acmectl.h"

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The certificates the store knows: an active set, a fallback, or a job. */
static apr_array_header_t *store_names(acmectl_t *ctx)
{
    static const char *const places[] = {"domains", "fallback", "jobs", NULL};
    apr_array_header_t *all = apr_array_make(ctx->pool, 8, sizeof(const char *)), *names;
    apr_hash_t *seen = apr_hash_make(ctx->pool);
    int i, k;

    for (k = 0; places[k]; k++) {
        if (acme_store_list(&names, ctx->store, places[k], ctx->pool) != APR_SUCCESS) {
            continue;
        }
        for (i = 0; i < names->nelts; i++) {
            const char *n = APR_ARRAY_IDX(names, i, const char *);
            apr_size_t len = strlen(n);

            if (k == 2) { /* jobs/<name>.json */
                if (len <= 5 || strcmp(n + len - 5, ".json") != 0) {
                    continue;
                }
                n = apr_pstrmemdup(ctx->pool, n, len - 5);
            }
            if (n[0] == '.' || !acme_store_name_ok(n) ||
                apr_hash_get(seen, n, APR_HASH_KEY_STRING)) {
                continue;
            }
            apr_hash_set(seen, n, APR_HASH_KEY_STRING, n);
            APR_ARRAY_PUSH(all, const char *) = n;
        }
    }
    qsort(all->elts, (size_t)all->nelts, sizeof(const char *), name_cmp);
    return all;
}

static const char *str(const json_t *obj, const char *key, const char *dflt)
{
    const char *s = obj ? acme_json_str(obj, key) : NULL;

    return s ? s : dflt;
}

/* RFC 3339 "2026-12-05T07:25:12Z" as "2026-12-05 07:25": the table stays narrow. */
static const char *short_time(const char *t, apr_pool_t *p)
{
    if (!t || strlen(t) < 16) {
        return "-";
    }
    return apr_psprintf(p, "%.10s %.5s", t, t + 11);
}

static void print_table(acmectl_t *ctx, apr_array_header_t *docs)
{
    int i;

    fprintf(ctx->out, "%-28s %-8s %-9s %-17s %-30s %-3s %s\n", "NAME", "KEY", "STATE",
            "NOT AFTER (UTC)", "NEXT RENEWAL (UTC, WHY)", "ERR", "LAST ERROR");
    for (i = 0; i < docs->nelts; i++) {
        const json_t *d = APR_ARRAY_IDX(docs, i, const json_t *);
        const json_t *cert = json_object_get(d, "certificate");
        const json_t *ren = json_object_get(d, "renewal");
        const json_t *last = json_object_get(d, "last-attempt");
        const char *next = str(ren, "next", NULL), *why = str(ren, "reason", NULL);
        const char *err = "-";

        if (last && json_is_object(last) && !strcmp(str(last, "result", ""), "failed")) {
            err = acme_log_safe(str(last, "detail", str(last, "problem-type", "failed")), 70,
                                ctx->pool);
        }
        fprintf(
            ctx->out, "%-28s %-8s %-9s %-17s %-30s %-3d %s\n",
            acme_log_safe(str(d, "store-name", "?"), 64, ctx->pool),
            acme_log_safe(str(d, "key-type", "-"), 16, ctx->pool), str(d, "state", "?"),
            short_time(json_is_object(cert) ? str(cert, "not-after", NULL) : NULL, ctx->pool),
            next ? apr_psprintf(ctx->pool, "%s (%s)", short_time(next, ctx->pool), why ? why : "?")
                 : "-",
            (int)json_integer_value(json_object_get(d, "failures")), err);
    }
    if (!docs->nelts) {
        fprintf(ctx->out, "no certificate in %s yet\n", ctx->store_dir);
    }
}

static void status_usage(FILE *out)
{
    fprintf(out,
            "usage: acmectl [--store DIR] status [--json] [NAME]\n\n"
            "The certificates of the store: name, key type, state (fallback, valid,\n"
            "renewing, staged, failed, expired), notAfter, the next renewal and why\n"
            "(window, ari, config-change, requested), consecutive failures and the last\n"
            "error. Read from the store alone: works while the server is down. NAME is a\n"
            "certificate's store name (its first name, '_<type>' added for further key\n"
            "types).\n\n"
            "  --json  the status documents of the server's acme-status page (docs/status.md):\n"
            "          the whole document, or with NAME the one certificate's\n\n"
            "Exit status: 0 shown; 1 no such certificate; 2 usage; 3 failure.\n");
}

int acmectl_status(acmectl_t *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    apr_array_header_t *names, *docs;
    acme_status_in_t in;
    json_t *out = NULL;
    char *text;
    int opt, json = 0, i;
    apr_status_t rv;

    while ((opt = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            json = 1;
            break;
        case 'h':
            status_usage(ctx->out);
            return ACMECTL_EXIT_OK;
        default:
            status_usage(ctx->err);
            return ACMECTL_EXIT_USAGE;
        }
    }
    if (optind < argc - 1) {
        status_usage(ctx->err);
        return ACMECTL_EXIT_USAGE;
    }
    if (optind == argc - 1) {
        const char *name = acmectl_set_name(argv[optind], ctx->pool);
        if (!name) {
            acmectl_err(ctx, "status: '%s' is not a certificate name",
                        acme_log_safe(argv[optind], 255, ctx->pool));
            return ACMECTL_EXIT_USAGE;
        }
        if (!acmectl_known(ctx, name)) {
            acmectl_err(ctx, "status: the store %s has no certificate %s", ctx->store_dir, name);
            return ACMECTL_EXIT_PROBLEM;
        }
        names = apr_array_make(ctx->pool, 1, sizeof(const char *));
        APR_ARRAY_PUSH(names, const char *) = name;
    } else {
        names = store_names(ctx);
    }
    docs = apr_array_make(ctx->pool, names->nelts, sizeof(json_t *));
    for (i = 0; i < names->nelts; i++) {
        const char *name = APR_ARRAY_IDX(names, i, const char *);
        json_t *doc;

        acme_status_in_init(&in);
        in.requested = acme_renew_requested(ctx->store, name, ctx->pool);
        rv = acme_status_cert(&doc, ctx->store, name, &in, ctx->pool);
        if (rv != APR_SUCCESS) {
            acmectl_err(ctx, "status: %s: %s", name, acme_strerror(rv, ctx->pool));
            continue;
        }
        APR_ARRAY_PUSH(docs, json_t *) = doc;
    }
    if (!json) {
        print_table(ctx, docs);
        return ACMECTL_EXIT_OK;
    }
    if (optind == argc - 1) {
        out = docs->nelts ? APR_ARRAY_IDX(docs, 0, json_t *) : NULL;
    } else if (acme_status_doc(&out, acme_status_version(), ctx->store_dir, NULL, docs,
                               ctx->pool) != APR_SUCCESS) {
        out = NULL;
    }
    text = out ? json_dumps(out, JSON_INDENT(2)) : NULL;
    if (!text) {
        acmectl_err(ctx, "status: cannot make the JSON document");
        return ACMECTL_EXIT_FAIL;
    }
    fprintf(ctx->out, "%s\n", text);
    free(text);
    return ACMECTL_EXIT_OK;
}
