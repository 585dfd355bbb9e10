/* acme_store_set.c - certificate sets in the store: staging a new set, loading the active or the
 * staged one, and promoting a staged set by building a new archive generation and swapping the
 * domains/<name> symlink with one rename. Built on the file layer of acme_store.c through
 * acme_store_int.h; the layout and the guarantees are described in acme_store.h. Every folder is
 * reached from the store's top without following a link (acme_store_dir_open): staging/ is the
 * User's, and the parent (root) copies what it finds there into archive/. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_strings.h>

#include "acme_setcache.h"
#include "acme_store_int.h"

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
    acme_store_file_id_t id[F_COUNT]; /* filled when read from the store */
} set_files_t;

static void set_why(const char **pwhy, const char *why)
{
    if (pwhy && why) {
        *pwhy = why;
    }
}

/* 1 when s is prefix followed by one or more characters of [0-9-]. Names never end in such a
 * tail after our markers, so the leftovers of one name never match those of another. */
int acme_store_is_leftover(const char *s, const void *baton)
{
    const char *prefix = baton;
    apr_size_t n = strlen(prefix);

    if (strncmp(s, prefix, n) != 0 || s[n] == '\0') {
        return 0;
    }
    return strspn(s + n, "0123456789-") == strlen(s + n);
}

