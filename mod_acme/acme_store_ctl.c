/* acme_store_ctl.c - renewal requests, owner-keeping writes and the driver's lock, for the
 * operator's tool and the renewal driver (acme_store_ctl.h). A file of the store family: it
 * walks the store with the folder-descriptor operations of acme_store_walk.c, so that root
 * never follows what the User put in its folders. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <apr_atomic.h>
#include <apr_strings.h>

#include "acme_store_ctl.h"
#include "acme_store_int.h"

static const char *const reasons[] = {"operator", "revoked", NULL};

const char *acme_renew_request_path(const char *name, apr_pool_t *p)
{
    if (!name || !acme_store_name_ok(name)) {
        return NULL;
    }
    return apr_pstrcat(p, "jobs/", name, ".renew", NULL);
}

int acme_renew_reason_ok(const char *reason)
{
    int i;

    for (i = 0; reason && reasons[i]; i++) {
        if (strcmp(reason, reasons[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static mode_t unix_mode(apr_fileperms_t perms)
{
    mode_t mode = 0;

    mode |= (perms & APR_FPROT_UREAD) ? S_IRUSR : 0;
    mode |= (perms & APR_FPROT_UWRITE) ? S_IWUSR : 0;
    mode |= (perms & APR_FPROT_GREAD) ? S_IRGRP : 0;
    mode |= (perms & APR_FPROT_GWRITE) ? S_IWGRP : 0;
    mode |= (perms & APR_FPROT_WREAD) ? S_IROTH : 0;
    mode |= (perms & APR_FPROT_WWRITE) ? S_IWOTH : 0;
    return mode;
}

static void split(const char **pdir, const char **pname, const char *relpath, apr_pool_t *p)
{
    const char *slash = strrchr(relpath, '/');

    *pdir = slash ? apr_pstrmemdup(p, relpath, (apr_size_t)(slash - relpath)) : "";
    *pname = slash ? slash + 1 : relpath;
}

apr_status_t acme_store_write_owned(acme_store_t *store, const char *relpath, const void *data,
                                    apr_size_t len, apr_fileperms_t perms, apr_pool_t *p)
{
    const mode_t mode = unix_mode(perms);
    const char *dir, *name, *tmp = NULL, *s = data;
    struct stat st;
    apr_size_t done = 0;
    ssize_t n;
    int dfd = -1, fd = -1;
    apr_status_t rv;

    if (!acme_store_relpath_ok(relpath)) {
        rv = APR_EINVAL;
        goto out;
    }
    split(&dir, &name, relpath, p);
    rv = acme_store_dir_open(&dfd, store, dir, 0, NULL, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    if (fstat(dfd, &st) != 0) {
        rv = acme_store_os_error();
        goto out;
    }
    acme_store_step(store, "open");
    tmp =
        apr_psprintf(p, ".%s.tmp.%ld.%u", name, (long)getpid(), apr_atomic_inc32(&store->counter));
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        rv = acme_store_os_error();
        tmp = NULL; /* not ours to remove */
        goto out;
    }
    /* The folder's owner before the name exists: the User never sees a file of root's in its
     * folder that it cannot read. Not root: the file is ours already (or the folder's owner
     * could not be given it, which the check below reports). */
    if ((geteuid() == 0 && fchown(fd, st.st_uid, st.st_gid) != 0) || fchmod(fd, mode) != 0) {
        rv = acme_store_os_error();
        goto out;
    }
    acme_store_step(store, "write");
    while (done < len) {
        n = write(fd, s + done, len - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rv = n < 0 ? acme_store_os_error() : APR_EGENERAL;
            goto out;
        }
        done += (apr_size_t)n;
    }
    acme_store_step(store, "fsync");
    if (fsync(fd) != 0) {
        rv = acme_store_os_error();
        goto out;
    }
    n = close(fd);
    fd = -1;
    if (n != 0) {
        rv = acme_store_os_error();
        goto out;
    }
    acme_store_step(store, "rename");
    if (renameat(dfd, tmp, dfd, name) != 0) {
        rv = acme_store_os_error();
        goto out;
    }
    tmp = NULL;
    acme_store_step(store, "dirsync");
    rv = acme_store_sync_fd(dfd);
out:
    acme_store_close(&fd);
    if (tmp) {
        unlinkat(dfd, tmp, 0);
    }
    acme_store_close(&dfd);
    return rv;
}

apr_status_t acme_renew_request_write(acme_store_t *store, const char *name, const char *reason,
                                      apr_time_t now, apr_pool_t *p)
{
    const char *path = acme_renew_request_path(name, p);
    json_t *j;
    char *text = NULL;
    apr_status_t rv;

    if (!path || !acme_renew_reason_ok(reason)) {
        return APR_EINVAL;
    }
    j = acme_json_pool(
        p, json_pack("{s:I,s:s}", "requested", (json_int_t)apr_time_sec(now), "reason", reason));
    text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (!text) {
        return APR_ENOMEM;
    }
    /* Readable by the User (the driver); removable by it, since jobs/ is its folder. */
    rv = acme_store_write_owned(
        store, path, text, strlen(text),
        APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD | APR_FPROT_WREAD, p);
    free(text);
    return rv;
}

