/* acmectl_check.c - acmectl check: the owners and modes of the store (docs/store.md,
 * Ownership), each problem with the command that fixes it.
 *
 * Looks, changes nothing. Below the User's folders (accounts/, staging/, jobs/) only lstat()
 * is used, one level at a time after the level above was seen to be a folder and not a link:
 * what the User planted there is reported, never followed (a link swapped in between two looks
 * can at worst make a report wrong, never make root read or change anything).
 */
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>

#include <apr_strings.h>

#include "acme_store_ctl.h"
#include "acmectl.h"

typedef struct check_t {
    apr_array_header_t *found;
    uid_t root;
    uid_t user;
    gid_t group;
    const char *owner; /* "user:group" for chown */
    apr_pool_t *p;
} check_t;

static void add(check_t *c, const char *path, const char *problem, const char *fix)
{
    acmectl_finding_t *f = &APR_ARRAY_PUSH(c->found, acmectl_finding_t);

    f->path = path;
    f->problem = problem;
    f->fix = fix;
}

/* path as one shell word for the fix commands: names in the User's folders are the User's
 * choice, and an operator runs what is printed ("x; rm -rf /" must stay one file name). */
static const char *sh(const char *path, apr_pool_t *p)
{
    static const char safe[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                               "/._-+:@";
    const char *s;
    char *out, *o;

    if (*path && strspn(path, safe) == strlen(path)) {
        return path;
    }
    out = apr_palloc(p, strlen(path) * 4 + 3);
    o = out;
    *o++ = '\'';
    for (s = path; *s; s++) {
        if (*s == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *s;
        }
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

static const char *who(uid_t uid, apr_pool_t *p)
{
    struct passwd *pw = getpwuid(uid);

    return pw ? apr_psprintf(p, "%s (uid %ld)", pw->pw_name, (long)uid)
              : apr_psprintf(p, "uid %ld", (long)uid);
}

/* A path that must be a folder and not a link: 0 when it is not (reported), 1 when it is. */
static int folder(check_t *c, const char *path, struct stat *st)
{
    if (lstat(path, st) != 0) {
        return 0; /* missing: the server makes it */
    }
    if (S_ISLNK(st->st_mode) || !S_ISDIR(st->st_mode)) {
        add(c, path,
            S_ISLNK(st->st_mode)
                ? "is a symbolic link; the store never follows one, and the server does not start"
                : "is not a folder; the server does not start",
            apr_psprintf(c->p, "mv %s %s.moved", sh(path, c->p), sh(path, c->p)));
        return 0;
    }
    return 1;
}

static void group_other_writable(check_t *c, const char *path, const struct stat *st)
{
    if (st->st_mode & (S_IWGRP | S_IWOTH)) {
        add(c, path,
            apr_psprintf(c->p,
                         "can be written by group or others (mode %04o): whoever can "
                         "change it steers the server to other files and keys",
                         (unsigned)(st->st_mode & 07777)),
            apr_psprintf(c->p, "chmod go-w %s", sh(path, c->p)));
    }
}

/* The operator's folders above the store: none may be changed by the User or by others (a
 * root-owned sticky folder such as /tmp lets no one else rename what is ours). */
static void check_above(check_t *c, const char *dir)
{
    char *path = apr_pstrdup(c->p, dir), *slash;
    struct stat st;

    while ((slash = strrchr(path, '/')) != NULL) {
        *slash = '\0';
        const char *up = *path ? path : "/";
        if (stat(up, &st) != 0) {
            break;
        }
        if (c->user != c->root && st.st_uid == c->user) {
            add(c, apr_pstrdup(c->p, up),
                "belongs to the server's User, who could swap the store for one of its own",
                apr_psprintf(c->p, "chown root %s", sh(up, c->p)));
        } else if ((st.st_mode & (S_IWGRP | S_IWOTH)) &&
                   !((st.st_mode & S_ISVTX) && st.st_uid == c->root)) {
            group_other_writable(c, apr_pstrdup(c->p, up), &st);
        }
        if (!*path) {
            break;
        }
    }
}

/* 1 when path is a folder (the keys in it are looked at then), reported or not. */
static int check_root_folder(check_t *c, const char *path, int recursive)
{
    struct stat st;

    if (!folder(c, path, &st)) {
        return 0;
    }
    if (st.st_uid != c->root) {
        add(c, path,
            apr_psprintf(c->p,
                         "belongs to %s; it must be root's, or whoever owns it steers the "
                         "server to other files and keys",
                         who(st.st_uid, c->p)),
            apr_psprintf(c->p, "chown %sroot:root %s", recursive ? "-R " : "", sh(path, c->p)));
    }
    group_other_writable(c, path, &st);
    return 1;
}

/* Keys of root's sets: 0600, root's. */
static void check_keys(check_t *c, const char *dir, int depth)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    struct stat st;

    if (apr_dir_open(&d, dir, c->p) != APR_SUCCESS) {
        return;
    }
    while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d) == APR_SUCCESS) {
        const char *path;
        if (!strcmp(fi.name, ".") || !strcmp(fi.name, "..")) {
            continue;
        }
        path = apr_pstrcat(c->p, dir, "/", fi.name, NULL);
        if (lstat(path, &st) != 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode) && depth > 0) {
            check_keys(c, path, depth - 1);
        } else if (S_ISREG(st.st_mode) && !strcmp(fi.name, ACME_STORE_KEY_FILE) &&
                   (st.st_uid != c->root || (st.st_mode & 077))) {
            add(c, path,
                apr_psprintf(c->p, "a private key of %s with mode %04o: only root may read it",
                             who(st.st_uid, c->p), (unsigned)(st.st_mode & 07777)),
                apr_psprintf(c->p, "chown root:root %s && chmod 0600 %s", sh(path, c->p),
                             sh(path, c->p)));
        }
    }
    apr_dir_close(d);
}

