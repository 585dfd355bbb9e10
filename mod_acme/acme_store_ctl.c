/* acme_store_ctl.c - renewal requests, owner-keeping writes and the driver's lock, for the
 * operator's tool and the renewal driver (acme_store_ctl.h). A file of the store family: it
 * walks the store with the folder-descriptor operations of acme_store_walk.c, so that root
 * never follows what the User put in its folders. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <apr_atomic.h>
#include <apr_file_io.h>
#include <apr_portable.h>
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

static void split(const char **pdir, const char **pname, const char *relpath, apr_pool_t *p)
{
    const char *slash = strrchr(relpath, '/');

    *pdir = slash ? apr_pstrmemdup(p, relpath, (apr_size_t)(slash - relpath)) : "";
    *pname = slash ? slash + 1 : relpath;
}

apr_status_t acme_store_write_owned(acme_store_t *store, const char *relpath, const void *data,
                                    apr_size_t len, apr_fileperms_t perms, apr_pool_t *p)
{
    const char *dir, *name;
    struct stat st;
    int dfd = -1;
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
    /* The folder's owner before the name exists: the User never sees a file of root's in its
     * folder that it cannot read. Not root: the file is ours already. */
    rv = acme_store_write_at_as(store, dfd, name, data, len, perms,
                                geteuid() == 0 ? st.st_uid : (uid_t)-1, st.st_gid, p);
out:
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

int acme_renew_requests_maybe(acme_renew_watch_t *w, acme_store_t *store, apr_time_t now,
                              apr_pool_t *p)
{
    apr_array_header_t *names = NULL;
    struct stat st;
    apr_time_t mtime;
    int dfd = -1, i;
    static const char suffix[] = ".renew";

    if (acme_store_dir_open(&dfd, store, "jobs", 0, NULL, p) != APR_SUCCESS ||
        fstat(dfd, &st) != 0) {
        acme_store_close(&dfd);
        w->listed = 0;
        return 1;
    }
    mtime = apr_time_from_sec(st.st_mtim.tv_sec) + st.st_mtim.tv_nsec / 1000;
    if (w->listed && mtime == w->mtime && now - mtime >= ACME_RENEW_WATCH_FRESH && mtime <= now &&
        now - w->listed < ACME_RENEW_WATCH_MAX && now >= w->listed) {
        acme_store_close(&dfd);
        return w->any;
    }
    if (acme_store_list_at(&names, dfd, p) != APR_SUCCESS) {
        acme_store_close(&dfd);
        w->listed = 0;
        return 1;
    }
    acme_store_close(&dfd);
    w->mtime = mtime;
    w->listed = now;
    w->any = 0;
    for (i = 0; i < names->nelts && !w->any; i++) {
        const char *n = APR_ARRAY_IDX(names, i, const char *);
        apr_size_t len = strlen(n);
        w->any = len > sizeof(suffix) - 1 && strcmp(n + len - (sizeof(suffix) - 1), suffix) == 0;
    }
    return w->any;
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

/* Who holds the lock on the file fd names, from /proc/locks (Linux); 0 when not found. */
static pid_t lock_holder(int fd)
{
    struct stat st;
    char line[256], want[64];
    pid_t pid = 0;
    FILE *f;

    if (fstat(fd, &st) != 0) {
        return 0;
    }
    snprintf(want, sizeof(want), "%02x:%02x:%lu", major(st.st_dev), minor(st.st_dev),
             (unsigned long)st.st_ino);
    f = fopen("/proc/locks", "r");
    while (f && !pid && fgets(line, sizeof(line), f)) {
        char kind[16], mode[16], rw[16], dev[64];
        long p;

        /* "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"; waiters have "->" */
        if (!strstr(line, "->") &&
            sscanf(line, "%*s %15s %15s %15s %ld %63s", kind, mode, rw, &p, dev) == 5 &&
            strcmp(dev, want) == 0) {
            pid = (pid_t)p;
        }
    }
    if (f) {
        fclose(f);
    }
    return pid;
}

/* The driver locks with apr_file_lock: so does this, through the same APR, so that both use
 * the same kind of lock (flock() or fcntl(), as APR was built). A look is a lock taken and
 * let go at once: a driver that tries in that instant tries again at its next tick. */
static apr_status_t lock_take(int *pfd, pid_t *ppid, acme_store_t *store, int create, apr_pool_t *p)
{
    apr_file_t *file = NULL;
    apr_os_file_t ofd;
    int fd = -1;
    apr_status_t rv;

    rv = lock_open(&fd, store, create, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    ofd = fd;
    rv = apr_os_file_put(&file, &ofd, APR_FOPEN_READ | APR_FOPEN_WRITE, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = apr_file_lock(file, APR_FLOCK_EXCLUSIVE | APR_FLOCK_NONBLOCK);
    if (rv != APR_SUCCESS) {
        if (APR_STATUS_IS_EAGAIN(rv) || rv == APR_FROM_OS_ERROR(EACCES) ||
            rv == APR_FROM_OS_ERROR(EWOULDBLOCK)) {
            rv = APR_EAGAIN;
            *ppid = lock_holder(fd);
        }
        goto out;
    }
    *pfd = fd;
    fd = -1;
out:
    acme_store_close(&fd);
    return rv;
}

apr_status_t acme_store_driver_holder(pid_t *ppid, acme_store_t *store, apr_pool_t *p)
{
    int fd = -1;
    pid_t pid = 0;
    apr_status_t rv;

    rv = lock_take(&fd, &pid, store, 0, p);
    if (rv == APR_SUCCESS) {
        acme_store_close(&fd); /* free: nobody holds it */
        return APR_ENOENT;
    }
    if (rv == APR_EAGAIN) {
        *ppid = pid;
        return APR_SUCCESS;
    }
    return rv;
}

apr_status_t acme_store_driver_lock(int *pfd, pid_t *ppid, acme_store_t *store, apr_pool_t *p)
{
    pid_t pid = 0;
    apr_status_t rv;

    rv = lock_take(pfd, &pid, store, 1, p);
    if (rv == APR_EAGAIN) {
        *ppid = pid;
    }
    return rv;
}
