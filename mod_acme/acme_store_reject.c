/* acme_store_reject.c - staged sets refused at promotion: moved aside in staging/ (the newest few
 * kept for the operator) and the refusal recorded in refused/<name>.json for the renewal driver.
 * Split from acme_store_set.c, which stages, loads and promotes the sets. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_strings.h>

#include "acme_store_int.h"

/* The number in a leftover-style name ("<secs>" or "<secs>-<k>"), for ordering. */
static apr_int64_t rejected_order(const char *tail)
{
    char *end = NULL;
    apr_int64_t secs = apr_strtoi64(tail, &end, 10), k = 0;

    if (end && *end == '-') {
        k = apr_strtoi64(end + 1, NULL, 10);
    }
    return secs * 1000 + (k < 1000 ? k : 999);
}

static int rejected_newest_first(const void *a, const void *b)
{
    apr_int64_t x = ((const apr_int64_t *)a)[0], y = ((const apr_int64_t *)b)[0];
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Keeps the ACME_STORE_REJECTED_KEEP newest .rejected.<name>.* folders in the open staging/. */
static apr_status_t prune_rejected(int staging, const char *prefix, apr_pool_t *p)
{
    apr_array_header_t *names;
    apr_int64_t *found; /* pairs: order, index into names */
    int i, n = 0;
    apr_status_t rv;

    rv = acme_store_list_matching_at(&names, staging, acme_store_is_leftover, prefix, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    found = apr_pcalloc(p, sizeof(apr_int64_t) * 2 * (apr_size_t)(names->nelts + 1));
    for (i = 0; i < names->nelts; i++) {
        const char *e = APR_ARRAY_IDX(names, i, const char *);
        found[2 * n] = rejected_order(e + strlen(prefix));
        found[2 * n + 1] = i;
        n++;
    }
    qsort(found, (size_t)n, 2 * sizeof(apr_int64_t), rejected_newest_first);
    for (i = ACME_STORE_REJECTED_KEEP; i < n && rv == APR_SUCCESS; i++) {
        rv = acme_store_remove_at(staging,
                                  APR_ARRAY_IDX(names, (int)found[2 * i + 1], const char *), p);
    }
    return rv;
}

static const char *refusal_path(const char *name, apr_pool_t *p)
{
    return apr_pstrcat(p, "refused/", name, ".json", NULL);
}

apr_status_t acme_store_reject(acme_store_t *store, const char *name, const char *why,
                               apr_time_t now, const char **paside, apr_pool_t *p)
{
    const char *prefix = apr_pstrcat(p, ".rejected.", name, ".", NULL);
    const char *aside = NULL;
    int staging = -1, refused = -1, k;
    json_t *j;
    char *text = NULL;
    apr_status_t rv;

    if (!acme_store_name_ok(name)) {
        rv = APR_EINVAL;
        goto out;
    }
    rv = acme_store_dir_open(&staging, store, "staging", 0, NULL, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    /* The entry itself moves (a link planted there is moved, never followed); a name taken
     * already (two refusals in one second) gets a counter. */
    for (k = 0, rv = APR_EEXIST; k < 100 && rv != APR_SUCCESS; k++) {
        aside = k ? apr_psprintf(p, "%s%" APR_TIME_T_FMT "-%d", prefix, apr_time_sec(now), k)
                  : apr_psprintf(p, "%s%" APR_TIME_T_FMT, prefix, apr_time_sec(now));
        rv = renameat(staging, name, staging, aside) == 0 ? APR_SUCCESS : acme_store_os_error();
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv) && !APR_STATUS_IS_ENOTEMPTY(rv)) {
            goto out;
        }
    }
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_store_sync_fd(staging);
    if (rv == APR_SUCCESS) {
        rv = prune_rejected(staging, prefix, p);
    }
    if (rv != APR_SUCCESS) {
        goto out;
    }
    /* The record lives in a folder of the parent's (0755, the file 0644): the User reads it
     * (the store's walk opens each folder for reading), but can neither change it nor make
     * root write through a link of its own. */
    rv = acme_store_dir_open(&refused, store, "refused", 1, NULL, p);
    if (rv == APR_SUCCESS && fchmod(refused, 0755) != 0) {
        rv = acme_store_os_error();
    }
    if (rv != APR_SUCCESS) {
        goto out;
    }
    j = acme_json_pool(p,
                       json_pack("{s:I, s:s, s:s}", "time", (json_int_t)apr_time_sec(now), "why",
                                 why ? why : "", "kept", apr_pstrcat(p, "staging/", aside, NULL)));
    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    rv = text ? acme_store_write_at(store, refused, apr_pstrcat(p, name, ".json", NULL), text,
                                    strlen(text), PERMS_PUBLIC, p)
              : APR_ENOMEM;
out:
    if (paside && aside) {
        *paside = apr_pstrcat(p, "staging/", aside, NULL);
    }
    free(text);
    acme_store_close(&staging);
    acme_store_close(&refused);
    return rv;
}

apr_status_t acme_store_refusal_read(acme_refusal_t **pref, acme_store_t *store, const char *name,
                                     apr_pool_t *p)
{
    acme_refusal_t *ref;
    const json_t *t;
    json_t *j = NULL;
    apr_status_t rv;

    if (!acme_store_name_ok(name)) {
        return APR_EINVAL;
    }
    rv = acme_store_json_read(&j, store, refusal_path(name, p), p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    t = json_object_get(j, "time");
    if (!json_is_integer(t) || json_integer_value(t) <= 0 || !acme_json_str(j, "why")) {
        return ACME_EBADSTORE;
    }
    ref = apr_pcalloc(p, sizeof(*ref));
    ref->time = apr_time_from_sec((apr_time_t)json_integer_value(t));
    ref->why = apr_pstrndup(p, acme_json_str(j, "why"), 1024);
    ref->kept = acme_json_str(j, "kept") ? apr_pstrndup(p, acme_json_str(j, "kept"), 1024) : "";
    *pref = ref;
    return APR_SUCCESS;
}

apr_status_t acme_store_refusal_clear(acme_store_t *store, const char *name, apr_pool_t *p)
{
    return acme_store_name_ok(name) ? acme_store_remove(store, refusal_path(name, p), p)
                                    : APR_EINVAL;
}
