/* acme_store_int.h - PRIVATE to acme_store*.c; no other file may include it. What the certificate
 * sets of acme_store_set.c need from the file layer of acme_store.c: the store object, the crash
 * hook call, and the atomic, bounded and directory operations on absolute paths. Everyone else
 * uses the API of acme_store.h. */
#ifndef ACME_STORE_INT_H
#define ACME_STORE_INT_H

#include <errno.h>

#include <apr_errno.h>
#include <apr_file_info.h>
#include <apr_tables.h>

#include "acme_store.h"

#define PERMS_DIR    (APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_UEXECUTE)
#define PERMS_SECRET (APR_FPROT_UREAD | APR_FPROT_UWRITE)
#define PERMS_PUBLIC (APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD | APR_FPROT_WREAD)

struct acme_store_t {
    const char *dir;
    acme_store_step_fn *step_fn;
    void *step_baton;
    volatile apr_uint32_t counter; /* makes temp file names unique between threads */
};

/* Calls the crash-test hook, if any, before the step named. */
static inline void acme_store_step(const acme_store_t *store, const char *name)
{
    if (store->step_fn) {
        store->step_fn(store->step_baton, name);
    }
}

static inline apr_status_t acme_store_os_error(void)
{
    return APR_FROM_OS_ERROR(errno);
}

/* fsync of a folder, so that renames and unlinks in it survive a crash. */
apr_status_t acme_store_sync_dir(const char *dir);

/* Creates path and its missing parents with 0700 whatever the umask. */
apr_status_t acme_store_make_dirs(const char *path, apr_pool_t *p);

/* The names in dir, without "." and "..". */
apr_status_t acme_store_list_dir(apr_array_header_t **pnames, const char *dir, apr_pool_t *p);

/* Removes path and everything below it, never following symlinks; missing is success. */
apr_status_t acme_store_remove_tree(const char *path, apr_pool_t *p);

/* Atomic write of the absolute path (temp file in its folder, fsync, rename, folder fsync); the
 * hook sees "open", "write", "fsync", "rename", "dirsync". */
apr_status_t acme_store_write_atomic(acme_store_t *store, const char *path, const void *data,
                                     apr_size_t len, apr_fileperms_t perms, apr_pool_t *p);

/* Reads at most max bytes of the absolute path, NUL-terminated; ACME_ETOOLARGE over max,
 * ACME_EBADSTORE for anything but a regular file. */
apr_status_t acme_store_read_bounded(char **pdata, apr_size_t *plen, const char *path,
                                     apr_size_t max, apr_pool_t *p);

/* Parses a JSON object of the store into p; ACME_EBADSTORE for anything else. */
apr_status_t acme_store_parse_object(json_t **pjson, const char *data, apr_size_t len,
                                     apr_pool_t *p);

#endif /* ACME_STORE_INT_H */
