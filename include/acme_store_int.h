/* acme_store_int.h - PRIVATE to acme_store*.c; no other file may include it. What the store's
 * files share: the store object, the crash hook call, and the folder-descriptor operations of
 * acme_store_walk.c (atomic writes, bounded reads, listing, removal). Everyone else uses the API
 * of acme_store.h. */
#ifndef ACME_STORE_INT_H
#define ACME_STORE_INT_H

#include <errno.h>
#include <unistd.h>

#include <apr_errno.h>
#include <apr_file_info.h>
#include <apr_tables.h>

#include "acme_store.h"

/* Longest name we accept as one path component (NAME_MAX on the systems we run on). */
#define NAME_LEN_MAX 255

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

/* Closes *pfd when open and marks it closed. */
static inline void acme_store_close(int *pfd)
{
    if (*pfd >= 0) {
        close(*pfd);
        *pfd = -1;
    }
}

/* Every operation below works from an open folder (a descriptor) and never follows a symlink
 * below the store's top: the parent runs as root, and accounts/, staging/ and jobs/ belong to
 * the server's User, who could otherwise swap a folder for a link to another service's files
 * between a check and a use. The caller closes the descriptors it gets. */

/* 1 for a relative path inside the store: no leading '/', no empty, "." or ".." component. */
int acme_store_relpath_ok(const char *relpath);

/* Opens dir, the store's top: the operator's path (ACMEStoreDir), followed as given. -1 and errno
 * on failure. */
int acme_store_open_top(const char *dir);

/* Opens the folder reldir of the store (NULL or "": the top) one component at a time from the
 * top, each with O_NOFOLLOW | O_DIRECTORY; with create, missing folders are made 0700. A symlink
 * or anything but a folder on the way gives ACME_EBADSTORE and *pwhy (may be NULL) names it,
 * e.g. "staging/a.test is a symbolic link". APR_ENOENT when a folder is missing. */
apr_status_t acme_store_dir_open(int *pfd, const acme_store_t *store, const char *reldir,
                                 int create, const char **pwhy, apr_pool_t *p);

/* The same for the one folder name below the open folder dirfd; what names dirfd in *pwhy. */
apr_status_t acme_store_subdir_open(int *pfd, int dirfd, const char *what, const char *name,
                                    int create, const char **pwhy, apr_pool_t *p);

/* fsync of an open folder, so that renames and unlinks in it survive a crash. */
apr_status_t acme_store_sync_fd(int dirfd);

/* The names in the open folder dirfd, without "." and "..". */
apr_status_t acme_store_list_at(apr_array_header_t **pnames, int dirfd, apr_pool_t *p);

/* The names in dirfd for which match(name, baton) is 1: only those are kept, so that a look
 * for a few entries in a folder of N (domains/, staging/) costs no memory per entry. Promotion
 * looks for its leftovers in domains/ once per set: listing every entry there cost O(N) memory
 * per set, O(N^2) for a start that activates N sets (docs/performance.md). */
typedef int acme_store_match_fn(const char *name, const void *baton);
apr_status_t acme_store_list_matching_at(apr_array_header_t **pnames, int dirfd,
                                         acme_store_match_fn *match, const void *baton,
                                         apr_pool_t *p);

/* Removes name below dirfd and everything below it, never following symlinks, whatever the
 * depth of the tree; missing is success. */
apr_status_t acme_store_remove_at(int dirfd, const char *name, apr_pool_t *p);

/* Atomic write of name in the open folder dirfd (temp file beside it, fsync, rename, folder
 * fsync); the hook sees "open", "write", "fsync", "rename", "dirsync". */
apr_status_t acme_store_write_at(acme_store_t *store, int dirfd, const char *name, const void *data,
                                 apr_size_t len, apr_fileperms_t perms, apr_pool_t *p);
/* The same, the new file given to uid:gid before it gets its name (uid (uid_t)-1: not changed). */
apr_status_t acme_store_write_at_as(acme_store_t *store, int dirfd, const char *name,
                                    const void *data, apr_size_t len, apr_fileperms_t perms,
                                    uid_t uid, gid_t gid, apr_pool_t *p);

/* 1 when s is the prefix in baton followed by one or more characters of [0-9-]: a leftover of a
 * crashed run, or a refused set moved aside (acme_store_set.c). For acme_store_list_matching_at. */
int acme_store_is_leftover(const char *s, const void *baton);

/* The same; sync 0 leaves out both fsyncs: after a crash the file may be missing, empty or
 * torn, which only a file its reader checks and makes anew may accept (acme_store_write_volatile).
 * ACME_SYNC_FILE_ONLY syncs the file but not dirfd: for a folder the caller syncs once after
 * writing all of its files, before its name appears (place_set). */
#define ACME_SYNC_FILE_ONLY 2
apr_status_t acme_store_write_at_opt(acme_store_t *store, int dirfd, const char *name,
                                     const void *data, apr_size_t len, apr_fileperms_t perms,
                                     uid_t uid, gid_t gid, int sync, apr_pool_t *p);

/* Reads at most max bytes of name in the open folder dirfd, NUL-terminated; ACME_ETOOLARGE over
 * max, ACME_EBADSTORE for anything but a regular file with one name. */
apr_status_t acme_store_read_at(char **pdata, apr_size_t *plen, int dirfd, const char *name,
                                apr_size_t max, apr_pool_t *p);

/* The same, with the identity of the file read (pid may be NULL). */
apr_status_t acme_store_read_at_id(char **pdata, apr_size_t *plen, acme_store_file_id_t *pid,
                                   int dirfd, const char *name, apr_size_t max, apr_pool_t *p);

/* Parses a JSON object of the store into p; ACME_EBADSTORE for anything else. */
apr_status_t acme_store_parse_object(json_t **pjson, const char *data, apr_size_t len,
                                     apr_pool_t *p);

#endif /* ACME_STORE_INT_H */
