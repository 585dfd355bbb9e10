/* acme_store_walk.c - the store's file operations on open folders: walking a path one folder at
 * a time from the top without following links, listing, removal of a tree of any depth, atomic
 * writes and bounded reads. The parent runs as root and works in folders the server's User owns
 * (accounts/, staging/, jobs/); a path resolved by name would follow whatever link the User swaps
 * in, a descriptor walked with O_NOFOLLOW cannot. The API on store-relative paths is in
 * acme_store.c, certificate sets in acme_store_set.c. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_file_io.h>
#include <apr_portable.h>
#include <apr_strings.h>

#include "acme_store_int.h"

/* Removal descends this deep at most; a folder found deeper is moved up to the top of the tree
 * and removed by a later pass. So root holds at most this many descriptors, and a tree planted
 * deeper than any limit is removed all the same instead of failing half done. */
#define REMOVE_DEPTH 16
/* Passes over one tree before removal gives up: each moves what lies deeper than REMOVE_DEPTH
 * up, so a User who keeps adding folders while root removes them cannot hold root forever. */
#define REMOVE_PASSES_MAX 100000

/* Unix mode bits of APR permissions (APR keeps its own conversion private). */
static mode_t perms_mode(apr_fileperms_t perms)
{
    static const struct {
        apr_fileperms_t apr;
        mode_t unix_bit;
    } map[] = {
        {APR_FPROT_UREAD, S_IRUSR}, {APR_FPROT_UWRITE, S_IWUSR}, {APR_FPROT_UEXECUTE, S_IXUSR},
        {APR_FPROT_GREAD, S_IRGRP}, {APR_FPROT_GWRITE, S_IWGRP}, {APR_FPROT_GEXECUTE, S_IXGRP},
        {APR_FPROT_WREAD, S_IROTH}, {APR_FPROT_WWRITE, S_IWOTH}, {APR_FPROT_WEXECUTE, S_IXOTH},
    };
    mode_t mode = 0;
    size_t i;

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (perms & map[i].apr) {
            mode |= map[i].unix_bit;
        }
    }
    return mode;
}

int acme_store_relpath_ok(const char *relpath)
{
    const char *s = relpath, *end;
    apr_size_t n;

    if (!s || *s == '\0' || *s == '/') {
        return 0;
    }
    for (;;) {
        end = strchr(s, '/');
        n = end ? (apr_size_t)(end - s) : strlen(s);
        if (n == 0 || n > NAME_LEN_MAX || (n == 1 && s[0] == '.') ||
            (n == 2 && s[0] == '.' && s[1] == '.')) {
            return 0;
        }
        if (!end) {
            return 1;
        }
        s = end + 1;
    }
}

/* One path component: what openat may take without leaving the folder. */
static int component_ok(const char *name)
{
    return name && *name && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* The child runs as the User, for whom the top is 0711 (pass, not list): then a descriptor that
 * only searches, which is all a walk needs to go on to the User's folders. */
int acme_store_open_top(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

#ifdef O_PATH
    if (fd < 0 && errno == EACCES) {
        fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
#endif
    return fd;
}

apr_status_t acme_store_subdir_open(int *pfd, int dirfd, const char *what, const char *name,
                                    int create, const char **pwhy, apr_pool_t *p)
{
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    struct stat st;
    int fd, made = 0, err;
    apr_status_t rv = APR_SUCCESS;

    if (!component_ok(name)) {
        rv = APR_EINVAL;
        goto out;
    }
    fd = openat(dirfd, name, flags);
    if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(dirfd, name, 0700) == 0) {
            made = 1;
        } else if (errno != EEXIST) {
            rv = acme_store_os_error();
            goto out;
        }
        fd = openat(dirfd, name, flags);
    }
    if (fd < 0) {
        err = errno;
        rv = APR_FROM_OS_ERROR(err);
        /* O_NOFOLLOW gives ELOOP for a link, O_DIRECTORY ENOTDIR for anything else. */
        if (err == ELOOP || err == ENOTDIR) {
            const char *shown = what && *what ? apr_pstrcat(p, what, "/", name, NULL) : name;
            int link = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
            if (pwhy) {
                *pwhy = apr_psprintf(p, "%s is %s", shown,
                                     link ? "a symbolic link, which the store never follows"
                                          : "not a folder");
            }
            rv = ACME_EBADSTORE;
        }
        goto out;
    }
    /* mkdir's mode went through the umask; the store's folders are 0700 whatever it is. */
    if (made && fchmod(fd, 0700) != 0) {
        rv = acme_store_os_error();
        close(fd);
        goto out;
    }
    *pfd = fd;
out:
    return rv;
}

