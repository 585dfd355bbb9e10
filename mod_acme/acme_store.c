/* acme_store.c - the on-disk store: atomic writes, bounded reads, certificate sets and their
 * promotion by one symlink swap. The layout and the guarantees are described in acme_store.h. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <apr_atomic.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <openssl/evp.h>

#include "acme_csr.h"
#include "acme_store.h"

#define PERMS_DIR    (APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_UEXECUTE)
#define PERMS_SECRET (APR_FPROT_UREAD | APR_FPROT_UWRITE)
#define PERMS_PUBLIC (APR_FPROT_UREAD | APR_FPROT_UWRITE | APR_FPROT_GREAD | APR_FPROT_WREAD)

/* Longest name we accept as one path component (NAME_MAX on the systems we run on). */
#define NAME_LEN_MAX 255
/* A ca-id longer than this is cut and ends in a hash, so that it still fits one component. */
#define CA_ID_MAX 200

struct acme_store_t {
    const char *dir;
    acme_store_step_fn *step_fn;
    void *step_baton;
    volatile apr_uint32_t counter; /* makes temp file names unique between threads */
};

static const char *const top_dirs[] = {"accounts", "domains", "archive", "staging", "jobs"};

/* The files of a set, in the order they are read and written. */
enum { F_KEY, F_CHAIN, F_META, F_COUNT };
static const struct {
    const char *name;
    apr_fileperms_t perms;
    apr_size_t max;
} set_file[F_COUNT] = {
    {ACME_STORE_KEY_FILE, PERMS_SECRET, ACME_STORE_KEY_MAX},
    {ACME_STORE_CHAIN_FILE, PERMS_PUBLIC, ACME_CERT_PEM_MAX},
    {ACME_STORE_META_FILE, PERMS_SECRET, ACME_STORE_JSON_MAX},
};

/* The raw files of a set, kept so that promotion copies exactly what was staged. */
typedef struct set_files_t {
    const char *data[F_COUNT];
    apr_size_t len[F_COUNT];
} set_files_t;

static void step(const acme_store_t *store, const char *name)
{
    if (store->step_fn) {
        store->step_fn(store->step_baton, name);
    }
}

static void set_why(const char **pwhy, const char *why)
{
    if (pwhy && why) {
        *pwhy = why;
    }
}

static apr_status_t os_error(void)
{
    return APR_FROM_OS_ERROR(errno);
}

/* Makes a directory entry durable: rename and unlink only survive a crash once the folder that
 * holds the entry is synced. APR has no call for this. */
