/* acme_cadir.h - a CA's directory kept in the store between server generations, so that a
 * generation with nothing to ask the CA does not fetch it again (and one with work saves the
 * request): jobs/<ca-id>.directory, written by the renewal driver (the User) when a worker has
 * fetched the directory, read when a worker needs it and none is in memory.
 *
 * The file is the User's (hostile to root, which never reads it). What it holds is checked like
 * a directory from the network (acme_client_seed_directory) and bounded; it is trusted for
 * ACME_CADIR_MAX_AGE after it was fetched, so that a CA's changed directory is seen within a
 * day even when no request fails. Called from the driver's worker threads (one store, any
 * thread: every call is one file operation).
 */
#ifndef ACME_CADIR_H
#define ACME_CADIR_H

#include "acme_store.h"

#define ACME_CADIR_MAX_AGE                                                                         \
    apr_time_from_sec(24 * 3600)        /* a kept directory is fetched again after */
#define ACME_CADIR_SIZE_MAX (64 * 1024) /* larger files are not read */

/* The directory of the CA at ca_url as JSON text, when jobs/<ca-id>.directory holds one for this
 * very URL fetched at most ACME_CADIR_MAX_AGE before now (and not after now, with a minute of
 * slack). *page: how long ago it was fetched. APR_ENOENT when there is none or it is too old;
 * ACME_EBADSTORE when the file is not one we wrote (it is then ignored and overwritten by the
 * next fetch). */
apr_status_t acme_cadir_load(const char **pjson, apr_interval_time_t *page, acme_store_t *store,
                             const char *ca_url, apr_time_t now, apr_pool_t *p);

/* Keeps json (a directory the client accepted) as fetched at now. */
apr_status_t acme_cadir_save(acme_store_t *store, const char *ca_url, const char *json,
                             apr_time_t now, apr_pool_t *p);

/* Forgets the kept directory (the CA's answers did not fit it); missing is success. */
apr_status_t acme_cadir_forget(acme_store_t *store, const char *ca_url, apr_pool_t *p);

#endif /* ACME_CADIR_H */
