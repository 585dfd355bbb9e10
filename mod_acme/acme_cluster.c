/* acme_cluster.c - the engines of cluster mode: memcached through apr_memcache, Redis through a
 * RESP client of our own (APR-util's apr_redis has no SET NX PX), and the lease value.
 *
 * Called from the renewal driver's thread only (one handle, one thread). A failure of the engine
 * is a status, never a lease: the caller orders only on APR_SUCCESS from acme_cluster_add.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_memcache.h>
#include <apr_strings.h>

#include "acme_cluster.h"

struct acme_cluster_engine_t {
    int kind;
    const char *host;
    apr_port_t port;
    apr_interval_time_t timeout;
    apr_pool_t *pool;
    apr_memcache_t *mc;   /* memcache */
    apr_socket_t *sock;   /* redis: the connection, or NULL */
    apr_pool_t *sockpool; /* redis: the connection's own pool */
};

/* --- configuration --- */

apr_status_t acme_cluster_engine_parse(int *pkind, const char **phost, apr_port_t *pport,
                                       const char *spec, const char **pwhy, apr_pool_t *p)
{
    const char *rest, *colon;
    char *host, *end;
    long port;
    int kind;

    if (strncmp(spec, "memcache:", 9) == 0) {
        kind = ACME_CLUSTER_MEMCACHE;
        rest = spec + 9;
    } else if (strncmp(spec, "redis:", 6) == 0) {
        kind = ACME_CLUSTER_REDIS;
        rest = spec + 6;
    } else {
        *pwhy = "expected memcache:HOST:PORT or redis:HOST:PORT";
        return ACME_ECONFIG;
    }
    colon = strrchr(rest, ':');
    if (!colon || colon == rest || !colon[1]) {
        *pwhy = "expected HOST:PORT after the engine";
        return ACME_ECONFIG;
    }
    host = apr_pstrmemdup(p, rest, (apr_size_t)(colon - rest));
    if (host[0] == '[') {
        apr_size_t n = strlen(host);
        if (n < 3 || host[n - 1] != ']') {
            *pwhy = "an IPv6 address goes in brackets: [::1]:PORT";
            return ACME_ECONFIG;
        }
        host[n - 1] = '\0';
        host++;
    }
    if (strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") !=
            strlen(host) ||
        strlen(host) > 253) {
        *pwhy = "the host is not a host name or an IP address";
        return ACME_ECONFIG;
    }
    port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535) {
        *pwhy = "the port is not a number from 1 to 65535";
        return ACME_ECONFIG;
    }
    *pkind = kind;
    *phost = host;
    *pport = (apr_port_t)port;
    return APR_SUCCESS;
}

