/* acme_import.c - reading certbot's and mod_md's files for `acmectl import` (acme_import.h): a
 * source folder walked one component at a time from its descriptor (the parsers of what is
 * read are in acme_import_parse.c). The tool runs as root: a link that leads out of the folder
 * (live/<name>/privkey.pem -> /etc/shadow) is refused by name, never followed, and every file
 * is bounded. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_strings.h>

#include "acme_import.h"

struct acme_import_src_t {
    const char *dir;  /* as given */
    const char *real; /* its canonical path: absolute links that start with it stay inside */
    const char *abs;  /* the path as given when absolute (a link to the folder, as certbot's
                       * config_dir may be), else NULL: absolute links under it stay inside too */
    int fd;
};

static void set_why(const char **pwhy, const char *why)
{
    if (pwhy) {
        *pwhy = why;
    }
}

static apr_status_t src_cleanup(void *data)
{
    acme_import_src_t *src = data;

    if (src->fd >= 0) {
        close(src->fd);
        src->fd = -1;
    }
    return APR_SUCCESS;
}

apr_status_t acme_import_src_open(acme_import_src_t **psrc, const char *dir, apr_pool_t *p)
{
    acme_import_src_t *src;
    char *real;
    int fd;

    real = realpath(dir, NULL);
    if (!real) {
        return APR_FROM_OS_ERROR(errno);
    }
    fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        apr_status_t rv = APR_FROM_OS_ERROR(errno);
        free(real);
        return rv;
    }
    src = apr_pcalloc(p, sizeof(*src));
    apr_pool_cleanup_register(p, src, src_cleanup, apr_pool_cleanup_null);
    src->dir = apr_pstrdup(p, dir);
    src->real = apr_pstrdup(p, real);
    if (dir[0] == '/' && strcmp(dir, real) != 0) {
        char *a = apr_pstrdup(p, dir);
        apr_size_t n = strlen(a);
        while (n > 1 && a[n - 1] == '/') {
            a[--n] = '\0';
        }
        src->abs = a;
    }
    src->fd = fd;
    free(real);
    *psrc = src;
    return APR_SUCCESS;
}

