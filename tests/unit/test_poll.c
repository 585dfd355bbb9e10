/* test_poll.c - the polling schedule of an order (acme_poll_interval): fast when the CA is
 * fast, polite when it is slow, and the CA's Retry-After always wins. */
#include "acme_issue.h"
#include "unit.h"

static void schedule_without_retry_after(void **state)
{
    static const struct {
        int attempt;
        apr_interval_time_t wait;
    } rows[] = {
        {0, 15000}, /* soon after the challenge answer or finalize */
        {1, 45000},    {2, 135000},    {3, 405000},      {4, 1215000}, {5, 3645000},
        {6, 10000000},                                                /* capped */
        {7, 10000000}, {59, 10000000}, {1000, 10000000}, {-1, 15000}, /* a bad attempt number is the
                                                                         first */
    };
    size_t i;
    (void)state;

    assert_int_equal(ACME_POLL_FIRST, 15000);
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        assert_int_equal(acme_poll_interval(rows[i].attempt, -1), rows[i].wait);
    }
}

static void retry_after_wins(void **state)
{
    (void)state;
    /* Longer than our schedule: waited, from the first poll on. */
    assert_int_equal(acme_poll_interval(0, apr_time_from_sec(3)), apr_time_from_sec(3));
    /* Shorter than our schedule: also waited (the CA says it will be done). */
    assert_int_equal(acme_poll_interval(8, apr_time_from_sec(1)), apr_time_from_sec(1));
    /* Longer than our cap: still waited; the order's deadline bounds the total. */
    assert_int_equal(acme_poll_interval(8, apr_time_from_sec(120)), apr_time_from_sec(120));
    /* "Retry-After: 0" (or a date in the past) never makes a busy loop. */
    assert_int_equal(acme_poll_interval(0, 0), ACME_POLL_RETRY_MIN);
    assert_int_equal(acme_poll_interval(5, 0), ACME_POLL_RETRY_MIN);
}

/* Polls made within t from the first wait on, without Retry-After. */
static int polls_within(apr_interval_time_t t, apr_interval_time_t first, int growth, int use_ours)
{
    apr_interval_time_t at = 0, w = first;
    int n = 0;

    for (;;) {
        apr_interval_time_t next = use_ours ? acme_poll_interval(n, -1) : w;
        if (at + next > t) {
            return n;
        }
        at += next;
        n++;
        if (!use_ours && w < ACME_POLL_MAX) {
            w = w * growth > ACME_POLL_MAX ? ACME_POLL_MAX : w * growth;
        }
    }
}

static void polite_to_a_slow_ca(void **state)
{
    static const apr_interval_time_t horizons[] = {
        apr_time_from_msec(500), apr_time_from_msec(1500), apr_time_from_sec(3),
        apr_time_from_sec(6),    apr_time_from_sec(7),     apr_time_from_sec(13),
        apr_time_from_sec(15),   apr_time_from_sec(30),    apr_time_from_sec(60),
        apr_time_from_sec(300),
    };
    size_t i;
    (void)state;

    /* A slow CA is asked at most once more than with the former schedule (100 ms doubling
     * up to 10 s), no more often from 12.7 s on, and 6 times in its first 7 seconds. */
    for (i = 0; i < sizeof(horizons) / sizeof(horizons[0]); i++) {
        int ours = polls_within(horizons[i], 0, 0, 1);
        int former = polls_within(horizons[i], 100000, 2, 0);
        assert_true(ours <= former + 1);
        if (horizons[i] >= apr_time_from_msec(12700)) {
            assert_true(ours <= former);
        }
    }
    assert_int_equal(polls_within(apr_time_from_sec(7), 0, 0, 1), 6);
    /* A CA done within 15 ms is asked once; within 60 ms, twice. */
    assert_int_equal(polls_within(15000, 0, 0, 1), 1);
    assert_int_equal(polls_within(60000, 0, 0, 1), 2);
}

static const struct CMUnitTest tests[] = {
    UNIT_TEST(schedule_without_retry_after),
    UNIT_TEST(retry_after_wins),
    UNIT_TEST(polite_to_a_slow_ca),
};

UNIT_MAIN("poll", tests)
