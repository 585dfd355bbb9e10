/* acme_store.c - the on-disk store: the store object and the check of its owner, names and CA
 * ids, and the files of the API (write, read, JSON, remove) on store-relative paths. They are
 * built on the folder-descriptor operations of acme_store_walk.c; certificate sets (stage, load,
 * promote) on both in acme_store_set.c. The layout and the guarantees are described in
 * acme_store.h. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <openssl/evp.h>

#include "acme_csr.h"
#include "acme_store_int.h"

/* A ca-id longer than this is cut and ends in a hash, so that it still fits one component. */
#define CA_ID_MAX 200

static const char *const top_dirs[] = {"accounts", "domains", "archive", "staging", "jobs"};
/* The folders only the store's owner (root, when the server starts as root) may change: root
 * reads, writes and follows the domains/ links below them trusting that no one else can.
 * fallback/ and refused/ are made later, by the first write into them. "" is the top. */
static const char *const owner_dirs[] = {"", "domains", "archive", "fallback", "refused"};
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

int acme_store_name_ok(const char *name)
{
    apr_size_t len;

    /* No '*' either: a wildcard's set has a name of its own ("_wildcard.example.org"), and a
     * '*' in a folder name is a glob in every shell command an operator types there. */
    if (!name || name[0] == '\0' || name[0] == '.' || strchr(name, '/') || strchr(name, '*')) {
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

    fd = acme_store_open_top(dir);
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
                "%s; the store's top, domains/, archive/, fallback/ and refused/ must be folders "
                "of %s "
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

static apr_status_t write_relpath(acme_store_t *store, const char *relpath, const void *data,
                                  apr_size_t len, apr_fileperms_t perms, int sync, apr_pool_t *p)
{
    const char *dir, *name;
    int fd = -1;
    apr_status_t rv;

    if (!acme_store_relpath_ok(relpath) || (!data && len)) {
        rv = APR_EINVAL;
        goto out;
    }
    split_relpath(&dir, &name, relpath, p);
    rv = acme_store_dir_open(&fd, store, dir, 1, NULL, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_store_write_at_opt(store, fd, name, data ? data : "", len, perms, (uid_t)-1,
                                 (gid_t)-1, sync, p);
out:
    acme_store_close(&fd);
    return rv;
}

apr_status_t acme_store_write(acme_store_t *store, const char *relpath, const void *data,
                              apr_size_t len, apr_fileperms_t perms, apr_pool_t *p)
{
    return write_relpath(store, relpath, data, len, perms, 1, p);
}

apr_status_t acme_store_write_volatile(acme_store_t *store, const char *relpath, const void *data,
                                       apr_size_t len, apr_fileperms_t perms, apr_pool_t *p)
{
    return write_relpath(store, relpath, data, len, perms, 0, p);
}

apr_status_t acme_store_read(char **pdata, apr_size_t *plen, acme_store_t *store,
                             const char *relpath, apr_size_t max, apr_pool_t *p)
{
    return acme_store_read_id(pdata, plen, NULL, store, relpath, max, p);
}

apr_status_t acme_store_read_id(char **pdata, apr_size_t *plen, acme_store_file_id_t *pid,
                                acme_store_t *store, const char *relpath, apr_size_t max,
                                apr_pool_t *p)
{
    const char *dir, *name;
    int fd = -1;
    apr_status_t rv;

    if (!acme_store_relpath_ok(relpath)) {
        rv = APR_EINVAL;
        goto out;
    }
    split_relpath(&dir, &name, relpath, p);
    rv = acme_store_dir_open(&fd, store, dir, 0, NULL, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_store_read_at_id(pdata, plen, pid, fd, name, max, p);
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

    if (!acme_store_relpath_ok(relpath)) {
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

apr_status_t acme_store_rename(acme_store_t *store, const char *from, const char *to, apr_pool_t *p)
{
    const char *from_dir, *from_name, *to_dir, *to_name;
    int from_fd = -1, to_fd = -1;
    apr_status_t rv;

    if (!acme_store_relpath_ok(from) || !acme_store_relpath_ok(to)) {
        rv = APR_EINVAL;
        goto out;
    }
    split_relpath(&from_dir, &from_name, from, p);
    split_relpath(&to_dir, &to_name, to, p);
    rv = acme_store_dir_open(&from_fd, store, from_dir, 0, NULL, p);
    if (rv == APR_SUCCESS) {
        rv = acme_store_dir_open(&to_fd, store, to_dir, 0, NULL, p);
    }
    if (rv != APR_SUCCESS) {
        goto out;
    }
    if (renameat(from_fd, from_name, to_fd, to_name) != 0) {
        rv = acme_store_os_error();
        goto out;
    }
    rv = acme_store_sync_fd(to_fd);
    if (rv == APR_SUCCESS) {
        rv = acme_store_sync_fd(from_fd);
    }
out:
    acme_store_close(&from_fd);
    acme_store_close(&to_fd);
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
