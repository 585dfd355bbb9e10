/* acme_store.c - the file layer of the on-disk store: the store object and its paths, names and
 * CA ids, atomic writes, bounded reads, JSON files and removal. Certificate sets (stage, load,
 * promote) are built on it in acme_store_set.c. The layout and the guarantees are described in
 * acme_store.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

static const char *const top_dirs[] = {"accounts", "domains", "archive", "staging", "jobs"};

/* Makes a directory entry durable: rename and unlink only survive a crash once the folder that
 * holds the entry is synced. APR has no call for this. */
apr_status_t acme_store_sync_dir(const char *dir)
{
    apr_status_t rv = APR_SUCCESS;
    int fd;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rv = acme_store_os_error();
        goto out;
    }
    if (fsync(fd) != 0) {
        rv = acme_store_os_error();
    }
    close(fd);
out:
    return rv;
}

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

/* Creates path and its missing parents with 0700. The mode is set again after mkdir because
 * mkdir's mode passes through the umask; folders that exist keep the mode they have. */
apr_status_t acme_store_make_dirs(const char *path, apr_pool_t *p)
{
    apr_status_t rv;

    rv = apr_dir_make(path, PERMS_DIR, p);
    if (APR_STATUS_IS_ENOENT(rv) && strcmp(parent_of(path, p), path) != 0) {
        rv = acme_store_make_dirs(parent_of(path, p), p);
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

/* The names in dir, without "." and "..". Listed first so that callers may remove entries. */
apr_status_t acme_store_list_dir(apr_array_header_t **pnames, const char *dir, apr_pool_t *p)
{
    apr_array_header_t *names = apr_array_make(p, 8, sizeof(const char *));
    apr_dir_t *d = NULL;
    apr_finfo_t fi;
    apr_status_t rv;

    rv = apr_dir_open(&d, dir, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    for (;;) {
        rv = apr_dir_read(&fi, APR_FINFO_NAME, d);
        if (APR_STATUS_IS_ENOENT(rv)) {
            rv = APR_SUCCESS;
            break;
        }
        if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
            goto out;
        }
        if (strcmp(fi.name, ".") != 0 && strcmp(fi.name, "..") != 0) {
            APR_ARRAY_PUSH(names, const char *) = apr_pstrdup(p, fi.name);
        }
    }
    rv = APR_SUCCESS;
    *pnames = names;
out:
    if (d) {
        apr_dir_close(d);
    }
    return rv;
}

/* Removes path whatever it is; a folder with everything below it. Symlinks are removed, never
 * followed. Missing is success. */
/* Removes name below the open folder dirfd without ever following a symlink: the store's
 * staging/ belongs to the server's User, and root must not be steered into another folder by a
 * link swapped in while it works. Names are collected before anything is removed. */
static apr_status_t remove_at(int parent, const char *name, int depth, apr_pool_t *p)
{
    apr_array_header_t *names;
    struct stat st;
    struct dirent *e;
    DIR *d;
    int fd, i;
    apr_status_t rv = APR_SUCCESS;

    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return errno == ENOENT ? APR_SUCCESS : APR_FROM_OS_ERROR(errno);
    }
    if (!S_ISDIR(st.st_mode)) {
        return unlinkat(parent, name, 0) == 0 || errno == ENOENT ? APR_SUCCESS
                                                                 : APR_FROM_OS_ERROR(errno);
    }
    if (depth > 16) {
        return ACME_EBADSTORE;
    }
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    d = fdopendir(fd);
    if (!d) {
        rv = APR_FROM_OS_ERROR(errno);
        close(fd);
        return rv;
    }
    names = apr_array_make(p, 8, sizeof(const char *));
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            APR_ARRAY_PUSH(names, const char *) = apr_pstrdup(p, e->d_name);
        }
    }
    for (i = 0; rv == APR_SUCCESS && i < names->nelts; i++) {
        rv = remove_at(dirfd(d), APR_ARRAY_IDX(names, i, const char *), depth + 1, p);
    }
    closedir(d);
    if (rv == APR_SUCCESS && unlinkat(parent, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
        rv = APR_FROM_OS_ERROR(errno);
    }
    return rv;
}

apr_status_t acme_store_remove_tree(const char *path, apr_pool_t *p)
{
    const char *slash = strrchr(path, '/');
    const char *dir = slash ? (slash == path ? "/" : apr_pstrmemdup(p, path, slash - path)) : ".";
    apr_pool_t *sub;
    apr_status_t rv;
    int fd;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? APR_SUCCESS : APR_FROM_OS_ERROR(errno);
    }
    rv = apr_pool_create(&sub, p);
    if (rv == APR_SUCCESS) {
        rv = remove_at(fd, slash ? slash + 1 : path, 0, sub);
        apr_pool_destroy(sub);
    }
    close(fd);
    return rv;
}