/* 1 when path is dir or below it. */
static int below(const char *path, const char *dir)
{
    apr_size_t n = strlen(dir);

    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

const char *acme_import_src_dir(const acme_import_src_t *src)
{
    return src->dir;
}

/* The walk: the folders entered so far (names from the top) and the open descriptor of the
 * last one. */
typedef struct walk_t {
    acme_import_src_t *src;
    apr_array_header_t *stack; /* const char * */
    int fd;                    /* the folder the stack names; src->fd itself when empty */
    const char *relpath;       /* what was asked for, for messages */
    apr_pool_t *p;
} walk_t;

static void walk_close(walk_t *w)
{
    if (w->fd >= 0 && w->fd != w->src->fd) {
        close(w->fd);
    }
    w->fd = -1;
}

/* Opens the folder the stack names, from the top, each step without following a link. */
static apr_status_t walk_reopen(walk_t *w)
{
    int i, fd;

    walk_close(w);
    w->fd = w->src->fd;
    for (i = 0; i < w->stack->nelts; i++) {
        fd = openat(w->fd, APR_ARRAY_IDX(w->stack, i, const char *),
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            apr_status_t rv = APR_FROM_OS_ERROR(errno);
            walk_close(w);
            return rv;
        }
        walk_close(w);
        w->fd = fd;
    }
    return APR_SUCCESS;
}

static const char *walk_here(const walk_t *w, const char *name)
{
    const char *s = "";
    int i;

    for (i = 0; i < w->stack->nelts; i++) {
        s = apr_pstrcat(w->p, s, APR_ARRAY_IDX(w->stack, i, const char *), "/", NULL);
    }
    return apr_pstrcat(w->p, s, name, NULL);
}

/* Resolves relpath below the source to an open descriptor: a folder (want_dir) or a plain file
 * with one name. */
static apr_status_t walk_open(int *pfd, acme_import_src_t *src, const char *relpath, int want_dir,
                              const char **pwhy, apr_pool_t *p)
{
    walk_t w;
    char *todo = apr_pstrdup(p, relpath), *name, *rest;
    const char *why = NULL;
    struct stat st;
    int links = 0, fd = -1;
    apr_status_t rv = APR_SUCCESS;

    w.src = src;
    w.stack = apr_array_make(p, 8, sizeof(const char *));
    w.fd = src->fd;
    w.relpath = relpath;
    w.p = p;
    if (todo[0] == '/') {
        rv = APR_EINVAL;
        goto out;
    }
    while (todo && *todo) {
        name = todo;
        rest = strchr(todo, '/');
        if (rest) {
            *rest++ = '\0';
        }
        todo = rest;
        if (!*name || strcmp(name, ".") == 0) {
            continue;
        }
        if (strcmp(name, "..") == 0) {
            if (w.stack->nelts == 0) {
                why = apr_psprintf(p, "%s climbs out of %s", relpath, src->dir);
                rv = ACME_EBADSTORE;
                goto out;
            }
            apr_array_pop(w.stack);
            rv = walk_reopen(&w);
            if (rv != APR_SUCCESS) {
                goto out;
            }
            continue;
        }
        if (fstatat(w.fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rv = APR_FROM_OS_ERROR(errno);
            goto out;
        }
        if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t n;
            const char *here = walk_here(&w, name);
            apr_size_t rlen = strlen(src->real);

            if (++links > ACME_IMPORT_LINKS_MAX) {
                why = apr_psprintf(p, "%s: more than %d symbolic links on the way", relpath,
                                   ACME_IMPORT_LINKS_MAX);
                rv = ACME_EBADSTORE;
                goto out;
            }
            n = readlinkat(w.fd, name, target, sizeof(target) - 1);
            if (n < 0) {
                rv = APR_FROM_OS_ERROR(errno);
                goto out;
            }
            target[n] = '\0';
            if (target[0] == '/') {
                /* Absolute: inside only when it names a place below the folder itself, by its
                 * canonical path or by the path the operator gave. */
                if (!below(target, src->real) && src->abs && below(target, src->abs)) {
                    rlen = strlen(src->abs);
                } else if (!below(target, src->real)) {
                    why = apr_psprintf(p, "%s is a link to %s, which leads out of %s", here,
                                       acme_log_safe(target, 512, p), src->dir);
                    rv = ACME_EBADSTORE;
                    goto out;
                }
                apr_array_clear(w.stack);
                rv = walk_reopen(&w);
                if (rv != APR_SUCCESS) {
                    goto out;
                }
                todo = apr_pstrcat(p, target + rlen, todo ? "/" : "", todo ? todo : "", NULL);
            } else {
                /* Relative to the folder holding the link; ".." above the top is refused
                 * when it is met. */
                apr_size_t depth = (apr_size_t)w.stack->nelts, ups = 0;
                const char *t = target;
                while (strncmp(t, "../", 3) == 0 || strcmp(t, "..") == 0) {
                    ups++;
                    t += t[2] ? 3 : 2;
                }
                if (ups > depth) {
                    why = apr_psprintf(p, "%s is a link to %s, which leads out of %s", here,
                                       acme_log_safe(target, 512, p), src->dir);
                    rv = ACME_EBADSTORE;
                    goto out;
                }
                todo = apr_pstrcat(p, target, todo ? "/" : "", todo ? todo : "", NULL);
            }
            continue;
        }
        if (todo && *todo) {
            if (!S_ISDIR(st.st_mode)) {
                why = apr_psprintf(p, "%s is not a folder", walk_here(&w, name));
                rv = ACME_EBADSTORE;
                goto out;
            }
            fd = openat(w.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                rv = APR_FROM_OS_ERROR(errno);
                goto out;
            }
            walk_close(&w);
            w.fd = fd;
            fd = -1;
            APR_ARRAY_PUSH(w.stack, const char *) = apr_pstrdup(p, name);
            continue;
        }
        /* The last component. */
        if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
            why = apr_psprintf(p, "%s is not a %s", walk_here(&w, name),
                               want_dir ? "folder" : "plain file");
            rv = ACME_EBADSTORE;
            goto out;
        }
        fd = openat(w.fd, name,
                    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (want_dir ? O_DIRECTORY : 0));
        if (fd < 0) {
            rv = APR_FROM_OS_ERROR(errno);
            goto out;
        }
        /* The same checks on what was opened: the name may have changed in between. */
        if (fstat(fd, &st) != 0 || (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))) {
            why = apr_psprintf(p, "%s changed while it was read", walk_here(&w, name));
            rv = ACME_EBADSTORE;
            goto out;
        }
        if (!want_dir && st.st_nlink != 1) {
            why = apr_psprintf(p, "%s has other names (a hard link), which the import never reads",
                               walk_here(&w, name));
            rv = ACME_EBADSTORE;
            goto out;
        }
        *pfd = fd;
        fd = -1;
        walk_close(&w);
        return APR_SUCCESS;
    }
    /* relpath named the top or a folder reached through a link as its last component. */
    if (!want_dir) {
        why = apr_psprintf(p, "%s is not a plain file", relpath);
        rv = ACME_EBADSTORE;
        goto out;
    }
    fd = w.fd == src->fd ? dup(src->fd) : w.fd;
    if (fd < 0) {
        rv = APR_FROM_OS_ERROR(errno);
        goto out;
    }
    if (w.fd != src->fd) {
        w.fd = -1;
    }
    *pfd = fd;
    fd = -1;