apr_status_t acme_renew_request_read(acme_renew_request_t **preq, acme_store_t *store,
                                     const char *name, apr_pool_t *p)
{
    const char *path = acme_renew_request_path(name, p);
    acme_renew_request_t *req;
    json_t *j = NULL, *t;
    char *data;
    apr_size_t len;
    apr_status_t rv;

    if (!path) {
        return APR_EINVAL;
    }
    rv = acme_store_read(&data, &len, store, path, ACME_RENEW_REQUEST_MAX, p);
    if (rv == ACME_ETOOLARGE) {
        rv = ACME_EBADSTORE;
    }
    if (rv == APR_SUCCESS) {
        rv = acme_store_parse_object(&j, data, len, p);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    t = json_object_get(j, "requested");
    if (!json_is_integer(t) || json_integer_value(t) < 0 ||
        json_integer_value(t) > APR_INT64_C(253402300799) /* 9999-12-31 */ ||
        !acme_renew_reason_ok(acme_json_str(j, "reason"))) {
        return ACME_EBADSTORE;
    }
    req = apr_pcalloc(p, sizeof(*req));
    req->time = apr_time_from_sec(json_integer_value(t));
    req->reason = apr_pstrdup(p, acme_json_str(j, "reason"));
    *preq = req;
    return APR_SUCCESS;
}

int acme_renew_requested(acme_store_t *store, const char *name, apr_pool_t *p)
{
    acme_renew_request_t *req;

    return acme_renew_request_read(&req, store, name, p) == APR_SUCCESS;
}

apr_status_t acme_renew_request_clear(acme_store_t *store, const char *name, apr_pool_t *p)
{
    const char *path = acme_renew_request_path(name, p);

    return path ? acme_store_remove(store, path, p) : APR_EINVAL;
}

apr_status_t acme_store_list(apr_array_header_t **pnames, acme_store_t *store, const char *reldir,
                             apr_pool_t *p)
{
    int dfd = -1;
    apr_status_t rv;

    rv = acme_store_dir_open(&dfd, store, reldir, 0, NULL, p);
    if (rv == APR_SUCCESS) {
        rv = acme_store_list_at(pnames, dfd, p);
    }
    acme_store_close(&dfd);
    return rv;
}

/* Opens jobs/driver.lock without following a link; with create, makes it owned like jobs/. */
static apr_status_t lock_open(int *pfd, acme_store_t *store, int create, apr_pool_t *p)
{
    struct stat st;
    int dfd = -1, fd = -1;
    apr_status_t rv;

    rv = acme_store_dir_open(&dfd, store, "jobs", 0, NULL, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    fd = openat(dfd, "driver.lock", O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        fd = openat(dfd, "driver.lock", O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    S_IRUSR | S_IWUSR);
        if (fd >= 0 && geteuid() == 0 &&
            (fstat(dfd, &st) != 0 || fchown(fd, st.st_uid, st.st_gid) != 0)) {
            rv = acme_store_os_error();
            unlinkat(dfd, "driver.lock", 0);
            goto out;
        }
    }
    if (fd < 0) {
        rv = errno == ELOOP ? ACME_EBADSTORE : acme_store_os_error();
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rv = ACME_EBADSTORE;
        goto out;
    }
    *pfd = fd;
    fd = -1;
out:
    acme_store_close(&fd);
    acme_store_close(&dfd);
    return rv;
}

/* The driver locks with apr_file_lock, which is fcntl() record locking on this platform (APR
 * prefers it over flock()): the same kind here, or the two would not see each other. */
apr_status_t acme_store_driver_holder(pid_t *ppid, acme_store_t *store, apr_pool_t *p)
{
    struct flock l;
    int fd = -1;
    apr_status_t rv;

    rv = lock_open(&fd, store, 0, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    memset(&l, 0, sizeof(l));
    l.l_type = F_WRLCK;
    l.l_whence = SEEK_SET;
    if (fcntl(fd, F_GETLK, &l) != 0) {
        rv = acme_store_os_error();
        goto out;
    }
    if (l.l_type == F_UNLCK) {
        rv = APR_ENOENT;
        goto out;
    }
    *ppid = l.l_pid;
out:
    acme_store_close(&fd);
    return rv;
}

apr_status_t acme_store_driver_lock(int *pfd, pid_t *ppid, acme_store_t *store, apr_pool_t *p)
{
    struct flock l;
    int fd = -1;
    apr_status_t rv;

    rv = lock_open(&fd, store, 1, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    memset(&l, 0, sizeof(l));
    l.l_type = F_WRLCK;
    l.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &l) != 0) {
        rv = (errno == EACCES || errno == EAGAIN) ? APR_EAGAIN : acme_store_os_error();
        if (rv == APR_EAGAIN && fcntl(fd, F_GETLK, &l) == 0 && l.l_type != F_UNLCK) {
            *ppid = l.l_pid;
        } else if (rv == APR_EAGAIN) {
            *ppid = 0;
        }
        goto out;
    }
    *pfd = fd;
    fd = -1;
out:
    acme_store_close(&fd);
    return rv;
}
