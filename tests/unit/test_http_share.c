/* test_http_share.c - the libcurl transports of one CA sharing through acme_http_share: a
 * transport made after another was released continues on its connection (no new TCP or TLS
 * handshake), transports in use at the same time each have their own, and without a share
 * every transport connects anew. The CA is a small keep-alive HTTP server on loopback that
 * counts the connections it accepts. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <apr_thread_proc.h>

#include "acme_http_share.h"
#include "unit.h"

#define CONNS_MAX 16

typedef struct server_t {
    int lfd, port;
    int fds[CONNS_MAX];
    int nfds;
    volatile int accepted, stop;
    apr_thread_t *thread;
} server_t;

/* Answers every request head (GET, no body) with "ok", keeping the connection open. */
static void *APR_THREAD_FUNC serve(apr_thread_t *thread, void *data)
{
    server_t *s = data;
    char buf[4096];
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    while (!s->stop) {
        struct pollfd pfd[CONNS_MAX + 1];
        int i, n = 0;
        pfd[n].fd = s->lfd;
        pfd[n++].events = POLLIN;
        for (i = 0; i < s->nfds; i++) {
            pfd[n].fd = s->fds[i];
            pfd[n++].events = POLLIN;
        }
        if (poll(pfd, (nfds_t)n, 50) <= 0) {
            continue;
        }
        if ((pfd[0].revents & POLLIN) && s->nfds < CONNS_MAX) {
            int c = accept(s->lfd, NULL, NULL);
            if (c >= 0) {
                s->fds[s->nfds++] = c;
                s->accepted++;
            }
        }
        for (i = 1; i < n; i++) {
            ssize_t got;
            if (!(pfd[i].revents & (POLLIN | POLLHUP))) {
                continue;
            }
            got = read(pfd[i].fd, buf, sizeof(buf));
            if (got <= 0) {
                continue; /* closed by the client: left alone until the end */
            }
            /* One request head per read is enough for curl's small GETs here. */
            if (write(pfd[i].fd, answer, sizeof(answer) - 1) < 0) {
                continue;
            }
        }
    }
    apr_thread_exit(thread, APR_SUCCESS);
    return NULL;
}

static server_t *server_start(apr_pool_t *p)
{
    server_t *s = apr_pcalloc(p, sizeof(*s));
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);

    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->lfd, 8), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &len), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(apr_thread_create(&s->thread, NULL, serve, s, p), APR_SUCCESS);
    return s;
}

static void server_stop(server_t *s)
{
    apr_status_t trv;
    int i;

    s->stop = 1;
    apr_thread_join(&trv, s->thread);
    for (i = 0; i < s->nfds; i++) {
        close(s->fds[i]);
    }
    close(s->lfd);
}

/* A transport made in its own pool (released with it), with or without the share. */
static acme_http_t *transport(apr_pool_t **pp, acme_http_share_t *share, apr_pool_t *parent)
{
    acme_http_opts_t opts;
    acme_http_t *http;

    assert_int_equal(apr_pool_create(pp, parent), APR_SUCCESS);
    memset(&opts, 0, sizeof(opts));
    opts.share = share;
    assert_int_equal(acme_http_curl_create(&http, &opts, NULL, *pp), APR_SUCCESS);
    return http;
}

static void get_ok(acme_http_t *http, const server_t *s, apr_pool_t *p)
{
    acme_http_req_t req;
    acme_http_resp_t *resp = NULL;

    memset(&req, 0, sizeof(req));
    req.method = "GET";
    req.url = apr_psprintf(p, "http://127.0.0.1:%d/dir", s->port);
    assert_int_equal(http->perform(http, &req, &resp, p), APR_SUCCESS);
    assert_int_equal(resp->status, 200);
    assert_string_equal(resp->body, "ok");
}

static void next_transport_continues_on_the_connection(void **state)
{
    apr_pool_t *p = *state, *pa, *pb;
    acme_http_share_t *share;
    server_t *s = server_start(p);
    acme_http_t *a, *b;
    int reused, connects;

    assert_int_equal(acme_http_global_init(), APR_SUCCESS);
    assert_int_equal(acme_http_share_create(&share, 4, p), APR_SUCCESS);
    a = transport(&pa, share, p);
    get_ok(a, s, pa);
    get_ok(a, s, pa);
    apr_pool_destroy(pa); /* a finished worker */
    b = transport(&pb, share, p);
    get_ok(b, s, pb);
    apr_pool_destroy(pb);
    assert_int_equal(s->accepted, 1);
    acme_http_share_counts(share, &reused, &connects);
    assert_int_equal(reused, 1);
    assert_int_equal(connects, 1);
    server_stop(s);
}

static void transports_at_once_have_their_own(void **state)
{
    apr_pool_t *p = *state, *pa, *pb, *pc;
    acme_http_share_t *share;
    server_t *s = server_start(p);
    acme_http_t *a, *b, *c;
    int reused, connects;

    assert_int_equal(acme_http_global_init(), APR_SUCCESS);
    assert_int_equal(acme_http_share_create(&share, 4, p), APR_SUCCESS);
    a = transport(&pa, share, p);
    b = transport(&pb, share, p);
    get_ok(a, s, pa);
    get_ok(b, s, pb);
    get_ok(a, s, pa);
    assert_int_equal(s->accepted, 2);
    apr_pool_destroy(pa);
    apr_pool_destroy(pb);
    /* Both kept: a third continues on one of them. */
    c = transport(&pc, share, p);
    get_ok(c, s, pc);
    apr_pool_destroy(pc);
    assert_int_equal(s->accepted, 2);
    acme_http_share_counts(share, &reused, &connects);
    assert_int_equal(reused, 1);
    assert_int_equal(connects, 2);
    server_stop(s);
}

static void idle_bound_and_no_share(void **state)
{
    apr_pool_t *p = *state, *pa, *pb, *pc, *pd;
    acme_http_share_t *share;
    server_t *s = server_start(p);
    acme_http_t *a, *b, *c, *d;
    int reused, connects;

    assert_int_equal(acme_http_global_init(), APR_SUCCESS);
    /* One handle kept at most: of two released at once, one is closed. */
    assert_int_equal(acme_http_share_create(&share, 1, p), APR_SUCCESS);
    a = transport(&pa, share, p);
    b = transport(&pb, share, p);
    get_ok(a, s, pa);
    get_ok(b, s, pb);
    apr_pool_destroy(pa);
    apr_pool_destroy(pb);
    c = transport(&pc, share, p);
    d = transport(&pd, share, p);
    get_ok(c, s, pc);
    get_ok(d, s, pd);
    apr_pool_destroy(pc);
    apr_pool_destroy(pd);
    assert_int_equal(s->accepted, 3);
    acme_http_share_counts(share, &reused, &connects);
    assert_int_equal(reused, 1);
    assert_int_equal(connects, 3);
    /* Without a share each transport connects anew. */
    a = transport(&pa, NULL, p);
    get_ok(a, s, pa);
    apr_pool_destroy(pa);
    b = transport(&pb, NULL, p);
    get_ok(b, s, pb);
    apr_pool_destroy(pb);
    assert_int_equal(s->accepted, 5);
    server_stop(s);
}

static const struct CMUnitTest tests[] = {
    UNIT_TEST(next_transport_continues_on_the_connection),
    UNIT_TEST(transports_at_once_have_their_own),
    UNIT_TEST(idle_bound_and_no_share),
};

UNIT_MAIN("http_share", tests)