/* What is in a folder of the User's must be the User's: root's files there (a key or lock
 * written by hand as root) are unreadable or unwritable to the server. */
static void check_user_entries(check_t *c, const char *dir, int depth)
{
    apr_dir_t *d;
    apr_finfo_t fi;
    struct stat st;

    if (apr_dir_open(&d, dir, c->p) != APR_SUCCESS) {
        return;
    }
    while (apr_dir_read(&fi, APR_FINFO_NAME, d) == APR_SUCCESS) {
        const char *path;
        if (!strcmp(fi.name, ".") || !strcmp(fi.name, "..")) {
            continue;
        }
        path = apr_pstrcat(c->p, dir, "/", fi.name, NULL);
        if (lstat(path, &st) != 0 || S_ISLNK(st.st_mode)) {
            continue; /* links are the User's business: the store never follows them */
        }
        if (st.st_uid != c->user) {
            add(c, path,
                apr_psprintf(c->p,
                             "belongs to %s in a folder of the server's User, who may "
                             "need to read or change it",
                             who(st.st_uid, c->p)),
                apr_psprintf(c->p, "chown %s%s %s", S_ISDIR(st.st_mode) ? "-R " : "", c->owner,
                             sh(path, c->p)));
            continue;
        }
        if (S_ISDIR(st.st_mode) && depth > 0) {
            check_user_entries(c, path, depth - 1);
        }
    }
    apr_dir_close(d);
}

static void check_user_folder(check_t *c, const char *path)
{
    struct stat st;

    if (!folder(c, path, &st)) {
        return;
    }
    if (c->user == c->root) {
        return; /* a server without root: everything is its user's */
    }
    if (st.st_uid != c->user) {
        add(c, path,
            apr_psprintf(c->p,
                         "belongs to %s; the server's User %s writes in it (the server "
                         "gives it back at its next start)",
                         who(st.st_uid, c->p), who(c->user, c->p)),
            apr_psprintf(c->p, "chown %s %s", c->owner, sh(path, c->p)));
        return;
    }
    group_other_writable(c, path, &st);
    check_user_entries(c, path, 1);
}

