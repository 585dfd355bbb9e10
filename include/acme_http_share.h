/* acme_http_share.h - what the libcurl transports of one CA share between threads: TLS
 * sessions and resolved names (a libcurl share with a lock per kind of data), and the handles
 * of finished transports, each with the connection it keeps open, for the next transport to
 * continue on.
 *
 * libcurl documents sharing one connection cache between concurrent threads as unsupported
 * (CURL_LOCK_DATA_CONNECT), so connections are not shared while in use: a handle, and so its
 * connection, belongs to one transport (one thread) at a time, and passes to the next one when
 * its transport is released. A new connection to the same CA resumes a kept TLS session.
 *
 * Make one share per CA (the renewal driver does, mod_acme_ca.c) and give it to
 * acme_http_curl_create in acme_http_opts_t.share; any thread may then create, use and
 * release transports with it. The share lives in the pool it was made in, which must outlive
 * every transport made with it.
 */
#ifndef ACME_HTTP_SHARE_H
#define ACME_HTTP_SHARE_H

#include "acme_http.h"

#define ACME_HTTP_SHARE_IDLE_MAX 16 /* finished handles kept, each with its connection */

/* idle_max: handles kept for reuse (at most ACME_HTTP_SHARE_IDLE_MAX); more are closed. */
apr_status_t acme_http_share_create(acme_http_share_t **pshare, int idle_max, apr_pool_t *p);

/* How many transports took a kept handle instead of making a new one, and how many new
 * connections the share's transports opened (libcurl's CURLINFO_NUM_CONNECTS summed): for
 * the debug log and tests. */
void acme_http_share_counts(acme_http_share_t *share, int *preused, int *pconnects);

/* For acme_http.c only: a kept handle (CURL *) or NULL; a handle given back (kept or closed);
 * the libcurl share (CURLSH *) to set on each request; new connections of a request. */
void *acme_http_share_take(acme_http_share_t *share);
void acme_http_share_give(acme_http_share_t *share, void *curl);
void *acme_http_share_curlsh(acme_http_share_t *share);
void acme_http_share_connected(acme_http_share_t *share, long connects);

#endif /* ACME_HTTP_SHARE_H */