apr_status_t acme_store_write_atomic(acme_store_t *store, const char *path, const void *data,
                                     apr_size_t len, apr_fileperms_t perms, apr_pool_t *p)
{
    const char *dir = parent_of(path, p);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const char *tmp = NULL;
    apr_file_t *f = NULL;
    apr_status_t rv;

    acme_store_step(store, "open");
    tmp = apr_psprintf(p, "%s/.%s.tmp.%ld.%u", dir, base, (long)getpid(),
                       apr_atomic_inc32(&store->counter));
    rv = apr_file_open(
        &f, tmp, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_EXCL | APR_FOPEN_BINARY, perms, p);
    if (rv != APR_SUCCESS) {
        /* EXCL failed or nothing was created: the file is not ours to remove. */
        tmp = NULL;
        goto out;
    }
    /* open() applied the umask; the caller's mode is the one we want. */
    rv = apr_file_perms_set(tmp, perms);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    acme_store_step(store, "write");
    rv = apr_file_write_full(f, data, len, NULL);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    acme_store_step(store, "fsync");
    rv = apr_file_sync(f);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = apr_file_close(f);
    f = NULL;
    if (rv != APR_SUCCESS) {
        goto out;
    }
    acme_store_step(store, "rename");
    rv = apr_file_rename(tmp, path, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    tmp = NULL;
    acme_store_step(store, "dirsync");
    rv = acme_store_sync_dir(dir);
out:
    if (f) {
        apr_file_close(f);
    }
    if (tmp) {
        apr_file_remove(tmp, p);
    }
    return rv;
}

/* Reads at most max bytes of path, NUL-terminated. */
apr_status_t acme_store_read_bounded(char **pdata, apr_size_t *plen, const char *path,
                                     apr_size_t max, apr_pool_t *p)
{
    apr_file_t *f = NULL;
    apr_size_t len = 0;
    struct stat st;
    char *buf;
    apr_status_t rv;
    int fd;

    /* The parent (root) reads files the server's User wrote: never through a symlink, never
     * blocking on a FIFO, only a plain file with one name (a hard link to someone else's key is
     * refused). */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        rv = errno == ELOOP ? ACME_EBADSTORE : APR_FROM_OS_ERROR(errno);
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

apr_status_t acme_store_open(acme_store_t **pstore, const char *dir, apr_pool_t *p)
{
    acme_store_t *store;
    char *abs = NULL;
    apr_size_t len, i;
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
    rv = acme_store_make_dirs(abs, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    for (i = 0; i < sizeof(top_dirs) / sizeof(top_dirs[0]); i++) {
        rv = acme_store_make_dirs(apr_pstrcat(p, abs, "/", top_dirs[i], NULL), p);
        if (rv != APR_SUCCESS) {
            goto out;
        }
    }
    store = apr_pcalloc(p, sizeof(*store));
    store->dir = abs;
    *pstore = store;
out:
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

apr_status_t acme_store_write(acme_store_t *store, const char *relpath, const void *data,
                              apr_size_t len, apr_fileperms_t perms, apr_pool_t *p)
{
    const char *path;
    apr_status_t rv;

    if (!relpath_ok(relpath) || (!data && len)) {
        rv = APR_EINVAL;
        goto out;
    }
    path = acme_store_path(store, relpath, p);
    rv = acme_store_make_dirs(parent_of(path, p), p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_store_write_atomic(store, path, data ? data : "", len, perms, p);
out:
    return rv;
}

apr_status_t acme_store_read(char **pdata, apr_size_t *plen, acme_store_t *store,
                             const char *relpath, apr_size_t max, apr_pool_t *p)
{
    apr_status_t rv;

    if (!relpath_ok(relpath)) {
        rv = APR_EINVAL;
        goto out;
    }
    rv = acme_store_read_bounded(pdata, plen, acme_store_path(store, relpath, p), max, p);
out:
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
    const char *path;
    apr_status_t rv;

    if (!relpath_ok(relpath)) {
        rv = APR_EINVAL;
        goto out;
    }
    path = acme_store_path(store, relpath, p);
    rv = acme_store_remove_tree(path, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_store_sync_dir(parent_of(path, p));
    if (APR_STATUS_IS_ENOENT(rv)) {
        rv = APR_SUCCESS;
    }
out:
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
