/* acme_store.h - the on-disk store (docs/store.md): accounts, certificate sets, job state.
 *
 *   <store>/accounts/<ca-id>/account.key, account.json
 *   <store>/domains/<name>          symlink -> ../archive/<name>/<n>: the active set
 *   <store>/archive/<name>/<n>/     every set ever promoted: privkey.pem, fullchain.pem, meta.json
 *   <store>/staging/<name>/         a new set, not yet active
 *   <store>/jobs/<name>.json        renewal state
 *
 * Every write is atomic: temp file in the same directory, write, fsync, rename, fsync of the
 * directory. Promotion builds the new set in archive/ and then swaps the domains/<name> symlink
 * with one rename, so a crash at any instant leaves either the old or the new set active, never a
 * mix, and the last good set is never changed in place. Keys are 0600, directories 0700.
 * Unknown files are ignored.
 *
 * Below the top, every path is walked one folder at a time from an open folder, never following a
 * symlink: the parent (root) works in folders the server's User owns (accounts/, staging/, jobs/),
 * and a link planted there must not lead it to other files. Reading, writing or removing through
 * a link gives ACME_EBADSTORE (removing a link removes the link itself). The domains/<name> links
 * are for mod_ssl, which reads through them; the store reads the archive folder they name.
 *
 * One store may be used from several threads when they work on different names; the renewal
 * driver serialises work on one name with its own lock.
 */
#ifndef ACME_STORE_H
#define ACME_STORE_H

#include <apr_file_info.h>

#include "acme_cert.h"
#include "acme_key.h"

/* Bounds for files read back from the store. */
#define ACME_STORE_JSON_MAX (1024 * 1024)
#define ACME_STORE_KEY_MAX  (64 * 1024)

#define ACME_STORE_KEY_FILE   "privkey.pem"
#define ACME_STORE_CHAIN_FILE "fullchain.pem"
#define ACME_STORE_META_FILE  "meta.json"

typedef struct acme_store_t acme_store_t;

/* Crash-test seam: called before each step of an atomic write or a promotion with a short step
 * name ("open", "write", "fsync", "rename", "dirsync", "link", ...). Tests _exit() in it to
 * simulate a crash at that point. NULL in production. */
typedef void acme_store_step_fn(void *baton, const char *step);

/* Opens (creating with 0700 where missing) the store at dir and its top-level folders. A store
 * that fails acme_store_check_owner is refused with ACME_EBADSTORE before anything is made in it.
 */
apr_status_t acme_store_open(acme_store_t **pstore, const char *dir, apr_pool_t *p);

/* Checks, without changing anything, that the folders of the store at dir that only its owner
 * may change (the top, domains/, archive/, fallback/) are folders, not links, that belong to the
 * process's effective user (root when the server starts as root) and that group and others cannot
 * write; and that accounts/, staging/ and jobs/ are folders. Missing ones pass: the opener makes
 * them. ACME_EBADSTORE with *pwhy (may be NULL) naming every folder that fails and the commands
 * that fix it. */
apr_status_t acme_store_check_owner(const char *dir, const char **pwhy, apr_pool_t *p);
const char *acme_store_dir(const acme_store_t *store);
void acme_store_set_step_hook(acme_store_t *store, acme_store_step_fn *fn, void *baton);

/* Absolute path of relpath inside the store. */
const char *acme_store_path(const acme_store_t *store, const char *relpath, apr_pool_t *p);

/* 1 when name is safe as one path component of the store: a DNS name or IP literal as accepted by
 * acme_name_is_dns / acme_name_is_ip but no wildcard ("*" never), or a CA id made by
 * acme_store_ca_id. */
int acme_store_name_ok(const char *name);

/* Atomic write of relpath (missing folders created 0700) with the given APR permissions
 * (APR_FPROT_UREAD | APR_FPROT_UWRITE for keys; not Unix mode bits). */
apr_status_t acme_store_write(acme_store_t *store, const char *relpath, const void *data,
                              apr_size_t len, apr_fileperms_t perms, apr_pool_t *p);

/* acme_store_write without fsync of the file and its folder: readers never see a partial file
 * while the system runs (temp file and rename), but after a crash of the system the file may be
 * missing, empty or torn. Only for files their reader checks in full and makes anew when they
 * are bad (the fallback certificates: thousands of fsyncs at a first start). */
apr_status_t acme_store_write_volatile(acme_store_t *store, const char *relpath, const void *data,
                                       apr_size_t len, apr_fileperms_t perms, apr_pool_t *p);