out:
    if (fd >= 0) {
        close(fd);
    }
    walk_close(&w);
    if (why) {
        set_why(pwhy, why);
    }
    return rv;
}

apr_status_t acme_import_read(char **pdata, apr_size_t *plen, acme_import_src_t *src,
                              const char *relpath, apr_size_t max, const char **pwhy, apr_pool_t *p)
{
    char *buf;
    apr_size_t len = 0;
    ssize_t n;
    int fd = -1;
    apr_status_t rv;

    rv = walk_open(&fd, src, relpath, 0, pwhy, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    buf = apr_palloc(p, max + 2);
    while (len <= max) {
        n = read(fd, buf + len, max + 1 - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rv = APR_FROM_OS_ERROR(errno);
            goto out;
        }
        if (n == 0) {
            break;
        }
        len += (apr_size_t)n;
    }
    if (len > max) {
        set_why(pwhy, apr_psprintf(p, "%s is larger than %" APR_SIZE_T_FMT " bytes", relpath, max));
        rv = ACME_ETOOLARGE;
        goto out;
    }
    buf[len] = '\0';
    *pdata = buf;
    *plen = len;
out:
    if (fd >= 0) {
        close(fd);
    }
    return rv;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

apr_status_t acme_import_list(apr_array_header_t **pnames, acme_import_src_t *src,
                              const char *reldir, const char **pwhy, apr_pool_t *p)
{
    apr_array_header_t *names = apr_array_make(p, 16, sizeof(const char *));
    struct dirent *e;
    DIR *d = NULL;
    int fd = -1;
    apr_status_t rv;

    rv = walk_open(&fd, src, reldir, 1, pwhy, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    d = fdopendir(fd);
    if (!d) {
        rv = APR_FROM_OS_ERROR(errno);
        goto out;
    }
    fd = -1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        if (names->nelts >= ACME_IMPORT_LIST_MAX) {
            set_why(pwhy,
                    apr_psprintf(p, "%s has more than %d entries", reldir, ACME_IMPORT_LIST_MAX));
            rv = ACME_ETOOLARGE;
            goto out;
        }
        APR_ARRAY_PUSH(names, const char *) = apr_pstrdup(p, e->d_name);
    }
    qsort(names->elts, (size_t)names->nelts, sizeof(const char *), cmp_str);
    *pnames = names;
out:
    if (d) {
        closedir(d);
    }
    if (fd >= 0) {
        close(fd);
    }
    return rv;
}