static apr_status_t sync_dir(const char *dir)
{
    apr_status_t rv = APR_SUCCESS;
    int fd;

    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rv = os_error();
        goto out;
    }
    if (fsync(fd) != 0) {
        rv = os_error();
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

/* The names in dir, without "." and "..". Listed first so that callers may remove entries. */
static apr_status_t list_dir(apr_array_header_t **pnames, const char *dir, apr_pool_t *p)
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
static apr_status_t remove_tree(const char *path, apr_pool_t *p)
{
    apr_pool_t *sub = NULL;
    apr_array_header_t *names;
    apr_finfo_t fi;
    int i;
    apr_status_t rv;

    rv = apr_stat(&fi, path, APR_FINFO_LINK | APR_FINFO_TYPE, p);
    if (APR_STATUS_IS_ENOENT(rv)) {
        rv = APR_SUCCESS;
        goto out;
    }
    if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) {
        goto out;
    }
    if (fi.filetype != APR_DIR) {
        rv = apr_file_remove(path, p);
        goto out;
    }
    /* A sub-pool per level keeps memory flat in deep or wide trees. */
    rv = apr_pool_create(&sub, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = list_dir(&names, path, sub);
    for (i = 0; rv == APR_SUCCESS && i < names->nelts; i++) {
        rv = remove_tree(apr_pstrcat(sub, path, "/", APR_ARRAY_IDX(names, i, const char *), NULL),
                         sub);
    }
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = apr_dir_remove(path, sub);
out:
    if (sub) {
        apr_pool_destroy(sub);
    }
    return rv;
}

/* 1 when s is prefix followed by one or more characters of [0-9-]. Names never end in such a
 * tail after our markers, so the leftovers of one name never match those of another. */
static int is_leftover(const char *s, const char *prefix)
{
    apr_size_t n = strlen(prefix);

    if (strncmp(s, prefix, n) != 0 || s[n] == '\0') {
        return 0;
    }
    return strspn(s + n, "0123456789-") == strlen(s + n);
}

/* Removes what a crashed run left in dir: entries named prefix + digits. */
static apr_status_t clean_leftovers(const char *dir, const char *prefix, apr_pool_t *p)
{
    apr_array_header_t *names;
    const char *name;
    int i;
    apr_status_t rv;

    rv = list_dir(&names, dir, p);
    for (i = 0; rv == APR_SUCCESS && i < names->nelts; i++) {
        name = APR_ARRAY_IDX(names, i, const char *);
        if (is_leftover(name, prefix)) {
            rv = remove_tree(apr_pstrcat(p, dir, "/", name, NULL), p);
        }
    }
    return rv;
}

/* temp file next to path, write, fsync, rename over path, fsync of the folder. On failure the
 * temp file is gone and path is as it was. */
static apr_status_t write_atomic(acme_store_t *store, const char *path, const void *data,
                                 apr_size_t len, apr_fileperms_t perms, apr_pool_t *p)
{
    const char *dir = parent_of(path, p);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    const char *tmp = NULL;
    apr_file_t *f = NULL;
    apr_status_t rv;

    step(store, "open");
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
    step(store, "write");
    rv = apr_file_write_full(f, data, len, NULL);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    step(store, "fsync");
    rv = apr_file_sync(f);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = apr_file_close(f);
    f = NULL;
    if (rv != APR_SUCCESS) {
        goto out;
    }
    step(store, "rename");
    rv = apr_file_rename(tmp, path, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    tmp = NULL;
    step(store, "dirsync");
    rv = sync_dir(dir);
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
static apr_status_t read_bounded(char **pdata, apr_size_t *plen, const char *path, apr_size_t max,
                                 apr_pool_t *p)
{
    apr_file_t *f = NULL;
    apr_finfo_t fi;
    apr_size_t len = 0;
    char *buf;
    apr_status_t rv;

    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, APR_FPROT_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE | APR_FINFO_TYPE, f);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    if (fi.filetype != APR_REG) {
        rv = ACME_EBADSTORE;
        goto out;
    }
    if (fi.size < 0 || (apr_uint64_t)fi.size > max) {
        rv = ACME_ETOOLARGE;
        goto out;
    }
    /* One byte more than stat promised: more data shows a file written in place while we read,
     * which no store writer does, and the bound must hold whatever it grows to. */
    buf = apr_palloc(p, (apr_size_t)fi.size + 2);
    rv = apr_file_read_full(f, buf, (apr_size_t)fi.size + 1, &len);
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
    rv = make_dirs(abs, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    for (i = 0; i < sizeof(top_dirs) / sizeof(top_dirs[0]); i++) {
        rv = make_dirs(apr_pstrcat(p, abs, "/", top_dirs[i], NULL), p);
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
    rv = make_dirs(parent_of(path, p), p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = write_atomic(store, path, data ? data : "", len, perms, p);
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
    rv = read_bounded(pdata, plen, acme_store_path(store, relpath, p), max, p);
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
static apr_status_t parse_object(json_t **pjson, const char *data, apr_size_t len, apr_pool_t *p)
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
    rv = parse_object(pjson, data, len, p);
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
    rv = remove_tree(path, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = sync_dir(parent_of(path, p));
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

/* The checks of a set that do not depend on names or time: the chain parses, its leaf is the
 * key's, each certificate is issued by the next. now == 0 skips the time check (acme_cert.h):
 * an expired set must still load, and a staged one is only held to the clock when promoted. */
static apr_status_t check_untimed(apr_array_header_t **pchain, const acme_key_t *key,
                                  const char *chain_pem, apr_size_t chain_len, const char *what,
                                  const char **pwhy, apr_pool_t *p)
{
    apr_array_header_t *chain = NULL;
    const char *why = NULL;
    apr_status_t rv;

    rv = acme_cert_chain_parse(&chain, chain_pem, chain_len, p);
    if (rv != APR_SUCCESS) {
        why = apr_psprintf(p, "%s is not a PEM certificate chain (%s)", what, acme_strerror(rv, p));
        rv = ACME_EBADSTORE;
        goto out;
    }
    rv = acme_cert_chain_check(chain, key, NULL, 0, &why, p);
    if (rv != APR_SUCCESS) {
        why = apr_psprintf(p, "%s: %s", what, why ? why : "the chain does not check");
        rv = ACME_EBADSTORE;
        goto out;
    }
    *pchain = chain;
out:
    set_why(pwhy, why);
    return rv;
}

/* Reads the files of a set in dir; a missing or oversized file makes the set bad, not absent,
 * except meta.json, which is optional. */
static apr_status_t read_set_files(set_files_t *files, const char *dir, const char *what,
                                   const char **pwhy, apr_pool_t *p)
{
    char *data;
    apr_size_t len;
    int i;
    apr_status_t rv = APR_SUCCESS;

    for (i = 0; i < F_COUNT; i++) {
        rv = read_bounded(&data, &len, apr_pstrcat(p, dir, "/", set_file[i].name, NULL),
                          set_file[i].max, p);
        if (i == F_META && APR_STATUS_IS_ENOENT(rv)) {
            data = "{}";
            len = 2;
            rv = APR_SUCCESS;
        }
        if (APR_STATUS_IS_ENOENT(rv) || rv == ACME_ETOOLARGE || rv == ACME_EBADSTORE) {
            set_why(pwhy,
                    apr_psprintf(p, "%s/%s: %s", what, set_file[i].name, acme_strerror(rv, p)));
            rv = ACME_EBADSTORE;
        }
        if (rv != APR_SUCCESS) {
            goto out;
        }
        files->data[i] = data;
        files->len[i] = len;
    }
out:
    return rv;
}

/* Where the active set of name is: the generation in the target of domains/<name>, which must
 * be exactly "../archive/<name>/<n>". */
static apr_status_t active_generation(int *pgen, const acme_store_t *store, const char *name,
                                      const char **pwhy, apr_pool_t *p)
{
    const char *link = apr_pstrcat(p, store->dir, "/domains/", name, NULL);
    const char *prefix = apr_pstrcat(p, "../archive/", name, "/", NULL);
    char target[1024];
    apr_size_t plen = strlen(prefix);
    ssize_t n;
    apr_status_t rv = APR_SUCCESS;

    n = readlink(link, target, sizeof(target) - 1);
    if (n < 0) {
        rv = os_error();
        if (rv == APR_EINVAL) {
            set_why(pwhy, apr_psprintf(p, "domains/%s is not a symlink", name));
            rv = ACME_EBADSTORE;
        }
        goto out;
    }
    target[n] = '\0';
    if ((apr_size_t)n <= plen || (apr_size_t)n - plen > 9 || strncmp(target, prefix, plen) != 0 ||
        strspn(target + plen, "0123456789") != (apr_size_t)n - plen || target[plen] == '0') {
        set_why(pwhy, apr_psprintf(p, "domains/%s points to %s, not into archive/%s", name, target,
                                   name));
        rv = ACME_EBADSTORE;
        goto out;
    }
    *pgen = atoi(target + plen);
out:
    return rv;
}

/* Loads a set and keeps its raw files. */
static apr_status_t load_set(acme_certset_t **pset, set_files_t *pfiles, acme_store_t *store,
                             const char *name, int staged, const char **pwhy, apr_pool_t *p)
{
    acme_certset_t *set;
    set_files_t files;
    const char *dir, *src, *what;
    apr_finfo_t fi;
    int gen = 0;
    apr_status_t rv;

    if (!acme_store_name_ok(name)) {
        rv = APR_EINVAL;
        goto out;
    }
    if (staged) {
        what = apr_pstrcat(p, "staging/", name, NULL);
        dir = apr_pstrcat(p, store->dir, "/", what, NULL);
        src = dir;
        rv = apr_stat(&fi, dir, APR_FINFO_TYPE, p);
        if (rv != APR_SUCCESS) {
            goto out;
        }
    } else {
        rv = active_generation(&gen, store, name, pwhy, p);
        if (rv != APR_SUCCESS) {
            goto out;
        }
        what = apr_psprintf(p, "archive/%s/%d", name, gen);
        /* The files are read from the generation the link named, so that a concurrent swap
         * cannot hand us the key of one set and the chain of another; the paths for mod_ssl go
         * through the link, so that a reload after the next swap reads the new set. */
        src = apr_pstrcat(p, store->dir, "/", what, NULL);
        dir = apr_pstrcat(p, store->dir, "/domains/", name, NULL);
    }
    set = apr_pcalloc(p, sizeof(*set));
    rv = read_set_files(&files, src, what, pwhy, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_key_from_pem(&set->key, files.data[F_KEY], files.len[F_KEY], p);
    if (rv != APR_SUCCESS) {
        set_why(pwhy, apr_psprintf(p, "%s/%s holds no usable private key (%s)", what,
                                   ACME_STORE_KEY_FILE, acme_strerror(rv, p)));
        rv = ACME_EBADSTORE;
        goto out;
    }
    rv = check_untimed(&set->chain, set->key, files.data[F_CHAIN], files.len[F_CHAIN],
                       apr_pstrcat(p, what, "/", ACME_STORE_CHAIN_FILE, NULL), pwhy, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = parse_object(&set->meta, files.data[F_META], files.len[F_META], p);
    if (rv != APR_SUCCESS) {
        set_why(pwhy, apr_psprintf(p, "%s/%s is not a JSON object", what, ACME_STORE_META_FILE));
        goto out;
    }
    set->name = apr_pstrdup(p, name);
    set->dir = dir;
    set->key_file = apr_pstrcat(p, dir, "/", ACME_STORE_KEY_FILE, NULL);
    set->chain_file = apr_pstrcat(p, dir, "/", ACME_STORE_CHAIN_FILE, NULL);
    set->generation = gen;
    *pset = set;
    if (pfiles) {
        *pfiles = files;
    }
out:
    return rv;
}

apr_status_t acme_store_load(acme_certset_t **pset, acme_store_t *store, const char *name,
                             int staged, const char **pwhy, apr_pool_t *p)
{
    return load_set(pset, NULL, store, name, staged, pwhy, p);
}

/* Builds a set in dir/tmp (files written atomically, folder synced) and renames it to
 * dir/final, replacing an earlier one: a crash leaves no folder final or a complete one. The
 * step hook sees <what>-write and <what>-rename. */
static apr_status_t place_set(acme_store_t *store, const char *dir, const char *tmp,
                              const char *final, const set_files_t *files, const char *what,
                              apr_pool_t *p)
{
    const char *tmp_path = apr_pstrcat(p, dir, "/", tmp, NULL);
    const char *final_path = apr_pstrcat(p, dir, "/", final, NULL);
    int i;
    apr_status_t rv;

    step(store, apr_pstrcat(p, what, "-write", NULL));
    rv = remove_tree(tmp_path, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = make_dirs(tmp_path, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    for (i = 0; i < F_COUNT; i++) {
        rv = write_atomic(store, apr_pstrcat(p, tmp_path, "/", set_file[i].name, NULL),
                          files->data[i], files->len[i], set_file[i].perms, p);
        if (rv != APR_SUCCESS) {
            goto out;
        }
    }
    rv = sync_dir(tmp_path);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    step(store, apr_pstrcat(p, what, "-rename", NULL));
    rv = remove_tree(final_path, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = apr_file_rename(tmp_path, final_path, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = sync_dir(dir);
out:
    if (rv != APR_SUCCESS) {
        remove_tree(tmp_path, p);
    }
    return rv;
}

apr_status_t acme_store_stage(acme_store_t *store, const char *name, const acme_key_t *key,
                              const char *chain_pem, apr_size_t chain_len, const json_t *meta,
                              const char **pwhy, apr_pool_t *p)
{
    apr_array_header_t *chain;
    set_files_t files;
    const char *staging = apr_pstrcat(p, store->dir, "/staging", NULL);
    const char *prefix;
    char *meta_text = NULL;
    apr_status_t rv;

    if (!acme_store_name_ok(name) || !key || !chain_pem || (meta && !json_is_object(meta))) {
        rv = APR_EINVAL;
        goto out;
    }
    rv = check_untimed(&chain, key, chain_pem, chain_len, "the new certificate chain", pwhy, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_key_to_pem(&files.data[F_KEY], &files.len[F_KEY], key, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    files.data[F_CHAIN] = chain_pem;
    files.len[F_CHAIN] = chain_len;
    meta_text = meta ? json_dumps(meta, JSON_COMPACT) : strdup("{}");
    if (!meta_text) {
        rv = APR_ENOMEM;
        goto out;
    }
    files.data[F_META] = meta_text;
    files.len[F_META] = strlen(meta_text);
    /* Built beside its place and moved in whole, so that a crash never leaves a staged set with
     * the key of one issuance and the chain of another. */
    prefix = apr_pstrcat(p, ".", name, ".tmp-", NULL);
    rv = clean_leftovers(staging, prefix, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = place_set(store, staging, apr_psprintf(p, "%s%ld", prefix, (long)getpid()), name, &files,
                   "stage", p);
out:
    free(meta_text);
    return rv;
}

/* The highest <n> among the entries of dir (files too: a number taken is a number taken). */
static apr_status_t max_generation(int *pmax, const char *dir, apr_pool_t *p)
{
    apr_array_header_t *names;
    const char *name;
    int i, max = 0;
    apr_status_t rv;

    rv = list_dir(&names, dir, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    for (i = 0; i < names->nelts; i++) {
        name = APR_ARRAY_IDX(names, i, const char *);
        if (strlen(name) <= 9 && strspn(name, "0123456789") == strlen(name) && atoi(name) > max) {
            max = atoi(name);
        }
    }
    *pmax = max;
out:
    return rv;
}

apr_status_t acme_store_promote(acme_store_t *store, const char *name,
                                const apr_array_header_t *names, apr_time_t now, const char **pwhy,
                                apr_pool_t *p)
{
    acme_certset_t *set;
    set_files_t files;
    const char *domains = apr_pstrcat(p, store->dir, "/domains", NULL);
    const char *archive, *link_prefix, *tmp_link = NULL, *why = NULL;
    int gen;
    apr_status_t rv;

    if (!acme_store_name_ok(name)) {
        rv = APR_EINVAL;
        goto out;
    }
    rv = load_set(&set, &files, store, name, 1, pwhy, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_cert_chain_check(set->chain, set->key, names, now, &why, p);
    if (rv != APR_SUCCESS) {
        set_why(pwhy, apr_psprintf(p, "staging/%s: %s", name, why ? why : "the chain is refused"));
        rv = ACME_EBADSTORE;
        goto out;
    }

    /* 1. The new generation, complete and synced, appears under its number in one rename. */
    archive = apr_pstrcat(p, store->dir, "/archive/", name, NULL);
    rv = make_dirs(archive, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = clean_leftovers(archive, ".tmp-", p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = max_generation(&gen, archive, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    gen++;
    rv = place_set(store, archive, apr_psprintf(p, ".tmp-%d-%ld", gen, (long)getpid()),
                   apr_itoa(p, gen), &files, "archive", p);
    if (rv != APR_SUCCESS) {
        goto out;
    }

    /* 2. The swap: a new symlink renamed over domains/<name>, atomic for every reader. */
    link_prefix = apr_pstrcat(p, ".", name, ".lnk-", NULL);
    rv = clean_leftovers(domains, link_prefix, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    step(store, "link");
    tmp_link = apr_psprintf(p, "%s/%s%ld", domains, link_prefix, (long)getpid());
    if (symlink(apr_psprintf(p, "../archive/%s/%d", name, gen), tmp_link) != 0) {
        rv = os_error();
        tmp_link = NULL;
        goto out;
    }
    step(store, "link-rename");
    rv = apr_file_rename(tmp_link, apr_pstrcat(p, domains, "/", name, NULL), p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    tmp_link = NULL;
    rv = sync_dir(domains);
    if (rv != APR_SUCCESS) {
        goto out;
    }

    /* 3. The staged set is active now; a crash before this point leaves it for a retry. */
    step(store, "unstage");
    rv = remove_tree(apr_pstrcat(p, store->dir, "/staging/", name, NULL), p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = sync_dir(apr_pstrcat(p, store->dir, "/staging", NULL));
out:
    if (tmp_link) {
        apr_file_remove(tmp_link, p);
    }
    return rv;
}