/* Reads relpath, NUL-terminated. APR_ENOENT when missing, ACME_ETOOLARGE over max,
 * ACME_EBADSTORE for a link on the way or anything but a plain file with one name. */
apr_status_t acme_store_read(char **pdata, apr_size_t *plen, acme_store_t *store,
                             const char *relpath, apr_size_t max, apr_pool_t *p);

/* One version of a file: what changes whenever its content can have changed. A file written
 * anew (temp file and rename) has another inode; one changed in place another size, mtime or
 * ctime (ctime cannot be set back from user space). */
typedef struct acme_store_file_id_t {
    apr_uint64_t dev;
    apr_uint64_t ino;
    apr_int64_t size;
    apr_int64_t mtime_ns;
    apr_int64_t ctime_ns;
} acme_store_file_id_t;

/* acme_store_read, and the identity of the file that was read (from the open descriptor). */
apr_status_t acme_store_read_id(char **pdata, apr_size_t *plen, acme_store_file_id_t *pid,
                                acme_store_t *store, const char *relpath, apr_size_t max,
                                apr_pool_t *p);

/* JSON files: written compact and atomically (0600 for safety: job state holds order URLs).
 * read: APR_ENOENT when missing, ACME_EBADSTORE (with the path in the log of the caller) when the
 * file is not a JSON object. */
apr_status_t acme_store_json_write(acme_store_t *store, const char *relpath, const json_t *json,
                                   apr_pool_t *p);
apr_status_t acme_store_json_read(json_t **pjson, acme_store_t *store, const char *relpath,
                                  apr_pool_t *p);

/* Removes relpath and everything below it if present, whatever the depth; missing is success. */
apr_status_t acme_store_remove(acme_store_t *store, const char *relpath, apr_pool_t *p);

/* Renames from to to (store-relative paths; to is replaced when it is a file or an empty folder),
 * the entry itself: a link is renamed, never followed. The folders of both are walked like every
 * path of the store and must exist. */
apr_status_t acme_store_rename(acme_store_t *store, const char *from, const char *to,
                               apr_pool_t *p);

/* A folder name for a CA from its directory URL: host, port and path with every character
 * outside [A-Za-z0-9.-] replaced by '_', e.g. "127.0.0.1_14000_dir". */
const char *acme_store_ca_id(const char *directory_url, apr_pool_t *p);

/* A set of certificate files as loaded from the store. */
typedef struct acme_certset_t {
    const char *name;     /* the domain (first name of the ACMEDomain) */
    const char *dir;      /* absolute folder holding the files */
    const char *key_file; /* absolute paths, for mod_ssl */
    const char *chain_file;
    acme_key_t *key;
    apr_array_header_t *chain; /* acme_cert_t *, leaf first */
    json_t *meta;              /* meta.json, or an empty object */
    int generation;            /* <n> in archive/<name>/<n>; 0 for a staged set */
} acme_certset_t;

/* Writes a new staged set for name, replacing any earlier staged set. The chain is parsed and
 * checked against key first (acme_cert_chain_check without names and time): a chain that does
 * not parse or whose leaf does not match the key is refused with ACME_EBADSTORE and *pwhy. */
apr_status_t acme_store_stage(acme_store_t *store, const char *name, const acme_key_t *key,
                              const char *chain_pem, apr_size_t chain_len, const json_t *meta,
                              const char **pwhy, apr_pool_t *p);

/* Loads the active (staged == 0) or staged set of name. APR_ENOENT when there is none,
 * ACME_EBADSTORE with *pwhy when its files do not parse. */
apr_status_t acme_store_load(acme_certset_t **pset, acme_store_t *store, const char *name,
                             int staged, const char **pwhy, apr_pool_t *p);

typedef struct acme_setcache_t acme_setcache_t;

/* acme_store_load of the active set, skipping the key's decoding and the chain's check when
 * cache says the very same files (acme_store_file_id_t of the key and the chain, in the same
 * archive generation) were checked before; a set checked now is added to cache. The chain is
 * always parsed and meta.json read. One thread only (see acme_setcache.h). */
apr_status_t acme_store_load_active_cached(acme_certset_t **pset, acme_store_t *store,
                                           const char *name, acme_setcache_t *cache,
                                           const char **pwhy, apr_pool_t *p);

/* Validates the staged set of name (acme_cert_activation_check with names and now) and makes it
 * the active one. APR_ENOENT when nothing is staged. When validation fails the staged set is
 * left in place, nothing changes, and ACME_EBADSTORE comes back with *pwhy; APR_EAGAIN (and
 * *pwhy) when the set is good but its notBefore still too far ahead: it stays staged. Once the
 * new set is active the promotion has succeeded: clearing staging/<name> after it cannot make it
 * fail (what cannot be removed is left as a leftover that the next staging removes). */
