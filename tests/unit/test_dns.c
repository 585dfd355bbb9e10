/* test_dns.c - dns-01 values, resolver addresses, and the propagation check's schedule and
 * failures against a resolver address where nothing answers (a closed UDP port on loopback).
 * That the check sees real records is shown against pebble-challtestsrv in
 * tests/integration/test_dns.py. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        UNIT_TEST(value_is_b64u_sha256_of_keyauth),
        UNIT_TEST(resolver_addresses),
        UNIT_TEST(unreachable_resolver_until_the_limit),
        UNIT_TEST(cancel_stops_at_once),
        UNIT_TEST(bad_resolver_is_an_error),
    };
    int failed;

    apr_initialize();
    acme_dns_global_init();
    failed = cmocka_run_group_tests_name("dns", tests, NULL, NULL);
    apr_terminate();
    return failed ? 1 : 0;
}