int acme_cluster_node_ok(const char *name)
{
    apr_size_t n = strlen(name);

    return n >= 1 && n <= ACME_CLUSTER_NODE_MAX && name[0] != '.' && name[0] != '-' &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

apr_status_t acme_cluster_engine_create(acme_cluster_engine_t **pengine, const char *spec,
                                        apr_interval_time_t timeout, apr_pool_t *p)
{
    acme_cluster_engine_t *e = apr_pcalloc(p, sizeof(*e));
    apr_memcache_server_t *ms;
    const char *why;
    apr_status_t rv;

    rv = acme_cluster_engine_parse(&e->kind, &e->host, &e->port, spec, &why, p);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    e->timeout = timeout;
    e->pool = p;
    if (e->kind == ACME_CLUSTER_MEMCACHE) {
        rv = apr_memcache_create(p, 1, 0, &e->mc);
        if (rv == APR_SUCCESS) {
            /* One connection: one thread uses it. The last argument is the idle time (us) after
             * which a pooled connection is closed. */
            rv = apr_memcache_server_create(p, e->host, e->port, 0, 1, 1, 60 * 1000000, &ms);
        }
        if (rv == APR_SUCCESS) {
            rv = apr_memcache_add_server(e->mc, ms);
        }
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    *pengine = e;
    return APR_SUCCESS;
}

/* --- RESP (Redis) --- */

/* The line at buf[0..len) up to CRLF: its length without CRLF, or -1 when incomplete, -2 when
 * over the bound or holding a bare CR or LF. */
static long resp_line(const char *buf, apr_size_t len)
{
    apr_size_t i;

    for (i = 0; i < len && i <= ACME_RESP_MAX; i++) {
        if (buf[i] == '\r') {
            if (i + 1 >= len) {
                return -1;
            }
            return buf[i + 1] == '\n' ? (long)i : -2;
        }
        if (buf[i] == '\n' || buf[i] == '\0') {
            return -2;
        }
    }
    return i > ACME_RESP_MAX ? -2 : -1;
}

/* A decimal integer holding all of s[0..len): optional '-', 1..18 digits. */
static int resp_int(const char *s, apr_size_t len, apr_int64_t *pv)
{
    apr_int64_t v = 0;
    apr_size_t i = 0;
    int neg = 0;

    if (len && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == len || len - i > 18) {
        return 0;
    }
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        v = v * 10 + (s[i] - '0');
    }
    *pv = neg ? -v : v;
    return 1;
}

apr_status_t acme_resp_parse(acme_redis_reply_t *r, const char *buf, apr_size_t len,
                             apr_size_t *pused)
{
    long n;
    apr_int64_t blen;

    if (len == 0) {
        return APR_INCOMPLETE;
    }
    n = resp_line(buf + 1, len - 1);
    if (n == -1) {
        return APR_INCOMPLETE;
    }
    if (n < 0) {
        return ACME_EPROTO;
    }
    memset(r, 0, sizeof(*r));
    switch (buf[0]) {
    case '+':
    case '-':
        r->type = buf[0] == '+' ? ACME_RESP_STATUS : ACME_RESP_ERROR;
        r->str = buf + 1;
        r->len = (apr_size_t)n;
        *pused = 1 + (apr_size_t)n + 2;
        return APR_SUCCESS;
    case ':':
        if (!resp_int(buf + 1, (apr_size_t)n, &r->integer)) {
            return ACME_EPROTO;
        }
        r->type = ACME_RESP_INT;
        *pused = 1 + (apr_size_t)n + 2;
        return APR_SUCCESS;
    case '$':
        if (!resp_int(buf + 1, (apr_size_t)n, &blen) || blen < -1 || blen > ACME_RESP_MAX) {
            return ACME_EPROTO;
        }
        if (blen == -1) {
            r->type = ACME_RESP_NIL;
            *pused = 1 + (apr_size_t)n + 2;
            return APR_SUCCESS;
        }
        if (len < 1 + (apr_size_t)n + 2 + (apr_size_t)blen + 2) {
            return APR_INCOMPLETE;
        }
        r->str = buf + 1 + n + 2;
        if (r->str[blen] != '\r' || r->str[blen + 1] != '\n') {
            return ACME_EPROTO;
        }
        r->type = ACME_RESP_BULK;
        r->len = (apr_size_t)blen;
        *pused = 1 + (apr_size_t)n + 2 + (apr_size_t)blen + 2;
        return APR_SUCCESS;
    default:
        return ACME_EPROTO; /* arrays, RESP3 types: never asked for */
    }
}

static void redis_close(acme_cluster_engine_t *e)
{
    if (e->sock) {
        apr_socket_close(e->sock);
        e->sock = NULL;
    }
    if (e->sockpool) {
        apr_pool_destroy(e->sockpool);
        e->sockpool = NULL;
    }
}

static apr_status_t redis_connect(acme_cluster_engine_t *e)
{
    apr_sockaddr_t *sa;
    apr_status_t rv;

    rv = apr_pool_create(&e->sockpool, e->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = apr_sockaddr_info_get(&sa, e->host, APR_UNSPEC, e->port, 0, e->sockpool);
    if (rv == APR_SUCCESS) {
        rv = apr_socket_create(&e->sock, sa->family, SOCK_STREAM, APR_PROTO_TCP, e->sockpool);
    }
    if (rv == APR_SUCCESS) {
        apr_socket_opt_set(e->sock, APR_TCP_NODELAY, 1);
        rv = apr_socket_timeout_set(e->sock, e->timeout);
    }
    if (rv == APR_SUCCESS) {
        rv = apr_socket_connect(e->sock, sa);
    }
    if (rv != APR_SUCCESS) {
        redis_close(e);
    }
    return rv;
}

/* Sends one command (argc bulk strings) and reads its reply into buf (the reply's strings point
 * there). Any failure closes the connection: the next command opens a new one. */
static apr_status_t redis_cmd(acme_cluster_engine_t *e, acme_redis_reply_t *r, char *buf,
                              apr_size_t bufsize, int argc, const char **argv)
{
    char out[2048];
    apr_size_t n = 0, got = 0, used, len;
    apr_status_t rv;
    int i;

    n = (apr_size_t)apr_snprintf(out, sizeof(out), "*%d\r\n", argc);
    for (i = 0; i < argc; i++) {
        apr_size_t alen = strlen(argv[i]);
        if (n + alen + 32 > sizeof(out)) {
            return ACME_ETOOLARGE;
        }
        n += (apr_size_t)apr_snprintf(out + n, sizeof(out) - n, "$%" APR_SIZE_T_FMT "\r\n", alen);
        memcpy(out + n, argv[i], alen);
        n += alen;
        out[n++] = '\r';
        out[n++] = '\n';
    }
    if (!e->sock) {
        rv = redis_connect(e);
        if (rv != APR_SUCCESS) {
            return rv;
        }
    }
    for (used = 0; used < n; used += len) {
        len = n - used;
        rv = apr_socket_send(e->sock, out + used, &len);
        if (rv != APR_SUCCESS) {
            redis_close(e);
            return rv;
        }
    }
    for (;;) {
        rv = acme_resp_parse(r, buf, got, &used);
        if (rv != APR_INCOMPLETE) {
            break;
        }
        if (got == bufsize) {
            rv = ACME_EPROTO;
            break;
        }
        len = bufsize - got;
        rv = apr_socket_recv(e->sock, buf + got, &len);
        if (rv != APR_SUCCESS && !(APR_STATUS_IS_EOF(rv) && len > 0)) {
            break;
        }
        got += len;
    }
    /* One command, one reply: anything after it is not ours to read later. */
    if (rv != APR_SUCCESS || used != got || r->type == ACME_RESP_ERROR) {
        redis_close(e);
        return rv != APR_SUCCESS ? rv : ACME_EPROTO;
    }
    return APR_SUCCESS;
}

#define REPLY_MAX (ACME_RESP_MAX + 64)

/* A reply that is not one the command can give: the engine (or what answers in its place) is
 * confused; the next command starts on a new connection. */
static apr_status_t redis_bad(acme_cluster_engine_t *e)
{
    redis_close(e);
    return ACME_EPROTO;
}

/* --- the operations --- */

/* memcached counts expiry in whole seconds on a clock that ticks once a second: a key may go up
 * to a second early. One second more keeps a lease at least ttl_sec long. 0: no expiry. */
static apr_uint32_t mc_ttl(int ttl_sec)
{
    return ttl_sec > 0 ? (apr_uint32_t)ttl_sec + 1 : 0;
}

apr_status_t acme_cluster_add(acme_cluster_engine_t *e, const char *key, const char *value,
                              int ttl_sec)
{
    char buf[REPLY_MAX], ttl[32];
    acme_redis_reply_t r;
    apr_status_t rv;

    if (e->kind == ACME_CLUSTER_MEMCACHE) {
        return apr_memcache_add(e->mc, key, (char *)value, strlen(value), mc_ttl(ttl_sec), 0);
    }
    apr_snprintf(ttl, sizeof(ttl), "%d", ttl_sec * 1000);
    {
        const char *argv[] = {"SET", key, value, "NX", "PX", ttl};
        rv = redis_cmd(e, &r, buf, sizeof(buf), ttl_sec > 0 ? 6 : 4, argv);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (r.type == ACME_RESP_STATUS && r.len == 2 && memcmp(r.str, "OK", 2) == 0) {
        return APR_SUCCESS;
    }
    return r.type == ACME_RESP_NIL ? APR_EEXIST : redis_bad(e);
}

apr_status_t acme_cluster_get(acme_cluster_engine_t *e, const char *key, char **pvalue,
                              apr_pool_t *p)
{
    char buf[REPLY_MAX];
    acme_redis_reply_t r;
    apr_status_t rv;

    if (e->kind == ACME_CLUSTER_MEMCACHE) {
        char *v;
        apr_size_t len;
        apr_uint16_t flags;
        rv = apr_memcache_getp(e->mc, p, key, &v, &len, &flags);
        if (rv == APR_SUCCESS) {
            if (len > ACME_RESP_MAX || memchr(v, '\0', len)) {
                return ACME_EPROTO;
            }
            *pvalue = apr_pstrmemdup(p, v, len);
        }
        return rv;
    }
    {
        const char *argv[] = {"GET", key};
        rv = redis_cmd(e, &r, buf, sizeof(buf), 2, argv);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (r.type == ACME_RESP_NIL) {
        return APR_NOTFOUND;
    }
    if (r.type != ACME_RESP_BULK || memchr(r.str, '\0', r.len)) {
        return redis_bad(e);
    }
    *pvalue = apr_pstrmemdup(p, r.str, r.len);
    return APR_SUCCESS;
}

apr_status_t acme_cluster_incr(acme_cluster_engine_t *e, const char *key, apr_uint64_t seed,
                               apr_uint64_t *pvalue)
{
    char buf[REPLY_MAX], s[32];
    acme_redis_reply_t r;
    apr_status_t rv;

    apr_snprintf(s, sizeof(s), "%" APR_UINT64_T_FMT, seed);
    if (e->kind == ACME_CLUSTER_MEMCACHE) {
        apr_uint32_t v;
        rv = apr_memcache_add(e->mc, key, s, strlen(s), 0, 0);
        if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv)) {
            return rv;
        }
        rv = apr_memcache_incr(e->mc, key, 1, &v);
        if (rv == APR_SUCCESS) {
            *pvalue = v;
        }
        return rv;
    }
    {
        const char *argv[] = {"SET", key, s, "NX"};
        rv = redis_cmd(e, &r, buf, sizeof(buf), 4, argv);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    {
        const char *argv[] = {"INCR", key};
        rv = redis_cmd(e, &r, buf, sizeof(buf), 2, argv);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (r.type != ACME_RESP_INT || r.integer < 1) {
        return redis_bad(e);
    }
    *pvalue = (apr_uint64_t)r.integer;
    return APR_SUCCESS;
}

/* Reads key and compares it with value: APR_SUCCESS when equal. */
static apr_status_t holds(acme_cluster_engine_t *e, const char *key, const char *value)
{
    apr_pool_t *p;
    char *now;
    apr_status_t rv;

    rv = apr_pool_create(&p, e->pool);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    rv = acme_cluster_get(e, key, &now, p);
    if (rv == APR_SUCCESS && strcmp(now, value) != 0) {
        rv = APR_EEXIST;
    }
    apr_pool_destroy(p);
    return rv;
}

apr_status_t acme_cluster_renew(acme_cluster_engine_t *e, const char *key, const char *value,
                                int ttl_sec)
{
    char buf[REPLY_MAX], ttl[32];
    acme_redis_reply_t r;
    apr_status_t rv;

    rv = holds(e, key, value);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (e->kind == ACME_CLUSTER_MEMCACHE) {
        /* apr_memcache has neither touch nor cas: a replace with the same value sets the new
         * expiry, and fails (APR_EEXIST: NOT_STORED) when the key went away meanwhile. */
        rv = apr_memcache_replace(e->mc, key, (char *)value, strlen(value), mc_ttl(ttl_sec), 0);
        return APR_STATUS_IS_EEXIST(rv) ? APR_NOTFOUND : rv;
    }
    apr_snprintf(ttl, sizeof(ttl), "%d", ttl_sec * 1000);
    {
        const char *argv[] = {"PEXPIRE", key, ttl};
        rv = redis_cmd(e, &r, buf, sizeof(buf), 3, argv);
    }
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (r.type != ACME_RESP_INT) {
        return redis_bad(e);
    }
    return r.integer == 1 ? APR_SUCCESS : APR_NOTFOUND;
}

apr_status_t acme_cluster_del(acme_cluster_engine_t *e, const char *key, const char *value)
{
    char buf[REPLY_MAX];
    acme_redis_reply_t r;
    apr_status_t rv;

    rv = holds(e, key, value);
    if (rv != APR_SUCCESS) {
        return rv;
    }
    if (e->kind == ACME_CLUSTER_MEMCACHE) {
        rv = apr_memcache_delete(e->mc, key, 0);
        return rv;
    }
    {
        const char *argv[] = {"DEL", key};
        rv = redis_cmd(e, &r, buf, sizeof(buf), 2, argv);
    }
    return rv != APR_SUCCESS ? rv : r.type == ACME_RESP_INT ? APR_SUCCESS : redis_bad(e);
}

/* --- the lease value --- */

const char *acme_cluster_lease_value(apr_uint64_t token, const char *node, apr_pool_t *p)
{
    return apr_psprintf(p, "%" APR_UINT64_T_FMT " %s", token, node);
}

apr_status_t acme_cluster_lease_parse(const char *s, apr_size_t len, apr_uint64_t *ptoken,
                                      char *node)
{
    apr_uint64_t t = 0;
    apr_size_t i;

    for (i = 0; i < len && i < 19 && s[i] >= '0' && s[i] <= '9'; i++) {
        t = t * 10 + (apr_uint64_t)(s[i] - '0');
    }
    if (i == 0 || i >= len || s[i] != ' ' || (i > 1 && s[0] == '0') || t == 0) {
        return ACME_EPROTO;
    }
    i++;
    if (len - i < 1 || len - i > ACME_CLUSTER_NODE_MAX) {
        return ACME_EPROTO;
    }
    memcpy(node, s + i, len - i);
    node[len - i] = '\0';
    if (strlen(node) != len - i || !acme_cluster_node_ok(node)) {
        return ACME_EPROTO;
    }
    *ptoken = t;
    return APR_SUCCESS;
}
