/* acme_store_ctl.h - what the operator's tool (acmectl, running as root) does to a store the
 * server uses at the same time, and what the server sees of it: renewal requests the renewal
 * driver picks up, files written into the User's folders that stay the User's, and whether a
 * renewal driver holds the store now.
 *
 *   <store>/jobs/<name>.renew   a renewal asked for by the operator (acmectl renew, revoke):
 *                               {"requested": <seconds>, "reason": "operator"|"revoked"},
 *                               the User's, 0644, at most ACME_RENEW_REQUEST_MAX bytes
 *
 * The driver (the User) reads and removes the request under its lock (jobs/driver.lock); to it
 * the file is outside input: read through the store's no-follow walkers, bounded, its fields
 * checked. Any thread may call these functions.
 */
#ifndef ACME_STORE_CTL_H
#define ACME_STORE_CTL_H

#include <sys/types.h>

#include "acme_store.h"

#define ACME_STORE_DRIVER_LOCK "jobs/driver.lock"
#define ACME_RENEW_REQUEST_MAX 4096

typedef struct acme_renew_request_t {
    apr_time_t time;    /* when it was asked for */
    const char *reason; /* "operator" or "revoked" */
} acme_renew_request_t;

/* The request file of name, relative to the store: "jobs/<name>.renew". NULL for a name the
 * store would not take (acme_store_name_ok). */
const char *acme_renew_request_path(const char *name, apr_pool_t *p);

/* 1 for the reasons a request may carry. */
int acme_renew_reason_ok(const char *reason);

/* Writes the request for name atomically, owned like jobs/ (the User's, so the driver can read
 * and remove it). APR_EINVAL for a bad name or reason. */
apr_status_t acme_renew_request_write(acme_store_t *store, const char *name, const char *reason,
                                      apr_time_t now, apr_pool_t *p);

/* The request waiting for name: APR_ENOENT when there is none, ACME_EBADSTORE for a file that is
 * not a request (a link, too large, not the JSON above). */
apr_status_t acme_renew_request_read(acme_renew_request_t **preq, acme_store_t *store,
                                     const char *name, apr_pool_t *p);

/* 1 when a renewal is requested for name and waits for the driver (what acme-status and
 * `acmectl status` report as the reason `requested`); 0 otherwise, a bad file included. */
int acme_renew_requested(acme_store_t *store, const char *name, apr_pool_t *p);

/* What the driver knew of jobs/ at its last look, so that a tick with N certificates and no
 * request costs one look at the folder instead of N reads (a cost that grew with N at every
 * tick, 100 ms apart; docs/performance.md, "Scale"). Zeroed: nothing known yet. */
typedef struct acme_renew_watch_t {
    apr_time_t mtime;  /* jobs/'s modification time at the last listing */
    apr_time_t listed; /* when it was listed, 0 never */
    int any;           /* a request file ("*.renew") was in it then */
} acme_renew_watch_t;

#define ACME_RENEW_WATCH_FRESH apr_time_from_sec(2)  /* a change this recent: list again */
#define ACME_RENEW_WATCH_MAX   apr_time_from_sec(60) /* list at least this often */

/* 0 when no request file can be in jobs/: none was there at the last listing, and the folder's
 * modification time has not moved since. jobs/ is listed again when it moved, when it is within
 * ACME_RENEW_WATCH_FRESH of now (a file made in the same clock tick as the last listing leaves
 * it unchanged), or when the last listing is ACME_RENEW_WATCH_MAX old. 1 when a request may be
 * there, or when the folder cannot be looked at (then each name is read, as without a watch). */
int acme_renew_requests_maybe(acme_renew_watch_t *w, acme_store_t *store, apr_time_t now,
                              apr_pool_t *p);

/* Removes the request of name (the driver, once it acted on it); missing is success. */
apr_status_t acme_renew_request_clear(acme_store_t *store, const char *name, apr_pool_t *p);

/* Atomic write of relpath like acme_store_write, but the new file gets the owner and group of
 * its folder before it takes its name, so that a file root writes into the User's folders
 * (accounts/, jobs/) stays readable to the User at every instant. The folder must exist. */
apr_status_t acme_store_write_owned(acme_store_t *store, const char *relpath, const void *data,
                                    apr_size_t len, apr_fileperms_t perms, apr_pool_t *p);

/* The names in the store's folder reldir (e.g. "accounts"), without "." and "..", walked like
 * every path of the store (a link on the way gives ACME_EBADSTORE). APR_ENOENT when missing. */
apr_status_t acme_store_list(apr_array_header_t **pnames, acme_store_t *store, const char *reldir,
                             apr_pool_t *p);

/* Whether a renewal driver holds jobs/driver.lock now (a running server): APR_SUCCESS and *ppid
 * its process (0 when it cannot be told); APR_ENOENT when no one holds it or there is no lock
 * file yet. The lock is taken and let go at once when free; the file is neither made nor
 * followed when it is a link. */
apr_status_t acme_store_driver_holder(pid_t *ppid, acme_store_t *store, apr_pool_t *p);

/* Takes jobs/driver.lock (without waiting) for a change the driver must not race: APR_SUCCESS
 * and *pfd (close it to let go), APR_EAGAIN with *ppid when a driver holds it. The lock file is
 * made when missing, owned like jobs/. */
apr_status_t acme_store_driver_lock(int *pfd, pid_t *ppid, acme_store_t *store, apr_pool_t *p);

#endif /* ACME_STORE_CTL_H */
