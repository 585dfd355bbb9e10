/* acme_cluster.h - the shared engine of cluster mode (ACMECluster, docs/cluster.md): memcached
 * through APR-util's apr_memcache, or Redis through a small RESP client over an APR socket, with
 * the few atomic operations the order lease needs; the lease value; the RESP reply parser.
 *
 * Every byte from the engine is hostile input: replies are parsed with bounds (ACME_RESP_MAX)
 * and anything unexpected is an engine failure, never a lease. One engine handle is used by one
 * thread at a time (the renewal driver's watchdog thread).
 */
#ifndef ACME_CLUSTER_H
#define ACME_CLUSTER_H

#include <apr_network_io.h>

#include "acme_core.h"

#define ACME_CLUSTER_MEMCACHE 1
#define ACME_CLUSTER_REDIS    2

#define ACME_CLUSTER_NODE_MAX  64   /* node=NAME: [A-Za-z0-9._-], 1..64 */
#define ACME_CLUSTER_LEASE_MIN 5    /* lease=SECONDS bounds */
#define ACME_CLUSTER_LEASE_MAX 3600 /* ... */
#define ACME_RESP_MAX          1024 /* longest reply line or bulk string we accept */

/* Parses "memcache:HOST:PORT" or "redis:HOST:PORT" (HOST a name, an IPv4 address or [IPv6]).
 * ACME_ECONFIG with *pwhy on anything else. */
apr_status_t acme_cluster_engine_parse(int *pkind, const char **phost, apr_port_t *pport,
                                       const char *spec, const char **pwhy, apr_pool_t *p);

/* 1 when name is usable as node=NAME (and in a lease value). */
int acme_cluster_node_ok(const char *name);

typedef struct acme_cluster_engine_t acme_cluster_engine_t;

/* An engine handle for spec, in p; nothing is connected yet. timeout bounds each network wait
 * (Redis; apr_memcache has its own, one second). */
apr_status_t acme_cluster_engine_create(acme_cluster_engine_t **pengine, const char *spec,
                                        apr_interval_time_t timeout, apr_pool_t *p);

/* The operations. An engine that cannot be reached or answers anything unexpected gives a
 * status other than those listed (ACME_ETRANSPORT, ACME_EPROTO, or APR's), never a lease.
 * add: sets key to value for ttl_sec unless it exists: APR_SUCCESS, or APR_EEXIST.
 * get: *pvalue (a copy in p), or APR_NOTFOUND.
 * incr: *pvalue = key + 1, the key created with seed first when missing.
 * renew: when key holds value, its expiry is set to ttl_sec: APR_SUCCESS; APR_NOTFOUND when
 *   missing; APR_EEXIST when it holds another value. Between the read and the new expiry
 *   another node may act (neither engine's plain commands compare and expire in one step):
 *   docs/cluster.md says what that costs.
 * del: removes key when it holds value (same race). */
apr_status_t acme_cluster_add(acme_cluster_engine_t *e, const char *key, const char *value,
                              int ttl_sec);
apr_status_t acme_cluster_get(acme_cluster_engine_t *e, const char *key, char **pvalue,
                              apr_pool_t *p);
apr_status_t acme_cluster_incr(acme_cluster_engine_t *e, const char *key, apr_uint64_t seed,
                               apr_uint64_t *pvalue);
apr_status_t acme_cluster_renew(acme_cluster_engine_t *e, const char *key, const char *value,
                                int ttl_sec);
apr_status_t acme_cluster_del(acme_cluster_engine_t *e, const char *key, const char *value);

/* A lease value: "<token> <node>". */
const char *acme_cluster_lease_value(apr_uint64_t token, const char *node, apr_pool_t *p);
/* Parses one from the engine: APR_SUCCESS with *ptoken and node (ACME_CLUSTER_NODE_MAX + 1
 * bytes); ACME_EPROTO for anything else. */
apr_status_t acme_cluster_lease_parse(const char *s, apr_size_t len, apr_uint64_t *ptoken,
                                      char *node);

/* One RESP reply. */
typedef enum {
    ACME_RESP_STATUS = 1, /* +OK */
    ACME_RESP_ERROR,      /* -ERR ... */
    ACME_RESP_INT,        /* :42 */
    ACME_RESP_BULK,       /* $3\r\nabc */
    ACME_RESP_NIL         /* $-1 */
} acme_redis_type_e;

typedef struct acme_redis_reply_t {
    acme_redis_type_e type;
    apr_int64_t integer;
    const char *str; /* STATUS, ERROR, BULK: points into the buffer (not NUL-terminated) */
    apr_size_t len;
} acme_redis_reply_t;

/* Parses the reply at the start of buf[0..len): APR_SUCCESS with *r and *pused (bytes of the
 * reply); APR_INCOMPLETE when more bytes are needed; ACME_EPROTO for a malformed reply, a type
 * we never ask for (arrays), or a line or bulk over ACME_RESP_MAX. */
apr_status_t acme_resp_parse(acme_redis_reply_t *r, const char *buf, apr_size_t len,
                             apr_size_t *pused);

#endif /* ACME_CLUSTER_H */