apr_status_t acme_store_dir_open(int *pfd, const acme_store_t *store, const char *reldir,
                                 int create, const char **pwhy, apr_pool_t *p)
{
    const char *s = reldir, *end, *name, *shown = NULL;
    int fd = -1, next = -1;
    apr_status_t rv = APR_SUCCESS;

    if (reldir && *reldir && !acme_store_relpath_ok(reldir)) {
        rv = APR_EINVAL;
        goto out;
    }
    /* Its owner was checked when the store was opened (acme_store_check_owner). */
    fd = acme_store_open_top(store->dir);
    if (fd < 0) {
        rv = acme_store_os_error();
        goto out;
    }
    while (s && *s) {
        end = strchr(s, '/');
        name = end ? apr_pstrmemdup(p, s, (apr_size_t)(end - s)) : s;
        rv = acme_store_subdir_open(&next, fd, shown, name, create, pwhy, p);
        if (rv != APR_SUCCESS) {
            goto out;
        }
        acme_store_close(&fd);
        fd = next;
        shown = end ? apr_pstrmemdup(p, reldir, (apr_size_t)(end - reldir)) : reldir;
        s = end ? end + 1 : NULL;
    }
    *pfd = fd;
    fd = -1;
out:
    acme_store_close(&fd);
    return rv;
}

apr_status_t acme_store_sync_fd(int dirfd)
{
    /* A rename or unlink only survives a crash once the folder holding the entry is synced. */
    return fsync(dirfd) == 0 ? APR_SUCCESS : acme_store_os_error();
}

apr_status_t acme_store_list_at(apr_array_header_t **pnames, int dirfd, apr_pool_t *p)
{
    return acme_store_list_matching_at(pnames, dirfd, NULL, NULL, p);
}

apr_status_t acme_store_list_matching_at(apr_array_header_t **pnames, int dirfd,
                                         acme_store_match_fn *match, const void *baton,
                                         apr_pool_t *p)
{
    apr_array_header_t *names = apr_array_make(p, 8, sizeof(const char *));
    struct dirent *e;
    DIR *d = NULL;
    int fd;
    apr_status_t rv = APR_SUCCESS;

    /* fdopendir takes the descriptor it is given: a second one on the same folder. */
    fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rv = acme_store_os_error();
        goto out;
    }
    d = fdopendir(fd);
    if (!d) {
        rv = acme_store_os_error();
        close(fd);
        goto out;
    }
    for (;;) {
        errno = 0;
        e = readdir(d);
        if (!e) {
            rv = errno ? acme_store_os_error() : APR_SUCCESS;
            break;
        }
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            (!match || match(e->d_name, baton))) {
            APR_ARRAY_PUSH(names, const char *) = apr_pstrdup(p, e->d_name);
        }
    }
    if (rv == APR_SUCCESS) {
        *pnames = names;
    }
out:
    if (d) {
        closedir(d);
    }
    return rv;
}

/* A removal in progress: the top folder of the tree, where folders found too deep are moved. */
typedef struct remove_t {
    int top;
    apr_uint32_t moved;  /* folders moved up in this pass */
    apr_uint32_t serial; /* for their new names */
} remove_t;

static apr_status_t empty_dir(remove_t *rm, int fd, int depth, apr_pool_t *p);

/* Moves the folder name below fd to the top of the tree, under a name no entry there has. */
static apr_status_t move_up(remove_t *rm, int fd, const char *name)
{
    char to[32];
    int tries;

    for (tries = 0; tries < 1000; tries++) {
        apr_snprintf(to, sizeof(to), ".rm-%u", rm->serial++);
        if (renameat(fd, name, rm->top, to) == 0) {
            rm->moved++;
            return APR_SUCCESS;
        }
        /* A name taken by a folder that is not empty, or by a file. */
        if (errno != EEXIST && errno != ENOTEMPTY && errno != ENOTDIR && errno != EISDIR) {
            break;
        }
    }
    return acme_store_os_error();
}

