/* test_dns.c - dns-01 values, resolver addresses, the propagation check's schedule and
 * failures against a resolver address where nothing answers (a closed UDP port on loopback),
 * and the check at a zone's authoritative servers against a real one: NSD (Debian package
 * nsd), started here on 127.0.0.x port 53 (root only) and named as the "system" resolver
 * through a resolv.conf of the test's own. That the check sees records set through a DNS
 * command is shown against pebble-challtestsrv in tests/integration/test_dns.py. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

#include "acme_dns.h"

static void value_is_b64u_sha256_of_keyauth(void **state)
{
    apr_pool_t *p = *state;
    const char *v = NULL;

    /* python3: base64.urlsafe_b64encode(hashlib.sha256(keyauth).digest()).rstrip(b'=') */
    assert_int_equal(acme_dns01_value(&v,
                                      "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA."
                                      "nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ",
                                      p),
                     APR_SUCCESS);
    assert_string_equal(v, "NGwKoXBgCT8JhEa0bK7AwfSqHyu_ZWeugV07fLGIVq0");
    assert_string_equal(acme_dns01_record("example.org", p), "_acme-challenge.example.org");
}

static void resolver_addresses(void **state)
{
    static const char *const good[] = {"192.0.2.53",          "192.0.2.53:5353", "::1",
                                       "[2001:db8::53]:5353", "2001:db8::53",    "127.0.0.1:1"};
    static const char *const bad[] = {"",
                                      "ns.example.test",
                                      "ns.example.test:53",
                                      "192.0.2.53:0",
                                      "192.0.2.53:65536",
                                      "192.0.2.53:",
                                      "[::1]",
                                      "[::1]53",
                                      "[192.0.2.53]:53",
                                      "1.2.3:53",
                                      "192.0.2.53:53x",
                                      "192.0.2.53:-1",
                                      ":53",
                                      "[]:53"};
    size_t i;

    (void)state;
    assert_false(acme_dns_resolver_ok(NULL));
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_true(acme_dns_resolver_ok(good[i]));
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (acme_dns_resolver_ok(bad[i])) {
            fail_msg("accepted as a resolver: '%s'", bad[i]);
        }
    }
}

/* "127.0.0.1:<port>" of a UDP port nobody listens on. */
static const char *closed_port(apr_pool_t *p)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return apr_psprintf(p, "127.0.0.1:%d", ntohs(sa.sin_port));
}

static apr_array_header_t *one_txt(apr_pool_t *p)
{
    apr_array_header_t *txts = apr_array_make(p, 1, sizeof(acme_dns_txt_t));
    acme_dns_txt_t *t = apr_array_push(txts);

    t->record = "_acme-challenge.example.test";
    t->value = "NGwKoXBgCT8JhEa0bK7AwfSqHyu_ZWeugV07fLGIVq0";
    t->seen = 0;
    return txts;
}

static void unreachable_resolver_until_the_limit(void **state)
{
    apr_pool_t *p = *state;
    unit_clock_t *uc = unit_clock_make(p, apr_time_from_sec(1000));
    unit_log_t *ul = unit_log_make(p);
    acme_dns_opts_t opts;
    const char *why = NULL;
    apr_status_t rv;

    memset(&opts, 0, sizeof(opts));
    opts.resolver = closed_port(p);
    opts.log = &ul->log;
    opts.domain = "example.test";
    rv = acme_dns_await(one_txt(p), &opts, uc->now + apr_time_from_sec(10), &uc->clock, &why, p);
    assert_int_equal(rv, ACME_EDNS);
    /* Looks at 0, 1, 3 and 7 s and at the limit itself: the waits double, the last is cut. */
    assert_int_equal(uc->sleeps, 4);
    assert_int_equal(uc->slept, apr_time_from_sec(10));
    assert_non_null(strstr(why, "not visible after 5 look(s)"));
    assert_non_null(strstr(why, apr_psprintf(p,
                                             "the resolver %s could not be asked for "
                                             "_acme-challenge.example.test: connection refused",
                                             opts.resolver)));
    assert_true(unit_log_has(ul, "ACME00131: example.test: TXT _acme-challenge.example.test"));
}

static void cancel_stops_at_once(void **state)
{
    apr_pool_t *p = *state;
    unit_clock_t *uc = unit_clock_make(p, apr_time_from_sec(1000));
    volatile apr_uint32_t stop = 1;
    acme_dns_opts_t opts;
    const char *why = NULL;

    memset(&opts, 0, sizeof(opts));
    opts.resolver = closed_port(p);
    opts.cancel = &stop;
    assert_int_equal(
        acme_dns_await(one_txt(p), &opts, uc->now + apr_time_from_sec(60), &uc->clock, &why, p),
        ACME_ECANCELLED);
    assert_int_equal(uc->sleeps, 0);
}

static void bad_resolver_is_an_error(void **state)
{
    apr_pool_t *p = *state;
    acme_dns_opts_t opts;
    const char *why = NULL;
    int seen = 1;

    memset(&opts, 0, sizeof(opts));
    opts.resolver = "ns.example.test";
    assert_int_equal(acme_dns_txt_check(&seen, &why, &opts, "_acme-challenge.example.test", "x", p),
                     APR_EINVAL);
    assert_int_equal(seen, 0);
    assert_non_null(strstr(why, "ACMEDNSResolver ns.example.test"));
}

