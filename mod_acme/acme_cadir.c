/* acme_cadir.c - a CA's directory kept in the store between server generations. */
#include <stdlib.h>
#include <string.h>

#include <apr_strings.h>

#include "acme_cadir.h"

#define CADIR_URL_MAX  4096
#define CADIR_TIME_MAX 253402300799LL /* the year 9999: no time we write is later */

static const char *cadir_path(const char *ca_url, apr_pool_t *p)
{
    return apr_pstrcat(p, "jobs/", acme_store_ca_id(ca_url, p), ".directory", NULL);
}

apr_status_t acme_cadir_load(const char **pjson, apr_interval_time_t *page, acme_store_t *store,
                             const char *ca_url, apr_time_t now, apr_pool_t *p)
{
    json_t *j = NULL;
    const json_t *fetched, *dir;
    const char *url;
    char *text = NULL;
    apr_size_t len;
    apr_time_t at;
    apr_status_t rv;

    rv = acme_store_read(&text, &len, store, cadir_path(ca_url, p), ACME_CADIR_SIZE_MAX, p);
    if (rv != APR_SUCCESS) {
        rv = rv == ACME_ETOOLARGE ? ACME_EBADSTORE : rv;
        goto out;
    }
    j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    fetched = json_object_get(j, "fetched");
    dir = json_object_get(j, "directory");
    url = acme_json_str(j, "url");
    if (!json_is_object(j) || !json_is_integer(fetched) || json_integer_value(fetched) <= 0 ||
        json_integer_value(fetched) > CADIR_TIME_MAX || !json_is_object(dir) || !url ||
        strlen(url) > CADIR_URL_MAX) {
        rv = ACME_EBADSTORE;
        goto out;
    }
    /* Two URLs may share a ca-id (the scheme is not in it): only this URL's directory counts. */
    at = apr_time_from_sec((apr_time_t)json_integer_value(fetched));
    if (strcmp(url, ca_url) != 0 || at > now + apr_time_from_sec(60) ||
        now - at > ACME_CADIR_MAX_AGE) {
        rv = APR_ENOENT;
        goto out;
    }
    text = json_dumps(dir, JSON_COMPACT);
    if (!text) {
        rv = APR_ENOMEM;
        goto out;
    }
    *pjson = apr_pstrdup(p, text);
    free(text);
    *page = now > at ? now - at : 0;
out:
    json_decref(j);
    return rv;
}

apr_status_t acme_cadir_save(acme_store_t *store, const char *ca_url, const char *json,
                             apr_time_t now, apr_pool_t *p)
{
    json_t *dir = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
    json_t *j = NULL;
    apr_status_t rv;

    /* Room for the URL and the time: what is written can always be read back. */
    if (!json_is_object(dir) || strlen(ca_url) > CADIR_URL_MAX ||
        strlen(json) > ACME_CADIR_SIZE_MAX - CADIR_URL_MAX - 100) {
        json_decref(dir);
        return APR_EINVAL;
    }
    j = json_pack("{s:s, s:I, s:o}", "url", ca_url, "fetched", (json_int_t)apr_time_sec(now),
                  "directory", dir);
    if (!j) {
        return APR_ENOMEM;
    }
    rv = acme_store_json_write(store, cadir_path(ca_url, p), j, p);
    json_decref(j);
    return rv;
}

apr_status_t acme_cadir_forget(acme_store_t *store, const char *ca_url, apr_pool_t *p)
{
    return acme_store_remove(store, cadir_path(ca_url, p), p);
}