/* Removes name below fd, depth levels under the top of the tree, never following a link: the
 * tree may be the User's, who can swap any folder for a link while root works in it. */
static apr_status_t remove_entry(remove_t *rm, int fd, const char *name, int depth, apr_pool_t *p)
{
    struct stat st;
    int sub;
    apr_status_t rv;

    if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return errno == ENOENT ? APR_SUCCESS : acme_store_os_error();
    }
    if (!S_ISDIR(st.st_mode)) {
        return unlinkat(fd, name, 0) == 0 || errno == ENOENT ? APR_SUCCESS : acme_store_os_error();
    }
    if (depth >= REMOVE_DEPTH) {
        return move_up(rm, fd, name);
    }
    sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
        if (errno == ELOOP || errno == ENOTDIR) { /* swapped since the stat: not a folder now */
            return unlinkat(fd, name, 0) == 0 || errno == ENOENT ? APR_SUCCESS
                                                                 : acme_store_os_error();
        }
        return errno == ENOENT ? APR_SUCCESS : acme_store_os_error();
    }
    rv = empty_dir(rm, sub, depth + 1, p);
    close(sub);
    if (rv == APR_SUCCESS && unlinkat(fd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
        rv = acme_store_os_error();
    }
    return rv;
}

/* Removes every entry of the folder fd; names are collected before anything is removed. */
static apr_status_t empty_dir(remove_t *rm, int fd, int depth, apr_pool_t *p)
{
    apr_array_header_t *names;
    apr_pool_t *sub;
    int i;
    apr_status_t rv;

    rv = apr_pool_create(&sub, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = acme_store_list_at(&names, fd, sub);
    for (i = 0; rv == APR_SUCCESS && i < names->nelts; i++) {
        rv = remove_entry(rm, fd, APR_ARRAY_IDX(names, i, const char *), depth, sub);
    }
    apr_pool_destroy(sub);
    return rv;
}

apr_status_t acme_store_remove_at(int dirfd, const char *name, apr_pool_t *p)
{
    remove_t rm = {-1, 0, 0};
    struct stat st;
    int pass;
    apr_status_t rv = APR_SUCCESS;

    if (!component_ok(name)) {
        rv = APR_EINVAL;
        goto out;
    }
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        rv = errno == ENOENT ? APR_SUCCESS : acme_store_os_error();
        goto out;
    }
    if (!S_ISDIR(st.st_mode)) {
        rv = unlinkat(dirfd, name, 0) == 0 || errno == ENOENT ? APR_SUCCESS : acme_store_os_error();
        goto out;
    }
    rm.top = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rm.top < 0) {
        if (errno == ELOOP || errno == ENOTDIR) {
            rv = unlinkat(dirfd, name, 0) == 0 || errno == ENOENT ? APR_SUCCESS
                                                                  : acme_store_os_error();
        } else {
            rv = errno == ENOENT ? APR_SUCCESS : acme_store_os_error();
        }
        goto out;
    }
    /* Each pass removes what lies at most REMOVE_DEPTH deep and moves deeper folders up. */
    for (pass = 0;; pass++) {
        rm.moved = 0;
        rv = empty_dir(&rm, rm.top, 1, p);
        if (rv != APR_SUCCESS || rm.moved == 0) {
            break;
        }
        if (pass >= REMOVE_PASSES_MAX) {
            rv = ACME_EBADSTORE;
            break;
        }
    }
    if (rv == APR_SUCCESS && unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
        rv = acme_store_os_error();
    }
out:
    acme_store_close(&rm.top);
    return rv;
}

apr_status_t acme_store_write_at(acme_store_t *store, int dirfd, const char *name, const void *data,
                                 apr_size_t len, apr_fileperms_t perms, apr_pool_t *p)
{
    return acme_store_write_at_as(store, dirfd, name, data, len, perms, (uid_t)-1, (gid_t)-1, p);
}

apr_status_t acme_store_write_at_as(acme_store_t *store, int dirfd, const char *name,
                                    const void *data, apr_size_t len, apr_fileperms_t perms,
                                    uid_t uid, gid_t gid, apr_pool_t *p)
{
    return acme_store_write_at_opt(store, dirfd, name, data, len, perms, uid, gid, 1, p);
}