apr_status_t acme_store_promote(acme_store_t *store, const char *name,
                                const apr_array_header_t *names, apr_time_t now, const char **pwhy,
                                apr_pool_t *p);

/* Many promotions in one pass (the parent's configuration pass): each set's archive generation
 * is synced as acme_store_promote syncs it, but domains/ is synced once for them all and only
 * then are the staged sets removed, with one sync of staging/ (two fsyncs per set fewer). Until
 * acme_store_promote_done, a crash may leave a link not yet durable, with its set still staged
 * (promoted again at the next start). The batch lives in p; one thread. */
typedef struct acme_store_batch_t acme_store_batch_t;
acme_store_batch_t *acme_store_batch_make(apr_pool_t *p);
/* acme_store_promote within batch (NULL: acme_store_promote itself). */
apr_status_t acme_store_promote_in(acme_store_t *store, const char *name,
                                   const apr_array_header_t *names, apr_time_t now,
                                   const char **pwhy, acme_store_batch_t *batch, apr_pool_t *p);
/* Syncs domains/, then clears the batch's staged sets from staging/ (what cannot be removed
 * stays, as in acme_store_promote). The error of the sync when domains/ cannot be synced: the
 * links are swapped but maybe not durable, and the sets stay staged. */
apr_status_t acme_store_promote_done(acme_store_t *store, acme_store_batch_t *batch, apr_pool_t *p);

/* Makes key and chain_pem (with meta, as acme_store_stage takes them) the active set of name at
 * once, without staging/: checked as promotion checks a staged set (acme_cert_activation_check
 * with names and now), then a new archive generation and the domains/<name> swap, with the
 * guarantees of acme_store_promote (the set active before stays in archive/). ACME_EBADSTORE
 * and *pwhy when the set is refused, APR_EAGAIN and *pwhy when its notBefore is still ahead.
 * For a process that holds the set itself (acmectl import); the caller runs as the store's
 * owner. */
apr_status_t acme_store_activate(acme_store_t *store, const char *name, const acme_key_t *key,
                                 const char *chain_pem, apr_size_t chain_len, const json_t *meta,
                                 const apr_array_header_t *names, apr_time_t now, const char **pwhy,
                                 apr_pool_t *p);

/* The checks acme_store_promote makes before it changes anything, changing nothing: APR_SUCCESS;
 * APR_ENOENT when nothing is staged; APR_EAGAIN with *pwhy when the set waits for its notBefore
 * (see acme_store_check_staged_at); ACME_EBADSTORE with *pwhy when promotion would refuse it. */
apr_status_t acme_store_check_staged(acme_store_t *store, const char *name,
                                     const apr_array_header_t *names, apr_time_t now,
                                     const char **pwhy, apr_pool_t *p);

/* The same, and for APR_EAGAIN *pwhen: from when promotion will take the set. */
apr_status_t acme_store_check_staged_at(acme_store_t *store, const char *name,
                                        const apr_array_header_t *names, apr_time_t now,
                                        apr_time_t *pwhen, const char **pwhy, apr_pool_t *p);

/* Refused staged sets: at most this many are kept for the operator, per name. */
#define ACME_STORE_REJECTED_KEEP 3

/* Moves a staged set that promotion refused to staging/.rejected.<name>.<seconds>, removes the
 * oldest such folders of name beyond ACME_STORE_REJECTED_KEEP, and records the refusal in
 * refused/<name>.json (a folder of the parent's that the User may read but not change), for
 * the renewal driver to count it as a failed attempt. *paside: the folder, relative to the
 * store. The parent (root) calls it. */
apr_status_t acme_store_reject(acme_store_t *store, const char *name, const char *why,
                               apr_time_t now, const char **paside, apr_pool_t *p);

typedef struct acme_refusal_t {
    apr_time_t time; /* when the set was refused */
    const char *why;
    const char *kept; /* where it was moved, relative to the store */
} acme_refusal_t;

/* The last refusal recorded for name: APR_ENOENT when there is none. */
apr_status_t acme_store_refusal_read(acme_refusal_t **pref, acme_store_t *store, const char *name,
                                     apr_pool_t *p);

/* Forgets the refusal of name (after a set of name was activated). */
apr_status_t acme_store_refusal_clear(acme_store_t *store, const char *name, apr_pool_t *p);

#endif /* ACME_STORE_H */