#define NSD "/usr/sbin/nsd"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Starts NSD serving example.test (with ns1.example.test at ip) on ip:53; its pid. */
static pid_t nsd_start(const char *dir, const char *ip, apr_pool_t *p)
{
    const char *conf = apr_pstrcat(p, dir, "/nsd.conf", NULL);
    pid_t pid;

    write_file(apr_pstrcat(p, dir, "/zone", NULL),
               apr_psprintf(p,
                            "$ORIGIN example.test.\n$TTL 60\n"
                            "@ IN SOA ns1.example.test. admin.example.test. 1 3600 600 86400 60\n"
                            "@ IN NS ns1.example.test.\nns1 IN A %s\n"
                            "_acme-challenge.www IN TXT \"abc\"\n"
                            "_acme-challenge.www IN TXT \"de\" \"f\"\n",
                            ip));
    write_file(conf, apr_psprintf(p,
                                  "server:\n  ip-address: %s@53\n  username: \"\"\n"
                                  "  pidfile: \"%s/nsd.pid\"\n  database: \"\"\n"
                                  "  xfrdfile: \"%s/xfrd.state\"\n"
                                  "  zonelistfile: \"%s/zone.list\"\n"
                                  "  logfile: \"%s/nsd.log\"\n  server-count: 1\n"
                                  "remote-control:\n  control-enable: no\n"
                                  "zone:\n  name: example.test\n  zonefile: %s/zone\n",
                                  ip, dir, dir, dir, dir, dir));
    write_file(apr_pstrcat(p, dir, "/resolv.conf", NULL), apr_psprintf(p, "nameserver %s\n", ip));
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(NSD, "nsd", "-d", "-c", conf, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void authoritative_servers_of_the_zone(void **state)
{
    apr_pool_t *p = *state;
    unit_clock_t *uc = unit_clock_make(p, apr_time_from_sec(1000));
    char dir[] = "/tmp/acme-test-nsd-XXXXXX";
    const char *ip = apr_psprintf(p, "127.0.0.%d", 100 + (int)(getpid() % 150)), *why = NULL;
    apr_array_header_t *txts = apr_array_make(p, 2, sizeof(acme_dns_txt_t));
    acme_dns_txt_t *t;
    acme_dns_opts_t opts;
    apr_time_t until = apr_time_now() + apr_time_from_sec(10);
    apr_status_t rv;
    pid_t pid;
    int seen = 0, status;

    if (geteuid() != 0 || access(NSD, X_OK) != 0) {
        print_message("skipped: needs root (port 53) and %s (Debian package nsd); CI has both\n",
                      NSD);
        skip();
    }
    assert_non_null(mkdtemp(dir));
    pid = nsd_start(dir, ip, p);
    memset(&opts, 0, sizeof(opts));
    /* Ready when it answers for its zone. */
    opts.resolver = ip;
    do {
        apr_sleep(apr_time_from_msec(50));
        rv = acme_dns_txt_check(&seen, &why, &opts, "_acme-challenge.www.example.test", "abc", p);
    } while ((rv != APR_SUCCESS || !seen) && apr_time_now() < until);
    assert_int_equal(rv, APR_SUCCESS);

    /* Without ACMEDNSResolver: the zone (SOA up from the record), its NS, their addresses. */
    opts.resolver = NULL;
    opts.resolv_conf = apr_pstrcat(p, dir, "/resolv.conf", NULL);
    assert_int_equal(
        acme_dns_txt_check(&seen, &why, &opts, "_acme-challenge.www.example.test", "abc", p),
        APR_SUCCESS);
    assert_true(seen);
    /* A value in two strings is one value. */
    assert_int_equal(
        acme_dns_txt_check(&seen, &why, &opts, "_acme-challenge.www.example.test", "def", p),
        APR_SUCCESS);
    assert_true(seen);
    assert_int_equal(
        acme_dns_txt_check(&seen, &why, &opts, "_acme-challenge.www.example.test", "xyz", p),
        APR_SUCCESS);
    assert_false(seen);
    assert_string_equal(why, apr_psprintf(p,
                                          "the name server %s:53 of example.test has 2 other "
                                          "value(s): abc, def for _acme-challenge.www.example.test",
                                          ip));
    assert_int_equal(
        acme_dns_txt_check(&seen, &why, &opts, "_acme-challenge.example.test", "abc", p),
        APR_SUCCESS);
    assert_false(seen);
    assert_non_null(strstr(why, "has no TXT record for _acme-challenge.example.test"));
    /* A name outside every zone the resolver knows: it refuses, and says so. */
    assert_int_not_equal(
        acme_dns_txt_check(&seen, &why, &opts, "_acme-challenge.other.invalid", "abc", p),
        APR_SUCCESS);
    assert_non_null(strstr(why, "could not be asked for the SOA of _acme-challenge.other.invalid: "
                                "it refused the query"));
    /* Both values of one name (a wildcard and its base name) in one look. */
    t = apr_array_push(txts);
    t->record = "_acme-challenge.www.example.test";
    t->value = "abc";
    t = apr_array_push(txts);
    t->record = "_acme-challenge.www.example.test";
    t->value = "def";
    assert_int_equal(
        acme_dns_await(txts, &opts, uc->now + apr_time_from_sec(60), &uc->clock, &why, p),
        APR_SUCCESS);
    assert_int_equal(uc->sleeps, 0);

    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    system(apr_psprintf(p, "rm -rf '%s'", dir));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_TEST(value_is_b64u_sha256_of_keyauth),
        UNIT_TEST(resolver_addresses),
        UNIT_TEST(unreachable_resolver_until_the_limit),
        UNIT_TEST(cancel_stops_at_once),
        UNIT_TEST(bad_resolver_is_an_error),
        UNIT_TEST(authoritative_servers_of_the_zone),
    };
    int failed;

    apr_initialize();
    acme_dns_global_init();
    failed = cmocka_run_group_tests_name("dns", tests, NULL, NULL);
    apr_terminate();
    return failed ? 1 : 0;
}
