/* test_cluster.c - cluster mode's hostile input: the RESP reply parser, the lease value, the
 * ACMECluster engine syntax, and the Redis client against a fake server that answers nonsense
 * (never a lease). */
#include <apr_network_io.h>
#include <apr_thread_proc.h>

#include "acme_cluster.h"
#include "unit.h"

static void resp_parses_each_type(void **state)
{
    acme_redis_reply_t r;
    apr_size_t used;
    (void)state;

    assert_int_equal(acme_resp_parse(&r, "+OK\r\n", 5, &used), APR_SUCCESS);
    assert_int_equal(r.type, ACME_RESP_STATUS);
    assert_int_equal(r.len, 2);
    assert_int_equal(used, 5);
    assert_int_equal(acme_resp_parse(&r, "-ERR no\r\n", 9, &used), APR_SUCCESS);
    assert_int_equal(r.type, ACME_RESP_ERROR);
    assert_int_equal(acme_resp_parse(&r, ":-12\r\n", 6, &used), APR_SUCCESS);
    assert_int_equal(r.type, ACME_RESP_INT);
    assert_int_equal(r.integer, -12);
    assert_int_equal(acme_resp_parse(&r, "$3\r\nabc\r\nXX", 11, &used), APR_SUCCESS);
    assert_int_equal(r.type, ACME_RESP_BULK);
    assert_int_equal(r.len, 3);
    assert_memory_equal(r.str, "abc", 3);
    assert_int_equal(used, 9);
    assert_int_equal(acme_resp_parse(&r, "$-1\r\n", 5, &used), APR_SUCCESS);
    assert_int_equal(r.type, ACME_RESP_NIL);
    assert_int_equal(acme_resp_parse(&r, "$0\r\n\r\n", 6, &used), APR_SUCCESS);
    assert_int_equal(r.type, ACME_RESP_BULK);
    assert_int_equal(r.len, 0);
}

static void resp_waits_for_more(void **state)
{
    static const char *partial[] = {"", "+", "+OK", "+OK\r", ":1", "$3\r\nab", "$3\r\nabc\r", "$3"};
    acme_redis_reply_t r;
    apr_size_t used, i;
    (void)state;

    for (i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
        assert_int_equal(acme_resp_parse(&r, partial[i], strlen(partial[i]), &used),
                         APR_INCOMPLETE);
    }
}

static void resp_refuses_hostile_replies(void **state)
{
    static const char *bad[] = {
        "*1\r\n$1\r\na\r\n",        /* arrays: never asked for */
        "%1\r\n",                   /* RESP3 map */
        "?\r\n",                    /* unknown type */
        "+O\nK\r\n",                /* bare LF */
        "+O\rK\r\n",                /* bare CR */
        ":12a\r\n",                 /* not a number */
        ":\r\n",                    /* empty number */
        ":1234567890123456789\r\n", /* overflow */
        "$-2\r\n",                  /* negative length */
        "$abc\r\n",                 /* length not a number */
        "$999999\r\n",              /* over the bound */
        "$3\r\nabcd\r\n",           /* longer than said */
        "$3\r\nab\r\n\r\n",         /* not ended by CRLF where said */
    };
    acme_redis_reply_t r;
    apr_size_t used, i;
    char big[ACME_RESP_MAX + 16];
    (void)state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(acme_resp_parse(&r, bad[i], strlen(bad[i]), &used), ACME_EPROTO);
    }
    /* A status line without an end, longer than any reply we take: refused, not awaited. */
    memset(big, 'A', sizeof(big));
    big[0] = '+';
    assert_int_equal(acme_resp_parse(&r, big, sizeof(big), &used), ACME_EPROTO);
    /* A NUL inside a line */
    assert_int_equal(acme_resp_parse(&r, "+O\0K\r\n", 6, &used), ACME_EPROTO);
}

static void lease_value_round_trip(void **state)
{
    apr_pool_t *p = *state;
    char node[ACME_CLUSTER_NODE_MAX + 1];
    apr_uint64_t token;
    const char *v = acme_cluster_lease_value(42, "web-1.example", p);

    assert_string_equal(v, "42 web-1.example");
    assert_int_equal(acme_cluster_lease_parse(v, strlen(v), &token, node), APR_SUCCESS);
    assert_int_equal(token, 42);
    assert_string_equal(node, "web-1.example");
}

static void lease_value_refuses_hostile(void **state)
{
    static const char *bad[] = {
        "",
        "42",
        "42 ",
        " 42 n",
        "0 n",
        "042 n",
        "-1 n",
        "x n",
        "42 n m",
        "42 n\n",
        "42 ../n",
        "42 .n",
        "12345678901234567890 n",
        "42 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 65 */
    };
    char node[ACME_CLUSTER_NODE_MAX + 1];
    apr_uint64_t token = 7;
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(acme_cluster_lease_parse(bad[i], strlen(bad[i]), &token, node),
                         ACME_EPROTO);
        assert_int_equal(token, 7);
    }
    /* A NUL inside */
    assert_int_equal(acme_cluster_lease_parse("42 a\0b", 6, &token, node), ACME_EPROTO);
}

