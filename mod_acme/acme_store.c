/* acme_store.c - the file layer of the on-disk store: the store object and its paths, names and
 * CA ids, atomic writes, bounded reads, JSON files and removal. Certificate sets (stage, load,
 * promote) are built on it in acme_store_set.c. The layout and the guarantees are described in
 * acme_store.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_portable.h>
#include <apr_strings.h>
#include <openssl/evp.h>

#include "acme_csr.h"
#include "acme_store_int.h"

/* Longest name we accept as one path component (NAME_MAX on the systems we run on). */
#define NAME_LEN_MAX 255
/* A ca-id longer than this is cut and ends in a hash, so that it still fits one component. */
#define CA_ID_MAX 200
/* Removal descends this deep at most; a folder found deeper is moved up to the top of the tree
 * and removed by a later pass. So root holds at most this many descriptors, and a tree planted
 * deeper than any limit is removed all the same instead of failing half done. */
#define REMOVE_DEPTH 16
/* Passes over one tree before removal gives up: each moves what lies deeper than REMOVE_DEPTH
 * up, so a User who keeps adding folders while root removes them cannot hold root forever. */
#define REMOVE_PASSES_MAX 100000

static const char *const top_dirs[] = {"accounts", "domains", "archive", "staging", "jobs"};
/* The folders only the store's owner (root, when the server starts as root) may change: root
 * reads, writes and follows the domains/ links below them trusting that no one else can.
 * fallback/ is made later, by the first acme_store_write into it. "" is the top. */
static const char *const owner_dirs[] = {"", "domains", "archive", "fallback"};
/* The folders of the server's User: they must be folders, not links, or every walk refuses. */
static const char *const user_dirs[] = {"accounts", "staging", "jobs"};

static const char *parent_of(const char *path, apr_pool_t *p)
{
    const char *slash = strrchr(path, '/');

    if (!slash) {
        return ".";
    }
    if (slash == path) {
        return "/";
    }
    return apr_pstrmemdup(p, path, (apr_size_t)(slash - path));
}

/* Creates path and its missing parents with 0700: only for the store's top, the operator's path,
 * where nothing belongs to the User. The mode is set again after mkdir because mkdir's mode
 * passes through the umask; folders that exist keep the mode they have. */
static apr_status_t make_dirs(const char *path, apr_pool_t *p)
{
    apr_status_t rv;

    rv = apr_dir_make(path, PERMS_DIR, p);
    if (APR_STATUS_IS_ENOENT(rv) && strcmp(parent_of(path, p), path) != 0) {
        rv = make_dirs(parent_of(path, p), p);
        if (rv != APR_SUCCESS) {
            goto out;
        }
        rv = apr_dir_make(path, PERMS_DIR, p);
    }
    if (APR_STATUS_IS_EEXIST(rv)) {
        rv = APR_SUCCESS;
        goto out;
    }
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = apr_file_perms_set(path, PERMS_DIR);
out:
    return rv;
}

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

/* A relative path inside the store: no leading '/', no empty, "." or ".." component. */
static int relpath_ok(const char *relpath)
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

/* The top of the store, the operator's path (ACMEStoreDir) followed as given. The child runs
 * as the User, for whom the top is 0711 (pass, not list): then a descriptor that only searches,
 * which is all a walk needs to go on to the User's folders. */
static int open_top(const char *dir)
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

    if (reldir && *reldir && !relpath_ok(reldir)) {
        rv = APR_EINVAL;
        goto out;
    }
    /* Its owner was checked when the store was opened (acme_store_check_owner). */
    fd = open_top(store->dir);
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
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
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
    /* open() applied the umask; the caller's mode is the one we want. */
    if (fchmod(fd, mode) != 0) {
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
    if (renameat(dirfd, tmp, dirfd, name) != 0) {
        rv = acme_store_os_error();
        goto out;
    }
    tmp = NULL;
    acme_store_step(store, "dirsync");
    rv = acme_store_sync_fd(dirfd);
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
    apr_file_t *f = NULL;
    apr_size_t len = 0;
    struct stat st;
    char *buf;
    apr_status_t rv;
    int fd;

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
        close(fd);
        rv = ACME_EBADSTORE;
        goto out;
    }
    rv = apr_os_file_put(&f, &fd, APR_FOPEN_READ | APR_FOPEN_BINARY, p);
    if (rv != APR_SUCCESS) {
        close(fd);
        f = NULL;
        goto out;
    }
    if (st.st_size < 0 || (apr_uint64_t)st.st_size > max) {
        rv = ACME_ETOOLARGE;
        goto out;
    }
    /* One byte more than stat promised: more data shows a file written in place while we read,
     * which no store writer does, and the bound must hold whatever it grows to. */
    buf = apr_palloc(p, (apr_size_t)st.st_size + 2);
    rv = apr_file_read_full(f, buf, (apr_size_t)st.st_size + 1, &len);
    if (rv == APR_SUCCESS) {
        rv = ACME_EBADSTORE;
        goto out;
    }
    if (rv != APR_EOF) {
        goto out;
    }
    rv = APR_SUCCESS;
    buf[len] = '\0';
    *pdata = buf;
    *plen = len;