/* Removes what a crashed run left in the open folder dirfd: entries named prefix + digits. */
static apr_status_t clean_leftovers(int dirfd, const char *prefix, apr_pool_t *p)
{
    apr_array_header_t *names;
    const char *name;
    int i;
    apr_status_t rv;

    /* Only the leftovers are kept: domains/ and staging/ hold an entry per certificate. */
    rv = acme_store_list_matching_at(&names, dirfd, acme_store_is_leftover, prefix, p);
    for (i = 0; rv == APR_SUCCESS && i < names->nelts; i++) {
        name = APR_ARRAY_IDX(names, i, const char *);
        rv = acme_store_remove_at(dirfd, name, p);
    }
    return rv;
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

/* The files of a new set: the key as PEM, the chain as given, meta.json (*pmeta_text: malloc'ed,
 * the caller frees it, also on failure). */
static apr_status_t fill_set_files(set_files_t *files, char **pmeta_text, const acme_key_t *key,
                                   const char *chain_pem, apr_size_t chain_len, const json_t *meta,
                                   apr_pool_t *p)
{
    apr_status_t rv;

    rv = acme_key_to_pem(&files->data[F_KEY], &files->len[F_KEY], key, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    files->data[F_CHAIN] = chain_pem;
    files->len[F_CHAIN] = chain_len;
    *pmeta_text = meta ? json_dumps(meta, JSON_COMPACT) : strdup("{}");
    if (!*pmeta_text) {
        return APR_ENOMEM;
    }
    files->data[F_META] = *pmeta_text;
    files->len[F_META] = strlen(*pmeta_text);
    return APR_SUCCESS;
}

/* Reads the files of a set in the open folder dirfd; a missing or oversized file makes the set
 * bad, not absent, except meta.json, which is optional. */
static apr_status_t read_set_files(set_files_t *files, int dirfd, const char *what,
                                   const char **pwhy, apr_pool_t *p)
{
    char *data;
    apr_size_t len;
    int i;
    apr_status_t rv = APR_SUCCESS;

    for (i = 0; i < F_COUNT; i++) {
        rv = acme_store_read_at_id(&data, &len, &files->id[i], dirfd, set_file[i].name,
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
    const char *prefix = apr_pstrcat(p, "../archive/", name, "/", NULL);
    char target[1024];
    apr_size_t plen = strlen(prefix);
    ssize_t n;
    int dirfd = -1;
    apr_status_t rv;

    rv = acme_store_dir_open(&dirfd, store, "domains", 0, pwhy, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    n = readlinkat(dirfd, name, target, sizeof(target) - 1);
    if (n < 0) {
        rv = acme_store_os_error();
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
    acme_store_close(&dirfd);
    return rv;
}

/* Loads a set and keeps its raw files; with cache (the active set only), files checked before
 * are not decoded and checked again. */
static apr_status_t load_set(acme_certset_t **pset, set_files_t *pfiles, acme_store_t *store,
                             const char *name, int staged, acme_setcache_t *cache,
                             const char **pwhy, apr_pool_t *p)
{
    acme_certset_t *set;
    set_files_t files;
    const char *dir, *what;
    int gen = 0, dirfd = -1;
    apr_status_t rv;

    if (!acme_store_name_ok(name)) {
        rv = APR_EINVAL;
        goto out;
    }
    if (staged) {
        /* staging/<name> is the User's: a link there must not make root read (and then copy
         * into archive/) the files of another folder. */
        what = apr_pstrcat(p, "staging/", name, NULL);
        dir = apr_pstrcat(p, store->dir, "/", what, NULL);
        rv = acme_store_dir_open(&dirfd, store, what, 0, pwhy, p);
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
        dir = apr_pstrcat(p, store->dir, "/domains/", name, NULL);
        rv = acme_store_dir_open(&dirfd, store, what, 0, pwhy, p);
        if (APR_STATUS_IS_ENOENT(rv)) {
            set_why(pwhy,
                    apr_psprintf(p, "domains/%s points to %s, which does not exist", name, what));
            rv = ACME_EBADSTORE;
        }
        if (rv != APR_SUCCESS) {
            goto out;
        }
    }
    set = apr_pcalloc(p, sizeof(*set));
    rv = read_set_files(&files, dirfd, what, pwhy, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    if (cache &&
        acme_setcache_get(cache, acme_store_path(store, what, p), &files.id[F_KEY],
                          &files.id[F_CHAIN], &set->key, p) &&
        set->key &&
        acme_cert_chain_parse(&set->chain, files.data[F_CHAIN], files.len[F_CHAIN], p) ==
            APR_SUCCESS) {
        goto checked; /* the same files passed the checks below before */
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
    if (cache) {
        acme_setcache_put(cache, acme_store_path(store, what, p), &files.id[F_KEY],
                          &files.id[F_CHAIN], set->key);
    }
checked:
    rv = acme_store_parse_object(&set->meta, files.data[F_META], files.len[F_META], p);
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
    acme_store_close(&dirfd);
    return rv;
}

apr_status_t acme_store_load(acme_certset_t **pset, acme_store_t *store, const char *name,
                             int staged, const char **pwhy, apr_pool_t *p)
{
    return load_set(pset, NULL, store, name, staged, NULL, pwhy, p);
}

apr_status_t acme_store_load_active_cached(acme_certset_t **pset, acme_store_t *store,
                                           const char *name, acme_setcache_t *cache,
                                           const char **pwhy, apr_pool_t *p)
{
    return load_set(pset, NULL, store, name, 0, cache, pwhy, p);
}

/* Builds a set in tmp below the open folder dirfd (files written atomically, folder synced) and
 * renames it to final, replacing an earlier one: a crash leaves no folder final or a complete
 * one. The step hook sees <what>-write and <what>-rename. */
static apr_status_t place_set(acme_store_t *store, int dirfd, const char *tmp, const char *final,
                              const set_files_t *files, const char *what, apr_pool_t *p)
{
    int i, fd = -1;
    apr_status_t rv;

    acme_store_step(store, apr_pstrcat(p, what, "-write", NULL));
    rv = acme_store_remove_at(dirfd, tmp, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_store_subdir_open(&fd, dirfd, NULL, tmp, 1, NULL, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    for (i = 0; i < F_COUNT; i++) {
        /* Each file synced, the folder once below, before it is renamed to final: a sync of
         * the folder per file cost a third of a promotion's fsyncs. */
        rv = acme_store_write_at_opt(store, fd, set_file[i].name, files->data[i], files->len[i],
                                     set_file[i].perms, (uid_t)-1, (gid_t)-1, ACME_SYNC_FILE_ONLY,
                                     p);
        if (rv != APR_SUCCESS) {
            goto out;
        }
    }
    rv = acme_store_sync_fd(fd);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    acme_store_step(store, apr_pstrcat(p, what, "-rename", NULL));
    rv = acme_store_remove_at(dirfd, final, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    if (renameat(dirfd, tmp, dirfd, final) != 0) {
        rv = acme_store_os_error();
        goto out;
    }
    rv = acme_store_sync_fd(dirfd);
out:
    acme_store_close(&fd);
    if (rv != APR_SUCCESS) {
        acme_store_remove_at(dirfd, tmp, p);
    }
    return rv;
}

apr_status_t acme_store_stage(acme_store_t *store, const char *name, const acme_key_t *key,
                              const char *chain_pem, apr_size_t chain_len, const json_t *meta,
                              const char **pwhy, apr_pool_t *p)
{
    apr_array_header_t *chain;
    set_files_t files;
    const char *prefix;
    char *meta_text = NULL;
    int staging = -1;
    apr_status_t rv;

    if (!acme_store_name_ok(name) || !key || !chain_pem || (meta && !json_is_object(meta))) {
        rv = APR_EINVAL;
        goto out;
    }
    rv = check_untimed(&chain, key, chain_pem, chain_len, "the new certificate chain", pwhy, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = fill_set_files(&files, &meta_text, key, chain_pem, chain_len, meta, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    /* Built beside its place and moved in whole, so that a crash never leaves a staged set with
     * the key of one issuance and the chain of another. */
    prefix = apr_pstrcat(p, ".", name, ".tmp-", NULL);
    rv = acme_store_dir_open(&staging, store, "staging", 1, pwhy, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = clean_leftovers(staging, prefix, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = place_set(store, staging, apr_psprintf(p, "%s%ld", prefix, (long)getpid()), name, &files,
                   "stage", p);
out:
    acme_store_close(&staging);
    free(meta_text);
    return rv;
}

/* The highest <n> among the entries of the open folder dirfd (files too: a number taken is a
 * number taken). */
static apr_status_t max_generation(int *pmax, int dirfd, apr_pool_t *p)
{
    apr_array_header_t *names;
    const char *name;
    int i, max = 0;
    apr_status_t rv;

    rv = acme_store_list_at(&names, dirfd, p);
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

/* Loads the staged set of name and checks it as activation would: the one place for what
 * promotion, the restart thread and the driver ask of a staged set. APR_EAGAIN: not yet valid,
 * *pwhen says from when. */
static apr_status_t load_staged_checked(acme_certset_t **pset, set_files_t *pfiles,
                                        acme_store_t *store, const char *name,
                                        const apr_array_header_t *names, apr_time_t now,
                                        apr_time_t *pwhen, const char **pwhy, apr_pool_t *p)
{
    const char *why = NULL;
    apr_status_t rv;

    if (!acme_store_name_ok(name)) {
        rv = APR_EINVAL;
        goto out;
    }
    rv = load_set(pset, pfiles, store, name, 1, NULL, pwhy, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_cert_activation_check((*pset)->chain, (*pset)->key, names, now, pwhen, &why, p);
    if (rv == APR_EAGAIN) {
        set_why(pwhy, apr_psprintf(p, "staging/%s: %s", name, why));
    } else if (rv != APR_SUCCESS) {
        set_why(pwhy, apr_psprintf(p, "staging/%s: %s", name, why ? why : "the chain is refused"));
        rv = ACME_EBADSTORE;
    }
out:
    return rv;
}

apr_status_t acme_store_check_staged_at(acme_store_t *store, const char *name,
                                        const apr_array_header_t *names, apr_time_t now,
                                        apr_time_t *pwhen, const char **pwhy, apr_pool_t *p)
{
    acme_certset_t *set;

    return load_staged_checked(&set, NULL, store, name, names, now, pwhen, pwhy, p);
}

apr_status_t acme_store_check_staged(acme_store_t *store, const char *name,
                                     const apr_array_header_t *names, apr_time_t now,
                                     const char **pwhy, apr_pool_t *p)
{
    return acme_store_check_staged_at(store, name, names, now, NULL, pwhy, p);
}

/* Takes the staged set of name out of staging/ once it is active: first renamed to a leftover
 * name, one step whatever the User put inside, then removed. Neither can make the promotion fail:
 * what stays is removed with the leftovers of the next staging, and a staged set that could not
 * even be renamed is only activated once more at the next start. */
static void unstage_at(int staging, const char *name, apr_pool_t *p)
{
    const char *aside = apr_psprintf(p, ".%s.tmp-0-%ld", name, (long)getpid());

    acme_store_remove_at(staging, aside, p);
    if (renameat(staging, name, staging, aside) == 0) {
        acme_store_remove_at(staging, aside, p);
    } else {
        acme_store_remove_at(staging, name, p);
    }
}

/* Unstages each of names (const char *), then syncs staging/ once. */
static void unstage(acme_store_t *store, const apr_array_header_t *names, apr_pool_t *p)
{
    int i, staging = -1;

    if (acme_store_dir_open(&staging, store, "staging", 0, NULL, p) != APR_SUCCESS) {
        return;
    }
    for (i = 0; i < names->nelts; i++) {
        unstage_at(staging, APR_ARRAY_IDX(names, i, const char *), p);
    }
    acme_store_sync_fd(staging);
    acme_store_close(&staging);
}

struct acme_store_batch_t {
    apr_array_header_t *names; /* promoted, still staged: unstaged once domains/ is synced */
};

/* Makes files the active set of name: a new archive generation, complete and synced, then the
 * domains/<name> link swapped to it with one rename. What promotion and activation share; the
 * caller checked the set. */
static apr_status_t install_set(acme_store_t *store, const char *name, const set_files_t *files,
                                int sync_domains, const char **pwhy, apr_pool_t *p)
{
    const char *link_prefix, *tmp_link = NULL;
    int gen, archive = -1, domains = -1;
    apr_status_t rv;

    /* 1. The new generation, complete and synced, appears under its number in one rename. */
    rv = acme_store_dir_open(&archive, store, apr_pstrcat(p, "archive/", name, NULL), 1, pwhy, p);
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
                   apr_itoa(p, gen), files, "archive", p);
    if (rv != APR_SUCCESS) {
        goto out;
    }

    /* 2. The swap: a new symlink renamed over domains/<name>, atomic for every reader. */
    rv = acme_store_dir_open(&domains, store, "domains", 1, pwhy, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    link_prefix = apr_pstrcat(p, ".", name, ".lnk-", NULL);
    rv = clean_leftovers(domains, link_prefix, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    acme_store_step(store, "link");
    tmp_link = apr_psprintf(p, "%s%ld", link_prefix, (long)getpid());
    if (symlinkat(apr_psprintf(p, "../archive/%s/%d", name, gen), domains, tmp_link) != 0) {
        rv = acme_store_os_error();
        tmp_link = NULL;
        goto out;
    }
    acme_store_step(store, "link-rename");
    if (renameat(domains, tmp_link, domains, name) != 0) {
        rv = acme_store_os_error();
        goto out;
    }
    tmp_link = NULL;
    rv = sync_domains ? acme_store_sync_fd(domains) : APR_SUCCESS;
out:
    if (tmp_link) {
        unlinkat(domains, tmp_link, 0);
    }
    acme_store_close(&archive);
    acme_store_close(&domains);
    return rv;
}

acme_store_batch_t *acme_store_batch_make(apr_pool_t *p)
{
    acme_store_batch_t *b = apr_pcalloc(p, sizeof(*b));

    b->names = apr_array_make(p, 16, sizeof(const char *));
    return b;
}

apr_status_t acme_store_promote_in(acme_store_t *store, const char *name,
                                   const apr_array_header_t *names, apr_time_t now,
                                   const char **pwhy, acme_store_batch_t *batch, apr_pool_t *p)
{
    acme_certset_t *set;
    set_files_t files;
    apr_array_header_t *one;
    apr_status_t rv;

    rv = load_staged_checked(&set, &files, store, name, names, now, NULL, pwhy, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = install_set(store, name, &files, batch == NULL, pwhy, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    /* 3. The staged set is active now; a crash before this point leaves it for a retry. In a
     * batch it goes once domains/ is synced (acme_store_promote_done). */
    if (batch) {
        APR_ARRAY_PUSH(batch->names, const char *) = apr_pstrdup(batch->names->pool, name);
        return APR_SUCCESS;
    }
    acme_store_step(store, "unstage");
    one = apr_array_make(p, 1, sizeof(const char *));
    APR_ARRAY_PUSH(one, const char *) = name;
    unstage(store, one, p);
    return APR_SUCCESS;
}

apr_status_t acme_store_promote(acme_store_t *store, const char *name,
                                const apr_array_header_t *names, apr_time_t now, const char **pwhy,
                                apr_pool_t *p)
{
    return acme_store_promote_in(store, name, names, now, pwhy, NULL, p);
}

apr_status_t acme_store_promote_done(acme_store_t *store, acme_store_batch_t *batch, apr_pool_t *p)
{
    int domains = -1;
    apr_status_t rv;

    if (!batch || !batch->names->nelts) {
        return APR_SUCCESS;
    }
    /* The links first: a staged set goes only once its link is durable. */
    rv = acme_store_dir_open(&domains, store, "domains", 0, NULL, p);
    if (rv == APR_SUCCESS) {
        rv = acme_store_sync_fd(domains);
    }
    acme_store_close(&domains);
    if (rv == APR_SUCCESS) {
        acme_store_step(store, "unstage");
        unstage(store, batch->names, p);
    }
    apr_array_clear(batch->names);
    return rv;
}

apr_status_t acme_store_activate(acme_store_t *store, const char *name, const acme_key_t *key,
                                 const char *chain_pem, apr_size_t chain_len, const json_t *meta,
                                 const apr_array_header_t *names, apr_time_t now, const char **pwhy,
                                 apr_pool_t *p)
{
    apr_array_header_t *chain;
    set_files_t files;
    const char *why = NULL;
    char *meta_text = NULL;
    apr_status_t rv;

    if (!acme_store_name_ok(name) || !key || !chain_pem || (meta && !json_is_object(meta))) {
        rv = APR_EINVAL;
        goto out;
    }
    /* The very checks a staged set passes before promotion (load_staged_checked). */
    rv = check_untimed(&chain, key, chain_pem, chain_len, "the certificate chain", pwhy, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = acme_cert_activation_check(chain, key, names, now, NULL, &why, p);
    if (rv != APR_SUCCESS) {
        set_why(pwhy, why ? why : "the chain is refused");
        rv = rv == APR_EAGAIN ? rv : ACME_EBADSTORE;
        goto out;
    }
    rv = fill_set_files(&files, &meta_text, key, chain_pem, chain_len, meta, p);
    if (rv != APR_SUCCESS) {
        goto out;
    }
    rv = install_set(store, name, &files, 1, pwhy, p);
out:
    free(meta_text);
    return rv;
}