apr_status_t acme_store_write_at_opt(acme_store_t *store, int dirfd, const char *name,
                                     const void *data, apr_size_t len, apr_fileperms_t perms,
                                     uid_t uid, gid_t gid, int sync, apr_pool_t *p)
{
    const mode_t mode = perms_mode(perms);
    const char *tmp = NULL, *s = data;
    apr_size_t done = 0;
    ssize_t n;
    int fd = -1;
    apr_status_t rv = APR_SUCCESS;

    if (!component_ok(name)) {
        rv = APR_EINVAL;
        goto out;
    }
    acme_store_step(store, "open");
    tmp =
        apr_psprintf(p, ".%s.tmp.%ld.%u", name, (long)getpid(), apr_atomic_inc32(&store->counter));
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        /* EXCL failed or nothing was created: the file is not ours to remove. */
        rv = acme_store_os_error();
        tmp = NULL;
        goto out;
    }
    /* The owner before the name exists (nobody sees a file there that is not yet theirs); open()
     * applied the umask, the caller's mode is the one we want. */
    if ((uid != (uid_t)-1 && fchown(fd, uid, gid) != 0) || fchmod(fd, mode) != 0) {
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
    if (sync && fsync(fd) != 0) {
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
    if (renameat(dirfd, tmp, dirfd, name) != 0) {
        rv = acme_store_os_error();
        goto out;
    }
    tmp = NULL;
    acme_store_step(store, "dirsync");
    rv = sync && sync != ACME_SYNC_FILE_ONLY ? acme_store_sync_fd(dirfd) : APR_SUCCESS;
out:
    acme_store_close(&fd);
    if (tmp) {
        unlinkat(dirfd, tmp, 0);
    }
    return rv;
}

apr_status_t acme_store_read_at(char **pdata, apr_size_t *plen, int dirfd, const char *name,
                                apr_size_t max, apr_pool_t *p)
{
    return acme_store_read_at_id(pdata, plen, NULL, dirfd, name, max, p);
}

apr_status_t acme_store_read_at_id(char **pdata, apr_size_t *plen, acme_store_file_id_t *pid,
                                   int dirfd, const char *name, apr_size_t max, apr_pool_t *p)
{
    apr_size_t len = 0, want;
    struct stat st;
    ssize_t n;
    char *buf;
    apr_status_t rv = APR_SUCCESS;
    int fd = -1;

    if (!component_ok(name)) {
        rv = APR_EINVAL;
        goto out;
    }
    /* The parent (root) reads files the server's User wrote: never through a symlink, never
     * blocking on a FIFO, only a plain file with one name (a hard link to someone else's key is
     * refused). */
    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        rv = errno == ELOOP ? ACME_EBADSTORE : acme_store_os_error();
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        rv = ACME_EBADSTORE;
        goto out;
    }
    if (st.st_size < 0 || (apr_uint64_t)st.st_size > max) {
        rv = ACME_ETOOLARGE;
        goto out;
    }
    /* One byte more than stat promised: more data shows a file written in place while we read,
     * which no store writer does, and the bound must hold whatever it grows to. Plain read(),
     * no apr_file_t: closing one scans every cleanup of its pool, and the parent reads N sets
     * into pconf, whose cleanups grow with N (O(N^2) per configuration pass). */
    want = (apr_size_t)st.st_size + 1;
    buf = apr_palloc(p, want + 1);
    while (len < want) {
        n = read(fd, buf + len, want - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rv = acme_store_os_error();
            goto out;
        }
        if (n == 0) {
            break;
        }
        len += (apr_size_t)n;
    }
    if (len == want) {
        rv = ACME_EBADSTORE;
        goto out;
    }
    buf[len] = '\0';
    *pdata = buf;
    *plen = len;
    if (pid) {
        pid->dev = (apr_uint64_t)st.st_dev;
        pid->ino = (apr_uint64_t)st.st_ino;
        pid->size = (apr_int64_t)st.st_size;
        pid->mtime_ns = (apr_int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        pid->ctime_ns = (apr_int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    }
out:
    acme_store_close(&fd);
    return rv;
}