out:
    if (f) {
        apr_file_close(f);
    }
    return rv;
}

int acme_store_name_ok(const char *name)
{
    apr_size_t len;

    if (!name || name[0] == '\0' || name[0] == '.' || strchr(name, '/')) {
        return 0;
    }
    len = strlen(name);
    if (len > NAME_LEN_MAX) {
        return 0;
    }
    if (acme_name_is_dns(name) || acme_name_is_ip(name)) {
        return 1;
    }
    /* What acme_store_ca_id makes: only [A-Za-z0-9._-], never a leading dot. */
    return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == len;
}

/* path as one shell word, for the commands the refusal suggests. */
static const char *shell_word(const char *path, apr_pool_t *p)
{
    const char *safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-+:@";
    apr_array_header_t *parts;
    const char *s;

    if (*path && strspn(path, safe) == strlen(path)) {
        return path;
    }
    parts = apr_array_make(p, 4, sizeof(const char *));
    for (s = path; *s; s++) {
        APR_ARRAY_PUSH(parts, const char *) = *s == '\'' ? "'\\''" : apr_pstrmemdup(p, s, 1);
    }
    return apr_pstrcat(p, "'", apr_array_pstrcat(p, parts, '\0'), "'", NULL);
}

/* The strings of arr with sep between them. */
static const char *join(const apr_array_header_t *arr, const char *sep, apr_pool_t *p)
{
    const char *out = "";
    int i;

    for (i = 0; i < arr->nelts; i++) {
        out = apr_pstrcat(p, out, i ? sep : "", APR_ARRAY_IDX(arr, i, const char *), NULL);
    }
    return out;
}

/* "www-data (uid 33)", or "uid 33" for a uid without a name. */
static const char *uid_text(uid_t uid, apr_pool_t *p)
{
    struct passwd pw, *found = NULL;
    char buf[1024];

    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found) {
        return apr_psprintf(p, "%s (uid %ld)", found->pw_name, (long)uid);
    }
    return apr_psprintf(p, "uid %ld", (long)uid);
}

apr_status_t acme_store_check_owner(const char *dir, const char **pwhy, apr_pool_t *p)
{
    apr_array_header_t *problems = apr_array_make(p, 4, sizeof(const char *));
    apr_array_header_t *fixes = apr_array_make(p, 4, sizeof(const char *));
    const uid_t me = geteuid();
    const char *owner = me == 0 ? "root:root" : apr_psprintf(p, "%ld", (long)me);
    struct stat st;
    size_t i, n_owner = sizeof(owner_dirs) / sizeof(owner_dirs[0]);
    int fd;
    apr_status_t rv = APR_SUCCESS;

    fd = open_top(dir);
    if (fd < 0) {
        /* Nothing yet: what acme_store_open makes is the opener's. */
        rv = errno == ENOENT ? APR_SUCCESS : acme_store_os_error();
        goto out;
    }
    for (i = 0; i < n_owner + sizeof(user_dirs) / sizeof(user_dirs[0]); i++) {
        const char *name = i < n_owner ? owner_dirs[i] : user_dirs[i - n_owner];
        const char *path = *name ? apr_pstrcat(p, dir, "/", name, NULL) : dir;
        const char *word = shell_word(path, p);
        int bad_owner, bad_mode;

        /* The top is the operator's path, links included; below it nothing is followed. */
        if (*name ? fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 : fstat(fd, &st) != 0) {
            if (errno == ENOENT) {
                continue; /* made by the opener when needed */
            }
            rv = acme_store_os_error();
            goto out;
        }
        if (!S_ISDIR(st.st_mode)) {
            APR_ARRAY_PUSH(problems, const char *) = apr_psprintf(
                p, "%s is %s", path, S_ISLNK(st.st_mode) ? "a symbolic link" : "not a folder");
            APR_ARRAY_PUSH(fixes, const char *) = apr_psprintf(
                p, "mv %s %s", word, shell_word(apr_pstrcat(p, path, ".moved", NULL), p));
            continue;
        }
        if (i >= n_owner) {
            continue; /* the User's own: any owner, the parent hands it over */
        }
        bad_owner = st.st_uid != me;
        bad_mode = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
        if (bad_owner) {
            APR_ARRAY_PUSH(problems, const char *) =
                apr_psprintf(p, "%s belongs to %s", path, uid_text(st.st_uid, p));
            /* The top keeps the User's folders inside it as they are (the parent hands over
             * accounts/, staging/ and jobs/ again at each start); the others go whole. */
            APR_ARRAY_PUSH(fixes, const char *) =
                apr_psprintf(p, "chown %s%s %s", *name ? "-R " : "", owner, word);
        }
        if (bad_mode) {
            APR_ARRAY_PUSH(problems, const char *) =
                apr_psprintf(p, "%s can be written by group or others (mode %04o)", path,
                             (unsigned)(st.st_mode & 07777));
            APR_ARRAY_PUSH(fixes, const char *) = apr_psprintf(p, "chmod go-w %s", word);
        }
    }
    if (problems->nelts) {
        if (pwhy) {
            *pwhy = apr_psprintf(
                p,
                "%s; the store's top, domains/, archive/ and fallback/ must be folders of %s "
                "that group and others cannot write, or whoever can change them steers the "
                "server to other files and keys; to fix: %s",
                join(problems, "; ", p), me == 0 ? "root" : uid_text(me, p),
                join(fixes, " && ", p));
        }
        rv = ACME_EBADSTORE;
    }
out:
    acme_store_close(&fd);
    return rv;
}