static void engine_syntax(void **state)
{
    apr_pool_t *p = *state;
    const char *host, *why;
    apr_port_t port;
    int kind;

    assert_int_equal(
        acme_cluster_engine_parse(&kind, &host, &port, "memcache:10.0.0.5:11211", &why, p),
        APR_SUCCESS);
    assert_int_equal(kind, ACME_CLUSTER_MEMCACHE);
    assert_string_equal(host, "10.0.0.5");
    assert_int_equal(port, 11211);
    assert_int_equal(acme_cluster_engine_parse(&kind, &host, &port, "redis:[::1]:6379", &why, p),
                     APR_SUCCESS);
    assert_int_equal(kind, ACME_CLUSTER_REDIS);
    assert_string_equal(host, "::1");
    assert_int_equal(acme_cluster_engine_parse(&kind, &host, &port, "shmcb:x:1", &why, p),
                     ACME_ECONFIG);
    assert_int_equal(acme_cluster_engine_parse(&kind, &host, &port, "redis:host", &why, p),
                     ACME_ECONFIG);
    assert_int_equal(acme_cluster_engine_parse(&kind, &host, &port, "redis:host:0", &why, p),
                     ACME_ECONFIG);
    assert_int_equal(acme_cluster_engine_parse(&kind, &host, &port, "redis:host:70000", &why, p),
                     ACME_ECONFIG);
    assert_int_equal(acme_cluster_engine_parse(&kind, &host, &port, "redis:a b:1", &why, p),
                     ACME_ECONFIG);
    assert_int_equal(acme_cluster_engine_parse(&kind, &host, &port, "redis::1", &why, p),
                     ACME_ECONFIG);
    assert_true(acme_cluster_node_ok("n1"));
    assert_false(acme_cluster_node_ok(""));
    assert_false(acme_cluster_node_ok("a/b"));
    assert_false(acme_cluster_node_ok("-a"));
}

/* A fake Redis: accepts connections and answers each with the next canned reply, whatever was
 * asked, then closes. */
typedef struct {
    apr_socket_t *listener;
    const char **replies;
    int n;
} fake_t;

static void *APR_THREAD_FUNC fake_main(apr_thread_t *t, void *data)
{
    fake_t *f = data;
    apr_pool_t *p;
    int i;

    apr_pool_create(&p, NULL);
    for (i = 0; i < f->n; i++) {
        apr_socket_t *c;
        char buf[512];
        apr_size_t len = sizeof(buf);
        if (apr_socket_accept(&c, f->listener, p) != APR_SUCCESS) {
            break;
        }
        apr_socket_recv(c, buf, &len);
        len = strlen(f->replies[i]);
        apr_socket_send(c, f->replies[i], &len);
        apr_socket_close(c);
    }
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static void redis_nonsense_is_never_a_lease(void **state)
{
    apr_pool_t *p = *state;
    static const char *replies[] = {
        "$2\r\nOK\r\n",   /* a bulk "OK" is not +OK */
        ":1\r\n",         /* an integer */
        "-ERR wrong\r\n", /* an error */
        "$99999999\r\n",  /* a huge length */
        "+OKAY\r\n",      /* not OK */
        "",               /* closed without a word */
        "+OK\r\n",        /* at last, a lease */
    };
    int n = sizeof(replies) / sizeof(replies[0]), i;
    fake_t f = {NULL, replies, n};
    acme_cluster_engine_t *e;
    apr_sockaddr_t *sa;
    apr_thread_t *t;
    apr_status_t trv;

    assert_int_equal(apr_sockaddr_info_get(&sa, "127.0.0.1", APR_INET, 0, 0, p), APR_SUCCESS);
    assert_int_equal(apr_socket_create(&f.listener, APR_INET, SOCK_STREAM, APR_PROTO_TCP, p),
                     APR_SUCCESS);
    assert_int_equal(apr_socket_bind(f.listener, sa), APR_SUCCESS);
    assert_int_equal(apr_socket_listen(f.listener, 8), APR_SUCCESS);
    assert_int_equal(apr_socket_addr_get(&sa, APR_LOCAL, f.listener), APR_SUCCESS);
    assert_int_equal(apr_thread_create(&t, NULL, fake_main, &f, p), APR_SUCCESS);
    assert_int_equal(
        acme_cluster_engine_create(&e, apr_psprintf(p, "redis:127.0.0.1:%d", (int)sa->port),
                                   apr_time_from_sec(2), p),
        APR_SUCCESS);
    for (i = 0; i < n - 1; i++) {
        apr_status_t rv = acme_cluster_add(e, "mod_acme:lease:x", "1 n", 10);
        assert_true(rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv));
    }
    assert_int_equal(acme_cluster_add(e, "mod_acme:lease:x", "1 n", 10), APR_SUCCESS);
    apr_thread_join(&trv, t);
    apr_socket_close(f.listener);
}

static const struct CMUnitTest tests[] = {
    UNIT_TEST(resp_parses_each_type),           UNIT_TEST(resp_waits_for_more),
    UNIT_TEST(resp_refuses_hostile_replies),    UNIT_TEST(lease_value_round_trip),
    UNIT_TEST(lease_value_refuses_hostile),     UNIT_TEST(engine_syntax),
    UNIT_TEST(redis_nonsense_is_never_a_lease),
};

UNIT_MAIN("cluster", tests)