apr_array_header_t *acmectl_check_store(const char *dir, uid_t root_uid, uid_t user_uid,
                                        gid_t user_gid, const char *user_name, apr_pool_t *p)
{
    static const char *const root_dirs[] = {"domains", "archive", "fallback", "refused", NULL};
    static const char *const user_dirs[] = {"accounts", "staging", "jobs", NULL};
    struct group *gr = getgrgid(user_gid);
    check_t c;
    struct stat st;
    int i;

    c.found = apr_array_make(p, 4, sizeof(acmectl_finding_t));
    c.root = root_uid;
    c.user = user_uid;
    c.group = user_gid;
    c.owner = gr ? apr_psprintf(p, "%s:%s", user_name, gr->gr_name)
                 : apr_psprintf(p, "%s:%ld", user_name, (long)user_gid);
    c.p = p;

    check_above(&c, dir);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        add(&c, dir, "is not a folder (no store here yet: the server makes it at its start)",
            apr_psprintf(p, "ls -ld %s", sh(dir, p)));
        return c.found;
    }
    if (st.st_uid != c.root) {
        add(&c, dir,
            apr_psprintf(p, "belongs to %s; the store's top must be root's", who(st.st_uid, p)),
            apr_psprintf(p, "chown root:root %s", sh(dir, p)));
    }
    group_other_writable(&c, dir, &st);
    if (c.user != c.root && (st.st_mode & S_IXOTH) == 0 && (st.st_mode & S_IXGRP) == 0) {
        add(&c, dir,
            apr_psprintf(p, "mode %04o: the server's User cannot reach its folders in it",
                         (unsigned)(st.st_mode & 07777)),
            apr_psprintf(p, "chmod 0711 %s", sh(dir, p)));
    }
    for (i = 0; root_dirs[i]; i++) {
        const char *path = apr_pstrcat(p, dir, "/", root_dirs[i], NULL);
        /* Keys in archive/<name>/<n>/ and fallback/<name>/; never through a link. */
        if (check_root_folder(&c, path, i < 3) && (i == 1 || i == 2)) {
            check_keys(&c, path, i == 1 ? 2 : 1);
        }
    }
    for (i = 0; user_dirs[i]; i++) {
        check_user_folder(&c, apr_pstrcat(p, dir, "/", user_dirs[i], NULL));
    }
    return c.found;
}

static void check_usage(FILE *out)
{
    fprintf(out, "usage: acmectl [--store DIR] check [--user NAME]\n\n"
                 "Checks the owners and modes of the store without changing anything: root's\n"
                 "folders (the top, domains/, archive/, fallback/, refused/) root's and not\n"
                 "writable by group or others, the server's User's folders (accounts/, staging/,\n"
                 "jobs/) and what is in them the User's, private keys 0600, and no folder above\n"
                 "the store the User or others may change. Each problem comes with the command\n"
                 "that fixes it.\n\n"
                 "  --user NAME  the server's User (default: the owner of jobs/ when it is not\n"
                 "               root, else www-data)\n\n"
                 "Exit status: 0 nothing wrong; 1 problems found; 2 usage; 3 failure.\n");
}

int acmectl_check(acmectl_t *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"user", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *user = NULL;
    apr_array_header_t *found;
    struct passwd *pw;
    struct stat st;
    int opt, i;

    while ((opt = getopt_long(argc, argv, "u:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'u':
            user = optarg;
            break;
        case 'h':
            check_usage(ctx->out);
            return ACMECTL_EXIT_OK;
        default:
            check_usage(ctx->err);
            return ACMECTL_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        check_usage(ctx->err);
        return ACMECTL_EXIT_USAGE;
    }
    if (!user) {
        const char *jobs = apr_pstrcat(ctx->pool, ctx->store_dir, "/jobs", NULL);
        pw = (lstat(jobs, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid != geteuid())
                 ? getpwuid(st.st_uid)
                 : NULL;
        user = pw ? apr_pstrdup(ctx->pool, pw->pw_name) : "www-data";
    }
    pw = getpwnam(user);
    if (!pw) {
        acmectl_err(ctx, "check: no user '%s' (--user names the server's User)",
                    acme_log_safe(user, 64, ctx->pool));
        return ACMECTL_EXIT_USAGE;
    }
    found = acmectl_check_store(ctx->store_dir, geteuid(), pw->pw_uid, pw->pw_gid, user, ctx->pool);
    for (i = 0; i < found->nelts; i++) {
        const acmectl_finding_t *f = &APR_ARRAY_IDX(found, i, acmectl_finding_t);
        fprintf(ctx->out, "%s: %s\n  fix: %s\n", acme_log_safe(f->path, 1024, ctx->pool),
                f->problem, acme_log_safe(f->fix, 2048, ctx->pool));
    }
    if (found->nelts) {
        fprintf(ctx->out, "store %s: %d problem%s (the server's User: %s)\n", ctx->store_dir,
                found->nelts, found->nelts == 1 ? "" : "s", user);
        return ACMECTL_EXIT_PROBLEM;
    }
    fprintf(ctx->out, "store %s: owners and modes are right (the server's User: %s)\n",
            ctx->store_dir, user);
    return ACMECTL_EXIT_OK;
}