apr_status_t acme_store_open(acme_store_t **pstore, const char *dir, apr_pool_t *p)
{
    acme_store_t *store;
    char *abs = NULL;
    apr_size_t len, i;
    int fd = -1, sub = -1;
    apr_status_t rv;

    if (!dir || !*dir) {
        rv = APR_EINVAL;
        goto out;
    }
    /* Absolute, so that the paths handed to mod_ssl do not depend on the working directory. */
    rv = apr_filepath_merge(&abs, NULL, dir, 0, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    len = strlen(abs);
    while (len > 1 && abs[len - 1] == '/') {
        abs[--len] = '\0';
    }
    rv = make_dirs(abs, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    /* Before anything is made inside: nothing is created or followed where another user could
     * have put a link. */
    rv = acme_store_check_owner(abs, NULL, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    store = apr_pcalloc(p, sizeof(*store));
    store->dir = abs;
    rv = acme_store_dir_open(&fd, store, NULL, 0, NULL, p);
    for (i = 0; rv == APR_SUCCESS && i < sizeof(top_dirs) / sizeof(top_dirs[0]); i++) {
        rv = acme_store_subdir_open(&sub, fd, NULL, top_dirs[i], 1, NULL, p);
        acme_store_close(&sub);
    }
    if (rv != APR_SUCCESS) {
        goto out;
    }
    *pstore = store;
out:
    acme_store_close(&fd);
    return rv;
}

const char *acme_store_dir(const acme_store_t *store)
{
    return store->dir;
}

void acme_store_set_step_hook(acme_store_t *store, acme_store_step_fn *fn, void *baton)
{
    store->step_fn = fn;
    store->step_baton = baton;
}

const char *acme_store_path(const acme_store_t *store, const char *relpath, apr_pool_t *p)
{
    if (!relpath || !*relpath) {
        return store->dir;
    }
    return apr_pstrcat(p, store->dir, "/", relpath, NULL);
}

/* Splits a relpath checked by relpath_ok into its folder (NULL for the top) and its name. */
static void split_relpath(const char **pdir, const char **pname, const char *relpath, apr_pool_t *p)
{
    const char *slash = strrchr(relpath, '/');

    *pdir = slash ? apr_pstrmemdup(p, relpath, (apr_size_t)(slash - relpath)) : NULL;
    *pname = slash ? slash + 1 : relpath;
}

apr_status_t acme_store_write(acme_store_t *store, const char *relpath, const void *data,
                              apr_size_t len, apr_fileperms_t perms, apr_pool_t *p)
{
    const char *dir, *name;
    int fd = -1;
    apr_status_t rv;

    if (!relpath_ok(relpath) || (!data && len)) {
        rv = APR_EINVAL;
        goto out;
    }
    split_relpath(&dir, &name, relpath, p);
    rv = acme_store_dir_open(&fd, store, dir, 1, NULL, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_store_write_at(store, fd, name, data ? data : "", len, perms, p);
out:
    acme_store_close(&fd);
    return rv;
}

apr_status_t acme_store_read(char **pdata, apr_size_t *plen, acme_store_t *store,
                             const char *relpath, apr_size_t max, apr_pool_t *p)
{
    const char *dir, *name;
    int fd = -1;
    apr_status_t rv;

    if (!relpath_ok(relpath)) {
        rv = APR_EINVAL;
        goto out;
    }
    split_relpath(&dir, &name, relpath, p);
    rv = acme_store_dir_open(&fd, store, dir, 0, NULL, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_store_read_at(pdata, plen, fd, name, max, p);
out:
    acme_store_close(&fd);
    return rv;
}

apr_status_t acme_store_json_write(acme_store_t *store, const char *relpath, const json_t *json,
                                   apr_pool_t *p)
{
    char *text = NULL;
    apr_status_t rv;

    /* Only objects: what we write must come back through acme_store_json_read. */
    if (!json_is_object(json)) {
        rv = APR_EINVAL;
        goto out;
    }
    text = json_dumps(json, JSON_COMPACT);
    if (!text) {
        rv = APR_ENOMEM;
        goto out;
    }
    rv = acme_store_write(store, relpath, text, strlen(text), PERMS_SECRET, p);
out:
    free(text);
    return rv;
}

/* Parses a JSON object of the store; ACME_EBADSTORE for anything else. */
apr_status_t acme_store_parse_object(json_t **pjson, const char *data, apr_size_t len,
                                     apr_pool_t *p)
{
    json_error_t err;
    json_t *j;
    apr_status_t rv = APR_SUCCESS;

    j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(j)) {
        json_decref(j);
        rv = ACME_EBADSTORE;
        goto out;
    }
    *pjson = acme_json_pool(p, j);
out:
    return rv;
}

apr_status_t acme_store_json_read(json_t **pjson, acme_store_t *store, const char *relpath,
                                  apr_pool_t *p)
{
    char *data;
    apr_size_t len;
    apr_status_t rv;

    rv = acme_store_read(&data, &len, store, relpath, ACME_STORE_JSON_MAX, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_store_parse_object(pjson, data, len, p);
out:
    return rv;
}

apr_status_t acme_store_remove(acme_store_t *store, const char *relpath, apr_pool_t *p)
{
    const char *dir, *name;
    int fd = -1;
    apr_status_t rv;

    if (!relpath_ok(relpath)) {
        rv = APR_EINVAL;
        goto out;
    }
    split_relpath(&dir, &name, relpath, p);
    rv = acme_store_dir_open(&fd, store, dir, 0, NULL, p);
    if (APR_STATUS_IS_ENOENT(rv)) {
        rv = APR_SUCCESS; /* no folder, no file */
        goto out;
    }
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_store_remove_at(fd, name, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_store_sync_fd(fd);
out:
    acme_store_close(&fd);
    return rv;
}

const char *acme_store_ca_id(const char *directory_url, apr_pool_t *p)
{
    const char *url = directory_url ? directory_url : "", *s = url;
    const char *scheme = strstr(s, "://"), *auth_end, *at, *path_end;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0, i;
    char hex[17];
    char *id, *c;

    if (scheme) {
        s = scheme + 3;
    }
    auth_end = s + strcspn(s, "/?#");
    path_end = auth_end + strcspn(auth_end, "?#");
    /* user:password@ is no part of the CA's identity, and must not end up on disk. */
    at = memchr(s, '@', (apr_size_t)(auth_end - s));
    while (at) {
        s = at + 1;
        at = memchr(s, '@', (apr_size_t)(auth_end - s));
    }
    id = apr_pstrmemdup(p, s, (apr_size_t)(path_end - s));
    for (c = id; *c; c++) {
        if (c < id + (auth_end - s) && *c >= 'A' && *c <= 'Z') {
            *c = (char)(*c - 'A' + 'a'); /* host names are case-insensitive */
        }
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '-')) {
            *c = '_';
        }
    }
    /* A leading dot would hide the folder and collide with our temp names. */
    if (id[0] == '.' || id[0] == '\0') {
        id = apr_pstrcat(p, "_", id + (id[0] == '.'), NULL);
    }
    /* Still one path component for a very long URL, still distinct from its neighbours. */
    if (strlen(id) > CA_ID_MAX &&
        EVP_Digest(url, strlen(url), md, &md_len, EVP_sha256(), NULL) == 1) {
        id[CA_ID_MAX - 17] = '\0';
        for (i = 0; i < 8; i++) {
            apr_snprintf(hex + 2 * i, 3, "%02x", md[i]);
        }
        id = apr_pstrcat(p, id, "_", hex, NULL);
    }
    return id;
}
